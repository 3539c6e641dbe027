//! `anycastd show ...` and `anycastd vip ...`: control-socket clients that
//! print vtysh-like tables (or JSON).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use crate::protocol::{request, request_stream, Request};

#[derive(Subcommand)]
pub enum ShowCommand {
    /// OSPF state, shaped like vtysh's `show ip ospf ...`.
    Ospf {
        #[command(subcommand)]
        what: OspfWhat,
    },
    /// Received packets dropped, by reason.
    Counters,
    /// Services with their servers and check verdicts.
    Services,
    /// VRRP instances: state, priority, master, tracking, counters.
    Vrrp,
    /// The configuration in effect: the files as the daemon last read them
    /// (at start or by the last reload it applied).
    RunningConfig,
}

#[derive(Subcommand, Clone, Copy)]
pub enum OspfWhat {
    Neighbor,
    Interface,
    Database,
    /// One LSA in detail.
    Lsa {
        /// LS type (1 router, 2 network, 3/4 summary, 5 external, ...).
        lsa_type: u8,
        link_state_id: Ipv4Addr,
        advertising_router: Ipv4Addr,
        #[arg(long)]
        area: Option<Ipv4Addr>,
    },
}

#[derive(Subcommand)]
pub enum VipCommand {
    /// Advertise a VIP of the config again after a `vip withdraw` (its
    /// cost and area come from the config); with `--force`, any VIP.
    Advertise {
        vip: Ipv4Addr,
        /// A static `[[vip]]`'s cost (default: the configured one), or a
        /// forced VIP's (default 0).
        #[arg(long)]
        cost: Option<u16>,
        #[arg(long)]
        area: Option<Ipv4Addr>,
        /// Announce a VIP that is in no service and no `[[vip]]`.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Stop advertising a VIP until `vip advertise` (kept across restarts;
    /// the address stays on lo).
    Withdraw {
        vip: Ipv4Addr,
        /// Withdraw a VIP announced with `--force`.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// RFC 6987 stub-router mode on or off.
    StubRouter {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

pub fn show(socket: &Path, what: ShowCommand, as_json: bool) -> Result<()> {
    if let ShowCommand::Ospf {
        what: OspfWhat::Database,
    } = what
    {
        return show_database(socket, as_json);
    }
    if let ShowCommand::Services = what {
        return crate::cli::operate::services(socket, as_json);
    }
    if let ShowCommand::Vrrp = what {
        return crate::cli::operate::vrrp(socket, as_json);
    }
    if let ShowCommand::RunningConfig = what {
        let v = request(socket, &Request::ShowRunningConfig)?;
        if as_json {
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        for f in v
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            println!("# {}", s(&f, "file"));
            print!("{}", s(&f, "text"));
        }
        return Ok(());
    }
    let (req, what) = match what {
        ShowCommand::Ospf {
            what: OspfWhat::Neighbor,
        } => (Request::ShowOspfNeighbor, "neighbor"),
        ShowCommand::Ospf {
            what: OspfWhat::Interface,
        } => (Request::ShowOspfInterface, "interface"),
        ShowCommand::Ospf {
            what: OspfWhat::Database,
        } => unreachable!("streamed above"),
        ShowCommand::Ospf {
            what:
                OspfWhat::Lsa {
                    lsa_type,
                    link_state_id,
                    advertising_router,
                    area,
                },
        } => (
            Request::ShowOspfLsa {
                area,
                lsa_type,
                link_state_id,
                advertising_router,
            },
            "lsa",
        ),
        ShowCommand::Counters => (Request::ShowCounters, "counters"),
        ShowCommand::Services | ShowCommand::Vrrp | ShowCommand::RunningConfig => {
            unreachable!("handled above")
        }
    };
    let v = request(socket, &req)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rows = v.as_array().cloned().unwrap_or_default();
    match what {
        "neighbor" => {
            println!(
                "{:<15} {:>3} {:<16} {:>9} {:<15} {:<10} {:>5} {:>5} {:>5}",
                "Neighbor ID",
                "Pri",
                "State",
                "Dead Time",
                "Address",
                "Interface",
                "RXmtL",
                "RqstL",
                "DBsmL"
            );
            for n in &rows {
                let dead = n
                    .get("dead_ms")
                    .and_then(Value::as_u64)
                    .map_or("-".into(), |ms| format!("{:.3}s", ms as f64 / 1000.0));
                println!(
                    "{:<15} {:>3} {:<16} {:>9} {:<15} {:<10} {:>5} {:>5} {:>5}",
                    s(n, "router_id"),
                    s(n, "priority"),
                    s(n, "state"),
                    dead,
                    s(n, "address"),
                    s(n, "interface"),
                    s(n, "retransmit_list"),
                    s(n, "request_list"),
                    s(n, "summary_list")
                );
            }
        }
        "interface" => {
            for i in &rows {
                let hello = if s(i, "hello") == "0" {
                    format!("{} per second", s(i, "hello_multiplier"))
                } else {
                    format!("{} s", s(i, "hello"))
                };
                let key = match i.get("send_key_id").and_then(Value::as_u64) {
                    Some(k) => format!(", sending with key {k}"),
                    None => String::new(),
                };
                // A daemon from before area types sends none.
                let area_type = match s(i, "area_type").as_str() {
                    "-" => String::new(),
                    t => format!(" ({t})"),
                };
                println!(
                    "{} is {}, address {}, area {}{area_type}, {} network\n  \
                     hello {hello}, dead {} s, retransmit {} s, cost {}, priority {}, MTU {}\n  \
                     authentication {}{key}\n  DR {}, BDR {}, {} neighbors, {} adjacent",
                    s(i, "name"),
                    s(i, "state"),
                    s(i, "address"),
                    s(i, "area"),
                    s(i, "network"),
                    s(i, "dead"),
                    s(i, "retransmit"),
                    s(i, "cost"),
                    s(i, "priority"),
                    s(i, "mtu"),
                    s(i, "auth"),
                    s(i, "dr"),
                    s(i, "bdr"),
                    s(i, "neighbors"),
                    s(i, "adjacent")
                );
                let mismatches = i
                    .get("area_type_mismatches")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for m in mismatches {
                    println!("  area type mismatch, Hellos dropped: {}", s(&m, "reason"));
                }
            }
        }
        "lsa" => print!("{}", render_lsa(&v)),
        _ => {
            let dropped = v
                .get("dropped")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if dropped.is_empty() {
                println!("no packets dropped");
            }
            for (reason, n) in dropped {
                println!("{reason:<24} {n}");
            }
            let anomalies = v
                .get("anomalies")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if !anomalies.is_empty() {
                println!("repaired:");
            }
            for (kind, n) in anomalies {
                println!("{kind:<24} {n}");
            }
        }
    }
    Ok(())
}

/// One LSA as vtysh's `show ip ospf database router ADV` prints it.
fn render_lsa(v: &Value) -> String {
    let mut out = format!(
        "  LS age: {}\n  LS Type: {}\n  Link State ID: {}\n  Advertising Router: {}\n  \
         LS Seq Number: {}\n  Checksum: 0x{}\n  Length: {}\n  Area: {}\n",
        s(v, "age"),
        match v.get("type").and_then(Value::as_u64) {
            Some(1) => "router-LSA".to_string(),
            Some(2) => "network-LSA".to_string(),
            Some(3) => "summary-LSA".to_string(),
            Some(4) => "ASBR-summary-LSA".to_string(),
            Some(5) => "AS-external-LSA".to_string(),
            Some(7) => "NSSA-LSA".to_string(),
            Some(t) => format!("type {t}"),
            None => "-".to_string(),
        },
        s(v, "link_state_id"),
        s(v, "advertising_router"),
        s(v, "sequence"),
        s(v, "checksum"),
        s(v, "length"),
        s(v, "area"),
    );
    let body = v.get("body").cloned().unwrap_or(Value::Null);
    if let Some(links) = body.get("links").and_then(Value::as_array) {
        out.push_str(&format!("   Number of Links: {}\n", links.len()));
        for l in links {
            let (id, data) = match l.get("type").and_then(Value::as_str) {
                Some("stub") => ("(Link ID) Net", "(Link Data) Network Mask"),
                Some("transit") => (
                    "(Link ID) Designated Router address",
                    "(Link Data) Router Interface address",
                ),
                _ => (
                    "(Link ID) Neighboring Router ID",
                    "(Link Data) Router Interface address",
                ),
            };
            out.push_str(&format!(
                "\n    Link connected to: {}\n     {id}: {}\n     {data}: {}\n      TOS 0 Metric: {}\n",
                s(l, "type"),
                s(l, "link_id"),
                s(l, "link_data"),
                s(l, "metric"),
            ));
        }
    } else if let Some(obj) = body.as_object() {
        for (k, val) in obj {
            out.push_str(&format!(
                "  {k}: {}\n",
                match val {
                    Value::String(x) => x.clone(),
                    other => other.to_string(),
                }
            ));
        }
    }
    out
}

/// `show ospf database`: the table (or the JSON array) printed row by row
/// as the daemon streams the LSAs, so neither side holds all of them. The
/// output is the same as printing the whole list at once.
fn show_database(socket: &Path, as_json: bool) -> Result<()> {
    // Buffered (the table is 50,000 lines at 50,000 LSAs); rows still
    // appear as they arrive, a buffer at a time.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let r = if as_json {
        print_database_json(socket, &mut out)
    } else {
        print_database_table(socket, &mut out)
    };
    match r {
        // `anycastd show ospf database | head`: the reader has what it wanted.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        r => r,
    }
}

fn database_header(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<15} {:<4} {:<15} {:<15} {:>5} {:<8} {:<6}",
        "Area", "Type", "Link ID", "ADV Router", "Age", "Seq#", "CkSum"
    )
}

fn print_database_table(socket: &Path, out: &mut impl Write) -> Result<()> {
    // The header comes with the first row (or the end), so a daemon that
    // cannot be reached prints only the error, as before.
    let mut header = false;
    request_stream(socket, &Request::ShowOspfDatabase, |l| {
        if !header {
            database_header(out)?;
            header = true;
        }
        writeln!(out, "{}", database_row(&l))?;
        Ok(())
    })?;
    if !header {
        database_header(out)?;
    }
    out.flush()?;
    Ok(())
}

fn database_row(l: &Value) -> String {
    format!(
        "{:<15} {:<4} {:<15} {:<15} {:>5} {:<8} {:<6}",
        s(l, "area"),
        s(l, "type"),
        s(l, "link_state_id"),
        s(l, "advertising_router"),
        s(l, "age"),
        s(l, "sequence"),
        s(l, "checksum")
    )
}

/// The text `serde_json::to_string_pretty` gives for the array of all
/// rows, written one row at a time.
fn print_database_json(socket: &Path, out: &mut impl Write) -> Result<()> {
    let mut rows = 0u64;
    request_stream(socket, &Request::ShowOspfDatabase, |l| {
        write_json_element(out, rows == 0, &l)?;
        rows += 1;
        Ok(())
    })?;
    writeln!(out, "{}", if rows == 0 { "[]" } else { "\n]" })?;
    out.flush()?;
    Ok(())
}

/// One element of a pretty-printed JSON array: `[` or `,` before it, then
/// its pretty text indented by two spaces.
fn write_json_element(out: &mut impl Write, first: bool, v: &Value) -> Result<()> {
    out.write_all(if first { b"[\n" } else { b",\n" })?;
    let text = serde_json::to_string_pretty(v)?;
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        write!(out, "  {line}")?;
    }
    Ok(())
}

pub fn vip(socket: &Path, action: VipCommand) -> Result<()> {
    let (req, json, done) = match action {
        VipCommand::Advertise {
            vip,
            cost,
            area,
            force,
            json,
        } => (
            Request::Advertise {
                vip,
                cost,
                area,
                force,
            },
            json,
            format!("VIP {vip} advertised (anycastd status shows when it is announced)"),
        ),
        VipCommand::Withdraw { vip, force, json } => (
            Request::Withdraw { vip, force },
            json,
            format!("VIP {vip} withdrawn until anycastd vip advertise {vip}"),
        ),
        VipCommand::StubRouter { state } => (
            Request::StubRouter { on: state == "on" },
            false,
            format!("stub-router {state}"),
        ),
    };
    let v = request(socket, &req)?;
    if json {
        println!("{v}");
    } else {
        println!("{done}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn streamed_json_matches_the_pretty_array() {
        let rows = [
            json!({"area": "0.0.0.0", "type": 1, "link_state_id": "198.18.0.11",
                   "advertising_router": "198.18.0.11", "age": 3, "sequence": "80000002",
                   "checksum": "bbff", "length": 48}),
            json!({"area": "0.0.0.0", "type": 5, "link_state_id": "198.19.0.7",
                   "advertising_router": "198.18.0.1", "age": 0, "sequence": "80000001",
                   "checksum": "5394", "length": 36}),
        ];
        for n in 0..=rows.len() {
            let mut out = Vec::new();
            for (i, r) in rows[..n].iter().enumerate() {
                write_json_element(&mut out, i == 0, r).expect("written");
            }
            writeln!(out, "{}", if n == 0 { "[]" } else { "\n]" }).expect("written");
            let whole = format!(
                "{}\n",
                serde_json::to_string_pretty(&Value::Array(rows[..n].to_vec())).expect("json")
            );
            assert_eq!(String::from_utf8(out).expect("utf-8"), whole);
        }
    }
}
