//! Links, addresses and routes inside lab namespaces, over rtnetlink.
//!
//! Every call runs on a thread that has entered the namespace, with its own
//! single-threaded runtime, so the netlink socket belongs to that namespace.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::TryStreamExt;
use ipnetwork::Ipv4Network;
use rtnetlink::packet_core::{
    NetlinkBuffer, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::netns;

fn nl_err(what: String, e: rtnetlink::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Runs an rtnetlink session inside the namespace at `ns`.
pub fn with_handle<T, F, Fut>(ns: &Path, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    netns::run_in(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            let task = tokio::spawn(conn);
            let out = f(handle).await;
            task.abort();
            out
        })
    })
}

async fn index_of(handle: &Handle, name: &str) -> io::Result<u32> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(l.header.index),
        Ok(None) => Err(io::Error::other(format!("no interface {name}"))),
        Err(e) => Err(nl_err(format!("find interface {name}"), e)),
    }
}

async fn set_up(handle: &Handle, name: &str) -> io::Result<()> {
    let index = index_of(handle, name).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| nl_err(format!("set {name} up"), e))
}

/// Brings up `lo`.
pub fn loopback_up(ns: &Path) -> io::Result<()> {
    with_handle(ns, |h| async move { set_up(&h, "lo").await })
}

/// Creates a veth pair whose ends are `a_if` in namespace `a` and `b_if` in
/// namespace `b`. The pair is made inside `a` and one end moved to `b` with
/// its final name in the same request, so no leg ever lives in the root
/// namespace. Both ends are left down.
///
/// Each end gets its own MTU (`None`: the kernel's default), so a lab can
/// build an MTU mismatch.
pub fn veth(
    a: &Path,
    a_if: &str,
    a_mtu: Option<u32>,
    b: &Path,
    b_if: &str,
    b_mtu: Option<u32>,
) -> io::Result<()> {
    let b_file = File::open(b)?;
    let (a_if, b_if) = (a_if.to_string(), b_if.to_string());
    with_handle(a, move |h| async move {
        // A temporary name unique inside `a`: the peer lives there only
        // between these two requests.
        let tmp = "acd-veth-tmp";
        let mut msg = LinkVeth::new(&a_if, tmp);
        if let Some(m) = a_mtu {
            msg = msg.mtu(m);
        }
        h.link()
            .add(msg.build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("add veth {a_if}"), e))?;
        let peer = index_of(&h, tmp).await?;
        let mut mv = LinkUnspec::new_with_index(peer)
            .setns_by_fd(b_file.as_raw_fd())
            .name(b_if.clone());
        if let Some(m) = b_mtu {
            mv = mv.mtu(m);
        }
        h.link()
            .set(mv.build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("move veth peer {b_if}"), e))
    })
}

/// Creates bridge `name` (up) in namespace `ns`.
pub fn bridge(ns: &Path, name: &str) -> io::Result<()> {
    let name = name.to_string();
    with_handle(ns, move |h| async move {
        h.link()
            .add(LinkBridge::new(&name).build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("add bridge {name}"), e))?;
        set_up(&h, &name).await
    })
}

/// Enslaves `port` to `bridge` and brings the port up.
pub fn bridge_port(ns: &Path, bridge: &str, port: &str) -> io::Result<()> {
    let (bridge, port) = (bridge.to_string(), port.to_string());
    with_handle(ns, move |h| async move {
        let br = index_of(&h, &bridge).await?;
        let p = index_of(&h, &port).await?;
        h.link()
            .set(LinkUnspec::new_with_index(p).controller(br).up().build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("attach {port} to {bridge}"), e))
    })
}

/// Adds an address to an interface and brings the interface up.
pub fn address(ns: &Path, ifname: &str, addr: Ipv4Network) -> io::Result<()> {
    let ifname = ifname.to_string();
    with_handle(ns, move |h| async move {
        let index = index_of(&h, &ifname).await?;
        h.address()
            .add(index, addr.ip().into(), addr.prefix())
            .execute()
            .await
            .map_err(|e| nl_err(format!("add {addr} to {ifname}"), e))?;
        set_up(&h, &ifname).await
    })
}

/// The IPv4 addresses on interface `ifname` in namespace `ns`: one
/// rtnetlink dump on a thread of the namespace, no process started (cheap
/// enough to poll every few milliseconds while timing a VRRP takeover).
pub fn ipv4_addresses(ns: &Path, ifname: &str) -> io::Result<Vec<Ipv4Addr>> {
    use rtnetlink::packet_route::address::AddressAttribute;
    let ifname = ifname.to_string();
    with_handle(ns, move |h| async move {
        let index = index_of(&h, &ifname).await?;
        let mut dump = h.address().get().set_link_index_filter(index).execute();
        let mut out = Vec::new();
        while let Some(m) = dump
            .try_next()
            .await
            .map_err(|e| nl_err(format!("dump addresses of {ifname}"), e))?
        {
            for a in &m.attributes {
                if let AddressAttribute::Address(std::net::IpAddr::V4(v4)) = a {
                    out.push(*v4);
                }
            }
        }
        Ok(out)
    })
}

/// The link-layer address (`aa:bb:cc:dd:ee:ff`) of the neighbour entry for
/// `addr` in namespace `ns`, if the entry has one (as `ip neigh show ADDR`
/// lists it), over rtnetlink.
pub fn neighbour_lladdr(ns: &Path, addr: Ipv4Addr) -> io::Result<Option<String>> {
    use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
    with_handle(ns, move |h| async move {
        let mut dump = h
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Inet)
            .execute();
        let mut found = None;
        while let Some(m) = dump
            .try_next()
            .await
            .map_err(|e| nl_err("dump neighbours".into(), e))?
        {
            let ours = m
                .attributes
                .iter()
                .any(|a| matches!(a, NeighbourAttribute::Destination(NeighbourAddress::Inet(d)) if *d == addr));
            if !ours || found.is_some() {
                continue;
            }
            found = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(mac) => Some(
                    mac.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
                _ => None,
            });
        }
        Ok(found)
    })
}

pub fn default_route(ns: &Path, gateway: Ipv4Addr) -> io::Result<()> {
    with_handle(ns, move |h| async move {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
            .gateway(gateway)
            .build();
        h.route()
            .add(route)
            .execute()
            .await
            .map_err(|e| nl_err(format!("default route via {gateway}"), e))
    })
}

/// Bytes of route requests per `sendmsg` in [`blackhole_routes`]: small
/// enough that the kernel's answers to a batch whose every request fails
/// still fit the socket's receive buffer.
const BULK_BATCH_BYTES: usize = 16 * 1024;

/// Adds a blackhole route (protocol `static`, main table) for each prefix
/// in namespace `ns`, fast: requests go in batches of many messages per
/// `sendmsg` on one netlink socket, and only each batch's last message
/// asks for an acknowledgement (the kernel reports failures of the others
/// all the same). 50,000 routes take about a quarter of a second. The
/// first failure is returned; routes added before it stay.
pub fn blackhole_routes(ns: &Path, prefixes: Vec<Ipv4Network>) -> io::Result<()> {
    netns::run_in(ns, move || {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Errors carry only the request's header, not the whole request,
        // and have room (the kernel caps this at net.core.rmem_max).
        sock.set_cap_ack(true)?;
        sock.set_rx_buf_sz(1_i32 << 20)?;
        let mut batch: Vec<u8> = Vec::with_capacity(BULK_BATCH_BYTES + 256);
        let mut rx = vec![0u8; 64 * 1024];
        let last = prefixes.len();
        for (i, p) in prefixes.iter().enumerate() {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(p.ip(), p.prefix())
                .kind(RouteType::BlackHole)
                .protocol(RouteProtocol::Static)
                .build();
            let mut msg = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(route));
            msg.header.flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
            // Sequence numbers index `prefixes` (plus one), for errors.
            msg.header.sequence_number = u32::try_from(i + 1)
                .map_err(|_| io::Error::other("too many routes for one call"))?;
            let end = batch.len() + msg.buffer_len() >= BULK_BATCH_BYTES || i + 1 == last;
            if end {
                msg.header.flags |= NLM_F_ACK;
            }
            msg.finalize();
            let at = batch.len();
            batch.resize(at + msg.buffer_len(), 0);
            msg.serialize(&mut batch[at..]);
            if end {
                sock.send(&batch, 0)?;
                batch.clear();
                await_ack(&sock, &mut rx, msg.header.sequence_number, &prefixes)?;
            }
        }
        Ok(())
    })
}

/// Reads the kernel's answers to a batch until the acknowledgement of
/// `seq`; the first error reported on the way is returned.
fn await_ack(sock: &Socket, rx: &mut [u8], seq: u32, prefixes: &[Ipv4Network]) -> io::Result<()> {
    let mut failed: Option<io::Error> = None;
    loop {
        let n = sock
            .recv(&mut &mut rx[..], 0)
            .map_err(|e| io::Error::other(format!("netlink answers to route requests: {e}")))?;
        let mut at = 0;
        while at < n {
            let frame = rx.get(at..n).unwrap_or_default();
            let len = NetlinkBuffer::new_checked(frame)
                .map(|b| b.length() as usize)
                .map_err(|e| io::Error::other(format!("netlink answer: {e}")))?;
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(
                frame.get(..len).unwrap_or_default(),
            )
            .map_err(|e| io::Error::other(format!("netlink answer: {e}")))?;
            at += len.max(1).next_multiple_of(4);
            let NetlinkPayload::Error(e) = msg.payload else {
                continue;
            };
            let s = msg.header.sequence_number;
            if e.code.is_some() && failed.is_none() {
                let what = usize::try_from(s)
                    .ok()
                    .and_then(|s| prefixes.get(s.wrapping_sub(1)))
                    .map_or_else(|| format!("request {s}"), ToString::to_string);
                failed = Some(io::Error::other(format!("blackhole {what}: {}", e.to_io())));
            }
            if s == seq {
                return failed.map_or(Ok(()), Err);
            }
        }
    }
}

/// A kernel FIB entry: the nexthops of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibEntry {
    pub prefix: Ipv4Network,
    pub protocol: String,
    pub nexthops: Vec<Nexthop>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nexthop {
    pub gateway: Option<Ipv4Addr>,
    pub ifname: String,
}

impl std::fmt::Display for Nexthop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.gateway {
            Some(g) => write!(f, "via {g} dev {}", self.ifname),
            None => write!(f, "dev {}", self.ifname),
        }
    }
}

fn gateway_of(attrs: &[RouteAttribute]) -> Option<Ipv4Addr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
        _ => None,
    })
}

fn oif_of(attrs: &[RouteAttribute]) -> Option<u32> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

fn entry_from(
    msg: &RouteMessage,
    names: &std::collections::HashMap<u32, String>,
) -> Option<FibEntry> {
    let dst = msg.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
        _ => None,
    });
    let dst = dst.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let prefix = Ipv4Network::new(dst, msg.header.destination_prefix_length).ok()?;
    let name = |i: u32| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"));
    let mut nexthops: Vec<Nexthop> = msg
        .attributes
        .iter()
        .filter_map(|a| match a {
            RouteAttribute::MultiPath(hops) => Some(hops),
            _ => None,
        })
        .flatten()
        .map(|nh| Nexthop {
            gateway: gateway_of(&nh.attributes),
            ifname: name(nh.interface_index),
        })
        .collect();
    if nexthops.is_empty() {
        if let Some(oif) = oif_of(&msg.attributes) {
            nexthops.push(Nexthop {
                gateway: gateway_of(&msg.attributes),
                ifname: name(oif),
            });
        }
    }
    nexthops.sort();
    Some(FibEntry {
        prefix,
        protocol: format!("{:?}", msg.header.protocol).to_lowercase(),
        nexthops,
    })
}

/// The main-table route for exactly `prefix` in namespace `ns`, if any. With
/// nexthop objects (FRR) the kernel still reports the paths in RTA_MULTIPATH.
pub fn fib_entry(ns: &Path, prefix: Ipv4Network) -> io::Result<Option<FibEntry>> {
    with_handle(ns, move |h| async move { fib_entry_on(&h, prefix).await })
}

/// [`fib_entry`] over an open rtnetlink handle (of the namespace it was
/// made in).
async fn fib_entry_on(h: &Handle, prefix: Ipv4Network) -> io::Result<Option<FibEntry>> {
    let mut names = std::collections::HashMap::new();
    let mut links = h.link().get().execute();
    while let Some(l) = links
        .try_next()
        .await
        .map_err(|e| nl_err("dump links".into(), e))?
    {
        for a in &l.attributes {
            if let LinkAttribute::IfName(n) = a {
                names.insert(l.header.index, n.clone());
            }
        }
    }
    let mut dump = RouteMessageBuilder::<Ipv4Addr>::new().build();
    dump.header.address_family = AddressFamily::Inet;
    let mut routes = h.route().get(dump).execute();
    let mut found = None;
    while let Some(r) = routes
        .try_next()
        .await
        .map_err(|e| nl_err("dump routes".into(), e))?
    {
        if found.is_some()
            || r.header.table != rtnetlink::packet_route::route::RouteHeader::RT_TABLE_MAIN
        {
            // Read the dump to its end all the same.
            continue;
        }
        if let Some(e) = entry_from(&r, &names) {
            if e.prefix == prefix {
                found = Some(e);
            }
        }
    }
    Ok(found)
}

/// One state of a watched route, as a [`FibWatch`] saw it appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibChange {
    /// When the poll that first saw this state began its dump.
    pub at: Instant,
    /// `at` on the wall clock.
    pub wall: SystemTime,
    /// When the previous poll (which still saw the state before) began:
    /// the change happened in `(before, at + dump time]`. Equal to `at`
    /// for the first state.
    pub before: Instant,
    /// The route's nexthops, sorted; empty when there is no route.
    pub nexthops: Vec<Nexthop>,
}

impl FibChange {
    /// The nexthops' gateways, sorted.
    pub fn gateways(&self) -> Vec<Ipv4Addr> {
        self.nexthops.iter().filter_map(|h| h.gateway).collect()
    }
}

/// A thread inside a namespace that polls the kernel's route to one
/// prefix every `period` over one rtnetlink socket and records each
/// change of its nexthop set with the instant it saw it. Stops when
/// dropped.
pub struct FibWatch {
    pub prefix: Ipv4Network,
    pub period: Duration,
    changes: Arc<Mutex<Vec<FibChange>>>,
    polls: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl FibWatch {
    /// Starts watching `prefix` in namespace `ns`; returns once the first
    /// state (route or none) is recorded.
    pub fn start(ns: &Path, prefix: Ipv4Network, period: Duration) -> io::Result<FibWatch> {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, p, st) = (changes.clone(), polls.clone(), stop.clone());
        let thread = netns::spawn_in(ns, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let (conn, handle, _) = rtnetlink::new_connection()?;
                let task = tokio::spawn(conn);
                let out = watch_loop(&handle, prefix, period, &c, &p, &st).await;
                task.abort();
                out
            })
        })?;
        let mut w = FibWatch {
            prefix,
            period,
            changes,
            polls,
            stop,
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while w.polls.load(Ordering::Relaxed) == 0 {
            if w.thread.as_ref().is_some_and(|t| t.is_finished()) || Instant::now() > deadline {
                let r = w.thread.take().map(|t| t.join());
                return Err(match r {
                    Some(Ok(Err(e))) => e,
                    _ => io::Error::other(format!("FIB watch of {prefix} did not start")),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(w)
    }

    /// Every state seen so far, oldest first (the first is the state at
    /// the start).
    pub fn changes(&self) -> Vec<FibChange> {
        self.changes.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The latest state seen.
    pub fn current(&self) -> Option<FibChange> {
        self.changes.lock().ok().and_then(|c| c.last().cloned())
    }

    /// Polls made so far.
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for a state first seen at or after `since`
    /// whose nexthops satisfy `want`; returns the first such state.
    pub fn wait_for(
        &self,
        since: Instant,
        timeout: Duration,
        want: impl Fn(&FibChange) -> bool,
    ) -> Option<FibChange> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .changes
                .lock()
                .ok()
                .and_then(|c| c.iter().find(|x| x.at >= since && want(x)).cloned());
            if found.is_some() {
                return found;
            }
            if Instant::now() >= deadline || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits up to `timeout` until the current state has `n` nexthops;
    /// returns that state (which may be older than this call).
    pub fn wait_count(&self, n: usize, timeout: Duration) -> Option<FibChange> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.current().filter(|c| c.nexthops.len() == n) {
                return Some(c);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the thread; returns every state seen (or the error that
    /// ended the watch early).
    pub fn stop(mut self) -> io::Result<Vec<FibChange>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| io::Error::other("FIB watch thread panicked"))??;
        }
        Ok(self.changes())
    }
}

impl Drop for FibWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn watch_loop(
    h: &Handle,
    prefix: Ipv4Network,
    period: Duration,
    changes: &Mutex<Vec<FibChange>>,
    polls: &AtomicU64,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut last: Option<Vec<Nexthop>> = None;
    let mut prev_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        let wall = SystemTime::now();
        let nexthops = fib_entry_on(h, prefix)
            .await?
            .map(|e| e.nexthops)
            .unwrap_or_default();
        if last.as_ref() != Some(&nexthops) {
            if let Ok(mut c) = changes.lock() {
                c.push(FibChange {
                    at,
                    wall,
                    before: prev_at.unwrap_or(at),
                    nexthops: nexthops.clone(),
                });
            }
            last = Some(nexthops);
        }
        prev_at = Some(at);
        polls.fetch_add(1, Ordering::Relaxed);
        let next = at + period;
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        }
    }
    Ok(())
}
