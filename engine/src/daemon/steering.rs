//! Which traffic the engine owns: the [`Steering`] set a backend must
//! deliver to it, computed from a configuration (the one the running
//! snapshot is built from, or the one about to be applied).
//!
//! - every virtual service: (protocol, virtual address, port; 0 = all
//!   ports); a fwmark service's match ranges flattened to their addresses
//!   with port 0 (the engine passes back to the kernel whatever no
//!   service takes), TCP and UDP where the range names no protocol;
//! - NAT replies: (protocol, real server address, real server port),
//!   matched on the packet's source;
//! - full NAT replies: the pool's local addresses and port range, but
//!   only while some real server uses full NAT, so that a pool address
//!   shared with the director's own traffic is not taken for nothing.
//!
//! Lists are sorted and free of duplicates, so equal configurations give
//! equal sets. A fwmark range wider than [`MAX_FWMARK_ADDRS`] addresses
//! in all is refused: no backend could hold it.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use uvs_conf::{Config, ForwardMethod, Protocol, ServiceKey};

use crate::io::Steering;

/// Most addresses all fwmark match ranges may flatten to.
pub const MAX_FWMARK_ADDRS: u128 = 65_536;

/// Why a configuration cannot be steered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SteeringError {
    /// The fwmark ranges cover too many addresses.
    #[error("fwmark {mark}: match ranges cover more than {MAX_FWMARK_ADDRS} addresses in all, more than a backend can steer; use narrower ranges")]
    TooManyAddresses {
        /// The fwmark service that went over.
        mark: u32,
    },
}

fn protocols(p: Option<Protocol>) -> &'static [u8] {
    match p {
        Some(Protocol::Tcp) => &[6],
        Some(Protocol::Udp) => &[17],
        Some(Protocol::Sctp) => &[132],
        None => &[6, 17, 132],
    }
}

/// Addresses from `first` to `last` inclusive (same family), at most
/// `budget` of them; `None` when there are more.
fn addresses(first: IpAddr, last: IpAddr, budget: u128) -> Option<Vec<IpAddr>> {
    match (first, last) {
        (IpAddr::V4(f), IpAddr::V4(l)) => {
            let (f, l) = (u32::from(f), u32::from(l));
            let count = u128::from(l.checked_sub(f)?) + 1;
            (count <= budget).then(|| (f..=l).map(|a| IpAddr::V4(Ipv4Addr::from(a))).collect())
        }
        (IpAddr::V6(f), IpAddr::V6(l)) => {
            let (f, l) = (u128::from(f), u128::from(l));
            let count = l.checked_sub(f)?.checked_add(1)?;
            (count <= budget).then(|| (f..=l).map(|a| IpAddr::V6(Ipv6Addr::from(a))).collect())
        }
        _ => Some(Vec::new()),
    }
}

/// The steering set for `config`.
pub fn compute(config: &Config) -> Result<Steering, SteeringError> {
    let mut services = BTreeSet::new();
    let mut nat = BTreeSet::new();
    let mut fullnat = false;
    let mut budget = MAX_FWMARK_ADDRS;
    for svc in &config.services {
        // Protocols of this service's traffic (for NAT replies too).
        let mut svc_protocols: BTreeSet<u8> = BTreeSet::new();
        match svc.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                services.insert((protocol.number(), addr, port));
                svc_protocols.insert(protocol.number());
            }
            ServiceKey::Fwmark { mark, .. } => {
                for range in &svc.fwmark_match {
                    let addrs = addresses(range.addr_first, range.addr_last, budget)
                        .ok_or(SteeringError::TooManyAddresses { mark })?;
                    budget -= addrs.len() as u128;
                    for &p in protocols(range.protocol) {
                        svc_protocols.insert(p);
                        for &a in &addrs {
                            services.insert((p, a, 0));
                        }
                    }
                }
            }
        }
        for d in &svc.dests {
            match d.method {
                ForwardMethod::Nat => {
                    for &p in &svc_protocols {
                        nat.insert((p, d.addr, d.port));
                    }
                }
                ForwardMethod::FullNat => fullnat = true,
                ForwardMethod::Dr | ForwardMethod::Tunnel { .. } => {}
            }
        }
    }
    let mut locals: Vec<IpAddr> = Vec::new();
    if fullnat {
        locals = config.fullnat_pool.addrs.clone();
        locals.sort();
        locals.dedup();
    }
    Ok(Steering {
        virtual_services: services.into_iter().collect(),
        nat_sources: nat.into_iter().collect(),
        fullnat_locals: locals,
        fullnat_ports: (
            config.fullnat_pool.port_first,
            config.fullnat_pool.port_last,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uvs_conf::{
        DestConfig, Family, FwmarkMatch, LocalAddrPool, Persistence, SchedFlags, SchedulerName,
        ServiceConfig,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn dest(addr: &str, port: u16, method: ForwardMethod) -> DestConfig {
        DestConfig {
            addr: ip(addr),
            port,
            method,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }
    }

    fn service(key: ServiceKey, dests: Vec<DestConfig>) -> ServiceConfig {
        ServiceConfig {
            key,
            scheduler: SchedulerName::Rr,
            flags: SchedFlags::default(),
            persistence: None,
            persistence_engine: None,
            one_packet: false,
            fwmark_match: Vec::new(),
            dests,
        }
    }

    #[test]
    fn services_nat_sources_and_fullnat_locals() {
        let mut config = Config {
            fullnat_pool: LocalAddrPool {
                addrs: vec![ip("198.51.100.250"), ip("198.51.100.249")],
                port_first: 5000,
                port_last: 6000,
            },
            ..Config::default()
        };
        config.services.push(service(
            ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: ip("192.0.2.100"),
                port: 80,
            },
            vec![
                dest("198.51.100.11", 8080, ForwardMethod::Nat),
                dest("198.51.100.12", 80, ForwardMethod::Dr),
            ],
        ));
        let mut persistent = service(
            ServiceKey::Addr {
                protocol: Protocol::Udp,
                addr: ip("2001:db8::100"),
                port: 0,
            },
            vec![dest("2001:db8:1::11", 0, ForwardMethod::FullNat)],
        );
        persistent.persistence = Some(Persistence {
            timeout: 360,
            netmask: uvs_conf::Netmask::V6(128),
        });
        config.services.push(persistent);
        let steering = compute(&config).unwrap();
        assert_eq!(
            steering.virtual_services,
            vec![(6, ip("192.0.2.100"), 80), (17, ip("2001:db8::100"), 0)]
        );
        assert_eq!(steering.nat_sources, vec![(6, ip("198.51.100.11"), 8080)]);
        assert_eq!(
            steering.fullnat_locals,
            vec![ip("198.51.100.249"), ip("198.51.100.250")]
        );
        assert_eq!(steering.fullnat_ports, (5000, 6000));
    }

    #[test]
    fn the_pool_is_not_steered_without_a_fullnat_server() {
        let mut config = Config::default();
        config.fullnat_pool.addrs.push(ip("198.51.100.250"));
        config.services.push(service(
            ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: ip("192.0.2.100"),
                port: 80,
            },
            vec![dest("198.51.100.12", 80, ForwardMethod::Dr)],
        ));
        let steering = compute(&config).unwrap();
        assert!(steering.fullnat_locals.is_empty());
        assert!(steering.nat_sources.is_empty());
        assert_eq!(
            compute(&Config::default()).unwrap(),
            Steering {
                fullnat_ports: (1024, 65535),
                ..Steering::default()
            }
        );
    }

    #[test]
    fn fwmark_ranges_flatten_to_addresses_with_port_zero() {
        let mut config = Config::default();
        let mut fwm = service(
            ServiceKey::Fwmark {
                mark: 5,
                family: Family::V4,
            },
            vec![dest("198.51.100.11", 0, ForwardMethod::Nat)],
        );
        fwm.fwmark_match = vec![
            FwmarkMatch {
                protocol: None,
                addr_first: ip("192.0.2.10"),
                addr_last: ip("192.0.2.11"),
                port_first: 80,
                port_last: 443,
            },
            FwmarkMatch {
                protocol: Some(Protocol::Udp),
                addr_first: ip("192.0.2.20"),
                addr_last: ip("192.0.2.20"),
                port_first: 53,
                port_last: 53,
            },
        ];
        config.services.push(fwm);
        let steering = compute(&config).unwrap();
        assert_eq!(
            steering.virtual_services,
            vec![
                (6, ip("192.0.2.10"), 0),
                (6, ip("192.0.2.11"), 0),
                (17, ip("192.0.2.10"), 0),
                (17, ip("192.0.2.11"), 0),
                (17, ip("192.0.2.20"), 0),
                (132, ip("192.0.2.10"), 0),
                (132, ip("192.0.2.11"), 0),
            ]
        );
        assert_eq!(
            steering.nat_sources,
            vec![
                (6, ip("198.51.100.11"), 0),
                (17, ip("198.51.100.11"), 0),
                (132, ip("198.51.100.11"), 0)
            ]
        );
    }

    #[test]
    fn sctp_services_and_their_nat_replies_are_steered_as_protocol_132() {
        let mut config = Config::default();
        config.services.push(service(
            ServiceKey::Addr {
                protocol: Protocol::Sctp,
                addr: ip("192.0.2.100"),
                port: 3868,
            },
            vec![
                dest("198.51.100.11", 3869, ForwardMethod::Nat),
                dest("198.51.100.12", 3868, ForwardMethod::Dr),
            ],
        ));
        let steering = compute(&config).unwrap();
        assert_eq!(
            steering.virtual_services,
            vec![(132, ip("192.0.2.100"), 3868)]
        );
        assert_eq!(steering.nat_sources, vec![(132, ip("198.51.100.11"), 3869)]);
    }

    #[test]
    fn a_huge_fwmark_range_is_refused() {
        let mut config = Config::default();
        let mut fwm = service(
            ServiceKey::Fwmark {
                mark: 9,
                family: Family::V6,
            },
            Vec::new(),
        );
        fwm.fwmark_match = vec![FwmarkMatch {
            protocol: None,
            addr_first: ip("2001:db8::"),
            addr_last: ip("2001:db8::ffff:ffff:ffff:ffff"),
            port_first: 0,
            port_last: 65535,
        }];
        config.services.push(fwm);
        assert_eq!(
            compute(&config),
            Err(SteeringError::TooManyAddresses { mark: 9 })
        );
    }
}
