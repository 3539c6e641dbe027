//! Conformance tests: several `Instance`s on simulated LANs and
//! point-to-point links, driven by a virtual clock (`common::sim`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ospf::auth::{Algorithm, AuthConfig, Key, Window};
use ospf::instance::{
    Config, Event, IfaceId, Instance, InterfaceConfig, IsmState, NsmState, MAX_LINK_METRIC,
};
use ospf::lsa::{
    Lsa, LsaBody, LsaHeader, LsaKey, LsaType, Options, RouterLink, RouterLinkType,
    INITIAL_SEQUENCE_NUMBER, LS_REFRESH_TIME, MAX_SEQUENCE_NUMBER,
};
use ospf::packet::{
    LinkStateUpdate, Packet, PacketBody, ALL_D_ROUTERS, ALL_SPF_ROUTERS, AUTYPE_CRYPTOGRAPHIC,
    AUTYPE_NULL,
};

mod common;
use common::sim::*;

// ---- adjacencies -----------------------------------------------------------

#[test]
fn lan_election_router_is_dr_directors_are_drothers() {
    let mut sim = Sim::new();
    let r = sim.node("10.0.0.1");
    let d1 = sim.node("10.0.0.11");
    let d2 = sim.node("10.0.0.12");
    sim.attach(r, 0, lan_cfg("r0", 1, "198.18.0.1", 1));
    sim.attach(d1, 0, lan_cfg("d0", 1, "198.18.0.11", 0));
    sim.attach(d2, 0, lan_cfg("d0", 1, "198.18.0.12", 0));
    sim.run_for(secs(60.0));

    let ri = sim.iface(r);
    assert_eq!(ri.state, IsmState::DR);
    assert_eq!((ri.dr, ri.bdr), (ip("198.18.0.1"), Ipv4Addr::UNSPECIFIED));
    assert_eq!(ri.adjacencies, 2);
    for d in [d1, d2] {
        let di = sim.iface(d);
        assert_eq!(di.state, IsmState::DROther);
        assert_eq!(di.dr, ip("198.18.0.1"));
        assert_eq!(di.bdr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(sim.nbr_state(d, "10.0.0.1"), Some(NsmState::Full));
    }
    assert_eq!(sim.nbr_state(r, "10.0.0.11"), Some(NsmState::Full));
    assert_eq!(sim.nbr_state(r, "10.0.0.12"), Some(NsmState::Full));
    // DROthers stay 2-Way with each other (RFC 2328 10.4).
    assert_eq!(sim.nbr_state(d1, "10.0.0.12"), Some(NsmState::TwoWay));
    assert_eq!(sim.nbr_state(d2, "10.0.0.11"), Some(NsmState::TwoWay));

    // The DR's Network-LSA lists everyone attached.
    let net = sim
        .inst(d1)
        .lsa(
            sim.now,
            BACKBONE,
            LsaKey {
                lsa_type: LsaType::NETWORK,
                link_state_id: ip("198.18.0.1"),
                advertising_router: ip("10.0.0.1"),
            },
        )
        .expect("network-LSA flooded to the directors")
        .decode()
        .unwrap();
    let LsaBody::Network(n) = net.body else {
        panic!("not a network-LSA")
    };
    assert_eq!(n.network_mask, ip("255.255.255.0"));
    assert_eq!(
        n.attached_routers,
        vec![ip("10.0.0.1"), ip("10.0.0.11"), ip("10.0.0.12")]
    );
    // Directors' Router-LSAs have a transit link to the DR.
    let (_, rl) = sim
        .router_lsa(r, "10.0.0.11")
        .expect("director's router-LSA");
    assert!(has_link(
        &rl,
        &RouterLink {
            link_id: ip("198.18.0.1"),
            link_data: ip("198.18.0.11"),
            link_type: RouterLinkType::Transit,
            metric: 10,
            tos: vec![],
        }
    ));
    // All databases agree.
    let db = |n: usize| -> BTreeSet<(LsaKey, i32)> {
        sim.inst(n)
            .database(sim.now)
            .into_iter()
            .map(|(_, h)| (h.key(), h.seq))
            .collect()
    };
    assert_eq!(db(r), db(d1));
    assert_eq!(db(r), db(d2));
    assert_eq!(db(r).len(), 4, "3 router-LSAs and 1 network-LSA");
    // A DROther never sends to AllDRouters what is not an update or ack,
    // and sends its updates there.
    for s in sim
        .log
        .iter()
        .filter(|s| s.from == d1 && s.dst == ALL_D_ROUTERS)
    {
        assert!(matches!(
            s.packet.body,
            PacketBody::LinkStateUpdate(_) | PacketBody::LinkStateAck(_)
        ));
    }
    assert!(sim.log.iter().any(|s| s.from == d1
        && s.dst == ALL_D_ROUTERS
        && matches!(s.packet.body, PacketBody::LinkStateUpdate(_))));
    // Events report the states, in order.
    let last_d1_iface = sim
        .events
        .iter()
        .filter_map(|(_, n, e)| match e {
            Event::InterfaceState { to, .. } if *n == d1 => Some(*to),
            _ => None,
        })
        .next_back();
    assert_eq!(last_d1_iface, Some(IsmState::DROther));
}

#[test]
fn backup_is_elected_and_sees_the_dr() {
    let mut sim = Sim::new();
    let r1 = sim.node("10.0.0.1");
    let r2 = sim.node("10.0.0.2");
    let d = sim.node("10.0.0.11");
    sim.attach(r1, 0, lan_cfg("r0", 1, "198.18.0.1", 1));
    sim.attach(r2, 0, lan_cfg("r0", 1, "198.18.0.2", 1));
    sim.attach(d, 0, lan_cfg("d0", 1, "198.18.0.11", 0));
    sim.run_for(secs(90.0));
    // Equal priority: the higher router ID becomes DR.
    assert_eq!(sim.iface(r2).state, IsmState::DR);
    assert_eq!(sim.iface(r1).state, IsmState::Backup);
    let di = sim.iface(d);
    assert_eq!((di.dr, di.bdr), (ip("198.18.0.2"), ip("198.18.0.1")));
    assert_eq!(sim.nbr_state(d, "10.0.0.1"), Some(NsmState::Full));
    assert_eq!(sim.nbr_state(d, "10.0.0.2"), Some(NsmState::Full));
    assert_eq!(sim.nbr_state(r1, "10.0.0.2"), Some(NsmState::Full));
}

#[test]
fn p2p_database_exchange_reaches_full_and_databases_match() {
    let (mut sim, a, b) = default_p2p();
    sim.run_for(secs(10.0));
    let ia = sim.iface(a);
    assert_eq!(ia.state, IsmState::PointToPoint);
    let (_, ra) = sim.router_lsa(b, "10.0.0.1").unwrap();
    // 12.4.1.1: a point-to-point link to B and a stub for the /31.
    assert!(has_link(
        &ra,
        &RouterLink {
            link_id: ip("10.0.0.2"),
            link_data: ip("198.18.1.0"),
            link_type: RouterLinkType::PointToPoint,
            metric: 10,
            tos: vec![],
        }
    ));
    assert!(has_link(&ra, &stub("198.18.1.0", "255.255.255.254", 10)));
    assert_eq!(ra.links.len(), 2);
    let keys = |n: usize| -> Vec<(LsaKey, i32, u16)> {
        sim.inst(n)
            .database(sim.now)
            .into_iter()
            .map(|(_, h)| (h.key(), h.seq, h.checksum))
            .collect()
    };
    assert_eq!(keys(a), keys(b));
    assert_eq!(keys(a).len(), 2);
    // Hellos on p2p carry mask 0 and go to AllSPFRouters, like all else.
    for s in sim.log.iter() {
        assert_eq!(s.dst, ALL_SPF_ROUTERS);
        if let PacketBody::Hello(h) = &s.packet.body {
            assert_eq!(h.network_mask, Ipv4Addr::UNSPECIFIED);
            assert!(h.options.contains(Options::E));
        }
    }
    // Retransmission lists are drained by acknowledgements.
    for n in [a, b] {
        for x in sim.inst(n).neighbors(sim.now) {
            assert_eq!((x.retransmit_len, x.request_len, x.summary_len), (0, 0, 0));
        }
    }
}

// ---- VIPs --------------------------------------------------------------------

#[test]
fn vip_advertise_cost_change_and_withdraw() {
    let (mut sim, a, b) = default_p2p();
    let now = sim.now;
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.11"), 1);
    sim.run_for(secs(3.0));
    let (_, r) = sim.router_lsa(b, "10.0.0.1").unwrap();
    assert_eq!(vip_link(&r, "192.0.2.10"), Some(1));
    assert_eq!(vip_link(&r, "192.0.2.11"), Some(1));

    // Drain: the same VIP with a higher cost.
    let now = sim.now;
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1000);
    sim.run_for(secs(3.0));
    let (_, r) = sim.router_lsa(b, "10.0.0.1").unwrap();
    assert_eq!(vip_link(&r, "192.0.2.10"), Some(1000));
    assert_eq!(vip_link(&r, "192.0.2.11"), Some(1));

    let now = sim.now;
    sim.inst_mut(a).withdraw_vip(now, ip("192.0.2.10"));
    sim.run_for(secs(3.0));
    let (h, r) = sim.router_lsa(b, "10.0.0.1").unwrap();
    assert_eq!(vip_link(&r, "192.0.2.10"), None);
    assert_eq!(vip_link(&r, "192.0.2.11"), Some(1));
    // Each change was a new instance, and they left >= 1 s apart.
    let sent = sim.router_lsa_instances_sent(a, "10.0.0.1");
    assert_eq!(sent.last().map(|x| x.1), Some(h.seq));
    for w in sent.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= secs(1.0),
            "instances too close: {sent:?}"
        );
    }
}

#[test]
fn rapid_vip_changes_are_paced_and_the_last_state_wins() {
    let (mut sim, a, b) = default_p2p();
    // Ten changes within 100 ms.
    for i in 0..10u16 {
        let now = sim.now;
        sim.inst_mut(a)
            .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 100 + i);
        sim.run_for(secs(0.01));
    }
    let now = sim.now;
    sim.inst_mut(a).withdraw_vip(now, ip("192.0.2.10"));
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.20"), 5);
    sim.run_for(secs(5.0));
    let (_, r) = sim.router_lsa(b, "10.0.0.1").unwrap();
    assert_eq!(vip_link(&r, "192.0.2.10"), None);
    assert_eq!(vip_link(&r, "192.0.2.20"), Some(5));
    let sent = sim.router_lsa_instances_sent(a, "10.0.0.1");
    for w in sent.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= secs(1.0),
            "instances too close: {sent:?}"
        );
    }
    assert_eq!(sim.drops(b, "min-ls-arrival"), 0);
}

#[test]
fn stub_router_raises_transit_metrics_but_not_vip_costs() {
    let (mut sim, a, b) = default_p2p();
    let now = sim.now;
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 7);
    sim.inst_mut(a).set_stub_router(now, true);
    sim.run_for(secs(3.0));
    let (_, r) = sim.router_lsa(b, "10.0.0.1").unwrap();
    let p2p = r
        .links
        .iter()
        .find(|l| l.link_type == RouterLinkType::PointToPoint)
        .unwrap();
    assert_eq!(p2p.metric, MAX_LINK_METRIC);
    assert!(has_link(&r, &stub("198.18.1.0", "255.255.255.254", 10)));
    assert_eq!(vip_link(&r, "192.0.2.10"), Some(7));

    let now = sim.now;
    sim.inst_mut(a).set_stub_router(now, false);
    sim.run_for(secs(3.0));
    let (_, r) = sim.router_lsa(b, "10.0.0.1").unwrap();
    let p2p = r
        .links
        .iter()
        .find(|l| l.link_type == RouterLinkType::PointToPoint)
        .unwrap();
    assert_eq!(p2p.metric, 10);
}

#[test]
fn stub_router_on_startup_ends_by_itself() {
    let mut sim = Sim::new();
    let a = sim.node_with(Config {
        router_id: ip("10.0.0.1"),
        stub_router_on_startup: Some(secs(60.0)),
        ..Config::default()
    });
    let r = sim.node("10.0.0.2");
    sim.attach(a, 0, lan_cfg("a0", 1, "198.18.0.11", 0));
    sim.attach(r, 0, lan_cfg("r0", 1, "198.18.0.1", 1));
    let now = sim.now;
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 3);
    // The router waits RouterDeadInterval (40 s) before it becomes DR.
    sim.run_for(secs(50.0));
    assert!(sim.inst(a).is_stub_router(sim.now));
    let (_, l) = sim.router_lsa(r, "10.0.0.1").expect("originated");
    let transit = l
        .links
        .iter()
        .find(|l| l.link_type == RouterLinkType::Transit)
        .expect("transit link");
    assert_eq!(transit.metric, MAX_LINK_METRIC);
    assert_eq!(vip_link(&l, "192.0.2.10"), Some(3));
    sim.run_for(secs(12.0));
    assert!(!sim.inst(a).is_stub_router(sim.now));
    let (_, l) = sim.router_lsa(r, "10.0.0.1").unwrap();
    let transit = l
        .links
        .iter()
        .find(|l| l.link_type == RouterLinkType::Transit)
        .unwrap();
    assert_eq!(transit.metric, 10);
}

// ---- flooding ------------------------------------------------------------------

#[test]
fn flooding_through_the_dr_reaches_other_drothers_with_acks() {
    let mut sim = Sim::new();
    let r = sim.node("10.0.0.1");
    let d1 = sim.node("10.0.0.11");
    let d2 = sim.node("10.0.0.12");
    sim.attach(r, 0, lan_cfg("r0", 1, "198.18.0.1", 1));
    sim.attach(d1, 0, lan_cfg("d0", 1, "198.18.0.11", 0));
    sim.attach(d2, 0, lan_cfg("d0", 1, "198.18.0.12", 0));
    sim.run_for(secs(60.0));
    let now = sim.now;
    let mark = sim.t();
    sim.inst_mut(d1)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    let took = sim.run_until_cond(secs(10.0), |s| {
        s.router_lsa(d2, "10.0.0.11")
            .is_some_and(|(_, l)| vip_link(&l, "192.0.2.10") == Some(1))
    });
    assert!(
        took.unwrap() < secs(0.1),
        "flooded via the DR at once: {took:?}"
    );
    sim.run_for(secs(3.0));
    for n in [r, d1, d2] {
        for x in sim.inst(n).neighbors(sim.now) {
            assert_eq!(x.retransmit_len, 0, "node {n} neighbour {:?}", x.router_id);
        }
    }
    // D1 sent its update once (to AllDRouters), no retransmission.
    let updates_from_d1 = sim
        .log
        .iter()
        .filter(|s| s.from == d1 && s.at >= mark)
        .filter(|s| matches!(s.packet.body, PacketBody::LinkStateUpdate(_)))
        .count();
    assert_eq!(updates_from_d1, 1);
}

#[test]
fn dropped_update_is_retransmitted_after_rxmt_interval() {
    let (mut sim, a, b) = default_p2p();
    sim.run_for(secs(5.0));
    let dropped = std::rc::Rc::new(std::cell::Cell::new(0));
    let d2 = dropped.clone();
    sim.drop = Some(Box::new(move |s, _to| {
        if s.from == 0 && matches!(s.packet.body, PacketBody::LinkStateUpdate(_)) && d2.get() == 0 {
            d2.set(1);
            return true;
        }
        false
    }));
    let now = sim.now;
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    sim.run_for(secs(4.5));
    assert_eq!(dropped.get(), 1);
    assert!(sim
        .router_lsa(b, "10.0.0.1")
        .is_some_and(|(_, l)| vip_link(&l, "192.0.2.10").is_none()));
    let rx = sim.inst(a).neighbors(sim.now)[0].retransmit_len;
    assert_eq!(rx, 1, "the unacknowledged LSA waits on the list");
    let took = sim.run_until_cond(secs(5.0), |s| {
        s.router_lsa(b, "10.0.0.1")
            .is_some_and(|(_, l)| vip_link(&l, "192.0.2.10").is_some())
    });
    // RxmtInterval is 5 s: delivered at 5 s after the change.
    let total = secs(4.5) + took.expect("retransmitted");
    assert!(total >= secs(5.0) && total < secs(5.1), "{total:?}");
    sim.run_for(secs(2.0));
    assert_eq!(sim.inst(a).neighbors(sim.now)[0].retransmit_len, 0);
}

// ---- flushing, restart, aging -------------------------------------------------

#[test]
fn shutdown_flushes_our_lsas_from_the_peer() {
    let (mut sim, a, b) = default_p2p();
    let now = sim.now;
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    sim.run_for(secs(10.0));
    assert!(sim.router_lsa(b, "10.0.0.1").is_some());
    let now = sim.now;
    sim.inst_mut(a).shutdown(now);
    let took = sim.run_until_cond(secs(5.0), |s| s.inst(a).is_shut_down());
    assert!(took.unwrap() <= secs(2.0), "{took:?}");
    sim.run_for(secs(1.0));
    // The flush reached B: our Router-LSA is gone from its database.
    assert!(sim.router_lsa(b, "10.0.0.1").is_none());
    let flushed = sim.log.iter().any(|s| {
        s.from == a
            && matches!(&s.packet.body, PacketBody::LinkStateUpdate(u)
                if u.lsas.iter().any(|l| l.header().key() == router_key("10.0.0.1") && l.header().is_max_age()))
    });
    assert!(flushed);
    // Origination and flush were both reported to the application.
    let reported = |want_flushed: bool| {
        sim.events.iter().any(|(_, n, e)| {
            *n == a
                && matches!(e, Event::Originated { key, flushed, .. }
                    if *key == router_key("10.0.0.1") && *flushed == want_flushed)
        })
    };
    assert!(reported(false) && reported(true));
    // The final empty Hello took B's neighbour down to Init at once.
    assert!(matches!(sim.nbr_state(b, "10.0.0.1"), Some(NsmState::Init)));
    assert_eq!(sim.iface(a).state, IsmState::Down);
    assert_eq!(sim.inst(a).poll_timeout(), None);
}

#[test]
fn hellos_keep_listing_neighbours_until_the_last_one_of_a_shutdown() {
    // Hello every second and a peer whose acknowledgements are lost: the
    // shutdown runs to its deadline, with several periodic Hellos on the
    // way. Only the very last may list nobody; an earlier empty one would
    // make the peer drop the adjacency (1-WayReceived) before the flush
    // reaches it.
    let fast = |c: InterfaceConfig| InterfaceConfig {
        hello_interval: 1,
        dead_interval: 4,
        ..c
    };
    let (mut sim, a, b) = p2p_pair(
        fast(p2p_cfg("a0", 1, "198.18.1.0")),
        fast(p2p_cfg("b0", 1, "198.18.1.1")),
    );
    let full = sim.run_until_cond(secs(30.0), |s| {
        s.nbr_state(a, "10.0.0.2") == Some(NsmState::Full)
            && s.nbr_state(b, "10.0.0.1") == Some(NsmState::Full)
    });
    assert!(full.is_some(), "p2p adjacency did not form");
    sim.run_for(secs(5.0));
    sim.drop = Some(Box::new(move |s, _to| {
        s.from == b && matches!(s.packet.body, PacketBody::LinkStateAck(_))
    }));
    let mark = sim.log.len();
    let now = sim.now;
    sim.inst_mut(a).shutdown(now);
    let took = sim.run_until_cond(secs(10.0), |s| s.inst(a).is_shut_down());
    assert!(took.is_some_and(|t| t >= secs(2.0)), "{took:?}");
    let hellos: Vec<usize> = sim.log[mark..]
        .iter()
        .filter(|s| s.from == a)
        .filter_map(|s| match &s.packet.body {
            PacketBody::Hello(h) => Some(h.neighbors.len()),
            _ => None,
        })
        .collect();
    assert!(
        hellos.len() >= 3,
        "periodic Hellos during the shutdown: {hellos:?}"
    );
    let (last, before) = hellos.split_last().expect("hellos");
    assert_eq!(*last, 0, "the last Hello lists nobody");
    assert!(before.iter().all(|&n| n == 1), "{hellos:?}");
}

#[test]
fn restart_with_stale_self_lsa_converges_in_one_step() {
    let mut sim = Sim::new();
    let r = sim.node("10.0.0.1");
    let d = sim.node("10.0.0.11");
    sim.attach(r, 0, lan_cfg("r0", 1, "198.18.0.1", 1));
    sim.attach(d, 0, lan_cfg("d0", 1, "198.18.0.11", 0));
    let now = sim.now;
    sim.inst_mut(d)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    sim.run_for(secs(60.0));
    // A few changes push the sequence number up.
    for cost in [2, 3, 4] {
        let now = sim.now;
        sim.inst_mut(d)
            .advertise_vip(now, BACKBONE, ip("192.0.2.10"), cost);
        sim.run_for(secs(2.0));
    }
    let (old, _) = sim.router_lsa(r, "10.0.0.11").unwrap();
    assert!(old.seq >= INITIAL_SEQUENCE_NUMBER + 3);

    // Crash; a new instance with the same router ID starts 2 s later with
    // another VIP.
    sim.crash(d);
    sim.run_for(secs(2.0));
    let log_mark = sim.log.len();
    sim.restart(
        d,
        Config {
            router_id: ip("10.0.0.11"),
            ..Config::default()
        },
        WALL_CLOCK + 100,
    );
    let now = sim.now;
    sim.inst_mut(d)
        .advertise_vip(now, BACKBONE, ip("192.0.2.20"), 1);
    let cfg = lan_cfg("d0", 1, "198.18.0.11", 0);
    sim.inst_mut(d).add_interface(now, cfg);
    // Sample the router's copy over time.
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<i32>::new()));
    let seen2 = seen.clone();
    sim.probe = Some(Box::new(move |s: &Sim| {
        if let Some((h, _)) = s.router_lsa(r, "10.0.0.11") {
            let mut v = seen2.borrow_mut();
            if v.last() != Some(&h.seq) {
                v.push(h.seq);
            }
        }
    }));
    // The director asks for its stale copy in the exchange; the answer
    // completes the exchange at once (no wait for a request to be resent)
    // and the router takes the new instance about 2 s after the restart
    // (a Hello, the exchange, the life gate); 7 s when the answer was lost.
    let took = sim
        .run_until_cond(secs(30.0), |s| {
            s.router_lsa(r, "10.0.0.11")
                .is_some_and(|(h, _)| h.seq == old.seq + 1)
        })
        .expect("the new instance reaches the router");
    assert!(took <= secs(3.0), "the new instance took {took:?}");
    sim.run_for(secs(30.0));
    let (new, l) = sim.router_lsa(r, "10.0.0.11").unwrap();
    assert_eq!(new.seq, old.seq + 1);
    assert_eq!(vip_link(&l, "192.0.2.20"), Some(1));
    assert_eq!(vip_link(&l, "192.0.2.10"), None);
    assert!(l
        .links
        .iter()
        .any(|l| l.link_type == RouterLinkType::Transit));
    // One step: the router went from the stale instance to the new one
    // directly, and the restarted director originated a single instance.
    assert_eq!(*seen.borrow(), vec![old.seq, old.seq + 1]);
    let sent: BTreeSet<i32> = sim.log[log_mark..]
        .iter()
        .filter(|s| s.from == d)
        .filter_map(|s| match &s.packet.body {
            PacketBody::LinkStateUpdate(u) => Some(u.lsas.clone()),
            _ => None,
        })
        .flatten()
        .filter(|l| l.header().key() == router_key("10.0.0.11"))
        .map(|l| l.header().seq)
        .collect();
    assert_eq!(sent, BTreeSet::from([old.seq + 1]));
    assert_eq!(sim.drops(r, "min-ls-arrival"), 0);
}

#[test]
fn refresh_after_ls_refresh_time_bumps_the_sequence_number() {
    let (mut sim, a, b) = default_p2p();
    let (h0, l0) = sim.router_lsa(b, "10.0.0.1").unwrap();
    sim.run_for(Duration::from_secs(u64::from(LS_REFRESH_TIME) - 60));
    assert_eq!(sim.router_lsa(b, "10.0.0.1").unwrap().0.seq, h0.seq);
    sim.run_for(secs(120.0));
    let (h1, l1) = sim.router_lsa(b, "10.0.0.1").unwrap();
    assert_eq!(h1.seq, h0.seq + 1);
    assert!(h1.age < 120, "fresh instance, age {}", h1.age);
    assert_eq!(l1, l0, "same contents");
    assert_eq!(sim.router_lsa(a, "10.0.0.2").unwrap().0.seq, h0.seq + 1);
}

#[test]
fn dead_peer_lsa_ages_out_and_is_removed() {
    let (mut sim, a, b) = default_p2p();
    let (h, _) = sim.router_lsa(a, "10.0.0.2").unwrap();
    let born = sim.now - Duration::from_secs(u64::from(h.age));
    sim.crash(b);
    sim.run_for(secs(60.0));
    assert_eq!(sim.nbr_state(a, "10.0.0.2"), None, "inactivity timer");
    // Still there (aging) well before MaxAge.
    let until = born + Duration::from_secs(3500);
    sim.run_until(until);
    let (h, _) = sim.router_lsa(a, "10.0.0.2").expect("still aging");
    assert!(h.age >= 3499 && h.age < 3600, "age {}", h.age);
    sim.run_until(born + Duration::from_secs(3601));
    assert!(sim.router_lsa(a, "10.0.0.2").is_none(), "removed at MaxAge");
    // A's own LSA lost the p2p link.
    let (_, ra) = sim.router_lsa(a, "10.0.0.1").unwrap();
    assert!(!ra
        .links
        .iter()
        .any(|l| l.link_type == RouterLinkType::PointToPoint));
}

#[test]
fn sequence_number_wrap_flushes_then_restarts_at_initial() {
    let (mut sim, a, b) = default_p2p();
    sim.run_for(secs(5.0));
    // B "holds" A's Router-LSA at MaxSequenceNumber: inject it into A as if
    // B flooded it.
    let (h, body) = sim.router_lsa(b, "10.0.0.1").unwrap();
    let lsa = Lsa {
        header: LsaHeader {
            seq: MAX_SEQUENCE_NUMBER,
            age: 10,
            ..h
        },
        body: LsaBody::Router(body),
    };
    let packet = Packet {
        router_id: ip("10.0.0.2"),
        area_id: BACKBONE,
        autype: AUTYPE_NULL,
        auth_data: [0; 8],
        body: PacketBody::LinkStateUpdate(LinkStateUpdate {
            lsas: vec![lsa.to_raw().unwrap()],
        }),
    };
    let bytes = packet.encode().unwrap();
    let now = sim.now;
    sim.inst_mut(a)
        .handle_packet(now, 1, ip("198.18.1.1"), ALL_SPF_ROUTERS, &bytes);
    sim.run_for(secs(10.0));
    let (ha, _) = sim.router_lsa(a, "10.0.0.1").unwrap();
    let (hb, _) = sim.router_lsa(b, "10.0.0.1").unwrap();
    assert_eq!(ha.seq, INITIAL_SEQUENCE_NUMBER);
    assert_eq!(hb.seq, INITIAL_SEQUENCE_NUMBER);
    // The MaxSequenceNumber instance was flushed on the way.
    assert!(sim.log.iter().any(|s| s.from == a
        && matches!(&s.packet.body, PacketBody::LinkStateUpdate(u)
            if u.lsas.iter().any(|l| l.header().seq == MAX_SEQUENCE_NUMBER && l.header().is_max_age()))));
}

// ---- mismatches and authentication ----------------------------------------------

#[test]
fn mtu_mismatch_blocks_the_exchange_and_mtu_ignore_fixes_it() {
    let small = p2p_cfg("a0", 1, "198.18.1.0");
    let big = InterfaceConfig {
        mtu: 9000,
        ..p2p_cfg("b0", 1, "198.18.1.1")
    };
    let (mut sim, a, b) = p2p_pair(small.clone(), big.clone());
    sim.run_for(secs(60.0));
    let sa = sim.nbr_state(a, "10.0.0.2").unwrap();
    let sb = sim.nbr_state(b, "10.0.0.1").unwrap();
    assert!(matches!(sa, NsmState::ExStart | NsmState::Exchange), "{sa}");
    assert!(matches!(sb, NsmState::ExStart | NsmState::Exchange), "{sb}");
    assert!(sim.drops(a, "mtu-mismatch") > 0);
    assert_eq!(sim.drops(b, "mtu-mismatch"), 0);

    let (mut sim, a, b) = p2p_pair(
        InterfaceConfig {
            mtu_ignore: true,
            ..small
        },
        big,
    );
    sim.run_for(secs(30.0));
    assert_eq!(sim.nbr_state(a, "10.0.0.2"), Some(NsmState::Full));
    assert_eq!(sim.nbr_state(b, "10.0.0.1"), Some(NsmState::Full));
    assert_eq!(sim.drops(a, "mtu-mismatch"), 0);
}

fn md5(secret: &str) -> AuthConfig {
    AuthConfig::cryptographic(vec![Key::new(1, Algorithm::KeyedMd5, secret)], false).unwrap()
}

#[test]
fn wrong_auth_key_prevents_adjacency_and_is_counted() {
    let (mut sim, a, b) = p2p_pair(
        InterfaceConfig {
            auth: md5("secret-a"),
            ..p2p_cfg("a0", 1, "198.18.1.0")
        },
        InterfaceConfig {
            auth: md5("secret-b"),
            ..p2p_cfg("b0", 1, "198.18.1.1")
        },
    );
    sim.run_for(secs(60.0));
    assert!(sim.inst(a).neighbors(sim.now).is_empty());
    assert!(sim.inst(b).neighbors(sim.now).is_empty());
    assert!(sim.drops(a, "digest-mismatch") >= 5);
    assert!(sim.drops(b, "digest-mismatch") >= 5);

    // Null on one side: AuType mismatch.
    let (mut sim, a, _b) = p2p_pair(
        InterfaceConfig {
            auth: md5("secret-a"),
            ..p2p_cfg("a0", 1, "198.18.1.0")
        },
        p2p_cfg("b0", 1, "198.18.1.1"),
    );
    sim.run_for(secs(30.0));
    assert!(sim.drops(a, "autype-mismatch") > 0);
    assert!(sim.inst(a).neighbors(sim.now).is_empty());
}

#[test]
fn matching_cryptographic_auth_forms_adjacency_with_increasing_sequence() {
    let hmac = AuthConfig::cryptographic(vec![Key::new(7, Algorithm::HmacSha256, "s3cret")], true)
        .unwrap();
    let (mut sim, a, b) = p2p_pair(
        InterfaceConfig {
            auth: hmac.clone(),
            ..p2p_cfg("a0", 1, "198.18.1.0")
        },
        InterfaceConfig {
            auth: hmac,
            ..p2p_cfg("b0", 1, "198.18.1.1")
        },
    );
    sim.run_for(secs(30.0));
    assert_eq!(sim.nbr_state(a, "10.0.0.2"), Some(NsmState::Full));
    assert_eq!(sim.nbr_state(b, "10.0.0.1"), Some(NsmState::Full));
    // Strictly increasing sequence numbers per sender (strict mode on).
    let seqs: Vec<u32> = sim
        .log
        .iter()
        .filter(|s| s.from == a)
        .map(|s| {
            assert_eq!(s.packet.autype, AUTYPE_CRYPTOGRAPHIC);
            s.packet.cryptographic_auth().unwrap().sequence_number
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(seqs[0] >= WALL_CLOCK);
    assert_eq!(sim.drops(a, "seq-replayed"), 0);
}

/// Key IDs node `n` signed with, each with the first and last time seen.
fn key_ids_sent(sim: &Sim, n: usize) -> Vec<(u8, Duration, Duration)> {
    let mut ids: Vec<(u8, Duration, Duration)> = Vec::new();
    for s in sim.log.iter().filter(|s| s.from == n) {
        let id = s.packet.cryptographic_auth().expect("cryptographic").key_id;
        match ids.iter_mut().find(|(k, ..)| *k == id) {
            Some((_, _, last)) => *last = s.at,
            None => ids.push((id, s.at, s.at)),
        }
    }
    ids
}

#[test]
fn key_rollover_by_windows_and_set_interface_auth_keeps_the_adjacency() {
    let (mut sim, a, b) = p2p_pair(
        InterfaceConfig {
            auth: md5("key-one"),
            ..p2p_cfg("a0", 1, "198.18.1.0")
        },
        InterfaceConfig {
            auth: md5("key-one"),
            ..p2p_cfg("b0", 1, "198.18.1.1")
        },
    );
    let full = |s: &Sim| {
        s.nbr_state(a, "10.0.0.2") == Some(NsmState::Full)
            && s.nbr_state(b, "10.0.0.1") == Some(NsmState::Full)
    };
    assert!(sim.run_until_cond(secs(30.0), full).is_some());
    let events_before = sim.events.len();
    // Both instances started at the simulation's base with WALL_CLOCK, so
    // the wall clock reads WALL_CLOCK + whole seconds since then.
    let wall = |t: Duration| u64::from(WALL_CLOCK) + t.as_secs();
    let switch_a = wall(sim.t()) + 5;
    let switch_b = switch_a + 2;
    let retire = switch_b + 3;
    // Each side sends key 2 from its own second on and accepts key 1 until
    // `retire`; key 2 is accepted at once.
    let rollover = |switch: u64| {
        AuthConfig::cryptographic(
            vec![
                Key::new(1, Algorithm::KeyedMd5, "key-one")
                    .with_send_window(Window::new(None, Some(switch)))
                    .with_accept_window(Window::new(None, Some(retire))),
                Key::new(2, Algorithm::HmacSha256, "key-two")
                    .with_send_window(Window::new(Some(switch), None)),
            ],
            false,
        )
        .unwrap()
    };
    assert!(sim
        .inst_mut(a)
        .set_interface_auth(IfaceId(0), rollover(switch_a)));
    assert!(sim
        .inst_mut(b)
        .set_interface_auth(IfaceId(0), rollover(switch_b)));
    assert!(!sim
        .inst_mut(b)
        .set_interface_auth(IfaceId(7), AuthConfig::Null));
    let changed_at = sim.t();
    sim.run_for(secs(15.0));
    // Key 1 removed on both sides: the configuration left after a rollover.
    let only_two =
        AuthConfig::cryptographic(vec![Key::new(2, Algorithm::HmacSha256, "key-two")], false)
            .unwrap();
    assert!(sim
        .inst_mut(a)
        .set_interface_auth(IfaceId(0), only_two.clone()));
    assert!(sim.inst_mut(b).set_interface_auth(IfaceId(0), only_two));
    sim.run_for(secs(10.0));

    assert!(full(&sim));
    let left_full: Vec<_> = sim.events[events_before..]
        .iter()
        .filter(|(_, _, e)| {
            matches!(
                e,
                Event::NeighborState {
                    from: NsmState::Full,
                    ..
                }
            )
        })
        .collect();
    assert!(left_full.is_empty(), "{left_full:?}");
    for n in [a, b] {
        for reason in [
            "unknown-key",
            "key-not-accepted",
            "digest-mismatch",
            "seq-regressed",
        ] {
            assert_eq!(sim.drops(n, reason), 0, "node {n}: {reason}");
        }
        assert_eq!(sim.drops(n, "tx-key-expired"), 0);
    }
    // Each side switched at its own second, not before, not later.
    for (n, switch) in [(a, switch_a), (b, switch_b)] {
        let ids = key_ids_sent(&sim, n);
        assert_eq!(ids.iter().map(|(k, ..)| *k).collect::<Vec<_>>(), [1, 2]);
        let (_, _, last_one) = ids[0];
        let (_, first_two, _) = ids[1];
        assert!(
            wall(last_one) < switch,
            "node {n} sent key 1 at {last_one:?}"
        );
        assert!(
            wall(first_two) >= switch,
            "node {n} sent key 2 at {first_two:?}"
        );
        assert!(first_two > changed_at);
    }
}

#[test]
fn mismatched_hello_and_area_and_own_packets_are_counted() {
    // Hello interval mismatch.
    let (mut sim, a, _b) = p2p_pair(
        p2p_cfg("a0", 1, "198.18.1.0"),
        InterfaceConfig {
            hello_interval: 5,
            ..p2p_cfg("b0", 1, "198.18.1.1")
        },
    );
    sim.run_for(secs(30.0));
    assert!(sim.drops(a, "hello-mismatch") > 0);
    assert!(sim.inst(a).neighbors(sim.now).is_empty());

    // Wrong area.
    let (mut sim, a, _b) = p2p_pair(
        p2p_cfg("a0", 1, "198.18.1.0"),
        InterfaceConfig {
            area: ip("0.0.0.1"),
            ..p2p_cfg("b0", 1, "198.18.1.1")
        },
    );
    sim.run_for(secs(30.0));
    assert!(sim.drops(a, "wrong-area") > 0);
    assert!(sim.inst(a).neighbors(sim.now).is_empty());

    // Network mask mismatch on a LAN.
    let mut sim = Sim::new();
    let a = sim.node("10.0.0.1");
    let b = sim.node("10.0.0.2");
    sim.attach(a, 0, lan_cfg("a0", 1, "198.18.0.1", 1));
    sim.attach(
        b,
        0,
        InterfaceConfig {
            prefix_len: 25,
            ..lan_cfg("b0", 1, "198.18.0.2", 1)
        },
    );
    sim.run_for(secs(30.0));
    assert!(sim.drops(a, "hello-mismatch") > 0);

    // Our own packet looped back.
    let (mut sim, a, _b) = default_p2p();
    let own = sim
        .log
        .iter()
        .find(|s| s.from == a)
        .map(|s| s.packet.encode().unwrap())
        .unwrap();
    let now = sim.now;
    sim.inst_mut(a)
        .handle_packet(now, 1, ip("198.18.1.0"), ALL_SPF_ROUTERS, &own);
    assert_eq!(sim.drops(a, "own-packet"), 1);
    // Garbage.
    sim.inst_mut(a)
        .handle_packet(now, 1, ip("198.18.1.1"), ALL_SPF_ROUTERS, &[2, 1, 0]);
    assert_eq!(sim.drops(a, "truncated"), 1);
    // A packet from a stranger that is not a Hello.
    let stranger = Packet {
        router_id: ip("10.9.9.9"),
        area_id: BACKBONE,
        autype: AUTYPE_NULL,
        auth_data: [0; 8],
        body: PacketBody::LinkStateUpdate(LinkStateUpdate::default()),
    }
    .encode()
    .unwrap();
    sim.inst_mut(a)
        .handle_packet(now, 1, ip("198.18.1.1"), ALL_SPF_ROUTERS, &stranger);
    assert_eq!(sim.drops(a, "unknown-neighbor"), 1);
    // A corrupted checksum.
    let mut bad = own.clone();
    bad[30] ^= 0xff;
    sim.inst_mut(a)
        .handle_packet(now, 1, ip("198.18.1.1"), ALL_SPF_ROUTERS, &bad);
    assert_eq!(sim.drops(a, "bad-checksum"), 1);
    // On an unknown interface.
    sim.inst_mut(a)
        .handle_packet(now, 99, ip("198.18.1.1"), ALL_SPF_ROUTERS, &stranger);
    assert_eq!(sim.drops(a, "unknown-interface"), 1);

    // A DROther does not accept packets sent to AllDRouters.
    let mut sim = Sim::new();
    let d = sim.node("10.0.0.11");
    sim.attach(d, 0, lan_cfg("d0", 1, "198.18.0.11", 0));
    let now = sim.now;
    sim.inst_mut(d)
        .handle_packet(now, 1, ip("198.18.0.1"), ALL_D_ROUTERS, &stranger);
    assert_eq!(sim.drops(d, "not-dr"), 1);
    // Nor a source outside the subnet.
    sim.inst_mut(d)
        .handle_packet(now, 1, ip("10.1.1.1"), ALL_SPF_ROUTERS, &stranger);
    assert_eq!(sim.drops(d, "wrong-subnet"), 1);
}

// ---- start-up ------------------------------------------------------------------

#[test]
fn new_director_on_lan_with_existing_dr_is_routed_within_1_5_s() {
    let mut sim = Sim::new();
    let r = sim.node("10.0.0.1");
    let other = sim.node("10.0.0.12");
    // Lab timers: hello 1, dead 4.
    let lab = |c: InterfaceConfig| InterfaceConfig {
        hello_interval: 1,
        dead_interval: 4,
        ..c
    };
    sim.attach(r, 0, lab(lan_cfg("r0", 1, "198.18.0.1", 1)));
    sim.attach(other, 0, lab(lan_cfg("d0", 1, "198.18.0.12", 0)));
    sim.run_for(secs(20.0));
    assert_eq!(sim.iface(r).state, IsmState::DR);

    let d = sim.node("10.0.0.11");
    let log_mark = sim.log.len();
    let now = sim.now;
    sim.inst_mut(d)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    sim.attach(d, 0, lab(lan_cfg("d0", 1, "198.18.0.11", 0)));
    let took = sim.run_until_cond(secs(10.0), |s| {
        s.nbr_state(r, "10.0.0.11") == Some(NsmState::Full)
            && s.router_lsa(r, "10.0.0.11").is_some_and(|(_, l)| {
                vip_link(&l, "192.0.2.10") == Some(1)
                    && l.links
                        .iter()
                        .any(|l| l.link_type == RouterLinkType::Transit)
            })
    });
    let took = took.expect("director routed");
    assert!(took <= secs(1.5), "took {took:?}");
    sim.run_for(secs(10.0));
    // Instances the director sent: the first already complete, any later
    // one at least MinLSArrival after the previous one.
    let sent: Vec<(Duration, i32)> = {
        let mut v: Vec<(Duration, i32)> = Vec::new();
        for s in sim.log[log_mark..].iter().filter(|s| s.from == d) {
            if let PacketBody::LinkStateUpdate(u) = &s.packet.body {
                for l in &u.lsas {
                    let h = l.header();
                    if h.key() == router_key("10.0.0.11") && !v.iter().any(|x| x.1 == h.seq) {
                        v.push((s.at, h.seq));
                    }
                }
            }
        }
        v
    };
    assert!(!sent.is_empty());
    for w in sent.windows(2) {
        assert!(w[1].0 - w[0].0 >= secs(1.0), "{sent:?}");
    }
    assert_eq!(sent.len(), 1, "one instance is enough: {sent:?}");
    assert_eq!(sim.drops(r, "min-ls-arrival"), 0);
    // The other director learned it too.
    assert!(sim
        .router_lsa(other, "10.0.0.11")
        .is_some_and(|(_, l)| vip_link(&l, "192.0.2.10") == Some(1)));
}

#[test]
fn lone_director_originates_after_the_wait_period() {
    let mut sim = Sim::new();
    let d = sim.node("10.0.0.11");
    sim.attach(d, 0, lan_cfg("d0", 1, "198.18.0.11", 0));
    let now = sim.now;
    sim.inst_mut(d)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    sim.run_for(secs(39.0));
    assert!(sim.router_lsa(d, "10.0.0.11").is_none(), "gate closed");
    sim.run_for(secs(2.0));
    let (_, l) = sim.router_lsa(d, "10.0.0.11").expect("gate opened");
    assert!(has_link(&l, &stub("198.18.0.0", "255.255.255.0", 10)));
    assert_eq!(vip_link(&l, "192.0.2.10"), Some(1));
}

// ---- receiver-side rate limits and answers --------------------------------------

#[test]
fn min_ls_arrival_drops_too_frequent_instances_until_retransmitted() {
    // A sender without pacing (min_ls_interval 0) sends two instances
    // 100 ms apart: the receiver drops the second (RFC 2328 13 step 5a)
    // and only gets it from the retransmission.
    let mut sim = Sim::new();
    let a = sim.node_with(Config {
        router_id: ip("10.0.0.1"),
        min_ls_interval: Duration::ZERO,
        ..Config::default()
    });
    let b = sim.node("10.0.0.2");
    sim.attach(a, 0, p2p_cfg("a0", 1, "198.18.1.0"));
    sim.attach(b, 0, p2p_cfg("b0", 1, "198.18.1.1"));
    sim.run_for(secs(30.0));
    let now = sim.now;
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    sim.run_for(secs(0.1));
    let now = sim.now;
    sim.inst_mut(a)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 2);
    sim.run_for(secs(0.1));
    assert_eq!(sim.drops(b, "min-ls-arrival"), 1);
    let (_, l) = sim.router_lsa(b, "10.0.0.1").unwrap();
    assert_eq!(vip_link(&l, "192.0.2.10"), Some(1));
    sim.run_for(secs(6.0));
    let (_, l) = sim.router_lsa(b, "10.0.0.1").unwrap();
    assert_eq!(
        vip_link(&l, "192.0.2.10"),
        Some(2),
        "got it on retransmission"
    );
}

#[test]
fn older_instance_received_is_answered_with_ours() {
    let (mut sim, a, b) = default_p2p();
    sim.run_for(secs(5.0));
    let now = sim.now;
    sim.inst_mut(b)
        .advertise_vip(now, BACKBONE, ip("192.0.2.30"), 1);
    sim.run_for(secs(5.0));
    let (cur, body) = sim.router_lsa(a, "10.0.0.2").unwrap();
    // B "floods" an older instance of its own LSA to A.
    let old = Lsa {
        header: LsaHeader {
            seq: cur.seq - 1,
            age: 5,
            ..cur
        },
        body: LsaBody::Router(body),
    };
    let packet = Packet {
        router_id: ip("10.0.0.2"),
        area_id: BACKBONE,
        autype: AUTYPE_NULL,
        auth_data: [0; 8],
        body: PacketBody::LinkStateUpdate(LinkStateUpdate {
            lsas: vec![old.to_raw().unwrap()],
        }),
    };
    let mark = sim.log.len();
    let now = sim.now;
    sim.inst_mut(a).handle_packet(
        now,
        1,
        ip("198.18.1.1"),
        ALL_SPF_ROUTERS,
        &packet.encode().unwrap(),
    );
    sim.run_for(secs(0.01));
    let answered = sim.log[mark..].iter().any(|s| {
        s.from == a
            && matches!(&s.packet.body, PacketBody::LinkStateUpdate(u)
                if u.lsas.iter().any(|l| l.header().key() == router_key("10.0.0.2") && l.header().seq == cur.seq))
    });
    assert!(answered, "13 step 8: our newer copy goes back");
    assert_eq!(sim.router_lsa(a, "10.0.0.2").unwrap().0.seq, cur.seq);
}

// ---- a large database from a scripted neighbour ------------------------------------

/// A neighbour written out by hand (a slave with a lower router ID, as a
/// redistributing router would be): it answers Database Description
/// packets with its headers and Link State Requests with updates of at
/// most 1400 bytes, 1 ms later, and loses the third update it sends.
#[test]
fn large_database_loads_without_waiting_for_retransmissions() {
    const N: usize = 20_000;
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
    let lsas = (0..N)
        .map(|i| common::external(i, peer_id, ip("255.255.255.255"), INITIAL_SEQUENCE_NUMBER))
        .collect();
    let mut peer = common::SlavePeer::new(peer_id, BACKBONE, ip("198.18.1.1"), lsas);
    peer.hello(base, ip("10.0.0.1"));
    let mut now = base;
    let mut lsus_sent = 0usize;
    let mut lsr_packets = 0usize;
    let mut requested_entries = 0usize;
    let mut max_lsr_gap = Duration::ZERO;
    let mut last_lsr: Option<Instant> = None;
    let mut acks_during_load = 0usize;
    let full_at = loop {
        // A's output, answered by the peer.
        while let Some(t) = a.poll_transmit() {
            match Packet::decode(&t.bytes).unwrap().body {
                PacketBody::LinkStateRequest(r) => {
                    lsr_packets += 1;
                    requested_entries += r.entries.len();
                    if let Some(prev) = last_lsr {
                        max_lsr_gap = max_lsr_gap.max(now - prev);
                    }
                    last_lsr = Some(now);
                }
                PacketBody::LinkStateAck(_) => acks_during_load += 1,
                _ => {}
            }
            for update in peer.answer(now, &t.bytes, 1400) {
                lsus_sent += 1;
                // The third update is lost.
                if lsus_sent != 3 {
                    peer.queue.push((now + LATENCY, update));
                }
            }
        }
        if a.neighbors(now)
            .first()
            .is_some_and(|n| n.state == NsmState::Full)
        {
            break now - base;
        }
        peer.step(&mut a, &mut now, base, secs(60.0));
    };
    let db = a.database(now);
    assert_eq!(
        db.iter()
            .filter(|(_, h)| h.advertising_router == peer_id)
            .count(),
        N
    );
    // No stall: the lost update's entries were asked for again as soon as
    // later answers arrived, not after RxmtInterval (5 s).
    assert!(full_at < secs(1.0), "Full after {full_at:?}");
    assert!(max_lsr_gap < secs(1.0), "a request waited {max_lsr_gap:?}");
    // Requests went out in full packets, re-asking only what was lost.
    assert!(
        requested_entries < N + 200,
        "{requested_entries} entries requested"
    );
    eprintln!("full after {full_at:?}, {lsr_packets} LSR packets, {requested_entries} entries, {lsus_sent} updates, max gap {max_lsr_gap:?}");
    assert!(lsr_packets <= N / 121 + 10, "{lsr_packets} request packets");
    assert_eq!(
        a.drop_counters().values().sum::<u64>(),
        0,
        "{:?}",
        a.drop_counters()
    );
    // The acknowledgements of the load did not interrupt the exchange:
    // none went while loading; the delayed-ack timer (a second after the
    // first LSA) sends them all, in full packets.
    assert_eq!(acks_during_load, 0, "LSAck packets sent while loading");
    let (mut ack_packets, mut acked) = (0usize, 0usize);
    let until = base + secs(1.5);
    while let Some(t) = a.poll_timeout().filter(|t| *t <= until) {
        now = t;
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit() {
            if let PacketBody::LinkStateAck(ack) = Packet::decode(&t.bytes).unwrap().body {
                ack_packets += 1;
                acked += ack.lsa_headers.len();
            }
        }
    }
    assert!(
        acked >= N,
        "{acked} of {N} LSAs acknowledged by {:?}",
        until - base
    );
    assert!(
        ack_packets <= acked.div_ceil(70) + 1,
        "{ack_packets} LSAck packets for {acked}"
    );
}

#[test]
fn stale_network_lsa_of_a_former_dr_is_flushed_after_restart() {
    let mut sim = Sim::new();
    let r1 = sim.node("10.0.0.1");
    let r2 = sim.node("10.0.0.2");
    let d = sim.node("10.0.0.11");
    sim.attach(r1, 0, lan_cfg("r0", 1, "198.18.0.1", 2));
    sim.attach(r2, 0, lan_cfg("r0", 1, "198.18.0.2", 1));
    sim.attach(d, 0, lan_cfg("d0", 1, "198.18.0.11", 0));
    sim.run_for(secs(90.0));
    assert_eq!(sim.iface(r1).state, IsmState::DR);
    let net_key = LsaKey {
        lsa_type: LsaType::NETWORK,
        link_state_id: ip("198.18.0.1"),
        advertising_router: ip("10.0.0.1"),
    };
    assert!(sim.inst(r2).lsa(sim.now, BACKBONE, net_key).is_some());
    // R1 comes back with priority 0: no longer DR, its old Network-LSA
    // (13.4: Link State ID = its address) must go.
    sim.crash(r1);
    sim.run_for(secs(1.0));
    sim.restart(
        r1,
        Config {
            router_id: ip("10.0.0.1"),
            ..Config::default()
        },
        WALL_CLOCK + 50,
    );
    let now = sim.now;
    sim.inst_mut(r1)
        .add_interface(now, lan_cfg("r0", 1, "198.18.0.1", 0));
    sim.run_for(secs(60.0));
    assert_eq!(sim.iface(r2).state, IsmState::DR);
    assert_eq!(sim.iface(r1).state, IsmState::DROther);
    for n in [r1, r2, d] {
        assert!(
            sim.inst(n).lsa(sim.now, BACKBONE, net_key).is_none(),
            "node {n} still has the stale network-LSA"
        );
    }
    let r2_net = LsaKey {
        lsa_type: LsaType::NETWORK,
        link_state_id: ip("198.18.0.2"),
        advertising_router: ip("10.0.0.2"),
    };
    let net = sim
        .inst(d)
        .lsa(sim.now, BACKBONE, r2_net)
        .unwrap()
        .decode()
        .unwrap();
    let LsaBody::Network(n) = net.body else {
        panic!()
    };
    assert_eq!(
        n.attached_routers,
        vec![ip("10.0.0.2"), ip("10.0.0.1"), ip("10.0.0.11")]
    );
    assert_eq!(sim.nbr_state(r1, "10.0.0.2"), Some(NsmState::Full));
    assert_eq!(sim.nbr_state(d, "10.0.0.2"), Some(NsmState::Full));
    // The restarted router's Router-LSA has a transit link to the new DR.
    let (_, l) = sim.router_lsa(d, "10.0.0.1").unwrap();
    assert!(l
        .links
        .iter()
        .any(|l| l.link_type == RouterLinkType::Transit && l.link_id == ip("198.18.0.2")));
}

#[test]
fn fresh_lan_director_answers_the_new_dr_at_once_with_one_instance() {
    // Router and director start together: the router waits
    // RouterDeadInterval before electing itself; the director must not
    // originate a stub-only Router-LSA meanwhile (it would be superseded
    // within MinLSArrival once the adjacency is Full).
    let mut sim = Sim::new();
    let lab = |c: InterfaceConfig| InterfaceConfig {
        hello_interval: 1,
        dead_interval: 4,
        ..c
    };
    let r = sim.node("10.0.0.1");
    let d = sim.node("10.0.0.11");
    let now = sim.now;
    sim.inst_mut(d)
        .advertise_vip(now, BACKBONE, ip("192.0.2.10"), 1);
    // The director comes up first, so its wait ends first.
    sim.attach(d, 0, lab(lan_cfg("d0", 1, "198.18.0.11", 0)));
    sim.run_for(secs(0.3));
    sim.attach(r, 0, lab(lan_cfg("r0", 1, "198.18.0.1", 1)));
    let took = sim.run_until_cond(secs(20.0), |s| {
        s.router_lsa(r, "10.0.0.11").is_some_and(|(_, l)| {
            vip_link(&l, "192.0.2.10") == Some(1)
                && l.links
                    .iter()
                    .any(|l| l.link_type == RouterLinkType::Transit)
        })
    });
    // The router elects itself at 4.3 s; the director (master: higher
    // router ID), which tried its adjacency early, answers the router's
    // first DD at once instead of after RxmtInterval.
    let took = took.expect("routed") + secs(0.3);
    assert!(took < secs(4.4), "{took:?}");
    sim.run_for(secs(10.0));
    let sent = sim.router_lsa_instances_sent(d, "10.0.0.11");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sim.drops(r, "min-ls-arrival"), 0);
}

// ---- fast hellos -------------------------------------------------------------

#[test]
fn fast_hellos_form_an_adjacency_and_detect_a_dead_peer_within_a_second() {
    // FRR's `ip ospf dead-interval minimal hello-multiplier 4`: HelloInterval
    // 0 on the wire, four Hellos a second, RouterDeadInterval 1.
    let fast = |c: InterfaceConfig| InterfaceConfig {
        hello_interval: 0,
        hello_multiplier: 4,
        dead_interval: 1,
        ..c
    };
    let (mut sim, a, b) = p2p_pair(
        fast(p2p_cfg("a0", 1, "198.18.1.0")),
        fast(p2p_cfg("b0", 1, "198.18.1.1")),
    );
    let took = sim.run_until_cond(secs(10.0), |s| {
        s.nbr_state(a, "10.0.0.2") == Some(NsmState::Full)
            && s.nbr_state(b, "10.0.0.1") == Some(NsmState::Full)
    });
    assert!(took.is_some(), "fast-hello adjacency did not form");
    assert_eq!(sim.drops(a, "hello-mismatch"), 0);
    let hellos_before = sim.inst(a).neighbors(sim.now)[0].dead_in;
    assert!(
        hellos_before <= secs(1.0),
        "dead timer is 1 s: {hellos_before:?}"
    );

    sim.crash(b);
    let gone = sim
        .run_until_cond(secs(5.0), |s| {
            s.nbr_state(a, "10.0.0.2")
                .is_none_or(|st| st == NsmState::Down)
        })
        .expect("the dead peer is noticed");
    assert!(gone <= secs(1.0), "noticed after {gone:?}");

    // A peer with normal timers is refused: HelloInterval must match.
    let (mut sim, a, _b) = p2p_pair(
        fast(p2p_cfg("a0", 1, "198.18.1.0")),
        p2p_cfg("b0", 1, "198.18.1.1"),
    );
    sim.run_for(secs(12.0));
    assert!(sim.drops(a, "hello-mismatch") > 0);
    assert_ne!(sim.nbr_state(a, "10.0.0.2"), Some(NsmState::Full));
}
