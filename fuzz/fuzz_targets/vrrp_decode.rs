//! Any bytes as a received VRRP message: the decoder and the checksum
//! never panic, whatever decodes re-encodes to the same advertisement,
//! and the state machine takes the bytes in Backup and in Master (counted
//! and dropped, or obeyed) without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The sans-IO codec and state machine of src/vrrp, compiled in by path:
// they need nothing of the daemon. `instance` finds `packet` as
// `super::packet`.
#[allow(dead_code)]
#[path = "../../src/vrrp/instance.rs"]
mod instance;
#[allow(dead_code)]
#[path = "../../src/vrrp/packet.rs"]
mod packet;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use instance::{Config, Instance};
use packet::{checksum_ok, Advertisement, Auth, ChecksumMode, Version, VRRP_GROUP};

const SELF: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

fuzz_target!(|data: &[u8]| {
    for version in [Version::V2, Version::V3] {
        for mode in [ChecksumMode::Rfc, ChecksumMode::Lenient] {
            let _ = checksum_ok(data, version, PEER, VRRP_GROUP, mode);
        }
    }
    if let Ok(adv) = Advertisement::decode(data) {
        let bytes = adv.encode(PEER, VRRP_GROUP);
        let again = Advertisement::decode(&bytes).expect("re-encoded advertisement");
        assert!(checksum_ok(
            &bytes,
            adv.version,
            PEER,
            VRRP_GROUP,
            ChecksumMode::Rfc
        ));
        let mut want = adv.clone();
        if want.version == Version::V2 {
            // v2 carries whole seconds; 0 goes out as 1.
            want.max_adver_int_cs = want.max_adver_int_cs.max(100);
        }
        want.addresses.truncate(255);
        assert_eq!(again, want);
    }
    let vip = Ipv4Addr::new(192, 0, 2, 10);
    for (version, auth) in [
        (Version::V3, Auth::None),
        (Version::V2, Auth::simple("1111").expect("short")),
    ] {
        let mut cfg = Config::new(version, data.get(1).copied().unwrap_or(51), 100, vec![vip]);
        cfg.auth = auth;
        cfg.checksum = ChecksumMode::Lenient;
        let now = Instant::now();
        let mut inst = Instance::new(cfg, SELF);
        inst.startup(now);
        inst.handle_advert(now, PEER, VRRP_GROUP, 255, data);
        // Master (no one heard), then the same bytes again.
        let later = now + Duration::from_secs(10);
        inst.handle_timeout(later);
        inst.handle_advert(later, PEER, VRRP_GROUP, 255, data);
        while inst.poll_transmit().is_some() {}
        while inst.poll_event().is_some() {}
        let _ = inst.poll_timeout();
    }
});
