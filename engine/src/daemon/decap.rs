//! `uvsd --decap`: the real-server side of TUN-mode forwarding, with no
//! engine and no control socket.
//!
//! It runs [`crate::io::decap`]: tunnelled packets over IPv4 or IPv6
//! (IP-in-IP of either inner family, GRE, and GUE on `--gue-port`) whose
//! outer source is one of the `--director` addresses and whose inner
//! destination is one of the `--vip` addresses are stripped and handed to
//! the local stack through a TUN device that holds the `--vip` addresses,
//! so the real server answers the client directly from the virtual
//! address. Give `--director` the director's address of each family its
//! tunnels use (an IPv6 real server gets IPv6 outer headers). The device name is
//! locked ([`super::lock`]) so a second decap role on it is refused.
//! Drops (by reason, as totals) are logged when they change, at most
//! every 5 s; the last line at exit gives every counter.
//! SIGTERM or SIGINT stops it; the device and its addresses go with it
//! (also on `kill -9`: the device is not persistent). SIGHUP is ignored.
//!
//! Put `arp_ignore=1` and `arp_announce=2` on the real server's
//! interfaces, as for DR: the virtual addresses must not be announced.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::{lock, log, signals};
use crate::io::decap::{self, DecapConfig, DecapStats};

/// Settings of the decap role (from the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecapOptions {
    /// Virtual addresses the real server answers for.
    pub vips: Vec<IpAddr>,
    /// Directors whose tunnels are accepted.
    pub directors: Vec<IpAddr>,
    /// GUE UDP port, if GUE is used.
    pub gue_port: Option<u16>,
    /// TUN device name.
    pub device: String,
}

const SIGNALS: Token = Token(0);
/// How often the event loop looks at the drop counters.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// At most one drop report per this interval (a sender can make drops
/// at any rate; the log stays readable).
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Every drop counter, summed.
fn total_drops(stats: &DecapStats) -> u64 {
    [
        &stats.foreign_source,
        &stats.not_virtual,
        &stats.malformed,
        &stats.truncated,
        &stats.unknown_protocol,
        &stats.write_failed,
    ]
    .iter()
    .map(|c| c.load(Ordering::Relaxed))
    .sum()
}

/// The drop counters as the log writes them.
fn drops(stats: &DecapStats) -> String {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    format!(
        "{} from other sources, {} to other addresses, {} malformed, {} truncated, \
         {} of unknown protocol, {} refused by the device",
        load(&stats.foreign_source),
        load(&stats.not_virtual),
        load(&stats.malformed),
        load(&stats.truncated),
        load(&stats.unknown_protocol),
        load(&stats.write_failed)
    )
}

/// Run the decap role until SIGTERM/SIGINT.
pub fn run(options: &DecapOptions) -> Result<ExitCode, String> {
    let mut signals = signals::install().map_err(|e| format!("cannot catch signals: {e}"))?;
    if options.vips.is_empty() {
        return Err("--decap needs at least one --vip".into());
    }
    if options.directors.is_empty() {
        return Err(
            "--decap needs at least one --director (tunnels from others are dropped)".into(),
        );
    }
    let mut locks = lock::Locks::new();
    locks.acquire(std::slice::from_ref(&options.device), "decap device")?;
    let config = DecapConfig {
        device: options.device.clone(),
        vips: options.vips.clone(),
        directors: options.directors.clone(),
        gue_port: options.gue_port,
        ..DecapConfig::default()
    };
    let role = decap::start(&config).map_err(|e| format!("decap role: {e}"))?;
    let list = |addrs: &[IpAddr]| {
        addrs
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    log::info(format_args!(
        "uvsd {} decap role on {}: virtual addresses {}; tunnels from {} (ipip, gre{}) over {}",
        env!("CARGO_PKG_VERSION"),
        options.device,
        list(&options.vips),
        list(&options.directors),
        options
            .gue_port
            .map(|p| format!(", gue port {p}"))
            .unwrap_or_default(),
        if role.outer_ipv6() {
            "IPv4 and IPv6"
        } else {
            "IPv4 only (this host has no IPv6)"
        }
    ));
    if !role.outer_ipv6() && options.directors.iter().any(IpAddr::is_ipv6) {
        log::warn(format_args!(
            "IPv6 directors given, but this host has no IPv6: their tunnels cannot arrive"
        ));
    }
    let mut poll = Poll::new().map_err(|e| format!("cannot set up the event loop: {e}"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, mio::Interest::READABLE)
        .map_err(|e| format!("cannot set up the event loop: {e}"))?;
    let mut events = Events::with_capacity(8);
    let mut reported = 0u64;
    let mut last_report: Option<Instant> = None;
    'serve: loop {
        if let Err(e) = poll.poll(&mut events, Some(CHECK_EVERY)) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            log::error(format_args!("event loop failed: {e}; shutting down"));
            break;
        }
        for action in signals::pending(&mut signals) {
            match action {
                signals::SignalAction::Stop(name) => {
                    log::info(format_args!("{name}: shutting down"));
                    break 'serve;
                }
                signals::SignalAction::Reload => {
                    log::info("SIGHUP: the decap role has no file to reload");
                }
            }
        }
        let dropped = total_drops(role.stats());
        if dropped != reported && last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            reported = dropped;
            last_report = Some(Instant::now());
            log::warn(format_args!(
                "decap role drops so far: {}",
                drops(role.stats())
            ));
        }
    }
    role.shutdown();
    let stats = role.stats();
    log::info(format_args!(
        "decap role stopped: {} packets delivered; dropped: {}",
        stats.delivered.load(Ordering::Relaxed),
        drops(stats)
    ));
    Ok(ExitCode::SUCCESS)
}
