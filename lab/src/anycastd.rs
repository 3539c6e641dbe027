//! anycastd directors in the lab: a daemon config generated from the
//! topology, the daemon started in the node's namespace, and its view read
//! over its control socket.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::netns;
use crate::topology::{NetworkType, Node, OspfAuth, Topology};
use crate::{LsaId, OspfNeighbor};

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
        let _ = writeln!(c, "\n[ospf]");
        for e in topo.interfaces(&node.name) {
            let Some(o) = &e.ospf else { continue };
            let _ = writeln!(c, "\n[[ospf.interface]]\nname = {}", quote(&e.ifname));
            let network = match o.network {
                NetworkType::Broadcast => "broadcast",
                NetworkType::PointToPoint => "point-to-point",
            };
            let _ = writeln!(c, "area = \"{}\"\nnetwork = \"{network}\"", o.area);
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
                Some(OspfAuth::Md5 { key_id, key }) => {
                    let _ = writeln!(
                        c,
                        "auth = {{ type = \"md5\", key_id = {key_id}, key = {} }}",
                        quote(key)
                    );
                }
                Some(OspfAuth::HmacSha256 { key_id, key }) => {
                    let _ = writeln!(
                        c,
                        "auth = {{ type = \"hmac-sha256\", key_id = {key_id}, key = {} }}",
                        quote(key)
                    );
                }
            }
        }
        for vip in &node.vips {
            let _ = writeln!(c, "\n[[vip]]\naddress = \"{vip}\"");
        }
        c
    }

    /// Writes the config and starts `anycastd run` in namespace `ns`.
    pub fn start(
        &self,
        ns: &Path,
        helper: &Path,
        topo: &Topology,
        node: &Node,
    ) -> io::Result<Child> {
        std::fs::create_dir_all(&self.dir)?;
        let conf = self.dir.join("anycastd.toml");
        std::fs::write(&conf, self.config(topo, node))?;
        let log = std::fs::File::create(self.dir.join("anycastd.log"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
