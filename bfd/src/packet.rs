//! BFD control packets (RFC 5880 4.1).
//!
//! [`ControlPacket::decode`] is total: any bytes give a packet or a typed
//! [`DecodeError`], never a panic. It applies the reception checks of RFC
//! 5880 6.8.6 that need no session (version, length, detect multiplier,
//! discriminators, the M bit, P and F together), so a packet that crossed
//! `decode` is well-formed and the session only checks what depends on its
//! own state. Authentication (4.2-4.4) is not supported: a packet with the A
//! bit set has its authentication section framed and is then refused with
//! [`DecodeError::AuthenticationUnsupported`]; we never send one.

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_u32, be_u8};
use nom::IResult;
use thiserror::Error;

/// The BFD version this module speaks (RFC 5880 4.1).
pub const VERSION: u8 = 1;
/// Size of the mandatory section of a control packet (RFC 5880 4.1).
pub const CONTROL_LEN: usize = 24;
/// The smallest correct Length when the A bit is set: the mandatory section
/// plus the authentication section's Auth Type and Auth Len (6.8.6).
pub const MIN_LEN_WITH_AUTH: usize = CONTROL_LEN + 2;
/// UDP destination port of single-hop control packets (RFC 5881 4).
pub const CONTROL_PORT: u16 = 3784;

const FLAG_POLL: u8 = 0x20;
const FLAG_FINAL: u8 = 0x10;
const FLAG_CPI: u8 = 0x08;
const FLAG_AUTH: u8 = 0x04;
const FLAG_DEMAND: u8 = 0x02;
const FLAG_MULTIPOINT: u8 = 0x01;

/// Why received bytes are not an acceptable control packet. One variant per
/// reason so that the IO layer can count drops by reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the 24-byte mandatory section.
    #[error("truncated BFD control packet: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes received.
        have: usize,
    },
    /// The version field is not 1.
    #[error("unsupported BFD version {0} (expected 1)")]
    BadVersion(u8),
    /// The Length field is below the minimum correct value (24, or 26 with
    /// the A bit set).
    #[error("length field {length} is below the minimum {min}")]
    LengthTooShort {
        /// The Length field.
        length: u8,
        /// The minimum for this packet.
        min: usize,
    },
    /// The Length field exceeds the datagram's payload.
    #[error("length field {length} exceeds the {available} bytes received")]
    LengthExceedsDatagram {
        /// The Length field.
        length: u8,
        /// Bytes received.
        available: usize,
    },
    /// Without authentication a control packet is exactly 24 bytes; a
    /// longer Length would carry bytes that mean nothing.
    #[error("length field {0} without authentication (expected 24)")]
    LengthWithoutAuth(u8),
    /// Detect Mult is zero.
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    /// The Multipoint bit is set.
    #[error("multipoint bit set")]
    Multipoint,
    /// My Discriminator is zero.
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    /// Your Discriminator is zero while the State is Init or Up.
    #[error("your discriminator is zero in state {0:?}")]
    ZeroYourDiscriminator(State),
    /// Poll and Final are both set (RFC 5880 6.5 forbids it).
    #[error("poll and final bits both set")]
    PollAndFinal,
    /// The authentication section's Auth Len disagrees with the Length.
    #[error("auth len {auth_len} does not fit the {available} bytes after the mandatory section")]
    AuthSectionMalformed {
        /// The Auth Len field.
        auth_len: u8,
        /// Bytes the Length leaves for the section.
        available: usize,
    },
    /// The A bit is set: authentication is not supported.
    #[error("authentication type {0} is not supported")]
    AuthenticationUnsupported(u8),
}

/// Session states as carried in the Sta field (RFC 5880 4.1, 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// AdminDown (0).
    AdminDown = 0,
    /// Down (1).
    Down = 1,
    /// Init (2).
    Init = 2,
    /// Up (3).
    Up = 3,
}

impl State {
    fn from_bits(v: u8) -> State {
        match v & 0x3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

/// A diagnostic code (RFC 5880 4.1, the 5-bit Diag field). A newtype rather
/// than an enum so that the unassigned values 9-31 still round-trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Diag(u8);

impl Diag {
    /// 0: No Diagnostic.
    pub const NONE: Diag = Diag(0);
    /// 1: Control Detection Time Expired.
    pub const CONTROL_DETECTION_TIME_EXPIRED: Diag = Diag(1);
    /// 2: Echo Function Failed.
    pub const ECHO_FUNCTION_FAILED: Diag = Diag(2);
    /// 3: Neighbor Signaled Session Down.
    pub const NEIGHBOR_SIGNALED_SESSION_DOWN: Diag = Diag(3);
    /// 4: Forwarding Plane Reset.
    pub const FORWARDING_PLANE_RESET: Diag = Diag(4);
    /// 5: Path Down.
    pub const PATH_DOWN: Diag = Diag(5);
    /// 6: Concatenated Path Down.
    pub const CONCATENATED_PATH_DOWN: Diag = Diag(6);
    /// 7: Administratively Down.
    pub const ADMINISTRATIVELY_DOWN: Diag = Diag(7);
    /// 8: Reverse Concatenated Path Down.
    pub const REVERSE_CONCATENATED_PATH_DOWN: Diag = Diag(8);

    /// The code; values above 31 keep their low five bits (the field's
    /// width).
    pub fn new(code: u8) -> Diag {
        Diag(code & 0x1f)
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self.0
    }

    /// The RFC's name for the code, as logs print it.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "no diagnostic",
            1 => "control detection time expired",
            2 => "echo function failed",
            3 => "neighbor signaled session down",
            4 => "forwarding plane reset",
            5 => "path down",
            6 => "concatenated path down",
            7 => "administratively down",
            8 => "reverse concatenated path down",
            _ => "unassigned",
        }
    }
}

/// A decoded control packet without authentication. Version, Length and the
/// A bit are implied and written by [`ControlPacket::encode`]. Intervals are
/// in microseconds, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    /// Diag.
    pub diag: Diag,
    /// Sta.
    pub state: State,
    /// P: Poll.
    pub poll: bool,
    /// F: Final.
    pub final_: bool,
    /// C: Control Plane Independent.
    pub control_plane_independent: bool,
    /// D: Demand (the sender wishes to use demand mode; we never set it).
    pub demand: bool,
    /// Detect Mult.
    pub detect_mult: u8,
    /// My Discriminator.
    pub my_discriminator: u32,
    /// Your Discriminator.
    pub your_discriminator: u32,
    /// Desired Min TX Interval, microseconds.
    pub desired_min_tx_us: u32,
    /// Required Min RX Interval, microseconds.
    pub required_min_rx_us: u32,
    /// Required Min Echo RX Interval, microseconds (0: no echo).
    pub required_min_echo_rx_us: u32,
}

/// The mandatory section's fields as received, before any check.
struct Raw {
    version: u8,
    diag: u8,
    state: u8,
    flags: u8,
    detect_mult: u8,
    length: u8,
    my_discriminator: u32,
    your_discriminator: u32,
    desired_min_tx_us: u32,
    required_min_rx_us: u32,
    required_min_echo_rx_us: u32,
}

fn parse_raw(i: &[u8]) -> IResult<&[u8], Raw> {
    let (i, vers_diag) = be_u8(i)?;
    let (i, sta_flags) = be_u8(i)?;
    let (i, detect_mult) = be_u8(i)?;
    let (i, length) = be_u8(i)?;
    let (i, my_discriminator) = be_u32(i)?;
    let (i, your_discriminator) = be_u32(i)?;
    let (i, desired_min_tx_us) = be_u32(i)?;
    let (i, required_min_rx_us) = be_u32(i)?;
    let (i, required_min_echo_rx_us) = be_u32(i)?;
    Ok((
        i,
        Raw {
            version: vers_diag >> 5,
            diag: vers_diag & 0x1f,
            state: sta_flags >> 6,
            flags: sta_flags & 0x3f,
            detect_mult,
            length,
            my_discriminator,
            your_discriminator,
            desired_min_tx_us,
            required_min_rx_us,
            required_min_echo_rx_us,
        },
    ))
}

impl ControlPacket {
    /// Decodes one UDP payload, applying the session-independent checks of
    /// RFC 5880 6.8.6 in the RFC's order.
    pub fn decode(datagram: &[u8]) -> Result<ControlPacket, DecodeError> {
        let truncated = DecodeError::Truncated {
            need: CONTROL_LEN,
            have: datagram.len(),
        };
        if datagram.len() < CONTROL_LEN {
            return Err(truncated);
        }
        let (_, raw) = parse_raw(datagram).map_err(|_| truncated)?;
        if raw.version != VERSION {
            return Err(DecodeError::BadVersion(raw.version));
        }
        let auth = raw.flags & FLAG_AUTH != 0;
        let min = if auth { MIN_LEN_WITH_AUTH } else { CONTROL_LEN };
        let length = usize::from(raw.length);
        if length < min {
            return Err(DecodeError::LengthTooShort {
                length: raw.length,
                min,
            });
        }
        if length > datagram.len() {
            return Err(DecodeError::LengthExceedsDatagram {
                length: raw.length,
                available: datagram.len(),
            });
        }
        if raw.detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if raw.flags & FLAG_MULTIPOINT != 0 {
            return Err(DecodeError::Multipoint);
        }
        if raw.my_discriminator == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        let state = State::from_bits(raw.state);
        if raw.your_discriminator == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator(state));
        }
        let poll = raw.flags & FLAG_POLL != 0;
        let final_ = raw.flags & FLAG_FINAL != 0;
        if poll && final_ {
            return Err(DecodeError::PollAndFinal);
        }
        if auth {
            // Auth Type, Auth Len (RFC 5880 4.2): Auth Len counts the whole
            // section and must end where the Length says the packet ends.
            let section = &datagram[CONTROL_LEN..length];
            let (auth_type, auth_len) = match section {
                [t, l, ..] => (*t, *l),
                // Unreachable: length >= MIN_LEN_WITH_AUTH was checked.
                _ => {
                    return Err(DecodeError::LengthTooShort {
                        length: raw.length,
                        min,
                    })
                }
            };
            if usize::from(auth_len) != section.len() {
                return Err(DecodeError::AuthSectionMalformed {
                    auth_len,
                    available: section.len(),
                });
            }
            return Err(DecodeError::AuthenticationUnsupported(auth_type));
        }
        if length != CONTROL_LEN {
            return Err(DecodeError::LengthWithoutAuth(raw.length));
        }
        Ok(ControlPacket {
            diag: Diag(raw.diag),
            state,
            poll,
            final_,
            control_plane_independent: raw.flags & FLAG_CPI != 0,
            demand: raw.flags & FLAG_DEMAND != 0,
            detect_mult: raw.detect_mult,
            my_discriminator: raw.my_discriminator,
            your_discriminator: raw.your_discriminator,
            desired_min_tx_us: raw.desired_min_tx_us,
            required_min_rx_us: raw.required_min_rx_us,
            required_min_echo_rx_us: raw.required_min_echo_rx_us,
        })
    }

    /// The 24 bytes of this packet (version 1, no authentication).
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(CONTROL_LEN);
        b.put_u8((VERSION << 5) | self.diag.code());
        let mut flags = 0;
        for (set, bit) in [
            (self.poll, FLAG_POLL),
            (self.final_, FLAG_FINAL),
            (self.control_plane_independent, FLAG_CPI),
            (self.demand, FLAG_DEMAND),
        ] {
            if set {
                flags |= bit;
            }
        }
        b.put_u8(((self.state as u8) << 6) | flags);
        b.put_u8(self.detect_mult);
        b.put_u8(CONTROL_LEN as u8);
        b.put_u32(self.my_discriminator);
        b.put_u32(self.your_discriminator);
        b.put_u32(self.desired_min_tx_us);
        b.put_u32(self.required_min_rx_us);
        b.put_u32(self.required_min_echo_rx_us);
        b.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hand-assembled from RFC 5880 4.1: Up, diag 0, P set, detect mult 3,
    /// discriminators 0x11223344 / 0x55667788, 50 ms / 50 ms / no echo.
    const UP_POLL: [u8; 24] = [
        0x20, // version 1, diag 0
        0xe0, // state Up (3 << 6), P
        3, 24, // detect mult, length
        0x11, 0x22, 0x33, 0x44, // my discriminator
        0x55, 0x66, 0x77, 0x88, // your discriminator
        0x00, 0x00, 0xc3, 0x50, // desired min tx 50000 us
        0x00, 0x00, 0xc3, 0x50, // required min rx 50000 us
        0x00, 0x00, 0x00, 0x00, // required min echo rx
    ];

    fn up_poll() -> ControlPacket {
        ControlPacket {
            diag: Diag::NONE,
            state: State::Up,
            poll: true,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 0x1122_3344,
            your_discriminator: 0x5566_7788,
            desired_min_tx_us: 50_000,
            required_min_rx_us: 50_000,
            required_min_echo_rx_us: 0,
        }
    }

    #[test]
    fn golden_packet_both_directions() {
        assert_eq!(ControlPacket::decode(&UP_POLL), Ok(up_poll()));
        assert_eq!(&up_poll().encode()[..], &UP_POLL[..]);
    }

    fn with(f: impl FnOnce(&mut [u8; 24])) -> [u8; 24] {
        let mut b = UP_POLL;
        f(&mut b);
        b
    }

    #[test]
    fn reception_checks_reject_with_their_reason() {
        let cases: Vec<(Vec<u8>, DecodeError)> = vec![
            (
                UP_POLL[..23].to_vec(),
                DecodeError::Truncated { need: 24, have: 23 },
            ),
            (with(|b| b[0] = 0x40).to_vec(), DecodeError::BadVersion(2)),
            (
                with(|b| b[3] = 23).to_vec(),
                DecodeError::LengthTooShort {
                    length: 23,
                    min: 24,
                },
            ),
            (
                with(|b| b[3] = 25).to_vec(),
                DecodeError::LengthExceedsDatagram {
                    length: 25,
                    available: 24,
                },
            ),
            (
                {
                    let mut v = with(|b| b[3] = 28).to_vec();
                    v.extend([0; 4]);
                    v
                },
                DecodeError::LengthWithoutAuth(28),
            ),
            (with(|b| b[2] = 0).to_vec(), DecodeError::ZeroDetectMult),
            (with(|b| b[1] |= 0x01).to_vec(), DecodeError::Multipoint),
            (
                with(|b| b[4..8].fill(0)).to_vec(),
                DecodeError::ZeroMyDiscriminator,
            ),
            (
                with(|b| b[8..12].fill(0)).to_vec(),
                DecodeError::ZeroYourDiscriminator(State::Up),
            ),
            (
                with(|b| {
                    b[8..12].fill(0);
                    b[1] = 0x80;
                })
                .to_vec(),
                DecodeError::ZeroYourDiscriminator(State::Init),
            ),
            (with(|b| b[1] |= 0x10).to_vec(), DecodeError::PollAndFinal),
            (
                {
                    // Keyed SHA1 (type 4) with a 28-byte section.
                    let mut v = with(|b| {
                        b[1] |= 0x04;
                        b[3] = 52;
                    })
                    .to_vec();
                    v.extend([4, 28]);
                    v.extend([0; 26]);
                    v
                },
                DecodeError::AuthenticationUnsupported(4),
            ),
            (
                {
                    let mut v = with(|b| {
                        b[1] |= 0x04;
                        b[3] = 30;
                    })
                    .to_vec();
                    v.extend([1, 9, 0, 0, 0, 0]);
                    v
                },
                DecodeError::AuthSectionMalformed {
                    auth_len: 9,
                    available: 6,
                },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(ControlPacket::decode(&bytes), Err(want), "{bytes:02x?}");
        }
    }

    #[test]
    fn zero_your_discriminator_is_accepted_in_down_and_admin_down() {
        for sta in [0x00, 0x40] {
            let b = with(|b| {
                b[8..12].fill(0);
                b[1] = sta;
            });
            let p = ControlPacket::decode(&b).expect("Down/AdminDown with Your Discriminator 0");
            assert_eq!(p.your_discriminator, 0);
        }
    }

    #[test]
    fn a_longer_datagram_is_read_up_to_the_length_field() {
        let mut v = UP_POLL.to_vec();
        v.extend([0xff; 8]);
        assert_eq!(ControlPacket::decode(&v), Ok(up_poll()));
    }

    fn arb_state() -> impl Strategy<Value = State> {
        prop_oneof![
            Just(State::AdminDown),
            Just(State::Down),
            Just(State::Init),
            Just(State::Up)
        ]
    }

    /// Every packet that passes the reception checks.
    fn arb_valid() -> impl Strategy<Value = ControlPacket> {
        (
            (0u8..32, arb_state(), 0u8..3, any::<bool>(), any::<bool>()),
            (1u8..=255, 1u32.., any::<u32>(), any::<u32>()),
            (any::<u32>(), any::<u32>()),
        )
            .prop_map(
                |((diag, state, pf, c, d), (mult, my, your, tx), (rx, echo))| {
                    let your = match state {
                        State::Init | State::Up => your.max(1),
                        _ => your,
                    };
                    ControlPacket {
                        diag: Diag::new(diag),
                        state,
                        poll: pf == 1,
                        final_: pf == 2,
                        control_plane_independent: c,
                        demand: d,
                        detect_mult: mult,
                        my_discriminator: my,
                        your_discriminator: your,
                        desired_min_tx_us: tx,
                        required_min_rx_us: rx,
                        required_min_echo_rx_us: echo,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn every_valid_packet_round_trips(p in arb_valid()) {
            let bytes = p.encode();
            prop_assert_eq!(bytes.len(), CONTROL_LEN);
            prop_assert_eq!(ControlPacket::decode(&bytes), Ok(p));
        }

        #[test]
        fn decode_is_total_and_re_encodes_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = ControlPacket::decode(&bytes) {
                prop_assert_eq!(&p.encode()[..], &bytes[..CONTROL_LEN]);
            }
        }
    }
}
