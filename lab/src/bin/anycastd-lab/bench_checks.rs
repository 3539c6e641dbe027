//! `anycastd-lab bench-checks`: the health-check engine under load.
//!
//! In a namespace of its own (a two-node lab), listeners on 127.0.0.0/8
//! (TCP ports that accept and close, HTTP servers answering 200) and an
//! `anycastd run` whose services carry many checks: by default 1,000 TCP
//! checks and 100 HTTP checks every 100 ms, i.e. 10,000 TCP and 1,000 HTTP
//! probes a second. After a warm-up, it measures the daemon's CPU time over
//! a window (share of one core), its RSS, and the probes it actually ran
//! (from its own metrics). Then a daemon with one VIP and ten servers, for
//! the RSS of a typical director.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lab::{Lab, LabOptions, Topology};

const TOPOLOGY: &str = r#"
name = "bench-checks"
description = "a director's health checks against local listeners"

[[node]]
name = "d1"
role = "client"

[[node]]
name = "c1"
role = "client"

[[link]]
a = { node = "d1", addr = "198.18.2.0/31", ifname = "eth0" }
b = { node = "c1", addr = "198.18.2.1/31", ifname = "eth0" }
"#;

const TCP_BASE: u16 = 20000;
const HTTP_BASE: u16 = 28000;

/// The listeners: `tcp` ports from 127.0.0.1:20000 that accept and close,
/// `http` ports from 127.0.0.2:28000 that answer 200 (hidden command
/// `anycastd-lab serve-listeners`, run inside the bench's namespace).
pub fn serve_listeners(tcp: u16, http: u16) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..tcp {
            let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 1), TCP_BASE + i));
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind {addr}"))?;
            tasks.push(tokio::spawn(async move {
                loop {
                    // Accept and close: a TCP check only needs the handshake.
                    let _ = l.accept().await;
                }
            }));
        }
        for i in 0..http {
            let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), HTTP_BASE + i));
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind {addr}"))?;
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = l.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(|_req| async {
                            Ok::<_, Infallible>(hyper::Response::new(http_body_util::Full::new(
                                hyper::body::Bytes::from_static(b"ok\n"),
                            )))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
            }));
        }
        println!("listening");
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    })
}

/// The daemon's config: `tcp` TCP checks and `http` HTTP checks every
/// `interval`, spread over the listeners; or, with `servers`, one IPVS
/// service with that many servers and a TCP check each (every second).
fn config(dir: &Path, tcp: u32, http: u32, interval: Duration, servers: u32) -> String {
    let ms = interval.as_millis();
    let mut c = format!(
        "router_id = \"198.18.0.11\"\ncontrol_socket = \"{}\"\nstate_file = \"{}\"\n\
         metrics_listen = \"127.0.0.1:9274\"\n\
         [ospf]\n[[ospf.interface]]\nname = \"eth0\"\nhello = 1\ndead = 4\n",
        lab::anycastd::Anycastd::new(&dir.join("anycastd"))
            .socket()
            .display(),
        dir.join("anycastd").join("state.json").display()
    );
    if servers > 0 {
        let _ = write!(
            c,
            "[[service]]\nname = \"lvs\"\nvip = \"192.0.2.10\"\nport = 80\nmode = \"ipvs\"\n\
             [[service.check]]\ntype = \"tcp\"\n"
        );
        for i in 0..servers {
            let _ = write!(
                c,
                "[[service.server]]\naddress = \"127.0.0.1\"\nport = {}\n",
                u32::from(TCP_BASE) + i
            );
        }
        return c;
    }
    if tcp > 0 {
        c.push_str("[[service]]\nname = \"tcp\"\nvip = \"192.0.2.10\"\nport = 80\n");
        for i in 0..tcp {
            let _ = write!(
                c,
                "[[service.check]]\ntype = \"tcp\"\naddress = \"127.0.0.1\"\nport = {}\n\
                 interval_ms = {ms}\njitter_ms = {ms}\n",
                TCP_BASE + u16::try_from(i % 100).unwrap_or(0)
            );
        }
    }
    if http > 0 {
        c.push_str("[[service]]\nname = \"http\"\nvip = \"192.0.2.11\"\nport = 80\n");
        for i in 0..http {
            let _ = write!(
                c,
                "[[service.check]]\ntype = \"http\"\naddress = \"127.0.0.2\"\nport = {}\n\
                 interval_ms = {ms}\njitter_ms = {ms}\n",
                HTTP_BASE + u16::try_from(i % 10).unwrap_or(0)
            );
        }
    }
    c
}

/// Kills a child on drop (the lab kills everything in its namespaces too).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sum of the daemon's probe counters, from its metrics endpoint.
fn probes(lab: &Lab) -> Result<f64> {
    let text = lab::netns::run_in(&lab.ns_path("d1"), || {
        let mut s = std::net::TcpStream::connect("127.0.0.1:9274")?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .context("read the daemon's metrics")?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("anycastd_check_probes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// User and system CPU time of `pid` (/proc/PID/stat utime, stime).
fn user_sys(pid: i32) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    let t = |i: usize| Duration::from_millis(f.get(i).copied().unwrap_or(0) * 10);
    (t(0), t(1))
}

/// The floor any TCP checker pays on loopback: `n` bare blocking
/// connects, each closed with a reset (as the daemon's checks are), on one
/// thread in the bench's namespace; the thread's CPU time per connect.
/// On loopback both ends' handshake runs in the connecting thread, so this
/// is the kernel's cost of a probe whatever the checker does around it.
fn loopback_floor(lab: &Lab, n: u32) -> Result<Duration> {
    let thread_cpu = || -> std::io::Result<Duration> {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
            .map(Duration::from)
            .map_err(std::io::Error::from)
    };
    let per = lab::netns::run_in(&lab.ns_path("d1"), move || {
        let start = thread_cpu()?;
        for i in 0..n {
            let port = TCP_BASE + u16::try_from(i % 100).unwrap_or(0);
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            s.set_linger(Some(Duration::ZERO))?;
            s.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
        }
        Ok((thread_cpu()? - start) / n)
    })
    .context("loopback connects")?;
    Ok(per)
}

fn start_daemon(lab: &Lab, cfg: &str) -> Result<Running> {
    let dir = lab.node_dir("d1");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.toml");
    std::fs::write(&path, cfg)?;
    let exe = LabOptions::from_current_exe()
        .anycastd
        .context("no anycastd binary beside anycastd-lab or on PATH")?;
    let mut cmd = lab.command("d1", &exe.display().to_string())?;
    cmd.arg("run").arg("--config").arg(&path);
    cmd.env("RUST_LOG", "warn");
    cmd.stdout(std::process::Stdio::null());
    cmd.stderr(std::fs::File::create(dir.join("bench.log"))?);
    Ok(Running(cmd.spawn().context("start anycastd")?))
}

pub fn run(tcp: u32, http: u32, interval_ms: u64, window_s: u64) -> Result<()> {
    if tcp + http == 0 || interval_ms == 0 || window_s == 0 {
        bail!("need some checks, an interval and a window");
    }
    let topo = Topology::parse("bench-checks", TOPOLOGY)?;
    let lab = Lab::up_unique(topo, LabOptions::default())?;
    let exe = std::env::current_exe().context("current executable")?;
    let mut cmd = lab.command("d1", &exe.display().to_string())?;
    cmd.args(["serve-listeners", "--tcp", "100", "--http", "10"]);
    cmd.stdout(std::process::Stdio::piped());
    let mut listeners = Running(cmd.spawn().context("start the listeners")?);
    let mut line = [0u8; 10];
    if let Some(out) = listeners.0.stdout.as_mut() {
        out.read_exact(&mut line)
            .context("listeners did not start")?;
    }

    let interval = Duration::from_millis(interval_ms);
    let rate = |n: u32| f64::from(n) * 1000.0 / interval_ms as f64;
    println!(
        "checks: {tcp} tcp + {http} http every {interval_ms} ms = {:.0} tcp + {:.0} http probes/s",
        rate(tcp),
        rate(http)
    );
    let daemon = start_daemon(&lab, &config(&lab.node_dir("d1"), tcp, http, interval, 0))?;
    let pid = i32::try_from(daemon.0.id()).context("pid")?;
    // Warm-up: every check has started (jitter < interval) and settled.
    std::thread::sleep(Duration::from_secs(3).max(interval * 3));
    let (u0, p0, t0) = (lab::scenario::usage(&[pid])?, probes(&lab)?, Instant::now());
    let (user0, sys0) = user_sys(pid);
    std::thread::sleep(Duration::from_secs(window_s));
    let (u1, p1, t1) = (lab::scenario::usage(&[pid])?, probes(&lab)?, Instant::now());
    let (user1, sys1) = user_sys(pid);
    let wall = t1.duration_since(t0).as_secs_f64();
    let cpu = u1.cpu.saturating_sub(u0.cpu).as_secs_f64();
    let user = user1.saturating_sub(user0).as_secs_f64();
    let sys = sys1.saturating_sub(sys0).as_secs_f64();
    let st = lab.anycastd("d1").status().context("the daemon's status")?;
    let failing = st
        .get("services")
        .and_then(|s| s.as_array())
        .map_or(0, |a| {
            a.iter()
                .filter(|s| s.get("healthy").and_then(|h| h.as_bool()) != Some(true))
                .count()
        });
    println!(
        "ran {:.0} probes/s over {wall:.1} s; CPU {:.1} % of one core (user {:.1} %, \
         kernel {:.1} %; target < 10 %); RSS {:.1} MB ({:.1} MB anonymous); \
         unhealthy services: {failing}",
        (p1 - p0) / wall,
        100.0 * cpu / wall,
        100.0 * user / wall,
        100.0 * sys / wall,
        u1.rss_kib as f64 / 1024.0,
        u1.anon_kib as f64 / 1024.0,
    );
    drop(daemon);
    let floor = loopback_floor(&lab, 20_000)?;
    println!(
        "loopback floor: a bare blocking connect closed with a reset costs {:.1} µs of CPU \
         (both ends' kernel work), {:.1} % of a core at {:.0} connects/s",
        floor.as_secs_f64() * 1e6,
        floor.as_secs_f64() * rate(tcp) * 100.0,
        rate(tcp)
    );

    // A typical director: one VIP, ten servers, a TCP check each.
    let daemon = start_daemon(&lab, &config(&lab.node_dir("d1"), 0, 0, interval, 10))?;
    let pid = i32::try_from(daemon.0.id()).context("pid")?;
    std::thread::sleep(Duration::from_secs(5));
    let u = lab::scenario::usage(&[pid])?;
    println!(
        "one VIP, ten servers: RSS {:.1} MB ({:.1} MB anonymous; target: the whole daemon < 6 MB)",
        u.rss_kib as f64 / 1024.0,
        u.anon_kib as f64 / 1024.0
    );
    drop(daemon);
    drop(listeners);
    lab.down();
    Ok(())
}
