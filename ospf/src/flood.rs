//! The flooding procedure (RFC 2328 section 13): receiving Link State
//! Updates (13), installing (13.2), flooding out (13.3), acknowledging
//! (13.5, 13.7), retransmitting (13.6), and aging LSAs out and removing
//! them from the database (14).
//!
//! Everything a single input produces for one interface or neighbour is
//! queued and sent by [`Instance::flush_output`] in as few packets as the
//! MTU allows.

use std::cmp::Ordering;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::instance::{IfaceId, Instance};
use crate::interface::{IsmState, OSPF_HEADER_LEN, REOFFER_RXMT_INTERVALS};
use crate::lsa::{
    LsaHeader, LsaKey, LsaType, RawLsa, MAX_AGE, MAX_SEQUENCE_NUMBER, MIN_LS_ARRIVAL,
};
use crate::lsdb::same_instance;
use crate::neighbor::{NsmEvent, NsmState, STALL_RXMT_INTERVALS};
use crate::packet::{LinkStateAck, LinkStateUpdate, PacketBody};
use crate::validate::check_lsa;

/// One entry of a link state retransmission list (RFC 2328 13.3, 13.6).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RxmtEntry {
    /// The instance that must be acknowledged.
    pub(crate) header: LsaHeader,
    /// When it was last sent to the neighbour.
    pub(crate) sent: Instant,
}

/// "# LSAs" field of a Link State Update (RFC 2328 A.3.5).
const LSU_FIXED_LEN: usize = 4;

fn min_ls_arrival() -> Duration {
    Duration::from_secs(u64::from(MIN_LS_ARRIVAL))
}

impl Instance {
    /// Receives a Link State Update (RFC 2328 13).
    pub(crate) fn recv_ls_update(
        &mut self,
        now: Instant,
        iid: IfaceId,
        addr: Ipv4Addr,
        lsu: LinkStateUpdate,
    ) {
        let Some(iface) = self.ifaces.get(&iid) else {
            return;
        };
        let area_id = iface.cfg.area;
        let Some(types) = self.areas.get(&area_id).map(|a| a.types) else {
            return;
        };
        if self
            .nbr_state(iid, addr)
            .is_none_or(|s| s < NsmState::Exchange)
        {
            // 13: updates are only accepted from neighbours in Exchange or
            // beyond.
            self.count("bad-state");
            return;
        }
        let mut answered: Option<u64> = None;
        for raw in lsu.lsas {
            // BadLSReq below resets the neighbour: stop there.
            if self
                .nbr_state(iid, addr)
                .is_none_or(|s| s < NsmState::Exchange)
            {
                break;
            }
            let hdr = *raw.header();
            // 13 steps 1-3 and the body against its type (`validate`). A
            // bad LSA is dropped alone, unacknowledged, and the rest of the
            // update is processed, as BIRD does: FRR drops the whole update
            // for one bad LSA, which also loses the good ones a buggy
            // neighbour packed with it, while a hostile one gains nothing
            // either way. The LSA never enters the database, so we never
            // describe or flood it to a router that would refuse it.
            if let Err(e) = check_lsa(&raw, types) {
                self.count(e.reason());
                if let Some(n) = self.nbr_mut(iid, addr) {
                    n.last_refusal = Some(format!("{} in a Link State Update: {e}", hdr.key()));
                }
                continue;
            }
            let key = hdr.key();
            let batch = self
                .nbr_mut(iid, addr)
                .and_then(|n| n.requested.get(&key).copied());
            let db = self
                .areas
                .get(&area_id)
                .and_then(|a| a.lsdb.get_on(&key, iid))
                .map(|e| (e.header(now), e.flooded(), e.installed(), e.sent_back()));
            // 13 step 4: a MaxAge LSA we do not have, while no database
            // exchange is running: acknowledge and drop it.
            if hdr.is_max_age() && db.is_none() && !self.any_exchanging() {
                if let Some(n) = self.nbr_mut(iid, addr) {
                    n.direct_acks.push(hdr);
                }
                continue;
            }
            let cmp = db.map(|(h, ..)| hdr.compare_instance(&h));
            let on_request_list = self
                .nbr_mut(iid, addr)
                .is_some_and(|n| n.ls_request.contains_key(&key));
            match cmp {
                // 13 step 5: no copy, or the received one is newer.
                None | Some(Ordering::Greater) => {
                    // 5a: MinLSArrival for copies received by flooding.
                    // Not for an answer to our own Link State Request: it
                    // damps flooding, and an answer dropped here would hold
                    // the exchange in Loading until we ask again, a whole
                    // RxmtInterval later (a router re-originating its LSAs
                    // while adjacencies re-form does exactly that).
                    if let (Some((_, true, installed, _)), false) = (db, on_request_list) {
                        if now.saturating_duration_since(installed) < min_ls_arrival() {
                            self.count("min-ls-arrival");
                            continue;
                        }
                    }
                    let own = self.is_self_originated(&key);
                    // The database is bounded: a new LSA of someone else's
                    // beyond max_lsa is refused.
                    if db.is_none() && !own && self.lsa_count() >= self.config.max_lsa {
                        self.refuse_over_max_lsa(now, iid, addr, hdr);
                        if let Some(b) = batch {
                            answered = Some(answered.map_or(b, |a| a.max(b)));
                        }
                        continue;
                    }
                    // 5c, 5d: out of the retransmission lists, installed.
                    let scope = (hdr.lsa_type == LsaType::OPAQUE_LINK_LOCAL).then_some(iid);
                    self.install_lsa(now, area_id, raw, true, scope);
                    // 5b: flood it on; but not a copy of our own LSA that
                    // someone else sent (13.4): the instance that supersedes
                    // or flushes it is flooded instead, as BIRD does, so a
                    // forged copy goes no further than it was sent.
                    let flooded_back = if own {
                        // What 13.3 (1b) does while flooding: the neighbours
                        // that were to send us this LSA need not any more.
                        self.prune_requests(area_id, &hdr);
                        false
                    } else {
                        self.flood(now, area_id, key, Some((iid, addr)))
                    };
                    // 5e: acknowledge (13.5 table 19).
                    if !flooded_back {
                        self.delayed_ack_unless_backup(now, iid, addr, hdr, false);
                    }
                    // 5f: our own LSA came back newer (13.4).
                    if own {
                        let solicited = batch.is_some() || on_request_list;
                        self.self_lsa_received(now, iid, addr, area_id, key, &hdr, solicited);
                    }
                    if let Some(b) = batch {
                        let still = self
                            .nbr_mut(iid, addr)
                            .is_some_and(|n| n.ls_request.contains_key(&key));
                        if !still {
                            answered = Some(answered.map_or(b, |a| a.max(b)));
                        }
                    }
                }
                // 13 step 6: not newer, yet we asked for it: the exchange
                // went wrong.
                _ if on_request_list => {
                    self.count("bad-ls-update");
                    self.nsm(now, iid, addr, NsmEvent::BadLsReq);
                    return;
                }
                // 13 step 7: the same instance.
                Some(Ordering::Equal) => {
                    let implied = self
                        .nbr_mut(iid, addr)
                        .is_some_and(|n| n.rxmt.remove(&key).is_some());
                    if implied {
                        // 7a: an implied acknowledgement; only a Backup
                        // acknowledges it (to the DR's benefit).
                        self.delayed_ack_unless_backup(now, iid, addr, hdr, true);
                    } else if let Some(n) = self.nbr_mut(iid, addr) {
                        // 7b: a direct acknowledgement.
                        n.direct_acks.push(hdr);
                    }
                }
                // 13 step 8: ours is newer.
                Some(Ordering::Less) => {
                    let Some((ours, _, _, sent_back)) = db else {
                        continue;
                    };
                    // A MaxAge copy at MaxSequenceNumber is being flushed
                    // for a wrap: let it go.
                    if ours.is_max_age() && ours.seq == MAX_SEQUENCE_NUMBER {
                        continue;
                    }
                    if sent_back
                        .is_some_and(|t| now.saturating_duration_since(t) < min_ls_arrival())
                    {
                        continue;
                    }
                    self.send_back(now, area_id, iid, addr, key);
                }
            }
        }
        if let Some(b) = answered {
            // Progress: requests from earlier batches still unanswered were
            // most likely lost; ask again now rather than after
            // RxmtInterval, and top the window up.
            let rxmt = self.ifaces.get(&iid).map(|i| i.rxmt_interval());
            if let Some(n) = self.nbr_mut(iid, addr) {
                let again: Vec<LsaKey> = n
                    .requested
                    .iter()
                    .filter(|(_, &batch)| batch < b)
                    .map(|(k, _)| *k)
                    .collect();
                for k in &again {
                    n.requested.remove(k);
                }
                if let Some(r) = rxmt {
                    n.lsr_rxmt_due = Some(now + r);
                    n.stall_due = Some(now + r * STALL_RXMT_INTERVALS);
                }
                self.send_ls_requests(now, iid, addr, again);
            }
        }
        self.check_loading_done(now, area_id);
    }

    /// A new LSA beyond [`crate::instance::Config::max_lsa`]: not stored,
    /// counted, logged once per crossing of the limit. It is acknowledged
    /// and taken off the request list, so the neighbour does not resend it
    /// every RxmtInterval and the exchange completes: the adjacency, our
    /// Router-LSA and the VIPs stay; this speaker does not route with the
    /// LSAs it lacks.
    fn refuse_over_max_lsa(&mut self, _now: Instant, iid: IfaceId, addr: Ipv4Addr, hdr: LsaHeader) {
        self.max_lsa_refused(1);
        if let Some(n) = self.nbr_mut(iid, addr) {
            n.direct_acks.push(hdr);
            n.ls_request.remove(&hdr.key());
        }
    }

    /// Counts `n` LSAs refused for [`crate::instance::Config::max_lsa`],
    /// and reports the limit once per crossing.
    pub(crate) fn max_lsa_refused(&mut self, n: u64) {
        self.count_n("max-lsa", n);
        if !self.max_lsa_reached {
            self.max_lsa_reached = true;
            self.events
                .push_back(crate::instance::Event::MaxLsaReached {
                    limit: self.config.max_lsa,
                });
        }
    }

    /// 13.5: a delayed acknowledgement, except that in state Backup only
    /// LSAs from the DR are acknowledged. `implied` marks 13 step 7a where
    /// the other states send nothing.
    fn delayed_ack_unless_backup(
        &mut self,
        now: Instant,
        iid: IfaceId,
        from: Ipv4Addr,
        hdr: LsaHeader,
        implied: bool,
    ) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let send = if iface.state == IsmState::Backup {
            from == iface.dr
        } else {
            !implied
        };
        if send {
            let per_packet = iface.acks_per_packet();
            match iface.delayed_acks.last_mut() {
                Some(packet) if packet.len() < per_packet => packet.push(hdr),
                _ => {
                    let mut packet = Vec::with_capacity(per_packet);
                    packet.push(hdr);
                    iface.delayed_acks.push(packet);
                }
            }
            if iface.delayed_ack_due.is_none() {
                iface.delayed_ack_due = Some(now + iface.delayed_ack_delay());
            }
            // A full packet's worth goes at once: delaying it bundles
            // nothing more. Not while a neighbour here is exchanging or
            // loading its database, though: the acknowledgements of a load
            // (tens of thousands of LSAs) would keep the neighbour from
            // answering our Database Description packets and LS Requests
            // while it processes them; they go when the timer fires, within
            // a second, as BIRD's do.
            let full = iface
                .delayed_acks
                .first()
                .is_some_and(|p| p.len() >= per_packet);
            let loading = || {
                iface
                    .neighbors
                    .values()
                    .any(|n| matches!(n.state, NsmState::Exchange | NsmState::Loading))
            };
            if full && !loading() {
                self.send_delayed_acks(now, iid);
            }
        }
    }

    /// 13 step 8: sends our newer copy straight back to the neighbour.
    fn send_back(
        &mut self,
        now: Instant,
        area_id: Ipv4Addr,
        iid: IfaceId,
        addr: Ipv4Addr,
        key: LsaKey,
    ) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let delay = iface.cfg.transmit_delay;
        let Some(lsdb) = self.areas.get_mut(&area_id).map(|a| &mut a.lsdb) else {
            return;
        };
        lsdb.set_sent_back(&key, now);
        let Some(raw) = lsdb.get(&key).map(|e| e.to_send(now, delay)) else {
            return;
        };
        if let Some(n) = iface.neighbors.get_mut(&addr) {
            n.pending_lsu.push(raw);
        }
    }

    /// True if any neighbour is in Exchange or Loading (RFC 2328 13 step 4,
    /// 14).
    pub(crate) fn any_exchanging(&self) -> bool {
        self.ifaces.values().any(|i| {
            i.neighbors
                .values()
                .any(|n| matches!(n.state, NsmState::Exchange | NsmState::Loading))
        })
    }

    /// Installs an LSA (RFC 2328 13.2) after taking the previous instance
    /// off every retransmission list (13 step 5c).
    pub(crate) fn install_lsa(
        &mut self,
        now: Instant,
        area_id: Ipv4Addr,
        raw: RawLsa,
        from_flooding: bool,
        scope: Option<IfaceId>,
    ) {
        let key = raw.header().key();
        for iface in self.ifaces.values_mut().filter(|i| i.cfg.area == area_id) {
            for n in iface.neighbors.values_mut() {
                n.rxmt.remove(&key);
            }
        }
        let rid = self.config.router_id;
        if let Some(area) = self.areas.get_mut(&area_id) {
            area.lsdb.install(&raw, now, from_flooding, scope, rid);
        }
    }

    /// 13.3 (1b) alone: `received` is now in the database, so neighbours in
    /// Exchange or Loading whose request list holds it at the same or an
    /// older instance need not send it any more.
    fn prune_requests(&mut self, area_id: Ipv4Addr, received: &LsaHeader) {
        let key = received.key();
        for iface in self.ifaces.values_mut().filter(|i| i.cfg.area == area_id) {
            for n in iface.neighbors.values_mut() {
                if matches!(n.state, NsmState::Exchange | NsmState::Loading)
                    && n.ls_request
                        .get(&key)
                        .is_some_and(|req| received.compare_instance(req).is_ge())
                {
                    n.ls_request.remove(&key);
                }
            }
        }
    }

    /// Floods the database copy of `key` (RFC 2328 13.3). `from` is the
    /// interface and neighbour it came from, `None` for our own LSAs and
    /// LSAs we aged out. Returns true if it was flooded back out of the
    /// receiving interface.
    pub(crate) fn flood(
        &mut self,
        now: Instant,
        area_id: Ipv4Addr,
        key: LsaKey,
        from: Option<(IfaceId, Ipv4Addr)>,
    ) -> bool {
        let Some(entry) = self.areas.get(&area_id).and_then(|a| a.lsdb.get(&key)) else {
            return false;
        };
        let header = entry.header(now);
        let opaque = key.lsa_type.is_opaque();
        let mut flooded_back = false;
        for (iid, iface) in self.ifaces.iter_mut() {
            // Eligible interfaces: those of the area; for link-local
            // opaque LSAs, only the one they belong to.
            if iface.cfg.area != area_id || iface.state == IsmState::Down || !entry.visible_on(*iid)
            {
                continue;
            }
            let rxmt = iface.rxmt_interval();
            let mut added = false;
            for n in iface.neighbors.values_mut() {
                // 13.3 (1a): neighbours below Exchange get nothing.
                if n.state < NsmState::Exchange || (opaque && !n.opaque_capable()) {
                    continue;
                }
                // 13.3 (1b): compare with what the neighbour was about to
                // send us.
                if matches!(n.state, NsmState::Exchange | NsmState::Loading) {
                    if let Some(req) = n.ls_request.get(&key) {
                        match header.compare_instance(req) {
                            Ordering::Less => continue,
                            Ordering::Equal => {
                                n.ls_request.remove(&key);
                                continue;
                            }
                            Ordering::Greater => {
                                n.ls_request.remove(&key);
                            }
                        }
                    }
                }
                // 13.3 (1c): not back to the sender.
                if from == Some((*iid, n.addr)) {
                    continue;
                }
                // 13.3 (1d): on the retransmission list.
                n.rxmt.insert(key, RxmtEntry { header, sent: now });
                if n.rxmt_due.is_none() {
                    n.rxmt_due = Some(now + rxmt);
                }
                added = true;
            }
            // 13.3 (2): no neighbour needs it here.
            if !added {
                continue;
            }
            if let Some((from_iid, from_addr)) = from {
                if from_iid == *iid {
                    // 13.3 (3): received from the DR or BDR, which floods
                    // it on the network itself.
                    if from_addr == iface.dr || from_addr == iface.bdr {
                        continue;
                    }
                    // 13.3 (4): a Backup leaves it to the DR.
                    if iface.state == IsmState::Backup {
                        continue;
                    }
                    flooded_back = true;
                }
            }
            // 13.3 (5): out of the interface, age + InfTransDelay.
            iface
                .flood_queue
                .push(entry.to_send(now, iface.cfg.transmit_delay));
        }
        flooded_back
    }

    /// Receives a Link State Acknowledgment (RFC 2328 13.7).
    pub(crate) fn recv_ls_ack(
        &mut self,
        _now: Instant,
        iid: IfaceId,
        addr: Ipv4Addr,
        ack: LinkStateAck,
    ) {
        let Some(n) = self.nbr_mut(iid, addr) else {
            return;
        };
        if n.state < NsmState::Exchange {
            self.count("bad-state");
            return;
        }
        for h in &ack.lsa_headers {
            let key = h.key();
            if n.rxmt
                .get(&key)
                .is_some_and(|e| e.header.compare_instance(h) == Ordering::Equal)
            {
                n.rxmt.remove(&key);
            }
        }
        if n.rxmt.is_empty() {
            n.rxmt_due = None;
        }
    }

    /// The retransmission timer of a neighbour (RFC 2328 13.6): every LSA
    /// unacknowledged for RxmtInterval is sent again, directly.
    pub(crate) fn retransmit_lsas(&mut self, now: Instant, iid: IfaceId, addr: Ipv4Addr) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        let rxmt = iface.rxmt_interval();
        let delay = iface.cfg.transmit_delay;
        let Some(area) = self.areas.get(&iface.cfg.area) else {
            return;
        };
        let Some(n) = iface.neighbors.get_mut(&addr) else {
            return;
        };
        let mut next: Option<Instant> = None;
        let mut stale = Vec::new();
        let mut again = Vec::new();
        for (key, e) in n.rxmt.iter_mut() {
            if e.sent + rxmt <= now {
                match area.lsdb.get_on(key, iid) {
                    Some(db) if same_instance(&db.header(now), &e.header) => {
                        again.push(db.to_send(now, delay));
                        e.sent = now;
                    }
                    // The instance on the list is gone from the database.
                    _ => {
                        stale.push(*key);
                        continue;
                    }
                }
            }
            let due = e.sent + rxmt;
            next = Some(next.map_or(due, |t| t.min(due)));
        }
        for k in stale {
            n.rxmt.remove(&k);
        }
        n.rxmt_due = next;
        n.pending_lsu.extend(again);
    }

    /// The re-offer timer of an interface: each of our own live LSAs goes
    /// once more to each Full neighbour not already waiting for it on its
    /// retransmission list (see [`REOFFER_RXMT_INTERVALS`]).
    pub(crate) fn reoffer_own_lsas(&mut self, now: Instant, iid: IfaceId) {
        let rid = self.config.router_id;
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        iface.reoffer_due = Some(now + iface.rxmt_interval() * REOFFER_RXMT_INTERVALS);
        let delay = iface.cfg.transmit_delay;
        let Some(area) = self.areas.get(&iface.cfg.area) else {
            return;
        };
        let ours: Vec<(LsaKey, RawLsa)> = area
            .self_orig
            .keys()
            .filter(|k| k.advertising_router == rid)
            .filter_map(|k| area.lsdb.get_on(k, iid).map(|e| (*k, e)))
            .filter(|(_, e)| !e.flooded() && !e.is_max_age(now))
            .map(|(k, e)| (k, e.to_send(now, delay)))
            .collect();
        if ours.is_empty() {
            return;
        }
        for n in iface
            .neighbors
            .values_mut()
            .filter(|n| n.state == NsmState::Full)
        {
            n.reoffer.extend(
                ours.iter()
                    .filter(|(k, _)| !n.rxmt.contains_key(k))
                    .map(|(_, l)| l.clone()),
            );
        }
    }

    /// The delayed-ack timer of an interface (RFC 2328 13.5).
    pub(crate) fn send_delayed_acks(&mut self, now: Instant, iid: IfaceId) {
        let Some(iface) = self.ifaces.get_mut(&iid) else {
            return;
        };
        iface.delayed_ack_due = None;
        let acks = std::mem::take(&mut iface.delayed_acks);
        let dst = iface.flood_dst();
        for lsa_headers in acks {
            let body = PacketBody::LinkStateAck(LinkStateAck { lsa_headers });
            self.send(now, iid, dst, body);
        }
    }

    /// Neighbours in Loading with nothing left to request are Full
    /// (LoadingDone, RFC 2328 10.3, 10.9).
    pub(crate) fn check_loading_done(&mut self, now: Instant, area_id: Ipv4Addr) {
        let done: Vec<(IfaceId, Ipv4Addr)> = self
            .ifaces
            .iter()
            .filter(|(_, i)| i.cfg.area == area_id)
            .flat_map(|(iid, i)| {
                i.neighbors
                    .values()
                    .filter(|n| n.state == NsmState::Loading && n.ls_request.is_empty())
                    .map(move |n| (*iid, n.addr))
            })
            .collect();
        for (iid, addr) in done {
            self.nsm(now, iid, addr, NsmEvent::LoadingDone);
        }
    }

    /// An LSA timer fired: our own LSA is due for refresh (origin handles
    /// it), anyone else's has reached MaxAge and is flooded (RFC 2328 14).
    pub(crate) fn lsa_timer_fired(&mut self, now: Instant, area_id: Ipv4Addr, key: LsaKey) {
        let rid = self.config.router_id;
        let Some(area) = self.areas.get_mut(&area_id) else {
            return;
        };
        let Some(entry) = area.lsdb.get(&key) else {
            return;
        };
        if entry.is_max_age(now) && entry.stored_header().is_max_age() {
            return;
        }
        if !entry.flooded() && key.advertising_router == rid {
            area.self_orig.entry(key).or_default().refresh = true;
            return;
        }
        let raw = entry.with_age(MAX_AGE);
        let scope = entry.iface();
        self.install_lsa(now, area_id, raw, false, scope);
        self.flood(now, area_id, key, None);
    }

    /// Removes MaxAge LSAs that no neighbour still has to acknowledge, once
    /// no database exchange is running (RFC 2328 14).
    pub(crate) fn sweep_max_age(&mut self) {
        if self.any_exchanging() {
            return;
        }
        let ifaces = &self.ifaces;
        for area in self.areas.values_mut() {
            if area.lsdb.max_age.is_empty() {
                continue;
            }
            let id = area.id;
            let removable: Vec<LsaKey> = area
                .lsdb
                .max_age
                .iter()
                .filter(|k| {
                    !ifaces
                        .values()
                        .filter(|i| i.cfg.area == id)
                        .any(|i| i.neighbors.values().any(|n| n.rxmt.contains_key(k)))
                })
                .copied()
                .collect();
            for k in removable {
                area.lsdb.remove(&k);
            }
        }
    }

    /// Sends everything queued by the current input: flooded LSAs per
    /// interface, direct acknowledgements and unicast updates per
    /// neighbour, packed up to the MTU.
    pub(crate) fn flush_output(&mut self, now: Instant) {
        let ids: Vec<IfaceId> = self.ifaces.keys().copied().collect();
        for iid in ids {
            let Some(iface) = self.ifaces.get_mut(&iid) else {
                continue;
            };
            let max_len = iface.max_packet_len();
            let per_packet = iface.acks_per_packet();
            let flood = std::mem::take(&mut iface.flood_queue);
            let flood_dst = iface.flood_dst();
            let mut per_nbr = Vec::new();
            for n in iface.neighbors.values_mut() {
                if n.direct_acks.is_empty() && n.pending_lsu.is_empty() && n.reoffer.is_empty() {
                    continue;
                }
                per_nbr.push((
                    n.addr,
                    std::mem::take(&mut n.direct_acks),
                    std::mem::take(&mut n.pending_lsu),
                    std::mem::take(&mut n.reoffer),
                ));
            }
            let area_id = iface.cfg.area;
            let per_nbr: Vec<_> = per_nbr
                .into_iter()
                .map(|(a, acks, lsus, again)| (iface.neighbor_dst(a), acks, lsus, again))
                .collect();
            if !flood.is_empty() {
                self.send_lsus(now, iid, area_id, flood_dst, flood, max_len, true);
            }
            for (dst, acks, lsus, again) in per_nbr {
                for chunk in acks.chunks(per_packet) {
                    let body = PacketBody::LinkStateAck(LinkStateAck {
                        lsa_headers: chunk.to_vec(),
                    });
                    self.send(now, iid, dst, body);
                }
                if !lsus.is_empty() {
                    self.send_lsus(now, iid, area_id, dst, lsus, max_len, true);
                }
                // A re-offered instance is the one the neighbour most
                // likely has already: it does not hold our next one back.
                if !again.is_empty() {
                    self.send_lsus(now, iid, area_id, dst, again, max_len, false);
                }
            }
        }
    }

    /// Packs LSAs into Link State Updates no longer than `max_len` (an LSA
    /// too big for any goes alone and relies on IP fragmentation), and
    /// with `pace` notes when our own LSAs left, for origination pacing.
    #[allow(clippy::too_many_arguments)]
    fn send_lsus(
        &mut self,
        now: Instant,
        iid: IfaceId,
        area_id: Ipv4Addr,
        dst: Ipv4Addr,
        lsas: Vec<RawLsa>,
        max_len: usize,
        pace: bool,
    ) {
        let rid = self.config.router_id;
        if let Some(area) = self.areas.get_mut(&area_id).filter(|_| pace) {
            for l in lsas.iter().filter(|l| l.header().advertising_router == rid) {
                area.self_orig.entry(l.header().key()).or_default().last_out = Some(now);
            }
        }
        let room = max_len.saturating_sub(OSPF_HEADER_LEN + LSU_FIXED_LEN);
        let mut batch: Vec<RawLsa> = Vec::new();
        let mut used = 0usize;
        for l in lsas {
            let len = l.as_bytes().len();
            if !batch.is_empty() && used + len > room {
                let lsas = std::mem::take(&mut batch);
                self.send(
                    now,
                    iid,
                    dst,
                    PacketBody::LinkStateUpdate(LinkStateUpdate { lsas }),
                );
                used = 0;
            }
            used += len;
            batch.push(l);
        }
        if !batch.is_empty() {
            self.send(
                now,
                iid,
                dst,
                PacketBody::LinkStateUpdate(LinkStateUpdate { lsas: batch }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{Config, InterfaceConfig, NetworkType};
    use crate::lsa::{ExternalLsa, Lsa, LsaBody, Options, INITIAL_SEQUENCE_NUMBER};
    use crate::packet::{
        DatabaseDescription, DdFlags, Hello, Packet, ALL_SPF_ROUTERS, AUTYPE_NULL,
    };

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn external(i: u8, adv: Ipv4Addr) -> RawLsa {
        Lsa {
            header: LsaHeader {
                age: 1,
                options: Options::E,
                lsa_type: LsaType::AS_EXTERNAL,
                link_state_id: Ipv4Addr::new(20, 0, i, 0),
                advertising_router: adv,
                seq: INITIAL_SEQUENCE_NUMBER,
                checksum: 0,
                length: 0,
            },
            body: LsaBody::AsExternal(ExternalLsa {
                network_mask: ip("255.255.255.0"),
                e_bit: true,
                metric: 20,
                forwarding_address: Ipv4Addr::UNSPECIFIED,
                external_route_tag: 0,
                tos: vec![],
            }),
        }
        .to_raw()
        .unwrap()
    }

    /// Delayed acknowledgements go as soon as a packet is full; the rest
    /// waits for the timer (RFC 2328 13.5).
    #[test]
    fn full_packets_of_acks_are_not_delayed() {
        let t0 = Instant::now();
        let (me, peer, peer_addr) = (ip("10.0.0.1"), ip("9.9.9.9"), ip("198.18.1.1"));
        let mut a = Instance::new(
            Config {
                router_id: me,
                ..Config::default()
            },
            t0,
            1_700_000_000,
        );
        a.add_interface(
            t0,
            InterfaceConfig {
                network: NetworkType::PointToPoint,
                ..InterfaceConfig::new("a0", 1, ip("198.18.1.0"), 31, Ipv4Addr::UNSPECIFIED)
            },
        );
        let packet = |body| {
            Packet {
                router_id: peer,
                area_id: Ipv4Addr::UNSPECIFIED,
                autype: AUTYPE_NULL,
                auth_data: [0; 8],
                body,
            }
            .encode()
            .unwrap()
        };
        let hello = packet(PacketBody::Hello(Hello {
            network_mask: Ipv4Addr::UNSPECIFIED,
            hello_interval: 10,
            options: Options::E,
            router_priority: 1,
            router_dead_interval: 40,
            designated_router: Ipv4Addr::UNSPECIFIED,
            backup_designated_router: Ipv4Addr::UNSPECIFIED,
            neighbors: vec![me],
        }));
        let mut now = t0;
        a.handle_packet(now, 1, peer_addr, ALL_SPF_ROUTERS, &hello);
        // Answer every DD as an empty slave until the exchange is over.
        for _ in 0..10 {
            while let Some(t) = a.poll_transmit() {
                if let PacketBody::DatabaseDescription(dd) = Packet::decode(&t.bytes).unwrap().body
                {
                    let reply = packet(PacketBody::DatabaseDescription(DatabaseDescription {
                        interface_mtu: 1500,
                        options: Options::E,
                        flags: DdFlags::empty(),
                        dd_sequence_number: dd.dd_sequence_number,
                        lsa_headers: Vec::new(),
                    }));
                    now += Duration::from_millis(1);
                    a.handle_packet(now, 1, peer_addr, t.dst, &reply);
                }
            }
        }
        assert_eq!(a.neighbors(now)[0].state, NsmState::Full);
        while a.poll_transmit().is_some() {}
        let lsas: Vec<RawLsa> = (0..100).map(|i| external(i, peer)).collect();
        let lsu = packet(PacketBody::LinkStateUpdate(LinkStateUpdate { lsas }));
        a.handle_packet(now, 1, peer_addr, ALL_SPF_ROUTERS, &lsu);
        let acks = |a: &mut Instance| -> Vec<usize> {
            std::iter::from_fn(|| a.poll_transmit())
                .filter_map(|t| match Packet::decode(&t.bytes).unwrap().body {
                    PacketBody::LinkStateAck(ack) => Some(ack.lsa_headers.len()),
                    _ => None,
                })
                .collect()
        };
        // (1500 - 20 IP - 24 OSPF) / 20 = 72 headers fit a packet.
        assert_eq!(acks(&mut a), [72], "a full packet at once");
        // Other timers (origination) may come first.
        let mut rest = Vec::new();
        while rest.is_empty() {
            let due = a.poll_timeout().unwrap();
            assert!(due <= now + Duration::from_secs(1));
            a.handle_timeout(due);
            rest = acks(&mut a);
        }
        assert_eq!(rest, [28], "the rest when the timer fires");
    }
}
