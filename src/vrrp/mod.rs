//! VRRP for small active-standby sites: version 3 (RFC 5798, IPv4) and
//! version 2 (RFC 3768, with simple-password authentication), as a peer of
//! keepalived.
//!
//! - `packet`: the advertisement codec and its checksums.
//! - `frame`: the IPv4 header, ARP frames and ICMP echo replies the
//!   Linux layer receives, checked sans-IO.
//! - `instance`: one virtual router's state machine, sans-IO (adverts and
//!   instants in; adverts, address and ARP events, timeouts out).
//! - `config`: the daemon's `[[vrrp]]` tables, validated with `file:line`.
//! - `linux`: the thin tokio layer (raw socket, gratuitous ARP, addresses,
//!   interface and reference-address tracking) that runs an instance.

pub mod config;
pub mod frame;
pub mod instance;
pub mod linux;
pub mod packet;

pub use instance::{Config, Event, Instance, State};
pub use packet::{Advertisement, Auth, ChecksumMode, Version};

#[cfg(test)]
mod tests;
