//! Shared by the `uvsd_*` tests: run the real `uvsd` binary inside a lab
//! namespace (`ip netns exec`), exactly as a user would, talk to it over
//! its control socket, and always stop it (Drop kills it; the lab guard
//! removes the namespaces).
//!
//! Every wait polls a condition against a bounded deadline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use uvs_conf::control::{Command as Ctl, EngineStats, Request, Response};

/// How long uvsd may take to start or stop.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A uvsd running in a namespace.
pub struct Uvsd {
    child: Option<Child>,
    /// Private directory: config, socket, log.
    pub dir: tempfile::TempDir,
    /// Control socket.
    pub socket: PathBuf,
    /// Config file.
    pub config: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
}

/// Run `uvsd ARGS` in `ns` with stderr to `log`.
fn spawn(ns: &str, args: &[String], log: &PathBuf) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_uvsd")])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn uvsd")
}

impl Uvsd {
    /// Start uvsd in `ns` with `extra` arguments (e.g. `--backend tun`)
    /// and `config` (or none); wait until its socket answers.
    pub fn start(ns: &str, extra: &[&str], config: Option<&str>) -> Uvsd {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("uvsd.sock");
        let config_path = dir.path().join("uvs.toml");
        let log = dir.path().join("uvsd.log");
        let mut uvsd = Uvsd {
            child: None,
            dir,
            socket,
            config: config_path,
            log,
        };
        if let Some(text) = config {
            std::fs::write(&uvsd.config, text).expect("write config");
        }
        uvsd.launch(ns, extra, config.is_some());
        uvsd
    }

    /// Start `uvsd ARGS` in `ns` with no socket or config argument (the
    /// decap role), and wait until its log shows `ready`.
    pub fn start_plain(ns: &str, args: &[&str], ready: &str) -> Uvsd {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join("uvsd.log");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut uvsd = Uvsd {
            child: Some(spawn(ns, &args, &log)),
            socket: dir.path().join("none.sock"),
            config: dir.path().join("none.toml"),
            dir,
            log,
        };
        let start = Instant::now();
        while !uvsd.log_text().contains(ready) {
            if let Some(status) = uvsd.try_status() {
                panic!("uvsd exited with {status}:\n{}", uvsd.log_text());
            }
            assert!(
                start.elapsed() < DEADLINE,
                "uvsd never logged {ready:?}:\n{}",
                uvsd.log_text()
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
        uvsd
    }

    /// The arguments uvsd is started with.
    fn args(&self, extra: &[&str], with_config: bool) -> Vec<String> {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.push("--socket".into());
        args.push(self.socket.display().to_string());
        if with_config {
            args.push("--config".into());
            args.push(self.config.display().to_string());
        }
        args
    }

    /// (Re)start the process (after [`Uvsd::kill9`] or an exit).
    pub fn launch(&mut self, ns: &str, extra: &[&str], with_config: bool) {
        assert!(self.child.is_none(), "uvsd is already running");
        let args = self.args(extra, with_config);
        self.child = Some(spawn(ns, &args, &self.log));
        let start = Instant::now();
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                break;
            }
            if let Some(status) = self.try_status() {
                panic!(
                    "uvsd exited with {status} before serving:\n{}",
                    self.log_text()
                );
            }
            assert!(
                start.elapsed() < DEADLINE,
                "uvsd did not serve its socket in time:\n{}",
                self.log_text()
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Run a second uvsd in `ns` with `extra` and this one's config but
    /// its own socket; returns its exit status and log (bounded wait).
    pub fn second(&self, ns: &str, extra: &[&str]) -> (ExitStatus, String) {
        let log = self.dir.path().join("second.log");
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.push("--socket".into());
        args.push(self.dir.path().join("second.sock").display().to_string());
        args.push("--config".into());
        args.push(self.config.display().to_string());
        let mut child = spawn(ns, &args, &log);
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "a second uvsd kept running:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::park_timeout(Duration::from_millis(20));
        };
        (status, std::fs::read_to_string(&log).unwrap_or_default())
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM, and wait (bounded) for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        self.wait_exit()
    }

    /// SIGKILL (no cleanup at all), and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_status() {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "uvsd did not exit:\n{}",
                self.log_text()
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One control command and its answer.
    pub fn ctl(&self, command: Ctl) -> Response {
        let stream = UnixStream::connect(&self.socket).expect("connect to uvsd");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let mut line = serde_json::to_string(&Request::new(command)).expect("json");
        line.push('\n');
        writer.write_all(line.as_bytes()).expect("send");
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .expect("read answer");
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("bad answer {answer:?}: {e}"))
    }

    /// The engine's counters.
    pub fn engine_stats(&self) -> EngineStats {
        match self.ctl(Ctl::GetEngineStats) {
            Response::EngineStats { stats } => stats,
            other => panic!("unexpected answer {other:?}"),
        }
    }
}

impl Drop for Uvsd {
    fn drop(&mut self) {
        self.kill9();
    }
}
