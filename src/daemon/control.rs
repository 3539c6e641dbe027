//! The control socket's server: a Unix socket (mode 0600) answering the
//! requests of [`crate::protocol`] from the manager and the speaker.
//!
//! Neither side holds the whole database while streaming it: the speaker
//! hands out chunks of [`speaker::DATABASE_CHUNK`] LSAs through a small
//! bounded channel as the rows are written, so a slow reader slows the walk
//! down (and leaves the speaker's OSPF work alone).

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use ospf::linux::speaker::{self, Command};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::daemon::Control;
use crate::protocol::Request;

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
                        out.push_str(&crate::protocol::lsa_json(*area, h).to_string());
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
        Request::ShowRunningConfig => ask_manager(manager, Control::RunningConfig).await?,
        Request::LogLevel { filter } => {
            crate::daemon::set_log_filter(&filter).map_err(refused)?;
            json!({"ok": true, "filter": filter})
        }
        Request::Reload => ask_manager(manager, Control::Reload)
            .await?
            .map_err(refused)?,
        Request::Advertise {
            vip,
            cost,
            area,
            force,
        } => ask_manager(manager, |reply| Control::Vip {
            vip,
            withdraw: false,
            cost,
            area,
            force,
            reply,
        })
        .await?
        .map_err(refused)?,
        Request::Withdraw { vip, force } => ask_manager(manager, |reply| Control::Vip {
            vip,
            withdraw: true,
            cost: None,
            area: None,
            force,
            reply,
        })
        .await?
        .map_err(refused)?,
        Request::Server {
            vip,
            server,
            disable,
        } => ask_manager(manager, |reply| Control::Server {
            vip,
            server,
            disable,
            reply,
        })
        .await?
        .map_err(refused)?,
        Request::StubRouter { on } => {
            speaker
                .send(Command::StubRouter(on))
                .await
                .context("speaker stopped")?;
            json!({"ok": true})
        }
        Request::ShowOspfNeighbor => {
            let list = ask(speaker, Command::Neighbors).await?;
            Value::Array(list.iter().map(crate::protocol::neighbor_json).collect())
        }
        Request::ShowOspfInterface => {
            let list = ask(speaker, Command::Interfaces).await?;
            Value::Array(list.iter().map(crate::protocol::interface_json).collect())
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
                    let mut v = crate::protocol::lsa_json(area, raw.header());
                    v["body"] = match raw.decode() {
                        Ok(lsa) => crate::protocol::lsa_body_json(&lsa.body),
                        Err(e) => json!({ "error": format!("undecodable: {e}") }),
                    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::read_stream;

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
