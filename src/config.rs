//! The daemon's configuration file (TOML). Unknown keys and bad values are
//! rejected with `file:line:column` and the reason.
//!
//! Today it configures the OSPF speaker and the VIPs it advertises; health
//! checks and services come with the daemon issue.

use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ospf::auth::{Algorithm, AuthConfig, Key};
use ospf::instance::{Config as InstanceConfig, NetworkType};
use ospf::linux::speaker::{SpeakerConfig, SpeakerInterface};
use serde::Deserialize;
use toml::Spanned;

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/anycastd/anycastd.sock";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    router_id: Spanned<Ipv4Addr>,
    control_socket: Option<PathBuf>,
    ospf: OspfFile,
    #[serde(default)]
    vip: Vec<VipFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OspfFile {
    /// Seconds of RFC 6987 stub-router mode after start.
    #[serde(default)]
    stub_router_on_startup: u64,
    /// Minimum time between two instances of one self-originated LSA.
    #[serde(default = "default_min_ls_interval_ms")]
    min_ls_interval_ms: u64,
    #[serde(default)]
    interface: Vec<Spanned<InterfaceFile>>,
}

fn default_min_ls_interval_ms() -> u64 {
    1100
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum NetworkFile {
    Broadcast,
    PointToPoint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceFile {
    name: String,
    #[serde(default)]
    area: Option<Ipv4Addr>,
    network: Option<NetworkFile>,
    hello: Option<u16>,
    dead: Option<u32>,
    /// Fast hellos, as FRR's `ip ospf dead-interval minimal
    /// hello-multiplier N`: N Hellos a second, dead interval 1 s.
    hello_multiplier: Option<u8>,
    retransmit: Option<u16>,
    priority: Option<u8>,
    cost: Option<u16>,
    #[serde(default)]
    mtu_ignore: bool,
    auth: Option<AuthFile>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum AuthFile {
    Simple { key: String },
    Md5 { key_id: u8, key: String },
    HmacSha1 { key_id: u8, key: String },
    HmacSha256 { key_id: u8, key: String },
    HmacSha384 { key_id: u8, key: String },
    HmacSha512 { key_id: u8, key: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VipFile {
    address: Spanned<Ipv4Addr>,
    #[serde(default)]
    cost: u16,
    area: Option<Ipv4Addr>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub control_socket: PathBuf,
    pub speaker: SpeakerConfig,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&path.display().to_string(), &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let err = |span: Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: ConfigFile = toml::from_str(text)
            .map_err(|e| err(e.span().unwrap_or(0..0), e.message().to_string()))?;
        let router_id = *raw.router_id.get_ref();
        if router_id.is_unspecified() {
            return Err(err(
                raw.router_id.span(),
                "router_id 0.0.0.0 is not valid".into(),
            ));
        }
        if raw.ospf.interface.is_empty() {
            return Err(err(
                0..0,
                "ospf: at least one [[ospf.interface]] is needed".into(),
            ));
        }
        let mut interfaces = Vec::new();
        for spanned in &raw.ospf.interface {
            let i = spanned.get_ref();
            let span = spanned.span();
            if interfaces
                .iter()
                .any(|x: &SpeakerInterface| x.name == i.name)
            {
                return Err(err(span, format!("interface {} is listed twice", i.name)));
            }
            let (hello, dead, multiplier) = match i.hello_multiplier {
                Some(m) => {
                    if i.hello.is_some() || i.dead.is_some() {
                        let msg = format!("{}: hello_multiplier replaces hello and dead", i.name);
                        return Err(err(span, msg));
                    }
                    if !(1..=20).contains(&m) {
                        let msg = format!("{}: hello_multiplier must be 1-20", i.name);
                        return Err(err(span, msg));
                    }
                    (0, 1, m)
                }
                None => {
                    let hello = i.hello.unwrap_or(10);
                    let dead = i.dead.unwrap_or(4 * u32::from(hello));
                    if hello == 0 || dead <= u32::from(hello) {
                        let msg =
                            format!("{}: need 0 < hello < dead (got {hello}, {dead})", i.name);
                        return Err(err(span, msg));
                    }
                    (hello, dead, 0)
                }
            };
            let auth = match &i.auth {
                None => AuthConfig::Null,
                Some(AuthFile::Simple { key }) => AuthConfig::simple(key)
                    .map_err(|e| err(span.clone(), format!("{}: {e}", i.name)))?,
                Some(a) => {
                    let (alg, id, key) = match a {
                        AuthFile::Md5 { key_id, key } => (Algorithm::KeyedMd5, key_id, key),
                        AuthFile::HmacSha1 { key_id, key } => (Algorithm::HmacSha1, key_id, key),
                        AuthFile::HmacSha256 { key_id, key } => {
                            (Algorithm::HmacSha256, key_id, key)
                        }
                        AuthFile::HmacSha384 { key_id, key } => {
                            (Algorithm::HmacSha384, key_id, key)
                        }
                        AuthFile::HmacSha512 { key_id, key } => {
                            (Algorithm::HmacSha512, key_id, key)
                        }
                        AuthFile::Simple { .. } => unreachable!("handled above"),
                    };
                    AuthConfig::cryptographic(
                        vec![Key::new(*id, alg, key.as_bytes().to_vec())],
                        false,
                    )
                    .map_err(|e| err(span.clone(), format!("{}: {e}", i.name)))?
                }
            };
            interfaces.push(SpeakerInterface {
                name: i.name.clone(),
                area: i.area.unwrap_or(Ipv4Addr::UNSPECIFIED),
                network: match i.network.unwrap_or(NetworkFile::Broadcast) {
                    NetworkFile::Broadcast => NetworkType::Broadcast,
                    NetworkFile::PointToPoint => NetworkType::PointToPoint,
                },
                hello_interval: hello,
                hello_multiplier: multiplier,
                dead_interval: dead,
                retransmit_interval: i.retransmit.unwrap_or(5),
                priority: i.priority.unwrap_or(0),
                cost: i.cost.unwrap_or(10),
                mtu_ignore: i.mtu_ignore,
                auth,
            });
        }
        let default_area = interfaces.first().map_or(Ipv4Addr::UNSPECIFIED, |i| i.area);
        let mut vips = Vec::new();
        for v in &raw.vip {
            let addr = *v.address.get_ref();
            if addr == router_id {
                return Err(err(
                    v.address.span(),
                    "a VIP must not be the router ID".into(),
                ));
            }
            if vips.iter().any(|(_, a, _)| *a == addr) {
                return Err(err(v.address.span(), format!("VIP {addr} is listed twice")));
            }
            let area = v.area.unwrap_or(default_area);
            if !interfaces.iter().any(|i| i.area == area) {
                return Err(err(
                    v.address.span(),
                    format!("VIP {addr}: no interface in area {area}"),
                ));
            }
            vips.push((area, addr, v.cost));
        }
        let instance = InstanceConfig {
            router_id,
            min_ls_interval: Duration::from_millis(raw.ospf.min_ls_interval_ms),
            stub_router_on_startup: (raw.ospf.stub_router_on_startup > 0)
                .then(|| Duration::from_secs(raw.ospf.stub_router_on_startup)),
        };
        Ok(Config {
            control_socket: raw
                .control_socket
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            speaker: SpeakerConfig {
                instance,
                interfaces,
                vips,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
router_id = "198.18.0.11"
control_socket = "/tmp/x.sock"

[ospf]
[[ospf.interface]]
name = "eth0"
hello = 1
dead = 4
auth = { type = "md5", key_id = 7, key = "k" }

[[vip]]
address = "192.0.2.10"
cost = 5
"#;

    fn fails(text: &str, line: usize, needle: &str) {
        match Config::parse("a.toml", text) {
            Ok(_) => panic!("accepted; wanted {needle}"),
            Err(e) => {
                let s = e.to_string();
                assert!(s.starts_with(&format!("a.toml:{line}:")), "{s}");
                assert!(s.contains(needle), "{s}");
            }
        }
    }

    #[test]
    fn parses_with_defaults() {
        let c = Config::parse("a.toml", GOOD).expect("valid");
        let i = &c.speaker.interfaces[0];
        assert_eq!(
            (i.hello_interval, i.dead_interval, i.priority, i.cost),
            (1, 4, 0, 10)
        );
        assert_eq!(i.network, NetworkType::Broadcast);
        assert_eq!(i.auth.au_type(), 2);
        assert_eq!(
            c.speaker.vips,
            vec![(Ipv4Addr::UNSPECIFIED, "192.0.2.10".parse().expect("ip"), 5)]
        );
        assert_eq!(
            c.speaker.instance.min_ls_interval,
            Duration::from_millis(1100)
        );
    }

    #[test]
    fn fast_hellos() {
        let c = Config::parse(
            "a.toml",
            &GOOD.replace("hello = 1\ndead = 4", "hello_multiplier = 4"),
        )
        .expect("valid");
        let i = &c.speaker.interfaces[0];
        assert_eq!(
            (i.hello_interval, i.hello_multiplier, i.dead_interval),
            (0, 4, 1)
        );
        fails(
            &GOOD.replace("hello = 1", "hello_multiplier = 4"),
            6,
            "replaces hello and dead",
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        fails(
            &GOOD.replace("hello = 1", "helo = 1"),
            8,
            "unknown field `helo`",
        );
        fails(
            &GOOD.replace("dead = 4", "dead = 1"),
            6,
            "need 0 < hello < dead",
        );
        fails(
            &GOOD.replace("192.0.2.10", "198.18.0.11"),
            13,
            "must not be the router ID",
        );
        fails(
            &GOOD.replace("\"md5\"", "\"md4\""),
            10,
            "unknown variant `md4`",
        );
    }
}
