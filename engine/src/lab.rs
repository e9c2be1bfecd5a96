//! A ready-made in-memory lab for tests, benches, the fuzzer and the demo:
//! a director with one port facing clients and one facing real servers,
//! the routes and neighbours to match, and helpers that run frames
//! through an [`Engine`] the way an I/O backend does.
//!
//! Addresses come from the documentation ranges (RFC 5737 / RFC 3849)
//! and are only ever bytes in memory here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::engine::{Engine, Packet, Verdict, Worker};
use crate::route::{Mac, NetView, Port, PortId, Route};
use crate::time::Millis;
use crate::xmit::FrameBuf;

/// Headroom left in front of every frame (room for tunnel headers).
pub const HEADROOM: usize = 256;
/// Buffer size of one frame slot (as an AF_XDP UMEM frame).
pub const FRAME_SIZE: usize = 2048;

/// Port facing clients.
pub const OUTSIDE: PortId = PortId(0);
/// Port facing real servers.
pub const INSIDE: PortId = PortId(1);

/// The director's MAC on the outside port.
pub const DIRECTOR_OUT_MAC: Mac = [0x02, 0, 0, 0, 0xd0, 0x01];
/// The director's MAC on the inside port.
pub const DIRECTOR_IN_MAC: Mac = [0x02, 0, 0, 0, 0xd0, 0x02];
/// The outside router's MAC (clients are behind it).
pub const ROUTER_MAC: Mac = [0x02, 0, 0, 0, 0xfe, 0xfe];

/// Outside network's router (IPv4).
pub const ROUTER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
/// Director's outside address (IPv4).
pub const DIRECTOR_OUT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Director's inside address (IPv4): tunnel source, full-NAT local.
pub const DIRECTOR_IN4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// Outside router (IPv6).
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
/// Director's outside address (IPv6).
pub const DIRECTOR_OUT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// Director's inside address (IPv6).
pub const DIRECTOR_IN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);

/// The n-th real server's IPv4 address (n from 1).
pub fn real_server4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 10 + n)
}

/// The n-th real server's IPv6 address (n from 1).
pub fn real_server6(n: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10 + u16::from(n))
}

/// The n-th real server's MAC (n from 1).
pub fn real_server_mac(n: u8) -> Mac {
    [0x02, 0, 0, 0, 0x10, n]
}

/// Which real server (n from 1) owns a MAC made by [`real_server_mac`].
pub fn real_server_of_mac(mac: &[u8]) -> Option<u8> {
    match mac {
        [0x02, 0, 0, 0, 0x10, n] => Some(*n),
        _ => None,
    }
}

/// The lab's network: outside port (clients behind a router, default
/// route), inside port (real servers on-link), `servers` real servers
/// with known MACs in both families.
pub fn net_view(servers: u8) -> NetView {
    let mut net = NetView {
        ports: vec![
            Port {
                name: "outside".into(),
                mac: DIRECTOR_OUT_MAC,
                mtu: 1500,
                addr_v4: Some(DIRECTOR_OUT4.into()),
                addr_v6: Some(DIRECTOR_OUT6.into()),
            },
            Port {
                name: "inside".into(),
                mac: DIRECTOR_IN_MAC,
                mtu: 1500,
                addr_v4: Some(DIRECTOR_IN4.into()),
                addr_v6: Some(DIRECTOR_IN6.into()),
            },
        ],
        routes: vec![
            Route {
                prefix: Ipv4Addr::UNSPECIFIED.into(),
                len: 0,
                port: OUTSIDE,
                gateway: Some(ROUTER4.into()),
            },
            Route {
                prefix: Ipv6Addr::UNSPECIFIED.into(),
                len: 0,
                port: OUTSIDE,
                gateway: Some(ROUTER6.into()),
            },
            Route {
                prefix: Ipv4Addr::new(198, 51, 100, 0).into(),
                len: 24,
                port: INSIDE,
                gateway: None,
            },
            Route {
                prefix: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0).into(),
                len: 64,
                port: INSIDE,
                gateway: None,
            },
        ],
        neighbours: Default::default(),
    };
    net.neighbours.insert(ROUTER4.into(), ROUTER_MAC);
    net.neighbours.insert(ROUTER6.into(), ROUTER_MAC);
    for n in 1..=servers {
        net.neighbours
            .insert(IpAddr::V4(real_server4(n)), real_server_mac(n));
        net.neighbours
            .insert(IpAddr::V6(real_server6(n)), real_server_mac(n));
    }
    net
}

/// The outcome of one frame run through the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The verdict.
    pub verdict: Verdict,
    /// The frame after processing (rewritten in place).
    pub frame: Vec<u8>,
}

/// Run one frame through `engine` as if it arrived on `ingress`.
pub fn run_one(
    engine: &Engine,
    worker: &mut Worker,
    ingress: PortId,
    frame: &[u8],
    now: Millis,
) -> Output {
    let mut buf = vec![0u8; (HEADROOM + frame.len()).max(FRAME_SIZE)];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let Some(frame_buf) = FrameBuf::new(&mut buf, HEADROOM, frame.len()) else {
        return Output {
            verdict: Verdict::Pending,
            frame: Vec::new(),
        };
    };
    let mut batch = [Packet {
        frame: frame_buf,
        ingress,
        verdict: Verdict::Pending,
    }];
    engine.process(worker, &mut batch, now);
    let [packet] = batch;
    Output {
        verdict: packet.verdict,
        frame: packet.frame.frame().to_vec(),
    }
}
