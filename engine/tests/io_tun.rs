//! The TUN backend and the decap role on real kernels (root): client,
//! director and two real servers in namespaces joined by veth; the
//! director (and the real servers' decap role) run in this test process,
//! on threads that entered those namespaces.

mod netns;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use netns::{config, config_v6, config_with, director_net, steering, v4, v6, wait_for, Topo, VIP6};
use uvs_engine::io::tun::{self, TunConfig};
use uvs_engine::io::{Backend, Steering};
use uvs_engine::Engine;

fn tun_config() -> TunConfig {
    TunConfig {
        interfaces: vec!["out0".into(), "in1".into(), "in2".into()],
        ..TunConfig::default()
    }
}

fn start(topo: &Topo, method: &str, rs_port: u16, nat: bool) -> tun::TunBackend {
    start_with(
        topo,
        config(method, rs_port),
        steering(nat.then_some(rs_port)),
    )
}

fn start_with(topo: &Topo, config: uvs_conf::Config, steering: Steering) -> tun::TunBackend {
    let engine = Arc::new(Engine::new(&config, director_net()).expect("engine"));
    let backend = topo
        .lab
        .in_ns(&topo.dir, move || tun::start(engine, &tun_config()))
        .expect("start the TUN backend");
    backend.steer(&steering).expect("steer");
    backend
}

fn leftovers(topo: &Topo) -> String {
    let (_, links) = topo.lab.try_exec(&topo.dir, "ip link show dev uvs0");
    let rules = topo.lab.exec(&topo.dir, "ip rule show pref 7710");
    let routes = topo
        .lab
        .exec(&topo.dir, "ip route show table all | grep -c uvs0 || true");
    format!("links: {links}\nrules: {rules}\nroutes: {routes}")
}

fn clean(topo: &Topo) -> bool {
    let (has_dev, _) = topo.lab.try_exec(&topo.dir, "ip link show dev uvs0");
    let rules = topo.lab.exec(&topo.dir, "ip rule show pref 7710");
    let routes = topo.lab.exec(&topo.dir, "ip route show table all");
    !has_dev && rules.trim().is_empty() && !routes.contains("uvs0")
}

#[test]
fn tun_dr_round_robin_and_kernel_path() {
    let mut topo = Topo::new("td", true);
    topo.servers(true, 80);
    let backend = start(&topo, "dr", 80, false);
    assert_eq!(backend.name(), "tun");
    let answers = topo.requests(4, 80);
    Topo::assert_rr(&answers);
    topo.assert_kernel_path();
    let s = backend.stats();
    assert!(
        s.tx_packet.load(std::sync::atomic::Ordering::Relaxed) >= 12,
        "DR frames not sent by packet socket"
    );
    backend.shutdown();
    assert!(clean(&topo), "left behind: {}", leftovers(&topo));
}

/// A new steering replaces routes and rules: what is no longer owned
/// leaves the device.
#[test]
fn tun_steer_replaces_routes_and_rules() {
    let topo = Topo::new("ts", false);
    let backend = start(&topo, "nat", 8080, true);
    let routes = topo.lab.exec(&topo.dir, "ip route show");
    assert!(
        routes.contains(&format!("{} dev uvs0", netns::VIP)),
        "{routes}"
    );
    assert_eq!(
        topo.lab
            .exec(&topo.dir, "ip rule show pref 7710")
            .lines()
            .count(),
        2
    );
    backend.steer(&Steering::default()).expect("steer nothing");
    let routes = topo.lab.exec(&topo.dir, "ip route show");
    assert!(!routes.contains("uvs0"), "{routes}");
    assert_eq!(
        topo.lab.exec(&topo.dir, "ip rule show pref 7710").trim(),
        ""
    );
    backend.steer(&steering(Some(8080))).expect("steer again");
    assert_eq!(
        topo.lab
            .exec(&topo.dir, "ip rule show pref 7710")
            .lines()
            .count(),
        2
    );
    backend.shutdown();
    assert!(clean(&topo), "left behind: {}", leftovers(&topo));
}

/// Full NAT through the TUN backend: the local address is routed into
/// the device, the port range kept by the engine.
#[test]
fn tun_fullnat_round_trip() {
    let mut topo = Topo::new("tl", false);
    topo.servers(false, 8080);
    let local = "198.51.100.100";
    let top = format!("[fullnat]\naddrs = [\"{local}\"]\nport_range = \"20000-29999\"\n");
    let st = Steering {
        fullnat_locals: vec![v4(local)],
        fullnat_ports: (20000, 29999),
        ..steering(None)
    };
    let backend = start_with(&topo, config_with("fullnat", 8080, "", &top), st);
    let answers = topo.requests(4, 80);
    Topo::assert_rr(&answers);
    backend.shutdown();
    assert!(clean(&topo), "left behind: {}", leftovers(&topo));
}

/// IPv6 DR through the TUN backend (a /128 route into the device).
#[test]
fn tun_dr_ipv6() {
    let mut topo = Topo::new("t6", true);
    topo.servers(true, 80);
    let st = Steering {
        virtual_services: vec![(6, v6(VIP6), 80)],
        ..Steering::default()
    };
    let backend = start_with(&topo, config_v6(), st);
    let answers = topo.requests_to(VIP6, 4, 80);
    Topo::assert_rr(&answers);
    backend.shutdown();
    assert!(clean(&topo), "left behind: {}", leftovers(&topo));
}

#[test]
fn tun_nat_reply_through_director() {
    let mut topo = Topo::new("tn", false);
    topo.servers(false, 8080);
    let backend = start(&topo, "nat", 8080, true);
    let rules = topo.lab.exec(&topo.dir, "ip rule show pref 7710");
    assert!(rules.contains("sport 8080"), "no NAT reply rule: {rules}");
    let answers = topo.requests(4, 80);
    Topo::assert_rr(&answers);
    topo.assert_kernel_path();
    backend.shutdown();
    assert!(clean(&topo), "left behind: {}", leftovers(&topo));
}

/// TUN (IPIP) forwarding through the TUN backend, decapsulated on the
/// real servers by the decap role (no ipip module anywhere).
#[test]
fn tun_tunnel_mode_with_decap_role() {
    let mut topo = Topo::new("tt", false);
    topo.servers(true, 80);
    let roles = topo.decap_roles();
    let backend = start(&topo, "tun", 80, false);
    let answers = topo.requests(4, 80);
    Topo::assert_rr(&answers);
    for r in &roles {
        assert!(
            r.stats()
                .delivered
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 3
        );
    }
    // A tunnel from a source that is not a director is refused.
    assert_eq!(
        roles[0]
            .stats()
            .foreign_source
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    backend.shutdown();
    for r in &roles {
        r.shutdown();
    }
}

/// kill -9 of a process running the TUN backend: the device and its
/// routes vanish with it; rules are removed by the next start, which
/// then serves.
#[test]
fn tun_kill9_then_restart_cleans_and_serves() {
    if std::env::var_os("UVS_IO_HELPER").is_some() {
        let engine = Arc::new(Engine::new(&config("nat", 8080), director_net()).expect("engine"));
        let backend = tun::start(engine, &tun_config()).expect("helper start");
        backend.steer(&steering(Some(8080))).expect("helper steer");
        std::thread::park_timeout(Duration::from_secs(60));
        return;
    }
    let mut topo = Topo::new("tk", false);
    topo.servers(false, 8080);
    let exe = std::env::current_exe().expect("test binary");
    let child = Command::new("ip")
        .args(["netns", "exec", &topo.dir])
        .arg(&exe)
        .args([
            "--exact",
            "tun_kill9_then_restart_cleans_and_serves",
            "--nocapture",
        ])
        .env("UVS_IO_HELPER", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn helper");
    let pid = child.id();
    topo.lab.adopt(child);
    assert!(
        wait_for(Duration::from_secs(10), || topo
            .lab
            .exec(&topo.dir, "ip rule show pref 7710")
            .contains("sport 8080")),
        "helper never installed its rules"
    );
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    assert!(
        wait_for(Duration::from_secs(5), || !topo
            .lab
            .try_exec(&topo.dir, "ip link show dev uvs0")
            .0),
        "TUN device left after kill -9"
    );
    let backend = start(&topo, "nat", 8080, true);
    let rules = topo.lab.exec(&topo.dir, "ip rule show pref 7710");
    assert_eq!(rules.lines().count(), 2, "stale rules kept: {rules}");
    let answers = topo.requests(2, 80);
    Topo::assert_rr(&answers);
    backend.shutdown();
    assert!(clean(&topo), "left behind: {}", leftovers(&topo));
}
