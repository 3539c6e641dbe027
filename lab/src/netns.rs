//! Named network namespaces, made and removed the way `ip netns` does, so
//! operators can still use `ip netns exec` on a running lab.
//!
//! A namespace is entered only by dedicated threads (`run_in`) or by a child
//! process before exec (`command`): setns changes the calling thread alone,
//! and sockets keep the namespace they were created in.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

fn io_err(context: String, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{context}: {e}"))
}

/// Makes `/run/netns` a shared mount point, as iproute2 does, so that
/// namespace bind mounts show in every mount namespace that shares it.
fn prepare_dir() -> io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)?;
    let shared = || {
        mount(
            None::<&str>,
            NETNS_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if shared().is_ok() {
        return Ok(());
    }
    mount(
        Some(NETNS_DIR),
        NETNS_DIR,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| io_err(format!("bind-mount {NETNS_DIR}"), e))?;
    shared().map_err(|e| io_err(format!("make {NETNS_DIR} shared"), e))
}

/// Creates the namespace `name`; fails if it exists already.
pub fn create(name: &str) -> io::Result<PathBuf> {
    prepare_dir()?;
    let p = path(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
        .map_err(|e| io_err(format!("create {}", p.display()), e))?;
    let target = p.clone();
    // unshare(CLONE_NEWNET) moves only this short-lived thread into the new
    // namespace; the bind mount keeps the namespace alive after it exits.
    let made = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| io_err("unshare".into(), e))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| io_err(format!("bind-mount namespace on {}", target.display()), e))
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?;
    if let Err(e) = made {
        let _ = std::fs::remove_file(&p);
        return Err(e);
    }
    Ok(p)
}

/// A namespace made by [`Namespace::create`] and removed, its processes
/// killed, when dropped (also when a test panics).
#[derive(Debug)]
pub struct Namespace {
    name: String,
    path: PathBuf,
}

impl Namespace {
    pub fn create(name: &str) -> io::Result<Namespace> {
        Ok(Namespace {
            name: name.to_string(),
            path: create(name)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = delete(&self.name);
    }
}

/// Starts `f` on a fresh thread inside the namespace at `ns`. Sockets that
/// `f` creates belong to that namespace.
pub fn spawn_in<T, F>(ns: &Path, f: F) -> io::Result<std::thread::JoinHandle<io::Result<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let file = File::open(ns).map_err(|e| io_err(format!("open {}", ns.display()), e))?;
    let label = ns.display().to_string();
    Ok(std::thread::spawn(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| io_err(format!("setns {label}"), e))?;
        f()
    }))
}

/// Runs `f` inside the namespace at `ns` (see [`spawn_in`]) and waits for it.
pub fn run_in<T, F>(ns: &Path, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    spawn_in(ns, f)?
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// A command that will run inside the namespace at `ns`.
pub fn command(ns: &Path, program: impl AsRef<std::ffi::OsStr>) -> io::Result<Command> {
    let file = File::open(ns).map_err(|e| io_err(format!("open {}", ns.display()), e))?;
    let mut cmd = Command::new(program);
    // SAFETY: the closure only calls setns(2), which is async-signal-safe, on
    // a descriptor opened before fork.
    unsafe {
        cmd.pre_exec(move || {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
        });
    }
    Ok(cmd)
}

/// Runs `program` with `args` inside the namespace at `ns` and returns
/// its standard output; an exit status other than 0 is an error carrying
/// the status and the standard error.
pub fn output(ns: &Path, program: &str, args: &[&str]) -> io::Result<String> {
    let out = command(ns, program)?.args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Processes whose network namespace is the one at `ns` (like `ip netns pids`).
pub fn pids(ns: &Path) -> Vec<Pid> {
    let Ok(meta) = std::fs::metadata(ns) else {
        return Vec::new();
    };
    let (dev, ino) = (meta.dev(), meta.ino());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
        })
        .map(Pid::from_raw)
        .collect()
}

/// Stops every process in the namespace: SIGTERM, then SIGKILL for those
/// still there after `grace`.
pub fn kill_all(ns: &Path, grace: Duration) {
    for pid in pids(ns) {
        let _ = kill(pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !pids(ns).is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids(ns) {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && !pids(ns).is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the namespace's processes and removes it. Interfaces inside it
/// vanish with it (a veth pair dies with either end).
pub fn delete(name: &str) -> io::Result<()> {
    let p = path(name);
    if !p.exists() {
        return Ok(());
    }
    kill_all(&p, Duration::from_millis(1500));
    let _ = umount2(&p, MntFlags::MNT_DETACH);
    std::fs::remove_file(&p).map_err(|e| io_err(format!("remove {}", p.display()), e))
}

/// Names of existing namespaces that start with `prefix`.
pub fn list(prefix: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut v: Vec<String> = dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// Sets a `net.*` sysctl inside the namespace; /proc/sys/net follows the
/// namespace of the thread that opens it.
pub fn sysctl(ns: &Path, key: &str, value: &str) -> io::Result<()> {
    let file = format!("/proc/sys/{}", key.replace('.', "/"));
    let value = value.to_string();
    let key = key.to_string();
    run_in(ns, move || {
        std::fs::write(&file, value.as_bytes()).map_err(|e| io_err(format!("sysctl {key}"), e))
    })
}
