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

use super::echo::{echo_request, icmp_of, is_our_reply};
use super::{random_u64, Check, ProbeError};

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
        let icmp = icmp_of(buf.get(..n).unwrap_or_default(), raw && target.is_ipv4());
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testutil::{check, ctx};
    use super::super::{probe, CheckConfig};

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
