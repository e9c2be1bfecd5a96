//! lblc: locality-based least connection (`ip_vs_lblc.c`).
//!
//! A cache maps a packet's destination IP to the dest last chosen for it.
//! A cached dest is kept while it is still in the service, has weight > 0
//! and is not "overloaded" in lblc's sense: active > weight while some
//! dest of the service has active·2 < weight (the overload *flag* is not
//! looked at here, as in the kernel). Otherwise, or with no entry, the
//! weighted-least-connection choice over all dests is taken and cached
//! (replacing the old entry). Every lookup refreshes the entry's last-use
//! time.
//!
//! Cache and collection are described in `locality.rs`: 1024 buckets of
//! `Mutex<Vec<_>>` shards (each lock held for one short bucket scan plus
//! an O(dests) choice), at most 64 entries a bucket; collection runs
//! lazily from [`Scheduler::schedule`] when a 60 s tick is due, or from
//! [`LblcScheduler::gc`] if the caller prefers to drive it. The cache
//! lives in an `Arc` that a rebuilt snapshot shares, so it survives
//! real-server changes as in IPVS; entries name dests by [`DestId`], and
//! an entry whose dest left the service counts as unavailable.

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;

use uvs_conf::SchedulerName;

use super::locality::{CacheEntry, LocalityTable, DEFAULT_EXPIRATION_MS};
use super::{in_service, position_of, weighted_least_connection, Flow, Scheduler};
use crate::dest::{Dest, DestId};
use crate::time::Millis;

#[derive(Debug)]
struct LblcEntry {
    addr: IpAddr,
    dest: DestId,
    last_use: Millis,
}

impl CacheEntry for LblcEntry {
    fn addr(&self) -> IpAddr {
        self.addr
    }
    fn last_use(&self) -> Millis {
        self.last_use
    }
}

/// The lblc scheduler.
#[derive(Debug)]
pub struct LblcScheduler {
    cache: Arc<LocalityTable<LblcEntry>>,
}

/// lblc/lblcr's "overloaded": more active connections than weight while
/// some dest of the service is under half its weight.
pub(crate) fn locality_overloaded(dest: &Dest, dests: &[Dest]) -> bool {
    u64::from(dest.counters.active()) > u64::from(dest.weight)
        && dests
            .iter()
            .any(|d| u64::from(d.counters.active()) * 2 < u64::from(d.weight))
}

impl LblcScheduler {
    /// A scheduler with the cache of `prev`, or an empty one with the
    /// default 24 h expiration.
    pub fn new(prev: Option<&LblcScheduler>) -> LblcScheduler {
        match prev {
            Some(prev) => LblcScheduler {
                cache: Arc::clone(&prev.cache),
            },
            None => LblcScheduler::with_expiration(DEFAULT_EXPIRATION_MS),
        }
    }

    /// An empty cache whose entries expire after `expiration_ms` unused
    /// (the `lblc_expiration` sysctl).
    pub fn with_expiration(expiration_ms: u64) -> LblcScheduler {
        LblcScheduler {
            cache: Arc::new(LocalityTable::new(expiration_ms)),
        }
    }

    /// Run the collection ticks due at `now` (schedule does this too).
    pub fn gc(&self, now: Millis) {
        self.cache.gc(now);
    }

    /// Entries in the cache.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// The dest cached for `daddr`, if any.
    pub fn cached(&self, daddr: &IpAddr) -> Option<DestId> {
        self.cache
            .with_bucket(daddr, |bucket| bucket.find(daddr).map(|e| e.dest))
    }
}

impl Scheduler for LblcScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Lblc
    }

    fn schedule(&self, dests: &[Dest], flow: &Flow, now: Millis) -> Option<usize> {
        self.cache.gc(now);
        let daddr = flow.daddr;
        self.cache.with_bucket(&daddr, |bucket| {
            if let Some(entry) = bucket.find(&daddr) {
                entry.last_use = now;
                if let Some(i) = position_of(dests, entry.dest) {
                    let dest = dests.get(i)?;
                    if in_service(dest) && dest.weight > 0 && !locality_overloaded(dest, dests) {
                        return Some(i);
                    }
                }
            }
            let pick = weighted_least_connection(dests)?;
            let id = dests.get(pick)?.id;
            match bucket.find(&daddr) {
                Some(entry) => {
                    if entry.dest != id {
                        *entry = LblcEntry {
                            addr: daddr,
                            dest: id,
                            last_use: now,
                        };
                    }
                }
                None => bucket.insert(LblcEntry {
                    addr: daddr,
                    dest: id,
                    last_use: now,
                }),
            }
            Some(pick)
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
