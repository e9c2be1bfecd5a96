//! Direct routing (`-g`, IPVS "Route"): the IP packet is untouched but
//! for its TTL; the frame is re-addressed to the real server's MAC.
//!
//! TTL: the kernel's `ip_vs_dr_xmit` routes through `__ip_vs_get_out_rt`,
//! which (since Linux 5.3) decrements the TTL of every packet it sends
//! off-box and answers TTL ≤ 1 with ICMP time exceeded; we do the same,
//! so DR output differs from the input in the MACs, the TTL and the IPv4
//! header checksum only.
//!
//! The method reads only the egress MACs and MTU of its parameters:
//! [`xmit_inbound`] takes just those (the engine's packet path builds no
//! [`XmitParams`] for DR), [`xmit`] the whole block.

use super::{
    check_mtu_from, decrement_ttl_from, set_macs, trim_padding, Direction, FrameBuf, XmitError,
    XmitOutcome, XmitParams,
};
use crate::wire::ethernet::Mac;
use crate::wire::ParsedFrame;

/// Forward `frame` to the real server by MAC rewrite.
pub fn xmit(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<XmitOutcome, XmitError> {
    let direction = params.direction;
    forward(
        frame,
        parsed,
        params.director_mac,
        params.next_hop_mac,
        params.mtu,
        || match direction {
            Direction::Inbound => parsed.daddr,
            Direction::Outbound => params.virtual_service.ip(),
        },
    )
}

/// [`xmit`] for a client's packet (inbound, the only way DR forwards)
/// given only what the method reads: the director's MAC on the egress
/// port, the real server's MAC and the egress MTU.
#[inline]
pub fn xmit_inbound(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    director_mac: Mac,
    next_hop_mac: Mac,
    mtu: u16,
) -> Result<XmitOutcome, XmitError> {
    forward(frame, parsed, director_mac, next_hop_mac, mtu, || {
        parsed.daddr
    })
}

#[inline(always)]
fn forward(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    director_mac: Mac,
    next_hop_mac: Mac,
    mtu: u16,
    icmp_source: impl FnOnce() -> std::net::IpAddr,
) -> Result<XmitOutcome, XmitError> {
    trim_padding(frame, parsed)?;
    if let Some(outcome) = decrement_ttl_from(frame, parsed, director_mac)? {
        return Ok(outcome);
    }
    let ip_len = usize::from(parsed.ip_len);
    if let Some(outcome) = check_mtu_from(
        frame,
        parsed,
        director_mac,
        icmp_source,
        ip_len,
        usize::from(mtu),
        u32::from(mtu),
    )? {
        return Ok(outcome);
    }
    set_macs(frame.frame_mut(), director_mac, next_hop_mac)?;
    Ok(XmitOutcome::Forward)
}
