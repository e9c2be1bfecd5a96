//! wlc: weighted least connection (`ip_vs_wlc.c`), IPVS's default.
//!
//! Minimum overhead/weight, compared without division as
//! `O(least)·w(dest) > O(dest)·w(least)` (the kernel's 64-bit
//! cross-multiplication; widened further here). The first available dest
//! starts; later ones replace it only when strictly less loaded, so ties
//! go to the earlier dest in list order. Stateless.

use std::any::Any;

use uvs_conf::SchedulerName;

use super::{weighted_least_connection, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

/// The wlc scheduler.
#[derive(Debug, Default, Clone, Copy)]
pub struct WlcScheduler;

impl Scheduler for WlcScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Wlc
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        weighted_least_connection(dests)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
