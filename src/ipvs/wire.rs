//! The IPVS generic-netlink attributes (include/uapi/linux/ip_vs.h), as
//! pure functions between bytes and the [`model`](super::model) types: what
//! goes after the 4-byte generic-netlink header of a request, and what
//! comes back in a reply. No socket here, so requests are golden-tested
//! against what ipvsadm sends and replies are fuzzed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::model::{
    Dest, Forward, Protocol, Service, ServiceKey, Stats, SyncDaemon, SyncState, Timeouts,
    TunnelType,
};

/// Generic netlink family name and version.
pub const FAMILY: &str = "IPVS";
pub const VERSION: u8 = 1;

/// Commands (enum `IPVS_CMD_*`).
pub mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const SET_INFO: u8 = 14;
    pub const GET_INFO: u8 = 15;
    pub const ZERO: u8 = 16;
    pub const FLUSH: u8 = 17;
}

/// Top-level attributes (`IPVS_CMD_ATTR_*`).
pub mod attr {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
    pub const TIMEOUT_TCP: u16 = 4;
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    pub const TIMEOUT_UDP: u16 = 6;
}

/// Service attributes (`IPVS_SVC_ATTR_*`).
mod svc {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const STATS64: u16 = 12;
}

/// Destination attributes (`IPVS_DEST_ATTR_*`).
mod dst {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const STATS64: u16 = 12;
    pub const ADDR_FAMILY: u16 = 11;
    pub const TUN_TYPE: u16 = 13;
    pub const TUN_PORT: u16 = 14;
    pub const TUN_FLAGS: u16 = 15;
}

/// Sync daemon attributes (`IPVS_DAEMON_ATTR_*`).
mod daemon {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

/// Info attributes (`IPVS_INFO_ATTR_*`).
mod info {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
}

const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A malformed reply (the kernel never sends one; fuzzing does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("attribute runs past the end of its container")]
    Truncated,
    #[error("attribute {0} has a bad length {1}")]
    BadLength(u16, usize),
    #[error("address family {0} is neither IPv4 nor IPv6")]
    BadFamily(u16),
    #[error("missing attribute: {0}")]
    Missing(&'static str),
    #[error("a scheduler or interface name is not UTF-8")]
    BadName,
    #[error("sync daemon state {0} is neither master (1) nor backup (2)")]
    BadState(u32),
    #[error("short generic netlink header")]
    ShortHeader,
}

/// Netlink attributes being written.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn put(&mut self, kind: u16, value: &[u8]) {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
    }

    fn u16(&mut self, kind: u16, v: u16) {
        self.put(kind, &v.to_ne_bytes());
    }

    fn be16(&mut self, kind: u16, v: u16) {
        self.put(kind, &v.to_be_bytes());
    }

    fn u32(&mut self, kind: u16, v: u32) {
        self.put(kind, &v.to_ne_bytes());
    }

    fn nest(&mut self, kind: u16, inner: Writer) {
        self.put(kind | NLA_F_NESTED, &inner.0);
    }
}

/// Iterates over the attributes of `buf`: `(type without flags, value)`.
pub fn attributes(buf: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), DecodeError>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > rest.len() {
            rest = &[];
            return Some(Err(DecodeError::Truncated));
        }
        let value = &rest[4..len];
        let padded = len.div_ceil(4) * 4;
        rest = rest.get(padded..).unwrap_or(&[]);
        Some(Ok((kind, value)))
    })
}

fn fixed<const N: usize>(kind: u16, v: &[u8]) -> Result<[u8; N], DecodeError> {
    v.get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::BadLength(kind, v.len()))
}

fn get_u16(kind: u16, v: &[u8]) -> Result<u16, DecodeError> {
    fixed::<2>(kind, v).map(u16::from_ne_bytes)
}

fn get_be16(kind: u16, v: &[u8]) -> Result<u16, DecodeError> {
    fixed::<2>(kind, v).map(u16::from_be_bytes)
}

fn get_u32(kind: u16, v: &[u8]) -> Result<u32, DecodeError> {
    fixed::<4>(kind, v).map(u32::from_ne_bytes)
}

fn get_u64(kind: u16, v: &[u8]) -> Result<u64, DecodeError> {
    fixed::<8>(kind, v).map(u64::from_ne_bytes)
}

fn family_of(addr: IpAddr) -> u16 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

/// The 16-byte address field (IPv4 in the first 4 bytes).
fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match addr {
        IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => b = a.octets(),
    }
    b
}

fn addr_from(af: u16, kind: u16, v: &[u8]) -> Result<IpAddr, DecodeError> {
    match af {
        AF_INET => Ok(IpAddr::V4(Ipv4Addr::from(fixed::<4>(kind, v)?))),
        AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(fixed::<16>(kind, v)?))),
        other => Err(DecodeError::BadFamily(other)),
    }
}

/// The attributes naming a service (what DEL_SERVICE and the dest
/// commands carry): family and either fwmark or protocol, address, port.
fn service_key(w: &mut Writer, key: &ServiceKey) {
    match *key {
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            w.u16(svc::AF, family_of(addr));
            w.u16(svc::PROTOCOL, protocol.number());
            w.put(svc::ADDR, &addr_bytes(addr));
            w.be16(svc::PORT, port);
        }
        ServiceKey::Fwmark { mark, ipv6 } => {
            w.u16(svc::AF, if ipv6 { AF_INET6 } else { AF_INET });
            w.u32(svc::FWMARK, mark);
        }
    }
}

/// The kernel reads NETMASK as a __be32: an IPv4 mask in network order,
/// but for IPv6 a prefix length that ipvsadm writes in host order.
fn netmask_bytes(ipv6: bool, netmask: u32) -> [u8; 4] {
    if ipv6 {
        netmask.to_ne_bytes()
    } else {
        netmask.to_be_bytes()
    }
}

fn service_nest(s: &Service) -> Writer {
    let mut w = Writer::default();
    service_key(&mut w, &s.key);
    let mut name = s.scheduler.as_bytes().to_vec();
    name.push(0);
    w.put(svc::SCHED_NAME, &name);
    let mut flags = [0u8; 8];
    flags[..4].copy_from_slice(&s.flags.to_ne_bytes());
    flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
    w.put(svc::FLAGS, &flags);
    w.u32(svc::TIMEOUT, s.timeout);
    w.put(svc::NETMASK, &netmask_bytes(s.key.is_ipv6(), s.netmask));
    w
}

/// NEW_SERVICE / SET_SERVICE: the whole service.
pub fn service_request(s: &Service) -> Vec<u8> {
    let mut w = Writer::default();
    w.nest(attr::SERVICE, service_nest(s));
    w.0
}

/// The service nest that names a service in DEL_SERVICE, GET_DEST and
/// the destination commands: its key, and the rest empty, as ipvsadm sends
/// it (the kernel reads the key only).
fn key_nest(key: &ServiceKey) -> Writer {
    service_nest(&Service {
        key: *key,
        scheduler: String::new(),
        flags: 0,
        timeout: 0,
        netmask: if key.is_ipv6() { 128 } else { u32::MAX },
        stats: None,
    })
}

/// DEL_SERVICE, GET_DEST: the service's key.
pub fn service_key_request(key: &ServiceKey) -> Vec<u8> {
    let mut w = Writer::default();
    w.nest(attr::SERVICE, key_nest(key));
    w.0
}

/// NEW_DEST / SET_DEST / DEL_DEST: the service's key, then the
/// destination (DEL_DEST needs only its address and port, the kernel
/// ignores the rest).
pub fn dest_request(key: &ServiceKey, d: &Dest) -> Vec<u8> {
    let mut w = Writer::default();
    w.nest(attr::SERVICE, key_nest(key));
    let mut dw = Writer::default();
    dw.u16(dst::ADDR_FAMILY, family_of(d.addr));
    dw.put(dst::ADDR, &addr_bytes(d.addr));
    dw.be16(dst::PORT, d.port);
    dw.u32(dst::FWD_METHOD, d.forward.code());
    dw.u32(dst::WEIGHT, d.weight);
    // Tunnel settings always, zero unless tunnelling, as ipvsadm does.
    let (kind, port, flags) = match d.forward {
        Forward::Tunnel { kind, port, flags } => (kind.code(), port, flags),
        _ => (0, 0, 0),
    };
    dw.put(dst::TUN_TYPE, &[kind]);
    dw.be16(dst::TUN_PORT, port);
    dw.u16(dst::TUN_FLAGS, flags);
    dw.u32(dst::U_THRESH, d.upper_threshold);
    dw.u32(dst::L_THRESH, d.lower_threshold);
    w.nest(attr::DEST, dw);
    w.0
}

/// GET_DEST (a dump): the service's key alone, as ipvsadm sends it.
pub fn dest_dump_request(key: &ServiceKey) -> Vec<u8> {
    let mut k = Writer::default();
    service_key(&mut k, key);
    let mut w = Writer::default();
    w.nest(attr::SERVICE, k);
    w.0
}

/// ZERO: the counters of one service, or of all (no attribute).
pub fn zero_request(key: Option<&ServiceKey>) -> Vec<u8> {
    key.map_or_else(Vec::new, service_key_request)
}

/// SET_CONFIG: the TCP, TCP FIN and UDP timeouts (seconds; 0 keeps one).
pub fn timeouts_request(t: &Timeouts) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(attr::TIMEOUT_TCP, t.tcp);
    w.u32(attr::TIMEOUT_TCP_FIN, t.tcp_fin);
    w.u32(attr::TIMEOUT_UDP, t.udp);
    w.0
}

/// A GET_CONFIG reply (command SET_CONFIG): the three timeouts.
pub fn decode_timeouts(attrs: &[u8]) -> Result<Timeouts, DecodeError> {
    let mut t = Timeouts::default();
    let (mut tcp, mut fin, mut udp) = (false, false, false);
    for a in attributes(attrs) {
        let (kind, v) = a?;
        match kind {
            attr::TIMEOUT_TCP => (t.tcp, tcp) = (get_u32(kind, v)?, true),
            attr::TIMEOUT_TCP_FIN => (t.tcp_fin, fin) = (get_u32(kind, v)?, true),
            attr::TIMEOUT_UDP => (t.udp, udp) = (get_u32(kind, v)?, true),
            _ => {}
        }
    }
    if tcp && fin && udp {
        Ok(t)
    } else {
        Err(DecodeError::Missing("timeouts"))
    }
}

/// NEW_DAEMON: start a sync daemon. Like ipvsadm, the optional settings
/// (size, port, TTL, group) are sent only when set: kernels before 4.3
/// know none of them.
pub fn daemon_start_request(d: &SyncDaemon) -> Vec<u8> {
    let mut dw = Writer::default();
    dw.u32(daemon::STATE, d.state.code());
    let mut name = d.interface.as_bytes().to_vec();
    name.push(0);
    dw.put(daemon::MCAST_IFN, &name);
    dw.u32(daemon::SYNC_ID, d.sync_id);
    if d.max_len != 0 {
        dw.u16(daemon::SYNC_MAXLEN, d.max_len);
    }
    // The kernel reads the port in host order (nla_get_u16), unlike
    // every other port of this family.
    if d.port != 0 {
        dw.u16(daemon::MCAST_PORT, d.port);
    }
    if d.ttl != 0 {
        dw.put(daemon::MCAST_TTL, &[d.ttl]);
    }
    match d.group {
        Some(IpAddr::V4(g)) => dw.put(daemon::MCAST_GROUP, &g.octets()),
        Some(IpAddr::V6(g)) => dw.put(daemon::MCAST_GROUP6, &g.octets()),
        None => {}
    }
    let mut w = Writer::default();
    w.nest(attr::DAEMON, dw);
    w.0
}

/// DEL_DAEMON: stop the daemon in `state` (the kernel reads the state
/// only; ipvsadm sends an empty interface and sync id 0 as well).
pub fn daemon_stop_request(state: SyncState) -> Vec<u8> {
    daemon_start_request(&SyncDaemon::new(state, "", 0))
}

/// A GET_DAEMON reply: one running daemon. (The kernel sends this nest
/// without NLA_F_NESTED.)
pub fn decode_daemon(attrs: &[u8]) -> Result<SyncDaemon, DecodeError> {
    let nest = find(attrs, attr::DAEMON)?.ok_or(DecodeError::Missing("daemon"))?;
    let mut state = None;
    let mut d = SyncDaemon::new(SyncState::Master, "", 0);
    for a in attributes(nest) {
        let (kind, v) = a?;
        match kind {
            daemon::STATE => {
                let c = get_u32(kind, v)?;
                state = Some(SyncState::from_code(c).ok_or(DecodeError::BadState(c))?);
            }
            daemon::MCAST_IFN => d.interface = c_string(v)?,
            daemon::SYNC_ID => d.sync_id = get_u32(kind, v)?,
            daemon::SYNC_MAXLEN => d.max_len = get_u16(kind, v)?,
            daemon::MCAST_PORT => d.port = get_u16(kind, v)?,
            daemon::MCAST_TTL => d.ttl = *v.first().ok_or(DecodeError::BadLength(kind, 0))?,
            daemon::MCAST_GROUP => d.group = Some(IpAddr::V4(fixed::<4>(kind, v)?.into())),
            daemon::MCAST_GROUP6 => d.group = Some(IpAddr::V6(fixed::<16>(kind, v)?.into())),
            _ => {}
        }
    }
    d.state = state.ok_or(DecodeError::Missing("daemon state"))?;
    Ok(d)
}

/// A NUL-terminated name (the NUL and anything after it dropped).
fn c_string(v: &[u8]) -> Result<String, DecodeError> {
    let name = v.split(|b| *b == 0).next().unwrap_or(&[]);
    std::str::from_utf8(name)
        .map(str::to_string)
        .map_err(|_| DecodeError::BadName)
}

/// The attributes after the generic netlink header of a reply.
pub fn genl_attrs(payload: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    if payload.len() < 4 {
        return Err(DecodeError::ShortHeader);
    }
    Ok((payload[0], &payload[4..]))
}

/// A STATS64 nest (every counter a u64) or an old STATS one (u32, and
/// u64 byte counts): each value is read at the width it has.
fn stats(v: &[u8]) -> Result<Stats, DecodeError> {
    let mut s = Stats::default();
    for a in attributes(v) {
        let (kind, v) = a?;
        let x = || match v.len() {
            4 => get_u32(kind, v).map(u64::from),
            _ => get_u64(kind, v),
        };
        match kind {
            1 => s.conns = x()?,
            2 => s.in_packets = x()?,
            3 => s.out_packets = x()?,
            4 => s.in_bytes = x()?,
            5 => s.out_bytes = x()?,
            6 => s.cps = x()?,
            7 => s.in_pps = x()?,
            8 => s.out_pps = x()?,
            9 => s.in_bps = x()?,
            10 => s.out_bps = x()?,
            _ => {}
        }
    }
    Ok(s)
}

/// A GET_SERVICE reply: its SERVICE nest.
pub fn decode_service(attrs: &[u8]) -> Result<Service, DecodeError> {
    let nest = find(attrs, attr::SERVICE)?.ok_or(DecodeError::Missing("service"))?;
    let (mut af, mut protocol, mut addr, mut port, mut fwmark) = (None, None, None, None, None);
    let mut netmask = None;
    let mut s = Service {
        key: ServiceKey::Fwmark {
            mark: 0,
            ipv6: false,
        },
        scheduler: String::new(),
        flags: 0,
        timeout: 0,
        netmask: 0,
        stats: None,
    };
    for a in attributes(nest) {
        let (kind, v) = a?;
        match kind {
            svc::AF => af = Some(get_u16(kind, v)?),
            svc::PROTOCOL => protocol = Some(get_u16(kind, v)?),
            svc::ADDR => addr = Some(v),
            svc::PORT => port = Some(get_be16(kind, v)?),
            svc::FWMARK => fwmark = Some(get_u32(kind, v)?),
            svc::SCHED_NAME => s.scheduler = c_string(v)?,
            svc::FLAGS => s.flags = get_u32(kind, v)?,
            svc::TIMEOUT => s.timeout = get_u32(kind, v)?,
            svc::NETMASK => netmask = Some(fixed::<4>(kind, v)?),
            svc::STATS64 => s.stats = Some(stats(v)?),
            // Kernels before 4.1 send only the 32-bit counters.
            svc::STATS if s.stats.is_none() => s.stats = Some(stats(v)?),
            _ => {}
        }
    }
    let af = af.ok_or(DecodeError::Missing("service address family"))?;
    if let Some(m) = netmask {
        s.netmask = if af == AF_INET6 {
            u32::from_ne_bytes(m)
        } else {
            u32::from_be_bytes(m)
        };
    }
    s.key = match (fwmark.filter(|m| *m != 0), protocol, addr, port) {
        (Some(mark), ..) => ServiceKey::Fwmark {
            mark,
            ipv6: af == AF_INET6,
        },
        (None, Some(p), Some(a), Some(port)) => ServiceKey::Inet {
            protocol: Protocol::from_number(p),
            addr: addr_from(af, svc::ADDR, a)?,
            port,
        },
        _ => return Err(DecodeError::Missing("service protocol, address and port")),
    };
    Ok(s)
}

/// A GET_DEST reply: its DEST nest (`af` is the service's, for kernels
/// that send no per-destination family).
pub fn decode_dest(attrs: &[u8], af_v6: bool) -> Result<Dest, DecodeError> {
    let nest = find(attrs, attr::DEST)?.ok_or(DecodeError::Missing("dest"))?;
    let mut af = if af_v6 { AF_INET6 } else { AF_INET };
    let (mut addr, mut port, mut method) = (None, None, None);
    let (mut tun_type, mut tun_port, mut tun_flags) = (0u8, 0u16, 0u16);
    let mut d = Dest {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        forward: Forward::Route,
        weight: 0,
        upper_threshold: 0,
        lower_threshold: 0,
        active_conns: 0,
        inactive_conns: 0,
        persistent_conns: 0,
        stats: None,
    };
    for a in attributes(nest) {
        let (kind, v) = a?;
        match kind {
            dst::ADDR_FAMILY => af = get_u16(kind, v)?,
            dst::ADDR => addr = Some(v),
            dst::PORT => port = Some(get_be16(kind, v)?),
            dst::FWD_METHOD => method = Some(get_u32(kind, v)?),
            dst::WEIGHT => d.weight = get_u32(kind, v)?,
            dst::U_THRESH => d.upper_threshold = get_u32(kind, v)?,
            dst::L_THRESH => d.lower_threshold = get_u32(kind, v)?,
            dst::ACTIVE_CONNS => d.active_conns = get_u32(kind, v)?,
            dst::INACT_CONNS => d.inactive_conns = get_u32(kind, v)?,
            dst::PERSIST_CONNS => d.persistent_conns = get_u32(kind, v)?,
            dst::STATS64 => d.stats = Some(stats(v)?),
            dst::STATS if d.stats.is_none() => d.stats = Some(stats(v)?),
            dst::TUN_TYPE => tun_type = *v.first().ok_or(DecodeError::BadLength(kind, 0))?,
            dst::TUN_PORT => tun_port = get_be16(kind, v)?,
            dst::TUN_FLAGS => tun_flags = get_u16(kind, v)?,
            _ => {}
        }
    }
    d.addr = addr_from(
        af,
        dst::ADDR,
        addr.ok_or(DecodeError::Missing("dest address"))?,
    )?;
    d.port = port.ok_or(DecodeError::Missing("dest port"))?;
    d.forward = Forward::from_code(
        method.ok_or(DecodeError::Missing("forwarding method"))?,
        TunnelType::from_code(tun_type),
        tun_port,
        tun_flags,
    );
    Ok(d)
}

/// A GET_INFO reply: (version as "1.2.1", connection table size).
pub fn decode_info(attrs: &[u8]) -> Result<(String, u32), DecodeError> {
    let (mut version, mut size) = (None, None);
    for a in attributes(attrs) {
        let (kind, v) = a?;
        match kind {
            info::VERSION => version = Some(get_u32(kind, v)?),
            info::CONN_TAB_SIZE => size = Some(get_u32(kind, v)?),
            _ => {}
        }
    }
    let v = version.ok_or(DecodeError::Missing("version"))?;
    Ok((
        format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff),
        size.ok_or(DecodeError::Missing("connection table size"))?,
    ))
}

fn find(attrs: &[u8], want: u16) -> Result<Option<&[u8]>, DecodeError> {
    for a in attributes(attrs) {
        let (kind, v) = a?;
        if kind == want {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn web() -> Service {
        Service {
            key: ServiceKey::Inet {
                protocol: Protocol::Tcp,
                addr: "192.0.2.10".parse().unwrap(),
                port: 80,
            },
            scheduler: "mh".into(),
            flags: super::super::model::flags::SCHED1 | super::super::model::flags::SCHED2,
            timeout: 0,
            netmask: 0xffff_ffff,
            stats: None,
        }
    }

    #[test]
    fn service_request_layout() {
        let b = service_request(&web());
        // One nest: SERVICE | NESTED.
        let (len, kind) = (
            u16::from_ne_bytes([b[0], b[1]]),
            u16::from_ne_bytes([b[2], b[3]]),
        );
        assert_eq!(usize::from(len), b.len());
        assert_eq!(kind, attr::SERVICE | NLA_F_NESTED);
        let inner: Vec<(u16, Vec<u8>)> = attributes(&b[4..])
            .map(|a| a.map(|(k, v)| (k, v.to_vec())).unwrap())
            .collect();
        let kinds: Vec<u16> = inner.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [1, 2, 3, 4, 6, 7, 8, 9]);
        assert_eq!(inner[3].1, [0, 80], "port is big-endian");
        assert_eq!(&inner[2].1[..4], &[192, 0, 2, 10]);
        assert_eq!(inner[2].1.len(), 16);
        assert_eq!(inner[4].1, b"mh\0");
    }

    #[test]
    fn truncated_attributes_are_an_error_not_a_panic() {
        let b = service_request(&web());
        for cut in 0..b.len() {
            let _ = decode_service(&b[..cut]);
        }
        assert!(decode_service(&b[..b.len() - 1]).is_err());
    }

    fn arb_addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        ]
    }

    fn arb_service() -> impl Strategy<Value = Service> {
        let key = prop_oneof![
            (
                prop_oneof![
                    Just(Protocol::Tcp),
                    Just(Protocol::Udp),
                    Just(Protocol::Sctp)
                ],
                arb_addr(),
                any::<u16>()
            )
                .prop_map(|(protocol, addr, port)| ServiceKey::Inet {
                    protocol,
                    addr,
                    port
                }),
            (1..u32::MAX, any::<bool>()).prop_map(|(mark, ipv6)| ServiceKey::Fwmark { mark, ipv6 }),
        ];
        (key, "[a-z]{1,15}", any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
            |(key, scheduler, flags, timeout, netmask)| Service {
                key,
                scheduler,
                flags,
                timeout,
                netmask,
                stats: None,
            },
        )
    }

    fn arb_forward() -> impl Strategy<Value = Forward> {
        prop_oneof![
            Just(Forward::Masquerade),
            Just(Forward::Local),
            Just(Forward::Route),
            Just(Forward::Bypass),
            (
                prop_oneof![
                    Just(TunnelType::Ipip),
                    Just(TunnelType::Gue),
                    Just(TunnelType::Gre)
                ],
                any::<u16>(),
                any::<u16>()
            )
                .prop_map(|(kind, port, flags)| Forward::Tunnel { kind, port, flags }),
        ]
    }

    #[test]
    fn a_dest_dump_names_the_service_by_its_key_alone() {
        let b = dest_dump_request(&web().key);
        let inner: Vec<u16> = attributes(&b[4..]).map(|a| a.unwrap().0).collect();
        assert_eq!(inner, [1, 2, 3, 4]);
        let fw = dest_dump_request(&ServiceKey::Fwmark {
            mark: 7,
            ipv6: true,
        });
        let inner: Vec<u16> = attributes(&fw[4..]).map(|a| a.unwrap().0).collect();
        assert_eq!(inner, [1, 5]);
        assert!(zero_request(None).is_empty());
        assert_eq!(
            zero_request(Some(&web().key)),
            service_key_request(&web().key)
        );
    }

    #[test]
    fn a_daemon_stop_names_the_state() {
        let b = daemon_stop_request(SyncState::Backup);
        let d = decode_daemon(&b).unwrap();
        assert_eq!(d, SyncDaemon::new(SyncState::Backup, "", 0));
        let mut bad = b.clone();
        // STATE is the first attribute of the nest: make it 3.
        bad[8..12].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(decode_daemon(&bad), Err(DecodeError::BadState(3)));
    }

    /// A reply as the kernel builds it: the request's service nest plus
    /// counters, 64-bit, 32-bit (the old STATS) or both.
    fn service_reply(s: &Service, st: &Stats, wide: bool, narrow: bool) -> Vec<u8> {
        let mut w = service_nest(s);
        let all = [
            st.conns,
            st.in_packets,
            st.out_packets,
            st.in_bytes,
            st.out_bytes,
            st.cps,
            st.in_pps,
            st.out_pps,
            st.in_bps,
            st.out_bps,
        ];
        if narrow {
            let mut n = Writer::default();
            for (i, v) in all.iter().enumerate() {
                let kind = u16::try_from(i + 1).unwrap();
                // The old STATS: byte counts u64, the rest u32.
                if kind == 4 || kind == 5 {
                    n.put(kind, &v.to_ne_bytes());
                } else {
                    n.u32(kind, u32::try_from(*v & 0xffff_ffff).unwrap());
                }
            }
            w.nest(svc::STATS, n);
        }
        if wide {
            let mut n = Writer::default();
            for (i, v) in all.iter().enumerate() {
                n.put(u16::try_from(i + 1).unwrap(), &v.to_ne_bytes());
            }
            n.put(11, &[0; 4]); // PAD
            w.nest(svc::STATS64, n);
        }
        let mut top = Writer::default();
        top.nest(attr::SERVICE, w);
        top.0
    }

    fn arb_stats() -> impl Strategy<Value = Stats> {
        proptest::collection::vec(any::<u64>(), 10).prop_map(|v| Stats {
            conns: v[0],
            in_packets: v[1],
            out_packets: v[2],
            in_bytes: v[3],
            out_bytes: v[4],
            cps: v[5],
            in_pps: v[6],
            out_pps: v[7],
            in_bps: v[8],
            out_bps: v[9],
        })
    }

    fn arb_daemon() -> impl Strategy<Value = SyncDaemon> {
        (
            prop_oneof![Just(SyncState::Master), Just(SyncState::Backup)],
            "[a-z0-9.]{0,15}",
            any::<u32>(),
            any::<u16>(),
            proptest::option::of(arb_addr()),
            any::<u16>(),
            any::<u8>(),
        )
            .prop_map(|(state, interface, sync_id, max_len, group, port, ttl)| {
                SyncDaemon {
                    state,
                    interface,
                    sync_id,
                    max_len,
                    group,
                    port,
                    ttl,
                }
            })
    }

    proptest! {
        #[test]
        fn services_round_trip(s in arb_service()) {
            let b = service_request(&s);
            prop_assert_eq!(decode_service(&b).unwrap(), s);
        }

        #[test]
        fn dests_round_trip(
            s in arb_service(),
            addr in arb_addr(),
            port in any::<u16>(),
            forward in arb_forward(),
            weight in any::<u32>(),
            upper in any::<u32>(),
            lower in any::<u32>(),
        ) {
            let d = Dest {
                addr,
                port,
                forward,
                weight,
                upper_threshold: upper,
                lower_threshold: lower,
                active_conns: 0,
                inactive_conns: 0,
                persistent_conns: 0,
                stats: None,
            };
            let b = dest_request(&s.key, &d);
            // A DEST nest comes after the SERVICE one.
            prop_assert_eq!(decode_dest(&b, addr.is_ipv6()).unwrap(), d);
        }

        #[test]
        fn service_counters_decode_at_either_width(
            s in arb_service(),
            st in arb_stats(),
            wide in any::<bool>(),
        ) {
            // With both, STATS64 wins; alone, the old STATS is read (its
            // u32 counters truncated by the kernel, as here).
            let got = decode_service(&service_reply(&s, &st, wide, true)).unwrap();
            let want = if wide {
                st
            } else {
                let t = |v: u64| v & 0xffff_ffff;
                Stats {
                    conns: t(st.conns),
                    in_packets: t(st.in_packets),
                    out_packets: t(st.out_packets),
                    cps: t(st.cps),
                    in_pps: t(st.in_pps),
                    out_pps: t(st.out_pps),
                    in_bps: t(st.in_bps),
                    out_bps: t(st.out_bps),
                    ..st
                }
            };
            prop_assert_eq!(got.stats, Some(want));
            prop_assert!(got.same_config(&s));
        }

        #[test]
        fn daemons_round_trip(d in arb_daemon()) {
            prop_assert_eq!(decode_daemon(&daemon_start_request(&d)).unwrap(), d);
        }

        #[test]
        fn timeouts_round_trip(tcp in any::<u32>(), tcp_fin in any::<u32>(), udp in any::<u32>()) {
            let t = Timeouts { tcp, tcp_fin, udp };
            prop_assert_eq!(decode_timeouts(&timeouts_request(&t)).unwrap(), t);
        }

        #[test]
        fn info_decodes(version in 0..0x0100_0000u32, size in any::<u32>()) {
            let mut w = Writer::default();
            w.u32(info::VERSION, version);
            w.u32(info::CONN_TAB_SIZE, size);
            let (v, n) = decode_info(&w.0).unwrap();
            prop_assert_eq!(
                v,
                format!("{}.{}.{}", version >> 16, (version >> 8) & 0xff, version & 0xff)
            );
            prop_assert_eq!(n, size);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_service(&b);
            let _ = decode_dest(&b, false);
            let _ = decode_info(&b);
            let _ = decode_daemon(&b);
            let _ = decode_timeouts(&b);
        }
    }
}
