//! Any bytes into authentication checks of every kind: no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ospf::auth::{verify, Algorithm, AuthConfig, Key, NeighborAuthState};

fuzz_target!(|data: &[u8]| {
    let configs = [
        AuthConfig::Null,
        AuthConfig::simple("labpass").expect("password"),
        AuthConfig::cryptographic(
            vec![
                Key::new(1, Algorithm::KeyedMd5, "k"),
                Key::new(2, Algorithm::HmacSha256, "k"),
                Key::new(3, Algorithm::HmacSha512, "k"),
            ],
            true,
        )
        .expect("keys"),
    ];
    for c in &configs {
        let _ = verify(c, data, &mut NeighborAuthState::new(), 1_800_000_000);
    }
});
