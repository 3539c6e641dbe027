//! Any bytes into the LSA decoders and checks: no panic; an LSA that passes
//! the checks decodes; a decoded LSA re-encodes (header and body) to one
//! that decodes equal, with only the length and checksum recomputed, a
//! valid checksum, and the same bytes when encoded again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ospf::lsa::{verify_lsa_checksum, Lsa, LsaHeader, RawLsa};
use ospf::validate::{check_lsa, LsaTypes};

fuzz_target!(|data: &[u8]| {
    let _ = LsaHeader::decode(data);
    let _ = verify_lsa_checksum(data);
    if let Ok(raw) = RawLsa::from_bytes(bytes::Bytes::copy_from_slice(data)) {
        let decoded = raw.decode();
        if check_lsa(&raw, LsaTypes::NORMAL).is_ok() {
            assert!(decoded.is_ok(), "a checked LSA does not decode");
        }
    }
    if let Ok(lsa) = Lsa::decode(data) {
        if let Ok(bytes) = lsa.encode() {
            let again = Lsa::decode(&bytes).expect("re-encoded LSA decodes");
            assert_eq!(usize::from(again.header.length), bytes.len());
            assert!(verify_lsa_checksum(&bytes), "re-encoded LSA checksum");
            let mut want = lsa.clone();
            want.header.length = again.header.length;
            want.header.checksum = again.header.checksum;
            assert_eq!(again, want, "the whole LSA round-trips");
            let twice = again.encode().expect("encodes again");
            assert_eq!(twice, bytes, "encoding is a fixed point");
            // (The checksum itself may differ from a valid input's: the
            // Fletcher checksum has two forms of each octet, 0x00 and 0xff.)
        }
    }
});
