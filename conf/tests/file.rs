//! The config file: a full example parses to the exact expected `Config`,
//! the shipped examples parse, bad inputs are reported at the right
//! line:column with the right message, and defaults round-trip.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use uvs_conf::{
    load_config, parse_config, Config, ConfigError, DestConfig, EngineSettings, Family,
    ForwardMethod, FwmarkMatch, LocalAddrPool, Netmask, Persistence, Protocol, SchedFlags,
    SchedulerName, ServiceConfig, ServiceKey, Timeouts, TunnelCsum, TunnelType,
};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn dest(addr: &str, port: u16, method: ForwardMethod, weight: u32) -> DestConfig {
    DestConfig {
        addr: ip(addr),
        port,
        method,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn addr_service(protocol: Protocol, addr: &str, port: u16) -> ServiceConfig {
    ServiceConfig {
        key: ServiceKey::Addr {
            protocol,
            addr: ip(addr),
            port,
        },
        scheduler: SchedulerName::Wlc,
        flags: SchedFlags::default(),
        persistence: None,
        persistence_engine: None,
        one_packet: false,
        fwmark_match: Vec::new(),
        dests: Vec::new(),
    }
}

fn expected_full_config() -> Config {
    let engine = EngineSettings {
        conn_table_size: 65536,
        conn_tab_bits: 16,
        interfaces: vec!["eth0".to_string(), "eth1".to_string()],
        tunnel_source_v4: Some(ip("10.0.0.1")),
        tunnel_source_v6: Some(ip("fd00::1")),
        expire_nodest_conn: true,
        expire_quiescent_template: true,
        conn_reuse_mode: 2,
        ..EngineSettings::default()
    };
    let timeouts = Timeouts {
        tcp: 7200,
        tcp_fin: 120,
        udp: 60,
    };
    let fullnat_pool = LocalAddrPool {
        addrs: vec![ip("10.0.0.250"), ip("fd00::250")],
        port_first: 20000,
        port_last: 29999,
    };
    let web = ServiceConfig {
        scheduler: SchedulerName::Wrr,
        flags: SchedFlags {
            flag1: false,
            flag2: false,
            flag3: true,
        },
        persistence: Some(Persistence {
            timeout: 600,
            netmask: Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)),
        }),
        dests: vec![
            DestConfig {
                u_threshold: 100,
                l_threshold: 50,
                ..dest("10.0.0.2", 80, ForwardMethod::Dr, 3)
            },
            dest("10.0.0.3", 80, ForwardMethod::Dr, 0),
        ],
        ..addr_service(Protocol::Tcp, "192.168.1.100", 80)
    };
    let dns = ServiceConfig {
        scheduler: SchedulerName::Sh,
        flags: SchedFlags {
            flag1: true,
            flag2: true,
            flag3: false,
        },
        one_packet: true,
        dests: vec![dest("10.0.0.2", 5353, ForwardMethod::Nat, 1)],
        ..addr_service(Protocol::Udp, "192.168.1.100", 53)
    };
    let tunnel = |kind, csum| ForwardMethod::Tunnel { kind, csum };
    let v6_all_ports = ServiceConfig {
        scheduler: SchedulerName::Mh,
        flags: SchedFlags {
            flag1: true,
            flag2: true,
            flag3: false,
        },
        persistence: Some(Persistence {
            timeout: 360,
            netmask: Netmask::V6(64),
        }),
        dests: vec![
            dest(
                "2001:db8::2",
                0,
                tunnel(TunnelType::Gue { port: 6080 }, TunnelCsum::RemCsum),
                1,
            ),
            dest(
                "2001:db8::3",
                0,
                tunnel(TunnelType::Gre, TunnelCsum::Csum),
                1,
            ),
            dest(
                "10.0.0.4",
                0,
                tunnel(TunnelType::Ipip, TunnelCsum::NoCsum),
                1,
            ),
        ],
        ..addr_service(Protocol::Tcp, "2001:db8::100", 0)
    };
    let full_nat = ServiceConfig {
        dests: vec![dest("10.0.0.5", 8443, ForwardMethod::FullNat, 65535)],
        ..addr_service(Protocol::Tcp, "192.168.1.101", 443)
    };
    let fwmark_v4 = ServiceConfig {
        key: ServiceKey::Fwmark {
            mark: 5,
            family: Family::V4,
        },
        scheduler: SchedulerName::Lc,
        one_packet: true,
        fwmark_match: vec![
            FwmarkMatch {
                protocol: None,
                addr_first: ip("192.168.1.110"),
                addr_last: ip("192.168.1.119"),
                port_first: 8000,
                port_last: 8099,
            },
            FwmarkMatch {
                protocol: Some(Protocol::Udp),
                addr_first: ip("192.168.2.0"),
                addr_last: ip("192.168.2.255"),
                port_first: 53,
                port_last: 53,
            },
        ],
        dests: vec![
            dest("10.0.0.6", 8000, ForwardMethod::Dr, 1),
            dest("10.0.0.7", 0, ForwardMethod::Dr, 1),
        ],
        ..addr_service(Protocol::Tcp, "192.0.2.1", 1)
    };
    let fwmark_v6 = ServiceConfig {
        key: ServiceKey::Fwmark {
            mark: 6,
            family: Family::V6,
        },
        persistence: Some(Persistence {
            timeout: 30,
            netmask: Netmask::V6(128),
        }),
        fwmark_match: vec![FwmarkMatch {
            protocol: Some(Protocol::Tcp),
            addr_first: ip("2001:db8:1::"),
            addr_last: ip("2001:db8:1::ffff:ffff:ffff:ffff"),
            port_first: 0,
            port_last: 65535,
        }],
        dests: vec![dest("2001:db8::9", 80, ForwardMethod::Nat, 1)],
        ..addr_service(Protocol::Tcp, "192.0.2.1", 1)
    };
    Config {
        engine,
        timeouts,
        fullnat_pool,
        services: vec![web, dns, v6_all_ports, full_nat, fwmark_v4, fwmark_v6],
    }
}

#[test]
fn full_example_parses_to_the_exact_config() {
    let config = load_config(&example("full.toml")).expect("full.toml is valid");
    assert_eq!(config, expected_full_config());
}

#[test]
fn dr_example_matches_the_seed_walkthrough() {
    let config = load_config(&example("dr.toml")).expect("dr.toml is valid");
    let expected = Config {
        engine: EngineSettings {
            interfaces: vec!["ens33".to_string()],
            ..EngineSettings::default()
        },
        services: vec![ServiceConfig {
            scheduler: SchedulerName::Rr,
            dests: vec![
                dest("192.168.79.129", 80, ForwardMethod::Dr, 1),
                dest("192.168.79.131", 80, ForwardMethod::Dr, 1),
            ],
            ..addr_service(Protocol::Tcp, "192.168.79.180", 80)
        }],
        ..Config::default()
    };
    assert_eq!(config, expected);
}

#[test]
fn nat_example_matches_the_seed_walkthrough() {
    let config = load_config(&example("nat.toml")).expect("nat.toml is valid");
    let expected = Config {
        engine: EngineSettings {
            interfaces: vec!["ens37".to_string(), "ens33".to_string()],
            ..EngineSettings::default()
        },
        services: vec![ServiceConfig {
            scheduler: SchedulerName::Rr,
            dests: vec![
                dest("192.168.79.129", 80, ForwardMethod::Nat, 1),
                dest("192.168.79.131", 80, ForwardMethod::Nat, 1),
            ],
            ..addr_service(Protocol::Tcp, "10.133.146.47", 80)
        }],
        ..Config::default()
    };
    assert_eq!(config, expected);
}

#[test]
fn empty_file_gives_the_defaults() {
    assert_eq!(parse_config("empty.toml", ""), Ok(Config::default()));
}

#[test]
fn defaults_written_out_give_the_defaults() {
    let text = r#"
[engine]
conn_table_size = 1048576
conn_tab_bits = 12
interfaces = []
expire_nodest_conn = false
expire_quiescent_template = false
conn_reuse_mode = 1

[timeouts]
tcp = 900
tcpfin = 120
udp = 300

[fullnat]
addrs = []
port_range = "1024-65535"
"#;
    assert_eq!(parse_config("defaults.toml", text), Ok(Config::default()));
}

#[test]
fn zero_timeouts_keep_the_defaults() {
    let text = "[timeouts]\ntcp = 0\ntcpfin = 0\nudp = 0\n";
    assert_eq!(parse_config("zero.toml", text), Ok(Config::default()));
}

#[test]
fn missing_file_is_a_read_error() {
    let error = load_config(&example("no-such-file.toml")).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error
        .to_string()
        .contains("no-such-file.toml: cannot read: "));
}

#[test]
fn display_is_file_line_column_message() {
    let text = "[timeouts]\ntcp = -5\n";
    let error = parse_config("uvs.toml", text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "uvs.toml:2:7: tcp must be 0 to 2678400 seconds (0 = the default), not -5"
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = r#"
[[service]]
protocol = "tcp"
address = "192.168.1.100:0"
  [[service.real_server]]
  address = "10.0.0.2"
  weight = 70000

[timeouts]
udp = 9999999
"#;
    let error = parse_config("uvs.toml", text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "uvs.toml:4:11: Zero port specified for non-persistent service\n\
         uvs.toml:7:12: illegal weight specified: 70000 is above 65535\n\
         uvs.toml:10:7: invalid timeout value `9999999' specified: the udp timeout is 1 to 2678400 seconds"
    );
}

fn assert_round_trips(config: &Config) {
    let text = uvs_conf::to_toml(config);
    assert_eq!(
        parse_config("rendered.toml", &text).as_ref(),
        Ok(config),
        "rendered text:\n{text}"
    );
}

#[test]
fn defaults_round_trip_through_to_toml() {
    assert_round_trips(&Config::default());
}

#[test]
fn full_example_round_trips_through_to_toml() {
    assert_round_trips(&expected_full_config());
}

#[test]
fn to_toml_spells_out_every_setting() {
    let text = uvs_conf::to_toml(&expected_full_config());
    for line in [
        "conn_tab_bits = 16",
        "tcpfin = 120",
        "port_range = \"20000-29999\"",
        "flags = [\"sh-fallback\", \"sh-port\"]",
        "flags = [\"mh-fallback\", \"mh-port\"]",
        "netmask = \"255.255.255.0\"",
        "netmask = 64",
        "address = \"[2001:db8::2]:0\"",
        "tun_port = 6080",
        "tun_csum = \"remcsum\"",
        "address = \"192.168.2.0-192.168.2.255\"",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

/// The format reference at the top of src/file.rs, without its `//! `.
fn format_reference() -> String {
    let source = include_str!("../src/file.rs");
    let block: Vec<&str> = source
        .lines()
        .map_while(|line| line.strip_prefix("//!"))
        .skip_while(|line| line.trim() != "```toml")
        .skip(1)
        .take_while(|line| line.trim() != "```")
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect();
    block.join("\n")
}

#[test]
fn format_reference_in_the_docs_is_a_valid_config() {
    let text = format_reference();
    assert!(text.contains("[[service.real_server]]"), "{text}");
    let config = parse_config("src/file.rs", &text).expect("the documented example is valid");
    assert_eq!(config.services.len(), 2);
    assert_eq!(
        config.services[0].dests[0].method,
        ForwardMethod::Tunnel {
            kind: TunnelType::Gue { port: 6080 },
            csum: TunnelCsum::Csum
        }
    );
}

#[test]
fn mangled_files_never_panic_and_point_inside_the_text() {
    let full = std::fs::read_to_string(example("full.toml")).expect("full.toml");
    let lines = full.lines().count() + 1;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..2000 {
        // xorshift64: a repeatable sequence of cut points and junk.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut text = full.clone().into_bytes();
        let at = (seed % text.len() as u64) as usize;
        let junk = [b'"', b'[', b']', b'=', b'\n', b'0', b'-', b':', b'x', 0xc3];
        text[at] = junk[(seed >> 32) as usize % junk.len()];
        let text = String::from_utf8_lossy(&text).into_owned();
        if let Err(error) = parse_config("mangled.toml", &text) {
            assert!(!error.problems().is_empty());
            for problem in error.problems() {
                assert!(problem.line >= 1 && problem.line <= lines, "{problem:?}");
                assert!(problem.column >= 1, "{problem:?}");
                assert!(!problem.message.is_empty());
            }
        }
    }
}

#[test]
fn netmask_takes_any_ipv4_mask_and_prefix_lengths() {
    let mask_of = |netmask: &str| {
        let text = format!(
            "[[service]]\nprotocol = \"udp\"\naddress = \"192.0.2.1:5060\"\npersistent = 60\nnetmask = {netmask}\n"
        );
        let config = parse_config("t.toml", &text).expect("valid config");
        config.services[0].persistence.expect("persistent").netmask
    };
    let v4 = |a, b, c, d| Netmask::V4(Ipv4Addr::new(a, b, c, d));
    assert_eq!(mask_of("\"255.0.255.0\""), v4(255, 0, 255, 0));
    assert_eq!(mask_of("\"0.0.0.0\""), v4(0, 0, 0, 0));
    assert_eq!(mask_of("\"255.255.255.0\""), v4(255, 255, 255, 0));
    assert_eq!(mask_of("24"), v4(255, 255, 255, 0));
    assert_eq!(mask_of("0"), v4(0, 0, 0, 0));
    assert_eq!(mask_of("32"), v4(255, 255, 255, 255));
    assert_eq!(mask_of("17"), v4(255, 255, 128, 0));
    let text = "[[service]]\nprotocol = \"udp\"\naddress = \"192.0.2.1:5060\"\npersistent = 60\nnetmask = \"255.0.255.0\"\n";
    let config = parse_config("t.toml", text).expect("valid config");
    let rendered = uvs_conf::to_toml(&config);
    assert!(
        rendered.contains("netmask = \"255.0.255.0\"\n"),
        "{rendered}"
    );
    assert_eq!(parse_config("t.toml", &rendered).unwrap(), config);
}

#[test]
fn persistence_engine_sip_is_read_and_written() {
    let text = "[[service]]\nprotocol = \"udp\"\naddress = \"192.0.2.1:5060\"\npersistent = 60\nnetmask = \"0.0.0.0\"\npersistence_engine = \"sip\"\n";
    let config = parse_config("t.toml", text).expect("valid config");
    assert_eq!(
        config.services[0].persistence_engine,
        Some(uvs_conf::PersistenceEngine::Sip)
    );
    let rendered = uvs_conf::to_toml(&config);
    assert!(
        rendered.contains("persistence_engine = \"sip\"\n"),
        "{rendered}"
    );
    assert_eq!(parse_config("t.toml", &rendered).unwrap(), config);
    let plain = parse_config(
        "t.toml",
        &text.replace("persistence_engine = \"sip\"\n", ""),
    )
    .unwrap();
    assert_eq!(plain.services[0].persistence_engine, None);
}
