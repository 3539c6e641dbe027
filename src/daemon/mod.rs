//! The daemon's top level: config, the OSPF speaker task, health-check
//! runners, the service state ([`Director`]), the control socket, metrics,
//! signals and systemd notifications.
//!
//! One task (the manager loop below) owns the [`Director`]: check reports,
//! control requests, SIGHUP and the director's own deadlines go in; the
//! director's announcements go out to the speaker as commands.

pub mod control;
pub mod ipvs;
pub mod lock;
pub mod memory;
pub mod metrics;
pub mod service;
pub mod state;
pub mod vip;
pub mod vrrp;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ospf::auth::AuthConfig;
use ospf::linux::speaker::{self, Command, SpeakerInterface};
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{Config, Service};
use crate::daemon::metrics::Metrics;
use crate::daemon::service::{Action, CheckId, Director, Mode, ServiceShape};
use crate::health::{self, ProbeContext, Report};
use anycastd::ipvs::model::{SyncDaemon, SyncState};
use anycastd::vrrp::instance::State;

/// Requests from the control socket to the manager.
#[derive(Debug)]
pub enum Control {
    Status(oneshot::Sender<Value>),
    Drain {
        vip: Option<Ipv4Addr>,
        reply: oneshot::Sender<Result<Value, String>>,
    },
    Undrain {
        vip: Option<Ipv4Addr>,
        reply: oneshot::Sender<Result<Value, String>>,
    },
    Reload(oneshot::Sender<Result<Value, String>>),
    RunningConfig(oneshot::Sender<Value>),
    /// `vip advertise` (`withdraw` false) or `vip withdraw`.
    Vip {
        vip: Ipv4Addr,
        withdraw: bool,
        cost: Option<u16>,
        area: Option<Ipv4Addr>,
        force: bool,
        reply: oneshot::Sender<Result<Value, String>>,
    },
    /// `server disable` or `server enable`.
    Server {
        vip: Ipv4Addr,
        server: std::net::IpAddr,
        disable: bool,
        reply: oneshot::Sender<Result<Value, String>>,
    },
}

/// The file:line of `name = "IFACE"` in the config's files, for an error
/// about that interface.
fn interface_line(c: &Config, iface: &str) -> String {
    let needle = format!("\"{iface}\"");
    for (file, text) in &c.sources {
        for (n, line) in text.lines().enumerate() {
            if line.contains("name") && line.contains(&needle) {
                return format!("{file}:{}: ", n + 1);
            }
        }
    }
    String::new()
}

/// The interfaces of the config that do not exist on this node (in this
/// network namespace).
fn missing_interfaces(c: &Config) -> Vec<String> {
    c.speaker
        .interfaces
        .iter()
        .filter(|i| nix::net::if_::if_nametoindex(i.name.as_str()).is_err())
        .map(|i| {
            format!(
                "{}ospf interface {} does not exist on this node (check-config --no-interface-check for another node's config)",
                interface_line(c, &i.name),
                i.name
            )
        })
        .collect()
}

pub fn check_config(path: &Path, check_interfaces: bool) -> Result<()> {
    let c = Config::load(path)?;
    if check_interfaces {
        let missing = missing_interfaces(&c);
        if !missing.is_empty() {
            anyhow::bail!("{}", missing.join("\n"));
        }
    }
    let s = &c.speaker;
    println!("router-id {}", s.instance.router_id);
    println!("control socket {}", c.control_socket.display());
    match c.metrics_listen {
        Some(a) => println!("metrics http://{a}/metrics"),
        None => println!("metrics off"),
    }
    for i in &s.interfaces {
        println!(
            "ospf interface {} area {} ({}) {} hello {} dead {} priority {} cost {} auth {}",
            i.name,
            i.area,
            s.instance.area_type(i.area),
            match i.network {
                ospf::instance::NetworkType::Broadcast => "broadcast",
                ospf::instance::NetworkType::PointToPoint => "point-to-point",
            },
            i.hello_interval,
            i.dead_interval,
            i.priority,
            i.cost,
            auth_summary(&i.auth)
        );
    }
    for w in &c.warnings {
        eprintln!("{}", w.message);
    }
    for (area, vip, cost) in &s.vips {
        println!("vip {vip}/32 area {area} cost {cost} (static)");
    }
    crate::daemon::vrrp::print_plan(&c.vrrp);
    for svc in &c.services {
        println!(
            "service {} {} {}:{} {} {} quorum {}/{} hold-down {} ms",
            svc.name,
            match svc.mode {
                Mode::Local => "local",
                Mode::Ipvs => "ipvs",
            },
            svc.vip,
            svc.port.map_or_else(|| "*".into(), |p| p.to_string()),
            format!("{:?}", svc.protocol).to_lowercase(),
            match &svc.vrrp {
                Some(v) => format!("carried by vrrp {v}"),
                None => format!("area {} cost {}", svc.area, svc.cost),
            },
            svc.quorum,
            svc.servers.len(),
            svc.hold_down.as_millis()
        );
        if let Some(ipvs) = &svc.ipvs {
            println!(
                "  ipvs scheduler {} forwarding {} persistence {}",
                ipvs.scheduler,
                format!("{:?}", ipvs.forwarding).to_lowercase(),
                ipvs.persistence
                    .map_or_else(|| "off".into(), |p| format!("{} s", p.as_secs()))
            );
        }
        for server in &svc.servers {
            println!(
                "  server {} port {} weight {}",
                server.address,
                server.port.map_or_else(|| "*".into(), |p| p.to_string()),
                server.weight
            );
            for c in &server.checks {
                println!(
                    "    check {} {} every {} ms, timeout {} ms, rise {} fall {}",
                    c.check_type().as_str(),
                    c.target,
                    c.interval.as_millis(),
                    c.timeout.as_millis(),
                    c.rise,
                    c.fall
                );
            }
        }
    }
    Ok(())
}

/// How check-config shows an interface's authentication: the type and,
/// for keys, each Key ID with its algorithm and windows (never secrets).
fn auth_summary(auth: &ospf::auth::AuthConfig) -> String {
    use ospf::auth::{format_utc, AuthConfig, Window};
    let window = |w: Window| match (w.from, w.until) {
        (None, None) => "always".to_string(),
        (f, u) => format!(
            "{}..{}",
            f.map(format_utc).unwrap_or_default(),
            u.map(format_utc).unwrap_or_default()
        ),
    };
    match auth {
        AuthConfig::Null => "none".into(),
        AuthConfig::Simple(_) => "simple".into(),
        AuthConfig::Cryptographic { keys, .. } => {
            let keys: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "key {} {} send {} accept {}",
                        k.id,
                        k.algorithm.name(),
                        window(k.send_window),
                        window(k.accept_window)
                    )
                })
                .collect();
            format!("cryptographic ({})", keys.join("; "))
        }
    }
}

/// Sets the running daemon's log filter (`anycastd log-level`).
pub type LogFilterSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static LOG_FILTER: std::sync::OnceLock<LogFilterSetter> = std::sync::OnceLock::new();

/// Installs the setter of the log filter (from `main`, which owns the
/// subscriber).
pub fn set_log_filter_handle(f: LogFilterSetter) {
    let _ = LOG_FILTER.set(f);
}

/// Changes the log filter; an invalid one is refused and nothing changes.
pub fn set_log_filter(filter: &str) -> Result<(), String> {
    let set = LOG_FILTER
        .get()
        .ok_or_else(|| "logging cannot be changed at run time".to_string())?;
    set(filter)?;
    tracing::warn!(%filter, "log filter changed");
    Ok(())
}

pub fn run(path: &Path) -> Result<()> {
    let cfg = Config::load(path)?;
    // Before any packet or file: one daemon per configuration. Held until
    // the process ends.
    let lock = lock::InstanceLock::take(&cfg.control_socket)?;
    tracing::debug!(lock = %lock.path().display(), "one daemon per config");
    // Once, at start: a reload does not repeat them.
    for w in &cfg.warnings {
        tracing::warn!("{}", w.message);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let r = rt.block_on(run_async(path.to_path_buf(), cfg));
    drop(lock);
    r
}

type Labels = Vec<(&'static str, String)>;

/// One check's metric handles, looked up once: a report then costs a few
/// atomic operations, not label hashing.
struct CheckMetrics {
    labels: Labels,
    probes: prometheus_client::metrics::counter::Counter,
    up: prometheus_client::metrics::gauge::Gauge,
    latency: prometheus_client::metrics::histogram::Histogram,
}

impl CheckMetrics {
    fn new(m: &Metrics, labels: Labels) -> CheckMetrics {
        let mut short = labels.clone();
        short.retain(|(k, _)| *k == "service" || *k == "type");
        CheckMetrics {
            probes: m.check_probes.get_or_create(&labels).clone(),
            up: m.check_up.get_or_create(&labels).clone(),
            latency: m.check_latency.get_or_create(&short).clone(),
            labels,
        }
    }
}

/// A service as running: its config and its checks' ids per server.
struct Running {
    svc: Service,
    fingerprint: String,
    ids: Vec<Vec<CheckId>>,
}

struct Manager {
    config_path: PathBuf,
    config: Config,
    director: Director,
    running: Vec<Running>,
    /// Each check's task and its metrics.
    runners: HashMap<CheckId, (JoinHandle<()>, CheckMetrics)>,
    next_id: CheckId,
    ctx: Arc<ProbeContext>,
    reports: mpsc::UnboundedSender<Report<CheckId>>,
    speaker: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
    /// Connections counted on draining VIPs, for status.
    connections: BTreeMap<Ipv4Addr, usize>,
    /// The IPVS loop, when a service is in `ipvs` mode, and the table last
    /// handed to it.
    ipvs: Option<crate::daemon::ipvs::Handle>,
    /// Where the IPVS loop, once started, sends its reports.
    ipvs_reports: mpsc::UnboundedSender<crate::daemon::ipvs::Report>,
    ipvs_sent: Option<Vec<anycastd::ipvs::reconcile::Desired>>,
    /// The generation of the table last handed to the IPVS loop.
    ipvs_generation: u64,
    /// Each `ipvs` service's fingerprint as last programmed.
    fingerprints: BTreeMap<String, String>,
    /// The VRRP instances.
    vrrp: crate::daemon::vrrp::Handle,
    /// Static `[[vip]]`s the operator withdrew.
    static_withdrawn: BTreeSet<Ipv4Addr>,
    /// VIPs in no config announced by the operator with `--force`.
    forced: BTreeMap<Ipv4Addr, (Ipv4Addr, u16)>,
}

impl Manager {
    /// Starts, keeps or stops check runners for `services` and hands the
    /// shapes to the director.
    fn apply(&mut self, services: &[Service], now: Option<Instant>) {
        let mut old = std::mem::take(&mut self.running);
        let mut running = Vec::new();
        for svc in services {
            let fingerprint = svc.fingerprint();
            if let Some(i) = old.iter().position(|r| r.fingerprint == fingerprint) {
                running.push(old.swap_remove(i));
                continue;
            }
            let mut ids = Vec::new();
            for server in &svc.servers {
                let mut server_ids = Vec::new();
                for (ci, check) in server.checks.iter().enumerate() {
                    let id = self.next_id;
                    self.next_id += 1;
                    let labels = vec![
                        ("service", svc.name.clone()),
                        ("server", server.address.to_string()),
                        ("check", (ci + 1).to_string()),
                        ("type", check.check_type().as_str().to_string()),
                    ];
                    self.director.describe_check(id, describe_check(check));
                    let handle =
                        health::spawn(id, check.clone(), self.ctx.clone(), self.reports.clone());
                    let m = CheckMetrics::new(&self.metrics, labels);
                    self.runners.insert(id, (handle, m));
                    server_ids.push(id);
                }
                ids.push(server_ids);
            }
            running.push(Running {
                svc: svc.clone(),
                fingerprint,
                ids,
            });
        }
        for r in old {
            for id in r.ids.iter().flatten() {
                if let Some((handle, m)) = self.runners.remove(id) {
                    handle.abort();
                    self.metrics.check_up.remove(&m.labels);
                    self.metrics.check_probes.remove(&m.labels);
                }
            }
            let labels = service_labels(&r.svc);
            self.metrics.service_healthy.remove(&labels);
        }
        let shapes = running
            .iter()
            .map(|r| ServiceShape {
                name: r.svc.name.clone(),
                vip: r.svc.vip,
                area: r.svc.area,
                cost: r.svc.cost,
                mode: r.svc.mode,
                quorum: r.svc.quorum,
                hysteresis: r.svc.quorum_hysteresis,
                hold_down: r.svc.hold_down,
                port: r.svc.port,
                servers: r
                    .svc
                    .servers
                    .iter()
                    .zip(&r.ids)
                    .map(|(s, ids)| (s.address, ids.clone()))
                    .collect(),
                drain: r.svc.drain,
            })
            .collect();
        self.running = running;
        self.director.reconfigure(shapes, now);
    }

    fn on_report(&mut self, now: Instant, r: &Report<CheckId>) {
        if let Some((_, m)) = self.runners.get(&r.id) {
            m.probes.inc();
            m.up.set(i64::from(r.up));
            m.latency.observe(r.latency.as_secs_f64());
            if let Some(reason) = r.reason {
                let mut l = m.labels.clone();
                l.push(("reason", reason.to_string()));
                self.metrics.check_failures.get_or_create(&l).inc();
            }
            if let (Some(up), Some(e)) = (r.transition, &r.error) {
                let l = |k: &str| label(&m.labels, k);
                tracing::warn!(
                    service = l("service"),
                    server = l("server"),
                    check = l("check"),
                    check_type = l("type"),
                    up,
                    error = %e,
                    "check changed state"
                );
            }
        }
        // A check that fails from the start never changes state: its
        // first failure is logged all the same.
        let first = self
            .director
            .note_probe(r.id, r.ok, r.error.as_deref(), r.latency);
        if first && r.transition.is_none() {
            if let Some((_, m)) = self.runners.get(&r.id) {
                let l = |k: &str| label(&m.labels, k);
                tracing::warn!(
                    service = l("service"),
                    server = l("server"),
                    check = l("check"),
                    check_type = l("type"),
                    up = r.up,
                    error = r.error.as_deref().unwrap_or("failed"),
                    "check failed"
                );
            }
        }
        self.director.on_verdict(now, r.id, r.up);
    }

    /// Gets `ipvs` services ready: their VIPs on lo (IPVS sees only
    /// packets for local addresses; VRRP's own VIPs excepted, it puts them
    /// on its interface while master), VIPs of `old` services no longer
    /// used taken off lo, and the IPVS loop started if it is needed
    /// (`ipvs` services or `lvs_sync` in `vrrp`) and not running yet.
    async fn prepare_ipvs(
        &mut self,
        services: &[Service],
        old: &[Service],
        vrrp: &[crate::daemon::vrrp::Instance],
    ) {
        let on_lo = |list: &[Service]| -> Vec<Ipv4Addr> {
            list.iter()
                .filter(|s| s.mode == Mode::Ipvs && s.vrrp.is_none())
                .map(|s| s.vip)
                .collect()
        };
        let (mut want, had) = (on_lo(services), on_lo(old));
        // A local service is served here only with its VIP on lo: the
        // daemon puts it there (and leaves it when the service goes: the
        // listener may still use it).
        let local: Vec<Ipv4Addr> = services
            .iter()
            .filter(|s| s.mode == Mode::Local && s.vrrp.is_none())
            .map(|s| s.vip)
            .collect();
        for vip in &local {
            match crate::daemon::vip::add_to_lo(*vip).await {
                Ok(true) => tracing::info!(%vip, "added to lo"),
                Ok(false) => {}
                Err(e) => tracing::error!(%vip, "cannot put the VIP on lo: {e}"),
            }
        }
        want.retain(|v| !local.contains(v));
        // Warned once per service and scheduler, not again on each reload.
        let known = |s: &Service| {
            old.iter().any(|o| {
                o.name == s.name
                    && o.ipvs.as_ref().map(|i| &i.scheduler)
                        == s.ipvs.as_ref().map(|i| &i.scheduler)
            })
        };
        for s in services
            .iter()
            .filter(|s| s.mode == Mode::Ipvs && !known(s))
        {
            if let Some(ipvs) = &s.ipvs {
                if !matches!(ipvs.scheduler.as_str(), "mh" | "sh") {
                    tracing::warn!(
                        service = %s.name,
                        scheduler = %ipvs.scheduler,
                        "not a consistent-hash scheduler: behind ECMP, flows moved between \
                         directors will land on other servers (use mh)"
                    );
                }
            }
        }
        for vip in &want {
            match crate::daemon::vip::add_to_lo(*vip).await {
                Ok(true) => tracing::info!(%vip, "added to lo"),
                Ok(false) => {}
                Err(e) => tracing::error!(%vip, "cannot put the VIP on lo: {e}"),
            }
        }
        for vip in had.iter().filter(|v| !want.contains(v)) {
            match crate::daemon::vip::remove_from_lo(*vip).await {
                Ok(true) => tracing::info!(%vip, "removed from lo"),
                Ok(false) => {}
                Err(e) => tracing::error!(%vip, "cannot take the VIP off lo: {e}"),
            }
        }
        let needed = vrrp.iter().any(|v| v.lvs_sync.is_some())
            || services.iter().any(|s| s.mode == Mode::Ipvs);
        if needed && self.ipvs.is_none() {
            self.ipvs = Some(crate::daemon::ipvs::spawn(
                Duration::from_secs(10),
                self.ipvs_reports.clone(),
            ));
        }
    }

    /// Whether each local VIP is still on lo: one removed by something
    /// else is withdrawn (the service is no longer served here), and back
    /// once the address is.
    async fn watch_lo(&mut self) {
        let Ok(on_lo) = crate::daemon::vip::lo_vips().await else {
            return;
        };
        let local: BTreeSet<Ipv4Addr> = self
            .running
            .iter()
            .filter(|r| r.svc.mode == Mode::Local && r.svc.vrrp.is_none())
            .map(|r| r.svc.vip)
            .collect();
        for vip in local {
            let present = on_lo.contains(&vip);
            if self.director.set_vip_on_lo(vip, present) {
                if present {
                    tracing::info!(%vip, "the VIP is on lo again");
                } else {
                    tracing::warn!(%vip, "the VIP is no longer on lo: withdrawn (this node does not serve it)");
                }
            }
        }
    }

    /// The IPVS table the services and their servers' health ask for:
    /// configured weights while up, 0 while down, the kernel's while not
    /// known yet.
    fn desired_ipvs(&self) -> Vec<anycastd::ipvs::reconcile::Desired> {
        self.running
            .iter()
            .filter(|r| r.svc.mode == crate::daemon::service::Mode::Ipvs)
            .filter_map(|r| {
                let states = self.director.server_states(&r.svc.name);
                let mut d = ipvs::desired(&r.svc, |i, srv| match states.get(i) {
                    Some(Some(true)) => srv.weight,
                    _ => 0,
                })?;
                for (i, srv) in r.svc.servers.iter().enumerate() {
                    if states.get(i).is_none_or(Option::is_none) {
                        let port = srv.port.or(r.svc.port).unwrap_or(0);
                        d.unknown.insert((srv.address, port));
                    }
                }
                Some(d)
            })
            .collect()
    }

    /// Hands the IPVS loop the table when it changed. A service whose VIP
    /// is not announced yet counts as unprogrammed until the kernel has
    /// this table, so its VIP is never announced to weights still 0.
    fn sync_ipvs(&mut self) {
        let Some(h) = &self.ipvs else { return };
        let want = self.desired_ipvs();
        if self.ipvs_sent.as_ref() == Some(&want) {
            return;
        }
        self.ipvs_generation += 1;
        h.set(self.ipvs_generation, want.clone());
        let before = self.ipvs_sent.take().unwrap_or_default();
        for r in &self.running {
            if r.svc.mode != crate::daemon::service::Mode::Ipvs
                || self.director.is_announced(r.svc.vip)
            {
                continue;
            }
            let key = ipvs::desired(&r.svc, |_, s| s.weight).map(|d| d.service.key);
            let find = |t: &[anycastd::ipvs::reconcile::Desired]| {
                t.iter().find(|d| Some(d.service.key) == key).cloned()
            };
            if find(&want) != find(&before) {
                self.director
                    .set_programmed(Instant::now(), &r.svc.name, false);
            }
        }
        self.ipvs_sent = Some(want);
    }

    /// The IPVS loop's findings: a service counts as programmed only when
    /// the kernel holds it exactly as desired.
    fn on_ipvs_report(&mut self, report: &crate::daemon::ipvs::Report) {
        let keys: Vec<(String, Option<anycastd::ipvs::ServiceKey>)> = self
            .running
            .iter()
            .filter(|r| r.svc.mode == crate::daemon::service::Mode::Ipvs)
            .map(|r| {
                let key = ipvs::desired(&r.svc, |_, s| s.weight).map(|d| d.service.key);
                (r.svc.name.clone(), key)
            })
            .collect();
        for (name, key) in keys {
            let (ok, fingerprint) = key
                .and_then(|k| report.services.get(&k).cloned())
                .unwrap_or((false, String::new()));
            if let Some(k) = key {
                self.ipvs_metrics(&name, report.tables.get(&k), ok);
            }
            // A report on an older table cannot make a service programmed.
            let current = report.generation == self.ipvs_generation;
            if ok && report.error.is_none() {
                if current {
                    self.director.set_programmed(Instant::now(), &name, true);
                    self.director.set_program_error(&name, None);
                }
            } else {
                self.director.set_programmed(Instant::now(), &name, false);
                self.director.set_program_error(
                    &name,
                    Some(report.error.clone().unwrap_or_else(|| {
                        "the kernel's table differs from the desired one".into()
                    })),
                );
            }
            if !fingerprint.is_empty() && self.fingerprints.get(&name) != Some(&fingerprint) {
                tracing::info!(service = %name, %fingerprint, "ipvs: programmed");
                self.fingerprints.insert(name, fingerprint);
            }
        }
    }

    /// The kernel's counters of one IPVS service into the metrics.
    fn ipvs_metrics(
        &self,
        name: &str,
        table: Option<&(
            Option<anycastd::ipvs::model::Stats>,
            Vec<anycastd::ipvs::Dest>,
        )>,
        programmed: bool,
    ) {
        let m = &self.metrics;
        let svc = vec![("service", name.to_string())];
        m.ipvs_programmed
            .get_or_create(&svc)
            .set(i64::from(programmed));
        let Some((stats, dests)) = table else { return };
        if let Some(st) = stats {
            crate::daemon::metrics::catch_up(&m.ipvs_connections.get_or_create(&svc), st.conns);
            for (dir, p, b) in [
                ("in", st.in_packets, st.in_bytes),
                ("out", st.out_packets, st.out_bytes),
            ] {
                let mut l = svc.clone();
                l.push(("direction", dir.to_string()));
                crate::daemon::metrics::catch_up(&m.ipvs_packets.get_or_create(&l), p);
                crate::daemon::metrics::catch_up(&m.ipvs_bytes.get_or_create(&l), b);
            }
        }
        for d in dests {
            let server = vec![
                ("service", name.to_string()),
                ("server", d.addr.to_string()),
            ];
            m.ipvs_server_weight
                .get_or_create(&server)
                .set(i64::from(d.weight));
            for (state, n) in [("active", d.active_conns), ("inactive", d.inactive_conns)] {
                let mut l = server.clone();
                l.push(("state", state.to_string()));
                m.ipvs_server_connections
                    .get_or_create(&l)
                    .set(i64::from(n));
            }
        }
    }

    /// Sends the director's pending announcements to the speaker and
    /// refreshes the state metrics.
    async fn flush(&mut self, now: Instant) {
        // Verdicts may have changed the weights: the IPVS table first, so
        // a VIP waits for its servers' weights (see `sync_ipvs`).
        self.sync_ipvs();
        while let Some(action) = self.director.poll_action(now) {
            let (vip, up) = match action {
                Action::Advertise { vip, .. } => (vip, true),
                Action::Withdraw { vip } => (vip, false),
            };
            // A VRRP instance carries this VIP: its services' state goes
            // to the instances that track them, nothing to OSPF.
            let owned: Vec<&str> = self
                .running
                .iter()
                .filter(|r| r.svc.vip == vip && r.svc.vrrp.is_some())
                .map(|r| r.svc.name.as_str())
                .collect();
            if !owned.is_empty() {
                for name in owned {
                    tracing::info!(service = %name, up, "vrrp: tracked service");
                    self.vrrp.service_state(name, up);
                }
                continue;
            }
            let cmd = match action {
                Action::Advertise { area, vip, cost } => Command::Advertise { area, vip, cost },
                Action::Withdraw { vip } => Command::Withdraw { vip },
            };
            if self.speaker.send(cmd).await.is_err() {
                tracing::error!("OSPF speaker gone");
            }
        }
        if !self.director.take_changed() {
            return;
        }
        let status = self.director.status(now);
        for s in &status.services {
            if let Some(r) = self.running.iter().find(|r| r.svc.name == s.name) {
                self.metrics
                    .service_healthy
                    .get_or_create(&service_labels(&r.svc))
                    .set(i64::from(s.healthy));
            }
            for server in &s.servers {
                self.metrics
                    .server_up
                    .get_or_create(&vec![
                        ("service", s.name.clone()),
                        ("server", server.address.to_string()),
                    ])
                    .set(i64::from(server.up));
            }
        }
        for v in &status.vips {
            let l = vec![("vip", v.vip.to_string())];
            self.metrics
                .vip_advertised
                .get_or_create(&l)
                .set(i64::from(v.advertised));
            self.metrics
                .vip_cost
                .get_or_create(&l)
                .set(v.cost.map_or(0, i64::from));
            self.metrics
                .vip_draining
                .get_or_create(&l)
                .set(i64::from(v.drain.is_some()));
        }
    }

    /// Measures traffic on VIPs whose drain withdrew them, and finishes
    /// the drains whose traffic stopped or whose deadline passed.
    fn watch_drains(&mut self, now: Instant) {
        for (vip, since) in self.director.draining() {
            let spec = self.director.drain_spec(vip);
            let ports = self.director.vip_ports(vip);
            // Local services: TCP sockets on VIP:port; IPVS services: the
            // kernel's IPVS connections to VIP:port. A local service on
            // every port cannot be measured here and waits for the deadline.
            let measurable = ports.iter().all(|(_, p)| p.is_some());
            let count: usize = ports
                .iter()
                .filter_map(|(m, p)| Some((*m, (*p)?)))
                .map(|(m, p)| match m {
                    Mode::Local => tcp_connections(vip, p),
                    Mode::Ipvs => ipvs_connections(vip, p),
                })
                .sum();
            self.connections.insert(vip, count);
            if measurable && count == 0 {
                self.director
                    .drain_finished(now, vip, 0, "no connections left");
            } else if now >= since + spec.deadline {
                let why = if measurable {
                    format!("deadline ({count} connections left)")
                } else {
                    "deadline (traffic on every port cannot be counted)".to_string()
                };
                self.director.drain_finished(now, vip, count, &why);
            }
        }
    }

    /// Tells the VRRP instances the state of every service on a VRRP
    /// address: up while the director announces its VIP.
    fn tell_vrrp_services(&self) {
        for r in self.running.iter().filter(|r| r.svc.vrrp.is_some()) {
            self.vrrp
                .service_state(&r.svc.name, self.director.is_announced(r.svc.vip));
        }
    }

    /// A VRRP instance entered `state`: metrics, and the IPVS connection
    /// sync daemon's role when the instance has `lvs_sync`.
    fn on_vrrp_state(&mut self, instance: &str, state: State) {
        let m = &self.metrics;
        for s in [
            State::Initialize,
            State::Backup,
            State::Master,
            State::Fault,
        ] {
            let l = vec![("instance", instance.to_string()), ("state", s.to_string())];
            m.vrrp_state.get_or_create(&l).set(i64::from(s == state));
        }
        m.vrrp_transitions
            .get_or_create(&vec![
                ("instance", instance.to_string()),
                ("state", state.to_string()),
            ])
            .inc();
        let sync = self
            .config
            .vrrp
            .iter()
            .find(|v| v.run.name == instance)
            .and_then(|v| v.lvs_sync.clone());
        if let (Some(sync), Some(h)) = (sync, &self.ipvs) {
            let role = if state == State::Master {
                SyncState::Master
            } else {
                SyncState::Backup
            };
            h.set_sync(SyncDaemon::new(
                role,
                &sync.interface,
                u32::from(sync.syncid),
            ));
        }
    }

    /// Priorities and other-master counts into the metrics.
    async fn vrrp_metrics(&self) {
        for v in self.vrrp.status().await {
            let Some(name) = v["name"].as_str() else {
                continue;
            };
            let l = vec![("instance", name.to_string())];
            let get = |k: &str| v[k].as_i64().unwrap_or(0);
            self.metrics
                .vrrp_priority
                .get_or_create(&l)
                .set(get("priority"));
            self.metrics
                .vrrp_other_masters
                .get_or_create(&l)
                .set(get("other_masters"));
        }
    }

    /// The operator's standing decisions, as the state file keeps them.
    fn maintenance(&self) -> state::Maintenance {
        let mut withdrawn: BTreeSet<Ipv4Addr> =
            self.director.operator_withdrawn().into_iter().collect();
        withdrawn.extend(self.static_withdrawn.iter().copied());
        state::Maintenance {
            drained: self.director.drained().into_iter().collect(),
            withdrawn,
            disabled: self.director.disabled_servers().into_iter().collect(),
        }
    }

    /// Writes the state file; a change that could not be kept is an error
    /// for the command that made it.
    fn save_state(&self) -> Result<(), String> {
        self.maintenance()
            .save(&self.config.state_file)
            .map_err(|e| format!("applied, but not kept across a restart: {e:#}"))
    }

    /// Applies what the state file kept (before anything is announced).
    fn restore(&mut self, m: &state::Maintenance, now: Instant) {
        for vip in &m.drained {
            match self.director.restore_drained(now, *vip) {
                Ok(()) => {
                    tracing::warn!(%vip, "kept drained from before the restart (anycastd undrain {vip} to return it)")
                }
                Err(e) => tracing::warn!(%vip, "state file: drain dropped: {e}"),
            }
        }
        for vip in &m.withdrawn {
            if self.is_static_vip(*vip) {
                self.static_withdrawn.insert(*vip);
                tracing::warn!(%vip, "kept withdrawn from before the restart");
            } else if self.director.set_operator_withdrawn(*vip, true).is_ok() {
                tracing::warn!(%vip, "kept withdrawn from before the restart (anycastd vip advertise {vip} to return it)");
            } else {
                tracing::warn!(%vip, "state file: withdrawal dropped: no longer configured");
            }
        }
        for (vip, server) in &m.disabled {
            match self.director.set_server_disabled(now, *vip, *server, true) {
                Ok(()) => {
                    tracing::warn!(%vip, %server, "server kept disabled from before the restart")
                }
                Err(e) => tracing::warn!("state file: {e}: dropped"),
            }
        }
    }

    fn is_static_vip(&self, vip: Ipv4Addr) -> bool {
        self.config.speaker.vips.iter().any(|(_, v, _)| *v == vip)
    }

    /// `vip advertise|withdraw`: a VIP of a service is held (or released)
    /// by the director; a static `[[vip]]` is told to the speaker; any
    /// other VIP only with `force`.
    async fn vip_command(
        &mut self,
        vip: Ipv4Addr,
        withdraw: bool,
        cost: Option<u16>,
        area: Option<Ipv4Addr>,
        force: bool,
    ) -> Result<Value, String> {
        let statik = self
            .config
            .speaker
            .vips
            .iter()
            .find(|(_, v, _)| *v == vip)
            .copied();
        if self.running.iter().any(|r| r.svc.vip == vip) {
            if cost.is_some() || area.is_some() {
                return Err(format!(
                    "VIP {vip} belongs to a service: its cost and area come from the config"
                ));
            }
            self.director
                .set_operator_withdrawn(vip, withdraw)
                .map_err(|e| e.to_string())?;
        } else if let Some((a, _, c)) = statik {
            let cmd = if withdraw {
                self.static_withdrawn.insert(vip);
                Command::Withdraw { vip }
            } else {
                self.static_withdrawn.remove(&vip);
                Command::Advertise {
                    area: area.unwrap_or(a),
                    vip,
                    cost: cost.unwrap_or(c),
                }
            };
            self.speaker
                .send(cmd)
                .await
                .map_err(|_| "speaker stopped".to_string())?;
        } else if force {
            let cmd = if withdraw {
                self.forced.remove(&vip);
                Command::Withdraw { vip }
            } else {
                let a = area.unwrap_or_else(|| {
                    self.config
                        .speaker
                        .interfaces
                        .first()
                        .map_or(Ipv4Addr::UNSPECIFIED, |i| i.area)
                });
                let c = cost.unwrap_or(0);
                self.forced.insert(vip, (a, c));
                Command::Advertise {
                    area: a,
                    vip,
                    cost: c,
                }
            };
            self.speaker
                .send(cmd)
                .await
                .map_err(|_| "speaker stopped".to_string())?;
            return Ok(json!({"ok": true, "vip": vip, "forced": true}));
        } else {
            return Err(format!(
                "VIP {vip} is in no service and no [[vip]] of the config (--force to announce it anyway)"
            ));
        }
        self.save_state()?;
        Ok(json!({"ok": true, "vip": vip, "withdrawn": withdraw}))
    }

    async fn status(&self, now: Instant) -> Value {
        let mut v = serde_json::to_value(self.director.status(now)).unwrap_or(Value::Null);
        if let Some(vips) = v.get_mut("vips").and_then(Value::as_array_mut) {
            for entry in vips {
                let conns = entry
                    .get("vip")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<Ipv4Addr>().ok())
                    .and_then(|a| self.connections.get(&a).copied());
                if let (Some(c), Some(obj)) = (conns, entry.as_object_mut()) {
                    obj.insert("connections".into(), json!(c));
                }
            }
        }
        // Static and forced VIPs: announced by the speaker as configured
        // (or told), unless the operator withdrew them.
        if let Some(vips) = v.get_mut("vips").and_then(Value::as_array_mut) {
            for (area, vip, cost) in &self.config.speaker.vips {
                let withdrawn = self.static_withdrawn.contains(vip);
                vips.push(json!({
                    "vip": vip,
                    "area": area,
                    "advertised": !withdrawn,
                    "cost": (!withdrawn).then_some(cost),
                    "drain": null,
                    "operator_withdrawn": withdrawn,
                    "reason": if withdrawn {
                        "withdrawn by the operator (anycastd vip advertise to return it)".to_string()
                    } else {
                        format!("static [[vip]], announced, cost {cost}")
                    },
                }));
            }
            for (vip, (area, cost)) in &self.forced {
                vips.push(json!({
                    "vip": vip,
                    "area": area,
                    "advertised": true,
                    "cost": cost,
                    "drain": null,
                    "operator_withdrawn": false,
                    "reason": format!("announced by the operator with --force, cost {cost} (in no config)"),
                }));
            }
        }
        // Announced is not heard: without a Full adjacency no router gets
        // the Router-LSA.
        let (tx, rx) = oneshot::channel();
        let full = if self.speaker.send(Command::Neighbors(tx)).await.is_ok() {
            rx.await.ok().map(|list| {
                list.iter()
                    .filter(|n| n.state == ospf::instance::NsmState::Full)
                    .count()
            })
        } else {
            None
        };
        v["ospf_full_adjacencies"] = json!(full);
        let by_vrrp: Vec<String> = self
            .running
            .iter()
            .filter(|r| r.svc.vrrp.is_some())
            .map(|r| r.svc.vip.to_string())
            .collect();
        if full == Some(0) {
            if let Some(vips) = v.get_mut("vips").and_then(Value::as_array_mut) {
                for entry in vips {
                    let vrrp = entry["vip"]
                        .as_str()
                        .is_some_and(|x| by_vrrp.iter().any(|y| y == x));
                    if entry["advertised"] == json!(true) && !vrrp {
                        let r = entry["reason"].as_str().unwrap_or("announced").to_string();
                        entry["reason"] = json!(format!(
                            "{r}, but no OSPF adjacency is Full: no router hears it (anycastd show ospf neighbor, show counters)"
                        ));
                        entry["heard"] = json!(false);
                    }
                }
            }
        }
        v["router_id"] = json!(self.config.speaker.instance.router_id.to_string());
        v["config"] = json!(self.config_path.display().to_string());
        if let Some(services) = v.get_mut("services").and_then(Value::as_array_mut) {
            for entry in services {
                let owner = self
                    .running
                    .iter()
                    .find(|r| entry["name"].as_str() == Some(r.svc.name.as_str()))
                    .and_then(|r| r.svc.vrrp.clone());
                let fingerprint = entry["name"]
                    .as_str()
                    .and_then(|n| self.fingerprints.get(n).cloned());
                let Some(obj) = entry.as_object_mut() else {
                    continue;
                };
                if let Some(o) = owner {
                    obj.insert("vrrp".into(), json!(o));
                }
                // Equal on every director: the same flow, the same server.
                if let Some(f) = fingerprint {
                    obj.insert("fingerprint".into(), json!(f));
                }
            }
        }
        if !self.config.vrrp.is_empty() {
            v["vrrp"] = json!(self.vrrp.status().await);
        }
        v
    }

    /// Reloads the config file: nothing changes unless it is valid.
    async fn reload(&mut self, now: Instant) -> Result<Value, String> {
        let new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                self.metrics
                    .reloads
                    .get_or_create(&vec![("result", "rejected".into())])
                    .inc();
                tracing::error!("reload rejected, running state kept: {e}");
                return Err(format!("reload rejected, running state kept: {e}"));
            }
        };
        // A change that only a restart applies refuses the whole reload:
        // nothing is applied, as with a bad file, and the caller is told
        // what (never an "ok" for something that did not happen).
        let restart = needs_restart(&self.config, &new);
        if !restart.is_empty() {
            self.metrics
                .reloads
                .get_or_create(&vec![("result", "rejected".into())])
                .inc();
            let msg = format!(
                "reload refused, nothing applied: these changes need a restart (systemctl restart anycastd): {}",
                restart.join("; ")
            );
            tracing::error!("{msg}");
            return Err(msg);
        }
        let mut notes = Vec::new();
        // Keys are applied in place.
        let keys_applied = self.apply_keys(&new).await;
        let (old_s, new_s) = (&self.config.speaker, &new.speaker);
        if !keys_applied.is_empty() {
            notes.push(format!(
                "OSPF keys applied on {} (adjacencies kept)",
                keys_applied.join(", ")
            ));
        }
        // Static VIPs.
        for (area, vip, cost) in &new_s.vips {
            if !old_s.vips.contains(&(*area, *vip, *cost)) {
                let cmd = Command::Advertise {
                    area: *area,
                    vip: *vip,
                    cost: *cost,
                };
                let _ = self.speaker.send(cmd).await;
            }
        }
        for (_, vip, _) in &old_s.vips {
            if !new_s.vips.iter().any(|(_, v, _)| v == vip) {
                let _ = self.speaker.send(Command::Withdraw { vip: *vip }).await;
            }
        }
        let before: Vec<String> = self.running.iter().map(|r| r.fingerprint.clone()).collect();
        let old: Vec<Service> = self.running.iter().map(|r| r.svc.clone()).collect();
        self.prepare_ipvs(&new.services, &old, &new.vrrp).await;
        self.apply(&new.services, Some(now));
        // VRRP: only changed instances restart (a master hands over first).
        let (started, stopped) = self.vrrp.reconfigure(&new.vrrp).await;
        if !started.is_empty() || !stopped.is_empty() {
            tracing::info!(
                started = %started.join(","),
                stopped = %stopped.join(","),
                "vrrp instances reconfigured"
            );
        }
        // (Re)started instances learn the state of the services they track.
        self.tell_vrrp_services();
        let kept = self
            .running
            .iter()
            .filter(|r| before.contains(&r.fingerprint))
            .count();
        let changed = self.running.len() - kept;
        let removed = before.len() - kept;
        let mut config = new;
        config.warnings = self.config.warnings.clone();
        self.config = config;
        self.metrics
            .reloads
            .get_or_create(&vec![("result", "applied".into())])
            .inc();
        tracing::info!(kept, changed, removed, "configuration reloaded");
        Ok(json!({
            "ok": true,
            "services_kept": kept,
            "services_started": changed,
            "services_stopped": removed,
            "vrrp_started": started,
            "vrrp_stopped": stopped,
            "ospf_keys_applied": keys_applied,
            "notes": notes,
        }))
    }

    /// Hands the speaker the new authentication of every interface whose
    /// keys changed (neighbours and adjacencies stay), and records it as
    /// running. Returns the interfaces done.
    async fn apply_keys(&mut self, new: &Config) -> Vec<String> {
        let mut applied = Vec::new();
        for i in &new.speaker.interfaces {
            let Some(pos) = self
                .config
                .speaker
                .interfaces
                .iter()
                .position(|o| o.name == i.name && o.auth != i.auth)
            else {
                continue;
            };
            let (reply, answer) = oneshot::channel();
            let cmd = Command::SetAuth {
                interface: i.name.clone(),
                auth: i.auth.clone(),
                reply,
            };
            if self.speaker.send(cmd).await.is_err() || answer.await != Ok(true) {
                tracing::error!(interface = %i.name, "OSPF keys not applied: the speaker did not take them");
                continue;
            }
            tracing::info!(interface = %i.name, "reload: OSPF keys applied, adjacencies kept");
            for w in new.warnings.iter().filter(|w| w.interface == i.name) {
                tracing::warn!("{}", w.message);
            }
            if let Some(running) = self.config.speaker.interfaces.get_mut(pos) {
                running.auth = i.auth.clone();
            }
            applied.push(i.name.clone());
        }
        applied
    }

    fn stop_checks(&mut self) {
        for (_, (h, _)) in self.runners.drain() {
            h.abort();
        }
    }
}

/// The differences between the running config and `new` that only a
/// restart can apply, in an operator's words (empty: a reload applies it
/// all). OSPF keys are applied in place and do not count.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let (o, n) = (&old.speaker.instance, &new.speaker.instance);
    if o.router_id != n.router_id {
        out.push(format!("router_id {} -> {}", o.router_id, n.router_id));
    }
    if o.min_ls_interval != n.min_ls_interval {
        out.push("[ospf] min_ls_interval_ms".into());
    }
    if o.stub_router_on_startup != n.stub_router_on_startup {
        out.push("[ospf] stub_router_on_startup".into());
    }
    if o.max_lsa != n.max_lsa {
        out.push(format!("[ospf] max_lsa {} -> {}", o.max_lsa, n.max_lsa));
    }
    // An area's type decides the Options of every packet and which LSAs the
    // database holds: the speaker takes it at start only.
    let areas: BTreeSet<Ipv4Addr> = o
        .area_types
        .keys()
        .chain(n.area_types.keys())
        .copied()
        .collect();
    for area in areas {
        let (from, to) = (o.area_type(area), n.area_type(area));
        if from != to {
            out.push(format!("area {area} area_type {from} -> {to}"));
        }
    }
    let plain = |i: &SpeakerInterface| {
        format!(
            "{:?}",
            SpeakerInterface {
                auth: AuthConfig::Null,
                ..i.clone()
            }
        )
    };
    for i in &old.speaker.interfaces {
        match new.speaker.interfaces.iter().find(|x| x.name == i.name) {
            None => out.push(format!("OSPF interface {} removed", i.name)),
            Some(x) if plain(x) != plain(i) => {
                let mut what = Vec::new();
                if x.area != i.area {
                    what.push("area");
                }
                if x.network != i.network {
                    what.push("network");
                }
                if (x.hello_interval, x.hello_multiplier, x.dead_interval)
                    != (i.hello_interval, i.hello_multiplier, i.dead_interval)
                {
                    what.push("hello/dead");
                }
                if x.retransmit_interval != i.retransmit_interval {
                    what.push("retransmit");
                }
                if x.priority != i.priority {
                    what.push("priority");
                }
                if x.cost != i.cost {
                    what.push("cost");
                }
                if x.mtu_ignore != i.mtu_ignore {
                    what.push("mtu_ignore");
                }
                if what.is_empty() {
                    what.push("settings");
                }
                out.push(format!("OSPF interface {}: {}", i.name, what.join(", ")));
            }
            Some(_) => {}
        }
    }
    for x in &new.speaker.interfaces {
        if !old.speaker.interfaces.iter().any(|i| i.name == x.name) {
            out.push(format!("OSPF interface {} added", x.name));
        }
    }
    if old.control_socket != new.control_socket {
        out.push("control_socket".into());
    }
    if old.metrics_listen != new.metrics_listen {
        out.push("metrics_listen".into());
    }
    if old.state_file != new.state_file {
        out.push("state_file".into());
    }
    out
}

/// What a check probes, as status shows it: `http 198.18.1.1:80/health`.
fn describe_check(c: &health::Check) -> String {
    use health::ProbeKind;
    let t = c.check_type().as_str();
    match &c.kind {
        ProbeKind::Http(h) => format!("{t} {}{}", c.target, h.path),
        ProbeKind::Icmp => format!("{t} {}", c.target.ip()),
        ProbeKind::Exec(e) => format!("{t} {}", e.argv.join(" ")),
        _ => format!("{t} {}", c.target),
    }
}

/// A metric label's value, for a log field.
fn label<'a>(labels: &'a Labels, key: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn service_labels(s: &Service) -> Labels {
    vec![("service", s.name.clone()), ("vip", s.vip.to_string())]
}

/// TCP sockets with local address `vip:port` whose connection may still
/// carry traffic (established, being set up, or closed by the client
/// only), from /proc/net/tcp of this network namespace.
fn tcp_connections(vip: Ipv4Addr, port: u16) -> usize {
    let want = format!("{:08X}:{:04X}", u32::from_ne_bytes(vip.octets()), port);
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    count_connections(&text, &want)
}

/// IPVS connections to `vip:port` that may still carry traffic, from
/// /proc/net/ip_vs_conn of this network namespace.
fn ipvs_connections(vip: Ipv4Addr, port: u16) -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/net/ip_vs_conn") else {
        return 0;
    };
    count_ipvs_connections(&text, vip, port)
}

fn count_ipvs_connections(ip_vs_conn: &str, vip: Ipv4Addr, port: u16) -> usize {
    let (to_ip, to_port) = (format!("{:08X}", u32::from(vip)), format!("{port:04X}"));
    ip_vs_conn
        .lines()
        .skip(1)
        .filter(|l| {
            // Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 8
                && f[3].eq_ignore_ascii_case(&to_ip)
                && f[4].eq_ignore_ascii_case(&to_port)
                && matches!(
                    f[7],
                    "ESTABLISHED"
                        | "SYN_RECV"
                        | "SYN_SENT"
                        | "SYNACK"
                        | "CLOSE_WAIT"
                        | "UDP"
                        | "SCTP"
                )
        })
        .count()
}

/// Sockets on `local` (VIP:port in /proc/net/tcp's notation) that may
/// still carry traffic. Drains count them only after the VIP's withdrawal,
/// when the routers send this node no new flow; a flow the router has
/// moved elsewhere meanwhile (ECMP rehash) will never send here again, so
/// its socket is not waited for once that shows: a handshake whose SYN-ACK
/// has had to be resent (the client's ACK did not come within the first
/// retransmission timeout, a second or more, where a reachable client
/// answers within a round trip), or a connection with three retransmissions
/// in a row unanswered (no ACK for over a second).
fn count_connections(proc_net_tcp: &str, local: &str) -> usize {
    proc_net_tcp
        .lines()
        .skip(1)
        .filter(|l| {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            let mut f = l.split_whitespace();
            let (Some(_), Some(addr), Some(remote), Some(state)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return false;
            };
            let retransmits = f
                .nth(2)
                .and_then(|r| u32::from_str_radix(r, 16).ok())
                .unwrap_or(0);
            // A connection from this node to its own VIP (its health
            // check) is not traffic to drain.
            let own = remote.split(':').next() == local.split(':').next();
            // Connections that may still carry a request or its answer:
            // 01 ESTABLISHED, 03 SYN_RECV, 08 CLOSE_WAIT. Not those this
            // side has closed (04/05 FIN_WAIT, 09 LAST_ACK, 0B CLOSING,
            // 06 TIME_WAIT, 07 CLOSE): their answer is sent, and when the
            // router has moved the client's flow elsewhere their last ACK
            // never comes, so they would hold a drain until its deadline.
            let live = match state {
                "03" => retransmits == 0,
                "01" | "08" => retransmits < 3,
                _ => false,
            };
            addr.eq_ignore_ascii_case(local) && !own && live
        })
        .count()
}

fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!("sd_notify: {e}");
    }
}

async fn run_async(config_path: PathBuf, cfg: Config) -> Result<()> {
    let default_area = cfg
        .speaker
        .interfaces
        .first()
        .map_or(Ipv4Addr::UNSPECIFIED, |i| i.area);
    // The operator's drains and withdrawals from before a restart: a
    // static VIP withdrawn is not announced even once.
    let kept = match state::Maintenance::load(&cfg.state_file) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e:#}: starting without the kept maintenance");
            state::Maintenance::default()
        }
    };
    let mut speaker_cfg = cfg.speaker.clone();
    speaker_cfg
        .vips
        .retain(|(_, v, _)| !kept.withdrawn.contains(v));
    let (tx, rx) = mpsc::channel(64);
    let mut speaker = tokio::spawn(speaker::run(speaker_cfg, rx));
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Control>(16);
    let socket = cfg.control_socket.clone();
    let control_speaker = tx.clone();
    let control = tokio::spawn(async move {
        control::serve(&socket, control_speaker, ctl_tx, default_area).await
    });
    let metrics = Arc::new(Metrics::new());
    let metrics_task = cfg.metrics_listen.map(|addr| {
        let (m, s) = (metrics.clone(), tx.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::daemon::metrics::serve(addr, m, s).await {
                tracing::error!("{e:#}");
            }
        })
    });
    let (report_tx, mut report_rx) = mpsc::unbounded_channel();
    let ctx = Arc::new(ProbeContext::new().context("TLS client configuration")?);
    let (ipvs_tx, mut ipvs_rx) = mpsc::unbounded_channel();
    let mut mgr = Manager {
        config_path,
        config: cfg.clone(),
        director: Director::default(),
        running: Vec::new(),
        runners: HashMap::new(),
        next_id: 1,
        ctx,
        reports: report_tx,
        speaker: tx.clone(),
        metrics,
        connections: BTreeMap::new(),
        ipvs: None,
        ipvs_reports: ipvs_tx,
        ipvs_sent: None,
        ipvs_generation: 0,
        fingerprints: BTreeMap::new(),
        vrrp: crate::daemon::vrrp::Handle::default(),
        static_withdrawn: BTreeSet::new(),
        forced: BTreeMap::new(),
    };
    mgr.prepare_ipvs(&cfg.services, &[], &cfg.vrrp).await;
    mgr.apply(&cfg.services, None);
    mgr.restore(&kept, Instant::now());
    mgr.sync_ipvs();
    let (vrrp, mut vrrp_rx) = crate::daemon::vrrp::spawn(&cfg.vrrp, mgr.ctx.clone());
    mgr.vrrp = vrrp;
    // Tracked services count as down until the director announces them.
    mgr.tell_vrrp_services();
    let mut vrrp_tick = tokio::time::interval(Duration::from_secs(5));

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut watchdog_usec = 0;
    let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
    let mut watchdog_tick = tokio::time::interval(if watchdog {
        Duration::from_micros(watchdog_usec / 2).max(Duration::from_millis(100))
    } else {
        Duration::from_secs(3600)
    });
    let mut drain_tick = tokio::time::interval(Duration::from_millis(250));
    let mut lo_tick = tokio::time::interval(Duration::from_secs(2));
    // Ready once the speaker has learned the interfaces and joined its
    // groups: the answer to a first query comes after its set-up. (A
    // speaker that failed is reported by the loop below.)
    let (up_tx, up_rx) = oneshot::channel();
    let up = tx.send(Command::Interfaces(up_tx)).await.is_ok()
        && matches!(
            tokio::time::timeout(Duration::from_secs(10), up_rx).await,
            Ok(Ok(_))
        );
    if up {
        notify(&[sd_notify::NotifyState::Ready]);
        tracing::info!("anycastd running");
    } else if speaker.is_finished() {
        // The speaker could not start: say why, never "running".
        let _ = std::fs::remove_file(&cfg.control_socket);
        return match (&mut speaker).await {
            Ok(Err(e)) => Err(anyhow::Error::from(e).context("OSPF speaker")),
            Ok(Ok(())) => Err(anyhow::anyhow!("OSPF speaker stopped at start")),
            Err(e) => Err(anyhow::Error::from(e).context("speaker task")),
        };
    }
    // The start-up code (arguments, config, TLS, metrics and interface
    // set-up) does not run again: its pages need not stay resident.
    match crate::daemon::memory::release_file_pages() {
        Ok(kib) => tracing::debug!("released {kib} KiB of start-up program pages"),
        Err(e) => tracing::debug!("releasing start-up program pages: {e}"),
    }

    // Shutdown: set when SIGTERM/SIGINT asked for a drain first.
    let mut stopping: Option<Instant> = None;
    let early = loop {
        let now = Instant::now();
        let next = mgr.director.poll_timeout(now);
        let sleep = tokio::time::sleep_until(next.map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(3600),
            tokio::time::Instant::from_std,
        ));
        tokio::select! {
            Some(r) = report_rx.recv() => mgr.on_report(Instant::now(), &r),
            Some(r) = ipvs_rx.recv() => mgr.on_ipvs_report(&r),
            Some((name, state)) = vrrp_rx.recv() => mgr.on_vrrp_state(&name, state),
            _ = vrrp_tick.tick(), if !mgr.config.vrrp.is_empty() => mgr.vrrp_metrics().await,
            Some(c) = ctl_rx.recv() => handle_control(&mut mgr, c).await,
            _ = sleep => {}
            _ = drain_tick.tick() => mgr.watch_drains(Instant::now()),
            _ = lo_tick.tick() => mgr.watch_lo().await,
            _ = watchdog_tick.tick(), if watchdog => notify(&[sd_notify::NotifyState::Watchdog]),
            _ = hup.recv() => {
                if let Err(e) = mgr.reload(Instant::now()).await {
                    tracing::error!("{e}");
                }
            }
            _ = term.recv() => {
                if stopping.is_some() { break None; }
                stopping = Some(begin_stop(&mut mgr));
            }
            _ = int.recv() => {
                if stopping.is_some() { break None; }
                stopping = Some(begin_stop(&mut mgr));
            }
            r = &mut speaker => break Some(r),
        }
        mgr.flush(Instant::now()).await;
        if let Some(deadline) = stopping {
            if mgr.director.all_drained() || Instant::now() >= deadline {
                break None;
            }
        }
    };
    mgr.stop_checks();
    let result = match early {
        Some(r) => r.context("speaker task")?.context("OSPF speaker"),
        None => {
            // Withdraw and flush what we originated before leaving, so the
            // routers drop our routes at once instead of after the dead
            // interval.
            tracing::info!("shutting down: flushing OSPF LSAs");
            for a in mgr.director.withdraw_all(Instant::now()) {
                if let Action::Withdraw { vip } = a {
                    let _ = tx.send(Command::Withdraw { vip }).await;
                }
            }
            let (done_tx, done_rx) = oneshot::channel();
            let _ = tx.send(Command::Shutdown(done_tx)).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), done_rx).await;
            Ok(())
        }
    };
    // Masters hand over at once (priority 0) rather than after 3 adverts.
    std::mem::take(&mut mgr.vrrp).shutdown().await;
    control.abort();
    if let Some(m) = metrics_task {
        m.abort();
    }
    let _ = std::fs::remove_file(&cfg.control_socket);
    result
}

/// SIGTERM: drain every VIP, then stop. Returns the latest instant to
/// stop at whatever the traffic does.
fn begin_stop(mgr: &mut Manager) -> Instant {
    let now = Instant::now();
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("draining"),
    ]);
    tracing::info!("SIGTERM: draining every VIP before stopping (again to stop at once)");
    let vips = mgr.director.drain(now, None).unwrap_or_default();
    let longest = vips
        .iter()
        .map(|v| {
            let s = mgr.director.drain_spec(*v);
            s.cost_hold + s.deadline
        })
        .max()
        .unwrap_or_default();
    now + longest + Duration::from_secs(1)
}

async fn handle_control(mgr: &mut Manager, c: Control) {
    let now = Instant::now();
    match c {
        Control::Status(reply) => {
            let _ = reply.send(mgr.status(now).await);
        }
        Control::Drain { vip, reply } => {
            let r = mgr
                .director
                .drain(now, vip)
                .map(|vips| json!({ "ok": true, "draining": vips }))
                .map_err(|e| e.to_string())
                .and_then(|v| mgr.save_state().map(|()| v));
            let _ = reply.send(r);
        }
        Control::Vip {
            vip,
            withdraw,
            cost,
            area,
            force,
            reply,
        } => {
            let r = mgr.vip_command(vip, withdraw, cost, area, force).await;
            let _ = reply.send(r);
        }
        Control::Server {
            vip,
            server,
            disable,
            reply,
        } => {
            let r = mgr
                .director
                .set_server_disabled(now, vip, server, disable)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    mgr.sync_ipvs();
                    mgr.save_state()
                })
                .map(|()| json!({"ok": true, "vip": vip, "server": server, "disabled": disable}));
            let _ = reply.send(r);
        }
        Control::Undrain { vip, reply } => {
            let r = mgr
                .director
                .undrain(vip)
                .map(|vips| {
                    for v in &vips {
                        mgr.connections.remove(v);
                    }
                    json!({ "ok": true, "undrained": vips })
                })
                .map_err(|e| e.to_string())
                .and_then(|v| mgr.save_state().map(|()| v));
            let _ = reply.send(r);
        }
        Control::RunningConfig(reply) => {
            let files: Vec<Value> = mgr
                .config
                .sources
                .iter()
                .map(|(file, text)| json!({"file": file, "text": text}))
                .collect();
            let _ = reply.send(json!({ "files": files }));
        }
        Control::Reload(reply) => {
            let r = mgr.reload(now).await;
            let _ = reply.send(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_area_type_change_needs_a_restart() {
        let text = |t: &str| {
            format!(
                "router_id = \"198.18.0.11\"\n[ospf]\n[[ospf.interface]]\nname = \"eth0\"\n\
                 area = \"0.0.0.1\"\n{t}\n"
            )
        };
        let normal = Config::parse("a.toml", &text("")).expect("valid");
        let stub = Config::parse("a.toml", &text("area_type = \"stub\"")).expect("valid");
        let nssa = Config::parse("a.toml", &text("area_type = \"nssa\"")).expect("valid");
        assert_eq!(
            needs_restart(&normal, &stub),
            ["area 0.0.0.1 area_type normal -> stub"]
        );
        assert_eq!(
            needs_restart(&stub, &nssa),
            ["area 0.0.0.1 area_type stub -> nssa"]
        );
        assert!(needs_restart(&stub, &stub).is_empty());
    }

    #[test]
    fn counts_ipvs_connections_that_carry_traffic() {
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C6120064 D431 C000020A 0050 C6120101 1F91 ESTABLISHED 899
TCP C6120064 D432 C000020A 0050 C6120102 1F92 TIME_WAIT   100
TCP C6120064 D433 C000020A 0050 C6120101 1F91 FIN_WAIT    100
TCP C6120064 D434 C000020A 01BB C6120101 1F91 ESTABLISHED 899
UDP C6120064 D435 C000020A 0035 C6120101 0035 UDP         299
";
        let vip: Ipv4Addr = "192.0.2.10".parse().expect("ip");
        assert_eq!(count_ipvs_connections(text, vip, 80), 1);
        assert_eq!(count_ipvs_connections(text, vip, 53), 1);
        assert_eq!(count_ipvs_connections(text, vip, 8080), 0);
    }

    #[test]
    fn counts_connections_on_the_vip_port_only_not_its_own_checks() {
        // 192.0.2.10:80 is 0A0200C0:0050 in /proc/net/tcp.
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0A0200C0:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1
   1: 0A0200C0:0050 0100A8C0:C350 01 00000000:00000000 00:00000000 00000000     0        0 2
   2: 0A0200C0:0050 0100A8C0:C351 06 00000000:00000000 00:00000000 00000000     0        0 0
   3: 0A0200C0:0050 0100A8C0:C352 08 00000000:00000000 00:00000000 00000000     0        0 3
   4: 0A0200C0:01BB 0100A8C0:C353 01 00000000:00000000 00:00000000 00000000     0        0 4
   5: 0A0200C0:0050 0A0200C0:C354 01 00000000:00000000 00:00000000 00000000     0        0 5
   6: 0A0200C0:0050 0100A8C0:C355 05 00000000:00000000 00:00000000 00000000     0        0 6
   7: 0A0200C0:0050 0100A8C0:C356 04 00000000:00000000 00:00000000 00000000     0        0 7
";
        let vip: Ipv4Addr = "192.0.2.10".parse().expect("ip");
        let want = format!("{:08X}:{:04X}", u32::from_ne_bytes(vip.octets()), 80);
        assert_eq!(want, "0A0200C0:0050");
        assert_eq!(count_connections(text, &want), 2);
    }

    #[test]
    fn connections_whose_client_has_gone_elsewhere_are_not_waited_for() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0A0200C0:0050 0100A8C0:C350 03 00000000:00000000 02:00000064 00000000     0        0 0
   1: 0A0200C0:0050 0100A8C0:C351 03 00000000:00000000 02:00000064 00000001     0        0 0
   2: 0A0200C0:0050 0100A8C0:C352 01 00000040:00000000 01:00000014 00000002     0        0 2
   3: 0A0200C0:0050 0100A8C0:C353 01 00000040:00000000 01:00000014 00000003     0        0 3
   4: 0A0200C0:0050 0100A8C0:C354 08 00000040:00000000 01:00000014 0000000A     0        0 4
";
        // A fresh handshake and a connection still within its first two
        // retransmissions count; a handshake whose SYN-ACK was resent and
        // connections with 3 or 10 unanswered retransmissions do not.
        assert_eq!(count_connections(text, "0A0200C0:0050"), 2);
    }
}
