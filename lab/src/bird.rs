//! BIRD 2.0 instances, one per lab node.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipnetwork::Ipv4Network;

use crate::netns;
use crate::topology::{
    fast_hellos_supported, AreaType, Implementation, NetworkType, Node, OspfAuth, OspfKey, Role,
    Topology, EXTERNAL_ROUTE_RANGE,
};
use crate::{LsaId, OspfNeighbor, RouterLsaView};

const BIRD: &str = "/usr/sbin/bird";
const BIRDC: &str = "/usr/sbin/birdc";

#[derive(Debug, Clone)]
pub struct Bird {
    pub dir: PathBuf,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A BIRD 2.0 `password` block: BIRD sends with the valid key whose
/// `generate from` is the latest and accepts a Key ID while its `accept`
/// window holds. BIRD 2.0.12 reads times as "yyyy-mm-dd hh:mm:ss" in local
/// time; the lab runs it with TZ=UTC and writes UTC.
fn password(k: &OspfKey, algorithm: &str) -> String {
    let mut p = format!("password {} {{ id {};", quote(&k.key), k.key_id);
    for (what, t) in [
        ("generate from", k.send_from),
        ("generate to", k.send_until),
        ("accept from", k.accept_from),
        ("accept to", k.accept_until),
    ] {
        if let Some(t) = t {
            let (y, mo, d, h, mi, s) = ospf::auth::utc_from_unix_secs(t);
            let _ = write!(
                p,
                " {what} \"{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}\";"
            );
        }
    }
    let _ = write!(p, " algorithm {algorithm}; }};");
    p
}

impl Bird {
    pub fn new(dir: &Path) -> Bird {
        Bird {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ctl(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    pub fn config(&self, topo: &Topology, node: &Node) -> String {
        let mut c = String::new();
        let _ = writeln!(
            c,
            "log {} all;",
            quote(&self.dir.join("bird.log").display().to_string())
        );
        if let Some(rid) = topo.router_id(node) {
            let _ = writeln!(c, "router id {rid};");
        }
        let _ = writeln!(c, "protocol device {{ scan time 10; }}");
        // The lab's external routes: blackholes in the kernel, learned as
        // alien routes and preferred over OSPF routes to the same
        // prefixes (as FRR prefers kernel routes).
        let externals = format!("source = RTS_INHERIT && net ~ [ {EXTERNAL_ROUTE_RANGE}+ ]");
        if node.role == Role::Router {
            // Only OSPF routes go to the kernel, intra- and inter-area (a
            // backbone router reaches VIPs of other areas through an area
            // border router), so the FIB shows the ECMP nexthops the
            // router computed.
            let (learn, import) = if node.external_routes > 0 {
                (
                    "  learn;\n",
                    format!("preference 200; import where {externals};"),
                )
            } else {
                ("", "import none;".to_string())
            };
            let _ = writeln!(
                c,
                "protocol kernel {{\n{learn}  ipv4 {{ {import} export where source ~ [ RTS_OSPF, RTS_OSPF_IA ]; }};\n}}"
            );
        }
        // Group interfaces by area, as BIRD's config wants.
        let areas = topo.ospf_areas(&node.name);
        // Learned externals leave as AS-external LSAs (type 5, E2).
        let export = if node.external_routes > 0 {
            format!("export where {externals};")
        } else {
            "export none;".to_string()
        };
        let _ = writeln!(
            c,
            "protocol ospf v2 {{\n  ecmp yes;\n  ipv4 {{ import all; {export} }};"
        );
        for (area, area_type) in areas {
            let _ = writeln!(c, "  area {area} {{");
            // As an area border router: a stub area gets summaries and a
            // default, a totally stubby one the default only; an NSSA gets
            // summaries and a type-7 default.
            match area_type {
                AreaType::Normal => {}
                AreaType::Stub => {
                    let _ = writeln!(c, "    stub yes; summary yes;");
                }
                AreaType::TotallyStubby => {
                    let _ = writeln!(c, "    stub yes; summary no;");
                }
                AreaType::Nssa => {
                    let _ = writeln!(c, "    nssa; summary yes; default nssa yes;");
                }
            }
            for e in topo.interfaces(&node.name) {
                let Some(o) = e
                    .ospf
                    .as_ref()
                    .filter(|o| (o.area, o.area_type) == (area, area_type))
                else {
                    continue;
                };
                let kind = match o.network {
                    NetworkType::Broadcast => "broadcast",
                    NetworkType::PointToPoint => "ptp",
                };
                let _ = writeln!(
                    c,
                    "    interface {} {{\n      type {kind}; hello {}; dead {}; priority {}; cost {}; retransmit {};",
                    quote(&e.ifname),
                    o.hello,
                    o.dead,
                    o.priority,
                    o.cost,
                    o.retransmit
                );
                match &o.auth {
                    None => {}
                    Some(OspfAuth::Simple { key }) => {
                        let _ =
                            writeln!(c, "      authentication simple; password {};", quote(key));
                    }
                    Some(a @ (OspfAuth::Md5 { keys } | OspfAuth::HmacSha256 { keys })) => {
                        let algorithm = match a {
                            OspfAuth::Md5 { .. } => "keyed md5",
                            _ => "hmac sha256",
                        };
                        let _ = writeln!(c, "      authentication cryptographic;");
                        for k in keys {
                            let _ = writeln!(c, "      {}", password(k, algorithm));
                        }
                    }
                }
                let _ = writeln!(c, "    }};");
            }
            if node.role == Role::Director {
                // Advertise only the VIP /32s of lo, never 127.0.0.0/8.
                for vip in &node.vips {
                    let _ = writeln!(c, "    interface \"lo\" {vip}/32 {{ stub yes; }};");
                }
            }
            let _ = writeln!(c, "  }};");
        }
        let _ = writeln!(c, "}}");
        c
    }

    pub fn start(&self, ns: &Path, topo: &Topology, node: &Node) -> io::Result<()> {
        // Topology files are checked when parsed; this catches topologies
        // changed in code (say a director switched to BIRD).
        for e in topo.interfaces(&node.name) {
            if let Some(m) = e.ospf.as_ref().and_then(|o| o.hello_multiplier) {
                if let Err(msg) = fast_hellos_supported(Implementation::Bird, m) {
                    return Err(io::Error::other(format!(
                        "{} {}: {msg}",
                        node.name, e.ifname
                    )));
                }
            }
        }
        std::fs::create_dir_all(&self.dir)?;
        let conf = self.dir.join("bird.conf");
        std::fs::write(&conf, self.config(topo, node))?;
        let out = netns::command(ns, BIRD)?
            // Key windows are written in UTC (see `password`).
            .env("TZ", "UTC")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(self.ctl())
            .arg("-P")
            .arg(self.dir.join("bird.pid"))
            .output()
            .map_err(|e| {
                io::Error::other(format!(
                    "start {BIRD}: {e} (is the bird2 package installed?)"
                ))
            })?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "bird failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Writes the config generated from `topo` (say with new keys) over
    /// the running one and has BIRD load it (`birdc configure`); BIRD
    /// applies changed OSPF passwords without restarting adjacencies.
    pub fn configure(&self, topo: &Topology, node: &Node) -> io::Result<()> {
        std::fs::write(self.dir.join("bird.conf"), self.config(topo, node))?;
        let out = self.birdc("configure")?;
        if !out.contains("Reconfigured") && !out.contains("Reconfiguration in progress") {
            return Err(io::Error::other(format!("birdc configure: {}", out.trim())));
        }
        Ok(())
    }

    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("bird.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn birdc(&self, cmd: &str) -> io::Result<String> {
        let out = Command::new(BIRDC)
            .arg("-s")
            .arg(self.ctl())
            .args(cmd.split_whitespace())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "birdc {cmd}: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn neighbors(&self) -> io::Result<Vec<OspfNeighbor>> {
        Ok(parse_neighbors(&self.birdc("show ospf neighbors")?))
    }

    /// Every LSA of `birdc show ospf lsadb`.
    pub fn database(&self) -> io::Result<Vec<LsaId>> {
        Ok(parse_lsadb(&self.birdc("show ospf lsadb")?))
    }

    /// The Router-LSA of `router_id`: its sequence number and age from
    /// `show ospf lsadb router ID`, its stub links from `show ospf state
    /// all`.
    pub fn router_lsa(&self, router_id: std::net::Ipv4Addr) -> io::Result<Option<RouterLsaView>> {
        let rows = self.birdc(&format!("show ospf lsadb router {router_id}"))?;
        let Some((lsa, age)) = parse_lsadb_ages(&rows)
            .into_iter()
            .find(|(l, _)| l.lsa_type == 1 && l.link_state_id == router_id)
        else {
            return Ok(None);
        };
        Ok(Some(RouterLsaView {
            sequence: lsa.sequence,
            age,
            stubs: parse_state_stubnets(&self.birdc("show ospf state all")?, router_id),
        }))
    }

    /// "Number of LSAs in DB" of `birdc show ospf` (cheap).
    pub fn lsa_count(&self) -> io::Result<usize> {
        let text = self.birdc("show ospf")?;
        parse_lsa_count(&text)
            .ok_or_else(|| io::Error::other(format!("no LSA count in birdc show ospf: {text}")))
    }
}

/// Parses `birdc show ospf lsadb`. Rows look like
/// ` 0005  198.19.0.0      198.18.0.1       80000001     3    5394`
/// (type, LS ID, router, sequence, age, checksum; hex where BIRD prints it).
pub fn parse_lsadb(text: &str) -> Vec<LsaId> {
    parse_lsadb_ages(text).into_iter().map(|(l, _)| l).collect()
}

/// [`parse_lsadb`] with each LSA's LS age.
pub fn parse_lsadb_ages(text: &str) -> Vec<(LsaId, u16)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [t, id, rt, seq, age, _sum] = f.as_slice() else {
                return None;
            };
            let lsa = LsaId {
                lsa_type: u8::try_from(u16::from_str_radix(t, 16).ok()?).ok()?,
                link_state_id: id.parse().ok()?,
                advertising_router: rt.parse().ok()?,
                sequence: u32::from_str_radix(seq, 16).ok()?,
            };
            Some((lsa, age.parse().ok()?))
        })
        .collect()
}

/// The `stubnet` lines of router `router_id` in `birdc show ospf state
/// all`: each vertex's block starts one tab in (`router ID`, `network
/// PREFIX`), its lines two tabs in (`stubnet PREFIX metric N`).
pub fn parse_state_stubnets(text: &str, router_id: std::net::Ipv4Addr) -> Vec<Ipv4Network> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let depth = line.chars().take_while(|c| *c == '\t').count();
        let f: Vec<&str> = line.split_whitespace().collect();
        match (depth, f.as_slice()) {
            (1, ["router", id]) => inside = id.parse() == Ok(router_id),
            (0 | 1, [_, ..]) => inside = false,
            (2, ["stubnet", prefix, ..]) if inside => {
                out.extend(prefix.parse::<Ipv4Network>().ok())
            }
            _ => {}
        }
    }
    out
}

/// The total of "Number of LSAs in DB" lines of `birdc show ospf`.
pub fn parse_lsa_count(text: &str) -> Option<usize> {
    let counts: Vec<usize> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Number of LSAs in DB:"))
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// Parses `birdc show ospf neighbors`. Rows look like
/// `198.18.0.1  1  Full/DR  3.823  eth0  198.18.0.1`.
pub fn parse_neighbors(text: &str) -> Vec<OspfNeighbor> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [rid, _pri, state, dtime, ifname, addr] = f.as_slice() else {
                return None;
            };
            let (state, role) = match state.split_once('/') {
                Some((s, r)) => (s.to_string(), Some(r.to_string())),
                None => (state.to_string(), None),
            };
            Some(OspfNeighbor {
                router_id: rid.parse().ok()?,
                state,
                role,
                address: addr.parse().ok()?,
                ifname: ifname.to_string(),
                dead_ms: dtime.parse::<f64>().ok().map(|s| (s * 1000.0) as u64),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_birdc_neighbors() {
        // As printed by BIRD 2.0.12 in the lab.
        let text = "BIRD 2.0.12 ready.\nospf1:\nRouter ID   \tPri\t     State     \tDTime\tInterface  Router IP\n\
            198.18.0.1  \t  1\tFull/DR   \t 3.823\teth0       198.18.0.1\n\
            198.18.0.3  \t  0\t2-Way/Other\t 3.880\teth0       198.18.0.3\n";
        let n = parse_neighbors(text);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].state, "Full");
        assert_eq!(n[0].role.as_deref(), Some("DR"));
        assert_eq!(n[0].dead_ms, Some(3823));
        assert_eq!(n[1].router_id.to_string(), "198.18.0.3");
        assert_eq!(n[1].state, "2-Way");
        assert!(parse_neighbors("BIRD 2.0.12 ready.\n").is_empty());
    }

    #[test]
    fn parses_birdc_lsadb_and_count() {
        // As printed by BIRD 2.0.12 in the lab (trimmed).
        let text = "BIRD 2.0.12 ready.\n\nGlobal\n\n Type   LS ID           Router          Sequence   Age  Checksum\n\
            \x200005  198.19.0.0      198.18.0.1       80000001     3    5394\n\
            \nArea 0.0.0.0\n\n Type   LS ID           Router          Sequence   Age  Checksum\n\
            \x200001  198.18.0.11     198.18.0.11      80000002     0    bbff\n";
        let db = parse_lsadb(text);
        assert_eq!(db.len(), 2);
        assert_eq!(db[0].lsa_type, 5);
        assert_eq!(db[0].link_state_id.to_string(), "198.19.0.0");
        assert_eq!(db[0].advertising_router.to_string(), "198.18.0.1");
        assert_eq!(db[1].sequence, 0x8000_0002);
        assert_eq!(parse_lsadb_ages(text)[0].1, 3);
        let show = "BIRD 2.0.12 ready.\nospf1:\nNumber of areas: 1\nNumber of LSAs in DB:\t20002\n\tArea: 0.0.0.0 (0) [BACKBONE]\n";
        assert_eq!(parse_lsa_count(show), Some(20_002));
        assert_eq!(parse_lsa_count("BIRD 2.0.12 ready.\n"), None);
    }
    #[test]
    fn parses_birdc_state_stubnets() {
        // As printed by BIRD 2.0.12 in the lab (trimmed).
        let text = "BIRD 2.0.12 ready.\n\narea 0.0.0.0\n\n\trouter 198.18.0.1\n\t\tdistance 0\n\
            \t\tnetwork 198.18.0.0/24 metric 10\n\n\trouter 198.18.0.11\n\t\tdistance 10\n\
            \t\tnetwork 198.18.0.0/24 metric 10\n\t\tstubnet 192.0.2.10/32 metric 0\n\n\
            \trouter 198.18.0.12\n\t\tdistance 10\n\t\tnetwork 198.18.0.0/24 metric 10\n\n\
            \tnetwork 198.18.0.0/24\n\t\tdr 198.18.0.1\n\t\tdistance 10\n\t\trouter 198.18.0.1\n\
            \t\trouter 198.18.0.11\n";
        let rid = |s: &str| s.parse().expect("ip");
        let vip: Ipv4Network = "192.0.2.10/32".parse().expect("prefix");
        assert_eq!(parse_state_stubnets(text, rid("198.18.0.11")), [vip]);
        assert!(parse_state_stubnets(text, rid("198.18.0.12")).is_empty());
        assert!(parse_state_stubnets(text, rid("198.18.0.1")).is_empty());
    }

    const ROUTER: &str = "name = \"t\"\n[[node]]\nname = \"r\"\nrole = \"router\"\n\
        implementation = \"IMPL\"\nexternal_routes = 100\n[[node]]\nname = \"d\"\n\
        role = \"director\"\nimplementation = \"IMPL\"\n[[link]]\n\
        a = { node = \"r\", addr = \"198.18.2.0/31\" }\nb = { node = \"d\", addr = \"198.18.2.1/31\" }\n";

    #[test]
    fn router_with_external_routes_learns_and_exports_them() {
        let t = Topology::parse("t.toml", &ROUTER.replace("IMPL", "bird")).expect("valid");
        let bird = Bird::new(Path::new("/x"));
        let r = bird.config(&t, t.node("r").expect("r"));
        let only = "source = RTS_INHERIT && net ~ [ 198.19.0.0/16+ ]";
        assert!(r.contains("  learn;\n"), "{r}");
        assert!(
            r.contains(&format!(
                "import where {only}; export where source ~ [ RTS_OSPF, RTS_OSPF_IA ];"
            )),
            "{r}"
        );
        assert!(
            r.contains(&format!("ipv4 {{ import all; export where {only}; }}")),
            "{r}"
        );
        let d = bird.config(&t, t.node("d").expect("d"));
        assert!(!d.contains("learn") && d.contains("export none;"), "{d}");
    }
}
