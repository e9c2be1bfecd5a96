//! uvsadm against a fake uvsd on a real Unix socket (in a temporary
//! directory): the seed's DR, NAT and TUN director scripts send the right
//! commands and list the seed's shapes; engine errors print ipvsadm's
//! messages with status 255; listings that fail exit 1; an absent uvsd or
//! a refused caller gives one line and a non-zero status; the built
//! `uvsadm`, `uvsadm-save` and `uvsadm-restore` binaries do the same.

mod common;

use std::process::{Command as Process, Stdio};

use common::*;
use uvs_conf::control::{Command, ErrorCode, Response, ServiceSpec};
use uvs_conf::{DestConfig, ForwardMethod, SchedFlags, SchedulerName, TunnelCsum, TunnelType};

fn engine_uvsd() -> FakeUvsd {
    let mut engine = FakeEngine::default();
    FakeUvsd::start(move |c| engine.apply(c))
}

fn run_lines(fake: &FakeUvsd, lines: &[&str]) -> Vec<Outcome> {
    let mut transport = fake.transport();
    lines
        .iter()
        .map(|l| run_with(&mut transport, &args(l), ""))
        .collect()
}

fn rr(key: uvs_conf::ServiceKey) -> Command {
    Command::AddService {
        service: ServiceSpec {
            key,
            scheduler: SchedulerName::Rr,
            flags: SchedFlags::default(),
            persistence: None,
            persistence_engine: None,
            one_packet: false,
            fwmark_match: vec![],
        },
    }
}

fn add(vip: &str, rs: &str, method: ForwardMethod) -> Command {
    Command::AddServer {
        service: tcp(vip, 80),
        server: DestConfig {
            addr: ip(rs),
            port: 80,
            method,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        },
    }
}

#[test]
fn seed_dr_script() {
    let fake = engine_uvsd();
    // lvsDR_director_setup.sh's ipvsadm lines, then bare `ipvsadm`.
    let outcomes = run_lines(
        &fake,
        &[
            "-C",
            "-A -t 192.168.79.180:80 -s rr",
            "-a -t 192.168.79.180:80 -r 192.168.79.129 -g -w 1",
            "-a -t 192.168.79.180:80 -r 192.168.79.131 -g -w 1",
            "",
        ],
    );
    for o in &outcomes {
        assert_eq!((o.status, o.stderr.as_str()), (0, ""), "{o:?}");
    }
    let vip = "192.168.79.180";
    assert_eq!(
        fake.commands(),
        vec![
            Command::Clear,
            rr(tcp(vip, 80)),
            add(vip, "192.168.79.129", ForwardMethod::Dr),
            add(vip, "192.168.79.131", ForwardMethod::Dr),
            Command::GetInfo,
            Command::ListServices { service: None },
        ]
    );
    assert_eq!(
        outcomes[4].stdout,
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  localhost.localdomain:http rr
  -> 192.168.79.129:http          Route   1      0          0         
  -> 192.168.79.131:http          Route   1      0          0         
"
    );
}

#[test]
fn seed_nat_script() {
    let fake = engine_uvsd();
    let outcomes = run_lines(
        &fake,
        &[
            "-C",
            "-A -t 10.133.146.47:80 -s rr",
            "-a -t 10.133.146.47:80 -r 192.168.79.129:80 -m -w 1",
            "-a -t 10.133.146.47:80 -r 192.168.79.131:80 -m -w 1",
            "-Ln",
        ],
    );
    let vip = "10.133.146.47";
    assert_eq!(
        fake.commands()[..4],
        [
            Command::Clear,
            rr(tcp(vip, 80)),
            add(vip, "192.168.79.129", ForwardMethod::Nat),
            add(vip, "192.168.79.131", ForwardMethod::Nat),
        ]
    );
    assert_eq!(
        outcomes[4].stdout,
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.133.146.47:80 rr
  -> 192.168.79.129:80            Masq    1      0          0         
  -> 192.168.79.131:80            Masq    1      0          0         
"
    );
}

#[test]
fn seed_tun_script() {
    let fake = engine_uvsd();
    let outcomes = run_lines(
        &fake,
        &[
            "-C",
            "-A -t 192.168.79.180:80 -s rr",
            "-a -t 192.168.79.180:80 -r 192.168.79.129:80 -i -w 1",
            "-a -t 192.168.79.180:80 -r 192.168.79.131:80 -i -w 1",
            "-Ln",
        ],
    );
    let ipip = ForwardMethod::Tunnel {
        kind: TunnelType::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    assert_eq!(
        fake.commands()[2..4],
        [
            add("192.168.79.180", "192.168.79.129", ipip),
            add("192.168.79.180", "192.168.79.131", ipip),
        ]
    );
    assert!(outcomes[4]
        .stdout
        .ends_with("TCP  192.168.79.180:80 rr\n  -> 192.168.79.129:80            Tunnel  1      0          0         \n  -> 192.168.79.131:80            Tunnel  1      0          0         \n"));
}

#[test]
fn engine_errors_print_ipvsadm_messages_with_status_255() {
    let cases: &[(&str, ErrorCode, &str)] = &[
        (
            "-A -t 10.0.0.1:80",
            ErrorCode::ServiceExists,
            "Service already exists",
        ),
        (
            "-A -t 10.0.0.1:80",
            ErrorCode::SchedulerNotFound,
            "Scheduler or persistence engine not found",
        ),
        ("-E -t 10.0.0.1:80", ErrorCode::NoService, "No such service"),
        ("-D -t 10.0.0.1:80", ErrorCode::NoService, "No such service"),
        ("-Z -t 10.0.0.1:80", ErrorCode::NoService, "No such service"),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2",
            ErrorCode::NoService,
            "Service not defined",
        ),
        (
            "-e -t 10.0.0.1:80 -r 10.0.0.2",
            ErrorCode::NoService,
            "Service not defined",
        ),
        (
            "-d -t 10.0.0.1:80 -r 10.0.0.2",
            ErrorCode::NoService,
            "Service not defined",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2",
            ErrorCode::DestExists,
            "Destination already exists",
        ),
        (
            "-e -t 10.0.0.1:80 -r 10.0.0.2",
            ErrorCode::NoDest,
            "No such destination",
        ),
        (
            "-d -t 10.0.0.1:80 -r 10.0.0.2",
            ErrorCode::NoDest,
            "No such destination",
        ),
        (
            "--start-daemon master",
            ErrorCode::DaemonRunning,
            "Daemon has already run",
        ),
        (
            "--stop-daemon master",
            ErrorCode::NoDaemon,
            "No daemon is running",
        ),
        ("--set 1 2 3", ErrorCode::Invalid, "the daemon's own words"),
        ("-C", ErrorCode::Internal, "the daemon's own words"),
    ];
    for (line, code, expected) in cases {
        let code = *code;
        let fake = FakeUvsd::start(move |_| Response::Error {
            code,
            message: "the daemon's own words".into(),
        });
        let o = run_with(&mut fake.transport(), &args(line), "");
        assert_eq!(o.status, 255, "`{line}`");
        assert_eq!(o.stderr, format!("{expected}\n"), "`{line}`");
        assert_eq!(o.stdout, "");
    }
    // Refused before asking: an unknown scheduler, as the kernel would.
    let fake = engine_uvsd();
    let o = run_with(
        &mut fake.transport(),
        &args("-A -t 10.0.0.1:80 -s nosuch"),
        "",
    );
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (255, "Scheduler or persistence engine not found\n")
    );
    assert_eq!(fake.commands(), vec![Command::GetInfo]);
    // Without uvsd, that uvsd is missing is what is said.
    let dir = tempfile::tempdir().unwrap();
    let mut absent = uvs_ctl::client::UnixTransport::new(dir.path().join("absent.sock"));
    let o = run_with(&mut absent, &args("-A -t 10.0.0.1:80 -s nosuch"), "");
    assert_eq!(o.status, 2);
    assert!(o.stderr.contains("Is uvsd running?"), "{}", o.stderr);
}

#[test]
fn sync_daemon_is_reported_missing_not_silently_accepted() {
    let fake = engine_uvsd();
    let o = run_with(
        &mut fake.transport(),
        &args("--start-daemon master --mcast-interface eth1"),
        "",
    );
    assert_eq!(o.status, 255);
    assert_eq!(o.stderr, "connection sync is not implemented in uvsd yet\n");
    let o = run_with(&mut fake.transport(), &args("-L --daemon"), "");
    assert_eq!((o.status, o.stdout.as_str()), (0, ""));
}

#[test]
fn failing_listings_exit_1() {
    let fake = engine_uvsd();
    let o = run_with(&mut fake.transport(), &args("-L -n -t 10.0.0.1:80"), "");
    assert_eq!(
        (o.status, o.stderr.as_str(), o.stdout.as_str()),
        (1, "No such service\n", "")
    );
    let broken = FakeUvsd::start(|_| Response::Error {
        code: ErrorCode::Internal,
        message: "connection table unavailable".into(),
    });
    let o = run_with(&mut broken.transport(), &args("-Lnc"), "");
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (1, "connection table unavailable\n")
    );
    let o = run_with(&mut broken.transport(), &args("-L --timeout"), "");
    assert_eq!((o.status, o.stderr.as_str()), (1, ""));
    let o = run_with(&mut broken.transport(), &args("-L --daemon"), "");
    assert_eq!((o.status, o.stderr.as_str()), (1, ""));
    let o = run_with(&mut broken.transport(), &args("-S"), "");
    assert_eq!(o.status, 1);
    // -L prints its header before asking for the services, as ipvsadm.
    let half = FakeUvsd::start(|c| match c {
        Command::GetInfo => Response::Info {
            version: "0.1.0".into(),
            conn_table_size: 4096,
        },
        _ => Response::Error {
            code: ErrorCode::Internal,
            message: "table unavailable".into(),
        },
    });
    let o = run_with(&mut half.transport(), &args("-Ln"), "");
    assert_eq!(
        (o.status, o.stdout.as_str(), o.stderr.as_str()),
        (
            1,
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "table unavailable\n"
        )
    );
}

#[test]
fn listing_one_service_timeouts_and_json() {
    let fake = engine_uvsd();
    let mut t = fake.transport();
    run_with(&mut t, &args("-A -u 10.0.0.1:53 -s wrr"), "");
    run_with(&mut t, &args("-a -u 10.0.0.1:53 -r 10.0.0.2 -m -w 3"), "");
    run_with(&mut t, &args("--set 0 60 0"), "");
    let o = run_with(&mut t, &args("-L -n -u 10.0.0.1:53"), "");
    assert_eq!(
        o.stdout,
        "Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  10.0.0.1:53 wrr
  -> 10.0.0.2:53                  Masq    3      0          0         
"
    );
    let o = run_with(&mut t, &args("-L --timeout"), "");
    assert_eq!(o.stdout, "Timeout (tcp tcpfin udp): 900 60 300\n");
    let o = run_with(&mut t, &args("-Ln --json"), "");
    assert_eq!(o.status, 0);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["conn_table_size"], 4096);
    assert_eq!(v["services"][0]["servers"][0]["config"]["weight"], 3);
    for line in [
        "-L -c --json",
        "-L --timeout --json",
        "-L --daemon --json",
        "-L -u 10.0.0.1:53 --json",
    ] {
        let o = run_with(&mut t, &args(line), "");
        assert_eq!(o.status, 0, "{line}");
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        assert!(v.is_object(), "{line}");
    }
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(
            &run_with(&mut t, &args("-L --timeout --json"), "").stdout
        )
        .unwrap()["timeouts"]["tcp_fin"],
        60
    );
}

#[test]
fn absent_uvsd_or_refused_caller_gives_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = uvs_ctl::client::UnixTransport::new(dir.path().join("nothing.sock"));
    let o = run_with(&mut t, &args("-Ln"), "");
    assert_eq!(o.status, 2);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(o.stderr.contains("Is uvsd running?"), "{}", o.stderr);
    assert!(o.stderr.contains("nothing.sock"), "{}", o.stderr);
    // A restore stops at once.
    let o = run_with(&mut t, &args("-R"), "-C\n-C\n");
    assert_eq!((o.status, o.stderr.lines().count()), (2, 1));

    let denied = FakeUvsd::start(|_| Response::Error {
        code: ErrorCode::PermissionDenied,
        message: "peer uid 1000 is not root".into(),
    });
    let o = run_with(&mut denied.transport(), &args("-C"), "");
    assert_eq!(o.status, 2);
    assert_eq!(o.stderr.lines().count(), 1);
    assert!(
        o.stderr
            .starts_with("uvsadm: Permission denied (you must be root)"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_restore_uses_one_connection_and_sends_each_line() {
    let fake = engine_uvsd();
    let mut t = fake.transport();
    let o = run_with(
        &mut t,
        &args("-R"),
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2 -m\n-a -t 10.0.0.1:80 -r 10.0.0.3 -m\n",
    );
    assert_eq!(o.status, 0);
    assert_eq!(fake.commands().len(), 3);
    drop(t);
    assert_eq!(
        fake.connections.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

fn bin(name: &str) -> Process {
    let path = match name {
        "uvsadm" => env!("CARGO_BIN_EXE_uvsadm"),
        "uvsadm-save" => env!("CARGO_BIN_EXE_uvsadm-save"),
        _ => env!("CARGO_BIN_EXE_uvsadm-restore"),
    };
    Process::new(path)
}

fn exec(name: &str, socket: &std::path::Path, argv: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = bin(name)
        .args(argv)
        .env("UVS_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_binaries_against_a_fake_uvsd() {
    let fake = engine_uvsd();
    let p = fake.path.as_path();
    assert_eq!(
        exec("uvsadm", p, &["-A", "-t", "10.0.0.1:80", "-s", "rr"], "").0,
        0
    );
    assert_eq!(
        exec(
            "uvsadm",
            p,
            &["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:8080", "-m"],
            ""
        )
        .0,
        0
    );
    let (status, _, err) = exec("uvsadm", p, &["-A", "-t", "10.0.0.1:80"], "");
    assert_eq!((status, err.as_str()), (255, "Service already exists\n"));
    let (status, _, err) = exec("uvsadm", p, &["-A", "-t", "10.0.0.1"], "");
    assert_eq!(
        (status, err.as_str()),
        (2, "Zero port specified for non-persistent service\n")
    );
    let (status, _, err) = exec("uvsadm", p, &["-n"], "");
    assert_eq!(status, 255);
    assert!(
        err.starts_with("Try `") && err.ends_with("' for more information.\n"),
        "{err}"
    );
    let (status, out, _) = exec("uvsadm", p, &["-Ln"], "");
    assert_eq!(status, 0);
    assert!(out.ends_with("TCP  10.0.0.1:80 rr\n  -> 10.0.0.2:8080                Masq    1      0          0         \n"), "{out}");
    let (status, saved, _) = exec("uvsadm-save", p, &["-n"], "");
    assert_eq!(status, 0);
    assert_eq!(
        saved,
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 1\n"
    );
    let (status, _, err) = exec("uvsadm-restore", p, &[], &format!("# comment\n{saved}"));
    assert_eq!((status, err.as_str()), (0, ""));
    assert_eq!(exec("uvsadm", p, &["-S", "-n"], "").1, saved);
    let (status, out, _) = exec("uvsadm", p, &["-h"], "");
    assert_eq!(status, 0);
    assert!(
        out.contains("Usage:\n") && out.contains(" -A|E virtual-service [-s scheduler]"),
        "{out}"
    );
    let (status, out, _) = exec("uvsadm", p, &["-v"], "");
    assert_eq!(status, 0);
    assert!(out.starts_with("uvsadm v") && out.contains("uvsd"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.sock");
    let (status, out, err) = exec("uvsadm", &absent, &["-Ln"], "");
    assert_eq!((status, out.as_str(), err.lines().count()), (2, "", 1));
    // Parse errors and help do not need uvsd.
    assert_eq!(exec("uvsadm", &absent, &["-A", "-t", "10.0.0.1"], "").0, 2);
    assert_eq!(exec("uvsadm", &absent, &["-h"], "").0, 0);
}

#[test]
fn a_caller_the_socket_refuses_gets_one_line() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let fake = engine_uvsd();
    let dir = fake.path.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // uvsd's socket is root's, mode 0600: another user cannot connect.
    // Not being root here, make the socket refuse its own owner instead.
    let mode = if root { 0o600 } else { 0o000 };
    std::fs::set_permissions(&fake.path, std::fs::Permissions::from_mode(mode)).unwrap();
    // A copy of the binary the other user can surely reach and run.
    let exe = dir.join("uvsadm");
    std::fs::copy(env!("CARGO_BIN_EXE_uvsadm"), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Process::new(&exe);
    if root {
        cmd.uid(65534).gid(65534);
    }
    let out = cmd
        .args(["-Ln"])
        .env("UVS_SOCKET", &fake.path)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("Permission denied (you must be root)"),
        "{err}"
    );
    assert!(fake.commands().is_empty());
}

#[test]
fn a_uvsd_that_hangs_up_between_requests_is_reconnected() {
    let mut engine = FakeEngine::default();
    let fake = FakeUvsd::start_with(Serving::OneRequest, move |c| engine.apply(c));
    let mut t = fake.transport();
    let o = run_with(
        &mut t,
        &args("-R"),
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2 -m\n-Ln\n",
    );
    assert_eq!((o.status, o.stderr.as_str()), (0, ""));
    assert!(o.stdout.contains("  -> 10.0.0.2:80"), "{}", o.stdout);
    assert_eq!(fake.commands().len(), 4);
}

#[test]
fn a_uvsd_that_never_answers_gives_one_line() {
    let fake = FakeUvsd::start_with(Serving::Mute, |_| Response::Ok);
    let o = run_with(&mut fake.transport(), &args("-C"), "");
    assert_eq!(o.status, 2);
    assert_eq!(o.stderr.lines().count(), 1);
    assert!(
        o.stderr.contains("closed the connection without answering"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_refusal_sent_before_uvsd_hangs_up_is_read_even_though_our_request_bounced() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    // uvsd refuses a non-root peer at accept: it writes the refusal and
    // closes before our request arrives, so sending fails with EPIPE. The
    // refusal is still queued on our side and must be what we report.
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut theirs = theirs;
    let refusal = Response::Error {
        code: ErrorCode::PermissionDenied,
        message: "Permission denied (you must be root)".into(),
    };
    let mut line = serde_json::to_string(&refusal).unwrap();
    line.push('\n');
    theirs.write_all(line.as_bytes()).unwrap();
    drop(theirs);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sock");
    use uvs_ctl::client::Transport;
    let mut transport = uvs_ctl::client::UnixTransport::from_stream(&path, ours).unwrap();
    let err = transport.request(&Command::Clear).unwrap_err();
    assert!(
        matches!(err, uvs_ctl::client::ClientError::PermissionDenied { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("you must be root"), "{err}");
}
