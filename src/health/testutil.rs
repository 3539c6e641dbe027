//! In-process servers on 127.0.0.1 for the probe tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{Check, CheckConfig, ProbeContext};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub fn ctx() -> ProbeContext {
    ProbeContext::new().unwrap()
}

/// A check from TOML, targeting 127.0.0.1 and no service port.
pub fn check(toml_text: &str) -> Check {
    let config: CheckConfig = toml::from_str(toml_text).unwrap();
    config.resolve(LOCALHOST, None).unwrap()
}

/// A port nothing listens on (bound, then released).
pub async fn closed_tcp_port() -> u16 {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    listener.local_addr().unwrap().port()
}

#[derive(Clone)]
pub struct Reply {
    status: u16,
    body: String,
    chunked: bool,
    delay: Duration,
    raw: Option<String>,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            chunked: false,
            delay: Duration::ZERO,
            raw: None,
        }
    }

    /// Bytes sent as they are instead of an HTTP response.
    pub fn raw(text: &str) -> Reply {
        Reply {
            raw: Some(text.to_owned()),
            ..Reply::new(200, "")
        }
    }

    pub fn chunked(self) -> Reply {
        Reply {
            chunked: true,
            ..self
        }
    }

    pub fn delay_ms(self, ms: u64) -> Reply {
        Reply {
            delay: Duration::from_millis(ms),
            ..self
        }
    }

    fn bytes(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.as_bytes().to_vec();
        }
        let head = format!("HTTP/1.1 {} Whatever\r\nConnection: close\r\n", self.status);
        if self.chunked {
            let (a, b) = self.body.split_at(self.body.len() / 2);
            format!(
                "{head}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
            .into_bytes()
        } else {
            format!(
                "{head}Content-Length: {}\r\n\r\n{}",
                self.body.len(),
                self.body
            )
            .into_bytes()
        }
    }
}

/// Answer every request with `reply`; the request heads come out of the
/// receiver.
pub async fn serve_http(reply: Reply) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(answer(stream, reply.clone(), tx.clone()));
        }
    });
    (addr, rx)
}

/// As `serve_http` over TLS with a self-signed certificate for
/// "localhost", returned as PEM.
pub async fn serve_https(reply: Reply) -> (SocketAddr, String, mpsc::UnboundedReceiver<String>) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = key.cert.pem();
    let cert: CertificateDer<'static> = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], private)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, reply, tx) = (acceptor.clone(), reply.clone(), tx.clone());
            tokio::spawn(async move {
                // A client that rejects the certificate aborts the handshake.
                if let Ok(tls) = acceptor.accept(stream).await {
                    answer(tls, reply, tx).await;
                }
            });
        }
    });
    (addr, cert_pem, rx)
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    reply: Reply,
    tx: mpsc::UnboundedSender<String>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
    tokio::time::sleep(reply.delay).await;
    let _ = stream.write_all(&reply.bytes()).await;
    let _ = stream.shutdown().await;
}

/// The processes whose process group is `pgid` and that are not zombies.
pub fn live_members_of_group(pgid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may contain spaces.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            pids.push(pid);
        }
    }
    pids
}
