//! Interfaces and their IPv4 addresses, over rtnetlink, in the namespace of
//! the calling thread.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::mpsc;

/// One interface as the OSPF speaker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: String,
    pub mtu: u32,
    /// Administratively up and with carrier (IFF_UP, and IFF_RUNNING or
    /// operational state up): able to carry packets.
    pub up: bool,
    pub loopback: bool,
    /// IPv4 addresses with their prefix lengths, in kernel order.
    pub addrs: Vec<(Ipv4Addr, u8)>,
}

/// A change reported by [`watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// An interface appeared or changed (flags, MTU, name, carrier). Sent
    /// again for changes the speaker may not care about; compare with what
    /// it knows. Carries no addresses: those come as separate events.
    Changed {
        ifindex: u32,
        name: String,
        mtu: u32,
        up: bool,
        loopback: bool,
    },
    /// The interface is gone (deleted, or moved to another namespace).
    Removed(u32),
    /// An IPv4 address was added, or its flags or lifetimes changed.
    AddressAdded {
        ifindex: u32,
        addr: Ipv4Addr,
        prefix: u8,
    },
    /// An IPv4 address was removed.
    AddressRemoved {
        ifindex: u32,
        addr: Ipv4Addr,
        prefix: u8,
    },
    /// The kernel dropped notifications (the netlink receive buffer
    /// overflowed): the watcher's picture may be stale, so dump again with
    /// [`links`].
    Resync,
}

fn nl_err(what: &str, e: rtnetlink::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// The link part of a [`LinkInfo`] (no addresses). `None` for messages that
/// describe no plain interface (AF_BRIDGE port notifications share the link
/// group, and a bridge-port "delete" must not look like a link removal).
fn link_of(msg: &LinkMessage) -> Option<LinkInfo> {
    if msg.header.interface_family != AddressFamily::Unspec {
        return None;
    }
    let flags = msg.header.flags;
    let mut name = None;
    let mut mtu = 0;
    let mut oper_up = false;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Mtu(m) => mtu = *m,
            LinkAttribute::OperState(s) => oper_up = *s == State::Up,
            _ => {}
        }
    }
    Some(LinkInfo {
        ifindex: msg.header.index,
        name: name.unwrap_or_default(),
        mtu,
        up: flags.contains(LinkFlags::Up) && (flags.contains(LinkFlags::Running) || oper_up),
        loopback: flags.contains(LinkFlags::Loopback),
        addrs: Vec::new(),
    })
}

/// `(ifindex, address, prefix)` of an IPv4 address message.
fn address_of(msg: &AddressMessage) -> Option<(u32, Ipv4Addr, u8)> {
    if msg.header.family != AddressFamily::Inet {
        return None;
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and equals IFA_LOCAL elsewhere.
    let mut local = None;
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(IpAddr::V4(a)) => local = Some(*a),
            AddressAttribute::Address(IpAddr::V4(a)) => address = Some(*a),
            _ => {}
        }
    }
    Some((msg.header.index, local.or(address)?, msg.header.prefix_len))
}

/// Every interface of the namespace with its IPv4 addresses, by ifindex.
pub async fn links(handle: &Handle) -> io::Result<Vec<LinkInfo>> {
    let mut by_index = BTreeMap::new();
    let mut dump = handle.link().get().execute();
    while let Some(msg) = dump.try_next().await.map_err(|e| nl_err("dump links", e))? {
        if let Some(link) = link_of(&msg) {
            by_index.insert(link.ifindex, link);
        }
    }
    let mut req = handle.address().get();
    // Ask the kernel for IPv4 only rather than filtering a dual-stack dump.
    req.message_mut().header.family = AddressFamily::Inet;
    let mut dump = req.execute();
    while let Some(msg) = dump
        .try_next()
        .await
        .map_err(|e| nl_err("dump addresses", e))?
    {
        if let Some((ifindex, addr, prefix)) = address_of(&msg) {
            // An address may race with its link's removal; drop it then.
            if let Some(link) = by_index.get_mut(&ifindex) {
                link.addrs.push((addr, prefix));
            }
        }
    }
    Ok(by_index.into_values().collect())
}

/// The event a notification stands for, if any.
fn event_of(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkEvent> {
    match msg.payload {
        NetlinkPayload::Overrun(_) => Some(LinkEvent::Resync),
        NetlinkPayload::InnerMessage(inner) => match inner {
            RouteNetlinkMessage::NewLink(m) => link_of(&m).map(|l| LinkEvent::Changed {
                ifindex: l.ifindex,
                name: l.name,
                mtu: l.mtu,
                up: l.up,
                loopback: l.loopback,
            }),
            RouteNetlinkMessage::DelLink(m) => link_of(&m).map(|l| LinkEvent::Removed(l.ifindex)),
            RouteNetlinkMessage::NewAddress(m) => {
                address_of(&m).map(|(ifindex, addr, prefix)| LinkEvent::AddressAdded {
                    ifindex,
                    addr,
                    prefix,
                })
            }
            RouteNetlinkMessage::DelAddress(m) => {
                address_of(&m).map(|(ifindex, addr, prefix)| LinkEvent::AddressRemoved {
                    ifindex,
                    addr,
                    prefix,
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// Subscribes to link and IPv4 address changes in the calling thread's
/// namespace (like `ip monitor link address`).
///
/// Returns the future that drives the netlink socket (spawn it; it ends when
/// the socket fails or the receiver is dropped) and the events. To start
/// from a full picture, call `watch` first and then [`links`] over a
/// separate connection: changes from then on are queued as events, so none
/// falls between the dump and the stream (some may show in both; applying
/// events in order on top of the dump gives the current state).
///
/// The socket is for notifications only. netlink-proto matches replies to
/// requests by sequence number, and a notification carries the sequence
/// number of the request that caused it, so sharing the socket with requests
/// would let notifications be taken for replies and vanish.
pub fn watch() -> io::Result<(
    impl Future<Output = ()> + Send + 'static,
    mpsc::UnboundedReceiver<LinkEvent>,
)> {
    let (conn, handle, mut messages) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Link, MulticastGroup::Ipv4Ifaddr])?;
    // No requests on this socket (see above); without a handle every
    // message is a notification.
    drop(handle);
    let (tx, rx) = mpsc::unbounded_channel();
    let forward = async move {
        while let Some((msg, _)) = messages.next().await {
            if let Some(ev) = event_of(msg) {
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    };
    let driver = async move {
        // Either side ending ends the watch: a dead socket sends nothing
        // more, and nobody reads the events of a dropped receiver.
        tokio::select! {
            () = conn => tracing::warn!("link watch: netlink connection closed"),
            () = forward => {}
        }
    };
    Ok((driver, rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::address::AddressHeader;
    use rtnetlink::packet_route::link::LinkHeader;

    fn link(family: AddressFamily, flags: LinkFlags, attrs: Vec<LinkAttribute>) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header = LinkHeader {
            interface_family: family,
            index: 7,
            flags,
            ..LinkHeader::default()
        };
        m.attributes = attrs;
        m
    }

    #[test]
    fn link_state() {
        let m = link(
            AddressFamily::Unspec,
            LinkFlags::Up | LinkFlags::Running,
            vec![
                LinkAttribute::IfName("eth0".into()),
                LinkAttribute::Mtu(9000),
            ],
        );
        let l = link_of(&m).unwrap();
        assert_eq!((l.ifindex, l.name.as_str(), l.mtu), (7, "eth0", 9000));
        assert!(l.up && !l.loopback);
        // Admin up without carrier is not up.
        let m = link(
            AddressFamily::Unspec,
            LinkFlags::Up,
            vec![LinkAttribute::OperState(State::Down)],
        );
        assert!(!link_of(&m).unwrap().up);
        // Carrier without admin up is not up either.
        let m = link(AddressFamily::Unspec, LinkFlags::Running, vec![]);
        assert!(!link_of(&m).unwrap().up);
        let m = link(
            AddressFamily::Unspec,
            LinkFlags::Up,
            vec![LinkAttribute::OperState(State::Up)],
        );
        assert!(link_of(&m).unwrap().up);
    }

    #[test]
    fn bridge_port_messages_are_not_links() {
        let m = link(AddressFamily::Bridge, LinkFlags::Up, vec![]);
        assert_eq!(link_of(&m), None);
        let nl = NetlinkMessage::from(RouteNetlinkMessage::DelLink(m));
        assert_eq!(event_of(nl), None);
    }

    #[test]
    fn address_prefers_local() {
        let mut m = AddressMessage::default();
        m.header = AddressHeader {
            family: AddressFamily::Inet,
            prefix_len: 32,
            index: 3,
            ..AddressHeader::default()
        };
        m.attributes = vec![
            AddressAttribute::Address(Ipv4Addr::new(10, 0, 0, 2).into()),
            AddressAttribute::Local(Ipv4Addr::new(10, 0, 0, 1).into()),
        ];
        let nl = NetlinkMessage::from(RouteNetlinkMessage::DelAddress(m.clone()));
        assert_eq!(
            event_of(nl),
            Some(LinkEvent::AddressRemoved {
                ifindex: 3,
                addr: Ipv4Addr::new(10, 0, 0, 1),
                prefix: 32
            })
        );
        m.header.family = AddressFamily::Inet6;
        assert_eq!(address_of(&m), None);
    }
}
