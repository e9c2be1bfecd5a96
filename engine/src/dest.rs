//! Real servers ("destinations") as the data plane sees them.
//!
//! A [`Dest`] is one real server inside one configuration snapshot: its
//! address, port, method, weight and thresholds are immutable there; an
//! edit makes a new snapshot with a new `Dest` that shares the same
//! [`DestCounters`], so connection counts survive edits as in IPVS.
//! Connections refer to a destination by [`DestId`], which stays valid
//! while any connection still counts against it (IPVS's dest trash).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use uvs_conf::ForwardMethod;

/// Stable identifier of a destination's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(pub u32);

/// Per-destination counters shared by every snapshot and connection.
#[derive(Debug, Default)]
pub struct DestCounters {
    /// Connections in an active TCP state (ActiveConn).
    pub active: AtomicU32,
    /// Other connections (InActConn).
    pub inactive: AtomicU32,
    /// Persistence templates pointing here (PersistConn).
    pub persist: AtomicU32,
    /// Set when the upper threshold was reached (IP_VS_DEST_F_OVERLOAD).
    pub overloaded: AtomicBool,
    /// Cleared when the destination is deleted from its service
    /// (IP_VS_DEST_F_AVAILABLE).
    pub available: AtomicBool,
    /// Connections scheduled to this destination, ever.
    pub conns: AtomicU64,
    /// Packets client → real server.
    pub in_pkts: AtomicU64,
    /// Packets real server → client (NAT / full NAT).
    pub out_pkts: AtomicU64,
    /// Bytes client → real server (whole IP packets).
    pub in_bytes: AtomicU64,
    /// Bytes real server → client.
    pub out_bytes: AtomicU64,
}

impl DestCounters {
    /// New counters for an available destination.
    pub fn new_available() -> DestCounters {
        let c = DestCounters::default();
        c.available.store(true, Ordering::Relaxed);
        c
    }

    /// ActiveConn.
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// InActConn.
    pub fn inactive(&self) -> u32 {
        self.inactive.load(Ordering::Relaxed)
    }

    /// Whether the overload flag is set.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }
}

/// One real server of a service, inside one configuration snapshot.
#[derive(Debug, Clone)]
pub struct Dest {
    /// Stable id of its counters.
    pub id: DestId,
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// Weight in this snapshot (0 = quiescent).
    pub weight: u32,
    /// Upper threshold, 0 = none.
    pub u_threshold: u32,
    /// Lower threshold, 0 = none.
    pub l_threshold: u32,
    /// Counters shared across snapshots and with connections.
    pub counters: Arc<DestCounters>,
}

impl Dest {
    /// A DR destination with fresh counters: for tests and tools.
    pub fn new(id: u32, addr: IpAddr, port: u16, weight: u32) -> Dest {
        Dest {
            id: DestId(id),
            addr,
            port,
            method: ForwardMethod::Dr,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            counters: Arc::new(DestCounters::new_available()),
        }
    }

    /// IPVS's "overhead" of a destination: activeconns·256 + inactconns.
    pub fn overhead(&self) -> u64 {
        (u64::from(self.counters.active()) << 8) + u64::from(self.counters.inactive())
    }

    /// Weight > 0 and not overloaded: a scheduler may pick it.
    pub fn is_available(&self) -> bool {
        self.weight > 0 && !self.counters.is_overloaded()
    }
}
