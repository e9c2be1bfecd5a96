//! build(): every ipvsadm name builds and schedules; mh's size limit;
//! empty services; a previous instance of another scheduler is ignored.

mod sched_support;

use std::net::{IpAddr, Ipv4Addr};

use sched_support::{any_flow, dest, dests, flow_from};
use uvs_conf::{SchedFlags, SchedulerName};
use uvs_engine::dest::Dest;
use uvs_engine::sched::mh::MH_TABLE_SIZE;
use uvs_engine::sched::{build, SchedError};
use uvs_engine::time::Millis;

#[test]
fn every_scheduler_name_builds_and_picks_a_dest() {
    let d = dests(&[1, 1, 1]);
    for name in SchedulerName::ALL {
        let s = build(name, SchedFlags::default(), &d, None)
            .unwrap_or_else(|e| panic!("{}: {e}", name.as_str()));
        assert_eq!(s.name(), name);
        let flow = flow_from(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)), 5555);
        let pick = s.schedule(&d, &flow, Millis(0));
        assert!(
            matches!(pick, Some(0..=2)),
            "{} picked {pick:?}",
            name.as_str()
        );
    }
}

#[test]
fn every_scheduler_gives_none_for_an_empty_service() {
    for name in SchedulerName::ALL {
        let s = build(name, SchedFlags::default(), &[], None).unwrap();
        assert_eq!(
            s.schedule(&[], &any_flow(), Millis(0)),
            None,
            "{}",
            name.as_str()
        );
    }
}

#[test]
fn every_scheduler_gives_none_when_all_dests_are_quiesced() {
    let d = dests(&[0, 0]);
    for name in SchedulerName::ALL {
        let s = build(name, SchedFlags::default(), &d, None).unwrap();
        assert_eq!(
            s.schedule(&d, &any_flow(), Millis(0)),
            None,
            "{}",
            name.as_str()
        );
    }
}

#[test]
fn mh_refuses_more_than_4093_dests() {
    let many: Vec<Dest> = (0..=MH_TABLE_SIZE as u32)
        .map(|i| {
            let mut d = dest(i, 1, 1);
            d.addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            d
        })
        .collect();
    assert_eq!(
        build(SchedulerName::Mh, SchedFlags::default(), &many, None).unwrap_err(),
        SchedError::TooManyDests {
            count: 4094,
            max: 4093
        }
    );
    let s = build(
        SchedulerName::Mh,
        SchedFlags::default(),
        &many[..MH_TABLE_SIZE],
        None,
    )
    .unwrap();
    assert!(s
        .schedule(&many[..MH_TABLE_SIZE], &any_flow(), Millis(0))
        .is_some());
}

#[test]
fn a_previous_instance_of_another_scheduler_is_ignored() {
    let d = dests(&[4, 3, 2]);
    let wlc = build(SchedulerName::Wlc, SchedFlags::default(), &d, None).unwrap();
    let wrr = build(
        SchedulerName::Wrr,
        SchedFlags::default(),
        &d,
        Some(wlc.as_ref()),
    )
    .unwrap();
    let picks: Vec<_> = (0..9)
        .map(|_| wrr.schedule(&d, &any_flow(), Millis(0)).unwrap())
        .collect();
    assert_eq!(picks, [0, 0, 1, 0, 1, 2, 0, 1, 2]);
}
