//! Health checks: probes of a real server (tcp, http, https, dns, udp, icmp,
//! exec), rise/fall hysteresis, and a runner task per check that reports
//! every probe.
//!
//! Every probe runs on tokio in the caller's runtime (exec aside, which
//! starts the operator's script) and is bounded by one total deadline, the
//! check's `timeout`. Probes allocate little: one socket, a stack buffer, a
//! cloned header map for HTTP, and the TLS configurations are shared by all
//! checks through [`ProbeContext`].
//!
//! - `config`: the `[[...check]]` table ([`CheckConfig`]) and its validation
//!   into a [`Check`].
//! - `hysteresis`: the sans-IO rise/fall state.
//! - `runner`: [`spawn`], one task per check sending a [`Report`] per probe.
//! - one module per probe type.

// Wired into the daemon by the service module.
#![allow(dead_code)]

mod config;
mod dns;
mod echo;
mod exec;
mod http;
mod hysteresis;
mod icmp;
mod runner;
mod tcp;
#[cfg(test)]
mod testutil;
mod udp;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// The service module and the daemon use these; not all of them yet.
#[allow(unused_imports)]
pub use config::{
    Check, CheckConfig, CheckType, DnsCheck, ExecCheck, ExecCommand, HttpCheck, InitialState,
    ProbeKind, StatusList, StatusSet, TlsSettings, TlsVerify, UdpCheck,
};
pub use hysteresis::Hysteresis;
#[allow(unused_imports)]
pub use runner::{spawn, Report};

/// Why a probe failed. [`ProbeError::reason`] is a short fixed label for
/// metrics; `Display` is the detail for logs.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("connection refused")]
    Refused,
    #[error("{what}: {source}")]
    Unreachable {
        what: &'static str,
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("http: {0}")]
    Http(String),
    #[error("status {0} not accepted")]
    Status(u16),
    #[error("body: {0}")]
    Body(String),
    #[error("body sha256 is {0}")]
    Digest(String),
    #[error("rcode {got}, expected {want}")]
    Rcode { got: String, want: String },
    #[error("{0} not in the answer")]
    Answer(IpAddr),
    #[error("reply: {0}")]
    Reply(String),
    #[error("{0}")]
    Exit(String),
}

impl ProbeError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProbeError::Timeout(_) => "timeout",
            ProbeError::Refused => "refused",
            ProbeError::Unreachable { .. } => "unreachable",
            ProbeError::Io { .. } => "io",
            ProbeError::Tls(_) => "tls",
            ProbeError::Http(_) => "http",
            ProbeError::Status(_) => "status",
            ProbeError::Body(_) => "body",
            ProbeError::Digest(_) => "digest",
            ProbeError::Rcode { .. } => "rcode",
            ProbeError::Answer(_) => "answer",
            ProbeError::Reply(_) => "reply",
            ProbeError::Exit(_) => "exit",
        }
    }

    /// Classify a socket error: refused and unreachable get their own
    /// reasons because they say the server (or the path to it) is down,
    /// not that the prober has a problem.
    pub(crate) fn io(what: &'static str, source: io::Error) -> ProbeError {
        match source.kind() {
            io::ErrorKind::ConnectionRefused => ProbeError::Refused,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                ProbeError::Unreachable { what, source }
            }
            _ => ProbeError::Io { what, source },
        }
    }
}

/// State shared by every probe: the TLS client configurations (one set of
/// parsed roots and one session cache for all checks).
pub struct ProbeContext {
    tls_webpki: Arc<rustls::ClientConfig>,
    tls_insecure: Arc<rustls::ClientConfig>,
}

impl ProbeContext {
    pub fn new() -> Result<ProbeContext, rustls::Error> {
        Ok(ProbeContext {
            tls_webpki: http::webpki_config()?,
            tls_insecure: http::insecure_config()?,
        })
    }
}

/// Run one probe of `check` within its timeout. Returns the time it took.
pub async fn probe(check: &Check, ctx: &ProbeContext) -> Result<Duration, ProbeError> {
    let start = Instant::now();
    let run = async {
        match &check.kind {
            ProbeKind::Tcp => tcp::probe(check).await,
            ProbeKind::Http(h) => http::probe(check, h, ctx).await,
            ProbeKind::Dns(d) => dns::probe(check, d).await,
            ProbeKind::Udp(u) => udp::probe(check, u).await,
            ProbeKind::Icmp => icmp::probe(check).await,
            ProbeKind::Exec(x) => exec::probe(check, x).await,
        }
    };
    match tokio::time::timeout(check.timeout, run).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ProbeError::Timeout(check.timeout)),
    }
}

/// Binds a probe's socket to the loopback device (SO_BINDTODEVICE), so
/// that it reaches a listener of this node or nothing: a `local` service
/// whose VIP is not on this node must fail its check, not pass through
/// another host that holds the address (CAP_NET_RAW is needed, as for the
/// OSPF socket).
pub(crate) fn bind_to_lo(socket: &socket2::Socket) -> Result<(), ProbeError> {
    socket
        .bind_device(Some(b"lo"))
        .map_err(|e| ProbeError::io("bind to lo (SO_BINDTODEVICE)", e))
}

/// A random number without a `rand` dependency: std's `RandomState` is
/// seeded from the OS once per thread and its keys change with every
/// instance; the time and `salt` are mixed in as well. Good for jitter and
/// query ids, not for cryptography.
pub(crate) fn random_u64(salt: impl Hash) -> u64 {
    let mut h = RandomState::new().build_hasher();
    salt.hash(&mut h);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_numbers_differ() {
        let a: Vec<u64> = (0..8).map(|_| random_u64(1u32)).collect();
        let mut b = a.clone();
        b.sort_unstable();
        b.dedup();
        assert_eq!(a.len(), b.len(), "{a:?}");
    }

    #[test]
    fn errors_classify_refused_and_unreachable() {
        let e = ProbeError::io("connect", io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(e.reason(), "refused");
        let e = ProbeError::io("connect", io::Error::from_raw_os_error(libc_ehostunreach()));
        assert_eq!(e.reason(), "unreachable");
        let e = ProbeError::io("recv", io::Error::from(io::ErrorKind::InvalidData));
        assert_eq!(e.reason(), "io");
        assert_eq!(
            ProbeError::Timeout(Duration::from_millis(200)).to_string(),
            "no answer within 200 ms"
        );
    }

    fn libc_ehostunreach() -> i32 {
        nix::errno::Errno::EHOSTUNREACH as i32
    }
}
