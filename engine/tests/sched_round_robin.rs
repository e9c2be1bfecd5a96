//! rr and wrr: kernel pick sequences, skipping, cursor carry-over,
//! concurrent picks.

mod sched_support;

use std::sync::Arc;

use sched_support::{any_flow, dest, dests, set_overloaded};
use uvs_conf::{SchedFlags, SchedulerName};
use uvs_engine::dest::Dest;
use uvs_engine::sched::rr::RrScheduler;
use uvs_engine::sched::wrr::WrrScheduler;
use uvs_engine::sched::{build, Scheduler};
use uvs_engine::time::Millis;

fn picks(s: &dyn Scheduler, dests: &[Dest], n: usize) -> Vec<Option<usize>> {
    (0..n)
        .map(|_| s.schedule(dests, &any_flow(), Millis(0)))
        .collect()
}

fn some(v: &[usize]) -> Vec<Option<usize>> {
    v.iter().copied().map(Some).collect()
}

#[test]
fn rr_cycles_in_list_order() {
    let d = dests(&[1, 5, 1]);
    let s = RrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 7), some(&[0, 1, 2, 0, 1, 2, 0]));
}

#[test]
fn rr_skips_quiesced_and_overloaded() {
    let d = dests(&[1, 0, 1, 1]);
    set_overloaded(&d[3], true);
    let s = RrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 4), some(&[0, 2, 0, 2]));
    set_overloaded(&d[3], false);
    assert_eq!(picks(&s, &d, 3), some(&[3, 0, 2]));
}

#[test]
fn rr_with_nothing_usable_returns_none_and_keeps_cursor() {
    let d = dests(&[1, 1]);
    let s = RrScheduler::new(&d, None);
    assert_eq!(s.schedule(&d, &any_flow(), Millis(0)), Some(0));
    set_overloaded(&d[0], true);
    set_overloaded(&d[1], true);
    assert_eq!(s.schedule(&d, &any_flow(), Millis(0)), None);
    assert_eq!(s.cursor(), Some(0));
    set_overloaded(&d[1], false);
    assert_eq!(s.schedule(&d, &any_flow(), Millis(0)), Some(1));
}

#[test]
fn rr_cursor_follows_its_dest_when_one_is_added_at_the_head() {
    let d = dests(&[1, 1, 1]);
    let s = RrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 2), some(&[0, 1]));
    let mut d2 = vec![dest(9, 9, 1)];
    d2.extend(d.iter().cloned());
    let s2 = RrScheduler::new(&d2, Some(&s));
    assert_eq!(s2.cursor(), Some(2));
    assert_eq!(picks(&s2, &d2, 3), some(&[3, 0, 1]));
}

#[test]
fn rr_cursor_moves_to_the_predecessor_of_a_deleted_dest() {
    let d = dests(&[1, 1, 1]);
    let s = RrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 2), some(&[0, 1]));
    // Delete the dest the cursor is on (index 1): next is the old successor.
    let d2 = vec![d[0].clone(), d[2].clone()];
    let s2 = RrScheduler::new(&d2, Some(&s));
    assert_eq!(picks(&s2, &d2, 3), some(&[1, 0, 1]));
}

#[test]
fn rr_concurrent_picks_are_serialised() {
    let d = Arc::new(dests(&[1, 1, 1]));
    let s = Arc::new(RrScheduler::new(&d, None));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (d, s) = (Arc::clone(&d), Arc::clone(&s));
            std::thread::spawn(move || {
                let mut counts = [0usize; 3];
                for _ in 0..3000 {
                    if let Some(i) = s.schedule(&d, &any_flow(), Millis(0)) {
                        counts[i] += 1;
                    }
                }
                counts
            })
        })
        .collect();
    let mut total = [0usize; 3];
    for h in handles {
        for (t, c) in total.iter_mut().zip(h.join().unwrap()) {
            *t += c;
        }
    }
    assert_eq!(total, [4000, 4000, 4000]);
}

#[test]
fn wrr_weights_4_3_2_give_the_kernel_sequence() {
    let d = dests(&[4, 3, 2]);
    let s = WrrScheduler::new(&d, None);
    let one_cycle = [0, 0, 1, 0, 1, 2, 0, 1, 2];
    let mut expected = one_cycle.to_vec();
    expected.extend(one_cycle);
    assert_eq!(picks(&s, &d, 18), some(&expected));
}

#[test]
fn wrr_steps_by_the_gcd() {
    let d = dests(&[4, 2]);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 6), some(&[0, 0, 1, 0, 0, 1]));
    let d = dests(&[6, 4, 2]);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(
        picks(&s, &d, 12),
        some(&[0, 0, 1, 0, 1, 2, 0, 0, 1, 0, 1, 2])
    );
}

#[test]
fn wrr_never_picks_weight_zero() {
    let d = dests(&[2, 0, 1]);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 6), some(&[0, 0, 2, 0, 0, 2]));
}

#[test]
fn wrr_skips_an_overloaded_dest_as_the_kernel_does() {
    let d = dests(&[4, 3, 2]);
    set_overloaded(&d[0], true);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 10), some(&[1, 1, 2, 1, 2, 1, 1, 2, 1, 2]));
}

#[test]
fn wrr_all_overloaded_or_zero_gives_none() {
    let d = dests(&[4, 3]);
    set_overloaded(&d[0], true);
    set_overloaded(&d[1], true);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 3), vec![None, None, None]);
    set_overloaded(&d[1], false);
    assert_eq!(picks(&s, &d, 2), some(&[1, 1]));
    let d = dests(&[0, 0]);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 2), vec![None, None]);
}

#[test]
fn wrr_identical_rebuild_keeps_position() {
    let d = dests(&[4, 3, 2]);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 3), some(&[0, 0, 1]));
    let s2 = WrrScheduler::new(&d, Some(&s));
    assert_eq!(picks(&s2, &d, 6), some(&[0, 1, 2, 0, 1, 2]));
}

#[test]
fn wrr_changed_dests_reset_cursor_and_keep_cw() {
    let d = dests(&[4, 3, 2]);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 3), some(&[0, 0, 1]));
    assert_eq!(s.current_weight(), 3);
    let mut d2 = d.clone();
    d2[2].weight = 1;
    let s2 = WrrScheduler::new(&d2, Some(&s));
    assert_eq!(s2.current_weight(), 3);
    assert_eq!(picks(&s2, &d2, 8), some(&[0, 1, 0, 1, 0, 1, 2, 0]));
}

#[test]
fn wrr_changed_dests_round_cw_to_the_new_gcd() {
    // cw 3 with new di 2 and mw 4 - 1 = 3: cw = (3 / 2)·2 + 1 = 3.
    let d = dests(&[4, 3, 2]);
    let s = WrrScheduler::new(&d, None);
    assert_eq!(picks(&s, &d, 3), some(&[0, 0, 1]));
    let d2 = dests(&[4, 2]);
    let s2 = WrrScheduler::new(&d2, Some(&s));
    assert_eq!(s2.current_weight(), 3);
    // cw above the new mw resets to mw.
    let d3 = dests(&[2, 2]);
    let s3 = WrrScheduler::new(&d3, Some(&s));
    assert_eq!(s3.current_weight(), 1);
}

#[test]
fn wrr_concurrent_picks_keep_the_ratio_exact() {
    let d = Arc::new(dests(&[4, 3, 2]));
    let s: Arc<dyn Scheduler> =
        Arc::from(build(SchedulerName::Wrr, SchedFlags::default(), &d, None).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (d, s) = (Arc::clone(&d), Arc::clone(&s));
            std::thread::spawn(move || {
                let mut counts = [0usize; 3];
                for _ in 0..900 {
                    if let Some(i) = s.schedule(&d, &any_flow(), Millis(0)) {
                        counts[i] += 1;
                    }
                }
                counts
            })
        })
        .collect();
    let mut total = [0usize; 3];
    for h in handles {
        for (t, c) in total.iter_mut().zip(h.join().unwrap()) {
            *t += c;
        }
    }
    assert_eq!(total, [1600, 1200, 800]);
}
