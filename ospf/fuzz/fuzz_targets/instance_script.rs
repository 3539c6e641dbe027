//! Stateful fuzzing: the input is a script of a hostile host's packets on
//! the LAN of a director and its router, both Full (`ospf::fuzzing`). After
//! every step: no panic, every stored LSA valid, nothing invalid sent,
//! timers bounded; after the script, the two agree again on the director's
//! Router-LSA with its VIPs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(v) = ospf::fuzzing::run(data) {
        panic!("{v}");
    }
});
