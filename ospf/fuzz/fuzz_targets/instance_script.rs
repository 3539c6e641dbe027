//! Stateful fuzzing: the input is a script of a hostile host's packets on
//! the LAN of a director and its router, both Full (`ospf::fuzzing`). After
//! every step: no panic, every stored LSA valid, nothing invalid sent,
//! timers bounded; after the script, the two agree again on the director's
//! Router-LSA with its VIPs. The first byte picks the area type (normal,
//! stub, totally stubby, NSSA).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((t, script)) = data.split_first() else {
        return;
    };
    let area_type = ospf::area::AreaType::ALL[usize::from(*t) % 4];
    if let Err(v) = ospf::fuzzing::run_in(area_type, script) {
        panic!("{area_type}: {v}");
    }
});
