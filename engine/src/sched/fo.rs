//! fo: weighted failover (`ip_vs_fo.c`).
//!
//! The non-overloaded dest with the highest weight (> 0); ties go to the
//! earlier dest in list order. Stateless.

use std::any::Any;

use uvs_conf::SchedulerName;

use super::{overloaded, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

/// The fo scheduler.
#[derive(Debug, Default, Clone, Copy)]
pub struct FoScheduler;

impl Scheduler for FoScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Fo
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        let mut highest: Option<usize> = None;
        let mut highest_weight = 0u32;
        for (i, dest) in dests.iter().enumerate() {
            if !overloaded(dest) && dest.weight > highest_weight {
                highest = Some(i);
                highest_weight = dest.weight;
            }
        }
        highest
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
