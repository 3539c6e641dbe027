//! The `[[...check]]` tables of the configuration file and their
//! validation into a ready-to-run [`Check`].
//!
//! One flat table with a `type` key; the keys that only make sense for some
//! types are optional here and checked against the type in
//! [`CheckConfig::resolve`], so a misplaced key gets a message naming it
//! instead of serde's "unknown variant" noise.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, USER_AGENT};
use hyper::http::uri::PathAndQuery;
use rustls::pki_types::ServerName;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::http::ca_file_config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckType {
    Tcp,
    Http,
    Https,
    Dns,
    Udp,
    Icmp,
    Exec,
}

impl CheckType {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Tcp => "tcp",
            CheckType::Http => "http",
            CheckType::Https => "https",
            CheckType::Dns => "dns",
            CheckType::Udp => "udp",
            CheckType::Icmp => "icmp",
            CheckType::Exec => "exec",
        }
    }

    /// The port used when neither the check nor its service names one.
    fn well_known_port(self) -> Option<u16> {
        match self {
            CheckType::Http => Some(80),
            CheckType::Https => Some(443),
            CheckType::Dns => Some(53),
            _ => None,
        }
    }
}

impl fmt::Display for CheckType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitialState {
    Up,
    #[default]
    Down,
}

/// A health check as written in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    #[serde(rename = "type")]
    pub kind: CheckType,
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Total deadline of one probe (connect + TLS + request + body).
    /// Defaults to the interval, at most 1000 ms.
    pub timeout_ms: Option<u64>,
    #[serde(default = "default_rise")]
    pub rise: u32,
    #[serde(default = "default_fall")]
    pub fall: u32,
    #[serde(default)]
    pub initial: InitialState,
    /// The first probe waits a random delay in `0..=jitter_ms`.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Local address to bind the probe's socket to.
    pub source: Option<IpAddr>,
    /// Defaults to the server the check belongs to.
    pub address: Option<IpAddr>,
    /// Defaults to the service's port, then the type's well-known port.
    pub port: Option<u16>,

    // http, https
    pub path: Option<String>,
    /// Host header (and TLS server name unless `sni` is set).
    pub host: Option<String>,
    pub sni: Option<String>,
    /// Accepted status codes: 200, "200-399", "200,204", [200, "300-302"].
    pub status: Option<StatusList>,
    pub body_regex: Option<String>,
    /// SHA-256 of the body, hex.
    pub digest: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub insecure: Option<bool>,
    pub ca_file: Option<PathBuf>,

    // dns
    pub query: Option<String>,
    pub query_type: Option<String>,
    pub rcode: Option<String>,
    /// An address that must be among the answer's A/AAAA records.
    pub answer: Option<IpAddr>,

    // udp
    pub payload: Option<String>,
    pub payload_hex: Option<String>,
    pub expect: Option<String>,
    pub expect_hex: Option<String>,

    // exec
    pub command: Option<ExecCommand>,
    /// Run the command as this user (keepalived's `script_user`), with
    /// its primary group; by default as the daemon's user.
    pub user: Option<String>,
}

fn default_interval_ms() -> u64 {
    1000
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

/// Status codes as written: each item is a code, a range `a-b` or a
/// comma-separated list of those; parsed in `resolve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList(pub Vec<String>);

impl<'de> Deserialize<'de> for StatusList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code, a string like \"200-399\" or \"200,204\", or an array")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusList, E> {
                Ok(StatusList(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusList, E> {
                Ok(StatusList(vec![v.to_string()]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusList, E> {
                Ok(StatusList(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<StatusList>()? {
                    items.extend(item.0);
                }
                Ok(StatusList(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// `command = "script args"` runs through `/bin/sh -c`;
/// `command = ["/path", "arg"]` is executed directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecCommand {
    Shell(String),
    Argv(Vec<String>),
}

impl<'de> Deserialize<'de> for ExecCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExecCommand;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a shell command string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExecCommand, E> {
                Ok(ExecCommand::Shell(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExecCommand, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(ExecCommand::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// A validated check, ready for [`super::probe`] and [`super::spawn`].
#[derive(Debug, Clone)]
pub struct Check {
    pub kind: ProbeKind,
    /// Port 0 for icmp; for exec, see [`ExecCheck::port`].
    pub target: SocketAddr,
    pub source: Option<IpAddr>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub initial_up: bool,
    pub jitter: Duration,
    /// Probe over the loopback device only (SO_BINDTODEVICE "lo"): a
    /// `local` service's check must reach this node's own listener, never
    /// another host that has the address.
    pub local_only: bool,
}

impl Check {
    pub fn check_type(&self) -> CheckType {
        match &self.kind {
            ProbeKind::Tcp => CheckType::Tcp,
            ProbeKind::Http(h) if h.tls.is_some() => CheckType::Https,
            ProbeKind::Http(_) => CheckType::Http,
            ProbeKind::Dns(_) => CheckType::Dns,
            ProbeKind::Udp(_) => CheckType::Udp,
            ProbeKind::Icmp => CheckType::Icmp,
            ProbeKind::Exec(_) => CheckType::Exec,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ProbeKind {
    Tcp,
    Http(HttpCheck),
    Dns(DnsCheck),
    Udp(UdpCheck),
    Icmp,
    Exec(ExecCheck),
}

#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub path: PathAndQuery,
    /// Host header value, and extra headers, sent with every request.
    pub headers: HeaderMap,
    pub status: StatusSet,
    pub body_regex: Option<regex::bytes::Regex>,
    pub digest: Option<[u8; 32]>,
    /// `Some` for https.
    pub tls: Option<TlsSettings>,
}

impl HttpCheck {
    /// Whether the probe must read the body at all.
    pub fn needs_body(&self) -> bool {
        self.body_regex.is_some() || self.digest.is_some()
    }
}

#[derive(Clone)]
pub struct TlsSettings {
    pub server_name: ServerName<'static>,
    pub verify: TlsVerify,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .field("verify", &self.verify)
            .finish()
    }
}

/// Which shared client configuration a TLS probe uses.
#[derive(Clone)]
pub enum TlsVerify {
    /// The context's configuration with the webpki roots.
    WebPki,
    /// The context's configuration that accepts any certificate.
    Insecure,
    /// Roots from `ca_file`, loaded when the check was resolved.
    CaFile(Arc<rustls::ClientConfig>),
}

impl fmt::Debug for TlsVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVerify::WebPki => "WebPki",
            TlsVerify::Insecure => "Insecure",
            TlsVerify::CaFile(_) => "CaFile",
        })
    }
}

/// Accepted HTTP status codes as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    fn parse(list: &StatusList) -> Result<StatusSet, String> {
        let mut ranges = Vec::new();
        for item in &list.0 {
            for part in item.split(',') {
                let part = part.trim();
                let bad =
                    || format!("status `{part}`: expected a code 100-599 or a range like 200-399");
                let code = |s: &str| -> Result<u16, String> {
                    match s.trim().parse::<u16>() {
                        Ok(c) if (100..=599).contains(&c) => Ok(c),
                        _ => Err(bad()),
                    }
                };
                let range = match part.split_once('-') {
                    Some((lo, hi)) => (code(lo)?, code(hi)?),
                    None => {
                        let c = code(part)?;
                        (c, c)
                    }
                };
                if range.0 > range.1 {
                    return Err(format!("status `{part}`: range is backwards"));
                }
                ranges.push(range);
            }
        }
        if ranges.is_empty() {
            return Err("status: no codes given".into());
        }
        Ok(StatusSet(ranges))
    }
}

#[derive(Debug, Clone)]
pub struct DnsCheck {
    pub name: Name,
    pub record_type: RecordType,
    pub rcode: ResponseCode,
    pub answer: Option<IpAddr>,
}

#[derive(Debug, Clone)]
pub struct UdpCheck {
    pub payload: Vec<u8>,
    /// The reply must contain these bytes; `None`: any reply will do.
    pub expect: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct ExecCheck {
    /// Program and arguments (`/bin/sh -c ...` for a string command).
    pub argv: Vec<String>,
    /// Exported to the script as `ANYCASTD_CHECK_PORT` when known.
    pub port: Option<u16>,
    /// uid and gid to run as (`user`).
    pub user: Option<(u32, u32)>,
}

/// DNS response codes by their RFC 1035/2136 mnemonics, or a number.
pub fn parse_rcode(s: &str) -> Option<ResponseCode> {
    let code = match s.to_ascii_uppercase().as_str() {
        "NOERROR" => 0,
        "FORMERR" => 1,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        "NOTIMP" => 4,
        "REFUSED" => 5,
        "YXDOMAIN" => 6,
        "YXRRSET" => 7,
        "NXRRSET" => 8,
        "NOTAUTH" => 9,
        "NOTZONE" => 10,
        other => match other.parse::<u16>() {
            Ok(n) if n <= 4095 => n,
            _ => return None,
        },
    };
    Some(code.into())
}

/// The mnemonic of a response code, for error messages.
pub fn rcode_name(rcode: ResponseCode) -> String {
    let names = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    let code = u16::from(rcode);
    names
        .get(usize::from(code))
        .map_or_else(|| format!("RCODE{code}"), |n| (*n).to_owned())
}

pub(super) fn parse_hex(what: &str, s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if s.len() % 2 != 0 {
        return Err(format!("{what}: odd number of hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("{what}: not hex: `{s}`"))
        })
        .collect()
}

impl CheckConfig {
    /// Validate the check and fill in its target: `default_addr` is the
    /// server's address, `default_port` the service's port. Errors are
    /// short, for `file:line: message`.
    pub fn resolve(
        &self,
        default_addr: IpAddr,
        default_port: Option<u16>,
    ) -> Result<Check, String> {
        let kind = self.kind;
        self.reject_foreign_keys()?;

        if self.interval_ms == 0 {
            return Err("interval_ms must be at least 1".into());
        }
        let timeout_ms = self.timeout_ms.unwrap_or(self.interval_ms.min(1000));
        if timeout_ms == 0 {
            return Err("timeout_ms must be at least 1".into());
        }
        if timeout_ms > self.interval_ms {
            return Err(format!(
                "timeout_ms ({}) must not exceed interval_ms ({})",
                timeout_ms, self.interval_ms
            ));
        }
        if self.rise == 0 || self.fall == 0 {
            return Err("rise and fall must be at least 1".into());
        }

        let address = self.address.unwrap_or(default_addr);
        if let Some(source) = self.source {
            if source.is_ipv4() != address.is_ipv4() {
                return Err(format!(
                    "source {source} and target {address} are of different address families"
                ));
            }
        }
        let port = match kind {
            CheckType::Icmp => 0,
            CheckType::Exec => self.port.or(default_port).unwrap_or(0),
            _ => self
                .port
                .or(default_port)
                .or(kind.well_known_port())
                .ok_or_else(|| format!("{kind} checks need a `port` (the service has none)"))?,
        };
        if port == 0 && !matches!(kind, CheckType::Icmp | CheckType::Exec) {
            return Err("port must not be 0".into());
        }
        let target = SocketAddr::new(address, port);

        let probe = match kind {
            CheckType::Tcp => ProbeKind::Tcp,
            CheckType::Http | CheckType::Https => ProbeKind::Http(self.http(target)?),
            CheckType::Dns => ProbeKind::Dns(self.dns()?),
            CheckType::Udp => ProbeKind::Udp(self.udp()?),
            CheckType::Icmp => ProbeKind::Icmp,
            CheckType::Exec => ProbeKind::Exec(self.exec(self.port.or(default_port))?),
        };

        Ok(Check {
            kind: probe,
            target,
            source: self.source,
            interval: Duration::from_millis(self.interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            rise: self.rise,
            fall: self.fall,
            initial_up: self.initial == InitialState::Up,
            jitter: Duration::from_millis(self.jitter_ms),
            local_only: false,
        })
    }

    /// Keys that belong to other check types are errors, not silently ignored.
    fn reject_foreign_keys(&self) -> Result<(), String> {
        use CheckType::*;
        let keys: [(&str, bool, &[CheckType]); 21] = [
            (
                "source",
                self.source.is_some(),
                &[Tcp, Http, Https, Dns, Udp, Icmp],
            ),
            (
                "port",
                self.port.is_some(),
                &[Tcp, Http, Https, Dns, Udp, Exec],
            ),
            ("path", self.path.is_some(), &[Http, Https]),
            ("host", self.host.is_some(), &[Http, Https]),
            ("sni", self.sni.is_some(), &[Https]),
            ("status", self.status.is_some(), &[Http, Https]),
            ("body_regex", self.body_regex.is_some(), &[Http, Https]),
            ("digest", self.digest.is_some(), &[Http, Https]),
            ("headers", self.headers.is_some(), &[Http, Https]),
            ("insecure", self.insecure.is_some(), &[Https]),
            ("ca_file", self.ca_file.is_some(), &[Https]),
            ("query", self.query.is_some(), &[Dns]),
            ("query_type", self.query_type.is_some(), &[Dns]),
            ("rcode", self.rcode.is_some(), &[Dns]),
            ("answer", self.answer.is_some(), &[Dns]),
            ("payload", self.payload.is_some(), &[Udp]),
            ("payload_hex", self.payload_hex.is_some(), &[Udp]),
            ("expect", self.expect.is_some(), &[Udp]),
            ("expect_hex", self.expect_hex.is_some(), &[Udp]),
            ("command", self.command.is_some(), &[Exec]),
            ("user", self.user.is_some(), &[Exec]),
        ];
        for (key, set, types) in keys {
            if set && !types.contains(&self.kind) {
                return Err(format!("`{key}` is not used by {} checks", self.kind));
            }
        }
        Ok(())
    }

    fn http(&self, target: SocketAddr) -> Result<HttpCheck, String> {
        let https = self.kind == CheckType::Https;
        let path = self.path.as_deref().unwrap_or("/");
        if !path.starts_with('/') {
            return Err(format!("path `{path}` must start with /"));
        }
        let path = PathAndQuery::from_str(path).map_err(|e| format!("path `{path}`: {e}"))?;

        let default_port = if https { 443 } else { 80 };
        let host_name = match &self.host {
            Some(h) if h.is_empty() => return Err("host must not be empty".into()),
            Some(h) => h.clone(),
            None => match target.ip() {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            },
        };
        let host_header = if target.port() == default_port {
            host_name.clone()
        } else {
            format!("{host_name}:{}", target.port())
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(&host_header)
                .map_err(|_| format!("host `{host_name}`: not a valid header value"))?,
        );
        for (name, value) in self.headers.iter().flatten() {
            let hname = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: `{name}` is not a valid header name"))?;
            if hname == HOST {
                return Err("headers: set the Host header with `host`".into());
            }
            let hvalue = HeaderValue::from_str(value)
                .map_err(|_| format!("headers: value of `{name}` is not a valid header value"))?;
            headers.append(hname, hvalue);
        }
        // One request per connection; the server closes it after answering.
        headers
            .entry(CONNECTION)
            .or_insert(HeaderValue::from_static("close"));
        headers
            .entry(USER_AGENT)
            .or_insert(HeaderValue::from_static("anycastd-health"));

        let status = match &self.status {
            Some(list) => StatusSet::parse(list)?,
            None => StatusSet(vec![(200, 399)]),
        };
        let body_regex = match &self.body_regex {
            Some(re) => Some(
                regex::bytes::Regex::new(re)
                    .map_err(|e| format!("body_regex: {}", first_line(&e.to_string())))?,
            ),
            None => None,
        };
        let digest = match &self.digest {
            Some(hex) => {
                let bytes = parse_hex("digest", hex)?;
                let arr: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| "digest: expected 64 hex digits (SHA-256)".to_owned())?;
                Some(arr)
            }
            None => None,
        };

        let tls = if https {
            let name = match (&self.sni, &self.host) {
                (Some(sni), _) => sni.clone(),
                (None, Some(host)) => host.clone(),
                (None, None) => target.ip().to_string(),
            };
            let server_name = ServerName::try_from(name.clone())
                .map_err(|_| format!("`{name}` is not a valid TLS server name"))?;
            let insecure = self.insecure.unwrap_or(false);
            let verify = match (&self.ca_file, insecure) {
                (Some(_), true) => return Err("`insecure` and `ca_file` exclude each other".into()),
                (Some(path), false) => TlsVerify::CaFile(ca_file_config(path)?),
                (None, true) => TlsVerify::Insecure,
                (None, false) => TlsVerify::WebPki,
            };
            Some(TlsSettings {
                server_name,
                verify,
            })
        } else {
            None
        };

        Ok(HttpCheck {
            path,
            headers,
            status,
            body_regex,
            digest,
            tls,
        })
    }

    fn dns(&self) -> Result<DnsCheck, String> {
        let query = self
            .query
            .as_deref()
            .ok_or("dns checks need a `query` (the name to look up)")?;
        let mut name = Name::from_ascii(query).map_err(|e| format!("query `{query}`: {e}"))?;
        name.set_fqdn(true);
        let qtype = self.query_type.as_deref().unwrap_or("A");
        let record_type = RecordType::from_str(&qtype.to_ascii_uppercase())
            .map_err(|_| format!("query_type `{qtype}`: unknown record type"))?;
        let rcode = match self.rcode.as_deref() {
            Some(r) => parse_rcode(r).ok_or_else(|| {
                format!(
                    "rcode `{r}`: expected NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ... or a number"
                )
            })?,
            None => ResponseCode::NoError,
        };
        Ok(DnsCheck {
            name,
            record_type,
            rcode,
            answer: self.answer,
        })
    }

    fn udp(&self) -> Result<UdpCheck, String> {
        let payload = match (&self.payload, &self.payload_hex) {
            (Some(_), Some(_)) => {
                return Err("`payload` and `payload_hex` exclude each other".into())
            }
            (Some(p), None) => p.as_bytes().to_vec(),
            (None, Some(h)) => parse_hex("payload_hex", h)?,
            (None, None) => Vec::new(),
        };
        let expect = match (&self.expect, &self.expect_hex) {
            (Some(_), Some(_)) => return Err("`expect` and `expect_hex` exclude each other".into()),
            (Some(e), None) => Some(e.as_bytes().to_vec()),
            (None, Some(h)) => Some(parse_hex("expect_hex", h)?),
            (None, None) => None,
        };
        Ok(UdpCheck { payload, expect })
    }

    fn exec(&self, port: Option<u16>) -> Result<ExecCheck, String> {
        let argv = match &self.command {
            None => return Err("exec checks need a `command`".into()),
            Some(ExecCommand::Shell(s)) if s.trim().is_empty() => {
                return Err("command must not be empty".into())
            }
            Some(ExecCommand::Shell(s)) => vec!["/bin/sh".to_owned(), "-c".to_owned(), s.clone()],
            Some(ExecCommand::Argv(argv)) if argv.first().is_none_or(|p| p.is_empty()) => {
                return Err("command must not be empty".into())
            }
            Some(ExecCommand::Argv(argv)) => argv.clone(),
        };
        let user = match &self.user {
            None => None,
            Some(name) => {
                let u = nix::unistd::User::from_name(name)
                    .map_err(|e| format!("user {name}: {e}"))?
                    .ok_or_else(|| format!("user {name} does not exist on this node"))?;
                Some((u.uid.as_raw(), u.gid.as_raw()))
            }
        };
        Ok(ExecCheck { argv, port, user })
    }
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

    fn parse(s: &str) -> CheckConfig {
        toml::from_str(s).unwrap()
    }

    fn resolve_err(s: &str, port: Option<u16>) -> String {
        parse(s).resolve(SERVER, port).unwrap_err()
    }

    #[test]
    fn defaults() {
        let c = parse(r#"type = "tcp""#).resolve(SERVER, Some(80)).unwrap();
        assert_eq!(c.target, "10.0.0.1:80".parse().unwrap());
        assert_eq!(c.interval, Duration::from_millis(1000));
        assert_eq!(c.timeout, Duration::from_millis(1000));
        assert_eq!((c.rise, c.fall, c.initial_up), (2, 3, false));
        assert_eq!(c.jitter, Duration::ZERO);
        assert_eq!(c.source, None);
        assert_eq!(c.check_type(), CheckType::Tcp);
    }

    #[test]
    fn explicit_target_and_timers() {
        let c = parse(
            r#"
            type = "udp"
            address = "10.0.0.9"
            port = 5353
            source = "10.0.0.2"
            interval_ms = 500
            timeout_ms = 200
            rise = 1
            fall = 5
            initial = "up"
            jitter_ms = 300
            payload_hex = "de ad"
            expect = "pong"
            "#,
        )
        .resolve(SERVER, Some(80))
        .unwrap();
        assert_eq!(c.target, "10.0.0.9:5353".parse().unwrap());
        assert_eq!(c.source, Some("10.0.0.2".parse().unwrap()));
        assert_eq!((c.rise, c.fall, c.initial_up), (1, 5, true));
        assert_eq!(c.jitter, Duration::from_millis(300));
        let ProbeKind::Udp(u) = c.kind else { panic!() };
        assert_eq!(u.payload, vec![0xde, 0xad]);
        assert_eq!(u.expect.as_deref(), Some(&b"pong"[..]));
    }

    #[test]
    fn well_known_ports() {
        let http = parse(r#"type = "http""#).resolve(SERVER, None).unwrap();
        assert_eq!(http.target.port(), 80);
        let dns = parse("type = \"dns\"\nquery = \"example.com\"")
            .resolve(SERVER, None)
            .unwrap();
        assert_eq!(dns.target.port(), 53);
        assert_eq!(
            resolve_err(r#"type = "tcp""#, None),
            "tcp checks need a `port` (the service has none)"
        );
    }

    #[test]
    fn status_forms() {
        let set = |s: &str| {
            let c = parse(&format!("type = \"http\"\nstatus = {s}"))
                .resolve(SERVER, Some(80))
                .unwrap();
            let ProbeKind::Http(h) = c.kind else { panic!() };
            h.status
        };
        assert_eq!(set("204"), StatusSet(vec![(204, 204)]));
        assert_eq!(set("\"200-299\""), StatusSet(vec![(200, 299)]));
        assert_eq!(
            set("\"200, 301-302\""),
            StatusSet(vec![(200, 200), (301, 302)])
        );
        assert_eq!(
            set("[200, \"404\"]"),
            StatusSet(vec![(200, 200), (404, 404)])
        );
        assert!(set("\"200-399\"").contains(302));
        assert!(!set("\"200-399\"").contains(404));
        let err = |s: &str| resolve_err(&format!("type = \"http\"\nstatus = {s}"), Some(80));
        assert_eq!(err("\"399-200\""), "status `399-200`: range is backwards");
        assert!(
            err("\"2xx\"").starts_with("status `2xx`"),
            "{}",
            err("\"2xx\"")
        );
        assert!(err("700").starts_with("status `700`"));
        assert_eq!(err("[]"), "status: no codes given");
    }

    #[test]
    fn http_host_and_headers() {
        let c = parse(
            r#"
            type = "http"
            host = "www.example.com"
            path = "/health?full=1"
            headers = { "X-Check" = "anycastd" }
            "#,
        )
        .resolve(SERVER, Some(8080))
        .unwrap();
        let ProbeKind::Http(h) = c.kind else { panic!() };
        assert_eq!(h.headers[HOST], "www.example.com:8080");
        assert_eq!(h.headers["x-check"], "anycastd");
        assert_eq!(h.path.as_str(), "/health?full=1");
        assert!(h.tls.is_none());

        let c = parse(r#"type = "https""#)
            .resolve("2001:db8::1".parse().unwrap(), None)
            .unwrap();
        let ProbeKind::Http(h) = c.kind else { panic!() };
        assert_eq!(h.headers[HOST], "[2001:db8::1]");
        let tls = h.tls.unwrap();
        assert_eq!(
            tls.server_name,
            ServerName::try_from("2001:db8::1").unwrap()
        );
        assert!(matches!(tls.verify, TlsVerify::WebPki));
    }

    #[test]
    fn errors_are_short_and_name_the_key() {
        let e = |s: &str| resolve_err(s, Some(80));
        assert_eq!(
            e("type = \"tcp\"\ndigest = \"00\""),
            "`digest` is not used by tcp checks"
        );
        assert_eq!(
            e("type = \"http\"\ninsecure = true"),
            "`insecure` is not used by http checks"
        );
        assert_eq!(
            e("type = \"icmp\"\nport = 1"),
            "`port` is not used by icmp checks"
        );
        assert_eq!(
            e("type = \"tcp\"\ntimeout_ms = 2000"),
            "timeout_ms (2000) must not exceed interval_ms (1000)"
        );
        assert_eq!(
            e("type = \"tcp\"\nrise = 0"),
            "rise and fall must be at least 1"
        );
        assert!(e("type = \"http\"\nbody_regex = \"(\"").starts_with("body_regex: "));
        assert_eq!(
            e("type = \"http\"\ndigest = \"abcd\""),
            "digest: expected 64 hex digits (SHA-256)"
        );
        assert_eq!(
            e("type = \"http\"\npath = \"x\""),
            "path `x` must start with /"
        );
        assert_eq!(
            e("type = \"dns\""),
            "dns checks need a `query` (the name to look up)"
        );
        assert!(
            e("type = \"dns\"\nquery = \"a.b\"\nrcode = \"BOGUS\"").starts_with("rcode `BOGUS`")
        );
        assert_eq!(
            e("type = \"dns\"\nquery = \"a.b\"\nquery_type = \"XYZ\""),
            "query_type `XYZ`: unknown record type"
        );
        assert_eq!(e("type = \"exec\""), "exec checks need a `command`");
        assert_eq!(
            e("type = \"exec\"\ncommand = []"),
            "command must not be empty"
        );
        assert_eq!(
            e("type = \"tcp\"\nsource = \"::1\""),
            "source ::1 and target 10.0.0.1 are of different address families"
        );
        assert_eq!(
            e("type = \"https\"\ninsecure = true\nca_file = \"/x\""),
            "`insecure` and `ca_file` exclude each other"
        );
        assert!(e("type = \"https\"\nca_file = \"/nonexistent/ca.pem\"")
            .starts_with("ca_file /nonexistent/ca.pem: "));
    }

    #[test]
    fn unknown_keys_and_types_are_rejected_by_serde() {
        let e = toml::from_str::<CheckConfig>("type = \"tcp\"\nintervall_ms = 5").unwrap_err();
        assert!(e.to_string().contains("intervall_ms"), "{e}");
        let e = toml::from_str::<CheckConfig>("type = \"smtp\"").unwrap_err();
        assert!(e.to_string().contains("smtp"), "{e}");
        let e =
            toml::from_str::<CheckConfig>("type = \"tcp\"\ninitial = \"sideways\"").unwrap_err();
        assert!(e.to_string().contains("sideways"), "{e}");
    }

    #[test]
    fn exec_commands() {
        let c = parse("type = \"exec\"\ncommand = \"exit 0\"")
            .resolve(SERVER, Some(25))
            .unwrap();
        let ProbeKind::Exec(x) = c.kind else { panic!() };
        assert_eq!(x.argv, ["/bin/sh", "-c", "exit 0"]);
        assert_eq!(x.port, Some(25));
        let c = parse("type = \"exec\"\ncommand = [\"/bin/true\", \"a\"]")
            .resolve(SERVER, None)
            .unwrap();
        let ProbeKind::Exec(x) = c.kind else { panic!() };
        assert_eq!(x.argv, ["/bin/true", "a"]);
        assert_eq!(x.port, None);
    }

    #[test]
    fn rcodes() {
        assert_eq!(parse_rcode("nxdomain"), Some(ResponseCode::NXDomain));
        assert_eq!(parse_rcode("0"), Some(ResponseCode::NoError));
        assert_eq!(parse_rcode("5000"), None);
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(23u16.into()), "RCODE23");
    }
}
