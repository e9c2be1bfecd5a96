//! The connection table: lookups, UDP, expiry with injected time,
//! templates, thresholds, conn_reuse, table full, full-NAT ports,
//! listing, memory per connection, the destination registry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use uvs_conf::{ForwardMethod, LocalAddrPool};
use uvs_engine::conn::{
    ConnKey, ConnListing, ConnState, ConnTable, ConnTableConfig, Direction, InsertError, NewConn,
    PacketOutcome, ReplyKey, TcpFlags, TcpState, TemplateKey, SWEEP_PERIOD_MS,
};
use uvs_engine::dest::{DestId, DestRegistry};
use uvs_engine::time::Millis;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const VIP: [u8; 4] = [192, 168, 0, 100];

fn vip() -> IpAddr {
    v4(VIP[0], VIP[1], VIP[2], VIP[3])
}

fn rs(n: u8) -> IpAddr {
    v4(10, 1, 0, n)
}

fn key(protocol: u8, cport: u16) -> ConnKey {
    ConnKey {
        protocol,
        caddr: v4(10, 0, 0, 1),
        cport,
        vaddr: vip(),
        vport: 80,
    }
}

fn config(capacity: u32) -> ConnTableConfig {
    ConnTableConfig {
        capacity,
        ..ConnTableConfig::default()
    }
}

fn table_with(config: ConnTableConfig) -> (Arc<DestRegistry>, ConnTable, DestId) {
    let registry = Arc::new(DestRegistry::new(16));
    let (dest, _) = registry.allocate(1, 0, 0).expect("room");
    let table = ConnTable::new(config, Arc::clone(&registry));
    (registry, table, dest)
}

fn conn<'a>(key: ConnKey, dest: DestId, method: ForwardMethod) -> NewConn<'a> {
    NewConn {
        key,
        fwmark: 0,
        dest,
        daddr: rs(2),
        dport: 8080,
        method,
        controlled_by: None,
    }
}

fn syn() -> Option<TcpFlags> {
    Some(TcpFlags {
        syn: true,
        ..TcpFlags::default()
    })
}

fn ack() -> Option<TcpFlags> {
    Some(TcpFlags {
        ack: true,
        ..TcpFlags::default()
    })
}

fn fin() -> Option<TcpFlags> {
    Some(TcpFlags {
        fin: true,
        ..TcpFlags::default()
    })
}

fn listing(table: &ConnTable, now: Millis) -> Vec<ConnListing> {
    let mut rows = Vec::new();
    table.for_each(now, |row| rows.push(*row));
    rows
}

#[test]
fn nat_conn_is_found_by_client_tuple_and_by_reply_tuple() {
    let (_r, table, dest) = table_with(config(64));
    let inserted = table
        .insert(&conn(key(6, 1234), dest, ForwardMethod::Nat), Millis(0))
        .expect("insert");
    let found = table.lookup_in(&key(6, 1234), Millis(1)).expect("in");
    assert_eq!(found.info(), inserted.info());
    assert_eq!(found.info().daddr, rs(2));
    assert_eq!(found.info().dport, 8080);
    assert!(table.lookup_in(&key(6, 1235), Millis(1)).is_none());
    assert!(table.lookup_in(&key(17, 1234), Millis(1)).is_none());
    let reply = ReplyKey {
        protocol: 6,
        raddr: rs(2),
        rport: 8080,
        daddr: v4(10, 0, 0, 1),
        dport: 1234,
    };
    let back = table.lookup_out(&reply, Millis(1)).expect("out");
    assert_eq!(back.info().key, key(6, 1234));
    assert!(table
        .lookup_out(
            &ReplyKey {
                rport: 8081,
                ..reply
            },
            Millis(1)
        )
        .is_none());
    assert_eq!(table.len(), 1);
}

#[test]
fn dr_conn_has_no_reply_tuple_and_ipv6_keys_work() {
    let (_r, table, dest) = table_with(config(64));
    table
        .insert(&conn(key(6, 1), dest, ForwardMethod::Dr), Millis(0))
        .expect("insert");
    let reply = ReplyKey {
        protocol: 6,
        raddr: rs(2),
        rport: 8080,
        daddr: v4(10, 0, 0, 1),
        dport: 1,
    };
    assert!(table.lookup_out(&reply, Millis(0)).is_none());
    let v6_key = ConnKey {
        protocol: 6,
        caddr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        cport: 5,
        vaddr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100)),
        vport: 443,
    };
    let mut new = conn(v6_key, dest, ForwardMethod::Dr);
    new.daddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2));
    table.insert(&new, Millis(0)).expect("v6 insert");
    let found = table.lookup_in(&v6_key, Millis(0)).expect("v6 lookup");
    assert_eq!(found.info().key, v6_key);
    assert_eq!(found.info().daddr, new.daddr);
    // The IPv4 address with the same low bits is another key.
    let mut mapped = v6_key;
    mapped.caddr = IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1));
    assert!(table.lookup_in(&mapped, Millis(0)).is_none());
}

#[test]
fn duplicate_insert_is_refused() {
    let (_r, table, dest) = table_with(config(64));
    table
        .insert(&conn(key(6, 1), dest, ForwardMethod::Dr), Millis(0))
        .expect("insert");
    let again = table.insert(&conn(key(6, 1), dest, ForwardMethod::Dr), Millis(0));
    assert_eq!(again.err(), Some(InsertError::Exists));
    assert_eq!(table.stats().duplicates, 1);
    assert_eq!(table.len(), 1);
}

#[test]
fn udp_conn_stays_inactive_with_the_udp_timeout() {
    let (registry, table, dest) = table_with(config(64));
    let c = table
        .insert(&conn(key(17, 53), dest, ForwardMethod::Nat), Millis(0))
        .expect("insert");
    assert_eq!(c.remaining_ms(Millis(0)), 300_000);
    let counters = registry.counters(dest).expect("dest");
    for (i, dir) in [Direction::Input, Direction::Output, Direction::Input]
        .into_iter()
        .enumerate()
    {
        let now = Millis(1000 * (i as u64 + 1));
        assert_eq!(
            c.on_packet(dir, None, now),
            PacketOutcome::Forward {
                state: ConnState::Udp,
                timeout_secs: 300
            }
        );
        assert_eq!((counters.active(), counters.inactive()), (0, 1));
    }
    table.set_timeouts(uvs_conf::Timeouts {
        tcp: 0,
        tcp_fin: 0,
        udp: 20,
    });
    assert_eq!(
        c.on_packet(Direction::Input, None, Millis(10_000)),
        PacketOutcome::Forward {
            state: ConnState::Udp,
            timeout_secs: 20
        }
    );
    let rows = listing(&table, Millis(10_000));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state_name, "UDP");
    assert_eq!(rows[0].remaining_ms, 20_000);
}

#[test]
fn expired_entry_is_absent_before_any_sweep() {
    let (_r, table, dest) = table_with(config(64));
    table
        .insert(&conn(key(17, 1), dest, ForwardMethod::Nat), Millis(0))
        .expect("insert");
    assert!(table.lookup_in(&key(17, 1), Millis(299_999)).is_some());
    assert!(table.lookup_in(&key(17, 1), Millis(300_000)).is_none());
    assert!(listing(&table, Millis(300_000)).is_empty());
    // The key can be inserted again even before the sweep.
    table
        .insert(&conn(key(17, 1), dest, ForwardMethod::Nat), Millis(300_000))
        .expect("reinsert over an expired entry");
    assert!(table.lookup_in(&key(17, 1), Millis(300_001)).is_some());
}

/// A table of `capacity` filled with TCP connections opened at
/// `opened` (no packet yet: due 2 s later).
fn full_table(capacity: u16) -> (Arc<DestRegistry>, ConnTable, DestId) {
    let (registry, table, dest) = table_with(config(u32::from(capacity)));
    fill(&table, dest, 0, capacity, Millis(0));
    (registry, table, dest)
}

fn fill(table: &ConnTable, dest: DestId, first_port: u16, count: u16, opened: Millis) {
    for port in first_port..first_port + count {
        table
            .insert(&conn(key(6, port), dest, ForwardMethod::Nat), opened)
            .expect("insert");
    }
}

#[test]
fn expire_due_visits_the_table_once_per_period_whatever_the_call_rate() {
    let (_registry, table, _dest) = full_table(1024);
    // Every entry is due (2 s after Millis(0)). The first call only
    // starts the clock.
    let start = Millis(5_000);
    assert_eq!(table.expire_due(start, usize::MAX), 0);
    assert_eq!(table.len(), 1024);
    // Half a period later half of the table is owed.
    let half = Millis(start.0 + SWEEP_PERIOD_MS / 2);
    assert_eq!(table.expire_due(half, usize::MAX), 512);
    // Calling again at the same instant owes nothing.
    assert_eq!(table.expire_due(half, usize::MAX), 0);
    // A bound per call leaves the rest owed to the next call.
    let full = Millis(start.0 + SWEEP_PERIOD_MS);
    assert_eq!(table.expire_due(full, 100), 100);
    assert_eq!(table.expire_due(full, usize::MAX), 412);
    assert!(table.is_empty());
    assert_eq!(table.stats().expired, 1024);
}

#[test]
fn expire_due_after_an_idle_stretch_owes_one_pass_not_one_per_period() {
    let (_registry, table, dest) = full_table(1024);
    let start = Millis(5_000);
    assert_eq!(table.expire_due(start, usize::MAX), 0);
    // A hundred periods without a call: one pass expires everything.
    let late = Millis(start.0 + 100 * SWEEP_PERIOD_MS);
    assert_eq!(table.expire_due(late, usize::MAX), 1024);
    // Refill with entries already due. A quarter period later a quarter
    // of the table is owed, not the 99 passes the idle stretch skipped.
    fill(&table, dest, 2000, 1024, Millis(late.0 - 2_000));
    let later = Millis(late.0 + SWEEP_PERIOD_MS / 4);
    assert_eq!(table.expire_due(later, usize::MAX), 256);
    assert_eq!(table.len(), 768);
}

#[test]
fn expire_step_expires_due_entries_once_with_their_side_effects() {
    let (registry, table, dest) = table_with(config(256));
    let counters = registry.counters(dest).expect("dest");
    for port in 0..10u16 {
        let c = table
            .insert(&conn(key(6, port), dest, ForwardMethod::Nat), Millis(0))
            .expect("insert");
        if port < 4 {
            // Established: active, 900 s.
            c.on_packet(Direction::Input, syn(), Millis(0));
            c.on_packet(Direction::Input, ack(), Millis(0));
        }
    }
    assert_eq!((counters.active(), counters.inactive()), (4, 6));
    let refs_with_conns = counters.refs.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(refs_with_conns, 11, "config + 10 conns");
    // Not due yet: the NONE conns last 2 s.
    assert_eq!(table.expire_step(Millis(1_999), 256), 0);
    // A small budget sweeps part of the table only.
    let mut expired = 0;
    let mut calls = 0;
    while expired < 6 {
        expired += table.expire_step(Millis(2_000), 16);
        calls += 1;
        assert!(calls <= 16, "the sweep must cover the table");
    }
    assert_eq!(expired, 6);
    assert_eq!((counters.active(), counters.inactive()), (4, 0));
    assert_eq!(table.len(), 4);
    assert_eq!(table.stats().expired, 6);
    // Nothing is expired twice.
    assert_eq!(table.expire_step(Millis(2_000), 256), 0);
    assert_eq!(table.expire_step(Millis(900_000), 256), 4);
    assert_eq!((counters.active(), counters.inactive()), (0, 0));
    assert_eq!(counters.refs.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(table.expire_step(Millis(900_000), 256), 0);
    assert!(table.is_empty());
    assert_eq!(table.stats().expired, 10);
    // Out index was cleaned: no reply lookup finds anything.
    let reply = ReplyKey {
        protocol: 6,
        raddr: rs(2),
        rport: 8080,
        daddr: v4(10, 0, 0, 1),
        dport: 1,
    };
    assert!(table.lookup_out(&reply, Millis(0)).is_none());
}

#[test]
fn a_handle_of_an_expired_entry_sees_it_gone_after_reuse() {
    let (_r, table, dest) = table_with(config(1));
    let old = table
        .insert(&conn(key(17, 1), dest, ForwardMethod::Dr), Millis(0))
        .expect("insert");
    assert_eq!(table.expire_step(Millis(300_000), 1), 1);
    let new = table
        .insert(&conn(key(17, 2), dest, ForwardMethod::Dr), Millis(300_000))
        .expect("insert reuses the slot");
    assert_eq!(
        old.on_packet(Direction::Input, None, Millis(300_001)),
        PacketOutcome::Gone
    );
    assert!(matches!(
        new.on_packet(Direction::Input, None, Millis(300_001)),
        PacketOutcome::Forward { .. }
    ));
}

#[test]
fn full_table_refuses_new_conns_and_counts_them() {
    let (_r, table, dest) = table_with(config(3));
    for port in 0..3 {
        table
            .insert(&conn(key(17, port), dest, ForwardMethod::Dr), Millis(0))
            .expect("insert");
    }
    for port in 3..5 {
        let err = table
            .insert(&conn(key(17, port), dest, ForwardMethod::Dr), Millis(0))
            .err();
        assert_eq!(err, Some(InsertError::TableFull));
    }
    assert_eq!(table.stats().full_drops, 2);
    // Nothing was evicted.
    for port in 0..3 {
        assert!(table.lookup_in(&key(17, port), Millis(0)).is_some());
    }
    assert_eq!(table.expire_step(Millis(300_000), 3), 3);
    table
        .insert(&conn(key(17, 9), dest, ForwardMethod::Dr), Millis(300_000))
        .expect("room again after expiry");
}

#[test]
fn memory_is_at_most_128_bytes_per_ipv4_connection() {
    let registry = Arc::new(DestRegistry::new(1));
    // From 8 entries up: the in-index's smallest unit is one 64-byte
    // bucket, more than 16 bytes each to a table of fewer entries.
    for capacity in [8u32, 1000, 1024, 1025, 100_000, 1 << 17] {
        let table = ConnTable::new(config(capacity), Arc::clone(&registry));
        let per_conn = (ConnTable::ENTRY_BYTES * table.capacity() + table.index_bytes()) as f64
            / f64::from(capacity);
        assert!(per_conn <= 128.0, "capacity {capacity}: {per_conn} B");
        assert_eq!(per_conn, table.bytes_per_conn());
        assert_eq!(table.capacity(), capacity as usize);
    }
}

// ---- templates ----------------------------------------------------------

fn template_key() -> TemplateKey {
    TemplateKey {
        protocol: 6,
        caddr_masked: v4(10, 0, 0, 0),
        vaddr: vip(),
        vport: 80,
    }
}

#[test]
fn template_pins_controls_and_is_rearmed_by_each_new_conn() {
    let (registry, table, dest) = table_with(config(64));
    let counters = registry.counters(dest).expect("dest");
    let template = table
        .insert_template(&template_key(), dest, rs(2), 8080, 300, Millis(0))
        .expect("template");
    assert_eq!(counters.persistent(), 1);
    assert_eq!((counters.active(), counters.inactive()), (0, 0));
    assert_eq!(
        template.info().state,
        ConnState::Template { assured: false }
    );

    let found = table
        .lookup_template(&template_key(), Millis(100_000))
        .expect("valid template");
    assert_eq!(found.info().daddr, rs(2));
    let mut new = conn(key(6, 7), dest, ForwardMethod::Dr);
    new.controlled_by = Some(found);
    let controlled = table.insert(&new, Millis(100_000)).expect("controlled");
    assert!(controlled.info().controlled);
    assert_eq!(found.controlled_count(), 1);
    // Re-armed to the full timeout from the new conn's creation.
    assert_eq!(found.remaining_ms(Millis(100_000)), 300_000);

    // The conn becomes established: the template is assured.
    controlled.on_packet(Direction::Input, syn(), Millis(100_000));
    controlled.on_packet(Direction::Input, ack(), Millis(100_000));
    assert_eq!(found.info().state, ConnState::Template { assured: true });

    let rows = listing(&table, Millis(100_000));
    let template_row = rows.iter().find(|r| r.info.template).expect("template row");
    assert_eq!(template_row.state_name, "ASSURED");
    assert_eq!(template_row.info.key.cport, 0);
    assert_eq!(template_row.info.key.caddr, v4(10, 0, 0, 0));
    let conn_row = rows.iter().find(|r| !r.info.template).expect("conn row");
    assert_eq!(conn_row.state_name, "ESTABLISHED");
    assert_eq!(conn_row.remaining_ms, 900_000);
}

#[test]
fn expiring_template_that_still_controls_lives_60s_more() {
    let (registry, table, dest) = table_with(config(64));
    let counters = registry.counters(dest).expect("dest");
    let template = table
        .insert_template(&template_key(), dest, rs(2), 8080, 10, Millis(0))
        .expect("template");
    let mut new = conn(key(6, 7), dest, ForwardMethod::Dr);
    new.controlled_by = Some(template);
    let controlled = table.insert(&new, Millis(0)).expect("controlled");
    controlled.on_packet(Direction::Input, syn(), Millis(0));
    controlled.on_packet(Direction::Input, ack(), Millis(0));

    // At 10 s the template is due but controls the ES conn (900 s).
    assert_eq!(table.expire_step(Millis(10_000), 64), 0);
    assert_eq!(template.remaining_ms(Millis(10_000)), 60_000);
    assert_eq!(table.stats().template_extensions, 1);
    // A lookup past a due-but-controlling template also extends it.
    let later = Millis(70_000);
    let found = table
        .lookup_template(&template_key(), later)
        .expect("still pinned");
    assert_eq!(found.remaining_ms(later), 60_000);

    // The conn closes and expires; the template then expires at its deadline.
    controlled.on_packet(
        Direction::Input,
        Some(TcpFlags {
            rst: true,
            ..TcpFlags::default()
        }),
        later,
    );
    assert_eq!(
        table.expire_step(Millis(80_000), 64),
        1,
        "the conn (CLOSE 10 s)"
    );
    assert_eq!(template.controlled_count(), 0);
    assert_eq!(counters.persistent(), 1);
    assert_eq!(table.expire_step(Millis(130_000), 64), 1, "the template");
    assert_eq!(counters.persistent(), 0);
    assert!(table.is_empty());
    assert!(table
        .lookup_template(&template_key(), Millis(130_000))
        .is_none());
}

#[test]
fn template_of_a_deleted_dest_is_invalid_and_can_be_replaced() {
    let (registry, table, dest) = table_with(config(64));
    table
        .insert_template(&template_key(), dest, rs(2), 8080, 300, Millis(0))
        .expect("template");
    assert!(table.lookup_template(&template_key(), Millis(1)).is_some());
    registry.retire(dest);
    assert!(table.lookup_template(&template_key(), Millis(2)).is_none());
    let (other, _) = registry.allocate(1, 0, 0).expect("room");
    assert_ne!(
        other, dest,
        "the retired slot is still referenced by the template"
    );
    table
        .insert_template(&template_key(), other, rs(3), 8080, 300, Millis(3))
        .expect("a new template replaces the invalid one");
    let found = table
        .lookup_template(&template_key(), Millis(4))
        .expect("new");
    assert_eq!(found.info().daddr, rs(3));
    // The invalid template still expires on its timer and releases its dest.
    assert_eq!(table.expire_step(Millis(300_000), 64), 1);
    assert_eq!(
        registry
            .counters(dest)
            .expect("dest")
            .refs
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn quiescent_template_is_valid_unless_expire_quiescent_template() {
    for expire_quiescent in [false, true] {
        let (registry, table, dest) = table_with(ConnTableConfig {
            expire_quiescent_template: expire_quiescent,
            ..config(64)
        });
        table
            .insert_template(&template_key(), dest, rs(2), 8080, 300, Millis(0))
            .expect("template");
        let counters = registry.counters(dest).expect("dest");
        counters.set_limits(0, 0, 0);
        let found = table.lookup_template(&template_key(), Millis(1));
        assert_eq!(
            found.is_some(),
            !expire_quiescent,
            "expire_quiescent={expire_quiescent}"
        );
        // Overload never breaks a template.
        counters.set_limits(1, 0, 0);
        counters
            .overloaded
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            table.lookup_template(&template_key(), Millis(2)).is_some(),
            !expire_quiescent
        );
    }
}

#[test]
fn fwmark_template_lists_as_protocol_zero() {
    let (_r, table, dest) = table_with(config(64));
    let key = TemplateKey {
        protocol: 0,
        caddr_masked: v4(10, 0, 0, 1),
        vaddr: v4(0, 0, 0, 5),
        vport: 0,
    };
    table
        .insert_template(&key, dest, rs(2), 0, 360, Millis(0))
        .expect("template");
    let rows = listing(&table, Millis(1000));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].info.key.protocol, 0);
    assert_eq!(rows[0].info.key.vaddr, v4(0, 0, 0, 5));
    assert_eq!(rows[0].state_name, "NONE");
    assert_eq!(rows[0].remaining_ms, 359_000);
    // Not visible as a TCP template of the same address.
    assert!(table
        .lookup_template(&TemplateKey { protocol: 6, ..key }, Millis(0))
        .is_none());
}

// ---- thresholds ---------------------------------------------------------

#[test]
fn upper_threshold_sets_overload_and_expiry_clears_by_the_rule() {
    // u = 4, l = 0: set at 4, cleared when total·4 < 12, i.e. total ≤ 2.
    let registry = Arc::new(DestRegistry::new(4));
    let (dest, counters) = registry.allocate(1, 4, 0).expect("room");
    let table = ConnTable::new(config(64), Arc::clone(&registry));
    for port in 0..3 {
        table
            .insert(&conn(key(17, port), dest, ForwardMethod::Dr), Millis(0))
            .expect("insert");
        assert!(!counters.is_overloaded(), "below u after {port}");
    }
    table
        .insert(&conn(key(17, 3), dest, ForwardMethod::Dr), Millis(1000))
        .expect("insert");
    assert!(counters.is_overloaded());
    // Expire the three older ones one by one (budget over the slots in order).
    let c0 = table.lookup_in(&key(17, 0), Millis(0)).expect("c0");
    assert!(c0.expire_now(Millis(0)));
    assert!(counters.is_overloaded(), "total 3: 12 < 12 is false");
    let c1 = table.lookup_in(&key(17, 1), Millis(0)).expect("c1");
    assert!(c1.expire_now(Millis(0)));
    assert!(!counters.is_overloaded(), "total 2: 8 < 12");

    // l = 2: cleared only when total < 2.
    let (dest2, counters2) = registry.allocate(1, 3, 2).expect("room");
    for port in 10..13 {
        table
            .insert(&conn(key(17, port), dest2, ForwardMethod::Dr), Millis(0))
            .expect("insert");
    }
    assert!(counters2.is_overloaded());
    table
        .lookup_in(&key(17, 10), Millis(0))
        .expect("c")
        .expire_now(Millis(0));
    assert!(counters2.is_overloaded(), "total 2 is not < 2");
    table
        .lookup_in(&key(17, 11), Millis(0))
        .expect("c")
        .expire_now(Millis(0));
    assert!(!counters2.is_overloaded(), "total 1 < 2");

    // No thresholds: any expiry clears an overload flag set by hand.
    let (dest3, counters3) = registry.allocate(1, 0, 0).expect("room");
    table
        .insert(&conn(key(17, 20), dest3, ForwardMethod::Dr), Millis(0))
        .expect("insert");
    counters3
        .overloaded
        .store(true, std::sync::atomic::Ordering::Relaxed);
    table
        .lookup_in(&key(17, 20), Millis(0))
        .expect("c")
        .expire_now(Millis(0));
    assert!(!counters3.is_overloaded());
}

// ---- deleted dests and conn_reuse --------------------------------------

#[test]
fn packets_of_a_conn_whose_dest_is_deleted_are_dropped() {
    for expire_nodest in [false, true] {
        let (registry, table, dest) = table_with(ConnTableConfig {
            expire_nodest_conn: expire_nodest,
            ..config(64)
        });
        let c = table
            .insert(&conn(key(6, 1), dest, ForwardMethod::Nat), Millis(0))
            .expect("insert");
        c.on_packet(Direction::Input, syn(), Millis(0));
        assert!(c.dest_available());
        registry.retire(dest);
        assert!(!c.dest_available());
        assert_eq!(
            c.on_packet(Direction::Input, ack(), Millis(1)),
            PacketOutcome::DropNoDest {
                expired: expire_nodest
            }
        );
        assert_eq!(
            table.lookup_in(&key(6, 1), Millis(2)).is_some(),
            !expire_nodest
        );
        let counters = registry.counters(dest).expect("dest");
        if expire_nodest {
            assert_eq!(counters.active(), 0);
            assert_eq!(counters.refs.load(std::sync::atomic::Ordering::Relaxed), 0);
        } else {
            assert_eq!(counters.active(), 1, "SYN_RECV stays counted");
            assert_eq!(c.info().state, ConnState::Tcp(TcpState::SynRecv));
        }
    }
}

/// A DR TCP conn driven into `state` by input packets.
fn conn_in_state<'t>(
    table: &'t ConnTable,
    dest: DestId,
    port: u16,
    flags: &[Option<TcpFlags>],
) -> uvs_engine::conn::ConnRef<'t> {
    let c = table
        .insert(&conn(key(6, port), dest, ForwardMethod::Dr), Millis(0))
        .expect("insert");
    for f in flags {
        c.on_packet(Direction::Input, *f, Millis(0));
    }
    c
}

#[test]
fn conn_reuse_reschedules_syn_on_time_wait_close_and_fin_wait_with_mode_2() {
    let rst = Some(TcpFlags {
        rst: true,
        ..TcpFlags::default()
    });
    for mode in [0u8, 1, 3] {
        let (_r, table, dest) = table_with(ConnTableConfig {
            conn_reuse_mode: mode,
            ..config(64)
        });
        let established = conn_in_state(&table, dest, 1, &[syn(), ack()]);
        let fin_wait = conn_in_state(&table, dest, 2, &[syn(), ack(), fin()]);
        let close = conn_in_state(&table, dest, 3, &[syn(), ack(), rst]);
        assert_eq!(close.info().state, ConnState::Tcp(TcpState::Close));
        assert_eq!(fin_wait.info().state, ConnState::Tcp(TcpState::FinWait));
        assert!(!established.try_reuse_on_syn(Millis(1)));
        assert_eq!(
            fin_wait.try_reuse_on_syn(Millis(1)),
            mode == 3,
            "mode {mode}"
        );
        assert_eq!(close.try_reuse_on_syn(Millis(1)), mode != 0, "mode {mode}");
        // A rescheduled conn is gone; the others stay.
        assert!(table.lookup_in(&key(6, 1), Millis(1)).is_some());
        assert_eq!(table.lookup_in(&key(6, 3), Millis(1)).is_none(), mode != 0);
        assert_eq!(table.lookup_in(&key(6, 2), Millis(1)).is_none(), mode == 3);
    }
    // TIME_WAIT through a NAT close.
    let (_r, table, dest) = table_with(config(64));
    let c = table
        .insert(&conn(key(6, 9), dest, ForwardMethod::Nat), Millis(0))
        .expect("insert");
    for (dir, f) in [
        (Direction::Input, syn()),
        (Direction::Input, ack()),
        (Direction::Input, fin()),
        (Direction::Output, fin()),
    ] {
        c.on_packet(dir, f, Millis(0));
    }
    assert_eq!(c.info().state, ConnState::Tcp(TcpState::TimeWait));
    assert!(c.try_reuse_on_syn(Millis(1)));
    table
        .insert(&conn(key(6, 9), dest, ForwardMethod::Nat), Millis(1))
        .expect("the SYN makes a new conn with the same key");
}

#[test]
fn conn_reuse_spares_controlled_conns_but_not_quiescent_dests_with_expire_nodest() {
    let (registry, table, dest) = table_with(ConnTableConfig {
        expire_nodest_conn: true,
        ..config(64)
    });
    let template = table
        .insert_template(&template_key(), dest, rs(2), 8080, 300, Millis(0))
        .expect("template");
    let mut new = conn(key(6, 1), dest, ForwardMethod::Dr);
    new.controlled_by = Some(template);
    let controlled = table.insert(&new, Millis(0)).expect("controlled");
    for f in [syn(), ack(), fin()] {
        controlled.on_packet(Direction::Input, f, Millis(0));
    }
    controlled.on_packet(Direction::Input, ack(), Millis(0));
    controlled.on_packet(
        Direction::Input,
        Some(TcpFlags {
            rst: true,
            ..TcpFlags::default()
        }),
        Millis(0),
    );
    assert_eq!(controlled.info().state, ConnState::Tcp(TcpState::Close));
    assert!(
        !controlled.try_reuse_on_syn(Millis(1)),
        "controlled: not rescheduled"
    );

    // Weight 0 with expire_nodest_conn: rescheduled even when established.
    let established = conn_in_state(&table, dest, 2, &[syn(), ack()]);
    registry.counters(dest).expect("dest").set_limits(0, 0, 0);
    assert!(established.try_reuse_on_syn(Millis(1)));
    assert!(table.lookup_in(&key(6, 2), Millis(1)).is_none());
}

// ---- full NAT -------------------------------------------------------------

fn fullnat_config(ports: (u16, u16)) -> ConnTableConfig {
    ConnTableConfig {
        fullnat_pool: LocalAddrPool {
            addrs: vec![v4(172, 16, 0, 1)],
            port_first: ports.0,
            port_last: ports.1,
        },
        ..config(64)
    }
}

#[test]
fn fullnat_local_ports_are_unique_exhausted_and_released_on_expiry() {
    let (_r, table, dest) = table_with(fullnat_config((5000, 5003)));
    let mut ports = Vec::new();
    for cport in 0..4u16 {
        let c = table
            .insert(
                &conn(key(17, cport), dest, ForwardMethod::FullNat),
                Millis(0),
            )
            .expect("insert");
        let (laddr, lport) = c.info().local.expect("local");
        assert_eq!(laddr, v4(172, 16, 0, 1));
        assert!((5000..=5003).contains(&lport));
        ports.push(lport);
        // The reply tuple leads back to this conn.
        let reply = ReplyKey {
            protocol: 17,
            raddr: rs(2),
            rport: 8080,
            daddr: laddr,
            dport: lport,
        };
        assert_eq!(
            table
                .lookup_out(&reply, Millis(0))
                .expect("reply")
                .info()
                .key,
            key(17, cport)
        );
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4, "all distinct");
    let err = table
        .insert(&conn(key(17, 4), dest, ForwardMethod::FullNat), Millis(0))
        .err();
    assert_eq!(err, Some(InsertError::FullNatPortsExhausted));
    assert_eq!(table.stats().fullnat_port_exhausted, 1);
    // Another real server has its own tuples: ports can repeat there.
    let mut other = conn(key(17, 5), dest, ForwardMethod::FullNat);
    other.daddr = rs(3);
    table.insert(&other, Millis(0)).expect("other RS");

    let victim = table.lookup_in(&key(17, 2), Millis(0)).expect("c2");
    let freed = victim.info().local.expect("local").1;
    assert!(victim.expire_now(Millis(0)));
    let c = table
        .insert(&conn(key(17, 4), dest, ForwardMethod::FullNat), Millis(0))
        .expect("a port was released");
    assert_eq!(c.info().local.expect("local").1, freed);
}

#[test]
fn fullnat_needs_a_local_address_of_the_real_server_family() {
    let (_r, table, dest) = table_with(fullnat_config((5000, 5003)));
    let mut new = conn(key(6, 1), dest, ForwardMethod::FullNat);
    new.daddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(
        table.insert(&new, Millis(0)).err(),
        Some(InsertError::NoLocalAddress)
    );
    assert!(table.is_empty());
    // The slot went back to the free list: the table can still fill up.
    for port in 0..64 {
        table
            .insert(&conn(key(17, port), dest, ForwardMethod::Dr), Millis(0))
            .expect("insert");
    }
}

// ---- listing ------------------------------------------------------------

#[test]
fn listing_shows_every_live_entry_with_state_and_remaining_time() {
    let (_r, table, dest) = table_with(config(64));
    let tcp = table
        .insert(&conn(key(6, 1), dest, ForwardMethod::Nat), Millis(0))
        .expect("insert");
    tcp.on_packet(Direction::Input, syn(), Millis(0));
    table
        .insert(
            &conn(
                key(17, 2),
                dest,
                ForwardMethod::Tunnel {
                    kind: uvs_conf::TunnelType::Gue { port: 6080 },
                    csum: uvs_conf::TunnelCsum::RemCsum,
                },
            ),
            Millis(0),
        )
        .expect("insert");
    let mut rows = listing(&table, Millis(30_000));
    rows.sort_by_key(|r| r.info.key.cport);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].state_name, "SYN_RECV");
    assert_eq!(rows[0].remaining_ms, 30_000);
    assert_eq!(rows[0].info.method, ForwardMethod::Nat);
    assert_eq!(rows[1].state_name, "UDP");
    assert_eq!(rows[1].remaining_ms, 270_000);
    assert_eq!(
        rows[1].info.method,
        ForwardMethod::Tunnel {
            kind: uvs_conf::TunnelType::Gue { port: 6080 },
            csum: uvs_conf::TunnelCsum::RemCsum,
        }
    );
    assert_eq!(rows[1].info.daddr, rs(2));
    assert!(rows[1].info.no_output);
}

// ---- destination registry ------------------------------------------------

#[test]
fn registry_keeps_deleted_dest_counters_while_conns_refer_to_them() {
    let registry = Arc::new(DestRegistry::new(2));
    let table = ConnTable::new(config(8), Arc::clone(&registry));
    let (a, counters_a) = registry.allocate(1, 0, 0).expect("a");
    let (b, _) = registry.allocate(1, 0, 0).expect("b");
    assert!(registry.allocate(1, 0, 0).is_err(), "full");
    table
        .insert(&conn(key(17, 1), a, ForwardMethod::Dr), Millis(0))
        .expect("insert");
    registry.retire(a);
    assert!(!counters_a.is_available_flag());
    assert!(
        registry.allocate(1, 0, 0).is_err(),
        "a is in the trash, still referenced"
    );
    assert!(registry.revive(a), "re-added while referenced");
    assert!(counters_a.is_available_flag());
    registry.retire(a);
    assert_eq!(counters_a.inactive(), 1);
    assert_eq!(table.expire_step(Millis(300_000), 8), 1);
    assert_eq!(counters_a.inactive(), 0);
    assert!(!registry.revive(a), "no reference left");
    let (again, fresh) = registry.allocate(5, 0, 0).expect("slot reused");
    assert_eq!(again, a);
    assert_eq!(fresh.weight(), 5);
    assert!(fresh.is_available_flag());
    assert_eq!(registry.in_use(), 2);
    let _ = b;
}

#[test]
fn batch_lookup_matches_single_lookups() {
    let (_r, table, dest) = table_with(config(256));
    for port in (0..100u16).step_by(2) {
        table
            .insert(&conn(key(6, port), dest, ForwardMethod::Nat), Millis(0))
            .expect("insert");
    }
    // More keys than one internal group, hits and misses mixed.
    let keys: Vec<ConnKey> = (0..70u16).map(|port| key(6, port)).collect();
    let mut out = vec![None; keys.len()];
    table.lookup_in_batch(&keys, Millis(1), &mut out);
    for (k, result) in keys.iter().zip(&out) {
        let single = table.lookup_in(k, Millis(1)).map(|c| c.info());
        assert_eq!(result.map(|c| c.info()), single, "{k:?}");
        assert_eq!(result.is_some(), k.cport % 2 == 0);
    }
    // A shorter output slice bounds the work.
    let mut short = vec![None; 3];
    table.lookup_in_batch(&keys, Millis(1), &mut short);
    assert!(short[0].is_some() && short[1].is_none() && short[2].is_some());
}

#[test]
fn a_freed_dest_slot_cannot_be_bound() {
    let registry = Arc::new(DestRegistry::new(2));
    let table = ConnTable::new(config(8), Arc::clone(&registry));
    let (dest, counters) = registry.allocate(1, 0, 0).expect("room");
    registry.retire(dest);
    let err = table
        .insert(&conn(key(17, 1), dest, ForwardMethod::Dr), Millis(0))
        .err();
    assert_eq!(err, Some(InsertError::UnknownDest));
    assert_eq!(counters.inactive(), 0);
    assert_eq!(counters.refs.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(
        table
            .insert(&conn(key(17, 1), DestId(99), ForwardMethod::Dr), Millis(0))
            .err(),
        Some(InsertError::UnknownDest)
    );
    assert!(table.is_empty());
}

#[test]
fn the_table_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ConnTable>();
    assert_send_sync::<DestRegistry>();
    let (_r, table, dest) = table_with(config(8));
    let table = Arc::new(table);
    let worker = Arc::clone(&table);
    std::thread::spawn(move || {
        worker
            .insert(&conn(key(17, 1), dest, ForwardMethod::Dr), Millis(0))
            .map(|_| ())
    })
    .join()
    .expect("thread")
    .expect("insert");
    assert!(table.lookup_in(&key(17, 1), Millis(0)).is_some());
}
