//! What uvsd changes in the kernel around its backend, and undoes.
//!
//! **Sysctls.** The TUN backend needs `net.ipv4.ip_forward=1` (and
//! `net.ipv6.conf.all.forwarding=1`): NAT and tunnel output is written
//! back into the device for the kernel to route; and
//! `net.ipv4.conf.all.rp_filter=0`, since the effective filter is the
//! larger of `all` and the device's (the backend sets the device's own).
//! AF_XDP needs nothing beyond its program, except `accept_local=1` on
//! the attached interfaces once a virtual address is local (below): DR
//! replies that come back through the director carry the virtual
//! address as source, which the kernel otherwise drops as martian.
//!
//! **Answering ARP/NDP for virtual addresses** (and full-NAT local
//! addresses), so that no client or router needs a static entry:
//!
//! - AF_XDP: the XDP program takes the virtual service's traffic before
//!   the kernel sees it, so the address is simply made local: IPv4 as a
//!   `/32` on `lo` (the kernel answers ARP for it on every interface),
//!   IPv6 as a `/128` (`nodad noprefixroute`) on each attached interface
//!   (NDP answers only for addresses of the receiving interface). Traffic
//!   to the address that no service wants (another port, ping) is the
//!   kernel's, as with IPVS.
//! - TUN: the address is routed into the TUN device and must not be
//!   local (the local table would win), so the director answers as a
//!   proxy: `ip neigh replace proxy ADDR dev IF` on each attached
//!   interface, with `proxy_delay=0` (IPv4 proxy ARP then needs
//!   forwarding and the route into the device, both there), and for
//!   IPv6 `proxy_ndp=1` on the interface and in `all` (the kernel
//!   answers unicast solicitations — a client re-checking its entry —
//!   only when the global switch is on).
//!
//! An address that is already local when uvsd first needs it is the
//! user's and is left alone.
//!
//! **Undo.** Every change is written to a state file next to the control
//! socket (`<socket>.kernel`) before it is made: original sysctl values,
//! addresses and proxy entries added, and the network namespace they
//! were made in (a file from another namespace is not undone). Shutdown undoes them and removes
//! the file; after a `kill -9`, the next start finds the file and undoes
//! what the killed process left, so a restart needs no manual cleanup.
//!
//! **Neighbours.** DR output and every return path need the next hop's
//! MAC, which the engine takes from the kernel's neighbour table.
//! [`solicit`] makes the kernel resolve an address by sending it an empty
//! UDP datagram (port 9, discard) from a connected socket: the kernel
//! ARPs/solicits for the next hop on the way.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{log, BackendKind};

/// Most virtual addresses uvsd will make local or proxy (fwmark ranges
/// can be large); beyond this, a warning.
pub const MAX_OWNED_ADDRESSES: usize = 1024;

/// The inode of this thread's network namespace (0 if unknown).
fn netns_id() -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/thread-self/ns/net")
        .or_else(|_| fs::metadata("/proc/self/ns/net"))
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// A sysctl path under `/proc/sys`, from its components (interface
/// names may contain dots, so no dotted names here).
fn sysctl_path(parts: &[&str]) -> PathBuf {
    let mut path = PathBuf::from("/proc/sys");
    for part in parts {
        path.push(part);
    }
    path
}

/// The display name of a sysctl path (`net.ipv4.ip_forward`).
fn sysctl_name(path: &Path) -> String {
    path.strip_prefix("/proc/sys")
        .unwrap_or(path)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

/// Run `ip ARGS`; an error carries its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn host_prefix(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

/// Every address configured on an interface of this namespace.
pub fn local_addresses() -> HashSet<IpAddr> {
    super::netview::interface_address_list()
        .into_iter()
        .map(|a| a.addr)
        .collect()
}

/// Make the kernel resolve the next hop towards `addr`: an empty UDP
/// datagram to `addr:9` from a connected socket. Errors (no route) are
/// returned for the caller to log.
pub fn solicit(addr: IpAddr) -> io::Result<()> {
    let local: SocketAddr = match addr {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect((addr, 9))?;
    socket.send(&[])?;
    Ok(())
}

/// One change uvsd made, as written in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Change {
    /// A sysctl and its value before uvsd changed it.
    Sysctl(PathBuf, String),
    /// An address added to an interface.
    Addr(IpAddr, String),
    /// A proxy neighbour entry added on an interface.
    Proxy(IpAddr, String),
}

impl Change {
    fn line(&self) -> String {
        match self {
            Change::Sysctl(path, old) => format!("sysctl\t{}\t{old}", path.display()),
            Change::Addr(addr, dev) => format!("addr\t{addr}\t{dev}"),
            Change::Proxy(addr, dev) => format!("proxy\t{addr}\t{dev}"),
        }
    }

    fn parse(line: &str) -> Option<Change> {
        let mut fields = line.split('\t');
        let kind = fields.next()?;
        let a = fields.next()?;
        let b = fields.next()?;
        match kind {
            "sysctl" => Some(Change::Sysctl(PathBuf::from(a), b.to_string())),
            "addr" => Some(Change::Addr(a.parse().ok()?, b.to_string())),
            "proxy" => Some(Change::Proxy(a.parse().ok()?, b.to_string())),
            _ => None,
        }
    }

    /// Undo this change; the log line says what was done.
    fn undo(&self) {
        let result = match self {
            Change::Sysctl(path, old) => fs::write(path, old)
                .map(|()| format!("restored {}={old}", sysctl_name(path)))
                .map_err(|e| format!("cannot restore {}={old}: {e}", sysctl_name(path))),
            Change::Addr(addr, dev) => ip(&["addr", "del", &host_prefix(*addr), "dev", dev])
                .map(|()| format!("removed address {addr} from {dev}")),
            Change::Proxy(addr, dev) => {
                let family = if addr.is_ipv4() { "-4" } else { "-6" };
                ip(&[
                    family,
                    "neigh",
                    "del",
                    "proxy",
                    &addr.to_string(),
                    "dev",
                    dev,
                ])
                .map(|()| format!("removed proxy neighbour {addr} on {dev}"))
            }
        };
        match result {
            Ok(message) => log::info(message),
            // The interface may be gone; nothing is left to undo then.
            Err(message) => log::warn(message),
        }
    }
}

/// The kernel settings uvsd made, and their undo.
#[derive(Debug)]
pub struct KernelSetup {
    state: PathBuf,
    changes: Vec<Change>,
    /// Whether uvsd made a virtual address local: accept_local is then
    /// set on every attached interface.
    local_vips: bool,
}

impl KernelSetup {
    /// Take charge of kernel settings, recording them in `state`. If a
    /// previous uvsd was killed and left `state`, undo what it lists
    /// first.
    pub fn new(state: PathBuf) -> KernelSetup {
        if let Ok(text) = fs::read_to_string(&state) {
            let left: Vec<Change> = text.lines().filter_map(Change::parse).collect();
            let here = netns_id();
            let written_in = text
                .lines()
                .find_map(|l| l.strip_prefix("netns\t"))
                .and_then(|n| n.trim().parse::<u64>().ok());
            if written_in.is_some_and(|ns| ns != here) {
                log::warn(format_args!(
                    "{} was left by a uvsd in another network namespace; not undoing it here",
                    state.display()
                ));
                let _ = fs::remove_file(&state);
                return KernelSetup {
                    state,
                    changes: Vec::new(),
                    local_vips: false,
                };
            }
            if !left.is_empty() {
                log::warn(format_args!(
                    "{} lists {} kernel change(s) of a uvsd that did not stop cleanly; undoing them",
                    state.display(),
                    left.len()
                ));
            }
            for change in left.iter().rev() {
                change.undo();
            }
            let _ = fs::remove_file(&state);
        }
        KernelSetup {
            state,
            changes: Vec::new(),
            local_vips: false,
        }
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.state
    }

    fn persist(&self) {
        let mut text = format!("netns\t{}\n", netns_id());
        for change in &self.changes {
            text.push_str(&change.line());
            text.push('\n');
        }
        if let Err(e) = fs::write(&self.state, text) {
            log::warn(format_args!(
                "cannot write {}: {e}; a crash would leave kernel settings behind",
                self.state.display()
            ));
        }
    }

    /// Record `change` in the state file before it is made.
    fn record(&mut self, change: Change) {
        self.changes.push(change);
        self.persist();
    }

    fn forget(&mut self, change: &Change) {
        self.changes.retain(|c| c != change);
        self.persist();
    }

    /// Set the sysctl at `parts` to `value` if it differs; the first
    /// original value is kept for the undo.
    pub fn set_sysctl(&mut self, parts: &[&str], value: &str) -> Result<(), String> {
        let path = sysctl_path(parts);
        let name = sysctl_name(&path);
        let old = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {name}: {e}"))?
            .trim()
            .to_string();
        if old == value {
            return Ok(());
        }
        let known = self
            .changes
            .iter()
            .any(|c| matches!(c, Change::Sysctl(p, _) if *p == path));
        if !known {
            self.record(Change::Sysctl(path.clone(), old.clone()));
        }
        fs::write(&path, value).map_err(|e| format!("cannot set {name}={value}: {e}"))?;
        log::info(format_args!("set {name}={value} (was {old})"));
        Ok(())
    }

    /// What backend `kind` needs from the kernel before it starts.
    pub fn prepare(&mut self, kind: BackendKind) -> Result<(), String> {
        if kind == BackendKind::Tun {
            self.set_sysctl(&["net", "ipv4", "ip_forward"], "1")?;
            self.set_sysctl(&["net", "ipv4", "conf", "all", "rp_filter"], "0")?;
            if sysctl_path(&["net", "ipv6", "conf", "all", "forwarding"]).exists() {
                self.set_sysctl(&["net", "ipv6", "conf", "all", "forwarding"], "1")?;
            }
        }
        Ok(())
    }

    /// Make the director answer ARP/NDP for exactly `addrs` (virtual and
    /// full-NAT local addresses) on `interfaces`, as the module docs say
    /// for backend `kind`; what uvsd added for addresses no longer
    /// wanted is removed. Failures are logged, not fatal.
    pub fn sync_addresses(&mut self, kind: BackendKind, addrs: &[IpAddr], interfaces: &[String]) {
        let mut wanted: Vec<Change> = Vec::new();
        if kind != BackendKind::Mem {
            let mut addrs: Vec<IpAddr> = addrs.to_vec();
            addrs.sort();
            addrs.dedup();
            if addrs.len() > MAX_OWNED_ADDRESSES {
                log::warn(format_args!(
                    "{} virtual addresses; answering ARP/NDP for the first {MAX_OWNED_ADDRESSES} only",
                    addrs.len()
                ));
                addrs.truncate(MAX_OWNED_ADDRESSES);
            }
            let ours: HashSet<IpAddr> = self
                .changes
                .iter()
                .filter_map(|c| match c {
                    Change::Addr(a, _) => Some(*a),
                    _ => None,
                })
                .collect();
            let local = local_addresses();
            for addr in addrs {
                match (kind, addr) {
                    (BackendKind::Afxdp, IpAddr::V4(_)) => {
                        if !local.contains(&addr) || ours.contains(&addr) {
                            wanted.push(Change::Addr(addr, "lo".into()));
                        }
                    }
                    (BackendKind::Afxdp, IpAddr::V6(_)) => {
                        if !local.contains(&addr) || ours.contains(&addr) {
                            for dev in interfaces {
                                wanted.push(Change::Addr(addr, dev.clone()));
                            }
                        }
                    }
                    _ => {
                        if local.contains(&addr) {
                            log::warn(format_args!(
                                "{addr} is a local address of the director: the TUN backend \
                                 cannot receive its traffic (the kernel keeps it)"
                            ));
                            continue;
                        }
                        for dev in interfaces {
                            wanted.push(Change::Proxy(addr, dev.clone()));
                        }
                    }
                }
            }
        }
        // Remove what is no longer wanted.
        let stale: Vec<Change> = self
            .changes
            .iter()
            .filter(|c| matches!(c, Change::Addr(..) | Change::Proxy(..)) && !wanted.contains(c))
            .cloned()
            .collect();
        for change in stale {
            change.undo();
            self.forget(&change);
        }
        if wanted
            .iter()
            .any(|c| matches!(c, Change::Addr(..)) && !self.changes.contains(c))
        {
            self.local_vips = true;
        }
        if self.local_vips {
            // DR replies routed back through the director have the (now
            // local) virtual address as source: on every attached
            // interface, also one attached later (set_sysctl does
            // nothing where it is set already).
            self.accept_local(interfaces);
        }
        for change in wanted {
            if self.changes.contains(&change) {
                continue;
            }
            if let Err(e) = self.apply(&change) {
                log::warn(format_args!("cannot make the director answer ARP/NDP: {e}"));
            }
        }
    }

    fn apply(&mut self, change: &Change) -> Result<(), String> {
        match change {
            Change::Addr(addr, dev) => {
                self.record(change.clone());
                let prefix = host_prefix(*addr);
                let result = if addr.is_ipv4() {
                    ip(&["addr", "add", &prefix, "dev", dev])
                } else {
                    ip(&[
                        "-6",
                        "addr",
                        "add",
                        &prefix,
                        "dev",
                        dev,
                        "nodad",
                        "noprefixroute",
                    ])
                };
                if let Err(e) = result {
                    self.forget(change);
                    return Err(e);
                }
                log::info(format_args!(
                    "added {prefix} to {dev} so the kernel answers ARP/NDP for it"
                ));
            }
            Change::Proxy(addr, dev) => {
                if addr.is_ipv4() {
                    self.set_sysctl(&["net", "ipv4", "neigh", dev, "proxy_delay"], "0")?;
                } else {
                    self.set_sysctl(&["net", "ipv6", "conf", dev, "proxy_ndp"], "1")?;
                    // A client re-checks its entry with a unicast
                    // solicitation to the address; the kernel routes
                    // that one (into the TUN device) unless the global
                    // proxy_ndp lets ip6_forward hand it to NDP first.
                    self.set_sysctl(&["net", "ipv6", "conf", "all", "proxy_ndp"], "1")?;
                    self.set_sysctl(&["net", "ipv6", "neigh", dev, "proxy_delay"], "0")?;
                }
                self.record(change.clone());
                let family = if addr.is_ipv4() { "-4" } else { "-6" };
                if let Err(e) = ip(&[
                    family,
                    "neigh",
                    "replace",
                    "proxy",
                    &addr.to_string(),
                    "dev",
                    dev,
                ]) {
                    self.forget(change);
                    return Err(e);
                }
                log::info(format_args!(
                    "answering ARP/NDP for {addr} on {dev} (proxy)"
                ));
            }
            Change::Sysctl(..) => {}
        }
        Ok(())
    }

    /// Set `accept_local=1` on each of `interfaces` (AF_XDP with local
    /// virtual addresses; see the module docs).
    fn accept_local(&mut self, interfaces: &[String]) {
        for dev in interfaces {
            if let Err(e) = self.set_sysctl(&["net", "ipv4", "conf", dev, "accept_local"], "1") {
                log::warn(e);
            }
        }
    }

    /// Undo every change, newest first, and remove the state file.
    pub fn restore(&mut self) {
        for change in std::mem::take(&mut self.changes).iter().rev() {
            change.undo();
        }
        let _ = fs::remove_file(&self.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lines_round_trip() {
        let changes = [
            Change::Sysctl(sysctl_path(&["net", "ipv4", "ip_forward"]), "0".into()),
            Change::Addr("192.0.2.1".parse().unwrap(), "lo".into()),
            Change::Proxy("2001:db8::1".parse().unwrap(), "eth0.100".into()),
        ];
        for change in changes {
            assert_eq!(Change::parse(&change.line()), Some(change));
        }
        assert_eq!(Change::parse("bogus\tx\ty"), None);
        assert_eq!(Change::parse("addr\tnot-an-address\tlo"), None);
    }

    #[test]
    fn sysctl_names_keep_dotted_interfaces_whole() {
        let path = sysctl_path(&["net", "ipv4", "conf", "eth0.100", "rp_filter"]);
        assert_eq!(
            path,
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
        assert_eq!(sysctl_name(&path), "net.ipv4.conf.eth0.100.rp_filter");
    }
}
