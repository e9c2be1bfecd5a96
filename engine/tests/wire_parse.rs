//! parse_frame: every header kind, every error, truncation at every
//! length, and proptest: no input panics.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use support::*;
use uvs_engine::wire::build::PacketBuilder;
use uvs_engine::wire::{arp, parse_frame, tcp, tunnel, IcmpErrorKind, Network, WireError};

fn tcp4() -> PacketBuilder {
    PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT4, VIP4)
        .ttl(17)
        .df(true)
        .tcp(CPORT, VPORT)
        .flags(tcp::SYN)
        .payload(b"abc")
}

#[test]
fn parses_ipv4_tcp() {
    let frame = tcp4().build();
    let p = parse_frame(&frame).unwrap();
    assert_eq!(p.network, Network::Ipv4);
    assert_eq!((p.l3, p.l4, p.payload), (14, 34, 54));
    assert_eq!(p.ethertype, 0x0800);
    assert_eq!(p.vlan, None);
    assert_eq!(p.protocol, 6);
    assert_eq!(p.saddr, IpAddr::V4(CLIENT4));
    assert_eq!(p.daddr, IpAddr::V4(VIP4));
    assert_eq!((p.sport, p.dport), (CPORT, VPORT));
    assert_eq!(p.tcp_flags, tcp::SYN);
    assert_eq!(p.ip_len, 20 + 20 + 3);
    assert_eq!(p.ttl, 17);
    assert!(p.dont_fragment);
    assert!(!p.is_fragment && !p.is_first_fragment);
    assert!(p.icmp_error.is_none());
}

#[test]
fn parses_vlan_ipv6_udp() {
    let frame = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .vlan(100)
        .ipv6(CLIENT6, VIP6)
        .ttl(9)
        .udp(53, 5353)
        .payload(b"q")
        .build();
    let p = parse_frame(&frame).unwrap();
    assert_eq!(p.vlan, Some(100));
    assert_eq!(p.ethertype, 0x86dd);
    assert_eq!((p.l3, p.l4, p.payload), (18, 58, 66));
    assert_eq!(p.network, Network::Ipv6);
    assert_eq!((p.protocol, p.sport, p.dport, p.ttl), (17, 53, 5353, 9));
    assert_eq!(p.ip_len, 40 + 8 + 1);
    assert!(p.dont_fragment);
}

#[test]
fn parses_ipv4_options_and_ethernet_padding() {
    let mut frame = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT4, VIP4)
        .ipv4_options(&[1, 1, 1, 1, 0x94, 4, 0, 0]) // NOPs, router alert
        .udp(1, 2)
        .build();
    frame.resize(80, 0);
    let p = parse_frame(&frame).unwrap();
    assert_eq!((p.l4, p.payload, p.ip_len), (14 + 28, 14 + 36, 36));
    assert_eq!(p.ip_end(), 50);
}

#[test]
fn walks_ipv6_extension_headers() {
    let hbh = [0u8, 1, 4, 0, 0, 0, 0]; // len 0 (8 bytes): PadN
    let route = [0u8, 0, 0, 0, 0, 0, 0]; // type 0, segments left 0
    let dst = [0u8, 1, 4, 0, 0, 0, 0];
    let ah = [1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // payload len 1 → 12 bytes
    let frame = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv6(CLIENT6, VIP6)
        .ipv6_ext(0, &hbh)
        .ipv6_ext(43, &route)
        .ipv6_ext(60, &dst)
        .ipv6_ext(51, &ah)
        .tcp(CPORT, VPORT)
        .build();
    let p = parse_frame(&frame).unwrap();
    assert_eq!(p.protocol, 6);
    assert_eq!(p.l4, 14 + 40 + 8 + 8 + 8 + 12);
    assert_eq!((p.sport, p.dport), (CPORT, VPORT));
}

#[test]
fn too_many_ipv6_extension_headers_are_refused() {
    let mut b = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv6(CLIENT6, VIP6);
    for _ in 0..9 {
        b = b.ipv6_ext(60, &[0, 1, 4, 0, 0, 0, 0]);
    }
    let frame = b.udp(1, 2).build();
    assert_eq!(parse_frame(&frame), Err(WireError::TooManyExtHeaders));
}

#[test]
fn recognises_ipv4_fragments() {
    let first = tcp4().fragment(0, true).build();
    let p = parse_frame(&first).unwrap();
    assert!(p.is_fragment && p.is_first_fragment);
    assert_eq!(p.sport, CPORT);
    let later = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT4, VIP4)
        .fragment(1480, false)
        .raw_l4(6)
        .payload(&[0xff; 3]) // would be a truncated TCP header
        .build();
    let p = parse_frame(&later).unwrap();
    assert!(p.is_fragment && !p.is_first_fragment);
    assert_eq!(
        (p.protocol, p.sport, p.dport, p.l4, p.payload),
        (6, 0, 0, 34, 34)
    );
    assert!(!p.has_ports());
}

#[test]
fn recognises_ipv6_fragments() {
    // Fragment header: reserved, offset 0 + M, identification.
    let first = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv6(CLIENT6, VIP6)
        .ipv6_ext(44, &[0, 0, 1, 0, 0, 0, 7])
        .udp(1, 2)
        .build();
    let p = parse_frame(&first).unwrap();
    assert!(p.is_fragment && p.is_first_fragment);
    assert_eq!((p.protocol, p.sport, p.dport), (17, 1, 2));
    let later = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv6(CLIENT6, VIP6)
        .ipv6_ext(44, &[0, 0x05, 0xc8, 0, 0, 0, 7]) // offset 185×8
        .raw_l4(17)
        .payload(&[1, 2])
        .build();
    let p = parse_frame(&later).unwrap();
    assert!(p.is_fragment && !p.is_first_fragment);
    assert_eq!((p.protocol, p.sport, p.l4), (17, 0, 14 + 48));
}

fn icmp_error_frame(v6: bool, msg: (u8, u8), rest: u32) -> Vec<u8> {
    let n = net(v6);
    let quoted = PacketBuilder::new()
        .ip(n.vip, n.client)
        .udp(VPORT, CPORT)
        .payload(b"reply")
        .build_ip();
    PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ip(n.router, n.vip)
        .icmp(msg.0, msg.1, rest)
        .payload(&quoted)
        .build()
}

#[test]
fn icmp_errors_expose_the_quoted_packet() {
    let cases = [
        (false, (3, 4), IcmpErrorKind::DestUnreachable),
        (false, (4, 0), IcmpErrorKind::SourceQuench),
        (false, (11, 0), IcmpErrorKind::TimeExceeded),
        (false, (12, 0), IcmpErrorKind::ParameterProblem),
        (true, (1, 4), IcmpErrorKind::DestUnreachable),
        (true, (2, 0), IcmpErrorKind::PacketTooBig),
        (true, (3, 0), IcmpErrorKind::TimeExceeded),
        (true, (4, 0), IcmpErrorKind::ParameterProblem),
    ];
    for (v6, msg, kind) in cases {
        let n = net(v6);
        let frame = icmp_error_frame(v6, msg, 1400);
        let p = parse_frame(&frame).unwrap();
        let e = p.icmp_error.expect("an ICMP error");
        assert_eq!((e.kind, e.icmp_type, e.code), (kind, msg.0, msg.1));
        let hdr = if v6 { 40 } else { 20 };
        assert_eq!(usize::from(e.inner.l3), 14 + hdr + 8);
        assert_eq!(usize::from(e.inner.l4), 14 + hdr + 8 + hdr);
        assert_eq!(
            (e.inner.protocol, e.inner.saddr, e.inner.daddr),
            (17, n.vip, n.client)
        );
        assert_eq!((e.inner.sport, e.inner.dport), (VPORT, CPORT));
        assert_eq!(p.daddr, n.vip);
    }
}

#[test]
fn icmp_echo_is_not_an_error() {
    let frame = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT4, VIP4)
        .icmp(8, 0, 0x0001_0002)
        .build();
    let p = parse_frame(&frame).unwrap();
    assert_eq!(p.protocol, 1);
    assert!(p.icmp_error.is_none());
    assert_eq!(p.payload, p.l4 + 8);
}

#[test]
fn parses_arp() {
    let mut frame = PacketBuilder::new().eth(CLIENT_MAC, [0xff; 6]).build();
    let mut body = [0u8; arp::PACKET_LEN];
    let repr = arp::Repr {
        operation: arp::OP_REQUEST,
        sender_mac: CLIENT_MAC,
        sender_ip: CLIENT4,
        target_mac: [0; 6],
        target_ip: VIP4,
    };
    repr.emit(&mut body).unwrap();
    frame.extend_from_slice(&body);
    let p = parse_frame(&frame).unwrap();
    assert_eq!(p.network, Network::Arp);
    assert_eq!((p.saddr, p.daddr), (IpAddr::V4(CLIENT4), IpAddr::V4(VIP4)));
    let view = arp::Packet::new_checked(&frame[14..]).unwrap();
    assert_eq!(arp::Repr::parse(&view), repr);
}

#[test]
fn reports_each_drop_reason() {
    let good = tcp4().build();
    let mut bad_version = good.clone();
    bad_version[14] = 0x65;
    assert_eq!(parse_frame(&bad_version), Err(WireError::BadVersion));
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    assert_eq!(parse_frame(&bad_ihl), Err(WireError::BadHeaderLength));
    let mut bad_total = good.clone();
    bad_total[16..18].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(parse_frame(&bad_total), Err(WireError::BadLength));
    let mut long_total = good.clone();
    long_total[16..18].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(parse_frame(&long_total), Err(WireError::Truncated));
    let mut bad_sum = good.clone();
    bad_sum[24] ^= 0xff;
    assert_eq!(parse_frame(&bad_sum), Err(WireError::BadChecksum));
    let mut other = good.clone();
    other[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    assert_eq!(parse_frame(&other), Err(WireError::UnsupportedEthertype));
    let mut bad_doff = good.clone();
    bad_doff[14 + 20 + 12] = 0x40;
    assert_eq!(parse_frame(&bad_doff), Err(WireError::BadHeaderLength));
    let udp = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT4, VIP4)
        .udp(1, 2)
        .build();
    let mut bad_udp_len = udp.clone();
    bad_udp_len[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(parse_frame(&bad_udp_len), Err(WireError::BadLength));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let frames = [
        tcp4().build(),
        tcp4().vlan(7).tcp_options(&[2, 4, 5, 0xb4]).build(),
        PacketBuilder::new()
            .eth(CLIENT_MAC, DIRECTOR_MAC)
            .ipv6(CLIENT6, VIP6)
            .ipv6_ext(0, &[0, 1, 4, 0, 0, 0, 0])
            .udp(1, 2)
            .build(),
        icmp_error_frame(false, (3, 4), 1400),
        icmp_error_frame(true, (2, 0), 1400),
    ];
    for frame in frames {
        assert!(parse_frame(&frame).is_ok());
        for len in 0..frame.len() {
            assert!(
                parse_frame(&frame[..len]).is_err(),
                "truncated to {len} of {}",
                frame.len()
            );
        }
    }
}

#[test]
fn tcp_options_walk_stops_at_end_and_malformed() {
    let frame = tcp4()
        .tcp_options(&[2, 4, 5, 0xb4, 1, 3, 3, 7, 0, 9, 9])
        .build();
    let seg = tcp::Packet::new_checked(&frame[34..]).unwrap();
    let options: Vec<(u8, Vec<u8>)> = seg.option_iter().map(|(k, d)| (k, d.to_vec())).collect();
    assert_eq!(options, vec![(2, vec![5, 0xb4]), (1, vec![]), (3, vec![7])]);
    let bad = tcp4().tcp_options(&[2, 40]).build();
    let seg = tcp::Packet::new_checked(&bad[34..]).unwrap();
    assert_eq!(seg.option_iter().count(), 0);
}

#[test]
fn gue_and_gre_headers_parse() {
    let gue = tunnel::GueHeader::parse(&[0x01, 4, 0, 0, 9, 9, 9, 9]).unwrap();
    assert_eq!(
        (gue.options_len, gue.proto_ctype, gue.header_len()),
        (4, 4, 8)
    );
    assert_eq!(
        tunnel::GueHeader::parse(&[0x01, 4, 0, 0]),
        Err(WireError::Truncated)
    );
    assert_eq!(
        tunnel::GueHeader::parse(&[0x40, 4, 0, 0]),
        Err(WireError::BadVersion)
    );
    let gre = tunnel::GreHeader::parse(&[0x80, 0, 0x08, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!((gre.protocol, gre.header_len()), (0x0800, 8));
    assert_eq!(
        tunnel::GreHeader::parse(&[0x80, 0, 0x08, 0]),
        Err(WireError::Truncated)
    );
}

#[test]
fn parsed_frame_of_ipip_names_the_tunnel_protocol() {
    let inner = tcp4().build_ip();
    let frame = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(Ipv4Addr::new(10, 0, 0, 1), RS4)
        .raw_l4(4)
        .payload(&inner)
        .build();
    let p = parse_frame(&frame).unwrap();
    assert_eq!(p.protocol, 4);
    assert_eq!(p.l4, 34);
    let inner_parsed = parse_frame(&[&frame[..12], &[0x08, 0x00], &frame[34..]].concat()).unwrap();
    assert_eq!(inner_parsed.dport, VPORT);
}

fn valid_frames() -> Vec<Vec<u8>> {
    vec![
        tcp4().build(),
        PacketBuilder::new()
            .eth(CLIENT_MAC, DIRECTOR_MAC)
            .vlan(3)
            .ipv6(CLIENT6, VIP6)
            .udp(1, 2)
            .payload(b"x")
            .build(),
        icmp_error_frame(false, (3, 4), 1400),
        icmp_error_frame(true, (2, 0), 1400),
        PacketBuilder::new()
            .eth(CLIENT_MAC, DIRECTOR_MAC)
            .ipv6(CLIENT6, VIP6)
            .ipv6_ext(44, &[0, 0, 1, 0, 0, 0, 7])
            .tcp(1, 2)
            .build(),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&bytes);
    }

    #[test]
    fn random_ip_after_ethernet_header_never_panics(
        v6 in any::<bool>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
        frame.push(if v6 { 0x60 } else { 0x45 });
        frame.extend_from_slice(&bytes);
        let _ = parse_frame(&frame);
    }

    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut frame = valid_frames()[which].clone();
        for (at, value) in edits {
            let i = at % frame.len();
            frame[i] = value;
        }
        let len = frame.len();
        let _ = parse_frame(&frame);
        let _ = parse_frame(&frame[..cut % (len + 1)]);
    }
}
