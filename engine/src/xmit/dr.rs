//! Direct routing (`-g`, IPVS "Route"): the IP packet is untouched but
//! for its TTL; the frame is re-addressed to the real server's MAC.
//!
//! TTL: the kernel's `ip_vs_dr_xmit` routes through `__ip_vs_get_out_rt`,
//! which (since Linux 5.3) decrements the TTL of every packet it sends
//! off-box and answers TTL ≤ 1 with ICMP time exceeded; we do the same,
//! so DR output differs from the input in the MACs, the TTL and the IPv4
//! header checksum only.

use super::{
    check_mtu, decrement_ttl, set_macs, trim_padding, FrameBuf, XmitError, XmitOutcome, XmitParams,
};
use crate::wire::ParsedFrame;

/// Forward `frame` to the real server by MAC rewrite.
pub fn xmit(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<XmitOutcome, XmitError> {
    trim_padding(frame, parsed)?;
    if let Some(outcome) = decrement_ttl(frame, parsed, params)? {
        return Ok(outcome);
    }
    let mtu = usize::from(params.mtu);
    let ip_len = usize::from(parsed.ip_len);
    if let Some(outcome) = check_mtu(frame, parsed, params, ip_len, mtu, u32::from(params.mtu))? {
        return Ok(outcome);
    }
    set_macs(frame.frame_mut(), params.director_mac, params.next_hop_mac)?;
    Ok(XmitOutcome::Forward)
}
