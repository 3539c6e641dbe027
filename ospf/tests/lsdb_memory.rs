//! Memory per LSA of the link-state database, measured the way the daemon
//! pays for it: a database of AS-external LSAs is loaded through a real
//! Database Exchange (a hand-written slave neighbour answering requests
//! with full updates), and the heap in use afterwards is compared with the
//! heap before. Allocations are counted per thread and rounded to glibc
//! malloc chunks (8 bytes of header, 16-byte granularity, 32 bytes at
//! least), so the figure tracks what `anycastd-lab bench-db` sees as
//! anonymous memory. Also reported: the peak during the load, since freed
//! heap in the middle of the arena stays resident.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ospf::instance::{Config, Instance, InterfaceConfig, NetworkType, NsmState};
use ospf::lsa::{RawLsa, INITIAL_SEQUENCE_NUMBER};

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

/// The size of the glibc malloc chunk serving a request of `size` bytes.
fn chunk(size: usize) -> i64 {
    let c = (size + 8).div_ceil(16) * 16;
    i64::try_from(c.max(32)).unwrap_or(i64::MAX)
}

fn add(delta: i64) {
    // `try_with`: thread-local storage may be gone while a thread exits.
    let _ = LIVE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only
// thread-local counters are updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(chunk(layout.size()));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-chunk(layout.size()));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(chunk(layout.size()));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(chunk(new_size) - chunk(layout.size()));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> i64 {
    LIVE.with(Cell::get)
}

fn reset_peak() {
    PEAK.with(|p| p.set(live()));
}

fn peak() -> i64 {
    PEAK.with(Cell::get)
}

mod common;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Heap in use after loading `n` LSAs (bytes, glibc chunks), minus the
/// heap before, and the peak on top of the heap before.
fn load(n: usize) -> (i64, i64) {
    let peer_id = ip("9.9.9.9");
    let me = ip("10.0.0.1");
    let base = Instant::now();
    let lsas: Vec<RawLsa> = (0..n)
        .map(|i| common::external(i, peer_id, ip("255.255.255.255"), INITIAL_SEQUENCE_NUMBER))
        .collect();
    // The first clone of a `Bytes` allocates its shared part: do it now,
    // outside the measurement.
    drop(lsas.to_vec());
    let mut peer = common::SlavePeer::new(peer_id, Ipv4Addr::UNSPECIFIED, ip("198.18.1.1"), lsas);
    let mut a = Instance::new(
        Config {
            router_id: me,
            ..Config::default()
        },
        base,
        1_700_000_000,
    );
    let mut cfg = InterfaceConfig::new("a0", 1, ip("198.18.1.0"), 31, Ipv4Addr::UNSPECIFIED);
    cfg.network = NetworkType::PointToPoint;
    a.add_interface(base, cfg);
    let before = live();
    reset_peak();
    peer.hello(base, me);
    let mut now = base;
    loop {
        while let Some(t) = a.poll_transmit() {
            // Updates of at most 1476 bytes, as from a 1500-byte MTU.
            for update in peer.answer(now, &t.bytes, 1476 - 28) {
                peer.queue.push((now + common::LATENCY, update));
            }
        }
        if peer.queue.is_empty()
            && a.neighbors(now)
                .first()
                .is_some_and(|n| n.state == NsmState::Full)
        {
            break;
        }
        peer.step(&mut a, &mut now, base, Duration::from_secs(60));
    }
    // Let the delayed acknowledgements go.
    let settle = now + Duration::from_secs(2);
    while let Some(t) = a.poll_timeout().filter(|t| *t <= settle) {
        now = t;
        a.handle_timeout(now);
        while a.poll_transmit().is_some() {}
    }
    let after = live();
    let peak = peak();
    assert!(a.database(now).len() > n, "every LSA loaded");
    drop(peer);
    drop(a);
    assert!(live() - before < 1024, "the peer's side is not counted");
    (after - before, peak - before)
}

#[test]
fn bytes_per_lsa_after_a_database_load() {
    const SMALL: usize = 5_000;
    const LARGE: usize = 25_000;
    let (small, small_peak) = load(SMALL);
    let (large, large_peak) = load(LARGE);
    // The slope between the two sizes: fixed costs cancel out.
    let per_lsa = (large - small) as f64 / (LARGE - SMALL) as f64;
    let peak_per_lsa = (large_peak - small_peak) as f64 / (LARGE - SMALL) as f64;
    eprintln!(
        "{SMALL} LSAs: {small} bytes (peak {small_peak}); {LARGE} LSAs: {large} bytes (peak {large_peak}); \
         {per_lsa:.1} bytes per LSA, peak {peak_per_lsa:.1}"
    );
    // 45 bytes of slot each, chunks filled by the in-order load (about
    // 200 with boxed entries in a B-tree sharing packet buffers).
    assert!(per_lsa < 50.0, "{per_lsa:.1} bytes per LSA");
    // Nothing big is built on the way: no copy of the database, no
    // request list of its size. The acknowledgements of the load wait for
    // the delayed-ack timer (so as not to slow the neighbour's answers),
    // 20 bytes of LSA header each in packet-sized pieces: about 67 in all.
    assert!(peak_per_lsa < 75.0, "peak {peak_per_lsa:.1} bytes per LSA");
}
