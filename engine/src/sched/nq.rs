//! nq: never queue (`ip_vs_nq.c`).
//!
//! The first usable dest (weight > 0, no overload flag) with no active
//! connection wins at once; otherwise the sed choice among the usable
//! dests: minimum `(active + 1) / weight`, ties to the earlier dest.
//! Stateless.

use std::any::Any;

use uvs_conf::SchedulerName;

use super::sed::expected_overhead;
use super::{overloaded, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

/// The nq scheduler.
#[derive(Debug, Default, Clone, Copy)]
pub struct NqScheduler;

impl Scheduler for NqScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Nq
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        let mut least: Option<(usize, u128, u128)> = None;
        for (i, dest) in dests.iter().enumerate() {
            if overloaded(dest) || dest.weight == 0 {
                continue;
            }
            if dest.counters.active() == 0 {
                return Some(i);
            }
            let overhead = expected_overhead(dest);
            let weight = u128::from(dest.weight);
            match least {
                Some((_, least_overhead, least_weight))
                    if least_overhead * weight <= overhead * least_weight => {}
                _ => least = Some((i, overhead, weight)),
            }
        }
        least.map(|(i, _, _)| i)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
