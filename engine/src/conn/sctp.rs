//! The SCTP state machine of IPVS (`ip_vs_proto_sctp.c`): states as the
//! real server sees the association, events by chunk type
//! (`sctp_events`), the INPUT, OUTPUT and INPUT_ONLY tables
//! (`sctp_states`), per-state timeouts (`sctp_timeouts`), the names
//! `ipvsadm -c` prints (`sctp_state_name_table`) and the active/inactive
//! rule (only ESTABLISHED is active). A new association is scheduled only
//! on an INIT chunk (`sctp_conn_schedule` without `sloppy_sctp`; an ABORT
//! never schedules), and `conn_reuse_mode` reschedules an INIT that finds
//! a CLOSED association (`is_new_conn_expected`).

use crate::conn::TcpTable;
use crate::wire::sctp::chunk;

/// IPVS SCTP association states, in the kernel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SctpState {
    /// NONE (a fresh entry before its first packet).
    None = 0,
    /// INIT1: first INIT from the client, waiting for INIT ACK.
    Init1 = 1,
    /// INIT: a further INIT from the client.
    Init = 2,
    /// C-SENT: the server's INIT ACK was sent.
    CookieSent = 3,
    /// C-REPLIED: the client's COOKIE ECHO was sent.
    CookieReplied = 4,
    /// C-WAIT: the server sent an INIT (server-initiated setup).
    CookieWait = 5,
    /// COOKIE: the client answered the server's INIT with INIT ACK.
    Cookie = 6,
    /// C-ECHOED: the server sent COOKIE ECHO.
    CookieEchoed = 7,
    /// ESTABLISHED.
    Established = 8,
    /// S-SENT: SHUTDOWN sent by the server.
    ShutdownSent = 9,
    /// S-RECEIVED: SHUTDOWN sent by the client.
    ShutdownReceived = 10,
    /// S-ACK-SENT: SHUTDOWN ACK sent by the server.
    ShutdownAckSent = 11,
    /// REJECTED: the INIT was answered with ABORT.
    Rejected = 12,
    /// CLOSED.
    Closed = 13,
}

/// What a packet means to the state machine (`ipvs_sctp_event_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SctpEvent {
    /// DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR and unknown chunk types.
    Data = 0,
    /// INIT.
    Init = 1,
    /// INIT ACK.
    InitAck = 2,
    /// COOKIE ECHO.
    CookieEcho = 3,
    /// COOKIE ACK.
    CookieAck = 4,
    /// SHUTDOWN.
    Shutdown = 5,
    /// SHUTDOWN ACK.
    ShutdownAck = 6,
    /// SHUTDOWN COMPLETE.
    ShutdownComplete = 7,
    /// ERROR.
    Error = 8,
    /// ABORT.
    Abort = 9,
}

impl SctpEvent {
    /// The event of a chunk type (`sctp_events`; types the table does
    /// not list count as DATA).
    pub fn from_chunk(chunk_type: u8) -> SctpEvent {
        match chunk_type {
            chunk::INIT => SctpEvent::Init,
            chunk::INIT_ACK => SctpEvent::InitAck,
            chunk::ABORT => SctpEvent::Abort,
            chunk::SHUTDOWN => SctpEvent::Shutdown,
            chunk::SHUTDOWN_ACK => SctpEvent::ShutdownAck,
            chunk::ERROR => SctpEvent::Error,
            chunk::COOKIE_ECHO => SctpEvent::CookieEcho,
            chunk::COOKIE_ACK => SctpEvent::CookieAck,
            chunk::SHUTDOWN_COMPLETE => SctpEvent::ShutdownComplete,
            _ => SctpEvent::Data,
        }
    }
}

/// Whether a packet whose state chunk is `chunk_type` may create an
/// association: only an INIT (never an ABORT), as `sctp_conn_schedule`
/// without `sloppy_sctp`.
pub fn sctp_may_create(chunk_type: u8) -> bool {
    chunk_type == chunk::INIT
}

impl SctpState {
    /// Every state, in the kernel's order (the tables' columns).
    pub const ALL: [SctpState; 14] = [
        SctpState::None,
        SctpState::Init1,
        SctpState::Init,
        SctpState::CookieSent,
        SctpState::CookieReplied,
        SctpState::CookieWait,
        SctpState::Cookie,
        SctpState::CookieEchoed,
        SctpState::Established,
        SctpState::ShutdownSent,
        SctpState::ShutdownReceived,
        SctpState::ShutdownAckSent,
        SctpState::Rejected,
        SctpState::Closed,
    ];

    /// The state from its number; out-of-range numbers give CLOSED.
    pub fn from_index(index: u32) -> SctpState {
        SctpState::ALL
            .get(index as usize)
            .copied()
            .unwrap_or(SctpState::Closed)
    }

    /// The name `ipvsadm -c` prints (`sctp_state_name_table`).
    pub fn name(self) -> &'static str {
        match self {
            SctpState::None => "NONE",
            SctpState::Init1 => "INIT1",
            SctpState::Init => "INIT",
            SctpState::CookieSent => "C-SENT",
            SctpState::CookieReplied => "C-REPLIED",
            SctpState::CookieWait => "C-WAIT",
            SctpState::Cookie => "COOKIE",
            SctpState::CookieEchoed => "C-ECHOED",
            SctpState::Established => "ESTABLISHED",
            SctpState::ShutdownSent => "S-SENT",
            SctpState::ShutdownReceived => "S-RECEIVED",
            SctpState::ShutdownAckSent => "S-ACK-SENT",
            SctpState::Rejected => "REJECTED",
            SctpState::Closed => "CLOSED",
        }
    }

    /// Whether an association in this state counts in ActiveConn: only
    /// ESTABLISHED (`set_sctp_state`).
    pub fn is_active(self) -> bool {
        self == SctpState::Established
    }

    /// The timeout of this state in seconds (`sctp_timeouts`: NONE 2,
    /// INIT1 and REJECTED 4, ESTABLISHED 900, the rest the maximum RTO
    /// of 61). `ipvsadm --set` does not change them.
    pub fn timeout_secs(self) -> u32 {
        match self {
            SctpState::None => 2,
            SctpState::Init1 | SctpState::Rejected => 4,
            SctpState::Established => 15 * 60,
            _ => 61,
        }
    }
}

// Column order: NO I1 IN CS CR CW CO CE ES SS SR SA RJ CL.
const NO: u8 = 0;
const I1: u8 = 1;
const IN: u8 = 2;
const CS: u8 = 3;
const CR: u8 = 4;
const CW: u8 = 5;
const CO: u8 = 6;
const CE: u8 = 7;
const ES: u8 = 8;
const SS: u8 = 9;
const SR: u8 = 10;
const SA: u8 = 11;
const RJ: u8 = 12;
const CL: u8 = 13;

// NO is the table's name for NONE; it only heads the columns.
const _: u8 = NO;

/// `sctp_states[table][event][state]`: rows are the events DATA, INIT,
/// INIT ACK, COOKIE ECHO, COOKIE ACK, SHUTDOWN, SHUTDOWN ACK, SHUTDOWN
/// COMPLETE, ERROR, ABORT.
const TRANSITIONS: [[[u8; 14]; 10]; 3] = [
    // INPUT
    [
        [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
        [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
        [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
        [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // OUTPUT
    [
        [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
        [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
        [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
        [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
        [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY
    [
        [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
        [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
        [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
        [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

/// The next state for a packet whose state chunk is `chunk_type`, seen
/// through `table` (the TCP tables' INPUT / OUTPUT / INPUT_ONLY choice
/// applies unchanged) in state `state`.
pub fn next_state(table: TcpTable, state: SctpState, chunk_type: u8) -> SctpState {
    let table_index = match table {
        TcpTable::Input => 0,
        TcpTable::Output => 1,
        TcpTable::InputOnly => 2,
    };
    let event = SctpEvent::from_chunk(chunk_type) as usize;
    let next = TRANSITIONS
        .get(table_index)
        .and_then(|t| t.get(event))
        .and_then(|row| row.get(state as usize))
        .copied()
        .unwrap_or(CL);
    SctpState::from_index(u32::from(next))
}
