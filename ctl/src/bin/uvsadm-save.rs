//! `uvsadm-save [-n]`: the IPVS table as ipvsadm rules on stdout, as
//! `ipvsadm-save` prints it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let status = uvs_ctl::with_system_runner(|runner, args| {
        runner.prog = "uvsadm".to_string();
        let stdin = std::io::stdin();
        uvs_ctl::run::save_main(runner, args, &mut stdin.lock())
    });
    ExitCode::from(status as u8)
}
