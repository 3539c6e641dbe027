//! `anycastd run` under a systemd-like supervisor, in a network namespace
//! of the test's own: READY=1 once the OSPF speaker has its interface (the
//! control socket answers with it), the start-up code pages given back
//! (logged), the warning about its unauthenticated LAN interface logged
//! once (not again on SIGHUP), WATCHDOG=1 at half the watchdog interval,
//! and on SIGTERM STOPPING=1, a clean exit and the control socket removed.
//! Needs root (it fails saying so).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use lab::netns;

/// The daemon, killed on drop if the test did not stop it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ip(ns: &Path, args: &[&str]) {
    if let Err(e) = netns::output(ns, "ip", args) {
        panic!("ip {args:?}: {e}");
    }
}

/// Notifications received until `until` returns true or `timeout` passes.
fn receive(
    sock: &UnixDatagram,
    timeout: Duration,
    until: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !until(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left)).expect("timeout");
        match sock.recv(&mut buf) {
            Ok(n) => got.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            ),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn ready_watchdog_and_stopping_are_notified() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it creates a network namespace)"
    );
    let name = format!("acd-sd-{}", std::process::id());
    let namespace = netns::Namespace::create(&name).expect("create namespace");
    let ns = namespace.path();
    ip(ns, &["link", "set", "lo", "up"]);
    ip(
        ns,
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
        ],
    );
    ip(ns, &["addr", "add", "198.18.0.0/31", "dev", "eth0"]);
    ip(ns, &["link", "set", "eth0", "up"]);
    ip(ns, &["link", "set", "eth1", "up"]);

    let dir = std::env::temp_dir().join(format!("{name}-files"));
    std::fs::create_dir_all(&dir).expect("dir");
    let socket: PathBuf = dir.join("ctl.sock");
    let config = dir.join("anycastd.toml");
    std::fs::write(
        &config,
        format!(
            "router_id = \"198.18.0.11\"\ncontrol_socket = \"{}\"\nstate_file = \"{}\"\n\
             [ospf]\n[[ospf.interface]]\nname = \"eth0\"\nhello = 1\ndead = 4\n",
            socket.display(),
            dir.join("state.json").display()
        ),
    )
    .expect("config");
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("notify socket");
    let log = dir.join("anycastd.log");

    // As systemd does: WATCHDOG_PID names the daemon's own pid (the shell's,
    // which exec keeps).
    let child = netns::command(ns, "sh")
        .expect("command")
        .args([
            "-c",
            "export WATCHDOG_PID=$$; exec \"$0\" run --config \"$1\"",
        ])
        .arg(env!("CARGO_BIN_EXE_anycastd"))
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "400000")
        .env("RUST_LOG", "anycastd=debug,info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start anycastd");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let mut daemon = Daemon(child);

    let got = receive(&notify, Duration::from_secs(20), |g| {
        g.iter().any(|l| l == "READY=1")
    });
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        got.iter().any(|l| l == "READY=1"),
        "no READY=1 within 20 s (got {got:?}); log:\n{}",
        logs()
    );
    // Ready means the speaker runs on its interface.
    let socket_arg = socket.to_string_lossy();
    let text = netns::output(
        ns,
        env!("CARGO_BIN_EXE_anycastd"),
        &[
            "show",
            "ospf",
            "interface",
            "--json",
            "--socket",
            &socket_arg,
        ],
    )
    .unwrap_or_else(|e| panic!("show ospf interface right after READY: {e}"));
    assert!(
        text.contains("\"eth0\"") && text.contains("198.18.0.0"),
        "show ospf interface right after READY: {text}"
    );
    let released = logs()
        .lines()
        .find_map(|l| {
            let rest = l.split("released ").nth(1)?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    assert!(
        released > 0,
        "the start-up code pages were not released; log:\n{}",
        logs()
    );
    println!("READY after the speaker's start; {released} KiB of start-up program pages released");

    // eth0 is a broadcast network without authentication: warned about
    // once, at start, with the config's file:line:column; a reload (SIGHUP)
    // does not repeat it.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    let reloaded = lab::wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
        logs().contains("configuration reloaded").then_some(())
    });
    assert!(
        reloaded.is_some(),
        "no reload logged after SIGHUP; log:\n{}",
        logs()
    );
    let warning = format!(
        "{}:5:1: warning: ospf interface eth0 is on a broadcast network without authentication",
        config.display()
    );
    let warnings = logs().lines().filter(|l| l.contains(&warning)).count();
    assert_eq!(warnings, 1, "want the warning once; log:\n{}", logs());

    // The control socket is the operator's alone (README: mode 0600).
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&socket)
            .expect("control socket")
            .permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "control socket mode {:o}",
        mode & 0o777
    );

    // WATCHDOG=1 at half of WATCHDOG_USEC (400 ms): every gap between two
    // pings well under the 400 ms at which systemd would kill the daemon,
    // and about 200 ms on average (a daemon pinging at the full period, or
    // not at all for a while, fails).
    let period = Duration::from_micros(400_000);
    let mut pings = Vec::new();
    let mut buf = [0u8; 4096];
    let window = Instant::now() + Duration::from_secs(3);
    while Instant::now() < window {
        notify.set_read_timeout(Some(period * 2)).expect("timeout");
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification for {:?}: {e}", period * 2));
        if String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "WATCHDOG=1")
        {
            pings.push(Instant::now());
        }
    }
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 10, "{} WATCHDOG=1 in 3 s", pings.len());
    let longest = gaps.iter().max().copied().unwrap_or_default();
    let mean = gaps.iter().sum::<Duration>() / u32::try_from(gaps.len()).expect("count");
    println!(
        "WATCHDOG=1: {} in 3 s, mean gap {:.0} ms, longest {:.0} ms (WATCHDOG_USEC 400 ms)",
        pings.len(),
        mean.as_secs_f64() * 1000.0,
        longest.as_secs_f64() * 1000.0
    );
    assert!(
        longest < period * 3 / 4,
        "a gap of {longest:?} between WATCHDOG=1 (systemd kills at {period:?})"
    );
    assert!(
        mean >= period * 2 / 5 && mean <= period * 3 / 5,
        "mean gap {mean:?}, want half of {period:?}"
    );

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let stop = receive(&notify, Duration::from_secs(10), |g| {
        g.iter().any(|l| l == "STOPPING=1")
    });
    assert!(
        stop.iter().any(|l| l == "STOPPING=1"),
        "no STOPPING=1 after SIGTERM: {stop:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = daemon.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "anycastd still running 15 s after SIGTERM; log:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status}; log:\n{}", logs());
    assert!(!socket.exists(), "control socket left behind");
    let _ = std::fs::remove_dir_all(&dir);
}
