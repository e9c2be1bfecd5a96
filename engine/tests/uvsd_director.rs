//! The real `uvsd` binary as a director (root; namespaces): started in a
//! director namespace with a config file, on each backend, it balances a
//! client's TCP connections to a virtual address on the client's own
//! subnet over two DR real servers. Nobody holds a static ARP entry: the
//! director answers ARP for the virtual address (a local address under
//! AF_XDP, proxy ARP under TUN) and resolves the real servers' MACs
//! itself, also after its neighbour table is flushed (the engine's
//! `no_neighbour` drops trigger a solicitation; the client's SYN
//! retransmission then gets through). SIGTERM undoes every kernel change.

mod netns;
mod uvsd_support;

use std::time::{Duration, Instant};

use netns::{mac_str, Topo, MAC_OUT};
use uvs_conf::control::{Command as Ctl, Response, ServiceSpec};
use uvs_conf::{DestConfig, ForwardMethod, Protocol, SchedFlags, SchedulerName, ServiceKey};
use uvsd_support::Uvsd;

/// A virtual address on the client's subnet (203.0.113.0/24), so the
/// client must ARP for it.
const VIP: &str = "203.0.113.80";
const PORT: u16 = 8080;

/// The backend settings are the config file's (a small UMEM, a TUN
/// device of another name).
fn dr_config() -> String {
    format!(
        "[engine]\numem_frames = 1024\ntun_device = \"uvsdr0\"\n\n[[service]]\nprotocol = \"tcp\"\naddress = \"{VIP}:{PORT}\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"dr\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"dr\"\n",
        netns::RS[0],
        netns::RS[1]
    )
}

/// A DR lab: real servers hold VIP on lo (arp_ignore), serve on PORT.
fn dr_lab(tag: &str) -> Topo {
    let mut topo = Topo::new(tag, true);
    for rs in &topo.rs {
        topo.lab.exec(rs, &format!("ip addr add {VIP}/32 dev lo"));
    }
    topo.servers(true, PORT);
    topo
}

fn requests(topo: &Topo, n: usize) -> Vec<String> {
    topo.requests_to(VIP, n, PORT)
}

/// The client's neighbour entry for the VIP: learnt (not PERMANENT) and
/// the director's MAC.
fn assert_vip_learnt(topo: &Topo) {
    let entry = topo
        .lab
        .exec(&topo.cli, &format!("ip neigh show {VIP} dev eth0"));
    assert!(
        entry.contains(&mac_str(MAC_OUT)) && !entry.contains("PERMANENT"),
        "client's ARP entry for the VIP: {entry:?}"
    );
}

fn dr_through(backend: &str, tag: &str) {
    let topo = dr_lab(tag);
    let mut uvsd = Uvsd::start(&topo.dir, &["--backend", backend], Some(&dr_config()));
    let answers = requests(&topo, 4);
    Topo::assert_rr(&answers);
    assert_vip_learnt(&topo);
    let (has_device, _) = topo.lab.try_exec(&topo.dir, "ip link show dev uvsdr0");
    assert_eq!(
        has_device,
        backend == "tun",
        "TUN device named by the config"
    );

    // A cold neighbour table: once the director's periodic view read
    // (every 10 s) has dropped the flushed MACs, a connection still gets
    // through: the engine's no_neighbour drop triggers a solicitation and
    // the client's SYN retransmission passes. Flush and connect until the
    // miss shows (bounded); every connection must succeed meanwhile.
    let no_neighbour = |uvsd: &Uvsd| {
        uvsd.engine_stats()
            .drops
            .get("no_neighbour")
            .copied()
            .unwrap_or(0)
    };
    let before = no_neighbour(&uvsd);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut slow = Duration::ZERO;
    while no_neighbour(&uvsd) == before {
        assert!(
            Instant::now() < deadline,
            "no connection met the flushed neighbour table\n{}",
            uvsd.log_text()
        );
        topo.lab
            .exec(&topo.dir, "ip neigh flush dev in1; ip neigh flush dev in2");
        let started = Instant::now();
        requests(&topo, 1);
        slow = started.elapsed();
    }
    assert!(
        slow < Duration::from_secs(4),
        "the connection that met the cold table took {slow:?}"
    );
    assert!(
        uvsd.log_text().contains("starting") && !uvsd.log_text().contains("no neighbour answered"),
        "{}",
        uvsd.log_text()
    );

    let status = uvsd.stop();
    assert!(status.success(), "uvsd exit: {status}\n{}", uvsd.log_text());
    let addrs = topo.lab.exec(&topo.dir, "ip -o addr show");
    assert!(
        !addrs.contains(VIP),
        "the VIP was left on the director: {addrs}"
    );
    let proxies = topo.lab.exec(&topo.dir, "ip neigh show proxy");
    assert!(!proxies.contains(VIP), "proxy entry left: {proxies}");
    let (has_device, _) = topo.lab.try_exec(&topo.dir, "ip link show dev uvsdr0");
    assert!(!has_device, "TUN device left");
    assert!(
        !uvsd.socket.with_extension("sock.kernel").exists(),
        "kernel state file left behind"
    );
    // The connection is refused now (nothing answers the VIP's port).
    let (ok, _) = topo.lab.tcp_request(&topo.cli, VIP, PORT, "after");
    assert!(!ok, "the VIP still answered after uvsd stopped");
}

#[test]
fn dr_on_afxdp_with_no_static_arp() {
    dr_through("afxdp", "ud");
}

#[test]
fn dr_on_tun_with_no_static_arp() {
    dr_through("tun", "ut");
}

/// NAT real servers listen on their own addresses (PORT) and route back
/// through the director.
fn nat_lab(tag: &str) -> Topo {
    let mut topo = Topo::new(tag, false);
    topo.servers(false, PORT);
    topo
}

fn service_key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: VIP.parse().unwrap(),
        port: PORT,
    }
}

fn add_nat_service(uvsd: &Uvsd) {
    let spec = ServiceSpec {
        key: service_key(),
        scheduler: SchedulerName::Rr,
        flags: SchedFlags::default(),
        persistence: None,
        persistence_engine: None,
        one_packet: false,
        fwmark_match: Vec::new(),
    };
    assert_eq!(uvsd.ctl(Ctl::AddService { service: spec }), Response::Ok);
    for rs in netns::RS {
        let server = DestConfig {
            addr: rs.parse().unwrap(),
            port: PORT,
            method: ForwardMethod::Nat,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        };
        assert_eq!(
            uvsd.ctl(Ctl::AddServer {
                service: service_key(),
                server
            }),
            Response::Ok
        );
    }
}

/// `uvsd` with no config and no `--backend`: it starts with nothing
/// attached, and once a NAT service and its real servers are added over
/// the control socket it attaches (AF_XDP by default) to the interfaces
/// that route to the VIP and the real servers, and serves.
#[test]
fn empty_start_attaches_on_demand_and_serves_nat() {
    let topo = nat_lab("ue");
    let mut uvsd = Uvsd::start(&topo.dir, &[], None);
    assert!(
        uvsd.log_text().contains("waiting for a virtual service"),
        "{}",
        uvsd.log_text()
    );
    add_nat_service(&uvsd);
    // Each added real server behind a new interface attaches it (live,
    // after the reply to the command); a real server is reachable once
    // its interface is, so the requests start after the last attach.
    wait_for_log(&uvsd, "the last attach", |log| {
        log.contains("backend af_xdp on out0, in1, in2\n")
            || log.contains("backend af_xdp on out0, in2, in1\n")
    });
    let answers = requests(&topo, 4);
    Topo::assert_rr(&answers);
    assert_vip_learnt(&topo);
    let status = uvsd.stop();
    assert!(status.success(), "{status}\n{}", uvsd.log_text());
    assert!(!topo.lab.exec(&topo.dir, "ip -o addr show").contains(VIP));
}

/// NAT: `kill -9` leaves kernel changes behind (TUN: the device's
/// policy rules, proxy ARP entries, sysctls; AF_XDP: the VIP on lo,
/// accept_local); a restart cleans them up by itself and serves again.
/// A second uvsd on the same interfaces is refused with a clear message,
/// and does not disturb the first.
fn restart_after_kill9(backend: &str, tag: &str) {
    let topo = nat_lab(tag);
    let config = format!(
        "[[service]]\nprotocol = \"tcp\"\naddress = \"{VIP}:{PORT}\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"nat\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"nat\"\n",
        netns::RS[0],
        netns::RS[1]
    );
    let mut uvsd = Uvsd::start(&topo.dir, &["--backend", backend], Some(&config));
    Topo::assert_rr(&requests(&topo, 2));
    uvsd.kill9();
    let left = topo
        .lab
        .exec(&topo.dir, "ip neigh show proxy; ip -o addr show dev lo");
    assert!(
        left.contains(VIP),
        "expected leftovers after kill -9: {left}"
    );

    uvsd.launch(&topo.dir, &["--backend", backend], true);
    Topo::assert_rr(&requests(&topo, 4));
    assert!(
        uvsd.log_text().contains("did not stop cleanly"),
        "{}",
        uvsd.log_text()
    );

    for extra in [
        &["--backend", "tun"][..],
        &["--backend", "afxdp"][..],
        &[][..],
    ] {
        let (status, log) = uvsd.second(&topo.dir, extra);
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(
            log.contains("already driven by another uvsd"),
            "second uvsd: {log}"
        );
    }
    Topo::assert_rr(&requests(&topo, 2));
    let status = uvsd.stop();
    assert!(status.success(), "{status}\n{}", uvsd.log_text());
    let left = topo
        .lab
        .exec(&topo.dir, "ip neigh show proxy; ip -o addr show dev lo");
    assert!(!left.contains(VIP), "VIP left behind: {left}");
    let links = topo.lab.exec(&topo.dir, "ip -o link show");
    assert!(!links.contains("uvs0"), "TUN device left: {links}");
}

#[test]
fn tun_restart_after_kill9_and_second_daemon_refused() {
    restart_after_kill9("tun", "uk");
}

#[test]
fn afxdp_restart_after_kill9_and_second_daemon_refused() {
    restart_after_kill9("afxdp", "uj");
}

/// TUN (IPIP) forwarding, the real servers running `uvsd --decap`: the
/// director encapsulates towards each real server, whose decap role
/// hands the inner packet to its stack; the reply goes from the VIP
/// straight back to the client. SIGTERM removes the decap device.
fn tunnel_through(backend: &str, tag: &str) {
    let mut topo = Topo::new(tag, false);
    for rs in &topo.rs {
        topo.lab.exec(
            rs,
            "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
             net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2",
        );
    }
    topo.servers(true, PORT);
    let mut roles = Vec::new();
    for (i, rs) in topo.rs.iter().enumerate() {
        let role = Uvsd::start_plain(
            rs,
            &["--decap", "--vip", VIP, "--director", netns::DIR_IN[i]],
            "decap role on uvsdecap0",
        );
        roles.push(role);
    }
    let config = format!(
        "[[service]]\nprotocol = \"tcp\"\naddress = \"{VIP}:{PORT}\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"tun\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"tun\"\n",
        netns::RS[0],
        netns::RS[1]
    );
    let mut uvsd = Uvsd::start(&topo.dir, &["--backend", backend], Some(&config));
    Topo::assert_rr(&requests(&topo, 4));
    assert_vip_learnt(&topo);
    assert!(uvsd.stop().success(), "{}", uvsd.log_text());
    for (i, role) in roles.iter_mut().enumerate() {
        let status = role.stop();
        assert!(status.success(), "{status}\n{}", role.log_text());
        assert!(
            role.log_text().contains("packets delivered"),
            "{}",
            role.log_text()
        );
        let links = topo.lab.exec(&topo.rs[i], "ip -o link show");
        assert!(!links.contains("uvsdecap0"), "decap device left: {links}");
    }
}

#[test]
fn tunnel_on_afxdp_to_decap_roles() {
    tunnel_through("afxdp", "uq");
}

#[test]
fn tunnel_on_tun_to_decap_roles() {
    tunnel_through("tun", "uw");
}

/// An IPv6 VIP on the client's subnet: the client finds it by NDP (no
/// static entry), on both backends; DR to two real servers.
fn dr6_through(backend: &str, tag: &str) {
    const VIP6: &str = "2001:db8:c::80";
    let mut topo = Topo::new(tag, true);
    for rs in &topo.rs {
        topo.lab
            .exec(rs, &format!("ip -6 addr add {VIP6}/128 dev lo nodad"));
    }
    topo.servers(true, PORT);
    let config = format!(
        "[[service]]\nprotocol = \"tcp\"\naddress = \"[{VIP6}]:{PORT}\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"dr\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"dr\"\n",
        netns::RS6[0],
        netns::RS6[1]
    );
    let mut uvsd = Uvsd::start(&topo.dir, &["--backend", backend], Some(&config));
    Topo::assert_rr(&topo.requests_to(VIP6, 4, PORT));
    let entry = topo
        .lab
        .exec(&topo.cli, &format!("ip -6 neigh show {VIP6} dev eth0"));
    assert!(
        entry.contains(&mac_str(MAC_OUT)) && !entry.contains("PERMANENT"),
        "client's NDP entry for the VIP: {entry:?}"
    );
    assert!(uvsd.stop().success(), "{}", uvsd.log_text());
    let addrs = topo.lab.exec(&topo.dir, "ip -o addr show");
    assert!(!addrs.contains(VIP6), "VIP left: {addrs}");
    let proxies = topo.lab.exec(&topo.dir, "ip -6 neigh show proxy");
    assert!(!proxies.contains(VIP6), "proxy entry left: {proxies}");
}

#[test]
fn dr_ipv6_on_afxdp_with_no_static_ndp() {
    dr6_through("afxdp", "u6");
}

#[test]
fn dr_ipv6_on_tun_with_no_static_ndp() {
    dr6_through("tun", "u7");
}

/// Wait (at most 20 s) until uvsd's log shows `what`.
fn wait_for_log(uvsd: &Uvsd, what: &str, shown: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !shown(&uvsd.log_text()) {
        assert!(
            Instant::now() < deadline,
            "never logged {what}:\n{}",
            uvsd.log_text()
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// The id of the XDP program attached to `dev` in the director.
fn xdp_prog_id(topo: &Topo, dev: &str) -> String {
    let link = topo
        .lab
        .exec(&topo.dir, &format!("ip -d link show dev {dev}"));
    let id = link
        .split("prog/xdp id ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no XDP program on {dev}: {link}"));
    id.to_owned()
}

/// Attaching to a newly needed interface under AF_XDP happens live: a
/// connection that keeps sending all through the attach (a chunk every
/// 5 ms, each acknowledged through the director) goes on, and the XDP
/// program on the interface it uses is the same one before and after.
/// Before, the attach restarted the whole backend: every interface's
/// program and sockets went away for a moment, the busy connection lost
/// a segment and stalled for a retransmission timeout (about 1 s), and a
/// SYN in that window reached the kernel, which holds the VIP on lo and
/// answered RST.
#[test]
fn attach_keeps_a_busy_connection() {
    let topo = nat_lab("ua");
    let mut uvsd = Uvsd::start(&topo.dir, &[], None);
    let spec = ServiceSpec {
        key: service_key(),
        scheduler: SchedulerName::Rr,
        flags: SchedFlags::default(),
        persistence: None,
        persistence_engine: None,
        one_packet: false,
        fwmark_match: Vec::new(),
    };
    assert_eq!(uvsd.ctl(Ctl::AddService { service: spec }), Response::Ok);
    let server = |rs: &str| DestConfig {
        addr: rs.parse().unwrap(),
        port: PORT,
        method: ForwardMethod::Nat,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
    };
    assert_eq!(
        uvsd.ctl(Ctl::AddServer {
            service: service_key(),
            server: server(netns::RS[0])
        }),
        Response::Ok
    );
    // rs1 sits behind in1: its real server is reachable once in1 is.
    wait_for_log(&uvsd, "in1 attached", |log| log.contains("on out0, in1\n"));
    // A client that sends a numbered chunk every 5 ms until a go file
    // appears, then half-closes and checks that the server echoes every
    // byte it sent.
    let go = format!("/tmp/{}-go", topo.lab.prefix());
    let script = format!(
        "import socket,sys,os,time\n\
         c=socket.create_connection(('{VIP}',{PORT}),timeout=20)\n\
         sent=b''\n\
         n=0\n\
         end=time.time()+25\n\
         while not os.path.exists('{go}') and time.time()<end:\n\
         \x20 chunk=b'%d,' % n\n\
         \x20 c.sendall(chunk)\n\
         \x20 sent+=chunk\n\
         \x20 n+=1\n\
         \x20 time.sleep(0.005)\n\
         c.shutdown(socket.SHUT_WR)\n\
         d=b''\n\
         while True:\n\
         \x20 b=c.recv(65536)\n\
         \x20 if not b: break\n\
         \x20 d+=b\n\
         assert d==b'rs1\\n'+sent, (len(d), len(sent))\n\
         sys.stdout.write('%d chunks' % n)\n"
    );
    let path = format!("/tmp/{}-long.py", topo.lab.prefix());
    std::fs::write(&path, script).unwrap();
    let mut client = std::process::Command::new("ip")
        .args([
            "netns", "exec", &topo.cli, "timeout", "30", "python3", &path,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Established and busy: its chunks and their ACKs flow through the
    // director (the only traffic in the lab).
    let deadline = Instant::now() + Duration::from_secs(20);
    while uvsd.engine_stats().forwarded < 20 {
        if Instant::now() >= deadline {
            let _ = client.kill();
            let out = client.wait_with_output().unwrap();
            panic!(
                "the long connection never got going:\n{}\nclient: {}{}",
                uvsd.log_text(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    let out0_prog = xdp_prog_id(&topo, "out0");
    // rs2 sits behind in2: adding it attaches in2 while the client sends.
    assert_eq!(
        uvsd.ctl(Ctl::AddServer {
            service: service_key(),
            server: server(netns::RS[1])
        }),
        Response::Ok
    );
    wait_for_log(&uvsd, "in2 attached", |log| {
        log.contains("on out0, in1, in2")
    });
    // The client goes on sending for a while after the attach too: wait
    // until the engine has forwarded 20 more frames (its chunks and their ACKs).
    let seen = uvsd.engine_stats().forwarded;
    let deadline = Instant::now() + Duration::from_secs(10);
    while uvsd.engine_stats().forwarded < seen + 20 && Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(20));
    }
    std::fs::write(&go, "").unwrap();
    let out = client.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&go);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "the connection broke across the attach: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        uvsd.log_text()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with(" chunks"),
        "client: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        uvsd.log_text().contains("in2: attached without a restart"),
        "{}",
        uvsd.log_text()
    );
    assert_eq!(
        xdp_prog_id(&topo, "out0"),
        out0_prog,
        "out0's XDP program was replaced by the attach of in2"
    );
    // The VIP is local (on lo): replies with it as source are accepted
    // on every interface, also the one attached later.
    assert_eq!(
        topo.lab
            .exec(&topo.dir, "sysctl -n net.ipv4.conf.in2.accept_local")
            .trim(),
        "1"
    );
    // New connections reach both real servers.
    Topo::assert_rr(&requests(&topo, 4));
    assert!(uvsd.stop().success(), "{}", uvsd.log_text());
}
