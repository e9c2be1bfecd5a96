//! dh: destination hashing (`ip_vs_dh.c`).
//!
//! A 256-bucket table built in [`build`](super::build): bucket i holds
//! the (i mod n)-th dest in list order, one bucket each, weights ignored.
//! A flow goes to bucket `(ntohl(fold(daddr)) · 2654435761) & 255`; if
//! that dest is deleted, has weight 0 or is overloaded there is no
//! choice (no fallback). Stateless after build.

use std::any::Any;

use uvs_conf::SchedulerName;

use super::hash::hash_index;
use super::{addr_fold, in_service, overloaded, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

/// Buckets in the dh table.
pub const DH_TABLE_SIZE: usize = 256;

/// An empty bucket.
const NO_DEST: u32 = u32::MAX;

/// The dh scheduler.
#[derive(Debug)]
pub struct DhScheduler {
    buckets: Box<[u32; DH_TABLE_SIZE]>,
}

impl DhScheduler {
    /// Build the bucket table for `dests`.
    pub fn new(dests: &[Dest]) -> DhScheduler {
        let mut buckets = Box::new([NO_DEST; DH_TABLE_SIZE]);
        if !dests.is_empty() {
            for (i, bucket) in buckets.iter_mut().enumerate() {
                *bucket = u32::try_from(i % dests.len()).unwrap_or(NO_DEST);
            }
        }
        DhScheduler { buckets }
    }

    /// The dest index in each bucket (`None` = empty).
    pub fn bucket_dests(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.buckets
            .iter()
            .map(|&b| (b != NO_DEST).then_some(b as usize))
    }
}

impl Scheduler for DhScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Dh
    }

    fn schedule(&self, dests: &[Dest], flow: &Flow, _now: Millis) -> Option<usize> {
        let index = hash_index(addr_fold(&flow.daddr), DH_TABLE_SIZE as u32 - 1) as usize;
        let pick = *self.buckets.get(index)? as usize;
        let dest = dests.get(pick)?;
        (in_service(dest) && dest.weight > 0 && !overloaded(dest)).then_some(pick)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
