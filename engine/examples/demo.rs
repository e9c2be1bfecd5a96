//! `make demo`: the seed's DR walkthrough on an in-memory lab.
//!
//! A director with a virtual service (`ipvsadm -A -t VIP:80 -s rr`) and two
//! real servers (`-a ... -g -w 1`) takes client connections; each real
//! server "answers" only frames addressed to its own MAC and carrying the
//! VIP, exactly as a DR real server with the VIP on `lo` would. The demo
//! prints which real server answered each request, then the table as
//! `ipvsadm -Ln` shows it.
//!
//! Frames live in memory only; the namespace lab with nginx comes with the
//! `uvsd` daemon.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use uvs_engine::lab::{self, DIRECTOR_OUT_MAC, INSIDE, OUTSIDE, ROUTER_MAC};
use uvs_engine::time::Millis;
use uvs_engine::wire::{self, build::PacketBuilder};
use uvs_engine::{Engine, Verdict, Worker};

const CONFIG: &str = r#"
# ipvsadm -A -t 192.0.2.100:80 -s rr
# ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.11 -g -w 1
# ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.12 -g -w 1
[[service]]
protocol = "tcp"
address = "192.0.2.100:80"
scheduler = "rr"

  [[service.real_server]]
  address = "198.51.100.11"
  method = "dr"

  [[service.real_server]]
  address = "198.51.100.12"
  method = "dr"
"#;

const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
const TCP_FIN: u8 = 0x01;

fn main() -> ExitCode {
    let config = match uvs_conf::parse_config("demo.toml", CONFIG) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let engine = match Engine::new(&config, lab::net_view(2)) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let vip = Ipv4Addr::new(192, 0, 2, 100);
    let mut worker = Worker::new();
    println!("uvs demo: LVS/DR on an in-memory lab (VIP {vip}:80, scheduler rr)");
    println!();
    let mut answered = [0u32; 3];
    let mut now = Millis(1_000);
    for request in 0..6u16 {
        let client = Ipv4Addr::new(203, 0, 113, 10 + (request % 3) as u8);
        let cport = 40_000 + request;
        let mut server = None;
        // The client's side of a short HTTP exchange: SYN, ACK, request, FIN.
        for (flags, payload) in [
            (TCP_SYN, &b""[..]),
            (TCP_ACK, &b""[..]),
            (
                TCP_ACK | TCP_PSH,
                &b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n"[..],
            ),
            (TCP_ACK | TCP_FIN, &b""[..]),
        ] {
            let frame = PacketBuilder::new()
                .eth(ROUTER_MAC, DIRECTOR_OUT_MAC)
                .ipv4(client, vip)
                .tcp(cport, 80)
                .flags(flags)
                .payload(payload)
                .build();
            let out = lab::run_one(&engine, &mut worker, OUTSIDE, &frame, now);
            now = now.plus_ms(1);
            if out.verdict != Verdict::Forward(INSIDE) {
                eprintln!(
                    "demo: request {request}: unexpected verdict {:?}",
                    out.verdict
                );
                return ExitCode::FAILURE;
            }
            match real_server_accepts(&out.frame, vip) {
                Some(n) if server.is_none() || server == Some(n) => server = Some(n),
                other => {
                    eprintln!("demo: request {request}: frame not for one real server ({other:?})");
                    return ExitCode::FAILURE;
                }
            }
        }
        let Some(n) = server else {
            return ExitCode::FAILURE;
        };
        answered[usize::from(n)] += 1;
        println!(
            "request {} from {client}:{cport} -> answered by rs{n} ({}) via MAC rewrite, VIP kept",
            request + 1,
            lab::real_server4(n)
        );
    }
    println!();
    print_table(&engine);
    if answered[1] == 3 && answered[2] == 3 {
        println!(
            "\nbalanced: rs1 answered {}, rs2 answered {}",
            answered[1], answered[2]
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("demo: unbalanced: {answered:?}");
        ExitCode::FAILURE
    }
}

/// What a DR real server does with a frame: accept it if it carries its
/// MAC and the VIP (held on its loopback). Returns the server's number.
fn real_server_accepts(frame: &[u8], vip: Ipv4Addr) -> Option<u8> {
    let n = lab::real_server_of_mac(frame.get(0..6)?)?;
    let parsed = wire::parse_frame(frame).ok()?;
    (parsed.daddr == IpAddr::V4(vip)).then_some(n)
}

/// The table, in `ipvsadm -Ln`'s layout.
fn print_table(engine: &Engine) {
    let snapshot = engine.snapshot();
    println!("IP Virtual Server version 1.2.1 (size=4096)");
    println!("Prot LocalAddress:Port Scheduler Flags");
    println!("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn");
    for service in snapshot.services() {
        println!(
            "{} {}",
            uvs_engine::snapshot::service_name(&service.key),
            service.scheduler_name.as_str()
        );
        let mut dests: Vec<_> = service.dests.iter().collect();
        dests.sort_by_key(|d| (d.addr, d.port));
        for d in dests {
            println!(
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                format!("{}:{}", d.addr, d.port),
                "Route",
                d.weight,
                d.counters.active(),
                d.counters.inactive()
            );
        }
    }
}
