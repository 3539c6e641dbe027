//! The IPv4 header of a datagram from a raw socket for IP protocol 89,
//! sans-IO: the Linux layer (`linux`, feature `linux`) receives the bytes,
//! this checks them, and the fuzz target `ip_header` reaches it without a
//! socket.

use std::io;
use std::net::Ipv4Addr;
use std::ops::Range;

/// IP protocol number of OSPF.
pub const IPPROTO_OSPF: i32 = 89;

/// Why a received datagram was dropped. `OspfSocket::recv` (feature `linux`) returns it
/// inside an [`io::Error`] of kind [`io::ErrorKind::InvalidData`]; the
/// socket stays usable, so callers count it (see `linux::malformed`) and receive
/// again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("datagram larger than the receive buffer ({0} bytes)")]
    Truncated(usize),
    #[error("datagram too short for an IPv4 header ({0} bytes)")]
    Short(usize),
    #[error("IP version {0}, expected 4")]
    Version(u8),
    #[error("IP header length {ihl} words does not fit {len} bytes")]
    HeaderLength { ihl: u8, len: usize },
    #[error("IP total length {total} outside header {header}..received {len}")]
    TotalLength {
        total: usize,
        header: usize,
        len: usize,
    },
    #[error("IP protocol {0}, expected 89")]
    Protocol(u8),
    #[error("no IP_PKTINFO control message")]
    NoPacketInfo,
}

impl From<Malformed> for io::Error {
    fn from(m: Malformed) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, m)
    }
}

/// The fields of an IPv4 header the speaker needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// TTL as received.
    pub ttl: u8,
    /// The IP payload: after the header and options, bounded by the
    /// total length (link-layer padding excluded).
    pub payload: Range<usize>,
}

/// Parses the IPv4 header a raw socket hands over. The kernel has already
/// validated it, but the bounds are checked again so that a surprise can
/// never index out of the buffer.
pub fn parse_ipv4_header(pkt: &[u8]) -> Result<Ipv4Header, Malformed> {
    let len = pkt.len();
    if len < 20 {
        return Err(Malformed::Short(len));
    }
    let version = pkt[0] >> 4;
    if version != 4 {
        return Err(Malformed::Version(version));
    }
    let ihl = pkt[0] & 0x0f;
    let header = usize::from(ihl) * 4;
    if ihl < 5 || header > len {
        return Err(Malformed::HeaderLength { ihl, len });
    }
    // Linux leaves tot_len in network order on raw sockets (unlike the BSDs)
    // and it counts the header.
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if total < header || total > len {
        return Err(Malformed::TotalLength { total, header, len });
    }
    if i32::from(pkt[9]) != IPPROTO_OSPF {
        return Err(Malformed::Protocol(pkt[9]));
    }
    Ok(Ipv4Header {
        src: Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]),
        dst: Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]),
        ttl: pkt[8],
        payload: header..total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(total: u16) -> Vec<u8> {
        let mut p = vec![
            0x45, 0xc0, 0, 0, 0, 0, 0, 0, 1, 89, 0, 0, 10, 0, 0, 1, 224, 0, 0, 5,
        ];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p
    }

    #[test]
    fn parses_payload_bounds() {
        let mut p = header(24);
        p.extend_from_slice(&[2, 1, 0, 4]);
        let h = parse_ipv4_header(&p).unwrap();
        assert_eq!(h.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(h.dst, Ipv4Addr::new(224, 0, 0, 5));
        assert_eq!(h.ttl, 1);
        assert_eq!(h.payload, 20..24);
    }

    #[test]
    fn total_length_bounds_payload() {
        // Link-layer padding after the datagram is not OSPF payload.
        let mut p = header(22);
        p.extend_from_slice(&[2, 1, 0xee, 0xee]);
        assert_eq!(parse_ipv4_header(&p).unwrap().payload, 20..22);
    }

    #[test]
    fn options_are_skipped() {
        let mut p = header(28);
        p[0] = 0x46;
        p.extend_from_slice(&[1, 1, 1, 0, 2, 1, 0, 4]);
        assert_eq!(parse_ipv4_header(&p).unwrap().payload, 24..28);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_ipv4_header(&[0x45; 10]), Err(Malformed::Short(10)));
        let mut p = header(20);
        p[0] = 0x65;
        assert_eq!(parse_ipv4_header(&p), Err(Malformed::Version(6)));
        let mut p = header(20);
        p[0] = 0x44;
        assert!(matches!(
            parse_ipv4_header(&p),
            Err(Malformed::HeaderLength { ihl: 4, .. })
        ));
        let mut p = header(20);
        p[0] = 0x4f;
        assert!(matches!(
            parse_ipv4_header(&p),
            Err(Malformed::HeaderLength { ihl: 15, .. })
        ));
        assert!(matches!(
            parse_ipv4_header(&header(21)),
            Err(Malformed::TotalLength { total: 21, .. })
        ));
        assert!(matches!(
            parse_ipv4_header(&header(19)),
            Err(Malformed::TotalLength { total: 19, .. })
        ));
        let mut p = header(20);
        p[9] = 17;
        assert_eq!(parse_ipv4_header(&p), Err(Malformed::Protocol(17)));
    }
}
