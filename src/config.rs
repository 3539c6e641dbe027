//! The daemon's configuration file (TOML). Unknown keys and bad values are
//! rejected with `file:line:column` and the reason.
//!
//! The main file configures the router ID, the control socket, metrics,
//! OSPF, static VIPs and services; `include` names a directory whose
//! `*.toml` files (read in name order) add more `[[service]]` tables.
//! Nothing is applied unless everything validates.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ospf::auth::{Algorithm, AuthConfig, Key, Window};
use ospf::instance::{AreaType, Config as InstanceConfig, NetworkType};
use ospf::linux::speaker::{SpeakerConfig, SpeakerInterface};
use serde::Deserialize;
use toml::Spanned;

use crate::daemon::service::{DrainSpec, Mode};
use crate::health::{Check, CheckConfig};

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/anycastd/anycastd.sock";
/// Where drains, withdrawals and disabled servers are kept across
/// restarts and reboots, unless `state_file` says otherwise.
pub const DEFAULT_STATE_FILE: &str = "/var/lib/anycastd/state.json";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9274";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The cause is in the message, not chained again (`{:#}` would print
    // it twice).
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
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
    /// The maintenance state (drains, withdrawals, disabled servers).
    state_file: Option<PathBuf>,
    /// `host:port` for Prometheus, or "off".
    metrics_listen: Option<Spanned<String>>,
    /// A directory of `*.toml` files with more `[[service]]` tables,
    /// relative to this file's directory.
    include: Option<PathBuf>,
    ospf: OspfFile,
    #[serde(default)]
    vip: Vec<VipFile>,
    #[serde(default)]
    drain: DrainFile,
    #[serde(default)]
    service: Vec<Spanned<ServiceFile>>,
    /// VRRP virtual routers (src/vrrp_run.rs).
    #[serde(default)]
    vrrp: Vec<crate::daemon::vrrp::VrrpFile>,
}

/// An included file: services only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludeFile {
    #[serde(default)]
    service: Vec<Spanned<ServiceFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainFile {
    /// The cost announced while draining, before the withdrawal.
    #[serde(default = "default_drain_cost")]
    cost: u16,
    #[serde(default = "default_cost_hold_ms")]
    cost_hold_ms: u64,
    /// How long a drain waits for traffic to stop.
    #[serde(default = "default_drain_deadline_s")]
    deadline_s: u64,
}

impl Default for DrainFile {
    fn default() -> Self {
        DrainFile {
            cost: default_drain_cost(),
            cost_hold_ms: default_cost_hold_ms(),
            deadline_s: default_drain_deadline_s(),
        }
    }
}

fn default_drain_cost() -> u16 {
    u16::MAX
}
fn default_cost_hold_ms() -> u64 {
    2000
}
fn default_drain_deadline_s() -> u64 {
    30
}

#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "kebab-case")]
enum ModeFile {
    #[default]
    Local,
    Ipvs,
}

/// IPVS packet forwarding to real servers.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Forwarding {
    /// Direct routing: the real servers answer the client themselves.
    #[default]
    Dr,
    Nat,
    Tunnel,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    name: String,
    vip: Ipv4Addr,
    port: Option<u16>,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    mode: ModeFile,
    #[serde(default = "default_service_cost")]
    cost: u16,
    area: Option<Ipv4Addr>,
    #[serde(default = "default_quorum")]
    quorum: usize,
    #[serde(default)]
    quorum_hysteresis: usize,
    /// After a withdrawal for health, healthy this long before returning.
    #[serde(default = "default_hold_down_ms")]
    hold_down_ms: u64,
    #[serde(default)]
    check: Vec<Spanned<CheckConfig>>,
    // ipvs mode
    scheduler: Option<String>,
    forwarding: Option<Forwarding>,
    persistence_s: Option<u32>,
    sorry_server: Option<SocketAddr>,
    #[serde(default)]
    server: Vec<Spanned<ServerFile>>,
}

fn default_service_cost() -> u16 {
    10
}
fn default_quorum() -> usize {
    1
}
fn default_hold_down_ms() -> u64 {
    3000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    address: IpAddr,
    port: Option<u16>,
    #[serde(default = "default_weight")]
    weight: u32,
    /// Replaces the service's checks for this server.
    #[serde(default)]
    check: Vec<Spanned<CheckConfig>>,
}

fn default_weight() -> u32 {
    1
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
    /// The most LSAs the database holds (FRR's `max-lsa`).
    max_lsa: Option<Spanned<usize>>,
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

/// `area_type` of an interface's area.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum AreaTypeFile {
    Normal,
    Stub,
    TotallyStubby,
    Nssa,
}

impl From<AreaTypeFile> for AreaType {
    fn from(t: AreaTypeFile) -> AreaType {
        match t {
            AreaTypeFile::Normal => AreaType::Normal,
            AreaTypeFile::Stub => AreaType::Stub,
            AreaTypeFile::TotallyStubby => AreaType::TotallyStubby,
            AreaTypeFile::Nssa => AreaType::Nssa,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceFile {
    name: String,
    #[serde(default)]
    area: Option<Ipv4Addr>,
    /// The type of the interface's area; every interface of an area must
    /// say the same (one without the key says normal).
    area_type: Option<Spanned<AreaTypeFile>>,
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
    auth: Option<Spanned<AuthFile>>,
}

/// `auth = { type = "simple", key = "..." }`, one cryptographic key
/// `{ type = "md5", key_id = 1, key = "..." }`, or several for a rollover:
/// `{ type = "md5", keys = [ { key_id, key, send_from, send_until,
/// accept_from, accept_until, algorithm }, ... ] }` (also written as
/// `[[ospf.interface.auth.keys]]` tables).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(rename = "type")]
    kind: AuthKind,
    key_id: Option<u8>,
    key: Option<String>,
    #[serde(default)]
    keys: Vec<Spanned<KeyFile>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum AuthKind {
    Simple,
    Md5,
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl AuthKind {
    fn algorithm(self) -> Option<Algorithm> {
        match self {
            AuthKind::Simple => None,
            AuthKind::Md5 => Some(Algorithm::KeyedMd5),
            AuthKind::HmacSha1 => Some(Algorithm::HmacSha1),
            AuthKind::HmacSha256 => Some(Algorithm::HmacSha256),
            AuthKind::HmacSha384 => Some(Algorithm::HmacSha384),
            AuthKind::HmacSha512 => Some(Algorithm::HmacSha512),
        }
    }
}

/// One key of a rollover. Times are UTC instants: TOML offset date-times
/// (`2026-12-05T10:00:00Z`) or RFC 3339 strings; a window includes its
/// start and ends just before its end (RFC 2328 D.3's KeyStartGenerate /
/// KeyStopGenerate and KeyStartAccept / KeyStopAccept).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    key_id: Spanned<u8>,
    key: String,
    /// This key's algorithm, when not the table's `type`.
    algorithm: Option<Spanned<AuthKind>>,
    send_from: Option<Spanned<WallTime>>,
    send_until: Option<Spanned<WallTime>>,
    accept_from: Option<Spanned<WallTime>>,
    accept_until: Option<Spanned<WallTime>>,
}

/// A wall-clock instant of the config file, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WallTime(u64);

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let datetime = match toml::Value::deserialize(d)? {
            toml::Value::Datetime(dt) => dt,
            toml::Value::String(s) => s.parse().map_err(|_| {
                D::Error::custom(format!(
                    "`{s}` is not an RFC 3339 date-time like 2026-12-05T10:00:00Z"
                ))
            })?,
            other => {
                return Err(D::Error::custom(format!(
                    "expected a date-time like 2026-12-05T10:00:00Z, found {}",
                    other.type_str()
                )))
            }
        };
        unix_secs_of(&datetime)
            .map(WallTime)
            .map_err(D::Error::custom)
    }
}

/// Unix seconds of a TOML date-time that names an instant: date, time and
/// UTC offset (a local date-time would depend on the machine's zone).
fn unix_secs_of(dt: &toml::value::Datetime) -> Result<u64, String> {
    let (Some(date), Some(time), Some(offset)) = (dt.date, dt.time, dt.offset) else {
        return Err(format!(
            "{dt}: give a date, a time and a UTC offset, e.g. 2026-12-05T10:00:00Z"
        ));
    };
    let utc = ospf::auth::unix_secs_from_utc(
        i64::from(date.year),
        date.month,
        date.day,
        time.hour,
        time.minute,
        time.second.unwrap_or(0),
    )
    .ok_or_else(|| format!("{dt} is not a valid date and time from 1970 on"))?;
    let offset_secs = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes) * 60,
    };
    // Local time = UTC + offset, so UTC = local - offset.
    i64::try_from(utc)
        .ok()
        .and_then(|u| u.checked_sub(offset_secs))
        .and_then(|u| u64::try_from(u).ok())
        .ok_or_else(|| format!("{dt} is before 1970"))
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
    pub state_file: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
    pub speaker: SpeakerConfig,
    pub services: Vec<Service>,
    /// VRRP instances; a reload leaves them as they run.
    pub vrrp: Vec<crate::daemon::vrrp::Instance>,
    /// Valid but risky settings, found when the file was read (key
    /// windows are judged from that moment on).
    pub warnings: Vec<Warning>,
    /// The files this config was read from, with their text as read
    /// (`show running-config`).
    pub sources: Vec<(String, String)>,
}

/// A setting that works but is probably not what the operator wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The OSPF interface concerned.
    pub interface: String,
    /// `file:line:column: warning: ...`.
    pub message: String,
}

/// A validated service.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub vip: Ipv4Addr,
    pub area: Ipv4Addr,
    pub port: Option<u16>,
    pub protocol: Protocol,
    pub mode: Mode,
    pub cost: u16,
    pub quorum: usize,
    pub quorum_hysteresis: usize,
    pub hold_down: Duration,
    pub drain: DrainSpec,
    /// `ipvs` mode only.
    pub ipvs: Option<IpvsService>,
    /// `local` mode: one server, this node (the VIP).
    pub servers: Vec<Server>,
    /// The VRRP instance that carries the VIP (one of its addresses), if
    /// any: then VRRP puts the VIP on its interface while master, and the
    /// VIP is neither put on lo nor announced over OSPF.
    pub vrrp: Option<String>,
}

impl Service {
    /// Equal fingerprints: a reload leaves the service (and its checks)
    /// running as they are.
    pub fn fingerprint(&self) -> String {
        format!("{self:?}")
    }
}

#[derive(Debug, Clone)]
pub struct IpvsService {
    pub scheduler: String,
    pub forwarding: Forwarding,
    pub persistence: Option<Duration>,
    #[allow(dead_code)] // programmed by the IPVS reconcile loop (issue 4)
    pub sorry_server: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub address: IpAddr,
    pub port: Option<u16>,
    pub weight: u32,
    pub checks: Vec<Check>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// A TOML or serde error with the key and value it is about: serde says
/// "invalid IPv4 address syntax" and "duplicate key", this says
/// "address = \"192.0.2.10/32\": invalid IPv4 address syntax" and
/// "duplicate key `router_id`".
fn toml_error(file: &str, text: &str, e: toml::de::Error) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().to_string();
    let at = text.get(span.clone()).unwrap_or("").trim();
    let message = if message.starts_with("duplicate key") && !at.is_empty() {
        let key: String = at
            .trim_start_matches('[')
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect();
        format!("duplicate key `{key}`")
    } else {
        // The key whose value this is: the last `name =` before it on its
        // line (plain or in an inline table).
        let line_start = text
            .get(..span.start)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |i| i + 1);
        let before = text.get(line_start..span.start).unwrap_or("");
        let key = before
            .trim_end()
            .strip_suffix('=')
            .map(|b| {
                b.trim_end()
                    .rsplit(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-')))
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .filter(|k| !k.is_empty());
        match key {
            Some(k) if !at.is_empty() && at.len() <= 80 => format!("{k} = {at}: {message}"),
            Some(k) => format!("{k}: {message}"),
            None => message,
        }
    };
    invalid(file, text, span, message)
}

fn invalid(file: &str, text: &str, span: Range<usize>, message: String) -> ConfigError {
    let (line, column) = line_col(text, span.start);
    ConfigError::Invalid {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        error: source,
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut c = Config::parse_with(&path.display().to_string(), &text, Some(base), unix_now())?;
        c.sources.insert(0, (path.display().to_string(), text));
        Ok(c)
    }

    /// Parses one file; `include` is not followed.
    #[cfg(test)]
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(file, text, None, unix_now())
    }

    /// [`Config::parse`] with key windows judged at `now` (Unix seconds).
    /// Also the entry of the fuzz target `config_load` (fuzz/daemon).
    #[cfg(any(test, fuzzing))]
    pub fn parse_at(file: &str, text: &str, now: u64) -> Result<Config, ConfigError> {
        Config::parse_with(file, text, None, now)
    }

    fn parse_with(
        file: &str,
        text: &str,
        base: Option<&Path>,
        now: u64,
    ) -> Result<Config, ConfigError> {
        let err = |span: Range<usize>, message: String| invalid(file, text, span, message);
        let raw: ConfigFile = toml::from_str(text).map_err(|e| toml_error(file, text, e))?;
        let router_id = *raw.router_id.get_ref();
        if router_id.is_unspecified() {
            return Err(err(
                raw.router_id.span(),
                "router_id 0.0.0.0 is not valid".into(),
            ));
        }
        if raw.ospf.interface.is_empty() && raw.vrrp.is_empty() {
            return Err(err(
                0..0,
                "ospf: at least one [[ospf.interface]] is needed".into(),
            ));
        }
        let mut interfaces = Vec::new();
        let mut warnings = Vec::new();
        // Area -> (type, the interface that set it first, where).
        let mut area_types: BTreeMap<Ipv4Addr, (AreaType, String, Range<usize>)> = BTreeMap::new();
        for spanned in &raw.ospf.interface {
            let i = spanned.get_ref();
            let span = spanned.span();
            if interfaces
                .iter()
                .any(|x: &SpeakerInterface| x.name == i.name)
            {
                return Err(err(span, format!("interface {} is listed twice", i.name)));
            }
            let area = i.area.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let (area_type, at) = match &i.area_type {
                Some(t) => (AreaType::from(*t.get_ref()), t.span()),
                None => (AreaType::Normal, span.clone()),
            };
            if area.is_unspecified() && area_type != AreaType::Normal {
                let msg = format!(
                    "{}: the backbone (area 0.0.0.0) can only be normal, not {area_type}",
                    i.name
                );
                return Err(err(at, msg));
            }
            match area_types.get(&area) {
                Some((first, by, first_at)) if *first != area_type => {
                    let (line, column) = line_col(text, first_at.start);
                    let msg = format!(
                        "{}: area {area} is {area_type} here but {first} for interface {by} \
                         ({file}:{line}:{column}); one area has one type (no area_type means normal)",
                        i.name
                    );
                    return Err(err(at, msg));
                }
                Some(_) => {}
                None => {
                    area_types.insert(area, (area_type, i.name.clone(), at));
                }
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
                Some(a) => auth_config(&i.name, a, &err)?,
            };
            let network = i.network.unwrap_or(NetworkFile::Broadcast);
            let auth_span = i.auth.as_ref().map_or(span.clone(), Spanned::span);
            warnings.extend(auth_warnings(&i.name, network, &auth, now).into_iter().map(
                |message| {
                    let at = if matches!(auth, AuthConfig::Null) {
                        span.clone()
                    } else {
                        auth_span.clone()
                    };
                    let (line, column) = line_col(text, at.start);
                    Warning {
                        interface: i.name.clone(),
                        message: format!("{file}:{line}:{column}: {message}"),
                    }
                },
            ));
            interfaces.push(SpeakerInterface {
                name: i.name.clone(),
                area,
                network: match network {
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
        let metrics_listen = match &raw.metrics_listen {
            None => DEFAULT_METRICS_LISTEN.parse().ok(),
            Some(m) if m.get_ref() == "off" => None,
            Some(m) => Some(m.get_ref().parse::<SocketAddr>().map_err(|_| {
                err(
                    m.span(),
                    format!(
                        "metrics_listen: `{}` is not host:port or \"off\"",
                        m.get_ref()
                    ),
                )
            })?),
        };
        let drain = DrainSpec {
            cost: raw.drain.cost,
            cost_hold: Duration::from_millis(raw.drain.cost_hold_ms),
            deadline: Duration::from_secs(raw.drain.deadline_s),
        };
        let vrrp = crate::daemon::vrrp::validate(&raw.vrrp, &err)?;
        let ctx = ServiceContext {
            router_id,
            default_area,
            areas: interfaces.iter().map(|i| i.area).collect(),
            static_vips: vips.iter().map(|(_, a, _)| *a).collect(),
            vrrp_addresses: vrrp
                .iter()
                .flat_map(|v| {
                    let name = &v.run.name;
                    v.run
                        .instance
                        .addresses
                        .iter()
                        .map(move |a| (*a, name.clone()))
                })
                .collect(),
            drain,
        };
        let mut services: Vec<Service> = Vec::new();
        let mut included: Vec<(String, String)> = Vec::new();
        for s in &raw.service {
            let svc = ctx.service(s.get_ref(), s.span(), &err)?;
            check_unique(&services, &svc, &|m| err(s.span(), m))?;
            services.push(svc);
        }
        if let (Some(dir), Some(base)) = (&raw.include, base) {
            let dir = base.join(dir);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|source| ConfigError::Io {
                    path: dir.display().to_string(),
                    error: source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for path in files {
                let name = path.display().to_string();
                let text = read(&path)?;
                included.push((name.clone(), text.clone()));
                let err =
                    |span: Range<usize>, message: String| invalid(&name, &text, span, message);
                let inc: IncludeFile =
                    toml::from_str(&text).map_err(|e| toml_error(&name, &text, e))?;
                for s in &inc.service {
                    let svc = ctx.service(s.get_ref(), s.span(), &err)?;
                    check_unique(&services, &svc, &|m| err(s.span(), m))?;
                    services.push(svc);
                }
            }
        }
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        crate::daemon::vrrp::check_tracked_services(&raw.vrrp, &names, &err)?;
        let max_lsa = match &raw.ospf.max_lsa {
            Some(m) if *m.get_ref() < 100 => {
                return Err(err(
                    m.span(),
                    "max_lsa must be at least 100 (the default is 200000)".to_string(),
                ))
            }
            Some(m) => *m.get_ref(),
            None => ospf::instance::DEFAULT_MAX_LSA,
        };
        let instance = InstanceConfig {
            router_id,
            max_lsa,
            min_ls_interval: Duration::from_millis(raw.ospf.min_ls_interval_ms),
            stub_router_on_startup: (raw.ospf.stub_router_on_startup > 0)
                .then(|| Duration::from_secs(raw.ospf.stub_router_on_startup)),
            area_types: area_types
                .into_iter()
                .filter(|(_, (t, ..))| *t != AreaType::Normal)
                .map(|(a, (t, ..))| (a, t))
                .collect(),
        };
        Ok(Config {
            control_socket: raw
                .control_socket
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            state_file: raw
                .state_file
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_FILE)),
            metrics_listen,
            speaker: SpeakerConfig {
                instance,
                interfaces,
                vips,
            },
            services,
            vrrp,
            warnings,
            sources: included,
        })
    }
}

/// The authentication of interface `iface` from its `auth` table.
fn auth_config(
    iface: &str,
    spanned: &Spanned<AuthFile>,
    err: &dyn Fn(Range<usize>, String) -> ConfigError,
) -> Result<AuthConfig, ConfigError> {
    let a = spanned.get_ref();
    let span = spanned.span();
    let fail = |at: Range<usize>, m: &str| err(at, format!("{iface}: auth: {m}"));
    let Some(algorithm) = a.kind.algorithm() else {
        if a.key_id.is_some() || !a.keys.is_empty() {
            return Err(fail(
                span,
                "a simple password is one key, without key_id or keys",
            ));
        }
        let key = a
            .key
            .as_deref()
            .ok_or_else(|| fail(span.clone(), "type = \"simple\" needs key"))?;
        return AuthConfig::simple(key).map_err(|e| fail(span, &e.to_string()));
    };
    let keys = match (a.key_id, &a.key, a.keys.is_empty()) {
        (Some(id), Some(key), true) => vec![Key::new(id, algorithm, key.as_bytes().to_vec())],
        (None, None, false) => {
            let mut keys: Vec<Key> = Vec::new();
            for k in &a.keys {
                keys.push(rollover_key(k.get_ref(), algorithm, &keys, &fail)?);
            }
            keys
        }
        (_, _, false) => {
            return Err(fail(
                span,
                "give key_id and key (one key) or keys (a rollover), not both",
            ))
        }
        _ => {
            return Err(fail(
                span,
                "needs key_id and key (one key) or keys (a rollover)",
            ))
        }
    };
    AuthConfig::cryptographic(keys, false).map_err(|e| fail(span, &e.to_string()))
}

/// One key of a `keys` list; `earlier` are the keys before it.
fn rollover_key(
    k: &KeyFile,
    default: Algorithm,
    earlier: &[Key],
    fail: &dyn Fn(Range<usize>, &str) -> ConfigError,
) -> Result<Key, ConfigError> {
    let id = *k.key_id.get_ref();
    if earlier.iter().any(|e| e.id == id) {
        return Err(fail(
            k.key_id.span(),
            &format!("key_id {id} is listed twice"),
        ));
    }
    let algorithm = match &k.algorithm {
        None => default,
        Some(a) => a.get_ref().algorithm().ok_or_else(|| {
            fail(
                a.span(),
                "algorithm: md5, hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512",
            )
        })?,
    };
    let window = |from: &Option<Spanned<WallTime>>,
                  until: &Option<Spanned<WallTime>>,
                  what: &str|
     -> Result<Window, ConfigError> {
        let w = Window::new(
            from.as_ref().map(|f| f.get_ref().0),
            until.as_ref().map(|u| u.get_ref().0),
        );
        match until {
            Some(u) if w.is_empty() => Err(fail(
                u.span(),
                &format!("key_id {id}: {what}_until must be later than {what}_from"),
            )),
            _ => Ok(w),
        }
    };
    Ok(Key::new(id, algorithm, k.key.as_bytes().to_vec())
        .with_send_window(window(&k.send_from, &k.send_until, "send")?)
        .with_accept_window(window(&k.accept_from, &k.accept_until, "accept")?))
}

/// What check-config and the daemon's start warn about an interface's
/// authentication (each message without its `file:line:column: `).
fn auth_warnings(iface: &str, network: NetworkFile, auth: &AuthConfig, now: u64) -> Vec<String> {
    let lan = matches!(network, NetworkFile::Broadcast);
    let mut out = Vec::new();
    match auth {
        AuthConfig::Null if lan => out.push(format!(
            "warning: ospf interface {iface} is on a broadcast network without authentication: \
             any host on that LAN can send OSPF packets with any source address and inject \
             routes; give it MD5 or HMAC-SHA keys (auth = {{ type = \"hmac-sha256\", \
             key_id = 1, key = \"...\" }})"
        )),
        AuthConfig::Simple(_) if lan => out.push(format!(
            "warning: ospf interface {iface} is on a broadcast network with a simple password, \
             which every packet carries in clear: any host on that LAN can read it and inject \
             routes; use MD5 or HMAC-SHA keys"
        )),
        AuthConfig::Cryptographic { keys, .. } => {
            for (from, until) in auth.send_gaps(now) {
                let start = if from == now {
                    "now".to_string()
                } else {
                    ospf::auth::format_utc(from)
                };
                let end = until.map_or_else(
                    || "on".to_string(),
                    |u| format!("until {}", ospf::auth::format_utc(u)),
                );
                let meanwhile = match auth.send_key(from) {
                    Some(k) => format!(
                        "key_id {} keeps signing, its send window ended last (RFC 2328 D.3)",
                        k.id
                    ),
                    None => "no packet is sent".to_string(),
                };
                out.push(format!(
                    "warning: ospf interface {iface}: no key may send from {start} {end}; \
                     meanwhile {meanwhile}"
                ));
            }
            for k in keys.iter().filter(|k| k.send && k.accept) {
                let (s, a) = (k.send_window, k.accept_window);
                let starts_early = a.from.is_some_and(|af| s.from.is_none_or(|sf| sf < af));
                let ends_late = a.until.is_some_and(|au| s.until.is_none_or(|su| su > au));
                if starts_early || ends_late {
                    out.push(format!(
                        "warning: ospf interface {iface}: key_id {} may be sent outside its \
                         accept window, where neighbours with the same keys drop its packets",
                        k.id
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

fn check_unique(
    services: &[Service],
    svc: &Service,
    err: &dyn Fn(String) -> ConfigError,
) -> Result<(), ConfigError> {
    if services.iter().any(|s| s.name == svc.name) {
        return Err(err(format!("service {} is defined twice", svc.name)));
    }
    if let Some(s) = services
        .iter()
        .find(|s| s.vip == svc.vip && s.port == svc.port && s.protocol == svc.protocol)
    {
        return Err(err(format!(
            "service {}: {}:{} {:?} is already service {}",
            svc.name,
            svc.vip,
            svc.port.unwrap_or(0),
            svc.protocol,
            s.name
        )));
    }
    if let Some(s) = services
        .iter()
        .find(|s| s.vip == svc.vip && s.area != svc.area)
    {
        return Err(err(format!(
            "service {}: VIP {} is in area {} for service {}",
            svc.name, svc.vip, s.area, s.name
        )));
    }
    Ok(())
}

/// What services are validated against.
struct ServiceContext {
    router_id: Ipv4Addr,
    default_area: Ipv4Addr,
    areas: Vec<Ipv4Addr>,
    static_vips: Vec<Ipv4Addr>,
    /// Addresses VRRP carries, with their instance: a service on one
    /// belongs to VRRP (not on lo, not announced over OSPF, no area).
    vrrp_addresses: Vec<(Ipv4Addr, String)>,
    drain: DrainSpec,
}

impl ServiceContext {
    fn service(
        &self,
        s: &ServiceFile,
        span: Range<usize>,
        err: &dyn Fn(Range<usize>, String) -> ConfigError,
    ) -> Result<Service, ConfigError> {
        let name = &s.name;
        let fail_at = |at: Range<usize>, m: String| err(at, format!("service {name}: {m}"));
        let fail = |m: String| fail_at(span.clone(), m);
        if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
            return Err(fail(format!("the name `{name}` must be one word")));
        }
        if s.vip == self.router_id {
            return Err(fail("the VIP must not be the router ID".into()));
        }
        if s.vip.is_unspecified() || s.vip.is_multicast() || s.vip.is_broadcast() {
            return Err(fail(format!("{} is not a unicast address", s.vip)));
        }
        if self.static_vips.contains(&s.vip) {
            return Err(fail(format!(
                "VIP {} is also a static [[vip]]; it follows the service's health",
                s.vip
            )));
        }
        let area = s.area.unwrap_or(self.default_area);
        let vrrp = self
            .vrrp_addresses
            .iter()
            .find(|(a, _)| *a == s.vip)
            .map(|(_, name)| name.clone());
        if !self.areas.contains(&area) && vrrp.is_none() {
            return Err(fail(format!("no OSPF interface in area {area}")));
        }
        let checks = |list: &[Spanned<CheckConfig>],
                      addr: IpAddr,
                      port: Option<u16>|
         -> Result<Vec<Check>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(i, c)| {
                    c.get_ref()
                        .resolve(addr, port)
                        .map_err(|m| fail_at(c.span(), format!("check {}: {m}", i + 1)))
                })
                .collect()
        };
        let (mode, servers, ipvs) = match s.mode {
            ModeFile::Local => {
                if !s.server.is_empty() {
                    return Err(fail(
                        "[[service.server]] needs mode = \"ipvs\"; a local service checks this node"
                            .into(),
                    ));
                }
                if s.scheduler.is_some() || s.forwarding.is_some() || s.persistence_s.is_some() {
                    return Err(fail(
                        "scheduler, forwarding and persistence_s need mode = \"ipvs\"".into(),
                    ));
                }
                if s.check.is_empty() {
                    return Err(fail(
                        "a local service needs at least one [[service.check]]".into(),
                    ));
                }
                // A local service is announced for this node: its checks
                // must reach this node's own listener (the VIP on lo, or a
                // loopback address), over the loopback device only.
                for (i, c) in s.check.iter().enumerate() {
                    if let Some(a) = c.get_ref().address {
                        if a != IpAddr::V4(s.vip) && !a.is_loopback() {
                            return Err(fail_at(
                                c.span(),
                                format!(
                                    "check {}: address {a}: a local service's checks probe this \
                                     node (the VIP {} on lo, or a loopback address); checking \
                                     another host would announce this node for a service it \
                                     may not serve (use mode = \"ipvs\" with [[service.server]] \
                                     for real servers)",
                                    i + 1,
                                    s.vip
                                ),
                            ));
                        }
                    }
                }
                let mut local_checks = checks(&s.check, IpAddr::V4(s.vip), s.port)?;
                for c in &mut local_checks {
                    c.local_only = true;
                }
                let server = Server {
                    address: IpAddr::V4(s.vip),
                    port: s.port,
                    weight: 1,
                    checks: local_checks,
                };
                (Mode::Local, vec![server], None)
            }
            ModeFile::Ipvs => {
                if s.server.is_empty() {
                    return Err(fail(
                        "an ipvs service needs at least one [[service.server]]".into(),
                    ));
                }
                if s.port.is_none() && s.protocol != Protocol::Tcp {
                    return Err(fail("port is required".into()));
                }
                let mut servers: Vec<Server> = Vec::new();
                for r in &s.server {
                    let r = r.get_ref();
                    let port = r.port.or(s.port);
                    if servers
                        .iter()
                        .any(|x| x.address == r.address && x.port == port)
                    {
                        return Err(fail(format!("server {} is listed twice", r.address)));
                    }
                    let list = if r.check.is_empty() {
                        &s.check
                    } else {
                        &r.check
                    };
                    servers.push(Server {
                        address: r.address,
                        port,
                        weight: r.weight,
                        checks: checks(list, r.address, port)?,
                    });
                }
                let scheduler = s.scheduler.clone().unwrap_or_else(|| "mh".into());
                if scheduler.is_empty() || !scheduler.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(fail(format!(
                        "scheduler `{scheduler}` is not a scheduler name"
                    )));
                }
                let ipvs = IpvsService {
                    scheduler,
                    forwarding: s.forwarding.unwrap_or_default(),
                    persistence: s.persistence_s.map(|p| Duration::from_secs(p.into())),
                    sorry_server: s.sorry_server,
                };
                (Mode::Ipvs, servers, Some(ipvs))
            }
        };
        if s.quorum == 0 || s.quorum > servers.len() {
            return Err(fail(format!(
                "quorum {} must be 1..={} (the number of servers)",
                s.quorum,
                servers.len()
            )));
        }
        Ok(Service {
            name: name.clone(),
            vip: s.vip,
            area,
            port: s.port,
            protocol: s.protocol,
            mode,
            cost: s.cost,
            quorum: s.quorum,
            quorum_hysteresis: s.quorum_hysteresis,
            hold_down: Duration::from_millis(s.hold_down_ms),
            drain: self.drain,
            ipvs,
            servers,
            vrrp,
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
        fails(
            &GOOD.replace("[ospf]\n", "[ospf]\nmax_lsa = 10\n"),
            6,
            "max_lsa must be at least 100",
        );
    }

    const AREAS: &str = r#"
router_id = "198.18.0.11"

[ospf]
[[ospf.interface]]
name = "eth0"
area = "0.0.0.1"
area_type = "stub"

[[ospf.interface]]
name = "eth1"
area = "0.0.0.1"
area_type = "stub"

[[ospf.interface]]
name = "eth2"
"#;

    #[test]
    fn area_types_one_per_area_backbone_normal() {
        let c = Config::parse("a.toml", AREAS).expect("valid");
        let one: Ipv4Addr = "0.0.0.1".parse().expect("ip");
        let i = &c.speaker.instance;
        assert_eq!(i.area_type(one), AreaType::Stub);
        assert_eq!(i.area_type(Ipv4Addr::UNSPECIFIED), AreaType::Normal);
        for (name, t) in [
            ("normal", AreaType::Normal),
            ("totally-stubby", AreaType::TotallyStubby),
            ("nssa", AreaType::Nssa),
        ] {
            let c = Config::parse("a.toml", &AREAS.replace("\"stub\"", &format!("\"{name}\"")))
                .expect("valid");
            assert_eq!(c.speaker.instance.area_type(one), t);
        }
        // Two types for one area: named at the second, with the first.
        fails(
            &AREAS.replacen("area_type = \"stub\"", "area_type = \"nssa\"", 1),
            13,
            "eth1: area 0.0.0.1 is stub here but nssa for interface eth0 (a.toml:8:13)",
        );
        // An interface without the key is in a normal area.
        fails(
            &AREAS
                .replacen(
                    "area = \"0.0.0.1\"\narea_type = \"stub\"\n\n",
                    "area = \"0.0.0.1\"\n\n",
                    2,
                )
                .replacen(
                    "area = \"0.0.0.1\"\n",
                    "area = \"0.0.0.1\"\narea_type = \"stub\"\n",
                    1,
                ),
            10,
            "eth1: area 0.0.0.1 is normal here but stub for interface eth0",
        );
        fails(
            &AREAS.replace("name = \"eth2\"", "name = \"eth2\"\narea_type = \"stub\""),
            17,
            "eth2: the backbone (area 0.0.0.0) can only be normal, not stub",
        );
        fails(
            &AREAS.replace("\"stub\"", "\"stubby\""),
            8,
            "unknown variant `stubby`",
        );
    }

    /// 2026-12-05T10:00:00Z.
    const T10: u64 = 1_796_464_800;

    const ROLLOVER: &str = r#"
router_id = "198.18.0.11"

[ospf]
[[ospf.interface]]
name = "eth0"
auth = { type = "md5", keys = [
  { key_id = 1, key = "old", send_until = 2026-12-05T10:00:00Z, accept_until = 2026-12-05T10:05:00Z },
  { key_id = 2, key = "new", send_from = "2026-12-05T11:00:00+01:00", algorithm = "hmac-sha256" },
] }
"#;

    fn keys_of(c: &Config) -> Vec<Key> {
        match &c.speaker.interfaces[0].auth {
            AuthConfig::Cryptographic { keys, .. } => keys.clone(),
            other => panic!("not cryptographic: {other:?}"),
        }
    }

    #[test]
    fn key_rollover_lists_keys_with_windows() {
        let c = Config::parse_at("a.toml", ROLLOVER, T10 - 3600).expect("valid");
        let keys = keys_of(&c);
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[0].id, keys[0].algorithm), (1, Algorithm::KeyedMd5));
        assert_eq!(keys[0].secret, b"old");
        assert_eq!(keys[0].send_window, Window::new(None, Some(T10)));
        assert_eq!(keys[0].accept_window, Window::new(None, Some(T10 + 300)));
        // An RFC 3339 string with an offset names the same instant.
        assert_eq!((keys[1].id, keys[1].algorithm), (2, Algorithm::HmacSha256));
        assert_eq!(keys[1].send_window, Window::new(Some(T10), None));
        assert_eq!(keys[1].accept_window, Window::ALWAYS);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // The same as [[ospf.interface.auth.keys]] tables.
        let tables = r#"
router_id = "198.18.0.11"
[ospf]
[[ospf.interface]]
name = "eth0"
[ospf.interface.auth]
type = "md5"
[[ospf.interface.auth.keys]]
key_id = 1
key = "old"
send_until = 2026-12-05T10:00:00Z
accept_until = 2026-12-05T10:05:00Z
[[ospf.interface.auth.keys]]
key_id = 2
key = "new"
algorithm = "hmac-sha256"
send_from = 2026-12-05T10:00:00Z
"#;
        let t = Config::parse_at("a.toml", tables, T10 - 3600).expect("valid");
        assert_eq!(keys_of(&t), keys);
    }

    #[test]
    fn key_rollover_errors_name_the_line() {
        fails(
            &ROLLOVER.replace("key_id = 2", "key_id = 1"),
            9,
            "eth0: auth: key_id 1 is listed twice",
        );
        fails(
            &ROLLOVER.replace(
                "accept_until = 2026-12-05T10:05:00Z",
                "accept_from = 2026-12-05T10:05:00Z, accept_until = 2026-12-05T09:05:00Z",
            ),
            8,
            "key_id 1: accept_until must be later than accept_from",
        );
        fails(
            &ROLLOVER.replace(
                "send_until = 2026-12-05T10:00:00Z",
                "send_until = 2026-12-05T10:00:00",
            ),
            8,
            "give a date, a time and a UTC offset",
        );
        fails(
            &ROLLOVER.replace("\"2026-12-05T11:00:00+01:00\"", "\"tomorrow\""),
            9,
            "`tomorrow` is not an RFC 3339 date-time",
        );
        fails(
            &ROLLOVER.replace(
                "send_until = 2026-12-05T10:00:00Z",
                "send_until = 1969-12-05T10:00:00Z",
            ),
            8,
            "from 1970 on",
        );
        fails(
            &ROLLOVER.replace("algorithm = \"hmac-sha256\"", "algorithm = \"simple\""),
            9,
            "algorithm: md5, hmac-sha1",
        );
        fails(
            &ROLLOVER.replace(
                "type = \"md5\",",
                "type = \"md5\", key_id = 3, key = \"k\",",
            ),
            7,
            "not both",
        );
        fails(
            &GOOD.replace("key_id = 7, key = \"k\"", "key = \"k\""),
            10,
            "needs key_id and key (one key) or keys",
        );
        fails(
            &GOOD.replace("\"md5\", key_id = 7", "\"simple\", key_id = 7"),
            10,
            "a simple password is one key",
        );
    }

    #[test]
    fn warns_about_unauthenticated_lans_and_send_gaps() {
        let bare = GOOD.replace("auth = { type = \"md5\", key_id = 7, key = \"k\" }\n", "");
        let c = Config::parse("a.toml", &bare).expect("valid");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        let w = &c.warnings[0];
        assert_eq!(w.interface, "eth0");
        assert!(w.message.starts_with("a.toml:6:1: warning: ospf interface eth0 is on a broadcast network without authentication"), "{}", w.message);
        assert!(w.message.contains("any source address"), "{}", w.message);
        // Not on point-to-point links, nor with keys.
        let p2p = bare.replace("hello = 1", "network = \"point-to-point\"\nhello = 1");
        assert!(Config::parse("a.toml", &p2p)
            .expect("valid")
            .warnings
            .is_empty());
        assert!(Config::parse("a.toml", GOOD)
            .expect("valid")
            .warnings
            .is_empty());
        // A simple password on a LAN is read by anyone there.
        let simple = GOOD.replace("\"md5\", key_id = 7", "\"simple\"");
        let c = Config::parse("a.toml", &simple).expect("valid");
        assert!(
            c.warnings[0].message.contains("in clear"),
            "{:?}",
            c.warnings
        );

        // Key 2 starts an hour after key 1 stops sending: a gap.
        let gap = ROLLOVER.replace("+01:00", "+00:00");
        let c = Config::parse_at("a.toml", &gap, T10 - 60).expect("valid");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].message.starts_with("a.toml:7:8: warning: ospf interface eth0: no key may send from 2026-12-05T10:00:00Z until 2026-12-05T11:00:00Z"),
            "{}",
            c.warnings[0].message
        );
        // Judged from now on: once past, no warning.
        assert!(Config::parse_at("a.toml", &gap, T10 + 3600)
            .expect("valid")
            .warnings
            .is_empty());
        // Sent after it stops being accepted.
        let late = ROLLOVER.replace(
            "accept_until = 2026-12-05T10:05:00Z",
            "accept_until = 2026-12-05T09:55:00Z, accept_from = 2026-12-05T09:00:00Z",
        );
        let c = Config::parse_at("a.toml", &late, T10 - 7200).expect("valid");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0]
            .message
            .contains("key_id 1 may be sent outside its accept window"));
    }

    const SERVICES: &str = r#"
router_id = "198.18.0.11"
metrics_listen = "127.0.0.1:9300"

[ospf]
[[ospf.interface]]
name = "eth0"

[drain]
cost_hold_ms = 500

[[service]]
name = "web"
vip = "192.0.2.10"
port = 80
[[service.check]]
type = "http"
path = "/health"
interval_ms = 200
fall = 2

[[service]]
name = "lvs"
vip = "192.0.2.20"
port = 443
mode = "ipvs"
quorum = 2
[[service.check]]
type = "tcp"
[[service.server]]
address = "198.18.3.1"
[[service.server]]
address = "198.18.3.2"
weight = 5
[[service.server.check]]
type = "tcp"
port = 8443
"#;

    #[test]
    fn services_with_checks_and_servers() {
        let c = Config::parse("a.toml", SERVICES).expect("valid");
        assert_eq!(c.metrics_listen, "127.0.0.1:9300".parse().ok());
        assert_eq!(c.services.len(), 2);
        let web = &c.services[0];
        assert_eq!((web.mode, web.cost, web.quorum), (Mode::Local, 10, 1));
        assert_eq!(web.drain.cost_hold, Duration::from_millis(500));
        let check = &web.servers[0].checks[0];
        assert_eq!(check.target, "192.0.2.10:80".parse().expect("addr"));
        assert_eq!(check.interval, Duration::from_millis(200));
        let lvs = &c.services[1];
        assert_eq!(lvs.mode, Mode::Ipvs);
        let ipvs = lvs.ipvs.as_ref().expect("ipvs");
        assert_eq!(
            (ipvs.scheduler.as_str(), ipvs.forwarding),
            ("mh", Forwarding::Dr)
        );
        assert_eq!(
            lvs.servers[0].checks[0].target,
            "198.18.3.1:443".parse().expect("a")
        );
        assert_eq!(
            lvs.servers[1].checks[0].target,
            "198.18.3.2:8443".parse().expect("a")
        );
        assert_eq!(lvs.servers[1].weight, 5);
        assert_eq!(
            web.fingerprint(),
            Config::parse("b.toml", SERVICES).expect("valid").services[0].fingerprint()
        );
    }

    #[test]
    fn service_errors_name_the_line() {
        fails(
            &SERVICES.replace("path = ", "paht = "),
            18,
            "unknown field `paht`",
        );
        fails(
            &SERVICES.replace("quorum = 2", "quorum = 3"),
            22,
            "quorum 3 must be 1..=2",
        );
        fails(
            &SERVICES.replace("name = \"lvs\"", "name = \"web\""),
            22,
            "is defined twice",
        );
        fails(
            &SERVICES.replace("127.0.0.1:9300", "localhost"),
            3,
            "not host:port",
        );
        fails(
            &SERVICES.replace("interval_ms = 200", "interval_ms = 200\ntimeout_ms = 900"),
            16,
            "check 1: timeout_ms (900)",
        );
        fails(&SERVICES.replace("[[service.check]]\ntype = \"http\"\npath = \"/health\"\ninterval_ms = 200\nfall = 2\n", ""), 12, "needs at least one");
    }

    #[test]
    fn include_directory_adds_services_with_their_own_file_names() {
        let dir = std::env::temp_dir().join(format!("anycastd-cfg-{}", std::process::id()));
        let inc = dir.join("conf.d");
        std::fs::create_dir_all(&inc).expect("mkdir");
        let main = dir.join("anycastd.toml");
        std::fs::write(
            &main,
            GOOD.replace("[ospf]", "include = \"conf.d\"\n[ospf]"),
        )
        .expect("write");
        let svc = "[[service]]\nname = \"dns\"\nvip = \"192.0.2.53\"\nport = 53\nprotocol = \"udp\"\n[[service.check]]\ntype = \"dns\"\nquery = \"example.\"\n";
        std::fs::write(inc.join("10-dns.toml"), svc).expect("write");
        std::fs::write(inc.join("README"), "not toml").expect("write");
        let c = Config::load(&main).expect("valid");
        assert_eq!(c.services.len(), 1);
        assert_eq!(
            c.services[0].servers[0].checks[0].target,
            "192.0.2.53:53".parse().expect("a")
        );
        std::fs::write(
            inc.join("20-bad.toml"),
            "[[service]]\nname = \"x\"\nvipp = 1\n",
        )
        .expect("write");
        let e = Config::load(&main).expect_err("bad include").to_string();
        assert!(e.contains("20-bad.toml:3:"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/anycastd.toml");
        let c = Config::load(Path::new(path)).expect("contrib/anycastd.toml");
        assert_eq!(c.services.len(), 2);
        assert_eq!(c.services[1].servers.len(), 3);
        assert_eq!(c.speaker.instance.max_lsa, 200_000);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/lvs-pair.toml");
        let c = Config::load(Path::new(path)).expect("contrib/lvs-pair.toml");
        assert_eq!(c.services[0].vrrp.as_deref(), Some("VI_1"));
        assert!(c.vrrp[0].lvs_sync.is_some());
    }
}
