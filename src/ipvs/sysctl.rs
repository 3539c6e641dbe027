//! The `net.ipv4.vs` sysctls an ECMP director needs, set and read back,
//! and the warning for a scheduler that breaks flows behind ECMP.
//!
//! When a router adds or removes a director, its ECMP hash moves flows to
//! a director that has never seen them. Every director picks the same real
//! server (`mh`/`sh` over the same destination list), but the packet that
//! arrives is mid-stream: without `sloppy_tcp` IPVS schedules TCP only on a
//! SYN and the director's own stack answers with a reset.

use std::path::Path;

use super::model::flags;

/// One sysctl and the value an ECMP director wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// Dotted name, as `sysctl` prints it.
    pub key: &'static str,
    pub value: &'static str,
    /// Why, for logs and `--help`.
    pub why: &'static str,
}

/// The sysctls of an ECMP director. `conntrack` keeps netfilter
/// connection tracking for IPVS flows: needed only when the director's own
/// firewall or NAT rules match their state; off (the kernel's default) it
/// saves a conntrack entry per flow.
pub fn ecmp_sysctls(conntrack: bool) -> Vec<Sysctl> {
    vec![
        Sysctl {
            key: "net.ipv4.vs.sloppy_tcp",
            value: "1",
            why: "schedule a TCP flow on any packet, not only a SYN: flows moved here by an \
                  ECMP rehash continue",
        },
        Sysctl {
            key: "net.ipv4.vs.sloppy_sctp",
            value: "1",
            why: "the same for SCTP (not only on an INIT)",
        },
        Sysctl {
            key: "net.ipv4.vs.schedule_icmp",
            value: "1",
            why: "ICMP errors (PMTU) for a flow this director has not seen reach its server",
        },
        Sysctl {
            key: "net.ipv4.vs.expire_nodest_conn",
            value: "1",
            why: "connections to a removed server end at once instead of timing out",
        },
        Sysctl {
            key: "net.ipv4.vs.expire_quiescent_template",
            value: "1",
            why: "a failed server gets weight 0: its persistence templates expire so clients \
                  move to a live one",
        },
        Sysctl {
            key: "net.ipv4.vs.conntrack",
            value: if conntrack { "1" } else { "0" },
            why: "netfilter state for IPVS flows, only when firewall or NAT rules need it",
        },
    ]
}

/// A sysctl that could not be set, or reads back another value.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("{key}: cannot read it: {source} (is ip_vs loaded?)")]
    Read {
        key: &'static str,
        source: std::io::Error,
    },
    #[error("{key} = {value}: cannot set it: {source}")]
    Write {
        key: &'static str,
        value: &'static str,
        source: std::io::Error,
    },
    #[error("{key} is {got}, wanted {want}")]
    Differs {
        key: &'static str,
        want: &'static str,
        got: String,
    },
}

fn path_of(root: &Path, key: &str) -> std::path::PathBuf {
    root.join(key.replace('.', "/"))
}

/// Reads each sysctl under `root` (normally `/proc/sys`) and reports those
/// that differ.
pub fn verify_at(root: &Path, list: &[Sysctl]) -> Vec<SysctlError> {
    let mut problems = Vec::new();
    for s in list {
        match std::fs::read_to_string(path_of(root, s.key)) {
            Ok(got) if got.trim() == s.value => {}
            Ok(got) => problems.push(SysctlError::Differs {
                key: s.key,
                want: s.value,
                got: got.trim().to_string(),
            }),
            Err(source) => problems.push(SysctlError::Read { key: s.key, source }),
        }
    }
    problems
}

/// Writes each sysctl that differs under `root`, then reads every one
/// back: what is returned could not be set.
pub fn apply_at(root: &Path, list: &[Sysctl]) -> Vec<SysctlError> {
    let mut problems = Vec::new();
    for s in list {
        let path = path_of(root, s.key);
        let current = std::fs::read_to_string(&path);
        if current.as_deref().is_ok_and(|c| c.trim() == s.value) {
            continue;
        }
        if let Err(source) = std::fs::write(&path, s.value) {
            problems.push(SysctlError::Write {
                key: s.key,
                value: s.value,
                source,
            });
        }
    }
    let failed: Vec<&str> = problems
        .iter()
        .filter_map(|p| match p {
            SysctlError::Write { key, .. } => Some(*key),
            _ => None,
        })
        .collect();
    let rest: Vec<Sysctl> = list
        .iter()
        .filter(|s| !failed.contains(&s.key))
        .cloned()
        .collect();
    problems.extend(verify_at(root, &rest));
    problems
}

/// [`apply_at`] on `/proc/sys` (this network namespace's).
pub fn apply(list: &[Sysctl]) -> Vec<SysctlError> {
    apply_at(Path::new("/proc/sys"), list)
}

/// [`verify_at`] on `/proc/sys`.
pub fn verify(list: &[Sysctl]) -> Vec<SysctlError> {
    verify_at(Path::new("/proc/sys"), list)
}

/// A warning for a service scheduled in a way that breaks flows when ECMP
/// moves them between directors, or `None`. Only the consistent hashes,
/// `mh` (Maglev) and `sh`, give every director the same answer without
/// shared state; they should fall back to another server when the chosen
/// one has weight 0 (`flags::SCHED1`).
pub fn ecmp_scheduler_warning(scheduler: &str, svc_flags: u32) -> Option<String> {
    match scheduler {
        "mh" | "sh" if svc_flags & flags::SCHED1 == 0 => Some(format!(
            "scheduler {scheduler} without {scheduler}-fallback: flows hashed to a failed \
             (weight 0) server are dropped instead of moved"
        )),
        "mh" | "sh" => None,
        other => Some(format!(
            "scheduler {other} is not a consistent hash: behind ECMP, a flow moved to another \
             director may be sent to another real server and reset; use mh"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /proc/sys with the IPVS keys at the kernel's defaults.
    fn fake_root(name: &str) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("anycastd-sysctl-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("net/ipv4/vs");
        std::fs::create_dir_all(&dir).unwrap();
        for s in ecmp_sysctls(false) {
            std::fs::write(path_of(&root, s.key), "0\n").unwrap();
        }
        root
    }

    #[test]
    fn sysctls_are_set_then_verified() {
        let root = fake_root("set");
        let list = ecmp_sysctls(false);
        assert_eq!(verify_at(&root, &list).len(), 5, "all but conntrack differ");
        assert!(apply_at(&root, &list).is_empty());
        assert!(verify_at(&root, &list).is_empty());
        let sloppy = std::fs::read_to_string(root.join("net/ipv4/vs/sloppy_tcp")).unwrap();
        assert_eq!(sloppy, "1");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_missing_module_is_reported_per_key() {
        let root = fake_root("missing");
        // No ip_vs module: no net/ipv4/vs at all.
        std::fs::remove_dir_all(root.join("net/ipv4/vs")).unwrap();
        let problems = apply_at(&root, &ecmp_sysctls(true));
        assert_eq!(problems.len(), 6);
        assert!(
            problems[0]
                .to_string()
                .starts_with("net.ipv4.vs.sloppy_tcp = 1: cannot set it"),
            "{}",
            problems[0]
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn only_consistent_hashes_with_fallback_pass_quietly() {
        assert_eq!(
            ecmp_scheduler_warning("mh", flags::SCHED1 | flags::SCHED2),
            None
        );
        assert_eq!(ecmp_scheduler_warning("sh", flags::SCHED1), None);
        assert!(ecmp_scheduler_warning("mh", 0).is_some_and(|w| w.contains("without mh-fallback")));
        for s in ["rr", "wrr", "wlc", "lc", "dh"] {
            assert!(ecmp_scheduler_warning(s, flags::SCHED1)
                .is_some_and(|w| w.contains("not a consistent hash")));
        }
    }
}
