//! Any bytes into the BFD control packet decoder: no panic, and what
//! decodes re-encodes to exactly the bytes its Length field covered.
#![no_main]
use bfd::packet::{ControlPacket, CONTROL_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ControlPacket::decode(data) {
        assert_eq!(&p.encode()[..], &data[..CONTROL_LEN]);
    }
});
