//! Per-packet cost of `Engine::process` (criterion): the established
//! path of each forwarding method (client → real server, and for NAT and
//! full NAT the reply too) and the new-connection path (every packet a
//! SYN from a client never seen, scheduled by wlc over 4 real servers).
//!
//! Frames go in batches of `scenario::BATCH` (one `process` call each),
//! copied into their buffer slots first as an I/O backend's receive does;
//! the copy is part of the measured time. Each criterion iteration is one
//! packet, so the reported time is nanoseconds per packet. Frame
//! generation and (for the new path) rebuilding the engine before its
//! table fills are outside the measurement. Every measured packet must be
//! forwarded, or the bench fails.
//!
//! Time is the bench thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not
//! wall time: on a machine shared with other jobs, time spent descheduled
//! would otherwise be billed to the engine. (Cache and TLB pollution by
//! the other jobs still shows.)

mod scenario;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scenario::{Path, BATCH, NEW_CONN_TABLE};
use uvs_engine::lab::OUTSIDE;
use uvs_engine::Worker;

/// Frames generated at a time for the new-connection path.
const NEW_CHUNK: u64 = 8192;

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Linux's `CLOCK_THREAD_CPUTIME_ID`.
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// CPU time consumed by the calling thread so far.
fn thread_cpu_time() -> Duration {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `struct timespec` for the whole
    // call, and clock 3 is the calling thread's CPU clock on Linux.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn per_packet(total: Duration, packets: u64, iters: u64) -> Duration {
    Duration::from_secs_f64(total.as_secs_f64() / packets as f64 * iters as f64)
}

fn established(c: &mut Criterion) {
    let mut group = c.benchmark_group("established");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .throughput(Throughput::Elements(1));
    for (method, path) in scenario::all_scenarios() {
        if path == Path::New {
            continue;
        }
        let (engine, frames, ingress) = scenario::established(method, path);
        let batches: Vec<&[Vec<u8>]> = frames.chunks_exact(BATCH).collect();
        let mut worker = Worker::new();
        let mut slots = scenario::Slots::default();
        let mut batch_no = 0u64;
        group.bench_function(scenario::scenario_name(method, path), |b| {
            b.iter_custom(|iters| {
                let n_batches = iters.div_ceil(BATCH as u64);
                let mut forwarded = 0;
                let start = thread_cpu_time();
                for _ in 0..n_batches {
                    let frames = batches[(batch_no % batches.len() as u64) as usize];
                    let now = scenario::batch_time(batch_no);
                    forwarded +=
                        scenario::run_batch(&engine, &mut worker, &mut slots, frames, ingress, now);
                    batch_no += 1;
                }
                let elapsed = thread_cpu_time() - start;
                let packets = n_batches * BATCH as u64;
                assert_eq!(
                    forwarded as u64, packets,
                    "every measured packet is forwarded"
                );
                per_packet(elapsed, packets, iters)
            })
        });
    }
    group.finish();
}

fn new_connections(c: &mut Criterion) {
    let mut group = c.benchmark_group("new");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    for method in scenario::Method::ALL {
        let mut engine = scenario::engine(method, NEW_CONN_TABLE);
        let mut worker = Worker::new();
        let mut slots = scenario::Slots::default();
        let mut next_client = 0u64;
        let mut batch_no = 0u64;
        group.bench_function(scenario::scenario_name(method, Path::New), |b| {
            b.iter_custom(|iters| {
                let packets = iters.div_ceil(BATCH as u64) * BATCH as u64;
                let mut measured = Duration::ZERO;
                let mut done = 0u64;
                let mut forwarded = 0u64;
                while done < packets {
                    let chunk = (packets - done).min(NEW_CHUNK);
                    if engine.conns().len() as u64 + chunk > u64::from(NEW_CONN_TABLE / 2) {
                        engine = scenario::engine(method, NEW_CONN_TABLE);
                    }
                    let frames = scenario::new_conn_frames(next_client, chunk as usize);
                    next_client += chunk;
                    let start = thread_cpu_time();
                    for batch in frames.chunks_exact(BATCH) {
                        let now = scenario::batch_time(batch_no);
                        forwarded += scenario::run_batch(
                            &engine,
                            &mut worker,
                            &mut slots,
                            batch,
                            OUTSIDE,
                            now,
                        ) as u64;
                        batch_no += 1;
                    }
                    measured += thread_cpu_time() - start;
                    done += chunk;
                }
                assert_eq!(forwarded, packets, "every new connection is forwarded");
                per_packet(measured, packets, iters)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, established, new_connections);
criterion_main!(benches);
