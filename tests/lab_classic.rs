//! Acceptance of the lab on the classic design: FRR and BIRD routers, two FRR
//! directors advertising a VIP from lo, ECMP spread, failover, teardown.
//!
//! Needs root, FRR and BIRD (the README's test command installs them); a
//! missing prerequisite fails the test with what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lab::scenario::{self, Cast};
use lab::{Lab, LabOptions, LoadSpec, Topology};

fn topology(file: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(file);
    Topology::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn options() -> LabOptions {
    LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd"))
}

fn up(file: &str) -> Lab {
    Lab::up_unique(topology(file), options()).unwrap_or_else(|e| panic!("lab up {file}: {e}"))
}

/// Everything a lab made, to check that teardown removed it.
struct Footprint {
    name: String,
    pids: Vec<i32>,
    dir: PathBuf,
}

impl Footprint {
    fn of(lab: &Lab) -> Footprint {
        let pids = lab
            .namespaces()
            .iter()
            .flat_map(|ns| lab::netns::pids(&lab::netns::path(ns)))
            .map(|p| p.as_raw())
            .collect::<Vec<_>>();
        Footprint {
            name: lab.name.clone(),
            pids,
            dir: lab.state_dir().to_path_buf(),
        }
    }

    fn assert_gone(&self) {
        let left = lab::netns::list(&format!("{}.", self.name));
        assert!(left.is_empty(), "namespaces left behind: {left:?}");
        assert!(
            !self.dir.exists(),
            "state directory left behind: {}",
            self.dir.display()
        );
        for pid in &self.pids {
            // A killed daemon may linger as a zombie of a parent that does
            // not reap; it holds no resources, so only a live one counts.
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let running = !state.is_empty()
                && !state
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'));
            assert!(!running, "process {pid} survived teardown: {state}");
        }
    }
}

fn vip_gateways(lab: &Lab, cast: &Cast) -> Vec<String> {
    let gws = lab.vip_gateways(&cast.router, cast.vip).expect("FIB");
    gws.iter().map(|g| g.to_string()).collect()
}

/// classic-*: both adjacencies Full, two nexthops, 200 requests reach both
/// directors, then a director's routing daemon dies and the router drops
/// its nexthop within the dead interval.
fn classic(file: &str) {
    let mut lab = up(file);
    let cast = Cast::of(&lab).expect("cast");
    assert_eq!(cast.directors.len(), 2);

    let full = scenario::wait_full(&lab, &cast.router, 2, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ids: Vec<String> = full.iter().map(|n| n.router_id.to_string()).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["198.18.0.11", "198.18.0.12"],
        "the router's Full neighbours"
    );
    // Priority 0 directors never become DR or BDR.
    assert!(
        full.iter()
            .all(|n| matches!(n.role.as_deref(), Some("DROther" | "Other"))),
        "{full:?}"
    );

    let converged =
        scenario::wait_nexthops(&lab, &cast.router, cast.vip, 2, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
    let gateways = vip_gateways(&lab, &cast);
    assert_eq!(gateways, ["198.18.0.11", "198.18.0.12"]);
    println!(
        "{file}: ECMP route with 2 nexthops after {:.1} s more",
        converged.as_secs_f64()
    );

    let spread = lab
        .requests(&cast.client, scenario::spread_spec(cast.vip, 200))
        .expect("requests");
    println!("{file}: {}", spread.summary());
    assert_eq!(spread.sent, 200);
    assert_eq!(spread.ok, 200, "{}", spread.summary());
    for d in &cast.directors {
        let n = spread.per_server.get(d).copied().unwrap_or(0);
        assert!(n > 0, "director {d} got no request: {}", spread.summary());
    }

    // The classic blackhole: d2's HTTP server stopped while its routing
    // daemon keeps advertising the VIP. The router still splits flows over
    // both, so about half of the requests fail (binomial over 200 source
    // ports: 60-140 is more than eight standard deviations wide), every
    // answer comes from d1, and it lasts: nothing withdraws the route.
    lab.stop_http("d2").expect("stop d2's HTTP server");
    let blackhole = lab
        .requests(
            &cast.client,
            LoadSpec {
                count: 200,
                max_duration: Duration::from_secs(5),
                timeout: Duration::from_millis(100),
                interval: Duration::from_millis(5),
                ..scenario::spread_spec(cast.vip, 200)
            },
        )
        .expect("requests");
    println!(
        "{file}: d2's HTTP server stopped, routing daemon alive: {}",
        blackhole.summary()
    );
    assert_eq!(blackhole.sent, 200, "{}", blackhole.summary());
    assert!(
        (60..=140).contains(&blackhole.failed),
        "about half should fail: {}",
        blackhole.summary()
    );
    assert_eq!(
        blackhole.per_server.keys().collect::<Vec<_>>(),
        ["d1"],
        "{}",
        blackhole.summary()
    );
    assert_eq!(
        vip_gateways(&lab, &cast).len(),
        2,
        "the router still routes to d2"
    );
    lab.start_http("d2").expect("start d2's HTTP server");

    let dead = scenario::dead_interval(&lab, "d1");
    let f = scenario::routing_crash(&lab, &cast, "d1", dead + Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{file}: d1's routing daemon killed; the router dropped its nexthop after {:.2} s (dead interval {} s); {}",
        f.detection.as_secs_f64(),
        dead.as_secs(),
        f.load.summary()
    );
    // The router notices within the dead interval, plus SPF and FIB update.
    assert!(
        f.detection <= dead + Duration::from_millis(1500),
        "took {:?}",
        f.detection
    );
    let gateways = vip_gateways(&lab, &cast);
    assert_eq!(gateways, ["198.18.0.12"], "only d2 is left");

    let footprint = Footprint::of(&lab);
    assert!(!footprint.pids.is_empty(), "the lab ran processes");
    drop(lab);
    footprint.assert_gone();
}

#[test]
fn classic_frr() {
    classic("classic-frr.toml");
}

#[test]
fn classic_bird() {
    classic("classic-bird.toml");
}

#[test]
fn panic_tears_the_lab_down() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let lab = up("classic-frr.toml");
        tx.send(Footprint::of(&lab)).expect("send");
        panic!("deliberate panic with the lab up");
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    let footprint = rx.recv().expect("footprint");
    assert!(!footprint.pids.is_empty(), "the lab ran processes");
    footprint.assert_gone();
}

/// The lab's command line, `anycastd-lab`, built beside `anycastd`.
fn anycastd_lab(args: &[&str]) -> std::process::Output {
    Command::new(lab_binary())
        .args(args)
        .output()
        .expect("run anycastd-lab")
}

fn lab_binary() -> PathBuf {
    LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd"))
        .helper
        .expect("anycastd-lab path")
}

#[test]
fn cli_up_status_exec_down() {
    let name = format!("cli{}", std::process::id());
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/classic-bird.toml");
    let captures = std::env::temp_dir().join(format!("{name}-capture"));
    let out = anycastd_lab(&[
        "up",
        file.to_str().expect("path"),
        "--name",
        &name,
        "--capture",
        captures.to_str().expect("path"),
    ]);
    let guard = scopeguard(&name);
    assert!(
        out.status.success(),
        "lab up: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let lab = Lab::attach(&name).expect("attach");
    let cast = Cast::of(&lab).expect("cast");
    scenario::wait_nexthops(&lab, &cast.router, cast.vip, 2, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let footprint = Footprint::of(&lab);

    // `--capture DIR`: a pcap per OSPF interface, from before the daemons
    // started: each holds the adjacency's Database Description exchange.
    let mut pcaps: Vec<PathBuf> = std::fs::read_dir(&captures)
        .unwrap_or_else(|e| panic!("{}: {e}", captures.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    pcaps.sort();
    let names: Vec<String> = pcaps
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(
        ["d1-", "d2-", "r1-"]
            .iter()
            .all(|n| names.iter().any(|f| f.starts_with(n))),
        "captures: {names:?}"
    );
    for p in &pcaps {
        let out = Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(p)
            .output()
            .expect("tcpdump -r (apt-get install tcpdump)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("OSPFv2, Hello") && text.contains("OSPFv2, Database Description"),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "--capture: {} pcaps, each with Hellos and the DD exchange",
        pcaps.len()
    );
    let _ = std::fs::remove_dir_all(&captures);

    let out = anycastd_lab(&["status", &name]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("route 192.0.2.10/32 (bird, 2 nexthops)"),
        "status shows the ECMP route:\n{text}"
    );
    assert_eq!(
        text.matches(" Full ").count(),
        2,
        "status shows two Full neighbours:\n{text}"
    );

    let out = anycastd_lab(&["exec", &name, "d1", "--", "ip", "-br", "addr", "show", "lo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("192.0.2.10/32"),
        "exec in d1: {text}"
    );

    let out = anycastd_lab(&["down", &name]);
    assert!(
        out.status.success(),
        "down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    footprint.assert_gone();
    drop(guard);
    let out = anycastd_lab(&["down", &name]);
    assert!(!out.status.success(), "down of a lab that is not up fails");
}

/// Tears a CLI-made lab down if the test fails before `lab down`.
struct Scope(String);
fn scopeguard(name: &str) -> Scope {
    Scope(name.to_string())
}
impl Drop for Scope {
    fn drop(&mut self) {
        lab::teardown(&self.0);
    }
}

#[test]
fn cli_rejects_a_bad_topology_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("anycastd-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "name = \"bad\"\n[[node]]\nname = \"r\"\nrole = \"router\"\nimplementation = \"frr\"\n\
         [[link]]\na = { node = \"r\", addr = \"198.18.0.1/31\" }\nb = { node = \"x\", addr = \"198.18.0.0/31\" }\n",
    )
    .expect("write");
    let out = anycastd_lab(&["up", file.to_str().expect("path")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml:8:") && err.contains("unknown node x"),
        "error names file:line: {err}"
    );
    assert!(lab::netns::list("bad.").is_empty(), "nothing was built");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A demo stopped by `signal` while its lab is up tears the lab down
/// (namespaces and state) and exits 128 + the signal.
fn signalled_demo_cleans_up(signal: nix::sys::signal::Signal) {
    use std::io::{BufRead, BufReader};
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/classic-frr.toml");
    let mut child = Command::new(lab_binary())
        .args(["demo", file.to_str().expect("path")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let mut first = String::new();
    // Kept open so the demo never writes into a closed pipe.
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    reader.read_line(&mut first).expect("read");
    // "lab NAME: 4 nodes up; ..." — the lab is built, the demo is waiting.
    let name = first
        .split_whitespace()
        .nth(1)
        .expect("lab name")
        .trim_end_matches(':')
        .to_string();
    assert!(
        !lab::netns::list(&format!("{name}.")).is_empty(),
        "the demo's lab is up: {first}"
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).expect("signal");
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(128 + signal as i32),
        "exit status after {signal}"
    );
    assert!(
        lab::netns::list(&format!("{name}.")).is_empty(),
        "namespaces left after {signal}"
    );
    assert!(
        !Path::new(lab::STATE_ROOT).join(&name).exists(),
        "state left after {signal}"
    );
}

#[test]
fn interrupted_demo_cleans_up() {
    signalled_demo_cleans_up(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn terminated_demo_cleans_up() {
    signalled_demo_cleans_up(nix::sys::signal::Signal::SIGTERM);
}

/// Point-to-point /31 links with MD5 (to BIRD) and simple-password (to FRR)
/// authentication: both adjacencies Full, ECMP over two interfaces.
#[test]
fn p2p_links_with_authentication() {
    let lab = up("p2p-auth.toml");
    let cast = Cast::of(&lab).expect("cast");
    let full = scenario::wait_full(&lab, &cast.router, 2, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ifs: Vec<&str> = full.iter().map(|n| n.ifname.as_str()).collect();
    ifs.sort();
    assert_eq!(
        ifs,
        ["eth1", "eth2"],
        "one adjacency per p2p link: {full:?}"
    );
    // The BIRD director agrees from its side.
    let d1 = scenario::wait_full(&lab, "d1", 1, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d1[0].router_id.to_string(), "198.18.0.1");
    scenario::wait_nexthops(&lab, &cast.router, cast.vip, 2, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let route = lab
        .vip_route(&cast.router, cast.vip)
        .expect("FIB")
        .expect("route");
    let mut devs: Vec<&str> = route.nexthops.iter().map(|h| h.ifname.as_str()).collect();
    devs.sort();
    assert_eq!(devs, ["eth1", "eth2"]);
    let spread = lab
        .requests(&cast.client, scenario::spread_spec(cast.vip, 100))
        .expect("requests");
    println!("p2p-auth: {}", spread.summary());
    assert_eq!(spread.ok, 100, "{}", spread.summary());
    assert_eq!(
        spread.per_server.len(),
        2,
        "both directors answered: {}",
        spread.summary()
    );
}
