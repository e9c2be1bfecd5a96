//! IPVS's rate estimator and the `-Z` bookkeeping of the counters.
//!
//! [`Estimator`] is `ip_vs_est.c` to the bit: every 2 s the control thread
//! samples a service's or real server's cumulative counters and feeds the
//! differences into an exponentially weighted moving average of weight
//! 1/4 (about 8 s), in fixed point:
//!
//! ```text
//! rate = Δconns·2^9   (Δ over 2 s, ·2^10 per second)   same for in/out packets
//! rate = Δbytes·2^4   (Δ over 2 s, ·2^5 per second)
//! avg += (rate − avg) >> 2          (signed, arithmetic shift)
//! cps = (avg + 0x1FF) >> 10         pps likewise, bps = (avg + 0xF) >> 5
//! ```
//!
//! [`Stats`] holds one estimator and one `-Z` base per service and per
//! real server of the running snapshot. The engine's counters only ever
//! grow; `-Z` does what IPVS's `ip_vs_zero_stats` does: it rebases (the
//! listing shows counters minus the base) and zeroes the rates. After
//! every configuration change [`Stats::sync`] adds entries for new
//! services and real servers and forgets those that are gone.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use uvs_conf::control::{Counters, Rates};
use uvs_conf::ServiceKey;

use crate::dest::{DestCounters, DestId};
use crate::snapshot::{ServiceStats, Snapshot};

/// Seconds between two estimator ticks (IPVS's `ESTIMATOR_INTERVAL`).
pub const TICK_SECS: u64 = 2;

/// One EWMA estimator over five cumulative counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Counters,
    cps: i64,
    in_pps: i64,
    out_pps: i64,
    in_bps: i64,
    out_bps: i64,
}

/// `avg += (rate - avg) >> 2`, with the kernel's wrapping u64 arithmetic
/// reinterpreted as signed.
fn ewma(avg: &mut i64, rate: i64) {
    *avg = avg.wrapping_add(rate.wrapping_sub(*avg) >> 2);
}

/// Δ of a cumulative counter as the kernel's signed 64-bit value.
fn delta(now: u64, last: u64) -> i64 {
    now.wrapping_sub(last) as i64
}

impl Estimator {
    /// An estimator whose first tick measures from `current`.
    pub fn new(current: Counters) -> Estimator {
        Estimator {
            last: current,
            ..Estimator::default()
        }
    }

    /// One 2 s tick with the counters read now.
    pub fn tick(&mut self, now: Counters) {
        ewma(
            &mut self.cps,
            delta(now.conns, self.last.conns).wrapping_shl(9),
        );
        ewma(
            &mut self.in_pps,
            delta(now.in_pkts, self.last.in_pkts).wrapping_shl(9),
        );
        ewma(
            &mut self.out_pps,
            delta(now.out_pkts, self.last.out_pkts).wrapping_shl(9),
        );
        ewma(
            &mut self.in_bps,
            delta(now.in_bytes, self.last.in_bytes).wrapping_shl(4),
        );
        ewma(
            &mut self.out_bps,
            delta(now.out_bytes, self.last.out_bytes).wrapping_shl(4),
        );
        self.last = now;
    }

    /// The rates per second, rounded as `ip_vs_read_estimator` does.
    pub fn rates(&self) -> Rates {
        let per_sec =
            |avg: i64, round: i64, shift: u32| -> u64 { (avg.wrapping_add(round) as u64) >> shift };
        Rates {
            cps: per_sec(self.cps, 0x1FF, 10),
            in_pps: per_sec(self.in_pps, 0x1FF, 10),
            out_pps: per_sec(self.out_pps, 0x1FF, 10),
            in_bps: per_sec(self.in_bps, 0xF, 5),
            out_bps: per_sec(self.out_bps, 0xF, 5),
        }
    }

    /// `-Z`: rates to zero, the next tick measures from `current`.
    pub fn zero(&mut self, current: Counters) {
        *self = Estimator::new(current);
    }
}

/// The cumulative counters of a service.
pub fn service_counters(stats: &ServiceStats) -> Counters {
    Counters {
        conns: stats.conns.load(Ordering::Relaxed),
        in_pkts: stats.in_pkts.load(Ordering::Relaxed),
        out_pkts: stats.out_pkts.load(Ordering::Relaxed),
        in_bytes: stats.in_bytes.load(Ordering::Relaxed),
        out_bytes: stats.out_bytes.load(Ordering::Relaxed),
    }
}

/// The cumulative counters of a real server.
pub fn dest_counters(counters: &DestCounters) -> Counters {
    Counters {
        conns: counters.conns.load(Ordering::Relaxed),
        in_pkts: counters.in_pkts.load(Ordering::Relaxed),
        out_pkts: counters.out_pkts.load(Ordering::Relaxed),
        in_bytes: counters.in_bytes.load(Ordering::Relaxed),
        out_bytes: counters.out_bytes.load(Ordering::Relaxed),
    }
}

fn minus(now: Counters, base: Counters) -> Counters {
    Counters {
        conns: now.conns.saturating_sub(base.conns),
        in_pkts: now.in_pkts.saturating_sub(base.in_pkts),
        out_pkts: now.out_pkts.saturating_sub(base.out_pkts),
        in_bytes: now.in_bytes.saturating_sub(base.in_bytes),
        out_bytes: now.out_bytes.saturating_sub(base.out_bytes),
    }
}

#[derive(Debug)]
struct Entry {
    base: Counters,
    estimator: Estimator,
}

impl Entry {
    fn new(current: Counters) -> Entry {
        Entry {
            base: Counters::default(),
            estimator: Estimator::new(current),
        }
    }

    fn zero(&mut self, current: Counters) {
        self.base = current;
        self.estimator.zero(current);
    }
}

#[derive(Debug)]
struct ServiceEntry {
    stats: Arc<ServiceStats>,
    entry: Entry,
}

/// Estimators and `-Z` bases of every service and real server.
#[derive(Debug, Default)]
pub struct Stats {
    services: HashMap<ServiceKey, ServiceEntry>,
    dests: HashMap<DestId, Entry>,
}

impl Stats {
    /// No entries yet; call [`Stats::sync`].
    pub fn new() -> Stats {
        Stats::default()
    }

    /// Follow a newly applied snapshot: start estimating new services and
    /// real servers, forget removed ones. A service that was deleted and
    /// added again has new counters, so it starts afresh.
    pub fn sync(&mut self, snapshot: &Snapshot) {
        let mut services = HashMap::with_capacity(snapshot.services().len());
        let mut dests = HashMap::new();
        for svc in snapshot.services() {
            let entry = match self.services.remove(&svc.key) {
                Some(old) if Arc::ptr_eq(&old.stats, &svc.stats) => old,
                _ => ServiceEntry {
                    stats: Arc::clone(&svc.stats),
                    entry: Entry::new(service_counters(&svc.stats)),
                },
            };
            services.insert(svc.key, entry);
            for d in &svc.dests {
                let entry = self
                    .dests
                    .remove(&d.id)
                    .unwrap_or_else(|| Entry::new(dest_counters(&d.counters)));
                dests.insert(d.id, entry);
            }
        }
        self.services = services;
        self.dests = dests;
    }

    /// One estimator tick over everything in `snapshot`.
    pub fn tick(&mut self, snapshot: &Snapshot) {
        for svc in snapshot.services() {
            if let Some(e) = self.services.get_mut(&svc.key) {
                e.entry.estimator.tick(service_counters(&svc.stats));
            }
            for d in &svc.dests {
                if let Some(e) = self.dests.get_mut(&d.id) {
                    e.estimator.tick(dest_counters(&d.counters));
                }
            }
        }
    }

    /// `-Z`: rebase the counters and zero the rates of one service (and
    /// its real servers) or of all. Returns false if `service` is not in
    /// the snapshot.
    pub fn zero(&mut self, snapshot: &Snapshot, service: Option<&ServiceKey>) -> bool {
        let mut found = false;
        for svc in snapshot.services() {
            if service.is_some_and(|k| *k != svc.key) {
                continue;
            }
            found = true;
            if let Some(e) = self.services.get_mut(&svc.key) {
                e.entry.zero(service_counters(&svc.stats));
            }
            for d in &svc.dests {
                if let Some(e) = self.dests.get_mut(&d.id) {
                    e.zero(dest_counters(&d.counters));
                }
            }
        }
        found || service.is_none()
    }

    /// A service's counters since the last `-Z`, and its rates.
    pub fn service(&self, key: &ServiceKey, stats: &ServiceStats) -> (Counters, Rates) {
        let now = service_counters(stats);
        match self.services.get(key) {
            Some(e) => (minus(now, e.entry.base), e.entry.estimator.rates()),
            None => (now, Rates::default()),
        }
    }

    /// A real server's counters since the last `-Z`, and its rates.
    pub fn dest(&self, id: DestId, counters: &DestCounters) -> (Counters, Rates) {
        let now = dest_counters(counters);
        match self.dests.get(&id) {
            Some(e) => (minus(now, e.base), e.estimator.rates()),
            None => (now, Rates::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(conns: u64, pkts: u64, bytes: u64) -> Counters {
        Counters {
            conns,
            in_pkts: pkts,
            out_pkts: pkts / 2,
            in_bytes: bytes,
            out_bytes: bytes * 3,
        }
    }

    /// 10 connections, 100 packets and 1000 bytes per 2 s tick, computed
    /// by hand with the kernel's formulas:
    /// conns: rate = 10·512 = 5120; avg 0 → 1280 → 2240 → 2960 → 3500;
    ///        cps = (avg + 511) >> 10 = 1, 2, 3, 3.
    /// in pkts: rate = 100·512 = 51200; avg 12800 → 22400 → 29600 → 35000;
    ///        pps = 12, 22, 29, 34.
    /// out pkts (50/tick): rate 25600; avg 6400 → 11200 → 14800 → 17500;
    ///        pps = 6, 11, 14, 17.
    /// in bytes: rate = 1000·16 = 16000; avg 4000 → 7000 → 9250 → 10937;
    ///        bps = (avg + 15) >> 5 = 125, 219, 289, 342.
    /// out bytes (3000/tick): rate 48000; avg 12000 → 21000 → 27750 →
    ///        32812; bps = 375, 656, 867, 1025.
    #[test]
    fn steady_traffic_converges_as_the_kernel_computes() {
        let mut est = Estimator::new(Counters::default());
        let expected = [
            (1, 12, 6, 125, 375),
            (2, 22, 11, 219, 656),
            (3, 29, 14, 289, 867),
            (3, 34, 17, 342, 1025),
        ];
        for (tick, want) in expected.iter().enumerate() {
            let n = tick as u64 + 1;
            est.tick(counters(10 * n, 100 * n, 1000 * n));
            let r = est.rates();
            assert_eq!(
                (r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps),
                *want,
                "tick {n}"
            );
        }
    }

    #[test]
    fn rates_decay_when_traffic_stops_and_never_go_negative() {
        let mut est = Estimator::new(Counters::default());
        est.tick(counters(10, 100, 1000)); // avg conns 1280
        let mut last = est.rates();
        // No traffic: conns avg 1280 → 960 → 720 → 540 → 405 → ...
        let cps = [1, 1, 1, 0];
        for want in cps {
            est.tick(counters(10, 100, 1000));
            let r = est.rates();
            assert_eq!(r.cps, want);
            assert!(r.in_pps <= last.in_pps && r.in_bps <= last.in_bps);
            last = r;
        }
        for _ in 0..100 {
            est.tick(counters(10, 100, 1000));
        }
        assert_eq!(est.rates(), Rates::default());
    }

    #[test]
    fn a_large_burst_uses_full_64_bit_arithmetic() {
        let mut est = Estimator::new(Counters::default());
        // 8 GB in 2 s: rate = 8e9·16 = 1.28e11; avg = 3.2e10;
        // bps = (3.2e10 + 15) >> 5 = 1_000_000_000.
        est.tick(Counters {
            in_bytes: 8_000_000_000,
            ..Counters::default()
        });
        assert_eq!(est.rates().in_bps, 1_000_000_000);
    }

    #[test]
    fn zero_restarts_from_the_current_counters() {
        let mut est = Estimator::new(Counters::default());
        est.tick(counters(10, 100, 1000));
        est.zero(counters(10, 100, 1000));
        assert_eq!(est.rates(), Rates::default());
        // The next tick measures only what came after the zero.
        est.tick(counters(20, 200, 2000));
        assert_eq!(est.rates().cps, 1);
        assert_eq!(est.rates().in_bps, 125);
    }
}
