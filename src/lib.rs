//! The parts of anycastd that stand on their own, apart from the daemon:
//! protocol codecs and state machines, each usable (and fuzzable) without
//! the daemon's config or sockets. The `anycastd` binary (src/main.rs)
//! builds the daemon and CLI on top of them.
pub mod ipvs;
pub mod vrrp;
