//! The throwaway IPVS VM (`lab::vm`): one boot runs a script whose parts
//! the tests below check, so the whole file costs one TCG boot (plus a
//! short one killed by its timeout). Missing qemu, busybox-static or apt
//! fail the tests with what to install.

use std::sync::OnceLock;
use std::time::Duration;

use lab::vm::{Vm, VmError, VmOptions, VmOutput};

const SCRIPT: &str = r#"
set -e
echo "cwd: $(pwd)"
echo "== ipvs"
test -e /proc/net/ip_vs && echo "proc-net-ip_vs: present"
ipvsadm -A -t 192.0.2.10:80 -s mh -b mh-fallback,mh-port
ipvsadm -a -t 192.0.2.10:80 -r 198.18.0.2:80 -g -w 1
ipvsadm -Ln
echo "== netns"
ip netns add vm-a
ip netns add vm-b
ip link add va type veth peer name vb
ip link set va netns vm-a
ip link set vb netns vm-b
ip -n vm-a addr add 10.9.0.1/24 dev va
ip -n vm-b addr add 10.9.0.2/24 dev vb
ip -n vm-a link set va up
ip -n vm-b link set vb up
ip netns exec vm-a busybox ping -c 1 -W 5 10.9.0.2 > /dev/null && echo "veth-ping: ok"
# IPVS is per namespace: vm-a's table starts empty.
ip netns exec vm-a ipvsadm -A -t 10.9.0.1:80 -s rr
echo "vm-a services: $(ip netns exec vm-a ipvsadm -Ln | grep -c '^TCP')"
echo "== binary"
"$ANYCASTD" --version
echo "to stderr" >&2
exit 3
"#;

/// The one boot the tests share (the first test to get here runs it).
fn shared() -> &'static VmOutput {
    static OUT: OnceLock<Result<VmOutput, String>> = OnceLock::new();
    let out = OUT.get_or_init(|| {
        let opts = VmOptions {
            timeout: Duration::from_secs(240),
            env: vec![("ANYCASTD".into(), env!("CARGO_BIN_EXE_anycastd").into())],
            ..Default::default()
        };
        let out = Vm::run(SCRIPT, &opts).map_err(|e| e.to_string())?;
        if let Some(p) = out.prepared_in {
            eprintln!(
                "vm: prepared the kernel and initramfs in {:.1} s",
                p.as_secs_f64()
            );
        }
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

/// The lines of the script's stdout section `name` ("== name" up to the
/// next section).
fn section(out: &VmOutput, name: &str) -> String {
    let head = format!("== {name}\n");
    let start = out
        .stdout
        .find(&head)
        .unwrap_or_else(|| panic!("no section {name} in:\n{}\n{}", out.stdout, out.stderr))
        + head.len();
    let rest = &out.stdout[start..];
    rest[..rest.find("== ").unwrap_or(rest.len())].to_string()
}

#[test]
fn exit_status_and_streams_come_back_apart_from_the_console() {
    let out = shared();
    assert_eq!(
        out.status, 3,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(out.stderr, "to stderr\n");
    let cwd = std::env::current_dir().unwrap();
    assert!(
        out.stdout
            .starts_with(&format!("cwd: {}\n", cwd.canonicalize().unwrap().display())),
        "{}",
        out.stdout
    );
    // Boot noise stays on the console; the console has the exit marker.
    assert!(!out.stdout.contains("ANYCASTD-VM"), "{}", out.stdout);
    assert!(
        out.console.contains("ANYCASTD-VM-EXIT 3"),
        "{}",
        out.console
    );
}

#[test]
fn ipvs_works_in_the_vm() {
    let out = shared();
    let ipvs = section(out, "ipvs");
    assert!(ipvs.contains("proc-net-ip_vs: present"), "{ipvs}");
    assert!(
        ipvs.lines()
            .any(|l| l.trim_end() == "TCP  192.0.2.10:80 mh (mh-fallback,mh-port)"),
        "{ipvs}"
    );
    assert!(
        ipvs.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["->", "198.18.0.2:80", "Route", "1", "0", "0"]),
        "{ipvs}"
    );
}

#[test]
fn namespaces_and_veth_work_in_the_vm() {
    let out = shared();
    let netns = section(out, "netns");
    assert!(netns.contains("veth-ping: ok"), "{netns}\n{}", out.stderr);
    assert!(netns.contains("vm-a services: 1"), "{netns}");
}

#[test]
fn a_binary_built_on_the_host_runs_in_the_vm() {
    let out = shared();
    let bin = section(out, "binary");
    assert!(
        bin.starts_with(&format!("anycastd {}", env!("CARGO_PKG_VERSION"))),
        "{bin}"
    );
}

#[test]
fn a_vm_past_its_timeout_is_killed() {
    let opts = VmOptions {
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let prepared = lab::vm::prepare().expect("prepare the VM image");
    if let Some(p) = prepared.prepared_in {
        eprintln!(
            "vm: prepared the kernel and initramfs in {:.1} s",
            p.as_secs_f64()
        );
    }
    let start = std::time::Instant::now();
    match Vm::run("sleep 600", &opts) {
        Err(VmError::Timeout { after, .. }) => assert_eq!(after, Duration::from_secs(2)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10));
}
