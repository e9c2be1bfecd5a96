//! Golden output for every listing format. Expected texts are the seed's
//! own ipvsadm listings (DR and NAT walkthroughs, with the last line's
//! `%-10u` padding the web page trimmed) or were produced from ipvsadm's
//! printf formats (`"  -> %-28s %-7s %-6d %-10u %-10u\n"` and so on) by
//! an independent printf, not by this crate.

mod common;

use std::net::Ipv4Addr;

use common::*;
use uvs_conf::control::{ConnectionStatus, DaemonStatus, PeData, SyncDaemonSpec, SyncRole};
use uvs_conf::{
    Family, ForwardMethod, Netmask, Persistence, PersistenceEngine, SchedFlags, SchedulerName,
    ServiceKey, Timeouts, TunnelCsum, TunnelType,
};
use uvs_ctl::list::{self, Names};
use uvs_ctl::parse::Format;

fn numeric(r: &uvs_ctl::resolve::StaticResolver) -> Names<'_> {
    Names {
        resolver: r,
        numeric: true,
    }
}

fn named(r: &uvs_ctl::resolve::StaticResolver) -> Names<'_> {
    Names {
        resolver: r,
        numeric: false,
    }
}

fn nat_seed() -> Vec<uvs_conf::control::ServiceStatus> {
    let mut s = service(
        spec(tcp("10.133.146.47", 80), SchedulerName::Rr),
        vec![
            // The engine lists newest first; ipvsadm sorts.
            server(dest("192.168.79.131", 80, ForwardMethod::Nat, 1)),
            server(dest("192.168.79.129", 80, ForwardMethod::Nat, 1)),
        ],
    );
    s.counters = counters(3, 16, 10, 1018, 2236);
    s.rates = rates(0, 1, 0, 34, 69);
    s.servers[0].counters = counters(2, 14, 10, 898, 2236);
    s.servers[0].rates = rates(0, 0, 0, 28, 69);
    s.servers[1].counters = counters(1, 2, 0, 120, 0);
    s.servers[1].rates = rates(0, 0, 0, 6, 0);
    vec![s]
}

#[test]
fn seed_nat_default_listing() {
    let r = resolver();
    let text = list::list_all(4096, &nat_seed(), &Format::default(), numeric(&r));
    assert_eq!(
        text,
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.133.146.47:80 rr
  -> 192.168.79.129:80            Masq    1      0          0         
  -> 192.168.79.131:80            Masq    1      0          0         
"
    );
}

#[test]
fn seed_nat_stats_and_rate() {
    let r = resolver();
    let stats = Format {
        stats: true,
        numeric: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_all(4096, &nat_seed(), &stats, numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.133.146.47:80                    3       16       10     1018     2236
  -> 192.168.79.129:80                   1        2        0      120        0
  -> 192.168.79.131:80                   2       14       10      898     2236
"
    );
    let rate = Format {
        rate: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_all(4096, &nat_seed(), &rate, numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.133.146.47:80                    0        1        0       34       69
  -> 192.168.79.129:80                   0        0        0        6        0
  -> 192.168.79.131:80                   0        0        0       28       69
"
    );
}

#[test]
fn seed_dr_listing_with_names() {
    let r = resolver();
    let svc = service(
        spec(tcp("192.168.79.180", 80), SchedulerName::Rr),
        vec![
            server(dest("192.168.79.131", 80, ForwardMethod::Dr, 1)),
            server(dest("192.168.79.129", 80, ForwardMethod::Dr, 1)),
        ],
    );
    assert_eq!(
        list::list_all(4096, &[svc], &Format::default(), named(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  localhost.localdomain:http rr
  -> 192.168.79.129:http          Route   1      0          0         
  -> 192.168.79.131:http          Route   1      0          0         
"
    );
}

fn big_counters() -> Vec<uvs_conf::control::ServiceStatus> {
    let mut s = service(
        spec(tcp("10.0.0.1", 80), SchedulerName::Wlc),
        vec![server(dest("10.0.0.2", 80, ForwardMethod::Dr, 1))],
    );
    s.counters = counters(
        123_456_789,
        5_000_000_000,
        100_000_000_000,
        200_000_000_000_000,
        99_999_999,
    );
    // Connections and packets of a real server are read as 32 bits.
    s.servers[0].counters = counters(
        5_000_000_007,
        (1 << 32) + 7,
        0,
        5_000_000_007,
        1_000_000_000,
    );
    vec![s]
}

#[test]
fn stats_scale_with_largenum_and_dest_counters_wrap_at_32_bits() {
    let r = resolver();
    let f = Format {
        stats: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_all(4096, &big_counters(), &f, numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80                   123456K    5000M     100G     200T 99999999\n  -> 10.0.0.2:80                   705032K        7        0    5000M    1000M\n"
    );
    let exact = Format {
        stats: true,
        exact: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_all(4096, &big_counters(), &exact, numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80                  123456789 5000000000 100000000000 200000000000000 99999999\n  -> 10.0.0.2:80                  705032711        7        0 5000000007 1000000000\n"
    );
}

#[test]
fn rate_leaves_dest_cps_and_pps_unscaled() {
    let r = resolver();
    let mut s = service(
        spec(udp("10.0.0.1", 53), SchedulerName::Rr),
        vec![server(dest("10.0.0.2", 53, ForwardMethod::Nat, 1))],
    );
    s.rates = rates(1234, 5_000_000_000, 0, 300_000_000, 7);
    s.servers[0].rates = rates(5_000_000_007, 123_456_789, 0, 5_000_000_007, 7);
    let f = Format {
        rate: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_all(4096, &[s], &f, numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\nUDP  10.0.0.1:53                      1234    5000M        0  300000K        7\n  -> 10.0.0.2:53                  705032711 123456789        0  705032K        7\n"
    );
}

#[test]
fn thresholds_and_persistent_conn_for_one_service() {
    let r = resolver();
    let mut d1 = server(dest("10.0.0.2", 80, ForwardMethod::Dr, 3));
    d1.config.u_threshold = 100;
    d1.config.l_threshold = 50;
    d1.active_conns = 7;
    d1.inactive_conns = 3;
    d1.persistent_conns = 12;
    let d2 = server(dest("10.0.0.3", 80, ForwardMethod::Dr, 1));
    let s = service(
        spec(tcp("10.0.0.1", 80), SchedulerName::Wlc),
        vec![d2, d1.clone()],
    );
    let f = Format {
        thresholds: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_service(&s, &f, numeric(&r)),
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 wlc\n  -> 10.0.0.2:80                  100        50         7          3         \n  -> 10.0.0.3:80                  0          0          0          0         \n"
    );
    let mut sp = spec(tcp("10.0.0.1", 80), SchedulerName::Wlc);
    sp.persistence = Some(Persistence {
        timeout: 360,
        netmask: Netmask::V4(Ipv4Addr::BROADCAST),
    });
    let s = service(sp, vec![d1]);
    let f = Format {
        persistent_conn: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_service(&s, &f, numeric(&r)),
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 wlc persistent 360\n  -> 10.0.0.2:80                  3         12          7          3         \n"
    );
}

#[test]
fn tun_info_column() {
    let r = resolver();
    let tun = |kind, csum| ForwardMethod::Tunnel { kind, csum };
    let mut nat = server(dest("10.0.0.6", 8080, ForwardMethod::Nat, 5));
    nat.active_conns = 1;
    nat.inactive_conns = 2;
    let s = service(
        spec(tcp("10.0.0.1", 80), SchedulerName::Rr),
        vec![
            nat,
            server(dest(
                "10.0.0.5",
                80,
                tun(TunnelType::Gue { port: 65535 }, TunnelCsum::NoCsum),
                4,
            )),
            server(dest(
                "10.0.0.4",
                80,
                tun(TunnelType::Gre, TunnelCsum::Csum),
                3,
            )),
            server(dest(
                "10.0.0.3",
                80,
                tun(TunnelType::Gue { port: 6080 }, TunnelCsum::RemCsum),
                2,
            )),
            server(dest(
                "10.0.0.2",
                80,
                tun(TunnelType::Ipip, TunnelCsum::NoCsum),
                1,
            )),
        ],
    );
    let f = Format {
        tun_info: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_all(4096, &[s], &f, numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\nTCP  10.0.0.1:80 rr\n  -> 10.0.0.2:80                  Tunnel  ipip          1      0          0         \n  -> 10.0.0.3:80                  Tunnel  gue:6080:r+c  2      0          0         \n  -> 10.0.0.4:80                  Tunnel  gre:+c        3      0          0         \n  -> 10.0.0.5:80                  Tunnel  gue:65535:-c  4      0          0         \n  -> 10.0.0.6:8080                Masq    n/a           5      1          2         \n"
    );
}

#[test]
fn service_lines_flags_persistence_mask_ops_fwmark_ipv6() {
    let r = resolver();
    let mut sh = spec(tcp("10.0.0.1", 80), SchedulerName::Sh);
    sh.flags = SchedFlags {
        flag1: true,
        flag2: true,
        flag3: false,
    };
    sh.persistence = Some(Persistence {
        timeout: 300,
        netmask: Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)),
    });
    let mut mh = spec(tcp("10.0.0.2", 80), SchedulerName::Mh);
    mh.flags = SchedFlags {
        flag1: false,
        flag2: true,
        flag3: false,
    };
    let mut rr3 = spec(tcp("10.0.0.3", 80), SchedulerName::Rr);
    rr3.flags = SchedFlags {
        flag1: true,
        flag2: false,
        flag3: true,
    };
    let mut ops = spec(udp("10.0.0.4", 53), SchedulerName::Rr);
    ops.one_packet = true;
    let mut v6 = spec(tcp("2001:db8::1", 443), SchedulerName::Wlc);
    v6.persistence = Some(Persistence {
        timeout: 300,
        netmask: Netmask::V6(64),
    });
    let mut v6full = spec(tcp("2001:db8::2", 443), SchedulerName::Wlc);
    v6full.persistence = Some(Persistence {
        timeout: 300,
        netmask: Netmask::V6(128),
    });
    let fw4 = spec(
        ServiceKey::Fwmark {
            mark: 5,
            family: Family::V4,
        },
        SchedulerName::Wrr,
    );
    let fw6 = spec(
        ServiceKey::Fwmark {
            mark: 5,
            family: Family::V6,
        },
        SchedulerName::Wrr,
    );
    let v6dest = server(dest("2001:db8::10", 443, ForwardMethod::Dr, 1));
    let services = vec![
        service(fw6, vec![]),
        service(fw4, vec![server(dest("10.0.0.9", 0, ForwardMethod::Dr, 1))]),
        service(v6full, vec![]),
        service(v6, vec![v6dest]),
        service(ops, vec![]),
        service(rr3, vec![]),
        service(mh, vec![]),
        service(sh, vec![]),
    ];
    assert_eq!(
        list::list_all(65536, &services, &Format::default(), numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=65536)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0
TCP  10.0.0.2:80 mh (mh-port)
TCP  10.0.0.3:80 rr (flag-1,flag-3)
UDP  10.0.0.4:53 rr ops
TCP  [2001:db8::1]:443 wlc persistent 300 mask 64
  -> [2001:db8::10]:443           Route   1      0          0         
TCP  [2001:db8::2]:443 wlc persistent 300
FWM  5 wrr
  -> 10.0.0.9:0                   Route   1      0          0         
FWM  5 IPv6 wrr
"
    );
}

#[test]
fn names_are_cut_to_33_and_28_characters() {
    let r = resolver();
    let s = service(
        spec(tcp("192.0.2.99", 80), SchedulerName::Rr),
        vec![
            server(dest("192.0.2.99", 80, ForwardMethod::Dr, 1)),
            server(dest("192.0.2.11", 443, ForwardMethod::Nat, 1)),
        ],
    );
    assert_eq!(
        list::list_service(&s, &Format::default(), named(&r)),
        "Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  a-very-long-host-name.cluste rr
  -> web1.example.com:https       Masq    1      0          0         
  -> a-very-long-host-name.cluste Route   1      0          0         
"
    );
    let f = Format {
        stats: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_service(&s, &f, named(&r)),
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  a-very-long-host-name.cluste        0        0        0        0        0
  -> web1.example.com:https              0        0        0        0        0
  -> a-very-long-host-name.cluste        0        0        0        0        0
"
    );
}

#[test]
fn sorting_copies_the_signed_32_bit_comparison() {
    let r = resolver();
    let one = |a: &str| service(spec(tcp(a, 80), SchedulerName::Rr), vec![]);
    let services = vec![one("1.0.0.1"), one("10.0.0.1"), one("200.0.0.1")];
    // 10.0.0.1 - 200.0.0.1 wraps to a positive int, so 200.0.0.1 sorts
    // first; glibc's merge sort then yields this order.
    let text = list::list_all(4096, &services, &Format::default(), numeric(&r));
    let lines: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(
        lines,
        [
            "TCP  200.0.0.1:80 rr",
            "TCP  1.0.0.1:80 rr",
            "TCP  10.0.0.1:80 rr"
        ]
    );
    // --nosort keeps the engine's order.
    let f = Format {
        nosort: true,
        ..Format::default()
    };
    let text = list::list_all(4096, &services, &f, numeric(&r));
    let lines: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(
        lines,
        [
            "TCP  1.0.0.1:80 rr",
            "TCP  10.0.0.1:80 rr",
            "TCP  200.0.0.1:80 rr"
        ]
    );
    // Protocol before address, ports ascending, destinations sorted too.
    let s = |k, d: Vec<&str>| {
        service(
            spec(k, SchedulerName::Rr),
            d.into_iter()
                .map(|a| {
                    let (a, p) = a.split_once(':').unwrap();
                    server(dest(a, p.parse().unwrap(), ForwardMethod::Nat, 1))
                })
                .collect(),
        )
    };
    let services = vec![
        s(udp("10.0.0.1", 53), vec![]),
        s(tcp("10.0.0.1", 443), vec![]),
        s(
            tcp("10.0.0.1", 80),
            vec!["10.0.1.2:8080", "10.0.1.1:80", "10.0.1.2:80"],
        ),
    ];
    let text = list::list_all(4096, &services, &Format::default(), numeric(&r));
    let lines: Vec<String> = text
        .lines()
        .skip(3)
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "TCP 10.0.0.1:80",
            "-> 10.0.1.1:80",
            "-> 10.0.1.2:80",
            "-> 10.0.1.2:8080",
            "TCP 10.0.0.1:443",
            "UDP 10.0.0.1:53"
        ]
    );
}

#[test]
fn merge_sort_matches_glibc_on_a_non_transitive_order() {
    // Values whose pairwise differences wrap: a < b, b < c, c < a.
    let v = [0u32, 0x6000_0000, 0xC000_0000];
    let cmp = |a: &u32, b: &u32| a.wrapping_sub(*b) as i32;
    let mut x = vec![v[2], v[1], v[0]];
    list::glibc_msort(&mut x, &cmp);
    // n1 = 1: [c] | sort([b, a]) = [a, b]; merge: c vs a: c - a < 0 → c.
    assert_eq!(x, vec![v[2], v[0], v[1]]);
}

#[test]
fn connections_listing() {
    let r = resolver();
    let conns = vec![
        ConnectionStatus {
            protocol: 6,
            client: ip("192.0.2.50"),
            client_port: 51234,
            virtual_addr: ip("10.0.0.1"),
            virtual_port: 80,
            server: ip("10.0.1.1"),
            server_port: 80,
            state: "ESTABLISHED".into(),
            expires_secs: 899,
            template: false,
            pe: None,
        },
        ConnectionStatus {
            protocol: 17,
            client: ip("192.0.2.51"),
            client_port: 5353,
            virtual_addr: ip("10.0.0.1"),
            virtual_port: 53,
            server: ip("10.0.1.2"),
            server_port: 53,
            state: "UDP".into(),
            expires_secs: 65,
            template: false,
            pe: None,
        },
        ConnectionStatus {
            protocol: 0,
            client: ip("192.0.2.0"),
            client_port: 0,
            virtual_addr: ip("0.0.0.5"),
            virtual_port: 0,
            server: ip("10.0.1.1"),
            server_port: 0,
            state: "NONE".into(),
            expires_secs: 6000,
            template: true,
            pe: None,
        },
        ConnectionStatus {
            protocol: 6,
            client: ip("2001:db8::50"),
            client_port: 40000,
            virtual_addr: ip("2001:db8::1"),
            virtual_port: 443,
            server: ip("2001:db8::10"),
            server_port: 443,
            state: "SYN_RECV".into(),
            expires_secs: 5,
            template: false,
            pe: None,
        },
    ];
    let f = Format {
        numeric: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_connections(&conns, &f, numeric(&r)),
        "IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:59  ESTABLISHED 192.0.2.50:51234   10.0.0.1:80        10.0.1.1:80
UDP 01:05  UDP         192.0.2.51:5353    10.0.0.1:53        10.0.1.2:53
IP  100:00 NONE        192.0.2.0:0        0.0.0.5:0          10.0.1.1:0
TCP 00:05  SYN_RECV    [2001:db8::50]:40000 [2001:db8::1]:443  [2001:db8::10]:443
"
    );
    let f = Format {
        persistent_conn: true,
        ..Format::default()
    };
    let text = list::list_connections(&conns[..1], &f, named(&r));
    assert_eq!(
        text,
        "IPVS connection entries
pro expire state       source             virtual            destination        pe name          pe_data
TCP 14:59  ESTABLISHED 192.0.2.50:51234   10.0.0.1:http      10.0.1.1:http
"
    );
}

#[test]
fn timeout_and_daemon_lines() {
    assert_eq!(
        list::list_timeouts(&Timeouts::default()),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    let daemons = vec![
        DaemonStatus {
            daemon: SyncDaemonSpec {
                role: SyncRole::Backup,
                interface: "eth0".into(),
                syncid: 0,
                maxlen: None,
                group: None,
                port: None,
                ttl: None,
            },
        },
        DaemonStatus {
            daemon: SyncDaemonSpec {
                role: SyncRole::Master,
                interface: "eth1".into(),
                syncid: 5,
                maxlen: Some(1472),
                group: Some(ip("224.0.0.81")),
                port: Some(8848),
                ttl: Some(1),
            },
        },
    ];
    assert_eq!(
        list::list_daemons(&daemons),
        "master sync daemon (mcast=eth1, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
backup sync daemon (mcast=eth0, syncid=0)
"
    );
    assert_eq!(list::list_daemons(&[]), "");
}

#[test]
fn addresses_are_written_as_glibc_inet_ntop_does() {
    for (text, expected) in [
        ("::1", "::1"),
        ("::", "::"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("::102:304", "::1.2.3.4"),
        ("::1:0:0", "::1:0:0"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("10.0.0.1", "10.0.0.1"),
    ] {
        assert_eq!(list::ntop(ip(text)), expected, "{text}");
    }
}

#[test]
fn non_contiguous_ipv4_mask_is_listed_and_saved_as_ipvsadm_prints_it() {
    let r = resolver();
    let mut sp = spec(udp("10.0.0.6", 5060), SchedulerName::Rr);
    sp.persistence = Some(Persistence {
        timeout: 60,
        netmask: Netmask::V4(Ipv4Addr::new(255, 0, 255, 0)),
    });
    let mut zero = spec(udp("10.0.0.7", 5060), SchedulerName::Rr);
    zero.persistence = Some(Persistence {
        timeout: 60,
        netmask: Netmask::V4(Ipv4Addr::UNSPECIFIED),
    });
    let services = vec![service(sp, vec![]), service(zero, vec![])];
    assert_eq!(
        list::list_all(4096, &services, &Format::default(), numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.0.0.6:5060 rr persistent 60 mask 255.0.255.0
UDP  10.0.0.7:5060 rr persistent 60 mask 0.0.0.0
"
    );
    assert_eq!(
        list::save(&services, numeric(&r)),
        "-A -u 10.0.0.6:5060 -s rr -p 60 -M 255.0.255.0
-A -u 10.0.0.7:5060 -s rr -p 60 -M 0.0.0.0
"
    );
}

#[test]
fn persistent_conn_listing_shows_the_sip_call_id_of_templates() {
    let r = resolver();
    let conns = vec![
        ConnectionStatus {
            protocol: 17,
            client: ip("0.0.0.0"),
            client_port: 0,
            virtual_addr: ip("10.0.0.6"),
            virtual_port: 5060,
            server: ip("10.0.1.1"),
            server_port: 5060,
            state: "NONE".into(),
            expires_secs: 59,
            template: true,
            pe: Some(PeData {
                name: "sip".into(),
                data: "a84b4c76e66710@pc33.atlanta.example.com".into(),
            }),
        },
        ConnectionStatus {
            protocol: 17,
            client: ip("192.0.2.50"),
            client_port: 5060,
            virtual_addr: ip("10.0.0.6"),
            virtual_port: 5060,
            server: ip("10.0.1.1"),
            server_port: 5060,
            state: "UDP".into(),
            expires_secs: 299,
            template: false,
            pe: None,
        },
    ];
    let f = Format {
        numeric: true,
        persistent_conn: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_connections(&conns, &f, numeric(&r)),
        "IPVS connection entries
pro expire state       source             virtual            destination        pe name          pe_data
UDP 00:59  NONE        0.0.0.0:0          10.0.0.6:5060      10.0.1.1:5060    sip                a84b4c76e66710@pc33.atlanta.example.com
UDP 04:59  UDP         192.0.2.50:5060    10.0.0.6:5060      10.0.1.1:5060
"
    );
    // Without --persistent-conn the engine's columns are not shown.
    let f = Format {
        numeric: true,
        ..Format::default()
    };
    assert_eq!(
        list::list_connections(&conns[..1], &f, numeric(&r)),
        "IPVS connection entries
pro expire state       source             virtual            destination
UDP 00:59  NONE        0.0.0.0:0          10.0.0.6:5060      10.0.1.1:5060
"
    );
}

#[test]
fn pe_sip_is_listed_inside_persistence_and_always_saved() {
    let r = resolver();
    let mut sip = spec(udp("10.0.0.6", 5060), SchedulerName::Rr);
    sip.persistence = Some(Persistence {
        timeout: 60,
        netmask: Netmask::V4(Ipv4Addr::UNSPECIFIED),
    });
    sip.persistence_engine = Some(PersistenceEngine::Sip);
    let mut bare = spec(udp("10.0.0.7", 5060), SchedulerName::Rr);
    bare.persistence_engine = Some(PersistenceEngine::Sip);
    let services = vec![service(sip, vec![]), service(bare, vec![])];
    assert_eq!(
        list::list_all(4096, &services, &Format::default(), numeric(&r)),
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.0.0.6:5060 rr persistent 60 mask 0.0.0.0 pe sip
UDP  10.0.0.7:5060 rr
"
    );
    assert_eq!(
        list::save(&services, numeric(&r)),
        "-A -u 10.0.0.6:5060 -s rr -p 60 -M 0.0.0.0 --pe sip
-A -u 10.0.0.7:5060 -s rr --pe sip
"
    );
}
