//! A large OSPF database (issue acceptance item 6): an FRR router
//! redistributes 20,000 and 50,000 blackhole routes as AS-external LSAs and
//! an anycastd director on a point-to-point /31 must reach Full and hold
//! the router's database LSA for LSA.
//!
//! The same against a BIRD router, with 10,000; and the lab's bulk route
//! function itself.
//!
//! Needs root, FRR and BIRD (the README's test command installs them); a
//! missing prerequisite fails the test with the reason.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lab::scenario::{self, DbLoad};
use lab::topology::MAX_EXTERNAL_ROUTES;
use lab::{netns, wait_for, Implementation, Lab, LabOptions, LsaId, Topology};

/// One lab at a time: the timings mean little on a shared CPU.
static SERIAL: Mutex<()> = Mutex::new(());

fn load(routes: u32, router: Implementation) -> (Lab, DbLoad) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/ospf-scale-frr.toml");
    let base = Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut topo = scenario::scale_topology(&base, routes, Implementation::Anycastd)
        .unwrap_or_else(|e| panic!("{e}"));
    for n in topo.nodes.iter_mut().filter(|n| n.name == "r1") {
        n.implementation = Some(router);
    }
    let opts = LabOptions::with_anycastd(env!("CARGO_BIN_EXE_anycastd"));
    scenario::db_load(topo, opts, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{routes} routes: {e}"))
}

fn describe(ids: &BTreeSet<LsaId>) -> String {
    let shown: Vec<String> = ids
        .iter()
        .take(5)
        .map(|l| {
            format!(
                "type {} {} adv {} seq {:08x}",
                l.lsa_type, l.link_state_id, l.advertising_router, l.sequence
            )
        })
        .collect();
    format!("{} (first: {})", ids.len(), shown.join("; "))
}

fn scale(routes: u32, router: Implementation) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (lab, r) = load(routes, router);
    println!(
        "{routes} external routes from {router}: anycastd's database complete ({} LSAs) {:.2} s after its start; RSS {:.1} MB, CPU {:.2} s",
        r.lsas,
        r.elapsed.as_secs_f64(),
        r.usage.rss_kib as f64 / 1024.0,
        r.usage.cpu.as_secs_f64()
    );
    // The router sees the director Full too.
    let full = scenario::wait_full(&lab, "r1", 1, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(full[0].router_id.to_string(), "198.18.0.11");

    // LSA for LSA: (type, LS ID, advertising router, sequence number). The
    // router may still re-originate its Router-LSA after the adjacency, so
    // compare until both sides agree.
    // `show ospf database` is streamed in chunks: answering it must not
    // grow the daemon's peak memory by anything like the database's size
    // (61 MB at 50,000 LSAs when the reply was built whole).
    let pid = lab.anycastd_pid("d1").expect("d1's anycastd runs");
    // The peak so far is the start-up's: reset it to the current RSS
    // (proc(5): 5 > clear_refs), so what answering adds shows.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
    let hwm_before = peak_rss_kib(pid);
    let streamed = lab.ospf_database("d1").expect("d1's database");
    let hwm_after = peak_rss_kib(pid);
    let grew = hwm_after.saturating_sub(hwm_before);
    println!(
        "show ospf database of {} LSAs: anycastd's peak RSS (reset) {:.1} MB before, grew by {:.2} MB answering",
        streamed.len(),
        hwm_before as f64 / 1024.0,
        grew as f64 / 1024.0
    );
    assert!(
        grew < 2048,
        "answering the database grew the peak RSS by {grew} KiB"
    );

    let mut last = (BTreeSet::new(), BTreeSet::new());
    let same = wait_for(Duration::from_secs(20), Duration::from_millis(500), || {
        let theirs: BTreeSet<LsaId> = lab.ospf_database("r1").ok()?.into_iter().collect();
        let ours: BTreeSet<LsaId> = lab.ospf_database("d1").ok()?.into_iter().collect();
        last = (theirs, ours);
        (last.0 == last.1).then_some(())
    });
    let (theirs, ours) = last;
    assert!(
        same.is_some(),
        "databases differ: only on r1 {}; only on d1 {}",
        describe(&theirs.difference(&ours).copied().collect()),
        describe(&ours.difference(&theirs).copied().collect())
    );
    let externals = ours
        .iter()
        .filter(|l| l.lsa_type == 5 && l.advertising_router.to_string() == "198.18.0.1")
        .count();
    assert_eq!(externals, routes as usize, "r1's AS-external LSAs on d1");
    assert!(
        ours.iter()
            .any(|l| l.lsa_type == 1 && l.advertising_router.to_string() == "198.18.0.11"),
        "d1's own Router-LSA is in both databases"
    );
    assert_eq!(ours.len(), r.lsas, "the count db_load saw");
}

/// A process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

#[test]
fn database_of_20000_external_lsas() {
    scale(20_000, Implementation::Frr);
}

#[test]
fn database_of_50000_external_lsas() {
    scale(50_000, Implementation::Frr);
}

/// The same with a BIRD router, whose kernel protocol learns the
/// blackholes (`birdc show ospf lsadb` is compared).
#[test]
fn database_of_10000_external_lsas_from_bird() {
    scale(10_000, Implementation::Bird);
}

/// A namespace of the test's own, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
    }
}

/// The lab's bulk route function: the largest count a router may have,
/// fast, and a failure names the prefix that failed.
#[test]
fn blackhole_routes_in_bulk() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns(format!("acd-bulk-{}.x", std::process::id()));
    let path = netns::create(&ns.0).unwrap_or_else(|e| panic!("create namespace {}: {e}", ns.0));
    let router = Topology::parse(
        "t.toml",
        &format!(
            "name = \"t\"\n[[node]]\nname = \"r\"\nrole = \"router\"\n\
             implementation = \"frr\"\nexternal_routes = {MAX_EXTERNAL_ROUTES}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let prefixes: Vec<_> = router.nodes[0].external_prefixes().collect();
    let last = *prefixes.last().expect("routes");
    let start = Instant::now();
    lab::net::blackhole_routes(&path, prefixes.clone()).unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    println!(
        "{} blackhole routes in {:.3} s",
        prefixes.len(),
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let entry = lab::net::fib_entry(&path, last)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no route to {last}"));
    assert_eq!(entry.protocol, "static");
    assert!(entry.nexthops.is_empty(), "a blackhole: {entry:?}");
    // Adding one of them again fails and says which.
    let again = vec![
        "198.18.200.1/32".parse().expect("prefix"),
        prefixes[1234],
        "198.18.200.2/32".parse().expect("prefix"),
    ];
    let err = lab::net::blackhole_routes(&path, again).expect_err("a duplicate route");
    assert!(
        err.to_string().contains("blackhole 198.19.4.210/32"),
        "{err}"
    );
}
