//! Property tests: every method, on valid frames with random
//! parameters, either refuses with an error or emits a well-formed frame
//! whose checksums verify under etherparse and whose addresses are the
//! ones the method promises.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use support::*;
use uvs_conf::{TunnelCsum, TunnelType};
use uvs_engine::wire::build::PacketBuilder;
use uvs_engine::wire::{parse_frame, tcp};
use uvs_engine::xmit::{self, Direction, XmitOutcome};

fn addr(v6: bool, seed: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(seed | 1))
    } else {
        IpAddr::V4(Ipv4Addr::from((seed as u32) | 1))
    }
}

#[derive(Debug, Clone)]
struct Case {
    v6: bool,
    rs_v6: bool,
    udp: bool,
    seeds: [u128; 6],
    ports: [u16; 4],
    ttl: u8,
    df: bool,
    payload_len: usize,
    mtu: u16,
    method: usize,
    tunnel: usize,
    outbound: bool,
    toa: bool,
    syn: bool,
    options_len: usize,
    headroom: usize,
    vlan: Option<u16>,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<[u128; 6]>(),
            any::<[u16; 4]>(),
        ),
        (1u8..=255, any::<bool>(), 0usize..1700, 1200u16..=9000),
        (
            0usize..4,
            0usize..6,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0usize..=10,
        ),
        (0usize..=96, proptest::option::of(0u16..4095)),
    )
        .prop_map(|(a, b, c, d)| Case {
            v6: a.0,
            rs_v6: a.1,
            udp: a.2,
            seeds: a.3,
            // The frame verifier reads any UDP datagram to GUE_PORT as
            // GUE (it has no other way to know), so the endpoints keep
            // off that port: a NAT datagram to it is no tunnel.
            ports: a.4.map(|p| if p == GUE_PORT { p + 1 } else { p }),
            ttl: b.0,
            df: b.1,
            payload_len: b.2,
            mtu: b.3,
            method: c.0,
            tunnel: c.1,
            outbound: c.2,
            toa: c.3,
            syn: c.4,
            options_len: c.5 * 4,
            headroom: d.0,
            vlan: d.1,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn output_is_well_formed(case in cases()) {
        let v6 = case.v6;
        // Tunnel mode may cross families; the NAT methods may not.
        let rs_v6 = if case.method == 3 { case.rs_v6 } else { v6 };
        let [client, vip, rs, local, tunsrc, _] = case.seeds;
        let client = addr(v6, client);
        let vip = addr(v6, vip);
        let rs = addr(rs_v6, rs);
        let local = addr(v6, local);
        let tunsrc = addr(rs_v6, tunsrc);
        let direction = if case.outbound && matches!(case.method, 1 | 2) { Direction::Outbound } else { Direction::Inbound };
        let (kind, csum) = [
            (TunnelType::Ipip, TunnelCsum::NoCsum),
            (TunnelType::Gue { port: GUE_PORT }, TunnelCsum::NoCsum),
            (TunnelType::Gue { port: GUE_PORT }, TunnelCsum::Csum),
            (TunnelType::Gue { port: GUE_PORT }, TunnelCsum::RemCsum),
            (TunnelType::Gre, TunnelCsum::NoCsum),
            (TunnelType::Gre, TunnelCsum::Csum),
        ][case.tunnel];
        let mut p = params(v6, direction);
        p.real_server = SocketAddr::new(rs, case.ports[0]);
        p.virtual_service = SocketAddr::new(vip, case.ports[1]);
        p.client = SocketAddr::new(client, case.ports[2]);
        p.local = SocketAddr::new(local, case.ports[3]);
        p.tunnel.kind = kind;
        p.tunnel.csum = csum;
        p.tunnel.source = tunsrc;
        p.mtu = if rs_v6 || v6 { case.mtu.max(1400) } else { case.mtu };
        p.insert_toa = case.toa;
        let (src, dst) = match direction {
            Direction::Inbound => ((client, case.ports[2]), (vip, case.ports[1])),
            Direction::Outbound => {
                let to = if case.method == 2 { (local, case.ports[3]) } else { (client, case.ports[2]) };
                ((rs, case.ports[0]), to)
            }
        };
        let payload = vec![0x5au8; case.payload_len];
        let mut b = PacketBuilder::new().eth(CLIENT_MAC, DIRECTOR_MAC).ip(src.0, dst.0).ttl(case.ttl).df(case.df);
        if let Some(id) = case.vlan {
            b = b.vlan(id);
        }
        b = if case.udp {
            b.udp(src.1, dst.1)
        } else {
            b.tcp(src.1, dst.1)
                .flags(if case.syn { tcp::SYN } else { tcp::ACK })
                .tcp_options(&vec![1u8; case.options_len])
        };
        let input = b.payload(&payload).build();
        let method: Method = [xmit::dr::xmit, xmit::nat::xmit, xmit::fullnat::xmit, xmit::tunnel::xmit][case.method];
        let (verdict, out) = run_with_room(method, &input, &p, case.headroom, 64);
        match verdict {
            Err(_) => {}
            Ok(outcome) => {
                verify_checksums(&out);
                let parsed = parse_frame(&out).expect("our parser accepts our output");
                match outcome {
                    XmitOutcome::IcmpToClient => {
                        prop_assert_eq!(parsed.daddr, src.0);
                        prop_assert!(parsed.icmp_error.is_some());
                        prop_assert_eq!(&out[0..6], &CLIENT_MAC[..]);
                    }
                    XmitOutcome::Forward => {
                        prop_assert_eq!(&out[0..6], &NEXT_HOP_MAC[..]);
                        prop_assert_eq!(&out[6..12], &DIRECTOR_MAC[..]);
                        prop_assert!(usize::from(parsed.ip_len) <= usize::from(p.mtu));
                        let (want_src, want_dst) = match (case.method, direction) {
                            (0, _) => ((client, src.1), (vip, dst.1)),
                            (1, Direction::Inbound) => ((client, src.1), (rs, case.ports[0])),
                            (1, Direction::Outbound) => ((vip, case.ports[1]), (client, case.ports[2])),
                            (2, Direction::Inbound) => ((local, case.ports[3]), (rs, case.ports[0])),
                            (2, Direction::Outbound) => ((vip, case.ports[1]), (client, case.ports[2])),
                            _ => ((tunsrc, parsed.sport), (rs, parsed.dport)),
                        };
                        prop_assert_eq!(parsed.saddr, want_src.0);
                        prop_assert_eq!(parsed.daddr, want_dst.0);
                        if case.method != 3 {
                            prop_assert_eq!((parsed.sport, parsed.dport), (want_src.1, want_dst.1));
                            prop_assert_eq!(parsed.ttl, case.ttl - 1);
                        }
                    }
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn stale_or_foreign_parse_never_panics(
        method in 0usize..6,
        donor_len in 0usize..300,
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        headroom in 0usize..64,
        v6 in any::<bool>(),
        toa in any::<bool>(),
    ) {
        // Parse one valid frame, then run the method on unrelated bytes.
        let n = net(v6);
        let donor = PacketBuilder::new()
            .eth(CLIENT_MAC, DIRECTOR_MAC)
            .ip(n.client, n.vip)
            .tcp(CPORT, VPORT)
            .flags(tcp::SYN)
            .payload(&vec![7u8; donor_len])
            .build();
        let parsed = parse_frame(&donor).unwrap();
        let mut p = params(v6, Direction::Inbound);
        p.insert_toa = toa;
        let methods: [Method; 6] = [
            xmit::dr::xmit,
            xmit::nat::xmit,
            xmit::fullnat::xmit,
            xmit::tunnel::xmit,
            xmit::icmp::nat_xmit,
            xmit::icmp::fullnat_xmit,
        ];
        let mut buf = vec![0u8; headroom + bytes.len() + 32];
        buf[headroom..headroom + bytes.len()].copy_from_slice(&bytes);
        let mut frame = xmit::FrameBuf::new(&mut buf, headroom, bytes.len()).unwrap();
        let _ = methods[method](&mut frame, &parsed, &p);
    }
}
