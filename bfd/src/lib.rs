//! BFD (RFC 5880, single hop per RFC 5881) for anycastd: the sans-IO core.
//!
//! - `packet`: the control packet codec (RFC 5880 4.1) with the reception
//!   checks that need no session (6.8.6).
//! - `session`: one session's state machine (6.2, 6.8), fed received
//!   packets, timer ticks and commands with an injected clock and an
//!   injected random source for the transmit jitter, returning actions.
//!
//! Not here yet: the socket layer (UDP 3784, TTL 255), the OSPF binding
//! (RFC 5882), echo and demand mode (left out on purpose).

pub mod packet;
pub mod session;
