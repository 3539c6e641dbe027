//! anycastd: health-checked anycast and IPVS directors with an embedded
//! OSPFv2 speaker.

mod cli_lab;
mod config;
mod control;
mod daemon;
mod show;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "anycastd",
    version,
    about = "Health-checked anycast and IPVS director daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: the OSPF speaker advertising the configured VIPs.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and print the effective plan.
    CheckConfig { config: PathBuf },
    /// Show the running daemon's state.
    Show {
        #[command(subcommand)]
        what: show::ShowCommand,
        /// Print JSON instead of tables.
        #[arg(long, global = true)]
        json: bool,
        #[arg(long, global = true, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// Advertise or withdraw a VIP, or change its cost, at run time.
    Vip {
        #[command(subcommand)]
        action: show::VipCommand,
        #[arg(long, global = true, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// Network-namespace lab topologies (FRR/BIRD routers, directors, servers, clients).
    Lab {
        #[command(subcommand)]
        command: cli_lab::LabCommand,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => daemon::run(&config),
        Command::CheckConfig { config } => daemon::check_config(&config),
        Command::Show { what, json, socket } => show::show(&socket, what, json),
        Command::Vip { action, socket } => show::vip(&socket, action),
        Command::Lab { command } => cli_lab::run(command),
    };
    if let Err(e) = result {
        eprintln!("anycastd: {e:#}");
        std::process::exit(1);
    }
}
