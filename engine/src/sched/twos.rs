//! twos: weighted random "power of two choices" (`ip_vs_twos.c`).
//!
//! T = Σ weight of usable dests (weight > 0, no overload flag) + 1; two
//! draws r1, r2 = random % T; walking the usable dests in list order and
//! subtracting each weight from both, the first dest that brings r1 to
//! ≤ 0 is choice 1, likewise r2 gives choice 2. Choice 2 wins when it is
//! strictly less loaded: `w2·O1 > w1·O2` (O = active·256 + inactive).
//! As in the kernel the first usable dest gets one extra chance in T.
//!
//! Randomness: a SplitMix64 stream whose state is one `AtomicU64` advanced
//! with `fetch_add`, so concurrent workers draw distinct values without a
//! lock. [`build`](super::build) seeds it from the process's random hasher
//! keys; [`TwosScheduler::with_seed`] fixes the seed for tests.

use std::any::Any;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use uvs_conf::SchedulerName;

use super::{overloaded, Flow, Scheduler};
use crate::dest::Dest;
use crate::time::Millis;

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The twos scheduler.
#[derive(Debug)]
pub struct TwosScheduler {
    rng_state: AtomicU64,
}

impl Default for TwosScheduler {
    fn default() -> Self {
        TwosScheduler::new()
    }
}

impl TwosScheduler {
    /// A twos scheduler with a random seed.
    pub fn new() -> TwosScheduler {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(GOLDEN_GAMMA);
        TwosScheduler::with_seed(hasher.finish())
    }

    /// A twos scheduler whose random draws repeat for a given seed.
    pub fn with_seed(seed: u64) -> TwosScheduler {
        TwosScheduler {
            rng_state: AtomicU64::new(seed),
        }
    }

    /// The next 32-bit random number (the kernel's `prandom_u32()`).
    fn next_u32(&self) -> u32 {
        let mut z = self
            .rng_state
            .fetch_add(GOLDEN_GAMMA, Ordering::Relaxed)
            .wrapping_add(GOLDEN_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 32) as u32
    }
}

fn usable(dest: &Dest) -> bool {
    !overloaded(dest) && dest.weight > 0
}

impl Scheduler for TwosScheduler {
    fn name(&self) -> SchedulerName {
        SchedulerName::Twos
    }

    fn schedule(&self, dests: &[Dest], _flow: &Flow, _now: Millis) -> Option<usize> {
        let total_weight: u64 = dests
            .iter()
            .filter(|d| usable(d))
            .map(|d| u64::from(d.weight))
            .sum();
        if total_weight == 0 {
            return None;
        }
        let total_weight = total_weight + 1;
        let mut rweight1 = (u64::from(self.next_u32()) % total_weight) as i64;
        let mut rweight2 = (u64::from(self.next_u32()) % total_weight) as i64;

        let mut choice1: Option<(usize, u128, u128)> = None;
        let mut choice2: Option<(usize, u128, u128)> = None;
        for (i, dest) in dests.iter().enumerate() {
            if !usable(dest) {
                continue;
            }
            let weight = i64::from(dest.weight);
            rweight1 -= weight;
            rweight2 -= weight;
            let pick = (i, u128::from(dest.weight), u128::from(dest.overhead()));
            if rweight1 <= 0 && choice1.is_none() {
                choice1 = Some(pick);
            }
            if rweight2 <= 0 && choice2.is_none() {
                choice2 = Some(pick);
            }
            if choice1.is_some() && choice2.is_some() {
                break;
            }
        }
        match (choice1, choice2) {
            (Some((i1, w1, o1)), Some((i2, w2, o2))) => {
                if w2 * o1 > w1 * o2 {
                    Some(i2)
                } else {
                    Some(i1)
                }
            }
            (Some((i1, _, _)), None) => Some(i1),
            (None, Some((i2, _, _))) => Some(i2),
            (None, None) => None,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
