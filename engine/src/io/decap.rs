//! The decap role: what a real server runs so that TUN-mode traffic needs
//! no `ipip`/`gre`/`fou` kernel module.
//!
//! The role receives tunnelled packets addressed to this host — IPIP and
//! IPv6-in-IPv4 on raw sockets (protocols 4 and 41), GRE on a raw socket
//! (protocol 47), GUE on a UDP port — accepts only those whose **outer
//! source** is one of the configured director addresses (a raw socket
//! sees every such packet to the host), strips the outer headers and
//! writes the inner packet into a TUN device that holds the virtual
//! addresses. The local stack then answers from the virtual address
//! straight to the client, never through the director. The open raw
//! socket also stops the kernel's "protocol unreachable" replies.
//!
//! Outer headers are IPv4 (the raw sockets of an IPv6 host do not carry
//! the outer header). The device gets rp_filter 2, since inner packets
//! arrive with the client's source. One read and one write per packet:
//! this role runs on real servers, at their connection rate.
//!
//! Put `arp_ignore=1`/`arp_announce=2` on the real server's interfaces, as
//! for DR, so it does not answer ARP for the virtual addresses.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::io::tun::{current_netns, run_in};
use crate::io::IoError;

/// How to run the decap role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecapConfig {
    /// TUN device that holds the virtual addresses.
    pub device: String,
    /// Virtual addresses (put on the device as /32 or /128).
    pub vips: Vec<IpAddr>,
    /// Directors: outer sources accepted; everything else is dropped.
    pub directors: Vec<IpAddr>,
    /// Receive IPIP (and IPv6-in-IPv4).
    pub ipip: bool,
    /// Receive GRE.
    pub gre: bool,
    /// Receive GUE on this UDP port.
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

/// Decap counters.
#[derive(Debug, Default)]
pub struct DecapStats {
    /// Inner packets written into the device.
    pub delivered: AtomicU64,
    /// Packets from a source that is not a configured director.
    pub foreign_source: AtomicU64,
    /// Malformed or unsupported encapsulations.
    pub malformed: AtomicU64,
}

/// A running decap role.
#[derive(Debug)]
pub struct Decap {
    stop: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<DecapStats>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Raw IPv4 socket: outer header included; payload is the inner packet.
    Ipip,
    /// Raw IPv4 socket for GRE.
    Gre,
    /// UDP socket: payload is GUE header + inner packet.
    Gue,
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

/// Start the decap role in the calling thread's network namespace.
pub fn start(config: &DecapConfig) -> Result<Decap, IoError> {
    if config.directors.is_empty() {
        return Err(IoError::Setup(
            "decap role needs at least one director address to accept tunnels from".into(),
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
        let prefix = match vip {
            IpAddr::V4(a) => format!("{a}/32"),
            IpAddr::V6(a) => format!("{a}/128"),
        };
        run_in(
            &netns,
            "ip",
            &["addr", "add", &prefix, "dev", &config.device],
        )?;
    }
    let mut socks = Vec::new();
    if config.ipip {
        socks.push((
            socket(libc::AF_INET, libc::SOCK_RAW, 4, "IPIP raw")?,
            Kind::Ipip,
        ));
        socks.push((
            socket(libc::AF_INET, libc::SOCK_RAW, 41, "6in4 raw")?,
            Kind::Ipip,
        ));
    }
    if config.gre {
        socks.push((
            socket(libc::AF_INET, libc::SOCK_RAW, 47, "GRE raw")?,
            Kind::Gre,
        ));
    }
    if let Some(port) = config.gue_port {
        let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0, "GUE UDP")?;
        // SAFETY: sockaddr_in is plain data.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as u16;
        sin.sin_port = port.to_be();
        // SAFETY: binding our socket to a valid sockaddr_in.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        if ret != 0 {
            return Err(IoError::Os {
                context: format!("bind GUE UDP port {port}"),
                source: std::io::Error::last_os_error(),
            });
        }
        socks.push((fd, Kind::Gue));
    }
    let directors: Vec<Ipv4Addr> = config
        .directors
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(DecapStats::default());
    let (stop2, stats2) = (stop.clone(), stats.clone());
    let handle = std::thread::Builder::new()
        .name("uvs-decap".into())
        .spawn(move || run(dev, socks, directors, stop2, stats2))
        .map_err(|e| IoError::Os {
            context: "spawn the decap worker".into(),
            source: e,
        })?;
    Ok(Decap {
        stop,
        worker: Mutex::new(Some(handle)),
        stats,
    })
}

impl Decap {
    /// Counters.
    pub fn stats(&self) -> &DecapStats {
        &self.stats
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

/// The inner packet of a tunnelled datagram, if it is well formed.
fn inner(kind: Kind, pkt: &[u8]) -> Option<&[u8]> {
    match kind {
        Kind::Ipip => {
            let ihl = usize::from(pkt.first()? & 0x0f) * 4;
            pkt.get(ihl..)
        }
        Kind::Gre => {
            let ihl = usize::from(pkt.first()? & 0x0f) * 4;
            let gre = pkt.get(ihl..)?;
            let flags = u16::from_be_bytes([*gre.first()?, *gre.get(1)?]);
            if flags & 0x0007 != 0 || flags & 0x4000 != 0 {
                return None; // version ≠ 0, or source routing
            }
            let proto = u16::from_be_bytes([*gre.get(2)?, *gre.get(3)?]);
            if proto != 0x0800 && proto != 0x86dd {
                return None;
            }
            let mut len = 4;
            for bit in [0x8000u16, 0x2000, 0x1000] {
                if flags & bit != 0 {
                    len += 4;
                }
            }
            gre.get(len..)
        }
        Kind::Gue => {
            let b0 = *pkt.first()?;
            match b0 >> 6 {
                0 if b0 & 0x20 == 0 => pkt.get(4 + usize::from(b0 & 0x1f) * 4..),
                // Version 1: the payload is the IP packet itself.
                1 => Some(pkt),
                _ => None,
            }
        }
    }
    .filter(|p| matches!(p.first().map(|b| b >> 4), Some(4) | Some(6)))
}

fn run(
    dev: tun_rs::SyncDevice,
    socks: Vec<(OwnedFd, Kind)>,
    directors: Vec<Ipv4Addr>,
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
        let (mut delivered, mut foreign, mut malformed) = (0u64, 0u64, 0u64);
        for (i, (fd, kind)) in socks.iter().enumerate() {
            if pollfds[i].revents == 0 {
                continue;
            }
            for _ in 0..64 {
                // SAFETY: sockaddr_in is plain data.
                let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                let mut fromlen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                // SAFETY: buf and from are valid for the sizes given.
                let n = unsafe {
                    libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                        (&mut from as *mut libc::sockaddr_in).cast(),
                        &mut fromlen,
                    )
                };
                let Ok(n) = usize::try_from(n) else { break };
                let src = Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr));
                if !directors.contains(&src) {
                    foreign += 1;
                    continue;
                }
                match inner(*kind, &buf[..n]) {
                    Some(pkt) => {
                        if dev.send(pkt).is_ok() {
                            delivered += 1;
                        }
                    }
                    None => malformed += 1,
                }
            }
        }
        stats.delivered.fetch_add(delivered, Ordering::Relaxed);
        stats.foreign_source.fetch_add(foreign, Ordering::Relaxed);
        stats.malformed.fetch_add(malformed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ipip_gre_and_gue() {
        let inner_pkt = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let mut ipip = vec![0x45u8; 1];
        ipip.extend([0u8; 19]);
        ipip.extend(inner_pkt);
        assert_eq!(inner(Kind::Ipip, &ipip), Some(&inner_pkt[..]));
        let mut gre = ipip[..20].to_vec();
        gre.extend([0x80, 0, 0x08, 0, 0xaa, 0xbb, 0, 0]);
        gre.extend(inner_pkt);
        assert_eq!(inner(Kind::Gre, &gre), Some(&inner_pkt[..]));
        let mut gue = vec![0u8, 4, 0, 0];
        gue.extend(inner_pkt);
        assert_eq!(inner(Kind::Gue, &gue), Some(&inner_pkt[..]));
        // A GUE control message and a non-IP payload are refused.
        assert_eq!(inner(Kind::Gue, &[0x20, 0, 0, 0, 0x45]), None);
        assert_eq!(
            inner(Kind::Ipip, &[0x45; 21][..]).map(|p| p[0] >> 4),
            Some(4)
        );
        assert_eq!(inner(Kind::Ipip, &[0x45, 0, 0]), None);
    }
}
