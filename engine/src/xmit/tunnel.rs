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

use std::net::{IpAddr, Ipv4Addr};

use uvs_conf::{TunnelCsum, TunnelType};

use super::{
    check_mtu_from, checked_ipv4_packet, decrement_ttl_from, set_macs, trim_padding, Direction,
    FrameBuf, TunnelParams, XmitError, XmitOutcome, XmitParams,
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

/// Whether encapsulating `parsed` for a real server of the outer family
/// `outer_v6` reads [`TunParams::flow_hash`]: for GUE (the source port),
/// and for an outer IPv4 header whose identification is not 0 (inner
/// IPv4 without DF, or inner IPv6). Otherwise any hash gives the same
/// bytes, so the caller need not compute it.
#[inline]
pub fn reads_flow_hash(kind: TunnelType, outer_v6: bool, parsed: &ParsedFrame) -> bool {
    // An outer IPv4 ident is 0 under an inner DF; IPv6 has none.
    let ident_is_zero = parsed.network == Network::Ipv4 && parsed.dont_fragment;
    matches!(kind, TunnelType::Gue { .. }) || !(outer_v6 || ident_is_zero)
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
///
/// The lean path: a packet that expires or is too big goes to the cold
/// `answer_or_drop`; any other has its inner TTL decremented and its DS
/// field read in one visit to the inner header, after the headroom is
/// taken (no second parse); only a VLAN tag moves with the Ethernet
/// header (the MACs and the ethertype are rewritten); the outer IPv4
/// header is written as fixed-size words with its checksum summed from
/// the values being written (no pass over the emitted header).
#[inline(always)]
pub fn xmit_to(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &TunParams,
) -> Result<XmitOutcome, XmitError> {
    if let (TunnelType::Ipip, IpAddr::V4(src), IpAddr::V4(dst)) =
        (params.tunnel.kind, params.tunnel.source, params.real_server)
    {
        if ipip_v4_fast(frame, parsed, (src, dst), params) {
            return Ok(XmitOutcome::Forward);
        }
    }
    trim_padding(frame, parsed)?;
    let tun = params.tunnel;
    let rs = params.real_server;
    let outer_v6 = match (tun.source, rs) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(XmitError::AddressFamily),
    };
    let added = overhead(tun.kind, tun.csum, outer_v6);
    let (outer_hdr, min_mtu) = if outer_v6 {
        (ipv6::HEADER_LEN, 1280)
    } else {
        (ipv4::MIN_HEADER_LEN, 68)
    };
    let inner_mtu = usize::from(params.mtu)
        .checked_sub(added)
        .filter(|m| *m >= min_mtu)
        .ok_or(XmitError::MtuTooSmall)?;
    let inner_len = usize::from(parsed.ip_len);
    if parsed.ttl <= 1 || inner_len > inner_mtu {
        let icmp_source = match params.direction {
            Direction::Inbound => parsed.daddr,
            Direction::Outbound => params.virtual_service,
        };
        return answer_or_drop(
            frame,
            parsed,
            params.director_mac,
            icmp_source,
            (inner_len, inner_mtu),
        );
    }
    let ttl = parsed.ttl - 1;
    let l3 = usize::from(parsed.l3);
    frame.push_front(added)?;
    let out = frame.frame_mut();
    // The inner header, now `added` further on: its TTL / hop limit
    // decremented (IPv4: a one-word checksum update), its DS field read.
    let (inner_proto, inner_ethertype, dsfield, dont_frag) = {
        let ip = out.get_mut(added + l3..).ok_or(XmitError::Truncated)?;
        let ip_len = ip.len();
        match parsed.network {
            Network::Ipv4 => {
                let hdr: &mut [u8; ipv4::MIN_HEADER_LEN] = ip
                    .get_mut(..ipv4::MIN_HEADER_LEN)
                    .and_then(|h| h.try_into().ok())
                    .ok_or(XmitError::Truncated)?;
                let ihl = usize::from(hdr[0] & 0x0f) * 4;
                if hdr[0] >> 4 != 4 || ihl < ipv4::MIN_HEADER_LEN || ip_len < ihl {
                    return Err(XmitError::Truncated);
                }
                ipv4::decrement_ttl_in(hdr);
                (proto::IPIP, ethertype::IPV4, hdr[1], parsed.dont_fragment)
            }
            Network::Ipv6 => {
                let hdr: &mut [u8; ipv6::HEADER_LEN] = ip
                    .get_mut(..ipv6::HEADER_LEN)
                    .and_then(|h| h.try_into().ok())
                    .ok_or(XmitError::Truncated)?;
                if hdr[0] >> 4 != 6 {
                    return Err(XmitError::Truncated);
                }
                hdr[7] = ttl;
                let class = (hdr[0] << 4) | (hdr[1] >> 4);
                (proto::IPV6, ethertype::IPV6, class, false)
            }
            Network::Arp => return Err(XmitError::NotIp),
        }
    };
    // The MACs and the ethertype are written below: of the Ethernet
    // header only a VLAN tag (bytes 12 up to the ethertype) moves.
    if l3 > wire::ethernet::HEADER_LEN {
        let tag = added + 12..added + l3 - 2;
        if out.get(tag.clone()).is_none() {
            return Err(XmitError::Truncated);
        }
        out.copy_within(tag, 12);
    }
    wire::write_u16(
        out,
        l3 - 2,
        if outer_v6 {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        },
    )?;
    let tun_start = l3 + outer_hdr;
    let outer_payload_len = added - outer_hdr + inner_len;
    let outer_proto = match tun.kind {
        TunnelType::Ipip => inner_proto,
        TunnelType::Gue { port } => {
            let checksum_ends =
                (tun.csum != TunnelCsum::NoCsum || outer_v6).then_some((tun.source, rs));
            let ports = (gue_source_port(params.flow_hash), port);
            emit_gue(
                out,
                tun_start,
                outer_payload_len,
                ports,
                inner_proto,
                checksum_ends,
            )?;
            proto::UDP
        }
        TunnelType::Gre => {
            emit_gre(out, tun_start, outer_payload_len, tun.csum, inner_ethertype)?;
            proto::GRE
        }
    };
    let tos = encap_dsfield(dsfield);
    match (tun.source, rs) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let ident = if dont_frag {
                0
            } else {
                params.flow_hash as u16
            };
            let outer = OuterV4 {
                src,
                dst,
                protocol: outer_proto,
                ttl,
                tos,
                ident,
                dont_frag,
            };
            outer.emit(out, l3, outer_payload_len)?;
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let hdr: &mut [u8; ipv6::HEADER_LEN] = out
                .get_mut(l3..l3 + ipv6::HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or(XmitError::Truncated)?;
            let payload_len = u16::try_from(outer_payload_len).map_err(|_| XmitError::Truncated)?;
            hdr[0] = 0x60 | (tos >> 4);
            hdr[1] = tos << 4;
            hdr[2] = 0;
            hdr[3] = 0;
            hdr[4..6].copy_from_slice(&payload_len.to_be_bytes());
            hdr[6] = outer_proto;
            hdr[7] = ttl;
            hdr[8..24].copy_from_slice(&src.octets());
            hdr[24..40].copy_from_slice(&dst.octets());
        }
        _ => return Err(XmitError::AddressFamily),
    }
    set_macs(out, params.director_mac, params.next_hop_mac)?;
    Ok(XmitOutcome::Forward)
}

/// The common case of [`xmit_to`] in one pass: an IPv4 packet without a
/// VLAN tag, TTL above 1, that fits the MTU (≥ 88: an inner MTU of at
/// least IPv4's 68) with the 20-byte outer header, wrapped in IPv4 (IPIP) from `src` to `dst` — after one check
/// of the inner header (the general path's), the padding trimmed, the
/// inner TTL decremented, the outer header, ethertype and MACs written.
/// The same bytes as the general path; `false` with nothing written
/// when any condition fails (the general path then decides, errors and
/// ICMP answers included).
#[inline(always)]
fn ipip_v4_fast(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    (src, dst): (Ipv4Addr, Ipv4Addr),
    params: &TunParams,
) -> bool {
    const ADDED: usize = ipv4::MIN_HEADER_LEN;
    const L3: usize = wire::ethernet::HEADER_LEN;
    let inner_len = usize::from(parsed.ip_len);
    if parsed.network != Network::Ipv4
        || parsed.ttl <= 1
        || usize::from(parsed.l3) != L3
        || inner_len + ADDED > usize::from(params.mtu)
        || usize::from(params.mtu) < ADDED + 68
        || frame.headroom() < ADDED
    {
        return false;
    }
    let Some(dsfield) = checked_ipv4_packet(frame, parsed).and_then(|ip| ip.get(1).copied()) else {
        return false;
    };
    let end = parsed.ip_end();
    frame.truncate(end);
    if frame.push_front(ADDED).is_err() {
        return false; // not reached: the headroom was checked
    }
    let out = frame.frame_mut();
    let Some(inner_header) = out
        .get_mut(ADDED + L3..ADDED + L3 + ipv4::MIN_HEADER_LEN)
        .and_then(|h| <&mut [u8; ipv4::MIN_HEADER_LEN]>::try_from(h).ok())
    else {
        return false; // not reached: the inner header is in the frame
    };
    ipv4::decrement_ttl_in(inner_header);
    let dont_frag = parsed.dont_fragment;
    let outer = OuterV4 {
        src,
        dst,
        protocol: proto::IPIP,
        ttl: parsed.ttl - 1,
        tos: encap_dsfield(dsfield),
        ident: if dont_frag {
            0
        } else {
            params.flow_hash as u16
        },
        dont_frag,
    };
    if outer.emit(out, L3, inner_len).is_err() {
        return false; // not reached: 20 bytes at 14 are in the frame
    }
    if let Some(eth) = out.get_mut(..L3) {
        eth[..6].copy_from_slice(&params.next_hop_mac);
        eth[6..12].copy_from_slice(&params.director_mac);
        eth[12..].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    }
    true
}

/// The packet's TTL runs out (`ttl` ≤ 1) or its `(length, inner MTU)`
/// says it is too big for the tunnel: the ICMP error for the client that
/// [`decrement_ttl_from`] / [`check_mtu_from`] make of the frame (from
/// `director_mac` and `icmp_source`), or the drop they decide. Given
/// plain values, not the [`TunParams`], so the hot path need not build
/// them in memory for this call.
#[cold]
#[inline(never)]
fn answer_or_drop(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    director_mac: Mac,
    icmp_source: IpAddr,
    (inner_len, inner_mtu): (usize, usize),
) -> Result<XmitOutcome, XmitError> {
    if let Some(outcome) = decrement_ttl_from(frame, parsed, director_mac)? {
        return Ok(outcome);
    }
    let answered = check_mtu_from(
        frame,
        parsed,
        director_mac,
        || icmp_source,
        inner_len,
        inner_mtu,
        inner_mtu as u32,
    )?;
    // With the TTL left, the packet is too big here: an answer or an
    // error, never `None`.
    answered.ok_or(XmitError::TooBig)
}

/// An outer IPv4 header without options: written as fixed words, its
/// checksum the fold of the words' sum (what [`ipv4::Repr::emit`] writes,
/// without reading the header back).
struct OuterV4 {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    tos: u8,
    ident: u16,
    dont_frag: bool,
}

impl OuterV4 {
    /// Write the header at `out[at..at + 20]` for a payload of
    /// `payload_len` bytes.
    #[inline(always)]
    fn emit(&self, out: &mut [u8], at: usize, payload_len: usize) -> Result<(), XmitError> {
        let hdr: &mut [u8; ipv4::MIN_HEADER_LEN] = out
            .get_mut(at..at + ipv4::MIN_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(XmitError::Truncated)?;
        let total =
            u16::try_from(payload_len + ipv4::MIN_HEADER_LEN).map_err(|_| XmitError::Truncated)?;
        let flags: u16 = if self.dont_frag { 0x4000 } else { 0 };
        let src = u32::from(self.src);
        let dst = u32::from(self.dst);
        let ttl_proto = u16::from_be_bytes([self.ttl, self.protocol]);
        let sum = u32::from(0x4500 | u16::from(self.tos))
            + u32::from(total)
            + u32::from(self.ident)
            + u32::from(flags)
            + u32::from(ttl_proto)
            + (src >> 16)
            + (src & 0xffff)
            + (dst >> 16)
            + (dst & 0xffff);
        hdr[0] = 0x45;
        hdr[1] = self.tos;
        hdr[2..4].copy_from_slice(&total.to_be_bytes());
        hdr[4..6].copy_from_slice(&self.ident.to_be_bytes());
        hdr[6..8].copy_from_slice(&flags.to_be_bytes());
        hdr[8..10].copy_from_slice(&ttl_proto.to_be_bytes());
        hdr[10..12].copy_from_slice(&checksum::finish(sum).to_be_bytes());
        hdr[12..16].copy_from_slice(&src.to_be_bytes());
        hdr[16..20].copy_from_slice(&dst.to_be_bytes());
        Ok(())
    }
}

/// Write the UDP and GUE headers at `out[at..]` (UDP length `udp_len`,
/// `(source, destination)` ports), and the UDP checksum over the pseudo
/// header of `checksum_ends` (outer source and destination) when the
/// mode or an IPv6 outer header asks for one. Plain values, not the
/// [`TunParams`], so the parameters need not be built in memory.
#[inline]
fn emit_gue(
    out: &mut [u8],
    at: usize,
    udp_len: usize,
    (sport, dport): (u16, u16),
    inner_proto: u8,
    checksum_ends: Option<(IpAddr, IpAddr)>,
) -> Result<(), XmitError> {
    let len = u16::try_from(udp_len).map_err(|_| XmitError::Truncated)?;
    let hdr: &mut [u8; udp::HEADER_LEN + tunnel::GUE_HEADER_LEN] = out
        .get_mut(at..at + udp::HEADER_LEN + tunnel::GUE_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(XmitError::Truncated)?;
    hdr[0..2].copy_from_slice(&sport.to_be_bytes());
    hdr[2..4].copy_from_slice(&dport.to_be_bytes());
    hdr[4..6].copy_from_slice(&len.to_be_bytes());
    // Checksum 0, then GUE version 0, no options, proto_ctype, no flags.
    hdr[6..12].copy_from_slice(&[0, 0, 0, inner_proto, 0, 0]);
    if let Some((src, dst)) = checksum_ends {
        let seg = out.get(at..at + udp_len).ok_or(XmitError::Truncated)?;
        let acc = checksum::pseudo_header(src, dst, proto::UDP, len.into());
        let mut check = checksum::finish(checksum::add(acc, seg));
        if check == 0 {
            check = 0xffff;
        }
        wire::write_u16(out, at + udp::CHECKSUM_OFFSET, check)?;
    }
    Ok(())
}

/// Write the GRE header at `out[at..]` (with its checksum over the
/// `len` bytes of GRE header and payload in `Csum` mode).
#[inline]
fn emit_gre(
    out: &mut [u8],
    at: usize,
    len: usize,
    csum: TunnelCsum,
    inner_ethertype: u16,
) -> Result<(), XmitError> {
    let with_csum = csum == TunnelCsum::Csum;
    let flags = if with_csum { tunnel::GRE_FLAG_CSUM } else { 0 };
    wire::write_u16(out, at, flags)?;
    wire::write_u16(out, at + 2, inner_ethertype)?;
    if with_csum {
        wire::write_bytes(out, at + 4, &[0, 0, 0, 0])?;
        let seg = out.get(at..at + len).ok_or(XmitError::Truncated)?;
        let check = checksum::of(seg);
        wire::write_u16(out, at + 4, check)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The lean [`xmit_to`] against the general encapsulation it
    //! replaced (kept here as the reference): same outcome, same bytes.

    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::wire::build::PacketBuilder;
    use crate::wire::{parse_frame, tcp};
    use crate::xmit::same_family;

    /// The general path: parses the inner header again, moves the whole
    /// Ethernet header, emits the outer header through `ipv4::Repr`.
    fn reference_xmit_to(
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
        let outer_ethertype = if outer_v6 {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        };
        wire::write_u16(out, l3 - 2, outer_ethertype)?;
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

    const KINDS: [(TunnelType, TunnelCsum); 6] = [
        (TunnelType::Ipip, TunnelCsum::NoCsum),
        (TunnelType::Gue { port: 5555 }, TunnelCsum::NoCsum),
        (TunnelType::Gue { port: 5555 }, TunnelCsum::Csum),
        (TunnelType::Gue { port: 5555 }, TunnelCsum::RemCsum),
        (TunnelType::Gre, TunnelCsum::NoCsum),
        (TunnelType::Gre, TunnelCsum::Csum),
    ];

    fn addr(v6: bool, seed: u128) -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(seed))
        } else {
            IpAddr::V4(Ipv4Addr::from(seed as u32))
        }
    }

    /// Run `f` on `input` placed after `headroom` bytes, with 64 bytes of
    /// tailroom: the outcome, the frame's start and its bytes.
    fn run(
        f: fn(&mut FrameBuf, &ParsedFrame, &TunParams) -> Result<XmitOutcome, XmitError>,
        input: &[u8],
        parsed: &ParsedFrame,
        params: &TunParams,
        headroom: usize,
    ) -> (Result<XmitOutcome, XmitError>, usize, Vec<u8>) {
        let mut buf = vec![0xeeu8; headroom + input.len() + 64];
        buf[headroom..headroom + input.len()].copy_from_slice(input);
        let mut frame = FrameBuf::new(&mut buf, headroom, input.len()).expect("fits");
        let result = f(&mut frame, parsed, params);
        (result, frame.start(), frame.frame().to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn lean_path_gives_the_reference_bytes(
            families in (any::<bool>(), any::<bool>(), any::<bool>()),
            seeds in any::<[u128; 4]>(),
            ports in any::<[u16; 2]>(),
            ip in (0u8..=255, any::<u8>(), any::<bool>(), any::<bool>()),
            payload_len in 0usize..1600,
            mtu in prop_oneof![1200u16..=9000, 0u16..1400],
            kind in 0usize..KINDS.len(),
            outbound in any::<bool>(),
            flow_hash in any::<u32>(),
            headroom in prop_oneof![Just(128usize), 0usize..80],
            vlan in proptest::option::of(0u16..4095),
            padding in 0usize..8,
        ) {
            let (inner_v6, outer_v6, mixed) = families;
            let (ttl, tos, df, udp) = ip;
            let [client, vip, rs, source] = seeds;
            let (client, vip) = (addr(inner_v6, client), addr(inner_v6, vip));
            let rs = addr(outer_v6, rs);
            // Now and then a source of the other family (refused).
            let source = addr(outer_v6 != (mixed && seeds[0] % 7 == 0), source);
            let mut b = PacketBuilder::new()
                .eth([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ip(client, vip)
                .ttl(ttl)
                .tos(tos)
                .df(df);
            if let Some(id) = vlan {
                b = b.vlan(id);
            }
            b = if udp {
                b.udp(ports[0], ports[1])
            } else {
                b.tcp(ports[0], ports[1]).flags(tcp::ACK)
            };
            let mut input = b.payload(&vec![0x5a; payload_len]).build();
            input.extend(std::iter::repeat_n(0u8, padding));
            let parsed = parse_frame(&input).expect("a valid frame");
            let (kind, csum) = KINDS[kind];
            let params = TunParams {
                direction: if outbound { Direction::Outbound } else { Direction::Inbound },
                real_server: rs,
                virtual_service: vip,
                tunnel: TunnelParams { kind, csum, source },
                flow_hash,
                director_mac: [2, 0, 0, 0, 0, 3],
                next_hop_mac: [2, 0, 0, 0, 0, 4],
                mtu,
            };
            let lean = run(xmit_to, &input, &parsed, &params, headroom);
            let reference = run(reference_xmit_to, &input, &parsed, &params, headroom);
            prop_assert_eq!(&lean.0, &reference.0);
            if reference.0.is_ok() {
                prop_assert_eq!(lean.1, reference.1);
                prop_assert_eq!(&lean.2, &reference.2);
            }
            // Where the hash is not read, any hash gives these bytes.
            if !reads_flow_hash(kind, rs.is_ipv6(), &parsed) {
                let other = TunParams { flow_hash: !flow_hash, ..params };
                let without = run(xmit_to, &input, &parsed, &other, headroom);
                prop_assert_eq!(&without, &lean);
            }
        }
    }

    /// The one-pass IPIP path is taken for the common case and writes
    /// the reference's bytes; where it declines, the frame is untouched.
    /// (`lean_path_gives_the_reference_bytes` covers it among all kinds;
    /// this checks that it is not bypassed.)
    #[test]
    fn one_pass_ipip_path_is_taken_and_writes_the_reference_bytes() {
        let mut next = crate::xmit::test_rng(0x2545_f491_4f6c_dd1d_u64);
        let (mut taken, mut declined) = (0, 0);
        for case in 0..3000u32 {
            let r = next();
            let b = crate::xmit::test_ipv4_frame(
                r,
                Ipv4Addr::new(203, 0, 113, 7),
                Ipv4Addr::new(192, 0, 2, 10),
            )
            .tos((r >> 56) as u8);
            let b = if r & (1 << 35) != 0 {
                b.udp(4000, 53)
            } else {
                b.tcp(4000, 80).flags(tcp::ACK)
            };
            let input = crate::xmit::test_frame_bytes(b, r);
            let Ok(parsed) = parse_frame(&input) else {
                continue;
            };
            let mtu = [parsed.ip_len + 20, parsed.ip_len + 19, 87, 1500][(r >> 52) as usize % 4];
            let headroom = [0usize, 19, 20, 128][(r >> 54) as usize % 4];
            let params = TunParams {
                direction: Direction::Inbound,
                real_server: IpAddr::V4(Ipv4Addr::new(10, 0, 0, (r >> 8) as u8)),
                virtual_service: parsed.daddr,
                tunnel: TunnelParams {
                    kind: TunnelType::Ipip,
                    csum: TunnelCsum::NoCsum,
                    source: IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)),
                },
                flow_hash: (r >> 16) as u32,
                director_mac: [2, 0, 0, 0, 0, 3],
                next_hop_mac: [2, 0, 0, 0, 0, 4],
                mtu,
            };
            let mut buf = vec![0xeeu8; headroom + input.len() + 64];
            buf[headroom..headroom + input.len()].copy_from_slice(&input);
            let mut frame = FrameBuf::new(&mut buf, headroom, input.len()).expect("fits");
            let (IpAddr::V4(src), IpAddr::V4(dst)) = (params.tunnel.source, params.real_server)
            else {
                unreachable!("IPv4 ends")
            };
            if ipip_v4_fast(&mut frame, &parsed, (src, dst), &params) {
                taken += 1;
                let reference = run(reference_xmit_to, &input, &parsed, &params, headroom);
                assert_eq!(reference.0, Ok(XmitOutcome::Forward), "case {case}");
                assert_eq!(frame.start(), reference.1, "case {case}");
                assert_eq!(frame.frame(), &reference.2[..], "case {case}");
            } else {
                declined += 1;
                assert_eq!(
                    (frame.start(), frame.frame()),
                    (headroom, &input[..]),
                    "case {case}"
                );
            }
        }
        assert!(
            taken > 200 && declined > 500,
            "taken {taken}, declined {declined}"
        );
    }

    #[test]
    fn outer_ipv4_header_checksum_verifies() {
        let input = PacketBuilder::new()
            .eth([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ip(
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            )
            .tos(0xbb)
            .df(false)
            .tcp(40000, 80)
            .payload(&[1, 2, 3])
            .build();
        let parsed = parse_frame(&input).expect("a valid frame");
        let params = TunParams {
            direction: Direction::Inbound,
            real_server: IpAddr::V4(Ipv4Addr::new(255, 255, 255, 254)),
            virtual_service: parsed.daddr,
            tunnel: TunnelParams {
                kind: TunnelType::Ipip,
                csum: TunnelCsum::NoCsum,
                source: IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
            },
            flow_hash: 0xffff_ffff,
            director_mac: [2, 0, 0, 0, 0, 3],
            next_hop_mac: [2, 0, 0, 0, 0, 4],
            mtu: 1500,
        };
        let (result, _, out) = run(xmit_to, &input, &parsed, &params, 64);
        assert_eq!(result, Ok(XmitOutcome::Forward));
        let outer = &out[14..34];
        assert_eq!(checksum::of(outer), 0, "header sums to 0xffff");
        assert_eq!(outer[1], 0xba, "CE became ECT(0)");
        assert_eq!(
            &outer[4..8],
            &[0xff, 0xff, 0, 0],
            "ident from the hash, no DF"
        );
    }
}
