//! The anycastd lab: network-namespace topologies with FRR and BIRD routers,
//! classic directors, real servers and clients.
//!
//! [`Lab::up`] builds a [`Topology`] and returns a guard that tears it all
//! down again when dropped, on panic, or on SIGINT/SIGTERM.

pub mod anycastd;
pub mod bird;
pub mod forge;
pub mod frr;
pub mod keepalived;
pub mod net;
pub mod netns;
pub mod rogue;
pub mod scenario;
pub mod topology;
pub mod traffic;
pub mod vm;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

pub use ipnetwork::Ipv4Network;
pub use net::{FibChange, FibEntry, FibWatch, Nexthop};
pub use nix::sys::signal::Signal;
pub use rogue::Rogue;
pub use topology::{Implementation, Role, Topology, TopologyError};
pub use traffic::{LoadReport, LoadSpec};

/// Where each lab keeps its configs, logs, pid files and sockets.
pub const STATE_ROOT: &str = "/run/anycastd-lab";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("missing prerequisite: {0}")]
    Missing(String),
    #[error("lab {0} is already up (take it down with `anycastd-lab down {0}`)")]
    Exists(String),
    #[error("lab {0} is not up")]
    NotUp(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

trait Context<T> {
    fn context(self, c: impl FnOnce() -> String) -> Result<T, LabError>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, c: impl FnOnce() -> String) -> Result<T, LabError> {
        self.map_err(|source| LabError::Io {
            context: c(),
            source,
        })
    }
}

/// One LSA instance as a daemon lists it (RFC 2328 12.1: the key and the
/// sequence number): two databases hold the same instances when their
/// sets of these are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LsaId {
    pub lsa_type: u8,
    pub link_state_id: Ipv4Addr,
    pub advertising_router: Ipv4Addr,
    pub sequence: u32,
}

/// A Router-LSA as a daemon shows it (RFC 2328 A.4.2): its sequence
/// number, LS age and stub links (the VIP /32s of a director).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterLsaView {
    pub sequence: u32,
    pub age: u16,
    pub stubs: Vec<Ipv4Network>,
}

impl RouterLsaView {
    /// Whether it has a stub link for `addr`/32.
    pub fn lists(&self, addr: Ipv4Addr) -> bool {
        self.stubs.contains(&Ipv4Network::from(addr))
    }
}

/// A router's view of one OSPF neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OspfNeighbor {
    pub router_id: Ipv4Addr,
    /// RFC 2328 state as the router prints it: `Full`, `2-Way`, `ExStart`...
    pub state: String,
    /// DR, Backup, DROther (FRR) or DR, BDR, Other (BIRD).
    pub role: Option<String>,
    pub address: Ipv4Addr,
    pub ifname: String,
    pub dead_ms: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Lab name; namespaces are called `NAME.NODE`. Defaults to the
    /// topology's name.
    pub name: Option<String>,
    /// The `anycastd` binary, run on anycastd director nodes.
    pub anycastd: Option<PathBuf>,
    /// The `anycastd-lab` binary, run as `anycastd-lab serve-http` on nodes
    /// with an HTTP server.
    pub helper: Option<PathBuf>,
    /// Capture OSPF (IP protocol 89) on every OSPF interface into
    /// `DIR/NODE-IFNAME.pcap`, from before the routing daemons start.
    pub capture: Option<PathBuf>,
}

/// Labs of this process that are up, for the signal handler.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SIGNALS: Once = Once::new();
static UNIQUE: AtomicUsize = AtomicUsize::new(0);

fn install_signal_handler() {
    SIGNALS.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            tracing::warn!("cannot catch SIGINT/SIGTERM; an interrupted lab may stay up");
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let names: Vec<String> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
                for name in names {
                    eprintln!("signal {sig}: tearing down lab {name}");
                    teardown(&name);
                }
                std::process::exit(128 + sig);
            }
        });
    });
}

/// Removes every namespace (and so every process and interface) and every
/// file of lab `name`. Works from any process, also after the one that made
/// the lab died.
pub fn teardown(name: &str) {
    for ns in netns::list(&format!("{name}.")) {
        if let Err(e) = netns::delete(&ns) {
            eprintln!("lab {name}: {e}");
        }
    }
    let dir = Path::new(STATE_ROOT).join(name);
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("lab {name}: remove {}: {e}", dir.display());
        }
    }
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|n| n != name);
    }
}

/// Names of the labs that are up on this machine.
pub fn list() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(STATE_ROOT)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Polls `f` every `step` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(
    timeout: Duration,
    step: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(step);
    }
}

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    pub name: String,
    pub topology: Topology,
    dir: PathBuf,
    helper: Option<PathBuf>,
    anycastd: Option<PathBuf>,
    children: Vec<Child>,
    detached: bool,
    /// When the routing daemons were started.
    pub routing_started: Option<Instant>,
}

fn check_prerequisites(topo: &Topology, opts: &LabOptions) -> Result<(), LabError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(LabError::Missing(
            "root (the lab creates network namespaces)".into(),
        ));
    }
    let uses = |i| topo.nodes.iter().any(|n| n.implementation == Some(i));
    if uses(Implementation::Frr) {
        for bin in ["/usr/lib/frr/zebra", "/usr/lib/frr/ospfd", "/usr/bin/vtysh"] {
            if !Path::new(bin).exists() {
                return Err(LabError::Missing(format!("{bin} (apt-get install frr)")));
            }
        }
        let hmac = topo
            .nodes
            .iter()
            .filter(|n| n.implementation == Some(Implementation::Frr))
            .any(|n| {
                topo.interfaces(&n.name).any(|e| {
                    matches!(
                        e.ospf.as_ref().and_then(|o| o.auth.as_ref()),
                        Some(topology::OspfAuth::HmacSha256 { .. })
                    )
                })
            });
        if hmac {
            return Err(LabError::Missing(
                "HMAC-SHA-256 authentication in FRR 8.4 (use BIRD)".into(),
            ));
        }
    }
    if uses(Implementation::Keepalived) && !Path::new("/usr/sbin/keepalived").exists() {
        return Err(LabError::Missing(
            "/usr/sbin/keepalived (apt-get install keepalived)".into(),
        ));
    }
    if uses(Implementation::Bird) {
        for bin in ["/usr/sbin/bird", "/usr/sbin/birdc"] {
            if !Path::new(bin).exists() {
                return Err(LabError::Missing(format!("{bin} (apt-get install bird2)")));
            }
        }
    }
    if topo
        .nodes
        .iter()
        .any(|n| n.http || n.implementation == Some(Implementation::Anycastd))
    {
        let need = |path: &Option<PathBuf>, what: &str| match path {
            Some(p) if p.exists() => Ok(()),
            Some(p) => Err(LabError::Missing(format!(
                "{what} at {} (build it: cargo build --workspace)",
                p.display()
            ))),
            None => Err(LabError::Missing(format!("{what} (LabOptions)"))),
        };
        if topo.nodes.iter().any(|n| n.http) {
            need(&opts.helper, "the anycastd-lab binary, to run HTTP servers")?;
        }
        if topo
            .nodes
            .iter()
            .any(|n| n.implementation == Some(Implementation::Anycastd))
        {
            need(&opts.anycastd, "the anycastd binary")?;
        }
    }
    Ok(())
}

impl LabOptions {
    /// Options for a test of the `anycastd` package: the daemon at
    /// `anycastd` (`env!("CARGO_BIN_EXE_anycastd")`) and `anycastd-lab`
    /// beside it in the same target directory (`cargo test --workspace`
    /// builds both).
    pub fn with_anycastd(anycastd: impl Into<PathBuf>) -> LabOptions {
        let anycastd: PathBuf = anycastd.into();
        LabOptions {
            name: None,
            helper: Some(anycastd.with_file_name("anycastd-lab")),
            anycastd: Some(anycastd),
            capture: None,
        }
    }

    /// Options for the `anycastd-lab` command: itself as the helper, and
    /// the `anycastd` beside it (the same build), else the one on `PATH`.
    pub fn from_current_exe() -> LabOptions {
        let helper = std::env::current_exe().ok();
        let beside = helper
            .as_ref()
            .map(|h| h.with_file_name("anycastd"))
            .filter(|p| p.exists());
        let on_path = || {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("anycastd"))
                    .find(|p| p.exists())
            })
        };
        LabOptions {
            name: None,
            anycastd: beside.or_else(on_path),
            helper,
            capture: None,
        }
    }
}

impl Lab {
    /// A shipped topology (`topologies/FILE` of this repository) built by
    /// [`Lab::up_unique`] with the anycastd binary at `anycastd` (a test's
    /// `env!("CARGO_BIN_EXE_anycastd")`).
    pub fn up_shipped(file: &str, anycastd: impl Into<PathBuf>) -> Result<Lab, LabError> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../topologies")
            .join(file);
        let topo = Topology::load(&path)?;
        Lab::up_unique(topo, LabOptions::with_anycastd(anycastd))
    }

    /// Builds the topology under a name unique to this process, so tests can
    /// run in parallel.
    pub fn up_unique(topo: Topology, opts: LabOptions) -> Result<Lab, LabError> {
        Lab::up_unique_holding(topo, opts, &[])
    }

    /// [`Lab::up_unique`], leaving the routing daemons of `held` nodes
    /// unstarted (see [`Lab::up_holding`]).
    pub fn up_unique_holding(
        topo: Topology,
        mut opts: LabOptions,
        held: &[&str],
    ) -> Result<Lab, LabError> {
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        opts.name = Some(format!("{}-{}x{n}", topo.name, std::process::id()));
        Lab::up_holding(topo, opts, held)
    }

    pub fn up(topo: Topology, opts: LabOptions) -> Result<Lab, LabError> {
        Lab::up_holding(topo, opts, &[])
    }

    /// Builds the topology but leaves the routing daemons of the `held`
    /// nodes unstarted; [`Lab::start_routing`] starts them later, for
    /// example once the rest of the network has converged.
    pub fn up_holding(topo: Topology, opts: LabOptions, held: &[&str]) -> Result<Lab, LabError> {
        check_prerequisites(&topo, &opts)?;
        if let Some(h) = held
            .iter()
            .find(|h| topo.node(h).is_none_or(|n| !n.runs_ospf()))
        {
            return Err(LabError::Missing(format!(
                "a routing daemon on node {h} to hold back"
            )));
        }
        let name = opts.name.clone().unwrap_or_else(|| topo.name.clone());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(LabError::Missing(format!(
                "a lab name of letters, digits and '-' (got {name:?})"
            )));
        }
        let dir = Path::new(STATE_ROOT).join(&name);
        if dir.exists() || !netns::list(&format!("{name}.")).is_empty() {
            return Err(LabError::Exists(name));
        }
        install_signal_handler();
        if let Ok(mut live) = LIVE.lock() {
            live.push(name.clone());
        }
        // From here on, an early return drops `lab`, which tears down
        // whatever was built so far.
        let mut lab = Lab {
            name,
            topology: topo,
            dir,
            helper: opts.helper.clone(),
            anycastd: opts.anycastd.clone(),
            children: Vec::new(),
            detached: false,
            routing_started: None,
        };
        lab.build(opts.capture.as_deref(), held)?;
        Ok(lab)
    }

    /// Attaches to a lab brought up earlier (by `anycastd-lab up`); the
    /// binaries as [`LabOptions::from_current_exe`] finds them.
    pub fn attach(name: &str) -> Result<Lab, LabError> {
        let opts = LabOptions::from_current_exe();
        let dir = Path::new(STATE_ROOT).join(name);
        let file = dir.join("topology.toml");
        if !file.exists() {
            return Err(LabError::NotUp(name.to_string()));
        }
        let topology = Topology::load(&file)?;
        Ok(Lab {
            name: name.to_string(),
            topology,
            dir,
            helper: opts.helper,
            anycastd: opts.anycastd,
            children: Vec::new(),
            detached: true,
            routing_started: None,
        })
    }

    /// Leaves the lab running after this guard is gone (`lab up`).
    pub fn detach(mut self) {
        self.detached = true;
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|n| n != &self.name);
        }
    }

    /// Tears the lab down now.
    pub fn down(mut self) {
        self.detached = false;
    }

    pub fn ns_name(&self, node: &str) -> String {
        format!("{}.{node}", self.name)
    }

    pub fn ns_path(&self, node: &str) -> PathBuf {
        netns::path(&self.ns_name(node))
    }

    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.join("nodes").join(node)
    }

    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    fn build(&mut self, capture: Option<&Path>, held: &[&str]) -> Result<(), LabError> {
        let topo = self.topology.clone();
        std::fs::create_dir_all(&self.dir).context(|| format!("create {}", self.dir.display()))?;
        std::fs::write(self.dir.join("topology.toml"), &topo.source)
            .context(|| "save topology".into())?;
        for node in &topo.nodes {
            let ns = self.ns_name(&node.name);
            netns::create(&ns).context(|| format!("create namespace {ns}"))?;
            net::loopback_up(&self.ns_path(&node.name)).context(|| format!("{ns}: lo up"))?;
        }
        for lan in &topo.lans {
            let ns = self.ns_path(&lan.name);
            netns::create(&self.ns_name(&lan.name))
                .context(|| format!("create LAN {}", lan.name))?;
            net::bridge(&ns, "br0").context(|| format!("LAN {}: bridge", lan.name))?;
        }
        for [a, b] in &topo.links {
            net::veth(
                &self.ns_path(&a.node),
                &a.ifname,
                a.mtu,
                &self.ns_path(&b.node),
                &b.ifname,
                b.mtu,
            )
            .context(|| format!("link {}:{} - {}:{}", a.node, a.ifname, b.node, b.ifname))?;
        }
        for lan in &topo.lans {
            let lan_ns = self.ns_path(&lan.name);
            for m in &lan.members {
                let node_ns = self.ns_path(&m.node);
                net::veth(&node_ns, &m.ifname, m.mtu, &lan_ns, &m.node, m.mtu)
                    .context(|| format!("LAN {}: member {}", lan.name, m.node))?;
                net::bridge_port(&lan_ns, "br0", &m.node)
                    .context(|| format!("LAN {}: port {}", lan.name, m.node))?;
            }
        }
        for e in topo
            .links
            .iter()
            .flatten()
            .chain(topo.lans.iter().flat_map(|l| l.members.iter()))
        {
            net::address(&self.ns_path(&e.node), &e.ifname, e.addr)
                .context(|| format!("{}: address {} on {}", e.node, e.addr, e.ifname))?;
        }
        for node in &topo.nodes {
            let ns = self.ns_path(&node.name);
            for vip in &node.vips {
                let host =
                    Ipv4Network::new(*vip, 32).map_err(|e| LabError::Missing(e.to_string()))?;
                net::address(&ns, "lo", host)
                    .context(|| format!("{}: VIP {vip} on lo", node.name))?;
            }
            let mut sysctls = node.sysctls.clone();
            if node.role == Role::Router {
                sysctls
                    .entry("net.ipv4.ip_forward".into())
                    .or_insert_with(|| "1".into());
            }
            for (k, v) in &sysctls {
                netns::sysctl(&ns, k, v).context(|| format!("{}: sysctl {k}={v}", node.name))?;
            }
            if let Some(gw) = topo.interfaces(&node.name).find_map(|e| e.gateway) {
                net::default_route(&ns, gw)
                    .context(|| format!("{}: default route via {gw}", node.name))?;
            }
            self.vrrp_routes(&node.name)?;
            // In the kernel before the routing daemon starts, so it finds
            // them all at once in its first scan.
            if node.external_routes > 0 {
                net::blackhole_routes(&ns, node.external_prefixes().collect()).context(|| {
                    format!("{}: {} external routes", node.name, node.external_routes)
                })?;
            }
        }
        if let Some(dir) = capture {
            self.start_captures(dir)?;
        }
        // Services first, routing last: a route only appears once what it
        // leads to answers, and the lab's timings start with the daemons.
        for node in topo.nodes.iter().filter(|n| n.http) {
            self.start_http(&node.name)?;
        }
        self.routing_started = Some(Instant::now());
        for node in topo.nodes.iter().filter(|n| n.runs_ospf()) {
            if !held.contains(&node.name.as_str()) {
                self.start_routing(&node.name)?;
            }
        }
        Ok(())
    }

    /// Starts the routing daemon of `node` (FRR, BIRD or anycastd).
    pub fn start_routing(&mut self, node: &str) -> Result<(), LabError> {
        let n = self
            .topology
            .node(node)
            .cloned()
            .ok_or_else(|| LabError::Missing(format!("node {node}")))?;
        let ns = self.ns_path(node);
        let topo = &self.topology;
        match self.implementation(node)? {
            Implementation::Frr => self
                .frr(node)
                .start(&ns, topo, &n)
                .context(|| format!("{node}: start frr")),
            Implementation::Bird => self
                .bird(node)
                .start(&ns, topo, &n)
                .context(|| format!("{node}: start bird")),
            Implementation::Anycastd => self.start_anycastd(node),
            Implementation::Keepalived => self.start_keepalived(node),
        }
    }

    /// tcpdump on every OSPF interface; they stop with the namespaces.
    fn start_captures(&mut self, dir: &Path) -> Result<(), LabError> {
        std::fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
        let topo = self.topology.clone();
        let mut files = Vec::new();
        for node in topo.nodes.iter().filter(|n| n.runs_ospf()) {
            for e in topo.interfaces(&node.name).filter(|e| e.ospf.is_some()) {
                let file = dir.join(format!("{}-{}.pcap", node.name, e.ifname));
                let child = netns::command(&self.ns_path(&node.name), "tcpdump")
                    .context(|| format!("{}: namespace", node.name))?
                    .args(["-i", &e.ifname, "-U", "-s", "0", "-w"])
                    .arg(&file)
                    .args(["ip", "proto", "89"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context(|| "start tcpdump (apt-get install tcpdump)".into())?;
                self.children.push(child);
                files.push(file);
            }
        }
        // tcpdump creates its file once it listens: wait for that, so the
        // daemons' first packets are in it.
        let all = wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
            files.iter().all(|f| f.exists()).then_some(())
        });
        all.ok_or_else(|| LabError::Missing("tcpdump listening within 5 s".into()))
    }

    /// Starts the lab's HTTP server on `node` (port 80, all addresses) and
    /// waits until it accepts connections.
    pub fn start_http(&mut self, node: &str) -> Result<(), LabError> {
        let helper = self.helper.clone().ok_or_else(|| {
            LabError::Missing(
                "the anycastd-lab binary to run HTTP servers (LabOptions::helper)".into(),
            )
        })?;
        let dir = self.node_dir(node);
        std::fs::create_dir_all(&dir).context(|| format!("create {}", dir.display()))?;
        let log = std::fs::File::create(dir.join("http.log")).context(|| "http log".into())?;
        let err = log.try_clone().context(|| "http log".into())?;
        let mut cmd = netns::command(&self.ns_path(node), &helper)
            .context(|| format!("{node}: namespace"))?;
        cmd.args(["serve-http", "--node", node, "--port", "80"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // Its own session, so a Ctrl-C in the terminal reaches the lab's
        // teardown rather than each server.
        // SAFETY: setsid(2) is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                nix::unistd::setsid()
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .context(|| format!("{node}: start HTTP server"))?;
        self.reap();
        self.children.push(child);
        let ns = self.ns_path(node);
        let ready = wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
            let ns = ns.clone();
            netns::run_in(&ns, || {
                std::net::TcpStream::connect(("127.0.0.1", 80)).map(|_| ())
            })
            .ok()
        });
        ready.ok_or_else(|| LabError::Io {
            context: format!("{node}: HTTP server"),
            source: std::io::Error::other("not listening on port 80 after 5 s"),
        })
    }

    /// Stops the HTTP server on `node` (the service dies, the routing
    /// daemon lives: the classic design's blackhole) with SIGKILL, and
    /// returns once it is gone (its sockets closed).
    pub fn stop_http(&self, node: &str) -> Result<(), LabError> {
        let servers = || -> Vec<nix::unistd::Pid> {
            netns::pids(&self.ns_path(node))
                .into_iter()
                .filter(|pid| {
                    // Empty for a zombie, whose sockets are closed already.
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    String::from_utf8_lossy(&cmdline).contains("serve-http")
                })
                .collect()
        };
        for pid in servers() {
            nix::sys::signal::kill(pid, Signal::SIGKILL)
                .map_err(std::io::Error::from)
                .context(|| format!("{node}: kill HTTP server"))?;
        }
        wait_for(Duration::from_secs(5), Duration::from_millis(1), || {
            servers().is_empty().then_some(())
        })
        .ok_or_else(|| LabError::Io {
            context: format!("{node}: HTTP server"),
            source: std::io::Error::other("still running 5 s after SIGKILL"),
        })
    }

    /// Collects the exit status of children that ended (a killed HTTP
    /// server, a stopped anycastd), so none lingers as a zombie.
    fn reap(&mut self) {
        self.children
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
    }

    /// Runs a command inside a node's namespace.
    pub fn command(&self, node: &str, program: &str) -> Result<Command, LabError> {
        self.known(node)?;
        netns::command(&self.ns_path(node), program).context(|| format!("{node}: namespace"))
    }

    /// An error unless `node` is a node or LAN of this lab.
    fn known(&self, node: &str) -> Result<(), LabError> {
        if self.topology.node(node).is_none() && !self.topology.lans.iter().any(|l| l.name == node)
        {
            return Err(LabError::Missing(format!(
                "node {node} in lab {}",
                self.name
            )));
        }
        Ok(())
    }

    /// Runs `program args` inside a node's namespace to its end: its
    /// stdout, or an error carrying its stderr when it failed.
    pub fn output(&self, node: &str, program: &str, args: &[&str]) -> Result<String, LabError> {
        self.known(node)?;
        netns::output(&self.ns_path(node), program, args)
            .context(|| format!("{node}: {program} {}", args.join(" ")))
    }

    /// Runs the lab's `anycastd` binary (in the root namespace: it only
    /// talks to the daemon's control socket) with `args` and `--socket`
    /// naming `node`'s daemon, to its end.
    pub fn anycastd_cli(
        &self,
        node: &str,
        args: &[&str],
    ) -> Result<std::process::Output, LabError> {
        let binary = self.anycastd.clone().ok_or_else(|| {
            LabError::Missing("the anycastd binary (LabOptions::anycastd)".into())
        })?;
        Command::new(&binary)
            .args(args)
            .arg("--socket")
            .arg(self.anycastd(node).socket())
            .output()
            .context(|| format!("{node}: {} {}", binary.display(), args.join(" ")))
    }

    /// The FRR instance of a node whose implementation is FRR (for
    /// `vtysh` queries).
    pub fn frr(&self, node: &str) -> frr::Frr {
        frr::Frr::new(&self.node_dir(node).join("frr"))
    }

    /// The BIRD instance of a node whose implementation is BIRD (for
    /// `birdc` queries).
    pub fn bird(&self, node: &str) -> bird::Bird {
        bird::Bird::new(&self.node_dir(node).join("bird"))
    }

    /// Starts (or restarts, after a kill) the anycastd daemon of a director.
    pub fn start_anycastd(&mut self, node: &str) -> Result<(), LabError> {
        let helper = self.anycastd.clone().ok_or_else(|| {
            LabError::Missing("the anycastd binary (LabOptions::anycastd)".into())
        })?;
        let n = self
            .topology
            .node(node)
            .cloned()
            .ok_or_else(|| LabError::Missing(format!("node {node}")))?;
        let topo = self.topology.clone();
        let child = self
            .anycastd(node)
            .start(&self.ns_path(node), &helper, &topo, &n)
            .context(|| format!("{node}: start anycastd"))?;
        self.reap();
        self.children.push(child);
        Ok(())
    }

    /// Starts a director's anycastd again (after it stopped) with its
    /// config file as it is now, which may differ from the generated one
    /// (see [`Lab::write_anycastd_config`]). Fails if it still runs.
    pub fn restart_anycastd(&mut self, node: &str) -> Result<(), LabError> {
        let helper = self.anycastd.clone().ok_or_else(|| {
            LabError::Missing("the anycastd binary (LabOptions::anycastd)".into())
        })?;
        if self.implementation(node)? != Implementation::Anycastd {
            return Err(LabError::Missing(format!("anycastd on node {node}")));
        }
        self.reap();
        if let Some(pid) = self.anycastd_pid(node) {
            return Err(LabError::Missing(format!(
                "{node}'s anycastd (pid {pid}) to have stopped before a restart"
            )));
        }
        let child = self
            .anycastd(node)
            .spawn(&self.ns_path(node), &helper)
            .context(|| format!("{node}: restart anycastd"))?;
        self.children.push(child);
        Ok(())
    }

    /// The pid of a director's anycastd while it runs.
    pub fn anycastd_pid(&self, node: &str) -> Option<i32> {
        self.anycastd(node).pid().filter(|p| process_alive(*p))
    }

    /// Sends `signal` to a director's anycastd (SIGTERM: drain every VIP,
    /// then flush and exit; SIGHUP: reload; SIGKILL: a crash). Returns its
    /// pid.
    pub fn signal_anycastd(&self, node: &str, signal: Signal) -> Result<i32, LabError> {
        let pid = self
            .anycastd_pid(node)
            .ok_or_else(|| LabError::Missing(format!("a running anycastd on {node}")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .map_err(std::io::Error::from)
            .context(|| format!("{node}: {signal} to anycastd {pid}"))?;
        Ok(pid)
    }

    /// Waits up to `timeout` for a director's anycastd to exit; returns
    /// how long it took.
    pub fn wait_anycastd_exit(
        &mut self,
        node: &str,
        timeout: Duration,
    ) -> Result<Duration, LabError> {
        let start = Instant::now();
        let Some(pid) = self.anycastd(node).pid() else {
            return Ok(Duration::ZERO);
        };
        loop {
            self.reap();
            if !process_alive(pid) {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= timeout {
                return Err(LabError::Missing(format!(
                    "{node}'s anycastd (pid {pid}) to exit within {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The config a director's anycastd is started with, generated from
    /// the topology.
    pub fn anycastd_generated_config(&self, node: &str) -> Result<String, LabError> {
        let n = self
            .topology
            .node(node)
            .ok_or_else(|| LabError::Missing(format!("node {node}")))?;
        Ok(self.anycastd(node).config(&self.topology, n))
    }

    /// Replaces a director's anycastd config file (for a reload, SIGHUP or
    /// restart to pick up).
    pub fn write_anycastd_config(&self, node: &str, text: &str) -> Result<PathBuf, LabError> {
        let path = self.anycastd(node).config_path();
        // Written whole then renamed, so a reload never reads half a file.
        let tmp = path.with_extension("toml.new");
        std::fs::write(&tmp, text).context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).context(|| format!("rename to {}", path.display()))?;
        Ok(path)
    }

    /// One request on a director's anycastd control socket (`{"cmd":
    /// "status"}`, `{"cmd": "drain", "vip": ...}`, ...); an `{"error"}`
    /// reply is an `Err` with its message.
    pub fn anycastd_request(
        &self,
        node: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, LabError> {
        self.anycastd(node)
            .request(request)
            .context(|| format!("{node}: anycastd {request}"))
    }

    /// The keepalived of a director whose implementation is keepalived.
    pub fn keepalived(&self, node: &str) -> keepalived::Keepalived {
        keepalived::Keepalived::new(&self.node_dir(node).join("keepalived"))
    }

    /// Starts (or restarts, with its config file as it is now when
    /// `regenerate` is false) a node's keepalived.
    pub fn start_keepalived(&mut self, node: &str) -> Result<(), LabError> {
        self.spawn_keepalived(node, true)
    }

    /// Starts a node's keepalived again after it stopped, keeping the
    /// config file a test may have rewritten.
    pub fn restart_keepalived(&mut self, node: &str) -> Result<(), LabError> {
        self.spawn_keepalived(node, false)
    }

    fn spawn_keepalived(&mut self, node: &str, regenerate: bool) -> Result<(), LabError> {
        let n = self
            .topology
            .node(node)
            .cloned()
            .ok_or_else(|| LabError::Missing(format!("node {node}")))?;
        let k = self.keepalived(node);
        let ns = self.ns_path(node);
        let child = if regenerate {
            k.start(&ns, &self.topology, &n)
        } else {
            k.spawn(&ns)
        }
        .context(|| format!("{node}: start keepalived"))?;
        self.reap();
        self.children.push(child);
        Ok(())
    }

    /// Routes from the other members of each VRRP LAN to its virtual
    /// addresses (on-link: they ARP for them).
    fn vrrp_routes(&self, node: &str) -> Result<(), LabError> {
        for (n, ifname, vip) in keepalived::vip_routes(&self.topology) {
            if n != node {
                continue;
            }
            let status = self
                .command(node, "ip")?
                .args(["route", "replace", &format!("{vip}/32"), "dev", &ifname])
                .status()
                .context(|| format!("{node}: route to {vip}"))?;
            if !status.success() {
                return Err(LabError::Io {
                    context: format!("{node}: ip route replace {vip}/32 dev {ifname}"),
                    source: std::io::Error::other(status.to_string()),
                });
            }
        }
        Ok(())
    }

    /// The anycastd daemon of a director whose implementation is anycastd.
    pub fn anycastd(&self, node: &str) -> anycastd::Anycastd {
        anycastd::Anycastd::new(&self.node_dir(node).join("anycastd"))
    }

    fn implementation(&self, node: &str) -> Result<Implementation, LabError> {
        self.topology
            .node(node)
            .and_then(|n| n.implementation)
            .ok_or_else(|| LabError::Missing(format!("a routing daemon on node {node}")))
    }

    /// The OSPF neighbours as the node's own routing daemon reports them.
    pub fn ospf_neighbors(&self, node: &str) -> Result<Vec<OspfNeighbor>, LabError> {
        match self.implementation(node)? {
            Implementation::Frr => self.frr(node).neighbors(),
            Implementation::Bird => self.bird(node).neighbors(),
            Implementation::Anycastd => self.anycastd(node).neighbors(),
            Implementation::Keepalived => {
                return Err(LabError::Missing(format!("OSPF on {node} (keepalived)")))
            }
        }
        .context(|| format!("{node}: OSPF neighbours"))
    }

    /// Every LSA in the node's OSPF database (all areas, AS-external ones
    /// once), as its own daemon lists it. Large: for a count use
    /// [`Lab::ospf_lsa_count`].
    pub fn ospf_database(&self, node: &str) -> Result<Vec<LsaId>, LabError> {
        match self.implementation(node)? {
            Implementation::Frr => self.frr(node).database(),
            Implementation::Bird => self.bird(node).database(),
            Implementation::Anycastd => self.anycastd(node).database(),
            Implementation::Keepalived => {
                return Err(LabError::Missing(format!("OSPF on {node} (keepalived)")))
            }
        }
        .context(|| format!("{node}: OSPF database"))
    }

    /// The Router-LSA of `router_id` in the node's OSPF database (area
    /// 0.0.0.0 for FRR), if it has one: FRR and BIRD nodes.
    pub fn ospf_router_lsa(
        &self,
        node: &str,
        router_id: Ipv4Addr,
    ) -> Result<Option<RouterLsaView>, LabError> {
        match self.implementation(node)? {
            Implementation::Frr => self.frr(node).router_lsa(router_id),
            Implementation::Bird => self.bird(node).router_lsa(router_id),
            other => {
                return Err(LabError::Missing(format!(
                    "a Router-LSA query for {node} ({other:?}: FRR or BIRD only)"
                )))
            }
        }
        .context(|| format!("{node}: Router-LSA {router_id}"))
    }

    /// The number of LSAs in the node's OSPF database, from the daemon's
    /// summary where it has one (FRR, BIRD), else from the full list.
    pub fn ospf_lsa_count(&self, node: &str) -> Result<usize, LabError> {
        match self.implementation(node)? {
            Implementation::Frr => self.frr(node).lsa_count(),
            Implementation::Bird => self.bird(node).lsa_count(),
            Implementation::Anycastd => self.anycastd(node).database().map(|d| d.len()),
            Implementation::Keepalived => {
                return Err(LabError::Missing(format!("OSPF on {node} (keepalived)")))
            }
        }
        .context(|| format!("{node}: OSPF LSA count"))
    }

    /// The node's kernel route for exactly `prefix`, with its nexthops.
    pub fn fib(&self, node: &str, prefix: Ipv4Network) -> Result<Option<FibEntry>, LabError> {
        net::fib_entry(&self.ns_path(node), prefix).context(|| format!("{node}: FIB {prefix}"))
    }

    /// The node's kernel route to `vip`/32.
    pub fn vip_route(&self, node: &str, vip: Ipv4Addr) -> Result<Option<FibEntry>, LabError> {
        self.fib(node, Ipv4Network::from(vip))
    }

    /// Number of nexthops of `node`'s route to `vip`/32 (0 when there is none).
    pub fn vip_nexthops(&self, node: &str, vip: Ipv4Addr) -> Result<usize, LabError> {
        Ok(self.vip_route(node, vip)?.map_or(0, |e| e.nexthops.len()))
    }

    /// The gateways of `node`'s route to `vip`/32, sorted.
    pub fn vip_gateways(&self, node: &str, vip: Ipv4Addr) -> Result<Vec<Ipv4Addr>, LabError> {
        let route = self.vip_route(node, vip)?;
        Ok(route.map_or_else(Vec::new, |e| {
            e.nexthops.iter().filter_map(|h| h.gateway).collect()
        }))
    }

    /// Pids of the routing daemons on `node` (ospfd and zebra, or bird).
    pub fn routing_pids(&self, node: &str) -> Result<Vec<i32>, LabError> {
        Ok(match self.implementation(node)? {
            Implementation::Frr => {
                let f = self.frr(node);
                ["ospfd", "zebra"].iter().filter_map(|d| f.pid(d)).collect()
            }
            Implementation::Bird => self.bird(node).pid().into_iter().collect(),
            Implementation::Anycastd => self.anycastd(node).pid().into_iter().collect(),
            Implementation::Keepalived => self.keepalived(node).pid().into_iter().collect(),
        })
    }

    /// SIGKILLs the node's routing daemons, the way a crash would.
    pub fn kill_routing(&self, node: &str) -> Result<(), LabError> {
        let pids = self.routing_pids(node)?;
        if pids.is_empty() {
            return Err(LabError::Missing(format!(
                "running routing daemon on {node}"
            )));
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        Ok(())
    }

    /// Runs a bounded request loop from `node` and waits for its report.
    pub fn requests(&self, node: &str, spec: LoadSpec) -> Result<LoadReport, LabError> {
        netns::run_in(&self.ns_path(node), move || {
            Ok(traffic::run_requests(&spec))
        })
        .context(|| format!("{node}: requests"))
    }

    /// Starts a bounded request loop from `node` in the background.
    pub fn requests_background(
        &self,
        node: &str,
        spec: LoadSpec,
    ) -> Result<std::thread::JoinHandle<std::io::Result<LoadReport>>, LabError> {
        netns::spawn_in(&self.ns_path(node), move || {
            Ok(traffic::run_requests(&spec))
        })
        .context(|| format!("{node}: requests"))
    }

    /// Starts a request loop from `node` in the background that a test
    /// can stop early ([`Load::stop`]) and then inspect.
    pub fn start_load(&self, node: &str, spec: LoadSpec) -> Result<Load, LabError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = netns::spawn_in(&self.ns_path(node), move || {
            Ok(traffic::run_requests_until(&spec, &flag))
        })
        .context(|| format!("{node}: requests"))?;
        Ok(Load {
            stop,
            thread: Some(thread),
        })
    }

    /// Watches `node`'s kernel route to `prefix`, polling every `period`
    /// (see [`FibWatch`]).
    pub fn watch_fib(
        &self,
        node: &str,
        prefix: Ipv4Network,
        period: Duration,
    ) -> Result<FibWatch, LabError> {
        FibWatch::start(&self.ns_path(node), prefix, period)
            .context(|| format!("{node}: watch FIB {prefix}"))
    }

    /// Watches `node`'s kernel route to `vip`/32 (see [`Lab::watch_fib`]).
    pub fn watch_vip(
        &self,
        node: &str,
        vip: Ipv4Addr,
        period: Duration,
    ) -> Result<FibWatch, LabError> {
        self.watch_fib(node, Ipv4Network::from(vip), period)
    }

    /// Copies the lab's state directory (configs, daemon logs; sockets
    /// and other special files left out) to `dest`, e.g. to keep the logs
    /// of a failed test.
    pub fn save_state(&self, dest: &Path) -> Result<(), LabError> {
        fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
            std::fs::create_dir_all(to)?;
            for e in std::fs::read_dir(from)? {
                let e = e?;
                let t = e.file_type()?;
                let target = to.join(e.file_name());
                if t.is_dir() {
                    copy(&e.path(), &target)?;
                } else if t.is_file() {
                    std::fs::copy(e.path(), &target)?;
                }
            }
            Ok(())
        }
        copy(&self.dir, dest).context(|| format!("copy lab state to {}", dest.display()))
    }

    /// Every namespace this lab has.
    pub fn namespaces(&self) -> Vec<String> {
        netns::list(&format!("{}.", self.name))
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of the file at `path` (empty when it cannot be
/// read): a daemon's log for a failure message.
pub fn file_tail(path: &Path, n: usize) -> String {
    tail(&std::fs::read_to_string(path).unwrap_or_default(), n)
}

/// Whether process `pid` exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name (proc(5)).
    !stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
}

/// A background request loop ([`Lab::start_load`]). Dropping it stops
/// the loop without waiting for its report.
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<std::io::Result<LoadReport>>>,
}

impl Load {
    /// Stops the loop (no request starts after this; one under way ends
    /// within its timeout) and returns its report.
    pub fn stop(mut self) -> Result<LoadReport, LabError> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the loop to end by itself (count or duration reached).
    pub fn wait(mut self) -> Result<LoadReport, LabError> {
        self.join()
    }

    fn join(&mut self) -> Result<LoadReport, LabError> {
        let t = self
            .thread
            .take()
            .ok_or_else(|| LabError::Missing("a running request loop".into()))?;
        t.join()
            .map_err(|_| LabError::Missing("request thread ended normally".into()))?
            .context(|| "requests".into())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        teardown(&self.name);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
