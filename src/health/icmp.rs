//! ICMP echo check (RFC 792 / RFC 4443 echo request and reply).
//!
//! A datagram ("ping") ICMP socket is preferred: the kernel hands it only
//! the replies to its own requests. It needs the process's group inside
//! `net.ipv4.ping_group_range`, whose default "1 0" admits nobody, not even
//! root, and every new network namespace starts with that default. Without
//! it a raw socket is used (we run as root); a raw socket sees every ICMP
//! packet for its address family, so replies are matched on identifier,
//! sequence number and payload.

use std::io;
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use super::{random_u64, Check, ProbeError};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// Type, code, checksum, identifier, sequence number, then our payload.
const HEADER: usize = 8;
const PAYLOAD: usize = 8;

pub(super) async fn probe(check: &Check) -> Result<(), ProbeError> {
    let target = check.target.ip();
    let (socket, raw) = open(target)?;
    if check.local_only {
        super::bind_to_lo(&socket)?;
    }
    if let Some(source) = check.source {
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .map_err(|e| ProbeError::io("bind source", e))?;
    }
    // Connecting also makes the kernel drop packets from other sources.
    socket
        .connect(&SocketAddr::new(target, 0).into())
        .map_err(|e| ProbeError::io("connect", e))?;
    // tokio's UdpSocket only issues send(2)/recv(2) on the descriptor, which
    // is all an ICMP socket needs, and registers it without `unsafe`.
    let socket = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))
        .map_err(|e| ProbeError::io("icmp socket", e))?;

    let random = random_u64(check.target);
    let ident = (random >> 48) as u16;
    let seq = (random >> 32) as u16;
    let token = random_u64(random).to_be_bytes();
    let request = echo_request(target.is_ipv4(), ident, seq, token);
    socket
        .send(&request)
        .await
        .map_err(|e| ProbeError::io("send", e))?;

    let mut buf = [0u8; 1500];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| ProbeError::io("recv", e))?;
        // Raw IPv4 sockets receive the IP header too; ICMPv6 and datagram
        // sockets do not.
        let icmp = if raw && target.is_ipv4() {
            let header_len = usize::from(buf[0] & 0x0f) * 4;
            buf.get(header_len..n).unwrap_or(&[])
        } else {
            &buf[..n]
        };
        // The kernel rewrites the identifier of datagram sockets.
        if is_our_reply(icmp, target.is_ipv4(), raw.then_some(ident), seq, &token) {
            return Ok(());
        }
    }
}

/// A datagram ICMP socket, else a raw one. The bool says raw.
fn open(target: IpAddr) -> Result<(Socket, bool), ProbeError> {
    let (domain, protocol) = match target {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let (socket, raw) = match Socket::new(domain, Type::DGRAM.nonblocking(), Some(protocol)) {
        Ok(s) => (s, false),
        Err(e) if matches!(e.kind(), io::ErrorKind::PermissionDenied) => {
            let s = Socket::new(domain, Type::RAW.nonblocking(), Some(protocol)).map_err(|e| {
                ProbeError::io(
                    "icmp socket (raw: needs root or CAP_NET_RAW; datagram: net.ipv4.ping_group_range)",
                    e,
                )
            })?;
            (s, true)
        }
        Err(e) => return Err(ProbeError::io("icmp socket", e)),
    };
    Ok((socket, raw))
}

fn echo_request(v4: bool, ident: u16, seq: u16, token: [u8; PAYLOAD]) -> [u8; HEADER + PAYLOAD] {
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

fn is_our_reply(icmp: &[u8], v4: bool, ident: Option<u16>, seq: u16, token: &[u8]) -> bool {
    let reply = if v4 { ECHO_REPLY_V4 } else { ECHO_REPLY_V6 };
    icmp.len() >= HEADER + PAYLOAD
        && icmp[0] == reply
        && icmp[1] == 0
        && ident.is_none_or(|id| icmp[4..6] == id.to_be_bytes())
        && icmp[6..8] == seq.to_be_bytes()
        && &icmp[HEADER..HEADER + PAYLOAD] == token
}

/// RFC 1071 Internet checksum.
fn checksum(data: &[u8]) -> u16 {
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
    use std::time::Duration;

    use super::super::testutil::{check, ctx};
    use super::super::{probe, CheckConfig};
    use super::{checksum, echo_request, is_our_reply, ECHO_REPLY_V4};

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

    /// Needs root (raw socket) or a ping_group_range covering our group;
    /// fails, never skips, when neither is available.
    #[tokio::test]
    async fn echo_to_loopback() {
        let c = check("type = \"icmp\"");
        match probe(&c, &ctx()).await {
            Ok(latency) => assert!(latency < Duration::from_secs(1)),
            Err(e) => panic!(
                "ICMP echo to 127.0.0.1 failed: {e}. This test needs root or CAP_NET_RAW \
                 (raw ICMP socket), or net.ipv4.ping_group_range covering the test's group"
            ),
        }
    }

    #[tokio::test]
    async fn echo_to_ipv6_loopback() {
        let config: CheckConfig = toml::from_str("type = \"icmp\"").unwrap();
        let c = config.resolve("::1".parse().unwrap(), None).unwrap();
        if let Err(e) = probe(&c, &ctx()).await {
            let disabled = std::fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6")
                .map_or(true, |v| v.trim() == "1");
            panic!(
                "ICMPv6 echo to ::1 failed: {e}{}",
                if disabled {
                    " (this test needs IPv6 on lo: net.ipv6.conf.lo.disable_ipv6=0)"
                } else {
                    ""
                }
            );
        }
    }
}
