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

    /// A client over a stream the caller has already connected (a test's
    /// socket pair, an inherited descriptor); `path` names it in errors.
    pub fn from_stream(
        path: impl AsRef<Path>,
        stream: UnixStream,
    ) -> std::io::Result<UnixTransport> {
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        let reader = stream.try_clone()?;
        Ok(UnixTransport {
            path: path.as_ref().to_path_buf(),
            conn: Some((BufReader::new(reader), stream)),
        })
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
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| self.protocol_error(e.to_string()))?;
        let reader = stream
            .try_clone()
            .map_err(|e| self.protocol_error(e.to_string()))?;
        self.conn = Some((BufReader::new(reader), stream));
        Ok(())
    }
}

/// How an exchange on an open connection failed.
enum Exchange {
    /// uvsd hung up before answering (it may drop idle clients): the
    /// request can be sent again on a new connection.
    Closed,
    /// Anything else.
    Failed(ClientError),
}

impl UnixTransport {
    /// Send one request line on the open connection and read the answer.
    fn exchange(&mut self, line: &str) -> Result<Response, Exchange> {
        let path = self.path.clone();
        let perr = |detail: String| {
            Exchange::Failed(ClientError::Protocol {
                path: path.clone(),
                detail,
            })
        };
        let Some((reader, writer)) = self.conn.as_mut() else {
            return Err(perr("not connected".into()));
        };
        if let Err(e) = writer.write_all(line.as_bytes()) {
            match e.kind() {
                // uvsd may have answered and hung up before reading our
                // request (it refuses a non-root peer at accept): its
                // answer is still queued on our side, so read it.
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {}
                _ => return Err(perr(format!("sending: {e}"))),
            }
        }
        let mut answer = String::new();
        let n = match reader
            .by_ref()
            .take(MAX_MESSAGE_BYTES as u64)
            .read_line(&mut answer)
        {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => 0,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(perr(format!(
                    "no answer within {} s",
                    ANSWER_TIMEOUT.as_secs()
                )))
            }
            Err(e) => return Err(perr(format!("reading: {e}"))),
        };
        if n == 0 {
            return Err(Exchange::Closed);
        }
        serde_json::from_str::<Response>(answer.trim_end())
            .map_err(|e| perr(format!("unreadable answer: {e}")))
    }
}

/// How long uvsadm waits for one answer.
pub const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Transport for UnixTransport {
    fn request(&mut self, command: &Command) -> Result<Response, ClientError> {
        let mut line = serde_json::to_string(&Request::new(command.clone()))
            .map_err(|e| self.protocol_error(e.to_string()))?;
        line.push('\n');
        // A kept connection that uvsd has closed gets one fresh try; a
        // fresh connection that closes is an error.
        let reused = self.conn.is_some();
        self.connect()?;
        let mut result = self.exchange(&line);
        if reused && matches!(result, Err(Exchange::Closed)) {
            self.conn = None;
            self.connect()?;
            result = self.exchange(&line);
        }
        let response = match result {
            Ok(r) => r,
            Err(Exchange::Closed) => {
                self.conn = None;
                return Err(self.protocol_error("uvsd closed the connection without answering"));
            }
            Err(Exchange::Failed(e)) => {
                self.conn = None;
                return Err(e);
            }
        };
        if let Response::Error {
            code: uvs_conf::control::ErrorCode::PermissionDenied,
            ..
        } = response
        {
            return Err(ClientError::PermissionDenied {
                path: self.path.clone(),
            });
        }
        Ok(response)
    }
}
