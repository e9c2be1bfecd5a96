//! SCTP through the whole engine (`Engine::process` in the lab network):
//! golden packets for DR, TUN (IPIP, GRE), NAT and full NAT × IPv4/IPv6
//! compared byte for byte with frames built independently, every CRC32c
//! checked by a bitwise reference implementation written here (not the
//! engine's `crc32c` crate); replies; scheduling only on INIT (never on
//! ABORT or DATA); rr spreading associations; the kernel's state
//! sequence for a whole association with ActiveConn/InActConn and the
//! expiry of each state (injected clock); `conn_reuse_mode` on an INIT
//! that finds a CLOSED association; ICMP errors quoting an association;
//! persistence and fwmark services.

mod engine_support;
#[path = "support/mod.rs"]
mod xmit_support;

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use engine_support::*;
use uvs_conf::{
    Config, Family, ForwardMethod, FwmarkMatch, Protocol, SchedulerName, ServiceKey, TunnelCsum,
    TunnelType,
};
use uvs_engine::conn::{ConnState, SctpState};
use uvs_engine::engine::DropReason;
use uvs_engine::wire::build::PacketBuilder;
use uvs_engine::wire::sctp::{chunk, chunk_bytes};
use uvs_engine::wire::{self, proto};
use uvs_engine::Verdict;
use xmit_support::assert_frames_eq;

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit.
fn crc32c_reference(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Check the CRC32c of every SCTP packet in an IP packet (through IPIP,
/// IPv6-in-IPv6 and GRE). Returns how many SCTP packets were checked.
fn verify_sctp_ip(ip: &[u8]) -> usize {
    let (protocol, payload) = match ip[0] >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            (ip[9], &ip[ihl..total])
        }
        6 => {
            let total = 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            (ip[6], &ip[40..total])
        }
        v => panic!("IP version {v}"),
    };
    match protocol {
        4 | 41 => verify_sctp_ip(payload),
        47 => {
            let csum = payload[0] & 0x80 != 0;
            verify_sctp_ip(&payload[if csum { 8 } else { 4 }..])
        }
        132 => {
            let mut zeroed = payload.to_vec();
            zeroed[8..12].fill(0);
            let want = crc32c_reference(&zeroed);
            let got = u32::from_le_bytes([payload[8], payload[9], payload[10], payload[11]]);
            assert_eq!(got, want, "SCTP CRC32c (stored little-endian)");
            1
        }
        _ => 0,
    }
}

fn verify_sctp_frame(frame: &[u8]) {
    assert_eq!(verify_sctp_ip(&frame[14..]), 1, "one SCTP packet checked");
}

#[test]
fn reference_crc_agrees_with_the_published_check_value() {
    assert_eq!(crc32c_reference(b"123456789"), 0xe306_9283);
}

/// An INIT chunk (initiate tag, a_rwnd, streams, initial TSN).
fn init_chunk() -> Vec<u8> {
    let mut value = Vec::new();
    value.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    value.extend_from_slice(&65_535u32.to_be_bytes());
    value.extend_from_slice(&10u16.to_be_bytes());
    value.extend_from_slice(&10u16.to_be_bytes());
    value.extend_from_slice(&7u32.to_be_bytes());
    chunk_bytes(chunk::INIT, 0, &value)
}

fn data_chunk(text: &[u8]) -> Vec<u8> {
    let mut value = vec![0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    value.extend_from_slice(text);
    chunk_bytes(chunk::DATA, 3, &value)
}

/// An SCTP packet `src` → `dst` carrying `chunks`.
fn sctp(
    macs: ([u8; 6], [u8; 6]),
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    ttl: u8,
    vtag: u32,
    chunks: &[u8],
) -> PacketBuilder {
    PacketBuilder::new()
        .eth(macs.0, macs.1)
        .ip(src.0, dst.0)
        .ttl(ttl)
        .df(true)
        .ident(0x2345)
        .sctp(src.1, dst.1, vtag)
        .payload(chunks)
}

/// The client's packet with `chunks`, router → director.
fn from_client(f: &Fam, cport: u16, vtag: u32, chunks: &[u8]) -> Vec<u8> {
    sctp(
        (ROUTER_MAC, DIRECTOR_OUT_MAC),
        (f.client, cport),
        (f.vip, VPORT),
        64,
        vtag,
        chunks,
    )
    .build()
}

fn rs_port(m: ForwardMethod) -> u16 {
    match m {
        ForwardMethod::Nat | ForwardMethod::FullNat => RPORT,
        _ => VPORT,
    }
}

fn sctp_config(f: &Fam, method: ForwardMethod, servers: u8) -> Config {
    config(vec![service(
        Protocol::Sctp,
        f.vip,
        VPORT,
        SchedulerName::Rr,
        (1..=servers)
            .map(|n| dest(f.rs(n), rs_port(method), method, 1))
            .collect(),
    )])
}

fn methods() -> Vec<(ForwardMethod, &'static str)> {
    vec![
        (ForwardMethod::Dr, "DR"),
        (
            ForwardMethod::Tunnel {
                kind: TunnelType::Ipip,
                csum: TunnelCsum::NoCsum,
            },
            "TUN ipip",
        ),
        (
            ForwardMethod::Tunnel {
                kind: TunnelType::Gre,
                csum: TunnelCsum::Csum,
            },
            "TUN gre",
        ),
        (ForwardMethod::Nat, "NAT"),
        (ForwardMethod::FullNat, "FNAT"),
    ]
}

/// What the client's INIT must become on the inside link.
fn expected_init(f: &Fam, method: ForwardMethod) -> Vec<u8> {
    let to_rs = (DIRECTOR_IN_MAC, real_server_mac(1));
    let client = (f.client, CPORT);
    let vip = (f.vip, VPORT);
    let rs = (f.rs(1), rs_port(method));
    let init = init_chunk();
    match method {
        ForwardMethod::Dr => sctp(to_rs, client, vip, 63, 0, &init).build(),
        ForwardMethod::Nat => sctp(to_rs, client, rs, 63, 0, &init).build(),
        // No TOA for SCTP: only addresses and ports change.
        ForwardMethod::FullNat => sctp(to_rs, (f.director_in, LPORT), rs, 63, 0, &init).build(),
        ForwardMethod::Tunnel { kind, csum } => {
            let inner = sctp(to_rs, client, vip, 63, 0, &init).build_ip();
            let outer = PacketBuilder::new()
                .eth(to_rs.0, to_rs.1)
                .ip(f.director_in, f.rs(1))
                .ttl(63)
                .df(true)
                .payload(&inner);
            match kind {
                TunnelType::Gre => {
                    outer.gre(if f.v6 { 0x86dd } else { 0x0800 }, csum == TunnelCsum::Csum)
                }
                _ => outer.raw_l4(if f.v6 { 41 } else { 4 }),
            }
            .build()
        }
    }
}

#[test]
fn init_of_every_method_reaches_the_real_server_byte_for_byte() {
    for (method, name) in methods() {
        for v6 in [false, true] {
            let f = Fam::new(v6);
            let case = format!("{name} v6={v6}");
            let mut lab = Lab::new(&sctp_config(&f, method, 1));
            let input = from_client(&f, CPORT, 0, &init_chunk());
            verify_sctp_frame(&input);
            let out = lab.client_sends(&input);
            assert_eq!(out.verdict, Verdict::Forward(INSIDE), "{case}");
            assert_frames_eq(&out.frame, &expected_init(&f, method), &case);
            verify_sctp_frame(&out.frame);
            let conns = lab.connections();
            assert_eq!(conns.len(), 1, "{case}");
            assert_eq!(conns[0].state_name, "INIT1", "{case}");
            assert_eq!(conns[0].info.key.protocol, proto::SCTP, "{case}");
            let snapshot = lab.engine.snapshot();
            let svc = &snapshot.services()[0];
            assert_eq!(svc.stats.conns.load(Ordering::Relaxed), 1, "{case}");
            assert_eq!(svc.stats.in_pkts.load(Ordering::Relaxed), 1, "{case}");
        }
    }
}

#[test]
fn nat_and_fullnat_replies_get_the_virtual_port_and_a_fresh_crc() {
    for method in [ForwardMethod::Nat, ForwardMethod::FullNat] {
        for v6 in [false, true] {
            let f = Fam::new(v6);
            let case = format!("{method:?} v6={v6}");
            let mut lab = Lab::new(&sctp_config(&f, method, 1));
            let out = lab.client_sends(&from_client(&f, CPORT, 0, &init_chunk()));
            assert_eq!(out.verdict, Verdict::Forward(INSIDE), "{case}");
            let to = match method {
                ForwardMethod::FullNat => (f.director_in, LPORT),
                _ => (f.client, CPORT),
            };
            let init_ack = chunk_bytes(chunk::INIT_ACK, 0, &[0x55; 20]);
            let reply = sctp(
                (real_server_mac(1), DIRECTOR_IN_MAC),
                (f.rs(1), RPORT),
                to,
                64,
                0x1122_3344,
                &init_ack,
            )
            .build();
            let want = sctp(
                (DIRECTOR_OUT_MAC, ROUTER_MAC),
                (f.vip, VPORT),
                (f.client, CPORT),
                63,
                0x1122_3344,
                &init_ack,
            )
            .build();
            let out = lab.server_sends(&reply);
            assert_eq!(out.verdict, Verdict::Forward(OUTSIDE), "{case}");
            assert_frames_eq(&out.frame, &want, &case);
            verify_sctp_frame(&out.frame);
            assert_eq!(lab.connections()[0].state_name, "C-SENT", "{case}");
            let snapshot = lab.engine.snapshot();
            let d = &snapshot.services()[0].dests[0].counters;
            assert_eq!(d.out_pkts.load(Ordering::Relaxed), 1, "{case}");
        }
    }
}

#[test]
fn nat_to_the_same_port_leaves_the_crc_alone() {
    // Addresses are outside the CRC32c: DNAT to the virtual port changes
    // no covered byte, so the checksum field is not recomputed (and a
    // wrong one stays wrong, for the real server to reject, as with
    // the kernel's sctp_dnat_handler).
    let f = Fam::new(false);
    let mut c = sctp_config(&f, ForwardMethod::Nat, 1);
    c.services[0].dests[0].port = VPORT;
    let mut lab = Lab::new(&c);
    let mut input = from_client(&f, CPORT, 0, &init_chunk());
    let crc_at = 14 + 20 + 8;
    input[crc_at] ^= 0xff;
    let out = lab.client_sends(&input);
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(out.frame[crc_at..crc_at + 4], input[crc_at..crc_at + 4]);
    let IpAddr::V4(rs) = f.rs(1) else {
        unreachable!("an IPv4 family")
    };
    assert_eq!(out.frame[14 + 16..14 + 20], rs.octets());
}

#[test]
fn only_an_init_schedules_an_association() {
    let f = Fam::new(false);
    let mut lab = Lab::new(&sctp_config(&f, ForwardMethod::Nat, 2));
    let abort = chunk_bytes(chunk::ABORT, 0, &[]);
    let cookie_echo = chunk_bytes(chunk::COOKIE_ECHO, 0, b"cookie");
    for chunks in [data_chunk(b"hi"), abort, cookie_echo] {
        let out = lab.client_sends(&from_client(&f, CPORT, 9, &chunks));
        assert_eq!(out.verdict, Verdict::Drop(DropReason::NoConnection));
    }
    assert!(lab.connections().is_empty());
    assert_eq!(
        lab.engine.counters().new_conns.load(Ordering::Relaxed),
        0,
        "nothing scheduled"
    );
    // A packet too short to hold a chunk is malformed, not ours to guess.
    let bare = from_client(&f, CPORT, 9, &[]);
    assert_eq!(
        lab.client_sends(&bare).verdict,
        Verdict::Drop(DropReason::Malformed)
    );
    let out = lab.client_sends(&from_client(&f, CPORT, 0, &init_chunk()));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(lab.connections().len(), 1);
}

#[test]
fn round_robin_spreads_associations_over_the_real_servers() {
    for v6 in [false, true] {
        let f = Fam::new(v6);
        let mut lab = Lab::new(&sctp_config(&f, ForwardMethod::Nat, 3));
        let mut seen = Vec::new();
        for i in 0..6u16 {
            let out = lab.client_sends(&from_client(&f, 40_000 + i, 0, &init_chunk()));
            assert_eq!(out.verdict, Verdict::Forward(INSIDE));
            seen.push(rs_of(&out));
            // Later packets of an association stay on its real server.
            let out = lab.client_sends(&from_client(&f, 40_000 + i, 5, &data_chunk(b"x")));
            assert_eq!(rs_of(&out), *seen.last().unwrap());
        }
        // The kernel's rr takes dests in list order, newest first.
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 1, 2, 2, 3, 3], "v6={v6}: {seen:?}");
        assert_eq!(seen[..3], seen[3..], "v6={v6}: a cycle repeats");
    }
}

/// Client and server packets of one association through a NAT director.
struct Assoc {
    lab: Lab,
    f: Fam,
}

impl Assoc {
    fn new(method: ForwardMethod) -> Assoc {
        let f = Fam::new(false);
        Assoc {
            lab: Lab::new(&sctp_config(&f, method, 1)),
            f,
        }
    }

    fn client(&mut self, chunks: &[u8]) -> Verdict {
        let frame = from_client(&self.f, CPORT, 1, chunks);
        self.lab.client_sends(&frame).verdict
    }

    fn server(&mut self, chunks: &[u8]) -> Verdict {
        let frame = sctp(
            (real_server_mac(1), DIRECTOR_IN_MAC),
            (self.f.rs(1), RPORT),
            (self.f.client, CPORT),
            64,
            2,
            chunks,
        )
        .build();
        self.lab.server_sends(&frame).verdict
    }

    fn state(&self) -> (&'static str, u64) {
        let conns = self.lab.connections();
        assert_eq!(conns.len(), 1);
        (conns[0].state_name, conns[0].remaining_ms / 1000)
    }

    fn active_inactive(&self) -> (u32, u32) {
        let snapshot = self.lab.engine.snapshot();
        let d = &snapshot.services()[0].dests[0].counters;
        (
            d.active.load(Ordering::Relaxed),
            d.inactive.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn a_whole_association_walks_the_kernels_states_with_their_timeouts() {
    let mut a = Assoc::new(ForwardMethod::Nat);
    let c = |t: u8| chunk_bytes(t, 0, &[]);
    assert_eq!(a.client(&init_chunk()), Verdict::Forward(INSIDE));
    assert_eq!(a.state(), ("INIT1", 4));
    assert_eq!(a.active_inactive(), (0, 1));
    assert_eq!(
        a.server(&chunk_bytes(chunk::INIT_ACK, 0, &[1; 16])),
        Verdict::Forward(OUTSIDE)
    );
    assert_eq!(a.state(), ("C-SENT", 61));
    assert_eq!(
        a.client(&chunk_bytes(chunk::COOKIE_ECHO, 0, b"cookie")),
        Verdict::Forward(INSIDE)
    );
    assert_eq!(a.state(), ("C-REPLIED", 61));
    assert_eq!(a.server(&c(chunk::COOKIE_ACK)), Verdict::Forward(OUTSIDE));
    assert_eq!(a.state(), ("ESTABLISHED", 900));
    assert_eq!(a.active_inactive(), (1, 0));
    assert_eq!(a.client(&data_chunk(b"ping")), Verdict::Forward(INSIDE));
    assert_eq!(a.server(&data_chunk(b"ping")), Verdict::Forward(OUTSIDE));
    assert_eq!(a.state(), ("ESTABLISHED", 900));
    a.lab.advance_secs(899);
    assert_eq!(a.state(), ("ESTABLISHED", 1), "the timer runs");
    assert_eq!(a.client(&c(chunk::SHUTDOWN)), Verdict::Forward(INSIDE));
    assert_eq!(a.state(), ("S-RECEIVED", 61));
    assert_eq!(a.active_inactive(), (0, 1));
    assert_eq!(a.server(&c(chunk::SHUTDOWN_ACK)), Verdict::Forward(OUTSIDE));
    assert_eq!(a.state(), ("S-ACK-SENT", 61));
    assert_eq!(
        a.client(&c(chunk::SHUTDOWN_COMPLETE)),
        Verdict::Forward(INSIDE)
    );
    assert_eq!(a.state(), ("CLOSED", 61));
    a.lab.advance_secs(61);
    a.lab.sweep();
    assert!(a.lab.connections().is_empty(), "CLOSED expires after 61 s");
    assert_eq!(a.active_inactive(), (0, 0));
}

#[test]
fn an_unanswered_init_expires_after_four_seconds_and_an_abort_rejects() {
    let mut a = Assoc::new(ForwardMethod::Nat);
    a.client(&init_chunk());
    a.lab.advance_secs(3);
    assert_eq!(a.state(), ("INIT1", 1));
    a.lab.advance_secs(1);
    a.lab.sweep();
    assert!(a.lab.connections().is_empty());

    let mut a = Assoc::new(ForwardMethod::Nat);
    a.client(&init_chunk());
    assert_eq!(
        a.server(&chunk_bytes(chunk::ABORT, 0, &[])),
        Verdict::Forward(OUTSIDE)
    );
    assert_eq!(a.state(), ("REJECTED", 4));
    // An INIT again: REJECTED → INIT (INPUT table).
    a.client(&init_chunk());
    assert_eq!(a.state(), ("INIT", 61));
}

#[test]
fn dr_associations_use_the_input_only_table() {
    // No output is seen through a DR director: the client's COOKIE ECHO
    // takes an INIT1 association straight to ESTABLISHED (INPUT_ONLY).
    let mut a = Assoc::new(ForwardMethod::Dr);
    a.client(&init_chunk());
    assert_eq!(a.state(), ("INIT1", 4));
    a.client(&chunk_bytes(chunk::COOKIE_ECHO, 0, b"cookie"));
    assert_eq!(a.state(), ("ESTABLISHED", 900));
    assert_eq!(a.active_inactive(), (1, 0));
    a.client(&chunk_bytes(chunk::ABORT, 0, &[]));
    assert_eq!(a.state(), ("CLOSED", 61));
}

#[test]
fn an_init_on_a_closed_association_is_scheduled_afresh() {
    let f = Fam::new(false);
    let mut lab = Lab::new(&sctp_config(&f, ForwardMethod::Dr, 2));
    let first = rs_of(&lab.client_sends(&from_client(&f, CPORT, 0, &init_chunk())));
    lab.client_sends(&from_client(
        &f,
        CPORT,
        1,
        &chunk_bytes(chunk::ABORT, 0, &[]),
    ));
    assert_eq!(lab.connections()[0].state_name, "CLOSED");
    let again = rs_of(&lab.client_sends(&from_client(&f, CPORT, 0, &init_chunk())));
    assert_ne!(
        first, again,
        "rescheduled by rr, not stuck to the old entry"
    );
    assert_eq!(lab.connections().len(), 1);
    assert_eq!(lab.connections()[0].state_name, "INIT1");
    assert_eq!(lab.engine.counters().new_conns.load(Ordering::Relaxed), 2);
    // Without conn_reuse_mode the INIT follows the closed entry.
    let mut c = sctp_config(&f, ForwardMethod::Dr, 2);
    c.engine.conn_reuse_mode = 0;
    let mut lab = Lab::new(&c);
    let first = rs_of(&lab.client_sends(&from_client(&f, CPORT, 0, &init_chunk())));
    lab.client_sends(&from_client(
        &f,
        CPORT,
        1,
        &chunk_bytes(chunk::ABORT, 0, &[]),
    ));
    let again = rs_of(&lab.client_sends(&from_client(&f, CPORT, 0, &init_chunk())));
    assert_eq!(first, again);
    assert_eq!(lab.connections()[0].state_name, "INIT");
}

#[test]
fn icmp_errors_quoting_an_association_follow_it() {
    for v6 in [false, true] {
        let f = Fam::new(v6);
        let mut lab = Lab::new(&sctp_config(&f, ForwardMethod::Nat, 1));
        let out = lab.client_sends(&from_client(&f, CPORT, 0, &init_chunk()));
        assert_eq!(out.verdict, Verdict::Forward(INSIDE));
        // The real server's side answers the forwarded INIT with an error
        // quoting it (client → real server:RPORT).
        let quoted = sctp(
            (DIRECTOR_IN_MAC, real_server_mac(1)),
            (f.client, CPORT),
            (f.rs(1), RPORT),
            63,
            0,
            &init_chunk(),
        )
        .build_ip();
        let (icmp_type, code) = if v6 { (1, 4) } else { (3, 3) };
        let error = PacketBuilder::new()
            .eth(real_server_mac(1), DIRECTOR_IN_MAC)
            .ip(f.rs(1), f.client)
            .icmp(icmp_type, code, 0)
            .payload(&quoted[..quoted.len().min(if v6 { 1232 } else { 548 })])
            .build();
        let out = lab.server_sends(&error);
        assert_eq!(out.verdict, Verdict::Forward(OUTSIDE), "v6={v6}");
        xmit_support::verify_checksums(&out.frame);
        let parsed = wire::parse_frame(&out.frame).expect("parses");
        assert_eq!(parsed.saddr, f.vip, "v6={v6}: outer source is the VIP");
        let inner = parsed.icmp_error.expect("still an ICMP error").inner;
        assert_eq!(inner.protocol, proto::SCTP);
        assert_eq!((inner.daddr, inner.dport), (f.vip, VPORT), "v6={v6}");
        assert_eq!((inner.saddr, inner.sport), (f.client, CPORT), "v6={v6}");
    }
}

#[test]
fn persistent_and_fwmark_sctp_services_schedule_and_stick() {
    let f = Fam::new(false);
    let mut c = sctp_config(&f, ForwardMethod::Dr, 3);
    c.services[0].persistence = persistence(300, 32);
    let mut lab = Lab::new(&c);
    let first = rs_of(&lab.client_sends(&from_client(&f, 40_001, 0, &init_chunk())));
    for port in 40_002..40_006 {
        let out = lab.client_sends(&from_client(&f, port, 0, &init_chunk()));
        assert_eq!(rs_of(&out), first, "the template keeps the client");
    }
    let templates: Vec<_> = lab
        .listing()
        .into_iter()
        .filter(|c| c.info.template)
        .collect();
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].info.key.protocol, proto::SCTP);

    // A fwmark service whose ranges name no protocol takes SCTP too.
    let mut fwm = service(
        Protocol::Sctp,
        f.vip,
        VPORT,
        SchedulerName::Rr,
        vec![dest(f.rs(2), 0, ForwardMethod::Dr, 1)],
    );
    fwm.key = ServiceKey::Fwmark {
        mark: 3,
        family: Family::V4,
    };
    fwm.fwmark_match = vec![FwmarkMatch {
        protocol: None,
        addr_first: f.vip,
        addr_last: f.vip,
        port_first: 0,
        port_last: 65_535,
    }];
    let mut lab = Lab::new(&config(vec![fwm]));
    let out = lab.client_sends(&from_client(&f, CPORT, 0, &init_chunk()));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE));
    assert_eq!(rs_of(&out), 2);
    let conns = lab.connections();
    assert_eq!(conns[0].info.state, ConnState::Sctp(SctpState::Init1));
}

#[test]
fn sctp_for_no_service_is_left_to_the_kernel() {
    let f = Fam::new(false);
    let mut lab = Lab::new(&sctp_config(&f, ForwardMethod::Nat, 1));
    let to_router = sctp(
        (ROUTER_MAC, DIRECTOR_OUT_MAC),
        (f.client, CPORT),
        (IpAddr::V4(ROUTER4), VPORT),
        64,
        0,
        &init_chunk(),
    )
    .build();
    let out = lab.client_sends(&to_router);
    assert_eq!(out.verdict, Verdict::Pass);
    assert_eq!(out.frame, to_router, "passed untouched");
    // The service's port on another protocol is not the SCTP service.
    let tcp = tcp_in(
        (f.client, CPORT),
        (f.vip, VPORT),
        uvs_engine::wire::tcp::SYN,
    );
    assert_eq!(lab.client_sends(&tcp).verdict, Verdict::Pass);
    assert!(lab.connections().is_empty());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Random SCTP packets (any chunk types and lengths), optionally
        /// mutated or cut, through every method: nothing panics, a
        /// forwarded frame parses again, and an intact input keeps a valid
        /// CRC32c (checked with the reference implementation).
        #[test]
        fn random_sctp_frames_stay_well_formed(
            v6 in any::<bool>(),
            method in 0usize..5,
            chunks in proptest::collection::vec((any::<u8>(), 0usize..48), 1..4),
            first_init in any::<bool>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let f = Fam::new(v6);
            let (m, _) = methods()[method];
            let mut lab = Lab::new(&sctp_config(&f, m, 2));
            let mut body = if first_init { init_chunk() } else { Vec::new() };
            for (t, len) in &chunks {
                body.extend(chunk_bytes(*t, 0, &vec![0x5a; *len]));
            }
            let mut input = from_client(&f, CPORT, 0, &body);
            let intact = edits.is_empty() && cut.is_none();
            for (at, value) in &edits {
                let i = 14 + at % (input.len() - 14);
                input[i] = *value;
            }
            if let Some(c) = cut {
                input.truncate(14 + c % (input.len() - 13));
            }
            for _ in 0..2 {
                let out = lab.client_sends(&input);
                if let Verdict::Forward(_) = out.verdict {
                    prop_assert!(wire::parse_frame(&out.frame).is_ok());
                    if intact {
                        prop_assert_eq!(verify_sctp_ip(&out.frame[14..]), 1);
                    }
                }
                if intact && first_init {
                    prop_assert_eq!(out.verdict, Verdict::Forward(INSIDE));
                }
            }
        }
    }
}
