//! A neighbour written out by hand for database-load tests: a slave (lower
//! router ID, as a redistributing router would be) on a point-to-point link
//! that answers Database Description packets with its LSA headers and Link
//! State Requests with full updates, one link latency later.
#![allow(dead_code)] // each test file uses part of it

pub mod sim;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ospf::instance::Instance;
use ospf::lsa::{ExternalLsa, Lsa, LsaBody, LsaHeader, LsaKey, LsaType, Options, RawLsa};
use ospf::packet::{
    DatabaseDescription, DdFlags, Hello, LinkStateUpdate, Packet, PacketBody, ALL_SPF_ROUTERS,
    AUTYPE_NULL,
};

/// One way across the link.
pub const LATENCY: Duration = Duration::from_millis(1);

/// The `i`th AS-external LSA of `adv`, for prefix `198.19.0.0/16`-style
/// link-state IDs, with mask `mask` (36 bytes, as FRR redistributes a
/// static route).
pub fn external(i: usize, adv: Ipv4Addr, mask: Ipv4Addr, seq: i32) -> RawLsa {
    let [_, b, c, d] = u32::try_from(i).expect("i fits u32").to_be_bytes();
    Lsa {
        header: LsaHeader {
            age: 1,
            options: Options::E,
            lsa_type: LsaType::AS_EXTERNAL,
            link_state_id: Ipv4Addr::new(198, b.wrapping_add(19), c, d),
            advertising_router: adv,
            seq,
            checksum: 0,
            length: 0,
        },
        body: LsaBody::AsExternal(ExternalLsa {
            network_mask: mask,
            e_bit: true,
            metric: 20,
            forwarding_address: Ipv4Addr::UNSPECIFIED,
            external_route_tag: 0,
            tos: vec![],
        }),
    }
    .to_raw()
    .expect("encode LSA")
}

/// The scripted slave. Its packets wait in `queue` until their delivery
/// time; [`SlavePeer::step`] advances the clock to the next packet or timer.
pub struct SlavePeer {
    pub router_id: Ipv4Addr,
    pub area: Ipv4Addr,
    pub addr: Ipv4Addr,
    pub lsas: BTreeMap<LsaKey, RawLsa>,
    headers: Vec<LsaHeader>,
    next_header: usize,
    last_dd: Option<(u32, BytesMut)>,
    /// Packets on their way to the instance, with their delivery time.
    pub queue: Vec<(Instant, BytesMut)>,
}

impl SlavePeer {
    pub fn new(router_id: Ipv4Addr, area: Ipv4Addr, addr: Ipv4Addr, lsas: Vec<RawLsa>) -> Self {
        let lsas: BTreeMap<LsaKey, RawLsa> =
            lsas.into_iter().map(|l| (l.header().key(), l)).collect();
        let headers = lsas.values().map(|l| *l.header()).collect();
        SlavePeer {
            router_id,
            area,
            addr,
            lsas,
            headers,
            next_header: 0,
            last_dd: None,
            queue: Vec::with_capacity(1024),
        }
    }

    pub fn packet(&self, body: PacketBody) -> BytesMut {
        Packet {
            router_id: self.router_id,
            area_id: self.area,
            autype: AUTYPE_NULL,
            auth_data: [0; 8],
            body,
        }
        .encode()
        .expect("encode packet")
    }

    /// Sends a Hello listing `neighbor` (two-way at once).
    pub fn hello(&mut self, now: Instant, neighbor: Ipv4Addr) {
        let hello = self.packet(PacketBody::Hello(Hello {
            network_mask: Ipv4Addr::UNSPECIFIED,
            hello_interval: 10,
            options: Options::E,
            router_priority: 1,
            router_dead_interval: 40,
            designated_router: Ipv4Addr::UNSPECIFIED,
            backup_designated_router: Ipv4Addr::UNSPECIFIED,
            neighbors: vec![neighbor],
        }));
        self.queue.push((now + LATENCY, hello));
    }

    /// Answers one packet of the instance: a Database Description as the
    /// slave (queued here; a duplicate gets the last answer again), a Link
    /// State Request with the updates it asks for, each at most
    /// `max_update` bytes of LSAs, returned for the caller to queue (or
    /// lose). Other packets need no answer.
    pub fn answer(&mut self, now: Instant, bytes: &[u8], max_update: usize) -> Vec<BytesMut> {
        let p = Packet::decode(bytes).expect("the instance sends valid packets");
        match p.body {
            PacketBody::DatabaseDescription(dd) => {
                if dd.flags.contains(DdFlags::I) {
                    // The instance is master (higher router ID).
                    self.next_header = 0;
                } else if let Some((_, last)) = self
                    .last_dd
                    .as_ref()
                    .filter(|(s, _)| *s == dd.dd_sequence_number)
                {
                    self.queue.push((now + LATENCY, last.clone()));
                    return Vec::new();
                }
                let chunk: Vec<LsaHeader> = self
                    .headers
                    .iter()
                    .skip(self.next_header)
                    .take(70)
                    .copied()
                    .collect();
                self.next_header += chunk.len();
                let mut flags = DdFlags::empty();
                flags.set(DdFlags::M, self.next_header < self.headers.len());
                let reply = self.packet(PacketBody::DatabaseDescription(DatabaseDescription {
                    interface_mtu: 1500,
                    options: Options::E,
                    flags,
                    dd_sequence_number: dd.dd_sequence_number,
                    lsa_headers: chunk,
                }));
                self.last_dd = Some((dd.dd_sequence_number, reply.clone()));
                self.queue.push((now + LATENCY, reply));
                Vec::new()
            }
            PacketBody::LinkStateRequest(r) => {
                let mut updates = Vec::new();
                let mut batch: Vec<RawLsa> = Vec::new();
                let mut used = 0;
                for e in &r.entries {
                    let l = self.lsas[&e.key().expect("a known LS type")].clone();
                    if used + l.as_bytes().len() > max_update && !batch.is_empty() {
                        let lsas = std::mem::take(&mut batch);
                        updates.push(
                            self.packet(PacketBody::LinkStateUpdate(LinkStateUpdate { lsas })),
                        );
                        used = 0;
                    }
                    used += l.as_bytes().len();
                    batch.push(l);
                }
                if !batch.is_empty() {
                    updates.push(
                        self.packet(PacketBody::LinkStateUpdate(LinkStateUpdate { lsas: batch })),
                    );
                }
                updates
            }
            _ => Vec::new(),
        }
    }

    /// Advances `now` to the next delivery or timer of `a` (at most
    /// `limit` after `base`) and delivers what is due.
    pub fn step(&mut self, a: &mut Instance, now: &mut Instant, base: Instant, limit: Duration) {
        let next_packet = self.queue.iter().map(|(t, _)| *t).min();
        let next = [next_packet, a.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("something to wait for");
        assert!(next - base < limit, "not Full after {limit:?}");
        *now = next;
        let (due, later): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(|(t, _)| *t <= next);
        self.queue = later;
        for (_, bytes) in due {
            a.handle_packet(next, 1, self.addr, ALL_SPF_ROUTERS, &bytes);
        }
        if a.poll_timeout().is_some_and(|t| t <= next) {
            a.handle_timeout(next);
        }
    }
}
