//! Any bytes into the LSA decoders and checks: no panic; decoded LSAs
//! re-encode to a value that decodes the same; an LSA that passes the
//! checks decodes.
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
            assert_eq!(again.body, lsa.body);
        }
    }
});
