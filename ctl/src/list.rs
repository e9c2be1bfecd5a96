//! ipvsadm's listings, byte for byte: the table (`-L`, with `--stats`,
//! `--rate`, `--thresholds`, `--persistent-conn`, `--tun-info`,
//! `--exact`, `-n`, `--nosort`), the rules of `-S`, the connection list
//! (`-c`), `--timeout` and `--daemon`.
//!
//! Each function renders what uvsd answered into the text ipvsadm 1.31
//! prints for the same kernel state, following its printf formats
//! (`print_title`, `print_service_entry`, `print_conn`, `list_timeout`,
//! `list_daemon`), including its quirks: service names cut to 33 and real
//! server names to 28 characters (IPv4), a real server's connection and
//! packet counters and rates read as 32-bit numbers, destination CPS and
//! PPS under `--rate` unscaled, and sorting by `int` subtraction of
//! unsigned values, with glibc's merge sort, so that the order matches
//! ipvsadm's even where that comparison wraps.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use uvs_conf::control::{ConnectionStatus, DaemonStatus, ServerStatus, ServiceStatus, SyncRole};
use uvs_conf::{Family, ForwardMethod, Netmask, ServiceKey, Timeouts, TunnelCsum, TunnelType};

use crate::largenum::format_largenum;
use crate::parse::Format;
use crate::resolve::Resolver;

/// The IPVS version ipvsadm prints in the header; uvs speaks IPVS 1.2.1.
pub const IPVS_VERSION: &str = "1.2.1";

/// How addresses and ports are written: `-n` or names.
#[derive(Clone, Copy)]
pub struct Names<'a> {
    /// The look-ups.
    pub resolver: &'a dyn Resolver,
    /// `-n`: numbers only.
    pub numeric: bool,
}

impl std::fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("numeric", &self.numeric)
            .finish()
    }
}

/// ipvsadm's `addrport_to_anyname`.
pub fn addrport(names: Names<'_>, addr: IpAddr, port: u16, protocol: u8) -> String {
    let (open, close) = if addr.is_ipv6() { ("[", "]") } else { ("", "") };
    if names.numeric {
        return format!("{open}{}{close}:{port}", ntop(addr));
    }
    let host = names
        .resolver
        .addr_to_host(addr)
        .unwrap_or_else(|| ntop(addr));
    let service = crate::addr::proto_name(protocol)
        .and_then(|p| names.resolver.port_to_service(port, p))
        .unwrap_or_else(|| port.to_string());
    format!("{open}{host}{close}:{service}")
}

/// glibc's `inet_ntop`: as Rust's `Display`, but an IPv6 address whose
/// first 96 bits are zero (and is not `::` or `::1`-like) keeps its
/// IPv4-compatible dotted tail, as glibc writes it.
pub fn ntop(addr: IpAddr) -> String {
    if let IpAddr::V6(v6) = addr {
        let seg = v6.segments();
        if seg[..6].iter().all(|&w| w == 0) && seg[6] != 0 {
            let o = v6.octets();
            return format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
        }
    }
    addr.to_string()
}

/// Cut `s` to at most `n` bytes, as ipvsadm's `name[n] = '\0'`.
fn cut(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    String::from_utf8_lossy(&s.as_bytes()[..n]).into_owned()
}

fn service_af_v6(key: &ServiceKey) -> bool {
    match key {
        ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
        ServiceKey::Fwmark { family, .. } => *family == Family::V6,
    }
}

/// The IP protocol number ipvsadm holds for a service (TCP for fwmark
/// services, as ipvsadm sets it).
fn service_protocol(key: &ServiceKey) -> u8 {
    match key {
        ServiceKey::Addr { protocol, .. } => protocol.number(),
        ServiceKey::Fwmark { .. } => 6,
    }
}

/// An address as four host-order words (IPv4 in the first), as the
/// kernel's `union nf_inet_addr` is read by ipvsadm's comparisons.
fn words(addr: IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(v4) => [u32::from(v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let mut w = [0u32; 4];
            for (i, word) in w.iter_mut().enumerate() {
                *word = u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]);
            }
            w
        }
    }
}

/// `int r = a - b` on unsigned 32-bit values, as the C code does.
fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn addr_cmp(first_is_v6: bool, a: IpAddr, b: IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    if first_is_v6 {
        let mut r = 0;
        for i in 0..4 {
            r = diff(wa[i], wb[i]);
            if r != 0 {
                break;
            }
        }
        r
    } else {
        diff(wa[0], wb[0])
    }
}

/// libipvs's `ipvs_cmp_services`.
pub fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> i32 {
    let parts = |k: &ServiceKey| -> (u32, u32, u32, IpAddr, u16) {
        let af = if service_af_v6(k) { 10 } else { 2 };
        match *k {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => (0, af, u32::from(protocol.number()), addr, port),
            ServiceKey::Fwmark { mark, .. } => (mark, af, 6, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        }
    };
    let (fa, afa, pa, aa, porta) = parts(a);
    let (fb, afb, pb, ab, portb) = parts(b);
    let r = diff(fa, fb);
    if r != 0 {
        return r;
    }
    let r = afa as i32 - afb as i32;
    if r != 0 {
        return r;
    }
    let r = pa as i32 - pb as i32;
    if r != 0 {
        return r;
    }
    let r = addr_cmp(afa == 10, aa, ab);
    if r != 0 {
        return r;
    }
    i32::from(porta) - i32::from(portb)
}

/// libipvs's `ipvs_cmp_dests`.
pub fn cmp_dests(a: &ServerStatus, b: &ServerStatus) -> i32 {
    let r = addr_cmp(a.config.addr.is_ipv6(), a.config.addr, b.config.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.config.port) - i32::from(b.config.port)
}

/// glibc's `qsort` (its merge sort, `msort_with_tmp`): split in halves
/// (first half `n / 2`), sort each, merge taking from the first half while
/// `cmp <= 0`. Deterministic for any comparison, even one that is not a
/// total order, as ipvsadm's are not.
pub fn glibc_msort<T: Clone>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i].clone());
            i += 1;
        } else {
            merged.push(v[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.clone_from_slice(&merged);
}

/// Services in ipvsadm's order: sorted unless `--nosort`.
pub fn sorted_services(services: &[ServiceStatus], nosort: bool) -> Vec<ServiceStatus> {
    let mut v = services.to_vec();
    if !nosort {
        glibc_msort(&mut v, &|a: &ServiceStatus, b: &ServiceStatus| {
            cmp_services(&a.spec.key, &b.spec.key)
        });
        for s in &mut v {
            glibc_msort(&mut s.servers, &cmp_dests);
        }
    }
    v
}

/// The title lines for a format (`print_title`).
pub fn title(format: &Format) -> String {
    const PROT: &str = "Prot LocalAddress:Port";
    const REMOTE: &str = "  -> RemoteAddress:Port";
    if format.stats {
        format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if format.rate {
        format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if format.thresholds {
        format!(
            "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n{REMOTE}\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format.persistent_conn {
        format!(
            "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n{REMOTE}\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if format.tun_info {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_string()
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_string()
    }
}

/// `print_sched_flags`: the flags' names for the service's scheduler.
fn sched_flags(s: &ServiceStatus) -> String {
    let f = s.spec.flags;
    let names: [(&str, bool); 3] = match s.spec.scheduler.as_str() {
        "sh" => [("sh-fallback", f.flag1), ("sh-port", f.flag2), ("", false)],
        "mh" => [("mh-fallback", f.flag1), ("mh-port", f.flag2), ("", false)],
        _ => [
            ("flag-1", f.flag1),
            ("flag-2", f.flag2),
            ("flag-3", f.flag3),
        ],
    };
    names
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn any_flag(s: &ServiceStatus) -> bool {
    let f = s.spec.flags;
    f.flag1 || f.flag2 || f.flag3
}

/// An IPv4 netmask from a prefix length.
/// A persistence netmask as ipvsadm prints it: `inet_ntoa` of an IPv4
/// mask (any bits, e.g. `255.0.255.0`), `%i` of an IPv6 prefix length.
fn netmask_text(netmask: Netmask) -> String {
    match netmask {
        Netmask::V4(mask) => mask.to_string(),
        Netmask::V6(prefix) => prefix.to_string(),
    }
}

fn forward_name(m: &ForwardMethod) -> &'static str {
    match m {
        ForwardMethod::Dr => "Route",
        ForwardMethod::Nat => "Masq",
        ForwardMethod::Tunnel { .. } => "Tunnel",
        ForwardMethod::FullNat => "FullNat",
    }
}

fn forward_switch(m: &ForwardMethod) -> &'static str {
    match m {
        ForwardMethod::Dr => "-g",
        ForwardMethod::Nat => "-m",
        ForwardMethod::Tunnel { .. } => "-i",
        ForwardMethod::FullNat => "--fullnat",
    }
}

fn csum_index(c: TunnelCsum) -> usize {
    match c {
        TunnelCsum::NoCsum => 0,
        TunnelCsum::Csum => 1,
        TunnelCsum::RemCsum => 2,
    }
}

/// `fwd_tun_info`.
fn tun_info(m: &ForwardMethod) -> String {
    const FLAGS: [&str; 3] = ["-c", "+c", "r+c"];
    match m {
        ForwardMethod::Tunnel { kind, csum } => match kind {
            TunnelType::Ipip => "ipip".to_string(),
            TunnelType::Gue { port } => format!("gue:{port}:{}", FLAGS[csum_index(*csum)]),
            TunnelType::Gre => format!("gre:{}", FLAGS[csum_index(*csum)]),
        },
        _ => "n/a".to_string(),
    }
}

/// The service's name column: `TCP  host:port` (cut to 33 for IPv4) or
/// `FWM  n`; in rule form `-t host:port` / `-f n [-6]`.
fn service_name(s: &ServiceStatus, names: Names<'_>, rule: bool) -> String {
    match s.spec.key {
        ServiceKey::Fwmark { mark, family } => {
            let v6 = family == Family::V6;
            match (rule, v6) {
                (true, true) => format!("-f {mark} -6"),
                (true, false) => format!("-f {mark}"),
                (false, true) => format!("FWM  {mark} IPv6"),
                (false, false) => format!("FWM  {mark}"),
            }
        }
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let vname = addrport(names, addr, port, protocol.number());
            if rule {
                let opt = match protocol {
                    uvs_conf::Protocol::Tcp => "-t",
                    uvs_conf::Protocol::Udp => "-u",
                    uvs_conf::Protocol::Sctp => "--sctp-service",
                };
                format!("{opt} {vname}")
            } else {
                let proto = match protocol {
                    uvs_conf::Protocol::Tcp => "TCP",
                    uvs_conf::Protocol::Udp => "UDP",
                    uvs_conf::Protocol::Sctp => "SCTP",
                };
                let full = format!("{proto:<4} {vname}");
                if addr.is_ipv6() {
                    full
                } else {
                    cut(&full, 33)
                }
            }
        }
    }
}

/// ipvsadm's `print_service_entry` in listing form (not rules).
fn service_entry(out: &mut String, s: &ServiceStatus, format: &Format, names: Names<'_>) {
    let svc_name = service_name(s, names, false);
    let exact = format.exact;
    if format.stats {
        let _ = write!(out, "{svc_name:<33}");
        let c = s.counters;
        for n in [c.conns, c.in_pkts, c.out_pkts, c.in_bytes, c.out_bytes] {
            out.push_str(&format_largenum(n, exact));
        }
    } else if format.rate {
        let _ = write!(out, "{svc_name:<33}");
        let r = s.rates;
        for n in [r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps] {
            out.push_str(&format_largenum(n, exact));
        }
    } else {
        let _ = write!(out, "{svc_name} {}", s.spec.scheduler.as_str());
        if any_flag(s) {
            let _ = write!(out, " ({})", sched_flags(s));
        }
        if let Some(p) = s.spec.persistence {
            let _ = write!(out, " persistent {}", p.timeout);
            if !p.netmask.is_full() {
                let _ = write!(out, " mask {}", netmask_text(p.netmask));
            }
            if let Some(pe) = s.spec.persistence_engine {
                let _ = write!(out, " pe {}", pe.as_str());
            }
        }
        if s.spec.one_packet {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let protocol = service_protocol(&s.spec.key);
    for d in &s.servers {
        let e = &d.config;
        let full = addrport(names, e.addr, e.port, protocol);
        let dname = if e.addr.is_ipv6() {
            full
        } else {
            cut(&full, 28)
        };
        // ipvsadm 1.31 reads these as 32-bit numbers.
        let c32 = |n: u64| u64::from(n as u32);
        if format.stats {
            let _ = write!(out, "  -> {dname:<28}");
            let c = d.counters;
            for n in [
                c32(c.conns),
                c32(c.in_pkts),
                c32(c.out_pkts),
                c.in_bytes,
                c.out_bytes,
            ] {
                out.push_str(&format_largenum(n, exact));
            }
            out.push('\n');
        } else if format.rate {
            let r = d.rates;
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                c32(r.cps),
                c32(r.in_pps),
                c32(r.out_pps)
            );
            out.push_str(&format_largenum(c32(r.in_bps), exact));
            out.push_str(&format_largenum(c32(r.out_bps), exact));
            out.push('\n');
        } else if format.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                e.u_threshold, e.l_threshold, d.active_conns, d.inactive_conns
            );
        } else if format.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                e.weight, d.persistent_conns, d.active_conns, d.inactive_conns
            );
        } else if format.tun_info {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                forward_name(&e.method),
                tun_info(&e.method),
                e.weight as i32,
                d.active_conns,
                d.inactive_conns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                forward_name(&e.method),
                e.weight as i32,
                d.active_conns,
                d.inactive_conns
            );
        }
    }
}

/// The first line of a whole-table listing.
pub fn header(conn_table_size: u32) -> String {
    format!("IP Virtual Server version {IPVS_VERSION} (size={conn_table_size})\n")
}

/// `-L` / `-l` of the whole table: the version header with the
/// connection table size, the title, every service.
pub fn list_all(
    conn_table_size: u32,
    services: &[ServiceStatus],
    format: &Format,
    names: Names<'_>,
) -> String {
    let mut out = header(conn_table_size);
    out.push_str(&title(format));
    for s in sorted_services(services, format.nosort) {
        service_entry(&mut out, &s, format, names);
    }
    out
}

/// `-L -t|-u|-f service`: the title and that one service.
pub fn list_service(service: &ServiceStatus, format: &Format, names: Names<'_>) -> String {
    let mut out = title(format);
    let sorted = sorted_services(std::slice::from_ref(service), format.nosort);
    for s in &sorted {
        service_entry(&mut out, s, format, names);
    }
    out
}

/// `-S`: every service and real server as the ipvsadm lines that make
/// them (always sorted; `-x`/`-y` are not saved, as in ipvsadm).
pub fn save(services: &[ServiceStatus], names: Names<'_>) -> String {
    let mut out = String::new();
    for s in sorted_services(services, false) {
        let svc_name = service_name(&s, names, true);
        let _ = write!(out, "-A {svc_name} -s {}", s.spec.scheduler.as_str());
        if let Some(p) = s.spec.persistence {
            let _ = write!(out, " -p {}", p.timeout);
            if !p.netmask.is_full() {
                let _ = write!(out, " -M {}", netmask_text(p.netmask));
            }
        }
        // ipvsadm saves the engine whether or not the service persists.
        if let Some(pe) = s.spec.persistence_engine {
            let _ = write!(out, " --pe {}", pe.as_str());
        }
        if s.spec.one_packet {
            out.push_str(" -o");
        }
        if any_flag(&s) {
            let _ = write!(out, " -b {}", sched_flags(&s));
        }
        out.push('\n');
        let protocol = service_protocol(&s.spec.key);
        for d in &s.servers {
            let e = &d.config;
            let dname = addrport(names, e.addr, e.port, protocol);
            let sw = forward_switch(&e.method);
            let _ = write!(out, "-a {svc_name} -r {dname} {sw} -w {}", e.weight as i32);
            const OPTS: [&str; 3] = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];
            if let ForwardMethod::Tunnel { kind, csum } = e.method {
                match kind {
                    TunnelType::Ipip => out.push_str(" --tun-type ipip"),
                    TunnelType::Gue { port } => {
                        let _ = write!(
                            out,
                            " --tun-type gue --tun-port {port} {}",
                            OPTS[csum_index(csum)]
                        );
                    }
                    TunnelType::Gre => {
                        let _ = write!(out, " --tun-type gre {}", OPTS[csum_index(csum)]);
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The kernel's `ip_vs_proto_name`.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        0 => "IP".into(),
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        132 => "SCTP".into(),
        p => format!("IP_{p}"),
    }
}

/// `-c`: the connection entries (`list_conn` / `print_conn`).
pub fn list_connections(conns: &[ConnectionStatus], format: &Format, names: Names<'_>) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if format.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in conns {
        let cname = addrport(names, c.client, c.client_port, c.protocol);
        let vname = addrport(names, c.virtual_addr, c.virtual_port, c.protocol);
        let dname = addrport(names, c.server, c.server_port, c.protocol);
        let expire = format!("{:02}:{:02}", c.expires_secs / 60, c.expires_secs % 60);
        if let (true, Some(pe)) = (format.persistent_conn, &c.pe) {
            // print_conn with the /proc line's pe name and data (sscanf
            // read 11 fields): the destination in 16 columns, the name in 18.
            let _ = writeln!(
                out,
                "{:<3} {:<6} {:<11} {:<18} {:<18} {:<16} {:<18} {}",
                protocol_name(c.protocol),
                expire,
                c.state,
                cname,
                vname,
                dname,
                pe.name,
                pe.data
            );
            continue;
        }
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            protocol_name(c.protocol),
            expire,
            c.state,
            cname,
            vname,
            dname
        );
    }
    out
}

/// `--timeout`.
pub fn list_timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp as i32, t.tcp_fin as i32, t.udp as i32
    )
}

/// `--daemon`: one line per running sync daemon, master first.
pub fn list_daemons(daemons: &[DaemonStatus]) -> String {
    let mut out = String::new();
    let mut ordered: Vec<&DaemonStatus> = daemons.iter().collect();
    ordered.sort_by_key(|d| match d.daemon.role {
        SyncRole::Master => 0,
        SyncRole::Backup => 1,
    });
    for d in ordered {
        let s = &d.daemon;
        let role = match s.role {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        };
        let _ = write!(
            out,
            "{role} sync daemon (mcast={}, syncid={}",
            s.interface, s.syncid
        );
        if let Some(m) = s.maxlen.filter(|m| *m != 0) {
            let _ = write!(out, ", maxlen={m}");
        }
        if let Some(g) = s.group {
            let _ = write!(out, ", group={g}");
        }
        if let Some(p) = s.port.filter(|p| *p != 0) {
            let _ = write!(out, ", port={p}");
        }
        if let Some(t) = s.ttl.filter(|t| *t != 0) {
            let _ = write!(out, ", ttl={t}");
        }
        out.push_str(")\n");
    }
    out
}
