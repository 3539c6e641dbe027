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
    /// Advertise a VIP /32 (or change its cost).
    Advertise {
        vip: Ipv4Addr,
        #[arg(long, default_value_t = 0)]
        cost: u16,
        #[arg(long)]
        area: Option<Ipv4Addr>,
    },
    /// Stop advertising a VIP (the address stays on lo).
    Withdraw { vip: Ipv4Addr },
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
        ShowCommand::Services | ShowCommand::Vrrp => unreachable!("handled above"),
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
                println!(
                    "{} is {}, address {}, area {}\n  DR {}, BDR {}, {} neighbors, {} adjacent",
                    s(i, "name"),
                    s(i, "state"),
                    s(i, "address"),
                    s(i, "area"),
                    s(i, "dr"),
                    s(i, "bdr"),
                    s(i, "neighbors"),
                    s(i, "adjacent")
                );
            }
        }
        "lsa" => {
            println!(
                "area {} type {} link-state id {} advertising router {}\n  age {} seq {} checksum {} length {}\n{}",
                s(&v, "area"),
                s(&v, "type"),
                s(&v, "link_state_id"),
                s(&v, "advertising_router"),
                s(&v, "age"),
                s(&v, "sequence"),
                s(&v, "checksum"),
                s(&v, "length"),
                s(&v, "body")
            );
        }
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
    let req = match action {
        VipCommand::Advertise { vip, cost, area } => Request::Advertise { vip, cost, area },
        VipCommand::Withdraw { vip } => Request::Withdraw { vip },
        VipCommand::StubRouter { state } => Request::StubRouter { on: state == "on" },
    };
    request(socket, &req)?;
    println!("ok");
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
