//! Measured scenarios on a running lab: convergence, request spread and
//! failover. Tests assert on their results; `anycastd lab demo` prints them.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::topology::Role;
use crate::traffic::{LoadReport, LoadSpec};
use crate::{wait_for, Lab, LabError, OspfNeighbor};

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
