//! The TCP state machine of IPVS (`ip_vs_proto_tcp.c`, normal table, not
//! `secure_tcp`): states, events by priority RST > SYN > FIN > ACK, the
//! INPUT, OUTPUT and INPUT_ONLY tables, per-state timeouts and the
//! active/inactive classification.

/// Flags of a TCP segment, as far as the state machine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
    /// ACK.
    pub ack: bool,
}

/// Whether a TCP segment with these flags may create a connection: only a
/// SYN without RST (IPVS without `sloppy_tcp`).
pub fn tcp_may_create(flags: TcpFlags) -> bool {
    flags.syn && !flags.rst
}

/// IPVS TCP connection states, in the kernel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// NONE (a fresh connection before its first segment).
    None = 0,
    /// ESTABLISHED.
    Established = 1,
    /// SYN_SENT.
    SynSent = 2,
    /// SYN_RECV.
    SynRecv = 3,
    /// FIN_WAIT.
    FinWait = 4,
    /// TIME_WAIT.
    TimeWait = 5,
    /// CLOSE.
    Close = 6,
    /// CLOSE_WAIT.
    CloseWait = 7,
    /// LAST_ACK.
    LastAck = 8,
    /// LISTEN.
    Listen = 9,
    /// SYNACK.
    SynAck = 10,
}

impl TcpState {
    /// Every state, in the kernel's order (the table's columns).
    pub const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state from its number; out-of-range numbers give CLOSE.
    pub fn from_index(index: u32) -> TcpState {
        TcpState::ALL
            .get(index as usize)
            .copied()
            .unwrap_or(TcpState::Close)
    }

    /// The name `ipvsadm -c` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether a connection in this state counts in ActiveConn
    /// (`tcp_state_active` of current kernels).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }

    /// The timeout of this state in seconds, with ESTABLISHED and
    /// FIN_WAIT taken from the configured `tcp` and `tcpfin` values.
    pub fn timeout_secs(self, tcp: u32, tcp_fin: u32) -> u32 {
        match self {
            TcpState::None => 2,
            TcpState::Established => tcp,
            TcpState::SynSent => 120,
            TcpState::SynRecv => 60,
            TcpState::FinWait => tcp_fin,
            TcpState::TimeWait => 120,
            TcpState::Close => 10,
            TcpState::CloseWait => 60,
            TcpState::LastAck => 30,
            TcpState::Listen => 120,
            TcpState::SynAck => 120,
        }
    }
}

/// Which transition table applies to a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpTable {
    /// Client → real server, once the director has seen the other way (NAT).
    Input,
    /// Real server → client.
    Output,
    /// Client → real server while no output was seen (DR, TUN).
    InputOnly,
}

// Column order: NO ES SS SR FW TW CL CW LA LI SA.
const NO: u8 = 0;
const ES: u8 = 1;
const SS: u8 = 2;
const SR: u8 = 3;
const FW: u8 = 4;
const TW: u8 = 5;
const CL: u8 = 6;
const CW: u8 = 7;
const LA: u8 = 8;
const LI: u8 = 9;

/// `[table][event][state]` with events syn, fin, ack, rst.
const TRANSITIONS: [[[u8; 11]; 4]; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

// NO is the table's name for NONE; keep the constant used.
const _: u8 = NO;

/// The next state for a segment with `flags` seen through `table` in
/// state `state`. Events by priority RST > SYN > FIN > ACK; a segment
/// with none of them sends the connection to CLOSE.
pub fn next_state(table: TcpTable, state: TcpState, flags: TcpFlags) -> TcpState {
    let event = if flags.rst {
        3
    } else if flags.syn {
        0
    } else if flags.fin {
        1
    } else if flags.ack {
        2
    } else {
        return TcpState::Close;
    };
    let table_index = match table {
        TcpTable::Input => 0,
        TcpTable::Output => 1,
        TcpTable::InputOnly => 2,
    };
    let next = TRANSITIONS
        .get(table_index)
        .and_then(|t| t.get(event))
        .and_then(|row| row.get(state as usize))
        .copied()
        .unwrap_or(CL);
    TcpState::from_index(u32::from(next))
}
