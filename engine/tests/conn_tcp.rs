//! The TCP state machine against the tables of reference/ipvsadm.md §5,
//! and whole connections driven through the table with their timeouts.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use uvs_conf::ForwardMethod;
use uvs_engine::conn::tcp::{next_state, TcpTable};
use uvs_engine::conn::{
    tcp_may_create, ConnKey, ConnState, ConnTable, ConnTableConfig, Direction, NewConn,
    PacketOutcome, TcpFlags, TcpState,
};
use uvs_engine::dest::{DestId, DestRegistry};
use uvs_engine::time::Millis;

/// The reference's table, copied as text: columns NO ES SS SR FW TW CL CW LA LI SA.
const REFERENCE: &str = "
IN  syn SR ES ES SR SR SR SR SR SR SR SR | OUT syn SS ES SS SR SS SS SS SS SS LI SR
IN  fin CL CW SS TW TW TW CL CW LA LI TW | OUT fin TW FW SS TW FW TW CL TW LA LI TW
IN  ack ES ES SS ES FW TW CL CW CL LI ES | OUT ack ES ES SS ES FW TW CL CW LA ES ES
IN  rst CL CL CL SR CL CL CL CL LA LI SR | OUT rst CL CL SS CL CL TW CL CL CL CL CL
IO  syn SR ES ES SR SR SR SR SR SR SR SR | IO  fin CL FW SS TW FW TW CL CW LA LI TW
IO  ack ES ES SS ES FW TW CL CW CL LI ES | IO  rst CL CL CL SR CL CL CL CL LA LI CL
";

fn state_of(abbrev: &str) -> TcpState {
    match abbrev {
        "NO" => TcpState::None,
        "ES" => TcpState::Established,
        "SS" => TcpState::SynSent,
        "SR" => TcpState::SynRecv,
        "FW" => TcpState::FinWait,
        "TW" => TcpState::TimeWait,
        "CL" => TcpState::Close,
        "CW" => TcpState::CloseWait,
        "LA" => TcpState::LastAck,
        "LI" => TcpState::Listen,
        "SA" => TcpState::SynAck,
        other => panic!("unknown state {other}"),
    }
}

fn flags_of(event: &str) -> TcpFlags {
    let mut flags = TcpFlags::default();
    match event {
        "syn" => flags.syn = true,
        "fin" => flags.fin = true,
        "ack" => flags.ack = true,
        "rst" => flags.rst = true,
        other => panic!("unknown event {other}"),
    }
    flags
}

#[test]
fn every_transition_matches_the_reference_table() {
    let mut checked = 0;
    for line in REFERENCE.lines().filter(|l| !l.trim().is_empty()) {
        for half in line.split('|') {
            let words: Vec<&str> = half.split_whitespace().collect();
            assert_eq!(words.len(), 13, "row {half}");
            let table = match words[0] {
                "IN" => TcpTable::Input,
                "OUT" => TcpTable::Output,
                "IO" => TcpTable::InputOnly,
                other => panic!("unknown table {other}"),
            };
            let flags = flags_of(words[1]);
            for (column, expected) in words[2..].iter().enumerate() {
                let from = TcpState::ALL[column];
                assert_eq!(
                    next_state(table, from, flags),
                    state_of(expected),
                    "{table:?} {} from {from:?}",
                    words[1]
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 4 * 11);
}

#[test]
fn event_priority_is_rst_syn_fin_ack_and_no_flag_closes() {
    let all = TcpFlags {
        syn: true,
        fin: true,
        rst: true,
        ack: true,
    };
    // All four flags: RST wins (ES → CLOSE).
    assert_eq!(
        next_state(TcpTable::Input, TcpState::Established, all),
        TcpState::Close
    );
    let syn_fin = TcpFlags {
        syn: true,
        fin: true,
        ..TcpFlags::default()
    };
    assert_eq!(
        next_state(TcpTable::Input, TcpState::Established, syn_fin),
        TcpState::Established
    );
    let fin_ack = TcpFlags {
        fin: true,
        ack: true,
        ..TcpFlags::default()
    };
    assert_eq!(
        next_state(TcpTable::Input, TcpState::Established, fin_ack),
        TcpState::CloseWait
    );
    assert_eq!(
        next_state(TcpTable::Input, TcpState::Established, TcpFlags::default()),
        TcpState::Close
    );
}

#[test]
fn state_timeouts_follow_the_reference() {
    let expected = [
        (TcpState::None, 2),
        (TcpState::Established, 900),
        (TcpState::SynSent, 120),
        (TcpState::SynRecv, 60),
        (TcpState::FinWait, 120),
        (TcpState::TimeWait, 120),
        (TcpState::Close, 10),
        (TcpState::CloseWait, 60),
        (TcpState::LastAck, 30),
        (TcpState::Listen, 120),
        (TcpState::SynAck, 120),
    ];
    for (state, secs) in expected {
        assert_eq!(state.timeout_secs(900, 120), secs, "{state:?}");
    }
    assert_eq!(TcpState::Established.timeout_secs(77, 5), 77);
    assert_eq!(TcpState::FinWait.timeout_secs(77, 5), 5);
    let active: Vec<TcpState> = TcpState::ALL
        .into_iter()
        .filter(|s| s.is_active())
        .collect();
    assert_eq!(
        active,
        vec![
            TcpState::Established,
            TcpState::SynSent,
            TcpState::SynRecv,
            TcpState::SynAck
        ]
    );
}

#[test]
fn only_a_syn_without_rst_creates_a_connection() {
    let syn = TcpFlags {
        syn: true,
        ..TcpFlags::default()
    };
    assert!(tcp_may_create(syn));
    assert!(tcp_may_create(TcpFlags { ack: true, ..syn }));
    assert!(!tcp_may_create(TcpFlags { rst: true, ..syn }));
    assert!(!tcp_may_create(TcpFlags {
        ack: true,
        ..TcpFlags::default()
    }));
    assert!(!tcp_may_create(TcpFlags {
        rst: true,
        ..TcpFlags::default()
    }));
}

// ---- through the table ------------------------------------------------------

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn setup() -> (Arc<DestRegistry>, ConnTable, DestId) {
    let registry = Arc::new(DestRegistry::new(8));
    let (dest, _) = registry.allocate(1, 0, 0).expect("registry has room");
    let config = ConnTableConfig {
        capacity: 64,
        ..ConnTableConfig::default()
    };
    (
        Arc::clone(&registry),
        ConnTable::new(config, registry),
        dest,
    )
}

fn tcp_key(cport: u16) -> ConnKey {
    ConnKey {
        protocol: 6,
        caddr: v4(10, 0, 0, 1),
        cport,
        vaddr: v4(192, 168, 0, 100),
        vport: 80,
    }
}

fn flags(spec: &str) -> TcpFlags {
    TcpFlags {
        syn: spec.contains('S'),
        fin: spec.contains('F'),
        rst: spec.contains('R'),
        ack: spec.contains('A'),
    }
}

/// Drive one connection through `steps` (direction, flags, expected state,
/// expected timeout, expected active, expected inactive).
fn drive(method: ForwardMethod, steps: &[(Direction, &str, TcpState, u32, u32, u32)]) {
    let (registry, table, dest) = setup();
    let conn = table
        .insert(
            &NewConn {
                key: tcp_key(40000),
                fwmark: 0,
                dest,
                daddr: v4(10, 1, 0, 2),
                dport: 8080,
                method,
                controlled_by: None,
            },
            Millis(0),
        )
        .expect("insert");
    let counters = registry.counters(dest).expect("dest");
    assert_eq!(
        (counters.active(), counters.inactive()),
        (0, 1),
        "new conn is inactive"
    );
    assert_eq!(conn.info().state, ConnState::Tcp(TcpState::None));
    assert_eq!(conn.remaining_ms(Millis(0)), 2_000, "NONE timeout");
    let mut now = Millis(1_000);
    for (i, &(dir, spec, state, timeout, active, inactive)) in steps.iter().enumerate() {
        let outcome = conn.on_packet(dir, Some(flags(spec)), now);
        assert_eq!(
            outcome,
            PacketOutcome::Forward {
                state: ConnState::Tcp(state),
                timeout_secs: timeout
            },
            "step {i} {dir:?} {spec}"
        );
        assert_eq!(
            conn.remaining_ms(now),
            u64::from(timeout) * 1000,
            "step {i}"
        );
        assert_eq!(
            (counters.active(), counters.inactive()),
            (active, inactive),
            "counts after step {i}"
        );
        now = now.plus_secs(1);
    }
}

#[test]
fn nat_connection_life_through_input_and_output_tables() {
    use Direction::{Input as I, Output as O};
    use TcpState::*;
    drive(
        ForwardMethod::Nat,
        &[
            (I, "S", SynRecv, 60, 1, 0),
            (O, "SA", SynRecv, 60, 1, 0),
            (I, "A", Established, 900, 1, 0),
            (I, "FA", CloseWait, 60, 0, 1),
            (O, "FA", TimeWait, 120, 0, 1),
            (I, "A", TimeWait, 120, 0, 1),
            (I, "R", Close, 10, 0, 1),
        ],
    );
}

#[test]
fn nat_server_close_and_server_sent_syn_paths() {
    use Direction::{Input as I, Output as O};
    use TcpState::*;
    drive(
        ForwardMethod::Nat,
        &[
            (I, "S", SynRecv, 60, 1, 0),
            (I, "A", Established, 900, 1, 0),
            (O, "FA", FinWait, 120, 0, 1),
            (I, "FA", TimeWait, 120, 0, 1),
        ],
    );
    drive(
        ForwardMethod::Nat,
        &[
            (O, "S", SynSent, 120, 1, 0),
            (O, "A", SynSent, 120, 1, 0),
            (I, "A", SynSent, 120, 1, 0),
            (I, "R", Close, 10, 0, 1),
            (I, "S", SynRecv, 60, 1, 0),
        ],
    );
}

#[test]
fn dr_uses_input_only_until_an_output_packet_is_seen() {
    use Direction::{Input as I, Output as O};
    use TcpState::*;
    // Without output: IO fin from ES goes to FIN_WAIT (tcpfin).
    drive(
        ForwardMethod::Dr,
        &[
            (I, "S", SynRecv, 60, 1, 0),
            (I, "A", Established, 900, 1, 0),
            (I, "FA", FinWait, 120, 0, 1),
            (I, "A", FinWait, 120, 0, 1),
            (I, "R", Close, 10, 0, 1),
        ],
    );
    // After one output packet, the INPUT table applies: fin from ES → CLOSE_WAIT.
    drive(
        ForwardMethod::Dr,
        &[
            (I, "S", SynRecv, 60, 1, 0),
            (O, "SA", SynRecv, 60, 1, 0),
            (I, "A", Established, 900, 1, 0),
            (I, "FA", CloseWait, 60, 0, 1),
        ],
    );
    // INPUT_ONLY rst from SYNACK closes where INPUT stays in SYN_RECV: checked
    // in the table test; here the rst from SR on IO stays SR.
    drive(
        ForwardMethod::Dr,
        &[(I, "S", SynRecv, 60, 1, 0), (I, "R", SynRecv, 60, 1, 0)],
    );
}

#[test]
fn configured_timeouts_apply_to_established_and_fin_wait() {
    let (_registry, table, dest) = setup();
    table.set_timeouts(uvs_conf::Timeouts {
        tcp: 33,
        tcp_fin: 0,
        udp: 0,
    });
    let timeouts = table.timeouts();
    assert_eq!(
        (timeouts.tcp, timeouts.tcp_fin, timeouts.udp),
        (33, 120, 300)
    );
    table.set_timeouts(uvs_conf::Timeouts {
        tcp: 0,
        tcp_fin: 7,
        udp: 9,
    });
    let conn = table
        .insert(
            &NewConn {
                key: tcp_key(1),
                fwmark: 0,
                dest,
                daddr: v4(10, 1, 0, 2),
                dport: 80,
                method: ForwardMethod::Dr,
                controlled_by: None,
            },
            Millis(0),
        )
        .expect("insert");
    conn.on_packet(Direction::Input, Some(flags("S")), Millis(0));
    let established = conn.on_packet(Direction::Input, Some(flags("A")), Millis(0));
    assert_eq!(
        established,
        PacketOutcome::Forward {
            state: ConnState::Tcp(TcpState::Established),
            timeout_secs: 33
        }
    );
    let fin = conn.on_packet(Direction::Input, Some(flags("F")), Millis(0));
    assert_eq!(
        fin,
        PacketOutcome::Forward {
            state: ConnState::Tcp(TcpState::FinWait),
            timeout_secs: 7
        }
    );
}
