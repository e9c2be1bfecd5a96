//! lblc and lblcr: cache hits, overload replacement, replication and set
//! shrinking, expiry and collection with injected time, carry-over.

mod sched_support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use sched_support::{dests, flow_to, set_load, set_overloaded};
use uvs_conf::{SchedFlags, SchedulerName};
use uvs_engine::dest::{Dest, DestId};
use uvs_engine::sched::lblc::LblcScheduler;
use uvs_engine::sched::lblcr::LblcrScheduler;
use uvs_engine::sched::{build, Scheduler};
use uvs_engine::time::Millis;

const MIN: u64 = 60 * 1000;
const HOUR: u64 = 60 * MIN;

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xcb00_7100 + n))
}

fn go(s: &dyn Scheduler, d: &[Dest], daddr: IpAddr, at: u64) -> Option<usize> {
    s.schedule(d, &flow_to(daddr), Millis(at))
}

#[test]
fn lblc_keeps_the_cached_dest_while_it_is_not_overloaded() {
    let d = dests(&[1, 1]);
    let s = LblcScheduler::new(None);
    assert_eq!(go(&s, &d, ip(1), 0), Some(0));
    assert_eq!(s.cached(&ip(1)), Some(DestId(1)));
    // wlc now prefers dest 1, but the cache holds dest 0 (active 1 ≤ weight 1).
    set_load(&d[0], 1, 0);
    assert_eq!(go(&s, &d, ip(1), 1000), Some(0));
    assert_eq!(go(&s, &d, ip(2), 1000), Some(1));
    assert_eq!(s.cache_len(), 2);
    // The overload flag alone does not move an lblc entry.
    set_overloaded(&d[0], true);
    assert_eq!(go(&s, &d, ip(1), 2000), Some(0));
}

#[test]
fn lblc_replaces_an_overloaded_dest_only_if_another_is_under_half() {
    let d = dests(&[1, 4]);
    let s = LblcScheduler::new(None);
    assert_eq!(go(&s, &d, ip(1), 0), Some(0));
    // active 2 > weight 1, but dest 1 has 2·2 < 4 false: keep.
    set_load(&d[0], 2, 0);
    set_load(&d[1], 2, 0);
    assert_eq!(go(&s, &d, ip(1), 10), Some(0));
    // dest 1 now at 1·2 < 4: replace with the wlc choice.
    set_load(&d[1], 1, 0);
    assert_eq!(go(&s, &d, ip(1), 20), Some(1));
    assert_eq!(s.cached(&ip(1)), Some(DestId(2)));
    assert_eq!(s.cache_len(), 1);
}

#[test]
fn lblc_cache_survives_rebuilds_and_drops_quiesced_or_deleted_dests() {
    let d = dests(&[1, 1, 1]);
    let first = build(SchedulerName::Lblc, SchedFlags::default(), &d, None).unwrap();
    assert_eq!(go(first.as_ref(), &d, ip(1), 0), Some(0));
    assert_eq!(go(first.as_ref(), &d, ip(2), 0), Some(0));
    set_load(&d[0], 1, 0);
    // Same dests rebuilt: the entry is still there.
    let second = build(
        SchedulerName::Lblc,
        SchedFlags::default(),
        &d,
        Some(first.as_ref()),
    )
    .unwrap();
    assert_eq!(go(second.as_ref(), &d, ip(1), 10), Some(0));
    // Dest 0 quiesced: rescheduled.
    let mut quiesced = d.clone();
    quiesced[0].weight = 0;
    let third = build(
        SchedulerName::Lblc,
        SchedFlags::default(),
        &quiesced,
        Some(second.as_ref()),
    )
    .unwrap();
    assert_eq!(go(third.as_ref(), &quiesced, ip(1), 20), Some(1));
    // Dest 0 deleted: ip(2)'s entry is stale and rescheduled.
    let deleted = vec![d[1].clone(), d[2].clone()];
    set_load(&deleted[0], 1, 0);
    let fourth = build(
        SchedulerName::Lblc,
        SchedFlags::default(),
        &deleted,
        Some(third.as_ref()),
    )
    .unwrap();
    assert_eq!(go(fourth.as_ref(), &deleted, ip(2), 30), Some(1));
    let lblc = fourth.as_any().downcast_ref::<LblcScheduler>().unwrap();
    assert_eq!(lblc.cached(&ip(2)), Some(DestId(3)));
}

#[test]
fn lblc_entries_expire_after_a_day_unused_at_a_full_check() {
    let d = dests(&[1, 1]);
    let s = LblcScheduler::new(None);
    assert_eq!(go(&s, &d, ip(1), 0), Some(0));
    set_load(&d[0], 1, 0);
    // Full checks run every 30 minutes; at 23h30 the entry is 23.5 h old.
    assert_eq!(go(&s, &d, ip(2), 24 * HOUR - MIN), Some(1));
    assert_eq!(s.cached(&ip(1)), Some(DestId(1)));
    assert_eq!(s.cache_len(), 2);
    // The full check at 24h drops it.
    s.gc(Millis(24 * HOUR + 1000));
    assert_eq!(s.cached(&ip(1)), None);
    assert_eq!(s.cache_len(), 1);
    assert_eq!(go(&s, &d, ip(1), 24 * HOUR + 2000), Some(1));
}

#[test]
fn lblc_used_entries_do_not_expire() {
    let d = dests(&[1, 1]);
    let s = LblcScheduler::with_expiration(10 * MIN);
    assert_eq!(go(&s, &d, ip(1), 0), Some(0));
    set_load(&d[0], 1, 0);
    for step in 1..=8 {
        assert_eq!(go(&s, &d, ip(1), step * 9 * MIN), Some(0), "step {step}");
    }
    // Unused for 10 minutes at the 90-minute full check: gone.
    s.gc(Millis(90 * MIN + 1));
    assert_eq!(s.cached(&ip(1)), None);
}

#[test]
fn lblc_trims_idle_entries_when_over_16384() {
    let d = dests(&[1]);
    let s = LblcScheduler::new(None);
    let total = 20_000u32;
    for n in 0..total {
        assert_eq!(go(&s, &d, ip(n), 0), Some(0));
    }
    let held = s.cache_len();
    assert!(held > 16_384, "only {held} entries held");
    // First tick at 60 s: nothing is 6 minutes idle yet.
    s.gc(Millis(60 * 1000));
    assert_eq!(s.cache_len(), held);
    // At 7 minutes entries are idle: the tick drops (n - 16384)·4/3.
    s.gc(Millis(7 * MIN));
    let goal = (held - 16_384) * 4 / 3;
    let after = s.cache_len();
    assert!(after <= held - goal, "{held} → {after}, goal {goal}");
    assert!(
        after < 16_384 && after + 2_000 > held - goal,
        "{held} → {after}"
    );
}

#[test]
fn lblc_concurrent_schedules_cache_each_address_once() {
    let d = Arc::new(dests(&[1, 1, 1]));
    let s = Arc::new(LblcScheduler::new(None));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (d, s) = (Arc::clone(&d), Arc::clone(&s));
            std::thread::spawn(move || {
                for n in 0..500 {
                    assert!(s.schedule(&d, &flow_to(ip(n)), Millis(t)).is_some());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.cache_len(), 500);
}

#[test]
fn lblcr_adds_a_replica_when_the_set_member_is_overloaded() {
    let d = dests(&[1, 1]);
    let s = LblcrScheduler::new(None);
    assert_eq!(go(&s, &d, ip(1), 0), Some(0));
    assert_eq!(s.cached_set(&ip(1)), Some(vec![DestId(1)]));
    // Not overloaded in lblc's sense: stays.
    set_load(&d[0], 1, 0);
    assert_eq!(go(&s, &d, ip(1), 10), Some(0));
    // active 2 > 1 and dest 1 idle: wlc picks dest 1, added to the set.
    set_load(&d[0], 2, 0);
    assert_eq!(go(&s, &d, ip(1), 20), Some(1));
    assert_eq!(s.cached_set(&ip(1)), Some(vec![DestId(2), DestId(1)]));
    // Now the set's least loaded member serves.
    assert_eq!(go(&s, &d, ip(1), 30), Some(1));
    set_load(&d[0], 0, 0);
    set_load(&d[1], 1, 0);
    assert_eq!(go(&s, &d, ip(1), 40), Some(0));
}

#[test]
fn lblcr_set_min_skips_overload_flag_and_quiesced_members() {
    let d = dests(&[1, 1, 1]);
    let s = LblcrScheduler::new(None);
    assert_eq!(go(&s, &d, ip(1), 0), Some(0));
    set_overloaded(&d[0], true);
    // No usable member: wlc over all (dest 1), added.
    assert_eq!(go(&s, &d, ip(1), 10), Some(1));
    assert_eq!(s.cached_set(&ip(1)), Some(vec![DestId(2), DestId(1)]));
    set_overloaded(&d[0], false);
    set_load(&d[1], 0, 5);
    // Both usable: dest 0 (overhead 0) beats dest 1 (5).
    assert_eq!(go(&s, &d, ip(1), 20), Some(0));
}

#[test]
fn lblcr_drops_the_most_loaded_member_after_the_set_is_unchanged_long_enough() {
    let d = dests(&[1, 1]);
    let s = LblcrScheduler::with_expiration(10 * MIN);
    assert_eq!(go(&s, &d, ip(1), 0), Some(0));
    set_load(&d[0], 2, 0);
    assert_eq!(go(&s, &d, ip(1), MIN), Some(1));
    assert_eq!(s.cached_set(&ip(1)).unwrap().len(), 2);
    // Still within 10 minutes of the last change.
    assert_eq!(go(&s, &d, ip(1), 6 * MIN), Some(1));
    assert_eq!(go(&s, &d, ip(1), 11 * MIN), Some(1));
    assert_eq!(s.cached_set(&ip(1)).unwrap().len(), 2);
    // Past it: dest 0 (overhead 512) goes, dest 1 stays.
    assert_eq!(go(&s, &d, ip(1), 11 * MIN + 1), Some(1));
    assert_eq!(s.cached_set(&ip(1)), Some(vec![DestId(2)]));
    // A single member is never dropped.
    assert_eq!(go(&s, &d, ip(1), 19 * MIN), Some(1));
    assert_eq!(go(&s, &d, ip(1), 28 * MIN), Some(1));
    assert_eq!(s.cached_set(&ip(1)), Some(vec![DestId(2)]));
}

#[test]
fn lblcr_entries_expire_and_survive_rebuilds() {
    let d = dests(&[1, 1]);
    let first = build(SchedulerName::Lblcr, SchedFlags::default(), &d, None).unwrap();
    assert_eq!(go(first.as_ref(), &d, ip(1), 0), Some(0));
    let second = build(
        SchedulerName::Lblcr,
        SchedFlags::default(),
        &d,
        Some(first.as_ref()),
    )
    .unwrap();
    let lblcr = second.as_any().downcast_ref::<LblcrScheduler>().unwrap();
    assert_eq!(lblcr.cached_set(&ip(1)), Some(vec![DestId(1)]));
    lblcr.gc(Millis(23 * HOUR + 59 * MIN));
    assert_eq!(lblcr.cache_len(), 1);
    lblcr.gc(Millis(24 * HOUR));
    assert_eq!(lblcr.cache_len(), 0);
}
