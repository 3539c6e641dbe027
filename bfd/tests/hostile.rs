//! A hostile peer: arbitrary well-formed packets (any state, flags,
//! discriminators, intervals), from the peer's address or another, with
//! timer ticks between them. The session must not panic, must never send P
//! and F together or a packet that fails our own decoder, its timers must
//! settle, and Init or Up always has a remote discriminator.

use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use bfd::packet::{ControlPacket, State};
use bfd::session::{Action, Config, Event, Session};
use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xorshift::XorShiftRng;

const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LOCAL_DISCR: u32 = 7;

/// Version 1, length 24, no A or M bit; everything else arbitrary. Bytes
/// that fail the reception checks are skipped by the caller.
fn arb_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop_oneof![Just(LOCAL_DISCR), Just(0u32), any::<u32>()],
        proptest::collection::vec(any::<u8>(), 16),
    )
        .prop_map(|(diag, sta_flags, mult, your, rest)| {
            let mut b = vec![0x20 | (diag & 0x1f), sta_flags & !0x05, mult, 24];
            b.extend_from_slice(&rest[..4]);
            b.extend_from_slice(&your.to_be_bytes());
            b.extend_from_slice(&rest[4..]);
            b
        })
}

#[derive(Debug, Clone)]
enum Step {
    Packet { from_peer: bool, bytes: Vec<u8> },
    Advance(u32),
    AdminDown,
    AdminUp,
    Parameters(u32, u32, u8),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<bool>(), arb_packet()).prop_map(|(from_peer, bytes)| Step::Packet { from_peer, bytes }),
        4 => (0u32..2_000_000).prop_map(Step::Advance),
        1 => Just(Step::AdminDown),
        1 => Just(Step::AdminUp),
        1 => (1u32..3_000_000, 0u32..3_000_000, 1u8..=255).prop_map(|(t, r, m)| Step::Parameters(t, r, m)),
    ]
}

fn check(actions: &[Action]) -> Result<(), TestCaseError> {
    for a in actions {
        if let Action::Send(p) = a {
            prop_assert!(!(p.poll && p.final_), "P and F together: {:?}", p);
            prop_assert_eq!(ControlPacket::decode(&p.encode()), Ok(*p));
            prop_assert_eq!(p.my_discriminator, LOCAL_DISCR);
        }
        if let Action::StateChanged { from, to, .. } = a {
            prop_assert_ne!(from, to);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn a_hostile_peer_cannot_break_a_session(steps in proptest::collection::vec(arb_step(), 1..200)) {
        let mut now = Instant::now();
        let cfg = Config::new(50_000, 50_000, 3).expect("valid");
        let discr = NonZeroU32::new(LOCAL_DISCR).expect("nonzero");
        let mut s = Session::new(now, PEER, discr, cfg, XorShiftRng::seed_from_u64(1));
        for step in steps {
            let actions = match step {
                Step::Packet { from_peer, bytes } => {
                    let Ok(packet) = ControlPacket::decode(&bytes) else { continue };
                    let source = if from_peer { PEER } else { Ipv4Addr::new(198, 18, 0, 9) };
                    s.handle(now, Event::Packet { source, packet })
                }
                Step::Advance(us) => {
                    now += Duration::from_micros(u64::from(us));
                    let mut all = Vec::new();
                    while s.next_deadline().is_some_and(|d| d <= now) {
                        all.extend(s.handle(now, Event::Timer));
                        if all.len() > 10_000 {
                            prop_assert!(false, "timer loop did not settle");
                        }
                    }
                    all
                }
                Step::AdminDown => s.handle(now, Event::AdminDown),
                Step::AdminUp => s.handle(now, Event::AdminUp),
                Step::Parameters(t, r, m) => {
                    let c = Config::new(t, r, m).expect("valid");
                    s.handle(now, Event::Parameters(c))
                }
            };
            check(&actions)?;
            if s.state() == State::Up || s.state() == State::Init {
                prop_assert_ne!(s.remote_discriminator(), 0);
            }
        }
    }
}
