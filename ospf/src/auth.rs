//! OSPFv2 packet authentication: null, simple password and cryptographic
//! (keyed MD5 from RFC 2328 Appendix D, HMAC-SHA-1/256/384/512 from
//! RFC 5709).
//!
//! This module works on raw packet bytes so it does not depend on the packet
//! codec: [`sign`] takes an encoded packet whose OSPF header is complete
//! except for the authentication-related fields and finishes it, and
//! [`verify`] gives one verdict per received packet before it is parsed.
//!
//! Division of work with the codec:
//!
//! * The encoder writes version, type, packet length (header + body, never
//!   the digest), router ID, area ID and the body. It leaves the checksum,
//!   AuType and authentication field to [`sign`], which owns all of them,
//!   including the standard checksum for null and simple authentication.
//! * On receipt, call [`verify`] first and parse only the first
//!   [`Verified::packet_len`] bytes. Anything after the cryptographic trailer
//!   (e.g. an RFC 5613 LLS block) starts at `packet_len + trailer_len`.
//!
//! Not implemented: AuType 3 (RFC 7474 extended sequence numbers, with the
//! source address mixed into Apad). A peer using it is reported as an AuType
//! mismatch.

use std::fmt;

use bytes::BufMut;
use hmac::digest::{Digest, Key as HmacKey, KeyInit, Mac};
use hmac::{EagerHash, Hmac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

/// AuType 0: null authentication (RFC 2328 D.1).
pub const AUTYPE_NULL: u16 = 0;
/// AuType 1: simple password (RFC 2328 D.2).
pub const AUTYPE_SIMPLE: u16 = 1;
/// AuType 2: cryptographic authentication (RFC 2328 D.3, RFC 5709).
pub const AUTYPE_CRYPTOGRAPHIC: u16 = 2;

/// Length of the OSPFv2 packet header (RFC 2328 A.3.1).
pub const HEADER_LEN: usize = 24;

/// Longest digest any supported algorithm produces (HMAC-SHA-512).
pub const MAX_DIGEST_LEN: usize = 64;

/// RFC 5709 section 3.3: Apad is 0x878FE1F3 repeated L/4 times, where L is
/// the digest length. It stands in for the digest while the HMAC is
/// computed.
const APAD_WORD: [u8; 4] = [0x87, 0x8F, 0xE1, 0xF3];

/// RFC 2328 D.4.3: keyed MD5 appends the key padded or truncated to 16
/// bytes.
const MD5_KEY_LEN: usize = 16;

// Header field offsets (RFC 2328 A.3.1 and, for the cryptographic layout of
// the authentication field, D.3).
const OFF_LENGTH: usize = 2;
const OFF_CHECKSUM: usize = 12;
const OFF_AUTYPE: usize = 14;
const OFF_AUTH: usize = 16;
const OFF_KEY_ID: usize = 18;
const OFF_AUTH_DATA_LEN: usize = 19;
const OFF_SEQ: usize = 20;

/// Cryptographic authentication algorithm of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Keyed MD5, RFC 2328 D.4.3: MD5(packet || key padded to 16 bytes).
    KeyedMd5,
    /// HMAC-SHA-1, RFC 5709.
    HmacSha1,
    /// HMAC-SHA-256, RFC 5709.
    HmacSha256,
    /// HMAC-SHA-384, RFC 5709.
    HmacSha384,
    /// HMAC-SHA-512, RFC 5709.
    HmacSha512,
}

impl Algorithm {
    /// Length in bytes of the digest appended to the packet, which is also
    /// the value of the header's Auth Data Len field.
    pub const fn digest_len(self) -> usize {
        match self {
            Algorithm::KeyedMd5 => 16,
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }

    /// Short stable name, e.g. for configuration and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::KeyedMd5 => "keyed-md5",
            Algorithm::HmacSha1 => "hmac-sha-1",
            Algorithm::HmacSha256 => "hmac-sha-256",
            Algorithm::HmacSha384 => "hmac-sha-384",
            Algorithm::HmacSha512 => "hmac-sha-512",
        }
    }
}

/// How an HMAC-SHA secret is turned into the HMAC key.
///
/// The two choices differ only for secrets longer than the digest length L
/// but not longer than the hash block size B (e.g. 33..=64 bytes for
/// SHA-256); shorter secrets are zero-padded and longer ones hashed by both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HmacKeyPrep {
    /// Plain HMAC (RFC 2104 section 2): the secret is hashed only when it is
    /// longer than B. This is what FRR, BIRD and holo do, so it is the
    /// default for interoperability.
    #[default]
    Rfc2104,
    /// RFC 5709 section 3.3 taken literally: Ko is always L bytes, so a
    /// secret longer than L is replaced by H(secret).
    Rfc5709,
}

/// A span of wall-clock time in Unix seconds, `from` included and `until`
/// excluded; an open end (`None`) reaches back or forward for ever. RFC 2328
/// D.3 gives each key such a span for generating (KeyStartGenerate,
/// KeyStopGenerate) and one for accepting (KeyStartAccept, KeyStopAccept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Window {
    /// First second in the window, or since ever.
    pub from: Option<u64>,
    /// First second after the window, or for ever.
    pub until: Option<u64>,
}

impl Window {
    /// Every instant.
    pub const ALWAYS: Window = Window {
        from: None,
        until: None,
    };

    /// The window `[from, until)`.
    pub const fn new(from: Option<u64>, until: Option<u64>) -> Window {
        Window { from, until }
    }

    /// Whether `now` (Unix seconds) lies in the window.
    pub fn contains(&self, now: u64) -> bool {
        self.from.is_none_or(|f| f <= now) && self.until.is_none_or(|u| now < u)
    }

    /// True when the window holds no instant at all (`from >= until`).
    pub fn is_empty(&self) -> bool {
        matches!((self.from, self.until), (Some(f), Some(u)) if f >= u)
    }
}

/// One cryptographic key. An interface may hold several to roll keys over
/// (RFC 2328 D.3): packets are sent with the key chosen by
/// [`AuthConfig::send_key`] at the wall-clock second of sending, and
/// received packets are matched by Key ID and accepted while that key's
/// accept window holds.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// Key ID carried in the header.
    pub id: u8,
    /// Digest algorithm.
    pub algorithm: Algorithm,
    /// Shared secret. Keyed MD5 uses the first 16 bytes (NUL-padded).
    pub secret: Vec<u8>,
    /// May be used for sending (within `send_window`).
    pub send: bool,
    /// Packets carrying this Key ID are accepted (within `accept_window`).
    pub accept: bool,
    /// When the key may be used for sending.
    pub send_window: Window,
    /// When packets signed with the key are accepted.
    pub accept_window: Window,
    /// HMAC key preparation (ignored for keyed MD5).
    pub hmac_key_prep: HmacKeyPrep,
}

impl Key {
    /// A key usable for sending and receiving, with default HMAC key
    /// preparation.
    pub fn new(id: u8, algorithm: Algorithm, secret: impl Into<Vec<u8>>) -> Self {
        Key {
            id,
            algorithm,
            secret: secret.into(),
            send: true,
            accept: true,
            send_window: Window::ALWAYS,
            accept_window: Window::ALWAYS,
            hmac_key_prep: HmacKeyPrep::default(),
        }
    }

    /// Sets when the key may be used for sending (Unix seconds).
    pub fn with_send_window(mut self, window: Window) -> Self {
        self.send_window = window;
        self
    }

    /// Sets when packets signed with the key are accepted (Unix seconds).
    pub fn with_accept_window(mut self, window: Window) -> Self {
        self.accept_window = window;
        self
    }

    /// Whether the key may sign a packet sent at `now` (Unix seconds).
    pub fn can_send(&self, now: u64) -> bool {
        self.send && self.send_window.contains(now)
    }

    /// Whether a packet carrying this Key ID is accepted at `now`.
    pub fn can_accept(&self, now: u64) -> bool {
        self.accept && self.accept_window.contains(now)
    }

    /// Sets whether the key may be used for sending.
    pub fn with_send(mut self, send: bool) -> Self {
        self.send = send;
        self
    }

    /// Sets whether packets signed with this key are accepted.
    pub fn with_accept(mut self, accept: bool) -> Self {
        self.accept = accept;
        self
    }

    /// Sets the HMAC key preparation.
    pub fn with_hmac_key_prep(mut self, prep: HmacKeyPrep) -> Self {
        self.hmac_key_prep = prep;
        self
    }
}

// The secret must not end up in logs.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .field("send", &self.send)
            .field("accept", &self.accept)
            .field("send_window", &self.send_window)
            .field("accept_window", &self.accept_window)
            .field("hmac_key_prep", &self.hmac_key_prep)
            .finish()
    }
}

/// Authentication configured on an interface (RFC 2328 D: one AuType per
/// network segment).
#[derive(Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// AuType 0.
    Null,
    /// AuType 1 with the 8-byte, NUL-padded password.
    Simple([u8; 8]),
    /// AuType 2.
    Cryptographic {
        /// Keys, oldest first. Sending uses the key [`AuthConfig::send_key`]
        /// picks; among keys equally recent, the last in this list.
        keys: Vec<Key>,
        /// Reject a sequence number equal to the last one accepted from the
        /// neighbour. RFC 2328 D.5.3 only rejects lower numbers; equal ones
        /// let a captured packet be replayed (see RFC 7474). Only set this
        /// when every peer increments per packet, as FRR and [`CryptoSeq`]
        /// do: BIRD reuses a number for packets sent within about a second.
        strict_sequence: bool,
    },
}

impl AuthConfig {
    /// Simple password authentication; the password is at most 8 bytes.
    pub fn simple(password: &str) -> Result<Self, ConfigError> {
        let bytes = password.as_bytes();
        if bytes.len() > 8 {
            return Err(ConfigError::PasswordTooLong(bytes.len()));
        }
        let mut field = [0u8; 8];
        for (dst, src) in field.iter_mut().zip(bytes) {
            *dst = *src;
        }
        Ok(AuthConfig::Simple(field))
    }

    /// Cryptographic authentication; Key IDs must be unique and every
    /// window must hold at least one second.
    pub fn cryptographic(keys: Vec<Key>, strict_sequence: bool) -> Result<Self, ConfigError> {
        for (i, key) in keys.iter().enumerate() {
            if keys.iter().skip(i + 1).any(|k| k.id == key.id) {
                return Err(ConfigError::DuplicateKeyId(key.id));
            }
            if key.send_window.is_empty() || key.accept_window.is_empty() {
                return Err(ConfigError::EmptyWindow(key.id));
            }
        }
        Ok(AuthConfig::Cryptographic {
            keys,
            strict_sequence,
        })
    }

    /// The AuType this configuration sends and expects.
    pub fn au_type(&self) -> u16 {
        match self {
            AuthConfig::Null => AUTYPE_NULL,
            AuthConfig::Simple(_) => AUTYPE_SIMPLE,
            AuthConfig::Cryptographic { .. } => AUTYPE_CRYPTOGRAPHIC,
        }
    }

    /// The key [`sign`] uses at `now` (Unix seconds).
    ///
    /// Of the keys whose send window holds `now`, the one that started
    /// sending most recently (RFC 2328 D.3: during a rollover the newest
    /// key is used; a window open at the start counts as the oldest), the
    /// last in the list among equals. When no key may send, the key whose
    /// send window ended last keeps signing: RFC 2328 D.3 forbids falling
    /// back to no authentication when the last key expires and treats that
    /// key as living on ([`AuthConfig::send_key_expired`] tells). None only
    /// when every key starts sending later (or none may send).
    pub fn send_key(&self, now: u64) -> Option<&Key> {
        let AuthConfig::Cryptographic { keys, .. } = self else {
            return None;
        };
        let newest =
            keys.iter()
                .filter(|k| k.can_send(now))
                .fold(None::<&Key>, |best, k| match best {
                    Some(b) if b.send_window.from > k.send_window.from => Some(b),
                    _ => Some(k),
                });
        newest.or_else(|| self.last_expired_send_key(now))
    }

    /// True when no key's send window holds `now` and [`sign`] uses the
    /// key that expired last (the operator should add a key).
    pub fn send_key_expired(&self, now: u64) -> bool {
        match self {
            AuthConfig::Cryptographic { keys, .. } => {
                !keys.iter().any(|k| k.can_send(now)) && self.last_expired_send_key(now).is_some()
            }
            _ => false,
        }
    }

    fn last_expired_send_key(&self, now: u64) -> Option<&Key> {
        let AuthConfig::Cryptographic { keys, .. } = self else {
            return None;
        };
        keys.iter()
            .filter(|k| k.send && k.send_window.until.is_some_and(|u| u <= now))
            .fold(None::<&Key>, |best, k| match best {
                Some(b) if b.send_window.until > k.send_window.until => Some(b),
                _ => Some(k),
            })
    }

    /// The spans of time from `now` on in which no key's send window is
    /// open, as `[from, until)` with `None` for "for ever": a key rollover
    /// whose windows leave a gap. (In a gap [`sign`] keeps using the key
    /// that expired last, or sends nothing before the first key starts.)
    pub fn send_gaps(&self, now: u64) -> Vec<(u64, Option<u64>)> {
        let AuthConfig::Cryptographic { keys, .. } = self else {
            return Vec::new();
        };
        let windows: Vec<Window> = keys
            .iter()
            .filter(|k| k.send)
            .map(|k| k.send_window)
            .collect();
        let mut gaps = Vec::new();
        let mut t = now;
        // Each pass moves `t` to the end of a window or the start of one
        // later than `t`, so there are at most two passes per window.
        for _ in 0..=2 * windows.len() {
            let covering = windows.iter().filter(|w| w.contains(t));
            let mut any = false;
            let mut reach = Some(t);
            for w in covering {
                any = true;
                reach = match (reach, w.until) {
                    (_, None) | (None, _) => None,
                    (Some(a), Some(b)) => Some(a.max(b)),
                };
            }
            if any {
                match reach {
                    None => return gaps,
                    Some(r) => t = r,
                }
                continue;
            }
            let next = windows
                .iter()
                .filter_map(|w| w.from.filter(|f| *f > t))
                .min();
            gaps.push((t, next));
            match next {
                None => return gaps,
                Some(n) => t = n,
            }
        }
        gaps
    }

    /// Number of bytes [`sign`] may append after the packet: the longest
    /// digest of the keys that may send, whichever [`AuthConfig::send_key`]
    /// picks, so that packets sized with it always fit.
    pub fn trailer_len(&self) -> usize {
        match self {
            AuthConfig::Cryptographic { keys, .. } => keys
                .iter()
                .filter(|k| k.send)
                .map(|k| k.algorithm.digest_len())
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }
}

// The password must not end up in logs.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthConfig::Null => f.write_str("Null"),
            AuthConfig::Simple(_) => f.write_str("Simple(<redacted>)"),
            AuthConfig::Cryptographic {
                keys,
                strict_sequence,
            } => f
                .debug_struct("Cryptographic")
                .field("keys", keys)
                .field("strict_sequence", strict_sequence)
                .finish(),
        }
    }
}

/// Unix seconds of a UTC calendar date and time (proleptic Gregorian
/// calendar), for key windows written as dates in configuration files.
/// None for an invalid date or time, or one before 1970. A leap second
/// (`second` 60) counts as the next second's start, as Unix time does.
pub fn unix_secs_from_utc(
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
) -> Option<u64> {
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days
        .checked_mul(86_400)?
        .checked_add(i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))?;
    u64::try_from(secs).ok()
}

/// The UTC calendar date and time of Unix seconds `secs`:
/// (year, month, day, hour, minute, second).
pub fn utc_from_unix_secs(secs: u64) -> (i64, u8, u8, u8, u8, u8) {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rest = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    // Each part is below 24 or 60, so the narrowing casts are exact.
    let part = |v: u64| u8::try_from(v).unwrap_or(0);
    (
        y,
        m,
        d,
        part(rest / 3600),
        part(rest / 60 % 60),
        part(rest % 60),
    )
}

/// Unix seconds as an RFC 3339 UTC date-time, e.g. `2026-12-05T10:00:00Z`.
pub fn format_utc(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_from_unix_secs(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid date. The year is counted from March
/// so that the leap day falls at its end; 400-year eras repeat exactly
/// (146,097 days).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let narrow = |v: i64| u8::try_from(v).unwrap_or(0);
    (year, narrow(month), narrow(day))
}

/// Invalid authentication configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A simple password longer than the 8-byte field.
    #[error("simple password is {0} bytes, at most 8 fit")]
    PasswordTooLong(usize),
    /// Two keys share a Key ID, so received packets would be ambiguous.
    #[error("key id {0} configured twice")]
    DuplicateKeyId(u8),
    /// A send or accept window that ends before it starts.
    #[error("key id {0}: a window ends before it starts")]
    EmptyWindow(u8),
}

/// Why a packet could not be signed or was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The packet's AuType differs from the interface's (RFC 2328 D.5).
    #[error("authentication type mismatch: expected {expected}, got {got}")]
    AuTypeMismatch {
        /// AuType configured here.
        expected: u16,
        /// AuType in the packet.
        got: u16,
    },
    /// Simple password differs (RFC 2328 D.5.2).
    #[error("simple password mismatch")]
    BadPassword,
    /// No key with the packet's Key ID (RFC 2328 D.5.3).
    #[error("unknown key id {0}")]
    UnknownKeyId(u8),
    /// The key exists but is not accepted now (its accept window is closed,
    /// e.g. retired during rollover).
    #[error("key id {0} is not accepted")]
    KeyNotAccepted(u8),
    /// Auth Data Len does not match the key's algorithm.
    #[error("key id {key_id}: auth data length {got}, expected {expected}")]
    BadDigestLength {
        /// Key ID in the packet.
        key_id: u8,
        /// Digest length of the configured key's algorithm.
        expected: u8,
        /// Auth Data Len in the packet.
        got: u8,
    },
    /// Fewer bytes than the header, the packet length or the digest need.
    #[error("packet truncated")]
    Truncated,
    /// The header's length field is below the header size or, when signing,
    /// differs from the buffer length.
    #[error("bad packet length field {field} (buffer {buffer} bytes)")]
    BadLength {
        /// Value of the length field.
        field: u16,
        /// Bytes available.
        buffer: usize,
    },
    /// Digest mismatch: wrong secret or altered packet (RFC 2328 D.5.3).
    #[error("digest mismatch for key id {key_id}")]
    DigestMismatch {
        /// Key ID in the packet.
        key_id: u8,
    },
    /// Sequence number below the last accepted one (RFC 2328 D.5.3).
    #[error("cryptographic sequence number {got} below last accepted {last}")]
    SequenceRegressed {
        /// Last sequence number accepted from this neighbour.
        last: u32,
        /// Sequence number in the packet.
        got: u32,
    },
    /// Sequence number equal to the last accepted one with
    /// `strict_sequence` set.
    #[error("cryptographic sequence number {0} repeated")]
    SequenceReplayed(u32),
    /// Standard checksum wrong (null and simple authentication).
    #[error("bad packet checksum")]
    BadChecksum,
    /// Signing: cryptographic authentication without a key that may send
    /// at this time (every key starts later, or none is marked `send`).
    #[error("no key is usable for sending")]
    NoSendKey,
}

impl AuthError {
    /// Short stable name for drop counters.
    pub const fn reason(&self) -> &'static str {
        match self {
            AuthError::AuTypeMismatch { .. } => "autype-mismatch",
            AuthError::BadPassword => "bad-password",
            AuthError::UnknownKeyId(_) => "unknown-key",
            AuthError::KeyNotAccepted(_) => "key-not-accepted",
            AuthError::BadDigestLength { .. } => "bad-digest-length",
            AuthError::Truncated => "truncated",
            AuthError::BadLength { .. } => "bad-length",
            AuthError::DigestMismatch { .. } => "digest-mismatch",
            AuthError::SequenceRegressed { .. } => "seq-regressed",
            AuthError::SequenceReplayed(_) => "seq-replayed",
            AuthError::BadChecksum => "bad-checksum",
            AuthError::NoSendKey => "no-send-key",
        }
    }
}

/// Source of outgoing cryptographic sequence numbers.
///
/// RFC 2328 D.3 only asks for non-decreasing numbers, but strictly
/// increasing ones let strict receivers reject replays (see RFC 7474).
/// Seeding from wall-clock seconds keeps the numbers ahead of what
/// neighbours saw before a restart, as long as the router sends at most one
/// packet per second on average over its lifetime; [`CryptoSeq::next_at`]
/// re-syncs with the clock on every packet so bursts are absorbed.
/// The number saturates at `u32::MAX` (year 2106); RFC 7474's 64-bit
/// numbers are the real fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptoSeq {
    next: u32,
}

impl CryptoSeq {
    /// Starts at the current Unix time in seconds (passed in: sans-IO).
    pub fn new(now_unix_secs: u32) -> Self {
        CryptoSeq {
            next: now_unix_secs,
        }
    }

    /// Next number: one more than the previous one.
    // The brief's name; it never ends, so it is not an Iterator.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u32 {
        let seq = self.next;
        self.next = seq.saturating_add(1);
        seq
    }

    /// Next number, but at least `now_unix_secs`, so the counter follows the
    /// clock when the router is idle (FRR does the same).
    pub fn next_at(&mut self, now_unix_secs: u32) -> u32 {
        let seq = self.next.max(now_unix_secs);
        self.next = seq.saturating_add(1);
        seq
    }
}

/// Per-neighbour receive state: the last cryptographic sequence number
/// accepted (RFC 2328 D.5.3 keeps it in the neighbour data structure, for
/// all Key IDs together). Start a fresh one when the neighbour is created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NeighborAuthState {
    last_seq: Option<u32>,
}

impl NeighborAuthState {
    /// No packet accepted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Last accepted sequence number, if any.
    pub fn last_seq(&self) -> Option<u32> {
        self.last_seq
    }
}

/// A packet that passed authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The header's packet length: parse `bytes[..packet_len]`.
    pub packet_len: usize,
    /// Bytes of cryptographic trailer after the packet (0 unless AuType 2).
    pub trailer_len: usize,
    /// Key ID (AuType 2 only).
    pub key_id: Option<u8>,
    /// Cryptographic sequence number (AuType 2 only).
    pub seq: Option<u32>,
}

/// RFC 1071 Internet checksum: one's complement of the one's complement sum
/// of the data as 16-bit big-endian words, an odd last byte padded with
/// zero.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    !crate::packet::fold(crate::packet::ones_complement_sum(bytes))
}

/// A computed digest, without heap allocation.
struct DigestBuf {
    bytes: [u8; MAX_DIGEST_LEN],
    len: usize,
}

impl DigestBuf {
    fn from_slice(src: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_DIGEST_LEN];
        for (dst, s) in bytes.iter_mut().zip(src) {
            *dst = *s;
        }
        DigestBuf {
            bytes,
            len: src.len().min(MAX_DIGEST_LEN),
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// Digest of `packet` (header with the cryptographic fields set and
/// checksum zero, plus body; `length` bytes) under `key`.
fn compute_digest(key: &Key, packet: &[u8]) -> DigestBuf {
    match key.algorithm {
        Algorithm::KeyedMd5 => keyed_md5(&key.secret, packet),
        Algorithm::HmacSha1 => hmac_apad::<Sha1>(&key.secret, key.hmac_key_prep, packet),
        Algorithm::HmacSha256 => hmac_apad::<Sha256>(&key.secret, key.hmac_key_prep, packet),
        Algorithm::HmacSha384 => hmac_apad::<Sha384>(&key.secret, key.hmac_key_prep, packet),
        Algorithm::HmacSha512 => hmac_apad::<Sha512>(&key.secret, key.hmac_key_prep, packet),
    }
}

/// RFC 2328 D.4.3 (6): MD5 over the packet followed by the key padded with
/// zeros or truncated to 16 bytes; the result replaces those 16 bytes.
fn keyed_md5(secret: &[u8], packet: &[u8]) -> DigestBuf {
    let mut key = [0u8; MD5_KEY_LEN];
    for (dst, src) in key.iter_mut().zip(secret) {
        *dst = *src;
    }
    let mut md5 = Md5::new();
    md5.update(packet);
    md5.update(key);
    DigestBuf::from_slice(&md5.finalize())
}

/// RFC 5709 section 3.3: HMAC over the packet followed by Apad (the trailer
/// "filled with Apad"), with the key prepared as `prep` says.
fn hmac_apad<D: EagerHash>(secret: &[u8], prep: HmacKeyPrep, packet: &[u8]) -> DigestBuf {
    // The HMAC key is exactly one hash block (B bytes), so the hmac crate
    // uses it as is and key preparation is entirely ours.
    let mut block = HmacKey::<Hmac<D>>::default();
    let digest_len = <D as Digest>::output_size();
    let hash_above = match prep {
        HmacKeyPrep::Rfc2104 => block.len(),
        HmacKeyPrep::Rfc5709 => digest_len,
    };
    let hashed;
    let prepared: &[u8] = if secret.len() > hash_above {
        hashed = D::digest(secret);
        &hashed
    } else {
        secret
    };
    // Zero padding up to B: RFC 5709 pads Ko to L and HMAC pads to B,
    // which comes to the same block.
    for (dst, src) in block.iter_mut().zip(prepared) {
        *dst = *src;
    }
    let mut mac = <Hmac<D> as KeyInit>::new(&block);
    Mac::update(&mut mac, packet);
    for _ in 0..digest_len / APAD_WORD.len() {
        Mac::update(&mut mac, &APAD_WORD);
    }
    DigestBuf::from_slice(&mac.finalize().into_bytes())
}

/// Compares digests in time independent of where they differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn read_u16(hdr: &[u8; HEADER_LEN], off: usize) -> u16 {
    match hdr.get(off..off + 2) {
        Some([a, b]) => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

fn write_bytes(hdr: &mut [u8; HEADER_LEN], off: usize, value: &[u8]) {
    if let Some(dst) = hdr.get_mut(off..off + value.len()) {
        dst.copy_from_slice(value);
    }
}

/// Finishes an encoded OSPF packet for sending.
///
/// `packet` holds the header and body; its length field must equal the
/// buffer length (append LLS data only after signing). `sign` then sets
/// AuType and the authentication field and:
///
/// * null and simple (RFC 2328 D.4.1, D.4.2): writes the standard checksum,
///   computed over the packet without the 8-byte authentication field;
/// * cryptographic (RFC 2328 D.4.3, RFC 5709 section 3.3): zeroes the
///   checksum, writes Key ID, Auth Data Len and `seq` (ignored otherwise)
///   for the key [`AuthConfig::send_key`] picks at `now` (Unix seconds),
///   and appends the digest after the packet. The length field does not
///   count the digest.
pub fn sign<B: BufMut + AsMut<[u8]>>(
    config: &AuthConfig,
    packet: &mut B,
    seq: u32,
    now: u64,
) -> Result<(), AuthError> {
    let buf = packet.as_mut();
    let buffer = buf.len();
    let hdr: &mut [u8; HEADER_LEN] = buf
        .get_mut(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(AuthError::Truncated)?;
    let field = read_u16(hdr, OFF_LENGTH);
    if usize::from(field) != buffer {
        return Err(AuthError::BadLength { field, buffer });
    }

    let digest = match config {
        AuthConfig::Null => {
            write_bytes(hdr, OFF_AUTYPE, &AUTYPE_NULL.to_be_bytes());
            // D.4.1: the field is not examined; send zeros.
            write_bytes(hdr, OFF_AUTH, &[0; 8]);
            None
        }
        AuthConfig::Simple(password) => {
            write_bytes(hdr, OFF_AUTYPE, &AUTYPE_SIMPLE.to_be_bytes());
            write_bytes(hdr, OFF_AUTH, password);
            None
        }
        AuthConfig::Cryptographic { .. } => {
            let key = config.send_key(now).ok_or(AuthError::NoSendKey)?;
            // D.4.3: checksum not calculated (zero), crypto fields set.
            write_bytes(hdr, OFF_CHECKSUM, &[0, 0]);
            write_bytes(hdr, OFF_AUTYPE, &AUTYPE_CRYPTOGRAPHIC.to_be_bytes());
            write_bytes(hdr, OFF_AUTH, &[0, 0]);
            let data_len = u8::try_from(key.algorithm.digest_len()).unwrap_or(u8::MAX);
            write_bytes(hdr, OFF_KEY_ID, &[key.id, data_len]);
            write_bytes(hdr, OFF_SEQ, &seq.to_be_bytes());
            Some(compute_digest(key, buf))
        }
    };

    match digest {
        Some(digest) => packet.put_slice(digest.as_slice()),
        None => {
            let buf = packet.as_mut();
            let checksum = crate::packet::compute_checksum(buf);
            if let Some(dst) = buf.get_mut(OFF_CHECKSUM..OFF_AUTYPE) {
                dst.copy_from_slice(&checksum.to_be_bytes());
            }
        }
    }
    Ok(())
}

/// Authenticates a received OSPF packet (RFC 2328 D.5, RFC 5709 section 3)
/// and, for cryptographic authentication, advances `neighbor`'s sequence
/// state, but only once the digest has verified. A packet's Key ID must name
/// a key whose accept window holds `now` (Unix seconds).
///
/// `bytes` starts at the OSPF header and may extend past the packet and its
/// trailer (e.g. LLS data). For null and simple authentication the standard
/// checksum is verified too, so an `Ok` is the packet's only integrity
/// verdict. The sequence number is checked before the digest, as RFC 2328
/// D.5.3 orders it, so replays cost no hashing.
pub fn verify(
    config: &AuthConfig,
    bytes: &[u8],
    neighbor: &mut NeighborAuthState,
    now: u64,
) -> Result<Verified, AuthError> {
    let hdr: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(AuthError::Truncated)?;
    let field = read_u16(hdr, OFF_LENGTH);
    let packet_len = usize::from(field);
    if packet_len < HEADER_LEN {
        return Err(AuthError::BadLength {
            field,
            buffer: bytes.len(),
        });
    }
    let packet = bytes.get(..packet_len).ok_or(AuthError::Truncated)?;

    let got = read_u16(hdr, OFF_AUTYPE);
    let expected = config.au_type();
    if got != expected {
        return Err(AuthError::AuTypeMismatch { expected, got });
    }

    match config {
        AuthConfig::Null => {
            check_checksum(packet)?;
            Ok(Verified {
                packet_len,
                trailer_len: 0,
                key_id: None,
                seq: None,
            })
        }
        AuthConfig::Simple(password) => {
            let field = hdr.get(OFF_AUTH..HEADER_LEN).unwrap_or(&[]);
            if !ct_eq(field, password) {
                return Err(AuthError::BadPassword);
            }
            check_checksum(packet)?;
            Ok(Verified {
                packet_len,
                trailer_len: 0,
                key_id: None,
                seq: None,
            })
        }
        AuthConfig::Cryptographic {
            keys,
            strict_sequence,
        } => {
            let [key_id, data_len] = [hdr[OFF_KEY_ID], hdr[OFF_AUTH_DATA_LEN]];
            let seq = u32::from_be_bytes([
                hdr[OFF_SEQ],
                hdr[OFF_SEQ + 1],
                hdr[OFF_SEQ + 2],
                hdr[OFF_SEQ + 3],
            ]);
            let key = keys
                .iter()
                .find(|k| k.id == key_id)
                .ok_or(AuthError::UnknownKeyId(key_id))?;
            if !key.can_accept(now) {
                return Err(AuthError::KeyNotAccepted(key_id));
            }
            let digest_len = key.algorithm.digest_len();
            if usize::from(data_len) != digest_len {
                return Err(AuthError::BadDigestLength {
                    key_id,
                    expected: u8::try_from(digest_len).unwrap_or(u8::MAX),
                    got: data_len,
                });
            }
            let received = bytes
                .get(packet_len..packet_len + digest_len)
                .ok_or(AuthError::Truncated)?;
            if let Some(last) = neighbor.last_seq {
                if seq < last {
                    return Err(AuthError::SequenceRegressed { last, got: seq });
                }
                if seq == last && *strict_sequence {
                    return Err(AuthError::SequenceReplayed(seq));
                }
            }
            let computed = compute_digest(key, packet);
            if !ct_eq(computed.as_slice(), received) {
                return Err(AuthError::DigestMismatch { key_id });
            }
            neighbor.last_seq = Some(seq);
            Ok(Verified {
                packet_len,
                trailer_len: digest_len,
                key_id: Some(key_id),
                seq: Some(seq),
            })
        }
    }
}

/// RFC 1071 verification: the sum over the covered data including the
/// checksum is all ones (either representation of zero passes).
fn check_checksum(packet: &[u8]) -> Result<(), AuthError> {
    if crate::packet::checksum_ok(packet) {
        Ok(())
    } else {
        Err(AuthError::BadChecksum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use proptest::prelude::*;

    /// The wall clock of tests without key windows (any value would do).
    const NOW: u64 = 1_800_000_000;

    const ALGORITHMS: [Algorithm; 5] = [
        Algorithm::KeyedMd5,
        Algorithm::HmacSha1,
        Algorithm::HmacSha256,
        Algorithm::HmacSha384,
        Algorithm::HmacSha512,
    ];

    /// An OSPF packet as the encoder hands it to `sign`: version 2, the
    /// given type, length = 24 + body, router ID 10.0.0.1, area 0.0.0.1,
    /// checksum/AuType/auth left zero.
    fn unsigned(packet_type: u8, body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(HEADER_LEN + body.len()).unwrap();
        let mut p = vec![2, packet_type];
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 1]);
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(body);
        p
    }

    /// A Hello body: mask 255.255.255.0, hello 10, options E, priority 1,
    /// dead 40, DR 10.0.0.1, BDR 0, one neighbour 10.0.0.2.
    fn hello_body() -> Vec<u8> {
        vec![
            255, 255, 255, 0, 0, 10, 0x02, 1, 0, 0, 0, 40, 10, 0, 0, 1, 0, 0, 0, 0, 10, 0, 0, 2,
        ]
    }

    fn crypto(keys: Vec<Key>) -> AuthConfig {
        AuthConfig::cryptographic(keys, false).unwrap()
    }

    fn signed(config: &AuthConfig, body: &[u8], seq: u32) -> Vec<u8> {
        let mut p = unsigned(1, body);
        sign(config, &mut p, seq, NOW).unwrap();
        p
    }

    /// HMAC (RFC 2104) written out from the hash primitive, independent of
    /// the hmac crate: H((K ^ opad) || H((K ^ ipad) || msg)), K zero-padded
    /// to the block size.
    fn manual_hmac<D: Digest>(block_len: usize, key: &[u8], msg: &[u8]) -> Vec<u8> {
        assert!(key.len() <= block_len, "caller prepares long keys");
        let mut k = key.to_vec();
        k.resize(block_len, 0);
        let mut inner = D::new();
        inner.update(k.iter().map(|b| b ^ 0x36).collect::<Vec<_>>());
        inner.update(msg);
        let inner = inner.finalize();
        let mut outer = D::new();
        outer.update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<_>>());
        outer.update(inner);
        outer.finalize().to_vec()
    }

    fn apad(len: usize) -> Vec<u8> {
        [0x87, 0x8f, 0xe1, 0xf3].repeat(len / 4)
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // ----- checksum -----

    #[test]
    fn internet_checksum_rfc1071_example() {
        // RFC 1071 section 3: these bytes sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
        // An odd trailing byte counts as the high half of a word.
        assert_eq!(internet_checksum(&[0x12]), !0x1200);
        assert_eq!(internet_checksum(&[]), 0xffff);
        // Carries wrap around.
        assert_eq!(internet_checksum(&[0xff, 0xff, 0x00, 0x02]), !0x0002);
    }

    #[test]
    fn simple_checksum_excludes_auth_field() {
        let config = AuthConfig::simple("secret").unwrap();
        let p = signed(&config, &hello_body(), 0);
        // Recompute the way RFC 2328 D.4.2 describes: checksum and
        // authentication fields zeroed.
        let mut zeroed = p.clone();
        zeroed[12..14].fill(0);
        zeroed[16..24].fill(0);
        let expected = internet_checksum(&zeroed);
        assert_eq!(u16::from_be_bytes([p[12], p[13]]), expected);
        assert_eq!(&p[14..16], &[0, 1]);
        assert_eq!(&p[16..24], b"secret\0\0");
        assert_ne!(expected, 0);
    }

    #[test]
    fn null_sign_sets_checksum_and_autype() {
        let mut p = unsigned(1, &hello_body());
        p[16..24].copy_from_slice(b"garbage!");
        p[14..16].copy_from_slice(&[0, 7]);
        sign(&AuthConfig::Null, &mut p, 0, NOW).unwrap();
        assert_eq!(&p[14..24], &[0; 10]);
        let mut zeroed = p.clone();
        zeroed[12..14].fill(0);
        assert_eq!(
            u16::from_be_bytes([p[12], p[13]]),
            internet_checksum(&zeroed)
        );
    }

    #[test]
    fn checksum_negative_zero_accepted() {
        // 0x0000 and 0xffff are both zero in one's complement; a sender
        // using either must pass. Find a body whose checksum comes out 0.
        let config = AuthConfig::Null;
        for x in 0..=u16::MAX {
            let body = x.to_be_bytes();
            let p = signed(&config, &body, 0);
            if p[12..14] == [0, 0] {
                let mut q = p.clone();
                q[12..14].copy_from_slice(&[0xff, 0xff]);
                let mut st = NeighborAuthState::new();
                assert!(verify(&config, &p, &mut st, NOW).is_ok());
                assert!(verify(&config, &q, &mut st, NOW).is_ok());
                return;
            }
        }
        panic!("no body with checksum 0 found");
    }

    // ----- round trips -----

    #[test]
    fn round_trip_every_mode() {
        let mut configs = vec![AuthConfig::Null, AuthConfig::simple("pw").unwrap()];
        for alg in ALGORITHMS {
            for prep in [HmacKeyPrep::Rfc2104, HmacKeyPrep::Rfc5709] {
                for secret in [&b"k"[..], &[0x5a; 40], &[0xa5; 200]] {
                    configs.push(crypto(vec![
                        Key::new(3, alg, secret).with_hmac_key_prep(prep)
                    ]));
                }
            }
        }
        for config in &configs {
            let body = hello_body();
            let p = signed(config, &body, 1000);
            let trailer = config.trailer_len();
            assert_eq!(p.len(), HEADER_LEN + body.len() + trailer);
            let mut st = NeighborAuthState::new();
            let v = verify(config, &p, &mut st, NOW).unwrap();
            assert_eq!(v.packet_len, HEADER_LEN + body.len());
            assert_eq!(v.trailer_len, trailer);
            if trailer > 0 {
                assert_eq!(v.key_id, Some(3));
                assert_eq!(v.seq, Some(1000));
                assert_eq!(st.last_seq(), Some(1000));
                assert_eq!(u16::from_be_bytes([p[14], p[15]]), AUTYPE_CRYPTOGRAPHIC);
            } else {
                assert_eq!(v.key_id, None);
                assert_eq!(v.seq, None);
                assert_eq!(st.last_seq(), None);
            }
        }
    }

    #[test]
    fn sign_works_on_bytes_mut_and_trailing_data_is_ignored() {
        let config = crypto(vec![Key::new(1, Algorithm::HmacSha256, "s")]);
        let mut p = BytesMut::from(&unsigned(1, &hello_body())[..]);
        sign(&config, &mut p, 5, NOW).unwrap();
        assert_eq!(p.len(), 48 + 32);
        // An LLS block (RFC 5613) after the trailer does not disturb it.
        let mut with_lls = p.to_vec();
        with_lls.extend_from_slice(&[0xff, 0xf6, 0, 3, 0, 1, 0, 4, 0, 0, 0, 1]);
        let v = verify(&config, &with_lls, &mut NeighborAuthState::new(), NOW).unwrap();
        assert_eq!(v.packet_len + v.trailer_len, 80);
    }

    #[test]
    fn sign_rejects_bad_buffers() {
        let config = AuthConfig::Null;
        let mut short = vec![2, 1, 0, 20];
        assert_eq!(sign(&config, &mut short, 0, NOW), Err(AuthError::Truncated));
        // Length field disagrees with the buffer.
        let mut p = unsigned(1, &hello_body());
        p.push(0);
        assert_eq!(
            sign(&config, &mut p, 0, NOW),
            Err(AuthError::BadLength {
                field: 48,
                buffer: 49
            })
        );
        let no_send = crypto(vec![Key::new(1, Algorithm::KeyedMd5, "a").with_send(false)]);
        let mut p = unsigned(1, &hello_body());
        assert_eq!(sign(&no_send, &mut p, 0, NOW), Err(AuthError::NoSendKey));
        assert_eq!(
            p,
            unsigned(1, &hello_body()),
            "failed sign leaves the packet alone"
        );
    }

    // ----- tampering -----

    /// Flips the low bit of every byte of a signed packet and checks the
    /// verdict each time against what the byte means.
    fn tamper_each_byte(config: &AuthConfig, expect: impl Fn(usize, &[u8]) -> Option<AuthError>) {
        let p = signed(config, &hello_body(), 77);
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 0x01;
            let got = verify(config, &q, &mut NeighborAuthState::new(), NOW);
            match expect(i, &q) {
                None => assert!(got.is_ok(), "byte {i}: {got:?}"),
                Some(e) => assert_eq!(got, Err(e), "byte {i}"),
            }
        }
    }

    #[test]
    fn tampering_null() {
        tamper_each_byte(&AuthConfig::Null, |i, q| match i {
            // 48 -> 49 (or 304): longer than the buffer.
            2 | 3 => Some(AuthError::Truncated),
            14 | 15 => Some(AuthError::AuTypeMismatch {
                expected: 0,
                got: u16::from_be_bytes([q[14], q[15]]),
            }),
            // RFC 2328 D.5.1: the authentication field is not examined.
            16..=23 => None,
            _ => Some(AuthError::BadChecksum),
        });
    }

    #[test]
    fn tampering_simple() {
        let config = AuthConfig::simple("labpass").unwrap();
        tamper_each_byte(&config, |i, q| match i {
            2 | 3 => Some(AuthError::Truncated),
            14 | 15 => Some(AuthError::AuTypeMismatch {
                expected: 1,
                got: u16::from_be_bytes([q[14], q[15]]),
            }),
            16..=23 => Some(AuthError::BadPassword),
            _ => Some(AuthError::BadChecksum),
        });
    }

    #[test]
    fn tampering_cryptographic() {
        for alg in ALGORITHMS {
            let len = alg.digest_len();
            let config = crypto(vec![Key::new(9, alg, "tamper")]);
            tamper_each_byte(&config, |i, q| match i {
                // 48 -> 49 (or 304): the digest would end past the buffer.
                2 | 3 => Some(AuthError::Truncated),
                14 | 15 => Some(AuthError::AuTypeMismatch {
                    expected: 2,
                    got: u16::from_be_bytes([q[14], q[15]]),
                }),
                18 => Some(AuthError::UnknownKeyId(8)),
                19 => Some(AuthError::BadDigestLength {
                    key_id: 9,
                    expected: u8::try_from(len).unwrap(),
                    got: u8::try_from(len).unwrap() ^ 1,
                }),
                // Header (including the checksum field and the reserved
                // bytes 16-17), body and digest are all covered.
                _ => Some(AuthError::DigestMismatch { key_id: 9 }),
            });
        }
    }

    #[test]
    fn truncated_digest_and_bad_length() {
        let config = crypto(vec![Key::new(1, Algorithm::HmacSha512, "x")]);
        let p = signed(&config, &hello_body(), 1);
        let mut st = NeighborAuthState::new();
        assert_eq!(
            verify(&config, &p[..p.len() - 1], &mut st, NOW),
            Err(AuthError::Truncated)
        );
        assert_eq!(
            verify(&config, &p[..23], &mut st, NOW),
            Err(AuthError::Truncated)
        );
        let mut q = p.clone();
        q[2..4].copy_from_slice(&[0, 20]);
        assert_eq!(
            verify(&config, &q, &mut st, NOW),
            Err(AuthError::BadLength {
                field: 20,
                buffer: p.len()
            })
        );
        assert_eq!(st.last_seq(), None);
    }

    // ----- configuration mismatches -----

    #[test]
    fn wrong_key_id_secret_autype_password() {
        let body = hello_body();
        let sender = crypto(vec![Key::new(1, Algorithm::HmacSha256, "right")]);
        let p = signed(&sender, &body, 10);
        let mut st = NeighborAuthState::new();

        let other_id = crypto(vec![Key::new(2, Algorithm::HmacSha256, "right")]);
        assert_eq!(
            verify(&other_id, &p, &mut st, NOW),
            Err(AuthError::UnknownKeyId(1))
        );

        let other_secret = crypto(vec![Key::new(1, Algorithm::HmacSha256, "wrong")]);
        assert_eq!(
            verify(&other_secret, &p, &mut st, NOW),
            Err(AuthError::DigestMismatch { key_id: 1 })
        );

        let other_alg = crypto(vec![Key::new(1, Algorithm::KeyedMd5, "right")]);
        assert_eq!(
            verify(&other_alg, &p, &mut st, NOW),
            Err(AuthError::BadDigestLength {
                key_id: 1,
                expected: 16,
                got: 32
            })
        );

        // Same secret, other key preparation: identical for short keys...
        let prep =
            crypto(vec![Key::new(1, Algorithm::HmacSha256, "right")
                .with_hmac_key_prep(HmacKeyPrep::Rfc5709)]);
        assert!(verify(&prep, &p, &mut NeighborAuthState::new(), NOW).is_ok());
        // ...but not for keys between L and B bytes.
        let long = [7u8; 40];
        let p2104 = signed(
            &crypto(vec![Key::new(1, Algorithm::HmacSha256, long)]),
            &body,
            1,
        );
        let r5709 = crypto(vec![
            Key::new(1, Algorithm::HmacSha256, long).with_hmac_key_prep(HmacKeyPrep::Rfc5709)
        ]);
        assert_eq!(
            verify(&r5709, &p2104, &mut NeighborAuthState::new(), NOW),
            Err(AuthError::DigestMismatch { key_id: 1 })
        );

        assert_eq!(
            verify(&AuthConfig::Null, &p, &mut st, NOW),
            Err(AuthError::AuTypeMismatch {
                expected: 0,
                got: 2
            })
        );
        let simple = AuthConfig::simple("right").unwrap();
        assert_eq!(
            verify(&simple, &p, &mut st, NOW),
            Err(AuthError::AuTypeMismatch {
                expected: 1,
                got: 2
            })
        );
        let ps = signed(&simple, &body, 0);
        assert_eq!(
            verify(&sender, &ps, &mut st, NOW),
            Err(AuthError::AuTypeMismatch {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            verify(&AuthConfig::simple("wrong").unwrap(), &ps, &mut st, NOW),
            Err(AuthError::BadPassword)
        );
        // A password differing only after a prefix still fails.
        assert_eq!(
            verify(&AuthConfig::simple("right1").unwrap(), &ps, &mut st, NOW),
            Err(AuthError::BadPassword)
        );
        assert_eq!(st.last_seq(), None, "no failure advanced the state");
    }

    #[test]
    fn config_validation() {
        assert_eq!(
            AuthConfig::simple("123456789"),
            Err(ConfigError::PasswordTooLong(9))
        );
        assert_eq!(
            AuthConfig::simple("12345678"),
            Ok(AuthConfig::Simple(*b"12345678"))
        );
        assert_eq!(
            AuthConfig::simple("ab"),
            Ok(AuthConfig::Simple(*b"ab\0\0\0\0\0\0"))
        );
        assert_eq!(
            AuthConfig::cryptographic(
                vec![
                    Key::new(1, Algorithm::KeyedMd5, "a"),
                    Key::new(2, Algorithm::KeyedMd5, "b"),
                    Key::new(1, Algorithm::HmacSha1, "c"),
                ],
                false
            ),
            Err(ConfigError::DuplicateKeyId(1))
        );
        assert_eq!(AuthConfig::Null.trailer_len(), 0);
        assert_eq!(
            crypto(vec![Key::new(1, Algorithm::HmacSha384, "a")]).trailer_len(),
            48
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = crypto(vec![Key::new(1, Algorithm::KeyedMd5, "hunter2")]);
        let s = format!("{config:?}");
        assert!(!s.contains("hunter2") && !s.contains("104, 117"), "{s}");
        assert!(s.contains("redacted"));
        let s = format!("{:?}", AuthConfig::simple("hunter2").unwrap());
        assert!(!s.contains("hunter2") && !s.contains("104"), "{s}");
    }

    #[test]
    fn error_reasons_are_distinct() {
        let errors = [
            AuthError::AuTypeMismatch {
                expected: 0,
                got: 1,
            },
            AuthError::BadPassword,
            AuthError::UnknownKeyId(1),
            AuthError::KeyNotAccepted(1),
            AuthError::BadDigestLength {
                key_id: 1,
                expected: 16,
                got: 20,
            },
            AuthError::Truncated,
            AuthError::BadLength {
                field: 0,
                buffer: 0,
            },
            AuthError::DigestMismatch { key_id: 1 },
            AuthError::SequenceRegressed { last: 2, got: 1 },
            AuthError::SequenceReplayed(1),
            AuthError::BadChecksum,
            AuthError::NoSendKey,
        ];
        let mut reasons: Vec<_> = errors.iter().map(AuthError::reason).collect();
        assert!(reasons.contains(&"digest-mismatch"));
        assert!(reasons.contains(&"seq-regressed"));
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), errors.len());
    }

    // ----- sequence numbers -----

    #[test]
    fn sequence_numbers() {
        let key = Key::new(1, Algorithm::HmacSha1, "seq");
        let relaxed = crypto(vec![key.clone()]);
        let strict = AuthConfig::cryptographic(vec![key], true).unwrap();
        let body = hello_body();
        let p100 = signed(&relaxed, &body, 100);
        let p99 = signed(&relaxed, &body, 99);
        let p101 = signed(&relaxed, &body, 101);

        let mut st = NeighborAuthState::new();
        assert!(verify(&relaxed, &p100, &mut st, NOW).is_ok());
        assert_eq!(
            verify(&relaxed, &p99, &mut st, NOW),
            Err(AuthError::SequenceRegressed { last: 100, got: 99 })
        );
        // RFC 2328 D.5.3: equal is accepted by default...
        assert!(verify(&relaxed, &p100, &mut st, NOW).is_ok());
        // ...and rejected in strict mode.
        assert_eq!(
            verify(&strict, &p100, &mut st, NOW),
            Err(AuthError::SequenceReplayed(100))
        );
        assert!(verify(&strict, &p101, &mut st, NOW).is_ok());
        assert_eq!(st.last_seq(), Some(101));

        // A forged packet with a high number does not advance the state.
        let mut forged = signed(&relaxed, &body, 5000);
        let last = forged.len() - 1;
        forged[last] ^= 0x80;
        assert_eq!(
            verify(&relaxed, &forged, &mut st, NOW),
            Err(AuthError::DigestMismatch { key_id: 1 })
        );
        assert_eq!(st.last_seq(), Some(101));
        assert!(verify(&strict, &signed(&relaxed, &body, 102), &mut st, NOW).is_ok());

        // State is per neighbour: a fresh neighbour accepts a low number.
        assert!(verify(&strict, &p99, &mut NeighborAuthState::new(), NOW).is_ok());
    }

    #[test]
    fn crypto_seq_strictly_increases() {
        let mut seq = CryptoSeq::new(1_700_000_000);
        let a = seq.next();
        let b = seq.next();
        assert_eq!(a, 1_700_000_000);
        assert!(b > a);
        // Same second: still increasing.
        let c = seq.next_at(1_700_000_000);
        assert!(c > b);
        // The clock jumps ahead: follow it.
        assert_eq!(seq.next_at(1_800_000_000), 1_800_000_000);
        // The clock steps back: keep increasing.
        assert_eq!(seq.next_at(5), 1_800_000_001);
        let mut end = CryptoSeq::new(u32::MAX - 1);
        assert_eq!(end.next(), u32::MAX - 1);
        assert_eq!(end.next(), u32::MAX);
        assert_eq!(end.next(), u32::MAX, "saturates rather than wrapping to 0");
    }

    // ----- key rollover -----

    #[test]
    fn key_rollover() {
        let body = hello_body();
        let k1 = Key::new(1, Algorithm::KeyedMd5, "old-key");
        let k2 = Key::new(2, Algorithm::HmacSha256, "new-key");

        // A router not yet upgraded sends with key 1.
        let old_router = crypto(vec![k1.clone()]);
        // A router mid-rollover has both; the newest send key is used.
        let mid = crypto(vec![k1.clone(), k2.clone()]);
        assert_eq!(mid.send_key(NOW).map(|k| k.id), Some(2));
        // Key 2 configured but not yet sent with: key 1 is used.
        let staged = crypto(vec![k1.clone(), k2.clone().with_send(false)]);
        assert_eq!(staged.send_key(NOW).map(|k| k.id), Some(1));

        let from_old = signed(&old_router, &body, 1);
        let from_mid = signed(&mid, &body, 2);
        assert_eq!(from_mid[18], 2);
        let mut st = NeighborAuthState::new();
        assert_eq!(
            verify(&mid, &from_old, &mut st, NOW).unwrap().key_id,
            Some(1)
        );
        assert_eq!(
            verify(&mid, &from_mid, &mut st, NOW).unwrap().key_id,
            Some(2)
        );
        assert_eq!(
            verify(&staged, &signed(&staged, &body, 3), &mut st, NOW)
                .unwrap()
                .key_id,
            Some(1)
        );

        // After rollover key 1 is retired: no longer accepted.
        let done = crypto(vec![k1.with_send(false).with_accept(false), k2]);
        assert_eq!(
            verify(&done, &signed(&old_router, &body, 4), &mut st, NOW),
            Err(AuthError::KeyNotAccepted(1))
        );
        assert!(verify(&done, &signed(&done, &body, 5), &mut st, NOW).is_ok());
    }

    // ----- key windows (RFC 2328 D.3) -----

    fn send_id(config: &AuthConfig, now: u64) -> Option<u8> {
        config.send_key(now).map(|k| k.id)
    }

    #[test]
    fn windows_include_from_and_exclude_until() {
        let w = Window::new(Some(10), Some(20));
        assert!(!w.contains(9));
        assert!(w.contains(10));
        assert!(w.contains(19));
        assert!(!w.contains(20));
        assert!(Window::ALWAYS.contains(0) && Window::ALWAYS.contains(u64::MAX));
        assert!(Window::new(None, Some(1)).contains(0));
        assert!(!Window::new(Some(1), None).contains(0));
        assert!(Window::new(Some(5), Some(5)).is_empty());
        assert!(!Window::new(Some(5), None).is_empty());
        assert_eq!(
            AuthConfig::cryptographic(
                vec![Key::new(4, Algorithm::KeyedMd5, "k")
                    .with_accept_window(Window::new(Some(9), Some(3)))],
                false
            ),
            Err(ConfigError::EmptyWindow(4))
        );
    }

    #[test]
    fn send_key_is_the_most_recently_started_at_each_edge() {
        let old =
            Key::new(1, Algorithm::KeyedMd5, "old").with_send_window(Window::new(None, Some(1000)));
        // Listed before key 2 although it starts later: order does not
        // matter between keys with different starts.
        let brief = Key::new(3, Algorithm::HmacSha256, "brief")
            .with_send_window(Window::new(Some(1500), Some(2000)));
        let new =
            Key::new(2, Algorithm::KeyedMd5, "new").with_send_window(Window::new(Some(1000), None));
        let config = crypto(vec![old, brief, new]);
        for (now, want) in [
            (0, 1),
            (999, 1),
            (1000, 2),
            (1499, 2),
            (1500, 3),
            (1999, 3),
            (2000, 2),
        ] {
            assert_eq!(send_id(&config, now), Some(want), "at {now}");
            assert!(!config.send_key_expired(now));
            // The packet carries the chosen Key ID and verifies.
            let mut p = unsigned(1, &hello_body());
            sign(&config, &mut p, 7, now).unwrap();
            assert_eq!(p[18], want, "at {now}");
            let v = verify(&config, &p, &mut NeighborAuthState::new(), now).unwrap();
            assert_eq!(v.key_id, Some(want));
        }
        // Keys without a start are the oldest; among equals the last wins,
        // and a key not marked send never signs.
        let a = Key::new(1, Algorithm::KeyedMd5, "a");
        let b = Key::new(2, Algorithm::KeyedMd5, "b");
        let c = Key::new(3, Algorithm::KeyedMd5, "c").with_send(false);
        assert_eq!(send_id(&crypto(vec![a.clone(), b.clone(), c]), 5), Some(2));
        assert_eq!(send_id(&crypto(vec![b, a]), 5), Some(1));
    }

    #[test]
    fn when_every_send_window_has_closed_the_last_to_close_signs_on() {
        let k1 =
            Key::new(1, Algorithm::KeyedMd5, "a").with_send_window(Window::new(None, Some(100)));
        let k2 = Key::new(2, Algorithm::KeyedMd5, "b")
            .with_send_window(Window::new(Some(50), Some(120)));
        let config = crypto(vec![k2, k1]);
        assert_eq!(send_id(&config, 110), Some(2));
        assert!(!config.send_key_expired(110));
        assert_eq!(
            send_id(&config, 120),
            Some(2),
            "RFC 2328 D.3: no fallback to none"
        );
        assert!(config.send_key_expired(120));
        assert!(config.send_key_expired(1_000_000));

        // Before the first key starts nothing may sign.
        let later =
            crypto(vec![Key::new(5, Algorithm::HmacSha1, "l")
                .with_send_window(Window::new(Some(200), None))]);
        assert_eq!(send_id(&later, 199), None);
        assert!(!later.send_key_expired(199));
        let mut p = unsigned(1, &hello_body());
        assert_eq!(sign(&later, &mut p, 1, 199), Err(AuthError::NoSendKey));
        assert!(sign(&later, &mut p, 1, 200).is_ok());
    }

    #[test]
    fn verify_accepts_a_key_only_inside_its_accept_window() {
        let retiring = Key::new(1, Algorithm::KeyedMd5, "old")
            .with_accept_window(Window::new(None, Some(105)));
        let coming = Key::new(2, Algorithm::HmacSha256, "new")
            .with_accept_window(Window::new(Some(100), None));
        let receiver = crypto(vec![retiring.clone(), coming.clone()]);
        let from_old = signed(&crypto(vec![retiring]), &hello_body(), 1);
        let from_new = signed(&crypto(vec![coming]), &hello_body(), 2);
        let check = |p: &[u8], now| verify(&receiver, p, &mut NeighborAuthState::new(), now);
        assert_eq!(check(&from_old, 104).unwrap().key_id, Some(1));
        assert_eq!(check(&from_old, 105), Err(AuthError::KeyNotAccepted(1)));
        assert_eq!(check(&from_new, 99), Err(AuthError::KeyNotAccepted(2)));
        assert_eq!(check(&from_new, 100).unwrap().key_id, Some(2));
        // A refused packet leaves the sequence state alone.
        let mut st = NeighborAuthState::new();
        assert!(verify(&receiver, &from_old, &mut st, 200).is_err());
        assert_eq!(st.last_seq(), None);
    }

    #[test]
    fn send_gaps_from_now_on() {
        let key = |id, from, until| {
            Key::new(id, Algorithm::KeyedMd5, "k").with_send_window(Window::new(from, until))
        };
        let gaps = |keys: Vec<Key>, now| crypto(keys).send_gaps(now);
        assert!(gaps(vec![key(1, None, None)], 0).is_empty());
        // Back to back: no gap.
        assert!(gaps(vec![key(1, None, Some(100)), key(2, Some(100), None)], 50).is_empty());
        // Overlapping chain, in any order.
        let chain = vec![
            key(3, Some(150), None),
            key(1, None, Some(100)),
            key(2, Some(90), Some(200)),
        ];
        assert!(gaps(chain, 0).is_empty());
        assert_eq!(
            gaps(vec![key(1, None, Some(100)), key(2, Some(110), None)], 50),
            vec![(100, Some(110))]
        );
        // Past gaps do not count.
        assert!(gaps(vec![key(1, None, Some(100)), key(2, Some(110), None)], 110).is_empty());
        assert_eq!(gaps(vec![key(1, None, Some(100))], 50), vec![(100, None)]);
        assert_eq!(gaps(vec![key(1, None, Some(100))], 150), vec![(150, None)]);
        assert_eq!(
            gaps(vec![key(1, Some(60), Some(70)), key(2, Some(80), None)], 50),
            vec![(50, Some(60)), (70, Some(80))]
        );
        // Keys that may not send leave a gap; no key at all is one gap.
        assert_eq!(
            gaps(vec![key(1, None, None).with_send(false)], 5),
            vec![(5, None)]
        );
        assert!(AuthConfig::Null.send_gaps(5).is_empty());
    }

    #[test]
    fn trailer_fits_the_longest_key_that_may_send() {
        let md5 =
            Key::new(1, Algorithm::KeyedMd5, "a").with_send_window(Window::new(None, Some(10)));
        let sha512 =
            Key::new(2, Algorithm::HmacSha512, "b").with_send_window(Window::new(Some(10), None));
        let config = crypto(vec![md5.clone(), sha512.clone()]);
        assert_eq!(config.trailer_len(), 64);
        assert_eq!(signed_at(&config, 9).len(), 48 + 16);
        assert_eq!(signed_at(&config, 10).len(), 48 + 64);
        let accept_only = crypto(vec![md5, sha512.with_send(false)]);
        assert_eq!(accept_only.trailer_len(), 16);
    }

    fn signed_at(config: &AuthConfig, now: u64) -> Vec<u8> {
        let mut p = unsigned(1, &hello_body());
        sign(config, &mut p, 1, now).unwrap();
        p
    }

    // ----- calendar -----

    #[test]
    fn utc_dates_to_unix_seconds_and_back() {
        // Values from `date -u -d ... +%s`.
        let known = [
            ((1970, 1, 1, 0, 0, 0), 0),
            ((1970, 1, 2, 0, 0, 1), 86_401),
            ((2000, 2, 29, 12, 0, 0), 951_825_600),
            ((2000, 3, 1, 0, 0, 0), 951_868_800),
            ((2024, 12, 31, 23, 59, 59), 1_735_689_599),
            ((2026, 12, 5, 10, 0, 0), 1_796_464_800),
            ((2100, 3, 1, 0, 0, 0), 4_107_542_400),
        ];
        for ((y, mo, d, h, mi, s), secs) in known {
            assert_eq!(
                unix_secs_from_utc(y, mo, d, h, mi, s),
                Some(secs),
                "{y}-{mo}-{d}"
            );
            assert_eq!(utc_from_unix_secs(secs), (y, mo, d, h, mi, s));
        }
        assert_eq!(format_utc(1_796_464_800), "2026-12-05T10:00:00Z");
        // Every day for 500 years goes there and back.
        for day in 0..(500 * 366) {
            let secs = day * 86_400 + 3_723;
            let (y, mo, d, h, mi, s) = utc_from_unix_secs(secs);
            assert_eq!(unix_secs_from_utc(y, mo, d, h, mi, s), Some(secs));
        }
        // Invalid dates and times, and dates before 1970.
        assert_eq!(unix_secs_from_utc(2026, 2, 29, 0, 0, 0), None);
        assert_eq!(unix_secs_from_utc(2100, 2, 29, 0, 0, 0), None);
        assert!(unix_secs_from_utc(2400, 2, 29, 0, 0, 0).is_some());
        assert_eq!(unix_secs_from_utc(2026, 4, 31, 0, 0, 0), None);
        assert_eq!(unix_secs_from_utc(2026, 13, 1, 0, 0, 0), None);
        assert_eq!(unix_secs_from_utc(2026, 1, 1, 24, 0, 0), None);
        assert_eq!(unix_secs_from_utc(1969, 12, 31, 23, 59, 59), None);
        // A leap second reads as the next minute's start.
        assert_eq!(
            unix_secs_from_utc(2016, 12, 31, 23, 59, 60),
            unix_secs_from_utc(2017, 1, 1, 0, 0, 0)
        );
    }

    // ----- known answers -----

    /// The signed header for the KATs, written out field by field rather
    /// than taken from `sign`.
    fn expected_crypto_header(key_id: u8, data_len: u8, seq: u32) -> Vec<u8> {
        let mut h = vec![
            2, 1, 0, 48, // version, Hello, length 48 (no digest)
            10, 0, 0, 1, // router ID
            0, 0, 0, 1, // area
            0, 0, // checksum: not calculated (D.4.3)
            0, 2, // AuType 2
            0, 0, key_id, data_len,
        ];
        h.extend_from_slice(&seq.to_be_bytes());
        h.extend_from_slice(&hello_body());
        h
    }

    #[test]
    fn known_answer_keyed_md5() {
        let seq = 0x6543_2101;
        let expected = expected_crypto_header(7, 16, seq);
        // D.4.3: MD5 over the packet and the key NUL-padded to 16 bytes.
        let mut md5_input = expected.clone();
        md5_input.extend_from_slice(b"lab-md5-key\0\0\0\0\0");
        let digest = Md5::digest(&md5_input);

        let config = crypto(vec![Key::new(7, Algorithm::KeyedMd5, "lab-md5-key")]);
        let p = signed(&config, &hello_body(), seq);
        assert_eq!(&p[..48], &expected[..]);
        assert_eq!(&p[48..], &digest[..]);

        // Keys longer than 16 bytes are truncated.
        let long = crypto(vec![Key::new(
            7,
            Algorithm::KeyedMd5,
            "0123456789abcdefTAIL",
        )]);
        let short = crypto(vec![Key::new(7, Algorithm::KeyedMd5, "0123456789abcdef")]);
        assert_eq!(
            signed(&long, &hello_body(), seq),
            signed(&short, &hello_body(), seq)
        );
    }

    #[test]
    fn manual_hmac_matches_published_vectors() {
        // RFC 4231 test case 2 and RFC 2202 test case 2 anchor the
        // hand-written HMAC used by the KATs below.
        let msg = b"what do ya want for nothing?";
        assert_eq!(
            manual_hmac::<Sha256>(64, b"Jefe", msg),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(
            manual_hmac::<Sha1>(64, b"Jefe", msg),
            hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
    }

    #[test]
    fn known_answer_hmac_sha256() {
        let seq = 0x0000_0102;
        let expected = expected_crypto_header(5, 32, seq);
        // RFC 5709 section 3.3: the trailer is filled with Apad and the
        // HMAC covers packet || Apad.
        let mut msg = expected.clone();
        msg.extend_from_slice(&apad(32));
        assert_eq!(
            &msg[48..56],
            &[0x87, 0x8f, 0xe1, 0xf3, 0x87, 0x8f, 0xe1, 0xf3]
        );

        let sign_with = |secret: &[u8], prep| {
            let config = crypto(vec![
                Key::new(5, Algorithm::HmacSha256, secret).with_hmac_key_prep(prep)
            ]);
            let p = signed(&config, &hello_body(), seq);
            assert_eq!(&p[..48], &expected[..]);
            p[48..].to_vec()
        };

        // Short key (< L): zero padded; both preparations agree.
        let short = b"lab-hmac-key";
        let want = manual_hmac::<Sha256>(64, short, &msg);
        assert_eq!(sign_with(short, HmacKeyPrep::Rfc2104), want);
        assert_eq!(sign_with(short, HmacKeyPrep::Rfc5709), want);

        // L < key <= B: RFC 5709 uses Ko = H(K), plain HMAC uses K.
        let mid = [0x42u8; 40];
        let want_5709 = manual_hmac::<Sha256>(64, &Sha256::digest(mid), &msg);
        let want_2104 = manual_hmac::<Sha256>(64, &mid, &msg);
        assert_ne!(want_5709, want_2104);
        assert_eq!(sign_with(&mid, HmacKeyPrep::Rfc5709), want_5709);
        assert_eq!(sign_with(&mid, HmacKeyPrep::Rfc2104), want_2104);

        // Exactly L: used as is by both.
        let exact = [0x33u8; 32];
        let want = manual_hmac::<Sha256>(64, &exact, &msg);
        assert_eq!(sign_with(&exact, HmacKeyPrep::Rfc5709), want);
        assert_eq!(sign_with(&exact, HmacKeyPrep::Rfc2104), want);

        // Longer than B: hashed by both.
        let long = [0x99u8; 100];
        let want = manual_hmac::<Sha256>(64, &Sha256::digest(long), &msg);
        assert_eq!(sign_with(&long, HmacKeyPrep::Rfc5709), want);
        assert_eq!(sign_with(&long, HmacKeyPrep::Rfc2104), want);
    }

    #[test]
    fn known_answer_other_hmacs() {
        let seq = 42;
        let secret = b"k3y";
        type ManualHmac = fn(usize, &[u8], &[u8]) -> Vec<u8>;
        let cases: [(Algorithm, usize, ManualHmac); 3] = [
            (Algorithm::HmacSha1, 64, manual_hmac::<Sha1>),
            (Algorithm::HmacSha384, 128, manual_hmac::<Sha384>),
            (Algorithm::HmacSha512, 128, manual_hmac::<Sha512>),
        ];
        for (alg, block, hmac) in cases {
            let len = alg.digest_len();
            let expected = expected_crypto_header(1, u8::try_from(len).unwrap(), seq);
            let mut msg = expected.clone();
            msg.extend_from_slice(&apad(len));
            let p = signed(
                &crypto(vec![Key::new(1, alg, &secret[..])]),
                &hello_body(),
                seq,
            );
            assert_eq!(&p[..48], &expected[..], "{alg:?}");
            assert_eq!(p[48..].to_vec(), hmac(block, secret, &msg), "{alg:?}");
        }
    }

    // ----- properties -----

    fn any_config() -> impl Strategy<Value = AuthConfig> {
        prop_oneof![
            Just(AuthConfig::Null),
            Just(AuthConfig::simple("pw").unwrap()),
            (0usize..5, any::<bool>(), any::<bool>()).prop_map(|(i, strict, rfc5709)| {
                let prep = if rfc5709 {
                    HmacKeyPrep::Rfc5709
                } else {
                    HmacKeyPrep::Rfc2104
                };
                AuthConfig::cryptographic(
                    vec![Key::new(1, ALGORITHMS[i], "prop-secret").with_hmac_key_prep(prep)],
                    strict,
                )
                .unwrap()
            }),
        ]
    }

    proptest! {
        #[test]
        fn verify_never_panics(
            config in any_config(),
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            last in proptest::option::of(any::<u32>()),
        ) {
            let mut st = NeighborAuthState { last_seq: last };
            let _ = verify(&config, &bytes, &mut st, NOW);
        }

        #[test]
        fn verify_never_panics_on_plausible_headers(
            config in any_config(),
            autype in 0u16..4,
            len in 0u16..120,
            key_id in 0u8..3,
            data_len in prop_oneof![Just(16u8), Just(20), Just(32), Just(48), Just(64), any::<u8>()],
            rest in proptest::collection::vec(any::<u8>(), 0..150),
        ) {
            let mut bytes = vec![2, 1];
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&[0; 10]);
            bytes.extend_from_slice(&autype.to_be_bytes());
            bytes.extend_from_slice(&[0, 0, key_id, data_len]);
            bytes.extend_from_slice(&rest);
            let _ = verify(&config, &bytes, &mut NeighborAuthState::new(), NOW);
        }

        #[test]
        fn sign_verify_round_trip(
            config in any_config(),
            packet_type in 1u8..6,
            body in proptest::collection::vec(any::<u8>(), 0..300),
            seq in any::<u32>(),
        ) {
            let mut p = unsigned(packet_type, &body);
            sign(&config, &mut p, seq, NOW).unwrap();
            let v = verify(&config, &p, &mut NeighborAuthState::new(), NOW).unwrap();
            prop_assert_eq!(v.packet_len, HEADER_LEN + body.len());
            prop_assert_eq!(&p[HEADER_LEN..v.packet_len], &body[..]);
            prop_assert_eq!(v.packet_len + v.trailer_len, p.len());
        }

        #[test]
        fn any_bit_flip_outside_null_auth_field_is_caught(
            config in any_config(),
            body in proptest::collection::vec(any::<u8>(), 0..100),
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut p = unsigned(1, &body);
            sign(&config, &mut p, 1, NOW).unwrap();
            let i = pos.index(p.len());
            let null_auth_field = config == AuthConfig::Null && (16..24).contains(&i);
            prop_assume!(!null_auth_field);
            p[i] ^= 1 << bit;
            prop_assert!(verify(&config, &p, &mut NeighborAuthState::new(), NOW).is_err());
        }
    }
}
