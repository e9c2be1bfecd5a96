//! The AF_XDP backend on real kernels (root): client, director and two
//! real servers in namespaces joined by veth; the director is this test
//! process (a thread in the director namespace starts the backend) or,
//! for the kill -9 test, a copy of this test binary.

mod netns;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use netns::{
    config, config_v6, config_with, director_net, steering, v4, v6, wait_for, Topo, VIP, VIP6,
};
use uvs_engine::io::afxdp::{self, AfXdpConfig};
use uvs_engine::io::{Backend, Steering};
use uvs_engine::Engine;

fn xdp_config() -> AfXdpConfig {
    AfXdpConfig {
        interfaces: vec!["out0".into(), "in1".into(), "in2".into()],
        frames: 1024,
        ring_size: 256,
        ..AfXdpConfig::default()
    }
}

fn start(topo: &Topo, method: &str, rs_port: u16, nat: bool) -> afxdp::AfXdpBackend {
    start_with(
        topo,
        config(method, rs_port),
        steering(nat.then_some(rs_port)),
    )
}

fn start_with(topo: &Topo, config: uvs_conf::Config, steering: Steering) -> afxdp::AfXdpBackend {
    let engine = Arc::new(Engine::new(&config, director_net()).expect("engine"));
    let backend = topo
        .lab
        .in_ns(&topo.dir, move || afxdp::start(engine, &xdp_config()))
        .expect("start the AF_XDP backend");
    backend.steer(&steering).expect("steer");
    backend
}

fn xdp_attached(topo: &Topo, dev: &str) -> bool {
    let out = topo
        .lab
        .exec(&topo.dir, &format!("ip -d link show dev {dev}"));
    out.contains("prog/xdp")
}

/// Whether the XDP program has left every one of `devs` within 5 s.
/// The backend's programs are bpf links, detached when their last file
/// descriptor closes; a test thread forking a child elsewhere in this
/// process holds copies of every descriptor until its exec (CLOEXEC
/// closes them then), so under load the detach can trail `shutdown` by
/// that window. A program that really stays is still reported.
fn detached(topo: &Topo, devs: &[&str]) -> bool {
    wait_for(Duration::from_secs(5), || {
        devs.iter().all(|dev| !xdp_attached(topo, dev))
    })
}

#[test]
fn afxdp_dr_round_robin_and_kernel_path() {
    let mut topo = Topo::new("xd", true);
    topo.servers(true, 80);
    let backend = start(&topo, "dr", 80, false);
    assert_eq!(backend.name(), "af_xdp");
    assert!(xdp_attached(&topo, "out0"));
    let answers = topo.requests(4, 80);
    Topo::assert_rr(&answers);
    topo.assert_kernel_path();
    // TCP to the director's own address (an SSH-like service) stays with
    // the kernel.
    let dir = topo.dir.clone();
    topo.lab.tcp_server(&dir, netns::DIR_OUT, 2222, "director");
    let (ok, out) = topo.lab.tcp_request(&topo.cli, netns::DIR_OUT, 2222, "own");
    assert!(
        ok && out == "director\nown",
        "director's own TCP service: {out}"
    );
    let (redirected, passed) = backend.program_counts();
    assert!(redirected >= 4 * 3, "XDP redirected only {redirected}");
    assert!(passed > 0, "nothing passed to the kernel (ARP, ping)");
    let s = backend.stats();
    assert!(s.tx.load(std::sync::atomic::Ordering::Relaxed) >= 12);
    backend.shutdown();
    assert!(
        detached(&topo, &["out0", "in1"]),
        "program left after shutdown"
    );
}

#[test]
fn afxdp_nat_reply_through_director() {
    let mut topo = Topo::new("xn", false);
    topo.servers(false, 8080);
    let backend = start(&topo, "nat", 8080, true);
    let answers = topo.requests(4, 80);
    Topo::assert_rr(&answers);
    topo.assert_kernel_path();
    backend.shutdown();
}

/// TUN (IPIP) forwarding on AF_XDP, decapsulated on the real servers by
/// the decap role (no ipip module anywhere).
#[test]
fn afxdp_tunnel_mode_with_decap_role() {
    let mut topo = Topo::new("xt", false);
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
    backend.shutdown();
}

/// GUE and GRE tunnels on AF_XDP, decapsulated by the decap role.
#[test]
fn afxdp_gue_and_gre_tunnels_with_decap_role() {
    let mut topo = Topo::new("xu", false);
    topo.servers(true, 80);
    let roles = topo.decap_roles();
    for (extra, n) in [
        ("tun_type = \"gue\"\ntun_port = 6080", 0u64),
        ("tun_type = \"gre\"", 3),
    ] {
        let backend = start_with(&topo, config_with("tun", 80, extra, ""), steering(None));
        let answers = topo.requests(4, 80);
        Topo::assert_rr(&answers);
        for r in &roles {
            assert!(
                r.stats()
                    .delivered
                    .load(std::sync::atomic::Ordering::Relaxed)
                    >= 3 + n,
                "{extra}: {:?}",
                r.stats()
            );
        }
        backend.shutdown();
        // The next tunnel kind starts a backend on the same interfaces:
        // only once the programs have left them (see `detached`: a fork
        // in another test thread can hold the links a moment longer).
        assert!(
            detached(&topo, &["out0", "in1", "in2"]),
            "{extra}: program left after shutdown"
        );
    }
}

/// Full NAT on AF_XDP: the real servers see the director's local address
/// as the source and answer it; replies are steered by the local-address
/// map with its port range.
#[test]
fn afxdp_fullnat_round_trip() {
    let mut topo = Topo::new("xl", false);
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
}

/// Two RX queues on every director interface: two workers, each with its
/// own shared UMEM; traffic arriving on either queue is served.
#[test]
fn afxdp_worker_per_rx_queue() {
    let mut topo = Topo::new("xq", true);
    topo.servers(true, 80);
    for dev in ["out0", "in1", "in2"] {
        topo.lab
            .exec(&topo.dir, &format!("ethtool -L {dev} rx 2 tx 2"));
    }
    // The client's TX queue (chosen by CPU through XPS) is the queue its
    // frames arrive on at the director.
    topo.lab.exec(
        &topo.cli,
        "ethtool -L eth0 rx 2 tx 2 && echo 1 > /sys/class/net/eth0/queues/tx-0/xps_cpus && \
         echo 2 > /sys/class/net/eth0/queues/tx-1/xps_cpus",
    );
    let backend = start(&topo, "dr", 80, false);
    assert_eq!(backend.queues(), 2);
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    let mut answers = Vec::new();
    for i in 0..4 {
        let payload = format!("q{i}");
        let (ok, out) = topo
            .lab
            .tcp_request_on(&topo.cli, VIP, 80, &payload, Some(i % cpus));
        assert!(ok, "request {i}: {out}");
        let (name, body) = out.split_once('\n').unwrap_or(("", ""));
        assert_eq!(body, payload);
        answers.push(name.to_owned());
    }
    Topo::assert_rr(&answers);
    if cpus == 2 {
        for q in 0..2 {
            assert!(backend.queue_rx(q) > 0, "queue {q} got nothing");
        }
    }
    backend.shutdown();
}

/// Overload: a UDP flood to a steered service on the client's core while
/// TCP connections through the VIP and ping to the director go on. The
/// worker keeps serving (batches, no sleep while busy), the kernel keeps
/// its own traffic (ARP/ICMP are never steered), excess is dropped at the
/// rings and counted.
#[test]
fn afxdp_overload_keeps_serving_and_kernel_path() {
    let mut topo = Topo::new("xo", true);
    topo.servers(true, 80);
    let text = format!(
        "[[service]]\nprotocol = \"tcp\"\naddress = \"{VIP}:80\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"{rs1}:80\"\nmethod = \"dr\"\n\
         [[service.real_server]]\naddress = \"{rs2}:80\"\nmethod = \"dr\"\n\
         [[service]]\nprotocol = \"udp\"\naddress = \"{VIP}:9\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"{rs1}:9\"\nmethod = \"dr\"\n",
        rs1 = netns::RS[0],
        rs2 = netns::RS[1]
    );
    let config = uvs_conf::parse_config("overload.toml", &text).expect("config");
    let st = Steering {
        virtual_services: vec![(6, v4(VIP), 80), (17, v4(VIP), 9)],
        ..Steering::default()
    };
    let backend = start_with(&topo, config, st);
    let flood = topo.lab.flood_tool();
    let cli = topo.cli.clone();
    // Two floods, 4 s each, bounded by timeout.
    for _ in 0..2 {
        topo.lab
            .spawn(&cli, &format!("timeout 10 {flood} {VIP} 9 4"));
    }
    // Let the flood ramp up, observed as frames reaching the worker.
    assert!(
        wait_for(Duration::from_secs(3), || backend
            .stats()
            .rx
            .load(std::sync::atomic::Ordering::Relaxed)
            > 10_000),
        "flood never reached the worker"
    );
    let answers = topo.requests(2, 80);
    Topo::assert_rr(&answers);
    topo.assert_kernel_path();
    let rx = backend
        .stats()
        .rx
        .load(std::sync::atomic::Ordering::Relaxed);
    let dropped = backend.socket_stats();
    eprintln!("overload: worker rx {rx}, kernel ring drops {dropped:?}");
    backend.shutdown();
}

/// IPv6 DR on AF_XDP: the XDP program steers IPv6 by its VIP key.
#[test]
fn afxdp_dr_ipv6() {
    let mut topo = Topo::new("x6", true);
    topo.servers(true, 80);
    let st = Steering {
        virtual_services: vec![(6, v6(VIP6), 80)],
        ..Steering::default()
    };
    let backend = start_with(&topo, config_v6(), st);
    let answers = topo.requests_to(VIP6, 4, 80);
    Topo::assert_rr(&answers);
    backend.shutdown();
}

/// A program attached by another tool (netlink, as `ip link ... xdp obj`
/// does) gets an error naming the interface and the remedy.
#[test]
fn afxdp_foreign_program_gets_a_clear_error() {
    let topo = Topo::new("xg", false);
    let obj = concat!(env!("OUT_DIR"), "/steer.bpf.o");
    topo.lab.exec(
        &topo.dir,
        &format!("ip link set dev in2 xdpgeneric obj {obj} sec xdp"),
    );
    let engine = Arc::new(Engine::new(&config("dr", 80), director_net()).expect("engine"));
    let err = topo
        .lab
        .in_ns(&topo.dir, move || afxdp::start(engine, &xdp_config()))
        .expect_err("an interface with a foreign XDP program must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("in2"),
        "error does not name the interface: {msg}"
    );
    assert!(
        msg.contains("ip link set dev in2 xdp off"),
        "no remedy in: {msg}"
    );
    // Nothing of ours stays on the interfaces attached before the error.
    assert!(
        detached(&topo, &["out0", "in1"]),
        "program left after the failed start"
    );
    topo.lab
        .exec(&topo.dir, "ip link set dev in2 xdpgeneric off");
    let backend = start(&topo, "dr", 80, false);
    assert!(xdp_attached(&topo, "in2"));
    backend.shutdown();
}

#[test]
fn afxdp_second_instance_gets_a_clear_error() {
    let topo = Topo::new("xf", false);
    // The interface already carries an XDP program (ours, by link; a
    // netlink-attached one from another tool fails the same way).
    let first = start(&topo, "dr", 80, false);
    let engine = Arc::new(Engine::new(&config("dr", 80), director_net()).expect("engine"));
    let err = topo
        .lab
        .in_ns(&topo.dir, move || afxdp::start(engine, &xdp_config()))
        .expect_err("a second instance on the same interface must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("out0"),
        "error does not name the interface: {msg}"
    );
    assert!(
        msg.contains("ip link set dev out0 xdp off"),
        "no remedy in: {msg}"
    );
    first.shutdown();
}

/// kill -9 of a process running the backend leaves no XDP program, and
/// a new instance starts and serves. The same test body is the helper:
/// with `UVS_IO_HELPER_NS` set it runs the backend until killed.
#[test]
fn afxdp_kill9_leaves_nothing_and_restart_works() {
    if std::env::var_os("UVS_IO_HELPER").is_some() {
        let engine = Arc::new(Engine::new(&config("dr", 80), director_net()).expect("engine"));
        let backend = afxdp::start(engine, &xdp_config()).expect("helper start");
        backend.steer(&steering(None)).expect("helper steer");
        println!("helper-ready");
        // Run until killed; bounded in case the parent died first.
        std::thread::park_timeout(Duration::from_secs(60));
        return;
    }
    let mut topo = Topo::new("xk", true);
    topo.servers(true, 80);
    let exe = std::env::current_exe().expect("test binary");
    let child = Command::new("ip")
        .args(["netns", "exec", &topo.dir])
        .arg(&exe)
        .args([
            "--exact",
            "afxdp_kill9_leaves_nothing_and_restart_works",
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
        wait_for(Duration::from_secs(10), || xdp_attached(&topo, "in2")),
        "helper never attached"
    );
    // Wait until the helper serves (sockets registered, steering set).
    let (ok, out) = (0..20)
        .map(|_| topo.lab.tcp_request(&topo.cli, VIP, 80, "probe"))
        .find(|(ok, _)| *ok)
        .unwrap_or((false, String::new()));
    assert!(ok, "helper did not serve: {out}");
    // `ip netns exec` execs the binary, so pid is the helper itself.
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    assert!(
        wait_for(Duration::from_secs(5), || !xdp_attached(&topo, "out0")
            && !xdp_attached(&topo, "in1")
            && !xdp_attached(&topo, "in2")),
        "XDP program left behind after kill -9"
    );
    let backend = start(&topo, "dr", 80, false);
    let answers = topo.requests(2, 80);
    Topo::assert_rr(&answers);
    backend.shutdown();
}
