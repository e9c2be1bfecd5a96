//! ovf: weighted overflow (`ip_vs_ovf.c`).
//!
//! The highest-weight dest among those with weight > 0, no overload flag
//! and no more active connections than its weight; ties go to the earlier
//! dest. When the favourite fills up (active > weight), connections
//! overflow to the next weight down. Stateless.

use std::any::Any;

use uvs_conf::SchedulerName;

use super::{overloaded, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

/// The ovf scheduler.
#[derive(Debug, Default, Clone, Copy)]
pub struct OvfScheduler;

impl Scheduler for OvfScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Ovf
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        let mut highest: Option<(usize, u32)> = None;
        for (i, dest) in dests.iter().enumerate() {
            let weight = dest.weight;
            if overloaded(dest) || dest.counters.active() > weight || weight == 0 {
                continue;
            }
            match highest {
                Some((_, highest_weight)) if weight <= highest_weight => {}
                _ => highest = Some((i, weight)),
            }
        }
        highest.map(|(i, _)| i)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
