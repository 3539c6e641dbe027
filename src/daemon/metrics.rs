//! Prometheus metrics (prometheus-client), served over HTTP on the
//! configured address (localhost by default).
//!
//! Checks, servers, services and VIPs are updated as reports and actions
//! happen; OSPF neighbour states and dropped-packet counters are read from
//! the speaker at scrape time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use ospf::linux::speaker::Command;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

type Labels = Vec<(&'static str, String)>;

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    pub check_up: Family<Labels, Gauge>,
    pub check_probes: Family<Labels, Counter>,
    pub check_failures: Family<Labels, Counter>,
    pub check_latency: Family<Labels, Histogram>,
    pub server_up: Family<Labels, Gauge>,
    pub service_healthy: Family<Labels, Gauge>,
    pub vip_advertised: Family<Labels, Gauge>,
    pub vip_cost: Family<Labels, Gauge>,
    pub vip_draining: Family<Labels, Gauge>,
    pub reloads: Family<Labels, Counter>,
    ospf_neighbors: Family<Labels, Gauge>,
    ospf_dropped: Family<Labels, Counter<u64, AtomicU64>>,
    ospf_anomalies: Family<Labels, Counter<u64, AtomicU64>>,
    pub ipvs_programmed: Family<Labels, Gauge>,
    pub ipvs_connections: Family<Labels, Counter<u64, AtomicU64>>,
    pub ipvs_packets: Family<Labels, Counter<u64, AtomicU64>>,
    pub ipvs_bytes: Family<Labels, Counter<u64, AtomicU64>>,
    pub ipvs_server_connections: Family<Labels, Gauge>,
    pub ipvs_server_weight: Family<Labels, Gauge>,
    pub vrrp_state: Family<Labels, Gauge>,
    pub vrrp_transitions: Family<Labels, Counter>,
    pub vrrp_priority: Family<Labels, Gauge>,
    pub vrrp_other_masters: Family<Labels, Gauge>,
}

/// Brings a counter up to a cumulative value read from the kernel.
pub fn catch_up(c: &Counter<u64, AtomicU64>, total: u64) {
    let have = c.get();
    if total > have {
        c.inc_by(total - have);
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("anycastd");
        let check_up = Family::default();
        let check_probes = Family::default();
        let check_failures = Family::default();
        let check_latency =
            Family::<Labels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let server_up = Family::default();
        let service_healthy = Family::default();
        let vip_advertised = Family::default();
        let vip_cost = Family::default();
        let vip_draining = Family::default();
        let reloads = Family::default();
        let ospf_neighbors = Family::default();
        let ospf_dropped = Family::default();
        let ospf_anomalies = Family::default();
        let ipvs_programmed = Family::default();
        let ipvs_connections = Family::default();
        let ipvs_packets = Family::default();
        let ipvs_bytes = Family::default();
        let ipvs_server_connections = Family::default();
        let ipvs_server_weight = Family::default();
        let vrrp_state = Family::default();
        let vrrp_transitions = Family::default();
        let vrrp_priority = Family::default();
        let vrrp_other_masters = Family::default();
        registry.register(
            "vrrp_state",
            "VRRP instance state (1 for the current one)",
            vrrp_state.clone(),
        );
        registry.register(
            "vrrp_transitions",
            "VRRP state changes by the state entered",
            vrrp_transitions.clone(),
        );
        registry.register(
            "vrrp_priority",
            "VRRP priority in use (after tracking)",
            vrrp_priority.clone(),
        );
        registry.register(
            "vrrp_other_masters",
            "Adverts from another master heard while master",
            vrrp_other_masters.clone(),
        );
        registry.register(
            "ipvs_programmed",
            "IPVS service in the kernel exactly as desired (1 yes)",
            ipvs_programmed.clone(),
        );
        registry.register(
            "ipvs_connections",
            "Connections IPVS scheduled for the service (kernel counter)",
            ipvs_connections.clone(),
        );
        registry.register(
            "ipvs_packets",
            "Packets of the IPVS service by direction (kernel counter)",
            ipvs_packets.clone(),
        );
        registry.register(
            "ipvs_bytes",
            "Bytes of the IPVS service by direction (kernel counter)",
            ipvs_bytes.clone(),
        );
        registry.register(
            "ipvs_server_connections",
            "IPVS connections to a real server by state (active, inactive)",
            ipvs_server_connections.clone(),
        );
        registry.register(
            "ipvs_server_weight",
            "IPVS weight of a real server",
            ipvs_server_weight.clone(),
        );
        registry.register(
            "check_up",
            "Check state after rise/fall (1 up)",
            check_up.clone(),
        );
        registry.register("check_probes", "Probes run", check_probes.clone());
        registry.register(
            "check_failures",
            "Failed probes by reason",
            check_failures.clone(),
        );
        registry.register(
            "check_duration_seconds",
            "Probe latency",
            check_latency.clone(),
        );
        registry.register("server_up", "Server state (1 up)", server_up.clone());
        registry.register(
            "service_healthy",
            "Service health: quorum of servers up (1 healthy)",
            service_healthy.clone(),
        );
        registry.register(
            "vip_advertised",
            "VIP announced over OSPF (1 yes)",
            vip_advertised.clone(),
        );
        registry.register(
            "vip_cost",
            "Cost of the VIP's stub link while announced",
            vip_cost.clone(),
        );
        registry.register(
            "vip_draining",
            "VIP drain requested (1 yes)",
            vip_draining.clone(),
        );
        registry.register(
            "reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        registry.register(
            "ospf_neighbors",
            "OSPF neighbours by state",
            ospf_neighbors.clone(),
        );
        registry.register(
            "ospf_dropped_packets",
            "Received OSPF packets dropped, by reason",
            ospf_dropped.clone(),
        );
        registry.register(
            "ospf_anomalies",
            "What OSPF neighbours did that the speaker repaired (copies of its own LSAs, stalled adjacencies), by kind",
            ospf_anomalies.clone(),
        );
        Metrics {
            registry,
            check_up,
            check_probes,
            check_failures,
            check_latency,
            server_up,
            service_healthy,
            vip_advertised,
            vip_cost,
            vip_draining,
            reloads,
            ospf_neighbors,
            ospf_dropped,
            ospf_anomalies,
            ipvs_programmed,
            ipvs_connections,
            ipvs_packets,
            ipvs_bytes,
            ipvs_server_connections,
            ipvs_server_weight,
            vrrp_state,
            vrrp_transitions,
            vrrp_priority,
            vrrp_other_masters,
        }
    }

    /// Reads the speaker's view into the OSPF metrics, then encodes all.
    pub async fn render(&self, speaker: &mpsc::Sender<Command>) -> String {
        let (tx, rx) = oneshot::channel();
        if speaker.send(Command::Neighbors(tx)).await.is_ok() {
            if let Ok(list) = rx.await {
                self.ospf_neighbors.clear();
                for n in list {
                    self.ospf_neighbors
                        .get_or_create(&vec![("state", n.state.to_string())])
                        .inc();
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        if speaker.send(Command::Counters(tx)).await.is_ok() {
            if let Ok(counters) = rx.await {
                for (reason, n) in counters.dropped {
                    let c = self
                        .ospf_dropped
                        .get_or_create(&vec![("reason", reason.to_string())]);
                    // Counters only grow: bring ours up to the speaker's.
                    catch_up(&c, n);
                }
                for (kind, n) in counters.anomalies {
                    let c = self
                        .ospf_anomalies
                        .get_or_create(&vec![("kind", kind.to_string())]);
                    catch_up(&c, n);
                }
            }
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serves `GET /metrics` on `addr` until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    speaker: mpsc::Sender<Command>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics: bind {addr}"))?;
    tracing::info!(%addr, "metrics listening");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let speaker = speaker.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                let speaker = speaker.clone();
                async move {
                    let resp = if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(metrics.render(&speaker).await)))
                    } else {
                        Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::from_static(b"see /metrics\n")))
                    };
                    Ok::<_, Infallible>(resp.unwrap_or_default())
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ospf::linux::speaker::Counters;

    #[tokio::test]
    async fn renders_families_and_speaker_view() {
        let m = Metrics::new();
        let labels = vec![("service", "web".to_string()), ("vip", "192.0.2.10".into())];
        m.service_healthy.get_or_create(&labels).set(1);
        m.check_latency
            .get_or_create(&vec![("service", "web".into()), ("type", "http".into())])
            .observe(0.002);
        // A speaker that answers with no neighbours and one counter.
        let (tx, mut rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Command::Neighbors(r) => {
                        let _ = r.send(Vec::new());
                    }
                    Command::Counters(r) => {
                        let _ = r.send(Counters {
                            dropped: [("bad-checksum", 3u64)].into_iter().collect(),
                            anomalies: [("adjacency-stalled", 2u64)].into_iter().collect(),
                        });
                    }
                    _ => {}
                }
            }
        });
        let text = m.render(&tx).await;
        assert!(
            text.contains(r#"anycastd_service_healthy{service="web",vip="192.0.2.10"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"anycastd_ospf_dropped_packets_total{reason="bad-checksum"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"anycastd_ospf_anomalies_total{kind="adjacency-stalled"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("anycastd_check_duration_seconds_bucket"),
            "{text}"
        );
        // A second scrape does not double the counter.
        let text = m.render(&tx).await;
        assert!(
            text.contains(r#"anycastd_ospf_dropped_packets_total{reason="bad-checksum"} 3"#),
            "{text}"
        );
    }
}
