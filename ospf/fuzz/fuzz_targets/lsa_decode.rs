//! Any bytes into the LSA decoders: no panic; decoded LSAs re-encode to a
//! value that decodes the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ospf::lsa::{verify_lsa_checksum, Lsa, LsaHeader, RawLsa};

fuzz_target!(|data: &[u8]| {
    let _ = LsaHeader::decode(data);
    let _ = verify_lsa_checksum(data);
    if let Ok(raw) = RawLsa::from_bytes(bytes::Bytes::copy_from_slice(data)) {
        let _ = raw.decode();
    }
    if let Ok(lsa) = Lsa::decode(data) {
        if let Ok(bytes) = lsa.encode() {
            let again = Lsa::decode(&bytes).expect("re-encoded LSA decodes");
            assert_eq!(again.body, lsa.body);
        }
    }
});
