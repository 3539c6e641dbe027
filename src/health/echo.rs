//! The ICMP echo bytes of the health check, sans-IO: the request we send
//! and the matching of what a raw or datagram ICMP socket receives (any
//! ICMP packet for the address family on a raw socket, so hostile bytes).
//! `icmp` moves them; the fuzz target `icmp_reply` reaches them without a
//! socket.

const ECHO_REQUEST_V4: u8 = 8;
pub(super) const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// Type, code, checksum, identifier, sequence number, then our payload.
pub(super) const HEADER: usize = 8;
pub(super) const PAYLOAD: usize = 8;

/// The ICMP message in a received datagram: raw IPv4 sockets hand over the
/// IP header too (its length from the IHL, options included), ICMPv6 and
/// datagram sockets do not. Empty when the header claims more than arrived
/// or less than the 20 bytes of an IPv4 header.
pub(super) fn icmp_of(datagram: &[u8], ip_header: bool) -> &[u8] {
    if !ip_header {
        return datagram;
    }
    let Some(&vihl) = datagram.first() else {
        return &[];
    };
    let header = usize::from(vihl & 0x0f) * 4;
    if header < 20 {
        return &[];
    }
    datagram.get(header..).unwrap_or_default()
}

/// An echo request with our identifier, sequence number and token.
pub(super) fn echo_request(
    v4: bool,
    ident: u16,
    seq: u16,
    token: [u8; PAYLOAD],
) -> [u8; HEADER + PAYLOAD] {
    let mut p = [0u8; HEADER + PAYLOAD];
    p[0] = if v4 { ECHO_REQUEST_V4 } else { ECHO_REQUEST_V6 };
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[HEADER..].copy_from_slice(&token);
    // The kernel fills in the ICMPv6 checksum (it covers a pseudo-header);
    // for ICMPv4 on a raw socket it is ours to compute.
    if v4 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// Whether `icmp` (an ICMP message, no IP header) is the reply to our
/// request; `ident` is None when the kernel rewrites it (datagram sockets).
pub(super) fn is_our_reply(
    icmp: &[u8],
    v4: bool,
    ident: Option<u16>,
    seq: u16,
    token: &[u8],
) -> bool {
    let reply = if v4 { ECHO_REPLY_V4 } else { ECHO_REPLY_V6 };
    icmp.len() >= HEADER + PAYLOAD
        && icmp[0] == reply
        && icmp[1] == 0
        && ident.is_none_or(|id| icmp[4..6] == id.to_be_bytes())
        && icmp[6..8] == seq.to_be_bytes()
        && &icmp[HEADER..HEADER + PAYLOAD] == token
}

/// RFC 1071 Internet checksum.
pub(super) fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_checksum() {
        // The example of RFC 1071 section 3: sum 0xddf2, checksum its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        // A packet carrying its checksum sums to zero.
        let p = echo_request(true, 0x1234, 7, *b"anycastd");
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn reply_matching() {
        let token = *b"anycastd";
        let mut reply = echo_request(true, 0x1234, 7, token);
        reply[0] = ECHO_REPLY_V4;
        assert!(is_our_reply(&reply, true, Some(0x1234), 7, &token));
        assert!(is_our_reply(&reply, true, None, 7, &token));
        assert!(!is_our_reply(&reply, true, Some(0x1235), 7, &token));
        assert!(!is_our_reply(&reply, true, None, 8, &token));
        assert!(!is_our_reply(&reply, true, None, 7, b"otherpay"));
        assert!(!is_our_reply(&reply[..12], true, None, 7, &token));
        // Our own request, seen by a raw socket on loopback, is not a reply.
        let request = echo_request(true, 0x1234, 7, token);
        assert!(!is_our_reply(&request, true, None, 7, &token));
    }

    #[test]
    fn ip_header_is_skipped_by_its_length() {
        let mut d = vec![0x46; 24];
        d.extend_from_slice(&[0, 0, 1, 2]);
        assert_eq!(icmp_of(&d, true), &[0, 0, 1, 2]);
        assert_eq!(icmp_of(&d, false), &d[..]);
        // A header longer than the datagram leaves nothing to match.
        assert_eq!(icmp_of(&[0x4f; 30], true), &[] as &[u8]);
        assert_eq!(icmp_of(&[], true), &[] as &[u8]);
        // A header length under five words is no IPv4 header.
        assert_eq!(icmp_of(&[0x40; 30], true), &[] as &[u8]);
    }
}
