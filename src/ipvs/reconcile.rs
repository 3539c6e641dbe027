//! The reconcile engine: the desired IPVS state diffed against a dump of
//! the kernel, giving the fewest operations that make them equal. It never
//! flushes: what is programmed already is adopted as it is, so a restart
//! of the daemon changes nothing and drops no connection.
//!
//! ECMP directors must all pick the same real server for a flow: `mh`
//! fills its table in the order of the kernel's destination list, so every
//! director adds destinations in one canonical order (sorted by address
//! and port) and a failed server gets weight 0 rather than removal. The
//! per-service [`fingerprint`] of (ordered destinations, weights) lets
//! operators see that directors agree.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::model::{Dest, Service, ServiceKey};

/// A service as it should be: destinations in canonical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub service: Service,
    pub dests: Vec<Dest>,
    /// Destinations whose health is not known yet: they keep the weight
    /// the kernel has (a restarted daemon changes nothing), or get 0 when
    /// they are new.
    pub unknown: BTreeSet<(IpAddr, u16)>,
}

impl Desired {
    /// `service` with `dests` put in the canonical order.
    pub fn new(service: Service, mut dests: Vec<Dest>) -> Desired {
        dests.sort_by_key(|d| (d.addr, d.port));
        // The kernel keys a destination by address and port: a second one
        // would be refused (EEXIST) at every reconcile. The first wins.
        dests.dedup_by_key(|d| (d.addr, d.port));
        Desired {
            service,
            dests,
            unknown: BTreeSet::new(),
        }
    }

    /// The destinations with the weights to program, given what the
    /// kernel has (`have`).
    fn resolved(&self, have: &[Dest]) -> Vec<Dest> {
        self.dests
            .iter()
            .map(|d| {
                let mut d = d.clone();
                if self.unknown.contains(&(d.addr, d.port)) {
                    d.weight = have
                        .iter()
                        .find(|h| h.addr == d.addr && h.port == d.port)
                        .map_or(0, |h| h.weight);
                }
                d
            })
            .collect()
    }
}

/// What to do about destinations nobody configured (added by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Remove them (services we own only).
    #[default]
    Repair,
    /// Leave them and report them.
    Report,
}

/// One change to the kernel's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    NewService(Service),
    SetService(Service),
    DelService(ServiceKey),
    NewDest(ServiceKey, Dest),
    SetDest(ServiceKey, Dest),
    DelDest(ServiceKey, Dest),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dest = |d: &Dest| match d.addr {
            std::net::IpAddr::V4(a) => format!("{a}:{}", d.port),
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", d.port),
        };
        match self {
            Op::NewService(s) => write!(
                f,
                "add service {} scheduler {} flags {:#x}",
                s.key, s.scheduler, s.flags
            ),
            Op::SetService(s) => write!(
                f,
                "change service {} scheduler {} flags {:#x}",
                s.key, s.scheduler, s.flags
            ),
            Op::DelService(k) => write!(f, "delete service {k}"),
            Op::NewDest(k, d) => write!(
                f,
                "add {} to {k} ({}, weight {})",
                dest(d),
                d.forward.name(),
                d.weight
            ),
            Op::SetDest(k, d) => write!(f, "set {} of {k} to weight {}", dest(d), d.weight),
            Op::DelDest(k, d) => write!(f, "delete {} from {k}", dest(d)),
        }
    }
}

/// The operations, and what was found that the policy leaves alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// Foreign services, hand-made destinations left by [`Policy::Report`],
    /// destination orders that differ from the canonical one.
    pub notes: Vec<String>,
}

/// The operations that turn `current` (a kernel dump) into `desired`.
/// Services of `current` absent from `desired` are deleted only when
/// listed in `retired` (services this daemon programmed and no longer
/// wants); any other is someone else's and only reported.
pub fn plan(
    desired: &[Desired],
    current: &[(Service, Vec<Dest>)],
    retired: &[ServiceKey],
    policy: Policy,
) -> Plan {
    let mut p = Plan::default();
    for want in desired {
        let key = want.service.key;
        match current.iter().find(|(s, _)| s.key == key) {
            None => {
                p.ops.push(Op::NewService(want.service.clone()));
                for d in want.resolved(&[]) {
                    p.ops.push(Op::NewDest(key, d));
                }
            }
            Some((have, have_dests)) => {
                if !have.same_config(&want.service) {
                    p.ops.push(Op::SetService(want.service.clone()));
                }
                for d in &want.resolved(have_dests) {
                    match have_dests
                        .iter()
                        .find(|h| h.addr == d.addr && h.port == d.port)
                    {
                        None => p.ops.push(Op::NewDest(key, d.clone())),
                        Some(h) if !h.same_config(d) => p.ops.push(Op::SetDest(key, d.clone())),
                        Some(_) => {}
                    }
                }
                for h in have_dests {
                    if want
                        .dests
                        .iter()
                        .any(|d| d.addr == h.addr && d.port == h.port)
                    {
                        continue;
                    }
                    match policy {
                        Policy::Repair => p.ops.push(Op::DelDest(key, h.clone())),
                        Policy::Report => p.notes.push(format!(
                            "{key}: destination {}:{} is not configured (left in place)",
                            h.addr, h.port
                        )),
                    }
                }
                // The kernel's list once these operations are done: it
                // puts each new destination at its head.
                let mut order: Vec<_> = p
                    .ops
                    .iter()
                    .rev()
                    .filter_map(|op| match op {
                        Op::NewDest(k, d) if *k == key => Some((d.addr, d.port)),
                        _ => None,
                    })
                    .collect();
                order.extend(
                    have_dests
                        .iter()
                        .filter(|h| {
                            want.dests
                                .iter()
                                .any(|d| d.addr == h.addr && d.port == h.port)
                        })
                        .map(|h| (h.addr, h.port)),
                );
                let mut canonical = order.clone();
                canonical.sort();
                canonical.reverse();
                if order != canonical {
                    p.notes.push(format!(
                        "{key}: destinations are not in the canonical order (some were added \
                         by hand or by another program): directors may disagree on servers"
                    ));
                }
            }
        }
    }
    let wanted: BTreeSet<ServiceKey> = desired.iter().map(|d| d.service.key).collect();
    for (have, _) in current {
        if wanted.contains(&have.key) {
            continue;
        }
        if retired.contains(&have.key) {
            p.ops.push(Op::DelService(have.key));
        } else {
            p.notes.push(format!(
                "{}: not configured here (someone else's; left alone)",
                have.key
            ));
        }
    }
    p
}

/// A short digest of a service's destinations in the kernel's order with
/// their weights: equal on every director that will pick the same server
/// for the same flow.
pub fn fingerprint(service: &Service, dests: &[Dest]) -> String {
    let mut h = Sha256::new();
    h.update(service.key.to_string().as_bytes());
    h.update(service.scheduler.as_bytes());
    h.update(service.flags.to_be_bytes());
    for d in dests {
        h.update(format!("|{}:{}={}", d.addr, d.port, d.weight).as_bytes());
    }
    h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::model::{flags, Forward, Protocol};
    use super::*;

    fn svc(port: u16) -> Service {
        Service {
            key: ServiceKey::Inet {
                protocol: Protocol::Tcp,
                addr: "192.0.2.10".parse().unwrap(),
                port,
            },
            scheduler: "mh".into(),
            flags: flags::SCHED1 | flags::SCHED2,
            timeout: 0,
            netmask: 0xffff_ffff,
            stats: None,
        }
    }

    fn dest(last: u8, weight: u32) -> Dest {
        Dest::new(
            std::net::IpAddr::from([198, 18, 1, last]),
            80,
            Forward::Route,
            weight,
        )
    }

    fn desired() -> Vec<Desired> {
        vec![Desired::new(
            svc(80),
            vec![dest(3, 1), dest(1, 1), dest(2, 1)],
        )]
    }

    /// The kernel's list after adding in canonical order: newest first.
    fn kernel(d: &Desired) -> (Service, Vec<Dest>) {
        let mut dests = d.dests.clone();
        dests.reverse();
        (d.service.clone(), dests)
    }

    #[test]
    fn an_empty_kernel_gets_services_then_destinations_in_canonical_order() {
        let p = plan(&desired(), &[], &[], Policy::Repair);
        let shown: Vec<String> = p.ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "add service TCP 192.0.2.10:80 scheduler mh flags 0x18",
                "add 198.18.1.1:80 to TCP 192.0.2.10:80 (Route, weight 1)",
                "add 198.18.1.2:80 to TCP 192.0.2.10:80 (Route, weight 1)",
                "add 198.18.1.3:80 to TCP 192.0.2.10:80 (Route, weight 1)",
            ]
        );
        assert!(p.notes.is_empty());
    }

    #[test]
    fn what_is_programmed_already_is_adopted_unchanged() {
        let d = desired();
        let mut have = kernel(&d[0]);
        // Counters and the kernel's HASHED flag do not count.
        have.0.flags |= flags::HASHED;
        have.1[0].active_conns = 12;
        let p = plan(&d, &[have], &[], Policy::Repair);
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn a_failed_server_gets_weight_zero_not_removal() {
        let d = desired();
        let have = kernel(&d[0]);
        let mut want = d.clone();
        want[0].dests[1].weight = 0;
        let p = plan(&want, &[have], &[], Policy::Repair);
        assert_eq!(
            p.ops,
            [Op::SetDest(want[0].service.key, dest(2, 0))],
            "{:?}",
            p.ops
        );
    }

    #[test]
    fn servers_of_unknown_health_keep_the_kernels_weight() {
        let d = desired();
        let mut have = kernel(&d[0]);
        have.1[0].weight = 7; // 198.18.1.3
        let mut want = d.clone();
        want[0].unknown = want[0].dests.iter().map(|x| (x.addr, x.port)).collect();
        // Adopted as it is.
        let p = plan(&want, std::slice::from_ref(&have), &[], Policy::Repair);
        assert_eq!(p, Plan::default());
        // New, they start at weight 0.
        let p = plan(&want, &[], &[], Policy::Repair);
        assert!(p
            .ops
            .iter()
            .skip(1)
            .all(|op| matches!(op, Op::NewDest(_, x) if x.weight == 0)));
    }

    #[test]
    fn hand_made_drift_is_repaired_or_reported() {
        let d = desired();
        let mut have = kernel(&d[0]);
        have.1.retain(|x| x.addr != dest(2, 1).addr);
        have.1.push(dest(9, 1));
        let key = d[0].service.key;
        let p = plan(&d, std::slice::from_ref(&have), &[], Policy::Repair);
        assert_eq!(
            p.ops,
            [Op::NewDest(key, dest(2, 1)), Op::DelDest(key, dest(9, 1))]
        );
        let p = plan(&d, &[have], &[], Policy::Report);
        assert_eq!(p.ops, [Op::NewDest(key, dest(2, 1))]);
        assert!(p.notes[0].contains("198.18.1.9:80 is not configured"));
        // Re-added, .2 lands at the head of the kernel's list: said.
        assert!(
            p.notes[1].contains("not in the canonical order"),
            "{:?}",
            p.notes
        );
        assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
    }

    #[test]
    fn foreign_services_are_left_alone_and_retired_ones_deleted() {
        let other = (svc(8080), vec![dest(5, 1)]);
        let p = plan(&[], std::slice::from_ref(&other), &[], Policy::Repair);
        assert!(p.ops.is_empty());
        assert!(p.notes[0].contains("someone else's"), "{:?}", p.notes);
        let p = plan(
            &[],
            std::slice::from_ref(&other),
            &[other.0.key],
            Policy::Repair,
        );
        assert_eq!(p.ops, [Op::DelService(other.0.key)]);
    }

    #[test]
    fn a_changed_scheduler_is_set_in_place() {
        let d = desired();
        let have = kernel(&d[0]);
        let mut want = d.clone();
        want[0].service.scheduler = "sh".into();
        let p = plan(&want, &[have], &[], Policy::Repair);
        assert_eq!(p.ops, [Op::SetService(want[0].service.clone())]);
    }

    /// A kernel table as IPVS keeps it: services in creation order, each
    /// new destination at the head of its service's list.
    fn run(kernel: &mut Vec<(Service, Vec<Dest>)>, ops: &[Op]) {
        for op in ops {
            match op {
                Op::NewService(s) => {
                    assert!(kernel.iter().all(|(k, _)| k.key != s.key), "{op}");
                    kernel.push((s.clone(), Vec::new()));
                }
                Op::SetService(s) => {
                    let (k, _) = kernel.iter_mut().find(|(k, _)| k.key == s.key).unwrap();
                    *k = s.clone();
                }
                Op::DelService(key) => kernel.retain(|(k, _)| k.key != *key),
                Op::NewDest(key, d) => {
                    let (_, ds) = kernel.iter_mut().find(|(k, _)| k.key == *key).unwrap();
                    assert!(
                        ds.iter().all(|x| (x.addr, x.port) != (d.addr, d.port)),
                        "{op}"
                    );
                    ds.insert(0, d.clone());
                }
                Op::SetDest(key, d) => {
                    let (_, ds) = kernel.iter_mut().find(|(k, _)| k.key == *key).unwrap();
                    let x = ds
                        .iter_mut()
                        .find(|x| (x.addr, x.port) == (d.addr, d.port))
                        .unwrap();
                    *x = d.clone();
                }
                Op::DelDest(key, d) => {
                    let (_, ds) = kernel.iter_mut().find(|(k, _)| k.key == *key).unwrap();
                    let before = ds.len();
                    ds.retain(|x| (x.addr, x.port) != (d.addr, d.port));
                    assert_eq!(ds.len(), before - 1, "{op}");
                }
            }
        }
    }

    use proptest::prelude::*;

    /// Services on ports 1-4, destinations 198.18.1.1-6, so desired and
    /// current tables overlap often.
    fn arb_table() -> impl Strategy<Value = Vec<(Service, Vec<Dest>)>> {
        proptest::collection::btree_map(
            1..5u16,
            (
                prop_oneof![Just("mh"), Just("sh"), Just("wlc")],
                proptest::collection::btree_map(1..7u8, 0..4u32, 0..5),
            ),
            0..4,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(port, (sched, ds))| {
                    let mut s = svc(port);
                    s.scheduler = sched.into();
                    let dests = ds.into_iter().map(|(last, w)| dest(last, w)).collect();
                    (s, dests)
                })
                .collect()
        })
    }

    proptest! {
        /// From any kernel table, one plan makes every desired service
        /// exactly as desired, leaves everyone else's alone, and a second
        /// plan has nothing to do.
        #[test]
        fn one_plan_converges_and_the_next_is_empty(
            want in arb_table(),
            mut kernel in arb_table(),
        ) {
            let desired: Vec<Desired> = want
                .iter()
                .map(|(s, d)| Desired::new(s.clone(), d.clone()))
                .collect();
            let foreign: Vec<(Service, Vec<Dest>)> = kernel
                .iter()
                .filter(|(s, _)| want.iter().all(|(w, _)| w.key != s.key))
                .cloned()
                .collect();
            let p = plan(&desired, &kernel, &[], Policy::Repair);
            run(&mut kernel, &p.ops);
            for d in &desired {
                let (s, ds) = kernel.iter().find(|(s, _)| s.key == d.service.key).unwrap();
                prop_assert!(s.same_config(&d.service));
                let mut got = ds.clone();
                got.sort_by_key(|x| (x.addr, x.port));
                prop_assert_eq!(&got, &d.dests);
            }
            for f in &foreign {
                prop_assert!(kernel.contains(f), "foreign {:?} touched", f.0.key);
            }
            let again = plan(&desired, &kernel, &[], Policy::Repair);
            prop_assert!(again.ops.is_empty(), "{:?}", again.ops);
        }

        /// Directors that start empty build the same destination lists
        /// (the kernel's order is the canonical order reversed), whatever
        /// order their configs list the servers in.
        #[test]
        fn empty_directors_agree_on_order(
            want in arb_table(),
            seed in any::<u64>(),
        ) {
            let mut a = Vec::new();
            let mut b = Vec::new();
            let da: Vec<Desired> = want
                .iter()
                .map(|(s, d)| Desired::new(s.clone(), d.clone()))
                .collect();
            let db: Vec<Desired> = want
                .iter()
                .map(|(s, d)| {
                    let mut d = d.clone();
                    let n = d.len().max(1);
                    d.rotate_left(usize::try_from(seed % 7).unwrap() % n);
                    d.reverse();
                    Desired::new(s.clone(), d)
                })
                .collect();
            run(&mut a, &plan(&da, &[], &[], Policy::Repair).ops);
            run(&mut b, &plan(&db, &[], &[], Policy::Repair).ops);
            prop_assert_eq!(&a, &b);
            for ((s, ka), (_, kb)) in a.iter().zip(&b) {
                prop_assert_eq!(fingerprint(s, ka), fingerprint(s, kb));
            }
        }
    }

    #[test]
    fn fingerprints_follow_order_and_weights() {
        let d = desired();
        let (s, k) = kernel(&d[0]);
        let a = fingerprint(&s, &k);
        assert_eq!(a, fingerprint(&s, &k.clone()));
        assert_eq!(a.len(), 12);
        let mut reordered = k.clone();
        reordered.swap(0, 1);
        assert_ne!(a, fingerprint(&s, &reordered));
        let mut weighted = k;
        weighted[0].weight = 0;
        assert_ne!(a, fingerprint(&s, &weighted));
    }
}
