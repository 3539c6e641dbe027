//! The Linux I/O around one [`Instance`]: a raw socket for IP protocol 112
//! (224.0.0.18 joined on the interface, TTL 255), gratuitous ARP over
//! AF_PACKET, the virtual addresses added and removed with rtnetlink, the
//! interface's state followed over rtnetlink, and a reference address
//! probed (ARP or ICMP echo) so an isolated node goes to Fault.
//!
//! The layer only moves bytes and applies the instance's events; every
//! VRRP decision is the instance's. As with the OSPF speaker, sockets
//! belong to the namespace of the thread that creates them: call [`run`]
//! on a runtime whose thread is in the wanted namespace.

use std::collections::BTreeMap;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use nix::libc;
use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, MsgFlags, SockaddrIn,
};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, oneshot};

pub use super::frame::{arp_frame, arp_reply_sender, parse_ipv4, Received};
use super::frame::{echo_request, is_echo_reply, BROADCAST, ETH_P_ARP};
use super::instance::{Config, Event, Instance, State, Status};
use super::packet::{IPPROTO_VRRP, VRRP_GROUP, VRRP_TTL};

/// How the reference address is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeMethod {
    /// An ARP request on the VRRP interface (the reference is on the link,
    /// as a gateway is).
    Arp,
    /// An ICMP echo request (any reachable address).
    Icmp,
}

/// A reference address (the gateway, say): while it does not answer, the
/// instance is in Fault and never claims master. Before its first verdict
/// the instance does not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub address: Ipv4Addr,
    pub method: ProbeMethod,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failed probes in a row before it counts as unreachable.
    pub fall: u32,
    /// Answered probes in a row before it counts as reachable again.
    pub rise: u32,
}

/// One instance to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    pub name: String,
    pub interface: String,
    pub instance: Config,
    /// Prefix length of each virtual address on the interface.
    pub prefix_len: BTreeMap<Ipv4Addr, u8>,
    /// The advert's source; the interface's first other address if unset.
    pub source: Option<Ipv4Addr>,
    /// Gratuitous ARPs sent for each address on becoming master, and their
    /// spacing.
    pub garp_repeat: u32,
    pub garp_interval: Duration,
    /// A second burst this long after becoming master (keepalived's
    /// garp_master_delay), for switches that were slow to learn.
    pub garp_master_delay: Option<Duration>,
    /// While master, one more gratuitous ARP per address this often, so
    /// neighbours and switches whose entries went stale or wrong (a peer
    /// that briefly claimed the address) learn it again.
    pub garp_refresh: Option<Duration>,
    /// The weight of the interface's own state: 0 (the default) puts the
    /// instance in Fault while the interface is down.
    pub interface_weight: i16,
    /// More interfaces to follow, with their weights.
    pub track_interfaces: Vec<(String, i16)>,
    pub reference: Option<Reference>,
    /// Run on every state change as `SCRIPT INSTANCE NAME STATE PRIORITY`
    /// (keepalived's `notify` arguments; STATE is MASTER, BACKUP, FAULT or
    /// STOP).
    pub notify: Option<PathBuf>,
    /// Rewritten (JSON) on every change of state or counters.
    pub status_file: Option<PathBuf>,
}

/// What the daemon can tell a running instance.
#[derive(Debug)]
pub enum Input {
    /// A tracked check's verdict (declared with its weight at start).
    Tracker {
        name: String,
        up: bool,
    },
    Status(oneshot::Sender<serde_json::Value>),
    /// Leave (priority-0 advert, addresses removed), then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Runs the instance until [`Input::Shutdown`] or the input channel closes
/// (which also shuts down). `trackers` are declared before start-up:
/// (name, weight). Every state change is sent to `states` (once the
/// addresses have been added or removed).
pub async fn run(
    cfg: RunConfig,
    trackers: Vec<(String, i16)>,
    mut inputs: mpsc::Receiver<Input>,
    states: mpsc::UnboundedSender<State>,
) -> io::Result<()> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    let _conn = Abort(tokio::spawn(conn));
    let link = link_by_name(&handle, &cfg.interface).await?;
    let vips = &cfg.instance.addresses;
    let primary = match cfg.source {
        Some(a) => a,
        None => addresses(&handle, link.index)
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .find(|a| !vips.contains(a))
            .ok_or_else(|| {
                io::Error::other(format!("interface {} has no IPv4 address", cfg.interface))
            })?,
    };
    let sock = VrrpSocket::new(&cfg.interface, link.index)?;
    let arp = ArpSocket::new(link.index)?;
    // Left over from a previous run that did not stop cleanly: a backup
    // must not hold them.
    for vip in vips {
        if remove_address(&handle, link.index, *vip).await? {
            tracing::warn!(instance = %cfg.name, %vip, "removed a virtual address left on the interface");
        }
    }
    let (watch, mut link_events) = ospf::linux::watch()?;
    let _watch = Abort(tokio::spawn(watch));
    let mut tracked_links: BTreeMap<u32, String> = BTreeMap::new();

    let start = Instant::now();
    let mut inst = Instance::new(cfg.instance.clone(), primary);
    let iface_tracker = format!("interface {}", cfg.interface);
    inst.add_tracker(start, &iface_tracker, cfg.interface_weight);
    inst.set_tracker(start, &iface_tracker, link.up);
    tracked_links.insert(link.index, iface_tracker);
    for (name, weight) in &cfg.track_interfaces {
        let l = link_by_name(&handle, name).await?;
        let t = format!("interface {name}");
        inst.add_tracker(start, &t, *weight);
        inst.set_tracker(start, &t, l.up);
        tracked_links.insert(l.index, t);
    }
    for (name, weight) in &trackers {
        inst.add_tracker(start, name, *weight);
    }
    let (ref_tx, mut ref_rx) = mpsc::channel::<bool>(4);
    let mut _reference = None;
    let ref_tracker = cfg
        .reference
        .as_ref()
        .map(|r| format!("reference {}", r.address));
    match (&cfg.reference, &ref_tracker) {
        (Some(r), Some(t)) => {
            inst.add_tracker(start, t, 0);
            let prober = Prober::new(r.clone(), link.index, link.mac, primary)?;
            _reference = Some(Abort(tokio::spawn(prober.run(ref_tx))));
            // Started on the first verdict.
        }
        _ => inst.startup(start),
    }
    tracing::info!(
        instance = %cfg.name, interface = %cfg.interface, %primary,
        vrid = cfg.instance.vrid, version = ?cfg.instance.version,
        priority = cfg.instance.priority, "VRRP instance running"
    );

    let mut io = Io {
        cfg: &cfg,
        handle: &handle,
        ifindex: link.index,
        mac: link.mac,
        primary,
        sock: &sock,
        arp: &arp,
        garps: Vec::new(),
        malformed: 0,
        dirty: true,
        states,
        changed_to: None,
    };
    let mut buf = vec![0u8; 65536];
    let mut shutdown_reply: Option<oneshot::Sender<()>> = None;
    loop {
        io.apply(&mut inst).await;
        if let Some(reply) = shutdown_reply.take() {
            let _ = reply.send(());
            return Ok(());
        }
        let deadline = inst
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = sock.recv(&mut buf) => match r {
                Ok(rx) => {
                    if let Some(payload) = buf.get(rx.payload.clone()) {
                        inst.handle_advert(Instant::now(), rx.src, rx.dst, rx.ttl, payload);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    io.malformed += 1;
                    tracing::debug!(error = %e, "malformed IP packet");
                }
                Err(e) => return Err(e),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                inst.handle_timeout(Instant::now());
            }
            Some(up) = ref_rx.recv() => {
                if let Some(t) = &ref_tracker {
                    let now = Instant::now();
                    tracing::info!(instance = %cfg.name, reference = %t, reachable = up, "reference address");
                    inst.set_tracker(now, t, up);
                    io.dirty = true;
                    inst.startup(now);
                }
            }
            Some(ev) = link_events.recv() => {
                if let ospf::linux::LinkEvent::Changed { ifindex, up, .. } = ev {
                    if let Some(t) = tracked_links.get(&ifindex) {
                        tracing::info!(instance = %cfg.name, tracker = %t, up, "interface");
                        inst.set_tracker(Instant::now(), t, up);
                        io.dirty = true;
                    }
                }
            }
            input = inputs.recv() => match input {
                Some(Input::Tracker { name, up }) => {
                    tracing::info!(instance = %cfg.name, tracker = %name, up, "tracked check");
                    inst.set_tracker(Instant::now(), &name, up);
                    io.dirty = true;
                }
                Some(Input::Status(reply)) => {
                    let _ = reply.send(status_json(&cfg, &inst, io.malformed));
                }
                Some(Input::Shutdown(reply)) => {
                    inst.shutdown(Instant::now());
                    shutdown_reply = Some(reply);
                }
                None => {
                    inst.shutdown(Instant::now());
                    let (tx, _) = oneshot::channel();
                    shutdown_reply = Some(tx);
                }
            },
        }
    }
}

/// Aborts a task when dropped.
struct Abort<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Abort<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn status_json(cfg: &RunConfig, inst: &Instance, malformed: u64) -> serde_json::Value {
    let s: Status = inst.status();
    let mut counters: BTreeMap<&str, u64> = inst.counters().clone();
    counters.insert("malformed_ip", malformed);
    serde_json::json!({
        "name": cfg.name,
        "interface": cfg.interface,
        "vrid": cfg.instance.vrid,
        "version": cfg.instance.version.number(),
        "state": s.state.to_string(),
        "priority": s.priority,
        "base_priority": s.base_priority,
        "master": s.master,
        "master_adver_interval_cs": s.master_adver_interval_cs,
        "other_masters": s.other_masters,
        "faults": s.faults,
        "addresses": cfg.instance.addresses,
        "counters": counters,
    })
}

/// What applying the instance's output needs.
struct Io<'a> {
    cfg: &'a RunConfig,
    handle: &'a Handle,
    ifindex: u32,
    mac: [u8; 6],
    primary: Ipv4Addr,
    sock: &'a VrrpSocket,
    arp: &'a ArpSocket,
    /// Gratuitous ARP repeats under way (replaced on each new burst).
    garps: Vec<Abort<()>>,
    malformed: u64,
    /// The status file needs rewriting (a tracker changed).
    dirty: bool,
    states: mpsc::UnboundedSender<State>,
    /// The state entered in this round of events, reported after them.
    changed_to: Option<State>,
}

impl Io<'_> {
    async fn apply(&mut self, inst: &mut Instance) {
        let mut changed = std::mem::take(&mut self.dirty);
        while let Some(t) = inst.poll_transmit() {
            if let Err(e) = self
                .sock
                .send(self.ifindex, self.primary, t.dst, &t.bytes)
                .await
            {
                tracing::debug!(error = %e, dst = %t.dst, "VRRP send failed");
            }
        }
        while let Some(ev) = inst.poll_event() {
            changed = true;
            let name = &self.cfg.name;
            match ev {
                Event::StateChanged { from, to, reason } => {
                    tracing::info!(instance = %name, %from, %to, ?reason, priority = inst.priority(), "VRRP state");
                    self.notify(to, inst.priority());
                    self.changed_to = Some(to);
                }
                Event::AddAddresses(addrs) => {
                    for a in addrs {
                        let len = self.cfg.prefix_len.get(&a).copied().unwrap_or(32);
                        match add_address(self.handle, self.ifindex, a, len).await {
                            Ok(_) => {
                                tracing::info!(instance = %name, vip = %a, "virtual address added")
                            }
                            Err(e) => {
                                tracing::error!(instance = %name, vip = %a, "cannot add: {e}")
                            }
                        }
                    }
                }
                Event::RemoveAddresses(addrs) => {
                    self.garps.clear();
                    for a in addrs {
                        match remove_address(self.handle, self.ifindex, a).await {
                            Ok(_) => {
                                tracing::info!(instance = %name, vip = %a, "virtual address removed")
                            }
                            Err(e) => {
                                tracing::error!(instance = %name, vip = %a, "cannot remove: {e}")
                            }
                        }
                    }
                }
                Event::GratuitousArp(addrs) => self.garp(&addrs),
                Event::OtherMaster {
                    src,
                    priority,
                    yielded,
                } => {
                    tracing::warn!(instance = %name, other = %src, priority, yielded, "another master on the link");
                }
                Event::Priority { from, to } => {
                    tracing::info!(instance = %name, from, to, "VRRP priority changed");
                }
            }
        }
        if let Some(to) = self.changed_to.take() {
            let _ = self.states.send(to);
        }
        if changed {
            if let Some(path) = &self.cfg.status_file {
                let text = status_json(self.cfg, inst, self.malformed).to_string();
                let tmp = path.with_extension("tmp");
                if let Err(e) =
                    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path))
                {
                    tracing::debug!(error = %e, "status file");
                }
            }
        }
    }

    /// One gratuitous ARP per address now, the repeats and the delayed
    /// burst on a task.
    fn garp(&mut self, addrs: &[Ipv4Addr]) {
        let frames: Vec<[u8; 42]> = addrs
            .iter()
            .map(|a| arp_frame(self.mac, *a, [0; 6], *a))
            .collect();
        for f in &frames {
            if let Err(e) = self.arp.send(f) {
                tracing::warn!(error = %e, "gratuitous ARP");
            }
        }
        let (repeat, interval, delay, refresh) = (
            self.cfg.garp_repeat,
            self.cfg.garp_interval,
            self.cfg.garp_master_delay,
            self.cfg.garp_refresh,
        );
        let arp = self.arp.try_clone();
        let Ok(arp) = arp else { return };
        // A new burst replaces the one under way (and its refresh loop).
        self.garps.clear();
        self.garps.push(Abort(tokio::spawn(async move {
            let send_all = || {
                for f in &frames {
                    let _ = arp.send(f);
                }
            };
            // `n` more, `interval` apart.
            let burst = |n: u32| async move {
                for _ in 0..n {
                    tokio::time::sleep(interval).await;
                    send_all();
                }
            };
            // The delay counts from the takeover, not from the end of the
            // first burst (keepalived's garp_master_delay).
            let began = tokio::time::Instant::now();
            burst(repeat.saturating_sub(1)).await;
            let delayed = async {
                if let Some(d) = delay {
                    tokio::time::sleep_until(began + d).await;
                    send_all();
                    burst(repeat.saturating_sub(1)).await;
                }
            };
            // Until the addresses are removed (which aborts this task).
            let refreshing = async {
                if let Some(every) = refresh {
                    loop {
                        tokio::time::sleep(every).await;
                        send_all();
                    }
                }
            };
            tokio::join!(delayed, refreshing);
        })));
    }

    fn notify(&self, state: State, priority: u8) {
        let Some(script) = &self.cfg.notify else {
            return;
        };
        let word = match state {
            State::Master => "MASTER",
            State::Backup => "BACKUP",
            State::Fault => "FAULT",
            State::Initialize => "STOP",
        };
        let mut cmd = tokio::process::Command::new(script);
        cmd.args(["INSTANCE", &self.cfg.name, word, &priority.to_string()])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(false);
        match cmd.spawn() {
            Ok(mut child) => {
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            Err(e) => tracing::warn!(script = %script.display(), "notify: {e}"),
        }
    }
}

// ---- rtnetlink ----

struct Link {
    index: u32,
    mac: [u8; 6],
    up: bool,
}

fn nl(what: String) -> impl FnOnce(rtnetlink::Error) -> io::Error {
    move |e| io::Error::other(format!("{what}: {e}"))
}

async fn link_by_name(h: &Handle, name: &str) -> io::Result<Link> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    let msg = links
        .try_next()
        .await
        .map_err(nl(format!("find interface {name}")))?
        .ok_or_else(|| io::Error::other(format!("no interface {name}")))?;
    let mut mac = [0u8; 6];
    let mut oper_up = false;
    for a in &msg.attributes {
        match a {
            LinkAttribute::Address(m) if m.len() == 6 => mac.copy_from_slice(m),
            LinkAttribute::OperState(s) => oper_up = *s == rtnetlink::packet_route::link::State::Up,
            _ => {}
        }
    }
    let f = msg.header.flags;
    Ok(Link {
        index: msg.header.index,
        mac,
        up: f.contains(LinkFlags::Up) && (f.contains(LinkFlags::Running) || oper_up),
    })
}

fn v4_of(msg: &AddressMessage) -> Option<Ipv4Addr> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(IpAddr::V4(v)) => Some(*v),
        _ => None,
    })
}

async fn address_messages(h: &Handle, index: u32) -> io::Result<Vec<AddressMessage>> {
    let mut req = h.address().get().set_link_index_filter(index);
    req.message_mut().header.family = AddressFamily::Inet;
    let mut dump = req.execute();
    let mut out = Vec::new();
    while let Some(msg) = dump.try_next().await.map_err(nl("list addresses".into()))? {
        if msg.header.index == index {
            out.push(msg);
        }
    }
    Ok(out)
}

async fn addresses(h: &Handle, index: u32) -> io::Result<Vec<(Ipv4Addr, u8)>> {
    Ok(address_messages(h, index)
        .await?
        .iter()
        .filter_map(|m| v4_of(m).map(|a| (a, m.header.prefix_len)))
        .collect())
}

/// Adds `addr/len`; false when it was there already.
async fn add_address(h: &Handle, index: u32, addr: Ipv4Addr, len: u8) -> io::Result<bool> {
    if addresses(h, index).await?.iter().any(|(a, _)| *a == addr) {
        return Ok(false);
    }
    h.address()
        .add(index, addr.into(), len)
        .execute()
        .await
        .map_err(nl(format!("add {addr}/{len}")))?;
    Ok(true)
}

/// Removes `addr`; false when it was not there.
async fn remove_address(h: &Handle, index: u32, addr: Ipv4Addr) -> io::Result<bool> {
    for msg in address_messages(h, index).await? {
        if v4_of(&msg) == Some(addr) {
            h.address()
                .del(msg)
                .execute()
                .await
                .map_err(nl(format!("remove {addr}")))?;
            return Ok(true);
        }
    }
    Ok(false)
}

// ---- the VRRP socket ----

/// A raw socket for IP protocol 112, bound to one interface.
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
}

impl VrrpSocket {
    pub fn new(ifname: &str, ifindex: u32) -> io::Result<VrrpSocket> {
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )?;
        sock.set_nonblocking(true)?;
        sock.bind_device(Some(ifname.as_bytes()))?;
        setsockopt(&sock, sockopt::Ipv4PacketInfo, &true)?;
        sock.set_multicast_loop_v4(false)?;
        sock.set_multicast_all_v4(false)?;
        // RFC 5798 5.1.1.3: TTL 255, so receivers can tell the packet
        // never crossed a router.
        sock.set_multicast_ttl_v4(u32::from(VRRP_TTL))?;
        sock.set_ttl_v4(u32::from(VRRP_TTL))?;
        sock.set_tos_v4(0xc0)?;
        sock.join_multicast_v4_n(&VRRP_GROUP, &InterfaceIndexOrAddress::Index(ifindex))?;
        // SAFETY: the Socket owns its descriptor until dropped with the
        // AsyncFd; nothing closes or replaces it meanwhile.
        let fd = unsafe {
            AsyncFd::register_with_interest(sock, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(|e| e.into_parts().1)?;
        Ok(VrrpSocket { fd })
    }

    /// The next datagram; errors of kind InvalidData concern that datagram
    /// only.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| {
                let mut iov = [IoSliceMut::new(buf)];
                let msg = recvmsg::<SockaddrIn>(
                    fd.get_ref().as_raw_fd(),
                    &mut iov,
                    None,
                    MsgFlags::empty(),
                )
                .map_err(io::Error::from)?;
                if msg.flags.contains(MsgFlags::MSG_TRUNC) {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated"));
                }
                Ok(msg.bytes)
            }) {
                Ok(Ok(n)) => {
                    let pkt = buf.get(..n).unwrap_or_default();
                    return parse_ipv4(pkt)
                        .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m));
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn send(
        &self,
        ifindex: u32,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> io::Result<()> {
        let info = libc::in_pktinfo {
            ipi_ifindex: i32::try_from(ifindex)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex"))?,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from_ne_bytes(src.octets()),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
        loop {
            let mut guard = self.fd.writable().await?;
            let sent = guard.try_io(|fd| {
                let iov = [IoSlice::new(payload)];
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                sendmsg(
                    fd.get_ref().as_raw_fd(),
                    &iov,
                    &cmsg,
                    MsgFlags::empty(),
                    Some(&to),
                )
                .map_err(io::Error::from)
            });
            match sent {
                Ok(r) => return r.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }
}

// ---- ARP over AF_PACKET ----

/// An AF_PACKET socket for ARP on one interface.
pub struct ArpSocket {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
}

fn sockaddr_ll(ifindex: u32) -> io::Result<libc::sockaddr_ll> {
    // SAFETY: sockaddr_ll is plain old data; all zeroes is valid.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ARP.to_be();
    sll.sll_ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex"))?;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&BROADCAST);
    Ok(sll)
}

impl ArpSocket {
    pub fn new(ifindex: u32) -> io::Result<ArpSocket> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw: RawFd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ARP.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sll = sockaddr_ll(ifindex)?;
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the OwnedFd stays open and the same until dropped with
        // the AsyncFd.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(ArpSocket { fd, ifindex })
    }

    fn try_clone(&self) -> io::Result<ArpSocket> {
        ArpSocket::new(self.ifindex)
    }

    /// Sends one frame (a full Ethernet frame) to the broadcast address.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sll = sockaddr_ll(self.ifindex)?;
        // SAFETY: the buffer and the address are valid for the lengths
        // given for the duration of the call.
        let r = unsafe {
            libc::sendto(
                self.fd.get_ref().as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The next frame received.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            // SAFETY: `buf` is valid for writes of its length.
            match guard.try_io(|fd| {
                let r = unsafe {
                    libc::recv(
                        fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                    )
                };
                if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(r as usize)
                }
            }) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

// ---- reference address probes ----

struct Prober {
    r: Reference,
    arp: Option<ArpSocket>,
    icmp: Option<AsyncFd<Socket>>,
    mac: [u8; 6],
    primary: Ipv4Addr,
    seq: u16,
}

impl Prober {
    fn new(r: Reference, ifindex: u32, mac: [u8; 6], primary: Ipv4Addr) -> io::Result<Prober> {
        let (arp, icmp) = match r.method {
            ProbeMethod::Arp => (Some(ArpSocket::new(ifindex)?), None),
            ProbeMethod::Icmp => {
                let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
                s.set_nonblocking(true)?;
                // SAFETY: as for the VRRP socket.
                let fd = unsafe { AsyncFd::register_with_interest(s, Interest::READABLE) }
                    .map_err(|e| e.into_parts().1)?;
                (None, Some(fd))
            }
        };
        Ok(Prober {
            r,
            arp,
            icmp,
            mac,
            primary,
            seq: 0,
        })
    }

    async fn run(mut self, verdicts: mpsc::Sender<bool>) {
        let mut ticker = tokio::time::interval(self.r.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut ok_run, mut fail_run) = (0u32, 0u32);
        let mut state: Option<bool> = None;
        loop {
            ticker.tick().await;
            let ok = tokio::time::timeout(self.r.timeout, self.probe())
                .await
                .unwrap_or(Ok(false))
                .unwrap_or(false);
            if ok {
                ok_run += 1;
                fail_run = 0;
            } else {
                fail_run += 1;
                ok_run = 0;
            }
            // The first verdict comes from the first probe either way, so
            // the instance starts at once.
            let next = match state {
                None => Some(ok),
                Some(false) if ok_run >= self.r.rise => Some(true),
                Some(true) if fail_run >= self.r.fall => Some(false),
                _ => None,
            };
            if let Some(v) = next {
                state = Some(v);
                if verdicts.send(v).await.is_err() {
                    return;
                }
            }
        }
    }

    async fn probe(&mut self) -> io::Result<bool> {
        let target = self.r.address;
        if let Some(arp) = &self.arp {
            arp.send(&arp_frame(self.mac, self.primary, [0; 6], target))?;
            let mut buf = [0u8; 128];
            loop {
                let n = arp.recv(&mut buf).await?;
                if arp_reply_sender(buf.get(..n).unwrap_or_default()) == Some(target) {
                    return Ok(true);
                }
            }
        }
        let Some(icmp) = &self.icmp else {
            return Ok(false);
        };
        self.seq = self.seq.wrapping_add(1);
        let id = (std::process::id() & 0xffff) as u16;
        let req = echo_request(id, self.seq);
        let to = socket2::SockAddr::from(SocketAddrV4::new(target, 0));
        icmp.get_ref().send_to(&req, &to)?;
        let mut buf = [mem::MaybeUninit::<u8>::uninit(); 1500];
        loop {
            let mut guard = icmp.readable().await?;
            let n = match guard.try_io(|fd| fd.get_ref().recv(&mut buf)) {
                Ok(r) => r?,
                Err(_would_block) => continue,
            };
            // SAFETY: recv initialised the first n bytes.
            let pkt: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            if is_echo_reply(&pkt, target, id, self.seq) {
                return Ok(true);
            }
        }
    }
}
