//! Area types: normal, stub, totally stubby and NSSA (RFC 2328 3.6, RFC
//! 3101). The type decides the Options bits our Hellos, Database
//! Descriptions and LSAs carry, which neighbours' Hellos are accepted
//! (RFC 2328 10.5, RFC 3101 2.1) and which LS types the area stores and
//! floods (RFC 2328 13 step 3, RFC 3101 2.5).
//!
//! A director originates no summaries and no externals, so for it a
//! totally stubby area differs from a stub area only in what the area
//! border router sends it (a default summary and nothing else); on the
//! wire the two are the same.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::lsa::Options;
use crate::validate::LsaTypes;

/// An OSPF area ID.
pub type AreaId = Ipv4Addr;

/// The backbone (RFC 2328 3.1): it can only be a normal area.
pub const BACKBONE: AreaId = Ipv4Addr::UNSPECIFIED;

/// The most senders of mismatching Hellos remembered per interface: each
/// is reported once; beyond this many (forged Hellos from random
/// addresses), mismatches are only counted, so they cannot flood the log.
pub const MAX_AREA_MISMATCH_SENDERS: usize = 16;

/// The type of an area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AreaType {
    /// Takes AS-external-LSAs (E-bit set).
    #[default]
    Normal,
    /// No AS-external-LSAs (E-bit clear); the ABR sends summaries and a
    /// default.
    Stub,
    /// A stub area whose ABR sends only a default summary (FRR `stub
    /// no-summary`, BIRD `stub; summary no`). The same as stub on the wire.
    TotallyStubby,
    /// Not-so-stubby area (RFC 3101): no type 5, type 7 instead (E-bit
    /// clear, N-bit set).
    Nssa,
}

/// The Options bits that carry the area type.
const AREA_BITS: u8 = Options::E.0 | Options::NP.0;

impl AreaType {
    /// Every type, in the order of the documentation.
    pub const ALL: [AreaType; 4] = [
        AreaType::Normal,
        AreaType::Stub,
        AreaType::TotallyStubby,
        AreaType::Nssa,
    ];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            AreaType::Normal => "normal",
            AreaType::Stub => "stub",
            AreaType::TotallyStubby => "totally-stubby",
            AreaType::Nssa => "nssa",
        }
    }

    /// Options of our Hellos: E in normal areas (RFC 2328 A.2), N in
    /// NSSAs (RFC 3101 2.1), neither in stub areas.
    pub fn hello_options(self) -> Options {
        match self {
            AreaType::Normal => Options::E,
            AreaType::Stub | AreaType::TotallyStubby => Options::empty(),
            AreaType::Nssa => Options::NP,
        }
    }

    /// Options of our Database Description packets: the Hello's, plus O
    /// (we store and flood opaque LSAs, RFC 5250).
    pub fn dd_options(self) -> Options {
        self.hello_options() | Options::O
    }

    /// Options in the headers of the LSAs we originate into the area: E
    /// only in normal areas (RFC 2328 12.1.2; the P-bit of RFC 3101 is for
    /// type-7 LSAs, which we do not originate).
    pub fn lsa_options(self) -> Options {
        match self {
            AreaType::Normal => Options::E,
            _ => Options::empty(),
        }
    }

    /// The LS types the area stores and floods: no type 5 and 11 in stub
    /// areas and NSSAs (RFC 2328 3.6, RFC 5250 3.1), no type 4 either
    /// (RFC 2328 Errata 3746; BIRD refuses them too); type 7 only in NSSAs
    /// (RFC 3101 2.5).
    pub fn lsa_types(self) -> LsaTypes {
        let normal = self == AreaType::Normal;
        LsaTypes {
            as_external: normal,
            asbr_summary: normal,
            nssa: self == AreaType::Nssa,
            opaque: true,
        }
    }

    /// Checks the area-type bits (E and N) of a neighbour's Hello against
    /// ours (RFC 2328 10.5, RFC 3101 2.1).
    pub fn check_hello(self, options: Options) -> Result<(), AreaTypeMismatch> {
        let announced = Options(options.0 & AREA_BITS);
        if announced == self.hello_options() {
            Ok(())
        } else {
            Err(AreaTypeMismatch {
                ours: self,
                announced,
            })
        }
    }
}

impl fmt::Display for AreaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown area type name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown area type {0:?} (normal, stub, totally-stubby or nssa)")]
pub struct UnknownAreaType(pub String);

impl FromStr for AreaType {
    type Err = UnknownAreaType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AreaType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownAreaType(s.to_string()))
    }
}

/// A Hello whose E- and N-bits disagree with the area type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AreaTypeMismatch {
    /// Our area type.
    pub ours: AreaType,
    /// The E- and N-bits the neighbour announced.
    pub announced: Options,
}

impl AreaTypeMismatch {
    /// What the neighbour's bits say about its area, in words.
    pub fn expects(&self) -> &'static str {
        let e = self.announced.contains(Options::E);
        let n = self.announced.contains(Options::NP);
        match (e, n) {
            (true, false) => "a normal area (E-bit set)",
            (false, false) => "a stub area (E-bit clear)",
            (false, true) => "an NSSA (E-bit clear, N-bit set)",
            (true, true) => "no valid area type (E-bit and N-bit both set)",
        }
    }

    /// The log line, naming the neighbour by `addr`.
    pub fn describe(&self, addr: Ipv4Addr) -> String {
        let ours = match self.ours {
            AreaType::Normal => "a normal area",
            AreaType::Stub => "a stub area",
            AreaType::TotallyStubby => "a totally stubby area",
            AreaType::Nssa => "an NSSA",
        };
        format!(
            "neighbour {addr} expects {}, this interface is in {ours}",
            self.expects()
        )
    }
}

/// One sender of mismatching Hellos on an interface.
#[derive(Clone, Debug)]
pub(crate) struct MismatchSender {
    pub(crate) router_id: Ipv4Addr,
    pub(crate) mismatch: AreaTypeMismatch,
    pub(crate) last_heard: Instant,
}

/// The senders of mismatching Hellos on one interface, so that each is
/// reported once (again only when it changes what it announces, or after
/// it agreed or was silent for a RouterDeadInterval).
#[derive(Clone, Debug, Default)]
pub(crate) struct MismatchSenders {
    pub(crate) senders: std::collections::BTreeMap<Ipv4Addr, MismatchSender>,
}

impl MismatchSenders {
    /// Notes a mismatching Hello from `addr`; true if it is to be
    /// reported.
    pub(crate) fn heard(
        &mut self,
        now: Instant,
        dead: Duration,
        addr: Ipv4Addr,
        router_id: Ipv4Addr,
        mismatch: AreaTypeMismatch,
    ) -> bool {
        let fresh = |s: &MismatchSender| now.saturating_duration_since(s.last_heard) <= dead;
        if let Some(s) = self.senders.get_mut(&addr) {
            let known = s.mismatch == mismatch && s.router_id == router_id && fresh(s);
            *s = MismatchSender {
                router_id,
                mismatch,
                last_heard: now,
            };
            return !known;
        }
        if self.senders.len() >= MAX_AREA_MISMATCH_SENDERS {
            self.senders.retain(|_, s| fresh(s));
            if self.senders.len() >= MAX_AREA_MISMATCH_SENDERS {
                return false;
            }
        }
        self.senders.insert(
            addr,
            MismatchSender {
                router_id,
                mismatch,
                last_heard: now,
            },
        );
        true
    }

    /// `addr` sent a Hello that agrees: a later mismatch is news again.
    pub(crate) fn agreed(&mut self, addr: Ipv4Addr) {
        self.senders.remove(&addr);
    }

    /// The senders heard within `dead`, with their log lines.
    pub(crate) fn current(&self, now: Instant, dead: Duration) -> Vec<(Ipv4Addr, String)> {
        self.senders
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_heard) <= dead)
            .map(|(a, s)| (*a, s.mismatch.describe(*a)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsa::LsaType;

    #[test]
    fn names_round_trip() {
        for t in AreaType::ALL {
            assert_eq!(t.name().parse::<AreaType>(), Ok(t));
        }
        assert!("totally_stubby".parse::<AreaType>().is_err());
    }

    #[test]
    fn options_follow_the_area_type() {
        assert_eq!(AreaType::Normal.hello_options(), Options::E);
        assert_eq!(AreaType::Stub.hello_options(), Options::empty());
        assert_eq!(AreaType::TotallyStubby.hello_options(), Options::empty());
        assert_eq!(AreaType::Nssa.hello_options(), Options::NP);
        assert_eq!(AreaType::Nssa.dd_options(), Options::NP | Options::O);
        assert_eq!(AreaType::Stub.lsa_options(), Options::empty());
    }

    #[test]
    fn hellos_must_agree_on_e_and_n() {
        // Other bits (O, MC, DC ...) do not matter.
        let o = Options::O | Options::DC;
        assert!(AreaType::Normal.check_hello(Options::E | o).is_ok());
        assert!(AreaType::Stub.check_hello(o).is_ok());
        assert!(AreaType::TotallyStubby
            .check_hello(Options::empty())
            .is_ok());
        assert!(AreaType::Nssa.check_hello(Options::NP | o).is_ok());
        let m = AreaType::Normal.check_hello(o).unwrap_err();
        assert_eq!(
            m.describe(Ipv4Addr::new(198, 18, 0, 1)),
            "neighbour 198.18.0.1 expects a stub area (E-bit clear), this interface is in a normal area"
        );
        assert!(AreaType::Stub.check_hello(Options::NP).is_err());
        assert!(AreaType::Nssa.check_hello(Options::empty()).is_err());
        assert!(AreaType::Nssa
            .check_hello(Options::E | Options::NP)
            .is_err());
    }

    #[test]
    fn accepted_ls_types() {
        for t in AreaType::ALL {
            let types = t.lsa_types();
            let normal = t == AreaType::Normal;
            assert!(types.accepts(LsaType(1)) && types.accepts(LsaType(3)));
            assert_eq!(types.accepts(LsaType(4)), normal, "{t}");
            assert_eq!(types.accepts(LsaType(5)), normal, "{t}");
            assert_eq!(types.accepts(LsaType(11)), normal, "{t}");
            assert_eq!(types.accepts(LsaType(7)), t == AreaType::Nssa, "{t}");
        }
    }

    #[test]
    fn mismatch_senders_are_reported_once_and_bounded() {
        let now = Instant::now();
        let dead = Duration::from_secs(40);
        let stub = AreaType::Normal.check_hello(Options::empty()).unwrap_err();
        let nssa = AreaType::Normal.check_hello(Options::NP).unwrap_err();
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let mut m = MismatchSenders::default();
        assert!(m.heard(now, dead, a, a, stub));
        assert!(!m.heard(now + dead / 2, dead, a, a, stub));
        // It changes what it announces: news.
        assert!(m.heard(now + dead / 2, dead, a, a, nssa));
        // Silent longer than a dead interval: news again.
        assert!(m.heard(now + dead * 2, dead, a, a, nssa));
        // It agreed in between: news again.
        m.agreed(a);
        assert!(m.heard(now + dead * 2, dead, a, a, nssa));
        // At most MAX_AREA_MISMATCH_SENDERS remembered.
        let t = now + dead * 2;
        for i in 0..40u8 {
            let s = Ipv4Addr::new(198, 18, 1, i);
            let reported = m.heard(t, dead, s, s, stub);
            assert_eq!(reported, i < 15, "sender {i}");
        }
        assert_eq!(m.senders.len(), MAX_AREA_MISMATCH_SENDERS);
        // Once the old ones went silent, new senders are reported again.
        let later = t + dead * 2;
        assert!(m.heard(later, dead, Ipv4Addr::new(198, 18, 2, 1), a, stub));
        assert_eq!(m.current(later, dead).len(), 1);
    }
}
