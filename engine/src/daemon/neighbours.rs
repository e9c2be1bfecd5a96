//! Getting next-hop MACs into the engine's network view without asking
//! the user for any.
//!
//! The engine takes MACs from the kernel's neighbour table (read by
//! [`super::netview`]), but traffic the engine owns never passes the
//! kernel, so the kernel has no reason to resolve a real server or a
//! client. A [`Resolver`] asks it to ([`super::kernel::solicit`]) for:
//!
//! - every real server and route gateway over the attached interfaces
//!   whose MAC is unknown, at start and after each configuration change
//!   ([`Resolver::want`]);
//! - every destination the engine dropped a frame for with
//!   `NoNeighbour` (the engine notes them; [`Resolver::poll`] collects
//!   them every [`POLL`]).
//!
//! While any solicitation is pending the daemon re-reads the network view
//! every [`POLL`] until the address resolves or [`RESOLVE_TIMEOUT`]
//! passes (then a warning, and the address may be solicited again on the
//! next miss). A TCP client's first SYN lost to a cold neighbour table is
//! thus answered on its first retransmission (1 s).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{kernel, log};
use crate::engine::Engine;
use crate::route::{NetView, RouteError};

/// How often misses are collected and, while resolving, the view read.
pub const POLL: Duration = Duration::from_millis(100);
/// How long one solicitation may take before it is given up.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Pending neighbour resolutions.
#[derive(Debug, Default)]
pub struct Resolver {
    enabled: bool,
    pending: HashMap<IpAddr, Instant>,
    misses: Vec<IpAddr>,
    solicited: u64,
}

impl Resolver {
    /// A resolver with nothing pending; a disabled one never solicits.
    pub fn new(enabled: bool) -> Resolver {
        Resolver {
            enabled,
            ..Resolver::default()
        }
    }

    /// Whether some address is being resolved (the view should be read
    /// again every [`POLL`]).
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Solicitations sent so far.
    pub fn solicited(&self) -> u64 {
        self.solicited
    }

    /// Solicit each of `addrs` whose next hop `net` routes but has no MAC
    /// for, unless already pending.
    pub fn want(&mut self, addrs: impl IntoIterator<Item = IpAddr>, net: &NetView, now: Instant) {
        if !self.enabled {
            return;
        }
        for addr in addrs {
            if net.next_hop(addr) != Err(RouteError::NoNeighbour) {
                continue;
            }
            if self.pending.contains_key(&addr) {
                continue;
            }
            match kernel::solicit(addr) {
                Ok(()) => {
                    self.solicited += 1;
                    self.pending.insert(addr, now + RESOLVE_TIMEOUT);
                }
                Err(e) => log::warn(format_args!("cannot resolve the neighbour for {addr}: {e}")),
            }
        }
    }

    /// Collect the engine's `NoNeighbour` destinations and solicit them.
    pub fn poll(&mut self, engine: &Engine, net: &NetView, now: Instant) {
        let mut misses = std::mem::take(&mut self.misses);
        misses.clear();
        engine.take_neighbour_misses(&mut misses);
        self.want(misses.iter().copied(), net, now);
        self.misses = misses;
    }

    /// After a new view: drop what resolved, give up what timed out.
    pub fn settle(&mut self, net: &NetView, now: Instant) {
        self.pending.retain(|addr, deadline| {
            if net.next_hop(*addr) != Err(RouteError::NoNeighbour) {
                return false;
            }
            if now >= *deadline {
                log::warn(format_args!(
                    "no neighbour answered for {addr} within {} s; frames towards it are dropped",
                    RESOLVE_TIMEOUT.as_secs()
                ));
                return false;
            }
            true
        });
    }
}

/// The addresses whose next hop the director needs: every real server,
/// and every gateway of a route over the attached interfaces (replies
/// to clients).
pub fn wanted(config: &uvs_conf::Config, net: &NetView) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = config
        .services
        .iter()
        .flat_map(|s| s.dests.iter().map(|d| d.addr))
        .collect();
    out.extend(net.routes.iter().filter_map(|r| r.gateway));
    out.sort();
    out.dedup();
    out
}
