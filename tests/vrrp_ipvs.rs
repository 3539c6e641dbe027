//! Issue 6's active-standby LVS pair (topologies/vrrp-ipvs.toml): two
//! anycastd IPVS directors share the VIP with VRRP, the master holding it
//! on its LAN interface and scheduling (mh, direct routing) over three real
//! servers. Checked here:
//! - the VIP is on the master's eth0 only (never on lo), both directors
//!   hold the same IPVS table (same fingerprint in `status`), requests are
//!   answered by the real servers;
//! - the IPVS connection sync daemon follows the VRRP state (master side
//!   sending, backup side receiving, as `ipvsadm -L --daemon` shows), and
//!   a connection made through the master appears in the backup's table;
//! - the master cut off the LAN: the backup takes over and a long-lived
//!   connection keeps its real server through it, and back;
//! - the tracked service drained on the master (`anycastd drain`): its
//!   priority drops by 100 and the backup takes over; undrained, it
//!   preempts back; the sync roles swap each time.
//!
//! It needs a kernel with IPVS: on a kernel without (this project's
//! machines) the test runs itself again inside the lab's VM. Missing root
//! or qemu fail the test with what is missing.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab::{Lab, LabOptions, Topology};

/// Set inside the VM: run the scenario here.
const INNER: &str = "ANYCASTD_VRRP_IPVS_INNER";
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const ADVERT: Duration = Duration::from_millis(200);

#[test]
fn vrrp_ipvs() {
    lab::vm::run_here_or_in_vm(
        "vrrp_ipvs",
        INNER,
        Duration::from_secs(420),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "vrrp_ipvs: passed",
        scenario_here,
    );
}

fn run(lab: &Lab, node: &str, program: &str, args: &[&str]) -> String {
    lab.output(node, program, args)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn has_vip(lab: &Lab, node: &str, dev: &str) -> bool {
    run(lab, node, "ip", &["-4", "-o", "addr", "show", "dev", dev]).contains(&format!(" {VIP}/"))
}

fn status(lab: &Lab, node: &str) -> serde_json::Value {
    lab.anycastd(node)
        .status()
        .unwrap_or(serde_json::Value::Null)
}

fn vrrp_state(lab: &Lab, node: &str) -> String {
    status(lab, node)["vrrp"][0]["state"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

/// Waits until `master` is Master holding the VIP and `backup` is Backup
/// without it; the time it took.
fn wait_roles(lab: &Lab, master: &str, backup: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let ok = lab::wait_for(limit, Duration::from_millis(20), || {
        (vrrp_state(lab, master) == "Master"
            && has_vip(lab, master, "eth0")
            && vrrp_state(lab, backup) == "Backup"
            && !has_vip(lab, backup, "eth0"))
        .then_some(())
    });
    assert!(
        ok.is_some(),
        "{master} not master and {backup} not backup after {limit:?}: {master} {}, {backup} {}\n{}{}",
        status(lab, master)["vrrp"],
        status(lab, backup)["vrrp"],
        log_tail(lab, master),
        log_tail(lab, backup)
    );
    start.elapsed()
}

/// The end of a director's anycastd log, for failure messages.
fn log_tail(lab: &Lab, node: &str) -> String {
    let log = lab::file_tail(&lab.anycastd(node).log_path(), 20);
    format!("{node}'s log ends:\n{log}\n")
}

/// The sync daemons `ipvsadm -L --daemon` lists on `node`.
fn sync_daemons(lab: &Lab, node: &str) -> String {
    run(lab, node, "ipvsadm", &["-L", "--daemon"])
}

fn wait_sync_roles(lab: &Lab, master: &str, backup: &str) {
    let ok = lab::wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        let m = sync_daemons(lab, master);
        let b = sync_daemons(lab, backup);
        (m.contains("master sync daemon (mcast=eth0, syncid=51,")
            && !m.contains("backup sync daemon")
            && b.contains("backup sync daemon (mcast=eth0, syncid=51,")
            && !b.contains("master sync daemon"))
        .then_some(())
    });
    assert!(
        ok.is_some(),
        "sync daemons: {master}: {:?}, {backup}: {:?}",
        sync_daemons(lab, master),
        sync_daemons(lab, backup)
    );
}

fn requests_ok(lab: &Lab, count: usize, why: &str) {
    let r = lab
        .requests("c1", lab::scenario::spread_spec(VIP, count))
        .expect("requests");
    println!("{why}: {count} requests: {}", r.summary());
    assert_eq!(r.ok, count, "{why}: {}", r.summary());
    assert!(
        r.per_server.keys().all(|s| s.starts_with('s')),
        "{why}: a director answered itself: {}",
        r.summary()
    );
}

fn scenario_here() {
    let t0 = Instant::now();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/vrrp-ipvs.toml");
    let topo = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd"));
    let lab = Lab::up_unique(topo, opts).unwrap_or_else(|e| panic!("lab up: {e}"));
    let took = wait_roles(&lab, "d1", "d2", Duration::from_secs(60));
    println!(
        "d1 (150) master, d2 (100) backup {:.1} s after the lab was up",
        took.as_secs_f64()
    );
    for d in ["d1", "d2"] {
        assert!(!has_vip(&lab, d, "lo"), "{d} has the VIP on lo");
    }

    // The same table on both; the fingerprint is in `status`.
    let fingerprint = |node: &str| {
        status(&lab, node)["services"][0]["fingerprint"]
            .as_str()
            .map(str::to_string)
    };
    let both = lab::wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        Some((fingerprint("d1")?, fingerprint("d2")?))
    });
    let (f1, f2) = both.expect("both directors report a fingerprint");
    println!("fingerprints: d1 {f1}, d2 {f2}");
    assert_eq!(f1, f2);
    requests_ok(&lab, 150, "d1 master");
    wait_sync_roles(&lab, "d1", "d2");
    println!("sync daemons: d1 master, d2 backup");

    // A long-lived connection, one request every 300 ms.
    let (first_tx, first_rx) = std::sync::mpsc::channel::<(u16, String)>();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_conn = stop.clone();
    let conn = lab::netns::spawn_in(&lab.ns_path("c1"), move || {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::from((VIP, 80)), Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let port = s.local_addr()?.port();
        let mut answers = vec![lab::traffic::ask_keepalive(&mut s)?];
        let _ = first_tx.send((port, answers[0].clone()));
        while !stop_conn.load(Ordering::Relaxed) && answers.len() < 1000 {
            std::thread::sleep(Duration::from_millis(300));
            answers.push(lab::traffic::ask_keepalive(&mut s)?);
        }
        Ok(answers)
    })
    .expect("client thread");
    let (port, first) = first_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("first answer on the long-lived connection");
    // The master's sync daemon hands the connection to the backup.
    let entry = format!("C6120001 {port:04X} ");
    let synced_at = Instant::now();
    let synced = lab::wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
        run(&lab, "d2", "cat", &["/proc/net/ip_vs_conn"])
            .lines()
            .any(|l| l.contains(&entry) && l.contains("ESTABLISHED"))
            .then_some(())
    });
    assert!(
        synced.is_some(),
        "the connection from port {port} is not in d2's table: {}",
        run(&lab, "d2", "cat", &["/proc/net/ip_vs_conn"])
    );
    println!(
        "connection from port {port} (served by {first}) in the backup's table {:.0} ms after its first answer",
        synced_at.elapsed().as_secs_f64() * 1000.0
    );

    // The master cut off the LAN (its bridge port disabled).
    let cut = Instant::now();
    run(
        &lab,
        "lan0",
        "bridge",
        &["link", "set", "dev", "d1", "state", "0"],
    );
    let took = lab::wait_for(Duration::from_secs(10), Duration::from_millis(10), || {
        (vrrp_state(&lab, "d2") == "Master" && has_vip(&lab, "d2", "eth0")).then_some(())
    });
    assert!(
        took.is_some(),
        "d2 did not take over: {}",
        status(&lab, "d2")["vrrp"]
    );
    println!(
        "d1 cut off: d2 master after {:.0} ms (3 x advert + skew = {:.0} ms)",
        cut.elapsed().as_secs_f64() * 1000.0,
        (ADVERT * 3 + ADVERT * 156 / 256).as_secs_f64() * 1000.0
    );
    requests_ok(&lab, 50, "d2 master, d1 cut off");
    std::thread::sleep(Duration::from_secs(1));
    run(
        &lab,
        "lan0",
        "bridge",
        &["link", "set", "dev", "d1", "state", "3"],
    );
    wait_roles(&lab, "d1", "d2", Duration::from_secs(10));
    wait_sync_roles(&lab, "d1", "d2");
    println!("link back: d1 master again");
    requests_ok(&lab, 50, "d1 master again");

    // The tracked service drained on d1: priority 150 - 100 < 100.
    lab.anycastd("d1").drain(Some(VIP)).expect("drain");
    let took = wait_roles(&lab, "d2", "d1", Duration::from_secs(10));
    let prio = status(&lab, "d1")["vrrp"][0]["priority"].as_u64();
    println!(
        "d1 drained: d2 master after {:.0} ms, d1's priority {prio:?}",
        took.as_secs_f64() * 1000.0
    );
    assert_eq!(prio, Some(50));
    wait_sync_roles(&lab, "d2", "d1");
    requests_ok(&lab, 50, "d1 drained, d2 master");
    lab.anycastd("d1").undrain(Some(VIP)).expect("undrain");
    let took = wait_roles(&lab, "d1", "d2", Duration::from_secs(10));
    println!(
        "d1 undrained: master again after {:.0} ms",
        took.as_secs_f64() * 1000.0
    );
    wait_sync_roles(&lab, "d1", "d2");

    stop.store(true, Ordering::Relaxed);
    let answers = conn
        .join()
        .expect("client thread")
        .expect("the long-lived connection survived");
    println!(
        "long-lived connection: {} requests through d1, d2, d1, d2, d1, all answered by {first}",
        answers.len()
    );
    assert!(answers.len() > 10, "{answers:?}");
    assert!(answers.iter().all(|a| *a == first), "{answers:?}");

    let text = run(
        &lab,
        "d1",
        env!("CARGO_BIN_EXE_anycastd"),
        &[
            "show",
            "vrrp",
            "--socket",
            &lab.anycastd("d1").socket().display().to_string(),
        ],
    );
    println!("{text}");
    assert!(text.contains("State Master, priority 150"), "{text}");
    // The metrics (the default listener, 127.0.0.1:9274 in d1's namespace).
    let metrics = lab::netns::spawn_in(&lab.ns_path("d1"), || {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect("127.0.0.1:9274")?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text)
    })
    .expect("metrics thread")
    .join()
    .expect("metrics thread")
    .expect("GET /metrics");
    for want in [
        "anycastd_vrrp_state{instance=\"VI_51\",state=\"Master\"} 1",
        "anycastd_vrrp_state{instance=\"VI_51\",state=\"Backup\"} 0",
        "anycastd_vrrp_transitions_total{instance=\"VI_51\",state=\"Master\"} 3",
    ] {
        assert!(metrics.contains(want), "no {want} in\n{metrics}");
    }
    lab.down();
    println!("vrrp_ipvs: passed in {:.1} s", t0.elapsed().as_secs_f64());
}
