//! The daemon's VRRP instances: each `[[vrrp]]` table runs
//! [`anycastd::vrrp::linux::run`] on the daemon's runtime, its
//! `[[vrrp.track_check]]` health checks (the same probes as services')
//! feeding the instance's tracking weights, and the daemon's `[[service]]`
//! states (`track_service`) fed by the manager. State changes go back to
//! the manager (IPVS sync daemon role, status, metrics).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use anycastd::vrrp::config::{self as vconfig, InstanceFile, LvsSync};
use anycastd::vrrp::instance::State;
use anycastd::vrrp::linux::{self, Input, RunConfig};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use toml::Spanned;

use crate::config::ConfigError;
use crate::health::{self, Check, CheckConfig, ProbeContext};

/// A `[[vrrp]]` table as the daemon runs it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub run: RunConfig,
    /// (tracker name, weight, check).
    pub checks: Vec<(String, i16, Check)>,
    /// Tracked `[[service]]`s: (service name, weight).
    pub services: Vec<(String, i16)>,
    pub lvs_sync: Option<LvsSync>,
}

/// The tracker name of a `[[service]]`.
pub fn service_tracker(service: &str) -> String {
    format!("service {service}")
}

pub type VrrpFile = Spanned<InstanceFile<CheckConfig>>;

/// Validates the `[[vrrp]]` tables; a check without an address probes
/// 127.0.0.1 (the service on this node). Tracked services are checked
/// once the services are known ([`check_tracked_services`]).
pub fn validate(
    list: &[VrrpFile],
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<Vec<Instance>, ConfigError> {
    let validated = vconfig::validate(list).map_err(|(span, m)| err(span, m))?;
    validated
        .into_iter()
        .map(|v| {
            let checks = v
                .checks
                .iter()
                .map(|(name, weight, c)| {
                    c.get_ref()
                        .resolve(IpAddr::V4(Ipv4Addr::LOCALHOST), None)
                        .map(|check| (name.clone(), *weight, check))
                        .map_err(|m| err(c.span(), format!("vrrp {}: {name}: {m}", v.run.name)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Instance {
                run: v.run,
                checks,
                services: v.services,
                lvs_sync: v.lvs_sync,
            })
        })
        .collect()
}

/// Every `track_service` names one of `services`.
pub fn check_tracked_services(
    list: &[VrrpFile],
    services: &[&str],
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for f in list {
        for t in &f.get_ref().track_service {
            let name = &t.get_ref().name;
            if !services.contains(&name.as_str()) {
                return Err(err(
                    t.span(),
                    format!(
                        "vrrp {}: track_service: no service `{name}`",
                        f.get_ref().name.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `anycastd check-config`'s lines for the VRRP instances.
pub fn print_plan(instances: &[Instance]) {
    for i in instances {
        let c = &i.run.instance;
        println!(
            "vrrp {} on {} vrid {} v{} priority {} advert {} ms preempt {}{} addresses {:?}",
            i.run.name,
            i.run.interface,
            c.vrid,
            c.version.number(),
            c.priority,
            u64::from(c.advert_interval_cs) * 10,
            c.preempt,
            if c.preempt_delay.is_zero() {
                String::new()
            } else {
                format!(" (delay {} ms)", c.preempt_delay.as_millis())
            },
            c.addresses
        );
        if let Some(r) = &i.run.reference {
            println!(
                "  reference {} by {:?} every {} ms, fall {} rise {}",
                r.address,
                r.method,
                r.interval.as_millis(),
                r.fall,
                r.rise
            );
        }
        for (name, weight, check) in &i.checks {
            println!(
                "  track {name} weight {weight}: {} {}",
                check.check_type().as_str(),
                check.target
            );
        }
        for (name, weight) in &i.services {
            println!("  track service {name} weight {weight}");
        }
        if let Some(l) = &i.lvs_sync {
            println!(
                "  ipvs connection sync on {} syncid {}: master while master, backup otherwise",
                l.interface, l.syncid
            );
        }
    }
}

/// One running instance: its input, the services it tracks, its tasks.
struct Running {
    config: Instance,
    input: mpsc::Sender<Input>,
    tasks: Vec<JoinHandle<()>>,
}

/// The running instances.
#[derive(Default)]
pub struct Handle {
    running: Vec<Running>,
    states: Option<mpsc::UnboundedSender<StateChange>>,
    /// The probes' shared state (the daemon's).
    ctx: Option<Arc<ProbeContext>>,
}

/// A state an instance entered: (instance name, state).
pub type StateChange = (String, State);

/// Starts every instance and its checks on the current runtime. An
/// instance that fails (no such interface, no address) logs why and stops;
/// the others go on. State changes come out of the receiver. The checks
/// share `ctx` with the daemon's.
pub fn spawn(
    instances: &[Instance],
    ctx: Arc<ProbeContext>,
) -> (Handle, mpsc::UnboundedReceiver<StateChange>) {
    let (state_tx, state_rx) = mpsc::unbounded_channel();
    let mut handle = Handle {
        running: Vec::new(),
        states: Some(state_tx),
        ctx: Some(ctx),
    };
    for inst in instances {
        handle.start(inst);
    }
    (handle, state_rx)
}

impl Handle {
    /// Starts one instance, its checks and their forwarding.
    fn start(&mut self, inst: &Instance) {
        let (Some(state_tx), Some(ctx)) = (self.states.clone(), self.ctx.clone()) else {
            return;
        };
        let mut tasks = Vec::new();
        let (tx, rx) = mpsc::channel(64);
        let trackers = inst
            .checks
            .iter()
            .map(|(n, w, _)| (n.clone(), *w))
            .chain(inst.services.iter().map(|(n, w)| (service_tracker(n), *w)))
            .collect();
        let run = inst.run.clone();
        // The instance's states, tagged with its name.
        let (one_tx, mut one_rx) = mpsc::unbounded_channel();
        let tag = run.name.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(s) = one_rx.recv().await {
                if state_tx.send((tag.clone(), s)).is_err() {
                    return;
                }
            }
        }));
        tasks.push(tokio::spawn(async move {
            let name = run.name.clone();
            if let Err(e) = linux::run(run, trackers, rx, one_tx).await {
                tracing::error!(instance = %name, "VRRP instance stopped: {e}");
            }
        }));
        // Each check's verdicts, forwarded as tracker inputs.
        let (report_tx, mut report_rx) = mpsc::unbounded_channel();
        let mut names = HashMap::new();
        for (id, (name, _, check)) in inst.checks.iter().enumerate() {
            names.insert(id, name.clone());
            tasks.push(health::spawn(
                id,
                check.clone(),
                ctx.clone(),
                report_tx.clone(),
            ));
        }
        let fwd = tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut last: HashMap<usize, bool> = HashMap::new();
            while let Some(r) = report_rx.recv().await {
                if last.insert(r.id, r.up) == Some(r.up) {
                    continue;
                }
                let Some(name) = names.get(&r.id).cloned() else {
                    continue;
                };
                if fwd.send(Input::Tracker { name, up: r.up }).await.is_err() {
                    return;
                }
            }
        }));
        self.running.push(Running {
            config: inst.clone(),
            input: tx,
            tasks,
        });
    }

    /// Applies a reloaded `[[vrrp]]` list: instances whose settings are
    /// unchanged keep running untouched; changed and removed ones stop (a
    /// master hands over with a priority-0 advert first), changed and new
    /// ones start. Returns the names of the instances (re)started and
    /// stopped.
    pub async fn reconfigure(&mut self, new: &[Instance]) -> (Vec<String>, Vec<String>) {
        let same = |a: &Instance, b: &Instance| format!("{a:?}") == format!("{b:?}");
        let (keep, stop): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| new.iter().any(|n| same(n, &r.config)));
        let stopped: Vec<String> = stop.iter().map(|r| r.config.run.name.clone()).collect();
        stop_all(stop).await;
        self.running = keep;
        let mut started = Vec::new();
        for inst in new {
            if !self.running.iter().any(|r| same(inst, &r.config)) {
                self.start(inst);
                started.push(inst.run.name.clone());
            }
        }
        (started, stopped)
    }

    /// The instances that track `service`.
    fn tracking(&self, service: &str) -> impl Iterator<Item = &Running> {
        let service = service.to_string();
        self.running
            .iter()
            .filter(move |r| r.config.services.iter().any(|(n, _)| *n == service))
    }

    /// A `[[service]]`'s state for the instances that track it: up while
    /// the daemon would announce its VIP.
    pub fn service_state(&self, service: &str, up: bool) {
        for r in self.tracking(service) {
            let name = service_tracker(service);
            if r.input.try_send(Input::Tracker { name, up }).is_err() {
                tracing::warn!(%service, "vrrp: instance input full or gone");
            }
        }
    }

    /// Every instance's state, as JSON.
    pub async fn status(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for r in &self.running {
            let (reply, rx) = oneshot::channel();
            if r.input.send(Input::Status(reply)).await.is_ok() {
                if let Ok(v) = rx.await {
                    out.push(v);
                }
            }
        }
        out
    }

    /// Masters send their priority-0 advert and drop their addresses; then
    /// everything stops. Bounded by one second.
    pub async fn shutdown(self) {
        stop_all(self.running).await;
    }
}

/// Stops instances: masters send their priority-0 advert and drop their
/// addresses (bounded by one second), then their tasks end.
async fn stop_all(list: Vec<Running>) {
    let mut waits = Vec::new();
    for r in &list {
        let (reply, rx) = oneshot::channel();
        if r.input.send(Input::Shutdown(reply)).await.is_ok() {
            waits.push(rx);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        for w in waits {
            let _ = w.await;
        }
    })
    .await;
    for r in list {
        for t in r.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const VRRP_ONLY: &str = r#"
router_id = "198.18.0.2"

[ospf]

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 150
advert_interval_ms = 100
addresses = ["192.0.2.10/24"]
reference = { address = "198.18.0.1", method = "icmp" }
[[vrrp.track_check]]
name = "web"
weight = -60
check = { type = "http", port = 8080, path = "/health", interval_ms = 200 }
"#;

    #[test]
    fn a_vrrp_only_config_needs_no_ospf_interface() {
        let c = Config::parse("a.toml", VRRP_ONLY).expect("valid");
        assert!(c.speaker.interfaces.is_empty());
        let v = &c.vrrp[0];
        assert_eq!(v.run.instance.advert_interval_cs, 10);
        let (name, weight, check) = &v.checks[0];
        assert_eq!((name.as_str(), *weight), ("web", -60));
        assert_eq!(check.target, "127.0.0.1:8080".parse().expect("addr"));
    }

    const LVS_PAIR: &str = r#"
router_id = "198.18.0.11"

[ospf]

[[service]]
name = "web"
vip = "192.0.2.10"
port = 80
mode = "ipvs"
[[service.server]]
address = "198.18.0.21"
[[service.check]]
type = "tcp"

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 150
addresses = ["192.0.2.10/32"]
[[vrrp.track_service]]
name = "web"
weight = -100
[vrrp.lvs_sync]
"#;

    #[test]
    fn a_service_on_a_vrrp_address_belongs_to_vrrp() {
        // No OSPF interface is needed: VRRP carries the VIP.
        let c = Config::parse("a.toml", LVS_PAIR).expect("valid");
        assert_eq!(c.services[0].vrrp.as_deref(), Some("VI_1"));
        let v = &c.vrrp[0];
        assert_eq!(v.services, vec![("web".to_string(), -100)]);
        let sync = v.lvs_sync.as_ref().expect("lvs_sync");
        assert_eq!((sync.interface.as_str(), sync.syncid), ("eth0", 51));
        let other = LVS_PAIR.replace("[vrrp.lvs_sync]\n", "").replace(
            "[[vrrp.track_service]]",
            "lvs_sync = { interface = \"eth1\", syncid = 7 }\n[[vrrp.track_service]]",
        );
        let c = Config::parse("a.toml", &other).expect("valid");
        let sync = c.vrrp[0].lvs_sync.clone().expect("lvs_sync");
        assert_eq!((sync.interface.as_str(), sync.syncid), ("eth1", 7));
        // A service elsewhere still needs its OSPF area.
        let e = Config::parse(
            "a.toml",
            &LVS_PAIR.replace("192.0.2.10/32", "192.0.2.11/32"),
        )
        .expect_err("no area")
        .to_string();
        assert!(e.contains("no OSPF interface in area"), "{e}");
    }

    #[test]
    fn a_tracked_service_must_exist() {
        let e = Config::parse(
            "a.toml",
            &LVS_PAIR.replace("name = \"web\"\nweight", "name = \"api\"\nweight"),
        )
        .expect_err("unknown service")
        .to_string();
        assert!(e.starts_with("a.toml:22:"), "{e}");
        assert!(e.contains("track_service: no service `api`"), "{e}");
    }

    #[test]
    fn vrrp_errors_name_file_and_line() {
        let fails = |text: String, line: usize, needle: &str| {
            let e = Config::parse("a.toml", &text)
                .expect_err(needle)
                .to_string();
            assert!(e.starts_with(&format!("a.toml:{line}:")), "{e}");
            assert!(e.contains(needle), "{e}");
        };
        fails(
            VRRP_ONLY.replace("vrid = 51", "vrid = 51\nvirtual_router_id = 51"),
            10,
            "unknown field `virtual_router_id`",
        );
        fails(
            VRRP_ONLY.replace("priority = 150", "priority = 0"),
            10,
            "reserved",
        );
        fails(
            VRRP_ONLY.replace("interval_ms = 200", "interval_ms = 200, timeout_ms = 900"),
            17,
            "web: timeout_ms",
        );
        fails(
            VRRP_ONLY.replace("method = \"icmp\"", "method = \"tcp\""),
            13,
            "unknown variant `tcp`",
        );
    }
}
