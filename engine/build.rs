//! Builds the XDP steering program (`bpf/steer.bpf.c`) with
//! `clang -target bpf`; the object is embedded by `io::afxdp` with
//! `include_bytes!`. Needs clang (scripts/setup.sh installs it); libbpf's
//! headers come from libbpf-sys (`DEP_BPF_INCLUDE`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let src = "bpf/steer.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    let bpf_include = env::var("DEP_BPF_INCLUDE").expect("DEP_BPF_INCLUDE from libbpf-sys");
    // clang -target bpf does not search the multiarch include directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let obj = out.join("steer.bpf.o");
    let status = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{bpf_include}"))
        .arg(format!("-I{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| {
            panic!("running clang for {src}: {e} (install clang: scripts/setup.sh)")
        });
    assert!(status.success(), "clang failed to build {src}");
}
