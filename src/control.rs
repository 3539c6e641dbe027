//! The control socket: a Unix socket (mode 0600) speaking one JSON object
//! per line each way. The CLI and the lab are its clients.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use ospf::linux::speaker::Command;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

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
}

/// Serves the control socket until the speaker's command channel closes.
pub async fn serve(
    path: &Path,
    speaker: mpsc::Sender<Command>,
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
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match serde_json::from_str::<Request>(&line) {
                    Ok(req) => handle(req, &speaker, default_area)
                        .await
                        .unwrap_or_else(|e| json!({"error": e.to_string()})),
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

async fn ask<T>(
    speaker: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T> {
    let (tx, rx) = oneshot::channel();
    speaker.send(make(tx)).await.context("speaker stopped")?;
    rx.await.context("speaker stopped")
}

async fn handle(
    req: Request,
    speaker: &mpsc::Sender<Command>,
    default_area: Ipv4Addr,
) -> Result<Value> {
    Ok(match req {
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
        Request::ShowOspfDatabase => {
            let list = ask(speaker, Command::Database).await?;
            Value::Array(
                list.iter()
                    .map(|(area, h)| crate::show::lsa_json(*area, h))
                    .collect(),
            )
        }
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
            json!({ "dropped": c })
        }
    })
}

/// Sends one request and returns the reply (blocking client).
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
