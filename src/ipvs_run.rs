//! The daemon's IPVS loop: a thread that owns the generic netlink socket
//! (neli is blocking), takes the latest desired table from the manager,
//! reconciles the kernel with it at once and again every period (hand-made
//! drift is repaired and logged), and reports which services are
//! programmed as configured, with their fingerprints.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anycastd::ipvs::reconcile::{self, Desired, Policy};
use anycastd::ipvs::{Client, ServiceKey};
use tokio::sync::mpsc as tmpsc;

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

pub struct Handle {
    desired: mpsc::Sender<(u64, Vec<Desired>)>,
}

impl Handle {
    /// Hands the loop a new desired table (reconciled at once); its
    /// reports carry `generation`.
    pub fn set(&self, generation: u64, desired: Vec<Desired>) {
        let _ = self.desired.send((generation, desired));
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
/// [`Handle::set`] gives it a new table, and sends a report after each.
pub fn spawn(period: Duration) -> (Handle, tmpsc::UnboundedReceiver<Report>) {
    let (tx, rx) = mpsc::channel::<(u64, Vec<Desired>)>();
    let (rtx, rrx) = tmpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("ipvs".into())
        .spawn(move || run(&rx, &rtx, period))
        .ok();
    (Handle { desired: tx }, rrx)
}

fn run(
    rx: &mpsc::Receiver<(u64, Vec<Desired>)>,
    reports: &tmpsc::UnboundedSender<Report>,
    period: Duration,
) {
    let mut client: Option<Client> = None;
    let mut desired: Option<(u64, Vec<Desired>)> = None;
    // Services this daemon programmed: deleted once no longer desired.
    let mut ours: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut last_notes: Vec<String> = Vec::new();
    let mut sysctls_done = false;
    loop {
        let fresh = match rx.recv_timeout(period) {
            Ok(d) => {
                // Only the latest table matters.
                let mut d = d;
                while let Ok(newer) = rx.try_recv() {
                    d = newer;
                }
                desired = Some(d);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some((generation, want)) = desired.as_ref() else {
            continue;
        };
        if client.is_none() {
            match Client::connect() {
                Ok(c) => client = Some(c),
                Err(e) => {
                    let _ = reports.send(Report {
                        generation: *generation,
                        error: Some(e.to_string()),
                        ..Report::default()
                    });
                    continue;
                }
            }
        }
        let Some(c) = client.as_ref() else { continue };
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
