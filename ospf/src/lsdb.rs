//! The link-state database of one area (RFC 2328 sections 12, 13.2, 14).
//!
//! Entries keep the exact bytes received ([`RawLsa`]) and the instant they
//! were installed; the LS age is computed from both (age at install plus
//! whole seconds elapsed, capped at MaxAge), so nothing ticks every second.
//! Each entry has at most one timer: for our own live LSAs the refresh at
//! LSRefreshTime, for everyone else's the moment the age reaches MaxAge.
//! MaxAge entries sit in a separate set until flushing is complete (14).
//!
//! Memory, for databases of tens of thousands of LSAs: entries are boxed,
//! so the B-tree (whose nodes end up little over half full when keys come
//! in order, as answers to our requests do) holds only keys and pointers;
//! and timers are grouped by deadline, since the LSAs of one Link State
//! Update are installed at the same instant with the same age and so share
//! one. About 200 bytes per LSA instead of about 360.
//!
//! Scope: AS-scoped LSAs (types 5 and 11) are kept in, and flooded within,
//! the area they arrived in: a director lives in one area, and this avoids
//! an AS-wide database for nothing. Link-local opaque LSAs (type 9) carry
//! the interface they were received on and are only described and flooded
//! there.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::instance::IfaceId;
use crate::lsa::{LsaHeader, LsaKey, LsaType, RawLsa, LS_REFRESH_TIME, MAX_AGE};
use crate::origin::SelfOrig;

/// LS types this speaker stores and floods in a normal (non-stub,
/// non-NSSA) area. Type 7 only exists in NSSAs (RFC 3101), and we always
/// set the E-bit, so a type 7 here is an error (RFC 2328 13 step 2).
pub(crate) fn lsa_type_known(t: LsaType) -> bool {
    matches!(t.0, 1..=5 | 9..=11)
}

/// One LSA in the database.
#[derive(Clone, Debug)]
pub(crate) struct LsaEntry {
    /// The instance, with the LS age it had when installed.
    pub(crate) raw: RawLsa,
    /// When it was installed; the age grows from here.
    pub(crate) installed: Instant,
    /// Received by flooding (13 step 5a applies MinLSArrival to these), as
    /// opposed to originated or flushed by us.
    pub(crate) from_flooding: bool,
    /// For link-local opaque LSAs: the interface they belong to.
    pub(crate) iface: Option<IfaceId>,
    /// Last time it was sent back to a neighbour holding an older copy
    /// (13 step 8 limits that to once per MinLSArrival), in milliseconds
    /// after `installed` (compact: there may be tens of thousands of
    /// entries).
    sent_back_ms: Option<u32>,
    /// The deadline registered in [`Lsdb::timers`], if any, in seconds
    /// after `installed`.
    timer_secs: Option<u16>,
}

impl LsaEntry {
    /// A new entry installed at `installed`.
    pub(crate) fn new(
        raw: RawLsa,
        installed: Instant,
        from_flooding: bool,
        iface: Option<IfaceId>,
    ) -> Self {
        LsaEntry {
            raw,
            installed,
            from_flooding,
            iface,
            sent_back_ms: None,
            timer_secs: None,
        }
    }

    /// When it was last sent back to a neighbour holding an older copy.
    pub(crate) fn sent_back(&self) -> Option<Instant> {
        self.sent_back_ms
            .map(|ms| self.installed + Duration::from_millis(u64::from(ms)))
    }

    /// Notes that it was sent back at `now` (rounded up to the next
    /// millisecond, so the rate limit never lets one through early).
    pub(crate) fn set_sent_back(&mut self, now: Instant) {
        let us = now.saturating_duration_since(self.installed).as_micros();
        let ms = us.div_ceil(1000);
        self.sent_back_ms = Some(u32::try_from(ms).unwrap_or(u32::MAX));
    }

    /// The deadline of its timer, if one is registered.
    fn timer(&self) -> Option<Instant> {
        self.timer_secs
            .map(|s| self.installed + Duration::from_secs(u64::from(s)))
    }

    /// The current LS age (RFC 2328 14): age at install plus the seconds
    /// spent in the database, never above MaxAge.
    pub(crate) fn age(&self, now: Instant) -> u16 {
        let base = self.raw.header().age;
        if base >= MAX_AGE {
            return MAX_AGE;
        }
        let elapsed = now.saturating_duration_since(self.installed).as_secs();
        let age = (u64::from(base) + elapsed).min(u64::from(MAX_AGE));
        u16::try_from(age).unwrap_or(MAX_AGE)
    }

    /// True once the age has reached MaxAge.
    pub(crate) fn is_max_age(&self, now: Instant) -> bool {
        self.age(now) >= MAX_AGE
    }

    /// The header with the current age.
    pub(crate) fn header(&self, now: Instant) -> LsaHeader {
        LsaHeader {
            age: self.age(now),
            ..*self.raw.header()
        }
    }

    /// The LSA as it must leave on an interface: current age plus the
    /// interface's InfTransDelay, capped at MaxAge (RFC 2328 13.3).
    pub(crate) fn to_send(&self, now: Instant, transmit_delay: u16) -> RawLsa {
        let age = self.age(now).saturating_add(transmit_delay).min(MAX_AGE);
        if age == self.raw.header().age {
            self.raw.clone()
        } else {
            self.raw.with_age(age)
        }
    }

    /// True if this entry belongs to interface `iid` for scoping purposes:
    /// everything but link-local opaque LSAs belongs to every interface.
    pub(crate) fn visible_on(&self, iid: IfaceId) -> bool {
        self.iface.is_none_or(|i| i == iid)
    }
}

/// True if two headers denote the same instance for the purposes of
/// retransmission: same sequence number and checksum, and both or neither
/// at MaxAge (the age is otherwise irrelevant, RFC 2328 13.1).
pub(crate) fn same_instance(a: &LsaHeader, b: &LsaHeader) -> bool {
    a.seq == b.seq && a.checksum == b.checksum && a.is_max_age() == b.is_max_age()
}

/// The keys whose timer expires at one deadline, in no particular order:
/// mostly the LSAs of one Link State Update, often a single one.
#[derive(Debug)]
enum Due {
    One(LsaKey),
    Many(Vec<LsaKey>),
}

impl Due {
    fn push(&mut self, key: LsaKey) {
        match self {
            Due::One(k) => *self = Due::Many(vec![*k, key]),
            Due::Many(v) => v.push(key),
        }
    }

    /// Removes `key`; true if nothing is left.
    fn remove(&mut self, key: &LsaKey) -> bool {
        match self {
            Due::One(k) => k == key,
            Due::Many(v) => {
                if let Some(i) = v.iter().position(|k| k == key) {
                    v.swap_remove(i);
                }
                v.is_empty()
            }
        }
    }

    /// The keys, sorted.
    fn into_sorted(self) -> Vec<LsaKey> {
        match self {
            Due::One(k) => vec![k],
            Due::Many(mut v) => {
                v.sort_unstable();
                v
            }
        }
    }
}

/// The LSAs of one area, with their aging timers.
#[derive(Debug, Default)]
pub(crate) struct Lsdb {
    entries: BTreeMap<LsaKey, Box<LsaEntry>>,
    /// Deadline -> keys: refresh for our own LSAs, MaxAge for others.
    timers: BTreeMap<Instant, Due>,
    /// Entries at MaxAge, waiting to be removed (RFC 2328 14).
    pub(crate) max_age: BTreeSet<LsaKey>,
}

impl Lsdb {
    /// The entry for `key`.
    pub(crate) fn get(&self, key: &LsaKey) -> Option<&LsaEntry> {
        self.entries.get(key).map(|e| &**e)
    }

    /// The entry for `key`, mutable (timers are left alone).
    pub(crate) fn get_mut(&mut self, key: &LsaKey) -> Option<&mut LsaEntry> {
        self.entries.get_mut(key).map(|e| &mut **e)
    }

    /// The entry for `key` as seen from interface `iid` (type 9 scoping).
    pub(crate) fn get_on(&self, key: &LsaKey, iid: IfaceId) -> Option<&LsaEntry> {
        self.get(key).filter(|e| e.visible_on(iid))
    }

    /// All entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&LsaKey, &LsaEntry)> {
        self.entries.iter().map(|(k, e)| (k, &**e))
    }

    /// Number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Installs `entry` (RFC 2328 13.2), replacing any previous instance,
    /// and registers its timer. `own_router_id` tells our own live LSAs
    /// (refreshed) from others (aged out).
    pub(crate) fn install(&mut self, mut entry: LsaEntry, own_router_id: Ipv4Addr, now: Instant) {
        let key = entry.raw.header().key();
        self.remove(&key);
        let age = entry.age(now);
        if age >= MAX_AGE {
            self.max_age.insert(key);
        } else {
            let own = !entry.from_flooding && key.advertising_router == own_router_id;
            let left = if own {
                LS_REFRESH_TIME.saturating_sub(age)
            } else {
                MAX_AGE - age
            };
            entry.timer_secs = Some(left);
            let deadline = entry.installed + Duration::from_secs(u64::from(left));
            match self.timers.entry(deadline) {
                Entry::Vacant(v) => {
                    v.insert(Due::One(key));
                }
                Entry::Occupied(mut o) => o.get_mut().push(key),
            }
        }
        self.entries.insert(key, Box::new(entry));
    }

    /// Removes `key` and its timer.
    pub(crate) fn remove(&mut self, key: &LsaKey) -> Option<LsaEntry> {
        let old = self.entries.remove(key)?;
        if let Some(t) = old.timer() {
            if let Entry::Occupied(mut o) = self.timers.entry(t) {
                if o.get_mut().remove(key) {
                    o.remove();
                }
            }
        }
        self.max_age.remove(key);
        Some(*old)
    }

    /// The earliest timer.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|(t, _)| *t)
    }

    /// Removes and returns the keys whose timer is due, by deadline and
    /// then by key.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<LsaKey> {
        let mut due = Vec::new();
        while let Some(first) = self.timers.first_entry() {
            if *first.key() > now {
                break;
            }
            for key in first.remove().into_sorted() {
                if let Some(e) = self.entries.get_mut(&key) {
                    e.timer_secs = None;
                }
                due.push(key);
            }
        }
        due
    }
}

/// An OSPF area as this speaker sees it: its database and the state of
/// the LSAs we originate into it.
#[derive(Debug)]
pub(crate) struct Area {
    /// Area ID.
    pub(crate) id: Ipv4Addr,
    /// The link-state database.
    pub(crate) lsdb: Lsdb,
    /// Our own LSAs in this area, by key (RFC 2328 12.4).
    pub(crate) self_orig: BTreeMap<LsaKey, SelfOrig>,
    /// Once open, our LSAs may be originated (see `origin`): the first
    /// Router-LSA waits for the adjacency that shapes it.
    pub(crate) gate_open: bool,
    /// When the gate opens anyway if no adjacency is being formed.
    pub(crate) gate_deadline: Option<Instant>,
    /// When the gate opens whatever happens.
    pub(crate) gate_hard: Option<Instant>,
}

impl Area {
    /// An empty area.
    pub(crate) fn new(id: Ipv4Addr) -> Self {
        Area {
            id,
            lsdb: Lsdb::default(),
            self_orig: BTreeMap::new(),
            gate_open: false,
            gate_deadline: None,
            gate_hard: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsa::{Lsa, LsaBody, Options, RouterLsa};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn router_lsa(adv: &str, age: u16, seq: i32) -> RawLsa {
        Lsa {
            header: LsaHeader {
                age,
                options: Options::E,
                lsa_type: LsaType::ROUTER,
                link_state_id: ip(adv),
                advertising_router: ip(adv),
                seq,
                checksum: 0,
                length: 0,
            },
            body: LsaBody::Router(RouterLsa::default()),
        }
        .to_raw()
        .unwrap()
    }

    #[test]
    fn age_grows_from_install_time_and_caps_at_max_age() {
        let t0 = Instant::now();
        let e = LsaEntry::new(router_lsa("10.0.0.2", 100, 5), t0, true, None);
        assert_eq!(e.age(t0), 100);
        assert_eq!(e.age(t0 + Duration::from_millis(999)), 100);
        assert_eq!(e.age(t0 + Duration::from_secs(50)), 150);
        assert_eq!(e.age(t0 + Duration::from_secs(5000)), MAX_AGE);
        assert!(e.is_max_age(t0 + Duration::from_secs(3500)));
        let mut e = e;
        assert_eq!(e.sent_back(), None);
        let at = t0 + Duration::from_micros(2_500_100);
        e.set_sent_back(at);
        let back = e.sent_back().expect("noted");
        assert!(
            back >= at && back - at < Duration::from_millis(1),
            "{:?}",
            back - t0
        );
        let sent = e.to_send(t0 + Duration::from_secs(10), 1);
        assert_eq!(sent.header().age, 111);
        assert!(sent.verify_checksum());
        let capped = e.to_send(t0 + Duration::from_secs(3499), 5);
        assert_eq!(capped.header().age, MAX_AGE);
    }

    #[test]
    fn timers_refresh_own_and_age_out_others() {
        let t0 = Instant::now();
        let me = ip("10.0.0.1");
        let mut db = Lsdb::default();
        db.install(
            LsaEntry::new(router_lsa("10.0.0.1", 0, 1), t0, false, None),
            me,
            t0,
        );
        db.install(
            LsaEntry::new(router_lsa("10.0.0.2", 600, 1), t0, true, None),
            me,
            t0,
        );
        assert_eq!(
            db.next_timer(),
            Some(t0 + Duration::from_secs(u64::from(LS_REFRESH_TIME)))
        );
        assert!(db.take_due(t0 + Duration::from_secs(1799)).is_empty());
        let due = db.take_due(t0 + Duration::from_secs(1800));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].advertising_router, me);
        assert_eq!(db.next_timer(), Some(t0 + Duration::from_secs(3000)));
        // Replacing an entry drops its old timer.
        let k2 = router_lsa("10.0.0.2", 0, 2).header().key();
        db.install(
            LsaEntry::new(router_lsa("10.0.0.2", 0, 2), t0, true, None),
            me,
            t0,
        );
        assert_eq!(db.next_timer(), Some(t0 + Duration::from_secs(3600)));
        // MaxAge entries have no timer and are listed for removal.
        db.install(
            LsaEntry::new(
                router_lsa("10.0.0.2", 0, 2).with_age(MAX_AGE),
                t0,
                true,
                None,
            ),
            me,
            t0,
        );
        assert_eq!(db.next_timer(), None);
        assert!(db.max_age.contains(&k2));
        db.remove(&k2);
        assert!(db.max_age.is_empty());
        assert_eq!(db.len(), 1);
    }

    #[test]
    fn timers_sharing_a_deadline_fire_in_key_order() {
        let t0 = Instant::now();
        let me = ip("10.0.0.1");
        let mut db = Lsdb::default();
        for adv in ["10.0.0.9", "10.0.0.3", "10.0.0.7", "10.0.0.5"] {
            db.install(
                LsaEntry::new(router_lsa(adv, 100, 1), t0, true, None),
                me,
                t0,
            );
        }
        // One of them replaced (new deadline), one flushed: neither fires
        // at the old deadline.
        let t1 = t0 + Duration::from_secs(10);
        db.install(
            LsaEntry::new(router_lsa("10.0.0.7", 0, 2), t1, true, None),
            me,
            t1,
        );
        db.remove(&router_lsa("10.0.0.3", 0, 1).header().key());
        let old = t0 + Duration::from_secs(3500);
        assert_eq!(db.next_timer(), Some(old));
        let due: Vec<Ipv4Addr> = db
            .take_due(old)
            .iter()
            .map(|k| k.advertising_router)
            .collect();
        assert_eq!(due, [ip("10.0.0.5"), ip("10.0.0.9")]);
        assert_eq!(db.next_timer(), Some(t1 + Duration::from_secs(3600)));
        assert_eq!(db.take_due(t1 + Duration::from_secs(3600)).len(), 1);
        assert_eq!(db.next_timer(), None);
    }

    #[test]
    fn same_instance_ignores_age_but_not_max_age() {
        let a = *router_lsa("10.0.0.2", 1, 7).header();
        let b = LsaHeader { age: 800, ..a };
        let c = LsaHeader { age: MAX_AGE, ..a };
        let d = LsaHeader { seq: 8, ..a };
        assert!(same_instance(&a, &b));
        assert!(!same_instance(&a, &c));
        assert!(!same_instance(&a, &d));
    }
}
