//! Persistence granularity (`-M`) and persistence engines (`--pe`),
//! driven through `Engine::process` in the lab network: which clients
//! share a persistence template.

// Not every shared fixture re-export is used here.
#[allow(unused_imports)]
mod engine_support;

use std::net::{IpAddr, Ipv4Addr};

use engine_support::*;
use uvs_conf::{ForwardMethod, Netmask, Persistence, Protocol, SchedulerName, ServiceConfig};
use uvs_engine::wire::tcp;
use uvs_engine::Verdict;

fn vip4() -> IpAddr {
    VIP4.into()
}

fn client(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    Ipv4Addr::new(a, b, c, d).into()
}

/// A DR service on VIP4 over real servers 1..=3, round robin, persistent
/// for 300 s with `netmask`.
fn persistent_service(protocol: Protocol, port: u16, netmask: Netmask) -> ServiceConfig {
    let f = Fam::new(false);
    let mut svc = service(
        protocol,
        vip4(),
        port,
        SchedulerName::Rr,
        (1..=3)
            .map(|n| dest(f.rs(n), port, ForwardMethod::Dr, 1))
            .collect(),
    );
    svc.persistence = Some(Persistence {
        timeout: 300,
        netmask,
    });
    svc
}

/// Open a TCP connection from `client:cport` to VIP4:80; the real server.
fn open(lab: &mut Lab, client: IpAddr, cport: u16) -> u8 {
    let out = lab.client_sends(&tcp_in((client, cport), (vip4(), VPORT), tcp::SYN));
    assert_eq!(out.verdict, Verdict::Forward(INSIDE), "SYN from {client}");
    rs_of(&out)
}

fn templates(lab: &Lab) -> Vec<IpAddr> {
    let mut t: Vec<IpAddr> = lab
        .listing()
        .iter()
        .filter(|c| c.info.template)
        .map(|c| c.info.key.caddr)
        .collect();
    t.sort();
    t
}

#[test]
fn non_contiguous_mask_shares_a_template_across_masked_out_bits_only() {
    let mask = Netmask::V4(Ipv4Addr::new(255, 0, 255, 0));
    let mut lab = Lab::new(&config(vec![persistent_service(
        Protocol::Tcp,
        VPORT,
        mask,
    )]));
    let pinned = open(&mut lab, client(203, 0, 1, 5), 1000);
    // Bits the mask drops (second and fourth bytes): the same template.
    for (b, d) in [(7, 9), (113, 200), (255, 1), (0, 5)] {
        assert_eq!(
            open(&mut lab, client(203, b, 1, d), 1001),
            pinned,
            "203.{b}.1.{d} & 255.0.255.0 = 203.0.1.0"
        );
    }
    assert_eq!(templates(&lab), vec![client(203, 0, 1, 0)]);
    // Bits the mask keeps (first or third byte): a template of its own,
    // scheduled afresh (rr moves on to another real server).
    let other_third = open(&mut lab, client(203, 0, 2, 5), 1002);
    assert_ne!(other_third, pinned, "203.0.2.5 is another template");
    let other_first = open(&mut lab, client(198, 0, 1, 5), 1003);
    assert_ne!(other_first, other_third, "198.0.1.5 is a third template");
    assert_eq!(
        templates(&lab),
        vec![
            client(198, 0, 1, 0),
            client(203, 0, 1, 0),
            client(203, 0, 2, 0)
        ]
    );
}

#[test]
fn zero_mask_pins_every_client_to_one_real_server() {
    let mut lab = Lab::new(&config(vec![persistent_service(
        Protocol::Tcp,
        VPORT,
        Netmask::V4(Ipv4Addr::UNSPECIFIED),
    )]));
    let pinned = open(&mut lab, client(203, 0, 113, 7), 1000);
    for n in 1..10u8 {
        assert_eq!(open(&mut lab, client(n, n, n, n), 2000), pinned);
    }
    assert_eq!(templates(&lab), vec![client(0, 0, 0, 0)]);
}

#[test]
fn fwmark_services_key_templates_on_the_masked_client_too() {
    let f = Fam::new(false);
    let mut svc = service(
        Protocol::Tcp,
        vip4(),
        VPORT,
        SchedulerName::Rr,
        (1..=3)
            .map(|n| dest(f.rs(n), 0, ForwardMethod::Dr, 1))
            .collect(),
    );
    svc.key = uvs_conf::ServiceKey::Fwmark {
        mark: 9,
        family: uvs_conf::Family::V4,
    };
    svc.fwmark_match = vec![uvs_conf::FwmarkMatch {
        protocol: None,
        addr_first: vip4(),
        addr_last: vip4(),
        port_first: 0,
        port_last: 65535,
    }];
    svc.persistence = Some(Persistence {
        timeout: 300,
        netmask: Netmask::V4(Ipv4Addr::new(255, 255, 0, 255)),
    });
    let mut lab = Lab::new(&config(vec![svc]));
    let pinned = open(&mut lab, client(203, 0, 1, 5), 1000);
    assert_eq!(open(&mut lab, client(203, 0, 99, 5), 1001), pinned);
    assert_ne!(open(&mut lab, client(203, 0, 1, 6), 1002), pinned);
    assert_eq!(
        templates(&lab),
        vec![client(203, 0, 0, 5), client(203, 0, 0, 6)]
    );
}
