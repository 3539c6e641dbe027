//! OSPF interfaces: configuration, the interface state machine (RFC 2328
//! 9.1-9.3), DR/BDR election (9.4, via [`crate::election`]) and Hello
//! packets (9.5 sending, 10.5 receiving).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::area::MismatchSenders;
use crate::auth::AuthConfig;
use crate::election::{self, Candidate};
use crate::instance::{Event, IfaceId, Instance};
use crate::lsa::{LsaHeader, RawLsa};
use crate::neighbor::{Neighbor, NsmEvent, NsmState};
use crate::packet::{Hello, PacketBody, ALL_D_ROUTERS, ALL_SPF_ROUTERS};

/// IPv4 header without options, counted against the interface MTU.
pub(crate) const IP_HEADER_LEN: usize = 20;
/// OSPF packet header (RFC 2328 A.3.1).
pub(crate) const OSPF_HEADER_LEN: usize = 24;

/// The kinds of network this speaker supports (RFC 2328 1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetworkType {
    /// A broadcast LAN with DR/BDR election.
    Broadcast,
    /// A point-to-point link (/31, /30): one neighbour, addressed by its
    /// source IP, packets to AllSPFRouters.
    PointToPoint,
}

/// Configuration of one OSPF interface (RFC 2328 9, C.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Interface name, for display.
    pub name: String,
    /// Kernel interface index; received packets are matched on it.
    pub ifindex: u32,
    /// Our address on the interface.
    pub addr: Ipv4Addr,
    /// Prefix length of the interface subnet.
    pub prefix_len: u8,
    /// IP MTU, advertised in Database Description packets and bounding
    /// every packet we build.
    pub mtu: u16,
    /// Area ID.
    pub area: Ipv4Addr,
    /// Network type.
    pub network: NetworkType,
    /// HelloInterval, seconds. 0 with a `hello_multiplier` means fast
    /// hellos: HelloInterval 0 is advertised (FRR's `ip ospf dead-interval
    /// minimal hello-multiplier N`), and `dead_interval` is then 1.
    pub hello_interval: u16,
    /// With `hello_interval` 0: Hellos sent per second (1-20).
    pub hello_multiplier: u8,
    /// RouterDeadInterval, seconds.
    pub dead_interval: u32,
    /// RxmtInterval, seconds.
    pub retransmit_interval: u16,
    /// InfTransDelay, seconds.
    pub transmit_delay: u16,
    /// Router priority; 0 (the default) keeps a director out of DR/BDR.
    pub priority: u8,
    /// Interface output cost.
    pub cost: u16,
    /// Accept Database Description packets announcing a larger MTU.
    pub mtu_ignore: bool,
    /// Authentication on this interface.
    pub auth: AuthConfig,
}

impl InterfaceConfig {
    /// A broadcast interface with RFC 2328 default timers (hello 10, dead
    /// 40, retransmit 5, delay 1), priority 0, cost 10, MTU 1500 and no
    /// authentication.
    pub fn new(
        name: impl Into<String>,
        ifindex: u32,
        addr: Ipv4Addr,
        prefix_len: u8,
        area: Ipv4Addr,
    ) -> Self {
        InterfaceConfig {
            name: name.into(),
            ifindex,
            addr,
            prefix_len,
            mtu: 1500,
            area,
            network: NetworkType::Broadcast,
            hello_interval: 10,
            hello_multiplier: 0,
            dead_interval: 40,
            retransmit_interval: 5,
            transmit_delay: 1,
            priority: 0,
            cost: 10,
            mtu_ignore: false,
            auth: AuthConfig::Null,
        }
    }

    /// How often Hellos go out.
    pub fn hello_period(&self) -> Duration {
        if self.hello_interval == 0 && self.hello_multiplier > 0 {
            Duration::from_millis(1000 / u64::from(self.hello_multiplier))
        } else {
            Duration::from_secs(u64::from(self.hello_interval.max(1)))
        }
    }

    /// The subnet mask.
    pub fn mask(&self) -> Ipv4Addr {
        let len = u32::from(self.prefix_len.min(32));
        let bits = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        Ipv4Addr::from(bits)
    }

    /// The subnet address.
    pub fn network_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & u32::from(self.mask()))
    }

    /// True if `a` is on the interface subnet.
    pub fn on_subnet(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & u32::from(self.mask()) == u32::from(self.network_addr())
    }
}

/// Interface states (RFC 2328 9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IsmState {
    /// Not operational.
    Down,
    /// Looped back (not used by this speaker: no lower-layer loop detection).
    Loopback,
    /// Waiting to learn the DR/BDR before electing.
    Waiting,
    /// Point-to-point: adjacency with the neighbour is attempted.
    PointToPoint,
    /// Broadcast, neither DR nor BDR.
    DROther,
    /// Broadcast, Backup Designated Router.
    Backup,
    /// Broadcast, Designated Router.
    DR,
}

impl fmt::Display for IsmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IsmState::Down => "Down",
            IsmState::Loopback => "Loopback",
            IsmState::Waiting => "Waiting",
            IsmState::PointToPoint => "Point-To-Point",
            IsmState::DROther => "DROther",
            IsmState::Backup => "Backup",
            IsmState::DR => "DR",
        })
    }
}

/// Interface state machine events (RFC 2328 9.2). LoopInd/UnloopInd are
/// not generated: nothing below us detects loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IsmEvent {
    InterfaceUp,
    WaitTimer,
    BackupSeen,
    NeighborChange,
    InterfaceDown,
}

/// Runtime state of one interface (RFC 2328 9).
#[derive(Clone, Debug)]
pub(crate) struct Interface {
    pub(crate) id: IfaceId,
    pub(crate) cfg: InterfaceConfig,
    pub(crate) state: IsmState,
    /// Designated Router (interface address), 0.0.0.0 for none.
    pub(crate) dr: Ipv4Addr,
    /// Backup Designated Router (interface address), 0.0.0.0 for none.
    pub(crate) bdr: Ipv4Addr,
    /// Neighbours keyed by their source address.
    pub(crate) neighbors: BTreeMap<Ipv4Addr, Neighbor>,
    pub(crate) hello_due: Option<Instant>,
    pub(crate) wait_due: Option<Instant>,
    /// Delayed acknowledgements (RFC 2328 13.5), sent together: one
    /// vector per packet, each filled up to a packet's worth. During a
    /// database load they add up to tens of thousands; packet-sized
    /// pieces hold them without one large vector's doubling and copying.
    pub(crate) delayed_acks: Vec<Vec<LsaHeader>>,
    pub(crate) delayed_ack_due: Option<Instant>,
    /// LSAs flooded out of this interface by the current input, sent in as
    /// few Link State Updates as the MTU allows.
    pub(crate) flood_queue: Vec<RawLsa>,
    /// When our own LSAs are next offered again to the Full neighbours
    /// here (see [`REOFFER_RXMT_INTERVALS`]).
    pub(crate) reoffer_due: Option<Instant>,
    /// Senders of Hellos that disagree with the area type, each reported
    /// once (see [`MismatchSenders`]).
    pub(crate) area_mismatches: MismatchSenders,
}

/// Every this many RxmtIntervals (50 s by default) our own LSAs are sent
/// once more to every Full neighbour, acknowledged or not. An
/// acknowledgement proves nothing on a LAN without authentication: a host
/// that forges the router's acknowledgement of an instance the router
/// never took (it arrived within its MinLSArrival, or was lost) would stop
/// our retransmissions and leave the router with an old instance (a VIP
/// missing or withdrawn) until our next refresh, 30 minutes later. A
/// neighbour that has the instance answers the duplicate with an
/// acknowledgement and nothing else (RFC 2328 13 step 7); one that lacks
/// it takes it.
pub(crate) const REOFFER_RXMT_INTERVALS: u32 = 10;

impl Interface {
    pub(crate) fn new(id: IfaceId, cfg: InterfaceConfig) -> Self {
        Interface {
            id,
            cfg,
            state: IsmState::Down,
            dr: Ipv4Addr::UNSPECIFIED,
            bdr: Ipv4Addr::UNSPECIFIED,
            neighbors: BTreeMap::new(),
            hello_due: None,
            wait_due: None,
            delayed_acks: Vec::new(),
            delayed_ack_due: None,
            flood_queue: Vec::new(),
            reoffer_due: None,
            area_mismatches: MismatchSenders::default(),
        }
    }

    pub(crate) fn rxmt_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.cfg.retransmit_interval.max(1)))
    }

    pub(crate) fn dead_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.cfg.dead_interval.max(1)))
    }

    /// How long an acknowledgement may be delayed: a second, but always
    /// well under the neighbours' RxmtInterval (RFC 2328 13.5).
    pub(crate) fn delayed_ack_delay(&self) -> Duration {
        Duration::from_millis(u64::from(self.cfg.retransmit_interval) * 500)
            .min(Duration::from_secs(1))
    }

    /// LSA headers that fit one Link State Acknowledgement.
    pub(crate) fn acks_per_packet(&self) -> usize {
        ((self.max_packet_len() - OSPF_HEADER_LEN) / crate::lsa::LSA_HEADER_LEN).max(1)
    }

    /// Largest OSPF packet (header and body, not the authentication
    /// trailer) that fits the MTU in one IP datagram.
    pub(crate) fn max_packet_len(&self) -> usize {
        let room = usize::from(self.cfg.mtu)
            .saturating_sub(IP_HEADER_LEN)
            .saturating_sub(self.cfg.auth.trailer_len());
        // Never below what one entry of each packet type needs.
        room.max(OSPF_HEADER_LEN + 8 + 20)
    }

    /// True if we are DR or BDR on this interface.
    pub(crate) fn is_dr_or_backup(&self) -> bool {
        matches!(self.state, IsmState::DR | IsmState::Backup)
    }

    /// Where flooded LSAs and delayed acks go (RFC 2328 13.3 step 5, 13.5):
    /// on broadcast networks the DR and BDR send to AllSPFRouters, others
    /// to AllDRouters; point-to-point always AllSPFRouters.
    pub(crate) fn flood_dst(&self) -> Ipv4Addr {
        match self.cfg.network {
            NetworkType::Broadcast if !self.is_dr_or_backup() => ALL_D_ROUTERS,
            _ => ALL_SPF_ROUTERS,
        }
    }

    /// Where packets for one neighbour go: its address on broadcast
    /// networks, AllSPFRouters on point-to-point links (RFC 2328 8.1).
    pub(crate) fn neighbor_dst(&self, addr: Ipv4Addr) -> Ipv4Addr {
        match self.cfg.network {
            NetworkType::Broadcast => addr,
            NetworkType::PointToPoint => ALL_SPF_ROUTERS,
        }
    }

    /// Whether an adjacency should be formed with the neighbour at `addr`
    /// (RFC 2328 10.4).
    pub(crate) fn adjacency_wanted(&self, addr: Ipv4Addr) -> bool {
        match self.cfg.network {
            NetworkType::PointToPoint => true,
            NetworkType::Broadcast => {
                let me = self.cfg.addr;
                let none = Ipv4Addr::UNSPECIFIED;
                (self.dr != none && (self.dr == me || self.dr == addr))
                    || (self.bdr != none && (self.bdr == me || self.bdr == addr))
            }
        }
    }

    /// The neighbour whose Full adjacency shapes our Router-LSA link for
    /// this interface is Full (RFC 2328 12.4.1.2: Full with the DR, or we
    /// are DR with any Full neighbour; 12.4.1.1: the p2p neighbour).
    pub(crate) fn transit_adjacency_full(&self) -> bool {
        let full = |n: &Neighbor| n.state == NsmState::Full;
        match self.cfg.network {
            NetworkType::PointToPoint => self.neighbors.values().any(full),
            NetworkType::Broadcast => match self.state {
                IsmState::DR => self.neighbors.values().any(full),
                IsmState::Backup | IsmState::DROther => {
                    self.neighbors.get(&self.dr).is_some_and(full)
                }
                _ => false,
            },
        }
    }
}

impl Instance {
    /// The interface state machine (RFC 2328 9.3).
    pub(crate) fn ism(&mut self, now: Instant, iid: IfaceId, ev: IsmEvent) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        match (iface.state, ev) {
            // 9.3 InterfaceUp: start Hellos; point-to-point goes straight to
            // Point-to-Point, a router that may not become DR to DROther,
            // others wait RouterDeadInterval to learn the DR/BDR.
            (IsmState::Down, IsmEvent::InterfaceUp) => {
                let next = match iface.cfg.network {
                    NetworkType::PointToPoint => IsmState::PointToPoint,
                    NetworkType::Broadcast if iface.cfg.priority == 0 => IsmState::DROther,
                    NetworkType::Broadcast => {
                        iface.wait_due = Some(now + iface.dead_interval());
                        IsmState::Waiting
                    }
                };
                iface.reoffer_due = Some(now + iface.rxmt_interval() * REOFFER_RXMT_INTERVALS);
                self.set_iface_state(iid, next);
                self.send_hello(now, iid);
            }
            // 9.3 BackupSeen / WaitTimer: stop waiting and elect (9.4).
            (IsmState::Waiting, IsmEvent::BackupSeen | IsmEvent::WaitTimer) => {
                iface.wait_due = None;
                self.elect(now, iid);
            }
            // 9.3 NeighborChange: re-run the election.
            (IsmState::DROther | IsmState::Backup | IsmState::DR, IsmEvent::NeighborChange) => {
                self.elect(now, iid);
            }
            // 9.3 InterfaceDown: from any state, kill every neighbour.
            (_, IsmEvent::InterfaceDown) => {
                iface.hello_due = None;
                iface.wait_due = None;
                iface.reoffer_due = None;
                iface.delayed_acks.clear();
                iface.delayed_ack_due = None;
                iface.flood_queue.clear();
                iface.dr = Ipv4Addr::UNSPECIFIED;
                iface.bdr = Ipv4Addr::UNSPECIFIED;
                // Down first, so the neighbours' deaths do not re-elect.
                self.set_iface_state(iid, IsmState::Down);
                let addrs: Vec<Ipv4Addr> = self
                    .ifaces
                    .get(&iid)
                    .map(|i| i.neighbors.keys().copied().collect())
                    .unwrap_or_default();
                for addr in addrs {
                    self.nsm(now, iid, addr, NsmEvent::KillNbr);
                }
            }
            // Events that do not apply in the current state are ignored
            // (e.g. NeighborChange while Waiting: the wait timer decides).
            _ => {}
        }
    }

    fn set_iface_state(&mut self, iid: IfaceId, to: IsmState) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let from = iface.state;
        if from == to {
            return;
        }
        iface.state = to;
        self.events.push_back(Event::InterfaceState {
            iface: iid,
            name: iface.cfg.name.clone(),
            from,
            to,
        });
    }

    /// DR/BDR election (RFC 2328 9.4), then the consequences: the new
    /// interface state, and AdjOK? for every neighbour in 2-Way or more
    /// when the DR or BDR changed.
    fn elect(&mut self, now: Instant, iid: IfaceId) {
        let router_id = self.config.router_id;
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let me = Candidate {
            router_id,
            addr: iface.cfg.addr,
            priority: iface.cfg.priority,
            dr: iface.dr,
            bdr: iface.bdr,
        };
        let others: Vec<Candidate> = iface
            .neighbors
            .values()
            .filter(|n| n.state >= NsmState::TwoWay)
            .map(|n| Candidate {
                router_id: n.router_id,
                addr: n.addr,
                priority: n.priority,
                dr: n.dr,
                bdr: n.bdr,
            })
            .collect();
        let e = election::elect(me, &others);
        let changed = (e.dr, e.bdr) != (iface.dr, iface.bdr);
        iface.dr = e.dr;
        iface.bdr = e.bdr;
        let state = if e.dr == iface.cfg.addr {
            IsmState::DR
        } else if e.bdr == iface.cfg.addr {
            IsmState::Backup
        } else {
            IsmState::DROther
        };
        let adj: Vec<Ipv4Addr> = if changed {
            iface
                .neighbors
                .values()
                .filter(|n| n.state >= NsmState::TwoWay)
                .map(|n| n.addr)
                .collect()
        } else {
            Vec::new()
        };
        self.set_iface_state(iid, state);
        for addr in adj {
            self.nsm(now, iid, addr, NsmEvent::AdjOk);
        }
        if changed {
            // Tell the others at once rather than at the next HelloInterval,
            // so they start their adjacencies with the new DR/BDR now.
            self.send_hello(now, iid);
        }
    }

    /// Sends a Hello (RFC 2328 9.5) listing every neighbour heard from
    /// (state Init or higher).
    pub(crate) fn send_hello(&mut self, now: Instant, iid: IfaceId) {
        // Only the last Hello of a shutdown lists nobody (see
        // `check_shutdown`): an earlier one would make the neighbours drop
        // us before our flushes reach them.
        let list_neighbors = !self.is_shut_down();
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let area_type = self.config.area_type(iface.cfg.area);
        iface.hello_due = Some(now + iface.cfg.hello_period());
        let hello = Hello {
            // 9.5: the mask is 0.0.0.0 on point-to-point networks.
            network_mask: match iface.cfg.network {
                NetworkType::Broadcast => iface.cfg.mask(),
                NetworkType::PointToPoint => Ipv4Addr::UNSPECIFIED,
            },
            hello_interval: iface.cfg.hello_interval,
            // E in a normal area (AS-external-LSAs are flooded here), N in
            // an NSSA, neither in a stub area (RFC 2328 A.2, RFC 3101 2.1).
            options: area_type.hello_options(),
            router_priority: iface.cfg.priority,
            router_dead_interval: iface.cfg.dead_interval,
            designated_router: iface.dr,
            backup_designated_router: iface.bdr,
            neighbors: if list_neighbors {
                iface
                    .neighbors
                    .values()
                    .filter(|n| n.state >= NsmState::Init)
                    .map(|n| n.router_id)
                    .collect()
            } else {
                Vec::new()
            },
        };
        self.send(now, iid, ALL_SPF_ROUTERS, PacketBody::Hello(hello));
    }

    /// Receives a Hello (RFC 2328 10.5).
    pub(crate) fn recv_hello(
        &mut self,
        now: Instant,
        iid: IfaceId,
        src: Ipv4Addr,
        router_id: Ipv4Addr,
        hello: Hello,
    ) {
        let my_id = self.config.router_id;
        let Some(iface) = self.ifaces.get(&iid) else {
            return;
        };
        let cfg = &iface.cfg;
        // 10.5: the mask must match on broadcast networks (not on p2p);
        // HelloInterval and RouterDeadInterval must match everywhere.
        if (cfg.network == NetworkType::Broadcast && hello.network_mask != cfg.mask())
            || hello.hello_interval != cfg.hello_interval
            || hello.router_dead_interval != cfg.dead_interval
        {
            self.count("hello-mismatch");
            return;
        }
        // 10.5: the E-bit must match the area's ExternalRoutingCapability;
        // RFC 3101 2.1: so must the N-bit. Reported once per sender.
        let area_type = self.config.area_type(cfg.area);
        if let Err(mismatch) = area_type.check_hello(hello.options) {
            let dead = iface.dead_interval();
            let name = cfg.name.clone();
            self.count("area-type-mismatch");
            let Some(iface) = self.ifaces.get_mut(&iid) else {
                return;
            };
            if iface
                .area_mismatches
                .heard(now, dead, src, router_id, mismatch)
            {
                self.events.push_back(Event::AreaTypeMismatch {
                    iface: iid,
                    name,
                    addr: src,
                    router_id,
                    reason: mismatch.describe(src),
                });
            }
            return;
        }
        let network = cfg.network;
        // Find the neighbour. A new router ID behind a known address (or,
        // on point-to-point links, a known router ID behind a new address)
        // is a different neighbour: kill the old one first.
        let stale: Vec<Ipv4Addr> = iface
            .neighbors
            .values()
            .filter(|n| match network {
                NetworkType::Broadcast => n.addr == src && n.router_id != router_id,
                NetworkType::PointToPoint => (n.addr == src) != (n.router_id == router_id),
            })
            .map(|n| n.addr)
            .collect();
        for addr in stale {
            self.nsm(now, iid, addr, NsmEvent::KillNbr);
        }
        let auth = self.pre_auth.remove(&(iid, src)).unwrap_or_default();
        let dd_seed = self.next_dd_seed();
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        iface.area_mismatches.agreed(src);
        let is_new = !iface.neighbors.contains_key(&src);
        let nbr = iface
            .neighbors
            .entry(src)
            .or_insert_with(|| Neighbor::new(router_id, src, auth, dd_seed, now));
        let (prev_priority, prev_dr, prev_bdr) = (nbr.priority, nbr.dr, nbr.bdr);
        nbr.priority = hello.router_priority;
        nbr.dr = hello.designated_router;
        nbr.bdr = hello.backup_designated_router;
        nbr.hello_options = hello.options;
        self.nsm(now, iid, src, NsmEvent::HelloReceived);
        if is_new {
            // Answer a new neighbour at once, listing it, so that it sees
            // two-way connectivity without waiting a HelloInterval.
            self.send_hello(now, iid);
        }
        if !hello.neighbors.contains(&my_id) {
            self.nsm(now, iid, src, NsmEvent::OneWayReceived);
            return;
        }
        self.nsm(now, iid, src, NsmEvent::TwoWayReceived);
        if network != NetworkType::Broadcast {
            return;
        }
        let Some(iface) = self.ifaces.get(&iid) else {
            return;
        };
        let waiting = iface.state == IsmState::Waiting;
        let none = Ipv4Addr::UNSPECIFIED;
        let declares_dr = hello.designated_router == src;
        let declares_bdr = hello.backup_designated_router == src;
        let mut backup_seen = false;
        let mut change = !is_new && prev_priority != hello.router_priority;
        if declares_dr && hello.backup_designated_router == none && waiting {
            backup_seen = true;
        } else if declares_dr != (prev_dr == src) {
            change = true;
        }
        if declares_bdr && waiting {
            backup_seen = true;
        } else if declares_bdr != (prev_bdr == src) {
            change = true;
        }
        if backup_seen {
            self.ism(now, iid, IsmEvent::BackupSeen);
        }
        if change {
            self.ism(now, iid, IsmEvent::NeighborChange);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_subnets() {
        let mut c = InterfaceConfig::new(
            "eth0",
            2,
            "198.18.0.11".parse().unwrap(),
            24,
            Ipv4Addr::UNSPECIFIED,
        );
        assert_eq!(c.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network_addr(), Ipv4Addr::new(198, 18, 0, 0));
        assert!(c.on_subnet(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(!c.on_subnet(Ipv4Addr::new(198, 18, 1, 1)));
        c.prefix_len = 31;
        assert_eq!(c.mask(), Ipv4Addr::new(255, 255, 255, 254));
        assert_eq!(c.network_addr(), Ipv4Addr::new(198, 18, 0, 10));
        c.prefix_len = 0;
        assert_eq!(c.mask(), Ipv4Addr::UNSPECIFIED);
        c.prefix_len = 32;
        assert_eq!(c.mask(), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn state_names_match_router_output() {
        assert_eq!(IsmState::DROther.to_string(), "DROther");
        assert_eq!(IsmState::PointToPoint.to_string(), "Point-To-Point");
        assert_eq!(IsmState::DR.to_string(), "DR");
        assert!(IsmState::Waiting < IsmState::DR);
    }
}
