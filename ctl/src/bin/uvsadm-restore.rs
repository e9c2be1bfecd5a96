//! `uvsadm-restore`: clear the table, then load ipvsadm rules from stdin
//! (lines starting with `#` skipped), as `ipvsadm-restore` does.

use std::process::ExitCode;

fn main() -> ExitCode {
    let status = uvs_ctl::with_system_runner(|runner, _args| {
        runner.prog = "uvsadm".to_string();
        let stdin = std::io::stdin();
        uvs_ctl::run::restore_main(runner, &mut stdin.lock())
    });
    ExitCode::from(status as u8)
}
