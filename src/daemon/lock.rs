//! One daemon per configuration: an exclusive lock on a file beside the
//! control socket, taken before the daemon sends a packet or touches the
//! socket. A second `anycastd run` with the same config finds it held and
//! exits at once, naming the first one; the socket is only ever removed by
//! the daemon that holds the lock, so the second cannot take it away from
//! the first.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// The held lock; released (by the kernel) when the process ends.
pub struct InstanceLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file of `socket`: `SOCKET.lock`.
    pub fn path_for(socket: &Path) -> PathBuf {
        let mut p = socket.as_os_str().to_owned();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Takes the lock of `socket`, or fails with "anycastd already runs
    /// (pid N, socket S)" when another daemon holds it.
    pub fn take(socket: &Path) -> Result<InstanceLock> {
        let path = Self::path_for(socket);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("open the lock file {}", path.display()))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                bail!(
                    "anycastd already runs (pid {}, socket {})",
                    if pid.is_empty() { "unknown" } else { pid },
                    socket.display()
                );
            }
            Err((_, e)) => {
                return Err(e).with_context(|| format!("lock {}", path.display()));
            }
        };
        lock.set_len(0)?;
        lock.rewind()?;
        writeln!(lock, "{}", std::process::id())?;
        Ok(InstanceLock { _lock: lock, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_instance_is_refused_and_told_who_runs() {
        let dir = std::env::temp_dir().join(format!("anycastd-lock-{}", std::process::id()));
        let socket = dir.join("anycastd.sock");
        let first = InstanceLock::take(&socket).expect("first");
        assert_eq!(first.path(), dir.join("anycastd.sock.lock"));
        // flock is per open file description: a second open in this
        // process conflicts like another process would.
        let err = InstanceLock::take(&socket).err().expect("second refused");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())) && msg.contains("anycastd.sock"),
            "{msg}"
        );
        drop(first);
        let again = InstanceLock::take(&socket).expect("free again");
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
