//! Schedulers: which real server gets a new connection.
//!
//! One file per ipvsadm scheduler name, each behind the small
//! [`Scheduler`] trait, each choosing exactly as the kernel's
//! `ip_vs_<name>.c` does: same destination order (the slice is in IPVS
//! list order, newest real server first), same tie breaks.
//!
//! Costly work (hash tables for sh/dh/mh, gcd and max weight for wrr) is
//! done in [`build`], when a configuration snapshot is made, never per
//! packet. [`Scheduler::schedule`] is called on the new-connection path
//! only; it takes no lock and allocates nothing.

use std::fmt::Debug;
use std::net::IpAddr;

use uvs_conf::SchedulerName;

use crate::dest::Dest;
use crate::time::Millis;

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// IP protocol number.
    pub protocol: u8,
    /// Client address.
    pub saddr: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual address (the packet's destination).
    pub daddr: IpAddr,
    /// Virtual port.
    pub dport: u16,
}

/// A scheduler instance bound to one service in one snapshot.
pub trait Scheduler: Send + Sync + Debug {
    /// The ipvsadm name.
    fn name(&self) -> SchedulerName;

    /// Pick a destination for `flow`: an index into `dests` (the same
    /// slice, in the same order, that the instance was built from), or
    /// `None` when no destination is usable.
    fn schedule(&self, dests: &[Dest], flow: &Flow, now: Millis) -> Option<usize>;
}

/// Why a scheduler could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// mh supports at most 4093 destinations (EINVAL in IPVS).
    #[error("the mh scheduler supports at most {max} real servers, the service has {count}")]
    TooManyDests {
        /// Destinations given.
        count: usize,
        /// The limit.
        max: usize,
    },
}
