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

const SIP_PORT: u16 = 5060;

/// A SIP request carrying `call_id` (no Call-ID header if `None`).
fn sip_message(call_id: Option<&str>) -> Vec<u8> {
    let mut msg = String::from(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.atlanta.example.com\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n",
    );
    if let Some(id) = call_id {
        msg.push_str(&format!("Call-ID: {id}\r\n"));
    }
    msg.push_str("CSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n");
    msg.into_bytes()
}

/// A `--pe sip` UDP service on VIP4:5060 with `netmask`.
fn sip_lab(netmask: Netmask) -> Lab {
    let mut svc = persistent_service(Protocol::Udp, SIP_PORT, netmask);
    svc.persistence_engine = Some(uvs_conf::PersistenceEngine::Sip);
    Lab::new(&config(vec![svc]))
}

/// Send a SIP datagram from `client:cport`; the real server it reached.
fn sip_from(lab: &mut Lab, client: IpAddr, cport: u16, call_id: Option<&str>) -> u8 {
    let out = lab.client_sends(&udp_in(
        (client, cport),
        (vip4(), SIP_PORT),
        &sip_message(call_id),
    ));
    assert_eq!(
        out.verdict,
        Verdict::Forward(INSIDE),
        "datagram from {client}"
    );
    rs_of(&out)
}

/// (masked client, Call-ID) of every template.
fn sip_templates(lab: &Lab) -> Vec<(IpAddr, Option<String>)> {
    let mut t: Vec<_> = lab
        .listing()
        .iter()
        .filter(|c| c.info.template)
        .map(|c| {
            (
                c.info.key.caddr,
                c.pe_data.map(|pe| {
                    assert_eq!(pe.engine, uvs_conf::PersistenceEngine::Sip);
                    String::from_utf8(pe.data().to_vec()).unwrap()
                }),
            )
        })
        .collect();
    t.sort();
    t
}

#[test]
fn sip_one_call_id_from_two_clients_reaches_one_real_server() {
    // -M 0.0.0.0: the Call-ID alone tells calls apart.
    let mut lab = sip_lab(Netmask::V4(Ipv4Addr::UNSPECIFIED));
    let call = "a84b4c76e66710@pc33.atlanta.example.com";
    let first = sip_from(&mut lab, client(203, 0, 113, 7), 5060, Some(call));
    assert_eq!(
        sip_from(&mut lab, client(198, 51, 100, 9), 5062, Some(call)),
        first
    );
    assert_eq!(
        sip_from(&mut lab, client(192, 0, 2, 1), 6000, Some(call)),
        first
    );
    assert_eq!(
        sip_templates(&lab),
        vec![(client(0, 0, 0, 0), Some(call.to_string()))]
    );
    // Other Call-IDs are scheduled afresh: rr spreads them over the rest.
    let second = sip_from(&mut lab, client(203, 0, 113, 7), 5070, Some("call-2"));
    let third = sip_from(&mut lab, client(203, 0, 113, 7), 5071, Some("call-3"));
    let mut used = vec![first, second, third];
    used.sort_unstable();
    assert_eq!(used, vec![1, 2, 3], "three calls over three real servers");
    assert_eq!(sip_templates(&lab).len(), 3);
    // The same call again, from yet another client: still its server.
    assert_eq!(
        sip_from(&mut lab, client(203, 0, 113, 99), 7000, Some("call-3")),
        third
    );
    assert_eq!(lab.engine.conns().pe_stats().in_use, 3);
}

#[test]
fn sip_templates_also_key_on_the_masked_client_as_ipvs_does() {
    // ip_vs_sip_ct_match compares the masked client too: with the default
    // /32 one Call-ID from two clients makes two templates.
    let mut lab = sip_lab(Netmask::V4(Ipv4Addr::BROADCAST));
    let a = sip_from(&mut lab, client(203, 0, 113, 7), 5060, Some("shared"));
    let b = sip_from(&mut lab, client(203, 0, 113, 8), 5060, Some("shared"));
    assert_ne!(a, b, "rr schedules the second client's template afresh");
    assert_eq!(
        sip_templates(&lab),
        vec![
            (client(203, 0, 113, 7), Some("shared".to_string())),
            (client(203, 0, 113, 8), Some("shared".to_string())),
        ]
    );
}

#[test]
fn sip_without_a_call_id_falls_back_to_address_persistence() {
    let mut lab = sip_lab(Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)));
    let pinned = sip_from(&mut lab, client(203, 0, 113, 7), 5060, None);
    // Same /24, no Call-ID: the address template.
    assert_eq!(
        sip_from(&mut lab, client(203, 0, 113, 8), 5060, None),
        pinned
    );
    // Not SIP at all: address persistence too.
    let out = lab.client_sends(&udp_in(
        (client(203, 0, 113, 9), 4000),
        (vip4(), SIP_PORT),
        b"\x00\x01 not sip",
    ));
    assert_eq!(rs_of(&out), pinned);
    // A Call-ID that does not end its line is no key either.
    let out = lab.client_sends(&udp_in(
        (client(203, 0, 113, 10), 4000),
        (vip4(), SIP_PORT),
        b"INVITE sip:x SIP/2.0\r\nCall-ID: abc;x\r\n\r\n",
    ));
    assert_eq!(rs_of(&out), pinned);
    // With a Call-ID, the same /24 gets a Call-ID template of its own
    // (an address template never matches a Call-ID one).
    let with_id = sip_from(&mut lab, client(203, 0, 113, 11), 5060, Some("c1"));
    assert_ne!(with_id, pinned);
    assert_eq!(
        sip_templates(&lab),
        vec![
            (client(203, 0, 113, 0), None),
            (client(203, 0, 113, 0), Some("c1".to_string())),
        ]
    );
}

#[test]
fn sip_call_ids_longer_than_255_bytes_fall_back_and_are_counted() {
    let mut lab = sip_lab(Netmask::V4(Ipv4Addr::UNSPECIFIED));
    let long = "x".repeat(256);
    let a = sip_from(&mut lab, client(203, 0, 113, 7), 5060, Some(&long));
    let b = sip_from(&mut lab, client(198, 51, 100, 7), 5060, Some(&long));
    assert_eq!(a, b, "both on the 0.0.0.0 address template");
    assert_eq!(sip_templates(&lab), vec![(client(0, 0, 0, 0), None)]);
    let stats = lab.engine.conns().pe_stats();
    assert_eq!((stats.call_id_too_long, stats.in_use), (2, 0));
    let reported = uvs_engine::daemon::controller::engine_stats(&lab.engine);
    assert_eq!(
        (reported.sip_call_id_too_long, reported.pe_arena_full),
        (2, 0)
    );
    // 255 bytes is still a key.
    let longest = "y".repeat(255);
    sip_from(&mut lab, client(203, 0, 113, 7), 6000, Some(&longest));
    assert!(sip_templates(&lab).contains(&(client(0, 0, 0, 0), Some(longest))));
}

#[test]
fn sip_engine_is_for_udp_only() {
    let mut svc = persistent_service(Protocol::Tcp, VPORT, Netmask::V4(Ipv4Addr::BROADCAST));
    svc.persistence_engine = Some(uvs_conf::PersistenceEngine::Sip);
    let mut lab = Lab::new(&config(vec![svc]));
    let pinned = open(&mut lab, client(203, 0, 113, 7), 1000);
    assert_eq!(open(&mut lab, client(203, 0, 113, 7), 1001), pinned);
    assert_eq!(templates(&lab), vec![client(203, 0, 113, 7)]);
    assert!(lab.listing().iter().all(|c| c.pe_data.is_none()));
}

#[test]
fn expired_sip_templates_give_their_call_id_slot_back() {
    let mut lab = sip_lab(Netmask::V4(Ipv4Addr::UNSPECIFIED));
    for n in 0..5u8 {
        sip_from(
            &mut lab,
            client(203, 0, 113, n + 1),
            5060,
            Some(&format!("call-{n}")),
        );
    }
    assert_eq!(lab.engine.conns().pe_stats().in_use, 5);
    // UDP conns (300 s) and then templates (300 s) run out.
    lab.advance_secs(301);
    lab.sweep();
    lab.advance_secs(301);
    lab.sweep();
    assert!(lab.listing().is_empty(), "{:?}", lab.listing());
    assert_eq!(lab.engine.conns().pe_stats().in_use, 0);
    // And a new call is pinned again.
    let again = sip_from(&mut lab, client(203, 0, 113, 1), 5060, Some("call-0"));
    assert_eq!(
        sip_from(&mut lab, client(203, 0, 113, 2), 5061, Some("call-0")),
        again
    );
    assert_eq!(lab.engine.conns().pe_stats().in_use, 1);
}

#[test]
fn sip_over_ipv6_keys_on_call_id_and_prefix() {
    let f = Fam::new(true);
    let vip: IpAddr = VIP6.into();
    let mut svc = service(
        Protocol::Udp,
        vip,
        SIP_PORT,
        SchedulerName::Rr,
        (1..=3)
            .map(|n| dest(f.rs(n), SIP_PORT, ForwardMethod::Dr, 1))
            .collect(),
    );
    svc.persistence = Some(Persistence {
        timeout: 300,
        netmask: Netmask::V6(48),
    });
    svc.persistence_engine = Some(uvs_conf::PersistenceEngine::Sip);
    let mut lab = Lab::new(&config(vec![svc]));
    let mut send = |client: IpAddr, cport: u16, call: &str| {
        let out = lab.client_sends(&udp_in(
            (client, cport),
            (vip, SIP_PORT),
            &sip_message(Some(call)),
        ));
        assert_eq!(out.verdict, Verdict::Forward(INSIDE), "{client} {call}");
        rs_of(&out)
    };
    // Two clients in one /48 (2001:db8:c::/48), one call: one server.
    let a = send(f.client_n(1, 1), 5060, "v6-call");
    assert_eq!(send(f.client_n(2, 9), 5060, "v6-call"), a);
    // Another call from the same client: scheduled afresh.
    assert_ne!(send(f.client_n(1, 1), 5061, "v6-other"), a);
    let templates: Vec<_> = lab
        .listing()
        .into_iter()
        .filter(|c| c.info.template)
        .map(|c| (c.info.key.caddr, c.pe_data.map(|p| p.data().to_vec())))
        .collect();
    assert_eq!(templates.len(), 2);
    let net: IpAddr = "2001:db8:c::".parse().unwrap();
    assert!(
        templates.contains(&(net, Some(b"v6-call".to_vec()))),
        "{templates:?}"
    );
}
