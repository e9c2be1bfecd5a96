//! The control protocol between `uvsadm` (or any client) and `uvsd`.
//!
//! Transport: a Unix stream socket (default [`DEFAULT_SOCKET_PATH`]).
//! Each message is one JSON object on one line (`\n`-terminated, at most
//! [`MAX_MESSAGE_BYTES`]); the client sends a [`Request`], the daemon
//! answers with exactly one [`Response`] line, and the connection may carry
//! further requests. Every request names the protocol [`VERSION`]; a daemon
//! answers a request of another version with [`ErrorCode::Version`].
//!
//! The command set is ipvsadm's (one [`Command`] per ipvsadm command), so
//! `uvsadm` is a thin shell: it parses ipvsadm's options into a command,
//! sends it, and prints the answer in ipvsadm's formats. The messages say
//! *what* to change; the daemon checks every change against the same rules
//! as the config file ([`crate::Config::validate`]) and applies it
//! atomically, or changes nothing and answers an error.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{
    DestConfig, Family, FwmarkMatch, Netmask, Persistence, PersistenceEngine, SchedFlags,
    SchedulerName, ServiceKey, Timeouts,
};

/// Protocol version carried by every request.
pub const VERSION: u32 = 1;

/// Where `uvsd` listens unless told otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/uvs/uvsd.sock";

/// Longest message line accepted, in bytes (newline included).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Must be [`VERSION`].
    pub version: u32,
    /// What to do.
    pub command: Command,
}

impl Request {
    /// A request of the current version.
    pub fn new(command: Command) -> Request {
        Request {
            version: VERSION,
            command,
        }
    }
}

/// A virtual service's own settings (`-A`/`-E`): everything but its real
/// servers.
///
/// Persistence's netmask travels as `"netmask": {"v4": "255.0.255.0"}` or
/// `{"v6": 64}`. Requests of clients written before non-contiguous masks
/// existed carry `"netmask_prefix": N` instead; they are still accepted
/// and read with the service's family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ServiceSpecWire")]
pub struct ServiceSpec {
    /// What the service listens on.
    pub key: ServiceKey,
    /// Scheduler (`-s`, default wlc).
    pub scheduler: SchedulerName,
    /// Scheduler flags (`-b`).
    pub flags: SchedFlags,
    /// Persistence (`-p`, `-M`).
    pub persistence: Option<Persistence>,
    /// Persistence engine (`--pe`); absent in older clients' requests.
    #[serde(default)]
    pub persistence_engine: Option<PersistenceEngine>,
    /// One-packet scheduling (`-o`).
    pub one_packet: bool,
    /// fwmark services: the ranges that carry the mark. An edit with an
    /// empty list keeps the ranges the service has.
    pub fwmark_match: Vec<FwmarkMatch>,
}

/// [`ServiceSpec`] as it is read off the wire: persistence may carry the
/// older `netmask_prefix`, resolved once the service's family is known.
#[derive(Deserialize)]
struct ServiceSpecWire {
    key: ServiceKey,
    scheduler: SchedulerName,
    flags: SchedFlags,
    persistence: Option<PersistenceWire>,
    #[serde(default)]
    persistence_engine: Option<PersistenceEngine>,
    one_packet: bool,
    fwmark_match: Vec<FwmarkMatch>,
}

/// [`Persistence`] on the wire: `netmask` (current) or `netmask_prefix`
/// (protocol version 1 clients before non-contiguous masks; IPv4
/// 0..=32, IPv6 1..=128). Neither means the family's full mask.
#[derive(Deserialize)]
struct PersistenceWire {
    timeout: u32,
    #[serde(default)]
    netmask: Option<Netmask>,
    #[serde(default)]
    netmask_prefix: Option<u8>,
}

impl PersistenceWire {
    fn resolve(self, family: Family) -> Persistence {
        let netmask = match (self.netmask, self.netmask_prefix, family) {
            (Some(netmask), _, _) => netmask,
            (None, Some(prefix), Family::V4) => Netmask::v4_prefix(prefix),
            (None, Some(prefix), Family::V6) => Netmask::V6(prefix),
            (None, None, family) => Netmask::full(family),
        };
        Persistence {
            timeout: self.timeout,
            netmask,
        }
    }
}

impl From<ServiceSpecWire> for ServiceSpec {
    fn from(wire: ServiceSpecWire) -> ServiceSpec {
        let family = match wire.key {
            ServiceKey::Addr {
                addr: IpAddr::V4(_),
                ..
            } => Family::V4,
            ServiceKey::Addr { .. } => Family::V6,
            ServiceKey::Fwmark { family, .. } => family,
        };
        ServiceSpec {
            key: wire.key,
            scheduler: wire.scheduler,
            flags: wire.flags,
            persistence: wire.persistence.map(|p| p.resolve(family)),
            persistence_engine: wire.persistence_engine,
            one_packet: wire.one_packet,
            fwmark_match: wire.fwmark_match,
        }
    }
}

/// Sync daemon role (`--start-daemon master|backup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncRole {
    /// Sends connection state.
    Master,
    /// Receives connection state.
    Backup,
}

/// Sync daemon settings (`--start-daemon` options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemonSpec {
    /// Role.
    pub role: SyncRole,
    /// `--mcast-interface` (default eth0).
    pub interface: String,
    /// `--syncid` (0..=255).
    pub syncid: u8,
    /// `--sync-maxlen`.
    pub maxlen: Option<u16>,
    /// `--mcast-group`.
    pub group: Option<IpAddr>,
    /// `--mcast-port`.
    pub port: Option<u16>,
    /// `--mcast-ttl`.
    pub ttl: Option<u8>,
}

/// Every operation of ipvsadm, plus the read-outs its listings need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// `-A`: add a virtual service.
    AddService {
        /// The service.
        service: ServiceSpec,
    },
    /// `-E`: replace a service's settings (ipvsadm sends every field).
    EditService {
        /// The service.
        service: ServiceSpec,
    },
    /// `-D`: delete a service and its real servers.
    DeleteService {
        /// Which.
        key: ServiceKey,
    },
    /// `-C`: delete every service.
    Clear,
    /// `-a`: add a real server.
    AddServer {
        /// To which service.
        service: ServiceKey,
        /// The real server.
        server: DestConfig,
    },
    /// `-e`: replace a real server's settings.
    EditServer {
        /// In which service.
        service: ServiceKey,
        /// The real server (address and port name it).
        server: DestConfig,
    },
    /// `-d`: delete a real server.
    DeleteServer {
        /// From which service.
        service: ServiceKey,
        /// Its address.
        addr: IpAddr,
        /// Its port.
        port: u16,
    },
    /// `-Z`: zero the counters of one service or of all.
    Zero {
        /// Which service, or all.
        service: Option<ServiceKey>,
    },
    /// `--set tcp tcpfin udp`: 0 leaves a value unchanged.
    SetTimeouts {
        /// TCP ESTABLISHED.
        tcp: u32,
        /// TCP FIN_WAIT.
        tcp_fin: u32,
        /// UDP.
        udp: u32,
    },
    /// `--start-daemon`.
    StartDaemon {
        /// Settings.
        daemon: SyncDaemonSpec,
    },
    /// `--stop-daemon`.
    StopDaemon {
        /// Which role.
        role: SyncRole,
    },
    /// Version and connection-table size (the `-L` header).
    GetInfo,
    /// Services with real servers, counters and rates (`-L`), all or one.
    ListServices {
        /// One service, or all.
        service: Option<ServiceKey>,
    },
    /// Tracked connections and templates (`-Lc`).
    ListConnections,
    /// `--timeout`.
    GetTimeouts,
    /// `--daemon`.
    GetDaemons,
    /// Engine-wide counters: frames forwarded, passed to the kernel and
    /// dropped by reason; connection table use. Not in ipvsadm.
    GetEngineStats,
}

/// Traffic counters (`--stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → real server.
    pub in_pkts: u64,
    /// Packets real server → client.
    pub out_pkts: u64,
    /// Bytes client → real server.
    pub in_bytes: u64,
    /// Bytes real server → client.
    pub out_bytes: u64,
}

/// Rates from IPVS's estimator (`--rate`), per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Inbound packets per second.
    pub in_pps: u64,
    /// Outbound packets per second.
    pub out_pps: u64,
    /// Inbound bytes per second.
    pub in_bps: u64,
    /// Outbound bytes per second.
    pub out_bps: u64,
}

/// A real server as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Its settings.
    pub config: DestConfig,
    /// ActiveConn.
    pub active_conns: u32,
    /// InActConn.
    pub inactive_conns: u32,
    /// PersistConn.
    pub persistent_conns: u32,
    /// Counters.
    pub counters: Counters,
    /// Rates.
    pub rates: Rates,
}

/// A service as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its settings.
    pub spec: ServiceSpec,
    /// Real servers, in the engine's list order (newest first).
    pub servers: Vec<ServerStatus>,
    /// Counters.
    pub counters: Counters,
    /// Rates.
    pub rates: Rates,
}

/// One tracked connection or template (`-Lc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// IP protocol number (0 for a fwmark template, shown as `IP`).
    pub protocol: u8,
    /// Client address.
    pub client: IpAddr,
    /// Client port (0 for templates).
    pub client_port: u16,
    /// Virtual address (a fwmark as IPv4 for fwmark templates).
    pub virtual_addr: IpAddr,
    /// Virtual port.
    pub virtual_port: u16,
    /// Real server address.
    pub server: IpAddr,
    /// Real server port.
    pub server_port: u16,
    /// State as ipvsadm names it (`ESTABLISHED`, `UDP`, `NONE`, ...).
    pub state: String,
    /// Seconds until it expires.
    pub expires_secs: u32,
    /// A persistence template.
    pub template: bool,
    /// A template keyed by a persistence engine: its name and data (for
    /// `sip`, the Call-ID, non-UTF-8 bytes replaced), as `-c
    /// --persistent-conn` shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe: Option<PeData>,
}

/// A persistence engine's key of a template (`pe name`, `pe_data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeData {
    /// Engine name (`sip`).
    pub name: String,
    /// Its key (the Call-ID).
    pub data: String,
}

/// A running sync daemon (`--daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// Settings (every optional field filled in by the daemon).
    pub daemon: SyncDaemonSpec,
}

/// Engine-wide counters ([`Command::GetEngineStats`]), since start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EngineStats {
    /// Frames forwarded.
    pub forwarded: u64,
    /// Frames handed back to the kernel (not the engine's).
    pub passed: u64,
    /// ICMP errors sent back to a sender.
    pub icmp_sent: u64,
    /// Connections created.
    pub new_conns: u64,
    /// Frames dropped, by reason (snake_case names, e.g. `no_dest`).
    pub drops: BTreeMap<String, u64>,
    /// Connection table entries in use (connections and templates).
    pub conn_entries: u64,
    /// Connection table capacity.
    pub conn_capacity: u64,
    /// New connections refused because the table was full.
    pub conn_table_full: u64,
    /// `--pe sip` datagrams whose Call-ID was longer than 255 bytes (they
    /// fell back to address persistence, as in IPVS).
    #[serde(default)]
    pub sip_call_id_too_long: u64,
    /// `--pe sip` templates refused because every Call-ID slot was taken
    /// (their packets are dropped as `table_full` in `drops`).
    #[serde(default)]
    pub pe_arena_full: u64,
}

/// What went wrong, with ipvsadm's message for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// "Service already exists".
    ServiceExists,
    /// "No such service".
    NoService,
    /// "Destination already exists".
    DestExists,
    /// "No such destination".
    NoDest,
    /// "Scheduler or persistence engine not found".
    SchedulerNotFound,
    /// "Daemon has already run".
    DaemonRunning,
    /// "No daemon is running".
    NoDaemon,
    /// "Permission denied (you must be root)".
    PermissionDenied,
    /// The request broke a rule; the message says which.
    Invalid,
    /// Another protocol version.
    Version,
    /// The request could not be read.
    Malformed,
    /// Something the operator cannot fix by changing the request.
    Internal,
}

impl ErrorCode {
    /// ipvsadm's text for this error, where ipvsadm has one.
    pub fn ipvsadm_message(self) -> Option<&'static str> {
        Some(match self {
            ErrorCode::ServiceExists => "Service already exists",
            ErrorCode::NoService => "No such service",
            ErrorCode::DestExists => "Destination already exists",
            ErrorCode::NoDest => "No such destination",
            ErrorCode::SchedulerNotFound => "Scheduler or persistence engine not found",
            ErrorCode::DaemonRunning => "Daemon has already run",
            ErrorCode::NoDaemon => "No daemon is running",
            ErrorCode::PermissionDenied => "Permission denied (you must be root)",
            ErrorCode::Invalid
            | ErrorCode::Version
            | ErrorCode::Malformed
            | ErrorCode::Internal => return None,
        })
    }
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// Done.
    Ok,
    /// Refused; nothing changed.
    Error {
        /// Which error.
        code: ErrorCode,
        /// A message for the operator.
        message: String,
    },
    /// Answer to [`Command::GetInfo`].
    Info {
        /// uvsd's version.
        version: String,
        /// Connection hash table size shown as `size=` (2^conn_tab_bits).
        conn_table_size: u32,
    },
    /// Answer to [`Command::ListServices`].
    Services {
        /// Services in the engine's order.
        services: Vec<ServiceStatus>,
    },
    /// Answer to [`Command::ListConnections`].
    Connections {
        /// Entries.
        connections: Vec<ConnectionStatus>,
    },
    /// Answer to [`Command::GetTimeouts`].
    Timeouts {
        /// Current timeouts.
        timeouts: Timeouts,
    },
    /// Answer to [`Command::GetDaemons`].
    Daemons {
        /// Running sync daemons.
        daemons: Vec<DaemonStatus>,
    },
    /// Answer to [`Command::GetEngineStats`].
    EngineStats {
        /// The counters.
        stats: EngineStats,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    #[test]
    fn requests_round_trip_through_json_lines() {
        let request = Request::new(Command::DeleteServer {
            service: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: "192.0.2.100".parse().unwrap(),
                port: 80,
            },
            addr: "198.51.100.11".parse().unwrap(),
            port: 80,
        });
        let line = serde_json::to_string(&request).unwrap();
        assert!(!line.contains('\n'));
        assert!(line.contains("\"op\":\"delete_server\""), "{line}");
        let back: Request = serde_json::from_str(&line).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn persistence_netmask_on_the_wire_new_and_legacy() {
        let spec = |addr: &str, persistence: &str| -> ServiceSpec {
            let line = format!(
                r#"{{"key":{{"Addr":{{"protocol":"Udp","addr":"{addr}","port":5060}}}},"scheduler":"Rr","flags":{{"flag1":false,"flag2":false,"flag3":false}},"persistence":{persistence},"one_packet":false,"fwmark_match":[]}}"#
            );
            serde_json::from_str(&line).unwrap()
        };
        let v4 = |a, b, c, d| Netmask::V4(std::net::Ipv4Addr::new(a, b, c, d));
        let netmask = |s: ServiceSpec| s.persistence.unwrap().netmask;
        // Version 1 clients: a prefix length, read with the service's family.
        assert_eq!(
            netmask(spec("192.0.2.1", r#"{"timeout":60,"netmask_prefix":24}"#)),
            v4(255, 255, 255, 0)
        );
        assert_eq!(
            netmask(spec("2001:db8::1", r#"{"timeout":60,"netmask_prefix":24}"#)),
            Netmask::V6(24)
        );
        assert_eq!(
            netmask(spec("192.0.2.1", r#"{"timeout":60}"#)),
            v4(255, 255, 255, 255)
        );
        // Current form: any IPv4 mask, and it round-trips.
        let s = spec(
            "192.0.2.1",
            r#"{"timeout":60,"netmask":{"v4":"255.0.255.0"}}"#,
        );
        assert_eq!(netmask(s.clone()), v4(255, 0, 255, 0));
        let line = serde_json::to_string(&s).unwrap();
        assert!(line.contains(r#""netmask":{"v4":"255.0.255.0"}"#), "{line}");
        assert_eq!(serde_json::from_str::<ServiceSpec>(&line).unwrap(), s);
    }

    #[test]
    fn error_codes_carry_ipvsadm_messages() {
        assert_eq!(
            ErrorCode::NoService.ipvsadm_message(),
            Some("No such service")
        );
        assert_eq!(ErrorCode::Invalid.ipvsadm_message(), None);
        let response = Response::Error {
            code: ErrorCode::DestExists,
            message: "Destination already exists".into(),
        };
        let line = serde_json::to_string(&response).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), response);
    }
}
