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
//!   withdrawal for health it comes back only once healthy for `hold_down`,
//!   so a flapping service does not flap the route. The speaker paces its
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
            shape,
            verdicts,
            healthy: false,
        }
    }

    fn settled(&self) -> bool {
        self.verdicts.iter().flatten().all(Option::is_some)
    }

    fn server_up(&self, i: usize) -> bool {
        self.verdicts
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
    /// When the VIP last went down for health (hold-down starts here).
    unhealthy_at: Option<Instant>,
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
                unhealthy_at: None,
                announced: None,
            });
            v.area = area;
        }
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
                "service {name}: server {addr} check {ci} {}",
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
                    v.unhealthy_at = Some(now);
                }
            }
        }
    }

    /// For `ipvs` services: whether the kernel table holds the service.
    #[allow(dead_code)] // called by the IPVS reconcile loop (issue 4)
    pub fn set_programmed(&mut self, name: &str, programmed: bool) {
        if let Some(s) = self.services.iter_mut().find(|s| s.shape.name == name) {
            s.programmed = programmed;
        }
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

    /// The drain of `vip` is complete: no traffic left, or its deadline.
    pub fn drain_finished(&mut self, now: Instant, vip: Ipv4Addr, why: &str) {
        if let Some(v) = self.vips.get_mut(&vip) {
            if matches!(v.drain, Some((DrainPhase::Withdrawn, _))) {
                v.drain = Some((DrainPhase::Drained, now));
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
        let ready = !services.is_empty() && services.iter().all(|s| s.healthy && s.programmed);
        if !ready {
            return (None, None);
        }
        if let Some(at) = v.unhealthy_at {
            let hold = services
                .iter()
                .map(|s| s.shape.hold_down)
                .max()
                .unwrap_or_default();
            if now < at + hold {
                return (None, Some(at + hold));
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
    /// check down), or not known yet (`None`: a check has no verdict). The
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
                    .map(|v| {
                        if v.contains(&Some(false)) {
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
                    .map(|(i, (addr, _))| ServerStatus {
                        address: *addr,
                        up: s.server_up(i),
                        checks: s.verdicts.get(i).cloned().unwrap_or_default(),
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
    /// Each check's verdict; `null` before its first.
    pub checks: Vec<Option<bool>>,
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
        assert_eq!(d.poll_timeout(t2), Some(t1 + Duration::from_secs(3)));
        let t3 = t1 + Duration::from_secs(3);
        assert_eq!(drain_all(&mut d, t3), vec![adv(10)]);
        assert_eq!(d.poll_timeout(t3), None);
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
        // The last withdrawal was 1 s ago: 2 s more.
        assert_eq!(drain_all(&mut d, t + Duration::from_secs(2)), vec![adv(10)]);
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
        d.set_programmed("lvs", true);
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
        d.set_programmed("lvs", true);
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
        d.drain_finished(t1, VIP, "no connections");
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
