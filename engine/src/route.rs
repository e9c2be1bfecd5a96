//! Where a rewritten frame goes: the director's ports (interfaces), the
//! routes over them and the neighbours' MAC addresses.
//!
//! The daemon fills a [`NetView`] from the kernel (addresses, routes,
//! neighbour table) and swaps a new one in when something changes; tests
//! and benches build one by hand. Workers only read it: [`NetView::next_hop`]
//! is a longest-prefix match over a short route list plus one hash lookup,
//! with no allocation.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// An Ethernet address.
pub type Mac = [u8; 6];

/// Index of a port (interface) of the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

/// One interface of the director.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Interface name, for logs.
    pub name: String,
    /// Its MAC address.
    pub mac: Mac,
    /// Its MTU (IP packet size).
    pub mtu: u16,
    /// Its own IPv4 address, used as a tunnel source and ICMP source.
    pub addr_v4: Option<IpAddr>,
    /// Its own IPv6 address.
    pub addr_v6: Option<IpAddr>,
}

/// A route: packets to `prefix/len` leave by `port`, to `gateway` when set
/// or straight to their destination (a connected network) when not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Network address.
    pub prefix: IpAddr,
    /// Prefix length.
    pub len: u8,
    /// Egress port.
    pub port: PortId,
    /// Next hop, if not on-link.
    pub gateway: Option<IpAddr>,
}

/// What the engine needs to send a frame towards an address. Aligned to
/// 8 bytes so that a copy (the per-worker cache hands one out for every
/// packet) moves two whole words: at its natural 2-byte alignment it sat
/// at odd offsets in a `Result`, written piecemeal and read back in
/// words, a store-forwarding stall on every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(8))]
pub struct NextHop {
    /// Egress port.
    pub port: PortId,
    /// Source MAC (the port's).
    pub src_mac: Mac,
    /// Destination MAC (the next hop's).
    pub dst_mac: Mac,
    /// The port's MTU.
    pub mtu: u16,
}

/// Why no next hop was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// No route covers the destination.
    NoRoute,
    /// The next hop's MAC is not known (yet).
    NoNeighbour,
}

/// The director's view of its network.
#[derive(Debug, Clone, Default)]
pub struct NetView {
    /// Ports, indexed by [`PortId`].
    pub ports: Vec<Port>,
    /// Routes, any order; the longest matching prefix wins.
    pub routes: Vec<Route>,
    /// Neighbours' MAC addresses.
    pub neighbours: HashMap<IpAddr, Mac, ahash::RandomState>,
}

fn prefix_matches(prefix: IpAddr, len: u8, addr: IpAddr) -> bool {
    match (prefix, addr) {
        (IpAddr::V4(p), IpAddr::V4(a)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(p) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(p), IpAddr::V6(a)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(p) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

impl NetView {
    /// The route for `dst`: the longest matching prefix.
    pub fn route(&self, dst: IpAddr) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| prefix_matches(r.prefix, r.len, dst))
            .max_by_key(|r| r.len)
    }

    /// The next hop towards `dst`.
    pub fn next_hop(&self, dst: IpAddr) -> Result<NextHop, RouteError> {
        let route = self.route(dst).ok_or(RouteError::NoRoute)?;
        let port = self
            .ports
            .get(usize::from(route.port.0))
            .ok_or(RouteError::NoRoute)?;
        let hop = route.gateway.unwrap_or(dst);
        let dst_mac = *self.neighbours.get(&hop).ok_or(RouteError::NoNeighbour)?;
        Ok(NextHop {
            port: route.port,
            src_mac: port.mac,
            dst_mac,
            mtu: port.mtu,
        })
    }

    /// A port by id.
    pub fn port(&self, id: PortId) -> Option<&Port> {
        self.ports.get(usize::from(id.0))
    }

    /// The source address the director uses towards `dst` (the egress
    /// port's own address of the same family).
    pub fn source_for(&self, dst: IpAddr) -> Option<IpAddr> {
        self.port_source(self.route(dst)?.port, dst)
    }

    /// The address of `port` in `dst`'s family: [`NetView::source_for`]
    /// for a caller that already knows the port routing to `dst`.
    #[inline]
    pub fn port_source(&self, port: PortId, dst: IpAddr) -> Option<IpAddr> {
        let port = self.port(port)?;
        match dst {
            IpAddr::V4(_) => port.addr_v4,
            IpAddr::V6(_) => port.addr_v6,
        }
    }
}

/// Slots of a [`NeighbourMisses`] log.
pub const MISS_SLOTS: usize = 32;

/// One slot: the address in two halves and its family (0 = empty).
#[derive(Debug, Default)]
struct MissSlot {
    hi: AtomicU64,
    lo: AtomicU64,
    family: AtomicU8,
}

/// Destinations whose next hop had no known MAC, noted by workers
/// ([`NeighbourMisses::note`]: three relaxed/release stores, no
/// allocation, no lock) and collected by the daemon, which makes the
/// kernel resolve them. A fixed set of slots chosen by address: a storm
/// of misses overwrites, never grows. Two workers writing one slot at
/// once may leave a mixed address; the daemon then solicits an address
/// nobody needs, which is harmless.
#[derive(Debug, Default)]
pub struct NeighbourMisses {
    slots: [MissSlot; MISS_SLOTS],
}

impl NeighbourMisses {
    /// Note that `dst` could not be sent for want of a neighbour.
    pub fn note(&self, dst: IpAddr) {
        let (family, bits) = match dst {
            IpAddr::V4(a) => (4u8, u128::from(u32::from(a))),
            IpAddr::V6(a) => (6u8, u128::from(a)),
        };
        let folded = (bits as u64) ^ ((bits >> 64) as u64);
        let index = (folded ^ (folded >> 29) ^ (folded >> 47)) as usize % MISS_SLOTS;
        let slot = &self.slots[index];
        slot.hi.store((bits >> 64) as u64, Ordering::Relaxed);
        slot.lo.store(bits as u64, Ordering::Relaxed);
        slot.family.store(family, Ordering::Release);
    }

    /// Move every noted address into `out` and clear the log.
    pub fn take(&self, out: &mut Vec<IpAddr>) {
        for slot in &self.slots {
            let family = slot.family.swap(0, Ordering::Acquire);
            if family == 0 {
                continue;
            }
            let bits = (u128::from(slot.hi.load(Ordering::Relaxed)) << 64)
                | u128::from(slot.lo.load(Ordering::Relaxed));
            let addr = if family == 4 {
                IpAddr::V4(Ipv4Addr::from(bits as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(bits))
            };
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> NetView {
        let mut v = NetView {
            ports: vec![
                Port {
                    name: "eth0".into(),
                    mac: [2, 0, 0, 0, 0, 1],
                    mtu: 1500,
                    addr_v4: Some("192.168.1.1".parse().unwrap()),
                    addr_v6: None,
                },
                Port {
                    name: "eth1".into(),
                    mac: [2, 0, 0, 0, 0, 2],
                    mtu: 9000,
                    addr_v4: Some("10.0.0.1".parse().unwrap()),
                    addr_v6: None,
                },
            ],
            routes: vec![
                Route {
                    prefix: "0.0.0.0".parse().unwrap(),
                    len: 0,
                    port: PortId(0),
                    gateway: Some("192.168.1.254".parse().unwrap()),
                },
                Route {
                    prefix: "10.0.0.0".parse().unwrap(),
                    len: 24,
                    port: PortId(1),
                    gateway: None,
                },
            ],
            neighbours: HashMap::default(),
        };
        v.neighbours
            .insert("192.168.1.254".parse().unwrap(), [2, 0, 0, 0, 0, 0xfe]);
        v.neighbours
            .insert("10.0.0.2".parse().unwrap(), [2, 0, 0, 0, 0, 0x22]);
        v
    }

    #[test]
    fn longest_prefix_wins_and_on_link_uses_destination_mac() {
        let hop = view().next_hop("10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(hop.port, PortId(1));
        assert_eq!(hop.dst_mac, [2, 0, 0, 0, 0, 0x22]);
        assert_eq!(hop.src_mac, [2, 0, 0, 0, 0, 2]);
        assert_eq!(hop.mtu, 9000);
    }

    #[test]
    fn default_route_goes_to_gateway_mac() {
        let hop = view().next_hop("203.0.113.9".parse().unwrap()).unwrap();
        assert_eq!(hop.port, PortId(0));
        assert_eq!(hop.dst_mac, [2, 0, 0, 0, 0, 0xfe]);
    }

    #[test]
    fn unknown_neighbour_and_missing_route_are_distinct_errors() {
        let v = view();
        assert_eq!(
            v.next_hop("10.0.0.3".parse().unwrap()),
            Err(RouteError::NoNeighbour)
        );
        assert_eq!(
            v.next_hop("2001:db8::1".parse().unwrap()),
            Err(RouteError::NoRoute)
        );
    }

    #[test]
    fn neighbour_misses_are_collected_once_each() {
        let misses = NeighbourMisses::default();
        let a: IpAddr = "10.0.0.3".parse().unwrap();
        let b: IpAddr = "2001:db8::7".parse().unwrap();
        misses.note(a);
        misses.note(b);
        misses.note(a);
        let mut out = Vec::new();
        misses.take(&mut out);
        out.sort();
        assert_eq!(out, vec![a, b]);
        out.clear();
        misses.take(&mut out);
        assert!(out.is_empty(), "take clears the log: {out:?}");
    }

    #[test]
    fn source_address_is_the_egress_port_address() {
        assert_eq!(
            view().source_for("10.0.0.9".parse().unwrap()),
            Some("10.0.0.1".parse().unwrap())
        );
    }
}
