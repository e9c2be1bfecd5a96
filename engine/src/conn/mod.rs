//! The connection table: every tracked connection and persistence
//! template, their TCP/UDP/SCTP state machines, timeouts and expiry.
//!
//! [`ConnTable`] is shared by the worker threads through an `Arc`. What it
//! promises:
//!
//! - **Lock-free lookups.** [`ConnTable::lookup_in`] (client → director),
//!   [`ConnTable::lookup_out`] (the reply tuple of NAT and full-NAT
//!   connections) and [`ConnTable::lookup_template`] take no lock: each
//!   entry is read under a sequence counter and each hash bucket carries a
//!   version that changes bump, so a lookup that raced a removal
//!   retries instead of missing. Inserts and removals take a one-bit spin
//!   lock on the buckets they change.
//! - **Two cache lines per hit.** The in-index (every packet's lookup) is
//!   an array of 64-byte buckets, each with 12 lanes holding an entry's
//!   index and a tag of its key's hash, and a summary word of 4-bit
//!   mini-tags that says in one load which lanes may hold a key; a
//!   lookup reads the one entry whose full tag matches: the bucket's
//!   line and the entry's hot line, with no chain to walk (a full bucket
//!   overflows into a chain, rarely: 4 to 8 entries per bucket when the
//!   table is full). The out-index (replies of NAT and full NAT) is
//!   chained, tags in the links.
//! - **Bounded memory, allocated once.** The capacity is configuration;
//!   entries and hash buckets are allocated when the table is made, never
//!   per packet or per connection. An IPv4 connection costs at most 128
//!   bytes, index included ([`ConnTable::bytes_per_conn`]). When every
//!   entry is taken, a new connection is refused with
//!   [`InsertError::TableFull`] and counted in
//!   [`ConnTableStats::full_drops`]: like IPVS when it cannot allocate a
//!   connection, the new connection is dropped and no existing one is
//!   evicted.
//! - **Expiry by timer, not by scan.** Each entry has a deadline re-armed
//!   by its packets. [`ConnTable::expire_step`] visits at most `budget`
//!   entries from a moving cursor; [`ConnTable::expire_due`] paces it by
//!   the clock, so that the cursor goes round the used part of the table
//!   (every slot ever live: the free list hands out slots in index
//!   order and reuses freed ones first) once per [`SWEEP_PERIOD_MS`]
//!   whatever the packet rate (the expiry work per second scales with
//!   the connections the table has held, not with the traffic or the
//!   capacity). Lookups treat
//!   an entry past its deadline as absent. The side effects of expiry (destination
//!   counters, overload rule, template control counts, full-NAT local
//!   port release, destination references) run exactly once, for the
//!   thread that wins the compare-and-swap of the entry's state word.
//! - **IPVS semantics**: the TCP tables of [`tcp`], the SCTP tables of
//!   [`sctp`], UDP conns inactive with the UDP timeout, persistence templates in the same table,
//!   `expire_nodest_conn`, `expire_quiescent_template`, `conn_reuse_mode`,
//!   upper and lower thresholds, as `reference/ipvsadm.md` §5 states them.

pub mod sctp;
mod slot;
mod storage;
mod table;
pub mod tcp;

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use uvs_conf::{ForwardMethod, LocalAddrPool, Timeouts};

use crate::dest::DestId;

pub use sctp::{sctp_may_create, SctpEvent, SctpState};
pub use table::{
    ConnRef, ConnTable, InKeyHash, OutKeyHash, PeListing, PeStats, MAX_BYTES_PER_CONN,
    MAX_PE_SLOTS, SWEEP_MAX_PER_CALL, SWEEP_PERIOD_MS,
};
pub use tcp::{tcp_may_create, TcpFlags, TcpState, TcpTable};

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;

/// Seconds an expiring template that still controls connections lives on
/// (IPVS's `expire_later`).
pub const TEMPLATE_CONTROL_EXTENSION_SECS: u32 = 60;

/// How a [`ConnTable`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnTableConfig {
    /// Maximum entries (connections and templates) alive at once.
    pub capacity: u32,
    /// Initial timeouts (`--set`).
    pub timeouts: Timeouts,
    /// Expire a connection when a packet finds its real server deleted.
    pub expire_nodest_conn: bool,
    /// Treat a template whose real server has weight 0 as invalid.
    pub expire_quiescent_template: bool,
    /// `conn_reuse_mode`: 0 = off, bit 0 = on, bit 1 adds FIN_WAIT with
    /// no output seen.
    pub conn_reuse_mode: u8,
    /// Local addresses and ports for full-NAT connections.
    pub fullnat_pool: LocalAddrPool,
}

impl Default for ConnTableConfig {
    fn default() -> Self {
        ConnTableConfig {
            capacity: 1 << 20,
            timeouts: Timeouts::default(),
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            fullnat_pool: LocalAddrPool::default(),
        }
    }
}

/// A connection as the client sends it: <protocol, client, virtual>.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// IP protocol number.
    pub protocol: u8,
    /// Client address.
    pub caddr: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
}

/// A reply as the real server sends it: for NAT <protocol, real server,
/// client>, for full NAT <protocol, real server, local address>.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyKey {
    /// IP protocol number.
    pub protocol: u8,
    /// Real server address (the reply's source).
    pub raddr: IpAddr,
    /// Real server port.
    pub rport: u16,
    /// The reply's destination: client (NAT) or local address (full NAT).
    pub daddr: IpAddr,
    /// The reply's destination port.
    pub dport: u16,
}

/// A persistence template's key: <protocol, client & netmask, 0, virtual
/// address, virtual port>; protocol 0 and the fwmark as an IPv4 address
/// for fwmark services; port 0 for port-0 and FTP services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// IP protocol number, 0 ("IP") for fwmark services.
    pub protocol: u8,
    /// Client address with the service netmask applied.
    pub caddr_masked: IpAddr,
    /// Virtual address, or the fwmark as an IPv4 address.
    pub vaddr: IpAddr,
    /// Virtual port, or 0.
    pub vport: u16,
}

/// Which way a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → real server.
    Input,
    /// Real server → client (seen by the director with NAT and full NAT).
    Output,
}

/// A new connection to record.
#[derive(Debug, Clone, Copy)]
pub struct NewConn<'a> {
    /// Client → virtual tuple.
    pub key: ConnKey,
    /// The service's fwmark, 0 if none.
    pub fwmark: u32,
    /// The real server's counters.
    pub dest: DestId,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// The persistence template that chose the real server, if any.
    pub controlled_by: Option<ConnRef<'a>>,
}

/// State of an entry, as `ipvsadm -c` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// A TCP connection.
    Tcp(TcpState),
    /// A UDP (or other non-TCP, non-SCTP) connection.
    Udp,
    /// An SCTP association.
    Sctp(SctpState),
    /// A persistence template; assured once a connection it controls was
    /// established.
    Template {
        /// IPVS's `IP_VS_CTPL_S_ASSURED`.
        assured: bool,
    },
}

impl ConnState {
    /// The state column of `ipvsadm -c`.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(state) => state.name(),
            ConnState::Udp => "UDP",
            ConnState::Sctp(state) => state.name(),
            ConnState::Template { assured: false } => "NONE",
            ConnState::Template { assured: true } => "ASSURED",
        }
    }
}

/// Everything about a connection the engine needs to forward its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Client → virtual tuple (for a template: masked client, port 0).
    pub key: ConnKey,
    /// The service's fwmark, 0 if none.
    pub fwmark: u32,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// Full NAT: the local address and port the real server sees.
    pub local: Option<(IpAddr, u16)>,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// The real server's counters.
    pub dest: DestId,
    /// State.
    pub state: ConnState,
    /// A persistence template.
    pub template: bool,
    /// Controlled by a persistence template.
    pub controlled: bool,
    /// No packet real server → client seen yet (IPVS's NOOUTPUT; always
    /// false for NAT and full NAT).
    pub no_output: bool,
}

/// A connection's endpoints as the forwarding methods take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnEndpoints {
    /// Client address and port.
    pub client: SocketAddr,
    /// Virtual service address and port (for a template: port 0).
    pub virtual_service: SocketAddr,
    /// Real server address and port.
    pub real_server: SocketAddr,
    /// Full NAT: the local address and port the real server sees.
    pub local: Option<SocketAddr>,
}

/// A full-NAT connection's endpoints when all four are IPv4 (what
/// [`ConnRef::fullnat_v4`] reads): the full-NAT fast path's parameters
/// without the [`SocketAddr`] decoding of [`ConnEndpoints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullNatEndsV4 {
    /// Client address and port.
    pub client: SocketAddrV4,
    /// Virtual service address and port.
    pub virtual_service: SocketAddrV4,
    /// Real server address and port.
    pub real_server: SocketAddrV4,
    /// The local address and port the real server sees.
    pub local: SocketAddrV4,
}

impl From<&ConnInfo> for ConnEndpoints {
    fn from(info: &ConnInfo) -> ConnEndpoints {
        ConnEndpoints {
            client: SocketAddr::new(info.key.caddr, info.key.cport),
            virtual_service: SocketAddr::new(info.key.vaddr, info.key.vport),
            real_server: SocketAddr::new(info.daddr, info.dport),
            local: info.local.map(|(addr, port)| SocketAddr::new(addr, port)),
        }
    }
}

/// One row of `ipvsadm -c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnListing {
    /// The entry.
    pub info: ConnInfo,
    /// State name ("ESTABLISHED", "UDP", "NONE", ...).
    pub state_name: &'static str,
    /// Milliseconds until the entry expires.
    pub remaining_ms: u64,
    /// A persistence-engine template's engine and data (the SIP
    /// Call-ID), as `ipvsadm -c --persistent-conn` shows them.
    pub pe_data: Option<PeListing>,
}

/// What a packet did to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketOutcome {
    /// Forward the packet; the connection is now in `state` and expires
    /// `timeout_secs` after this packet.
    Forward {
        /// New state.
        state: ConnState,
        /// Timer just armed, in seconds.
        timeout_secs: u32,
    },
    /// The real server was deleted: drop the packet. With
    /// `expire_nodest_conn` the connection was expired (`expired`).
    DropNoDest {
        /// Whether this call expired the connection.
        expired: bool,
    },
    /// The connection expired or was removed meanwhile: treat the packet
    /// as a miss.
    Gone,
}

/// Why an insert failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// Every entry is in use: the new connection is dropped (counted in
    /// [`ConnTableStats::full_drops`]).
    #[error("connection table full")]
    TableFull,
    /// A live entry with the same key exists (another worker won).
    #[error("connection already exists")]
    Exists,
    /// No local address/port of the full-NAT pool gives a unique reply
    /// tuple within the probe bound (counted in
    /// [`ConnTableStats::fullnat_port_exhausted`]).
    #[error("full-NAT local ports exhausted")]
    FullNatPortsExhausted,
    /// The full-NAT pool has no address of the real server's family.
    #[error("no full-NAT local address of the real server's family")]
    NoLocalAddress,
    /// The destination id is outside the registry.
    #[error("unknown destination")]
    UnknownDest,
}

/// Counters of a [`ConnTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnTableStats {
    /// Entries alive now.
    pub entries: u64,
    /// Inserts refused because the table was full.
    pub full_drops: u64,
    /// Full-NAT inserts refused for lack of a free local port.
    pub fullnat_port_exhausted: u64,
    /// Inserts refused because the key already existed.
    pub duplicates: u64,
    /// Entries inserted, ever.
    pub inserted: u64,
    /// Entries expired or removed, ever.
    pub expired: u64,
    /// Templates kept 60 s longer because they still controlled
    /// connections.
    pub template_extensions: u64,
    /// Lookups that gave up after retrying against concurrent removals.
    pub lookup_retries_exhausted: u64,
}
