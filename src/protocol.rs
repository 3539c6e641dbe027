//! The control socket's protocol, shared by the daemon (which serves it,
//! `daemon::control`) and the command line (its client): a Unix socket
//! (mode 0600) speaking one JSON object per line each way.
//!
//! A client sends one request per line (a [`Request`], tagged by `cmd`)
//! and may send more on the same connection, one after the other. Each
//! request gets one reply line: a JSON value, or `{"error": "..."}`.
//!
//! Streamed requests (today only `show-ospf-database`) get one line per
//! row (an LSA object, [`lsa_json`]) as the speaker walks its database,
//! then a last line `{"end": true, "count": N}` with the number of rows
//! sent. An `{"error": "..."}` line can come instead of any row or the last
//! line, and ends the reply. Read streamed replies with [`request_stream`].
//!
//! The JSON shapes of the speaker's views ([`neighbor_json`],
//! [`interface_json`], [`lsa_json`]) are defined here, where both sides
//! see them.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result};
use ospf::instance::{InterfaceInfo, NeighborInfo};
use ospf::lsa::LsaHeader;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// `vip advertise`: a VIP of the config (its cost and area from the
    /// config), or with `force` any VIP.
    Advertise {
        vip: Ipv4Addr,
        cost: Option<u16>,
        area: Option<Ipv4Addr>,
        #[serde(default)]
        force: bool,
    },
    /// `vip withdraw`, kept across restarts until `vip advertise`.
    Withdraw {
        vip: Ipv4Addr,
        #[serde(default)]
        force: bool,
    },
    /// `server disable|enable VIP SERVER`: a real server out (weight 0,
    /// counted as down) or back, kept across restarts.
    Server {
        vip: Ipv4Addr,
        server: std::net::IpAddr,
        disable: bool,
    },
    StubRouter {
        on: bool,
    },
    ShowOspfNeighbor,
    ShowOspfInterface,
    ShowOspfDatabase,
    /// One LSA, decoded: type, link-state ID, advertising router.
    ShowOspfLsa {
        area: Option<Ipv4Addr>,
        lsa_type: u8,
        link_state_id: Ipv4Addr,
        advertising_router: Ipv4Addr,
    },
    ShowCounters,
    /// Services, VIPs, drains and recent events (`anycastd status`).
    Status,
    /// Drain a VIP, or every VIP when `vip` is absent.
    Drain {
        vip: Option<Ipv4Addr>,
    },
    Undrain {
        vip: Option<Ipv4Addr>,
    },
    /// Re-read the configuration file; apply only the difference.
    Reload,
    /// The configuration files in effect, with their text.
    ShowRunningConfig,
    /// A new log filter (RUST_LOG's syntax) until the daemon stops.
    LogLevel {
        filter: String,
    },
}

pub fn neighbor_json(n: &NeighborInfo) -> Value {
    json!({
        "router_id": n.router_id.to_string(),
        "address": n.addr.to_string(),
        "interface": n.iface_name,
        "priority": n.priority,
        "state": state_with_role(n),
        "dr": n.dr.to_string(),
        "bdr": n.bdr.to_string(),
        "dead_ms": u64::try_from(n.dead_in.as_millis()).unwrap_or(u64::MAX),
        "retransmit_list": n.retransmit_len,
        "request_list": n.request_len,
        "summary_list": n.summary_len,
    })
}

/// `Full/DR` as vtysh prints it: the neighbour's state, then its role on
/// the network as its Hellos declare it (point-to-point neighbours have none).
fn state_with_role(n: &NeighborInfo) -> String {
    let role = if n.dr == n.addr {
        "DR"
    } else if n.bdr == n.addr {
        "Backup"
    } else if n.dr.is_unspecified() && n.bdr.is_unspecified() {
        return n.state.to_string();
    } else {
        "DROther"
    };
    format!("{}/{role}", n.state)
}

pub fn interface_json(i: &InterfaceInfo) -> Value {
    json!({
        "name": i.name,
        "address": format!("{}/{}", i.addr, i.prefix_len),
        "area": i.area.to_string(),
        "area_type": i.area_type.name(),
        // Neighbours whose Hellos disagree with the area type, heard
        // within a dead interval, with what they expect.
        "area_type_mismatches": i.area_type_mismatches.iter().map(|(addr, reason)| json!({
            "neighbor": addr.to_string(),
            "reason": reason,
        })).collect::<Vec<_>>(),
        "network": match i.network {
            ospf::instance::NetworkType::Broadcast => "broadcast",
            ospf::instance::NetworkType::PointToPoint => "point-to-point",
        },
        "state": i.state.to_string(),
        "dr": i.dr.to_string(),
        "bdr": i.bdr.to_string(),
        "neighbors": i.neighbors,
        "adjacent": i.adjacencies,
        "hello": i.hello_interval,
        "hello_multiplier": i.hello_multiplier,
        "dead": i.dead_interval,
        "retransmit": i.retransmit_interval,
        "cost": i.cost,
        "priority": i.priority,
        "mtu": i.mtu,
        "auth": i.auth,
        "send_key_id": i.send_key_id,
    })
}

/// An LSA's body as `show ospf lsa` shows it: a Router-LSA's links with
/// their types and metrics, a Network-LSA's routers, summary and external
/// metrics; other bodies as their length.
pub fn lsa_body_json(body: &ospf::lsa::LsaBody) -> Value {
    use ospf::lsa::{LsaBody, RouterLinkType};
    match body {
        LsaBody::Router(r) => json!({
            "flags": format!("{:?}", r.flags),
            "links": r.links.iter().map(|l| json!({
                "type": match l.link_type {
                    RouterLinkType::PointToPoint => "point-to-point",
                    RouterLinkType::Transit => "transit",
                    RouterLinkType::Stub => "stub",
                    RouterLinkType::Virtual => "virtual",
                },
                "link_id": l.link_id.to_string(),
                "link_data": l.link_data.to_string(),
                "metric": l.metric,
            })).collect::<Vec<_>>(),
        }),
        LsaBody::Network(n) => json!({
            "network_mask": n.network_mask.to_string(),
            "attached_routers": n.attached_routers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        LsaBody::SummaryNetwork(s) | LsaBody::SummaryAsbr(s) => json!({
            "network_mask": s.network_mask.to_string(),
            "metric": s.metric,
        }),
        LsaBody::AsExternal(e) | LsaBody::Nssa(e) => json!({
            "network_mask": e.network_mask.to_string(),
            "metric_type": if e.e_bit { 2 } else { 1 },
            "metric": e.metric,
            "forwarding_address": e.forwarding_address.to_string(),
            "tag": e.external_route_tag,
        }),
        LsaBody::Opaque(b) | LsaBody::Unknown(b) => json!({ "length": b.len() }),
    }
}

pub fn lsa_json(area: Ipv4Addr, h: &LsaHeader) -> Value {
    json!({
        "area": area.to_string(),
        "type": u8::from(h.lsa_type),
        "link_state_id": h.link_state_id.to_string(),
        "advertising_router": h.advertising_router.to_string(),
        "age": h.age,
        "sequence": format!("{:08x}", h.seq as u32),
        "checksum": format!("{:04x}", h.checksum),
        "length": h.length,
    })
}

/// Sends one request and returns the reply (blocking client). For a
/// streamed request use [`request_stream`].
pub fn request(socket: &Path, req: &Request) -> Result<Value> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connect to {} (is anycastd running?)", socket.display()))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    let v: Value = serde_json::from_str(&reply).context("bad reply")?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        anyhow::bail!("{e}");
    }
    Ok(v)
}

/// Sends a streamed request (`show-ospf-database`) and hands each row to
/// `row` as it arrives; returns the number of rows. An `error` line, or a
/// reply that ends without its `end` line or with a different count, is an
/// error (rows before it have been handed out already).
pub fn request_stream(
    socket: &Path,
    req: &Request,
    mut row: impl FnMut(Value) -> Result<()>,
) -> Result<u64> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connect to {} (is anycastd running?)", socket.display()))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    read_stream(BufReader::new(stream), &mut row)
}

pub(crate) fn read_stream(
    reader: impl BufRead,
    row: &mut impl FnMut(Value) -> Result<()>,
) -> Result<u64> {
    let mut rows: u64 = 0;
    for line in reader.lines() {
        let v: Value = serde_json::from_str(&line?).context("bad reply")?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            anyhow::bail!("{e}");
        }
        if v.get("end").and_then(Value::as_bool) == Some(true) {
            let count = v.get("count").and_then(Value::as_u64);
            if count != Some(rows) {
                anyhow::bail!("reply ended after {rows} rows but says {count:?}");
            }
            return Ok(rows);
        }
        rows += 1;
        row(v)?;
    }
    anyhow::bail!("reply ended after {rows} rows without its end line (did anycastd stop?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Result<u64>, Vec<Value>) {
        let mut got = Vec::new();
        let r = read_stream(text.as_bytes(), &mut |v| {
            got.push(v);
            Ok(())
        });
        (r, got)
    }

    #[test]
    fn streamed_replies() {
        let (r, rows) = read("{\"type\":1}\n{\"type\":5}\n{\"end\":true,\"count\":2}\n");
        assert_eq!(r.expect("ok"), 2);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["type"], 5);
        let (r, rows) = read("{\"end\":true,\"count\":0}\n");
        assert_eq!((r.expect("empty"), rows.len()), (0, 0));
        let (r, rows) = read("{\"type\":1}\n{\"error\":\"speaker stopped\"}\n");
        assert_eq!(rows.len(), 1);
        assert!(r
            .expect_err("error")
            .to_string()
            .contains("speaker stopped"));
        let (r, _) = read("{\"type\":1}\n");
        assert!(r
            .expect_err("cut")
            .to_string()
            .contains("without its end line"));
        let (r, _) = read("{\"type\":1}\n{\"end\":true,\"count\":2}\n");
        assert!(r.expect_err("count").to_string().contains("says Some(2)"));
    }
}
