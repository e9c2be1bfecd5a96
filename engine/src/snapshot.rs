//! Configuration snapshots: the immutable view of services, real servers
//! and built schedulers that workers read.
//!
//! The control plane builds a [`Snapshot`] from a [`uvs_conf::Config`]
//! (and the snapshot it replaces, so that real servers keep their counters
//! and schedulers their state across edits, as IPVS's do), then swaps it in
//! atomically; a worker loads it once per batch and never waits on control.
//! Building is all-or-nothing: an error leaves the running snapshot alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use uvs_conf::{
    Config, Family, ForwardMethod, FwmarkMatch, Persistence, PersistenceEngine, Protocol,
    SchedFlags, SchedulerName, ServiceConfig, ServiceKey, Timeouts,
};

use crate::dest::{Dest, DestCounters, DestId, DestRegistry};
use crate::sched::{self, SchedError, Scheduler};

/// Per-service traffic counters, shared by every snapshot of the service.
#[derive(Debug, Default)]
pub struct ServiceStats {
    /// Connections scheduled.
    pub conns: AtomicU64,
    /// Packets client → real server.
    pub in_pkts: AtomicU64,
    /// Packets real server → client.
    pub out_pkts: AtomicU64,
    /// Bytes client → real server.
    pub in_bytes: AtomicU64,
    /// Bytes real server → client.
    pub out_bytes: AtomicU64,
}

impl ServiceStats {
    /// Count one inbound packet of `bytes` bytes.
    #[inline]
    pub fn count_in(&self, bytes: usize) {
        self.in_pkts.fetch_add(1, Ordering::Relaxed);
        self.in_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Count one outbound packet of `bytes` bytes.
    #[inline]
    pub fn count_out(&self, bytes: usize) {
        self.out_pkts.fetch_add(1, Ordering::Relaxed);
        self.out_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// One virtual service inside a snapshot.
#[derive(Debug)]
pub struct Service {
    /// What the service listens on.
    pub key: ServiceKey,
    /// Scheduler name.
    pub scheduler_name: SchedulerName,
    /// Scheduler flags.
    pub flags: SchedFlags,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// Persistence engine (`--pe`), used with persistence only.
    pub persistence_engine: Option<PersistenceEngine>,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// Real servers in IPVS list order: newest first.
    pub dests: Vec<Dest>,
    /// The scheduler built for `dests`.
    pub scheduler: Box<dyn Scheduler>,
    /// Counters shared across snapshots.
    pub stats: Arc<ServiceStats>,
}

impl Service {
    /// The service's virtual port (0 for fwmark and all-port services).
    pub fn port(&self) -> u16 {
        match self.key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }

    /// The fwmark, or 0.
    pub fn fwmark(&self) -> u32 {
        match self.key {
            ServiceKey::Fwmark { mark, .. } => mark,
            ServiceKey::Addr { .. } => 0,
        }
    }

    /// Find a real server of this snapshot by its counters' id.
    pub fn dest_by_id(&self, id: DestId) -> Option<&Dest> {
        self.dests.iter().find(|d| d.id == id)
    }
}

/// Why a configuration could not become a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// A scheduler refused its real servers.
    #[error("service {service}: {source}")]
    Scheduler {
        /// The service, as ipvsadm prints it.
        service: String,
        /// What the scheduler said.
        source: SchedError,
    },
    /// The destination registry is full.
    #[error("too many real servers: the engine tracks at most {capacity}")]
    TooManyDests {
        /// Registry capacity.
        capacity: usize,
    },
}

/// Up to this many address services are found by a scan, not a hash.
pub const FEW_SERVICES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AddrKey {
    protocol: u8,
    addr: IpAddr,
    port: u16,
}

/// A fwmark service's match range, resolved to the service index.
#[derive(Debug, Clone)]
struct FwmarkRule {
    range: FwmarkMatch,
    family: Family,
    service: usize,
}

/// The immutable configuration workers read.
#[derive(Debug)]
pub struct Snapshot {
    services: Vec<Service>,
    by_addr: HashMap<AddrKey, usize, ahash::RandomState>,
    /// The same entries as `by_addr` when there are at most
    /// [`FEW_SERVICES`] of them (else empty): a short scan of plain
    /// comparisons is cheaper than hashing the address.
    few_addr: Vec<(AddrKey, usize)>,
    fwmark_rules: Vec<FwmarkRule>,
    /// Where each real server sits, indexed by its [`DestId`] (ids are
    /// small and dense: the registry hands out slot numbers), so the
    /// per-packet lookup is one bounds-checked load.
    by_dest: Vec<Option<(u32, u32)>>,
    virtual_addrs: std::collections::HashSet<IpAddr, ahash::RandomState>,
    reply_traffic: bool,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Configured tunnel source addresses (IPv4, IPv6); `None` = the
    /// address of the port that routes to the real server.
    pub tunnel_sources: (Option<IpAddr>, Option<IpAddr>),
    /// Real servers that the previous snapshot had and this one dropped;
    /// [`Snapshot::publish`] marks them unavailable once published.
    removed: Vec<DestId>,
    /// Deleted real servers that connections may still reference (IPVS's
    /// trash): added again, they come back with their id, counters and
    /// connections.
    trash: HashMap<DestIdentity, DestId>,
}

/// What identifies a real server across snapshots: its service, address
/// and port.
type DestIdentity = (ServiceKey, IpAddr, u16);

/// The identity of a real server across snapshots.
fn dest_identity(service: &ServiceKey, addr: IpAddr, port: u16) -> DestIdentity {
    (*service, addr, port)
}

impl Snapshot {
    /// An empty snapshot: no services.
    pub fn empty() -> Snapshot {
        Snapshot {
            services: Vec::new(),
            by_addr: HashMap::default(),
            few_addr: Vec::new(),
            fwmark_rules: Vec::new(),
            by_dest: Vec::new(),
            virtual_addrs: Default::default(),
            reply_traffic: false,
            timeouts: Timeouts::default(),
            tunnel_sources: (None, None),
            removed: Vec::new(),
            trash: HashMap::new(),
        }
    }

    /// Build a snapshot for `config`. Real servers and services that
    /// `prev` already had keep their counters, ids and scheduler state.
    pub fn build(
        config: &Config,
        prev: Option<&Snapshot>,
        registry: &DestRegistry,
    ) -> Result<Snapshot, SnapshotError> {
        let mut prev_dests: HashMap<DestIdentity, &Dest> = HashMap::new();
        let mut prev_services: HashMap<ServiceKey, &Service> = HashMap::new();
        if let Some(prev) = prev {
            for svc in &prev.services {
                prev_services.insert(svc.key, svc);
                for d in &svc.dests {
                    prev_dests.insert(dest_identity(&svc.key, d.addr, d.port), d);
                }
            }
        }

        let mut allocated: Vec<DestId> = Vec::new();
        let (revived, mut trash) = Self::revive_from_trash(config, prev, &prev_dests, registry);
        // On error, retiring a revived real server puts it back as it was.
        allocated.extend(revived.values().map(|(id, _)| *id));
        let result = Self::build_services(
            config,
            &prev_dests,
            &revived,
            &prev_services,
            registry,
            &mut allocated,
        );
        let services = match result {
            Ok(services) => services,
            Err(e) => {
                for id in allocated {
                    registry.retire(id);
                }
                return Err(e);
            }
        };

        let mut kept: std::collections::HashSet<DestId> = std::collections::HashSet::new();
        for svc in &services {
            for d in &svc.dests {
                kept.insert(d.id);
            }
        }
        let mut removed = Vec::new();
        for (identity, d) in &prev_dests {
            if !kept.contains(&d.id) {
                removed.push(d.id);
                trash.insert(*identity, d.id);
            }
        }
        // A slot in use by a live real server is no longer the trashed one.
        trash.retain(|_, id| !kept.contains(id));

        let mut by_addr = HashMap::default();
        let mut fwmark_rules = Vec::new();
        let mut by_dest: Vec<Option<(u32, u32)>> = Vec::new();
        let mut virtual_addrs = std::collections::HashSet::default();
        let mut reply_traffic = false;
        for (index, svc) in services.iter().enumerate() {
            for (dest_index, d) in svc.dests.iter().enumerate() {
                let slot = d.id.0 as usize;
                if by_dest.len() <= slot {
                    by_dest.resize(slot + 1, None);
                }
                by_dest[slot] = Some((index as u32, dest_index as u32));
                reply_traffic |= matches!(d.method, ForwardMethod::Nat | ForwardMethod::FullNat);
            }
            match svc.key {
                ServiceKey::Addr {
                    protocol,
                    addr,
                    port,
                } => {
                    by_addr.insert(
                        AddrKey {
                            protocol: protocol.number(),
                            addr,
                            port,
                        },
                        index,
                    );
                    virtual_addrs.insert(addr);
                }
                ServiceKey::Fwmark { family, .. } => {
                    let cfg = config
                        .services
                        .iter()
                        .find(|s| s.key == svc.key)
                        .map(|s| s.fwmark_match.as_slice())
                        .unwrap_or(&[]);
                    for range in cfg {
                        if range.addr_first == range.addr_last {
                            virtual_addrs.insert(range.addr_first);
                        }
                        fwmark_rules.push(FwmarkRule {
                            range: range.clone(),
                            family,
                            service: index,
                        });
                    }
                }
            }
        }

        let few_addr = if by_addr.len() <= FEW_SERVICES {
            by_addr.iter().map(|(key, index)| (*key, *index)).collect()
        } else {
            Vec::new()
        };
        Ok(Snapshot {
            services,
            by_addr,
            few_addr,
            fwmark_rules,
            by_dest,
            virtual_addrs,
            reply_traffic,
            timeouts: config.timeouts,
            tunnel_sources: (
                config.engine.tunnel_source_v4,
                config.engine.tunnel_source_v6,
            ),
            removed,
            trash,
        })
    }

    /// Take back from the previous snapshot's trash every real server that
    /// `config` adds again while connections still reference it, before
    /// anything is allocated (so that a slot freed meanwhile and handed
    /// out again is never mistaken for the trashed one). Returns the
    /// revived real servers and what is left of the trash.
    #[allow(clippy::type_complexity)]
    fn revive_from_trash(
        config: &Config,
        prev: Option<&Snapshot>,
        prev_dests: &HashMap<DestIdentity, &Dest>,
        registry: &DestRegistry,
    ) -> (
        HashMap<DestIdentity, (DestId, Arc<DestCounters>)>,
        HashMap<DestIdentity, DestId>,
    ) {
        let mut trash = prev.map(|p| p.trash.clone()).unwrap_or_default();
        // Stale entries: no reference left, or the slot now belongs to a
        // live real server.
        let live: std::collections::HashSet<DestId> = prev_dests.values().map(|d| d.id).collect();
        trash.retain(|_, id| {
            !live.contains(id)
                && registry
                    .counters(*id)
                    .is_some_and(|c| c.refs.load(Ordering::Acquire) > 0)
        });
        let mut revived = HashMap::new();
        for svc in &config.services {
            for d in &svc.dests {
                let identity = dest_identity(&svc.key, d.addr, d.port);
                if prev_dests.contains_key(&identity) {
                    continue;
                }
                let Some(&id) = trash.get(&identity) else {
                    continue;
                };
                if registry.revive(id) {
                    if let Some(counters) = registry.counters_arc(id) {
                        revived.insert(identity, (id, counters));
                    }
                }
                trash.remove(&identity);
            }
        }
        (revived, trash)
    }

    fn build_services(
        config: &Config,
        prev_dests: &HashMap<DestIdentity, &Dest>,
        revived: &HashMap<DestIdentity, (DestId, Arc<DestCounters>)>,
        prev_services: &HashMap<ServiceKey, &Service>,
        registry: &DestRegistry,
        allocated: &mut Vec<DestId>,
    ) -> Result<Vec<Service>, SnapshotError> {
        let mut services = Vec::with_capacity(config.services.len());
        for svc_cfg in &config.services {
            let prev_svc = prev_services.get(&svc_cfg.key).copied();
            let dests = Self::build_dests(svc_cfg, prev_dests, revived, registry, allocated)?;
            let prev_sched = prev_svc
                .filter(|p| p.scheduler_name == svc_cfg.scheduler)
                .map(|p| p.scheduler.as_ref());
            let scheduler = sched::build(svc_cfg.scheduler, svc_cfg.flags, &dests, prev_sched)
                .map_err(|source| SnapshotError::Scheduler {
                    service: service_name(&svc_cfg.key),
                    source,
                })?;
            services.push(Service {
                key: svc_cfg.key,
                scheduler_name: svc_cfg.scheduler,
                flags: svc_cfg.flags,
                persistence: svc_cfg.persistence,
                persistence_engine: svc_cfg.persistence_engine,
                one_packet: svc_cfg.one_packet,
                dests,
                scheduler,
                stats: prev_svc.map(|p| Arc::clone(&p.stats)).unwrap_or_default(),
            });
        }
        Ok(services)
    }

    fn build_dests(
        svc_cfg: &ServiceConfig,
        prev_dests: &HashMap<DestIdentity, &Dest>,
        revived: &HashMap<DestIdentity, (DestId, Arc<DestCounters>)>,
        registry: &DestRegistry,
        allocated: &mut Vec<DestId>,
    ) -> Result<Vec<Dest>, SnapshotError> {
        let mut dests = Vec::with_capacity(svc_cfg.dests.len());
        // IPVS adds a real server at the head of its list: newest first.
        for d in svc_cfg.dests.iter().rev() {
            let identity = dest_identity(&svc_cfg.key, d.addr, d.port);
            let known = prev_dests
                .get(&identity)
                .map(|prev| (prev.id, Arc::clone(&prev.counters)))
                .or_else(|| revived.get(&identity).cloned());
            let (id, counters) = match known {
                Some(known) => known,
                None => {
                    let (id, counters) = registry
                        .allocate(d.weight, d.u_threshold, d.l_threshold)
                        .map_err(|full| SnapshotError::TooManyDests {
                            capacity: full.capacity as usize,
                        })?;
                    allocated.push(id);
                    (id, counters)
                }
            };
            dests.push(Dest {
                id,
                addr: d.addr,
                port: d.port,
                method: d.method,
                weight: d.weight,
                u_threshold: d.u_threshold,
                l_threshold: d.l_threshold,
                counters,
            });
        }
        Ok(dests)
    }

    /// Once this snapshot is published: give every real server's shared
    /// counters its new weight and thresholds, and retire the real servers
    /// it dropped (unavailable at once; their counters are freed when
    /// their last connection is gone).
    pub fn publish(&self, registry: &DestRegistry) {
        for d in self.services.iter().flat_map(|s| s.dests.iter()) {
            d.counters
                .set_limits(d.weight, d.u_threshold, d.l_threshold);
        }
        for &id in &self.removed {
            registry.retire(id);
        }
    }

    /// All services.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// A service by index.
    pub fn service(&self, index: usize) -> Option<&Service> {
        self.services.get(index)
    }

    /// The service a new packet to `daddr:dport` belongs to, in IPVS's
    /// order: fwmark services first, then protocol/address/port, then the
    /// protocol/address all-port (port 0) service.
    pub fn find_service(&self, protocol: u8, daddr: IpAddr, dport: u16) -> Option<usize> {
        if !self.fwmark_rules.is_empty() {
            if let Some(index) = self.find_fwmark(protocol, daddr, dport) {
                return Some(index);
            }
        }
        let key = AddrKey {
            protocol,
            addr: daddr,
            port: dport,
        };
        let any_port = AddrKey { port: 0, ..key };
        if self.by_addr.len() <= FEW_SERVICES {
            let find = |wanted: &AddrKey| {
                self.few_addr
                    .iter()
                    .find(|(k, _)| k == wanted)
                    .map(|&(_, index)| index)
            };
            return find(&key).or_else(|| find(&any_port));
        }
        if let Some(&index) = self.by_addr.get(&key) {
            return Some(index);
        }
        self.by_addr.get(&any_port).copied()
    }

    fn find_fwmark(&self, protocol: u8, daddr: IpAddr, dport: u16) -> Option<usize> {
        self.fwmark_rules
            .iter()
            .find(|rule| {
                let family_ok = matches!(
                    (rule.family, daddr),
                    (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
                );
                let proto_ok = match rule.range.protocol {
                    Some(p) => p.number() == protocol,
                    None => {
                        protocol == Protocol::Tcp.number()
                            || protocol == Protocol::Udp.number()
                            || protocol == Protocol::Sctp.number()
                    }
                };
                family_ok
                    && proto_ok
                    && addr_in_range(daddr, rule.range.addr_first, rule.range.addr_last)
                    && (rule.range.port_first..=rule.range.port_last).contains(&dport)
            })
            .map(|rule| rule.service)
    }

    /// The configured tunnel source for a real server of `real_server`'s
    /// family, if any.
    pub fn tunnel_source(&self, real_server: IpAddr) -> Option<IpAddr> {
        match real_server {
            IpAddr::V4(_) => self.tunnel_sources.0,
            IpAddr::V6(_) => self.tunnel_sources.1,
        }
    }

    /// Whether some real server is reached by NAT or full NAT, so that
    /// replies come back through the director.
    pub fn has_reply_traffic(&self) -> bool {
        self.reply_traffic
    }

    /// Whether `addr` is a virtual address of some service.
    pub fn owns_address(&self, addr: IpAddr) -> bool {
        self.virtual_addrs.contains(&addr)
            || self
                .fwmark_rules
                .iter()
                .any(|r| addr_in_range(addr, r.range.addr_first, r.range.addr_last))
    }

    /// The service and real server that `id` belongs to in this snapshot
    /// (none once the real server was deleted).
    pub fn locate_dest(&self, id: DestId) -> (Option<&Service>, Option<&Dest>) {
        match self.by_dest.get(id.0 as usize) {
            Some(&Some((s, d))) => {
                let service = self.services.get(s as usize);
                (service, service.and_then(|svc| svc.dests.get(d as usize)))
            }
            _ => (None, None),
        }
    }
}

fn addr_in_range(addr: IpAddr, first: IpAddr, last: IpAddr) -> bool {
    match (addr, first, last) {
        (IpAddr::V4(a), IpAddr::V4(f), IpAddr::V4(l)) => {
            (u32::from(f)..=u32::from(l)).contains(&u32::from(a))
        }
        (IpAddr::V6(a), IpAddr::V6(f), IpAddr::V6(l)) => {
            (u128::from(f)..=u128::from(l)).contains(&u128::from(a))
        }
        _ => false,
    }
}

/// A service as ipvsadm names it: `TCP  10.0.0.1:80`, `FWM  5`.
pub fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let proto = match protocol {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
            };
            match addr {
                IpAddr::V4(a) => format!("{proto:<4} {a}:{port}"),
                IpAddr::V6(a) => format!("{proto:<4} [{a}]:{port}"),
            }
        }
        ServiceKey::Fwmark { mark, family } => match family {
            Family::V4 => format!("FWM  {mark}"),
            Family::V6 => format!("FWM  {mark} IPv6"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::proto;

    /// `count` TCP services 192.0.2.n:80 plus an all-ports service on
    /// 192.0.2.200 and a UDP service on 192.0.2.1:53.
    fn snapshot_with(count: u8) -> Snapshot {
        let mut toml = String::new();
        for n in 1..=count {
            toml.push_str(&format!(
                "[[service]]\nprotocol = \"tcp\"\naddress = \"192.0.2.{n}:80\"\n"
            ));
        }
        toml.push_str(
            "[[service]]\nprotocol = \"tcp\"\naddress = \"192.0.2.200:0\"\npersistent = 300\n",
        );
        toml.push_str("[[service]]\nprotocol = \"udp\"\naddress = \"192.0.2.1:53\"\n");
        let config = uvs_conf::file::parse_config("test", &toml).expect("valid config");
        let dests = DestRegistry::new(64);
        Snapshot::build(&config, None, &dests).expect("snapshot builds")
    }

    fn lookups(snapshot: &Snapshot, count: u8) {
        let v4 = |n: u8| IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, n));
        for n in 1..=count {
            let index = snapshot
                .find_service(proto::TCP, v4(n), 80)
                .expect("service");
            assert_eq!(
                snapshot.services[index].key,
                ServiceKey::Addr {
                    protocol: uvs_conf::Protocol::Tcp,
                    addr: v4(n),
                    port: 80
                }
            );
            assert_eq!(snapshot.services[index].port(), 80);
            assert_eq!(snapshot.find_service(proto::TCP, v4(n), 81), None);
        }
        let all_ports = snapshot
            .find_service(proto::TCP, v4(200), 4242)
            .expect("port 0");
        assert_eq!(snapshot.services[all_ports].port(), 0);
        let udp = snapshot.find_service(proto::UDP, v4(1), 53).expect("udp");
        assert_ne!(Some(udp), snapshot.find_service(proto::TCP, v4(1), 80));
        assert_eq!(snapshot.find_service(proto::UDP, v4(2), 53), None);
        assert_eq!(snapshot.find_service(proto::TCP, v4(201), 80), None);
    }

    #[test]
    fn few_services_are_found_by_scan_and_many_by_hash_with_the_same_answers() {
        let few = snapshot_with(3);
        assert_eq!(few.few_addr.len(), few.by_addr.len());
        lookups(&few, 3);
        let many = snapshot_with(12);
        assert!(many.few_addr.is_empty());
        lookups(&many, 12);
    }
}
