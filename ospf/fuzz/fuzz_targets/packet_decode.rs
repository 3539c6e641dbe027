//! Any bytes into the OSPF packet decoder (and every LSA it carries): no
//! panic, and what decodes re-encodes to a packet that decodes the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ospf::packet::Packet;

fuzz_target!(|data: &[u8]| {
    let _ = ospf::packet::verify_checksum(data);
    if let Ok(p) = Packet::decode(data) {
        if let ospf::packet::PacketBody::LinkStateUpdate(lsu) = &p.body {
            for lsa in &lsu.lsas {
                let _ = lsa.verify_checksum();
                let _ = lsa.decode();
            }
        }
        if let Ok(bytes) = p.encode() {
            let again = Packet::decode(&bytes).expect("re-encoded packet decodes");
            assert_eq!(again, p);
        }
    }
});
