//! OSPFv2 packets (RFC 2328 appendix A.3): the 24-byte common header and
//! the Hello, Database Description, Link State Request, Link State Update
//! and Link State Acknowledgment bodies, plus the standard packet checksum
//! (RFC 2328 D.4.1, D.4.2).
//!
//! Decoding honours the header's packet length: anything after it (the
//! cryptographic authentication digest of D.4.3, RFC 5613 LLS data) is left
//! to other layers. The checksum is verified separately, with
//! [`verify_checksum`], so that callers can count drops by reason.
//! Link State Updates carry [`RawLsa`]s, which keep each LSA's exact bytes
//! for flooding; their bodies are decoded on demand.

use std::net::Ipv4Addr;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};
use nom::IResult;
use thiserror::Error;

use crate::lsa::{
    bit_flags, count_field, EncodeError, LsaError, LsaHeader, LsaKey, LsaType, Options, RawLsa,
    LSA_HEADER_LEN,
};

/// The OSPF version this module speaks.
pub const OSPF_VERSION: u8 = 2;
/// Size of the common packet header (RFC 2328 A.3.1).
pub const HEADER_LEN: usize = 24;
/// OSPF's IP protocol number (RFC 2328 A.1).
pub const IP_PROTOCOL: u8 = 89;
/// AllSPFRouters (RFC 2328 A.1).
pub const ALL_SPF_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 5);
/// AllDRouters (RFC 2328 A.1).
pub const ALL_D_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 6);
/// AuType 0: null authentication (RFC 2328 D.1).
pub const AUTYPE_NULL: u16 = 0;
/// AuType 1: simple password (RFC 2328 D.2).
pub const AUTYPE_SIMPLE_PASSWORD: u16 = 1;
/// AuType 2: cryptographic authentication (RFC 2328 D.3).
pub const AUTYPE_CRYPTOGRAPHIC: u16 = 2;

/// The header's Checksum field (RFC 2328 A.3.1).
const CHECKSUM_FIELD: Range<usize> = 12..14;
/// The header's 64-bit Authentication field (RFC 2328 A.3.1).
const AUTH_FIELD: Range<usize> = 16..24;
/// Size of a Link State Request entry (RFC 2328 A.3.4).
const LS_REQUEST_LEN: usize = 12;

/// Errors from [`Packet::decode`] and [`PacketHeader::decode`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
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
    /// The version field is not 2.
    #[error("unsupported OSPF version {0} (expected 2)")]
    BadVersion(u8),
    /// The type field is not 1..=5.
    #[error("unknown OSPF packet type {0}")]
    UnknownType(u8),
    /// The packet length field is below the 24-byte header.
    #[error("packet length field {length} is shorter than the 24-byte OSPF header")]
    LengthTooShort {
        /// The length field.
        length: u16,
    },
    /// The packet length field exceeds the bytes received.
    #[error("packet length field {length} exceeds the {available} bytes received")]
    LengthExceedsBuffer {
        /// The length field.
        length: u16,
        /// Bytes received.
        available: usize,
    },
    /// A body has bytes left over that do not form a whole entry.
    #[error("{what}: {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Which body.
        what: &'static str,
        /// Bytes left over.
        extra: usize,
    },
    /// A Link State Update claims more LSAs than it carries.
    #[error("link state update claims {claimed} LSAs but carries {found}")]
    LsaCountMismatch {
        /// The "# LSAs" field.
        claimed: u32,
        /// LSAs actually present.
        found: usize,
    },
    /// An LSA in a Link State Update cannot be framed.
    #[error("LSA {index} of link state update: {source}")]
    Lsa {
        /// Zero-based index of the LSA.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: LsaError,
    },
}

/// OSPF packet types (RFC 2328 A.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Hello.
    Hello = 1,
    /// Database Description.
    DatabaseDescription = 2,
    /// Link State Request.
    LinkStateRequest = 3,
    /// Link State Update.
    LinkStateUpdate = 4,
    /// Link State Acknowledgment.
    LinkStateAck = 5,
}

impl TryFrom<u8> for PacketType {
    type Error = u8;
    fn try_from(v: u8) -> Result<Self, u8> {
        Ok(match v {
            1 => PacketType::Hello,
            2 => PacketType::DatabaseDescription,
            3 => PacketType::LinkStateRequest,
            4 => PacketType::LinkStateUpdate,
            5 => PacketType::LinkStateAck,
            other => return Err(other),
        })
    }
}

/// The common header exactly as received (RFC 2328 A.3.1), without any
/// validation beyond its size. Authentication code uses it to find the
/// packet length and the cryptographic fields before the body is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketHeader {
    /// Version number.
    pub version: u8,
    /// Packet type octet.
    pub packet_type: u8,
    /// Packet length, header included, authentication trailer excluded.
    pub length: u16,
    /// Router ID of the sender.
    pub router_id: Ipv4Addr,
    /// Area ID.
    pub area_id: Ipv4Addr,
    /// Checksum.
    pub checksum: u16,
    /// AuType.
    pub autype: u16,
    /// The 64-bit Authentication field.
    pub auth_data: [u8; 8],
}

impl PacketHeader {
    /// Encoded size.
    pub const LEN: usize = HEADER_LEN;

    /// nom parser for the header (big-endian).
    pub fn parse(i: &[u8]) -> IResult<&[u8], PacketHeader> {
        let (i, version) = be_u8(i)?;
        let (i, packet_type) = be_u8(i)?;
        let (i, length) = be_u16(i)?;
        let (i, router_id) = ipv4(i)?;
        let (i, area_id) = ipv4(i)?;
        let (i, checksum) = be_u16(i)?;
        let (i, autype) = be_u16(i)?;
        let (i, auth) = be_u64(i)?;
        let auth_data = auth.to_be_bytes();
        Ok((
            i,
            PacketHeader {
                version,
                packet_type,
                length,
                router_id,
                area_id,
                checksum,
                autype,
                auth_data,
            },
        ))
    }

    /// Decodes the first 24 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<PacketHeader, DecodeError> {
        fixed("OSPF header", HEADER_LEN, bytes, PacketHeader::parse).map(|(_, h)| h)
    }
}

/// The Authentication field under cryptographic authentication
/// (RFC 2328 D.3): 16 zero bits, Key ID, Auth Data Len, Cryptographic
/// sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CryptographicAuth {
    /// Key ID.
    pub key_id: u8,
    /// Length of the digest appended after the packet.
    pub auth_data_len: u8,
    /// Cryptographic sequence number (non-decreasing).
    pub sequence_number: u32,
}

impl CryptographicAuth {
    /// Reads the fields from a packet's Authentication field.
    pub fn from_auth_data(auth_data: &[u8; 8]) -> Self {
        let [_, _, key_id, auth_data_len, s0, s1, s2, s3] = *auth_data;
        CryptographicAuth {
            key_id,
            auth_data_len,
            sequence_number: u32::from_be_bytes([s0, s1, s2, s3]),
        }
    }

    /// The Authentication field carrying these values.
    pub fn to_auth_data(&self) -> [u8; 8] {
        let [s0, s1, s2, s3] = self.sequence_number.to_be_bytes();
        [0, 0, self.key_id, self.auth_data_len, s0, s1, s2, s3]
    }
}

/// A decoded OSPF packet. Version, type, length and checksum are implied
/// and computed by [`Packet::encode`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Router ID of the sender.
    pub router_id: Ipv4Addr,
    /// Area ID.
    pub area_id: Ipv4Addr,
    /// AuType (RFC 2328 D).
    pub autype: u16,
    /// The 64-bit Authentication field: a password for AuType 1, see
    /// [`CryptographicAuth`] for AuType 2.
    pub auth_data: [u8; 8],
    /// The body.
    pub body: PacketBody,
}

/// The body of a packet, by type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PacketBody {
    /// Type 1.
    Hello(Hello),
    /// Type 2.
    DatabaseDescription(DatabaseDescription),
    /// Type 3.
    LinkStateRequest(LinkStateRequest),
    /// Type 4.
    LinkStateUpdate(LinkStateUpdate),
    /// Type 5.
    LinkStateAck(LinkStateAck),
}

impl PacketBody {
    /// The packet type's name, as operators read it.
    pub fn name(&self) -> &'static str {
        match self {
            PacketBody::Hello(_) => "Hello",
            PacketBody::DatabaseDescription(_) => "Database Description",
            PacketBody::LinkStateRequest(_) => "Link State Request",
            PacketBody::LinkStateUpdate(_) => "Link State Update",
            PacketBody::LinkStateAck(_) => "Link State Acknowledgment",
        }
    }
}

/// Hello packet (RFC 2328 A.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hello {
    /// Network mask of the sending interface.
    pub network_mask: Ipv4Addr,
    /// HelloInterval in seconds.
    pub hello_interval: u16,
    /// Options.
    pub options: Options,
    /// Rtr Pri.
    pub router_priority: u8,
    /// RouterDeadInterval in seconds.
    pub router_dead_interval: u32,
    /// Designated Router (interface address), 0.0.0.0 if none.
    pub designated_router: Ipv4Addr,
    /// Backup Designated Router (interface address), 0.0.0.0 if none.
    pub backup_designated_router: Ipv4Addr,
    /// Router IDs of neighbours heard from within RouterDeadInterval.
    pub neighbors: Vec<Ipv4Addr>,
}

bit_flags! {
    /// Database Description flags (RFC 2328 A.3.3). Unknown bits are kept.
    DdFlags {
        /// MS: the sender is the master.
        MS = 0x01;
        /// M: more Database Description packets follow.
        M = 0x02;
        /// I: the first packet of the sequence.
        I = 0x04;
        /// R: out-of-band resynchronisation (RFC 5613).
        R = 0x08;
    }
}

/// Database Description packet (RFC 2328 A.3.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DatabaseDescription {
    /// Interface MTU (0 on virtual links).
    pub interface_mtu: u16,
    /// Options.
    pub options: Options,
    /// I, M, MS bits.
    pub flags: DdFlags,
    /// DD sequence number.
    pub dd_sequence_number: u32,
    /// LSA headers describing the database.
    pub lsa_headers: Vec<LsaHeader>,
}

/// One requested LSA (RFC 2328 A.3.4). LS type is a 32-bit field here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LsRequest {
    /// LS type.
    pub ls_type: u32,
    /// Link State ID.
    pub link_state_id: Ipv4Addr,
    /// Advertising Router.
    pub advertising_router: Ipv4Addr,
}

impl LsRequest {
    /// The database key, if the LS type fits the LSA header's octet.
    pub fn key(&self) -> Option<LsaKey> {
        Some(LsaKey {
            lsa_type: LsaType(u8::try_from(self.ls_type).ok()?),
            link_state_id: self.link_state_id,
            advertising_router: self.advertising_router,
        })
    }
}

impl From<LsaKey> for LsRequest {
    fn from(k: LsaKey) -> Self {
        LsRequest {
            ls_type: k.lsa_type.0.into(),
            link_state_id: k.link_state_id,
            advertising_router: k.advertising_router,
        }
    }
}

/// Link State Request packet (RFC 2328 A.3.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct LinkStateRequest {
    /// Requested LSAs.
    pub entries: Vec<LsRequest>,
}

/// Link State Update packet (RFC 2328 A.3.5). The LSAs keep their exact
/// bytes; use [`RawLsa::decode`] for their contents.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct LinkStateUpdate {
    /// The LSAs.
    pub lsas: Vec<RawLsa>,
}

/// Link State Acknowledgment packet (RFC 2328 A.3.6).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct LinkStateAck {
    /// Headers of the acknowledged LSAs.
    pub lsa_headers: Vec<LsaHeader>,
}

impl Packet {
    /// Decodes a packet from the start of `bytes` (the IP payload). Bytes
    /// beyond the header's packet length are ignored; get the length from
    /// [`PacketHeader::decode`]. The checksum is not checked: see
    /// [`verify_checksum`]. LSAs of a Link State Update are copied out.
    pub fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        Packet::decode_with(bytes, |range| {
            Bytes::copy_from_slice(bytes.get(range).unwrap_or_default())
        })
    }

    /// Like [`Packet::decode`], but the LSAs of a Link State Update share
    /// `bytes` instead of being copied.
    pub fn decode_bytes(bytes: &Bytes) -> Result<Packet, DecodeError> {
        // `decode_with` only passes a range it has checked with `get`.
        Packet::decode_with(bytes, |range| bytes.slice(range))
    }

    fn decode_with(
        bytes: &[u8],
        share: impl FnOnce(Range<usize>) -> Bytes,
    ) -> Result<Packet, DecodeError> {
        let header = PacketHeader::decode(bytes)?;
        // Check the version first: another version's layout differs.
        if header.version != OSPF_VERSION {
            return Err(DecodeError::BadVersion(header.version));
        }
        let packet_type =
            PacketType::try_from(header.packet_type).map_err(DecodeError::UnknownType)?;
        let length = usize::from(header.length);
        if length < HEADER_LEN {
            return Err(DecodeError::LengthTooShort {
                length: header.length,
            });
        }
        let body_range = HEADER_LEN..length;
        let Some(body) = bytes.get(body_range.clone()) else {
            return Err(DecodeError::LengthExceedsBuffer {
                length: header.length,
                available: bytes.len(),
            });
        };
        let body = match packet_type {
            PacketType::Hello => PacketBody::Hello(Hello::decode(body)?),
            PacketType::DatabaseDescription => {
                PacketBody::DatabaseDescription(DatabaseDescription::decode(body)?)
            }
            PacketType::LinkStateRequest => {
                PacketBody::LinkStateRequest(LinkStateRequest::decode(body)?)
            }
            PacketType::LinkStateUpdate => {
                PacketBody::LinkStateUpdate(LinkStateUpdate::decode(share(body_range))?)
            }
            PacketType::LinkStateAck => PacketBody::LinkStateAck(LinkStateAck {
                lsa_headers: lsa_headers("link state acknowledgment", body)?,
            }),
        };
        Ok(Packet {
            router_id: header.router_id,
            area_id: header.area_id,
            autype: header.autype,
            auth_data: header.auth_data,
            body,
        })
    }

    /// Encodes the packet: version 2, the body's type, the packet length
    /// and, unless AuType is cryptographic, the standard checksum computed
    /// with the Authentication field excluded (RFC 2328 D.4.1, D.4.2). With
    /// cryptographic authentication the checksum is 0 (D.4.3) and the
    /// caller appends the digest after the returned bytes.
    pub fn encode(&self) -> Result<BytesMut, EncodeError> {
        let len = self.encoded_len();
        let length = u16::try_from(len).map_err(|_| EncodeError::TooLong {
            what: "packet",
            len,
        })?;
        let mut buf = BytesMut::with_capacity(len);
        buf.put_u8(OSPF_VERSION);
        buf.put_u8(self.body.packet_type() as u8);
        buf.put_u16(length);
        buf.put_u32(self.router_id.into());
        buf.put_u32(self.area_id.into());
        buf.put_u16(0); // checksum, filled in below
        buf.put_u16(self.autype);
        buf.put_slice(&[0; 8]); // authentication, filled in below
        self.body.encode(&mut buf)?;
        if self.autype != AUTYPE_CRYPTOGRAPHIC {
            let checksum = compute_checksum(&buf);
            if let Some(field) = buf.get_mut(CHECKSUM_FIELD) {
                field.copy_from_slice(&checksum.to_be_bytes());
            }
        }
        if let Some(field) = buf.get_mut(AUTH_FIELD) {
            field.copy_from_slice(&self.auth_data);
        }
        Ok(buf)
    }

    /// Size of the encoded packet (the packet length field).
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.encoded_len()
    }

    /// The packet type of the body.
    pub fn packet_type(&self) -> PacketType {
        self.body.packet_type()
    }

    /// The cryptographic authentication fields, if AuType is 2.
    pub fn cryptographic_auth(&self) -> Option<CryptographicAuth> {
        (self.autype == AUTYPE_CRYPTOGRAPHIC)
            .then(|| CryptographicAuth::from_auth_data(&self.auth_data))
    }

    /// Switches the packet to cryptographic authentication with these
    /// fields (RFC 2328 D.3).
    pub fn set_cryptographic_auth(&mut self, auth: CryptographicAuth) {
        self.autype = AUTYPE_CRYPTOGRAPHIC;
        self.auth_data = auth.to_auth_data();
    }
}

impl PacketBody {
    /// The packet type carrying this body.
    pub fn packet_type(&self) -> PacketType {
        match self {
            PacketBody::Hello(_) => PacketType::Hello,
            PacketBody::DatabaseDescription(_) => PacketType::DatabaseDescription,
            PacketBody::LinkStateRequest(_) => PacketType::LinkStateRequest,
            PacketBody::LinkStateUpdate(_) => PacketType::LinkStateUpdate,
            PacketBody::LinkStateAck(_) => PacketType::LinkStateAck,
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            PacketBody::Hello(h) => 20 + 4 * h.neighbors.len(),
            PacketBody::DatabaseDescription(d) => 8 + LSA_HEADER_LEN * d.lsa_headers.len(),
            PacketBody::LinkStateRequest(r) => LS_REQUEST_LEN * r.entries.len(),
            PacketBody::LinkStateUpdate(u) => {
                4 + u.lsas.iter().map(|l| l.as_bytes().len()).sum::<usize>()
            }
            PacketBody::LinkStateAck(a) => LSA_HEADER_LEN * a.lsa_headers.len(),
        }
    }

    fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            PacketBody::Hello(h) => h.encode(buf),
            PacketBody::DatabaseDescription(d) => {
                buf.put_u16(d.interface_mtu);
                buf.put_u8(d.options.0);
                buf.put_u8(d.flags.0);
                buf.put_u32(d.dd_sequence_number);
                d.lsa_headers.iter().for_each(|h| h.encode(buf));
            }
            PacketBody::LinkStateRequest(r) => {
                for e in &r.entries {
                    buf.put_u32(e.ls_type);
                    buf.put_u32(e.link_state_id.into());
                    buf.put_u32(e.advertising_router.into());
                }
            }
            PacketBody::LinkStateUpdate(u) => {
                let count =
                    count_field::<u32>("link state update LSAs", u.lsas.len(), u32::MAX as usize)?;
                buf.put_u32(count);
                u.lsas.iter().for_each(|l| buf.put_slice(l.as_bytes()));
            }
            PacketBody::LinkStateAck(a) => a.lsa_headers.iter().for_each(|h| h.encode(buf)),
        }
        Ok(())
    }
}

impl Hello {
    fn decode(body: &[u8]) -> Result<Hello, DecodeError> {
        let (rest, mut hello) = fixed("hello", 20, body, |i| {
            let (i, network_mask) = ipv4(i)?;
            let (i, hello_interval) = be_u16(i)?;
            let (i, options) = be_u8(i)?;
            let (i, router_priority) = be_u8(i)?;
            let (i, router_dead_interval) = be_u32(i)?;
            let (i, designated_router) = ipv4(i)?;
            let (i, backup_designated_router) = ipv4(i)?;
            Ok((
                i,
                Hello {
                    network_mask,
                    hello_interval,
                    options: Options(options),
                    router_priority,
                    router_dead_interval,
                    designated_router,
                    backup_designated_router,
                    neighbors: Vec::new(),
                },
            ))
        })?;
        no_partial_entry("hello neighbors", rest, 4)?;
        hello.neighbors = rest
            .chunks_exact(4)
            .filter_map(|c| <[u8; 4]>::try_from(c).ok())
            .map(Ipv4Addr::from)
            .collect();
        Ok(hello)
    }

    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.network_mask.into());
        buf.put_u16(self.hello_interval);
        buf.put_u8(self.options.0);
        buf.put_u8(self.router_priority);
        buf.put_u32(self.router_dead_interval);
        buf.put_u32(self.designated_router.into());
        buf.put_u32(self.backup_designated_router.into());
        for n in &self.neighbors {
            buf.put_u32((*n).into());
        }
    }
}

impl DatabaseDescription {
    fn decode(body: &[u8]) -> Result<DatabaseDescription, DecodeError> {
        let (rest, (interface_mtu, options, flags, dd_sequence_number)) =
            fixed("database description", 8, body, |i| {
                let (i, mtu) = be_u16(i)?;
                let (i, options) = be_u8(i)?;
                let (i, flags) = be_u8(i)?;
                let (i, seq) = be_u32(i)?;
                Ok((i, (mtu, options, flags, seq)))
            })?;
        Ok(DatabaseDescription {
            interface_mtu,
            options: Options(options),
            flags: DdFlags(flags),
            dd_sequence_number,
            lsa_headers: lsa_headers("database description", rest)?,
        })
    }
}

impl LinkStateRequest {
    fn decode(body: &[u8]) -> Result<LinkStateRequest, DecodeError> {
        no_partial_entry("link state request", body, LS_REQUEST_LEN)?;
        let entries = body
            .chunks_exact(LS_REQUEST_LEN)
            .map(|entry| {
                fixed("link state request entry", LS_REQUEST_LEN, entry, |i| {
                    let (i, ls_type) = be_u32(i)?;
                    let (i, link_state_id) = ipv4(i)?;
                    let (i, advertising_router) = ipv4(i)?;
                    Ok((
                        i,
                        LsRequest {
                            ls_type,
                            link_state_id,
                            advertising_router,
                        },
                    ))
                })
                .map(|(_, e)| e)
            })
            .collect::<Result<_, _>>()?;
        Ok(LinkStateRequest { entries })
    }
}

impl LinkStateUpdate {
    fn decode(mut body: Bytes) -> Result<LinkStateUpdate, DecodeError> {
        let (_, claimed) = fixed("link state update", 4, &body, be_u32)?;
        let _ = body.split_to(4);
        // Each LSA takes at least a header, so a lying "# LSAs" cannot make
        // us reserve more than the packet could hold, and the loop below
        // ends after at most body.len() / 20 iterations.
        let mut lsas = Vec::with_capacity(body.len() / LSA_HEADER_LEN);
        for index in 0..claimed as usize {
            if body.is_empty() {
                return Err(DecodeError::LsaCountMismatch {
                    claimed,
                    found: index,
                });
            }
            let lsa = RawLsa::split_from(&mut body)
                .map_err(|source| DecodeError::Lsa { index, source })?;
            lsas.push(lsa);
        }
        if !body.is_empty() {
            return Err(DecodeError::TrailingBytes {
                what: "link state update",
                extra: body.len(),
            });
        }
        Ok(LinkStateUpdate { lsas })
    }
}

/// A list of 20-byte LSA headers filling `rest` exactly (RFC 2328 A.3.3,
/// A.3.6).
fn lsa_headers(what: &'static str, rest: &[u8]) -> Result<Vec<LsaHeader>, DecodeError> {
    no_partial_entry(what, rest, LSA_HEADER_LEN)?;
    rest.chunks_exact(LSA_HEADER_LEN)
        .map(|h| {
            LsaHeader::decode(h).map_err(|_| DecodeError::Truncated {
                what,
                need: LSA_HEADER_LEN,
                have: h.len(),
            })
        })
        .collect()
}

/// Computes the standard OSPF checksum of an encoded packet (RFC 2328
/// D.4.1): the 16-bit one's complement of the one's complement sum of the
/// packet, with the Checksum and 64-bit Authentication fields counted as
/// zero. `packet` must be exactly the packet (no authentication trailer).
pub fn compute_checksum(packet: &[u8]) -> u16 {
    // Every piece starts at an even offset, so 16-bit words stay aligned.
    let sum = ones_complement_sum(packet.get(..CHECKSUM_FIELD.start).unwrap_or(packet))
        + ones_complement_sum(
            packet
                .get(CHECKSUM_FIELD.end..AUTH_FIELD.start)
                .unwrap_or_default(),
        )
        + ones_complement_sum(packet.get(AUTH_FIELD.end..).unwrap_or_default());
    !fold(sum)
}

/// Verifies the standard checksum of a received packet (RFC 2328 D.4.1,
/// D.4.2) over the header's packet length, excluding the Authentication
/// field. Returns true under cryptographic authentication, where the
/// checksum is not used (D.4.3), and false if the header is truncated or
/// its length field does not fit `bytes`.
pub fn verify_checksum(bytes: &[u8]) -> bool {
    let Ok(header) = PacketHeader::decode(bytes) else {
        return false;
    };
    let length = usize::from(header.length);
    let Some(packet) = bytes.get(..length).filter(|_| length >= HEADER_LEN) else {
        return false;
    };
    if header.autype == AUTYPE_CRYPTOGRAPHIC {
        return true;
    }
    checksum_ok(packet)
}

/// Whether the standard checksum of `packet` (exactly the packet, checksum
/// in place) is right: summing with it gives 0xffff (RFC 2328 D.4.1).
pub(crate) fn checksum_ok(packet: &[u8]) -> bool {
    let sum = ones_complement_sum(packet.get(..AUTH_FIELD.start).unwrap_or_default())
        + ones_complement_sum(packet.get(AUTH_FIELD.end..).unwrap_or_default());
    fold(sum) == 0xffff
}

/// Sum of big-endian 16-bit words, an odd last byte padded with zero
/// (RFC 1071). Deferred carries: u64 cannot overflow for any slice.
pub(crate) fn ones_complement_sum(data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    let mut sum: u64 = (&mut words)
        .map(|w| match *w {
            [hi, lo] => u64::from(u16::from_be_bytes([hi, lo])),
            _ => 0,
        })
        .sum();
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds the carries back into 16 bits (end-around carry).
pub(crate) fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

use crate::lsa::ipv4;

/// Runs a nom parser for a fixed-size structure after checking its size, so
/// that a short input becomes a precise [`DecodeError::Truncated`].
fn fixed<'a, T>(
    what: &'static str,
    need: usize,
    input: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> IResult<&'a [u8], T>,
) -> Result<(&'a [u8], T), DecodeError> {
    let truncated = DecodeError::Truncated {
        what,
        need,
        have: input.len(),
    };
    if input.len() < need {
        return Err(truncated);
    }
    parser(input).map_err(|_| truncated)
}

/// Fails unless `rest` is a whole number of `unit`-byte entries.
fn no_partial_entry(what: &'static str, rest: &[u8], unit: usize) -> Result<(), DecodeError> {
    match rest.len() % unit {
        0 => Ok(()),
        extra => Err(DecodeError::TrailingBytes { what, extra }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsa::tests::{arb_header, arb_ipv4, arb_lsa};
    use crate::lsa::{Lsa, LsaBody, RouterFlags, RouterLink, RouterLinkType, RouterLsa};
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    // Golden packets, hand-assembled from RFC 2328 A.3. The checksums were
    // computed independently with a Python transcription of RFC 1071 /
    // D.4.1, and the packets cross-checked by dissecting them with tcpdump.

    /// The router-LSA golden vector of lsa.rs (one transit link, one stub
    /// /32 link 192.0.2.10/255.255.255.255 metric 0).
    const ROUTER_LSA: [u8; 48] = [
        0x00, 0x01, 0x02, 0x01, 192, 0, 2, 1, 192, 0, 2, 1, 0x80, 0x00, 0x00, 0x01, 0x51, 0x7b,
        0x00, 48, 0x02, 0x00, 0x00, 0x02, 10, 0, 0, 1, 10, 0, 0, 2, 0x02, 0x00, 0x00, 10, 192, 0,
        2, 10, 255, 255, 255, 255, 0x03, 0x00, 0x00, 0x00,
    ];

    const HELLO: [u8; 52] = [
        0x02, 0x01, 0x00, 52, // version 2, Hello, length
        192, 0, 2, 1, // Router ID
        0, 0, 0, 0, // Area ID (backbone)
        0xa2, 0x8b, // checksum
        0x00, 0x00, // AuType null
        0, 0, 0, 0, 0, 0, 0, 0, // authentication
        255, 255, 255, 0, // Network Mask
        0x00, 10,   // HelloInterval
        0x02, // options: E
        0x01, // Rtr Pri
        0x00, 0x00, 0x00, 40, // RouterDeadInterval
        10, 0, 0, 1, // Designated Router
        10, 0, 0, 2, // Backup Designated Router
        192, 0, 2, 2, // Neighbor
        192, 0, 2, 3, // Neighbor
    ];

    fn hello_packet() -> Packet {
        Packet {
            router_id: ip("192.0.2.1"),
            area_id: ip("0.0.0.0"),
            autype: AUTYPE_NULL,
            auth_data: [0; 8],
            body: PacketBody::Hello(Hello {
                network_mask: ip("255.255.255.0"),
                hello_interval: 10,
                options: Options::E,
                router_priority: 1,
                router_dead_interval: 40,
                designated_router: ip("10.0.0.1"),
                backup_designated_router: ip("10.0.0.2"),
                neighbors: vec![ip("192.0.2.2"), ip("192.0.2.3")],
            }),
        }
    }

    fn golden_lsa_header() -> LsaHeader {
        LsaHeader::decode(&ROUTER_LSA).unwrap()
    }

    fn area1(body: PacketBody) -> Packet {
        Packet {
            router_id: ip("192.0.2.1"),
            area_id: ip("0.0.0.1"),
            autype: AUTYPE_NULL,
            auth_data: [0; 8],
            body,
        }
    }

    const DD: [u8; 52] = [
        0x02, 0x02, 0x00, 52, // version 2, Database Description, length
        192, 0, 2, 1, // Router ID
        0, 0, 0, 1, // Area ID
        0x33, 0x85, // checksum
        0x00, 0x00, // AuType
        0, 0, 0, 0, 0, 0, 0, 0, // authentication
        0x05, 0xdc, // Interface MTU 1500
        0x42, // options: O, E
        0x07, // flags: I, M, MS
        0x12, 0x34, 0x56, 0x78, // DD sequence number
        // one LSA header: the router-LSA's first 20 bytes
        0x00, 0x01, 0x02, 0x01, 192, 0, 2, 1, 192, 0, 2, 1, 0x80, 0x00, 0x00, 0x01, 0x51, 0x7b,
        0x00, 48,
    ];

    fn dd_packet() -> Packet {
        area1(PacketBody::DatabaseDescription(DatabaseDescription {
            interface_mtu: 1500,
            options: Options::E | Options::O,
            flags: DdFlags::I | DdFlags::M | DdFlags::MS,
            dd_sequence_number: 0x1234_5678,
            lsa_headers: vec![golden_lsa_header()],
        }))
    }

    const LSR: [u8; 36] = [
        0x02, 0x03, 0x00, 36, 192, 0, 2, 1, 0, 0, 0, 1, 0xb7, 0xd1, 0x00, 0x00, 0, 0, 0, 0, 0, 0,
        0, 0, // header
        0x00, 0x00, 0x00, 0x01, // LS type (32 bits)
        192, 0, 2, 1, // Link State ID
        192, 0, 2, 1, // Advertising Router
    ];

    fn lsr_packet() -> Packet {
        area1(PacketBody::LinkStateRequest(LinkStateRequest {
            entries: vec![LsRequest {
                ls_type: 1,
                link_state_id: ip("192.0.2.1"),
                advertising_router: ip("192.0.2.1"),
            }],
        }))
    }

    fn lsu_bytes() -> Vec<u8> {
        let header = [
            0x02, 0x04, 0x00, 76, 192, 0, 2, 1, 0, 0, 0, 1, 0x06, 0xe0, 0x00, 0x00, 0, 0, 0, 0, 0,
            0, 0, 0,
        ];
        [&header[..], &[0, 0, 0, 1], &ROUTER_LSA[..]].concat()
    }

    fn lsu_packet() -> Packet {
        area1(PacketBody::LinkStateUpdate(LinkStateUpdate {
            lsas: vec![RawLsa::from_bytes(Bytes::from_static(&ROUTER_LSA)).unwrap()],
        }))
    }

    fn ack_bytes() -> Vec<u8> {
        let header = [
            0x02, 0x05, 0x00, 44, 192, 0, 2, 1, 0, 0, 0, 1, 0xe4, 0x19, 0x00, 0x00, 0, 0, 0, 0, 0,
            0, 0, 0,
        ];
        [&header[..], &ROUTER_LSA[..20]].concat()
    }

    fn ack_packet() -> Packet {
        area1(PacketBody::LinkStateAck(LinkStateAck {
            lsa_headers: vec![golden_lsa_header()],
        }))
    }

    fn check_golden(packet: &Packet, bytes: &[u8]) {
        assert_eq!(&packet.encode().unwrap()[..], bytes);
        assert!(verify_checksum(bytes));
        assert_eq!(&Packet::decode(bytes).unwrap(), packet);
        assert_eq!(
            &Packet::decode_bytes(&Bytes::copy_from_slice(bytes)).unwrap(),
            packet
        );
    }

    #[test]
    fn golden_hello_with_two_neighbors() {
        check_golden(&hello_packet(), &HELLO);
    }

    #[test]
    fn golden_database_description_with_i_m_ms() {
        check_golden(&dd_packet(), &DD);
        let Packet {
            body: PacketBody::DatabaseDescription(dd),
            ..
        } = Packet::decode(&DD).unwrap()
        else {
            panic!("not a DD packet")
        };
        assert!(dd.flags.contains(DdFlags::I | DdFlags::M | DdFlags::MS));
        assert!(!dd.flags.contains(DdFlags::R));
    }

    #[test]
    fn golden_link_state_request() {
        check_golden(&lsr_packet(), &LSR);
    }

    #[test]
    fn golden_link_state_update_with_router_lsa() {
        check_golden(&lsu_packet(), &lsu_bytes());
        let Packet {
            body: PacketBody::LinkStateUpdate(lsu),
            ..
        } = Packet::decode(&lsu_bytes()).unwrap()
        else {
            panic!("not an LSU")
        };
        let raw = &lsu.lsas[0];
        assert_eq!(&raw.as_bytes()[..], &ROUTER_LSA[..]);
        assert!(raw.verify_checksum());
        let lsa = raw.decode().unwrap();
        assert_eq!(
            lsa.body,
            LsaBody::Router(RouterLsa {
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
            })
        );
    }

    #[test]
    fn golden_link_state_ack() {
        check_golden(&ack_packet(), &ack_bytes());
    }

    #[test]
    fn checksum_detects_corruption_but_ignores_auth_field() {
        let mut bytes = HELLO;
        assert_eq!(compute_checksum(&bytes), 0xa28b);
        // The Authentication field is excluded (D.4.1, D.4.2).
        bytes[16..24].copy_from_slice(b"secret\0\0");
        assert!(verify_checksum(&bytes));
        for i in (0..bytes.len()).filter(|i| !AUTH_FIELD.contains(i)) {
            let mut bad = bytes;
            bad[i] ^= 0x01;
            assert!(!verify_checksum(&bad), "corruption at byte {i}");
        }
        assert!(!verify_checksum(&bytes[..30]));
        assert!(!verify_checksum(&[]));
    }

    #[test]
    fn simple_password_packet_is_checksummed_without_the_password() {
        let mut p = hello_packet();
        p.autype = AUTYPE_SIMPLE_PASSWORD;
        p.auth_data = *b"secret\0\0";
        let bytes = p.encode().unwrap();
        assert_eq!(&bytes[14..24], b"\x00\x01secret\0\0");
        assert!(verify_checksum(&bytes));
        // The same checksum as with AuType 0, corrected for the AuType word.
        let mut null = hello_packet().encode().unwrap();
        null[15] = 1;
        assert_eq!(compute_checksum(&null), compute_checksum(&bytes));
        assert_eq!(Packet::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn cryptographic_auth_fields_round_trip_and_trailer_is_ignored() {
        let mut p = hello_packet();
        let auth = CryptographicAuth {
            key_id: 1,
            auth_data_len: 16,
            sequence_number: 42,
        };
        p.set_cryptographic_auth(auth);
        let mut bytes = p.encode().unwrap();
        assert_eq!(&bytes[12..14], &[0, 0], "checksum not computed (D.4.3)");
        assert_eq!(&bytes[14..24], &[0, 2, 0, 0, 1, 16, 0, 0, 0, 42]);
        let length = bytes.len();
        bytes.extend_from_slice(&[0xaa; 16]); // the digest, appended by auth
        let header = PacketHeader::decode(&bytes).unwrap();
        assert_eq!(usize::from(header.length), length);
        assert_eq!(header.checksum, 0);
        assert!(verify_checksum(&bytes));
        let decoded = Packet::decode(&bytes).unwrap();
        assert_eq!(decoded, p);
        assert_eq!(decoded.cryptographic_auth(), Some(auth));
        assert_eq!(hello_packet().cryptographic_auth(), None);
    }

    #[test]
    fn decode_errors_are_typed() {
        let with = |i: usize, v: u8| {
            let mut b = HELLO.to_vec();
            b[i] = v;
            b
        };
        assert_eq!(
            Packet::decode(&HELLO[..23]),
            Err(DecodeError::Truncated {
                what: "OSPF header",
                need: 24,
                have: 23
            })
        );
        assert_eq!(Packet::decode(&with(0, 3)), Err(DecodeError::BadVersion(3)));
        assert_eq!(
            Packet::decode(&with(1, 0)),
            Err(DecodeError::UnknownType(0))
        );
        assert_eq!(
            Packet::decode(&with(1, 6)),
            Err(DecodeError::UnknownType(6))
        );
        assert_eq!(
            Packet::decode(&with(3, 20)),
            Err(DecodeError::LengthTooShort { length: 20 })
        );
        assert_eq!(
            Packet::decode(&with(3, 56)),
            Err(DecodeError::LengthExceedsBuffer {
                length: 56,
                available: 52
            })
        );
        // Length cuts the Hello's fixed part short.
        assert_eq!(
            Packet::decode(&with(3, 40)),
            Err(DecodeError::Truncated {
                what: "hello",
                need: 20,
                have: 16
            })
        );
        // Length cuts a neighbour in half.
        assert_eq!(
            Packet::decode(&with(3, 50)),
            Err(DecodeError::TrailingBytes {
                what: "hello neighbors",
                extra: 2
            })
        );
        let mut dd = DD;
        dd[3] = 50;
        assert_eq!(
            Packet::decode(&dd),
            Err(DecodeError::TrailingBytes {
                what: "database description",
                extra: 18
            })
        );
        let mut lsr = LSR;
        lsr[3] = 30;
        assert_eq!(
            Packet::decode(&lsr),
            Err(DecodeError::TrailingBytes {
                what: "link state request",
                extra: 6
            })
        );
        let mut ack = ack_bytes();
        ack[3] = 34;
        assert_eq!(
            Packet::decode(&ack),
            Err(DecodeError::TrailingBytes {
                what: "link state acknowledgment",
                extra: 10
            })
        );
    }

    #[test]
    fn link_state_update_framing_errors() {
        // "# LSAs" says 2, one is present.
        let mut two = lsu_bytes();
        two[27] = 2;
        assert_eq!(
            Packet::decode(&two),
            Err(DecodeError::LsaCountMismatch {
                claimed: 2,
                found: 1
            })
        );
        // "# LSAs" says 0, one is present.
        let mut zero = lsu_bytes();
        zero[27] = 0;
        assert_eq!(
            Packet::decode(&zero),
            Err(DecodeError::TrailingBytes {
                what: "link state update",
                extra: 48
            })
        );
        // A huge count with nothing behind it.
        let mut huge = lsu_bytes();
        huge[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
        huge.truncate(28);
        huge[3] = 28;
        assert_eq!(
            Packet::decode(&huge),
            Err(DecodeError::LsaCountMismatch {
                claimed: u32::MAX,
                found: 0
            })
        );
        // The LSA's length field is zero, or longer than the packet.
        for (len, err) in [
            (0u8, LsaError::LengthTooShort { length: 0 }),
            (
                60,
                LsaError::Truncated {
                    what: "LSA",
                    need: 60,
                    have: 48,
                },
            ),
        ] {
            let mut bad = lsu_bytes();
            bad[28 + 19] = len;
            assert_eq!(
                Packet::decode(&bad),
                Err(DecodeError::Lsa {
                    index: 0,
                    source: err
                })
            );
        }
        // The update has no room for "# LSAs".
        let mut empty = lsu_bytes();
        empty.truncate(26);
        empty[3] = 26;
        assert_eq!(
            Packet::decode(&empty),
            Err(DecodeError::Truncated {
                what: "link state update",
                need: 4,
                have: 2
            })
        );
    }

    #[test]
    fn encode_rejects_oversized_packets() {
        let mut p = hello_packet();
        if let PacketBody::Hello(h) = &mut p.body {
            h.neighbors = vec![ip("192.0.2.9"); 16_380];
        }
        assert_eq!(
            p.encode(),
            Err(EncodeError::TooLong {
                what: "packet",
                len: 24 + 20 + 4 * 16_380
            })
        );
    }

    #[test]
    fn ls_request_key_conversion() {
        let key = golden_lsa_header().key();
        let req = LsRequest::from(key);
        assert_eq!(req.ls_type, 1);
        assert_eq!(req.key(), Some(key));
        let big = LsRequest {
            ls_type: 256,
            ..req
        };
        assert_eq!(big.key(), None);
    }

    // ---- property tests ----------------------------------------------------

    fn arb_auth() -> impl Strategy<Value = (u16, [u8; 8])> {
        (
            prop_oneof![Just(0u16), Just(1), Just(2), any::<u16>()],
            any::<[u8; 8]>(),
        )
    }

    fn arb_packet(body: impl Strategy<Value = PacketBody>) -> impl Strategy<Value = Packet> {
        (arb_ipv4(), arb_ipv4(), arb_auth(), body).prop_map(
            |(router_id, area_id, (autype, auth_data), body)| Packet {
                router_id,
                area_id,
                autype,
                auth_data,
                body,
            },
        )
    }

    fn arb_hello() -> impl Strategy<Value = PacketBody> {
        (
            arb_ipv4(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            arb_ipv4(),
            arb_ipv4(),
            prop::collection::vec(arb_ipv4(), 0..8),
        )
            .prop_map(|(mask, hi, opt, pri, dead, dr, bdr, neighbors)| {
                PacketBody::Hello(Hello {
                    network_mask: mask,
                    hello_interval: hi,
                    options: Options(opt),
                    router_priority: pri,
                    router_dead_interval: dead,
                    designated_router: dr,
                    backup_designated_router: bdr,
                    neighbors,
                })
            })
    }

    fn arb_dd() -> impl Strategy<Value = PacketBody> {
        (
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            prop::collection::vec(arb_header(), 0..6),
        )
            .prop_map(|(mtu, opt, flags, seq, lsa_headers)| {
                PacketBody::DatabaseDescription(DatabaseDescription {
                    interface_mtu: mtu,
                    options: Options(opt),
                    flags: DdFlags(flags),
                    dd_sequence_number: seq,
                    lsa_headers,
                })
            })
    }

    fn arb_lsr() -> impl Strategy<Value = PacketBody> {
        prop::collection::vec((any::<u32>(), arb_ipv4(), arb_ipv4()), 0..6).prop_map(|v| {
            PacketBody::LinkStateRequest(LinkStateRequest {
                entries: v
                    .into_iter()
                    .map(|(ls_type, link_state_id, advertising_router)| LsRequest {
                        ls_type,
                        link_state_id,
                        advertising_router,
                    })
                    .collect(),
            })
        })
    }

    /// Raw LSAs: well-formed encodings, and arbitrary header + body bytes
    /// (bad checksums, undecodable bodies) which an LSU must still carry.
    fn arb_raw_lsa() -> impl Strategy<Value = RawLsa> {
        prop_oneof![
            arb_lsa().prop_map(|l| l.to_raw().unwrap()),
            (arb_header(), prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(h, body)| {
                let mut buf = BytesMut::new();
                LsaHeader {
                    length: (LSA_HEADER_LEN + body.len()) as u16,
                    ..h
                }
                .encode(&mut buf);
                buf.extend_from_slice(&body);
                RawLsa::from_bytes(buf.freeze()).unwrap()
            }),
        ]
    }

    fn arb_lsu() -> impl Strategy<Value = PacketBody> {
        prop::collection::vec(arb_raw_lsa(), 0..5)
            .prop_map(|lsas| PacketBody::LinkStateUpdate(LinkStateUpdate { lsas }))
    }

    fn arb_ack() -> impl Strategy<Value = PacketBody> {
        prop::collection::vec(arb_header(), 0..6)
            .prop_map(|lsa_headers| PacketBody::LinkStateAck(LinkStateAck { lsa_headers }))
    }

    fn arb_any_packet() -> impl Strategy<Value = Packet> {
        arb_packet(prop_oneof![
            arb_hello(),
            arb_dd(),
            arb_lsr(),
            arb_lsu(),
            arb_ack()
        ])
    }

    /// encode -> decode == value, re-encode == same bytes, the checksum
    /// verifies (or is 0 under cryptographic authentication).
    fn check_round_trip(p: Packet) -> Result<(), TestCaseError> {
        let bytes = p.encode().unwrap();
        prop_assert_eq!(bytes.len(), p.encoded_len());
        let header = PacketHeader::decode(&bytes).unwrap();
        prop_assert_eq!(usize::from(header.length), bytes.len());
        prop_assert_eq!(header.packet_type, p.packet_type() as u8);
        prop_assert!(verify_checksum(&bytes));
        if p.autype == AUTYPE_CRYPTOGRAPHIC {
            prop_assert_eq!(header.checksum, 0);
        } else {
            prop_assert_eq!(header.checksum, compute_checksum(&bytes));
        }
        let decoded = Packet::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &p);
        prop_assert_eq!(decoded.encode().unwrap(), bytes.clone());
        prop_assert_eq!(&Packet::decode_bytes(&bytes.freeze()).unwrap(), &p);
        Ok(())
    }

    proptest! {
        #[test]
        fn round_trip_hello(p in arb_packet(arb_hello())) {
            check_round_trip(p)?;
        }

        #[test]
        fn round_trip_database_description(p in arb_packet(arb_dd())) {
            check_round_trip(p)?;
        }

        #[test]
        fn round_trip_link_state_request(p in arb_packet(arb_lsr())) {
            check_round_trip(p)?;
        }

        #[test]
        fn round_trip_link_state_update(p in arb_packet(arb_lsu())) {
            check_round_trip(p)?;
        }

        #[test]
        fn round_trip_link_state_ack(p in arb_packet(arb_ack())) {
            check_round_trip(p)?;
        }

        /// LSAs carried in an update come back byte-for-byte and decode to
        /// the value that was sent.
        #[test]
        fn update_carries_lsas_unchanged(lsas in prop::collection::vec(arb_lsa(), 0..5)) {
            let raws: Vec<RawLsa> = lsas.iter().map(|l| l.to_raw().unwrap()).collect();
            let p = area1(PacketBody::LinkStateUpdate(LinkStateUpdate { lsas: raws.clone() }));
            let bytes = p.encode().unwrap();
            let PacketBody::LinkStateUpdate(lsu) = Packet::decode(&bytes).unwrap().body else {
                return Err(TestCaseError::fail("not an LSU"));
            };
            prop_assert_eq!(lsu.lsas.len(), lsas.len());
            for ((got, sent), lsa) in lsu.lsas.iter().zip(&raws).zip(&lsas) {
                prop_assert_eq!(got.as_bytes(), sent.as_bytes());
                prop_assert!(got.verify_checksum());
                let decoded: Lsa = got.decode().unwrap();
                prop_assert_eq!(&decoded.body, &lsa.body);
            }
        }

        #[test]
        fn cryptographic_auth_round_trip(key_id: u8, auth_data_len: u8, sequence_number: u32) {
            let auth = CryptographicAuth { key_id, auth_data_len, sequence_number };
            prop_assert_eq!(CryptographicAuth::from_auth_data(&auth.to_auth_data()), auth);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Packet::decode(&data);
            let _ = PacketHeader::decode(&data);
            let _ = verify_checksum(&data);
            let _ = compute_checksum(&data);
            // Give the body decoders a chance: a plausible header in front.
            let mut framed = HELLO[..24].to_vec();
            framed.extend_from_slice(&data);
            let len = framed.len().min(usize::from(u16::MAX)) as u16;
            framed[2..4].copy_from_slice(&len.to_be_bytes());
            for t in 0..=6u8 {
                framed[1] = t;
                let _ = Packet::decode(&framed);
                let _ = Packet::decode_bytes(&Bytes::copy_from_slice(&framed));
            }
        }

        /// Random edits and truncation of valid packets. Whatever still
        /// decodes must encode to bytes that decode to the same packet.
        #[test]
        fn mutated_packets_never_panic(
            p in arb_any_packet(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = p.encode().unwrap().to_vec();
            for (at, v) in edits {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            for candidate in [&bytes[..], &bytes[..cut.index(bytes.len() + 1)]] {
                let _ = verify_checksum(candidate);
                if let Ok(decoded) = Packet::decode(candidate) {
                    let again = decoded.encode().unwrap();
                    prop_assert_eq!(Packet::decode(&again).unwrap(), decoded);
                }
            }
        }
    }
}
