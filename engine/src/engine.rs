//! The engine: one call, [`Engine::process`], takes a batch of frames,
//! decides for each, rewrites it in place and says where it goes.
//!
//! A packet's way (IPVS's `ip_vs_in` / `ip_vs_out` in one place):
//! parse → ICMP error quoting a tracked connection? → connection lookup by
//! the client tuple (input) → by the reply tuple (NAT / full-NAT output) →
//! service lookup → persistence template → scheduler → new connection →
//! forwarding method. Frames that no service owns are passed to the
//! kernel untouched.
//!
//! Workers share one [`Engine`]; each keeps a [`Worker`] of its own with
//! plain counters, folded into the shared ones once per batch. The clock
//! is read by the caller once per batch. The configuration and the
//! network view are immutable snapshots loaded once per batch and
//! swapped by the control plane without stopping anyone.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use uvs_conf::{Config, ForwardMethod, Timeouts};

use crate::conn::{
    sctp_may_create, tcp_may_create, ConnEndpoints, ConnInfo, ConnKey, ConnRef, ConnTable,
    ConnTableConfig, Direction, InKeyHash, InsertError, NewConn, OutKeyHash, PacketOutcome,
    ReplyKey, TcpFlags, TemplateKey, SWEEP_MAX_PER_CALL,
};
use crate::dest::{Dest, DestId, DestRegistry};
use crate::prefetch;
use crate::route::{NeighbourMisses, NetView, NextHop, PortId, RouteError};
use crate::sched::Flow;
use crate::snapshot::{Service, ServiceStats, Snapshot, SnapshotError};
use crate::time::Millis;
use crate::wire::{self, proto, Network, ParsedFrame, WireError};
use crate::xmit::{self, FrameBuf, TunnelParams, XmitError, XmitOutcome, XmitParams};

/// Frames ahead of the look-ahead parse whose headers `process`
/// prefetches. The I/O backend hands over frames just written by another
/// core (AF_XDP copy mode copies each into the UMEM on the CPU that ran
/// the RX softirq), so their first read misses this core's caches; eight
/// steps (~0.5 µs) cover that, with a few misses in flight at a time.
const HEADER_AHEAD: usize = 8;
/// Frames ahead whose connection-table bucket `process` prefetches.
const BUCKET_AHEAD: usize = 4;
/// Frames ahead whose first bucket entry `process` prefetches (its
/// bucket was prefetched `BUCKET_AHEAD - ENTRY_AHEAD` frames earlier).
const ENTRY_AHEAD: usize = 2;
/// Hashes remembered by the prefetch pipeline (a power of two above
/// `BUCKET_AHEAD`).
const PREFETCH_RING: usize = 8;

/// Most real servers alive at once (including deleted ones that still
/// have connections).
pub const DEST_REGISTRY_CAPACITY: u32 = 16_384;

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Not decided yet.
    #[default]
    Pending,
    /// Send the (rewritten) frame out of this port.
    Forward(PortId),
    /// Not ours: hand the frame to the kernel untouched.
    Pass,
    /// Drop the frame; the reason was counted.
    Drop(DropReason),
}

/// Why the engine dropped a frame: one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The frame failed to parse as IP.
    Malformed,
    /// A TCP packet for a service matched no connection and was no SYN
    /// (or an SCTP packet that was no INIT).
    NoConnection,
    /// The service has no usable real server.
    NoDest,
    /// The connection's real server was deleted.
    DestGone,
    /// The connection table is full.
    TableFull,
    /// Full NAT found no free local port.
    FullNatPortsExhausted,
    /// No route to the next hop.
    NoRoute,
    /// The next hop's MAC is unknown.
    NoNeighbour,
    /// A forwarding method refused the frame.
    Xmit,
    /// A non-first fragment of a service's traffic (no ports to match).
    Fragment,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 10] = [
        DropReason::Malformed,
        DropReason::NoConnection,
        DropReason::NoDest,
        DropReason::DestGone,
        DropReason::TableFull,
        DropReason::FullNatPortsExhausted,
        DropReason::NoRoute,
        DropReason::NoNeighbour,
        DropReason::Xmit,
        DropReason::Fragment,
    ];

    /// A short snake_case name for logs and stats.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NoConnection => "no_connection",
            DropReason::NoDest => "no_dest",
            DropReason::DestGone => "dest_gone",
            DropReason::TableFull => "table_full",
            DropReason::FullNatPortsExhausted => "fullnat_ports_exhausted",
            DropReason::NoRoute => "no_route",
            DropReason::NoNeighbour => "no_neighbour",
            DropReason::Xmit => "xmit",
            DropReason::Fragment => "fragment",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One frame of a batch: the buffer (with headroom for encapsulation),
/// where the frame sits in it, the port it came in on, and the verdict.
#[derive(Debug)]
pub struct Packet<'a> {
    /// The frame inside its buffer; rewritten in place.
    pub frame: FrameBuf<'a>,
    /// Ingress port.
    pub ingress: PortId,
    /// The engine's decision.
    pub verdict: Verdict,
}

/// Engine-wide counters (sums of every worker's).
#[derive(Debug, Default)]
pub struct EngineCounters {
    drops: [AtomicU64; DropReason::ALL.len()],
    /// Frames passed to the kernel.
    pub passed: AtomicU64,
    /// Frames forwarded.
    pub forwarded: AtomicU64,
    /// ICMP errors sent back to a sender (frag-needed, time exceeded).
    pub icmp_sent: AtomicU64,
    /// New connections.
    pub new_conns: AtomicU64,
}

impl EngineCounters {
    /// Frames dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].load(Ordering::Relaxed)
    }
}

/// A worker's own counters: plain integers, folded into the engine's
/// after each batch.
#[derive(Debug, Default)]
pub struct Worker {
    drops: [u64; DropReason::ALL.len()],
    passed: u64,
    forwarded: u64,
    icmp_sent: u64,
    new_conns: u64,
    hops: HopCache,
}

/// Next hops remembered per worker (for the current network view).
pub const HOP_CACHE_SIZE: usize = 4;

/// Next hops found in the current network view. A view is immutable
/// (the control plane swaps in a new one), and the real servers repeat
/// from packet to packet, so most inbound packets skip the route scan
/// and the neighbour hash. The cache holds the view it was filled from
/// (so that view's address cannot be reused by a newer one) and is
/// cleared when a batch brings another view; errors are not cached.
#[derive(Debug, Default)]
struct HopCache {
    entries: [Option<(IpAddr, NextHop)>; HOP_CACHE_SIZE],
    next: usize,
    view: Option<Arc<NetView>>,
}

impl HopCache {
    /// Start a batch under `net`: keep the entries if it is the view they
    /// came from, else forget them.
    fn begin_batch(&mut self, net: &Arc<NetView>) {
        if self.view.as_ref().is_some_and(|v| Arc::ptr_eq(v, net)) {
            return;
        }
        self.entries = Default::default();
        self.next = 0;
        self.view = Some(Arc::clone(net));
    }

    #[inline(always)]
    fn next_hop(&mut self, net: &NetView, dst: IpAddr) -> Result<NextHop, RouteError> {
        // A plain loop: as `iter().flatten().find()` it was left out of
        // line (a `Fuse::try_fold` call) when `process` grew.
        for (addr, hop) in self.entries.iter().flatten() {
            if *addr == dst {
                return Ok(*hop);
            }
        }
        let hop = net.next_hop(dst)?;
        if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = Some((dst, hop));
        }
        self.next = (self.next + 1) % HOP_CACHE_SIZE;
        Ok(hop)
    }
}

impl Worker {
    /// A worker with zeroed counters.
    pub fn new() -> Worker {
        Worker::default()
    }

    fn flush(&mut self, into: &EngineCounters) {
        for (i, n) in self.drops.iter_mut().enumerate() {
            if *n != 0 {
                into.drops[i].fetch_add(*n, Ordering::Relaxed);
                *n = 0;
            }
        }
        for (local, shared) in [
            (&mut self.passed, &into.passed),
            (&mut self.forwarded, &into.forwarded),
            (&mut self.icmp_sent, &into.icmp_sent),
            (&mut self.new_conns, &into.new_conns),
        ] {
            if *local != 0 {
                shared.fetch_add(*local, Ordering::Relaxed);
                *local = 0;
            }
        }
    }
}

/// Why the engine could not start or take a configuration.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] uvs_conf::ModelError),
    /// A snapshot could not be built.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// The data plane.
#[derive(Debug)]
pub struct Engine {
    snapshot: ArcSwap<Snapshot>,
    net: ArcSwap<NetView>,
    conns: ConnTable,
    dests: Arc<DestRegistry>,
    counters: EngineCounters,
    neighbour_misses: NeighbourMisses,
}

/// Distinct (real server, service) pairs whose counts one batch keeps
/// before it must fold them into the shared counters.
const BATCH_STATS_ENTRIES: usize = 8;

/// One (real server, service) pair's packet and byte counts in a batch.
#[derive(Debug, Clone, Copy)]
struct PendingStats<'s> {
    dest: DestId,
    service: Option<&'s ServiceStats>,
    in_pkts: u64,
    in_bytes: u64,
    out_pkts: u64,
    out_bytes: u64,
}

/// The traffic counters of one batch, kept as plain integers and added
/// to the shared atomic counters (the real server's and the service's)
/// once at the end of the batch, instead of four shared `fetch_add`s
/// per packet. Readers (`ipvsadm --stats`) see a batch's packets when
/// the batch is done, as they see its verdicts.
#[derive(Debug, Default)]
struct BatchStats<'s> {
    entries: [Option<PendingStats<'s>>; BATCH_STATS_ENTRIES],
    len: usize,
}

impl<'s> BatchStats<'s> {
    /// Count a packet of `bytes` bytes going `direction` for real server
    /// `dest` (and its service, when it still has one). Always inlined:
    /// the packet path calls it from two places (DR and the others).
    #[inline(always)]
    fn count(
        &mut self,
        dests: &DestRegistry,
        dest: DestId,
        service: Option<&'s ServiceStats>,
        direction: Direction,
        bytes: u64,
    ) {
        let len = self.len.min(BATCH_STATS_ENTRIES);
        // An index loop, not `iter_mut().flatten().find()`: the adapter
        // was left out of line when `process` grew.
        let mut found = None;
        for (i, e) in self.entries[..len].iter().enumerate() {
            if let Some(e) = e {
                if e.dest == dest
                    && match (e.service, service) {
                        (Some(a), Some(b)) => std::ptr::eq(a, b),
                        (None, None) => true,
                        _ => false,
                    }
                {
                    found = Some(i);
                    break;
                }
            }
        }
        let entry = match found
            .and_then(|i| self.entries.get_mut(i))
            .and_then(Option::as_mut)
        {
            Some(entry) => entry,
            None => {
                if len == BATCH_STATS_ENTRIES {
                    self.flush(dests);
                }
                let slot = self.len.min(BATCH_STATS_ENTRIES - 1);
                self.len = slot + 1;
                self.entries[slot].insert(PendingStats {
                    dest,
                    service,
                    in_pkts: 0,
                    in_bytes: 0,
                    out_pkts: 0,
                    out_bytes: 0,
                })
            }
        };
        match direction {
            Direction::Input => {
                entry.in_pkts += 1;
                entry.in_bytes += bytes;
            }
            Direction::Output => {
                entry.out_pkts += 1;
                entry.out_bytes += bytes;
            }
        }
    }

    /// Add every pending count to the shared counters and start empty.
    fn flush(&mut self, dests: &DestRegistry) {
        let len = self.len.min(BATCH_STATS_ENTRIES);
        for entry in self.entries[..len].iter_mut() {
            let Some(e) = entry.take() else { continue };
            let add = |cell: &AtomicU64, n: u64| {
                if n != 0 {
                    cell.fetch_add(n, Ordering::Relaxed);
                }
            };
            if let Some(c) = dests.counters(e.dest) {
                add(&c.in_pkts, e.in_pkts);
                add(&c.in_bytes, e.in_bytes);
                add(&c.out_pkts, e.out_pkts);
                add(&c.out_bytes, e.out_bytes);
            }
            if let Some(svc) = e.service {
                add(&svc.in_pkts, e.in_pkts);
                add(&svc.in_bytes, e.in_bytes);
                add(&svc.out_pkts, e.out_pkts);
                add(&svc.out_bytes, e.out_bytes);
            }
        }
        self.len = 0;
    }
}

/// The per-packet view of what a connection's packet needs.
struct Decided<'s> {
    /// The real server's counters.
    dest_id: DestId,
    /// Forwarding method.
    method: ForwardMethod,
    /// IP protocol of the connection.
    protocol: u8,
    /// Client, virtual service, real server, local address.
    ends: ConnEndpoints,
    service: Option<&'s Service>,
    dest: Option<&'s Dest>,
}

impl Engine {
    /// An engine for `config`, sending frames over `net`.
    pub fn new(config: &Config, net: NetView) -> Result<Engine, EngineError> {
        config.validate()?;
        let dests = Arc::new(DestRegistry::new(DEST_REGISTRY_CAPACITY));
        let snapshot = Snapshot::build(config, None, &dests)?;
        snapshot.publish(&dests);
        let conns = ConnTable::new(
            ConnTableConfig {
                capacity: config.engine.conn_table_size,
                timeouts: config.timeouts,
                expire_nodest_conn: config.engine.expire_nodest_conn,
                expire_quiescent_template: config.engine.expire_quiescent_template,
                conn_reuse_mode: config.engine.conn_reuse_mode,
                fullnat_pool: config.fullnat_pool.clone(),
            },
            Arc::clone(&dests),
        );
        Ok(Engine {
            snapshot: ArcSwap::from_pointee(snapshot),
            net: ArcSwap::from_pointee(net),
            conns,
            dests,
            counters: EngineCounters::default(),
            neighbour_misses: NeighbourMisses::default(),
        })
    }

    /// Apply a new configuration atomically: build a snapshot that keeps
    /// every surviving real server's counters, swap it in, then retire the
    /// real servers it dropped. On error nothing changes.
    pub fn apply(&self, config: &Config) -> Result<(), EngineError> {
        config.validate()?;
        let current = self.snapshot.load_full();
        let next = Snapshot::build(config, Some(&current), &self.dests)?;
        self.conns.set_timeouts(config.timeouts);
        self.conns.set_sysctls(
            config.engine.expire_nodest_conn,
            config.engine.expire_quiescent_template,
            config.engine.conn_reuse_mode,
        );
        let next = Arc::new(next);
        self.snapshot.store(Arc::clone(&next));
        next.publish(&self.dests);
        Ok(())
    }

    /// Destinations dropped for want of a neighbour since the last call
    /// (moved into `out`), for the daemon to have the kernel resolve.
    pub fn take_neighbour_misses(&self, out: &mut Vec<IpAddr>) {
        self.neighbour_misses.take(out);
    }

    /// Replace the network view (ports, routes, neighbours).
    pub fn set_net(&self, net: NetView) {
        self.net.store(Arc::new(net));
    }

    /// The current configuration snapshot.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// The connection table.
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    /// The destination registry.
    pub fn dests(&self) -> &DestRegistry {
        &self.dests
    }

    /// Engine-wide counters.
    pub fn counters(&self) -> &EngineCounters {
        &self.counters
    }

    /// Current timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.snapshot.load().timeouts
    }

    /// The clock's work with no batch to carry it: the connection
    /// expiry owed for the time elapsed ([`ConnTable::expire_due`],
    /// unbounded). I/O backends call it when they wake without traffic
    /// and after a batch that left no backlog, so that connections
    /// expire on time however little traffic arrives. Returns the
    /// entries expired.
    pub fn tick(&self, now: Millis) -> usize {
        self.conns.expire_due(now, usize::MAX)
    }

    /// Decide, rewrite and route every frame of `batch`. `now` is read
    /// once per batch by the caller.
    pub fn process(&self, worker: &mut Worker, batch: &mut [Packet<'_>], now: Millis) {
        let snapshot = self.snapshot.load();
        let net = self.net.load();
        worker.hops.begin_batch(&net);
        let mut stats = BatchStats::default();
        // Lookup pipeline: frame i + BUCKET_AHEAD is parsed and its
        // in-index bucket prefetched, the first entry of frame
        // i + ENTRY_AHEAD is prefetched, while frame i is handled; frame i
        // is then handled from its parse and hashed key (each frame is
        // parsed once and its key hashed once).
        // Two rings, not one of both: a slot of both (over 128 bytes) was
        // written by a `memcpy` call per frame.
        let mut parsed_ahead: [Option<Result<ParsedFrame, WireError>>; PREFETCH_RING] =
            [const { None }; PREFETCH_RING];
        let mut hashed_ahead = [None::<InKeyHash>; PREFETCH_RING];
        // A frame whose in-index bucket shows no candidate (most likely a
        // reply, or a new connection) gets its reply key hashed and its
        // out-index bucket prefetched at the entry stage, when some
        // service has replies through the director.
        // `out_valid` has bit r set when `out_ahead[r]` belongs to the
        // frame now in ring slot r (a bit per slot: cheaper to clear per
        // frame than an `Option` of the key).
        let mut out_ahead = [OutKeyHash::default(); PREFETCH_RING];
        let mut out_valid: u32 = 0;
        let reply_traffic = snapshot.has_reply_traffic();
        for packet in batch.iter().take(HEADER_AHEAD) {
            prefetch::headers(packet.frame.frame().as_ptr());
        }
        // One loop, one look-ahead call site (so that the parser is
        // inlined there): step j prefetches frame j + HEADER_AHEAD's
        // headers, looks ahead at frame j and handles frame
        // j - BUCKET_AHEAD.
        for j in 0..batch.len() + BUCKET_AHEAD {
            if let Some(packet) = batch.get(j + HEADER_AHEAD) {
                prefetch::headers(packet.frame.frame().as_ptr());
            }
            if let Some(packet) = batch.get(j) {
                let parsed = wire::parse_frame_into(
                    packet.frame.frame(),
                    &mut parsed_ahead[j % PREFETCH_RING],
                );
                hashed_ahead[j % PREFETCH_RING] = self.hash_ahead(parsed);
                out_valid &= !(1 << (j % PREFETCH_RING));
            }
            let Some(i) = j.checked_sub(BUCKET_AHEAD) else {
                continue;
            };
            if i + ENTRY_AHEAD < batch.len() {
                let k = (i + ENTRY_AHEAD) % PREFETCH_RING;
                if let Some(h) = &mut hashed_ahead[k] {
                    if !self.conns.prefetch_in_entry(h) && reply_traffic {
                        if let Some(out) = self.hash_out_ahead(&parsed_ahead[k]) {
                            out_ahead[k] = out;
                            out_valid |= 1 << k;
                        }
                    }
                }
            }
            let Some(packet) = batch.get_mut(i) else {
                break;
            };
            let parsed = &*parsed_ahead[i % PREFETCH_RING]
                .get_or_insert_with(|| wire::parse_frame(packet.frame.frame()));
            let hashed = hashed_ahead[i % PREFETCH_RING].as_ref();
            let out_hashed = out_ahead
                .get(i % PREFETCH_RING)
                .filter(|_| out_valid & (1 << (i % PREFETCH_RING)) != 0);
            let verdict = self.process_one(
                worker,
                &mut stats,
                &snapshot,
                &net,
                packet,
                (parsed, hashed, out_hashed),
                now,
            );
            match verdict {
                Verdict::Drop(reason) => worker.drops[reason.index()] += 1,
                Verdict::Pass => worker.passed += 1,
                Verdict::Forward(_) => worker.forwarded += 1,
                Verdict::Pending => {}
            }
            packet.verdict = verdict;
        }
        stats.flush(&self.dests);
        // Expiry paced by the clock, not by the packets: after most
        // batches nothing is owed.
        self.conns.expire_due(now, SWEEP_MAX_PER_CALL);
        worker.flush(&self.counters);
    }

    /// When `parsed` is a TCP, UDP or SCTP packet that `process_one`
    /// will look up in the connection table (not ARP, not an ICMP error,
    /// not a later fragment): its client → virtual key hashed, its bucket
    /// prefetched.
    #[inline(always)]
    fn hash_ahead(&self, parsed: &Result<ParsedFrame, WireError>) -> Option<InKeyHash> {
        match parsed {
            Ok(p)
                if p.network != Network::Arp
                    && p.icmp_error.is_none()
                    && matches!(p.protocol, proto::TCP | proto::UDP | proto::SCTP)
                    && (!p.is_fragment || p.is_first_fragment) =>
            {
                Some(match (p.saddr, p.daddr) {
                    (IpAddr::V4(c), IpAddr::V4(v)) => self.conns.prefetch_in_v4(
                        p.protocol,
                        (u32::from(c), p.sport),
                        (u32::from(v), p.dport),
                    ),
                    _ => self.conns.prefetch_in(&in_key_of(p)),
                })
            }
            _ => None,
        }
    }

    /// The reply key of an IPv4 frame that `hash_ahead` hashed, hashed
    /// for the out-index and its bucket prefetched; not for a TCP SYN
    /// without ACK (a new connection's first packet, never a reply: its
    /// reply lookup, if it comes to one, hashes for itself).
    #[inline(always)]
    fn hash_out_ahead(
        &self,
        parsed: &Option<Result<ParsedFrame, WireError>>,
    ) -> Option<OutKeyHash> {
        const SYN_ACK: u8 = 0x12;
        match parsed {
            Some(Ok(p)) if p.protocol == proto::TCP && p.tcp_flags & SYN_ACK == 0x02 => None,
            Some(Ok(p)) => match (p.saddr, p.daddr) {
                (IpAddr::V4(s), IpAddr::V4(d)) => Some(self.conns.prefetch_out_v4(
                    p.protocol,
                    (u32::from(s), p.sport),
                    (u32::from(d), p.dport),
                )),
                _ => None,
            },
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn process_one<'s>(
        &self,
        worker: &mut Worker,
        stats: &mut BatchStats<'s>,
        snapshot: &'s Snapshot,
        net: &NetView,
        packet: &mut Packet<'_>,
        (parse_result, hashed, out_hashed): (
            &Result<ParsedFrame, WireError>,
            Option<&InKeyHash>,
            Option<&OutKeyHash>,
        ),
        now: Millis,
    ) -> Verdict {
        // Borrowed from the pipeline's slot, not moved out of it: a move
        // copies the whole summary (~110 bytes) once more per packet.
        let parsed = match parse_result {
            Ok(parsed) => parsed,
            Err(WireError::UnsupportedEthertype) => return Verdict::Pass,
            Err(_) => return Verdict::Drop(DropReason::Malformed),
        };
        if parsed.network == Network::Arp {
            return Verdict::Pass;
        }
        if let Some(error) = parsed.icmp_error {
            return self.process_icmp_error(worker, snapshot, net, packet, parsed, &error, now);
        }
        if !matches!(parsed.protocol, proto::TCP | proto::UDP | proto::SCTP) {
            return Verdict::Pass;
        }
        if parsed.is_fragment && !parsed.is_first_fragment {
            // No ports: IPVS needs reassembly here; we own no such packet
            // unless it is to a virtual address.
            return if snapshot.owns_address(parsed.daddr) {
                Verdict::Drop(DropReason::Fragment)
            } else {
                Verdict::Pass
            };
        }
        let flags = tcp_flags(parsed);
        // The key itself is built only where used (it copies both
        // addresses): the look-ahead has already hashed it.
        let found = match hashed {
            Some(hashed) => self.conns.lookup_in_hashed(hashed, now),
            None => self.conns.lookup_in(&in_key_of(parsed), now),
        };
        // Borrowed, not moved out of the `Option`: a move copied the
        // whole `ConnRef` through the stack (and stalled on store
        // forwarding, its fields stored piecemeal by the lookup).
        if let Some(conn) = found.as_ref() {
            let new_conn = match flags {
                Some(f) => f.syn && !f.ack,
                None => parsed.protocol == proto::SCTP && sctp_may_create(parsed.sctp_chunk),
            };
            let reuse = new_conn && conn.try_reuse_on_syn(now);
            if !reuse {
                return self.forward_conn(
                    worker,
                    stats,
                    snapshot,
                    net,
                    packet,
                    parsed,
                    conn,
                    Direction::Input,
                    flags,
                    now,
                );
            }
        }
        if snapshot.has_reply_traffic() {
            let found = match (out_hashed, parsed.saddr, parsed.daddr) {
                (Some(hashed), _, _) => self.conns.lookup_out_hashed(hashed, now),
                (None, IpAddr::V4(s), IpAddr::V4(d)) => self.conns.lookup_out_v4(
                    parsed.protocol,
                    (u32::from(s), parsed.sport),
                    (u32::from(d), parsed.dport),
                    now,
                ),
                _ => self.conns.lookup_out(
                    &ReplyKey {
                        protocol: parsed.protocol,
                        raddr: parsed.saddr,
                        rport: parsed.sport,
                        daddr: parsed.daddr,
                        dport: parsed.dport,
                    },
                    now,
                ),
            };
            if let Some(conn) = found.as_ref() {
                return self.forward_conn(
                    worker,
                    stats,
                    snapshot,
                    net,
                    packet,
                    parsed,
                    conn,
                    Direction::Output,
                    flags,
                    now,
                );
            }
        }
        let Some(service_index) =
            snapshot.find_service(parsed.protocol, parsed.daddr, parsed.dport)
        else {
            return Verdict::Pass;
        };
        let Some(service) = snapshot.service(service_index) else {
            return Verdict::Pass;
        };
        if let Some(f) = flags {
            if !tcp_may_create(f) {
                return Verdict::Drop(DropReason::NoConnection);
            }
        } else if parsed.protocol == proto::SCTP && !sctp_may_create(parsed.sctp_chunk) {
            // Only an INIT schedules an association (never an ABORT).
            return Verdict::Drop(DropReason::NoConnection);
        }
        self.new_connection(
            worker,
            stats,
            snapshot,
            service,
            net,
            packet,
            parsed,
            in_key_of(parsed),
            flags,
            now,
        )
    }

    /// Schedule a new connection of `service` (with its persistence
    /// template, if any) and forward its first packet.
    #[allow(clippy::too_many_arguments)]
    fn new_connection<'s>(
        &self,
        worker: &mut Worker,
        stats: &mut BatchStats<'s>,
        snapshot: &'s Snapshot,
        service: &'s Service,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        key: ConnKey,
        flags: Option<TcpFlags>,
        now: Millis,
    ) -> Verdict {
        let flow = Flow {
            protocol: parsed.protocol,
            saddr: parsed.saddr,
            sport: parsed.sport,
            daddr: parsed.daddr,
            dport: parsed.dport,
        };
        let mut template: Option<ConnRef<'_>> = None;
        let dest = match service.persistence {
            Some(persistence) => {
                let template_key = TemplateKey {
                    protocol: match service.key {
                        uvs_conf::ServiceKey::Fwmark { .. } => 0,
                        uvs_conf::ServiceKey::Addr { .. } => parsed.protocol,
                    },
                    caddr_masked: persistence.netmask.apply(parsed.saddr),
                    vaddr: match service.key {
                        uvs_conf::ServiceKey::Fwmark { mark, .. } => {
                            IpAddr::V4(Ipv4Addr::from(mark))
                        }
                        uvs_conf::ServiceKey::Addr { addr, .. } => addr,
                    },
                    // Port-0 (all ports) and fwmark services key on port 0,
                    // as do FTP services (control and data share a template).
                    vport: match service.port() {
                        0 | 21 => 0,
                        port => port,
                    },
                };
                // `--pe sip`: a UDP datagram's Call-ID joins the key;
                // without one, address persistence (ip_vs_pe_sip).
                let call_id =
                    crate::pe::sip_key(service, packet.frame.frame(), parsed, &self.conns);
                let found = match call_id {
                    Some(id) => self.conns.lookup_template_sip(&template_key, id, now),
                    None => self.conns.lookup_template(&template_key, now),
                }
                .and_then(|t| {
                    let id = t.dest();
                    service.dest_by_id(id).map(|d| (t, d))
                });
                match found {
                    Some((t, d)) => {
                        template = Some(t);
                        d
                    }
                    None => {
                        let Some(index) = service.scheduler.schedule(&service.dests, &flow, now)
                        else {
                            return Verdict::Drop(DropReason::NoDest);
                        };
                        let Some(d) = service.dests.get(index) else {
                            return Verdict::Drop(DropReason::NoDest);
                        };
                        let inserted = match call_id {
                            Some(id) => self.conns.insert_template_sip(
                                &template_key,
                                id,
                                d.id,
                                d.addr,
                                d.port,
                                persistence.timeout,
                                now,
                            ),
                            None => self.conns.insert_template(
                                &template_key,
                                d.id,
                                d.addr,
                                d.port,
                                persistence.timeout,
                                now,
                            ),
                        };
                        match inserted {
                            Ok(t) => template = Some(t),
                            Err(e) => return Verdict::Drop(insert_drop_reason(e)),
                        }
                        d
                    }
                }
            }
            None => {
                let Some(index) = service.scheduler.schedule(&service.dests, &flow, now) else {
                    return Verdict::Drop(DropReason::NoDest);
                };
                let Some(d) = service.dests.get(index) else {
                    return Verdict::Drop(DropReason::NoDest);
                };
                d
            }
        };
        // DR and TUN keep the virtual port; NAT and full NAT map to the
        // real server's port. A port-0 service keeps the client's port.
        let dport = if dest.port == 0 {
            parsed.dport
        } else {
            dest.port
        };
        // Counted once the connection exists (IPVS's ip_vs_conn_stats
        // after ip_vs_conn_new): a SYN dropped for a full table is no
        // connection.
        let count_new = |worker: &mut Worker| {
            service.stats.conns.fetch_add(1, Ordering::Relaxed);
            dest.counters.conns.fetch_add(1, Ordering::Relaxed);
            worker.new_conns += 1;
        };

        if service.one_packet && parsed.protocol == proto::UDP {
            count_new(worker);
            // One-packet scheduling: nothing is remembered.
            let info = ConnInfo {
                key,
                fwmark: service.fwmark(),
                daddr: dest.addr,
                dport,
                local: None,
                method: dest.method,
                dest: dest.id,
                state: crate::conn::ConnState::Udp,
                template: false,
                controlled: false,
                no_output: true,
            };
            let decided = Decided {
                dest_id: info.dest,
                method: info.method,
                protocol: info.key.protocol,
                ends: ConnEndpoints::from(&info),
                service: Some(service),
                dest: Some(dest),
            };
            return self.transmit(
                worker,
                stats,
                snapshot,
                net,
                packet,
                parsed,
                &decided,
                Direction::Input,
                flags,
                true,
            );
        }
        let new = NewConn {
            key,
            fwmark: service.fwmark(),
            dest: dest.id,
            daddr: dest.addr,
            dport,
            method: dest.method,
            controlled_by: template,
        };
        // TCP/UDP: the first packet's state is written with the entry;
        // an SCTP association takes its first chunk's state step after.
        let inserted = if parsed.protocol == proto::SCTP {
            self.conns.insert(&new, now).map(|conn| {
                let outcome = conn.on_sctp_packet(Direction::Input, parsed.sctp_chunk, now);
                (conn, outcome)
            })
        } else {
            self.conns.insert_opening(&new, flags, now)
        };
        let (conn, outcome) = match inserted {
            Ok(inserted) => inserted,
            Err(e) => return Verdict::Drop(insert_drop_reason(e)),
        };
        count_new(worker);
        match outcome {
            PacketOutcome::Forward { .. } => {}
            PacketOutcome::DropNoDest { .. } => return Verdict::Drop(DropReason::DestGone),
            PacketOutcome::Gone => return Verdict::Drop(DropReason::NoConnection),
        }
        if matches!(dest.method, ForwardMethod::Dr) {
            return self.transmit_dr(
                worker,
                stats,
                net,
                packet,
                parsed,
                conn.dest(),
                Some(service),
                &conn,
            );
        }
        if matches!(dest.method, ForwardMethod::Nat) {
            return self.transmit_nat(
                worker,
                stats,
                net,
                packet,
                parsed,
                conn.dest(),
                Some(service),
                &conn,
                Direction::Input,
            );
        }
        if let ForwardMethod::Tunnel { kind, csum } = dest.method {
            return self.transmit_tunnel(
                worker,
                stats,
                snapshot,
                net,
                packet,
                parsed,
                (conn.dest(), Some(service)),
                &conn,
                Direction::Input,
                (kind, csum),
            );
        }
        if matches!(dest.method, ForwardMethod::FullNat) {
            // The connection's first packet opens it: TOA for TCP.
            return self.transmit_fullnat(
                worker,
                stats,
                net,
                packet,
                parsed,
                conn.dest(),
                Some(service),
                &conn,
                Direction::Input,
                parsed.protocol == proto::TCP,
            );
        }
        let decided = Decided {
            dest_id: conn.dest(),
            method: conn.method(),
            protocol: parsed.protocol,
            ends: conn.endpoints(),
            service: Some(service),
            dest: Some(dest),
        };
        self.transmit(
            worker,
            stats,
            snapshot,
            net,
            packet,
            parsed,
            &decided,
            Direction::Input,
            flags,
            true,
        )
    }

    /// Forward a packet of a tracked connection.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn forward_conn<'s>(
        &self,
        worker: &mut Worker,
        stats: &mut BatchStats<'s>,
        snapshot: &'s Snapshot,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        conn: &ConnRef<'_>,
        direction: Direction,
        flags: Option<TcpFlags>,
        now: Millis,
    ) -> Verdict {
        let (outcome, opened) = if parsed.protocol == proto::SCTP {
            (
                conn.on_sctp_packet(direction, parsed.sctp_chunk, now),
                false,
            )
        } else {
            conn.on_packet_opening(direction, flags, now)
        };
        match outcome {
            PacketOutcome::Forward { .. } => {}
            PacketOutcome::DropNoDest { .. } => return Verdict::Drop(DropReason::DestGone),
            PacketOutcome::Gone => return Verdict::Drop(DropReason::NoConnection),
        }
        // The client's ACK completing the handshake (SYN_RECV →
        // ESTABLISHED) opens the connection for the real server's TCP
        // stack (the TOA module reads the option from this packet).
        let opening = direction == Direction::Input && opened;
        let dest_id = conn.dest();
        let (service, dest) = snapshot.locate_dest(dest_id);
        let method = conn.method();
        if matches!(method, ForwardMethod::Dr) && direction == Direction::Input {
            return self.transmit_dr(worker, stats, net, packet, parsed, dest_id, service, conn);
        }
        if matches!(method, ForwardMethod::Nat) {
            return self.transmit_nat(
                worker, stats, net, packet, parsed, dest_id, service, conn, direction,
            );
        }
        if let ForwardMethod::Tunnel { kind, csum } = method {
            return self.transmit_tunnel(
                worker,
                stats,
                snapshot,
                net,
                packet,
                parsed,
                (dest_id, service),
                conn,
                direction,
                (kind, csum),
            );
        }
        if matches!(method, ForwardMethod::FullNat) {
            let insert_toa = direction == Direction::Input
                && parsed.protocol == proto::TCP
                && (opening || flags.is_some_and(|f| f.syn));
            return self.transmit_fullnat(
                worker, stats, net, packet, parsed, dest_id, service, conn, direction, insert_toa,
            );
        }
        let decided = Decided {
            dest_id,
            method,
            protocol: parsed.protocol,
            ends: conn.endpoints(),
            service,
            dest,
        };
        self.transmit(
            worker, stats, snapshot, net, packet, parsed, &decided, direction, flags, opening,
        )
    }

    /// Count the packet and run the connection's forwarding method.
    /// `opening`: the packet opens the connection for the real server
    /// (its first packet, or the client's ACK completing the handshake);
    /// full NAT gives such TCP packets, and any SYN, the TOA option.
    #[allow(clippy::too_many_arguments)]
    fn transmit<'s>(
        &self,
        worker: &mut Worker,
        stats: &mut BatchStats<'s>,
        snapshot: &'s Snapshot,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        decided: &Decided<'s>,
        direction: Direction,
        flags: Option<TcpFlags>,
        opening: bool,
    ) -> Verdict {
        let bytes = usize::from(parsed.ip_len);
        stats.count(
            &self.dests,
            decided.dest_id,
            decided.service.map(|s| &*s.stats),
            direction,
            bytes as u64,
        );
        let _ = decided.dest;

        // Where the frame goes: to the real server (or, for DR, its MAC)
        // inbound; to the client (via its route) outbound.
        let hop = match self.hop_to(worker, net, peer_of(&decided.ends, direction)) {
            Ok(hop) => hop,
            Err(verdict) => return verdict,
        };
        let insert_toa = direction == Direction::Input
            && parsed.protocol == proto::TCP
            && (opening || flags.is_some_and(|f| f.syn));
        let params = xmit_params(
            snapshot,
            net,
            decided.method,
            decided.protocol,
            &decided.ends,
            &hop,
            direction,
            insert_toa,
        );
        let result = match decided.method {
            ForwardMethod::Dr => xmit::dr::xmit(&mut packet.frame, parsed, &params),
            ForwardMethod::Tunnel { .. } => xmit::tunnel::xmit(&mut packet.frame, parsed, &params),
            ForwardMethod::Nat => xmit::nat::xmit(&mut packet.frame, parsed, &params),
            ForwardMethod::FullNat => xmit::fullnat::xmit(&mut packet.frame, parsed, &params),
        };
        self.finish(worker, net, packet, hop, result)
    }

    /// DR's [`transmit`](Engine::transmit) for a client's packet: the
    /// method reads only the egress MACs and MTU, so only the real
    /// server's address is decoded from the connection (no endpoints, no
    /// [`XmitParams`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn transmit_dr<'s>(
        &self,
        worker: &mut Worker,
        stats: &mut BatchStats<'s>,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        dest_id: DestId,
        service: Option<&'s Service>,
        conn: &ConnRef<'_>,
    ) -> Verdict {
        stats.count(
            &self.dests,
            dest_id,
            service.map(|s| &*s.stats),
            Direction::Input,
            u64::from(parsed.ip_len),
        );
        let hop = match self.hop_to(worker, net, conn.real_addr()) {
            Ok(hop) => hop,
            Err(verdict) => return verdict,
        };
        let result =
            xmit::dr::xmit_inbound(&mut packet.frame, parsed, hop.src_mac, hop.dst_mac, hop.mtu);
        self.finish_inline(worker, net, packet, hop, result)
    }

    /// NAT's [`transmit`](Engine::transmit): the method reads the real
    /// server and virtual service, so only those (and the client's
    /// address for a reply's next hop) are decoded from the connection
    /// (no endpoints, no [`XmitParams`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn transmit_nat<'s>(
        &self,
        worker: &mut Worker,
        stats: &mut BatchStats<'s>,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        dest_id: DestId,
        service: Option<&'s Service>,
        conn: &ConnRef<'_>,
        direction: Direction,
    ) -> Verdict {
        stats.count(
            &self.dests,
            dest_id,
            service.map(|s| &*s.stats),
            direction,
            u64::from(parsed.ip_len),
        );
        let real_server = conn.real_server();
        let toward = match direction {
            Direction::Input => real_server.ip(),
            Direction::Output => conn.client_addr(),
        };
        let hop = match self.hop_to(worker, net, toward) {
            Ok(hop) => hop,
            Err(verdict) => return verdict,
        };
        let params = xmit::nat::NatParams {
            direction: xmit_direction(direction),
            real_server,
            virtual_service: conn.virtual_service(),
            director_mac: hop.src_mac,
            next_hop_mac: hop.dst_mac,
            mtu: hop.mtu,
        };
        let result = xmit::nat::xmit_to(&mut packet.frame, parsed, &params);
        self.finish_inline(worker, net, packet, hop, result)
    }

    /// Full NAT's [`transmit`](Engine::transmit): the endpoints decoded
    /// from the connection straight into
    /// [`FullNatParams`](xmit::fullnat::FullNatParams) (no [`XmitParams`],
    /// no tunnel parameters). `insert_toa`: the packet gets the TOA option
    /// (an inbound TCP packet that opens the connection, or a SYN).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn transmit_fullnat<'s>(
        &self,
        worker: &mut Worker,
        stats: &mut BatchStats<'s>,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        dest_id: DestId,
        service: Option<&'s Service>,
        conn: &ConnRef<'_>,
        direction: Direction,
        insert_toa: bool,
    ) -> Verdict {
        stats.count(
            &self.dests,
            dest_id,
            service.map(|s| &*s.stats),
            direction,
            u64::from(parsed.ip_len),
        );
        // An all-IPv4 connection: the fast path's few parameters read
        // straight from the entry (the frame is left untouched when it
        // needs the general path).
        if let Some(ends) = conn.fullnat_v4() {
            let inbound = direction == Direction::Input;
            let (src, dst) = if inbound {
                (ends.local, ends.real_server)
            } else {
                (ends.virtual_service, ends.client)
            };
            let hop = match self.hop_to(worker, net, IpAddr::V4(*dst.ip())) {
                Ok(hop) => hop,
                Err(verdict) => return verdict,
            };
            let v4 = xmit::fullnat::FullNatV4 {
                inbound,
                src,
                dst,
                client: ends.client,
                director_mac: hop.src_mac,
                next_hop_mac: hop.dst_mac,
                mtu: hop.mtu,
                insert_toa,
            };
            if xmit::fullnat::xmit_v4(&mut packet.frame, parsed, &v4) {
                return Verdict::Forward(hop.port);
            }
            return self.transmit_fullnat_general(
                worker, net, packet, parsed, conn, direction, insert_toa, hop,
            );
        }
        let ends = conn.endpoints();
        let hop = match self.hop_to(worker, net, peer_of(&ends, direction)) {
            Ok(hop) => hop,
            Err(verdict) => return verdict,
        };
        self.transmit_fullnat_general(
            worker, net, packet, parsed, conn, direction, insert_toa, hop,
        )
    }

    /// [`transmit_fullnat`](Engine::transmit_fullnat) for the packets the
    /// IPv4 fast path leaves alone: [`xmit::fullnat::xmit_to`] with the
    /// connection's decoded endpoints, toward `hop`. Out of line, so that
    /// the fast path stays compact.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn transmit_fullnat_general(
        &self,
        worker: &mut Worker,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        conn: &ConnRef<'_>,
        direction: Direction,
        insert_toa: bool,
        hop: NextHop,
    ) -> Verdict {
        let ends = conn.endpoints();
        let params = xmit::fullnat::FullNatParams {
            direction: xmit_direction(direction),
            real_server: ends.real_server,
            local: ends.local.unwrap_or(ends.virtual_service),
            client: ends.client,
            virtual_service: ends.virtual_service,
            director_mac: hop.src_mac,
            next_hop_mac: hop.dst_mac,
            mtu: hop.mtu,
            insert_toa,
        };
        let result = xmit::fullnat::xmit_to(&mut packet.frame, parsed, &params);
        self.finish(worker, net, packet, hop, result)
    }

    /// The tunnel method's [`transmit`](Engine::transmit): the
    /// [`TunParams`](xmit::tunnel::TunParams) built straight from the
    /// connection's endpoints (no [`XmitParams`]). `to`: the destination
    /// and its service; `tunnel`: its encapsulation and checksum mode.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn transmit_tunnel<'s>(
        &self,
        worker: &mut Worker,
        stats: &mut BatchStats<'s>,
        snapshot: &'s Snapshot,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        to: (DestId, Option<&'s Service>),
        conn: &ConnRef<'_>,
        direction: Direction,
        tunnel: (uvs_conf::TunnelType, uvs_conf::TunnelCsum),
    ) -> Verdict {
        let (dest_id, service) = to;
        stats.count(
            &self.dests,
            dest_id,
            service.map(|s| &*s.stats),
            direction,
            u64::from(parsed.ip_len),
        );
        let real_server = conn.real_addr();
        // Inbound, the packet's own addresses and ports are the
        // connection's client and virtual service (it was found, or
        // created, by exactly that key): nothing more to decode. The
        // flow hash is computed only when the encapsulation reads it.
        let reads_hash = xmit::tunnel::reads_flow_hash(tunnel.0, real_server.is_ipv6(), parsed);
        let (toward, virt, hash) = match direction {
            Direction::Input => {
                let hash = if reads_hash {
                    flow_hash_of(
                        parsed.protocol,
                        (parsed.saddr, parsed.sport),
                        (parsed.daddr, parsed.dport),
                    )
                } else {
                    0
                };
                (real_server, parsed.daddr, hash)
            }
            Direction::Output => {
                let ends = conn.endpoints();
                let hash = flow_hash(parsed.protocol, &ends);
                (ends.client.ip(), ends.virtual_service.ip(), hash)
            }
        };
        let hop = match self.hop_to(worker, net, toward) {
            Ok(hop) => hop,
            Err(verdict) => return verdict,
        };
        // The route to the real server is the hop's when it was the
        // destination looked up, so its port's address is the source
        // `source_for` would give, without a second route lookup.
        let routed_by = (direction == Direction::Input).then_some(hop.port);
        let source = tunnel_source(snapshot, net, real_server, routed_by, virt);
        let params = xmit::tunnel::TunParams {
            direction: xmit_direction(direction),
            real_server,
            virtual_service: virt,
            tunnel: TunnelParams {
                kind: tunnel.0,
                csum: tunnel.1,
                source,
            },
            flow_hash: hash,
            director_mac: hop.src_mac,
            next_hop_mac: hop.dst_mac,
            mtu: hop.mtu,
        };
        let result = xmit::tunnel::xmit_to(&mut packet.frame, parsed, &params);
        self.finish(worker, net, packet, hop, result)
    }

    /// The next hop toward `toward` (from the worker's cache), or the
    /// drop verdict (a neighbour miss is noted for the control plane).
    #[inline(always)]
    fn hop_to(
        &self,
        worker: &mut Worker,
        net: &NetView,
        toward: IpAddr,
    ) -> Result<NextHop, Verdict> {
        match worker.hops.next_hop(net, toward) {
            Ok(hop) => Ok(hop),
            Err(RouteError::NoRoute) => Err(Verdict::Drop(DropReason::NoRoute)),
            Err(RouteError::NoNeighbour) => {
                self.neighbour_misses.note(toward);
                Err(Verdict::Drop(DropReason::NoNeighbour))
            }
        }
    }

    /// The verdict for a method's result (TUN, full NAT, the general
    /// path): as [`finish_inline`](Engine::finish_inline), the ICMP
    /// answer's fix-up in line and the call left to the compiler (forced
    /// in line, or with the fix-up out of line, TUN cost 14 Ir more).
    fn finish(
        &self,
        worker: &mut Worker,
        net: &NetView,
        packet: &mut Packet<'_>,
        hop: NextHop,
        result: Result<XmitOutcome, XmitError>,
    ) -> Verdict {
        match result {
            Ok(XmitOutcome::Forward) => Verdict::Forward(hop.port),
            Ok(XmitOutcome::IcmpToClient) => Self::answer_to_ingress_in_line(worker, net, packet),
            Err(_) => Verdict::Drop(DropReason::Xmit),
        }
    }

    /// The verdict for a method's result. Inlined into DR and NAT (the
    /// forward case is one move); the ICMP answer's fix-up is out of line.
    #[inline(always)]
    fn finish_inline(
        &self,
        worker: &mut Worker,
        net: &NetView,
        packet: &mut Packet<'_>,
        hop: NextHop,
        result: Result<XmitOutcome, XmitError>,
    ) -> Verdict {
        match result {
            Ok(XmitOutcome::Forward) => Verdict::Forward(hop.port),
            Ok(XmitOutcome::IcmpToClient) => Self::answer_to_ingress(worker, net, packet),
            Err(_) => Verdict::Drop(DropReason::Xmit),
        }
    }

    /// A method turned the packet into an ICMP error for its sender: it
    /// leaves by the port the packet came in on, so it must carry that
    /// port's MAC, not the egress port's that the method was given.
    #[cold]
    #[inline(never)]
    fn answer_to_ingress(worker: &mut Worker, net: &NetView, packet: &mut Packet<'_>) -> Verdict {
        Self::answer_to_ingress_in_line(worker, net, packet)
    }

    /// [`answer_to_ingress`](Engine::answer_to_ingress)'s work, in line
    /// (for [`finish`](Engine::finish), where the out-of-line call cost
    /// TUN 14 Ir).
    #[inline(always)]
    fn answer_to_ingress_in_line(
        worker: &mut Worker,
        net: &NetView,
        packet: &mut Packet<'_>,
    ) -> Verdict {
        worker.icmp_sent += 1;
        if let Some(port) = net.port(packet.ingress) {
            if let Some(src) = packet.frame.frame_mut().get_mut(6..12) {
                src.copy_from_slice(&port.mac);
            }
        }
        Verdict::Forward(packet.ingress)
    }

    /// An ICMP error quoting a packet of a tracked connection follows that
    /// connection, rewritten as IPVS does (`ip_vs_in_icmp`,
    /// `ip_vs_out_icmp`). Untracked errors go to the kernel.
    #[allow(clippy::too_many_arguments)]
    fn process_icmp_error(
        &self,
        worker: &mut Worker,
        snapshot: &Snapshot,
        net: &NetView,
        packet: &mut Packet<'_>,
        parsed: &ParsedFrame,
        error: &wire::IcmpError,
        now: Millis,
    ) -> Verdict {
        let inner = &error.inner;
        if !matches!(inner.protocol, proto::TCP | proto::UDP | proto::SCTP) {
            return Verdict::Pass;
        }
        // The quoted packet went the other way: a reply from the virtual
        // service to the client (error from the client side), or a
        // forwarded packet from the client to the real server (error from
        // the real server side).
        let in_key = ConnKey {
            protocol: inner.protocol,
            caddr: inner.daddr,
            cport: inner.dport,
            vaddr: inner.saddr,
            vport: inner.sport,
        };
        let (conn, direction) = if let Some(conn) = self.conns.lookup_in(&in_key, now) {
            (conn, Direction::Input)
        } else {
            let reply_key = ReplyKey {
                protocol: inner.protocol,
                raddr: inner.daddr,
                rport: inner.dport,
                daddr: inner.saddr,
                dport: inner.sport,
            };
            match self.conns.lookup_out(&reply_key, now) {
                Some(conn) => (conn, Direction::Output),
                None => return Verdict::Pass,
            }
        };
        if !conn.dest_available() {
            return Verdict::Drop(DropReason::DestGone);
        }
        let info = conn.info();
        let toward = match direction {
            Direction::Input => info.daddr,
            Direction::Output => info.key.caddr,
        };
        let hop = match net.next_hop(toward) {
            Ok(hop) => hop,
            Err(RouteError::NoRoute) => return Verdict::Drop(DropReason::NoRoute),
            Err(RouteError::NoNeighbour) => {
                self.neighbour_misses.note(toward);
                return Verdict::Drop(DropReason::NoNeighbour);
            }
        };
        let params = xmit_params(
            snapshot,
            net,
            info.method,
            info.key.protocol,
            &ConnEndpoints::from(&info),
            &hop,
            direction,
            false,
        );
        let result = match info.method {
            ForwardMethod::Dr => xmit::dr::xmit(&mut packet.frame, parsed, &params),
            ForwardMethod::Tunnel { .. } => xmit::tunnel::xmit(&mut packet.frame, parsed, &params),
            ForwardMethod::Nat => xmit::icmp::nat_xmit(&mut packet.frame, parsed, &params),
            ForwardMethod::FullNat => xmit::icmp::fullnat_xmit(&mut packet.frame, parsed, &params),
        };
        self.finish(worker, net, packet, hop, result)
    }
}

/// What a forwarding method needs to know about a connection's packet
/// going `direction` through `hop`. Only tunnels read the tunnel source
/// (which may take a second route lookup) and the flow hash (GUE's outer
/// source port), so other methods skip computing them.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn xmit_params(
    snapshot: &Snapshot,
    net: &NetView,
    method: ForwardMethod,
    protocol: u8,
    ends: &ConnEndpoints,
    hop: &NextHop,
    direction: Direction,
    insert_toa: bool,
) -> XmitParams {
    let (tunnel, flow_hash) = match method {
        ForwardMethod::Tunnel { kind, csum } => (
            TunnelParams {
                kind,
                csum,
                source: tunnel_source(
                    snapshot,
                    net,
                    ends.real_server.ip(),
                    None,
                    ends.virtual_service.ip(),
                ),
            },
            flow_hash(protocol, ends),
        ),
        _ => (
            TunnelParams {
                kind: uvs_conf::TunnelType::Ipip,
                csum: uvs_conf::TunnelCsum::NoCsum,
                source: ends.virtual_service.ip(),
            },
            0,
        ),
    };
    XmitParams {
        director_mac: hop.src_mac,
        next_hop_mac: hop.dst_mac,
        direction: xmit_direction(direction),
        real_server: ends.real_server,
        virtual_service: ends.virtual_service,
        client: ends.client,
        local: ends.local.unwrap_or(ends.virtual_service),
        tunnel,
        mtu: hop.mtu,
        flow_hash,
        insert_toa,
    }
}

/// The outer source of a tunnelled packet: the configured tunnel source
/// of the real server's family, else the address of the port that routes
/// to it, else `virt`. `routed_by`: that port when the caller already
/// knows it (no second route lookup).
#[inline(always)]
fn tunnel_source(
    snapshot: &Snapshot,
    net: &NetView,
    real_server: IpAddr,
    routed_by: Option<PortId>,
    virt: IpAddr,
) -> IpAddr {
    snapshot
        .tunnel_source(real_server)
        .or_else(|| match routed_by {
            Some(port) => net.port_source(port, real_server),
            None => net.source_for(real_server),
        })
        .unwrap_or(virt)
}

fn tcp_flags(parsed: &ParsedFrame) -> Option<TcpFlags> {
    (parsed.protocol == proto::TCP).then_some(TcpFlags {
        fin: parsed.tcp_flags & 0x01 != 0,
        syn: parsed.tcp_flags & 0x02 != 0,
        rst: parsed.tcp_flags & 0x04 != 0,
        ack: parsed.tcp_flags & 0x10 != 0,
    })
}

fn insert_drop_reason(e: InsertError) -> DropReason {
    match e {
        InsertError::TableFull => DropReason::TableFull,
        InsertError::FullNatPortsExhausted | InsertError::NoLocalAddress => {
            DropReason::FullNatPortsExhausted
        }
        InsertError::Exists | InsertError::UnknownDest => DropReason::NoConnection,
    }
}

/// A cheap, stable hash of a connection's client tuple (GUE source port).
fn flow_hash(protocol: u8, ends: &ConnEndpoints) -> u32 {
    let (client, virt) = (ends.client, ends.virtual_service);
    flow_hash_of(
        protocol,
        (client.ip(), client.port()),
        (virt.ip(), virt.port()),
    )
}

/// [`flow_hash`] of a client and a virtual service given as address and
/// port (what the tunnel path reads from an inbound packet).
#[inline]
fn flow_hash_of(protocol: u8, client: (IpAddr, u16), virt: (IpAddr, u16)) -> u32 {
    let fold = |a: IpAddr| -> u32 {
        match a {
            IpAddr::V4(v) => u32::from(v),
            IpAddr::V6(v) => v.octets().chunks_exact(4).fold(0u32, |acc, c| {
                acc ^ u32::from_be_bytes([c[0], c[1], c[2], c[3]])
            }),
        }
    };
    let mixed = fold(client.0)
        ^ fold(virt.0).rotate_left(7)
        ^ (u32::from(client.1) << 16 | u32::from(virt.1))
        ^ u32::from(protocol);
    mixed.wrapping_mul(0x9e37_79b1)
}

/// The client → virtual key of a parsed TCP, UDP or SCTP packet.
#[inline(always)]
fn in_key_of(parsed: &ParsedFrame) -> ConnKey {
    ConnKey {
        protocol: parsed.protocol,
        caddr: parsed.saddr,
        cport: parsed.sport,
        vaddr: parsed.daddr,
        vport: parsed.dport,
    }
}

/// The connection direction as the forwarding methods name it.
#[inline(always)]
fn xmit_direction(direction: Direction) -> xmit::Direction {
    match direction {
        Direction::Input => xmit::Direction::Inbound,
        Direction::Output => xmit::Direction::Outbound,
    }
}

/// Where a packet of a connection with endpoints `ends` goes next: the
/// real server inbound, the client on the way back.
#[inline(always)]
fn peer_of(ends: &ConnEndpoints, direction: Direction) -> IpAddr {
    match direction {
        Direction::Input => ends.real_server.ip(),
        Direction::Output => ends.client.ip(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{self, INSIDE, OUTSIDE};
    use crate::wire::build::PacketBuilder;

    fn dr_engine() -> Engine {
        let config = uvs_conf::file::parse_config(
            "test",
            "[[service]]\nprotocol = \"tcp\"\naddress = \"192.0.2.10:80\"\n\
             [[service.real_server]]\naddress = \"198.51.100.11\"\n",
        )
        .expect("valid config");
        Engine::new(&config, lab::net_view(1)).expect("engine starts")
    }

    /// The pipeline's look-ahead hashes the key `process_one` looks a
    /// frame up by (IPv4 by its own path: the same key and hash as the
    /// general one); frames that are not looked up (ICMP, truncated) get
    /// no hashed key, without panicking.
    #[test]
    fn hash_ahead_hashes_the_key_process_one_looks_up() {
        let engine = dr_engine();
        let look = |frame: &[u8]| engine.hash_ahead(&wire::parse_frame(frame));
        let v6 = (
            "2001:db8::7"
                .parse::<std::net::Ipv6Addr>()
                .expect("address"),
            "2001:db8::10"
                .parse::<std::net::Ipv6Addr>()
                .expect("address"),
        );
        let frames = [
            client_frame(4000, 0x18),
            PacketBuilder::new()
                .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
                .vlan(7)
                .ipv4(Ipv4Addr::new(203, 0, 113, 8), Ipv4Addr::new(192, 0, 2, 10))
                .udp(5353, 53)
                .payload(b"q")
                .build(),
            PacketBuilder::new()
                .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
                .ipv6(v6.0, v6.1)
                .tcp(4001, 443)
                .flags(0x02)
                .build(),
        ];
        for (frame, needed) in frames.iter().zip([38, 42, 58]) {
            let parsed = wire::parse_frame(frame).expect("test frame parses");
            assert_eq!(
                look(frame),
                Some(engine.conns.prefetch_in(&in_key_of(&parsed)))
            );
            // Ethernet (+ VLAN tag) + IP header + both ports.
            for len in 0..needed {
                assert_eq!(look(&frame[..len]), None, "truncated to {len}");
            }
        }
        let icmp = PacketBuilder::new()
            .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
            .ipv4(Ipv4Addr::new(203, 0, 113, 7), Ipv4Addr::new(192, 0, 2, 10))
            .icmp(8, 0, 0)
            .build();
        assert_eq!(look(&icmp), None);
    }

    fn client_frame(cport: u16, flags: u8) -> Vec<u8> {
        PacketBuilder::new()
            .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
            .ipv4(Ipv4Addr::new(203, 0, 113, 7), Ipv4Addr::new(192, 0, 2, 10))
            .tcp(cport, 80)
            .flags(flags)
            .build()
    }

    #[test]
    fn next_hop_cache_serves_repeats_and_forgets_when_the_network_view_changes() {
        let engine = dr_engine();
        let mut worker = Worker::new();
        let now = Millis(1_000);
        for cport in [1000, 1001] {
            let out = lab::run_one(
                &engine,
                &mut worker,
                OUTSIDE,
                &client_frame(cport, 0x02),
                now,
            );
            assert_eq!(out.verdict, Verdict::Forward(INSIDE));
            assert_eq!(out.frame[0..6], lab::real_server_mac(1));
        }
        // The real server's MAC changes: the next batch must see it.
        let mut net = lab::net_view(1);
        let moved = [0x02, 0, 0, 0, 0x99, 0x99];
        net.neighbours.insert(lab::real_server4(1).into(), moved);
        engine.set_net(net);
        let out = lab::run_one(
            &engine,
            &mut worker,
            OUTSIDE,
            &client_frame(1000, 0x10),
            now,
        );
        assert_eq!(out.verdict, Verdict::Forward(INSIDE));
        assert_eq!(out.frame[0..6], moved);
    }

    #[test]
    fn hop_cache_lives_across_batches_of_one_view_only() {
        let net = Arc::new(lab::net_view(2));
        let addr = IpAddr::V4(lab::real_server4(1));
        let mut cache = HopCache::default();
        cache.begin_batch(&net);
        cache.next_hop(&net, addr).expect("known server");
        cache.begin_batch(&net);
        assert!(cache.entries.iter().flatten().any(|(a, _)| *a == addr));
        // Another view, even with the same contents, starts empty.
        let other = Arc::new(lab::net_view(2));
        cache.begin_batch(&other);
        assert!(cache.entries.iter().flatten().next().is_none());
        assert!(cache.view.as_ref().is_some_and(|v| Arc::ptr_eq(v, &other)));
    }

    #[test]
    fn hop_cache_keeps_the_newest_entries_and_never_caches_errors() {
        let net = lab::net_view(8);
        let mut cache = HopCache::default();
        for n in 1..=8u8 {
            let addr = IpAddr::V4(lab::real_server4(n));
            let hop = cache.next_hop(&net, addr).expect("known server");
            assert_eq!(hop.dst_mac, lab::real_server_mac(n));
            assert_eq!(cache.next_hop(&net, addr), Ok(hop));
        }
        let cached: Vec<IpAddr> = cache.entries.iter().flatten().map(|(a, _)| *a).collect();
        assert_eq!(cached.len(), HOP_CACHE_SIZE);
        assert!(cached.contains(&IpAddr::V4(lab::real_server4(8))));
        let unknown = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 200));
        assert_eq!(cache.next_hop(&net, unknown), Err(RouteError::NoNeighbour));
        assert!(cache.entries.iter().flatten().all(|(a, _)| *a != unknown));
    }
}
