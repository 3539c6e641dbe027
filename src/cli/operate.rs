//! Operator commands on a running daemon: `status`, `show services`,
//! `drain`, `undrain`, `reload` (clients of the control socket).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::protocol::{request, Request};

/// `VIP` or `all`.
pub fn parse_target(s: &str) -> Result<Option<Ipv4Addr>> {
    if s == "all" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .with_context(|| format!("`{s}` is neither a VIP address nor `all`"))
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// The VIP table of `status`.
pub fn render_status(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "router-id {}  config {}",
        text(v, "router_id"),
        text(v, "config")
    );
    let _ = writeln!(
        out,
        "{:<16} {:<10} {:>6}  {:<11} {:>11}  Services",
        "VIP", "Advertised", "Cost", "Drain", "Connections"
    );
    let empty = Vec::new();
    let services = v
        .get("services")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for vip in v.get("vips").and_then(Value::as_array).unwrap_or(&empty) {
        let addr = text(vip, "vip");
        let names: Vec<String> = services
            .iter()
            .filter(|s| text(s, "vip") == addr)
            .map(|s| {
                let healthy = s.get("healthy").and_then(Value::as_bool) == Some(true);
                let mut n = format!(
                    "{}({})",
                    text(s, "name"),
                    if healthy { "up" } else { "down" }
                );
                // Announced to VRRP tracking, not to OSPF.
                if let Some(i) = s.get("vrrp").and_then(Value::as_str) {
                    n.push_str(&format!(" via vrrp {i}"));
                }
                n
            })
            .collect();
        let mut drain = text(vip, "drain").to_string();
        if let Some(ms) = vip.get("hold_down_left_ms").and_then(Value::as_u64) {
            drain = format!("hold {} ms", ms);
        }
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>6}  {:<11} {:>11}  {}",
            addr,
            yes(vip.get("advertised").and_then(Value::as_bool) == Some(true)),
            vip.get("cost")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".into(), |c| c.to_string()),
            drain,
            vip.get("connections")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".into(), |c| c.to_string()),
            names.join(" ")
        );
        if let Some(r) = vip.get("reason").and_then(Value::as_str) {
            let _ = writeln!(out, "{:<16} {r}", "");
        }
    }
    out
}

/// `show services`: each service with its servers and check verdicts.
pub fn render_services(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<6} {:<16} {:<8} {:<10} {:<7} {:<24} Checks",
        "Service", "Mode", "VIP", "Healthy", "Programmed", "Quorum", "Server"
    );
    let empty = Vec::new();
    for s in v
        .get("services")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
    {
        let servers = s.get("servers").and_then(Value::as_array).unwrap_or(&empty);
        let up = servers
            .iter()
            .filter(|x| x.get("up").and_then(Value::as_bool) == Some(true))
            .count();
        for (i, server) in servers.iter().enumerate() {
            let checks: Vec<&str> = server
                .get("checks")
                .and_then(Value::as_array)
                .unwrap_or(&empty)
                .iter()
                .map(|c| match c.as_bool() {
                    Some(true) => "up",
                    Some(false) => "down",
                    None => "pending",
                })
                .collect();
            let server_col = format!(
                "{} ({})",
                text(server, "address"),
                if server.get("up").and_then(Value::as_bool) == Some(true) {
                    "up"
                } else {
                    "down"
                }
            );
            if i == 0 {
                let _ = writeln!(
                    out,
                    "{:<12} {:<6} {:<16} {:<8} {:<10} {:<7} {:<24} {}",
                    text(s, "name"),
                    text(s, "mode"),
                    text(s, "vip"),
                    yes(s.get("healthy").and_then(Value::as_bool) == Some(true)),
                    yes(s.get("programmed").and_then(Value::as_bool) == Some(true)),
                    format!(
                        "{}/{}",
                        up,
                        s.get("quorum").and_then(Value::as_u64).unwrap_or(0)
                    ),
                    server_col,
                    checks.join(",")
                );
            } else {
                let _ = writeln!(
                    out,
                    "{:<12} {:<6} {:<16} {:<8} {:<10} {:<7} {:<24} {}",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    server_col,
                    checks.join(",")
                );
            }
        }
        for server in servers {
            for p in server
                .get("probes")
                .and_then(Value::as_array)
                .unwrap_or(&empty)
            {
                let latency = p
                    .get("latency_ms")
                    .and_then(Value::as_f64)
                    .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
                let mut line = format!(
                    "{:<12} check {} {} {}: {}, last probe {} ({latency})",
                    "",
                    p.get("n").and_then(Value::as_u64).unwrap_or(0),
                    text(server, "address"),
                    text(p, "target"),
                    text(p, "state"),
                    text(p, "last"),
                );
                if let Some(e) = p.get("error").and_then(Value::as_str) {
                    line.push_str(&format!(": {e}"));
                }
                let _ = writeln!(out, "{line}");
            }
            if server.get("disabled").and_then(Value::as_bool) == Some(true) {
                let _ = writeln!(
                    out,
                    "{:<12} server {} disabled by the operator",
                    "",
                    text(server, "address")
                );
            }
        }
        if let Some(f) = s.get("fingerprint").and_then(Value::as_str) {
            let _ = writeln!(out, "{:<12} fingerprint {f}", "");
        }
    }
    out
}

/// `show vrrp`: one block per instance, shaped like keepalived's state
/// dump.
pub fn render_vrrp(v: &Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let list = v.get("vrrp").and_then(Value::as_array).unwrap_or(&empty);
    if list.is_empty() {
        out.push_str("no VRRP instances\n");
    }
    for i in list {
        let num = |k: &str| i.get(k).and_then(Value::as_u64).unwrap_or(0);
        let _ = writeln!(
            out,
            "VRRP instance {} on {}, VRID {}, version {}",
            text(i, "name"),
            text(i, "interface"),
            num("vrid"),
            num("version")
        );
        let _ = writeln!(
            out,
            "  State {}, priority {} (configured {}), master {}, advert interval {} ms",
            text(i, "state"),
            num("priority"),
            num("base_priority"),
            text(i, "master"),
            num("master_adver_interval_cs") * 10
        );
        let addrs: Vec<&str> = i
            .get("addresses")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let _ = writeln!(out, "  Virtual addresses {}", addrs.join(" "));
        let faults: Vec<&str> = i
            .get("faults")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if !faults.is_empty() {
            let _ = writeln!(out, "  Faults: {}", faults.join(", "));
        }
        let _ = writeln!(out, "  Another master seen {} times", num("other_masters"));
        if let Some(c) = i.get("counters").and_then(Value::as_object) {
            let parts: Vec<String> = c.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "  Counters: {}", parts.join(", "));
        }
    }
    out
}

pub fn vrrp(socket: &Path, json: bool) -> Result<()> {
    show_part(socket, json, "vrrp", render_vrrp)
}

/// One part of `status`: its JSON, or `render` of the whole.
fn show_part(socket: &Path, json: bool, key: &str, render: fn(&Value) -> String) -> Result<()> {
    let v = request(socket, &Request::Status)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(v.get(key).unwrap_or(&Value::Null))?
        );
    } else {
        print!("{}", render(&v));
    }
    Ok(())
}

pub fn status(socket: &Path, json: bool) -> Result<()> {
    let v = request(socket, &Request::Status)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render_status(&v));
    }
    Ok(())
}

pub fn services(socket: &Path, json: bool) -> Result<()> {
    show_part(socket, json, "services", render_services)
}

/// `drain`: raise the cost, withdraw, then wait (printing progress) until
/// the VIPs' traffic stopped or their deadline passed, unless `no_wait`.
pub fn drain(socket: &Path, target: Option<Ipv4Addr>, no_wait: bool, json: bool) -> Result<()> {
    let v = request(socket, &Request::Drain { vip: target })?;
    let vips: Vec<String> = v
        .get("draining")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !json {
        println!("draining {}", vips.join(" "));
    }
    if no_wait {
        if json {
            println!("{v}");
        }
        return Ok(());
    }
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let st = request(socket, &Request::Status)?;
        let empty = Vec::new();
        let rows: Vec<&Value> = st
            .get("vips")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .iter()
            .filter(|r| vips.iter().any(|x| x == text(r, "vip")))
            .collect();
        let line: Vec<String> = rows
            .iter()
            .map(|r| {
                let conns = r
                    .get("connections")
                    .and_then(Value::as_u64)
                    .map_or_else(String::new, |c| format!(", {c} connections"));
                format!("{} {}{}", text(r, "vip"), text(r, "drain"), conns)
            })
            .collect();
        let line = line.join("; ");
        if line != last && !json {
            println!("{:>6.1} s  {line}", start.elapsed().as_secs_f64());
            last = line;
        }
        let done = rows.iter().all(|r| {
            let d = text(r, "drain");
            d == "drained" || d == "-"
        });
        if done {
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!("drained after {:.1} s", start.elapsed().as_secs_f64());
            }
            let left: u64 = rows
                .iter()
                .filter_map(|r| r.get("drain_connections_left").and_then(Value::as_u64))
                .sum();
            if left > 0 {
                return Err(DrainIncomplete { left }.into());
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A drain that ended at its deadline with connections left: the
/// command exits with [`DrainIncomplete::EXIT_CODE`], so that
/// `anycastd drain VIP && systemctl stop nginx` does not cut them.
#[derive(Debug, thiserror::Error)]
#[error("the drain deadline passed with {left} connections left")]
pub struct DrainIncomplete {
    pub left: u64,
}

impl DrainIncomplete {
    pub const EXIT_CODE: i32 = 3;
}

fn list(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

pub fn undrain(socket: &Path, target: Option<Ipv4Addr>, json: bool) -> Result<()> {
    let v = request(socket, &Request::Undrain { vip: target })?;
    if json {
        println!("{v}");
    } else {
        println!("undrained {}", list(&v, "undrained"));
    }
    Ok(())
}

pub fn server(
    socket: &Path,
    vip: Ipv4Addr,
    server: std::net::IpAddr,
    disable: bool,
    json: bool,
) -> Result<()> {
    let v = request(
        socket,
        &Request::Server {
            vip,
            server,
            disable,
        },
    )?;
    if json {
        println!("{v}");
    } else if disable {
        println!("server {server} of VIP {vip} disabled (weight 0) until anycastd server enable {vip} {server}");
    } else {
        println!("server {server} of VIP {vip} enabled");
    }
    Ok(())
}

pub fn reload(socket: &Path, json: bool) -> Result<()> {
    let v = request(socket, &Request::Reload)?;
    if json {
        println!("{v}");
        return Ok(());
    }
    println!("reloaded {}", text(&v, "config"));
    if let Some(notes) = v.get("notes").and_then(Value::as_array) {
        for n in notes.iter().filter_map(Value::as_str) {
            println!("  {n}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "router_id": "198.18.0.11",
            "config": "/etc/anycastd.toml",
            "services": [{
                "name": "web", "vip": "192.0.2.10", "mode": "local", "healthy": true,
                "programmed": true, "settled": true, "quorum": 1,
                "servers": [{"address": "192.0.2.10", "up": true, "checks": [true, null]}]
            }],
            "vips": [{"vip": "192.0.2.10", "area": "0.0.0.0", "advertised": true, "cost": 10,
                      "drain": null, "hold_down_left_ms": null, "connections": 3}],
            "events": []
        })
    }

    #[test]
    fn status_table_has_one_row_per_vip() {
        let t = render_status(&sample());
        let row = t.lines().nth(2).expect("row");
        assert!(row.starts_with("192.0.2.10"), "{t}");
        assert!(
            row.contains("yes") && row.contains("10") && row.contains("web(up)"),
            "{t}"
        );
        assert!(row.contains(" 3 "), "{t}");
    }

    #[test]
    fn services_table_shows_checks() {
        let t = render_services(&sample());
        assert!(t.contains("192.0.2.10 (up)"), "{t}");
        assert!(t.contains("up,pending"), "{t}");
    }

    #[test]
    fn vrrp_blocks_show_state_and_tracking() {
        let mut v = sample();
        v["services"][0]["vrrp"] = json!("VI_1");
        v["vrrp"] = json!([{
            "name": "VI_1", "interface": "eth0", "vrid": 51, "version": 3,
            "state": "Fault", "priority": 50, "base_priority": 150, "master": null,
            "master_adver_interval_cs": 10, "other_masters": 2,
            "faults": ["reference 198.18.0.1"], "addresses": ["192.0.2.10"],
            "counters": {"adverts_sent": 7}
        }]);
        let t = render_vrrp(&v);
        assert!(
            t.contains("VRRP instance VI_1 on eth0, VRID 51, version 3"),
            "{t}"
        );
        assert!(
            t.contains("State Fault, priority 50 (configured 150)"),
            "{t}"
        );
        assert!(t.contains("advert interval 100 ms"), "{t}");
        assert!(t.contains("Faults: reference 198.18.0.1"), "{t}");
        assert!(t.contains("adverts_sent 7"), "{t}");
        assert!(render_status(&v).contains("web(up) via vrrp VI_1"));
        assert_eq!(render_vrrp(&sample()), "no VRRP instances\n");
    }

    #[test]
    fn targets() {
        assert_eq!(parse_target("all").expect("all"), None);
        assert_eq!(
            parse_target("192.0.2.1").expect("ip"),
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert!(parse_target("web").is_err());
    }
}
