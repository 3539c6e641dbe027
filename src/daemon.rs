//! The daemon's top level: config, the OSPF speaker task, the control
//! socket and signals.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use ospf::linux::speaker::{self, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;

pub fn check_config(path: &Path) -> Result<()> {
    let c = Config::load(path)?;
    let s = &c.speaker;
    println!("router-id {}", s.instance.router_id);
    println!("control socket {}", c.control_socket.display());
    for i in &s.interfaces {
        println!(
            "ospf interface {} area {} {:?} hello {} dead {} priority {} cost {} auth {}",
            i.name,
            i.area,
            i.network,
            i.hello_interval,
            i.dead_interval,
            i.priority,
            i.cost,
            match i.auth.au_type() {
                0 => "none",
                1 => "simple",
                _ => "cryptographic",
            }
        );
    }
    for (area, vip, cost) in &s.vips {
        println!("vip {vip}/32 area {area} cost {cost}");
    }
    Ok(())
}

pub fn run(path: &Path) -> Result<()> {
    let cfg = Config::load(path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run_async(cfg))
}

async fn run_async(cfg: Config) -> Result<()> {
    let default_area = cfg
        .speaker
        .interfaces
        .first()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED, |i| i.area);
    let (tx, rx) = mpsc::channel(64);
    let mut speaker = tokio::spawn(speaker::run(cfg.speaker.clone(), rx));
    let socket = cfg.control_socket.clone();
    let control_tx = tx.clone();
    let control =
        tokio::spawn(async move { crate::control::serve(&socket, control_tx, default_area).await });
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tracing::info!("anycastd running");
    let early = tokio::select! {
        _ = term.recv() => None,
        _ = int.recv() => None,
        r = &mut speaker => Some(r),
    };
    let result = match early {
        Some(r) => r.context("speaker task")?.context("OSPF speaker"),
        None => {
            // Withdraw and flush what we originated before leaving, so the
            // routers drop our routes at once instead of after the dead
            // interval.
            tracing::info!("shutting down: flushing OSPF LSAs");
            let (done_tx, done_rx) = oneshot::channel();
            let _ = tx.send(Command::Shutdown(done_tx)).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), done_rx).await;
            Ok(())
        }
    };
    control.abort();
    let _ = std::fs::remove_file(&cfg.control_socket);
    result
}
