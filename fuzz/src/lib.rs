//! Shared pieces of the `packet_path` fuzz target and its seed-corpus
//! generator: the director's configuration (a service for every
//! forwarding method and family), the input format (a sequence of
//! frames), the run loop with its well-formedness checks, and valid
//! seed conversations built with [`PacketBuilder`].
//!
//! # Input format
//!
//! An input is a sequence of records, each `ctl: u8`, `len: u16` (big
//! endian) and `len` bytes (fewer if the input ends first):
//!
//! - `ctl` bit 0: ingress port (0 = outside, clients; 1 = inside, real
//!   servers);
//! - `ctl` bit 1: "reply": the bytes are not a frame but the TCP flags
//!   (first byte; for SCTP the chunk type) and payload of a reply to the
//!   last forwarded frame, built by swapping its addresses and ports, so
//!   that NAT and full-NAT replies (whose local port the engine chose)
//!   are reachable;
//! - `ctl` bits 2..8 (`v`): the clock moves `v³` ms before the frame (up
//!   to ~250 s, so timeouts fire within a few records).
//!
//! The engine is built once per process and keeps its connections across
//! inputs; the clock only moves forward.
#![warn(missing_docs)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use uvs_engine::lab::{self, HEADROOM, INSIDE, OUTSIDE};
use uvs_engine::route::PortId;
use uvs_engine::time::Millis;
use uvs_engine::wire::{self, build::PacketBuilder, proto};
use uvs_engine::xmit::FrameBuf;
use uvs_engine::{Engine, Packet, Verdict, Worker};

/// A client behind the outside router (IPv4).
pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// A client behind the outside router (IPv6).
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7);

/// The director's configuration: every forwarding method (DR, tunnel
/// IPIP/GUE/GRE, NAT, full NAT) in IPv4 and IPv6, TCP and UDP, SCTP
/// services (DR, NAT, full NAT, tunnel), one persistent service, one
/// one-packet UDP service, one fwmark service and one `--pe sip` UDP
/// service (a non-contiguous netmask; its datagrams go through the SIP
/// Call-ID parser).
/// Real servers are the lab's (`lab::real_server4/6`). The table is small
/// so that "table full" is reachable too.
pub const CONFIG_TOML: &str = r#"
[engine]
conn_table_size = 4096

[fullnat]
addrs = ["198.51.100.1", "2001:db8:1::1"]
port_range = "20000-20099"

[[service]]
protocol = "tcp"
address = "192.0.2.10:80"
scheduler = "rr"
  [[service.real_server]]
  address = "198.51.100.11"
  [[service.real_server]]
  address = "198.51.100.12"

[[service]]
protocol = "tcp"
address = "192.0.2.11:80"
scheduler = "wlc"
  [[service.real_server]]
  address = "198.51.100.11"
  method = "tun"
  [[service.real_server]]
  address = "198.51.100.12"
  method = "tun"
  tun_type = "gre"
  tun_csum = "csum"

[[service]]
protocol = "udp"
address = "192.0.2.12:53"
scheduler = "sh"
  [[service.real_server]]
  address = "198.51.100.13"
  method = "tun"
  tun_type = "gue"
  tun_port = 6080
  tun_csum = "remcsum"

[[service]]
protocol = "tcp"
address = "[2001:db8::a]:80"
scheduler = "mh"
  [[service.real_server]]
  address = "[2001:db8:1::11]"
  method = "tun"
  tun_type = "gre"
  [[service.real_server]]
  address = "198.51.100.14"
  method = "ipip"

[[service]]
protocol = "tcp"
address = "192.0.2.13:80"
scheduler = "wrr"
  [[service.real_server]]
  address = "198.51.100.11:8080"
  method = "nat"
  weight = 2
  [[service.real_server]]
  address = "198.51.100.12:8080"
  method = "nat"

[[service]]
protocol = "udp"
address = "[2001:db8::b]:53"
scheduler = "lc"
  [[service.real_server]]
  address = "[2001:db8:1::12]:5353"
  method = "nat"

[[service]]
protocol = "tcp"
address = "192.0.2.14:443"
scheduler = "sed"
  [[service.real_server]]
  address = "198.51.100.13:8443"
  method = "fullnat"

[[service]]
protocol = "tcp"
address = "[2001:db8::c]:443"
scheduler = "nq"
  [[service.real_server]]
  address = "[2001:db8:1::13]:8443"
  method = "fullnat"

[[service]]
protocol = "tcp"
address = "192.0.2.15:0"
scheduler = "rr"
persistent = 60
netmask = "255.255.255.0"
  [[service.real_server]]
  address = "198.51.100.11"
  [[service.real_server]]
  address = "198.51.100.12"

[[service]]
protocol = "udp"
address = "192.0.2.17:5060"
scheduler = "rr"
persistent = 60
netmask = "255.0.255.0"
persistence_engine = "sip"
  [[service.real_server]]
  address = "198.51.100.11:5060"
  method = "nat"
  [[service.real_server]]
  address = "198.51.100.12:5060"
  method = "nat"

[[service]]
protocol = "udp"
address = "192.0.2.16:53"
scheduler = "rr"
one_packet = true
  [[service.real_server]]
  address = "198.51.100.11:53"
  method = "nat"
  [[service.real_server]]
  address = "198.51.100.12:53"
  method = "nat"

[[service]]
protocol = "udp"
address = "[2001:db8::d]:123"
scheduler = "dh"
  [[service.real_server]]
  address = "[2001:db8:1::14]"

[[service]]
fwmark = 7
scheduler = "lblc"
  [[service.match]]
  address = "192.0.2.20-192.0.2.29"
  port = "8000-8099"
  [[service.real_server]]
  address = "198.51.100.14:8000"
  method = "nat"
  [[service.real_server]]
  address = "198.51.100.15"

[[service]]
protocol = "sctp"
address = "192.0.2.30:3868"
scheduler = "rr"
  [[service.real_server]]
  address = "198.51.100.11:3869"
  method = "nat"
  [[service.real_server]]
  address = "198.51.100.12"

[[service]]
protocol = "sctp"
address = "[2001:db8::e]:2905"
scheduler = "wlc"
  [[service.real_server]]
  address = "[2001:db8:1::15]:2906"
  method = "fullnat"
  [[service.real_server]]
  address = "[2001:db8:1::16]"
  method = "tun"

[[service]]
protocol = "sctp"
address = "192.0.2.31:2905"
scheduler = "sh"
  [[service.real_server]]
  address = "198.51.100.13:2905"
  method = "fullnat"
"#;

/// Real servers the lab's network knows (MACs for `lab::real_server*(1..=N)`).
pub const LAB_SERVERS: u8 = 8;

/// The director under test.
///
/// # Panics
///
/// If [`CONFIG_TOML`] is invalid (a bug in this file, found at start-up).
pub fn build_engine() -> Engine {
    let config = uvs_conf::file::parse_config("fuzz/src/lib.rs", CONFIG_TOML)
        .expect("the fuzz configuration is valid");
    Engine::new(&config, lab::net_view(LAB_SERVERS)).expect("the fuzz engine starts")
}

/// One record of an input (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Port the frame arrives on.
    pub ingress: PortId,
    /// The bytes are flags and payload of a reply to the last forwarded
    /// frame, not a frame.
    pub reply: bool,
    /// How far the clock moves before this frame.
    pub advance_ms: u64,
    /// The frame (or reply flags and payload).
    pub bytes: &'a [u8],
}

/// Split an input into records.
pub fn records(mut data: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let (&ctl, rest) = data.split_first()?;
        let (len, rest) = match rest {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => (rest.len(), &[][..]),
        };
        let (bytes, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        let v = u64::from(ctl >> 2);
        Some(Record {
            ingress: if ctl & 1 == 0 { OUTSIDE } else { INSIDE },
            reply: ctl & 2 != 0,
            advance_ms: v * v * v,
            bytes,
        })
    })
}

/// Encode records into an input (for seeds). `advance` is the `v` of the
/// module documentation (0..=63).
pub fn encode_record(out: &mut Vec<u8>, ingress: PortId, reply: bool, advance: u8, bytes: &[u8]) {
    let ctl = (advance.min(63) << 2) | u8::from(reply) << 1 | u8::from(ingress == INSIDE);
    out.push(ctl);
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// A reply to `forwarded` (a frame the engine sent out): MACs, addresses
/// and ports swapped, with `spec[0]` as TCP flags and the rest as payload.
/// `None` if `forwarded` is not TCP, UDP or SCTP. For SCTP, `spec[0]` is
/// the chunk type of the reply's one chunk and the rest its value.
pub fn reply_to(forwarded: &[u8], spec: &[u8]) -> Option<Vec<u8>> {
    let parsed = wire::parse_frame(forwarded).ok()?;
    if parsed.icmp_error.is_some() || (parsed.is_fragment && !parsed.is_first_fragment) {
        return None;
    }
    let dst_mac: [u8; 6] = forwarded.get(6..12)?.try_into().ok()?;
    let src_mac: [u8; 6] = forwarded.get(0..6)?.try_into().ok()?;
    let (flags, payload) = spec.split_first().map_or((0x10, &[][..]), |(f, p)| (*f, p));
    let builder = PacketBuilder::new()
        .eth(src_mac, dst_mac)
        .ip(parsed.daddr, parsed.saddr);
    let builder = match parsed.protocol {
        proto::TCP => builder.tcp(parsed.dport, parsed.sport).flags(flags),
        proto::UDP => builder.udp(parsed.dport, parsed.sport),
        proto::SCTP => {
            let chunk = wire::sctp::chunk_bytes(flags, 0, payload);
            return Some(
                builder
                    .sctp(parsed.dport, parsed.sport, 1)
                    .payload(&chunk)
                    .build(),
            );
        }
        _ => return None,
    };
    Some(builder.payload(payload).build())
}

/// Frames run through the engine by this process (all inputs).
pub static FRAMES: AtomicU64 = AtomicU64::new(0);

/// The engine's clock: starts at 1000 s and only moves forward.
pub static CLOCK_MS: AtomicU64 = AtomicU64::new(1_000_000);

/// Run one fuzz input through `engine`, checking every outcome:
///
/// - the verdict is decided (never `Pending`);
/// - `Pass` leaves the frame untouched;
/// - `Forward` goes out of a port the lab has, and its frame parses again
///   with `wire::parse_frame`; if etherparse accepted the input, it
///   accepts the output, and if the input's IPv4 header checksum was
///   right, so is the output's (outer and, for IP-in-IP, inner), and if
///   its SCTP CRC32c was right, so is the output's.
///
/// # Panics
///
/// On any violated check (that is the fuzzer's finding).
pub fn run_input(engine: &Engine, worker: &mut Worker, data: &[u8]) {
    let mut last_forwarded: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; HEADROOM + 65_536 + 64];
    for record in records(data) {
        let now =
            Millis(CLOCK_MS.fetch_add(record.advance_ms, Ordering::Relaxed) + record.advance_ms);
        let reply;
        let (frame, ingress): (&[u8], PortId) = if record.reply {
            match reply_to(&last_forwarded, record.bytes) {
                Some(frame) => {
                    reply = frame;
                    (&reply, record.ingress)
                }
                None => continue,
            }
        } else {
            (record.bytes, record.ingress)
        };
        let Some(slot) = buf.get_mut(HEADROOM..HEADROOM + frame.len()) else {
            continue;
        };
        slot.copy_from_slice(frame);
        let Some(frame_buf) = FrameBuf::new(&mut buf, HEADROOM, frame.len()) else {
            continue;
        };
        let mut batch = [Packet {
            frame: frame_buf,
            ingress,
            verdict: Verdict::Pending,
        }];
        engine.process(worker, &mut batch, now);
        FRAMES.fetch_add(1, Ordering::Relaxed);
        let [packet] = batch;
        let out = packet.frame.frame();
        match packet.verdict {
            Verdict::Pending => panic!("frame left undecided"),
            Verdict::Pass => assert_eq!(out, frame, "a passed frame was modified"),
            Verdict::Drop(_) => {}
            Verdict::Forward(port) => {
                assert!(
                    port == OUTSIDE || port == INSIDE,
                    "forwarded to unknown port {port:?}"
                );
                check_forwarded(frame, out);
                last_forwarded.clear();
                last_forwarded.extend_from_slice(out);
            }
        }
    }
}

/// The checks on a forwarded frame `out` made from input `input`.
fn check_forwarded(input: &[u8], out: &[u8]) {
    if let Err(e) = wire::parse_frame(out) {
        panic!("forwarded frame does not parse: {e:?}\n in: {input:02x?}\nout: {out:02x?}");
    }
    let input_ok = etherparse::SlicedPacket::from_ethernet(input).is_ok();
    let input_csum_ok = ipv4_checksums_ok(input).unwrap_or(true);
    match etherparse::SlicedPacket::from_ethernet(out) {
        Ok(_) => {}
        Err(e) if input_ok => {
            panic!(
                "etherparse rejects the forwarded frame: {e:?}\n in: {input:02x?}\nout: {out:02x?}"
            )
        }
        Err(_) => {}
    }
    if sctp_crc_ok(input) == Some(true) {
        assert_ne!(
            sctp_crc_ok(out),
            Some(false),
            "SCTP CRC32c wrong after forwarding\n in: {input:02x?}\nout: {out:02x?}"
        );
    }
    if input_csum_ok && input_ok {
        if let Some(ok) = ipv4_checksums_ok(out) {
            assert!(
                ok,
                "IPv4 header checksum wrong after forwarding\n in: {input:02x?}\nout: {out:02x?}"
            );
        }
    }
}

/// Whether every IPv4 header of `frame` (outer, and the inner one of an
/// IP-in-IP packet) has a correct checksum; `None` if there is none or
/// etherparse cannot read the frame.
pub fn ipv4_checksums_ok(frame: &[u8]) -> Option<bool> {
    let sliced = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else {
        return None;
    };
    let header = ip.header();
    let mut ok = header.to_header().calc_header_checksum() == header.header_checksum();
    if header.protocol() == etherparse::IpNumber::IPV4 {
        if let Ok(inner) = etherparse::Ipv4HeaderSlice::from_slice(ip.payload().payload) {
            ok &= inner.to_header().calc_header_checksum() == inner.header_checksum();
        }
    }
    Some(ok)
}

/// Whether the CRC32c of an unfragmented SCTP frame is right; `None` if
/// the frame is no such frame.
pub fn sctp_crc_ok(frame: &[u8]) -> Option<bool> {
    let parsed = wire::parse_frame(frame).ok()?;
    if parsed.protocol != proto::SCTP || parsed.is_fragment || parsed.icmp_error.is_some() {
        return None;
    }
    let segment = frame.get(usize::from(parsed.l4)..parsed.ip_end())?;
    Some(wire::sctp::Packet::new_checked(segment).ok()?.verify_checksum())
}

/// Where a conversation's packets go.
#[derive(Debug, Clone, Copy)]
struct Target {
    name: &'static str,
    vip: IpAddr,
    port: u16,
    tcp: bool,
}

fn targets() -> Vec<Target> {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let v6 = |last| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
    vec![
        Target {
            name: "dr4_tcp",
            vip: v4(192, 0, 2, 10),
            port: 80,
            tcp: true,
        },
        Target {
            name: "tun4_tcp",
            vip: v4(192, 0, 2, 11),
            port: 80,
            tcp: true,
        },
        Target {
            name: "gue4_udp",
            vip: v4(192, 0, 2, 12),
            port: 53,
            tcp: false,
        },
        Target {
            name: "tun6_tcp",
            vip: v6(0xa),
            port: 80,
            tcp: true,
        },
        Target {
            name: "nat4_tcp",
            vip: v4(192, 0, 2, 13),
            port: 80,
            tcp: true,
        },
        Target {
            name: "nat6_udp",
            vip: v6(0xb),
            port: 53,
            tcp: false,
        },
        Target {
            name: "fullnat4_tcp",
            vip: v4(192, 0, 2, 14),
            port: 443,
            tcp: true,
        },
        Target {
            name: "fullnat6_tcp",
            vip: v6(0xc),
            port: 443,
            tcp: true,
        },
        Target {
            name: "persist4_tcp",
            vip: v4(192, 0, 2, 15),
            port: 22,
            tcp: true,
        },
        Target {
            name: "sip4_udp",
            vip: v4(192, 0, 2, 17),
            port: 5060,
            tcp: false,
        },
        Target {
            name: "onepacket4_udp",
            vip: v4(192, 0, 2, 16),
            port: 53,
            tcp: false,
        },
        Target {
            name: "dr6_udp",
            vip: v6(0xd),
            port: 123,
            tcp: false,
        },
        Target {
            name: "fwmark4_tcp",
            vip: v4(192, 0, 2, 23),
            port: 8042,
            tcp: true,
        },
        Target {
            name: "fwmark4_udp",
            vip: v4(192, 0, 2, 27),
            port: 8001,
            tcp: false,
        },
    ]
}

/// A client frame to `target` from client port `cport`.
fn client_frame(target: &Target, cport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let client = match target.vip {
        IpAddr::V4(_) => IpAddr::V4(CLIENT4),
        IpAddr::V6(_) => IpAddr::V6(CLIENT6),
    };
    let builder = PacketBuilder::new()
        .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
        .ip(client, target.vip);
    let builder = if target.tcp {
        builder.tcp(cport, target.port).flags(flags).seq(1000)
    } else {
        builder.udp(cport, target.port)
    };
    builder.payload(payload).build()
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const SYN_ACK: u8 = 0x12;
const FIN_ACK: u8 = 0x11;
const RST: u8 = 0x04;

/// Valid seed inputs: for each service a conversation (SYN, reply,
/// ACK, data, reply data, FIN, with the clock moving), plus a few
/// mixed ones (ICMP errors quoting a connection, a frame for no
/// service, a timeout then a late packet).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (i, target) in targets().iter().enumerate() {
        let cport = 40_000 + u16::try_from(i).unwrap_or(0) * 10;
        let mut input = Vec::new();
        if target.tcp {
            encode_record(
                &mut input,
                OUTSIDE,
                false,
                1,
                &client_frame(target, cport, SYN, b""),
            );
            encode_record(&mut input, INSIDE, true, 1, &[SYN_ACK]);
            encode_record(
                &mut input,
                OUTSIDE,
                false,
                1,
                &client_frame(target, cport, ACK, b""),
            );
            encode_record(
                &mut input,
                OUTSIDE,
                false,
                2,
                &client_frame(target, cport, PSH_ACK, b"GET / HTTP/1.0\r\n\r\n"),
            );
            encode_record(&mut input, INSIDE, true, 2, &[PSH_ACK, b'o', b'k']);
            encode_record(
                &mut input,
                OUTSIDE,
                false,
                3,
                &client_frame(target, cport, FIN_ACK, b""),
            );
            encode_record(&mut input, INSIDE, true, 1, &[FIN_ACK]);
            encode_record(
                &mut input,
                OUTSIDE,
                false,
                1,
                &client_frame(target, cport, ACK, b""),
            );
        } else {
            encode_record(
                &mut input,
                OUTSIDE,
                false,
                1,
                &client_frame(target, cport, 0, b"query"),
            );
            encode_record(&mut input, INSIDE, true, 1, &[0, b'a', b'n', b's']);
            encode_record(
                &mut input,
                OUTSIDE,
                false,
                5,
                &client_frame(target, cport, 0, b"again"),
            );
        }
        seeds.push((format!("conv_{}", target.name), input.clone()));

        // The same conversation then a long silence and a late packet.
        let mut late = input;
        encode_record(
            &mut late,
            OUTSIDE,
            false,
            63,
            &client_frame(target, cport, ACK, b"late"),
        );
        encode_record(
            &mut late,
            OUTSIDE,
            false,
            63,
            &client_frame(target, cport, RST, b""),
        );
        seeds.push((format!("late_{}", target.name), late));

        // An ICMP error from a router about the client's packet (frag
        // needed), quoting the forwarded SYN as the real server saw it.
        let syn = client_frame(target, cport + 1, SYN, b"");
        let mut icmp = Vec::new();
        encode_record(&mut icmp, OUTSIDE, false, 1, &syn);
        if let Some(quote) = syn.get(14..) {
            let error = match target.vip {
                IpAddr::V4(_) => PacketBuilder::new()
                    .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
                    .ipv4(lab::ROUTER4, CLIENT4)
                    .icmp(3, 4, 1400)
                    .payload(quote)
                    .build(),
                IpAddr::V6(_) => PacketBuilder::new()
                    .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
                    .ipv6(lab::ROUTER6, CLIENT6)
                    .icmp(2, 0, 1280)
                    .payload(quote)
                    .build(),
            };
            encode_record(&mut icmp, OUTSIDE, false, 1, &error);
        }
        seeds.push((format!("icmp_{}", target.name), icmp));
    }
    // Several services interleaved in one input.
    let mut mixed = Vec::new();
    for (i, target) in targets().iter().enumerate() {
        let cport = 50_000 + u16::try_from(i).unwrap_or(0);
        let flags = if target.tcp { SYN } else { 0 };
        encode_record(
            &mut mixed,
            OUTSIDE,
            false,
            0,
            &client_frame(target, cport, flags, b"x"),
        );
    }
    seeds.push(("mixed".into(), mixed));
    // SIP calls to the `--pe sip` service: Call-IDs in their forms (full
    // and compact name, folded, with a host, missing), from new client
    // ports so that each takes the template path.
    if let Some(sip) = targets().iter().find(|t| t.name == "sip4_udp") {
        let mut calls = Vec::new();
        let headers: [&[u8]; 5] = [
            b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n",
            b"i: a84b4c76e66710@pc33.atlanta.example.com\r\n",
            b"call-id :\r\n  xk3\r\n",
            b"Call-ID: a84b4c76e66710\n",
            b"CSeq: 1 INVITE\r\n",
        ];
        for (i, header) in headers.iter().enumerate() {
            let mut msg =
                b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33\r\n".to_vec();
            msg.extend_from_slice(header);
            msg.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            let cport = 51_000 + u16::try_from(i).unwrap_or(0);
            encode_record(
                &mut calls,
                OUTSIDE,
                false,
                1,
                &client_frame(sip, cport, 0, &msg),
            );
            encode_record(&mut calls, INSIDE, true, 1, &[0, b'o', b'k']);
        }
        seeds.push(("sip_calls".into(), calls));
    }
    // Not ours: to no service, and an ARP-less non-IP frame.
    let mut other = Vec::new();
    let nobody = Target {
        name: "none",
        vip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99)),
        port: 80,
        tcp: true,
    };
    encode_record(
        &mut other,
        OUTSIDE,
        false,
        0,
        &client_frame(&nobody, 1234, SYN, b""),
    );
    let mut raw = client_frame(&nobody, 1234, SYN, b"");
    if let Some(ethertype) = raw.get_mut(12..14) {
        ethertype.copy_from_slice(&[0x88, 0xcc]);
    }
    encode_record(&mut other, OUTSIDE, false, 0, &raw);
    seeds.push(("not_ours".into(), other));
    seeds.extend(sctp_seeds());
    seeds
}

/// An SCTP packet from the client to `vip:port` with one chunk.
fn sctp_client_frame(vip: IpAddr, port: u16, cport: u16, chunk_type: u8, value: &[u8]) -> Vec<u8> {
    let client = match vip {
        IpAddr::V4(_) => IpAddr::V4(CLIENT4),
        IpAddr::V6(_) => IpAddr::V6(CLIENT6),
    };
    let vtag = if chunk_type == wire::sctp::chunk::INIT { 0 } else { 7 };
    PacketBuilder::new()
        .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
        .ip(client, vip)
        .sctp(cport, port, vtag)
        .payload(&wire::sctp::chunk_bytes(chunk_type, 0, value))
        .build()
}

/// Seeds for the SCTP services: a whole association (INIT, INIT ACK,
/// COOKIE ECHO, COOKIE ACK, DATA both ways, SHUTDOWN, SHUTDOWN ACK,
/// SHUTDOWN COMPLETE), an INIT answered by ABORT, and DATA for no
/// association.
fn sctp_seeds() -> Vec<(String, Vec<u8>)> {
    use wire::sctp::chunk;
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let v6 = |last| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
    let services = [
        ("nat4_sctp", v4(192, 0, 2, 30), 3868),
        ("fullnat6_sctp", v6(0xe), 2905),
        ("fullnat4_sctp", v4(192, 0, 2, 31), 2905),
    ];
    let init = [0u8; 16];
    let mut seeds = Vec::new();
    for (i, (name, vip, port)) in services.into_iter().enumerate() {
        let cport = 45_000 + u16::try_from(i).unwrap_or(0) * 10;
        let frame = |t: u8, value: &[u8]| sctp_client_frame(vip, port, cport, t, value);
        let mut conv = Vec::new();
        encode_record(&mut conv, OUTSIDE, false, 1, &frame(chunk::INIT, &init));
        encode_record(&mut conv, INSIDE, true, 1, &[chunk::INIT_ACK, 1, 2, 3, 4]);
        encode_record(&mut conv, OUTSIDE, false, 1, &frame(chunk::COOKIE_ECHO, b"cookie"));
        encode_record(&mut conv, INSIDE, true, 1, &[chunk::COOKIE_ACK]);
        encode_record(&mut conv, OUTSIDE, false, 2, &frame(chunk::DATA, b"hello"));
        encode_record(&mut conv, INSIDE, true, 2, &[chunk::DATA, b'o', b'k']);
        encode_record(&mut conv, OUTSIDE, false, 3, &frame(chunk::SHUTDOWN, &[0; 4]));
        encode_record(&mut conv, INSIDE, true, 1, &[chunk::SHUTDOWN_ACK]);
        encode_record(&mut conv, OUTSIDE, false, 1, &frame(chunk::SHUTDOWN_COMPLETE, b""));
        seeds.push((format!("conv_{name}"), conv));
        let mut abort = Vec::new();
        encode_record(&mut abort, OUTSIDE, false, 1, &frame(chunk::INIT, &init));
        encode_record(&mut abort, INSIDE, true, 1, &[chunk::ABORT]);
        encode_record(&mut abort, OUTSIDE, false, 1, &frame(chunk::INIT, &init));
        seeds.push((format!("abort_{name}"), abort));
        let mut stray = Vec::new();
        encode_record(&mut stray, OUTSIDE, false, 1, &frame(chunk::DATA, b"stray"));
        encode_record(&mut stray, OUTSIDE, false, 1, &frame(chunk::ABORT, b""));
        seeds.push((format!("stray_{name}"), stray));
    }
    seeds
}
