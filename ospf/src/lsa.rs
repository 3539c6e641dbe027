//! OSPFv2 link-state advertisements: the 20-byte LSA header, the LSA bodies
//! of RFC 2328 appendix A.4, NSSA-LSAs (RFC 3101) and opaque LSAs
//! (RFC 5250), the Fletcher checksum (RFC 2328 section 12.1.7) and the
//! "which instance is newer" rule (RFC 2328 section 13.1).
//!
//! Two views of an LSA exist on purpose:
//!
//! * [`RawLsa`] keeps the exact bytes that were received. Flooding must
//!   forward an LSA unchanged (RFC 2328 section 13.3), including bits and
//!   LSA types this crate does not understand, so the LSDB stores these.
//! * [`Lsa`] is the decoded, structured form used for origination and the
//!   SPF calculation. [`Lsa::encode`] fills in the length and checksum.
//!
//! Decoding never panics: every malformed input is reported as an
//! [`LsaError`].

use std::cmp::Ordering;
use std::fmt;
use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_i32, be_u16, be_u24, be_u32, be_u8};
use nom::IResult;
use thiserror::Error;

// Architectural constants, RFC 2328 appendix B. Times are in seconds.

/// MaxAge: an LSA whose LS age reaches this is flushed from the routing domain.
pub const MAX_AGE: u16 = 3600;
/// LSRefreshTime: an originator refreshes its LSAs at least this often.
pub const LS_REFRESH_TIME: u16 = 1800;
/// MinLSInterval: minimum time between originations of the same LSA.
pub const MIN_LS_INTERVAL: u16 = 5;
/// MinLSArrival: minimum time between accepting instances of the same LSA
/// from flooding.
pub const MIN_LS_ARRIVAL: u16 = 1;
/// MaxAgeDiff: LS ages differing by more than this denote different instances.
pub const MAX_AGE_DIFF: u16 = 900;
/// CheckAge: interval at which LSA checksums in the database are re-verified.
pub const CHECK_AGE: u16 = 300;
/// LSInfinity: a 24-bit metric meaning "unreachable".
pub const LS_INFINITY: u32 = 0x00ff_ffff;
/// InitialSequenceNumber (0x80000001): the first LS sequence number an
/// originator uses (RFC 2328 section 12.1.6). The space is signed;
/// 0x80000000 is reserved.
pub const INITIAL_SEQUENCE_NUMBER: i32 = i32::MIN + 1;
/// MaxSequenceNumber (0x7fffffff): reaching it forces a flush-and-wrap
/// (RFC 2328 section 12.1.6).
pub const MAX_SEQUENCE_NUMBER: i32 = i32::MAX;

/// Size of the LSA header (RFC 2328 A.4.1).
pub const LSA_HEADER_LEN: usize = 20;
/// Largest LSA the 16-bit length field can describe.
pub const MAX_LSA_LEN: usize = u16::MAX as usize;
/// Offset of the LS checksum field within the LSA (RFC 2328 A.4.1).
const CHECKSUM_OFFSET: usize = 16;
/// Offset of the length field within the LSA (RFC 2328 A.4.1).
const LENGTH_OFFSET: usize = 18;
/// The checksum covers everything but the 2-byte LS age (RFC 2328 12.1.7).
const CHECKSUM_START: usize = 2;

/// Errors from decoding LSAs and LSA headers.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LsaError {
    /// Fewer bytes than the structure being decoded needs.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The LSA header's length field is smaller than the header itself.
    #[error("LSA length field {length} is shorter than the 20-byte LSA header")]
    LengthTooShort {
        /// The length field.
        length: u16,
    },
    /// The LSA header's length field disagrees with the bytes given.
    #[error("LSA length field {length} does not match the {actual} bytes given")]
    LengthMismatch {
        /// The length field.
        length: u16,
        /// Bytes supplied.
        actual: usize,
    },
    /// An LSA body has bytes left over after its last entry.
    #[error("{what}: {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Which body.
        what: &'static str,
        /// Number of bytes left over.
        extra: usize,
    },
    /// A router-LSA link type outside 1..=4 (RFC 2328 A.4.2).
    #[error("router-LSA link {index} has unknown link type {link_type}")]
    UnknownRouterLinkType {
        /// Zero-based index of the link.
        index: usize,
        /// The type octet.
        link_type: u8,
    },
}

/// Errors from encoding LSAs and packets: values the wire format cannot carry.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The result would not fit its 16-bit length field.
    #[error("{what} would be {len} bytes, over the 65535-byte limit of its length field")]
    TooLong {
        /// LSA or packet.
        what: &'static str,
        /// The length it would have had.
        len: usize,
    },
    /// A list is longer than its count field can express.
    #[error("{what} has {count} entries, more than its count field allows ({max})")]
    TooManyEntries {
        /// Which list.
        what: &'static str,
        /// Entries given.
        count: usize,
        /// Largest count the field holds.
        max: usize,
    },
    /// `header.lsa_type` names a different LSA type than the body variant.
    #[error("LSA type {lsa_type:?} cannot carry a {body} body")]
    BodyTypeMismatch {
        /// The header's type.
        lsa_type: LsaType,
        /// The body variant.
        body: &'static str,
    },
}

/// Defines a `u8` newtype of single-bit flags that keeps unknown bits, so
/// that decoding and re-encoding never loses information.
macro_rules! bit_flags {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$fmeta:meta])* $flag:ident = $bit:expr; )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub u8);

        impl $name {
            $( $(#[$fmeta])* pub const $flag: $name = $name($bit); )*

            /// No bits set.
            pub const fn empty() -> Self {
                $name(0)
            }

            /// The raw octet.
            pub const fn bits(self) -> u8 {
                self.0
            }

            /// True if every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Sets or clears the bits of `other`.
            pub fn set(&mut self, other: Self, on: bool) {
                if on {
                    self.0 |= other.0;
                } else {
                    self.0 &= !other.0;
                }
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                $name(self.0 | rhs.0)
            }
        }

        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                let mut rest = self.0;
                let mut sep = "";
                $(
                    if self.0 & $bit != 0 {
                        write!(f, "{}{}", sep, stringify!($flag))?;
                        sep = "|";
                        rest &= !$bit;
                    }
                )*
                if rest != 0 {
                    write!(f, "{}{:#04x}", sep, rest)?;
                }
                f.write_str(")")
            }
        }
    };
}
pub(crate) use bit_flags;

bit_flags! {
    /// The Options field of Hello, Database Description and LSA headers
    /// (RFC 2328 A.2). Unknown bits are preserved.
    Options {
        /// MT (RFC 4915); the T bit of RFC 1583.
        MT = 0x01;
        /// E: AS-external-LSAs are flooded (the area is not a stub area).
        E = 0x02;
        /// MC: multicast capable (RFC 1584).
        MC = 0x04;
        /// N in Hellos (NSSA support), P in NSSA-LSAs (propagate) (RFC 3101).
        NP = 0x08;
        /// EA: External-Attributes-LSA support.
        EA = 0x10;
        /// DC: demand circuits (RFC 1793).
        DC = 0x20;
        /// O: opaque LSA capable (RFC 5250).
        O = 0x40;
        /// DN: down bit for VPN route loops (RFC 4576).
        DN = 0x80;
    }
}

bit_flags! {
    /// The flags octet of a router-LSA (RFC 2328 A.4.2). Unknown bits are
    /// preserved.
    RouterFlags {
        /// B: the router is an area border router.
        B = 0x01;
        /// E: the router is an AS boundary router.
        E = 0x02;
        /// V: the router is the endpoint of a fully adjacent virtual link.
        V = 0x04;
        /// W: wild-card multicast receiver (RFC 1584).
        W = 0x08;
        /// Nt: NSSA border router translating type-7 LSAs (RFC 3101).
        NT = 0x10;
    }
}

/// The LS type octet. A newtype rather than an enum so that every octet,
/// known or not, round-trips (RFC 2328 section 13 step 2 leaves unknown
/// types to the receiver's judgement).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LsaType(pub u8);

impl LsaType {
    /// Router-LSA (RFC 2328 A.4.2).
    pub const ROUTER: LsaType = LsaType(1);
    /// Network-LSA (RFC 2328 A.4.3).
    pub const NETWORK: LsaType = LsaType(2);
    /// Summary-LSA for an IP network (RFC 2328 A.4.4).
    pub const SUMMARY_NETWORK: LsaType = LsaType(3);
    /// Summary-LSA for an AS boundary router (RFC 2328 A.4.4).
    pub const SUMMARY_ASBR: LsaType = LsaType(4);
    /// AS-external-LSA (RFC 2328 A.4.5).
    pub const AS_EXTERNAL: LsaType = LsaType(5);
    /// NSSA-LSA (RFC 3101 section 2.5).
    pub const NSSA: LsaType = LsaType(7);
    /// Link-local opaque LSA (RFC 5250).
    pub const OPAQUE_LINK_LOCAL: LsaType = LsaType(9);
    /// Area-local opaque LSA (RFC 5250).
    pub const OPAQUE_AREA: LsaType = LsaType(10);
    /// AS-scoped opaque LSA (RFC 5250).
    pub const OPAQUE_AS: LsaType = LsaType(11);

    /// True for the opaque types 9, 10 and 11 (RFC 5250).
    pub const fn is_opaque(self) -> bool {
        matches!(self.0, 9..=11)
    }

    /// The RFC name of a known type.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "Router",
            2 => "Network",
            3 => "SummaryNetwork",
            4 => "SummaryAsbr",
            5 => "AsExternal",
            7 => "Nssa",
            9 => "OpaqueLinkLocal",
            10 => "OpaqueArea",
            11 => "OpaqueAs",
            _ => return None,
        })
    }
}

impl fmt::Debug for LsaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({})", self.0),
            None => write!(f, "LsaType({})", self.0),
        }
    }
}

impl From<u8> for LsaType {
    fn from(v: u8) -> Self {
        LsaType(v)
    }
}

impl From<LsaType> for u8 {
    fn from(t: LsaType) -> u8 {
        t.0
    }
}

/// What identifies an LSA in the database: LS type, Link State ID and
/// Advertising Router (RFC 2328 section 12.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LsaKey {
    /// LS type.
    pub lsa_type: LsaType,
    /// Link State ID.
    pub link_state_id: Ipv4Addr,
    /// Advertising Router.
    pub advertising_router: Ipv4Addr,
}

/// `Router-LSA 198.18.0.11 adv 198.18.0.11`, as operators read it.
impl fmt::Display for LsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.lsa_type.name() {
            Some(name) => write!(f, "{name}-LSA")?,
            None => write!(f, "type-{}-LSA", self.lsa_type.0)?,
        }
        write!(f, " {} adv {}", self.link_state_id, self.advertising_router)
    }
}

/// The 20-byte LSA header (RFC 2328 A.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LsaHeader {
    /// LS age in seconds.
    pub age: u16,
    /// Options (RFC 2328 A.2).
    pub options: Options,
    /// LS type.
    pub lsa_type: LsaType,
    /// Link State ID.
    pub link_state_id: Ipv4Addr,
    /// Advertising Router.
    pub advertising_router: Ipv4Addr,
    /// LS sequence number, a signed 32-bit value (RFC 2328 section 12.1.6).
    pub seq: i32,
    /// LS checksum (RFC 2328 section 12.1.7).
    pub checksum: u16,
    /// Length of the whole LSA including this header.
    pub length: u16,
}

impl LsaHeader {
    /// Encoded size.
    pub const LEN: usize = LSA_HEADER_LEN;

    /// nom parser for one header (big-endian, RFC 2328 A.4.1).
    pub fn parse(i: &[u8]) -> IResult<&[u8], LsaHeader> {
        let (i, age) = be_u16(i)?;
        let (i, options) = be_u8(i)?;
        let (i, lsa_type) = be_u8(i)?;
        let (i, link_state_id) = ipv4(i)?;
        let (i, advertising_router) = ipv4(i)?;
        let (i, seq) = be_i32(i)?;
        let (i, checksum) = be_u16(i)?;
        let (i, length) = be_u16(i)?;
        Ok((
            i,
            LsaHeader {
                age,
                options: Options(options),
                lsa_type: LsaType(lsa_type),
                link_state_id,
                advertising_router,
                seq,
                checksum,
                length,
            },
        ))
    }

    /// Decodes the header from the first 20 bytes of `bytes`; the rest is
    /// ignored and the length field is not checked against it.
    pub fn decode(bytes: &[u8]) -> Result<LsaHeader, LsaError> {
        fixed("LSA header", LSA_HEADER_LEN, bytes, LsaHeader::parse).map(|(_, h)| h)
    }

    /// Appends the 20-byte header exactly as the fields say.
    pub fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u16(self.age);
        buf.put_u8(self.options.0);
        buf.put_u8(self.lsa_type.0);
        buf.put_u32(self.link_state_id.into());
        buf.put_u32(self.advertising_router.into());
        buf.put_i32(self.seq);
        buf.put_u16(self.checksum);
        buf.put_u16(self.length);
    }

    /// The database key of this LSA (RFC 2328 section 12.1).
    pub fn key(&self) -> LsaKey {
        LsaKey {
            lsa_type: self.lsa_type,
            link_state_id: self.link_state_id,
            advertising_router: self.advertising_router,
        }
    }

    /// True if the LS age has reached MaxAge.
    pub fn is_max_age(&self) -> bool {
        self.age >= MAX_AGE
    }

    /// For opaque LSAs, the Opaque Type: the top octet of the Link State ID
    /// (RFC 5250 section 3).
    pub fn opaque_type(&self) -> u8 {
        self.link_state_id.octets()[0]
    }

    /// For opaque LSAs, the 24-bit Opaque ID (RFC 5250 section 3).
    pub fn opaque_id(&self) -> u32 {
        u32::from(self.link_state_id) & 0x00ff_ffff
    }

    /// Decides which of two instances of the same LSA is more recent
    /// (RFC 2328 section 13.1). `Greater` means `self` is newer, `Equal`
    /// that both are considered the same instance. Ages must be current
    /// (stored age plus time spent in the database).
    pub fn compare_instance(&self, other: &LsaHeader) -> Ordering {
        // The sequence number space is signed (12.1.6), then the larger
        // checksum, taken as an unsigned 16-bit integer, wins.
        self.seq
            .cmp(&other.seq)
            .then(self.checksum.cmp(&other.checksum))
            .then_with(|| {
                // An age is never meant to exceed MaxAge (12.1.1); treat any
                // that does as MaxAge rather than as "younger".
                let a = self.age.min(MAX_AGE);
                let b = other.age.min(MAX_AGE);
                match (a == MAX_AGE, b == MAX_AGE) {
                    // An instance at MaxAge is considered more recent.
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    // Ages further apart than MaxAgeDiff: the smaller age
                    // (younger LSA) is more recent.
                    _ if a.abs_diff(b) > MAX_AGE_DIFF => b.cmp(&a),
                    _ => Ordering::Equal,
                }
            })
    }
}

/// Router link types (RFC 2328 A.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RouterLinkType {
    /// Point-to-point connection to another router.
    PointToPoint = 1,
    /// Connection to a transit network.
    Transit = 2,
    /// Connection to a stub network.
    Stub = 3,
    /// Virtual link.
    Virtual = 4,
}

impl TryFrom<u8> for RouterLinkType {
    type Error = u8;
    fn try_from(v: u8) -> Result<Self, u8> {
        match v {
            1 => Ok(RouterLinkType::PointToPoint),
            2 => Ok(RouterLinkType::Transit),
            3 => Ok(RouterLinkType::Stub),
            4 => Ok(RouterLinkType::Virtual),
            other => Err(other),
        }
    }
}

/// One link of a router-LSA (RFC 2328 A.4.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouterLink {
    /// Link ID: neighbour Router ID, DR address, network number, or
    /// neighbour Router ID for virtual links, depending on the type.
    pub link_id: Ipv4Addr,
    /// Link Data: interface address, ifIndex for unnumbered links, or the
    /// network mask for stub networks.
    pub link_data: Ipv4Addr,
    /// Type of the link.
    pub link_type: RouterLinkType,
    /// TOS 0 metric.
    pub metric: u16,
    /// Additional (TOS, metric) pairs, kept for re-encoding (RFC 2328 no
    /// longer uses TOS routing, but they must still parse).
    pub tos: Vec<(u8, u16)>,
}

/// Router-LSA body (RFC 2328 A.4.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct RouterLsa {
    /// V, E, B (and Nt, RFC 3101) bits.
    pub flags: RouterFlags,
    /// The router's links.
    pub links: Vec<RouterLink>,
}

/// Network-LSA body (RFC 2328 A.4.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NetworkLsa {
    /// Network Mask.
    pub network_mask: Ipv4Addr,
    /// Router IDs of the routers fully adjacent to the DR, and the DR.
    pub attached_routers: Vec<Ipv4Addr>,
}

/// Summary-LSA body, types 3 and 4 (RFC 2328 A.4.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SummaryLsa {
    /// Network Mask (0.0.0.0 for type 4).
    pub network_mask: Ipv4Addr,
    /// 24-bit TOS 0 metric; higher bits are dropped on encode.
    pub metric: u32,
    /// Additional (TOS, 24-bit metric) pairs.
    pub tos: Vec<(u8, u32)>,
}

/// An extra TOS entry of an AS-external-LSA (RFC 2328 A.4.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExternalTos {
    /// E bit: the metric is a type 2 external metric.
    pub e_bit: bool,
    /// TOS (7 bits).
    pub tos: u8,
    /// 24-bit metric.
    pub metric: u32,
    /// Forwarding address.
    pub forwarding_address: Ipv4Addr,
    /// External Route Tag.
    pub external_route_tag: u32,
}

/// AS-external-LSA body (RFC 2328 A.4.5), also used for NSSA-LSAs
/// (RFC 3101 section 2.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExternalLsa {
    /// Network Mask.
    pub network_mask: Ipv4Addr,
    /// E bit: set for a type 2 external metric, clear for type 1.
    pub e_bit: bool,
    /// 24-bit TOS 0 metric; higher bits are dropped on encode.
    pub metric: u32,
    /// Forwarding address (0.0.0.0: forward to the originator).
    pub forwarding_address: Ipv4Addr,
    /// External Route Tag.
    pub external_route_tag: u32,
    /// Additional TOS entries.
    pub tos: Vec<ExternalTos>,
}

/// The body of an LSA, by LS type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LsaBody {
    /// Type 1.
    Router(RouterLsa),
    /// Type 2.
    Network(NetworkLsa),
    /// Type 3.
    SummaryNetwork(SummaryLsa),
    /// Type 4.
    SummaryAsbr(SummaryLsa),
    /// Type 5.
    AsExternal(ExternalLsa),
    /// Type 7 (RFC 3101).
    Nssa(ExternalLsa),
    /// Types 9, 10, 11 (RFC 5250): the opaque information, uninterpreted.
    Opaque(Bytes),
    /// Any other type: the body bytes, uninterpreted.
    Unknown(Bytes),
}

/// A decoded LSA.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lsa {
    /// Header. `length` and `checksum` are recomputed by [`Lsa::encode`].
    pub header: LsaHeader,
    /// Body.
    pub body: LsaBody,
}

impl Lsa {
    /// Decodes one LSA that occupies exactly `bytes`. The checksum is not
    /// verified here; use [`verify_lsa_checksum`] so that drops can be
    /// counted by reason.
    pub fn decode(bytes: &[u8]) -> Result<Lsa, LsaError> {
        let header = checked_header(bytes)?;
        let body = bytes.get(LSA_HEADER_LEN..).unwrap_or_default();
        let body = LsaBody::decode(header.lsa_type, body, Bytes::copy_from_slice)?;
        Ok(Lsa { header, body })
    }

    /// Encodes the LSA, writing the real length and a freshly computed
    /// Fletcher checksum in place of `header.length` and `header.checksum`.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        self.to_raw().map(RawLsa::into_bytes)
    }

    /// Encodes into a [`RawLsa`] (see [`Lsa::encode`]), ready to be stored
    /// and flooded.
    pub fn to_raw(&self) -> Result<RawLsa, EncodeError> {
        if !self.body.matches_type(self.header.lsa_type) {
            return Err(EncodeError::BodyTypeMismatch {
                lsa_type: self.header.lsa_type,
                body: self.body.variant_name(),
            });
        }
        let mut body = BytesMut::with_capacity(self.body.encoded_len());
        self.body.encode(&mut body)?;
        RawLsa::build(self.header, &body)
    }
}

/// An LSA as received: the decoded header plus the exact bytes, for
/// flooding the LSA unchanged (RFC 2328 section 13.3) and for keeping types
/// and bits this crate does not understand.
///
/// Invariant: `bytes.len() == header.length >= 20` and `header` is the
/// decoding of the first 20 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawLsa {
    header: LsaHeader,
    bytes: Bytes,
}

impl RawLsa {
    /// Wraps exactly one LSA; its length field must equal `bytes.len()`.
    pub fn from_bytes(bytes: Bytes) -> Result<RawLsa, LsaError> {
        let header = checked_header(&bytes)?;
        Ok(RawLsa { header, bytes })
    }

    /// Splits one LSA, framed by its length field, off the front of `buf`
    /// (as found in Link State Update packets, RFC 2328 A.3.5).
    pub fn split_from(buf: &mut Bytes) -> Result<RawLsa, LsaError> {
        let header = LsaHeader::decode(buf)?;
        let length = usize::from(header.length);
        if length < LSA_HEADER_LEN {
            return Err(LsaError::LengthTooShort {
                length: header.length,
            });
        }
        if length > buf.len() {
            return Err(LsaError::Truncated {
                what: "LSA",
                need: length,
                have: buf.len(),
            });
        }
        let bytes = buf.split_to(length);
        Ok(RawLsa { header, bytes })
    }

    /// An LSA with `header`'s fields and exactly `body` after it, whether
    /// or not the body fits the type, with the length and a valid Fletcher
    /// checksum filled in: what a broken or hostile router can send, for
    /// tests, fuzzing and the lab's rogue node. Fails only for a body too
    /// long for the length field.
    pub fn build(header: LsaHeader, body: &[u8]) -> Result<RawLsa, EncodeError> {
        let len = LSA_HEADER_LEN + body.len();
        let length = u16::try_from(len).map_err(|_| EncodeError::TooLong { what: "LSA", len })?;
        let mut header = LsaHeader {
            checksum: 0,
            length,
            ..header
        };
        let mut buf = BytesMut::with_capacity(len);
        header.encode(&mut buf);
        buf.put_slice(body);
        header.checksum = lsa_checksum(&buf);
        if let Some(field) = buf.get_mut(CHECKSUM_OFFSET..LENGTH_OFFSET) {
            field.copy_from_slice(&header.checksum.to_be_bytes());
        }
        Ok(RawLsa {
            header,
            bytes: buf.freeze(),
        })
    }

    /// Pairs `bytes` with `header`, their decoding (the caller, which
    /// built both, vouches for the invariant).
    pub(crate) fn from_parts(header: LsaHeader, bytes: Bytes) -> RawLsa {
        debug_assert_eq!(LsaHeader::decode(&bytes).ok(), Some(header));
        debug_assert_eq!(usize::from(header.length), bytes.len());
        RawLsa { header, bytes }
    }

    /// The decoded header.
    pub fn header(&self) -> &LsaHeader {
        &self.header
    }

    /// The exact bytes of the LSA.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The exact bytes of the LSA.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Checks the Fletcher checksum (RFC 2328 section 13 step 1).
    pub fn verify_checksum(&self) -> bool {
        verify_lsa_checksum(&self.bytes)
    }

    /// Decodes the body. Opaque and unknown bodies share this LSA's
    /// buffer instead of being copied.
    pub fn decode(&self) -> Result<Lsa, LsaError> {
        let body = self.bytes.get(LSA_HEADER_LEN..).unwrap_or_default();
        let body = LsaBody::decode(self.header.lsa_type, body, |_| {
            self.bytes.slice(LSA_HEADER_LEN..)
        })?;
        Ok(Lsa {
            header: self.header,
            body,
        })
    }

    /// The same LSA with a different LS age. The checksum stays valid
    /// because it does not cover the age (RFC 2328 section 12.1.7); this is
    /// how flooding adds InfTransDelay (section 13.3).
    pub fn with_age(&self, age: u16) -> RawLsa {
        let mut bytes = BytesMut::from(&self.bytes[..]);
        if let Some(field) = bytes.get_mut(..CHECKSUM_START) {
            field.copy_from_slice(&age.to_be_bytes());
        }
        RawLsa {
            header: LsaHeader { age, ..self.header },
            bytes: bytes.freeze(),
        }
    }
}

/// Decodes the header of a buffer that must hold exactly one LSA.
fn checked_header(bytes: &[u8]) -> Result<LsaHeader, LsaError> {
    let header = LsaHeader::decode(bytes)?;
    if usize::from(header.length) < LSA_HEADER_LEN {
        return Err(LsaError::LengthTooShort {
            length: header.length,
        });
    }
    if usize::from(header.length) != bytes.len() {
        return Err(LsaError::LengthMismatch {
            length: header.length,
            actual: bytes.len(),
        });
    }
    Ok(header)
}

impl LsaBody {
    /// Decodes a body of the given type. `to_bytes` turns an uninterpreted
    /// body into `Bytes` (copying or sharing, as the caller can).
    fn decode(
        lsa_type: LsaType,
        body: &[u8],
        to_bytes: impl FnOnce(&[u8]) -> Bytes,
    ) -> Result<LsaBody, LsaError> {
        Ok(match lsa_type {
            LsaType::ROUTER => LsaBody::Router(RouterLsa::decode(body)?),
            LsaType::NETWORK => LsaBody::Network(NetworkLsa::decode(body)?),
            LsaType::SUMMARY_NETWORK => LsaBody::SummaryNetwork(SummaryLsa::decode(body)?),
            LsaType::SUMMARY_ASBR => LsaBody::SummaryAsbr(SummaryLsa::decode(body)?),
            LsaType::AS_EXTERNAL => LsaBody::AsExternal(ExternalLsa::decode(body)?),
            LsaType::NSSA => LsaBody::Nssa(ExternalLsa::decode(body)?),
            t if t.is_opaque() => LsaBody::Opaque(to_bytes(body)),
            _ => LsaBody::Unknown(to_bytes(body)),
        })
    }

    /// True if a header of type `t` may carry this body; bodies with a
    /// decoder must use exactly their type so that decoding gives them back.
    pub fn matches_type(&self, t: LsaType) -> bool {
        match self {
            LsaBody::Router(_) => t == LsaType::ROUTER,
            LsaBody::Network(_) => t == LsaType::NETWORK,
            LsaBody::SummaryNetwork(_) => t == LsaType::SUMMARY_NETWORK,
            LsaBody::SummaryAsbr(_) => t == LsaType::SUMMARY_ASBR,
            LsaBody::AsExternal(_) => t == LsaType::AS_EXTERNAL,
            LsaBody::Nssa(_) => t == LsaType::NSSA,
            LsaBody::Opaque(_) => t.is_opaque(),
            LsaBody::Unknown(_) => !t.is_opaque() && !matches!(t.0, 1..=5 | 7),
        }
    }

    fn variant_name(&self) -> &'static str {
        match self {
            LsaBody::Router(_) => "Router",
            LsaBody::Network(_) => "Network",
            LsaBody::SummaryNetwork(_) => "SummaryNetwork",
            LsaBody::SummaryAsbr(_) => "SummaryAsbr",
            LsaBody::AsExternal(_) => "AsExternal",
            LsaBody::Nssa(_) => "Nssa",
            LsaBody::Opaque(_) => "Opaque",
            LsaBody::Unknown(_) => "Unknown",
        }
    }

    /// Encoded size of the body in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            LsaBody::Router(r) => 4 + r.links.iter().map(|l| 12 + 4 * l.tos.len()).sum::<usize>(),
            LsaBody::Network(n) => 4 + 4 * n.attached_routers.len(),
            LsaBody::SummaryNetwork(s) | LsaBody::SummaryAsbr(s) => 8 + 4 * s.tos.len(),
            LsaBody::AsExternal(e) | LsaBody::Nssa(e) => 16 + 12 * e.tos.len(),
            LsaBody::Opaque(b) | LsaBody::Unknown(b) => b.len(),
        }
    }

    fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            LsaBody::Router(r) => r.encode(buf)?,
            LsaBody::Network(n) => n.encode(buf),
            LsaBody::SummaryNetwork(s) | LsaBody::SummaryAsbr(s) => s.encode(buf),
            LsaBody::AsExternal(e) | LsaBody::Nssa(e) => e.encode(buf),
            LsaBody::Opaque(b) | LsaBody::Unknown(b) => buf.put_slice(b),
        }
        Ok(())
    }
}

impl RouterLsa {
    fn decode(body: &[u8]) -> Result<RouterLsa, LsaError> {
        // flags, a reserved octet, # links (RFC 2328 A.4.2).
        let (mut rest, (flags, nlinks)) = fixed("router-LSA", 4, body, |i| {
            let (i, flags) = be_u8(i)?;
            let (i, _reserved) = be_u8(i)?;
            let (i, nlinks) = be_u16(i)?;
            Ok((i, (flags, nlinks)))
        })?;
        // Every link takes at least 12 bytes, so a lying count cannot make
        // us reserve more than the input could hold.
        let mut links = Vec::with_capacity(usize::from(nlinks).min(rest.len() / 12));
        for index in 0..usize::from(nlinks) {
            let (i, (link_id, link_data, link_type, ntos, metric)) =
                fixed("router-LSA link", 12, rest, |i| {
                    let (i, link_id) = ipv4(i)?;
                    let (i, link_data) = ipv4(i)?;
                    let (i, link_type) = be_u8(i)?;
                    let (i, ntos) = be_u8(i)?;
                    let (i, metric) = be_u16(i)?;
                    Ok((i, (link_id, link_data, link_type, ntos, metric)))
                })?;
            let link_type = RouterLinkType::try_from(link_type)
                .map_err(|link_type| LsaError::UnknownRouterLinkType { index, link_type })?;
            let mut tos = Vec::with_capacity(usize::from(ntos).min(i.len() / 4));
            let mut i = i;
            for _ in 0..ntos {
                // TOS, a reserved octet, TOS metric.
                let (next, entry) = fixed("router-LSA TOS entry", 4, i, |i| {
                    let (i, tos) = be_u8(i)?;
                    let (i, _reserved) = be_u8(i)?;
                    let (i, metric) = be_u16(i)?;
                    Ok((i, (tos, metric)))
                })?;
                tos.push(entry);
                i = next;
            }
            links.push(RouterLink {
                link_id,
                link_data,
                link_type,
                metric,
                tos,
            });
            rest = i;
        }
        no_trailing("router-LSA", rest)?;
        Ok(RouterLsa {
            flags: RouterFlags(flags),
            links,
        })
    }

    fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let nlinks = count_field::<u16>("router-LSA links", self.links.len(), u16::MAX.into())?;
        buf.put_u8(self.flags.0);
        buf.put_u8(0);
        buf.put_u16(nlinks);
        for link in &self.links {
            let ntos = count_field::<u8>(
                "router-LSA link TOS entries",
                link.tos.len(),
                u8::MAX.into(),
            )?;
            buf.put_u32(link.link_id.into());
            buf.put_u32(link.link_data.into());
            buf.put_u8(link.link_type as u8);
            buf.put_u8(ntos);
            buf.put_u16(link.metric);
            for &(tos, metric) in &link.tos {
                buf.put_u8(tos);
                buf.put_u8(0);
                buf.put_u16(metric);
            }
        }
        Ok(())
    }
}

impl NetworkLsa {
    fn decode(body: &[u8]) -> Result<NetworkLsa, LsaError> {
        let (rest, network_mask) = fixed("network-LSA", 4, body, ipv4)?;
        let attached_routers = addresses("network-LSA attached routers", rest)?;
        Ok(NetworkLsa {
            network_mask,
            attached_routers,
        })
    }

    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.network_mask.into());
        for r in &self.attached_routers {
            buf.put_u32((*r).into());
        }
    }
}

impl SummaryLsa {
    fn decode(body: &[u8]) -> Result<SummaryLsa, LsaError> {
        // Network Mask, then (TOS, 24-bit metric) words; the first word is
        // TOS 0 whose TOS octet is reserved (RFC 2328 A.4.4).
        let (rest, (network_mask, metric)) = fixed("summary-LSA", 8, body, |i| {
            let (i, mask) = ipv4(i)?;
            let (i, _tos0) = be_u8(i)?;
            let (i, metric) = be_u24(i)?;
            Ok((i, (mask, metric)))
        })?;
        no_partial_entry("summary-LSA TOS entries", rest, 4)?;
        let mut tos = Vec::with_capacity(rest.len() / 4);
        let mut i = rest;
        while !i.is_empty() {
            let (next, entry) = fixed("summary-LSA TOS entry", 4, i, |i| {
                let (i, tos) = be_u8(i)?;
                let (i, metric) = be_u24(i)?;
                Ok((i, (tos, metric)))
            })?;
            tos.push(entry);
            i = next;
        }
        Ok(SummaryLsa {
            network_mask,
            metric,
            tos,
        })
    }

    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.network_mask.into());
        put_tos_metric(buf, 0, self.metric);
        for &(tos, metric) in &self.tos {
            put_tos_metric(buf, tos, metric);
        }
    }
}

impl ExternalLsa {
    fn decode(body: &[u8]) -> Result<ExternalLsa, LsaError> {
        let (rest, network_mask) = fixed("AS-external-LSA", 4, body, ipv4)?;
        no_partial_entry("AS-external-LSA", rest, 12)?;
        // The first 12-byte entry is TOS 0 and is mandatory (RFC 2328 A.4.5).
        let (mut rest, first) = fixed("AS-external-LSA", 12, rest, external_entry)?;
        let mut tos = Vec::with_capacity(rest.len() / 12);
        while !rest.is_empty() {
            let (next, entry) = fixed("AS-external-LSA TOS entry", 12, rest, external_entry)?;
            tos.push(entry);
            rest = next;
        }
        Ok(ExternalLsa {
            network_mask,
            e_bit: first.e_bit,
            metric: first.metric,
            forwarding_address: first.forwarding_address,
            external_route_tag: first.external_route_tag,
            tos,
        })
    }

    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.network_mask.into());
        put_external_entry(
            buf,
            &ExternalTos {
                e_bit: self.e_bit,
                tos: 0,
                metric: self.metric,
                forwarding_address: self.forwarding_address,
                external_route_tag: self.external_route_tag,
            },
        );
        for entry in &self.tos {
            put_external_entry(buf, entry);
        }
    }
}

/// One `E|TOS, metric, forwarding address, tag` entry (RFC 2328 A.4.5).
fn external_entry(i: &[u8]) -> IResult<&[u8], ExternalTos> {
    let (i, e_tos) = be_u8(i)?;
    let (i, metric) = be_u24(i)?;
    let (i, forwarding_address) = ipv4(i)?;
    let (i, external_route_tag) = be_u32(i)?;
    Ok((
        i,
        ExternalTos {
            e_bit: e_tos & 0x80 != 0,
            tos: e_tos & 0x7f,
            metric,
            forwarding_address,
            external_route_tag,
        },
    ))
}

fn put_external_entry(buf: &mut BytesMut, e: &ExternalTos) {
    let e_bit = if e.e_bit { 0x80 } else { 0 };
    put_tos_metric(buf, e_bit | (e.tos & 0x7f), e.metric);
    buf.put_u32(e.forwarding_address.into());
    buf.put_u32(e.external_route_tag);
}

/// An octet followed by a 24-bit metric; the metric's top octet is dropped.
fn put_tos_metric(buf: &mut BytesMut, tos: u8, metric: u32) {
    buf.put_u32((u32::from(tos) << 24) | (metric & LS_INFINITY));
}

pub(crate) fn ipv4(i: &[u8]) -> IResult<&[u8], Ipv4Addr> {
    let (i, v) = be_u32(i)?;
    Ok((i, Ipv4Addr::from(v)))
}

/// Runs a nom parser for a fixed-size structure after checking its size, so
/// that a short input becomes a precise [`LsaError::Truncated`].
fn fixed<'a, T>(
    what: &'static str,
    need: usize,
    input: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> IResult<&'a [u8], T>,
) -> Result<(&'a [u8], T), LsaError> {
    let truncated = LsaError::Truncated {
        what,
        need,
        have: input.len(),
    };
    if input.len() < need {
        return Err(truncated);
    }
    parser(input).map_err(|_| truncated)
}

fn no_trailing(what: &'static str, rest: &[u8]) -> Result<(), LsaError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(LsaError::TrailingBytes {
            what,
            extra: rest.len(),
        })
    }
}

fn no_partial_entry(what: &'static str, rest: &[u8], unit: usize) -> Result<(), LsaError> {
    match rest.len() % unit {
        0 => Ok(()),
        extra => Err(LsaError::TrailingBytes { what, extra }),
    }
}

/// A list of IPv4 addresses filling `rest` exactly.
fn addresses(what: &'static str, rest: &[u8]) -> Result<Vec<Ipv4Addr>, LsaError> {
    no_partial_entry(what, rest, 4)?;
    Ok(rest
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .map(Ipv4Addr::from)
        .collect())
}

/// Converts a list length to its count field type, whose largest value
/// is `max`.
pub(crate) fn count_field<T: TryFrom<usize>>(
    what: &'static str,
    count: usize,
    max: usize,
) -> Result<T, EncodeError> {
    T::try_from(count).map_err(|_| EncodeError::TooManyEntries { what, count, max })
}

// ---------------------------------------------------------------------------
// Fletcher checksum (RFC 2328 section 12.1.7, ISO 8473 Annex C).

/// Bytes summed before the running sums are reduced mod 255. The u32 lane
/// sums below stay small: p[j] <= 255 * T(T-1)/2, about 8.3e6 for
/// T = 4096 / 16 = 256 steps (the limit would be T = 5803). The per-block
/// combination is done in u64.
const FLETCHER_BLOCK: usize = 4096;

/// Lanes per step: one step is 16 bytes.
const LANES: usize = 16;

/// Weight of lane j within a step: byte j of a 16-byte step is added to
/// c1 by itself and the 15 - j bytes after it, so 16 - j times.
const FLETCHER_WEIGHTS: [u64; LANES] = [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1];

/// The two ISO 8473 running sums, reduced mod 255 between blocks.
#[derive(Clone, Copy, Default)]
struct Fletcher {
    c0: u32,
    c1: u32,
}

impl Fletcher {
    fn update(&mut self, data: &[u8]) {
        for block in data.chunks(FLETCHER_BLOCK) {
            // The byte-serial recurrence (c0 += b; c1 += c0) is one long
            // dependency chain. Split the block into T steps of 16 bytes
            // and keep per-lane sums instead:
            //   s[j] = sum over steps of byte j,
            //   p[j] = sum over steps t of s[j] as it was before step t.
            // Then over the block, with c0 the value at its start:
            //   c1 += 16 * (T * c0 + sum(p)) + sum(w[j] * s[j])
            //   c0 += sum(s)
            // The inner loop is two independent lane-wise adds, which the
            // compiler turns into SIMD.
            let mut s = [0u32; LANES];
            let mut p = [0u32; LANES];
            let mut steps = block.chunks_exact(LANES);
            let mut t: u64 = 0;
            for step in &mut steps {
                for ((pj, sj), &b) in p.iter_mut().zip(s.iter_mut()).zip(step) {
                    *pj += *sj;
                    *sj += u32::from(b);
                }
                t += 1;
            }
            let sum_s: u64 = s.iter().map(|&v| u64::from(v)).sum();
            let sum_p: u64 = p.iter().map(|&v| u64::from(v)).sum();
            let weighted: u64 = s
                .iter()
                .zip(FLETCHER_WEIGHTS.iter())
                .map(|(&v, &w)| u64::from(v) * w)
                .sum();
            let mut c0 = u64::from(self.c0);
            let mut c1 = u64::from(self.c1) + LANES as u64 * (t * c0 + sum_p) + weighted;
            c0 += sum_s;
            for &b in steps.remainder() {
                c0 += u64::from(b);
                c1 += c0;
            }
            self.c0 = (c0 % 255) as u32;
            self.c1 = (c1 % 255) as u32;
        }
    }

    /// Feeds `n` (small) zero bytes: c0 is unchanged, c1 gains c0 each time.
    fn zeros(&mut self, n: u32) {
        self.c1 = (self.c1 + n * self.c0) % 255;
    }
}

/// Computes the LS checksum to store in an LSA (RFC 2328 section 12.1.7):
/// the ISO 8473 Fletcher checksum over the LSA from byte 2 (the LS age is
/// excluded), with the checksum field at offset 16 counted as zero.
///
/// `bytes` must be exactly the LSA (its length field is not consulted).
/// Returns 0 for inputs shorter than an LSA header, which is never a
/// checksum this function produces otherwise.
pub fn lsa_checksum(bytes: &[u8]) -> u16 {
    if bytes.len() < LSA_HEADER_LEN {
        return 0;
    }
    let (Some(before), Some(after)) = (
        bytes.get(CHECKSUM_START..CHECKSUM_OFFSET),
        bytes.get(LENGTH_OFFSET..),
    ) else {
        return 0;
    };
    let mut f = Fletcher::default();
    f.update(before);
    f.zeros(2);
    f.update(after);

    // With L checksummed bytes and the checksum octets at 1-based
    // positions p and p+1, the octets X and Y that make both sums zero
    // mod 255 are (ISO 8473 Annex C.2):
    //   X = (L - p) * C0 - C1,   Y = C1 - (L - p + 1) * C0.
    // Here the data starts at LSA byte 2, so p = 16 - 2 + 1 = 15 and
    // L - p = len - 17. All arithmetic stays in 0..255 mod 255.
    let l_minus_p = ((bytes.len() - 17) % 255) as u32;
    let c0 = f.c0;
    let c1 = f.c1;
    let mut x = (l_minus_p * c0 % 255 + 255 - c1) % 255;
    let mut y = (c1 + 2 * 255 - (l_minus_p + 1) * c0 % 255) % 255;
    // ISO 8473: a zero octet is sent as 255 (the same value mod 255), so a
    // computed checksum is never 0.
    if x == 0 {
        x = 255;
    }
    if y == 0 {
        y = 255;
    }
    ((x as u16) << 8) | y as u16
}

/// Verifies the LS checksum of one LSA (RFC 2328 section 13 step 1):
/// running the Fletcher sums over the LSA from byte 2 with the checksum in
/// place must give C0 = C1 = 0 mod 255. Returns false if `bytes` is not
/// exactly one LSA according to its length field.
pub fn verify_lsa_checksum(bytes: &[u8]) -> bool {
    let Ok(header) = LsaHeader::decode(bytes) else {
        return false;
    };
    if usize::from(header.length) != bytes.len() {
        return false;
    }
    let mut f = Fletcher::default();
    f.update(bytes.get(CHECKSUM_START..).unwrap_or_default());
    f.c0 == 0 && f.c1 == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- reference implementation and helpers ---------------------------

    /// Straightforward ISO 8473 sums, reducing after every byte: an
    /// independent check on the blocked implementation.
    fn naive_sums(data: &[u8]) -> (u32, u32) {
        let (mut c0, mut c1) = (0u32, 0u32);
        for &b in data {
            c0 = (c0 + u32::from(b)) % 255;
            c1 = (c1 + c0) % 255;
        }
        (c0, c1)
    }

    fn naive_checksum(lsa: &[u8]) -> u16 {
        let mut data = lsa[2..].to_vec();
        data[14] = 0;
        data[15] = 0;
        let (c0, c1) = naive_sums(&data);
        let l = data.len() as i64;
        let p = 15i64;
        let (c0, c1) = (c0 as i64, c1 as i64);
        let mut x = ((l - p) * c0 - c1).rem_euclid(255);
        let mut y = (c1 - (l - p + 1) * c0).rem_euclid(255);
        if x == 0 {
            x = 255;
        }
        if y == 0 {
            y = 255;
        }
        ((x as u16) << 8) | y as u16
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn header(lsa_type: LsaType) -> LsaHeader {
        LsaHeader {
            age: 1,
            options: Options::E,
            lsa_type,
            link_state_id: ip("192.0.2.1"),
            advertising_router: ip("192.0.2.1"),
            seq: INITIAL_SEQUENCE_NUMBER,
            checksum: 0,
            length: 0,
        }
    }

    /// A router-LSA with one transit link and one stub /32 link.
    fn golden_router_lsa() -> Lsa {
        Lsa {
            header: header(LsaType::ROUTER),
            body: LsaBody::Router(RouterLsa {
                flags: RouterFlags::E,
                links: vec![
                    RouterLink {
                        link_id: ip("10.0.0.1"),
                        link_data: ip("10.0.0.2"),
                        link_type: RouterLinkType::Transit,
                        metric: 10,
                        tos: vec![],
                    },
                    RouterLink {
                        link_id: ip("192.0.2.10"),
                        link_data: ip("255.255.255.255"),
                        link_type: RouterLinkType::Stub,
                        metric: 0,
                        tos: vec![],
                    },
                ],
            }),
        }
    }

    /// Hand-assembled from RFC 2328 A.4.1 and A.4.2; the checksum octets
    /// (0x51, 0x7b) were computed independently with a Python transcription
    /// of ISO 8473 Annex C.
    const GOLDEN_ROUTER_LSA: [u8; 48] = [
        0x00, 0x01, // LS age 1
        0x02, // options: E
        0x01, // LS type 1
        192, 0, 2, 1, // Link State ID
        192, 0, 2, 1, // Advertising Router
        0x80, 0x00, 0x00, 0x01, // InitialSequenceNumber
        0x51, 0x7b, // LS checksum
        0x00, 48, // length: 20 + 4 + 2 * 12
        0x02, 0x00, // flags: E; reserved
        0x00, 0x02, // # links
        10, 0, 0, 1, // link 1: Link ID (DR)
        10, 0, 0, 2, // Link Data (our interface address)
        0x02, 0x00, 0x00, 10, // type transit, # TOS 0, metric 10
        192, 0, 2, 10, // link 2: Link ID (network number)
        255, 255, 255, 255, // Link Data (mask)
        0x03, 0x00, 0x00, 0x00, // type stub, # TOS 0, metric 0
    ];

    // ---- golden bytes --------------------------------------------------------

    #[test]
    fn golden_router_lsa_encodes_to_rfc_layout() {
        let bytes = golden_router_lsa().encode().unwrap();
        assert_eq!(&bytes[..], &GOLDEN_ROUTER_LSA[..]);
        assert!(verify_lsa_checksum(&bytes));
    }

    #[test]
    fn golden_router_lsa_decodes() {
        let lsa = Lsa::decode(&GOLDEN_ROUTER_LSA).unwrap();
        let mut expected = golden_router_lsa();
        expected.header.checksum = 0x517b;
        expected.header.length = 48;
        assert_eq!(lsa, expected);
        let raw = RawLsa::from_bytes(Bytes::from_static(&GOLDEN_ROUTER_LSA)).unwrap();
        assert_eq!(raw.decode().unwrap(), expected);
        assert!(raw.verify_checksum());
    }

    #[test]
    fn golden_external_lsa_layout() {
        let lsa = Lsa {
            header: header(LsaType::AS_EXTERNAL),
            body: LsaBody::AsExternal(ExternalLsa {
                network_mask: ip("255.255.255.0"),
                e_bit: true,
                metric: 20,
                forwarding_address: ip("0.0.0.0"),
                external_route_tag: 0xdead_beef,
                tos: vec![],
            }),
        };
        let bytes = lsa.encode().unwrap();
        assert_eq!(bytes.len(), 36);
        assert_eq!(
            &bytes[20..],
            &[
                255, 255, 255, 0, // mask
                0x80, 0, 0, 20, // E bit, metric 20
                0, 0, 0, 0, // forwarding address
                0xde, 0xad, 0xbe, 0xef, // external route tag
            ]
        );
        assert_eq!(&bytes[18..20], &[0, 36]);
        assert!(verify_lsa_checksum(&bytes));
    }

    #[test]
    fn golden_summary_and_network_layout() {
        let summary = Lsa {
            header: header(LsaType::SUMMARY_NETWORK),
            body: LsaBody::SummaryNetwork(SummaryLsa {
                network_mask: ip("255.255.0.0"),
                metric: 0x01_0203,
                tos: vec![(8, 0x0a_0b0c)],
            }),
        };
        let bytes = summary.encode().unwrap();
        assert_eq!(
            &bytes[20..],
            &[255, 255, 0, 0, 0, 1, 2, 3, 8, 0x0a, 0x0b, 0x0c]
        );
        let network = Lsa {
            header: header(LsaType::NETWORK),
            body: LsaBody::Network(NetworkLsa {
                network_mask: ip("255.255.255.0"),
                attached_routers: vec![ip("1.1.1.1"), ip("2.2.2.2")],
            }),
        };
        let bytes = network.encode().unwrap();
        assert_eq!(&bytes[20..], &[255, 255, 255, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    }

    // ---- checksum --------------------------------------------------------

    #[test]
    fn checksum_satisfies_iso8473_property() {
        let bytes = golden_router_lsa().encode().unwrap();
        // With the checksum in place both sums are zero mod 255.
        assert_eq!(naive_sums(&bytes[2..]), (0, 0));
        assert_eq!(lsa_checksum(&bytes), naive_checksum(&bytes));
        // The age is not covered: changing it keeps the LSA valid.
        let mut aged = bytes.to_vec();
        aged[0] = 0x0e;
        aged[1] = 0x10;
        assert!(verify_lsa_checksum(&aged));
    }

    #[test]
    fn checksum_detects_corruption_and_bad_length() {
        let bytes = golden_router_lsa().encode().unwrap();
        for i in 2..bytes.len() {
            let mut bad = bytes.to_vec();
            // Change by exactly one: never 0x00 <-> 0xff, the one change
            // a mod-255 sum cannot see.
            bad[i] = if bad[i] == 0xff { 0xfe } else { bad[i] + 1 };
            assert!(!verify_lsa_checksum(&bad), "corruption at byte {i}");
        }
        assert!(!verify_lsa_checksum(&bytes[..40]));
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(!verify_lsa_checksum(&longer));
        assert!(!verify_lsa_checksum(&[]));
        assert_eq!(lsa_checksum(&[0; 10]), 0);
    }

    #[test]
    fn checksum_of_large_lsa_matches_reference() {
        // Long enough to cross several 4096-byte blocks.
        let mut lsa: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + 3) as u8).collect();
        let len = lsa.len() as u16;
        lsa[18..20].copy_from_slice(&len.to_be_bytes());
        let c = lsa_checksum(&lsa);
        assert_eq!(c, naive_checksum(&lsa));
        lsa[16..18].copy_from_slice(&c.to_be_bytes());
        assert!(verify_lsa_checksum(&lsa));
        assert_eq!(naive_sums(&lsa[2..]), (0, 0));
    }

    // ---- instance comparison (RFC 2328 13.1) ------------------------------

    #[test]
    fn compare_instance_follows_rfc2328_13_1() {
        let base = LsaHeader {
            seq: 5,
            checksum: 0x1000,
            age: 100,
            ..header(LsaType::ROUTER)
        };
        let newer_seq = LsaHeader { seq: 6, ..base };
        assert_eq!(newer_seq.compare_instance(&base), Ordering::Greater);
        assert_eq!(base.compare_instance(&newer_seq), Ordering::Less);
        // Signed: InitialSequenceNumber is older than 1.
        let initial = LsaHeader {
            seq: INITIAL_SEQUENCE_NUMBER,
            ..base
        };
        let one = LsaHeader { seq: 1, ..base };
        assert_eq!(initial.compare_instance(&one), Ordering::Less);
        // Same sequence: larger unsigned checksum wins.
        let bigger_sum = LsaHeader {
            checksum: 0xf000,
            ..base
        };
        assert_eq!(bigger_sum.compare_instance(&base), Ordering::Greater);
        // Same seq and checksum: MaxAge wins even over a younger copy.
        let max_age = LsaHeader {
            age: MAX_AGE,
            ..base
        };
        assert_eq!(max_age.compare_instance(&base), Ordering::Greater);
        assert_eq!(base.compare_instance(&max_age), Ordering::Less);
        assert_eq!(max_age.compare_instance(&max_age), Ordering::Equal);
        // Ages more than MaxAgeDiff apart: the younger is newer.
        let old = LsaHeader {
            age: 100 + MAX_AGE_DIFF + 1,
            ..base
        };
        assert_eq!(base.compare_instance(&old), Ordering::Greater);
        assert_eq!(old.compare_instance(&base), Ordering::Less);
        // Exactly MaxAgeDiff apart: the same instance.
        let same = LsaHeader {
            age: 100 + MAX_AGE_DIFF,
            ..base
        };
        assert_eq!(base.compare_instance(&same), Ordering::Equal);
    }

    // ---- decode errors -----------------------------------------------------

    #[test]
    fn decode_errors_are_typed() {
        let good = GOLDEN_ROUTER_LSA;
        assert_eq!(
            Lsa::decode(&good[..10]),
            Err(LsaError::Truncated {
                what: "LSA header",
                need: 20,
                have: 10
            })
        );
        assert_eq!(
            Lsa::decode(&good[..40]),
            Err(LsaError::LengthMismatch {
                length: 48,
                actual: 40
            })
        );
        let mut short = good;
        short[18..20].copy_from_slice(&[0, 0]);
        assert_eq!(
            Lsa::decode(&short),
            Err(LsaError::LengthTooShort { length: 0 })
        );
        // # links claims a third link that is not there.
        let mut more_links = good;
        more_links[23] = 3;
        assert_eq!(
            Lsa::decode(&more_links),
            Err(LsaError::Truncated {
                what: "router-LSA link",
                need: 12,
                have: 0
            })
        );
        // # links claims fewer links than present.
        let mut fewer_links = good;
        fewer_links[23] = 1;
        assert_eq!(
            Lsa::decode(&fewer_links),
            Err(LsaError::TrailingBytes {
                what: "router-LSA",
                extra: 12
            })
        );
        // A huge # TOS on the first link.
        let mut many_tos = good;
        many_tos[33] = 255;
        assert!(matches!(
            Lsa::decode(&many_tos),
            Err(LsaError::Truncated {
                what: "router-LSA TOS entry",
                ..
            })
        ));
        let mut bad_type = good;
        bad_type[44] = 9;
        assert_eq!(
            Lsa::decode(&bad_type),
            Err(LsaError::UnknownRouterLinkType {
                index: 1,
                link_type: 9
            })
        );
        // A network-LSA whose body is not whole addresses.
        let mut net = GOLDEN_ROUTER_LSA[..26].to_vec();
        net[3] = 2;
        net[19] = 26;
        assert_eq!(
            Lsa::decode(&net),
            Err(LsaError::TrailingBytes {
                what: "network-LSA attached routers",
                extra: 2
            })
        );
        // An AS-external-LSA without its mandatory TOS 0 entry.
        let mut ext = GOLDEN_ROUTER_LSA[..24].to_vec();
        ext[3] = 5;
        ext[19] = 24;
        assert_eq!(
            Lsa::decode(&ext),
            Err(LsaError::Truncated {
                what: "AS-external-LSA",
                need: 12,
                have: 0
            })
        );
    }

    #[test]
    fn split_from_frames_by_length() {
        let mut buf = Bytes::from([&GOLDEN_ROUTER_LSA[..], &[1, 2, 3]].concat());
        let raw = RawLsa::split_from(&mut buf).unwrap();
        assert_eq!(&raw.as_bytes()[..], &GOLDEN_ROUTER_LSA[..]);
        assert_eq!(&buf[..], &[1, 2, 3]);
        let mut cut = Bytes::copy_from_slice(&GOLDEN_ROUTER_LSA[..47]);
        assert_eq!(
            RawLsa::split_from(&mut cut),
            Err(LsaError::Truncated {
                what: "LSA",
                need: 48,
                have: 47
            })
        );
    }

    #[test]
    fn encode_rejects_unrepresentable_values() {
        let mut lsa = golden_router_lsa();
        lsa.header.lsa_type = LsaType::NETWORK;
        assert!(matches!(
            lsa.encode(),
            Err(EncodeError::BodyTypeMismatch { .. })
        ));
        let unknown_as_router = Lsa {
            header: header(LsaType::ROUTER),
            body: LsaBody::Unknown(Bytes::new()),
        };
        assert!(unknown_as_router.encode().is_err());
        let huge = Lsa {
            header: header(LsaType(200)),
            body: LsaBody::Unknown(Bytes::from(vec![0; MAX_LSA_LEN])),
        };
        assert_eq!(
            huge.encode(),
            Err(EncodeError::TooLong {
                what: "LSA",
                len: MAX_LSA_LEN + 20
            })
        );
        let mut many_tos = golden_router_lsa();
        if let LsaBody::Router(r) = &mut many_tos.body {
            r.links[0].tos = vec![(1, 1); 256];
        }
        assert_eq!(
            many_tos.encode(),
            Err(EncodeError::TooManyEntries {
                what: "router-LSA link TOS entries",
                count: 256,
                max: 255
            })
        );
    }

    // ---- raw preservation ----------------------------------------------

    #[test]
    fn raw_lsa_keeps_unknown_and_reserved_bits() {
        // Reserved octets set, unknown router flag 0x80, unknown option bit:
        // the structured decode drops the reserved octets but the raw form
        // must flood them unchanged.
        let mut bytes = GOLDEN_ROUTER_LSA;
        bytes[2] = 0xff; // every option bit
        bytes[20] = 0x80 | 0x02; // unknown flag + E
        bytes[21] = 0x5a; // reserved octet
        let c = lsa_checksum(&bytes);
        bytes[16..18].copy_from_slice(&c.to_be_bytes());
        let raw = RawLsa::from_bytes(Bytes::copy_from_slice(&bytes)).unwrap();
        assert!(raw.verify_checksum());
        assert_eq!(&raw.as_bytes()[..], &bytes[..]);
        let lsa = raw.decode().unwrap();
        assert_eq!(lsa.header.options.bits(), 0xff);
        let LsaBody::Router(r) = &lsa.body else {
            panic!("not a router-LSA: {lsa:?}")
        };
        assert_eq!(r.flags, RouterFlags(0x82));
        assert!(r.flags.contains(RouterFlags::E));

        let aged = raw.with_age(MAX_AGE);
        assert_eq!(aged.header().age, MAX_AGE);
        assert_eq!(&aged.as_bytes()[2..], &bytes[2..]);
        assert!(aged.verify_checksum());
    }

    #[test]
    fn opaque_and_unknown_bodies_round_trip() {
        let body = Bytes::from_static(&[1, 0, 0, 4, 0xc0, 0, 2, 1, 9]);
        for (t, lsa_body) in [
            (LsaType::OPAQUE_AREA, LsaBody::Opaque(body.clone())),
            (LsaType(6), LsaBody::Unknown(body.clone())),
        ] {
            let lsa = Lsa {
                header: LsaHeader {
                    link_state_id: ip("1.0.0.7"),
                    ..header(t)
                },
                body: lsa_body,
            };
            let bytes = lsa.encode().unwrap();
            assert_eq!(&bytes[20..], &body[..]);
            let raw = RawLsa::from_bytes(bytes.clone()).unwrap();
            let back = raw.decode().unwrap();
            assert_eq!(back.body, lsa.body);
            assert_eq!(back.header.opaque_type(), 1);
            assert_eq!(back.header.opaque_id(), 7);
            assert_eq!(back.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn debug_names_bits_and_types() {
        assert_eq!(
            format!("{:?}", Options::E | Options::O | Options(0x01)),
            "Options(MT|E|O)"
        );
        assert_eq!(format!("{:?}", RouterFlags(0x81)), "RouterFlags(B|0x80)");
        assert_eq!(format!("{:?}", LsaType::NSSA), "Nssa(7)");
        assert_eq!(format!("{:?}", LsaType(42)), "LsaType(42)");
    }

    // ---- proptest strategies (shared with packet.rs tests) ---------------

    pub(crate) fn arb_ipv4() -> impl Strategy<Value = Ipv4Addr> {
        any::<u32>().prop_map(Ipv4Addr::from)
    }

    pub(crate) fn arb_header() -> impl Strategy<Value = LsaHeader> {
        (
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            arb_ipv4(),
            arb_ipv4(),
            any::<i32>(),
            any::<u16>(),
            any::<u16>(),
        )
            .prop_map(
                |(age, options, t, lsid, adv, seq, checksum, length)| LsaHeader {
                    age,
                    options: Options(options),
                    lsa_type: LsaType(t),
                    link_state_id: lsid,
                    advertising_router: adv,
                    seq,
                    checksum,
                    length,
                },
            )
    }

    fn metric24() -> impl Strategy<Value = u32> {
        0..=LS_INFINITY
    }

    fn arb_router_link() -> impl Strategy<Value = RouterLink> {
        (
            arb_ipv4(),
            arb_ipv4(),
            1u8..=4,
            any::<u16>(),
            prop::collection::vec((any::<u8>(), any::<u16>()), 0..3),
        )
            .prop_map(|(link_id, link_data, t, metric, tos)| RouterLink {
                link_id,
                link_data,
                link_type: RouterLinkType::try_from(t).unwrap(),
                metric,
                tos,
            })
    }

    fn arb_external() -> impl Strategy<Value = ExternalLsa> {
        let tos = (
            any::<bool>(),
            0u8..0x80,
            metric24(),
            arb_ipv4(),
            any::<u32>(),
        )
            .prop_map(
                |(e_bit, tos, metric, forwarding_address, external_route_tag)| ExternalTos {
                    e_bit,
                    tos,
                    metric,
                    forwarding_address,
                    external_route_tag,
                },
            );
        (
            arb_ipv4(),
            any::<bool>(),
            metric24(),
            arb_ipv4(),
            any::<u32>(),
            prop::collection::vec(tos, 0..3),
        )
            .prop_map(|(network_mask, e_bit, metric, fa, tag, tos)| ExternalLsa {
                network_mask,
                e_bit,
                metric,
                forwarding_address: fa,
                external_route_tag: tag,
                tos,
            })
    }

    fn arb_summary() -> impl Strategy<Value = SummaryLsa> {
        (
            arb_ipv4(),
            metric24(),
            prop::collection::vec((any::<u8>(), metric24()), 0..3),
        )
            .prop_map(|(network_mask, metric, tos)| SummaryLsa {
                network_mask,
                metric,
                tos,
            })
    }

    fn arb_bytes() -> impl Strategy<Value = Bytes> {
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
    }

    pub(crate) fn arb_router_body() -> impl Strategy<Value = LsaBody> {
        (any::<u8>(), prop::collection::vec(arb_router_link(), 0..6)).prop_map(|(flags, links)| {
            LsaBody::Router(RouterLsa {
                flags: RouterFlags(flags),
                links,
            })
        })
    }

    pub(crate) fn arb_network_body() -> impl Strategy<Value = LsaBody> {
        (arb_ipv4(), prop::collection::vec(arb_ipv4(), 0..6)).prop_map(
            |(network_mask, attached_routers)| {
                LsaBody::Network(NetworkLsa {
                    network_mask,
                    attached_routers,
                })
            },
        )
    }

    /// An LSA with a header type that matches the body.
    fn with_header(body: impl Strategy<Value = LsaBody>) -> impl Strategy<Value = Lsa> {
        (arb_header(), body, 9u8..=11, any::<u8>()).prop_map(|(mut header, body, opaque, other)| {
            header.lsa_type = match &body {
                LsaBody::Router(_) => LsaType::ROUTER,
                LsaBody::Network(_) => LsaType::NETWORK,
                LsaBody::SummaryNetwork(_) => LsaType::SUMMARY_NETWORK,
                LsaBody::SummaryAsbr(_) => LsaType::SUMMARY_ASBR,
                LsaBody::AsExternal(_) => LsaType::AS_EXTERNAL,
                LsaBody::Nssa(_) => LsaType::NSSA,
                LsaBody::Opaque(_) => LsaType(opaque),
                // Any type without a decoder: 0, 6, 8, 12..=255.
                LsaBody::Unknown(_) => match other {
                    1..=5 | 7 | 9..=11 => LsaType(other + 100),
                    t => LsaType(t),
                },
            };
            Lsa { header, body }
        })
    }

    pub(crate) fn arb_lsa() -> impl Strategy<Value = Lsa> {
        with_header(prop_oneof![
            arb_router_body(),
            arb_network_body(),
            arb_summary().prop_map(LsaBody::SummaryNetwork),
            arb_summary().prop_map(LsaBody::SummaryAsbr),
            arb_external().prop_map(LsaBody::AsExternal),
            arb_external().prop_map(LsaBody::Nssa),
            arb_bytes().prop_map(LsaBody::Opaque),
            arb_bytes().prop_map(LsaBody::Unknown),
        ])
    }

    /// encode -> decode gives the value back (with the real length and
    /// checksum), re-encoding gives the same bytes, and the checksum holds.
    fn check_round_trip(lsa: Lsa) -> Result<(), TestCaseError> {
        let bytes = lsa.encode().unwrap();
        prop_assert_eq!(bytes.len(), LSA_HEADER_LEN + lsa.body.encoded_len());
        prop_assert!(verify_lsa_checksum(&bytes));
        prop_assert_eq!(lsa_checksum(&bytes), naive_checksum(&bytes));
        let mut expected = lsa;
        expected.header.length = bytes.len() as u16;
        expected.header.checksum = lsa_checksum(&bytes);
        let decoded = Lsa::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &expected);
        prop_assert_eq!(decoded.encode().unwrap(), bytes.clone());
        let raw = RawLsa::from_bytes(bytes.clone()).unwrap();
        prop_assert_eq!(raw.header(), &expected.header);
        prop_assert_eq!(raw.decode().unwrap(), expected);
        prop_assert_eq!(raw.into_bytes(), bytes);
        Ok(())
    }

    proptest! {
        #[test]
        fn round_trip_router(lsa in with_header(arb_router_body())) {
            check_round_trip(lsa)?;
        }

        #[test]
        fn round_trip_network(lsa in with_header(arb_network_body())) {
            check_round_trip(lsa)?;
        }

        #[test]
        fn round_trip_summary_network(
            lsa in with_header(arb_summary().prop_map(LsaBody::SummaryNetwork))
        ) {
            check_round_trip(lsa)?;
        }

        #[test]
        fn round_trip_summary_asbr(
            lsa in with_header(arb_summary().prop_map(LsaBody::SummaryAsbr))
        ) {
            check_round_trip(lsa)?;
        }

        #[test]
        fn round_trip_as_external(
            lsa in with_header(arb_external().prop_map(LsaBody::AsExternal))
        ) {
            check_round_trip(lsa)?;
        }

        #[test]
        fn round_trip_nssa(lsa in with_header(arb_external().prop_map(LsaBody::Nssa))) {
            check_round_trip(lsa)?;
        }

        #[test]
        fn round_trip_opaque(lsa in with_header(arb_bytes().prop_map(LsaBody::Opaque))) {
            check_round_trip(lsa)?;
        }

        #[test]
        fn round_trip_unknown(lsa in with_header(arb_bytes().prop_map(LsaBody::Unknown))) {
            check_round_trip(lsa)?;
        }

        #[test]
        fn header_round_trip(h in arb_header()) {
            let mut buf = BytesMut::new();
            h.encode(&mut buf);
            prop_assert_eq!(buf.len(), LSA_HEADER_LEN);
            prop_assert_eq!(LsaHeader::decode(&buf).unwrap(), h);
        }

        #[test]
        fn compare_instance_is_antisymmetric(a in arb_header(), b in arb_header()) {
            prop_assert_eq!(a.compare_instance(&b), b.compare_instance(&a).reverse());
            prop_assert_eq!(a.compare_instance(&a), Ordering::Equal);
        }

        #[test]
        fn checksum_matches_reference(data in prop::collection::vec(any::<u8>(), 20..600)) {
            let mut lsa = data;
            let len = lsa.len() as u16;
            lsa[18..20].copy_from_slice(&len.to_be_bytes());
            let c = lsa_checksum(&lsa);
            prop_assert_eq!(c, naive_checksum(&lsa));
            lsa[16..18].copy_from_slice(&c.to_be_bytes());
            prop_assert!(verify_lsa_checksum(&lsa));
            prop_assert_eq!(naive_sums(&lsa[2..]), (0, 0));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Lsa::decode(&data);
            let _ = LsaHeader::decode(&data);
            let _ = lsa_checksum(&data);
            let _ = verify_lsa_checksum(&data);
            if let Ok(raw) = RawLsa::from_bytes(Bytes::from(data.clone())) {
                let _ = raw.decode();
            }
            let mut buf = Bytes::from(data);
            while let Ok(raw) = RawLsa::split_from(&mut buf) {
                let _ = raw.decode();
            }
        }

        /// Random corruption of valid LSAs reaches the body decoders (pure
        /// random bytes rarely get past the length check). Whatever
        /// decodes must re-encode to something that decodes the same.
        #[test]
        fn mutated_lsas_never_panic(
            lsa in arb_lsa(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = lsa.encode().unwrap().to_vec();
            for (at, v) in edits {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            for candidate in [&bytes[..], &bytes[..cut.index(bytes.len() + 1)]] {
                if let Ok(decoded) = Lsa::decode(candidate) {
                    let again = Lsa::decode(&decoded.encode().unwrap()).unwrap();
                    prop_assert_eq!(again.body, decoded.body);
                }
            }
        }
    }
}
