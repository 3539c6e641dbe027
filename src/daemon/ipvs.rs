//! The daemon's IPVS loop: a thread that owns the generic netlink socket
//! (neli is blocking), takes the latest desired table from the manager,
//! reconciles the kernel with it at once and again every period (hand-made
//! drift is repaired and logged), and reports which services are
//! programmed as configured, with their fingerprints. It also keeps the
//! connection sync daemon in the role VRRP gives it (`lvs_sync`). And the
//! mapping of a config's `ipvs` services to desired IPVS services.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use std::net::IpAddr;

use anycastd::ipvs::model::{flags, SyncDaemon, SyncState};
use anycastd::ipvs::reconcile::{self, Desired, Policy};
use anycastd::ipvs::{Client, Dest, Forward, Protocol, Service, ServiceKey, TunnelType};

use crate::config::{self, Forwarding};
use crate::daemon::service::Mode;
use tokio::sync::mpsc as tmpsc;

/// The service key, flags and destinations of a config service in `ipvs`
/// mode, each server at `weight(index, server)`.
pub fn desired(
    s: &config::Service,
    mut weight: impl FnMut(usize, &config::Server) -> u32,
) -> Option<Desired> {
    let ipvs = s.ipvs.as_ref()?;
    if s.mode != Mode::Ipvs {
        return None;
    }
    let protocol = match s.protocol {
        config::Protocol::Tcp => Protocol::Tcp,
        config::Protocol::Udp => Protocol::Udp,
        config::Protocol::Sctp => Protocol::Sctp,
    };
    let port = s.port.unwrap_or(0);
    let mut svc_flags = 0;
    if matches!(ipvs.scheduler.as_str(), "mh" | "sh") {
        // Fallback to the next server when the chosen one is down, and
        // hash ports too (routers hash on L4).
        svc_flags |= flags::SCHED1 | flags::SCHED2;
    }
    // Every port of the VIP needs persistence (as `ipvsadm -p` with port 0).
    let persistence = ipvs
        .persistence
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .or((port == 0).then_some(300));
    if persistence.is_some() {
        svc_flags |= flags::PERSISTENT;
    }
    let service = Service {
        key: ServiceKey::Inet {
            protocol,
            addr: IpAddr::V4(s.vip),
            port,
        },
        scheduler: ipvs.scheduler.clone(),
        flags: svc_flags,
        timeout: persistence.unwrap_or(0),
        netmask: 0xffff_ffff,
        stats: None,
    };
    let forward = match ipvs.forwarding {
        Forwarding::Dr => Forward::Route,
        Forwarding::Nat => Forward::Masquerade,
        Forwarding::Tunnel => Forward::Tunnel {
            kind: TunnelType::Ipip,
            port: 0,
            flags: 0,
        },
    };
    let dests = s
        .servers
        .iter()
        .enumerate()
        .map(|(i, srv)| {
            Dest::new(
                srv.address,
                srv.port.unwrap_or(port),
                forward,
                weight(i, srv),
            )
        })
        .collect();
    Some(Desired::new(service, dests))
}

/// What the loop found after a reconcile.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The generation of the table this reconcile worked on.
    pub generation: u64,
    /// Each desired service: programmed exactly as desired, and the
    /// fingerprint of its destinations in the kernel's order.
    pub services: BTreeMap<ServiceKey, (bool, String)>,
    /// Each desired service's counters and destinations as the kernel has
    /// them (for metrics).
    pub tables: BTreeMap<
        ServiceKey,
        (
            Option<anycastd::ipvs::model::Stats>,
            Vec<anycastd::ipvs::Dest>,
        ),
    >,
    /// The last error, if the reconcile failed.
    pub error: Option<String>,
}

enum Msg {
    Table(u64, Vec<Desired>),
    Sync(SyncDaemon),
}

pub struct Handle {
    desired: mpsc::Sender<Msg>,
}

impl Handle {
    /// Hands the loop a new desired table (reconciled at once); its
    /// reports carry `generation`.
    pub fn set(&self, generation: u64, desired: Vec<Desired>) {
        let _ = self.desired.send(Msg::Table(generation, desired));
    }

    /// The connection sync daemon to run: this one, and not the other
    /// role's (checked again every period).
    pub fn set_sync(&self, daemon: SyncDaemon) {
        let _ = self.desired.send(Msg::Sync(daemon));
    }
}

/// Sets and verifies the ECMP director sysctls (`ipvs::sysctl`); returns
/// what could not be set.
pub fn set_sysctls() -> Vec<String> {
    let list = anycastd::ipvs::sysctl::ecmp_sysctls(false);
    anycastd::ipvs::sysctl::apply(&list)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Starts the loop; it reconciles every `period` and whenever
/// [`Handle::set`] gives it a new table, and sends a report after each to
/// `reports`.
pub fn spawn(period: Duration, reports: tmpsc::UnboundedSender<Report>) -> Handle {
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::Builder::new()
        .name("ipvs".into())
        .spawn(move || run(&rx, &reports, period))
        .ok();
    Handle { desired: tx }
}

fn run(rx: &mpsc::Receiver<Msg>, reports: &tmpsc::UnboundedSender<Report>, period: Duration) {
    let mut client: Option<Client> = None;
    let mut desired: Option<(u64, Vec<Desired>)> = None;
    let mut sync: Option<SyncDaemon> = None;
    let mut sync_error: Option<String> = None;
    // Services this daemon programmed: deleted once no longer desired.
    let mut ours: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut last_notes: Vec<String> = Vec::new();
    let mut sysctls_done = false;
    loop {
        let mut fresh = false;
        match rx.recv_timeout(period) {
            Ok(m) => {
                // Only the latest table and sync role matter.
                let mut next = Some(m);
                while let Some(m) = next.take().or_else(|| rx.try_recv().ok()) {
                    match m {
                        Msg::Table(g, d) => {
                            desired = Some((g, d));
                            fresh = true;
                        }
                        Msg::Sync(d) => sync = Some(d),
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if desired.is_none() && sync.is_none() {
            continue;
        }
        if client.is_none() {
            match Client::connect() {
                Ok(c) => client = Some(c),
                Err(e) => {
                    let _ = reports.send(Report {
                        generation: desired.as_ref().map_or(0, |d| d.0),
                        error: Some(e.to_string()),
                        ..Report::default()
                    });
                    continue;
                }
            }
        }
        let Some(c) = client.as_ref() else { continue };
        if let Some(want) = &sync {
            let r = sync_daemons(c, want).err().map(|e| e.to_string());
            if r != sync_error {
                if let Some(e) = &r {
                    tracing::error!("ipvs: sync daemon: {e}");
                }
                sync_error = r;
            }
        }
        let Some((generation, want)) = desired.as_ref() else {
            continue;
        };
        if !sysctls_done {
            for p in set_sysctls() {
                tracing::warn!("ipvs: {p}");
            }
            sysctls_done = true;
        }
        let mut report = reconcile_once(c, want, &mut ours, &mut last_notes, fresh);
        report.generation = *generation;
        if report.error.is_some() {
            // The socket may be broken: start over next time.
            client = None;
        }
        let _ = reports.send(report);
    }
}

/// Runs `want` and stops the other role's daemon; a daemon of the same
/// role on another interface or sync id is restarted.
fn sync_daemons(c: &Client, want: &SyncDaemon) -> Result<(), anycastd::ipvs::IpvsError> {
    let role = |s: SyncState| match s {
        SyncState::Master => "master",
        SyncState::Backup => "backup",
    };
    let mut running = false;
    for d in c.daemons()? {
        let same =
            d.state == want.state && d.interface == want.interface && d.sync_id == want.sync_id;
        if same {
            running = true;
            continue;
        }
        c.stop_daemon(d.state)?;
        tracing::info!(
            interface = %d.interface, syncid = d.sync_id,
            "ipvs: sync {} daemon stopped", role(d.state)
        );
    }
    if !running {
        c.start_daemon(want)?;
        tracing::info!(
            interface = %want.interface, syncid = want.sync_id,
            "ipvs: sync {} daemon started", role(want.state)
        );
    }
    Ok(())
}

fn reconcile_once(
    c: &Client,
    want: &[Desired],
    ours: &mut BTreeSet<ServiceKey>,
    last_notes: &mut Vec<String>,
    fresh: bool,
) -> Report {
    let mut report = Report::default();
    let dump = match c.dump() {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    let wanted: BTreeSet<ServiceKey> = want.iter().map(|d| d.service.key).collect();
    let retired: Vec<ServiceKey> = ours.difference(&wanted).copied().collect();
    let plan = reconcile::plan(want, &dump, &retired, Policy::Repair);
    for op in &plan.ops {
        if fresh {
            tracing::info!("ipvs: {op}");
        } else {
            tracing::warn!("ipvs: repaired drift: {op}");
        }
    }
    if plan.notes != *last_notes {
        for n in &plan.notes {
            tracing::warn!("ipvs: {n}");
        }
        last_notes.clone_from(&plan.notes);
    }
    if let Err(e) = c.apply(&plan.ops) {
        tracing::error!("ipvs: {e}");
        report.error = Some(e.to_string());
    }
    for r in &retired {
        ours.remove(r);
    }
    ours.extend(wanted.iter().copied());
    // What the kernel has now decides what is programmed.
    let after = c.dump().unwrap_or_default();
    let check = reconcile::plan(want, &after, &[], Policy::Report);
    for d in want {
        let key = d.service.key;
        let pending = check.ops.iter().any(|op| match op {
            reconcile::Op::NewService(s) | reconcile::Op::SetService(s) => s.key == key,
            reconcile::Op::DelService(k)
            | reconcile::Op::NewDest(k, _)
            | reconcile::Op::SetDest(k, _)
            | reconcile::Op::DelDest(k, _) => *k == key,
        });
        let fingerprint = after
            .iter()
            .find(|(s, _)| s.key == key)
            .map(|(s, dests)| reconcile::fingerprint(s, dests))
            .unwrap_or_default();
        report.services.insert(key, (!pending, fingerprint));
        if let Some((s, dests)) = after.iter().find(|(s, _)| s.key == key) {
            report.tables.insert(key, (s.stats, dests.clone()));
        }
    }
    report
}
