//! uvs-ctl: `uvsadm`, ipvsadm's command line for uvsd.
//!
//! An LVS operator replaces `ipvsadm` with `uvsadm` and notices nothing:
//! the same commands and options ([`parse`]), the same messages and exit
//! statuses ([`run`]), the same listings byte for byte ([`list`],
//! [`largenum`]), the same `-S`/`-R` rules. The table lives in `uvsd`;
//! uvsadm talks to it over the control socket ([`client`], protocol in
//! [`uvs_conf::control`]): `$UVS_SOCKET`, else `/run/uvs/uvsd.sock`.
//! Additions change nothing ipvsadm accepts: `--json` on listings,
//! `--fullnat` as a forwarding method.
//!
//! Binaries: `uvsadm`, `uvsadm-save` and `uvsadm-restore` (the
//! equivalents of `ipvsadm-save` / `ipvsadm-restore`), each a thin main
//! over [`run::Runner`].
#![warn(missing_docs)]

pub mod addr;
pub mod client;
pub mod largenum;
pub mod list;
pub mod parse;
pub mod resolve;
pub mod run;

use std::io::Write;

/// Build a [`run::Runner`] on the process's own stdio, the system
/// resolver and the control socket, and hand it to `f`; the exit status.
pub fn with_system_runner(f: impl FnOnce(&mut run::Runner<'_>, &[String]) -> i32) -> i32 {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let prog = args
        .first()
        .cloned()
        .unwrap_or_else(|| "uvsadm".to_string());
    let mut transport = client::UnixTransport::new(client::socket_path());
    let resolver = resolve::SystemResolver::new();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = stderr.lock();
    let status = {
        let mut runner = run::Runner {
            prog,
            transport: &mut transport,
            resolver: &resolver,
            out: &mut out,
            err: &mut err,
        };
        f(&mut runner, &args)
    };
    let _ = out.flush();
    status
}
