//! rr: round robin (`ip_vs_rr.c`).
//!
//! The cursor remembers the last dest picked; the next pick is the first
//! usable dest (weight > 0, no overload flag) after it, wrapping round the
//! list and ending with the cursor's own dest. The cursor starts at the
//! list head.
//!
//! Concurrency: the cursor is one `AtomicUsize` (0 = list head, i + 1 =
//! `dests[i]`) advanced by compare-and-swap, so concurrent picks are
//! serialised exactly as under the kernel's spin lock, without a lock.
//!
//! Across snapshots the cursor follows its dest by [`DestId`]; if that
//! dest was deleted it moves to the dest before it in the old list (as
//! `ip_vs_rr_del_dest` does), or to the head if none remains.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};

use uvs_conf::SchedulerName;

use super::{position_of, Flow, Scheduler};
use crate::dest::{Dest, DestId};
use crate::time::Millis;

/// The rr scheduler.
#[derive(Debug)]
pub struct RrScheduler {
    /// 0 = list head, i + 1 = the last pick `dests[i]`.
    cursor: AtomicUsize,
    /// The dests this instance was built for, in list order.
    ids: Box<[DestId]>,
}

impl RrScheduler {
    /// Build for `dests`, taking the cursor over from `prev` if given.
    pub fn new(dests: &[Dest], prev: Option<&RrScheduler>) -> RrScheduler {
        let ids: Box<[DestId]> = dests.iter().map(|d| d.id).collect();
        let cursor = prev.map_or(0, |prev| {
            let old = prev.cursor.load(Ordering::Acquire);
            // The old cursor's dest, else its nearest predecessor still present.
            (1..=old.min(prev.ids.len()))
                .rev()
                .find_map(|pos| {
                    let id = prev.ids.get(pos - 1)?;
                    position_of(dests, *id).map(|i| i + 1)
                })
                .unwrap_or(0)
        });
        RrScheduler {
            cursor: AtomicUsize::new(cursor),
            ids,
        }
    }

    /// The dest index the next search starts after (`None` = list head).
    pub fn cursor(&self) -> Option<usize> {
        self.cursor.load(Ordering::Acquire).checked_sub(1)
    }
}

impl Scheduler for RrScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Rr
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        let count = dests.len();
        let mut current = self.cursor.load(Ordering::Acquire);
        loop {
            let start = if current > count { 0 } else { current };
            // After the cursor to the tail, then from the head up to and
            // including the cursor's own dest.
            let pick = (start..count)
                .chain(0..start)
                .find(|&i| dests.get(i).is_some_and(Dest::is_available))?;
            match self.cursor.compare_exchange_weak(
                current,
                pick + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(pick),
                Err(actual) => current = actual,
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
