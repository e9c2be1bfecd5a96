//! Connection table benchmarks: lookup at 1 k and 1 M entries (the cost
//! should stay within 2× as the table grows), insert + expire, and the
//! bytes per connection the table costs.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use uvs_conf::ForwardMethod;
use uvs_engine::conn::{ConnKey, ConnTable, ConnTableConfig, NewConn};
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
        // Visit the keys in a scattered order (a stride co-prime with n).
        let keys: Vec<ConnKey> = (0..entries)
            .map(|i| key(((u64::from(i) * 7_919) % u64::from(entries)) as u32))
            .collect();
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

criterion_group!(benches, lookups, inserts);
criterion_main!(benches);
