//! ICMP errors that quote a packet of a tracked connection.
//!
//! As the kernel's `ip_vs_in_icmp` / `ip_vs_out_icmp`: for DR and TUN
//! connections the error is forwarded by the connection's own method
//! (call [`super::dr::xmit`] or [`super::tunnel::xmit`] on it, nothing
//! else changes). For NAT and full NAT the addresses that the connection
//! translates are translated in the outer header and in the quoted one,
//! then the ICMP checksum is recomputed over the whole message (and the
//! quoted IPv4 header's checksum fixed; the quoted transport checksum is
//! left alone, as `ip_vs_nat_icmp` does):
//!
//! - NAT inbound (an error from the client side about a reply VIP →
//!   client): outer destination, quoted source address and port → the
//!   real server's.
//! - NAT outbound (an error from the real server's side about a packet
//!   client → real server): outer source, quoted destination address and
//!   port → the virtual service's.
//! - Full NAT inbound (about a reply VIP:vport → client:cport): outer
//!   source → local address, outer destination → real server; quoted
//!   source → real server:port, quoted destination → local address:port.
//! - Full NAT outbound (about local:lport → RS:rport): outer source →
//!   VIP, outer destination → client; quoted source → client:cport,
//!   quoted destination → VIP:vport.
//!
//! The TTL is decremented as for any forwarded packet; an expired or
//! too-big ICMP error is dropped, never answered.

use std::net::SocketAddr;

use super::{
    check_mtu, decrement_ttl, rewrite_endpoint, same_family, set_macs, trim_padding, Direction,
    Endpoint, FrameBuf, XmitError, XmitOutcome, XmitParams,
};
use crate::wire::{self, checksum, proto, Network, ParsedFrame};

/// What to put where: `None` leaves that address alone.
#[derive(Debug, Clone, Copy)]
struct Translation {
    outer_src: Option<SocketAddr>,
    outer_dst: Option<SocketAddr>,
    inner_src: Option<SocketAddr>,
    inner_dst: Option<SocketAddr>,
}

/// Translate an ICMP error about a NAT connection and forward it.
pub fn nat_xmit(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<XmitOutcome, XmitError> {
    let translation = match params.direction {
        Direction::Inbound => Translation {
            outer_src: None,
            outer_dst: Some(params.real_server),
            inner_src: Some(params.real_server),
            inner_dst: None,
        },
        Direction::Outbound => Translation {
            outer_src: Some(params.virtual_service),
            outer_dst: None,
            inner_src: None,
            inner_dst: Some(params.virtual_service),
        },
    };
    translate(frame, parsed, params, translation)
}

/// Translate an ICMP error about a full-NAT connection and forward it.
pub fn fullnat_xmit(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<XmitOutcome, XmitError> {
    let translation = match params.direction {
        Direction::Inbound => Translation {
            outer_src: Some(params.local),
            outer_dst: Some(params.real_server),
            inner_src: Some(params.real_server),
            inner_dst: Some(params.local),
        },
        Direction::Outbound => Translation {
            outer_src: Some(params.virtual_service),
            outer_dst: Some(params.client),
            inner_src: Some(params.client),
            inner_dst: Some(params.virtual_service),
        },
    };
    translate(frame, parsed, params, translation)
}

fn translate(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
    translation: Translation,
) -> Result<XmitOutcome, XmitError> {
    let error = parsed.icmp_error.ok_or(XmitError::NotIcmpError)?;
    trim_padding(frame, parsed)?;
    for addr in [
        translation.outer_src,
        translation.outer_dst,
        translation.inner_src,
        translation.inner_dst,
    ]
    .into_iter()
    .flatten()
    {
        same_family(parsed.daddr, addr.ip())?;
    }
    if let Some(outcome) = decrement_ttl(frame, parsed, params)? {
        return Ok(outcome);
    }
    let mtu = usize::from(params.mtu);
    if let Some(outcome) = check_mtu(frame, parsed, params, parsed.ip_len.into(), mtu, mtu as u32)?
    {
        return Ok(outcome);
    }
    let l3 = usize::from(parsed.l3);
    let l4 = usize::from(parsed.l4);
    let inner = error.inner;
    let ip_end = parsed.ip_end();
    let out = frame.frame_mut();
    let outer = [
        (Endpoint::Source, translation.outer_src),
        (Endpoint::Destination, translation.outer_dst),
    ];
    for (which, target) in outer {
        if let Some(target) = target {
            rewrite_endpoint(
                out,
                l3,
                l4,
                parsed.protocol,
                which,
                target.ip(),
                None,
                false,
            )?;
        }
    }
    // Quoted ports are rewritten only if the quote holds them.
    let ports_quoted = matches!(inner.protocol, proto::TCP | proto::UDP | proto::SCTP)
        && usize::from(inner.l4) + 4 <= ip_end
        && (inner.sport != 0 || inner.dport != 0);
    let quoted = [
        (Endpoint::Source, translation.inner_src),
        (Endpoint::Destination, translation.inner_dst),
    ];
    for (which, target) in quoted {
        if let Some(target) = target {
            rewrite_endpoint(
                out,
                usize::from(inner.l3),
                usize::from(inner.l4),
                inner.protocol,
                which,
                target.ip(),
                ports_quoted.then_some(target.port()),
                false,
            )?;
        }
    }
    // The ICMP checksum over the whole message (pseudo-header for ICMPv6).
    wire::write_u16(out, l4 + wire::icmp::CHECKSUM_OFFSET, 0)?;
    let message = out.get(l4..ip_end).ok_or(XmitError::Truncated)?;
    let acc = match parsed.network {
        Network::Ipv6 => {
            let src = translation.outer_src.map_or(parsed.saddr, |a| a.ip());
            let dst = translation.outer_dst.map_or(parsed.daddr, |a| a.ip());
            checksum::pseudo_header(src, dst, proto::ICMPV6, message.len() as u32)
        }
        _ => 0,
    };
    let check = checksum::finish(checksum::add(acc, message));
    wire::write_u16(out, l4 + wire::icmp::CHECKSUM_OFFSET, check)?;
    set_macs(out, params.director_mac, params.next_hop_mac)?;
    Ok(XmitOutcome::Forward)
}
