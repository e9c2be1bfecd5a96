//! sed: shortest expected delay (`ip_vs_sed.c`).
//!
//! Minimum `(active + 1) / weight` (inactive connections do not count),
//! compared as `(active(l)+1)·w(d) > (active(d)+1)·w(l)`. The first
//! available dest starts; later non-overloaded ones replace it only when
//! strictly better, so ties go to the earlier dest. Stateless.

use std::any::Any;

use uvs_conf::SchedulerName;

use super::{overloaded, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

/// The sed scheduler.
#[derive(Debug, Default, Clone, Copy)]
pub struct SedScheduler;

/// sed's and nq's expected overhead: active connections plus the new one.
pub(crate) fn expected_overhead(dest: &Dest) -> u128 {
    u128::from(dest.counters.active()) + 1
}

impl Scheduler for SedScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Sed
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        let first = dests.iter().position(Dest::is_available)?;
        let mut least = first;
        let mut least_overhead = expected_overhead(dests.get(first)?);
        let mut least_weight = u128::from(dests.get(first)?.weight);
        for (i, dest) in dests.iter().enumerate().skip(first + 1) {
            if overloaded(dest) {
                continue;
            }
            let overhead = expected_overhead(dest);
            if least_overhead * u128::from(dest.weight) > overhead * least_weight {
                least = i;
                least_overhead = overhead;
                least_weight = u128::from(dest.weight);
            }
        }
        Some(least)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
