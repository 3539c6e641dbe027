//! Giving back the pages of start-up code once the daemon runs.
//!
//! Most of the daemon's resident set is not its data but pages of its
//! program and libraries: parsing the command line and the config,
//! building the TLS and metrics set-up, learning the interfaces over
//! rtnetlink touch code that never runs again, and the kernel maps 64 KiB
//! around every page touched (fault-around). Like a kernel freeing its
//! init sections after boot, the daemon unmaps those pages once it is up
//! (`MADV_DONTNEED` on its read-only file mappings); the code it still
//! runs is mapped back from the page cache on its next use, a minor fault.
//!
//! Only mappings that are not writable and hold no private (anonymous)
//! page, in memory or in swap, are released: their contents are exactly the file's, so dropping
//! them loses nothing. A relocated read-only region (RELRO) holds private
//! pages and is left alone, as is every writable mapping.

use std::ffi::c_void;
use std::ptr::NonNull;

use nix::sys::mman::{madvise, MmapAdvise};

/// One mapping of /proc/self/smaps that may be released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Releasable {
    pub start: usize,
    pub len: usize,
    /// Resident KiB before the release.
    pub rss_kib: u64,
    pub path: String,
}

/// The mappings of `smaps` (the text of /proc/PID/smaps) whose pages can
/// be dropped without losing anything: file-backed, not writable, no
/// anonymous (copied-on-write) page, resident or swapped out, and
/// something resident.
pub fn releasable(smaps: &str) -> Vec<Releasable> {
    struct Mapping {
        start: usize,
        end: usize,
        ok: bool,
        path: String,
        rss: Option<u64>,
        anon: Option<u64>,
        swap: Option<u64>,
    }
    let mut maps: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-') {
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            else {
                continue;
            };
            let perms = f.next().unwrap_or_default();
            let inode = f.nth(2).unwrap_or("0");
            let path = f.collect::<Vec<_>>().join(" ");
            let ok = perms.len() == 4
                && !perms.contains('w')
                && perms.ends_with('p')
                && inode != "0"
                && path.starts_with('/')
                && !path.ends_with("(deleted)");
            maps.push(Mapping {
                start,
                end,
                ok,
                path,
                rss: None,
                anon: None,
                swap: None,
            });
            continue;
        }
        let Some(m) = maps.last_mut() else { continue };
        let mut kib = || f.next().and_then(|v| v.parse::<u64>().ok());
        match first {
            "Rss:" => m.rss = kib(),
            "Anonymous:" => m.anon = kib(),
            "Swap:" => m.swap = kib(),
            _ => {}
        }
    }
    maps.into_iter()
        .filter(|m| {
            m.ok && m.anon == Some(0)
                && m.swap == Some(0)
                && m.rss.unwrap_or(0) > 0
                && m.end > m.start
        })
        .map(|m| Releasable {
            start: m.start,
            len: m.end - m.start,
            rss_kib: m.rss.unwrap_or(0),
            path: m.path,
        })
        .collect()
}

/// Drops this process's resident pages of its read-only file mappings
/// (see the module's documentation). Returns the KiB that were resident
/// in them.
pub fn release_file_pages() -> std::io::Result<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for m in releasable(&smaps) {
        let Some(addr) = NonNull::new(m.start as *mut c_void) else {
            continue;
        };
        // SAFETY: the range is a whole mapping of this process taken from
        // smaps a moment ago, not writable and without private pages, so
        // its contents are the file's and are read back on the next access;
        // nothing in it can change meanwhile (it cannot be written).
        match unsafe { madvise(addr, m.len, MmapAdvise::MADV_DONTNEED) } {
            Ok(()) => released += m.rss_kib,
            Err(e) => tracing::debug!("madvise {} ({:#x}): {e}", m.path, m.start),
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 08:01 1234 /usr/sbin/anycastd
Size:               1024 kB
Rss:                 512 kB
Anonymous:             0 kB
Swap:                  0 kB
55d0c0100000-55d0c0800000 r-xp 00100000 08:01 1234 /usr/sbin/anycastd
Rss:                4096 kB
Anonymous:             0 kB
Swap:                  0 kB
55d0c0800000-55d0c0900000 r--p 00800000 08:01 1234 /usr/sbin/anycastd
Rss:                 300 kB
Anonymous:           296 kB
Swap:                  0 kB
55d0c0900000-55d0c0910000 rw-p 00900000 08:01 1234 /usr/sbin/anycastd
Rss:                  64 kB
Anonymous:            64 kB
55d0c1000000-55d0c1200000 rw-p 00000000 00:00 0 [heap]
Rss:                 800 kB
Anonymous:           800 kB
7f0000000000-7f0000001000 r-xp 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                   0 kB
Anonymous:             0 kB
Swap:                  0 kB
7f0000100000-7f0000200000 r-xp 00000000 08:01 98 /tmp/old binary (deleted)
Rss:                  40 kB
Anonymous:             0 kB
Swap:                  0 kB
7f0000300000-7f0000400000 r--p 00010000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                  12 kB
Anonymous:             0 kB
Swap:                  4 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Rss:                   8 kB
Anonymous:             0 kB
Swap:                  0 kB
";

    #[test]
    fn only_unmodified_read_only_file_pages_are_released() {
        let r = releasable(SMAPS);
        let got: Vec<(usize, usize, u64)> = r.iter().map(|m| (m.start, m.len, m.rss_kib)).collect();
        assert_eq!(
            got,
            vec![
                (0x55d0_c000_0000, 0x10_0000, 512),
                (0x55d0_c010_0000, 0x70_0000, 4096),
            ],
            "the RELRO mappings with private pages (in memory or swapped out), \
             writable ones, empty ones, deleted files and the vdso stay"
        );
    }

    #[test]
    fn a_truncated_entry_is_not_released() {
        // No Anonymous or Swap line: nothing says the pages are the file's.
        let head = "7f0000000000-7f0000100000 r-xp 00000000 08:01 9 /lib/x.so\nRss: 8 kB\n";
        assert!(releasable(head).is_empty());
        let r = releasable(&format!("{head}Anonymous: 0 kB\n"));
        assert!(r.is_empty());
    }

    fn rss_file_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .expect("status")
            .lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("RssFile")
    }

    #[test]
    fn releasing_drops_resident_program_pages_and_keeps_the_process_working() {
        let before = rss_file_kib();
        let released = release_file_pages().expect("release");
        let after = rss_file_kib();
        assert!(released > 0, "this test's own binary is resident");
        assert!(after < before, "RssFile {before} kB -> {after} kB");
        // Code and read-only data are read back on use.
        let v: Vec<String> = (0..100).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[99], "63");
    }
}
