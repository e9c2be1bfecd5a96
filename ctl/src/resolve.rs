//! Names for addresses and ports, both ways, as ipvsadm looks them up.
//!
//! ipvsadm turns `host` into an address with `inet_aton` and then
//! `gethostbyname` (keeping the first IPv4 address), a port name into a
//! number with `getservbyname`, and, when listing without `-n`, addresses
//! and ports back into names with `gethostbyaddr` / `getservbyport`. The
//! [`Resolver`] trait holds those four look-ups so that the parser and the
//! listings can be tested with a fixed table ([`StaticResolver`]);
//! [`SystemResolver`] asks the system (the C library's resolver for hosts,
//! `/etc/services` for ports).

use std::collections::HashMap;
use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// The four name look-ups ipvsadm makes.
pub trait Resolver {
    /// A host name to its first IPv4 address (`gethostbyname`).
    fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr>;
    /// An address to a host name (`gethostbyaddr`).
    fn addr_to_host(&self, addr: IpAddr) -> Option<String>;
    /// A service name to its port for `proto` ("tcp", "udp", "sctp").
    fn service_to_port(&self, name: &str, proto: &str) -> Option<u16>;
    /// A port to its service name for `proto`.
    fn port_to_service(&self, port: u16, proto: &str) -> Option<String>;
}

/// One line of a services file: name, port, protocol, aliases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Official name.
    pub name: String,
    /// Port.
    pub port: u16,
    /// Protocol (`tcp`, `udp`, ...).
    pub proto: String,
    /// Other names.
    pub aliases: Vec<String>,
}

/// Read the text of a services file (`name port/proto [aliases] [# comment]`),
/// skipping lines that do not fit.
pub fn parse_services(text: &str) -> Vec<ServiceEntry> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        entries.push(ServiceEntry {
            name: name.to_string(),
            port,
            proto: proto.to_string(),
            aliases: words.map(str::to_string).collect(),
        });
    }
    entries
}

/// Look-ups from fixed tables: services file entries and a host table.
/// Used by tests, and by [`SystemResolver`] for ports.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    /// Services, in file order (the first match wins, as in libc).
    pub services: Vec<ServiceEntry>,
    /// Host names and their addresses.
    pub hosts: Vec<(String, IpAddr)>,
}

impl StaticResolver {
    /// A resolver over these services and hosts.
    pub fn new(services: Vec<ServiceEntry>, hosts: Vec<(String, IpAddr)>) -> StaticResolver {
        StaticResolver { services, hosts }
    }
}

impl Resolver for StaticResolver {
    fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.iter().find_map(|(n, a)| match a {
            IpAddr::V4(v4) if n == name => Some(*v4),
            _ => None,
        })
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        self.hosts
            .iter()
            .find(|(_, a)| *a == addr)
            .map(|(n, _)| n.clone())
    }

    fn service_to_port(&self, name: &str, proto: &str) -> Option<u16> {
        self.services
            .iter()
            .find(|e| e.proto == proto && (e.name == name || e.aliases.iter().any(|a| a == name)))
            .map(|e| e.port)
    }

    fn port_to_service(&self, port: u16, proto: &str) -> Option<String> {
        self.services
            .iter()
            .find(|e| e.proto == proto && e.port == port)
            .map(|e| e.name.clone())
    }
}

/// The system's look-ups: `/etc/services` for ports, the C library's
/// resolver (`/etc/hosts`, DNS, per nsswitch) for hosts.
#[derive(Debug, Default)]
pub struct SystemResolver {
    services: StaticResolver,
    cache: std::cell::RefCell<HashMap<IpAddr, Option<String>>>,
}

impl SystemResolver {
    /// Read `/etc/services` (missing file: no port names).
    pub fn new() -> SystemResolver {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        SystemResolver {
            services: StaticResolver::new(parse_services(&text), Vec::new()),
            cache: Default::default(),
        }
    }
}

impl Resolver for SystemResolver {
    fn host_to_v4(&self, name: &str) -> Option<Ipv4Addr> {
        let addrs = (name, 0u16).to_socket_addrs().ok()?;
        addrs.into_iter().find_map(|a| match a {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
    }

    fn addr_to_host(&self, addr: IpAddr) -> Option<String> {
        if let Some(hit) = self.cache.borrow().get(&addr) {
            return hit.clone();
        }
        let name = reverse_lookup(addr);
        self.cache.borrow_mut().insert(addr, name.clone());
        name
    }

    fn service_to_port(&self, name: &str, proto: &str) -> Option<u16> {
        self.services.service_to_port(name, proto)
    }

    fn port_to_service(&self, port: u16, proto: &str) -> Option<String> {
        self.services.port_to_service(port, proto)
    }
}

/// `getnameinfo(NI_NAMEREQD)`: the host name of an address, if it has one.
fn reverse_lookup(addr: IpAddr) -> Option<String> {
    let mut host = [0 as libc::c_char; 1025];
    let rc = match addr {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            // SAFETY: sa is a valid sockaddr_in of the length given; host is a
            // writable buffer of the length given; the service buffer is null
            // with length 0, which getnameinfo accepts.
            unsafe {
                libc::getnameinfo(
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_addr.s6_addr = v6.octets();
            // SAFETY: as above, for a sockaddr_in6.
            unsafe {
                libc::getnameinfo(
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into host.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_lines_give_names_aliases_and_first_match() {
        let text = "# comment\nhttp\t\t80/tcp\t\twww\t\t# WWW\nhttp 80/udp\n\nbogus\nssh 22/tcp\nalt 80/tcp\n";
        let r = StaticResolver::new(parse_services(text), Vec::new());
        assert_eq!(r.service_to_port("http", "tcp"), Some(80));
        assert_eq!(r.service_to_port("www", "tcp"), Some(80));
        assert_eq!(r.service_to_port("www", "udp"), None);
        assert_eq!(r.service_to_port("ssh", "udp"), None);
        assert_eq!(r.port_to_service(80, "tcp").as_deref(), Some("http"));
        assert_eq!(r.port_to_service(81, "tcp"), None);
    }

    #[test]
    fn system_resolver_finds_localhost() {
        let r = SystemResolver::new();
        assert_eq!(r.host_to_v4("localhost"), Some(Ipv4Addr::LOCALHOST));
        assert!(r.addr_to_host(IpAddr::V4(Ipv4Addr::LOCALHOST)).is_some());
    }
}
