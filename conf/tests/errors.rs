//! Bad config files: each is reported at the offending value's
//! line:column with a message a user understands without the code.

use uvs_conf::{parse_config, Problem};

/// A TCP service on 192.168.1.100:80 opening at line 1; real servers
/// appended after it start at line 4.
const WEB: &str = "[[service]]\nprotocol = \"tcp\"\naddress = \"192.168.1.100:80\"\n";

struct Case {
    what: &'static str,
    text: String,
    line: usize,
    column: usize,
    message: &'static str,
}

fn case(
    what: &'static str,
    text: impl Into<String>,
    at: (usize, usize),
    message: &'static str,
) -> Case {
    Case {
        what,
        text: text.into(),
        line: at.0,
        column: at.1,
        message,
    }
}

/// A real server line pair for [`WEB`], at lines 4-5 when appended first.
const RS2: &str = "  [[service.real_server]]\n  address = \"10.0.0.2\"\n";

fn web(rest: &str) -> String {
    format!("{WEB}{rest}")
}

fn cases() -> Vec<Case> {
    vec![
        // TOML itself
        case("syntax error", "[engine\n", (1, 8), "unclosed table, expected `]`"),
        case("unknown top-level key", "colour = 1\n", (1, 1), "unknown key `colour`, expected one of `engine`, `timeouts`, `fullnat`, `service`"),
        case("unknown service key", web("bogus = 1\n"), (4, 1), "unknown key `bogus`, expected one of `protocol`, `address`, `fwmark`, `family`, `scheduler`, `flags`, `persistent`, `netmask`, `persistence_engine`, `one_packet`, `match`, `real_server`"),
        case(
            "misspelt real server key",
            web(&format!("{RS2}  wieght = 2\n")),
            (6, 3),
            "unknown key `wieght`, expected one of `address`, `method`, `tun_type`, `tun_port`, `tun_csum`, `weight`, `u_threshold`, `l_threshold`",
        ),
        case("wrong type", "[engine]\nconn_table_size = \"big\"\n", (2, 19), "invalid type: string \"big\", expected an integer"),
        case("real server without address", web("  [[service.real_server]]\n  weight = 2\n"), (4, 3), "missing key `address`"),
        // [engine]
        case("conn_table_size 0", "[engine]\nconn_table_size = 0\n", (2, 19), "conn_table_size must be at least 1 (it is the most connections the table holds)"),
        case("conn_table_size negative", "[engine]\nconn_table_size = -1\n", (2, 19), "conn_table_size must be 1 to 4294967295, not -1"),
        case("conn_tab_bits too big", "[engine]\nconn_tab_bits = 30\n", (2, 17), "conn_tab_bits 30 is out of range: IPVS allows 8 to 20 (a table of 2^bits rows)"),
        case("duplicate interface", "[engine]\ninterfaces = [\"eth0\", \"eth0\"]\n", (2, 23), "interface `eth0' is listed twice"),
        case("interface name too long", "[engine]\ninterfaces = [\"a-very-long-interface\"]\n", (2, 15), "invalid interface name `a-very-long-interface': 1 to 15 characters, no '/', ':' or white space"),
        case("tunnel_source_v4 of IPv6", "[engine]\ntunnel_source_v4 = \"fd00::1\"\n", (2, 20), "tunnel source fd00::1 is not an IPv4 address"),
        case("tunnel source host name", "[engine]\ntunnel_source_v4 = \"router\"\n", (2, 20), "tunnel_source_v4: `router` is not an IP address (host names are not looked up)"),
        case("conn_reuse_mode 7", "[engine]\nconn_reuse_mode = 7\n", (2, 19), "conn_reuse_mode 7 is out of range: use 0 to 3 (bit 1: reschedule reused TIME_WAIT/CLOSE connections, bit 2: also FIN_WAIT ones)"),
        // [timeouts]
        case("timeout too long", "[timeouts]\ntcp = 2678401\n", (2, 7), "invalid timeout value `2678401' specified: the tcp timeout is 1 to 2678400 seconds"),
        // [fullnat]
        case("reversed port range", "[fullnat]\nport_range = \"2000-1000\"\n", (2, 14), "full-NAT port range 2000-1000 is invalid: ports are 1 to 65535, first <= last"),
        case("port range not a range", "[fullnat]\nport_range = \"lots\"\n", (2, 14), "port_range `lots` is not a port range: write it as \"1024-65535\""),
        case("duplicate pool address", "[fullnat]\naddrs = [\"10.0.0.9\", \"10.0.0.9\"]\n", (2, 22), "full-NAT local address 10.0.0.9 is listed twice"),
        // service keys
        case("service without protocol", "[[service]]\naddress = \"10.1.1.1:80\"\n", (1, 1), "missing key `protocol` (\"tcp\", \"udp\" or \"sctp\") for this service"),
        case("service without address", "[[service]]\nscheduler = \"rr\"\n", (1, 1), "a service needs `protocol` and `address`, or `fwmark`"),
        case("fwmark and address", "[[service]]\nfwmark = 1\naddress = \"10.1.1.1:80\"\n", (3, 11), "a service has either `fwmark` or `address`, not both"),
        case("fwmark with protocol", "[[service]]\nfwmark = 1\nprotocol = \"tcp\"\n  [[service.match]]\n  address = \"10.1.1.1\"\n", (3, 12), "a fwmark service has no `protocol`: give one to its [[service.match]] ranges instead"),
        case("family on an address service", web("family = \"ipv6\"\n"), (4, 10), "`family` is only for fwmark services; this service's family is its address's"),
        case("unknown protocol", "[[service]]\nprotocol = \"dccp\"\naddress = \"10.1.1.1:80\"\n", (2, 12), "unknown protocol `dccp`: use \"tcp\", \"udp\" or \"sctp\""),
        case("port name", "[[service]]\nprotocol = \"tcp\"\naddress = \"10.1.1.1:http\"\n", (3, 11), "illegal virtual server address[:port] specified: port `http` is not a number 0 to 65535 (service names are not looked up)"),
        case("host name", "[[service]]\nprotocol = \"tcp\"\naddress = \"www.example.com:80\"\n", (3, 11), "illegal virtual server address[:port] specified: `www.example.com` is not an IP address (host names are not looked up)"),
        case("unclosed IPv6 bracket", "[[service]]\nprotocol = \"tcp\"\naddress = \"[2001:db8::1:80\"\n", (3, 11), "illegal virtual server address[:port] specified: `[2001:db8::1:80` lacks the closing `]`"),
        case("multicast VIP", "[[service]]\nprotocol = \"udp\"\naddress = \"224.0.0.1:53\"\n", (3, 11), "virtual address 224.0.0.1 is not a unicast address"),
        case("zero port without persistence", "[[service]]\nprotocol = \"tcp\"\naddress = \"10.1.1.1\"\n", (3, 11), "Zero port specified for non-persistent service"),
        case("one-packet on TCP", web("one_packet = true\n"), (4, 14), "One-Packet Scheduling is only for UDP virtual services"),
        case("unknown persistence engine", web("persistent = true\npersistence_engine = \"rtsp\"\n"), (5, 22), "unknown persistence engine `rtsp`: uvs has sip"),
        case("unknown scheduler", web("scheduler = \"fastest\"\n"), (4, 13), "unknown scheduler `fastest`: use one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos"),
        case("invalid scheduler flag", web("flags = [\"sh-port\", \"turbo\"]\nscheduler = \"sh\"\n"), (4, 21), "invalid scheduler flag `turbo': use flag-1, flag-2, flag-3, sh-fallback, sh-port, mh-fallback or mh-port"),
        case("incompatible scheduler flag", web("flags = [\"sh-port\"]\n"), (4, 10), "incompatible scheduler flag `sh-port': it needs scheduler = \"sh\", this service uses \"wlc\""),
        case("mh flag with sh", web("scheduler = \"sh\"\nflags = [\"mh-fallback\"]\n"), (5, 10), "incompatible scheduler flag `mh-fallback': it needs scheduler = \"mh\", this service uses \"sh\""),
        case(
            "unknown scheduler with a flag",
            web("scheduler = \"maglev\"\nflags = [\"mh-port\"]\n"),
            (4, 13),
            "unknown scheduler `maglev`: use one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos",
        ),
        // persistence
        case("persistent 0", web("persistent = 0\n"), (4, 14), "invalid timeout value `0' specified: persistence lasts 1 to 2678400 seconds"),
        case("persistent too long", web("persistent = 2678401\n"), (4, 14), "invalid timeout value `2678401' specified: persistence lasts 1 to 2678400 seconds"),
        case("persistent a string", web("persistent = \"yes\"\n"), (4, 14), "persistent must be a number of seconds (1 to 2678400), true (360 s) or false"),
        case("netmask without persistence", web("netmask = 24\n"), (4, 11), "netmask sets the granularity of persistence and needs `persistent`"),
        case("netmask not an address", web("persistent = true\nnetmask = \"255.0.255\"\n"), (5, 11), "illegal virtual server persistent mask specified: `255.0.255` is not a netmask like \"255.255.255.0\""),
        case("IPv4 prefix 33", web("persistent = true\nnetmask = 33\n"), (5, 11), "netmask must be a prefix length 0 to 32, not 33"),
        case("IPv4 netmask a list", web("persistent = true\nnetmask = [24]\n"), (5, 11), "netmask must be a dotted mask like \"255.255.255.0\" or a prefix length 0 to 32"),
        case("IPv6 prefix 0", "[[service]]\nprotocol = \"tcp\"\naddress = \"[2001:db8::1]:80\"\npersistent = true\nnetmask = 0\n", (5, 11), "illegal ipv6 netmask specified: an IPv6 prefix length is 1 to 128, not 0"),
        case("IPv6 dotted netmask", "[[service]]\nprotocol = \"tcp\"\naddress = \"[2001:db8::1]:80\"\npersistent = true\nnetmask = \"255.255.0.0\"\n", (5, 11), "illegal ipv6 netmask specified: an IPv6 service's netmask is a prefix length 1 to 128, like 64"),
        // duplicates
        case("duplicate service", format!("{WEB}{WEB}"), (6, 11), "Service already exists: the same service is defined at line 3"),
        case("duplicate real server", web(&format!("{RS2}{RS2}")), (7, 13), "Destination already exists: the same real server is defined at line 5"),
        // real servers
        case("mixed family without tunnel", web("  [[service.real_server]]\n  address = \"[2001:db8::2]\"\n"), (5, 13), "Different address family is allowed only for tunneling servers"),
        case("DR real server on another port", web("  [[service.real_server]]\n  address = \"10.0.0.2:8080\"\n"), (5, 13), "real server port 8080 differs from the service port 80: direct routing and tunnelling do not rewrite the port, so the real server must use port 80"),
        case("negative weight", web(&format!("{RS2}  weight = -1\n")), (6, 12), "weight must be 0 to 65535, not -1"),
        case("weight above 65535", web(&format!("{RS2}  weight = 65536\n")), (6, 12), "illegal weight specified: 65536 is above 65535"),
        case("lower threshold above upper", web(&format!("{RS2}  u_threshold = 10\n  l_threshold = 20\n")), (7, 17), "lower threshold (20) is higher than upper threshold (10)"),
        case("lower threshold without upper", web(&format!("{RS2}  l_threshold = 20\n")), (6, 17), "lower threshold (20) is higher than upper threshold (0)"),
        case("unknown method", web(&format!("{RS2}  method = \"teleport\"\n")), (6, 12), "unknown forwarding method `teleport`: use dr, tun, nat or fullnat"),
        case("tunnel option on NAT", web(&format!("{RS2}  method = \"nat\"\n  tun_type = \"gue\"\n")), (7, 14), "Tunnel options conflict with forward method: tun_type, tun_port and tun_csum need method = \"tun\""),
        case("gue without port", web(&format!("{RS2}  method = \"tun\"\n  tun_type = \"gue\"\n")), (7, 14), "You need to supply the 'tun-port' option for the 'gue' tunnel type: add tun_port, e.g. tun_port = 6080"),
        case("gue port 0", web(&format!("{RS2}  method = \"tun\"\n  tun_type = \"gue\"\n  tun_port = 0\n")), (8, 14), "illegal tunnel port specified: tun_port must be 1 to 65535, not 0"),
        case("port with ipip", web(&format!("{RS2}  method = \"tun\"\n  tun_port = 6080\n")), (7, 14), "Illegal 'tun-port' option with the 'ipip' tunnel type: only gue has a port"),
        case("checksum option with ipip", web(&format!("{RS2}  method = \"tun\"\n  tun_csum = \"csum\"\n")), (7, 14), "Illegal 'tun-csum' option with the 'ipip' tunnel type: ipip has no checksum option"),
        case("remcsum with gre", web(&format!("{RS2}  method = \"tun\"\n  tun_type = \"gre\"\n  tun_csum = \"remcsum\"\n")), (8, 14), "Illegal 'tun-remcsum' option with the 'gre' tunnel type"),
        case("unknown tunnel type", web(&format!("{RS2}  method = \"tun\"\n  tun_type = \"vxlan\"\n")), (7, 14), "illegal tunnel type specified: `vxlan` (use ipip, gue or gre)"),
        case("full NAT without pool", web(&format!("{RS2}  method = \"fullnat\"\n")), (6, 12), "full-NAT real server 10.0.0.2 needs an IPv4 local address in the full-NAT pool, and the pool has none"),
        case("full NAT without pool address of its family", format!("[fullnat]\naddrs = [\"fd00::250\"]\n{WEB}{RS2}  method = \"fullnat\"\n"), (8, 12), "full-NAT real server 10.0.0.2 needs an IPv4 local address in the full-NAT pool, and the pool has none"),
        case("real server 0.0.0.0", web("  [[service.real_server]]\n  address = \"0.0.0.0\"\n"), (5, 13), "real server address 0.0.0.0 is not a unicast address"),
        // fwmark services
        case("fwmark 0", "[[service]]\nfwmark = 0\n  [[service.match]]\n  address = \"10.1.1.1\"\n", (2, 10), "invalid fwmark value `0' specified: marks are 1 to 4294967295"),
        case("fwmark without match", "[[service]]\nfwmark = 3\n", (2, 10), "fwmark service 3 has no match range, so no packet would ever reach it: give the addresses and ports that carry its mark"),
        case("unknown family", "[[service]]\nfwmark = 3\nfamily = \"ipx\"\n", (3, 10), "unknown family `ipx`: use \"ipv4\" or \"ipv6\""),
        case("match of the wrong family", "[[service]]\nfwmark = 3\nfamily = \"ipv6\"\n  [[service.match]]\n  address = \"10.1.1.1\"\n", (5, 13), "match address 10.1.1.1 is not IPv6 like its fwmark service"),
        case("reversed match addresses", "[[service]]\nfwmark = 3\n  [[service.match]]\n  address = \"10.1.1.9-10.1.1.1\"\n", (4, 13), "match address range 10.1.1.9-10.1.1.1 is empty: the first address must not be above the last"),
        case("reversed match ports", "[[service]]\nfwmark = 3\n  [[service.match]]\n  address = \"10.1.1.1\"\n  port = \"90-80\"\n", (5, 10), "match port range 90-80 is empty: the first port must not be above the last"),
        case("match port out of range", "[[service]]\nfwmark = 3\n  [[service.match]]\n  address = \"10.1.1.1\"\n  port = 70000\n", (5, 10), "match port must be a port 0 to 65535 or a range like \"8000-8099\""),
        case("CIDR with host bits", "[[service]]\nfwmark = 3\n  [[service.match]]\n  address = \"10.1.1.1/24\"\n", (4, 13), "match address: `10.1.1.1/24` has host bits set; the network is 10.1.1.0/24"),
        case("match on an address service", web("  [[service.match]]\n  address = \"10.1.1.1\"\n"), (4, 3), "only fwmark services take match ranges; this service is identified by its address and port"),
        case("overlapping marks", "[[service]]\nfwmark = 1\n  [[service.match]]\n  address = \"10.1.1.0/24\"\n[[service]]\nfwmark = 2\n  [[service.match]]\n  address = \"10.1.1.7\"\n  port = 80\n", (7, 3), "match range overlaps one of fwmark service 1: a packet in both would carry two marks"),
    ]
}

#[test]
fn each_bad_input_is_reported_where_it_is_wrong() {
    let mut failures = Vec::new();
    for case in cases() {
        let problems: Vec<Problem> = match parse_config("bad.toml", &case.text) {
            Ok(config) => {
                failures.push(format!("{}: accepted as {config:?}", case.what));
                continue;
            }
            Err(error) => error.problems().to_vec(),
        };
        let expected = Problem {
            line: case.line,
            column: case.column,
            message: case.message.to_string(),
        };
        if problems != [expected.clone()] {
            failures.push(format!(
                "{}:\n  expected {:?}\n  got      {:?}",
                case.what, expected, problems
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
