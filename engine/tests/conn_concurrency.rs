//! The table under concurrent use: lock-free lookups while other threads
//! insert, expire and sweep; racing inserts and expiries.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use uvs_conf::ForwardMethod;
use uvs_engine::conn::{ConnKey, ConnTable, ConnTableConfig, InsertError, NewConn, ReplyKey};
use uvs_engine::dest::{DestId, DestRegistry};
use uvs_engine::time::Millis;

fn key(cport: u16) -> ConnKey {
    ConnKey {
        protocol: 17,
        caddr: IpAddr::V4(Ipv4Addr::new(10, 0, (cport >> 8) as u8, cport as u8)),
        cport,
        vaddr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 100)),
        vport: 53,
    }
}

fn new_conn<'a>(cport: u16, dest: DestId) -> NewConn<'a> {
    NewConn {
        key: key(cport),
        fwmark: 0,
        dest,
        daddr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
        dport: 53,
        method: ForwardMethod::Nat,
        controlled_by: None,
    }
}

fn setup(capacity: u32) -> (Arc<DestRegistry>, ConnTable, DestId) {
    let registry = Arc::new(DestRegistry::new(4));
    let (dest, _) = registry.allocate(1, 0, 0).expect("room");
    let table = ConnTable::new(
        ConnTableConfig {
            capacity,
            ..ConnTableConfig::default()
        },
        Arc::clone(&registry),
    );
    (registry, table, dest)
}

#[test]
fn lookups_never_lose_or_invent_entries_while_others_churn() {
    const STABLE: u16 = 400;
    const CHURN_BASE: u16 = 10_000;
    const CHURN: u16 = 600;
    const ABSENT_BASE: u16 = 50_000;
    // A small table so churned entries reuse slots and share buckets
    // with the stable ones.
    let (registry, table, dest) = setup(1024);
    for cport in 0..STABLE {
        table
            .insert(&new_conn(cport, dest), Millis(0))
            .expect("stable");
    }
    let done = AtomicBool::new(false);
    let lookups = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 0..60u32 {
                let mut refs = Vec::with_capacity(usize::from(CHURN));
                for cport in CHURN_BASE..CHURN_BASE + CHURN {
                    refs.push(
                        table
                            .insert(&new_conn(cport, dest), Millis(0))
                            .expect("churn insert"),
                    );
                }
                for (i, conn) in refs.iter().enumerate() {
                    // Half by handle, half by the sweep path via expire_now on a lookup.
                    if (i + round as usize).is_multiple_of(2) {
                        assert!(conn.expire_now(Millis(0)));
                    } else {
                        let found = table
                            .lookup_in(&conn.info().key, Millis(0))
                            .expect("own entry");
                        assert!(found.expire_now(Millis(0)));
                    }
                }
            }
            done.store(true, Ordering::Release);
        });
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                // Nothing is due at t = 0: the sweep must expire nothing.
                assert_eq!(table.expire_step(Millis(0), 128), 0);
            }
        });
        scope.spawn(|| {
            let mut round = 0u32;
            while !done.load(Ordering::Acquire) || round < 3 {
                for cport in 0..STABLE {
                    let found = table
                        .lookup_in(&key(cport), Millis(0))
                        .expect("no lost entry");
                    assert_eq!(found.info().key, key(cport), "no torn read");
                    let reply = ReplyKey {
                        protocol: 17,
                        raddr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
                        rport: 53,
                        daddr: key(cport).caddr,
                        dport: cport,
                    };
                    let back = table.lookup_out(&reply, Millis(0)).expect("no lost reply");
                    assert_eq!(back.info().key, key(cport));
                }
                for cport in CHURN_BASE..CHURN_BASE + CHURN {
                    if let Some(found) = table.lookup_in(&key(cport), Millis(0)) {
                        assert_eq!(found.info().key, key(cport), "no phantom");
                    }
                }
                for cport in ABSENT_BASE..ABSENT_BASE + 100 {
                    assert!(
                        table.lookup_in(&key(cport), Millis(0)).is_none(),
                        "never inserted"
                    );
                }
                lookups.fetch_add(usize::from(STABLE) * 2, Ordering::Relaxed);
                round += 1;
            }
        });
    });
    assert!(lookups.load(Ordering::Relaxed) >= usize::from(STABLE) * 6);
    assert_eq!(table.len(), usize::from(STABLE));
    let counters = registry.counters(dest).expect("dest");
    assert_eq!(counters.inactive(), u32::from(STABLE));
    assert_eq!(table.stats().expired, 60 * u64::from(CHURN));
    assert_eq!(table.stats().lookup_retries_exhausted, 0);
}

#[test]
fn lookups_in_a_tiny_table_survive_immediate_slot_reuse() {
    // 64 stable entries and 32 churning ones in 128 slots and 128 buckets
    // per index: a freed slot is reused at once (the free list is LIFO),
    // usually in another bucket, while readers may stand on it.
    const STABLE: u16 = 64;
    let (_registry, table, dest) = setup(128);
    for cport in 0..STABLE {
        table
            .insert(&new_conn(cport, dest), Millis(0))
            .expect("stable");
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 0..20_000u32 {
                let cport = 1000 + (round % 32) as u16;
                let conn = table
                    .insert(&new_conn(cport, dest), Millis(0))
                    .expect("churn");
                let stale = 1000 + ((round + 16) % 32) as u16;
                if let Some(old) = table.lookup_in(&key(stale), Millis(0)) {
                    assert!(old.expire_now(Millis(0)));
                }
                let _ = conn;
            }
            done.store(true, Ordering::Release);
        });
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                for cport in 0..STABLE {
                    let found = table
                        .lookup_in(&key(cport), Millis(0))
                        .expect("no lost entry");
                    assert_eq!(found.info().key, key(cport));
                }
            }
        });
    });
    assert_eq!(table.stats().lookup_retries_exhausted, 0);
}

#[test]
fn racing_inserts_of_one_key_leave_exactly_one_entry() {
    let (registry, table, dest) = setup(4096);
    for cport in 0..200u16 {
        let wins = AtomicUsize::new(0);
        let exists = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| match table.insert(&new_conn(cport, dest), Millis(0)) {
                    Ok(_) => {
                        wins.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(InsertError::Exists) => {
                        exists.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(other) => panic!("unexpected {other}"),
                });
            }
        });
        assert_eq!(wins.load(Ordering::Relaxed), 1, "cport {cport}");
        assert_eq!(exists.load(Ordering::Relaxed), 1);
    }
    assert_eq!(table.len(), 200);
    assert_eq!(registry.counters(dest).expect("dest").inactive(), 200);
}

#[test]
fn racing_expiries_run_side_effects_once() {
    let (registry, table, dest) = setup(4096);
    let counters = registry.counters(dest).expect("dest");
    for cport in 0..1000u16 {
        table
            .insert(&new_conn(cport, dest), Millis(0))
            .expect("insert");
    }
    let expired_by_handles = AtomicUsize::new(0);
    let expired_by_sweeps = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for cport in 0..1000u16 {
                if let Some(conn) = table.lookup_in(&key(cport), Millis(0)) {
                    if conn.expire_now(Millis(0)) {
                        expired_by_handles.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..64 {
                    let n = table.expire_step(Millis(1_000_000), 64);
                    expired_by_sweeps.fetch_add(n, Ordering::Relaxed);
                }
            });
        }
    });
    let total =
        expired_by_handles.load(Ordering::Relaxed) + expired_by_sweeps.load(Ordering::Relaxed);
    assert_eq!(total, 1000);
    assert_eq!(table.stats().expired, 1000);
    assert!(table.is_empty());
    assert_eq!(counters.inactive(), 0);
    assert_eq!(counters.refs.load(Ordering::Relaxed), 1);
}
