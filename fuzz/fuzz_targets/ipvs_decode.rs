//! Any bytes into every IPVS reply decoder: no panic; whatever decodes
//! re-encodes to a request that decodes to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The sans-IO codec of src/ipvs, compiled in by path: it needs nothing
// of the daemon (see Cargo.toml). `wire` finds `model` as `super::model`.
#[allow(dead_code)]
#[path = "../../src/ipvs/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../../src/ipvs/wire.rs"]
mod wire;

use model::ServiceKey;

fuzz_target!(|data: &[u8]| {
    let _ = wire::genl_attrs(data);
    let _ = wire::decode_info(data);
    for a in wire::attributes(data) {
        if a.is_err() {
            break;
        }
    }
    if let Ok(s) = wire::decode_service(data) {
        let again = wire::decode_service(&wire::service_request(&s)).expect("re-encoded service");
        assert!(again.same_config(&s));
    }
    for v6 in [false, true] {
        if let Ok(d) = wire::decode_dest(data, v6) {
            let key = ServiceKey::Fwmark { mark: 1, ipv6: v6 };
            let again = wire::decode_dest(&wire::dest_request(&key, &d), d.addr.is_ipv6())
                .expect("re-encoded destination");
            assert!(again.same_config(&d));
        }
    }
    if let Ok(t) = wire::decode_timeouts(data) {
        assert_eq!(wire::decode_timeouts(&wire::timeouts_request(&t)), Ok(t));
    }
    if let Ok(d) = wire::decode_daemon(data) {
        // An interface name with a NUL inside, or longer than the kernel
        // takes, is cut at the NUL on the way back: compare what survives.
        let again =
            wire::decode_daemon(&wire::daemon_start_request(&d)).expect("re-encoded daemon");
        assert_eq!(again.state, d.state);
        assert_eq!(again.sync_id, d.sync_id);
        assert_eq!(again.group, d.group);
        assert_eq!(
            (again.port, again.ttl, again.max_len),
            (d.port, d.ttl, d.max_len)
        );
    }
});
