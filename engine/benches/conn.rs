//! Connection table benchmarks: lookup at 1 k and 1 M entries (the cost
//! should stay within 2× as the table grows), insert + expire, and the
//! bytes per connection the table costs. First a side-by-side summary
//! (`CONN_BENCH_SUMMARY_ONLY=1` prints only that).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, Criterion};
use uvs_conf::ForwardMethod;
use uvs_engine::conn::{ConnKey, ConnTable, ConnTableConfig, NewConn, MAX_BYTES_PER_CONN};
use uvs_engine::dest::{DestId, DestRegistry};
use uvs_engine::time::Millis;

fn key(n: u32) -> ConnKey {
    ConnKey {
        protocol: 6,
        caddr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n >> 8))),
        cport: 1024 + (n & 0xff) as u16,
        vaddr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 100)),
        vport: 80,
    }
}

fn new_conn<'a>(n: u32, dest: DestId) -> NewConn<'a> {
    NewConn {
        key: key(n),
        fwmark: 0,
        dest,
        daddr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
        dport: 80,
        method: ForwardMethod::Nat,
        controlled_by: None,
    }
}

fn filled(entries: u32) -> (ConnTable, DestId) {
    filled_with_room(entries, entries)
}

fn filled_with_room(entries: u32, capacity: u32) -> (ConnTable, DestId) {
    let registry = Arc::new(DestRegistry::new(4));
    let (dest, _) = registry.allocate(1, 0, 0).expect("room");
    let table = ConnTable::new(
        ConnTableConfig {
            capacity,
            ..ConnTableConfig::default()
        },
        registry,
    );
    for n in 0..entries {
        table.insert(&new_conn(n, dest), Millis(0)).expect("fill");
    }
    (table, dest)
}

fn lookups(c: &mut Criterion) {
    for entries in [1_000u32, 1_000_000] {
        let (table, _) = filled(entries);
        println!(
            "conn table: {entries} entries, {:.1} bytes per connection ({} B entry + index)",
            table.bytes_per_conn(),
            ConnTable::ENTRY_BYTES
        );
        let keys = scattered_keys(entries);
        let mut next = 0usize;
        c.bench_function(&format!("lookup_in hit, {entries} entries"), |b| {
            b.iter(|| {
                next = (next + 1) % keys.len();
                black_box(table.lookup_in(black_box(&keys[next]), Millis(1)).is_some())
            })
        });
        const BATCH: usize = 32;
        let mut batch_start = 0usize;
        let mut results = vec![None; BATCH];
        c.bench_function(
            &format!("lookup_in_batch hit, 32 keys, {entries} entries"),
            |b| {
                b.iter(|| {
                    batch_start = (batch_start + BATCH) % (keys.len() - BATCH);
                    table.lookup_in_batch(
                        black_box(&keys[batch_start..batch_start + BATCH]),
                        Millis(1),
                        &mut results,
                    );
                    black_box(results.iter().filter(|r| r.is_some()).count())
                })
            },
        );
        let mut miss = entries;
        c.bench_function(&format!("lookup_in miss, {entries} entries"), |b| {
            b.iter(|| {
                miss = miss.wrapping_add(1) | 0x8000_0000;
                black_box(table.lookup_in(black_box(&key(miss)), Millis(1)).is_some())
            })
        });
    }
}

fn inserts(c: &mut Criterion) {
    let (table, dest) = filled_with_room(100_000, 100_001);
    let mut n = 1u32 << 24;
    c.bench_function("insert + expire_now, 100 k entries", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let conn = table.insert(&new_conn(n, dest), Millis(0)).ok();
            // Keep the table at its size: remove the entry just made.
            let _ = table.expire_step(Millis(0), 0);
            if let Some(conn) = conn {
                black_box(conn.expire_now(Millis(0)));
            }
        })
    });
}

/// Lookups per timed round of the side-by-side summary.
const SUMMARY_LOOKUPS: usize = 1 << 18;
/// Timed rounds per figure (min and median are printed).
const SUMMARY_ROUNDS: usize = 25;
/// Keys per batch lookup.
const BATCH: usize = 32;

/// Keys of `entries` connections in a scattered order (a stride co-prime
/// with the count), so that consecutive lookups touch unrelated memory.
fn scattered_keys(entries: u32) -> Vec<ConnKey> {
    (0..entries)
        .map(|i| key(((u64::from(i) * 7_919) % u64::from(entries)) as u32))
        .collect()
}

/// Nanoseconds this thread has run: on a machine shared with other
/// work, time spent descheduled is not the table's cost. (Memory stalls
/// are counted: the thread runs while it waits.)
#[cfg(target_os = "linux")]
fn thread_cpu_ns() -> u128 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128
}

/// Wall-clock nanoseconds where thread CPU time is not available.
#[cfg(not(target_os = "linux"))]
fn thread_cpu_ns() -> u128 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos()
}

/// Min and median nanoseconds (of this thread's CPU time) per lookup
/// over the rounds of `round`, which performs `SUMMARY_LOOKUPS` lookups
/// and returns the hits.
fn time_rounds(mut round: impl FnMut() -> usize) -> (f64, f64) {
    round(); // warm-up
    let mut figures: Vec<f64> = (0..SUMMARY_ROUNDS)
        .map(|_| {
            let start = thread_cpu_ns();
            let hits = round();
            let elapsed = thread_cpu_ns() - start;
            assert_eq!(hits, SUMMARY_LOOKUPS, "every lookup must hit");
            elapsed as f64 / SUMMARY_LOOKUPS as f64
        })
        .collect();
    figures.sort_by(f64::total_cmp);
    (figures[0], figures[figures.len() / 2])
}

/// Min and median ns per key of batch lookups of `N` keys.
fn time_batches<const N: usize>(table: &ConnTable, keys: &[ConnKey]) -> (f64, f64) {
    let mut start = 0usize;
    time_rounds(|| {
        let mut hits = 0;
        let mut results = [None; N];
        for _ in 0..SUMMARY_LOOKUPS / N {
            start += N;
            if start + N > keys.len() {
                start = 0;
            }
            table.lookup_in_batch(black_box(&keys[start..start + N]), Millis(1), &mut results);
            hits += results.iter().filter(|r| r.is_some()).count();
        }
        hits
    })
}

/// (single, batch of 32, batch of 64) (min, median) ns per hit lookup
/// in a table of `entries`, and its bytes per connection.
#[allow(clippy::type_complexity)]
fn measure(entries: u32) -> ((f64, f64), (f64, f64), (f64, f64), f64) {
    let (table, _) = filled(entries);
    let keys = scattered_keys(entries);
    let mut next = 0usize;
    let single = time_rounds(|| {
        let mut hits = 0;
        for _ in 0..SUMMARY_LOOKUPS {
            next = if next + 1 == keys.len() { 0 } else { next + 1 };
            hits += usize::from(table.lookup_in(black_box(&keys[next]), Millis(1)).is_some());
        }
        hits
    });
    let batch = time_batches::<BATCH>(&table, &keys);
    let batch_64 = time_batches::<64>(&table, &keys);
    (single, batch, batch_64, table.bytes_per_conn())
}

/// Print ns per lookup at 1 k and 1 M entries side by side, single and
/// batched, with the 1 M / 1 k ratio (issue 3 wants ≤ 2), and the bytes
/// per connection.
fn summary() {
    let (single_1k, batch_1k, batch64_1k, bytes_1k) = measure(1_000);
    let (single_1m, batch_1m, batch64_1m, bytes_1m) = measure(1_000_000);
    println!("conn table lookup_in hits, thread CPU ns per lookup (min / median of {SUMMARY_ROUNDS} rounds of {SUMMARY_LOOKUPS}):");
    println!(
        "  {:<22} {:>17} {:>17} {:>15}",
        "", "1 k entries", "1 M entries", "ratio 1M/1k"
    );
    for (name, small, large) in [
        ("single", single_1k, single_1m),
        ("batch of 32, per key", batch_1k, batch_1m),
        ("batch of 64, per key", batch64_1k, batch64_1m),
    ] {
        println!(
            "  {name:<22} {:>7.1} / {:>7.1} {:>7.1} / {:>7.1} {:>6.2} / {:>6.2}",
            small.0,
            small.1,
            large.0,
            large.1,
            large.0 / small.0,
            large.1 / small.1
        );
    }
    println!(
        "  bytes per connection: {bytes_1k:.1} (1 k), {bytes_1m:.1} (1 M); entry {} B, budget {} B",
        ConnTable::ENTRY_BYTES,
        MAX_BYTES_PER_CONN
    );
}

criterion_group!(benches, lookups, inserts);

/// The side-by-side summary, then the criterion benches (skipped when
/// `CONN_BENCH_SUMMARY_ONLY` is set).
fn main() {
    summary();
    if std::env::var_os("CONN_BENCH_SUMMARY_ONLY").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
}
