//! The control-socket client: one JSON line out, one JSON line back
//! ([`uvs_conf::control`]).
//!
//! [`Transport`] is what the command runner needs; [`UnixTransport`]
//! connects lazily (so `-h`, `-v` and parse errors never need uvsd) to the
//! socket named by the `UVS_SOCKET` environment variable, else
//! [`DEFAULT_SOCKET_PATH`], and keeps the connection for the rest of the
//! run (a whole `-R` restore uses one connection). Failures are
//! [`ClientError`]s whose text is one line an operator can act on.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use uvs_conf::control::{Command, Request, Response, DEFAULT_SOCKET_PATH, MAX_MESSAGE_BYTES};

/// The environment variable naming another control socket.
pub const SOCKET_ENV: &str = "UVS_SOCKET";

/// Why a request got no answer.
#[derive(Debug)]
pub enum ClientError {
    /// No uvsd listens on the socket (absent, or nobody accepting).
    NotRunning {
        /// The socket path.
        path: PathBuf,
        /// What the system said.
        cause: std::io::Error,
    },
    /// The socket refused us: not root (or not allowed by uvsd).
    PermissionDenied {
        /// The socket path.
        path: PathBuf,
    },
    /// The conversation broke (I/O error, closed, unreadable answer).
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotRunning { path, cause } => write!(
                f,
                "Can't reach uvsd at {}: {cause}. Is uvsd running? (set {SOCKET_ENV} for another socket)",
                path.display()
            ),
            ClientError::PermissionDenied { path } => write!(
                f,
                "Permission denied (you must be root) on uvsd's socket {}",
                path.display()
            ),
            ClientError::Protocol { path, detail } => {
                write!(f, "Lost the conversation with uvsd at {}: {detail}", path.display())
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// Something that answers control requests.
pub trait Transport {
    /// Send one command, wait for its answer.
    fn request(&mut self, command: &Command) -> Result<Response, ClientError>;
}

/// The socket uvsadm talks to: `$UVS_SOCKET`, else the default path.
pub fn socket_path() -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_SOCKET_PATH),
    }
}

/// A connection to uvsd over its Unix socket, opened on first use.
#[derive(Debug)]
pub struct UnixTransport {
    path: PathBuf,
    conn: Option<(BufReader<UnixStream>, UnixStream)>,
}

impl UnixTransport {
    /// A client of the socket at `path` (not connected yet).
    pub fn new(path: impl AsRef<Path>) -> UnixTransport {
        UnixTransport {
            path: path.as_ref().to_path_buf(),
            conn: None,
        }
    }

    fn protocol_error(&self, detail: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn connect(&mut self) -> Result<(), ClientError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let stream = UnixStream::connect(&self.path).map_err(|cause| match cause.kind() {
            ErrorKind::PermissionDenied => ClientError::PermissionDenied {
                path: self.path.clone(),
            },
            _ => ClientError::NotRunning {
                path: self.path.clone(),
                cause,
            },
        })?;
        let reader = stream
            .try_clone()
            .map_err(|e| self.protocol_error(e.to_string()))?;
        self.conn = Some((BufReader::new(reader), stream));
        Ok(())
    }
}

impl Transport for UnixTransport {
    fn request(&mut self, command: &Command) -> Result<Response, ClientError> {
        self.connect()?;
        let mut line = serde_json::to_string(&Request::new(command.clone()))
            .map_err(|e| self.protocol_error(e.to_string()))?;
        line.push('\n');
        let path = self.path.clone();
        let perr = |detail: String| ClientError::Protocol {
            path: path.clone(),
            detail,
        };
        let Some((reader, writer)) = self.conn.as_mut() else {
            return Err(perr("not connected".into()));
        };
        writer
            .write_all(line.as_bytes())
            .map_err(|e| perr(format!("sending: {e}")))?;
        let mut answer = String::new();
        let n = reader
            .by_ref()
            .take(MAX_MESSAGE_BYTES as u64)
            .read_line(&mut answer)
            .map_err(|e| perr(format!("reading: {e}")))?;
        if n == 0 {
            self.conn = None;
            return Err(perr("uvsd closed the connection without answering".into()));
        }
        let response = serde_json::from_str::<Response>(answer.trim_end())
            .map_err(|e| perr(format!("unreadable answer: {e}")))?;
        if let Response::Error {
            code: uvs_conf::control::ErrorCode::PermissionDenied,
            ..
        } = response
        {
            return Err(ClientError::PermissionDenied { path });
        }
        Ok(response)
    }
}
