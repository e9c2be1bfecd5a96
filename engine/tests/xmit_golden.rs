//! Golden-packet tests for the forwarding methods (Katran style): each
//! case builds an input frame and, independently, the exact frame the
//! method must produce; the method's output must match byte for byte and
//! its checksums must verify under etherparse.

mod support;

use std::net::{IpAddr, SocketAddr};

use support::*;
use uvs_conf::{TunnelCsum, TunnelType};
use uvs_engine::wire::build::PacketBuilder;
use uvs_engine::wire::{self, tcp};
use uvs_engine::xmit::{self, Direction, XmitError, XmitOutcome};

const PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n";

fn with_l4(b: PacketBuilder, udp: bool, sport: u16, dport: u16) -> PacketBuilder {
    if udp {
        b.udp(sport, dport)
    } else {
        b.tcp(sport, dport)
            .flags(tcp::ACK | tcp::PSH)
            .seq(1000)
            .ack_num(2000)
    }
}

/// A frame on the wire between `src` and `dst` at the IP level.
fn packet(
    macs: ([u8; 6], [u8; 6]),
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    ttl: u8,
    udp: bool,
) -> PacketBuilder {
    let b = PacketBuilder::new()
        .eth(macs.0, macs.1)
        .ip(src.0, dst.0)
        .ttl(ttl)
        .df(true)
        .ident(0x1234);
    with_l4(b, udp, src.1, dst.1).payload(PAYLOAD)
}

const IN_MACS: ([u8; 6], [u8; 6]) = (CLIENT_MAC, DIRECTOR_MAC);
const OUT_MACS: ([u8; 6], [u8; 6]) = (DIRECTOR_MAC, NEXT_HOP_MAC);

fn families() -> Vec<(bool, bool, String)> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        for udp in [false, true] {
            let name = format!(
                "{}/{}",
                if v6 { "IPv6" } else { "IPv4" },
                if udp { "UDP" } else { "TCP" }
            );
            out.push((v6, udp, name));
        }
    }
    out
}

fn check(
    method: Method,
    input: &[u8],
    p: &xmit::XmitParams,
    want: &[u8],
    verdict: XmitOutcome,
    case: &str,
) {
    let (got_verdict, got) = run(method, input, p);
    assert_eq!(got_verdict, Ok(verdict), "{case}: verdict");
    assert_frames_eq(&got, want, case);
    verify_checksums(&got);
}

#[test]
fn dr_rewrites_macs_and_decrements_ttl_only() {
    for (v6, udp, name) in families() {
        let n = net(v6);
        let p = params(v6, Direction::Inbound);
        let input = packet(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 64, udp).build();
        let want = packet(OUT_MACS, (n.client, CPORT), (n.vip, VPORT), 63, udp).build();
        check(
            xmit::dr::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("DR {name}"),
        );
    }
}

#[test]
fn dr_strips_ethernet_padding_and_keeps_vlan() {
    let n = net(false);
    let p = params(false, Direction::Inbound);
    let mut input = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .vlan(42)
        .ip(n.client, n.vip)
        .tcp(CPORT, VPORT)
        .flags(tcp::SYN)
        .build();
    input.resize(64, 0); // minimum frame, padded
    let want = PacketBuilder::new()
        .eth(DIRECTOR_MAC, NEXT_HOP_MAC)
        .vlan(42)
        .ip(n.client, n.vip)
        .ttl(63)
        .tcp(CPORT, VPORT)
        .flags(tcp::SYN)
        .build();
    check(
        xmit::dr::xmit,
        &input,
        &p,
        &want,
        XmitOutcome::Forward,
        "DR VLAN padded",
    );
}

#[test]
fn nat_inbound_rewrites_destination_to_real_server() {
    for (v6, udp, name) in families() {
        let n = net(v6);
        let p = params(v6, Direction::Inbound);
        let input = packet(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 64, udp).build();
        let want = packet(OUT_MACS, (n.client, CPORT), (n.rs, RPORT), 63, udp).build();
        check(
            xmit::nat::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("NAT in {name}"),
        );
    }
}

#[test]
fn nat_reply_restores_vip() {
    for (v6, udp, name) in families() {
        let n = net(v6);
        let p = params(v6, Direction::Outbound);
        let input = packet(
            (NEXT_HOP_MAC, DIRECTOR_MAC),
            (n.rs, RPORT),
            (n.client, CPORT),
            64,
            udp,
        )
        .build();
        let want = packet(OUT_MACS, (n.vip, VPORT), (n.client, CPORT), 63, udp).build();
        check(
            xmit::nat::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("NAT out {name}"),
        );
    }
}

#[test]
fn nat_keeps_ipv4_udp_zero_checksum() {
    let n = net(false);
    let p = params(false, Direction::Inbound);
    let input = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ip(n.client, n.vip)
        .udp(CPORT, VPORT)
        .udp_zero_checksum()
        .payload(PAYLOAD)
        .build();
    let want = PacketBuilder::new()
        .eth(DIRECTOR_MAC, NEXT_HOP_MAC)
        .ip(n.client, n.rs)
        .ttl(63)
        .udp(CPORT, RPORT)
        .udp_zero_checksum()
        .payload(PAYLOAD)
        .build();
    check(
        xmit::nat::xmit,
        &input,
        &p,
        &want,
        XmitOutcome::Forward,
        "NAT UDP csum 0",
    );
}

#[test]
fn nat_refuses_non_first_fragment() {
    let n = net(false);
    let p = params(false, Direction::Inbound);
    let input = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ip(n.client, n.vip)
        .fragment(1480, false)
        .raw_l4(17)
        .payload(PAYLOAD)
        .build();
    let (verdict, _) = run(xmit::nat::xmit, &input, &p);
    assert_eq!(verdict, Err(XmitError::Fragment));
}

#[test]
fn fullnat_inbound_rewrites_both_ends() {
    for (v6, udp, name) in families() {
        let n = net(v6);
        let p = params(v6, Direction::Inbound);
        let input = packet(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 64, udp).build();
        let want = packet(OUT_MACS, (n.local, LPORT), (n.rs, RPORT), 63, udp).build();
        check(
            xmit::fullnat::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("FNAT in {name}"),
        );
    }
}

#[test]
fn fullnat_reply_restores_vip_and_client() {
    for (v6, udp, name) in families() {
        let n = net(v6);
        let p = params(v6, Direction::Outbound);
        let input = packet(
            (NEXT_HOP_MAC, DIRECTOR_MAC),
            (n.rs, RPORT),
            (n.local, LPORT),
            64,
            udp,
        )
        .build();
        let want = packet(OUT_MACS, (n.vip, VPORT), (n.client, CPORT), 63, udp).build();
        check(
            xmit::fullnat::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("FNAT out {name}"),
        );
    }
}

fn toa_option(client: SocketAddr) -> Vec<u8> {
    let mut opt = vec![254u8, 0];
    opt.extend_from_slice(&client.port().to_be_bytes());
    match client.ip() {
        IpAddr::V4(a) => opt.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => opt.extend_from_slice(&a.octets()),
    }
    opt[1] = opt.len() as u8;
    opt
}

const MSS_OPTION: [u8; 4] = [2, 4, 0x05, 0xb4];

fn syn(
    macs: ([u8; 6], [u8; 6]),
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    ttl: u8,
    options: &[u8],
) -> PacketBuilder {
    PacketBuilder::new()
        .eth(macs.0, macs.1)
        .ip(src.0, dst.0)
        .ttl(ttl)
        .df(true)
        .tcp(src.1, dst.1)
        .flags(tcp::SYN)
        .seq(7)
        .tcp_options(options)
}

#[test]
fn fullnat_syn_gets_toa_option_first() {
    for v6 in [false, true] {
        let n = net(v6);
        let mut p = params(v6, Direction::Inbound);
        p.insert_toa = true;
        let input = syn(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 64, &MSS_OPTION).build();
        let mut options = toa_option(SocketAddr::new(n.client, CPORT));
        options.extend_from_slice(&MSS_OPTION);
        let want = syn(OUT_MACS, (n.local, LPORT), (n.rs, RPORT), 63, &options).build();
        check(
            xmit::fullnat::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("TOA v6={v6}"),
        );
        // Without headroom the payload side moves into the tailroom instead.
        let (verdict, got) = run_with_room(xmit::fullnat::xmit, &input, &p, 0, 64);
        assert_eq!(verdict, Ok(XmitOutcome::Forward));
        assert_frames_eq(&got, &want, "TOA via tailroom");
    }
}

#[test]
fn fullnat_first_ack_with_data_gets_toa() {
    let n = net(false);
    let mut p = params(false, Direction::Inbound);
    p.insert_toa = true;
    let input = packet(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 64, false).build();
    let want = packet(OUT_MACS, (n.local, LPORT), (n.rs, RPORT), 63, false)
        .tcp_options(&toa_option(SocketAddr::new(n.client, CPORT)))
        .build();
    check(
        xmit::fullnat::xmit,
        &input,
        &p,
        &want,
        XmitOutcome::Forward,
        "TOA on data",
    );
}

#[test]
fn fullnat_skips_toa_without_option_room() {
    let n = net(false);
    let mut p = params(false, Direction::Inbound);
    p.insert_toa = true;
    let options = [1u8; 36]; // 20 + 36 = 56 bytes: no room for 8 more
    let input = syn(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 64, &options).build();
    let want = syn(OUT_MACS, (n.local, LPORT), (n.rs, RPORT), 63, &options).build();
    check(
        xmit::fullnat::xmit,
        &input,
        &p,
        &want,
        XmitOutcome::Forward,
        "TOA no room",
    );
}

fn tunnel_case(
    v6: bool,
    udp: bool,
    kind: TunnelType,
    csum: TunnelCsum,
) -> (Vec<u8>, Vec<u8>, xmit::XmitParams) {
    let n = net(v6);
    let mut p = params(v6, Direction::Inbound);
    p.tunnel.kind = kind;
    p.tunnel.csum = csum;
    let input = packet(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 64, udp)
        .tos(0xbb)
        .build();
    let inner = packet(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 63, udp)
        .tos(0xbb)
        .build_ip();
    let inner_proto = if v6 { 41 } else { 4 };
    let ethertype = if v6 { 0x86dd } else { 0x0800 };
    // Outer TOS: DSCP copied, inner CE (0b11) becomes ECT(0) (0b10).
    let outer = PacketBuilder::new()
        .eth(DIRECTOR_MAC, NEXT_HOP_MAC)
        .ip(n.tunsrc, n.rs)
        .ttl(63)
        .tos(0xba)
        .df(true)
        .payload(&inner);
    let outer = match kind {
        TunnelType::Ipip => outer.raw_l4(inner_proto),
        TunnelType::Gue { port } => {
            let b = outer.gue(xmit::tunnel::gue_source_port(FLOW_HASH), port, inner_proto);
            if csum != TunnelCsum::NoCsum || v6 {
                b
            } else {
                b.udp_zero_checksum()
            }
        }
        TunnelType::Gre => outer.gre(ethertype, csum == TunnelCsum::Csum),
    };
    (input, outer.build(), p)
}

#[test]
fn tunnel_encapsulates_every_kind() {
    let kinds = [
        (TunnelType::Ipip, TunnelCsum::NoCsum),
        (TunnelType::Gue { port: GUE_PORT }, TunnelCsum::NoCsum),
        (TunnelType::Gue { port: GUE_PORT }, TunnelCsum::Csum),
        (TunnelType::Gue { port: GUE_PORT }, TunnelCsum::RemCsum),
        (TunnelType::Gre, TunnelCsum::NoCsum),
        (TunnelType::Gre, TunnelCsum::Csum),
    ];
    for (v6, udp, name) in families() {
        for (kind, csum) in kinds {
            let (input, want, p) = tunnel_case(v6, udp, kind, csum);
            check(
                xmit::tunnel::xmit,
                &input,
                &p,
                &want,
                XmitOutcome::Forward,
                &format!("TUN {kind:?} {csum:?} {name}"),
            );
        }
    }
}

#[test]
fn tunnel_without_headroom_is_refused() {
    let (input, _, p) = tunnel_case(false, false, TunnelType::Ipip, TunnelCsum::NoCsum);
    let (verdict, _) = run_with_room(xmit::tunnel::xmit, &input, &p, 8, 0);
    assert_eq!(verdict, Err(XmitError::NoRoom));
}

#[test]
fn gue_source_port_stays_in_local_port_range() {
    assert_eq!(xmit::tunnel::gue_source_port(0), 32768);
    assert_eq!(xmit::tunnel::gue_source_port(u32::MAX), 60998);
    assert_eq!(
        xmit::tunnel::gue_source_port(1 << 31),
        32768 + (60999 - 32768) / 2
    );
}

/// The ICMP error the director sends back for `original` (an IP packet
/// as it would leave, i.e. with its TTL already decremented when the
/// kernel decrements before the check).
fn icmp_error(
    v6: bool,
    from: IpAddr,
    to: IpAddr,
    msg: (u8, u8),
    rest: u32,
    original: &[u8],
) -> Vec<u8> {
    let max = if v6 { 1280 - 48 } else { 576 - 28 };
    let quote = &original[..original.len().min(max)];
    PacketBuilder::new()
        .eth(DIRECTOR_MAC, CLIENT_MAC)
        .ip(from, to)
        .ttl(64)
        .tos(if v6 { 0 } else { 0xc0 })
        .icmp(msg.0, msg.1, rest)
        .payload(quote)
        .build()
}

#[test]
fn oversized_df_packet_becomes_frag_needed_or_packet_too_big() {
    let big = vec![0x42u8; 1600];
    for v6 in [false, true] {
        let n = net(v6);
        let p = params(v6, Direction::Inbound);
        let make = |ttl| {
            PacketBuilder::new()
                .eth(CLIENT_MAC, DIRECTOR_MAC)
                .ip(n.client, n.vip)
                .ttl(ttl)
                .df(true)
                .tcp(CPORT, VPORT)
                .flags(tcp::ACK)
                .payload(&big)
        };
        let input = make(64).build();
        let quoted = make(63).build_ip();
        let msg = if v6 { (2, 0) } else { (3, 4) };
        let methods: [(Method, &str); 3] = [
            (xmit::dr::xmit, "DR"),
            (xmit::nat::xmit, "NAT"),
            (xmit::fullnat::xmit, "FNAT"),
        ];
        for (method, name) in methods {
            let want = icmp_error(v6, n.vip, n.client, msg, 1500, &quoted);
            check(
                method,
                &input,
                &p,
                &want,
                XmitOutcome::IcmpToClient,
                &format!("{name} MTU v6={v6}"),
            );
        }
        // Tunnel: MTU minus the 20/40-byte outer header.
        let overhead = if v6 { 40 } else { 20 };
        let want = icmp_error(v6, n.vip, n.client, msg, 1500 - overhead, &quoted);
        check(
            xmit::tunnel::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::IcmpToClient,
            &format!("TUN MTU v6={v6}"),
        );
    }
}

#[test]
fn tunnel_mtu_accounts_for_gue_overhead() {
    let n = net(false);
    let mut p = params(false, Direction::Inbound);
    p.tunnel.kind = TunnelType::Gue { port: GUE_PORT };
    // 1500 - 20 - 8 - 4 = 1468 fits; 1469 does not.
    for (len, fits) in [(1468usize, true), (1469, false)] {
        let payload = vec![0u8; len - 20 - 8];
        let input = PacketBuilder::new()
            .eth(CLIENT_MAC, DIRECTOR_MAC)
            .ip(n.client, n.vip)
            .df(true)
            .udp(CPORT, VPORT)
            .payload(&payload)
            .build();
        let (verdict, _) = run(xmit::tunnel::xmit, &input, &p);
        let want = if fits {
            XmitOutcome::Forward
        } else {
            XmitOutcome::IcmpToClient
        };
        assert_eq!(verdict, Ok(want), "inner length {len}");
    }
}

#[test]
fn oversized_packet_without_df_is_dropped() {
    let n = net(false);
    let p = params(false, Direction::Inbound);
    let input = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ip(n.client, n.vip)
        .udp(CPORT, VPORT)
        .payload(&[0u8; 1600])
        .build();
    let (verdict, _) = run(xmit::dr::xmit, &input, &p);
    assert_eq!(verdict, Err(XmitError::NeedsFragmentation));
}

#[test]
fn ttl_expiry_answers_time_exceeded() {
    for (v6, udp, name) in families() {
        let n = net(v6);
        let p = params(v6, Direction::Inbound);
        let original = packet(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 1, udp);
        let input = original.build();
        let msg = if v6 { (3, 0) } else { (11, 0) };
        let want = icmp_error(v6, n.vip, n.client, msg, 0, &original.build_ip());
        check(
            xmit::nat::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::IcmpToClient,
            &format!("TTL {name}"),
        );
        // Without headroom, the quote moves into the tailroom.
        let (verdict, got) = run_with_room(xmit::dr::xmit, &input, &p, 0, 64);
        assert_eq!(verdict, Ok(XmitOutcome::IcmpToClient));
        assert_frames_eq(&got, &want, "TTL via tailroom");
    }
}

/// An ICMP error from `from` to `to` quoting the first 8 transport
/// bytes of a TCP packet `qsrc` → `qdst` (no transport checksum quoted).
fn icmp_about(
    macs: ([u8; 6], [u8; 6]),
    v6: bool,
    from: IpAddr,
    to: IpAddr,
    ttl: u8,
    qsrc: (IpAddr, u16),
    qdst: (IpAddr, u16),
) -> Vec<u8> {
    let quoted = PacketBuilder::new()
        .ip(qsrc.0, qdst.0)
        .ttl(50)
        .tcp(qsrc.1, qdst.1)
        .seq(99)
        .payload(PAYLOAD)
        .build_ip();
    let hdr = if v6 { 40 } else { 20 };
    let msg = if v6 { (1, 4) } else { (3, 3) };
    PacketBuilder::new()
        .eth(macs.0, macs.1)
        .ip(from, to)
        .ttl(ttl)
        .icmp(msg.0, msg.1, 0)
        .payload(&quoted[..hdr + 8])
        .build()
}

#[test]
fn nat_icmp_from_client_side_is_translated_to_real_server() {
    for v6 in [false, true] {
        let n = net(v6);
        let p = params(v6, Direction::Inbound);
        let input = icmp_about(
            IN_MACS,
            v6,
            n.router,
            n.vip,
            64,
            (n.vip, VPORT),
            (n.client, CPORT),
        );
        let want = icmp_about(
            OUT_MACS,
            v6,
            n.router,
            n.rs,
            63,
            (n.rs, RPORT),
            (n.client, CPORT),
        );
        check(
            xmit::icmp::nat_xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("NAT ICMP in v6={v6}"),
        );
    }
}

#[test]
fn nat_icmp_from_real_server_side_is_translated_to_vip() {
    for v6 in [false, true] {
        let n = net(v6);
        let p = params(v6, Direction::Outbound);
        let input = icmp_about(
            (NEXT_HOP_MAC, DIRECTOR_MAC),
            v6,
            n.rs,
            n.client,
            64,
            (n.client, CPORT),
            (n.rs, RPORT),
        );
        let want = icmp_about(
            OUT_MACS,
            v6,
            n.vip,
            n.client,
            63,
            (n.client, CPORT),
            (n.vip, VPORT),
        );
        check(
            xmit::icmp::nat_xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("NAT ICMP out v6={v6}"),
        );
    }
}

#[test]
fn fullnat_icmp_is_translated_both_ways() {
    for v6 in [false, true] {
        let n = net(v6);
        let p = params(v6, Direction::Inbound);
        let input = icmp_about(
            IN_MACS,
            v6,
            n.router,
            n.vip,
            64,
            (n.vip, VPORT),
            (n.client, CPORT),
        );
        let want = icmp_about(
            OUT_MACS,
            v6,
            n.local,
            n.rs,
            63,
            (n.rs, RPORT),
            (n.local, LPORT),
        );
        check(
            xmit::icmp::fullnat_xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("FNAT ICMP in v6={v6}"),
        );
        let p = params(v6, Direction::Outbound);
        let input = icmp_about(
            (NEXT_HOP_MAC, DIRECTOR_MAC),
            v6,
            n.rs,
            n.local,
            64,
            (n.local, LPORT),
            (n.rs, RPORT),
        );
        let want = icmp_about(
            OUT_MACS,
            v6,
            n.vip,
            n.client,
            63,
            (n.client, CPORT),
            (n.vip, VPORT),
        );
        check(
            xmit::icmp::fullnat_xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("FNAT ICMP out v6={v6}"),
        );
    }
}

#[test]
fn icmp_error_is_never_answered_with_icmp() {
    let n = net(false);
    let p = params(false, Direction::Inbound);
    let input = icmp_about(
        IN_MACS,
        false,
        n.router,
        n.vip,
        1,
        (n.vip, VPORT),
        (n.client, CPORT),
    );
    let (verdict, _) = run(xmit::icmp::nat_xmit, &input, &p);
    assert_eq!(verdict, Err(XmitError::TtlExpired));
    let (verdict, _) = run(xmit::dr::xmit, &input, &p);
    assert_eq!(verdict, Err(XmitError::TtlExpired));
}

#[test]
fn icmp_method_refuses_non_errors() {
    let n = net(false);
    let p = params(false, Direction::Inbound);
    let input = packet(IN_MACS, (n.client, CPORT), (n.vip, VPORT), 64, true).build();
    let (verdict, _) = run(xmit::icmp::nat_xmit, &input, &p);
    assert_eq!(verdict, Err(XmitError::NotIcmpError));
    let parsed = wire::parse_frame(&input).unwrap();
    assert!(parsed.icmp_error.is_none());
}

#[test]
fn tunnel_carries_ipv4_over_ipv6_outer() {
    let n4 = net(false);
    let n6 = net(true);
    let mut p = params(false, Direction::Inbound);
    p.real_server = SocketAddr::new(n6.rs, RPORT);
    p.tunnel.source = n6.tunsrc;
    let input = packet(IN_MACS, (n4.client, CPORT), (n4.vip, VPORT), 64, false).build();
    let inner = packet(IN_MACS, (n4.client, CPORT), (n4.vip, VPORT), 63, false).build_ip();
    let want = PacketBuilder::new()
        .eth(DIRECTOR_MAC, NEXT_HOP_MAC)
        .ip(n6.tunsrc, n6.rs)
        .ttl(63)
        .raw_l4(4)
        .payload(&inner)
        .build();
    // The builder names the ethertype from the outer family already.
    assert_eq!(&want[12..14], &[0x86, 0xdd]);
    check(
        xmit::tunnel::xmit,
        &input,
        &p,
        &want,
        XmitOutcome::Forward,
        "IPv4 in IPv6",
    );
}

#[test]
fn tunnel_without_df_uses_flow_hash_ident_and_clear_df() {
    let n = net(false);
    let p = params(false, Direction::Inbound);
    let input = PacketBuilder::new()
        .eth(CLIENT_MAC, DIRECTOR_MAC)
        .ip(n.client, n.vip)
        .udp(CPORT, VPORT)
        .payload(PAYLOAD)
        .build();
    let inner = PacketBuilder::new()
        .ip(n.client, n.vip)
        .ttl(63)
        .udp(CPORT, VPORT)
        .payload(PAYLOAD)
        .build_ip();
    let want = PacketBuilder::new()
        .eth(DIRECTOR_MAC, NEXT_HOP_MAC)
        .ip(n.tunsrc, n.rs)
        .ttl(63)
        .ident(FLOW_HASH as u16)
        .raw_l4(4)
        .payload(&inner)
        .build();
    check(
        xmit::tunnel::xmit,
        &input,
        &p,
        &want,
        XmitOutcome::Forward,
        "IPIP no DF",
    );
}

#[test]
fn dr_forwards_icmp_error_of_its_connection_unchanged() {
    for v6 in [false, true] {
        let n = net(v6);
        let p = params(v6, Direction::Inbound);
        let input = icmp_about(
            IN_MACS,
            v6,
            n.router,
            n.vip,
            64,
            (n.vip, VPORT),
            (n.client, CPORT),
        );
        let want = icmp_about(
            OUT_MACS,
            v6,
            n.router,
            n.vip,
            63,
            (n.vip, VPORT),
            (n.client, CPORT),
        );
        check(
            xmit::dr::xmit,
            &input,
            &p,
            &want,
            XmitOutcome::Forward,
            &format!("DR ICMP v6={v6}"),
        );
    }
}

#[test]
fn tunnel_carries_ipv6_over_ipv4_outer_without_df() {
    let n4 = net(false);
    let n6 = net(true);
    let mut p = params(true, Direction::Inbound);
    p.real_server = SocketAddr::new(n4.rs, RPORT);
    p.tunnel.source = n4.tunsrc;
    let input = packet(IN_MACS, (n6.client, CPORT), (n6.vip, VPORT), 64, true).build();
    let inner = packet(IN_MACS, (n6.client, CPORT), (n6.vip, VPORT), 63, true).build_ip();
    let want = PacketBuilder::new()
        .eth(DIRECTOR_MAC, NEXT_HOP_MAC)
        .ip(n4.tunsrc, n4.rs)
        .ttl(63)
        .ident(FLOW_HASH as u16)
        .raw_l4(41)
        .payload(&inner)
        .build();
    check(
        xmit::tunnel::xmit,
        &input,
        &p,
        &want,
        XmitOutcome::Forward,
        "IPv6 in IPv4",
    );
}
