//! One virtual router, sans-IO: the RFC 5798 6.4 state machine (which
//! RFC 3768 6.4 shares), with the keepalived extensions its peers expect
//! (preempt delay, tracking weights, a fault state).
//!
//! Inputs take the current instant: [`Instance::startup`],
//! [`Instance::handle_advert`], [`Instance::handle_timeout`],
//! [`Instance::set_tracker`], [`Instance::shutdown`]. Outputs are drained:
//! [`Instance::poll_transmit`] (adverts to send), [`Instance::poll_event`]
//! (addresses to add or remove, gratuitous ARPs, state changes) and
//! [`Instance::poll_timeout`] (when to call `handle_timeout` next).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::packet::{
    checksum_ok, Advertisement, Auth, ChecksumMode, Version, VRRP_GROUP, VRRP_TTL,
};

/// The owner of the virtual addresses (RFC 5798 5.2.4).
pub const OWNER_PRIORITY: u8 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Initialize,
    Backup,
    Master,
    /// Not in the RFC (keepalived's FAULT): a tracked condition marked as
    /// fatal failed, so this router takes no part until it recovers.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "Initialize",
            State::Backup => "Backup",
            State::Master => "Master",
            State::Fault => "Fault",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub version: Version,
    pub vrid: u8,
    /// 1-254, or 255 for the address owner.
    pub priority: u8,
    /// Advertisement_Interval in centiseconds (v2: a multiple of 100).
    pub advert_interval_cs: u16,
    /// Preempt_Mode: a higher-priority backup takes over from a master.
    pub preempt: bool,
    /// keepalived's preempt_delay: after start-up (or after leaving Fault)
    /// a backup waits this long before preempting a lower-priority master.
    pub preempt_delay: Duration,
    /// The virtual addresses, as advertised.
    pub addresses: Vec<Ipv4Addr>,
    /// v2 authentication (v3 has none).
    pub auth: Auth,
    /// Unicast peers: adverts go to each of them instead of 224.0.0.18.
    pub unicast_peers: Vec<Ipv4Addr>,
    pub checksum: ChecksumMode,
    /// Unicast adverts checksummed as if sent to 224.0.0.18, for peers
    /// that verify that way (keepalived's `old_unicast_checksum`).
    pub legacy_unicast_checksum: bool,
}

impl Config {
    pub fn new(version: Version, vrid: u8, priority: u8, addresses: Vec<Ipv4Addr>) -> Config {
        Config {
            version,
            vrid,
            priority,
            advert_interval_cs: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            addresses,
            auth: Auth::None,
            unicast_peers: Vec::new(),
            checksum: ChecksumMode::Rfc,
            legacy_unicast_checksum: false,
        }
    }
}

/// An advert to send: from the interface's primary address to `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dst: Ipv4Addr,
    pub bytes: Vec<u8>,
}

/// Why the instance changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Startup,
    /// Owner: priority 255.
    Owner,
    MasterDown,
    /// The master announced it is leaving (priority 0).
    MasterLeft,
    /// A better advert arrived while master.
    Preempted,
    Fault,
    Recovered,
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
    /// Put the virtual addresses on the interface.
    AddAddresses(Vec<Ipv4Addr>),
    /// Take them off.
    RemoveAddresses(Vec<Ipv4Addr>),
    /// Announce the addresses with gratuitous ARP (the IO layer repeats).
    GratuitousArp(Vec<Ipv4Addr>),
    /// An advert from another master while we are master (RFC 5798 6.4.3);
    /// `yielded` when it wins and we go to Backup.
    OtherMaster {
        src: Ipv4Addr,
        priority: u8,
        yielded: bool,
    },
    /// The effective priority changed (tracking).
    Priority { from: u8, to: u8 },
}

/// One tracked condition: a health check, an interface, a reference
/// address. With weight 0 a failure means Fault; otherwise keepalived's
/// rule: a positive weight is added while up, a negative one while down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    pub weight: i16,
    /// `None` until its first verdict (counts as neither up nor down).
    pub up: Option<bool>,
}

/// What the instance reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub priority: u8,
    pub base_priority: u8,
    pub master: Option<Ipv4Addr>,
    pub master_adver_interval_cs: u16,
    pub other_masters: u64,
    pub faults: Vec<String>,
}

pub struct Instance {
    cfg: Config,
    /// The interface's primary address: the advert's source and the tie
    /// breaker (RFC 5798 6.4.3).
    primary: Ipv4Addr,
    state: State,
    /// Master_Adver_Interval, learned from the master (v3) or configured.
    master_adver_int_cs: u16,
    adver_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    preempt_after: Option<Instant>,
    trackers: BTreeMap<String, Tracker>,
    /// The master last heard (Backup), for status.
    master: Option<Ipv4Addr>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: BTreeMap<&'static str, u64>,
    shut_down: bool,
    last_priority: u8,
}

impl Instance {
    pub fn new(cfg: Config, primary: Ipv4Addr) -> Instance {
        let prio = cfg.priority;
        Instance {
            master_adver_int_cs: cfg.advert_interval_cs,
            cfg,
            primary,
            state: State::Initialize,
            adver_timer: None,
            master_down_timer: None,
            preempt_after: None,
            trackers: BTreeMap::new(),
            master: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: BTreeMap::new(),
            shut_down: false,
            last_priority: prio,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Drop reasons and other counts (`other_master`, `became_master`,
    /// `adverts_sent`, `adverts_received`).
    pub fn counters(&self) -> &BTreeMap<&'static str, u64> {
        &self.counters
    }

    fn count(&mut self, what: &'static str) {
        *self.counters.entry(what).or_insert(0) += 1;
    }

    /// Declares a tracked condition (before or after start-up).
    pub fn add_tracker(&mut self, now: Instant, name: &str, weight: i16) {
        self.trackers
            .insert(name.to_string(), Tracker { weight, up: None });
        self.reevaluate(now);
    }

    /// A tracked condition's verdict. Unknown names are ignored.
    pub fn set_tracker(&mut self, now: Instant, name: &str, up: bool) {
        let Some(t) = self.trackers.get_mut(name) else {
            return;
        };
        if t.up == Some(up) {
            return;
        }
        t.up = Some(up);
        self.reevaluate(now);
    }

    /// The failed conditions that hold the instance in Fault.
    fn faults(&self) -> Vec<String> {
        self.trackers
            .iter()
            .filter(|(_, t)| t.weight == 0 && t.up == Some(false))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The priority in use: the configured one adjusted by the trackers'
    /// weights, kept within 1-254; the owner's 255 is never adjusted.
    pub fn priority(&self) -> u8 {
        let base = self.cfg.priority;
        if base == OWNER_PRIORITY {
            return base;
        }
        let delta: i32 = self
            .trackers
            .values()
            .map(|t| match t.up {
                Some(true) if t.weight > 0 => i32::from(t.weight),
                Some(false) if t.weight < 0 => i32::from(t.weight),
                _ => 0,
            })
            .sum();
        (i32::from(base) + delta).clamp(1, 254) as u8
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            priority: self.priority(),
            base_priority: self.cfg.priority,
            master: match self.state {
                State::Master => Some(self.primary),
                State::Backup => self.master,
                _ => None,
            },
            master_adver_interval_cs: self.master_adver_int_cs,
            other_masters: self.counters.get("other_master").copied().unwrap_or(0),
            faults: self.faults(),
        }
    }

    /// RFC 5798 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval)
    /// / 256; RFC 3768 6.1: (256 - Priority) / 256 seconds.
    fn skew(&self) -> Duration {
        let p = u64::from(256 - u16::from(self.priority()));
        match self.cfg.version {
            Version::V3 => {
                Duration::from_micros(p * u64::from(self.master_adver_int_cs) * 10_000 / 256)
            }
            Version::V2 => Duration::from_micros(p * 1_000_000 / 256),
        }
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        cs(self.master_adver_int_cs) * 3 + self.skew()
    }

    fn advert(&self, priority: u8) -> Advertisement {
        Advertisement {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            max_adver_int_cs: self.cfg.advert_interval_cs,
            addresses: self.cfg.addresses.clone(),
            auth: match self.cfg.version {
                Version::V2 => self.cfg.auth,
                Version::V3 => Auth::None,
            },
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let adv = self.advert(priority);
        let dsts: Vec<Ipv4Addr> = if self.cfg.unicast_peers.is_empty() {
            vec![VRRP_GROUP]
        } else {
            self.cfg.unicast_peers.clone()
        };
        for dst in dsts {
            let sum_dst = if self.cfg.legacy_unicast_checksum {
                VRRP_GROUP
            } else {
                dst
            };
            let bytes = adv.encode(self.primary, sum_dst);
            self.transmits.push_back(Transmit { dst, bytes });
            self.count("adverts_sent");
        }
    }

    fn set_state(&mut self, to: State, reason: Reason) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        if to == State::Master {
            self.count("became_master");
        }
        self.events
            .push_back(Event::StateChanged { from, to, reason });
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        // RFC 5798 6.4.1 / 6.4.2: send an advert, broadcast gratuitous ARP
        // for each address, start the Adver_Timer.
        self.send_advert(self.priority());
        self.events
            .push_back(Event::AddAddresses(self.cfg.addresses.clone()));
        self.events
            .push_back(Event::GratuitousArp(self.cfg.addresses.clone()));
        self.adver_timer = Some(now + cs(self.cfg.advert_interval_cs));
        self.master_down_timer = None;
        self.master = None;
        self.set_state(State::Master, reason);
    }

    fn become_backup(&mut self, now: Instant, reason: Reason) {
        if self.state == State::Master {
            self.events
                .push_back(Event::RemoveAddresses(self.cfg.addresses.clone()));
        }
        self.adver_timer = None;
        self.master_down_timer = Some(now + self.master_down_interval());
        self.set_state(State::Backup, reason);
    }

    /// RFC 5798 6.4.1: the Startup event.
    pub fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize || self.shut_down {
            return;
        }
        if !self.faults().is_empty() {
            self.set_state(State::Fault, Reason::Fault);
            return;
        }
        self.master_adver_int_cs = self.cfg.advert_interval_cs;
        self.preempt_after = Some(now + self.cfg.preempt_delay);
        if self.priority() == OWNER_PRIORITY {
            self.become_master(now, Reason::Owner);
        } else {
            self.become_backup(now, Reason::Startup);
        }
    }

    /// RFC 5798 6.4.x Shutdown: a master says it leaves (priority 0) and
    /// gives up the addresses.
    pub fn shutdown(&mut self, now: Instant) {
        let _ = now;
        if self.state == State::Master {
            self.send_advert(0);
            self.events
                .push_back(Event::RemoveAddresses(self.cfg.addresses.clone()));
        }
        self.adver_timer = None;
        self.master_down_timer = None;
        self.shut_down = true;
        self.set_state(State::Initialize, Reason::Shutdown);
    }

    /// Tracking changed: priority, fault, recovery.
    fn reevaluate(&mut self, now: Instant) {
        let prio = self.priority();
        if prio != self.last_priority {
            self.events.push_back(Event::Priority {
                from: self.last_priority,
                to: prio,
            });
            self.last_priority = prio;
            // A master tells the backups at once, so a preempting backup
            // need not wait for the next advert.
            if self.state == State::Master {
                self.send_advert(prio);
            }
        }
        let faulty = !self.faults().is_empty();
        match (self.state, faulty) {
            (State::Master | State::Backup, true) => {
                if self.state == State::Master {
                    self.send_advert(0);
                    self.events
                        .push_back(Event::RemoveAddresses(self.cfg.addresses.clone()));
                }
                self.adver_timer = None;
                self.master_down_timer = None;
                self.set_state(State::Fault, Reason::Fault);
            }
            (State::Fault, false) if !self.shut_down => {
                self.state = State::Initialize;
                self.events.push_back(Event::StateChanged {
                    from: State::Fault,
                    to: State::Initialize,
                    reason: Reason::Recovered,
                });
                self.startup(now);
            }
            _ => {}
        }
    }

    /// One received VRRP packet: `bytes` is the VRRP message, `src`/`dst`
    /// and `ttl` come from its IP header. Anything that does not pass
    /// RFC 5798 7.1 is counted by reason and dropped.
    pub fn handle_advert(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        bytes: &[u8],
    ) {
        if src == self.primary {
            return;
        }
        self.count("adverts_received");
        if ttl != VRRP_TTL {
            return self.count("ttl");
        }
        let adv = match Advertisement::decode(bytes) {
            Ok(a) => a,
            Err(e) => return self.count(e.reason()),
        };
        if adv.vrid != self.cfg.vrid {
            // Another virtual router on the same link: not ours, not bad.
            return self.count("other_vrid");
        }
        if adv.version != self.cfg.version {
            return self.count("version_mismatch");
        }
        let Some(msg) = bytes.get(..bytes.len().min(adv_len(&adv))) else {
            return self.count("length");
        };
        if !checksum_ok(msg, adv.version, src, dst, self.cfg.checksum) {
            return self.count("checksum");
        }
        if adv.version == Version::V2 {
            // RFC 3768 7.1: authentication, then the interval must match.
            if adv.auth != self.cfg.auth {
                return self.count("auth");
            }
            if adv.max_adver_int_cs != self.cfg.advert_interval_cs {
                return self.count("interval_mismatch");
            }
        }
        if !self.cfg.unicast_peers.is_empty() && !self.cfg.unicast_peers.contains(&src) {
            return self.count("unknown_peer");
        }
        if adv.addresses != self.cfg.addresses {
            // RFC 5798 7.1 (MAY): logged, not dropped, as keepalived does
            // unless strict.
            self.count("address_mismatch");
        }
        if adv.priority != 0 && adv.max_adver_int_cs == 0 && adv.version == Version::V3 {
            return self.count("zero_interval");
        }
        self.on_advert(now, src, &adv);
    }

    fn on_advert(&mut self, now: Instant, src: Ipv4Addr, adv: &Advertisement) {
        let local = self.priority();
        match self.state {
            State::Initialize | State::Fault => {}
            // RFC 5798 6.4.2.
            State::Backup => {
                if adv.priority == 0 {
                    self.master_down_timer = Some(now + self.skew());
                    self.master = None;
                    return;
                }
                let preempting = self.cfg.preempt
                    && adv.priority < local
                    && self.preempt_after.is_none_or(|t| now >= t);
                if !preempting {
                    if adv.version == Version::V3 {
                        self.master_adver_int_cs = adv.max_adver_int_cs;
                    }
                    self.master = Some(src);
                    self.master_down_timer = Some(now + self.master_down_interval());
                }
            }
            // RFC 5798 6.4.3.
            State::Master => {
                if adv.priority == 0 {
                    self.send_advert(local);
                    self.adver_timer = Some(now + cs(self.cfg.advert_interval_cs));
                    return;
                }
                self.count("other_master");
                let wins = adv.priority > local
                    || (adv.priority == local && u32::from(src) > u32::from(self.primary));
                self.events.push_back(Event::OtherMaster {
                    src,
                    priority: adv.priority,
                    yielded: wins,
                });
                if wins {
                    // Not in the RFC: one last advert of ours before
                    // yielding. The winner (anycastd, or keepalived, which
                    // answers a lower-priority advert with an advert and
                    // gratuitous ARP) then re-announces the addresses, so
                    // hosts that followed our ARP during a split come back
                    // at once, whichever side's advert crossed the healed
                    // link first.
                    self.send_advert(local);
                    if adv.version == Version::V3 {
                        self.master_adver_int_cs = adv.max_adver_int_cs;
                    }
                    self.become_backup(now, Reason::Preempted);
                    self.master = Some(src);
                } else {
                    // Not in the RFC (it discards the advert), as keepalived
                    // does: re-assert at once, advert and gratuitous ARP, so
                    // the loser steps down and hosts that followed its ARP
                    // come back without waiting for their cache to expire.
                    self.send_advert(local);
                    self.adver_timer = Some(now + cs(self.cfg.advert_interval_cs));
                    self.events
                        .push_back(Event::GratuitousArp(self.cfg.addresses.clone()));
                }
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.adver_timer.is_some_and(|t| now >= t) && self.state == State::Master {
            self.send_advert(self.priority());
            self.adver_timer = Some(now + cs(self.cfg.advert_interval_cs));
        }
        if self.master_down_timer.is_some_and(|t| now >= t) && self.state == State::Backup {
            self.become_master(now, Reason::MasterDown);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.adver_timer, self.master_down_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

fn cs(n: u16) -> Duration {
    Duration::from_millis(u64::from(n) * 10)
}

/// The message's own length (what the checksum covers), padding aside.
fn adv_len(adv: &Advertisement) -> usize {
    8 + adv.addresses.len() * 4 + if adv.version == Version::V2 { 8 } else { 0 }
}
