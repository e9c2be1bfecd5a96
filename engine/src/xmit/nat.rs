//! Masquerading (`-m`, IPVS "Masq"): destination NAT with port mapping.
//!
//! Inbound (client → virtual service): destination address and port
//! become the real server's. Outbound (the real server's reply, which
//! routes back through the director): source address and port become
//! the virtual service's. Checksums are fixed incrementally (IPv4
//! header; TCP/UDP including the pseudo-header; an IPv4 UDP checksum of
//! 0 stays 0); SCTP's CRC32c is recomputed when the port changes. The TTL is decremented both ways (the reply is forwarded
//! too), with ICMP time exceeded at ≤ 1.
//!
//! Non-first fragments carry no ports and are refused
//! ([`XmitError::Fragment`]); the kernel reassembles before IPVS sees
//! them, the engine must do the same before calling this.
//!
//! The method reads the real server and virtual service, the direction
//! and the egress MACs and MTU of its parameters: [`xmit_to`] takes just
//! those (the engine's packet path builds no [`XmitParams`] for NAT),
//! [`xmit`] the whole block.

use std::net::{IpAddr, SocketAddr};

use super::{
    rewrite_endpoint, same_family, sctp_fix_checksum, set_macs, trim_padding, ttl_then_mtu,
    Direction, Endpoint, FrameBuf, XmitError, XmitOutcome, XmitParams,
};
use crate::wire::ethernet::{self, Mac};
use crate::wire::{self, checksum, ipv4, proto, Network, ParsedFrame};

/// Rewrite `frame` for its direction and forward it.
pub fn xmit(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<XmitOutcome, XmitError> {
    xmit_to(
        frame,
        parsed,
        &NatParams {
            direction: params.direction,
            real_server: params.real_server,
            virtual_service: params.virtual_service,
            director_mac: params.director_mac,
            next_hop_mac: params.next_hop_mac,
            mtu: params.mtu,
        },
    )
}

/// What NAT reads of a connection and its next hop (the fields of
/// [`XmitParams`] it uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatParams {
    /// Which way the packet travels.
    pub direction: Direction,
    /// Real server address and port (the inbound destination).
    pub real_server: SocketAddr,
    /// Virtual service address and port (the outbound source).
    pub virtual_service: SocketAddr,
    /// The director's MAC on the egress interface.
    pub director_mac: Mac,
    /// The next hop's MAC.
    pub next_hop_mac: Mac,
    /// MTU of the egress route.
    pub mtu: u16,
}

/// [`xmit`] given only what the method reads.
#[inline(always)]
pub fn xmit_to(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &NatParams,
) -> Result<XmitOutcome, XmitError> {
    if ipv4_tcp_udp_fast(frame, parsed, params) {
        return Ok(XmitOutcome::Forward);
    }
    trim_padding(frame, parsed)?;
    xmit_general(frame, parsed, params)
}

/// The common case in one pass: an IPv4 TCP/UDP packet (not a fragment,
/// no IPv6 endpoint) whose TTL stays above 0 and that fits the MTU. The
/// padding is trimmed (with [`trim_padding`]'s checks; trimming again is
/// a no-op); the TTL, the address, the port and both checksums are written in the
/// order [`xmit_general`] writes them, with the same checksum updates,
/// so the bytes are the same; the headers are checked once, up front,
/// and nothing is written unless every check passes (`false`: the
/// general path decides, errors included).
#[inline(always)]
fn ipv4_tcp_udp_fast(frame: &mut FrameBuf, parsed: &ParsedFrame, params: &NatParams) -> bool {
    let (addr_at, port_at, target) = match params.direction {
        Direction::Inbound => (16, 2, params.real_server),
        Direction::Outbound => (12, 0, params.virtual_service),
    };
    let (IpAddr::V4(_), IpAddr::V4(new_addr), true, true, Network::Ipv4, false) = (
        parsed.daddr,
        target.ip(),
        params.real_server.is_ipv4() && params.virtual_service.is_ipv4(),
        parsed.ttl > 1 && usize::from(parsed.ip_len) <= usize::from(params.mtu),
        parsed.network,
        parsed.is_fragment,
    ) else {
        return false;
    };
    let (udp, check_at) = match parsed.protocol {
        proto::TCP => (false, wire::tcp::CHECKSUM_OFFSET),
        proto::UDP => (true, wire::udp::CHECKSUM_OFFSET),
        _ => return false,
    };
    if !parsed.has_ports() {
        return false;
    }
    let (l3, l4) = (usize::from(parsed.l3), usize::from(parsed.l4));
    let end = parsed.ip_end();
    let ordered = (ethernet::HEADER_LEN..=18).contains(&l3)
        && l3.saturating_add(ipv4::MIN_HEADER_LEN) <= l4
        && parsed.l4 <= parsed.payload
        && usize::from(parsed.payload) <= end;
    if !ordered || end > frame.len() {
        return false;
    }
    frame.truncate(end);
    let frame = frame.frame_mut();
    let (head, segment) = frame.split_at_mut(l4.min(frame.len()));
    let Some(&version_ihl) = head.get(l3) else {
        return false;
    };
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < ipv4::MIN_HEADER_LEN || head.len() - l3 < ihl {
        return false;
    }
    let (Some(ip), Some(l4_hdr)) = (
        head.get_mut(l3..l3 + ipv4::MIN_HEADER_LEN)
            .and_then(|h| <&mut [u8; ipv4::MIN_HEADER_LEN]>::try_from(h).ok()),
        segment.get_mut(..check_at + 2),
    ) else {
        return false;
    };
    // TTL, then the address, each with its header checksum update.
    let ttl_word = u16::from_be_bytes([ip[8], ip[9]]);
    ip[8] = ip[8].wrapping_sub(1);
    let mut ip_check = u16::from_be_bytes([ip[10], ip[11]]);
    ip_check = checksum::update_u16(ip_check, ttl_word, ttl_word.wrapping_sub(0x0100));
    let old = u32::from_be_bytes([
        ip[addr_at],
        ip[addr_at + 1],
        ip[addr_at + 2],
        ip[addr_at + 3],
    ]);
    let new = u32::from(new_addr);
    ip[addr_at..addr_at + 4].copy_from_slice(&new.to_be_bytes());
    ip_check = checksum::update_u32(ip_check, old, new);
    ip[10..12].copy_from_slice(&ip_check.to_be_bytes());
    // The transport checksum (an IPv4 UDP checksum of 0 stays 0), then
    // the port.
    let new_port = target.port();
    let old_port = u16::from_be_bytes([l4_hdr[port_at], l4_hdr[port_at + 1]]);
    let mut check = u16::from_be_bytes([l4_hdr[check_at], l4_hdr[check_at + 1]]);
    if !(udp && check == 0) {
        check = checksum::update_u32(check, old, new);
        check = checksum::update_u16(check, old_port, new_port);
        if udp && check == 0 {
            check = 0xffff;
        }
        l4_hdr[check_at..check_at + 2].copy_from_slice(&check.to_be_bytes());
    }
    l4_hdr[port_at..port_at + 2].copy_from_slice(&new_port.to_be_bytes());
    // The MACs (the frame holds an Ethernet header: checked above).
    frame[..6].copy_from_slice(&params.next_hop_mac);
    frame[6..12].copy_from_slice(&params.director_mac);
    true
}

/// [`xmit_to`] after the padding is trimmed: every case, step by step.
#[inline(never)]
fn xmit_general(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &NatParams,
) -> Result<XmitOutcome, XmitError> {
    if parsed.is_fragment && !parsed.is_first_fragment {
        return Err(XmitError::Fragment);
    }
    same_family(parsed.daddr, params.real_server.ip())?;
    same_family(parsed.daddr, params.virtual_service.ip())?;
    if let Some(outcome) = ttl_then_mtu(
        frame,
        parsed,
        params.director_mac,
        params.mtu,
        params.direction,
        params.virtual_service.ip(),
    )? {
        return Ok(outcome);
    }
    let (which, target) = match params.direction {
        Direction::Inbound => (Endpoint::Destination, params.real_server),
        Direction::Outbound => (Endpoint::Source, params.virtual_service),
    };
    let port = parsed.has_ports().then_some(target.port());
    rewrite_endpoint(
        frame.frame_mut(),
        usize::from(parsed.l3),
        usize::from(parsed.l4),
        parsed.protocol,
        which,
        target.ip(),
        port,
        true,
    )?;
    if parsed.protocol == proto::SCTP {
        sctp_fix_checksum(frame.frame_mut(), parsed)?;
    }
    set_macs(frame.frame_mut(), params.director_mac, params.next_hop_mac)?;
    Ok(XmitOutcome::Forward)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::wire::parse_frame;

    /// The one-pass IPv4 path writes exactly the bytes (and gives the
    /// outcome) of the step-by-step path, over TCP and UDP (checksum 0
    /// or not), both directions, IP options, every TTL edge, MTUs around
    /// the packet's length, padded frames, mixed families, fragments
    /// and other protocols (which it must leave to the general path).
    #[test]
    fn one_pass_ipv4_path_writes_what_the_general_path_writes() {
        let client = Ipv4Addr::new(203, 0, 113, 7);
        let vip = Ipv4Addr::new(192, 0, 2, 10);
        let rs = Ipv4Addr::new(10, 1, 0, 2);
        let mut next = crate::xmit::test_rng(0x2545_f491_4f6c_dd1d_u64);
        let mut fast_taken = 0;
        for case in 0..4000u32 {
            let r = next();
            let inbound = r & 1 == 0;
            let (src, dst, sport, dport) = if inbound {
                (client, vip, 40000 + (r >> 8) as u16 % 1000, 80)
            } else {
                (rs, client, 8080, 40000 + (r >> 8) as u16 % 1000)
            };
            let b = crate::xmit::test_ipv4_frame(r, src, dst);
            let b = match (r >> 34) % 4 {
                0 => b.udp(sport, dport),
                1 => b.udp(sport, dport).udp_zero_checksum(),
                2 => b.icmp(8, 0, 0),
                _ => b.tcp(sport, dport).flags(0x10).seq(r as u32),
            };
            let bytes = crate::xmit::test_frame_bytes(b, r);
            let Ok(parsed) = parse_frame(&bytes) else {
                continue;
            };
            let ip_len = usize::from(parsed.ip_len);
            let mtu = match (r >> 51) % 3 {
                0 => ip_len,
                1 => ip_len - 1,
                _ => 1500,
            };
            let v6 = r & (1 << 53) != 0 && r & (1 << 54) != 0;
            let params = NatParams {
                direction: if inbound {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                },
                real_server: if v6 {
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 8080)
                } else {
                    SocketAddr::new(IpAddr::V4(rs), 8080)
                },
                virtual_service: SocketAddr::new(IpAddr::V4(vip), 80),
                director_mac: [2, 0, 0, 0, 0, 9],
                next_hop_mac: [2, 0, 0, 0, 0, 8],
                mtu: u16::try_from(mtu).expect("small"),
            };
            let mut a = bytes.clone();
            let mut b = bytes.clone();
            let (len_a, len_b) = (a.len(), b.len());
            let mut frame_a = FrameBuf::new(&mut a, 0, len_a).expect("fits");
            let mut frame_b = FrameBuf::new(&mut b, 0, len_b).expect("fits");
            let one_pass = xmit_to(&mut frame_a, &parsed, &params);
            let general = trim_padding(&mut frame_b, &parsed)
                .and_then(|()| xmit_general(&mut frame_b, &parsed, &params));
            assert_eq!(one_pass, general, "case {case}");
            assert_eq!(frame_a.frame(), frame_b.frame(), "case {case}");
            let mut c = bytes.clone();
            let len_c = c.len();
            let mut frame_c = FrameBuf::new(&mut c, 0, len_c).expect("fits");
            if ipv4_tcp_udp_fast(&mut frame_c, &parsed, &params) {
                fast_taken += 1;
            }
        }
        // The one-pass path was exercised, not bypassed.
        assert!(fast_taken > 300, "one-pass path taken {fast_taken} times");
    }
}
