//! Issue 4's end-to-end check (topologies/dr-ipvs.toml): client -> FRR
//! router -> two anycastd IPVS directors (VIP on lo, `mh`, direct routing)
//! -> three real servers (VIP on lo, ARP kept quiet). Requests succeed and
//! are answered by the real servers, never by a director, and no reply
//! packet passes a director (IPVS counts packets in, none out); both directors
//! hold the same table (same fingerprint), so a flow moved from one to the
//! other by the router lands on the same server; a failed server goes to
//! weight 0 on both and requests keep succeeding.
//!
//! It needs a kernel with IPVS. On a kernel without one (this project's
//! machines) the test runs itself again inside the lab's VM, whose kernel
//! has it, and reports what the inner run printed. Missing root, FRR or
//! qemu fail the test with what is missing.

use std::path::Path;
use std::time::{Duration, Instant};

use std::net::{SocketAddr, TcpStream};

use lab::scenario::{self, Cast};
use lab::{Lab, LabOptions, Topology};

/// Set inside the VM: run the scenario here.
const INNER: &str = "ANYCASTD_DR_IPVS_INNER";

#[test]
fn dr_ipvs() {
    lab::vm::run_here_or_in_vm(
        "dr_ipvs",
        INNER,
        Duration::from_secs(420),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "dr_ipvs: passed",
        scenario_here,
    );
}

fn anycastd_in(lab: &Lab, node: &str, args: &[&str]) -> String {
    let out = lab
        .command(node, env!("CARGO_BIN_EXE_anycastd"))
        .expect("command in node")
        .args(args)
        .output()
        .expect("run anycastd");
    assert!(
        out.status.success(),
        "{node}: anycastd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A director's service: its fingerprint and its servers' weights.
fn fingerprint(lab: &Lab, node: &str) -> (String, Vec<(String, u64)>) {
    let json = anycastd_in(lab, node, &["ipvs", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("ipvs show --json");
    let s = &v[0];
    let servers = s["servers"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["address"].as_str().unwrap_or_default().to_string(),
                        x["weight"].as_u64().unwrap_or(u64::MAX),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (
        s["fingerprint"].as_str().unwrap_or_default().to_string(),
        servers,
    )
}

fn scenario_here() {
    let t0 = Instant::now();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/dr-ipvs.toml");
    let topo = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd"));
    let mut lab = Lab::up_unique(topo, opts).unwrap_or_else(|e| panic!("lab up: {e}"));
    let cast = Cast::of(&lab).expect("cast");
    let vip = cast.vip;
    scenario::wait_full(&lab, &cast.router, 2, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    scenario::wait_nexthops(&lab, &cast.router, vip, 2, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "r1's route to {vip} has 2 nexthops (d1, d2) {:.1} s after the test started",
        t0.elapsed().as_secs_f64()
    );

    // Requests go through the directors and are answered by the servers.
    let spread = lab
        .requests(&cast.client, scenario::spread_spec(vip, 150))
        .expect("requests");
    println!("150 requests: {}", spread.summary());
    assert_eq!(spread.ok, 150, "{}", spread.summary());
    for s in ["s1", "s2", "s3"] {
        assert!(
            spread.per_server.get(s).copied().unwrap_or(0) > 0,
            "{s} answered nothing: {}",
            spread.summary()
        );
    }
    assert!(
        !spread.per_server.contains_key("d1") && !spread.per_server.contains_key("d2"),
        "a director answered itself: {}",
        spread.summary()
    );

    // Both directors hold the same table (configured in different orders).
    let (f1, t1) = fingerprint(&lab, "d1");
    let (f2, t2) = fingerprint(&lab, "d2");
    println!("fingerprints: d1 {f1}, d2 {f2}");
    assert!(!f1.is_empty());
    assert_eq!(f1, f2, "d1 {t1:?}\nd2 {t2:?}");
    // Both directors scheduled some of those connections (ECMP).
    for d in ["d1", "d2"] {
        let out = lab
            .command(d, "ipvsadm")
            .expect("ipvsadm")
            .args(["-Ln", "--stats"])
            .output()
            .expect("ipvsadm");
        let text = String::from_utf8_lossy(&out.stdout);
        // TCP VIP:PORT Conns InPkts OutPkts InBytes OutBytes
        let field = |i: usize| -> u64 {
            text.lines()
                .find(|l| l.starts_with("TCP"))
                .and_then(|l| l.split_whitespace().nth(i))
                .and_then(|c| c.parse().ok())
                .unwrap_or(u64::MAX)
        };
        let (conns, in_pkts, out_pkts) = (field(2), field(3), field(4));
        println!("{d}: {conns} connections scheduled, {in_pkts} packets in, {out_pkts} out");
        assert!(
            conns > 0 && conns != u64::MAX,
            "{d} scheduled nothing:\n{text}"
        );
        // Direct routing: the replies go from the servers to the router,
        // never back through a director.
        assert!(in_pkts > 0 && in_pkts != u64::MAX, "{text}");
        assert_eq!(out_pkts, 0, "{d} saw reply packets:\n{text}");
    }

    // A long-lived connection survives anycastd restarting on both
    // directors, one after the other: the table stays, and while one is
    // away the router moves the flow to the other, whose `mh` picks the
    // same server (sloppy TCP takes the flow mid-stream).
    // One request every 300 ms on the same connection, all through the
    // restarts (the test servers close connections idle for long).
    let (first_tx, first_rx) = std::sync::mpsc::channel::<String>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_conn = stop.clone();
    let conn = lab::netns::spawn_in(&lab.ns_path(&cast.client), move || {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::from((vip, 80)), Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut answers = vec![(Instant::now(), lab::traffic::ask_keepalive(&mut s)?)];
        let _ = first_tx.send(answers[0].1.clone());
        while !stop_conn.load(std::sync::atomic::Ordering::Relaxed) && answers.len() < 1000 {
            std::thread::sleep(Duration::from_millis(300));
            let who = lab::traffic::ask_keepalive(&mut s)?;
            answers.push((Instant::now(), who));
        }
        Ok(answers)
    })
    .expect("client thread");
    let first = first_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("first answer on the long-lived connection");
    let restarts_began = Instant::now();
    for d in ["d1", "d2"] {
        lab.signal_anycastd(d, lab::Signal::SIGTERM)
            .expect("SIGTERM");
        lab.wait_anycastd_exit(d, Duration::from_secs(20))
            .expect("exit");
        lab.restart_anycastd(d).expect("restart");
        scenario::wait_nexthops(&lab, &cast.router, vip, 2, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{d} back: {e}"));
    }
    let restarts_ended = Instant::now();
    // One more answer after both are back.
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = conn
        .join()
        .expect("client thread")
        .expect("the long-lived connection survived");
    // Every request on the connection answered, one every 300 ms from
    // before the first restart to after the second: the longest gap
    // between two answers is the 300 ms pause plus at most one TCP
    // retransmission (a segment lost while the router moved the flow) and
    // TCG's slowness.
    let longest = answers
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    println!(
        "long-lived connection: {} requests over {:.1} s while anycastd restarted on d1 then d2 \
         ({:.1} s), all answered by {first}; longest gap between answers {:.0} ms",
        answers.len(),
        (answers[answers.len() - 1].0 - answers[0].0).as_secs_f64(),
        (restarts_ended - restarts_began).as_secs_f64(),
        longest.as_secs_f64() * 1000.0
    );
    assert!(
        answers[0].0 < restarts_began && answers[answers.len() - 1].0 > restarts_ended,
        "the connection's answers do not span both restarts"
    );
    assert!(
        longest < Duration::from_millis(2500),
        "a request on the long-lived connection waited {longest:?}"
    );
    assert!(
        answers.iter().all(|(_, a)| *a == first),
        "{:?}",
        answers.iter().map(|(_, a)| a).collect::<Vec<_>>()
    );

    // A drain waits for the VIP's IPVS connections: a keep-alive
    // connection held open through one director keeps that director's
    // drain from finishing until its deadline (2 s), which says so
    // (exit 3).
    let held = lab::netns::run_in(&lab.ns_path(&cast.client), move || {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::from((vip, 80)), Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        lab::traffic::ask_keepalive(&mut s)?;
        Ok(s)
    })
    .expect("a keep-alive connection");
    let port = held.local_addr().expect("local address").port();
    let through: Vec<&str> = ["d1", "d2"]
        .into_iter()
        .filter(|d| {
            lab.output(d, "ipvsadm", &["-Lnc"])
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("ESTABLISHED") && l.contains(&format!(":{port} ")))
        })
        .collect();
    assert_eq!(
        through.len(),
        1,
        "the connection's IPVS entry on {through:?}"
    );
    let d = through[0];
    let sock = lab.anycastd(d).socket();
    let started = Instant::now();
    let out = lab
        .command(d, env!("CARGO_BIN_EXE_anycastd"))
        .expect("command")
        .args(["drain", &vip.to_string(), "--socket"])
        .arg(&sock)
        .output()
        .expect("anycastd drain");
    let waited = started.elapsed();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    println!(
        "drain of {d} with an IPVS connection held: exit {:?} after {:.1} s: {}",
        out.status.code(),
        waited.as_secs_f64(),
        said.trim()
    );
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("connections left"), "{said}");
    assert!(
        waited >= Duration::from_secs(2),
        "returned after {waited:?}"
    );
    drop(held);
    lab.anycastd(d).undrain(Some(vip)).expect("undrain");
    scenario::wait_nexthops(&lab, &cast.router, vip, 2, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{d} undrained: {e}"));

    // A real server fails: weight 0 on both directors, requests still
    // succeed (on the others).
    lab.stop_http("s2").expect("stop s2");
    let weight0 = lab::wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        let zero = |node: &str| {
            fingerprint(&lab, node)
                .1
                .iter()
                .any(|(a, w)| a == "198.18.0.22:80" && *w == 0)
        };
        (zero("d1") && zero("d2")).then_some(())
    });
    assert!(
        weight0.is_some(),
        "s2 did not go to weight 0 on both directors"
    );
    let (f1, _) = fingerprint(&lab, "d1");
    let (f2, _) = fingerprint(&lab, "d2");
    assert_eq!(f1, f2, "the directors still agree");
    let after = lab
        .requests(&cast.client, scenario::spread_spec(vip, 100))
        .expect("requests");
    println!("s2 down, 100 requests: {}", after.summary());
    assert_eq!(after.ok, 100, "{}", after.summary());
    assert!(!after.per_server.contains_key("s2"), "{}", after.summary());
    lab.down();
    println!("dr_ipvs: passed in {:.1} s", t0.elapsed().as_secs_f64());
}
