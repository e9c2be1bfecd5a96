//! Validation of a [`Config`] without a file: the rules of ipvsadm and of
//! the IPVS kernel code, checked on the model alone.
//!
//! [`Config::validate`] returns the first problem and [`Config::problems`]
//! all of them. Each [`ModelError`] names the place it concerns
//! ([`Place`]: which service, real server or setting, and which field),
//! so the config file reader can point at the offending TOML value and the
//! control socket can name the option. Messages are ipvsadm's own words
//! where ipvsadm (or the kernel behind it) has one, e.g. "Zero port
//! specified for non-persistent service".

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::{
    Config, DestConfig, Family, ForwardMethod, FwmarkMatch, Netmask, Protocol, SchedFlags,
    SchedulerName, ServiceConfig, ServiceKey, TunnelCsum, TunnelType,
};

/// Longest persistence or connection timeout, in seconds: 31 days, as
/// ipvsadm's `MAX_TIMEOUT`.
pub const MAX_TIMEOUT: u32 = 86_400 * 31;

/// Highest real server weight.
pub const MAX_WEIGHT: u32 = 65_535;

/// Highest connection threshold (`-x`, `-y`): `INT_MAX`.
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// Size of the Maglev lookup table, and so the most real servers an `mh`
/// service can have.
pub const MH_TABLE_SIZE: usize = 4093;

/// Range of `conn_tab_bits` (IPVS's `CONFIG_IP_VS_TAB_BITS`).
pub const CONN_TAB_BITS_RANGE: std::ops::RangeInclusive<u8> = 8..=20;

/// Allowed `umem_frames` (powers of two only).
pub const UMEM_FRAMES_RANGE: std::ops::RangeInclusive<u32> = 64..=1 << 20;

/// Longest network interface name (`IFNAMSIZ` − 1).
pub const MAX_INTERFACE_NAME: usize = 15;

/// A setting in `[engine]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineField {
    /// `conn_table_size`.
    ConnTableSize,
    /// `conn_tab_bits`.
    ConnTabBits,
    /// The interface at this index of `interfaces`.
    Interface(usize),
    /// `tunnel_source_v4`.
    TunnelSourceV4,
    /// `tunnel_source_v6`.
    TunnelSourceV6,
    /// `conn_reuse_mode`.
    ConnReuseMode,
    /// `umem_frames`.
    UmemFrames,
    /// `tun_device`.
    TunDevice,
}

/// One of the three `--set` timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutField {
    /// TCP ESTABLISHED.
    Tcp,
    /// TCP FIN_WAIT.
    TcpFin,
    /// UDP.
    Udp,
}

/// A part of the full-NAT local address pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolField {
    /// The address at this index.
    Addr(usize),
    /// The port range.
    Ports,
}

/// A part of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceField {
    /// The service as a whole.
    Whole,
    /// What identifies it: protocol, address and port, or fwmark.
    Key,
    /// Its virtual port.
    Port,
    /// Its scheduler.
    Scheduler,
    /// Its scheduler flags.
    Flags,
    /// Its persistence timeout.
    Persistence,
    /// Its persistence netmask.
    Netmask,
    /// One-packet scheduling.
    OnePacket,
    /// Its list of real servers.
    Dests,
}

/// A part of a fwmark service's match range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchField {
    /// The range as a whole.
    Whole,
    /// Its address range.
    Addr,
    /// Its port range.
    Ports,
}

/// A part of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestField {
    /// The real server as a whole.
    Whole,
    /// Its address.
    Addr,
    /// Its port.
    Port,
    /// Its forwarding method.
    Method,
    /// Its tunnel type.
    TunnelType,
    /// Its GUE port.
    TunnelPort,
    /// Its tunnel checksum option.
    TunnelCsum,
    /// Its weight.
    Weight,
    /// Its upper threshold.
    UThreshold,
    /// Its lower threshold.
    LThreshold,
}

/// Where in a [`Config`] a problem lies. Indexes count from 0 in the
/// order of the `Vec`s of the model (the order of the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    /// An engine setting.
    Engine(EngineField),
    /// A timeout.
    Timeout(TimeoutField),
    /// The full-NAT local address pool.
    FullNatPool(PoolField),
    /// A service.
    Service {
        /// Index in [`Config::services`].
        service: usize,
        /// Which part of it.
        field: ServiceField,
    },
    /// A fwmark service's match range.
    Match {
        /// Index in [`Config::services`].
        service: usize,
        /// Index in [`ServiceConfig::fwmark_match`].
        index: usize,
        /// Which part of it.
        field: MatchField,
    },
    /// A real server.
    Dest {
        /// Index in [`Config::services`].
        service: usize,
        /// Index in [`ServiceConfig::dests`].
        dest: usize,
        /// Which part of it.
        field: DestField,
    },
}

/// What is wrong. The `Display` text is the message shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelErrorKind {
    /// conn_table_size is 0.
    #[error("conn_table_size must be at least 1 (it is the most connections the table holds)")]
    ConnTableSizeZero,
    /// conn_tab_bits outside 8..=20.
    #[error("conn_tab_bits {0} is out of range: IPVS allows 8 to 20 (a table of 2^bits rows)")]
    ConnTabBits(u8),
    /// An interface name Linux would refuse.
    #[error("invalid interface name `{0}': 1 to 15 characters, no '/', ':' or white space")]
    InterfaceName(String),
    /// The same interface twice.
    #[error("interface `{0}' is listed twice")]
    DuplicateInterface(String),
    /// A tunnel source address of the wrong family.
    #[error("tunnel source {addr} is not an {family} address")]
    TunnelSourceFamily {
        /// The address given.
        addr: IpAddr,
        /// The family it should have ("IPv4" or "IPv6").
        family: &'static str,
    },
    /// conn_reuse_mode outside 0..=3.
    #[error("conn_reuse_mode {0} is out of range: use 0 to 3 (bit 1: reschedule reused TIME_WAIT/CLOSE connections, bit 2: also FIN_WAIT ones)")]
    ConnReuseMode(u8),
    /// umem_frames not a power of two in range.
    #[error("umem_frames {0} is not allowed: use a power of two from 64 to 1048576")]
    UmemFrames(u32),
    /// A TUN device name Linux would refuse.
    #[error("invalid tun_device `{0}': 1 to 15 characters, no '/', ':' or white space")]
    TunDeviceName(String),
    /// A timeout outside 1..=2678400.
    #[error(
        "invalid timeout value `{value}' specified: the {name} timeout is 1 to 2678400 seconds"
    )]
    Timeout {
        /// `tcp`, `tcpfin` or `udp`.
        name: &'static str,
        /// The value given.
        value: u32,
    },
    /// A full-NAT pool address that is not unicast.
    #[error("full-NAT local address {0} is not a unicast address")]
    PoolAddrNotUnicast(IpAddr),
    /// The same full-NAT pool address twice.
    #[error("full-NAT local address {0} is listed twice")]
    DuplicatePoolAddr(IpAddr),
    /// A bad full-NAT port range.
    #[error("full-NAT port range {first}-{last} is invalid: ports are 1 to 65535, first <= last")]
    PoolPorts {
        /// First port.
        first: u16,
        /// Last port.
        last: u16,
    },
    /// fwmark 0.
    #[error("invalid fwmark value `0' specified: marks are 1 to 4294967295")]
    FwmarkZero,
    /// A virtual address that cannot be a destination.
    #[error("virtual address {0} is not a unicast address")]
    VirtualAddrNotUnicast(IpAddr),
    /// Port 0 without persistence.
    #[error("Zero port specified for non-persistent service")]
    ZeroPortNonPersistent,
    /// `-o` on a TCP service.
    #[error("One-Packet Scheduling is only for UDP virtual services")]
    OnePacketNotUdp,
    /// Two services with the same key.
    #[error("Service already exists")]
    DuplicateService,
    /// Persistence timeout out of range.
    #[error("invalid timeout value `{0}' specified: persistence lasts 1 to 2678400 seconds")]
    PersistenceTimeout(u32),
    /// A persistence netmask of the other family than the service's (an
    /// IPv6 prefix length on an IPv4 service, or an IPv4 mask on an IPv6
    /// one).
    #[error("illegal virtual server persistent mask specified: an IPv4 service takes a dotted mask like 255.255.255.0, an IPv6 service a prefix length 1 to 128")]
    NetmaskFamily,
    /// IPv6 persistence netmask outside 1..=128.
    #[error("illegal ipv6 netmask specified: an IPv6 prefix length is 1 to 128, not {0}")]
    NetmaskV6(u8),
    /// Match ranges on a service that is not a fwmark service.
    #[error("only fwmark services take match ranges; this service is identified by its address and port")]
    MatchOnAddrService,
    /// A fwmark service without match ranges.
    #[error("fwmark service {0} has no match range, so no packet would ever reach it: give the addresses and ports that carry its mark")]
    FwmarkWithoutMatch(u32),
    /// A match address of the wrong family.
    #[error("match address {addr} is not {family} like its fwmark service")]
    MatchFamily {
        /// The address.
        addr: IpAddr,
        /// The service's family ("IPv4" or "IPv6").
        family: &'static str,
    },
    /// A match range whose first address is above its last.
    #[error(
        "match address range {first}-{last} is empty: the first address must not be above the last"
    )]
    MatchAddrOrder {
        /// First address.
        first: IpAddr,
        /// Last address.
        last: IpAddr,
    },
    /// A match range whose first port is above its last.
    #[error("match port range {first}-{last} is empty: the first port must not be above the last")]
    MatchPortOrder {
        /// First port.
        first: u16,
        /// Last port.
        last: u16,
    },
    /// Match ranges of two fwmark services overlap.
    #[error("match range overlaps one of fwmark service {other_mark}: a packet in both would carry two marks")]
    MatchOverlap {
        /// The other service's mark.
        other_mark: u32,
    },
    /// Two real servers with the same address and port in one service.
    #[error("Destination already exists")]
    DuplicateDest,
    /// A real server address that cannot be a destination.
    #[error("real server address {0} is not a unicast address")]
    DestAddrNotUnicast(IpAddr),
    /// Mixed families without a tunnel.
    #[error("Different address family is allowed only for tunneling servers")]
    MixedFamily,
    /// DR/TUN real server on another port than the service's.
    #[error("real server port {port} differs from the service port {service_port}: direct routing and tunnelling do not rewrite the port, so the real server must use port {service_port}")]
    DestPortNotServicePort {
        /// The real server's port.
        port: u16,
        /// The service's port.
        service_port: u16,
    },
    /// Weight above 65535.
    #[error("illegal weight specified: {0} is above 65535")]
    Weight(u32),
    /// Upper threshold above INT_MAX.
    #[error("illegal u_threshold specified: {0} is above 2147483647")]
    UThreshold(u32),
    /// Lower threshold above INT_MAX.
    #[error("illegal l_threshold specified: {0} is above 2147483647")]
    LThreshold(u32),
    /// l_threshold > u_threshold (the kernel's ERANGE).
    #[error("lower threshold ({lower}) is higher than upper threshold ({upper})")]
    ThresholdOrder {
        /// Lower threshold.
        lower: u32,
        /// Upper threshold.
        upper: u32,
    },
    /// GUE without a port.
    #[error("You need to supply the 'tun-port' option for the 'gue' tunnel type")]
    GuePortMissing,
    /// A checksum option the tunnel type does not take.
    #[error("Illegal '{option}' option with the '{tunnel}' tunnel type")]
    TunnelCsumIllegal {
        /// `tun-csum` or `tun-remcsum`.
        option: &'static str,
        /// `ipip` or `gre`.
        tunnel: &'static str,
    },
    /// Full NAT without a local address of the real server's family.
    #[error("full-NAT real server {addr} needs an {family} local address in the full-NAT pool, and the pool has none")]
    FullNatNoPoolAddr {
        /// The real server.
        addr: IpAddr,
        /// Its family ("IPv4" or "IPv6").
        family: &'static str,
    },
    /// More real servers than the Maglev table has slots.
    #[error("the mh scheduler takes at most 4093 real servers; this service has {0}")]
    TooManyDestsForMh(usize),
    /// A scheduler flag name ipvsadm does not know.
    #[error("invalid scheduler flag `{0}'")]
    InvalidSchedFlag(String),
    /// A scheduler flag for another scheduler.
    #[error("incompatible scheduler flag `{flag}'")]
    IncompatibleSchedFlag {
        /// The flag name.
        flag: String,
        /// The scheduler it needs.
        needs: SchedulerName,
    },
}

/// A problem in a [`Config`]: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ModelError {
    /// Where.
    pub place: Place,
    /// What.
    pub kind: ModelErrorKind,
}

impl ModelError {
    /// A problem `kind` at `place`.
    pub fn new(place: Place, kind: ModelErrorKind) -> ModelError {
        ModelError { place, kind }
    }
}

impl SchedFlags {
    /// Parse ipvsadm's `-b` flag names (`flag-1`..`flag-3`, `sh-fallback`,
    /// `sh-port`, `mh-fallback`, `mh-port`) for a service using
    /// `scheduler`, as ipvsadm's `parse_sched_flags` does: the first bad
    /// name gives "invalid scheduler flag `x'" or, for a flag of another
    /// scheduler, "incompatible scheduler flag `x'". The caller knows the
    /// [`Place`] (service and [`ServiceField::Flags`]).
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
        scheduler: SchedulerName,
    ) -> Result<SchedFlags, ModelErrorKind> {
        let mut flags = SchedFlags::default();
        for name in names {
            let needs = match name {
                "flag-1" => {
                    flags.flag1 = true;
                    None
                }
                "flag-2" => {
                    flags.flag2 = true;
                    None
                }
                "flag-3" => {
                    flags.flag3 = true;
                    None
                }
                "sh-fallback" => {
                    flags.flag1 = true;
                    Some(SchedulerName::Sh)
                }
                "sh-port" => {
                    flags.flag2 = true;
                    Some(SchedulerName::Sh)
                }
                "mh-fallback" => {
                    flags.flag1 = true;
                    Some(SchedulerName::Mh)
                }
                "mh-port" => {
                    flags.flag2 = true;
                    Some(SchedulerName::Mh)
                }
                other => return Err(ModelErrorKind::InvalidSchedFlag(other.to_string())),
            };
            if let Some(needs) = needs {
                if needs != scheduler {
                    return Err(ModelErrorKind::IncompatibleSchedFlag {
                        flag: name.to_string(),
                        needs,
                    });
                }
            }
        }
        Ok(flags)
    }
}

/// "IPv4" or "IPv6".
fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// The family of an address.
pub fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// Whether `addr` can be the destination of a unicast packet.
fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// Whether an interface name is one Linux accepts (`dev_valid_name`).
fn is_valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_INTERFACE_NAME
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

impl ServiceKey {
    /// The service's address family.
    pub fn family(&self) -> Family {
        match *self {
            ServiceKey::Addr { addr, .. } => family_of(addr),
            ServiceKey::Fwmark { family, .. } => family,
        }
    }
}

impl Config {
    /// Check the whole configuration; the first problem found, if any.
    /// See [`Config::problems`] for the rules.
    pub fn validate(&self) -> Result<(), ModelError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every problem in the configuration, engine settings first, then
    /// timeouts, the full-NAT pool, and each service in order. The rules
    /// are ipvsadm's and IPVS's: port 0 only with persistence; one-packet
    /// scheduling only for UDP and fwmark services; mixed address families
    /// only for tunnel real servers; DR and TUN real servers of an
    /// address/port service on the service port; weight 0..=65535;
    /// thresholds 0..=INT_MAX with lower <= upper; persistence 1..=2678400
    /// s and a netmask for the family; tunnel checksum options allowed by
    /// the tunnel type; no duplicate services or real servers. And uvs's
    /// own: fwmark services need match ranges of their family that overlap
    /// no other service's, full-NAT real servers need a pool address of
    /// their family, timeouts are 1..=2678400 s.
    pub fn problems(&self) -> Vec<ModelError> {
        let mut problems = Vec::new();
        self.check_engine(&mut problems);
        self.check_timeouts(&mut problems);
        self.check_pool(&mut problems);
        let mut seen_services: HashMap<ServiceKey, usize> = HashMap::new();
        for (index, service) in self.services.iter().enumerate() {
            if seen_services.insert(service.key, index).is_some() {
                problems.push(ModelError::new(
                    Place::Service {
                        service: index,
                        field: ServiceField::Key,
                    },
                    ModelErrorKind::DuplicateService,
                ));
            }
            self.check_service(index, service, &mut problems);
        }
        self.check_match_overlaps(&mut problems);
        problems
    }

    fn check_engine(&self, problems: &mut Vec<ModelError>) {
        let engine = &self.engine;
        let mut push = |field, kind| problems.push(ModelError::new(Place::Engine(field), kind));
        if engine.conn_table_size == 0 {
            push(
                EngineField::ConnTableSize,
                ModelErrorKind::ConnTableSizeZero,
            );
        }
        if !CONN_TAB_BITS_RANGE.contains(&engine.conn_tab_bits) {
            push(
                EngineField::ConnTabBits,
                ModelErrorKind::ConnTabBits(engine.conn_tab_bits),
            );
        }
        for (index, name) in engine.interfaces.iter().enumerate() {
            if !is_valid_interface_name(name) {
                push(
                    EngineField::Interface(index),
                    ModelErrorKind::InterfaceName(name.clone()),
                );
            } else if engine.interfaces[..index].contains(name) {
                push(
                    EngineField::Interface(index),
                    ModelErrorKind::DuplicateInterface(name.clone()),
                );
            }
        }
        if let Some(addr) = engine.tunnel_source_v4 {
            if family_of(addr) != Family::V4 {
                push(
                    EngineField::TunnelSourceV4,
                    ModelErrorKind::TunnelSourceFamily {
                        addr,
                        family: "IPv4",
                    },
                );
            }
        }
        if let Some(addr) = engine.tunnel_source_v6 {
            if family_of(addr) != Family::V6 {
                push(
                    EngineField::TunnelSourceV6,
                    ModelErrorKind::TunnelSourceFamily {
                        addr,
                        family: "IPv6",
                    },
                );
            }
        }
        if engine.conn_reuse_mode > 3 {
            push(
                EngineField::ConnReuseMode,
                ModelErrorKind::ConnReuseMode(engine.conn_reuse_mode),
            );
        }
        if !UMEM_FRAMES_RANGE.contains(&engine.umem_frames) || !engine.umem_frames.is_power_of_two()
        {
            push(
                EngineField::UmemFrames,
                ModelErrorKind::UmemFrames(engine.umem_frames),
            );
        }
        if !is_valid_interface_name(&engine.tun_device) {
            push(
                EngineField::TunDevice,
                ModelErrorKind::TunDeviceName(engine.tun_device.clone()),
            );
        }
    }

    fn check_timeouts(&self, problems: &mut Vec<ModelError>) {
        let timeouts = [
            (TimeoutField::Tcp, "tcp", self.timeouts.tcp),
            (TimeoutField::TcpFin, "tcpfin", self.timeouts.tcp_fin),
            (TimeoutField::Udp, "udp", self.timeouts.udp),
        ];
        for (field, name, value) in timeouts {
            if value == 0 || value > MAX_TIMEOUT {
                problems.push(ModelError::new(
                    Place::Timeout(field),
                    ModelErrorKind::Timeout { name, value },
                ));
            }
        }
    }

    fn check_pool(&self, problems: &mut Vec<ModelError>) {
        let pool = &self.fullnat_pool;
        for (index, &addr) in pool.addrs.iter().enumerate() {
            let place = Place::FullNatPool(PoolField::Addr(index));
            if !is_unicast(addr) {
                problems.push(ModelError::new(
                    place,
                    ModelErrorKind::PoolAddrNotUnicast(addr),
                ));
            } else if pool.addrs[..index].contains(&addr) {
                problems.push(ModelError::new(
                    place,
                    ModelErrorKind::DuplicatePoolAddr(addr),
                ));
            }
        }
        if pool.port_first == 0 || pool.port_first > pool.port_last {
            problems.push(ModelError::new(
                Place::FullNatPool(PoolField::Ports),
                ModelErrorKind::PoolPorts {
                    first: pool.port_first,
                    last: pool.port_last,
                },
            ));
        }
    }

    fn check_service(&self, index: usize, service: &ServiceConfig, problems: &mut Vec<ModelError>) {
        let place = |field| Place::Service {
            service: index,
            field,
        };
        let family = service.key.family();
        match service.key {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                if !is_unicast(addr) {
                    problems.push(ModelError::new(
                        place(ServiceField::Key),
                        ModelErrorKind::VirtualAddrNotUnicast(addr),
                    ));
                }
                if port == 0 && service.persistence.is_none() {
                    problems.push(ModelError::new(
                        place(ServiceField::Port),
                        ModelErrorKind::ZeroPortNonPersistent,
                    ));
                }
                if service.one_packet && protocol != Protocol::Udp {
                    problems.push(ModelError::new(
                        place(ServiceField::OnePacket),
                        ModelErrorKind::OnePacketNotUdp,
                    ));
                }
                if !service.fwmark_match.is_empty() {
                    problems.push(ModelError::new(
                        Place::Match {
                            service: index,
                            index: 0,
                            field: MatchField::Whole,
                        },
                        ModelErrorKind::MatchOnAddrService,
                    ));
                }
            }
            ServiceKey::Fwmark { mark, family } => {
                if mark == 0 {
                    problems.push(ModelError::new(
                        place(ServiceField::Key),
                        ModelErrorKind::FwmarkZero,
                    ));
                }
                if service.fwmark_match.is_empty() {
                    problems.push(ModelError::new(
                        place(ServiceField::Key),
                        ModelErrorKind::FwmarkWithoutMatch(mark),
                    ));
                }
                for (match_index, range) in service.fwmark_match.iter().enumerate() {
                    check_match(index, match_index, family, range, problems);
                }
            }
        }
        if let Some(persistence) = service.persistence {
            if persistence.timeout == 0 || persistence.timeout > MAX_TIMEOUT {
                problems.push(ModelError::new(
                    place(ServiceField::Persistence),
                    ModelErrorKind::PersistenceTimeout(persistence.timeout),
                ));
            }
            match (family, persistence.netmask) {
                (Family::V4, Netmask::V4(_)) => {}
                (Family::V6, Netmask::V6(prefix)) => {
                    if prefix == 0 || prefix > 128 {
                        problems.push(ModelError::new(
                            place(ServiceField::Netmask),
                            ModelErrorKind::NetmaskV6(prefix),
                        ));
                    }
                }
                _ => problems.push(ModelError::new(
                    place(ServiceField::Netmask),
                    ModelErrorKind::NetmaskFamily,
                )),
            }
        }
        if service.scheduler == SchedulerName::Mh && service.dests.len() > MH_TABLE_SIZE {
            problems.push(ModelError::new(
                place(ServiceField::Dests),
                ModelErrorKind::TooManyDestsForMh(service.dests.len()),
            ));
        }
        for (dest_index, dest) in service.dests.iter().enumerate() {
            let duplicate = service.dests[..dest_index]
                .iter()
                .any(|earlier| earlier.addr == dest.addr && earlier.port == dest.port);
            if duplicate {
                problems.push(ModelError::new(
                    Place::Dest {
                        service: index,
                        dest: dest_index,
                        field: DestField::Addr,
                    },
                    ModelErrorKind::DuplicateDest,
                ));
            }
            self.check_dest(index, service, dest_index, dest, problems);
        }
    }

    fn check_dest(
        &self,
        service_index: usize,
        service: &ServiceConfig,
        dest_index: usize,
        dest: &DestConfig,
        problems: &mut Vec<ModelError>,
    ) {
        let mut push = |field, kind| {
            problems.push(ModelError::new(
                Place::Dest {
                    service: service_index,
                    dest: dest_index,
                    field,
                },
                kind,
            ))
        };
        let dest_family = family_of(dest.addr);
        let is_tunnel = matches!(dest.method, ForwardMethod::Tunnel { .. });
        if !is_unicast(dest.addr) {
            push(
                DestField::Addr,
                ModelErrorKind::DestAddrNotUnicast(dest.addr),
            );
        }
        if dest_family != service.key.family() && !is_tunnel {
            push(DestField::Addr, ModelErrorKind::MixedFamily);
        }
        if let ServiceKey::Addr {
            port: service_port, ..
        } = service.key
        {
            let keeps_port = matches!(
                dest.method,
                ForwardMethod::Dr | ForwardMethod::Tunnel { .. }
            );
            if keeps_port && dest.port != service_port {
                push(
                    DestField::Port,
                    ModelErrorKind::DestPortNotServicePort {
                        port: dest.port,
                        service_port,
                    },
                );
            }
        }
        if dest.weight > MAX_WEIGHT {
            push(DestField::Weight, ModelErrorKind::Weight(dest.weight));
        }
        if dest.u_threshold > MAX_THRESHOLD {
            push(
                DestField::UThreshold,
                ModelErrorKind::UThreshold(dest.u_threshold),
            );
        }
        if dest.l_threshold > MAX_THRESHOLD {
            push(
                DestField::LThreshold,
                ModelErrorKind::LThreshold(dest.l_threshold),
            );
        }
        if dest.l_threshold > dest.u_threshold {
            push(
                DestField::LThreshold,
                ModelErrorKind::ThresholdOrder {
                    lower: dest.l_threshold,
                    upper: dest.u_threshold,
                },
            );
        }
        match dest.method {
            ForwardMethod::Tunnel { kind, csum } => {
                if kind == (TunnelType::Gue { port: 0 }) {
                    push(DestField::TunnelPort, ModelErrorKind::GuePortMissing);
                }
                let illegal = match (kind, csum) {
                    (TunnelType::Ipip, TunnelCsum::Csum) => Some(("tun-csum", "ipip")),
                    (TunnelType::Ipip, TunnelCsum::RemCsum) => Some(("tun-remcsum", "ipip")),
                    (TunnelType::Gre, TunnelCsum::RemCsum) => Some(("tun-remcsum", "gre")),
                    _ => None,
                };
                if let Some((option, tunnel)) = illegal {
                    push(
                        DestField::TunnelCsum,
                        ModelErrorKind::TunnelCsumIllegal { option, tunnel },
                    );
                }
            }
            ForwardMethod::FullNat => {
                let has_local = self
                    .fullnat_pool
                    .addrs
                    .iter()
                    .any(|&local| family_of(local) == dest_family);
                if !has_local {
                    push(
                        DestField::Method,
                        ModelErrorKind::FullNatNoPoolAddr {
                            addr: dest.addr,
                            family: family_name(dest_family),
                        },
                    );
                }
            }
            ForwardMethod::Dr | ForwardMethod::Nat => {}
        }
    }

    fn check_match_overlaps(&self, problems: &mut Vec<ModelError>) {
        let ranges: Vec<(usize, usize, u32, &FwmarkMatch)> = self
            .services
            .iter()
            .enumerate()
            .filter_map(|(index, service)| match service.key {
                ServiceKey::Fwmark { mark, .. } => Some((index, mark, service)),
                ServiceKey::Addr { .. } => None,
            })
            .flat_map(|(index, mark, service)| {
                service
                    .fwmark_match
                    .iter()
                    .enumerate()
                    .map(move |(match_index, range)| (index, match_index, mark, range))
            })
            .collect();
        for (position, &(service, index, mark, range)) in ranges.iter().enumerate() {
            let clash = ranges[..position]
                .iter()
                .find(|(other_service, _, other_mark, other)| {
                    *other_service != service && *other_mark != mark && ranges_overlap(range, other)
                });
            if let Some(&(_, _, other_mark, _)) = clash {
                problems.push(ModelError::new(
                    Place::Match {
                        service,
                        index,
                        field: MatchField::Whole,
                    },
                    ModelErrorKind::MatchOverlap { other_mark },
                ));
            }
        }
    }
}

fn check_match(
    service: usize,
    index: usize,
    family: Family,
    range: &FwmarkMatch,
    problems: &mut Vec<ModelError>,
) {
    let place = |field| Place::Match {
        service,
        index,
        field,
    };
    let mut families_ok = true;
    for addr in [range.addr_first, range.addr_last] {
        if family_of(addr) != family {
            families_ok = false;
            problems.push(ModelError::new(
                place(MatchField::Addr),
                ModelErrorKind::MatchFamily {
                    addr,
                    family: family_name(family),
                },
            ));
            break;
        }
    }
    if families_ok && range.addr_first > range.addr_last {
        problems.push(ModelError::new(
            place(MatchField::Addr),
            ModelErrorKind::MatchAddrOrder {
                first: range.addr_first,
                last: range.addr_last,
            },
        ));
    }
    if range.port_first > range.port_last {
        problems.push(ModelError::new(
            place(MatchField::Ports),
            ModelErrorKind::MatchPortOrder {
                first: range.port_first,
                last: range.port_last,
            },
        ));
    }
}

/// Whether some packet falls in both match ranges.
fn ranges_overlap(a: &FwmarkMatch, b: &FwmarkMatch) -> bool {
    let protocols_meet = match (a.protocol, b.protocol) {
        (Some(pa), Some(pb)) => pa == pb,
        _ => true,
    };
    protocols_meet
        && family_of(a.addr_first) == family_of(b.addr_first)
        && a.addr_first <= b.addr_last
        && b.addr_first <= a.addr_last
        && a.port_first <= b.port_last
        && b.port_first <= a.port_last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Persistence, Protocol};
    use std::net::Ipv4Addr;

    fn tcp_service(port: u16) -> ServiceConfig {
        ServiceConfig {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 100)),
                port,
            },
            scheduler: SchedulerName::Wlc,
            flags: SchedFlags::default(),
            persistence: None,
            persistence_engine: None,
            one_packet: false,
            fwmark_match: Vec::new(),
            dests: Vec::new(),
        }
    }

    #[test]
    fn zero_port_needs_persistence() {
        let mut config = Config::default();
        config.services.push(tcp_service(0));
        let error = config.validate().unwrap_err();
        assert_eq!(error.kind, ModelErrorKind::ZeroPortNonPersistent);
        assert_eq!(
            error.to_string(),
            "Zero port specified for non-persistent service"
        );
        config.services[0].persistence = Some(Persistence {
            timeout: 360,
            netmask: Netmask::full(Family::V4),
        });
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn sched_flags_follow_ipvsadm() {
        assert_eq!(
            SchedFlags::from_names(["sh-port", "sh-fallback"], SchedulerName::Sh),
            Ok(SchedFlags {
                flag1: true,
                flag2: true,
                flag3: false
            })
        );
        assert_eq!(
            SchedFlags::from_names(["flag-3"], SchedulerName::Wlc),
            Ok(SchedFlags {
                flag1: false,
                flag2: false,
                flag3: true
            })
        );
        assert_eq!(
            SchedFlags::from_names(["mh-port"], SchedulerName::Sh)
                .unwrap_err()
                .to_string(),
            "incompatible scheduler flag `mh-port'"
        );
        assert_eq!(
            SchedFlags::from_names(["bogus"], SchedulerName::Sh)
                .unwrap_err()
                .to_string(),
            "invalid scheduler flag `bogus'"
        );
    }

    #[test]
    fn overlapping_match_ranges_of_two_marks_are_rejected() {
        let range = |first: u8, last: u8| FwmarkMatch {
            protocol: None,
            addr_first: IpAddr::V4(Ipv4Addr::new(10, 0, 0, first)),
            addr_last: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            port_first: 0,
            port_last: 65535,
        };
        let fwmark = |mark, ranges| ServiceConfig {
            key: ServiceKey::Fwmark {
                mark,
                family: Family::V4,
            },
            fwmark_match: ranges,
            ..tcp_service(80)
        };
        let mut config = Config::default();
        config.services.push(fwmark(1, vec![range(1, 10)]));
        config.services.push(fwmark(2, vec![range(11, 20)]));
        assert_eq!(config.validate(), Ok(()));
        config.services.push(fwmark(3, vec![range(20, 30)]));
        let error = config.validate().unwrap_err();
        assert_eq!(error.kind, ModelErrorKind::MatchOverlap { other_mark: 2 });
        assert_eq!(
            error.place,
            Place::Match {
                service: 2,
                index: 0,
                field: MatchField::Whole
            }
        );
    }
}
