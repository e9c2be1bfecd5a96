//! The command line: popt's rules, every parse error message with its
//! exit status, and the commands built (defaults included).

mod common;

use std::net::Ipv4Addr;

use common::{ip, tcp, udp};
use uvs_conf::control::{Command, ServiceSpec, SyncDaemonSpec, SyncRole};
use uvs_conf::{
    DestConfig, Family, ForwardMethod, Netmask, Persistence, PersistenceEngine, SchedFlags,
    SchedulerName, ServiceKey, TunnelCsum, TunnelType,
};
use uvs_ctl::parse::{parse_args, Action, Format, ListWhat, ParseError};

fn parse(line: &str) -> Result<Action, ParseError> {
    parse_args(&common::args(line), &common::resolver())
}

fn sent(line: &str) -> Command {
    match parse(line) {
        Ok(Action::Send(c)) => c,
        other => panic!("`{line}`: expected a command, got {other:?}"),
    }
}

fn fail_text(line: &str) -> String {
    match parse(line) {
        Err(ParseError::Fail(m)) => m,
        other => panic!("`{line}`: expected a parse failure, got {other:?}"),
    }
}

fn service_of(line: &str) -> ServiceSpec {
    match sent(line) {
        Command::AddService { service } | Command::EditService { service } => service,
        other => panic!("`{line}`: {other:?}"),
    }
}

fn server_of(line: &str) -> DestConfig {
    match sent(line) {
        Command::AddServer { server, .. } | Command::EditServer { server, .. } => server,
        other => panic!("`{line}`: {other:?}"),
    }
}

#[test]
fn add_service_defaults_and_options() {
    let s = service_of("-A -t 10.0.0.1:80");
    assert_eq!(
        s,
        ServiceSpec {
            key: tcp("10.0.0.1", 80),
            scheduler: SchedulerName::Wlc,
            flags: SchedFlags::default(),
            persistence: None,
            persistence_engine: None,
            one_packet: false,
            fwmark_match: vec![],
        }
    );
    let s = service_of("-A -t 10.0.0.1:80 -s rr -p -M 255.255.255.0");
    assert_eq!(s.scheduler, SchedulerName::Rr);
    assert_eq!(
        s.persistence,
        Some(Persistence {
            timeout: 360,
            netmask: Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))
        })
    );
    // Any IPv4 mask, contiguous or not, as ipvsadm (inet_aton) takes it;
    // and hostnames resolved like an address.
    for (arg, mask) in [
        ("255.0.255.0", [255, 0, 255, 0]),
        ("0.0.0.0", [0, 0, 0, 0]),
        ("0.255.0.255", [0, 255, 0, 255]),
        ("255.255.255.255", [255, 255, 255, 255]),
        ("255.255.255.128", [255, 255, 255, 128]),
    ] {
        let s = service_of(&format!("-A -u 10.0.0.1:5060 -p 60 -M {arg}"));
        assert_eq!(
            s.persistence.unwrap().netmask,
            Netmask::V4(Ipv4Addr::from(mask)),
            "{arg}"
        );
    }
    // Optional argument: the next word is taken unless it starts with '-'.
    assert_eq!(
        service_of("-A -t 10.0.0.1:80 -p 300")
            .persistence
            .unwrap()
            .timeout,
        300
    );
    assert_eq!(
        service_of("-A -t 10.0.0.1:80 -p300")
            .persistence
            .unwrap()
            .timeout,
        300
    );
    let p30 = service_of("-A -t 10.0.0.1:80 -p=30");
    assert_eq!(p30.persistence.unwrap().timeout, 30);
    // "-L=n" is "-Ln" for popt.
    assert!(matches!(
        parse("-L=n"),
        Ok(Action::List {
            format: Format { numeric: true, .. },
            ..
        })
    ));
    assert_eq!(
        service_of("-A -t 10.0.0.1:80 --persistent=600")
            .persistence
            .unwrap()
            .timeout,
        600
    );
    assert_eq!(
        service_of("-A -t 10.0.0.1:80 -p -s rr")
            .persistence
            .unwrap()
            .timeout,
        360
    );
    assert_eq!(
        service_of("-A -t 10.0.0.1:80 --persistent")
            .persistence
            .unwrap()
            .timeout,
        360
    );
    // Port 0 is fine when persistent.
    assert_eq!(service_of("-A -t 10.0.0.1 -p").key, tcp("10.0.0.1", 0));
    // Bundles: -At takes the next word as the service.
    assert_eq!(service_of("-At 10.0.0.1:80").key, tcp("10.0.0.1", 80));
    // Host and port names.
    assert_eq!(
        service_of("-A -t web1.example.com:http").key,
        tcp("192.0.2.11", 80)
    );
    assert_eq!(
        service_of("-A -u 10.0.0.1:domain -o").key,
        udp("10.0.0.1", 53)
    );
    assert!(service_of("-A -u 10.0.0.1:domain -o").one_packet);
    // IPv6.
    let s = service_of("-A -t [2001:db8::1]:443 -p 60 -M 64");
    assert_eq!(s.key, tcp("2001:db8::1", 443));
    assert_eq!(s.persistence.unwrap().netmask, Netmask::V6(64));
    assert_eq!(
        service_of("-A -t [2001:db8::1]:443 -p")
            .persistence
            .unwrap()
            .netmask,
        Netmask::V6(128)
    );
    // fwmark, IPv4 and IPv6.
    let s = service_of("-A -f 7 -s sh -b sh-port,sh-fallback");
    assert_eq!(
        s.key,
        ServiceKey::Fwmark {
            mark: 7,
            family: Family::V4
        }
    );
    assert_eq!(
        s.flags,
        SchedFlags {
            flag1: true,
            flag2: true,
            flag3: false
        }
    );
    let s = service_of("-A -f 7 -6 -p -M 48");
    assert_eq!(
        s.key,
        ServiceKey::Fwmark {
            mark: 7,
            family: Family::V6
        }
    );
    assert_eq!(s.persistence.unwrap().netmask, Netmask::V6(48));
    assert_eq!(
        service_of("-A -f 4294967295").key,
        ServiceKey::Fwmark {
            mark: u32::MAX,
            family: Family::V4
        }
    );
    let s = service_of("-A -t 10.0.0.1:80 -s mh -b mh-port");
    assert_eq!(
        s.flags,
        SchedFlags {
            flag1: false,
            flag2: true,
            flag3: false
        }
    );
    assert!(service_of("-A -t 10.0.0.1:80 -b flag-3").flags.flag3);
}

#[test]
fn edit_sends_every_field_so_omitted_ones_reset() {
    assert_eq!(
        sent("-E -t 10.0.0.1:80"),
        Command::EditService {
            service: ServiceSpec {
                key: tcp("10.0.0.1", 80),
                scheduler: SchedulerName::Wlc,
                flags: SchedFlags::default(),
                persistence: None,
                persistence_engine: None,
                one_packet: false,
                fwmark_match: vec![],
            }
        }
    );
    assert_eq!(
        sent("-e -t 10.0.0.1:80 -r 10.0.0.2"),
        Command::EditServer {
            service: tcp("10.0.0.1", 80),
            server: DestConfig {
                addr: ip("10.0.0.2"),
                port: 80,
                method: ForwardMethod::Dr,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
            }
        }
    );
}

#[test]
fn real_servers_ports_methods_and_tunnels() {
    // No port: the service's. DR and TUN: forced to the service port.
    assert_eq!(server_of("-a -t 10.0.0.1:80 -r 10.0.0.2").port, 80);
    assert_eq!(server_of("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -g").port, 80);
    assert_eq!(server_of("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -i").port, 80);
    assert_eq!(
        server_of("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m").port,
        8080
    );
    assert_eq!(
        server_of("-a -t 10.0.0.1:80 -r 10.0.0.2:https -m").port,
        443
    );
    assert_eq!(
        server_of("-a -t 10.0.0.1:80 -r 10.0.0.2 --fullnat").method,
        ForwardMethod::FullNat
    );
    // fwmark: the port is kept.
    assert_eq!(server_of("-a -f 3 -r 10.0.0.2:8080 -g").port, 8080);
    // -r before -t: the service port is not known yet (ipvsadm's order).
    assert_eq!(server_of("-a -r 10.0.0.2 -m -t 10.0.0.1:80").port, 0);
    let d = server_of("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -w 0 -x 100 -y 50");
    assert_eq!(
        (d.method, d.weight, d.u_threshold, d.l_threshold),
        (ForwardMethod::Nat, 0, 100, 50)
    );
    assert_eq!(
        server_of("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65535").weight,
        65535
    );
    assert_eq!(
        server_of("-a -t 10.0.0.1:80 -r 10.0.0.2 -i").method,
        ForwardMethod::Tunnel {
            kind: TunnelType::Ipip,
            csum: TunnelCsum::NoCsum
        }
    );
    assert_eq!(
        server_of("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-remcsum")
            .method,
        ForwardMethod::Tunnel {
            kind: TunnelType::Gue { port: 6080 },
            csum: TunnelCsum::RemCsum
        }
    );
    assert_eq!(
        server_of("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-csum").method,
        ForwardMethod::Tunnel {
            kind: TunnelType::Gre,
            csum: TunnelCsum::Csum
        }
    );
    // An IPv6 real server behind an IPv4 service: tunnels only.
    assert_eq!(
        server_of("-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -i").addr,
        ip("2001:db8::2")
    );
    assert_eq!(
        sent("-d -t 10.0.0.1:80 -r 10.0.0.2:8080"),
        Command::DeleteServer {
            service: tcp("10.0.0.1", 80),
            addr: ip("10.0.0.2"),
            port: 8080
        }
    );
    assert_eq!(
        sent("-d -t 10.0.0.1:80 -r 10.0.0.2"),
        Command::DeleteServer {
            service: tcp("10.0.0.1", 80),
            addr: ip("10.0.0.2"),
            port: 80
        }
    );
}

#[test]
fn other_commands() {
    assert_eq!(sent("-C"), Command::Clear);
    assert_eq!(sent("--clear"), Command::Clear);
    assert_eq!(
        sent("-D -t 10.0.0.1:80"),
        Command::DeleteService {
            key: tcp("10.0.0.1", 80)
        }
    );
    assert_eq!(sent("-Z"), Command::Zero { service: None });
    assert_eq!(
        sent("-Z -u 10.0.0.1:53"),
        Command::Zero {
            service: Some(udp("10.0.0.1", 53))
        }
    );
    assert_eq!(
        sent("--set 900 120 300"),
        Command::SetTimeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
    assert_eq!(
        sent("--set 0 0 2678400"),
        Command::SetTimeouts {
            tcp: 0,
            tcp_fin: 0,
            udp: 2_678_400
        }
    );
    assert_eq!(
        sent("--start-daemon master"),
        Command::StartDaemon {
            daemon: SyncDaemonSpec {
                role: SyncRole::Master,
                interface: "eth0".into(),
                syncid: 0,
                maxlen: None,
                group: None,
                port: None,
                ttl: None,
            }
        }
    );
    assert_eq!(
        sent("--start-daemon backup --mcast-interface eth1 --syncid 5 --sync-maxlen 1400 --mcast-group ff02::81 --mcast-port 8849 --mcast-ttl 2"),
        Command::StartDaemon {
            daemon: SyncDaemonSpec {
                role: SyncRole::Backup,
                interface: "eth1".into(),
                syncid: 5,
                maxlen: Some(1400),
                group: Some(ip("ff02::81")),
                port: Some(8849),
                ttl: Some(2),
            }
        }
    );
    assert_eq!(
        sent("--stop-daemon backup"),
        Command::StopDaemon {
            role: SyncRole::Backup
        }
    );
    assert_eq!(parse("-S -n"), Ok(Action::Save { numeric: true }));
    assert_eq!(parse("-R"), Ok(Action::Restore));
    assert_eq!(parse("-h"), Ok(Action::Help));
    assert_eq!(parse("--version"), Ok(Action::Version));
}

#[test]
fn listings() {
    let list = |line: &str| match parse(line) {
        Ok(Action::List { what, format, json }) => (what, format, json),
        other => panic!("`{line}`: {other:?}"),
    };
    let (what, format, json) = list("-Ln");
    assert_eq!((what, json), (ListWhat::All, false));
    assert_eq!(
        format,
        Format {
            numeric: true,
            ..Format::default()
        }
    );
    let (_, format, _) = list("-l --stats --exact --nosort --sort");
    assert!(format.stats && format.exact && format.nosort && !format.numeric);
    assert_eq!(
        list("-L -t 10.0.0.1:80").0,
        ListWhat::Service(tcp("10.0.0.1", 80))
    );
    assert_eq!(list("-Lnc").0, ListWhat::Connections);
    assert_eq!(list("-L --timeout").0, ListWhat::Timeouts);
    assert_eq!(list("-L --daemon").0, ListWhat::Daemons);
    assert!(list("-L --json").2);
    let (_, f, _) = list("-L --rate --thresholds --persistent-conn --tun-info -X");
    assert!(f.rate && f.thresholds && f.persistent_conn && f.tun_info && f.exact);
}

#[test]
fn pe_sip_is_sent_with_or_without_persistence() {
    let s = service_of("-A -u 10.0.0.1:5060 -p 60 -M 0.0.0.0 --pe sip");
    assert_eq!(s.persistence_engine, Some(PersistenceEngine::Sip));
    assert_eq!(
        s.persistence,
        Some(Persistence {
            timeout: 60,
            netmask: Netmask::V4(Ipv4Addr::UNSPECIFIED)
        })
    );
    let s = service_of("-A -u 10.0.0.1:5060 --pe sip");
    assert_eq!(s.persistence_engine, Some(PersistenceEngine::Sip));
    assert_eq!(s.persistence, None);
    // -E sends every field: no --pe clears it.
    let edit = |line: &str| match parse(line) {
        Ok(Action::Send(Command::EditService { service })) => service,
        other => panic!("{line}: {other:?}"),
    };
    assert_eq!(edit("-E -u 10.0.0.1:5060 -p").persistence_engine, None);
    assert_eq!(
        edit("-E -u 10.0.0.1:5060 -p --pe sip").persistence_engine,
        Some(PersistenceEngine::Sip)
    );
}

#[test]
fn what_the_engine_would_refuse() {
    let e = |line: &str| parse(line);
    assert_eq!(
        e("-A -t 10.0.0.1:80 -s nosuch"),
        Ok(Action::EngineError(
            "Scheduler or persistence engine not found"
        ))
    );
    // Only IPVS's engine exists; names are exact (ip_vs_pe_getbyname).
    for name in ["rtsp", "SIP", "sip2"] {
        assert_eq!(
            e(&format!("-A -t 10.0.0.1:80 -p --pe {name}")),
            Ok(Action::EngineError(
                "Scheduler or persistence engine not found"
            )),
            "{name}"
        );
    }
}

#[test]
fn every_parse_error_message() {
    let cases: &[(&str, &str)] = &[
        (
            "-A -t 10.0.0.1",
            "Zero port specified for non-persistent service",
        ),
        (
            "-E -t 10.0.0.1:0",
            "Zero port specified for non-persistent service",
        ),
        (
            "-A -t 10.0.0.1:80 -o",
            "One-Packet Scheduling is only for UDP virtual services",
        ),
        (
            "-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m",
            "Different address family is allowed only for tunneling servers",
        ),
        (
            "-a -t [2001:db8::1]:80 -r 10.0.0.2",
            "Different address family is allowed only for tunneling servers",
        ),
        (
            "-A -t 1234",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t nosuchhost:80",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t 10.0.0.1:nosuchport",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t 10.0.0.1:65536",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t [2001:db8::1]",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 12",
            "illegal real server address[:port] specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2:x",
            "illegal real server address[:port] specified",
        ),
        ("-A -f 0", "invalid fwmark value `0' specified"),
        (
            "-A -f 4294967296",
            "invalid fwmark value `4294967296' specified",
        ),
        ("-A -f abc", "invalid fwmark value `abc' specified"),
        (
            "-A -t 10.0.0.1:80 -p 0",
            "invalid timeout value `0' specified",
        ),
        (
            "-A -t 10.0.0.1:80 -p 2678401",
            "invalid timeout value `2678401' specified",
        ),
        (
            "-A -t 10.0.0.1:80 -p soon",
            "invalid timeout value `soon' specified",
        ),
        ("--set 900 120 x", "invalid timeout value `x' specified"),
        (
            "--set 900 120 2678401",
            "invalid timeout value `2678401' specified",
        ),
        ("--set 900 120", "--set option requires 3 timeout values"),
        ("--set", "--set option requires 3 timeout values"),
        ("--set 1 2 3 4", "unexpected argument 4"),
        ("-L extra", "unexpected argument extra"),
        ("-C now", "unexpected argument now"),
        (
            "-A -t 10.0.0.1:80 -M nosuchmask",
            "illegal virtual server persistent mask specified",
        ),
        (
            "-A -t [2001:db8::1]:80 -M 129",
            "illegal ipv6 netmask specified",
        ),
        (
            "-A -t [2001:db8::1]:80 -M 0",
            "illegal ipv6 netmask specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65536",
            "illegal weight specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1",
            "illegal weight specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -x 2147483648",
            "illegal u_threshold specified",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 -y z",
            "illegal l_threshold specified",
        ),
        (
            "--start-daemon master --syncid 256",
            "illegal syncid specified",
        ),
        (
            "--start-daemon master --mcast-port 0",
            "illegal mcast-port specified",
        ),
        (
            "--start-daemon master --mcast-ttl 256",
            "illegal mcast-ttl specified",
        ),
        (
            "--start-daemon master --sync-maxlen 65508",
            "illegal sync-maxlen specified",
        ),
        (
            "--start-daemon master --mcast-group 10.0.0.1",
            "invalid IPv4 mcast-group `10.0.0.1'",
        ),
        (
            "--start-daemon master --mcast-group 2001:db8::1",
            "invalid IPv6 mcast-group `2001:db8::1'",
        ),
        (
            "--start-daemon leader",
            "illegal start-daemon parameter specified",
        ),
        ("--stop-daemon leader", "illegal start_daemon specified"),
        (
            "-A -t 10.0.0.1:80 -b sh-port",
            "incompatible scheduler flag `sh-port'",
        ),
        (
            "-A -t 10.0.0.1:80 -s sh -b mh-fallback",
            "incompatible scheduler flag `mh-fallback'",
        ),
        (
            "-A -t 10.0.0.1:80 -s mh -b sh-fallback",
            "incompatible scheduler flag `sh-fallback'",
        ),
        (
            "-A -t 10.0.0.1:80 -b nosuch",
            "invalid scheduler flag `nosuch'",
        ),
        ("-L -6", "-6 used before -f\n"),
        ("-A -t 10.0.0.1:80 -6", "-6 used before -f\n"),
        ("-L -A", "invalid option `-A'"),
        ("-LA", "invalid option `-LA'"),
        ("-L -h", "invalid option `-h'"),
        ("-L --start-daemon master", "invalid option `master'"),
        ("-L -L", "invalid option `-L'"),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2 --tun-type gre",
            "Tunnel options conflict with forward method",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(fail_text(line), *expected, "`{line}`");
        assert_eq!(parse(line).unwrap_err().status(), 2);
    }
}

#[test]
fn usage_errors_and_popt_errors() {
    // The first option must be a command.
    for line in [
        "-n -L",
        "-t 10.0.0.1:80 -A",
        "--nosuch",
        "-q",
        "foo",
        "--stats",
    ] {
        let e = parse(line).unwrap_err();
        assert_eq!(e, ParseError::TryHelp, "`{line}`");
        assert_eq!(e.status(), 255);
        assert_eq!(
            e.message("/sbin/uvsadm"),
            "Try `/sbin/uvsadm -h' or '/sbin/uvsadm --help' for more information."
        );
    }
    let popt = |line: &str| match parse(line) {
        Err(e @ ParseError::Popt { .. }) => {
            assert_eq!(e.status(), 255);
            e.message("uvsadm")
        }
        other => panic!("`{line}`: {other:?}"),
    };
    assert_eq!(popt("-L --nosuch"), "--nosuch: unknown option");
    assert_eq!(popt("-Lnq"), "-Lnq: unknown option");
    assert_eq!(popt("-A -t"), "-t: missing argument");
    assert_eq!(popt("-A --tcp-service"), "--tcp-service: missing argument");
    assert_eq!(
        popt("-L --stats=1"),
        "--stats=1: option does not take an argument"
    );
    // A positional word before the command is a leftover, not an error.
    assert_eq!(fail_text("foo -L"), "unexpected argument foo");
    // After "--" everything is a leftover.
    assert_eq!(fail_text("-L -- -n"), "unexpected argument -n");
}

#[test]
fn usage_has_ipvsadm_shape() {
    let text = uvs_ctl::parse::usage("/sbin/uvsadm");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("uvsadm v") && lines[0].contains("uvsd"));
    assert_eq!(lines[1], "Usage:");
    assert_eq!(
        lines[2],
        "  /sbin/uvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]"
    );
    assert_eq!(lines[14], "  /sbin/uvsadm -h");
    for line in [
        "Commands:",
        "Either long or short options are allowed.",
        "  --add-service     -A        add virtual service with options",
        "  --set tcp tcpfin udp        set connection timeout values",
        "  --help            -h        display this help message",
        "virtual-service:",
        "  --fwmark-service|-f fwmark          fwmark is an integer greater than zero",
        "Options:",
        "  --persistent   -p [timeout]         persistent service",
        "                                      the default scheduler is wlc.",
        "  --tun-type      type                one of ipip|gue|gre,",
        "  --sched-flags  -b flags             scheduler flags (comma-separated)",
        "Daemon Options:",
        "  --mcast-ttl ttl                     Multicast TTL (default=1)",
    ] {
        assert!(lines.contains(&line), "missing {line:?}");
    }
    // Every long option the parser knows is documented.
    for name in uvs_ctl::parse::OPT_NAMES {
        let documented = match name {
            "service-address" | "forwarding-method" | "u-threshold" | "l-threshold" => true,
            "mcast-interface" => text.contains("--mcast-interface "),
            n => text.contains(&format!("--{n} ")) || text.contains(&format!("--{n}|")),
        };
        assert!(documented, "{name}");
    }
}
