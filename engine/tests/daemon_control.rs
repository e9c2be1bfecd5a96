//! The control socket of the real `uvsd` (in-memory backend): every
//! command with ipvsadm's semantics and error codes, bad input answered
//! without stopping the daemon, many clients, and non-root peers refused.

mod daemon_support;

use std::net::IpAddr;

use daemon_support::{Client, Daemon};
use uvs_conf::control::{Command, ErrorCode, Response, ServiceSpec, SyncDaemonSpec, SyncRole};
use uvs_conf::{
    DestConfig, ForwardMethod, Persistence, Protocol, SchedFlags, SchedulerName, ServiceKey,
    Timeouts,
};

fn key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "192.0.2.100".parse().unwrap(),
        port,
    }
}

fn spec(port: u16, scheduler: SchedulerName) -> ServiceSpec {
    ServiceSpec {
        key: key(port),
        scheduler,
        flags: SchedFlags::default(),
        persistence: None,
        persistence_engine: None,
        one_packet: false,
        fwmark_match: Vec::new(),
    }
}

fn server(last: u8, weight: u32) -> DestConfig {
    DestConfig {
        addr: IpAddr::from([198, 51, 100, last]),
        port: 80,
        method: ForwardMethod::Dr,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn error_code(response: Response) -> ErrorCode {
    match response {
        Response::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn services(client: &mut Client) -> Vec<uvs_conf::control::ServiceStatus> {
    match client.request(Command::ListServices { service: None }) {
        Response::Services { services } => services,
        other => panic!("expected services, got {other:?}"),
    }
}

#[test]
fn commands_follow_ipvsadm_semantics_and_error_codes() {
    let daemon = Daemon::start(None);
    let mut c = daemon.client();
    assert!(services(&mut c).is_empty(), "started empty");

    assert_eq!(
        c.request(Command::AddService {
            service: spec(80, SchedulerName::Rr)
        }),
        Response::Ok
    );
    assert_eq!(
        error_code(c.request(Command::AddService {
            service: spec(80, SchedulerName::Wlc)
        })),
        ErrorCode::ServiceExists
    );
    for last in [11, 12] {
        assert_eq!(
            c.request(Command::AddServer {
                service: key(80),
                server: server(last, 1),
            }),
            Response::Ok
        );
    }
    assert_eq!(
        error_code(c.request(Command::AddServer {
            service: key(80),
            server: server(11, 3),
        })),
        ErrorCode::DestExists
    );
    assert_eq!(
        error_code(c.request(Command::AddServer {
            service: key(81),
            server: server(11, 3),
        })),
        ErrorCode::NoService
    );
    assert_eq!(
        error_code(c.request(Command::EditServer {
            service: key(80),
            server: server(13, 3),
        })),
        ErrorCode::NoDest
    );
    assert_eq!(
        error_code(c.request(Command::DeleteServer {
            service: key(80),
            addr: "198.51.100.13".parse().unwrap(),
            port: 80,
        })),
        ErrorCode::NoDest
    );
    // A rule of the config file, broken by a command: refused, named.
    let mut heavy = server(13, 1);
    heavy.l_threshold = 10;
    heavy.u_threshold = 5;
    match c.request(Command::AddServer {
        service: key(80),
        server: heavy,
    }) {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::Invalid);
            assert!(message.contains("lower threshold"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let listed = services(&mut c);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].spec.scheduler, SchedulerName::Rr);
    // Newest first, as IPVS lists them.
    let addrs: Vec<IpAddr> = listed[0].servers.iter().map(|s| s.config.addr).collect();
    assert_eq!(
        addrs,
        vec![
            "198.51.100.12".parse::<IpAddr>().unwrap(),
            "198.51.100.11".parse().unwrap()
        ]
    );

    // -e with a weight, then -E with nothing but the key: the scheduler
    // goes back to wlc, persistence goes, the real servers stay.
    assert_eq!(
        c.request(Command::EditServer {
            service: key(80),
            server: server(11, 5),
        }),
        Response::Ok
    );
    let mut persistent = spec(80, SchedulerName::Sh);
    persistent.persistence = Some(Persistence {
        timeout: 300,
        netmask: uvs_conf::Netmask::v4_prefix(24),
    });
    assert_eq!(
        c.request(Command::EditService {
            service: persistent
        }),
        Response::Ok
    );
    assert_eq!(
        services(&mut c)[0].spec.persistence.map(|p| p.timeout),
        Some(300)
    );
    assert_eq!(
        c.request(Command::EditService {
            service: spec(80, SchedulerName::Wlc)
        }),
        Response::Ok
    );
    let listed = services(&mut c);
    assert_eq!(listed[0].spec.scheduler, SchedulerName::Wlc);
    assert_eq!(listed[0].spec.persistence, None);
    let weights: Vec<u32> = listed[0].servers.iter().map(|s| s.config.weight).collect();
    assert_eq!(weights, vec![1, 5]);

    // One service listed; a missing one is NoService.
    match c.request(Command::ListServices {
        service: Some(key(80)),
    }) {
        Response::Services { services } => assert_eq!(services.len(), 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error_code(c.request(Command::ListServices {
            service: Some(key(81))
        })),
        ErrorCode::NoService
    );

    // Zero: one service, all, or a missing one.
    assert_eq!(
        c.request(Command::Zero {
            service: Some(key(80))
        }),
        Response::Ok
    );
    assert_eq!(c.request(Command::Zero { service: None }), Response::Ok);
    assert_eq!(
        error_code(c.request(Command::Zero {
            service: Some(key(81))
        })),
        ErrorCode::NoService
    );
    let zeroed = &services(&mut c)[0];
    assert_eq!(zeroed.counters, Default::default());
    assert_eq!(zeroed.rates, Default::default());

    // Timeouts: 0 leaves a value as it is.
    assert_eq!(
        c.request(Command::SetTimeouts {
            tcp: 0,
            tcp_fin: 60,
            udp: 0
        }),
        Response::Ok
    );
    assert_eq!(
        c.request(Command::GetTimeouts),
        Response::Timeouts {
            timeouts: Timeouts {
                tcp: 900,
                tcp_fin: 60,
                udp: 300
            }
        }
    );

    match c.request(Command::GetInfo) {
        Response::Info {
            conn_table_size, ..
        } => assert_eq!(conn_table_size, 4096),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.request(Command::ListConnections),
        Response::Connections {
            connections: Vec::new()
        }
    );

    // Connection sync does not exist yet: said plainly.
    let sync = SyncDaemonSpec {
        role: SyncRole::Master,
        interface: "eth0".into(),
        syncid: 0,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
    };
    for command in [
        Command::StartDaemon { daemon: sync },
        Command::StopDaemon {
            role: SyncRole::Master,
        },
    ] {
        assert_eq!(
            c.request(command),
            Response::Error {
                code: ErrorCode::Internal,
                message: "connection sync is not implemented in uvsd yet".into()
            }
        );
    }
    assert_eq!(
        c.request(Command::GetDaemons),
        Response::Daemons {
            daemons: Vec::new()
        }
    );

    // Delete a server, the service, then clear.
    assert_eq!(
        c.request(Command::DeleteServer {
            service: key(80),
            addr: "198.51.100.12".parse().unwrap(),
            port: 80,
        }),
        Response::Ok
    );
    assert_eq!(services(&mut c)[0].servers.len(), 1);
    assert_eq!(
        c.request(Command::DeleteService { key: key(80) }),
        Response::Ok
    );
    assert_eq!(
        error_code(c.request(Command::DeleteService { key: key(80) })),
        ErrorCode::NoService
    );
    for port in [80, 443] {
        assert_eq!(
            c.request(Command::AddService {
                service: spec(port, SchedulerName::Rr)
            }),
            Response::Ok
        );
    }
    assert_eq!(c.request(Command::Clear), Response::Ok);
    assert!(services(&mut c).is_empty());
    assert!(daemon
        .log_text()
        .contains("applied add service TCP 192.0.2.100:80"));
}

#[test]
fn malformed_oversized_and_foreign_version_lines_get_errors_and_serving_goes_on() {
    let daemon = Daemon::start(None);
    let mut c = daemon.client();
    assert_eq!(error_code(c.raw(b"this is not json")), ErrorCode::Malformed);
    assert_eq!(
        error_code(c.raw(br#"{"version":1,"command":{"op":"format_disk"}}"#)),
        ErrorCode::Malformed
    );
    assert_eq!(
        error_code(c.raw(br#"{"version":99,"command":{"op":"get_info"}}"#)),
        ErrorCode::Version
    );
    assert!(matches!(c.request(Command::GetInfo), Response::Info { .. }));

    // A line longer than the limit: one error, then the next line is
    // served on the same connection.
    let huge = vec![b'x'; uvs_conf::control::MAX_MESSAGE_BYTES + 100];
    c.send_raw(&huge);
    c.send_raw(b"\n");
    assert_eq!(error_code(c.read_response()), ErrorCode::Malformed);
    assert!(matches!(c.request(Command::GetInfo), Response::Info { .. }));

    // A client that hangs up mid-line does not disturb others.
    {
        let mut quitter = daemon.client();
        quitter.send_raw(br#"{"version":1,"#);
    }
    let mut other = daemon.client();
    assert!(matches!(
        other.request(Command::GetTimeouts),
        Response::Timeouts { .. }
    ));
}

#[test]
fn many_clients_are_served_and_pipelined_requests_answered_in_order() {
    let daemon = Daemon::start(None);
    let mut clients: Vec<Client> = (0..24).map(|_| daemon.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let port = 1000 + i as u16;
        assert_eq!(
            c.request(Command::AddService {
                service: spec(port, SchedulerName::Rr)
            }),
            Response::Ok
        );
    }
    assert_eq!(services(&mut clients[0]).len(), 24);

    // Three requests in one write: three answers, in order.
    let mut bytes = Vec::new();
    for command in [
        Command::GetTimeouts,
        Command::DeleteService { key: key(1000) },
        Command::DeleteService { key: key(1000) },
    ] {
        bytes.extend(serde_json::to_vec(&uvs_conf::control::Request::new(command)).unwrap());
        bytes.push(b'\n');
    }
    let c = &mut clients[5];
    c.send_raw(&bytes);
    assert!(matches!(c.read_response(), Response::Timeouts { .. }));
    assert_eq!(c.read_response(), Response::Ok);
    assert_eq!(error_code(c.read_response()), ErrorCode::NoService);
}

#[test]
fn socket_is_private_to_root() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let daemon = Daemon::start(None);
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

/// Connect as uid 65534 from a forked child and return what the daemon
/// said. The child keeps root's file access (fsuid 0 with saved uid 0)
/// so it can open the 0600 socket, while its effective uid, which
/// SO_PEERCRED reports, is 65534. After fork the child only makes raw
/// system calls.
fn talk_as_nobody(socket: &std::path::Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    // Everything the child needs, prepared before fork.
    // SAFETY: sockaddr_un is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = socket.as_os_str().as_bytes();
    assert!(path.len() < addr.sun_path.len());
    for (dst, src) in addr.sun_path.iter_mut().zip(path) {
        *dst = *src as libc::c_char;
    }
    let request = b"{\"version\":1,\"command\":{\"op\":\"get_info\"}}\n";
    let timeout = libc::timeval {
        tv_sec: 20,
        tv_usec: 0,
    };
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) into a two-int array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: the child below only calls async-signal-safe functions and
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: raw system calls on data prepared before fork.
        unsafe {
            libc::close(read_end);
            if libc::setresuid(65534, 65534, 0) != 0 {
                libc::_exit(3);
            }
            libc::setfsuid(0);
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                libc::_exit(4);
            }
            if libc::connect(
                fd,
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            ) != 0
            {
                libc::_exit(5);
            }
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            libc::write(fd, request.as_ptr().cast(), request.len());
            let mut buf = [0u8; 4096];
            let mut total = 0usize;
            // Read until the daemon closes (bounded: 64 reads, each
            // bounded by the receive timeout).
            for _ in 0..64 {
                let n = libc::read(fd, buf.as_mut_ptr().add(total).cast(), buf.len() - total);
                if n <= 0 {
                    break;
                }
                total += n as usize;
                if total == buf.len() {
                    break;
                }
            }
            libc::write(write_end, buf.as_ptr().cast(), total);
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(write_end) };
    let mut out = Vec::new();
    {
        use std::io::Read;
        use std::os::fd::FromRawFd;
        // SAFETY: read_end is our open pipe end; File takes ownership.
        let mut pipe = unsafe { std::fs::File::from_raw_fd(read_end) };
        pipe.read_to_end(&mut out).unwrap();
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the non-root client failed (status {status:#x})"
    );
    out
}

#[test]
fn a_non_root_peer_is_refused_and_root_still_served() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test runs as root (as CI does)");
    let daemon = Daemon::start(None);
    let answer = talk_as_nobody(&daemon.socket);
    let text = String::from_utf8(answer).unwrap();
    let mut lines = text.lines();
    let first: Response = serde_json::from_str(lines.next().expect("one answer")).unwrap();
    assert_eq!(
        first,
        Response::Error {
            code: ErrorCode::PermissionDenied,
            message: "Permission denied (you must be root)".into()
        }
    );
    assert_eq!(lines.next(), None, "nothing else, then the daemon hung up");
    assert!(daemon.log_text().contains("uid 65534"));
    let mut root = daemon.client();
    assert!(matches!(
        root.request(Command::GetInfo),
        Response::Info { .. }
    ));
}
