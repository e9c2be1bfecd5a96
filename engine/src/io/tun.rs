//! The TUN backend: the fallback that works on any VM, without XDP.
//!
//! A TUN device (`IFF_TUN | IFF_NO_PI`, made with **tun-rs**: maintained,
//! non-blocking mode, MTU/queue-length settings and multi-queue support,
//! no async runtime pulled in with default features off; tun-tap is only
//! passively maintained and lacks non-blocking mode without its tokio
//! feature — see packet-io.md §4, where both measured the same) receives
//! the traffic the engine owns, steered by the kernel's routing:
//!
//! - virtual and full-NAT local addresses: a `/32` (`/128`) route into the
//!   device in the main table. These vanish with the device, so a
//!   `kill -9` leaves none behind. The virtual address must not be a local
//!   address of the director (the local table would win).
//! - NAT replies (source real server address and port): policy rules
//!   `from RS ipproto P sport N lookup <table>` at priority
//!   [`TunConfig::rule_priority`], the table holding a default route into
//!   the device. Rules outlive a killed process; the next start removes
//!   every rule at that priority before installing its own (and shutdown
//!   removes them).
//!
//! Each packet read is given a fake Ethernet header so the engine's parser
//! sees a frame, then [`Engine::process`] runs per batch (up to
//! [`BATCH`] packets read without blocking). NAT, full-NAT and tunnel
//! output goes back into the device (Ethernet header stripped, the outer
//! packet for tunnels) for the kernel to route, which needs
//! `net.ipv4.ip_forward=1` (and `net.ipv6.conf.all.forwarding=1`). DR
//! output still has the virtual address as destination, which the kernel
//! cannot route to a real server, so it leaves as the Ethernet frame the
//! engine wrote (next-hop MAC included) through an AF_PACKET socket on the
//! egress port ([`crate::io::packet_socket`]). A frame the engine passes
//! cannot go back to the kernel (it would loop into the device): counted
//! in [`TunStats::pass_lost`]. rp_filter on the device is set to 0 and
//! accept_local to 1: rewritten packets re-enter with the client's source,
//! tunnel output with the director's own address, and a loose (2) filter
//! still refuses the latter. The effective value is the larger of the
//! device's and `all`'s, so `net.ipv4.conf.all.rp_filter` must be 0 too
//! for tunnel output (the daemon's start-up check).
//!
//! A TUN fd has no batch read: one read per packet, one write per packet
//! (DR frames go out with one `sendmmsg` per port per batch). This is the
//! slow path by design (packet-io.md measured ~1/4 of kernel forwarding).

use std::collections::HashSet;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;

use crate::engine::{Engine, Packet, Verdict, Worker};
use crate::io::packet_socket::PacketSocket;
use crate::io::{Backend, IoError, Steering};
use crate::route::PortId;
use crate::time::Millis;
use crate::xmit::FrameBuf;

/// Packets per batch.
pub const BATCH: usize = 64;
/// Buffer per packet.
const SLOT: usize = 2048;
/// Headroom before the fake Ethernet header (tunnel headers go there).
const HEADROOM: usize = 128;
/// Ethernet header length.
const ETH: usize = 14;

/// How to run the TUN backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunConfig {
    /// TUN device name.
    pub device: String,
    /// Interfaces in [`PortId`] order (the engine's `NetView` ports); DR
    /// output leaves through a packet socket on each.
    pub interfaces: Vec<String>,
    /// Routing table for NAT-reply policy routes.
    pub table: u32,
    /// Priority of the NAT-reply rules (every rule at this priority is
    /// ours and removed at start and shutdown).
    pub rule_priority: u32,
    /// Device MTU.
    pub mtu: u16,
}

impl Default for TunConfig {
    fn default() -> TunConfig {
        TunConfig {
            device: "uvs0".into(),
            interfaces: Vec::new(),
            table: 7710,
            rule_priority: 7710,
            mtu: 1500,
        }
    }
}

/// TUN backend counters.
#[derive(Debug, Default)]
pub struct TunStats {
    /// Packets read from the device.
    pub rx: AtomicU64,
    /// Packets written back into the device.
    pub tx_tun: AtomicU64,
    /// Frames sent through packet sockets (DR).
    pub tx_packet: AtomicU64,
    /// Passed frames that could not go back to the kernel.
    pub pass_lost: AtomicU64,
    /// Frames dropped by the engine.
    pub dropped: AtomicU64,
    /// Writes or sends that failed.
    pub tx_errors: AtomicU64,
}

/// Run `ip ARGS` (or another tool) in the network namespace `ns`.
pub(crate) fn run_in(ns: &File, prog: &str, args: &[&str]) -> Result<(), IoError> {
    let fd = ns.as_raw_fd();
    let mut cmd = Command::new(prog);
    cmd.args(args);
    // SAFETY: setns is async-signal-safe; the fd is open in the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().map_err(|e| IoError::Os {
        context: format!("run {prog} {}", args.join(" ")),
        source: e,
    })?;
    if !out.status.success() {
        return Err(IoError::Setup(format!(
            "`{prog} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The calling thread's network namespace.
pub(crate) fn current_netns() -> Result<File, IoError> {
    File::open("/proc/thread-self/ns/net").map_err(|e| IoError::Os {
        context: "open /proc/thread-self/ns/net".into(),
        source: e,
    })
}

fn host_prefix(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        132 => "sctp".into(),
        other => other.to_string(),
    }
}

/// What the routes and rules currently steer.
#[derive(Debug, Default)]
struct Installed {
    routes: HashSet<IpAddr>,
    rules: HashSet<(u8, IpAddr, u16)>,
}

/// The running TUN backend.
#[derive(Debug)]
pub struct TunBackend {
    config: TunConfig,
    netns: File,
    installed: Mutex<Installed>,
    vips: Arc<ArcSwap<Vec<IpAddr>>>,
    stop: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<TunStats>,
    done: AtomicBool,
}

/// Remove what a previous (perhaps killed) run left: the device, every
/// rule at our priority, our table.
fn remove_leftovers(ns: &File, config: &TunConfig) {
    let _ = run_in(ns, "ip", &["link", "del", "dev", &config.device]);
    let pref = config.rule_priority.to_string();
    for family in ["-4", "-6"] {
        for _ in 0..10_000 {
            if run_in(ns, "ip", &[family, "rule", "del", "pref", &pref]).is_err() {
                break;
            }
        }
        let table = config.table.to_string();
        let _ = run_in(ns, "ip", &[family, "route", "flush", "table", &table]);
    }
}

/// Start the backend: remove leftovers of a previous run, create the
/// device, open a packet socket per interface and start the worker.
/// Traffic is steered once [`Backend::steer`] is called.
pub fn start(engine: Arc<Engine>, config: &TunConfig) -> Result<TunBackend, IoError> {
    let netns = current_netns()?;
    remove_leftovers(&netns, config);
    let dev = tun_rs::DeviceBuilder::new()
        .name(config.device.clone())
        .mtu(config.mtu)
        .build_sync()
        .map_err(|e| IoError::Os {
            context: format!("create TUN device {}", config.device),
            source: e,
        })?;
    dev.set_nonblocking(true).map_err(|e| IoError::Os {
        context: format!("make {} non-blocking", config.device),
        source: e,
    })?;
    run_in(&netns, "ip", &["link", "set", "dev", &config.device, "up"])?;
    run_in(
        &netns,
        "sysctl",
        &[
            "-qw",
            &format!("net.ipv4.conf.{}.rp_filter=0", config.device),
            // Tunnel output has the director's own address as source.
            &format!("net.ipv4.conf.{}.accept_local=1", config.device),
        ],
    )?;
    let table = config.table.to_string();
    for (family, default) in [("-4", "0.0.0.0/0"), ("-6", "::/0")] {
        run_in(
            &netns,
            "ip",
            &[
                family,
                "route",
                "replace",
                default,
                "dev",
                &config.device,
                "table",
                &table,
            ],
        )?;
    }
    let mut sockets = Vec::new();
    for ifname in &config.interfaces {
        sockets.push(PacketSocket::open(ifname)?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(TunStats::default());
    let vips = Arc::new(ArcSwap::from_pointee(Vec::new()));
    let mut worker = TunWorker {
        engine,
        dev,
        sockets,
        vips: vips.clone(),
        stop: stop.clone(),
        stats: stats.clone(),
    };
    let handle = std::thread::Builder::new()
        .name("uvs-tun".into())
        .spawn(move || worker.run())
        .map_err(|e| IoError::Os {
            context: "spawn the TUN worker".into(),
            source: e,
        })?;
    Ok(TunBackend {
        config: config.clone(),
        netns,
        installed: Mutex::new(Installed::default()),
        vips,
        stop,
        worker: Mutex::new(Some(handle)),
        stats,
        done: AtomicBool::new(false),
    })
}

impl TunBackend {
    /// Backend counters.
    pub fn stats(&self) -> &TunStats {
        &self.stats
    }
}

impl Backend for TunBackend {
    fn name(&self) -> &'static str {
        "tun"
    }

    fn ports(&self) -> Vec<(PortId, String)> {
        self.config
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, n)| (PortId(i as u16), n.clone()))
            .collect()
    }

    fn steer(&self, steering: &Steering) -> Result<(), IoError> {
        let mut installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        let routes: HashSet<IpAddr> = steering
            .virtual_services
            .iter()
            .map(|&(_, a, _)| a)
            .chain(steering.fullnat_locals.iter().copied())
            .collect();
        let rules: HashSet<(u8, IpAddr, u16)> = steering.nat_sources.iter().copied().collect();
        let dev = self.config.device.as_str();
        let table = self.config.table.to_string();
        let pref = self.config.rule_priority.to_string();
        // The worker must know the virtual addresses before traffic to
        // them arrives (DR output is recognised by its destination).
        let mut vips: Vec<IpAddr> = steering
            .virtual_services
            .iter()
            .map(|&(_, a, _)| a)
            .collect();
        vips.sort();
        vips.dedup();
        self.vips.store(Arc::new(vips));
        for addr in routes.difference(&installed.routes) {
            run_in(
                &self.netns,
                "ip",
                &["route", "replace", &host_prefix(*addr), "dev", dev],
            )?;
        }
        for &(proto, addr, port) in rules.difference(&installed.rules) {
            let family = if addr.is_ipv6() { "-6" } else { "-4" };
            let from = host_prefix(addr);
            let proto = proto_name(proto);
            let port = port.to_string();
            // `ip rule` defaults to IPv4: an IPv6 source needs -6.
            let mut args = vec![
                family, "rule", "add", "pref", &pref, "from", &from, "ipproto", &proto,
            ];
            if port != "0" {
                args.extend(["sport", &port]);
            }
            args.extend(["lookup", &table]);
            run_in(&self.netns, "ip", &args)?;
        }
        for addr in installed.routes.difference(&routes) {
            let _ = run_in(
                &self.netns,
                "ip",
                &["route", "del", &host_prefix(*addr), "dev", dev],
            );
        }
        for &(proto, addr, port) in installed.rules.difference(&rules) {
            let family = if addr.is_ipv6() { "-6" } else { "-4" };
            let from = host_prefix(addr);
            let proto = proto_name(proto);
            let port = port.to_string();
            // `ip rule` defaults to IPv4: an IPv6 source needs -6.
            let mut args = vec![
                family, "rule", "del", "pref", &pref, "from", &from, "ipproto", &proto,
            ];
            if port != "0" {
                args.extend(["sport", &port]);
            }
            args.extend(["lookup", &table]);
            let _ = run_in(&self.netns, "ip", &args);
        }
        installed.routes = routes;
        installed.rules = rules;
        Ok(())
    }

    fn shutdown(&self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
        // The worker owned the device: it is gone, and its routes with
        // it. Remove the rules and the table.
        remove_leftovers(&self.netns, &self.config);
    }
}

impl Drop for TunBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct TunWorker {
    engine: Arc<Engine>,
    dev: tun_rs::SyncDevice,
    sockets: Vec<PacketSocket>,
    vips: Arc<ArcSwap<Vec<IpAddr>>>,
    stop: Arc<AtomicBool>,
    stats: Arc<TunStats>,
}

/// The IP destination of an Ethernet frame (untagged), if any.
fn ip_dst(frame: &[u8]) -> Option<IpAddr> {
    let ip = frame.get(ETH..)?;
    match ip.first()? >> 4 {
        4 => {
            let b: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

/// `v` emptied, its allocation kept, for packets of another lifetime
/// (an empty vector's elements borrow nothing). Collecting a `vec::IntoIter`
/// into a vector of a same-layout type reuses the allocation in place.
// filter_map is the point: it changes the element type without a value.
#[allow(clippy::unnecessary_filter_map)]
fn recycle<'a, 'b>(mut v: Vec<Packet<'a>>) -> Vec<Packet<'b>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

impl TunWorker {
    fn run(&mut self) {
        let mut arena = vec![0u8; BATCH * SLOT];
        let mut lens = [0usize; BATCH];
        let mut worker = Worker::new();
        let mut dr: Vec<Vec<usize>> = vec![Vec::with_capacity(BATCH); self.sockets.len()];
        let fd: RawFd = self.dev.as_raw_fd();
        // The batch's allocation, kept empty between rounds (each round's
        // frames borrow that round's arena).
        let mut spare: Vec<Packet<'static>> = Vec::with_capacity(BATCH);
        // The last round read a full batch: more is likely waiting, so
        // read again without a poll() first (one syscall less per batch
        // under load; an empty read costs what poll() would have).
        let mut busy = false;
        while !self.stop.load(Ordering::Relaxed) {
            if !busy {
                // No backlog: the expiry the clock says is owed (the
                // batches carry only a bounded share of it).
                self.engine.tick(Millis::now());
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
                if ready <= 0 {
                    continue;
                }
            }
            // Read up to BATCH packets without blocking.
            let mut n = 0;
            while n < BATCH {
                let slot = &mut arena[n * SLOT + HEADROOM + ETH..(n + 1) * SLOT];
                match self.dev.recv(slot) {
                    Ok(len) if len > 0 => {
                        lens[n] = len;
                        n += 1;
                    }
                    _ => break,
                }
            }
            busy = n == BATCH;
            if n == 0 {
                continue;
            }
            let vips = self.vips.load();
            // No allocation per batch or per packet: the batch reuses
            // `spare`'s allocation.
            let mut batch: Vec<Packet<'_>> = recycle(std::mem::take(&mut spare));
            for (i, chunk) in arena.chunks_mut(SLOT).take(n).enumerate() {
                let ethertype: u16 = match chunk[HEADROOM + ETH] >> 4 {
                    6 => 0x86dd,
                    _ => 0x0800,
                };
                let eth = &mut chunk[HEADROOM..HEADROOM + ETH];
                eth[..12].fill(0);
                eth[12..14].copy_from_slice(&ethertype.to_be_bytes());
                if let Some(frame) = FrameBuf::new(chunk, HEADROOM, ETH + lens[i]) {
                    batch.push(Packet {
                        frame,
                        ingress: PortId(0),
                        verdict: Verdict::Pending,
                    });
                }
            }
            self.engine.process(&mut worker, &mut batch, Millis::now());
            let (mut tx_tun, mut pass_lost, mut dropped, mut errors) = (0u64, 0u64, 0u64, 0u64);
            for (i, p) in batch.iter().enumerate() {
                match p.verdict {
                    Verdict::Forward(port) => {
                        let frame = p.frame.frame();
                        let is_dr = ip_dst(frame).is_some_and(|d| vips.contains(&d));
                        if is_dr {
                            match dr.get_mut(usize::from(port.0)) {
                                Some(list) => list.push(i),
                                None => errors += 1,
                            }
                        } else {
                            match self.dev.send(frame.get(ETH..).unwrap_or(&[])) {
                                Ok(_) => tx_tun += 1,
                                Err(_) => errors += 1,
                            }
                        }
                    }
                    Verdict::Pass => pass_lost += 1,
                    Verdict::Drop(_) | Verdict::Pending => dropped += 1,
                }
            }
            let mut tx_packet = 0u64;
            // Gather DR frames per port and send each port's in one call.
            let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
            for (port, list) in dr.iter_mut().enumerate() {
                if list.is_empty() {
                    continue;
                }
                for (k, &i) in list.iter().enumerate() {
                    frames[k] = batch[i].frame.frame();
                }
                let sent = self.sockets[port].send_batch(&frames[..list.len()]);
                tx_packet += sent as u64;
                errors += (list.len() - sent) as u64;
                list.clear();
            }
            spare = recycle(batch);
            let s = &self.stats;
            s.rx.fetch_add(n as u64, Ordering::Relaxed);
            for (c, v) in [
                (&s.tx_tun, tx_tun),
                (&s.tx_packet, tx_packet),
                (&s.pass_lost, pass_lost),
                (&s.dropped, dropped),
                (&s.tx_errors, errors),
            ] {
                if v != 0 {
                    c.fetch_add(v, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycle_keeps_the_batch_allocation() {
        let spare: Vec<Packet<'static>> = Vec::with_capacity(BATCH);
        let ptr = spare.as_ptr() as usize;
        let mut buf = [0u8; SLOT];
        let mut batch: Vec<Packet<'_>> = recycle(spare);
        assert_eq!(batch.as_ptr() as usize, ptr);
        assert!(batch.capacity() >= BATCH);
        batch.push(Packet {
            frame: FrameBuf::new(&mut buf, HEADROOM, 60).expect("a frame fits the slot"),
            ingress: PortId(0),
            verdict: Verdict::Pending,
        });
        let spare: Vec<Packet<'static>> = recycle(batch);
        assert!(spare.is_empty());
        assert_eq!(spare.as_ptr() as usize, ptr);
        assert!(spare.capacity() >= BATCH);
    }
}
