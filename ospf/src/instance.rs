//! The sans-IO OSPFv2 speaker: one [`Instance`] per router.
//!
//! Inputs are method calls that carry the current time
//! ([`Instance::handle_packet`], [`Instance::handle_timeout`], configuration
//! changes); outputs are drained with [`Instance::poll_transmit`],
//! [`Instance::poll_event`] and [`Instance::poll_timeout`]. The instance
//! never reads a clock or touches a socket, so tests drive it with a
//! virtual clock.
//!
//! Interfaces and neighbours live in keyed maps (by [`IfaceId`] and by
//! neighbour address); timers are deadlines stored in them, so a deadline
//! of something already deleted simply disappears with it.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use crate::area::{AreaId, AreaType};
use crate::auth::{self, CryptoSeq, NeighborAuthState};
use crate::interface::{Interface, IsmEvent};
pub use crate::interface::{InterfaceConfig, IsmState, NetworkType};
use crate::lsa::{LsaHeader, LsaKey, RawLsa};
use crate::lsdb::Area;
use crate::neighbor::NsmEvent;
pub use crate::neighbor::NsmState;
use crate::origin::Vip;
pub use crate::origin::MAX_LINK_METRIC;
use crate::packet::{Packet, PacketBody, ALL_D_ROUTERS, ALL_SPF_ROUTERS};

/// How long [`Instance::shutdown`] waits for its flushes to be
/// acknowledged, on top of origination pacing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Instance-wide configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Router ID; must not be 0.0.0.0 (and should not be a VIP).
    pub router_id: Ipv4Addr,
    /// Least time between two instances of one of our LSAs leaving us, so
    /// that routers' MinLSArrival (1 s) never drops one. Default 1 s.
    pub min_ls_interval: Duration,
    /// Stub-router mode (RFC 6987) for this long after start.
    pub stub_router_on_startup: Option<Duration>,
    /// The most LSAs the database holds (FRR's `max-lsa`): beyond it, new
    /// LSAs from others are refused, so that no neighbour can exhaust the
    /// director's memory. Default 200,000.
    pub max_lsa: usize,
    /// The type of each area; an area not listed is normal. The backbone
    /// (0.0.0.0) can only be normal.
    pub area_types: BTreeMap<AreaId, AreaType>,
}

/// The default of [`Config::max_lsa`].
pub const DEFAULT_MAX_LSA: usize = 200_000;

impl Default for Config {
    /// Router ID 0.0.0.0 (set it!), 1 s pacing, no startup stub-router,
    /// at most 200,000 LSAs.
    fn default() -> Self {
        Config {
            router_id: Ipv4Addr::UNSPECIFIED,
            min_ls_interval: Duration::from_secs(1),
            stub_router_on_startup: None,
            max_lsa: DEFAULT_MAX_LSA,
            area_types: BTreeMap::new(),
        }
    }
}

/// Invalid instance configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Router ID 0.0.0.0 is reserved.
    #[error("router ID 0.0.0.0 is not a valid OSPF router ID")]
    ZeroRouterId,
    /// The backbone can only be a normal area (RFC 2328 3.6, RFC 3101).
    #[error("the backbone (area 0.0.0.0) can only be a normal area, not {0}")]
    BackboneAreaType(AreaType),
}

impl Config {
    /// The type of `area` (normal unless listed).
    pub fn area_type(&self, area: AreaId) -> AreaType {
        self.area_types.get(&area).copied().unwrap_or_default()
    }
}

/// Identifies an interface of an [`Instance`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct IfaceId(pub usize);

/// A packet to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Outgoing interface.
    pub ifindex: u32,
    /// Source address (our interface address).
    pub src: Ipv4Addr,
    /// Destination: AllSPFRouters, AllDRouters or a neighbour.
    pub dst: Ipv4Addr,
    /// The complete OSPF packet, signed (authentication trailer included).
    pub bytes: Bytes,
}

/// Something the runner may want to react to or log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An interface changed state. The runner joins AllDRouters
    /// (224.0.0.6) when the interface becomes DR or Backup and leaves it
    /// otherwise.
    InterfaceState {
        /// The interface.
        iface: IfaceId,
        /// Its name.
        name: String,
        /// Previous state.
        from: IsmState,
        /// New state.
        to: IsmState,
    },
    /// A neighbour changed state.
    NeighborState {
        /// The interface.
        iface: IfaceId,
        /// Neighbour Router ID.
        router_id: Ipv4Addr,
        /// Neighbour address.
        addr: Ipv4Addr,
        /// Previous state.
        from: NsmState,
        /// New state.
        to: NsmState,
    },
    /// A new instance of one of our LSAs was installed and flooded
    /// (origination, refresh or, with `flushed`, premature aging).
    Originated {
        /// The area.
        area: Ipv4Addr,
        /// The LSA.
        key: LsaKey,
        /// Its LS sequence number.
        seq: i32,
        /// True for a flush (MaxAge).
        flushed: bool,
    },
    /// A neighbour sent us an instance of an LSA that is ours (RFC 2328
    /// 13.4) and that we did not send: another router uses our router ID,
    /// someone injects, or (when `solicited`) a copy left by our previous
    /// life came back in the database exchange. We supersede or flush it.
    SelfLsaReceived {
        /// The area.
        area: Ipv4Addr,
        /// The LSA.
        key: LsaKey,
        /// Its LS sequence number.
        seq: i32,
        /// Its LS age.
        age: u16,
        /// The router ID of the neighbour that sent it.
        from: Ipv4Addr,
        /// How it claims to be ours.
        kind: SelfLsaKind,
        /// It answered our own Link State Request (a database exchange),
        /// rather than being flooded to us unasked.
        solicited: bool,
    },
    /// An adjacency made no progress in ExStart, Exchange or Loading for
    /// four RxmtIntervals and was restarted (back to ExStart).
    AdjacencyStalled {
        /// The interface.
        iface: IfaceId,
        /// Neighbour Router ID.
        router_id: Ipv4Addr,
        /// Neighbour address.
        addr: Ipv4Addr,
        /// The state it stalled in.
        state: NsmState,
        /// What we kept retransmitting and what the neighbour last sent.
        reason: String,
    },
    /// The database reached [`Config::max_lsa`]: new LSAs from others are
    /// refused until it shrinks below nine tenths of it.
    MaxLsaReached {
        /// The limit.
        limit: usize,
    },
    /// A neighbour's Hellos disagree with the area type (E- or N-bit,
    /// RFC 2328 10.5, RFC 3101): they are dropped. Reported once per
    /// sender; again only when it announces something else, or after it
    /// agreed or was silent for a RouterDeadInterval.
    AreaTypeMismatch {
        /// The interface.
        iface: IfaceId,
        /// Its name.
        name: String,
        /// The sender's address.
        addr: Ipv4Addr,
        /// The sender's router ID.
        router_id: Ipv4Addr,
        /// What it expects and what we are, in words.
        reason: String,
    },
}

/// How a received LSA claims to be ours (RFC 2328 13.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SelfLsaKind {
    /// A newer instance of an LSA we originate.
    Newer,
    /// An instance at MaxSequenceNumber: ours must wrap (12.1.6).
    MaxSequence,
    /// An instance at MaxAge: a flush of ours by someone else.
    MaxAge,
    /// Our router ID (or, for a Network-LSA, one of our addresses) on an
    /// LSA we do not originate.
    Unoriginated,
}

impl SelfLsaKind {
    /// The anomaly counter of this kind.
    pub fn reason(self) -> &'static str {
        match self {
            SelfLsaKind::Newer => "self-lsa-newer",
            SelfLsaKind::MaxSequence => "self-lsa-max-seq",
            SelfLsaKind::MaxAge => "self-lsa-max-age",
            SelfLsaKind::Unoriginated => "self-lsa-unoriginated",
        }
    }
}

/// A view of one interface (like `show ip ospf interface`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// The interface.
    pub id: IfaceId,
    /// Name.
    pub name: String,
    /// Interface index.
    pub ifindex: u32,
    /// Our address.
    pub addr: Ipv4Addr,
    /// Area ID.
    pub area: Ipv4Addr,
    /// The area's type.
    pub area_type: AreaType,
    /// Senders of Hellos that disagree with the area type, heard within a
    /// RouterDeadInterval, with what they expect.
    pub area_type_mismatches: Vec<(Ipv4Addr, String)>,
    /// Network type.
    pub network: NetworkType,
    /// Interface state.
    pub state: IsmState,
    /// Designated Router address, 0.0.0.0 for none.
    pub dr: Ipv4Addr,
    /// Backup Designated Router address, 0.0.0.0 for none.
    pub bdr: Ipv4Addr,
    /// Neighbours known (any state).
    pub neighbors: usize,
    /// Neighbours in state Full.
    pub adjacencies: usize,
    /// Time until the next Hello.
    pub hello_due: Option<Duration>,
    /// Prefix length of the interface subnet.
    pub prefix_len: u8,
    /// HelloInterval (0 with fast hellos), Hellos per second with fast
    /// hellos, RouterDeadInterval and RxmtInterval, seconds.
    pub hello_interval: u16,
    pub hello_multiplier: u8,
    pub dead_interval: u32,
    pub retransmit_interval: u16,
    /// Output cost and router priority.
    pub cost: u16,
    pub priority: u8,
    /// IP MTU announced in Database Description packets.
    pub mtu: u16,
    /// Authentication: `null`, `simple` or `cryptographic`, and the Key ID
    /// used for sending now.
    pub auth: &'static str,
    pub send_key_id: Option<u8>,
}

/// A view of one neighbour (like `show ip ospf neighbor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborInfo {
    /// The interface.
    pub iface: IfaceId,
    /// Interface name.
    pub iface_name: String,
    /// Neighbour Router ID.
    pub router_id: Ipv4Addr,
    /// Neighbour address.
    pub addr: Ipv4Addr,
    /// Priority from its Hellos.
    pub priority: u8,
    /// State.
    pub state: NsmState,
    /// DR it declares.
    pub dr: Ipv4Addr,
    /// BDR it declares.
    pub bdr: Ipv4Addr,
    /// Time until the inactivity timer fires.
    pub dead_in: Duration,
    /// Link state retransmission list length.
    pub retransmit_len: usize,
    /// Link state request list length.
    pub request_len: usize,
    /// Database summary list length.
    pub summary_len: usize,
}

/// Shutdown progress.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shutdown {
    deadline: Instant,
    done: bool,
}

/// An OSPFv2 router: interfaces, neighbours, per-area databases and the
/// LSAs it originates.
#[derive(Clone, Debug)]
pub struct Instance {
    pub(crate) config: Config,
    pub(crate) start: Instant,
    wall_clock: u32,
    crypto: CryptoSeq,
    dd_seed: u32,
    next_iface: usize,
    pub(crate) ifaces: BTreeMap<IfaceId, Interface>,
    pub(crate) areas: BTreeMap<Ipv4Addr, Area>,
    pub(crate) vips: BTreeMap<Ipv4Addr, Vip>,
    pub(crate) stub_router: bool,
    pub(crate) stub_router_until: Option<Instant>,
    /// Cryptographic sequence state of senders not yet neighbours.
    pub(crate) pre_auth: BTreeMap<(IfaceId, Ipv4Addr), NeighborAuthState>,
    transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    drops: BTreeMap<&'static str, u64>,
    anomalies: BTreeMap<&'static str, u64>,
    /// [`Event::MaxLsaReached`] was emitted and the database has not
    /// shrunk well below the limit since.
    pub(crate) max_lsa_reached: bool,
    pub(crate) shutdown: Option<Shutdown>,
}

impl Instance {
    /// A new instance. `wall_clock_unix_secs` seeds the cryptographic
    /// sequence numbers (RFC 2328 D.3) and DD sequence numbers.
    ///
    /// # Panics
    ///
    /// If `config.router_id` is 0.0.0.0; use [`Instance::try_new`] to get
    /// an error instead.
    pub fn new(config: Config, now: Instant, wall_clock_unix_secs: u32) -> Instance {
        match Instance::try_new(config, now, wall_clock_unix_secs) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        }
    }

    /// A new instance, or an error for an invalid configuration.
    pub fn try_new(
        config: Config,
        now: Instant,
        wall_clock_unix_secs: u32,
    ) -> Result<Instance, ConfigError> {
        if config.router_id.is_unspecified() {
            return Err(ConfigError::ZeroRouterId);
        }
        let backbone = config.area_type(crate::area::BACKBONE);
        if backbone != AreaType::Normal {
            return Err(ConfigError::BackboneAreaType(backbone));
        }
        let stub_router_until = config
            .stub_router_on_startup
            .and_then(|d| now.checked_add(d));
        let dd_seed = wall_clock_unix_secs ^ u32::from(config.router_id).rotate_left(16);
        Ok(Instance {
            config,
            start: now,
            wall_clock: wall_clock_unix_secs,
            crypto: CryptoSeq::new(wall_clock_unix_secs),
            dd_seed,
            next_iface: 0,
            ifaces: BTreeMap::new(),
            areas: BTreeMap::new(),
            vips: BTreeMap::new(),
            stub_router: false,
            stub_router_until,
            pre_auth: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: BTreeMap::new(),
            anomalies: BTreeMap::new(),
            max_lsa_reached: false,
            shutdown: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds an interface and brings it up (RFC 2328 9.3 InterfaceUp).
    pub fn add_interface(&mut self, now: Instant, cfg: InterfaceConfig) -> IfaceId {
        let id = IfaceId(self.next_iface);
        self.next_iface += 1;
        let dead = Duration::from_secs(u64::from(cfg.dead_interval.max(1)));
        let types = self.config.area_type(cfg.area).lsa_types();
        let area = self
            .areas
            .entry(cfg.area)
            .or_insert_with(|| Area::new(cfg.area, types));
        // The first Router-LSA waits for the adjacency that shapes it, or
        // a RouterDeadInterval if none forms (see `origin`).
        if !area.gate_open {
            let deadline = now + dead;
            area.gate_deadline = Some(area.gate_deadline.map_or(deadline, |d| d.max(deadline)));
            let hard = now + 2 * dead;
            area.gate_hard = Some(area.gate_hard.map_or(hard, |d| d.max(hard)));
        }
        self.ifaces.insert(id, Interface::new(id, cfg));
        if self.shutdown.is_none() {
            self.ism(now, id, IsmEvent::InterfaceUp);
        }
        self.settle(now);
        id
    }

    /// Takes an interface down (RFC 2328 9.3 InterfaceDown) and forgets it.
    pub fn remove_interface(&mut self, now: Instant, id: IfaceId) {
        self.ism(now, id, IsmEvent::InterfaceDown);
        self.ifaces.remove(&id);
        self.pre_auth.retain(|(i, _), _| *i != id);
        self.settle(now);
    }

    /// Processes one received OSPF packet (the IP payload).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        ifindex: u32,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: &[u8],
    ) {
        self.receive(now, ifindex, src, dst, bytes);
        self.settle(now);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_shut_down() {
            return;
        }
        let ids: Vec<IfaceId> = self.ifaces.keys().copied().collect();
        for iid in ids {
            let Some(iface) = self.ifaces.get(&iid) else {
                continue;
            };
            let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
            let wait = due(iface.wait_due);
            let hello = due(iface.hello_due);
            let acks = due(iface.delayed_ack_due);
            let reoffer = due(iface.reoffer_due);
            let nbrs: Vec<(Ipv4Addr, [bool; 6])> = iface
                .neighbors
                .values()
                .map(|n| {
                    (
                        n.addr,
                        [
                            n.inactivity_due <= now,
                            due(n.dd_rxmt_due),
                            due(n.lsr_rxmt_due),
                            due(n.rxmt_due),
                            due(n.last_sent_hold),
                            due(n.stall_due),
                        ],
                    )
                })
                .collect();
            if wait {
                self.ism(now, iid, IsmEvent::WaitTimer);
            }
            if hello {
                self.send_hello(now, iid);
            }
            if acks {
                self.send_delayed_acks(now, iid);
            }
            if reoffer {
                self.reoffer_own_lsas(now, iid);
            }
            for (addr, [dead, dd, lsr, rxmt, hold, stall]) in nbrs {
                if dead {
                    self.nsm(now, iid, addr, NsmEvent::InactivityTimer);
                    continue;
                }
                if stall {
                    self.adjacency_stalled(now, iid, addr);
                    continue;
                }
                if dd {
                    if let Some(n) = self.nbr_mut(iid, addr) {
                        n.dd_rxmt_due = None;
                    }
                    self.send_dd(now, iid, addr);
                }
                if lsr {
                    self.retransmit_ls_requests(now, iid, addr);
                }
                if rxmt {
                    self.retransmit_lsas(now, iid, addr);
                }
                if hold {
                    if let Some(n) = self.nbr_mut(iid, addr) {
                        n.last_sent_hold = None;
                        n.last_sent = None;
                    }
                }
            }
        }
        let area_ids: Vec<Ipv4Addr> = self.areas.keys().copied().collect();
        for area_id in area_ids {
            let due = self
                .areas
                .get_mut(&area_id)
                .map(|a| a.lsdb.take_due(now))
                .unwrap_or_default();
            for key in due {
                self.lsa_timer_fired(now, area_id, key);
            }
        }
        if self.stub_router_until.is_some_and(|t| t <= now) {
            self.stub_router_until = None;
        }
        self.settle(now);
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Instance::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_shut_down() {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        for iface in self.ifaces.values() {
            consider(iface.hello_due);
            consider(iface.wait_due);
            consider(iface.delayed_ack_due);
            consider(iface.reoffer_due);
            for n in iface.neighbors.values() {
                consider(Some(n.inactivity_due));
                consider(n.dd_rxmt_due);
                consider(n.lsr_rxmt_due);
                consider(n.rxmt_due);
                consider(n.last_sent_hold);
                consider(n.stall_due);
            }
        }
        for area in self.areas.values() {
            consider(area.lsdb.next_timer());
        }
        consider(self.origination_timeout());
        consider(self.shutdown.map(|s| s.deadline));
        t
    }

    /// The next pending event without removing it.
    pub fn peek_event(&self) -> Option<&Event> {
        self.events.front()
    }

    /// Advertises `vip` as a /32 stub link in our Router-LSA for `area`
    /// with the given cost; again with another cost changes the cost (a
    /// drain), with another area moves it.
    pub fn advertise_vip(&mut self, now: Instant, area: Ipv4Addr, vip: Ipv4Addr, cost: u16) {
        if self.shutdown.is_some() {
            return;
        }
        let types = self.config.area_type(area).lsa_types();
        self.areas
            .entry(area)
            .or_insert_with(|| Area::new(area, types));
        self.vips.insert(vip, Vip { area, cost });
        self.settle(now);
    }

    /// Stops advertising `vip`.
    pub fn withdraw_vip(&mut self, now: Instant, vip: Ipv4Addr) {
        if self.vips.remove(&vip).is_some() {
            self.settle(now);
        }
    }

    /// The VIPs advertised, with area and cost.
    pub fn vips(&self) -> Vec<(Ipv4Addr, Ipv4Addr, u16)> {
        self.vips
            .iter()
            .map(|(v, x)| (*v, x.area, x.cost))
            .collect()
    }

    /// Turns stub-router mode (RFC 6987: transit and point-to-point links
    /// at metric 0xffff, stub links unchanged) on or off. Off also ends a
    /// startup stub-router period.
    pub fn set_stub_router(&mut self, now: Instant, on: bool) {
        self.stub_router = on;
        if !on {
            self.stub_router_until = None;
        }
        self.settle(now);
    }

    /// True while stub-router mode is on (configured or on startup).
    pub fn is_stub_router(&self, now: Instant) -> bool {
        self.stub_router_active(now)
    }

    /// Leaves the routing domain gracefully: VIPs withdrawn, every LSA we
    /// originated flushed (MaxAge, flooded), and once the flushes are
    /// acknowledged (or after a bounded time, about 2 s plus pacing) a
    /// last Hello listing no neighbour and every interface down.
    pub fn shutdown(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.vips.clear();
        let rid = self.config.router_id;
        self.shutdown = Some(Shutdown {
            deadline: now
                .checked_add(SHUTDOWN_GRACE.saturating_add(self.config.min_ls_interval))
                .unwrap_or(now + SHUTDOWN_GRACE),
            done: false,
        });
        for area in self.areas.values_mut() {
            let ours: Vec<LsaKey> = area
                .lsdb
                .iter()
                .filter(|(k, _)| k.advertising_router == rid)
                .map(|(k, _)| *k)
                .collect();
            for k in ours {
                area.self_orig.entry(k).or_default();
            }
        }
        self.settle(now);
    }

    /// True once [`Instance::shutdown`] has completed.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown.is_some_and(|s| s.done)
    }

    /// Interface summaries.
    pub fn interfaces(&self, now: Instant) -> Vec<InterfaceInfo> {
        self.ifaces
            .values()
            .map(|i| InterfaceInfo {
                id: i.id,
                name: i.cfg.name.clone(),
                ifindex: i.cfg.ifindex,
                addr: i.cfg.addr,
                area: i.cfg.area,
                area_type: self.config.area_type(i.cfg.area),
                area_type_mismatches: i.area_mismatches.current(now, i.dead_interval()),
                network: i.cfg.network,
                state: i.state,
                dr: i.dr,
                bdr: i.bdr,
                neighbors: i.neighbors.len(),
                adjacencies: i
                    .neighbors
                    .values()
                    .filter(|n| n.state == NsmState::Full)
                    .count(),
                hello_due: i.hello_due.map(|t| t.saturating_duration_since(now)),
                prefix_len: i.cfg.prefix_len,
                hello_interval: i.cfg.hello_interval,
                hello_multiplier: i.cfg.hello_multiplier,
                dead_interval: i.cfg.dead_interval,
                retransmit_interval: i.cfg.retransmit_interval,
                cost: i.cfg.cost,
                priority: i.cfg.priority,
                mtu: i.cfg.mtu,
                auth: match i.cfg.auth.au_type() {
                    0 => "null",
                    1 => "simple",
                    _ => "cryptographic",
                },
                send_key_id: i
                    .cfg
                    .auth
                    .send_key(u64::from(self.wall_now(now)))
                    .map(|k| k.id),
            })
            .collect()
    }

    /// Neighbour summaries.
    pub fn neighbors(&self, now: Instant) -> Vec<NeighborInfo> {
        self.ifaces
            .values()
            .flat_map(|i| {
                i.neighbors.values().map(move |n| NeighborInfo {
                    iface: i.id,
                    iface_name: i.cfg.name.clone(),
                    router_id: n.router_id,
                    addr: n.addr,
                    priority: n.priority,
                    state: n.state,
                    dr: n.dr,
                    bdr: n.bdr,
                    dead_in: n.inactivity_due.saturating_duration_since(now),
                    retransmit_len: n.rxmt.len(),
                    request_len: n.ls_request.len(),
                    summary_len: n.summary.len(),
                })
            })
            .collect()
    }

    /// Every LSA header in every area, with its current age.
    pub fn database(&self, now: Instant) -> Vec<(Ipv4Addr, LsaHeader)> {
        self.areas
            .values()
            .flat_map(|a| a.lsdb.iter().map(move |(_, e)| (a.id, e.header(now))))
            .collect()
    }

    /// A page of the database: at most `limit` LSA headers, with their
    /// current age, in (area, LSA key) order, starting after `after` (from
    /// the start when `None`). Walking the database page by page, the caller
    /// never holds all of it; LSAs installed or removed between two pages
    /// may be missed or seen, none twice.
    pub fn database_page(
        &self,
        now: Instant,
        after: Option<(Ipv4Addr, LsaKey)>,
        limit: usize,
    ) -> Vec<(Ipv4Addr, LsaHeader)> {
        let first_area = after.map_or(Ipv4Addr::UNSPECIFIED, |(a, _)| a);
        self.areas
            .range(first_area..)
            .flat_map(|(&id, a)| {
                let skip = after.filter(|(area, _)| *area == id).map(|(_, k)| k);
                a.lsdb
                    .iter()
                    .skip_while(move |(k, _)| skip.is_some_and(|s| **k <= s))
                    .map(move |(_, e)| (id, e.header(now)))
            })
            .take(limit)
            .collect()
    }

    /// One LSA, with its current age.
    pub fn lsa(&self, now: Instant, area: Ipv4Addr, key: LsaKey) -> Option<RawLsa> {
        let e = self.areas.get(&area)?.lsdb.get(&key)?;
        Some(e.to_send(now, 0))
    }

    /// Received packets dropped, by reason: the [`auth::AuthError::reason`]
    /// names, "decode", "wrong-area", "hello-mismatch", "area-type-mismatch", "mtu-mismatch",
    /// "unknown-neighbor", "bad-state", "own-packet", "not-dr",
    /// "wrong-subnet", "wrong-destination", "unknown-interface",
    /// "not-adjacent", "dd-sequence", "bad-ls-request", "bad-ls-update",
    /// "min-ls-arrival", "shut-down", "max-lsa", and for LSAs refused by
    /// [`crate::validate`] the [`crate::validate::Invalid::reason`] names
    /// ("bad-lsa-type", "bad-lsa-length", "bad-lsa-checksum", ...).
    /// Errors building our own packets count under "tx-…" names, and
    /// packets signed with an expired key (no send window open) under
    /// "tx-key-expired".
    pub fn drop_counters(&self) -> &BTreeMap<&'static str, u64> {
        &self.drops
    }

    /// Things a neighbour did that we repaired, by kind: the
    /// [`SelfLsaKind::reason`] names for copies of our own LSAs sent to us
    /// unasked, and "adjacency-stalled" for adjacencies restarted.
    pub fn anomaly_counters(&self) -> &BTreeMap<&'static str, u64> {
        &self.anomalies
    }

    /// LSAs in the database, every area.
    pub fn lsa_count(&self) -> usize {
        self.areas.values().map(|a| a.lsdb.len()).sum()
    }

    // ---- internals ---------------------------------------------------------

    pub(crate) fn count(&mut self, reason: &'static str) {
        *self.drops.entry(reason).or_insert(0) += 1;
    }

    pub(crate) fn count_n(&mut self, reason: &'static str, n: u64) {
        *self.drops.entry(reason).or_insert(0) += n;
    }

    pub(crate) fn count_anomaly(&mut self, reason: &'static str) {
        *self.anomalies.entry(reason).or_insert(0) += 1;
    }

    pub(crate) fn next_dd_seed(&mut self) -> u32 {
        self.dd_seed = self.dd_seed.wrapping_add(0x0001_0001);
        self.dd_seed
    }

    pub(crate) fn wall_now(&self, now: Instant) -> u32 {
        let secs = now.saturating_duration_since(self.start).as_secs();
        self.wall_clock
            .saturating_add(u32::try_from(secs).unwrap_or(u32::MAX))
    }

    /// Encodes, signs and queues a packet out of interface `iid`.
    pub(crate) fn send(&mut self, now: Instant, iid: IfaceId, dst: Ipv4Addr, body: PacketBody) {
        let wall = self.wall_now(now);
        let seq = self.crypto.next_at(wall);
        let Some(iface) = self.ifaces.get(&iid) else {
            return;
        };
        let packet = Packet {
            router_id: self.config.router_id,
            area_id: iface.cfg.area,
            autype: iface.cfg.auth.au_type(),
            auth_data: [0; 8],
            body,
        };
        let Ok(mut buf) = packet.encode() else {
            self.count("tx-encode-error");
            return;
        };
        if auth::sign(&iface.cfg.auth, &mut buf, seq, u64::from(wall)).is_err() {
            self.count("tx-sign-error");
            return;
        }
        // RFC 2328 D.3: every send window has closed and the key that
        // expired last signs on; counted so that the operator sees it.
        let key_expired = iface.cfg.auth.send_key_expired(u64::from(wall));
        self.transmits.push_back(Transmit {
            ifindex: iface.cfg.ifindex,
            src: iface.cfg.addr,
            dst,
            bytes: buf.freeze(),
        });
        if key_expired {
            self.count("tx-key-expired");
        }
    }

    /// Replaces the authentication of interface `iid` (a key rollover
    /// applied by a reload). Neighbours stay as they are, each keeping the
    /// last cryptographic sequence number it sent (RFC 2328 D.5.3 keeps it
    /// per neighbour, for all keys together); the next packet sent is signed
    /// with the new configuration. False if there is no such interface.
    pub fn set_interface_auth(&mut self, iid: IfaceId, auth: auth::AuthConfig) -> bool {
        match self.ifaces.get_mut(&iid) {
            Some(iface) => {
                iface.cfg.auth = auth;
                true
            }
            None => false,
        }
    }

    /// The receive path (RFC 2328 8.2) up to dispatch by packet type.
    fn receive(&mut self, now: Instant, ifindex: u32, src: Ipv4Addr, dst: Ipv4Addr, bytes: &[u8]) {
        if self.shutdown.is_some_and(|s| s.done) {
            self.count("shut-down");
            return;
        }
        let Some(iid) = self
            .ifaces
            .values()
            .find(|i| i.cfg.ifindex == ifindex && i.state != IsmState::Down)
            .map(|i| i.id)
        else {
            self.count("unknown-interface");
            return;
        };
        let wall = u64::from(self.wall_now(now));
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        // Our own multicast looped back.
        if src == iface.cfg.addr {
            self.count("own-packet");
            return;
        }
        // 8.2: the destination is AllSPFRouters, our address, or
        // AllDRouters only when we are DR or Backup.
        if dst == ALL_D_ROUTERS && !iface.is_dr_or_backup() {
            self.count("not-dr");
            return;
        }
        if dst != ALL_SPF_ROUTERS && dst != ALL_D_ROUTERS && dst != iface.cfg.addr {
            self.count("wrong-destination");
            return;
        }
        // 8.2: on broadcast networks the source must be on our subnet.
        if iface.cfg.network == NetworkType::Broadcast && !iface.cfg.on_subnet(src) {
            self.count("wrong-subnet");
            return;
        }
        // D.5: authentication, with the sender's sequence state.
        let Interface { cfg, neighbors, .. } = iface;
        let verified = match neighbors.get_mut(&src) {
            Some(n) => auth::verify(&cfg.auth, bytes, &mut n.auth, wall),
            None => {
                if self.pre_auth.len() >= 4096 {
                    self.pre_auth.clear();
                }
                let state = self.pre_auth.entry((iid, src)).or_default();
                auth::verify(&cfg.auth, bytes, state, wall)
            }
        };
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                self.count(e.reason());
                return;
            }
        };
        let Some(packet_bytes) = bytes.get(..verified.packet_len) else {
            self.count("decode");
            return;
        };
        let packet = match Packet::decode_bytes(&Bytes::copy_from_slice(packet_bytes)) {
            Ok(p) => p,
            Err(_) => {
                self.count("decode");
                return;
            }
        };
        if packet.router_id == self.config.router_id {
            self.count("own-packet");
            return;
        }
        // 8.2: the area must be the interface's (no virtual links here).
        let Some(iface) = self.ifaces.get(&iid) else {
            return;
        };
        if packet.area_id != iface.cfg.area {
            self.count("wrong-area");
            return;
        }
        let kind = packet.body.name();
        if let PacketBody::Hello(hello) = packet.body {
            self.recv_hello(now, iid, src, packet.router_id, hello);
            if let Some(n) = self.nbr_mut(iid, src) {
                n.last_heard = Some((now, kind));
            }
            return;
        }
        // Everything else comes from a known neighbour (8.2).
        if iface
            .neighbors
            .get(&src)
            .is_none_or(|n| n.router_id != packet.router_id)
        {
            self.count("unknown-neighbor");
            return;
        }
        if let Some(n) = self.nbr_mut(iid, src) {
            n.last_heard = Some((now, kind));
        }
        match packet.body {
            PacketBody::DatabaseDescription(dd) => self.recv_dd(now, iid, src, dd),
            PacketBody::LinkStateRequest(lsr) => self.recv_ls_request(now, iid, src, lsr),
            PacketBody::LinkStateUpdate(lsu) => self.recv_ls_update(now, iid, src, lsu),
            PacketBody::LinkStateAck(ack) => self.recv_ls_ack(now, iid, src, ack),
            PacketBody::Hello(_) => {}
        }
    }

    /// After every input: originate what changed, send what was queued,
    /// remove acknowledged MaxAge LSAs, advance the shutdown.
    fn settle(&mut self, now: Instant) {
        if self.is_shut_down() {
            return;
        }
        self.run_origination(now);
        // Our own floods may have emptied a request list (13.3 step 1b).
        let area_ids: Vec<Ipv4Addr> = self.areas.keys().copied().collect();
        for area_id in area_ids {
            self.check_loading_done(now, area_id);
        }
        self.flush_output(now);
        self.sweep_max_age();
        // Removing a MaxAge copy may unblock a sequence-number wrap.
        self.run_origination(now);
        self.flush_output(now);
        if self.max_lsa_reached {
            // Stored and asked for: below nine tenths of the limit again.
            let asked: usize = self
                .ifaces
                .values()
                .flat_map(|i| i.neighbors.values())
                .map(|n| n.ls_request.len())
                .sum();
            if self.lsa_count() + asked < self.config.max_lsa / 10 * 9 {
                self.max_lsa_reached = false;
            }
        }
        self.check_shutdown(now);
    }

    fn check_shutdown(&mut self, now: Instant) {
        let Some(sd) = self.shutdown else {
            return;
        };
        if sd.done {
            return;
        }
        let rid = self.config.router_id;
        let unflushed = self.areas.values().any(|a| {
            a.lsdb
                .iter()
                .any(|(k, e)| k.advertising_router == rid && !e.is_max_age(now))
        });
        let unacked = self.ifaces.values().any(|i| {
            i.neighbors
                .values()
                .any(|n| n.rxmt.keys().any(|k| k.advertising_router == rid))
        });
        if (unflushed || unacked) && now < sd.deadline {
            return;
        }
        self.shutdown = Some(Shutdown {
            deadline: sd.deadline,
            done: true,
        });
        // A last Hello without neighbours makes them drop us at once
        // (1-WayReceived) instead of after RouterDeadInterval.
        let ids: Vec<IfaceId> = self.ifaces.keys().copied().collect();
        for iid in ids {
            if self
                .ifaces
                .get(&iid)
                .is_some_and(|i| i.state != IsmState::Down)
            {
                self.send_hello(now, iid);
                self.ism(now, iid, IsmEvent::InterfaceDown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_pages_walk_every_area_in_order_once() {
        let start = Instant::now();
        let cfg = Config {
            router_id: Ipv4Addr::new(198, 18, 0, 11),
            ..Config::default()
        };
        let mut inst = Instance::new(cfg, start, 1_700_000_000);
        let areas = [Ipv4Addr::new(0, 0, 0, 1), Ipv4Addr::UNSPECIFIED];
        for (i, area) in areas.iter().enumerate() {
            let n = u8::try_from(i).expect("small");
            let mut c = InterfaceConfig::new(
                format!("eth{i}"),
                u32::from(n) + 1,
                Ipv4Addr::new(198, 18, n, 1),
                31,
                *area,
            );
            c.network = NetworkType::PointToPoint;
            inst.add_interface(start, c);
            inst.advertise_vip(start, *area, Ipv4Addr::new(192, 0, 2, 10 + n), 0);
        }
        // Our Router-LSA waits for the dead interval (a gate); run past it.
        let mut now = start;
        for _ in 0..1000 {
            match inst.poll_timeout() {
                Some(t) if t <= start + Duration::from_secs(60) => {
                    now = now.max(t);
                    inst.handle_timeout(now);
                }
                _ => break,
            }
        }
        let all = inst.database(now);
        assert_eq!(all.len(), 2, "a Router-LSA in each area: {all:?}");
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let page = inst.database_page(now, after, 1);
            let Some(&(area, h)) = page.last() else { break };
            assert_eq!(page.len(), 1);
            after = Some((area, h.key()));
            walked.extend(page);
        }
        let key = |v: &[(Ipv4Addr, LsaHeader)]| -> Vec<(Ipv4Addr, LsaKey)> {
            v.iter().map(|(a, h)| (*a, h.key())).collect()
        };
        assert_eq!(key(&walked), key(&all));
        assert_eq!(walked[0].0, Ipv4Addr::UNSPECIFIED, "areas in order");
        assert_eq!(key(&inst.database_page(now, None, 10)), key(&all));
        assert!(inst.database_page(now, None, 0).is_empty());
    }
}
