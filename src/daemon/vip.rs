//! VIPs as addresses on `lo`, and the real-server side of direct routing.
//!
//! A DR real server must accept packets for the VIP (the director forwards
//! them unchanged, with only the destination MAC rewritten) without ever
//! answering ARP for it, or the LAN's router would send VIP traffic past
//! the director: the VIP goes on `lo` as a /32, and `arp_ignore = 1` (answer
//! ARP only for addresses of the receiving interface) with `arp_announce = 2`
//! (never use a `lo` address as the source of an ARP request) keep it
//! silent. `anycastd realserver setup` does what the classic
//! `realserver.sh start` did, idempotently; `teardown` undoes it.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

/// The ARP sysctls of a DR real server: (key under net.ipv4.conf, value).
const ARP_SETTINGS: [(&str, &str); 6] = [
    ("all/arp_ignore", "1"),
    ("all/arp_announce", "2"),
    ("default/arp_ignore", "1"),
    ("default/arp_announce", "2"),
    ("lo/arp_ignore", "1"),
    ("lo/arp_announce", "2"),
];

const CONF: &str = "/proc/sys/net/ipv4/conf";

fn nl(what: String) -> impl FnOnce(rtnetlink::Error) -> io::Error {
    move |e| io::Error::other(format!("{what}: {e}"))
}

async fn with_handle<T, Fut>(f: impl FnOnce(Handle) -> Fut) -> io::Result<T>
where
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let (conn, handle, _) = rtnetlink::new_connection()?;
    let task = tokio::spawn(conn);
    let out = f(handle).await;
    task.abort();
    out
}

async fn lo_index(h: &Handle) -> io::Result<u32> {
    let mut links = h.link().get().match_name("lo".to_string()).execute();
    match links.try_next().await.map_err(nl("find lo".into()))? {
        Some(l) => Ok(l.header.index),
        None => Err(io::Error::other("this namespace has no lo")),
    }
}

fn v4_of(msg: &AddressMessage) -> Option<(Ipv4Addr, u8)> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(IpAddr::V4(v)) | AddressAttribute::Address(IpAddr::V4(v)) => {
            Some((*v, msg.header.prefix_len))
        }
        _ => None,
    })
}

async fn lo_addrs_with(h: &Handle, index: u32) -> io::Result<Vec<(Ipv4Addr, u8)>> {
    let mut req = h.address().get().set_link_index_filter(index);
    req.message_mut().header.family = AddressFamily::Inet;
    let mut dump = req.execute();
    let mut out = Vec::new();
    while let Some(msg) = dump
        .try_next()
        .await
        .map_err(nl("list lo's addresses".into()))?
    {
        if msg.header.index == index {
            out.extend(v4_of(&msg));
        }
    }
    Ok(out)
}

/// The IPv4 addresses on `lo` other than 127.0.0.0/8.
pub async fn lo_vips() -> io::Result<Vec<Ipv4Addr>> {
    with_handle(|h| async move {
        let index = lo_index(&h).await?;
        Ok(lo_addrs_with(&h, index)
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .filter(|a| !a.is_loopback())
            .collect())
    })
    .await
}

/// Puts `vip`/32 on `lo`; false when it was there already.
pub async fn add_to_lo(vip: Ipv4Addr) -> io::Result<bool> {
    with_handle(|h| async move {
        let index = lo_index(&h).await?;
        if lo_addrs_with(&h, index)
            .await?
            .iter()
            .any(|(a, _)| *a == vip)
        {
            return Ok(false);
        }
        h.address()
            .add(index, vip.into(), 32)
            .execute()
            .await
            .map_err(nl(format!("add {vip}/32 to lo")))?;
        Ok(true)
    })
    .await
}

/// Removes `vip` from `lo`; false when it was not there.
pub async fn remove_from_lo(vip: Ipv4Addr) -> io::Result<bool> {
    with_handle(|h| async move {
        let index = lo_index(&h).await?;
        let mut req = h.address().get().set_link_index_filter(index);
        req.message_mut().header.family = AddressFamily::Inet;
        let mut dump = req.execute();
        while let Some(msg) = dump
            .try_next()
            .await
            .map_err(nl("list lo's addresses".into()))?
        {
            if msg.header.index == index && v4_of(&msg).is_some_and(|(a, _)| a == vip) {
                h.address()
                    .del(msg)
                    .execute()
                    .await
                    .map_err(nl(format!("remove {vip} from lo")))?;
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
}

fn read_conf(key: &str) -> io::Result<String> {
    let path = Path::new(CONF).join(key);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", path.display())))
}

fn write_conf(key: &str, value: &str) -> io::Result<bool> {
    if read_conf(key)? == value {
        return Ok(false);
    }
    let path = Path::new(CONF).join(key);
    std::fs::write(&path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))?;
    Ok(true)
}

/// What a setup or teardown changed, for the operator.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes(pub Vec<String>);

impl std::fmt::Display for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return write!(f, "nothing to change");
        }
        write!(f, "{}", self.0.join("\n"))
    }
}

/// `anycastd realserver setup`: ARP settings, then each VIP on `lo`.
pub async fn realserver_setup(vips: &[Ipv4Addr]) -> io::Result<Changes> {
    let mut changes = Changes::default();
    for (key, value) in ARP_SETTINGS {
        if write_conf(key, value)? {
            changes
                .0
                .push(format!("net.ipv4.conf.{} = {value}", key.replace('/', ".")));
        }
    }
    for &vip in vips {
        if add_to_lo(vip).await? {
            changes.0.push(format!("added {vip}/32 to lo"));
        }
    }
    Ok(changes)
}

/// `anycastd realserver teardown`: each VIP off `lo`; once no VIP is left
/// there, the ARP settings back to the kernel's defaults (0).
pub async fn realserver_teardown(vips: &[Ipv4Addr]) -> io::Result<Changes> {
    let mut changes = Changes::default();
    for &vip in vips {
        if remove_from_lo(vip).await? {
            changes.0.push(format!("removed {vip} from lo"));
        }
    }
    let left = lo_vips().await?;
    if left.is_empty() {
        for (key, _) in ARP_SETTINGS {
            if write_conf(key, "0")? {
                changes
                    .0
                    .push(format!("net.ipv4.conf.{} = 0", key.replace('/', ".")));
            }
        }
    } else {
        let left: Vec<String> = left.iter().map(ToString::to_string).collect();
        changes.0.push(format!(
            "ARP settings kept: lo still holds {}",
            left.join(", ")
        ));
    }
    Ok(changes)
}

/// Runs `f` on a current-thread runtime (for the CLI).
pub fn block_on<T>(f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}
