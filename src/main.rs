//! anycastd: health-checked anycast and IPVS directors with an embedded
//! OSPFv2 speaker.

mod cli;
mod config;
mod daemon;
mod health;
mod protocol;

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
enum RealserverAction {
    /// Put each VIP on lo as a /32 and set arp_ignore = 1, arp_announce = 2
    /// (all, default, lo); idempotent, prints what changed.
    Setup {
        #[arg(long = "vip", required = true)]
        vips: Vec<std::net::Ipv4Addr>,
    },
    /// Remove each VIP from lo; once none is left, ARP settings back to 0.
    Teardown {
        #[arg(long = "vip", required = true)]
        vips: Vec<std::net::Ipv4Addr>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: health checks, and the OSPF speaker advertising
    /// each VIP while its services are healthy.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Log format on stderr.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validate a configuration file and print the effective plan.
    CheckConfig { config: PathBuf },
    /// Show the running daemon's state.
    Show {
        #[command(subcommand)]
        what: cli::show::ShowCommand,
        /// Print JSON instead of tables.
        #[arg(long, global = true)]
        json: bool,
        #[arg(long, global = true, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// VIPs, their services, announcements and drains.
    Status {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// Drain a VIP (or all): raise its cost, withdraw it, wait for its
    /// traffic to stop.
    Drain {
        /// A VIP address or `all`.
        #[arg(default_value = "all")]
        target: String,
        /// Return once the drain has started.
        #[arg(long)]
        no_wait: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// End the drain of a VIP (or all).
    Undrain {
        #[arg(default_value = "all")]
        target: String,
        #[arg(long, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// Re-read the configuration file and apply only the difference (a bad
    /// file is rejected and nothing changes). SIGHUP does the same.
    Reload {
        #[arg(long, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// Advertise or withdraw a VIP, or change its cost, at run time.
    Vip {
        #[command(subcommand)]
        action: cli::show::VipCommand,
        #[arg(long, global = true, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// The kernel's IPVS table: show it, reconcile it with a config file,
    /// benchmark programming it.
    Ipvs {
        #[command(subcommand)]
        command: cli::ipvs::IpvsCommand,
    },
    /// The real-server side of direct routing: VIPs on lo, ARP kept quiet.
    Realserver {
        #[command(subcommand)]
        action: RealserverAction,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    /// One JSON object per event, with its structured fields.
    Json,
}

fn main() {
    let cli = Cli::parse();
    let (format, default_level) = match &cli.command {
        Command::Run { log_format, .. } => (*log_format, "info"),
        _ => (LogFormat::Text, "warn"),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_level.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal only, not escape codes in a journal or file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let result = match cli.command {
        Command::Run { config, .. } => daemon::run(&config),
        Command::CheckConfig { config } => daemon::check_config(&config),
        Command::Status { json, socket } => cli::operate::status(&socket, json),
        Command::Drain {
            target,
            no_wait,
            json,
            socket,
        } => cli::operate::parse_target(&target)
            .and_then(|t| cli::operate::drain(&socket, t, no_wait, json)),
        Command::Undrain { target, socket } => {
            cli::operate::parse_target(&target).and_then(|t| cli::operate::undrain(&socket, t))
        }
        Command::Reload { socket } => cli::operate::reload(&socket),
        Command::Show { what, json, socket } => cli::show::show(&socket, what, json),
        Command::Vip { action, socket } => cli::show::vip(&socket, action),
        Command::Ipvs { command } => cli::ipvs::run(command),
        Command::Realserver { action } => match action {
            RealserverAction::Setup { vips } => {
                daemon::vip::block_on(daemon::vip::realserver_setup(&vips))
            }
            RealserverAction::Teardown { vips } => {
                daemon::vip::block_on(daemon::vip::realserver_teardown(&vips))
            }
        }
        .map(|changes| println!("{changes}"))
        .map_err(anyhow::Error::from),
    };
    if let Err(e) = result {
        eprintln!("anycastd: {e:#}");
        std::process::exit(1);
    }
}
