//! Any bytes as a datagram from the raw socket for IP protocol 89: the
//! header check never panics, and what it accepts lies inside the buffer
//! (the payload after the header, within the total length) with the
//! fields read from where RFC 791 puts them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ospf::ipv4::{parse_ipv4_header, IPPROTO_OSPF};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = parse_ipv4_header(data) {
        let header = usize::from(data[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
        assert_eq!(h.payload, header..total);
        assert!(header >= 20 && total <= data.len());
        assert_eq!(i32::from(data[9]), IPPROTO_OSPF);
        assert_eq!(h.src.octets(), data[12..16]);
        assert_eq!(h.dst.octets(), data[16..20]);
        assert_eq!(h.ttl, data[8]);
        // Whatever the speaker then decodes is in bounds.
        let _ = ospf::packet::Packet::decode(&data[h.payload]);
    }
});
