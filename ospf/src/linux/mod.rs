//! The Linux I/O layer of the OSPF speaker: a raw socket for IP protocol 89
//! and interface discovery over rtnetlink.
//!
//! The layer is thin on purpose. The protocol (packet codec, interface and
//! neighbour state machines, LSDB) is sans-IO and testable without a kernel;
//! this module only moves bytes and reports interface facts, and holds no
//! OSPF state. Errors about single packets are distinguishable from errors
//! about the socket (see [`malformed`]) so the speaker can count and go on.
//!
//! Namespaces: a socket (raw or netlink) belongs to the network namespace of
//! the thread that creates it, for its whole life. Create [`OspfSocket`] and
//! call [`watch`] or `rtnetlink::new_connection` on a thread that is already
//! in the wanted namespace (e.g. one that did `setns`); the tokio tasks that
//! use them may then run anywhere.

mod links;
mod socket;

pub use links::{links, watch, LinkEvent, LinkInfo};
pub use socket::{
    malformed, Malformed, OspfSocket, Received, ALL_D_ROUTERS, ALL_SPF_ROUTERS, IPPROTO_OSPF,
    IPTOS_PREC_INTERNETCONTROL,
};
pub mod speaker;
