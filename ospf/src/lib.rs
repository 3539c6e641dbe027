//! OSPFv2 (RFC 2328) for anycastd: a sans-IO speaker that a director runs
//! in-process to advertise its VIPs.
//!
//! - `packet`, `lsa`: the wire codec (nom to decode, bytes to encode).
//! - `auth`: null, simple, keyed MD5 and HMAC-SHA authentication.
//! - `election`: DR/BDR election.
//! - `linux` (feature `linux`): the thin tokio layer, raw socket and
//!   rtnetlink interface discovery.
//!
//! The interface, neighbour and LSDB state machines are being written.

pub mod auth;
pub mod election;
#[cfg(feature = "linux")]
pub mod linux;
pub mod lsa;
pub mod packet;
