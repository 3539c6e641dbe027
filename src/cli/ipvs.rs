//! `anycastd ipvs ...`: the kernel's IPVS table as anycastd sees it, one
//! reconcile of a config's `ipvs` services (mapped as the daemon maps them,
//! [`crate::daemon::ipvs::desired`]), and the programming benchmark.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use anycastd::ipvs::model::flags;
use anycastd::ipvs::reconcile::{self, Desired, Policy};
use anycastd::ipvs::sysctl;
use anycastd::ipvs::{
    Client, Dest, Forward, Protocol, Service, ServiceKey, SyncDaemon, SyncState, Timeouts,
    TunnelType,
};

use crate::config::Config;

#[derive(Subcommand)]
pub enum IpvsCommand {
    /// The kernel's table like `ipvsadm -Ln`, with each service's
    /// fingerprint (equal on directors that pick the same servers).
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Reconcile the kernel once with the `ipvs` services of a config file
    /// (every server at its configured weight), or with an IPVS table file
    /// (`--table`: any service the kernel has, IPv6, SCTP, fwmark, tunnels;
    /// see `cli_ipvs::TableFile`); prints the operations. Nothing is
    /// flushed; services not in the file are left alone.
    Apply {
        #[arg(
            long,
            short,
            required_unless_present = "table",
            conflicts_with = "table"
        )]
        config: Option<PathBuf>,
        #[arg(long)]
        table: Option<PathBuf>,
        /// Report hand-made destinations instead of removing them.
        #[arg(long)]
        report: bool,
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
    },
    /// Programs SERVICES x SERVERS through anycastd, then the same rules
    /// through `ipvsadm -R`, and prints both times (clears the table
    /// before each; run it in a throwaway VM: `anycastd-lab vm -- ...`).
    Bench {
        #[arg(long, default_value_t = 1000)]
        services: u32,
        #[arg(long, default_value_t = 10)]
        servers: u32,
    },
    /// The TCP, TCP FIN and UDP connection timeouts; `--set 900,120,300`
    /// changes them (0 keeps one).
    Timeouts {
        #[arg(long, value_parser = parse_timeouts)]
        set: Option<Timeouts>,
    },
    /// Zero the counters of every service.
    Zero,
    /// The connection sync daemons (multicast; master sends, backup
    /// receives).
    Sync {
        #[command(subcommand)]
        action: SyncAction,
    },
    /// The ECMP director sysctls (net.ipv4.vs.*): shown and verified, or
    /// set with `--set`.
    Sysctl {
        #[arg(long)]
        set: bool,
        /// Keep netfilter conntrack for IPVS flows (firewall/NAT rules).
        #[arg(long)]
        conntrack: bool,
    },
}

#[derive(Subcommand)]
pub enum SyncAction {
    Show,
    Start {
        #[arg(long, value_parser = parse_state)]
        state: SyncState,
        #[arg(long)]
        interface: String,
        #[arg(long, default_value_t = 0)]
        sync_id: u32,
        #[arg(long)]
        group: Option<IpAddr>,
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value_t = 0)]
        ttl: u8,
        #[arg(long, default_value_t = 0)]
        max_len: u16,
    },
    Stop {
        #[arg(long, value_parser = parse_state)]
        state: SyncState,
    },
}

fn parse_state(s: &str) -> Result<SyncState, String> {
    match s {
        "master" => Ok(SyncState::Master),
        "backup" => Ok(SyncState::Backup),
        _ => Err("master or backup".into()),
    }
}

fn parse_timeouts(s: &str) -> Result<Timeouts, String> {
    let v: Vec<u32> = s
        .split(',')
        .map(|x| x.trim().parse::<u32>().map_err(|e| format!("{x}: {e}")))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [tcp, tcp_fin, udp] => Ok(Timeouts { tcp, tcp_fin, udp }),
        _ => Err("three seconds values: TCP,TCPFIN,UDP".into()),
    }
}

/// The persistence netmask as ipvsadm prints it (`255.255.255.0`, or
/// `64` for IPv6).
fn netmask_text(s: &Service) -> String {
    if s.key.is_ipv6() {
        s.netmask.to_string()
    } else {
        std::net::Ipv4Addr::from(s.netmask).to_string()
    }
}

/// `gue:6080:+c` like `ipvsadm --tun-info`, or None when not tunnelled.
fn tunnel_text(f: Forward) -> Option<String> {
    let Forward::Tunnel { kind, port, flags } = f else {
        return None;
    };
    let csum = match flags {
        0 => "",
        1 => ":+c",
        _ => ":r+c",
    };
    Some(match kind {
        TunnelType::Ipip => "ipip".to_string(),
        TunnelType::Gue => format!("gue:{port}{csum}"),
        TunnelType::Gre => format!("gre{csum}"),
    })
}

fn dest_addr(d: &Dest) -> String {
    match d.addr {
        IpAddr::V4(a) => format!("{a}:{}", d.port),
        IpAddr::V6(a) => format!("[{a}]:{}", d.port),
    }
}

pub fn run(cmd: IpvsCommand) -> Result<()> {
    match cmd {
        IpvsCommand::Show { json } => show(json),
        IpvsCommand::Apply {
            config,
            table,
            report,
            dry_run,
        } => {
            let desired: Vec<Desired> = match (config, table) {
                (_, Some(t)) => load_table(&t)?,
                (Some(c), None) => {
                    let cfg = Config::load(&c).map_err(|e| anyhow::anyhow!("{e}"))?;
                    cfg.services
                        .iter()
                        .filter_map(|s| crate::daemon::ipvs::desired(s, |_, srv| srv.weight))
                        .collect()
                }
                (None, None) => bail!("--config or --table"),
            };
            for d in &desired {
                if let Some(w) =
                    sysctl::ecmp_scheduler_warning(&d.service.scheduler, d.service.flags)
                {
                    eprintln!("warning: {}: {w}", d.service.key);
                }
            }
            let client = Client::connect()?;
            let dump = client.dump()?;
            let policy = if report {
                Policy::Report
            } else {
                Policy::Repair
            };
            let plan = reconcile::plan(&desired, &dump, &[], policy);
            for op in &plan.ops {
                println!("{op}");
            }
            for n in &plan.notes {
                println!("note: {n}");
            }
            if plan.ops.is_empty() {
                println!("in sync: nothing to change");
            }
            if !dry_run {
                client.apply(&plan.ops)?;
            }
            Ok(())
        }
        IpvsCommand::Timeouts { set } => {
            let client = Client::connect()?;
            if let Some(t) = set {
                client.set_timeouts(&t)?;
            }
            let t = client.timeouts()?;
            println!(
                "timeouts: tcp {} s, tcp-fin {} s, udp {} s",
                t.tcp, t.tcp_fin, t.udp
            );
            Ok(())
        }
        IpvsCommand::Zero => Ok(Client::connect()?.zero(None)?),
        IpvsCommand::Sync { action } => sync(action),
        IpvsCommand::Sysctl { set, conntrack } => {
            let list = sysctl::ecmp_sysctls(conntrack);
            let problems = if set {
                sysctl::apply(&list)
            } else {
                sysctl::verify(&list)
            };
            for s in &list {
                let ok = !problems.iter().any(|p| p.to_string().starts_with(s.key));
                println!(
                    "{} = {} {}  ({})",
                    s.key,
                    s.value,
                    if ok { "ok" } else { "NOT SET" },
                    s.why
                );
            }
            if problems.is_empty() {
                Ok(())
            } else {
                let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
                bail!("{}", all.join("; "))
            }
        }
        IpvsCommand::Bench { services, servers } => bench(services, servers),
    }
}

fn show(json: bool) -> Result<()> {
    let client = Client::connect()?;
    let dump = client.dump()?;
    if json {
        let v: Vec<serde_json::Value> = dump
            .iter()
            .map(|(s, d)| {
                serde_json::json!({
                    "service": s.key.to_string(),
                    "scheduler": s.scheduler,
                    "flags": s.flags,
                    "persistence_s": s.timeout,
                    "netmask": netmask_text(s),
                    "fingerprint": reconcile::fingerprint(s, d),
                    "connections": s.stats.map(|st| st.conns),
                    "in_packets": s.stats.map(|st| st.in_packets),
                    "in_bytes": s.stats.map(|st| st.in_bytes),
                    "servers": d.iter().map(|x| serde_json::json!({
                        "address": dest_addr(x),
                        "forward": x.forward.name(),
                        "tunnel": tunnel_text(x.forward),
                        "weight": x.weight,
                        "upper_threshold": x.upper_threshold,
                        "lower_threshold": x.lower_threshold,
                        "active": x.active_conns,
                        "inactive": x.inactive_conns,
                        "persistent": x.persistent_conns,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let (version, size) = client.info()?;
    println!("IP Virtual Server version {version} (size={size})");
    println!("Prot LocalAddress:Port Scheduler Flags        Fingerprint");
    println!("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    for (s, d) in &dump {
        let mut f = Vec::new();
        if s.flags & flags::PERSISTENT != 0 {
            let full = if s.key.is_ipv6() { 128 } else { u32::MAX };
            if s.netmask == full {
                f.push(format!("persistent {}", s.timeout));
            } else {
                f.push(format!("persistent {} mask {}", s.timeout, netmask_text(s)));
            }
        }
        if s.flags & flags::SCHED1 != 0 {
            f.push(format!("{}-fallback", s.scheduler));
        }
        if s.flags & flags::SCHED2 != 0 {
            f.push(format!("{}-port", s.scheduler));
        }
        println!(
            "{} {} {}  {}",
            s.key,
            s.scheduler,
            f.join(","),
            reconcile::fingerprint(s, d)
        );
        for x in d {
            println!(
                "  -> {:<28} {:<7} {:<6} {:<10} {}",
                dest_addr(x),
                tunnel_text(x.forward).unwrap_or_else(|| x.forward.name().to_string()),
                x.weight,
                x.active_conns,
                x.inactive_conns
            );
        }
    }
    Ok(())
}

fn bench(services: u32, servers: u32) -> Result<()> {
    if services == 0 || services > 60_000 || servers == 0 || servers > 250 {
        bail!("services must be 1-60000 and servers 1-250");
    }
    let client = Client::connect()?;
    let svc_key = |i: u32| ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(std::net::Ipv4Addr::from(0xc000_0200 + (i >> 16))),
        port: u16::try_from(1 + (i & 0xffff)).unwrap_or(1),
    };
    let desired: Vec<Desired> = (0..services)
        .map(|i| {
            let service = Service {
                key: svc_key(i),
                scheduler: "mh".into(),
                flags: flags::SCHED1 | flags::SCHED2,
                timeout: 0,
                netmask: 0xffff_ffff,
                stats: None,
            };
            let dests = (0..servers)
                .map(|j| {
                    let addr = std::net::Ipv4Addr::from(0xc612_0100 + j);
                    Dest::new(IpAddr::V4(addr), 80, Forward::Route, 1)
                })
                .collect();
            Desired::new(service, dests)
        })
        .collect();
    let clear = |c: &Client| -> Result<()> {
        for (s, _) in c.dump()? {
            c.del_service(&s.key)?;
        }
        Ok(())
    };
    clear(&client)?;
    let t0 = Instant::now();
    let plan = reconcile::plan(&desired, &[], &[], Policy::Repair);
    client.apply(&plan.ops)?;
    let ours = t0.elapsed();
    let count = client.dump()?.iter().map(|(_, d)| d.len()).sum::<usize>();
    // The same rules for ipvsadm -R.
    let mut rules = String::new();
    for d in &desired {
        if let ServiceKey::Inet { addr, port, .. } = d.service.key {
            rules.push_str(&format!("-A -t {addr}:{port} -s mh -b flag-1,flag-2\n"));
            for x in &d.dests {
                rules.push_str(&format!(
                    "-a -t {addr}:{port} -r {} -g -w 1\n",
                    dest_addr(x)
                ));
            }
        }
    }
    clear(&client)?;
    let t1 = Instant::now();
    let mut child = std::process::Command::new("ipvsadm")
        .arg("-R")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("run ipvsadm -R (apt-get install ipvsadm)")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("ipvsadm stdin")?;
        stdin.write_all(rules.as_bytes())?;
    }
    let status = child.wait()?;
    let theirs = t1.elapsed();
    if !status.success() {
        bail!("ipvsadm -R failed: {status}");
    }
    let theirs_count = client.dump()?.iter().map(|(_, d)| d.len()).sum::<usize>();
    clear(&client)?;
    println!(
        "{services} services x {servers} servers: anycastd {:.2} s ({count} destinations), \
         ipvsadm -R {:.2} s ({theirs_count}); ratio {:.2}",
        ours.as_secs_f64(),
        theirs.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64().max(1e-9)
    );
    Ok(())
}

fn sync(action: SyncAction) -> Result<()> {
    let client = Client::connect()?;
    match action {
        SyncAction::Show => {
            for d in client.daemons()? {
                let group = d.group.map_or("default".to_string(), |g| g.to_string());
                println!(
                    "{} sync daemon: interface {}, sync id {}, max length {}, group {group}, \
                     port {}, ttl {}",
                    d.state.name(),
                    d.interface,
                    d.sync_id,
                    d.max_len,
                    d.port,
                    d.ttl
                );
            }
        }
        SyncAction::Start {
            state,
            interface,
            sync_id,
            group,
            port,
            ttl,
            max_len,
        } => client.start_daemon(&SyncDaemon {
            group,
            port,
            ttl,
            max_len,
            ..SyncDaemon::new(state, &interface, sync_id)
        })?,
        SyncAction::Stop { state } => client.stop_daemon(state)?,
    }
    Ok(())
}

/// An IPVS table file for `anycastd ipvs apply --table`: the whole
/// expressiveness of the kernel's table, apart from the daemon's config.
///
/// ```toml
/// [[service]]
/// protocol = "tcp"          # tcp, udp, sctp; or fwmark = 7 (ipv6 = true)
/// address = "192.0.2.10"
/// port = 80
/// scheduler = "mh"          # default; mh/sh get fallback and port flags
/// flags = ["mh-fallback", "mh-port"]
/// persistence = 300         # seconds
/// netmask = "255.255.255.0" # or a prefix length for IPv6
/// [[service.server]]
/// address = "198.18.1.1"
/// port = 80                 # default: the service's
/// forward = "dr"            # dr, nat, tunnel
/// tunnel = "gue"            # ipip (default), gue, gre
/// tunnel_port = 6080
/// tunnel_checksum = "csum"  # none (default), csum, remcsum
/// weight = 1
/// upper_threshold = 0
/// lower_threshold = 0
/// ```
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    #[serde(default)]
    service: Vec<TableService>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TableService {
    protocol: Option<String>,
    address: Option<IpAddr>,
    port: Option<u16>,
    fwmark: Option<u32>,
    #[serde(default)]
    ipv6: bool,
    #[serde(default = "default_scheduler")]
    scheduler: String,
    flags: Option<Vec<String>>,
    persistence: Option<u32>,
    netmask: Option<Netmask>,
    #[serde(default)]
    server: Vec<TableServer>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Netmask {
    Mask(std::net::Ipv4Addr),
    Prefix(u32),
}

fn default_scheduler() -> String {
    "mh".into()
}

fn default_weight() -> u32 {
    1
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TableServer {
    address: IpAddr,
    port: Option<u16>,
    #[serde(default)]
    forward: Option<String>,
    tunnel: Option<String>,
    #[serde(default)]
    tunnel_port: u16,
    tunnel_checksum: Option<String>,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default)]
    upper_threshold: u32,
    #[serde(default)]
    lower_threshold: u32,
}

fn load_table(path: &std::path::Path) -> Result<Vec<Desired>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    parse_table(&text).with_context(|| format!("{}", path.display()))
}

/// The desired services of an IPVS table file.
pub fn parse_table(text: &str) -> Result<Vec<Desired>> {
    let file: TableFile = toml::from_str(text)?;
    file.service.iter().map(table_service).collect()
}

fn table_service(t: &TableService) -> Result<Desired> {
    let key = match (t.fwmark, &t.protocol, t.address) {
        (Some(mark), None, None) if mark != 0 => ServiceKey::Fwmark { mark, ipv6: t.ipv6 },
        (None, p, Some(addr)) => ServiceKey::Inet {
            protocol: match p.as_deref().unwrap_or("tcp") {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                other => bail!("protocol {other}: tcp, udp or sctp"),
            },
            addr,
            port: t.port.unwrap_or(0),
        },
        _ => bail!("a service has either fwmark (not 0), or address with protocol and port"),
    };
    let sched = t.scheduler.as_str();
    let mut svc_flags = 0;
    let names = t.flags.clone().unwrap_or_else(|| match sched {
        "mh" | "sh" => vec![format!("{sched}-fallback"), format!("{sched}-port")],
        _ => Vec::new(),
    });
    for f in &names {
        svc_flags |= match f.as_str() {
            "one-packet" => flags::ONEPACKET,
            "flag-1" => flags::SCHED1,
            "flag-2" => flags::SCHED2,
            "flag-3" => flags::SCHED3,
            x if x == format!("{sched}-fallback") && matches!(sched, "mh" | "sh") => flags::SCHED1,
            x if x == format!("{sched}-port") && matches!(sched, "mh" | "sh") => flags::SCHED2,
            other => bail!("{key}: flag {other} (for {sched}: {sched}-fallback, {sched}-port; one-packet, flag-1..3)"),
        };
    }
    if t.persistence.is_some() {
        svc_flags |= flags::PERSISTENT;
    }
    let netmask = match (&t.netmask, key.is_ipv6()) {
        (None, false) => u32::MAX,
        (None, true) => 128,
        (Some(Netmask::Mask(m)), false) => u32::from(*m),
        (Some(Netmask::Prefix(p)), true) if (1..=128).contains(p) => *p,
        (Some(Netmask::Prefix(p)), false) if *p <= 32 => u32::MAX.checked_shl(32 - p).unwrap_or(0),
        _ => bail!(
            "{key}: netmask: a dotted mask or prefix length (IPv4), a prefix length 1-128 (IPv6)"
        ),
    };
    let service = Service {
        key,
        scheduler: t.scheduler.clone(),
        flags: svc_flags,
        timeout: t.persistence.unwrap_or(0),
        netmask,
        stats: None,
    };
    let svc_port = match key {
        ServiceKey::Inet { port, .. } => port,
        ServiceKey::Fwmark { .. } => 0,
    };
    let mut dests = Vec::new();
    for s in &t.server {
        let kind = match s.tunnel.as_deref() {
            None | Some("ipip") => TunnelType::Ipip,
            Some("gue") => TunnelType::Gue,
            Some("gre") => TunnelType::Gre,
            Some(other) => bail!("{key}: tunnel {other}: ipip, gue or gre"),
        };
        // IP_VS_TUNNEL_ENCAP_FLAG_*
        let tun_flags = match s.tunnel_checksum.as_deref() {
            None | Some("none") => 0,
            Some("csum") => 1,
            Some("remcsum") => 2,
            Some(other) => bail!("{key}: tunnel_checksum {other}: none, csum or remcsum"),
        };
        let forward = match s.forward.as_deref().unwrap_or("dr") {
            "dr" => Forward::Route,
            "nat" => Forward::Masquerade,
            "tunnel" => Forward::Tunnel {
                kind,
                port: s.tunnel_port,
                flags: tun_flags,
            },
            other => bail!("{key}: forward {other}: dr, nat or tunnel"),
        };
        let mut d = Dest::new(s.address, s.port.unwrap_or(svc_port), forward, s.weight);
        d.upper_threshold = s.upper_threshold;
        d.lower_threshold = s.lower_threshold;
        dests.push(d);
    }
    Ok(Desired::new(service, dests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_file_says_everything_the_kernel_has() {
        let t = parse_table(
            r#"
[[service]]
protocol = "sctp"
address = "2001:db8::10"
port = 5000
scheduler = "wrr"
persistence = 60
netmask = 64
[[service.server]]
address = "2001:db8::2"
forward = "tunnel"
tunnel = "gue"
tunnel_port = 6080
tunnel_checksum = "remcsum"
weight = 3
upper_threshold = 100
[[service.server]]
address = "2001:db8::1"

[[service]]
fwmark = 7
persistence = 300
netmask = "255.255.255.0"
"#,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        let s = &t[0].service;
        assert_eq!(s.flags, flags::PERSISTENT);
        assert_eq!((s.timeout, s.netmask), (60, 64));
        // Canonical order: by address.
        assert_eq!(t[0].dests[0].addr, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(t[0].dests[0].port, 5000);
        assert_eq!(
            t[0].dests[1].forward,
            Forward::Tunnel {
                kind: TunnelType::Gue,
                port: 6080,
                flags: 2
            }
        );
        let f = &t[1].service;
        assert_eq!(
            f.key,
            ServiceKey::Fwmark {
                mark: 7,
                ipv6: false
            }
        );
        // mh by default, with its ECMP flags.
        assert_eq!(f.scheduler, "mh");
        assert_eq!(f.flags, flags::PERSISTENT | flags::SCHED1 | flags::SCHED2);
        assert_eq!(f.netmask, 0xffff_ff00);
    }

    #[test]
    fn a_bad_table_file_says_where() {
        let e =
            parse_table("[[service]]\naddress = \"192.0.2.1\"\nport = 80\nflags = [\"sh-port\"]\n")
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
        assert!(e.contains("flag sh-port"), "{e}");
        let e = parse_table("[[service]]\nadress = \"192.0.2.1\"\n")
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("line 2"), "{e}");
    }
}
