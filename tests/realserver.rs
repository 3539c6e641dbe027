//! `anycastd realserver setup|teardown` in a network namespace of the
//! test's own: VIPs on lo as /32s, the DR ARP settings, idempotence, and
//! the settings kept while a VIP is left. Needs root (it fails saying so).

use std::path::Path;

use lab::netns;

/// `program args` in the namespace: its stdout; a failure panics with
/// the status and stderr.
fn run(ns: &Path, program: &str, args: &[&str]) -> String {
    netns::output(ns, program, args).unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

fn anycastd(ns: &Path, args: &[&str]) -> String {
    run(ns, env!("CARGO_BIN_EXE_anycastd"), args)
}

fn lo_addrs(ns: &Path) -> String {
    run(ns, "ip", &["-4", "-o", "addr", "show", "dev", "lo"])
}

fn arp(ns: &Path) -> Vec<String> {
    ["all", "default", "lo"]
        .iter()
        .flat_map(|i| ["arp_ignore", "arp_announce"].map(|k| format!("net.ipv4.conf.{i}.{k}")))
        .map(|key| format!("{key}={}", run(ns, "sysctl", &["-n", &key]).trim()))
        .collect()
}

fn expect_arp(ns: &Path, ignore: u8, announce: u8) {
    for line in arp(ns) {
        let want = if line.contains("arp_ignore") {
            ignore
        } else {
            announce
        };
        assert!(line.ends_with(&format!("={want}")), "{line}");
    }
}

#[test]
fn realserver_setup_and_teardown() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it creates a network namespace)"
    );
    let name = format!("acd-rs-{}", std::process::id());
    let namespace = netns::Namespace::create(&name).expect("create namespace");
    let ns = namespace.path();
    run(ns, "ip", &["link", "set", "lo", "up"]);
    expect_arp(ns, 0, 0);

    let out = anycastd(
        ns,
        &[
            "realserver",
            "setup",
            "--vip",
            "192.0.2.10",
            "--vip",
            "192.0.2.11",
        ],
    );
    assert!(out.contains("added 192.0.2.10/32 to lo"), "{out}");
    assert!(out.contains("net.ipv4.conf.all.arp_ignore = 1"), "{out}");
    let addrs = lo_addrs(ns);
    assert!(
        addrs.contains("inet 192.0.2.10/32") && addrs.contains("inet 192.0.2.11/32"),
        "{addrs}"
    );
    expect_arp(ns, 1, 2);

    // Again: nothing to do.
    let out = anycastd(
        ns,
        &[
            "realserver",
            "setup",
            "--vip",
            "192.0.2.10",
            "--vip",
            "192.0.2.11",
        ],
    );
    assert_eq!(out.trim(), "nothing to change");

    // One VIP left: the ARP settings stay.
    let out = anycastd(ns, &["realserver", "teardown", "--vip", "192.0.2.10"]);
    assert!(out.contains("removed 192.0.2.10 from lo"), "{out}");
    assert!(
        out.contains("ARP settings kept: lo still holds 192.0.2.11"),
        "{out}"
    );
    let addrs = lo_addrs(ns);
    assert!(
        !addrs.contains("192.0.2.10/32") && addrs.contains("192.0.2.11/32"),
        "{addrs}"
    );
    expect_arp(ns, 1, 2);

    let out = anycastd(ns, &["realserver", "teardown", "--vip", "192.0.2.11"]);
    assert!(out.contains("removed 192.0.2.11 from lo"), "{out}");
    assert!(!lo_addrs(ns).contains("192.0.2."), "{}", lo_addrs(ns));
    expect_arp(ns, 0, 0);
}
