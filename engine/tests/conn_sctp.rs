//! The SCTP state machine against the kernel's own text: every cell of
//! `sctp_states` (INPUT, OUTPUT, INPUT-ONLY × 10 events × 14 states) as
//! `ip_vs_proto_sctp.c` writes it, the event of each chunk type, the
//! state names, timeouts and the active rule; then the connection table
//! running an association with an injected clock.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use uvs_conf::ForwardMethod;
use uvs_engine::conn::sctp::{next_state, sctp_may_create, SctpEvent, SctpState};
use uvs_engine::conn::{
    ConnKey, ConnState, ConnTable, ConnTableConfig, Direction, NewConn, PacketOutcome, TcpTable,
};
use uvs_engine::dest::DestRegistry;
use uvs_engine::time::Millis;
use uvs_engine::wire::sctp::chunk;

/// `sctp_states` as the kernel source writes it (rows d, i, i_a, c_e,
/// c_a, s, s_a, s_c, err, ab; columns sNO .. sCL).
const KERNEL_TABLE: &str = "
INPUT
/* d   */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sI1, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN},
/* i_a */{sCW, sCW, sCW, sCS, sCR, sCO, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sCR, sIN, sIN, sCR, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sES, sCL, sSR, sCL, sRJ, sCL},
/* s_c */{sCL, sCL, sCL, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sCL, sRJ, sCL},
/* err */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCL, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
OUTPUT
/* d   */{sES, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sCW, sCW, sCW, sCW, sCW, sCW, sCW, sCW, sES, sCW, sCW, sCW, sCW, sCW},
/* i_a */{sCS, sCS, sCS, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sCE, sCE, sCE, sCE, sCE, sCE, sCE, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sES, sES, sES, sES, sES, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sSA, sSA, sSA, sSA, sSA, sCW, sCO, sCE, sES, sSA, sSA, sSA, sRJ, sCL},
/* s_c */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* err */{sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
INPUT-ONLY
/* d   */{sES, sI1, sIN, sCS, sCR, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* i   */{sI1, sIN, sIN, sIN, sIN, sIN, sCO, sCE, sES, sSS, sSR, sSA, sIN, sIN},
/* i_a */{sCE, sCE, sCE, sCE, sCE, sCE, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_e */{sES, sES, sES, sES, sES, sES, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* c_a */{sES, sI1, sIN, sES, sES, sCW, sES, sES, sES, sSS, sSR, sSA, sRJ, sCL},
/* s   */{sSR, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sSR, sSS, sSR, sSA, sRJ, sCL},
/* s_a */{sCL, sIN, sIN, sCS, sCR, sCW, sCO, sCE, sCL, sCL, sSR, sCL, sRJ, sCL},
/* s_c */{sCL, sCL, sCL, sCL, sCL, sCW, sCO, sCE, sES, sSS, sCL, sCL, sRJ, sCL},
/* err */{sCL, sI1, sIN, sCS, sCR, sCW, sCO, sCE, sES, sSS, sSR, sSA, sRJ, sCL},
/* ab  */{sCL, sCL, sCL, sCL, sCL, sRJ, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
";

fn state_of(token: &str) -> SctpState {
    match token {
        "sNO" => SctpState::None,
        "sI1" => SctpState::Init1,
        "sIN" => SctpState::Init,
        "sCS" => SctpState::CookieSent,
        "sCR" => SctpState::CookieReplied,
        "sCW" => SctpState::CookieWait,
        "sCO" => SctpState::Cookie,
        "sCE" => SctpState::CookieEchoed,
        "sES" => SctpState::Established,
        "sSS" => SctpState::ShutdownSent,
        "sSR" => SctpState::ShutdownReceived,
        "sSA" => SctpState::ShutdownAckSent,
        "sRJ" => SctpState::Rejected,
        "sCL" => SctpState::Closed,
        other => panic!("unknown state {other}"),
    }
}

/// One chunk type per event row, in the kernel's row order.
const ROW_CHUNKS: [u8; 10] = [
    chunk::DATA,
    chunk::INIT,
    chunk::INIT_ACK,
    chunk::COOKIE_ECHO,
    chunk::COOKIE_ACK,
    chunk::SHUTDOWN,
    chunk::SHUTDOWN_ACK,
    chunk::SHUTDOWN_COMPLETE,
    chunk::ERROR,
    chunk::ABORT,
];

#[test]
fn every_cell_matches_the_kernel_table() {
    let mut table = TcpTable::Input;
    let mut row = 0;
    let mut cells = 0;
    for line in KERNEL_TABLE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        match line {
            "INPUT" => (table, row) = (TcpTable::Input, 0),
            "OUTPUT" => (table, row) = (TcpTable::Output, 0),
            "INPUT-ONLY" => (table, row) = (TcpTable::InputOnly, 0),
            _ => {
                let body = &line[line.find('{').unwrap() + 1..line.find('}').unwrap()];
                for (column, token) in body.split(',').map(str::trim).enumerate() {
                    let from = SctpState::ALL[column];
                    let got = next_state(table, from, ROW_CHUNKS[row]);
                    assert_eq!(
                        got,
                        state_of(token),
                        "{table:?} row {row} from {}",
                        from.name()
                    );
                    cells += 1;
                }
                row += 1;
            }
        }
    }
    assert_eq!(cells, 3 * 10 * 14);
}

#[test]
fn chunk_types_map_to_the_kernels_events() {
    let data_like = [
        chunk::DATA,
        chunk::SACK,
        chunk::HEARTBEAT,
        chunk::HEARTBEAT_ACK,
        chunk::ECNE,
        chunk::CWR,
        15,
        64,
        0xc0,
        0xff,
    ];
    for t in data_like {
        assert_eq!(SctpEvent::from_chunk(t), SctpEvent::Data, "type {t}");
    }
    assert_eq!(SctpEvent::from_chunk(chunk::ABORT), SctpEvent::Abort);
    assert_eq!(
        SctpEvent::from_chunk(chunk::SHUTDOWN_COMPLETE),
        SctpEvent::ShutdownComplete
    );
    assert!(sctp_may_create(chunk::INIT));
    for t in (0..=255u8).filter(|&t| t != chunk::INIT) {
        assert!(!sctp_may_create(t), "type {t} must not schedule");
    }
}

#[test]
fn names_timeouts_and_the_active_rule() {
    let expected = [
        ("NONE", 2),
        ("INIT1", 4),
        ("INIT", 61),
        ("C-SENT", 61),
        ("C-REPLIED", 61),
        ("C-WAIT", 61),
        ("COOKIE", 61),
        ("C-ECHOED", 61),
        ("ESTABLISHED", 900),
        ("S-SENT", 61),
        ("S-RECEIVED", 61),
        ("S-ACK-SENT", 61),
        ("REJECTED", 4),
        ("CLOSED", 61),
    ];
    for (state, (name, secs)) in SctpState::ALL.iter().zip(expected) {
        assert_eq!(state.name(), name);
        assert_eq!(state.timeout_secs(), secs, "{name}");
        assert_eq!(state.is_active(), name == "ESTABLISHED", "{name}");
        assert_eq!(ConnState::Sctp(*state).name(), name);
    }
    assert_eq!(SctpState::from_index(99), SctpState::Closed);
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

#[test]
fn the_table_runs_an_association_with_its_timeouts() {
    let dests = Arc::new(DestRegistry::new(16));
    let (dest, _) = dests.allocate(1, 0, 0).expect("room");
    let table = ConnTable::new(
        ConnTableConfig {
            capacity: 64,
            ..ConnTableConfig::default()
        },
        Arc::clone(&dests),
    );
    let now = Millis(5_000_000);
    let key = ConnKey {
        protocol: 132,
        caddr: v4(1),
        cport: 5000,
        vaddr: v4(2),
        vport: 3868,
    };
    let conn = table
        .insert(
            &NewConn {
                key,
                fwmark: 0,
                dest,
                daddr: v4(3),
                dport: 3868,
                method: ForwardMethod::Nat,
                controlled_by: None,
            },
            now,
        )
        .expect("inserted");
    assert_eq!(conn.info().state, ConnState::Sctp(SctpState::None));
    let steps = [
        (Direction::Input, chunk::INIT, SctpState::Init1, 4),
        (
            Direction::Output,
            chunk::INIT_ACK,
            SctpState::CookieSent,
            61,
        ),
        (
            Direction::Input,
            chunk::COOKIE_ECHO,
            SctpState::CookieReplied,
            61,
        ),
        (
            Direction::Output,
            chunk::COOKIE_ACK,
            SctpState::Established,
            900,
        ),
        (
            Direction::Output,
            chunk::HEARTBEAT,
            SctpState::Established,
            900,
        ),
        (
            Direction::Output,
            chunk::SHUTDOWN,
            SctpState::ShutdownSent,
            61,
        ),
        (Direction::Input, chunk::SHUTDOWN_ACK, SctpState::Closed, 61),
    ];
    let counters = dests.counters(dest).expect("counters");
    for (dir, chunk_type, state, secs) in steps {
        assert_eq!(
            conn.on_sctp_packet(dir, chunk_type, now),
            PacketOutcome::Forward {
                state: ConnState::Sctp(state),
                timeout_secs: secs
            },
            "{dir:?} chunk {chunk_type}"
        );
        let active = counters.active.load(std::sync::atomic::Ordering::Relaxed);
        let inactive = counters.inactive.load(std::sync::atomic::Ordering::Relaxed);
        let want = if state.is_active() { (1, 0) } else { (0, 1) };
        assert_eq!((active, inactive), want, "{}", state.name());
    }
    // CLOSED lives 61 s: found at 60 s, gone at 61 s.
    assert!(table.lookup_in(&key, now.plus_secs(60)).is_some());
    assert!(table.lookup_in(&key, now.plus_secs(61)).is_none());
}
