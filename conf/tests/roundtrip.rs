//! Property: any valid `Config` written by `to_toml` parses back to
//! itself, so the file format can express everything the model holds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use uvs_conf::{
    parse_config, to_toml, Config, DestConfig, EngineSettings, Family, ForwardMethod, FwmarkMatch,
    LocalAddrPool, Netmask, Persistence, PersistenceEngine, Protocol, SchedFlags, SchedulerName,
    ServiceConfig, ServiceKey, Timeouts, TunnelCsum, TunnelType,
};

const MAX_TIMEOUT: u32 = 86_400 * 31;

fn engine() -> impl Strategy<Value = EngineSettings> {
    (
        1..=u32::MAX,
        8u8..=20,
        proptest::sample::subsequence(vec!["eth0", "eth1", "ens33", "bond0.100", "wg-é"], 0..=3),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u128>()),
        any::<(bool, bool)>(),
        0u8..=3,
    )
        .prop_map(
            |(size, bits, names, v4, v6, (nodest, quiescent), reuse)| EngineSettings {
                conn_table_size: size,
                conn_tab_bits: bits,
                interfaces: names.into_iter().map(str::to_string).collect(),
                tunnel_source_v4: v4.map(|bits| IpAddr::V4(Ipv4Addr::from(bits))),
                tunnel_source_v6: v6.map(|bits| IpAddr::V6(Ipv6Addr::from(bits))),
                expire_nodest_conn: nodest,
                expire_quiescent_template: quiescent,
                conn_reuse_mode: reuse,
                ..EngineSettings::default()
            },
        )
}

fn timeouts() -> impl Strategy<Value = Timeouts> {
    (1..=MAX_TIMEOUT, 1..=MAX_TIMEOUT, 1..=MAX_TIMEOUT).prop_map(|(tcp, tcp_fin, udp)| Timeouts {
        tcp,
        tcp_fin,
        udp,
    })
}

fn pool() -> impl Strategy<Value = LocalAddrPool> {
    (1u16..=65535)
        .prop_flat_map(|first| (Just(first), first..=65535))
        .prop_map(|(port_first, port_last)| LocalAddrPool {
            addrs: vec![
                IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            ],
            port_first,
            port_last,
        })
}

fn tunnel() -> impl Strategy<Value = ForwardMethod> {
    prop_oneof![
        Just((TunnelType::Ipip, TunnelCsum::NoCsum)),
        (prop_oneof![Just(TunnelCsum::NoCsum), Just(TunnelCsum::Csum)])
            .prop_map(|csum| (TunnelType::Gre, csum)),
        (
            1u16..=65535,
            prop_oneof![
                Just(TunnelCsum::NoCsum),
                Just(TunnelCsum::Csum),
                Just(TunnelCsum::RemCsum)
            ]
        )
            .prop_map(|(port, csum)| (TunnelType::Gue { port }, csum)),
    ]
    .prop_map(|(kind, csum)| ForwardMethod::Tunnel { kind, csum })
}

/// Real servers of a service on `service_port` (None: fwmark); the
/// `index`-th is 10.<service>.1.<index>, so none repeats.
fn dests(service: u8, service_port: Option<u16>) -> impl Strategy<Value = Vec<DestConfig>> {
    let dest = (
        prop_oneof![
            Just(ForwardMethod::Dr),
            Just(ForwardMethod::Nat),
            Just(ForwardMethod::FullNat),
            tunnel()
        ],
        any::<u16>(),
        0u32..=65535,
        (0u32..=i32::MAX as u32).prop_flat_map(|upper| (Just(upper), 0..=upper)),
    );
    proptest::collection::vec(dest, 0..4).prop_map(move |list| {
        list.into_iter()
            .enumerate()
            .map(|(index, (method, port, weight, (upper, lower)))| {
                let keeps_port = matches!(method, ForwardMethod::Dr | ForwardMethod::Tunnel { .. });
                let port = match service_port {
                    Some(service_port) if keeps_port => service_port,
                    _ => port,
                };
                DestConfig {
                    addr: IpAddr::V4(Ipv4Addr::new(10, service, 1, index as u8 + 1)),
                    port,
                    method,
                    weight,
                    u_threshold: upper,
                    l_threshold: lower,
                }
            })
            .collect()
    })
}

fn scheduler() -> impl Strategy<Value = SchedulerName> {
    proptest::sample::select(SchedulerName::ALL.to_vec())
}

fn flags() -> impl Strategy<Value = SchedFlags> {
    any::<(bool, bool, bool)>().prop_map(|(flag1, flag2, flag3)| SchedFlags {
        flag1,
        flag2,
        flag3,
    })
}

fn persistence() -> impl Strategy<Value = Option<Persistence>> {
    proptest::option::of(
        (1..=MAX_TIMEOUT, netmask_v4())
            .prop_map(|(timeout, netmask)| Persistence { timeout, netmask }),
    )
}

/// An IPv4 persistence mask: a prefix length, or any 32 bits (ipvsadm's
/// `-M` takes non-contiguous masks such as 255.0.255.0).
fn netmask_v4() -> impl Strategy<Value = Netmask> {
    prop_oneof![
        (0u8..=32).prop_map(Netmask::v4_prefix),
        any::<u32>().prop_map(|bits| Netmask::V4(Ipv4Addr::from(bits))),
    ]
}

/// Service `index`: TCP/UDP on 192.0.<index>.1, or fwmark `index + 1`
/// matching 198.18.<index>.0/24 (so no two overlap).
fn service(index: u8) -> impl Strategy<Value = ServiceConfig> {
    let addr_service = (any::<bool>(), any::<u16>(), persistence(), any::<bool>()).prop_flat_map(
        move |(udp, port, persistence, one_packet)| {
            let port = if persistence.is_none() && port == 0 {
                80
            } else {
                port
            };
            let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
            let key = ServiceKey::Addr {
                protocol,
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, index, 1)),
                port,
            };
            (
                Just((key, persistence, one_packet && udp, Vec::new())),
                dests(index, Some(port)),
            )
        },
    );
    let fwmark_service = (
        persistence(),
        any::<bool>(),
        proptest::option::of(any::<bool>()),
        any::<(u16, u16)>(),
    )
        .prop_flat_map(move |(persistence, one_packet, protocol, (a, b))| {
            let key = ServiceKey::Fwmark {
                mark: u32::from(index) + 1,
                family: Family::V4,
            };
            let range = FwmarkMatch {
                protocol: protocol.map(|udp| if udp { Protocol::Udp } else { Protocol::Tcp }),
                addr_first: IpAddr::V4(Ipv4Addr::new(198, 18, index, 0)),
                addr_last: IpAddr::V4(Ipv4Addr::new(198, 18, index, 255)),
                port_first: a.min(b),
                port_last: a.max(b),
            };
            (
                Just((key, persistence, one_packet, vec![range])),
                dests(index, None),
            )
        });
    (
        prop_oneof![addr_service, fwmark_service],
        scheduler(),
        flags(),
        any::<bool>(),
    )
        .prop_map(
            |(((key, persistence, one_packet, fwmark_match), dests), scheduler, flags, sip)| {
                ServiceConfig {
                    key,
                    scheduler,
                    flags,
                    persistence,
                    persistence_engine: sip.then_some(PersistenceEngine::Sip),
                    one_packet,
                    fwmark_match,
                    dests,
                }
            },
        )
}

fn config() -> impl Strategy<Value = Config> {
    (
        engine(),
        timeouts(),
        pool(),
        (0u8..4).prop_flat_map(|count| (0..count).map(service).collect::<Vec<_>>()),
    )
        .prop_map(|(engine, timeouts, fullnat_pool, services)| Config {
            engine,
            timeouts,
            fullnat_pool,
            services,
        })
}

proptest! {
    #[test]
    fn any_valid_config_round_trips_through_to_toml(config in config()) {
        prop_assert_eq!(config.validate(), Ok(()));
        let text = to_toml(&config);
        let parsed = parse_config("rendered.toml", &text);
        prop_assert_eq!(parsed.as_ref(), Ok(&config), "rendered text:\n{}", text);
    }
}
