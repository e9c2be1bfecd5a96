//! Shared by the `daemon_*` tests: start the real `uvsd` binary with the
//! in-memory backend and a socket in a temporary directory, talk to it
//! over the control socket, signal it, and always stop it (Drop).
//!
//! Every wait polls a condition against a bounded deadline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use uvs_conf::control::{Command, Request, Response};

/// How long any wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Pause between two looks at a polled condition.
pub const POLL: Duration = Duration::from_millis(10);

/// Poll `condition` until it holds or [`DEADLINE`] passes.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// The uvsd binary under test.
pub fn uvsd() -> &'static str {
    env!("CARGO_BIN_EXE_uvsd")
}

/// A running uvsd, killed on drop if still alive.
pub struct Daemon {
    child: Option<Child>,
    /// Its private directory (config, socket, log).
    pub dir: tempfile::TempDir,
    /// The control socket.
    pub socket: PathBuf,
    /// Its config file (written by [`Daemon::write_config`]).
    pub config: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
}

impl Daemon {
    /// Start uvsd with `--backend mem`, with `config` as its config file
    /// (or none), and wait until its socket answers.
    pub fn start(config: Option<&str>) -> Daemon {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("run").join("s.sock");
        let config_path = dir.path().join("uvs.toml");
        let log = dir.path().join("stderr.log");
        let mut args: Vec<String> = vec![
            "--backend".into(),
            "mem".into(),
            "--socket".into(),
            socket.display().to_string(),
        ];
        if let Some(text) = config {
            std::fs::write(&config_path, text).expect("write config");
            args.push("--config".into());
            args.push(config_path.display().to_string());
        }
        let child = Process::new(uvsd())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn uvsd");
        let mut daemon = Daemon {
            child: Some(child),
            dir,
            socket,
            config: config_path,
            log,
        };
        let start = Instant::now();
        loop {
            if UnixStream::connect(&daemon.socket).is_ok() {
                break;
            }
            if let Some(status) = daemon.try_status() {
                panic!(
                    "uvsd exited with {status} before serving; its log:\n{}",
                    daemon.log_text()
                );
            }
            assert!(
                start.elapsed() < DEADLINE,
                "uvsd did not serve its socket in time; its log:\n{}",
                daemon.log_text()
            );
            std::thread::sleep(POLL);
        }
        daemon
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Send `signal` to it.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Its exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait (bounded) for it to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut status = None;
        wait_for("uvsd to exit", || {
            status = self.try_status();
            status.is_some()
        });
        self.child = None;
        status.expect("exit status")
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Replace its config file atomically (write aside, rename).
    pub fn write_config(&self, text: &str) {
        let aside = self.dir.path().join("uvs.toml.new");
        std::fs::write(&aside, text).expect("write config");
        std::fs::rename(&aside, &self.config).expect("rename config");
    }

    /// A new control connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One control connection.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connect to `socket` (reads time out after [`DEADLINE`]).
    pub fn connect(socket: &Path) -> Client {
        let stream = UnixStream::connect(socket).expect("connect to uvsd");
        stream
            .set_read_timeout(Some(DEADLINE))
            .expect("read timeout");
        let writer = stream.try_clone().expect("clone stream");
        Client {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// Send raw bytes (no newline added).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    /// Read one response line.
    pub fn read_response(&mut self) -> Response {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read response");
        assert!(n > 0, "uvsd closed the connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
    }

    /// Send a raw line and read the answer.
    pub fn raw(&mut self, line: &[u8]) -> Response {
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        self.send_raw(&bytes);
        self.read_response()
    }

    /// Send `command` and read the answer.
    pub fn request(&mut self, command: Command) -> Response {
        let line = serde_json::to_vec(&Request::new(command)).expect("encode");
        self.raw(&line)
    }
}
