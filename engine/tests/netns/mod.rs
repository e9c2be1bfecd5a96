//! A namespace/veth lab for the I/O tests (root only): network
//! namespaces with unique names, veth pairs between them, commands run
//! inside them, background processes, and a guard that removes all of it
//! on drop — also when the test panics.
//!
//! Every address used lives only inside the namespaces a lab creates
//! (documentation ranges), and every wait is bounded.
#![allow(dead_code)]

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use uvs_engine::io::Steering;
use uvs_engine::route::{NetView, Port, PortId, Route};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A lab: namespaces and processes removed on drop.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
}

/// Run a command on the host, panicking with its output on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

impl Lab {
    /// A new lab; `tag` (≤ 4 chars) goes into every name.
    pub fn new(tag: &str) -> Lab {
        assert!(
            nix_is_root(),
            "the I/O tests need root (namespaces, veth, XDP)"
        );
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        Lab {
            prefix: format!("uvs{}{}{}", tag, std::process::id() % 100_000, n),
            namespaces: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Create namespace `name` (lo up, forwarding as asked); returns its
    /// full name.
    pub fn ns(&mut self, name: &str) -> String {
        let full = format!("{}-{}", self.prefix, name);
        sh(&format!("ip netns add {full}"));
        self.namespaces.push(full.clone());
        self.exec(&full, "ip link set lo up");
        full
    }

    /// A veth pair: `a_if` in `a`, `b_if` in `b`, both up, with fixed MACs.
    pub fn veth(&mut self, a: &str, a_if: &str, a_mac: &str, b: &str, b_if: &str, b_mac: &str) {
        let tmp = format!("v{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let tmp_a = format!("{tmp}a{}", std::process::id() % 10_000);
        let tmp_b = format!("{tmp}b{}", std::process::id() % 10_000);
        sh(&format!(
            "ip link add {tmp_a} netns {a} type veth peer name {tmp_b} netns {b}"
        ));
        self.exec(
            a,
            &format!("ip link set {tmp_a} name {a_if} address {a_mac} up"),
        );
        self.exec(
            b,
            &format!("ip link set {tmp_b} name {b_if} address {b_mac} up"),
        );
    }

    /// Run `cmd` in namespace `ns`; panics with its output on failure.
    pub fn exec(&self, ns: &str, cmd: &str) -> String {
        sh(&format!(
            "ip netns exec {ns} sh -c '{}'",
            cmd.replace('\'', "'\\''")
        ))
    }

    /// Run `cmd` in `ns`; returns (success, stdout+stderr).
    pub fn try_exec(&self, ns: &str, cmd: &str) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", cmd])
            .output()
            .expect("run ip netns exec");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// Start `cmd` in `ns` in the background; killed when the lab drops.
    pub fn spawn(&mut self, ns: &str, cmd: &str) -> u32 {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", &format!("exec {cmd}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in namespace");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Keep `child` (started by the test) and kill it when the lab drops.
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    /// A TCP server on `port` in `ns` that answers each connection with
    /// `name`, a newline, and the bytes it received up to EOF.
    pub fn tcp_server(&mut self, ns: &str, addr: &str, port: u16, name: &str) {
        let script = format!(
            "import socket\n\
             s=socket.socket(socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET)\n\
             s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{addr}',{port}))\n\
             s.listen(64)\n\
             while True:\n\
             \x20 c,_=s.accept()\n\
             \x20 c.settimeout(5)\n\
             \x20 d=b''\n\
             \x20 try:\n\
             \x20\x20 while True:\n\
             \x20\x20\x20 b=c.recv(65536)\n\
             \x20\x20\x20 if not b: break\n\
             \x20\x20\x20 d+=b\n\
             \x20 except Exception: pass\n\
             \x20 try: c.sendall(b'{name}\\n'+d)\n\
             \x20 except Exception: pass\n\
             \x20 c.close()\n"
        );
        let path = format!("/tmp/{}-{}-srv.py", self.prefix, name);
        std::fs::write(&path, script).expect("write server script");
        self.spawn(ns, &format!("python3 {path}"));
        let probe = format!("ss -ltn | grep -q ':{port} '");
        assert!(
            wait_for(Duration::from_secs(5), || self.try_exec(ns, &probe).0),
            "TCP server in {ns} did not start"
        );
    }

    /// Connect from `ns` to `addr:port`, send `payload`, half-close and
    /// return the answer (server name, payload). Bounded by 5 s.
    pub fn tcp_request(&self, ns: &str, addr: &str, port: u16, payload: &str) -> (bool, String) {
        self.tcp_request_on(ns, addr, port, payload, None)
    }

    /// [`Lab::tcp_request`] with the client pinned to `cpu` (on veth the
    /// sender's CPU picks the receiver's RX queue).
    pub fn tcp_request_on(
        &self,
        ns: &str,
        addr: &str,
        port: u16,
        payload: &str,
        cpu: Option<usize>,
    ) -> (bool, String) {
        let script = format!(
            "import socket,sys\n\
             c=socket.create_connection(('{addr}',{port}),timeout=5)\n\
             c.sendall(b'{payload}')\n\
             c.shutdown(socket.SHUT_WR)\n\
             d=b''\n\
             while True:\n\
             \x20 b=c.recv(65536)\n\
             \x20 if not b: break\n\
             \x20 d+=b\n\
             sys.stdout.write(d.decode())\n"
        );
        let path = format!("/tmp/{}-cli.py", self.prefix);
        std::fs::write(&path, script).expect("write client script");
        let pin = cpu.map(|c| format!("taskset -c {c} ")).unwrap_or_default();
        self.try_exec(ns, &format!("timeout 8 {pin}python3 {path}"))
    }

    /// Run `f` on a thread that has entered namespace `ns` (threads it
    /// spawns stay there too).
    pub fn in_ns<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = File::open(&path).expect("open netns");
            // SAFETY: setns on this thread only, with a namespace fd.
            let ret = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(ret, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    /// The lab's name prefix (unique per lab).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

fn nix_is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("rm -f /tmp/{}-*", self.prefix))
            .status();
    }
}

/// The standard topology of the I/O tests:
///
/// ```text
///   cli (203.0.113.2) ── out0 [director] in1 ── rs1 (198.51.100.2)
///                        203.0.113.1      in2 ── rs2 (198.51.100.18)
/// ```
/// VIP 192.0.2.80, not held by the director's kernel. Real servers route
/// back through the director (its kernel forwards what the engine does
/// not own).
#[derive(Debug)]
pub struct Topo {
    /// The lab (drops everything).
    pub lab: Lab,
    /// Client namespace.
    pub cli: String,
    /// Director namespace.
    pub dir: String,
    /// Real server namespaces.
    pub rs: [String; 2],
}

/// The virtual address.
pub const VIP: &str = "192.0.2.80";
/// The director's client-facing address.
pub const DIR_OUT: &str = "203.0.113.1";
/// The client.
pub const CLIENT: &str = "203.0.113.2";
/// Real servers.
pub const RS: [&str; 2] = ["198.51.100.2", "198.51.100.18"];
/// The IPv6 virtual address.
pub const VIP6: &str = "2001:db8:f::80";
/// The client's IPv6 address and the director's facing it.
pub const CLIENT6: &str = "2001:db8:c::2";
/// The director's IPv6 address facing the client.
pub const DIR_OUT6: &str = "2001:db8:c::1";
/// Real servers (IPv6).
pub const RS6: [&str; 2] = ["2001:db8:1::2", "2001:db8:2::2"];
/// Director's IPv6 addresses facing the real servers.
pub const DIR_IN6: [&str; 2] = ["2001:db8:1::1", "2001:db8:2::1"];
/// Director's addresses facing the real servers.
pub const DIR_IN: [&str; 2] = ["198.51.100.1", "198.51.100.17"];
/// MACs: client, director out0, in1, in2, rs1, rs2.
pub const MAC_CLI: [u8; 6] = [2, 0, 0, 0, 0xc1, 1];
/// Director out0.
pub const MAC_OUT: [u8; 6] = [2, 0, 0, 0, 0xd0, 1];
/// Director in1/in2.
pub const MAC_IN: [[u8; 6]; 2] = [[2, 0, 0, 0, 0xd0, 2], [2, 0, 0, 0, 0xd0, 3]];
/// rs1/rs2.
pub const MAC_RS: [[u8; 6]; 2] = [[2, 0, 0, 0, 0x10, 1], [2, 0, 0, 0, 0x10, 2]];

/// A MAC as `ip link` wants it.
pub fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Topo {
    /// Build the topology. `vip_on_rs_lo`: DR-style real servers (VIP on
    /// lo with arp_ignore/arp_announce).
    pub fn new(tag: &str, vip_on_rs_lo: bool) -> Topo {
        let mut lab = Lab::new(tag);
        let cli = lab.ns("cli");
        let dir = lab.ns("dir");
        let rs = [lab.ns("rs1"), lab.ns("rs2")];
        lab.veth(
            &cli,
            "eth0",
            &mac_str(MAC_CLI),
            &dir,
            "out0",
            &mac_str(MAC_OUT),
        );
        for i in 0..2 {
            lab.veth(
                &dir,
                &format!("in{}", i + 1),
                &mac_str(MAC_IN[i]),
                &rs[i],
                "eth0",
                &mac_str(MAC_RS[i]),
            );
        }
        lab.exec(
            &cli,
            &format!(
                "ip addr add {CLIENT}/24 dev eth0 && ip route add default via {DIR_OUT} && \
                 ethtool -K eth0 tx off >/dev/null && sysctl -qw net.ipv4.conf.all.rp_filter=0 \
                 net.ipv4.conf.eth0.rp_filter=0 && ip addr add {CLIENT6}/64 dev eth0 nodad && \
                 ip -6 route add default via {DIR_OUT6}"
            ),
        );
        lab.exec(
            &dir,
            &format!(
                "ip addr add {DIR_OUT}/24 dev out0 && ip addr add {}/28 dev in1 && \
                 ip addr add {}/28 dev in2 && sysctl -qw net.ipv4.ip_forward=1 \
                 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
                 net.ipv4.conf.out0.rp_filter=0 net.ipv4.conf.in1.rp_filter=0 \
                 net.ipv4.conf.in2.rp_filter=0 net.ipv6.conf.all.forwarding=1 && \
                 ip addr add {DIR_OUT6}/64 dev out0 nodad && ip addr add {}/64 dev in1 nodad && \
                 ip addr add {}/64 dev in2 nodad",
                DIR_IN[0], DIR_IN[1], DIR_IN6[0], DIR_IN6[1]
            ),
        );
        for i in 0..2 {
            lab.exec(
                &rs[i],
                &format!(
                    "ip addr add {}/28 dev eth0 && ip route add default via {} && \
                     ethtool -K eth0 tx off >/dev/null && \
                     sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 && \
                     ip addr add {}/64 dev eth0 nodad && ip -6 route add default via {}",
                    RS[i], DIR_IN[i], RS6[i], DIR_IN6[i]
                ),
            );
            if vip_on_rs_lo {
                lab.exec(
                    &rs[i],
                    &format!(
                        "ip addr add {VIP}/32 dev lo && ip addr add {VIP6}/128 dev lo && sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
                         net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_ignore=1 \
                         net.ipv4.conf.eth0.arp_announce=2"
                    ),
                );
            }
        }
        Topo { lab, cli, dir, rs }
    }

    /// Start the `rsN` TCP servers on the VIP (DR/TUN) or their own
    /// address (NAT) at `port`.
    pub fn servers(&mut self, on_vip: bool, port: u16) {
        for (i, rs_addr) in RS.iter().enumerate() {
            // "::" is dual-stack: IPv4 and IPv6 to the VIPs on lo.
            let addr = if on_vip { "::" } else { rs_addr };
            let ns = self.rs[i].clone();
            self.lab
                .tcp_server(&ns, addr, port, &format!("rs{}", i + 1));
        }
    }

    /// `n` requests from the client to `VIP:port`; the answering server
    /// of each, checking the payload came back intact.
    pub fn requests(&self, n: usize, port: u16) -> Vec<String> {
        self.requests_to(VIP, n, port)
    }

    /// `n` requests from the client to `vip:port`.
    pub fn requests_to(&self, vip: &str, n: usize, port: u16) -> Vec<String> {
        (0..n)
            .map(|i| {
                let payload = format!("hello-{i}-{}", "x".repeat(100 + i));
                let (ok, out) = self.lab.tcp_request(&self.cli, vip, port, &payload);
                assert!(ok, "request {i} to {vip}:{port} failed: {out}");
                let (name, body) = out.split_once('\n').unwrap_or(("", ""));
                assert_eq!(body, payload, "payload of request {i} came back altered");
                name.to_owned()
            })
            .collect()
    }

    /// Requests alternate between rs1 and rs2 (rr).
    pub fn assert_rr(answers: &[String]) {
        assert!(answers.len() >= 2);
        for w in answers.windows(2) {
            assert_ne!(w[0], w[1], "not round robin: {answers:?}");
        }
        for name in ["rs1", "rs2"] {
            assert!(
                answers.iter().any(|a| a == name),
                "{name} never answered: {answers:?}"
            );
        }
    }

    /// The kernel path of the director still works: ping (and so ARP)
    /// from the client to the director's own address.
    pub fn assert_kernel_path(&self) {
        let (ok, out) = self.lab.try_exec(
            &self.cli,
            &format!("ip neigh flush dev eth0; ping -c 2 -i 0.2 -W 2 {DIR_OUT}"),
        );
        assert!(
            ok,
            "ping to the director failed while the engine runs: {out}"
        );
        let (ok, out) = self
            .lab
            .try_exec(&self.cli, &format!("ip neigh show {DIR_OUT}"));
        assert!(
            ok && out.contains(&mac_str(MAC_OUT)),
            "no ARP entry for the director: {out}"
        );
    }
}

/// An IPv6 address.
pub fn v6(s: &str) -> IpAddr {
    IpAddr::V6(std::net::Ipv6Addr::from_str(s).expect("address"))
}

/// An IPv4 address.
pub fn v4(s: &str) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from_str(s).expect("address"))
}

/// The director's network as the engine sees it (ports out0, in1, in2).
pub fn director_net() -> NetView {
    let mut net = NetView {
        ports: vec![
            Port {
                name: "out0".into(),
                mac: MAC_OUT,
                mtu: 1500,
                addr_v4: Some(v4(DIR_OUT)),
                addr_v6: Some(v6(DIR_OUT6)),
            },
            Port {
                name: "in1".into(),
                mac: MAC_IN[0],
                mtu: 1500,
                addr_v4: Some(v4(DIR_IN[0])),
                addr_v6: Some(v6(DIR_IN6[0])),
            },
            Port {
                name: "in2".into(),
                mac: MAC_IN[1],
                mtu: 1500,
                addr_v4: Some(v4(DIR_IN[1])),
                addr_v6: Some(v6(DIR_IN6[1])),
            },
        ],
        routes: vec![
            Route {
                prefix: v4("203.0.113.0"),
                len: 24,
                port: PortId(0),
                gateway: None,
            },
            Route {
                prefix: v4("198.51.100.0"),
                len: 28,
                port: PortId(1),
                gateway: None,
            },
            Route {
                prefix: v4("198.51.100.16"),
                len: 28,
                port: PortId(2),
                gateway: None,
            },
        ],
        neighbours: Default::default(),
    };
    for (prefix, port) in [
        ("2001:db8:c::", 0),
        ("2001:db8:1::", 1),
        ("2001:db8:2::", 2),
    ] {
        net.routes.push(Route {
            prefix: v6(prefix),
            len: 64,
            port: PortId(port),
            gateway: None,
        });
    }
    net.neighbours.insert(v6(CLIENT6), MAC_CLI);
    net.neighbours.insert(v6(RS6[0]), MAC_RS[0]);
    net.neighbours.insert(v6(RS6[1]), MAC_RS[1]);
    net.neighbours.insert(v4(CLIENT), MAC_CLI);
    net.neighbours.insert(v4(RS[0]), MAC_RS[0]);
    net.neighbours.insert(v4(RS[1]), MAC_RS[1]);
    net
}

pub fn config(method: &str, rs_port: u16) -> uvs_conf::Config {
    config_with(method, rs_port, "", "")
}

/// A config with `rs_extra` lines in each real server and `top` before
/// the service (e.g. a `[fullnat]` table).
pub fn config_with(method: &str, rs_port: u16, rs_extra: &str, top: &str) -> uvs_conf::Config {
    let text = format!(
        "{top}\n[[service]]\nprotocol = \"tcp\"\naddress = \"{VIP}:80\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"{}:{rs_port}\"\nmethod = \"{method}\"\n{rs_extra}\n\
         [[service.real_server]]\naddress = \"{}:{rs_port}\"\nmethod = \"{method}\"\n{rs_extra}\n",
        RS[0], RS[1]
    );
    uvs_conf::parse_config("test.toml", &text).expect("test config")
}

/// An IPv6 DR service on VIP6:80 over both real servers.
pub fn config_v6() -> uvs_conf::Config {
    let text = format!(
        "[[service]]\nprotocol = \"tcp\"\naddress = \"[{VIP6}]:80\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"[{}]:80\"\nmethod = \"dr\"\n\
         [[service.real_server]]\naddress = \"[{}]:80\"\nmethod = \"dr\"\n",
        RS6[0], RS6[1]
    );
    uvs_conf::parse_config("test6.toml", &text).expect("test config")
}

/// Steering for [`config`].
pub fn steering(nat_port: Option<u16>) -> Steering {
    Steering {
        virtual_services: vec![(6, v4(VIP), 80)],
        nat_sources: nat_port
            .map(|p| vec![(6, v4(RS[0]), p), (6, v4(RS[1]), p)])
            .unwrap_or_default(),
        ..Steering::default()
    }
}

impl Topo {
    /// Start the decap role on both real servers (VIP on a TUN device,
    /// tunnels accepted only from the director's address facing each).
    pub fn decap_roles(&self) -> Vec<uvs_engine::io::decap::Decap> {
        let mut roles = Vec::new();
        for (i, ns) in self.rs.iter().enumerate() {
            let cfg = uvs_engine::io::decap::DecapConfig {
                vips: vec![v4(VIP)],
                directors: vec![v4(DIR_IN[i])],
                gue_port: Some(6080),
                ..Default::default()
            };
            roles.push(
                self.lab
                    .in_ns(ns, move || uvs_engine::io::decap::start(&cfg))
                    .expect("decap role"),
            );
            self.lab.exec(
                ns,
                "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2",
            );
        }
        roles
    }

    /// From the client, send `count` IPIP packets (outer source: the
    /// client, not a director) carrying a UDP datagram to the VIP, to
    /// real server `rs`.
    pub fn send_foreign_ipip(&self, rs: usize, count: u32) {
        let script = format!(
            "import socket,struct\n\
             def csum(b):\n\
             \x20 s=sum(struct.unpack('!%dH'%(len(b)//2),b))\n\
             \x20 s=(s>>16)+(s&0xffff); s+=s>>16\n\
             \x20 return (~s)&0xffff\n\
             def ip(src,dst,proto,payload):\n\
             \x20 h=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(payload),0,0,64,proto,0,socket.inet_aton(src),socket.inet_aton(dst))\n\
             \x20 return h[:10]+struct.pack('!H',csum(h))+h[12:]+payload\n\
             udp=struct.pack('!HHHH',4000,9,12,0)+b'evil'\n\
             pkt=ip('{CLIENT}','{rs_addr}',4,ip('{CLIENT}','{VIP}',17,udp))\n\
             s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)\n\
             for _ in range({count}): s.sendto(pkt,('{rs_addr}',0))\n",
            rs_addr = RS[rs]
        );
        let path = format!("/tmp/{}-ipip.py", self.lab.prefix());
        std::fs::write(&path, script).expect("write script");
        self.lab.exec(&self.cli, &format!("python3 {path}"));
    }
}

/// A UDP flood generator (C, built once per lab with the system's clang):
/// `flood DST PORT SECONDS` sends 18-byte datagrams with sendmmsg for
/// SECONDS and prints how many it sent.
pub const FLOOD_C: &str = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
int main(int argc, char **argv) {
  if (argc != 4) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a; memset(&a, 0, sizeof a);
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) return 2;
  if (connect(fd, (void *)&a, sizeof a)) return 1;
  int secs = atoi(argv[3]);
  char buf[18] = "uvs-flood-payload";
  struct mmsghdr m[64]; struct iovec v[64];
  for (int i = 0; i < 64; i++) {
    v[i].iov_base = buf; v[i].iov_len = sizeof buf;
    memset(&m[i], 0, sizeof m[i]);
    m[i].msg_hdr.msg_iov = &v[i]; m[i].msg_hdr.msg_iovlen = 1;
  }
  struct timespec t0, t; clock_gettime(CLOCK_MONOTONIC, &t0);
  long sent = 0;
  for (;;) {
    int r = sendmmsg(fd, m, 64, 0); if (r > 0) sent += r;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec >= secs) break;
  }
  printf("%ld\n", sent);
  return 0;
}
"#;

impl Lab {
    /// Build the flood generator; returns its path.
    pub fn flood_tool(&self) -> String {
        let src = format!("/tmp/{}-flood.c", self.prefix);
        let bin = format!("/tmp/{}-flood", self.prefix);
        std::fs::write(&src, FLOOD_C).expect("write flood source");
        sh(&format!("clang -O2 -o {bin} {src}"));
        bin
    }
}
