//! The daemon's control plane driven in-process over the in-memory
//! backend with real frames: commands steer the backend and reach the
//! engine, traffic shows in the listings (counters, connections), the
//! rate estimator turns it into IPVS's rates, and `-Z` rebases.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use uvs_conf::control::{Command, ErrorCode, Response, ServiceSpec, ServiceStatus};
use uvs_conf::{
    Config, DestConfig, ForwardMethod, Protocol, SchedFlags, SchedulerName, ServiceKey,
};
use uvs_engine::daemon::Controller;
use uvs_engine::io::mem::MemBackend;
use uvs_engine::io::Backend;
use uvs_engine::lab::{self, INSIDE, OUTSIDE};
use uvs_engine::time::Millis;
use uvs_engine::wire::build::PacketBuilder;
use uvs_engine::wire::tcp;
use uvs_engine::{Engine, Verdict};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

fn key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: VIP.into(),
        port: 80,
    }
}

fn server(n: u8) -> DestConfig {
    DestConfig {
        addr: lab::real_server4(n).into(),
        port: 80,
        method: ForwardMethod::Dr,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn syn(cport: u16) -> Vec<u8> {
    PacketBuilder::new()
        .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
        .ipv4(CLIENT, VIP)
        .tcp(cport, 80)
        .flags(tcp::SYN)
        .build()
}

fn setup() -> (Controller, MemBackend) {
    let config = Config::default();
    let engine = Arc::new(Engine::new(&config, lab::net_view(2)).unwrap());
    let backend = MemBackend::new(
        Arc::clone(&engine),
        &["outside".to_string(), "inside".to_string()],
    );
    let mut controller = Controller::new(config, None, engine, Box::new(backend.clone())).unwrap();
    let spec = ServiceSpec {
        key: key(),
        scheduler: SchedulerName::Rr,
        flags: SchedFlags::default(),
        persistence: None,
        persistence_engine: None,
        one_packet: false,
        fwmark_match: Vec::new(),
    };
    assert_eq!(
        controller.handle(Command::AddService { service: spec }),
        Response::Ok
    );
    for n in [1, 2] {
        assert_eq!(
            controller.handle(Command::AddServer {
                service: key(),
                server: server(n),
            }),
            Response::Ok
        );
    }
    (controller, backend)
}

fn listed(controller: &mut Controller) -> ServiceStatus {
    match controller.handle(Command::ListServices {
        service: Some(key()),
    }) {
        Response::Services { mut services } => services.remove(0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn commands_steer_the_backend_and_traffic_reaches_the_real_servers() {
    let (mut controller, backend) = setup();
    assert_eq!(
        backend.steering().virtual_services,
        vec![(6, IpAddr::V4(VIP), 80)]
    );
    let now = Millis::now();
    let verdicts = backend.receive(OUTSIDE, &[&syn(40000), &syn(40001)], now);
    assert_eq!(verdicts, vec![Verdict::Forward(INSIDE); 2]);
    let out = backend.take_transmitted();
    let mut macs: Vec<u8> = out
        .iter()
        .map(|(_, f)| lab::real_server_of_mac(&f[0..6]).unwrap())
        .collect();
    macs.sort();
    assert_eq!(macs, vec![1, 2], "rr gave one connection to each");

    // Traffic the engine does not own never reaches it.
    let other = PacketBuilder::new()
        .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
        .ipv4(CLIENT, lab::DIRECTOR_OUT4)
        .tcp(40002, 22)
        .flags(tcp::SYN)
        .build();
    assert!(backend.receive(OUTSIDE, &[&other], now).is_empty());
    assert_eq!(backend.take_passed().len(), 1);

    // A TCP packet that is no SYN and matches no connection: dropped.
    let stray = PacketBuilder::new()
        .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
        .ipv4(CLIENT, VIP)
        .tcp(40003, 80)
        .flags(tcp::ACK)
        .build();
    assert_eq!(
        backend.receive(OUTSIDE, &[&stray], now),
        vec![Verdict::Drop(uvs_engine::DropReason::NoConnection)]
    );
    match controller.handle(Command::GetEngineStats) {
        Response::EngineStats { stats } => {
            assert_eq!(stats.forwarded, 2);
            assert_eq!(stats.new_conns, 2);
            assert_eq!(stats.drops.get("no_connection"), Some(&1));
            assert_eq!(stats.drops.get("no_dest"), Some(&0));
            assert_eq!(stats.drops.len(), uvs_engine::DropReason::ALL.len());
            assert_eq!(stats.conn_entries, 2);
            assert!(stats.conn_capacity >= 1 << 20);
        }
        other => panic!("{other:?}"),
    }

    // Listings: counters, connections.
    let svc = listed(&mut controller);
    assert_eq!(svc.counters.conns, 2);
    assert_eq!(svc.counters.in_pkts, 2);
    assert_eq!(svc.counters.in_bytes, 2 * 40);
    // SYN_RECV is an active state (current kernels' tcp_state_active).
    for s in &svc.servers {
        assert_eq!((s.active_conns, s.inactive_conns), (1, 0));
    }
    match controller.handle(Command::ListConnections) {
        Response::Connections { connections } => {
            assert_eq!(connections.len(), 2);
            for c in &connections {
                assert_eq!(c.client, IpAddr::V4(CLIENT));
                assert_eq!(c.virtual_addr, IpAddr::V4(VIP));
                assert_eq!(c.state, "SYN_RECV");
                assert!(!c.template);
                assert!(c.expires_secs > 0 && c.expires_secs <= 60);
            }
        }
        other => panic!("{other:?}"),
    }

    // A deleted service is no longer steered.
    let calls = backend.steer_calls();
    assert_eq!(
        controller.handle(Command::DeleteService { key: key() }),
        Response::Ok
    );
    assert_eq!(backend.steer_calls(), calls + 1);
    assert!(backend.steering().virtual_services.is_empty());
    // Reads do not steer again.
    controller.handle(Command::ListServices { service: None });
    assert_eq!(backend.steer_calls(), calls + 1);
}

#[test]
fn the_estimator_turns_traffic_into_ipvs_rates_and_zero_rebases() {
    let (mut controller, backend) = setup();
    let now = Millis::now();
    let frames: Vec<Vec<u8>> = (0..10).map(|i| syn(41000 + i)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    backend.receive(OUTSIDE, &refs, now);
    controller.tick();
    // 10 conns, 10 packets, 400 bytes in one 2 s tick:
    // conns/pkts: avg = (10·512) >> 2 = 1280 → (1280 + 511) >> 10 = 1;
    // bytes: avg = (400·16) >> 2 = 1600 → (1600 + 15) >> 5 = 50.
    let svc = listed(&mut controller);
    assert_eq!(svc.rates.cps, 1);
    assert_eq!(svc.rates.in_pps, 1);
    assert_eq!(svc.rates.in_bps, 50);
    assert_eq!(svc.rates.out_pps, 0);
    // Each real server got 5: avg = (5·512) >> 2 = 640 → 1 (rounded).
    for s in &svc.servers {
        assert_eq!(s.counters.conns, 5);
        assert_eq!(s.rates.cps, 1);
        assert_eq!(s.rates.in_bps, 25);
    }

    // -Z: counters and rates start again from zero; connections stay.
    assert_eq!(
        controller.handle(Command::Zero {
            service: Some(key())
        }),
        Response::Ok
    );
    let svc = listed(&mut controller);
    assert_eq!(svc.counters, Default::default());
    assert_eq!(svc.rates, Default::default());
    for s in &svc.servers {
        assert_eq!(s.counters, Default::default());
        assert_eq!(s.active_conns, 5);
    }
    // The next tick sees only what came after the zero.
    controller.tick();
    assert_eq!(listed(&mut controller).rates, Default::default());
    backend.receive(OUTSIDE, &[&syn(42000)], now);
    let svc = listed(&mut controller);
    assert_eq!(svc.counters.conns, 1);
    assert_eq!(svc.counters.in_bytes, 40);

    assert_eq!(
        match controller.handle(Command::Zero {
            service: Some(ServiceKey::Fwmark {
                mark: 7,
                family: uvs_conf::Family::V4
            })
        }) {
            Response::Error { code, .. } => code,
            other => panic!("{other:?}"),
        },
        ErrorCode::NoService
    );
}

#[test]
fn a_refused_change_leaves_engine_backend_and_config_alone() {
    let (mut controller, backend) = setup();
    let before = controller.config().clone();
    let steering = backend.steering();
    let calls = backend.steer_calls();
    let mut bad = server(3);
    bad.weight = 100_000;
    match controller.handle(Command::AddServer {
        service: key(),
        server: bad,
    }) {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::Invalid),
        other => panic!("{other:?}"),
    }
    assert_eq!(controller.config(), &before);
    assert_eq!(backend.steering(), steering);
    assert_eq!(backend.steer_calls(), calls);
    assert_eq!(controller.engine().snapshot().services()[0].dests.len(), 2);
    backend.shutdown();
    assert!(backend.is_shut_down());
}
