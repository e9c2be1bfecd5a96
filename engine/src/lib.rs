//! uvs-engine: the data plane of uvs, a userspace Linux Virtual Server.
//!
//! Bytes in, bytes out: the library needs no root and no network. A
//! packet's way is io → [`wire`] (parse) → [`conn`] (lookup) → on a miss:
//! service lookup → persistence template → [`sched`] → new connection →
//! [`xmit`] (rewrite in place) → io. NAT and full-NAT replies come back
//! through the director and are looked up by their reply tuple.
//!
//! Module map:
//! - [`time`]: the engine's clock type, read once per batch.
//! - [`dest`]: real servers as the data plane sees them, with their
//!   shared counters (active/inactive/persistent connections, overload).
//! - [`wire`]: checked packet views, in-place rewrites, checksums.
//! - [`conn`]: the connection table, TCP/UDP state machines, timeouts,
//!   persistence templates.
//! - [`sched`]: the 14 IPVS schedulers, one per file.
//! - [`pe`]: persistence engines (SIP Call-ID).
//! - [`xmit`]: the forwarding methods, one per file.
//! - [`snapshot`]: the immutable configuration workers read.
//! - [`route`]: ports, routes and neighbours: where a frame goes.
//! - [`engine`]: [`Engine::process`], the batch entry point.
//! - [`io`]: packet I/O backends behind one trait.
//! - [`lab`]: an in-memory director lab for tests, benches and the demo.
//! - [`daemon`]: `uvsd`, the control plane: config, control socket,
//!   signals, rate estimator, steering, the kernel's network view.
#![warn(missing_docs)]

pub mod conn;
pub mod daemon;
pub mod dest;
pub mod engine;
pub mod io;
pub mod lab;
pub mod pe;
mod prefetch;
pub mod route;
pub mod sched;
pub mod snapshot;
pub mod time;
pub mod wire;
pub mod xmit;

pub use engine::{DropReason, Engine, EngineCounters, Packet, Verdict, Worker};
