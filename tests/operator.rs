//! What an operator can rely on, against a real FRR router
//! (`topologies/anycast-frr.toml`: three anycastd directors serving HTTP on
//! VIP 192.0.2.10): one daemon per config, drains and withdrawals that
//! survive a restart, drains that tell when connections were left, a second
//! SIGTERM that stops at once, VIPs announced only where they are served (a
//! VRRP-owned one never over OSPF), reloads that refuse what they cannot
//! apply, and a status that says why.
//!
//! Needs root and FRR (the README's test command installs them).

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lab::scenario::{self, Cast};
use lab::{Lab, LabOptions, Topology};
use serde_json::Value;

const VIP: &str = "192.0.2.10";

fn up() -> Lab {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/anycast-frr.toml");
    let topo = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::up_unique(
        topo,
        LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd")),
    )
    .unwrap_or_else(|e| panic!("lab up: {e}"));
    let cast = Cast::of(&lab).expect("cast");
    scenario::wait_nexthops(&lab, &cast.router, vip(), 3, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    lab
}

fn vip() -> Ipv4Addr {
    VIP.parse().expect("ip")
}

/// `anycastd ARGS --socket d1's socket`, from outside the namespace.
fn ctl(lab: &Lab, node: &str, args: &[&str]) -> Output {
    let socket = lab.anycastd(node).socket();
    Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(args)
        .arg("--socket")
        .arg(&socket)
        .output()
        .expect("run anycastd")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `vips` row of `vip` in d1's status.
fn vip_row(lab: &Lab, node: &str, vip: Ipv4Addr) -> Value {
    let st = lab.anycastd(node).status().expect("status");
    st["vips"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["vip"] == vip.to_string()).cloned())
        .unwrap_or(Value::Null)
}

fn nexthops(lab: &Lab) -> usize {
    lab.vip_nexthops("r1", vip()).expect("FIB")
}

/// Holds `nexthops` at `want` for `d`; false as soon as it differs.
fn holds(lab: &Lab, want: usize, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if nexthops(lab) != want {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

#[test]
fn operator_commands_do_what_they_say_and_tell_the_truth() {
    let mut lab = up();

    // One daemon per config: a second `run` exits non-zero at once, names
    // the first, and leaves it manageable.
    let conf = lab.anycastd("d1").config_path();
    let first = lab.anycastd_pid("d1").expect("d1 runs");
    let started = Instant::now();
    let second = lab
        .command("d1", env!("CARGO_BIN_EXE_anycastd"))
        .expect("command")
        .args(["run", "--config"])
        .arg(&conf)
        .output()
        .expect("second run");
    let took = started.elapsed();
    assert!(!second.status.success(), "a second daemon ran");
    assert!(
        took < Duration::from_secs(1),
        "the second took {took:?} to give up"
    );
    let msg = text(&second);
    assert!(
        msg.contains(&format!("anycastd already runs (pid {first}")),
        "{msg}"
    );
    assert!(
        lab.anycastd("d1").status().is_ok(),
        "the first lost its socket"
    );
    assert_eq!(nexthops(&lab), 3);
    println!(
        "second run: refused after {:.0} ms: {}",
        took.as_secs_f64() * 1000.0,
        msg.trim()
    );

    // `drain` needs a VIP or `all`: a bare one drains nothing.
    let bare = ctl(&lab, "d1", &["drain"]);
    assert!(!bare.status.success(), "bare drain: {}", text(&bare));
    assert!(vip_row(&lab, "d1", vip())["drain"].is_null());
    assert!(
        holds(&lab, 3, Duration::from_secs(1)),
        "a bare drain moved traffic"
    );

    // `vip` refuses a VIP the config does not know, unless forced.
    let unknown = ctl(&lab, "d1", &["vip", "withdraw", "192.0.2.99"]);
    assert!(!unknown.status.success());
    assert!(text(&unknown).contains("--force"), "{}", text(&unknown));

    // A withdrawal is known to status and survives a restart.
    let w = ctl(&lab, "d1", &["vip", "withdraw", VIP]);
    assert!(w.status.success(), "{}", text(&w));
    scenario::wait_nexthops(&lab, "r1", vip(), 2, Duration::from_secs(10)).expect("withdrawn");
    let row = vip_row(&lab, "d1", vip());
    assert_eq!(row["operator_withdrawn"], true, "{row}");
    assert!(
        row["reason"]
            .as_str()
            .is_some_and(|r| r.contains("operator")),
        "{row}"
    );
    lab.signal_anycastd("d1", nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    lab.wait_anycastd_exit("d1", Duration::from_secs(20))
        .expect("exit");
    lab.restart_anycastd("d1").expect("restart");
    assert!(
        holds(&lab, 2, Duration::from_secs(6)),
        "the withdrawn VIP came back after a restart"
    );
    let row = vip_row(&lab, "d1", vip());
    assert_eq!(row["operator_withdrawn"], true, "{row}");
    let a = ctl(&lab, "d1", &["vip", "advertise", VIP]);
    assert!(a.status.success(), "{}", text(&a));
    scenario::wait_nexthops(&lab, "r1", vip(), 3, Duration::from_secs(10)).expect("back");

    // A drain survives a restart too, until undrain.
    let d = ctl(&lab, "d1", &["drain", VIP, "--no-wait"]);
    assert!(d.status.success(), "{}", text(&d));
    scenario::wait_nexthops(&lab, "r1", vip(), 2, Duration::from_secs(10)).expect("drained");
    lab.signal_anycastd("d1", nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    lab.wait_anycastd_exit("d1", Duration::from_secs(20))
        .expect("exit");
    lab.restart_anycastd("d1").expect("restart");
    assert!(
        holds(&lab, 2, Duration::from_secs(6)),
        "a drained director announced its VIP again after a restart"
    );
    let row = vip_row(&lab, "d1", vip());
    assert_eq!(row["drain"], "drained", "{row}");
    let u = ctl(&lab, "d1", &["undrain", VIP]);
    assert!(u.status.success(), "{}", text(&u));
    scenario::wait_nexthops(&lab, "r1", vip(), 3, Duration::from_secs(15)).expect("undrained");

    // A drain that reaches its deadline (5 s here) with a connection left
    // exits 3 and says so: `drain && systemctl stop` does not cut it.
    let c1 = lab.ns_path("c1");
    let mut held = None;
    for _ in 0..60 {
        let mut s = lab::netns::run_in(&c1, || {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([192, 0, 2, 10], 80)),
                Duration::from_secs(2),
            )
        })
        .expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        if lab::traffic::ask_keepalive(&mut s).is_ok_and(|who| who == "d1") {
            held = Some(s);
            break;
        }
    }
    let held = held.expect("no connection landed on d1 in 60 tries");
    let started = Instant::now();
    let d = ctl(&lab, "d1", &["drain", VIP]);
    let waited = started.elapsed();
    assert_eq!(d.status.code(), Some(3), "{}", text(&d));
    assert!(text(&d).contains("1 connections left"), "{}", text(&d));
    println!(
        "drain with a connection left: exit 3 after {:.1} s: {}",
        waited.as_secs_f64(),
        String::from_utf8_lossy(&d.stderr).trim()
    );
    let u = ctl(&lab, "d1", &["undrain", VIP]);
    assert!(u.status.success(), "{}", text(&u));
    scenario::wait_nexthops(&lab, "r1", vip(), 3, Duration::from_secs(15)).expect("undrained");

    // SIGTERM drains, and the drain waits for the connection still held
    // (its deadline is 5 s); a second SIGTERM stops at once.
    let log = lab.anycastd("d1").log_path();
    let draining = || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        t.matches("SIGTERM: draining").count()
    };
    let before = draining();
    let first_term = Instant::now();
    lab.signal_anycastd("d1", lab::Signal::SIGTERM)
        .expect("SIGTERM");
    let heard = lab::wait_for(Duration::from_secs(2), Duration::from_millis(5), || {
        (draining() > before).then_some(())
    });
    assert!(heard.is_some(), "d1 logged no drain after SIGTERM");
    // Still running past its 500 ms cost hold: the connection holds it.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        lab.anycastd_pid("d1").is_some(),
        "d1 exited while a connection was left"
    );
    let second_term = Instant::now();
    lab.signal_anycastd("d1", lab::Signal::SIGTERM)
        .expect("second SIGTERM");
    lab.wait_anycastd_exit("d1", Duration::from_secs(3))
        .expect("d1 exits after the second SIGTERM");
    let stopped = second_term.elapsed();
    println!(
        "second SIGTERM {:.0} ms into the drain (a connection held): exited {:.0} ms later",
        (second_term - first_term).as_secs_f64() * 1000.0,
        stopped.as_secs_f64() * 1000.0
    );
    assert!(
        stopped < Duration::from_millis(1000),
        "the second SIGTERM took {stopped:?} to stop d1"
    );
    drop(held);
    lab.restart_anycastd("d1").expect("restart d1");
    // Back when d1 itself announces the VIP again (the router may still
    // hold its old nexthop: a second SIGTERM does not wait for the flush).
    let announced = lab::wait_for(Duration::from_secs(15), Duration::from_millis(50), || {
        lab.anycastd("d1").status().ok()?;
        (vip_row(&lab, "d1", vip())["advertised"] == true).then_some(())
    });
    assert!(announced.is_some(), "{}", vip_row(&lab, "d1", vip()));
    scenario::wait_nexthops(&lab, "r1", vip(), 3, Duration::from_secs(15)).expect("d1 back");

    // A local VIP is announced only while it is on this node's lo: taken
    // off, it is withdrawn and status says why; a reload puts it back.
    let del = lab
        .output("d1", "ip", &["addr", "del", "192.0.2.10/32", "dev", "lo"])
        .expect("ip addr del");
    let _ = del;
    let t = scenario::wait_nexthops(&lab, "r1", vip(), 2, Duration::from_secs(10))
        .expect("withdrawn when the VIP left lo");
    let row = vip_row(&lab, "d1", vip());
    assert!(
        row["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not on lo")),
        "{row}"
    );
    println!(
        "VIP taken off lo: out of the router's FIB after {:.1} s; {}",
        t.as_secs_f64(),
        row["reason"]
    );
    lab.anycastd("d1").reload().expect("reload");
    scenario::wait_nexthops(&lab, "r1", vip(), 3, Duration::from_secs(15)).expect("back on lo");

    // A reload that changes what only a restart applies is refused whole,
    // exits non-zero and names the change; the running state stays.
    let generated = lab.anycastd_generated_config("d1").expect("config");
    let changed = generated.replacen("hello = 1", "hello = 2", 1);
    assert_ne!(changed, generated);
    lab.write_anycastd_config("d1", &changed).expect("write");
    let r = ctl(&lab, "d1", &["reload"]);
    assert!(!r.status.success(), "reload said ok: {}", text(&r));
    assert!(
        text(&r).contains("need a restart") && text(&r).contains("hello/dead"),
        "{}",
        text(&r)
    );
    lab.write_anycastd_config("d1", &generated)
        .expect("write back");
    assert!(holds(&lab, 3, Duration::from_secs(2)));
    let rc = ctl(&lab, "d1", &["show", "running-config"]);
    assert!(
        String::from_utf8_lossy(&rc.stdout).contains("hello = 1"),
        "{}",
        text(&rc)
    );

    // A service whose VIP belongs to a VRRP instance is VRRP's: d1, the
    // only member of VRID 60 and so its master, holds 192.0.2.12 on eth0,
    // and while that service is healthy the VIP is neither on lo nor in
    // d1's Router-LSA nor routed by r1 (a plain service on it would be).
    let owned = format!(
        "{generated}\n[[service]]\nname = \"owned\"\nvip = \"192.0.2.12\"\nport = 80\nhold_down_ms = 0\n\
         [[service.check]]\ntype = \"tcp\"\ninterval_ms = 200\ntimeout_ms = 150\nrise = 1\nfall = 2\n\
         [[vrrp]]\nname = \"VI_60\"\ninterface = \"eth0\"\nvrid = 60\npriority = 150\n\
         advert_interval_ms = 100\naddresses = [\"192.0.2.12/32\"]\n"
    );
    lab.write_anycastd_config("d1", &owned).expect("write");
    let r = ctl(&lab, "d1", &["reload"]);
    assert!(r.status.success(), "{}", text(&r));
    let owned_vip: Ipv4Addr = "192.0.2.12".parse().expect("ip");
    let on = |dev: &str| {
        lab::net::ipv4_addresses(&lab.ns_path("d1"), dev)
            .expect("addresses")
            .contains(&owned_vip)
    };
    let master = lab::wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
        on("eth0").then_some(())
    });
    assert!(master.is_some(), "d1 never held 192.0.2.12 on eth0");
    let healthy = lab::wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        let st = lab.anycastd("d1").status().ok()?;
        st["services"]
            .as_array()?
            .iter()
            .any(|x| x["name"] == "owned" && x["healthy"] == true)
            .then_some(())
    });
    assert!(
        healthy.is_some(),
        "the VRRP-owned service never became healthy: {}",
        lab.anycastd("d1")
            .status()
            .map(|s| s["services"].to_string())
            .unwrap_or_default()
    );
    // Give a (wrong) announcement time to reach r1's FIB.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!on("lo"), "a VRRP-owned VIP was put on lo");
    assert_eq!(
        lab.vip_nexthops("r1", owned_vip).expect("FIB"),
        0,
        "r1 routes a VRRP-owned VIP"
    );
    let d1_id: Ipv4Addr = "198.18.0.11".parse().expect("ip");
    let lsa = lab
        .ospf_router_lsa("r1", d1_id)
        .expect("r1's copy of d1's Router-LSA")
        .expect("r1 holds d1's Router-LSA");
    assert!(
        !lsa.lists(owned_vip) && lsa.lists(vip()),
        "d1's Router-LSA stubs: {:?}",
        lsa.stubs
    );
    let stubs: Vec<String> = lsa.stubs.iter().map(ToString::to_string).collect();
    println!(
        "VRRP-owned VIP 192.0.2.12: on d1's eth0 (master), healthy, not on lo, \
         not in d1's Router-LSA (stubs {stubs:?}), not routed by r1"
    );
    lab.write_anycastd_config("d1", &generated)
        .expect("write back");
    let r = ctl(&lab, "d1", &["reload"]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(holds(&lab, 3, Duration::from_secs(1)));

    // A local VIP whose server runs on another node is never announced: d2
    // serves 192.0.2.14:8080 and d1 has a route to it through d2 (its
    // connect succeeds), yet d1's service on that VIP stays withdrawn,
    // because the daemon puts the VIP on d1's lo and probes it there.
    let elsewhere: Ipv4Addr = "192.0.2.14".parse().expect("ip");
    lab.output("d2", "ip", &["addr", "add", "192.0.2.14/32", "dev", "lo"])
        .expect("VIP on d2");
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    let listener = lab::netns::spawn_in(&lab.ns_path("d2"), move || {
        let l = std::net::TcpListener::bind("192.0.2.14:8080")?;
        l.set_nonblocking(true)?;
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            match l.accept() {
                Ok(_) => {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Ok(())
    })
    .expect("listener on d2");
    lab.output(
        "d1",
        "ip",
        &["route", "add", "192.0.2.14/32", "via", "198.18.0.12"],
    )
    .expect("route on d1");
    let reached = lab::netns::run_in(&lab.ns_path("d1"), || {
        let addr = std::net::SocketAddr::from(([192, 0, 2, 14], 8080));
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(|_| ())
    });
    assert!(
        reached.is_ok(),
        "control: d1 cannot reach d2's server: {reached:?}"
    );
    let before = lab.anycastd_generated_config("d1").expect("config");
    let with_remote = format!(
        "{before}\n[[service]]\nname = \"elsewhere\"\nvip = \"192.0.2.14\"\nport = 8080\n\
         [[service.check]]\ntype = \"tcp\"\ninterval_ms = 200\n"
    );
    lab.write_anycastd_config("d1", &with_remote)
        .expect("write config");
    let r = ctl(&lab, "d1", &["reload"]);
    assert!(r.status.success(), "{}", text(&r));
    let end = Instant::now() + Duration::from_secs(4);
    let mut row = Value::Null;
    while Instant::now() < end {
        row = vip_row(&lab, "d1", elsewhere);
        assert_ne!(
            row["advertised"], true,
            "announced for a server on d2: {row}"
        );
        assert!(
            lab.vip_route("r1", elsewhere).expect("fib").is_none(),
            "r1 routes 192.0.2.14"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        row["reason"]
            .as_str()
            .is_some_and(|r| r.contains("service elsewhere unhealthy")),
        "{row}"
    );
    println!(
        "a local VIP served by d2 only: never announced by d1 in 4 s ({} connections reached d2); {}",
        served.load(std::sync::atomic::Ordering::SeqCst),
        row["reason"]
    );
    // Only the control connection reached d2, never a probe of d1's.
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
    lab.write_anycastd_config("d1", &before)
        .expect("write back");
    let r = ctl(&lab, "d1", &["reload"]);
    assert!(r.status.success(), "{}", text(&r));
    drop(listener);

    // Status says when an announced VIP is heard by no router: stop FRR,
    // and after the dead interval the director says so.
    lab.kill_routing("r1").expect("kill FRR");
    let end = Instant::now() + Duration::from_secs(15);
    let mut row = Value::Null;
    while Instant::now() < end {
        row = vip_row(&lab, "d1", vip());
        if row["heard"] == false {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        row["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no router hears it")),
        "{row}"
    );
    let status = ctl(&lab, "d1", &["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("no router hears it"),
        "{}",
        text(&status)
    );
}

/// An `ipvs` service on a kernel without IPVS is never announced, and
/// status says why (the IPVS loop's error used to be dropped).
#[test]
fn an_ipvs_service_without_ipvs_says_why() {
    let dir = std::env::temp_dir().join(format!("acd-op-ipvs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let socket = dir.join("ctl.sock");
    let config = dir.join("anycastd.toml");
    std::fs::write(
        &config,
        format!(
            "router_id = \"198.18.0.11\"\ncontrol_socket = \"{}\"\nstate_file = \"{}\"\n\
             metrics_listen = \"off\"\n[ospf]\n[[ospf.interface]]\nname = \"lo\"\n\
             [[service]]\nname = \"lvs\"\nvip = \"192.0.2.30\"\nport = 80\nmode = \"ipvs\"\n\
             [[service.check]]\ntype = \"tcp\"\ninterval_ms = 200\n\
             [[service.server]]\naddress = \"127.0.0.1\"\nport = 1\n",
            socket.display(),
            dir.join("state.json").display()
        ),
    )
    .expect("config");
    let ns = lab::netns::Namespace::create(&format!("acd-op-ipvs-{}", std::process::id()))
        .expect("namespace");
    lab::netns::output(ns.path(), "ip", &["link", "set", "lo", "up"]).expect("lo up");
    let mut daemon = lab::netns::command(ns.path(), Path::new(env!("CARGO_BIN_EXE_anycastd")))
        .expect("command")
        .args(["run", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    let has_ipvs = Path::new("/proc/net/ip_vs").exists();
    let end = Instant::now() + Duration::from_secs(15);
    let mut reason = String::new();
    while Instant::now() < end {
        let out = Command::new(env!("CARGO_BIN_EXE_anycastd"))
            .args(["status", "--json", "--socket"])
            .arg(&socket)
            .output()
            .expect("status");
        if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
            reason = v["vips"][0]["reason"].as_str().unwrap_or("").to_string();
            // "not programmed in IPVS yet" comes first, until the IPVS
            // thread has tried; then either its error or, on a kernel with
            // IPVS, only the dead server.
            let settled = if has_ipvs {
                !reason.is_empty() && !reason.contains("not programmed")
            } else {
                reason.contains("not programmed in IPVS:")
            };
            if settled {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
    if has_ipvs {
        // (A kernel with IPVS: the service is programmed, only its dead
        // server keeps it down.)
        assert!(!reason.contains("not programmed"), "{reason}");
    } else {
        assert!(
            reason.contains("not programmed in IPVS: IPVS is not available on this kernel"),
            "{reason}"
        );
    }
    println!("ipvs service without IPVS: {reason}");
}
