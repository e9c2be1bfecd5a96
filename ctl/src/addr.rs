//! ipvsadm's argument readers: numbers (`strtol`/`atoi` rules),
//! `inet_aton` addresses, and `host[:port]` / `[v6]:port` service
//! addresses, with the same quirks (an all-digit argument is refused, a
//! bracketed IPv4 address loses its port, a bare IPv6 address has port 0).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::resolve::Resolver;

/// `AF_INET`, as ipvsadm's structures hold it.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// `string_to_number`: a base-10 `strtol` that must use the whole string
/// and land in `min..=max`.
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    let n = if neg { -n } else { n };
    (min..=max).contains(&n).then_some(n)
}

/// C's `atoi`: leading digits after optional blanks and sign; 0 if none.
pub fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for b in rest.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// One part of an `inet_aton` address: decimal, `0x` hex or `0` octal.
fn aton_part(p: &str) -> Option<u64> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() {
        // "0x" alone is 0 for glibc.
        return (radix == 16).then_some(0);
    }
    let mut n: u64 = 0;
    for c in digits.chars() {
        n = n
            .checked_mul(radix)?
            .checked_add(u64::from(c.to_digit(radix as u32)?))?;
        if n > u64::from(u32::MAX) {
            return None;
        }
    }
    Some(n)
}

/// glibc's `inet_aton`: `a`, `a.b`, `a.b.c` or `a.b.c.d`, each part
/// decimal, octal or hex.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let vals = parts
        .iter()
        .map(|p| aton_part(p))
        .collect::<Option<Vec<u64>>>()?;
    let last = *vals.last()?;
    let head = &vals[..vals.len() - 1];
    if head.iter().any(|&v| v > 0xff) {
        return None;
    }
    let tail_bits = 8 * (4 - head.len() as u32);
    if tail_bits < 32 && last >> tail_bits != 0 {
        return None;
    }
    let mut n: u32 = 0;
    for (i, &v) in head.iter().enumerate() {
        n |= (v as u32) << (24 - 8 * i as u32);
    }
    n |= last as u32;
    Some(Ipv4Addr::from(n))
}

/// `str_is_digit`: true for an all-digit (or empty) string.
pub fn str_is_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// What `parse_service` read from a `host[:port]` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPort {
    /// Address family (`AF_INET` / `AF_INET6`).
    pub af: u16,
    /// The address.
    pub addr: IpAddr,
    /// The port, if the argument named one.
    pub port: Option<u16>,
}

/// `service_to_port`'s protocol name for an IP protocol number.
pub fn proto_name(protocol: u8) -> Option<&'static str> {
    match protocol {
        6 => Some("tcp"),
        17 => Some("udp"),
        132 => Some("sctp"),
        _ => None,
    }
}

/// ipvsadm's `parse_service`: `None` where it returns `SERVICE_NONE`.
/// `protocol` (an IP protocol number, 0 if not known yet) decides which
/// services-file column a port name is looked up in.
pub fn parse_service(buf: &str, protocol: u8, resolver: &dyn Resolver) -> Option<HostPort> {
    if str_is_digit(buf) {
        return None;
    }
    let mut host = buf;
    // `portp` points at the ':' before the port, as in the C code.
    let mut port_text: Option<&str> = None;
    if let Some(rest) = buf.strip_prefix('[') {
        let close = rest.find(']')?;
        host = &rest[..close];
        let after = &rest[close + 1..];
        port_text = Some(after.strip_prefix(':')?);
    }
    let (af, addr) = if let Ok(v6) = host.parse::<Ipv6Addr>() {
        (AF_INET6, IpAddr::V6(v6))
    } else {
        // strrchr(buf, ':') on the (possibly bracket-cut) host.
        match host.rfind(':') {
            Some(i) => {
                port_text = Some(&host[i + 1..]);
                host = &host[..i];
            }
            None => port_text = None,
        }
        let v4 = inet_aton(host).or_else(|| resolver.host_to_v4(host))?;
        (AF_INET, IpAddr::V4(v4))
    };
    let port = match port_text {
        None => None,
        Some(p) => Some(match string_to_number(p, 0, 65535) {
            Some(n) => n as u16,
            None => resolver.service_to_port(p, proto_name(protocol)?)?,
        }),
    };
    Some(HostPort { af, addr, port })
}

/// `parse_netmask`: a dotted mask or a host name, as a host-order value.
pub fn parse_netmask(buf: &str, resolver: &dyn Resolver) -> Option<u32> {
    inet_aton(buf)
        .or_else(|| resolver.host_to_v4(buf))
        .map(u32::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{parse_services, StaticResolver};

    fn resolver() -> StaticResolver {
        StaticResolver::new(
            parse_services("http 80/tcp www\nhttp 80/udp\ndomain 53/udp\n"),
            vec![("web1".into(), "192.0.2.7".parse().unwrap())],
        )
    }

    #[test]
    fn numbers_follow_strtol_and_atoi() {
        assert_eq!(string_to_number("42", 0, 65535), Some(42));
        assert_eq!(string_to_number(" +7", 0, 9), Some(7));
        assert_eq!(string_to_number("65536", 0, 65535), None);
        assert_eq!(string_to_number("1x", 0, 9), None);
        assert_eq!(string_to_number("", 0, 9), None);
        assert_eq!(string_to_number("-1", 0, 9), None);
        assert_eq!(string_to_number("99999999999999999999999", 0, 9), None);
        assert_eq!(atoi("64abc"), 64);
        assert_eq!(atoi("abc"), 0);
    }

    #[test]
    fn inet_aton_takes_short_octal_and_hex_forms() {
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("10.1.2"), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(
            inet_aton("255.255.255.0"),
            Some(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(inet_aton("64"), Some(Ipv4Addr::new(0, 0, 0, 64)));
        assert_eq!(inet_aton("256.1.1.1"), None);
        assert_eq!(inet_aton("1..2"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("web1"), None);
        assert_eq!(inet_aton("09"), None);
    }

    #[test]
    fn service_addresses_parse_as_ipvsadm_does() {
        let r = resolver();
        let hp = parse_service("10.0.0.1:80", 6, &r).unwrap();
        assert_eq!(
            (hp.af, hp.addr.to_string(), hp.port),
            (AF_INET, "10.0.0.1".into(), Some(80))
        );
        let hp = parse_service("10.0.0.1", 6, &r).unwrap();
        assert_eq!(hp.port, None);
        let hp = parse_service("web1:http", 6, &r).unwrap();
        assert_eq!(
            (hp.addr.to_string(), hp.port),
            ("192.0.2.7".into(), Some(80))
        );
        assert_eq!(parse_service("web1:www", 17, &r), None);
        assert_eq!(parse_service("web1:domain", 17, &r).unwrap().port, Some(53));
        let hp = parse_service("[2001:db8::1]:443", 6, &r).unwrap();
        assert_eq!(
            (hp.af, hp.addr.to_string(), hp.port),
            (AF_INET6, "2001:db8::1".into(), Some(443))
        );
        let hp = parse_service("2001:db8::1", 6, &r).unwrap();
        assert_eq!(hp.port, None);
        assert_eq!(parse_service("[2001:db8::1]", 6, &r), None);
        assert_eq!(parse_service("[2001:db8::1]:", 6, &r), None);
        // A bracketed IPv4 address loses its port, as in ipvsadm.
        let hp = parse_service("[10.0.0.1]:80", 6, &r).unwrap();
        assert_eq!((hp.addr.to_string(), hp.port), ("10.0.0.1".into(), None));
        assert_eq!(parse_service("8080", 6, &r), None);
        assert_eq!(parse_service("", 6, &r), None);
        assert_eq!(parse_service("nosuchhost:80", 6, &r), None);
        assert_eq!(parse_service("10.0.0.1:99999", 6, &r), None);
        // A port name with no protocol known yet does not resolve.
        assert_eq!(parse_service("10.0.0.1:http", 0, &r), None);
        assert_eq!(parse_service("10.0.0.1:", 6, &r), None);
    }
}
