//! Benchmark scenarios shared by `benches/engine.rs` (criterion, ns per
//! packet) and `examples/packet_loop.rs` (callgrind, instructions per
//! packet): a lab director with one TCP service per forwarding method,
//! batches of frames for its established and new-connection paths, and
//! the loop that runs them through [`Engine::process`] the way an I/O
//! backend does (copy each frame into its buffer slot, one `process`
//! call per batch).
#![allow(dead_code)]

use std::net::Ipv4Addr;

use uvs_engine::lab::{self, FRAME_SIZE, HEADROOM, INSIDE, OUTSIDE};
use uvs_engine::route::PortId;
use uvs_engine::time::Millis;
use uvs_engine::wire::{self, build::PacketBuilder};
use uvs_engine::xmit::FrameBuf;
use uvs_engine::{Engine, Packet, Verdict, Worker};

/// Frames per `Engine::process` call.
pub const BATCH: usize = 32;

/// Distinct connections the established-path batches cycle through.
pub const ESTABLISHED_FLOWS: usize = 4096;

/// Connection-table size of the new-connection scenarios; the engine is
/// rebuilt (outside the measurement) before it is half full.
pub const NEW_CONN_TABLE: u32 = 1 << 18;

/// Real servers behind the service.
pub const SERVERS: u8 = 4;

/// The virtual service.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The virtual port.
pub const VPORT: u16 = 80;

/// A forwarding method under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Direct routing.
    Dr,
    /// IP-in-IP tunnel.
    Tun,
    /// NAT (masquerading).
    Nat,
    /// Full NAT.
    FullNat,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 4] = [Method::Dr, Method::Tun, Method::Nat, Method::FullNat];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Dr => "dr",
            Method::Tun => "tun",
            Method::Nat => "nat",
            Method::FullNat => "fullnat",
        }
    }

    /// Whether replies come back through the director.
    pub fn has_replies(self) -> bool {
        matches!(self, Method::Nat | Method::FullNat)
    }

    /// The real servers' port: the service's for DR and tunnels (they
    /// keep the port), another for NAT and full NAT.
    pub fn real_port(self) -> u16 {
        match self {
            Method::Dr | Method::Tun => VPORT,
            Method::Nat | Method::FullNat => 8080,
        }
    }

    fn config_line(self) -> &'static str {
        match self {
            Method::Dr => "dr",
            Method::Tun => "tun",
            Method::Nat => "nat",
            Method::FullNat => "fullnat",
        }
    }
}

/// Which packets of a connection are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Client → real server on an established connection.
    EstablishedIn,
    /// Real server → client on an established connection (NAT, full NAT).
    EstablishedReply,
    /// A SYN creating a new connection (scheduling included).
    New,
}

impl Path {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Path::EstablishedIn => "established_in",
            Path::EstablishedReply => "established_reply",
            Path::New => "new",
        }
    }
}

/// Every (method, path) pair that exists.
pub fn all_scenarios() -> Vec<(Method, Path)> {
    let mut all = Vec::new();
    for method in Method::ALL {
        all.push((method, Path::EstablishedIn));
        if method.has_replies() {
            all.push((method, Path::EstablishedReply));
        }
    }
    for method in Method::ALL {
        all.push((method, Path::New));
    }
    all
}

/// Parse `dr-established_in` style names (as printed by [`scenario_name`]).
pub fn parse_scenario(name: &str) -> Option<(Method, Path)> {
    all_scenarios()
        .into_iter()
        .find(|(m, p)| scenario_name(*m, *p) == name)
}

/// `method-path`.
pub fn scenario_name(method: Method, path: Path) -> String {
    format!("{}-{}", method.name(), path.name())
}

/// The director: one TCP service `VIP:VPORT`, weighted least-connection
/// (ipvsadm's default scheduler), [`SERVERS`] real servers of `method`.
pub fn engine(method: Method, table_size: u32) -> Engine {
    let mut toml = format!(
        "[engine]\nconn_table_size = {table_size}\n\n\
         [fullnat]\naddrs = [{}]\n\n\
         [[service]]\nprotocol = \"tcp\"\naddress = \"{VIP}:{VPORT}\"\nscheduler = \"wlc\"\n",
        (1..=8)
            .map(|n| format!("\"198.51.100.{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for n in 1..=SERVERS {
        toml.push_str(&format!(
            "  [[service.real_server]]\n  address = \"{}:{}\"\n  method = \"{}\"\n",
            lab::real_server4(n),
            method.real_port(),
            method.config_line()
        ));
    }
    let config = uvs_conf::file::parse_config("bench scenario", &toml).expect("valid bench config");
    Engine::new(&config, lab::net_view(SERVERS)).expect("bench engine starts")
}

/// The `n`-th distinct client tuple (address, port).
pub fn client(n: u64) -> (Ipv4Addr, u16) {
    let addr = 0x0a00_0000u32.wrapping_add(u32::try_from(n >> 14).unwrap_or(0));
    let port = 1024 + u16::try_from(n & 0x3fff).unwrap_or(0);
    (Ipv4Addr::from(addr), port)
}

/// A client's TCP frame to the service.
pub fn client_frame(n: u64, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (caddr, cport) = client(n);
    PacketBuilder::new()
        .eth(lab::ROUTER_MAC, lab::DIRECTOR_OUT_MAC)
        .ipv4(caddr, VIP)
        .tcp(cport, VPORT)
        .flags(flags)
        .seq(1)
        .ack_num(1)
        .payload(payload)
        .build()
}

/// The real server's reply to `forwarded` (a frame the director sent it):
/// MACs, addresses and ports swapped.
pub fn reply_to(forwarded: &[u8], flags: u8, payload: &[u8]) -> Vec<u8> {
    let parsed = wire::parse_frame(forwarded).expect("forwarded frame parses");
    let mut src_mac = [0u8; 6];
    let mut dst_mac = [0u8; 6];
    src_mac.copy_from_slice(&forwarded[0..6]);
    dst_mac.copy_from_slice(&forwarded[6..12]);
    PacketBuilder::new()
        .eth(src_mac, dst_mac)
        .ip(parsed.daddr, parsed.saddr)
        .tcp(parsed.dport, parsed.sport)
        .flags(flags)
        .seq(1)
        .ack_num(1)
        .payload(payload)
        .build()
}

/// Payload of a measured data packet (a small HTTP request or response
/// line; frames stay well under the MTU).
pub const DATA: &[u8] = b"GET / HTTP/1.1\r\nHost: uvs\r\n\r\n";

const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

/// Buffer slots for one batch, as an I/O backend's UMEM frames.
#[derive(Debug)]
pub struct Slots {
    bufs: Vec<Vec<u8>>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots {
            bufs: (0..BATCH).map(|_| vec![0u8; FRAME_SIZE]).collect(),
        }
    }
}

/// Run one batch: copy `frames` (exactly [`BATCH`] of them) into the
/// slots and call `process` once. Returns how many were forwarded.
#[inline(never)]
pub fn run_batch(
    engine: &Engine,
    worker: &mut Worker,
    slots: &mut Slots,
    frames: &[Vec<u8>],
    ingress: PortId,
    now: Millis,
) -> usize {
    assert_eq!(frames.len(), BATCH, "a bench batch is full");
    let mut bufs = slots.bufs.iter_mut();
    let mut packets: [Packet<'_>; BATCH] = std::array::from_fn(|i| {
        let buf = bufs.next().expect("one slot per frame");
        let frame = &frames[i];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        Packet {
            frame: FrameBuf::new(buf, HEADROOM, frame.len()).expect("frame fits its slot"),
            ingress,
            verdict: Verdict::Pending,
        }
    });
    engine.process(worker, &mut packets, now);
    packets
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Forward(_)))
        .count()
}

/// Run one frame alone and return the frame it became (setup only).
fn run_single(
    engine: &Engine,
    worker: &mut Worker,
    ingress: PortId,
    frame: &[u8],
    now: Millis,
) -> Vec<u8> {
    let out = lab::run_one(engine, worker, ingress, frame, now);
    assert!(
        matches!(out.verdict, Verdict::Forward(_)),
        "setup frame not forwarded: {:?}",
        out.verdict
    );
    out.frame
}

/// An engine with [`ESTABLISHED_FLOWS`] established connections and the
/// frames of `path` (one per connection) with their ingress port.
pub fn established(method: Method, path: Path) -> (Engine, Vec<Vec<u8>>, PortId) {
    let engine = engine(method, 1 << 16);
    let mut worker = Worker::new();
    let now = Millis(1_000);
    let mut frames = Vec::with_capacity(ESTABLISHED_FLOWS);
    for n in 0..ESTABLISHED_FLOWS as u64 {
        let syn_out = run_single(
            &engine,
            &mut worker,
            OUTSIDE,
            &client_frame(n, SYN, b""),
            now,
        );
        if method.has_replies() {
            run_single(
                &engine,
                &mut worker,
                INSIDE,
                &reply_to(&syn_out, SYN_ACK, b""),
                now,
            );
        }
        let ack_out = run_single(
            &engine,
            &mut worker,
            OUTSIDE,
            &client_frame(n, ACK, b""),
            now,
        );
        frames.push(match path {
            Path::EstablishedIn => client_frame(n, PSH_ACK, DATA),
            Path::EstablishedReply => reply_to(&ack_out, PSH_ACK, DATA),
            Path::New => unreachable!("established() is for established paths"),
        });
    }
    let ingress = match path {
        Path::EstablishedReply => INSIDE,
        _ => OUTSIDE,
    };
    (engine, frames, ingress)
}

/// SYN frames of `count` new clients, from client number `first` on.
pub fn new_conn_frames(first: u64, count: usize) -> Vec<Vec<u8>> {
    (first..first + count as u64)
        .map(|n| client_frame(n, SYN, b""))
        .collect()
}

/// Batches of [`BATCH`] frames per millisecond of the benches' clock:
/// 8,192 packets per ms, about the rate one core runs the engine at, so
/// that work paced by the clock (the expiry sweep visits the whole table
/// once per `SWEEP_PERIOD_MS`) costs each packet what it would in a
/// director forwarding at full speed.
pub const BATCHES_PER_MS: u64 = 256;

/// The clock of batch `i`: time moves 1 ms per [`BATCHES_PER_MS`] batches.
pub fn batch_time(i: u64) -> Millis {
    Millis(1_000 + i / BATCHES_PER_MS)
}
