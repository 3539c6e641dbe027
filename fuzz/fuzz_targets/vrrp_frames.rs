//! Any bytes as what the VRRP layer's sockets receive: a raw-socket
//! datagram for IP protocol 112 (the IPv4 header, then the advertisement
//! decoder on the payload it bounds), an ARP frame from AF_PACKET, and an
//! ICMP echo reply to the reference probe. No panic; accepted headers and
//! frames are read from where RFC 791 and RFC 826 put the fields.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The sans-IO parts of src/vrrp, compiled in by path (see Cargo.toml).
#[allow(dead_code)]
#[path = "../../src/vrrp/frame.rs"]
mod frame;
#[allow(dead_code)]
#[path = "../../src/vrrp/packet.rs"]
mod packet;

use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = frame::parse_ipv4(data) {
        let header = usize::from(data[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
        assert_eq!(r.payload, header..total);
        assert!(header >= 20 && total <= data.len());
        assert_eq!(data[9], packet::IPPROTO_VRRP);
        assert_eq!(r.src.octets(), data[12..16]);
        assert_eq!(r.dst.octets(), data[16..20]);
        assert_eq!(r.ttl, data[8]);
        let _ = packet::Advertisement::decode(&data[r.payload]);
    }
    if let Some(spa) = frame::arp_reply_sender(data) {
        assert!(data.len() >= 42);
        assert_eq!(data[12..14], [0x08, 0x06]);
        assert_eq!(data[20..22], [0, 2]);
        assert_eq!(spa.octets(), data[28..32]);
    }
    // The reference probe's reply: from the address in the bytes, to the
    // identifier and sequence number in them, must match; anything else
    // must not.
    let from = data.get(12..16).map_or(Ipv4Addr::UNSPECIFIED, |s| {
        Ipv4Addr::new(s[0], s[1], s[2], s[3])
    });
    let h = data.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    if let Some(icmp) = data.get(h..h + 8).filter(|_| h >= 20) {
        let id = u16::from_be_bytes([icmp[4], icmp[5]]);
        let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
        assert_eq!(frame::is_echo_reply(data, from, id, seq), icmp[0] == 0);
        assert!(!frame::is_echo_reply(data, from, id, seq.wrapping_add(1)));
    } else {
        assert!(!frame::is_echo_reply(data, from, 0, 0));
    }
});
