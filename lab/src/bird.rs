//! BIRD 2.0 instances, one per lab node.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::netns;
use crate::topology::{NetworkType, Node, OspfAuth, Role, Topology};
use crate::OspfNeighbor;

const BIRD: &str = "/usr/sbin/bird";
const BIRDC: &str = "/usr/sbin/birdc";

#[derive(Debug, Clone)]
pub struct Bird {
    pub dir: PathBuf,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
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
        if node.role == Role::Router {
            // Only OSPF routes go to the kernel, so the FIB shows the ECMP
            // nexthops the router computed.
            let _ = writeln!(
                c,
                "protocol kernel {{\n  ipv4 {{ import none; export where source = RTS_OSPF; }};\n}}"
            );
        }
        // Group interfaces by area, as BIRD's config wants.
        let mut areas: Vec<std::net::Ipv4Addr> = topo
            .interfaces(&node.name)
            .filter_map(|e| e.ospf.as_ref().map(|o| o.area))
            .collect();
        areas.sort();
        areas.dedup();
        let _ = writeln!(
            c,
            "protocol ospf v2 {{\n  ecmp yes;\n  ipv4 {{ import all; export none; }};"
        );
        for area in areas {
            let _ = writeln!(c, "  area {area} {{");
            for e in topo.interfaces(&node.name) {
                let Some(o) = e.ospf.as_ref().filter(|o| o.area == area) else {
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
                    Some(OspfAuth::Md5 { key_id, key }) => {
                        let _ = writeln!(
                            c,
                            "      authentication cryptographic; password {} {{ id {key_id}; algorithm keyed md5; }};",
                            quote(key)
                        );
                    }
                    Some(OspfAuth::HmacSha256 { key_id, key }) => {
                        let _ = writeln!(
                            c,
                            "      authentication cryptographic; password {} {{ id {key_id}; algorithm hmac sha256; }};",
                            quote(key)
                        );
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
        std::fs::create_dir_all(&self.dir)?;
        let conf = self.dir.join("bird.conf");
        std::fs::write(&conf, self.config(topo, node))?;
        let out = netns::command(ns, BIRD)?
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
}
