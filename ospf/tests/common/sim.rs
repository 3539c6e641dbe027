//! A simulated network of `Instance`s on LANs and point-to-point links,
//! driven by a virtual clock (the conformance and hostile-neighbour
//! tests).
//!
//! The harness delivers every transmitted packet after 1 ms: multicast to
//! every other port of the segment (AllDRouters only to ports whose
//! interface is DR or Backup, as the kernel would after the runner's
//! group join), unicast to the port owning the destination address. Time
//! jumps to the earliest pending delivery or `poll_timeout`. Every packet
//! is logged (decoded) for assertions, and a test may drop packets or
//! inject its own.
#![allow(dead_code)] // each test file uses part of it

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ospf::instance::{
    Config, Event, IfaceId, Instance, InterfaceConfig, IsmState, NetworkType, NsmState,
};
use ospf::lsa::{LsaBody, LsaHeader, LsaKey, LsaType, RouterLink, RouterLinkType, RouterLsa};
use ospf::packet::{Packet, PacketBody, ALL_D_ROUTERS, ALL_SPF_ROUTERS};

pub const BACKBONE: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
pub const WALL_CLOCK: u32 = 1_700_000_000;

pub const LATENCY: Duration = Duration::from_millis(1);

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

pub struct Port {
    pub node: usize,
    pub ifindex: u32,
    pub addr: Ipv4Addr,
    pub seg: usize,
}

/// One transmitted packet.
#[derive(Clone)]
pub struct Sent {
    pub at: Duration,
    pub from: usize,
    pub dst: Ipv4Addr,
    pub packet: Packet,
}

pub struct InFlight {
    pub at: Instant,
    pub to: usize,
    pub ifindex: u32,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub bytes: bytes::Bytes,
}

pub type DropFn = Box<dyn FnMut(&Sent, usize) -> bool>;
pub type ProbeFn = Box<dyn FnMut(&Sim)>;

pub struct Sim {
    pub base: Instant,
    pub now: Instant,
    pub nodes: Vec<Option<Instance>>,
    pub ports: Vec<Port>,
    pub in_flight: Vec<InFlight>,
    pub log: Vec<Sent>,
    pub events: Vec<(Duration, usize, Event)>,
    pub drop: Option<DropFn>,
    /// Called after every step, to sample state over time.
    pub probe: Option<ProbeFn>,
}

impl Sim {
    pub fn new() -> Self {
        let base = Instant::now();
        Sim {
            base,
            now: base,
            nodes: Vec::new(),
            ports: Vec::new(),
            in_flight: Vec::new(),
            log: Vec::new(),
            events: Vec::new(),
            drop: None,
            probe: None,
        }
    }

    pub fn t(&self) -> Duration {
        self.now - self.base
    }

    pub fn node(&mut self, router_id: &str) -> usize {
        self.node_with(Config {
            router_id: ip(router_id),
            ..Config::default()
        })
    }

    pub fn node_with(&mut self, config: Config) -> usize {
        self.nodes
            .push(Some(Instance::new(config, self.now, WALL_CLOCK)));
        self.nodes.len() - 1
    }

    pub fn inst(&self, n: usize) -> &Instance {
        self.nodes[n].as_ref().expect("node is running")
    }

    pub fn inst_mut(&mut self, n: usize) -> &mut Instance {
        self.nodes[n].as_mut().expect("node is running")
    }

    pub fn attach(&mut self, n: usize, seg: usize, cfg: InterfaceConfig) -> IfaceId {
        self.ports.push(Port {
            node: n,
            ifindex: cfg.ifindex,
            addr: cfg.addr,
            seg,
        });
        let now = self.now;
        self.inst_mut(n).add_interface(now, cfg)
    }

    /// Replaces a node by a fresh instance (a restart); its ports stay.
    pub fn restart(&mut self, n: usize, config: Config, wall_clock: u32) {
        self.nodes[n] = Some(Instance::new(config, self.now, wall_clock));
    }

    /// Delivers `bytes` to node `to` on its port `ifindex` one link
    /// latency from now, as if a host on the segment had sent them from
    /// `src` to `dst`.
    pub fn inject(
        &mut self,
        to: usize,
        ifindex: u32,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: bytes::Bytes,
    ) {
        self.in_flight.push(InFlight {
            at: self.now + LATENCY,
            to,
            ifindex,
            src,
            dst,
            bytes,
        });
    }

    /// Drops every packet logged so far (for assertions on what follows).
    pub fn clear_log(&mut self) {
        self.log.clear();
        self.events.clear();
    }

    pub fn crash(&mut self, n: usize) {
        self.nodes[n] = None;
        self.in_flight.retain(|f| f.to != n);
    }

    pub fn collect(&mut self) {
        let at = self.t();
        for n in 0..self.nodes.len() {
            while let Some(t) = self.nodes[n].as_mut().and_then(|i| i.poll_transmit()) {
                let packet = Packet::decode(&t.bytes).expect("we send decodable packets");
                let sent = Sent {
                    at,
                    from: n,
                    dst: t.dst,
                    packet,
                };
                let Some(seg) = self
                    .ports
                    .iter()
                    .find(|p| p.node == n && p.ifindex == t.ifindex)
                    .map(|p| p.seg)
                else {
                    panic!("node {n} sent on unknown ifindex {}", t.ifindex);
                };
                let receivers: Vec<(usize, u32)> = self
                    .ports
                    .iter()
                    .filter(|p| p.seg == seg && p.node != n)
                    .filter(|p| match t.dst {
                        ALL_SPF_ROUTERS => true,
                        ALL_D_ROUTERS => self.nodes[p.node].as_ref().is_some_and(|i| {
                            i.interfaces(self.now).iter().any(|x| {
                                x.ifindex == p.ifindex
                                    && matches!(x.state, IsmState::DR | IsmState::Backup)
                            })
                        }),
                        unicast => p.addr == unicast,
                    })
                    .map(|p| (p.node, p.ifindex))
                    .collect();
                for (to, ifindex) in receivers {
                    if self.nodes[to].is_none() {
                        continue;
                    }
                    if let Some(d) = self.drop.as_mut() {
                        if d(&sent, to) {
                            continue;
                        }
                    }
                    self.in_flight.push(InFlight {
                        at: self.now + LATENCY,
                        to,
                        ifindex,
                        src: t.src,
                        dst: t.dst,
                        bytes: t.bytes.clone(),
                    });
                }
                self.log.push(sent);
            }
            while let Some(e) = self.nodes[n].as_mut().and_then(|i| i.poll_event()) {
                self.events.push((at, n, e));
            }
        }
    }

    pub fn run_until(&mut self, end: Instant) {
        let mut steps = 0u64;
        loop {
            self.collect();
            if let Some(mut p) = self.probe.take() {
                p(self);
                self.probe = Some(p);
            }
            let next_delivery = self.in_flight.iter().map(|f| f.at).min();
            let next_timer = self
                .nodes
                .iter()
                .flatten()
                .filter_map(|i| i.poll_timeout())
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(next) = next.filter(|t| *t <= end) else {
                self.now = end;
                self.collect();
                return;
            };
            assert!(next >= self.now, "time went backwards");
            self.now = next;
            steps += 1;
            assert!(steps < 5_000_000, "simulation does not settle");
            let now = self.now;
            let (due, later): (Vec<InFlight>, Vec<InFlight>) =
                self.in_flight.drain(..).partition(|f| f.at <= now);
            self.in_flight = later;
            for f in due {
                if let Some(i) = self.nodes[f.to].as_mut() {
                    i.handle_packet(now, f.ifindex, f.src, f.dst, &f.bytes);
                }
            }
            for i in self.nodes.iter_mut().flatten() {
                if i.poll_timeout().is_some_and(|t| t <= now) {
                    i.handle_timeout(now);
                }
            }
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// Runs until `cond` holds, at most `limit`; returns the time taken.
    pub fn run_until_cond(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        let end = start + limit;
        while self.now < end {
            if cond(self) {
                return Some(self.now - start);
            }
            let step = (self.now + Duration::from_millis(10)).min(end);
            self.run_until(step);
        }
        cond(self).then(|| self.now - start)
    }

    pub fn nbr_state(&self, n: usize, router_id: &str) -> Option<NsmState> {
        self.inst(n)
            .neighbors(self.now)
            .into_iter()
            .find(|x| x.router_id == ip(router_id))
            .map(|x| x.state)
    }

    pub fn iface(&self, n: usize) -> ospf::instance::InterfaceInfo {
        self.inst(n).interfaces(self.now).remove(0)
    }

    /// The Router-LSA of `router_id` as node `n` has it.
    pub fn router_lsa(&self, n: usize, router_id: &str) -> Option<(LsaHeader, RouterLsa)> {
        let raw = self
            .inst(n)
            .lsa(self.now, BACKBONE, router_key(router_id))?;
        let lsa = raw.decode().expect("stored LSA decodes");
        match lsa.body {
            LsaBody::Router(r) => Some((lsa.header, r)),
            _ => None,
        }
    }

    /// Sequence numbers of `router_id`'s Router-LSA sent by node `n`, with
    /// the time each was first sent, in order.
    pub fn router_lsa_instances_sent(&self, n: usize, router_id: &str) -> Vec<(Duration, i32)> {
        let mut seen: Vec<(Duration, i32)> = Vec::new();
        for s in self.log.iter().filter(|s| s.from == n) {
            let PacketBody::LinkStateUpdate(u) = &s.packet.body else {
                continue;
            };
            for l in &u.lsas {
                let h = l.header();
                if h.key() == router_key(router_id) && !seen.iter().any(|(_, q)| *q == h.seq) {
                    seen.push((s.at, h.seq));
                }
            }
        }
        seen
    }

    pub fn drops(&self, n: usize, reason: &str) -> u64 {
        self.inst(n)
            .drop_counters()
            .get(reason)
            .copied()
            .unwrap_or(0)
    }
}

pub fn router_key(router_id: &str) -> LsaKey {
    LsaKey {
        lsa_type: LsaType::ROUTER,
        link_state_id: ip(router_id),
        advertising_router: ip(router_id),
    }
}

pub fn lan_cfg(name: &str, ifindex: u32, addr: &str, priority: u8) -> InterfaceConfig {
    InterfaceConfig {
        priority,
        ..InterfaceConfig::new(name, ifindex, ip(addr), 24, BACKBONE)
    }
}

pub fn p2p_cfg(name: &str, ifindex: u32, addr: &str) -> InterfaceConfig {
    InterfaceConfig {
        network: NetworkType::PointToPoint,
        ..InterfaceConfig::new(name, ifindex, ip(addr), 31, BACKBONE)
    }
}

pub fn stub(link_id: &str, mask: &str, metric: u16) -> RouterLink {
    RouterLink {
        link_id: ip(link_id),
        link_data: ip(mask),
        link_type: RouterLinkType::Stub,
        metric,
        tos: vec![],
    }
}

pub fn has_link(r: &RouterLsa, l: &RouterLink) -> bool {
    r.links.contains(l)
}

pub fn vip_link(r: &RouterLsa, vip: &str) -> Option<u16> {
    r.links
        .iter()
        .find(|l| {
            l.link_type == RouterLinkType::Stub
                && l.link_id == ip(vip)
                && l.link_data == Ipv4Addr::BROADCAST
        })
        .map(|l| l.metric)
}

/// Two routers on a /31 point-to-point link, both Full.
pub fn p2p_pair(a_cfg: InterfaceConfig, b_cfg: InterfaceConfig) -> (Sim, usize, usize) {
    let mut sim = Sim::new();
    let a = sim.node("10.0.0.1");
    let b = sim.node("10.0.0.2");
    sim.attach(a, 0, a_cfg);
    sim.attach(b, 0, b_cfg);
    (sim, a, b)
}

pub fn default_p2p() -> (Sim, usize, usize) {
    let (mut sim, a, b) = p2p_pair(
        p2p_cfg("a0", 1, "198.18.1.0"),
        p2p_cfg("b0", 1, "198.18.1.1"),
    );
    let took = sim.run_until_cond(secs(30.0), |s| {
        s.nbr_state(a, "10.0.0.2") == Some(NsmState::Full)
            && s.nbr_state(b, "10.0.0.1") == Some(NsmState::Full)
            && s.router_lsa(a, "10.0.0.2").is_some()
            && s.router_lsa(b, "10.0.0.1").is_some()
    });
    assert!(took.is_some(), "p2p adjacency did not form");
    (sim, a, b)
}
