//! lc, wlc, sed, nq, fo, ovf and twos: choices under given loads, tie
//! breaks, and twos's statistics with a fixed seed.

mod sched_support;

use sched_support::{any_flow, dests, set_load, set_overloaded};
use uvs_engine::dest::Dest;
use uvs_engine::sched::fo::FoScheduler;
use uvs_engine::sched::lc::LcScheduler;
use uvs_engine::sched::nq::NqScheduler;
use uvs_engine::sched::ovf::OvfScheduler;
use uvs_engine::sched::sed::SedScheduler;
use uvs_engine::sched::twos::TwosScheduler;
use uvs_engine::sched::wlc::WlcScheduler;
use uvs_engine::sched::Scheduler;
use uvs_engine::time::Millis;

fn pick(s: &dyn Scheduler, d: &[Dest]) -> Option<usize> {
    s.schedule(d, &any_flow(), Millis(0))
}

/// Dests with (weight, active, inactive).
fn loaded(spec: &[(u32, u32, u32)]) -> Vec<Dest> {
    let weights: Vec<u32> = spec.iter().map(|s| s.0).collect();
    let d = dests(&weights);
    for (dest, &(_, active, inactive)) in d.iter().zip(spec) {
        set_load(dest, active, inactive);
    }
    d
}

#[test]
fn lc_picks_least_overhead_first_on_ties() {
    // Overheads 256, 10, 10: the first 10 wins.
    let d = loaded(&[(1, 1, 0), (1, 0, 10), (1, 0, 10)]);
    assert_eq!(pick(&LcScheduler, &d), Some(1));
    // Weights other than 0 do not matter.
    let d = loaded(&[(100, 0, 11), (1, 0, 10)]);
    assert_eq!(pick(&LcScheduler, &d), Some(1));
}

#[test]
fn lc_skips_quiesced_and_overloaded() {
    let d = loaded(&[(0, 0, 0), (1, 0, 1), (1, 0, 5)]);
    set_overloaded(&d[1], true);
    assert_eq!(pick(&LcScheduler, &d), Some(2));
    set_overloaded(&d[2], true);
    assert_eq!(pick(&LcScheduler, &d), None);
}

#[test]
fn wlc_compares_overhead_per_weight() {
    // 256/1 against 512/3: the second is lighter.
    let d = loaded(&[(1, 1, 0), (3, 2, 0)]);
    assert_eq!(pick(&WlcScheduler, &d), Some(1));
    // 100/1 against 200/2: a tie goes to the earlier dest.
    let d = loaded(&[(1, 0, 100), (2, 0, 200)]);
    assert_eq!(pick(&WlcScheduler, &d), Some(0));
    // Active connections weigh 256 inactive ones.
    let d = loaded(&[(1, 1, 0), (1, 0, 255)]);
    assert_eq!(pick(&WlcScheduler, &d), Some(1));
    let d = loaded(&[(1, 1, 0), (1, 0, 256)]);
    assert_eq!(pick(&WlcScheduler, &d), Some(0));
}

#[test]
fn wlc_starts_from_the_first_available_and_never_picks_weight_zero() {
    let d = loaded(&[(0, 0, 0), (5, 9, 0), (1, 0, 0)]);
    set_overloaded(&d[2], true);
    assert_eq!(pick(&WlcScheduler, &d), Some(1));
    let d = loaded(&[(0, 0, 0), (0, 0, 0)]);
    assert_eq!(pick(&WlcScheduler, &d), None);
}

#[test]
fn wlc_does_not_overflow_on_huge_counts() {
    let d = loaded(&[(65535, u32::MAX, u32::MAX), (1, u32::MAX - 1, 0)]);
    // (2^32-1)·256 + (2^32-1) over 65535 is far lighter than ≈2^40 over 1.
    assert_eq!(pick(&WlcScheduler, &d), Some(0));
}

#[test]
fn sed_counts_active_plus_one_per_weight() {
    // (0+1)/1 against (2+1)/3: tie → earlier; inactive ignored.
    let d = loaded(&[(1, 0, 1000), (3, 2, 0)]);
    assert_eq!(pick(&SedScheduler, &d), Some(0));
    // (2+1)/4 is better than 1/1.
    let d = loaded(&[(1, 0, 0), (4, 2, 0)]);
    assert_eq!(pick(&SedScheduler, &d), Some(1));
    let d = loaded(&[(1, 0, 0), (4, 2, 0)]);
    set_overloaded(&d[1], true);
    assert_eq!(pick(&SedScheduler, &d), Some(0));
}

#[test]
fn nq_takes_the_first_idle_dest_at_once() {
    // An idle dest wins even against a far heavier weight.
    let d = loaded(&[(1, 5, 0), (1, 0, 50), (100, 0, 0)]);
    assert_eq!(pick(&NqScheduler, &d), Some(1));
    // Idle but quiesced or overloaded does not count.
    let d = loaded(&[(0, 0, 0), (1, 0, 0), (5, 1, 0)]);
    set_overloaded(&d[1], true);
    assert_eq!(pick(&NqScheduler, &d), Some(2));
}

#[test]
fn nq_falls_back_to_sed_when_all_are_busy() {
    // (1+1)/1 = 2, (3+1)/4 = 1, (1+1)/2 = 1: the first of the ties.
    let d = loaded(&[(1, 1, 0), (4, 3, 0), (2, 1, 0)]);
    assert_eq!(pick(&NqScheduler, &d), Some(1));
    let d = loaded(&[(0, 0, 0)]);
    assert_eq!(pick(&NqScheduler, &d), None);
}

#[test]
fn fo_picks_the_highest_weight_first_on_ties() {
    let d = loaded(&[(2, 0, 0), (5, 90, 0), (5, 0, 0), (3, 0, 0)]);
    assert_eq!(pick(&FoScheduler, &d), Some(1));
    set_overloaded(&d[1], true);
    assert_eq!(pick(&FoScheduler, &d), Some(2));
    set_overloaded(&d[2], true);
    assert_eq!(pick(&FoScheduler, &d), Some(3));
    let d = loaded(&[(0, 0, 0)]);
    assert_eq!(pick(&FoScheduler, &d), None);
}

#[test]
fn ovf_overflows_when_active_exceeds_weight() {
    let d = loaded(&[(5, 5, 0), (3, 0, 0), (3, 0, 0)]);
    // active = weight is still acceptable.
    assert_eq!(pick(&OvfScheduler, &d), Some(0));
    set_load(&d[0], 6, 0);
    assert_eq!(pick(&OvfScheduler, &d), Some(1));
    set_load(&d[1], 4, 0);
    assert_eq!(pick(&OvfScheduler, &d), Some(2));
    set_overloaded(&d[2], true);
    assert_eq!(pick(&OvfScheduler, &d), None);
}

#[test]
fn twos_with_a_fixed_seed_repeats() {
    let d = dests(&[1, 2, 3, 4]);
    let a = TwosScheduler::with_seed(42);
    let b = TwosScheduler::with_seed(42);
    let run = |s: &TwosScheduler| (0..200).map(|_| pick(s, &d)).collect::<Vec<_>>();
    assert_eq!(run(&a), run(&b));
}

/// Count picks over `n` draws.
fn histogram(s: &TwosScheduler, d: &[Dest], n: usize) -> Vec<usize> {
    let mut counts = vec![0; d.len()];
    for _ in 0..n {
        counts[pick(s, d).unwrap()] += 1;
    }
    counts
}

fn assert_close(counts: &[usize], expected: &[f64], n: usize) {
    for (i, (&c, &p)) in counts.iter().zip(expected).enumerate() {
        let mean = p * n as f64;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (c as f64 - mean).abs() < 5.0 * sd + 1.0,
            "dest {i}: {c} picks, expected {mean:.0} ± {:.0}; all {counts:?}",
            5.0 * sd
        );
    }
}

#[test]
fn twos_equal_loads_follow_weights_with_the_kernel_bias() {
    // T = 1+2+3+4+1 = 11; r in 0..=10; the first dest also gets r = 0.
    let d = dests(&[1, 2, 3, 4]);
    let s = TwosScheduler::with_seed(7);
    let n = 110_000;
    let counts = histogram(&s, &d, n);
    assert_close(
        &counts,
        &[2.0 / 11.0, 2.0 / 11.0, 3.0 / 11.0, 4.0 / 11.0],
        n,
    );
}

#[test]
fn twos_second_choice_wins_when_lighter() {
    // Dest 3 loaded: it is taken only when both draws land on it.
    let d = dests(&[1, 2, 3, 4]);
    set_load(&d[3], 4, 0);
    let s = TwosScheduler::with_seed(99);
    let n = 110_000;
    let counts = histogram(&s, &d, n);
    let p = [2.0 / 11.0, 2.0 / 11.0, 3.0 / 11.0, 4.0 / 11.0];
    let expected: Vec<f64> = (0..4)
        .map(|k| {
            if k == 3 {
                p[3] * p[3]
            } else {
                p[k] * (1.0 + p[3])
            }
        })
        .collect();
    assert_close(&counts, &expected, n);
}

#[test]
fn twos_skips_unusable_dests() {
    let d = dests(&[5, 0, 5]);
    set_overloaded(&d[2], true);
    let s = TwosScheduler::with_seed(1);
    assert_eq!(histogram(&s, &d, 1000), vec![1000, 0, 0]);
    set_overloaded(&d[0], true);
    assert_eq!(pick(&s, &d), None);
}
