//! Measured scenarios on a running lab: convergence, request spread and
//! failover. Tests assert on their results; `anycastd-lab demo` prints them.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::topology::{Implementation, Role, Topology, MAX_EXTERNAL_ROUTES};
use crate::traffic::{LoadReport, LoadSpec};
use crate::{wait_for, Lab, LabError, LabOptions, OspfNeighbor};
use ospf::packet::PacketBody;

/// The nodes a classic or anycast scenario works with, found by role.
#[derive(Debug, Clone)]
pub struct Cast {
    pub router: String,
    pub client: String,
    pub directors: Vec<String>,
    pub vip: Ipv4Addr,
}

impl Cast {
    pub fn of(lab: &Lab) -> Result<Cast, LabError> {
        let t = &lab.topology;
        let first = |r: Role| t.nodes.iter().find(|n| n.role == r).map(|n| n.name.clone());
        let missing = |what: &str| LabError::Missing(format!("a {what} in topology {}", t.name));
        Ok(Cast {
            router: first(Role::Router).ok_or_else(|| missing("router"))?,
            client: first(Role::Client).ok_or_else(|| missing("client"))?,
            directors: t
                .nodes
                .iter()
                .filter(|n| n.role == Role::Director)
                .map(|n| n.name.clone())
                .collect(),
            vip: *t.vips().first().ok_or_else(|| missing("VIP"))?,
        })
    }
}

/// Waits until `router` has `want` Full neighbours; returns them.
pub fn wait_full(
    lab: &Lab,
    router: &str,
    want: usize,
    timeout: Duration,
) -> Result<Vec<OspfNeighbor>, LabError> {
    let mut last = Vec::new();
    let got = wait_for(timeout, Duration::from_millis(100), || {
        last = lab.ospf_neighbors(router).unwrap_or_default();
        let full: Vec<_> = last.iter().filter(|n| n.state == "Full").cloned().collect();
        (full.len() >= want).then_some(full)
    });
    got.ok_or_else(|| {
        let seen: Vec<String> = last
            .iter()
            .map(|n| format!("{} {}", n.router_id, n.state))
            .collect();
        LabError::Missing(format!(
            "{want} Full neighbours on {router} within {timeout:?} (seen: {})",
            if seen.is_empty() {
                "none".into()
            } else {
                seen.join(", ")
            }
        ))
    })
}

/// Time until `router`'s route to `vip` has exactly `want` nexthops.
pub fn wait_nexthops(
    lab: &Lab,
    router: &str,
    vip: Ipv4Addr,
    want: usize,
    timeout: Duration,
) -> Result<Duration, LabError> {
    let start = Instant::now();
    let mut last = 0;
    wait_for(timeout, Duration::from_millis(10), || {
        last = lab.vip_nexthops(router, vip).unwrap_or(0);
        (last == want).then(|| start.elapsed())
    })
    .ok_or_else(|| {
        LabError::Missing(format!(
            "{want} nexthops for {vip} on {router} within {timeout:?} (it has {last})"
        ))
    })
}

/// A request loop of `count` requests to the VIP on port 80, one new
/// connection (so a new source port) each.
pub fn spread_spec(vip: Ipv4Addr, count: usize) -> LoadSpec {
    LoadSpec {
        target: SocketAddr::from((vip, 80)),
        count,
        max_duration: Duration::from_secs(30),
        timeout: Duration::from_millis(500),
        interval: Duration::ZERO,
    }
}

/// What a director crash did.
#[derive(Debug, Clone)]
pub struct Failover {
    pub director: String,
    /// From the kill to the router's FIB losing the nexthop.
    pub detection: Duration,
    /// The client's requests during the whole scenario.
    pub load: LoadReport,
    /// When, relative to the load's start, the daemon was killed.
    pub killed_at: Duration,
}

/// Kills `director`'s routing daemon under a client load of one request
/// every 10 ms (100 ms timeout) and measures how long the router keeps the
/// dead nexthop.
pub fn routing_crash(
    lab: &Lab,
    cast: &Cast,
    director: &str,
    timeout: Duration,
) -> Result<Failover, LabError> {
    let before = lab.vip_nexthops(&cast.router, cast.vip)?;
    if before < 2 {
        return Err(LabError::Missing(format!(
            "an ECMP route before the crash (have {before} nexthops)"
        )));
    }
    let lead = Duration::from_millis(500);
    let spec = LoadSpec {
        target: SocketAddr::from((cast.vip, 80)),
        count: 3000,
        max_duration: lead + timeout + Duration::from_secs(1),
        timeout: Duration::from_millis(100),
        interval: Duration::from_millis(10),
    };
    let load = lab.requests_background(&cast.client, spec)?;
    let load_start = Instant::now();
    std::thread::sleep(lead);
    let killed_at = load_start.elapsed();
    lab.kill_routing(director)?;
    let detection = wait_nexthops(lab, &cast.router, cast.vip, before - 1, timeout);
    let report = load
        .join()
        .map_err(|_| LabError::Missing("request thread ended normally".into()))?
        .map_err(|source| LabError::Io {
            context: "requests".into(),
            source,
        })?;
    Ok(Failover {
        director: director.to_string(),
        detection: detection?,
        load: report,
        killed_at,
    })
}

/// The README's main job on a classic topology: convergence, the spread of
/// 200 requests, and the failover after one director's routing daemon dies.
pub fn demo(lab: &mut Lab, out: &mut dyn FnMut(&str)) -> Result<(), LabError> {
    let cast = Cast::of(lab)?;
    let start = lab.routing_started.unwrap_or_else(Instant::now);
    let n = cast.directors.len();
    out(&format!(
        "lab {}: {} nodes up; waiting for {n} directors to be Full with {}",
        lab.name,
        lab.topology.nodes.len(),
        cast.router
    ));
    wait_full(lab, &cast.router, n, Duration::from_secs(60))?;
    wait_nexthops(lab, &cast.router, cast.vip, n, Duration::from_secs(60))?;
    out(&format!(
        "{}'s route to {} has {n} nexthops, {:.1} s after the daemons started",
        cast.router,
        cast.vip,
        start.elapsed().as_secs_f64()
    ));
    if let Some(e) = lab.vip_route(&cast.router, cast.vip)? {
        for h in &e.nexthops {
            out(&format!("  nexthop {h}"));
        }
    }
    let spread = lab.requests(&cast.client, spread_spec(cast.vip, 200))?;
    out(&format!(
        "200 requests from {}: {}",
        cast.client,
        spread.summary()
    ));
    let sick = cast
        .directors
        .get(1)
        .cloned()
        .ok_or_else(|| LabError::Missing("a second director".into()))?;
    out(&format!(
        "stopping {sick}'s HTTP server while its routing daemon keeps advertising the VIP..."
    ));
    lab.stop_http(&sick)?;
    let spec = LoadSpec {
        count: 200,
        max_duration: Duration::from_secs(5),
        timeout: Duration::from_millis(100),
        interval: Duration::from_millis(5),
        ..spread_spec(cast.vip, 200)
    };
    let blackhole = lab.requests(&cast.client, spec)?;
    out(&format!(
        "the classic blackhole: {} still routes to {sick}; requests: {}",
        cast.router,
        blackhole.summary()
    ));
    lab.start_http(&sick)?;
    let victim = cast
        .directors
        .first()
        .cloned()
        .ok_or_else(|| LabError::Missing("a director".into()))?;
    out(&format!(
        "killing {victim}'s routing daemon (SIGKILL) under a load of one request every 10 ms..."
    ));
    let f = routing_crash(
        lab,
        &cast,
        &victim,
        dead_interval(lab, &victim) + Duration::from_secs(2),
    )?;
    let mut line = String::new();
    let _ = write!(
        line,
        "{} dropped {victim}'s nexthop {:.2} s after the kill; requests: {}",
        cast.router,
        f.detection.as_secs_f64(),
        f.load.summary()
    );
    out(&line);
    Ok(())
}

/// The longest OSPF dead interval on `node`'s interfaces.
pub fn dead_interval(lab: &Lab, node: &str) -> Duration {
    let secs = lab
        .topology
        .interfaces(node)
        .filter_map(|e| e.ospf.as_ref().map(|o| o.dead))
        .max()
        .unwrap_or(40);
    Duration::from_secs(u64::from(secs))
}

/// Memory and CPU of a set of processes at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sum of `VmRSS` (/proc/PID/status), KiB.
    pub rss_kib: u64,
    /// The anonymous part of it (`RssAnon`: heap and stacks, not the
    /// pages of the program and its libraries), KiB.
    pub anon_kib: u64,
    /// Sum of user and system time (/proc/PID/stat utime + stime).
    pub cpu: Duration,
}

/// Clock ticks per second of /proc/PID/stat times (`USER_HZ`, 100 on
/// every Linux architecture the lab runs on).
const USER_HZ: u64 = 100;

/// [`Usage`] of the processes `pids`, read from /proc.
pub fn usage(pids: &[i32]) -> Result<Usage, LabError> {
    let mut total = Usage::default();
    for pid in pids {
        let read = |f: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/{f}")).map_err(|source| LabError::Io {
                context: format!("read /proc/{pid}/{f}"),
                source,
            })
        };
        let bad = |f: &str| LabError::Missing(format!("a readable /proc/{pid}/{f}"));
        let status = read("status")?;
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .ok_or_else(|| bad("status"))
        };
        total.rss_kib += kib("VmRSS:")?;
        total.anon_kib += kib("RssAnon:")?;
        // Fields after the parenthesised command name: state is field 3,
        // utime and stime are fields 14 and 15 (proc(5)).
        let stat = read("stat")?;
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| bad("stat"))?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        let (utime, stime) = ticks(11).zip(ticks(12)).ok_or_else(|| bad("stat"))?;
        total.cpu += Duration::from_millis((utime + stime) * 1000 / USER_HZ);
    }
    Ok(total)
}

/// CPU time the processes `pids` have run, all their threads
/// (/proc/PID/task/TID/schedstat, nanoseconds: finer than the 10 ms ticks
/// of [`usage`], but threads that have exited are not counted).
pub fn cpu_time(pids: &[i32]) -> Result<Duration, LabError> {
    let mut ns = 0u64;
    for pid in pids {
        let dir = format!("/proc/{pid}/task");
        let tasks = std::fs::read_dir(&dir).map_err(|source| LabError::Io {
            context: format!("read {dir}"),
            source,
        })?;
        for task in tasks.flatten() {
            // A thread may exit between the listing and the read.
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            ns += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| LabError::Missing(format!("a readable {dir}/*/schedstat")))?;
        }
    }
    Ok(Duration::from_nanos(ns))
}

/// A director loading a large database from a router (the scale test and
/// `anycastd-lab bench-db`).
#[derive(Debug, Clone)]
pub struct DbLoad {
    pub director: String,
    pub implementation: Implementation,
    /// External routes the router originates.
    pub routes: u32,
    /// LSAs in the director's database once complete (equal to the
    /// router's count).
    pub lsas: usize,
    /// From starting the director's routing daemon to a complete database.
    pub elapsed: Duration,
    /// From the first Hello that lists the other side, either way (the
    /// moment the adjacency starts: after up to one HelloInterval of
    /// waiting for the router's Hello), to the moment the director had
    /// every LSA, both from the capture of their link; known when the lab
    /// captured OSPF (`LabOptions::capture`).
    pub after_hello: Option<Duration>,
    /// The director's routing daemons then (anycastd; bird; zebra + ospfd).
    pub usage: Usage,
    /// CPU time the router's routing daemons spent from the director's
    /// start to its complete database: beside `after_hello`, how busy the
    /// router was while it served the load.
    pub router_cpu: Duration,
}

/// `base` with `routes` external routes on its first router that has any
/// (else its first router) and every director running `director`.
pub fn scale_topology(
    base: &Topology,
    routes: u32,
    director: Implementation,
) -> Result<Topology, LabError> {
    if routes > MAX_EXTERNAL_ROUTES {
        return Err(LabError::Missing(format!(
            "at most {MAX_EXTERNAL_ROUTES} external routes (asked for {routes})"
        )));
    }
    let mut t = base.clone();
    let router = t
        .nodes
        .iter()
        .position(|n| n.role == Role::Router && n.external_routes > 0)
        .or_else(|| t.nodes.iter().position(|n| n.role == Role::Router))
        .ok_or_else(|| LabError::Missing(format!("a router in topology {}", t.name)))?;
    t.nodes[router].external_routes = routes;
    for n in t.nodes.iter_mut().filter(|n| n.role == Role::Director) {
        n.implementation = Some(director);
    }
    Ok(t)
}

/// Brings `topo` up with its first director's routing daemon held back,
/// waits until the router with external routes has originated them all,
/// then starts the director and measures the time until its database is
/// complete: its neighbour (the router) is Full and it holds as many LSAs
/// as the router. Returns the lab (still up) with the measurement.
pub fn db_load(
    topo: Topology,
    opts: LabOptions,
    timeout: Duration,
) -> Result<(Lab, DbLoad), LabError> {
    let missing = |what: &str| LabError::Missing(format!("{what} in topology {}", topo.name));
    let router = topo
        .nodes
        .iter()
        .find(|n| n.role == Role::Router && n.external_routes > 0)
        .ok_or_else(|| missing("a router with external_routes"))?;
    let director = topo
        .nodes
        .iter()
        .find(|n| n.role == Role::Director)
        .ok_or_else(|| missing("a director"))?;
    let (router, routes) = (router.name.clone(), router.external_routes);
    let router_id = topo
        .node(&router)
        .and_then(|n| topo.router_id(n))
        .ok_or_else(|| missing("the router's router ID"))?;
    let director_id = topo
        .router_id(director)
        .ok_or_else(|| missing("the director's router ID"))?;
    // The director's interface towards the router, for the capture.
    let link = topo
        .links
        .iter()
        .find(|[a, b]| a.node == router && b.node == director.name)
        .or_else(|| {
            topo.links
                .iter()
                .find(|[a, b]| b.node == router && a.node == director.name)
        })
        .and_then(|l| l.iter().find(|e| e.node == director.name))
        .map(|e| e.ifname.clone());
    let (director, implementation) = (
        director.name.clone(),
        director
            .implementation
            .ok_or_else(|| missing("a director with an implementation"))?,
    );
    let pcap = opts
        .capture
        .as_ref()
        .zip(link)
        .map(|(dir, ifname)| dir.join(format!("{director}-{ifname}.pcap")));
    let mut lab = Lab::up_unique_holding(topo, opts, &[director.as_str()])?;

    // The router's own Router-LSA and every external.
    let want = usize::try_from(routes)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut seen = 0;
    wait_for(timeout, Duration::from_millis(100), || {
        seen = lab.ospf_lsa_count(&router).unwrap_or(0);
        (seen >= want).then_some(())
    })
    .ok_or_else(|| {
        LabError::Missing(format!(
            "{want} LSAs on {router} within {timeout:?} (it has {seen})"
        ))
    })?;

    let router_pids = lab.routing_pids(&router)?;
    let router_cpu0 = cpu_time(&router_pids)?;
    lab.start_routing(&director)?;
    let start = Instant::now();
    let start_wall = std::time::SystemTime::now();
    let mut last = String::from("no answer yet");
    let done = wait_for(timeout, Duration::from_millis(20), || {
        let full = lab
            .ospf_neighbors(&director)
            .ok()?
            .into_iter()
            .any(|n| n.router_id == router_id && n.state == "Full");
        if !full {
            last = format!("{director} not Full with {router}");
            return None;
        }
        // Sampled before the counts, which cost the daemons some work.
        let elapsed = start.elapsed();
        let router_cpu = cpu_time(&router_pids).ok()?.saturating_sub(router_cpu0);
        let pids = lab.routing_pids(&director).ok()?;
        let usage = usage(&pids).ok()?;
        let ours = lab.ospf_lsa_count(&director).ok()?;
        let theirs = lab.ospf_lsa_count(&router).ok()?;
        last = format!("{director} has {ours} LSAs, {router} {theirs}");
        (ours == theirs && ours >= want).then_some((elapsed, usage, ours, router_cpu))
    });
    let (elapsed, usage, lsas, router_cpu) = done.ok_or_else(|| {
        LabError::Missing(format!(
            "a complete database on {director} within {timeout:?} ({last})"
        ))
    })?;
    let complete_wall = start_wall + elapsed;
    // From the capture: the first Hello listing the other side, where the
    // adjacency starts, and the moment the director had every LSA (the
    // poll above sees it up to one poll interval late). tcpdump hands
    // packets over in blocks, up to a second late: read until the load is
    // all there.
    let after_hello = pcap.and_then(|p| {
        wait_for(Duration::from_secs(3), Duration::from_millis(200), || {
            let packets = ospf_packets(&p)?;
            let hello = first_hello_listing(&packets, router_id, director_id, start_wall)?;
            let done = load_complete(&packets, router_id, director_id, hello, complete_wall)?;
            done.duration_since(hello).ok()
        })
    });
    Ok((
        lab,
        DbLoad {
            director,
            implementation,
            routes,
            lsas,
            elapsed,
            after_hello,
            usage,
            router_cpu,
        },
    ))
}

/// The OSPF packets of the pcap file `path` (Ethernet, as tcpdump writes
/// on a veth) with their capture times, decoded by the `ospf` crate;
/// frames that are not IPv4 OSPF or do not decode are passed over.
/// Reading stops at a record cut short (tcpdump still writing). None if
/// the file is missing or not such a capture.
pub fn ospf_packets(
    path: &std::path::Path,
) -> Option<Vec<(std::time::SystemTime, ospf::packet::Packet)>> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(file)).ok()?;
    if reader.header().datalink != pcap_file::DataLink::ETHERNET {
        return None;
    }
    let mut packets = Vec::new();
    while let Some(Ok(record)) = reader.next_packet() {
        let (frame, since_epoch) = (&record.data, record.timestamp);
        // Ethernet, IPv4 carrying OSPF (89).
        let Some(ip) = frame.get(14..) else { continue };
        if frame.get(12..14) != Some(&[0x08, 0x00]) || ip.get(9) != Some(&89) {
            continue;
        }
        let Some(bytes) = ip.get(usize::from(ip[0] & 0x0f) * 4..) else {
            continue;
        };
        if let Ok(packet) = ospf::packet::Packet::decode(bytes) {
            packets.push((std::time::UNIX_EPOCH + since_epoch, packet));
        }
    }
    Some(packets)
}

/// The capture time of the first OSPF Hello in `packets` after `since`
/// that one of the routers with router IDs `a` and `b` sent listing the
/// other: the adjacency starts there, whichever side heard the other
/// first (the receiver is two-way at once).
pub fn first_hello_listing(
    packets: &[(std::time::SystemTime, ospf::packet::Packet)],
    a: Ipv4Addr,
    b: Ipv4Addr,
    since: std::time::SystemTime,
) -> Option<std::time::SystemTime> {
    packets.iter().find_map(|(when, p)| match &p.body {
        PacketBody::Hello(h)
            if *when >= since
                && ((p.router_id == a && h.neighbors.contains(&b))
                    || (p.router_id == b && h.neighbors.contains(&a))) =>
        {
            Some(*when)
        }
        _ => None,
    })
}

/// When the director `director` had the whole database of the router
/// `router`, from the capture `packets` of their link between `since` and
/// `until`: the later of the last Database Description packet (the end of
/// the exchange) and the Link State Update from the router that brought
/// the last LSA its Database Description packets listed (LSAs the director
/// originated aside). This is the moment a director can be complete, to
/// the capture's microsecond, whatever the pace of polling it. None if
/// the router listed nothing or some listed LSA never came.
pub fn load_complete(
    packets: &[(std::time::SystemTime, ospf::packet::Packet)],
    router: Ipv4Addr,
    director: Ipv4Addr,
    since: std::time::SystemTime,
    until: std::time::SystemTime,
) -> Option<std::time::SystemTime> {
    use std::collections::HashSet;
    let mut listed = HashSet::new();
    let mut received = HashSet::new();
    let (mut last_dd, mut last_new) = (None, None);
    for (when, p) in packets.iter().filter(|(w, _)| *w >= since && *w <= until) {
        match &p.body {
            PacketBody::DatabaseDescription(dd) => {
                last_dd = Some(*when);
                if p.router_id == router {
                    listed.extend(
                        dd.lsa_headers
                            .iter()
                            .filter(|h| h.advertising_router != director)
                            .map(|h| h.key()),
                    );
                }
            }
            PacketBody::LinkStateUpdate(u) if p.router_id == router => {
                for lsa in &u.lsas {
                    let key = lsa.header().key();
                    if listed.contains(&key) && received.insert(key) {
                        last_new = Some(*when);
                    }
                }
            }
            _ => {}
        }
    }
    if listed.is_empty() || received.len() < listed.len() {
        return None;
    }
    Some(last_dd?.max(last_new?))
}

/// The median of `f` over the rows of `routes` and `imp` (the lower
/// middle one of an even count).
fn median_of<T: Copy + Ord>(
    rows: &[DbLoad],
    routes: u32,
    imp: Implementation,
    f: impl Fn(&DbLoad) -> T,
) -> Option<T> {
    let mut v: Vec<T> = rows
        .iter()
        .filter(|r| r.routes == routes && r.implementation == imp)
        .map(f)
        .collect();
    v.sort();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// For each count in `routes`, `runs` times over: brings `base` up three
/// times, the director running anycastd, FRR and BIRD in turn, and
/// measures its database load with [`db_load`]. Prints every run, the
/// medians, and how anycastd compares with BIRD (targets: faster, and at
/// most 2/3 of its RSS). The time includes waiting for the router's next
/// Hello (up to one HelloInterval), hence several runs.
pub fn bench_db(
    base: &Topology,
    opts: &LabOptions,
    routes: &[u32],
    runs: usize,
    out: &mut dyn FnMut(&str),
) -> Result<Vec<DbLoad>, LabError> {
    const IMPLEMENTATIONS: [Implementation; 3] = [
        Implementation::Anycastd,
        Implementation::Frr,
        Implementation::Bird,
    ];
    let timeout = Duration::from_secs(120);
    // The director's side of the link is captured, to time the load from
    // the first Hello listing the other side, where the adjacency starts.
    let mut opts = opts.clone();
    let capture_dir = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
        .then(|| std::env::temp_dir().join(format!("anycastd-bench-db-{}", std::process::id())));
    if opts.capture.is_none() {
        opts.capture.clone_from(&capture_dir);
    }
    if opts.capture.is_none() {
        out("(no tcpdump: times after the first Hello are not measured)");
    }
    let header = format!(
        "{:>7}  {:<9} {:>4}  {:>6}  {:>9}  {:>11}  {:>8}  {:>8}  {:>6}  {:>10}",
        "routes",
        "director",
        "run",
        "LSAs",
        "complete",
        "after Hello",
        "RSS",
        "anon",
        "CPU",
        "router CPU"
    );
    let row = |run: &str, r: &DbLoad| {
        format!(
            "{:>7}  {:<9} {:>4}  {:>6}  {:>7.2} s  {:>11}  {:>5.1} MB  {:>5.1} MB  {:>4.2} s  {:>8.3} s",
            r.routes,
            r.implementation.to_string(),
            run,
            r.lsas,
            r.elapsed.as_secs_f64(),
            r.after_hello
                .map_or_else(|| "-".into(), |d| format!("{:.3} s", d.as_secs_f64())),
            mb(r.usage.rss_kib),
            mb(r.usage.anon_kib),
            r.usage.cpu.as_secs_f64(),
            r.router_cpu.as_secs_f64()
        )
    };
    out(&header);
    let mut rows = Vec::new();
    for &n in routes {
        for run in 1..=runs.max(1) {
            for imp in IMPLEMENTATIONS {
                let topo = scale_topology(base, n, imp)?;
                let result = db_load(topo, opts.clone(), timeout);
                let (lab, r) = match result {
                    Ok(x) => x,
                    Err(e) => {
                        if let Some(d) = &capture_dir {
                            let _ = std::fs::remove_dir_all(d);
                        }
                        return Err(e);
                    }
                };
                lab.down();
                out(&row(&run.to_string(), &r));
                rows.push(r);
            }
        }
    }
    // Medians, each column on its own.
    let mut medians = Vec::new();
    for &n in routes {
        for imp in IMPLEMENTATIONS {
            let Some(first) = rows
                .iter()
                .find(|r| r.routes == n && r.implementation == imp)
            else {
                continue;
            };
            medians.push(DbLoad {
                elapsed: median_of(&rows, n, imp, |r| r.elapsed).unwrap_or_default(),
                after_hello: median_of(&rows, n, imp, |r| r.after_hello).flatten(),
                usage: Usage {
                    rss_kib: median_of(&rows, n, imp, |r| r.usage.rss_kib).unwrap_or_default(),
                    anon_kib: median_of(&rows, n, imp, |r| r.usage.anon_kib).unwrap_or_default(),
                    cpu: median_of(&rows, n, imp, |r| r.usage.cpu).unwrap_or_default(),
                },
                router_cpu: median_of(&rows, n, imp, |r| r.router_cpu).unwrap_or_default(),
                ..first.clone()
            });
        }
    }
    if let Some(d) = &capture_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    out(&format!("medians of {} runs:", runs.max(1)));
    out(&header);
    for r in &medians {
        out(&row("med", r));
    }
    for &n in routes {
        let get = |i: Implementation| {
            medians
                .iter()
                .find(|r| r.routes == n && r.implementation == i)
        };
        let (Some(a), Some(b)) = (get(Implementation::Anycastd), get(Implementation::Bird)) else {
            continue;
        };
        let ratio = |x: u64, y: u64| x as f64 / y.max(1) as f64;
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let rss = ratio(a.usage.rss_kib, b.usage.rss_kib);
        let after = match (a.after_hello, b.after_hello) {
            // The router's CPU over that time: near 100 %, the router and
            // not the director sets the pace.
            (Some(x), Some(y)) => format!(
                ", {:.3} s vs {:.3} s after the first Hello listing the other side (the router's CPU {:.0} % vs {:.0} % of it)",
                x.as_secs_f64(),
                y.as_secs_f64(),
                100.0 * a.router_cpu.as_secs_f64() / x.as_secs_f64().max(1e-6),
                100.0 * b.router_cpu.as_secs_f64() / y.as_secs_f64().max(1e-6)
            ),
            _ => String::new(),
        };
        // The time from start includes the wait for the router's Hello (up
        // to one HelloInterval), which no director controls: speed is
        // judged by the time after the first Hello listing the other side
        // when the capture gives it. Within 5% is a tie: runs vary more
        // than that (the router, busy most of the time, sets the pace).
        let by_capture = a.after_hello.is_some() && b.after_hello.is_some();
        let judged = if by_capture {
            "after the Hello"
        } else {
            "from start"
        };
        let measure = |r: &DbLoad| match r.after_hello {
            Some(d) if by_capture => d,
            _ => r.elapsed,
        };
        let (ours, birds) = (measure(a).as_secs_f64(), measure(b).as_secs_f64());
        let faster = if (ours - birds).abs() <= 0.05 * birds {
            "tie"
        } else {
            verdict(ours < birds)
        };
        // Each run by the same measure, in run order: the runs of one
        // round share the machine's state, so they are compared in pairs;
        // a stall (a lost request waiting for its retransmission) shows in
        // the slowest run, not in a median.
        let times = |imp: Implementation| -> Vec<Duration> {
            rows.iter()
                .filter(|r| r.routes == n && r.implementation == imp)
                .map(measure)
                .collect()
        };
        let (ta, tb) = (times(Implementation::Anycastd), times(Implementation::Bird));
        let slowest = |t: &[Duration]| t.iter().max().copied().unwrap_or_default().as_secs_f64();
        let (sa, sb) = (slowest(&ta), slowest(&tb));
        let wins = ta.iter().zip(&tb).filter(|(x, y)| x < y).count();
        let pairs = ta.len().min(tb.len());
        let (x, y) = (a.elapsed.as_secs_f64(), b.elapsed.as_secs_f64());
        out(&format!(
            "{n} routes, anycastd vs BIRD: complete after {x:.2} s vs {y:.2} s{after} (faster, {judged}: {faster}; \
             faster in {wins} of {pairs} runs; slowest run {sa:.3} s vs {sb:.3} s); \
             RSS {:.2} of BIRD's (at most 0.67: {}; anonymous memory alone: {:.2})",
            rss,
            verdict(rss <= 2.0 / 3.0),
            ratio(a.usage.anon_kib, b.usage.anon_kib)
        ));
    }
    Ok(rows)
}

/// Whether `lab` runs anycastd directors with health-checked services (the
/// anycast demo's topology) rather than the classic design.
pub fn is_anycast(topo: &Topology) -> bool {
    topo.nodes
        .iter()
        .any(|n| n.role == Role::Director && !n.services.is_empty())
}

/// A director's address on its OSPF link: the router's nexthop to it.
pub fn gateway_of(topo: &Topology, node: &str) -> Result<Ipv4Addr, LabError> {
    topo.interfaces(node)
        .find(|e| e.ospf.is_some())
        .map(|e| e.addr.ip())
        .ok_or_else(|| LabError::Missing(format!("an OSPF interface on {node}")))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signed milliseconds from `from` to `to` on the wall clock.
fn wall_ms(from: std::time::SystemTime, to: std::time::SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    }
}

/// The README's main job on an anycast topology (anycastd directors whose
/// services are health-checked): the ECMP spread, a director's HTTP server
/// failing under load with the timeline from check verdict to the LSA sent
/// to the router's FIB, its return, and a drain under load.
pub fn anycast_demo(lab: &mut Lab, out: &mut dyn FnMut(&str)) -> Result<(), LabError> {
    use std::time::SystemTime;
    let cast = Cast::of(lab)?;
    let (router, client, vip) = (cast.router.clone(), cast.client.clone(), cast.vip);
    let n = cast.directors.len();
    let [first, sick, ..] = cast.directors.as_slice() else {
        return Err(LabError::Missing("two anycastd directors".into()));
    };
    let (first, sick) = (first.clone(), sick.clone());
    let start = lab.routing_started.unwrap_or_else(Instant::now);
    out(&format!(
        "lab {}: {} nodes up; {n} anycastd directors health-check HTTP on {vip} and advertise it over OSPF to {router}",
        lab.name,
        lab.topology.nodes.len(),
    ));
    wait_full(lab, &router, n, Duration::from_secs(60))?;
    wait_nexthops(lab, &router, vip, n, Duration::from_secs(60))?;
    out(&format!(
        "{router}'s route to {vip} has {n} nexthops, {:.1} s after the daemons started",
        start.elapsed().as_secs_f64()
    ));
    if let Some(e) = lab.vip_route(&router, vip)? {
        for h in &e.nexthops {
            out(&format!("  nexthop {h}"));
        }
    }
    let spread = lab.requests(&client, spread_spec(vip, 300))?;
    out(&format!("300 requests from {client}: {}", spread.summary()));

    // A health failure under load, with its timeline.
    let fib = lab.watch_vip(&router, vip, Duration::from_millis(5))?;
    let load_spec = LoadSpec {
        count: 100_000,
        max_duration: Duration::from_secs(60),
        timeout: Duration::from_millis(300),
        interval: Duration::from_millis(20),
        ..spread_spec(vip, 0)
    };
    let sick_gw = gateway_of(&lab.topology, &sick)?;
    let load = lab.start_load(&client, load_spec.clone())?;
    std::thread::sleep(Duration::from_millis(500));
    let check = lab
        .topology
        .nodes
        .iter()
        .find(|x| x.name == sick)
        .and_then(|x| x.services.iter().find(|s| s.vip == vip))
        .map(|s| {
            let (i, f) = (s.interval_ms.unwrap_or(1000), s.fall.unwrap_or(3));
            format!(
                " (its check: every {i} ms, down after {f} failures: detection within {} ms)",
                i * u64::from(f)
            )
        })
        .unwrap_or_default();
    out(&format!(
        "stopping {sick}'s HTTP server under a load of 50 requests a second{check}..."
    ));
    let stop_wall = SystemTime::now();
    let stop_at = Instant::now();
    lab.stop_http(&sick)?;
    let gone = fib
        .wait_for(stop_at, Duration::from_secs(10), |c| {
            !c.gateways().contains(&sick_gw)
        })
        .ok_or_else(|| {
            LabError::Missing(format!("{router} dropping {sick}'s nexthop within 10 s"))
        })?;
    let status = lab
        .anycastd(&sick)
        .status()
        .map_err(|source| LabError::Io {
            context: format!("{sick}: status"),
            source,
        })?;
    let since_ms = stop_wall
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // (ms after the kill, causal rank, what): the director's events have
    // whole-millisecond stamps, so within one millisecond the causal order
    // (verdict and withdrawal, LSA sent, FIB) decides.
    let mut timeline: Vec<(f64, u8, String)> =
        vec![(0.0, 0, format!("{sick}: HTTP server killed"))];
    for (at, what) in crate::anycastd::events_since(&status, since_ms) {
        let at = i128::try_from(at).unwrap_or(0) - i128::try_from(since_ms).unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        timeline.push((at as f64, 1, format!("{sick}: {what}")));
    }
    // The LSA that withdrew the VIP, identified by decoding it: the
    // router's copy of the director's Router-LSA (no stub link for the VIP
    // now) names the sequence number, and the director's log tells when
    // that instance was originated.
    let sick_id = lab
        .topology
        .node(&sick)
        .and_then(|n| lab.topology.router_id(n))
        .ok_or_else(|| LabError::Missing(format!("{sick}'s router ID")))?;
    let log = std::fs::read_to_string(lab.anycastd(&sick).log_path()).unwrap_or_default();
    let key = format!("Router-LSA {sick_id} adv {sick_id}");
    let withdrawal = match lab.ospf_router_lsa(&router, sick_id)? {
        Some(copy) if !copy.lists(vip) => {
            let seq = format!("seq={:#010x}", copy.sequence);
            crate::anycastd::log_lines_since(&log, stop_wall, "LSA originated")
                .into_iter()
                .find(|(_, l)| l.contains(&key) && l.contains(&seq))
                .map(|(at, _)| (at, copy))
                .ok_or_else(|| format!("no `LSA originated` of {key} {seq} in its log"))
        }
        Some(copy) => Err(format!(
            "{router}'s copy of its Router-LSA (seq {:#010x}) still lists {vip}",
            copy.sequence
        )),
        None => Err(format!("{router} holds no Router-LSA of {sick_id}")),
    };
    match withdrawal {
        Ok((at, copy)) => {
            let stubs: Vec<String> = copy.stubs.iter().map(ToString::to_string).collect();
            timeline.push((
                wall_ms(stop_wall, at),
                2,
                format!(
                    "{sick}: Router-LSA without the VIP sent to {router} (seq {:#010x}; {router}'s copy has stubs [{}])",
                    copy.sequence,
                    stubs.join(", ")
                ),
            ));
        }
        Err(why) => out(&format!("{sick}: its withdrawal LSA was not found: {why}")),
    }
    timeline.push((
        ms(gone.at - stop_at),
        3,
        format!(
            "{router}: nexthop {sick_gw} gone from the FIB (seen between {:.0} and {:.0} ms)",
            ms(gone.before.saturating_duration_since(stop_at)),
            ms(gone.at - stop_at)
        ),
    ));
    #[allow(clippy::cast_possible_truncation)]
    timeline.sort_by_key(|(at, rank, _)| (at.round() as i64, *rank));
    out("timeline:");
    for (at, _, what) in &timeline {
        out(&format!("  {at:>7.0} ms  {what}"));
    }
    std::thread::sleep(Duration::from_millis(500));
    let back_at = Instant::now();
    lab.start_http(&sick)?;
    let back = fib.wait_for(back_at, Duration::from_secs(10), |c| {
        c.gateways().contains(&sick_gw)
    });
    match back {
        Some(c) => out(&format!(
            "{sick}'s HTTP server is back: its nexthop returned after {:.0} ms (rise, hold-down, LSA pacing)",
            ms(c.at - back_at)
        )),
        None => out(&format!("{sick}'s nexthop did not return within 10 s")),
    }
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop()?;
    out(&format!("load during the failure: {}", report.summary()));

    // A drain under load.
    let first_gw = gateway_of(&lab.topology, &first)?;
    let load = lab.start_load(&client, load_spec)?;
    std::thread::sleep(Duration::from_millis(400));
    out(&format!("`anycastd drain {vip}` on {first} under load..."));
    let drain_wall = SystemTime::now();
    let drain_at = Instant::now();
    let daemon = lab.anycastd(&first);
    daemon.drain(Some(vip)).map_err(|source| LabError::Io {
        context: format!("{first}: drain"),
        source,
    })?;
    let left = fib.wait_for(drain_at, Duration::from_secs(10), |c| {
        !c.gateways().contains(&first_gw)
    });
    let drained = wait_for(Duration::from_secs(30), Duration::from_millis(20), || {
        let st = daemon.status().ok()?;
        let ev = crate::anycastd::events_since(
            &st,
            drain_wall
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
        );
        ev.iter().any(|(_, w)| w.contains("drained")).then_some(ev)
    });
    let base = drain_wall
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut steps: Vec<(f64, String)> = drained
        .unwrap_or_default()
        .into_iter()
        .map(|(at, what)| {
            #[allow(clippy::cast_precision_loss)]
            let at = at.saturating_sub(base) as f64;
            (at, format!("{first}: {what}"))
        })
        .collect();
    if let Some(c) = left {
        steps.push((
            ms(c.at - drain_at),
            format!("{router}: nexthop {first_gw} gone from the FIB"),
        ));
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (at, what) in steps {
        out(&format!("  {at:>7.0} ms  {what}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    let undrain_at = Instant::now();
    daemon.undrain(Some(vip)).map_err(|source| LabError::Io {
        context: format!("{first}: undrain"),
        source,
    })?;
    if let Some(c) = fib.wait_for(undrain_at, Duration::from_secs(10), |c| {
        c.gateways().contains(&first_gw)
    }) {
        out(&format!(
            "undrained: {first}'s nexthop is back after {:.0} ms",
            ms(c.at - undrain_at)
        ));
    }
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop()?;
    out(&format!(
        "load during drain and undrain: {}",
        report.summary()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    use ospf::lsa::{LsaHeader, LsaType, Options, RawLsa};
    use ospf::packet::{DatabaseDescription, DdFlags, Hello, LinkStateUpdate, Packet};

    /// An Ethernet frame carrying `body` from router ID `rid`.
    fn frame(rid: [u8; 4], body: PacketBody) -> Vec<u8> {
        let packet = Packet {
            router_id: Ipv4Addr::from(rid),
            area_id: Ipv4Addr::UNSPECIFIED,
            autype: 0,
            auth_data: [0; 8],
            body,
        };
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 1, 89, 0, 0];
        ip.extend_from_slice(&[198, 18, 2, 0, 224, 0, 0, 5]);
        ip.extend_from_slice(&packet.encode().expect("encode"));
        let mut frame = vec![0; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip);
        frame
    }

    /// An Ethernet frame with an OSPF Hello from `rid` listing `nbrs`.
    fn hello_frame(rid: [u8; 4], nbrs: &[[u8; 4]]) -> Vec<u8> {
        frame(
            rid,
            PacketBody::Hello(Hello {
                network_mask: Ipv4Addr::UNSPECIFIED,
                hello_interval: 1,
                options: Options(0x02),
                router_priority: 1,
                router_dead_interval: 4,
                designated_router: Ipv4Addr::UNSPECIFIED,
                backup_designated_router: Ipv4Addr::UNSPECIFIED,
                neighbors: nbrs.iter().map(|n| Ipv4Addr::from(*n)).collect(),
            }),
        )
    }

    /// The header of an AS-external LSA `id` from `adv` (36 bytes long).
    fn external(id: u8, adv: [u8; 4]) -> LsaHeader {
        LsaHeader {
            age: 1,
            options: Options(0x02),
            lsa_type: LsaType::AS_EXTERNAL,
            link_state_id: Ipv4Addr::new(198, 19, 0, id),
            advertising_router: Ipv4Addr::from(adv),
            seq: i32::MIN + 1,
            checksum: 0,
            length: 36,
        }
    }

    fn dd_frame(rid: [u8; 4], headers: Vec<LsaHeader>) -> Vec<u8> {
        frame(
            rid,
            PacketBody::DatabaseDescription(DatabaseDescription {
                interface_mtu: 1500,
                options: Options(0x02),
                flags: DdFlags(0),
                dd_sequence_number: 7,
                lsa_headers: headers,
            }),
        )
    }

    fn lsu_frame(rid: [u8; 4], headers: &[LsaHeader]) -> Vec<u8> {
        let lsas = headers
            .iter()
            .map(|h| {
                let mut b = bytes::BytesMut::new();
                h.encode(&mut b);
                b.extend_from_slice(&[0; 16]);
                RawLsa::from_bytes(b.freeze()).expect("lsa")
            })
            .collect();
        frame(rid, PacketBody::LinkStateUpdate(LinkStateUpdate { lsas }))
    }

    fn pcap(packets: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [0xa1b2_c3d4_u32, 0x0004_0002, 0, 0, 262_144, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for (sec, usec, frame) in packets {
            let len = u32::try_from(frame.len()).expect("short");
            for v in [*sec, *usec, len, len] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(frame);
        }
        out
    }

    #[test]
    fn finds_the_first_hello_listing_the_other_side() {
        let (router, director) = ([198, 18, 0, 1], [198, 18, 0, 11]);
        let bytes = pcap(&[
            (100, 0, hello_frame(router, &[])),
            (100, 500, hello_frame(director, &[])),
            (
                101,
                250_000,
                hello_frame(router, &[[10, 0, 0, 9], director]),
            ),
            (101, 500_000, hello_frame(director, &[router])),
            (102, 250_000, hello_frame(router, &[director])),
        ]);
        let path = std::env::temp_dir().join(format!("scenario-test-{}.pcap", std::process::id()));
        std::fs::write(&path, &bytes).expect("write");
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        let found = |since: SystemTime| {
            first_hello_listing(
                &ospf_packets(&path)?,
                Ipv4Addr::from(router),
                Ipv4Addr::from(director),
                since,
            )
        };
        assert_eq!(found(at(99, 0)), Some(at(101, 250)), "the router's");
        assert_eq!(found(at(101, 300)), Some(at(101, 500)), "the director's");
        assert_eq!(found(at(102, 0)), Some(at(102, 250)));
        assert_eq!(found(at(103, 0)), None);
        // A truncated file or another format yields nothing.
        std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("write");
        assert_eq!(found(at(102, 0)), None, "the last packet is cut short");
        std::fs::write(&path, b"not a pcap file at all, no").expect("write");
        assert_eq!(found(at(0, 0)), None);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn load_completes_with_the_last_listed_lsa_or_the_last_dd() {
        let (r, d) = ([198, 18, 0, 1], [198, 18, 0, 11]);
        let (a, b, c) = (external(1, r), external(2, r), external(3, r));
        let own = external(9, d);
        let at = |ms: u32| (100, ms * 1000);
        let packets = |frames: Vec<((u32, u32), Vec<u8>)>| {
            let path = std::env::temp_dir().join(format!(
                "scenario-load-{}-{}.pcap",
                std::process::id(),
                frames.len()
            ));
            let raw: Vec<_> = frames.into_iter().map(|((s, u), f)| (s, u, f)).collect();
            std::fs::write(&path, pcap(&raw)).expect("write");
            let p = ospf_packets(&path).expect("a capture");
            let _ = std::fs::remove_file(&path);
            p
        };
        let t = |ms: u64| UNIX_EPOCH + Duration::from_secs(100) + Duration::from_millis(ms);
        let done = |p: &[(SystemTime, Packet)], until: u64| {
            load_complete(p, Ipv4Addr::from(r), Ipv4Addr::from(d), t(0), t(until))
        };
        let load = packets(vec![
            (at(1), dd_frame(d, vec![own])),
            (at(2), dd_frame(r, vec![a, b, own])),
            (at(3), lsu_frame(r, &[a])),
            (at(4), dd_frame(r, vec![c])),
            (at(5), dd_frame(d, vec![])),
            (at(6), lsu_frame(r, &[b, c])),
            // Later copies (a refresh, the director's own LSA) change nothing.
            (at(8), lsu_frame(r, &[a, own])),
        ]);
        assert_eq!(
            done(&load, 10),
            Some(t(6)),
            "the last listed LSA came at 6 ms"
        );
        assert_eq!(done(&load, 5), None, "b and c had not come by 5 ms");
        // The exchange ending after the last LSA: the last DD counts.
        let late_dd = packets(vec![
            (at(2), dd_frame(r, vec![a])),
            (at(3), lsu_frame(r, &[a])),
            (at(7), dd_frame(d, vec![])),
        ]);
        assert_eq!(done(&late_dd, 10), Some(t(7)));
        // Nothing listed: no answer.
        let none = packets(vec![(at(2), dd_frame(r, vec![]))]);
        assert_eq!(done(&none, 10), None);
    }

    #[test]
    fn usage_reads_this_process() {
        let u = usage(&[i32::try_from(std::process::id()).expect("pid")]).expect("proc");
        assert!(
            u.rss_kib > 0 && u.anon_kib > 0 && u.anon_kib <= u.rss_kib,
            "{u:?}"
        );
        assert!(usage(&[i32::MAX]).is_err(), "no such process");
    }

    #[test]
    fn cpu_time_counts_this_process() {
        let me = [i32::try_from(std::process::id()).expect("pid")];
        let before = cpu_time(&me).expect("schedstat");
        // Spin for 30 ms of wall time: at least some of it on a CPU.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = cpu_time(&me).expect("schedstat");
        assert!(after > before, "{before:?} -> {after:?}");
        assert!(cpu_time(&[i32::MAX]).is_err(), "no such process");
    }
}
