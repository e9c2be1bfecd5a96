//! Properties: any table ipvsadm can express survives `-S` then `-R`
//! (into an empty uvsd) unchanged, and saving it again prints the same
//! rules; and no argument vector, however odd, makes the parser panic.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use proptest::prelude::*;
use uvs_conf::control::{ServerStatus, ServiceSpec, ServiceStatus};
use uvs_conf::{
    DestConfig, Family, ForwardMethod, Netmask, Persistence, PersistenceEngine, Protocol,
    SchedFlags, SchedulerName, ServiceKey, TunnelCsum, TunnelType,
};
use uvs_ctl::parse::parse_args;

/// Addresses whose 32-bit words stay below 2^31, so that ipvsadm's
/// wrapping comparison is a total order on them and sorting is canonical
/// (the wrap itself is tested with the listings).
fn addr(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        proptest::array::uniform4(0u32..0x8000_0000)
            .prop_map(|w| {
                let n = w.iter().fold(0u128, |acc, &x| (acc << 32) | u128::from(x));
                IpAddr::V6(Ipv6Addr::from(n | 1))
            })
            .boxed()
    } else {
        (1u32..0x8000_0000)
            .prop_map(|n| IpAddr::V4(Ipv4Addr::from(n)))
            .boxed()
    }
}

fn key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (0usize..3, any::<bool>(), any::<u16>()).prop_flat_map(|(proto, v6, port)| {
            addr(v6).prop_map(move |a| ServiceKey::Addr {
                protocol: [Protocol::Tcp, Protocol::Udp, Protocol::Sctp][proto],
                addr: a,
                port,
            })
        }),
        (1u32..0x8000_0000, any::<bool>()).prop_map(|(mark, v6)| ServiceKey::Fwmark {
            mark,
            family: if v6 { Family::V6 } else { Family::V4 },
        }),
    ]
}

fn method() -> impl Strategy<Value = ForwardMethod> {
    let csum = prop_oneof![
        Just(TunnelCsum::NoCsum),
        Just(TunnelCsum::Csum),
        Just(TunnelCsum::RemCsum)
    ];
    prop_oneof![
        Just(ForwardMethod::Dr),
        Just(ForwardMethod::Nat),
        Just(ForwardMethod::FullNat),
        Just(ForwardMethod::Tunnel {
            kind: TunnelType::Ipip,
            csum: TunnelCsum::NoCsum
        }),
        (1u16..=u16::MAX, csum).prop_map(|(port, csum)| ForwardMethod::Tunnel {
            kind: TunnelType::Gue { port },
            csum
        }),
        any::<bool>().prop_map(|c| ForwardMethod::Tunnel {
            kind: TunnelType::Gre,
            csum: if c {
                TunnelCsum::Csum
            } else {
                TunnelCsum::NoCsum
            }
        }),
    ]
}

fn is_v6(key: &ServiceKey) -> bool {
    match key {
        ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
        ServiceKey::Fwmark { family, .. } => *family == Family::V6,
    }
}

/// One service as ipvsadm could have made it.
fn service_status() -> impl Strategy<Value = ServiceStatus> {
    (
        key(),
        0usize..14,
        any::<(bool, bool, bool)>(),
        any::<bool>(),
        1u32..=2_678_400,
        // IPv4: any 32-bit mask, contiguous or not (-M 255.0.255.0);
        // IPv6: a prefix length.
        prop_oneof![
            any::<u32>(),
            (0u32..=32).prop_map(|n| u32::MAX.checked_shl(32 - n).unwrap_or(0))
        ],
        any::<bool>(),
        proptest::collection::vec((method(), any::<bool>(), any::<u16>(), 0u32..=65535), 0..5),
    )
        .prop_flat_map(
            |(key, sched, (f1, f2, f3), persistent, timeout, prefix, ops, dests)| {
                let v6 = is_v6(&key);
                let dest_addrs: Vec<_> = dests
                    .iter()
                    .map(|(m, other_family, _, _)| {
                        let tunnel = matches!(m, ForwardMethod::Tunnel { .. });
                        addr(if tunnel && *other_family { !v6 } else { v6 })
                    })
                    .collect();
                (
                    Just((
                        key,
                        sched,
                        (f1, f2, f3),
                        persistent,
                        timeout,
                        prefix,
                        ops,
                        dests,
                    )),
                    dest_addrs,
                )
            },
        )
        .prop_map(
            |((key, sched, (f1, f2, f3), persistent, timeout, prefix, ops, dests), addrs)| {
                let scheduler = SchedulerName::ALL[sched];
                let named = matches!(scheduler, SchedulerName::Sh | SchedulerName::Mh);
                let (svc_port, fwmark, udp) = match key {
                    ServiceKey::Addr { port, protocol, .. } => {
                        (port, false, protocol == Protocol::Udp)
                    }
                    ServiceKey::Fwmark { .. } => (0, true, false),
                };
                // Port 0 needs persistence (ipvsadm's rule).
                let persistent = persistent || (!fwmark && svc_port == 0);
                let persistence = persistent.then(|| Persistence {
                    timeout,
                    netmask: if is_v6(&key) {
                        Netmask::V6((prefix % 128 + 1) as u8)
                    } else {
                        Netmask::V4(prefix.into())
                    },
                });
                let mut seen = HashSet::new();
                let servers: Vec<ServerStatus> = dests
                    .into_iter()
                    .zip(addrs)
                    .filter_map(|((method, _, port, weight), a)| {
                        let forced = !fwmark
                            && matches!(method, ForwardMethod::Dr | ForwardMethod::Tunnel { .. });
                        let port = if forced { svc_port } else { port };
                        seen.insert((a, port)).then(|| {
                            server(DestConfig {
                                addr: a,
                                port,
                                method,
                                weight,
                                u_threshold: 0,
                                l_threshold: 0,
                            })
                        })
                    })
                    .collect();
                service(
                    ServiceSpec {
                        key,
                        scheduler,
                        flags: SchedFlags {
                            flag1: f1,
                            flag2: f2,
                            // sh and mh name only their two flags.
                            flag3: f3 && !named,
                        },
                        persistence,
                        // --pe sip on a third of the services, persistent
                        // or not (ipvsadm saves it either way).
                        persistence_engine: (timeout % 3 == 0).then_some(PersistenceEngine::Sip),
                        one_packet: ops && (fwmark || udp),
                        fwmark_match: vec![],
                    },
                    servers,
                )
            },
        )
}

fn table() -> impl Strategy<Value = Vec<ServiceStatus>> {
    proptest::collection::vec(service_status(), 0..5).prop_map(|v| {
        let mut seen = HashSet::new();
        v.into_iter().filter(|s| seen.insert(s.spec.key)).collect()
    })
}

fn canonical(mut v: Vec<ServiceStatus>) -> Vec<ServiceStatus> {
    for s in &mut v {
        s.servers.sort_by_key(|d| (d.config.addr, d.config.port));
    }
    v.sort_by_key(|s| format!("{:?}", s.spec.key));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn save_then_restore_is_the_same_table(services in table()) {
        let mut original = EngineTransport::new();
        original.engine.services = services.clone();
        let saved = run_with(&mut original, &args("-S -n"), "");
        prop_assert_eq!(saved.status, 0);

        let mut restored = EngineTransport::new();
        let o = run_with(&mut restored, &args("-R"), &saved.stdout);
        prop_assert_eq!((o.status, o.stderr.as_str()), (0, ""), "{}", saved.stdout);
        prop_assert_eq!(canonical(restored.engine.services.clone()), canonical(services));
        let again = run_with(&mut restored, &args("-S -n"), "");
        prop_assert_eq!(again.stdout, saved.stdout);
    }

    #[test]
    fn the_parser_never_panics(words in proptest::collection::vec(
        prop_oneof![
            Just("-A".to_string()), Just("-a".to_string()), Just("-L".to_string()),
            Just("-t".to_string()), Just("-r".to_string()), Just("-p".to_string()),
            Just("-M".to_string()), Just("-6".to_string()), Just("-f".to_string()),
            Just("--set".to_string()), Just("--tun-type".to_string()), Just("-b".to_string()),
            Just("--".to_string()), Just("-".to_string()), Just("[".to_string()),
            Just("[::1]:".to_string()), Just("-Ln=é".to_string()),
            "[-:\\[\\]a-z0-9.=,é]{0,12}",
        ],
        0..8,
    )) {
        let mut argv = vec!["uvsadm".to_string()];
        argv.extend(words);
        // Whatever the words, an action or one of ipvsadm's errors.
        if let Err(e) = parse_args(&argv, &resolver()) {
            prop_assert!(matches!(e.status(), 2 | 255));
            prop_assert!(!e.message("uvsadm").is_empty());
        }
    }
}
