//! The control socket: a Unix stream socket speaking the JSON-lines
//! protocol of [`uvs_conf::control`], served by a mio event loop.
//!
//! - The socket file is created mode 0600 in a directory created if
//!   missing. A stale file left by a crash is replaced; a socket some
//!   live process still answers on is not (a second uvsd is refused).
//! - Every client's credentials are read with `SO_PEERCRED` when it
//!   connects: a peer that is not uid 0 gets one
//!   [`ErrorCode::PermissionDenied`] line and is disconnected.
//! - Each line is one request; each gets exactly one response line, in
//!   order. A line that is not JSON, not a request, or longer than
//!   [`MAX_MESSAGE_BYTES`] gets [`ErrorCode::Malformed`]; another protocol
//!   version gets [`ErrorCode::Version`]; the connection stays open and
//!   the daemon goes on serving.
//! - Sockets are non-blocking; replies that do not fit in the socket
//!   buffer wait in the client's output buffer for `WRITABLE`.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use uvs_conf::control::{ErrorCode, Request, Response, MAX_MESSAGE_BYTES, VERSION};

use super::controller::Controller;
use super::log;

/// Most clients connected at once; more are disconnected at accept.
pub const MAX_CLIENTS: usize = 256;

/// The first token handed to a client (lower ones are the loop's own).
pub const FIRST_CLIENT_TOKEN: usize = 16;

/// Bind the control socket at `path`, mode 0600.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    if path.exists() || path.symlink_metadata().is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                ErrorKind::AddrInUse,
                format!(
                    "{}: another uvsd is already serving this socket",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot remove stale socket {}: {e}", path.display()),
            )
        })?;
    }
    // Create the socket file with no group/other bits from the start.
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The uid of the process at the other end of `stream`.
pub fn peer_uid(stream: &impl AsRawFd) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a ucred.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Turn one request line into a command or the error to answer.
pub fn parse_request(line: &[u8]) -> Result<Request, Response> {
    let malformed = |message: String| Response::Error {
        code: ErrorCode::Malformed,
        message,
    };
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| malformed(format!("the request is not valid JSON: {e}")))?;
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| malformed("the request has no numeric \"version\"".to_string()))?;
    if version != u64::from(VERSION) {
        return Err(Response::Error {
            code: ErrorCode::Version,
            message: format!(
                "protocol version {version} is not supported: uvsd {} speaks version {VERSION}",
                env!("CARGO_PKG_VERSION")
            ),
        });
    }
    serde_json::from_value(value).map_err(|e| malformed(format!("not a valid request: {e}")))
}

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Skipping the rest of an oversized line.
    discarding: bool,
    /// Close once `output` is flushed.
    closing: bool,
    writable_registered: bool,
}

/// The listening socket and its clients.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    clients: HashMap<Token, Client>,
    next_token: usize,
}

fn respond(output: &mut Vec<u8>, response: &Response) {
    match serde_json::to_vec(response) {
        Ok(bytes) => output.extend_from_slice(&bytes),
        Err(e) => {
            // Responses are plain data; this cannot fail, but answer
            // something rather than nothing.
            let fallback = Response::Error {
                code: ErrorCode::Internal,
                message: format!("cannot encode the response: {e}"),
            };
            output.extend_from_slice(&serde_json::to_vec(&fallback).unwrap_or_default());
        }
    }
    output.push(b'\n');
}

impl ControlServer {
    /// Serve `listener` (bound at `path`, removed by
    /// [`ControlServer::remove_socket`]).
    pub fn new(listener: UnixListener, path: PathBuf) -> ControlServer {
        ControlServer {
            listener,
            path,
            clients: HashMap::new(),
            next_token: FIRST_CLIENT_TOKEN,
        }
    }

    /// Register the listening socket under `token`.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Accept every pending connection.
    pub fn accept(&mut self, registry: &Registry) {
        loop {
            let (stream, _) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error(format_args!("control socket: accept failed: {e}"));
                    return;
                }
            };
            if self.clients.len() >= MAX_CLIENTS {
                log::warn(format_args!(
                    "control socket: {MAX_CLIENTS} clients already connected; refusing one more"
                ));
                continue;
            }
            let mut client = Client {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                discarding: false,
                closing: false,
                writable_registered: false,
            };
            match peer_uid(&client.stream) {
                Ok(0) => {}
                Ok(uid) => {
                    log::warn(format_args!(
                        "control socket: refused a client running as uid {uid} (root only)"
                    ));
                    respond(
                        &mut client.output,
                        &Response::Error {
                            code: ErrorCode::PermissionDenied,
                            message: ErrorCode::PermissionDenied
                                .ipvsadm_message()
                                .unwrap_or("permission denied")
                                .to_string(),
                        },
                    );
                    client.closing = true;
                }
                Err(e) => {
                    log::error(format_args!(
                        "control socket: cannot read a client's credentials: {e}"
                    ));
                    continue;
                }
            }
            let token = Token(self.next_token);
            self.next_token = self.next_token.wrapping_add(1).max(FIRST_CLIENT_TOKEN);
            if let Err(e) = registry.register(
                &mut client.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::error(format_args!(
                    "control socket: cannot register a client: {e}"
                ));
                continue;
            }
            client.writable_registered = true;
            self.clients.insert(token, client);
            self.flush(registry, token);
        }
    }

    /// A client's socket is ready: read and answer what it sent, write
    /// what is pending.
    pub fn ready(&mut self, registry: &Registry, token: Token, controller: &mut Controller) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        if !client.closing {
            let mut chunk = [0u8; 64 * 1024];
            loop {
                match client.stream.read(&mut chunk) {
                    Ok(0) => {
                        client.closing = true;
                        break;
                    }
                    Ok(n) => {
                        client.input.extend_from_slice(&chunk[..n]);
                        Self::process(client, controller);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        client.closing = true;
                        client.output.clear();
                        break;
                    }
                }
            }
        }
        self.flush(registry, token);
    }

    /// Answer every complete line in the client's input.
    fn process(client: &mut Client, controller: &mut Controller) {
        let mut start = 0;
        while let Some(offset) = client.input[start..].iter().position(|&b| b == b'\n') {
            let end = start + offset;
            let line = &client.input[start..end];
            start = end + 1;
            if client.discarding {
                client.discarding = false;
                continue;
            }
            if line.len() + 1 > MAX_MESSAGE_BYTES {
                respond(&mut client.output, &oversized());
                continue;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let response = match parse_request(line) {
                Ok(request) => controller.handle(request.command),
                Err(response) => response,
            };
            respond(&mut client.output, &response);
        }
        client.input.drain(..start);
        if client.input.len() >= MAX_MESSAGE_BYTES {
            // No newline within the limit: answer once, skip to the next
            // newline.
            client.input.clear();
            if !client.discarding {
                respond(&mut client.output, &oversized());
                client.discarding = true;
            }
        } else if client.discarding {
            client.input.clear();
        }
    }

    /// Write what is pending; drop the client when it is done or gone.
    fn flush(&mut self, registry: &Registry, token: Token) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        let mut broken = false;
        while !client.output.is_empty() {
            match client.stream.write(&client.output) {
                Ok(0) => {
                    broken = true;
                    break;
                }
                Ok(n) => {
                    client.output.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        if broken || (client.closing && client.output.is_empty()) {
            // Read what the peer sent and we will not answer, so that
            // closing does not turn our last reply into ECONNRESET.
            let mut sink = [0u8; 4096];
            for _ in 0..256 {
                match client.stream.read(&mut sink) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
            if let Some(mut gone) = self.clients.remove(&token) {
                let _ = registry.deregister(&mut gone.stream);
            }
            return;
        }
        let want_writable = !client.output.is_empty();
        if want_writable != client.writable_registered {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if registry
                .reregister(&mut client.stream, token, interest)
                .is_ok()
            {
                client.writable_registered = want_writable;
            }
        }
    }

    /// Remove the socket file (at shutdown).
    pub fn remove_socket(&self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != ErrorKind::NotFound {
                log::warn(format_args!(
                    "cannot remove control socket {}: {e}",
                    self.path.display()
                ));
            }
        }
    }
}

fn oversized() -> Response {
    Response::Error {
        code: ErrorCode::Malformed,
        message: format!("request line longer than {MAX_MESSAGE_BYTES} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uvs_conf::control::Command;

    #[test]
    fn requests_parse_and_bad_ones_are_classified() {
        let ok = parse_request(br#"{"version":1,"command":{"op":"get_info"}}"#).unwrap();
        assert_eq!(ok.command, Command::GetInfo);
        let code = |line: &[u8]| match parse_request(line) {
            Err(Response::Error { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(b"not json"), ErrorCode::Malformed);
        assert_eq!(
            code(br#"{"command":{"op":"get_info"}}"#),
            ErrorCode::Malformed
        );
        assert_eq!(
            code(br#"{"version":1,"command":{"op":"launch_missiles"}}"#),
            ErrorCode::Malformed
        );
        assert_eq!(
            code(br#"{"version":2,"command":{"op":"something_new"}}"#),
            ErrorCode::Version
        );
    }
}
