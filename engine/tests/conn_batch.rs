//! Batch lookups (`lookup_in_batch`, `lookup_out_batch`) give exactly
//! what the single lookups give: hits, misses, entries past their
//! deadline, removed entries, and entries removed and re-made by another
//! thread while the batch runs.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use uvs_conf::ForwardMethod;
use uvs_engine::conn::{ConnKey, ConnRef, ConnTable, ConnTableConfig, NewConn, ReplyKey};
use uvs_engine::dest::{DestId, DestRegistry};
use uvs_engine::time::Millis;

/// UDP keys, `n` spread over client addresses and ports.
fn key(n: u32) -> ConnKey {
    ConnKey {
        protocol: 17,
        caddr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n >> 4))),
        cport: 2000 + (n & 0xf) as u16,
        vaddr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 100)),
        vport: 53,
    }
}

fn real_server() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))
}

/// The reply tuple of `key(n)` under NAT.
fn reply(n: u32) -> ReplyKey {
    let k = key(n);
    ReplyKey {
        protocol: k.protocol,
        raddr: real_server(),
        rport: 5353,
        daddr: k.caddr,
        dport: k.cport,
    }
}

fn new_conn<'a>(n: u32, dest: DestId) -> NewConn<'a> {
    NewConn {
        key: key(n),
        fwmark: 0,
        dest,
        daddr: real_server(),
        dport: 5353,
        method: ForwardMethod::Nat,
        controlled_by: None,
    }
}

fn table(capacity: u32) -> (ConnTable, DestId) {
    let registry = Arc::new(DestRegistry::new(4));
    let (dest, _) = registry.allocate(1, 0, 0).expect("room");
    let table = ConnTable::new(
        ConnTableConfig {
            capacity,
            ..ConnTableConfig::default()
        },
        registry,
    );
    (table, dest)
}

/// What a lookup result says, comparable across lookups.
fn seen(result: Option<ConnRef<'_>>) -> Option<(ConnKey, u16)> {
    result.map(|conn| {
        let info = conn.info();
        (info.key, info.dport)
    })
}

/// Batch and single lookups of `keys` at `now` agree, for batch sizes
/// below, at and above the internal group and chunk sizes; returns the
/// number of hits.
fn assert_in_batch_matches_single(table: &ConnTable, keys: &[ConnKey], now: Millis) -> usize {
    let single: Vec<_> = keys.iter().map(|k| seen(table.lookup_in(k, now))).collect();
    for batch in [1, 7, 16, 17, 32, 64, 65, 200] {
        let mut out = vec![None; batch];
        for (chunk, expected) in keys.chunks(batch).zip(single.chunks(batch)) {
            table.lookup_in_batch(chunk, now, &mut out);
            let got: Vec<_> = out[..chunk.len()].iter().map(|r| seen(*r)).collect();
            assert_eq!(got, expected, "batch of {batch}");
        }
    }
    single.iter().filter(|s| s.is_some()).count()
}

#[test]
fn batch_hits_and_misses_equal_single_lookups_over_long_chains() {
    // 3000 entries in a table of 4096: chains of several entries.
    let (table, dest) = table(4096);
    for n in 0..3000 {
        table.insert(&new_conn(n, dest), Millis(0)).expect("insert");
    }
    // Hits and misses interleaved, in a scattered order.
    let keys: Vec<ConnKey> = (0..6000u32).map(|i| key((i * 7919) % 6000)).collect();
    let hits = assert_in_batch_matches_single(&table, &keys, Millis(1));
    assert_eq!(hits, 3000);
    let mut out = [None; 4];
    table.lookup_in_batch(
        &[key(5), key(4000), key(2999), key(3000)],
        Millis(1),
        &mut out,
    );
    let found: Vec<bool> = out.iter().map(Option::is_some).collect();
    assert_eq!(found, [true, false, true, false]);
}

#[test]
fn batch_skips_entries_past_their_deadline_like_single_lookups() {
    let (table, dest) = table(1024);
    // Even entries made at 0 s, odd ones at 200 s; UDP lives 300 s.
    for n in 0..600 {
        let made = if n % 2 == 0 { 0 } else { 200_000 };
        table
            .insert(&new_conn(n, dest), Millis(made))
            .expect("insert");
    }
    let keys: Vec<ConnKey> = (0..600).map(key).collect();
    assert_eq!(
        assert_in_batch_matches_single(&table, &keys, Millis(250_000)),
        600
    );
    assert_eq!(
        assert_in_batch_matches_single(&table, &keys, Millis(350_000)),
        300
    );
    let mut out = vec![None; keys.len()];
    table.lookup_in_batch(&keys, Millis(350_000), &mut out);
    for (n, result) in out.iter().enumerate() {
        assert_eq!(result.is_some(), n % 2 == 1, "entry {n}");
    }
    assert_eq!(
        assert_in_batch_matches_single(&table, &keys, Millis(600_000)),
        0
    );
}

#[test]
fn batch_misses_removed_entries_and_finds_their_replacements() {
    let (table, dest) = table(512);
    let conns: Vec<_> = (0..400)
        .map(|n| table.insert(&new_conn(n, dest), Millis(0)).expect("insert"))
        .collect();
    for conn in conns.iter().step_by(3) {
        assert!(conn.expire_now(Millis(1)));
    }
    let keys: Vec<ConnKey> = (0..400).map(key).collect();
    assert_eq!(
        assert_in_batch_matches_single(&table, &keys, Millis(2)),
        266
    );
    // Re-made entries (new generation, same key) are found again.
    for n in (0..400).step_by(3) {
        table
            .insert(&new_conn(n, dest), Millis(3))
            .expect("re-insert");
    }
    assert_eq!(
        assert_in_batch_matches_single(&table, &keys, Millis(4)),
        400
    );
}

#[test]
fn out_batch_equals_single_reply_lookups() {
    let (table, dest) = table(2048);
    for n in 0..1500 {
        table.insert(&new_conn(n, dest), Millis(0)).expect("insert");
    }
    let replies: Vec<ReplyKey> = (0..3000u32).map(|i| reply((i * 7919) % 3000)).collect();
    let single: Vec<_> = replies
        .iter()
        .map(|r| seen(table.lookup_out(r, Millis(1))))
        .collect();
    assert_eq!(single.iter().filter(|s| s.is_some()).count(), 1500);
    for batch in [1, 16, 64, 100] {
        let mut out = vec![None; batch];
        for (chunk, expected) in replies.chunks(batch).zip(single.chunks(batch)) {
            table.lookup_out_batch(chunk, Millis(1), &mut out);
            let got: Vec<_> = out[..chunk.len()].iter().map(|r| seen(*r)).collect();
            assert_eq!(got, expected, "batch of {batch}");
        }
    }
}

#[test]
fn batch_lookups_stay_exact_while_another_thread_removes_and_remakes() {
    // A small index: stable and churning entries share chains, so the
    // batch walks chains that change under it.
    const STABLE: u32 = 48;
    const CHURN: u32 = 16;
    let (table, dest) = table(64);
    for n in 0..STABLE + CHURN {
        table.insert(&new_conn(n, dest), Millis(0)).expect("insert");
    }
    let keys: Vec<ConnKey> = (0..STABLE + CHURN).map(key).collect();
    // The churning thread runs a bounded number of rounds, so that a
    // failing assertion below cannot leave it spinning forever.
    let churning = AtomicBool::new(true);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..2000 {
                for n in STABLE..STABLE + CHURN {
                    if let Some(conn) = table.lookup_in(&key(n), Millis(1)) {
                        conn.expire_now(Millis(1));
                    }
                    let _ = table.insert(&new_conn(n, dest), Millis(1));
                }
            }
            churning.store(false, Ordering::Relaxed);
        });
        let mut out = vec![None; keys.len()];
        let mut batches = 0u32;
        while churning.load(Ordering::Relaxed) || batches < 100 {
            table.lookup_in_batch(&keys, Millis(1), &mut out);
            for (n, (k, result)) in keys.iter().zip(&out).enumerate() {
                let found = seen(*result);
                if (n as u32) < STABLE {
                    assert_eq!(found, Some((*k, 5353)), "stable entry {n} lost");
                } else if let Some((found_key, _)) = found {
                    assert_eq!(found_key, *k, "churning entry {n} mixed up");
                }
            }
            batches += 1;
        }
    });
    assert_eq!(table.stats().lookup_retries_exhausted, 0);
    assert_eq!(table.len(), (STABLE + CHURN) as usize);
}
