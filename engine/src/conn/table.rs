//! [`ConnTable`]: storage, the two hash indexes, insert, lookups, the
//! state machine driver, expiry and listing. See the module root for
//! the promises this file keeps.

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use ahash::RandomState;
use uvs_conf::{ForwardMethod, Timeouts};

use super::sctp::SctpState;
use super::slot::{
    addr_bits, bucket_first, bucket_version, gen_bits, in_index_key, in_index_key_v4, life,
    lock_bucket, out_index_key, out_index_key_v4, same_gen, tcp_index, touched, unlock_bucket,
    with_life, with_tcp_index, Fields, InBucket, InIndex, Index, IndexKey, Slot, SlotCold, Slots,
    IN_BUCKET_LINKS, LIFE_DYING, LIFE_FREE, LIFE_LIVE, LIFE_PENDING, NIL, SLOT_BYTES, ST_ASSURED,
    ST_INACTIVE, ST_INVALID, ST_NOOUTPUT,
};
use super::tcp::{next_state, TcpFlags, TcpState, TcpTable};
use super::{
    ConnEndpoints, ConnInfo, ConnKey, ConnListing, ConnState, ConnTableConfig, ConnTableStats,
    Direction, FullNatEndsV4, InsertError, NewConn, PacketOutcome, ReplyKey, TemplateKey,
    IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, TEMPLATE_CONTROL_EXTENSION_SECS,
};
use crate::dest::{DestCounters, DestId, DestRegistry};
use crate::prefetch;
use crate::time::Millis;

mod pe;
pub use pe::{PeListing, PeStats, MAX_PE_SLOTS};

/// How often a lookup restarts after racing a removal before giving up.
const MAX_LOOKUP_RESTARTS: usize = 64;
/// The memory budget: bytes per connection, entry and index included.
pub const MAX_BYTES_PER_CONN: usize = 128;
/// Keys whose chains a batch lookup walks together (at most 64: one bit
/// each in a mask).
const BATCH_GROUP: usize = 16;
/// Keys a batch lookup hashes (and whose buckets it prefetches) ahead of
/// the chain walks.
const BATCH_CHUNK: usize = 64;
/// Local address/port candidates tried for one full-NAT connection.
const FULLNAT_PROBES: u32 = 64;
/// Chained-index bucket words (8 bytes) whose memory one in-index bucket
/// (64 bytes) takes.
const IN_BUCKET_WORDS: usize = std::mem::size_of::<InBucket>() / std::mem::size_of::<AtomicU64>();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    In,
    Out,
}

#[derive(Debug, Default)]
struct Counters {
    full_drops: AtomicU64,
    fullnat_port_exhausted: AtomicU64,
    duplicates: AtomicU64,
    inserted: AtomicU64,
    expired: AtomicU64,
    template_extensions: AtomicU64,
    lookup_retries_exhausted: AtomicU64,
}

/// A client → virtual key in the in-index's form with its hash, made
/// by [`ConnTable::prefetch_in`] and handed to
/// [`ConnTable::lookup_in_hashed`] so that a pipelined lookup hashes its
/// key once. Valid for the table that made it only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InKeyHash {
    key: IndexKey,
    hash: u64,
    /// What [`ConnTable::prefetch_in_entry`] read in the bucket: the link
    /// of the first lane whose tag matched (`NIL`: none), and, when the
    /// bucket had no candidate at all, its version + 1 (0: not known).
    candidate: u32,
    miss_version: u64,
}

/// A reply's key in the out-index's form with its hash, made by
/// [`ConnTable::prefetch_out_v4`] and handed to
/// [`ConnTable::lookup_out_hashed`]. Valid for the table that made it
/// only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutKeyHash {
    key: IndexKey,
    hash: u64,
}

/// Milliseconds in which the paced expiry sweep
/// ([`ConnTable::expire_due`]) visits every entry once: the longest an
/// entry outlives its deadline before it is reclaimed.
pub const SWEEP_PERIOD_MS: u64 = 1_000;
/// Most entries the paced sweep visits after one batch (bounds the time
/// a batch can spend on expiry; what is left stays owed).
pub const SWEEP_MAX_PER_CALL: usize = 2_048;
/// `sweep_epoch` before the first paced sweep.
const SWEEP_UNSET: u64 = u64::MAX;

/// Slots by which the sweep's high-water mark grows
/// (`ConnTable::high_water`).
const HIGH_WATER_STEP: usize = 64;

/// The connection table. `Send + Sync`; share it with `Arc`.
pub struct ConnTable {
    slots: Slots,
    in_index: InIndex,
    out_index: Index,
    hasher: RandomState,
    /// Free list head: tag << 32 | (index + 1).
    free_head: AtomicU64,
    len: AtomicUsize,
    /// Slots ever taken from the free list: one past the highest index
    /// ever live. The free list starts in index order and reuses the
    /// last freed slot first, so live entries stay below this mark and
    /// the sweep visits only `0..high_water`, not the whole capacity.
    high_water: AtomicUsize,
    /// Where the expiry sweep goes on (a slot index, modulo the span it
    /// sweeps, `high_water`).
    sweep_cursor: AtomicUsize,
    /// The clock reading the paced sweep counts from (`SWEEP_UNSET`
    /// until the first [`ConnTable::expire_due`]).
    sweep_epoch: AtomicU64,
    /// Slot visits the paced sweep has claimed since `sweep_epoch`.
    sweep_claimed: AtomicU64,
    tcp_timeout: AtomicU32,
    tcp_fin_timeout: AtomicU32,
    udp_timeout: AtomicU32,
    expire_nodest_conn: AtomicBool,
    expire_quiescent_template: AtomicBool,
    conn_reuse_mode: AtomicU8,
    local_v4: Box<[IpAddr]>,
    local_v6: Box<[IpAddr]>,
    local_port_first: u16,
    local_port_count: u32,
    dests: Arc<DestRegistry>,
    counters: Counters,
    /// Call-IDs of `--pe sip` templates.
    pe: pe::PeArena,
    /// Bits of a link (chain or lane) that hold the entry (index + 1);
    /// the bits above hold a tag: the top bits of the linked entry's key
    /// hash, the highest always set (see `ConnTable::tag_of`).
    link_mask: u32,
}

impl fmt::Debug for ConnTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnTable")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A handle on one entry, valid for the generation it was found in:
/// once the entry expires and its storage is reused, the handle's
/// methods see it as gone. Cheap to copy.
#[derive(Clone, Copy)]
pub struct ConnRef<'t> {
    table: &'t ConnTable,
    index: u32,
    seq: u32,
    /// The entry's immutable fields as the lookup read them: a
    /// [`ConnInfo`] is built from them only when asked for, so that the
    /// packet path decodes just what it uses.
    fields: Fields,
    /// The state word as the lookup read it.
    state: u32,
    /// Controlled by a template when looked up.
    controlled: bool,
}

impl fmt::Debug for ConnRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnRef")
            .field("index", &self.index)
            .field("seq", &self.seq)
            .field("info", &self.info())
            .finish()
    }
}

impl ConnTable {
    /// A table with every entry and bucket allocated now. The out-index
    /// has the largest power of two ≤ capacity buckets (load factor 1 to
    /// 2 when full); the in-index the memory of twice that many bucket
    /// words when the total stays within [`MAX_BYTES_PER_CONN`], else
    /// the same, in 64-byte buckets of 12 lanes (so 4 to 8 entries per
    /// bucket when full: a bucket overflows into a chain rarely).
    pub fn new(config: ConnTableConfig, dests: Arc<DestRegistry>) -> ConnTable {
        Self::with_in_buckets(config, dests, None)
    }

    /// [`ConnTable::new`], with `in_buckets` in-index buckets when given
    /// (tests: a tiny in-index overflows into chains).
    fn with_in_buckets(
        config: ConnTableConfig,
        dests: Arc<DestRegistry>,
        in_buckets: Option<usize>,
    ) -> ConnTable {
        let capacity = config.capacity.clamp(1, u32::MAX >> 1) as usize;
        let slots = Slots::new(capacity);
        for (i, slot) in slots.iter().enumerate() {
            slot.seq.store(1, Ordering::Relaxed);
            // Free list: slot i links to slot i + 1 (index + 1 encoding).
            let next = if i + 1 < capacity {
                (i + 2) as u32
            } else {
                NIL
            };
            slot.next_in.store(next, Ordering::Relaxed);
        }
        let out_buckets = prev_power_of_two(capacity);
        // The in-index takes twice the buckets when the memory budget
        // allows it (load factor ≤ 1 on the path every packet takes).
        let roomy = out_buckets * 2;
        let roomy_bytes = Self::ENTRY_BYTES * capacity + (roomy + out_buckets) * 8;
        let in_bucket_words = if roomy_bytes <= MAX_BYTES_PER_CONN * capacity {
            roomy
        } else {
            out_buckets
        };
        // Links hold index + 1 ≤ capacity < 2^31 in the low bits.
        let link_shift = (u32::BITS - (capacity as u32).leading_zeros()).clamp(1, 31);
        let pool = &config.fullnat_pool;
        let (port_first, port_last) = (pool.port_first, pool.port_last.max(pool.port_first));
        ConnTable {
            slots,
            in_index: InIndex::new(
                in_buckets.unwrap_or(in_bucket_words.max(1).div_ceil(IN_BUCKET_WORDS)),
            ),
            out_index: Index::new(out_buckets),
            hasher: RandomState::new(),
            free_head: AtomicU64::new(1),
            len: AtomicUsize::new(0),
            high_water: AtomicUsize::new(0),
            sweep_cursor: AtomicUsize::new(0),
            sweep_epoch: AtomicU64::new(SWEEP_UNSET),
            sweep_claimed: AtomicU64::new(0),
            tcp_timeout: AtomicU32::new(config.timeouts.tcp),
            tcp_fin_timeout: AtomicU32::new(config.timeouts.tcp_fin),
            udp_timeout: AtomicU32::new(config.timeouts.udp),
            expire_nodest_conn: AtomicBool::new(config.expire_nodest_conn),
            expire_quiescent_template: AtomicBool::new(config.expire_quiescent_template),
            conn_reuse_mode: AtomicU8::new(config.conn_reuse_mode),
            local_v4: pool.addrs.iter().copied().filter(IpAddr::is_ipv4).collect(),
            local_v6: pool.addrs.iter().copied().filter(IpAddr::is_ipv6).collect(),
            local_port_first: port_first,
            local_port_count: u32::from(port_last - port_first) + 1,
            dests,
            counters: Counters::default(),
            pe: pe::PeArena::new(capacity),
            link_mask: (1u32 << link_shift) - 1,
        }
    }

    /// Entries alive now (connections and templates).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no entry is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum entries.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of one entry (connection or template, IPv4 or IPv6).
    pub const ENTRY_BYTES: usize = SLOT_BYTES;

    /// Bytes of both hash indexes.
    pub fn index_bytes(&self) -> usize {
        self.in_index.len() * std::mem::size_of::<InBucket>()
            + self.out_index.len() * std::mem::size_of::<AtomicU64>()
    }

    /// Bytes of storage allocated for entries and both indexes.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES + self.index_bytes()
    }

    /// Bytes per connection at full capacity, entry and index slots
    /// included (the same for IPv4 and IPv6: addresses take 16 bytes).
    pub fn bytes_per_conn(&self) -> f64 {
        self.memory_bytes() as f64 / self.capacity() as f64
    }

    /// The destination registry the table counts against.
    pub fn dests(&self) -> &Arc<DestRegistry> {
        &self.dests
    }

    /// Change the timeouts (`--set`): TCP ESTABLISHED, TCP FIN_WAIT and
    /// UDP; 0 leaves a value unchanged. Live connections keep their
    /// deadline until their next packet, as in IPVS.
    pub fn set_timeouts(&self, timeouts: Timeouts) {
        for (cell, value) in [
            (&self.tcp_timeout, timeouts.tcp),
            (&self.tcp_fin_timeout, timeouts.tcp_fin),
            (&self.udp_timeout, timeouts.udp),
        ] {
            if value != 0 {
                cell.store(value, Ordering::Relaxed);
            }
        }
    }

    /// Change `expire_nodest_conn`, `expire_quiescent_template` and
    /// `conn_reuse_mode` (a reload), effective from the next packet.
    pub fn set_sysctls(
        &self,
        expire_nodest_conn: bool,
        expire_quiescent_template: bool,
        conn_reuse_mode: u8,
    ) {
        self.expire_nodest_conn
            .store(expire_nodest_conn, Ordering::Relaxed);
        self.expire_quiescent_template
            .store(expire_quiescent_template, Ordering::Relaxed);
        self.conn_reuse_mode
            .store(conn_reuse_mode, Ordering::Relaxed);
    }

    /// The current timeouts (`--timeout`).
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            tcp: self.tcp_timeout.load(Ordering::Relaxed),
            tcp_fin: self.tcp_fin_timeout.load(Ordering::Relaxed),
            udp: self.udp_timeout.load(Ordering::Relaxed),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ConnTableStats {
        let c = &self.counters;
        ConnTableStats {
            entries: self.len() as u64,
            full_drops: c.full_drops.load(Ordering::Relaxed),
            fullnat_port_exhausted: c.fullnat_port_exhausted.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            inserted: c.inserted.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
            template_extensions: c.template_extensions.load(Ordering::Relaxed),
            lookup_retries_exhausted: c.lookup_retries_exhausted.load(Ordering::Relaxed),
        }
    }

    // ---- lookups --------------------------------------------------------

    /// The connection a client → virtual packet belongs to. Lock-free; an
    /// entry past its deadline is absent.
    pub fn lookup_in(&self, key: &ConnKey, now: Millis) -> Option<ConnRef<'_>> {
        let index_key = in_index_key(
            key.protocol,
            false,
            (key.caddr, key.cport),
            (key.vaddr, key.vport),
        );
        self.find(Link::In, &index_key, now)
    }

    /// [`ConnTable::lookup_in`] of the key [`ConnTable::prefetch_in`] (or
    /// [`ConnTable::prefetch_in_v4`]) of this table hashed a little
    /// earlier: the same result, without hashing the key again. After
    /// [`ConnTable::prefetch_in_entry`] it starts from what that read:
    /// the candidate entry is examined first (an entry with the key,
    /// alive, is the answer however it was found), and a bucket that had
    /// no candidate and has not changed since is a miss without a second
    /// scan. Anything else is looked up afresh.
    #[inline]
    pub fn lookup_in_hashed(&self, hashed: &InKeyHash, now: Millis) -> Option<ConnRef<'_>> {
        if hashed.candidate != NIL {
            // The candidate's tag matched when it was read (the link is
            // the same value now).
            let found = self.in_hit(hashed.candidate, &hashed.key, now);
            if found.is_some() {
                return found;
            }
        } else if hashed.miss_version != 0 {
            let head = self
                .in_index
                .bucket(hashed.hash)
                .head
                .load(Ordering::Acquire);
            if bucket_version(head) + 1 == hashed.miss_version {
                return None;
            }
        }
        self.find_in(&hashed.key, hashed.hash, now)
    }

    /// Hash `key` as [`ConnTable::lookup_in`] would and prefetch its
    /// bucket of the in-index; the key and hash returned serve
    /// [`ConnTable::prefetch_in_entry`] and
    /// [`ConnTable::lookup_in_hashed`]. Reads nothing but the key: a
    /// pipelined caller issues it a few packets before the lookup, so
    /// that the bucket's cache miss overlaps other work.
    #[inline]
    pub fn prefetch_in(&self, key: &ConnKey) -> InKeyHash {
        self.prefetched_in(in_index_key(
            key.protocol,
            false,
            (key.caddr, key.cport),
            (key.vaddr, key.vport),
        ))
    }

    /// [`ConnTable::prefetch_in`] for a key whose client and virtual
    /// addresses are IPv4, given as numbers (`client`, `virt`: address
    /// and port): the same result, without building the `IpAddr`s.
    #[inline]
    pub fn prefetch_in_v4(&self, protocol: u8, client: (u32, u16), virt: (u32, u16)) -> InKeyHash {
        self.prefetched_in(in_index_key_v4(protocol, client, virt))
    }

    /// `key` hashed, its in-index bucket prefetched.
    #[inline(always)]
    fn prefetched_in(&self, key: IndexKey) -> InKeyHash {
        let hash = self.hash(&key);
        prefetch::line(self.in_index.bucket(hash));
        InKeyHash {
            key,
            hash,
            candidate: NIL,
            miss_version: 0,
        }
    }

    /// Read the in-index bucket of `hashed` (best prefetched by
    /// [`ConnTable::prefetch_in`] a little earlier), prefetch the entry
    /// of the first lane whose tag matches (or of the overflow chain's
    /// first link), and note in `hashed` what was read, for
    /// [`ConnTable::lookup_in_hashed`]. Returns whether there was such a
    /// candidate: when not, the lookup will most likely miss (a reply or
    /// a new connection), and a pipelined caller may prepare the reply
    /// lookup instead ([`ConnTable::prefetch_out_v4`]).
    #[inline]
    pub fn prefetch_in_entry(&self, hashed: &mut InKeyHash) -> bool {
        let hash = hashed.hash;
        let bucket = self.in_index.bucket(hash);
        let head = bucket.head.load(Ordering::Acquire);
        let tagged = self.first_tagged(bucket, hash);
        hashed.candidate = tagged;
        hashed.miss_version = 0;
        let first = bucket_first(head);
        let candidate = if tagged != NIL {
            tagged
        } else if first == NIL {
            hashed.miss_version = bucket_version(head) + 1;
            return false;
        } else if self.tag_matches(first, hash) {
            first
        } else {
            return false;
        };
        self.prefetch_entry(Link::In, candidate, hash, &hashed.key);
        true
    }

    /// Hash the reply key [`ConnTable::lookup_out_v4`] would look up and
    /// prefetch its out-index bucket; the result serves
    /// [`ConnTable::lookup_out_hashed`]. Reads nothing but the key: a
    /// pipelined caller issues it a few packets before the lookup, so
    /// that neither the hash nor the bucket's load waits on the critical
    /// path.
    #[inline]
    pub fn prefetch_out_v4(&self, protocol: u8, real: (u32, u16), peer: (u32, u16)) -> OutKeyHash {
        let hashed = self.out_key_hash_v4(protocol, real, peer);
        prefetch::line(self.out_index.bucket(hashed.hash));
        hashed
    }

    /// The out-index key of an IPv4 reply, with its hash.
    #[inline(always)]
    fn out_key_hash_v4(&self, protocol: u8, real: (u32, u16), peer: (u32, u16)) -> OutKeyHash {
        let key = out_index_key_v4(protocol, real, peer);
        OutKeyHash {
            hash: self.hash(&key),
            key,
        }
    }

    /// [`ConnTable::lookup_out_v4`] of the key that
    /// [`ConnTable::prefetch_out_v4`] of this table hashed a little
    /// earlier: the same result, without hashing the key again.
    #[inline]
    pub fn lookup_out_hashed(&self, hashed: &OutKeyHash, now: Millis) -> Option<ConnRef<'_>> {
        self.find_out(&hashed.key, hashed.hash, now)
    }

    /// The NAT or full-NAT connection a real server's reply belongs to.
    /// Lock-free; an entry past its deadline is absent.
    pub fn lookup_out(&self, key: &ReplyKey, now: Millis) -> Option<ConnRef<'_>> {
        let index_key = out_index_key(
            key.protocol,
            addr_bits(key.raddr),
            key.rport,
            addr_bits(key.daddr),
            key.dport,
        );
        self.find(Link::Out, &index_key, now)
    }

    /// [`ConnTable::lookup_out`] of a reply whose addresses are IPv4,
    /// given as numbers (`real`: the real server's address and port,
    /// `peer`: the client's for NAT, the local address's for full NAT):
    /// the same result, without building the `IpAddr`s.
    #[inline]
    pub fn lookup_out_v4(
        &self,
        protocol: u8,
        real: (u32, u16),
        peer: (u32, u16),
        now: Millis,
    ) -> Option<ConnRef<'_>> {
        self.lookup_out_hashed(&self.out_key_hash_v4(protocol, real, peer), now)
    }

    /// A valid persistence template. A template whose real server was
    /// deleted, or has weight 0 with `expire_quiescent_template`, is
    /// invalidated (never returned again; it lives on until its timer for
    /// the connections it controls). A template past its deadline that
    /// still controls connections is extended by 60 s and returned.
    pub fn lookup_template(&self, key: &TemplateKey, now: Millis) -> Option<ConnRef<'_>> {
        let index_key = in_index_key(
            key.protocol,
            true,
            (key.caddr_masked, 0),
            (key.vaddr, key.vport),
        );
        self.find(Link::In, &index_key, now)
    }

    /// [`lookup_in`](ConnTable::lookup_in) for a batch of packets:
    /// `out[i]` receives the result for `keys[i]`, for the first
    /// `min(keys.len(), out.len())` keys; any other `out` is left as it
    /// was. Allocation-free and lock-free, for any batch size (the engine
    /// passes up to 64 keys and a `[Option<ConnRef>; 64]`).
    ///
    /// The lookups are software pipelined so that their cache misses
    /// overlap instead of waiting on each other, by the steps the engine
    /// takes per frame: every key of a chunk of 64 is hashed and its
    /// bucket prefetched ([`ConnTable::prefetch_in`]); then every bucket
    /// is read and its candidate entry prefetched
    /// ([`ConnTable::prefetch_in_entry`]); then every key is looked up
    /// from what was read ([`ConnTable::lookup_in_hashed`]).
    pub fn lookup_in_batch<'t>(
        &'t self,
        keys: &[ConnKey],
        now: Millis,
        out: &mut [Option<ConnRef<'t>>],
    ) {
        for (keys, out) in keys.chunks(BATCH_CHUNK).zip(out.chunks_mut(BATCH_CHUNK)) {
            let count = keys.len().min(out.len());
            // The engine's per-frame pipeline, stage by stage over the
            // chunk: hash every key and prefetch its bucket; read every
            // bucket and prefetch its candidate entry; look up.
            let mut hashed = [InKeyHash::default(); BATCH_CHUNK];
            for (key, hashed) in keys.iter().zip(hashed.iter_mut()).take(count) {
                *hashed = self.prefetch_in(key);
            }
            for hashed in hashed.iter_mut().take(count) {
                self.prefetch_in_entry(hashed);
            }
            for (hashed, result) in hashed.iter().zip(out.iter_mut()).take(count) {
                *result = self.lookup_in_hashed(hashed, now);
            }
        }
    }

    /// [`lookup_out`](ConnTable::lookup_out) for a batch of replies, the
    /// same way as [`lookup_in_batch`](ConnTable::lookup_in_batch):
    /// `out[i]` receives the result for `keys[i]`.
    pub fn lookup_out_batch<'t>(
        &'t self,
        keys: &[ReplyKey],
        now: Millis,
        out: &mut [Option<ConnRef<'t>>],
    ) {
        self.lookup_batch(keys, out, now, |key| {
            out_index_key(
                key.protocol,
                addr_bits(key.raddr),
                key.rport,
                addr_bits(key.daddr),
                key.dport,
            )
        });
    }

    /// The pipelined batch lookup of the out-index: chains walked in
    /// lockstep.
    fn lookup_batch<'t, K>(
        &'t self,
        keys: &[K],
        out: &mut [Option<ConnRef<'t>>],
        now: Millis,
        index_key_of: impl Fn(&K) -> IndexKey,
    ) {
        for (keys, out) in keys.chunks(BATCH_CHUNK).zip(out.chunks_mut(BATCH_CHUNK)) {
            let count = keys.len().min(out.len());
            // Stage 1, for the whole chunk: hash every key, prefetch its
            // bucket (the buckets of later groups load while earlier
            // groups walk their chains).
            let mut chunk_keys = [IndexKey::default(); BATCH_CHUNK];
            let mut chunk_hashes = [0u64; BATCH_CHUNK];
            for ((key, index_key), hash) in keys
                .iter()
                .zip(chunk_keys.iter_mut())
                .zip(chunk_hashes.iter_mut())
                .take(count)
            {
                *index_key = index_key_of(key);
                *hash = self.hash(index_key);
                prefetch::line(self.out_index.bucket(*hash));
            }
            let groups = chunk_keys
                .chunks(BATCH_GROUP)
                .zip(chunk_hashes.chunks(BATCH_GROUP))
                .zip(out[..count].chunks_mut(BATCH_GROUP));
            for ((index_keys, hashes), out) in groups {
                self.walk_group(index_keys, hashes, out, now);
            }
        }
    }

    /// Stages 2 and 3 of a batch lookup for one group of at most 64 keys
    /// whose buckets were prefetched; `out.len()` keys are looked up.
    fn walk_group<'t>(
        &'t self,
        index_keys: &[IndexKey],
        hashes: &[u64],
        out: &mut [Option<ConnRef<'t>>],
        now: Millis,
    ) {
        let link = Link::Out;
        let index = &self.out_index;
        let count = out
            .len()
            .min(index_keys.len())
            .min(hashes.len())
            .min(BATCH_GROUP);
        // Stage 2: read every bucket, prefetch its first entry.
        let mut versions = [0u64; BATCH_GROUP];
        let mut cursors = [NIL; BATCH_GROUP];
        for (((hash, version), cursor), index_key) in hashes
            .iter()
            .zip(versions.iter_mut())
            .zip(cursors.iter_mut())
            .zip(index_keys)
            .take(count)
        {
            let head = index.bucket(*hash).load(Ordering::Acquire);
            *version = bucket_version(head);
            *cursor = bucket_first(head);
            self.prefetch_entry(link, *cursor, *hash, index_key);
        }
        // Stage 3: walk the chains in lockstep; `pending` has a bit
        // per key still walking.
        let mut pending: u64 = if count == 64 {
            u64::MAX
        } else {
            (1u64 << count) - 1
        };
        let mut retry: u64 = 0;
        let mut steps = 0usize;
        while pending != 0 {
            let mut walking = pending;
            while walking != 0 {
                let i = walking.trailing_zeros() as usize;
                walking &= walking - 1;
                let (Some(cursor), Some(index_key), Some(result)) =
                    (cursors.get_mut(i), index_keys.get(i), out.get_mut(i))
                else {
                    pending &= !(1 << i);
                    continue;
                };
                let done = if *cursor == NIL {
                    let version = versions.get(i).copied().unwrap_or(u64::MAX);
                    let head = hashes
                        .get(i)
                        .map(|h| index.bucket(*h).load(Ordering::Acquire));
                    if head.map(bucket_version) != Some(version) {
                        retry |= 1 << i;
                    } else {
                        *result = None;
                    }
                    true
                } else {
                    let hash = hashes.get(i).copied().unwrap_or(0);
                    match self.probe(link, *cursor, index_key, hash, now) {
                        Probe::Found(found) => {
                            *result = Some(found);
                            true
                        }
                        Probe::Next(next) => {
                            *cursor = next;
                            self.prefetch_entry(link, next, hash, index_key);
                            false
                        }
                        Probe::Raced => {
                            retry |= 1 << i;
                            true
                        }
                    }
                };
                if done {
                    pending &= !(1 << i);
                }
            }
            steps += 1;
            if steps > self.slots.len() {
                // A chain longer than the table: it changed under us.
                retry |= pending;
                pending = 0;
            }
        }
        // Keys that raced a writer: the single lookup retries.
        while retry != 0 {
            let i = retry.trailing_zeros() as usize;
            retry &= retry - 1;
            if let (Some(result), Some(index_key), Some(hash)) =
                (out.get_mut(i), index_keys.get(i), hashes.get(i))
            {
                *result = self.find_out(index_key, *hash, now);
            }
        }
    }

    /// Prefetch the entry chain link `at` of `link` points to (`NIL`:
    /// nothing) for a lookup of `key` hashed `hash`: the hot part's line
    /// (an in-chain walk reads its link there), and the one or two lines
    /// of the cold part only where they will be read: for the out-index
    /// (its links are there), and for an in-key with an IPv6 address
    /// whose entry the link's tag says may hold the key (an all-IPv4
    /// entry is read from its hot part).
    fn prefetch_entry(&self, link: Link, at: u32, hash: u64, key: &IndexKey) {
        if let Some(slot) = self.link_index(at).and_then(|i| self.slot(i)) {
            prefetch::line(std::ptr::from_ref(slot.hot).cast::<u8>());
            let cold_read = match link {
                Link::Out => true,
                Link::In => !key.in_key_v4() && self.tag_matches(at, hash),
            };
            if cold_read {
                let cold = std::ptr::from_ref(slot.cold).cast::<u8>();
                prefetch::line(cold);
                prefetch::line(cold.wrapping_add(std::mem::size_of::<SlotCold>() - 1));
            }
        }
    }

    /// The tag of a key hashed `hash`: the bits of a link above the
    /// entry's, taken from the hash's top bits, the highest always set
    /// (so that no tag equals an empty lane, `NIL`).
    #[inline(always)]
    fn tag_of(&self, hash: u64) -> u32 {
        ((hash >> 32) as u32 | 0x8000_0000) & !self.link_mask
    }

    /// The link (chain or lane) to entry `index` whose key hashes to
    /// `hash`.
    #[inline(always)]
    fn link_to(&self, index: u32, hash: u64) -> u32 {
        self.tag_of(hash) | (index + 1)
    }

    /// The entry a chain link points to (`None` for `NIL`).
    #[inline(always)]
    fn link_index(&self, link: u32) -> Option<u32> {
        (link & self.link_mask).checked_sub(1)
    }

    /// Whether the entry behind `link` may have a key hashed `hash`
    /// (false: it certainly has not, and its key need not be read).
    #[inline(always)]
    fn tag_matches(&self, link: u32, hash: u64) -> bool {
        link & !self.link_mask == self.tag_of(hash)
    }

    /// Examine the entry behind chain link `at` of a chain of `link` for
    /// `key` (hashed `hash`), under its sequence counter.
    #[inline(always)]
    fn probe(&self, link: Link, at: u32, key: &IndexKey, hash: u64, now: Millis) -> Probe<'_> {
        let Some((index, slot)) = self
            .link_index(at)
            .and_then(|index| Some((index, self.slot(index)?)))
        else {
            return Probe::Raced;
        };
        let seq = slot.seq.load(Ordering::Acquire);
        if seq & 1 != 0 {
            return Probe::Raced;
        }
        let next = next_link(slot, link).load(Ordering::Relaxed);
        // Compare the tag, then the key; read the rest of a matching
        // entry only.
        let matching = match link {
            _ if !self.tag_matches(at, hash) => None,
            Link::In => (slot.read_in_key() == *key).then(|| slot.read_fields()),
            Link::Out => Some(slot.read_fields()).filter(|f| f.out_key() == *key),
        };
        fence(Ordering::Acquire);
        if slot.seq.load(Ordering::Relaxed) != seq {
            return Probe::Raced;
        }
        match matching.and_then(|fields| self.accept(index, seq, &fields, now)) {
            Some(found) => Probe::Found(found),
            None => Probe::Next(next),
        }
    }

    fn hash(&self, key: &IndexKey) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline(always)]
    fn slot(&self, index: u32) -> Option<Slot<'_>> {
        self.slots.get(index as usize)
    }

    fn find(&self, link: Link, key: &IndexKey, now: Millis) -> Option<ConnRef<'_>> {
        let hash = self.hash(key);
        match link {
            Link::In => self.find_in(key, hash, now),
            Link::Out => self.find_out(key, hash, now),
        }
    }

    /// The link in the first lane of `bucket` whose full tag is that of
    /// `hash` (`NIL`: none): the candidate a lookup examines first.
    #[inline(always)]
    fn first_tagged(&self, bucket: &InBucket, hash: u64) -> u32 {
        let tag = self.tag_of(hash);
        for lane in bucket.matching(InBucket::mini_tag(hash)) {
            let link = bucket.link(lane);
            if link & !self.link_mask == tag {
                return link;
            }
        }
        NIL
    }

    /// The in-index lookup: the entries of the lanes of `key`'s bucket
    /// whose tag matches, then its overflow chain. A miss stands once
    /// the bucket's version is found unchanged (no entry can have moved
    /// past the scan); else the lookup starts again.
    #[inline(always)]
    fn find_in(&self, key: &IndexKey, hash: u64, now: Millis) -> Option<ConnRef<'_>> {
        let bucket = self.in_index.bucket(hash);
        let mini = InBucket::mini_tag(hash);
        'restart: for _ in 0..MAX_LOOKUP_RESTARTS {
            let head = bucket.head.load(Ordering::Acquire);
            for lane in bucket.matching(mini) {
                let link = bucket.link(lane);
                if self.tag_matches(link, hash) {
                    let found = self.in_hit(link, key, now);
                    if found.is_some() {
                        return found;
                    }
                }
            }
            let mut cursor = bucket_first(head);
            let mut steps = 0usize;
            while cursor != NIL {
                match self.probe(Link::In, cursor, key, hash, now) {
                    Probe::Found(found) => return Some(found),
                    Probe::Next(next) => cursor = next,
                    Probe::Raced => continue 'restart,
                }
                steps += 1;
                if steps > self.slots.len() {
                    continue 'restart;
                }
            }
            if bucket_version(bucket.head.load(Ordering::Acquire)) == bucket_version(head) {
                return None;
            }
        }
        self.counters
            .lookup_retries_exhausted
            .fetch_add(1, Ordering::Relaxed);
        None
    }

    /// The entry behind in-index link `at`, whose tag the caller has
    /// matched, if it is alive with `key`, read under its sequence
    /// counter. `None` also
    /// when the entry changed while it was read: a linked entry's
    /// sequence changes only when it is removed, which changes its
    /// bucket's version too, so the caller's version check catches it.
    #[inline(always)]
    fn in_hit(&self, at: u32, key: &IndexKey, now: Millis) -> Option<ConnRef<'_>> {
        let index = self.link_index(at)?;
        let slot = self.slot(index)?;
        let seq = slot.seq.load(Ordering::Acquire);
        if seq & 1 != 0 || slot.read_in_key() != *key {
            return None;
        }
        let fields = slot.read_fields();
        fence(Ordering::Acquire);
        if slot.seq.load(Ordering::Relaxed) != seq {
            return None;
        }
        self.accept(index, seq, &fields, now)
    }

    /// The out-index lookup: a walk of `key`'s chain.
    #[inline(always)]
    fn find_out(&self, key: &IndexKey, hash: u64, now: Millis) -> Option<ConnRef<'_>> {
        let bucket = self.out_index.bucket(hash);
        'restart: for _ in 0..MAX_LOOKUP_RESTARTS {
            let head = bucket.load(Ordering::Acquire);
            let version = bucket_version(head);
            let mut cursor = bucket_first(head);
            let mut steps = 0usize;
            // The steps of `probe`, written out: returned through `Probe`,
            // a single lookup measured 15% slower on a small table.
            while cursor != NIL {
                let Some((index, slot)) = self
                    .link_index(cursor)
                    .and_then(|index| Some((index, self.slot(index)?)))
                else {
                    continue 'restart;
                };
                let seq = slot.seq.load(Ordering::Acquire);
                if seq & 1 != 0 {
                    continue 'restart;
                }
                let next = slot.cold.next_out.load(Ordering::Relaxed);
                let matching = self
                    .tag_matches(cursor, hash)
                    .then(|| slot.read_fields())
                    .filter(|f| f.out_key() == *key);
                fence(Ordering::Acquire);
                if slot.seq.load(Ordering::Relaxed) != seq {
                    continue 'restart;
                }
                if let Some(fields) = matching {
                    if let Some(found) = self.accept(index, seq, &fields, now) {
                        return Some(found);
                    }
                }
                cursor = next;
                steps += 1;
                if steps > self.slots.len() {
                    continue 'restart;
                }
            }
            if bucket_version(bucket.load(Ordering::Acquire)) == version {
                return None;
            }
        }
        self.counters
            .lookup_retries_exhausted
            .fetch_add(1, Ordering::Relaxed);
        None
    }

    /// A matching entry is returned if it is live, of the generation that
    /// was read, not past its deadline (templates: still controlling) and,
    /// for templates, valid.
    #[inline(always)]
    fn accept(&self, index: u32, seq: u32, fields: &Fields, now: Millis) -> Option<ConnRef<'_>> {
        let slot = self.slot(index)?;
        let state = slot.state.load(Ordering::Acquire);
        if life(state) != LIFE_LIVE || !same_gen(state, seq) {
            return None;
        }
        if fields.is_template() {
            if state & ST_INVALID != 0 || !self.template_valid(fields) {
                self.invalidate_template(slot, seq);
                return None;
            }
            if slot.expires.load(Ordering::Acquire) <= now.0 {
                self.extend_controlling_template(slot, seq, now)?;
            }
        } else if slot.expires.load(Ordering::Acquire) <= now.0 {
            return None;
        }
        // `controlled` stays false: reading it would cost the cold part's
        // line; `info()` reads it from the live entry.
        Some(self.make_ref(index, seq, fields, slot.state.load(Ordering::Acquire)))
    }

    fn template_valid(&self, fields: &Fields) -> bool {
        match self.dests.counters(DestId(fields.dest)) {
            Some(counters) => {
                counters.is_available_flag()
                    && !(self.expire_quiescent_template.load(Ordering::Relaxed)
                        && counters.weight() == 0)
            }
            None => false,
        }
    }

    fn invalidate_template(&self, slot: Slot<'_>, seq: u32) {
        let _ = slot
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (life(state) == LIFE_LIVE && same_gen(state, seq) && state & ST_INVALID == 0)
                    .then_some(state | ST_INVALID)
            });
    }

    /// IPVS's `expire_later`: a template at its deadline that still
    /// controls connections lives 60 s more. `None` if it controls none.
    fn extend_controlling_template(&self, slot: Slot<'_>, seq: u32, now: Millis) -> Option<()> {
        let state = slot.state.load(Ordering::SeqCst);
        if life(state) != LIFE_LIVE || !same_gen(state, seq) {
            return None;
        }
        if slot.cold.control.load(Ordering::SeqCst) == 0 {
            return None;
        }
        slot.expires.store(
            now.plus_secs(TEMPLATE_CONTROL_EXTENSION_SECS).0,
            Ordering::Release,
        );
        if slot
            .state
            .compare_exchange(state, touched(state), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.counters
                .template_extensions
                .fetch_add(1, Ordering::Relaxed);
        }
        Some(())
    }

    #[inline(always)]
    fn make_ref(&self, index: u32, seq: u32, fields: &Fields, state: u32) -> ConnRef<'_> {
        ConnRef {
            table: self,
            index,
            seq,
            fields: *fields,
            state,
            controlled: false,
        }
    }

    fn info_of(&self, fields: &Fields, state: u32) -> ConnInfo {
        let (caddr, cport) = fields.client();
        let caddr = pe::engine_client(fields).unwrap_or(caddr);
        let (vaddr, vport) = fields.virt();
        let (daddr, dport) = fields.real();
        let template = fields.is_template();
        ConnInfo {
            key: ConnKey {
                protocol: fields.protocol(),
                caddr,
                cport,
                vaddr,
                vport,
            },
            fwmark: if template { 0 } else { fields.aux },
            daddr,
            dport,
            local: fields.local(),
            method: fields.method(),
            dest: DestId(fields.dest),
            state: conn_state(fields, state),
            template,
            controlled: false,
            no_output: state & ST_NOOUTPUT != 0,
        }
    }

    // ---- insert ---------------------------------------------------------

    /// Record a new connection bound to `new.dest`: counted inactive until
    /// its first active TCP state, the upper threshold checked, a
    /// reference taken on the destination, the controlling template (if
    /// still alive) re-armed to its full timeout. Full NAT: a local
    /// address of the real server's family and a port are chosen so that
    /// the reply tuple is unique. The new entry expires after the NONE
    /// timeout (TCP) or the UDP timeout unless a packet re-arms it (an
    /// SCTP association's first packet, [`ConnRef::on_sctp_packet`], does
    /// so at once with its state's timeout).
    pub fn insert(&self, new: &NewConn<'_>, now: Millis) -> Result<ConnRef<'_>, InsertError> {
        self.insert_as(new, now, None)
    }

    /// [`insert`](ConnTable::insert) followed by
    /// [`on_packet`](ConnRef::on_packet) for the client's packet that
    /// created the connection, with the same result, in one step where
    /// it can: the state that packet leads to (TCP: from NONE by the
    /// INPUT table for NAT and full NAT, INPUT_ONLY otherwise, counted
    /// active or inactive accordingly; UDP: as inserted) and its timeout
    /// are written with the entry, so the fresh entry needs no second
    /// state update. Other protocols, a first packet that would make the
    /// connection ESTABLISHED (its template is assured then) and a real
    /// server no longer available take the two steps.
    pub fn insert_opening(
        &self,
        new: &NewConn<'_>,
        tcp_flags: Option<TcpFlags>,
        now: Millis,
    ) -> Result<(ConnRef<'_>, PacketOutcome), InsertError> {
        let first = match new.key.protocol {
            IPPROTO_TCP => {
                let table_kind =
                    if matches!(new.method, ForwardMethod::Nat | ForwardMethod::FullNat) {
                        TcpTable::Input
                    } else {
                        TcpTable::InputOnly
                    };
                let next = next_state(table_kind, TcpState::None, tcp_flags.unwrap_or_default());
                let timeout = match next {
                    TcpState::FinWait => self.tcp_fin_timeout.load(Ordering::Relaxed),
                    other => other.timeout_secs(0, 0),
                };
                (next != TcpState::Established).then_some((Some(next), timeout))
            }
            IPPROTO_UDP => Some((None, self.udp_timeout.load(Ordering::Relaxed))),
            _ => None,
        };
        let available = self
            .dests
            .counters(new.dest)
            .is_some_and(DestCounters::is_available_flag);
        match first.filter(|_| available) {
            Some((tcp, timeout)) => {
                let conn = self.insert_as(new, now, Some((tcp, timeout)))?;
                let outcome = PacketOutcome::Forward {
                    state: state_from_bits(false, new.key.protocol, conn.state),
                    timeout_secs: timeout,
                };
                Ok((conn, outcome))
            }
            None => {
                let conn = self.insert_as(new, now, None)?;
                let outcome = conn.on_packet(Direction::Input, tcp_flags, now);
                Ok((conn, outcome))
            }
        }
    }

    /// The insert behind [`insert`](ConnTable::insert) and
    /// [`insert_opening`](ConnTable::insert_opening): `first` is the TCP
    /// state (if TCP) and timeout the first packet leads to, else the
    /// entry starts in NONE (TCP) with its insert timeout.
    fn insert_as(
        &self,
        new: &NewConn<'_>,
        now: Millis,
        first: Option<(Option<TcpState>, u32)>,
    ) -> Result<ConnRef<'_>, InsertError> {
        let counters = self
            .dests
            .counters(new.dest)
            .ok_or(InsertError::UnknownDest)?;
        if !self.dests.try_acquire(new.dest) {
            return Err(InsertError::UnknownDest);
        }
        let is_tcp = new.key.protocol == IPPROTO_TCP;
        let (first_tcp, timeout) = match first {
            Some(first) => first,
            None if is_tcp => (None, TcpState::None.timeout_secs(0, 0)),
            None => (None, self.udp_timeout.load(Ordering::Relaxed)),
        };
        let active = first_tcp.is_some_and(TcpState::is_active);
        let mut state_bits = if active { 0 } else { ST_INACTIVE };
        if let Some(tcp) = first_tcp {
            state_bits = with_tcp_index(state_bits, tcp as u32);
        }
        if !matches!(new.method, ForwardMethod::Nat | ForwardMethod::FullNat) {
            state_bits |= ST_NOOUTPUT;
        }
        let control = new.controlled_by.filter(|t| t.fields.is_template());
        let build = |local: Option<(IpAddr, u16)>| {
            Fields::new(
                new.key.protocol,
                false,
                (new.key.caddr, new.key.cport),
                (new.key.vaddr, new.key.vport),
                (new.daddr, new.dport),
                local,
                new.method,
                new.dest.0,
                new.fwmark,
            )
        };
        let inserted = self.insert_entry(
            now,
            build,
            new.method == ForwardMethod::FullNat,
            matches!(new.method, ForwardMethod::Nat | ForwardMethod::FullNat),
            state_bits,
            now.plus_secs(timeout),
            |slot| {
                let template_link = control
                    .and_then(|t| self.bind_to_template(t, now))
                    .map_or(NIL, |t| t + 1);
                slot.cold.control.store(template_link, Ordering::Relaxed);
                if active {
                    counters.active.fetch_add(1, Ordering::AcqRel);
                    counters.check_overload_on_bind();
                } else {
                    self.bind_dest(counters, false);
                }
            },
        );
        if inserted.is_err() {
            self.dests.release(new.dest);
        }
        inserted
    }

    /// Record a persistence template for `key` pointing at `dest`
    /// (`daddr`:`dport`), expiring `timeout_secs` from `now` unless a
    /// new controlled connection re-arms it. Counts in PersistConn only.
    pub fn insert_template(
        &self,
        key: &TemplateKey,
        dest: DestId,
        daddr: IpAddr,
        dport: u16,
        timeout_secs: u32,
        now: Millis,
    ) -> Result<ConnRef<'_>, InsertError> {
        let counters = self.dests.counters(dest).ok_or(InsertError::UnknownDest)?;
        if !self.dests.try_acquire(dest) {
            return Err(InsertError::UnknownDest);
        }
        let build = |_local: Option<(IpAddr, u16)>| {
            Fields::new(
                key.protocol,
                true,
                (key.caddr_masked, 0),
                (key.vaddr, key.vport),
                (daddr, dport),
                None,
                ForwardMethod::Dr,
                dest.0,
                timeout_secs,
            )
        };
        let inserted = self.insert_entry(
            now,
            build,
            false,
            false,
            0,
            now.plus_secs(timeout_secs),
            |slot| {
                slot.cold.control.store(0, Ordering::Relaxed);
                self.bind_dest(counters, true);
            },
        );
        if inserted.is_err() {
            self.dests.release(dest);
        }
        inserted
    }

    /// The common insert path. `bind` runs once the entry is certain to
    /// be published, before it becomes live.
    #[allow(clippy::too_many_arguments)]
    fn insert_entry(
        &self,
        now: Millis,
        build: impl Fn(Option<(IpAddr, u16)>) -> Fields,
        full_nat: bool,
        out_indexed: bool,
        state_bits: u32,
        expires: Millis,
        bind: impl FnOnce(Slot<'_>),
    ) -> Result<ConnRef<'_>, InsertError> {
        let Some(index) = self.pop_free() else {
            self.counters.full_drops.fetch_add(1, Ordering::Relaxed);
            return Err(InsertError::TableFull);
        };
        let Some(slot) = self.slot(index) else {
            return Err(InsertError::TableFull);
        };
        let seq = slot.seq.load(Ordering::Relaxed).wrapping_add(1);
        let pending = gen_bits(seq) | state_bits | LIFE_PENDING;
        let publish = |fields: &Fields| {
            slot.state.store(pending, Ordering::Relaxed);
            slot.expires.store(expires.0, Ordering::Relaxed);
            slot.write_fields(fields);
            slot.seq.store(seq, Ordering::Release);
        };

        let fields = build(None);
        let in_key = fields.in_key();
        let in_hash = self.hash(&in_key);
        let fields = if full_nat {
            match self.link_fullnat(index, slot, &fields, in_hash, &publish) {
                Ok(fields) => fields,
                Err(error) => {
                    self.push_free(index);
                    return Err(error);
                }
            }
        } else {
            publish(&fields);
            if out_indexed {
                let out_hash = self.hash(&fields.out_key());
                let bucket = self.out_index.bucket(out_hash);
                let head = lock_bucket(bucket);
                slot.cold
                    .next_out
                    .store(bucket_first(head), Ordering::Relaxed);
                unlock_bucket(bucket, self.link_to(index, out_hash), bucket_version(head));
            }
            fields
        };

        // Link into the in-index unless a live entry has the key (the
        // local address and port are not part of it: `in_hash` holds):
        // into an empty lane, or, when the bucket is full, at the head
        // of its overflow chain.
        let bucket = self.in_index.bucket(in_hash);
        let head = lock_bucket(&bucket.head);
        let (first, version) = (bucket_first(head), bucket_version(head));
        if self.in_bucket_has_live(bucket, first, &in_key, in_hash, now) {
            unlock_bucket(&bucket.head, first, version);
            if out_indexed {
                self.unlink(Link::Out, index, &fields.out_key());
            }
            self.retire_slot(index, slot);
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return Err(InsertError::Exists);
        }
        bind(slot);
        let link = self.link_to(index, in_hash);
        let empty = bucket.empty_lanes();
        if empty != 0 {
            slot.next_in.store(NIL, Ordering::Relaxed);
            slot.state
                .store(with_life(pending, LIFE_LIVE), Ordering::Release);
            bucket.fill(empty.trailing_zeros(), link, InBucket::mini_tag(in_hash));
            unlock_bucket(&bucket.head, first, version + 1);
        } else {
            slot.next_in.store(first, Ordering::Relaxed);
            slot.state
                .store(with_life(pending, LIFE_LIVE), Ordering::Release);
            unlock_bucket(&bucket.head, link, version + 1);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        self.counters.inserted.fetch_add(1, Ordering::Relaxed);
        let state = slot.state.load(Ordering::Acquire);
        let mut conn = self.make_ref(index, seq, &fields, state);
        conn.controlled = slot.cold.control.load(Ordering::Relaxed) != NIL && !fields.is_template();
        Ok(conn)
    }

    /// Whether the in-index bucket `bucket` (whose overflow chain starts
    /// at `first`) holds a live entry with `key`, see
    /// [`ConnTable::live_with_key`]. Caller holds the bucket lock.
    fn in_bucket_has_live(
        &self,
        bucket: &InBucket,
        first: u32,
        key: &IndexKey,
        hash: u64,
        now: Millis,
    ) -> bool {
        for lane in bucket.matching(InBucket::mini_tag(hash)) {
            if self.live_with_key(Link::In, bucket.link(lane), key, hash, now) {
                return true;
            }
        }
        first != NIL && self.chain_has_live(Link::In, first, key, hash, now)
    }

    /// Whether the chain from `first` holds a live entry with `key`, see
    /// [`ConnTable::live_with_key`]. Caller holds the bucket lock.
    fn chain_has_live(
        &self,
        link: Link,
        first: u32,
        key: &IndexKey,
        hash: u64,
        now: Millis,
    ) -> bool {
        let mut cursor = first;
        let mut steps = 0usize;
        while cursor != NIL && steps <= self.slots.len() {
            if self.live_with_key(link, cursor, key, hash, now) {
                return true;
            }
            let Some(slot) = self.link_index(cursor).and_then(|index| self.slot(index)) else {
                return false;
            };
            cursor = next_link(slot, link).load(Ordering::Relaxed);
            steps += 1;
        }
        false
    }

    /// Whether the entry behind link `at` (of a `link` index, `key`
    /// hashed `hash`) is live with `key` and a deadline after `now` (or
    /// is a valid template still controlling connections), or is being
    /// inserted with it. Caller holds the bucket lock.
    fn live_with_key(&self, link: Link, at: u32, key: &IndexKey, hash: u64, now: Millis) -> bool {
        let Some(slot) = self.link_index(at).and_then(|index| self.slot(index)) else {
            return false;
        };
        if !self.tag_matches(at, hash) {
            return false;
        }
        let fields = slot.read_fields();
        let candidate = match link {
            Link::In => fields.in_key(),
            Link::Out => fields.out_key(),
        };
        if candidate != *key {
            return false;
        }
        let state = slot.state.load(Ordering::Acquire);
        match life(state) {
            LIFE_PENDING => return true,
            LIFE_LIVE => {}
            _ => return false,
        }
        if fields.is_template() && (state & ST_INVALID != 0 || !self.template_valid(&fields)) {
            return false;
        }
        let unexpired = slot.expires.load(Ordering::Acquire) > now.0;
        let controlling = fields.is_template() && slot.cold.control.load(Ordering::SeqCst) != 0;
        unexpired || controlling
    }

    /// Full NAT: find a local address/port whose reply tuple is free in
    /// the out-index and link the entry there, atomically per bucket.
    /// `probe` is the entry without its local address, `start` the hash
    /// of its in-key (where the search starts).
    fn link_fullnat(
        &self,
        index: u32,
        slot: Slot<'_>,
        probe: &Fields,
        start: u64,
        publish: &impl Fn(&Fields),
    ) -> Result<Fields, InsertError> {
        let (real, _) = probe.real();
        let locals: &[IpAddr] = if real.is_ipv4() {
            &self.local_v4
        } else {
            &self.local_v6
        };
        if locals.is_empty() {
            return Err(InsertError::NoLocalAddress);
        }
        let addr_count = u32::try_from(locals.len()).unwrap_or(u32::MAX);
        let port_count = self.local_port_count.max(1);
        let probes = FULLNAT_PROBES.min(port_count.saturating_mul(addr_count));
        let now = Millis(0);
        // The first candidate from the hash (multiply-shift, no division),
        // then the next address and the next port together, wrapping.
        let mut next_addr = fast_range(start as u32, addr_count);
        let mut next_port = fast_range((start >> 32) as u32, port_count);
        for _ in 0..probes {
            let (addr_pick, port_offset) = (next_addr as usize, next_port);
            next_addr += 1;
            if next_addr >= addr_count {
                next_addr = 0;
            }
            next_port += 1;
            if next_port >= port_count {
                next_port = 0;
            }
            let Some(&laddr) = locals.get(addr_pick) else {
                continue;
            };
            let lport = u32::from(self.local_port_first) + port_offset;
            let Ok(lport) = u16::try_from(lport) else {
                continue;
            };
            let fields = probe.with_local(laddr, lport);
            let out_key = fields.out_key();
            let out_hash = self.hash(&out_key);
            let bucket = self.out_index.bucket(out_hash);
            let head = lock_bucket(bucket);
            // Any live holder of the tuple, even past its deadline, keeps it
            // (an empty chain has none: no walk).
            let first = bucket_first(head);
            if first != NIL && self.chain_has_live(Link::Out, first, &out_key, out_hash, now) {
                unlock_bucket(bucket, bucket_first(head), bucket_version(head));
                continue;
            }
            publish(&fields);
            slot.cold
                .next_out
                .store(bucket_first(head), Ordering::Relaxed);
            unlock_bucket(bucket, self.link_to(index, out_hash), bucket_version(head));
            return Ok(fields);
        }
        self.counters
            .fullnat_port_exhausted
            .fetch_add(1, Ordering::Relaxed);
        Err(InsertError::FullNatPortsExhausted)
    }

    /// Count a new connection (inactive) or template (persistent) against
    /// its destination and apply the upper threshold.
    fn bind_dest(&self, counters: &DestCounters, template: bool) {
        if template {
            counters.persist.fetch_add(1, Ordering::AcqRel);
        } else {
            counters.inactive.fetch_add(1, Ordering::AcqRel);
        }
        counters.check_overload_on_bind();
    }

    /// Add a controlled connection to a template and re-arm it to its
    /// full timeout; `None` if the template is no longer alive.
    fn bind_to_template(&self, template: ConnRef<'_>, now: Millis) -> Option<u32> {
        if !std::ptr::eq(template.table, self) {
            return None;
        }
        let slot = self.slot(template.index)?;
        slot.cold.control.fetch_add(1, Ordering::SeqCst);
        let bound = slot
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| {
                (life(state) == LIFE_LIVE && same_gen(state, template.seq)).then(|| touched(state))
            })
            .is_ok();
        if !bound || slot.seq.load(Ordering::SeqCst) != template.seq {
            slot.cold.control.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let timeout = slot.cold.aux.load(Ordering::Relaxed);
        slot.expires
            .store(now.plus_secs(timeout).0, Ordering::Release);
        Some(template.index)
    }

    /// Give back an entry that never became live.
    fn retire_slot(&self, index: u32, slot: Slot<'_>) {
        let seq = slot.seq.load(Ordering::Relaxed);
        slot.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        slot.state.store(LIFE_FREE, Ordering::Release);
        self.push_free(index);
    }

    // ---- free list ------------------------------------------------------

    fn pop_free(&self) -> Option<u32> {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            let first = (head & 0xffff_ffff) as u32;
            if first == NIL {
                return None;
            }
            let next = self.slot(first - 1)?.next_in.load(Ordering::Relaxed);
            let tag = (head >> 32).wrapping_add(1);
            match self.free_head.compare_exchange_weak(
                head,
                (tag << 32) | u64::from(next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // `first` is index + 1: the slots now in use. The
                    // mark moves in steps, so that a growing table pays
                    // one atomic update per step of new slots, not one
                    // per connection (the sweep's span then holds up to
                    // a step of never-used slots).
                    let taken = first as usize;
                    if taken > self.high_water.load(Ordering::Relaxed) {
                        self.high_water
                            .fetch_max(taken.next_multiple_of(HIGH_WATER_STEP), Ordering::Relaxed);
                    }
                    return Some(first - 1);
                }
                Err(current) => head = current,
            }
        }
    }

    /// Push an entry whose `seq` is odd onto the free list.
    fn push_free(&self, index: u32) {
        let Some(slot) = self.slot(index) else {
            return;
        };
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            slot.next_in
                .store((head & 0xffff_ffff) as u32, Ordering::Relaxed);
            let tag = (head >> 32).wrapping_add(1);
            match self.free_head.compare_exchange_weak(
                head,
                (tag << 32) | u64::from(index + 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    // ---- expiry ---------------------------------------------------------

    /// The expiry sweep paced by the clock: visits the entries owed for
    /// the time elapsed, so that every entry is visited once per
    /// [`SWEEP_PERIOD_MS`] whatever the packet rate, at most
    /// `max_visits` in this call (the rest stays owed), and returns how
    /// many it expired. A due entry is thus reclaimed, its destination
    /// counters updated, about one period after its deadline at most,
    /// as long as callers keep up: the engine calls it after every batch
    /// ([`SWEEP_MAX_PER_CALL`]) and workers with no backlog call it
    /// without a bound. When nothing is owed it costs three loads and a
    /// multiplication. Concurrent callers share the work: each claims
    /// its own part.
    pub fn expire_due(&self, now: Millis, max_visits: usize) -> usize {
        let epoch = self.sweep_epoch.load(Ordering::Relaxed);
        if epoch == SWEEP_UNSET {
            let _ = self.sweep_epoch.compare_exchange(
                SWEEP_UNSET,
                now.0,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return 0;
        }
        let span = self.sweep_span() as u64;
        // Visits the clock says are due since the epoch.
        let due = u128::from(now.0.saturating_sub(epoch)) * u128::from(span)
            / u128::from(SWEEP_PERIOD_MS);
        let due = u64::try_from(due).unwrap_or(u64::MAX);
        let claimed = self.sweep_claimed.load(Ordering::Relaxed);
        if due <= claimed {
            return 0;
        }
        // After an idle stretch more than a whole pass may be owed: one
        // pass is all any entry needs.
        let from = claimed.max(due.saturating_sub(span));
        let budget = (due - from).min(u64::try_from(max_visits).unwrap_or(u64::MAX));
        if self
            .sweep_claimed
            .compare_exchange(claimed, from + budget, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // Another worker claimed this part; the next call sees what
            // is left.
            return 0;
        }
        self.expire_step(now, budget as usize)
    }

    /// Visit at most `budget` entries from the sweep cursor and expire
    /// those past their deadline. Returns how many were expired. Several
    /// threads may sweep at once: each takes its own range.
    pub fn expire_step(&self, now: Millis, budget: usize) -> usize {
        let span = self.sweep_span();
        if span == 0 {
            return 0;
        }
        let budget = budget.min(span);
        let start = self.sweep_cursor.fetch_add(budget, Ordering::Relaxed) % span;
        // The range, split where it wraps: no division per entry.
        let first = start..(start + budget).min(span);
        let wrapped = 0..(start + budget).saturating_sub(span);
        let mut expired = 0;
        for range in [first, wrapped] {
            let Some(hot) = self.slots.hot(range.clone()) else {
                continue;
            };
            for (offset, entry) in hot.iter().enumerate() {
                // Only a live entry past its deadline needs the full check
                // (templates: also when they still control connections).
                let state = entry.state.load(Ordering::Relaxed);
                if life(state) != LIFE_LIVE || entry.expires.load(Ordering::Relaxed) > now.0 {
                    continue;
                }
                let index = (range.start + offset) as u32;
                if self.expire_if_due(index, now, false) {
                    expired += 1;
                }
            }
        }
        expired
    }

    /// The slots the sweep visits: `0..high_water`, where every live
    /// entry is. While the mark grows the cursor's place in the span
    /// moves with it, so an entry may wait a second pass: at most
    /// 2 × [`SWEEP_PERIOD_MS`] past its deadline then, one pass once the
    /// table stops growing.
    fn sweep_span(&self) -> usize {
        self.high_water
            .load(Ordering::Relaxed)
            .min(self.slots.len())
    }

    /// Expire entry `index` if it is due (or now, with `force`). Returns
    /// whether this call expired it.
    fn expire_if_due(&self, index: u32, now: Millis, force: bool) -> bool {
        let Some(slot) = self.slot(index) else {
            return false;
        };
        loop {
            let state = slot.state.load(Ordering::SeqCst);
            if life(state) != LIFE_LIVE {
                return false;
            }
            let seq = slot.seq.load(Ordering::Acquire);
            let template = slot.meta.load(Ordering::Relaxed) & super::slot::META_TEMPLATE != 0;
            if !force {
                if slot.expires.load(Ordering::Acquire) > now.0 {
                    return false;
                }
                if template && self.extend_controlling_template(slot, seq, now).is_some() {
                    return false;
                }
            } else if template && slot.cold.control.load(Ordering::SeqCst) != 0 {
                return false;
            }
            if slot
                .state
                .compare_exchange(
                    state,
                    with_life(state, LIFE_DYING),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            {
                self.finish_expiry(index, slot, with_life(state, LIFE_DYING));
                return true;
            }
        }
    }

    /// Side effects of an expiry, run once by the thread whose CAS moved
    /// the entry to DYING: unlink from both indexes (this frees a full-NAT
    /// local port), uncount from the destination, apply the lower
    /// threshold rule, release the controlling template and the
    /// destination reference, free the storage.
    fn finish_expiry(&self, index: u32, slot: Slot<'_>, state: u32) {
        let fields = slot.read_fields();
        self.unlink(Link::In, index, &fields.in_key());
        if fields.has_output() {
            self.unlink(Link::Out, index, &fields.out_key());
        }
        let dest = DestId(fields.dest);
        if let Some(counters) = self.dests.counters(dest) {
            let counter = if fields.is_template() {
                &counters.persist
            } else if state & ST_INACTIVE != 0 {
                &counters.inactive
            } else {
                &counters.active
            };
            counter.fetch_sub(1, Ordering::AcqRel);
            counters.check_overload_on_unbind();
        }
        if !fields.is_template() {
            let control = slot.cold.control.swap(NIL, Ordering::SeqCst);
            if let Some(template) = control.checked_sub(1).and_then(|t| self.slot(t)) {
                template.cold.control.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.dests.release(dest);
        self.retire_slot(index, slot);
        self.release_engine_data(&fields);
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.counters.expired.fetch_add(1, Ordering::Relaxed);
    }

    /// Remove entry `index` from the bucket of `key` (in-index: its lane
    /// or the overflow chain; out-index: the chain), if it is there.
    fn unlink(&self, link: Link, index: u32, key: &IndexKey) {
        let hash = self.hash(key);
        match link {
            Link::In => {
                let bucket = self.in_index.bucket(hash);
                let head = lock_bucket(&bucket.head);
                let lane = (0..IN_BUCKET_LINKS as u32)
                    .find(|&lane| self.link_index(bucket.link(lane)) == Some(index));
                match lane {
                    Some(lane) => {
                        bucket.clear(lane);
                        unlock_bucket(&bucket.head, bucket_first(head), bucket_version(head) + 1);
                    }
                    None => self.unlink_from_chain(&bucket.head, head, link, index),
                }
            }
            Link::Out => {
                let bucket = self.out_index.bucket(hash);
                let head = lock_bucket(bucket);
                self.unlink_from_chain(bucket, head, link, index);
            }
        }
    }

    /// Remove entry `index` from the chain whose head word `bucket` the
    /// caller has locked (`head`: the word before), and unlock it.
    fn unlink_from_chain(&self, bucket: &AtomicU64, head: u64, link: Link, index: u32) {
        let first = bucket_first(head);
        let version = bucket_version(head);
        let Some(slot) = self.slot(index) else {
            unlock_bucket(bucket, first, version);
            return;
        };
        let successor = next_link(slot, link).load(Ordering::Relaxed);
        if self.link_index(first) == Some(index) {
            unlock_bucket(bucket, successor, version + 1);
            return;
        }
        let mut cursor = first;
        let mut steps = 0usize;
        while cursor != NIL && steps <= self.slots.len() {
            let Some(current) = self.link_index(cursor).and_then(|i| self.slot(i)) else {
                break;
            };
            let next = next_link(current, link).load(Ordering::Relaxed);
            if self.link_index(next) == Some(index) {
                next_link(current, link).store(successor, Ordering::Release);
                unlock_bucket(bucket, first, version + 1);
                return;
            }
            cursor = next;
            steps += 1;
        }
        unlock_bucket(bucket, first, version);
    }

    // ---- listing --------------------------------------------------------

    /// Call `f` for every live entry (connections and templates), for
    /// `ipvsadm -c`. Reads each entry under its sequence counter; workers
    /// are never paused. Entries past their deadline are skipped.
    pub fn for_each(&self, now: Millis, mut f: impl FnMut(&ConnListing)) {
        for slot in self.slots.iter() {
            let seq = slot.seq.load(Ordering::Acquire);
            if seq & 1 != 0 {
                continue;
            }
            let fields = slot.read_fields();
            let state = slot.state.load(Ordering::Relaxed);
            let expires = slot.expires.load(Ordering::Relaxed);
            let control = slot.cold.control.load(Ordering::Relaxed);
            let pe = self.engine_listing(&fields);
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) != seq
                || life(state) != LIFE_LIVE
                || !same_gen(state, seq)
                || (expires <= now.0 && !(fields.is_template() && control != 0))
            {
                continue;
            }
            let mut info = self.info_of(&fields, state);
            info.controlled = !info.template && control != NIL;
            f(&ConnListing {
                info,
                state_name: info.state.name(),
                remaining_ms: expires.saturating_sub(now.0),
                pe_data: pe,
            });
        }
    }
}

impl<'t> ConnRef<'t> {
    /// The connection's addresses, method, destination and state (the
    /// state read now; the rest is fixed for the connection's life).
    pub fn info(&self) -> ConnInfo {
        let mut info = self.table.info_of(&self.fields, self.state);
        info.controlled = self.controlled;
        if let Some(slot) = self.table.slot(self.index) {
            let state = slot.state.load(Ordering::Acquire);
            if same_gen(state, self.seq) && life(state) == LIFE_LIVE {
                info.no_output = state & ST_NOOUTPUT != 0;
                info.state = state_from_bits(info.template, info.key.protocol, state);
                if !info.template {
                    info.controlled = slot.cold.control.load(Ordering::Relaxed) != NIL;
                }
            }
        }
        info
    }

    /// Whether the real server is still part of its service. When not,
    /// the engine drops the connection's packets.
    pub fn dest_available(&self) -> bool {
        self.table
            .dests
            .counters(self.dest())
            .is_some_and(DestCounters::is_available_flag)
    }

    /// Milliseconds until this entry expires (0 if gone or due).
    pub fn remaining_ms(&self, now: Millis) -> u64 {
        self.live_slot().map_or(0, |slot| {
            slot.expires.load(Ordering::Acquire).saturating_sub(now.0)
        })
    }

    /// Connections a template controls (0 for a connection).
    pub fn controlled_count(&self) -> u32 {
        if !self.fields.is_template() {
            return 0;
        }
        self.live_slot()
            .map_or(0, |slot| slot.cold.control.load(Ordering::SeqCst))
    }

    fn live_slot(&self) -> Option<Slot<'t>> {
        let slot = self.table.slot(self.index)?;
        let state = slot.state.load(Ordering::Acquire);
        (life(state) == LIFE_LIVE && same_gen(state, self.seq)).then_some(slot)
    }

    /// Account a packet of this connection: drop it if the real server is
    /// gone (expiring the connection with `expire_nodest_conn`); else run
    /// the TCP state machine (INPUT, OUTPUT, or INPUT_ONLY while no output
    /// was seen) or the UDP rule, move the connection between InActConn
    /// and ActiveConn when its state's class changes, assure the
    /// controlling template when the connection becomes established (TCP)
    /// or sees a reply (UDP), and re-arm the timer with the new state's
    /// timeout. `tcp_flags` is `None` for non-TCP packets; SCTP packets go
    /// through [`on_sctp_packet`](ConnRef::on_sctp_packet).
    pub fn on_packet(
        &self,
        dir: Direction,
        tcp_flags: Option<TcpFlags>,
        now: Millis,
    ) -> PacketOutcome {
        self.packet_step(dir, tcp_flags, now).0
    }

    /// [`on_packet`](ConnRef::on_packet) for a packet of an SCTP
    /// association whose state chunk ([`crate::wire::sctp::state_chunk`])
    /// is `chunk_type`: the SCTP tables of [`super::sctp`] instead of the
    /// TCP ones; only ESTABLISHED counts active and assures the
    /// controlling template. Apart from `packet_step`, so that the TCP
    /// and UDP packet path stays as it was.
    #[cold]
    #[inline(never)]
    pub fn on_sctp_packet(&self, dir: Direction, chunk_type: u8, now: Millis) -> PacketOutcome {
        let table = self.table;
        let Some(slot) = table.slot(self.index) else {
            return PacketOutcome::Gone;
        };
        let mut old = slot.state.load(Ordering::SeqCst);
        if life(old) != LIFE_LIVE || !same_gen(old, self.seq) || self.fields.is_template() {
            return PacketOutcome::Gone;
        }
        let counters = table.dests.counters(self.dest());
        if !counters.is_some_and(DestCounters::is_available_flag) {
            let expired = table.expire_nodest_conn.load(Ordering::Relaxed)
                && table.expire_if_due(self.index, now, true);
            return PacketOutcome::DropNoDest { expired };
        }
        let (new, timeout) = loop {
            let (new, timeout) = sctp_step(old, dir, chunk_type);
            slot.expires
                .store(now.plus_secs(timeout).0, Ordering::Release);
            match slot
                .state
                .compare_exchange(old, touched(new), Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break (new, timeout),
                Err(current) => {
                    if life(current) != LIFE_LIVE || !same_gen(current, self.seq) {
                        return PacketOutcome::Gone;
                    }
                    old = current;
                }
            }
        };
        move_active_inactive(counters, old, new);
        let established = SctpState::Established as u32;
        if tcp_index(new) == established && tcp_index(old) != established {
            self.assure_template(slot);
        }
        PacketOutcome::Forward {
            state: state_from_bits(false, self.fields.protocol(), new),
            timeout_secs: timeout,
        }
    }

    /// [`on_packet`](ConnRef::on_packet), also saying whether this packet
    /// moved the connection from SYN_RECV to ESTABLISHED (the client's
    /// ACK that opens it for the real server). Inlined: an established
    /// connection's plain ACK (the common packet) is handled in line by
    /// [`established_ack`](ConnRef::established_ack); every other packet
    /// takes the full step out of line.
    #[inline(always)]
    pub fn on_packet_opening(
        &self,
        dir: Direction,
        tcp_flags: Option<TcpFlags>,
        now: Millis,
    ) -> (PacketOutcome, bool) {
        match self.established_ack(dir, tcp_flags, now) {
            Some(outcome) => (outcome, false),
            None => self.on_packet_opening_step(dir, tcp_flags, now),
        }
    }

    /// The plain ACK of an established TCP connection whose real server is
    /// available (what `packet_step` does first): re-arm the timer, touch
    /// the state word, forward. `None` when the packet is anything else or
    /// the state word changed under it; the caller then runs the full step
    /// (which reads the state word afresh), so the outcome is the same.
    #[inline(always)]
    fn established_ack(
        &self,
        dir: Direction,
        tcp_flags: Option<TcpFlags>,
        now: Millis,
    ) -> Option<PacketOutcome> {
        if self.fields.protocol() != IPPROTO_TCP
            || !tcp_flags.is_some_and(|f| f.ack && !f.syn && !f.fin && !f.rst)
        {
            return None;
        }
        let table = self.table;
        let slot = table.slot(self.index)?;
        let old = slot.state.load(Ordering::SeqCst);
        if life(old) != LIFE_LIVE
            || !same_gen(old, self.seq)
            || self.fields.is_template()
            || tcp_index(old) != TcpState::Established as u32
            || (dir != Direction::Input && old & ST_NOOUTPUT != 0)
            || !table
                .dests
                .counters(self.dest())
                .is_some_and(DestCounters::is_available_flag)
        {
            return None;
        }
        let timeout = table.tcp_timeout.load(Ordering::Relaxed);
        slot.expires
            .store(now.plus_secs(timeout).0, Ordering::Release);
        slot.state
            .compare_exchange(old, touched(old), Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        Some(PacketOutcome::Forward {
            state: ConnState::Tcp(TcpState::Established),
            timeout_secs: timeout,
        })
    }

    /// [`on_packet_opening`](ConnRef::on_packet_opening) for every packet
    /// but an established connection's plain ACK: the full state step.
    #[inline(never)]
    fn on_packet_opening_step(
        &self,
        dir: Direction,
        tcp_flags: Option<TcpFlags>,
        now: Millis,
    ) -> (PacketOutcome, bool) {
        let (outcome, old) = self.packet_step(dir, tcp_flags, now);
        let opened = matches!(outcome, PacketOutcome::Forward { .. })
            && self.fields.protocol() == IPPROTO_TCP
            && tcp_index(old) == TcpState::SynRecv as u32
            && matches!(
                outcome,
                PacketOutcome::Forward {
                    state: ConnState::Tcp(TcpState::Established),
                    ..
                }
            );
        (outcome, opened)
    }

    /// The state update behind `on_packet`; also returns the state word
    /// the packet found (0 when it did not forward). The destination's
    /// counters are looked up once, the state word read once before the
    /// compare-and-swap loop.
    #[inline(always)]
    fn packet_step(
        &self,
        dir: Direction,
        tcp_flags: Option<TcpFlags>,
        now: Millis,
    ) -> (PacketOutcome, u32) {
        let table = self.table;
        let Some(slot) = table.slot(self.index) else {
            return (PacketOutcome::Gone, 0);
        };
        let mut old = slot.state.load(Ordering::SeqCst);
        if life(old) != LIFE_LIVE || !same_gen(old, self.seq) || self.fields.is_template() {
            return (PacketOutcome::Gone, 0);
        }
        let counters = table.dests.counters(self.dest());
        if !counters.is_some_and(DestCounters::is_available_flag) {
            let expired = table.expire_nodest_conn.load(Ordering::Relaxed)
                && table.expire_if_due(self.index, now, true);
            return (PacketOutcome::DropNoDest { expired }, 0);
        }
        let is_tcp = self.fields.protocol() == IPPROTO_TCP;
        // An established TCP connection's plain ACK (any table: ES stays
        // ES, nothing to count or assure) only re-arms the timer.
        if is_tcp
            && tcp_index(old) == TcpState::Established as u32
            && tcp_flags.is_some_and(|f| f.ack && !f.syn && !f.fin && !f.rst)
            && (dir == Direction::Input || old & ST_NOOUTPUT == 0)
        {
            let timeout = table.tcp_timeout.load(Ordering::Relaxed);
            slot.expires
                .store(now.plus_secs(timeout).0, Ordering::Release);
            match slot
                .state
                .compare_exchange(old, touched(old), Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    let outcome = PacketOutcome::Forward {
                        state: ConnState::Tcp(TcpState::Established),
                        timeout_secs: timeout,
                    };
                    return (outcome, old);
                }
                Err(current) => {
                    if life(current) != LIFE_LIVE || !same_gen(current, self.seq) {
                        return (PacketOutcome::Gone, 0);
                    }
                    old = current;
                }
            }
        }
        let (new, timeout) = loop {
            let (new, timeout) = if is_tcp {
                let mut new = old;
                let table_kind = if old & ST_NOOUTPUT != 0 {
                    if dir == Direction::Output {
                        new &= !ST_NOOUTPUT;
                        TcpTable::Output
                    } else {
                        TcpTable::InputOnly
                    }
                } else if dir == Direction::Output {
                    TcpTable::Output
                } else {
                    TcpTable::Input
                };
                let current = TcpState::from_index(tcp_index(old));
                let next = next_state(table_kind, current, tcp_flags.unwrap_or_default());
                new = with_tcp_index(new, next as u32);
                if next.is_active() {
                    new &= !ST_INACTIVE;
                } else {
                    new |= ST_INACTIVE;
                }
                let timeout = match next {
                    TcpState::Established => table.tcp_timeout.load(Ordering::Relaxed),
                    TcpState::FinWait => table.tcp_fin_timeout.load(Ordering::Relaxed),
                    other => other.timeout_secs(0, 0),
                };
                (new, timeout)
            } else {
                let mut new = old;
                if dir == Direction::Output {
                    new &= !ST_NOOUTPUT;
                }
                (new, table.udp_timeout.load(Ordering::Relaxed))
            };
            slot.expires
                .store(now.plus_secs(timeout).0, Ordering::Release);
            match slot
                .state
                .compare_exchange(old, touched(new), Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break (new, timeout),
                Err(current) => {
                    if life(current) != LIFE_LIVE || !same_gen(current, self.seq) {
                        return (PacketOutcome::Gone, 0);
                    }
                    old = current;
                }
            }
        };
        move_active_inactive(counters, old, new);
        let assure = if is_tcp {
            tcp_index(new) == TcpState::Established as u32
                && tcp_index(old) != TcpState::Established as u32
        } else {
            dir == Direction::Output
        };
        if assure {
            self.assure_template(slot);
        }
        let outcome = PacketOutcome::Forward {
            state: state_from_bits(false, self.fields.protocol(), new),
            timeout_secs: timeout,
        };
        (outcome, old)
    }

    /// The real server's counters id.
    #[inline]
    pub fn dest(&self) -> DestId {
        DestId(self.fields.dest)
    }

    /// The forwarding method (fixed for the connection's life).
    #[inline(always)]
    pub fn method(&self) -> ForwardMethod {
        self.fields.method()
    }

    /// The real server's address and port.
    #[inline]
    pub fn real_server(&self) -> SocketAddr {
        let (addr, port) = self.fields.real();
        SocketAddr::new(addr, port)
    }

    /// The virtual service's address and port.
    #[inline]
    pub fn virtual_service(&self) -> SocketAddr {
        let (addr, port) = self.fields.virt();
        SocketAddr::new(addr, port)
    }

    /// The client's address.
    #[inline]
    pub fn client_addr(&self) -> IpAddr {
        self.fields.client().0
    }

    /// The real server's address alone (what DR needs of the entry).
    #[inline]
    pub fn real_addr(&self) -> IpAddr {
        self.fields.real().0
    }

    /// The connection's endpoints, decoded straight from the entry (no
    /// [`ConnInfo`] built): what the forwarding methods take.
    #[inline]
    pub fn endpoints(&self) -> ConnEndpoints {
        let f = &self.fields;
        let (caddr, cport) = f.client();
        let (vaddr, vport) = f.virt();
        let (daddr, dport) = f.real();
        ConnEndpoints {
            client: SocketAddr::new(caddr, cport),
            virtual_service: SocketAddr::new(vaddr, vport),
            real_server: SocketAddr::new(daddr, dport),
            local: f.local().map(|(addr, port)| SocketAddr::new(addr, port)),
        }
    }

    /// A full-NAT connection's four endpoints when all are IPv4, read
    /// straight from the entry's words (no [`SocketAddr`] built); `None`
    /// for any other connection (then use [`endpoints`](ConnRef::endpoints)).
    #[inline(always)]
    pub fn fullnat_v4(&self) -> Option<FullNatEndsV4> {
        let [(caddr, cport), (vaddr, vport), (daddr, dport), (laddr, lport)] =
            self.fields.fullnat_v4()?;
        Some(FullNatEndsV4 {
            client: SocketAddrV4::new(caddr, cport),
            virtual_service: SocketAddrV4::new(vaddr, vport),
            real_server: SocketAddrV4::new(daddr, dport),
            local: SocketAddrV4::new(laddr, lport),
        })
    }

    fn assure_template(&self, slot: Slot<'_>) {
        let control = slot.cold.control.load(Ordering::Relaxed);
        if let Some(template) = control.checked_sub(1).and_then(|t| self.table.slot(t)) {
            let _ = template
                .state
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                    (life(state) == LIFE_LIVE && state & ST_ASSURED == 0)
                        .then_some(state | ST_ASSURED)
                });
        }
    }

    /// `conn_reuse_mode` on a SYN (or an SCTP INIT) that hit this
    /// connection: answer whether
    /// the engine must schedule the SYN afresh, and if so expire this
    /// connection now. Rescheduled when `expire_nodest_conn` is set and
    /// the real server has weight 0, or (not for controlled connections)
    /// when a TCP connection is in TIME_WAIT or CLOSE, or with bit 1 of
    /// the mode in FIN_WAIT with no output seen, or an SCTP association
    /// is CLOSED.
    pub fn try_reuse_on_syn(&self, now: Millis) -> bool {
        let table = self.table;
        let conn_reuse_mode = table.conn_reuse_mode.load(Ordering::Relaxed);
        if conn_reuse_mode == 0 || self.fields.is_template() {
            return false;
        }
        let Some(slot) = self.live_slot() else {
            return false;
        };
        let counters = table.dests.counters(self.dest());
        let quiescent_gone = table.expire_nodest_conn.load(Ordering::Relaxed)
            && counters.is_some_and(|c| c.weight() == 0);
        let resched = quiescent_gone || {
            let state = slot.state.load(Ordering::Acquire);
            let controlled = slot.cold.control.load(Ordering::Relaxed) != NIL;
            let tcp = TcpState::from_index(tcp_index(state));
            let protocol = self.fields.protocol();
            !controlled
                && ((protocol == IPPROTO_TCP
                    && (tcp == TcpState::TimeWait
                        || tcp == TcpState::Close
                        || (conn_reuse_mode & 2 != 0
                            && tcp == TcpState::FinWait
                            && state & ST_NOOUTPUT != 0)))
                    || (protocol == IPPROTO_SCTP && tcp_index(state) == SctpState::Closed as u32))
        };
        if resched {
            table.expire_if_due(self.index, now, true);
        }
        resched
    }

    /// Expire this entry now (templates only when they control no
    /// connection). Returns whether this call expired it.
    pub fn expire_now(&self, now: Millis) -> bool {
        self.live_slot().is_some() && self.table.expire_if_due(self.index, now, true)
    }
}

/// What one entry of a chain says about a lookup.
enum Probe<'t> {
    /// The entry has the key and is alive.
    Found(ConnRef<'t>),
    /// Not this entry: go on with this link (`NIL` ends the chain).
    Next(u32),
    /// The entry changed while it was read: restart the lookup.
    Raced,
}

/// `x` mapped onto `0..n` by multiply-shift (Lemire's "fast range"): a
/// value below `n` (0 when `n` is 0), uniform for a uniform `x`, without
/// a division.
#[inline(always)]
fn fast_range(x: u32, n: u32) -> u32 {
    ((u64::from(x) * u64::from(n)) >> 32) as u32
}

/// Move a connection between its real server's ActiveConn and InActConn
/// when a state change from `old` to `new` flips its inactive bit.
#[inline(always)]
fn move_active_inactive(counters: Option<&DestCounters>, old: u32, new: u32) {
    let was_inactive = old & ST_INACTIVE != 0;
    if was_inactive == (new & ST_INACTIVE != 0) {
        return;
    }
    if let Some(counters) = counters {
        let (gain, lose) = if was_inactive {
            (&counters.active, &counters.inactive)
        } else {
            (&counters.inactive, &counters.active)
        };
        gain.fetch_add(1, Ordering::AcqRel);
        lose.fetch_sub(1, Ordering::AcqRel);
    }
}

fn next_link(slot: Slot<'_>, link: Link) -> &AtomicU32 {
    match link {
        Link::In => &slot.hot.next_in,
        Link::Out => &slot.cold.next_out,
    }
}

/// One SCTP packet's step from state word `old` (the state number lives
/// where TCP's does): the table chosen as for TCP (INPUT_ONLY while no
/// output was seen), the new state, its active/inactive class and its
/// timeout.
fn sctp_step(old: u32, dir: Direction, sctp_chunk: u8) -> (u32, u32) {
    let mut new = old;
    let table_kind = if old & ST_NOOUTPUT != 0 {
        if dir == Direction::Output {
            new &= !ST_NOOUTPUT;
            TcpTable::Output
        } else {
            TcpTable::InputOnly
        }
    } else if dir == Direction::Output {
        TcpTable::Output
    } else {
        TcpTable::Input
    };
    let current = SctpState::from_index(tcp_index(old));
    let next = super::sctp::next_state(table_kind, current, sctp_chunk);
    new = with_tcp_index(new, next as u32);
    if next.is_active() {
        new &= !ST_INACTIVE;
    } else {
        new |= ST_INACTIVE;
    }
    (new, next.timeout_secs())
}

fn state_from_bits(template: bool, protocol: u8, state: u32) -> ConnState {
    if template {
        ConnState::Template {
            assured: state & ST_ASSURED != 0,
        }
    } else if protocol == IPPROTO_TCP {
        ConnState::Tcp(TcpState::from_index(tcp_index(state)))
    } else if protocol == IPPROTO_SCTP {
        ConnState::Sctp(SctpState::from_index(tcp_index(state)))
    } else {
        ConnState::Udp
    }
}

fn conn_state(fields: &Fields, state: u32) -> ConnState {
    state_from_bits(fields.is_template(), fields.protocol(), state)
}

fn prev_power_of_two(n: usize) -> usize {
    let n = n.max(1);
    if n.is_power_of_two() {
        n
    } else {
        n.next_power_of_two() >> 1
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::conn::ConnTableConfig;

    fn table(capacity: u32) -> (ConnTable, DestId) {
        let registry = Arc::new(DestRegistry::new(4));
        let (dest, _) = registry.allocate(1, 0, 0).expect("room");
        let config = ConnTableConfig {
            capacity,
            ..ConnTableConfig::default()
        };
        (ConnTable::new(config, registry), dest)
    }

    /// A table whose full-NAT pool holds `local_addrs`, and a destination.
    fn fullnat_table(capacity: u32, local_addrs: Vec<IpAddr>) -> (ConnTable, DestId) {
        let registry = Arc::new(DestRegistry::new(4));
        let (dest, _) = registry.allocate(1, 0, 0).expect("room");
        let config = ConnTableConfig {
            capacity,
            fullnat_pool: uvs_conf::LocalAddrPool {
                addrs: local_addrs,
                ..Default::default()
            },
            ..ConnTableConfig::default()
        };
        (ConnTable::new(config, registry), dest)
    }

    fn new_conn<'a>(cport: u16, dest: DestId, method: ForwardMethod) -> NewConn<'a> {
        NewConn {
            key: ConnKey {
                protocol: IPPROTO_TCP,
                caddr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                cport,
                vaddr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
                vport: 80,
            },
            fwmark: 0,
            dest,
            daddr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
            dport: 8080,
            method,
            controlled_by: None,
        }
    }

    fn flags(syn: bool, ack: bool) -> Option<TcpFlags> {
        Some(TcpFlags {
            syn,
            ack,
            ..TcpFlags::default()
        })
    }

    #[test]
    fn fast_range_stays_below_n_and_spans_it() {
        for n in [1u32, 2, 3, 7, 28_232, 65_535] {
            let mut seen_last = false;
            for x in [0u32, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, u32::MAX] {
                let r = fast_range(x, n);
                assert!(r < n, "fast_range({x}, {n}) = {r}");
                seen_last |= r == n - 1;
            }
            assert!(seen_last, "u32::MAX maps to the last of {n}");
            assert_eq!(fast_range(0, n), 0);
        }
        assert_eq!(fast_range(u32::MAX, 0), 0);
    }

    #[test]
    fn on_packet_opening_is_true_only_for_the_packet_that_establishes() {
        let (table, dest) = table(16);
        let conn = table
            .insert(&new_conn(1000, dest, ForwardMethod::Dr), Millis(0))
            .expect("insert");
        let (outcome, opened) =
            conn.on_packet_opening(Direction::Input, flags(true, false), Millis(0));
        assert_eq!(
            outcome,
            PacketOutcome::Forward {
                state: ConnState::Tcp(TcpState::SynRecv),
                timeout_secs: 60
            }
        );
        assert!(!opened);
        let found = table
            .lookup_in(&new_conn(1000, dest, ForwardMethod::Dr).key, Millis(1))
            .expect("found");
        let (outcome, opened) =
            found.on_packet_opening(Direction::Input, flags(false, true), Millis(1));
        assert!(matches!(
            outcome,
            PacketOutcome::Forward {
                state: ConnState::Tcp(TcpState::Established),
                ..
            }
        ));
        assert!(opened);
        let (_, again) = found.on_packet_opening(Direction::Input, flags(false, true), Millis(2));
        assert!(!again);
        // A plain on_packet moves the state the same way.
        assert_eq!(found.info().state, ConnState::Tcp(TcpState::Established));
    }

    /// Everything `insert_opening` leaves behind, to compare with
    /// `insert` + `on_packet`.
    fn after_first_packet(
        table: &ConnTable,
        conn: &ConnRef<'_>,
        outcome: PacketOutcome,
        dest: DestId,
    ) -> (PacketOutcome, ConnInfo, u64, u32, u32) {
        let counters = table.dests.counters(dest).expect("dest");
        (
            outcome,
            conn.info(),
            conn.remaining_ms(Millis(0)),
            counters.active.load(Ordering::Relaxed),
            counters.inactive.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn insert_opening_equals_insert_then_on_packet() {
        let plain_ack = flags(false, true);
        let rst = Some(TcpFlags {
            rst: true,
            ..TcpFlags::default()
        });
        // (Full NAT takes NAT's table; its insert needs a local pool.)
        for method in [ForwardMethod::Dr, ForwardMethod::Nat] {
            for (protocol, tcp_flags) in [
                (IPPROTO_TCP, flags(true, false)),
                (IPPROTO_TCP, plain_ack),
                (IPPROTO_TCP, rst),
                (IPPROTO_UDP, None),
            ] {
                let case = format!("{method:?} {protocol} {tcp_flags:?}");
                let mut new = new_conn(1000, DestId(0), method);
                new.key.protocol = protocol;
                let (one, dest) = table(16);
                new.dest = dest;
                let (conn, outcome) = one
                    .insert_opening(&new, tcp_flags, Millis(0))
                    .expect("insert_opening");
                let got = after_first_packet(&one, &conn, outcome, dest);
                let (two, dest) = table(16);
                new.dest = dest;
                let conn = two.insert(&new, Millis(0)).expect("insert");
                let outcome = conn.on_packet(Direction::Input, tcp_flags, Millis(0));
                let want = after_first_packet(&two, &conn, outcome, dest);
                assert_eq!(got, want, "{case}");
            }
        }
    }

    #[test]
    fn established_ack_fast_path_keeps_the_state_machine_result() {
        // ES + ACK: the fast path. ES + ACK outbound with no output seen
        // yet (DR): the general path clears the no-output flag.
        let (table, dest) = table(16);
        let conn = table
            .insert(&new_conn(1000, dest, ForwardMethod::Dr), Millis(0))
            .expect("insert");
        conn.on_packet(Direction::Input, flags(true, false), Millis(0));
        conn.on_packet(Direction::Input, flags(false, true), Millis(0));
        let counters = table.dests.counters(dest).expect("dest");
        let active = counters.active.load(Ordering::Relaxed);
        let outcome = conn.on_packet(Direction::Input, flags(false, true), Millis(5_000));
        assert_eq!(
            outcome,
            PacketOutcome::Forward {
                state: ConnState::Tcp(TcpState::Established),
                timeout_secs: table.timeouts().tcp
            }
        );
        assert_eq!(
            conn.remaining_ms(Millis(5_000)),
            u64::from(table.timeouts().tcp) * 1000
        );
        assert_eq!(counters.active.load(Ordering::Relaxed), active);
        assert!(conn.info().no_output);
        conn.on_packet(Direction::Output, flags(false, true), Millis(6_000));
        assert!(!conn.info().no_output);
        assert_eq!(conn.info().state, ConnState::Tcp(TcpState::Established));
        // A FIN leaves the fast path: ES → CLOSE_WAIT (INPUT table).
        let fin = Some(TcpFlags {
            fin: true,
            ack: true,
            ..TcpFlags::default()
        });
        conn.on_packet(Direction::Input, fin, Millis(7_000));
        assert_eq!(conn.info().state, ConnState::Tcp(TcpState::CloseWait));
    }

    /// A table of 64 entries whose in-index is a single bucket, and a
    /// destination.
    fn one_bucket_table() -> (ConnTable, DestId) {
        let registry = Arc::new(DestRegistry::new(4));
        let (dest, _) = registry.allocate(1, 0, 0).expect("room");
        let config = ConnTableConfig {
            capacity: 64,
            ..ConnTableConfig::default()
        };
        (ConnTable::with_in_buckets(config, registry, Some(1)), dest)
    }

    /// One in-index bucket for 40 entries: 12 in its lanes, the rest in
    /// its overflow chain. Every way of looking up finds each entry;
    /// duplicates are refused in lanes and chain alike; removals from
    /// either leave the others found, and freed lanes are used again.
    #[test]
    fn a_full_bucket_overflows_into_its_chain_and_everything_stays_found() {
        let (table, dest) = one_bucket_table();
        assert_eq!(table.in_index.len(), 1);
        let bucket = table.in_index.bucket(0);
        let chained = |table: &ConnTable| {
            let mut count = 0;
            let mut cursor = bucket_first(bucket.head.load(Ordering::Acquire));
            while let Some(slot) = table.link_index(cursor).and_then(|i| table.slot(i)) {
                count += 1;
                cursor = slot.next_in.load(Ordering::Relaxed);
            }
            count
        };
        let now = Millis(1);
        let all_found = |table: &ConnTable, ports: &[u16]| {
            let keys: Vec<ConnKey> = ports
                .iter()
                .map(|&p| new_conn(p, dest, ForwardMethod::Dr).key)
                .collect();
            let mut batch = vec![None; keys.len()];
            table.lookup_in_batch(&keys, now, &mut batch);
            for (key, batched) in keys.iter().zip(&batch) {
                let single = table.lookup_in(key, now).map(|c| c.index);
                assert!(single.is_some(), "{key:?}");
                assert_eq!(batched.as_ref().map(|c| c.index), single, "{key:?}");
                let mut hashed = table.prefetch_in(key);
                assert_eq!(
                    table.lookup_in_hashed(&hashed, now).map(|c| c.index),
                    single
                );
                // (true for lane entries; a chained entry is a candidate
                // only when first in the chain)
                table.prefetch_in_entry(&mut hashed);
                assert_eq!(
                    table.lookup_in_hashed(&hashed, now).map(|c| c.index),
                    single
                );
            }
        };
        let mut ports: Vec<u16> = (1..=40).collect();
        for &port in &ports {
            table
                .insert(&new_conn(port, dest, ForwardMethod::Dr), now)
                .expect("insert");
        }
        assert_eq!(bucket.empty_lanes(), 0);
        assert_eq!(chained(&table), 40 - IN_BUCKET_LINKS);
        all_found(&table, &ports);
        // A key absent from a full bucket with a chain: a miss, by every
        // way, also after a prefetch that saw candidates to examine.
        let absent = new_conn(999, dest, ForwardMethod::Dr).key;
        let mut hashed = table.prefetch_in(&absent);
        table.prefetch_in_entry(&mut hashed);
        assert!(table.lookup_in_hashed(&hashed, now).is_none());
        assert!(table.lookup_in(&absent, now).is_none());
        // Duplicates of a lane entry (the first 14) and of chained ones.
        for port in [1, 14, 15, 40] {
            let again = table.insert(&new_conn(port, dest, ForwardMethod::Dr), now);
            assert!(matches!(again, Err(InsertError::Exists)), "{port}");
        }
        // Remove two lane entries and two chained ones.
        for port in [2, 9, 20, 40] {
            let conn = table
                .lookup_in(&new_conn(port, dest, ForwardMethod::Dr).key, now)
                .expect("found");
            assert!(conn.expire_now(now));
            assert!(table
                .lookup_in(&new_conn(port, dest, ForwardMethod::Dr).key, now)
                .is_none());
        }
        ports.retain(|p| ![2, 9, 20, 40].contains(p));
        all_found(&table, &ports);
        assert_eq!(bucket.empty_lanes().count_ones(), 2);
        assert_eq!(chained(&table), 40 - IN_BUCKET_LINKS - 2);
        // New entries take the freed lanes first.
        for port in [41, 42, 43] {
            table
                .insert(&new_conn(port, dest, ForwardMethod::Dr), now)
                .expect("insert");
            ports.push(port);
        }
        assert_eq!(bucket.empty_lanes(), 0);
        assert_eq!(chained(&table), 40 - IN_BUCKET_LINKS - 1);
        all_found(&table, &ports);
    }

    /// One in-index bucket, 20 entries that stay (12 in lanes, 8 in the
    /// overflow chain) and a writer thread inserting and expiring 24
    /// more in the same bucket (lanes freed and refilled, chain heads
    /// pushed and unlinked, the version bumped at each): every lookup
    /// form finds every entry that stays, every time.
    #[test]
    fn lookups_find_lane_and_chain_entries_while_their_bucket_churns() {
        use std::sync::atomic::AtomicBool;
        let (table, dest) = one_bucket_table();
        let now = Millis(1);
        let key = |port: u16| new_conn(port, dest, ForwardMethod::Dr).key;
        let staying: Vec<u16> = (1..=20).collect();
        for &port in &staying {
            table
                .insert(&new_conn(port, dest, ForwardMethod::Dr), now)
                .expect("insert");
        }
        let keys: Vec<ConnKey> = staying.iter().map(|&p| key(p)).collect();
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..2_000 {
                    let conns: Vec<ConnRef<'_>> = (100..124)
                        .filter_map(|port| {
                            table
                                .insert(&new_conn(port, dest, ForwardMethod::Dr), now)
                                .ok()
                        })
                        .collect();
                    assert_eq!(conns.len(), 24);
                    for conn in conns {
                        assert!(conn.expire_now(now));
                    }
                }
                done.store(true, Ordering::Release);
            });
            let mut rounds = 0u32;
            let mut batch = vec![None; keys.len()];
            while !done.load(Ordering::Acquire) && rounds < 1_000_000 {
                rounds += 1;
                for key in &keys {
                    assert!(table.lookup_in(key, now).is_some(), "{key:?}");
                    let mut hashed = table.prefetch_in(key);
                    table.prefetch_in_entry(&mut hashed);
                    assert!(table.lookup_in_hashed(&hashed, now).is_some(), "{key:?}");
                }
                table.lookup_in_batch(&keys, now, &mut batch);
                assert!(batch.iter().all(Option::is_some));
            }
            assert!(rounds > 0);
        });
        assert_eq!(table.len(), staying.len());
        assert_eq!(table.stats().lookup_retries_exhausted, 0);
    }

    #[test]
    fn chain_links_carry_the_entry_and_a_tag_of_its_hash() {
        for capacity in [1u32, 16, 1_000, 1 << 20] {
            let (table, _) = table(capacity);
            let shift = table.link_mask.count_ones();
            assert!(capacity <= table.link_mask, "capacity {capacity}");
            for index in [0, capacity / 2, capacity - 1] {
                for hash in [0u64, u64::MAX, 0x0123_4567_89ab_cdef] {
                    let link = table.link_to(index, hash);
                    assert_ne!(link, NIL);
                    assert_eq!(table.link_index(link), Some(index));
                    assert!(table.tag_matches(link, hash));
                    // A hash differing in the tag bits does not match.
                    let other = hash ^ (1 << (32 + shift));
                    assert!(
                        !table.tag_matches(link, other),
                        "{capacity} {index} {hash:x}"
                    );
                }
            }
            assert_eq!(table.link_index(NIL), None);
        }
    }

    /// A lookup of a prefetched key finds what `lookup_in` finds (and
    /// misses what it misses); the IPv4 prefetch key equals the general
    /// one.
    #[test]
    fn lookup_in_hashed_finds_what_lookup_in_finds() {
        let (table, dest) = table(64);
        for cport in 1..=20 {
            table
                .insert(&new_conn(cport, dest, ForwardMethod::Dr), Millis(0))
                .expect("insert");
        }
        for cport in 1..=24 {
            let key = new_conn(cport, dest, ForwardMethod::Dr).key;
            let hashed = table.prefetch_in(&key);
            let v4 = table.prefetch_in_v4(
                IPPROTO_TCP,
                (u32::from(Ipv4Addr::new(10, 0, 0, 1)), cport),
                (u32::from(Ipv4Addr::new(192, 0, 2, 10)), 80),
            );
            assert_eq!(hashed, v4);
            let expected = table.lookup_in(&key, Millis(1)).map(|c| c.index);
            assert_eq!(expected.is_some(), cport <= 20);
            let found = table.lookup_in_hashed(&hashed, Millis(1));
            assert_eq!(found.map(|c| c.index), expected, "{cport}");
        }
    }

    /// The IPv4 reply lookups, by key and by a key hashed ahead, find
    /// what `lookup_out` finds (NAT and full NAT replies) and miss what
    /// it misses.
    #[test]
    fn lookup_out_v4_and_lookup_out_hashed_find_what_lookup_out_finds() {
        let (table, dest) = fullnat_table(64, vec![IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1))]);
        let mut replies = Vec::new();
        for cport in 1..=10 {
            let method = if cport % 2 == 0 {
                ForwardMethod::Nat
            } else {
                ForwardMethod::FullNat
            };
            let conn = table
                .insert(&new_conn(cport, dest, method), Millis(0))
                .expect("insert");
            let ends = conn.endpoints();
            let peer = ends.local.unwrap_or(ends.client);
            replies.push(ReplyKey {
                protocol: IPPROTO_TCP,
                raddr: ends.real_server.ip(),
                rport: ends.real_server.port(),
                daddr: peer.ip(),
                dport: peer.port(),
            });
        }
        let v4 = |addr: IpAddr| match addr {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(_) => panic!("IPv4 test addresses"),
        };
        let mut missing = replies[0];
        missing.dport = missing.dport.wrapping_add(1);
        replies.push(missing);
        for (i, key) in replies.iter().enumerate() {
            let expected = table.lookup_out(key, Millis(1)).map(|c| c.index);
            assert_eq!(expected.is_some(), i < 10);
            let found = table.lookup_out_v4(
                key.protocol,
                (v4(key.raddr), key.rport),
                (v4(key.daddr), key.dport),
                Millis(1),
            );
            assert_eq!(found.map(|c| c.index), expected, "{key:?}");
            // The look-ahead's form: hashed (and prefetched) first.
            let hashed = table.prefetch_out_v4(
                key.protocol,
                (v4(key.raddr), key.rport),
                (v4(key.daddr), key.dport),
            );
            let found = table.lookup_out_hashed(&hashed, Millis(1));
            assert_eq!(found.map(|c| c.index), expected, "hashed {key:?}");
        }
    }

    #[test]
    fn fullnat_v4_reads_the_endpoints_of_all_ipv4_full_nat_connections_only() {
        let (table, dest) = fullnat_table(
            16,
            vec![
                IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)),
                "2001:db8:9::1".parse().expect("address"),
            ],
        );
        let v6_real: IpAddr = "2001:db8:1::2".parse().expect("address");
        for (cport, method, daddr) in [
            (1, ForwardMethod::Dr, None),
            (2, ForwardMethod::Nat, None),
            (3, ForwardMethod::FullNat, None),
            (4, ForwardMethod::FullNat, Some(v6_real)),
        ] {
            let mut new = new_conn(cport, dest, method);
            if let Some(daddr) = daddr {
                new.daddr = daddr;
            }
            let inserted = table.insert(&new, Millis(0)).expect("insert");
            // As inserted and as a lookup reads it back (the compact entry).
            let found = table.lookup_in(&new.key, Millis(0)).expect("found");
            for conn in [inserted, found] {
                let ends = conn.endpoints();
                let all_v4 = method == ForwardMethod::FullNat && daddr.is_none();
                match conn.fullnat_v4() {
                    Some(v4) => {
                        assert!(all_v4, "{method:?} {daddr:?}");
                        assert_eq!(SocketAddr::V4(v4.client), ends.client);
                        assert_eq!(SocketAddr::V4(v4.virtual_service), ends.virtual_service);
                        assert_eq!(SocketAddr::V4(v4.real_server), ends.real_server);
                        assert_eq!(Some(SocketAddr::V4(v4.local)), ends.local);
                        assert_eq!(v4.real_server.port(), 8080);
                        assert_eq!(*v4.local.ip(), Ipv4Addr::new(10, 9, 0, 1));
                    }
                    None => assert!(!all_v4, "{method:?} {daddr:?}"),
                }
            }
        }
    }

    #[test]
    fn lean_accessors_agree_with_info() {
        let (table, dest) = fullnat_table(16, vec![IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1))]);
        for (cport, method) in [
            (1, ForwardMethod::Dr),
            (2, ForwardMethod::Nat),
            (3, ForwardMethod::FullNat),
        ] {
            let conn = table
                .insert(&new_conn(cport, dest, method), Millis(0))
                .expect("insert");
            let info = conn.info();
            assert_eq!(conn.endpoints(), ConnEndpoints::from(&info));
            assert_eq!(conn.method(), info.method);
            assert_eq!(conn.dest(), info.dest);
            assert_eq!(
                conn.endpoints().local.is_some(),
                method == ForwardMethod::FullNat
            );
        }
    }

    #[test]
    fn expire_step_wraps_around_the_end_of_the_table() {
        let (table, dest) = table(8);
        for cport in 0..8 {
            table
                .insert(&new_conn(cport, dest, ForwardMethod::Dr), Millis(0))
                .expect("insert");
        }
        // Steps of 5 over 8 entries: 0..5, then 5..8 and 0..2 (wrapped):
        // all 8 are expired by the second step.
        let late = Millis(1_000_000);
        let first = table.expire_step(late, 5);
        let second = table.expire_step(late, 5);
        assert_eq!(first, 5);
        assert_eq!(second, 3);
        assert!(table.is_empty());
        assert_eq!(table.expire_step(late, 5), 0);
    }

    #[test]
    fn the_sweep_goes_round_the_slots_ever_used_not_the_capacity() {
        let (table, dest) = table(1024);
        let fill = |from: u16| {
            for cport in from..from + 3 {
                table
                    .insert(&new_conn(cport, dest, ForwardMethod::Dr), Millis(0))
                    .expect("insert");
            }
        };
        fill(0);
        // Three slots taken: the span is one step of the mark.
        let span = HIGH_WATER_STEP;
        assert_eq!(table.sweep_span(), span);
        let late = Millis(1_000_000);
        assert_eq!(
            table.expire_step(late, span - 1) + table.expire_step(late, 2),
            3
        );
        // The freed slots are reused, the span stays one step, and the
        // cursor (span + 1, i.e. slot 1) wraps within it: a step of a
        // span covers all three, where slots span + 1.. of the capacity
        // would hold nothing.
        fill(10);
        assert_eq!(table.sweep_span(), span);
        assert_eq!(table.expire_step(late, span), 3);
        assert!(table.is_empty());
        // Paced: a period owes a span of visits (a whole pass), not the
        // capacity; a twentieth of one, 3 visits (slots 1..4 from the
        // cursor, now at slot 1: the entries at slots 1 and 2).
        fill(20);
        assert_eq!(table.expire_due(late, usize::MAX), 0);
        let twentieth = Millis(late.0 + SWEEP_PERIOD_MS / 20);
        assert_eq!(table.expire_due(twentieth, usize::MAX), 2);
        assert_eq!(table.len(), 1);
    }
}
