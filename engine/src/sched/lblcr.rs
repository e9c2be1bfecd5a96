//! lblcr: locality-based least connection with replication
//! (`ip_vs_lblcr.c`).
//!
//! The cache maps a packet's destination IP to a *set* of dests (newest
//! member first). A lookup refreshes the entry, takes the set's weighted
//! least-loaded usable member (no overload flag, weight > 0, still in the
//! service), and, when the set has more than one member and has not
//! changed for the expiration time (24 h), drops the set's weighted
//! most-loaded member. If no member was usable or the chosen one is
//! overloaded in lblc's sense (active > weight while some dest has
//! active·2 < weight), the weighted-least-connection choice over all
//! dests is taken and added to the set. A new IP gets a one-member set.
//! Adding or dropping a member stamps the set's modification time.
//!
//! Cache, concurrency and collection are as for [`lblc`](super::lblc):
//! 1024 `Mutex` shards, lazy 60 s collection ticks (or [`LblcrScheduler::gc`]),
//! an `Arc` shared with the next snapshot. Members are [`DestId`]s; a
//! member whose dest left the service is never chosen, never counts as the
//! most loaded, and is pruned when a member is added (the kernel keeps it
//! referenced until the entry expires).

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;

use uvs_conf::SchedulerName;

use super::lblc::locality_overloaded;
use super::locality::{CacheEntry, LocalityTable, DEFAULT_EXPIRATION_MS};
use super::{in_service, overloaded, position_of, weighted_least_connection, Flow, Scheduler};
use crate::dest::{Dest, DestId};
use crate::time::Millis;

#[derive(Debug)]
struct LblcrEntry {
    addr: IpAddr,
    /// Members, newest first.
    set: Vec<DestId>,
    set_modified: Millis,
    last_use: Millis,
}

impl CacheEntry for LblcrEntry {
    fn addr(&self) -> IpAddr {
        self.addr
    }
    fn last_use(&self) -> Millis {
        self.last_use
    }
}

/// The lblcr scheduler.
#[derive(Debug)]
pub struct LblcrScheduler {
    cache: Arc<LocalityTable<LblcrEntry>>,
    expiration_ms: u64,
}

/// The set's weighted least-loaded member (`ip_vs_dest_set_min`).
fn set_min(set: &[DestId], dests: &[Dest]) -> Option<usize> {
    let mut members = set.iter().filter_map(|id| position_of(dests, *id));
    let mut least = None;
    for i in members.by_ref() {
        let d = dests.get(i)?;
        if !overloaded(d) && d.weight > 0 && in_service(d) {
            least = Some(i);
            break;
        }
    }
    let mut least = least?;
    let mut least_overhead = u128::from(dests.get(least)?.overhead());
    for i in members {
        let d = dests.get(i)?;
        if overloaded(d) {
            continue;
        }
        let overhead = u128::from(d.overhead());
        let least_weight = u128::from(dests.get(least)?.weight);
        if least_overhead * u128::from(d.weight) > overhead * least_weight && in_service(d) {
            least = i;
            least_overhead = overhead;
        }
    }
    Some(least)
}

/// The set's weighted most-loaded member (`ip_vs_dest_set_max`).
fn set_max(set: &[DestId], dests: &[Dest]) -> Option<DestId> {
    let mut members = set.iter().filter_map(|id| position_of(dests, *id));
    let mut most = None;
    for i in members.by_ref() {
        if dests.get(i)?.weight > 0 {
            most = Some(i);
            break;
        }
    }
    let mut most = most?;
    let mut most_overhead = u128::from(dests.get(most)?.overhead());
    for i in members {
        let d = dests.get(i)?;
        let overhead = u128::from(d.overhead());
        let most_weight = u128::from(dests.get(most)?.weight);
        if most_overhead * u128::from(d.weight) < overhead * most_weight && d.weight > 0 {
            most = i;
            most_overhead = overhead;
        }
    }
    Some(dests.get(most)?.id)
}

impl LblcrScheduler {
    /// A scheduler with the cache of `prev`, or an empty one with the
    /// default 24 h expiration.
    pub fn new(prev: Option<&LblcrScheduler>) -> LblcrScheduler {
        match prev {
            Some(prev) => LblcrScheduler {
                cache: Arc::clone(&prev.cache),
                expiration_ms: prev.expiration_ms,
            },
            None => LblcrScheduler::with_expiration(DEFAULT_EXPIRATION_MS),
        }
    }

    /// An empty cache with `lblcr_expiration` = `expiration_ms`: entries
    /// unused that long expire, sets unchanged that long shrink.
    pub fn with_expiration(expiration_ms: u64) -> LblcrScheduler {
        LblcrScheduler {
            cache: Arc::new(LocalityTable::new(expiration_ms)),
            expiration_ms,
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

    /// The set cached for `daddr` (newest member first), if any.
    pub fn cached_set(&self, daddr: &IpAddr) -> Option<Vec<DestId>> {
        self.cache
            .with_bucket(daddr, |bucket| bucket.find(daddr).map(|e| e.set.clone()))
    }
}

impl Scheduler for LblcrScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Lblcr
    }

    fn schedule(&self, dests: &[Dest], flow: &Flow, now: Millis) -> Option<usize> {
        self.cache.gc(now);
        let daddr = flow.daddr;
        let expiration_ms = self.expiration_ms;
        self.cache.with_bucket(&daddr, |bucket| {
            if let Some(entry) = bucket.find(&daddr) {
                entry.last_use = now;
                let chosen = set_min(&entry.set, dests);
                if entry.set.len() > 1 && now.0 > entry.set_modified.0.saturating_add(expiration_ms)
                {
                    if let Some(most) = set_max(&entry.set, dests) {
                        if let Some(at) = entry.set.iter().position(|id| *id == most) {
                            entry.set.remove(at);
                            entry.set_modified = now;
                        }
                    }
                }
                if let Some(i) = chosen {
                    if !locality_overloaded(dests.get(i)?, dests) {
                        return Some(i);
                    }
                }
                let pick = weighted_least_connection(dests)?;
                let id = dests.get(pick)?.id;
                if !entry.set.contains(&id) {
                    entry
                        .set
                        .retain(|member| position_of(dests, *member).is_some());
                    entry.set.insert(0, id);
                    entry.set_modified = now;
                }
                return Some(pick);
            }
            let pick = weighted_least_connection(dests)?;
            bucket.insert(LblcrEntry {
                addr: daddr,
                set: vec![dests.get(pick)?.id],
                set_modified: now,
                last_use: now,
            });
            Some(pick)
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
