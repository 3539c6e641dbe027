//! The daemon's VRRP instances: each `[[vrrp]]` table runs
//! [`anycastd::vrrp::linux::run`] on the daemon's runtime, its
//! `[[vrrp.track_check]]` health checks (the same probes as services')
//! feeding the instance's tracking weights.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use anycastd::vrrp::config::{self as vconfig, InstanceFile};
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
}

pub type VrrpFile = Spanned<InstanceFile<CheckConfig>>;

/// Validates the `[[vrrp]]` tables; a check without an address probes
/// 127.0.0.1 (the service on this node).
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
            Ok(Instance { run: v.run, checks })
        })
        .collect()
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
    }
}

/// The running instances.
pub struct Handle {
    inputs: Vec<mpsc::Sender<Input>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts every instance and its checks on the current runtime. An
/// instance that fails (no such interface, no address) logs why and stops;
/// the others go on.
pub fn spawn(instances: &[Instance]) -> Handle {
    let mut handle = Handle {
        inputs: Vec::new(),
        tasks: Vec::new(),
    };
    if instances.is_empty() {
        return handle;
    }
    let ctx = match ProbeContext::new() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!("vrrp: TLS client configuration: {e}");
            return handle;
        }
    };
    for inst in instances {
        let (tx, rx) = mpsc::channel(64);
        let trackers = inst
            .checks
            .iter()
            .map(|(n, w, _)| (n.clone(), *w))
            .collect();
        let run = inst.run.clone();
        handle.tasks.push(tokio::spawn(async move {
            let name = run.name.clone();
            if let Err(e) = linux::run(run, trackers, rx).await {
                tracing::error!(instance = %name, "VRRP instance stopped: {e}");
            }
        }));
        // Each check's verdicts, forwarded as tracker inputs.
        let (report_tx, mut report_rx) = mpsc::unbounded_channel();
        let mut names = HashMap::new();
        for (id, (name, _, check)) in inst.checks.iter().enumerate() {
            names.insert(id, name.clone());
            handle.tasks.push(health::spawn(
                id,
                check.clone(),
                ctx.clone(),
                report_tx.clone(),
            ));
        }
        let fwd = tx.clone();
        handle.tasks.push(tokio::spawn(async move {
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
        handle.inputs.push(tx);
    }
    handle
}

impl Handle {
    /// Every instance's state, as JSON.
    #[allow(dead_code)] // for the control socket's `show vrrp`
    pub async fn status(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for tx in &self.inputs {
            let (reply, rx) = oneshot::channel();
            if tx.send(Input::Status(reply)).await.is_ok() {
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
        let mut waits = Vec::new();
        for tx in &self.inputs {
            let (reply, rx) = oneshot::channel();
            if tx.send(Input::Shutdown(reply)).await.is_ok() {
                waits.push(rx);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            for w in waits {
                let _ = w.await;
            }
        })
        .await;
        for t in self.tasks {
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
