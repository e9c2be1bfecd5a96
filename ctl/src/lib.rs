//! uvs-ctl: the pieces of `uvsadm`, the ipvsadm-compatible CLI.
//!
//! So far this holds ipvsadm's number formatting for listings; the
//! command parser and the control-socket client come with the daemon.
#![warn(missing_docs)]

pub mod largenum;
