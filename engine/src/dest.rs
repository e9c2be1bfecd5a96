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
    /// Current weight, mirrored from the snapshot by the control plane so
    /// that the connection table can apply the quiescent rules
    /// (`expire_quiescent_template`, `conn_reuse_mode`).
    pub weight: AtomicU32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: AtomicU32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: AtomicU32,
    /// References held on these counters: one by the configuration while
    /// the destination is part of a service, one per connection or
    /// template bound to it. The [`DestRegistry`] slot is reused only
    /// when this falls to zero.
    pub refs: AtomicU32,
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

    /// PersistConn.
    pub fn persistent(&self) -> u32 {
        self.persist.load(Ordering::Relaxed)
    }

    /// Whether the destination is still part of its service.
    pub fn is_available_flag(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    /// Current weight as last set by the control plane.
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Set the weight and thresholds after an edit (`-e`). As in IPVS, an
    /// edit with `u = 0` or a larger `u` clears the overload flag.
    pub fn set_limits(&self, weight: u32, u_threshold: u32, l_threshold: u32) {
        self.weight.store(weight, Ordering::Relaxed);
        let old_upper = self.u_threshold.swap(u_threshold, Ordering::Relaxed);
        self.l_threshold.store(l_threshold, Ordering::Relaxed);
        if u_threshold == 0 || u_threshold > old_upper {
            self.overloaded.store(false, Ordering::Relaxed);
        }
    }

    /// ActiveConn + InActConn (IPVS's `ip_vs_dest_totalconns`).
    pub fn total_conns(&self) -> u32 {
        self.active().saturating_add(self.inactive())
    }

    /// The threshold rule applied when a connection or template is bound:
    /// `u > 0` and active + inactive ≥ u sets the overload flag.
    pub fn check_overload_on_bind(&self) {
        let upper = self.u_threshold.load(Ordering::Relaxed);
        if upper != 0 && self.total_conns() >= upper {
            self.overloaded.store(true, Ordering::Relaxed);
        }
    }

    /// The threshold rule applied when a connection or template expires:
    /// `l > 0` clears the flag if total < l; else `u > 0` clears it if
    /// total·4 < u·3; else it is cleared.
    pub fn check_overload_on_unbind(&self) {
        let lower = self.l_threshold.load(Ordering::Relaxed);
        let upper = self.u_threshold.load(Ordering::Relaxed);
        let total = u64::from(self.total_conns());
        let clear = if lower != 0 {
            total < u64::from(lower)
        } else if upper != 0 {
            total * 4 < u64::from(upper) * 3
        } else {
            true
        };
        if clear {
            self.overloaded.store(false, Ordering::Relaxed);
        }
    }
}

/// The registry is full: no destination slot is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the destination registry is full ({capacity} real servers)")]
pub struct DestRegistryFull {
    /// The registry's capacity.
    pub capacity: u32,
}

/// Fixed-capacity home of every destination's counters, addressed by
/// [`DestId`]: IPVS's destination list plus its dest trash.
///
/// The control plane [`allocate`](DestRegistry::allocate)s a slot when a
/// real server is added and [`retire`](DestRegistry::retire)s it when the
/// real server is deleted; connections and templates hold a reference
/// ([`try_acquire`](DestRegistry::try_acquire) / [`release`](DestRegistry::release))
/// so the counters outlive the deletion while any connection still
/// counts against them. A retired destination still referenced can be
/// [`revive`](DestRegistry::revive)d when it is added again, as IPVS
/// revives a destination from its trash. A slot is handed out again only
/// when its references reach zero (uvs keeps no 120 s grace period: an
/// unreferenced retired destination has nothing left to remember).
///
/// All counters are preallocated at creation;
/// [`counters`](DestRegistry::counters) is a bounds-checked index, safe
/// on the packet path.
#[derive(Debug)]
pub struct DestRegistry {
    slots: Box<[Arc<DestCounters>]>,
    allocate_cursor: AtomicU32,
}

impl DestRegistry {
    /// A registry for at most `capacity` destinations alive at once
    /// (including deleted ones still referenced by connections).
    pub fn new(capacity: u32) -> DestRegistry {
        let slots = (0..capacity)
            .map(|_| Arc::new(DestCounters::default()))
            .collect();
        DestRegistry {
            slots,
            allocate_cursor: AtomicU32::new(0),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Take a free slot for a new real server: counters zeroed, available,
    /// with the given weight and thresholds, holding the configuration's
    /// reference. Control-plane cost: a scan of at most `capacity` slots.
    pub fn allocate(
        &self,
        weight: u32,
        u_threshold: u32,
        l_threshold: u32,
    ) -> Result<(DestId, Arc<DestCounters>), DestRegistryFull> {
        let capacity = self.capacity();
        let start = self.allocate_cursor.load(Ordering::Relaxed);
        for step in 0..capacity {
            let index = (start.wrapping_add(step)) % capacity;
            let Some(counters) = self.slots.get(index as usize) else {
                continue;
            };
            if counters
                .refs
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            for counter in [&counters.active, &counters.inactive, &counters.persist] {
                counter.store(0, Ordering::Relaxed);
            }
            for counter in [
                &counters.conns,
                &counters.in_pkts,
                &counters.out_pkts,
                &counters.in_bytes,
                &counters.out_bytes,
            ] {
                counter.store(0, Ordering::Relaxed);
            }
            counters.overloaded.store(false, Ordering::Relaxed);
            counters.set_limits(weight, u_threshold, l_threshold);
            counters.available.store(true, Ordering::Release);
            self.allocate_cursor
                .store(index.wrapping_add(1) % capacity, Ordering::Relaxed);
            return Ok((DestId(index), Arc::clone(counters)));
        }
        Err(DestRegistryFull { capacity })
    }

    /// The counters of `id`, if the id is in range.
    pub fn counters(&self, id: DestId) -> Option<&DestCounters> {
        self.slots.get(id.0 as usize).map(|c| &**c)
    }

    /// A shared handle on the counters of `id` (for building a [`Dest`]).
    pub fn counters_arc(&self, id: DestId) -> Option<Arc<DestCounters>> {
        self.slots.get(id.0 as usize).cloned()
    }

    /// The real server was deleted from its service: mark it unavailable
    /// and drop the configuration's reference. Connections keep theirs.
    pub fn retire(&self, id: DestId) {
        if let Some(counters) = self.counters(id) {
            counters.available.store(false, Ordering::Release);
            self.release(id);
        }
    }

    /// The real server is added again while still referenced (IPVS's
    /// trash): take a configuration reference and make it available.
    /// Returns false when the slot has no references left (allocate a
    /// new one then).
    pub fn revive(&self, id: DestId) -> bool {
        let Some(counters) = self.counters(id) else {
            return false;
        };
        let revived = counters
            .refs
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |refs| {
                (refs != 0).then(|| refs.saturating_add(1))
            })
            .is_ok();
        if revived {
            counters.available.store(true, Ordering::Release);
        }
        revived
    }

    /// Take a reference (a connection or template binds to `id`) if the
    /// slot is still referenced; false when it was freed meanwhile (the
    /// real server was deleted and forgotten), so that nothing counts
    /// against a slot that may be handed to another real server.
    pub fn try_acquire(&self, id: DestId) -> bool {
        self.counters(id).is_some_and(|counters| {
            counters
                .refs
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |refs| {
                    (refs != 0).then(|| refs.saturating_add(1))
                })
                .is_ok()
        })
    }

    /// Drop a reference; the slot becomes free at zero.
    pub fn release(&self, id: DestId) {
        if let Some(counters) = self.counters(id) {
            // Never wrap below zero, even on a caller's bug.
            let _ = counters
                .refs
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |refs| {
                    refs.checked_sub(1)
                });
        }
    }

    /// Slots currently referenced.
    pub fn in_use(&self) -> usize {
        self.slots
            .iter()
            .filter(|c| c.refs.load(Ordering::Relaxed) != 0)
            .count()
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
