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
    check_mtu_from, checked_ipv4_packet, decrement_ttl_from, set_macs, trim_padding, Direction,
    FrameBuf, XmitError, XmitOutcome, XmitParams,
};
use crate::wire::ethernet::Mac;
use crate::wire::{ipv4, Network, ParsedFrame};

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
    if ipv4_fast(frame, parsed, director_mac, next_hop_mac, mtu) {
        return Ok(XmitOutcome::Forward);
    }
    forward(frame, parsed, director_mac, next_hop_mac, mtu, || {
        parsed.daddr
    })
}

/// The common case in one pass: an IPv4 packet whose TTL stays above 0
/// and that fits the MTU gets the padding trimmed, the TTL decremented
/// (with [`forward`]'s checksum update: the same bytes) and the MACs
/// set, after one check of the header; `false` (nothing written): the
/// step-by-step path decides, errors included.
#[inline(always)]
fn ipv4_fast(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    director_mac: Mac,
    next_hop_mac: Mac,
    mtu: u16,
) -> bool {
    if parsed.network != Network::Ipv4 || parsed.ttl <= 1 || parsed.ip_len > mtu {
        return false;
    }
    if checked_ipv4_packet(frame, parsed).is_none() {
        return false;
    }
    let (l3, end) = (usize::from(parsed.l3), parsed.ip_end());
    let bytes = frame.frame_mut();
    let Some(header) = bytes
        .get_mut(l3..l3 + ipv4::MIN_HEADER_LEN)
        .and_then(|h| <&mut [u8; ipv4::MIN_HEADER_LEN]>::try_from(h).ok())
    else {
        return false;
    };
    ipv4::decrement_ttl_in(header);
    // l3 >= 14: the Ethernet header is there.
    if let Some(macs) = bytes.get_mut(..12) {
        macs[..6].copy_from_slice(&next_hop_mac);
        macs[6..].copy_from_slice(&director_mac);
    }
    frame.truncate(end);
    true
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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::parse_frame;

    /// The one-pass IPv4 path writes exactly the bytes (and gives the
    /// outcome) of the step-by-step path: TCP, UDP and ICMP, IP options,
    /// every TTL edge, MTUs around the packet's length, padded frames,
    /// fragments.
    #[test]
    fn one_pass_ipv4_path_writes_what_the_general_path_writes() {
        let mut next = crate::xmit::test_rng(0x9e37_79b9_7f4a_7c15_u64);
        let mut fast_taken = 0;
        for case in 0..3000u32 {
            let r = next();
            let b = crate::xmit::test_ipv4_frame(
                r,
                Ipv4Addr::new(203, 0, 113, 7),
                Ipv4Addr::new(192, 0, 2, 10),
            );
            let b = match (r >> 34) % 3 {
                0 => b.udp(4000, 53),
                1 => b.icmp(8, 0, 0),
                _ => b.tcp(4000, 80).flags(0x10),
            };
            let bytes = crate::xmit::test_frame_bytes(b, r);
            let Ok(parsed) = parse_frame(&bytes) else {
                continue;
            };
            let ip_len = parsed.ip_len;
            let mtu = match (r >> 51) % 3 {
                0 => ip_len,
                1 => ip_len - 1,
                _ => 1500,
            };
            let (director, next_hop) = ([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8]);
            let mut a = bytes.clone();
            let mut b = bytes.clone();
            let (len_a, len_b) = (a.len(), b.len());
            let mut frame_a = FrameBuf::new(&mut a, 0, len_a).expect("fits");
            let mut frame_b = FrameBuf::new(&mut b, 0, len_b).expect("fits");
            let one_pass = xmit_inbound(&mut frame_a, &parsed, director, next_hop, mtu);
            let general = forward(&mut frame_b, &parsed, director, next_hop, mtu, || {
                parsed.daddr
            });
            assert_eq!(one_pass, general, "case {case}");
            assert_eq!(frame_a.frame(), frame_b.frame(), "case {case}");
            let mut c = bytes.clone();
            let len_c = c.len();
            let mut frame_c = FrameBuf::new(&mut c, 0, len_c).expect("fits");
            if ipv4_fast(&mut frame_c, &parsed, director, next_hop, mtu) {
                fast_taken += 1;
            }
        }
        // The one-pass path was exercised, not bypassed.
        assert!(fast_taken > 300, "one-pass path taken {fast_taken} times");
    }
}
