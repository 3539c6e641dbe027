//! `anycastd-lab`: the lab's command line. Topologies up and down, demos,
//! benchmarks, the IPVS VM, and the lab's own servers. Not installed on
//! directors: the daemon (`anycastd`) carries none of this.

mod bench_checks;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use lab::{Lab, LabOptions, Topology};

#[derive(Parser)]
#[command(
    name = "anycastd-lab",
    version,
    about = "Network-namespace labs for anycastd: topologies, demos, benchmarks, the IPVS VM"
)]
struct Cli {
    #[command(subcommand)]
    command: LabCommand,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli.command) {
        eprintln!("anycastd-lab: {e:#}");
        std::process::exit(1);
    }
}

#[derive(Subcommand)]
enum LabCommand {
    /// Build a topology file and leave it running.
    Up {
        file: PathBuf,
        /// Lab name (default: the topology's name).
        #[arg(long)]
        name: Option<String>,
        /// Capture OSPF on every OSPF interface into DIR/NODE-IF.pcap.
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
    },
    /// Tear a lab down: every namespace, process and file it made.
    Down { name: String },
    /// Nodes, each router's OSPF neighbours and its kernel route to every VIP.
    Status {
        /// Lab name; without it, list the labs that are up.
        name: Option<String>,
    },
    /// Run a command inside a node's namespace.
    Exec {
        name: String,
        node: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Bring a classic topology up, show the request spread and a director
    /// failover, and tear it down.
    Demo { file: PathBuf },
    /// Database scale benchmark: a router originating N external LSAs and a
    /// director loading them, running anycastd, FRR and BIRD in turn;
    /// prints the time to a complete database, RSS and CPU time.
    BenchDb {
        /// A topology with a router with `external_routes` and a director.
        #[arg(long, default_value = "topologies/ospf-scale-frr.toml")]
        topology: PathBuf,
        /// External route counts (comma-separated, at most 65000 each).
        #[arg(long, value_delimiter = ',', default_value = "20000,50000")]
        routes: Vec<u32>,
        /// Runs of each (medians are reported too; one run varies by up
        /// to a third).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Health-check load benchmark: 10,000 TCP and 1,000 HTTP probes a
    /// second (by default) against local listeners in a namespace; prints
    /// the daemon's CPU share and RSS, then its RSS with one VIP and ten
    /// servers.
    BenchChecks {
        #[arg(long, default_value_t = 1000)]
        tcp: u32,
        #[arg(long, default_value_t = 100)]
        http: u32,
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Measurement window, seconds.
        #[arg(long, default_value_t = 10)]
        window: u64,
    },
    /// Listeners for bench-checks (started inside its namespace).
    #[command(hide = true)]
    ServeListeners {
        #[arg(long)]
        tcp: u16,
        #[arg(long)]
        http: u16,
    },
    /// Boot a throwaway VM with an IPVS kernel (qemu, TCG, no network
    /// device), run CMD in it as root on the host's files (read-only, with
    /// a tmpfs overlay) in the current directory, print its output and exit
    /// with its status. One argument is a shell command line; several are a
    /// program and its arguments.
    Vm {
        /// Guest memory, MiB.
        #[arg(long, default_value_t = 1536)]
        mem: u32,
        #[arg(long, default_value_t = 2)]
        cpus: u32,
        /// Kill the VM after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Also print the VM's kernel console to stderr.
        #[arg(long)]
        console: bool,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// The lab's HTTP server (started by the lab inside a node).
    #[command(hide = true)]
    ServeHttp {
        #[arg(long)]
        node: String,
        #[arg(long, default_value_t = 80)]
        port: u16,
    },
}

fn options(name: Option<String>, capture: Option<PathBuf>) -> Result<LabOptions> {
    Ok(LabOptions {
        name,
        capture,
        ..LabOptions::from_current_exe()
    })
}

fn run(cmd: LabCommand) -> Result<()> {
    match cmd {
        LabCommand::Up {
            file,
            name,
            capture,
        } => {
            let topo = Topology::load(&file)?;
            let lab = Lab::up(topo, options(name, capture)?)?;
            println!(
                "lab {} is up: {} namespaces",
                lab.name,
                lab.namespaces().len()
            );
            println!(
                "status: anycastd-lab status {0}; teardown: anycastd-lab down {0}",
                lab.name
            );
            lab.detach();
            Ok(())
        }
        LabCommand::Down { name } => {
            if lab::list().contains(&name) || !lab::netns::list(&format!("{name}.")).is_empty() {
                lab::teardown(&name);
                println!("lab {name} is down");
                Ok(())
            } else {
                bail!("lab {name} is not up")
            }
        }
        LabCommand::Status { name: None } => {
            for n in lab::list() {
                println!("{n}");
            }
            Ok(())
        }
        LabCommand::Status { name: Some(name) } => status(&name),
        LabCommand::Exec {
            name,
            node,
            command,
        } => {
            let lab = Lab::attach(&name)?;
            let (prog, args) = command.split_first().context("no command given")?;
            let status = lab
                .command(&node, prog)?
                .args(args)
                .status()
                .with_context(|| format!("run {prog}"))?;
            std::process::exit(status.code().unwrap_or(1));
        }
        LabCommand::Demo { file } => {
            let topo = Topology::load(&file)?;
            let mut lab = Lab::up_unique(topo, options(None, None)?)?;
            let result = if lab::scenario::is_anycast(&lab.topology) {
                lab::scenario::anycast_demo(&mut lab, &mut |line| println!("{line}"))
            } else {
                lab::scenario::demo(&mut lab, &mut |line| println!("{line}"))
            };
            let name = lab.name.clone();
            lab.down();
            println!("lab {name} is down");
            Ok(result?)
        }
        LabCommand::BenchDb {
            topology,
            routes,
            runs,
        } => {
            let topo = Topology::load(&topology)?;
            lab::scenario::bench_db(&topo, &options(None, None)?, &routes, runs, &mut |l| {
                println!("{l}")
            })?;
            Ok(())
        }
        LabCommand::BenchChecks {
            tcp,
            http,
            interval_ms,
            window,
        } => crate::bench_checks::run(tcp, http, interval_ms, window),
        LabCommand::ServeListeners { tcp, http } => crate::bench_checks::serve_listeners(tcp, http),
        LabCommand::Vm {
            mem,
            cpus,
            timeout,
            console,
            command,
        } => {
            let opts = lab::vm::VmOptions {
                mem_mb: mem,
                cpus,
                timeout: std::time::Duration::from_secs(timeout),
                echo: true,
                ..Default::default()
            };
            let out = lab::vm::Vm::run(&lab::vm::shell_command(&command), &opts)?;
            if let Some(p) = out.prepared_in {
                eprintln!(
                    "anycastd-lab vm: prepared the kernel and initramfs in {:.1} s (cached in {})",
                    p.as_secs_f64(),
                    lab::vm::cache_dir().display()
                );
            }
            if console {
                eprint!("{}", out.console);
            }
            std::process::exit(out.status);
        }
        LabCommand::ServeHttp { node, port } => lab::traffic::serve_http(&node, port)
            .with_context(|| format!("serve HTTP on port {port}")),
    }
}

fn status(name: &str) -> Result<()> {
    let lab = Lab::attach(name)?;
    let vips = lab.topology.vips();
    println!("lab {name}: topology {}", lab.topology.name);
    for node in &lab.topology.nodes {
        let imp = node
            .implementation
            .map_or(String::new(), |i| format!(" ({i})"));
        let addrs: Vec<String> = lab
            .topology
            .interfaces(&node.name)
            .map(|e| format!("{} {}", e.ifname, e.addr))
            .chain(node.vips.iter().map(|v| format!("lo {v}/32")))
            .collect();
        println!(
            "  {:<10} {}{imp}  ns {}  {}",
            node.name,
            node.role,
            lab.ns_name(&node.name),
            addrs.join(", ")
        );
    }
    for node in lab
        .topology
        .nodes
        .iter()
        .filter(|n| n.role == lab::Role::Router)
    {
        println!("router {}:", node.name);
        match lab.ospf_neighbors(&node.name) {
            Ok(ns) if ns.is_empty() => println!("  no OSPF neighbours"),
            Ok(ns) => {
                for n in ns {
                    println!(
                        "  neighbour {:<15} {:<8} {:<8} via {} {}",
                        n.router_id,
                        n.state,
                        n.role.unwrap_or_default(),
                        n.address,
                        n.ifname
                    );
                }
            }
            Err(e) => println!("  neighbours: {e}"),
        }
        for vip in &vips {
            match lab.vip_route(&node.name, *vip)? {
                None => println!("  route {vip}/32: none"),
                Some(e) => {
                    let hops: Vec<String> = e.nexthops.iter().map(ToString::to_string).collect();
                    println!(
                        "  route {vip}/32 ({}, {} nexthops): {}",
                        e.protocol,
                        e.nexthops.len(),
                        hops.join("; ")
                    );
                }
            }
        }
    }
    // VRRP nodes: their state and whether they hold the addresses.
    for node in lab.topology.nodes.iter().filter(|n| n.vrrp.is_some()) {
        let state = match node.implementation {
            Some(lab::Implementation::Keepalived) => lab
                .keepalived(&node.name)
                .state()
                .unwrap_or_else(|| "?".into()),
            _ => lab
                .anycastd(&node.name)
                .status()
                .ok()
                .and_then(|v| {
                    let i = &v["vrrp"][0];
                    Some(format!(
                        "{} (priority {})",
                        i["state"].as_str()?,
                        i["priority"].as_u64()?
                    ))
                })
                .unwrap_or_else(|| "?".into()),
        };
        let addrs = lab
            .output(&node.name, "ip", &["-4", "-o", "addr", "show"])
            .unwrap_or_default();
        let held: Vec<String> = node
            .vrrp
            .iter()
            .flat_map(|v| v.addresses.iter())
            .filter(|a| addrs.contains(&format!(" {a}/")))
            .map(ToString::to_string)
            .collect();
        println!(
            "vrrp {}: {state}, holds {}",
            node.name,
            if held.is_empty() {
                "nothing".to_string()
            } else {
                held.join(" ")
            }
        );
    }
    Ok(())
}
