//! `uvsd`: the uvs director daemon. All of it lives in
//! [`uvs_engine::daemon`]; this only parses the command line.

use std::process::ExitCode;

use clap::Parser;
use uvs_engine::daemon::{run, Options};

fn main() -> ExitCode {
    run(Options::parse())
}
