//! The VRRP advertisement on the wire: version 3 (RFC 5798 5.1, IPv4) and
//! version 2 (RFC 3768 5.1, with its simple-password authentication).
//!
//! ```text
//!  v3: |Ver|Typ| VRID | Prio | Count | rsvd(4) MaxAdverInt(12) | Checksum | IPv4 addresses
//!  v2: |Ver|Typ| VRID | Prio | Count | AuthType | AdverInt(s) | Checksum | IPv4 addresses | Auth data (8)
//! ```
//!
//! The codec needs nothing but std and thiserror, so the fuzz crate
//! compiles it in by path.

use std::net::Ipv4Addr;

/// IP protocol number of VRRP (RFC 5798 5.2.4).
pub const IPPROTO_VRRP: u8 = 112;
/// The multicast group adverts go to (RFC 5798 5.2.2).
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Adverts are sent with, and accepted only with, this TTL (RFC 5798 5.2.3).
pub const VRRP_TTL: u8 = 255;
/// The largest v3 Max Adver Int: 12 bits of centiseconds.
pub const MAX_ADVER_INT_CS: u16 = 0x0fff;
/// Length of the fixed header.
const HEADER: usize = 8;
/// v2 authentication data (RFC 3768 5.3.10, 5.3.11).
const AUTH_DATA: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768.
    V2,
    /// RFC 5798.
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// RFC 3768 5.3.6 authentication. Type 2 (IP Authentication Header) was
/// removed from the RFC and is refused when decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    None,
    /// Type 1: a password of up to 8 bytes, zero-padded.
    Simple([u8; AUTH_DATA]),
}

impl Auth {
    /// A simple password as keepalived's `auth_pass` takes it: the first 8
    /// bytes count, zero-padded. `None` when longer than 8 bytes.
    pub fn simple(password: &str) -> Option<Auth> {
        let b = password.as_bytes();
        if b.len() > AUTH_DATA {
            return None;
        }
        let mut data = [0u8; AUTH_DATA];
        data[..b.len()].copy_from_slice(b);
        Some(Auth::Simple(data))
    }

    fn type_number(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Simple(_) => 1,
        }
    }
}

/// One advertisement. The interval is in centiseconds for both versions
/// (v2 carries whole seconds: a multiple of 100 here).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advertisement {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    pub max_adver_int_cs: u16,
    pub addresses: Vec<Ipv4Addr>,
    /// Always [`Auth::None`] in v3.
    pub auth: Auth,
}

/// Why received bytes are not an advertisement. Each has a short label for
/// the drop counters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes: shorter than a VRRP header")]
    Short(usize),
    #[error("version {0}, expected 2 or 3")]
    Version(u8),
    #[error("type {0}, expected 1 (advertisement)")]
    Type(u8),
    #[error("{count} addresses do not fit {len} bytes")]
    Length { count: u8, len: usize },
    #[error("authentication type {0} not supported")]
    AuthType(u8),
    #[error("v3 with reserved bits set")]
    Reserved,
}

impl DecodeError {
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Short(_) => "short",
            DecodeError::Version(_) => "version",
            DecodeError::Type(_) => "type",
            DecodeError::Length { .. } => "length",
            DecodeError::AuthType(_) => "auth_type",
            DecodeError::Reserved => "reserved",
        }
    }
}

/// How a v3 checksum is verified. RFC 5798 5.2.8 covers an IPv4
/// pseudo-header with the packet's addresses; some peers get it wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// The RFC: pseudo-header of the packet's own addresses.
    #[default]
    Rfc,
    /// Also accept a v3 checksum over the message alone (older vendor
    /// implementations), and a unicast advert checksummed as if sent to
    /// 224.0.0.18 (keepalived before 1.3.6, or with `old_unicast_checksum`).
    Lenient,
}

/// The Internet checksum (RFC 1071) of `chunks` as one byte string.
fn internet_checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for chunk in chunks {
        for &b in *chunk {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = IPPROTO_VRRP;
    // A VRRP message is far below 64 KiB (255 addresses at most).
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    p[10..12].copy_from_slice(&len.to_be_bytes());
    p
}

/// Whether the checksum of a received message holds: v2 over the message
/// (RFC 3768 5.3.8), v3 with the pseudo-header of `src` and `dst` (RFC 5798
/// 5.2.8), or without it if `mode` allows.
pub fn checksum_ok(
    bytes: &[u8],
    version: Version,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    mode: ChecksumMode,
) -> bool {
    let plain = internet_checksum(&[bytes]) == 0;
    match version {
        Version::V2 => plain,
        Version::V3 => {
            let with =
                |dst| internet_checksum(&[&pseudo_header(src, dst, bytes.len()), bytes]) == 0;
            with(dst) || (mode == ChecksumMode::Lenient && (plain || with(VRRP_GROUP)))
        }
    }
}

impl Advertisement {
    /// Parses the VRRP message (after the IP header). Checks structure
    /// only: the checksum is [`checksum_ok`], the rest the instance's.
    /// Bytes after the advertised addresses (and v2 auth data) are ignored,
    /// as link padding may put them there.
    pub fn decode(bytes: &[u8]) -> Result<Advertisement, DecodeError> {
        let Some(h) = bytes.get(..HEADER) else {
            return Err(DecodeError::Short(bytes.len()));
        };
        let version = match h[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(DecodeError::Version(v)),
        };
        if h[0] & 0x0f != 1 {
            return Err(DecodeError::Type(h[0] & 0x0f));
        }
        let (vrid, priority, count) = (h[1], h[2], h[3]);
        let (max_adver_int_cs, auth_type) = match version {
            Version::V3 => {
                if h[4] & 0xf0 != 0 {
                    return Err(DecodeError::Reserved);
                }
                (u16::from_be_bytes([h[4] & 0x0f, h[5]]), 0)
            }
            Version::V2 => (u16::from(h[5]) * 100, h[4]),
        };
        let addrs_len = usize::from(count) * 4;
        let need = HEADER + addrs_len + if version == Version::V2 { AUTH_DATA } else { 0 };
        let Some(body) = bytes.get(HEADER..need) else {
            return Err(DecodeError::Length {
                count,
                len: bytes.len(),
            });
        };
        let (addr_bytes, auth_bytes) = body.split_at(addrs_len);
        let addresses = addr_bytes
            .chunks_exact(4)
            .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            .collect();
        let auth = match (version, auth_type) {
            (Version::V3, _) | (Version::V2, 0) => Auth::None,
            (Version::V2, 1) => {
                let mut data = [0u8; AUTH_DATA];
                data.copy_from_slice(auth_bytes);
                Auth::Simple(data)
            }
            (Version::V2, t) => return Err(DecodeError::AuthType(t)),
        };
        Ok(Advertisement {
            version,
            vrid,
            priority,
            max_adver_int_cs,
            addresses,
            auth,
        })
    }

    /// The message as sent from `src` to `dst` (which the v3 checksum
    /// covers). v3 carries no authentication; v2 carries whole seconds
    /// (at least 1) and at most 255 addresses go out.
    pub fn encode(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let count = self.addresses.len().min(255);
        let mut b = Vec::with_capacity(HEADER + count * 4 + AUTH_DATA);
        b.push((self.version.number() << 4) | 1);
        b.push(self.vrid);
        b.push(self.priority);
        b.push(count as u8);
        match self.version {
            Version::V3 => {
                let int = self.max_adver_int_cs.min(MAX_ADVER_INT_CS);
                b.extend_from_slice(&int.to_be_bytes());
            }
            Version::V2 => {
                b.push(self.auth.type_number());
                let secs = (self.max_adver_int_cs / 100).clamp(1, 255);
                b.push(secs as u8);
            }
        }
        b.extend_from_slice(&[0, 0]);
        for a in self.addresses.iter().take(count) {
            b.extend_from_slice(&a.octets());
        }
        if self.version == Version::V2 {
            match self.auth {
                Auth::None => b.extend_from_slice(&[0; AUTH_DATA]),
                Auth::Simple(data) => b.extend_from_slice(&data),
            }
        }
        let sum = match self.version {
            Version::V2 => internet_checksum(&[&b]),
            Version::V3 => internet_checksum(&[&pseudo_header(src, dst, b.len()), &b]),
        };
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn v3() -> Advertisement {
        Advertisement {
            version: Version::V3,
            vrid: 51,
            priority: 150,
            max_adver_int_cs: 10,
            addresses: vec![Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11)],
            auth: Auth::None,
        }
    }

    /// Golden bytes, one row per version and auth mode, checked both ways
    /// (the checksums as scapy's VRRP and VRRPv3 layers compute them).
    #[test]
    fn golden_packets() {
        let rows: Vec<(Advertisement, Vec<u8>)> = vec![
            (
                v3(),
                vec![
                    0x31, 51, 150, 2, 0x00, 0x0a, 0x0e, 0x02, 192, 0, 2, 10, 192, 0, 2, 11,
                ],
            ),
            (
                Advertisement {
                    version: Version::V2,
                    vrid: 51,
                    priority: 100,
                    max_adver_int_cs: 100,
                    addresses: vec![Ipv4Addr::new(192, 0, 2, 10)],
                    auth: Auth::simple("1111").expect("8 bytes"),
                },
                vec![
                    0x21, 51, 100, 1, 1, 1, 0x55, 0x5d, 192, 0, 2, 10, b'1', b'1', b'1', b'1', 0,
                    0, 0, 0,
                ],
            ),
            (
                Advertisement {
                    version: Version::V2,
                    vrid: 7,
                    priority: 255,
                    max_adver_int_cs: 300,
                    addresses: vec![Ipv4Addr::new(192, 0, 2, 1)],
                    auth: Auth::None,
                },
                vec![
                    0x21, 7, 255, 1, 0, 3, 0x1d, 0xf2, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
            ),
        ];
        for (adv, bytes) in rows {
            let enc = adv.encode(SRC, VRRP_GROUP);
            assert_eq!(enc, bytes, "{adv:?}: {enc:02x?}");
            assert_eq!(Advertisement::decode(&bytes), Ok(adv.clone()));
            assert!(checksum_ok(
                &bytes,
                adv.version,
                SRC,
                VRRP_GROUP,
                ChecksumMode::Rfc
            ));
        }
    }

    #[test]
    fn v3_checksum_covers_the_pseudo_header() {
        let bytes = v3().encode(SRC, VRRP_GROUP);
        let other = Ipv4Addr::new(198, 18, 0, 3);
        assert!(!checksum_ok(
            &bytes,
            Version::V3,
            other,
            VRRP_GROUP,
            ChecksumMode::Rfc
        ));
        // A peer that checksums the message alone.
        let mut legacy = bytes.clone();
        legacy[6..8].copy_from_slice(&[0, 0]);
        let sum = internet_checksum(&[&legacy]);
        legacy[6..8].copy_from_slice(&sum.to_be_bytes());
        assert!(!checksum_ok(
            &legacy,
            Version::V3,
            SRC,
            VRRP_GROUP,
            ChecksumMode::Rfc
        ));
        assert!(checksum_ok(
            &legacy,
            Version::V3,
            SRC,
            VRRP_GROUP,
            ChecksumMode::Lenient
        ));
        // keepalived's old unicast checksum: the group in the pseudo-header
        // of an advert sent to a peer.
        let peer = Ipv4Addr::new(198, 18, 0, 3);
        let old = v3().encode(SRC, VRRP_GROUP);
        assert!(!checksum_ok(
            &old,
            Version::V3,
            SRC,
            peer,
            ChecksumMode::Rfc
        ));
        assert!(checksum_ok(
            &old,
            Version::V3,
            SRC,
            peer,
            ChecksumMode::Lenient
        ));
    }

    #[test]
    fn rejects_malformed() {
        let good = v3().encode(SRC, VRRP_GROUP);
        assert_eq!(
            Advertisement::decode(&good[..7]),
            Err(DecodeError::Short(7))
        );
        let mut b = good.clone();
        b[0] = 0x41;
        assert_eq!(Advertisement::decode(&b), Err(DecodeError::Version(4)));
        b[0] = 0x32;
        assert_eq!(Advertisement::decode(&b), Err(DecodeError::Type(2)));
        let mut b = good.clone();
        b[3] = 3;
        assert!(matches!(
            Advertisement::decode(&b),
            Err(DecodeError::Length { count: 3, .. })
        ));
        let mut b = good.clone();
        b[4] |= 0x10;
        assert_eq!(Advertisement::decode(&b), Err(DecodeError::Reserved));
        let mut v2 = v3();
        v2.version = Version::V2;
        v2.max_adver_int_cs = 100;
        let mut b = v2.encode(SRC, VRRP_GROUP);
        b[4] = 2;
        assert_eq!(Advertisement::decode(&b), Err(DecodeError::AuthType(2)));
        // v2 without its 8 bytes of auth data.
        let b = v2.encode(SRC, VRRP_GROUP);
        assert!(Advertisement::decode(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn long_passwords_are_refused() {
        assert!(Auth::simple("12345678").is_some());
        assert!(Auth::simple("123456789").is_none());
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn advert() -> impl Strategy<Value = Advertisement> {
            (
                any::<bool>(),
                any::<u8>(),
                any::<u8>(),
                0u16..=MAX_ADVER_INT_CS,
                proptest::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 0..20),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=8)),
            )
                .prop_map(|(v3, vrid, priority, int, addresses, pass)| {
                    if v3 {
                        Advertisement {
                            version: Version::V3,
                            vrid,
                            priority,
                            max_adver_int_cs: int,
                            addresses,
                            auth: Auth::None,
                        }
                    } else {
                        let auth = match pass {
                            None => Auth::None,
                            Some(p) => {
                                let mut d = [0u8; 8];
                                d[..p.len()].copy_from_slice(&p);
                                Auth::Simple(d)
                            }
                        };
                        Advertisement {
                            version: Version::V2,
                            vrid,
                            priority,
                            max_adver_int_cs: (int / 100).clamp(1, 40) * 100,
                            addresses,
                            auth,
                        }
                    }
                })
        }

        proptest! {
            #[test]
            fn round_trip(adv in advert(), src in any::<u32>(), dst in any::<u32>()) {
                let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
                let bytes = adv.encode(src, dst);
                prop_assert_eq!(Advertisement::decode(&bytes), Ok(adv.clone()));
                prop_assert!(checksum_ok(&bytes, adv.version, src, dst, ChecksumMode::Rfc));
            }

            #[test]
            fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                if let Ok(adv) = Advertisement::decode(&bytes) {
                    // What decodes re-encodes to the same fields.
                    let again = adv.encode(Ipv4Addr::LOCALHOST, VRRP_GROUP);
                    prop_assert_eq!(Advertisement::decode(&again).map(|a| a.addresses), Ok(adv.addresses));
                }
            }
        }
    }
}
