//! The director's network as the kernel knows it, turned into a
//! [`NetView`] for the engine: interfaces (name, MAC, MTU, own
//! addresses), routes and neighbours' MAC addresses.
//!
//! Sources, all readable without extra privileges or crates, and all
//! answering for the calling thread's network namespace:
//! `if_nameindex(3)` and `SIOCGIF*` ioctls for interfaces (index, flags,
//! MAC, MTU), `getifaddrs(3)` for their addresses,
//! `/proc/thread-self/net/route` (IPv4 main table) and `.../ipv6_route`
//! for routes, and an rtnetlink `RTM_GETNEIGH` dump for the neighbour
//! table of both families (the ARP and NDP caches). Only routes over the
//! chosen interfaces are kept; [`PortId`]s follow the order of the
//! interface list, which is also the order the backend attaches them in.
//!
//! The daemon reads it at start and again periodically, and sooner when
//! the engine counts frames dropped for want of a route or a neighbour.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::route::{Mac, NetView, Port, PortId, Route};

/// `IFF_UP`.
const IFF_UP: u32 = 0x1;
/// `IFF_LOOPBACK`.
const IFF_LOOPBACK: u32 = 0x8;
/// `RTF_UP`.
const RTF_UP: u32 = 0x1;
/// `RTF_GATEWAY`.
const RTF_GATEWAY: u32 = 0x2;
/// `RTF_REJECT`.
const RTF_REJECT: u32 = 0x200;
/// `RTF_LOCAL` (IPv6).
const RTF_LOCAL: u32 = 0x8000_0000;

/// What the kernel says about one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// ifindex.
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// Hardware address.
    pub mac: Mac,
    /// MTU.
    pub mtu: u32,
}

/// A socket for interface ioctls.
fn ioctl_socket() -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nobody else owns.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= req.ifr_name.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name `{name}'"),
        ));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn ioctl(
    fd: &std::os::fd::OwnedFd,
    request: libc::c_ulong,
    req: &mut libc::ifreq,
) -> io::Result<()> {
    let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
    // SAFETY: the SIOCGIF* requests used here read the name and write one
    // member of the ifreq union, which `req` has room for.
    if unsafe { libc::ioctl(raw, request as _, req as *mut libc::ifreq) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Index, flags, MAC and MTU of interface `name`.
pub fn link_info(name: &str) -> io::Result<LinkInfo> {
    let fd = ioctl_socket()?;
    let named = |e: io::Error| io::Error::new(e.kind(), format!("interface {name}: {e}"));
    let mut req = ifreq(name)?;
    ioctl(&fd, libc::SIOCGIFINDEX, &mut req).map_err(named)?;
    // SAFETY: SIOCGIFINDEX filled the ifindex member.
    let index = u32::try_from(unsafe { req.ifr_ifru.ifru_ifindex }).unwrap_or(0);
    let mut req = ifreq(name)?;
    ioctl(&fd, libc::SIOCGIFFLAGS, &mut req).map_err(named)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    let flags = u32::from(unsafe { req.ifr_ifru.ifru_flags } as u16);
    let mut req = ifreq(name)?;
    ioctl(&fd, libc::SIOCGIFMTU, &mut req).map_err(named)?;
    // SAFETY: SIOCGIFMTU filled the mtu member.
    let mtu = u32::try_from(unsafe { req.ifr_ifru.ifru_mtu }).unwrap_or(0);
    let mut req = ifreq(name)?;
    ioctl(&fd, libc::SIOCGIFHWADDR, &mut req).map_err(named)?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member (a sockaddr whose
    // data starts with the address).
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(data.iter()) {
        *dst = *src as u8;
    }
    Ok(LinkInfo {
        index,
        flags,
        mac,
        mtu,
    })
}

/// Every interface name, by index (`if_nameindex(3)`).
fn all_interfaces() -> io::Result<Vec<(u32, String)>> {
    // SAFETY: if_nameindex returns an array we free below, or null.
    let head = unsafe { libc::if_nameindex() };
    if head.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cursor = head;
    loop {
        // SAFETY: the array ends with an entry of index 0 and a null
        // name; we stop there.
        let entry = unsafe { &*cursor };
        if entry.if_index == 0 || entry.if_name.is_null() {
            break;
        }
        // SAFETY: if_name is a NUL-terminated string owned by the array.
        let name = unsafe { CStr::from_ptr(entry.if_name) }
            .to_string_lossy()
            .into_owned();
        out.push((entry.if_index, name));
        // SAFETY: not past the terminating entry yet.
        cursor = unsafe { cursor.add(1) };
    }
    // SAFETY: `head` came from if_nameindex.
    unsafe { libc::if_freenameindex(head) };
    out.sort();
    Ok(out)
}

/// A `/proc/<thread>/net` file of the calling thread's namespace.
fn proc_net(file: &str) -> String {
    fs::read_to_string(format!("/proc/thread-self/net/{file}"))
        .or_else(|_| fs::read_to_string(format!("/proc/net/{file}")))
        .unwrap_or_default()
}

fn parse_hex_u32(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// The interfaces to attach: `configured` as given, or else every
/// interface that is up and not a loopback, by ifindex.
pub fn choose_interfaces(configured: &[String]) -> io::Result<Vec<String>> {
    if !configured.is_empty() {
        return Ok(configured.to_vec());
    }
    Ok(all_interfaces()?
        .into_iter()
        .filter(|(_, name)| {
            link_info(name)
                .is_ok_and(|link| link.flags & IFF_UP != 0 && link.flags & IFF_LOOPBACK == 0)
        })
        .map(|(_, name)| name)
        .collect())
}

/// The interfaces that hold or route to `addrs` (virtual addresses,
/// real servers, full-NAT locals), from the kernel's main routing table
/// (longest prefix, the default route included), in order of first
/// need. An address with no route is skipped; loopback, interfaces that
/// are down and those named in `exclude` (the TUN backend's own device,
/// which routes the virtual addresses) never count.
pub fn interfaces_for(addrs: &[IpAddr], exclude: &[String]) -> io::Result<Vec<String>> {
    let names: Vec<String> = all_interfaces()?
        .into_iter()
        .map(|(_, name)| name)
        .filter(|name| !exclude.contains(name))
        .filter(|name| {
            link_info(name)
                .is_ok_and(|link| link.flags & IFF_UP != 0 && link.flags & IFF_LOOPBACK == 0)
        })
        .collect();
    let ports: HashMap<String, PortId> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), PortId(u16::try_from(i).unwrap_or(u16::MAX))))
        .collect();
    let mut routes = parse_route_v4(&proc_net("route"), &ports);
    routes.extend(parse_route_v6(&proc_net("ipv6_route"), &ports));
    let view = NetView {
        routes,
        ..NetView::default()
    };
    let mut out: Vec<String> = Vec::new();
    for &addr in addrs {
        if let Some(route) = view.route(addr) {
            let name = &names[usize::from(route.port.0)];
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    Ok(out)
}

/// One address of an interface, as `getifaddrs(3)` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's name.
    pub name: String,
    /// The address.
    pub addr: IpAddr,
    /// An IPv6 /128 (a host address such as a VIP), not a subnet address.
    pub host: bool,
}

/// Every address configured on an interface of this namespace, in the
/// kernel's order (the newest IPv6 address first). Empty when
/// `getifaddrs` fails.
pub fn interface_address_list() -> Vec<InterfaceAddress> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with
    // freeifaddrs; on failure it returns -1 and we read nothing.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned,
        // alive until freeifaddrs.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr is non-null and points to a sockaddr whose
        // family says which concrete type it is.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family == libc::AF_INET {
            // SAFETY: family AF_INET means a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            out.push(InterfaceAddress {
                name,
                addr: IpAddr::V4(addr),
                host: false,
            });
        } else if family == libc::AF_INET6 {
            // SAFETY: family AF_INET6 means a sockaddr_in6.
            let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
            let host = !ifa.ifa_netmask.is_null() && {
                // SAFETY: the netmask of an AF_INET6 entry is a sockaddr_in6.
                let mask = unsafe { &*(ifa.ifa_netmask as *const libc::sockaddr_in6) };
                mask.sin6_addr.s6_addr == [0xff; 16]
            };
            out.push(InterfaceAddress {
                name,
                addr: IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                host,
            });
        }
    }
    // SAFETY: `head` came from a successful getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// Each interface's own addresses (first IPv4; first global IPv6 that is
/// not a /128, else first global, else first IPv6).
fn interface_addresses() -> HashMap<String, (Option<IpAddr>, Option<IpAddr>)> {
    let mut out: HashMap<String, (Option<IpAddr>, Option<IpAddr>)> = HashMap::new();
    // Rank of the IPv6 address kept: global over link-local, then a
    // subnet address over a /128.
    let mut v6_rank: HashMap<String, u8> = HashMap::new();
    for InterfaceAddress { name, addr, host } in interface_address_list() {
        let best = v6_rank.entry(name.clone()).or_insert(0);
        let entry = out.entry(name).or_default();
        match addr {
            IpAddr::V4(_) => {
                entry.0.get_or_insert(addr);
            }
            IpAddr::V6(v6) => {
                // A /128 is a host address (a VIP the director holds), not
                // the port's own, and the kernel lists the newest address
                // first: prefer the subnet address, so tunnel output leaves
                // from the address real servers know the director by (their
                // decap role's --director), whatever order VIPs were added in.
                let link_local = v6.segments()[0] & 0xffc0 == 0xfe80;
                let rank = u8::from(!link_local) * 2 + u8::from(!host);
                if entry.1.is_none() || rank > *best {
                    entry.1 = Some(addr);
                    *best = rank;
                }
            }
        }
    }
    out
}

/// Routes of `/proc/net/route` over the named ports.
pub fn parse_route_v4(text: &str, ports: &HashMap<String, PortId>) -> Vec<Route> {
    let mut routes = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(dst), Some(gw), Some(flags), Some(mask)) =
            (f.first(), f.get(1), f.get(2), f.get(3), f.get(7))
        else {
            continue;
        };
        let (Some(&port), Some(dst), Some(gw), Some(flags), Some(mask)) = (
            ports.get(*name),
            parse_hex_u32(dst),
            parse_hex_u32(gw),
            parse_hex_u32(flags),
            parse_hex_u32(mask),
        ) else {
            continue;
        };
        if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 {
            continue;
        }
        // The kernel prints the big-endian words as native integers.
        let gateway = (flags & RTF_GATEWAY != 0 && gw != 0)
            .then(|| IpAddr::V4(Ipv4Addr::from(gw.to_ne_bytes())));
        routes.push(Route {
            prefix: IpAddr::V4(Ipv4Addr::from(dst.to_ne_bytes())),
            len: u8::try_from(mask.count_ones()).unwrap_or(32),
            port,
            gateway,
        });
    }
    routes
}

fn parse_v6_hex(s: &str) -> Option<Ipv6Addr> {
    (s.len() == 32)
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
        .map(Ipv6Addr::from)
}

/// Routes of `/proc/net/ipv6_route` over the named ports (no local,
/// reject or multicast routes).
pub fn parse_route_v6(text: &str, ports: &HashMap<String, PortId>) -> Vec<Route> {
    let mut routes = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some(&port), Some(dst), Ok(len), Some(hop), Some(flags)) = (
            ports.get(f[9]),
            parse_v6_hex(f[0]),
            u8::from_str_radix(f[1], 16),
            parse_v6_hex(f[4]),
            parse_hex_u32(f[8]),
        ) else {
            continue;
        };
        if flags & RTF_UP == 0 || flags & (RTF_REJECT | RTF_LOCAL) != 0 || dst.is_multicast() {
            continue;
        }
        let gateway =
            (flags & RTF_GATEWAY != 0 && !hop.is_unspecified()).then_some(IpAddr::V6(hop));
        routes.push(Route {
            prefix: IpAddr::V6(dst),
            len,
            port,
            gateway,
        });
    }
    routes
}

// ---- rtnetlink neighbour dump --------------------------------------------

const NLMSG_HDRLEN: usize = 16;
const NDMSG_LEN: usize = 12;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// NUD states with a usable MAC: REACHABLE, STALE, DELAY, PROBE,
/// PERMANENT.
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// One neighbour entry: interface index, address, MAC.
pub type Neighbour = (u32, IpAddr, Mac);

/// Parse one `recv` worth of netlink messages from a neighbour dump.
/// Returns the usable entries and whether the dump is done. Never panics
/// on a short or odd buffer: what cannot be read is skipped.
pub fn parse_neigh_messages(buf: &[u8], out: &mut Vec<Neighbour>) -> io::Result<bool> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let (Some(len), Some(kind)) = (u32_at(buf, at), u16_at(buf, at + 4)) else {
            break;
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            break;
        }
        let msg = &buf[at..at + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = u32_at(msg, NLMSG_HDRLEN).map(|c| c as i32).unwrap_or(0);
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
            RTM_NEWNEIGH if msg.len() >= NLMSG_HDRLEN + NDMSG_LEN => {
                let nd = &msg[NLMSG_HDRLEN..];
                let family = i32::from(nd[0]);
                let ifindex = u32_at(nd, 4).unwrap_or(0);
                let state = u16_at(nd, 8).unwrap_or(0);
                let mut dst = None;
                let mut mac = None;
                let mut a = NLMSG_HDRLEN + NDMSG_LEN;
                while a + 4 <= msg.len() {
                    let (Some(alen), Some(atype)) = (u16_at(msg, a), u16_at(msg, a + 2)) else {
                        break;
                    };
                    let alen = usize::from(alen);
                    if alen < 4 || a + alen > msg.len() {
                        break;
                    }
                    let data = &msg[a + 4..a + alen];
                    match (atype, family, data.len()) {
                        (NDA_DST, libc::AF_INET, 4) => {
                            dst = Some(IpAddr::V4(Ipv4Addr::new(
                                data[0], data[1], data[2], data[3],
                            )))
                        }
                        (NDA_DST, libc::AF_INET6, 16) => {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(data);
                            dst = Some(IpAddr::V6(Ipv6Addr::from(o)));
                        }
                        (NDA_LLADDR, _, 6) => {
                            let mut m = [0u8; 6];
                            m.copy_from_slice(data);
                            mac = Some(m);
                        }
                        _ => {}
                    }
                    a += align4(alen);
                }
                if let (Some(dst), Some(mac), true) = (dst, mac, state & NUD_USABLE != 0) {
                    out.push((ifindex, dst, mac));
                }
            }
            _ => {}
        }
        at += align4(len);
    }
    Ok(false)
}

/// Dump the kernel's neighbour tables (ARP and NDP) over rtnetlink.
pub fn dump_neighbours() -> io::Result<Vec<Neighbour>> {
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket we own; OwnedFd closes it.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: setsockopt with a timeval of the right size.
    unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let mut req = [0u8; NLMSG_HDRLEN + NDMSG_LEN];
    let total = req.len() as u32;
    req[0..4].copy_from_slice(&total.to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[NLMSG_HDRLEN] = libc::AF_UNSPEC as u8;
    // SAFETY: sending a buffer we own, of its length, to the kernel
    // (a zeroed sockaddr_nl addresses the kernel).
    let sent = unsafe {
        let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        libc::sendto(
            raw,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // A dump ends with NLMSG_DONE; bound the loop all the same.
    for _ in 0..10_000 {
        // SAFETY: receiving into a buffer we own, of its length.
        let n = unsafe { libc::recv(raw, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 || parse_neigh_messages(&buf[..n], &mut out)? {
            return Ok(out);
        }
    }
    Ok(out)
}

/// Read the kernel's view over `interfaces` (in [`PortId`] order).
/// Interfaces that do not exist are an error naming them.
pub fn read(interfaces: &[String]) -> io::Result<NetView> {
    let addrs = interface_addresses();
    let mut ports = Vec::with_capacity(interfaces.len());
    let mut by_name = HashMap::new();
    let mut by_index = HashMap::new();
    for (i, name) in interfaces.iter().enumerate() {
        let link = link_info(name)?;
        let id = PortId(u16::try_from(i).unwrap_or(u16::MAX));
        let (addr_v4, addr_v6) = addrs.get(name).copied().unwrap_or_default();
        ports.push(Port {
            name: name.clone(),
            mac: link.mac,
            mtu: u16::try_from(link.mtu).unwrap_or(u16::MAX),
            addr_v4,
            addr_v6,
        });
        by_name.insert(name.clone(), id);
        by_index.insert(link.index, id);
    }
    let mut routes = parse_route_v4(&proc_net("route"), &by_name);
    routes.extend(parse_route_v6(&proc_net("ipv6_route"), &by_name));
    let mut view = NetView {
        ports,
        routes,
        neighbours: Default::default(),
    };
    for (ifindex, addr, mac) in dump_neighbours()? {
        if by_index.contains_key(&ifindex) {
            view.neighbours.insert(addr, mac);
        }
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> HashMap<String, PortId> {
        [
            ("eth0".to_string(), PortId(0)),
            ("eth1".to_string(), PortId(1)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn proc_route_gives_prefixes_gateways_and_ports() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
lo9\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n\
eth1\t0000000A\t00000000\t0201\t0\t0\t0\t000000FF\t0\t0\t0\n";
        let routes = parse_route_v4(text, &ports());
        if cfg!(target_endian = "little") {
            assert_eq!(
                routes,
                vec![
                    Route {
                        prefix: "0.0.0.0".parse().unwrap(),
                        len: 0,
                        port: PortId(0),
                        gateway: Some("192.168.2.1".parse().unwrap()),
                    },
                    Route {
                        prefix: "192.168.2.0".parse().unwrap(),
                        len: 24,
                        port: PortId(0),
                        gateway: None,
                    },
                ]
            );
        } else {
            assert_eq!(routes.len(), 2);
        }
    }

    #[test]
    fn proc_ipv6_route_skips_local_multicast_and_foreign_devices() {
        let text = "\
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db80000000000000000000000fe 00000400 00000001 00000000 00000003     eth0
20010db8000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001     eth1
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     wlan0
";
        let routes = parse_route_v6(text, &ports());
        assert_eq!(
            routes,
            vec![
                Route {
                    prefix: "2001:db8::".parse().unwrap(),
                    len: 64,
                    port: PortId(1),
                    gateway: None,
                },
                Route {
                    prefix: "::".parse().unwrap(),
                    len: 0,
                    port: PortId(0),
                    gateway: Some("2001:db8::fe".parse().unwrap()),
                },
            ]
        );
    }

    fn neigh_msg(family: u8, ifindex: u32, state: u16, dst: &[u8], mac: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN + NDMSG_LEN];
        m[4..6].copy_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        m[NLMSG_HDRLEN] = family;
        m[NLMSG_HDRLEN + 4..NLMSG_HDRLEN + 8].copy_from_slice(&ifindex.to_ne_bytes());
        m[NLMSG_HDRLEN + 8..NLMSG_HDRLEN + 10].copy_from_slice(&state.to_ne_bytes());
        for (kind, data) in [(NDA_DST, dst), (NDA_LLADDR, mac)] {
            let len = 4 + data.len();
            m.extend_from_slice(&(len as u16).to_ne_bytes());
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(data);
            m.resize(align4(m.len()), 0);
        }
        let total = m.len() as u32;
        m[0..4].copy_from_slice(&total.to_ne_bytes());
        m
    }

    #[test]
    fn neighbour_dump_keeps_usable_entries_of_both_families() {
        let mac = [2, 0, 0, 0, 0, 7];
        let mut buf = neigh_msg(libc::AF_INET as u8, 3, 0x02, &[10, 0, 0, 2], &mac);
        // INCOMPLETE (0x01): no MAC yet, skipped.
        buf.extend(neigh_msg(
            libc::AF_INET as u8,
            3,
            0x01,
            &[10, 0, 0, 3],
            &mac,
        ));
        let v6: Ipv6Addr = "2001:db8::2".parse().unwrap();
        buf.extend(neigh_msg(libc::AF_INET6 as u8, 4, 0x04, &v6.octets(), &mac));
        let mut done = vec![0u8; NLMSG_HDRLEN];
        done[0..4].copy_from_slice(&(NLMSG_HDRLEN as u32).to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        buf.extend(done);
        let mut out = Vec::new();
        assert!(parse_neigh_messages(&buf, &mut out).unwrap());
        assert_eq!(
            out,
            vec![
                (3, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), mac),
                (4, IpAddr::V6(v6), mac)
            ]
        );
        // Truncated input never panics.
        for cut in 0..buf.len() {
            let mut partial = Vec::new();
            let _ = parse_neigh_messages(&buf[..cut], &mut partial);
        }
    }

    #[test]
    fn loopback_view_reads_from_the_kernel() {
        let view = read(&["lo".to_string()]).unwrap();
        assert_eq!(view.ports.len(), 1);
        assert_eq!(view.ports[0].name, "lo");
        assert_eq!(view.ports[0].addr_v4, Some("127.0.0.1".parse().unwrap()));
        assert!(read(&["uvs-no-such0".to_string()]).is_err());
    }
}
