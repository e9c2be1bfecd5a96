//! mh: Maglev hashing (`ip_vs_mh.c`, after Eisenbud et al., NSDI 2016).
//!
//! A 4093-slot lookup table (CONFIG_IP_VS_MH_TAB_INDEX = 12) built in
//! [`build`](super::build). Each dest gets a permutation of the slots:
//! offset = hsiphash(v, k1) mod 4093, skip = hsiphash(v, k2) mod 4092 + 1,
//! with v = ntohs(port) + ntohl(fold(addr)) as a `u32` and the kernel's
//! fixed keys k1 = (2654435761, 2654435761), k2 = (2654446892, 2654446892).
//! Filling goes round the list in order; each dest takes `turns` free
//! slots along its permutation per round, where turns =
//! (last_weight / gcd) >> shift, at least 1 if last_weight ≠ 0, and shift
//! = max(0, fls(max last_weight / gcd) − 6). last_weight is the latest
//! non-zero weight, so a quiesced (weight 0) dest keeps its slots.
//!
//! A flow goes to slot hsiphash(sport + ntohl(fold(saddr)), k1) mod 4093
//! (sport only with `mh-port`, flag-2, for TCP/UDP/SCTP). A dest with
//! weight 0 or the overload flag is unusable: no choice, or with
//! `mh-fallback` (flag-1) probe slot hash(v + (i + first) mod 4093) for
//! i = 0..4092, stopping at an empty slot. More than 4093 dests is an
//! error, as in IPVS (EINVAL).

use std::any::Any;

use uvs_conf::{SchedFlags, SchedulerName};

use super::hash::{hsiphash_u32, HsiphashKey};
use super::{addr_fold, hashed_source_port, overloaded, Flow, SchedError, Scheduler};
use crate::dest::{Dest, DestId};
use crate::time::Millis;

/// Slots in the lookup table (a prime).
pub const MH_TABLE_SIZE: usize = 4093;

/// IP_VS_MH_TAB_BITS: CONFIG_IP_VS_MH_TAB_INDEX / 2.
const TABLE_BITS: u32 = 6;

/// The key of the offset hash (and of the flow lookup).
pub const MH_KEY1: HsiphashKey = [2_654_435_761, 2_654_435_761];
/// The key of the skip hash.
pub const MH_KEY2: HsiphashKey = [2_654_446_892, 2_654_446_892];

const NO_DEST: u16 = u16::MAX;

/// The mh scheduler.
#[derive(Debug)]
pub struct MhScheduler {
    slots: Box<[u16]>,
    flags: SchedFlags,
    /// (id, last non-zero weight) per dest, for the next snapshot.
    last_weights: Box<[(DestId, u32)]>,
}

/// The mh hash of an address, port and probe offset.
pub fn mh_hash(addr: &std::net::IpAddr, port: u16, key: &HsiphashKey, offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr_fold(addr));
    hsiphash_u32(v, key)
}

fn fls(x: u32) -> u32 {
    32 - x.leading_zeros()
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl MhScheduler {
    /// Build the lookup table for `dests`; `prev` supplies the last
    /// non-zero weights of dests that are now quiesced.
    pub fn new(
        dests: &[Dest],
        flags: SchedFlags,
        prev: Option<&MhScheduler>,
    ) -> Result<MhScheduler, SchedError> {
        if dests.len() > MH_TABLE_SIZE {
            return Err(SchedError::TooManyDests {
                count: dests.len(),
                max: MH_TABLE_SIZE,
            });
        }
        let last_weights: Box<[(DestId, u32)]> = dests
            .iter()
            .map(|d| {
                let last = if d.weight != 0 {
                    d.weight
                } else {
                    prev.and_then(|p| p.last_weights.iter().find(|(id, _)| *id == d.id))
                        .map_or(0, |&(_, w)| w)
                };
                (d.id, last)
            })
            .collect();
        let mut slots = vec![NO_DEST; MH_TABLE_SIZE].into_boxed_slice();
        let divisor = last_weights
            .iter()
            .map(|&(_, w)| w)
            .filter(|&w| w > 0)
            .fold(0, gcd);
        if divisor >= 1 {
            let max = last_weights.iter().map(|&(_, w)| w).max().unwrap_or(0) / divisor;
            let shift = fls(max).saturating_sub(TABLE_BITS);
            Self::populate(dests, &last_weights, divisor, shift, &mut slots);
        }
        Ok(MhScheduler {
            slots,
            flags,
            last_weights,
        })
    }

    fn populate(
        dests: &[Dest],
        last_weights: &[(DestId, u32)],
        divisor: u32,
        shift: u32,
        slots: &mut [u16],
    ) {
        let size = MH_TABLE_SIZE as u32;
        struct Setup {
            perm: u32,
            skip: u32,
            turns: u32,
        }
        let mut setup: Vec<Setup> = dests
            .iter()
            .zip(last_weights)
            .map(|(d, &(_, lw))| {
                let offset = mh_hash(&d.addr, d.port, &MH_KEY1, 0) % size;
                let skip = mh_hash(&d.addr, d.port, &MH_KEY2, 0) % (size - 1) + 1;
                let turns = match (lw / divisor) >> shift {
                    0 => u32::from(lw != 0),
                    t => t,
                };
                Setup {
                    perm: offset,
                    skip,
                    turns,
                }
            })
            .collect();
        let mut taken = vec![false; MH_TABLE_SIZE];
        let mut filled = 0usize;
        // Some dest has turns ≥ 1 (gcd ≥ 1), so every round fills a slot.
        while filled < MH_TABLE_SIZE {
            for (i, ds) in setup.iter_mut().enumerate() {
                for _ in 0..ds.turns {
                    let mut c = ds.perm;
                    while taken.get(c as usize).copied().unwrap_or(false) {
                        ds.perm += ds.skip;
                        if ds.perm >= size {
                            ds.perm -= size;
                        }
                        c = ds.perm;
                    }
                    if let Some(t) = taken.get_mut(c as usize) {
                        *t = true;
                    }
                    if let Some(slot) = slots.get_mut(c as usize) {
                        *slot = u16::try_from(i).unwrap_or(NO_DEST);
                    }
                    filled += 1;
                    if filled == MH_TABLE_SIZE {
                        return;
                    }
                }
            }
        }
    }

    /// The dest index in each slot (`None` = empty).
    pub fn slot_dests(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.slots
            .iter()
            .map(|&s| (s != NO_DEST).then_some(usize::from(s)))
    }

    fn slot(&self, index: u32) -> Option<usize> {
        let s = *self.slots.get(index as usize)?;
        (s != NO_DEST).then_some(usize::from(s))
    }
}

fn usable(dest: &Dest) -> bool {
    dest.weight > 0 && !overloaded(dest)
}

impl Scheduler for MhScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Mh
    }

    fn schedule(&self, dests: &[Dest], flow: &Flow, _now: Millis) -> Option<usize> {
        let size = MH_TABLE_SIZE as u32;
        let port = if self.flags.port() {
            hashed_source_port(flow)
        } else {
            0
        };
        let first = mh_hash(&flow.saddr, port, &MH_KEY1, 0) % size;
        let pick = self.slot(first)?;
        if usable(dests.get(pick)?) {
            return Some(pick);
        }
        if !self.flags.fallback() {
            return None;
        }
        for offset in 0..size {
            let rehash_offset = (offset + first) % size;
            let index = mh_hash(&flow.saddr, port, &MH_KEY1, rehash_offset) % size;
            let pick = self.slot(index)?;
            if usable(dests.get(pick)?) {
                return Some(pick);
            }
        }
        None
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
