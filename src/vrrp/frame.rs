//! The bytes around VRRP that come from the wire, sans-IO: the IPv4 header
//! of a raw-socket datagram, ARP frames over AF_PACKET and the ICMP echo
//! of the reference probe. `linux` moves them; the fuzz targets
//! `vrrp_ip_header`, `arp_reply` and `icmp_reply` reach them without a
//! socket.

use std::net::Ipv4Addr;

use super::packet::IPPROTO_VRRP;

/// One received VRRP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub payload: std::ops::Range<usize>,
}

/// The IPv4 header of a raw-socket datagram; an error for anything that is
/// not a sound IPv4 packet of protocol 112.
pub fn parse_ipv4(pkt: &[u8]) -> Result<Received, &'static str> {
    let len = pkt.len();
    if len < 20 {
        return Err("short IP header");
    }
    if pkt[0] >> 4 != 4 {
        return Err("not IPv4");
    }
    let header = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if header < 20 || header > len || total < header || total > len {
        return Err("bad IP lengths");
    }
    if pkt[9] != IPPROTO_VRRP {
        return Err("not VRRP");
    }
    Ok(Received {
        src: Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]),
        dst: Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]),
        ttl: pkt[8],
        payload: header..total,
    })
}

// ---- ARP ----

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// An Ethernet ARP request from `sha`/`spa` for `tpa` to the broadcast
/// address. With `spa == tpa` it is a gratuitous ARP (RFC 5227 3): hosts
/// that have the address cached take the new MAC.
pub fn arp_frame(sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&sha);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&sha);
    f[28..32].copy_from_slice(&spa.octets());
    f[32..38].copy_from_slice(&tha);
    f[38..42].copy_from_slice(&tpa.octets());
    f
}

/// The sender protocol address of an ARP reply frame, if it is one.
pub fn arp_reply_sender(frame: &[u8]) -> Option<Ipv4Addr> {
    let f = frame.get(..42)?;
    if f[12..14] != ETH_P_ARP.to_be_bytes() || f[20..22] != 2u16.to_be_bytes() {
        return None;
    }
    Some(Ipv4Addr::new(f[28], f[29], f[30], f[31]))
}

// ---- ICMP echo (the reference probe) ----

/// An ICMP echo request for the reference probe: `id`, `seq`, a fixed
/// payload and its checksum.
pub fn echo_request(id: u16, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 8;
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"anycastd");
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

/// An IPv4 datagram holding an ICMP echo reply from `from` to our `id`/`seq`.
pub fn is_echo_reply(pkt: &[u8], from: Ipv4Addr, id: u16, seq: u16) -> bool {
    let Some(&vihl) = pkt.first() else {
        return false;
    };
    let h = usize::from(vihl & 0x0f) * 4;
    // The kernel hands raw sockets checked headers only; a header length
    // under 20 bytes would put the ICMP message inside the IP header.
    if h < 20 {
        return false;
    }
    let (Some(src), Some(icmp)) = (pkt.get(12..16), pkt.get(h..h + 8)) else {
        return false;
    };
    src == from.octets()
        && icmp[0] == 0
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::packet::VRRP_GROUP;
    use super::*;

    #[test]
    fn gratuitous_arp_frame() {
        let mac = [2, 0, 0, 0, 0, 1];
        let vip = Ipv4Addr::new(192, 0, 2, 10);
        let f = arp_frame(mac, vip, [0; 6], vip);
        assert_eq!(
            &f[..14],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 8, 6]
        );
        assert_eq!(&f[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[28..32], &vip.octets());
        assert_eq!(&f[38..42], &vip.octets());
        let mut reply = f;
        reply[21] = 2;
        assert_eq!(arp_reply_sender(&reply), Some(vip));
        assert_eq!(arp_reply_sender(&f), None);
        assert_eq!(arp_reply_sender(&f[..30]), None);
    }

    #[test]
    fn ip_headers_are_checked() {
        let mut p = vec![0x45, 0xc0, 0, 28, 0, 0, 0, 0, 255, 112, 0, 0];
        p.extend_from_slice(&[198, 18, 0, 2, 224, 0, 0, 18]);
        p.extend_from_slice(&[0x31, 51, 100, 0, 0, 10, 0, 0, 0xee]);
        let r = parse_ipv4(&p).expect("valid");
        assert_eq!((r.ttl, r.payload), (255, 20..28));
        assert_eq!(r.dst, VRRP_GROUP);
        p[9] = 89;
        assert!(parse_ipv4(&p).is_err());
        assert!(parse_ipv4(&p[..19]).is_err());
        p[9] = 112;
        p[3] = 200;
        assert!(parse_ipv4(&p).is_err());
    }

    #[test]
    fn echo_replies_match_id_and_sequence() {
        let req = echo_request(7, 9);
        let mut sum: u32 = req
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
        let from = Ipv4Addr::new(198, 18, 0, 1);
        let mut pkt = vec![
            0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
        ];
        pkt.extend_from_slice(&req);
        pkt[20] = 0;
        assert!(is_echo_reply(&pkt, from, 7, 9));
        assert!(!is_echo_reply(&pkt, from, 7, 10));
        assert!(!is_echo_reply(&pkt[..24], from, 7, 9));
    }

    /// Found by the fuzz target vrrp_frames: a header length of 0 made the
    /// IP header's first bytes count as an echo reply.
    #[test]
    fn echo_reply_needs_a_whole_ip_header() {
        // Type 0, identifier 0x00ff, sequence 0 read from offset 0.
        let pkt = [0, 0, 0x45, 0xc0, 0, 0xff, 0, 0, 0, 2, 2, 0, 0, 0, 0, 0];
        assert!(!is_echo_reply(&pkt, Ipv4Addr::UNSPECIFIED, 0x00ff, 0));
        // Four words: zeros from offset 16 read as a reply to 0/0.
        let mut pkt = [0u8; 24];
        pkt[0] = 0x44;
        assert!(!is_echo_reply(&pkt, Ipv4Addr::UNSPECIFIED, 0, 0));
    }
}
