//! Shared fixtures for the whole-engine tests: a lab director (the
//! in-memory network of `uvs_engine::lab`) with an injected clock, config
//! builders for services and real servers, and client/real-server frame
//! builders. Expected frames are built with `PacketBuilder`, never with the
//! engine's rewrite code.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use uvs_conf::{
    Config, DestConfig, ForwardMethod, LocalAddrPool, Persistence, Protocol, SchedFlags,
    SchedulerName, ServiceConfig, ServiceKey,
};
use uvs_engine::conn::ConnListing;
use uvs_engine::engine::{Engine, Worker};
use uvs_engine::lab::{self, Output};
use uvs_engine::route::PortId;
use uvs_engine::time::Millis;
use uvs_engine::wire::build::PacketBuilder;
use uvs_engine::wire::tcp;

pub use uvs_engine::lab::{
    real_server4, real_server6, real_server_mac, real_server_of_mac, DIRECTOR_IN4, DIRECTOR_IN6,
    DIRECTOR_IN_MAC, DIRECTOR_OUT_MAC, INSIDE, OUTSIDE, ROUTER4, ROUTER_MAC,
};

/// A client on the Internet, behind the outside router.
pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// The virtual address.
pub const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// A client on the Internet (IPv6).
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7);
/// The virtual address (IPv6).
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

/// Client port of the first connection.
pub const CPORT: u16 = 40000;
/// Virtual port.
pub const VPORT: u16 = 80;
/// Real server port for NAT and full NAT.
pub const RPORT: u16 = 8080;
/// The only port of the full-NAT pool in golden tests (deterministic).
pub const LPORT: u16 = 5001;
/// GUE port (the one `support::verify_checksums` descends into).
pub const GUE_PORT: u16 = 6080;

/// Seconds the lab clock starts at.
pub const T0: Millis = Millis(1_000_000);

/// Addresses of one family.
#[derive(Debug, Clone, Copy)]
pub struct Fam {
    pub v6: bool,
    pub client: IpAddr,
    pub vip: IpAddr,
    pub director_in: IpAddr,
}

impl Fam {
    pub fn new(v6: bool) -> Fam {
        if v6 {
            Fam {
                v6,
                client: CLIENT6.into(),
                vip: VIP6.into(),
                director_in: DIRECTOR_IN6.into(),
            }
        } else {
            Fam {
                v6,
                client: CLIENT4.into(),
                vip: VIP4.into(),
                director_in: DIRECTOR_IN4.into(),
            }
        }
    }

    /// The n-th real server's address in this family.
    pub fn rs(&self, n: u8) -> IpAddr {
        if self.v6 {
            real_server6(n).into()
        } else {
            real_server4(n).into()
        }
    }

    /// A client address: the `n`-th host of the `net`-th /24 (or /64).
    pub fn client_n(&self, net: u8, n: u8) -> IpAddr {
        if self.v6 {
            Ipv6Addr::new(0x2001, 0xdb8, 0xc, u16::from(net), 0, 0, 0, u16::from(n)).into()
        } else {
            Ipv4Addr::new(203, 0, net, n).into()
        }
    }
}

/// A real server of a service.
pub fn dest(addr: IpAddr, port: u16, method: ForwardMethod, weight: u32) -> DestConfig {
    DestConfig {
        addr,
        port,
        method,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

/// A service on `vip:port` with real servers in the order they were added.
pub fn service(
    protocol: Protocol,
    vip: IpAddr,
    port: u16,
    scheduler: SchedulerName,
    dests: Vec<DestConfig>,
) -> ServiceConfig {
    ServiceConfig {
        key: ServiceKey::Addr {
            protocol,
            addr: vip,
            port,
        },
        scheduler,
        flags: SchedFlags::default(),
        persistence: None,
        persistence_engine: None,
        one_packet: false,
        fwmark_match: Vec::new(),
        dests,
    }
}

/// A persistence setting of an IPv4 service, its netmask a prefix length.
pub fn persistence(timeout: u32, netmask_prefix: u8) -> Option<Persistence> {
    Some(Persistence {
        timeout,
        netmask: uvs_conf::Netmask::v4_prefix(netmask_prefix),
    })
}

/// A configuration with these services and a full-NAT pool of one port
/// (`LPORT`) on the director's inside addresses.
pub fn config(services: Vec<ServiceConfig>) -> Config {
    let mut c = Config {
        services,
        ..Config::default()
    };
    c.engine.conn_table_size = 4096;
    c.fullnat_pool = LocalAddrPool {
        addrs: vec![DIRECTOR_IN4.into(), DIRECTOR_IN6.into()],
        port_first: LPORT,
        port_last: LPORT,
    };
    c
}

/// A director in the lab network with four real servers, one worker and
/// an injected clock.
pub struct Lab {
    pub engine: Engine,
    pub worker: Worker,
    pub now: Millis,
}

impl Lab {
    pub fn new(config: &Config) -> Lab {
        Lab {
            engine: Engine::new(config, lab::net_view(4)).expect("engine accepts the config"),
            worker: Worker::new(),
            now: T0,
        }
    }

    /// Run one frame arriving on `ingress`.
    pub fn send(&mut self, ingress: PortId, frame: &[u8]) -> Output {
        lab::run_one(&self.engine, &mut self.worker, ingress, frame, self.now)
    }

    /// A frame from the Internet (via the router) on the outside port.
    pub fn client_sends(&mut self, frame: &[u8]) -> Output {
        self.send(OUTSIDE, frame)
    }

    /// A frame from a real server on the inside port.
    pub fn server_sends(&mut self, frame: &[u8]) -> Output {
        self.send(INSIDE, frame)
    }

    /// Move the clock on.
    pub fn advance_secs(&mut self, secs: u32) {
        self.now = self.now.plus_secs(secs);
    }

    /// Sweep the whole table at the current time (as many batches would).
    pub fn sweep(&mut self) {
        let slots = self.engine.conns().capacity();
        self.engine.conns().expire_step(self.now, slots * 2);
    }

    /// Every live entry (connections and templates).
    pub fn listing(&self) -> Vec<ConnListing> {
        let mut out = Vec::new();
        self.engine.conns().for_each(self.now, |c| out.push(*c));
        out
    }

    /// Live connections (no templates).
    pub fn connections(&self) -> Vec<ConnListing> {
        self.listing()
            .into_iter()
            .filter(|c| !c.info.template)
            .collect()
    }
}

/// The real server (n from 1) a forwarded frame went to, by its MAC.
pub fn rs_of(out: &Output) -> u8 {
    out.frame
        .get(0..6)
        .and_then(real_server_of_mac)
        .unwrap_or_else(|| panic!("frame not to a real server: {:?}", out.verdict))
}

/// A TCP segment from `src` to `dst` with `flags`, framed router → director.
pub fn tcp_in(src: (IpAddr, u16), dst: (IpAddr, u16), flags: u8) -> Vec<u8> {
    PacketBuilder::new()
        .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
        .ip(src.0, dst.0)
        .df(true)
        .tcp(src.1, dst.1)
        .flags(flags)
        .seq(100)
        .ack_num(if flags & tcp::ACK != 0 { 200 } else { 0 })
        .build()
}

/// A UDP datagram `src` → `dst` carrying `payload`, framed router → director.
pub fn udp_in(src: (IpAddr, u16), dst: (IpAddr, u16), payload: &[u8]) -> Vec<u8> {
    PacketBuilder::new()
        .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
        .ip(src.0, dst.0)
        .udp(src.1, dst.1)
        .payload(payload)
        .build()
}

/// A TCP segment from real server `n` to `dst`, framed on the inside link.
pub fn tcp_from_rs(n: u8, src: (IpAddr, u16), dst: (IpAddr, u16), flags: u8) -> Vec<u8> {
    PacketBuilder::new()
        .eth(real_server_mac(n), DIRECTOR_IN_MAC)
        .ip(src.0, dst.0)
        .df(true)
        .tcp(src.1, dst.1)
        .flags(flags)
        .seq(500)
        .ack_num(101)
        .build()
}
