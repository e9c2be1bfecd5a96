//! Fuzz the whole packet path: the input is a sequence of frames (see
//! `uvs_fuzz` for the format) run one by one through one long-lived
//! `Engine` with a service for every forwarding method, under a moving
//! clock; every forwarded frame must be well formed again.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use uvs_engine::{Engine, Worker};

static ENGINE: OnceLock<Engine> = OnceLock::new();
static WORKER: Mutex<Option<Worker>> = Mutex::new(None);

extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
}

/// Printed when libFuzzer exits (end of `-runs` or `-max_total_time`):
/// the number of frames (not inputs) the engine processed.
extern "C" fn report_frames() {
    eprintln!(
        "uvs-fuzz: frames processed: {}",
        uvs_fuzz::FRAMES.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fuzz_target!(
    init: {
        ENGINE.get_or_init(uvs_fuzz::build_engine);
        // SAFETY: `report_frames` is a plain `extern "C" fn()` that only
        // reads an atomic and writes to stderr; registering it has no
        // other precondition.
        unsafe {
            atexit(report_frames);
        }
    },
    |data: &[u8]| {
        let engine = ENGINE.get_or_init(uvs_fuzz::build_engine);
        let mut worker = WORKER.lock().unwrap_or_else(|e| e.into_inner());
        let worker = worker.get_or_insert_with(Worker::new);
        uvs_fuzz::run_input(engine, worker, data);
    }
);
