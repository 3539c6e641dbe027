//! A hostile or broken neighbour, scripted on the simulated LAN of
//! `common::sim`: what it sends is dropped and counted, never stored or
//! passed on; copies of our own LSAs are superseded or flushed in time for
//! the routers to take ours; stalled adjacencies start over; the database
//! is bounded.
//!
//! The LAN: a router R (priority 1, the DR) and two directors D1 and D2
//! (priority 0) advertising the VIP 192.0.2.10. "From R" means a packet
//! with R's source address and router ID, as a host on the LAN forges it.

use std::time::Instant;

use bytes::Bytes;
use ospf::instance::{Config, Event, Instance, NsmState, SelfLsaKind};
use ospf::lsa::{
    Lsa, LsaBody, LsaHeader, LsaKey, LsaType, Options, RawLsa, RouterFlags, RouterLink,
    RouterLinkType, RouterLsa, INITIAL_SEQUENCE_NUMBER, MAX_AGE, MAX_SEQUENCE_NUMBER,
};
use ospf::packet::{
    DatabaseDescription, DdFlags, LinkStateRequest, LinkStateUpdate, LsRequest, Packet, PacketBody,
    ALL_D_ROUTERS, ALL_SPF_ROUTERS, AUTYPE_NULL,
};
use ospf::validate::{check_header, check_lsa, LsaTypes};

mod common;
use common::sim::*;

const VIP: &str = "192.0.2.10";
const R: &str = "10.0.0.1";
const D1: &str = "10.0.0.11";
const D2: &str = "10.0.0.12";
const R_ADDR: &str = "198.18.0.1";
const D1_ADDR: &str = "198.18.0.11";
const D2_ADDR: &str = "198.18.0.12";

struct Lan {
    sim: Sim,
    r: usize,
    d1: usize,
    d2: usize,
}

/// The LAN, every adjacency Full and the VIP in R's database from both
/// directors.
fn lan() -> Lan {
    let mut sim = Sim::new();
    let r = sim.node(R);
    let d1 = sim.node(D1);
    let d2 = sim.node(D2);
    sim.attach(r, 0, lan_cfg("r0", 1, R_ADDR, 1));
    sim.attach(d1, 0, lan_cfg("d0", 1, D1_ADDR, 0));
    sim.attach(d2, 0, lan_cfg("d0", 1, D2_ADDR, 0));
    let now = sim.now;
    for d in [d1, d2] {
        sim.inst_mut(d).advertise_vip(now, BACKBONE, ip(VIP), 10);
    }
    let mut lan = Lan { sim, r, d1, d2 };
    let took = lan
        .sim
        .run_until_cond(secs(120.0), |s| vip_everywhere(s, r, d1, d2));
    assert!(took.is_some(), "the LAN did not converge");
    // Past every MinLSArrival of the convergence.
    lan.sim.run_for(secs(3.0));
    lan
}

/// Both directors Full with R, and R holds both Router-LSAs with the VIP.
fn vip_everywhere(s: &Sim, r: usize, d1: usize, d2: usize) -> bool {
    [(d1, D1), (d2, D2)].iter().all(|&(d, id)| {
        s.nbr_state(d, R) == Some(NsmState::Full)
            && s.nbr_state(r, id) == Some(NsmState::Full)
            && r_has_vip(s, r, id)
    })
}

fn r_has_vip(s: &Sim, r: usize, id: &str) -> bool {
    s.router_lsa(r, id)
        .is_some_and(|(h, body)| h.age < MAX_AGE && vip_link(&body, VIP).is_some())
}

fn packet(router_id: &str, body: PacketBody) -> Bytes {
    Packet {
        router_id: ip(router_id),
        area_id: BACKBONE,
        autype: AUTYPE_NULL,
        auth_data: [0; 8],
        body,
    }
    .encode()
    .expect("encode")
    .freeze()
}

/// Any LSA bytes, length and a valid Fletcher checksum filled in: what an
/// attacker with a correct checksum sends.
fn raw_lsa(t: u8, id: &str, adv: &str, age: u16, seq: i32, body: &[u8]) -> RawLsa {
    let header = LsaHeader {
        age,
        options: Options::E,
        lsa_type: LsaType(t),
        link_state_id: ip(id),
        advertising_router: ip(adv),
        seq,
        checksum: 0,
        length: 0,
    };
    RawLsa::build(header, body).expect("short")
}

fn external(id: &str, adv: &str) -> RawLsa {
    raw_lsa(
        5,
        id,
        adv,
        1,
        INITIAL_SEQUENCE_NUMBER,
        &[255, 255, 255, 0, 0x80, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0],
    )
}

/// A Router-LSA of `adv` with only a transit link to R's LAN: a director's
/// Router-LSA without its VIP.
fn router_lsa_without_vip(adv: &str, addr: &str, seq: i32) -> RawLsa {
    Lsa {
        header: LsaHeader {
            age: 1,
            options: Options::E,
            lsa_type: LsaType::ROUTER,
            link_state_id: ip(adv),
            advertising_router: ip(adv),
            seq,
            checksum: 0,
            length: 0,
        },
        body: LsaBody::Router(RouterLsa {
            flags: RouterFlags::empty(),
            links: vec![RouterLink {
                link_id: ip(R_ADDR),
                link_data: ip(addr),
                link_type: RouterLinkType::Transit,
                metric: 10,
                tos: vec![],
            }],
        }),
    }
    .to_raw()
    .expect("encode")
}

/// The sequence number of node `n`'s copy of `id`'s Router-LSA.
fn router_seq(s: &Sim, n: usize, id: &str) -> i32 {
    s.router_lsa(n, id).expect("Router-LSA").0.seq
}

fn anomalies(s: &Sim, n: usize, kind: &str) -> u64 {
    s.inst(n).anomaly_counters().get(kind).copied().unwrap_or(0)
}

/// Everything the directors ever sent is something FRR and BIRD accept:
/// every LSA of every update, every header of every Database Description.
fn assert_nothing_bad_sent(s: &Sim, nodes: &[usize]) {
    let t = LsaTypes::NORMAL;
    for sent in s.log.iter().filter(|x| nodes.contains(&x.from)) {
        match &sent.packet.body {
            PacketBody::LinkStateUpdate(u) => {
                for l in &u.lsas {
                    assert_eq!(check_lsa(l, t), Ok(()), "node {} sent {:?}", sent.from, l);
                }
            }
            PacketBody::DatabaseDescription(dd) => {
                for h in &dd.lsa_headers {
                    assert_eq!(
                        check_header(h, t),
                        Ok(()),
                        "node {} described {h:?}",
                        sent.from
                    );
                }
            }
            _ => {}
        }
    }
}

/// Every LSA each node stores passes the checks.
fn assert_databases_valid(s: &Sim, nodes: &[usize]) {
    for &n in nodes {
        for (area, h) in s.inst(n).database(s.now) {
            let raw = s.inst(n).lsa(s.now, area, h.key()).expect("listed LSA");
            assert_eq!(
                check_lsa(&raw, LsaTypes::NORMAL),
                Ok(()),
                "node {n} stores {h:?}"
            );
        }
    }
}

/// Delivers a packet from R's identity to both directors (R itself ignores
/// its own address, as FRR and BIRD do).
fn from_r_to_directors(lan: &mut Lan, body: PacketBody) {
    let bytes = packet(R, body);
    for d in [lan.d1, lan.d2] {
        lan.sim
            .inject(d, 1, ip(R_ADDR), ALL_SPF_ROUTERS, bytes.clone());
    }
}

#[test]
fn malformed_lsas_are_dropped_alone_counted_and_never_described() {
    let mut lan = lan();
    let adv = "198.18.200.1";
    let router = |declared: u16, links: &[(u8, u8)]| {
        let mut b = vec![0, 0];
        b.extend(declared.to_be_bytes());
        for &(link_type, ntos) in links {
            b.extend([198, 18, 0, 1, 198, 18, 0, 11, link_type, ntos, 0, 10]);
            b.extend(std::iter::repeat_n(0, 4 * usize::from(ntos)));
        }
        b
    };
    let seq = INITIAL_SEQUENCE_NUMBER;
    let bad: Vec<(RawLsa, &str)> = vec![
        (
            raw_lsa(1, adv, adv, 1, seq, &router(3, &[(2, 0)])),
            "bad-lsa-router-links",
        ),
        (
            raw_lsa(1, "198.18.200.9", adv, 1, seq, &router(0, &[])),
            "bad-lsa-router-id",
        ),
        (
            raw_lsa(10, "1.0.0.1", adv, 1, seq, &[1, 2, 3, 4, 5, 6]),
            "bad-lsa-length",
        ),
        (
            raw_lsa(3, "10.1.0.0", adv, 1, seq, &[255, 255, 0, 0]),
            "bad-lsa-summary",
        ),
        (
            raw_lsa(5, "10.2.0.0", adv, 1, seq, &[0; 20]),
            "bad-lsa-external",
        ),
        (
            raw_lsa(3, "10.3.0.0", adv, 1, seq, &[255, 255, 0, 0, 7, 0, 0, 1]),
            "bad-lsa-summary",
        ),
        (raw_lsa(6, "10.4.0.0", adv, 1, seq, &[0; 8]), "bad-lsa-type"),
        (
            raw_lsa(7, "10.5.0.0", adv, 1, seq, &[0; 16]),
            "bad-lsa-type",
        ),
        (
            raw_lsa(5, "10.6.0.0", adv, 3601, seq, &[0; 16]),
            "bad-lsa-age",
        ),
        (
            raw_lsa(5, "10.7.0.0", adv, 1, i32::MIN, &[0; 16]),
            "bad-lsa-seq",
        ),
        (
            raw_lsa(9, "3.0.0.1", adv, 1, seq, &[0, 1, 0, 200]),
            "bad-lsa-opaque",
        ),
    ];
    let good = external("10.9.0.0", adv);
    let mut lsas: Vec<RawLsa> = bad.iter().map(|(l, _)| l.clone()).collect();
    lsas.insert(3, good.clone());
    lan.sim.clear_log();
    from_r_to_directors(
        &mut lan,
        PacketBody::LinkStateUpdate(LinkStateUpdate { lsas }),
    );
    lan.sim.run_for(secs(2.0));
    for d in [lan.d1, lan.d2] {
        for (l, reason) in &bad {
            assert!(
                lan.sim
                    .inst(d)
                    .lsa(lan.sim.now, BACKBONE, l.header().key())
                    .is_none(),
                "stored {:?}",
                l.header()
            );
            assert!(lan.sim.drops(d, reason) >= 1, "{reason} not counted");
        }
        // The good LSA packed with them went in, and was acknowledged.
        assert!(lan
            .sim
            .inst(d)
            .lsa(lan.sim.now, BACKBONE, good.header().key())
            .is_some());
    }
    // Every reason, counted once per director per malformed LSA.
    let total: u64 = lan
        .sim
        .inst(lan.d1)
        .drop_counters()
        .iter()
        .filter(|(k, _)| k.starts_with("bad-lsa-"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total, bad.len() as u64);
    // R restarts: both directors describe their whole database to it again.
    let now = lan.sim.now;
    let _ = now;
    lan.sim.restart(
        lan.r,
        Config {
            router_id: ip(R),
            ..Config::default()
        },
        WALL_CLOCK + 100,
    );
    let r = lan.r;
    let now = lan.sim.now;
    lan.sim
        .inst_mut(r)
        .add_interface(now, lan_cfg("r0", 1, R_ADDR, 1));
    let (d1, d2) = (lan.d1, lan.d2);
    let took = lan
        .sim
        .run_until_cond(secs(60.0), |s| vip_everywhere(s, r, d1, d2));
    assert!(took.is_some(), "no convergence after R's restart");
    assert_nothing_bad_sent(&lan.sim, &[d1, d2]);
    assert_databases_valid(&lan.sim, &[r, d1, d2]);
}

/// The worst case for a forged newer copy of D1's Router-LSA: it reaches R
/// (from D2's identity) and R installs it and floods it on. D1 answers
/// with a higher sequence number once R's MinLSArrival has passed, so R
/// takes it at the first try: the VIP is back in R's database within 2 s.
#[test]
fn forged_newer_self_lsa_installed_by_the_router_is_superseded_within_2_s() {
    let mut lan = lan();
    let (r, d1, d2) = (lan.r, lan.d1, lan.d2);
    let real = router_seq(&lan.sim, r, D1);
    let forged = router_lsa_without_vip(D1, D1_ADDR, real + 1000);
    let bytes = packet(
        D2,
        PacketBody::LinkStateUpdate(LinkStateUpdate { lsas: vec![forged] }),
    );
    lan.sim.clear_log();
    let arrival_drops = lan.sim.drops(r, "min-ls-arrival");
    lan.sim.inject(r, 1, ip(D2_ADDR), ALL_D_ROUTERS, bytes);
    lan.sim.run_for(secs(0.01));
    assert!(!r_has_vip(&lan.sim, r, D1), "R took the forged copy");
    let took = lan
        .sim
        .run_until_cond(secs(10.0), |s| r_has_vip(s, r, D1))
        .expect("VIP back in R's database");
    assert!(took <= secs(2.0), "VIP back after {took:?}");
    assert_eq!(router_seq(&lan.sim, r, D1), real + 1001);
    // Taken at the first try: R dropped nothing under MinLSArrival.
    assert_eq!(lan.sim.drops(r, "min-ls-arrival"), arrival_drops);
    assert_eq!(anomalies(&lan.sim, d1, "self-lsa-newer"), 1);
    assert!(lan.sim.events.iter().any(|(_, n, e)| *n == d1
        && matches!(
            e,
            Event::SelfLsaReceived {
                kind: SelfLsaKind::Newer,
                solicited: false,
                ..
            }
        )));
    lan.sim.run_for(secs(5.0));
    assert!(vip_everywhere(&lan.sim, r, d1, d2));
    eprintln!("forged newer copy at R: VIP back in R's database after {took:?}");
}

/// A forged newer copy from R's identity reaches the directors only: R
/// keeps the real one throughout, D1 does not flood the forged copy on,
/// and D2's copy is the real one again within 2 s.
#[test]
fn forged_newer_self_lsa_from_the_dr_identity_goes_no_further() {
    let mut lan = lan();
    let (r, d1, d2) = (lan.r, lan.d1, lan.d2);
    let real = router_seq(&lan.sim, r, D1);
    lan.sim.probe = Some(Box::new(move |s: &Sim| {
        assert!(r_has_vip(s, r, D1), "R lost D1's VIP at {:?}", s.t());
    }));
    lan.sim.clear_log();
    from_r_to_directors(
        &mut lan,
        PacketBody::LinkStateUpdate(LinkStateUpdate {
            lsas: vec![router_lsa_without_vip(D1, D1_ADDR, real + 5)],
        }),
    );
    let took = lan
        .sim
        .run_until_cond(secs(10.0), |s| {
            s.router_lsa(d2, D1)
                .is_some_and(|(h, b)| h.seq > real + 5 && vip_link(&b, VIP).is_some())
        })
        .expect("D2 holds D1's real Router-LSA again");
    assert!(took <= secs(2.0), "{took:?}");
    // D1 never sent the forged instance.
    for s in lan.sim.log.iter().filter(|s| s.from == d1) {
        if let PacketBody::LinkStateUpdate(u) = &s.packet.body {
            assert!(u.lsas.iter().all(|l| l.header().seq != real + 5));
        }
    }
    lan.sim.probe = None;
}

/// A forged copy at MaxSequenceNumber: D1 flushes it (premature aging),
/// starts over at InitialSequenceNumber once the flush is acknowledged,
/// and keeps offering the new instance while the router refuses it (as FRR
/// does while it holds the MaxAge copy), until it takes it.
#[test]
fn forged_max_sequence_self_lsa_wraps_and_is_offered_until_taken() {
    let mut lan = lan();
    let (r, d1, d2) = (lan.r, lan.d1, lan.d2);
    let forged = router_lsa_without_vip(D1, D1_ADDR, MAX_SEQUENCE_NUMBER);
    let bytes = packet(
        D2,
        PacketBody::LinkStateUpdate(LinkStateUpdate { lsas: vec![forged] }),
    );
    lan.sim.clear_log();
    // R refuses D1's new instances for 30 s, as an FRR router holding the
    // MaxAge copy for its MaxAge removal delay would.
    let refuse_until = lan.sim.now + secs(30.0);
    let clock = std::rc::Rc::new(std::cell::Cell::new(lan.sim.now));
    let seen = clock.clone();
    lan.sim.drop = Some(Box::new(move |sent: &Sent, to: usize| {
        let PacketBody::LinkStateUpdate(u) = &sent.packet.body else {
            return false;
        };
        to == r
            && seen.get() < refuse_until
            && u.lsas.iter().any(|l| {
                l.header().key() == router_key(D1) && l.header().seq != MAX_SEQUENCE_NUMBER
            })
    }));
    lan.sim.probe = Some(Box::new(move |s: &Sim| clock.set(s.now)));
    lan.sim.inject(r, 1, ip(D2_ADDR), ALL_D_ROUTERS, bytes);
    lan.sim.run_for(secs(0.01));
    assert!(!r_has_vip(&lan.sim, r, D1), "R took the forged copy");
    let took = lan
        .sim
        .run_until_cond(secs(90.0), |s| {
            r_has_vip(s, r, D1) && router_seq(s, r, D1) < 0
        })
        .expect("VIP back in R's database");
    let seq = router_seq(&lan.sim, r, D1);
    assert_eq!(
        seq, INITIAL_SEQUENCE_NUMBER,
        "started over at InitialSequenceNumber"
    );
    assert!(
        took >= secs(30.0) && took <= secs(36.0),
        "taken after {took:?}"
    );
    // The flush went out at MaxSequenceNumber, MaxAge, about a second after
    // the forged copy reached D1.
    let flushed = lan.sim.log.iter().any(|s| {
        s.from == d1
            && matches!(&s.packet.body, PacketBody::LinkStateUpdate(u) if u.lsas.iter().any(|l| {
                l.header().key() == router_key(D1)
                    && l.header().seq == MAX_SEQUENCE_NUMBER
                    && l.header().age == MAX_AGE
            }))
    });
    assert!(flushed, "no flush at MaxSequenceNumber");
    // Offered again every RxmtInterval (5 s) while refused.
    let offers = lan
        .sim
        .log
        .iter()
        .filter(|s| {
            s.from == d1
                && matches!(&s.packet.body, PacketBody::LinkStateUpdate(u)
                    if u.lsas.iter().any(|l| l.header().key() == router_key(D1)
                        && l.header().seq == INITIAL_SEQUENCE_NUMBER))
        })
        .count();
    assert!(offers >= 5, "{offers} offers in {took:?}");
    assert_eq!(anomalies(&lan.sim, d1, "self-lsa-max-seq"), 1);
    lan.sim.drop = None;
    lan.sim.probe = None;
    lan.sim.run_for(secs(5.0));
    assert!(vip_everywhere(&lan.sim, r, d1, d2));
    assert_databases_valid(&lan.sim, &[r, d1, d2]);
}

/// LSAs carrying D1's router ID that D1 does not originate (a Network-LSA
/// for an address that is not its own, an AS-external-LSA) are flushed
/// from R within about a second.
#[test]
fn unoriginated_lsas_with_our_router_id_are_flushed() {
    let mut lan = lan();
    let (r, d1) = (lan.r, lan.d1);
    let net = raw_lsa(
        2,
        "198.18.0.77",
        D1,
        1,
        INITIAL_SEQUENCE_NUMBER + 3,
        &[255, 255, 255, 0, 10, 0, 0, 11, 10, 0, 0, 1],
    );
    let ext = external("10.8.0.0", D1);
    let keys: Vec<LsaKey> = [&net, &ext].iter().map(|l| l.header().key()).collect();
    let bytes = packet(
        D2,
        PacketBody::LinkStateUpdate(LinkStateUpdate {
            lsas: vec![net, ext],
        }),
    );
    lan.sim.inject(r, 1, ip(D2_ADDR), ALL_D_ROUTERS, bytes);
    lan.sim.run_for(secs(0.01));
    let at_r = |s: &Sim, k: &LsaKey| s.inst(r).lsa(s.now, BACKBONE, *k);
    assert!(
        keys.iter().all(|k| at_r(&lan.sim, k).is_some()),
        "R took them"
    );
    let took = lan
        .sim
        .run_until_cond(secs(10.0), |s| {
            keys.iter()
                .all(|k| at_r(s, k).is_none_or(|l| l.header().age >= MAX_AGE))
        })
        .expect("flushed from R");
    assert!(took <= secs(2.0), "{took:?}");
    assert_eq!(anomalies(&lan.sim, d1, "self-lsa-unoriginated"), 2);
    assert!(r_has_vip(&lan.sim, r, D1));
}

/// Database Description and LS Request abuse from R's identity resets the
/// directors' adjacencies (RFC 2328 10.6, 10.7), which re-form at once.
#[test]
fn dd_and_lsr_abuse_reset_adjacencies_that_re_form() {
    let mut lan = lan();
    let (r, d1, d2) = (lan.r, lan.d1, lan.d2);
    from_r_to_directors(
        &mut lan,
        PacketBody::DatabaseDescription(DatabaseDescription {
            interface_mtu: 1500,
            options: Options::E,
            flags: DdFlags::empty(),
            dd_sequence_number: 0xdead_beef,
            lsa_headers: Vec::new(),
        }),
    );
    lan.sim.run_for(secs(0.01));
    assert!(lan.sim.drops(d1, "dd-sequence") >= 1);
    let took = lan
        .sim
        .run_until_cond(secs(30.0), |s| vip_everywhere(s, r, d1, d2))
        .expect("re-formed");
    eprintln!("after DD abuse: everything back after {took:?}");
    let bogus = LsaKey {
        lsa_type: LsaType::AS_EXTERNAL,
        link_state_id: ip("10.99.0.0"),
        advertising_router: ip("198.18.200.99"),
    };
    from_r_to_directors(
        &mut lan,
        PacketBody::LinkStateRequest(LinkStateRequest {
            entries: vec![LsRequest::from(bogus)],
        }),
    );
    lan.sim.run_for(secs(0.01));
    assert!(lan.sim.drops(d1, "bad-ls-request") >= 1);
    let took = lan
        .sim
        .run_until_cond(secs(30.0), |s| vip_everywhere(s, r, d1, d2))
        .expect("re-formed");
    eprintln!("after LSR abuse: everything back after {took:?}");
}

/// A neighbour that stops answering in the middle of the exchange: after
/// four RxmtIntervals the adjacency is logged as stalled, with what we kept
/// retransmitting, and restarted; it forms once the neighbour answers.
#[test]
fn stalled_exchange_and_loading_are_restarted_with_a_reason() {
    let (mut sim, a, b) = p2p_pair(
        p2p_cfg("a0", 1, "198.18.1.0"),
        p2p_cfg("b0", 1, "198.18.1.1"),
    );
    // B (10.0.0.2, the master) never hears A's Database Descriptions for
    // 25 s: A waits in Exchange (or ExStart) for B's next packet.
    let until = sim.now + secs(25.0);
    let clock = std::rc::Rc::new(std::cell::Cell::new(sim.now));
    let seen = clock.clone();
    sim.drop = Some(Box::new(move |sent: &Sent, to: usize| {
        to == b
            && seen.get() < until
            && matches!(sent.packet.body, PacketBody::DatabaseDescription(_))
    }));
    sim.probe = Some(Box::new(move |s: &Sim| clock.set(s.now)));
    let took = sim
        .run_until_cond(secs(60.0), |s| {
            s.nbr_state(a, "10.0.0.2") == Some(NsmState::Full)
                && s.nbr_state(b, "10.0.0.1") == Some(NsmState::Full)
        })
        .expect("Full once B hears A");
    assert!(took >= secs(25.0), "{took:?}");
    let stalls: Vec<&Event> = sim
        .events
        .iter()
        .filter(|(_, n, _)| *n == a || *n == b)
        .map(|(_, _, e)| e)
        .filter(|e| matches!(e, Event::AdjacencyStalled { .. }))
        .collect();
    assert!(!stalls.is_empty(), "no stall reported");
    for e in &stalls {
        let Event::AdjacencyStalled { reason, state, .. } = e else {
            unreachable!()
        };
        assert!(
            matches!(state, NsmState::ExStart | NsmState::Exchange),
            "{state}"
        );
        assert!(reason.contains("last heard: "), "{reason}");
        eprintln!("stalled in {state}: {reason}");
    }
    let counted: u64 = [a, b]
        .iter()
        .map(|&n| anomalies(&sim, n, "adjacency-stalled"))
        .sum();
    assert_eq!(counted, stalls.len() as u64);
    sim.drop = None;
    sim.probe = None;

    // Now B stops answering Link State Requests: A stalls in Loading.
    let now = sim.now;
    sim.inst_mut(b).advertise_vip(now, BACKBONE, ip(VIP), 10);
    sim.run_for(secs(2.0));
    sim.clear_log();
    let b_addr = ip("198.18.1.1");
    let until = sim.now + secs(40.0);
    let clock = std::rc::Rc::new(std::cell::Cell::new(sim.now));
    let seen = clock.clone();
    sim.drop = Some(Box::new(move |sent: &Sent, to: usize| {
        to == a && seen.get() < until && matches!(sent.packet.body, PacketBody::LinkStateUpdate(_))
    }));
    sim.probe = Some(Box::new(move |s: &Sim| clock.set(s.now)));
    // A restarts its exchange with B (a DD out of sequence from B).
    let dd = packet(
        "10.0.0.2",
        PacketBody::DatabaseDescription(DatabaseDescription {
            interface_mtu: 1500,
            options: Options::E,
            flags: DdFlags::empty(),
            dd_sequence_number: 0x0bad_0bad,
            lsa_headers: Vec::new(),
        }),
    );
    sim.inject(a, 1, b_addr, ALL_SPF_ROUTERS, dd);
    let in_loading = sim.run_until_cond(secs(20.0), |s| {
        s.nbr_state(a, "10.0.0.2") == Some(NsmState::Loading)
    });
    assert!(in_loading.is_some(), "A never loads");
    sim.run_until_cond(secs(60.0), |s| {
        s.events.iter().any(|(_, n, e)| {
            *n == a
                && matches!(
                    e,
                    Event::AdjacencyStalled {
                        state: NsmState::Loading,
                        ..
                    }
                )
        })
    })
    .expect("a Loading stall");
    let reason = sim
        .events
        .iter()
        .find_map(|(_, n, e)| match e {
            Event::AdjacencyStalled {
                state: NsmState::Loading,
                reason,
                ..
            } if *n == a => Some(reason.clone()),
            _ => None,
        })
        .expect("reason");
    assert!(reason.contains("still requested"), "{reason}");
    eprintln!("stalled in Loading: {reason}");
    sim.run_until_cond(secs(80.0), |s| {
        s.nbr_state(a, "10.0.0.2") == Some(NsmState::Full)
            && s.router_lsa(a, "10.0.0.2")
                .is_some_and(|(_, r)| vip_link(&r, VIP).is_some())
    })
    .expect("Full and loaded once B answers");
}

/// A database beyond `max_lsa`: the LSAs over the limit are refused (and
/// acknowledged, so the neighbour stops sending them), the exchange
/// completes, the limit is reported once.
#[test]
fn max_lsa_bounds_the_database_and_the_adjacency_completes() {
    let peer_id = ip("9.9.9.9");
    let base = Instant::now();
    let limit = 100;
    let mut a = Instance::new(
        Config {
            router_id: ip("10.0.0.1"),
            max_lsa: limit,
            ..Config::default()
        },
        base,
        WALL_CLOCK,
    );
    a.add_interface(base, p2p_cfg("a0", 1, "198.18.1.0"));
    let n = 300;
    let lsas = (0..n)
        .map(|i| common::external(i, peer_id, ip("255.255.255.255"), INITIAL_SEQUENCE_NUMBER))
        .collect();
    let mut peer = common::SlavePeer::new(peer_id, BACKBONE, ip("198.18.1.1"), lsas);
    peer.hello(base, ip("10.0.0.1"));
    let mut now = base;
    loop {
        while let Some(t) = a.poll_transmit() {
            for update in peer.answer(now, &t.bytes, 1400) {
                peer.queue.push((now + common::LATENCY, update));
            }
        }
        if a.neighbors(now)
            .first()
            .is_some_and(|x| x.state == NsmState::Full)
        {
            break;
        }
        peer.step(&mut a, &mut now, base, secs(60.0));
    }
    assert!(a.lsa_count() <= limit, "{} LSAs", a.lsa_count());
    let refused = a.drop_counters().get("max-lsa").copied().unwrap_or(0);
    assert!(refused >= (n - limit) as u64, "{refused} refused");
    let reached: Vec<Event> = std::iter::from_fn(|| a.poll_event())
        .filter(|e| matches!(e, Event::MaxLsaReached { .. }))
        .collect();
    assert_eq!(reached, [Event::MaxLsaReached { limit }]);
}

/// Our Router-LSA is never lost to forged packets of any kind: the router
/// gets the VIP back every time, within the protocol's recovery.
#[test]
fn forged_max_age_flush_of_our_router_lsa_is_answered() {
    let mut lan = lan();
    let (r, d1) = (lan.r, lan.d1);
    let real = router_seq(&lan.sim, r, D1);
    let mut flush = router_lsa_without_vip(D1, D1_ADDR, real + 1)
        .as_bytes()
        .to_vec();
    flush[..2].copy_from_slice(&MAX_AGE.to_be_bytes());
    let flush = RawLsa::from_bytes(Bytes::from(flush)).expect("framed");
    let bytes = packet(
        D2,
        PacketBody::LinkStateUpdate(LinkStateUpdate { lsas: vec![flush] }),
    );
    lan.sim.inject(r, 1, ip(D2_ADDR), ALL_D_ROUTERS, bytes);
    lan.sim.run_for(secs(0.01));
    assert!(!r_has_vip(&lan.sim, r, D1));
    let took = lan
        .sim
        .run_until_cond(secs(10.0), |s| r_has_vip(s, r, D1))
        .expect("VIP back");
    assert!(took <= secs(2.0), "{took:?}");
    assert_eq!(anomalies(&lan.sim, d1, "self-lsa-max-age"), 1);
}

/// A forged acknowledgement of an instance the router never took (lost,
/// or dropped within its MinLSArrival) stops our retransmissions; the
/// periodic re-offer of our own LSAs (every 10 RxmtIntervals) still brings
/// the router the instance, instead of the refresh 30 minutes later.
#[test]
fn forged_ack_of_a_lost_instance_is_repaired_by_the_reoffer() {
    let mut lan = lan();
    let (r, d1) = (lan.r, lan.d1);
    // D1's updates to R are lost from now on, until told otherwise.
    let lose = std::rc::Rc::new(std::cell::Cell::new(true));
    let losing = lose.clone();
    lan.sim.drop = Some(Box::new(move |sent: &Sent, to: usize| {
        losing.get()
            && sent.from == d1
            && to == r
            && matches!(sent.packet.body, PacketBody::LinkStateUpdate(_))
    }));
    let now = lan.sim.now;
    lan.sim
        .inst_mut(d1)
        .advertise_vip(now, BACKBONE, ip("192.0.2.20"), 10);
    lan.sim.run_for(secs(0.5));
    let ours = lan
        .sim
        .inst(d1)
        .lsa(lan.sim.now, BACKBONE, router_key(D1))
        .expect("D1's Router-LSA");
    assert_ne!(router_seq(&lan.sim, r, D1), ours.header().seq, "R got it");
    // The forged acknowledgement, from R's identity, of exactly that
    // instance.
    let ack = packet(
        R,
        PacketBody::LinkStateAck(ospf::packet::LinkStateAck {
            lsa_headers: vec![*ours.header()],
        }),
    );
    lan.sim.inject(d1, 1, ip(R_ADDR), ALL_SPF_ROUTERS, ack);
    lan.sim.run_for(secs(0.01));
    assert!(
        lan.sim
            .inst(d1)
            .neighbors(lan.sim.now)
            .iter()
            .all(|n| n.retransmit_len == 0),
        "the forged acknowledgement stopped the retransmissions"
    );
    lose.set(false);
    let has_new = |s: &Sim| {
        s.router_lsa(r, D1)
            .is_some_and(|(_, b)| vip_link(&b, "192.0.2.20").is_some())
    };
    let took = lan
        .sim
        .run_until_cond(secs(120.0), has_new)
        .expect("R gets the instance");
    // Re-offered within 10 RxmtIntervals (50 s) of the last offer.
    assert!(took <= secs(51.0), "{took:?}");
    eprintln!("forged ack: the router has the instance {took:?} later");
}

/// An answer to our own Link State Request is taken even when the same
/// LSA came by flooding less than MinLSArrival earlier: a router that
/// re-originates while adjacencies re-form (FRR after a forged Database
/// Description) would otherwise hold us in Loading until we ask again, a
/// whole RxmtInterval later.
#[test]
fn requested_lsa_is_taken_within_min_ls_arrival_of_a_flooded_copy() {
    let peer_id = ip("9.9.9.9");
    let base = Instant::now();
    let mut a = Instance::new(
        Config {
            router_id: ip("10.0.0.1"),
            ..Config::default()
        },
        base,
        WALL_CLOCK,
    );
    a.add_interface(base, p2p_cfg("a0", 1, "198.18.1.0"));
    let mask = ip("255.255.255.255");
    let newer = common::external(0, peer_id, mask, INITIAL_SEQUENCE_NUMBER + 1);
    let older = common::external(0, peer_id, mask, INITIAL_SEQUENCE_NUMBER);
    let mut peer = common::SlavePeer::new(peer_id, BACKBONE, ip("198.18.1.1"), vec![newer]);
    peer.hello(base, ip("10.0.0.1"));
    let mut now = base;
    let mut flooded = false;
    let full_at = loop {
        while let Some(t) = a.poll_transmit() {
            let is_lsr = matches!(
                Packet::decode(&t.bytes).expect("decodes").body,
                PacketBody::LinkStateRequest(_)
            );
            if is_lsr && !flooded {
                // The older instance arrives by flooding just before the
                // answer to our request.
                flooded = true;
                let lsu = peer.packet(PacketBody::LinkStateUpdate(LinkStateUpdate {
                    lsas: vec![older.clone()],
                }));
                a.handle_packet(now, 1, ip("198.18.1.1"), ALL_SPF_ROUTERS, &lsu);
            }
            for update in peer.answer(now, &t.bytes, 1400) {
                peer.queue.push((now + common::LATENCY, update));
            }
        }
        if a.neighbors(now)
            .first()
            .is_some_and(|n| n.state == NsmState::Full)
        {
            break now - base;
        }
        peer.step(&mut a, &mut now, base, secs(30.0));
    };
    assert!(flooded, "no request was made");
    assert!(full_at < secs(1.0), "Full after {full_at:?}");
    assert_eq!(a.drop_counters().get("min-ls-arrival"), None);
    let stored = a.lsa(now, BACKBONE, older.header().key()).expect("stored");
    assert_eq!(stored.header().seq, INITIAL_SEQUENCE_NUMBER + 1);
}
