//! anycastd's OSPF authentication and MTU handling against FRR and BIRD:
//! adjacencies form with the right keys, fail with a counted reason with
//! the wrong ones; an MTU mismatch stops the exchange with a clear
//! diagnostic and mtu-ignore fixes it; keys roll over under client load
//! (MD5 with FRR on a LAN, MD5 and HMAC-SHA-256 with BIRD) without a
//! failed request or an adjacency leaving Full, and the capture shows each
//! side moving to the new Key ID when planned.
//!
//! Needs root, FRR, BIRD and tcpdump (the README's test command installs
//! them); a missing one fails the test, naming it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::scenario;
use lab::topology::{OspfAuth, OspfKey};
use lab::{FibChange, Lab, LabOptions, LoadReport, LoadSpec, Topology};
use serde_json::{json, Value};

fn up_text(file: &str, edit: impl Fn(String) -> String) -> Lab {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("topology");
    let topo =
        Topology::parse(&path.display().to_string(), &edit(text)).unwrap_or_else(|e| panic!("{e}"));
    let opts = LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd"));
    Lab::up_unique(topo, opts).unwrap_or_else(|e| panic!("lab up {file}: {e}"))
}

fn full_ids(lab: &Lab, node: &str, want: usize) -> Vec<String> {
    let full = scenario::wait_full(lab, node, want, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ids: Vec<String> = full.iter().map(|n| n.router_id.to_string()).collect();
    ids.sort();
    ids
}

fn dropped(lab: &Lab, node: &str) -> Value {
    let v = lab
        .anycastd(node)
        .request(&json!({"cmd": "show-counters"}))
        .expect("counters");
    v.get("dropped").cloned().unwrap_or(Value::Null)
}

fn count(v: &Value, reason: &str) -> u64 {
    v.get(reason).and_then(Value::as_u64).unwrap_or(0)
}

#[test]
fn simple_md5_and_hmac_sha256_with_frr_and_bird() {
    let lab = up_text("ospf-auth.toml", |t| t);
    // FRR: MD5 with d1, simple with d2.
    assert_eq!(full_ids(&lab, "r1", 2), ["198.18.0.11", "198.18.0.12"]);
    // BIRD: HMAC-SHA-256 with d1, MD5 with d2, simple with d3.
    assert_eq!(
        full_ids(&lab, "r2", 3),
        ["198.18.0.11", "198.18.0.12", "198.18.0.13"]
    );
    let vip = "192.0.2.40".parse().expect("ip");
    scenario::wait_nexthops(&lab, "r1", vip, 2, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("r1: {e}"));
    scenario::wait_nexthops(&lab, "r2", vip, 3, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("r2: {e}"));
    for d in ["d1", "d2", "d3"] {
        let c = dropped(&lab, d);
        for reason in [
            "digest-mismatch",
            "bad-password",
            "autype-mismatch",
            "unknown-key",
        ] {
            assert_eq!(
                count(&c, reason),
                0,
                "{d} dropped packets for {reason}: {c}"
            );
        }
    }
}

#[test]
fn wrong_keys_give_no_adjacency_and_a_reason() {
    // The directors' side of two links gets a wrong key: MD5 with FRR
    // (d1) and HMAC-SHA-256 with BIRD (d1), simple with FRR (d2).
    let lab = up_text("ospf-auth.toml", |t| {
        t.replace(
            "b = { node = \"d1\", addr = \"198.18.2.1/31\", ospf = { auth = { type = \"md5\", key_id = 7, key = \"lab-md5-key\" } } }",
            "b = { node = \"d1\", addr = \"198.18.2.1/31\", ospf = { auth = { type = \"md5\", key_id = 7, key = \"wrong\" } } }",
        )
        .replace(
            "b = { node = \"d1\", addr = \"198.18.3.1/31\", ospf = { auth = { type = \"hmac-sha256\", key_id = 3, key = \"lab-hmac-sha256-key\" } } }",
            "b = { node = \"d1\", addr = \"198.18.3.1/31\", ospf = { auth = { type = \"hmac-sha256\", key_id = 3, key = \"wrong\" } } }",
        )
        .replace(
            "b = { node = \"d2\", addr = \"198.18.2.3/31\", ospf = { auth = { type = \"simple\", key = \"labpass\" } } }",
            "b = { node = \"d2\", addr = \"198.18.2.3/31\", ospf = { auth = { type = \"simple\", key = \"wrong\" } } }",
        )
    });
    // The links with the right keys still come up (d2 and d3 with BIRD)...
    assert_eq!(full_ids(&lab, "r2", 2), ["198.18.0.12", "198.18.0.13"]);
    // ...while nothing reaches Full over the wrong ones, on either side.
    std::thread::sleep(Duration::from_secs(5));
    let r1 = lab.ospf_neighbors("r1").expect("r1 neighbours");
    assert!(
        r1.iter().all(|n| n.state != "Full"),
        "FRR accepted a wrong key: {r1:?}"
    );
    let r2 = lab.ospf_neighbors("r2").expect("r2 neighbours");
    assert!(
        !r2.iter()
            .any(|n| n.router_id.to_string() == "198.18.0.11" && n.state == "Full"),
        "{r2:?}"
    );
    let d1 = dropped(&lab, "d1");
    assert!(
        count(&d1, "digest-mismatch") > 0,
        "d1 counts the MD5/HMAC digest mismatches: {d1}"
    );
    let d2 = dropped(&lab, "d2");
    assert!(
        count(&d2, "bad-password") > 0,
        "d2 counts the wrong password: {d2}"
    );
    println!("drops on d1: {d1}; on d2: {d2}");
    // The control: r1's list was empty for want of the right key, not for
    // want of a listener. d1 restarted with the right MD5 key is Full with
    // the same r1.
    let mut lab = lab;
    let wrong = lab.anycastd_generated_config("d1").expect("config");
    let right = wrong.replace(
        "type = \"md5\", key_id = 7, key = \"wrong\"",
        "type = \"md5\", key_id = 7, key = \"lab-md5-key\"",
    );
    assert_ne!(right, wrong, "d1's config has no wrong MD5 key:\n{wrong}");
    lab.write_anycastd_config("d1", &right).expect("write");
    lab.signal_anycastd("d1", lab::Signal::SIGTERM)
        .expect("SIGTERM");
    lab.wait_anycastd_exit("d1", Duration::from_secs(10))
        .expect("d1 exits");
    lab.restart_anycastd("d1").expect("restart d1");
    assert_eq!(full_ids(&lab, "r1", 1), ["198.18.0.11"]);
}

#[test]
fn mtu_mismatch_stalls_and_mtu_ignore_fixes_it() {
    let lab = up_text("ospf-mtu.toml", |t| t);
    std::thread::sleep(Duration::from_secs(8));
    // r1 (MTU 1400) refuses our DDs advertising 1500; we refuse r2's 1500.
    for r in ["r1", "r2"] {
        let ns = lab.ospf_neighbors(r).expect("neighbours");
        assert!(
            !ns.is_empty()
                && ns
                    .iter()
                    .all(|n| matches!(n.state.as_str(), "ExStart" | "Exchange")),
            "{r} should be stuck in ExStart/Exchange: {ns:?}"
        );
    }
    let d1 = dropped(&lab, "d1");
    assert!(
        count(&d1, "mtu-mismatch") > 0,
        "the director says why: {d1}"
    );
    let mine = lab.ospf_neighbors("d1").expect("d1 neighbours");
    assert!(mine.iter().all(|n| n.state != "Full"), "{mine:?}");
    drop(lab);

    let lab = up_text("ospf-mtu.toml", |t| {
        t.replace("mtu_ignore = false", "mtu_ignore = true")
    });
    assert_eq!(
        full_ids(&lab, "r1", 1),
        ["198.18.0.11"],
        "mtu-ignore on FRR fixes it"
    );
    assert_eq!(
        full_ids(&lab, "r2", 1),
        ["198.18.0.11"],
        "mtu_ignore on anycastd fixes it"
    );
}

#[test]
fn check_config_warns_about_unauthenticated_lans_and_key_gaps_and_exits_0() {
    let dir = Scratch::new("check-config-warnings");
    std::fs::create_dir_all(&dir.0).expect("dir");
    let file = dir.0.join("anycastd.toml");
    std::fs::write(
        &file,
        "router_id = \"198.18.0.11\"\n[ospf]\n\
         [[ospf.interface]]\nname = \"eth0\"\n\
         [[ospf.interface]]\nname = \"eth1\"\nnetwork = \"point-to-point\"\n\
         [[ospf.interface]]\nname = \"eth2\"\n\
         auth = { type = \"md5\", keys = [\n\
         { key_id = 1, key = \"a\", send_until = 2099-01-01T00:00:00Z },\n\
         { key_id = 2, key = \"b\", send_from = 2099-01-02T00:00:00Z } ] }\n\
         [[vip]]\naddress = \"192.0.2.1\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .arg("check-config")
        .arg("--no-interface-check")
        .arg(&file)
        .output()
        .expect("run check-config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert!(out.status.success(), "exit {}: {stderr}", out.status);
    assert!(stdout.contains("ospf interface eth0"), "{stdout}");
    let f = file.display();
    let lan = format!("{f}:3:1: warning: ospf interface eth0 is on a broadcast network without authentication: any host on that LAN can send OSPF packets with any source address");
    assert!(stderr.contains(&lan), "{stderr}");
    assert!(
        !stderr.contains("interface eth1"),
        "no warning for a point-to-point link: {stderr}"
    );
    let gap = format!("{f}:10:8: warning: ospf interface eth2: no key may send from 2099-01-01T00:00:00Z until 2099-01-02T00:00:00Z; meanwhile key_id 1 keeps signing");
    assert!(stderr.contains(&gap), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    // The plan shows the keys' windows, never their secrets.
    assert!(
        stdout.contains("key 1 keyed-md5 send ..2099-01-01T00:00:00Z accept always; key 2 keyed-md5 send 2099-01-02T00:00:00Z.. accept always"),
        "{stdout}"
    );
}

// ----- key rollover under load ------------------------------------------

/// A capture directory of this process, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("anycastd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn up_capturing(file: &str, capture: &Path) -> Lab {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(file);
    let topo = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = LabOptions {
        capture: Some(capture.to_path_buf()),
        ..LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd"))
    };
    Lab::up_unique(topo, opts).unwrap_or_else(|e| panic!("lab up {file}: {e}"))
}

/// 50 requests a second to the VIP, each on a new connection with a
/// 300 ms budget, until stopped.
fn rollover_load(vip: Ipv4Addr) -> LoadSpec {
    LoadSpec {
        target: SocketAddr::from((vip, 80)),
        count: 100_000,
        max_duration: Duration::from_secs(60),
        timeout: Duration::from_millis(300),
        interval: Duration::from_millis(20),
    }
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn at_second(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Sleeps until the wall clock reads `t` (at once if it has).
fn sleep_until(t: SystemTime) {
    if let Ok(d) = t.duration_since(SystemTime::now()) {
        std::thread::sleep(d);
    }
}

/// The router's neighbour view, read every 100 ms on a thread until
/// stopped: each sample is the number of neighbours in state Full, or the
/// error reading them.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Result<usize, String>>>>,
}

impl Sampler {
    fn start(
        read: impl Fn() -> std::io::Result<Vec<lab::OspfNeighbor>> + Send + 'static,
    ) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            // Bounded: at most 10 minutes of samples.
            for _ in 0..6000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let next = Instant::now() + Duration::from_millis(100);
                samples.push(
                    read()
                        .map(|ns| ns.iter().filter(|n| n.state == "Full").count())
                        .map_err(|e| e.to_string()),
                );
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            samples
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<Result<usize, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Every OSPF packet of a capture: (time, sender's router ID, Key ID).
fn keyed_packets(path: &Path) -> Vec<(SystemTime, Ipv4Addr, Option<u8>)> {
    scenario::ospf_packets(path)
        .unwrap_or_else(|| panic!("no OSPF capture at {}", path.display()))
        .into_iter()
        .map(|(t, p)| (t, p.router_id, p.cryptographic_auth().map(|a| a.key_id)))
        .collect()
}

/// When `sender` last signed with `old` and first with `new`, in a capture.
fn switch_of(
    packets: &[(SystemTime, Ipv4Addr, Option<u8>)],
    sender: Ipv4Addr,
    old: u8,
    new: u8,
) -> (Option<SystemTime>, Option<SystemTime>) {
    let of = |key| {
        packets
            .iter()
            .filter(move |(_, s, k)| *s == sender && *k == Some(key))
    };
    (of(old).map(|p| p.0).max(), of(new).map(|p| p.0).min())
}

/// A topology whose OSPF interfaces on `node` (those `pick` selects by
/// interface name) carry `auth`.
fn with_auth(topo: &Topology, node: &str, pick: &dyn Fn(&str) -> Option<OspfAuth>) -> Topology {
    let mut t = topo.clone();
    let ends = t
        .links
        .iter_mut()
        .flatten()
        .chain(t.lans.iter_mut().flat_map(|l| l.members.iter_mut()));
    for e in ends.filter(|e| e.node == node) {
        if let (Some(o), Some(a)) = (e.ospf.as_mut(), pick(&e.ifname)) {
            o.auth = Some(a);
        }
    }
    t
}

fn key(id: u8, secret: &str) -> OspfKey {
    OspfKey::new(id, secret)
}

/// Writes the config `topo` gives director `d` and reloads it; the reply
/// must say the keys of `ifname` were applied and nothing needs a restart.
fn reload_keys(lab: &Lab, topo: &Topology, d: &str, ifname: &str) {
    let node = topo.node(d).expect("director");
    let text = lab.anycastd(d).config(topo, node);
    lab.write_anycastd_config(d, &text)
        .unwrap_or_else(|e| panic!("{e}"));
    let reply = lab
        .anycastd(d)
        .reload()
        .unwrap_or_else(|e| panic!("{d} reload: {e}"));
    assert_eq!(reply["ospf_keys_applied"], json!([ifname]), "{d}: {reply}");
    let notes = reply["notes"].to_string();
    assert!(
        notes.contains(&format!("OSPF keys applied on {ifname} (adjacencies kept)")),
        "{d}: {reply}"
    );
    assert!(!notes.contains("restart"), "{d}: {reply}");
}

/// The drop reasons that would mean a director refused a key.
const AUTH_DROPS: [&str; 7] = [
    "unknown-key",
    "key-not-accepted",
    "digest-mismatch",
    "bad-digest-length",
    "autype-mismatch",
    "seq-regressed",
    "tx-key-expired",
];

/// What a rollover test saw while it ran: the load's report, the
/// router's neighbour samples and the VIP route's changes.
struct Observed {
    report: LoadReport,
    samples: Vec<Result<usize, String>>,
    fib: Vec<FibChange>,
}

/// The common end of both rollover tests: every request answered, every
/// adjacency Full in every sample, the VIP's nexthops never fewer, no
/// director refused a packet for its key.
fn assert_hitless(
    what: &str,
    seen: &Observed,
    adjacencies: usize,
    nexthops: usize,
    lab: &Lab,
    directors: &[&str],
) {
    let Observed {
        report,
        samples,
        fib,
    } = seen;
    let readable: Vec<usize> = samples.iter().filter_map(|s| s.clone().ok()).collect();
    let unreadable: Vec<&String> = samples.iter().filter_map(|s| s.as_ref().err()).collect();
    let min_full = readable.iter().copied().min().unwrap_or(0);
    println!(
        "{what}: requests {}; adjacency samples {} (every 100 ms), Full neighbours min {min_full} of {adjacencies}, unreadable {}; FIB changes of the VIP {}",
        report.summary(),
        samples.len(),
        unreadable.len(),
        fib.len().saturating_sub(1)
    );
    assert!(
        report.sent >= 200,
        "{what}: too little load: {}",
        report.summary()
    );
    assert_eq!(report.failed, 0, "{what}: {}", report.summary());
    assert!(
        samples.len() >= 50,
        "{what}: only {} samples",
        samples.len()
    );
    assert!(
        unreadable.is_empty(),
        "{what}: unreadable samples {unreadable:?}"
    );
    assert_eq!(min_full, adjacencies, "{what}: an adjacency left Full");
    for c in fib {
        assert_eq!(
            c.nexthops.len(),
            nexthops,
            "{what}: the VIP's route changed to {:?}",
            c.gateways()
        );
    }
    for d in directors {
        let c = dropped(lab, d);
        for reason in AUTH_DROPS {
            assert_eq!(count(&c, reason), 0, "{what}: {d} counted {reason}: {c}");
        }
    }
}

#[test]
fn md5_key_rollover_with_frr_on_a_lan_under_load() {
    let what = "FRR LAN, MD5";
    let scratch = Scratch::new("keys-frr");
    let lab = up_capturing("key-rollover-frr.toml", &scratch.0);
    let vip: Ipv4Addr = "192.0.2.50".parse().expect("ip");
    let directors = ["d1", "d2", "d3"];
    let router_id: Ipv4Addr = "198.18.0.1".parse().expect("ip");
    let r1_if = lab
        .topology
        .interfaces("r1")
        .find(|e| e.ospf.is_some())
        .map(|e| e.ifname.clone())
        .expect("r1's LAN interface");
    assert_eq!(full_ids(&lab, "r1", 3).len(), 3);
    scenario::wait_nexthops(&lab, "r1", vip, 3, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));

    let load = lab.start_load("c1", rollover_load(vip)).expect("load");
    let fib = lab
        .watch_vip("r1", vip, Duration::from_millis(10))
        .expect("watch");
    let frr = lab.frr("r1");
    let sampler = Sampler::start(move || frr.neighbors());
    std::thread::sleep(Duration::from_secs(1));

    // 1. The directors accept key 2 at once and send with it from `switch`;
    //    key 1 is accepted until two seconds after.
    let switch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3;
    let rollover = OspfAuth::Md5 {
        keys: vec![
            OspfKey {
                send_until: Some(switch),
                accept_until: Some(switch + 2),
                ..key(1, "rollover-one")
            },
            OspfKey {
                send_from: Some(switch),
                ..key(2, "rollover-two")
            },
        ],
    };
    let mut topo = lab.topology.clone();
    for d in directors {
        topo = with_auth(&topo, d, &|_| Some(rollover.clone()));
    }
    for d in directors {
        reload_keys(&lab, &topo, d, "eth0");
    }
    // 2. FRR gets key 2 just before: it signs with it at once and, being
    //    FRR 8.4, accepts only that Key ID from then on, so the directors'
    //    key-1 packets are refused until their window moves them.
    sleep_until(at_second(switch) - Duration::from_millis(250));
    let frr_added = SystemTime::now();
    lab.frr("r1")
        .set_message_digest_key(&r1_if, 2, Some("rollover-two"))
        .unwrap_or_else(|e| panic!("{e}"));
    let frr_has_key_2 = SystemTime::now();
    // 3. Every director signs with key 2 (the capture shows it).
    let capture = scratch.0.join(format!("r1-{r1_if}.pcap"));
    let all_moved = lab::wait_for(Duration::from_secs(6), Duration::from_millis(100), || {
        let packets = keyed_packets(&capture);
        directors
            .iter()
            .enumerate()
            .all(|(i, _)| {
                let id = Ipv4Addr::new(198, 18, 0, 11 + u8::try_from(i).expect("small"));
                switch_of(&packets, id, 1, 2).1.is_some()
            })
            .then_some(())
    });
    assert!(
        all_moved.is_some(),
        "{what}: not every director moved to key 2"
    );
    // 4. Key 1 goes on both sides.
    std::thread::sleep(Duration::from_millis(500));
    let removed = SystemTime::now();
    lab.frr("r1")
        .set_message_digest_key(&r1_if, 1, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let only_two = OspfAuth::Md5 {
        keys: vec![key(2, "rollover-two")],
    };
    let mut topo = lab.topology.clone();
    for d in directors {
        topo = with_auth(&topo, d, &|_| Some(only_two.clone()));
    }
    for d in directors {
        reload_keys(&lab, &topo, d, "eth0");
    }
    std::thread::sleep(Duration::from_secs(2));
    let end = SystemTime::now();

    let seen = Observed {
        samples: sampler.stop(),
        report: load.stop().expect("load report"),
        fib: fib.changes(),
    };

    // The switch-over, from the capture on r1's LAN interface.
    let packets = keyed_packets(&capture);
    let t0 = unix_secs(at_second(switch));
    let rel = |t: Option<SystemTime>| {
        t.map_or("never".into(), |t| format!("{:+.3} s", unix_secs(t) - t0))
    };
    let (r_last1, r_first2) = switch_of(&packets, router_id, 1, 2);
    println!(
        "{what}: FRR got key 2 at {} and signed with it from {} (last key 1 {}); planned director switch at {switch} (0)",
        rel(Some(frr_added)),
        rel(r_first2),
        rel(r_last1)
    );
    assert!(
        r_first2.is_some_and(|t| t >= frr_added),
        "{what}: FRR never signed with key 2 after getting it"
    );
    assert!(
        r_last1.is_some_and(|t| t < frr_has_key_2 + Duration::from_millis(50)),
        "{what}: FRR signed with key 1 at {} after getting key 2",
        rel(r_last1)
    );
    let mut refused = 0;
    let mut refusing = Duration::ZERO;
    for (i, d) in directors.iter().enumerate() {
        let id = Ipv4Addr::new(198, 18, 0, 11 + u8::try_from(i).expect("small"));
        let (last1, first2) = switch_of(&packets, id, 1, 2);
        refused += packets
            .iter()
            .filter(|(t, s, k)| *s == id && *k == Some(1) && *t > frr_has_key_2)
            .count();
        if let Some(Ok(d)) = first2.map(|t| t.duration_since(frr_has_key_2)) {
            refusing = refusing.max(d);
        }
        println!(
            "{what}: {d} signed with key 1 until {}, with key 2 from {}",
            rel(last1),
            rel(first2)
        );
        // Its window: key 2 from `switch`, seen by the daemon's clock (its
        // wall clock at start plus whole seconds since, up to 1 s late).
        assert!(
            first2.is_some_and(|t| t >= at_second(switch)),
            "{what}: {d} sent key 2 at {} before its window",
            rel(first2)
        );
        assert!(
            last1.is_some_and(|t| t < at_second(switch + 1) + Duration::from_millis(50)),
            "{what}: {d} sent key 1 at {}, after its window",
            rel(last1)
        );
    }
    println!(
        "{what}: r1 refused {refused} director packets signed with key 1 after its own switch, for up to {:.2} s until the last director's first key-2 packet (FRR 8.4 accepts its newest Key ID only; dead interval 4 s)",
        refusing.as_secs_f64()
    );
    // After key 1 was removed, only key 2 anywhere on the LAN.
    let late: Vec<_> = packets
        .iter()
        .filter(|(t, _, k)| *t > removed && *k != Some(2))
        .collect();
    assert!(
        late.is_empty(),
        "{what}: packets without key 2 after the removal: {late:?}"
    );
    let tail = packets
        .iter()
        .filter(|(t, _, _)| *t > removed && *t < end)
        .count();
    assert!(
        tail >= 4,
        "{what}: only {tail} packets captured after the removal"
    );

    assert_hitless(what, &seen, 3, 3, &lab, &directors);
}

#[test]
fn md5_and_hmac_sha256_key_rollovers_with_bird_under_load() {
    let what = "BIRD p2p, MD5 (d1) and HMAC-SHA-256 (d2)";
    let scratch = Scratch::new("keys-bird");
    let lab = up_capturing("key-rollover-bird.toml", &scratch.0);
    let vip: Ipv4Addr = "192.0.2.51".parse().expect("ip");
    let directors = ["d1", "d2"];
    assert_eq!(full_ids(&lab, "r1", 2).len(), 2);
    scenario::wait_nexthops(&lab, "r1", vip, 2, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));

    let load = lab.start_load("c1", rollover_load(vip)).expect("load");
    let fib = lab
        .watch_vip("r1", vip, Duration::from_millis(10))
        .expect("watch");
    let bird = lab.bird("r1");
    let sampler = Sampler::start(move || bird.neighbors());
    std::thread::sleep(Duration::from_secs(1));

    // BIRD sends key 2 from `bird_switch`, the directors from
    // `director_switch`; nobody accepts key 1 from `retire` on.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let bird_switch = now + 3;
    let director_switch = bird_switch + 2;
    let retire = director_switch + 2;
    // The link's keys: MD5 towards d1, HMAC-SHA-256 towards d2.
    let link_keys = |md5: bool, keys: Vec<OspfKey>| {
        if md5 {
            OspfAuth::Md5 { keys }
        } else {
            OspfAuth::HmacSha256 { keys }
        }
    };
    let secrets = |md5: bool| {
        if md5 {
            ("rollover-md5-1", "rollover-md5-2")
        } else {
            ("rollover-sha-1", "rollover-sha-2")
        }
    };
    let windows = |md5: bool, switch: u64| {
        let (one, two) = secrets(md5);
        link_keys(
            md5,
            vec![
                OspfKey {
                    send_until: Some(switch),
                    accept_until: Some(retire),
                    ..key(1, one)
                },
                OspfKey {
                    send_from: Some(switch),
                    ..key(2, two)
                },
            ],
        )
    };
    // r1's interface towards d1 is the MD5 one.
    let towards_d1 = lab
        .topology
        .interfaces("r1")
        .find(|e| e.addr.ip() == Ipv4Addr::new(198, 18, 2, 0))
        .map(|e| e.ifname.clone())
        .expect("r1 towards d1");
    let topo = with_auth(&lab.topology, "r1", &|ifname| {
        Some(windows(ifname == towards_d1, bird_switch))
    });
    let topo = with_auth(&topo, "d1", &|_| Some(windows(true, director_switch)));
    let topo = with_auth(&topo, "d2", &|_| Some(windows(false, director_switch)));
    lab.bird("r1")
        .configure(&topo, topo.node("r1").expect("r1"))
        .unwrap_or_else(|e| panic!("{e}"));
    for d in directors {
        reload_keys(&lab, &topo, d, "eth0");
    }
    sleep_until(at_second(retire) + Duration::from_millis(1500));
    // Key 1 goes from both configurations.
    let removed = SystemTime::now();
    let only_two = |md5: bool| link_keys(md5, vec![key(2, secrets(md5).1)]);
    let topo = with_auth(&lab.topology, "r1", &|ifname| {
        Some(only_two(ifname == towards_d1))
    });
    let topo = with_auth(&topo, "d1", &|_| Some(only_two(true)));
    let topo = with_auth(&topo, "d2", &|_| Some(only_two(false)));
    lab.bird("r1")
        .configure(&topo, topo.node("r1").expect("r1"))
        .unwrap_or_else(|e| panic!("{e}"));
    for d in directors {
        reload_keys(&lab, &topo, d, "eth0");
    }
    std::thread::sleep(Duration::from_secs(2));

    let seen = Observed {
        samples: sampler.stop(),
        report: load.stop().expect("load report"),
        fib: fib.changes(),
    };

    let router_id: Ipv4Addr = "198.18.0.1".parse().expect("ip");
    let t0 = unix_secs(at_second(bird_switch));
    let rel = |t: Option<SystemTime>| {
        t.map_or("never".into(), |t| format!("{:+.3} s", unix_secs(t) - t0))
    };
    for (d, octet) in [("d1", 11u8), ("d2", 12)] {
        let ifname = lab
            .topology
            .interfaces("r1")
            .find(|e| e.addr.ip() == Ipv4Addr::new(198, 18, 2, if d == "d1" { 0 } else { 2 }))
            .map(|e| e.ifname.clone())
            .expect("r1's link");
        let packets = keyed_packets(&scratch.0.join(format!("r1-{ifname}.pcap")));
        let id = Ipv4Addr::new(198, 18, 0, octet);
        let (r_last1, r_first2) = switch_of(&packets, router_id, 1, 2);
        let (d_last1, d_first2) = switch_of(&packets, id, 1, 2);
        println!(
            "{what}: link to {d}: BIRD key 1 until {}, key 2 from {} (planned 0); {d} key 1 until {}, key 2 from {} (planned +{} s); key 1 accepted until +{} s",
            rel(r_last1),
            rel(r_first2),
            rel(d_last1),
            rel(d_first2),
            director_switch - bird_switch,
            retire - bird_switch
        );
        // BIRD's windows are exact; the director's clock may be up to a
        // second late (its wall clock at start plus whole seconds since).
        assert!(
            r_first2.is_some_and(|t| t >= at_second(bird_switch)),
            "{what}: {d}: BIRD key 2 early"
        );
        assert!(
            r_last1.is_some_and(|t| t < at_second(bird_switch) + Duration::from_millis(50)),
            "{what}: {d}: BIRD key 1 late at {}",
            rel(r_last1)
        );
        assert!(
            d_first2.is_some_and(|t| t >= at_second(director_switch)),
            "{what}: {d} key 2 early"
        );
        assert!(
            d_last1.is_some_and(|t| t < at_second(director_switch + 1) + Duration::from_millis(50)),
            "{what}: {d} key 1 late at {}",
            rel(d_last1)
        );
        let late: Vec<_> = packets
            .iter()
            .filter(|(t, _, k)| {
                *t > at_second(director_switch + 1) + Duration::from_millis(50) && *k != Some(2)
            })
            .collect();
        assert!(
            late.is_empty(),
            "{what}: {d}: packets without key 2 after both switched: {late:?}"
        );
        let after = packets.iter().filter(|(t, _, _)| *t > removed).count();
        assert!(
            after >= 2,
            "{what}: {d}: only {after} packets after the removal"
        );
    }
    assert_hitless(what, &seen, 2, 2, &lab, &directors);
}
