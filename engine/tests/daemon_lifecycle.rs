//! The life of the real `uvsd` process: `--check`, start-up errors,
//! SIGHUP reloads (a good file applied, a bad one refused with its
//! place), SIGTERM/SIGINT shutting down and removing the socket, a
//! second daemon on the same socket refused.

mod daemon_support;

use std::process::{Command as Process, Stdio};

use daemon_support::{uvsd, wait_for, Daemon};
use uvs_conf::control::{Command, Response};

const ONE_SERVICE: &str = r#"
[[service]]
protocol = "tcp"
address = "192.0.2.100:80"
scheduler = "rr"
  [[service.real_server]]
  address = "198.51.100.11"
  weight = 1
"#;

const TWO_SERVICES: &str = r#"
[[service]]
protocol = "tcp"
address = "192.0.2.100:80"
scheduler = "wrr"
  [[service.real_server]]
  address = "198.51.100.11"
  weight = 3
  [[service.real_server]]
  address = "198.51.100.12"
  weight = 1

[[service]]
protocol = "udp"
address = "192.0.2.100:53"
  [[service.real_server]]
  address = "198.51.100.11:53"
  method = "nat"
"#;

/// Line 5 column 13 holds the bad weight.
const BAD_WEIGHT: &str = r#"
[[service]]
protocol = "tcp"
address = "192.0.2.100:80"
weight = 1
"#;

fn service_count(daemon: &Daemon) -> usize {
    match daemon
        .client()
        .request(Command::ListServices { service: None })
    {
        Response::Services { services } => services.len(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn check_accepts_a_good_file_and_rejects_a_bad_one_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, TWO_SERVICES).unwrap();
    let out = Process::new(uvsd())
        .arg("--check")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, ONE_SERVICE.replace("weight = 1", "weight = 70000")).unwrap();
    let out = Process::new(uvsd())
        .arg("--check")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let place = format!("{}:8:", bad.display());
    assert!(
        stderr.contains(&place) && stderr.contains("70000"),
        "{stderr}"
    );

    let missing = dir.path().join("missing.toml");
    let out = Process::new(uvsd())
        .arg("--check")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn a_bad_config_at_start_is_an_error_with_its_place_and_no_socket() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("uvs.toml");
    std::fs::write(&config, BAD_WEIGHT).unwrap();
    let socket = dir.path().join("s.sock");
    let out = Process::new(uvsd())
        .args(["--backend", "mem", "--socket"])
        .arg(&socket)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:5:1:", config.display())),
        "{stderr}"
    );
    assert!(!socket.exists());
}

/// A network namespace of its own (only `lo`), deleted on drop, so
/// that no real backend ever touches the host's interfaces.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("uvsl{tag}{}", std::process::id());
        let ok = Process::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add")
            .success();
        assert!(ok, "cannot create namespace {name} (root needed)");
        Netns(name)
    }

    /// `uvsd ARGS` run inside the namespace, to completion.
    fn uvsd(&self, args: &[&str]) -> std::process::Output {
        Process::new("ip")
            .args(["netns", "exec", &self.0, uvsd()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run uvsd")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Process::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn a_backend_that_cannot_start_is_a_clear_error() {
    let ns = Netns::new("b");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let socket_arg = socket.display().to_string();
    let config = dir.path().join("uvs.toml");
    std::fs::write(
        &config,
        format!("[engine]\ninterfaces = [\"nosuch0\"]\n{ONE_SERVICE}"),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    for kind in ["afxdp", "tun"] {
        let out = ns.uvsd(&[
            "--backend",
            kind,
            "--socket",
            &socket_arg,
            "--config",
            &config_arg,
        ]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("backend {kind}:")) && stderr.contains("nosuch0"),
            "{stderr}"
        );
        assert!(!socket.exists(), "socket left behind");
    }
    // Default: AF_XDP, falling back to TUN, each reason logged.
    let out = ns.uvsd(&["--socket", &socket_arg, "--config", &config_arg]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("falling back to TUN"), "{stderr}");
    assert!(
        stderr.contains("afxdp:") && stderr.contains("tun:"),
        "{stderr}"
    );
    let out = Process::new(uvsd())
        .args(["--backend", "dpdk"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}

#[test]
fn sighup_applies_a_good_file_and_refuses_a_bad_one() {
    let daemon = Daemon::start(Some(ONE_SERVICE));
    assert_eq!(service_count(&daemon), 1);

    daemon.write_config(TWO_SERVICES);
    daemon.signal(libc::SIGHUP);
    wait_for("the reload to apply", || service_count(&daemon) == 2);
    match daemon
        .client()
        .request(Command::ListServices { service: None })
    {
        Response::Services { services } => {
            let weights: Vec<u32> = services[0]
                .servers
                .iter()
                .map(|s| s.config.weight)
                .collect();
            assert_eq!(weights, vec![1, 3], "newest first");
        }
        other => panic!("{other:?}"),
    }

    daemon.write_config(BAD_WEIGHT);
    daemon.signal(libc::SIGHUP);
    let place = format!("{}:5:1:", daemon.config.display());
    wait_for("the refusal to be logged", || {
        daemon.log_text().contains(&place)
    });
    let log = daemon.log_text();
    assert!(
        log.contains("reload refused, running configuration kept"),
        "{log}"
    );
    assert_eq!(service_count(&daemon), 2, "the running config stayed");

    // Changes made over the socket are replaced by the file on reload.
    daemon.write_config(ONE_SERVICE);
    daemon.signal(libc::SIGHUP);
    wait_for("the second reload", || service_count(&daemon) == 1);
}

#[test]
fn sigterm_and_sigint_stop_cleanly_and_remove_the_socket() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut daemon = Daemon::start(Some(ONE_SERVICE));
        let mut client = daemon.client();
        assert!(matches!(
            client.request(Command::GetInfo),
            Response::Info { .. }
        ));
        daemon.signal(signal);
        let status = daemon.wait_exit();
        assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
        assert!(!daemon.socket.exists(), "socket file removed");
        let log = daemon.log_text();
        assert!(
            log.contains("shutting down") && log.contains("uvsd stopped"),
            "{log}"
        );
    }
}

#[test]
fn a_second_daemon_on_a_live_socket_is_refused() {
    let daemon = Daemon::start(None);
    let out = Process::new(uvsd())
        .args(["--backend", "mem", "--socket"])
        .arg(&daemon.socket)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another uvsd is already serving"),
        "{out:?}"
    );
    // The first one still serves.
    assert_eq!(service_count(&daemon), 0);
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    // A socket nobody listens on, as a crash leaves it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut child = KillOnDrop(
        Process::new(uvsd())
            .args(["--backend", "mem", "--socket"])
            .arg(&socket)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("uvsd to serve the old path", || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let mut status = None;
    wait_for("uvsd to exit", || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0));
}

/// Kills the child if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
