//! Forwarding methods: one file per method, one entry point each.
//!
//! Every method is `xmit(frame, parsed, params) -> Result<XmitOutcome,
//! XmitError>`: it rewrites the frame in place (encapsulation grows it
//! into the buffer's headroom) and says whether the frame goes on to the
//! next hop or has become an ICMP error for the client. This module owns
//! what the methods share, as `ip_vs_xmit.c` does: the frame buffer, the
//! TTL decrement, the MTU check that answers ICMP frag-needed / packet
//! too big, the ICMP error builder and the address/port rewrite with
//! incremental checksums (SCTP: a CRC32c recompute when a port changed).
//!
//! Order of checks, as in the kernel's `__ip_vs_get_out_rt`: TTL first
//! (every method forwards off-box, so IPVS since Linux 5.3 decrements it,
//! DR included, and answers TTL ≤ 1 with ICMP time exceeded), then the
//! MTU. So an ICMP error quotes the header with its TTL already
//! decremented, as the kernel's does. No ICMP error is ever sent about an
//! ICMP error or a non-first fragment; such frames are dropped.
//!
//! Nothing here allocates or panics; every failure is a [`XmitError`]
//! the engine counts.

pub mod dr;
pub mod fullnat;
pub mod icmp;
pub mod nat;
pub mod tunnel;

use std::net::{IpAddr, SocketAddr};

use uvs_conf::{TunnelCsum, TunnelType};

use crate::wire::ethernet::Mac;
use crate::wire::{self, checksum, ipv4, ipv6, proto, Network, ParsedFrame, WireError};

/// Longest quote in an ICMPv4 error: the error fits in 576 bytes.
pub const ICMP_V4_MAX_LEN: usize = 576;
/// Longest ICMPv6 error: the IPv6 minimum MTU.
pub const ICMP_V6_MAX_LEN: usize = 1280;
/// TTL / hop limit of the ICMP errors we originate.
pub const ICMP_TTL: u8 = 64;

/// A frame inside a larger buffer: `buf[start..start + len]`, with
/// headroom before it (for encapsulation) and tailroom after it.
#[derive(Debug)]
pub struct FrameBuf<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
}

impl<'a> FrameBuf<'a> {
    /// The frame `buf[start..start + len]`; `None` if that is not inside `buf`.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Option<Self> {
        let end = start.checked_add(len)?;
        (end <= buf.len()).then_some(FrameBuf { buf, start, len })
    }

    /// The frame's bytes.
    #[inline]
    pub fn frame(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The frame's bytes, writable.
    #[inline]
    pub fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Offset of the frame in the buffer (the headroom).
    pub fn start(&self) -> usize {
        self.start
    }

    /// Length of the frame.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Is the frame empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes before the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes after the frame.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.start - self.len
    }

    /// Grow the frame by `n` bytes at the front (into the headroom).
    pub fn push_front(&mut self, n: usize) -> Result<(), XmitError> {
        if n > self.start {
            return Err(XmitError::NoRoom);
        }
        self.start -= n;
        self.len += n;
        Ok(())
    }

    /// Shrink the frame to its first `len` bytes (drops Ethernet padding).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// The whole buffer and the frame's start, for moves that cross the
    /// frame's bounds.
    fn raw(&mut self) -> (&mut [u8], usize) {
        (self.buf, self.start)
    }

    /// Make `buf[start..start + len]` the frame (checked by the caller).
    fn set(&mut self, start: usize, len: usize) {
        debug_assert!(start + len <= self.buf.len());
        self.start = start;
        self.len = len;
    }
}

/// Which way a packet of a connection travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → virtual service (to the real server).
    Inbound,
    /// Real server → client (NAT and full-NAT replies).
    Outbound,
}

/// Tunnel-mode settings of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelParams {
    /// Encapsulation.
    pub kind: TunnelType,
    /// Checksum option.
    pub csum: TunnelCsum,
    /// Source address of the outer header (same family as the real server).
    pub source: IpAddr,
}

/// Everything the engine knows that a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmitParams {
    /// The director's MAC on the egress interface.
    pub director_mac: Mac,
    /// The next hop's MAC (the real server for DR; the router or host
    /// that the route names otherwise).
    pub next_hop_mac: Mac,
    /// Which way the packet travels.
    pub direction: Direction,
    /// Real server address and port.
    pub real_server: SocketAddr,
    /// Virtual service address and port.
    pub virtual_service: SocketAddr,
    /// Client address and port.
    pub client: SocketAddr,
    /// Full NAT: the director's local address and port for this connection.
    pub local: SocketAddr,
    /// Tunnel settings (tunnel method only).
    pub tunnel: TunnelParams,
    /// MTU of the egress route (IP bytes, Ethernet header excluded).
    pub mtu: u16,
    /// The connection's flow hash (GUE source port).
    pub flow_hash: u32,
    /// Full NAT: insert a TOA option carrying the client address if this
    /// is an inbound TCP packet with room for it (the engine sets this on
    /// the SYN and on the first ACK, as DPVS does).
    pub insert_toa: bool,
}

/// What to do with the frame after a method ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XmitOutcome {
    /// Rewritten; send it to the next hop on the egress interface.
    Forward,
    /// Replaced by an ICMP error (time exceeded, frag-needed, packet too
    /// big) addressed to the sender; send it back out the interface the
    /// original came in on.
    IcmpToClient,
}

/// Why a frame was dropped by a method: one variant per drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XmitError {
    /// The frame does not match its parse (shorter than the offsets say).
    Truncated,
    /// Not an IP frame (ARP), or a method was given the wrong kind.
    NotIp,
    /// Not enough headroom or tailroom for the rewrite.
    NoRoom,
    /// TTL expired, and no ICMP error may be sent about this packet.
    TtlExpired,
    /// Larger than the MTU, and no ICMP error may be sent about it.
    TooBig,
    /// IPv4 without DF larger than the MTU: we do not fragment.
    NeedsFragmentation,
    /// The tunnel MTU is below the IPv4 minimum (68) after overhead.
    MtuTooSmall,
    /// A NAT method was given a non-first fragment (no ports to rewrite).
    Fragment,
    /// The packet's address family does not match the parameters'.
    AddressFamily,
    /// An ICMP method was given a frame that is not an ICMP error.
    NotIcmpError,
}

impl std::fmt::Display for XmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            XmitError::Truncated => "frame shorter than its parse",
            XmitError::NotIp => "not an IP frame",
            XmitError::NoRoom => "no room in the buffer",
            XmitError::TtlExpired => "TTL expired",
            XmitError::TooBig => "larger than the MTU",
            XmitError::NeedsFragmentation => "needs fragmentation",
            XmitError::MtuTooSmall => "tunnel MTU too small",
            XmitError::Fragment => "non-first fragment",
            XmitError::AddressFamily => "address family mismatch",
            XmitError::NotIcmpError => "not an ICMP error",
        };
        f.write_str(text)
    }
}

impl std::error::Error for XmitError {}

impl From<WireError> for XmitError {
    fn from(_: WireError) -> Self {
        XmitError::Truncated
    }
}

/// Check that `parsed` describes `frame` (offsets ordered and inside
/// it, so the methods' slicing cannot fail even if the engine passes a
/// stale parse) and drop Ethernet padding so the frame ends where the
/// IP packet does.
#[inline]
pub(crate) fn trim_padding(frame: &mut FrameBuf, parsed: &ParsedFrame) -> Result<(), XmitError> {
    if parsed.network == Network::Arp {
        return Err(XmitError::NotIp);
    }
    let end = parsed.ip_end();
    if !offsets_ordered(parsed) || end > frame.len() {
        return Err(XmitError::Truncated);
    }
    frame.truncate(end);
    Ok(())
}

/// Whether the parse's offsets are in order: the network header after an
/// Ethernet header (with at most one VLAN tag), then the transport
/// header, the payload and the IP packet's end.
#[inline(always)]
fn offsets_ordered(parsed: &ParsedFrame) -> bool {
    let l3 = usize::from(parsed.l3);
    (wire::ethernet::HEADER_LEN..=18).contains(&l3)
        && l3 <= usize::from(parsed.l4)
        && parsed.l4 <= parsed.payload
        && usize::from(parsed.payload) <= parsed.ip_end()
}

/// The IPv4 packet of `parsed` in `frame`, checked as a one-pass path
/// needs it before it writes anything: [`trim_padding`]'s checks (the
/// offsets in order, the packet within the frame), then version 4 and a
/// header length that fits. Its bytes from the IPv4 header to its end
/// (padding excluded), or `None`: the general path then decides.
#[inline(always)]
pub(crate) fn checked_ipv4_packet<'f>(
    frame: &'f FrameBuf,
    parsed: &ParsedFrame,
) -> Option<&'f [u8]> {
    if !offsets_ordered(parsed) {
        return None;
    }
    let ip = frame.frame().get(usize::from(parsed.l3)..parsed.ip_end())?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    (ip[0] >> 4 == 4 && ihl >= ipv4::MIN_HEADER_LEN && ip.len() >= ihl).then_some(ip)
}

/// Set the Ethernet source and destination MACs.
pub(crate) fn set_macs(frame: &mut [u8], src: Mac, dst: Mac) -> Result<(), XmitError> {
    wire::write_bytes(frame, 0, &dst)?;
    wire::write_bytes(frame, 6, &src)?;
    Ok(())
}

/// May we answer this packet with an ICMP error (not an ICMP error
/// itself, not a non-first fragment)?
fn may_answer_with_icmp(parsed: &ParsedFrame) -> bool {
    parsed.icmp_error.is_none() && (!parsed.is_fragment || parsed.is_first_fragment)
}

/// Decrement the TTL / hop limit. At ≤ 1 the frame becomes an ICMP time
/// exceeded for its sender (`Ok(Some(IcmpToClient))`), or is dropped if
/// no error may be sent about it.
pub(crate) fn decrement_ttl(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
) -> Result<Option<XmitOutcome>, XmitError> {
    decrement_ttl_from(frame, parsed, params.director_mac)
}

/// [`decrement_ttl`] given only what it reads of the parameters: the
/// director's MAC (the source of a time-exceeded answer).
#[inline]
pub(crate) fn decrement_ttl_from(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    director_mac: Mac,
) -> Result<Option<XmitOutcome>, XmitError> {
    if parsed.ttl <= 1 {
        if !may_answer_with_icmp(parsed) {
            return Err(XmitError::TtlExpired);
        }
        let (msg_type, code) = match parsed.network {
            Network::Ipv6 => (
                wire::icmp::v6::TIME_EXCEEDED,
                wire::icmp::v6::CODE_HOP_LIMIT,
            ),
            _ => (
                wire::icmp::v4::TIME_EXCEEDED,
                wire::icmp::v4::CODE_TTL_EXCEEDED,
            ),
        };
        icmp_error_to_sender(frame, parsed, director_mac, parsed.daddr, msg_type, code, 0)?;
        return Ok(Some(XmitOutcome::IcmpToClient));
    }
    let l3 = usize::from(parsed.l3);
    let ip = frame
        .frame_mut()
        .get_mut(l3..)
        .ok_or(XmitError::Truncated)?;
    match parsed.network {
        Network::Ipv4 => {
            // ipv4::Packet::new_checked's checks, then the TTL byte and a
            // one-word checksum update at fixed offsets.
            let version_ihl = *ip.first().ok_or(XmitError::Truncated)?;
            let ihl = usize::from(version_ihl & 0x0f) * 4;
            if version_ihl >> 4 != 4 || ihl < ipv4::MIN_HEADER_LEN || ip.len() < ihl {
                return Err(XmitError::Truncated);
            }
            let header: &mut [u8; ipv4::MIN_HEADER_LEN] = ip
                .get_mut(..ipv4::MIN_HEADER_LEN)
                .and_then(|h| h.try_into().ok())
                .ok_or(XmitError::Truncated)?;
            ipv4::decrement_ttl_in(header);
        }
        Network::Ipv6 => {
            ipv6::Packet::new_checked(ip)?.set_hop_limit(parsed.ttl - 1);
        }
        Network::Arp => return Err(XmitError::NotIp),
    }
    Ok(None)
}

/// The checks the address-rewriting methods (NAT, full NAT) make before
/// they rewrite, in IPVS's order: the TTL decremented (expired: a time
/// exceeded answer), then the packet's own length against `mtu` (too big:
/// a frag-needed / packet-too-big answer, from the packet's destination
/// inbound and from `virtual_service` outbound). `Ok(None)`: go on.
#[inline]
pub(crate) fn ttl_then_mtu(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    director_mac: Mac,
    mtu: u16,
    direction: Direction,
    virtual_service: IpAddr,
) -> Result<Option<XmitOutcome>, XmitError> {
    if let Some(outcome) = decrement_ttl_from(frame, parsed, director_mac)? {
        return Ok(Some(outcome));
    }
    check_mtu_from(
        frame,
        parsed,
        director_mac,
        || match direction {
            Direction::Inbound => parsed.daddr,
            Direction::Outbound => virtual_service,
        },
        usize::from(parsed.ip_len),
        usize::from(mtu),
        u32::from(mtu),
    )
}

/// Check `ip_len` (the IP packet's length once sent, overhead included)
/// against `mtu`. Too big with DF (always for IPv6): the frame becomes
/// ICMP frag-needed / packet too big advertising `advertised_mtu`, for
/// the sender (`Ok(Some(IcmpToClient))`). IPv4 without DF: dropped (we
/// do not fragment).
pub(crate) fn check_mtu(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    params: &XmitParams,
    ip_len: usize,
    mtu: usize,
    advertised_mtu: u32,
) -> Result<Option<XmitOutcome>, XmitError> {
    let direction = params.direction;
    check_mtu_from(
        frame,
        parsed,
        params.director_mac,
        || match direction {
            Direction::Inbound => parsed.daddr,
            Direction::Outbound => params.virtual_service.ip(),
        },
        ip_len,
        mtu,
        advertised_mtu,
    )
}

/// [`check_mtu`] given only what it reads of the parameters: the
/// director's MAC and the source of an ICMP answer (the packet's
/// destination inbound, the virtual service outbound), asked for only
/// when the packet is too big.
#[inline]
pub(crate) fn check_mtu_from(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    director_mac: Mac,
    icmp_source: impl FnOnce() -> IpAddr,
    ip_len: usize,
    mtu: usize,
    advertised_mtu: u32,
) -> Result<Option<XmitOutcome>, XmitError> {
    if ip_len <= mtu {
        return Ok(None);
    }
    if parsed.network == Network::Ipv4 && !parsed.dont_fragment {
        return Err(XmitError::NeedsFragmentation);
    }
    if !may_answer_with_icmp(parsed) {
        return Err(XmitError::TooBig);
    }
    let (msg_type, code) = match parsed.network {
        Network::Ipv6 => (wire::icmp::v6::PACKET_TOO_BIG, 0),
        _ => (
            wire::icmp::v4::DEST_UNREACH,
            wire::icmp::v4::CODE_FRAG_NEEDED,
        ),
    };
    icmp_error_to_sender(
        frame,
        parsed,
        director_mac,
        icmp_source(),
        msg_type,
        code,
        advertised_mtu,
    )?;
    Ok(Some(XmitOutcome::IcmpToClient))
}

/// Replace the frame by an ICMP error about it, for its sender: Ethernet
/// addresses swapped (VLAN tag kept), IP from `source` to the original
/// source, ICMP `msg_type`/`code` with `rest` (the MTU for frag-needed /
/// packet too big), quoting as much of the original IP packet as fits in
/// 576 (IPv4) / 1280 (IPv6) bytes. The quote stays where it is when the
/// headroom allows, else it moves into the tailroom.
pub(crate) fn icmp_error_to_sender(
    frame: &mut FrameBuf,
    parsed: &ParsedFrame,
    director_mac: Mac,
    source: IpAddr,
    msg_type: u8,
    code: u8,
    rest: u32,
) -> Result<(), XmitError> {
    let l3 = usize::from(parsed.l3);
    let (ip_hdr_len, max_len) = match parsed.network {
        Network::Ipv4 => (ipv4::MIN_HEADER_LEN, ICMP_V4_MAX_LEN),
        Network::Ipv6 => (ipv6::HEADER_LEN, ICMP_V6_MAX_LEN),
        Network::Arp => return Err(XmitError::NotIp),
    };
    let added = ip_hdr_len + wire::icmp::HEADER_LEN;
    let quote_len = usize::from(parsed.ip_len).min(max_len - added);
    // Keep the original Ethernet header (≤ 18 bytes) and the TOS byte.
    let mut eth = [0u8; 18];
    let old = frame.frame();
    let eth_src = old.get(6..12).ok_or(XmitError::Truncated)?;
    let eth_hdr = old.get(..l3).ok_or(XmitError::Truncated)?;
    if l3 > eth.len() || old.len() < l3 + quote_len {
        return Err(XmitError::Truncated);
    }
    eth[..l3].copy_from_slice(eth_hdr);
    let mut client_mac = [0u8; 6];
    client_mac.copy_from_slice(eth_src);
    let old_tos = match parsed.network {
        Network::Ipv4 => old.get(l3 + 1).copied().unwrap_or(0),
        _ => 0,
    };
    let (buf, start) = frame.raw();
    let quote_at = start + l3;
    let new_start = if start >= added {
        start - added
    } else {
        let to = quote_at + added;
        if to + quote_len > buf.len() {
            return Err(XmitError::NoRoom);
        }
        buf.copy_within(quote_at..quote_at + quote_len, to);
        start
    };
    let new_len = l3 + added + quote_len;
    let out = buf
        .get_mut(new_start..new_start + new_len)
        .ok_or(XmitError::NoRoom)?;
    out[..l3].copy_from_slice(&eth[..l3]);
    set_macs(out, director_mac, client_mac)?;
    let icmp_len = wire::icmp::HEADER_LEN + quote_len;
    let (ip_out, icmp_out) = out[l3..].split_at_mut(ip_hdr_len);
    icmp_out[0] = msg_type;
    icmp_out[1] = code;
    icmp_out[2..4].copy_from_slice(&[0, 0]);
    icmp_out[4..8].copy_from_slice(&rest.to_be_bytes());
    let check = match (source, parsed.saddr) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            ipv4::Repr {
                src,
                dst,
                protocol: proto::ICMP,
                payload_len: icmp_len as u16,
                ttl: ICMP_TTL,
                tos: (old_tos & 0x1e) | 0xc0,
                ident: 0,
                dont_frag: false,
            }
            .emit(ip_out)?;
            checksum::of(&icmp_out[..icmp_len])
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut ip = ipv6::Packet::new_unchecked(ip_out);
            ip.set_version_class_flow(0, 0);
            ip.set_payload_len(icmp_len as u16);
            ip.set_next_header(proto::ICMPV6);
            ip.set_hop_limit(ICMP_TTL);
            ip.set_src(src);
            ip.set_dst(dst);
            let acc = checksum::pseudo_header(source, parsed.saddr, proto::ICMPV6, icmp_len as u32);
            checksum::finish(checksum::add(acc, &icmp_out[..icmp_len]))
        }
        _ => return Err(XmitError::AddressFamily),
    };
    icmp_out[2..4].copy_from_slice(&check.to_be_bytes());
    frame.set(new_start, new_len);
    Ok(())
}

/// Which address/port pair of a packet to rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Source,
    Destination,
}

/// Rewrite the source or destination address and (if the packet has
/// ports) port of the IP packet at `l3` whose transport header is at
/// `l4`, fixing the IPv4 header checksum and the TCP/UDP/ICMPv6 checksum
/// incrementally (pseudo-header included; an IPv4 UDP checksum of 0
/// stays 0) when `fix_l4_checksum` is set. For the packet quoted in an
/// ICMP error it is not: like the kernel's `ip_vs_nat_icmp`, we fix the
/// quoted IP header's checksum only (the quoted transport header is
/// usually cut short, and the ICMP checksum is recomputed anyway).
#[allow(clippy::too_many_arguments)]
pub(crate) fn rewrite_endpoint(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    protocol: u8,
    which: Endpoint,
    addr: IpAddr,
    port: Option<u16>,
    fix_l4_checksum: bool,
) -> Result<(), XmitError> {
    if let IpAddr::V4(new) = addr {
        if rewrite_ipv4_tcp_udp(frame, l3, l4, protocol, which, new, port, fix_l4_checksum) {
            return Ok(());
        }
    }
    rewrite_endpoint_general(frame, l3, l4, protocol, which, addr, port, fix_l4_checksum)
}

/// [`rewrite_endpoint`] for every case (IPv6, ICMPv6, short buffers).
#[allow(clippy::too_many_arguments)]
fn rewrite_endpoint_general(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    protocol: u8,
    which: Endpoint,
    addr: IpAddr,
    port: Option<u16>,
    fix_l4_checksum: bool,
) -> Result<(), XmitError> {
    let old_addr = match addr {
        IpAddr::V4(new) => {
            let ip = frame.get_mut(l3..).ok_or(XmitError::Truncated)?;
            let mut ip = ipv4::Packet::new_checked(ip)?;
            let old = match which {
                Endpoint::Source => ip.src(),
                Endpoint::Destination => ip.dst(),
            };
            match which {
                Endpoint::Source => ip.rewrite_src(new),
                Endpoint::Destination => ip.rewrite_dst(new),
            }
            IpAddr::V4(old)
        }
        IpAddr::V6(new) => {
            let ip = frame.get_mut(l3..).ok_or(XmitError::Truncated)?;
            let mut ip = ipv6::Packet::new_checked(ip)?;
            let old = match which {
                Endpoint::Source => ip.src(),
                Endpoint::Destination => ip.dst(),
            };
            match which {
                Endpoint::Source => ip.set_src(new),
                Endpoint::Destination => ip.set_dst(new),
            }
            IpAddr::V6(old)
        }
    };
    let port_off = l4
        + match which {
            Endpoint::Source => 0,
            Endpoint::Destination => 2,
        };
    let check_off = match protocol {
        proto::TCP => Some(l4 + wire::tcp::CHECKSUM_OFFSET),
        proto::UDP => Some(l4 + wire::udp::CHECKSUM_OFFSET),
        proto::ICMPV6 => Some(l4 + wire::icmp::CHECKSUM_OFFSET),
        _ => None,
    };
    let old_port = match (protocol, port) {
        (proto::TCP | proto::UDP | proto::SCTP, Some(_)) => Some(wire::read_u16(frame, port_off)?),
        _ => None,
    };
    if let Some(off) = check_off.filter(|_| fix_l4_checksum) {
        let mut check = wire::read_u16(frame, off)?;
        let udp_v4_none = protocol == proto::UDP && addr.is_ipv4() && check == 0;
        if !udp_v4_none {
            check = checksum::update_addr(check, old_addr, addr);
            if let (Some(old), Some(new)) = (old_port, port) {
                check = checksum::update_u16(check, old, new);
            }
            if protocol == proto::UDP && check == 0 {
                check = 0xffff;
            }
            wire::write_u16(frame, off, check)?;
        }
    }
    if let (Some(_), Some(new)) = (old_port, port) {
        wire::write_u16(frame, port_off, new)?;
    }
    Ok(())
}

/// The common case of [`rewrite_endpoint`]: an IPv4 header followed by
/// a TCP or UDP header, everything in bounds. Every bound is checked
/// before anything is written; `false` (nothing written) sends the caller
/// to the general path, which then reports what is wrong. Same result as
/// the general path otherwise.
#[allow(clippy::too_many_arguments)]
#[inline]
fn rewrite_ipv4_tcp_udp(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    protocol: u8,
    which: Endpoint,
    new: std::net::Ipv4Addr,
    port: Option<u16>,
    fix_l4_checksum: bool,
) -> bool {
    let Some((ip, l4_hdr, check_at)) = ipv4_tcp_udp_headers(frame, l3, l4, protocol) else {
        return false;
    };
    apply_ipv4_endpoint(
        ip,
        l4_hdr,
        check_at,
        protocol,
        which,
        new,
        port,
        fix_l4_checksum,
    );
    true
}

/// Full NAT's two rewrites of an IPv4 TCP/UDP packet in one pass: the
/// source to `src`, then the destination to `dst` (a port each where the
/// packet has ports), both checksums fixed. The headers are checked once;
/// the result is that of two [`rewrite_endpoint`] calls, source first.
/// `false` (nothing written): not such a packet, or out of bounds; the
/// caller takes the general path.
#[inline]
pub(crate) fn rewrite_ipv4_tcp_udp_both(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    protocol: u8,
    src: (std::net::Ipv4Addr, Option<u16>),
    dst: (std::net::Ipv4Addr, Option<u16>),
) -> bool {
    let Some((ip, l4_hdr, check_at)) = ipv4_tcp_udp_headers(frame, l3, l4, protocol) else {
        return false;
    };
    apply_ipv4_endpoint(
        ip,
        l4_hdr,
        check_at,
        protocol,
        Endpoint::Source,
        src.0,
        src.1,
        true,
    );
    apply_ipv4_endpoint(
        ip,
        l4_hdr,
        check_at,
        protocol,
        Endpoint::Destination,
        dst.0,
        dst.1,
        true,
    );
    true
}

/// The option-less part of the IPv4 header at `l3` (20 bytes) and the
/// TCP/UDP header at `l4` up to its checksum, with the checksum's offset
/// in it; `None` unless the packet is IPv4 TCP/UDP and both are in bounds.
#[inline(always)]
fn ipv4_tcp_udp_headers(
    frame: &mut [u8],
    l3: usize,
    l4: usize,
    protocol: u8,
) -> Option<(&mut [u8], &mut [u8], usize)> {
    let check_at = match protocol {
        proto::TCP => wire::tcp::CHECKSUM_OFFSET,
        proto::UDP => wire::udp::CHECKSUM_OFFSET,
        _ => return None,
    };
    if l3.saturating_add(ipv4::MIN_HEADER_LEN) > l4 {
        return None;
    }
    let (head, segment) = frame.split_at_mut(l4.min(frame.len()));
    let &version_ihl = head.get(l3)?;
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < ipv4::MIN_HEADER_LEN || head.len() - l3 < ihl {
        return None;
    }
    let ip = head.get_mut(l3..l3 + ipv4::MIN_HEADER_LEN)?;
    let l4_hdr = segment.get_mut(..check_at + 2)?;
    Some((ip, l4_hdr, check_at))
}

/// Rewrite one endpoint in headers [`ipv4_tcp_udp_headers`] returned
/// (`ip` 20 bytes, `l4_hdr` through the checksum at `check_at`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn apply_ipv4_endpoint(
    ip: &mut [u8],
    l4_hdr: &mut [u8],
    check_at: usize,
    protocol: u8,
    which: Endpoint,
    new: std::net::Ipv4Addr,
    port: Option<u16>,
    fix_l4_checksum: bool,
) {
    let (addr_at, port_at) = match which {
        Endpoint::Source => (12, 0),
        Endpoint::Destination => (16, 2),
    };
    let (Some(addr_bytes), Some(check_bytes)) = (ip.get(addr_at..addr_at + 4), ip.get(10..12))
    else {
        return;
    };
    let old = u32::from_be_bytes([addr_bytes[0], addr_bytes[1], addr_bytes[2], addr_bytes[3]]);
    let ip_check = u16::from_be_bytes([check_bytes[0], check_bytes[1]]);
    let new = u32::from(new);
    ip[addr_at..addr_at + 4].copy_from_slice(&new.to_be_bytes());
    let ip_check = checksum::update_u32(ip_check, old, new);
    ip[10..12].copy_from_slice(&ip_check.to_be_bytes());
    let (Some(port_bytes), Some(l4_check)) = (
        l4_hdr.get(port_at..port_at + 2),
        l4_hdr.get(check_at..check_at + 2),
    ) else {
        return;
    };
    let old_port = u16::from_be_bytes([port_bytes[0], port_bytes[1]]);
    if fix_l4_checksum {
        let mut check = u16::from_be_bytes([l4_check[0], l4_check[1]]);
        // An IPv4 UDP checksum of 0 means "none" and stays 0.
        if !(protocol == proto::UDP && check == 0) {
            check = checksum::update_u32(check, old, new);
            if let Some(new_port) = port {
                check = checksum::update_u16(check, old_port, new_port);
            }
            if protocol == proto::UDP && check == 0 {
                check = 0xffff;
            }
            l4_hdr[check_at..check_at + 2].copy_from_slice(&check.to_be_bytes());
        }
    }
    if let Some(new_port) = port {
        l4_hdr[port_at..port_at + 2].copy_from_slice(&new_port.to_be_bytes());
    }
}

/// After a NAT or full-NAT rewrite of an SCTP packet: if a port changed,
/// recompute the CRC32c over the whole SCTP packet (`l4` to the end of
/// the IP packet; the frame was trimmed to it), as the kernel's
/// `sctp_snat_handler` / `sctp_dnat_handler` do; addresses are not
/// covered by it, so an address-only rewrite leaves it valid. A first
/// fragment cannot be fixed (the CRC covers every fragment) and is
/// refused.
pub(crate) fn sctp_fix_checksum(frame: &mut [u8], parsed: &ParsedFrame) -> Result<(), XmitError> {
    let l4 = usize::from(parsed.l4);
    let sport = wire::read_u16(frame, l4)?;
    let dport = wire::read_u16(frame, l4 + 2)?;
    if sport == parsed.sport && dport == parsed.dport {
        return Ok(());
    }
    if parsed.is_fragment {
        return Err(XmitError::Fragment);
    }
    let segment = frame
        .get_mut(l4..parsed.ip_end())
        .ok_or(XmitError::Truncated)?;
    wire::sctp::fill_checksum(segment)?;
    Ok(())
}

/// The packet's and the parameters' address families agree?
pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> Result<(), XmitError> {
    if a.is_ipv4() == b.is_ipv4() {
        Ok(())
    } else {
        Err(XmitError::AddressFamily)
    }
}

/// The start of an IPv4 test frame from `src` to `dst` with the header
/// variations the one-pass paths' tests draw from `r`: the TTL's edges
/// (bits 20–), DF (bit 30), IP options (bit 31), a fragment (bits 32–33).
#[cfg(test)]
pub(crate) fn test_ipv4_frame(
    r: u64,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
) -> crate::wire::build::PacketBuilder {
    let mut b = crate::wire::build::PacketBuilder::new()
        .eth([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst)
        .ttl([0, 1, 2, 64, 255][(r >> 20) as usize % 5])
        .df(r & (1 << 30) != 0);
    if r & (1 << 31) != 0 {
        b = b.ipv4_options(&[1, 1, 1, 0]);
    }
    if r & (1 << 32) != 0 {
        b = b.fragment(if r & (1 << 33) != 0 { 8 } else { 0 }, true);
    }
    b
}

/// The bytes of test frame `b` with the payload (bits 40–47) and
/// Ethernet padding (bit 50) drawn from `r`.
#[cfg(test)]
pub(crate) fn test_frame_bytes(b: crate::wire::build::PacketBuilder, r: u64) -> Vec<u8> {
    let payload = vec![(r >> 40) as u8; (r >> 44) as usize % 64];
    let mut bytes = b.payload(&payload).build();
    if r & (1 << 50) != 0 {
        bytes.extend_from_slice(&[0; 6]);
    }
    bytes
}

/// A xorshift64 generator from `seed`: the one-pass paths' tests draw
/// their frame variations from it (repeatable, no dependency).
#[cfg(test)]
pub(crate) fn test_rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;
    use crate::wire::build::PacketBuilder;

    fn frame(udp: bool, zero_udp_checksum: bool) -> Vec<u8> {
        let b = PacketBuilder::new()
            .eth([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(Ipv4Addr::new(203, 0, 113, 7), Ipv4Addr::new(192, 0, 2, 10));
        let b = if udp {
            let b = b.udp(5000, 53);
            if zero_udp_checksum {
                b.udp_zero_checksum()
            } else {
                b
            }
        } else {
            b.tcp(40000, 80).flags(0x18)
        };
        b.payload(b"payload").build()
    }

    proptest! {
        #[test]
        fn ipv4_fast_rewrite_matches_the_general_one(
            kind in 0u8..3,
            source in any::<bool>(),
            addr in any::<u32>(),
            port in proptest::option::of(any::<u16>()),
            fix in any::<bool>(),
            l3 in prop_oneof![Just(14usize), 0usize..40],
            l4 in prop_oneof![Just(34usize), 0usize..60],
            protocol in prop_oneof![Just(proto::TCP), Just(proto::UDP), any::<u8>()],
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in any::<usize>(),
        ) {
            let mut bytes = frame(kind != 0, kind == 2);
            for (at, value) in edits {
                let i = at % bytes.len();
                bytes[i] = value;
            }
            let len = if cut % 4 == 0 { cut % (bytes.len() + 1) } else { bytes.len() };
            bytes.truncate(len);
            let which = if source { Endpoint::Source } else { Endpoint::Destination };
            let new = IpAddr::V4(Ipv4Addr::from(addr));
            let mut fast = bytes.clone();
            let mut general = bytes;
            let a = rewrite_endpoint(&mut fast, l3, l4, protocol, which, new, port, fix);
            let b = rewrite_endpoint_general(&mut general, l3, l4, protocol, which, new, port, fix);
            prop_assert_eq!(a, b);
            prop_assert_eq!(fast, general);
        }

        #[test]
        fn ipv4_two_endpoint_rewrite_matches_two_general_ones(
            kind in 0u8..3,
            src in any::<u32>(),
            dst in any::<u32>(),
            ports in proptest::option::of(any::<(u16, u16)>()),
            l3 in prop_oneof![Just(14usize), 0usize..40],
            l4 in prop_oneof![Just(34usize), 0usize..60],
            protocol in prop_oneof![Just(proto::TCP), Just(proto::UDP), any::<u8>()],
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in any::<usize>(),
        ) {
            let mut bytes = frame(kind != 0, kind == 2);
            for (at, value) in edits {
                let i = at % bytes.len();
                bytes[i] = value;
            }
            let len = if cut % 4 == 0 { cut % (bytes.len() + 1) } else { bytes.len() };
            bytes.truncate(len);
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let (sport, dport) = (ports.map(|p| p.0), ports.map(|p| p.1));
            let mut both = bytes.clone();
            let mut general = bytes;
            if rewrite_ipv4_tcp_udp_both(&mut both, l3, l4, protocol, (src, sport), (dst, dport)) {
                for (which, addr, port) in
                    [(Endpoint::Source, src, sport), (Endpoint::Destination, dst, dport)]
                {
                    let done = rewrite_endpoint_general(
                        &mut general, l3, l4, protocol, which, IpAddr::V4(addr), port, true,
                    );
                    prop_assert!(done.is_ok());
                }
            }
            // Refused: nothing written.
            prop_assert_eq!(both, general);
        }
    }

    #[test]
    fn the_common_ipv4_rewrite_takes_the_fast_path() {
        for (udp, zero) in [(false, false), (true, false), (true, true)] {
            let mut bytes = frame(udp, zero);
            let protocol = if udp { proto::UDP } else { proto::TCP };
            let new = Ipv4Addr::new(10, 1, 2, 3);
            assert!(rewrite_ipv4_tcp_udp(
                &mut bytes,
                14,
                34,
                protocol,
                Endpoint::Destination,
                new,
                Some(8080),
                true
            ));
            let parsed = wire::parse_frame(&bytes).expect("still a valid frame");
            assert_eq!(parsed.daddr, IpAddr::V4(new));
            assert_eq!(parsed.dport, 8080);
        }
    }
}
