//! The tokio loop around the sans-IO [`Instance`]: packets in from the raw
//! socket, timers from `poll_timeout`, commands from the daemon; packets out
//! to the socket. Everything OSPF decides happens inside the instance.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use super::{links, malformed, LinkInfo, OspfSocket, ALL_D_ROUTERS, ALL_SPF_ROUTERS};
use crate::auth::AuthConfig;
use crate::instance::{
    Config, Event, IfaceId, Instance, InterfaceConfig, InterfaceInfo, IsmState, NeighborInfo,
    NetworkType, SelfLsaKind,
};
use crate::lsa::{LsaHeader, LsaKey, RawLsa};

/// One interface the speaker runs on, named as the kernel names it; its
/// index, address and MTU are read from the kernel at start.
#[derive(Debug, Clone)]
pub struct SpeakerInterface {
    pub name: String,
    pub area: Ipv4Addr,
    pub network: NetworkType,
    pub hello_interval: u16,
    /// Fast hellos (with `hello_interval` 0): Hellos per second.
    pub hello_multiplier: u8,
    pub dead_interval: u32,
    pub retransmit_interval: u16,
    pub priority: u8,
    pub cost: u16,
    pub mtu_ignore: bool,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    pub instance: Config,
    pub interfaces: Vec<SpeakerInterface>,
    /// VIPs advertised from the start: (area, address, cost).
    pub vips: Vec<(Ipv4Addr, Ipv4Addr, u16)>,
}

/// The speaker's counters ([`Command::Counters`]).
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Received packets and LSAs dropped, by reason
    /// ([`Instance::drop_counters`]).
    pub dropped: BTreeMap<&'static str, u64>,
    /// What neighbours did that we repaired, by kind
    /// ([`Instance::anomaly_counters`]).
    pub anomalies: BTreeMap<&'static str, u64>,
}

/// LSA headers per chunk of a streamed database ([`Command::Database`]).
pub const DATABASE_CHUNK: usize = 1000;

/// One chunk of a streamed database: (area, LSA header with its current age).
pub type DatabaseChunk = Vec<(Ipv4Addr, LsaHeader)>;

/// What the daemon can ask of a running speaker.
#[derive(Debug)]
pub enum Command {
    Advertise {
        area: Ipv4Addr,
        vip: Ipv4Addr,
        cost: u16,
    },
    Withdraw {
        vip: Ipv4Addr,
    },
    StubRouter(bool),
    Interfaces(oneshot::Sender<Vec<InterfaceInfo>>),
    Neighbors(oneshot::Sender<Vec<NeighborInfo>>),
    /// The database, streamed: chunks of at most [`DATABASE_CHUNK`] LSA
    /// headers in (area, LSA key) order, then one empty chunk that marks
    /// the end (a channel closed without it means the speaker stopped).
    /// The speaker takes the next chunk from the LSDB only when the
    /// channel has room, so with a small bound neither side ever holds the
    /// whole database; LSAs installed or removed meanwhile may be missed or
    /// seen, none twice. Walks are served one at a time, in order; a
    /// dropped receiver ends its walk.
    Database(mpsc::Sender<DatabaseChunk>),
    /// One LSA of the database, exactly as stored.
    Lsa {
        area: Ipv4Addr,
        key: LsaKey,
        reply: oneshot::Sender<Option<RawLsa>>,
    },
    Counters(oneshot::Sender<Counters>),
    /// Replaces the authentication (keys) of the interface named
    /// `interface`, as a reload's key rollover: its neighbours and their
    /// adjacencies stay. Answered false when there is no such interface.
    SetAuth {
        interface: String,
        auth: AuthConfig,
        reply: oneshot::Sender<bool>,
    },
    /// Flush what we originated, then stop; answered when done.
    Shutdown(oneshot::Sender<()>),
}

/// A [`Command::Database`] walk in progress.
struct DatabaseWalk {
    tx: mpsc::Sender<DatabaseChunk>,
    /// The last (area, key) sent; `None` before the first chunk.
    after: Option<(Ipv4Addr, LsaKey)>,
}

fn wall_clock_secs() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn interface_config(i: &SpeakerInterface, link: &LinkInfo) -> io::Result<InterfaceConfig> {
    let (addr, prefix_len) = link
        .addrs
        .first()
        .copied()
        .ok_or_else(|| io::Error::other(format!("interface {} has no IPv4 address", i.name)))?;
    Ok(InterfaceConfig {
        name: i.name.clone(),
        ifindex: link.ifindex,
        addr,
        prefix_len,
        mtu: u16::try_from(link.mtu).unwrap_or(u16::MAX),
        area: i.area,
        network: i.network,
        hello_interval: i.hello_interval,
        hello_multiplier: i.hello_multiplier,
        dead_interval: i.dead_interval,
        retransmit_interval: i.retransmit_interval,
        transmit_delay: 1,
        priority: i.priority,
        cost: i.cost,
        mtu_ignore: i.mtu_ignore,
        auth: i.auth.clone(),
    })
}

/// Runs the speaker until a [`Command::Shutdown`] completes or the command
/// channel closes (which also flushes first). Call it inside a tokio
/// runtime on a thread in the wanted network namespace.
pub async fn run(cfg: SpeakerConfig, mut commands: mpsc::Receiver<Command>) -> io::Result<()> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    let conn_task = tokio::spawn(conn);
    let kernel = links(&handle).await;
    conn_task.abort();
    let kernel = kernel?;

    let sock = OspfSocket::new().map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            io::Error::new(
                e.kind(),
                "the OSPF raw socket needs CAP_NET_RAW (run as root, or give the unit \
                 AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN)",
            )
        } else {
            e
        }
    })?;
    let start = Instant::now();
    let mut inst = Instance::try_new(cfg.instance.clone(), start, wall_clock_secs())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut ifaces: BTreeMap<IfaceId, u32> = BTreeMap::new();
    for i in &cfg.interfaces {
        let link = kernel.iter().find(|l| l.name == i.name).ok_or_else(|| {
            io::Error::other(format!(
                "OSPF interface {} does not exist on this node",
                i.name
            ))
        })?;
        if !link.up {
            tracing::warn!(interface = %i.name, "interface is down; OSPF starts on it anyway");
        }
        sock.join(link.ifindex, ALL_SPF_ROUTERS)?;
        let id = inst.add_interface(start, interface_config(i, link)?);
        ifaces.insert(id, link.ifindex);
        tracing::info!(interface = %i.name, ifindex = link.ifindex, "OSPF enabled");
    }
    for (area, vip, cost) in &cfg.vips {
        inst.advertise_vip(start, *area, *vip, *cost);
    }

    let mut buf = vec![0u8; 65536];
    let mut shutdown_reply: Option<oneshot::Sender<()>> = None;
    let mut shutting_down = false;
    let mut commands_open = true;
    let mut walks: VecDeque<DatabaseWalk> = VecDeque::new();
    loop {
        while let Some(t) = inst.poll_transmit() {
            if let Err(e) = sock.send(t.ifindex, t.src, t.dst, &t.bytes).await {
                tracing::debug!(error = %e, dst = %t.dst, "send failed");
            }
        }
        while let Some(ev) = inst.poll_event() {
            match ev {
                Event::InterfaceState {
                    iface,
                    name,
                    from,
                    to,
                } => {
                    tracing::info!(interface = %name, %from, %to, "interface state");
                    let dr_role = |s: IsmState| matches!(s, IsmState::DR | IsmState::Backup);
                    if let Some(&ifindex) = ifaces.get(&iface) {
                        let r = match (dr_role(from), dr_role(to)) {
                            (false, true) => sock.join(ifindex, ALL_D_ROUTERS),
                            (true, false) => sock.leave(ifindex, ALL_D_ROUTERS),
                            _ => Ok(()),
                        };
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "AllDRouters membership");
                        }
                    }
                }
                Event::NeighborState {
                    router_id,
                    addr,
                    from,
                    to,
                    ..
                } => {
                    tracing::info!(neighbor = %router_id, %addr, %from, %to, "neighbor state");
                }
                Event::Originated {
                    area,
                    key,
                    seq,
                    flushed,
                } => {
                    tracing::info!(
                        %area,
                        lsa = %key,
                        seq = format_args!("{:#010x}", seq),
                        "{}",
                        if flushed { "LSA flushed" } else { "LSA originated" }
                    );
                }
                Event::SelfLsaReceived {
                    area,
                    key,
                    seq,
                    age,
                    from,
                    kind,
                    solicited,
                } => {
                    let what = match kind {
                        SelfLsaKind::Newer => "a newer instance of our",
                        SelfLsaKind::MaxSequence => "our (at MaxSequenceNumber, to be wrapped)",
                        SelfLsaKind::MaxAge => "a flush (MaxAge) of our",
                        SelfLsaKind::Unoriginated => "an LSA we do not originate, as our",
                    };
                    let seq = format_args!("{:#010x}", seq);
                    if solicited {
                        tracing::info!(%area, lsa = %key, %seq, age, neighbor = %from,
                            "received {what} LSA in the database exchange (from before this start?): superseding it");
                    } else {
                        tracing::warn!(%area, lsa = %key, %seq, age, neighbor = %from,
                            "received {what} LSA: another router uses our router ID, or someone injects; superseding it");
                    }
                }
                Event::AdjacencyStalled {
                    router_id,
                    addr,
                    state,
                    reason,
                    ..
                } => {
                    tracing::warn!(neighbor = %router_id, %addr, %state, "adjacency stalled, restarting it: {reason}");
                }
                Event::AreaTypeMismatch {
                    name,
                    router_id,
                    reason,
                    ..
                } => {
                    tracing::warn!(interface = %name, neighbor = %router_id, "Hellos dropped: {reason}");
                }
                Event::MaxLsaReached { limit } => {
                    tracing::warn!(
                        limit,
                        "the OSPF database reached max_lsa: new LSAs from neighbours are refused"
                    );
                }
            }
        }
        if shutting_down && inst.is_shut_down() {
            if let Some(reply) = shutdown_reply.take() {
                let _ = reply.send(());
            }
            return Ok(());
        }
        let deadline = inst
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        // Room in the channel of the first database walk, if any.
        let walk_tx = walks.front().map(|w| w.tx.clone());
        let walking = walk_tx.is_some();
        let walk_room = async move {
            match walk_tx {
                Some(tx) => tx.reserve_owned().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = sock.recv(&mut buf) => match r {
                Ok(rx) => {
                    if let Some(payload) = buf.get(rx.payload.clone()) {
                        inst.handle_packet(Instant::now(), rx.ifindex, rx.src, rx.dst, payload);
                    }
                }
                Err(e) if malformed(&e).is_some() => tracing::debug!(error = %e, "malformed IP packet"),
                Err(e) => return Err(e),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                inst.handle_timeout(Instant::now());
            }
            room = walk_room, if walking => match room {
                Ok(permit) => {
                    if let Some(walk) = walks.front_mut() {
                        let chunk = inst.database_page(Instant::now(), walk.after, DATABASE_CHUNK);
                        match chunk.last() {
                            Some((area, h)) => walk.after = Some((*area, h.key())),
                            // The end marker sent below finishes this walk.
                            None => drop(walks.pop_front()),
                        }
                        permit.send(chunk);
                    }
                }
                // The reader went away.
                Err(_) => drop(walks.pop_front()),
            },
            cmd = commands.recv(), if commands_open => {
                let now = Instant::now();
                match cmd {
                    None => {
                        commands_open = false;
                        shutting_down = true;
                        inst.shutdown(now);
                    }
                    Some(Command::Shutdown(reply)) => {
                        shutting_down = true;
                        shutdown_reply = Some(reply);
                        inst.shutdown(now);
                    }
                    Some(Command::Database(tx)) => walks.push_back(DatabaseWalk { tx, after: None }),
                    Some(c) => answer(&mut inst, now, c),
                }
            }
        }
    }
}

fn answer(inst: &mut Instance, now: Instant, cmd: Command) {
    match cmd {
        Command::Advertise { area, vip, cost } => inst.advertise_vip(now, area, vip, cost),
        Command::Withdraw { vip } => inst.withdraw_vip(now, vip),
        Command::StubRouter(on) => inst.set_stub_router(now, on),
        Command::Interfaces(r) => {
            let _ = r.send(inst.interfaces(now));
        }
        Command::Neighbors(r) => {
            let _ = r.send(inst.neighbors(now));
        }
        // Streamed from the main loop.
        Command::Database(_) => {}
        Command::Lsa { area, key, reply } => {
            let _ = reply.send(inst.lsa(now, area, key));
        }
        Command::Counters(r) => {
            let _ = r.send(Counters {
                dropped: inst.drop_counters().clone(),
                anomalies: inst.anomaly_counters().clone(),
            });
        }
        Command::SetAuth {
            interface,
            auth,
            reply,
        } => {
            let id = inst
                .interfaces(now)
                .into_iter()
                .find(|i| i.name == interface)
                .map(|i| i.id);
            let applied = id.is_some_and(|id| inst.set_interface_auth(id, auth));
            if applied {
                tracing::info!(%interface, "OSPF authentication keys applied, adjacencies kept");
            }
            let _ = reply.send(applied);
        }
        Command::Shutdown(_) => {}
    }
}
