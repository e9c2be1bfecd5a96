//! The TUN backend's proxy NDP answers a *unicast* neighbour
//! solicitation for an IPv6 virtual address (root; namespaces).
//!
//! Under `--backend tun` the virtual address is routed into the TUN
//! device and the director answers NDP for it as a proxy. A client finds
//! the address with a multicast solicitation, but re-checks its entry
//! later (NUD PROBE) with one sent to the address itself. The director's
//! kernel routes that one towards the TUN device, and `ip6_forward`
//! hands it to NDP instead only when the global
//! `net.ipv6.conf.all.proxy_ndp` is on (the per-interface switch covers
//! the multicast ones only); without it the probe was lost, the client's
//! entry failed and new connections timed out for seconds (the IPv6
//! dr/tun e2e flake). Here the client sends unicast solicitations
//! itself, from a raw ICMPv6 socket, and each must be answered.

mod netns;
mod uvsd_support;

use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use netns::{mac_str, Topo, CLIENT6, MAC_CLI, MAC_OUT};
use uvsd_support::Uvsd;

/// An IPv6 virtual address on the client's subnet (2001:db8:c::/64), so
/// the client must find it by NDP.
const VIP6: &str = "2001:db8:c::80";
const PORT: u16 = 8080;
/// ICMPv6 neighbour solicitation / advertisement.
const NS: u8 = 135;
const NA: u8 = 136;

/// What one unicast solicitation got back.
#[derive(Debug)]
enum Answer {
    /// An advertisement for the target: its solicited flag, and its
    /// target link-layer address option (if any).
    Advert {
        solicited: bool,
        mac: Option<[u8; 6]>,
    },
    /// Nothing within the time allowed.
    Silence,
}

/// A raw ICMPv6 socket in the calling thread's namespace, bound to `src`,
/// hop limit 255 (NDP drops anything else), 50 ms receive timeout.
fn raw_icmp6(src: Ipv6Addr) -> Result<OwnedFd, String> {
    // SAFETY: plain socket(2); the fd is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let hops: libc::c_int = 255;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    // SAFETY: setsockopt with pointers to live values of the stated size.
    let ok = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            (&hops as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
            && libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            ) == 0
    };
    if !ok {
        return Err(format!("setsockopt: {}", std::io::Error::last_os_error()));
    }
    let local = sockaddr6(src);
    // SAFETY: bind with a valid sockaddr_in6 of the stated size.
    let ret = unsafe {
        libc::bind(
            fd,
            (&local as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if ret != 0 {
        return Err(format!("bind: {}", std::io::Error::last_os_error()));
    }
    Ok(sock)
}

fn sockaddr6(addr: Ipv6Addr) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = addr.octets();
    sa
}

/// Send one neighbour solicitation for `target` to `target` itself
/// (unicast, as a client's NUD probe is) and wait up to `wait` for the
/// advertisement. The kernel fills in the ICMPv6 checksum.
fn unicast_solicit(sock: &OwnedFd, target: Ipv6Addr, wait: Duration) -> Result<Answer, String> {
    let fd = sock.as_raw_fd();
    // Drop whatever arrived before (the client's own NDP traffic).
    let mut buf = [0u8; 1500];
    // SAFETY: recv into a buffer of the stated size.
    while unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) } > 0 {}

    let mut ns = [0u8; 32];
    ns[0] = NS;
    ns[8..24].copy_from_slice(&target.octets());
    // Source link-layer address option (type 1, 8 bytes).
    ns[24] = 1;
    ns[25] = 1;
    ns[26..32].copy_from_slice(&MAC_CLI);
    let dest = sockaddr6(target);
    // SAFETY: sendto with a live buffer and a valid sockaddr_in6.
    let sent = unsafe {
        libc::sendto(
            fd,
            ns.as_ptr().cast(),
            ns.len(),
            0,
            (&dest as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if sent != ns.len() as isize {
        return Err(format!("sendto: {}", std::io::Error::last_os_error()));
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        // SAFETY: recv into a buffer of the stated size (50 ms timeout).
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 24 {
            continue;
        }
        let msg = &buf[..n as usize];
        if msg[0] != NA || msg[8..24] != target.octets() {
            continue;
        }
        let solicited = msg[4] & 0x40 != 0;
        // Options after the 24-byte header: the target link-layer one (2).
        let mut mac = None;
        let mut opts = &msg[24..];
        while opts.len() >= 8 && opts[1] != 0 {
            let len = usize::from(opts[1]) * 8;
            if len > opts.len() {
                break;
            }
            if opts[0] == 2 {
                mac = Some(opts[2..8].try_into().expect("six bytes"));
            }
            opts = &opts[len..];
        }
        return Ok(Answer::Advert { solicited, mac });
    }
    Ok(Answer::Silence)
}

/// An IPv6 DR service on the client's subnet under the TUN backend: the
/// client finds the VIP (multicast NDP) and connects; then unicast
/// solicitations for the VIP, sent to the VIP, are each answered by the
/// director with a solicited advertisement, which makes the client's
/// stale entry for the VIP (out0's MAC) reachable again.
#[test]
fn tun_backend_answers_unicast_solicitations_for_an_ipv6_vip() {
    let mut topo = Topo::new("un", true);
    for rs in &topo.rs {
        topo.lab
            .exec(rs, &format!("ip -6 addr add {VIP6}/128 dev lo nodad"));
    }
    topo.servers(true, PORT);
    let config = format!(
        "[engine]\ntun_device = \"uvsnd0\"\n\n\
         [[service]]\nprotocol = \"tcp\"\naddress = \"[{VIP6}]:{PORT}\"\nscheduler = \"rr\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"dr\"\n\
         [[service.real_server]]\naddress = \"{}\"\nmethod = \"dr\"\n",
        netns::RS6[0],
        netns::RS6[1]
    );
    let mut uvsd = Uvsd::start(&topo.dir, &["--backend", "tun"], Some(&config));
    // The multicast path: the client resolves the VIP and connects.
    Topo::assert_rr(&topo.requests_to(VIP6, 2, PORT));
    let entry = topo
        .lab
        .exec(&topo.cli, &format!("ip -6 neigh show {VIP6} dev eth0"));
    assert!(
        entry.contains(&mac_str(MAC_OUT)) && !entry.contains("PERMANENT"),
        "client's NDP entry for the VIP: {entry:?}"
    );
    let proxy = topo.lab.exec(&topo.dir, "ip -6 neigh show proxy");
    assert!(
        proxy.contains(VIP6),
        "no proxy entry: {proxy}\n{}",
        uvsd.log_text()
    );

    // A stale entry makes the client's kernel send its own probes too;
    // ours are answered either way. Three in a row, each within 2 s (the
    // director answers at once: proxy_delay=0).
    topo.lab.exec(
        &topo.cli,
        &format!("ip -6 neigh change {VIP6} dev eth0 nud stale"),
    );
    let target: Ipv6Addr = VIP6.parse().expect("VIP6");
    let client: Ipv6Addr = CLIENT6.parse().expect("CLIENT6");
    let answers = topo.lab.in_ns(&topo.cli, move || {
        let sock = raw_icmp6(client)?;
        (0..3)
            .map(|_| unicast_solicit(&sock, target, Duration::from_secs(2)))
            .collect::<Result<Vec<_>, String>>()
    });
    let answers = answers.unwrap_or_else(|e| panic!("raw ICMPv6 socket: {e}"));
    let sysctls = topo.lab.exec(
        &topo.dir,
        "sysctl net.ipv6.conf.all.proxy_ndp net.ipv6.conf.out0.proxy_ndp \
         net.ipv6.conf.all.forwarding; grep -w Ip6OutForwDatagrams /proc/net/snmp6; \
         ip -s link show dev uvsnd0",
    );
    for (i, answer) in answers.iter().enumerate() {
        match answer {
            Answer::Advert { solicited, mac } => {
                assert!(*solicited, "advertisement {i} not solicited: {answers:?}");
                // The option is left out in answer to a unicast
                // solicitation (RFC 4861 7.2.4); if there, it is out0's.
                assert!(
                    mac.is_none() || *mac == Some(MAC_OUT),
                    "advertisement {i} names another MAC: {answers:?}"
                );
            }
            Answer::Silence => panic!(
                "unicast solicitation {i} for {VIP6} went unanswered: {answers:?}\n\
                 director: {sysctls}\n{}",
                uvsd.log_text()
            ),
        }
    }
    // The answers confirmed the client's stale entry: reachable again,
    // still out0's MAC.
    let entry = topo
        .lab
        .exec(&topo.cli, &format!("ip -6 neigh show {VIP6} dev eth0"));
    assert!(
        entry.contains(&mac_str(MAC_OUT)) && entry.contains("REACHABLE"),
        "client's NDP entry for the VIP after the probes: {entry:?}"
    );
    // New connections still go through.
    Topo::assert_rr(&topo.requests_to(VIP6, 2, PORT));

    // SIGTERM restores the global switch with every other change.
    assert!(uvsd.stop().success(), "{}", uvsd.log_text());
    let after = topo
        .lab
        .exec(&topo.dir, "sysctl -n net.ipv6.conf.all.proxy_ndp");
    assert_eq!(after.trim(), "0", "all.proxy_ndp left on after exit");
    let proxies = topo.lab.exec(&topo.dir, "ip -6 neigh show proxy");
    assert!(!proxies.contains(VIP6), "proxy entry left: {proxies}");
}
