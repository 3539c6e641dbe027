//! UDP check: send a payload, wait for a reply (containing the expected
//! bytes, if any). The socket is connected, so an ICMP port unreachable
//! from the server comes back as "refused".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

use super::{Check, ProbeError, UdpCheck};

/// How much of a reply is looked at.
pub(super) const REPLY_BUFFER: usize = 4096;

pub(super) async fn probe(check: &Check, udp: &UdpCheck) -> Result<(), ProbeError> {
    let socket = connected_socket(check.target, check.source, check.local_only).await?;
    socket
        .send(&udp.payload)
        .await
        .map_err(|e| ProbeError::io("send", e))?;
    let mut buf = [0u8; REPLY_BUFFER];
    let n = socket
        .recv(&mut buf)
        .await
        .map_err(|e| ProbeError::io("recv", e))?;
    match &udp.expect {
        Some(want) if !contains(&buf[..n], want) => Err(ProbeError::Reply(format!(
            "{n} bytes without the expected {} bytes",
            want.len()
        ))),
        _ => Ok(()),
    }
}

/// A UDP socket bound to `source` (or any address of the target's family)
/// and connected to `target`.
pub(super) async fn connected_socket(
    target: SocketAddr,
    source: Option<IpAddr>,
    local_only: bool,
) -> Result<UdpSocket, ProbeError> {
    let local = match (source, target) {
        (Some(ip), _) => SocketAddr::new(ip, 0),
        (None, SocketAddr::V4(_)) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        (None, SocketAddr::V6(_)) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let s = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(|e| ProbeError::io("socket", e))?;
    if local_only {
        super::bind_to_lo(&s)?;
    }
    s.set_nonblocking(true)
        .map_err(|e| ProbeError::io("O_NONBLOCK", e))?;
    s.bind(&local.into())
        .map_err(|e| ProbeError::io("bind", e))?;
    let socket =
        UdpSocket::from_std(std::net::UdpSocket::from(s)).map_err(|e| ProbeError::io("bind", e))?;
    socket
        .connect(target)
        .await
        .map_err(|e| ProbeError::io("connect", e))?;
    Ok(socket)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::super::testutil::{check, ctx};
    use super::super::*;

    /// Answers every datagram with "echo: " + the datagram.
    async fn echo_server() -> u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let mut reply = b"echo: ".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&reply, from).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn echo_with_expected_reply() {
        let port = echo_server().await;
        let c = check(&format!(
            "type = \"udp\"\nport = {port}\npayload = \"ping\"\nexpect = \"echo: ping\""
        ));
        probe(&c, &ctx()).await.unwrap();
        let c = check(&format!(
            "type = \"udp\"\nport = {port}\npayload_hex = \"0001ff\"\nexpect_hex = \"01ff\""
        ));
        probe(&c, &ctx()).await.unwrap();
        let c = check(&format!("type = \"udp\"\nport = {port}\npayload = \"x\""));
        probe(&c, &ctx()).await.unwrap();
    }

    #[tokio::test]
    async fn unexpected_reply_fails() {
        let port = echo_server().await;
        let c = check(&format!(
            "type = \"udp\"\nport = {port}\npayload = \"ping\"\nexpect = \"pong\""
        ));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "reply", "{err}");
    }

    #[tokio::test]
    async fn closed_port_is_refused() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        drop(socket);
        let c = check(&format!(
            "type = \"udp\"\nport = {port}\npayload = \"ping\""
        ));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "refused", "{err}");
    }

    #[tokio::test]
    async fn silence_times_out() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let c = check(&format!(
            "type = \"udp\"\nport = {port}\npayload = \"ping\"\ninterval_ms = 200\ntimeout_ms = 200"
        ));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "timeout", "{err}");
        drop(socket);
    }
}
