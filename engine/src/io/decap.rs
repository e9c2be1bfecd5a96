//! The decap role: what a real server runs so that TUN-mode traffic needs
//! no `ipip`/`ip6_tunnel`/`sit`/`gre`/`fou` kernel module.
//!
//! The role receives tunnelled packets addressed to this host, over an
//! outer IPv4 or IPv6 header, in every shape the engine's tunnel method
//! emits (`xmit::tunnel`: the outer family is the real server's, the
//! inner one the service's):
//!
//! | outer | encapsulation | socket |
//! |---|---|---|
//! | IPv4 | IPIP (proto 4), IPv6-in-IPv4 (41), GRE (47) | `AF_INET` raw, one per protocol |
//! | IPv6 | IPv4-in-IPv6 (next header 4), IPv6-in-IPv6 (41), GRE (47) | `AF_INET6` raw, one per protocol |
//! | both | GUE on `gue_port` | `AF_INET` and `AF_INET6` (v6-only) UDP |
//!
//! It accepts only packets whose **outer source** is one of the
//! configured director addresses (a raw socket sees every such packet to
//! the host) and whose **inner destination** is one of the virtual
//! addresses, strips the outer headers ([`decapsulate`]) and writes the
//! inner packet into a TUN device that holds the virtual addresses. The
//! local stack then answers from the virtual address straight to the
//! client, never through the director. The open raw sockets also stop
//! the kernel's "protocol unreachable" (IPv4) and "parameter problem"
//! (IPv6) replies. Every refused packet is counted by reason
//! ([`DecapStats`]); nothing a packet holds can panic the role.
//!
//! An IPv4 raw socket delivers the outer header with the payload; an
//! IPv6 raw socket delivers only the payload (the kernel has walked the
//! extension headers), and a UDP socket only the GUE header and what
//! follows. The outer source comes from the socket address either way.
//! On a host without IPv6 (`EAFNOSUPPORT`) the role runs on IPv4 alone
//! ([`Decap::outer_ipv6`]).
//!
//! The device gets rp_filter 2, since inner IPv4 packets arrive with the
//! client's source (IPv6 has no rp_filter). One read and one write per
//! packet: this role runs on real servers, at their connection rate.
//!
//! Put `arp_ignore=1`/`arp_announce=2` on the real server's interfaces, as
//! for DR, so it does not answer ARP for the virtual addresses. IPv6 needs
//! nothing: the kernel answers neighbour solicitations only for addresses
//! of the receiving interface, and the virtual addresses sit on the TUN
//! device.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::io::tun::{current_netns, run_in};
use crate::io::IoError;

/// IP protocol number of IPv4 inside IP.
const PROTO_IPIP: u8 = 4;
/// IP protocol number of IPv6 inside IP.
const PROTO_IPV6: u8 = 41;
/// IP protocol number of GRE.
const PROTO_GRE: u8 = 47;

/// How to run the decap role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecapConfig {
    /// TUN device that holds the virtual addresses.
    pub device: String,
    /// Virtual addresses (put on the device as /32 or /128); inner
    /// packets to any other destination are dropped.
    pub vips: Vec<IpAddr>,
    /// Directors: outer sources accepted (IPv4 and IPv6); everything else
    /// is dropped.
    pub directors: Vec<IpAddr>,
    /// Receive IP-in-IP: IPv4 and IPv6 inner packets, over IPv4 and IPv6.
    pub ipip: bool,
    /// Receive GRE, over IPv4 and IPv6.
    pub gre: bool,
    /// Receive GUE on this UDP port, over IPv4 and IPv6.
    pub gue_port: Option<u16>,
}

impl Default for DecapConfig {
    fn default() -> DecapConfig {
        DecapConfig {
            device: "uvsdecap0".into(),
            vips: Vec::new(),
            directors: Vec::new(),
            ipip: true,
            gre: true,
            gue_port: None,
        }
    }
}

/// Decap counters: packets delivered, and packets dropped by reason
/// (each received packet counts exactly once).
#[derive(Debug, Default)]
pub struct DecapStats {
    /// Inner packets written into the device.
    pub delivered: AtomicU64,
    /// Packets from a source that is not a configured director.
    pub foreign_source: AtomicU64,
    /// Malformed encapsulations: a bad outer header, an inner packet whose
    /// version differs from what the outer header announced, or whose
    /// lengths do not add up.
    pub malformed: AtomicU64,
    /// Packets too short for the headers they announce.
    pub truncated: AtomicU64,
    /// Encapsulations the role does not decode: GRE version ≠ 0, source
    /// routing or a non-IP protocol type; GUE control messages, versions
    /// above 1 or a non-IP inner protocol.
    pub unknown_protocol: AtomicU64,
    /// Inner packets to an address that is not one of the virtual
    /// addresses.
    pub not_virtual: AtomicU64,
    /// Inner packets the device refused.
    pub write_failed: AtomicU64,
}

impl DecapStats {
    /// The counter for a drop reason.
    pub fn drops(&self, reason: DecapDrop) -> &AtomicU64 {
        match reason {
            DecapDrop::ForeignSource => &self.foreign_source,
            DecapDrop::Malformed => &self.malformed,
            DecapDrop::Truncated => &self.truncated,
            DecapDrop::UnknownProtocol => &self.unknown_protocol,
            DecapDrop::NotVirtual => &self.not_virtual,
        }
    }
}

/// Why a received packet was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapDrop {
    /// The outer source is not a configured director.
    ForeignSource,
    /// Inconsistent headers (see [`DecapStats::malformed`]).
    Malformed,
    /// Too short for the headers it announces.
    Truncated,
    /// An encapsulation or inner protocol the role does not decode.
    UnknownProtocol,
    /// The inner destination is not a virtual address.
    NotVirtual,
}

/// Which socket a packet came from: what its bytes start with and what
/// follows the outer header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// An IPv4 raw socket: the outer IPv4 header, then `Encap`.
    Ipv4Raw(Encap),
    /// An IPv6 raw socket: the outer header already stripped; `Encap`.
    Ipv6Raw(Encap),
    /// A UDP socket (either family): the GUE header and what follows.
    Gue,
}

/// What follows the outer IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// IP-in-IP with this protocol number: 4 (inner IPv4) or 41 (inner
    /// IPv6).
    Ip(u8),
    /// GRE.
    Gre,
}

/// A running decap role.
#[derive(Debug)]
pub struct Decap {
    stop: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<DecapStats>,
    outer_ipv6: bool,
}

fn socket(domain: i32, ty: i32, proto: i32, what: &str) -> Result<OwnedFd, IoError> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) };
    if fd < 0 {
        return Err(IoError::Os {
            context: format!("open {what} socket"),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether an error says the host has no IPv6.
fn no_ipv6(e: &IoError) -> bool {
    matches!(e, IoError::Os { source, .. } if source.raw_os_error() == Some(libc::EAFNOSUPPORT))
}

/// A UDP socket bound to `port` on every address of `domain` (IPv6:
/// v6-only, so IPv4 GUE stays on its own socket).
fn gue_socket(domain: i32, port: u16) -> Result<OwnedFd, IoError> {
    let what = if domain == libc::AF_INET6 {
        "GUE UDP (IPv6)"
    } else {
        "GUE UDP"
    };
    let fd = socket(domain, libc::SOCK_DGRAM, 0, what)?;
    let failed = |context: String| IoError::Os {
        context,
        source: std::io::Error::last_os_error(),
    };
    let ret = if domain == libc::AF_INET6 {
        let one: libc::c_int = 1;
        // SAFETY: setting an int option on our socket.
        let ret = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if ret != 0 {
            return Err(failed(format!("set IPV6_V6ONLY on the {what} socket")));
        }
        // SAFETY: sockaddr_in6 is plain data.
        let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        sin6.sin6_family = libc::AF_INET6 as u16;
        sin6.sin6_port = port.to_be();
        // SAFETY: binding our socket to a valid sockaddr_in6.
        unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sin6 as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as u32,
            )
        }
    } else {
        // SAFETY: sockaddr_in is plain data.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as u16;
        sin.sin_port = port.to_be();
        // SAFETY: binding our socket to a valid sockaddr_in.
        unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        }
    };
    if ret != 0 {
        return Err(failed(format!("bind {what} port {port}")));
    }
    Ok(fd)
}

/// Open the sockets `config` asks for: IPv4 ones always, IPv6 ones unless
/// the host has no IPv6. Returns them and whether IPv6 is served.
fn open_sockets(config: &DecapConfig) -> Result<(Vec<(OwnedFd, Received)>, bool), IoError> {
    let mut socks = Vec::new();
    let mut protos = Vec::new();
    if config.ipip {
        protos.push((Encap::Ip(PROTO_IPIP), "IPIP"));
        protos.push((Encap::Ip(PROTO_IPV6), "IPv6-in-IP"));
    }
    if config.gre {
        protos.push((Encap::Gre, "GRE"));
    }
    let number = |encap: Encap| match encap {
        Encap::Ip(p) => i32::from(p),
        Encap::Gre => i32::from(PROTO_GRE),
    };
    for &(encap, what) in &protos {
        let fd = socket(libc::AF_INET, libc::SOCK_RAW, number(encap), what)?;
        socks.push((fd, Received::Ipv4Raw(encap)));
    }
    if let Some(port) = config.gue_port {
        socks.push((gue_socket(libc::AF_INET, port)?, Received::Gue));
    }
    let mut v6 = Vec::new();
    let ipv6 = (|| {
        for &(encap, what) in &protos {
            let what = format!("{what} (IPv6)");
            let fd = socket(libc::AF_INET6, libc::SOCK_RAW, number(encap), &what)?;
            v6.push((fd, Received::Ipv6Raw(encap)));
        }
        if let Some(port) = config.gue_port {
            v6.push((gue_socket(libc::AF_INET6, port)?, Received::Gue));
        }
        Ok(())
    })();
    match ipv6 {
        Ok(()) => {
            socks.extend(v6);
            Ok((socks, true))
        }
        Err(e) if no_ipv6(&e) => Ok((socks, false)),
        Err(e) => Err(e),
    }
}

/// Start the decap role in the calling thread's network namespace.
pub fn start(config: &DecapConfig) -> Result<Decap, IoError> {
    if config.directors.is_empty() {
        return Err(IoError::Setup(
            "decap role needs at least one director address to accept tunnels from".into(),
        ));
    }
    if config.vips.is_empty() {
        return Err(IoError::Setup(
            "decap role needs at least one virtual address to deliver to".into(),
        ));
    }
    let netns = current_netns()?;
    let _ = run_in(&netns, "ip", &["link", "del", "dev", &config.device]);
    let dev = tun_rs::DeviceBuilder::new()
        .name(config.device.clone())
        .build_sync()
        .map_err(|e| IoError::Os {
            context: format!("create TUN device {}", config.device),
            source: e,
        })?;
    run_in(&netns, "ip", &["link", "set", "dev", &config.device, "up"])?;
    run_in(
        &netns,
        "sysctl",
        &[
            "-qw",
            &format!("net.ipv4.conf.{}.rp_filter=2", config.device),
        ],
    )?;
    for vip in &config.vips {
        match vip {
            IpAddr::V4(a) => run_in(
                &netns,
                "ip",
                &["addr", "add", &format!("{a}/32"), "dev", &config.device],
            )?,
            IpAddr::V6(a) => run_in(
                &netns,
                "ip",
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{a}/128"),
                    "dev",
                    &config.device,
                    "nodad",
                ],
            )?,
        };
    }
    let (socks, outer_ipv6) = open_sockets(config)?;
    let filter = Filter {
        directors: config.directors.clone(),
        vips: config.vips.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(DecapStats::default());
    let (stop2, stats2) = (stop.clone(), stats.clone());
    let handle = std::thread::Builder::new()
        .name("uvs-decap".into())
        .spawn(move || run(dev, socks, filter, stop2, stats2))
        .map_err(|e| IoError::Os {
            context: "spawn the decap worker".into(),
            source: e,
        })?;
    Ok(Decap {
        stop,
        worker: Mutex::new(Some(handle)),
        stats,
        outer_ipv6,
    })
}

impl Decap {
    /// Counters.
    pub fn stats(&self) -> &DecapStats {
        &self.stats
    }

    /// Whether tunnels over IPv6 are received (false on a host without
    /// IPv6).
    pub fn outer_ipv6(&self) -> bool {
        self.outer_ipv6
    }

    /// Stop the role; the device (and its addresses) goes with it.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Drop for Decap {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the role accepts: outer sources and inner destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Accepted outer sources.
    pub directors: Vec<IpAddr>,
    /// Accepted inner destinations.
    pub vips: Vec<IpAddr>,
}

fn byte(pkt: &[u8], at: usize) -> Result<u8, DecapDrop> {
    pkt.get(at).copied().ok_or(DecapDrop::Truncated)
}

fn be16(pkt: &[u8], at: usize) -> Result<u16, DecapDrop> {
    Ok(u16::from_be_bytes([byte(pkt, at)?, byte(pkt, at + 1)?]))
}

/// The payload of an outer IPv4 header (as an IPv4 raw socket delivers
/// it), cut to the header's total length.
fn outer_ipv4_payload(pkt: &[u8]) -> Result<&[u8], DecapDrop> {
    let b0 = byte(pkt, 0)?;
    if b0 >> 4 != 4 {
        return Err(DecapDrop::Malformed);
    }
    let ihl = usize::from(b0 & 0x0f) * 4;
    let total = usize::from(be16(pkt, 2)?);
    if ihl < 20 || total < ihl {
        return Err(DecapDrop::Malformed);
    }
    pkt.get(ihl..total).ok_or(DecapDrop::Truncated)
}

/// The GRE payload and the IP version its protocol type announces.
fn gre_payload(gre: &[u8]) -> Result<(&[u8], u8), DecapDrop> {
    let flags = be16(gre, 0)?;
    // Version ≠ 0 (PPTP), or source routing (RFC 1701): not ours.
    if flags & 0x0007 != 0 || flags & 0x4000 != 0 {
        return Err(DecapDrop::UnknownProtocol);
    }
    let version = match be16(gre, 2)? {
        0x0800 => 4,
        0x86dd => 6,
        _ => return Err(DecapDrop::UnknownProtocol),
    };
    // Checksum (+ reserved), key and sequence number: 4 bytes each.
    let len = 4 + [0x8000u16, 0x2000, 0x1000]
        .iter()
        .filter(|bit| flags & **bit != 0)
        .count()
        * 4;
    let payload = gre.get(len..).ok_or(DecapDrop::Truncated)?;
    Ok((payload, version))
}

/// The GUE payload and the IP version it announces.
fn gue_payload(gue: &[u8]) -> Result<(&[u8], u8), DecapDrop> {
    let b0 = byte(gue, 0)?;
    match b0 >> 6 {
        // Version 0; C = 1 is a control message.
        0 if b0 & 0x20 == 0 => {
            let version = match byte(gue, 1)? {
                PROTO_IPIP => 4,
                PROTO_IPV6 => 6,
                _ => return Err(DecapDrop::UnknownProtocol),
            };
            let len = 4 + usize::from(b0 & 0x1f) * 4;
            Ok((gue.get(len..).ok_or(DecapDrop::Truncated)?, version))
        }
        // Version 1: the payload is the IP packet itself (first nibble
        // 4 or 6 has the version bits 01).
        1 => Ok((gue, b0 >> 4)),
        _ => Err(DecapDrop::UnknownProtocol),
    }
}

/// The inner IP packet of `version`, cut to its own length, and its
/// destination.
fn inner_ip(pkt: &[u8], version: u8) -> Result<(&[u8], IpAddr), DecapDrop> {
    let b0 = byte(pkt, 0)?;
    if !matches!(b0 >> 4, 4 | 6) {
        return Err(DecapDrop::UnknownProtocol);
    }
    if b0 >> 4 != version {
        return Err(DecapDrop::Malformed);
    }
    if version == 4 {
        let ihl = usize::from(b0 & 0x0f) * 4;
        let total = usize::from(be16(pkt, 2)?);
        if ihl < 20 || total < ihl {
            return Err(DecapDrop::Malformed);
        }
        let ip = pkt.get(..total).ok_or(DecapDrop::Truncated)?;
        let dst = ip.get(16..20).ok_or(DecapDrop::Truncated)?;
        let dst = Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]);
        Ok((ip, IpAddr::V4(dst)))
    } else {
        let payload_len = usize::from(be16(pkt, 4)?);
        // Payload length 0 means a jumbogram (RFC 2675): not over a tunnel.
        if payload_len == 0 && pkt.len() > 40 {
            return Err(DecapDrop::Malformed);
        }
        let ip = pkt.get(..40 + payload_len).ok_or(DecapDrop::Truncated)?;
        let dst: [u8; 16] = ip
            .get(24..40)
            .and_then(|d| d.try_into().ok())
            .ok_or(DecapDrop::Truncated)?;
        Ok((ip, IpAddr::V6(Ipv6Addr::from(dst))))
    }
}

/// The inner packet of a tunnelled datagram read from a `kind` socket
/// with outer source `from`, if the role delivers it; else why not.
/// Never panics, whatever `pkt` holds.
pub fn decapsulate<'a>(
    kind: Received,
    from: IpAddr,
    pkt: &'a [u8],
    filter: &Filter,
) -> Result<&'a [u8], DecapDrop> {
    if !filter.directors.contains(&from) {
        return Err(DecapDrop::ForeignSource);
    }
    let (payload, version) = match kind {
        Received::Ipv4Raw(encap) | Received::Ipv6Raw(encap) => {
            let payload = match kind {
                Received::Ipv4Raw(_) => outer_ipv4_payload(pkt)?,
                _ => pkt,
            };
            match encap {
                Encap::Ip(PROTO_IPIP) => (payload, 4),
                Encap::Ip(PROTO_IPV6) => (payload, 6),
                Encap::Ip(_) => return Err(DecapDrop::UnknownProtocol),
                Encap::Gre => gre_payload(payload)?,
            }
        }
        Received::Gue => gue_payload(pkt)?,
    };
    let (inner, dst) = inner_ip(payload, version)?;
    if !filter.vips.contains(&dst) {
        return Err(DecapDrop::NotVirtual);
    }
    Ok(inner)
}

/// The source address in a `recvfrom` socket address.
fn source_of(from: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(from.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin =
                unsafe { &*(from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 =
                unsafe { &*(from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

fn run(
    dev: tun_rs::SyncDevice,
    socks: Vec<(OwnedFd, Received)>,
    filter: Filter,
    stop: Arc<AtomicBool>,
    stats: Arc<DecapStats>,
) {
    let mut pollfds: Vec<libc::pollfd> = socks
        .iter()
        .map(|(fd, _)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        for p in pollfds.iter_mut() {
            p.revents = 0;
        }
        // SAFETY: pollfds is a valid array of our fds.
        let ready = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 100) };
        if ready <= 0 {
            continue;
        }
        let (mut delivered, mut write_failed) = (0u64, 0u64);
        for (i, (fd, kind)) in socks.iter().enumerate() {
            if pollfds[i].revents == 0 {
                continue;
            }
            for _ in 0..64 {
                // SAFETY: sockaddr_storage is plain data.
                let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
                let mut fromlen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                // SAFETY: buf and from are valid for the sizes given.
                let n = unsafe {
                    libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                        (&mut from as *mut libc::sockaddr_storage).cast(),
                        &mut fromlen,
                    )
                };
                let Ok(n) = usize::try_from(n) else { break };
                let Some(src) = source_of(&from) else {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match decapsulate(*kind, src, &buf[..n.min(buf.len())], &filter) {
                    Ok(pkt) => {
                        if dev.send(pkt).is_ok() {
                            delivered += 1;
                        } else {
                            write_failed += 1;
                        }
                    }
                    Err(reason) => {
                        stats.drops(reason).fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        stats.delivered.fetch_add(delivered, Ordering::Relaxed);
        stats
            .write_failed
            .fetch_add(write_failed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR4: [u8; 4] = [192, 168, 79, 128];
    const VIP4: [u8; 4] = [192, 168, 79, 180];
    const CLIENT4: [u8; 4] = [192, 168, 79, 100];
    const DIR6: &str = "fd79::128";
    const VIP6: &str = "fd79::180";
    const CLIENT6: &str = "fd79::100";

    fn filter() -> Filter {
        Filter {
            directors: vec![IpAddr::from(DIR4), DIR6.parse().unwrap()],
            vips: vec![IpAddr::from(VIP4), VIP6.parse().unwrap()],
        }
    }

    fn dir4() -> IpAddr {
        IpAddr::from(DIR4)
    }

    fn dir6() -> IpAddr {
        DIR6.parse().unwrap()
    }

    /// An IPv4 TCP packet CLIENT4 → `dst` with 4 payload bytes.
    fn inner4(dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0];
        p.extend(CLIENT4);
        p.extend(dst);
        p.extend([
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ]);
        p.extend([0, 0, 0, 0, 1, 2, 3, 4]);
        p
    }

    /// An IPv6 TCP packet CLIENT6 → `dst` with 4 payload bytes.
    fn inner6(dst: &str) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 24, 6, 64];
        p.extend(CLIENT6.parse::<Ipv6Addr>().unwrap().octets());
        p.extend(dst.parse::<Ipv6Addr>().unwrap().octets());
        p.extend([
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ]);
        p.extend([0, 0, 0, 0, 1, 2, 3, 4]);
        p
    }

    /// An outer IPv4 header DIR4 → RS with `proto` around `payload`.
    fn outer4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend(total.to_be_bytes());
        p.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
        p.extend(DIR4);
        p.extend([192, 168, 79, 129]);
        p.extend(payload);
        p
    }

    fn gre(ethertype: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = flags.to_be_bytes().to_vec();
        p.extend(ethertype.to_be_bytes());
        for bit in [0x8000u16, 0x2000, 0x1000] {
            if flags & bit != 0 {
                p.extend([0xaa, 0xbb, 0xcc, 0xdd]);
            }
        }
        p.extend(payload);
        p
    }

    fn gue(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0, proto, 0, 0];
        p.extend(payload);
        p
    }

    const V4_IPIP: Received = Received::Ipv4Raw(Encap::Ip(PROTO_IPIP));
    const V4_6IN4: Received = Received::Ipv4Raw(Encap::Ip(PROTO_IPV6));
    const V4_GRE: Received = Received::Ipv4Raw(Encap::Gre);
    const V6_4IN6: Received = Received::Ipv6Raw(Encap::Ip(PROTO_IPIP));
    const V6_6IN6: Received = Received::Ipv6Raw(Encap::Ip(PROTO_IPV6));
    const V6_GRE: Received = Received::Ipv6Raw(Encap::Gre);

    #[test]
    fn ipv4_outer_ipip_and_6in4_yield_the_inner_packet() {
        let f = filter();
        let i4 = inner4(VIP4);
        assert_eq!(
            decapsulate(V4_IPIP, dir4(), &outer4(4, &i4), &f),
            Ok(&i4[..])
        );
        let i6 = inner6(VIP6);
        assert_eq!(
            decapsulate(V4_6IN4, dir4(), &outer4(41, &i6), &f),
            Ok(&i6[..])
        );
    }

    #[test]
    fn ipv6_outer_6in6_and_4in6_yield_the_inner_packet() {
        let f = filter();
        let i6 = inner6(VIP6);
        assert_eq!(decapsulate(V6_6IN6, dir6(), &i6, &f), Ok(&i6[..]));
        let i4 = inner4(VIP4);
        assert_eq!(decapsulate(V6_4IN6, dir6(), &i4, &f), Ok(&i4[..]));
    }

    #[test]
    fn gre_over_both_families_with_optional_fields() {
        let f = filter();
        let i4 = inner4(VIP4);
        let i6 = inner6(VIP6);
        let g = outer4(47, &gre(0x0800, 0x8000, &i4));
        assert_eq!(decapsulate(V4_GRE, dir4(), &g, &f), Ok(&i4[..]));
        let g = gre(0x86dd, 0, &i6);
        assert_eq!(decapsulate(V6_GRE, dir6(), &g, &f), Ok(&i6[..]));
        let g = gre(0x0800, 0xb000, &i4);
        assert_eq!(decapsulate(V6_GRE, dir6(), &g, &f), Ok(&i4[..]));
    }

    #[test]
    fn gue_versions_0_and_1_over_both_families() {
        let f = filter();
        let i4 = inner4(VIP4);
        let i6 = inner6(VIP6);
        assert_eq!(
            decapsulate(Received::Gue, dir4(), &gue(4, &i4), &f),
            Ok(&i4[..])
        );
        assert_eq!(
            decapsulate(Received::Gue, dir6(), &gue(41, &i6), &f),
            Ok(&i6[..])
        );
        // GUE version 1: the IP packet directly.
        assert_eq!(decapsulate(Received::Gue, dir6(), &i6, &f), Ok(&i6[..]));
        // One 4-byte option word (hlen 1).
        let mut g = vec![0x01, 4, 0, 0, 9, 9, 9, 9];
        g.extend(&i4);
        assert_eq!(decapsulate(Received::Gue, dir4(), &g, &f), Ok(&i4[..]));
    }

    #[test]
    fn trailing_bytes_are_cut_to_the_inner_length() {
        let f = filter();
        let i6 = inner6(VIP6);
        let mut padded = i6.clone();
        padded.extend([0xee; 6]);
        assert_eq!(decapsulate(V6_6IN6, dir6(), &padded, &f), Ok(&i6[..]));
        let i4 = inner4(VIP4);
        let mut padded = i4.clone();
        padded.extend([0xee; 6]);
        assert_eq!(decapsulate(V6_4IN6, dir6(), &padded, &f), Ok(&i4[..]));
    }

    #[test]
    fn foreign_outer_source_is_dropped() {
        let f = filter();
        let client6: IpAddr = CLIENT6.parse().unwrap();
        assert_eq!(
            decapsulate(V6_6IN6, client6, &inner6(VIP6), &f),
            Err(DecapDrop::ForeignSource)
        );
        assert_eq!(
            decapsulate(
                V4_IPIP,
                IpAddr::from(CLIENT4),
                &outer4(4, &inner4(VIP4)),
                &f
            ),
            Err(DecapDrop::ForeignSource)
        );
        // The director's IPv4 address does not vouch for IPv6 (and back).
        let only4 = Filter {
            directors: vec![dir4()],
            vips: f.vips.clone(),
        };
        assert_eq!(
            decapsulate(V6_6IN6, dir6(), &inner6(VIP6), &only4),
            Err(DecapDrop::ForeignSource)
        );
    }

    #[test]
    fn wrong_inner_destination_is_dropped() {
        let f = filter();
        assert_eq!(
            decapsulate(V6_6IN6, dir6(), &inner6("fd79::129"), &f),
            Err(DecapDrop::NotVirtual)
        );
        assert_eq!(
            decapsulate(V6_4IN6, dir6(), &inner4([192, 168, 79, 129]), &f),
            Err(DecapDrop::NotVirtual)
        );
        assert_eq!(
            decapsulate(V4_IPIP, dir4(), &outer4(4, &inner4([10, 0, 0, 1])), &f),
            Err(DecapDrop::NotVirtual)
        );
    }

    #[test]
    fn inner_version_must_match_the_outer_protocol() {
        let f = filter();
        assert_eq!(
            decapsulate(V6_6IN6, dir6(), &inner4(VIP4), &f),
            Err(DecapDrop::Malformed)
        );
        assert_eq!(
            decapsulate(V6_4IN6, dir6(), &inner6(VIP6), &f),
            Err(DecapDrop::Malformed)
        );
        let g = gre(0x86dd, 0, &inner4(VIP4));
        assert_eq!(
            decapsulate(V6_GRE, dir6(), &g, &f),
            Err(DecapDrop::Malformed)
        );
        assert_eq!(
            decapsulate(Received::Gue, dir6(), &gue(4, &inner6(VIP6)), &f),
            Err(DecapDrop::Malformed)
        );
    }

    #[test]
    fn unknown_protocols_are_dropped() {
        let f = filter();
        let i6 = inner6(VIP6);
        // GRE carrying Ethernet (0x6558), GRE version 1, source routing.
        for (ty, flags) in [(0x6558, 0), (0x86dd, 1), (0x86dd, 0x4000)] {
            assert_eq!(
                decapsulate(V6_GRE, dir6(), &gre(ty, flags, &i6), &f),
                Err(DecapDrop::UnknownProtocol),
                "GRE type {ty:#x} flags {flags:#x}"
            );
        }
        // GUE control message, GUE version 2, GUE carrying UDP (17).
        let mut control = vec![0x20, 0, 0, 0];
        control.extend(&i6);
        assert_eq!(
            decapsulate(Received::Gue, dir6(), &control, &f),
            Err(DecapDrop::UnknownProtocol)
        );
        assert_eq!(
            decapsulate(Received::Gue, dir6(), &[0x80, 41, 0, 0], &f),
            Err(DecapDrop::UnknownProtocol)
        );
        assert_eq!(
            decapsulate(Received::Gue, dir6(), &gue(17, &i6), &f),
            Err(DecapDrop::UnknownProtocol)
        );
        // An inner packet that is no IP at all.
        let mut junk = i6.clone();
        junk[0] = 0x20;
        assert_eq!(
            decapsulate(V6_6IN6, dir6(), &junk, &f),
            Err(DecapDrop::UnknownProtocol)
        );
        // A protocol number the role never opens a socket for.
        assert_eq!(
            decapsulate(Received::Ipv6Raw(Encap::Ip(17)), dir6(), &i6, &f),
            Err(DecapDrop::UnknownProtocol)
        );
    }

    #[test]
    fn truncated_packets_are_dropped() {
        let f = filter();
        let i6 = inner6(VIP6);
        for len in [0, 1, 5, 39, 40, i6.len() - 1] {
            assert_eq!(
                decapsulate(V6_6IN6, dir6(), &i6[..len], &f),
                Err(DecapDrop::Truncated),
                "IPv6-in-IPv6 cut to {len}"
            );
        }
        let i4 = inner4(VIP4);
        for len in [1, 3, i4.len() - 1] {
            assert_eq!(
                decapsulate(V6_4IN6, dir6(), &i4[..len], &f),
                Err(DecapDrop::Truncated),
                "IPv4-in-IPv6 cut to {len}"
            );
        }
        let g = gre(0x86dd, 0xb000, &i6);
        for len in [0, 3, 15] {
            assert_eq!(
                decapsulate(V6_GRE, dir6(), &g[..len], &f),
                Err(DecapDrop::Truncated),
                "GRE cut to {len}"
            );
        }
        // An outer IPv4 header announcing more than arrived.
        let o = outer4(4, &inner4(VIP4));
        assert_eq!(
            decapsulate(V4_IPIP, dir4(), &o[..o.len() - 1], &f),
            Err(DecapDrop::Truncated)
        );
        assert_eq!(
            decapsulate(Received::Gue, dir4(), &[0x01, 4, 0, 0], &f),
            Err(DecapDrop::Truncated)
        );
    }

    #[test]
    fn bad_header_lengths_are_malformed() {
        let f = filter();
        let mut i4 = inner4(VIP4);
        i4[0] = 0x44; // IHL 16 bytes
        assert_eq!(
            decapsulate(V6_4IN6, dir6(), &i4, &f),
            Err(DecapDrop::Malformed)
        );
        let mut i4 = inner4(VIP4);
        i4[3] = 10; // total length below the header
        assert_eq!(
            decapsulate(V6_4IN6, dir6(), &i4, &f),
            Err(DecapDrop::Malformed)
        );
        let mut o = outer4(4, &inner4(VIP4));
        o[0] = 0x65; // outer "IPv4" header with version 6
        assert_eq!(
            decapsulate(V4_IPIP, dir4(), &o, &f),
            Err(DecapDrop::Malformed)
        );
        let mut j = inner6(VIP6);
        j[4] = 0;
        j[5] = 0; // jumbogram payload length
        assert_eq!(
            decapsulate(V6_6IN6, dir6(), &j, &f),
            Err(DecapDrop::Malformed)
        );
    }

    /// Every prefix and every single-byte corruption of every shape:
    /// decapsulate answers, never panics, and any delivered packet lies
    /// inside the input.
    #[test]
    fn never_panics_on_cut_or_corrupted_input() {
        let f = filter();
        let i4 = inner4(VIP4);
        let i6 = inner6(VIP6);
        let cases: Vec<(Received, IpAddr, Vec<u8>)> = vec![
            (V4_IPIP, dir4(), outer4(4, &i4)),
            (V4_6IN4, dir4(), outer4(41, &i6)),
            (V4_GRE, dir4(), outer4(47, &gre(0x86dd, 0xb000, &i6))),
            (V6_6IN6, dir6(), i6.clone()),
            (V6_4IN6, dir6(), i4.clone()),
            (V6_GRE, dir6(), gre(0x0800, 0x8000, &i4)),
            (Received::Gue, dir6(), gue(41, &i6)),
            (Received::Gue, dir4(), gue(4, &i4)),
        ];
        for (kind, from, pkt) in &cases {
            for len in 0..=pkt.len() {
                let cut = &pkt[..len];
                if let Ok(inner) = decapsulate(*kind, *from, cut, &f) {
                    assert!(len == pkt.len() && inner.len() <= len);
                }
            }
            for at in 0..pkt.len() {
                for v in [0x00, 0x0f, 0x40, 0x60, 0xff] {
                    let mut bad = pkt.clone();
                    bad[at] = v;
                    if let Ok(inner) = decapsulate(*kind, *from, &bad, &f) {
                        assert!(inner.len() <= bad.len());
                    }
                }
            }
        }
    }

    #[test]
    fn source_of_reads_both_families() {
        // SAFETY: sockaddr_storage is plain data.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        ss.ss_family = libc::AF_INET6 as u16;
        let want: Ipv6Addr = DIR6.parse().unwrap();
        // SAFETY: the storage is large enough for a sockaddr_in6.
        unsafe {
            (*(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>())
                .sin6_addr
                .s6_addr = want.octets();
        }
        assert_eq!(source_of(&ss), Some(IpAddr::V6(want)));
        ss.ss_family = libc::AF_INET as u16;
        // SAFETY: the storage is large enough for a sockaddr_in.
        unsafe {
            (*(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>())
                .sin_addr
                .s_addr = u32::from_be_bytes(DIR4).to_be();
        }
        assert_eq!(source_of(&ss), Some(dir4()));
        ss.ss_family = libc::AF_UNIX as u16;
        assert_eq!(source_of(&ss), None);
    }

    #[test]
    fn every_drop_reason_has_its_own_counter() {
        let stats = DecapStats::default();
        let reasons = [
            DecapDrop::ForeignSource,
            DecapDrop::Malformed,
            DecapDrop::Truncated,
            DecapDrop::UnknownProtocol,
            DecapDrop::NotVirtual,
        ];
        for (i, r) in reasons.iter().enumerate() {
            for _ in 0..=i {
                stats.drops(*r).fetch_add(1, Ordering::Relaxed);
            }
        }
        for (i, r) in reasons.iter().enumerate() {
            assert_eq!(stats.drops(*r).load(Ordering::Relaxed), i as u64 + 1);
        }
    }
}
