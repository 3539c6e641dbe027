//! OSPFv2 (RFC 2328) for anycastd: a sans-IO speaker that a director runs
//! in-process to advertise its VIPs.
//!
//! - `packet`, `lsa`: the wire codec (nom to decode, bytes to encode);
//!   `validate`: what a received LSA must be before it is stored.
//! - `area`: area types (normal, stub, totally stubby, NSSA).
//! - `auth`: null, simple, keyed MD5 and HMAC-SHA authentication.
//! - `election`: DR/BDR election.
//! - `fuzzing` (feature `fuzzing`): the stateful fuzzing harness.
//! - `linux` (feature `linux`): the thin tokio layer, raw socket and
//!   rtnetlink interface discovery.
//! - `instance`: the sans-IO speaker ([`instance::Instance`]), built from
//!   `interface` (RFC 2328 9), `neighbor` (10), `lsdb` (12, 14), `flood`
//!   (13) and `origin` (12.4, 13.4, RFC 6987).

pub mod area;
pub mod auth;
pub mod election;
mod flood;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod instance;
pub mod interface;
pub mod ipv4;
#[cfg(feature = "linux")]
pub mod linux;
pub mod lsa;
mod lsdb;
pub mod neighbor;
mod origin;
pub mod packet;
pub mod validate;
