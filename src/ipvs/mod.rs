//! IPVS over generic netlink: the codec (`wire`, pure), the kernel's
//! objects (`model`), the socket (`client`, neli) and the reconcile engine
//! (`reconcile`, pure) that keeps the kernel equal to the desired state
//! without ever flushing it, and the ECMP director's sysctls (`sysctl`).

pub mod client;
pub mod model;
pub mod reconcile;
pub mod sysctl;
pub mod wire;

pub use client::{Client, IpvsError};
pub use model::{
    Dest, Forward, Protocol, Service, ServiceKey, SyncDaemon, SyncState, Timeouts, TunnelType,
};
