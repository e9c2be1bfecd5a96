//! Tunnelling (`-i`, IPVS "Tunnel"): the client's IP packet, TTL
//! decremented, is wrapped in an outer IP header to the real server,
//! built in the frame's headroom (the Ethernet header moves forward).
//!
//! As `ip_vs_tunnel_xmit` does: the outer header is IPv4 for an IPv4
//! real server and IPv6 for an IPv6 one, whatever the inner family;
//! protocol / next header 4 (IPIP) or 41 (inner IPv6), 17 for GUE, 47
//! for GRE. Outer TTL / hop limit = the inner one (after decrement);
//! outer TOS / traffic class = the inner DSCP and ECN, except that an
//! inner CE mark becomes ECT(0) (`INET_ECN_encapsulate`); outer DF =
//! the inner DF (pmtu_disc = 1; clear for an IPv6 inner packet, as in
//! `ip_vs_prepare_tunneled_skb`); outer IPv4 identification 0 when DF
//! is set, else the low 16 bits of the flow hash (the kernel's
//! `ip_select_ident` is a hash too); IPv6 flow label 0.
//!
//! - GUE: UDP source port from the flow hash mapped into 32768..=60999
//!   (the kernel's `udp_flow_src_port` over the default local port
//!   range), destination the tunnel port, a 4-byte GUE header (version
//!   0, no options, proto_ctype = 4 or 41). With `csum` or `remcsum`
//!   the UDP checksum is filled, as the kernel does; without, it is 0
//!   over IPv4. Over IPv6 we always fill it: the kernel leaves it 0 there
//!   (RFC 6935 allows that for tunnels), but receivers must opt in to
//!   zero-checksum IPv6 UDP, and a valid checksum is accepted by all.
//!   `remcsum` only adds its option to packets whose inner checksum is
//!   left to offload (CHECKSUM_PARTIAL); ours are always complete, so, as
//!   the kernel does then, no remcsum option is emitted.
//! - GRE: 4 bytes (flags 0, protocol = inner ethertype), 8 with `csum`
//!   (checksum over the GRE header and payload).
//!
//! MTU: the inner packet may be at most MTU − overhead (the outer IP
//! header plus UDP/GUE or GRE); a tunnel MTU below 68 (IPv4 outer) or 1280 (IPv6
//! outer) drops the packet. Too big with DF (or IPv6 inner): ICMP
//! frag-needed / packet too big advertising MTU − overhead goes back to
//! the client.

use std::net::IpAddr;

use uvs_conf::{TunnelCsum, TunnelType};

use super::{
    check_mtu_from, decrement_ttl_from, same_family, set_macs, trim_padding, Direction, FrameBuf,
    TunnelParams, XmitError, XmitOutcome, XmitParams,
};
use crate::wire::ethernet::Mac;
use crate::wire::{
    self, checksum, ethertype, ipv4, ipv6, proto, tunnel, udp, Network, ParsedFrame,
};

/// Lowest GUE source port (the kernel's default local port range).
pub const GUE_SPORT_MIN: u16 = 32768;
/// Highest GUE source port.
pub const GUE_SPORT_MAX: u16 = 60999;

/// The GUE source port for a flow hash (`udp_flow_src_port`).
pub fn gue_source_port(flow_hash: u32) -> u16 {
    let span = u64::from(GUE_SPORT_MAX - GUE_SPORT_MIN);
    let offset = (u64::from(flow_hash) * span) >> 32;
    GUE_SPORT_MIN + offset as u16
}

/// The outer TOS for an inner DS field: DSCP copied, ECN copied except
/// CE → ECT(0).
pub fn encap_dsfield(inner: u8) -> u8 {
    if inner & 0x03 == 0x03 {
        (inner & !0x03) | 0x02
    } else {
        inner
    }
}

/// Bytes the encapsulation adds between the Ethernet header and the
/// inner packet, for an outer header of `outer_v6` family.
pub fn overhead(kind: TunnelType, csum: TunnelCsum, outer_v6: bool) -> usize {
    let outer = if outer_v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::MIN_HEADER_LEN
    };
    outer
        + match kind {
            TunnelType::Ipip => 0,
            TunnelType::Gue { .. } => udp::HEADER_LEN + tunnel::GUE_HEADER_LEN,
            TunnelType::Gre if csum == TunnelCsum::Csum => tunnel::GRE_CSUM_HEADER_LEN,
            TunnelType::Gre => tunnel::GRE_HEADER_LEN,
        }
}

/// Encapsulate `frame` for the real server and forward it.
pub fn xmit(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<XmitOutcome, XmitError> {
    xmit_to(
        frame,
        parsed,
        &TunParams {
            direction: params.direction,
            real_server: params.real_server.ip(),
            virtual_service: params.virtual_service.ip(),
            tunnel: params.tunnel,
            flow_hash: params.flow_hash,
            director_mac: params.director_mac,
            next_hop_mac: params.next_hop_mac,
            mtu: params.mtu,
        },
    )
}

/// What the tunnel method reads of [`XmitParams`] (the engine builds it
/// straight from the connection, without the other endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunParams {
    /// Direction of the packet (the source of an ICMP "too big" answer
    /// depends on it).
    pub direction: Direction,
    /// The real server: the outer destination.
    pub real_server: IpAddr,
    /// The virtual service's address (an outbound ICMP answer's source).
    pub virtual_service: IpAddr,
    /// Encapsulation kind, checksum mode and outer source.
    pub tunnel: TunnelParams,
    /// The flow's hash (GUE source port, outer IPv4 ident).
    pub flow_hash: u32,
    /// Source MAC of the egress port.
    pub director_mac: Mac,
    /// Destination MAC: the next hop's.
    pub next_hop_mac: Mac,
    /// MTU of the egress port.
    pub mtu: u16,
}

/// [`xmit`] given only what the tunnel method reads ([`TunParams`]).
#[inline]
pub fn xmit_to(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &TunParams,
) -> Result<XmitOutcome, XmitError> {
    trim_padding(frame, parsed)?;
    let tun = params.tunnel;
    let rs = params.real_server;
    same_family(rs, tun.source)?;
    let outer_v6 = rs.is_ipv6();
    let added = overhead(tun.kind, tun.csum, outer_v6);
    let min_mtu = if outer_v6 { 1280 } else { 68 };
    let inner_mtu = usize::from(params.mtu)
        .checked_sub(added)
        .filter(|m| *m >= min_mtu)
        .ok_or(XmitError::MtuTooSmall)?;
    if let Some(outcome) = decrement_ttl_from(frame, parsed, params.director_mac)? {
        return Ok(outcome);
    }
    let inner_len = usize::from(parsed.ip_len);
    if let Some(outcome) = check_mtu_from(
        frame,
        parsed,
        params.director_mac,
        || match params.direction {
            Direction::Inbound => parsed.daddr,
            Direction::Outbound => params.virtual_service,
        },
        inner_len,
        inner_mtu,
        inner_mtu as u32,
    )? {
        return Ok(outcome);
    }
    let ttl = parsed.ttl.saturating_sub(1);
    let l3 = usize::from(parsed.l3);
    let (inner_proto, inner_ethertype, dsfield, dont_frag) = {
        let ip = frame.frame().get(l3..).ok_or(XmitError::Truncated)?;
        match parsed.network {
            Network::Ipv4 => {
                let ip = ipv4::Packet::new_checked(ip)?;
                (proto::IPIP, ethertype::IPV4, ip.tos(), ip.dont_frag())
            }
            Network::Ipv6 => {
                let ip = ipv6::Packet::new_checked(ip)?;
                (proto::IPV6, ethertype::IPV6, ip.traffic_class(), false)
            }
            Network::Arp => return Err(XmitError::NotIp),
        }
    };
    frame.push_front(added)?;
    let out = frame.frame_mut();
    out.copy_within(added..added + l3, 0);
    wire::write_u16(
        out,
        l3 - 2,
        if outer_v6 {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        },
    )?;
    let outer_hdr = if outer_v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::MIN_HEADER_LEN
    };
    let tun_start = l3 + outer_hdr;
    let outer_payload_len = added - outer_hdr + inner_len;
    let outer_proto = match tun.kind {
        TunnelType::Ipip => inner_proto,
        TunnelType::Gue { port } => {
            let udp_len = outer_payload_len as u16;
            udp::Repr {
                src_port: gue_source_port(params.flow_hash),
                dst_port: port,
                len: udp_len,
            }
            .emit(out.get_mut(tun_start..).ok_or(XmitError::Truncated)?)?;
            tunnel::GueHeader {
                control: false,
                options_len: 0,
                proto_ctype: inner_proto,
                flags: 0,
            }
            .emit(
                out.get_mut(tun_start + udp::HEADER_LEN..)
                    .ok_or(XmitError::Truncated)?,
            )?;
            if tun.csum != TunnelCsum::NoCsum || outer_v6 {
                let seg = out
                    .get(tun_start..tun_start + outer_payload_len)
                    .ok_or(XmitError::Truncated)?;
                let acc = checksum::pseudo_header(tun.source, rs, proto::UDP, udp_len.into());
                let mut check = checksum::finish(checksum::add(acc, seg));
                if check == 0 {
                    check = 0xffff;
                }
                wire::write_u16(out, tun_start + udp::CHECKSUM_OFFSET, check)?;
            }
            proto::UDP
        }
        TunnelType::Gre => {
            let with_csum = tun.csum == TunnelCsum::Csum;
            let flags = if with_csum { tunnel::GRE_FLAG_CSUM } else { 0 };
            wire::write_u16(out, tun_start, flags)?;
            wire::write_u16(out, tun_start + 2, inner_ethertype)?;
            if with_csum {
                wire::write_bytes(out, tun_start + 4, &[0, 0, 0, 0])?;
                let seg = out
                    .get(tun_start..tun_start + outer_payload_len)
                    .ok_or(XmitError::Truncated)?;
                let check = checksum::of(seg);
                wire::write_u16(out, tun_start + 4, check)?;
            }
            proto::GRE
        }
    };
    let outer = out.get_mut(l3..).ok_or(XmitError::Truncated)?;
    match (tun.source, rs) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => ipv4::Repr {
            src,
            dst,
            protocol: outer_proto,
            payload_len: outer_payload_len as u16,
            ttl,
            tos: encap_dsfield(dsfield),
            ident: if dont_frag {
                0
            } else {
                params.flow_hash as u16
            },
            dont_frag,
        }
        .emit(outer)?,
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let outer = outer
                .get_mut(..ipv6::HEADER_LEN)
                .ok_or(XmitError::Truncated)?;
            let mut ip = ipv6::Packet::new_unchecked(outer);
            ip.set_version_class_flow(encap_dsfield(dsfield), 0);
            ip.set_payload_len(outer_payload_len as u16);
            ip.set_next_header(outer_proto);
            ip.set_hop_limit(ttl);
            ip.set_src(src);
            ip.set_dst(dst);
        }
        _ => return Err(XmitError::AddressFamily),
    }
    set_macs(frame.frame_mut(), params.director_mac, params.next_hop_mac)?;
    Ok(XmitOutcome::Forward)
}
