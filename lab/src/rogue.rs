//! A hostile node on a lab LAN: a namespace of its own whose veth joins
//! the LAN's bridge like any member's, and a raw socket that sends IPv4
//! packets with whatever source address the caller names (protocol 89,
//! TTL 1), to test how the lab's speakers stand up to forged OSPF.
//!
//! The rogue's namespace is named like the lab's others (`LAB.rogueN`), so
//! [`crate::teardown`] (drop, panic, signal, `anycastd lab down`) removes
//! it with the lab; dropping the [`Rogue`] removes it earlier. Its veth
//! pair is made inside the rogue's namespace and one end moved straight
//! into the LAN's, so nothing touches the root namespace. What it builds
//! to send lives in [`crate::forge`].

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use ipnetwork::Ipv4Network;
use rtnetlink::packet_route::link::LinkAttribute;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::forge::Forged;
use crate::{net, netns, wait_for, Context, Lab, LabError};

/// The rogue's interface inside its namespace.
pub const ROGUE_IFNAME: &str = "eth0";
/// IPv4 header without options.
const IP_HEADER_LEN: usize = 20;
/// IPPROTO_RAW: a raw socket that sends whole IPv4 packets (IP_HDRINCL is
/// implied) and receives nothing.
const IPPROTO_RAW: i32 = 255;
/// At most this many packets per [`Rogue::send_burst`], and at most this
/// long sending them: a burst is a handful of packets, never a flood.
pub const MAX_BURST: usize = 256;
pub const MAX_BURST_TIME: Duration = Duration::from_secs(5);

/// A node that the lab did not plan, attached to one of its LANs
/// ([`Lab::attach_rogue`]).
#[derive(Debug)]
pub struct Rogue {
    ns_name: String,
    /// Removed (its processes killed, the veth pair gone with it) when
    /// the rogue is dropped; the lab's teardown removes it too.
    ns: netns::Namespace,
    /// The LAN it is attached to.
    pub lan: String,
    /// The address of its interface (the LAN's prefix).
    pub addr: Ipv4Network,
    /// The MAC address of its interface, to tell its frames from the
    /// members' whatever source address they carry.
    pub mac: [u8; 6],
    mtu: usize,
    socket: Socket,
    sent: std::sync::atomic::AtomicU64,
}

impl Lab {
    /// Attaches a rogue node to LAN `lan` with interface address `addr`
    /// (e.g. `"198.18.0.99/24"`: inside the LAN's prefix, used by no
    /// member). The rogue gets a namespace of its own with the lab's name
    /// prefix and a veth whose other end is a port of the LAN's bridge.
    pub fn attach_rogue(&self, lan: &str, addr: &str) -> Result<Rogue, LabError> {
        let missing = |what: String| LabError::Missing(what);
        let l = self
            .topology
            .lans
            .iter()
            .find(|l| l.name == lan)
            .ok_or_else(|| missing(format!("a LAN named {lan} in topology {}", self.name)))?;
        let addr: Ipv4Network = addr
            .parse()
            .map_err(|e| missing(format!("an IPv4 prefix for the rogue (got {addr:?}: {e})")))?;
        let lab_range: Ipv4Network = crate::topology::DEFAULT_LINK_RANGE
            .parse()
            .map_err(|e| missing(format!("the lab range: {e}")))?;
        if !lab_range.contains(addr.ip()) {
            return Err(missing(format!(
                "a rogue address inside the lab range {lab_range} (got {addr})"
            )));
        }
        if let Some(m) = l
            .members
            .iter()
            .find(|m| m.addr.network() != addr.network() || m.addr.prefix() != addr.prefix())
        {
            return Err(missing(format!(
                "a rogue address in LAN {lan}'s prefix (got {addr}; {} has {})",
                m.node, m.addr
            )));
        }
        if let Some(m) = l.members.iter().find(|m| m.addr.ip() == addr.ip()) {
            return Err(missing(format!(
                "a rogue address no member of LAN {lan} uses ({} has {addr})",
                m.node
            )));
        }
        // A name no node, LAN or earlier rogue of this lab has; it is the
        // bridge port's name too, so it must fit IFNAMSIZ.
        let taken = |n: &str| {
            self.topology.node(n).is_some()
                || self.topology.lans.iter().any(|l| l.name == n)
                || netns::path(&self.ns_name(n)).exists()
        };
        let port = (0..100)
            .map(|i| format!("rogue{i}"))
            .find(|n| !taken(n))
            .ok_or_else(|| missing("a free rogue name (rogue0..rogue99 taken)".into()))?;
        let ns_name = self.ns_name(&port);
        // Removed when dropped: an early return below leaves nothing.
        let ns =
            netns::Namespace::create(&ns_name).context(|| format!("create namespace {ns_name}"))?;
        let path = ns.path().to_path_buf();
        let mtu = l.members.iter().find_map(|m| m.mtu);
        let lan_ns = self.ns_path(lan);
        net::loopback_up(&path).context(|| format!("{port}: lo up"))?;
        net::veth(&path, ROGUE_IFNAME, mtu, &lan_ns, &port, mtu)
            .context(|| format!("LAN {lan}: rogue veth {port}"))?;
        net::bridge_port(&lan_ns, "br0", &port).context(|| format!("LAN {lan}: port {port}"))?;
        net::address(&path, ROGUE_IFNAME, addr)
            .context(|| format!("{port}: address {addr} on {ROGUE_IFNAME}"))?;
        let mac = mac_address(&path, ROGUE_IFNAME).context(|| format!("{port}: MAC address"))?;
        let socket = netns::run_in(&path, move || raw_socket(addr.ip()))
            .context(|| format!("{port}: raw socket"))?;
        Ok(Rogue {
            ns_name,
            ns,
            lan: lan.to_string(),
            addr,
            mac,
            mtu: mtu.map_or(1500, |m| m as usize),
            socket,
            sent: Default::default(),
        })
    }
}

/// The rogue's sending socket, made on a thread inside its namespace:
/// whole IPv4 packets (IP_HDRINCL), out of its interface only, multicast
/// included.
fn raw_socket(local: Ipv4Addr) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))?;
    s.set_header_included_v4(true)?;
    s.bind_device(Some(ROGUE_IFNAME.as_bytes()))?;
    s.set_multicast_if_v4(&local)?;
    s.set_multicast_loop_v4(false)?;
    Ok(s)
}

/// The MAC address of `ifname` in namespace `ns`.
pub fn mac_address(ns: &Path, ifname: &str) -> io::Result<[u8; 6]> {
    let ifname = ifname.to_string();
    net::with_handle(ns, move |h| async move {
        let mut links = h.link().get().match_name(ifname.clone()).execute();
        let link = links
            .try_next()
            .await
            .map_err(|e| io::Error::other(format!("find {ifname}: {e}")))?
            .ok_or_else(|| io::Error::other(format!("no interface {ifname}")))?;
        link.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| io::Error::other(format!("{ifname} has no MAC address")))
    })
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The IPv4 header of a packet the rogue sends: TTL 1 and precedence
/// "internetwork control", as OSPF routers send (RFC 2328 A.1), protocol
/// 89, whatever source the caller names.
fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> io::Result<Vec<u8>> {
    let total = u16::try_from(IP_HEADER_LEN + payload.len())
        .map_err(|_| io::Error::other("packet too long for IPv4"))?;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0xc0]);
    p.extend_from_slice(&total.to_be_bytes());
    // Identification 0: the kernel fills one in; no fragmentation.
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&[1, ospf::packet::IP_PROTOCOL, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = internet_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    Ok(p)
}

/// RFC 1071 checksum (the kernel also fills it in for IP_HDRINCL).
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Rogue {
    /// The rogue's namespace.
    pub fn ns_path(&self) -> &Path {
        self.ns.path()
    }

    pub fn ns_name(&self) -> &str {
        &self.ns_name
    }

    /// Packets sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends one IPv4 packet, protocol 89, TTL 1, from `src` (any address:
    /// the point is to forge one) to `dst` (224.0.0.5/6 or a member's
    /// address), carrying `ospf_packet`, out of the rogue's interface.
    pub fn send(&self, src: Ipv4Addr, dst: Ipv4Addr, ospf_packet: &[u8]) -> Result<(), LabError> {
        if IP_HEADER_LEN + ospf_packet.len() > self.mtu {
            return Err(LabError::Missing(format!(
                "an OSPF packet that fits the LAN's MTU {} (got {} bytes)",
                self.mtu,
                ospf_packet.len()
            )));
        }
        let packet = ipv4_packet(src, dst, ospf_packet).context(|| "build IPv4 packet".into())?;
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        let n = self
            .socket
            .send_to(&packet, &to)
            .context(|| format!("rogue: send {} bytes {src} -> {dst}", packet.len()))?;
        if n != packet.len() {
            return Err(LabError::Missing(format!(
                "the whole packet sent (sent {n} of {} bytes)",
                packet.len()
            )));
        }
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Sends `packets` in order, `gap` apart; returns when the last one
    /// went out. Bounded: at most [`MAX_BURST`] packets, and an error if
    /// sending would take longer than [`MAX_BURST_TIME`].
    pub fn send_burst(&self, packets: &[Forged], gap: Duration) -> Result<Instant, LabError> {
        if packets.is_empty() || packets.len() > MAX_BURST {
            return Err(LabError::Missing(format!(
                "a burst of 1 to {MAX_BURST} packets (got {})",
                packets.len()
            )));
        }
        let start = Instant::now();
        let mut last = start;
        for (i, p) in packets.iter().enumerate() {
            if i > 0 && !gap.is_zero() {
                std::thread::sleep(gap);
            }
            if start.elapsed() > MAX_BURST_TIME {
                return Err(LabError::Missing(format!(
                    "a burst sent within {MAX_BURST_TIME:?} ({i} of {} sent)",
                    packets.len()
                )));
            }
            self.send(p.src, p.dst, &p.bytes)?;
            last = Instant::now();
        }
        Ok(last)
    }

    /// Starts capturing, on `node`'s interface on the rogue's LAN, the OSPF
    /// packets that come from the rogue (its MAC address), whatever source
    /// address they carry: proof that they arrived as sent. The capture
    /// (tcpdump, written to the lab's state directory) stops when the
    /// returned value is dropped, or with the lab.
    pub fn capture_at(&self, lab: &Lab, node: &str) -> Result<RogueCapture, LabError> {
        let member = lab
            .topology
            .lans
            .iter()
            .find(|l| l.name == self.lan)
            .and_then(|l| l.members.iter().find(|m| m.node == node))
            .ok_or_else(|| {
                LabError::Missing(format!("node {node} on LAN {} (to capture at)", self.lan))
            })?;
        let dir = lab.node_dir(node);
        std::fs::create_dir_all(&dir).context(|| format!("create {}", dir.display()))?;
        let file = dir.join(format!("{}-from-{}.pcap", member.ifname, self.ns_name));
        let filter = format!("ether src {} and ip proto 89", mac_string(&self.mac));
        let child = netns::command(&lab.ns_path(node), "tcpdump")
            .context(|| format!("{node}: namespace"))?
            .args(["-i", &member.ifname, "-U", "-s", "0", "-w"])
            .arg(&file)
            .args(filter.split(' '))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(|| "start tcpdump (apt-get install tcpdump)".into())?;
        let mut capture = RogueCapture { child, file };
        // tcpdump creates the file once it listens.
        wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
            capture.file.exists().then_some(())
        })
        .ok_or_else(|| LabError::Missing(format!("tcpdump listening on {node} within 5 s")))?;
        if let Ok(Some(status)) = capture.child.try_wait() {
            return Err(LabError::Missing(format!(
                "tcpdump on {node} running (it exited: {status})"
            )));
        }
        Ok(capture)
    }
}

/// A capture of the rogue's packets at one node ([`Rogue::capture_at`]).
#[derive(Debug)]
pub struct RogueCapture {
    child: Child,
    /// The pcap file.
    pub file: PathBuf,
}

/// One packet as it arrived: its IPv4 header fields and the OSPF packet
/// decoded (LSAs kept as raw bytes, malformed or not).
#[derive(Debug, Clone)]
pub struct Arrived {
    pub at: SystemTime,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// The OSPF packet's bytes (the IP payload).
    pub bytes: Vec<u8>,
    /// Its decoding, when the codec accepts it.
    pub packet: Option<ospf::packet::Packet>,
}

impl RogueCapture {
    /// The packets captured so far (a record tcpdump is still writing is
    /// left for the next call).
    pub fn packets(&self) -> Vec<Arrived> {
        read_pcap(&self.file).unwrap_or_default()
    }
}

impl Drop for RogueCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The IPv4 OSPF packets of an Ethernet pcap file; None if the file is
/// missing or not such a capture.
pub fn read_pcap(path: &Path) -> Option<Vec<Arrived>> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = pcap_file::pcap::PcapReader::new(io::BufReader::new(file)).ok()?;
    if reader.header().datalink != pcap_file::DataLink::ETHERNET {
        return None;
    }
    let mut out = Vec::new();
    while let Some(Ok(record)) = reader.next_packet() {
        let frame = &record.data;
        let Some(ip) = frame.get(14..) else { continue };
        if frame.get(12..14) != Some(&[0x08, 0x00]) || ip.get(9) != Some(&89) {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let (Some(src), Some(dst), Some(&ttl)) = (ip.get(12..16), ip.get(16..20), ip.get(8)) else {
            continue;
        };
        let total = ip
            .get(2..4)
            .map_or(ip.len(), |t| usize::from(u16::from_be_bytes([t[0], t[1]])));
        let Some(bytes) = ip.get(ihl..total.min(ip.len())) else {
            continue;
        };
        let addr = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        out.push(Arrived {
            at: std::time::UNIX_EPOCH + record.timestamp,
            src: addr(src),
            dst: addr(dst),
            ttl,
            bytes: bytes.to_vec(),
            packet: ospf::packet::Packet::decode(bytes).ok(),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_is_ospf_ttl_1_with_a_valid_checksum() {
        let p = ipv4_packet(
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(224, 0, 0, 5),
            &[1, 2, 3],
        )
        .expect("packet");
        assert_eq!(p.len(), 23);
        assert_eq!(&p[2..4], &23u16.to_be_bytes());
        assert_eq!(p[8], 1, "TTL");
        assert_eq!(p[9], 89, "protocol");
        assert_eq!(&p[12..16], &[198, 18, 0, 1]);
        assert_eq!(&p[16..20], &[224, 0, 0, 5]);
        assert_eq!(internet_checksum(&p[..20]), 0, "header checksum verifies");
        assert_eq!(&p[20..], &[1, 2, 3]);
    }

    #[test]
    fn mac_strings() {
        assert_eq!(mac_string(&[2, 0, 0x5e, 0xab, 0, 1]), "02:00:5e:ab:00:01");
    }
}
