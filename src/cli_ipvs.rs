//! `anycastd ipvs ...`: the kernel's IPVS table as anycastd sees it, one
//! reconcile of a config's `ipvs` services, and the programming benchmark.
//! Also the mapping from config services to desired IPVS services that the
//! daemon uses.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use anycastd::ipvs::model::flags;
use anycastd::ipvs::reconcile::{self, Desired, Policy};
use anycastd::ipvs::{Client, Dest, Forward, Protocol, Service, ServiceKey};

use crate::config::{self, Config, Forwarding};
use crate::service::Mode;

#[derive(Subcommand)]
pub enum IpvsCommand {
    /// The kernel's table like `ipvsadm -Ln`, with each service's
    /// fingerprint (equal on directors that pick the same servers).
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Reconcile the kernel once with the `ipvs` services of a config file
    /// (every server at its configured weight); prints the operations.
    /// Nothing is flushed; services not in the file are left alone.
    Apply {
        #[arg(long, short)]
        config: PathBuf,
        /// Report hand-made destinations instead of removing them.
        #[arg(long)]
        report: bool,
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
    },
    /// Programs SERVICES x SERVERS through anycastd, then the same rules
    /// through `ipvsadm -R`, and prints both times (clears the table
    /// before each; run it in a throwaway VM: `anycastd lab vm -- ...`).
    Bench {
        #[arg(long, default_value_t = 1000)]
        services: u32,
        #[arg(long, default_value_t = 10)]
        servers: u32,
    },
}

/// The service key, flags and destinations of a config service in `ipvs`
/// mode, each server at `weight(index, server)`.
pub fn desired(
    s: &config::Service,
    mut weight: impl FnMut(usize, &config::Server) -> u32,
) -> Option<Desired> {
    let ipvs = s.ipvs.as_ref()?;
    if s.mode != Mode::Ipvs {
        return None;
    }
    let protocol = match s.protocol {
        config::Protocol::Tcp => Protocol::Tcp,
        config::Protocol::Udp => Protocol::Udp,
        config::Protocol::Sctp => Protocol::Sctp,
    };
    let port = s.port.unwrap_or(0);
    let mut svc_flags = 0;
    if matches!(ipvs.scheduler.as_str(), "mh" | "sh") {
        // Fallback to the next server when the chosen one is down, and
        // hash ports too (routers hash on L4).
        svc_flags |= flags::SCHED1 | flags::SCHED2;
    }
    // Every port of the VIP needs persistence (as `ipvsadm -p` with port 0).
    let persistence = ipvs
        .persistence
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .or((port == 0).then_some(300));
    if persistence.is_some() {
        svc_flags |= flags::PERSISTENT;
    }
    let service = Service {
        key: ServiceKey::Inet {
            protocol,
            addr: IpAddr::V4(s.vip),
            port,
        },
        scheduler: ipvs.scheduler.clone(),
        flags: svc_flags,
        timeout: persistence.unwrap_or(0),
        netmask: 0xffff_ffff,
        stats: None,
    };
    let forward = match ipvs.forwarding {
        Forwarding::Dr => Forward::Route,
        Forwarding::Nat => Forward::Masquerade,
        Forwarding::Tunnel => Forward::Tunnel {
            kind: anycastd::ipvs::model::TunnelType::Ipip,
            port: 0,
            flags: 0,
        },
    };
    let dests = s
        .servers
        .iter()
        .enumerate()
        .map(|(i, srv)| {
            Dest::new(
                srv.address,
                srv.port.unwrap_or(port),
                forward,
                weight(i, srv),
            )
        })
        .collect();
    Some(Desired::new(service, dests))
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
            report,
            dry_run,
        } => {
            let cfg = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let desired: Vec<Desired> = cfg
                .services
                .iter()
                .filter_map(|s| desired(s, |_, srv| srv.weight))
                .collect();
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
                    "fingerprint": reconcile::fingerprint(s, d),
                    "connections": s.stats.map(|st| st.conns),
                    "servers": d.iter().map(|x| serde_json::json!({
                        "address": dest_addr(x),
                        "forward": x.forward.name(),
                        "weight": x.weight,
                        "active": x.active_conns,
                        "inactive": x.inactive_conns,
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
            f.push(format!("persistent {}", s.timeout));
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
                x.forward.name(),
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
