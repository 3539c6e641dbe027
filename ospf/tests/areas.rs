//! Area types (stub, totally stubby, NSSA) on the simulated network of
//! `common::sim`: the Options bits each sends, Hellos of a disagreeing
//! area type dropped, counted and reported once per sender, and the LS
//! types each area takes and floods.
//!
//! The network: a chain C - A - B of point-to-point links in area 0.0.0.1;
//! B's packets to A are also forged to feed A LSAs of every type.

use std::net::Ipv4Addr;

use ospf::instance::{AreaType, Config, Event, InterfaceConfig, NetworkType, NsmState};
use ospf::lsa::{
    ExternalLsa, Lsa, LsaBody, LsaHeader, LsaKey, LsaType, Options, RawLsa, SummaryLsa,
    INITIAL_SEQUENCE_NUMBER,
};
use ospf::packet::{LinkStateUpdate, Packet, PacketBody, ALL_SPF_ROUTERS, AUTYPE_NULL};

mod common;
use common::sim::*;

const AREA: &str = "0.0.0.1";
const A: &str = "10.0.0.1";
const B: &str = "10.0.0.2";
const C: &str = "10.0.0.3";

fn config(router_id: &str, area_type: AreaType) -> Config {
    Config {
        router_id: ip(router_id),
        area_types: [(ip(AREA), area_type)].into_iter().collect(),
        ..Config::default()
    }
}

fn p2p(name: &str, ifindex: u32, addr: &str) -> InterfaceConfig {
    InterfaceConfig {
        network: NetworkType::PointToPoint,
        ..InterfaceConfig::new(name, ifindex, ip(addr), 31, ip(AREA))
    }
}

/// A (area type `a`) and B (area type `b`) on one link; C behind A when
/// `with_c`. A's interface to B is its first.
struct Net {
    sim: Sim,
    a: usize,
    b: usize,
    c: Option<usize>,
}

fn net(a_type: AreaType, b_type: AreaType, with_c: bool) -> Net {
    let mut sim = Sim::new();
    let a = sim.node_with(config(A, a_type));
    let b = sim.node_with(config(B, b_type));
    sim.attach(a, 0, p2p("a0", 1, "198.18.1.0"));
    sim.attach(b, 0, p2p("b0", 1, "198.18.1.1"));
    let c = with_c.then(|| {
        let c = sim.node_with(config(C, a_type));
        sim.attach(a, 1, p2p("a1", 2, "198.18.2.0"));
        sim.attach(c, 1, p2p("c0", 1, "198.18.2.1"));
        c
    });
    Net { sim, a, b, c }
}

fn full(sim: &Sim, n: usize, router_id: &str) -> bool {
    sim.nbr_state(n, router_id) == Some(NsmState::Full)
}

#[test]
fn each_area_type_forms_adjacencies_with_its_own_options() {
    for t in AreaType::ALL {
        let Net { mut sim, a, b, .. } = net(t, t, false);
        let took = sim.run_until_cond(secs(60.0), |s| full(s, a, B) && full(s, b, A));
        assert!(took.is_some(), "{t}: no Full adjacency");
        // Our Router-LSAs follow the adjacency.
        sim.run_for(secs(5.0));
        let (e, n) = match t {
            AreaType::Normal => (true, false),
            AreaType::Stub | AreaType::TotallyStubby => (false, false),
            AreaType::Nssa => (false, true),
        };
        let (mut hellos, mut dds, mut lsas) = (0, 0, 0);
        for s in &sim.log {
            let o = match &s.packet.body {
                PacketBody::Hello(h) => {
                    hellos += 1;
                    h.options
                }
                PacketBody::DatabaseDescription(d) => {
                    dds += 1;
                    assert!(d.options.contains(Options::O), "{t}: DD without O");
                    d.options
                }
                PacketBody::LinkStateUpdate(u) => {
                    for l in &u.lsas {
                        lsas += 1;
                        // RFC 2328 12.1.2: E only in normal areas; P only
                        // on type-7 LSAs, which we do not originate.
                        let o = l.header().options;
                        assert_eq!(o.contains(Options::E), e, "{t}: LSA options {o:?}");
                        assert!(!o.contains(Options::NP), "{t}: LSA options {o:?}");
                    }
                    continue;
                }
                _ => continue,
            };
            assert_eq!(o.contains(Options::E), e, "{t}: options {o:?}");
            assert_eq!(o.contains(Options::NP), n, "{t}: options {o:?}");
        }
        assert!(
            hellos > 0 && dds > 0 && lsas > 0,
            "{t}: {hellos} {dds} {lsas}"
        );
        assert_eq!(sim.drops(a, "area-type-mismatch"), 0);
        let i = sim.iface(a);
        assert_eq!(i.area_type, t);
        assert!(i.area_type_mismatches.is_empty());
    }
}

fn mismatch_events(sim: &Sim, n: usize) -> Vec<String> {
    sim.events
        .iter()
        .filter(|(_, node, _)| *node == n)
        .filter_map(|(_, _, e)| match e {
            Event::AreaTypeMismatch { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_mismatching_area_type_is_counted_and_reported_once_per_neighbour() {
    let Net {
        mut sim,
        a,
        b,
        c: _,
    } = net(AreaType::Normal, AreaType::Stub, false);
    sim.run_for(secs(120.0));
    assert_eq!(sim.nbr_state(a, B), None, "a stub neighbour taken");
    assert_eq!(sim.nbr_state(b, A), None, "a normal neighbour taken");
    // Twelve Hellos each way, all dropped under their own reason.
    assert!(sim.drops(a, "area-type-mismatch") >= 10);
    assert!(sim.drops(b, "area-type-mismatch") >= 10);
    assert_eq!(sim.drops(a, "hello-mismatch"), 0);
    assert_eq!(
        mismatch_events(&sim, a),
        ["neighbour 198.18.1.1 expects a stub area (E-bit clear), this interface is in a normal area"]
    );
    assert_eq!(
        mismatch_events(&sim, b),
        ["neighbour 198.18.1.0 expects a normal area (E-bit set), this interface is in a stub area"]
    );
    let i = sim.iface(a);
    assert_eq!(i.area_type, AreaType::Normal);
    assert_eq!(i.area_type_mismatches.len(), 1);
    assert_eq!(i.area_type_mismatches[0].0, ip("198.18.1.1"));

    // B now announces an NSSA: news, reported once more.
    sim.restart(b, config(B, AreaType::Nssa), 1_000);
    sim.attach(b, 0, p2p("b0", 1, "198.18.1.1"));
    sim.run_for(secs(60.0));
    let ev = mismatch_events(&sim, a);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(
        ev[1].contains("expects an NSSA (E-bit clear, N-bit set)"),
        "{ev:?}"
    );

    // B fixed: the adjacency forms and the mismatch line goes.
    sim.restart(b, config(B, AreaType::Normal), 2_000);
    sim.attach(b, 0, p2p("b0", 1, "198.18.1.1"));
    let took = sim.run_until_cond(secs(60.0), |s| full(s, a, B) && full(s, b, A));
    assert!(took.is_some(), "fixed config: no Full adjacency");
    assert!(sim.iface(a).area_type_mismatches.is_empty());
    // After agreeing, a new mismatch is reported again.
    sim.restart(b, config(B, AreaType::Stub), 3_000);
    sim.attach(b, 0, p2p("b0", 1, "198.18.1.1"));
    sim.run_for(secs(60.0));
    assert_eq!(mismatch_events(&sim, a).len(), 3);
}

#[test]
fn forged_mismatching_hellos_from_many_senders_are_only_counted() {
    let Net { mut sim, a, .. } = net(AreaType::Stub, AreaType::Stub, false);
    sim.run_until_cond(secs(60.0), |s| full(s, a, B))
        .expect("Full");
    sim.clear_log();
    for i in 0..200u8 {
        // A point-to-point link takes Hellos from any source: each forged
        // sender has its own address and router ID.
        let src = Ipv4Addr::new(198, 18, 1, i.wrapping_add(2));
        let hello = Packet {
            router_id: Ipv4Addr::new(10, 9, 0, i),
            area_id: ip(AREA),
            autype: AUTYPE_NULL,
            auth_data: [0; 8],
            body: PacketBody::Hello(ospf::packet::Hello {
                network_mask: Ipv4Addr::UNSPECIFIED,
                hello_interval: 10,
                options: Options::E,
                router_priority: 1,
                router_dead_interval: 40,
                designated_router: Ipv4Addr::UNSPECIFIED,
                backup_designated_router: Ipv4Addr::UNSPECIFIED,
                neighbors: vec![],
            }),
        }
        .encode()
        .expect("encode");
        sim.inject(a, 1, src, ALL_SPF_ROUTERS, hello.freeze());
    }
    sim.run_for(secs(1.0));
    let reported = mismatch_events(&sim, a).len();
    let counted = sim.drops(a, "area-type-mismatch");
    assert_eq!(reported, 16, "reports");
    assert!(counted >= 200, "counted {counted}");
    assert_eq!(sim.iface(a).area_type_mismatches.len(), 16);
    // The real neighbour is untouched.
    assert!(full(&sim, a, B));
}

fn raw(t: LsaType, id: &str, adv: &str, body: LsaBody) -> RawLsa {
    Lsa {
        header: LsaHeader {
            age: 1,
            options: if t == LsaType::NSSA {
                Options::NP
            } else {
                Options::E
            },
            lsa_type: t,
            link_state_id: ip(id),
            advertising_router: ip(adv),
            seq: INITIAL_SEQUENCE_NUMBER,
            checksum: 0,
            length: 0,
        },
        body,
    }
    .to_raw()
    .expect("encode LSA")
}

fn external(mask: &str) -> ExternalLsa {
    ExternalLsa {
        network_mask: ip(mask),
        e_bit: true,
        metric: 20,
        forwarding_address: Ipv4Addr::UNSPECIFIED,
        external_route_tag: 0,
        tos: vec![],
    }
}

/// LSAs of type 3, 4, 5, 7 and 11 from B (an ABR/ASBR).
fn lsas_of_every_type() -> Vec<RawLsa> {
    let summary = |mask: &str| SummaryLsa {
        network_mask: ip(mask),
        metric: 10,
        tos: vec![],
    };
    vec![
        raw(
            LsaType::SUMMARY_NETWORK,
            "0.0.0.0",
            B,
            LsaBody::SummaryNetwork(summary("0.0.0.0")),
        ),
        raw(
            LsaType::SUMMARY_ASBR,
            "10.0.0.9",
            B,
            LsaBody::SummaryAsbr(summary("0.0.0.0")),
        ),
        raw(
            LsaType::AS_EXTERNAL,
            "198.51.100.0",
            B,
            LsaBody::AsExternal(external("255.255.255.0")),
        ),
        raw(
            LsaType::NSSA,
            "0.0.0.0",
            B,
            LsaBody::Nssa(external("0.0.0.0")),
        ),
        raw(
            LsaType(11),
            "7.0.0.1",
            B,
            LsaBody::Opaque(bytes::Bytes::from_static(&[0, 1, 0, 4, 0, 0, 0, 0])),
        ),
    ]
}

#[test]
fn each_area_type_takes_and_floods_only_its_ls_types() {
    for t in AreaType::ALL {
        let Net { mut sim, a, c, .. } = net(t, t, true);
        let c = c.expect("C");
        sim.run_until_cond(secs(60.0), |s| {
            full(s, a, B) && full(s, a, C) && full(s, c, A)
        })
        .unwrap_or_else(|| panic!("{t}: no Full adjacencies"));
        let update = Packet {
            router_id: ip(B),
            area_id: ip(AREA),
            autype: AUTYPE_NULL,
            auth_data: [0; 8],
            body: PacketBody::LinkStateUpdate(LinkStateUpdate {
                lsas: lsas_of_every_type(),
            }),
        }
        .encode()
        .expect("encode");
        sim.inject(a, 1, ip("198.18.1.1"), ALL_SPF_ROUTERS, update.freeze());
        sim.run_for(secs(5.0));
        let normal = t == AreaType::Normal;
        let expected = [
            (LsaType::SUMMARY_NETWORK, true),
            (LsaType::SUMMARY_ASBR, normal),
            (LsaType::AS_EXTERNAL, normal),
            (LsaType::NSSA, t == AreaType::Nssa),
            (LsaType(11), normal),
        ];
        for (lt, taken) in expected {
            let key = |id: &str| LsaKey {
                lsa_type: lt,
                link_state_id: ip(id),
                advertising_router: ip(B),
            };
            let id = match lt.0 {
                4 => "10.0.0.9",
                5 => "198.51.100.0",
                11 => "7.0.0.1",
                _ => "0.0.0.0",
            };
            for (n, who) in [(a, "A"), (c, "C (flooded by A)")] {
                let has = sim.inst(n).lsa(sim.now, ip(AREA), key(id)).is_some();
                assert_eq!(has, taken, "{t}: type {} at {who}", lt.0);
            }
        }
        let refused = expected.iter().filter(|(_, taken)| !taken).count() as u64;
        assert_eq!(sim.drops(a, "bad-lsa-type"), refused, "{t}");
        // C never sees a refused type, in any packet.
        for s in sim.log.iter().filter(|s| s.from == a) {
            if let PacketBody::LinkStateUpdate(u) = &s.packet.body {
                for l in &u.lsas {
                    assert!(
                        t.lsa_types().accepts(l.header().lsa_type),
                        "{t}: A sent {:?}",
                        l.header()
                    );
                }
            }
        }
    }
}

#[test]
fn the_backbone_can_only_be_normal() {
    for t in [AreaType::Stub, AreaType::TotallyStubby, AreaType::Nssa] {
        let cfg = Config {
            router_id: ip(A),
            area_types: [(BACKBONE, t)].into_iter().collect(),
            ..Config::default()
        };
        let e = ospf::instance::Instance::try_new(cfg, sim_now(), 0).unwrap_err();
        assert!(e.to_string().contains("backbone"), "{e}");
    }
    let cfg = Config {
        router_id: ip(A),
        area_types: [(BACKBONE, AreaType::Normal)].into_iter().collect(),
        ..Config::default()
    };
    assert!(ospf::instance::Instance::try_new(cfg, sim_now(), 0).is_ok());
}

fn sim_now() -> std::time::Instant {
    Sim::new().now
}
