//! Origination of our own LSAs (RFC 2328 12.4): the Router-LSA of each
//! area (12.4.1) with one stub link per advertised VIP, the Network-LSA of
//! each network where we are DR (12.4.2), stub-router mode (RFC 6987),
//! sequence numbers and their wrap (12.1.6), refresh (12.4 LSRefreshTime),
//! flushing (14.1) and our own LSAs received back from others (13.4).
//!
//! The whole module is "compute what we should advertise, compare with
//! what we advertise": [`Instance::run_origination`] runs after every
//! input and every timer, so no change can be lost, only delayed.
//!
//! Pacing is for the routers' sake: they accept a new instance of an LSA
//! at most once per MinLSArrival (RFC 2328 13 step 5a) and silently drop
//! the others until our retransmission, seconds later. So an instance is
//! never sent less than `Config::min_ls_interval` after the previous
//! instance of the same LSA left us (flooded, retransmitted or answered to
//! a request). Two exceptions, both safe: a newer copy of our own LSA
//! received from a neighbour (13.4) is superseded at once, and the first
//! Router-LSA of an area waits for the adjacency that shapes it (the
//! "gate"), so that the first instance the routers see is already right.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::instance::{Event, IfaceId, Instance, SelfLsaKind};
use crate::interface::{IsmState, NetworkType};
use crate::lsa::{
    Lsa, LsaBody, LsaHeader, LsaKey, LsaType, NetworkLsa, RouterFlags, RouterLink, RouterLinkType,
    RouterLsa, INITIAL_SEQUENCE_NUMBER, MAX_AGE, MAX_SEQUENCE_NUMBER, MIN_LS_ARRIVAL,
};
use crate::neighbor::NsmState;

/// RFC 6987 MaxLinkMetric: transit and point-to-point links in stub-router
/// mode.
pub const MAX_LINK_METRIC: u16 = 0xffff;

/// An advertised VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Vip {
    pub(crate) area: Ipv4Addr,
    pub(crate) cost: u16,
}

/// State of one LSA we originate (or once originated).
#[derive(Clone, Debug, Default)]
pub(crate) struct SelfOrig {
    /// Contents of our live instance; `None` if none (never originated,
    /// flushed, or superseded by a copy from a previous life).
    pub(crate) body: Option<LsaBody>,
    /// Last sequence number we used.
    pub(crate) last_seq: Option<i32>,
    /// Last time an instance of this LSA left us in an update.
    pub(crate) last_out: Option<Instant>,
    /// When pacing allows the next instance, if one is waiting.
    pub(crate) retry_at: Option<Instant>,
    /// A neighbour sent us a flushed (MaxAge) copy from a previous life:
    /// it installed that copy moments ago, and would discard (RFC 2328 13
    /// step 5a) an instance arriving before this time.
    pub(crate) min_arrival_until: Option<Instant>,
    /// LSRefreshTime has passed: originate again even if unchanged.
    pub(crate) refresh: bool,
    /// Instances (and flushes) originated, for tests and statistics.
    pub(crate) originated: u64,
}

impl Instance {
    /// True while stub-router mode (RFC 6987) is on.
    pub(crate) fn stub_router_active(&self, now: Instant) -> bool {
        self.stub_router || self.stub_router_until.is_some_and(|t| now < t)
    }

    /// The key of our Router-LSA (Link State ID = our Router ID, 12.4.1).
    pub(crate) fn router_lsa_key(&self) -> LsaKey {
        LsaKey {
            lsa_type: LsaType::ROUTER,
            link_state_id: self.config.router_id,
            advertising_router: self.config.router_id,
        }
    }

    /// RFC 2328 13.4: LSAs whose Advertising Router is us, and
    /// Network-LSAs whose Link State ID is one of our addresses.
    pub(crate) fn is_self_originated(&self, key: &LsaKey) -> bool {
        key.advertising_router == self.config.router_id
            || (key.lsa_type == LsaType::NETWORK
                && self
                    .ifaces
                    .values()
                    .any(|i| i.cfg.addr == key.link_state_id))
    }

    /// 13 step 5f: a newer instance of one of our LSAs was installed from
    /// flooding (and not flooded on). The next [`Instance::run_origination`]
    /// supersedes it with a higher sequence number, or flushes it if we do
    /// not originate it, or (at MaxSequenceNumber) flushes it and starts
    /// over from InitialSequenceNumber once the flush is acknowledged
    /// (12.1.6), without waiting for pacing.
    ///
    /// Its sequence number is remembered: a MaxAge copy may leave our
    /// database before we originate, and starting again from our own last
    /// number would send instances the neighbour still holds as older, one
    /// MinLSInterval apart, until they pass its copy.
    ///
    /// A copy flooded to us unasked was installed by the neighbour that
    /// sent it at most just before: our answer waits until MinLSArrival has
    /// passed since it reached us, or that neighbour would discard it (13
    /// step 5a) and hold the forged copy until our retransmission. A copy
    /// we asked for in a database exchange (left by our previous life, most
    /// likely) is answered at once, as before.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn self_lsa_received(
        &mut self,
        now: Instant,
        _iid: IfaceId,
        addr: Ipv4Addr,
        area_id: Ipv4Addr,
        key: LsaKey,
        received: &LsaHeader,
        solicited: bool,
    ) {
        let kind = if received.seq == MAX_SEQUENCE_NUMBER {
            SelfLsaKind::MaxSequence
        } else if received.is_max_age() {
            SelfLsaKind::MaxAge
        } else if self.desired(area_id, &key, now).is_none() {
            SelfLsaKind::Unoriginated
        } else {
            SelfLsaKind::Newer
        };
        let from = self
            .ifaces
            .values()
            .find_map(|i| i.neighbors.get(&addr))
            .map_or(addr, |n| n.router_id);
        let Some(area) = self.areas.get_mut(&area_id) else {
            return;
        };
        let so = area.self_orig.entry(key).or_default();
        so.last_seq = Some(so.last_seq.map_or(received.seq, |s| s.max(received.seq)));
        let arrival = now.checked_add(min_ls_arrival_margin());
        if !solicited {
            // An earlier claim's deadline stands: repeated forgeries must not
            // put our answer off for ever.
            if so.min_arrival_until.is_none_or(|t| t <= now) {
                so.min_arrival_until = arrival;
            }
        } else if received.is_max_age() {
            so.min_arrival_until = now.checked_add(Duration::from_secs(u64::from(MIN_LS_ARRIVAL)));
        }
        if !solicited {
            self.count_anomaly(kind.reason());
        }
        self.events.push_back(Event::SelfLsaReceived {
            area: area_id,
            key,
            seq: received.seq,
            age: received.age,
            from,
            kind,
            solicited,
        });
    }

    /// Our Router-LSA body for an area (RFC 2328 12.4.1).
    fn router_lsa_body(&self, area_id: Ipv4Addr, now: Instant) -> RouterLsa {
        let stub_router = self.stub_router_active(now);
        let transit_metric = |cost: u16| if stub_router { MAX_LINK_METRIC } else { cost };
        let mut links = Vec::new();
        let stub = |addr: Ipv4Addr, mask: Ipv4Addr, cost: u16| RouterLink {
            link_id: addr,
            link_data: mask,
            link_type: RouterLinkType::Stub,
            metric: cost,
            tos: Vec::new(),
        };
        for iface in self.ifaces.values().filter(|i| i.cfg.area == area_id) {
            let cfg = &iface.cfg;
            match (cfg.network, iface.state) {
                (_, IsmState::Down | IsmState::Loopback) => {}
                // 12.4.1.2: a transit link once Full with the DR (or DR with
                // a Full neighbour), otherwise a stub link for the subnet.
                (NetworkType::Broadcast, IsmState::DROther | IsmState::Backup | IsmState::DR)
                    if iface.transit_adjacency_full() =>
                {
                    links.push(RouterLink {
                        link_id: iface.dr,
                        link_data: cfg.addr,
                        link_type: RouterLinkType::Transit,
                        metric: transit_metric(cfg.cost),
                        tos: Vec::new(),
                    });
                }
                (NetworkType::Broadcast, _) => {
                    links.push(stub(cfg.network_addr(), cfg.mask(), cfg.cost));
                }
                // 12.4.1.1: a point-to-point link to the Full neighbour and
                // (option 1) a stub link for the subnet.
                (NetworkType::PointToPoint, _) => {
                    for n in iface
                        .neighbors
                        .values()
                        .filter(|n| n.state == NsmState::Full)
                    {
                        links.push(RouterLink {
                            link_id: n.router_id,
                            link_data: cfg.addr,
                            link_type: RouterLinkType::PointToPoint,
                            metric: transit_metric(cfg.cost),
                            tos: Vec::new(),
                        });
                    }
                    links.push(stub(cfg.network_addr(), cfg.mask(), cfg.cost));
                }
            }
        }
        // One host stub link per VIP; RFC 6987 leaves stub links alone, so
        // a drain raises these costs itself.
        for (vip, v) in self.vips.iter().filter(|(_, v)| v.area == area_id) {
            links.push(stub(*vip, Ipv4Addr::BROADCAST, v.cost));
        }
        RouterLsa {
            flags: RouterFlags::empty(),
            links,
        }
    }

    /// What we should advertise under `key` right now, `None` for nothing.
    pub(crate) fn desired(&self, area_id: Ipv4Addr, key: &LsaKey, now: Instant) -> Option<LsaBody> {
        let rid = self.config.router_id;
        if self.shutdown.is_some() || key.advertising_router != rid {
            return None;
        }
        match key.lsa_type {
            LsaType::ROUTER if key.link_state_id == rid => {
                let attached = self.ifaces.values().any(|i| i.cfg.area == area_id)
                    || self.vips.values().any(|v| v.area == area_id);
                attached.then(|| LsaBody::Router(self.router_lsa_body(area_id, now)))
            }
            // 12.4.2: as DR, with at least one Full neighbour.
            LsaType::NETWORK => {
                let iface = self.ifaces.values().find(|i| {
                    i.cfg.area == area_id
                        && i.cfg.addr == key.link_state_id
                        && i.cfg.network == NetworkType::Broadcast
                        && i.state == IsmState::DR
                })?;
                let mut attached: Vec<Ipv4Addr> = iface
                    .neighbors
                    .values()
                    .filter(|n| n.state == NsmState::Full)
                    .map(|n| n.router_id)
                    .collect();
                if attached.is_empty() {
                    return None;
                }
                attached.sort();
                attached.insert(0, rid);
                Some(LsaBody::Network(NetworkLsa {
                    network_mask: iface.cfg.mask(),
                    attached_routers: attached,
                }))
            }
            _ => None,
        }
    }

    /// Opens an area's origination gate when the adjacency that shapes
    /// our Router-LSA is Full, or when waiting longer is pointless.
    fn update_gate(&mut self, now: Instant, area_id: Ipv4Addr) {
        let Some(area) = self.areas.get(&area_id) else {
            return;
        };
        if area.gate_open {
            return;
        }
        let mut ifaces = self.ifaces.values().filter(|i| i.cfg.area == area_id);
        let shaped = ifaces.clone().any(|i| i.transit_adjacency_full());
        // An adjacency is forming, or will once the routers on a fresh LAN
        // have elected their DR.
        let forming = ifaces.any(|i| {
            let no_dr = i.cfg.network == NetworkType::Broadcast && i.dr.is_unspecified();
            i.neighbors.values().any(|n| {
                (NsmState::ExStart..=NsmState::Loading).contains(&n.state)
                    || (no_dr && n.priority > 0)
            })
        });
        let (deadline, hard) = (area.gate_deadline, area.gate_hard);
        let Some(area) = self.areas.get_mut(&area_id) else {
            return;
        };
        if shaped || hard.is_some_and(|t| now >= t) || self.shutdown.is_some() {
            area.gate_open = true;
        } else if deadline.is_some_and(|t| now >= t) {
            if forming {
                // An adjacency is on its way: give it a little longer.
                area.gate_deadline = Some(now + Duration::from_secs(1));
            } else {
                area.gate_open = true;
            }
        }
    }

    /// Brings every LSA we originate in line with what we should
    /// advertise.
    pub(crate) fn run_origination(&mut self, now: Instant) {
        let rid = self.config.router_id;
        let area_ids: Vec<Ipv4Addr> = self.areas.keys().copied().collect();
        for area_id in area_ids {
            self.update_gate(now, area_id);
            let Some(area) = self.areas.get(&area_id) else {
                continue;
            };
            let mut keys: BTreeSet<LsaKey> = area.self_orig.keys().copied().collect();
            keys.insert(self.router_lsa_key());
            for i in self
                .ifaces
                .values()
                .filter(|i| i.cfg.area == area_id && i.cfg.network == NetworkType::Broadcast)
            {
                keys.insert(LsaKey {
                    lsa_type: LsaType::NETWORK,
                    link_state_id: i.cfg.addr,
                    advertising_router: rid,
                });
            }
            for key in keys {
                self.originate_one(now, area_id, key);
            }
        }
    }

    fn originate_one(&mut self, now: Instant, area_id: Ipv4Addr, key: LsaKey) {
        let desired = self.desired(area_id, &key, now);
        let min_interval = self.config.min_ls_interval;
        // E only in normal areas (RFC 2328 12.1.2).
        let lsa_options = self.config.area_type(area_id).lsa_options();
        let wall_now = self.wall_now(now);
        let Some(area) = self.areas.get_mut(&area_id) else {
            return;
        };
        let gate_open = area.gate_open;
        let db = area
            .lsdb
            .get(&key)
            .map(|e| (e.stored_header(), e.is_max_age(now), e.flooded()));
        if db.is_none() && desired.is_none() && !area.self_orig.contains_key(&key) {
            return;
        }
        let so = area.self_orig.entry(key).or_default();
        let live = db.is_some_and(|(h, max_age, flooding)| {
            !flooding && !max_age && Some(h.seq) == so.last_seq
        });
        // 13.4: a copy of ours from a neighbour (e.g. from before a
        // restart) is replaced at once, pacing or not.
        let from_flooding = db.is_some_and(|(_, _, flooding)| flooding);
        let paced_until = so
            .last_out
            .and_then(|t| t.checked_add(min_interval))
            .filter(|t| *t > now);
        so.retry_at = None;
        match desired {
            Some(body) => {
                if live && so.body.as_ref() == Some(&body) && !so.refresh {
                    return;
                }
                if !gate_open {
                    return;
                }
                if let (Some(t), false) = (paced_until, from_flooding) {
                    so.retry_at = Some(t);
                    return;
                }
                // A flushed copy of ours held by a neighbour (we restarted
                // right after flushing) was installed there at most just
                // before it reached us: an instance sent within MinLSArrival
                // of that would be discarded and come back only after
                // RxmtInterval.
                if let Some(t) = so.min_arrival_until.filter(|t| *t > now) {
                    so.retry_at = Some(t);
                    return;
                }
                // Our previous life may have flushed this LSA just before we
                // started (a service restart): the neighbours installed that
                // flush less than MinLSArrival before our first instance
                // would arrive, and would discard it.
                let life_gate = self
                    .start
                    .checked_add(Duration::from_secs(u64::from(MIN_LS_ARRIVAL)))
                    .filter(|t| *t > now && so.originated == 0);
                if let Some(t) = life_gate {
                    so.retry_at = Some(t);
                    return;
                }
                // 12.1.6: one more than anything seen; at
                // MaxSequenceNumber flush first, then start over.
                let base = match (db.map(|(h, ..)| h.seq), so.last_seq) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                let seq = match base {
                    // The first instance of this life starts from the wall
                    // clock, so it outnumbers what a previous life left in
                    // the neighbours' databases (those advanced at most one
                    // per MinLSInterval, i.e. per second) and is taken at
                    // once instead of after a round of 13.4 (their copy sent
                    // back, ours re-originated above it).
                    None if so.originated == 0 => first_sequence_number(wall_now),
                    None => INITIAL_SEQUENCE_NUMBER,
                    Some(MAX_SEQUENCE_NUMBER) => {
                        // Once the flushed copy is gone everywhere, the
                        // sequence space starts over.
                        so.last_seq = None;
                        match db {
                            Some((_, true, _)) => return, // flush under way
                            Some(_) => {
                                self.flush(now, area_id, key);
                                return;
                            }
                            None => INITIAL_SEQUENCE_NUMBER,
                        }
                    }
                    Some(s) => s + 1,
                };
                let lsa = Lsa {
                    header: LsaHeader {
                        age: 0,
                        options: lsa_options,
                        lsa_type: key.lsa_type,
                        link_state_id: key.link_state_id,
                        advertising_router: key.advertising_router,
                        seq,
                        checksum: 0,
                        length: 0,
                    },
                    body: body.clone(),
                };
                let Ok(raw) = lsa.to_raw() else {
                    self.count("tx-encode-error");
                    return;
                };
                so.body = Some(body);
                so.last_seq = Some(seq);
                so.refresh = false;
                so.originated += 1;
                self.install_lsa(now, area_id, raw, false, None);
                self.flood(now, area_id, key, None);
                self.events.push_back(Event::Originated {
                    area: area_id,
                    key,
                    seq,
                    flushed: false,
                });
            }
            None => {
                so.body = None;
                so.refresh = false;
                let Some((h, false, _)) = db else {
                    return;
                };
                if let (Some(t), false) = (paced_until, from_flooding) {
                    so.retry_at = Some(t);
                    return;
                }
                // A copy of someone else's flooded to us moments ago: the
                // neighbour that sent it would discard our flush within its
                // MinLSArrival (see `self_lsa_received`).
                if let Some(t) = so.min_arrival_until.filter(|t| *t > now) {
                    so.retry_at = Some(t);
                    return;
                }
                so.last_seq = Some(so.last_seq.map_or(h.seq, |s| s.max(h.seq)));
                self.flush(now, area_id, key);
            }
        }
    }

    /// Premature aging (RFC 2328 14.1): the database copy goes to MaxAge
    /// and is flooded; it is removed once acknowledged.
    fn flush(&mut self, now: Instant, area_id: Ipv4Addr, key: LsaKey) {
        let Some(area) = self.areas.get_mut(&area_id) else {
            return;
        };
        let Some(entry) = area.lsdb.get(&key) else {
            return;
        };
        let raw = entry.with_age(MAX_AGE);
        let scope = entry.iface();
        let seq = entry.stored_header().seq;
        if let Some(so) = area.self_orig.get_mut(&key) {
            so.originated += 1;
        }
        self.install_lsa(now, area_id, raw, false, scope);
        self.flood(now, area_id, key, None);
        self.events.push_back(Event::Originated {
            area: area_id,
            key,
            seq,
            flushed: true,
        });
    }

    /// Earliest pacing or gate deadline, for `poll_timeout`.
    pub(crate) fn origination_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        for area in self.areas.values() {
            if !area.gate_open {
                consider(area.gate_deadline);
                consider(area.gate_hard);
            }
            for so in area.self_orig.values() {
                consider(so.retry_at);
            }
        }
        consider(self.stub_router_until);
        t
    }
}

/// MinLSArrival and a margin for timer and clock granularity at the
/// neighbour: how long after a copy of ours reached us unasked our answer
/// waits.
fn min_ls_arrival_margin() -> Duration {
    Duration::from_secs(u64::from(MIN_LS_ARRIVAL)) + Duration::from_millis(100)
}

/// 2020-01-01T00:00:00Z: first sequence numbers count seconds from here.
const SEQUENCE_EPOCH: u32 = 1_577_836_800;

/// The LS sequence number of the first instance of an LSA in this life:
/// InitialSequenceNumber plus the seconds since [`SEQUENCE_EPOCH`] (the
/// space lasts 136 years; a clock before the epoch gives the initial one).
pub(crate) fn first_sequence_number(wall_clock_unix_secs: u32) -> i32 {
    let secs = wall_clock_unix_secs.saturating_sub(SEQUENCE_EPOCH);
    // Keep clear of MaxSequenceNumber, which would force a wrap at once.
    let room = MAX_SEQUENCE_NUMBER.abs_diff(INITIAL_SEQUENCE_NUMBER) - 1;
    INITIAL_SEQUENCE_NUMBER.wrapping_add_unsigned(secs.min(room))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sequence_numbers_follow_the_wall_clock() {
        assert_eq!(first_sequence_number(0), INITIAL_SEQUENCE_NUMBER);
        assert_eq!(
            first_sequence_number(SEQUENCE_EPOCH),
            INITIAL_SEQUENCE_NUMBER
        );
        let a = first_sequence_number(1_795_351_205);
        let b = first_sequence_number(1_795_351_206);
        assert_eq!(b, a + 1);
        assert!(a > INITIAL_SEQUENCE_NUMBER && a < 0);
        // The far future stays below MaxSequenceNumber.
        assert!(first_sequence_number(u32::MAX) < MAX_SEQUENCE_NUMBER);
    }
}
