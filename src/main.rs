//! anycastd: health-checked anycast and IPVS directors with an embedded
//! OSPFv2 speaker. For now the binary carries the lab.

mod cli_lab;

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
        Command::Lab { command } => cli_lab::run(command),
    };
    if let Err(e) = result {
        eprintln!("anycastd: {e:#}");
        std::process::exit(1);
    }
}
