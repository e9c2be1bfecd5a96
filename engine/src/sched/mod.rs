//! Schedulers: which real server gets a new connection.
//!
//! One file per ipvsadm scheduler name, each behind the small
//! [`Scheduler`] trait, each choosing exactly as the kernel's
//! `ip_vs_<name>.c` does: same destination order (the slice is in IPVS
//! list order, newest real server first), same tie breaks, same integer
//! maths (widened so that nothing overflows where the kernel's `int`
//! would).
//!
//! Costly work (hash tables for sh/dh/mh, gcd and max weight for wrr) is
//! done in [`build`], when a configuration snapshot is made, never per
//! packet. [`Scheduler::schedule`] is called on the new-connection path
//! only; it allocates nothing (lblc/lblcr excepted when they add a cache
//! entry) and takes no lock except the lblc/lblcr cache shards (see
//! [`lblc`]).
//!
//! State that IPVS keeps across real-server changes (rr and wrr cursors,
//! mh's last non-zero weights, the lblc/lblcr caches) is carried from the
//! previous snapshot's instance through `build(.., prev)`.

use std::any::Any;
use std::fmt::Debug;
use std::net::IpAddr;

use uvs_conf::{SchedFlags, SchedulerName};

use crate::dest::Dest;
use crate::time::Millis;

pub mod dh;
pub mod fo;
pub mod hash;
pub mod lblc;
pub mod lblcr;
pub mod lc;
mod locality;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

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
pub trait Scheduler: Send + Sync + Debug + Any {
    /// The ipvsadm name.
    fn name(&self) -> SchedulerName;

    /// Pick a destination for `flow`: an index into `dests` (the same
    /// slice, in the same order, that the instance was built from), or
    /// `None` when no destination is usable.
    fn schedule(&self, dests: &[Dest], flow: &Flow, now: Millis) -> Option<usize>;

    /// The instance as [`Any`], so that [`build`] can take state over from
    /// the previous snapshot's instance of the same scheduler.
    fn as_any(&self) -> &dyn Any;
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

/// Build the scheduler `name` for a service whose destinations are `dests`
/// (IPVS list order: newest first). `prev` is the instance of the previous
/// snapshot of the same service, if any, so that schedulers with state
/// that IPVS keeps across real-server changes (lblc/lblcr caches, rr and
/// wrr cursors, mh's last weights) can carry it over; an instance of
/// another scheduler is ignored.
///
/// Fails only for mh with more than 4093 destinations.
pub fn build(
    name: SchedulerName,
    flags: SchedFlags,
    dests: &[Dest],
    prev: Option<&dyn Scheduler>,
) -> Result<Box<dyn Scheduler>, SchedError> {
    fn prev_as<T: 'static>(prev: Option<&dyn Scheduler>) -> Option<&T> {
        prev.and_then(|p| p.as_any().downcast_ref::<T>())
    }
    Ok(match name {
        SchedulerName::Rr => Box::new(rr::RrScheduler::new(dests, prev_as(prev))),
        SchedulerName::Wrr => Box::new(wrr::WrrScheduler::new(dests, prev_as(prev))),
        SchedulerName::Lc => Box::new(lc::LcScheduler),
        SchedulerName::Wlc => Box::new(wlc::WlcScheduler),
        SchedulerName::Lblc => Box::new(lblc::LblcScheduler::new(prev_as(prev))),
        SchedulerName::Lblcr => Box::new(lblcr::LblcrScheduler::new(prev_as(prev))),
        SchedulerName::Dh => Box::new(dh::DhScheduler::new(dests)),
        SchedulerName::Sh => Box::new(sh::ShScheduler::new(dests, flags)),
        SchedulerName::Sed => Box::new(sed::SedScheduler),
        SchedulerName::Nq => Box::new(nq::NqScheduler),
        SchedulerName::Fo => Box::new(fo::FoScheduler),
        SchedulerName::Ovf => Box::new(ovf::OvfScheduler),
        SchedulerName::Mh => Box::new(mh::MhScheduler::new(dests, flags, prev_as(prev))?),
        SchedulerName::Twos => Box::new(twos::TwosScheduler::new()),
    })
}

/// IPVS's address fold: an IPv4 address in host order, or the XOR of an
/// IPv6 address's four 32-bit words (`ntohl(ip6[0]^ip6[1]^ip6[2]^ip6[3])`).
pub fn addr_fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let mut fold = 0u32;
            for word in o.chunks_exact(4) {
                fold ^= u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            }
            fold
        }
    }
}

/// The client port as sh/mh read it with their port flag: the first port
/// of a TCP, UDP or SCTP header, 0 for anything else.
pub(crate) fn hashed_source_port(flow: &Flow) -> u16 {
    match flow.protocol {
        6 | 17 | 132 => flow.sport,
        _ => 0,
    }
}

/// Whether the destination carries IP_VS_DEST_F_OVERLOAD.
pub(crate) fn overloaded(dest: &Dest) -> bool {
    dest.counters.is_overloaded()
}

/// Whether the destination still belongs to its service
/// (IP_VS_DEST_F_AVAILABLE).
pub(crate) fn in_service(dest: &Dest) -> bool {
    dest.counters
        .available
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Weighted least connection over the whole list, as `ip_vs_wlc_schedule`
/// and the fallbacks of lblc/lblcr do it: the first available dest, then
/// every later non-overloaded dest that is strictly less loaded by
/// `O(l)·w(d) > O(d)·w(l)`. Weight-0 dests can never win that compare.
pub(crate) fn weighted_least_connection(dests: &[Dest]) -> Option<usize> {
    let first = dests.iter().position(Dest::is_available)?;
    let mut least = first;
    let mut least_overhead = u128::from(dests.get(first)?.overhead());
    let mut least_weight = u128::from(dests.get(first)?.weight);
    for (i, dest) in dests.iter().enumerate().skip(first + 1) {
        if overloaded(dest) {
            continue;
        }
        let overhead = u128::from(dest.overhead());
        if least_overhead * u128::from(dest.weight) > overhead * least_weight {
            least = i;
            least_overhead = overhead;
            least_weight = u128::from(dest.weight);
        }
    }
    Some(least)
}

/// Position of the dest with id `id` in `dests`.
pub(crate) fn position_of(dests: &[Dest], id: crate::dest::DestId) -> Option<usize> {
    dests.iter().position(|d| d.id == id)
}
