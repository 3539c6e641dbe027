//! Golden tests on real packets captured from FRR 8.4 and BIRD 2.0.12 in the
//! lab (see tests/data/README.md): every packet authenticates with the
//! lab's keys, decodes, and re-encodes (and re-signs) to the same bytes;
//! every LSA checksum verifies and every LSA re-encodes byte for byte.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::Path;

use bytes::Bytes;
use ospf::auth::{self, Algorithm, AuthConfig, Key, NeighborAuthState};
use ospf::packet::{Packet, PacketBody};

/// The OSPF payloads of a capture (Ethernet, IPv4, protocol 89), with
/// their IP source.
fn ospf_payloads(file: &str) -> Vec<(Ipv4Addr, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    let data = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = pcap_file::pcap::PcapReader::new(data).expect("pcap header");
    let mut out = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.expect("pcap record");
        let frame = &pkt.data;
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4 over Ethernet");
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        assert_eq!(ip[9], 89, "IP protocol 89");
        assert_eq!(ip[8], 1, "OSPF is sent with TTL 1");
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        out.push((src, ip[ihl..total].to_vec()));
    }
    assert!(out.len() > 20, "{file}: too few packets");
    out
}

fn type_name(body: &PacketBody) -> &'static str {
    match body {
        PacketBody::Hello(_) => "hello",
        PacketBody::DatabaseDescription(_) => "dd",
        PacketBody::LinkStateRequest(_) => "lsr",
        PacketBody::LinkStateUpdate(_) => "lsu",
        PacketBody::LinkStateAck(_) => "lsack",
    }
}

/// Checks a whole capture; returns how many packets of each type it held.
fn check(file: &str, config: &AuthConfig) -> BTreeMap<&'static str, usize> {
    let mut seen = BTreeMap::new();
    let mut states: HashMap<Ipv4Addr, NeighborAuthState> = HashMap::new();
    let mut lsas = 0;
    for (i, (src, bytes)) in ospf_payloads(file).into_iter().enumerate() {
        let state = states.entry(src).or_default();
        let v = auth::verify(config, &bytes, state, 0)
            .unwrap_or_else(|e| panic!("{file} #{i} from {src}: auth: {e}"));
        let body = &bytes[..v.packet_len];
        let packet = Packet::decode(body).unwrap_or_else(|e| panic!("{file} #{i}: decode: {e}"));
        *seen.entry(type_name(&packet.body)).or_insert(0) += 1;

        // Re-encode and re-sign with what the packet carried: the result must
        // be the captured bytes, digest or checksum included.
        let mut again = packet.encode().expect("encode");
        auth::sign(config, &mut again, v.seq.unwrap_or(0), 0).expect("sign");
        assert_eq!(
            &again[..],
            &bytes[..v.packet_len + v.trailer_len],
            "{file} #{i}: re-encoded"
        );

        if let PacketBody::LinkStateUpdate(lsu) = &packet.body {
            for raw in &lsu.lsas {
                assert!(
                    raw.verify_checksum(),
                    "{file} #{i}: LSA checksum {:?}",
                    raw.header()
                );
                let lsa = raw
                    .decode()
                    .unwrap_or_else(|e| panic!("{file} #{i}: LSA: {e}"));
                let encoded: Bytes = lsa.encode().expect("encode LSA");
                assert_eq!(&encoded, raw.as_bytes(), "{file} #{i}: LSA re-encoded");
                lsas += 1;
            }
        }
    }
    assert!(lsas > 0, "{file}: no LSA checked");
    for t in ["hello", "dd", "lsr", "lsu", "lsack"] {
        assert!(
            seen.get(t).copied().unwrap_or(0) > 0,
            "{file}: no {t} packet in {seen:?}"
        );
    }
    seen
}

#[test]
fn frr_lan_without_authentication() {
    check("lan-frr-null.pcap", &AuthConfig::Null);
}

#[test]
fn bird_lan_without_authentication() {
    check("lan-bird-null.pcap", &AuthConfig::Null);
}

#[test]
fn frr_simple_password() {
    check(
        "p2p-frr-simple.pcap",
        &AuthConfig::simple("labpass").expect("password"),
    );
}

#[test]
fn frr_and_bird_keyed_md5() {
    let key = Key::new(7, Algorithm::KeyedMd5, "lab-md5-key");
    check(
        "p2p-frr-bird-md5.pcap",
        &AuthConfig::cryptographic(vec![key], false).expect("keys"),
    );
}

#[test]
fn bird_hmac_sha256() {
    let key = Key::new(3, Algorithm::HmacSha256, "lab-hmac-sha256-key");
    check(
        "p2p-bird-hmac-sha256.pcap",
        &AuthConfig::cryptographic(vec![key], false).expect("keys"),
    );
}

#[test]
fn wrong_keys_are_refused_with_a_reason() {
    let payloads = ospf_payloads("p2p-frr-bird-md5.pcap");
    let (_, first) = &payloads[0];
    let wrong =
        AuthConfig::cryptographic(vec![Key::new(7, Algorithm::KeyedMd5, "not-the-key")], false)
            .expect("keys");
    let err = auth::verify(&wrong, first, &mut NeighborAuthState::new(), 0).expect_err("wrong key");
    assert_eq!(err.reason(), "digest-mismatch");
    let other_id =
        AuthConfig::cryptographic(vec![Key::new(8, Algorithm::KeyedMd5, "lab-md5-key")], false)
            .expect("keys");
    let err = auth::verify(&other_id, first, &mut NeighborAuthState::new(), 0).expect_err("key id");
    assert_eq!(err.reason(), "unknown-key");
    let err = auth::verify(&AuthConfig::Null, first, &mut NeighborAuthState::new(), 0)
        .expect_err("autype");
    assert_eq!(err.reason(), "autype-mismatch");
}
