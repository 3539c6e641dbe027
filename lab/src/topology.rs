//! Topology files: what nodes exist, how they are linked and what runs on each.
//!
//! A topology is TOML. Parsing keeps the byte span of every value that a
//! semantic check can reject, so errors name `file:line:column` and the reason.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ipnetwork::Ipv4Network;
pub use ospf::area::AreaType;
use serde::Deserialize;
use toml::Spanned;

/// Lab links live in the benchmarking range (RFC 2544) unless a file says otherwise.
pub const DEFAULT_LINK_RANGE: &str = "198.18.0.0/15";
/// VIPs live in TEST-NET-1 (RFC 5737) unless a file says otherwise.
pub const DEFAULT_VIP_RANGE: &str = "192.0.2.0/24";
/// A router's `external_routes` are blackhole /32s counted up from the
/// start of this range (the upper half of the benchmarking range).
pub const EXTERNAL_ROUTE_RANGE: &str = "198.19.0.0/16";
/// At most this many external routes per router: they must fit the range.
pub const MAX_EXTERNAL_ROUTES: u32 = 65_000;

/// Fast hellos: at most this many Hellos a second (`hello_multiplier`),
/// as anycastd accepts.
pub const MAX_HELLO_MULTIPLIER: u8 = 20;
/// FRR 8.4 takes `ip ospf dead-interval minimal hello-multiplier (1-10)`.
pub const FRR_MAX_HELLO_MULTIPLIER: u8 = 10;

/// A topology file could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `file:line:column: message`, the way compilers report.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Router,
    Director,
    Server,
    Client,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Role::Router => "router",
            Role::Director => "director",
            Role::Server => "server",
            Role::Client => "client",
        };
        f.write_str(s)
    }
}

/// The routing software a router or classic director runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Implementation {
    Frr,
    Bird,
    /// The anycastd daemon itself (directors only).
    Anycastd,
    /// keepalived, VRRP only (directors only; no OSPF), from a `vrrp` table.
    Keepalived,
}

impl Implementation {
    /// Whether this software speaks OSPF (keepalived does not).
    pub fn speaks_ospf(self) -> bool {
        self != Implementation::Keepalived
    }
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Implementation::Frr => "frr",
            Implementation::Bird => "bird",
            Implementation::Anycastd => "anycastd",
            Implementation::Keepalived => "keepalived",
        })
    }
}

/// An interface's OSPF authentication: `{ type = "simple", key }`, one key
/// `{ type = "md5" | "hmac-sha256", key_id, key }`, or several for a key
/// rollover `{ type = ..., keys = [ { key_id, key, send_from, send_until,
/// accept_from, accept_until }, ... ] }` with times as TOML offset
/// date-times or RFC 3339 strings (anycastd and BIRD take the windows;
/// FRR 8.4's ospfd keys have none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "OspfAuthFile")]
pub enum OspfAuth {
    /// RFC 2328 D.3 simple password (at most 8 bytes).
    Simple { key: String },
    /// RFC 2328 D.3 keyed MD5, one key or more, oldest first.
    Md5 { keys: Vec<OspfKey> },
    /// RFC 5709 HMAC-SHA-256 (BIRD and anycastd; FRR 8.4 lacks it).
    HmacSha256 { keys: Vec<OspfKey> },
}

impl OspfAuth {
    /// The cryptographic keys (none for a simple password).
    pub fn keys(&self) -> &[OspfKey] {
        match self {
            OspfAuth::Simple { .. } => &[],
            OspfAuth::Md5 { keys } | OspfAuth::HmacSha256 { keys } => keys,
        }
    }
}

/// One cryptographic key, with optional send and accept windows in Unix
/// seconds (`from` included, `until` excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OspfKey {
    pub key_id: u8,
    pub key: String,
    pub send_from: Option<u64>,
    pub send_until: Option<u64>,
    pub accept_from: Option<u64>,
    pub accept_until: Option<u64>,
}

impl OspfKey {
    /// A key valid for sending and accepting at all times.
    pub fn new(key_id: u8, key: &str) -> OspfKey {
        OspfKey {
            key_id,
            key: key.to_string(),
            send_from: None,
            send_until: None,
            accept_from: None,
            accept_until: None,
        }
    }

    /// Whether any window is set.
    pub fn has_windows(&self) -> bool {
        self.send_from.is_some()
            || self.send_until.is_some()
            || self.accept_from.is_some()
            || self.accept_until.is_some()
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AuthKind {
    Simple,
    Md5,
    HmacSha256,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OspfAuthFile {
    #[serde(rename = "type")]
    kind: AuthKind,
    key_id: Option<u8>,
    key: Option<String>,
    keys: Option<Vec<OspfKeyFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OspfKeyFile {
    key_id: u8,
    key: String,
    send_from: Option<LabTime>,
    send_until: Option<LabTime>,
    accept_from: Option<LabTime>,
    accept_until: Option<LabTime>,
}

/// A UTC instant of a topology file, in Unix seconds: a TOML offset
/// date-time or an RFC 3339 string.
#[derive(Debug, Clone, Copy)]
struct LabTime(u64);

impl<'de> Deserialize<'de> for LabTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let dt: toml::value::Datetime = match toml::Value::deserialize(d)? {
            toml::Value::Datetime(dt) => dt,
            toml::Value::String(s) => s
                .parse()
                .map_err(|_| D::Error::custom(format!("`{s}` is not an RFC 3339 date-time")))?,
            other => {
                return Err(D::Error::custom(format!(
                    "expected a date-time like 2026-12-05T10:00:00Z, found {}",
                    other.type_str()
                )))
            }
        };
        let (Some(date), Some(time), Some(offset)) = (dt.date, dt.time, dt.offset) else {
            return Err(D::Error::custom(format!(
                "{dt}: give a date, a time and a UTC offset (Z)"
            )));
        };
        let utc = ospf::auth::unix_secs_from_utc(
            i64::from(date.year),
            date.month,
            date.day,
            time.hour,
            time.minute,
            time.second.unwrap_or(0),
        )
        .ok_or_else(|| D::Error::custom(format!("{dt} is not a valid time from 1970 on")))?;
        let offset = match offset {
            toml::value::Offset::Z => 0,
            toml::value::Offset::Custom { minutes } => i64::from(minutes) * 60,
        };
        i64::try_from(utc)
            .ok()
            .and_then(|u| u.checked_sub(offset))
            .and_then(|u| u64::try_from(u).ok())
            .map(LabTime)
            .ok_or_else(|| D::Error::custom(format!("{dt} is before 1970")))
    }
}

impl TryFrom<OspfAuthFile> for OspfAuth {
    type Error = String;

    fn try_from(a: OspfAuthFile) -> Result<Self, String> {
        if let AuthKind::Simple = a.kind {
            return match (a.key, a.key_id, a.keys) {
                (Some(key), None, None) => Ok(OspfAuth::Simple { key }),
                _ => Err("a simple password is one key, without key_id or keys".into()),
            };
        }
        let keys = match (a.key_id, a.key, a.keys) {
            (Some(id), Some(key), None) => vec![OspfKey::new(id, &key)],
            (None, None, Some(list)) if !list.is_empty() => {
                let mut keys: Vec<OspfKey> = Vec::new();
                for k in list {
                    if keys.iter().any(|o| o.key_id == k.key_id) {
                        return Err(format!("key_id {} is listed twice", k.key_id));
                    }
                    let key = OspfKey {
                        key_id: k.key_id,
                        key: k.key,
                        send_from: k.send_from.map(|t| t.0),
                        send_until: k.send_until.map(|t| t.0),
                        accept_from: k.accept_from.map(|t| t.0),
                        accept_until: k.accept_until.map(|t| t.0),
                    };
                    for (from, until, what) in [
                        (key.send_from, key.send_until, "send"),
                        (key.accept_from, key.accept_until, "accept"),
                    ] {
                        if let (Some(f), Some(u)) = (from, until) {
                            if f >= u {
                                return Err(format!(
                                    "key_id {}: {what}_until must be later than {what}_from",
                                    key.key_id
                                ));
                            }
                        }
                    }
                    keys.push(key);
                }
                keys
            }
            _ => return Err("give key_id and key (one key) or a non-empty keys list".into()),
        };
        Ok(match a.kind {
            AuthKind::Md5 => OspfAuth::Md5 { keys },
            _ => OspfAuth::HmacSha256 { keys },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkType {
    Broadcast,
    PointToPoint,
}

/// `area_type = "stub"`: one of [`AreaType::ALL`] by its name.
fn area_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<AreaType>, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map(Some).map_err(serde::de::Error::custom)
}

/// OSPF settings; every field is optional so the node's values can be
/// overridden per interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OspfParams {
    pub area: Option<Ipv4Addr>,
    /// The area's type (`normal`, `stub`, `totally-stubby`, `nssa`): a
    /// router with interfaces in two areas is an area border router.
    #[serde(default, deserialize_with = "area_type")]
    pub area_type: Option<AreaType>,
    pub hello: Option<u16>,
    pub dead: Option<u32>,
    /// Fast hellos, as FRR's `ip ospf dead-interval minimal
    /// hello-multiplier N`: N Hellos a second (HelloInterval 0 on the
    /// wire), dead interval 1 s. Replaces `hello` and `dead`.
    pub hello_multiplier: Option<u8>,
    pub priority: Option<u8>,
    pub cost: Option<u16>,
    pub retransmit: Option<u16>,
    pub mtu_ignore: Option<bool>,
    pub network: Option<NetworkType>,
    pub auth: Option<OspfAuth>,
}

impl OspfParams {
    /// Fields set in `self` win over those in `base`.
    /// The hello timers go together: a `hello_multiplier` here replaces
    /// the base's `hello` and `dead`, and a `hello` or `dead` here replaces
    /// the base's `hello_multiplier`.
    fn over(&self, base: &OspfParams) -> OspfParams {
        let (hello, dead, hello_multiplier) = if self.hello_multiplier.is_some() {
            (None, None, self.hello_multiplier)
        } else if self.hello.is_some() || self.dead.is_some() {
            (self.hello.or(base.hello), self.dead.or(base.dead), None)
        } else {
            (base.hello, base.dead, base.hello_multiplier)
        };
        OspfParams {
            area: self.area.or(base.area),
            area_type: self.area_type.or(base.area_type),
            hello,
            dead,
            hello_multiplier,
            priority: self.priority.or(base.priority),
            cost: self.cost.or(base.cost),
            retransmit: self.retransmit.or(base.retransmit),
            mtu_ignore: self.mtu_ignore.or(base.mtu_ignore),
            network: self.network.or(base.network),
            auth: self.auth.clone().or_else(|| base.auth.clone()),
        }
    }
}

/// The OSPF settings an interface ends up with, RFC 2328 defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceOspf {
    pub area: Ipv4Addr,
    pub area_type: AreaType,
    /// 0 with fast hellos.
    pub hello: u16,
    /// 1 with fast hellos.
    pub dead: u32,
    /// Fast hellos: Hellos per second (see [`OspfParams::hello_multiplier`]).
    pub hello_multiplier: Option<u8>,
    pub priority: u8,
    pub cost: u16,
    pub retransmit: u16,
    pub mtu_ignore: bool,
    pub network: NetworkType,
    pub auth: Option<OspfAuth>,
}

impl InterfaceOspf {
    fn resolve(p: &OspfParams, default_network: NetworkType) -> Self {
        let (hello, dead) = match p.hello_multiplier {
            Some(_) => (0, 1),
            None => (
                p.hello.unwrap_or(10),
                p.dead
                    .unwrap_or_else(|| 4 * u32::from(p.hello.unwrap_or(10))),
            ),
        };
        InterfaceOspf {
            area: p.area.unwrap_or(Ipv4Addr::UNSPECIFIED),
            area_type: p.area_type.unwrap_or_default(),
            hello,
            dead,
            hello_multiplier: p.hello_multiplier,
            priority: p.priority.unwrap_or(1),
            cost: p.cost.unwrap_or(10),
            retransmit: p.retransmit.unwrap_or(5),
            mtu_ignore: p.mtu_ignore.unwrap_or(false),
            network: p.network.unwrap_or(default_network),
            auth: p.auth.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeOspfFile {
    router_id: Option<Spanned<Ipv4Addr>>,
    #[serde(flatten)]
    params: OspfParams,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    name: Spanned<String>,
    role: Role,
    implementation: Option<Spanned<Implementation>>,
    #[serde(default)]
    vips: Vec<Spanned<Ipv4Addr>>,
    /// Run the lab's HTTP server on this node (servers always do).
    http: Option<bool>,
    #[serde(default)]
    sysctls: BTreeMap<String, toml::Value>,
    ospf: Option<Spanned<NodeOspfFile>>,
    /// Routers only: this many blackhole /32s redistributed into OSPF.
    external_routes: Option<Spanned<i64>>,
    /// anycastd directors only: services the daemon health-checks and
    /// whose VIP it advertises while healthy (`local` mode).
    #[serde(default)]
    services: Vec<Spanned<ServiceFile>>,
    /// anycastd directors only: the daemon's `[drain]` table.
    drain: Option<Spanned<DrainSettings>>,
    /// keepalived or anycastd directors: one VRRP virtual router.
    vrrp: Option<Spanned<crate::keepalived::VrrpSettings>>,
}

/// The health check of a lab service: `http` (GET `path`, a 200-399
/// status, anycastd's default) or `tcp` (a connect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceCheck {
    Http,
    Tcp,
}

impl ServiceCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceCheck::Http => "http",
            ServiceCheck::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    name: Spanned<String>,
    vip: Spanned<Ipv4Addr>,
    port: Option<Spanned<u16>>,
    check: Option<ServiceCheck>,
    path: Option<Spanned<String>>,
    interval_ms: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    rise: Option<Spanned<u32>>,
    fall: Option<Spanned<u32>>,
    hold_down_ms: Option<u64>,
    cost: Option<u16>,
    #[serde(default)]
    servers: Vec<Ipv4Addr>,
    scheduler: Option<String>,
}

/// A service an anycastd director runs (`[[service]]` in its generated
/// config, `mode = "local"`, one `[[service.check]]`). Settings left out
/// keep anycastd's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub vip: Ipv4Addr,
    /// 80 unless given.
    pub port: u16,
    /// `http` unless given.
    pub check: ServiceCheck,
    /// HTTP checks only.
    pub path: Option<String>,
    pub interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub hold_down_ms: Option<u64>,
    pub cost: Option<u16>,
    /// With real servers the service is an IPVS director service
    /// (`mode = "ipvs"`, direct routing to these addresses, same port),
    /// each server checked; without, anycastd serves it itself (`local`).
    pub servers: Vec<Ipv4Addr>,
    /// IPVS scheduler (anycastd's default, `mh`, unless given).
    pub scheduler: Option<String>,
}

/// anycastd's `[drain]` table; settings left out keep its defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainSettings {
    pub cost: Option<u16>,
    pub cost_hold_ms: Option<u64>,
    pub deadline_s: Option<u64>,
}

/// `ospf = false` on an endpoint keeps OSPF off that interface; a table
/// overrides the node's OSPF settings there.
#[derive(Debug)]
enum EndpointOspfFile {
    Enabled(bool),
    Params(OspfParams),
}

// By hand rather than `untagged`, so that an error inside the table (an
// unknown field, a bad key) keeps its own message.
impl<'de> Deserialize<'de> for EndpointOspfFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = EndpointOspfFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a table of OSPF settings")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(EndpointOspfFile::Enabled(b))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                OspfParams::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(EndpointOspfFile::Params)
            }
        }
        d.deserialize_any(Either)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointFile {
    node: Spanned<String>,
    addr: Spanned<String>,
    gateway: Option<Spanned<Ipv4Addr>>,
    ifname: Option<Spanned<String>>,
    mtu: Option<u32>,
    ospf: Option<EndpointOspfFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    a: EndpointFile,
    b: EndpointFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LanFile {
    name: Spanned<String>,
    members: Spanned<Vec<EndpointFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyFile {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    link_ranges: Option<Vec<Spanned<String>>>,
    vip_ranges: Option<Vec<Spanned<String>>>,
    #[serde(default, rename = "node")]
    nodes: Vec<NodeFile>,
    #[serde(default, rename = "link")]
    links: Vec<LinkFile>,
    #[serde(default, rename = "lan")]
    lans: Vec<LanFile>,
}

/// A validated topology.
#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    pub description: String,
    pub nodes: Vec<Node>,
    /// Point-to-point links, each a veth pair between two nodes.
    pub links: Vec<[Endpoint; 2]>,
    pub lans: Vec<Lan>,
    /// The file's text, kept so a running lab can be found again later.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub role: Role,
    pub implementation: Option<Implementation>,
    pub vips: Vec<Ipv4Addr>,
    pub http: bool,
    pub sysctls: BTreeMap<String, String>,
    pub router_id: Option<Ipv4Addr>,
    /// Number of blackhole /32s (from [`EXTERNAL_ROUTE_RANGE`]) put in the
    /// router's kernel table before its daemon starts and redistributed
    /// into OSPF as AS-external LSAs; 0 for none.
    pub external_routes: u32,
    /// anycastd directors: health-checked services. A director with
    /// services advertises only their VIPs, each while its services are
    /// healthy; its other VIPs stay on lo unadvertised (a reloaded config
    /// can add services for them).
    pub services: Vec<Service>,
    /// anycastd directors: the daemon's `[drain]` settings.
    pub drain: Option<DrainSettings>,
    /// keepalived or anycastd directors: a VRRP virtual router.
    pub vrrp: Option<crate::keepalived::VrrpSettings>,
}

impl Node {
    /// Whether a routing daemon runs on this node.
    pub fn runs_ospf(&self) -> bool {
        self.implementation.is_some()
    }

    /// The prefixes of [`Node::external_routes`]: consecutive /32s from
    /// the start of [`EXTERNAL_ROUTE_RANGE`].
    pub fn external_prefixes(&self) -> impl Iterator<Item = Ipv4Network> {
        let base = u32::from(external_range().network());
        (0..self.external_routes.min(MAX_EXTERNAL_ROUTES))
            .map(move |i| Ipv4Network::from(Ipv4Addr::from(base + i)))
    }
}

/// [`EXTERNAL_ROUTE_RANGE`], parsed.
pub fn external_range() -> Ipv4Network {
    EXTERNAL_ROUTE_RANGE.parse().expect("built-in range parses")
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub node: String,
    pub ifname: String,
    pub addr: Ipv4Network,
    pub gateway: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
    /// `None` when OSPF is off on this interface.
    pub ospf: Option<InterfaceOspf>,
}

/// A LAN segment: a bridge in a namespace of its own, one veth per member.
#[derive(Debug, Clone)]
pub struct Lan {
    pub name: String,
    pub members: Vec<Endpoint>,
}

impl Topology {
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Topology::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates; `file` only labels error messages.
    pub fn parse(file: &str, text: &str) -> Result<Topology, TopologyError> {
        let err = |span: Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            TopologyError::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: TopologyFile = toml::from_str(text)
            .map_err(|e| err(e.span().unwrap_or(0..0), e.message().to_string()))?;
        Validator::default()
            .run(raw, text)
            .map_err(|(s, m)| err(s, m))
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Every interface of a node, in the order the file lists them.
    pub fn interfaces<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Endpoint> + 'a {
        self.links
            .iter()
            .flat_map(|l| l.iter())
            .chain(self.lans.iter().flat_map(|l| l.members.iter()))
            .filter(move |e| e.node == node)
    }

    /// The OSPF areas a node's interfaces are in, with their types, in
    /// area order, each once (the topology allows one type per area on a
    /// node).
    pub fn ospf_areas(&self, node: &str) -> Vec<(Ipv4Addr, AreaType)> {
        let mut areas: Vec<(Ipv4Addr, AreaType)> = self
            .interfaces(node)
            .filter_map(|e| e.ospf.as_ref().map(|o| (o.area, o.area_type)))
            .collect();
        areas.sort();
        areas.dedup();
        areas
    }

    /// The router ID of a node running OSPF: the configured one or the
    /// lowest interface address.
    pub fn router_id(&self, node: &Node) -> Option<Ipv4Addr> {
        node.router_id
            .or_else(|| self.interfaces(&node.name).map(|e| e.addr.ip()).min())
    }

    /// All VIPs of the topology, each once, sorted.
    pub fn vips(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self.nodes.iter().flat_map(|n| n.vips.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

type Fail = (Range<usize>, String);

#[derive(Default)]
struct Validator {
    nodes: HashMap<String, (Role, OspfParams, Option<Implementation>)>,
    addrs: HashMap<Ipv4Addr, String>,
    link_ranges: Vec<Ipv4Network>,
    vip_ranges: Vec<Ipv4Network>,
    ifcount: HashMap<String, usize>,
    ifnames: HashSet<(String, String)>,
    /// A router with external routes: links must stay out of their range.
    external_routes_on: Option<String>,
}

/// One OSPF table's hello timers: `hello_multiplier` is 1 to
/// [`MAX_HELLO_MULTIPLIER`] and comes without `hello` and `dead`.
fn check_timers(p: &OspfParams) -> Result<(), String> {
    let Some(m) = p.hello_multiplier else {
        return Ok(());
    };
    if p.hello.is_some() || p.dead.is_some() {
        return Err(
            "hello_multiplier replaces hello and dead (fast hellos: dead interval 1 s); give one or the other"
                .into(),
        );
    }
    if !(1..=MAX_HELLO_MULTIPLIER).contains(&m) {
        return Err(format!(
            "hello_multiplier = {m}: must be 1 to {MAX_HELLO_MULTIPLIER} (Hellos a second)"
        ));
    }
    Ok(())
}

/// Whether `implementation` can run fast hellos with multiplier `m`.
pub fn fast_hellos_supported(implementation: Implementation, m: u8) -> Result<(), String> {
    match implementation {
        Implementation::Anycastd => Ok(()),
        Implementation::Frr if m <= FRR_MAX_HELLO_MULTIPLIER => Ok(()),
        Implementation::Frr => Err(format!(
            "hello_multiplier = {m}: FRR 8.4 takes 1 to {FRR_MAX_HELLO_MULTIPLIER}"
        )),
        Implementation::Keepalived => Err("keepalived speaks no OSPF".into()),
        Implementation::Bird => Err(
            "hello_multiplier: BIRD 2.0 has no fast hellos (its hello interval is 1-65535 whole seconds, so a HelloInterval 0 neighbour mismatches); use hello and dead"
                .into(),
        ),
    }
}

/// Validates one of `node`'s services against its VIPs (on its lo, or
/// its VRRP addresses).
fn service(s: ServiceFile, node: &str, vips: &[Ipv4Addr]) -> Result<Service, Fail> {
    let name = s.name.get_ref().clone();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err((
            s.name.span(),
            format!("service name {name:?} must be letters, digits, '-' or '_'"),
        ));
    }
    let vip = *s.vip.get_ref();
    if !vips.contains(&vip) {
        return Err((
            s.vip.span(),
            format!("service {name}: VIP {vip} is not among {node}'s vips (add it there, so it is on lo)"),
        ));
    }
    let port = s.port.as_ref().map_or(80, |p| *p.get_ref());
    if let Some(p) = s.port.as_ref().filter(|p| *p.get_ref() == 0) {
        return Err((p.span(), format!("service {name}: port 0")));
    }
    let check = s.check.unwrap_or(ServiceCheck::Http);
    if let Some(p) = &s.path {
        if check != ServiceCheck::Http {
            return Err((p.span(), format!("service {name}: path is for http checks")));
        }
        if !p.get_ref().starts_with('/') {
            return Err((
                p.span(),
                format!("service {name}: path {:?} must start with /", p.get_ref()),
            ));
        }
    }
    for v in [&s.interval_ms, &s.timeout_ms].into_iter().flatten() {
        if *v.get_ref() == 0 {
            return Err((v.span(), format!("service {name}: must be at least 1 ms")));
        }
    }
    for v in [&s.rise, &s.fall].into_iter().flatten() {
        if *v.get_ref() == 0 {
            return Err((
                v.span(),
                format!("service {name}: rise and fall are at least 1"),
            ));
        }
    }
    // anycastd's own rule: a probe ends before the next one starts (the
    // interval defaults to 1000 ms, the timeout to the interval).
    let interval = s.interval_ms.as_ref().map_or(1000, |v| *v.get_ref());
    if let Some(t) = s.timeout_ms.as_ref().filter(|t| *t.get_ref() > interval) {
        return Err((
            t.span(),
            format!(
                "service {name}: timeout_ms ({}) must not exceed interval_ms ({interval})",
                t.get_ref()
            ),
        ));
    }
    Ok(Service {
        name,
        vip,
        port,
        check,
        path: s.path.map(Spanned::into_inner),
        interval_ms: s.interval_ms.map(Spanned::into_inner),
        timeout_ms: s.timeout_ms.map(Spanned::into_inner),
        rise: s.rise.map(Spanned::into_inner),
        fall: s.fall.map(Spanned::into_inner),
        hold_down_ms: s.hold_down_ms,
        cost: s.cost,
        servers: s.servers,
        scheduler: s.scheduler,
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 12
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphabetic()
}

fn ranges(given: Option<Vec<Spanned<String>>>, default: &str) -> Result<Vec<Ipv4Network>, Fail> {
    match given {
        None => Ok(vec![default.parse().expect("built-in range parses")]),
        Some(list) => list
            .into_iter()
            .map(|s| {
                s.get_ref()
                    .parse()
                    .map_err(|e| (s.span(), format!("bad range {:?}: {e}", s.get_ref())))
            })
            .collect(),
    }
}

impl Validator {
    fn run(mut self, raw: TopologyFile, text: &str) -> Result<Topology, Fail> {
        let tname = raw.name.get_ref();
        if tname.len() > 32
            || !valid_name(&tname[..tname.len().min(12)])
            || !tname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err((
                raw.name.span(),
                "topology name must be 1-32 letters, digits or '-', starting with a letter".into(),
            ));
        }
        self.link_ranges = ranges(raw.link_ranges, DEFAULT_LINK_RANGE)?;
        self.vip_ranges = ranges(raw.vip_ranges, DEFAULT_VIP_RANGE)?;

        let mut nodes = Vec::new();
        for n in raw.nodes {
            nodes.push(self.node(n)?);
        }
        let mut links = Vec::new();
        for l in raw.links {
            let a = self.endpoint(l.a, NetworkType::PointToPoint)?;
            let b = self.endpoint(l.b, NetworkType::PointToPoint)?;
            if a.node == b.node {
                return Err((0..0, format!("link from node {} to itself", a.node)));
            }
            if a.addr.network() != b.addr.network() || a.addr.prefix() != b.addr.prefix() {
                return Err((
                    0..0,
                    format!(
                        "link {}-{}: {} and {} are not in the same subnet",
                        a.node, b.node, a.addr, b.addr
                    ),
                ));
            }
            links.push([a, b]);
        }
        let mut lans = Vec::new();
        let mut lan_names = HashSet::new();
        for l in raw.lans {
            if !valid_name(l.name.get_ref())
                || self.nodes.contains_key(l.name.get_ref())
                || !lan_names.insert(l.name.get_ref().clone())
            {
                return Err((
                    l.name.span(),
                    format!(
                        "LAN name {:?} is invalid or already names a node or LAN",
                        l.name.get_ref()
                    ),
                ));
            }
            let span = l.members.span();
            let members_raw = l.members.into_inner();
            if members_raw.len() < 2 {
                return Err((span, "a LAN needs at least two members".into()));
            }
            let mut members = Vec::new();
            let mut seen = HashSet::new();
            for m in members_raw {
                let m_span = m.node.span();
                let e = self.endpoint(m, NetworkType::Broadcast)?;
                if !seen.insert(e.node.clone()) {
                    return Err((
                        m_span,
                        format!("node {} is on LAN {} twice", e.node, l.name.get_ref()),
                    ));
                }
                if let Some(first) = members.first() {
                    let first: &Endpoint = first;
                    if first.addr.network() != e.addr.network()
                        || first.addr.prefix() != e.addr.prefix()
                    {
                        return Err((
                            m_span,
                            format!(
                                "{} is not in LAN {}'s subnet {}",
                                e.addr,
                                l.name.get_ref(),
                                first.addr
                            ),
                        ));
                    }
                }
                members.push(e);
            }
            lans.push(Lan {
                name: l.name.into_inner(),
                members,
            });
        }
        let topo = Topology {
            name: raw.name.into_inner(),
            description: raw.description,
            nodes,
            links,
            lans,
            source: text.to_string(),
        };
        self.check_gateways(&topo)?;
        self.check_area_types(&topo)?;
        Ok(topo)
    }

    fn node(&mut self, n: NodeFile) -> Result<Node, Fail> {
        let name = n.name.get_ref().clone();
        if !valid_name(&name) {
            return Err((
                n.name.span(),
                format!("node name {name:?} must be 1-12 letters, digits or '-', starting with a letter"),
            ));
        }
        if self.nodes.contains_key(&name) {
            return Err((n.name.span(), format!("duplicate node {name}")));
        }
        let implementation = match (n.role, n.implementation) {
            (Role::Router | Role::Director, None) => {
                return Err((
                    n.name.span(),
                    format!(
                        "{} {name} needs an implementation (frr, bird or anycastd)",
                        n.role
                    ),
                ))
            }
            (Role::Router, Some(i)) if *i.get_ref() == Implementation::Anycastd => {
                return Err((i.span(), "anycastd runs on directors, not routers".into()))
            }
            (Role::Router, Some(i)) if *i.get_ref() == Implementation::Keepalived => {
                return Err((i.span(), "keepalived runs on directors, not routers".into()))
            }
            (Role::Router | Role::Director, Some(i)) => Some(i.into_inner()),
            (Role::Server | Role::Client, Some(i)) => {
                return Err((
                    i.span(),
                    format!("a {} runs no routing daemon; remove implementation", n.role),
                ))
            }
            (_, None) => None,
        };
        if n.role == Role::Client && !n.vips.is_empty() {
            return Err((n.name.span(), "a client has no VIPs".into()));
        }
        let mut vips = Vec::new();
        for v in n.vips {
            if !self.vip_ranges.iter().any(|r| r.contains(*v.get_ref())) {
                return Err((
                    v.span(),
                    format!("VIP {} is outside the lab's VIP ranges", v.get_ref()),
                ));
            }
            vips.push(v.into_inner());
        }
        let mut sysctls = BTreeMap::new();
        for (k, v) in n.sysctls {
            let value = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => u8::from(b).to_string(),
                other => {
                    return Err((
                        n.name.span(),
                        format!("sysctl {k}: unsupported value {other}"),
                    ))
                }
            };
            if !k.starts_with("net.") || k.contains("..") || k.contains('/') {
                return Err((
                    n.name.span(),
                    format!("sysctl {k}: only per-namespace net.* sysctls are allowed"),
                ));
            }
            sysctls.insert(k, value);
        }
        let (router_id, params) = match n.ospf {
            Some(o) => {
                let span = o.span();
                let o = o.into_inner();
                if implementation.is_none() {
                    return Err((
                        n.name.span(),
                        format!("node {name} runs no OSPF; remove its ospf table"),
                    ));
                }
                check_timers(&o.params).map_err(|m| (span, format!("{name}: {m}")))?;
                (o.router_id.map(Spanned::into_inner), o.params)
            }
            None => (None, OspfParams::default()),
        };
        let external_routes = match n.external_routes {
            None => 0,
            Some(e) => {
                if n.role != Role::Router {
                    return Err((
                        e.span(),
                        format!("external_routes: only routers originate external routes, {name} is a {}", n.role),
                    ));
                }
                let count = u32::try_from(*e.get_ref())
                    .ok()
                    .filter(|c| *c <= MAX_EXTERNAL_ROUTES)
                    .ok_or_else(|| {
                        (
                            e.span(),
                            format!(
                                "external_routes = {}: must be 0 to {MAX_EXTERNAL_ROUTES} (/32s in {EXTERNAL_ROUTE_RANGE})",
                                e.get_ref()
                            ),
                        )
                    })?;
                if count > 0 {
                    self.external_routes_on.get_or_insert_with(|| name.clone());
                }
                count
            }
        };
        let http = n.http.unwrap_or(n.role == Role::Server);
        let anycastd = implementation == Some(Implementation::Anycastd);
        if let Some(d) = &n.drain {
            if !anycastd {
                return Err((
                    d.span(),
                    format!("drain: only anycastd directors drain, {name} runs no anycastd"),
                ));
            }
        }
        let mut services: Vec<Service> = Vec::new();
        // A service's VIP is on lo (vips) or carried by the node's VRRP.
        let mut service_vips = vips.clone();
        if let Some(v) = &n.vrrp {
            service_vips.extend(v.get_ref().addresses.iter().copied());
        }
        for s in n.services {
            let span = s.span();
            if !anycastd {
                return Err((
                    span,
                    format!(
                        "services: only anycastd directors run services, {name} runs no anycastd"
                    ),
                ));
            }
            let svc = service(s.into_inner(), &name, &service_vips)?;
            if let Some(other) = services
                .iter()
                .find(|o| o.name == svc.name || (o.vip, o.port) == (svc.vip, svc.port))
            {
                return Err((
                    span,
                    format!(
                        "service {}: {name} already has service {} ({}:{})",
                        svc.name, other.name, other.vip, other.port
                    ),
                ));
            }
            services.push(svc);
        }
        let vrrp = match n.vrrp {
            None if implementation == Some(Implementation::Keepalived) => {
                return Err((
                    n.name.span(),
                    format!("keepalived node {name} needs a vrrp table"),
                ))
            }
            None => None,
            Some(v) => {
                let span = v.span();
                let v = v.into_inner();
                crate::keepalived::validate(&v, &name, implementation)
                    .map_err(|m| (span.clone(), m))?;
                if let Some(a) = v
                    .addresses
                    .iter()
                    .find(|a| !self.vip_ranges.iter().any(|r| r.contains(**a)))
                {
                    return Err((span, format!("vrrp: {a} is outside the lab's VIP ranges")));
                }
                Some(v)
            }
        };
        self.nodes
            .insert(name.clone(), (n.role, params, implementation));
        Ok(Node {
            vrrp,
            name,
            role: n.role,
            implementation,
            vips,
            http,
            sysctls,
            router_id,
            external_routes,
            services,
            drain: n.drain.map(Spanned::into_inner),
        })
    }

    fn endpoint(
        &mut self,
        e: EndpointFile,
        default_network: NetworkType,
    ) -> Result<Endpoint, Fail> {
        let node = e.node.get_ref().clone();
        let Some((_, node_ospf, implementation)) = self.nodes.get(&node).cloned() else {
            return Err((e.node.span(), format!("unknown node {node}")));
        };
        let runs_ospf = implementation.is_some_and(Implementation::speaks_ospf);
        let addr: Ipv4Network = e.addr.get_ref().parse().map_err(|err| {
            (
                e.addr.span(),
                format!(
                    "bad address {:?}: {err} (want A.B.C.D/LEN)",
                    e.addr.get_ref()
                ),
            )
        })?;
        if addr.prefix() > 31 || addr.ip() == addr.network() && addr.prefix() < 31 {
            return Err((
                e.addr.span(),
                format!("{addr} is not a usable host address"),
            ));
        }
        if !self.link_ranges.iter().any(|r| r.contains(addr.ip())) {
            return Err((
                e.addr.span(),
                format!("address {addr} is outside the lab's link ranges"),
            ));
        }
        if let Some(router) = &self.external_routes_on {
            let range = external_range();
            if range.contains(addr.ip()) || addr.contains(range.network()) {
                return Err((
                    e.addr.span(),
                    format!(
                        "address {addr} overlaps {EXTERNAL_ROUTE_RANGE}, the external routes of {router}"
                    ),
                ));
            }
        }
        if let Some(other) = self.addrs.insert(addr.ip(), node.clone()) {
            return Err((
                e.addr.span(),
                format!("duplicate address {} (also on {other})", addr.ip()),
            ));
        }
        let index = self.ifcount.entry(node.clone()).or_insert(0);
        let ifname = match &e.ifname {
            Some(n) => {
                let s = n.get_ref();
                if s.is_empty()
                    || s.len() > 15
                    || s == "lo"
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err((n.span(), format!("bad interface name {s:?}")));
                }
                s.clone()
            }
            None => format!("eth{index}"),
        };
        *index += 1;
        if !self.ifnames.insert((node.clone(), ifname.clone())) {
            let span = e.ifname.as_ref().map_or(e.node.span(), Spanned::span);
            return Err((
                span,
                format!("node {node} has two interfaces named {ifname}"),
            ));
        }
        let ospf = match e.ospf {
            _ if !runs_ospf => {
                if let Some(EndpointOspfFile::Params(_) | EndpointOspfFile::Enabled(true)) = e.ospf
                {
                    return Err((e.node.span(), format!("node {node} runs no OSPF")));
                }
                None
            }
            Some(EndpointOspfFile::Enabled(false)) => None,
            Some(EndpointOspfFile::Enabled(true)) | None => {
                Some(InterfaceOspf::resolve(&node_ospf, default_network))
            }
            Some(EndpointOspfFile::Params(p)) => {
                check_timers(&p).map_err(|m| (e.node.span(), format!("{node}: {m}")))?;
                Some(InterfaceOspf::resolve(&p.over(&node_ospf), default_network))
            }
        };
        if let Some(o) = &ospf {
            if o.area.is_unspecified() && o.area_type != AreaType::Normal {
                return Err((
                    e.node.span(),
                    format!(
                        "{node}: the backbone (area 0.0.0.0) can only be normal, not {}",
                        o.area_type
                    ),
                ));
            }
            if let (Some(m), Some(i)) = (o.hello_multiplier, implementation) {
                fast_hellos_supported(i, m)
                    .map_err(|msg| (e.node.span(), format!("{node}: {msg}")))?;
            }
            if o.dead <= u32::from(o.hello) {
                return Err((
                    e.node.span(),
                    format!(
                        "{node}: OSPF dead interval {} must exceed hello {}",
                        o.dead, o.hello
                    ),
                ));
            }
            if let Some(OspfAuth::Simple { key }) = &o.auth {
                if key.len() > 8 {
                    return Err((
                        e.node.span(),
                        "a simple OSPF password has at most 8 bytes".into(),
                    ));
                }
            }
            let windows = o
                .auth
                .as_ref()
                .is_some_and(|a| a.keys().iter().any(OspfKey::has_windows));
            if windows && implementation == Some(Implementation::Frr) {
                return Err((
                    e.node.span(),
                    format!(
                        "{node}: FRR 8.4's ospfd keys have no send or accept windows; change its keys at run time (lab::frr::Frr::set_message_digest_key)"
                    ),
                ));
            }
        }
        if let Some(gw) = &e.gateway {
            if !addr.contains(*gw.get_ref()) || *gw.get_ref() == addr.ip() {
                return Err((
                    gw.span(),
                    format!("gateway {} is not a neighbour in {addr}", gw.get_ref()),
                ));
            }
        }
        Ok(Endpoint {
            node,
            ifname,
            addr,
            gateway: e.gateway.map(Spanned::into_inner),
            mtu: e.mtu,
            ospf,
        })
    }

    /// One type per area on every node (an interface without `area_type`
    /// is in a normal area).
    fn check_area_types(&self, topo: &Topology) -> Result<(), Fail> {
        for n in &topo.nodes {
            let mut seen: BTreeMap<Ipv4Addr, AreaType> = BTreeMap::new();
            for o in topo.interfaces(&n.name).filter_map(|e| e.ospf.as_ref()) {
                match seen.insert(o.area, o.area_type) {
                    Some(t) if t != o.area_type => {
                        return Err((
                            0..0,
                            format!(
                                "node {}: area {} is both {t} and {}; give all its interfaces one area_type",
                                n.name, o.area, o.area_type
                            ),
                        ))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn check_gateways(&self, topo: &Topology) -> Result<(), Fail> {
        for n in &topo.nodes {
            let gws = topo
                .interfaces(&n.name)
                .filter(|e| e.gateway.is_some())
                .count();
            if gws > 1 {
                return Err((
                    0..0,
                    format!("node {} has {gws} default gateways; give one", n.name),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[[node]]
name = "c"
role = "client"
[[node]]
name = "r"
role = "router"
implementation = "frr"
ospf = { hello = 1, dead = 4, priority = 1 }
[[node]]
name = "d1"
role = "director"
implementation = "bird"
vips = ["192.0.2.1"]
ospf = { priority = 0 }
[[node]]
name = "d2"
role = "director"
implementation = "frr"
vips = ["192.0.2.1"]
[[link]]
a = { node = "c", addr = "198.18.1.2/24", gateway = "198.18.1.1" }
b = { node = "r", addr = "198.18.1.1/24", ospf = false }
[[lan]]
name = "lan0"
members = [
  { node = "r", addr = "198.18.0.1/24" },
  { node = "d1", addr = "198.18.0.2/24", ospf = { cost = 5 } },
  { node = "d2", addr = "198.18.0.3/24" },
]
"#;

    fn fails_with(text: &str, line: usize, needle: &str) {
        match Topology::parse("x.toml", text) {
            Ok(_) => panic!("accepted a bad topology; wanted {needle}"),
            Err(e) => {
                let s = e.to_string();
                assert!(
                    s.starts_with(&format!("x.toml:{line}:")),
                    "wrong line in {s}"
                );
                assert!(s.contains(needle), "{s} lacks {needle}");
            }
        }
    }

    #[test]
    fn parses_and_resolves_ospf_settings() {
        let t = Topology::parse("t.toml", GOOD).expect("valid");
        assert_eq!(t.nodes.len(), 4);
        let r_ifs: Vec<_> = t.interfaces("r").collect();
        assert_eq!(r_ifs.len(), 2);
        assert_eq!(r_ifs[0].ifname, "eth0");
        assert!(r_ifs[0].ospf.is_none(), "ospf = false disables");
        let lan_r = r_ifs[1].ospf.as_ref().expect("ospf on");
        assert_eq!((lan_r.hello, lan_r.dead, lan_r.priority), (1, 4, 1));
        assert_eq!(lan_r.network, NetworkType::Broadcast);
        let d1 = t
            .interfaces("d1")
            .next()
            .and_then(|e| e.ospf.clone())
            .expect("d1");
        assert_eq!((d1.priority, d1.cost, d1.hello, d1.dead), (0, 5, 10, 40));
        assert_eq!(
            t.router_id(t.node("r").expect("r")),
            Some("198.18.0.1".parse().expect("ip"))
        );
        assert_eq!(t.vips(), vec!["192.0.2.1".parse::<Ipv4Addr>().expect("ip")]);
        assert!(!t.node("d1").expect("d1").http);
    }

    const KEYS: &str = r#"
name = "k"
[[node]]
name = "r"
role = "router"
implementation = "bird"
ospf = { hello = 1, dead = 4, auth = { type = "hmac-sha256", keys = [
  { key_id = 1, key = "old", send_until = 2026-12-05T10:00:00Z, accept_until = "2026-12-05T10:05:00Z" },
  { key_id = 2, key = "new", send_from = 2026-12-05T11:00:00+01:00 },
] } }
[[node]]
name = "d"
role = "director"
implementation = "anycastd"
vips = ["192.0.2.1"]
[[node]]
name = "f"
role = "router"
implementation = "frr"
[[link]]
a = { node = "r", addr = "198.18.2.0/31" }
b = { node = "d", addr = "198.18.2.1/31", ospf = { auth = { type = "hmac-sha256", keys = [
  { key_id = 1, key = "old", send_until = 2026-12-05T10:00:00Z, accept_until = 2026-12-05T10:05:00Z },
  { key_id = 2, key = "new", send_from = 2026-12-05T10:00:00Z },
] } } }
[[link]]
a = { node = "f", addr = "198.18.3.0/31", ospf = { auth = { type = "md5", keys = [{ key_id = 1, key = "a" }, { key_id = 2, key = "b" }] } } }
b = { node = "d", addr = "198.18.3.1/31", ospf = { auth = { type = "md5", key_id = 2, key = "b" } } }
"#;

    #[test]
    fn key_rollovers_reach_anycastd_bird_and_frr_configs() {
        // 2026-12-05T10:00:00Z.
        const T10: u64 = 1_796_464_800;
        let t = Topology::parse("k.toml", KEYS).expect("valid");
        let auth = |node: &str, n: usize| {
            t.interfaces(node)
                .nth(n)
                .and_then(|e| e.ospf.as_ref())
                .and_then(|o| o.auth.clone())
                .expect("auth")
        };
        let rollover = OspfAuth::HmacSha256 {
            keys: vec![
                OspfKey {
                    send_until: Some(T10),
                    accept_until: Some(T10 + 300),
                    ..OspfKey::new(1, "old")
                },
                OspfKey {
                    send_from: Some(T10),
                    ..OspfKey::new(2, "new")
                },
            ],
        };
        // From the node's table (through serde's flatten) and from an
        // endpoint's (an untagged enum): the same keys.
        assert_eq!(auth("r", 0), rollover);
        assert_eq!(auth("d", 0), rollover);
        assert_eq!(
            auth("f", 0),
            OspfAuth::Md5 {
                keys: vec![OspfKey::new(1, "a"), OspfKey::new(2, "b")]
            }
        );

        let dir = Path::new("/x");
        let bird = crate::bird::Bird::new(dir).config(&t, t.node("r").expect("r"));
        assert!(bird.contains("      authentication cryptographic;\n      password \"old\" { id 1; generate to \"2026-12-05 10:00:00\"; accept to \"2026-12-05 10:05:00\"; algorithm hmac sha256; };\n      password \"new\" { id 2; generate from \"2026-12-05 10:00:00\"; algorithm hmac sha256; };\n"), "{bird}");
        let frr = crate::frr::Frr::new(dir).config(&t, t.node("f").expect("f"));
        assert!(
            frr.contains(
                " ip ospf message-digest-key 1 md5 a\n ip ospf message-digest-key 2 md5 b\n"
            ),
            "{frr}"
        );
        let d = crate::anycastd::Anycastd::new(dir).config(&t, t.node("d").expect("d"));
        assert!(d.contains("auth = { type = \"hmac-sha256\", keys = [\n  { key_id = 1, key = \"old\", send_until = 2026-12-05T10:00:00Z, accept_until = 2026-12-05T10:05:00Z },\n  { key_id = 2, key = \"new\", send_from = 2026-12-05T10:00:00Z },\n] }\n"), "{d}");
        assert!(
            d.contains("auth = { type = \"md5\", key_id = 2, key = \"b\" }\n"),
            "{d}"
        );
        d.parse::<toml::Table>()
            .expect("the anycastd config is TOML");

        // FRR 8.4 keys have no windows; a Key ID once per interface.
        let frr_windows = KEYS.replace(
            "[{ key_id = 1, key = \"a\" }",
            "[{ key_id = 1, key = \"a\", send_until = 2026-12-05T10:00:00Z }",
        );
        fails_with(
            &frr_windows,
            27,
            "FRR 8.4's ospfd keys have no send or accept windows",
        );
        fails_with(
            &KEYS.replace(
                "{ key_id = 2, key = \"b\" }]",
                "{ key_id = 1, key = \"b\" }]",
            ),
            27,
            "key_id 1 is listed twice",
        );
        fails_with(
            &KEYS.replace(
                "accept_until = \"2026-12-05T10:05:00Z\"",
                "accept_until = \"2026-12-05T09:05:00Z\", accept_from = 2026-12-05T09:30:00Z",
            ),
            7,
            "accept_until must be later than accept_from",
        );
        fails_with(
            &KEYS.replace(
                "send_from = 2026-12-05T11:00:00+01:00",
                "send_from = 2026-12-05T11:00:00",
            ),
            7,
            "give a date, a time and a UTC offset",
        );
    }

    #[test]
    fn unknown_node_in_link() {
        let bad = GOOD.replace(r#"{ node = "d2", addr"#, r#"{ node = "d9", addr"#);
        fails_with(&bad, 30, "unknown node d9");
    }

    #[test]
    fn duplicate_address() {
        let bad = GOOD.replace("198.18.0.3/24", "198.18.0.2/24");
        fails_with(&bad, 30, "duplicate address 198.18.0.2 (also on d1)");
    }

    #[test]
    fn missing_implementation() {
        let bad = GOOD.replace("implementation = \"bird\"\n", "");
        fails_with(&bad, 12, "director d1 needs an implementation");
    }

    #[test]
    fn address_outside_lab_ranges() {
        let bad = GOOD.replace("198.18.1.2/24", "10.0.0.2/24");
        fails_with(&bad, 23, "outside the lab's link ranges");
        let bad = GOOD.replace("vips = [\"192.0.2.1\"]\nospf", "vips = [\"8.8.8.8\"]\nospf");
        fails_with(&bad, 15, "VIP 8.8.8.8 is outside");
    }

    #[test]
    fn unknown_key_and_bad_syntax_point_at_their_line() {
        let bad = GOOD.replace("role = \"client\"", "role = \"client\"\ncolour = 1");
        fails_with(&bad, 6, "unknown field `colour`");
        let bad = GOOD.replace("role = \"client\"", "role = \"cliant\"");
        fails_with(&bad, 5, "unknown variant `cliant`");
    }

    #[test]
    fn gateway_and_subnet_checks() {
        let bad = GOOD.replace("gateway = \"198.18.1.1\"", "gateway = \"198.18.9.1\"");
        fails_with(&bad, 23, "gateway 198.18.9.1 is not a neighbour");
        let bad = GOOD.replace("198.18.0.3/24", "198.18.5.3/24");
        fails_with(&bad, 30, "not in LAN lan0's subnet");
    }

    #[test]
    fn external_routes_on_routers_only_and_in_range() {
        let router = "ospf = { hello = 1, dead = 4, priority = 1 }\n";
        let with = |n: &str| GOOD.replacen(router, &format!("{router}external_routes = {n}\n"), 1);
        let t = Topology::parse("t.toml", &with("65000")).expect("valid");
        let r = t.node("r").expect("r");
        assert_eq!(r.external_routes, 65_000);
        let p: Vec<Ipv4Network> = r.external_prefixes().collect();
        assert_eq!(p.len(), 65_000);
        assert_eq!(p[0].to_string(), "198.19.0.0/32");
        assert_eq!(p[257].to_string(), "198.19.1.1/32");
        assert!(p.iter().all(|x| external_range().contains(x.ip())));
        assert_eq!(t.node("d1").expect("d1").external_routes, 0);
        fails_with(&with("65001"), 11, "must be 0 to 65000");
        fails_with(&with("-1"), 11, "external_routes = -1: must be 0 to 65000");
        let director = "ospf = { priority = 0 }\n";
        let bad = GOOD.replacen(director, &format!("{director}external_routes = 10\n"), 1);
        fails_with(&bad, 17, "only routers originate external routes");
        // A link inside the routes' range would be shadowed by them.
        let bad = with("10").replace("198.18.1.2/24", "198.19.1.2/24");
        fails_with(&bad, 24, "overlaps 198.19.0.0/16, the external routes of r");
        // Without external routes that address is an ordinary link address.
        Topology::parse("t.toml", &GOOD.replace("198.18.1.", "198.19.1.")).expect("valid");
    }

    #[test]
    fn fast_hellos_per_node_and_per_interface() {
        let router = "ospf = { hello = 1, dead = 4, priority = 1 }";
        let fast = GOOD.replace(router, "ospf = { hello_multiplier = 4, priority = 1 }");
        let t = Topology::parse("t.toml", &fast).expect("valid");
        let r = t
            .interfaces("r")
            .nth(1)
            .and_then(|e| e.ospf.clone())
            .expect("r");
        assert_eq!((r.hello, r.dead, r.hello_multiplier), (0, 1, Some(4)));
        assert_eq!(r.priority, 1);
        // An interface's hello/dead replace the node's multiplier, and its
        // multiplier replaces the node's hello/dead.
        let lan_r = r#"{ node = "r", addr = "198.18.0.1/24" }"#;
        let t = Topology::parse(
            "t.toml",
            &fast.replace(
                lan_r,
                r#"{ node = "r", addr = "198.18.0.1/24", ospf = { dead = 30 } }"#,
            ),
        )
        .expect("valid");
        let r = t
            .interfaces("r")
            .nth(1)
            .and_then(|e| e.ospf.clone())
            .expect("r");
        assert_eq!((r.hello, r.dead, r.hello_multiplier), (10, 30, None));
        let t = Topology::parse(
            "t.toml",
            &GOOD.replace(
                lan_r,
                r#"{ node = "r", addr = "198.18.0.1/24", ospf = { hello_multiplier = 10 } }"#,
            ),
        )
        .expect("valid");
        let r = t
            .interfaces("r")
            .nth(1)
            .and_then(|e| e.ospf.clone())
            .expect("r");
        assert_eq!((r.hello, r.dead, r.hello_multiplier), (0, 1, Some(10)));

        fails_with(
            &GOOD.replace(router, "ospf = { hello = 1, hello_multiplier = 4 }"),
            10,
            "r: hello_multiplier replaces hello and dead",
        );
        fails_with(
            &GOOD.replace(router, "ospf = { hello_multiplier = 0 }"),
            10,
            "hello_multiplier = 0: must be 1 to 20",
        );
        fails_with(
            &GOOD.replace(router, "ospf = { hello_multiplier = 300 }"),
            10,
            "u8",
        );
        // FRR 8.4's CLI takes 1-10; BIRD has no fast hellos.
        fails_with(
            &GOOD.replace(router, "ospf = { hello_multiplier = 12 }"),
            28,
            "FRR 8.4 takes 1 to 10",
        );
        fails_with(
            &GOOD.replace(
                "ospf = { priority = 0 }",
                "ospf = { priority = 0, hello_multiplier = 4 }",
            ),
            29,
            "d1: hello_multiplier: BIRD 2.0 has no fast hellos",
        );
        let anycastd = GOOD
            .replace(router, "ospf = { hello_multiplier = 4 }")
            .replace(
                "implementation = \"frr\"\nvips",
                "implementation = \"anycastd\"\nospf = { hello_multiplier = 20 }\nvips",
            );
        let t = Topology::parse("t.toml", &anycastd).expect("valid");
        let d2 = t
            .interfaces("d2")
            .next()
            .and_then(|e| e.ospf.clone())
            .expect("d2");
        assert_eq!(d2.hello_multiplier, Some(20));
    }

    #[test]
    fn services_on_anycastd_directors() {
        let director = "implementation = \"frr\"\nvips = [\"192.0.2.1\"]\n";
        let with = |extra: &str| {
            GOOD.replacen(
                director,
                &format!(
                    "implementation = \"anycastd\"\nvips = [\"192.0.2.1\", \"192.0.2.2\"]\n{extra}"
                ),
                1,
            )
        };
        let t = Topology::parse(
            "t.toml",
            &with(
                "drain = { cost_hold_ms = 500 }\nservices = [\n  { name = \"web\", vip = \"192.0.2.1\", interval_ms = 200, timeout_ms = 150, rise = 2, fall = 3, hold_down_ms = 1000 },\n  { name = \"ssh\", vip = \"192.0.2.2\", port = 22, check = \"tcp\" },\n]\n",
            ),
        )
        .expect("valid");
        let d2 = t.node("d2").expect("d2");
        assert_eq!(d2.services.len(), 2);
        let web = &d2.services[0];
        assert_eq!((web.port, web.check), (80, ServiceCheck::Http));
        assert_eq!(
            (
                web.interval_ms,
                web.timeout_ms,
                web.rise,
                web.fall,
                web.hold_down_ms
            ),
            (Some(200), Some(150), Some(2), Some(3), Some(1000))
        );
        assert_eq!(
            (d2.services[1].port, d2.services[1].check),
            (22, ServiceCheck::Tcp)
        );
        assert_eq!(d2.drain.as_ref().and_then(|d| d.cost_hold_ms), Some(500));
        assert!(t.node("d1").expect("d1").services.is_empty());

        let svc = |s: &str| with(&format!("services = [{{ {s} }}]\n"));
        fails_with(
            &svc("name = \"web\", vip = \"192.0.2.9\""),
            22,
            "service web: VIP 192.0.2.9 is not among d2's vips",
        );
        fails_with(
            &svc("name = \"web\", vip = \"192.0.2.1\", interval_ms = 100, timeout_ms = 150"),
            22,
            "timeout_ms (150) must not exceed interval_ms (100)",
        );
        fails_with(
            &svc("name = \"web\", vip = \"192.0.2.1\", check = \"tcp\", path = \"/\""),
            22,
            "path is for http checks",
        );
        fails_with(
            &svc("name = \"web\", vip = \"192.0.2.1\", fall = 0"),
            22,
            "rise and fall are at least 1",
        );
        fails_with(
            &svc("name = \"web\", vip = \"192.0.2.1\", retries = 2"),
            22,
            "unknown field `retries`",
        );
        fails_with(
            &svc("name = \"web\", vip = \"192.0.2.1\", check = \"icmp\""),
            22,
            "unknown variant `icmp`",
        );
        fails_with(
            &with("services = [\n { name = \"a\", vip = \"192.0.2.1\" },\n { name = \"b\", vip = \"192.0.2.1\" },\n]\n"),
            24,
            "d2 already has service a (192.0.2.1:80)",
        );
        // Only anycastd directors run services or drain.
        let frr = GOOD.replacen(
            director,
            &format!("{director}services = [{{ name = \"web\", vip = \"192.0.2.1\" }}]\n"),
            1,
        );
        fails_with(&frr, 22, "only anycastd directors run services");
        let frr = GOOD.replacen(
            director,
            &format!("{director}drain = {{ cost = 100 }}\n"),
            1,
        );
        fails_with(&frr, 22, "only anycastd directors drain");
    }

    #[test]
    fn area_types_render_for_every_implementation() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
        let stub =
            Topology::load(&dir.join("ospf-stub-frr.toml")).unwrap_or_else(|e| panic!("{e}"));
        let r1 = crate::frr::Frr::new(Path::new("/x")).config(&stub, stub.node("r1").expect("r1"));
        assert!(r1.contains(" area 0.0.0.1 stub no-summary\n"), "{r1}");
        assert!(!r1.contains(" area 0.0.0.0 "), "{r1}");
        let d1 = crate::anycastd::Anycastd::new(Path::new("/x"))
            .config(&stub, stub.node("d1").expect("d1"));
        assert!(
            d1.contains(
                "area = \"0.0.0.1\"\nnetwork = \"broadcast\"\narea_type = \"totally-stubby\"\n"
            ),
            "{d1}"
        );
        let nssa =
            Topology::load(&dir.join("ospf-nssa-bird.toml")).unwrap_or_else(|e| panic!("{e}"));
        let r1 =
            crate::bird::Bird::new(Path::new("/x")).config(&nssa, nssa.node("r1").expect("r1"));
        assert!(
            r1.contains("  area 0.0.0.1 {\n    nssa; summary yes; default nssa yes;\n"),
            "{r1}"
        );
        assert!(r1.contains("  area 0.0.0.0 {\n    interface"), "{r1}");
        assert!(
            r1.contains("export where source ~ [ RTS_OSPF, RTS_OSPF_IA ];"),
            "{r1}"
        );
        // One type per area on a node (another node may disagree: that is
        // a mismatch the lab must be able to build); the backbone only
        // normal.
        let text = std::fs::read_to_string(dir.join("ospf-stub-frr.toml")).expect("read");
        let r1_link = "{ node = \"r1\", addr = \"198.18.2.1/31\" }";
        let mixed = text.replacen(
            r1_link,
            "{ node = \"r1\", addr = \"198.18.2.1/31\", ospf = { area = \"0.0.0.1\" } }",
            1,
        );
        assert_ne!(mixed, text);
        let e = Topology::parse("t.toml", &mixed)
            .expect_err("two types")
            .to_string();
        assert!(e.contains("area 0.0.0.1 is both"), "{e}");
        let backbone = text.replacen(
            "{ node = \"r1\", addr = \"198.18.2.1/31\" }",
            "{ node = \"r1\", addr = \"198.18.2.1/31\", ospf = { area_type = \"stub\" } }",
            1,
        );
        assert_ne!(backbone, text);
        let e = Topology::parse("t.toml", &backbone)
            .expect_err("stub backbone")
            .to_string();
        assert!(
            e.contains("the backbone (area 0.0.0.0) can only be normal"),
            "{e}"
        );
    }

    #[test]
    fn shipped_topologies_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("topologies dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                Topology::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(
            seen >= 2,
            "expected the shipped topologies in {}",
            dir.display()
        );
    }
}
