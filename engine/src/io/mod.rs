//! Packet I/O backends: where frames come from and go to.
//!
//! A backend owns its devices and worker threads. Each worker receives a
//! batch of frames, wraps each in a [`crate::Packet`] (a
//! [`crate::xmit::FrameBuf`] with headroom, the ingress [`PortId`]), calls
//! [`crate::Engine::process`] once per batch with the clock read once, and
//! then acts on each verdict: `Forward(port)` → transmit on that port,
//! `Drop` → recycle, `Pass` → hand back to the kernel where the backend can
//! (otherwise count and recycle). No allocation, lock or syscall per
//! packet beyond the backend's batched ring/syscall work.
//!
//! Backends: AF_XDP (fast path), TUN (fallback, works on any VM), and an
//! in-memory one for tests. The daemon picks one, tells it which traffic
//! the engine owns ([`Backend::steer`]) after every configuration change,
//! and stops it on shutdown.

pub mod afxdp;
pub mod decap;
pub mod packet_socket;
pub mod tun;

use std::fmt::Debug;
use std::net::IpAddr;

use crate::route::PortId;

pub mod mem;

/// Traffic the engine owns and a backend must deliver to it; everything
/// else stays with the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steering {
    /// (protocol, virtual address, port; 0 = every port) of each service,
    /// fwmark ranges flattened to their addresses with port 0.
    pub virtual_services: Vec<(u8, IpAddr, u16)>,
    /// NAT replies: (protocol, real server address, real server port) —
    /// matched on the packet's *source*.
    pub nat_sources: Vec<(u8, IpAddr, u16)>,
    /// Full-NAT replies: local addresses (matched on destination, with the
    /// pool's port range).
    pub fullnat_locals: Vec<IpAddr>,
    /// Full-NAT local port range (inclusive).
    pub fullnat_ports: (u16, u16),
}

/// Why a backend failed.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// A system call failed; the message names the call and the device.
    #[error("{context}: {source}")]
    Os {
        /// What was being done ("attach XDP program to eth0").
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The setup cannot work as asked; the message says why.
    #[error("{0}")]
    Setup(String),
}

/// A running backend.
pub trait Backend: Send + Sync + Debug {
    /// Short name for logs ("af_xdp", "tun", "mem").
    fn name(&self) -> &'static str;

    /// The ports (interfaces) the backend attached, indexed by [`PortId`]
    /// as in the engine's [`crate::route::NetView`].
    fn ports(&self) -> Vec<(PortId, String)>;

    /// Deliver exactly this traffic to the engine from now on.
    fn steer(&self, steering: &Steering) -> Result<(), IoError>;

    /// Also serve the interfaces `more` (appended: they take the next
    /// [`PortId`]s) without disturbing the running ones. `Ok(false)`:
    /// this backend cannot add interfaces while it runs; the caller
    /// restarts it on the larger set instead.
    fn add_interfaces(&self, more: &[String]) -> Result<bool, IoError> {
        let _ = more;
        Ok(false)
    }

    /// Stop the workers and release every device, program, route and rule
    /// the backend installed. Idempotent.
    fn shutdown(&self);
}
