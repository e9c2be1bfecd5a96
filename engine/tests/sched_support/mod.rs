//! Helpers shared by the scheduler tests: dests with set loads, flows.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use uvs_engine::dest::Dest;
use uvs_engine::sched::Flow;

/// A DR dest 10.0.0.`octet`:80 with id `id` and `weight`.
pub fn dest(id: u32, octet: u8, weight: u32) -> Dest {
    Dest::new(id, IpAddr::V4(Ipv4Addr::new(10, 0, 0, octet)), 80, weight)
}

/// Dests with the given weights, ids 1.., addresses 10.0.0.1...
pub fn dests(weights: &[u32]) -> Vec<Dest> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| dest(i as u32 + 1, i as u8 + 1, w))
        .collect()
}

/// Set a dest's ActiveConn and InActConn.
pub fn set_load(dest: &Dest, active: u32, inactive: u32) {
    dest.counters.active.store(active, Ordering::Relaxed);
    dest.counters.inactive.store(inactive, Ordering::Relaxed);
}

/// Set or clear a dest's overload flag.
pub fn set_overloaded(dest: &Dest, overloaded: bool) {
    dest.counters
        .overloaded
        .store(overloaded, Ordering::Relaxed);
}

/// A TCP flow from `saddr:sport` to 192.0.2.1:80.
pub fn flow_from(saddr: IpAddr, sport: u16) -> Flow {
    Flow {
        protocol: 6,
        saddr,
        sport,
        daddr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dport: 80,
    }
}

/// A TCP flow from 198.51.100.7:40000 to `daddr:80`.
pub fn flow_to(daddr: IpAddr) -> Flow {
    Flow {
        protocol: 6,
        saddr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        sport: 40000,
        daddr,
        dport: 80,
    }
}

/// Any flow, for schedulers that ignore the packet.
pub fn any_flow() -> Flow {
    flow_to(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
}
