//! Memory per LSA of the link-state database, measured the way the daemon
//! pays for it: a database of AS-external LSAs is loaded through a real
//! Database Exchange (a hand-written slave neighbour answering requests
//! with full updates), and the heap in use afterwards is compared with the
//! heap before. Allocations are counted per thread and rounded to glibc
//! malloc chunks (8 bytes of header, 16-byte granularity, 32 bytes at
//! least), so the figure tracks what `anycastd lab bench-db` sees as
//! anonymous memory. Also reported: the peak during the load, since freed
//! heap in the middle of the arena stays resident.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ospf::instance::{Config, Instance, InterfaceConfig, NetworkType, NsmState};
use ospf::lsa::{
    ExternalLsa, Lsa, LsaBody, LsaHeader, LsaKey, LsaType, Options, RawLsa, INITIAL_SEQUENCE_NUMBER,
};
use ospf::packet::{
    DatabaseDescription, DdFlags, Hello, LinkStateUpdate, Packet, PacketBody, ALL_SPF_ROUTERS,
    AUTYPE_NULL,
};

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

const LATENCY: Duration = Duration::from_millis(1);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The `i`th AS-external LSA of `adv`: 36 bytes, as FRR redistributes a
/// static route.
fn external(i: usize, adv: Ipv4Addr) -> RawLsa {
    let [_, b, c, d] = u32::try_from(i).unwrap().to_be_bytes();
    Lsa {
        header: LsaHeader {
            age: 1,
            options: Options::E,
            lsa_type: LsaType::AS_EXTERNAL,
            link_state_id: Ipv4Addr::new(198, b.wrapping_add(19), c, d),
            advertising_router: adv,
            seq: INITIAL_SEQUENCE_NUMBER,
            checksum: 0,
            length: 0,
        },
        body: LsaBody::AsExternal(ExternalLsa {
            network_mask: ip("255.255.255.255"),
            e_bit: true,
            metric: 20,
            forwarding_address: Ipv4Addr::UNSPECIFIED,
            external_route_tag: 0,
            tos: vec![],
        }),
    }
    .to_raw()
    .unwrap()
}

/// Heap in use after loading `n` LSAs (bytes, glibc chunks), minus the
/// heap before, and the peak on top of the heap before.
fn load(n: usize) -> (i64, i64) {
    let peer_id = ip("9.9.9.9");
    let peer_addr = ip("198.18.1.1");
    let me = ip("10.0.0.1");
    let base = Instant::now();
    let lsas: BTreeMap<LsaKey, RawLsa> = (0..n)
        .map(|i| {
            let l = external(i, peer_id);
            (l.header().key(), l)
        })
        .collect();
    let headers: Vec<LsaHeader> = lsas.values().map(|l| *l.header()).collect();
    // The first clone of a `Bytes` allocates its shared part: do it now,
    // outside the measurement.
    drop(lsas.values().cloned().collect::<Vec<_>>());
    let packet = |body| {
        Packet {
            router_id: peer_id,
            area_id: Ipv4Addr::UNSPECIFIED,
            autype: AUTYPE_NULL,
            auth_data: [0; 8],
            body,
        }
        .encode()
        .unwrap()
    };
    let hello = packet(PacketBody::Hello(Hello {
        network_mask: Ipv4Addr::UNSPECIFIED,
        hello_interval: 10,
        options: Options::E,
        router_priority: 1,
        router_dead_interval: 40,
        designated_router: Ipv4Addr::UNSPECIFIED,
        backup_designated_router: Ipv4Addr::UNSPECIFIED,
        neighbors: vec![me],
    }));
    let mut queue: Vec<(Instant, bytes::BytesMut)> = Vec::with_capacity(1024);
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
    queue.push((base + LATENCY, hello));
    let mut now = base;
    let mut next_header = 0usize;
    let mut last_dd: Option<(u32, bytes::BytesMut)> = None;
    loop {
        while let Some(t) = a.poll_transmit() {
            let p = Packet::decode(&t.bytes).unwrap();
            match p.body {
                PacketBody::DatabaseDescription(dd) => {
                    if dd.flags.contains(DdFlags::I) {
                        next_header = 0;
                    } else if last_dd
                        .as_ref()
                        .is_some_and(|(s, _)| *s == dd.dd_sequence_number)
                    {
                        let (_, bytes) = last_dd.clone().unwrap();
                        queue.push((now + LATENCY, bytes));
                        continue;
                    }
                    let chunk: Vec<LsaHeader> =
                        headers.iter().skip(next_header).take(70).copied().collect();
                    next_header += chunk.len();
                    let mut flags = DdFlags::empty();
                    flags.set(DdFlags::M, next_header < headers.len());
                    let reply = packet(PacketBody::DatabaseDescription(DatabaseDescription {
                        interface_mtu: 1500,
                        options: Options::E,
                        flags,
                        dd_sequence_number: dd.dd_sequence_number,
                        lsa_headers: chunk,
                    }));
                    last_dd = Some((dd.dd_sequence_number, reply.clone()));
                    queue.push((now + LATENCY, reply));
                }
                PacketBody::LinkStateRequest(r) => {
                    // Updates of at most 1476 bytes, as from a 1500-byte
                    // MTU.
                    let mut batch: Vec<RawLsa> = Vec::new();
                    let mut used = 0;
                    for e in &r.entries {
                        let l = lsas[&e.key().unwrap()].clone();
                        if used + l.as_bytes().len() > 1476 - 28 {
                            let lsas = std::mem::take(&mut batch);
                            queue.push((
                                now + LATENCY,
                                packet(PacketBody::LinkStateUpdate(LinkStateUpdate { lsas })),
                            ));
                            used = 0;
                        }
                        used += l.as_bytes().len();
                        batch.push(l);
                    }
                    if !batch.is_empty() {
                        queue.push((
                            now + LATENCY,
                            packet(PacketBody::LinkStateUpdate(LinkStateUpdate { lsas: batch })),
                        ));
                    }
                }
                _ => {}
            }
        }
        if queue.is_empty()
            && a.neighbors(now)
                .first()
                .is_some_and(|n| n.state == NsmState::Full)
        {
            break;
        }
        let next_packet = queue.iter().map(|(t, _)| *t).min();
        let next = [next_packet, a.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        assert!(
            next - base < Duration::from_secs(60),
            "not Full after a minute"
        );
        now = next;
        let mut due = Vec::new();
        queue.retain(|(t, b)| {
            if *t <= now {
                due.push(b.clone());
                false
            } else {
                true
            }
        });
        for bytes in due {
            a.handle_packet(now, 1, peer_addr, ALL_SPF_ROUTERS, &bytes);
        }
        if a.poll_timeout().is_some_and(|t| t <= now) {
            a.handle_timeout(now);
        }
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
    drop(queue);
    drop(last_dd);
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
    // request list of its size.
    assert!(peak_per_lsa < 60.0, "peak {peak_per_lsa:.1} bytes per LSA");
}
