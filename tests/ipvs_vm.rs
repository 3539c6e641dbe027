//! IPVS programmed by anycastd on a real IPVS kernel (the lab's VM, since
//! this machine's kernel has none): two services x three servers with `mh`
//! exactly as configured, hand-made drift repaired, a repeated reconcile
//! (a restart) changing nothing, someone else's service left alone, and
//! kernel errors as clear messages. One VM boot runs the whole script.
//! Missing qemu or the VM's packages fail the test with what to install.

use std::sync::OnceLock;
use std::time::Duration;

use lab::vm::{Vm, VmOptions, VmOutput};

const SCRIPT: &str = r#"
A="$ANYCASTD"
C=tests/data/ipvs/two-services.toml
echo "== apply"
$A ipvs apply -c $C
echo "== table"
ipvsadm -Ln
echo "== show"
$A ipvs show
echo "== drift"
ipvsadm -d -t 192.0.2.10:80 -r 198.18.1.2:80
ipvsadm -a -t 192.0.2.10:80 -r 198.18.1.9:80 -g -w 3
ipvsadm -e -u 192.0.2.10:53 -r 198.18.1.1:53 -g -w 7
$A ipvs apply -c $C
echo "== table2"
ipvsadm -Ln
echo "== restart"
ipvsadm -Sn > /run/before
$A ipvs show --json > /run/before.json
$A ipvs apply -c $C
ipvsadm -Sn | cmp -s /run/before - && echo "table unchanged"
echo "== foreign"
ipvsadm -A -t 192.0.2.20:443 -s rr
$A ipvs apply -c $C
ipvsadm -Ln | grep -c '^TCP  192.0.2.20:443' || true
echo "== errors"
$A ipvs apply -c tests/data/ipvs/bad-scheduler.toml 2>&1
setpriv --reuid=65534 --regid=65534 --clear-groups $A ipvs show 2>&1
echo "== daemon-up"
ipvsadm -C
ip link add dummy0 type dummy
ip addr add 198.18.0.11/24 dev dummy0
ip link set dummy0 up
for i in 1 2 3; do
  ip addr add 198.18.1.$i/32 dev dummy0
  $A lab serve-http --node s$i --port 808$i > /dev/null 2>&1 &
  echo $! > /run/srv$i
done
$A run -c tests/data/ipvs/daemon.toml > /run/acd.log 2>&1 &
echo $! > /run/acd.pid
sleep 3
ipvsadm -Ln
$A status --json --socket /run/anycastd-ipvs.sock | tr -d ' \n'; echo
ip -4 -o addr show dev lo | grep -c 192.0.2.10/32
echo "== server-down"
kill $(cat /run/srv2)
sleep 1.5
ipvsadm -Ln
ipvsadm -Sn > /run/t1
echo "== daemon-restart"
kill -TERM $(cat /run/acd.pid)
for i in $(seq 1 100); do kill -0 $(cat /run/acd.pid) 2>/dev/null || break; sleep 0.1; done
ipvsadm -Sn | cmp -s /run/t1 - && echo "kept after stop"
$A run -c tests/data/ipvs/daemon.toml >> /run/acd.log 2>&1 &
echo $! > /run/acd.pid
sleep 0.5
ipvsadm -Sn | cmp -s /run/t1 - && echo "unchanged at start"
sleep 2.5
ipvsadm -Sn | cmp -s /run/t1 - && echo "unchanged once settled"
kill -TERM $(cat /run/acd.pid)
echo "== log"
sed 's/\x1b\[[0-9;]*m//g' /run/acd.log | grep -E 'ipvs|VIP' | cut -c29-
echo "== end"
"#;

fn shared() -> &'static VmOutput {
    static OUT: OnceLock<Result<VmOutput, String>> = OnceLock::new();
    let out = OUT.get_or_init(|| {
        let opts = VmOptions {
            timeout: Duration::from_secs(240),
            env: vec![("ANYCASTD".into(), env!("CARGO_BIN_EXE_anycastd").into())],
            cwd: Some(env!("CARGO_MANIFEST_DIR").into()),
            ..Default::default()
        };
        let out = Vm::run(SCRIPT, &opts).map_err(|e| e.to_string())?;
        eprintln!(
            "vm: qemu start to command {:.1} s, whole run {:.1} s",
            out.boot.unwrap_or_default().as_secs_f64(),
            out.elapsed.as_secs_f64()
        );
        Ok(out)
    });
    match out {
        Ok(o) => o,
        Err(e) => panic!("the VM run failed: {e}"),
    }
}

fn section(name: &str) -> String {
    let out = shared();
    let head = format!("== {name}\n");
    let start = out
        .stdout
        .find(&head)
        .unwrap_or_else(|| panic!("no section {name} in:\n{}\n{}", out.stdout, out.stderr))
        + head.len();
    let rest = &out.stdout[start..];
    rest[..rest.find("\n== ").map_or(rest.len(), |i| i + 1)].to_string()
}

/// `ipvsadm -Ln` of the configured table (ipvsadm sorts destinations).
const TABLE: &str = "\
TCP  192.0.2.10:80 mh (mh-fallback,mh-port)
  -> 198.18.1.1:80                Route   1      0          0
  -> 198.18.1.2:80                Route   5      0          0
  -> 198.18.1.3:80                Route   1      0          0
UDP  192.0.2.10:53 mh (mh-fallback,mh-port)
  -> 198.18.1.1:53                Route   1      0          0
  -> 198.18.1.2:53                Route   1      0          0
  -> 198.18.1.3:53                Route   1      0          0
";

fn services_of(ipvsadm: &str) -> String {
    ipvsadm
        .lines()
        .filter(|l| l.starts_with("TCP") || l.starts_with("UDP") || l.starts_with("  ->"))
        .filter(|l| !l.contains("RemoteAddress"))
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

#[test]
fn ipvs_table_is_programmed_exactly_as_configured() {
    let apply = section("apply");
    assert!(
        apply.starts_with("add service TCP 192.0.2.10:80 scheduler mh flags 0x18\n"),
        "{apply}"
    );
    // Destinations in canonical order, so every director's mh table is
    // the same.
    let adds: Vec<&str> = apply.lines().filter(|l| l.contains(" to TCP")).collect();
    assert_eq!(
        adds,
        [
            "add 198.18.1.1:80 to TCP 192.0.2.10:80 (Route, weight 1)",
            "add 198.18.1.2:80 to TCP 192.0.2.10:80 (Route, weight 5)",
            "add 198.18.1.3:80 to TCP 192.0.2.10:80 (Route, weight 1)",
        ]
    );
    assert_eq!(services_of(&section("table")), TABLE);
    // Our own dump shows the kernel's order (newest first) and a
    // fingerprint per service.
    let show = section("show");
    let dests: Vec<&str> = show
        .lines()
        .filter(|l| l.contains(":80 ") && l.starts_with("  ->"))
        .collect();
    assert!(
        dests[0].contains("198.18.1.3") && dests[2].contains("198.18.1.1"),
        "{show}"
    );
    assert!(
        show.lines().any(
            |l| l.starts_with("TCP 192.0.2.10:80 mh mh-fallback,mh-port  ")
                && l.split_whitespace().last().is_some_and(|f| f.len() == 12)
        ),
        "{show}"
    );
}

#[test]
fn hand_made_drift_is_repaired() {
    let drift = section("drift");
    for want in [
        "add 198.18.1.2:80 to TCP 192.0.2.10:80 (Route, weight 5)",
        "set 198.18.1.1:53 of UDP 192.0.2.10:53 to weight 1",
        "delete 198.18.1.9:80 from TCP 192.0.2.10:80",
    ] {
        assert!(drift.contains(want), "{want} in:\n{drift}");
    }
    // The re-added destination sits at the head of the kernel's list: said.
    assert!(drift.contains("not in the canonical order"), "{drift}");
    assert_eq!(services_of(&section("table2")), TABLE);
}

#[test]
fn a_second_reconcile_changes_nothing() {
    let restart = section("restart");
    assert!(restart.contains("in sync: nothing to change"), "{restart}");
    assert!(restart.contains("table unchanged"), "{restart}");
}

#[test]
fn someone_elses_service_is_left_alone() {
    let foreign = section("foreign");
    assert!(
        foreign
            .contains("note: TCP 192.0.2.20:443: not configured here (someone else's; left alone)"),
        "{foreign}"
    );
    assert!(foreign.trim_end().ends_with('1'), "still there: {foreign}");
}

#[test]
fn kernel_errors_are_clear() {
    let errors = section("errors");
    assert!(
        errors.contains(
            "add service TCP 192.0.2.30:80: no such scheduler `nosuch` (load ip_vs_nosuch)"
        ),
        "{errors}"
    );
    assert!(
        errors.contains("list IPVS services: permission denied (needs root or CAP_NET_ADMIN)"),
        "{errors}"
    );
}

/// This machine's own kernel has no IPVS: the message says so.
#[test]
fn a_kernel_without_ipvs_is_named() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        // A kernel with IPVS runs the VM tests' checks directly instead.
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(["ipvs", "show"])
        .output()
        .expect("run anycastd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("IPVS is not available on this kernel"),
        "{err}"
    );
}

#[test]
fn the_daemon_programs_weights_from_health_and_a_restart_changes_nothing() {
    let up = section("daemon-up");
    let table = services_of(&up);
    assert_eq!(
        table,
        "TCP  192.0.2.10:80 mh (mh-fallback,mh-port)
  -> 198.18.1.1:8081              Route   1      0          0
  -> 198.18.1.2:8082              Route   5      0          0
  -> 198.18.1.3:8083              Route   1      0          0
",
        "{up}"
    );
    // Healthy and programmed: the VIP is announced; it is on lo.
    assert!(
        up.contains(r#""vip":"192.0.2.10","advertised":true"#)
            || up.contains(r#""advertised":true"#),
        "{up}"
    );
    assert!(up.trim_end().ends_with('1'), "VIP on lo: {up}");
    // A failed server gets weight 0, not removal.
    let down = services_of(&section("server-down"));
    assert!(
        down.contains("-> 198.18.1.2:8082              Route   0"),
        "{down}"
    );
    assert_eq!(down.lines().count(), 4, "{down}");
    let restart = section("daemon-restart");
    assert!(
        restart.contains("kept after stop"),
        "{restart}\n{}",
        section("log")
    );
    assert!(
        restart.contains("unchanged at start"),
        "{restart}\n{}",
        section("log")
    );
    assert!(
        restart.contains("unchanged once settled"),
        "{restart}\n{}",
        section("log")
    );
}
