//! Neighbours: the neighbour state machine (RFC 2328 10.1-10.4), the
//! Database Exchange (10.6 receiving and 10.8 sending Database Description
//! packets) and Link State Requests (10.7 receiving, 10.9 sending).
//!
//! Link State Requests deviate from 10.9's "one request outstanding" on
//! purpose: up to `LSR_WINDOW_PACKETS` (16) packets' worth of entries are kept
//! in flight, topped up as answers arrive, and an entry left unanswered
//! while later ones were answered is asked for again at once. A large
//! database (tens of thousands of LSAs) then loads at the speed of the
//! link instead of one RxmtInterval per lost answer.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Instant;

use crate::auth::NeighborAuthState;
use crate::flood::RxmtEntry;
use crate::instance::{Event, IfaceId, Instance};
use crate::interface::{NetworkType, OSPF_HEADER_LEN};
use crate::lsa::{LsaHeader, LsaKey, Options, RawLsa, LSA_HEADER_LEN};
use crate::packet::{DatabaseDescription, DdFlags, LinkStateRequest, LsRequest, PacketBody};
use crate::validate::check_header;

/// Link State Request packets' worth of entries kept outstanding.
pub(crate) const LSR_WINDOW_PACKETS: usize = 16;
/// Size of an LS request entry (RFC 2328 A.3.4).
const LS_REQUEST_LEN: usize = 12;
/// Fixed part of a Database Description body (RFC 2328 A.3.3).
const DD_FIXED_LEN: usize = 8;
/// An adjacency in ExStart, Exchange or Loading that makes no progress for
/// this many RxmtIntervals is restarted: by then every packet of ours has
/// been retransmitted three times. (ExStart allows a RouterDeadInterval
/// more: the neighbour's Wait timer.)
pub(crate) const STALL_RXMT_INTERVALS: u32 = 4;

/// Neighbour states (RFC 2328 10.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NsmState {
    /// No recent information.
    Down,
    /// NBMA only; never used here.
    Attempt,
    /// Hello seen, two-way not yet established.
    Init,
    /// Two-way communication; no adjacency wanted (or not yet).
    TwoWay,
    /// Negotiating master/slave for the Database Exchange.
    ExStart,
    /// Exchanging Database Description packets.
    Exchange,
    /// Requesting the LSAs found newer at the neighbour.
    Loading,
    /// Fully adjacent.
    Full,
}

impl fmt::Display for NsmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NsmState::Down => "Down",
            NsmState::Attempt => "Attempt",
            NsmState::Init => "Init",
            NsmState::TwoWay => "2-Way",
            NsmState::ExStart => "ExStart",
            NsmState::Exchange => "Exchange",
            NsmState::Loading => "Loading",
            NsmState::Full => "Full",
        })
    }
}

/// Neighbour state machine events (RFC 2328 10.2). Start is NBMA-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NsmEvent {
    HelloReceived,
    TwoWayReceived,
    NegotiationDone,
    ExchangeDone,
    BadLsReq,
    LoadingDone,
    AdjOk,
    SeqNumberMismatch,
    OneWayReceived,
    KillNbr,
    InactivityTimer,
    /// Not in RFC 2328: an adjacency that stopped making progress in
    /// ExStart, Exchange or Loading starts over from ExStart.
    Restart,
    // No lower layer reports neighbour loss to us; kept so the state
    // machine reads like 10.3.
    #[allow(dead_code)]
    LlDown,
}

/// The neighbour data structure (RFC 2328 10).
#[derive(Clone, Debug)]
pub(crate) struct Neighbor {
    pub(crate) router_id: Ipv4Addr,
    pub(crate) addr: Ipv4Addr,
    pub(crate) priority: u8,
    /// DR and BDR the neighbour declares in its Hellos.
    pub(crate) dr: Ipv4Addr,
    pub(crate) bdr: Ipv4Addr,
    pub(crate) hello_options: Options,
    /// Options of the Database Description packets (RFC 2328 10.6).
    pub(crate) dd_options: Options,
    pub(crate) state: NsmState,
    pub(crate) inactivity_due: Instant,
    /// Cryptographic sequence state (RFC 2328 D.5.3).
    pub(crate) auth: NeighborAuthState,
    /// True while we are master of the Database Exchange.
    pub(crate) master: bool,
    pub(crate) dd_seq: u32,
    /// (I|M|MS bits, options, sequence) of the last DD received, for
    /// duplicate detection.
    pub(crate) last_rcvd: Option<(u8, u8, u32)>,
    /// The last DD sent, resent on retransmission (master) or on a
    /// duplicate (slave).
    pub(crate) last_sent: Option<DatabaseDescription>,
    pub(crate) dd_rxmt_due: Option<Instant>,
    /// A slave keeps its last DD for RouterDeadInterval after the
    /// exchange, to answer a master that did not hear it (10.8).
    pub(crate) last_sent_hold: Option<Instant>,
    /// Database summary list (10.3 NegotiationDone).
    pub(crate) summary: VecDeque<LsaHeader>,
    /// Link state request list: what the neighbour has newer.
    pub(crate) ls_request: BTreeMap<LsaKey, LsaHeader>,
    /// Entries of the request list asked for and not yet answered, with
    /// the batch that asked for them.
    pub(crate) requested: BTreeMap<LsaKey, u64>,
    pub(crate) lsr_batch: u64,
    pub(crate) lsr_rxmt_due: Option<Instant>,
    /// Link state retransmission list (13.3, 13.6).
    pub(crate) rxmt: BTreeMap<LsaKey, RxmtEntry>,
    pub(crate) rxmt_due: Option<Instant>,
    /// Direct acknowledgements to send (13.5).
    pub(crate) direct_acks: Vec<LsaHeader>,
    /// LSAs to send to this neighbour alone (answers to requests, newer
    /// copies sent back), not retransmitted.
    pub(crate) pending_lsu: Vec<RawLsa>,
    /// Our own LSAs offered again (see `flood::reoffer_own_lsas`): sent to
    /// this neighbour alone, without pacing the next origination.
    pub(crate) reoffer: Vec<RawLsa>,
    /// While in ExStart, Exchange or Loading: when the adjacency counts as
    /// stalled unless it makes progress (a state change, an accepted
    /// Database Description, an answered request) before.
    pub(crate) stall_due: Option<Instant>,
    /// The last packet accepted from the neighbour: when, and its type.
    pub(crate) last_heard: Option<(Instant, &'static str)>,
    /// Why we last refused something the neighbour sent (for the log line
    /// of a stalled adjacency).
    pub(crate) last_refusal: Option<String>,
}

impl Neighbor {
    pub(crate) fn new(
        router_id: Ipv4Addr,
        addr: Ipv4Addr,
        auth: NeighborAuthState,
        dd_seq: u32,
        now: Instant,
    ) -> Self {
        Neighbor {
            router_id,
            addr,
            priority: 0,
            dr: Ipv4Addr::UNSPECIFIED,
            bdr: Ipv4Addr::UNSPECIFIED,
            hello_options: Options::empty(),
            dd_options: Options::empty(),
            state: NsmState::Down,
            inactivity_due: now,
            auth,
            master: false,
            dd_seq,
            last_rcvd: None,
            last_sent: None,
            dd_rxmt_due: None,
            last_sent_hold: None,
            summary: VecDeque::new(),
            ls_request: BTreeMap::new(),
            requested: BTreeMap::new(),
            lsr_batch: 0,
            lsr_rxmt_due: None,
            rxmt: BTreeMap::new(),
            rxmt_due: None,
            direct_acks: Vec::new(),
            pending_lsu: Vec::new(),
            reoffer: Vec::new(),
            stall_due: None,
            last_heard: None,
            last_refusal: None,
        }
    }

    /// Clears the lists and the exchange state (RFC 2328 10.3: "the Link
    /// state retransmission list, Database summary list and Link state
    /// request list are cleared").
    fn clear_adjacency(&mut self) {
        // New lists rather than cleared ones: after a database exchange
        // their capacity would stay allocated for nothing.
        self.summary = VecDeque::new();
        self.ls_request.clear();
        self.requested.clear();
        self.lsr_rxmt_due = None;
        self.rxmt.clear();
        self.rxmt_due = None;
        self.last_rcvd = None;
        self.last_sent = None;
        self.dd_rxmt_due = None;
        self.last_sent_hold = None;
        self.pending_lsu = Vec::new();
        self.reoffer = Vec::new();
    }

    /// True if the neighbour understands opaque LSAs (RFC 5250 3.1).
    pub(crate) fn opaque_capable(&self) -> bool {
        self.dd_options.contains(Options::O)
    }

    /// Takes the next DD to send from the summary list: as many headers as
    /// fit `capacity`, M set if more remain, MS if we are master.
    /// `options` as [`crate::area::AreaType::dd_options`] gives them.
    fn next_dd(&mut self, capacity: usize, mtu: u16, options: Options) -> DatabaseDescription {
        let n = capacity.min(self.summary.len());
        let lsa_headers: Vec<LsaHeader> = self.summary.drain(..n).collect();
        let mut flags = DdFlags::empty();
        flags.set(DdFlags::MS, self.master);
        flags.set(DdFlags::M, !self.summary.is_empty());
        DatabaseDescription {
            interface_mtu: mtu,
            options,
            flags,
            dd_sequence_number: self.dd_seq,
            lsa_headers,
        }
    }
}

/// The next state for `ev` in `old` (RFC 2328 10.3). `adj_ok` is the
/// answer of 10.4 for this neighbour, `requests_empty` whether the link
/// state request list is empty.
fn transition(old: NsmState, ev: NsmEvent, adj_ok: bool, requests_empty: bool) -> NsmState {
    use NsmEvent as E;
    use NsmState as S;
    match (old, ev) {
        // 10.3 "State(s): Any State": KillNbr, LLDown, InactivityTimer.
        (_, E::KillNbr | E::LlDown | E::InactivityTimer) => S::Down,
        // 10.3 Down/HelloReceived: Init (and the inactivity timer).
        (S::Down, E::HelloReceived) => S::Init,
        // 10.3 Init or greater/HelloReceived: restart the timer only.
        (_, E::HelloReceived) => old,
        // 10.3 Init/2-WayReceived: adjacency or not (10.4).
        (S::Init, E::TwoWayReceived) if adj_ok => S::ExStart,
        (S::Init, E::TwoWayReceived) => S::TwoWay,
        // 10.3 ExStart/NegotiationDone: summary list built, Exchange.
        (S::ExStart, E::NegotiationDone) => S::Exchange,
        // 10.3 Exchange/ExchangeDone: Full if nothing to request.
        (S::Exchange, E::ExchangeDone) if requests_empty => S::Full,
        (S::Exchange, E::ExchangeDone) => S::Loading,
        // 10.3 Loading/LoadingDone.
        (S::Loading, E::LoadingDone) => S::Full,
        // 10.3 2-Way/AdjOK?: start an adjacency if now wanted.
        (S::TwoWay, E::AdjOk) if adj_ok => S::ExStart,
        // 10.3 ExStart or greater/AdjOK?: tear it down if no longer wanted.
        (S::ExStart | S::Exchange | S::Loading | S::Full, E::AdjOk) if !adj_ok => S::TwoWay,
        // 10.3 Exchange or greater/SeqNumberMismatch, BadLSReq: restart.
        (S::Exchange | S::Loading | S::Full, E::SeqNumberMismatch | E::BadLsReq) => S::ExStart,
        // A stalled adjacency starts over (ExStart again too).
        (S::ExStart | S::Exchange | S::Loading, E::Restart) => S::ExStart,
        // 10.3 2-Way or greater/1-WayReceived.
        (S::TwoWay | S::ExStart | S::Exchange | S::Loading | S::Full, E::OneWayReceived) => S::Init,
        // Everything else leaves the state alone (e.g. 2-WayReceived in
        // 2-Way or above, 1-WayReceived in Init).
        _ => old,
    }
}

impl Instance {
    /// The neighbour state machine (RFC 2328 10.3), with the actions of
    /// each transition.
    pub(crate) fn nsm(&mut self, now: Instant, iid: IfaceId, addr: Ipv4Addr, ev: NsmEvent) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let dd_options = self.config.area_type(iface.cfg.area).dd_options();
        let adj_ok = iface.adjacency_wanted(addr);
        let dead = iface.dead_interval();
        let stall_after = iface.rxmt_interval() * STALL_RXMT_INTERVALS;
        let network = iface.cfg.network;
        let mtu = iface.cfg.mtu;
        let Some(nbr) = iface.neighbors.get_mut(&addr) else {
            return;
        };
        let old = nbr.state;
        let new = transition(old, ev, adj_ok, nbr.ls_request.is_empty());
        if ev == NsmEvent::HelloReceived {
            nbr.inactivity_due = now + dead;
        }
        // Leaving an adjacency (to 2-Way or Init) clears the lists.
        if old >= NsmState::ExStart && new <= NsmState::TwoWay {
            nbr.clear_adjacency();
        }
        // Entering ExStart (10.3 2-Way/AdjOK?, SeqNumberMismatch, BadLSReq):
        // bump the DD sequence number, claim mastership, send empty DDs
        // with I, M and MS set every RxmtInterval until answered.
        let exstart =
            new == NsmState::ExStart && (old != NsmState::ExStart || ev == NsmEvent::Restart);
        if exstart {
            nbr.clear_adjacency();
            nbr.dd_seq = nbr.dd_seq.wrapping_add(1);
            nbr.master = true;
            nbr.last_sent = Some(DatabaseDescription {
                interface_mtu: mtu,
                options: dd_options,
                flags: DdFlags::I | DdFlags::M | DdFlags::MS,
                dd_sequence_number: nbr.dd_seq,
                lsa_headers: Vec::new(),
            });
        }
        if old == NsmState::Exchange && new > NsmState::Exchange {
            // The exchange is over: the master stops retransmitting; the
            // slave keeps its last packet for a while (10.8).
            nbr.dd_rxmt_due = None;
            // The summary list is sent: free it (it held the whole
            // database).
            nbr.summary.shrink_to_fit();
            if nbr.master {
                nbr.last_sent = None;
            } else {
                nbr.last_sent_hold = Some(now + dead);
            }
        }
        if new == NsmState::Full {
            nbr.requested.clear();
            nbr.lsr_rxmt_due = None;
        }
        // A new state is progress; outside the exchange nothing can stall.
        // In ExStart the neighbour may first sit out its Wait timer (its
        // RouterDeadInterval, RFC 2328 9.4) before it elects a DR and
        // answers us.
        if (NsmState::ExStart..=NsmState::Loading).contains(&new) {
            if exstart {
                nbr.stall_due = Some(now + dead + stall_after);
            } else if old != new {
                nbr.stall_due = Some(now + stall_after);
            }
        } else {
            nbr.stall_due = None;
            nbr.last_refusal = None;
        }
        nbr.state = new;
        let router_id = nbr.router_id;
        if new == NsmState::Down {
            iface.neighbors.remove(&addr);
        }
        if old != new {
            self.events.push_back(Event::NeighborState {
                iface: iid,
                router_id,
                addr,
                from: old,
                to: new,
            });
        }
        if exstart {
            self.send_dd(now, iid, addr);
        }
        if old == NsmState::ExStart && new == NsmState::Exchange {
            self.build_summary(now, iid, addr);
        }
        if new == NsmState::Loading {
            self.send_ls_requests(now, iid, addr, Vec::new());
        }
        // 9.2 NeighborChange: bidirectional communication gained or lost.
        if network == NetworkType::Broadcast
            && (old >= NsmState::TwoWay) != (new >= NsmState::TwoWay)
        {
            self.ism(now, iid, crate::interface::IsmEvent::NeighborChange);
        }
    }

    /// Sends (or resends) the last DD built for the neighbour, and keeps
    /// the master's retransmission timer running (10.8).
    pub(crate) fn send_dd(&mut self, now: Instant, iid: IfaceId, addr: Ipv4Addr) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let dst = iface.neighbor_dst(addr);
        let rxmt = iface.rxmt_interval();
        let Some(nbr) = iface.neighbors.get_mut(&addr) else {
            return;
        };
        let Some(dd) = nbr.last_sent.clone() else {
            return;
        };
        if nbr.master && matches!(nbr.state, NsmState::ExStart | NsmState::Exchange) {
            nbr.dd_rxmt_due = Some(now + rxmt);
        }
        self.send(now, iid, dst, PacketBody::DatabaseDescription(dd));
    }

    /// Builds the next DD from the summary list and sends it.
    fn send_next_dd(&mut self, now: Instant, iid: IfaceId, addr: Ipv4Addr) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let capacity = (iface.max_packet_len() - OSPF_HEADER_LEN - DD_FIXED_LEN) / LSA_HEADER_LEN;
        let mtu = iface.cfg.mtu;
        let options = self.config.area_type(iface.cfg.area).dd_options();
        let Some(nbr) = iface.neighbors.get_mut(&addr) else {
            return;
        };
        let dd = nbr.next_dd(capacity.max(1), mtu, options);
        nbr.last_sent = Some(dd);
        self.send_dd(now, iid, addr);
    }

    /// 10.3 NegotiationDone: the database summary list holds the headers
    /// of every LSA in the area (link-local ones of this interface, opaque
    /// ones only for opaque-capable neighbours); MaxAge LSAs go on the
    /// retransmission list instead.
    fn build_summary(&mut self, now: Instant, iid: IfaceId, addr: Ipv4Addr) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let Some(area) = self.areas.get(&iface.cfg.area) else {
            return;
        };
        let Some(nbr) = iface.neighbors.get_mut(&addr) else {
            return;
        };
        let opaque = nbr.opaque_capable();
        for (key, entry) in area.lsdb.iter() {
            if !entry.visible_on(iid) || (key.lsa_type.is_opaque() && !opaque) {
                continue;
            }
            let header = entry.header(now);
            if header.is_max_age() {
                nbr.rxmt.insert(*key, RxmtEntry { header, sent: now });
            } else {
                nbr.summary.push_back(header);
            }
        }
        if !nbr.rxmt.is_empty() && nbr.rxmt_due.is_none() {
            nbr.rxmt_due = Some(now);
        }
    }

    /// Receives a Database Description packet (RFC 2328 10.6).
    pub(crate) fn recv_dd(
        &mut self,
        now: Instant,
        iid: IfaceId,
        addr: Ipv4Addr,
        dd: DatabaseDescription,
    ) {
        let my_id = self.config.router_id;
        let Some(iface) = self.ifaces.get(&iid) else {
            return;
        };
        // 10.6: a DD announcing an MTU larger than ours is rejected, since
        // we could not receive its full-size packets (unless told to
        // ignore the MTU). The neighbour stays in ExStart/Exchange.
        if !iface.cfg.mtu_ignore && dd.interface_mtu > iface.cfg.mtu {
            let ours = iface.cfg.mtu;
            self.count("mtu-mismatch");
            if let Some(n) = self.nbr_mut(iid, addr) {
                n.last_refusal = Some(format!(
                    "its Database Description announces MTU {}, above ours ({ours}): \
                     fix the MTU or set mtu_ignore",
                    dd.interface_mtu
                ));
            }
            return;
        }
        let Some(state) = iface.neighbors.get(&addr).map(|n| n.state) else {
            return;
        };
        // 10.6 Init: as if 2-WayReceived, then go on if now in ExStart.
        let state = if state == NsmState::Init {
            self.nsm(now, iid, addr, NsmEvent::TwoWayReceived);
            match self.nbr_state(iid, addr) {
                Some(s) => s,
                None => return,
            }
        } else {
            state
        };
        let Some(nbr) = self.nbr_mut(iid, addr) else {
            return;
        };
        let flags = DdFlags(dd.flags.bits() & (DdFlags::I | DdFlags::M | DdFlags::MS).bits());
        let id = (flags.bits(), dd.options.bits(), dd.dd_sequence_number);
        let duplicate = nbr.last_rcvd == Some(id);
        match state {
            NsmState::Down | NsmState::Attempt | NsmState::Init => {
                self.count("bad-state");
            }
            // 10.6 2-Way: ignored; no adjacency is wanted.
            NsmState::TwoWay => self.count("not-adjacent"),
            NsmState::ExStart => {
                let all = DdFlags::I | DdFlags::M | DdFlags::MS;
                if flags.contains(all) && dd.lsa_headers.is_empty() && nbr.router_id > my_id {
                    // The neighbour is master: we are slave and adopt its
                    // sequence number.
                    nbr.master = false;
                    nbr.dd_seq = dd.dd_sequence_number;
                    // A slave only answers; it never retransmits on a timer.
                    nbr.dd_rxmt_due = None;
                } else if !flags.contains(DdFlags::I)
                    && !flags.contains(DdFlags::MS)
                    && dd.dd_sequence_number == nbr.dd_seq
                    && nbr.router_id < my_id
                {
                    // The neighbour accepted being slave: we are master.
                } else {
                    // Not a negotiation outcome: ignored (10.6). But if it is
                    // the slave-to-be's own initial DD, it has just entered
                    // ExStart and missed ours: resend now rather than after
                    // RxmtInterval (it may have dropped ours while it was
                    // still electing its DR).
                    if flags.contains(all) && nbr.router_id < my_id && nbr.master {
                        self.send_dd(now, iid, addr);
                    }
                    return;
                }
                nbr.dd_options = dd.options;
                self.nsm(now, iid, addr, NsmEvent::NegotiationDone);
                self.accept_dd(now, iid, addr, dd, id);
            }
            NsmState::Exchange => {
                if duplicate {
                    // The master discards duplicates, the slave resends.
                    if !nbr.master {
                        self.send_dd(now, iid, addr);
                    }
                    return;
                }
                // The MS bit must say the opposite of our role; I must be
                // clear; options must not change; the sequence number must
                // be the expected one.
                let in_sequence = if nbr.master {
                    dd.dd_sequence_number == nbr.dd_seq
                } else {
                    dd.dd_sequence_number == nbr.dd_seq.wrapping_add(1)
                };
                if flags.contains(DdFlags::MS) == nbr.master
                    || flags.contains(DdFlags::I)
                    || dd.options != nbr.dd_options
                    || !in_sequence
                {
                    self.count("dd-sequence");
                    self.nsm(now, iid, addr, NsmEvent::SeqNumberMismatch);
                    return;
                }
                self.accept_dd(now, iid, addr, dd, id);
            }
            NsmState::Loading | NsmState::Full => {
                // 10.6: only duplicates are expected now; the slave answers
                // them with its last packet, anything else restarts.
                if duplicate {
                    if !nbr.master {
                        self.send_dd(now, iid, addr);
                    }
                } else {
                    self.count("dd-sequence");
                    self.nsm(now, iid, addr, NsmEvent::SeqNumberMismatch);
                }
            }
        }
    }

    /// Processes an accepted DD (RFC 2328 10.6, "next in sequence"): LSA
    /// headers newer than ours go on the request list, then the master
    /// moves to the next sequence number and the slave answers.
    fn accept_dd(
        &mut self,
        now: Instant,
        iid: IfaceId,
        addr: Ipv4Addr,
        dd: DatabaseDescription,
        id: (u8, u8, u32),
    ) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let stall_after = iface.rxmt_interval() * STALL_RXMT_INTERVALS;
        let Some(area) = self.areas.get(&iface.cfg.area) else {
            return;
        };
        let room = self
            .config
            .max_lsa
            .saturating_sub(self.areas.values().map(|a| a.lsdb.len()).sum());
        let Some(nbr) = iface.neighbors.get_mut(&addr) else {
            return;
        };
        nbr.last_rcvd = Some(id);
        nbr.stall_due = Some(now + stall_after);
        let mut refused = None;
        let mut over_limit = 0u64;
        for h in &dd.lsa_headers {
            // 10.6: an LS type we do not take is a SeqNumberMismatch; so is
            // a header no router would accept (FRR drops the whole packet
            // for one): listing it back would wedge our other adjacencies.
            if let Err(e) = check_header(h, area.types) {
                refused = Some((e, *h));
                break;
            }
            let key = h.key();
            let newer = area
                .lsdb
                .get_on(&key, iid)
                .is_none_or(|e| h.compare_instance(&e.header(now)).is_gt());
            if newer {
                let keep_old = nbr
                    .ls_request
                    .get(&key)
                    .is_some_and(|old| old.compare_instance(h).is_ge());
                if !keep_old {
                    // The request list is bounded like the database: a
                    // neighbour describing millions of LSAs gets no more
                    // memory than max_lsa allows.
                    if !nbr.ls_request.contains_key(&key) && nbr.ls_request.len() >= room {
                        over_limit += 1;
                        continue;
                    }
                    nbr.ls_request.insert(key, *h);
                }
            }
        }
        if let Some((e, h)) = refused {
            self.count(e.reason());
            if let Some(n) = self.nbr_mut(iid, addr) {
                n.last_refusal = Some(format!(
                    "its Database Description listed {} (length {}, age {}, seq {:#010x}): {e}",
                    h.key(),
                    h.length,
                    h.age,
                    h.seq
                ));
            }
            self.nsm(now, iid, addr, NsmEvent::SeqNumberMismatch);
            return;
        }
        let their_more = dd.flags.contains(DdFlags::M);
        if nbr.master {
            nbr.dd_seq = nbr.dd_seq.wrapping_add(1);
            let we_done = nbr
                .last_sent
                .as_ref()
                .is_none_or(|d| !d.flags.contains(DdFlags::M));
            if we_done && !their_more {
                self.nsm(now, iid, addr, NsmEvent::ExchangeDone);
            } else {
                self.send_next_dd(now, iid, addr);
            }
        } else {
            nbr.dd_seq = dd.dd_sequence_number;
            self.send_next_dd(now, iid, addr);
            let we_done = self
                .nbr_mut(iid, addr)
                .and_then(|n| n.last_sent.as_ref())
                .is_some_and(|d| !d.flags.contains(DdFlags::M));
            if we_done && !their_more {
                self.nsm(now, iid, addr, NsmEvent::ExchangeDone);
            }
        }
        if over_limit > 0 {
            self.max_lsa_refused(over_limit);
        }
        // Ask for what we lack while the exchange goes on (10.9 allows it).
        if matches!(
            self.nbr_state(iid, addr),
            Some(NsmState::Exchange | NsmState::Loading)
        ) {
            self.send_ls_requests(now, iid, addr, Vec::new());
        }
    }

    /// Sends Link State Requests (RFC 2328 10.9): first `again` (entries
    /// that look lost), then fresh entries until the window is full.
    pub(crate) fn send_ls_requests(
        &mut self,
        now: Instant,
        iid: IfaceId,
        addr: Ipv4Addr,
        again: Vec<LsaKey>,
    ) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let per_packet = ((iface.max_packet_len() - OSPF_HEADER_LEN) / LS_REQUEST_LEN).max(1);
        let window = per_packet * LSR_WINDOW_PACKETS;
        let rxmt = iface.rxmt_interval();
        let dst = iface.neighbor_dst(addr);
        let Some(nbr) = iface.neighbors.get_mut(&addr) else {
            return;
        };
        if !matches!(nbr.state, NsmState::Exchange | NsmState::Loading) {
            return;
        }
        // Forget answered requests.
        let Neighbor {
            ls_request,
            requested,
            ..
        } = nbr;
        requested.retain(|k, _| ls_request.contains_key(k));
        let mut keys: Vec<LsaKey> = again
            .into_iter()
            .filter(|k| ls_request.contains_key(k))
            .collect();
        // Top up only when half the window has been answered, and in full
        // packets unless this is the tail of the list (in Exchange more
        // headers may still come, so no tail yet).
        if requested.len() * 2 <= window {
            let room = window.saturating_sub(requested.len() + keys.len());
            let avail = ls_request
                .len()
                .saturating_sub(requested.len() + keys.len());
            let take = if avail <= room && nbr.state == NsmState::Loading {
                avail
            } else {
                avail.min(room) / per_packet * per_packet
            };
            let fresh: Vec<LsaKey> = ls_request
                .keys()
                .filter(|k| !requested.contains_key(k) && !keys.contains(k))
                .take(take)
                .copied()
                .collect();
            keys.extend(fresh);
        }
        if keys.is_empty() {
            return;
        }
        nbr.lsr_batch += 1;
        let batch = nbr.lsr_batch;
        for k in &keys {
            nbr.requested.insert(*k, batch);
        }
        nbr.lsr_rxmt_due = Some(now + rxmt);
        for chunk in keys.chunks(per_packet) {
            let entries = chunk.iter().map(|k| LsRequest::from(*k)).collect();
            self.send(
                now,
                iid,
                dst,
                PacketBody::LinkStateRequest(LinkStateRequest { entries }),
            );
        }
    }

    /// The LSR retransmission timer fired: ask again for everything still
    /// outstanding (10.9).
    pub(crate) fn retransmit_ls_requests(&mut self, now: Instant, iid: IfaceId, addr: Ipv4Addr) {
        let Some(nbr) = self.nbr_mut(iid, addr) else {
            return;
        };
        nbr.lsr_rxmt_due = None;
        let again: Vec<LsaKey> = nbr.requested.keys().copied().collect();
        nbr.requested.clear();
        self.send_ls_requests(now, iid, addr, again);
    }

    /// Receives a Link State Request (RFC 2328 10.7): every requested LSA
    /// is sent back in Link State Updates; one we do not have is BadLSReq.
    pub(crate) fn recv_ls_request(
        &mut self,
        now: Instant,
        iid: IfaceId,
        addr: Ipv4Addr,
        lsr: LinkStateRequest,
    ) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let delay = iface.cfg.transmit_delay;
        let Some(area) = self.areas.get(&iface.cfg.area) else {
            return;
        };
        let Some(nbr) = iface.neighbors.get_mut(&addr) else {
            return;
        };
        if nbr.state < NsmState::Exchange {
            self.count("bad-state");
            return;
        }
        let mut answer = Vec::with_capacity(lsr.entries.len());
        for req in &lsr.entries {
            let found = req
                .key()
                .and_then(|k| area.lsdb.get_on(&k, iid))
                .map(|e| e.to_send(now, delay));
            match found {
                Some(raw) => answer.push(raw),
                None => {
                    self.count("bad-ls-request");
                    self.nsm(now, iid, addr, NsmEvent::BadLsReq);
                    return;
                }
            }
        }
        nbr.pending_lsu.extend(answer);
    }

    /// A neighbour's stall timer fired: no progress in ExStart, Exchange or
    /// Loading for four RxmtIntervals. Says why (what we keep
    /// retransmitting, what it last sent, what we last refused of it), and
    /// starts the adjacency over.
    pub(crate) fn adjacency_stalled(&mut self, now: Instant, iid: IfaceId, addr: Ipv4Addr) {
        let Some(iface) = self.ifaces.get(&iid) else {
            return;
        };
        let mut stalled_for = iface.rxmt_interval() * STALL_RXMT_INTERVALS;
        let Some(n) = iface.neighbors.get(&addr) else {
            return;
        };
        if n.state == NsmState::ExStart {
            stalled_for += iface.dead_interval();
        }
        let role = if n.master { "master" } else { "slave" };
        let mut reason = match n.state {
            NsmState::ExStart => format!(
                "no answer to our Database Description (we claim master, DD sequence {:#x})",
                n.dd_seq
            ),
            NsmState::Exchange => format!(
                "the Database Description exchange stopped (we are {role}, DD sequence {:#x}, \
                 {} headers of ours still to describe)",
                n.dd_seq,
                n.summary.len()
            ),
            NsmState::Loading => {
                let first = n
                    .requested
                    .keys()
                    .next()
                    .or_else(|| n.ls_request.keys().next());
                match first {
                    Some(k) => format!(
                        "{} LSAs still requested, unanswered (first: {k})",
                        n.ls_request.len()
                    ),
                    None => "loading without a request outstanding".to_string(),
                }
            }
            _ => return,
        };
        reason.push_str(&format!(" for {} s", stalled_for.as_secs()));
        match n.last_heard {
            Some((t, kind)) => reason.push_str(&format!(
                "; last heard: {kind} {:.1} s ago",
                now.saturating_duration_since(t).as_secs_f64()
            )),
            None => reason.push_str("; nothing heard from it"),
        }
        let repeating = n
            .last_heard
            .is_some_and(|(_, k)| k == "Database Description");
        if n.state == NsmState::Exchange && !n.master && repeating {
            reason.push_str(
                " (it keeps repeating its Database Description: our answers do not reach it)",
            );
        }
        if let Some(r) = &n.last_refusal {
            reason.push_str("; last refused: ");
            reason.push_str(r);
        }
        let (router_id, state) = (n.router_id, n.state);
        self.count_anomaly("adjacency-stalled");
        self.events.push_back(Event::AdjacencyStalled {
            iface: iid,
            router_id,
            addr,
            state,
            reason,
        });
        self.nsm(now, iid, addr, NsmEvent::Restart);
    }

    pub(crate) fn nbr_mut(&mut self, iid: IfaceId, addr: Ipv4Addr) -> Option<&mut Neighbor> {
        self.ifaces.get_mut(&iid)?.neighbors.get_mut(&addr)
    }

    pub(crate) fn nbr_state(&self, iid: IfaceId, addr: Ipv4Addr) -> Option<NsmState> {
        Some(self.ifaces.get(&iid)?.neighbors.get(&addr)?.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NsmEvent as E;
    use NsmState as S;

    #[test]
    fn transitions_follow_rfc_2328_10_3() {
        assert_eq!(transition(S::Down, E::HelloReceived, false, true), S::Init);
        assert_eq!(transition(S::Full, E::HelloReceived, false, true), S::Full);
        assert_eq!(
            transition(S::Init, E::TwoWayReceived, false, true),
            S::TwoWay
        );
        assert_eq!(
            transition(S::Init, E::TwoWayReceived, true, true),
            S::ExStart
        );
        assert_eq!(
            transition(S::TwoWay, E::TwoWayReceived, true, true),
            S::TwoWay
        );
        assert_eq!(
            transition(S::ExStart, E::NegotiationDone, true, true),
            S::Exchange
        );
        assert_eq!(
            transition(S::Exchange, E::ExchangeDone, true, true),
            S::Full
        );
        assert_eq!(
            transition(S::Exchange, E::ExchangeDone, true, false),
            S::Loading
        );
        assert_eq!(transition(S::Loading, E::LoadingDone, true, true), S::Full);
        assert_eq!(transition(S::TwoWay, E::AdjOk, true, true), S::ExStart);
        assert_eq!(transition(S::TwoWay, E::AdjOk, false, true), S::TwoWay);
        assert_eq!(transition(S::Full, E::AdjOk, false, true), S::TwoWay);
        assert_eq!(transition(S::Full, E::AdjOk, true, true), S::Full);
        assert_eq!(transition(S::Loading, E::BadLsReq, true, true), S::ExStart);
        assert_eq!(
            transition(S::Full, E::SeqNumberMismatch, true, true),
            S::ExStart
        );
        assert_eq!(
            transition(S::ExStart, E::SeqNumberMismatch, true, true),
            S::ExStart
        );
        assert_eq!(transition(S::Full, E::OneWayReceived, true, true), S::Init);
        assert_eq!(transition(S::Init, E::OneWayReceived, true, true), S::Init);
        for s in [S::Init, S::TwoWay, S::Exchange, S::Full] {
            assert_eq!(transition(s, E::InactivityTimer, true, true), S::Down);
            assert_eq!(transition(s, E::KillNbr, true, true), S::Down);
            assert_eq!(transition(s, E::LlDown, true, true), S::Down);
        }
    }

    #[test]
    fn display_matches_router_output() {
        assert_eq!(S::TwoWay.to_string(), "2-Way");
        assert_eq!(S::Full.to_string(), "Full");
        assert_eq!(S::ExStart.to_string(), "ExStart");
    }
}
