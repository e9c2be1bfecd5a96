//! The model types: plain data, validated by [`crate::file`] or by
//! [`Config::validate`], shared by the engine, the daemon and `uvsadm`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Transport protocol of an address/port service.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Protocol {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
    /// SCTP (`--sctp-service`).
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The lowercase name used in the config file (`tcp`, `udp`, `sctp`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// Address family of a fwmark service (`-f N` or `-f N -6`).
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// What identifies a virtual service.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum ServiceKey {
    /// A TCP, UDP or SCTP service on one virtual address and port (port 0 only
    /// with persistence: it then matches every port).
    Addr {
        /// Protocol.
        protocol: Protocol,
        /// Virtual IP.
        addr: IpAddr,
        /// Virtual port; 0 = all ports (persistent services only).
        port: u16,
    },
    /// A firewall-mark service. uvs has no netfilter mark, so the service
    /// carries the address/port ranges that "mark" a packet with it.
    Fwmark {
        /// The mark, 1..=u32::MAX.
        mark: u32,
        /// Address family.
        family: Family,
    },
}

/// A range of packets that carry a fwmark service's mark.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FwmarkMatch {
    /// Protocol, or `None` for TCP, UDP and SCTP.
    pub protocol: Option<Protocol>,
    /// First destination address of the range (inclusive).
    pub addr_first: IpAddr,
    /// Last destination address of the range (inclusive).
    pub addr_last: IpAddr,
    /// First destination port (inclusive).
    pub port_first: u16,
    /// Last destination port (inclusive).
    pub port_last: u16,
}

/// The 14 IPVS schedulers, by their ipvsadm names.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerName {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (the default).
    Wlc,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Weighted random twos choice.
    Twos,
}

impl SchedulerName {
    /// Every scheduler, in ipvsadm's documentation order.
    pub const ALL: [SchedulerName; 14] = [
        SchedulerName::Rr,
        SchedulerName::Wrr,
        SchedulerName::Lc,
        SchedulerName::Wlc,
        SchedulerName::Lblc,
        SchedulerName::Lblcr,
        SchedulerName::Dh,
        SchedulerName::Sh,
        SchedulerName::Sed,
        SchedulerName::Nq,
        SchedulerName::Fo,
        SchedulerName::Ovf,
        SchedulerName::Mh,
        SchedulerName::Twos,
    ];

    /// The ipvsadm name (`rr`, `wlc`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulerName::Rr => "rr",
            SchedulerName::Wrr => "wrr",
            SchedulerName::Lc => "lc",
            SchedulerName::Wlc => "wlc",
            SchedulerName::Lblc => "lblc",
            SchedulerName::Lblcr => "lblcr",
            SchedulerName::Dh => "dh",
            SchedulerName::Sh => "sh",
            SchedulerName::Sed => "sed",
            SchedulerName::Nq => "nq",
            SchedulerName::Fo => "fo",
            SchedulerName::Ovf => "ovf",
            SchedulerName::Mh => "mh",
            SchedulerName::Twos => "twos",
        }
    }

    /// Look a scheduler up by its ipvsadm name.
    pub fn from_name(name: &str) -> Option<SchedulerName> {
        SchedulerName::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Scheduler flags (`-b`): IP_VS_SVC_F_SCHED1..3.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default,
)]
pub struct SchedFlags {
    /// flag-1: `sh-fallback` with sh, `mh-fallback` with mh.
    pub flag1: bool,
    /// flag-2: `sh-port` with sh, `mh-port` with mh.
    pub flag2: bool,
    /// flag-3: no meaning for any current scheduler.
    pub flag3: bool,
}

impl SchedFlags {
    /// Fallback flag (sh-fallback / mh-fallback).
    pub fn fallback(self) -> bool {
        self.flag1
    }
    /// Port flag (sh-port / mh-port).
    pub fn port(self) -> bool {
        self.flag2
    }
}

/// The granularity of persistence (`-M`): which bits of the client
/// address a persistence template keys on.
///
/// IPv4 services take any 32-bit mask, contiguous or not, as ipvsadm and
/// the kernel do (ipvsadm parses `-M` with `inet_aton`; the kernel ANDs
/// the client address with it): `255.0.255.0` is a valid mask. IPv6
/// services take a prefix length, 1 to 128.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Netmask {
    /// An IPv4 service's mask (default `255.255.255.255`).
    V4(Ipv4Addr),
    /// An IPv6 service's prefix length, 1..=128 (default 128).
    V6(u8),
}

impl Netmask {
    /// The default of a family: every address bit (`/32`, `/128`).
    pub fn full(family: Family) -> Netmask {
        match family {
            Family::V4 => Netmask::V4(Ipv4Addr::BROADCAST),
            Family::V6 => Netmask::V6(128),
        }
    }

    /// The IPv4 mask of a prefix length 0..=32 (longer lengths give /32).
    pub fn v4_prefix(prefix: u8) -> Netmask {
        let len = u32::from(prefix.min(32));
        Netmask::V4(Ipv4Addr::from(u32::MAX.checked_shl(32 - len).unwrap_or(0)))
    }

    /// Whether this is the family's default (every bit kept), which
    /// ipvsadm's listings and `-S` leave out.
    pub fn is_full(self) -> bool {
        matches!(self, Netmask::V4(m) if m == Ipv4Addr::BROADCAST)
            || matches!(self, Netmask::V6(128))
    }

    /// `addr` with the mask applied (the kernel's `saddr & netmask`, or
    /// `ipv6_addr_prefix`). An address of the other family is returned
    /// unchanged (validation keeps the mask's family the service's).
    #[inline]
    pub fn apply(self, addr: IpAddr) -> IpAddr {
        match (self, addr) {
            (Netmask::V4(mask), IpAddr::V4(a)) => IpAddr::V4(a & mask),
            (Netmask::V6(prefix), IpAddr::V6(a)) => {
                let len = u32::from(prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
            (_, other) => other,
        }
    }
}

/// Persistence (`-p`, `-M`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Template timeout in seconds, 1..=2678400 (bare `-p` = 360).
    pub timeout: u32,
    /// Client netmask: an IPv4 mask for IPv4 services, a prefix length
    /// for IPv6 ones (defaults /32 and /128).
    pub netmask: Netmask,
}

/// A persistence engine (`--pe`): what keys a persistence template in
/// place of the client address, for the packets it understands.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum PersistenceEngine {
    /// `sip` (IPVS's `ip_vs_pe_sip`): UDP datagrams of a persistent
    /// service are pinned by their SIP Call-ID (with the masked client
    /// address, virtual address and port); others by the client address.
    Sip,
}

impl PersistenceEngine {
    /// Every engine.
    pub const ALL: [PersistenceEngine; 1] = [PersistenceEngine::Sip];

    /// The ipvsadm name (`sip`).
    pub fn as_str(self) -> &'static str {
        match self {
            PersistenceEngine::Sip => "sip",
        }
    }

    /// Look an engine up by its ipvsadm name (exact, as the kernel's
    /// `ip_vs_pe_getbyname`).
    pub fn from_name(name: &str) -> Option<PersistenceEngine> {
        PersistenceEngine::ALL
            .into_iter()
            .find(|pe| pe.as_str() == name)
    }
}

/// Tunnel encapsulation (`--tun-type`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelType {
    /// IP-in-IP (protocol 4, or 41 for an IPv6 inner packet).
    Ipip,
    /// Generic UDP Encapsulation to the given UDP port.
    Gue {
        /// Destination UDP port, 1..=65535.
        port: u16,
    },
    /// GRE (protocol 47).
    Gre,
}

/// Tunnel checksum option (`--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, Default,
)]
pub enum TunnelCsum {
    /// No checksum (the default).
    #[default]
    NoCsum,
    /// Outer checksum.
    Csum,
    /// Remote checksum offload (GUE only).
    RemCsum,
}

/// How packets reach a real server.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMethod {
    /// Direct routing (`-g`): rewrite the MACs only.
    Dr,
    /// Tunnelling (`-i`).
    Tunnel {
        /// Encapsulation.
        kind: TunnelType,
        /// Checksum option.
        csum: TunnelCsum,
    },
    /// Masquerading (`-m`): destination NAT, replies through the director.
    Nat,
    /// Full NAT: source rewritten to a local address too.
    FullNat,
}

/// A real server of a service.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DestConfig {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (forced to the service port for DR/TUN).
    pub port: u16,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// Weight, 0..=65535; 0 = quiescent.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: u32,
}

/// A virtual service and its real servers.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// What the service listens on.
    pub key: ServiceKey,
    /// Scheduler.
    pub scheduler: SchedulerName,
    /// Scheduler flags.
    pub flags: SchedFlags,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// Persistence engine (`--pe`), if any. Kept without persistence too
    /// (ipvsadm allows it and `-S` saves it), but used only with it.
    #[serde(default)]
    pub persistence_engine: Option<PersistenceEngine>,
    /// One-packet scheduling (UDP and fwmark services only).
    pub one_packet: bool,
    /// For fwmark services: the ranges that carry the mark.
    pub fwmark_match: Vec<FwmarkMatch>,
    /// Real servers, in the order they were added (the engine keeps them
    /// newest-first, as IPVS's list does).
    pub dests: Vec<DestConfig>,
}

/// Connection timeouts in seconds (`--set tcp tcpfin udp`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// TCP ESTABLISHED.
    pub tcp: u32,
    /// TCP FIN_WAIT.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}

/// A full-NAT local address pool: the director-owned source addresses and
/// the port range it takes ports from.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LocalAddrPool {
    /// Local addresses (IPv4 and/or IPv6).
    pub addrs: Vec<IpAddr>,
    /// First port (inclusive).
    pub port_first: u16,
    /// Last port (inclusive).
    pub port_last: u16,
}

impl Default for LocalAddrPool {
    fn default() -> Self {
        LocalAddrPool {
            addrs: Vec::new(),
            port_first: 1024,
            port_last: 65535,
        }
    }
}

/// Engine settings that are not part of the IPVS model.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Maximum tracked connections (the table is sized for this many).
    pub conn_table_size: u32,
    /// Connection hash table size shown in `ipvsadm -L`'s header
    /// (`size=4096` by default).
    pub conn_tab_bits: u8,
    /// Interfaces to attach to; empty = choose from the routes.
    pub interfaces: Vec<String>,
    /// Source address for tunnel-mode outer headers (IPv4); `None` = the
    /// address of the interface that routes to the real server.
    pub tunnel_source_v4: Option<IpAddr>,
    /// Source address for tunnel-mode outer headers (IPv6).
    pub tunnel_source_v6: Option<IpAddr>,
    /// Expire connections whose real server was deleted
    /// (`expire_nodest_conn`).
    pub expire_nodest_conn: bool,
    /// Expire persistence templates of quiescent real servers
    /// (`expire_quiescent_template`).
    pub expire_quiescent_template: bool,
    /// `conn_reuse_mode` (default 1).
    pub conn_reuse_mode: u8,
    /// AF_XDP backend: UMEM frames per worker (a power of two, 64 to
    /// 1048576; default 4096).
    pub umem_frames: u32,
    /// TUN backend: the device's name (default `uvs0`).
    pub tun_device: String,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            conn_table_size: 1 << 20,
            conn_tab_bits: 12,
            interfaces: Vec::new(),
            tunnel_source_v4: None,
            tunnel_source_v6: None,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            umem_frames: 4096,
            tun_device: "uvs0".to_string(),
        }
    }
}

/// A whole configuration.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Engine settings.
    pub engine: EngineSettings,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Full-NAT local address pool.
    pub fullnat_pool: LocalAddrPool,
    /// Services.
    pub services: Vec<ServiceConfig>,
}
