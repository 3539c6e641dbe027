//! Forged OSPFv2 packets for the lab's [`crate::rogue`] node: one builder
//! per class of hostile input, each returning the packets to send (with
//! the IPv4 source and destination they must carry).
//!
//! Everything a receiver checks first is right: the OSPF checksum
//! (AuType 0, no authentication), the sender's router ID and address
//! (those of the router being impersonated, usually the LAN's DR), and
//! every LSA's Fletcher checksum. What is wrong is the content. Headers,
//! well-formed LSAs, Database Description and Link State Request packets
//! come from the `ospf` crate's codec; malformed LSA bodies are written
//! byte by byte and appended to a Link State Update the codec encoded
//! empty, so the builders do not depend on what the codec accepts.
//!
//! Foreign LSAs carry advertising routers from [`FOREIGN_ROUTERS`], which
//! no lab node uses, so they are plainly nobody's.

use std::fmt;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use ospf::lsa::{
    lsa_checksum, ExternalLsa, Lsa, LsaBody, LsaHeader, LsaKey, LsaType, NetworkLsa, Options,
    RouterFlags, RouterLink, RouterLinkType, RouterLsa, INITIAL_SEQUENCE_NUMBER, LSA_HEADER_LEN,
    MAX_SEQUENCE_NUMBER,
};
use ospf::packet::{
    compute_checksum, DatabaseDescription, DdFlags, LinkStateRequest, LinkStateUpdate, LsRequest,
    Packet, PacketBody, ALL_SPF_ROUTERS, AUTYPE_NULL, HEADER_LEN,
};

/// Advertising routers of the foreign LSAs (198.18.200.0/24: inside the
/// lab range, used by no topology).
pub const FOREIGN_ROUTERS: &str = "198.18.200.0/24";

/// The router a forged packet claims to come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub router_id: Ipv4Addr,
    /// Its interface address on the LAN: the packets' IPv4 source.
    pub addr: Ipv4Addr,
    pub area: Ipv4Addr,
}

/// A director whose own LSAs get forged: what its Router-LSA holds on a
/// broadcast LAN with a DR (RFC 2328 12.4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Victim {
    pub router_id: Ipv4Addr,
    /// Its interface address on the LAN (the transit link's Link Data).
    pub addr: Ipv4Addr,
    /// The DR's interface address (the transit link's Link ID).
    pub dr_addr: Ipv4Addr,
    /// The transit link's cost.
    pub cost: u16,
    /// The Options of its Router-LSA.
    pub options: Options,
}

/// One packet to send.
#[derive(Debug, Clone)]
pub struct Forged {
    /// What it is, for reports.
    pub what: String,
    /// For malformed LSAs: the one malformation all its LSAs share.
    pub malformation: Option<Malformation>,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The OSPF packet (the IPv4 payload).
    pub bytes: Vec<u8>,
    /// The keys of the LSAs a Link State Update carries.
    pub lsas: Vec<LsaKey>,
}

/// What is wrong with the LSAs of one malformed-LSAs packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Malformation {
    /// A Router-LSA whose "# links" disagrees with its length (too many
    /// links announced; too few).
    RouterLinkCount,
    /// An LSA length that is not a multiple of 4 (opaque LSAs, whose
    /// bodies are otherwise free-form).
    LengthNotMultipleOf4,
    /// A Router-LSA whose Link State ID is not its Advertising Router.
    RouterIdMismatch,
    /// Summary-LSAs (types 3 and 4) with only a network mask.
    SummaryTooShort,
    /// An AS-external-LSA of 12 body bytes (the route tag missing).
    ExternalTooShort,
    /// A Network-LSA with a network mask and no attached router.
    NetworkWithoutRouters,
    /// An area-scope opaque LSA of Opaque Type 1 (Traffic Engineering,
    /// RFC 3630) whose top-level TLV claims 40 value bytes and has 4.
    OpaqueTlvOverrun,
    /// Well-formed Router-LSAs whose LS age is above MaxAge (3601, 65535).
    AgeAboveMaxAge,
    /// A well-formed Router-LSA with LS sequence number 0x80000000, which
    /// RFC 2328 12.1.6 reserves (never used).
    ReservedSequence,
    /// Random body bytes (a multiple of 4, 4 to 48) under LS type N; some
    /// may happen to be well-formed for their type. Types 6 and 8 are
    /// unknown to RFC 2328 receivers, 9-11 opaque (RFC 5250).
    RandomBody(u8),
}

impl fmt::Display for Malformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformation::RouterLinkCount => f.write_str("router-link-count"),
            Malformation::LengthNotMultipleOf4 => f.write_str("length-not-multiple-of-4"),
            Malformation::RouterIdMismatch => f.write_str("router-lsid-not-adv-router"),
            Malformation::SummaryTooShort => f.write_str("summary-too-short"),
            Malformation::ExternalTooShort => f.write_str("external-too-short"),
            Malformation::NetworkWithoutRouters => f.write_str("network-without-routers"),
            Malformation::OpaqueTlvOverrun => f.write_str("opaque-tlv-overrun"),
            Malformation::AgeAboveMaxAge => f.write_str("age-above-max-age"),
            Malformation::ReservedSequence => f.write_str("sequence-0x80000000"),
            Malformation::RandomBody(t) => write!(f, "random-body-type-{t}"),
        }
    }
}

/// A foreign advertising router: 198.18.200.`n`.
fn foreign(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 200, n)
}

/// A small deterministic generator (xorshift64), so every run sends the
/// same "random" bodies and a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// An LSA of exactly `body` after a header with these fields; the length
/// field is the real length and the Fletcher checksum is computed over
/// whatever the bytes are (RFC 2328 12.1.7).
pub fn raw_lsa(
    age: u16,
    lsa_type: u8,
    link_state_id: Ipv4Addr,
    advertising_router: Ipv4Addr,
    seq: i32,
    body: &[u8],
) -> Vec<u8> {
    let len = LSA_HEADER_LEN + body.len();
    let header = LsaHeader {
        age,
        options: Options::E,
        lsa_type: LsaType(lsa_type),
        link_state_id,
        advertising_router,
        seq,
        checksum: 0,
        length: u16::try_from(len).unwrap_or(u16::MAX),
    };
    let mut bytes = Vec::with_capacity(len);
    header.encode(&mut bytes);
    bytes.extend_from_slice(body);
    let sum = lsa_checksum(&bytes);
    bytes[16..18].copy_from_slice(&sum.to_be_bytes());
    bytes
}

/// A well-formed LSA through the codec (length and checksum filled in).
fn encoded(lsa: &Lsa) -> Vec<u8> {
    lsa.encode()
        .map(|b| b.to_vec())
        .expect("a well-formed LSA encodes")
}

/// A well-formed foreign Router-LSA: one stub link to its own /32.
fn foreign_router_lsa(rid: Ipv4Addr, seq: i32) -> Lsa {
    Lsa {
        header: LsaHeader {
            age: 1,
            options: Options::E,
            lsa_type: LsaType::ROUTER,
            link_state_id: rid,
            advertising_router: rid,
            seq,
            checksum: 0,
            length: 0,
        },
        body: LsaBody::Router(RouterLsa {
            flags: RouterFlags::empty(),
            links: vec![RouterLink {
                link_id: rid,
                link_data: Ipv4Addr::BROADCAST,
                link_type: RouterLinkType::Stub,
                metric: 10,
                tos: vec![],
            }],
        }),
    }
}

/// Sets the LS age of an encoded LSA (not covered by the checksum).
fn with_age(mut lsa: Vec<u8>, age: u16) -> Vec<u8> {
    lsa[0..2].copy_from_slice(&age.to_be_bytes());
    lsa
}

/// The keys of encoded LSAs (the header's type, Link State ID and
/// Advertising Router).
fn keys(lsas: &[Vec<u8>]) -> Vec<LsaKey> {
    lsas.iter()
        .filter_map(|l| LsaHeader::decode(l).ok())
        .map(|h| h.key())
        .collect()
}

/// One router link in wire form (RFC 2328 A.4.2): Link ID, Link Data,
/// type, # TOS 0, metric.
fn link_bytes(id: Ipv4Addr, data: Ipv4Addr, link_type: u8, metric: u16) -> Vec<u8> {
    let mut b = Vec::with_capacity(12);
    b.extend_from_slice(&id.octets());
    b.extend_from_slice(&data.octets());
    b.extend_from_slice(&[link_type, 0]);
    b.extend_from_slice(&metric.to_be_bytes());
    b
}

/// A Link State Update from `from` carrying `lsas` (each exactly one LSA's
/// bytes): the codec encodes the packet empty, the LSAs are appended and
/// the count, the length and the OSPF checksum (RFC 2328 D.4.1) set.
pub fn link_state_update(from: &Identity, lsas: &[Vec<u8>]) -> Vec<u8> {
    let empty = Packet {
        router_id: from.router_id,
        area_id: from.area,
        autype: AUTYPE_NULL,
        auth_data: [0; 8],
        body: PacketBody::LinkStateUpdate(LinkStateUpdate { lsas: vec![] }),
    };
    let mut p = empty.encode().expect("an empty update encodes").to_vec();
    for l in lsas {
        p.extend_from_slice(l);
    }
    let count = u32::try_from(lsas.len()).unwrap_or(u32::MAX);
    p[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&count.to_be_bytes());
    let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p[12..14].copy_from_slice(&[0, 0]);
    let sum = compute_checksum(&p);
    p[12..14].copy_from_slice(&sum.to_be_bytes());
    p
}

fn encode_packet(from: &Identity, body: PacketBody) -> Vec<u8> {
    Packet {
        router_id: from.router_id,
        area_id: from.area,
        autype: AUTYPE_NULL,
        auth_data: [0; 8],
        body,
    }
    .encode()
    .expect("a small packet encodes")
    .to_vec()
}

/// The malformed LSAs of one class, by malformation.
fn malformed(m: Malformation) -> Vec<Vec<u8>> {
    let seq = INITIAL_SEQUENCE_NUMBER + 0x10;
    let mask24 = Ipv4Addr::new(255, 255, 255, 0);
    match m {
        Malformation::RouterLinkCount => {
            let stub = |n: u8| link_bytes(foreign(n), Ipv4Addr::BROADCAST, 3, 10);
            // Three links announced, one present.
            let mut few = vec![0, 0, 0, 3];
            few.extend(stub(1));
            // One link announced, two present.
            let mut many = vec![0, 0, 0, 1];
            many.extend(stub(2));
            many.extend(stub(3));
            vec![
                raw_lsa(1, 1, foreign(1), foreign(1), seq, &few),
                raw_lsa(1, 1, foreign(2), foreign(2), seq, &many),
            ]
        }
        Malformation::LengthNotMultipleOf4 => {
            // A TLV (type 0x8001, experimental) of 1 and 2 value bytes,
            // unpadded: LSA lengths 25 and 26.
            vec![
                raw_lsa(
                    1,
                    10,
                    Ipv4Addr::new(0xfe, 0, 0, 10),
                    foreign(10),
                    seq,
                    &[0x80, 0x01, 0, 1, 0xaa],
                ),
                raw_lsa(
                    1,
                    11,
                    Ipv4Addr::new(0xfe, 0, 0, 11),
                    foreign(11),
                    seq,
                    &[0x80, 0x01, 0, 2, 0xaa, 0xbb],
                ),
            ]
        }
        Malformation::RouterIdMismatch => {
            let mut lsa = foreign_router_lsa(foreign(21), seq);
            lsa.header.link_state_id = foreign(20);
            vec![encoded(&lsa)]
        }
        Malformation::SummaryTooShort => vec![
            raw_lsa(
                1,
                3,
                Ipv4Addr::new(198, 18, 210, 0),
                foreign(30),
                seq,
                &mask24.octets(),
            ),
            raw_lsa(1, 4, foreign(32), foreign(31), seq, &[0, 0, 0, 0]),
        ],
        Malformation::ExternalTooShort => {
            // Mask, E bit and metric 20, forwarding address; no tag.
            let mut body = mask24.octets().to_vec();
            body.extend_from_slice(&[0x80, 0, 0, 20]);
            body.extend_from_slice(&[0, 0, 0, 0]);
            vec![raw_lsa(
                1,
                5,
                Ipv4Addr::new(198, 18, 211, 0),
                foreign(40),
                seq,
                &body,
            )]
        }
        Malformation::NetworkWithoutRouters => vec![raw_lsa(
            1,
            2,
            foreign(50),
            foreign(50),
            seq,
            &mask24.octets(),
        )],
        Malformation::OpaqueTlvOverrun => {
            // TE Router Address TLV (type 1) claiming 40 bytes, holding 4.
            let body = [0, 1, 0, 40, 198, 18, 200, 60];
            vec![raw_lsa(
                1,
                10,
                Ipv4Addr::new(1, 0, 0, 60),
                foreign(60),
                seq,
                &body,
            )]
        }
        Malformation::AgeAboveMaxAge => vec![
            with_age(encoded(&foreign_router_lsa(foreign(70), seq)), 3601),
            with_age(encoded(&foreign_router_lsa(foreign(71), seq)), u16::MAX),
        ],
        Malformation::ReservedSequence => {
            vec![encoded(&foreign_router_lsa(foreign(80), i32::MIN))]
        }
        Malformation::RandomBody(t) => {
            let mut rng = XorShift(0x0bad_c0de_5eed_0000 | u64::from(t));
            let len = 4 * (1 + (rng.next() % 12) as usize);
            let adv = foreign(100 + t);
            let lsid = if (9..=11).contains(&t) {
                // Opaque Type and Opaque ID (RFC 5250 3), random.
                Ipv4Addr::from(rng.next() as u32)
            } else {
                adv
            };
            vec![raw_lsa(1, t, lsid, adv, seq, &rng.bytes(len))]
        }
    }
}

/// Every malformation [`malformed_lsas`] sends, in order.
pub fn malformations() -> Vec<Malformation> {
    let mut v = vec![
        Malformation::RouterLinkCount,
        Malformation::LengthNotMultipleOf4,
        Malformation::RouterIdMismatch,
        Malformation::SummaryTooShort,
        Malformation::ExternalTooShort,
        Malformation::NetworkWithoutRouters,
        Malformation::OpaqueTlvOverrun,
        Malformation::AgeAboveMaxAge,
        Malformation::ReservedSequence,
    ];
    v.extend((1..=11).map(Malformation::RandomBody));
    v
}

/// **malformed-lsas**: Link State Updates from `from` to AllSPFRouters
/// whose LSAs have valid Fletcher checksums and bodies that do not fit
/// their type (see [`Malformation`]), advertised by foreign routers. One
/// update per malformation, so that each one is counted whether a
/// receiver drops the bad LSA alone or the whole packet.
pub fn malformed_lsas(from: &Identity) -> Vec<Forged> {
    malformations()
        .into_iter()
        .map(|m| {
            let lsas = malformed(m);
            Forged {
                what: format!("LSU with {} {m} LSA(s)", lsas.len()),
                malformation: Some(m),
                src: from.addr,
                dst: ALL_SPF_ROUTERS,
                bytes: link_state_update(from, &lsas),
                lsas: keys(&lsas),
            }
        })
        .collect()
}

/// **dd-abuse**: one Database Description packet from `from` to each
/// address in `to` while their adjacency with `from` is Full, so each
/// must see a SeqNumberMismatch (RFC 2328 10.6, states Loading and Full):
/// to the 1st, 3rd... an empty packet with I, M and MS set (a new
/// exchange started out of the blue); to the 2nd, 4th... a slave's packet
/// (MS clear) with a DD sequence number nobody sent.
pub fn dd_abuse(from: &Identity, to: &[Ipv4Addr], mtu: u16) -> Vec<Forged> {
    to.iter()
        .enumerate()
        .map(|(i, &dst)| {
            let restart = i % 2 == 0;
            let (flags, what) = if restart {
                (DdFlags::I | DdFlags::M | DdFlags::MS, "DD with I|M|MS")
            } else {
                (DdFlags::empty(), "DD as slave, wrong sequence number")
            };
            let dd = DatabaseDescription {
                interface_mtu: mtu,
                options: Options::E,
                flags,
                dd_sequence_number: 0x5eed_0000 + i as u32,
                lsa_headers: vec![],
            };
            Forged {
                what: format!("{what} to {dst}"),
                malformation: None,
                src: from.addr,
                dst,
                bytes: encode_packet(from, PacketBody::DatabaseDescription(dd)),
                lsas: vec![],
            }
        })
        .collect()
}

/// The LSA [`lsr_abuse`] asks for: a Router-LSA of a router that exists
/// nowhere.
pub fn unknown_lsa() -> LsRequest {
    LsRequest {
        ls_type: 1,
        link_state_id: foreign(201),
        advertising_router: foreign(201),
    }
}

/// **lsr-abuse**: a Link State Request from `from` to each address in
/// `to` for an LSA nobody has ([`unknown_lsa`]): BadLSReq (RFC 2328 10.7).
pub fn lsr_abuse(from: &Identity, to: &[Ipv4Addr]) -> Vec<Forged> {
    to.iter()
        .map(|&dst| Forged {
            what: format!("LSR for an unknown LSA to {dst}"),
            malformation: None,
            src: from.addr,
            dst,
            bytes: encode_packet(
                from,
                PacketBody::LinkStateRequest(LinkStateRequest {
                    entries: vec![unknown_lsa()],
                }),
            ),
            lsas: vec![],
        })
        .collect()
}

/// A copy of `victim`'s Router-LSA with sequence number `seq` and no VIP
/// stub links: only the transit link to the DR.
pub fn victim_router_lsa(victim: &Victim, seq: i32) -> Lsa {
    Lsa {
        header: LsaHeader {
            age: 1,
            options: victim.options,
            lsa_type: LsaType::ROUTER,
            link_state_id: victim.router_id,
            advertising_router: victim.router_id,
            seq,
            checksum: 0,
            length: 0,
        },
        body: LsaBody::Router(RouterLsa {
            flags: RouterFlags::empty(),
            links: vec![RouterLink {
                link_id: victim.dr_addr,
                link_data: victim.addr,
                link_type: RouterLinkType::Transit,
                metric: victim.cost,
                tos: vec![],
            }],
        }),
    }
}

/// How far above the victim's current sequence number
/// [`forged_newer_self`] goes.
pub const NEWER_BY: i32 = 0x1_0000;

/// **forged-newer-self**: `victim`'s own Router-LSA, [`NEWER_BY`] above
/// its current sequence number `current_seq` and without its VIP stub
/// links, in an update from `from` to AllSPFRouters. The victim must take
/// its LSA back with a higher number (RFC 2328 13.4).
pub fn forged_newer_self(from: &Identity, victim: &Victim, current_seq: i32) -> Forged {
    let seq = current_seq
        .saturating_add(NEWER_BY)
        .min(MAX_SEQUENCE_NUMBER - 1);
    forged_self(from, victim, seq, "newer")
}

/// **forged-maxseq-self**: the same at MaxSequenceNumber (0x7fffffff):
/// the victim cannot go higher and must flush it and start over
/// (RFC 2328 12.1.6).
pub fn forged_maxseq_self(from: &Identity, victim: &Victim) -> Forged {
    forged_self(from, victim, MAX_SEQUENCE_NUMBER, "MaxSequenceNumber")
}

fn forged_self(from: &Identity, victim: &Victim, seq: i32, what: &str) -> Forged {
    let lsa = [encoded(&victim_router_lsa(victim, seq))];
    Forged {
        what: format!(
            "LSU with {}'s Router-LSA at {what} {:#010x}, no VIP",
            victim.router_id, seq as u32
        ),
        malformation: None,
        src: from.addr,
        dst: ALL_SPF_ROUTERS,
        bytes: link_state_update(from, &lsa),
        lsas: keys(&lsa),
    }
}

/// The AS-external route [`unoriginated_self`] pins on the victim.
pub fn unoriginated_external() -> Ipv4Network {
    Ipv4Network::new(Ipv4Addr::new(198, 18, 250, 0), 24).expect("a /24")
}

/// **unoriginated-self**: LSAs carrying `victim`'s router ID that it does
/// not originate, in an update from `from` to AllSPFRouters: a
/// Network-LSA for `unused` (an address of the LAN's prefix nobody has,
/// as if the victim were DR there) listing the victim and `from`, and an
/// AS-external-LSA for [`unoriginated_external`]. The victim must flush
/// them (RFC 2328 13.4).
pub fn unoriginated_self(from: &Identity, victim: &Victim, unused: Ipv4Network) -> Forged {
    let header = |lsa_type, link_state_id| LsaHeader {
        age: 1,
        options: Options::E,
        lsa_type,
        link_state_id,
        advertising_router: victim.router_id,
        seq: INITIAL_SEQUENCE_NUMBER + 0x100,
        checksum: 0,
        length: 0,
    };
    let network = Lsa {
        header: header(LsaType::NETWORK, unused.ip()),
        body: LsaBody::Network(NetworkLsa {
            network_mask: unused.mask(),
            attached_routers: vec![victim.router_id, from.router_id],
        }),
    };
    let ext = unoriginated_external();
    let external = Lsa {
        header: header(LsaType::AS_EXTERNAL, ext.network()),
        body: LsaBody::AsExternal(ExternalLsa {
            network_mask: ext.mask(),
            e_bit: true,
            metric: 20,
            forwarding_address: Ipv4Addr::UNSPECIFIED,
            external_route_tag: 0,
            tos: vec![],
        }),
    };
    let lsas = [encoded(&network), encoded(&external)];
    Forged {
        what: format!(
            "LSU with a Network-LSA {} and an AS-external-LSA {ext} advertised by {}",
            unused.ip(),
            victim.router_id
        ),
        malformation: None,
        src: from.addr,
        dst: ALL_SPF_ROUTERS,
        bytes: link_state_update(from, &lsas),
        lsas: keys(&lsas),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ospf::lsa::{verify_lsa_checksum, RawLsa};
    use ospf::packet::{verify_checksum, PacketHeader};

    fn dr() -> Identity {
        Identity {
            router_id: Ipv4Addr::new(198, 18, 0, 1),
            addr: Ipv4Addr::new(198, 18, 0, 1),
            area: Ipv4Addr::UNSPECIFIED,
        }
    }

    fn victim() -> Victim {
        Victim {
            router_id: Ipv4Addr::new(198, 18, 0, 11),
            addr: Ipv4Addr::new(198, 18, 0, 11),
            dr_addr: Ipv4Addr::new(198, 18, 0, 1),
            cost: 10,
            options: Options::E,
        }
    }

    /// The LSAs of an update, split by their length fields.
    fn lsas_of(p: &[u8]) -> Vec<Vec<u8>> {
        let count = u32::from_be_bytes(p[24..28].try_into().expect("4 bytes"));
        let mut at = 28;
        let mut out = Vec::new();
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([p[at + 18], p[at + 19]]));
            out.push(p[at..at + len].to_vec());
            at += len;
        }
        assert_eq!(at, p.len(), "the LSAs fill the packet");
        out
    }

    #[test]
    fn malformed_updates_carry_valid_checksums_and_bad_bodies() {
        let packets = malformed_lsas(&dr());
        assert_eq!(packets.len(), malformations().len());
        for f in &packets {
            assert!(verify_checksum(&f.bytes), "{}: OSPF checksum", f.what);
            assert!(f.bytes.len() + 20 <= 1500, "{}: fits the MTU", f.what);
            // The header only: a codec that refuses malformed LSAs may
            // refuse the whole packet.
            let h = PacketHeader::decode(&f.bytes).expect("a header");
            assert_eq!((h.packet_type, h.router_id), (4, dr().router_id));
            assert_eq!(usize::from(h.length), f.bytes.len());
            let keys: Vec<LsaKey> = lsas_of(&f.bytes)
                .iter()
                .map(|l| LsaHeader::decode(l).expect("an LSA header").key())
                .collect();
            assert_eq!(f.lsas, keys, "{}: the keys it lists", f.what);
            assert_eq!(f.dst, ALL_SPF_ROUTERS);
            for l in lsas_of(&f.bytes) {
                assert!(verify_lsa_checksum(&l), "{}: Fletcher checksum", f.what);
                let m = f.malformation.expect("labelled");
                let decoded = RawLsa::from_bytes(l.clone().into()).and_then(|r| r.decode());
                match m {
                    Malformation::RouterLinkCount
                    | Malformation::SummaryTooShort
                    | Malformation::ExternalTooShort => {
                        assert!(decoded.is_err(), "{m}: {decoded:?}")
                    }
                    Malformation::LengthNotMultipleOf4 => assert_ne!(l.len() % 4, 0),
                    Malformation::RouterIdMismatch => assert_ne!(l[4..8], l[8..12]),
                    Malformation::AgeAboveMaxAge => {
                        assert!(u16::from_be_bytes([l[0], l[1]]) > 3600)
                    }
                    Malformation::ReservedSequence => assert_eq!(l[12..16], [0x80, 0, 0, 0]),
                    Malformation::NetworkWithoutRouters => assert_eq!(l.len(), 24),
                    Malformation::OpaqueTlvOverrun => {
                        assert_eq!(l[3], 10);
                        assert!(usize::from(u16::from_be_bytes([l[22], l[23]])) > l.len() - 24);
                    }
                    Malformation::RandomBody(t) => {
                        assert_eq!(l[3], t);
                        assert_eq!(l.len() % 4, 0);
                    }
                }
                if !matches!(m, Malformation::RandomBody(_)) {
                    assert!(
                        (198, 18, 200) == (l[8], l[9], l[10]),
                        "{m}: a foreign advertising router"
                    );
                }
            }
        }
        // Every LS type 1-11 gets a random body.
        let types: Vec<u8> = packets
            .iter()
            .filter_map(|f| match f.malformation {
                Some(Malformation::RandomBody(t)) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(types, (1..=11).collect::<Vec<u8>>());
        // The same bytes every run.
        let again = malformed_lsas(&dr());
        assert!(packets.iter().zip(&again).all(|(a, b)| a.bytes == b.bytes));
    }

    #[test]
    fn dd_and_lsr_abuse_decode_as_sent() {
        let to = [Ipv4Addr::new(198, 18, 0, 11), Ipv4Addr::new(198, 18, 0, 12)];
        let dds = dd_abuse(&dr(), &to, 1500);
        assert_eq!(dds.len(), 2);
        let flags: Vec<DdFlags> = dds
            .iter()
            .map(|f| match Packet::decode(&f.bytes).expect("DD").body {
                PacketBody::DatabaseDescription(d) => d.flags,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            flags,
            [DdFlags::I | DdFlags::M | DdFlags::MS, DdFlags::empty()]
        );
        assert_eq!(dds[1].dst, to[1]);
        let lsrs = lsr_abuse(&dr(), &to);
        let p = Packet::decode(&lsrs[0].bytes).expect("LSR");
        assert!(verify_checksum(&lsrs[0].bytes));
        assert_eq!(
            p.body,
            PacketBody::LinkStateRequest(LinkStateRequest {
                entries: vec![unknown_lsa()]
            })
        );
    }

    #[test]
    fn forged_self_lsas_are_the_victims_without_the_vip() {
        let f = forged_newer_self(&dr(), &victim(), 0x8d07_1846_u32 as i32);
        let PacketBody::LinkStateUpdate(u) = Packet::decode(&f.bytes).expect("LSU").body else {
            panic!("not an update");
        };
        let lsa = u.lsas[0].decode().expect("well-formed");
        assert!(u.lsas[0].verify_checksum());
        assert_eq!(lsa.header.seq, 0x8d08_1846_u32 as i32);
        assert_eq!(lsa.header.link_state_id, victim().router_id);
        assert_eq!(lsa.header.advertising_router, victim().router_id);
        let LsaBody::Router(r) = lsa.body else {
            panic!("not a Router-LSA")
        };
        assert_eq!(r.links.len(), 1);
        assert_eq!(r.links[0].link_type, RouterLinkType::Transit);
        assert_eq!(r.links[0].link_id, victim().dr_addr);

        let f = forged_maxseq_self(&dr(), &victim());
        let PacketBody::LinkStateUpdate(u) = Packet::decode(&f.bytes).expect("LSU").body else {
            panic!("not an update");
        };
        assert_eq!(u.lsas[0].header().seq, MAX_SEQUENCE_NUMBER);

        let unused = "198.18.0.77/24".parse().expect("prefix");
        let f = unoriginated_self(&dr(), &victim(), unused);
        let PacketBody::LinkStateUpdate(u) = Packet::decode(&f.bytes).expect("LSU").body else {
            panic!("not an update");
        };
        let keys: Vec<(u8, Ipv4Addr, Ipv4Addr)> = u
            .lsas
            .iter()
            .map(|l| {
                let h = l.header();
                (h.lsa_type.0, h.link_state_id, h.advertising_router)
            })
            .collect();
        assert_eq!(
            keys,
            [
                (2, Ipv4Addr::new(198, 18, 0, 77), victim().router_id),
                (5, Ipv4Addr::new(198, 18, 250, 0), victim().router_id)
            ]
        );
    }
}
