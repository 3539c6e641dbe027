//! Any bytes as what the ICMP health check's socket receives (a raw socket
//! sees every ICMP packet of its family, with the IPv4 header): no panic;
//! a reply matches only with our type, code, identifier, sequence number
//! and token, and our own request never matches.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The sans-IO echo bytes of src/health, compiled in by path.
#[allow(dead_code)]
#[path = "../../src/health/echo.rs"]
mod echo;

fuzz_target!(|data: &[u8]| {
    for ip_header in [false, true] {
        let icmp = echo::icmp_of(data, ip_header);
        assert!(icmp.len() <= data.len());
        if ip_header && !icmp.is_empty() {
            // After a whole IPv4 header, never inside it.
            assert!(data.len() - icmp.len() >= 20);
        }
        for v4 in [true, false] {
            let (Some(head), Some(token)) = (icmp.get(..echo::HEADER), icmp.get(8..16)) else {
                assert!(!echo::is_our_reply(icmp, v4, None, 0, &[0; 8]));
                continue;
            };
            let ident = u16::from_be_bytes([head[4], head[5]]);
            let seq = u16::from_be_bytes([head[6], head[7]]);
            let reply = if v4 { 0 } else { 129 };
            let matches = head[0] == reply && head[1] == 0;
            assert_eq!(
                echo::is_our_reply(icmp, v4, Some(ident), seq, token),
                matches
            );
            assert_eq!(echo::is_our_reply(icmp, v4, None, seq, token), matches);
            assert!(!echo::is_our_reply(icmp, v4, Some(ident ^ 1), seq, token));
            assert!(!echo::is_our_reply(icmp, v4, None, seq ^ 1, token));
            let mut token = <[u8; 8]>::try_from(token).expect("8 bytes");
            let request = echo::echo_request(v4, ident, seq, token);
            assert!(!echo::is_our_reply(&request, v4, None, seq, &token));
            token[0] ^= 1;
            assert!(!echo::is_our_reply(icmp, v4, None, seq, &token));
        }
    }
});
