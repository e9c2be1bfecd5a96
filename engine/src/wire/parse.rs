//! `parse_frame`: one pass over a received frame, yielding a small `Copy`
//! summary with the offsets the rewrites need.

use std::net::{IpAddr, Ipv4Addr};

use super::{
    arp, ethernet, ethertype, icmp, ipv4, ipv6, proto, read_u16, sctp, tcp, udp, WireError,
};

/// The network layer of a parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ARP (addresses are the sender and target protocol addresses).
    Arp,
}

/// The ICMP errors that relate to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpErrorKind {
    /// Destination unreachable (IPv4 frag-needed included).
    DestUnreachable,
    /// IPv6 packet too big.
    PacketTooBig,
    /// Time (TTL / hop limit / reassembly) exceeded.
    TimeExceeded,
    /// IPv4 source quench.
    SourceQuench,
    /// Parameter problem.
    ParameterProblem,
}

/// The packet quoted by an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InnerPacket {
    /// Offset of the quoted IP header from the start of the frame.
    pub l3: u16,
    /// Offset of the quoted transport header from the start of the frame.
    pub l4: u16,
    /// Transport protocol of the quoted packet.
    pub protocol: u8,
    /// Quoted source address.
    pub saddr: IpAddr,
    /// Quoted destination address.
    pub daddr: IpAddr,
    /// Quoted source port (0 if none or not quoted).
    pub sport: u16,
    /// Quoted destination port (0 if none or not quoted).
    pub dport: u16,
}

/// An ICMP or ICMPv6 error and the packet it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpError {
    /// What kind of error.
    pub kind: IcmpErrorKind,
    /// The raw type.
    pub icmp_type: u8,
    /// The raw code.
    pub code: u8,
    /// The quoted packet.
    pub inner: InnerPacket,
}

/// What the engine needs to know about a received frame. All offsets
/// are from the start of the frame; all of them are within the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParsedFrame {
    /// Offset of the network header.
    pub l3: u16,
    /// Offset of the transport header (for a non-first fragment or an
    /// unknown protocol: where it would be, i.e. after the IP headers).
    pub l4: u16,
    /// Offset of the transport payload (after TCP/UDP/ICMP headers).
    pub payload: u16,
    /// The 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// The payload's ethertype (after the tag).
    pub ethertype: u16,
    /// IPv4, IPv6 or ARP.
    pub network: Network,
    /// Transport protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Source address.
    pub saddr: IpAddr,
    /// Destination address.
    pub daddr: IpAddr,
    /// Source port (TCP/UDP/SCTP; 0 otherwise).
    pub sport: u16,
    /// Destination port (TCP/UDP/SCTP; 0 otherwise).
    pub dport: u16,
    /// TCP flags (0 otherwise).
    pub tcp_flags: u8,
    /// SCTP: the chunk type that drives the state machine
    /// ([`sctp::state_chunk`]); 0 otherwise.
    pub sctp_chunk: u8,
    /// Length of the IP packet, header included (bytes after `l3` that
    /// belong to it; Ethernet padding excluded).
    pub ip_len: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 DF flag; always true for IPv6 (routers never fragment it).
    pub dont_fragment: bool,
    /// The packet is a fragment.
    pub is_fragment: bool,
    /// It is the first fragment (its transport header is present).
    pub is_first_fragment: bool,
    /// For an ICMP/ICMPv6 error: the error and the packet it quotes.
    pub icmp_error: Option<IcmpError>,
}

impl ParsedFrame {
    /// Does the frame carry a transport header we parsed (TCP, UDP or
    /// SCTP ports present)?
    pub fn has_ports(&self) -> bool {
        matches!(self.protocol, proto::TCP | proto::UDP | proto::SCTP) && self.payload > self.l4
    }

    /// Offset of the end of the IP packet (start of Ethernet padding).
    pub fn ip_end(&self) -> usize {
        usize::from(self.l3) + usize::from(self.ip_len)
    }
}

fn off16(value: usize) -> Result<u16, WireError> {
    u16::try_from(value).map_err(|_| WireError::BadLength)
}

/// Parse an Ethernet frame (at most one 802.1Q tag) carrying IPv4, IPv6
/// or ARP. Never panics, whatever `frame` holds; every error is one drop
/// reason.
///
/// The common case (IPv4 without options and unfragmented, or IPv6
/// without extension headers, carrying a well-formed TCP or UDP header)
/// takes a fast path that reads fixed offsets; anything else, including
/// every frame that would be an error, goes through the full parser. Both
/// give the same result for every frame the fast path accepts.
#[inline]
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame, WireError> {
    match parse_common(frame) {
        Some(parsed) => Ok(parsed),
        None => parse_full(frame),
    }
}

/// [`parse_frame`] into `slot`, returning the result there. The fast
/// path's fields are stored straight into the slot: a parse returned by
/// value is assembled on the stack in narrow stores and copied in wide
/// loads, which wait for those stores to commit (a store-forwarding
/// stall on every frame of the receive path).
#[inline]
pub fn parse_frame_into<'s>(
    frame: &[u8],
    slot: &'s mut Option<Result<ParsedFrame, WireError>>,
) -> &'s Result<ParsedFrame, WireError> {
    match parse_common(frame) {
        Some(parsed) => slot.insert(Ok(parsed)),
        None => slot.insert(parse_full(frame)),
    }
}

/// Big-endian u16 at a constant offset of a fixed-size header copy.
#[inline(always)]
fn be16<const N: usize>(bytes: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// The fast path of [`parse_frame`]: `None` for anything it does not
/// handle (the full parser then decides, errors included).
#[inline(always)]
fn parse_common(frame: &[u8]) -> Option<ParsedFrame> {
    let outer: &[u8; 18] = frame.get(..18)?.try_into().ok()?;
    let (l3, ether, vlan) = if be16(outer, 12) == ethertype::VLAN {
        (18, be16(outer, 16), Some(be16(outer, 14) & 0x0fff))
    } else {
        (ethernet::HEADER_LEN, be16(outer, 12), None)
    };
    let rest = frame.get(l3..)?;
    let (network, protocol, saddr, daddr, ttl, dont_fragment, ip_hdr_len, ip_len) = match ether {
        ethertype::IPV4 => {
            let h: &[u8; 20] = rest.get(..20)?.try_into().ok()?;
            // Version 4, no options.
            if h[0] != 0x45 {
                return None;
            }
            let total = usize::from(be16(h, 2));
            let flags_offset = be16(h, 6);
            if total < 20
                || total > rest.len()
                || flags_offset & (ipv4::FLAG_MF | ipv4::OFFSET_MASK) != 0
            {
                return None;
            }
            if !ipv4_header_sums_to_ones(h) {
                return None;
            }
            (
                Network::Ipv4,
                h[9],
                IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
                IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
                h[8],
                flags_offset & ipv4::FLAG_DF != 0,
                20,
                total,
            )
        }
        ethertype::IPV6 => {
            let h: &[u8; 40] = rest.get(..40)?.try_into().ok()?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let total = ipv6::HEADER_LEN + usize::from(be16(h, 4));
            if total > rest.len() {
                return None;
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(h.get(8..24)?);
            dst.copy_from_slice(h.get(24..40)?);
            (
                Network::Ipv6,
                h[6],
                IpAddr::V6(src.into()),
                IpAddr::V6(dst.into()),
                h[7],
                true,
                ipv6::HEADER_LEN,
                total,
            )
        }
        _ => return None,
    };
    let segment = rest.get(ip_hdr_len..ip_len)?;
    let (sport, dport, tcp_flags, l4_hdr_len) = match protocol {
        proto::TCP => {
            let t: &[u8; 20] = segment.get(..20)?.try_into().ok()?;
            let header_len = usize::from(t[12] >> 4) * 4;
            if header_len < 20 || header_len > segment.len() {
                return None;
            }
            (be16(t, 0), be16(t, 2), t[13], header_len)
        }
        proto::UDP => {
            let u: &[u8; 8] = segment.get(..8)?.try_into().ok()?;
            let claimed = usize::from(be16(u, 4));
            if claimed < udp::HEADER_LEN || claimed > segment.len() {
                return None;
            }
            (be16(u, 0), be16(u, 2), 0, udp::HEADER_LEN)
        }
        _ => return None,
    };
    // l3 ≤ 18 and the IP packet fits in the frame, so every offset is
    // below the frame's length; frames longer than 64 KiB take the full
    // parser (it reports the offset overflow).
    let l4 = u16::try_from(l3 + ip_hdr_len).ok()?;
    Some(ParsedFrame {
        l3: l3 as u16,
        l4,
        payload: u16::try_from(l3 + ip_hdr_len + l4_hdr_len).ok()?,
        vlan,
        ethertype: ether,
        network,
        protocol,
        saddr,
        daddr,
        sport,
        dport,
        tcp_flags,
        sctp_chunk: 0,
        ip_len: u16::try_from(ip_len).ok()?,
        ttl,
        dont_fragment,
        is_fragment: false,
        is_first_fragment: false,
        icmp_error: None,
    })
}

/// Does a 20-byte IPv4 header's one's-complement sum (checksum field
/// included) come to all ones, i.e. does its checksum verify?
#[inline(always)]
fn ipv4_header_sums_to_ones(h: &[u8; 20]) -> bool {
    let word = |at: usize| u64::from(u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]));
    let mut sum = word(0) + word(4) + word(8) + word(12) + word(16);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum == 0xffff
}

/// The full parser: every header layout, every error.
fn parse_full(frame: &[u8]) -> Result<ParsedFrame, WireError> {
    let eth = ethernet::Packet::new_checked(frame)?;
    let l3 = eth.header_len();
    let ether = eth.ethertype();
    let rest = frame.get(l3..).ok_or(WireError::Truncated)?;
    let mut parsed = ParsedFrame {
        l3: off16(l3)?,
        l4: off16(l3)?,
        payload: off16(l3)?,
        vlan: eth.vlan(),
        ethertype: ether,
        network: Network::Ipv4,
        protocol: 0,
        saddr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        daddr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        sctp_chunk: 0,
        ip_len: 0,
        ttl: 0,
        dont_fragment: false,
        is_fragment: false,
        is_first_fragment: false,
        icmp_error: None,
    };
    let (l4_rel, ip_len) = match ether {
        ethertype::IPV4 => {
            let ip = ipv4::Packet::new_checked(rest)?;
            let total = usize::from(ip.total_len());
            if total < ip.header_len() {
                return Err(WireError::BadLength);
            }
            if total > rest.len() {
                return Err(WireError::Truncated);
            }
            if !ip.verify_checksum() {
                return Err(WireError::BadChecksum);
            }
            parsed.protocol = ip.protocol();
            parsed.saddr = IpAddr::V4(ip.src());
            parsed.daddr = IpAddr::V4(ip.dst());
            parsed.ttl = ip.ttl();
            parsed.dont_fragment = ip.dont_frag();
            parsed.is_fragment = ip.is_fragment();
            parsed.is_first_fragment = ip.is_fragment() && ip.frag_offset() == 0;
            (ip.header_len(), total)
        }
        ethertype::IPV6 => {
            parsed.network = Network::Ipv6;
            let ip = ipv6::Packet::new_checked(rest)?;
            let total = ipv6::HEADER_LEN + usize::from(ip.payload_len());
            let packet = rest.get(..total).ok_or(WireError::Truncated)?;
            let walk = ipv6::walk_ext_headers(packet)?;
            parsed.protocol = walk.protocol;
            parsed.saddr = IpAddr::V6(ip.src());
            parsed.daddr = IpAddr::V6(ip.dst());
            parsed.ttl = ip.hop_limit();
            parsed.dont_fragment = true;
            parsed.is_fragment = walk.is_fragment;
            parsed.is_first_fragment = walk.is_fragment && walk.is_first_fragment;
            (walk.offset, total)
        }
        ethertype::ARP => {
            let packet = arp::Packet::new_checked(rest)?;
            parsed.network = Network::Arp;
            parsed.saddr = IpAddr::V4(packet.sender_ip());
            parsed.daddr = IpAddr::V4(packet.target_ip());
            parsed.ip_len = off16(arp::PACKET_LEN)?;
            return Ok(parsed);
        }
        _ => return Err(WireError::UnsupportedEthertype),
    };
    parsed.ip_len = off16(ip_len)?;
    parsed.l4 = off16(l3 + l4_rel)?;
    parsed.payload = parsed.l4;
    if parsed.is_fragment && !parsed.is_first_fragment {
        return Ok(parsed);
    }
    // The transport segment: from l4 to the end of the IP packet.
    let segment = rest.get(l4_rel..ip_len).ok_or(WireError::Truncated)?;
    let header_len = match (parsed.network, parsed.protocol) {
        (_, proto::TCP) => {
            let seg = tcp::Packet::new_checked(segment)?;
            parsed.sport = seg.src_port();
            parsed.dport = seg.dst_port();
            parsed.tcp_flags = seg.flags();
            seg.header_len()
        }
        (_, proto::UDP) => {
            let seg = udp::Packet::new_checked(segment)?;
            parsed.sport = seg.src_port();
            parsed.dport = seg.dst_port();
            udp::HEADER_LEN
        }
        (_, proto::SCTP) => {
            // One or more chunks must follow the common header.
            if segment.len() < sctp::MIN_PACKET_LEN {
                return Err(WireError::Truncated);
            }
            let seg = sctp::Packet::new_checked(segment)?;
            parsed.sport = seg.src_port();
            parsed.dport = seg.dst_port();
            parsed.sctp_chunk = sctp::state_chunk(segment).ok_or(WireError::Truncated)?;
            sctp::HEADER_LEN
        }
        (Network::Ipv4, proto::ICMP) | (Network::Ipv6, proto::ICMPV6) => {
            let msg = icmp::Packet::new_checked(segment)?;
            let base = l3 + l4_rel + icmp::HEADER_LEN;
            parsed.icmp_error = parse_icmp_error(parsed.network, &msg, base)?;
            icmp::HEADER_LEN
        }
        _ => 0,
    };
    parsed.payload = off16(l3 + l4_rel + header_len)?;
    Ok(parsed)
}

fn icmp_kind(network: Network, msg_type: u8) -> Option<IcmpErrorKind> {
    match network {
        Network::Ipv4 => match msg_type {
            icmp::v4::DEST_UNREACH => Some(IcmpErrorKind::DestUnreachable),
            icmp::v4::SOURCE_QUENCH => Some(IcmpErrorKind::SourceQuench),
            icmp::v4::TIME_EXCEEDED => Some(IcmpErrorKind::TimeExceeded),
            icmp::v4::PARAM_PROBLEM => Some(IcmpErrorKind::ParameterProblem),
            _ => None,
        },
        Network::Ipv6 => match msg_type {
            icmp::v6::DEST_UNREACH => Some(IcmpErrorKind::DestUnreachable),
            icmp::v6::PACKET_TOO_BIG => Some(IcmpErrorKind::PacketTooBig),
            icmp::v6::TIME_EXCEEDED => Some(IcmpErrorKind::TimeExceeded),
            icmp::v6::PARAM_PROBLEM => Some(IcmpErrorKind::ParameterProblem),
            _ => None,
        },
        Network::Arp => None,
    }
}

/// For an ICMP error, parse the quoted packet (which is usually cut
/// short: only its IP header and 8 bytes of transport are promised).
fn parse_icmp_error(
    network: Network,
    msg: &icmp::Packet<&[u8]>,
    base: usize,
) -> Result<Option<IcmpError>, WireError> {
    let Some(kind) = icmp_kind(network, msg.msg_type()) else {
        return Ok(None);
    };
    let quoted = msg.payload();
    let (protocol, saddr, daddr, l4_rel, has_l4) = match network {
        Network::Ipv4 => {
            let ip = ipv4::Packet::new_checked(quoted)?;
            let first = ip.frag_offset() == 0;
            (
                ip.protocol(),
                IpAddr::V4(ip.src()),
                IpAddr::V4(ip.dst()),
                ip.header_len(),
                first,
            )
        }
        _ => {
            let ip = ipv6::Packet::new_checked(quoted)?;
            let walk = ipv6::walk_ext_headers(quoted)?;
            let first = !walk.is_fragment || walk.is_first_fragment;
            (
                walk.protocol,
                IpAddr::V6(ip.src()),
                IpAddr::V6(ip.dst()),
                walk.offset,
                first,
            )
        }
    };
    let mut inner = InnerPacket {
        l3: off16(base)?,
        l4: off16(base + l4_rel)?,
        protocol,
        saddr,
        daddr,
        sport: 0,
        dport: 0,
    };
    if has_l4 && matches!(protocol, proto::TCP | proto::UDP | proto::SCTP) {
        // Ports are the first 4 bytes of all three; the quote must hold them.
        inner.sport = read_u16(quoted, l4_rel)?;
        inner.dport = read_u16(quoted, l4_rel + 2)?;
    }
    Ok(Some(IcmpError {
        kind,
        icmp_type: msg.msg_type(),
        code: msg.code(),
        inner,
    }))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::wire::build::PacketBuilder;
    use crate::wire::checksum;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn common_frames() -> Vec<Vec<u8>> {
        let v4 = |b: PacketBuilder| {
            b.eth(A, B)
                .ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
        };
        let v6 = |b: PacketBuilder| b.eth(A, B).ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
        vec![
            v4(PacketBuilder::new())
                .tcp(1000, 80)
                .flags(0x18)
                .payload(b"hello")
                .build(),
            v4(PacketBuilder::new().vlan(7))
                .udp(53, 5353)
                .payload(b"q")
                .build(),
            v4(PacketBuilder::new())
                .df(false)
                .ttl(1)
                .tcp(1, 2)
                .tcp_options(&[2, 4, 5, 0xb4])
                .build(),
            v6(PacketBuilder::new()).tcp(443, 1234).flags(0x02).build(),
            v6(PacketBuilder::new().vlan(4095))
                .udp(1, 2)
                .payload(b"xyz")
                .build(),
        ]
    }

    /// Re-validate the IPv4 header checksum of an untagged or tagged
    /// IPv4 frame after an edit, so that edits reach the fast path.
    fn fix_ipv4_checksum(frame: &mut [u8]) {
        let l3 = if frame.get(12..14) == Some(&[0x81, 0x00]) {
            18
        } else {
            14
        };
        if frame.len() < l3 + 20 || frame[l3] != 0x45 {
            return;
        }
        frame[l3 + 10] = 0;
        frame[l3 + 11] = 0;
        let check = checksum::of(&frame[l3..l3 + 20]);
        frame[l3 + 10..l3 + 12].copy_from_slice(&check.to_be_bytes());
    }

    #[test]
    fn fast_path_takes_the_common_frames_and_agrees_with_the_full_parser() {
        for frame in common_frames() {
            let fast = parse_common(&frame).expect("a common frame takes the fast path");
            assert_eq!(Ok(fast), parse_full(&frame));
        }
    }

    #[test]
    fn fast_path_leaves_the_rest_to_the_full_parser() {
        let v4 = || {
            PacketBuilder::new()
                .eth(A, B)
                .ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
        };
        let mut bad_checksum = v4().tcp(1, 2).build();
        bad_checksum[24] ^= 0x01;
        for frame in [
            v4().ipv4_options(&[1, 1, 1, 1]).tcp(1, 2).build(),
            v4().fragment(0, true).tcp(1, 2).build(),
            v4().icmp(8, 0, 0).build(),
            PacketBuilder::new()
                .eth(A, B)
                .ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED)
                .ipv6_ext(60, &[0; 6])
                .udp(1, 2)
                .build(),
            bad_checksum,
        ] {
            assert_eq!(parse_common(&frame), None);
        }
    }

    proptest! {
        #[test]
        fn fast_path_never_disagrees_with_the_full_parser(
            which in 0usize..5,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            fix_checksum in any::<bool>(),
            cut in any::<usize>(),
        ) {
            let mut frame = common_frames()[which].clone();
            for (at, value) in edits {
                let i = at % frame.len();
                frame[i] = value;
            }
            if fix_checksum {
                fix_ipv4_checksum(&mut frame);
            }
            for len in [frame.len(), cut % (frame.len() + 1)] {
                let bytes = &frame[..len];
                if let Some(fast) = parse_common(bytes) {
                    prop_assert_eq!(Ok(fast), parse_full(bytes));
                }
                prop_assert_eq!(parse_frame(bytes), parse_full(bytes));
                // Into a slot holding another frame's parse, or none.
                let mut slot = Some(parse_frame(&common_frames()[(which + 1) % 5]));
                prop_assert_eq!(parse_frame_into(bytes, &mut slot), &parse_full(bytes));
                prop_assert_eq!(&slot, &Some(parse_full(bytes)));
                let mut empty = None;
                prop_assert_eq!(parse_frame_into(bytes, &mut empty), &parse_full(bytes));
            }
        }
    }
}
