//! Shared fixtures for the wire and xmit tests: addresses of a small
//! LVS cluster, parameter sets, a runner that feeds a frame through a
//! method with headroom, and an independent checksum verifier built on
//! etherparse.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
use uvs_conf::{TunnelCsum, TunnelType};
use uvs_engine::wire::{self, checksum};
use uvs_engine::xmit::{Direction, FrameBuf, TunnelParams, XmitError, XmitOutcome, XmitParams};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xd1];
pub const NEXT_HOP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x55];

pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const VIP4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const RS4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 21);
pub const LOCAL4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const TUNSRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const ROUTER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 10);
pub const RS6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 21);
pub const LOCAL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
pub const TUNSRC6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 254);

pub const CPORT: u16 = 40000;
pub const VPORT: u16 = 80;
pub const RPORT: u16 = 8080;
pub const LPORT: u16 = 5001;
pub const FLOW_HASH: u32 = 0x9e37_79b9;

/// The cluster's addresses in one family.
#[derive(Debug, Clone, Copy)]
pub struct Net {
    pub client: IpAddr,
    pub vip: IpAddr,
    pub rs: IpAddr,
    pub local: IpAddr,
    pub tunsrc: IpAddr,
    pub router: IpAddr,
}

pub fn net(v6: bool) -> Net {
    if v6 {
        Net {
            client: CLIENT6.into(),
            vip: VIP6.into(),
            rs: RS6.into(),
            local: LOCAL6.into(),
            tunsrc: TUNSRC6.into(),
            router: ROUTER6.into(),
        }
    } else {
        Net {
            client: CLIENT4.into(),
            vip: VIP4.into(),
            rs: RS4.into(),
            local: LOCAL4.into(),
            tunsrc: TUNSRC4.into(),
            router: ROUTER4.into(),
        }
    }
}

pub fn params(v6: bool, direction: Direction) -> XmitParams {
    let n = net(v6);
    XmitParams {
        director_mac: DIRECTOR_MAC,
        next_hop_mac: NEXT_HOP_MAC,
        direction,
        real_server: SocketAddr::new(n.rs, RPORT),
        virtual_service: SocketAddr::new(n.vip, VPORT),
        client: SocketAddr::new(n.client, CPORT),
        local: SocketAddr::new(n.local, LPORT),
        tunnel: TunnelParams {
            kind: TunnelType::Ipip,
            csum: TunnelCsum::NoCsum,
            source: n.tunsrc,
        },
        mtu: 1500,
        flow_hash: FLOW_HASH,
        insert_toa: false,
    }
}

/// A forwarding method's entry point.
pub type Method =
    fn(&mut FrameBuf, &wire::ParsedFrame, &XmitParams) -> Result<XmitOutcome, XmitError>;

/// Parse `input`, copy it into a buffer with `headroom` and `tailroom`
/// bytes of junk around it, run `method`, return the verdict and the
/// resulting frame.
pub fn run_with_room(
    method: Method,
    input: &[u8],
    p: &XmitParams,
    headroom: usize,
    tailroom: usize,
) -> (Result<XmitOutcome, XmitError>, Vec<u8>) {
    let parsed = wire::parse_frame(input).expect("fixture input parses");
    let mut buf = vec![0xa5u8; headroom + input.len() + tailroom];
    buf[headroom..headroom + input.len()].copy_from_slice(input);
    let mut frame = FrameBuf::new(&mut buf, headroom, input.len()).expect("frame fits");
    let verdict = method(&mut frame, &parsed, p);
    (verdict, frame.frame().to_vec())
}

/// [`run_with_room`] with 128 bytes of headroom and tailroom.
pub fn run(
    method: Method,
    input: &[u8],
    p: &XmitParams,
) -> (Result<XmitOutcome, XmitError>, Vec<u8>) {
    run_with_room(method, input, p, 128, 128)
}

/// Compare two frames, printing a hex diff on mismatch.
pub fn assert_frames_eq(got: &[u8], want: &[u8], case: &str) {
    if got != want {
        let first = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{case}: frames differ (got {} bytes, want {}), first difference at byte {first}\n got: {:02x?}\nwant: {:02x?}",
            got.len(),
            want.len(),
            got,
            want
        );
    }
}

/// Verify every checksum in `frame` independently of uvs-engine's
/// rewrite code: IPv4 header, TCP, UDP, ICMP, ICMPv6 through etherparse;
/// for tunnels, the GRE checksum and the inner packet recursively.
pub fn verify_checksums(frame: &[u8]) {
    let headers = PacketHeaders::from_ethernet_slice(frame).expect("etherparse parses the frame");
    verify_headers(&headers, frame);
}

fn ip_payload_of<'a>(headers: &PacketHeaders<'a>) -> &'a [u8] {
    headers.payload.slice()
}

fn verify_headers(headers: &PacketHeaders, whole: &[u8]) {
    let payload = ip_payload_of(headers);
    match &headers.net {
        Some(NetHeaders::Ipv4(ip, _)) => {
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "IPv4 header checksum"
            );
            match &headers.transport {
                Some(TransportHeader::Tcp(tcp)) => {
                    assert_eq!(
                        tcp.checksum,
                        tcp.calc_checksum_ipv4(ip, payload).unwrap(),
                        "TCP/IPv4 checksum"
                    );
                }
                Some(TransportHeader::Udp(udp)) => {
                    if udp.checksum != 0 {
                        let want = udp.calc_checksum_ipv4(ip, payload).unwrap();
                        assert_eq!(udp.checksum, want, "UDP/IPv4 checksum");
                    }
                    verify_gue(udp.destination_port, payload);
                }
                Some(TransportHeader::Icmpv4(icmp)) => {
                    assert_eq!(
                        icmp.checksum,
                        icmp.icmp_type.calc_checksum(payload),
                        "ICMPv4 checksum"
                    );
                }
                Some(_) => panic!("unexpected transport"),
                None => verify_tunnel_payload(ip.protocol.0, payload),
            }
        }
        Some(NetHeaders::Ipv6(ip, _)) => match &headers.transport {
            Some(TransportHeader::Tcp(tcp)) => {
                assert_eq!(
                    tcp.checksum,
                    tcp.calc_checksum_ipv6(ip, payload).unwrap(),
                    "TCP/IPv6 checksum"
                );
            }
            Some(TransportHeader::Udp(udp)) => {
                assert_ne!(udp.checksum, 0, "UDP/IPv6 checksum is mandatory");
                assert_eq!(
                    udp.checksum,
                    udp.calc_checksum_ipv6(ip, payload).unwrap(),
                    "UDP/IPv6 checksum"
                );
                verify_gue(udp.destination_port, payload);
            }
            Some(TransportHeader::Icmpv6(icmp)) => {
                let want = icmp
                    .icmp_type
                    .calc_checksum(ip.source, ip.destination, payload)
                    .unwrap();
                assert_eq!(icmp.checksum, want, "ICMPv6 checksum");
            }
            Some(_) => panic!("unexpected transport"),
            None => verify_tunnel_payload(ip.next_header.0, payload),
        },
        _ => panic!("not IP: {whole:02x?}"),
    }
}

fn verify_gue(dport: u16, payload: &[u8]) {
    if dport == GUE_PORT {
        let inner = payload.get(4..).expect("GUE header");
        verify_inner_ip(inner);
    }
}

/// The tunnel port the tests use for GUE.
pub const GUE_PORT: u16 = 6080;

fn verify_tunnel_payload(protocol: u8, payload: &[u8]) {
    match protocol {
        4 | 41 => verify_inner_ip(payload),
        47 => {
            let flags = u16::from_be_bytes([payload[0], payload[1]]);
            let header_len = if flags & 0x8000 != 0 {
                assert!(
                    checksum::verifies(checksum::add(0, payload)),
                    "GRE checksum"
                );
                8
            } else {
                4
            };
            verify_inner_ip(&payload[header_len..]);
        }
        _ => {}
    }
}

fn verify_inner_ip(ip: &[u8]) {
    let headers = PacketHeaders::from_ip_slice(ip).expect("etherparse parses the inner packet");
    verify_headers(&headers, ip);
}
