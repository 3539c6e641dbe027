//! VRRP nodes in the lab: keepalived (Debian's package, VRRP only) as the
//! reference peer, and the `[[vrrp]]` section of an anycastd director's
//! generated config, both from a node's `vrrp = { ... }` table.
//!
//! A VRRP node's virtual addresses live on its LAN interface while it is
//! master (not on lo, unlike anycast VIPs); the lab gives the other members
//! of that LAN an on-link route to them, so a client ARPs for the VIP and
//! follows whoever answers (and whoever sends gratuitous ARP).

use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde::Deserialize;

use crate::netns;
use crate::topology::{Implementation, Node, Topology};

/// A node's `vrrp` table: one virtual router.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSettings {
    pub vrid: u8,
    pub priority: u8,
    /// 3 (RFC 5798) unless given; 2 for RFC 3768.
    #[serde(default = "default_version")]
    pub version: u8,
    /// Advertisement interval; v2 takes whole seconds.
    #[serde(default = "default_advert_ms")]
    pub advert_ms: u64,
    /// The virtual addresses (in the lab's VIP ranges).
    pub addresses: Vec<Ipv4Addr>,
    #[serde(default = "default_true")]
    pub preempt: bool,
    pub preempt_delay_ms: Option<u64>,
    /// v2 PASS authentication.
    pub auth_pass: Option<String>,
    /// The interface VRRP runs on; the node's first LAN interface unless
    /// given.
    pub interface: Option<String>,
    /// anycastd only: an address whose unreachability (ARP probe) puts the
    /// instance in Fault.
    pub reference: Option<Ipv4Addr>,
    /// anycastd only: the reference probe's interval (100 ms unless given).
    pub reference_interval_ms: Option<u64>,
    /// Adverts go to these peers (unicast) instead of 224.0.0.18.
    #[serde(default)]
    pub unicast_peers: Vec<Ipv4Addr>,
    /// keepalived: `old_unicast_checksum` (224.0.0.18 in the v3 pseudo-
    /// header of unicast adverts); anycastd: accept and send such
    /// checksums.
    #[serde(default)]
    pub legacy_checksum: bool,
    /// anycastd only: its services whose state adjusts the priority, by
    /// name, with their weights (`track_service`).
    #[serde(default)]
    pub track_service: Vec<TrackService>,
    /// anycastd only: the IPVS connection sync daemon follows the state
    /// (`lvs_sync`, on the VRRP interface, sync id = VRID).
    #[serde(default)]
    pub lvs_sync: bool,
    /// anycastd only: while master, a gratuitous ARP this often.
    pub garp_refresh_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackService {
    pub name: String,
    pub weight: i16,
}

fn default_version() -> u8 {
    3
}
fn default_advert_ms() -> u64 {
    1000
}
fn default_true() -> bool {
    true
}

/// Checks a node's `vrrp` table; the message is the reason.
pub fn validate(
    v: &VrrpSettings,
    node: &str,
    implementation: Option<Implementation>,
) -> Result<(), String> {
    match implementation {
        Some(Implementation::Keepalived | Implementation::Anycastd) => {}
        _ => return Err(format!("vrrp: {node} runs neither keepalived nor anycastd")),
    }
    if v.vrid == 0 || v.priority == 0 {
        return Err("vrrp: vrid and priority are 1-255".into());
    }
    match v.version {
        3 if v.advert_ms >= 10 && v.advert_ms % 10 == 0 && v.advert_ms <= 40_950 => {}
        2 if v.advert_ms >= 1000 && v.advert_ms % 1000 == 0 && v.advert_ms <= 255_000 => {}
        3 => return Err("vrrp: v3 advert_ms is 10-40950 in steps of 10".into()),
        2 => return Err("vrrp: v2 advert_ms is whole seconds".into()),
        n => return Err(format!("vrrp: version {n}: 2 or 3")),
    }
    if v.addresses.is_empty() {
        return Err("vrrp: at least one address".into());
    }
    if v.auth_pass.as_ref().is_some_and(|p| p.len() > 8) {
        return Err("vrrp: auth_pass has at most 8 bytes".into());
    }
    if v.auth_pass.is_some() && v.version == 3 {
        return Err("vrrp: auth_pass needs version = 2".into());
    }
    if implementation == Some(Implementation::Keepalived) && v.reference.is_some() {
        return Err("vrrp: reference is anycastd's (keepalived would need a track script)".into());
    }
    Ok(())
}

/// The interface a node's VRRP runs on.
pub fn interface(topo: &Topology, node: &Node, v: &VrrpSettings) -> String {
    v.interface.clone().unwrap_or_else(|| {
        let lan_member = |ifname: &str| {
            topo.lans.iter().any(|l| {
                l.members
                    .iter()
                    .any(|m| m.node == node.name && m.ifname == ifname)
            })
        };
        topo.interfaces(&node.name)
            .map(|e| e.ifname.clone())
            .find(|i| lan_member(i))
            .unwrap_or_else(|| "eth0".into())
    })
}

/// On-link routes the other members of a VRRP node's LAN need to reach
/// its virtual addresses: (node, interface, address).
pub fn vip_routes(topo: &Topology) -> Vec<(String, String, Ipv4Addr)> {
    let mut out = Vec::new();
    for lan in &topo.lans {
        let vips: Vec<Ipv4Addr> = lan
            .members
            .iter()
            .filter_map(|m| topo.node(&m.node)?.vrrp.as_ref())
            .flat_map(|v| v.addresses.clone())
            .collect();
        for m in &lan.members {
            if topo.node(&m.node).is_some_and(|n| n.vrrp.is_none()) {
                for vip in &vips {
                    if !out.contains(&(m.node.clone(), m.ifname.clone(), *vip)) {
                        out.push((m.node.clone(), m.ifname.clone(), *vip));
                    }
                }
            }
        }
    }
    out
}

/// The `[[vrrp]]` table of an anycastd director's config. Its state is
/// written to `status_file` on every change.
pub fn anycastd_section(
    topo: &Topology,
    node: &Node,
    v: &VrrpSettings,
    status_file: &Path,
) -> String {
    let mut c = String::new();
    let addrs: Vec<String> = v.addresses.iter().map(|a| format!("\"{a}/32\"")).collect();
    let _ = writeln!(
        c,
        "\n[[vrrp]]\nname = \"VI_{vrid}\"\ninterface = \"{}\"\nvrid = {vrid}\npriority = {}\nversion = {}\nadvert_interval_ms = {}\naddresses = [{}]\npreempt = {}",
        interface(topo, node, v),
        v.priority,
        v.version,
        v.advert_ms,
        addrs.join(", "),
        v.preempt,
        vrid = v.vrid,
    );
    if let Some(d) = v.preempt_delay_ms {
        let _ = writeln!(c, "preempt_delay_ms = {d}");
    }
    if !v.unicast_peers.is_empty() {
        let peers: Vec<String> = v.unicast_peers.iter().map(|a| format!("\"{a}\"")).collect();
        let _ = writeln!(c, "unicast_peers = [{}]", peers.join(", "));
    }
    if v.legacy_checksum {
        let _ = writeln!(
            c,
            "accept_legacy_v3_checksum = true\nsend_legacy_unicast_checksum = true"
        );
    }
    if let Some(p) = &v.auth_pass {
        let _ = writeln!(c, "auth_pass = \"{p}\"");
    }
    if let Some(r) = v.reference {
        let ms = v.reference_interval_ms.unwrap_or(100);
        let _ = writeln!(
            c,
            "reference = {{ address = \"{r}\", method = \"arp\", interval_ms = {ms}, fall = 2, rise = 2 }}"
        );
    }
    let _ = writeln!(c, "status_file = \"{}\"", status_file.display());
    // Keys of [[vrrp]] itself before its sub-tables.
    if let Some(ms) = v.garp_refresh_ms {
        let _ = writeln!(c, "garp_refresh_ms = {ms}");
    }
    for t in &v.track_service {
        let _ = writeln!(
            c,
            "[[vrrp.track_service]]\nname = \"{}\"\nweight = {}",
            t.name, t.weight
        );
    }
    if v.lvs_sync {
        let _ = writeln!(c, "[vrrp.lvs_sync]");
    }
    c
}

/// A keepalived instance in a node's namespace.
#[derive(Debug, Clone)]
pub struct Keepalived {
    pub dir: PathBuf,
}

impl Keepalived {
    pub fn new(dir: &Path) -> Keepalived {
        Keepalived {
            dir: dir.to_path_buf(),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("keepalived.conf")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("keepalived.log")
    }

    /// Where the notify script writes the state (MASTER, BACKUP, FAULT,
    /// STOP).
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn pid_path(&self) -> PathBuf {
        self.dir.join("keepalived.pid")
    }

    /// keepalived.conf for one `vrrp_instance` on `ifname`.
    pub fn config(&self, router_id: &str, ifname: &str, v: &VrrpSettings) -> String {
        let mut c = String::new();
        let _ = writeln!(
            c,
            "global_defs {{\n  router_id {router_id}\n  script_user root\n  enable_script_security\n  vrrp_version {}\n}}\n",
            v.version
        );
        let _ = writeln!(c, "vrrp_instance VI_{} {{", v.vrid);
        let _ = writeln!(
            c,
            "  state BACKUP\n  interface {ifname}\n  virtual_router_id {}\n  priority {}",
            v.vrid, v.priority
        );
        let advert = if v.version == 2 {
            format!("{}", v.advert_ms / 1000)
        } else {
            format!("{}", v.advert_ms as f64 / 1000.0)
        };
        let _ = writeln!(c, "  advert_int {advert}");
        if !v.preempt {
            let _ = writeln!(c, "  nopreempt");
        }
        if let Some(d) = v.preempt_delay_ms {
            let _ = writeln!(c, "  preempt_delay {}", d as f64 / 1000.0);
        }
        if let Some(p) = &v.auth_pass {
            let _ = writeln!(
                c,
                "  authentication {{\n    auth_type PASS\n    auth_pass {p}\n  }}"
            );
        }
        if !v.unicast_peers.is_empty() {
            let _ = writeln!(c, "  unicast_peer {{");
            for p in &v.unicast_peers {
                let _ = writeln!(c, "    {p}");
            }
            let _ = writeln!(c, "  }}");
        }
        if v.legacy_checksum {
            let _ = writeln!(c, "  old_unicast_checksum");
        }
        let _ = writeln!(c, "  virtual_ipaddress {{");
        for a in &v.addresses {
            let _ = writeln!(c, "    {a}/32 dev {ifname}");
        }
        let _ = writeln!(
            c,
            "  }}\n  notify {}\n}}",
            self.dir.join("notify.sh").display()
        );
        c
    }

    /// Writes the config (generated from the node's `vrrp` table) and
    /// starts keepalived in namespace `ns`.
    pub fn start(&self, ns: &Path, topo: &Topology, node: &Node) -> io::Result<Child> {
        let v = node
            .vrrp
            .as_ref()
            .ok_or_else(|| io::Error::other(format!("{} has no vrrp table", node.name)))?;
        let rid = topo
            .router_id(node)
            .map_or_else(|| node.name.clone(), |r| r.to_string());
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(
            self.config_path(),
            self.config(&rid, &interface(topo, node, v), v),
        )?;
        self.spawn(ns)
    }

    /// Starts keepalived (VRRP only, in the foreground, logging to its log
    /// file) with the config file as it is now.
    pub fn spawn(&self, ns: &Path) -> io::Result<Child> {
        std::fs::create_dir_all(&self.dir)?;
        let notify = self.dir.join("notify.sh");
        std::fs::write(
            &notify,
            format!(
                "#!/bin/sh\n# keepalived notify: INSTANCE NAME STATE PRIORITY\necho \"$3\" > {}\n",
                self.state_path().display()
            ),
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&notify, std::fs::Permissions::from_mode(0o755))?;
        let _ = std::fs::remove_file(self.state_path());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let err = log.try_clone()?;
        let mut cmd = netns::command(ns, Path::new("/usr/sbin/keepalived"))?;
        cmd.arg("--dont-fork")
            .arg("--vrrp")
            .arg("--log-console")
            .arg("--log-detail")
            .arg("--no-syslog")
            .arg("--use-file")
            .arg(self.config_path())
            .arg("--pid")
            .arg(self.pid_path())
            .arg("--vrrp_pid")
            .arg(self.dir.join("vrrp.pid"))
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
        std::fs::write(self.dir.join("keepalived.spawned"), child.id().to_string())?;
        Ok(child)
    }

    /// The parent process's pid while it was started by the lab.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("keepalived.spawned"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The state keepalived last logged (MASTER, BACKUP, FAULT; STOP once
    /// it stopped). Read from its log rather than from the notify script's
    /// file: two scripts of quick successive changes may finish out of
    /// order.
    pub fn state(&self) -> Option<String> {
        let log = std::fs::read_to_string(self.log_path()).ok()?;
        log.lines().rev().find_map(|l| {
            if l.contains("Stopped Keepalived") {
                return Some("STOP".to_string());
            }
            let (_, rest) = l.split_once("Entering ")?;
            let (word, _) = rest.split_once(" STATE")?;
            Some(word.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_config_follows_the_table() {
        let v = VrrpSettings {
            vrid: 51,
            priority: 150,
            version: 2,
            advert_ms: 1000,
            addresses: vec![Ipv4Addr::new(192, 0, 2, 10)],
            preempt: false,
            preempt_delay_ms: None,
            auth_pass: Some("1111".into()),
            interface: None,
            reference: None,
            reference_interval_ms: None,
            unicast_peers: Vec::new(),
            legacy_checksum: false,
            track_service: Vec::new(),
            lvs_sync: false,
            garp_refresh_ms: None,
        };
        let k = Keepalived::new(Path::new("/run/x"));
        let c = k.config("198.18.0.2", "eth0", &v);
        for needle in [
            "vrrp_version 2",
            "virtual_router_id 51",
            "priority 150",
            "advert_int 1\n",
            "nopreempt",
            "auth_type PASS",
            "192.0.2.10/32 dev eth0",
            "notify /run/x/notify.sh",
        ] {
            assert!(c.contains(needle), "{needle} in\n{c}");
        }
        let v3 = VrrpSettings {
            version: 3,
            advert_ms: 100,
            auth_pass: None,
            preempt: true,
            ..v
        };
        let c = k.config("r", "eth0", &v3);
        assert!(
            c.contains("advert_int 0.1\n") && !c.contains("nopreempt"),
            "{c}"
        );
        assert!(validate(&v3, "k", Some(Implementation::Keepalived)).is_ok());
        assert!(validate(&v3, "k", Some(Implementation::Frr)).is_err());
    }
}
