//! Per-packet cost of `Engine::process` on the established direct-routing
//! path against many flows (criterion): batches of `scenario::BATCH`
//! frames drawn from 1 Mi established IPv4 connections versus 1 Ki, side
//! by side. With 1 Mi flows the connection table and its index are far
//! larger than the caches, so this measures how well the lookup's cache
//! misses are hidden (the batch prefetch pipeline of `Engine::process`);
//! `benches/conn.rs` calls the table directly and does not see it.
//!
//! Frames are visited in a scattered order (a multiplicative permutation
//! of the flow numbers), copied into their buffer slots as an I/O
//! backend's receive does (the copy is measured). Time is the bench
//! thread's CPU time; every measured packet must be forwarded.

mod scenario;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scenario::{Method, BATCH};
use uvs_engine::lab::OUTSIDE;
use uvs_engine::time::Millis;
use uvs_engine::Worker;

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is valid.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

/// The `k`-th flow visited of `flows` (a power of two): an odd
/// multiplier permutes the flow numbers, scattering neighbours.
fn visit(k: u64, flows: u64) -> u64 {
    k.wrapping_mul(0x9e37_79b1) & (flows - 1)
}

/// A direct-routing engine with `flows` established connections and
/// one data frame per connection, in visiting order.
fn established_dr(flows: u64) -> (uvs_engine::Engine, Vec<Vec<u8>>) {
    let engine = scenario::engine(Method::Dr, (flows * 2).max(1 << 16) as u32);
    let mut worker = Worker::new();
    let mut slots = scenario::Slots::default();
    let now = Millis(1_000);
    for flags in [SYN, ACK] {
        let frames: Vec<Vec<u8>> = (0..flows)
            .map(|n| scenario::client_frame(n, flags, b""))
            .collect();
        for batch in frames.chunks_exact(BATCH) {
            let forwarded =
                scenario::run_batch(&engine, &mut worker, &mut slots, batch, OUTSIDE, now);
            assert_eq!(forwarded, BATCH, "setup frames are forwarded");
        }
    }
    let frames = (0..flows)
        .map(|k| scenario::client_frame(visit(k, flows), PSH_ACK, scenario::DATA))
        .collect();
    (engine, frames)
}

fn many_flows(c: &mut Criterion) {
    let mut group = c.benchmark_group("flows");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30)
        .throughput(Throughput::Elements(1));
    for (name, flows) in [("dr_1k", 1u64 << 10), ("dr_1m", 1u64 << 20)] {
        let (engine, frames) = established_dr(flows);
        let batches: Vec<&[Vec<u8>]> = frames.chunks_exact(BATCH).collect();
        let mut worker = Worker::new();
        let mut slots = scenario::Slots::default();
        let mut batch_no = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let n_batches = iters.div_ceil(BATCH as u64);
                let mut forwarded = 0;
                let start = thread_cpu_time();
                for _ in 0..n_batches {
                    let frames = batches[(batch_no % batches.len() as u64) as usize];
                    let now = scenario::batch_time(batch_no);
                    forwarded +=
                        scenario::run_batch(&engine, &mut worker, &mut slots, frames, OUTSIDE, now);
                    batch_no += 1;
                }
                let elapsed = thread_cpu_time() - start;
                let packets = n_batches * BATCH as u64;
                assert_eq!(
                    forwarded as u64, packets,
                    "every measured packet is forwarded"
                );
                Duration::from_secs_f64(elapsed.as_secs_f64() / packets as f64 * iters as f64)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, many_flows);
criterion_main!(benches);
