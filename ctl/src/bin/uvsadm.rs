//! `uvsadm`: ipvsadm's command line for uvsd.

use std::process::ExitCode;

fn main() -> ExitCode {
    let status = uvs_ctl::with_system_runner(|runner, args| {
        let stdin = std::io::stdin();
        runner.main(args, &mut stdin.lock())
    });
    ExitCode::from(status as u8)
}
