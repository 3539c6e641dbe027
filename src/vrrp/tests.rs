//! The state machine on a simulated LAN with a virtual clock: every run is
//! the same, and minutes of protocol time take microseconds.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::instance::{Config, Event, Instance, Reason, State};
use super::packet::{Advertisement, Auth, ChecksumMode, Version, VRRP_GROUP};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn addr(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, n)
}

/// Routers on one link; packets are delivered at once unless the link is
/// cut between two of them.
struct Lan {
    start: Instant,
    now: Instant,
    nodes: Vec<(Ipv4Addr, Instance, Vec<Event>)>,
    /// Pairs of node indices that cannot hear each other.
    cut: Vec<(usize, usize)>,
    /// Every delivered advert: (time since start, sender index, priority).
    log: Vec<(Duration, usize, u8)>,
}

impl Lan {
    fn new() -> Lan {
        let start = Instant::now();
        Lan {
            start,
            now: start,
            nodes: Vec::new(),
            cut: Vec::new(),
            log: Vec::new(),
        }
    }

    fn add(&mut self, cfg: Config) -> usize {
        let n = self.nodes.len();
        let a = addr(2 + n as u8);
        self.nodes.push((a, Instance::new(cfg, a), Vec::new()));
        n
    }

    fn start(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].1.startup(now);
        self.pump();
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn state(&self, i: usize) -> State {
        self.nodes[i].1.state()
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.state(*i) == State::Master)
            .collect()
    }

    fn cut_between(&self, a: usize, b: usize) -> bool {
        self.cut.contains(&(a, b)) || self.cut.contains(&(b, a))
    }

    /// Delivers what every node has to send, until nothing is left.
    fn pump(&mut self) {
        loop {
            let mut sent = Vec::new();
            for (i, (_, inst, events)) in self.nodes.iter_mut().enumerate() {
                while let Some(t) = inst.poll_transmit() {
                    sent.push((i, t));
                }
                while let Some(e) = inst.poll_event() {
                    events.push(e);
                }
            }
            if sent.is_empty() {
                return;
            }
            for (from, t) in sent {
                let src = self.nodes[from].0;
                if let Ok(a) = Advertisement::decode(&t.bytes) {
                    self.log.push((self.elapsed(), from, a.priority));
                }
                for to in 0..self.nodes.len() {
                    if to == from || self.cut_between(from, to) {
                        continue;
                    }
                    if t.dst != VRRP_GROUP && t.dst != self.nodes[to].0 {
                        continue;
                    }
                    let now = self.now;
                    self.nodes[to]
                        .1
                        .handle_advert(now, src, t.dst, 255, &t.bytes);
                }
            }
        }
    }

    /// Runs the clock forward by `d`, firing every timer on time.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .nodes
                .iter()
                .filter_map(|(_, i, _)| i.poll_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for (_, inst, _) in &mut self.nodes {
                        inst.handle_timeout(now);
                    }
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Runs until node `i` is master; returns how long that took.
    fn until_master(&mut self, i: usize, limit: Duration) -> Option<Duration> {
        let from = self.now;
        let step = Duration::from_millis(1);
        while self.now - from < limit {
            if self.state(i) == State::Master {
                return Some(self.now - from);
            }
            self.run(step);
        }
        None
    }

    fn events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.nodes[i].2)
    }
}

fn v3(prio: u8) -> Config {
    let mut c = Config::new(Version::V3, 51, prio, vec![VIP]);
    c.advert_interval_cs = 10;
    c
}

fn v2(prio: u8) -> Config {
    let mut c = Config::new(Version::V2, 51, prio, vec![VIP]);
    c.auth = Auth::simple("1111").expect("short");
    c
}

fn changes(events: &[Event]) -> Vec<(State, State, Reason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { from, to, reason } => Some((*from, *to, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_owner_is_master_at_once_with_addresses_and_garp() {
    let mut lan = Lan::new();
    let a = lan.add(v3(255));
    lan.start(a);
    assert_eq!(lan.state(a), State::Master);
    let ev = lan.events(a);
    assert_eq!(
        changes(&ev),
        vec![(State::Initialize, State::Master, Reason::Owner)]
    );
    assert!(ev.contains(&Event::AddAddresses(vec![VIP])));
    assert!(ev.contains(&Event::GratuitousArp(vec![VIP])));
    assert_eq!(lan.log, vec![(Duration::ZERO, a, 255)]);
}

#[test]
fn a_lone_backup_takes_over_after_exactly_the_master_down_interval() {
    // v3, 100 ms adverts, priority 100: 3 x 100 ms + 156/256 x 100 ms.
    let mut lan = Lan::new();
    let a = lan.add(v3(100));
    lan.start(a);
    assert_eq!(lan.state(a), State::Backup);
    let want = Duration::from_micros(300_000 + 156 * 100_000 / 256);
    assert_eq!(lan.nodes[a].1.master_down_interval(), want);
    lan.run(want - Duration::from_micros(1));
    assert_eq!(lan.state(a), State::Backup);
    lan.run(Duration::from_micros(1));
    assert_eq!(lan.state(a), State::Master);
    // v2 keeps whole seconds and a skew of (256 - priority) / 256 s.
    let b = Instance::new(v2(100), addr(9));
    assert_eq!(
        b.master_down_interval(),
        Duration::from_micros(3_000_000 + 156 * 1_000_000 / 256)
    );
}

#[test]
fn the_higher_priority_wins_whichever_starts_first() {
    for version in [Version::V3, Version::V2] {
        for high_first in [true, false] {
            let cfg = |p| if version == Version::V3 { v3(p) } else { v2(p) };
            let mut lan = Lan::new();
            let high = lan.add(cfg(150));
            let low = lan.add(cfg(100));
            let (first, second) = if high_first { (high, low) } else { (low, high) };
            lan.start(first);
            lan.run(Duration::from_millis(100));
            lan.start(second);
            lan.run(Duration::from_secs(10));
            assert_eq!(
                lan.masters(),
                vec![high],
                "{version:?} high first {high_first}"
            );
            assert_eq!(lan.state(low), State::Backup);
            // Adverts keep coming from the master only.
            let recent: Vec<usize> = lan
                .log
                .iter()
                .filter(|(t, _, _)| *t > Duration::from_secs(8))
                .map(|(_, i, _)| *i)
                .collect();
            assert!(!recent.is_empty() && recent.iter().all(|i| *i == high));
        }
    }
}

#[test]
fn equal_priorities_elect_the_higher_address() {
    let mut lan = Lan::new();
    let a = lan.add(v3(100));
    let b = lan.add(v3(100));
    lan.start(a);
    lan.start(b);
    lan.run(Duration::from_secs(5));
    assert_eq!(lan.masters(), vec![b]);
}

#[test]
fn a_stopped_master_hands_over_within_the_skew_time() {
    let mut lan = Lan::new();
    let high = lan.add(v3(150));
    let low = lan.add(v3(100));
    lan.start(high);
    lan.start(low);
    lan.run(Duration::from_secs(2));
    assert_eq!(lan.masters(), vec![high]);
    let now = lan.now;
    lan.nodes[high].1.shutdown(now);
    lan.pump();
    assert_eq!(lan.state(high), State::Initialize);
    assert!(lan
        .events(high)
        .contains(&Event::RemoveAddresses(vec![VIP])));
    // Priority 0 seen: Master_Down_Timer = Skew_Time (156/256 x 100 ms).
    let took = lan
        .until_master(low, Duration::from_secs(1))
        .expect("takes over");
    assert!(took <= Duration::from_millis(61), "{took:?}");
}

#[test]
fn a_crashed_master_is_replaced_after_three_adverts_and_the_skew() {
    let mut lan = Lan::new();
    let high = lan.add(v3(150));
    let low = lan.add(v3(100));
    lan.start(high);
    lan.start(low);
    lan.run(Duration::from_secs(2));
    // Crash: no priority-0 advert, it just falls silent.
    lan.cut = vec![(high, low)];
    let last = lan
        .log
        .iter()
        .rev()
        .find(|(_, i, _)| *i == high)
        .expect("adverts")
        .0;
    let took = lan
        .until_master(low, Duration::from_secs(2))
        .expect("takes over");
    let since_last = lan.elapsed() - last;
    let bound = Duration::from_micros(300_000 + 156 * 100_000 / 256);
    assert!(
        since_last <= bound + Duration::from_millis(1),
        "{since_last:?} {took:?}"
    );
}

#[test]
fn preempt_and_no_preempt() {
    // Preempt (the default): a better router joining takes over.
    let mut lan = Lan::new();
    let low = lan.add(v3(100));
    let high = lan.add(v3(150));
    lan.start(low);
    lan.run(Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![low]);
    lan.start(high);
    lan.run(Duration::from_secs(2));
    assert_eq!(lan.masters(), vec![high]);
    let ev = lan.events(low);
    assert!(ev.contains(&Event::RemoveAddresses(vec![VIP])));
    assert!(changes(&ev).contains(&(State::Master, State::Backup, Reason::Preempted)));

    // No preempt: it stays backup while the master lives.
    let mut lan = Lan::new();
    let low = lan.add(v3(100));
    let mut cfg = v3(150);
    cfg.preempt = false;
    let high = lan.add(cfg);
    lan.start(low);
    lan.run(Duration::from_secs(1));
    lan.start(high);
    lan.run(Duration::from_secs(10));
    assert_eq!(lan.masters(), vec![low]);
    // ... and takes over when it goes.
    let now = lan.now;
    lan.nodes[low].1.shutdown(now);
    lan.pump();
    assert!(lan.until_master(high, Duration::from_secs(1)).is_some());
}

#[test]
fn preempt_delay_holds_a_better_backup_back() {
    let mut lan = Lan::new();
    let low = lan.add(v3(100));
    let mut cfg = v3(150);
    cfg.preempt_delay = Duration::from_secs(5);
    let high = lan.add(cfg);
    lan.start(low);
    lan.run(Duration::from_secs(1));
    lan.start(high);
    lan.run(Duration::from_millis(4900));
    assert_eq!(lan.masters(), vec![low]);
    // After the delay, one master-down interval without accepting the
    // lower master's adverts.
    let took = lan
        .until_master(high, Duration::from_secs(2))
        .expect("preempts");
    assert!(took <= Duration::from_millis(100 + 400), "{took:?}");
    lan.run(Duration::from_millis(10));
    assert_eq!(lan.masters(), vec![high]);
}

#[test]
fn tracking_weights_move_the_master() {
    let mut lan = Lan::new();
    let a = lan.add(v3(150));
    let b = lan.add(v3(120));
    let now = lan.now;
    lan.nodes[a].1.add_tracker(now, "check web", -50);
    lan.start(a);
    lan.start(b);
    lan.run(Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![a]);
    let now = lan.now;
    lan.nodes[a].1.set_tracker(now, "check web", false);
    assert_eq!(lan.nodes[a].1.priority(), 100);
    lan.pump();
    lan.run(Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![b]);
    let ev = lan.events(a);
    assert!(ev.contains(&Event::Priority { from: 150, to: 100 }));
    // Healthy again: preempts back.
    let now = lan.now;
    lan.nodes[a].1.set_tracker(now, "check web", true);
    lan.pump();
    lan.run(Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![a]);
    // Weights keep the priority within 1-254, and never touch the owner.
    let mut o = Instance::new(v3(255), addr(9));
    o.add_tracker(now, "x", -100);
    o.set_tracker(now, "x", false);
    assert_eq!(o.priority(), 255);
    let mut p = Instance::new(v3(250), addr(9));
    p.add_tracker(now, "x", 100);
    p.set_tracker(now, "x", true);
    assert_eq!(p.priority(), 254);
}

#[test]
fn an_unreachable_reference_address_means_fault_and_no_master() {
    let mut lan = Lan::new();
    let a = lan.add(v3(150));
    let b = lan.add(v3(100));
    let now = lan.now;
    lan.nodes[a].1.add_tracker(now, "reference 198.18.0.1", 0);
    lan.nodes[a]
        .1
        .set_tracker(now, "reference 198.18.0.1", true);
    lan.start(a);
    lan.start(b);
    lan.run(Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![a]);
    let now = lan.now;
    lan.nodes[a]
        .1
        .set_tracker(now, "reference 198.18.0.1", false);
    lan.pump();
    assert_eq!(lan.state(a), State::Fault);
    let ev = lan.events(a);
    assert!(ev.contains(&Event::RemoveAddresses(vec![VIP])));
    // It said goodbye with priority 0, so b took over within the skew.
    lan.run(Duration::from_millis(70));
    assert_eq!(lan.masters(), vec![b]);
    // Isolated (it hears nobody) it still never claims master.
    lan.cut = vec![(a, b)];
    lan.run(Duration::from_secs(30));
    assert_eq!(lan.state(a), State::Fault);
    assert_eq!(lan.nodes[a].1.status().faults, vec!["reference 198.18.0.1"]);
    // Reachable again and the link back: Initialize, Backup, then preempts.
    lan.cut.clear();
    let now = lan.now;
    lan.nodes[a]
        .1
        .set_tracker(now, "reference 198.18.0.1", true);
    lan.pump();
    assert_eq!(
        changes(&lan.events(a)),
        vec![
            (State::Fault, State::Initialize, Reason::Recovered),
            (State::Initialize, State::Backup, Reason::Startup),
        ]
    );
    lan.run(Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![a]);
}

#[test]
fn a_fault_at_startup_keeps_the_instance_out() {
    let mut lan = Lan::new();
    let a = lan.add(v3(255));
    let now = lan.now;
    lan.nodes[a].1.add_tracker(now, "interface eth0", 0);
    lan.nodes[a].1.set_tracker(now, "interface eth0", false);
    lan.start(a);
    lan.run(Duration::from_secs(5));
    assert_eq!(lan.state(a), State::Fault);
    assert!(lan.log.is_empty());
}

#[test]
fn split_brain_heals_within_one_advert_interval() {
    let mut lan = Lan::new();
    let high = lan.add(v3(150));
    let low = lan.add(v3(100));
    lan.start(high);
    lan.start(low);
    lan.run(Duration::from_secs(1));
    lan.cut = vec![(high, low)];
    lan.run(Duration::from_secs(1));
    assert_eq!(lan.masters(), vec![high, low], "both master while cut");
    lan.events(high);
    lan.cut.clear();
    let healed = lan.now;
    let mut one_master = None;
    for _ in 0..200 {
        lan.run(Duration::from_millis(1));
        if lan.masters() == vec![high] {
            one_master = Some(lan.now - healed);
            break;
        }
    }
    let took = one_master.expect("one master again");
    assert!(took <= Duration::from_millis(100), "{took:?}");
    // The winner saw the other master and re-announced its ARP.
    let ev = lan.events(high);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::OtherMaster {
            priority: 100,
            yielded: false,
            ..
        }
    )));
    assert!(ev.contains(&Event::GratuitousArp(vec![VIP])));
    assert!(lan.nodes[high].1.status().other_masters >= 1);
    assert!(lan.nodes[low].1.status().other_masters >= 1);
}

#[test]
fn v3_backups_learn_the_masters_interval() {
    let mut lan = Lan::new();
    let mut cfg = v3(150);
    cfg.advert_interval_cs = 50;
    let high = lan.add(cfg);
    let low = lan.add(v3(100));
    lan.start(high);
    lan.start(low);
    lan.run(Duration::from_secs(2));
    let s = lan.nodes[low].1.status();
    assert_eq!((s.master, s.master_adver_interval_cs), (Some(addr(2)), 50));
}

#[test]
fn bad_packets_are_counted_and_dropped() {
    let now = Instant::now();
    let mut inst = Instance::new(v2(100), addr(2));
    inst.startup(now);
    let peer = addr(3);
    let good = Advertisement {
        version: Version::V2,
        vrid: 51,
        priority: 200,
        max_adver_int_cs: 100,
        addresses: vec![VIP],
        auth: Auth::simple("1111").expect("short"),
    };
    let send = |inst: &mut Instance, adv: &Advertisement, ttl: u8| {
        inst.handle_advert(now, peer, VRRP_GROUP, ttl, &adv.encode(peer, VRRP_GROUP));
    };
    send(&mut inst, &good, 64);
    let mut wrong_pass = good.clone();
    wrong_pass.auth = Auth::simple("2222").expect("short");
    send(&mut inst, &wrong_pass, 255);
    let mut other = good.clone();
    other.vrid = 52;
    send(&mut inst, &other, 255);
    let mut slow = good.clone();
    slow.max_adver_int_cs = 200;
    send(&mut inst, &slow, 255);
    let mut v3 = good.clone();
    v3.version = Version::V3;
    send(&mut inst, &v3, 255);
    let mut corrupt = good.encode(peer, VRRP_GROUP);
    corrupt[9] ^= 1;
    inst.handle_advert(now, peer, VRRP_GROUP, 255, &corrupt);
    inst.handle_advert(now, peer, VRRP_GROUP, 255, &[0x21, 51]);
    let c = inst.counters();
    for reason in [
        "ttl",
        "auth",
        "other_vrid",
        "interval_mismatch",
        "version_mismatch",
        "checksum",
        "short",
    ] {
        assert_eq!(c.get(reason), Some(&1), "{reason}: {c:?}");
    }
    // None of them counted as the master.
    assert_eq!(inst.status().master, None);
    send(&mut inst, &good, 255);
    assert_eq!(inst.status().master, Some(peer));
}

#[test]
fn v3_checksums_without_pseudo_header_only_when_allowed() {
    let now = Instant::now();
    let peer = addr(3);
    let adv = Advertisement {
        version: Version::V3,
        vrid: 51,
        priority: 200,
        max_adver_int_cs: 10,
        addresses: vec![VIP],
        auth: Auth::None,
    };
    // Encoded as v2 for its plain checksum, then turned into v3 again.
    let mut bytes = adv.encode(peer, VRRP_GROUP);
    bytes[6..8].copy_from_slice(&[0, 0]);
    let sum = {
        let mut s: u32 = bytes
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    };
    bytes[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut strict = Instance::new(v3(100), addr(2));
    strict.startup(now);
    strict.handle_advert(now, peer, VRRP_GROUP, 255, &bytes);
    assert_eq!(strict.counters().get("checksum"), Some(&1));
    let mut cfg = v3(100);
    cfg.checksum = ChecksumMode::Lenient;
    let mut lax = Instance::new(cfg, addr(2));
    lax.startup(now);
    lax.handle_advert(now, peer, VRRP_GROUP, 255, &bytes);
    assert_eq!(lax.status().master, Some(peer));
}

#[test]
fn unicast_peers_get_one_advert_each() {
    let now = Instant::now();
    let mut cfg = v3(255);
    cfg.unicast_peers = vec![addr(3), addr(4)];
    let mut inst = Instance::new(cfg, addr(2));
    inst.startup(now);
    let dsts: Vec<Ipv4Addr> = std::iter::from_fn(|| inst.poll_transmit())
        .map(|t| t.dst)
        .collect();
    assert_eq!(dsts, vec![addr(3), addr(4)]);
    // Adverts from others than the peers are not trusted.
    let adv = Advertisement {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        max_adver_int_cs: 10,
        addresses: vec![VIP],
        auth: Auth::None,
    };
    let stranger = addr(7);
    inst.handle_advert(now, stranger, addr(2), 255, &adv.encode(stranger, addr(2)));
    assert_eq!(inst.counters().get("unknown_peer"), Some(&1));
}

#[test]
fn after_a_split_the_winner_reannounces_whichever_advert_crosses_first() {
    // Heal at every phase of the two masters' advert timers.
    for offset_ms in (0..100).step_by(7) {
        let mut lan = Lan::new();
        let high = lan.add(v3(150));
        let low = lan.add(v3(100));
        lan.start(high);
        lan.start(low);
        lan.run(Duration::from_secs(1));
        lan.cut = vec![(high, low)];
        lan.run(Duration::from_secs(1) + Duration::from_millis(offset_ms));
        assert_eq!(lan.masters(), vec![high, low]);
        lan.events(high);
        lan.cut.clear();
        lan.run(Duration::from_millis(101));
        assert_eq!(lan.masters(), vec![high], "offset {offset_ms}");
        assert!(
            lan.events(high).contains(&Event::GratuitousArp(vec![VIP])),
            "offset {offset_ms}: the winner did not re-announce"
        );
    }
}

#[test]
fn legacy_unicast_checksums_are_sent_on_request() {
    let now = Instant::now();
    let mut cfg = v3(255);
    cfg.unicast_peers = vec![addr(3)];
    cfg.legacy_unicast_checksum = true;
    let mut inst = Instance::new(cfg, addr(2));
    inst.startup(now);
    let t = inst.poll_transmit().expect("advert");
    assert_eq!(t.dst, addr(3));
    let ok = |mode| super::packet::checksum_ok(&t.bytes, Version::V3, addr(2), addr(3), mode);
    assert!(!ok(ChecksumMode::Rfc));
    assert!(ok(ChecksumMode::Lenient));
}
