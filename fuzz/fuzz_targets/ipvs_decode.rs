//! Any bytes into the IPVS reply decoders: no panic; a decoded service or
//! destination re-encodes to a request that decodes to the same value.
#![no_main]
use anycastd::ipvs::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::genl_attrs(data);
    let _ = wire::decode_info(data);
    if let Ok(s) = wire::decode_service(data) {
        let again = wire::decode_service(&wire::service_request(&s)).expect("re-encoded service");
        assert!(again.same_config(&s));
    }
    for v6 in [false, true] {
        if let Ok(d) = wire::decode_dest(data, v6) {
            let key = anycastd::ipvs::ServiceKey::Fwmark { mark: 1, ipv6: v6 };
            let again = wire::decode_dest(&wire::dest_request(&key, &d), d.addr.is_ipv6())
                .expect("re-encoded destination");
            assert!(again.same_config(&d));
        }
    }
});
