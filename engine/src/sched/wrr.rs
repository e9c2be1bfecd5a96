//! wrr: weighted round robin (`ip_vs_wrr.c`).
//!
//! With di = gcd of the positive weights (1 if none), mw = max weight −
//! (di − 1) and the current weight cw starting at mw: walk the list from
//! the cursor and take the next non-overloaded dest with weight ≥ cw; at
//! the list end lower cw by di, and when cw ≤ 0 start again from mw. The
//! kernel's `last_pass`/`stop` rules end the search when every dest was
//! checked against weight ≥ 1. Weights 4, 3, 2 give A A B A B C A B C.
//!
//! Concurrency: cursor and cw are packed into one `AtomicU64` (low half:
//! 0 = list head or i + 1 = `dests[i]`; high half: cw as `i32`) and
//! advanced by compare-and-swap: picks serialise as under the kernel's
//! lock, with no lock.
//!
//! Across snapshots (`ip_vs_wrr_dest_changed`): the cursor goes back to
//! the list head, cw is kept if it still fits (cw > mw or cw = 0 → mw;
//! else with di > 1, cw = (cw / di)·di + 1). A rebuild with identical
//! dests and weights keeps cursor and cw unchanged.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};

use uvs_conf::SchedulerName;

use super::{overloaded, Flow, Scheduler};
use crate::dest::{Dest, DestId};
use crate::time::Millis;

/// The wrr scheduler.
#[derive(Debug)]
pub struct WrrScheduler {
    /// Cursor (low 32 bits) and current weight (high 32 bits).
    state: AtomicU64,
    /// Maximum weight minus (di − 1).
    max_weight: i64,
    /// Weight step: gcd of the positive weights.
    step: i64,
    /// (id, weight) of the dests this instance was built for.
    layout: Box<[(DestId, u32)]>,
}

fn pack(cursor: usize, current_weight: i64) -> u64 {
    let cursor = u32::try_from(cursor).unwrap_or(0);
    let weight = i32::try_from(current_weight).unwrap_or(0);
    (u64::from(weight as u32) << 32) | u64::from(cursor)
}

fn unpack(state: u64) -> (usize, i64) {
    (
        (state & 0xffff_ffff) as usize,
        i64::from((state >> 32) as u32 as i32),
    )
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl WrrScheduler {
    /// Build for `dests`, taking cw over from `prev` if given.
    pub fn new(dests: &[Dest], prev: Option<&WrrScheduler>) -> WrrScheduler {
        let weights = dests.iter().map(|d| u64::from(d.weight));
        let step = weights.clone().filter(|&w| w > 0).fold(0, gcd).max(1);
        let max = weights.max().unwrap_or(0);
        // Weights are at most 65535 in IPVS; clamp so the i32 cw fits.
        let step = i64::try_from(step).unwrap_or(1).min(i64::from(i32::MAX));
        let max = i64::try_from(max).unwrap_or(0).min(i64::from(i32::MAX));
        let max_weight = max - (step - 1);
        let layout: Box<[(DestId, u32)]> = dests.iter().map(|d| (d.id, d.weight)).collect();
        let state = match prev {
            Some(prev) if prev.layout == layout => prev.state.load(Ordering::Acquire),
            Some(prev) => {
                let (_, cw) = unpack(prev.state.load(Ordering::Acquire));
                let cw = if cw > max_weight || cw == 0 {
                    max_weight
                } else if step > 1 {
                    (cw / step) * step + 1
                } else {
                    cw
                };
                pack(0, cw)
            }
            None => pack(0, max_weight),
        };
        WrrScheduler {
            state: AtomicU64::new(state),
            max_weight,
            step,
            layout,
        }
    }

    /// The current required weight (cw).
    pub fn current_weight(&self) -> i64 {
        unpack(self.state.load(Ordering::Acquire)).1
    }

    /// One pick from state (cursor, cw): the new state and the choice.
    fn step_from(&self, dests: &[Dest], cursor: usize, cw: i64) -> (usize, i64, Option<usize>) {
        let count = dests.len();
        let mut pos = if cursor > count { 0 } else { cursor };
        let mut cw = cw;
        if self.max_weight <= 0 {
            return (pos, cw, None);
        }
        let last = pos;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        // The kernel's loop ends by itself; the bound guards against a
        // dest slice that does not match the one we were built from.
        let max_passes = (self.max_weight / self.step + 2) * 2 + 2;
        for _ in 0..max_passes {
            let mut p = pos + 1;
            while p <= count {
                if let Some(dest) = dests.get(p - 1) {
                    if !overloaded(dest) && i64::from(dest.weight) >= cw {
                        return (p, cw, Some(p - 1));
                    }
                }
                if stop == Some(p) {
                    return (p, cw, None);
                }
                p += 1;
            }
            pos = 0;
            cw -= self.step;
            if cw <= 0 {
                cw = self.max_weight;
                if last_pass || last == 0 {
                    return (0, cw, None);
                }
                restarted = true;
            }
            last_pass = cw <= self.step;
            if last_pass && restarted && last != 0 {
                stop = Some(last);
            }
        }
        (0, cw, None)
    }
}

impl Scheduler for WrrScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Wrr
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let (cursor, cw) = unpack(current);
            let (cursor, cw, pick) = self.step_from(dests, cursor, cw);
            let next = pack(cursor, cw);
            if next == current {
                return pick;
            }
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return pick,
                Err(actual) => current = actual,
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
