//! Write the seed corpus of the `packet_path` fuzz target: one file per
//! valid conversation from `uvs_fuzz::seeds`, into the directory given as
//! the only argument (default `corpus/packet_path`). Each seed is also
//! run once through a fresh engine, so a seed that trips a check is
//! reported here rather than by the fuzzer.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus/packet_path"));
    std::fs::create_dir_all(&dir)?;
    let engine = uvs_fuzz::build_engine();
    let mut worker = uvs_engine::Worker::new();
    let seeds = uvs_fuzz::seeds();
    for (name, bytes) in &seeds {
        uvs_fuzz::run_input(&engine, &mut worker, bytes);
        std::fs::write(dir.join(name), bytes)?;
    }
    let forwarded = engine
        .counters()
        .forwarded
        .load(std::sync::atomic::Ordering::Relaxed);
    let new_conns = engine.conns().len();
    let counters = engine.counters();
    let drops: Vec<String> = uvs_engine::DropReason::ALL
        .iter()
        .filter(|r| counters.drops(**r) != 0)
        .map(|r| format!("{}={}", r.name(), counters.drops(*r)))
        .collect();
    println!(
        "seed_corpus: {} seeds in {}; {forwarded} frames forwarded, {} passed, \
         {} new connections ({new_conns} left), drops: [{}]",
        seeds.len(),
        dir.display(),
        counters.passed.load(std::sync::atomic::Ordering::Relaxed),
        counters
            .new_conns
            .load(std::sync::atomic::Ordering::Relaxed),
        drops.join(" ")
    );
    Ok(())
}
