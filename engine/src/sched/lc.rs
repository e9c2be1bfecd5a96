//! lc: least connection (`ip_vs_lc.c`).
//!
//! The first destination, in list order, with the smallest overhead
//! `active·256 + inactive` among those with weight > 0 and no overload
//! flag. Weights are otherwise ignored. Stateless.

use std::any::Any;

use uvs_conf::SchedulerName;

use super::{overloaded, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

/// The lc scheduler.
#[derive(Debug, Default, Clone, Copy)]
pub struct LcScheduler;

impl Scheduler for LcScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Lc
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        let mut least: Option<(usize, u64)> = None;
        for (i, dest) in dests.iter().enumerate() {
            if overloaded(dest) || dest.weight == 0 {
                continue;
            }
            let overhead = dest.overhead();
            match least {
                Some((_, least_overhead)) if overhead >= least_overhead => {}
                _ => least = Some((i, overhead)),
            }
        }
        least.map(|(i, _)| i)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
