//! The uvs model of a virtual server, as IPVS and ipvsadm have it.
//!
//! This crate owns the *meaning* of a configuration: services (TCP/UDP/SCTP by
//! address and port, or fwmark services matched by address/port ranges),
//! their scheduler and flags, persistence, one-packet scheduling, and per
//! real server the forwarding method, weight and thresholds; the global
//! timeouts, the full-NAT local address pool and engine settings.
//!
//! It does no I/O (but [`load_config`] reading the file) and starts no
//! threads. [`file`](mod@file) turns TOML text into a validated [`Config`], reporting
//! errors as `file:line:column: message`; [`validate`] holds the rules,
//! usable on a [`Config`] built any other way.
#![warn(missing_docs)]

pub mod control;
pub mod file;
pub mod model;
pub mod validate;

pub use file::{load_config, parse_config, to_toml, ConfigError, Problem};
pub use model::*;
pub use validate::{ModelError, ModelErrorKind, Place};
