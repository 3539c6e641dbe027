//! Golden bytes: what ipvsadm sent to a real IPVS kernel, and what the
//! kernel answered (tests/data/ipvs/ipvsadm.pcap, captured on an nlmon
//! device in the lab's VM with tcpdump), against anycastd's codec. Each
//! request anycastd makes for the same operation must carry the same
//! attributes byte for byte; each captured reply must decode to the table
//! ipvsadm built.
//!
//! The capture ran, in order:
//!   ipvsadm -A -t 192.0.2.10:80 -s mh -b mh-fallback,mh-port
//!   ipvsadm -a -t 192.0.2.10:80 -r 198.18.1.1:80 -g -w 5
//!   ipvsadm -e -t 192.0.2.10:80 -r 198.18.1.1:80 -g -w 0
//!   ipvsadm -A -u [2001:db8::10]:53 -s mh
//!   ipvsadm -a -u [2001:db8::10]:53 -r [2001:db8::1]:53 -m -w 1
//!   ipvsadm -A -f 7 -s sh -p 300
//!   ipvsadm -Ln
//!   ipvsadm -d -t 192.0.2.10:80 -r 198.18.1.1:80
//!   ipvsadm -D -t 192.0.2.10:80

use std::net::IpAddr;

use anycastd::ipvs::model::flags;
use anycastd::ipvs::wire::{self, cmd};
use anycastd::ipvs::{Dest, Forward, Protocol, Service, ServiceKey};

/// A generic netlink message of the capture.
#[derive(Debug)]
struct Msg {
    nl_type: u16,
    nl_flags: u16,
    cmd: u8,
    attrs: Vec<u8>,
}

fn capture() -> Vec<Msg> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ipvs/ipvsadm.pcap");
    let pcap = std::fs::read(path).expect("read the capture");
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes(b[i..i + 2].try_into().unwrap());
    let mut out = Vec::new();
    let mut at = 24; // pcap file header
    while at + 16 <= pcap.len() {
        let caplen = u32_at(&pcap, at + 8) as usize;
        let rec = &pcap[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        // LINKTYPE_NETLINK: a 16-byte pseudo header, then the messages (a
        // dump packs several in one).
        let mut nl = &rec[16..];
        while nl.len() >= 20 {
            let len = u32_at(nl, 0) as usize;
            if len < 16 || len > nl.len() {
                break;
            }
            if len >= 20 {
                out.push(Msg {
                    nl_type: u16_at(nl, 4),
                    nl_flags: u16_at(nl, 6),
                    cmd: nl[16],
                    attrs: nl[20..len].to_vec(),
                });
            }
            nl = &nl[len.div_ceil(4) * 4..];
        }
    }
    out
}

/// The IPVS family's id in this capture: what ipvsadm resolved.
fn ipvs_messages() -> Vec<Msg> {
    let all = capture();
    // Control (0x10) replies carry the family id in attribute 1.
    let id = all
        .iter()
        .filter(|m| m.nl_type == 0x10 && m.cmd == 1)
        .find_map(|m| {
            wire::attributes(&m.attrs)
                .filter_map(Result::ok)
                .find(|(k, _)| *k == 1)
                .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))
        })
        .expect("the family id in the capture");
    all.into_iter().filter(|m| m.nl_type == id).collect()
}

const REQUEST: u16 = 0x1;

fn requests(command: u8) -> Vec<Vec<u8>> {
    ipvs_messages()
        .into_iter()
        .filter(|m| m.nl_flags & REQUEST != 0 && m.cmd == command)
        .map(|m| m.attrs)
        .collect()
}

fn web() -> Service {
    Service {
        key: ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        },
        scheduler: "mh".into(),
        flags: flags::SCHED1 | flags::SCHED2,
        timeout: 0,
        netmask: 0xffff_ffff,
        stats: None,
    }
}

fn dns6() -> Service {
    Service {
        key: ServiceKey::Inet {
            protocol: Protocol::Udp,
            addr: "2001:db8::10".parse().unwrap(),
            port: 53,
        },
        scheduler: "mh".into(),
        flags: 0,
        timeout: 0,
        netmask: 128,
        stats: None,
    }
}

fn fwm() -> Service {
    Service {
        key: ServiceKey::Fwmark {
            mark: 7,
            ipv6: false,
        },
        scheduler: "sh".into(),
        flags: flags::PERSISTENT,
        timeout: 300,
        netmask: 0xffff_ffff,
        stats: None,
    }
}

fn real1(weight: u32) -> Dest {
    Dest::new("198.18.1.1".parse().unwrap(), 80, Forward::Route, weight)
}

#[test]
fn new_service_requests_match_ipvsadm() {
    let got = requests(cmd::NEW_SERVICE);
    assert_eq!(got.len(), 3);
    assert_eq!(wire::service_request(&web()), got[0], "TCP mh");
    assert_eq!(wire::service_request(&dns6()), got[1], "UDP IPv6");
    assert_eq!(wire::service_request(&fwm()), got[2], "fwmark, persistent");
}

#[test]
fn dest_requests_match_ipvsadm() {
    let new = requests(cmd::NEW_DEST);
    assert_eq!(new.len(), 2);
    assert_eq!(wire::dest_request(&web().key, &real1(5)), new[0]);
    let masq6 = Dest::new(
        "2001:db8::1".parse::<IpAddr>().unwrap(),
        53,
        Forward::Masquerade,
        1,
    );
    assert_eq!(wire::dest_request(&dns6().key, &masq6), new[1]);
    let set = requests(cmd::SET_DEST);
    assert_eq!(wire::dest_request(&web().key, &real1(0)), set[0]);
    // ipvsadm -d sends its default weight, 1 (the kernel reads the
    // address and port only).
    let del = requests(cmd::DEL_DEST);
    assert_eq!(wire::dest_request(&web().key, &real1(1)), del[0]);
}

#[test]
fn del_service_request_matches_ipvsadm() {
    let del = requests(cmd::DEL_SERVICE);
    assert_eq!(wire::service_key_request(&web().key), del[0]);
}

#[test]
fn captured_dump_replies_decode_to_the_table() {
    let replies: Vec<Msg> = ipvs_messages()
        .into_iter()
        .filter(|m| m.nl_flags & REQUEST == 0)
        .collect();
    let mut services: Vec<Service> = replies
        .iter()
        .filter(|m| m.cmd == cmd::NEW_SERVICE)
        .map(|m| wire::decode_service(&m.attrs).expect("decode service"))
        .collect();
    services.sort_by_key(|s| s.key);
    let keys: Vec<ServiceKey> = services.iter().map(|s| s.key).collect();
    let mut want = vec![web().key, dns6().key, fwm().key];
    want.sort();
    assert_eq!(keys, want);
    for (s, w) in services.iter().zip([&web(), &dns6(), &fwm()]) {
        let w = [web(), dns6(), fwm()]
            .into_iter()
            .find(|x| x.key == s.key)
            .unwrap_or_else(|| w.clone());
        assert!(s.same_config(&w), "{s:?} vs {w:?}");
        assert!(s.stats.is_some(), "STATS64 decoded");
    }
    let dests: Vec<Dest> = replies
        .iter()
        .filter(|m| m.cmd == cmd::NEW_DEST)
        .map(|m| wire::decode_dest(&m.attrs, false).expect("decode dest"))
        .collect();
    assert!(dests.iter().any(|d| d.same_config(&real1(0))), "{dests:?}");
}
