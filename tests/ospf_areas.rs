//! Issue 16 acceptance in the lab: anycastd directors in a totally stubby
//! area behind an FRR area border router (topologies/ospf-stub-frr.toml)
//! and in an NSSA behind a BIRD one (topologies/ospf-nssa-bird.toml), with
//! a backbone router redistributing 20,000 external routes:
//!
//! - the directors reach Full with the ABR;
//! - once the ABR holds all 20,000 externals, the directors' databases stay
//!   under 20 LSAs and never hold a type-4, -5 or -11 LSA (sampled for five
//!   seconds); in the NSSA they hold the ABR's type-7 default;
//! - the ABR routes the VIP over the three directors, the backbone router
//!   over the ABR (both FIBs), and the client's requests to the VIP are
//!   answered;
//! - FRR only: a director restarted with area type normal against the stub
//!   ABR logs the mismatch once and shows it in `show ospf interface`; a
//!   reload with the fixed config is refused (a restart is needed), and
//!   after the restart it reaches Full and the VIP has its third nexthop.
//!
//! Timings are printed. Needs root, FRR and BIRD (the README's test
//! command installs them); a missing prerequisite fails the test with what
//! is missing.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lab::scenario;
use lab::{wait_for, Ipv4Network, Lab, LoadSpec, Signal};

/// One lab at a time: two 20,000-route backbones at once on a shared CPU
/// would measure each other.
static SERIAL: Mutex<()> = Mutex::new(());

const ABR: &str = "r1";
const ABR_ID: &str = "198.18.0.1";
/// The ABR's address on the backbone link: the backbone router's nexthop.
const ABR_BACKBONE_ADDR: &str = "198.18.2.1";
const BACKBONE: &str = "r2";
const CLIENT: &str = "c1";
const CLIENT_NET: &str = "198.18.1.0/24";
const DIRECTORS: [&str; 3] = ["d1", "d2", "d3"];
const EXTERNALS: usize = 20_000;
/// What "a few LSAs" means for a director in these areas.
const MAX_DIRECTOR_LSAS: usize = 20;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn vip() -> Ipv4Addr {
    ip("192.0.2.10")
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn up(file: &str) -> Lab {
    Lab::up_shipped(file, env!("CARGO_BIN_EXE_anycastd"))
        .unwrap_or_else(|e| panic!("lab up {file}: {e}"))
}

fn ctl(lab: &Lab, node: &str, args: &[&str]) -> Output {
    lab.anycastd_cli(node, args)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// True when `director` sees the ABR Full.
fn full_with_abr(lab: &Lab, director: &str) -> bool {
    lab.ospf_neighbors(director)
        .unwrap_or_default()
        .iter()
        .any(|n| n.router_id == ip(ABR_ID) && n.state == "Full")
}

/// Waits until every director in `directors` is Full with the ABR.
fn wait_directors_full(lab: &Lab, directors: &[&str], timeout: Duration) -> Duration {
    let start = Instant::now();
    wait_for(timeout, Duration::from_millis(100), || {
        directors
            .iter()
            .all(|d| full_with_abr(lab, d))
            .then(|| start.elapsed())
    })
    .unwrap_or_else(|| {
        let states: Vec<String> = directors
            .iter()
            .map(|d| format!("{d}: {:?}", lab.ospf_neighbors(d)))
            .collect();
        panic!(
            "directors not Full with the ABR within {timeout:?}: {}",
            states.join("; ")
        )
    })
}

/// The anycastd log of `node` from byte `from` on.
fn log_since(lab: &Lab, node: &str, from: usize) -> String {
    let text = std::fs::read_to_string(lab.anycastd(node).log_path()).unwrap_or_default();
    text.get(from..).unwrap_or_default().to_string()
}

fn log_len(lab: &Lab, node: &str) -> usize {
    std::fs::metadata(lab.anycastd(node).log_path()).map_or(0, |m| m.len() as usize)
}

/// What one topology measured.
struct Figures {
    full: Duration,
    nexthops: Duration,
    externals: Duration,
    backbone_route: Duration,
    max_lsas: usize,
    samples: usize,
}

/// The checks both topologies share; `type7` says whether the directors
/// must hold a type-7 LSA (the NSSA's default) or none.
fn area_acceptance(lab: &Lab, label: &str, type7: bool, started: Instant) -> Figures {
    wait_directors_full(lab, &DIRECTORS, Duration::from_secs(60));
    let full = started.elapsed();
    scenario::wait_nexthops(lab, ABR, vip(), 3, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{label}: the ABR's VIP route: {e}"));
    let nexthops = started.elapsed();

    // The backbone router reaches the VIP over the ABR.
    let backbone_route = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        let gws = lab.vip_gateways(BACKBONE, vip()).unwrap_or_default();
        (gws == [ip(ABR_BACKBONE_ADDR)]).then(|| started.elapsed())
    })
    .unwrap_or_else(|| {
        panic!(
            "{label}: the backbone router's VIP route is not over the ABR: {:?}",
            lab.vip_route(BACKBONE, vip())
        )
    });

    // The ABR holds the whole backbone database, externals included.
    let mut abr_lsas = 0;
    let externals = wait_for(Duration::from_secs(120), Duration::from_millis(250), || {
        abr_lsas = lab.ospf_lsa_count(ABR).unwrap_or(0);
        (abr_lsas >= EXTERNALS).then(|| started.elapsed())
    })
    .unwrap_or_else(|| panic!("{label}: the ABR holds {abr_lsas} LSAs, not {EXTERNALS}"));

    // The directors' databases, sampled for five seconds.
    let mut max_lsas = 0;
    let mut samples = 0;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        for d in DIRECTORS {
            let db = lab
                .ospf_database(d)
                .unwrap_or_else(|e| panic!("{label}: {d}'s database: {e}"));
            max_lsas = max_lsas.max(db.len());
            samples += 1;
            assert!(
                db.len() < MAX_DIRECTOR_LSAS,
                "{label}: {d} holds {} LSAs: {db:?}",
                db.len()
            );
            let refused: Vec<_> = db
                .iter()
                .filter(|l| matches!(l.lsa_type, 4 | 5 | 11))
                .collect();
            assert!(
                refused.is_empty(),
                "{label}: {d} holds LSAs its area refuses: {refused:?}"
            );
            let sevens = db.iter().filter(|l| l.lsa_type == 7).count();
            if type7 {
                assert!(sevens >= 1, "{label}: {d} holds no type-7 LSA: {db:?}");
            } else {
                assert_eq!(sevens, 0, "{label}: {d} holds a type-7 LSA: {db:?}");
            }
            // The ABR's summaries (at least the default) reach it.
            assert!(
                db.iter()
                    .any(|l| l.lsa_type == 3 && l.advertising_router == ip(ABR_ID)),
                "{label}: {d} holds no summary of the ABR: {db:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    let abr_route = lab.vip_route(ABR, vip()).expect("FIB");
    let hops = abr_route.as_ref().map_or(0, |r| r.nexthops.len());
    assert_eq!(hops, 3, "{label}: the ABR's VIP route: {abr_route:?}");

    // The client: once the ABR has the route back to it.
    let client_net: Ipv4Network = CLIENT_NET.parse().expect("prefix");
    wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        lab.fib(ABR, client_net).ok().flatten()
    })
    .unwrap_or_else(|| panic!("{label}: the ABR has no route to the client's {CLIENT_NET}"));
    let report = lab
        .requests(
            CLIENT,
            LoadSpec {
                target: SocketAddr::from((vip(), 80)),
                count: 30,
                max_duration: Duration::from_secs(15),
                timeout: Duration::from_secs(1),
                interval: Duration::from_millis(20),
            },
        )
        .unwrap_or_else(|e| panic!("{label}: requests: {e}"));
    assert_eq!(report.sent, 30, "{label}: {}", report.summary());
    assert_eq!(report.ok, 30, "{label}: {}", report.summary());
    println!(
        "{label}: client requests to the VIP: {} ok of {}, answered by {:?}",
        report.ok, report.sent, report.per_server
    );
    Figures {
        full,
        nexthops,
        externals,
        backbone_route,
        max_lsas,
        samples,
    }
}

fn print_figures(label: &str, f: &Figures) {
    println!(
        "{label}: from lab up: directors Full with the ABR {:.1} s, VIP with 3 nexthops on the ABR {:.1} s, \
         ABR holding {EXTERNALS} externals {:.1} s, backbone VIP route over the ABR {:.1} s; \
         directors' databases at most {} LSAs over {} samples (never type 4/5/11)",
        secs(f.full),
        secs(f.nexthops),
        secs(f.externals),
        secs(f.backbone_route),
        f.max_lsas,
        f.samples
    );
}

/// Stops a director's anycastd (SIGTERM: it flushes its LSAs).
fn stop(lab: &mut Lab, node: &str) {
    lab.signal_anycastd(node, Signal::SIGTERM)
        .unwrap_or_else(|e| panic!("stop {node}: {e}"));
    lab.wait_anycastd_exit(node, Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn totally_stubby_area_behind_frr_and_a_deliberate_mismatch() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut lab = up("ospf-stub-frr.toml");
    let label = "totally stubby area, FRR ABR";
    let f = area_acceptance(&lab, label, false, started);
    print_figures(label, &f);

    // d3 restarted with area type normal against the stub ABR.
    let d = "d3";
    let generated = lab.anycastd_generated_config(d).expect("config");
    let normal = generated.replace("area_type = \"totally-stubby\"\n", "");
    assert_ne!(
        normal, generated,
        "the generated config names the area type"
    );
    stop(&mut lab, d);
    let from = log_len(&lab, d);
    lab.write_anycastd_config(d, &normal).expect("write");
    lab.restart_anycastd(d).expect("restart");
    let needle = "neighbour 198.18.0.1 expects a stub area (E-bit clear), this interface is in a normal area";
    let mismatch_at = Instant::now();
    wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        log_since(&lab, d, from).contains(needle).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no mismatch warning in {d}'s log: {}",
            log_since(&lab, d, from)
        )
    });
    let reported = mismatch_at.elapsed();
    // Five more Hellos (hello 1 s): still one warning.
    std::thread::sleep(Duration::from_secs(5));
    let log = log_since(&lab, d, from);
    assert_eq!(log.matches(needle).count(), 1, "{log}");
    let show = ctl(&lab, d, &["show", "ospf", "interface"]);
    let shown = text(&show);
    assert!(show.status.success(), "{shown}");
    assert!(shown.contains("area 0.0.0.1 (normal)"), "{shown}");
    assert!(
        shown.contains(&format!("area type mismatch, Hellos dropped: {needle}")),
        "{shown}"
    );
    let json = ctl(&lab, d, &["show", "ospf", "interface", "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&json)));
    let row = &v[0];
    assert_eq!(row["area_type"], "normal", "{v}");
    assert_eq!(row["area_type_mismatches"][0]["neighbor"], ABR_ID, "{v}");
    let counters = text(&ctl(&lab, d, &["show", "counters"]));
    assert!(counters.contains("area-type-mismatch"), "{counters}");
    assert!(
        !full_with_abr(&lab, d),
        "a normal director Full in a stub area"
    );
    assert_eq!(lab.vip_nexthops(ABR, vip()).expect("FIB"), 2);
    println!(
        "mismatch: d3 (normal) against the stub ABR: warning in its log {:.1} s after restart, once in 5 s more; \
         show ospf interface: {}",
        secs(reported),
        shown
            .lines()
            .find(|l| l.contains("mismatch"))
            .unwrap_or_default()
            .trim()
    );

    // The fixed config: a reload refuses it (the area type needs a
    // restart), the restart applies it.
    lab.write_anycastd_config(d, &generated).expect("write");
    let err = lab
        .anycastd(d)
        .reload()
        .expect_err("a reload must refuse an area type change")
        .to_string();
    assert!(
        err.contains("need a restart")
            && err.contains("area 0.0.0.1 area_type normal -> totally-stubby"),
        "{err}"
    );
    stop(&mut lab, d);
    let restarted = Instant::now();
    lab.restart_anycastd(d).expect("restart");
    let full = wait_directors_full(&lab, &[d], Duration::from_secs(60));
    scenario::wait_nexthops(&lab, ABR, vip(), 3, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the third nexthop: {e}"));
    let third = restarted.elapsed();
    println!(
        "fixed: reload refused ({err}); after the restart d3 Full with the ABR {:.1} s, VIP with 3 nexthops {:.1} s",
        secs(full),
        secs(third)
    );
    lab.down();
}

#[test]
fn nssa_behind_bird() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let lab = up("ospf-nssa-bird.toml");
    let label = "NSSA, BIRD ABR";
    let f = area_acceptance(&lab, label, true, started);
    print_figures(label, &f);
    lab.down();
}
