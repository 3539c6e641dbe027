//! The link-state database of one area (RFC 2328 sections 12, 13.2, 14).
//!
//! Entries keep the exact bytes received and the instant they were
//! installed; the LS age is computed from both (age at install plus whole
//! seconds elapsed, capped at MaxAge), so nothing ticks every second.
//! Each entry has at most one timer: for our own live LSAs the refresh at
//! LSRefreshTime, for everyone else's the moment the age reaches MaxAge.
//! MaxAge entries sit in a separate set until flushing is complete (14).
//!
//! Memory, for databases of tens of thousands of LSAs (a director loading
//! a router's redistributed routes): each LSA is one 45-byte slot without
//! pointers, in a table sorted by key and cut into chunks of 64 slots.
//! The slot holds the LSA's own bytes (its key, the rest of the header,
//! and a body of up to 16 bytes: an AS-external-LSA, a summary-LSA, a
//! router-LSA with one link), the install time as nanoseconds after the
//! database's first install, and flags; nothing is shared with received
//! packets, which are freed once processed. What few entries need more
//! (longer bodies, the interface of a link-local LSA, the time an LSA was
//! last sent back) is kept aside by key. Timers are only counted per
//! deadline; the entries due are found by a scan when a deadline is
//! reached, which for others' LSAs only happens when they age out (they
//! are refreshed at half MaxAge). Loaded in key order, as answers to our
//! requests are, the chunks fill up: 46 bytes per AS-external-LSA in all
//! (`tests/lsdb_memory.rs`, against 198 with boxed entries in a B-tree
//! sharing packet buffers, 360 before that); in `anycastd-lab bench-db`
//! anonymous memory grows by about 45 bytes per LSA from 20,000 to 50,000
//! LSAs (1.6 and 2.9 MiB in all, against 4.7 and 10.8 MiB before).
//! Inserted in random order, chunks split in halves and end up about two
//! thirds full: 66 bytes per LSA.
//!
//! Scope: AS-scoped LSAs (types 5 and 11) are kept in, and flooded within,
//! the area they arrived in: a director lives in one area, and this avoids
//! an AS-wide database for nothing. Link-local opaque LSAs (type 9) carry
//! the interface they were received on and are only described and flooded
//! there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};

use crate::instance::IfaceId;
use crate::lsa::{
    LsaHeader, LsaKey, Options, RawLsa, LSA_HEADER_LEN, LS_REFRESH_TIME, MAX_AGE, MIN_LS_ARRIVAL,
};
use crate::origin::SelfOrig;
use crate::validate::LsaTypes;

/// True if two headers denote the same instance for the purposes of
/// retransmission: same sequence number and checksum, and both or neither
/// at MaxAge (the age is otherwise irrelevant, RFC 2328 13.1).
pub(crate) fn same_instance(a: &LsaHeader, b: &LsaHeader) -> bool {
    a.seq == b.seq && a.checksum == b.checksum && a.is_max_age() == b.is_max_age()
}

/// The LSA header bytes a slot keeps besides the key: LS age and options
/// (offsets 0..3), sequence number, checksum and length (12..20).
const HEADER_REST: usize = LSA_HEADER_LEN - 9;
/// Body bytes kept in the slot itself: enough for an AS-external-LSA
/// without TOS metrics, a summary-LSA or a router-LSA with one link.
/// Longer bodies live in [`Lsdb::big`].
const INLINE_BODY: usize = 16;
/// Entries per chunk of the sorted table: 64 slots of 45 bytes, one
/// allocation of under 3 KiB.
const CHUNK: usize = 64;

/// `flags`: received by flooding (as opposed to originated or flushed by
/// us).
const FROM_FLOODING: u8 = 1;
/// `flags`: a timer is registered in [`Lsdb::deadlines`].
const TIMER: u8 = 2;
/// `flags`: the timer is our refresh at LSRefreshTime, not MaxAge.
const REFRESH: u8 = 4;
/// `flags`: link-local scope, the interface is in [`Lsdb::scopes`].
const SCOPED: u8 = 8;

/// `t` in nanoseconds after `epoch` (negative before it), saturating.
fn nanos_since(epoch: Instant, t: Instant) -> i64 {
    match t.checked_duration_since(epoch) {
        Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        None => i64::try_from(epoch.duration_since(t).as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The instant `ns` nanoseconds after `epoch` (saturating at `epoch`,
/// which never happens for times an `Instant` can hold).
fn instant_at(epoch: Instant, ns: i64) -> Instant {
    let d = Duration::from_nanos(ns.unsigned_abs());
    let t = if ns >= 0 {
        epoch.checked_add(d)
    } else {
        epoch.checked_sub(d)
    };
    t.unwrap_or(epoch)
}

/// One LSA as stored: 45 bytes, byte-aligned, no pointer. The LSA's own
/// bytes are the key (type, Link State ID, Advertising Router), then the
/// rest of the header and the body; with the install time and flags.
#[derive(Clone, Debug)]
struct Slot {
    key: LsaKey,
    /// Header bytes 0..3 and 12..20, then the body if it fits.
    rest: [u8; HEADER_REST + INLINE_BODY],
    /// When it was installed: nanoseconds after [`Lsdb::epoch`], signed,
    /// little-endian.
    installed: [u8; 8],
    flags: u8,
}

impl Slot {
    fn from_raw(raw: &RawLsa, installed: i64, flags: u8) -> Slot {
        let b = raw.as_bytes();
        let mut rest = [0u8; HEADER_REST + INLINE_BODY];
        rest[..3].copy_from_slice(&b[..3]);
        rest[3..HEADER_REST].copy_from_slice(&b[12..LSA_HEADER_LEN]);
        let body = &b[LSA_HEADER_LEN..];
        if body.len() <= INLINE_BODY {
            rest[HEADER_REST..HEADER_REST + body.len()].copy_from_slice(body);
        }
        Slot {
            key: raw.header().key(),
            rest,
            installed: installed.to_le_bytes(),
            flags,
        }
    }

    fn be16(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.rest[at], self.rest[at + 1]])
    }

    /// The LS age it was installed with.
    fn base_age(&self) -> u16 {
        self.be16(0)
    }

    fn len(&self) -> usize {
        usize::from(self.be16(9))
    }

    /// The body, unless it is too long for the slot.
    fn inline_body(&self) -> Option<&[u8]> {
        let n = self.len().saturating_sub(LSA_HEADER_LEN);
        self.rest.get(HEADER_REST..HEADER_REST + n)
    }

    fn installed(&self) -> i64 {
        i64::from_le_bytes(self.installed)
    }

    /// The header as installed.
    fn header(&self) -> LsaHeader {
        let r = &self.rest;
        LsaHeader {
            age: self.base_age(),
            options: Options(r[2]),
            lsa_type: self.key.lsa_type,
            link_state_id: self.key.link_state_id,
            advertising_router: self.key.advertising_router,
            seq: i32::from_be_bytes([r[3], r[4], r[5], r[6]]),
            checksum: self.be16(7),
            length: self.be16(9),
        }
    }

    /// The deadline of its timer (set or not), in nanoseconds after the
    /// epoch: the refresh for our own LSAs, MaxAge for others.
    fn deadline(&self) -> i64 {
        let age = self.base_age().min(MAX_AGE);
        let left = if self.flags & REFRESH != 0 {
            LS_REFRESH_TIME.saturating_sub(age)
        } else {
            MAX_AGE - age
        };
        self.installed()
            .saturating_add(i64::from(left) * 1_000_000_000)
    }
}

/// One LSA in the database, as seen through [`Lsdb::get`] and
/// [`Lsdb::iter`].
#[derive(Clone, Copy)]
pub(crate) struct LsaEntry<'a> {
    db: &'a Lsdb,
    slot: &'a Slot,
    /// The database's epoch (there is one once anything is installed).
    epoch: Instant,
}

impl LsaEntry<'_> {
    /// Received by flooding (13 step 5a applies MinLSArrival to these), as
    /// opposed to originated or flushed by us.
    pub(crate) fn flooded(self) -> bool {
        self.slot.flags & FROM_FLOODING != 0
    }

    /// For link-local opaque LSAs: the interface they belong to.
    pub(crate) fn iface(self) -> Option<IfaceId> {
        if self.slot.flags & SCOPED == 0 {
            return None;
        }
        self.db.scopes.get(&self.slot.key).copied()
    }

    /// When it was installed; the age grows from here.
    pub(crate) fn installed(self) -> Instant {
        instant_at(self.epoch, self.slot.installed())
    }

    /// Last time it was sent back to a neighbour holding an older copy
    /// (13 step 8 limits that to once per MinLSArrival).
    pub(crate) fn sent_back(self) -> Option<Instant> {
        self.db.sent_back.get(&self.slot.key).copied()
    }

    /// Time spent in the database at `now`.
    fn elapsed(self, now: Instant) -> Duration {
        let ns = nanos_since(self.epoch, now).saturating_sub(self.slot.installed());
        Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
    }

    /// The current LS age (RFC 2328 14): age at install plus the seconds
    /// spent in the database, never above MaxAge.
    pub(crate) fn age(self, now: Instant) -> u16 {
        let base = self.slot.base_age();
        if base >= MAX_AGE {
            return MAX_AGE;
        }
        let elapsed = self.elapsed(now).as_secs();
        let age = (u64::from(base) + elapsed).min(u64::from(MAX_AGE));
        u16::try_from(age).unwrap_or(MAX_AGE)
    }

    /// True once the age has reached MaxAge.
    pub(crate) fn is_max_age(self, now: Instant) -> bool {
        self.age(now) >= MAX_AGE
    }

    /// The header with the LS age it was installed with.
    pub(crate) fn stored_header(self) -> LsaHeader {
        self.slot.header()
    }

    /// The header with the current age.
    pub(crate) fn header(self, now: Instant) -> LsaHeader {
        LsaHeader {
            age: self.age(now),
            ..self.slot.header()
        }
    }

    /// The LSA with LS age `age`; the checksum stays valid as it does not
    /// cover the age (RFC 2328 12.1.7).
    pub(crate) fn with_age(self, age: u16) -> RawLsa {
        let s = self.slot;
        let header = LsaHeader { age, ..s.header() };
        let mut buf = BytesMut::with_capacity(s.len());
        header.encode(&mut buf);
        match s.inline_body() {
            Some(body) => buf.put_slice(body),
            None => buf.put_slice(self.db.big.get(&s.key).map_or(&[][..], |b| &b[..])),
        }
        RawLsa::from_parts(header, buf.freeze())
    }

    /// The LSA as it must leave on an interface: current age plus the
    /// interface's InfTransDelay, capped at MaxAge (RFC 2328 13.3).
    pub(crate) fn to_send(self, now: Instant, transmit_delay: u16) -> RawLsa {
        self.with_age(self.age(now).saturating_add(transmit_delay).min(MAX_AGE))
    }

    /// True if this entry belongs to interface `iid` for scoping purposes:
    /// everything but link-local opaque LSAs belongs to every interface.
    pub(crate) fn visible_on(self, iid: IfaceId) -> bool {
        self.iface().is_none_or(|i| i == iid)
    }
}

/// The LSAs of one area, with their aging timers.
///
/// The entries form a table sorted by key, cut into chunks of at most
/// [`CHUNK`] slots allocated at full size: a lookup is a binary search
/// over the chunks then within one; an insertion shifts at most one
/// chunk. A key beyond a full chunk (as when a database loads in key
/// order) starts a new chunk rather than splitting, so a database loaded
/// in order fills its chunks; elsewhere a full chunk splits in halves.
/// A chunk emptied below a quarter merges into a neighbour with room.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lsdb {
    /// Sorted, never empty, each of capacity [`CHUNK`].
    chunks: Vec<Vec<Slot>>,
    /// The instant install times count from: the first install.
    epoch: Option<Instant>,
    /// Bodies of the LSAs too long for their slot.
    big: BTreeMap<LsaKey, Box<[u8]>>,
    /// The interface of each link-local opaque LSA (type 9).
    scopes: BTreeMap<LsaKey, IfaceId>,
    /// When an LSA was last sent back to a neighbour holding an older
    /// copy; entries older than MinLSArrival are pruned.
    sent_back: BTreeMap<LsaKey, Instant>,
    /// Timer deadlines (nanoseconds after the epoch) and how many entries
    /// have each. The entries due are found by a scan, which happens once
    /// per deadline reached: for others' LSAs only when they age out,
    /// since they are refreshed long before.
    deadlines: BTreeMap<i64, u32>,
    /// Entries at MaxAge, waiting to be removed (RFC 2328 14).
    pub(crate) max_age: BTreeSet<LsaKey>,
    /// Number of entries.
    len: usize,
}

impl Lsdb {
    /// Where `key` is: its chunk (`chunks.len()` if after every key) and
    /// its index there, or where it would be inserted.
    fn locate(&self, key: &LsaKey) -> (usize, Result<usize, usize>) {
        let c = self
            .chunks
            .partition_point(|ch| ch.last().is_some_and(|s| s.key < *key));
        match self.chunks.get(c) {
            Some(ch) => (c, ch.binary_search_by(|s| s.key.cmp(key))),
            None => (c, Err(0)),
        }
    }

    fn slot(&self, key: &LsaKey) -> Option<&Slot> {
        match self.locate(key) {
            (c, Ok(i)) => self.chunks.get(c)?.get(i),
            _ => None,
        }
    }

    /// The entry for `key`.
    pub(crate) fn get(&self, key: &LsaKey) -> Option<LsaEntry<'_>> {
        let epoch = self.epoch?;
        self.slot(key).map(|slot| LsaEntry {
            db: self,
            slot,
            epoch,
        })
    }

    /// The entry for `key` as seen from interface `iid` (type 9 scoping).
    pub(crate) fn get_on(&self, key: &LsaKey, iid: IfaceId) -> Option<LsaEntry<'_>> {
        self.get(key).filter(|e| e.visible_on(iid))
    }

    /// All entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&LsaKey, LsaEntry<'_>)> {
        self.epoch.into_iter().flat_map(move |epoch| {
            self.chunks.iter().flatten().map(move |slot| {
                let e = LsaEntry {
                    db: self,
                    slot,
                    epoch,
                };
                (&slot.key, e)
            })
        })
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Notes that the entry for `key` was sent back to a neighbour holding
    /// an older copy at `now` (13 step 8).
    pub(crate) fn set_sent_back(&mut self, key: &LsaKey, now: Instant) {
        if self.slot(key).is_none() {
            return;
        }
        if self.sent_back.len() >= 64 {
            let keep = Duration::from_secs(u64::from(MIN_LS_ARRIVAL));
            self.sent_back
                .retain(|_, t| now.saturating_duration_since(*t) < keep);
        }
        self.sent_back.insert(*key, now);
    }

    /// Installs `raw` at `now` (RFC 2328 13.2), replacing any previous
    /// instance, and registers its timer. `scope` is the interface of a
    /// link-local LSA; `own_router_id` tells our own live LSAs (refreshed)
    /// from others (aged out).
    pub(crate) fn install(
        &mut self,
        raw: &RawLsa,
        now: Instant,
        from_flooding: bool,
        scope: Option<IfaceId>,
        own_router_id: Ipv4Addr,
    ) {
        let epoch = *self.epoch.get_or_insert(now);
        let key = raw.header().key();
        let (c, at) = self.locate(&key);
        if let Ok(i) = at {
            if let Some(old) = self.chunks.get(c).and_then(|ch| ch.get(i)).cloned() {
                self.detach(&old);
            }
        }
        let mut flags = 0;
        if from_flooding {
            flags |= FROM_FLOODING;
        }
        if let Some(iid) = scope {
            flags |= SCOPED;
            self.scopes.insert(key, iid);
        }
        let body = raw.as_bytes().get(LSA_HEADER_LEN..).unwrap_or_default();
        if body.len() > INLINE_BODY {
            self.big.insert(key, body.into());
        }
        if raw.header().age >= MAX_AGE {
            self.max_age.insert(key);
        } else {
            flags |= TIMER;
            if !from_flooding && key.advertising_router == own_router_id {
                flags |= REFRESH;
            }
        }
        let slot = Slot::from_raw(raw, nanos_since(epoch, now), flags);
        if flags & TIMER != 0 {
            *self.deadlines.entry(slot.deadline()).or_insert(0) += 1;
        }
        match at {
            Ok(i) => {
                if let Some(s) = self.chunks.get_mut(c).and_then(|ch| ch.get_mut(i)) {
                    *s = slot;
                }
            }
            Err(i) => {
                self.insert_at(c, i, slot);
                self.len += 1;
            }
        }
    }

    /// Inserts `slot` at index `i` of chunk `c` (see [`Lsdb::locate`]).
    fn insert_at(&mut self, c: usize, i: usize, slot: Slot) {
        let new_chunk = |slot: Slot| {
            let mut ch = Vec::with_capacity(CHUNK);
            ch.push(slot);
            ch
        };
        let Some(len) = self.chunks.get(c).map(Vec::len) else {
            // After every key: the last chunk, or a new one.
            match self.chunks.last_mut() {
                Some(last) if last.len() < CHUNK => last.push(slot),
                _ => self.chunks.push(new_chunk(slot)),
            }
            return;
        };
        if len < CHUNK {
            self.chunks[c].insert(i, slot);
        } else if i == 0 {
            // Between two chunks, the next one full: the end of the
            // previous one, or a new chunk of its own.
            match c.checked_sub(1).and_then(|p| self.chunks.get_mut(p)) {
                Some(prev) if prev.len() < CHUNK => prev.push(slot),
                _ => self.chunks.insert(c, new_chunk(slot)),
            }
        } else {
            let mut tail = Vec::with_capacity(CHUNK);
            tail.extend(self.chunks[c].drain(CHUNK / 2..));
            if i <= CHUNK / 2 {
                self.chunks[c].insert(i, slot);
            } else {
                tail.insert(i - CHUNK / 2, slot);
            }
            self.chunks.insert(c + 1, tail);
        }
    }

    /// Forgets what is kept about `old` outside its slot: timer, MaxAge
    /// listing, scope, long body, sent-back time.
    fn detach(&mut self, old: &Slot) {
        if old.flags & TIMER != 0 {
            let d = old.deadline();
            if let Some(n) = self.deadlines.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    self.deadlines.remove(&d);
                }
            }
        }
        self.max_age.remove(&old.key);
        if old.flags & SCOPED != 0 {
            self.scopes.remove(&old.key);
        }
        if old.len().saturating_sub(LSA_HEADER_LEN) > INLINE_BODY {
            self.big.remove(&old.key);
        }
        self.sent_back.remove(&old.key);
    }

    /// Removes `key` and its timer; true if it was there.
    pub(crate) fn remove(&mut self, key: &LsaKey) -> bool {
        let (c, Ok(i)) = self.locate(key) else {
            return false;
        };
        let Some(ch) = self.chunks.get_mut(c) else {
            return false;
        };
        let old = ch.remove(i);
        let len = ch.len();
        self.len -= 1;
        self.detach(&old);
        if len == 0 {
            self.chunks.remove(c);
        } else if len < CHUNK / 4 {
            // Merge into a neighbour that has room for it.
            let fits = |n: usize| self.chunks.get(n).is_some_and(|x| x.len() + len <= CHUNK);
            if fits(c + 1) {
                let ch = self.chunks.remove(c);
                self.chunks[c].splice(0..0, ch);
            } else if c > 0 && fits(c - 1) {
                let ch = self.chunks.remove(c);
                self.chunks[c - 1].extend(ch);
            }
        }
        true
    }

    /// The earliest timer.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        let epoch = self.epoch?;
        let (d, _) = self.deadlines.first_key_value()?;
        Some(instant_at(epoch, *d))
    }

    /// Removes and returns the keys whose timer is due, by deadline and
    /// then by key.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<LsaKey> {
        let Some(epoch) = self.epoch else {
            return Vec::new();
        };
        let now = nanos_since(epoch, now);
        if self
            .deadlines
            .first_key_value()
            .is_none_or(|(d, _)| *d > now)
        {
            return Vec::new();
        }
        let mut due: Vec<(i64, LsaKey)> = Vec::new();
        for slot in self.chunks.iter_mut().flatten() {
            if slot.flags & TIMER != 0 {
                let d = slot.deadline();
                if d <= now {
                    slot.flags &= !TIMER;
                    due.push((d, slot.key));
                }
            }
        }
        while let Some(first) = self.deadlines.first_entry() {
            if *first.key() > now {
                break;
            }
            first.remove();
        }
        due.sort_unstable();
        due.into_iter().map(|(_, k)| k).collect()
    }
}

/// An OSPF area as this speaker sees it: its database and the state of
/// the LSAs we originate into it.
#[derive(Clone, Debug)]
pub(crate) struct Area {
    /// Area ID.
    pub(crate) id: Ipv4Addr,
    /// The LS types the area takes (RFC 2328 13 steps 2-3).
    pub(crate) types: LsaTypes,
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
    /// An empty area taking the LS types `types` (see
    /// [`crate::area::AreaType::lsa_types`]).
    pub(crate) fn new(id: Ipv4Addr, types: LsaTypes) -> Self {
        Area {
            id,
            types,
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
    use crate::lsa::{Lsa, LsaBody, LsaType, Options, RouterLink, RouterLinkType, RouterLsa};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn router_lsa_with(adv: &str, age: u16, seq: i32, links: usize) -> RawLsa {
        let link = RouterLink {
            link_id: ip("192.0.2.1"),
            link_data: ip("255.255.255.255"),
            link_type: RouterLinkType::Stub,
            metric: 10,
            tos: Vec::new(),
        };
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
            body: LsaBody::Router(RouterLsa {
                links: vec![link; links],
                ..RouterLsa::default()
            }),
        }
        .to_raw()
        .unwrap()
    }

    fn router_lsa(adv: &str, age: u16, seq: i32) -> RawLsa {
        router_lsa_with(adv, age, seq, 0)
    }

    fn key(adv: &str) -> LsaKey {
        router_lsa(adv, 0, 1).header().key()
    }

    #[test]
    fn slots_are_small() {
        assert_eq!(std::mem::size_of::<Slot>(), 45);
        assert_eq!(std::mem::align_of::<Slot>(), 1);
    }

    #[test]
    fn age_grows_from_install_time_and_caps_at_max_age() {
        let t0 = Instant::now();
        let me = ip("10.0.0.1");
        let mut db = Lsdb::default();
        db.install(&router_lsa("10.0.0.2", 100, 5), t0, true, None, me);
        let e = db.get(&key("10.0.0.2")).unwrap();
        assert!(e.flooded());
        assert_eq!(e.installed(), t0);
        assert_eq!(e.age(t0), 100);
        assert_eq!(e.age(t0 + Duration::from_millis(999)), 100);
        assert_eq!(e.age(t0 + Duration::from_secs(50)), 150);
        assert_eq!(e.age(t0 + Duration::from_secs(5000)), MAX_AGE);
        assert!(e.is_max_age(t0 + Duration::from_secs(3500)));
        assert_eq!(e.sent_back(), None);
        let at = t0 + Duration::from_micros(2_500_100);
        db.set_sent_back(&key("10.0.0.2"), at);
        let e = db.get(&key("10.0.0.2")).unwrap();
        assert_eq!(e.sent_back(), Some(at));
        let sent = e.to_send(t0 + Duration::from_secs(10), 1);
        assert_eq!(sent.header().age, 111);
        assert!(sent.verify_checksum());
        assert_eq!(
            sent.as_bytes()[2..],
            router_lsa("10.0.0.2", 0, 5).as_bytes()[2..]
        );
        let capped = e.to_send(t0 + Duration::from_secs(3499), 5);
        assert_eq!(capped.header().age, MAX_AGE);
        // Installed before the first install (the epoch) works too.
        let early = t0.checked_sub(Duration::from_secs(7)).unwrap_or(t0);
        db.install(&router_lsa("10.0.0.3", 1, 5), early, true, None, me);
        let e = db.get(&key("10.0.0.3")).unwrap();
        assert_eq!(e.installed(), early);
        assert_eq!(e.age(early + Duration::from_secs(9)), 10);
        // A new instance forgets when the old one was sent back.
        db.install(&router_lsa("10.0.0.2", 0, 6), t0, true, None, me);
        assert_eq!(db.get(&key("10.0.0.2")).unwrap().sent_back(), None);
    }

    #[test]
    fn stored_bytes_are_the_received_ones_short_or_long() {
        let t0 = Instant::now();
        let me = ip("10.0.0.1");
        let mut db = Lsdb::default();
        for (adv, links) in [
            ("10.0.0.2", 0),
            ("10.0.0.3", 1),
            ("10.0.0.4", 2),
            ("10.0.0.5", 40),
        ] {
            let raw = router_lsa_with(adv, 7, 3, links);
            db.install(&raw, t0, true, None, me);
            let e = db.get(&raw.header().key()).unwrap();
            assert_eq!(e.stored_header(), *raw.header());
            assert_eq!(e.to_send(t0, 0), raw, "{links} links");
        }
        assert_eq!(db.big.len(), 2);
        // A long LSA replaced by a short one, then removed: nothing left.
        db.install(&router_lsa("10.0.0.5", 7, 4), t0, true, None, me);
        assert_eq!(db.big.len(), 1);
        assert!(db.remove(&key("10.0.0.4")));
        assert!(!db.remove(&key("10.0.0.4")));
        assert!(db.big.is_empty());
    }

    #[test]
    fn link_local_scope_is_kept_per_entry() {
        let t0 = Instant::now();
        let me = ip("10.0.0.1");
        let mut db = Lsdb::default();
        db.install(
            &router_lsa("10.0.0.2", 1, 1),
            t0,
            true,
            Some(IfaceId(3)),
            me,
        );
        db.install(&router_lsa("10.0.0.3", 1, 1), t0, true, None, me);
        assert!(db.get_on(&key("10.0.0.2"), IfaceId(3)).is_some());
        assert!(db.get_on(&key("10.0.0.2"), IfaceId(4)).is_none());
        assert!(db.get_on(&key("10.0.0.3"), IfaceId(4)).is_some());
        assert_eq!(db.get(&key("10.0.0.2")).unwrap().iface(), Some(IfaceId(3)));
        db.install(&router_lsa("10.0.0.2", 1, 2), t0, true, None, me);
        assert_eq!(db.get(&key("10.0.0.2")).unwrap().iface(), None);
        assert!(db.scopes.is_empty());
    }

    #[test]
    fn timers_refresh_own_and_age_out_others() {
        let t0 = Instant::now();
        let me = ip("10.0.0.1");
        let mut db = Lsdb::default();
        db.install(&router_lsa("10.0.0.1", 0, 1), t0, false, None, me);
        db.install(&router_lsa("10.0.0.2", 600, 1), t0, true, None, me);
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
        let k2 = key("10.0.0.2");
        db.install(&router_lsa("10.0.0.2", 0, 2), t0, true, None, me);
        assert_eq!(db.next_timer(), Some(t0 + Duration::from_secs(3600)));
        // MaxAge entries have no timer and are listed for removal.
        db.install(
            &router_lsa("10.0.0.2", 0, 2).with_age(MAX_AGE),
            t0,
            true,
            None,
            me,
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
            db.install(&router_lsa(adv, 100, 1), t0, true, None, me);
        }
        // One of them replaced (new deadline), one flushed: neither fires
        // at the old deadline.
        let t1 = t0 + Duration::from_secs(10);
        db.install(&router_lsa("10.0.0.7", 0, 2), t1, true, None, me);
        db.remove(&key("10.0.0.3"));
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
    fn timers_due_together_fire_by_deadline_then_key() {
        let t0 = Instant::now();
        let me = ip("10.0.0.1");
        let mut db = Lsdb::default();
        db.install(&router_lsa("10.0.0.2", 10, 1), t0, true, None, me);
        db.install(&router_lsa("10.0.0.3", 20, 1), t0, true, None, me);
        db.install(&router_lsa("10.0.0.4", 10, 1), t0, true, None, me);
        let due: Vec<Ipv4Addr> = db
            .take_due(t0 + Duration::from_secs(4000))
            .iter()
            .map(|k| k.advertising_router)
            .collect();
        assert_eq!(due, [ip("10.0.0.3"), ip("10.0.0.2"), ip("10.0.0.4")]);
        assert_eq!(db.next_timer(), None);
        assert!(db.deadlines.is_empty());
    }

    /// The sorted table against a `BTreeMap` model, under loads in order,
    /// in reverse, interleaved and random, and removals.
    #[test]
    fn table_stays_sorted_and_compact() {
        let t0 = Instant::now();
        let me = ip("10.0.0.1");
        let raw = |i: u32| {
            let [_, b, c, d] = i.to_be_bytes();
            router_lsa(&format!("10.{b}.{c}.{d}"), 1, 1)
        };
        let check = |db: &Lsdb, model: &BTreeSet<LsaKey>| {
            let keys: Vec<LsaKey> = db.iter().map(|(k, _)| *k).collect();
            let want: Vec<LsaKey> = model.iter().copied().collect();
            assert_eq!(keys, want);
            assert!(db.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
            assert!(db.chunks.iter().all(|c| c.capacity() == CHUNK));
            for k in model {
                assert_eq!(db.get(k).map(|e| e.stored_header().key()), Some(*k));
            }
        };
        let mut db = Lsdb::default();
        let mut model = BTreeSet::new();
        // In order: every chunk but the last is full.
        for i in 0..1000 {
            db.install(&raw(i * 4), t0, true, None, me);
            model.insert(raw(i * 4).header().key());
        }
        check(&db, &model);
        assert_eq!(db.chunks.len(), 1000usize.div_ceil(CHUNK));
        // In reverse, between the keys already there.
        for i in (0..1000).rev() {
            db.install(&raw(i * 4 + 2), t0, true, None, me);
            model.insert(raw(i * 4 + 2).header().key());
        }
        check(&db, &model);
        // Pseudo-random inserts, replacements and removals.
        let mut x: u32 = 12345;
        for _ in 0..6000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (x >> 8) % 4000;
            let k = raw(i).header().key();
            if x & 1 == 0 {
                db.install(&raw(i), t0, true, None, me);
                model.insert(k);
            } else {
                assert_eq!(db.remove(&k), model.remove(&k));
            }
        }
        check(&db, &model);
        // Emptied: no chunk left.
        for k in std::mem::take(&mut model) {
            assert!(db.remove(&k));
        }
        check(&db, &model);
        assert!(db.chunks.is_empty());
        assert!(db.deadlines.is_empty());
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
