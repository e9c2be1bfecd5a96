//! sh: source hashing (`ip_vs_sh.c`).
//!
//! A 256-bucket table built in [`build`](super::build): walking the list
//! in order and cycling, each dest fills max(weight, 1) consecutive
//! buckets. A flow goes to bucket
//! `(offset + (sport + ntohl(fold(saddr))) · 2654435761) & 255` with
//! offset 0, the client port only with `sh-port` (flag-2) and only for
//! TCP/UDP/SCTP. A dest with weight 0 or the overload flag is unusable:
//! without `sh-fallback` (flag-1) there is then no choice; with it the
//! kernel rehashes with offset = (i + first bucket) mod 256 for i =
//! 0..255 (so probing starts at twice the first bucket), stopping at an
//! empty bucket. Stateless after build.

use std::any::Any;

use uvs_conf::{SchedFlags, SchedulerName};

use super::hash::hash_index;
use super::{addr_fold, hashed_source_port, overloaded, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

/// Buckets in the sh table.
pub const SH_TABLE_SIZE: usize = 256;

const MASK: u32 = SH_TABLE_SIZE as u32 - 1;
const NO_DEST: u32 = u32::MAX;

/// The sh scheduler.
#[derive(Debug)]
pub struct ShScheduler {
    buckets: Box<[u32; SH_TABLE_SIZE]>,
    flags: SchedFlags,
}

impl ShScheduler {
    /// Build the bucket table for `dests`.
    pub fn new(dests: &[Dest], flags: SchedFlags) -> ShScheduler {
        let mut buckets = Box::new([NO_DEST; SH_TABLE_SIZE]);
        if !dests.is_empty() {
            let mut current = 0usize;
            let mut filled = 0u32;
            for bucket in buckets.iter_mut() {
                *bucket = u32::try_from(current).unwrap_or(NO_DEST);
                filled += 1;
                let weight = dests.get(current).map_or(0, |d| d.weight);
                if filled >= weight {
                    current = (current + 1) % dests.len();
                    filled = 0;
                }
            }
        }
        ShScheduler { buckets, flags }
    }

    /// The dest index in each bucket (`None` = empty).
    pub fn bucket_dests(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.buckets
            .iter()
            .map(|&b| (b != NO_DEST).then_some(b as usize))
    }

    fn bucket(&self, index: u32) -> Option<usize> {
        let b = *self.buckets.get(index as usize)?;
        (b != NO_DEST).then_some(b as usize)
    }
}

fn usable(dest: &Dest) -> bool {
    dest.weight > 0 && !overloaded(dest)
}

impl Scheduler for ShScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Sh
    }

    fn schedule(&self, dests: &[Dest], flow: &Flow, _now: Millis) -> Option<usize> {
        let port = if self.flags.port() {
            hashed_source_port(flow)
        } else {
            0
        };
        let key = u32::from(port).wrapping_add(addr_fold(&flow.saddr));
        let first = hash_index(key, MASK);
        let pick = self.bucket(first)?;
        if usable(dests.get(pick)?) {
            return Some(pick);
        }
        if !self.flags.fallback() {
            return None;
        }
        for offset in 0..SH_TABLE_SIZE as u32 {
            let rehash_offset = (offset + first) % SH_TABLE_SIZE as u32;
            let index =
                rehash_offset.wrapping_add(key.wrapping_mul(super::hash::GOLDEN_MULTIPLIER)) & MASK;
            let pick = self.bucket(index)?;
            if usable(dests.get(pick)?) {
                return Some(pick);
            }
        }
        None
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
