//! The anycastd OSPF speaker against real FRR 8.4 and BIRD 2.0.12 routers in
//! the lab, asserting on the routers' own view (neighbours, kernel FIB).
//!
//! Needs root, FRR and BIRD (the README's test command installs them).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lab::scenario::{self, Cast};
use lab::{Lab, LabOptions, Topology};

/// The 1 s dead interval test runs alone (a write lock), the other labs
/// of this file together (read locks): a neighbour lab starting FRR,
/// BIRD and three daemons on 2 cores must not eat into its 250 ms Hellos.
static SERIAL: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    SERIAL
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn up(file: &str) -> Lab {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(file);
    let topo = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd"));
    Lab::up_unique(topo, opts).unwrap_or_else(|e| panic!("lab up {file}: {e}"))
}

fn since_start(lab: &Lab) -> Duration {
    lab.routing_started.map_or(Duration::ZERO, |t| t.elapsed())
}

fn ctl(lab: &Lab, node: &str, args: &[&str]) -> String {
    let socket = lab.anycastd(node).socket();
    let out = Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(args)
        .arg("--socket")
        .arg(&socket)
        .output()
        .expect("run anycastd");
    assert!(
        out.status.success(),
        "anycastd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Test 1: a router (DR) and three anycastd directors on a LAN.
fn lan(file: &str) {
    let lab = up(file);
    let cast = Cast::of(&lab).expect("cast");
    assert_eq!(cast.directors.len(), 3);
    let full = scenario::wait_full(&lab, &cast.router, 3, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let full_at = since_start(&lab);
    let mut ids: Vec<String> = full.iter().map(|n| n.router_id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["198.18.0.11", "198.18.0.12", "198.18.0.13"]);
    scenario::wait_nexthops(&lab, &cast.router, cast.vip, 3, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let routed_at = since_start(&lab);
    println!(
        "{file}: 3 directors Full with {} after {:.2} s; VIP route with 3 nexthops after {:.2} s",
        cast.router,
        full_at.as_secs_f64(),
        routed_at.as_secs_f64()
    );
    // The directors' own view: Full with the router, which is DR.
    for d in &cast.directors {
        let ns = lab.ospf_neighbors(d).expect("anycastd neighbours");
        let r = ns
            .iter()
            .find(|n| n.router_id.to_string() == "198.18.0.1")
            .unwrap_or_else(|| panic!("{d} does not see the router: {ns:?}"));
        assert_eq!(r.state, "Full", "{d}: {ns:?}");
        assert_eq!(r.role.as_deref(), Some("DR"), "{d}: {ns:?}");
        let others: Vec<_> = ns
            .iter()
            .filter(|n| n.router_id.to_string() != "198.18.0.1")
            .collect();
        assert!(
            others.len() == cast.directors.len() - 1 && others.iter().all(|n| n.state == "2-Way"),
            "{d} sees every other director, 2-Way (DROthers): {ns:?}"
        );
    }
    let spread = lab
        .requests(&cast.client, scenario::spread_spec(cast.vip, 300))
        .expect("requests");
    println!("{file}: {}", spread.summary());
    assert_eq!(spread.ok, 300, "{}", spread.summary());
    assert_eq!(
        spread.per_server.len(),
        3,
        "all directors answered: {}",
        spread.summary()
    );
}

#[test]
fn lan_with_frr_router() {
    let _shared = shared();
    lan("ospf-lan-frr.toml");
}

#[test]
fn lan_with_bird_router() {
    let _shared = shared();
    lan("ospf-lan-bird.toml");
}

/// Test 2: point-to-point /31 links to two FRR routers.
#[test]
fn p2p_links_to_two_frr_routers() {
    let _shared = shared();
    let lab = up("ospf-p2p-frr.toml");
    let vip = "192.0.2.10".parse().expect("ip");
    for r in ["r1", "r2"] {
        let full = scenario::wait_full(&lab, r, 1, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(full[0].router_id.to_string(), "198.18.0.11");
        scenario::wait_nexthops(&lab, r, vip, 1, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{r}: {e}"));
    }
    let d1 = lab.ospf_neighbors("d1").expect("neighbours");
    assert_eq!(d1.iter().filter(|n| n.state == "Full").count(), 2, "{d1:?}");
    let spread = lab
        .requests("client", scenario::spread_spec(vip, 50))
        .expect("requests");
    assert_eq!(spread.ok, 50, "{}", spread.summary());
}

/// Test 4: withdraw a VIP and advertise it again at run time; test 7: kill -9
/// of anycastd and a restart.
#[test]
fn withdraw_advertise_and_restart() {
    let _shared = shared();
    let mut lab = up("ospf-lan-frr.toml");
    let cast = Cast::of(&lab).expect("cast");
    let vip = cast.vip.to_string();
    scenario::wait_nexthops(&lab, &cast.router, cast.vip, 3, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));

    ctl(&lab, "d2", &["vip", "withdraw", &vip]);
    let t = scenario::wait_nexthops(&lab, &cast.router, cast.vip, 2, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("withdraw: {e}"));
    let gws = lab.vip_gateways(&cast.router, cast.vip).expect("fib");
    assert!(
        !gws.iter().any(|g| g.to_string() == "198.18.0.12"),
        "d2's nexthop is gone: {gws:?}"
    );
    println!("withdraw: nexthop removed after {:.3} s", t.as_secs_f64());

    ctl(&lab, "d2", &["vip", "advertise", &vip]);
    let t = scenario::wait_nexthops(&lab, &cast.router, cast.vip, 3, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("advertise: {e}"));
    println!("advertise: nexthop back after {:.3} s", t.as_secs_f64());

    // The operator's view from d1: vtysh-like tables and one LSA in detail.
    let table = ctl(&lab, "d1", &["show", "ospf", "neighbor"]);
    assert!(
        table.contains("198.18.0.1") && table.contains("Full/DR"),
        "{table}"
    );
    let db = ctl(&lab, "d1", &["show", "ospf", "database"]);
    assert!(
        db.lines().count() >= 5,
        "router LSAs of 4 routers and a network LSA:\n{db}"
    );
    let lsa = ctl(
        &lab,
        "d1",
        &["show", "ospf", "lsa", "1", "198.18.0.12", "198.18.0.12"],
    );
    assert!(
        lsa.contains("192.0.2.10"),
        "d2's Router-LSA carries the VIP stub link:\n{lsa}"
    );

    // kill -9: the router drops d3 after the dead interval.
    let dead = scenario::dead_interval(&lab, "d3");
    lab.kill_routing("d3").expect("kill");
    let t = scenario::wait_nexthops(
        &lab,
        &cast.router,
        cast.vip,
        2,
        dead + Duration::from_secs(3),
    )
    .unwrap_or_else(|e| panic!("after kill: {e}"));
    println!(
        "kill -9: nexthop removed after {:.2} s (dead {} s)",
        t.as_secs_f64(),
        dead.as_secs()
    );
    assert!(t <= dead + Duration::from_millis(1500));

    // Restarted, it re-forms the adjacency, and its new Router-LSA
    // supersedes the stale one: the route comes back once and stays.
    let restart = Instant::now();
    lab.start_anycastd("d3").expect("restart");
    scenario::wait_nexthops(&lab, &cast.router, cast.vip, 3, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("after restart: {e}"));
    let back = restart.elapsed();
    let mut lost = 0;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(6) {
        if lab.vip_nexthops(&cast.router, cast.vip).expect("fib") != 3 {
            lost += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "restart: route back after {:.2} s; lost again in {lost} of ~120 samples over 6 s",
        back.as_secs_f64()
    );
    assert_eq!(lost, 0, "the route must come back once and stay");
}

/// Fast hellos: an FRR router and two anycastd directors on a LAN, all with
/// `hello_multiplier = 4` (HelloInterval 0, four Hellos a second, dead 1 s).
/// A director's anycastd killed with SIGKILL leaves the router's FIB within
/// the dead interval plus SPF and FIB update.
#[test]
fn fast_hellos_with_frr_router() {
    let _alone = SERIAL
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = up("ospf-fast-hello-frr.toml");
    let cast = Cast::of(&lab).expect("cast");
    assert_eq!(cast.directors.len(), 2);
    let full = scenario::wait_full(&lab, &cast.router, 2, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ids: Vec<String> = full.iter().map(|n| n.router_id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["198.18.0.11", "198.18.0.12"]);
    // The directors' view: Full with the router (DR).
    for d in &cast.directors {
        let seen = lab::wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
            let ns = lab.ospf_neighbors(d).ok()?;
            ns.iter()
                .any(|n| n.router_id.to_string() == "198.18.0.1" && n.state == "Full")
                .then_some(ns)
        });
        let ns = seen.unwrap_or_else(|| {
            panic!(
                "{d} is not Full with the router: {:?}",
                lab.ospf_neighbors(d)
            )
        });
        let r = ns
            .iter()
            .find(|n| n.router_id.to_string() == "198.18.0.1")
            .expect("router");
        assert_eq!(r.role.as_deref(), Some("DR"), "{d}: {ns:?}");
    }
    scenario::wait_nexthops(&lab, &cast.router, cast.vip, 2, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "fast hellos: 2 directors Full, VIP route with 2 nexthops {:.2} s after start",
        since_start(&lab).as_secs_f64()
    );

    // FRR's own view of the LAN interface: a Hello every 250 ms, dead 1 s.
    let frr = lab.frr(&cast.router);
    let ifname = lab
        .topology
        .interfaces(&cast.router)
        .find(|e| e.ospf.is_some())
        .map(|e| e.ifname.clone())
        .expect("router's OSPF interface");
    let json = frr
        .vtysh("ospfd", &format!("show ip ospf interface {ifname} json"))
        .expect("vtysh");
    let v: serde_json::Value = serde_json::from_str(&json).expect("interface JSON");
    let i = &v["interfaces"][&ifname];
    assert_eq!(i["timerDeadSecs"].as_u64(), Some(1), "{json}");
    assert_eq!(
        i["timerMsecs"].as_u64(),
        Some(1000 / 4),
        "hello multiplier 4: {json}"
    );
    assert_eq!(i["nbrAdjacentCount"].as_u64(), Some(2), "{json}");
    // Its inactivity timer for each director never exceeds 1 s: each
    // director's Hellos (HelloInterval 0, dead 1) are accepted and keep
    // resetting it.
    let mut max_dead = [0u64; 2];
    let sampling = Instant::now();
    while sampling.elapsed() < Duration::from_millis(1500) {
        let ns = frr.neighbors().expect("FRR neighbours");
        for (k, id) in ["198.18.0.11", "198.18.0.12"].iter().enumerate() {
            let n = ns
                .iter()
                .find(|n| n.router_id.to_string() == *id)
                .unwrap_or_else(|| panic!("FRR lost {id}: {ns:?}"));
            assert_eq!(n.state, "Full", "{ns:?}");
            let dead = n.dead_ms.expect("deadTimeMsecs");
            assert!(dead <= 1000, "FRR's dead timer for {id}: {dead} ms");
            max_dead[k] = max_dead[k].max(dead);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Sampled every ~50 ms against a 250 ms Hello period, the timer is
    // seen recently reset.
    assert!(
        max_dead.iter().all(|d| *d >= 700),
        "FRR's dead timers: {max_dead:?} ms"
    );

    // kill -9 of d2's anycastd: the router drops its nexthop after 1 s.
    lab.kill_routing("d2").expect("kill");
    let t = scenario::wait_nexthops(&lab, &cast.router, cast.vip, 1, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("after kill: {e}"));
    let gws = lab.vip_gateways(&cast.router, cast.vip).expect("fib");
    assert_eq!(
        gws.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["198.18.0.11"],
        "d2's nexthop is gone"
    );
    println!(
        "fast hellos: kill -9 of d2's anycastd: nexthop removed after {:.3} s (dead 1 s, multiplier 4)",
        t.as_secs_f64()
    );
    assert!(
        t < Duration::from_millis(2500),
        "detection took {:.3} s",
        t.as_secs_f64()
    );
}
