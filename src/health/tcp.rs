//! TCP connect check, and the connect used by the HTTP checks.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use super::{Check, ProbeError};

/// Success is a completed handshake; the connection is then reset.
pub(super) async fn probe(check: &Check) -> Result<(), ProbeError> {
    connect(check.target, check.source, check.local_only)
        .await
        .map(drop)
}

/// Connect from `source` (any port) to `target`.
///
/// The socket lingers 0 s, so closing it sends a reset instead of a FIN:
/// thousands of probes a second to one server would otherwise leave as many
/// sockets in TIME_WAIT on the director and run it out of ephemeral ports
/// (HAProxy does the same for its checks).
pub(super) async fn connect(
    target: SocketAddr,
    source: Option<IpAddr>,
    local_only: bool,
) -> Result<TcpStream, ProbeError> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(|e| ProbeError::io("socket", e))?;
    if local_only {
        super::bind_to_lo(&socket)?;
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| ProbeError::io("O_NONBLOCK", e))?;
    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    socket
        .set_zero_linger()
        .map_err(|e| ProbeError::io("SO_LINGER", e))?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| ProbeError::io("bind source", e))?;
    }
    let stream = socket
        .connect(target)
        .await
        .map_err(|e| ProbeError::io("connect", e))?;
    // Requests are written whole; do not let Nagle hold back a TLS record.
    stream
        .set_nodelay(true)
        .map_err(|e| ProbeError::io("TCP_NODELAY", e))?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;

    use super::super::testutil::{check, ctx};
    use super::super::*;

    #[tokio::test]
    async fn up_when_listening() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let c = check(&format!("type = \"tcp\"\nport = {port}"));
        let latency = probe(&c, &ctx()).await.unwrap();
        assert!(latency < Duration::from_secs(1));
        // The handshake completed: the listener has a connection to accept.
        let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
        assert!(matches!(accepted, Ok(Ok(_))));
    }

    #[tokio::test]
    async fn refused_when_closed() {
        let port = super::super::testutil::closed_tcp_port().await;
        let c = check(&format!("type = \"tcp\"\nport = {port}"));
        let err = probe(&c, &ctx()).await.unwrap_err();
        assert_eq!(err.reason(), "refused", "{err}");
    }

    #[tokio::test]
    async fn binds_the_source_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let c = check(&format!(
            "type = \"tcp\"\nport = {port}\nsource = \"127.0.0.2\""
        ));
        probe(&c, &ctx()).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
    }
}
