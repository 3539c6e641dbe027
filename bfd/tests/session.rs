//! Two BFD sessions wired together through a simulated wire (1 ms one-way,
//! every packet through the codec) on a virtual clock: scripted and
//! deterministic (seeded jitter), so an hour of protocol time runs in
//! milliseconds and every run is identical.

use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use bfd::packet::{ControlPacket, Diag, State};
use bfd::session::{Action, Config, Event, Session};
use rand_core::SeedableRng;
use rand_xorshift::XorShiftRng;

const LATENCY: Duration = Duration::from_millis(1);
const ADDR: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)];
const DISCR: [u32; 2] = [0x0101, 0x0202];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(tx_ms: u32, rx_ms: u32, mult: u8) -> Config {
    Config::new(tx_ms * 1000, rx_ms * 1000, mult).expect("valid config")
}

#[derive(Clone, Copy, Debug)]
struct Sent {
    at: Instant,
    from: usize,
    packet: ControlPacket,
}

#[derive(Clone, Copy, Debug)]
struct Change {
    at: Instant,
    node: usize,
    from: State,
    to: State,
    diag: Diag,
    peer_admin_down: bool,
}

struct Sim {
    t0: Instant,
    now: Instant,
    nodes: [Session<XorShiftRng>; 2],
    /// In flight: (delivery time, receiving node, packet).
    wire: Vec<(Instant, usize, ControlPacket)>,
    /// Packets from this node are lost.
    cut: [bool; 2],
    sent: Vec<Sent>,
    changes: Vec<Change>,
    /// (delivery time, receiving node) of every delivered packet.
    delivered: Vec<(Instant, usize)>,
}

impl Sim {
    /// Node 0 starts at t0, node 1 `b_delay` later.
    fn new(a: Config, b: Config, b_delay: Duration, seed: u64) -> Sim {
        let t0 = Instant::now();
        let node = |i: usize, cfg: Config, start: Instant| {
            Session::new(
                start,
                ADDR[1 - i],
                NonZeroU32::new(DISCR[i]).expect("nonzero"),
                cfg,
                XorShiftRng::seed_from_u64(seed + i as u64),
            )
        };
        Sim {
            t0,
            now: t0,
            nodes: [node(0, a, t0), node(1, b, t0 + b_delay)],
            wire: Vec::new(),
            cut: [false; 2],
            sent: Vec::new(),
            changes: Vec::new(),
            delivered: Vec::new(),
        }
    }

    fn apply(&mut self, node: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(p) => {
                    assert!(!(p.poll && p.final_), "P and F together: {p:?}");
                    // Through the codec, as on a real wire.
                    let packet = ControlPacket::decode(&p.encode()).expect("we send valid packets");
                    self.sent.push(Sent {
                        at: self.now,
                        from: node,
                        packet,
                    });
                    if !self.cut[node] {
                        self.wire.push((self.now + LATENCY, 1 - node, packet));
                    }
                }
                Action::StateChanged {
                    from,
                    to,
                    diag,
                    peer_admin_down,
                } => self.changes.push(Change {
                    at: self.now,
                    node,
                    from,
                    to,
                    diag,
                    peer_admin_down,
                }),
            }
        }
    }

    fn event(&mut self, node: usize, event: Event) {
        let actions = self.nodes[node].handle(self.now, event);
        self.apply(node, actions);
    }

    /// Runs the virtual clock up to `end`.
    fn run_until(&mut self, end: Instant) {
        loop {
            let next = [
                self.nodes[0].next_deadline(),
                self.nodes[1].next_deadline(),
                self.wire.iter().map(|w| w.0).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|&n| n <= end) else {
                self.now = end;
                return;
            };
            self.now = self.now.max(next);
            let (due, later): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|w| w.0 <= self.now);
            self.wire = later;
            for (_, to, packet) in due {
                self.delivered.push((self.now, to));
                let source = ADDR[1 - to];
                self.event(to, Event::Packet { source, packet });
            }
            for node in 0..2 {
                if self.nodes[node]
                    .next_deadline()
                    .is_some_and(|d| d <= self.now)
                {
                    self.event(node, Event::Timer);
                }
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    fn both_up(&self) -> bool {
        self.nodes.iter().all(|n| n.state() == State::Up)
    }

    /// Periodic packets (not Finals) sent by `node` in `[from, to)`.
    fn periodic(&self, node: usize, from: Instant, to: Instant) -> Vec<Sent> {
        self.sent
            .iter()
            .filter(|s| s.from == node && !s.packet.final_ && s.at >= from && s.at < to)
            .copied()
            .collect()
    }

    fn changes_of(&self, node: usize) -> Vec<(State, State, Diag)> {
        self.changes
            .iter()
            .filter(|c| c.node == node)
            .map(|c| (c.from, c.to, c.diag))
            .collect()
    }

    /// Brings both Up and lets the Poll Sequences of the Up transition end.
    fn up(a: Config, b: Config, seed: u64) -> Sim {
        let mut sim = Sim::new(a, b, ms(300), seed);
        sim.run_for(ms(3000));
        assert!(sim.both_up(), "not Up after 3 s: {:?}", sim.changes);
        assert!(
            !sim.nodes[0].poll_in_progress() && !sim.nodes[1].poll_in_progress(),
            "Poll Sequences still running 3 s in"
        );
        sim
    }
}

fn gaps(sent: &[Sent]) -> Vec<Duration> {
    sent.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[test]
fn sessions_come_up_through_down_init_up() {
    let mut sim = Sim::new(config(50, 50, 3), config(50, 50, 3), ms(300), 1);
    sim.run_for(ms(400));
    // A's first packet reaches B (still Down, not yet sending) 1 ms in:
    // B goes Init; B's first packet (300 ms) takes A from Down to Up; A's
    // next packet takes B Up.
    assert_eq!(
        sim.changes_of(1),
        vec![
            (State::Down, State::Init, Diag::NONE),
            (State::Init, State::Up, Diag::NONE)
        ]
    );
    assert_eq!(
        sim.changes_of(0),
        vec![(State::Down, State::Up, Diag::NONE)]
    );
    let first = sim.sent[0];
    assert_eq!((first.from, first.packet.your_discriminator), (0, 0));
    assert_eq!(first.packet.state, State::Down);
    let up_at = sim.changes.last().expect("changes").at;
    assert!(
        up_at - sim.t0 <= ms(302),
        "B Up {:?} after start",
        up_at - sim.t0
    );
    assert_eq!(sim.nodes[0].remote_discriminator(), DISCR[1]);
    assert_eq!(sim.nodes[1].remote_discriminator(), DISCR[0]);
}

#[test]
fn slow_rate_until_up_then_the_agreed_rate() {
    // B asks for 80 ms: A's agreed interval is max(50, 80) = 80 ms.
    let mut sim = Sim::new(config(50, 50, 3), config(50, 80, 3), ms(0), 2);
    sim.cut[1] = true;
    sim.run_for(ms(10_000));
    assert_eq!(sim.nodes[0].state(), State::Down);
    let slow = sim.periodic(0, sim.t0, sim.now);
    assert!(slow.len() >= 10, "{} packets in 10 s", slow.len());
    for s in &slow {
        assert_eq!(
            s.packet.desired_min_tx_us, 1_000_000,
            "advertised before Up"
        );
    }
    for g in gaps(&slow) {
        assert!(g >= ms(750) && g <= ms(1000), "slow-rate gap {g:?}");
    }

    sim.cut[1] = false;
    sim.run_for(ms(3000));
    assert!(sim.both_up());
    let up_at = sim.changes.iter().map(|c| c.at).max().expect("changes");
    let settled = up_at + ms(100);
    let fast = sim.periodic(0, settled, sim.now);
    assert!(fast.len() > 30, "{} packets after Up", fast.len());
    for s in &fast {
        assert_eq!(s.packet.desired_min_tx_us, 50_000, "advertised once Up");
    }
    for g in gaps(&fast) {
        assert!(g >= ms(60) && g <= ms(80), "A's gap {g:?} (agreed 80 ms)");
    }
    let fast_b = sim.periodic(1, settled, sim.now);
    for g in gaps(&fast_b) {
        assert!(
            g >= Duration::from_micros(37_500) && g <= ms(50),
            "B's gap {g:?} (agreed 50 ms)"
        );
    }
}

#[test]
fn each_poll_is_answered_at_once_by_a_final() {
    let mut sim = Sim::new(config(50, 50, 3), config(50, 50, 3), ms(300), 3);
    sim.run_for(ms(3000));
    assert!(sim.both_up());
    let polls: Vec<Sent> = sim.sent.iter().filter(|s| s.packet.poll).copied().collect();
    // Going Up takes each side's Desired Min TX from 1 s to 50 ms: a Poll
    // Sequence each (6.8.3).
    for node in 0..2 {
        assert!(polls.iter().any(|p| p.from == node), "no Poll from {node}");
    }
    for p in &polls {
        let answered = sim
            .sent
            .iter()
            .any(|f| f.from == 1 - p.from && f.packet.final_ && f.at == p.at + LATENCY);
        assert!(answered, "Poll {p:?} not answered 1 ms later");
    }
}

#[test]
fn poll_final_on_an_interval_change() {
    let mut sim = Sim::up(config(50, 50, 3), config(50, 50, 3), 4);
    assert_eq!(sim.nodes[1].detection_time(), Some(ms(150)));
    let change_at = sim.now;
    sim.event(0, Event::Parameters(config(200, 50, 3)));
    assert!(sim.nodes[0].poll_in_progress());
    // B's packets (and so its Final) are lost for 120 ms: A repeats the
    // Poll at the old rate meanwhile.
    sim.cut[1] = true;
    sim.run_for(ms(120));
    let unanswered = sim.periodic(0, change_at, sim.now);
    assert!(unanswered.len() >= 2, "{unanswered:?}");
    assert!(unanswered.iter().all(|s| s.packet.poll));
    for g in gaps(&unanswered) {
        assert!(g <= ms(50), "A slowed before the Final: {g:?}");
    }
    sim.cut[1] = false;
    let uncut = sim.now;
    sim.run_for(ms(2000));
    let poll = *sim
        .sent
        .iter()
        .find(|s| s.at >= uncut && s.from == 0 && s.packet.poll)
        .expect("A sent a Poll");
    assert_eq!(poll.packet.desired_min_tx_us, 200_000);
    let fin = *sim
        .sent
        .iter()
        .find(|s| s.at >= uncut && s.from == 1 && s.packet.final_)
        .expect("B sent a Final");
    assert_eq!(fin.at, poll.at + LATENCY, "Final not sent at once");
    assert!(!fin.packet.poll);
    assert!(!sim.nodes[0].poll_in_progress());
    // The slower rate waits for the Final (6.8.3), then holds.
    let after = sim.periodic(0, fin.at + LATENCY + ms(200), sim.now);
    assert!(after.len() >= 5);
    for g in gaps(&after) {
        assert!(
            g >= ms(150) && g <= ms(200),
            "A's gap after the Final: {g:?}"
        );
    }
    // B's detection time follows A's advertised 200 ms: 3 x 200.
    assert_eq!(sim.nodes[1].detection_time(), Some(ms(600)));
    assert!(sim.both_up(), "the change flapped the session");
    assert_eq!(sim.changes.len(), 3, "{:?}", sim.changes);
}

#[test]
fn silence_is_detected_within_detect_mult_intervals() {
    let mut sim = Sim::up(config(50, 50, 3), config(50, 50, 3), 5);
    let cut_at = sim.now;
    sim.cut[1] = true;
    sim.run_for(ms(1000));
    let down = *sim
        .changes
        .iter()
        .find(|c| c.node == 0 && c.at >= cut_at)
        .expect("A went down");
    assert_eq!(
        (down.from, down.to, down.diag),
        (State::Up, State::Down, Diag::CONTROL_DETECTION_TIME_EXPIRED)
    );
    let last_rx = sim
        .delivered
        .iter()
        .filter(|d| d.1 == 0 && d.0 < down.at)
        .map(|d| d.0)
        .max()
        .expect("A received packets");
    println!(
        "down {:?} after the last packet, {:?} after the cut",
        down.at - last_rx,
        down.at - cut_at
    );
    assert_eq!(down.at - last_rx, ms(150), "detection time 3 x 50 ms");
    assert!(
        down.at - cut_at <= ms(150),
        "down {:?} after the cut",
        down.at - cut_at
    );
    assert_eq!(sim.nodes[0].remote_discriminator(), 0, "6.8.1 reset");
}

#[test]
fn admin_down_is_seen_by_the_peer_as_neighbor_signaled_down() {
    let mut sim = Sim::up(config(50, 50, 3), config(50, 50, 3), 6);
    let at = sim.now;
    sim.event(0, Event::AdminDown);
    let sent = *sim.sent.last().expect("sent");
    assert_eq!(sent.at, at, "AdminDown sent at once");
    assert_eq!(
        (sent.packet.state, sent.packet.diag),
        (State::AdminDown, Diag::ADMINISTRATIVELY_DOWN)
    );
    sim.run_for(ms(5000));
    let b: Vec<Change> = sim
        .changes
        .iter()
        .filter(|c| c.node == 1 && c.at >= at)
        .copied()
        .collect();
    assert_eq!(b.len(), 1, "B changed more than once: {b:?}");
    assert_eq!(b[0].at, at + LATENCY);
    assert_eq!(
        (b[0].from, b[0].to, b[0].diag, b[0].peer_admin_down),
        (
            State::Up,
            State::Down,
            Diag::NEIGHBOR_SIGNALED_SESSION_DOWN,
            true
        )
    );
    assert_eq!(sim.nodes[1].remote_diag(), Diag::ADMINISTRATIVELY_DOWN);
    assert_eq!(sim.nodes[0].state(), State::AdminDown);
    // A keeps telling B, at the slow rate.
    let admin = sim.periodic(0, at + ms(1), sim.now);
    assert!(admin.len() >= 4);
    assert!(admin.iter().all(|s| s.packet.state == State::AdminDown));

    sim.event(0, Event::AdminUp);
    sim.run_for(ms(3000));
    assert!(sim.both_up(), "not back Up after AdminUp");
}

#[test]
fn a_wrong_your_discriminator_or_source_is_dropped() {
    let mut sim = Sim::up(config(50, 50, 3), config(50, 50, 3), 7);
    let down = ControlPacket {
        diag: Diag::NONE,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: DISCR[1],
        your_discriminator: DISCR[0] + 1,
        desired_min_tx_us: 50_000,
        required_min_rx_us: 50_000,
        required_min_echo_rx_us: 0,
    };
    let now = sim.now;
    let a = &mut sim.nodes[0];
    let out = a.handle(
        now,
        Event::Packet {
            source: ADDR[1],
            packet: down,
        },
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(a.drops().wrong_your_discriminator, 1);
    let right = ControlPacket {
        your_discriminator: DISCR[0],
        ..down
    };
    let stranger = Ipv4Addr::new(198, 18, 0, 99);
    let out = a.handle(
        now,
        Event::Packet {
            source: stranger,
            packet: right,
        },
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(a.drops().wrong_source, 1);
    assert_eq!(a.state(), State::Up);
    // The same packet, addressed right, does take A down: the drops above
    // were the checks at work.
    let out = a.handle(
        now,
        Event::Packet {
            source: ADDR[1],
            packet: right,
        },
    );
    assert!(out.contains(&Action::StateChanged {
        from: State::Up,
        to: State::Down,
        diag: Diag::NEIGHBOR_SIGNALED_SESSION_DOWN,
        peer_admin_down: false,
    }));
}

/// Gaps between periodic packets once Up, over `count` transmits.
fn jitter(mult: u8, count: usize, seed: u64) -> (Duration, Duration, Duration) {
    let mut sim = Sim::up(config(50, 50, mult), config(50, 50, mult), seed);
    let from = sim.now;
    let mut g = Vec::new();
    while g.len() < count {
        sim.run_for(ms(10_000));
        g = gaps(&sim.periodic(0, from, sim.now));
    }
    assert!(sim.both_up(), "flapped: {:?}", sim.changes);
    let min = *g.iter().min().expect("gaps");
    let max = *g.iter().max().expect("gaps");
    let mean = g.iter().sum::<Duration>() / g.len() as u32;
    println!(
        "detect mult {mult}: {} gaps at 50 ms: min {min:?} max {max:?} mean {mean:?}",
        g.len()
    );
    (min, max, mean)
}

#[test]
fn transmit_jitter_stays_within_75_to_100_percent() {
    let (min, max, mean) = jitter(3, 10_000, 8);
    assert!(min >= Duration::from_micros(37_500), "min {min:?}");
    assert!(max <= ms(50), "max {max:?}");
    // Spread over the whole range, not a fixed offset.
    assert!(min < ms(38) && max > ms(49), "min {min:?} max {max:?}");
    assert!(
        mean > ms(43) && mean < Duration::from_micros(44_500),
        "mean {mean:?}"
    );
}

#[test]
fn transmit_jitter_stays_within_75_to_90_percent_with_multiplier_1() {
    let (min, max, mean) = jitter(1, 10_000, 9);
    assert!(min >= Duration::from_micros(37_500), "min {min:?}");
    assert!(max <= ms(45), "max {max:?}");
    assert!(min < ms(38) && max > ms(44), "min {min:?} max {max:?}");
    assert!(mean > ms(41) && mean < ms(42), "mean {mean:?}");
}

#[test]
fn a_peer_asking_for_no_packets_gets_none_until_it_asks_again() {
    let mut sim = Sim::up(config(50, 50, 3), config(50, 50, 3), 10);
    let changes = sim.changes.len();
    // B now says Required Min RX 0 (6.8.7: A must stop periodic packets).
    sim.event(1, Event::Parameters(config(50, 0, 3)));
    sim.run_for(ms(500));
    let quiet_from = sim.now;
    sim.run_for(ms(100));
    assert!(sim.periodic(0, quiet_from, sim.now).is_empty());
    assert_eq!(sim.nodes[0].transmit_interval(), None);
    sim.event(1, Event::Parameters(config(50, 50, 3)));
    let asked = sim.now;
    sim.run_for(ms(500));
    assert!(sim.periodic(0, asked, sim.now).len() >= 5);
    assert!(sim.both_up());
    assert_eq!(sim.changes.len(), changes, "flapped: {:?}", sim.changes);
}

#[test]
fn a_silent_peer_is_detected_after_asking_for_packets_again() {
    let mut sim = Sim::up(config(50, 50, 3), config(50, 50, 3), 11);
    sim.event(1, Event::Parameters(config(50, 0, 3)));
    sim.run_for(ms(500));
    assert_eq!(sim.nodes[1].detection_time(), None);
    // A dies while B wants nothing from it; B then asks again.
    sim.cut[0] = true;
    sim.event(1, Event::Parameters(config(50, 50, 3)));
    let asked = sim.now;
    sim.run_for(ms(1000));
    let down = sim
        .changes
        .iter()
        .find(|c| c.node == 1 && c.at >= asked)
        .expect("B detected the silent A");
    assert_eq!(down.diag, Diag::CONTROL_DETECTION_TIME_EXPIRED);
    assert_eq!(down.at - asked, ms(150));
}
