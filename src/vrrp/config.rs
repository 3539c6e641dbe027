//! The daemon's `[[vrrp]]` tables: one per virtual router.
//!
//! ```toml
//! [[vrrp]]
//! name = "VI_1"
//! interface = "eth0"
//! vrid = 51
//! priority = 150                 # 255: the address owner
//! version = 3                    # or 2 (keepalived's vrrp_version 2)
//! advert_interval_ms = 100       # v3: centiseconds; v2: whole seconds
//! addresses = ["192.0.2.10/24"]  # /32 unless given
//! preempt = true                 # false: keepalived's nopreempt
//! preempt_delay_ms = 0
//! garp_refresh_ms = 0            # while master, a gratuitous ARP this often
//! auth_pass = "1111"             # v2 only: PASS authentication
//! reference = { address = "198.18.0.1", method = "arp" }   # or "icmp"
//! [[vrrp.track_check]]           # a health check adjusts the priority
//! weight = -50
//! check = { type = "http", port = 80, path = "/health" }
//! [[vrrp.track_service]]         # so does a [[service]]'s state
//! name = "web"
//! weight = -100
//! [vrrp.lvs_sync]                # IPVS connection sync follows the state
//! interface = "eth0"             # the VRRP interface unless given
//! syncid = 51                    # the VRID unless given
//! ```
//!
//! Generic over the check table `C`, which the daemon supplies (its health
//! checks live in the binary); everything else is validated here, errors
//! carrying the byte span they concern.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::instance::Config;
use super::linux::{ProbeMethod, Reference, RunConfig};
use super::packet::{Auth, ChecksumMode, Version, MAX_ADVER_INT_CS};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "C: Deserialize<'de>"))]
pub struct InstanceFile<C> {
    pub name: Spanned<String>,
    pub interface: Spanned<String>,
    pub vrid: Spanned<u8>,
    pub priority: Spanned<u8>,
    #[serde(default = "default_version")]
    pub version: Spanned<u8>,
    #[serde(default = "default_advert_interval_ms")]
    pub advert_interval_ms: Spanned<u64>,
    pub addresses: Spanned<Vec<Spanned<String>>>,
    #[serde(default = "default_true")]
    pub preempt: bool,
    #[serde(default)]
    pub preempt_delay_ms: u64,
    pub auth_pass: Option<Spanned<String>>,
    #[serde(default)]
    pub unicast_peers: Vec<Ipv4Addr>,
    pub source: Option<Ipv4Addr>,
    /// Also accept v3 checksums without the IPv4 pseudo-header, or with
    /// 224.0.0.18 in it for a unicast advert (keepalived's
    /// `old_unicast_checksum`).
    #[serde(default)]
    pub accept_legacy_v3_checksum: bool,
    /// Send unicast v3 adverts with 224.0.0.18 in the pseudo-header, for
    /// such peers.
    #[serde(default)]
    pub send_legacy_unicast_checksum: bool,
    #[serde(default = "default_garp_repeat")]
    pub garp_repeat: u32,
    #[serde(default = "default_garp_interval_ms")]
    pub garp_interval_ms: u64,
    #[serde(default = "default_garp_master_delay_ms")]
    pub garp_master_delay_ms: u64,
    /// While master, one gratuitous ARP per address this often (0: off;
    /// keepalived's garp_master_refresh).
    #[serde(default)]
    pub garp_refresh_ms: u64,
    /// The VRRP interface's own weight: 0 means Fault while it is down.
    #[serde(default)]
    pub interface_weight: i16,
    #[serde(default)]
    pub track_interface: Vec<Spanned<TrackInterfaceFile>>,
    pub reference: Option<Spanned<ReferenceFile>>,
    #[serde(default)]
    pub track_check: Vec<Spanned<TrackCheckFile<C>>>,
    #[serde(default)]
    pub track_service: Vec<Spanned<TrackServiceFile>>,
    pub lvs_sync: Option<Spanned<LvsSyncFile>>,
    pub notify: Option<PathBuf>,
    pub status_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackInterfaceFile {
    pub name: String,
    #[serde(default)]
    pub weight: i16,
}

/// A `[[service]]` of the daemon whose state adjusts the priority: up
/// while the daemon would announce its VIP (healthy, programmed, not
/// drained).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackServiceFile {
    pub name: String,
    /// As for checks: 0 means Fault while the service is down.
    pub weight: i16,
}

/// The IPVS connection sync daemon run on the master's side (sending)
/// or the backup's (receiving), switched with the state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LvsSyncFile {
    pub interface: Option<String>,
    pub syncid: Option<u8>,
}

/// A validated `lvs_sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvsSync {
    pub interface: String,
    pub syncid: u8,
}

#[derive(Debug, Clone, Copy, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MethodFile {
    #[default]
    Arp,
    Icmp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceFile {
    pub address: Ipv4Addr,
    #[serde(default)]
    pub method: MethodFile,
    #[serde(default = "default_probe_ms")]
    pub interval_ms: u64,
    pub timeout_ms: Option<u64>,
    #[serde(default = "default_two")]
    pub fall: u32,
    #[serde(default = "default_two")]
    pub rise: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "C: Deserialize<'de>"))]
pub struct TrackCheckFile<C> {
    /// Defaults to `check N` (from 1).
    pub name: Option<String>,
    /// 0: Fault while the check is down; otherwise added to the priority
    /// while up (positive) or while down (negative).
    pub weight: i16,
    pub check: Spanned<C>,
}

fn default_version() -> Spanned<u8> {
    Spanned::new(0..0, 3)
}
fn default_advert_interval_ms() -> Spanned<u64> {
    Spanned::new(0..0, 1000)
}
fn default_true() -> bool {
    true
}
fn default_garp_repeat() -> u32 {
    5
}
fn default_garp_interval_ms() -> u64 {
    10
}
fn default_garp_master_delay_ms() -> u64 {
    5000
}
fn default_probe_ms() -> u64 {
    100
}
fn default_two() -> u32 {
    2
}

/// A validated instance: what to run, and its checks still to be resolved
/// by the daemon: (tracker name, weight, check table).
#[derive(Debug, Clone)]
pub struct Validated<C> {
    pub run: RunConfig,
    pub checks: Vec<(String, i16, Spanned<C>)>,
    /// Tracked `[[service]]`s: (service name, weight); the daemon checks
    /// that they exist.
    pub services: Vec<(String, i16)>,
    pub lvs_sync: Option<LvsSync>,
}

pub type Fail = (Range<usize>, String);

/// Validates every `[[vrrp]]` table; names and (interface, VRID) pairs are
/// unique.
pub fn validate<C: Clone>(list: &[Spanned<InstanceFile<C>>]) -> Result<Vec<Validated<C>>, Fail> {
    let mut out: Vec<Validated<C>> = Vec::new();
    for f in list {
        let v = validate_one(f.get_ref(), f.span())?;
        if let Some(o) = out.iter().find(|o| o.run.name == v.run.name) {
            return Err((f.span(), format!("vrrp {} is defined twice", o.run.name)));
        }
        if let Some(o) = out.iter().find(|o| {
            o.run.interface == v.run.interface && o.run.instance.vrid == v.run.instance.vrid
        }) {
            return Err((
                f.get_ref().vrid.span(),
                format!(
                    "vrrp {}: VRID {} on {} is already vrrp {}",
                    v.run.name, v.run.instance.vrid, v.run.interface, o.run.name
                ),
            ));
        }
        out.push(v);
    }
    Ok(out)
}

fn validate_one<C: Clone>(f: &InstanceFile<C>, span: Range<usize>) -> Result<Validated<C>, Fail> {
    let name = f.name.get_ref().clone();
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err((
            f.name.span(),
            format!("vrrp name `{name}` must be one word"),
        ));
    }
    let fail = |at: Range<usize>, m: String| (at, format!("vrrp {name}: {m}"));
    let vrid = *f.vrid.get_ref();
    if vrid == 0 {
        return Err(fail(f.vrid.span(), "vrid must be 1-255".into()));
    }
    let priority = *f.priority.get_ref();
    if priority == 0 {
        return Err(fail(
            f.priority.span(),
            "priority must be 1-255 (0 is reserved for a leaving master)".into(),
        ));
    }
    let version = match *f.version.get_ref() {
        2 => Version::V2,
        3 => Version::V3,
        v => {
            return Err(fail(
                f.version.span(),
                format!("version {v}: must be 2 or 3"),
            ))
        }
    };
    let ms = *f.advert_interval_ms.get_ref();
    let at = f.advert_interval_ms.span();
    let advert_interval_cs = match version {
        Version::V3 => {
            if ms == 0 || ms % 10 != 0 || ms / 10 > u64::from(MAX_ADVER_INT_CS) {
                return Err(fail(
                    at,
                    format!("advert_interval_ms {ms}: v3 takes 10-40950 ms in steps of 10"),
                ));
            }
            (ms / 10) as u16
        }
        Version::V2 => {
            if ms == 0 || ms % 1000 != 0 || ms / 1000 > 255 {
                return Err(fail(
                    at,
                    format!("advert_interval_ms {ms}: v2 takes whole seconds, 1000-255000"),
                ));
            }
            (ms / 10) as u16
        }
    };
    let mut addresses = Vec::new();
    let mut prefix_len = BTreeMap::new();
    for a in f.addresses.get_ref() {
        let text = a.get_ref();
        let (ip, len) = match text.split_once('/') {
            Some((ip, len)) => (ip, len.parse::<u8>().ok().filter(|l| *l <= 32)),
            None => (text.as_str(), Some(32)),
        };
        let (Ok(ip), Some(len)) = (ip.parse::<Ipv4Addr>(), len) else {
            return Err(fail(
                a.span(),
                format!("`{text}` is not A.B.C.D or A.B.C.D/LEN"),
            ));
        };
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
            return Err(fail(a.span(), format!("{ip} is not a unicast address")));
        }
        if addresses.contains(&ip) {
            return Err(fail(a.span(), format!("{ip} is listed twice")));
        }
        addresses.push(ip);
        prefix_len.insert(ip, len);
    }
    if addresses.is_empty() {
        return Err(fail(
            f.addresses.span(),
            "at least one address is needed".into(),
        ));
    }
    let auth = match (&f.auth_pass, version) {
        (None, _) => Auth::None,
        (Some(p), Version::V3) => {
            return Err(fail(
                p.span(),
                "auth_pass is for version 2; VRRPv3 has no authentication".into(),
            ))
        }
        (Some(p), Version::V2) => Auth::simple(p.get_ref())
            .ok_or_else(|| fail(p.span(), "auth_pass has at most 8 bytes".into()))?,
    };
    let reference = match &f.reference {
        None => None,
        Some(r) => {
            let rs = r.get_ref();
            let timeout = rs.timeout_ms.unwrap_or(rs.interval_ms);
            if rs.interval_ms == 0 || timeout == 0 || timeout > rs.interval_ms {
                return Err(fail(
                    r.span(),
                    "reference: need 0 < timeout_ms <= interval_ms".into(),
                ));
            }
            if rs.fall == 0 || rs.rise == 0 {
                return Err(fail(
                    r.span(),
                    "reference: fall and rise are at least 1".into(),
                ));
            }
            Some(Reference {
                address: rs.address,
                method: match rs.method {
                    MethodFile::Arp => ProbeMethod::Arp,
                    MethodFile::Icmp => ProbeMethod::Icmp,
                },
                interval: Duration::from_millis(rs.interval_ms),
                timeout: Duration::from_millis(timeout),
                fall: rs.fall,
                rise: rs.rise,
            })
        }
    };
    let mut track_interfaces = Vec::new();
    for t in &f.track_interface {
        let ti = t.get_ref();
        if ti.name == *f.interface.get_ref() {
            return Err(fail(
                t.span(),
                "the VRRP interface is tracked already (interface_weight)".into(),
            ));
        }
        track_interfaces.push((ti.name.clone(), ti.weight));
    }
    let mut checks = Vec::new();
    for (i, t) in f.track_check.iter().enumerate() {
        let tc = t.get_ref();
        let n = tc
            .name
            .clone()
            .unwrap_or_else(|| format!("check {}", i + 1));
        if checks.iter().any(|(x, _, _)| *x == n) {
            return Err(fail(t.span(), format!("track_check `{n}` is listed twice")));
        }
        checks.push((n, tc.weight, tc.check.clone()));
    }
    let mut services: Vec<(String, i16)> = Vec::new();
    for t in &f.track_service {
        let ts = t.get_ref();
        if services.iter().any(|(n, _)| *n == ts.name) {
            return Err(fail(
                t.span(),
                format!("track_service `{}` is listed twice", ts.name),
            ));
        }
        services.push((ts.name.clone(), ts.weight));
    }
    let lvs_sync = f.lvs_sync.as_ref().map(|l| LvsSync {
        interface: l
            .get_ref()
            .interface
            .clone()
            .unwrap_or_else(|| f.interface.get_ref().clone()),
        syncid: l.get_ref().syncid.unwrap_or(vrid),
    });
    let _ = span;
    let instance = Config {
        version,
        vrid,
        priority,
        advert_interval_cs,
        preempt: f.preempt,
        preempt_delay: Duration::from_millis(f.preempt_delay_ms),
        addresses,
        auth,
        unicast_peers: f.unicast_peers.clone(),
        checksum: if f.accept_legacy_v3_checksum {
            ChecksumMode::Lenient
        } else {
            ChecksumMode::Rfc
        },
        legacy_unicast_checksum: f.send_legacy_unicast_checksum,
    };
    Ok(Validated {
        run: RunConfig {
            name,
            interface: f.interface.get_ref().clone(),
            instance,
            prefix_len,
            source: f.source,
            garp_repeat: f.garp_repeat.max(1),
            garp_interval: Duration::from_millis(f.garp_interval_ms),
            garp_master_delay: (f.garp_master_delay_ms > 0)
                .then(|| Duration::from_millis(f.garp_master_delay_ms)),
            garp_refresh: (f.garp_refresh_ms > 0).then(|| Duration::from_millis(f.garp_refresh_ms)),
            interface_weight: f.interface_weight,
            track_interfaces,
            reference,
            notify: f.notify.clone(),
            status_file: f.status_file.clone(),
        },
        checks,
        services,
        lvs_sync,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Check {
        #[serde(rename = "type")]
        kind: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        vrrp: Vec<Spanned<InstanceFile<Check>>>,
    }

    const GOOD: &str = r#"
[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 150
advert_interval_ms = 100
addresses = ["192.0.2.10/24", "192.0.2.11"]
reference = { address = "198.18.0.1", interval_ms = 50 }
[[vrrp.track_check]]
weight = -50
check = { type = "tcp" }
"#;

    fn parse(text: &str) -> Result<Vec<Validated<Check>>, (usize, String)> {
        let f: File = toml::from_str(text).map_err(|e| (0, e.message().to_string()))?;
        validate(&f.vrrp).map_err(|(span, m)| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            (line, m)
        })
    }

    #[test]
    fn parses_with_defaults() {
        let v = parse(GOOD).expect("valid");
        let r = &v[0].run;
        assert_eq!(r.instance.version, Version::V3);
        assert_eq!(r.instance.advert_interval_cs, 10);
        assert!(r.instance.preempt);
        assert_eq!(
            r.prefix_len.values().copied().collect::<Vec<_>>(),
            vec![24, 32]
        );
        let reference = r.reference.as_ref().expect("reference");
        assert_eq!(reference.method, ProbeMethod::Arp);
        assert_eq!(reference.timeout, Duration::from_millis(50));
        assert_eq!(v[0].checks[0].0, "check 1");
        assert_eq!(v[0].checks[0].2.get_ref().kind, "tcp");
        assert_eq!(r.garp_master_delay, Some(Duration::from_secs(5)));
        assert_eq!(r.garp_refresh, None);
    }

    #[test]
    fn v2_with_a_password() {
        let text = GOOD.replace(
            "advert_interval_ms = 100",
            "advert_interval_ms = 1000\nversion = 2\nauth_pass = \"1111\"",
        );
        let v = parse(&text).expect("valid");
        assert_eq!(v[0].run.instance.auth, Auth::simple("1111").expect("short"));
        assert_eq!(v[0].run.instance.advert_interval_cs, 100);
    }

    #[test]
    fn errors_point_at_the_line() {
        let bad = |from: &str, to: &str, line: usize, needle: &str| {
            let (l, m) = parse(&GOOD.replace(from, to)).expect_err(needle);
            assert!(m.contains(needle), "{m}");
            assert_eq!(l, line, "{m}");
        };
        bad(
            "advert_interval_ms = 100",
            "advert_interval_ms = 105",
            7,
            "steps of 10",
        );
        bad("vrid = 51", "vrid = 0", 5, "vrid must be 1-255");
        bad("priority = 150", "priority = 0", 6, "reserved");
        bad("\"192.0.2.11\"", "\"192.0.2.300\"", 8, "is not A.B.C.D");
        bad(
            "advert_interval_ms = 100",
            "advert_interval_ms = 100\nauth_pass = \"x\"",
            8,
            "VRRPv3 has no authentication",
        );
        bad(
            "advert_interval_ms = 100",
            "advert_interval_ms = 100\nversion = 2",
            7,
            "whole seconds",
        );
        let twice = format!("{GOOD}{}", GOOD.replace("VI_1", "VI_2"));
        let (_, m) = parse(&twice).expect_err("same vrid");
        assert!(m.contains("VRID 51 on eth0 is already vrrp VI_1"), "{m}");
    }
}
