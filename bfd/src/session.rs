//! One BFD session in asynchronous mode (RFC 5880 6.2, 6.8), sans-IO.
//!
//! The IO layer matches a received packet to its session (by Your
//! Discriminator, or by source address and interface when it is 0, RFC 5881
//! 3), feeds it in with [`Session::handle`] and the current instant, calls
//! `handle(now, Event::Timer)` at [`Session::next_deadline`], and carries out
//! the returned [`Action`]s. The transmit jitter (6.8.7) draws on a random
//! source the caller passes in, so tests are deterministic.
//!
//! Left out on purpose: demand mode and the echo function (we never set D
//! and advertise a Required Min Echo RX Interval of 0).

use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use rand_core::Rng;
use thiserror::Error;

use crate::packet::{ControlPacket, Diag, State};

/// The slowest transmit rate's floor while the session is not Up (6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// A session's local parameters (RFC 5880 6.8.1: bfd.DesiredMinTxInterval,
/// bfd.RequiredMinRxInterval, bfd.DetectMult), intervals in microseconds.
/// Built only by [`Config::new`], so every `Config` is one a session can
/// run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    desired_min_tx_us: u32,
    required_min_rx_us: u32,
    detect_mult: u8,
}

/// A [`Config`] the session cannot run with.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Detect Mult 0 would make every packet we send invalid (6.8.6).
    #[error("detect multiplier must be at least 1")]
    ZeroDetectMult,
    /// 6.8.1: bfd.DesiredMinTxInterval must be nonzero.
    #[error("desired min tx interval must be nonzero")]
    ZeroDesiredMinTx,
}

impl Config {
    /// Desired Min TX (applies once Up; at least 1 s before, 6.8.3) and
    /// Required Min RX in microseconds (0: the peer must not send), and
    /// the Detect Mult.
    pub fn new(
        desired_min_tx_us: u32,
        required_min_rx_us: u32,
        detect_mult: u8,
    ) -> Result<Config, ConfigError> {
        if detect_mult == 0 {
            return Err(ConfigError::ZeroDetectMult);
        }
        if desired_min_tx_us == 0 {
            return Err(ConfigError::ZeroDesiredMinTx);
        }
        Ok(Config {
            desired_min_tx_us,
            required_min_rx_us,
            detect_mult,
        })
    }

    /// bfd.DesiredMinTxInterval, microseconds.
    pub fn desired_min_tx_us(&self) -> u32 {
        self.desired_min_tx_us
    }

    /// bfd.RequiredMinRxInterval, microseconds.
    pub fn required_min_rx_us(&self) -> u32 {
        self.required_min_rx_us
    }

    /// bfd.DetectMult.
    pub fn detect_mult(&self) -> u8 {
        self.detect_mult
    }
}

/// An input to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A control packet that passed [`ControlPacket::decode`], with the
    /// source address it came from.
    Packet {
        /// IPv4 source address.
        source: Ipv4Addr,
        /// The decoded packet.
        packet: ControlPacket,
    },
    /// The clock reached (or passed) [`Session::next_deadline`].
    Timer,
    /// Put the session in AdminDown (6.8.16).
    AdminDown,
    /// Take the session out of AdminDown (to Down).
    AdminUp,
    /// New local parameters (6.8.3: a Poll Sequence when Up).
    Parameters(Config),
}

/// What the IO layer must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this packet to the peer (UDP 3784, TTL 255).
    Send(ControlPacket),
    /// bfd.SessionState changed.
    StateChanged {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
        /// bfd.LocalDiag after the change (why we went down).
        diag: Diag,
        /// The peer put its side in AdminDown: per RFC 5882 3.2 a client
        /// must not treat this Down as a path failure.
        peer_admin_down: bool,
    },
}

/// Packets the session refused, by reason (6.8.6 checks that depend on the
/// session).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// From another source address than the session's peer.
    pub wrong_source: u64,
    /// Your Discriminator nonzero and not ours.
    pub wrong_your_discriminator: u64,
    /// Received while we are AdminDown.
    pub admin_down: u64,
}

/// A Poll Sequence we started (6.5): parameters to apply once the Final
/// arrives.
#[derive(Clone, Copy, Debug)]
struct Poll {
    tx_us: u32,
    rx_us: u32,
}

/// One session. `R` is the random source for the transmit jitter.
#[derive(Debug)]
pub struct Session<R> {
    peer: Ipv4Addr,
    config: Config,
    rng: R,
    // RFC 5880 6.8.1 state variables.
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: Diag,
    remote_diag: Diag,
    remote_min_rx_us: u32,
    remote_desired_min_tx_us: u32,
    remote_detect_mult: u8,
    /// The Desired Min TX in force for our transmit interval: it lags an
    /// increase until the Poll Sequence ends (6.8.3).
    tx_in_use_us: u32,
    /// The Required Min RX in force for the detection time: it lags a
    /// decrease until the Poll Sequence ends (6.8.3).
    rx_in_use_us: u32,
    /// The (Desired Min TX, Required Min RX) last put in force, to tell
    /// whether a change needs a Poll Sequence.
    advertised: (u32, u32),
    poll: Option<Poll>,
    last_tx: Option<Instant>,
    next_tx: Option<Instant>,
    detect_deadline: Option<Instant>,
    drops: Drops,
}

impl<R: Rng> Session<R> {
    /// A session in state Down towards `peer`, whose first packet is due at
    /// `now`. `local_discriminator` must be unique on this system.
    pub fn new(
        now: Instant,
        peer: Ipv4Addr,
        local_discriminator: NonZeroU32,
        config: Config,
        rng: R,
    ) -> Self {
        let mut s = Session {
            peer,
            config,
            rng,
            state: State::Down,
            remote_state: State::Down,
            local_discr: local_discriminator.get(),
            remote_discr: 0,
            local_diag: Diag::NONE,
            remote_diag: Diag::NONE,
            // 6.8.1: bfd.RemoteMinRxInterval starts at 1 microsecond.
            remote_min_rx_us: 1,
            remote_desired_min_tx_us: 0,
            remote_detect_mult: 0,
            tx_in_use_us: 0,
            rx_in_use_us: config.required_min_rx_us,
            advertised: (0, 0),
            poll: None,
            last_tx: None,
            next_tx: Some(now),
            detect_deadline: None,
            drops: Drops::default(),
        };
        s.tx_in_use_us = s.advertised_tx_us();
        s.advertised = (s.tx_in_use_us, config.required_min_rx_us);
        s
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.LocalDiag.
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    /// The Diag field of the last packet accepted from the peer.
    pub fn remote_diag(&self) -> Diag {
        self.remote_diag
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> u32 {
        self.local_discr
    }

    /// bfd.RemoteDiscr (0 while unknown).
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// The peer's address.
    pub fn peer(&self) -> Ipv4Addr {
        self.peer
    }

    /// Packets dropped by reason.
    pub fn drops(&self) -> Drops {
        self.drops
    }

    /// Whether a Poll Sequence of ours awaits its Final.
    pub fn poll_in_progress(&self) -> bool {
        self.poll.is_some()
    }

    /// The agreed transmit interval before jitter (6.8.7): the larger of
    /// our Desired Min TX in force and the peer's Required Min RX; `None`
    /// while the peer asks for no packets (Required Min RX 0).
    pub fn transmit_interval(&self) -> Option<Duration> {
        (self.remote_min_rx_us != 0).then(|| micros(self.tx_in_use_us.max(self.remote_min_rx_us)))
    }

    /// The Detection Time (6.8.4): the peer's Detect Mult times the larger
    /// of our Required Min RX in force and the peer's Desired Min TX;
    /// `None` before any packet from the peer, and while our Required Min
    /// RX in force is 0 (we asked for no periodic packets, 6.8.1, so their
    /// absence means nothing).
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote_detect_mult != 0 && self.rx_in_use_us != 0).then(|| {
            micros(self.rx_in_use_us.max(self.remote_desired_min_tx_us))
                * u32::from(self.remote_detect_mult)
        })
    }

    /// When [`Event::Timer`] is next due.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.next_tx, self.detect_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feeds one event in at `now`; returns what to do, in order.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Packet { source, packet } => self.receive(now, source, &packet, &mut out),
            Event::Timer => self.timer(now, &mut out),
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    // 6.8.16: AdminDown with diag 7; tell the peer at once,
                    // then keep sending at the slow rate.
                    self.local_diag = Diag::ADMINISTRATIVELY_DOWN;
                    self.set_state(State::AdminDown, &mut out);
                    self.detect_deadline = None;
                    self.parameters_changed(now);
                    self.transmit(now, false, &mut out);
                }
            }
            Event::AdminUp => {
                if self.state == State::AdminDown {
                    self.set_state(State::Down, &mut out);
                }
            }
            Event::Parameters(config) => {
                self.config = config;
                self.parameters_changed(now);
            }
        }
        out
    }

    /// The Desired Min TX we advertise: at least 1 s until Up (6.8.3).
    fn advertised_tx_us(&self) -> u32 {
        if self.state == State::Up {
            self.config.desired_min_tx_us
        } else {
            self.config
                .desired_min_tx_us
                .max(SLOW_TX.as_micros() as u32)
        }
    }

    /// 6.8.3: the advertised values changed. When Up, start a Poll
    /// Sequence; an increase of our TX interval or a decrease of our RX
    /// interval waits for its Final, the safe direction applies now.
    fn parameters_changed(&mut self, now: Instant) {
        let tx = self.advertised_tx_us();
        let rx = self.config.required_min_rx_us;
        if self.state != State::Up {
            self.poll = None;
            self.tx_in_use_us = tx;
            self.rx_in_use_us = rx;
        } else if (tx, rx) != self.advertised {
            self.tx_in_use_us = self.tx_in_use_us.min(tx);
            self.rx_in_use_us = self.rx_in_use_us.max(rx);
            self.poll = Some(Poll {
                tx_us: tx,
                rx_us: rx,
            });
        }
        self.advertised = (tx, rx);
        if self.detect_deadline.is_none() && self.state != State::AdminDown {
            // Asking for packets again after a Required Min RX of 0: a
            // peer that stays silent must still be detected.
            self.detect_deadline = self.detection_time().map(|d| now + d);
        }
        self.reschedule(now);
    }

    /// A new interval in force: the next periodic packet is due one
    /// (jittered) interval after the last, if that is sooner.
    fn reschedule(&mut self, now: Instant) {
        let Some(interval) = self.jittered_interval() else {
            self.next_tx = None;
            return;
        };
        let due = self.last_tx.map_or(now, |t| (t + interval).max(now));
        self.next_tx = Some(self.next_tx.map_or(due, |n| n.min(due)));
    }

    /// 6.8.7: the interval less 0-25 % (10-25 % with Detect Mult 1).
    fn jittered_interval(&mut self) -> Option<Duration> {
        let interval = self.transmit_interval()?;
        let (lo, hi) = if self.config.detect_mult == 1 {
            (100, 250)
        } else {
            (0, 250)
        };
        let reduction_permille = lo + self.rng.next_u32() % (hi - lo + 1);
        Some(interval * (1000 - reduction_permille) / 1000)
    }

    fn set_state(&mut self, to: State, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        if to == State::Up {
            self.local_diag = Diag::NONE;
        }
        out.push(Action::StateChanged {
            from,
            to,
            diag: self.local_diag,
            peer_admin_down: self.remote_state == State::AdminDown,
        });
    }

    fn packet(&self, poll: bool, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll,
            final_,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.config.detect_mult,
            my_discriminator: self.local_discr,
            your_discriminator: self.remote_discr,
            desired_min_tx_us: self.advertised_tx_us(),
            required_min_rx_us: self.config.required_min_rx_us,
            required_min_echo_rx_us: 0,
        }
    }

    /// Sends a packet now. A Final (`final_`) answers a Poll and never
    /// carries P; every other packet carries P while our Poll Sequence runs
    /// (6.5).
    fn transmit(&mut self, now: Instant, final_: bool, out: &mut Vec<Action>) {
        let poll = !final_ && self.poll.is_some();
        out.push(Action::Send(self.packet(poll, final_)));
        if !final_ {
            self.last_tx = Some(now);
            self.next_tx = self.jittered_interval().map(|i| now + i);
        }
    }

    fn timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.detect_deadline.is_some_and(|d| d <= now) {
            self.detect_deadline = None;
            // 6.8.1: bfd.RemoteDiscr is reset when the Detection Time
            // passes; 6.8.4: Init or Up goes Down with diag 1.
            self.remote_discr = 0;
            if matches!(self.state, State::Init | State::Up) {
                self.local_diag = Diag::CONTROL_DETECTION_TIME_EXPIRED;
                self.set_state(State::Down, out);
                self.parameters_changed(now);
            }
        }
        if self.next_tx.is_some_and(|t| t <= now) {
            self.transmit(now, false, out);
        }
    }

    /// RFC 5880 6.8.6, the checks that need the session, then the state
    /// machine (6.2).
    fn receive(
        &mut self,
        now: Instant,
        source: Ipv4Addr,
        p: &ControlPacket,
        out: &mut Vec<Action>,
    ) {
        if source != self.peer {
            self.drops.wrong_source += 1;
            return;
        }
        if p.your_discriminator != 0 && p.your_discriminator != self.local_discr {
            self.drops.wrong_your_discriminator += 1;
            return;
        }
        if self.state == State::AdminDown {
            self.drops.admin_down += 1;
            return;
        }
        self.remote_discr = p.my_discriminator;
        self.remote_state = p.state;
        self.remote_diag = p.diag;
        self.remote_desired_min_tx_us = p.desired_min_tx_us;
        self.remote_detect_mult = p.detect_mult;
        let min_rx_changed = self.remote_min_rx_us != p.required_min_rx_us;
        self.remote_min_rx_us = p.required_min_rx_us;
        if p.final_ {
            if let Some(done) = self.poll.take() {
                // 6.5: the Final ends our Poll Sequence; the new values
                // take full effect.
                self.tx_in_use_us = done.tx_us;
                self.rx_in_use_us = done.rx_us;
                self.reschedule(now);
            }
        }
        if min_rx_changed {
            self.reschedule(now);
        }

        let was_up = self.state == State::Up;
        match (self.state, p.state) {
            // 6.8.6: AdminDown from the peer takes us Down with diag 3.
            (State::Init | State::Up, State::AdminDown) => {
                self.local_diag = Diag::NEIGHBOR_SIGNALED_SESSION_DOWN;
                self.set_state(State::Down, out);
            }
            (State::Down, State::Down) => self.set_state(State::Init, out),
            (State::Down, State::Init) => self.set_state(State::Up, out),
            (State::Init, State::Init | State::Up) => self.set_state(State::Up, out),
            (State::Up, State::Down) => {
                self.local_diag = Diag::NEIGHBOR_SIGNALED_SESSION_DOWN;
                self.set_state(State::Down, out);
            }
            _ => {}
        }
        if was_up != (self.state == State::Up) {
            // The advertised TX moved between 1 s and the configured value.
            self.parameters_changed(now);
        }
        self.detect_deadline = self.detection_time().map(|d| now + d);

        if p.poll {
            // 6.8.6: answer a Poll with a Final at once, outside the
            // transmit timer.
            self.transmit(now, true, out);
        }
    }
}

fn micros(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}
