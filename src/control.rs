//! The control socket: a Unix socket (mode 0600) speaking one JSON object
//! per line each way. The CLI and the lab are its clients.
//!
//! A client sends one request per line (a [`Request`], tagged by `cmd`)
//! and may send more on the same connection, one after the other. Each
//! request gets one reply line: a JSON value, or `{"error": "..."}`.
//!
//! Streamed requests (today only `show-ospf-database`) get one line per
//! row (an LSA object, `crate::show::lsa_json`) as the speaker walks its
//! database, then a last line `{"end": true, "count": N}` with the number of
//! rows sent. An `{"error": "..."}` line can come instead of any row or the
//! last line, and ends the reply. Neither side holds the whole database:
//! the speaker hands out chunks of [`speaker::DATABASE_CHUNK`] LSAs through
//! a small bounded channel as the rows are written, so a slow reader slows
//! the walk down (and leaves the speaker's OSPF work alone). Read streamed
//! replies with [`request_stream`].

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use ospf::linux::speaker::{self, Command};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::daemon::Control;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Advertise {
        vip: Ipv4Addr,
        #[serde(default)]
        cost: u16,
        area: Option<Ipv4Addr>,
    },
    Withdraw {
        vip: Ipv4Addr,
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
}

/// Serves the control socket until the speaker's command channel closes.
pub async fn serve(
    path: &Path,
    speaker: mpsc::Sender<Command>,
    manager: mpsc::Sender<Control>,
    default_area: Ipv4Addr,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(path);
    let listener =
        tokio::net::UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let speaker = speaker.clone();
        let manager = manager.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match serde_json::from_str::<Request>(&line) {
                    Ok(Request::ShowOspfDatabase) => {
                        if stream_database(&speaker, &mut w).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    Ok(req) => handle(req, &speaker, &manager, default_area)
                        .await
                        .unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
                    Err(e) => json!({"error": format!("bad request: {e}")}),
                };
                let mut out = reply.to_string();
                out.push('\n');
                if w.write_all(out.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Chunks of the database in flight between the speaker and a writer:
/// enough to keep both busy, small enough to keep memory flat.
const DATABASE_CHUNKS_IN_FLIGHT: usize = 2;

/// Writes a `show-ospf-database` reply: one line per LSA as the speaker
/// hands them out, then the `end` line (or an `error` line). Fails only
/// when the client cannot be written to.
async fn stream_database(
    speaker: &mpsc::Sender<Command>,
    w: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<speaker::DatabaseChunk>(DATABASE_CHUNKS_IN_FLIGHT);
    let mut count: u64 = 0;
    let mut out = String::new();
    let last = if speaker.send(Command::Database(tx)).await.is_err() {
        json!({"error": "speaker stopped"})
    } else {
        loop {
            match rx.recv().await {
                Some(chunk) if chunk.is_empty() => break json!({"end": true, "count": count}),
                Some(chunk) => {
                    out.clear();
                    for (area, h) in &chunk {
                        out.push_str(&crate::show::lsa_json(*area, h).to_string());
                        out.push('\n');
                    }
                    count += chunk.len() as u64;
                    // Dropping the receiver on error ends the walk.
                    w.write_all(out.as_bytes()).await?;
                }
                None => break json!({"error": "speaker stopped"}),
            }
        }
    };
    let mut line = last.to_string();
    line.push('\n');
    w.write_all(line.as_bytes()).await
}

async fn ask<T>(
    speaker: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T> {
    let (tx, rx) = oneshot::channel();
    speaker.send(make(tx)).await.context("speaker stopped")?;
    rx.await.context("speaker stopped")
}

/// Asks the manager (the daemon's service loop) and waits for its answer.
async fn ask_manager<T>(
    manager: &mpsc::Sender<Control>,
    make: impl FnOnce(oneshot::Sender<T>) -> Control,
) -> Result<T> {
    let (tx, rx) = oneshot::channel();
    manager.send(make(tx)).await.context("daemon stopping")?;
    rx.await.context("daemon stopping")
}

async fn handle(
    req: Request,
    speaker: &mpsc::Sender<Command>,
    manager: &mpsc::Sender<Control>,
    default_area: Ipv4Addr,
) -> Result<Value> {
    let refused = |e: String| anyhow::anyhow!(e);
    Ok(match req {
        Request::Status => ask_manager(manager, Control::Status).await?,
        Request::Drain { vip } => ask_manager(manager, |reply| Control::Drain { vip, reply })
            .await?
            .map_err(refused)?,
        Request::Undrain { vip } => ask_manager(manager, |reply| Control::Undrain { vip, reply })
            .await?
            .map_err(refused)?,
        Request::Reload => ask_manager(manager, Control::Reload)
            .await?
            .map_err(refused)?,
        Request::Advertise { vip, cost, area } => {
            let area = area.unwrap_or(default_area);
            speaker
                .send(Command::Advertise { area, vip, cost })
                .await
                .context("speaker stopped")?;
            json!({"ok": true})
        }
        Request::Withdraw { vip } => {
            speaker
                .send(Command::Withdraw { vip })
                .await
                .context("speaker stopped")?;
            json!({"ok": true})
        }
        Request::StubRouter { on } => {
            speaker
                .send(Command::StubRouter(on))
                .await
                .context("speaker stopped")?;
            json!({"ok": true})
        }
        Request::ShowOspfNeighbor => {
            let list = ask(speaker, Command::Neighbors).await?;
            Value::Array(list.iter().map(crate::show::neighbor_json).collect())
        }
        Request::ShowOspfInterface => {
            let list = ask(speaker, Command::Interfaces).await?;
            Value::Array(list.iter().map(crate::show::interface_json).collect())
        }
        // Streamed by the connection loop (`stream_database`).
        Request::ShowOspfDatabase => anyhow::bail!("show-ospf-database is streamed"),
        Request::ShowOspfLsa {
            area,
            lsa_type,
            link_state_id,
            advertising_router,
        } => {
            let key = ospf::lsa::LsaKey {
                lsa_type: ospf::lsa::LsaType(lsa_type),
                link_state_id,
                advertising_router,
            };
            let area = area.unwrap_or(default_area);
            let (reply, rx) = oneshot::channel();
            speaker
                .send(Command::Lsa { area, key, reply })
                .await
                .context("speaker stopped")?;
            match rx.await.context("speaker stopped")? {
                None => anyhow::bail!("no such LSA in area {area}"),
                Some(raw) => {
                    let mut v = crate::show::lsa_json(area, raw.header());
                    let body = match raw.decode() {
                        Ok(lsa) => format!("{:#?}", lsa.body),
                        Err(e) => format!("undecodable: {e}"),
                    };
                    v["body"] = Value::String(body);
                    v
                }
            }
        }
        Request::ShowCounters => {
            let c = ask(speaker, Command::Counters).await?;
            json!({ "dropped": c.dropped, "anomalies": c.anomalies })
        }
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

fn read_stream(reader: impl BufRead, row: &mut impl FnMut(Value) -> Result<()>) -> Result<u64> {
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

    #[tokio::test]
    async fn database_is_written_row_by_row_then_end() {
        let (speaker, mut commands) = mpsc::channel(4);
        let fake = tokio::spawn(async move {
            let Some(Command::Database(tx)) = commands.recv().await else {
                panic!("expected a database walk");
            };
            let h = |i: u8| ospf::lsa::LsaHeader {
                age: 1,
                options: ospf::lsa::Options::E,
                lsa_type: ospf::lsa::LsaType(5),
                link_state_id: Ipv4Addr::new(198, 19, 0, i),
                advertising_router: Ipv4Addr::new(198, 18, 0, 1),
                seq: i32::MIN + 1,
                checksum: 0x1234,
                length: 36,
            };
            for chunk in [vec![h(0), h(1)], vec![h(2)], vec![]] {
                let chunk = chunk
                    .into_iter()
                    .map(|h| (Ipv4Addr::UNSPECIFIED, h))
                    .collect();
                tx.send(chunk).await.expect("reader");
            }
        });
        let mut out = Vec::new();
        stream_database(&speaker, &mut out).await.expect("written");
        fake.await.expect("fake speaker");
        let text = String::from_utf8(out).expect("utf-8");
        let mut rows = Vec::new();
        let n = read_stream(text.as_bytes(), &mut |v| {
            rows.push(v);
            Ok(())
        })
        .expect("well-formed");
        assert_eq!(n, 3);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert_eq!(rows[2]["link_state_id"], "198.19.0.2");
        assert_eq!(rows[0]["sequence"], "80000001");
        // The speaker gone: an error line, not a hang.
        drop(speaker);
        let (speaker, commands) = mpsc::channel(1);
        drop(commands);
        let mut out = Vec::new();
        stream_database(&speaker, &mut out).await.expect("written");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"error\":\"speaker stopped\"}\n"
        );
    }
}
