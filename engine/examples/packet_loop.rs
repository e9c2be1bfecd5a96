//! Run one benchmark scenario for N packets, for `bench/callgrind.sh`:
//! `packet_loop <method>-<path> <packets>` (e.g. `nat-established_reply
//! 20000`; `packet_loop list` prints the names). Everything is set up
//! first; only `run_loop` handles the measured packets, so callgrind can
//! count it alone (`--toggle-collect=*run_loop*`), and the script
//! subtracts a shorter run to cancel what does not scale with N.

#[path = "../benches/scenario/mod.rs"]
mod scenario;

use scenario::{Path, BATCH};
use uvs_engine::lab::OUTSIDE;
use uvs_engine::route::PortId;
use uvs_engine::{Engine, Worker};

#[inline(never)]
fn run_loop(engine: &Engine, frames: &[Vec<u8>], packets: usize, ingress: PortId) -> usize {
    let mut worker = Worker::new();
    let mut slots = scenario::Slots::default();
    let batches: Vec<&[Vec<u8>]> = frames.chunks_exact(BATCH).collect();
    let mut forwarded = 0;
    for i in 0..packets / BATCH {
        let batch = batches[i % batches.len()];
        forwarded += scenario::run_batch(
            engine,
            &mut worker,
            &mut slots,
            batch,
            ingress,
            scenario::batch_time(i as u64),
        );
    }
    forwarded
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("list") {
        for (method, path) in scenario::all_scenarios() {
            println!("{}", scenario::scenario_name(method, path));
        }
        return;
    }
    let (Some(name), Some(packets)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: packet_loop <scenario>|list <packets>");
        std::process::exit(2);
    };
    let Some((method, path)) = scenario::parse_scenario(name) else {
        eprintln!("packet_loop: unknown scenario {name} (try `packet_loop list`)");
        std::process::exit(2);
    };
    let packets = packets / BATCH * BATCH;
    let (engine, frames, ingress) = match path {
        Path::New => {
            let table =
                scenario::NEW_CONN_TABLE.max(u32::try_from(packets * 2).unwrap_or(u32::MAX));
            (
                scenario::engine(method, table),
                scenario::new_conn_frames(0, packets),
                OUTSIDE,
            )
        }
        _ => scenario::established(method, path),
    };
    let forwarded = run_loop(&engine, &frames, packets, ingress);
    assert_eq!(forwarded, packets, "every packet is forwarded");
    println!("{name}: {packets} packets forwarded");
}
