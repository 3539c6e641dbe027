//! anycastd directors in the lab: a daemon config generated from the
//! topology, the daemon started in the node's namespace, and its view read
//! over its control socket.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::netns;
use crate::topology::{AreaType, NetworkType, Node, OspfAuth, OspfKey, Service, Topology};
use crate::{LsaId, OspfNeighbor};

/// The port of a lab director's metrics: the daemon's default
/// `metrics_listen` (127.0.0.1:9274), in its own namespace.
pub const METRICS_PORT: u16 = 9274;

/// A lab director's Prometheus metrics (its `/metrics` page), fetched
/// from inside its namespace `ns`.
pub fn metrics(ns: &Path) -> io::Result<String> {
    use std::io::Read;
    crate::netns::run_in(ns, || {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], METRICS_PORT));
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .ok_or_else(|| io::Error::other(format!("metrics: no HTTP body in {text:?}")))?;
        Ok(body)
    })
}

#[derive(Debug, Clone)]
pub struct Anycastd {
    pub dir: PathBuf,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Anycastd {
    pub fn new(dir: &Path) -> Anycastd {
        Anycastd {
            dir: dir.to_path_buf(),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("anycastd.sock")
    }

    pub fn config(&self, topo: &Topology, node: &Node) -> String {
        let mut c = String::new();
        if let Some(rid) = topo.router_id(node) {
            let _ = writeln!(c, "router_id = \"{rid}\"");
        }
        let _ = writeln!(
            c,
            "control_socket = {}",
            quote(&self.socket().display().to_string())
        );
        // Each director keeps its maintenance state in its own directory,
        // never in the host's /var/lib/anycastd.
        let _ = writeln!(
            c,
            "state_file = {}",
            quote(&self.dir.join("state.json").display().to_string())
        );
        let _ = writeln!(c, "\n[ospf]");
        for e in topo.interfaces(&node.name) {
            let Some(o) = &e.ospf else { continue };
            let _ = writeln!(c, "\n[[ospf.interface]]\nname = {}", quote(&e.ifname));
            let network = match o.network {
                NetworkType::Broadcast => "broadcast",
                NetworkType::PointToPoint => "point-to-point",
            };
            let _ = writeln!(c, "area = \"{}\"\nnetwork = \"{network}\"", o.area);
            if o.area_type != AreaType::Normal {
                let _ = writeln!(c, "area_type = \"{}\"", o.area_type);
            }
            match o.hello_multiplier {
                // Fast hellos: HelloInterval 0 on the wire, dead 1 s.
                Some(m) => {
                    let _ = writeln!(c, "hello_multiplier = {m}");
                }
                None => {
                    let _ = writeln!(c, "hello = {}\ndead = {}", o.hello, o.dead);
                }
            }
            let _ = writeln!(
                c,
                "retransmit = {}\npriority = {}\ncost = {}\nmtu_ignore = {}",
                o.retransmit, o.priority, o.cost, o.mtu_ignore
            );
            match &o.auth {
                None => {}
                Some(OspfAuth::Simple { key }) => {
                    let _ = writeln!(c, "auth = {{ type = \"simple\", key = {} }}", quote(key));
                }
                Some(a @ (OspfAuth::Md5 { keys } | OspfAuth::HmacSha256 { keys })) => {
                    let kind = match a {
                        OspfAuth::Md5 { .. } => "md5",
                        _ => "hmac-sha256",
                    };
                    c.push_str(&auth_keys(kind, keys));
                }
            }
        }
        // A director with services advertises what their health decides;
        // without services its VIPs are static (always advertised).
        if node.services.is_empty() {
            for vip in &node.vips {
                let _ = writeln!(c, "\n[[vip]]\naddress = \"{vip}\"");
            }
        }
        if let Some(d) = &node.drain {
            let _ = writeln!(c, "\n[drain]");
            if let Some(v) = d.cost {
                let _ = writeln!(c, "cost = {v}");
            }
            if let Some(v) = d.cost_hold_ms {
                let _ = writeln!(c, "cost_hold_ms = {v}");
            }
            if let Some(v) = d.deadline_s {
                let _ = writeln!(c, "deadline_s = {v}");
            }
        }
        for s in &node.services {
            c.push_str(&service_config(s));
        }
        if let Some(v) = &node.vrrp {
            let status = self.dir.join("vrrp.json");
            c.push_str(&crate::keepalived::anycastd_section(topo, node, v, &status));
        }
        c
    }

    /// The config file `anycastd run` reads (see [`Anycastd::start`]).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("anycastd.toml")
    }

    /// The log file the daemon writes (appended to across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("anycastd.log")
    }

    /// Writes the config generated from the topology and starts
    /// `anycastd run` in namespace `ns`.
    pub fn start(
        &self,
        ns: &Path,
        helper: &Path,
        topo: &Topology,
        node: &Node,
    ) -> io::Result<Child> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.config_path(), self.config(topo, node))?;
        self.spawn(ns, helper)
    }

    /// Starts `anycastd run` in namespace `ns` with the config file as it
    /// is now (a restart keeps what a test wrote there).
    pub fn spawn(&self, ns: &Path, helper: &Path) -> io::Result<Child> {
        let conf = self.config_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let err = log.try_clone()?;
        let mut cmd = netns::command(ns, helper)?;
        cmd.arg("run")
            .arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // SAFETY: setsid(2) is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                nix::unistd::setsid().map(|_| ()).map_err(io::Error::from)
            });
        }
        let child = cmd.spawn()?;
        std::fs::write(self.dir.join("anycastd.pid"), child.id().to_string())?;
        Ok(child)
    }

    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("anycastd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// `{"cmd":"status"}`: services, VIPs, drains and the daemon's recent
    /// events (each with a wall-clock `at_ms`).
    pub fn status(&self) -> io::Result<Value> {
        self.request(&serde_json::json!({"cmd": "status"}))
    }

    /// `{"cmd":"drain"}` of `vip` (every VIP when `None`); returns once
    /// the drain has started, like `anycastd drain --no-wait`.
    pub fn drain(&self, vip: Option<std::net::Ipv4Addr>) -> io::Result<Value> {
        self.request(&serde_json::json!({"cmd": "drain", "vip": vip}))
    }

    pub fn undrain(&self, vip: Option<std::net::Ipv4Addr>) -> io::Result<Value> {
        self.request(&serde_json::json!({"cmd": "undrain", "vip": vip}))
    }

    /// `{"cmd":"reload"}`: the daemon re-reads its config file; a rejected
    /// file is an error whose message names `file:line:column`.
    pub fn reload(&self) -> io::Result<Value> {
        self.request(&serde_json::json!({"cmd": "reload"}))
    }

    /// One request on the control socket.
    pub fn request(&self, req: &Value) -> io::Result<Value> {
        let mut stream = std::os::unix::net::UnixStream::connect(self.socket())?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        let mut line = req.to_string();
        line.push('\n');
        stream.write_all(line.as_bytes())?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply)?;
        let v: Value = serde_json::from_str(&reply)
            .map_err(|e| io::Error::other(format!("control reply: {e}")))?;
        match v.get("error").and_then(Value::as_str) {
            Some(e) => Err(io::Error::other(e.to_string())),
            None => Ok(v),
        }
    }

    pub fn neighbors(&self) -> io::Result<Vec<OspfNeighbor>> {
        let v = self.request(&serde_json::json!({"cmd": "show-ospf-neighbor"}))?;
        parse_neighbors(&v)
    }

    /// Every LSA of the control socket's `show-ospf-database`, read as
    /// the daemon streams it (one line per LSA, then `{"end": true,
    /// "count": N}`; see the daemon's src/control.rs).
    pub fn database(&self) -> io::Result<Vec<LsaId>> {
        let mut stream = std::os::unix::net::UnixStream::connect(self.socket())?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        stream.write_all(b"{\"cmd\":\"show-ospf-database\"}\n")?;
        read_database(BufReader::new(stream))
    }
}

fn service_config(s: &Service) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "\n[[service]]\nname = {}\nvip = \"{}\"\nport = {}",
        quote(&s.name),
        s.vip,
        s.port
    );
    if let Some(v) = s.hold_down_ms {
        let _ = writeln!(c, "hold_down_ms = {v}");
    }
    if let Some(v) = s.cost {
        let _ = writeln!(c, "cost = {v}");
    }
    if !s.servers.is_empty() {
        let _ = writeln!(c, "mode = \"ipvs\"");
        if let Some(v) = &s.scheduler {
            let _ = writeln!(c, "scheduler = {}", quote(v));
        }
        for a in &s.servers {
            let _ = writeln!(c, "[[service.server]]\naddress = \"{a}\"");
        }
    }
    let _ = writeln!(c, "[[service.check]]\ntype = \"{}\"", s.check.as_str());
    if let Some(p) = &s.path {
        let _ = writeln!(c, "path = {}", quote(p));
    }
    for (k, v) in [("interval_ms", s.interval_ms), ("timeout_ms", s.timeout_ms)] {
        if let Some(v) = v {
            let _ = writeln!(c, "{k} = {v}");
        }
    }
    for (k, v) in [("rise", s.rise), ("fall", s.fall)] {
        if let Some(v) = v {
            let _ = writeln!(c, "{k} = {v}");
        }
    }
    c
}

/// Lines of a daemon log (`text`) stamped at or after `since` that contain
/// `needle`, with their time stamps (ANSI colours removed).
pub fn log_lines_since(text: &str, since: SystemTime, needle: &str) -> Vec<(SystemTime, String)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.contains(needle)) {
        let clean = strip_ansi(line);
        let Some(at) = log_time(&clean) else {
            continue;
        };
        if at >= since {
            out.push((at, clean));
        }
    }
    out
}

/// The time stamp that starts a log line (ANSI colours removed first).
pub fn log_time(line: &str) -> Option<SystemTime> {
    line.split_whitespace().next().and_then(parse_utc)
}

/// `text` without ANSI colour sequences (tracing colours its output).
pub fn strip_ansi(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut esc = false;
    for c in text.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => clean.push(c),
        }
    }
    clean
}

/// `2026-11-22T12:40:05.123456Z` (tracing's UTC time stamps).
fn parse_utc(stamp: &str) -> Option<SystemTime> {
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
    );
    let sec = t.next()?.parse::<f64>().ok()?;
    // Days from 1970-01-01 to the date (the proleptic Gregorian calendar).
    let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + day - 719_469;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + min * 60;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_secs_f64(sec))
}

/// The daemon's recent events (`status` reply) at or after `since_ms`
/// (milliseconds since the Unix epoch), oldest first, as `(at_ms, what)`.
pub fn events_since(status: &Value, since_ms: u128) -> Vec<(u128, String)> {
    status
        .get("events")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|e| {
                    let at = e.get("at_ms").and_then(Value::as_u64).map(u128::from)?;
                    let what = e.get("what").and_then(Value::as_str)?;
                    (at >= since_ms).then(|| (at, what.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The cost `vip` is advertised at, per a `status` reply; `None` when it
/// is not advertised (or not configured).
pub fn advertised_cost(status: &Value, vip: std::net::Ipv4Addr) -> Option<u64> {
    let want = vip.to_string();
    status
        .get("vips")
        .and_then(Value::as_array)?
        .iter()
        .find(|v| v.get("vip").and_then(Value::as_str) == Some(want.as_str()))
        .filter(|v| v.get("advertised").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("cost").and_then(Value::as_u64))
}

/// Reads a streamed `show-ospf-database` reply.
pub fn read_database(reader: impl BufRead) -> io::Result<Vec<LsaId>> {
    let mut out = Vec::new();
    for line in reader.lines() {
        let v: Value = serde_json::from_str(&line?)
            .map_err(|e| io::Error::other(format!("control reply: {e}")))?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            return Err(io::Error::other(e.to_string()));
        }
        if v.get("end").and_then(Value::as_bool) == Some(true) {
            let count = v.get("count").and_then(Value::as_u64);
            if count != Some(out.len() as u64) {
                return Err(io::Error::other(format!(
                    "database reply ended after {} LSAs but says {count:?}",
                    out.len()
                )));
            }
            return Ok(out);
        }
        out.push(parse_lsa(&v)?);
    }
    Err(io::Error::other(format!(
        "database reply ended after {} LSAs without its end line",
        out.len()
    )))
}

/// Parses a list of the control socket's LSA rows (as `anycastd show ospf
/// database --json` prints them): objects with `type`, `link_state_id`,
/// `advertising_router` and a hex `sequence`.
pub fn parse_database(v: &Value) -> io::Result<Vec<LsaId>> {
    let list = v
        .as_array()
        .ok_or_else(|| io::Error::other("LSA list is not an array"))?;
    list.iter().map(parse_lsa).collect()
}

/// One LSA row of `show-ospf-database`.
pub fn parse_lsa(l: &Value) -> io::Result<LsaId> {
    let bad = |what: &str| io::Error::other(format!("LSA {what}: {l}"));
    let s = |k: &str| l.get(k).and_then(Value::as_str).ok_or_else(|| bad(k));
    Ok(LsaId {
        lsa_type: l
            .get("type")
            .and_then(Value::as_u64)
            .and_then(|t| u8::try_from(t).ok())
            .ok_or_else(|| bad("type"))?,
        link_state_id: s("link_state_id")?
            .parse()
            .map_err(|_| bad("link_state_id"))?,
        advertising_router: s("advertising_router")?
            .parse()
            .map_err(|_| bad("advertising_router"))?,
        sequence: u32::from_str_radix(s("sequence")?, 16).map_err(|_| bad("sequence"))?,
    })
}

/// Parses the control socket's `show-ospf-neighbor` reply.
pub fn parse_neighbors(v: &Value) -> io::Result<Vec<OspfNeighbor>> {
    let list = v
        .as_array()
        .ok_or_else(|| io::Error::other("neighbour list is not an array"))?;
    let field = |n: &Value, k: &str| {
        n.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    list.iter()
        .map(|n| {
            let state = field(n, "state");
            let (state, role) = match state.split_once('/') {
                Some((s, r)) => (s.to_string(), Some(r.to_string())),
                None => (state, None),
            };
            Ok(OspfNeighbor {
                router_id: field(n, "router_id")
                    .parse()
                    .map_err(|e| io::Error::other(format!("router_id: {e}")))?,
                state,
                role,
                address: field(n, "address")
                    .parse()
                    .map_err(|e| io::Error::other(format!("address: {e}")))?,
                ifname: field(n, "interface"),
                dead_ms: n.get("dead_ms").and_then(Value::as_u64),
            })
        })
        .collect()
}

/// An `auth` line of anycastd's config: the single-key form for one key
/// without windows, else a `keys` list with TOML date-times (UTC).
fn auth_keys(kind: &str, keys: &[OspfKey]) -> String {
    if let [k] = keys {
        if !k.has_windows() {
            return format!(
                "auth = {{ type = \"{kind}\", key_id = {}, key = {} }}\n",
                k.key_id,
                quote(&k.key)
            );
        }
    }
    let mut out = format!("auth = {{ type = \"{kind}\", keys = [\n");
    for k in keys {
        let _ = write!(out, "  {{ key_id = {}, key = {}", k.key_id, quote(&k.key));
        for (name, t) in [
            ("send_from", k.send_from),
            ("send_until", k.send_until),
            ("accept_from", k.accept_from),
            ("accept_until", k.accept_until),
        ] {
            if let Some(t) = t {
                let _ = write!(out, ", {name} = {}", ospf::auth::format_utc(t));
            }
        }
        out.push_str(" },\n");
    }
    out.push_str("] }\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_picked_by_time_and_text() {
        let text = "\u{1b}[2m2026-11-22T12:40:05.250000Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m LSA originated seq=0x80000003\n\
                    2026-11-22T12:40:04.000000Z  INFO LSA originated seq=0x80000002\n\
                    2026-11-22T12:40:06.000000Z  INFO neighbor state\n\
                    garbage LSA originated\n";
        // 2026-11-22T12:40:05Z
        let since = UNIX_EPOCH + Duration::from_secs(1_795_351_205);
        let got = log_lines_since(text, since, "LSA originated");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, since + Duration::from_millis(250));
        assert!(got[0]
            .1
            .starts_with("2026-11-22T12:40:05.250000Z  INFO LSA originated"));
    }

    #[test]
    fn config_carries_fast_hellos() {
        let text = "name = \"t\"\n[[node]]\nname = \"r\"\nrole = \"router\"\nimplementation = \"frr\"\n\
            ospf = { hello_multiplier = 4 }\n[[node]]\nname = \"d\"\nrole = \"director\"\n\
            implementation = \"anycastd\"\nvips = [\"192.0.2.10\"]\nospf = { hello_multiplier = 4 }\n\
            [[link]]\na = { node = \"r\", addr = \"198.18.2.0/31\" }\n\
            b = { node = \"d\", addr = \"198.18.2.1/31\", ospf = { hello = 1, dead = 3 } }\n\
            [[link]]\na = { node = \"r\", addr = \"198.18.2.2/31\" }\n\
            b = { node = \"d\", addr = \"198.18.2.3/31\" }\n";
        let t = Topology::parse("t.toml", text).expect("valid");
        let c = Anycastd::new(Path::new("/x")).config(&t, t.node("d").expect("d"));
        let ifaces: Vec<&str> = c.split("[[ospf.interface]]").skip(1).collect();
        assert_eq!(ifaces.len(), 2, "{c}");
        assert!(ifaces[0].contains("\nhello = 1\ndead = 3\n"), "{c}");
        assert!(!ifaces[0].contains("hello_multiplier"), "{c}");
        assert!(ifaces[1].contains("\nhello_multiplier = 4\n"), "{c}");
        assert!(!ifaces[1].contains("\nhello ="), "{c}");
    }

    #[test]
    fn config_carries_services_and_drain() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/anycast-frr.toml");
        let t = Topology::load(&path).expect("valid");
        let c = Anycastd::new(Path::new("/x")).config(&t, t.node("d1").expect("d1"));
        // Services decide what is advertised: no static VIPs.
        assert!(!c.contains("[[vip]]"), "{c}");
        assert!(
            c.contains("\n[drain]\ncost_hold_ms = 500\ndeadline_s = 5\n"),
            "{c}"
        );
        assert!(
            c.contains(
                "\n[[service]]\nname = \"web\"\nvip = \"192.0.2.10\"\nport = 80\nhold_down_ms = 1000\n\
                 [[service.check]]\ntype = \"http\"\ninterval_ms = 200\ntimeout_ms = 150\nrise = 2\nfall = 3\n"
            ),
            "{c}"
        );
        // The generated file is TOML with the tables anycastd reads.
        let v: toml::Value = toml::from_str(&c).expect("TOML");
        assert_eq!(v["service"][0]["check"][0]["type"].as_str(), Some("http"));
        assert_eq!(v["drain"]["cost_hold_ms"].as_integer(), Some(500));
    }

    #[test]
    fn reads_status_events_and_costs() {
        let v = serde_json::json!({
            "vips": [{"vip": "192.0.2.10", "advertised": true, "cost": 10},
                     {"vip": "192.0.2.11", "advertised": false, "cost": null}],
            "events": [{"at_ms": 1000, "what": "old"}, {"at_ms": 2000, "what": "VIP withdrawn"}]
        });
        assert_eq!(
            advertised_cost(&v, "192.0.2.10".parse().expect("ip")),
            Some(10)
        );
        assert_eq!(advertised_cost(&v, "192.0.2.11".parse().expect("ip")), None);
        assert_eq!(advertised_cost(&v, "192.0.2.12".parse().expect("ip")), None);
        assert_eq!(
            events_since(&v, 1500),
            vec![(2000, "VIP withdrawn".to_string())]
        );
    }

    #[test]
    fn parses_control_socket_database() {
        // The shape of src/show.rs `lsa_json`.
        let v = serde_json::json!([
            {"area": "0.0.0.0", "type": 5, "link_state_id": "198.19.0.7",
             "advertising_router": "198.18.0.1", "age": 3, "sequence": "80000001",
             "checksum": "5394", "length": 36},
            {"area": "0.0.0.0", "type": 1, "link_state_id": "198.18.0.11",
             "advertising_router": "198.18.0.11", "age": 0, "sequence": "80000002",
             "checksum": "bbff", "length": 48}
        ]);
        let db = parse_database(&v).expect("parses");
        assert_eq!(db.len(), 2);
        assert_eq!(db[0].lsa_type, 5);
        assert_eq!(db[0].link_state_id.to_string(), "198.19.0.7");
        assert_eq!(db[1].sequence, 0x8000_0002);
        assert!(parse_database(&serde_json::json!({"error": "x"})).is_err());
        let bad = serde_json::json!([{"type": 1, "link_state_id": "x"}]);
        assert!(parse_database(&bad).is_err());
    }

    #[test]
    fn reads_the_streamed_database() {
        let row = r#"{"area":"0.0.0.0","type":5,"link_state_id":"198.19.0.7","advertising_router":"198.18.0.1","age":3,"sequence":"80000001","checksum":"5394","length":36}"#;
        let ok = format!("{row}\n{row}\n{{\"end\":true,\"count\":2}}\n");
        let db = read_database(ok.as_bytes()).expect("reads");
        assert_eq!(db.len(), 2);
        assert_eq!(db[1].link_state_id.to_string(), "198.19.0.7");
        let empty = read_database(&b"{\"end\":true,\"count\":0}\n"[..]).expect("empty");
        assert!(empty.is_empty());
        let cut = format!("{row}\n");
        assert!(read_database(cut.as_bytes()).is_err(), "no end line");
        let wrong = format!("{row}\n{{\"end\":true,\"count\":3}}\n");
        assert!(read_database(wrong.as_bytes()).is_err(), "count differs");
        let err = format!("{row}\n{{\"error\":\"speaker stopped\"}}\n");
        let e = read_database(err.as_bytes()).expect_err("error line");
        assert!(e.to_string().contains("speaker stopped"), "{e}");
    }
}
