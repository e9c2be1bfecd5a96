//! The cache table shared by lblc and lblcr: destination IP → entry, with
//! the kernel's garbage collection rules (`ip_vs_lblc.c`,
//! `ip_vs_lblcr.c`).
//!
//! Layout: 1024 buckets chosen by `hash_32(ntohl(fold(daddr)), 10)`, each
//! a `Mutex<Vec<entry>>` shard. A schedule call locks only its bucket, for
//! a scan of a few entries; there is no global lock on the packet path.
//! A bucket holds at most [`BUCKET_CAPACITY`] entries (the kernel's
//! lists are unbounded between collections): adding to a full bucket
//! replaces its least recently used entry, so memory stays bounded.
//!
//! Collection: the kernel runs a timer every 60 s. Here the same ticks
//! run lazily at the start of a schedule call (or from [`gc`]) once due,
//! each tick evaluated at its own due time: every 30th tick a full check
//! drops entries unused for the expiration time (24 h by default);
//! otherwise, when entries exceed 16384, entries idle for 6 min are
//! dropped bucket by bucket from a rover until (n − 16384)·4/3 (at most
//! 8192) are gone. Only one thread collects at a time (`try_lock`; the
//! others skip). After a long idle period at most the last 30 ticks run.
//!
//! [`gc`]: LocalityTable::gc

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::addr_fold;
use super::hash::hash_32;
use crate::time::Millis;

/// log2 of the bucket count.
const TABLE_BITS: u32 = 10;
/// Buckets in the table.
pub const TABLE_BUCKETS: usize = 1 << TABLE_BITS;
/// Entries above which a collection tick trims idle entries.
pub const MAX_ENTRIES: usize = TABLE_BUCKETS * 16;
/// Entries one bucket can hold.
pub const BUCKET_CAPACITY: usize = 64;
/// Milliseconds between collection ticks.
pub const CHECK_EXPIRE_INTERVAL_MS: u64 = 60 * 1000;
/// Idle time after which a trim may drop an entry.
pub const ENTRY_TIMEOUT_MS: u64 = 6 * 60 * 1000;
/// Default `lblc_expiration` / `lblcr_expiration`: 24 hours.
pub const DEFAULT_EXPIRATION_MS: u64 = 24 * 60 * 60 * 1000;
/// Every this many ticks, a full expiration check.
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// `next_tick` before the first schedule call.
const NOT_STARTED: u64 = u64::MAX;

/// What the table needs to know of an entry.
pub(crate) trait CacheEntry {
    /// The destination address the entry is for.
    fn addr(&self) -> IpAddr;
    /// When it was last looked up.
    fn last_use(&self) -> Millis;
}

#[derive(Debug)]
struct Collector {
    rover: usize,
    counter: u32,
}

/// A bucketed cache with lazy, time-driven collection.
#[derive(Debug)]
pub(crate) struct LocalityTable<E> {
    buckets: Box<[Mutex<Vec<E>>; TABLE_BUCKETS]>,
    entries: AtomicUsize,
    next_tick: AtomicU64,
    collector: Mutex<Collector>,
    expiration_ms: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The bucket of a destination address.
pub(crate) fn bucket_index(addr: &IpAddr) -> usize {
    hash_32(addr_fold(addr), TABLE_BITS) as usize
}

impl<E: CacheEntry> LocalityTable<E> {
    /// An empty table whose entries expire after `expiration_ms` unused.
    pub(crate) fn new(expiration_ms: u64) -> LocalityTable<E> {
        LocalityTable {
            buckets: Box::new(std::array::from_fn(|_| Mutex::new(Vec::new()))),
            entries: AtomicUsize::new(0),
            next_tick: AtomicU64::new(NOT_STARTED),
            collector: Mutex::new(Collector {
                rover: 0,
                counter: 1,
            }),
            expiration_ms,
        }
    }

    /// Entries in the table.
    pub(crate) fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Run `f` on the bucket of `addr`, locked.
    pub(crate) fn with_bucket<R>(
        &self,
        addr: &IpAddr,
        f: impl FnOnce(&mut Bucket<'_, E>) -> R,
    ) -> R {
        // Masked, so always in range.
        let mut entries = lock(&self.buckets[bucket_index(addr) & (TABLE_BUCKETS - 1)]);
        let mut bucket = Bucket {
            entries: &mut entries,
            count: &self.entries,
        };
        f(&mut bucket)
    }

    /// Run the collection ticks due at `now`.
    pub(crate) fn gc(&self, now: Millis) {
        let due = self.next_tick.load(Ordering::Acquire);
        if due == NOT_STARTED {
            let _ = self.next_tick.compare_exchange(
                NOT_STARTED,
                now.0.saturating_add(CHECK_EXPIRE_INTERVAL_MS),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            return;
        }
        if now.0 < due {
            return;
        }
        let Ok(mut collector) = self.collector.try_lock() else {
            return;
        };
        let mut due = self.next_tick.load(Ordering::Acquire);
        let missed = now.0.saturating_sub(due) / CHECK_EXPIRE_INTERVAL_MS;
        if missed > u64::from(COUNT_FOR_FULL_EXPIRATION) {
            let skipped = missed - u64::from(COUNT_FOR_FULL_EXPIRATION);
            due += skipped * CHECK_EXPIRE_INTERVAL_MS;
            collector.counter = collector.counter.wrapping_add(
                u32::try_from(skipped % u64::from(COUNT_FOR_FULL_EXPIRATION)).unwrap_or(0),
            );
        }
        while due <= now.0 {
            self.tick(&mut collector, Millis(due));
            due += CHECK_EXPIRE_INTERVAL_MS;
        }
        self.next_tick.store(due, Ordering::Release);
    }

    /// One run of the kernel's periodic timer at time `at`.
    fn tick(&self, collector: &mut Collector, at: Millis) {
        if collector.counter.checked_rem(COUNT_FOR_FULL_EXPIRATION) == Some(0) {
            let expiration = self.expiration_ms;
            let mut j = collector.rover;
            for _ in 0..TABLE_BUCKETS {
                j = (j + 1) & (TABLE_BUCKETS - 1);
                self.drop_idle(j, at, expiration);
            }
            collector.rover = j;
            collector.counter = 1;
            return;
        }
        let entries = self.len();
        if entries <= MAX_ENTRIES {
            collector.counter += 1;
            return;
        }
        let mut goal = ((entries - MAX_ENTRIES) * 4 / 3).min(MAX_ENTRIES / 2);
        let mut j = collector.rover;
        for _ in 0..TABLE_BUCKETS {
            j = (j + 1) & (TABLE_BUCKETS - 1);
            let dropped = self.drop_idle(j, at, ENTRY_TIMEOUT_MS);
            goal = goal.saturating_sub(dropped);
            if goal == 0 {
                break;
            }
        }
        collector.rover = j;
    }

    /// Drop the entries of bucket `j` unused for `idle_ms` at `at`.
    fn drop_idle(&self, j: usize, at: Millis, idle_ms: u64) -> usize {
        let Some(bucket) = self.buckets.get(j) else {
            return 0;
        };
        let mut entries = lock(bucket);
        let before = entries.len();
        entries.retain(|e| at.0 < e.last_use().0.saturating_add(idle_ms));
        let dropped = before - entries.len();
        self.entries.fetch_sub(dropped, Ordering::Relaxed);
        dropped
    }
}

/// One locked bucket.
pub(crate) struct Bucket<'a, E> {
    entries: &'a mut Vec<E>,
    count: &'a AtomicUsize,
}

impl<E: CacheEntry> Bucket<'_, E> {
    /// The entry for `addr`, if cached.
    pub(crate) fn find(&mut self, addr: &IpAddr) -> Option<&mut E> {
        self.entries.iter_mut().find(|e| e.addr() == *addr)
    }

    /// Add an entry (its address must not be cached yet); a full bucket
    /// gives up its least recently used entry.
    pub(crate) fn insert(&mut self, entry: E) {
        if self.entries.len() >= BUCKET_CAPACITY {
            if let Some(oldest) = self.entries.iter_mut().min_by_key(|e| e.last_use()) {
                *oldest = entry;
                return;
            }
        }
        self.entries.push(entry);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}
