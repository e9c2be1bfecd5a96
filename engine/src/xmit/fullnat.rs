//! Full NAT: both ends rewritten, so the real server needs no route
//! back through the director for the client's address.
//!
//! Inbound: source → the director's local address and port, destination
//! → the real server's. Outbound (reply): source → the virtual service,
//! destination → the client. Checksums fixed incrementally; TTL
//! decremented both ways, as for NAT.
//!
//! TOA (DPVS's "TCP option address"): so that the real server can learn
//! the client's address, an inbound TCP packet flagged by the engine
//! ([`XmitParams::insert_toa`]: the SYN and the first ACK) gets an
//! option `kind 254, len 8, port(2), IPv4(4)` (IPv6 client: `len 20,
//! port(2), IPv6(16)`) when the TCP header stays within 60 bytes and the
//! packet within the MTU; otherwise the packet goes on without it. DPVS
//! appends the option after the existing ones; we insert it first, right
//! after the fixed header, so that an end-of-list option in the original
//! cannot hide it. The headers move into the headroom (or, without
//! headroom, the rest moves into the tailroom); data offset, IP length and
//! both checksums are fixed incrementally (RFC 1624: the option's words,
//! the data offset and the pseudo-header length; a segment that arrived
//! with a bad checksum leaves with a bad one, as with every rewrite).

use std::net::{IpAddr, SocketAddr};

use super::{
    check_mtu_from, decrement_ttl_from, rewrite_endpoint, rewrite_ipv4_tcp_udp_both, same_family,
    sctp_fix_checksum, set_macs, trim_padding, Direction, Endpoint, FrameBuf, XmitError,
    XmitOutcome, XmitParams,
};
use crate::wire::ethernet::Mac;
use crate::wire::{self, checksum, ipv4, ipv6, proto, tcp, Network, ParsedFrame};

/// Length of the IPv4 TOA option.
pub const TOA_V4_LEN: usize = 8;
/// Length of the IPv6 TOA option.
pub const TOA_V6_LEN: usize = 20;

/// Rewrite `frame` for its direction and forward it.
pub fn xmit(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<XmitOutcome, XmitError> {
    xmit_to(
        frame,
        parsed,
        &FullNatParams {
            direction: params.direction,
            real_server: params.real_server,
            local: params.local,
            client: params.client,
            virtual_service: params.virtual_service,
            director_mac: params.director_mac,
            next_hop_mac: params.next_hop_mac,
            mtu: params.mtu,
            insert_toa: params.insert_toa,
        },
    )
}

/// What full NAT reads of [`XmitParams`]: the four endpoints, the egress
/// MACs and MTU, and whether to insert the TOA option (the engine builds
/// it straight from the connection, without the tunnel parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullNatParams {
    /// Inbound (client → real server) or outbound (the reply).
    pub direction: Direction,
    /// The real server's address and port (inbound destination).
    pub real_server: SocketAddr,
    /// The director's local address and port (inbound source).
    pub local: SocketAddr,
    /// The client's address and port (outbound destination; the TOA).
    pub client: SocketAddr,
    /// The virtual service (outbound source).
    pub virtual_service: SocketAddr,
    /// Source MAC of the egress port.
    pub director_mac: Mac,
    /// Destination MAC: the next hop's.
    pub next_hop_mac: Mac,
    /// MTU of the egress port.
    pub mtu: u16,
    /// Insert the TOA option (inbound TCP only; see the module's doc).
    pub insert_toa: bool,
}

/// [`xmit`] given only what full NAT reads ([`FullNatParams`]).
#[inline]
pub fn xmit_to(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &FullNatParams,
) -> Result<XmitOutcome, XmitError> {
    trim_padding(frame, parsed)?;
    if parsed.is_fragment && !parsed.is_first_fragment {
        return Err(XmitError::Fragment);
    }
    for addr in [
        params.real_server,
        params.local,
        params.client,
        params.virtual_service,
    ] {
        same_family(parsed.daddr, addr.ip())?;
    }
    if let Some(outcome) = decrement_ttl_from(frame, parsed, params.director_mac)? {
        return Ok(outcome);
    }
    let mtu = usize::from(params.mtu);
    let ip_len = usize::from(parsed.ip_len);
    if let Some(outcome) = check_mtu_from(
        frame,
        parsed,
        params.director_mac,
        || match params.direction {
            Direction::Inbound => parsed.daddr,
            Direction::Outbound => params.virtual_service.ip(),
        },
        ip_len,
        mtu,
        u32::from(params.mtu),
    )? {
        return Ok(outcome);
    }
    let (src, dst) = match params.direction {
        Direction::Inbound => (params.local, params.real_server),
        Direction::Outbound => (params.virtual_service, params.client),
    };
    let l3 = usize::from(parsed.l3);
    let l4 = usize::from(parsed.l4);
    let has_ports = parsed.has_ports();
    let both = match (src.ip(), dst.ip()) {
        (IpAddr::V4(src_ip), IpAddr::V4(dst_ip)) => rewrite_ipv4_tcp_udp_both(
            frame.frame_mut(),
            l3,
            l4,
            parsed.protocol,
            (src_ip, has_ports.then_some(src.port())),
            (dst_ip, has_ports.then_some(dst.port())),
        ),
        _ => false,
    };
    if !both {
        for (which, target) in [(Endpoint::Source, src), (Endpoint::Destination, dst)] {
            let port = has_ports.then_some(target.port());
            rewrite_endpoint(
                frame.frame_mut(),
                l3,
                l4,
                parsed.protocol,
                which,
                target.ip(),
                port,
                true,
            )?;
        }
    }
    if parsed.protocol == proto::SCTP {
        // No TOA for SCTP; the new ports need a new CRC32c.
        sctp_fix_checksum(frame.frame_mut(), parsed)?;
    }
    if params.insert_toa
        && params.direction == Direction::Inbound
        && parsed.protocol == proto::TCP
        && has_ports
        && !parsed.is_fragment
    {
        insert_toa(frame, parsed, params.client, mtu)?;
    }
    set_macs(frame.frame_mut(), params.director_mac, params.next_hop_mac)?;
    Ok(XmitOutcome::Forward)
}

/// Insert the TOA option for `client` if it fits, into a packet whose
/// addresses were already rewritten (its TCP checksum right for them).
/// Returns whether it was inserted.
fn insert_toa(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    client: SocketAddr,
    mtu: usize,
) -> Result<bool, XmitError> {
    let mut option = [0u8; TOA_V6_LEN];
    option[0] = tcp::OPT_TOA;
    option[2..4].copy_from_slice(&client.port().to_be_bytes());
    let toa_len = match client.ip() {
        IpAddr::V4(a) => {
            option[4..8].copy_from_slice(&a.octets());
            TOA_V4_LEN
        }
        IpAddr::V6(a) => {
            option[4..20].copy_from_slice(&a.octets());
            TOA_V6_LEN
        }
    };
    option[1] = toa_len as u8;
    let l3 = usize::from(parsed.l3);
    let l4 = usize::from(parsed.l4);
    let tcp_hdr_len = usize::from(parsed.payload).saturating_sub(l4);
    let ip_len = usize::from(parsed.ip_len);
    if tcp_hdr_len + toa_len > tcp::MAX_HEADER_LEN || ip_len + toa_len > mtu {
        return Ok(false);
    }
    let at = l4 + tcp::MIN_HEADER_LEN;
    let len = frame.len();
    if frame.headroom() >= toa_len {
        frame.push_front(toa_len)?;
        frame.frame_mut().copy_within(toa_len..toa_len + at, 0);
    } else if frame.tailroom() >= toa_len {
        let (buf, start) = frame.raw();
        buf.copy_within(start + at..start + len, start + at + toa_len);
        frame.set(start, len + toa_len);
    } else {
        return Ok(false);
    }
    let out = frame.frame_mut();
    wire::write_bytes(out, at, &option[..toa_len])?;
    let new_ip_len = ip_len + toa_len;
    match parsed.network {
        Network::Ipv4 => {
            let ip = out.get_mut(l3..).ok_or(XmitError::Truncated)?;
            ipv4::Packet::new_checked(ip)?.rewrite_total_len(new_ip_len as u16);
        }
        _ => {
            let ip = out.get_mut(l3..).ok_or(XmitError::Truncated)?;
            let mut ip = ipv6::Packet::new_checked(ip)?;
            let payload_len = ip.payload_len() + toa_len as u16;
            ip.set_payload_len(payload_len);
        }
    }
    let segment = out
        .get_mut(l4..l3 + new_ip_len)
        .ok_or(XmitError::Truncated)?;
    let seg_len = segment.len();
    if seg_len < tcp::MIN_HEADER_LEN + toa_len {
        return Err(XmitError::Truncated);
    }
    // RFC 1624, three changes to a checksum that was right for the
    // segment before the insertion (the endpoint rewrite kept it so): the
    // option's words appear (at an even offset, and of even length, so
    // every later word keeps its alignment), the data offset grows, and
    // so does the pseudo-header's TCP length.
    // Bytes 12..14: data offset and flags (in bounds: checked above).
    let offset_word = |seg: &[u8]| u16::from_be_bytes([seg[12], seg[13]]);
    let old_offset_word = offset_word(segment);
    let old_check = tcp::Packet::new_unchecked(&*segment).checksum();
    tcp::Packet::new_unchecked(&mut *segment).set_header_len(tcp_hdr_len + toa_len);
    // HC' = ~(~HC + ~m + m') summed once: the option's words (m = 0 adds
    // nothing), the data offset word, the pseudo-header length. At most
    // six 16-bit terms: no overflow.
    let acc = u32::from(!old_check)
        + u32::from(!old_offset_word)
        + u32::from(offset_word(segment))
        + u32::from(!((seg_len - toa_len) as u16))
        + u32::from(seg_len as u16)
        + option_sum(&option, toa_len);
    tcp::Packet::new_unchecked(segment).set_checksum(checksum::finish(acc));
    Ok(true)
}

/// The one's-complement sum of the TOA option's words, folded to 16
/// bits: for the IPv4 option its four words added directly (no slice
/// walk), for the IPv6 one [`checksum::add`]. Same value either way (the
/// sum is never zero: the kind byte is 254).
#[inline]
fn option_sum(option: &[u8; TOA_V6_LEN], toa_len: usize) -> u32 {
    if toa_len == TOA_V4_LEN {
        let word = |at: usize| u32::from(u16::from_be_bytes([option[at], option[at + 1]]));
        // Four 16-bit words: one fold reaches 17 bits, two reach 16.
        let sum = word(0) + word(2) + word(4) + word(6);
        let sum = (sum & 0xffff) + (sum >> 16);
        (sum & 0xffff) + (sum >> 16)
    } else {
        checksum::add(0, option.get(..toa_len).unwrap_or(option))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_sum_matches_the_slice_sum() {
        for (port, addr) in [
            (0u16, [0u8; 4]),
            (0xffff, [0xff; 4]),
            (1234, [10, 0, 0, 1]),
            (0x00ff, [0xff, 0x00, 0xff, 0x01]),
            (0xfe08, [0x01, 0xf7, 0xff, 0xff]),
        ] {
            let mut option = [0u8; TOA_V6_LEN];
            option[0] = tcp::OPT_TOA;
            option[1] = TOA_V4_LEN as u8;
            option[2..4].copy_from_slice(&port.to_be_bytes());
            option[4..8].copy_from_slice(&addr);
            assert_eq!(
                option_sum(&option, TOA_V4_LEN),
                checksum::add(0, &option[..TOA_V4_LEN]),
                "port {port} addr {addr:?}"
            );
            option[1] = TOA_V6_LEN as u8;
            option[8..20].copy_from_slice(&[0xab; 12]);
            assert_eq!(
                option_sum(&option, TOA_V6_LEN),
                checksum::add(0, &option[..TOA_V6_LEN])
            );
        }
    }
}
