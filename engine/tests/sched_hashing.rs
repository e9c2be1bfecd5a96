//! hsiphash against the kernel's test vectors; dh, sh and mh tables and
//! picks against straightforward re-implementations of the kernel's
//! formulas; the port and fallback flags.

mod sched_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sched_support::{dests, flow_from, flow_to, set_overloaded};
use uvs_conf::SchedFlags;
use uvs_engine::dest::Dest;
use uvs_engine::sched::dh::DhScheduler;
use uvs_engine::sched::hash::{hsiphash, hsiphash_u32};
use uvs_engine::sched::mh::{MhScheduler, MH_TABLE_SIZE};
use uvs_engine::sched::sh::ShScheduler;
use uvs_engine::sched::{addr_fold, Scheduler};
use uvs_engine::time::Millis;

/// lib/tests/siphash_kunit.c, `BITS_PER_LONG == 64`.
const HSIPHASH_VECTORS: [u32; 64] = [
    0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140,
    0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956,
    0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123,
    0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc,
    0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91, 0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392,
    0x99e41531, 0x3f1ad944, 0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd,
    0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0, 0x73f0bce6, 0x70a7e980,
    0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0, 0xb7bbb3a8,
];

const KNUTH: u64 = 2_654_435_761;
const MH_K1: [u64; 2] = [2_654_435_761, 2_654_435_761];
const MH_K2: [u64; 2] = [2_654_446_892, 2_654_446_892];

fn v4(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(172, 16, a, b))
}

fn clients() -> impl Iterator<Item = IpAddr> {
    (0..8u8).flat_map(|a| (0..=255u8).step_by(3).map(move |b| v4(a, b)))
}

#[test]
fn hsiphash_matches_the_kernel_test_vectors() {
    let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
    let input: Vec<u8> = (0..64u8).collect();
    for (len, expected) in HSIPHASH_VECTORS.iter().enumerate() {
        assert_eq!(hsiphash(&input[..len], &key), *expected, "length {len}");
    }
    // hsiphash_1u32(0x03020100) is vector 4.
    assert_eq!(hsiphash_u32(0x0302_0100, &key), HSIPHASH_VECTORS[4]);
}

#[test]
fn ipv6_addresses_fold_by_xor_of_words() {
    let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(addr_fold(&IpAddr::V6(a)), 0x2001_0db9);
    let b: Ipv6Addr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
    assert_eq!(
        addr_fold(&IpAddr::V6(b)),
        0x2001_0db8 ^ 0x0001_0002 ^ 0x0003_0004 ^ 0x0005_0006
    );
    assert_eq!(addr_fold(&v4(1, 2)), 0xac10_0102);
}

// ---------- dh ----------

fn dh_bucket(addr: &IpAddr) -> usize {
    ((u64::from(addr_fold(addr)) * KNUTH) & 255) as usize
}

#[test]
fn dh_table_cycles_through_dests_one_bucket_each() {
    let d = dests(&[5, 1, 1]);
    let s = DhScheduler::new(&d);
    let table: Vec<_> = s.bucket_dests().collect();
    for (i, b) in table.iter().enumerate() {
        assert_eq!(*b, Some(i % 3), "bucket {i}");
    }
    for daddr in clients() {
        assert_eq!(
            s.schedule(&d, &flow_to(daddr), Millis(0)),
            Some(dh_bucket(&daddr) % 3)
        );
    }
}

#[test]
fn dh_unusable_dest_gives_no_choice() {
    let mut d = dests(&[1, 1, 1]);
    d[1].weight = 0;
    set_overloaded(&d[2], true);
    let s = DhScheduler::new(&d);
    for daddr in clients() {
        let expected = matches!(dh_bucket(&daddr) % 3, 0).then_some(0);
        assert_eq!(s.schedule(&d, &flow_to(daddr), Millis(0)), expected);
    }
    let empty = DhScheduler::new(&[]);
    assert_eq!(empty.schedule(&[], &flow_to(v4(0, 1)), Millis(0)), None);
}

// ---------- sh ----------

/// Each dest in turn repeated max(weight, 1) times, cycled to 256.
fn sh_reference_table(weights: &[u32]) -> Vec<usize> {
    let cycle: Vec<usize> = weights
        .iter()
        .enumerate()
        .flat_map(|(i, &w)| std::iter::repeat_n(i, w.max(1) as usize))
        .collect();
    cycle.iter().copied().cycle().take(256).collect()
}

fn sh_bucket(addr: &IpAddr, port: u16, offset: u64) -> usize {
    let key = u64::from(u32::from(port).wrapping_add(addr_fold(addr)));
    ((offset + key * KNUTH) & 255) as usize
}

#[test]
fn sh_table_gives_each_dest_weight_consecutive_buckets() {
    let weights = [3, 1, 0, 2, 7];
    let d = dests(&weights);
    let s = ShScheduler::new(&d, SchedFlags::default());
    let table: Vec<_> = s.bucket_dests().map(Option::unwrap).collect();
    assert_eq!(table, sh_reference_table(&weights));
    assert_eq!(&table[..8], &[0, 0, 0, 1, 2, 3, 3, 4]);
}

#[test]
fn sh_hashes_the_client_address() {
    let weights = [3, 1, 2];
    let d = dests(&weights);
    let table = sh_reference_table(&weights);
    let s = ShScheduler::new(&d, SchedFlags::default());
    for saddr in clients() {
        let expected = table[sh_bucket(&saddr, 0, 0)];
        assert_eq!(
            s.schedule(&d, &flow_from(saddr, 1234), Millis(0)),
            Some(expected)
        );
    }
}

#[test]
fn sh_port_adds_the_client_port_for_tcp_udp_sctp_only() {
    let weights = [1, 1, 1, 1, 1];
    let d = dests(&weights);
    let table = sh_reference_table(&weights);
    let flags = SchedFlags {
        flag2: true,
        ..SchedFlags::default()
    };
    let s = ShScheduler::new(&d, flags);
    let mut differs = false;
    for (n, saddr) in clients().enumerate() {
        let sport = 1024 + n as u16 * 7;
        let with_port = table[sh_bucket(&saddr, sport, 0)];
        assert_eq!(
            s.schedule(&d, &flow_from(saddr, sport), Millis(0)),
            Some(with_port)
        );
        differs |= with_port != table[sh_bucket(&saddr, 0, 0)];
        let mut icmp = flow_from(saddr, sport);
        icmp.protocol = 1;
        assert_eq!(
            s.schedule(&d, &icmp, Millis(0)),
            Some(table[sh_bucket(&saddr, 0, 0)])
        );
    }
    assert!(differs, "the port must change some choices");
}

#[test]
fn sh_without_fallback_gives_no_choice_for_an_unusable_dest() {
    let weights = [1, 1, 1];
    let d = dests(&weights);
    set_overloaded(&d[1], true);
    let table = sh_reference_table(&weights);
    let s = ShScheduler::new(&d, SchedFlags::default());
    for saddr in clients() {
        let first = table[sh_bucket(&saddr, 0, 0)];
        let expected = (first != 1).then_some(first);
        assert_eq!(s.schedule(&d, &flow_from(saddr, 1), Millis(0)), expected);
    }
}

#[test]
fn sh_fallback_rehashes_from_the_first_bucket() {
    let weights = [2, 1, 3, 1];
    let mut d = dests(&weights);
    set_overloaded(&d[2], true);
    d[0].weight = 0; // quiesced after the table was laid out below
    let table = sh_reference_table(&weights);
    let s = ShScheduler::new(&dests(&weights), SchedFlags::default());
    assert_eq!(
        s.bucket_dests().map(Option::unwrap).collect::<Vec<_>>(),
        table
    );
    let flags = SchedFlags {
        flag1: true,
        ..SchedFlags::default()
    };
    // Build from the real snapshot: weight 0 still takes one bucket.
    let weights_now = [0, 1, 3, 1];
    let table_now = sh_reference_table(&weights_now);
    let s = ShScheduler::new(&d, flags);
    let usable = |i: usize| i == 1 || i == 3;
    let mut fell_back = 0;
    for saddr in clients() {
        let first_bucket = sh_bucket(&saddr, 0, 0);
        let mut expected = None;
        if usable(table_now[first_bucket]) {
            expected = Some(table_now[first_bucket]);
        } else {
            fell_back += 1;
            for offset in 0..256u64 {
                let roffset = (offset + first_bucket as u64) % 256;
                let candidate = table_now[sh_bucket(&saddr, 0, roffset)];
                if usable(candidate) {
                    expected = Some(candidate);
                    break;
                }
            }
        }
        assert_eq!(
            s.schedule(&d, &flow_from(saddr, 1), Millis(0)),
            expected,
            "{saddr}"
        );
    }
    assert!(fell_back > 0);
}

// ---------- mh ----------

struct RefDest {
    addr: IpAddr,
    port: u16,
    last_weight: u32,
}

fn ref_hash(addr: &IpAddr, port: u16, key: &[u64; 2], offset: u32) -> u64 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr_fold(addr));
    u64::from(hsiphash(&v.to_le_bytes(), key))
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Maglev as the paper describes it, with the kernel's turns rule.
fn mh_reference_table(dests: &[RefDest]) -> Vec<Option<usize>> {
    let m = MH_TABLE_SIZE as u64;
    let mut table = vec![None; MH_TABLE_SIZE];
    let g = dests.iter().map(|d| d.last_weight).fold(0, gcd);
    if g == 0 {
        return table;
    }
    let max = dests.iter().map(|d| d.last_weight).max().unwrap() / g;
    let bits = 32 - max.leading_zeros();
    let shift = bits.saturating_sub(6);
    let perms: Vec<(u64, u64)> = dests
        .iter()
        .map(|d| {
            let offset = ref_hash(&d.addr, d.port, &MH_K1, 0) % m;
            let skip = ref_hash(&d.addr, d.port, &MH_K2, 0) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    let turns: Vec<u32> = dests
        .iter()
        .map(|d| {
            let t = (d.last_weight / g) >> shift;
            if t == 0 {
                u32::from(d.last_weight != 0)
            } else {
                t
            }
        })
        .collect();
    let mut next = vec![0u64; dests.len()];
    let mut filled = 0;
    'fill: loop {
        for i in 0..dests.len() {
            for _ in 0..turns[i] {
                let (offset, skip) = perms[i];
                loop {
                    let c = ((offset + next[i] * skip) % m) as usize;
                    if table[c].is_none() {
                        table[c] = Some(i);
                        break;
                    }
                    next[i] += 1;
                }
                filled += 1;
                if filled == MH_TABLE_SIZE {
                    break 'fill;
                }
            }
        }
    }
    table
}

fn refs(d: &[Dest]) -> Vec<RefDest> {
    d.iter()
        .map(|d| RefDest {
            addr: d.addr,
            port: d.port,
            last_weight: d.weight,
        })
        .collect()
}

fn mh_slot(addr: &IpAddr, port: u16, offset: u32) -> usize {
    (ref_hash(addr, port, &MH_K1, offset) % MH_TABLE_SIZE as u64) as usize
}

#[test]
fn mh_table_matches_the_reference_maglev() {
    for weights in [
        &[1u32, 1, 1][..],
        &[1, 2, 3, 0, 5],
        &[200, 1, 7],
        &[65535, 3],
    ] {
        let d = dests(weights);
        let s = MhScheduler::new(&d, SchedFlags::default(), None).unwrap();
        let table: Vec<_> = s.slot_dests().collect();
        assert_eq!(table, mh_reference_table(&refs(&d)), "weights {weights:?}");
    }
}

#[test]
fn mh_slots_follow_weights() {
    let d = dests(&[1, 2, 0]);
    let s = MhScheduler::new(&d, SchedFlags::default(), None).unwrap();
    let mut counts = [0usize; 3];
    for slot in s.slot_dests() {
        counts[slot.unwrap()] += 1;
    }
    // 1364 rounds of 1 + 2 slots fill 4092; the last slot goes to dest 0.
    assert_eq!(counts, [1365, 2728, 0]);
}

#[test]
fn mh_picks_by_client_address_and_optionally_port() {
    let d = dests(&[1, 1, 1, 1]);
    let table = mh_reference_table(&refs(&d));
    let s = MhScheduler::new(&d, SchedFlags::default(), None).unwrap();
    let flags = SchedFlags {
        flag2: true,
        ..SchedFlags::default()
    };
    let with_port = MhScheduler::new(&d, flags, None).unwrap();
    for (n, saddr) in clients().enumerate() {
        let sport = 2000 + n as u16;
        let flow = flow_from(saddr, sport);
        assert_eq!(
            s.schedule(&d, &flow, Millis(0)),
            table[mh_slot(&saddr, 0, 0)]
        );
        assert_eq!(
            with_port.schedule(&d, &flow, Millis(0)),
            table[mh_slot(&saddr, sport, 0)]
        );
    }
}

#[test]
fn mh_quiesced_dest_keeps_its_slots_but_is_not_picked() {
    let d = dests(&[1, 1, 1]);
    let before = MhScheduler::new(&d, SchedFlags::default(), None).unwrap();
    let mut quiesced = d.clone();
    quiesced[1].weight = 0;
    let after = MhScheduler::new(&quiesced, SchedFlags::default(), Some(&before)).unwrap();
    let table: Vec<_> = after.slot_dests().collect();
    assert_eq!(table, before.slot_dests().collect::<Vec<_>>());
    // Added with weight 0 (no earlier weight): no slots at all.
    let fresh = MhScheduler::new(&quiesced, SchedFlags::default(), None).unwrap();
    assert!(fresh.slot_dests().all(|s| s != Some(1)));

    let fallback = MhScheduler::new(
        &quiesced,
        SchedFlags {
            flag1: true,
            ..SchedFlags::default()
        },
        Some(&before),
    )
    .unwrap();
    let mut fell_back = 0;
    for saddr in clients() {
        let flow = flow_from(saddr, 1);
        let first = mh_slot(&saddr, 0, 0);
        let plain = after.schedule(&quiesced, &flow, Millis(0));
        if table[first] == Some(1) {
            assert_eq!(plain, None);
            fell_back += 1;
            let expected = (0..MH_TABLE_SIZE as u32)
                .map(|off| table[mh_slot(&saddr, 0, (off + first as u32) % MH_TABLE_SIZE as u32)])
                .find(|dest| *dest != Some(1))
                .flatten();
            assert_eq!(fallback.schedule(&quiesced, &flow, Millis(0)), expected);
            assert!(expected.is_some());
        } else {
            assert_eq!(plain, table[first]);
            assert_eq!(fallback.schedule(&quiesced, &flow, Millis(0)), table[first]);
        }
    }
    assert!(fell_back > 0);
}

#[test]
fn mh_all_weights_zero_leaves_the_table_empty() {
    let d = dests(&[0, 0]);
    let s = MhScheduler::new(&d, SchedFlags::default(), None).unwrap();
    assert!(s.slot_dests().all(|slot| slot.is_none()));
    assert_eq!(s.schedule(&d, &flow_from(v4(1, 1), 1), Millis(0)), None);
}
