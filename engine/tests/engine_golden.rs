//! Whole-engine golden-packet tests (Katran style), through
//! `Engine::process` in the lab network: for each case a description, a
//! configuration, an input frame, the exact expected output frame built
//! independently with `PacketBuilder`, the expected verdict and the
//! counter deltas. Every output frame's checksums are verified with
//! etherparse.

mod engine_support;
#[path = "support/mod.rs"]
mod xmit_support;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use engine_support::*;
use uvs_conf::{Config, ForwardMethod, Protocol, SchedulerName, TunnelCsum, TunnelType};
use uvs_engine::lab::{Output, ROUTER6};
use uvs_engine::wire::build::PacketBuilder;
use uvs_engine::wire::tcp;
use uvs_engine::xmit;
use uvs_engine::Verdict;
use xmit_support::{assert_frames_eq, verify_checksums};

const PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n";
const MSS_OPTION: [u8; 4] = [2, 4, 0x05, 0xb4];

/// The client's first packet (a SYN with an MSS option for TCP, a
/// datagram for UDP) or a packet of the same shape at another hop.
fn first_packet(
    macs: ([u8; 6], [u8; 6]),
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    ttl: u8,
    udp: bool,
    tcp_options: &[u8],
) -> PacketBuilder {
    let b = PacketBuilder::new()
        .eth(macs.0, macs.1)
        .ip(src.0, dst.0)
        .ttl(ttl)
        .df(true)
        .ident(0x1234);
    if udp {
        b.udp(src.1, dst.1).payload(PAYLOAD)
    } else {
        b.tcp(src.1, dst.1)
            .flags(tcp::SYN)
            .seq(7)
            .tcp_options(tcp_options)
    }
}

/// The real server's reply (SYN-ACK or a datagram).
fn reply_packet(
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
        .ident(0x4321);
    if udp {
        b.udp(src.1, dst.1).payload(b"HTTP/1.1 200 OK\r\n\r\n")
    } else {
        b.tcp(src.1, dst.1)
            .flags(tcp::SYN | tcp::ACK)
            .seq(900)
            .ack_num(8)
            .tcp_options(&MSS_OPTION)
    }
}

/// The TOA option (kind 254) carrying the client's address and port.
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

/// The GUE source port the engine derives from the client tuple: the
/// engine's documented flow hash, recomputed here, mapped into the local
/// port range by the (separately tested) `gue_source_port`.
fn gue_sport(f: &Fam, protocol: u8) -> u16 {
    xmit::tunnel::gue_source_port(flow_hash(f, protocol))
}

/// The engine's flow hash of the client tuple `client:CPORT → vip:VPORT`.
fn flow_hash(f: &Fam, protocol: u8) -> u32 {
    let fold = |a: IpAddr| -> u32 {
        match a {
            IpAddr::V4(v) => u32::from(v),
            IpAddr::V6(v) => v.octets().chunks_exact(4).fold(0u32, |acc, c| {
                acc ^ u32::from_be_bytes([c[0], c[1], c[2], c[3]])
            }),
        }
    };
    let mixed = fold(f.client)
        ^ fold(f.vip).rotate_left(7)
        ^ ((u32::from(CPORT) << 16) | u32::from(VPORT))
        ^ u32::from(protocol);
    mixed.wrapping_mul(0x9e37_79b1)
}

fn method_name(m: ForwardMethod) -> String {
    match m {
        ForwardMethod::Dr => "DR".into(),
        ForwardMethod::Nat => "NAT".into(),
        ForwardMethod::FullNat => "FNAT".into(),
        ForwardMethod::Tunnel { kind, csum } => format!("TUN {kind:?} {csum:?}"),
    }
}

fn all_methods() -> Vec<ForwardMethod> {
    vec![
        ForwardMethod::Dr,
        ForwardMethod::Tunnel {
            kind: TunnelType::Ipip,
            csum: TunnelCsum::NoCsum,
        },
        ForwardMethod::Tunnel {
            kind: TunnelType::Gue { port: GUE_PORT },
            csum: TunnelCsum::NoCsum,
        },
        ForwardMethod::Tunnel {
            kind: TunnelType::Gue { port: GUE_PORT },
            csum: TunnelCsum::Csum,
        },
        ForwardMethod::Tunnel {
            kind: TunnelType::Gue { port: GUE_PORT },
            csum: TunnelCsum::RemCsum,
        },
        ForwardMethod::Tunnel {
            kind: TunnelType::Gre,
            csum: TunnelCsum::NoCsum,
        },
        ForwardMethod::Tunnel {
            kind: TunnelType::Gre,
            csum: TunnelCsum::Csum,
        },
        ForwardMethod::Nat,
        ForwardMethod::FullNat,
    ]
}

/// The real server's port: the virtual port for DR and TUN, `RPORT` for
/// the NAT methods.
fn rs_port(m: ForwardMethod) -> u16 {
    match m {
        ForwardMethod::Nat | ForwardMethod::FullNat => RPORT,
        _ => VPORT,
    }
}

/// One service `vip:VPORT` with real server 1 reached by `method`.
fn one_server(f: &Fam, udp: bool, method: ForwardMethod) -> Config {
    let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
    config(vec![service(
        protocol,
        f.vip,
        VPORT,
        SchedulerName::Rr,
        vec![dest(f.rs(1), rs_port(method), method, 1)],
    )])
}

/// What the client's first packet must become on the inside link.
fn expected_first(f: &Fam, udp: bool, method: ForwardMethod) -> Vec<u8> {
    let to_rs = (DIRECTOR_IN_MAC, real_server_mac(1));
    let client = (f.client, CPORT);
    let vip = (f.vip, VPORT);
    let rs = (f.rs(1), rs_port(method));
    match method {
        ForwardMethod::Dr => first_packet(to_rs, client, vip, 63, udp, &MSS_OPTION).build(),
        ForwardMethod::Nat => first_packet(to_rs, client, rs, 63, udp, &MSS_OPTION).build(),
        ForwardMethod::FullNat => {
            let mut options = toa_option(SocketAddr::new(f.client, CPORT));
            options.extend_from_slice(&MSS_OPTION);
            first_packet(to_rs, (f.director_in, LPORT), rs, 63, udp, &options).build()
        }
        ForwardMethod::Tunnel { kind, csum } => {
            let inner = first_packet(to_rs, client, vip, 63, udp, &MSS_OPTION).build_ip();
            let inner_proto = if f.v6 { 41 } else { 4 };
            let outer = PacketBuilder::new()
                .eth(to_rs.0, to_rs.1)
                .ip(f.director_in, f.rs(1))
                .ttl(63)
                .df(true)
                .payload(&inner);
            match kind {
                TunnelType::Ipip => outer.raw_l4(inner_proto),
                TunnelType::Gue { port } => {
                    let protocol = if udp { 17 } else { 6 };
                    let b = outer.gue(gue_sport(f, protocol), port, inner_proto);
                    if csum == TunnelCsum::NoCsum && !f.v6 {
                        b.udp_zero_checksum()
                    } else {
                        b
                    }
                }
                TunnelType::Gre => {
                    outer.gre(if f.v6 { 0x86dd } else { 0x0800 }, csum == TunnelCsum::Csum)
                }
            }
            .build()
        }
    }
}

fn families() -> Vec<(Fam, bool, String)> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        for udp in [false, true] {
            let name = format!(
                "{}/{}",
                if v6 { "IPv6" } else { "IPv4" },
                if udp { "UDP" } else { "TCP" }
            );
            out.push((Fam::new(v6), udp, name));
        }
    }
    out
}

fn check(out: &Output, verdict: Verdict, want: &[u8], case: &str) {
    assert_eq!(out.verdict, verdict, "{case}: verdict");
    assert_frames_eq(&out.frame, want, case);
    verify_checksums(&out.frame);
}

/// IP length of a frame without VLAN tag.
fn ip_len(frame: &[u8]) -> u64 {
    (frame.len() - 14) as u64
}

#[test]
fn first_packet_of_every_method_reaches_the_real_server_byte_for_byte() {
    for method in all_methods() {
        for (f, udp, fam) in families() {
            let case = format!("{} {fam}", method_name(method));
            let mut lab = Lab::new(&one_server(&f, udp, method));
            let input = first_packet(
                (ROUTER_MAC, DIRECTOR_OUT_MAC),
                (f.client, CPORT),
                (f.vip, VPORT),
                64,
                udp,
                &MSS_OPTION,
            )
            .build();
            let out = lab.client_sends(&input);
            check(
                &out,
                Verdict::Forward(INSIDE),
                &expected_first(&f, udp, method),
                &case,
            );

            let counters = lab.engine.counters();
            assert_eq!(counters.forwarded.load(Ordering::Relaxed), 1, "{case}");
            assert_eq!(counters.new_conns.load(Ordering::Relaxed), 1, "{case}");
            let snapshot = lab.engine.snapshot();
            let svc = &snapshot.services()[0];
            assert_eq!(svc.stats.conns.load(Ordering::Relaxed), 1, "{case}");
            assert_eq!(svc.stats.in_pkts.load(Ordering::Relaxed), 1, "{case}");
            assert_eq!(
                svc.stats.in_bytes.load(Ordering::Relaxed),
                ip_len(&input),
                "{case}: service bytes are the client's IP packet"
            );
            let d = &svc.dests[0].counters;
            assert_eq!(d.conns.load(Ordering::Relaxed), 1, "{case}");
            assert_eq!(d.in_pkts.load(Ordering::Relaxed), 1, "{case}");
            assert_eq!(d.in_bytes.load(Ordering::Relaxed), ip_len(&input), "{case}");
            assert_eq!(d.out_pkts.load(Ordering::Relaxed), 0, "{case}");
            assert_eq!(lab.connections().len(), 1, "{case}: one connection");
        }
    }
}

#[test]
fn nat_and_fullnat_replies_return_to_the_client_via_the_router() {
    for method in [ForwardMethod::Nat, ForwardMethod::FullNat] {
        for (f, udp, fam) in families() {
            let case = format!("{} reply {fam}", method_name(method));
            let mut lab = Lab::new(&one_server(&f, udp, method));
            let input = first_packet(
                (ROUTER_MAC, DIRECTOR_OUT_MAC),
                (f.client, CPORT),
                (f.vip, VPORT),
                64,
                udp,
                &MSS_OPTION,
            )
            .build();
            assert_eq!(lab.client_sends(&input).verdict, Verdict::Forward(INSIDE));

            let to_addr = match method {
                ForwardMethod::FullNat => (f.director_in, LPORT),
                _ => (f.client, CPORT),
            };
            let reply = reply_packet(
                (real_server_mac(1), DIRECTOR_IN_MAC),
                (f.rs(1), RPORT),
                to_addr,
                64,
                udp,
            )
            .build();
            let want = reply_packet(
                (DIRECTOR_OUT_MAC, ROUTER_MAC),
                (f.vip, VPORT),
                (f.client, CPORT),
                63,
                udp,
            )
            .build();
            let out = lab.server_sends(&reply);
            check(&out, Verdict::Forward(OUTSIDE), &want, &case);

            let snapshot = lab.engine.snapshot();
            let svc = &snapshot.services()[0];
            assert_eq!(svc.stats.out_pkts.load(Ordering::Relaxed), 1, "{case}");
            assert_eq!(
                svc.stats.out_bytes.load(Ordering::Relaxed),
                ip_len(&reply),
                "{case}"
            );
            let d = &svc.dests[0].counters;
            assert_eq!(d.out_pkts.load(Ordering::Relaxed), 1, "{case}");
            assert_eq!(
                d.out_bytes.load(Ordering::Relaxed),
                ip_len(&reply),
                "{case}"
            );
            assert_eq!(
                lab.engine.counters().new_conns.load(Ordering::Relaxed),
                1,
                "{case}: the reply creates nothing"
            );
        }
    }
}

#[test]
fn fullnat_syn_and_handshake_ack_carry_toa_and_later_segments_do_not() {
    for v6 in [false, true] {
        let f = Fam::new(v6);
        let toa = toa_option(SocketAddr::new(f.client, CPORT));
        let mut lab = Lab::new(&one_server(&f, false, ForwardMethod::FullNat));
        let syn = first_packet(
            (ROUTER_MAC, DIRECTOR_OUT_MAC),
            (f.client, CPORT),
            (f.vip, VPORT),
            64,
            false,
            &[],
        )
        .build();
        let want = first_packet(
            (DIRECTOR_IN_MAC, real_server_mac(1)),
            (f.director_in, LPORT),
            (f.rs(1), RPORT),
            63,
            false,
            &toa,
        )
        .build();
        check(
            &lab.client_sends(&syn),
            Verdict::Forward(INSIDE),
            &want,
            &format!("TOA SYN v6={v6}"),
        );
        let synack = reply_packet(
            (real_server_mac(1), DIRECTOR_IN_MAC),
            (f.rs(1), RPORT),
            (f.director_in, LPORT),
            64,
            false,
        )
        .build();
        assert_eq!(lab.server_sends(&synack).verdict, Verdict::Forward(OUTSIDE));

        let segment = |macs: ([u8; 6], [u8; 6]),
                       src: (IpAddr, u16),
                       dst: (IpAddr, u16),
                       ttl: u8,
                       seq: u32,
                       options: &[u8]| {
            PacketBuilder::new()
                .eth(macs.0, macs.1)
                .ip(src.0, dst.0)
                .ttl(ttl)
                .tcp(src.1, dst.1)
                .flags(tcp::ACK | tcp::PSH)
                .seq(seq)
                .ack_num(901)
                .tcp_options(options)
                .payload(PAYLOAD)
        };
        let client_side = |seq| {
            segment(
                (ROUTER_MAC, DIRECTOR_OUT_MAC),
                (f.client, CPORT),
                (f.vip, VPORT),
                64,
                seq,
                &[],
            )
            .build()
        };
        let server_side = |seq, options: &[u8]| {
            segment(
                (DIRECTOR_IN_MAC, real_server_mac(1)),
                (f.director_in, LPORT),
                (f.rs(1), RPORT),
                63,
                seq,
                options,
            )
            .build()
        };
        // The ACK that completes the handshake is the packet the TOA
        // module reads (it hooks tcp_v4_syn_recv_sock): it carries TOA.
        check(
            &lab.client_sends(&client_side(8)),
            Verdict::Forward(INSIDE),
            &server_side(8, &toa),
            &format!("TOA on the handshake ACK v6={v6}"),
        );
        assert_eq!(lab.connections()[0].state_name, "ESTABLISHED");
        // Later segments go without.
        let next = 8 + PAYLOAD.len() as u32;
        check(
            &lab.client_sends(&client_side(next)),
            Verdict::Forward(INSIDE),
            &server_side(next, &[]),
            &format!("no TOA on later data v6={v6}"),
        );
    }
}

/// An ICMP destination-unreachable (port unreachable) from `from` to
/// `to` quoting the first 8 transport bytes of a TCP segment
/// `qsrc` → `qdst`.
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

/// A lab with one TCP connection client → real server 1 by `method`.
fn lab_with_connection(f: &Fam, method: ForwardMethod) -> Lab {
    let mut lab = Lab::new(&one_server(f, false, method));
    let syn = tcp_in((f.client, CPORT), (f.vip, VPORT), tcp::SYN);
    assert_eq!(lab.client_sends(&syn).verdict, Verdict::Forward(INSIDE));
    lab
}

fn router(f: &Fam) -> IpAddr {
    if f.v6 {
        ROUTER6.into()
    } else {
        ROUTER4.into()
    }
}

#[test]
fn icmp_error_from_the_client_side_follows_the_connection_to_the_real_server() {
    for v6 in [false, true] {
        let f = Fam::new(v6);
        let from_router = (ROUTER_MAC, DIRECTOR_OUT_MAC);
        let to_rs = (DIRECTOR_IN_MAC, real_server_mac(1));
        let vip = (f.vip, VPORT);
        let client = (f.client, CPORT);
        let rs = (f.rs(1), RPORT);
        let cases = [
            // NAT: the quoted reply's source becomes the real server.
            (
                ForwardMethod::Nat,
                icmp_about(to_rs, v6, router(&f), f.rs(1), 63, rs, client),
            ),
            // Full NAT: both ends of the quote and the outer destination.
            (
                ForwardMethod::FullNat,
                icmp_about(
                    to_rs,
                    v6,
                    f.director_in,
                    f.rs(1),
                    63,
                    rs,
                    (f.director_in, LPORT),
                ),
            ),
            // DR: forwarded unchanged but for the MACs and the TTL.
            (
                ForwardMethod::Dr,
                icmp_about(to_rs, v6, router(&f), f.vip, 63, vip, client),
            ),
        ];
        for (method, want) in cases {
            let case = format!("{} ICMP in v6={v6}", method_name(method));
            let mut lab = lab_with_connection(&f, method);
            let input = icmp_about(from_router, v6, router(&f), f.vip, 64, vip, client);
            check(
                &lab.client_sends(&input),
                Verdict::Forward(INSIDE),
                &want,
                &case,
            );
            assert_eq!(
                lab.engine.counters().new_conns.load(Ordering::Relaxed),
                1,
                "{case}: the ICMP error creates nothing"
            );
        }
    }
}

#[test]
fn icmp_error_from_the_real_server_side_follows_the_connection_to_the_client() {
    for v6 in [false, true] {
        let f = Fam::new(v6);
        let from_rs = (real_server_mac(1), DIRECTOR_IN_MAC);
        let to_router = (DIRECTOR_OUT_MAC, ROUTER_MAC);
        let client = (f.client, CPORT);
        let rs = (f.rs(1), RPORT);
        let local = (f.director_in, LPORT);
        let cases = [
            (
                ForwardMethod::Nat,
                icmp_about(from_rs, v6, f.rs(1), f.client, 64, client, rs),
            ),
            (
                ForwardMethod::FullNat,
                icmp_about(from_rs, v6, f.rs(1), f.director_in, 64, local, rs),
            ),
        ];
        for (method, input) in cases {
            let case = format!("{} ICMP out v6={v6}", method_name(method));
            let mut lab = lab_with_connection(&f, method);
            let want = icmp_about(to_router, v6, f.vip, f.client, 63, client, (f.vip, VPORT));
            check(
                &lab.server_sends(&input),
                Verdict::Forward(OUTSIDE),
                &want,
                &case,
            );
        }
    }
}

#[test]
fn icmp_error_quoting_no_connection_is_passed_untouched() {
    let f = Fam::new(false);
    let mut lab = Lab::new(&one_server(&f, false, ForwardMethod::Nat));
    let input = icmp_about(
        (ROUTER_MAC, DIRECTOR_OUT_MAC),
        false,
        router(&f),
        f.vip,
        64,
        (f.vip, VPORT),
        (f.client, CPORT),
    );
    let out = lab.client_sends(&input);
    assert_eq!(out.verdict, Verdict::Pass);
    assert_eq!(out.frame, input);
}

/// The ICMP error the director answers an oversized DF packet with:
/// from the virtual address to the client, back through the router,
/// quoting the packet as it would have left (TTL decremented).
fn too_big_answer(f: &Fam, mtu: u32, quoted: &[u8]) -> Vec<u8> {
    let max = if f.v6 { 1280 - 48 } else { 576 - 28 };
    let msg = if f.v6 { (2, 0) } else { (3, 4) };
    PacketBuilder::new()
        .eth(DIRECTOR_OUT_MAC, ROUTER_MAC)
        .ip(f.vip, f.client)
        .ttl(64)
        .tos(if f.v6 { 0 } else { 0xc0 })
        .icmp(msg.0, msg.1, mtu)
        .payload(&quoted[..quoted.len().min(max)])
        .build()
}

#[test]
fn oversized_df_packet_is_answered_with_frag_needed_out_of_the_ingress_port() {
    let big = vec![0x42u8; 1600];
    for v6 in [false, true] {
        let f = Fam::new(v6);
        for method in all_methods() {
            let case = format!("{} MTU v6={v6}", method_name(method));
            let mut lab = Lab::new(&one_server(&f, true, method));
            let make = |ttl| {
                PacketBuilder::new()
                    .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
                    .ip(f.client, f.vip)
                    .ttl(ttl)
                    .df(true)
                    .udp(CPORT, VPORT)
                    .payload(&big)
            };
            let input = make(64).build();
            // Room the encapsulation takes: outer IP header, then UDP +
            // GUE (8 + 4) or GRE (4, 8 with its checksum).
            let overhead = match method {
                ForwardMethod::Tunnel { kind, csum } => {
                    let outer = if v6 { 40 } else { 20 };
                    outer
                        + match (kind, csum) {
                            (TunnelType::Ipip, _) => 0,
                            (TunnelType::Gue { .. }, _) => 8 + 4,
                            (TunnelType::Gre, TunnelCsum::Csum) => 8,
                            (TunnelType::Gre, _) => 4,
                        }
                }
                _ => 0,
            };
            let out = lab.client_sends(&input);
            let mtu = 1500 - overhead;
            let want = too_big_answer(&f, mtu, &make(63).build_ip());
            check(&out, Verdict::Forward(OUTSIDE), &want, &case);
            assert_eq!(
                lab.engine.counters().icmp_sent.load(Ordering::Relaxed),
                1,
                "{case}: counted as an ICMP sent"
            );
        }
    }
}

const TUNNEL_SOURCE4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 51, 100, 200);

fn ipip() -> ForwardMethod {
    ForwardMethod::Tunnel {
        kind: TunnelType::Ipip,
        csum: TunnelCsum::NoCsum,
    }
}

/// The client's first TCP packet in an IPIP tunnel from `source`.
fn ipip_first(f: &Fam, source: IpAddr) -> Vec<u8> {
    let inner = first_packet(
        (ROUTER_MAC, DIRECTOR_OUT_MAC),
        (f.client, CPORT),
        (f.vip, VPORT),
        63,
        false,
        &MSS_OPTION,
    )
    .build_ip();
    PacketBuilder::new()
        .eth(DIRECTOR_IN_MAC, real_server_mac(1))
        .ip(source, f.rs(1))
        .ttl(63)
        .df(true)
        .raw_l4(4)
        .payload(&inner)
        .build()
}

fn client_syn(f: &Fam) -> Vec<u8> {
    first_packet(
        (ROUTER_MAC, DIRECTOR_OUT_MAC),
        (f.client, CPORT),
        (f.vip, VPORT),
        64,
        false,
        &MSS_OPTION,
    )
    .build()
}

#[test]
fn configured_tunnel_source_is_the_outer_source_for_packets_and_icmp_errors() {
    let f = Fam::new(false);
    let mut cfg = one_server(&f, false, ipip());
    cfg.engine.tunnel_source_v4 = Some(TUNNEL_SOURCE4.into());
    let mut lab = Lab::new(&cfg);
    check(
        &lab.client_sends(&client_syn(&f)),
        Verdict::Forward(INSIDE),
        &ipip_first(&f, TUNNEL_SOURCE4.into()),
        "IPIP from the configured source",
    );
    // An ICMP error about the connection rides the same tunnel.
    let icmp = icmp_about(
        (ROUTER_MAC, DIRECTOR_OUT_MAC),
        false,
        router(&f),
        f.vip,
        64,
        (f.vip, VPORT),
        (f.client, CPORT),
    );
    let inner = icmp_about(
        (ROUTER_MAC, DIRECTOR_OUT_MAC),
        false,
        router(&f),
        f.vip,
        63,
        (f.vip, VPORT),
        (f.client, CPORT),
    );
    let want = PacketBuilder::new()
        .eth(DIRECTOR_IN_MAC, real_server_mac(1))
        .ip(TUNNEL_SOURCE4.into(), f.rs(1))
        .ttl(63)
        .ident(flow_hash(&f, 6) as u16)
        .raw_l4(4)
        .payload(&inner[14..])
        .build();
    check(
        &lab.client_sends(&icmp),
        Verdict::Forward(INSIDE),
        &want,
        "ICMP error in the tunnel from the configured source",
    );
}

#[test]
fn reload_changes_the_tunnel_source() {
    let f = Fam::new(false);
    let cfg = one_server(&f, false, ipip());
    let mut lab = Lab::new(&cfg);
    check(
        &lab.client_sends(&client_syn(&f)),
        Verdict::Forward(INSIDE),
        &ipip_first(&f, DIRECTOR_IN4.into()),
        "IPIP from the inside port's address",
    );
    let mut edited = cfg.clone();
    edited.engine.tunnel_source_v4 = Some(TUNNEL_SOURCE4.into());
    lab.engine.apply(&edited).expect("reload");
    check(
        &lab.client_sends(&client_syn(&f)),
        Verdict::Forward(INSIDE),
        &ipip_first(&f, TUNNEL_SOURCE4.into()),
        "IPIP from the reloaded source",
    );
}

#[test]
fn ttl_expiring_packet_is_answered_with_time_exceeded_out_of_the_ingress_port() {
    for (f, udp, fam) in families() {
        let case = format!("TTL {fam}");
        let mut lab = Lab::new(&one_server(&f, udp, ForwardMethod::Nat));
        let original = first_packet(
            (ROUTER_MAC, DIRECTOR_OUT_MAC),
            (f.client, CPORT),
            (f.vip, VPORT),
            1,
            udp,
            &MSS_OPTION,
        );
        let msg = if f.v6 { (3, 0) } else { (11, 0) };
        let want = PacketBuilder::new()
            .eth(DIRECTOR_OUT_MAC, ROUTER_MAC)
            .ip(f.vip, f.client)
            .ttl(64)
            .tos(if f.v6 { 0 } else { 0xc0 })
            .icmp(msg.0, msg.1, 0)
            .payload(&original.build_ip())
            .build();
        check(
            &lab.client_sends(&original.build()),
            Verdict::Forward(OUTSIDE),
            &want,
            &case,
        );
        assert_eq!(
            lab.engine.counters().icmp_sent.load(Ordering::Relaxed),
            1,
            "{case}"
        );
    }
}

#[test]
fn oversized_df_nat_reply_is_answered_to_the_real_server_out_of_the_inside_port() {
    for v6 in [false, true] {
        let f = Fam::new(v6);
        let case = format!("NAT reply MTU v6={v6}");
        let mut lab = lab_with_connection(&f, ForwardMethod::Nat);
        let mut net = uvs_engine::lab::net_view(4);
        net.ports[usize::from(OUTSIDE.0)].mtu = 1400;
        lab.engine.set_net(net);
        let reply = |ttl| {
            PacketBuilder::new()
                .eth(real_server_mac(1), DIRECTOR_IN_MAC)
                .ip(f.rs(1), f.client)
                .ttl(ttl)
                .df(true)
                .tcp(RPORT, CPORT)
                .flags(tcp::ACK)
                .payload(&[0x33; 1420])
        };
        let max = if v6 { 1280 - 48 } else { 576 - 28 };
        let msg = if v6 { (2, 0) } else { (3, 4) };
        let quoted = reply(63).build_ip();
        // From the virtual address, as the director answers for it.
        let want = PacketBuilder::new()
            .eth(DIRECTOR_IN_MAC, real_server_mac(1))
            .ip(f.vip, f.rs(1))
            .ttl(64)
            .tos(if v6 { 0 } else { 0xc0 })
            .icmp(msg.0, msg.1, 1400)
            .payload(&quoted[..quoted.len().min(max)])
            .build();
        check(
            &lab.server_sends(&reply(64).build()),
            Verdict::Forward(INSIDE),
            &want,
            &case,
        );
    }
}
