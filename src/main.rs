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
enum ServerAction {
    /// Take SERVER out of the services on VIP.
    Disable {
        vip: std::net::Ipv4Addr,
        server: std::net::IpAddr,
    },
    /// Put SERVER back into the services on VIP.
    Enable {
        vip: std::net::Ipv4Addr,
        server: std::net::IpAddr,
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
    CheckConfig {
        config: PathBuf,
        /// Do not check that the OSPF interfaces exist here (checking a
        /// config for another node).
        #[arg(long)]
        no_interface_check: bool,
    },
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
    /// traffic to stop. Kept across restarts until undrained. Exits 3 when
    /// the drain deadline passed with connections left.
    Drain {
        /// A VIP address, or `all` for every VIP.
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
        /// A VIP address, or `all` for every VIP.
        target: String,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// Take a real server out of a VIP's services (weight 0, counted as
    /// down) or put it back; kept across restarts.
    Server {
        #[command(subcommand)]
        action: ServerAction,
        #[arg(long, global = true)]
        json: bool,
        #[arg(long, global = true, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
    },
    /// Re-read the configuration file and apply only the difference (a bad
    /// file is rejected and nothing changes). SIGHUP does the same.
    Reload {
        #[arg(long)]
        json: bool,
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
    /// Change the running daemon's log filter (`debug`, `info`,
    /// `anycastd=debug,ospf=info`: RUST_LOG's syntax) until it stops.
    LogLevel {
        filter: String,
        #[arg(long, default_value = config::DEFAULT_CONTROL_SOCKET)]
        socket: PathBuf,
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
    // Colours for a terminal only, not escape codes in a journal or file;
    // `anycastd log-level` changes the running daemon's filter.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    macro_rules! install {
        ($builder:expr) => {{
            let logs = $builder
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .with_env_filter(filter)
                .with_filter_reloading();
            let handle = logs.reload_handle();
            logs.init();
            daemon::set_log_filter_handle(Box::new(move |f: &str| {
                let filter =
                    tracing_subscriber::EnvFilter::try_new(f).map_err(|e| e.to_string())?;
                handle.reload(filter).map_err(|e| e.to_string())
            }));
        }};
    }
    match format {
        LogFormat::Text => install!(tracing_subscriber::fmt()),
        LogFormat::Json => install!(tracing_subscriber::fmt().json()),
    }
    let result = match cli.command {
        Command::Run { config, .. } => daemon::run(&config),
        Command::CheckConfig {
            config,
            no_interface_check,
        } => daemon::check_config(&config, !no_interface_check),
        Command::Status { json, socket } => cli::operate::status(&socket, json),
        Command::Drain {
            target,
            no_wait,
            json,
            socket,
        } => cli::operate::parse_target(&target)
            .and_then(|t| cli::operate::drain(&socket, t, no_wait, json)),
        Command::Undrain {
            target,
            json,
            socket,
        } => cli::operate::parse_target(&target)
            .and_then(|t| cli::operate::undrain(&socket, t, json)),
        Command::Server {
            action,
            json,
            socket,
        } => match action {
            ServerAction::Disable { vip, server } => {
                cli::operate::server(&socket, vip, server, true, json)
            }
            ServerAction::Enable { vip, server } => {
                cli::operate::server(&socket, vip, server, false, json)
            }
        },
        Command::Reload { json, socket } => cli::operate::reload(&socket, json),
        Command::LogLevel { filter, socket } => protocol::request(
            &socket,
            &protocol::Request::LogLevel {
                filter: filter.clone(),
            },
        )
        .map(|_| println!("log filter now {filter}")),
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
        let code = if e.downcast_ref::<cli::operate::DrainIncomplete>().is_some() {
            cli::operate::DrainIncomplete::EXIT_CODE
        } else {
            1
        };
        std::process::exit(code);
    }
}
