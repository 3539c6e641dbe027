//! Codec benchmarks: a Link State Update of 100 LSAs (router-LSAs and
//! AS-external-LSAs, as an anycast director's area sees them), and the
//! Fletcher checksum of a 1,000-byte LSA.
//!
//! Run with `cargo bench -p ospf --bench codec`.

use std::hint::black_box;
use std::net::Ipv4Addr;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ospf::lsa::{
    lsa_checksum, verify_lsa_checksum, ExternalLsa, Lsa, LsaBody, LsaHeader, LsaType, Options,
    RawLsa, RouterFlags, RouterLink, RouterLinkType, RouterLsa, INITIAL_SEQUENCE_NUMBER,
};
use ospf::packet::{LinkStateUpdate, Packet, PacketBody, AUTYPE_NULL};

fn header(lsa_type: LsaType, link_state_id: Ipv4Addr, advertising_router: Ipv4Addr) -> LsaHeader {
    LsaHeader {
        age: 1,
        options: Options::E,
        lsa_type,
        link_state_id,
        advertising_router,
        seq: INITIAL_SEQUENCE_NUMBER,
        checksum: 0,
        length: 0,
    }
}

/// A router-LSA with one transit link and three stub /32 links (VIPs).
fn router_lsa(i: u32) -> Lsa {
    let router_id = Ipv4Addr::from(0x0a00_0000 + i);
    let mut links = vec![RouterLink {
        link_id: Ipv4Addr::new(10, 255, 0, 1),
        link_data: Ipv4Addr::from(0x0aff_0000 + i),
        link_type: RouterLinkType::Transit,
        metric: 10,
        tos: vec![],
    }];
    links.extend((0..3).map(|v| RouterLink {
        link_id: Ipv4Addr::new(192, 0, 2, v),
        link_data: Ipv4Addr::BROADCAST,
        link_type: RouterLinkType::Stub,
        metric: 0,
        tos: vec![],
    }));
    Lsa {
        header: header(LsaType::ROUTER, router_id, router_id),
        body: LsaBody::Router(RouterLsa {
            flags: RouterFlags::E,
            links,
        }),
    }
}

fn external_lsa(i: u32) -> Lsa {
    Lsa {
        header: header(
            LsaType::AS_EXTERNAL,
            Ipv4Addr::from(0xc633_6400 + (i << 8)),
            Ipv4Addr::new(10, 0, 0, 1),
        ),
        body: LsaBody::AsExternal(ExternalLsa {
            network_mask: Ipv4Addr::new(255, 255, 255, 0),
            e_bit: true,
            metric: 20,
            forwarding_address: Ipv4Addr::UNSPECIFIED,
            external_route_tag: i,
            tos: vec![],
        }),
    }
}

fn lsas() -> Vec<Lsa> {
    (0..50)
        .flat_map(|i| [router_lsa(i), external_lsa(i)])
        .collect()
}

fn update(lsas: Vec<RawLsa>) -> Packet {
    Packet {
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        area_id: Ipv4Addr::UNSPECIFIED,
        autype: AUTYPE_NULL,
        auth_data: [0; 8],
        body: PacketBody::LinkStateUpdate(LinkStateUpdate { lsas }),
    }
}

fn bench_lsu(c: &mut Criterion) {
    let lsas = lsas();
    let raw: Vec<RawLsa> = lsas.iter().map(|l| l.to_raw().unwrap()).collect();
    let packet = update(raw);
    let bytes = packet.encode().unwrap().freeze();
    assert_eq!(Packet::decode(&bytes).unwrap(), packet);

    let mut group = c.benchmark_group("lsu_100");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    // Framing only: header checks and one RawLsa per LSA.
    group.bench_function("decode", |b| {
        b.iter(|| Packet::decode(black_box(&bytes)).unwrap())
    });
    group.bench_function("decode_shared", |b| {
        b.iter(|| Packet::decode_bytes(black_box(&bytes)).unwrap())
    });
    // What the receive path does: frame, verify every checksum, decode
    // every body.
    group.bench_function("decode_verify_bodies", |b| {
        b.iter(|| {
            let packet = Packet::decode_bytes(black_box(&bytes)).unwrap();
            let PacketBody::LinkStateUpdate(lsu) = packet.body else {
                unreachable!()
            };
            lsu.lsas
                .iter()
                .filter(|l| l.verify_checksum())
                .map(|l| l.decode().unwrap())
                .collect::<Vec<_>>()
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| black_box(&packet).encode().unwrap())
    });
    // Origination: structured LSAs to bytes, checksums included.
    group.bench_function("encode_from_structured", |b| {
        b.iter(|| {
            let raw = black_box(&lsas)
                .iter()
                .map(|l| l.to_raw().unwrap())
                .collect();
            update(raw).encode().unwrap()
        })
    });
    group.finish();
}

fn bench_checksum(c: &mut Criterion) {
    let body: Vec<u8> = (0..980u32).map(|i| (i * 31 + 7) as u8).collect();
    let lsa = Lsa {
        header: header(
            LsaType::OPAQUE_AREA,
            Ipv4Addr::new(1, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 1),
        ),
        body: LsaBody::Opaque(Bytes::from(body)),
    };
    let bytes = lsa.encode().unwrap();
    assert_eq!(bytes.len(), 1000);
    assert!(verify_lsa_checksum(&bytes));

    let mut group = c.benchmark_group("fletcher_1000B");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("compute", |b| b.iter(|| lsa_checksum(black_box(&bytes))));
    group.bench_function("verify", |b| {
        b.iter(|| verify_lsa_checksum(black_box(&bytes)))
    });
    group.finish();
}

criterion_group!(benches, bench_lsu, bench_checksum);
criterion_main!(benches);
