//! A throwaway VM with a kernel that has IPVS, for tests on machines whose
//! own kernel has none.
//!
//! [`Vm::run`] boots Debian's `linux-image-amd64` kernel under
//! `qemu-system-x86_64 -accel tcg` (KVM hangs on the machines this was
//! written for), with the host's root shared read-only over 9p and a tmpfs
//! overlay on top, and runs one shell command in it as root, in the
//! caller's working directory: every host binary (a cargo build, ipvsadm,
//! FRR, BIRD, tcpdump) runs inside a kernel with IPVS, namespaces and veth.
//! The VM has no network device, so nothing it does can reach outside.
//!
//! The kernel and a small busybox initramfs holding the needed modules are
//! prepared once (`apt-get download`, `dpkg -x`) and kept under
//! [`cache_dir`]; a lock file makes concurrent first use safe. The command's
//! stdout, stderr and exit status come back through a second, writable 9p
//! share (one directory per run), so they are exact and never mixed with
//! the kernel's console, which is kept apart for diagnostics.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{Flock, FlockArg};

/// The default cache, when `ANYCASTD_VM_CACHE` is not set.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/anycastd-lab/vm";

/// Debian's kernel metapackage; its dependency names the kernel to use.
const KERNEL_METAPACKAGE: &str = "linux-image-amd64";

/// Modules loaded at boot, with their `depends=` (and the soft
/// dependencies below) loaded first. 9p, virtio and overlay mount the
/// host's root; the rest is what the lab and IPVS tests use.
pub const MODULES: &[&str] = &[
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "overlay",
    "nf_conntrack",
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_lblc",
    "ip_vs_lblcr",
    "ip_vs_dh",
    "ip_vs_sh",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_mh",
    "veth",
    "bridge",
    "dummy",
    "ipip",
    "nlmon",
    "sch_netem",
];

/// Soft dependencies (`softdep=pre: NAME`) name an alias, not a module:
/// the module that provides it under TCG's CPU (no SSE 4.2 needed).
const SOFTDEP_PROVIDERS: &[(&str, &str)] = &[("crc32c", "crc32c_generic")];

/// Stage 1, `/init` of the initramfs (busybox sh): load the modules, mount
/// the host's root read-only with a tmpfs overlay, mount the usual
/// filesystems in it, and switch to it.
const STAGE1: &str = r#"#!/bin/busybox sh
# anycastd-lab VM, stage 1 (initramfs): modules, host root, switch_root.
/bin/busybox --install -s /bin
export PATH=/bin
fail() {
  echo "ANYCASTD-VM-FAIL: $*"
  echo o > /proc/sysrq-trigger
  sleep 60
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Only emergencies on the console while the command runs.
echo 1 > /proc/sys/kernel/printk
while read -r m; do
  insmod "/lib/modules/$m.ko" || fail "insmod $m"
done < /modules
O9P=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$O9P,ro,cache=loose" hostroot /ro || fail "mount the host root (9p)"
mount -t tmpfs -o mode=0755 overlay-rw /rw || fail "mount tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/ro,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
  || fail "mount the overlay root"
R=/newroot
mkdir -p /job
mount -t 9p -o "$O9P" job /job || fail "mount the job directory (9p)"
# A working directory under /tmp or /run (a CI checkout, say) would vanish
# under the VM's own tmpfs there: keep the host's (overlaid) one.
CWD=$(cat /job/cwd)
case "$CWD" in
  /tmp/*|/run/*) mkdir -p /keep; mount -o bind "$R$CWD" /keep || fail "bind $CWD" ;;
esac
mount -t proc proc $R/proc || fail "mount /proc"
mount -t sysfs sysfs $R/sys || fail "mount /sys"
mount -t devtmpfs devtmpfs $R/dev || fail "mount /dev"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t tmpfs -o mode=0755 run $R/run || fail "mount /run"
mount -t tmpfs -o mode=1777 tmp $R/tmp || fail "mount /tmp"
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mkdir -p $R/run/anycastd-vm/job
mount -o bind /job $R/run/anycastd-vm/job || fail "bind the job directory"
if [ -d /keep ]; then
  mkdir -p "$R$CWD" && mount -o bind /keep "$R$CWD" || fail "bind $CWD back"
fi
cp /stage2 /bin/busybox $R/run/anycastd-vm/
ip link set lo up
[ -x $R/bin/sh ] || fail "the host has no /bin/sh"
umount /sys /dev
umount /proc
exec switch_root $R /run/anycastd-vm/busybox sh /run/anycastd-vm/stage2
"#;

/// Stage 2, PID 1 on the host's root: run the command with the host's
/// /bin/sh, the results going to the job directory, then power off. It runs
/// in busybox from the tmpfs /run, not the host's shell: power-off shuts the
/// 9p device down while PID 1 still has to exec `sleep`, and an init that
/// fails to exec and exits panics the kernel.
const STAGE2: &str = r#"# anycastd-lab VM, stage 2: run the command, report, power off.
PATH=/run/anycastd-vm:$PATH
J=/run/anycastd-vm/job
. "$J/env"
if cd "$(cat "$J/cwd")"; then
  : > "$J/started"
  /bin/sh -c "$(cat "$J/cmd")" < /dev/null > "$J/stdout" 2> "$J/stderr"
  rc=$?
else
  echo "anycastd-lab vm: cannot enter $(cat "$J/cwd")" > "$J/stderr"
  rc=125
fi
echo "ANYCASTD-VM-EXIT $rc"
echo "$rc" > "$J/status"
echo o > /proc/sysrq-trigger
while :; do /run/anycastd-vm/busybox sleep 60; done
"#;

/// Changes whenever the initramfs would come out differently, so a cached
/// one from an older version of this file is not reused.
const FORMAT: &str = "anycastd-vm-initramfs-3";

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// A tool is missing: the message says which package to install.
    #[error("{0}")]
    Missing(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("prepare the VM kernel: {0}")]
    Prepare(String),
    #[error(
        "the VM did not run the command: {reason}\n--- VM console (last lines) ---\n{console}"
    )]
    Boot { reason: String, console: String },
    #[error(
        "the VM timed out after {} s ({}); qemu was killed\n--- VM console (last lines) ---\n{console}",
        after.as_secs(),
        if *started { "the command was running" } else { "still booting" }
    )]
    Timeout {
        after: Duration,
        started: bool,
        console: String,
    },
}

trait Context<T> {
    fn context(self, c: impl FnOnce() -> String) -> Result<T, VmError>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, c: impl FnOnce() -> String) -> Result<T, VmError> {
        self.map_err(|source| VmError::Io {
            context: c(),
            source,
        })
    }
}

/// How to run the VM.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// Guest memory, MiB.
    pub mem_mb: u32,
    pub cpus: u32,
    /// From starting qemu to the command's end; qemu is killed after it.
    pub timeout: Duration,
    /// Working directory of the command (default: the caller's). The
    /// guest sees the host's files at the same paths.
    pub cwd: Option<PathBuf>,
    /// Extra environment for the command (it also gets PATH, HOME, LANG).
    pub env: Vec<(String, String)>,
    /// Copy the command's stdout and stderr to ours while it runs.
    pub echo: bool,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            mem_mb: 1536,
            cpus: 2,
            timeout: Duration::from_secs(300),
            cwd: None,
            env: Vec::new(),
            echo: false,
        }
    }
}

/// What a command run in the VM did.
#[derive(Debug, Clone)]
pub struct VmOutput {
    /// The command's exit status (128 + N when signal N killed it, as
    /// `sh` reports it).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    /// The kernel's serial console (boot messages, the exit marker), for
    /// diagnostics.
    pub console: String,
    /// From starting qemu to starting the command.
    pub boot: Option<Duration>,
    /// From starting qemu to its exit.
    pub elapsed: Duration,
    /// Set when this run prepared the kernel and initramfs first.
    pub prepared_in: Option<Duration>,
}

impl VmOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A prepared kernel and initramfs.
#[derive(Debug, Clone)]
pub struct VmImage {
    /// The kernel release, e.g. `6.1.0-56-amd64`.
    pub release: String,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// Modules in the initramfs, in load order.
    pub modules: Vec<String>,
    /// Set when this call prepared the image (downloaded and built it).
    pub prepared_in: Option<Duration>,
}

/// The cache of kernels and initramfs images: `$ANYCASTD_VM_CACHE`, or
/// [`DEFAULT_CACHE_DIR`]. Delete it to move to a newer kernel.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("ANYCASTD_VM_CACHE")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), PathBuf::from)
}

pub struct Vm;

impl Vm {
    /// Boots the VM, runs `cmd` with `/bin/sh -c` as root and returns its
    /// output and status once the VM has powered off. Writes of the command
    /// land in the guest's tmpfs overlay and are gone afterwards; the
    /// guest's /tmp and /run are empty tmpfs, except for the working
    /// directory, which stays visible (overlaid) when it lies below them.
    pub fn run(cmd: &str, opts: &VmOptions) -> Result<VmOutput, VmError> {
        let qemu = find_program("qemu-system-x86_64").ok_or_else(|| {
            VmError::Missing(
                "install qemu-system-x86: qemu-system-x86_64 is not on PATH \
                 (apt-get install qemu-system-x86)"
                    .into(),
            )
        })?;
        let image = prepare()?;
        let cwd = match &opts.cwd {
            Some(c) => c.clone(),
            None => std::env::current_dir().context(|| "the current directory".into())?,
        };
        let cwd = std::fs::canonicalize(&cwd).context(|| format!("{}", cwd.display()))?;
        let job = JobDir::create(&cache_dir())?;
        job.write("cmd", cmd)?;
        job.write("cwd", &cwd.to_string_lossy())?;
        job.write("env", &env_script(&opts.env))?;

        let mut command = Command::new(qemu);
        command
            .args(qemu_args(&image, &job.path, opts))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(job.path.join("qemu.err")).context(|| "qemu.err".into())?);
        // SAFETY: set_pdeathsig is async-signal-safe (one prctl call).
        unsafe {
            command.pre_exec(|| {
                // qemu dies with the thread that started it, even on SIGKILL.
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let started_at = SystemTime::now();
        let start = Instant::now();
        let mut qemu = Qemu(
            command
                .spawn()
                .context(|| "start qemu-system-x86_64".into())?,
        );

        let mut echo = Echo::default();
        let exit = loop {
            if opts.echo {
                echo.forward(&job.path);
            }
            if let Some(status) = qemu.0.try_wait().context(|| "wait for qemu".into())? {
                break status;
            }
            if start.elapsed() >= opts.timeout {
                qemu.kill();
                return Err(VmError::Timeout {
                    after: opts.timeout,
                    started: job.path.join("started").exists(),
                    console: crate::tail(&job.read("console"), 30),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let elapsed = start.elapsed();
        if opts.echo {
            echo.forward(&job.path);
        }
        let console = job.read("console");
        let Some(status) = job.read("status").trim().parse::<i32>().ok() else {
            let reason = console
                .lines()
                .find_map(|l| {
                    l.split_once("ANYCASTD-VM-FAIL: ")
                        .map(|(_, r)| r.to_string())
                })
                .unwrap_or_else(|| {
                    let err = job.read("qemu.err");
                    format!(
                        "qemu exited ({exit}) before the command finished: {}",
                        err.trim()
                    )
                });
            return Err(VmError::Boot {
                reason,
                console: crate::tail(&console, 30),
            });
        };
        let boot = std::fs::metadata(job.path.join("started"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(started_at).ok());
        Ok(VmOutput {
            status,
            stdout: job.read("stdout"),
            stderr: job.read("stderr"),
            console,
            boot,
            elapsed,
            prepared_in: image.prepared_in,
        })
    }
}

fn qemu_args(image: &VmImage, job: &Path, opts: &VmOptions) -> Vec<String> {
    let append = [
        "console=ttyS0",
        "loglevel=4",
        "panic=-1",
        "rdinit=/init",
        "mitigations=off",
        "8250.nr_uarts=1",
        "random.trust_cpu=on",
        "edd=off",
    ]
    .join(" ");
    let mut args: Vec<String> = [
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-monitor",
        "none",
        // No network device at all: nothing leaves the VM.
        "-nic",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "-m".into(),
        opts.mem_mb.to_string(),
        "-smp".into(),
        opts.cpus.to_string(),
        "-kernel".into(),
        image.kernel.display().to_string(),
        "-initrd".into(),
        image.initramfs.display().to_string(),
        "-append".into(),
        append,
        "-serial".into(),
        format!("file:{}", job.join("console").display()),
        "-virtfs".into(),
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap".into(),
        "-virtfs".into(),
        format!(
            "local,path={},mount_tag=job,security_model=none,multidevs=remap",
            job.display()
        ),
    ]);
    args
}

/// `export NAME='value'` lines for stage 2.
fn env_script(extra: &[(String, String)]) -> String {
    const STANDARD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let path = match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{STANDARD_PATH}"),
        _ => STANDARD_PATH.to_string(),
    };
    let mut vars = vec![
        ("PATH".to_string(), path),
        ("HOME".to_string(), "/root".to_string()),
        ("USER".to_string(), "root".to_string()),
        ("LOGNAME".to_string(), "root".to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("TERM".to_string(), "dumb".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    let mut s = String::new();
    for (k, v) in vars {
        let _ = writeln!(s, "export {k}={}", shell_quote(&v));
    }
    s
}

/// `word` quoted for sh.
/// Whether this kernel has IPVS (loaded or as a module), so an IPVS
/// scenario can run here rather than in the VM.
pub fn kernel_has_ipvs() -> bool {
    std::path::Path::new("/proc/net/ip_vs").exists()
        || std::fs::read_to_string("/proc/modules").is_ok_and(|m| m.contains("ip_vs "))
}

/// Runs an IPVS test's `scenario` here when this kernel has IPVS or this
/// is already the run inside the VM (`inner_env` set); otherwise runs test
/// `test` of the calling test binary again inside the VM with
/// `inner_env=1`, echoes what it printed, and panics unless it exited 0
/// having printed `passed_marker` (so a run cut short fails too).
pub fn run_here_or_in_vm(
    test: &str,
    inner_env: &str,
    timeout: Duration,
    cwd: &Path,
    passed_marker: &str,
    scenario: impl FnOnce(),
) {
    if std::env::var_os(inner_env).is_some() || kernel_has_ipvs() {
        scenario();
        return;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("test binary path: {e}"));
    let cmd = format!("{} --exact {test} --nocapture", exe.display());
    let opts = VmOptions {
        timeout,
        env: vec![(inner_env.into(), "1".into())],
        cwd: Some(cwd.to_path_buf()),
        ..Default::default()
    };
    let out = Vm::run(&cmd, &opts).unwrap_or_else(|e| panic!("the VM run failed: {e}"));
    println!("{}", out.stdout);
    eprintln!("{}", out.stderr);
    assert_eq!(
        out.status, 0,
        "the scenario failed inside the VM (its output is above)"
    );
    assert!(
        out.stdout.contains(passed_marker),
        "the inner run did not finish"
    );
}

pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The shell command for `anycastd-lab vm -- ARGS`: one argument is a
/// shell command line as it is; several are a program and its arguments,
/// quoted.
pub fn shell_command(args: &[String]) -> String {
    match args {
        [one] => one.clone(),
        _ => args
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The qemu process: killed and reaped when dropped (timeout, error,
/// panic).
struct Qemu(Child);

impl Qemu {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.kill();
        }
    }
}

/// Copies what the command has written so far to our stdout and stderr.
#[derive(Default)]
struct Echo {
    stdout: u64,
    stderr: u64,
}

impl Echo {
    fn forward(&mut self, job: &Path) {
        fn copy(path: &Path, offset: &mut u64, out: &mut dyn Write) {
            let Ok(mut f) = File::open(path) else { return };
            if f.seek(SeekFrom::Start(*offset)).is_err() {
                return;
            }
            let mut buf = Vec::new();
            if f.read_to_end(&mut buf).is_ok() && !buf.is_empty() {
                *offset += buf.len() as u64;
                let _ = out.write_all(&buf);
                let _ = out.flush();
            }
        }
        copy(
            &job.join("stdout"),
            &mut self.stdout,
            &mut std::io::stdout(),
        );
        copy(
            &job.join("stderr"),
            &mut self.stderr,
            &mut std::io::stderr(),
        );
    }
}

/// One run's directory, shared writable with the guest; removed on drop.
struct JobDir {
    path: PathBuf,
}

static JOBS: AtomicUsize = AtomicUsize::new(0);

impl JobDir {
    fn create(cache: &Path) -> Result<JobDir, VmError> {
        let jobs = cache.join("jobs");
        std::fs::create_dir_all(&jobs).context(|| format!("create {}", jobs.display()))?;
        // Directories of runs whose process died without cleaning up.
        if let Ok(entries) = std::fs::read_dir(&jobs) {
            for e in entries.filter_map(Result::ok) {
                let name = e.file_name().to_string_lossy().to_string();
                let pid = name.split('-').next().unwrap_or_default();
                if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let n = JOBS.fetch_add(1, Ordering::Relaxed);
        let path = jobs.join(format!("{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).context(|| format!("create {}", path.display()))?;
        Ok(JobDir { path })
    }

    fn write(&self, name: &str, content: &str) -> Result<(), VmError> {
        let p = self.path.join(name);
        std::fs::write(&p, content).context(|| format!("write {}", p.display()))
    }

    fn read(&self, name: &str) -> String {
        std::fs::read(self.path.join(name))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Finds the prepared kernel and initramfs in the cache, or prepares them:
/// downloads the kernel package named by `linux-image-amd64`, unpacks it,
/// and packs busybox and the [`MODULES`] with their dependencies into an
/// initramfs. Safe to call from several processes at once.
pub fn prepare() -> Result<VmImage, VmError> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).context(|| format!("create {}", cache.display()))?;
    let lock_path = cache.join("lock");
    let lock_file = File::create(&lock_path).context(|| format!("open {}", lock_path.display()))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, e)| VmError::Io {
        context: format!("lock {}", lock_path.display()),
        source: e.into(),
    })?;
    let key = format!("{:016x}", fnv1a(&image_recipe()));
    if let Some(image) = cached_image(&cache, &key) {
        return Ok(image);
    }
    let start = Instant::now();
    let mut image = build_image(&cache, &key)?;
    image.prepared_in = Some(start.elapsed());
    Ok(image)
}

/// Everything the initramfs is made from, apart from the kernel.
fn image_recipe() -> Vec<u8> {
    [FORMAT, STAGE1, STAGE2, &MODULES.join(",")]
        .join("\n")
        .into_bytes()
}

/// The newest ready image for `key`: a directory `RELEASE-KEY` holding
/// `vmlinuz`, `modules` and (written last) `initramfs.cpio`.
fn cached_image(cache: &Path, key: &str) -> Option<VmImage> {
    let suffix = format!("-{key}");
    let mut found: Vec<(SystemTime, VmImage)> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let release = name.strip_suffix(&suffix)?.to_string();
            let dir = e.path();
            let initramfs = dir.join("initramfs.cpio");
            let mtime = std::fs::metadata(&initramfs).ok()?.modified().ok()?;
            let modules = std::fs::read_to_string(dir.join("modules")).ok()?;
            Some((
                mtime,
                VmImage {
                    release,
                    kernel: ["vmlinux", "vmlinuz"]
                        .iter()
                        .map(|k| dir.join(k))
                        .find(|k| k.is_file())?,
                    initramfs,
                    modules: modules.lines().map(str::to_string).collect(),
                    prepared_in: None,
                },
            ))
        })
        .collect();
    found.sort_by_key(|(t, _)| *t);
    found.pop().map(|(_, i)| i)
}

fn build_image(cache: &Path, key: &str) -> Result<VmImage, VmError> {
    for (tool, package) in [("apt-get", "apt"), ("apt-cache", "apt"), ("dpkg", "dpkg")] {
        if find_program(tool).is_none() {
            return Err(VmError::Missing(format!(
                "install {package}: {tool} is not on PATH (the VM kernel comes from Debian's \
                 {KERNEL_METAPACKAGE})"
            )));
        }
    }
    let busybox = static_busybox()?;
    let package = kernel_package()?;
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_string();

    let work = cache.join(format!("build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).context(|| format!("create {}", work.display()))?;
    let result = build_in(&work, cache, key, &package, &release, &busybox);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn build_in(
    work: &Path,
    cache: &Path,
    key: &str,
    package: &str,
    release: &str,
    busybox: &[u8],
) -> Result<VmImage, VmError> {
    run_tool(
        Command::new("apt-get").current_dir(work).args([
            "-q",
            "-o",
            "APT::Sandbox::User=root",
            "download",
            package,
        ]),
        &format!("apt-get download {package} (try `apt-get update` first)"),
    )?;
    let deb = std::fs::read_dir(work)
        .context(|| format!("list {}", work.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| VmError::Prepare(format!("apt-get download {package} left no .deb")))?;
    let root = work.join("root");
    run_tool(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&root),
        &format!("dpkg -x {}", deb.display()),
    )?;
    let _ = std::fs::remove_file(&deb);

    let vmlinuz = root.join(format!("boot/vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        return Err(VmError::Prepare(format!(
            "{package} has no /boot/vmlinuz-{release}"
        )));
    }
    let moddir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| root.join(d).join(release))
        .find(|d| d.is_dir())
        .ok_or_else(|| VmError::Prepare(format!("{package} has no modules directory")))?;
    let mut index = HashMap::new();
    index_modules(&moddir.join("kernel"), &mut index)?;
    let builtin: BTreeSet<String> = std::fs::read_to_string(moddir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .map(|f| module_name(f.trim_end_matches(".ko")))
        .collect();
    let mut blobs: HashMap<String, Vec<u8>> = HashMap::new();
    let order = load_order(MODULES, &builtin, |name| {
        let path = index.get(name).ok_or_else(|| {
            VmError::Prepare(format!("{package} has no module {name} (needed by the VM)"))
        })?;
        let data = std::fs::read(path).context(|| format!("read {}", path.display()))?;
        let info = modinfo(&data)
            .ok_or_else(|| VmError::Prepare(format!("{}: no .modinfo section", path.display())))?;
        blobs.insert(name.to_string(), data);
        Ok(info)
    })?;

    let mut cpio = Cpio::default();
    for dir in [
        "bin",
        "dev",
        "proc",
        "sys",
        "ro",
        "rw",
        "newroot",
        "lib",
        "lib/modules",
    ] {
        cpio.dir(dir);
    }
    // The kernel opens /dev/console for init before anything mounts /dev.
    cpio.char_device("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, busybox);
    cpio.file("init", 0o755, STAGE1.as_bytes());
    cpio.file("stage2", 0o644, STAGE2.as_bytes());
    let list: String = order.iter().map(|m| format!("{m}\n")).collect();
    cpio.file("modules", 0o644, list.as_bytes());
    for m in &order {
        cpio.file(&format!("lib/modules/{m}.ko"), 0o644, &blobs[m]);
    }

    let staged = work.join("image");
    std::fs::create_dir(&staged).context(|| format!("create {}", staged.display()))?;
    let compressed = std::fs::read(&vmlinuz).context(|| format!("read {}", vmlinuz.display()))?;
    let kernel = match pvh_kernel(&compressed, work) {
        Some(elf) => {
            std::fs::write(staged.join("vmlinux"), elf).context(|| "write vmlinux".into())?;
            "vmlinux"
        }
        None => {
            std::fs::write(staged.join("vmlinuz"), &compressed)
                .context(|| "write vmlinuz".into())?;
            "vmlinuz"
        }
    };
    std::fs::write(staged.join("modules"), &list).context(|| "write modules".into())?;
    std::fs::write(staged.join("initramfs.cpio"), cpio.finish())
        .context(|| "write initramfs.cpio".into())?;
    let dir = cache.join(format!("{release}-{key}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staged, &dir).context(|| format!("create {}", dir.display()))?;
    // Images of older kernels or older versions of this file. Running VMs
    // have read theirs into memory already.
    for e in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        if e.path() != dir && e.path().join("initramfs.cpio").is_file() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    Ok(VmImage {
        release: release.to_string(),
        kernel: dir.join(kernel),
        initramfs: dir.join("initramfs.cpio"),
        modules: order,
        prepared_in: None,
    })
}

/// The uncompressed kernel inside a bzImage, when it can boot straight
/// into its PVH entry point: qemu then skips the BIOS boot path and the
/// kernel's self-decompression, about 4 s of a TCG boot. `None` (boot the
/// bzImage) when it is not xz-compressed, `xz` is missing, or it has no
/// PVH entry.
fn pvh_kernel(bzimage: &[u8], work: &Path) -> Option<Vec<u8>> {
    const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
    let at = bzimage
        .windows(XZ_MAGIC.len())
        .position(|w| w == XZ_MAGIC)?;
    let payload = work.join("vmlinux.xz");
    std::fs::write(&payload, &bzimage[at..]).ok()?;
    // --single-stream: the bzImage has more after the xz stream.
    let out = Command::new(find_program("xz")?)
        .args(["-dc", "--single-stream"])
        .arg(&payload)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&payload);
    (out.status.success() && has_pvh_entry(&out.stdout)).then_some(out.stdout)
}

/// Whether an ELF kernel has the Xen PVH entry note
/// (`XEN_ELFNOTE_PHYS32_ENTRY`), which qemu needs to boot it directly.
fn has_pvh_entry(elf: &[u8]) -> bool {
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    let Some(mut notes) = elf_section(elf, ".notes") else {
        return false;
    };
    let align4 = |n: usize| n.div_ceil(4) * 4;
    while let (Some(namesz), Some(descsz), Some(kind)) =
        (le_u32(notes, 0), le_u32(notes, 4), le_u32(notes, 8))
    {
        let (namesz, descsz) = (namesz as usize, descsz as usize);
        if notes.get(12..12 + namesz) == Some(b"Xen\0") && kind == XEN_ELFNOTE_PHYS32_ENTRY {
            return true;
        }
        let Some(rest) = notes.get(12 + align4(namesz) + align4(descsz)..) else {
            return false;
        };
        notes = rest;
    }
    false
}

fn run_tool(cmd: &mut Command, what: &str) -> Result<(), VmError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context(|| what.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    Err(VmError::Prepare(format!(
        "{what}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The kernel package `linux-image-amd64` depends on, e.g.
/// `linux-image-6.1.0-56-amd64`.
fn kernel_package() -> Result<String, VmError> {
    let out = Command::new("apt-cache")
        .args(["depends", KERNEL_METAPACKAGE])
        .stdin(Stdio::null())
        .output()
        .context(|| format!("apt-cache depends {KERNEL_METAPACKAGE}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && !p.starts_with('<'))
        .map(str::to_string)
        .ok_or_else(|| {
            VmError::Prepare(format!(
                "apt knows no {KERNEL_METAPACKAGE}: run `apt-get update` ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })
}

/// busybox-static's binary: it has to run in the initramfs with no
/// libraries, so a dynamically linked busybox will not do.
fn static_busybox() -> Result<Vec<u8>, VmError> {
    let missing = |why: &str| {
        VmError::Missing(format!(
            "install busybox-static: {why} (apt-get install busybox-static)"
        ))
    };
    let path = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| missing("no /bin/busybox"))?;
    let data = std::fs::read(&path).context(|| format!("read {}", path.display()))?;
    match elf_is_static(&data) {
        Some(true) => Ok(data),
        Some(false) => Err(missing(&format!(
            "{} is dynamically linked",
            path.display()
        ))),
        None => Err(missing(&format!("{} is not a 64-bit ELF", path.display()))),
    }
}

/// Module names use `_` where file names may use `-`.
fn module_name(file_stem: &str) -> String {
    file_stem.replace('-', "_")
}

fn index_modules(dir: &Path, index: &mut HashMap<String, PathBuf>) -> Result<(), VmError> {
    for e in std::fs::read_dir(dir).context(|| format!("list {}", dir.display()))? {
        let e = e.context(|| format!("list {}", dir.display()))?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            index_modules(&path, index)?;
        } else if let Some(stem) = name.strip_suffix(".ko") {
            index.insert(module_name(stem), path);
        } else if name.contains(".ko.") {
            return Err(VmError::Prepare(format!(
                "{}: compressed modules are not supported",
                path.display()
            )));
        }
    }
    Ok(())
}

/// What the loader needs from a module's `.modinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ModInfo {
    depends: Vec<String>,
    /// `softdep=pre: ...` names (aliases or modules).
    pre: Vec<String>,
}

/// Modules in an order `insmod` accepts: each after its soft (pre) and
/// hard dependencies. `info` reads one module; builtin ones are skipped.
fn load_order(
    wanted: &[&str],
    builtin: &BTreeSet<String>,
    mut info: impl FnMut(&str) -> Result<ModInfo, VmError>,
) -> Result<Vec<String>, VmError> {
    fn visit(
        name: &str,
        builtin: &BTreeSet<String>,
        info: &mut dyn FnMut(&str) -> Result<ModInfo, VmError>,
        order: &mut Vec<String>,
        visiting: &mut Vec<String>,
    ) -> Result<(), VmError> {
        if builtin.contains(name) || order.iter().any(|m| m == name) {
            return Ok(());
        }
        if visiting.iter().any(|m| m == name) {
            return Err(VmError::Prepare(format!(
                "module dependency cycle: {} -> {name}",
                visiting.join(" -> ")
            )));
        }
        visiting.push(name.to_string());
        let mi = info(name)?;
        for pre in &mi.pre {
            let provider = SOFTDEP_PROVIDERS
                .iter()
                .find(|(alias, _)| alias == pre)
                .map_or(pre.as_str(), |(_, m)| m);
            visit(provider, builtin, info, order, visiting)?;
        }
        for dep in &mi.depends {
            visit(dep, builtin, info, order, visiting)?;
        }
        visiting.pop();
        order.push(name.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    let mut visiting = Vec::new();
    for m in wanted {
        visit(
            &module_name(m),
            builtin,
            &mut info,
            &mut order,
            &mut visiting,
        )?;
    }
    Ok(order)
}

/// Parses the `.modinfo` section of a module (NUL-separated `key=value`).
fn modinfo(ko: &[u8]) -> Option<ModInfo> {
    let section = elf_section(ko, ".modinfo")?;
    let mut mi = ModInfo::default();
    for field in section.split(|&b| b == 0) {
        let field = String::from_utf8_lossy(field);
        if let Some(v) = field.strip_prefix("depends=") {
            mi.depends
                .extend(v.split(',').filter(|s| !s.is_empty()).map(module_name));
        } else if let Some(v) = field.strip_prefix("softdep=") {
            // "pre: a b post: c"
            let mut pre = false;
            for word in v.split_whitespace() {
                match word {
                    "pre:" => pre = true,
                    "post:" => pre = false,
                    w if pre => mi.pre.push(module_name(w)),
                    _ => {}
                }
            }
        }
    }
    Some(mi)
}

fn le_u16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(d: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?)).ok()
}

/// A 64-bit little-endian ELF file?
fn is_elf64(d: &[u8]) -> bool {
    d.len() >= 64 && d[..4] == *b"\x7fELF" && d[4] == 2 && d[5] == 1
}

/// The contents of section `name` of a 64-bit little-endian ELF file.
fn elf_section<'a>(d: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if !is_elf64(d) {
        return None;
    }
    let shoff = le_u64(d, 0x28)?;
    let shentsize = usize::from(le_u16(d, 0x3a)?);
    let shnum = usize::from(le_u16(d, 0x3c)?);
    let shstrndx = usize::from(le_u16(d, 0x3e)?);
    let header = |i: usize| -> Option<(usize, usize, usize)> {
        let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = le_u32(d, h)? as usize;
        let offset = le_u64(d, h + 0x18)?;
        let size = le_u64(d, h + 0x20)?;
        Some((name, offset, size))
    };
    let (_, stroff, strsize) = header(shstrndx)?;
    let strtab = d.get(stroff..stroff.checked_add(strsize)?)?;
    (0..shnum).find_map(|i| {
        let (n, off, size) = header(i)?;
        let rest = strtab.get(n..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        (rest[..end] == *name.as_bytes()).then(|| d.get(off..off.checked_add(size)?))?
    })
}

/// Whether an executable is statically linked (has no PT_INTERP program
/// header); `None` when it is no 64-bit little-endian ELF file.
fn elf_is_static(d: &[u8]) -> Option<bool> {
    if !is_elf64(d) {
        return None;
    }
    let phoff = le_u64(d, 0x20)?;
    let phentsize = usize::from(le_u16(d, 0x36)?);
    let phnum = usize::from(le_u16(d, 0x38)?);
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        if le_u32(d, phoff + i * phentsize)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

/// A `cpio -H newc` archive, the format the kernel unpacks as initramfs.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).expect("initramfs file under 4 GiB"),
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).expect("short name"),
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100000 | perm, (0, 0), data);
    }

    fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, 0o020000 | perm, (major, minor), &[]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// 64-bit FNV-1a: a stable fingerprint for cache keys.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_order_puts_dependencies_and_soft_dependencies_first() {
        let infos: HashMap<&str, ModInfo> = [
            (
                "ip_vs",
                ModInfo {
                    depends: vec!["nf_conntrack".into(), "libcrc32c".into()],
                    pre: vec![],
                },
            ),
            (
                "nf_conntrack",
                ModInfo {
                    depends: vec!["libcrc32c".into(), "nf_defrag_ipv4".into()],
                    pre: vec![],
                },
            ),
            (
                "libcrc32c",
                ModInfo {
                    depends: vec![],
                    pre: vec!["crc32c".into()],
                },
            ),
            ("crc32c_generic", ModInfo::default()),
            ("nf_defrag_ipv4", ModInfo::default()),
            (
                "ip_vs_mh",
                ModInfo {
                    depends: vec!["ip_vs".into()],
                    pre: vec![],
                },
            ),
        ]
        .into_iter()
        .collect();
        let builtin: BTreeSet<String> = ["nf_defrag_ipv4".to_string()].into();
        let order = load_order(&["ip_vs_mh", "ip_vs", "veth-builtin"], &builtin, |m| {
            infos
                .get(m)
                .cloned()
                .ok_or_else(|| VmError::Prepare(format!("no {m}")))
        });
        // A module that is neither builtin nor present is an error.
        assert!(order.is_err());
        let order = load_order(&["ip_vs_mh", "ip_vs"], &builtin, |m| Ok(infos[m].clone())).unwrap();
        assert_eq!(
            order,
            [
                "crc32c_generic",
                "libcrc32c",
                "nf_conntrack",
                "ip_vs",
                "ip_vs_mh"
            ]
        );
    }

    #[test]
    fn load_order_reports_cycles() {
        let err = load_order(&["a"], &BTreeSet::new(), |m| {
            Ok(ModInfo {
                depends: vec![if m == "a" { "b" } else { "a" }.into()],
                pre: vec![],
            })
        })
        .unwrap_err();
        assert!(err.to_string().contains("a -> b -> a"), "{err}");
    }

    /// A minimal ELF64 with one section (`.modinfo` as a module has, or
    /// `.notes`).
    fn fake_elf(name: &str, content: &[u8]) -> Vec<u8> {
        let strtab = format!("\0.shstrtab\0{name}\0").into_bytes();
        let mut d = vec![0u8; 64];
        d[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let strtab_off = d.len();
        d.extend_from_slice(&strtab);
        let info_off = d.len();
        d.extend_from_slice(content);
        while d.len() % 8 != 0 {
            d.push(0);
        }
        let shoff = d.len();
        let mut section = |name: u32, off: usize, size: usize| {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            d.extend_from_slice(&h);
        };
        section(0, 0, 0);
        section(1, strtab_off, strtab.len());
        section(11, info_off, content.len());
        d[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        d[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        d[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        d[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        d
    }

    fn fake_module(modinfo: &[u8]) -> Vec<u8> {
        fake_elf(".modinfo", modinfo)
    }

    #[test]
    fn pvh_entry_note_is_found() {
        let note = |name: &[u8], kind: u32, desc: &[u8]| {
            let mut n = Vec::new();
            n.extend_from_slice(&(name.len() as u32).to_le_bytes());
            n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            n.extend_from_slice(&kind.to_le_bytes());
            n.extend_from_slice(name);
            n.resize(n.len().div_ceil(4) * 4, 0);
            n.extend_from_slice(desc);
            n.resize(n.len().div_ceil(4) * 4, 0);
            n
        };
        let mut notes = note(b"GNU\0", 3, &[1; 20]);
        notes.extend(note(b"Xen\0", 6, b"linux\0"));
        assert!(!has_pvh_entry(&fake_elf(".notes", &notes)));
        notes.extend(note(b"Xen\0", 18, &[0, 0, 0, 1]));
        assert!(has_pvh_entry(&fake_elf(".notes", &notes)));
        assert!(!has_pvh_entry(&fake_elf(".modinfo", &notes)));
    }

    #[test]
    fn modinfo_reads_depends_and_soft_pre_dependencies() {
        let ko = fake_module(
            b"license=GPL\0depends=nf_conntrack,nf-defrag-ipv6\0softdep=pre: crc32c post: x\0name=ip_vs\0",
        );
        assert_eq!(
            modinfo(&ko),
            Some(ModInfo {
                depends: vec!["nf_conntrack".into(), "nf_defrag_ipv6".into()],
                pre: vec!["crc32c".into()],
            })
        );
        let empty = fake_module(b"depends=\0name=veth\0");
        assert_eq!(modinfo(&empty), Some(ModInfo::default()));
        assert_eq!(modinfo(b"not an elf file"), None);
        // No program headers, so no interpreter.
        assert_eq!(elf_is_static(&ko), Some(true));
    }

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut c = Cpio::default();
        c.dir("bin");
        c.file("init", 0o755, b"#!/bin/sh\n");
        c.char_device("dev/console", 0o600, 5, 1);
        let out = c.finish();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("070701").count(), 4);
        assert!(text.contains("TRAILER!!!"));
        // mode of init: 0100755, size 10; console: 020600, rdev 5:1.
        assert!(text.contains("000081ed000000000000000000000001000000000000000a"));
        assert!(text.contains("00002180"));
        assert!(text.contains("0000000500000001"));
    }

    #[test]
    fn commands_are_quoted_for_sh() {
        assert_eq!(shell_command(&["exit 3".into()]), "exit 3");
        assert_eq!(
            shell_command(&["ipvsadm".into(), "-Ln".into()]),
            "ipvsadm -Ln"
        );
        assert_eq!(
            shell_command(&["sh".into(), "-c".into(), "echo 'hi'; exit 2".into()]),
            r#"sh -c 'echo '\''hi'\''; exit 2'"#
        );
        assert_eq!(shell_quote(""), "''");
        let env = env_script(&[("A".into(), "x y".into())]);
        assert!(env.contains("export A='x y'\n"), "{env}");
        assert!(env.contains("export HOME=/root\n"), "{env}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(crate::tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(crate::tail("a", 5), "a");
    }
}
