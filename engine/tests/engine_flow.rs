//! Whole-engine behaviour tests: what an LVS operator expects of the
//! director, one case per test, driven through `Engine::process` in the
//! lab network with an injected clock.

mod engine_support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use engine_support::*;
use uvs_conf::{
    Config, Family, ForwardMethod, FwmarkMatch, Protocol, SchedulerName, ServiceKey, Timeouts,
};
use uvs_engine::conn::SWEEP_PERIOD_MS;
use uvs_engine::time::Millis;
use uvs_engine::wire::build::PacketBuilder;
use uvs_engine::wire::tcp;
use uvs_engine::{DropReason, Verdict};

fn v4() -> Fam {
    Fam::new(false)
}

fn vip4() -> IpAddr {
    VIP4.into()
}

/// A TCP service on VIP4:80 by `method` over real servers `servers`
/// (added in this order), all of weight 1.
fn tcp_service(
    scheduler: SchedulerName,
    method: ForwardMethod,
    servers: &[u8],
) -> uvs_conf::ServiceConfig {
    let port = match method {
        ForwardMethod::Nat | ForwardMethod::FullNat => RPORT,
        _ => VPORT,
    };
    service(
        Protocol::Tcp,
        vip4(),
        VPORT,
        scheduler,
        servers
            .iter()
            .map(|&n| dest(v4().rs(n), port, method, 1))
            .collect(),
    )
}

/// A SYN from client port `cport` of `client` to VIP4:80.
fn syn_from(client: IpAddr, cport: u16) -> Vec<u8> {
    tcp_in((client, cport), (vip4(), VPORT), tcp::SYN)
}

/// Open a connection from `client:cport` and return the real server it went to.
fn open(lab: &mut Lab, client: IpAddr, cport: u16) -> u8 {
    let out = lab.client_sends(&syn_from(client, cport));
    assert_eq!(
        out.verdict,
        Verdict::Forward(INSIDE),
        "SYN from {client}:{cport}"
    );
    rs_of(&out)
}

fn client4() -> IpAddr {
    CLIENT4.into()
}

#[test]
fn rr_cycles_over_real_servers_newest_first() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1, 2, 3],
    )]));
    let order: Vec<u8> = (0..6)
        .map(|i| open(&mut lab, client4(), 1000 + i))
        .collect();
    // ipvsadm adds each real server at the head of the list.
    assert_eq!(order, vec![3, 2, 1, 3, 2, 1]);
}

#[test]
fn wrr_weights_shift_the_split_and_a_reload_shifts_it_again() {
    let weighted = |w1: u32, w2: u32| {
        let mut svc = tcp_service(SchedulerName::Wrr, ForwardMethod::Dr, &[1, 2]);
        svc.dests[0].weight = w1;
        svc.dests[1].weight = w2;
        config(vec![svc])
    };
    let mut lab = Lab::new(&weighted(3, 1));
    let count = |lab: &mut Lab, base: u16| {
        let mut per = [0u32; 5];
        for i in 0..8 {
            per[usize::from(open(lab, client4(), base + i))] += 1;
        }
        (per[1], per[2])
    };
    assert_eq!(count(&mut lab, 1000), (6, 2), "3:1 over 8 connections");
    lab.engine.apply(&weighted(1, 3)).expect("reload");
    assert_eq!(count(&mut lab, 2000), (2, 6), "1:3 after the reload");
}

#[test]
fn persistence_netmask_pins_a_slash24_to_one_real_server_until_the_template_expires() {
    let mut svc = tcp_service(SchedulerName::Rr, ForwardMethod::Dr, &[1, 2, 3]);
    svc.persistence = persistence(300, 24);
    let mut cfg = config(vec![svc]);
    cfg.timeouts.tcp = 30;
    let mut lab = Lab::new(&cfg);
    let f = v4();

    let pinned = open(&mut lab, f.client_n(1, 1), 1000);
    for host in 2..20u8 {
        assert_eq!(
            open(&mut lab, f.client_n(1, host), 1000),
            pinned,
            "203.0.1.{host} shares the /24's real server"
        );
    }
    let other = open(&mut lab, f.client_n(2, 1), 1000);
    assert_ne!(
        other, pinned,
        "another /24 is scheduled afresh (rr moves on)"
    );
    let templates = lab.listing().iter().filter(|c| c.info.template).count();
    assert_eq!(templates, 2, "one template per /24");
    let snapshot = lab.engine.snapshot();
    let pinned_dest = snapshot.services()[0]
        .dests
        .iter()
        .find(|d| d.addr == f.rs(pinned))
        .expect("pinned real server");
    assert_eq!(pinned_dest.counters.persistent(), 1, "PersistConn");
    drop(snapshot);

    // The connections (SYN_RECV, 60 s) and then the templates run out.
    lab.advance_secs(60 + 1);
    lab.sweep();
    lab.advance_secs(300);
    lab.sweep();
    assert!(
        lab.listing().is_empty(),
        "templates expire once they control nothing: {:?}",
        lab.listing()
    );
    let again = open(&mut lab, f.client_n(1, 1), 1001);
    assert_ne!(again, pinned, "the /24 is free again and rr moved on");
}

#[test]
fn weight_zero_stops_new_connections_while_an_established_one_keeps_flowing() {
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]);
    let mut lab = Lab::new(&cfg);
    let rs = open(&mut lab, client4(), 1000);
    assert_eq!(rs, 2, "newest first");
    let mut quiesced = cfg.clone();
    quiesced.services[0].dests[1].weight = 0;
    lab.engine.apply(&quiesced).expect("reload");

    for i in 0..4 {
        assert_eq!(open(&mut lab, client4(), 2000 + i), 1, "new connection {i}");
    }
    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    let out = lab.client_sends(&ack);
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(rs_of(&out), 2, "the established connection stays");
}

#[test]
fn deleting_a_real_server_drops_its_connections_packets() {
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]);
    let mut lab = Lab::new(&cfg);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let mut without = cfg.clone();
    without.services[0].dests.remove(1);
    lab.engine.apply(&without).expect("reload");

    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    assert_eq!(
        lab.client_sends(&ack).verdict,
        Verdict::Drop(DropReason::DestGone)
    );
    assert_eq!(lab.engine.counters().drops(DropReason::DestGone), 1);
    assert_eq!(
        lab.connections().len(),
        1,
        "without expire_nodest_conn the entry waits for its timer"
    );
    assert_eq!(open(&mut lab, client4(), 1001), 1, "new ones go elsewhere");
}

#[test]
fn deleting_a_real_server_with_expire_nodest_conn_expires_its_connection() {
    let mut cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]);
    cfg.engine.expire_nodest_conn = true;
    let mut lab = Lab::new(&cfg);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let mut without = cfg.clone();
    without.services[0].dests.remove(1);
    lab.engine.apply(&without).expect("reload");

    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    assert_eq!(
        lab.client_sends(&ack).verdict,
        Verdict::Drop(DropReason::DestGone)
    );
    assert!(
        lab.connections().is_empty(),
        "the packet expired the connection"
    );
    // The next packet of that tuple is no longer a tracked connection.
    assert_eq!(
        lab.client_sends(&ack).verdict,
        Verdict::Drop(DropReason::NoConnection)
    );
}

/// Bytes of the IP packet inside an untagged frame.
fn ip_bytes(frame: &[u8]) -> u64 {
    (frame.len() - 14) as u64
}

fn data_in(cport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    PacketBuilder::new()
        .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
        .ip(client4(), vip4())
        .tcp(cport, VPORT)
        .flags(flags)
        .payload(payload)
        .build()
}

fn data_out(cport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    PacketBuilder::new()
        .eth(real_server_mac(1), DIRECTOR_IN_MAC)
        .ip(v4().rs(1), client4())
        .tcp(RPORT, cport)
        .flags(flags)
        .payload(payload)
        .build()
}

/// SYN, SYN-ACK, ACK, request, response, then the sizes sent each way.
fn converse(lab: &mut Lab, cport: u16) -> ((u64, u64), (u64, u64)) {
    let inbound = [
        data_in(cport, tcp::SYN, &[]),
        data_in(cport, tcp::ACK, &[]),
        data_in(cport, tcp::ACK | tcp::PSH, &[b'q'; 100]),
    ];
    let outbound = [
        data_out(cport, tcp::SYN | tcp::ACK, &[]),
        data_out(cport, tcp::ACK | tcp::PSH, &[b'r'; 700]),
    ];
    assert_eq!(
        lab.client_sends(&inbound[0]).verdict,
        Verdict::Forward(INSIDE)
    );
    assert_eq!(
        lab.server_sends(&outbound[0]).verdict,
        Verdict::Forward(OUTSIDE)
    );
    assert_eq!(
        lab.client_sends(&inbound[1]).verdict,
        Verdict::Forward(INSIDE)
    );
    assert_eq!(
        lab.client_sends(&inbound[2]).verdict,
        Verdict::Forward(INSIDE)
    );
    assert_eq!(
        lab.server_sends(&outbound[1]).verdict,
        Verdict::Forward(OUTSIDE)
    );
    let sum = |frames: &[Vec<u8>]| frames.iter().map(|f| ip_bytes(f)).sum::<u64>();
    (
        (inbound.len() as u64, sum(&inbound)),
        (outbound.len() as u64, sum(&outbound)),
    )
}

/// (conns, in_pkts, in_bytes, out_pkts, out_bytes) of the service and
/// of its only real server.
fn stats(lab: &Lab) -> ([u64; 5], [u64; 5]) {
    let snapshot = lab.engine.snapshot();
    let svc = &snapshot.services()[0];
    let s = &svc.stats;
    let d = &svc
        .dests
        .iter()
        .find(|d| d.addr == v4().rs(1))
        .expect("real server 1")
        .counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    (
        [
            load(&s.conns),
            load(&s.in_pkts),
            load(&s.in_bytes),
            load(&s.out_pkts),
            load(&s.out_bytes),
        ],
        [
            load(&d.conns),
            load(&d.in_pkts),
            load(&d.in_bytes),
            load(&d.out_pkts),
            load(&d.out_bytes),
        ],
    )
}

#[test]
fn service_and_real_server_counters_match_what_was_sent() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1],
    )]));
    let ((in_pkts, in_bytes), (out_pkts, out_bytes)) = converse(&mut lab, 1000);
    let want = [1, in_pkts, in_bytes, out_pkts, out_bytes];
    assert_eq!(stats(&lab), (want, want));
    let c = lab.engine.counters();
    assert_eq!(c.forwarded.load(Ordering::Relaxed), in_pkts + out_pkts);
    assert_eq!(c.new_conns.load(Ordering::Relaxed), 1);
    assert_eq!(c.passed.load(Ordering::Relaxed), 0);
}

#[test]
fn reload_keeps_established_connections_and_counters() {
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1],
    )]);
    let mut lab = Lab::new(&cfg);
    let ((in_pkts, in_bytes), (out_pkts, out_bytes)) = converse(&mut lab, 1000);
    let before = lab.connections();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].state_name, "ESTABLISHED");

    // Add a real server and a second service, change the timeouts.
    let mut edited = cfg.clone();
    edited.services[0]
        .dests
        .push(dest(v4().rs(2), RPORT, ForwardMethod::Nat, 1));
    edited.services.push(service(
        Protocol::Udp,
        vip4(),
        53,
        SchedulerName::Rr,
        vec![dest(v4().rs(3), 53, ForwardMethod::Nat, 1)],
    ));
    lab.engine.apply(&edited).expect("reload");

    let want = [1, in_pkts, in_bytes, out_pkts, out_bytes];
    assert_eq!(stats(&lab), (want, want), "counters survive the reload");
    let after = lab.connections();
    assert_eq!(after.len(), 1, "the connection survives the reload");
    assert_eq!(after[0].info, before[0].info);
    let out = lab.client_sends(&data_in(1000, tcp::ACK, b"more"));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(rs_of(&out), 1, "and keeps its real server");
    let reply = lab.server_sends(&data_out(1000, tcp::ACK, b"ok"));
    assert_eq!(reply.verdict, Verdict::Forward(OUTSIDE));
    let (svc, rs) = stats(&lab);
    assert_eq!(svc[1], in_pkts + 1);
    assert_eq!(rs[3], out_pkts + 1);
}

#[test]
fn one_packet_scheduling_schedules_every_datagram_and_tracks_nothing() {
    let mut svc = service(
        Protocol::Udp,
        vip4(),
        53,
        SchedulerName::Rr,
        vec![
            dest(v4().rs(1), 53, ForwardMethod::Nat, 1),
            dest(v4().rs(2), 53, ForwardMethod::Nat, 1),
        ],
    );
    svc.one_packet = true;
    let mut lab = Lab::new(&config(vec![svc]));
    let query = udp_in((client4(), 5353), (vip4(), 53), b"query");
    let order: Vec<u8> = (0..4)
        .map(|_| {
            let out = lab.client_sends(&query);
            assert_eq!(out.verdict, Verdict::Forward(INSIDE));
            rs_of(&out)
        })
        .collect();
    assert_eq!(
        order,
        vec![2, 1, 2, 1],
        "the same flow, scheduled each time"
    );
    assert!(lab.listing().is_empty(), "nothing tracked");
    assert_eq!(
        lab.engine.counters().new_conns.load(Ordering::Relaxed),
        4,
        "each datagram counts as a connection, as IPVS's OPS do"
    );
}

#[test]
fn tcp_non_syn_to_a_service_without_connection_is_dropped_and_creates_nothing() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1],
    )]));
    for flags in [tcp::ACK, tcp::ACK | tcp::PSH, tcp::FIN | tcp::ACK, tcp::RST] {
        let out = lab.client_sends(&tcp_in((client4(), 1000), (vip4(), VPORT), flags));
        assert_eq!(
            out.verdict,
            Verdict::Drop(DropReason::NoConnection),
            "flags {flags:#x}"
        );
    }
    let syn_rst = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::SYN | tcp::RST);
    assert_eq!(
        lab.client_sends(&syn_rst).verdict,
        Verdict::Drop(DropReason::NoConnection)
    );
    assert!(lab.listing().is_empty());
    assert_eq!(lab.engine.counters().drops(DropReason::NoConnection), 5);
    assert_eq!(lab.engine.counters().new_conns.load(Ordering::Relaxed), 0);
}

#[test]
fn full_table_drops_new_connections_with_table_full() {
    let mut cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1],
    )]);
    cfg.engine.conn_table_size = 8;
    let mut lab = Lab::new(&cfg);
    let capacity = lab.engine.conns().capacity();
    assert_eq!(capacity, 8);
    for i in 0..capacity as u16 {
        open(&mut lab, client4(), 1000 + i);
    }
    let out = lab.client_sends(&syn_from(client4(), 2000));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::TableFull));
    assert_eq!(lab.engine.counters().drops(DropReason::TableFull), 1);
    assert_eq!(lab.connections().len(), capacity);
    // Established traffic still flows.
    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    assert_eq!(lab.client_sends(&ack).verdict, Verdict::Forward(INSIDE));
}

#[test]
fn conn_reuse_reschedules_a_new_syn_on_a_time_wait_connection() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]));
    let client = (client4(), 1000);
    let vip = (vip4(), VPORT);
    assert_eq!(open(&mut lab, client.0, client.1), 2);
    let rs2 = (v4().rs(2), RPORT);
    let steps = [
        (tcp_from_rs(2, rs2, client, tcp::SYN | tcp::ACK), "SYN_RECV"),
        (tcp_in(client, vip, tcp::ACK), "ESTABLISHED"),
        (tcp_in(client, vip, tcp::FIN | tcp::ACK), "CLOSE_WAIT"),
        (
            tcp_from_rs(2, rs2, client, tcp::FIN | tcp::ACK),
            "TIME_WAIT",
        ),
    ];
    for (frame, state) in steps {
        let out = if frame[0..6] == DIRECTOR_IN_MAC {
            lab.server_sends(&frame)
        } else {
            lab.client_sends(&frame)
        };
        assert!(matches!(out.verdict, Verdict::Forward(_)), "{state}");
        assert_eq!(lab.connections()[0].state_name, state);
    }
    let out = lab.client_sends(&syn_from(client.0, client.1));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(
        rs_of(&out),
        1,
        "rescheduled: rr moved on to the next server"
    );
    let conns = lab.connections();
    assert_eq!(conns.len(), 1, "the TIME_WAIT entry was replaced");
    assert_eq!(conns[0].state_name, "SYN_RECV");
    assert_eq!(conns[0].info.daddr, v4().rs(1));
    assert_eq!(lab.engine.counters().new_conns.load(Ordering::Relaxed), 2);
}

#[test]
fn a_syn_on_an_established_connection_is_not_rescheduled() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1, 2],
    )]));
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    assert_eq!(lab.client_sends(&ack).verdict, Verdict::Forward(INSIDE));
    assert_eq!(open(&mut lab, client4(), 1000), 2, "same connection");
    assert_eq!(lab.engine.counters().new_conns.load(Ordering::Relaxed), 1);
}

fn arp_request() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&ROUTER_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&ROUTER_MAC);
    f.extend_from_slice(&ROUTER4.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&VIP4.octets());
    f
}

#[test]
fn traffic_for_no_service_is_passed_to_the_kernel_untouched() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1],
    )]));
    let ssh_to_director = tcp_in((client4(), 1000), (IpAddr::V4(DIRECTOR_IN4), 22), tcp::SYN);
    let other_port = tcp_in((client4(), 1000), (vip4(), 443), tcp::SYN);
    let udp_same_port = udp_in((client4(), 1000), (vip4(), VPORT), b"x");
    let echo = PacketBuilder::new()
        .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
        .ip(client4(), vip4())
        .icmp(8, 0, 0x0001_0001)
        .payload(b"ping")
        .build();
    let echo6 = PacketBuilder::new()
        .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
        .ip(CLIENT6.into(), VIP6.into())
        .icmp(128, 0, 0x0001_0001)
        .payload(b"ping")
        .build();
    let frames = [
        ("ssh to the director", ssh_to_director),
        ("other port of the VIP", other_port),
        ("UDP to a TCP service's port", udp_same_port),
        ("ICMP echo to the VIP", echo),
        ("ICMPv6 echo", echo6),
        ("ARP", arp_request()),
    ];
    for (case, frame) in &frames {
        let out = lab.client_sends(frame);
        assert_eq!(out.verdict, Verdict::Pass, "{case}");
        assert_eq!(&out.frame, frame, "{case}: untouched");
    }
    assert_eq!(
        lab.engine.counters().passed.load(Ordering::Relaxed),
        frames.len() as u64
    );
    assert!(lab.listing().is_empty());
}

#[test]
fn malformed_frames_are_dropped_as_malformed() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1],
    )]));
    let good = syn_from(client4(), 1000);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("IPv4 header cut short", good[..14 + 12].to_vec()));
    let mut bad_version = good.clone();
    bad_version[14] = 0x65;
    cases.push(("IPv4 ethertype, version 6", bad_version));
    let mut long_total = good.clone();
    long_total[16..18].copy_from_slice(&2000u16.to_be_bytes());
    cases.push(("total length beyond the frame", long_total));
    let mut short_ihl = good.clone();
    short_ihl[14] = 0x44;
    cases.push(("header length below 20", short_ihl));
    cases.push(("TCP header cut short", good[..14 + 20 + 10].to_vec()));
    for (case, frame) in &cases {
        assert_eq!(
            lab.client_sends(frame).verdict,
            Verdict::Drop(DropReason::Malformed),
            "{case}"
        );
    }
    assert_eq!(
        lab.engine.counters().drops(DropReason::Malformed),
        cases.len() as u64
    );
    assert!(lab.listing().is_empty());
}

#[test]
fn fwmark_service_matches_its_address_and_port_ranges() {
    let first = Ipv4Addr::new(192, 0, 2, 100);
    let last = Ipv4Addr::new(192, 0, 2, 101);
    let svc = uvs_conf::ServiceConfig {
        key: ServiceKey::Fwmark {
            mark: 7,
            family: Family::V4,
        },
        scheduler: SchedulerName::Rr,
        flags: Default::default(),
        persistence: None,
        persistence_engine: None,
        one_packet: false,
        fwmark_match: vec![FwmarkMatch {
            protocol: Some(Protocol::Tcp),
            addr_first: first.into(),
            addr_last: last.into(),
            port_first: 80,
            port_last: 81,
        }],
        dests: vec![dest(v4().rs(1), 0, ForwardMethod::Dr, 1)],
    };
    let mut lab = Lab::new(&config(vec![svc]));
    let to = |addr: Ipv4Addr, port: u16| tcp_in((client4(), 1000), (addr.into(), port), tcp::SYN);
    for (addr, port) in [(first, 80), (first, 81), (last, 80), (last, 81)] {
        let out = lab.client_sends(&to(addr, port));
        assert_eq!(out.verdict, Verdict::Forward(INSIDE), "{addr}:{port}");
        assert_eq!(rs_of(&out), 1);
    }
    for (addr, port) in [
        (first, 82),
        (first, 79),
        (Ipv4Addr::new(192, 0, 2, 102), 80),
        (Ipv4Addr::new(192, 0, 2, 99), 81),
    ] {
        assert_eq!(
            lab.client_sends(&to(addr, port)).verdict,
            Verdict::Pass,
            "{addr}:{port} is outside the ranges"
        );
    }
    let udp = udp_in((client4(), 1000), (first.into(), 80), b"x");
    assert_eq!(lab.client_sends(&udp).verdict, Verdict::Pass, "TCP only");
    let conns = lab.connections();
    assert_eq!(conns.len(), 4);
    assert!(conns.iter().all(|c| c.info.fwmark == 7));
}

#[test]
fn port_zero_persistent_service_matches_every_port_and_pins_the_client() {
    let mut svc = service(
        Protocol::Tcp,
        vip4(),
        0,
        SchedulerName::Rr,
        vec![
            dest(v4().rs(1), 0, ForwardMethod::Dr, 1),
            dest(v4().rs(2), 0, ForwardMethod::Dr, 1),
        ],
    );
    svc.persistence = persistence(300, 32);
    let mut lab = Lab::new(&config(vec![svc]));
    let mut seen = Vec::new();
    for port in [80u16, 443, 8443, 22] {
        let frame = tcp_in((client4(), 1000), (vip4(), port), tcp::SYN);
        let out = lab.client_sends(&frame);
        assert_eq!(out.verdict, Verdict::Forward(INSIDE), "port {port}");
        // DR keeps the destination port: bytes 36..38 of the frame.
        assert_eq!(out.frame[36..38], port.to_be_bytes(), "port {port} kept");
        seen.push(rs_of(&out));
    }
    assert_eq!(seen, vec![2, 2, 2, 2], "one template for every port");
    let other = lab.client_sends(&tcp_in((v4().client_n(9, 9), 1000), (vip4(), 25), tcp::SYN));
    assert_eq!(rs_of(&other), 1, "another client is scheduled afresh");
}

#[test]
fn ipv6_service_schedules_tracks_and_translates_replies() {
    let f = Fam::new(true);
    let svc = service(
        Protocol::Tcp,
        f.vip,
        VPORT,
        SchedulerName::Rr,
        vec![
            dest(f.rs(1), RPORT, ForwardMethod::Nat, 1),
            dest(f.rs(2), RPORT, ForwardMethod::Nat, 1),
        ],
    );
    let mut lab = Lab::new(&config(vec![svc]));
    let mut order = Vec::new();
    for cport in [1000u16, 1001, 1002] {
        let out = lab.client_sends(&tcp_in((f.client, cport), (f.vip, VPORT), tcp::SYN));
        assert_eq!(out.verdict, Verdict::Forward(INSIDE));
        order.push(rs_of(&out));
    }
    assert_eq!(order, vec![2, 1, 2]);
    let reply = tcp_from_rs(1, (f.rs(1), RPORT), (f.client, 1001), tcp::SYN | tcp::ACK);
    let out = lab.server_sends(&reply);
    assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    assert_eq!(&out.frame[0..6], &ROUTER_MAC);
    // IPv6 source address: bytes 22..38.
    assert_eq!(out.frame[22..38], VIP6.octets());
    let conns = lab.connections();
    assert_eq!(conns.len(), 3);
    assert!(conns.iter().all(|c| c.info.key.caddr == f.client));
}

/// The only connection's state and seconds left.
fn state(lab: &Lab) -> (&'static str, u64) {
    let conns = lab.connections();
    assert_eq!(conns.len(), 1, "{conns:?}");
    (conns[0].state_name, conns[0].remaining_ms / 1000)
}

#[test]
fn nat_tcp_states_progress_with_their_timeouts() {
    let mut cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1],
    )]);
    cfg.timeouts = Timeouts {
        tcp: 1000,
        tcp_fin: 77,
        udp: 300,
    };
    let mut lab = Lab::new(&cfg);
    let client = (client4(), 1000);
    let vip = (vip4(), VPORT);
    let rs = (v4().rs(1), RPORT);
    let inbound = |lab: &mut Lab, flags| {
        let out = lab.client_sends(&tcp_in(client, vip, flags));
        assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    };
    let outbound = |lab: &mut Lab, flags| {
        let out = lab.server_sends(&tcp_from_rs(1, rs, client, flags));
        assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
    };
    inbound(&mut lab, tcp::SYN);
    assert_eq!(state(&lab), ("SYN_RECV", 60));
    outbound(&mut lab, tcp::SYN | tcp::ACK);
    assert_eq!(state(&lab), ("SYN_RECV", 60));
    inbound(&mut lab, tcp::ACK);
    assert_eq!(state(&lab), ("ESTABLISHED", 1000));
    lab.advance_secs(10);
    assert_eq!(state(&lab), ("ESTABLISHED", 990), "the timer runs");
    outbound(&mut lab, tcp::FIN | tcp::ACK);
    assert_eq!(state(&lab), ("FIN_WAIT", 77));
    inbound(&mut lab, tcp::ACK);
    assert_eq!(state(&lab), ("FIN_WAIT", 77));
    inbound(&mut lab, tcp::FIN | tcp::ACK);
    assert_eq!(state(&lab), ("TIME_WAIT", 120));
    lab.advance_secs(121);
    lab.sweep();
    assert!(lab.listing().is_empty(), "TIME_WAIT ran out");
    let out = lab.client_sends(&tcp_in(client, vip, tcp::ACK));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NoConnection));
}

#[test]
fn dr_tcp_states_progress_on_client_packets_alone() {
    let mut cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1],
    )]);
    cfg.timeouts.tcp = 500;
    cfg.timeouts.tcp_fin = 33;
    let mut lab = Lab::new(&cfg);
    let client = (client4(), 1000);
    let vip = (vip4(), VPORT);
    let steps = [
        (tcp::SYN, ("SYN_RECV", 60)),
        (tcp::ACK, ("ESTABLISHED", 500)),
        (tcp::ACK | tcp::PSH, ("ESTABLISHED", 500)),
        (tcp::FIN | tcp::ACK, ("FIN_WAIT", 33)),
        (tcp::ACK, ("FIN_WAIT", 33)),
        (tcp::RST, ("CLOSE", 10)),
    ];
    for (flags, want) in steps {
        let out = lab.client_sends(&tcp_in(client, vip, flags));
        assert_eq!(out.verdict, Verdict::Forward(INSIDE), "flags {flags:#x}");
        assert_eq!(state(&lab), want, "after flags {flags:#x}");
    }
    let snapshot = lab.engine.snapshot();
    let counters = &snapshot.services()[0].dests[0].counters;
    assert_eq!(
        (counters.active(), counters.inactive()),
        (0, 1),
        "CLOSE is inactive"
    );
}

#[test]
fn udp_connection_expires_after_the_udp_timeout() {
    let mut svc = service(
        Protocol::Udp,
        vip4(),
        53,
        SchedulerName::Rr,
        vec![dest(v4().rs(1), 53, ForwardMethod::Nat, 1)],
    );
    svc.one_packet = false;
    let mut cfg = config(vec![svc]);
    cfg.timeouts.udp = 20;
    let mut lab = Lab::new(&cfg);
    let query = udp_in((client4(), 5353), (vip4(), 53), b"q");
    assert_eq!(lab.client_sends(&query).verdict, Verdict::Forward(INSIDE));
    assert_eq!(state(&lab), ("UDP", 20));
    lab.advance_secs(19);
    lab.sweep();
    assert_eq!(state(&lab), ("UDP", 1));
    lab.advance_secs(2);
    lab.sweep();
    assert!(lab.listing().is_empty());
}

#[test]
fn a_connection_dropped_for_a_full_table_is_not_counted_as_scheduled() {
    let mut cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1],
    )]);
    cfg.engine.conn_table_size = 4;
    let mut lab = Lab::new(&cfg);
    for i in 0..4 {
        open(&mut lab, client4(), 1000 + i);
    }
    for i in 0..3 {
        let out = lab.client_sends(&syn_from(client4(), 2000 + i));
        assert_eq!(out.verdict, Verdict::Drop(DropReason::TableFull));
    }
    assert_eq!(lab.engine.counters().drops(DropReason::TableFull), 3);
    assert_eq!(
        lab.engine.counters().new_conns.load(Ordering::Relaxed),
        4,
        "only inserted connections are new connections"
    );
    let snapshot = lab.engine.snapshot();
    let svc = &snapshot.services()[0];
    assert_eq!(svc.stats.conns.load(Ordering::Relaxed), 4, "service Conns");
    assert_eq!(
        svc.dests[0].counters.conns.load(Ordering::Relaxed),
        4,
        "real server Conns"
    );
    assert_eq!(
        svc.stats.in_pkts.load(Ordering::Relaxed),
        4,
        "dropped SYNs are not counted as forwarded packets"
    );
}

#[test]
fn a_service_whose_real_servers_all_have_weight_zero_drops_new_connections() {
    let mut svc = tcp_service(SchedulerName::Wlc, ForwardMethod::Dr, &[1, 2]);
    for d in &mut svc.dests {
        d.weight = 0;
    }
    let mut lab = Lab::new(&config(vec![svc]));
    let out = lab.client_sends(&syn_from(client4(), 1000));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NoDest));
    assert_eq!(lab.engine.counters().drops(DropReason::NoDest), 1);
    assert!(lab.listing().is_empty());
}

#[test]
fn a_persistent_client_whose_real_server_was_deleted_is_scheduled_afresh() {
    let mut svc = tcp_service(SchedulerName::Rr, ForwardMethod::Dr, &[1, 2]);
    svc.persistence = persistence(300, 32);
    let cfg = config(vec![svc]);
    let mut lab = Lab::new(&cfg);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let mut without = cfg.clone();
    without.services[0].dests.remove(1);
    lab.engine.apply(&without).expect("reload");
    // IPVS (ip_vs_check_template) expires a template whose real server is
    // gone and schedules the client again.
    let out = lab.client_sends(&syn_from(client4(), 1001));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(rs_of(&out), 1);
    let out = lab.client_sends(&syn_from(client4(), 1002));
    assert_eq!(rs_of(&out), 1, "and pinned to the new real server");
}

#[test]
fn non_first_fragments_to_a_virtual_address_are_dropped_others_passed() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1],
    )]));
    let fragment = |dst: IpAddr| {
        PacketBuilder::new()
            .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
            .ip(client4(), dst)
            .fragment(1480, false)
            .raw_l4(6)
            .payload(&[0u8; 64])
            .build()
    };
    assert_eq!(
        lab.client_sends(&fragment(vip4())).verdict,
        Verdict::Drop(DropReason::Fragment)
    );
    let elsewhere = fragment(IpAddr::V4(DIRECTOR_IN4));
    let out = lab.client_sends(&elsewhere);
    assert_eq!(out.verdict, Verdict::Pass);
    assert_eq!(out.frame, elsewhere);
    assert_eq!(lab.engine.counters().drops(DropReason::Fragment), 1);
}

#[test]
fn a_real_server_without_a_known_mac_is_a_neighbour_drop() {
    // Real server 9 is on the inside link but not in the neighbour table.
    let svc = service(
        Protocol::Tcp,
        vip4(),
        VPORT,
        SchedulerName::Rr,
        vec![dest(v4().rs(9), VPORT, ForwardMethod::Dr, 1)],
    );
    let mut lab = Lab::new(&config(vec![svc]));
    let out = lab.client_sends(&syn_from(client4(), 1000));
    assert_eq!(out.verdict, Verdict::Drop(DropReason::NoNeighbour));
    assert_eq!(lab.engine.counters().drops(DropReason::NoNeighbour), 1);
}

#[test]
fn least_connection_follows_connections_as_they_finish() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Lc,
        ForwardMethod::Dr,
        &[1, 2],
    )]));
    let establish = |lab: &mut Lab, cport: u16| {
        let rs = open(lab, client4(), cport);
        let ack = tcp_in((client4(), cport), (vip4(), VPORT), tcp::ACK);
        assert_eq!(lab.client_sends(&ack).verdict, Verdict::Forward(INSIDE));
        rs
    };
    assert_eq!(establish(&mut lab, 1000), 2, "a tie goes to the list head");
    assert_eq!(establish(&mut lab, 1001), 1);
    // The first connection is reset: its server now has only an inactive one.
    let rst = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::RST);
    assert_eq!(lab.client_sends(&rst).verdict, Verdict::Forward(INSIDE));
    let snapshot = lab.engine.snapshot();
    let by_rs = |n: u8| {
        let d = snapshot.services()[0]
            .dests
            .iter()
            .find(|d| d.addr == v4().rs(n))
            .expect("real server");
        (d.counters.active(), d.counters.inactive())
    };
    assert_eq!((by_rs(1), by_rs(2)), ((1, 0), (0, 1)));
    drop(snapshot);
    assert_eq!(establish(&mut lab, 1002), 2, "the less loaded server");
}

/// A full-NAT service over real server 1 with local ports `ports`.
fn fullnat_lab(ports: std::ops::RangeInclusive<u16>) -> Lab {
    let mut cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::FullNat,
        &[1],
    )]);
    cfg.fullnat_pool.port_first = *ports.start();
    cfg.fullnat_pool.port_last = *ports.end();
    Lab::new(&cfg)
}

#[test]
fn fullnat_gives_each_connection_its_own_local_port_and_routes_replies_back() {
    let mut lab = fullnat_lab(5001..=5003);
    let clients: Vec<IpAddr> = (1..=3).map(|n| v4().client_n(50, n)).collect();
    let mut ports = Vec::new();
    for &client in &clients {
        let out = lab.client_sends(&tcp_in((client, 1000), (vip4(), VPORT), tcp::SYN));
        assert_eq!(out.verdict, Verdict::Forward(INSIDE));
        // IPv4 source address and TCP source port of the forwarded SYN.
        assert_eq!(out.frame[26..30], DIRECTOR_IN4.octets());
        ports.push(u16::from_be_bytes([out.frame[34], out.frame[35]]));
    }
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![5001, 5002, 5003], "one local port each");
    for (client, lport) in clients.iter().zip(&ports) {
        let reply = tcp_from_rs(
            1,
            (v4().rs(1), RPORT),
            (DIRECTOR_IN4.into(), *lport),
            tcp::SYN | tcp::ACK,
        );
        let out = lab.server_sends(&reply);
        assert_eq!(out.verdict, Verdict::Forward(OUTSIDE));
        let IpAddr::V4(c) = client else {
            unreachable!("IPv4 clients")
        };
        assert_eq!(out.frame[30..34], c.octets(), "reply to local port {lport}");
        assert_eq!(out.frame[26..30], VIP4.octets());
    }
}

#[test]
fn fullnat_without_a_free_local_port_drops_the_new_connection() {
    let mut lab = fullnat_lab(5001..=5001);
    let first = lab.client_sends(&tcp_in(
        (v4().client_n(50, 1), 1000),
        (vip4(), VPORT),
        tcp::SYN,
    ));
    assert_eq!(first.verdict, Verdict::Forward(INSIDE));
    let second = lab.client_sends(&tcp_in(
        (v4().client_n(50, 2), 1000),
        (vip4(), VPORT),
        tcp::SYN,
    ));
    assert_eq!(
        second.verdict,
        Verdict::Drop(DropReason::FullNatPortsExhausted)
    );
    assert_eq!(
        lab.engine
            .counters()
            .drops(DropReason::FullNatPortsExhausted),
        1
    );
    assert_eq!(lab.connections().len(), 1);
    assert_eq!(lab.engine.counters().new_conns.load(Ordering::Relaxed), 1);
}

#[test]
fn icmp_error_about_a_connection_of_a_deleted_real_server_is_dropped() {
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]);
    let mut lab = Lab::new(&cfg);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let mut without = cfg.clone();
    without.services[0].dests.remove(1);
    lab.engine.apply(&without).expect("reload");
    let quoted = PacketBuilder::new()
        .ip(vip4(), client4())
        .tcp(VPORT, 1000)
        .build_ip();
    let icmp = PacketBuilder::new()
        .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
        .ip(ROUTER4.into(), vip4())
        .icmp(3, 3, 0)
        .payload(&quoted[..28])
        .build();
    assert_eq!(
        lab.client_sends(&icmp).verdict,
        Verdict::Drop(DropReason::DestGone)
    );
}

#[test]
fn a_rejected_reload_changes_nothing() {
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]);
    let mut lab = Lab::new(&cfg);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    // Port 0 without persistence is invalid, as ipvsadm says.
    let mut invalid = cfg.clone();
    invalid.services[0].dests.clear();
    invalid
        .services
        .push(service(Protocol::Tcp, vip4(), 0, SchedulerName::Rr, vec![]));
    assert!(lab.engine.apply(&invalid).is_err());
    assert_eq!(lab.engine.snapshot().services().len(), 1);
    assert_eq!(lab.engine.snapshot().services()[0].dests.len(), 2);
    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    assert_eq!(rs_of(&lab.client_sends(&ack)), 2, "still flowing");
    assert_eq!(open(&mut lab, client4(), 1001), 1, "rr carries on");
}

fn persistent_pair(expire_quiescent_template: bool) -> (Lab, Config) {
    let mut svc = tcp_service(SchedulerName::Rr, ForwardMethod::Dr, &[1, 2]);
    svc.persistence = persistence(300, 32);
    let mut cfg = config(vec![svc]);
    cfg.engine.expire_quiescent_template = expire_quiescent_template;
    (Lab::new(&cfg), cfg)
}

#[test]
fn a_persistent_client_stays_on_a_quiesced_real_server_by_default() {
    let (mut lab, cfg) = persistent_pair(false);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let mut quiesced = cfg.clone();
    quiesced.services[0].dests[1].weight = 0;
    lab.engine.apply(&quiesced).expect("reload");
    assert_eq!(
        open(&mut lab, client4(), 1001),
        2,
        "the template still holds"
    );
    assert_eq!(
        open(&mut lab, v4().client_n(9, 9), 1000),
        1,
        "others avoid it"
    );
}

#[test]
fn expire_quiescent_template_moves_a_persistent_client_off_a_quiesced_real_server() {
    let (mut lab, cfg) = persistent_pair(true);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let mut quiesced = cfg.clone();
    quiesced.services[0].dests[1].weight = 0;
    lab.engine.apply(&quiesced).expect("reload");
    assert_eq!(open(&mut lab, client4(), 1001), 1, "template expired");
    assert_eq!(open(&mut lab, client4(), 1002), 1, "and a new one pins rs1");
}

#[test]
fn re_adding_a_deleted_real_server_revives_its_connections_and_counters() {
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]);
    let mut lab = Lab::new(&cfg);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let mut without = cfg.clone();
    without.services[0].dests.remove(1);
    lab.engine.apply(&without).expect("delete rs2");
    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    assert_eq!(
        lab.client_sends(&ack).verdict,
        Verdict::Drop(DropReason::DestGone)
    );

    // ipvsadm -a again: IPVS takes the real server back from its trash,
    // with its connections and counters.
    lab.engine.apply(&cfg).expect("re-add rs2");
    let out = lab.client_sends(&ack);
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(rs_of(&out), 2);
    let snapshot = lab.engine.snapshot();
    let rs2 = snapshot.services()[0]
        .dests
        .iter()
        .find(|d| d.addr == v4().rs(2))
        .expect("rs2 is back");
    assert_eq!(rs2.counters.conns.load(Ordering::Relaxed), 1, "Conns kept");
    assert_eq!(
        rs2.counters.in_pkts.load(Ordering::Relaxed),
        2,
        "InPkts kept"
    );
    assert_eq!(rs2.counters.active(), 1, "its connection counts again");
}

#[test]
fn a_real_server_deleted_after_its_connections_ended_comes_back_fresh() {
    let mut cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]);
    cfg.engine.expire_nodest_conn = true;
    let mut lab = Lab::new(&cfg);
    assert_eq!(open(&mut lab, client4(), 1000), 2);
    let mut without = cfg.clone();
    without.services[0].dests.remove(1);
    lab.engine.apply(&without).expect("delete rs2");
    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    assert_eq!(
        lab.client_sends(&ack).verdict,
        Verdict::Drop(DropReason::DestGone)
    );
    assert!(lab.connections().is_empty());
    lab.engine.apply(&cfg).expect("re-add rs2");
    let snapshot = lab.engine.snapshot();
    let rs2 = snapshot.services()[0]
        .dests
        .iter()
        .find(|d| d.addr == v4().rs(2))
        .expect("rs2 is back");
    assert_eq!(
        rs2.counters.conns.load(Ordering::Relaxed),
        0,
        "a new real server"
    );
}

/// Run `frames` (all from the outside) through the engine as one batch.
fn run_batch(lab: &mut Lab, frames: &[Vec<u8>]) -> Vec<(Verdict, Vec<u8>)> {
    let ingress = vec![OUTSIDE; frames.len()];
    run_batch_from(lab, frames, &ingress)
}

/// Run `frames`, frame i arriving on `ingress[i]`, through the engine as
/// one batch.
fn run_batch_from(
    lab: &mut Lab,
    frames: &[Vec<u8>],
    ingress: &[uvs_engine::route::PortId],
) -> Vec<(Verdict, Vec<u8>)> {
    use uvs_engine::lab::{FRAME_SIZE, HEADROOM};
    use uvs_engine::xmit::FrameBuf;
    use uvs_engine::Packet;
    let mut buffers: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut buf = vec![0u8; FRAME_SIZE];
            buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
            buf
        })
        .collect();
    let mut batch: Vec<Packet<'_>> = buffers
        .iter_mut()
        .zip(frames.iter().zip(ingress))
        .map(|(buf, (f, &ingress))| Packet {
            frame: FrameBuf::new(buf, HEADROOM, f.len()).expect("fits"),
            ingress,
            verdict: Verdict::Pending,
        })
        .collect();
    lab.engine.process(&mut lab.worker, &mut batch, lab.now);
    batch
        .iter()
        .map(|p| (p.verdict, p.frame.frame().to_vec()))
        .collect()
}

#[test]
fn one_batch_decides_every_frame_and_later_frames_see_earlier_connections() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1, 2],
    )]));
    let frames = vec![
        syn_from(client4(), 1000),
        syn_from(client4(), 1001),
        tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK),
        tcp_in((client4(), 1002), (vip4(), VPORT), tcp::ACK),
        arp_request(),
        tcp_in((client4(), 1001), (vip4(), VPORT), tcp::ACK),
    ];
    let out = run_batch(&mut lab, &frames);
    let verdicts: Vec<Verdict> = out.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Forward(INSIDE),
            Verdict::Forward(INSIDE),
            Verdict::Forward(INSIDE),
            Verdict::Drop(DropReason::NoConnection),
            Verdict::Pass,
            Verdict::Forward(INSIDE),
        ]
    );
    let server = |i: usize| real_server_of_mac(&out[i].1[0..6]);
    assert_eq!(
        [server(0), server(1), server(2), server(5)],
        [Some(2), Some(1), Some(2), Some(1)],
        "each ACK follows its SYN"
    );
    let c = lab.engine.counters();
    assert_eq!(c.forwarded.load(Ordering::Relaxed), 4);
    assert_eq!(c.passed.load(Ordering::Relaxed), 1);
    assert_eq!(c.drops(DropReason::NoConnection), 1);
    let states: Vec<&str> = lab.connections().iter().map(|c| c.state_name).collect();
    assert_eq!(states, vec!["ESTABLISHED", "ESTABLISHED"]);
}

/// The batch look-ahead hashes a frame's reply key early when its
/// in-index bucket shows no candidate; the decisions must be those of
/// frames handled one at a time, whatever the mix.
#[test]
fn a_batch_mixing_clients_replies_and_strangers_decides_as_frames_one_by_one() {
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Nat,
        &[1, 2],
    )]);
    let (mut batched, mut single) = (Lab::new(&cfg), Lab::new(&cfg));
    let mut frames = Vec::new();
    let mut ingress = Vec::new();
    for lab in [&mut batched, &mut single] {
        for cport in 2000..2012u16 {
            let out = lab.client_sends(&syn_from(client4(), cport));
            assert_eq!(out.verdict, Verdict::Forward(INSIDE));
        }
    }
    for n in 0..60u16 {
        let cport = 2000 + n % 12;
        // rr, newest first: even client ports went to real server 2.
        let server = if cport % 2 == 0 { 2 } else { 1 };
        let rs = (v4().rs(server), RPORT);
        let (frame, port) = match n % 6 {
            0 | 3 => (
                tcp_in((client4(), cport), (vip4(), VPORT), tcp::ACK),
                OUTSIDE,
            ),
            1 | 4 => (
                tcp_from_rs(server, rs, (client4(), cport), tcp::ACK),
                INSIDE,
            ),
            // A reply no connection owns (another client port).
            2 => (
                tcp_from_rs(server, rs, (client4(), 9000 + n), tcp::ACK),
                INSIDE,
            ),
            _ => (arp_request(), OUTSIDE),
        };
        frames.push(frame);
        ingress.push(port);
    }
    let out = run_batch_from(&mut batched, &frames, &ingress);
    for (i, (frame, &port)) in frames.iter().zip(&ingress).enumerate() {
        let alone = single.send(port, frame);
        assert_eq!(out[i].0, alone.verdict, "frame {i}: verdict");
        assert_eq!(out[i].1, alone.frame, "frame {i}: bytes");
    }
    let forwarded = out
        .iter()
        .filter(|(v, _)| matches!(v, Verdict::Forward(OUTSIDE)))
        .count();
    assert_eq!(forwarded, 20, "every reply of a known connection");
}

#[test]
fn workers_in_parallel_share_connections_and_sum_their_counters() {
    use uvs_engine::Worker;
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1, 2],
    )]);
    let lab = Lab::new(&cfg);
    let engine = &lab.engine;
    let now = lab.now;
    const PER_WORKER: u16 = 250;
    std::thread::scope(|scope| {
        for w in 0..4u16 {
            scope.spawn(move || {
                let mut worker = Worker::new();
                for i in 0..PER_WORKER {
                    let cport = 10_000 + w * PER_WORKER + i;
                    let out = uvs_engine::lab::run_one(
                        engine,
                        &mut worker,
                        OUTSIDE,
                        &syn_from(client4(), cport),
                        now,
                    );
                    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
                }
            });
        }
    });
    let total = u64::from(4 * PER_WORKER);
    assert_eq!(engine.counters().new_conns.load(Ordering::Relaxed), total);
    assert_eq!(engine.counters().forwarded.load(Ordering::Relaxed), total);
    assert_eq!(lab.connections().len() as u64, total);
    let snapshot = engine.snapshot();
    let per: Vec<u64> = snapshot.services()[0]
        .dests
        .iter()
        .map(|d| d.counters.conns.load(Ordering::Relaxed))
        .collect();
    assert_eq!(per, vec![total / 2, total / 2], "rr splits evenly");
}

#[test]
fn new_timeouts_apply_to_established_connections_from_their_next_packet() {
    let cfg = config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1],
    )]);
    let mut lab = Lab::new(&cfg);
    open(&mut lab, client4(), 1000);
    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    lab.client_sends(&ack);
    assert_eq!(state(&lab), ("ESTABLISHED", 900));
    let mut edited = cfg.clone();
    edited.timeouts.tcp = 120;
    lab.engine.apply(&edited).expect("reload");
    assert_eq!(state(&lab), ("ESTABLISHED", 900), "the armed timer stays");
    lab.client_sends(&ack);
    assert_eq!(state(&lab), ("ESTABLISHED", 120));
}

#[test]
fn reload_can_turn_on_expire_nodest_conn_and_expire_quiescent_template() {
    let mut svc = tcp_service(SchedulerName::Rr, ForwardMethod::Nat, &[1, 2]);
    svc.persistence = persistence(300, 32);
    let cfg = config(vec![svc]);
    let mut lab = Lab::new(&cfg);
    assert_eq!(open(&mut lab, client4(), 1000), 2);

    // Quiesce rs2 and turn expire_quiescent_template on in one reload.
    let mut edited = cfg.clone();
    edited.engine.expire_quiescent_template = true;
    edited.engine.expire_nodest_conn = true;
    edited.services[0].dests[1].weight = 0;
    lab.engine.apply(&edited).expect("reload");
    assert_eq!(
        open(&mut lab, client4(), 1001),
        1,
        "the quiescent template is no longer used"
    );

    // Delete rs2: with expire_nodest_conn now on, its connection expires.
    let mut without = edited.clone();
    without.services[0].dests.remove(1);
    lab.engine.apply(&without).expect("reload");
    let ack = tcp_in((client4(), 1000), (vip4(), VPORT), tcp::ACK);
    assert_eq!(
        lab.client_sends(&ack).verdict,
        Verdict::Drop(DropReason::DestGone)
    );
    assert!(
        lab.connections().iter().all(|c| c.info.key.cport != 1000),
        "expired on its first packet"
    );
}

#[test]
fn a_syn_retransmitted_after_a_neighbour_drop_keeps_its_connection_and_the_rr_turn() {
    // Real server 9 has no known MAC: the first SYN is scheduled to it and
    // dropped (no_neighbour). Its retransmission must find the connection
    // (same real server, no second scheduling), so the next client's SYN
    // takes the next rr turn. IPv4 entries are stored compact, IPv6 not.
    for ipv6 in [false, true] {
        let f = Fam::new(ipv6);
        let svc = service(
            Protocol::Tcp,
            f.vip,
            VPORT,
            SchedulerName::Rr,
            vec![
                dest(f.rs(1), RPORT, ForwardMethod::Nat, 1),
                dest(f.rs(2), RPORT, ForwardMethod::Nat, 1),
                dest(f.rs(9), RPORT, ForwardMethod::Nat, 1),
            ],
        );
        let mut lab = Lab::new(&config(vec![svc]));
        let syn = tcp_in((f.client, 1000), (f.vip, VPORT), tcp::SYN);
        for _ in 0..3 {
            // TCP's SYN retransmission timer: 1 s, then 2 s.
            lab.advance_secs(1);
            let out = lab.client_sends(&syn);
            assert_eq!(
                out.verdict,
                Verdict::Drop(DropReason::NoNeighbour),
                "ipv6 {ipv6}"
            );
        }
        assert_eq!(lab.connections().len(), 1, "ipv6 {ipv6}");
        let mut order = Vec::new();
        for cport in [1001u16, 1002, 1003] {
            let out = lab.client_sends(&tcp_in((f.client, cport), (f.vip, VPORT), tcp::SYN));
            if out.verdict == Verdict::Forward(INSIDE) {
                order.push(rs_of(&out));
            } else {
                order.push(9);
            }
        }
        assert_eq!(order, vec![2, 1, 9], "ipv6 {ipv6}");
    }
}

#[test]
fn connections_expire_on_the_clock_with_no_traffic_to_carry_the_sweep() {
    let mut lab = Lab::new(&config(vec![tcp_service(
        SchedulerName::Rr,
        ForwardMethod::Dr,
        &[1],
    )]));
    for cport in 0..8 {
        open(&mut lab, client4(), 1000 + cport);
    }
    let counters = |lab: &Lab| {
        let snapshot = lab.engine.snapshot();
        let dest = &snapshot.services()[0].dests[0];
        (dest.counters.active(), dest.counters.inactive())
    };
    assert_eq!(counters(&lab), (8, 0), "SYN_RECV counts as active");
    // The first tick starts the sweep's clock; SYN_RECV lasts 60 s.
    let start = lab.now;
    lab.engine.tick(start);
    assert_eq!(lab.engine.tick(start.plus_secs(59)), 0, "none due yet");
    assert_eq!(counters(&lab), (8, 0));
    // Due at 60 s; by one sweep period later every one is reclaimed,
    // and no packet ever arrived to carry the sweep.
    let due = start.plus_secs(60);
    let expired = lab.engine.tick(due) + lab.engine.tick(Millis(due.0 + SWEEP_PERIOD_MS));
    assert_eq!(expired, 8);
    assert_eq!(counters(&lab), (0, 0));
    assert!(lab.engine.conns().is_empty());
}
