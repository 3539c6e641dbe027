//! What decides whether a VIP is advertised (sans-IO).
//!
//! The [`Director`] takes check verdicts, IPVS programming status, drain
//! requests and the time, and tells the daemon what to announce over OSPF:
//! [`Action::Advertise`] with a cost or [`Action::Withdraw`]. It never
//! touches a socket or a clock; the daemon feeds it and drains
//! [`Director::poll_action`], waking at [`Director::poll_timeout`].
//!
//! - A server is up when every one of its checks is up (each check already
//!   has its own rise/fall hysteresis). A service is healthy when at least
//!   `quorum` servers are up, with keepalived's quorum hysteresis: it becomes
//!   healthy at `quorum + hysteresis` servers up and unhealthy below
//!   `quorum - hysteresis`. A `local` service has one server: this node.
//! - A VIP is advertised while every service on it is healthy and (for
//!   `ipvs`) programmed; it is withdrawn at once when one is not. After a
//!   withdrawal for health it comes back only once it has been healthy
//!   without a break for `hold_down`, so a flapping service does not flap
//!   the route.
//! - The operator may withdraw a VIP (`vip withdraw`, kept until `vip
//!   advertise`) and take a real server out (`server disable`: it counts
//!   as down, weight 0, until `server enable`); the daemon persists both,
//!   and drains, across restarts. The speaker paces its
//!   Router-LSAs (MinLSInterval), so the routers always end up with the
//!   latest state however fast this changes.
//! - Until every check has given a first verdict, a VIP is withheld (the
//!   start-up rule: announce only settled state).
//! - Drain, per VIP: the cost is raised to the drain cost (ECMP routers move
//!   flows to the other directors while this one stays a backup), then after
//!   `cost_hold` the VIP is withdrawn. Undrain returns it to normal.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

/// How a service is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The service runs on this node; checks probe local endpoints.
    Local,
    /// An LVS director service: IPVS forwards to real servers.
    Ipvs,
}

/// A check's identity across reloads: runners report with it.
pub type CheckId = u32;

/// Drain timing for one VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainSpec {
    /// The stub-link cost announced while draining, before the withdrawal.
    pub cost: u16,
    /// How long the raised cost is announced before the withdrawal.
    pub cost_hold: Duration,
    /// Drain waits at most this long for traffic to stop.
    pub deadline: Duration,
}

impl Default for DrainSpec {
    fn default() -> Self {
        DrainSpec {
            cost: u16::MAX,
            cost_hold: Duration::from_secs(2),
            deadline: Duration::from_secs(30),
        }
    }
}

/// The parts of a service the state machine needs; checks are counted, the
/// probing itself lives in `health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceShape {
    pub name: String,
    pub vip: Ipv4Addr,
    pub area: Ipv4Addr,
    pub cost: u16,
    pub mode: Mode,
    pub quorum: usize,
    pub hysteresis: usize,
    pub hold_down: Duration,
    /// The service's port (traffic measurement during a drain).
    pub port: Option<u16>,
    /// For each server: its address and the ids of its checks.
    pub servers: Vec<(IpAddr, Vec<CheckId>)>,
    pub drain: DrainSpec,
}

/// What the daemon must tell the OSPF speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Advertise {
        area: Ipv4Addr,
        vip: Ipv4Addr,
        cost: u16,
    },
    Withdraw {
        vip: Ipv4Addr,
    },
}

#[derive(Debug)]
struct ServiceState {
    shape: ServiceShape,
    /// Per server, per check: the last verdict, `None` before the first.
    verdicts: Vec<Vec<Option<bool>>>,
    /// Per server: taken out by the operator (`server disable`).
    disabled: Vec<bool>,
    healthy: bool,
    programmed: bool,
}

impl ServiceState {
    fn new(shape: ServiceShape) -> Self {
        let verdicts = shape
            .servers
            .iter()
            .map(|(_, checks)| vec![None; checks.len()])
            .collect();
        ServiceState {
            programmed: shape.mode == Mode::Local,
            disabled: vec![false; shape.servers.len()],
            shape,
            verdicts,
            healthy: false,
        }
    }

    fn settled(&self) -> bool {
        self.verdicts.iter().flatten().all(Option::is_some)
    }

    fn server_up(&self, i: usize) -> bool {
        !self.disabled.get(i).copied().unwrap_or(false)
            && self
                .verdicts
                .get(i)
                .is_some_and(|v| v.iter().all(|c| *c == Some(true)))
    }

    fn servers_up(&self) -> usize {
        (0..self.verdicts.len())
            .filter(|&i| self.server_up(i))
            .count()
    }

    /// Recomputes health with the quorum hysteresis; true if it changed.
    fn update_health(&mut self) -> bool {
        let up = self.servers_up();
        let q = self.shape.quorum;
        let h = self.shape.hysteresis;
        let healthy = if self.healthy {
            up >= q.saturating_sub(h).max(1)
        } else {
            self.settled() && up >= q + h
        };
        let changed = healthy != self.healthy;
        self.healthy = healthy;
        changed
    }
}

/// Drain progress of one VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrainPhase {
    /// Announced at the drain cost until `since + cost_hold`.
    CostRaised,
    /// Withdrawn; traffic is expected to stop.
    Withdrawn,
    /// Withdrawn and no traffic left (or the deadline passed).
    Drained,
}

#[derive(Debug)]
struct VipState {
    area: Ipv4Addr,
    drain: Option<(DrainPhase, Instant)>,
    /// Connections still counted when a drain ended at its deadline.
    drain_left: Option<usize>,
    /// A service went unhealthy: the hold-down applies before the VIP is
    /// announced again.
    held: bool,
    /// Since when every service on the VIP is healthy and programmed
    /// without a break (`None` while one is not).
    ready_since: Option<Instant>,
    /// Withdrawn by the operator (`vip withdraw`) until `vip advertise`.
    operator_withdrawn: bool,
    /// What the speaker was last told: `Some(cost)` advertised.
    announced: Option<u16>,
}

/// One line of the director's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u128,
    pub what: String,
}

/// Services, their VIPs and what is announced.
#[derive(Debug, Default)]
pub struct Director {
    services: Vec<ServiceState>,
    vips: BTreeMap<Ipv4Addr, VipState>,
    /// Check id -> (service, server, check) indexes.
    checks: BTreeMap<CheckId, (usize, usize, usize)>,
    /// VIPs removed by a reload, still to withdraw.
    removed: BTreeSet<Ipv4Addr>,
    /// Real servers taken out by the operator, by VIP.
    disabled: BTreeSet<(Ipv4Addr, IpAddr)>,
    /// Each check's target and last probe, for status.
    probes: BTreeMap<CheckId, ProbeStatus>,
    /// Why an `ipvs` service is not programmed, by service name.
    program_errors: BTreeMap<String, String>,
    /// Local VIPs found missing from lo: not served here.
    off_lo: BTreeSet<Ipv4Addr>,
    events: VecDeque<Event>,
    /// Something visible in [`Director::status`] changed since
    /// [`Director::take_changed`] (so status metrics are refreshed only
    /// then, not after every probe).
    changed: bool,
}

const EVENTS_KEPT: usize = 200;

/// Why a drain or undrain request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DrainError {
    #[error("no service has VIP {0}")]
    UnknownVip(Ipv4Addr),
    #[error("no service on VIP {0} has real server {1}")]
    UnknownServer(Ipv4Addr, IpAddr),
}

impl Director {
    #[cfg(test)]
    pub fn new(shapes: Vec<ServiceShape>) -> Self {
        let mut d = Director::default();
        d.reconfigure(shapes, None);
        d
    }

    /// Replaces the services. Services whose shape is unchanged keep their
    /// verdicts; VIPs that remain keep their drain and announcement state;
    /// VIPs that disappear are withdrawn. `now` (absent at start) stamps
    /// the timeline.
    pub fn reconfigure(&mut self, shapes: Vec<ServiceShape>, now: Option<Instant>) {
        let mut old: Vec<ServiceState> = std::mem::take(&mut self.services);
        for shape in shapes {
            let kept = old.iter().position(|s| s.shape == shape);
            let state = match kept {
                Some(i) => old.swap_remove(i),
                None => {
                    if now.is_some() {
                        self.log(format!("service {} (re)configured", shape.name));
                    }
                    ServiceState::new(shape)
                }
            };
            self.services.push(state);
        }
        for s in &old {
            self.log(format!("service {} removed", s.shape.name));
        }
        self.checks.clear();
        for (si, s) in self.services.iter().enumerate() {
            for (ri, (_, ids)) in s.shape.servers.iter().enumerate() {
                for (ci, id) in ids.iter().enumerate() {
                    self.checks.insert(*id, (si, ri, ci));
                }
            }
        }
        let wanted: BTreeMap<Ipv4Addr, Ipv4Addr> = self
            .services
            .iter()
            .map(|s| (s.shape.vip, s.shape.area))
            .collect();
        let gone: Vec<Ipv4Addr> = self
            .vips
            .keys()
            .filter(|v| !wanted.contains_key(v))
            .copied()
            .collect();
        for vip in gone {
            if let Some(v) = self.vips.remove(&vip) {
                if v.announced.is_some() {
                    self.removed.insert(vip);
                }
            }
        }
        for (vip, area) in wanted {
            self.removed.remove(&vip);
            let v = self.vips.entry(vip).or_insert(VipState {
                area,
                drain: None,
                drain_left: None,
                held: false,
                ready_since: None,
                operator_withdrawn: false,
                announced: None,
            });
            v.area = area;
        }
        self.apply_disabled();
        if let Some(now) = now {
            self.refresh_ready(now);
        }
    }

    /// Marks the servers the operator took out in every service.
    fn apply_disabled(&mut self) {
        for s in &mut self.services {
            for (i, (addr, _)) in s.shape.servers.iter().enumerate() {
                if let Some(d) = s.disabled.get_mut(i) {
                    *d = self.disabled.contains(&(s.shape.vip, *addr));
                }
            }
            s.update_health();
        }
    }

    /// Whether a local `vip` is on lo (the daemon looks every few
    /// seconds); true when that changed.
    pub fn set_vip_on_lo(&mut self, vip: Ipv4Addr, on_lo: bool) -> bool {
        let changed = if on_lo {
            self.off_lo.remove(&vip)
        } else {
            self.off_lo.insert(vip)
        };
        if changed {
            self.log(format!(
                "VIP {vip} {}",
                if on_lo {
                    "on lo again"
                } else {
                    "no longer on lo"
                }
            ));
        }
        changed
    }

    /// Whether every service on `vip` is healthy and programmed.
    fn ready(&self, vip: Ipv4Addr) -> bool {
        if self.off_lo.contains(&vip) {
            return false;
        }
        let mut services = self
            .services
            .iter()
            .filter(|s| s.shape.vip == vip)
            .peekable();
        services.peek().is_some() && services.all(|s| s.healthy && s.programmed)
    }

    /// Keeps each VIP's `ready_since` (the start of its current healthy
    /// stretch) up to date.
    fn refresh_ready(&mut self, now: Instant) {
        let ready: Vec<(Ipv4Addr, bool)> = self.vips.keys().map(|v| (*v, self.ready(*v))).collect();
        for (vip, r) in ready {
            if let Some(v) = self.vips.get_mut(&vip) {
                match (r, v.ready_since) {
                    (true, None) => v.ready_since = Some(now),
                    (false, Some(_)) => v.ready_since = None,
                    _ => {}
                }
            }
        }
    }

    /// What check `id` probes (for status): its type and target.
    pub fn describe_check(&mut self, id: CheckId, what: String) {
        self.probes.entry(id).or_default().target = what;
    }

    /// The outcome of one probe of check `id` (before its rise/fall):
    /// true the first time this check fails, so that the reason is logged
    /// even for a check that never was up.
    pub fn note_probe(
        &mut self,
        id: CheckId,
        ok: bool,
        error: Option<&str>,
        latency: Duration,
    ) -> bool {
        let p = self.probes.entry(id).or_default();
        let first_failure = !ok && !p.failed_once;
        p.failed_once |= !ok;
        p.last = Some(if ok { "ok" } else { "failed" });
        p.latency_ms = Some(latency.as_secs_f64() * 1000.0);
        if let Some(e) = error {
            p.error = Some(e.to_string());
        } else if ok {
            p.error = None;
        }
        first_failure
    }

    /// Why `ipvs` service `name` is not programmed (`None`: it is, or
    /// nothing is known).
    pub fn set_program_error(&mut self, name: &str, error: Option<String>) {
        match error {
            Some(e) => {
                if self.program_errors.get(name) != Some(&e) {
                    self.changed = true;
                }
                self.program_errors.insert(name.to_string(), e);
            }
            None => {
                self.program_errors.remove(name);
            }
        }
    }

    /// Why `vip` is announced or not, in an operator's words.
    fn reason(&self, now: Instant, vip: Ipv4Addr, v: &VipState) -> String {
        if let Some(cost) = v.announced {
            return match v.drain {
                Some((DrainPhase::CostRaised, _)) => {
                    format!("draining: announced at cost {cost} until the withdrawal")
                }
                _ => format!("announced, cost {cost}"),
            };
        }
        if v.operator_withdrawn {
            return "withdrawn by the operator (anycastd vip advertise to return it)".into();
        }
        match v.drain {
            Some((DrainPhase::Withdrawn, _)) => {
                return "draining: withdrawn, waiting for connections to end".into()
            }
            Some((DrainPhase::Drained, _)) => {
                return match v.drain_left {
                    Some(n) => format!(
                        "drained, deadline passed with {n} connections left (anycastd undrain to return it)"
                    ),
                    None => "drained (anycastd undrain to return it)".into(),
                }
            }
            _ => {}
        }
        let mut why = Vec::new();
        if self.off_lo.contains(&vip) {
            why.push(format!(
                "VIP {vip} is not on lo: this node does not serve it (anycastd reload puts it back)"
            ));
        }
        for s in self.services.iter().filter(|s| s.shape.vip == vip) {
            if !s.settled() {
                why.push(format!(
                    "service {}: waiting for the first verdict of every check",
                    s.shape.name
                ));
            } else if !s.healthy {
                let up = s.servers_up();
                let mut w = format!("service {} unhealthy", s.shape.name);
                if s.shape.servers.len() > 1 || s.shape.quorum > 1 {
                    w.push_str(&format!(
                        ": {up} of {} servers up (quorum {})",
                        s.shape.servers.len(),
                        s.shape.quorum
                    ));
                }
                // The first failing check, with its last error.
                let failing =
                    s.shape
                        .servers
                        .iter()
                        .enumerate()
                        .find_map(|(ri, (addr, ids))| {
                            if s.disabled.get(ri).copied().unwrap_or(false) {
                                return Some(format!("server {addr} disabled by the operator"));
                            }
                            ids.iter().enumerate().find_map(|(ci, id)| {
                                (s.verdicts.get(ri).and_then(|v| v.get(ci)) == Some(&Some(false)))
                                    .then(|| {
                                        let p = self.probes.get(id);
                                        let target = p.map_or("", |p| p.target.as_str());
                                        let err =
                                            p.and_then(|p| p.error.as_deref()).unwrap_or("failed");
                                        format!("server {addr} check {} ({target}): {err}", ci + 1)
                                    })
                            })
                        });
                if let Some(f) = failing {
                    w.push_str(&format!("; {f}"));
                }
                why.push(w);
            }
            if !s.programmed {
                why.push(match self.program_errors.get(&s.shape.name) {
                    Some(e) => format!("service {} not programmed in IPVS: {e}", s.shape.name),
                    None => format!("service {} not programmed in IPVS yet", s.shape.name),
                });
            }
        }
        if why.is_empty() {
            if let (_, Some(at)) = self.desired(now, vip, v) {
                return format!(
                    "hold-down: healthy again, announced in {} ms if it stays so",
                    at.saturating_duration_since(now).as_millis()
                );
            }
            return "not announced".into();
        }
        format!("withdrawn: {}", why.join("; "))
    }

    /// True once after anything in the status changed.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    fn log(&mut self, what: String) {
        self.changed = true;
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        tracing::info!("{what}");
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(Event { at_ms, what });
    }

    /// A check's verdict after a probe (`up` includes its rise/fall).
    pub fn on_verdict(&mut self, now: Instant, id: CheckId, up: bool) {
        let Some(&(si, ri, ci)) = self.checks.get(&id) else {
            return; // a runner from before a reload, about to be stopped
        };
        let Some(s) = self.services.get_mut(si) else {
            return;
        };
        let Some(slot) = s.verdicts.get_mut(ri).and_then(|v| v.get_mut(ci)) else {
            return;
        };
        if *slot == Some(up) {
            return;
        }
        *slot = Some(up);
        self.changed = true;
        let server = s.shape.servers.get(ri).map(|(a, _)| *a);
        let name = s.shape.name.clone();
        let vip = s.shape.vip;
        let changed = s.update_health();
        let healthy = s.healthy;
        if let Some(addr) = server {
            self.log(format!(
                "service {name}: server {addr} check {} {}",
                ci + 1,
                if up { "up" } else { "down" }
            ));
        }
        if changed {
            self.log(format!(
                "service {name} {}",
                if healthy { "healthy" } else { "unhealthy" }
            ));
            if !healthy {
                if let Some(v) = self.vips.get_mut(&vip) {
                    v.held = true;
                }
            }
        }
        self.refresh_ready(now);
    }

    /// For `ipvs` services: whether the kernel table holds the service.
    pub fn set_programmed(&mut self, now: Instant, name: &str, programmed: bool) {
        if let Some(s) = self.services.iter_mut().find(|s| s.shape.name == name) {
            s.programmed = programmed;
        }
        self.refresh_ready(now);
    }

    /// `vip withdraw` (`withdrawn`) or `vip advertise`: the operator's
    /// hold on a VIP of a service. Errors for a VIP no service has.
    pub fn set_operator_withdrawn(
        &mut self,
        vip: Ipv4Addr,
        withdrawn: bool,
    ) -> Result<(), DrainError> {
        let Some(v) = self.vips.get_mut(&vip) else {
            return Err(DrainError::UnknownVip(vip));
        };
        if v.operator_withdrawn != withdrawn {
            v.operator_withdrawn = withdrawn;
            self.log(format!(
                "VIP {vip} {} by the operator",
                if withdrawn { "withdrawn" } else { "released" }
            ));
        }
        Ok(())
    }

    /// VIPs the operator withdrew.
    pub fn operator_withdrawn(&self) -> Vec<Ipv4Addr> {
        self.vips
            .iter()
            .filter(|(_, v)| v.operator_withdrawn)
            .map(|(vip, _)| *vip)
            .collect()
    }

    /// `server disable` (`disabled`) or `server enable`: real server
    /// `server` of the services on `vip` counts as down while disabled.
    /// Errors when no service on `vip` has that server.
    pub fn set_server_disabled(
        &mut self,
        now: Instant,
        vip: Ipv4Addr,
        server: IpAddr,
        disabled: bool,
    ) -> Result<(), DrainError> {
        let known = self
            .services
            .iter()
            .any(|s| s.shape.vip == vip && s.shape.servers.iter().any(|(a, _)| *a == server));
        if !known {
            return Err(DrainError::UnknownServer(vip, server));
        }
        let changed = if disabled {
            self.disabled.insert((vip, server))
        } else {
            self.disabled.remove(&(vip, server))
        };
        if changed {
            self.log(format!(
                "VIP {vip}: server {server} {} by the operator",
                if disabled { "disabled" } else { "enabled" }
            ));
            let before: Vec<bool> = self.services.iter().map(|s| s.healthy).collect();
            self.apply_disabled();
            for (s, was) in self.services.iter().zip(before) {
                if was && !s.healthy {
                    if let Some(v) = self.vips.get_mut(&s.shape.vip) {
                        v.held = true;
                    }
                }
            }
            self.refresh_ready(now);
        }
        Ok(())
    }

    /// Real servers the operator took out, by VIP.
    pub fn disabled_servers(&self) -> Vec<(Ipv4Addr, IpAddr)> {
        self.disabled.iter().copied().collect()
    }

    /// A VIP drained before a restart: withdrawn and drained at once (it
    /// was never announced in this life), until `undrain`.
    pub fn restore_drained(&mut self, now: Instant, vip: Ipv4Addr) -> Result<(), DrainError> {
        let Some(v) = self.vips.get_mut(&vip) else {
            return Err(DrainError::UnknownVip(vip));
        };
        v.drain = Some((DrainPhase::Drained, now));
        self.log(format!("VIP {vip} drained (kept from before the restart)"));
        Ok(())
    }

    /// VIPs in a drain (any phase), for the state file.
    pub fn drained(&self) -> Vec<Ipv4Addr> {
        self.vips
            .iter()
            .filter(|(_, v)| v.drain.is_some())
            .map(|(vip, _)| *vip)
            .collect()
    }

    /// Starts draining `vip` (or every VIP): the VIPs now draining.
    pub fn drain(
        &mut self,
        now: Instant,
        vip: Option<Ipv4Addr>,
    ) -> Result<Vec<Ipv4Addr>, DrainError> {
        let targets = self.targets(vip)?;
        for v in &targets {
            if let Some(state) = self.vips.get_mut(v) {
                if state.drain.is_none() {
                    state.drain = Some((DrainPhase::CostRaised, now));
                    state.drain_left = None;
                    self.log(format!("VIP {v} draining"));
                }
            }
        }
        Ok(targets)
    }

    /// Ends the drain of `vip` (or every VIP).
    pub fn undrain(&mut self, vip: Option<Ipv4Addr>) -> Result<Vec<Ipv4Addr>, DrainError> {
        let targets = self.targets(vip)?;
        for v in &targets {
            if let Some(state) = self.vips.get_mut(v) {
                state.drain_left = None;
                if state.drain.take().is_some() {
                    self.log(format!("VIP {v} undrained"));
                }
            }
        }
        Ok(targets)
    }

    fn targets(&self, vip: Option<Ipv4Addr>) -> Result<Vec<Ipv4Addr>, DrainError> {
        match vip {
            None => Ok(self.vips.keys().copied().collect()),
            Some(v) if self.vips.contains_key(&v) => Ok(vec![v]),
            Some(v) => Err(DrainError::UnknownVip(v)),
        }
    }

    /// The drain phase of `vip`.
    #[cfg(test)]
    pub fn drain_phase(&self, vip: Ipv4Addr) -> Option<DrainPhase> {
        self.vips.get(&vip).and_then(|v| v.drain.map(|(p, _)| p))
    }

    /// VIPs withdrawn by a drain and waiting for traffic to stop, with
    /// the instant of the withdrawal.
    pub fn draining(&self) -> Vec<(Ipv4Addr, Instant)> {
        self.vips
            .iter()
            .filter_map(|(vip, v)| match v.drain {
                Some((DrainPhase::Withdrawn, since)) => Some((*vip, since)),
                _ => None,
            })
            .collect()
    }

    /// The drain of `vip` is complete: no traffic left (`left` 0), or its
    /// deadline passed with `left` connections still there.
    pub fn drain_finished(&mut self, now: Instant, vip: Ipv4Addr, left: usize, why: &str) {
        if let Some(v) = self.vips.get_mut(&vip) {
            if matches!(v.drain, Some((DrainPhase::Withdrawn, _))) {
                v.drain = Some((DrainPhase::Drained, now));
                v.drain_left = (left > 0).then_some(left);
                self.log(format!("VIP {vip} drained: {why}"));
            }
        }
    }

    /// True when every VIP is drained or was never announced (shutdown
    /// may proceed).
    pub fn all_drained(&self) -> bool {
        self.vips.values().all(|v| {
            matches!(v.drain, Some((DrainPhase::Drained, _)))
                || (v.announced.is_none() && !matches!(v.drain, Some((DrainPhase::Withdrawn, _))))
        })
    }

    /// The VIPs of services of `mode` (for traffic measurement), with the
    /// services' ports.
    pub fn vip_ports(&self, vip: Ipv4Addr) -> Vec<(Mode, Option<u16>)> {
        self.services
            .iter()
            .filter(|s| s.shape.vip == vip)
            .map(|s| (s.shape.mode, s.shape.port))
            .collect()
    }

    /// The drain settings of `vip` (from its first service).
    pub fn drain_spec(&self, vip: Ipv4Addr) -> DrainSpec {
        self.services
            .iter()
            .find(|s| s.shape.vip == vip)
            .map(|s| s.shape.drain)
            .unwrap_or_default()
    }

    /// What `vip` should be announced as now, and the next instant that
    /// may change it without any input.
    fn desired(&self, now: Instant, vip: Ipv4Addr, v: &VipState) -> (Option<u16>, Option<Instant>) {
        let services: Vec<&ServiceState> = self
            .services
            .iter()
            .filter(|s| s.shape.vip == vip)
            .collect();
        let ready = !services.is_empty()
            && services.iter().all(|s| s.healthy && s.programmed)
            && !self.off_lo.contains(&vip);
        if !ready || v.operator_withdrawn {
            return (None, None);
        }
        if v.held {
            let hold = services
                .iter()
                .map(|s| s.shape.hold_down)
                .max()
                .unwrap_or_default();
            let since = v.ready_since.unwrap_or(now);
            if now < since + hold {
                return (None, Some(since + hold));
            }
        }
        let cost = services.iter().map(|s| s.shape.cost).max().unwrap_or(0);
        match v.drain {
            None => (Some(cost), None),
            Some((DrainPhase::Withdrawn | DrainPhase::Drained, _)) => (None, None),
            Some((DrainPhase::CostRaised, since)) => {
                let hold = services
                    .iter()
                    .map(|s| s.shape.drain.cost_hold)
                    .max()
                    .unwrap_or_default();
                let drain_cost = services
                    .iter()
                    .map(|s| s.shape.drain.cost)
                    .max()
                    .unwrap_or(u16::MAX);
                (Some(drain_cost.max(cost)), Some(since + hold))
            }
        }
    }

    /// The next announcement to make, if any. Call until `None`.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        self.refresh_ready(now);
        if let Some(vip) = self.removed.pop_first() {
            self.log(format!("VIP {vip} withdrawn (no longer configured)"));
            return Some(Action::Withdraw { vip });
        }
        // Drains move on to the withdrawal when their cost hold ends.
        let due: Vec<Ipv4Addr> = self
            .vips
            .iter()
            .filter_map(|(vip, v)| match v.drain {
                Some((DrainPhase::CostRaised, since))
                    if now >= since + self.drain_spec(*vip).cost_hold =>
                {
                    Some(*vip)
                }
                _ => None,
            })
            .collect();
        for vip in due {
            if let Some(v) = self.vips.get_mut(&vip) {
                v.drain = Some((DrainPhase::Withdrawn, now));
            }
        }
        let change = self.vips.iter().find_map(|(vip, v)| {
            let (want, _) = self.desired(now, *vip, v);
            (want != v.announced).then_some((*vip, v.area, want))
        });
        let (vip, area, want) = change?;
        if let Some(v) = self.vips.get_mut(&vip) {
            v.announced = want;
            if want.is_some() {
                v.held = false;
            }
        }
        Some(match want {
            Some(cost) => {
                self.log(format!("VIP {vip} advertised, cost {cost}"));
                Action::Advertise { area, vip, cost }
            }
            None => {
                self.log(format!("VIP {vip} withdrawn"));
                Action::Withdraw { vip }
            }
        })
    }

    /// When to call [`Director::poll_action`] next without new input.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.vips
            .iter()
            .filter_map(|(vip, v)| self.desired(now, *vip, v).1)
            .min()
    }

    /// Whether `vip` is announced now.
    pub fn is_announced(&self, vip: Ipv4Addr) -> bool {
        self.vips.get(&vip).is_some_and(|v| v.announced.is_some())
    }

    /// Each server of service `name`: up (every check up), down (one
    /// check down, or disabled by the operator), or not known yet (`None`: a check has no verdict). The
    /// IPVS weights follow: configured while up, 0 while down (the kernel
    /// keeps the Maglev table; only new flows avoid it), and while unknown
    /// what the kernel has, so a restart changes nothing.
    pub fn server_states(&self, name: &str) -> Vec<Option<bool>> {
        self.services
            .iter()
            .find(|s| s.shape.name == name)
            .map(|s| {
                s.verdicts
                    .iter()
                    .zip(&s.disabled)
                    .map(|(v, off)| {
                        if *off || v.contains(&Some(false)) {
                            Some(false)
                        } else if v.iter().all(|c| *c == Some(true)) {
                            Some(true)
                        } else {
                            None
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every VIP withdrawn at once (shutdown): the actions to send.
    pub fn withdraw_all(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        for (vip, v) in &mut self.vips {
            if v.announced.take().is_some() {
                out.push(Action::Withdraw { vip: *vip });
            }
            v.drain = Some((DrainPhase::Withdrawn, now));
        }
        out
    }

    /// The state for `anycastd status` / `show services`.
    pub fn status(&self, now: Instant) -> Status {
        let services = self
            .services
            .iter()
            .map(|s| ServiceStatus {
                name: s.shape.name.clone(),
                vip: s.shape.vip,
                mode: s.shape.mode,
                healthy: s.healthy,
                programmed: s.programmed,
                settled: s.settled(),
                quorum: s.shape.quorum,
                servers: s
                    .shape
                    .servers
                    .iter()
                    .enumerate()
                    .map(|(i, (addr, ids))| ServerStatus {
                        address: *addr,
                        up: s.server_up(i),
                        disabled: s.disabled.get(i).copied().unwrap_or(false),
                        checks: s.verdicts.get(i).cloned().unwrap_or_default(),
                        probes: ids
                            .iter()
                            .enumerate()
                            .map(|(ci, id)| {
                                let mut p = self.probes.get(id).cloned().unwrap_or_default();
                                p.n = ci + 1;
                                p.state = match s.verdicts.get(i).and_then(|v| v.get(ci)) {
                                    Some(Some(true)) => "up",
                                    Some(Some(false)) => "down",
                                    _ => "pending",
                                };
                                p
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let vips = self
            .vips
            .iter()
            .map(|(vip, v)| VipStatus {
                vip: *vip,
                area: v.area,
                advertised: v.announced.is_some(),
                cost: v.announced,
                drain: v.drain.map(|(p, _)| p),
                drain_connections_left: v.drain_left,
                operator_withdrawn: v.operator_withdrawn,
                reason: self.reason(now, *vip, v),
                hold_down_left_ms: self
                    .desired(now, *vip, v)
                    .1
                    .filter(|_| v.drain.is_none())
                    .map(|t| t.saturating_duration_since(now).as_millis()),
            })
            .collect();
        Status {
            services,
            vips,
            events: self.events.iter().cloned().collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub address: IpAddr,
    pub up: bool,
    /// Taken out by the operator (`server disable`).
    pub disabled: bool,
    /// Each check's verdict; `null` before its first.
    pub checks: Vec<Option<bool>>,
    /// Each check's target, state, last probe, last error and latency.
    pub probes: Vec<ProbeStatus>,
}

/// One check as `show services` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeStatus {
    /// Its number among the server's checks, from 1 (as in the config,
    /// the logs and the metrics).
    pub n: usize,
    /// Type and target, e.g. `http 198.18.1.1:80/health`.
    pub target: String,
    /// `up`, `down` or `pending` (after rise/fall).
    pub state: &'static str,
    /// The last probe: `ok` or `failed`.
    pub last: Option<&'static str>,
    /// The last probe's error (kept until a probe succeeds).
    pub error: Option<String>,
    pub latency_ms: Option<f64>,
    #[serde(skip)]
    failed_once: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub vip: Ipv4Addr,
    pub mode: Mode,
    pub healthy: bool,
    pub programmed: bool,
    pub settled: bool,
    pub quorum: usize,
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VipStatus {
    pub vip: Ipv4Addr,
    pub area: Ipv4Addr,
    pub advertised: bool,
    pub cost: Option<u16>,
    pub drain: Option<DrainPhase>,
    /// A drain that ended at its deadline: the connections left.
    pub drain_connections_left: Option<usize>,
    /// Withdrawn by the operator (`vip withdraw`).
    pub operator_withdrawn: bool,
    /// Why it is announced or not.
    pub reason: String,
    pub hold_down_left_ms: Option<u128>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub services: Vec<ServiceStatus>,
    pub vips: Vec<VipStatus>,
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const AREA: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    fn local(name: &str, vip: Ipv4Addr, first_check: CheckId, checks: u32) -> ServiceShape {
        ServiceShape {
            name: name.into(),
            vip,
            area: AREA,
            cost: 10,
            mode: Mode::Local,
            quorum: 1,
            hysteresis: 0,
            hold_down: Duration::from_secs(3),
            port: Some(80),
            servers: vec![(
                IpAddr::V4(vip),
                (first_check..first_check + checks).collect(),
            )],
            drain: DrainSpec::default(),
        }
    }

    fn drain_all(d: &mut Director, now: Instant) -> Vec<Action> {
        std::iter::from_fn(|| d.poll_action(now)).collect()
    }

    fn adv(cost: u16) -> Action {
        Action::Advertise {
            area: AREA,
            vip: VIP,
            cost,
        }
    }

    const WD: Action = Action::Withdraw { vip: VIP };

    #[test]
    fn withheld_until_every_check_has_a_verdict() {
        let t0 = Instant::now();
        let mut d = Director::new(vec![local("web", VIP, 1, 2)]);
        assert_eq!(drain_all(&mut d, t0), vec![]);
        d.on_verdict(t0, 1, true);
        assert_eq!(drain_all(&mut d, t0), vec![], "check 2 has not spoken");
        d.on_verdict(t0, 2, true);
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
        assert_eq!(drain_all(&mut d, t0), vec![], "said once");
    }

    #[test]
    fn withdrawn_at_once_and_back_after_hold_down() {
        let t0 = Instant::now();
        let mut d = Director::new(vec![local("web", VIP, 1, 1)]);
        d.on_verdict(t0, 1, true);
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
        let t1 = t0 + Duration::from_secs(10);
        d.on_verdict(t1, 1, false);
        assert_eq!(drain_all(&mut d, t1), vec![WD]);
        let t2 = t1 + Duration::from_millis(500);
        d.on_verdict(t2, 1, true);
        assert_eq!(drain_all(&mut d, t2), vec![], "held down");
        // Healthy without a break for hold_down (3 s) from t2.
        assert_eq!(d.poll_timeout(t2), Some(t2 + Duration::from_secs(3)));
        assert_eq!(drain_all(&mut d, t1 + Duration::from_secs(3)), vec![]);
        let t3 = t2 + Duration::from_secs(3);
        assert_eq!(drain_all(&mut d, t3), vec![adv(10)]);
        assert_eq!(d.poll_timeout(t3), None);
    }

    /// `hold_down_ms` means healthy without a break this long: after an
    /// outage longer than the hold-down, the VIP does not come back with
    /// the first good probe (it used to: the hold-down counted from the
    /// withdrawal).
    #[test]
    fn after_a_long_outage_the_hold_down_still_applies() {
        let t0 = Instant::now();
        let mut web = local("web", VIP, 1, 1);
        web.hold_down = Duration::from_millis(1000);
        let mut d = Director::new(vec![web]);
        d.on_verdict(t0, 1, true);
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
        let down = t0 + Duration::from_secs(1);
        d.on_verdict(down, 1, false);
        assert_eq!(drain_all(&mut d, down), vec![WD]);
        let up = down + Duration::from_secs(11);
        d.on_verdict(up, 1, true);
        assert_eq!(
            drain_all(&mut d, up),
            vec![],
            "not with the first good probe"
        );
        assert_eq!(drain_all(&mut d, up + Duration::from_millis(999)), vec![]);
        assert_eq!(
            drain_all(&mut d, up + Duration::from_millis(1000)),
            vec![adv(10)]
        );
    }

    #[test]
    fn flapping_keeps_it_down_until_stable() {
        let t0 = Instant::now();
        let mut d = Director::new(vec![local("web", VIP, 1, 1)]);
        d.on_verdict(t0, 1, true);
        drain_all(&mut d, t0);
        let mut t = t0;
        for _ in 0..5 {
            t += Duration::from_secs(1);
            d.on_verdict(t, 1, false);
            t += Duration::from_secs(1);
            d.on_verdict(t, 1, true);
            let acts = drain_all(&mut d, t);
            assert!(!acts.contains(&adv(10)), "came back while flapping");
        }
        // Healthy again since t: the whole hold-down (3 s) from there.
        assert_eq!(drain_all(&mut d, t + Duration::from_millis(2999)), vec![]);
        assert_eq!(drain_all(&mut d, t + Duration::from_secs(3)), vec![adv(10)]);
    }

    #[test]
    fn operator_withdraw_and_disabled_servers_hold_until_released() {
        let t0 = Instant::now();
        let shape = ServiceShape {
            mode: Mode::Ipvs,
            quorum: 1,
            hysteresis: 0,
            hold_down: Duration::ZERO,
            servers: (0..2u8)
                .map(|i| (IpAddr::V4(Ipv4Addr::new(198, 18, 3, i)), vec![u32::from(i)]))
                .collect(),
            ..local("lvs", VIP, 0, 0)
        };
        let mut d = Director::new(vec![shape]);
        d.set_programmed(t0, "lvs", true);
        d.on_verdict(t0, 0, true);
        d.on_verdict(t0, 1, true);
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
        d.set_operator_withdrawn(VIP, true).expect("known VIP");
        assert_eq!(drain_all(&mut d, t0), vec![WD]);
        assert_eq!(d.operator_withdrawn(), vec![VIP]);
        d.set_operator_withdrawn(VIP, false).expect("known VIP");
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
        assert!(d
            .set_operator_withdrawn(Ipv4Addr::new(192, 0, 2, 99), true)
            .is_err());
        // One server out: weight 0 (down), the service still has quorum.
        let s0 = IpAddr::V4(Ipv4Addr::new(198, 18, 3, 0));
        d.set_server_disabled(t0, VIP, s0, true)
            .expect("known server");
        assert_eq!(d.server_states("lvs"), vec![Some(false), Some(true)]);
        assert_eq!(drain_all(&mut d, t0), vec![]);
        // Both out: no quorum, withdrawn.
        let s1 = IpAddr::V4(Ipv4Addr::new(198, 18, 3, 1));
        d.set_server_disabled(t0, VIP, s1, true)
            .expect("known server");
        assert_eq!(drain_all(&mut d, t0), vec![WD]);
        assert_eq!(d.disabled_servers(), vec![(VIP, s0), (VIP, s1)]);
        d.set_server_disabled(t0, VIP, s1, false)
            .expect("known server");
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
        assert!(d
            .set_server_disabled(t0, VIP, IpAddr::V4(Ipv4Addr::new(198, 18, 3, 9)), true)
            .is_err());
    }

    #[test]
    fn quorum_with_hysteresis() {
        let t0 = Instant::now();
        let shape = ServiceShape {
            mode: Mode::Ipvs,
            quorum: 2,
            hysteresis: 1,
            hold_down: Duration::ZERO,
            servers: (0..4u8)
                .map(|i| (IpAddr::V4(Ipv4Addr::new(198, 18, 3, i)), vec![u32::from(i)]))
                .collect(),
            ..local("lvs", VIP, 0, 0)
        };
        let mut d = Director::new(vec![shape]);
        d.set_programmed(t0, "lvs", true);
        assert_eq!(d.server_states("lvs"), vec![None; 4], "no verdict yet");
        for i in 0..4 {
            d.on_verdict(t0, i, i < 2);
        }
        assert_eq!(
            d.server_states("lvs"),
            vec![Some(true), Some(true), Some(false), Some(false)]
        );
        assert_eq!(drain_all(&mut d, t0), vec![], "2 up < quorum + 1");
        d.on_verdict(t0, 2, true);
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
        d.on_verdict(t0, 2, false);
        d.on_verdict(t0, 1, false);
        assert_eq!(drain_all(&mut d, t0), vec![], "1 up is still >= quorum - 1");
        d.on_verdict(t0, 0, false);
        assert_eq!(drain_all(&mut d, t0), vec![WD]);
        assert_eq!(d.server_states("lvs"), vec![Some(false); 4]);
    }

    #[test]
    fn ipvs_service_waits_for_the_kernel_table() {
        let t0 = Instant::now();
        let shape = ServiceShape {
            mode: Mode::Ipvs,
            ..local("lvs", VIP, 1, 1)
        };
        let mut d = Director::new(vec![shape]);
        d.on_verdict(t0, 1, true);
        assert_eq!(drain_all(&mut d, t0), vec![]);
        d.set_programmed(t0, "lvs", true);
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
    }

    #[test]
    fn every_service_on_a_vip_must_be_healthy() {
        let t0 = Instant::now();
        let mut d = Director::new(vec![local("http", VIP, 1, 1), local("https", VIP, 2, 1)]);
        d.on_verdict(t0, 1, true);
        d.on_verdict(t0, 2, false);
        assert_eq!(drain_all(&mut d, t0), vec![]);
        d.on_verdict(t0, 2, true);
        assert_eq!(drain_all(&mut d, t0), vec![adv(10)]);
    }

    #[test]
    fn drain_raises_cost_then_withdraws_and_undrain_restores() {
        let t0 = Instant::now();
        let mut d = Director::new(vec![local("web", VIP, 1, 1)]);
        d.on_verdict(t0, 1, true);
        drain_all(&mut d, t0);
        assert_eq!(d.drain(t0, Some(VIP)), Ok(vec![VIP]));
        assert_eq!(drain_all(&mut d, t0), vec![adv(u16::MAX)]);
        assert_eq!(d.drain_phase(VIP), Some(DrainPhase::CostRaised));
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(d.poll_timeout(t0), Some(t1));
        assert_eq!(drain_all(&mut d, t1), vec![WD]);
        assert_eq!(d.drain_phase(VIP), Some(DrainPhase::Withdrawn));
        assert_eq!(d.draining(), vec![(VIP, t1)]);
        assert!(!d.all_drained());
        d.drain_finished(t1, VIP, 0, "no connections");
        assert_eq!(d.drain_phase(VIP), Some(DrainPhase::Drained));
        assert!(d.all_drained());
        // Health changes do not bring a drained VIP back.
        d.on_verdict(t1, 1, false);
        d.on_verdict(t1 + Duration::from_secs(9), 1, true);
        assert_eq!(drain_all(&mut d, t1 + Duration::from_secs(20)), vec![]);
        assert_eq!(d.undrain(None), Ok(vec![VIP]));
        assert_eq!(
            drain_all(&mut d, t1 + Duration::from_secs(20)),
            vec![adv(10)]
        );
        let other = Ipv4Addr::new(192, 0, 2, 99);
        assert_eq!(d.drain(t1, Some(other)), Err(DrainError::UnknownVip(other)));
    }

    #[test]
    fn reload_keeps_unchanged_services_and_withdraws_removed_vips() {
        let t0 = Instant::now();
        let other = Ipv4Addr::new(192, 0, 2, 20);
        let mut d = Director::new(vec![local("web", VIP, 1, 1), local("dns", other, 2, 1)]);
        d.on_verdict(t0, 1, true);
        d.on_verdict(t0, 2, true);
        assert_eq!(drain_all(&mut d, t0).len(), 2);
        // dns removed, web unchanged, a new service added.
        let third = Ipv4Addr::new(192, 0, 2, 30);
        d.reconfigure(
            vec![local("web", VIP, 1, 1), local("ntp", third, 3, 1)],
            Some(t0),
        );
        assert_eq!(
            drain_all(&mut d, t0),
            vec![Action::Withdraw { vip: other }],
            "web stays announced without a new verdict"
        );
        d.on_verdict(t0, 2, false); // the old runner: ignored
        d.on_verdict(t0, 3, true);
        assert_eq!(
            drain_all(&mut d, t0),
            vec![Action::Advertise {
                area: AREA,
                vip: third,
                cost: 10
            }]
        );
        let st = d.status(t0);
        assert_eq!(st.services.len(), 2);
        assert!(st.vips.iter().all(|v| v.advertised));
    }

    #[test]
    fn shutdown_withdraws_everything_announced() {
        let t0 = Instant::now();
        let mut d = Director::new(vec![local("web", VIP, 1, 1)]);
        d.on_verdict(t0, 1, true);
        drain_all(&mut d, t0);
        assert_eq!(d.withdraw_all(t0), vec![WD]);
        d.on_verdict(t0, 1, true);
        assert_eq!(drain_all(&mut d, t0), vec![], "stays withdrawn");
    }
}
