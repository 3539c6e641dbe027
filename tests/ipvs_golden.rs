//! Golden bytes: what ipvsadm 1.31 sent to a real IPVS kernel (Debian's
//! 6.1), and what the kernel answered (tests/data/ipvs/ipvsadm.pcap,
//! captured on an nlmon device in the lab's VM with tcpdump by
//! tests/data/ipvs/capture.sh, which lists the ipvsadm commands). Every
//! request anycastd makes for the same operation must carry the same
//! attributes byte for byte (netlink sequence numbers and port ids play no
//! part: only the generic netlink payload is compared); every captured
//! reply must decode to what ipvsadm printed; every captured kernel error
//! must read as the right message.

use std::net::IpAddr;

use anycastd::ipvs::client::{error_for, OpKind};
use anycastd::ipvs::model::flags;
use anycastd::ipvs::wire::{self, cmd};
use anycastd::ipvs::{
    Dest, Forward, Protocol, Service, ServiceKey, SyncDaemon, SyncState, Timeouts, TunnelType,
};

/// A netlink message of the capture.
#[derive(Debug, Clone)]
struct Msg {
    nl_type: u16,
    nl_flags: u16,
    seq: u32,
    /// Generic netlink command (0 for NLMSG_ERROR).
    cmd: u8,
    /// The attributes after the generic netlink header.
    attrs: Vec<u8>,
    /// NLMSG_ERROR: the errno (0 for an acknowledgement).
    errno: Option<i32>,
}

const NLMSG_ERROR: u16 = 2;
const GENL_ID_CTRL: u16 = 0x10;
const NLM_F_REQUEST: u16 = 0x1;

fn le_u32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn le_u16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

/// Every netlink message of the pcap (LINKTYPE_NETLINK: a 16-byte cooked
/// header, then the messages; a dump packs several in one record).
fn capture() -> Vec<Msg> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ipvs/ipvsadm.pcap");
    let pcap = std::fs::read(path).expect("read the capture");
    let mut out = Vec::new();
    let mut at = 24; // pcap file header
    while at + 16 <= pcap.len() {
        let caplen = le_u32(&pcap, at + 8) as usize;
        let rec = &pcap[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        let mut nl = &rec[16..];
        while nl.len() >= 16 {
            let len = le_u32(nl, 0) as usize;
            if len < 16 || len > nl.len() {
                break;
            }
            let (nl_type, nl_flags, seq) = (le_u16(nl, 4), le_u16(nl, 6), le_u32(nl, 8));
            if nl_type == NLMSG_ERROR && len >= 20 {
                out.push(Msg {
                    nl_type,
                    nl_flags,
                    seq,
                    cmd: 0,
                    attrs: Vec::new(),
                    errno: Some(-(le_u32(nl, 16) as i32)),
                });
            } else if len >= 20 {
                out.push(Msg {
                    nl_type,
                    nl_flags,
                    seq,
                    cmd: nl[16],
                    attrs: nl[20..len].to_vec(),
                    errno: None,
                });
            }
            nl = &nl[len.div_ceil(4) * 4..];
        }
    }
    out
}

/// The IPVS family's id in this capture (what ipvsadm resolved: the
/// controller's reply carries it in CTRL_ATTR_FAMILY_ID).
fn family_id(all: &[Msg]) -> u16 {
    all.iter()
        .filter(|m| m.nl_type == GENL_ID_CTRL && m.cmd == 1)
        .find_map(|m| {
            wire::attributes(&m.attrs)
                .filter_map(Result::ok)
                .find(|(k, _)| *k == 1)
                .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))
        })
        .expect("the family id in the capture")
}

/// The IPVS messages and the kernel's errors, in capture order.
fn ipvs_messages() -> Vec<Msg> {
    let all = capture();
    let id = family_id(&all);
    all.into_iter()
        .filter(|m| m.nl_type == id || m.nl_type == NLMSG_ERROR)
        .collect()
}

fn requests() -> Vec<Msg> {
    ipvs_messages()
        .into_iter()
        .filter(|m| m.errno.is_none() && m.nl_flags & NLM_F_REQUEST != 0)
        .collect()
}

fn replies(command: u8) -> Vec<Msg> {
    ipvs_messages()
        .into_iter()
        .filter(|m| m.errno.is_none() && m.nl_flags & NLM_F_REQUEST == 0 && m.cmd == command)
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

fn web() -> Service {
    Service {
        key: ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: ip("192.0.2.10"),
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
            addr: ip("2001:db8::10"),
            port: 53,
        },
        scheduler: "mh".into(),
        flags: 0,
        timeout: 0,
        netmask: 128,
        stats: None,
    }
}

fn fwm7() -> Service {
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

/// `ipvsadm -E -f 7 -s sh -b sh-fallback,sh-port -p 600 -M 255.255.255.0`
fn fwm7_edited() -> Service {
    Service {
        flags: flags::PERSISTENT | flags::SCHED1 | flags::SCHED2,
        timeout: 600,
        netmask: 0xffff_ff00,
        ..fwm7()
    }
}

fn sctp() -> Service {
    Service {
        key: ServiceKey::Inet {
            protocol: Protocol::Sctp,
            addr: ip("192.0.2.11"),
            port: 5000,
        },
        scheduler: "wrr".into(),
        flags: 0,
        timeout: 0,
        netmask: 0xffff_ffff,
        stats: None,
    }
}

fn fwm9v6(svc_flags: u32) -> Service {
    Service {
        key: ServiceKey::Fwmark {
            mark: 9,
            ipv6: true,
        },
        scheduler: "mh".into(),
        flags: svc_flags,
        timeout: 0,
        netmask: 128,
        stats: None,
    }
}

fn real1(weight: u32) -> Dest {
    Dest::new(ip("198.18.1.1"), 80, Forward::Route, weight)
}

fn masq6() -> Dest {
    Dest::new(ip("2001:db8::1"), 53, Forward::Masquerade, 1)
}

/// The three tunnelled destinations of the SCTP service.
fn tunnels() -> [Dest; 3] {
    let tun = |kind, port, flags| Forward::Tunnel { kind, port, flags };
    let mut ipip = Dest::new(ip("198.18.1.5"), 5000, tun(TunnelType::Ipip, 0, 0), 2);
    ipip.upper_threshold = 100;
    ipip.lower_threshold = 50;
    // IP_VS_TUNNEL_ENCAP_FLAG_CSUM
    let gue = Dest::new(ip("198.18.1.6"), 5000, tun(TunnelType::Gue, 6080, 1), 3);
    let gre = Dest::new(ip("198.18.1.7"), 5000, tun(TunnelType::Gre, 0, 1), 4);
    [ipip, gue, gre]
}

fn master() -> SyncDaemon {
    SyncDaemon::new(SyncState::Master, "dummy0", 7)
}

fn backup() -> SyncDaemon {
    SyncDaemon {
        max_len: 1400,
        group: Some(ip("224.0.0.81")),
        port: 8848,
        ttl: 2,
        ..SyncDaemon::new(SyncState::Backup, "dummy0", 8)
    }
}

/// Every request of the capture that is not a read, in order, as
/// anycastd encodes it.
fn expected_changes() -> Vec<(&'static str, u8, Vec<u8>)> {
    let [ipip, gue, gre] = tunnels();
    let route = |a: &str, port| Dest::new(ip(a), port, Forward::Route, 1);
    vec![
        ("-A -t mh", cmd::NEW_SERVICE, wire::service_request(&web())),
        (
            "-a -g -w 5",
            cmd::NEW_DEST,
            wire::dest_request(&web().key, &real1(5)),
        ),
        (
            "-e -w 0",
            cmd::SET_DEST,
            wire::dest_request(&web().key, &real1(0)),
        ),
        (
            "-A -u IPv6",
            cmd::NEW_SERVICE,
            wire::service_request(&dns6()),
        ),
        (
            "-a -m IPv6",
            cmd::NEW_DEST,
            wire::dest_request(&dns6().key, &masq6()),
        ),
        ("-A -f -p", cmd::NEW_SERVICE, wire::service_request(&fwm7())),
        // ipvsadm -d sends its default weight, 1 (the kernel reads the
        // address and port only).
        (
            "-d",
            cmd::DEL_DEST,
            wire::dest_request(&web().key, &real1(1)),
        ),
        (
            "-D",
            cmd::DEL_SERVICE,
            wire::service_key_request(&web().key),
        ),
        (
            "-E -f -M",
            cmd::SET_SERVICE,
            wire::service_request(&fwm7_edited()),
        ),
        (
            "-A --sctp",
            cmd::NEW_SERVICE,
            wire::service_request(&sctp()),
        ),
        (
            "-a -i -x -y",
            cmd::NEW_DEST,
            wire::dest_request(&sctp().key, &ipip),
        ),
        (
            "-a gue",
            cmd::NEW_DEST,
            wire::dest_request(&sctp().key, &gue),
        ),
        (
            "-a gre",
            cmd::NEW_DEST,
            wire::dest_request(&sctp().key, &gre),
        ),
        (
            "-A -f -6",
            cmd::NEW_SERVICE,
            wire::service_request(&fwm9v6(flags::SCHED2)),
        ),
        (
            "--set",
            cmd::SET_CONFIG,
            wire::timeouts_request(&Timeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300,
            }),
        ),
        ("-Z", cmd::ZERO, wire::zero_request(None)),
        (
            "-Z --sctp",
            cmd::ZERO,
            wire::zero_request(Some(&sctp().key)),
        ),
        (
            "--start-daemon master",
            cmd::NEW_DAEMON,
            wire::daemon_start_request(&master()),
        ),
        (
            "--start-daemon backup",
            cmd::NEW_DAEMON,
            wire::daemon_start_request(&backup()),
        ),
        (
            "--stop-daemon master",
            cmd::DEL_DAEMON,
            wire::daemon_stop_request(SyncState::Master),
        ),
        (
            "--stop-daemon backup",
            cmd::DEL_DAEMON,
            wire::daemon_stop_request(SyncState::Backup),
        ),
        // The errors part.
        (
            "-A -s nosuch",
            cmd::NEW_SERVICE,
            wire::service_request(&Service {
                key: ServiceKey::Inet {
                    protocol: Protocol::Tcp,
                    addr: ip("192.0.2.12"),
                    port: 80,
                },
                scheduler: "nosuch".into(),
                ..sctp()
            }),
        ),
        (
            "-A twice",
            cmd::NEW_SERVICE,
            wire::service_request(&fwm9v6(0)),
        ),
        (
            "-D missing",
            cmd::DEL_SERVICE,
            wire::service_key_request(&ServiceKey::Inet {
                protocol: Protocol::Tcp,
                addr: ip("192.0.2.99"),
                port: 80,
            }),
        ),
        (
            "-d missing",
            cmd::DEL_DEST,
            wire::dest_request(&sctp().key, &route("198.18.1.99", 5000)),
        ),
        (
            "-a twice",
            cmd::NEW_DEST,
            wire::dest_request(
                &sctp().key,
                // No thresholds this time.
                &Dest::new(ip("198.18.1.5"), 5000, tunnels()[0].forward, 2),
            ),
        ),
        ("-C", cmd::FLUSH, Vec::new()),
    ]
}

fn is_read(command: u8) -> bool {
    matches!(
        command,
        cmd::GET_SERVICE | cmd::GET_DEST | cmd::GET_DAEMON | cmd::GET_CONFIG | cmd::GET_INFO
    )
}

#[test]
fn every_change_request_matches_ipvsadm_byte_for_byte() {
    let got: Vec<Msg> = requests().into_iter().filter(|m| !is_read(m.cmd)).collect();
    let want = expected_changes();
    for (i, (what, command, attrs)) in want.iter().enumerate() {
        let g = got
            .get(i)
            .unwrap_or_else(|| panic!("capture ends before request {i} ({what})"));
        assert_eq!(g.cmd, *command, "request {i} ({what}): command");
        assert_eq!(
            &g.attrs, attrs,
            "request {i} ({what}): ipvsadm's attributes, then ours"
        );
    }
    assert_eq!(got.len(), want.len(), "more requests in the capture");
}

#[test]
fn dest_dump_requests_match_ipvsadm() {
    // Each GET_DEST names a service that the GET_SERVICE dump just before
    // it listed, by its key alone.
    let dumps: Vec<Msg> = requests()
        .into_iter()
        .filter(|m| m.cmd == cmd::GET_DEST)
        .collect();
    assert_eq!(dumps.len(), 3 + 4, "two ipvsadm -Ln");
    let services: Vec<ServiceKey> = replies(cmd::NEW_SERVICE)
        .iter()
        .map(|m| wire::decode_service(&m.attrs).expect("decode service").key)
        .collect();
    for d in &dumps {
        assert!(
            services
                .iter()
                .any(|k| wire::dest_dump_request(k) == d.attrs),
            "GET_DEST {:02x?} is none of ours",
            d.attrs
        );
    }
    // Reads carry no attribute.
    for m in requests() {
        if matches!(
            m.cmd,
            cmd::GET_SERVICE | cmd::GET_DAEMON | cmd::GET_CONFIG | cmd::GET_INFO
        ) {
            assert!(m.attrs.is_empty(), "{m:?}");
        }
    }
}

#[test]
fn captured_service_replies_decode_to_the_table() {
    let services: Vec<Service> = replies(cmd::NEW_SERVICE)
        .iter()
        .map(|m| wire::decode_service(&m.attrs).expect("decode service"))
        .collect();
    // The first ipvsadm -Ln: web, dns6, fwm7; the second: dns6, the
    // edited fwm7, sctp, fwm9v6.
    assert_eq!(services.len(), 7);
    let want = [
        web(),
        dns6(),
        fwm7(),
        fwm7_edited(),
        sctp(),
        fwm9v6(flags::SCHED2),
    ];
    for s in &services {
        assert!(
            want.iter().any(|w| w.same_config(s)),
            "{s:?} is not one ipvsadm made"
        );
        assert!(s.stats.is_some(), "STATS64 decoded");
    }
    for w in &want {
        assert!(services.iter().any(|s| s.same_config(w)), "{w:?} missing");
    }
}

#[test]
fn captured_dest_replies_decode_to_the_table() {
    let dests: Vec<Dest> = replies(cmd::NEW_DEST)
        .iter()
        .map(|m| wire::decode_dest(&m.attrs, false).expect("decode dest"))
        .collect();
    let mut want = vec![real1(0), masq6(), masq6()];
    want.extend(tunnels());
    assert_eq!(dests.len(), want.len(), "{dests:?}");
    for w in &want {
        assert!(
            dests.iter().any(|d| d.same_config(w)),
            "{w:?} not in {dests:?}"
        );
    }
    assert!(dests.iter().all(|d| d.stats.is_some()));
}

#[test]
fn captured_info_timeouts_and_daemons_decode() {
    // ipvsadm asks GET_INFO first every time: "version 1.2.1 (size=4096)".
    let info = replies(cmd::SET_INFO);
    assert!(!info.is_empty());
    for m in &info {
        assert_eq!(
            wire::decode_info(&m.attrs).expect("decode info"),
            ("1.2.1".to_string(), 4096)
        );
    }
    // "Timeout (tcp tcpfin udp): 900 120 300"
    let config = replies(cmd::SET_CONFIG);
    assert_eq!(config.len(), 1);
    assert_eq!(
        wire::decode_timeouts(&config[0].attrs).expect("decode timeouts"),
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
    // "master sync daemon (mcast=dummy0, syncid=7, maxlen=1472,
    // group=224.0.0.81, port=8848, ttl=1)": the kernel fills in its
    // defaults. "backup ... syncid=8, maxlen=1400, ..., ttl=2".
    let daemons: Vec<SyncDaemon> = replies(cmd::NEW_DAEMON)
        .iter()
        .map(|m| wire::decode_daemon(&m.attrs).expect("decode daemon"))
        .collect();
    assert_eq!(
        daemons,
        [
            SyncDaemon {
                max_len: 1472,
                group: Some(ip("224.0.0.81")),
                port: 8848,
                ttl: 1,
                ..master()
            },
            backup()
        ]
    );
}

#[test]
fn captured_kernel_errors_read_clearly() {
    // Each NLMSG_ERROR with an errno answers the request of its sequence
    // number: ipvsadm printed "Scheduler or persistence engine not found",
    // "Service already exists", "No such service", "No such destination",
    // "Destination already exists".
    let mut sent: Vec<&Msg> = Vec::new();
    let mut errors = Vec::new();
    let msgs = ipvs_messages();
    for m in &msgs {
        match m.errno {
            None if m.nl_flags & NLM_F_REQUEST != 0 => sent.push(m),
            Some(errno) if errno != 0 => {
                let req = sent
                    .iter()
                    .rev()
                    .find(|r| r.seq == m.seq)
                    .expect("the failed request");
                errors.push(
                    error_for(errno, OpKind::of(req.cmd), "X".into(), Some("nosuch")).to_string(),
                );
            }
            _ => {}
        }
    }
    assert_eq!(
        errors,
        [
            "X: no such scheduler `nosuch` (load ip_vs_nosuch)",
            "X: the service exists already",
            "X: no such service",
            "X: no such destination",
            "X: the destination exists already",
        ]
    );
}
