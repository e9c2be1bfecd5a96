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

use super::{
    check_mtu, decrement_ttl, rewrite_endpoint, same_family, sctp_fix_checksum, set_macs,
    trim_padding, Direction, Endpoint, FrameBuf, XmitError, XmitOutcome, XmitParams,
};
use crate::wire::{proto, ParsedFrame};

/// Rewrite `frame` for its direction and forward it.
pub fn xmit(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<XmitOutcome, XmitError> {
    trim_padding(frame, parsed)?;
    if parsed.is_fragment && !parsed.is_first_fragment {
        return Err(XmitError::Fragment);
    }
    same_family(parsed.daddr, params.real_server.ip())?;
    same_family(parsed.daddr, params.virtual_service.ip())?;
    if let Some(outcome) = decrement_ttl(frame, parsed, params)? {
        return Ok(outcome);
    }
    let mtu = usize::from(params.mtu);
    let ip_len = usize::from(parsed.ip_len);
    if let Some(outcome) = check_mtu(frame, parsed, params, ip_len, mtu, u32::from(params.mtu))? {
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
