//! anycastd's OSPF authentication and MTU handling against FRR and BIRD:
//! adjacencies form with the right keys, fail with a counted reason with
//! the wrong ones; an MTU mismatch stops the exchange with a clear
//! diagnostic and mtu-ignore fixes it.
//!
//! Needs root, FRR and BIRD (the README's test command installs them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::scenario;
use lab::{Lab, LabOptions, Topology};
use serde_json::{json, Value};

fn up_text(file: &str, edit: impl Fn(String) -> String) -> Lab {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("topology");
    let topo =
        Topology::parse(&path.display().to_string(), &edit(text)).unwrap_or_else(|e| panic!("{e}"));
    let opts = LabOptions {
        name: None,
        helper: Some(PathBuf::from(env!("CARGO_BIN_EXE_anycastd"))),
        capture: None,
    };
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
}

#[test]
fn mtu_mismatch_stalls_and_mtu_ignore_fixes_it() {
    let lab = up_text("ospf-mtu.toml", |t| t);
    std::thread::sleep(Duration::from_secs(8));
    // r1 (MTU 1400) refuses our DDs advertising 1500; we refuse r2's 1500.
    for r in ["r1", "r2"] {
        let ns = lab.ospf_neighbors(r).expect("neighbours");
        assert!(
            ns.iter()
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
