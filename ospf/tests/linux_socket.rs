//! `ospf::linux` against a real kernel: two network namespaces joined by a
//! veth pair (198.18.200.0/31 in A, 198.18.200.1/31 in B). Needs root.
#![cfg(feature = "linux")]

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use ospf::linux::{
    links, watch, LinkEvent, LinkInfo, OspfSocket, Received, ALL_SPF_ROUTERS,
    IPTOS_PREC_INTERNETCONTROL,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::LinkUnspec;

const A_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 0);
const B_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 1);
const A_IF: &str = "ospfa";
const B_IF: &str = "ospfb";

/// Two namespaces and a veth between them, deleted on drop (panics included).
struct Pair {
    a: String,
    b: String,
}

impl Pair {
    /// `tag` keeps the names of tests running in parallel apart; the pid keeps
    /// them apart from other runs.
    fn new(tag: &str) -> Pair {
        assert!(
            nix::unistd::geteuid().is_root(),
            "needs root: creates network namespaces and raw sockets"
        );
        let pid = std::process::id();
        // The guard exists before anything is created, so a failure half-way
        // still cleans up.
        let pair = Pair {
            a: format!("ospfsock{pid}{tag}-a"),
            b: format!("ospfsock{pid}{tag}-b"),
        };
        let a = lab::netns::create(&pair.a).expect("create namespace A");
        let b = lab::netns::create(&pair.b).expect("create namespace B");
        lab::net::veth(&a, A_IF, None, &b, B_IF, None).expect("veth");
        lab::net::address(&a, A_IF, "198.18.200.0/31".parse().unwrap()).expect("address A");
        lab::net::address(&b, B_IF, "198.18.200.1/31".parse().unwrap()).expect("address B");
        lab::net::loopback_up(&a).expect("lo A");
        lab::net::loopback_up(&b).expect("lo B");
        pair
    }

    fn a(&self) -> PathBuf {
        lab::netns::path(&self.a)
    }

    fn b(&self) -> PathBuf {
        lab::netns::path(&self.b)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            if let Err(e) = lab::netns::delete(ns) {
                eprintln!("cleanup: delete namespace {ns}: {e}");
            }
        }
    }
}

/// Runs `f` on a thread in namespace `ns` with a current-thread runtime and a
/// netlink handle of that namespace.
fn in_ns<T, F, Fut>(ns: PathBuf, f: F) -> std::thread::JoinHandle<io::Result<T>>
where
    T: Send + 'static,
    F: FnOnce(rtnetlink::Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    lab::netns::spawn_in(&ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            let task = tokio::spawn(conn);
            let out = f(handle).await;
            task.abort();
            out
        })
    })
    .expect("enter namespace")
}

fn join<T>(h: std::thread::JoinHandle<io::Result<T>>) -> T {
    h.join()
        .expect("namespace thread panicked")
        .expect("namespace thread failed")
}

async fn link_named(handle: &rtnetlink::Handle, name: &str) -> io::Result<LinkInfo> {
    links(handle)
        .await?
        .into_iter()
        .find(|l| l.name == name)
        .ok_or_else(|| io::Error::other(format!("no interface {name}")))
}

/// Waits until the interface carries packets: until the kernel has activated
/// its queue after carrier-on, packets are silently dropped.
async fn wait_up(handle: &rtnetlink::Handle, name: &str) -> io::Result<LinkInfo> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let l = link_named(handle, name).await?;
        if l.up {
            return Ok(l);
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("{name} not up: {l:?}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fake OSPFv2 packet: 44 bytes starting with version 2 (a Hello's size).
fn fake_ospf() -> Vec<u8> {
    let mut p: Vec<u8> = (0..44u8).collect();
    p[0] = 2;
    p[1] = 1;
    p
}

struct Got {
    received: Received,
    payload: Vec<u8>,
    tos: u8,
    ifindex_b: u32,
}

/// B listens (joining 224.0.0.5 when `join`), A sends `payload` to `dst`
/// until B has it. A also joins 224.0.0.5 and checks that its own multicast
/// does not loop back to it.
fn exchange(pair: &Pair, dst: Ipv4Addr, join_group: bool, payload: Vec<u8>) -> Got {
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = in_ns(pair.b(), move |h| async move {
        let vb = wait_up(&h, B_IF).await?;
        let sock = OspfSocket::new()?;
        if join_group {
            sock.join(vb.ifindex, ALL_SPF_ROUTERS)?;
        }
        let _ = ready_tx.send(());
        let mut buf = vec![0u8; 2048];
        let received = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
            .await
            .map_err(|_| io::Error::other("B: no packet within 5 s"))??;
        Ok(Got {
            payload: buf[received.payload.clone()].to_vec(),
            tos: buf[1],
            received,
            ifindex_b: vb.ifindex,
        })
    });
    if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        join(receiver); // shows B's error
        panic!("B never got ready");
    }

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done_a = done.clone();
    let sender = in_ns(pair.a(), move |h| async move {
        let va = wait_up(&h, A_IF).await?;
        let sock = OspfSocket::new()?;
        sock.join(va.ifindex, ALL_SPF_ROUTERS)?;
        // Resend until B has it: carrier-on and queue activation are
        // asynchronous in the kernel, so the first packet may still be lost.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut sent = 0;
        while !done_a.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            sock.send(va.ifindex, A_ADDR, dst, &payload).await?;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // IP_MULTICAST_LOOP is off: A must not hear itself.
        let mut buf = vec![0u8; 2048];
        match tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await {
            Err(_) => Ok(sent),
            Ok(r) => Err(io::Error::other(format!("A heard a packet: {r:?}"))),
        }
    });
    let got = join(receiver);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    // A's own check (it heard none of its multicast back) ran after at
    // least the packet B received: a count of sends would add nothing.
    let _sent = join(sender);
    got
}

#[test]
fn multicast_to_all_spf_routers() {
    let pair = Pair::new("m");
    let payload = fake_ospf();
    let got = exchange(&pair, ALL_SPF_ROUTERS, true, payload.clone());
    assert_eq!(got.payload, payload);
    assert_eq!(got.received.src, A_ADDR);
    assert_eq!(got.received.dst, ALL_SPF_ROUTERS);
    assert_eq!(got.received.ifindex, got.ifindex_b);
    assert_eq!(got.received.ttl, 1);
    assert_eq!(got.received.payload, 20..64, "IP header without options");
    assert_eq!(got.tos, IPTOS_PREC_INTERNETCONTROL);
}

#[test]
fn unicast_to_neighbour() {
    let pair = Pair::new("u");
    let payload = fake_ospf();
    let got = exchange(&pair, B_ADDR, false, payload.clone());
    assert_eq!(got.payload, payload);
    assert_eq!(got.received.src, A_ADDR);
    assert_eq!(got.received.dst, B_ADDR);
    assert_eq!(got.received.ifindex, got.ifindex_b);
    assert_eq!(got.received.ttl, 1);
    assert_eq!(got.tos, IPTOS_PREC_INTERNETCONTROL);
}

#[test]
fn multicast_not_joined_is_not_delivered() {
    // With IP_MULTICAST_ALL off, B's socket gets 224.0.0.5 only where it
    // joined it. Another socket in B joins it, so the kernel does accept the
    // packets on the link; our socket must still not see them.
    let pair = Pair::new("n");
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = in_ns(pair.b(), move |h| async move {
        let vb = wait_up(&h, B_IF).await?;
        let member = OspfSocket::new()?;
        member.join(vb.ifindex, ALL_SPF_ROUTERS)?;
        let bystander = OspfSocket::new()?;
        let _ = ready_tx.send(());
        let mut buf = vec![0u8; 2048];
        let first = tokio::time::timeout(Duration::from_secs(5), member.recv(&mut buf))
            .await
            .map_err(|_| io::Error::other("member: no packet within 5 s"))??;
        let stray = tokio::time::timeout(Duration::from_millis(300), bystander.recv(&mut buf))
            .await
            .ok();
        Ok((first, stray.map(|r| format!("{r:?}"))))
    });
    if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        join(receiver);
        panic!("B never got ready");
    }
    let sender = in_ns(pair.a(), move |h| async move {
        let va = wait_up(&h, A_IF).await?;
        let sock = OspfSocket::new()?;
        for _ in 0..10 {
            sock.send(va.ifindex, A_ADDR, ALL_SPF_ROUTERS, &fake_ospf())
                .await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    });
    let (first, stray) = join(receiver);
    join(sender);
    assert_eq!(first.dst, ALL_SPF_ROUTERS);
    assert_eq!(stray, None, "a socket that did not join got a multicast");
}

#[test]
fn links_lists_veth_and_loopback() {
    let pair = Pair::new("l");
    let all = join(in_ns(pair.a(), |h| async move { links(&h).await }));
    let veth = all
        .iter()
        .find(|l| l.name == A_IF)
        .unwrap_or_else(|| panic!("no {A_IF} in {all:?}"));
    assert_eq!(veth.mtu, 1500);
    assert_eq!(veth.addrs, vec![(A_ADDR, 31)]);
    assert!(!veth.loopback);
    let lo = all
        .iter()
        .find(|l| l.name == "lo")
        .unwrap_or_else(|| panic!("no lo in {all:?}"));
    assert!(lo.loopback);
    assert!(lo.up);
    assert_eq!(lo.addrs, vec![(Ipv4Addr::LOCALHOST, 8)]);
    // A fresh namespace holds lo and our veth end and nothing else.
    assert_eq!(all.len(), 2, "{all:?}");
    assert_ne!(veth.ifindex, lo.ifindex);
}

/// Waits up to `within` for an event matching `want`, skipping others.
async fn expect_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<LinkEvent>,
    within: Duration,
    what: &str,
    want: impl Fn(&LinkEvent) -> bool,
) -> io::Result<LinkEvent> {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) if want(&ev) => return Ok(ev),
            Ok(Some(ev)) => seen.push(ev),
            Ok(None) => return Err(io::Error::other(format!("watch ended waiting for {what}"))),
            Err(_) => {
                return Err(io::Error::other(format!(
                    "no {what} within {within:?}; saw {seen:?}"
                )))
            }
        }
    }
}

#[test]
fn watch_reports_link_and_address_changes() {
    let pair = Pair::new("w");
    let events = join(in_ns(pair.a(), |handle| async move {
        // Subscribe first, then dump over the other connection, as a
        // speaker would.
        let (driver, mut rx) = watch()?;
        let task = tokio::spawn(driver);
        let va = wait_up(&handle, A_IF).await?;
        let nl = |e: rtnetlink::Error| io::Error::other(e.to_string());
        let within = Duration::from_secs(2);

        handle
            .link()
            .set(LinkUnspec::new_with_index(va.ifindex).down().build())
            .execute()
            .await
            .map_err(nl)?;
        let down = expect_event(&mut rx, within, "link down", |e| {
            matches!(e, LinkEvent::Changed { ifindex, up: false, .. } if *ifindex == va.ifindex)
        })
        .await?;

        // The interface also has an IPv6 link-local address: pick the IPv4 one.
        let mut req = handle.address().get().set_link_index_filter(va.ifindex);
        req.message_mut().header.family = AddressFamily::Inet;
        let v4 = req
            .execute()
            .try_next()
            .await
            .map_err(nl)?
            .ok_or_else(|| io::Error::other("no IPv4 address to delete"))?;
        handle.address().del(v4).execute().await.map_err(nl)?;
        let removed = expect_event(&mut rx, within, "address removal", |e| {
            matches!(e, LinkEvent::AddressRemoved { .. })
        })
        .await?;

        handle
            .address()
            .add(va.ifindex, A_ADDR.into(), 31)
            .execute()
            .await
            .map_err(nl)?;
        let added = expect_event(&mut rx, within, "address addition", |e| {
            matches!(e, LinkEvent::AddressAdded { .. })
        })
        .await?;

        handle.link().del(va.ifindex).execute().await.map_err(nl)?;
        let gone = expect_event(&mut rx, within, "link removal", |e| {
            matches!(e, LinkEvent::Removed(_))
        })
        .await?;
        task.abort();
        Ok((va, down, removed, added, gone))
    }));
    let (va, down, removed, added, gone) = events;
    match down {
        LinkEvent::Changed {
            name,
            mtu,
            loopback,
            ..
        } => {
            assert_eq!(name, A_IF);
            assert_eq!(mtu, 1500);
            assert!(!loopback);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        removed,
        LinkEvent::AddressRemoved {
            ifindex: va.ifindex,
            addr: A_ADDR,
            prefix: 31
        }
    );
    assert_eq!(
        added,
        LinkEvent::AddressAdded {
            ifindex: va.ifindex,
            addr: A_ADDR,
            prefix: 31
        }
    );
    assert_eq!(gone, LinkEvent::Removed(va.ifindex));
}
