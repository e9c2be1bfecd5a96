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
//!
//! Unfragmented IPv4 TCP/UDP with every endpoint IPv4 takes a one-pass
//! fast path ([`xmit_v4`], [`FullNatV4`]): every check first, then all
//! fields written with one RFC 1624 sum per checksum, the same bytes as
//! the general path (tested against it); anything it declines (TTL ≤ 1,
//! too big, TOA without headroom, IPv6, SCTP, fragments) takes the
//! general path untouched.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use super::{
    rewrite_endpoint, rewrite_ipv4_tcp_udp_both, same_family, sctp_fix_checksum, set_macs,
    trim_padding, ttl_then_mtu, Direction, Endpoint, FrameBuf, XmitError, XmitOutcome, XmitParams,
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
    if let Some(v4) = params.v4() {
        if xmit_ipv4_fast(frame, parsed, &v4).is_some() {
            return Ok(XmitOutcome::Forward);
        }
    }
    xmit_general(frame, parsed, params)
}

/// What full NAT's IPv4 fast path reads: the direction, the rewritten
/// source and destination, the client (for the TOA option), the egress
/// MACs and MTU. Smaller than [`FullNatParams`], so that the engine can
/// build it straight from an IPv4 connection ([`xmit_v4`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullNatV4 {
    /// Inbound (client → real server) or outbound (the reply).
    pub inbound: bool,
    /// The new source: the local address inbound, the virtual service
    /// outbound.
    pub src: SocketAddrV4,
    /// The new destination: the real server inbound, the client outbound.
    pub dst: SocketAddrV4,
    /// The client's address and port (the TOA option's content).
    pub client: SocketAddrV4,
    /// Source MAC of the egress port.
    pub director_mac: Mac,
    /// Destination MAC: the next hop's.
    pub next_hop_mac: Mac,
    /// MTU of the egress port.
    pub mtu: u16,
    /// Insert the TOA option (inbound TCP only; see the module's doc).
    pub insert_toa: bool,
}

impl FullNatParams {
    /// The fast path's view of these parameters, if all four endpoints
    /// are IPv4.
    #[inline]
    pub fn v4(&self) -> Option<FullNatV4> {
        let (
            SocketAddr::V4(real),
            SocketAddr::V4(local),
            SocketAddr::V4(client),
            SocketAddr::V4(vs),
        ) = (
            self.real_server,
            self.local,
            self.client,
            self.virtual_service,
        )
        else {
            return None;
        };
        let inbound = self.direction == Direction::Inbound;
        let (src, dst) = if inbound { (local, real) } else { (vs, client) };
        Some(FullNatV4 {
            inbound,
            src,
            dst,
            client,
            director_mac: self.director_mac,
            next_hop_mac: self.next_hop_mac,
            mtu: self.mtu,
            insert_toa: self.insert_toa,
        })
    }
}

/// The IPv4 fast path alone, for a connection whose four endpoints are
/// IPv4 (the caller checked): `true` if it rewrote and forwards the frame
/// (exactly as [`xmit_to`] would), `false` with the frame untouched if
/// the packet needs [`xmit_to`] (not unfragmented TCP/UDP, TTL ≤ 1, too
/// big, headers out of bounds, TOA without headroom).
#[inline]
pub fn xmit_v4(frame: &mut FrameBuf, parsed: &ParsedFrame, params: &FullNatV4) -> bool {
    xmit_ipv4_fast(frame, parsed, params).is_some()
}

/// [`xmit_to`] for every packet: each step checked and written in turn
/// (the frames [`xmit_ipv4_fast`] leaves alone, and the reference it is
/// tested against). Kept out of line, so that the fast path's code stays
/// compact.
#[inline(never)]
fn xmit_general(
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
        insert_toa(frame, parsed, params.client, usize::from(params.mtu))?;
    }
    set_macs(frame.frame_mut(), params.director_mac, params.next_hop_mac)?;
    Ok(XmitOutcome::Forward)
}

/// The common case of [`xmit_to`] in one pass: an unfragmented IPv4
/// TCP/UDP packet, every endpoint IPv4, TTL > 1, within the MTU, its
/// headers in bounds (and, if the TOA option is due and fits, headroom
/// for it). Every check comes before any write; `None` (frame untouched)
/// sends the caller to the general path. The result is byte for byte
/// that of the general path: TTL, addresses, ports, IPv4 total length,
/// data offset and TOA words each enter one RFC 1624 sum per checksum
/// (one's-complement addition is associative and its fold is exact, so
/// one sum equals the general path's chain of updates; IPv4 UDP keeps
/// its two steps for the "0 means none, never write 0" rule).
#[inline]
fn xmit_ipv4_fast(frame: &mut FrameBuf, parsed: &ParsedFrame, params: &FullNatV4) -> Option<()> {
    if parsed.network != Network::Ipv4 || parsed.is_fragment || parsed.ttl <= 1 {
        return None;
    }
    let tcp = match parsed.protocol {
        proto::TCP => true,
        proto::UDP => false,
        _ => return None,
    };
    let FullNatV4 {
        inbound,
        src,
        dst,
        client,
        ..
    } = *params;
    let l3 = usize::from(parsed.l3);
    let l4 = usize::from(parsed.l4);
    let payload = usize::from(parsed.payload);
    let ip_len = usize::from(parsed.ip_len);
    let end = l3 + ip_len;
    let mtu = usize::from(params.mtu);
    let check_at = if tcp {
        tcp::CHECKSUM_OFFSET
    } else {
        wire::udp::CHECKSUM_OFFSET
    };
    if !(wire::ethernet::HEADER_LEN..=18).contains(&l3)
        || l3 + ipv4::MIN_HEADER_LEN > l4
        || l4 + check_at + 2 > payload
        || payload > end
        || end > frame.len()
        || ip_len > mtu
    {
        return None;
    }
    // The TOA option: due (inbound TCP, flagged) and fitting (header ≤ 60
    // bytes, packet within the MTU); inserted here only into headroom.
    let tcp_hdr_len = payload - l4;
    let toa = params.insert_toa
        && inbound
        && tcp
        && tcp_hdr_len + TOA_V4_LEN <= tcp::MAX_HEADER_LEN
        && ip_len + TOA_V4_LEN <= mtu;
    if toa && (frame.headroom() < TOA_V4_LEN || tcp_hdr_len < tcp::MIN_HEADER_LEN) {
        return None;
    }
    let job = Ipv4Job {
        src,
        dst,
        client,
        tcp,
        l3,
        l4,
        ip_len,
        end,
        tcp_hdr_len,
        check_at,
    };
    if toa {
        rewrite_ipv4::<true>(frame, params, &job)
    } else {
        rewrite_ipv4::<false>(frame, params, &job)
    }
}

/// What [`xmit_ipv4_fast`] checked and [`rewrite_ipv4`] writes.
struct Ipv4Job {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    client: SocketAddrV4,
    tcp: bool,
    l3: usize,
    l4: usize,
    ip_len: usize,
    end: usize,
    tcp_hdr_len: usize,
    check_at: usize,
}

/// [`xmit_ipv4_fast`]'s writes, with (`TOA`) or without the option: one
/// copy of the code for each, so that the common case carries no offset
/// arithmetic for the option. `None` (frame untouched) only if a bound
/// the caller checked does not hold.
#[inline(always)]
fn rewrite_ipv4<const TOA: bool>(
    frame: &mut FrameBuf,
    params: &FullNatV4,
    job: &Ipv4Job,
) -> Option<()> {
    let &Ipv4Job {
        src,
        dst,
        client,
        tcp,
        l3,
        l4,
        ip_len,
        end,
        tcp_hdr_len,
        check_at,
    } = job;
    let toa = TOA;
    // The frame up to the end of the IP packet, preceded by the option's
    // room when the TOA is inserted (offsets below are `base +` the
    // parse's).
    let base = if toa { TOA_V4_LEN } else { 0 };
    let (raw, start) = frame.raw();
    let new_start = start.checked_sub(base)?;
    let pkt = raw.get_mut(new_start..start + end)?;
    let (head, segment) = pkt.split_at_mut(base + l4);
    let version_ihl = *head.get(base + l3)?;
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < ipv4::MIN_HEADER_LEN || l4 - l3 < ihl {
        return None;
    }
    let ip: &mut [u8; ipv4::MIN_HEADER_LEN] = head
        .get_mut(base + l3..base + l3 + ipv4::MIN_HEADER_LEN)?
        .try_into()
        .ok()?;
    let l4_hdr = segment.get_mut(..check_at + 2)?;

    // Checked: from here on everything is written.
    let word = |b: &[u8], at: usize| u32::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let quad = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    // ~m + m' for a 32-bit field: at most 4 × 0xffff.
    let change32 =
        |old: u32, new: u32| (!old >> 16) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    let change16 = |old: u32, new: u32| (!old & 0xffff) + new;
    let (new_s, new_d) = (u32::from(*src.ip()), u32::from(*dst.ip()));
    let (old_s, old_d) = (quad(ip, 12), quad(ip, 16));
    let (sport, dport) = (src.port(), dst.port());
    let (old_sport, old_dport) = (word(l4_hdr, 0), word(l4_hdr, 2));

    // IPv4 header: TTL, both addresses, the total length with TOA.
    let old_ttl_word = word(ip, 8);
    let mut ip_acc = u32::from(!(word(ip, 10) as u16))
        + change16(old_ttl_word, old_ttl_word.wrapping_sub(0x0100) & 0xffff)
        + change32(old_s, new_s)
        + change32(old_d, new_d);
    if toa {
        let new_ip_len = (ip_len + TOA_V4_LEN) as u16;
        ip_acc += change16(word(ip, 2), u32::from(new_ip_len));
        ip[2..4].copy_from_slice(&new_ip_len.to_be_bytes());
    }
    ip[8] = ip[8].wrapping_sub(1);
    ip[12..16].copy_from_slice(&new_s.to_be_bytes());
    ip[16..20].copy_from_slice(&new_d.to_be_bytes());
    ip[10..12].copy_from_slice(&checksum::finish(ip_acc).to_be_bytes());

    // TCP/UDP checksum and ports.
    let old_check = word(l4_hdr, check_at) as u16;
    let src_change = change32(old_s, new_s) + change16(old_sport, u32::from(sport));
    let dst_change = change32(old_d, new_d) + change16(old_dport, u32::from(dport));
    let check = if tcp {
        let mut acc = u32::from(!old_check) + src_change + dst_change;
        if toa {
            // The option's words (kind and length, port, address), the
            // data offset, the pseudo-header's TCP length.
            let client_ip = u32::from(*client.ip());
            acc += u32::from(u16::from_be_bytes([tcp::OPT_TOA, TOA_V4_LEN as u8]))
                + u32::from(client.port())
                + (client_ip >> 16)
                + (client_ip & 0xffff);
            let old_offset = word(l4_hdr, 12);
            l4_hdr[12] = ((((tcp_hdr_len + TOA_V4_LEN) / 4) as u8) << 4) | (l4_hdr[12] & 0x0f);
            let seg_len = (ip_len - (l4 - l3)) as u32;
            acc += change16(old_offset, word(l4_hdr, 12))
                + change16(seg_len, (seg_len + TOA_V4_LEN as u32) & 0xffff);
        }
        checksum::finish(acc)
    } else if old_check == 0 {
        // An IPv4 UDP checksum of 0 means "none" and stays 0.
        0
    } else {
        let udp_step = |check: u16, change: u32| match checksum::finish(u32::from(!check) + change)
        {
            0 => 0xffff,
            c => c,
        };
        udp_step(udp_step(old_check, src_change), dst_change)
    };
    l4_hdr[0..2].copy_from_slice(&sport.to_be_bytes());
    l4_hdr[2..4].copy_from_slice(&dport.to_be_bytes());
    l4_hdr[check_at..check_at + 2].copy_from_slice(&check.to_be_bytes());
    if toa {
        // Headers through the fixed TCP header into the option's room,
        // the option after them.
        let at = l4 + tcp::MIN_HEADER_LEN;
        pkt.copy_within(TOA_V4_LEN..TOA_V4_LEN + at, 0);
        let [p0, p1] = client.port().to_be_bytes();
        let [a0, a1, a2, a3] = client.ip().octets();
        let option = [tcp::OPT_TOA, TOA_V4_LEN as u8, p0, p1, a0, a1, a2, a3];
        pkt.get_mut(at..at + TOA_V4_LEN)?.copy_from_slice(&option);
    }
    let macs = pkt.get_mut(..12)?;
    macs[..6].copy_from_slice(&params.next_hop_mac);
    macs[6..].copy_from_slice(&params.director_mac);
    frame.set(new_start, end + base);
    Some(())
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

    /// An Ethernet + IPv4 + TCP/UDP frame: `opts` bytes of TCP options,
    /// `data` payload bytes, `pad` bytes of Ethernet padding, the L4
    /// checksum field set to `check` (not a valid one: the rewrites are
    /// incremental, any value must come out the same both ways).
    fn ipv4_frame(tcp: bool, opts: usize, data: usize, pad: usize, ttl: u8, check: u16) -> Vec<u8> {
        let l4_len = if tcp { 20 + opts } else { 8 } + data;
        let ip_len = 20 + l4_len;
        let mut f = vec![0u8; 14 + ip_len + pad];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = ttl;
        ip[9] = if tcp { proto::TCP } else { proto::UDP };
        ip[12..16].copy_from_slice(&[198, 51, 100, 7]);
        ip[16..20].copy_from_slice(&[203, 0, 113, 9]);
        let c = checksum::of(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let l4 = &mut f[34..];
        l4[0..2].copy_from_slice(&40000u16.to_be_bytes());
        l4[2..4].copy_from_slice(&80u16.to_be_bytes());
        if tcp {
            l4[12] = (((20 + opts) / 4) as u8) << 4;
            l4[13] = 0x12;
            l4[20..20 + opts].fill(1); // NOPs
            l4[16..18].copy_from_slice(&check.to_be_bytes());
        } else {
            l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            l4[6..8].copy_from_slice(&check.to_be_bytes());
        }
        f
    }

    /// Run `xmit_to` (fast path first) and `xmit_general` on the same
    /// frame placed with `room` bytes of headroom and tailroom; both must
    /// give the same outcome, the same frame bounds and the same bytes.
    /// Returns whether the fast path took it.
    fn same_both_ways(frame: &[u8], room: usize, params: &FullNatParams) -> bool {
        let parsed = wire::parse_frame(frame).expect("test frame parses");
        let run = |fast: bool| {
            let mut buf = vec![0u8; room + frame.len() + room];
            buf[room..room + frame.len()].copy_from_slice(frame);
            let mut fb = FrameBuf::new(&mut buf, room, frame.len()).expect("in bounds");
            let took = fast && params.v4().is_some_and(|v4| xmit_v4(&mut fb, &parsed, &v4));
            let outcome = if took {
                Ok(XmitOutcome::Forward)
            } else {
                xmit_general(&mut fb, &parsed, params)
            };
            let (start, bytes) = (fb.start(), fb.frame().to_vec());
            (took, outcome, start, bytes)
        };
        let (took, fast_outcome, fast_start, fast_bytes) = run(true);
        let (_, outcome, start, bytes) = run(false);
        assert_eq!(fast_outcome, outcome, "{params:?}");
        assert_eq!(fast_start, start, "{params:?}");
        assert_eq!(fast_bytes, bytes, "{params:?}");
        took
    }

    fn params(direction: Direction, insert_toa: bool, mtu: u16) -> FullNatParams {
        FullNatParams {
            direction,
            real_server: "10.1.0.5:8080".parse().unwrap(),
            local: "10.9.0.1:5123".parse().unwrap(),
            client: "198.51.100.7:40000".parse().unwrap(),
            virtual_service: "203.0.113.9:80".parse().unwrap(),
            director_mac: [2, 0, 0, 0, 0, 1],
            next_hop_mac: [2, 0, 0, 0, 0, 2],
            mtu,
            insert_toa,
        }
    }

    #[test]
    fn the_ipv4_fast_path_writes_what_the_general_path_writes() {
        let mut fast = 0;
        let mut total = 0;
        for tcp in [true, false] {
            for opts in [0, 4, 12, 32, 40] {
                for (data, pad) in [(0, 6), (3, 0), (100, 0)] {
                    for ttl in [0, 1, 2, 64] {
                        for check in [0u16, 1, 0x1234, 0xfffe, 0xffff] {
                            let frame = ipv4_frame(tcp, opts, data, pad, ttl, check);
                            let ip_len = frame.len() - 14 - pad;
                            for direction in [Direction::Inbound, Direction::Outbound] {
                                for toa in [false, true] {
                                    for mtu in [ip_len - 1, ip_len, ip_len + 7, ip_len + 8, 1500] {
                                        for room in [0, 4, 8, 64] {
                                            let p = params(direction, toa, mtu as u16);
                                            fast += usize::from(same_both_ways(&frame, room, &p));
                                            total += 1;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // The fast path did take the common cases (and not all of them).
        assert!(fast > total / 4 && fast < total, "{fast} of {total}");
    }

    #[test]
    fn the_ipv4_fast_path_keeps_the_udp_zero_checksum_rules_for_every_checksum() {
        // Every checksum value, so that the source step's result is 0
        // (written 0xffff, then the destination step) for some of them.
        for direction in [Direction::Inbound, Direction::Outbound] {
            for check in 0..=u16::MAX {
                let frame = ipv4_frame(false, 0, 5, 0, 64, check);
                assert!(same_both_ways(&frame, 0, &params(direction, false, 1500)));
            }
        }
    }

    #[test]
    fn the_ipv4_fast_path_inserts_toa_as_the_general_path_does() {
        for check in 0..=u16::MAX {
            let frame = ipv4_frame(true, 4, 0, 0, 64, check);
            assert!(same_both_ways(
                &frame,
                8,
                &params(Direction::Inbound, true, 1500)
            ));
        }
    }

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
