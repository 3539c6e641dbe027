//! The raw IPv4 socket for IP protocol 89 (RFC 2328 A.1).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::ipv4::parse_ipv4_header;
pub use crate::ipv4::{Malformed, IPPROTO_OSPF};

/// AllSPFRouters: every OSPF router on a network.
pub const ALL_SPF_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 5);
/// AllDRouters: the Designated and Backup Designated Routers.
pub const ALL_D_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 6);
/// IPTOS_PREC_INTERNETCONTROL, the precedence RFC 2328 A.1 asks for.
pub const IPTOS_PREC_INTERNETCONTROL: u8 = 0xc0;

/// One OSPF packet taken off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Interface the packet came in on.
    pub ifindex: u32,
    /// IP source address.
    pub src: Ipv4Addr,
    /// IP destination address (a unicast address or 224.0.0.5/6).
    pub dst: Ipv4Addr,
    /// IP TTL as received.
    pub ttl: u8,
    /// Where the OSPF packet lies in the caller's buffer (after the IP header,
    /// bounded by the IP total length).
    pub payload: Range<usize>,
}

/// The [`Malformed`] reason inside an error from [`OspfSocket::recv`], if the
/// error is about one bad datagram rather than the socket.
pub fn malformed(e: &io::Error) -> Option<&Malformed> {
    e.get_ref()?.downcast_ref::<Malformed>()
}

/// A raw IPv4 socket for OSPF, shared by all interfaces of one namespace.
///
/// Receiving gives each packet's ingress interface (IP_PKTINFO); sending
/// picks the egress interface and source per packet, so one socket serves
/// every OSPF interface.
#[derive(Debug)]
pub struct OspfSocket {
    fd: AsyncFd<Socket>,
}

impl OspfSocket {
    /// Opens the socket. Call it on a thread inside the wanted network
    /// namespace (the socket stays in the namespace it was created in) and
    /// inside a tokio runtime with I/O enabled. Needs CAP_NET_RAW.
    pub fn new() -> io::Result<OspfSocket> {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_OSPF)))?;
        sock.set_nonblocking(true)?;
        // Ingress ifindex and destination: one socket serves all interfaces
        // and the speaker must tell them apart.
        setsockopt(&sock, sockopt::Ipv4PacketInfo, &true)?;
        // Our own multicasts must not come back as if from a neighbour.
        sock.set_multicast_loop_v4(false)?;
        // Deliver only the groups this socket joined, on the interfaces it
        // joined them on, rather than any group any socket joined.
        sock.set_multicast_all_v4(false)?;
        // RFC 2328 A.1: packets never leave the link (virtual links are not
        // supported), and go with internetwork-control precedence.
        sock.set_multicast_ttl_v4(1)?;
        sock.set_ttl_v4(1)?;
        sock.set_tos_v4(u32::from(IPTOS_PREC_INTERNETCONTROL))?;
        // SAFETY: the Socket owns its descriptor, which stays open and the
        // same until the Socket is dropped with the AsyncFd; nothing here
        // closes or replaces it.
        let fd = unsafe {
            AsyncFd::register_with_interest(sock, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(|e| e.into_parts().1)?;
        Ok(OspfSocket { fd })
    }

    /// Joins `group` (normally [`ALL_SPF_ROUTERS`] or [`ALL_D_ROUTERS`]) on
    /// the interface `ifindex`.
    pub fn join(&self, ifindex: u32, group: Ipv4Addr) -> io::Result<()> {
        self.fd
            .get_ref()
            .join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
    }

    /// Leaves `group` on the interface `ifindex`.
    pub fn leave(&self, ifindex: u32, group: Ipv4Addr) -> io::Result<()> {
        self.fd
            .get_ref()
            .leave_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
    }

    /// Receives one packet into `buf` (which then holds the IP header too;
    /// the OSPF packet is `buf[received.payload]`). A buffer of the largest
    /// interface MTU is enough.
    ///
    /// Errors of kind [`io::ErrorKind::InvalidData`] (see [`malformed`]) are
    /// about that one datagram, which is dropped: count them and call again.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            // try_io clears the readiness on WouldBlock, so the next
            // readable() waits for the kernel again.
            match guard.try_io(|fd| recv_once(fd.get_ref().as_raw_fd(), buf)) {
                Ok(res) => return res,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends `payload` (a complete OSPF packet) to `dst` out of `ifindex`
    /// with source `src`, which must be an address of this host. The kernel
    /// builds the IP header.
    pub async fn send(
        &self,
        ifindex: u32,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> io::Result<()> {
        // IP_PKTINFO on send sets the output interface and the source for
        // this packet alone; IP_MULTICAST_IF would be per socket, and the
        // routing table alone cannot place 224.0.0.5 on a given link.
        let info = libc::in_pktinfo {
            ipi_ifindex: i32::try_from(ifindex)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex too large"))?,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from_ne_bytes(src.octets()),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
        loop {
            let mut guard = self.fd.writable().await?;
            let sent = guard.try_io(|fd| {
                let iov = [IoSlice::new(payload)];
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                sendmsg(
                    fd.get_ref().as_raw_fd(),
                    &iov,
                    &cmsg,
                    MsgFlags::empty(),
                    Some(&to),
                )
                .map_err(io::Error::from)
            });
            match sent {
                Ok(Ok(n)) if n == payload.len() => return Ok(()),
                // A raw datagram goes whole or not at all; anything else is
                // a kernel surprise worth reporting rather than hiding.
                Ok(Ok(n)) => {
                    return Err(io::Error::other(format!(
                        "short send: {n} of {} bytes",
                        payload.len()
                    )))
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// One non-blocking recvmsg: the datagram and its IP_PKTINFO.
fn recv_once(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
    let (bytes, truncated, ifindex) = {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
            .map_err(io::Error::from)?;
        let mut ifindex = None;
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                ifindex = u32::try_from(info.ipi_ifindex).ok();
            }
        }
        (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC), ifindex)
    };
    if truncated {
        return Err(Malformed::Truncated(buf.len()).into());
    }
    let ifindex = ifindex.ok_or(Malformed::NoPacketInfo)?;
    let pkt = buf.get(..bytes).ok_or(Malformed::Truncated(buf.len()))?;
    let h = parse_ipv4_header(pkt)?;
    Ok(Received {
        ifindex,
        src: h.src,
        dst: h.dst,
        ttl: h.ttl,
        payload: h.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_is_recognisable() {
        let e: io::Error = Malformed::Version(6).into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(malformed(&e), Some(&Malformed::Version(6)));
        assert_eq!(malformed(&io::Error::other("x")), None);
    }
}
