//! What a received LSA must be before it enters the database (the
//! `lsa_validate` step of BIRD and holo, FRR's `ospf_lsa_examin`): every
//! check that FRR 8.4 or BIRD 2.0 makes on an LSA, so that this speaker
//! never describes or floods an LSA that a real router refuses. A router
//! that refuses one packet of ours drops all of it: one bad LSA stored here
//! and listed in our next Database Description would hold the adjacency in
//! Exchange for good.
//!
//! The checks read the raw bytes and allocate nothing, so they cost next to
//! nothing on a database load of tens of thousands of LSAs.
//!
//! - [`check_header`] for a header alone, as Database Description packets
//!   carry them: an LS type this area takes, a length that fits the type's
//!   shortest body and its alignment, an age not above MaxAge, a sequence
//!   number other than the reserved 0x80000000.
//! - [`check_lsa`] for a whole LSA: the header checks, then the body against
//!   its type (RFC 2328 A.4, RFC 3101, RFC 5250).

use std::fmt;

use crate::lsa::{LsaHeader, LsaType, RawLsa, LSA_HEADER_LEN, MAX_AGE};

/// The LS types an area accepts (RFC 2328 13 steps 2 and 3, RFC 3101,
/// RFC 5250 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LsaTypes {
    /// AS-external-LSAs (type 5) and AS-scoped opaque LSAs (type 11): not in
    /// stub and NSSA areas.
    pub as_external: bool,
    /// ASBR-summary-LSAs (type 4): not in stub areas and NSSAs either
    /// (RFC 2328 Errata 3746: they describe routers that only type-5 LSAs
    /// use; BIRD refuses them there too).
    pub asbr_summary: bool,
    /// NSSA-LSAs (type 7): only in NSSA areas.
    pub nssa: bool,
    /// Opaque LSAs (types 9-11): only while we set the O-bit.
    pub opaque: bool,
}

impl LsaTypes {
    /// A normal area of a router that sets the O-bit (what this speaker
    /// is): types 1-5 and 9-11.
    pub const NORMAL: LsaTypes = LsaTypes {
        as_external: true,
        asbr_summary: true,
        nssa: false,
        opaque: true,
    };

    /// True if an LSA of type `t` may be stored and flooded here.
    pub fn accepts(self, t: LsaType) -> bool {
        match t.0 {
            1..=3 => true,
            4 => self.asbr_summary,
            5 => self.as_external,
            7 => self.nssa,
            9 | 10 => self.opaque,
            11 => self.opaque && self.as_external,
            _ => false,
        }
    }
}

/// Why an LSA was refused. Each has a short name for the drop counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// An LS type this area does not take (unknown, type 7 outside an
    /// NSSA, opaque while we do not set the O-bit ...).
    Type,
    /// The length is below the LSA header or not a multiple of 4.
    Length,
    /// LS age above MaxAge.
    Age,
    /// The reserved LS sequence number 0x80000000.
    Sequence,
    /// The Fletcher checksum does not verify, or is 0.
    Checksum,
    /// A Router-LSA too short for its fixed part, whose links (with their
    /// TOS entries) do not fill the body exactly, whose link count
    /// disagrees, or with an unknown link type.
    RouterLinks,
    /// A Router-LSA whose Link State ID is not its Advertising Router.
    RouterId,
    /// A Network-LSA without an attached router or misaligned.
    Network,
    /// A summary-LSA (type 3 or 4) too short, misaligned, or whose first
    /// metric is not TOS 0.
    Summary,
    /// An AS-external or NSSA-LSA too short, not a whole number of 12-byte
    /// metric blocks, or whose first block is not TOS 0.
    External,
    /// An opaque LSA with an empty body, or one of a TLV-based opaque type
    /// (TE, Grace, Router Information, Extended Prefix/Link) whose TLVs do
    /// not fit its body.
    Opaque,
}

impl Invalid {
    /// The drop counter of this reason.
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::Type => "bad-lsa-type",
            Invalid::Length => "bad-lsa-length",
            Invalid::Age => "bad-lsa-age",
            Invalid::Sequence => "bad-lsa-seq",
            Invalid::Checksum => "bad-lsa-checksum",
            Invalid::RouterLinks => "bad-lsa-router-links",
            Invalid::RouterId => "bad-lsa-router-id",
            Invalid::Network => "bad-lsa-network",
            Invalid::Summary => "bad-lsa-summary",
            Invalid::External => "bad-lsa-external",
            Invalid::Opaque => "bad-lsa-opaque",
        }
    }

    /// Every reason, for listing the counters.
    pub const ALL: [Invalid; 11] = [
        Invalid::Type,
        Invalid::Length,
        Invalid::Age,
        Invalid::Sequence,
        Invalid::Checksum,
        Invalid::RouterLinks,
        Invalid::RouterId,
        Invalid::Network,
        Invalid::Summary,
        Invalid::External,
        Invalid::Opaque,
    ];
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invalid::Type => "LS type not accepted in this area",
            Invalid::Length => "length below the LSA header or not a multiple of 4",
            Invalid::Age => "LS age above MaxAge",
            Invalid::Sequence => "reserved LS sequence number 0x80000000",
            Invalid::Checksum => "LS checksum does not verify",
            Invalid::RouterLinks => "router-LSA links do not fill the body",
            Invalid::RouterId => "router-LSA Link State ID is not its Advertising Router",
            Invalid::Network => "network-LSA without an attached router",
            Invalid::Summary => "malformed summary-LSA body",
            Invalid::External => "malformed AS-external/NSSA-LSA body",
            Invalid::Opaque => "malformed opaque LSA body",
        })
    }
}

/// The shortest body of each LS type (RFC 2328 A.4.2-A.4.5, RFC 3101,
/// RFC 5250): a Router-LSA's fixed part, a network mask with one attached
/// router, a mask with one metric, a mask with one external metric block,
/// one word of opaque information.
fn min_body(t: LsaType) -> usize {
    match t.0 {
        1 => 4,
        2..=4 => 8,
        5 | 7 => 16,
        _ => 4,
    }
}

/// The LS sequence number that RFC 2328 12.1.6 reserves (0x80000000).
const RESERVED_SEQUENCE_NUMBER: i32 = i32::MIN;

/// Router-LSA link: Link ID, Link Data, type, # TOS, metric (A.4.2).
const ROUTER_LINK_LEN: usize = 12;
/// An AS-external or NSSA-LSA metric block (A.4.5).
const EXTERNAL_BLOCK_LEN: usize = 12;
/// Opaque types whose information is a sequence of TLVs: Traffic
/// Engineering (RFC 3630), Grace (RFC 3623), Router Information (RFC 7770),
/// Extended Prefix and Extended Link (RFC 7684). Routers parse these; one
/// whose TLVs run past its end is refused (BIRD refuses such a Grace-LSA).
const TLV_OPAQUE_TYPES: [u8; 5] = [1, 3, 4, 7, 8];

/// Checks an LSA header alone, as listed in a Database Description packet:
/// the type, the length against the type's shortest body and alignment,
/// the age and the sequence number. (The checks FRR makes on the headers of
/// a Database Description packet before it looks at the packet, and a
/// little more.)
pub fn check_header(h: &LsaHeader, types: LsaTypes) -> Result<(), Invalid> {
    if !types.accepts(h.lsa_type) {
        return Err(Invalid::Type);
    }
    let len = usize::from(h.length);
    let body = len.checked_sub(LSA_HEADER_LEN).ok_or(Invalid::Length)?;
    if len % 4 != 0 {
        return Err(Invalid::Length);
    }
    // Shorter than its type's shortest body: counted as that type's
    // malformation (a Network-LSA without an attached router, an
    // AS-external-LSA without its metric block ...).
    if body < min_body(h.lsa_type) {
        return Err(match h.lsa_type.0 {
            1 => Invalid::RouterLinks,
            2 => Invalid::Network,
            3 | 4 => Invalid::Summary,
            5 | 7 => Invalid::External,
            9..=11 => Invalid::Opaque,
            _ => Invalid::Length,
        });
    }
    // AS-external and NSSA-LSAs are a mask and whole 12-byte blocks.
    if matches!(h.lsa_type.0, 5 | 7) && (body - 4) % EXTERNAL_BLOCK_LEN != 0 {
        return Err(Invalid::External);
    }
    if h.age > MAX_AGE {
        return Err(Invalid::Age);
    }
    if h.seq == RESERVED_SEQUENCE_NUMBER {
        return Err(Invalid::Sequence);
    }
    Ok(())
}

/// Checks a whole received LSA: its header ([`check_header`]), its
/// checksum, and its body against its type.
pub fn check_lsa(raw: &RawLsa, types: LsaTypes) -> Result<(), Invalid> {
    let h = raw.header();
    check_header(h, types)?;
    if h.checksum == 0 || !raw.verify_checksum() {
        return Err(Invalid::Checksum);
    }
    let body = raw.as_bytes().get(LSA_HEADER_LEN..).unwrap_or_default();
    match h.lsa_type.0 {
        1 => {
            if h.link_state_id != h.advertising_router {
                return Err(Invalid::RouterId);
            }
            check_router_links(body)
        }
        // A mask and at least one attached router (the length checks
        // above), nothing else to hold.
        2 => Ok(()),
        // The first metric is TOS 0, whose TOS octet is 0 (A.4.4).
        3 | 4 => match body.get(4) {
            Some(0) => Ok(()),
            _ => Err(Invalid::Summary),
        },
        // The first block is TOS 0: the octet after the mask is E|TOS.
        5 | 7 => match body.get(4) {
            Some(e_tos) if e_tos & 0x7f == 0 => Ok(()),
            _ => Err(Invalid::External),
        },
        9..=11 if TLV_OPAQUE_TYPES.contains(&h.opaque_type()) => check_tlvs(body),
        _ => Ok(()),
    }
}

/// A Router-LSA body: flags, a reserved octet, # links, then exactly that
/// many links of 12 bytes plus 4 per TOS entry, of types 1-4 (A.4.2).
fn check_router_links(body: &[u8]) -> Result<(), Invalid> {
    let (Some(&hi), Some(&lo)) = (body.get(2), body.get(3)) else {
        return Err(Invalid::RouterLinks);
    };
    let declared = usize::from(u16::from_be_bytes([hi, lo]));
    let mut rest = body.get(4..).unwrap_or_default();
    let mut links = 0usize;
    while !rest.is_empty() {
        let (Some(&link_type), Some(&ntos)) = (rest.get(8), rest.get(9)) else {
            return Err(Invalid::RouterLinks);
        };
        if !(1..=4).contains(&link_type) {
            return Err(Invalid::RouterLinks);
        }
        let len = ROUTER_LINK_LEN + 4 * usize::from(ntos);
        rest = rest.get(len..).ok_or(Invalid::RouterLinks)?;
        links += 1;
    }
    if links == declared {
        Ok(())
    } else {
        Err(Invalid::RouterLinks)
    }
}

/// TLVs (RFC 3623 appendix A, RFC 7770): a 2-byte type, a 2-byte length,
/// the value padded to 4 bytes, filling the body.
fn check_tlvs(body: &[u8]) -> Result<(), Invalid> {
    let mut rest = body;
    while !rest.is_empty() {
        let (Some(&hi), Some(&lo)) = (rest.get(2), rest.get(3)) else {
            return Err(Invalid::Opaque);
        };
        let value = usize::from(u16::from_be_bytes([hi, lo]));
        let len = 4 + value.div_ceil(4) * 4;
        rest = rest.get(len..).ok_or(Invalid::Opaque)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;
    use crate::lsa::tests::arb_lsa;
    use crate::lsa::{Lsa, LsaBody, Options};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    /// An LSA of type `t` with `body` as it stands, length and a valid
    /// checksum filled in, as an attacker with a correct checksum sends it.
    fn raw(t: u8, id: &str, adv: &str, body: &[u8]) -> RawLsa {
        raw_with(t, id, adv, 1, -0x7fff_fff0, body)
    }

    fn raw_with(t: u8, id: &str, adv: &str, age: u16, seq: i32, body: &[u8]) -> RawLsa {
        let header = LsaHeader {
            age,
            options: Options::E,
            lsa_type: LsaType(t),
            link_state_id: ip(id),
            advertising_router: ip(adv),
            seq,
            checksum: 0,
            length: 0,
        };
        RawLsa::build(header, body).expect("short")
    }

    fn router_body(declared: u16, links: &[(u8, u8)]) -> Vec<u8> {
        let mut b = vec![0, 0];
        b.extend(declared.to_be_bytes());
        for &(link_type, ntos) in links {
            b.extend([198, 18, 0, 1, 198, 18, 0, 11, link_type, ntos, 0, 10]);
            b.extend(std::iter::repeat_n(0, 4 * usize::from(ntos)));
        }
        b
    }

    const N: LsaTypes = LsaTypes::NORMAL;

    #[test]
    fn well_formed_lsas_pass() {
        let ok = [
            raw(1, "1.1.1.1", "1.1.1.1", &router_body(2, &[(2, 0), (3, 1)])),
            raw(1, "1.1.1.1", "1.1.1.1", &router_body(0, &[])),
            raw(2, "198.18.0.1", "1.1.1.1", &[255, 255, 255, 0, 1, 1, 1, 1]),
            raw(3, "10.0.0.0", "1.1.1.1", &[255, 0, 0, 0, 0, 0, 0, 10]),
            raw(
                4,
                "2.2.2.2",
                "1.1.1.1",
                &[0, 0, 0, 0, 0, 0, 0, 10, 8, 0, 0, 5],
            ),
            raw(
                5,
                "20.0.0.0",
                "1.1.1.1",
                &[255, 0, 0, 0, 0x80, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            raw(9, "3.0.0.0", "1.1.1.1", &[0, 1, 0, 4, 0, 0, 0, 120]),
            raw(10, "1.0.0.1", "1.1.1.1", &[0, 1, 0, 4, 5, 6, 7, 8]),
            raw(10, "2.0.0.1", "1.1.1.1", &[1, 2, 3, 4, 5, 6, 7, 8]),
            raw(11, "9.0.0.1", "1.1.1.1", &[1, 2, 3, 4]),
        ];
        for lsa in &ok {
            assert_eq!(check_lsa(lsa, N), Ok(()), "{:?}", lsa.header());
        }
    }

    #[test]
    fn each_malformation_has_its_reason() {
        let cases: Vec<(RawLsa, Invalid)> = vec![
            // Router-LSA: count says 3, body holds 2 links.
            (
                raw(1, "1.1.1.1", "1.1.1.1", &router_body(3, &[(2, 0), (3, 0)])),
                Invalid::RouterLinks,
            ),
            // ... says 1, holds 2.
            (
                raw(1, "1.1.1.1", "1.1.1.1", &router_body(1, &[(2, 0), (3, 0)])),
                Invalid::RouterLinks,
            ),
            // A TOS count that runs past the end.
            (
                raw(1, "1.1.1.1", "1.1.1.1", &{
                    let mut b = router_body(1, &[(3, 0)]);
                    b[13] = 3;
                    b
                }),
                Invalid::RouterLinks,
            ),
            // Link type 5 does not exist.
            (
                raw(1, "1.1.1.1", "1.1.1.1", &router_body(1, &[(5, 0)])),
                Invalid::RouterLinks,
            ),
            // Link State ID is not the advertising router.
            (
                raw(1, "1.1.1.2", "1.1.1.1", &router_body(0, &[])),
                Invalid::RouterId,
            ),
            // Lengths that are no multiple of 4.
            (
                raw(1, "1.1.1.1", "1.1.1.1", &[0, 0, 0, 0, 0, 0]),
                Invalid::Length,
            ),
            (
                raw(10, "1.0.0.1", "1.1.1.1", &[1, 2, 3, 4, 5]),
                Invalid::Length,
            ),
            // Too short for the type: that type's malformation.
            (raw(1, "1.1.1.1", "1.1.1.1", &[]), Invalid::RouterLinks),
            (
                raw(2, "198.18.0.1", "1.1.1.1", &[255, 255, 255, 0]),
                Invalid::Network,
            ),
            (
                raw(3, "10.0.0.0", "1.1.1.1", &[255, 0, 0, 0]),
                Invalid::Summary,
            ),
            (
                raw(4, "2.2.2.2", "1.1.1.1", &[0, 0, 0, 0]),
                Invalid::Summary,
            ),
            (
                raw(5, "20.0.0.0", "1.1.1.1", &[255, 0, 0, 0, 0, 0, 0, 20]),
                Invalid::External,
            ),
            (raw(9, "3.0.0.0", "1.1.1.1", &[]), Invalid::Opaque),
            (raw(6, "1.0.0.1", "1.1.1.1", &[]), Invalid::Type),
            // External: not whole 12-byte blocks; first block not TOS 0.
            (raw(5, "20.0.0.0", "1.1.1.1", &[0; 20]), Invalid::External),
            (
                raw(5, "20.0.0.0", "1.1.1.1", &{
                    let mut b = [0u8; 16];
                    b[4] = 0x81;
                    b
                }),
                Invalid::External,
            ),
            // Summary whose first metric is not TOS 0.
            (
                raw(3, "10.0.0.0", "1.1.1.1", &[255, 0, 0, 0, 4, 0, 0, 10]),
                Invalid::Summary,
            ),
            // Grace-LSA and TE LSA whose TLV runs past the end.
            (
                raw(9, "3.0.0.0", "1.1.1.1", &[0, 1, 0, 8, 0, 0, 0, 120]),
                Invalid::Opaque,
            ),
            (
                raw(10, "1.0.0.1", "1.1.1.1", &[0, 1, 0, 40, 0, 0, 0, 1]),
                Invalid::Opaque,
            ),
            // Types nobody takes here.
            (raw(6, "1.0.0.1", "1.1.1.1", &[0; 8]), Invalid::Type),
            (raw(7, "20.0.0.0", "1.1.1.1", &[0; 16]), Invalid::Type),
            (raw(8, "1.0.0.1", "1.1.1.1", &[0; 8]), Invalid::Type),
            (raw(12, "1.0.0.1", "1.1.1.1", &[0; 8]), Invalid::Type),
            (raw(0, "1.0.0.1", "1.1.1.1", &[0; 8]), Invalid::Type),
            // Age and sequence number.
            (
                raw_with(1, "1.1.1.1", "1.1.1.1", 3601, 5, &router_body(0, &[])),
                Invalid::Age,
            ),
            (
                raw_with(1, "1.1.1.1", "1.1.1.1", 1, i32::MIN, &router_body(0, &[])),
                Invalid::Sequence,
            ),
        ];
        for (lsa, want) in &cases {
            assert_eq!(check_lsa(lsa, N), Err(*want), "{:?}", lsa.header());
        }
        // A wrong checksum, and checksum 0.
        let good = raw(2, "198.18.0.1", "1.1.1.1", &[255, 255, 255, 0, 1, 1, 1, 1]);
        let mut b = BytesMut::from(&good.as_bytes()[..]);
        b[25] ^= 1;
        let bad = RawLsa::from_bytes(b.freeze()).expect("framed");
        assert_eq!(check_lsa(&bad, N), Err(Invalid::Checksum));
        let mut b = BytesMut::from(&good.as_bytes()[..]);
        b[16..18].copy_from_slice(&[0, 0]);
        let zero = RawLsa::from_bytes(b.freeze()).expect("framed");
        assert_eq!(check_lsa(&zero, N), Err(Invalid::Checksum));
    }

    #[test]
    fn area_types_decide_the_accepted_types() {
        let nssa = LsaTypes {
            as_external: false,
            asbr_summary: false,
            nssa: true,
            opaque: true,
        };
        let stub = LsaTypes {
            as_external: false,
            asbr_summary: false,
            nssa: false,
            opaque: false,
        };
        for t in [1, 2, 3] {
            assert!(N.accepts(LsaType(t)) && nssa.accepts(LsaType(t)) && stub.accepts(LsaType(t)));
        }
        assert!(N.accepts(LsaType(4)) && !nssa.accepts(LsaType(4)) && !stub.accepts(LsaType(4)));
        assert!(N.accepts(LsaType(5)) && !nssa.accepts(LsaType(5)) && !stub.accepts(LsaType(5)));
        assert!(!N.accepts(LsaType(7)) && nssa.accepts(LsaType(7)));
        assert!(N.accepts(LsaType(11)) && !nssa.accepts(LsaType(11)));
        assert!(N.accepts(LsaType(9)) && !stub.accepts(LsaType(9)));
    }

    #[test]
    fn headers_alone_are_checked_as_frr_checks_them() {
        let h = |t: u8, len: u16| LsaHeader {
            age: 1,
            options: Options::E,
            lsa_type: LsaType(t),
            link_state_id: ip("1.1.1.1"),
            advertising_router: ip("1.1.1.1"),
            seq: 1,
            checksum: 1,
            length: len,
        };
        assert_eq!(check_header(&h(1, 24), N), Ok(()));
        assert_eq!(check_header(&h(1, 26), N), Err(Invalid::Length));
        assert_eq!(check_header(&h(1, 20), N), Err(Invalid::RouterLinks));
        assert_eq!(check_header(&h(1, 4), N), Err(Invalid::Length));
        assert_eq!(check_header(&h(5, 36), N), Ok(()));
        assert_eq!(check_header(&h(5, 48), N), Ok(()));
        assert_eq!(check_header(&h(5, 40), N), Err(Invalid::External));
        assert_eq!(check_header(&h(2, 24), N), Err(Invalid::Network));
        assert_eq!(check_header(&h(6, 40), N), Err(Invalid::Type));
    }

    proptest! {
        /// Every LSA this crate encodes passes (when its type is taken and
        /// its fields are in range), and the check never panics on any
        /// body under any type.
        #[test]
        fn encoded_lsas_pass(lsa in arb_lsa()) {
            let Ok(raw) = lsa.to_raw() else { return Ok(()) };
            let h = raw.header();
            let in_range = h.age <= MAX_AGE && h.seq != i32::MIN && N.accepts(h.lsa_type)
                && !(h.lsa_type.0 == 1 && h.link_state_id != h.advertising_router)
                && structurally_plain(&lsa);
            let res = check_lsa(&raw, N);
            if in_range {
                prop_assert_eq!(res, Ok(()));
            }
        }

        #[test]
        fn any_body_under_any_type_is_checked_without_panic(
            t in any::<u8>(), age in any::<u16>(), seq in any::<i32>(),
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let lsa = raw_with(t, "1.1.1.1", "1.1.1.1", age, seq, &body);
            let res = check_lsa(&lsa, N);
            // Whatever passes decodes with the structured codec.
            if res.is_ok() {
                prop_assert!(lsa.decode().is_ok(), "{:?}", lsa.header());
            }
        }
    }

    /// Bodies whose encoding the checks accept: padded opaque bodies, TOS 0
    /// first metrics, link types the codec produces.
    fn structurally_plain(lsa: &Lsa) -> bool {
        match &lsa.body {
            LsaBody::Opaque(b) => {
                !b.is_empty()
                    && b.len() % 4 == 0
                    && (!TLV_OPAQUE_TYPES.contains(&lsa.header.opaque_type())
                        || check_tlvs(b).is_ok())
            }
            LsaBody::Unknown(_) => false,
            LsaBody::Network(n) => !n.attached_routers.is_empty(),
            _ => true,
        }
    }
}
