//! IPVS services and destinations as the kernel holds them.

use std::fmt;
use std::net::IpAddr;

/// Service flags (`IP_VS_SVC_F_*`).
pub mod flags {
    pub const PERSISTENT: u32 = 0x1;
    pub const HASHED: u32 = 0x2;
    pub const ONEPACKET: u32 = 0x4;
    /// `sh`/`mh`: fallback to another server when the chosen one is down.
    pub const SCHED1: u32 = 0x8;
    /// `sh`/`mh`: hash the source port too.
    pub const SCHED2: u32 = 0x10;
    pub const SCHED3: u32 = 0x20;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Other(u16),
}

impl Protocol {
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
            Protocol::Other(n) => n,
        }
    }

    pub fn from_number(n: u16) -> Protocol {
        match n {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            132 => Protocol::Sctp,
            n => Protocol::Other(n),
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    Inet {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        ipv6: bool,
    },
}

impl ServiceKey {
    pub fn is_ipv6(&self) -> bool {
        match self {
            ServiceKey::Inet { addr, .. } => addr.is_ipv6(),
            ServiceKey::Fwmark { ipv6, .. } => *ipv6,
        }
    }
}

/// `TCP  192.0.2.10:80`, `FWM  7`, as ipvsadm prints them.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => {
                let p = match protocol {
                    Protocol::Tcp => "TCP".to_string(),
                    Protocol::Udp => "UDP".to_string(),
                    Protocol::Sctp => "SCTP".to_string(),
                    Protocol::Other(n) => format!("proto-{n}"),
                };
                match addr {
                    IpAddr::V4(a) => write!(f, "{p} {a}:{port}"),
                    IpAddr::V6(a) => write!(f, "{p} [{a}]:{port}"),
                }
            }
            ServiceKey::Fwmark { mark, ipv6 } => {
                write!(f, "FWM {mark}{}", if *ipv6 { " IPv6" } else { "" })
            }
        }
    }
}

/// Packet and byte counters (STATS64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    /// Scheduler name (`mh`, `sh`, `wlc`, ...).
    pub scheduler: String,
    /// [`flags`] bits.
    pub flags: u32,
    /// Persistence timeout, seconds (with [`flags::PERSISTENT`]).
    pub timeout: u32,
    /// Persistence netmask: an IPv4 mask (`u32::from(Ipv4Addr)`, so
    /// 0xffff_ff00 is /24), or an IPv6 prefix length.
    pub netmask: u32,
    /// Counters (replies only).
    pub stats: Option<Stats>,
}

/// Tunnel encapsulation (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelType {
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn code(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        }
    }

    pub fn from_code(c: u8) -> TunnelType {
        match c {
            1 => TunnelType::Gue,
            2 => TunnelType::Gre,
            _ => TunnelType::Ipip,
        }
    }
}

/// Packet forwarding to a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forward {
    /// NAT.
    Masquerade,
    Local,
    Tunnel {
        kind: TunnelType,
        port: u16,
        flags: u16,
    },
    /// Direct routing.
    Route,
    Bypass,
}

impl Forward {
    pub fn code(self) -> u32 {
        match self {
            Forward::Masquerade => 0,
            Forward::Local => 1,
            Forward::Tunnel { .. } => 2,
            Forward::Route => 3,
            Forward::Bypass => 4,
        }
    }

    pub fn from_code(c: u32, kind: TunnelType, port: u16, flags: u16) -> Forward {
        match c & 0x7 {
            0 => Forward::Masquerade,
            1 => Forward::Local,
            2 => Forward::Tunnel { kind, port, flags },
            4 => Forward::Bypass,
            _ => Forward::Route,
        }
    }

    /// As ipvsadm names it.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masquerade => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel { .. } => "Tunnel",
            Forward::Route => "Route",
            Forward::Bypass => "Bypass",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    /// Replies only.
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Option<Stats>,
}

impl Dest {
    /// A destination as configured (no counters).
    pub fn new(addr: IpAddr, port: u16, forward: Forward, weight: u32) -> Dest {
        Dest {
            addr,
            port,
            forward,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: 0,
            stats: None,
        }
    }

    /// Whether `other` is configured the same (counters aside).
    pub fn same_config(&self, other: &Dest) -> bool {
        self.addr == other.addr
            && self.port == other.port
            && self.forward == other.forward
            && self.weight == other.weight
            && self.upper_threshold == other.upper_threshold
            && self.lower_threshold == other.lower_threshold
    }
}

impl Service {
    /// Whether `other` is configured the same (counters and the kernel's
    /// HASHED flag aside).
    pub fn same_config(&self, other: &Service) -> bool {
        self.key == other.key
            && self.scheduler == other.scheduler
            && (self.flags & !flags::HASHED) == (other.flags & !flags::HASHED)
            && self.timeout == other.timeout
            && self.netmask == other.netmask
    }
}

/// The connection timeouts of the whole table (seconds; in a SET_CONFIG
/// request, 0 leaves that one unchanged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// The role of a connection sync daemon (`IP_VS_STATE_*`): a master sends
/// its connections, a backup receives them. One of each can run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncState {
    Master,
    Backup,
}

impl SyncState {
    pub fn code(self) -> u32 {
        match self {
            SyncState::Master => 1,
            SyncState::Backup => 2,
        }
    }

    pub fn from_code(c: u32) -> Option<SyncState> {
        match c {
            1 => Some(SyncState::Master),
            2 => Some(SyncState::Backup),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SyncState::Master => "master",
            SyncState::Backup => "backup",
        }
    }
}

/// A connection sync daemon (multicast, by default 224.0.0.81:8848 with
/// TTL 1). Zero / `None` fields are the kernel's defaults: a request leaves
/// them out, and kernels older than 4.3 never send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    pub state: SyncState,
    /// The multicast interface (at most 15 bytes).
    pub interface: String,
    pub sync_id: u32,
    /// UDP payload size of sync messages.
    pub max_len: u16,
    pub group: Option<IpAddr>,
    pub port: u16,
    pub ttl: u8,
}

impl SyncDaemon {
    /// A daemon with the kernel's defaults for group, port, TTL and size.
    pub fn new(state: SyncState, interface: &str, sync_id: u32) -> SyncDaemon {
        SyncDaemon {
            state,
            interface: interface.to_string(),
            sync_id,
            max_len: 0,
            group: None,
            port: 0,
            ttl: 0,
        }
    }
}
