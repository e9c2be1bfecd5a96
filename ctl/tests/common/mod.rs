//! Shared test helpers: model builders, a fixed resolver, an in-process
//! runner, and a fake uvsd serving a Unix socket in a temporary directory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use uvs_conf::control::{
    Command, Counters, Rates, Request, Response, ServerStatus, ServiceSpec, ServiceStatus,
};
use uvs_conf::{DestConfig, ForwardMethod, Protocol, SchedFlags, SchedulerName, ServiceKey};
use uvs_ctl::client::{ClientError, Transport, UnixTransport};
use uvs_ctl::resolve::{parse_services, StaticResolver};
use uvs_ctl::run::Runner;

/// A services table and host table like a small /etc/services + /etc/hosts.
pub fn resolver() -> StaticResolver {
    StaticResolver::new(
        parse_services(
            "ssh 22/tcp\nhttp 80/tcp www\nhttp 80/udp\ndomain 53/tcp\ndomain 53/udp\nhttps 443/tcp\n",
        ),
        vec![
            ("localhost.localdomain".into(), "192.168.79.180".parse().unwrap()),
            ("web1.example.com".into(), "192.0.2.11".parse().unwrap()),
            (
                "a-very-long-host-name.cluster.example.com".into(),
                "192.0.2.99".parse().unwrap(),
            ),
        ],
    )
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

pub fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip(addr),
        port,
    }
}

pub fn spec(key: ServiceKey, scheduler: SchedulerName) -> ServiceSpec {
    ServiceSpec {
        key,
        scheduler,
        flags: SchedFlags::default(),
        persistence: None,
        persistence_engine: None,
        one_packet: false,
        fwmark_match: Vec::new(),
    }
}

pub fn service(spec: ServiceSpec, servers: Vec<ServerStatus>) -> ServiceStatus {
    ServiceStatus {
        spec,
        servers,
        counters: Counters::default(),
        rates: Rates::default(),
    }
}

pub fn dest(addr: &str, port: u16, method: ForwardMethod, weight: u32) -> DestConfig {
    DestConfig {
        addr: ip(addr),
        port,
        method,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

pub fn server(config: DestConfig) -> ServerStatus {
    ServerStatus {
        config,
        active_conns: 0,
        inactive_conns: 0,
        persistent_conns: 0,
        counters: Counters::default(),
        rates: Rates::default(),
    }
}

pub fn counters(
    conns: u64,
    in_pkts: u64,
    out_pkts: u64,
    in_bytes: u64,
    out_bytes: u64,
) -> Counters {
    Counters {
        conns,
        in_pkts,
        out_pkts,
        in_bytes,
        out_bytes,
    }
}

pub fn rates(cps: u64, in_pps: u64, out_pps: u64, in_bps: u64, out_bps: u64) -> Rates {
    Rates {
        cps,
        in_pps,
        out_pps,
        in_bps,
        out_bps,
    }
}

pub fn args(line: &str) -> Vec<String> {
    std::iter::once("uvsadm")
        .chain(line.split_whitespace())
        .map(str::to_string)
        .collect()
}

/// A transport answering from a closure and recording what it was sent.
pub struct ScriptedTransport<F: FnMut(&Command) -> Response> {
    pub sent: Vec<Command>,
    pub answer: F,
}

impl<F: FnMut(&Command) -> Response> Transport for ScriptedTransport<F> {
    fn request(&mut self, command: &Command) -> Result<Response, ClientError> {
        self.sent.push(command.clone());
        Ok((self.answer)(command))
    }
}

/// What one run printed and ended with.
#[derive(Debug)]
pub struct Outcome {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `uvsadm <line>` in-process against `transport`.
pub fn run_with(transport: &mut dyn Transport, argv: &[String], stdin: &str) -> Outcome {
    let resolver = resolver();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status = {
        let mut runner = Runner {
            prog: "uvsadm".into(),
            transport,
            resolver: &resolver,
            out: &mut out,
            err: &mut err,
        };
        runner.main(argv, &mut stdin.as_bytes())
    };
    Outcome {
        status,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

type Responder = Box<dyn FnMut(&Command) -> Response + Send>;

/// A fake uvsd: serves JSON lines on a Unix socket in its own temporary
/// directory, records every request, answers with `responder`. Stops and
/// removes its socket when dropped.
pub struct FakeUvsd {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// Clients accepted so far.
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeUvsd {
    pub fn start(responder: impl FnMut(&Command) -> Response + Send + 'static) -> FakeUvsd {
        FakeUvsd::start_with(Serving::KeepOpen, responder)
    }

    pub fn start_with(
        serving: Serving,
        responder: impl FnMut(&Command) -> Response + Send + 'static,
    ) -> FakeUvsd {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uvsd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let responder: Arc<Mutex<Responder>> = Arc::new(Mutex::new(Box::new(responder)));
        let thread = {
            let requests = requests.clone();
            let stop = stop.clone();
            let connections = connections.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (requests, responder) = (requests.clone(), responder.clone());
                    // One thread per client; it ends when the client hangs up.
                    std::thread::spawn(move || serve(conn, serving, &requests, &responder));
                }
            })
        };
        FakeUvsd {
            _dir: dir,
            path,
            requests,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    pub fn commands(&self) -> Vec<Command> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.command.clone())
            .collect()
    }

    pub fn transport(&self) -> UnixTransport {
        UnixTransport::new(&self.path)
    }
}

/// How the fake serves each client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// Answer every request on the connection.
    KeepOpen,
    /// Answer one request, then hang up.
    OneRequest,
    /// Read one request and hang up without answering.
    Mute,
}

fn serve(
    conn: UnixStream,
    serving: Serving,
    requests: &Mutex<Vec<Request>>,
    responder: &Mutex<Responder>,
) {
    let mut writer = conn.try_clone().unwrap();
    let reader = BufReader::new(conn);
    for line in reader.lines() {
        let Ok(line) = line else { return };
        if serving == Serving::Mute {
            return;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                let answer = (responder.lock().unwrap())(&request.command);
                requests.lock().unwrap().push(request);
                answer
            }
            Err(e) => Response::Error {
                code: uvs_conf::control::ErrorCode::Malformed,
                message: e.to_string(),
            },
        };
        let mut text = serde_json::to_string(&response).unwrap();
        text.push('\n');
        if writer.write_all(text.as_bytes()).is_err() || serving == Serving::OneRequest {
            return;
        }
    }
}

impl Drop for FakeUvsd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tiny stand-in for uvsd's table: applies commands as IPVS would
/// (real servers newest first, ipvsadm's error codes), answers listings.
#[derive(Debug, Default, Clone)]
pub struct FakeEngine {
    pub services: Vec<ServiceStatus>,
    pub timeouts: uvs_conf::Timeouts,
}

impl FakeEngine {
    pub fn apply(&mut self, command: &Command) -> Response {
        use uvs_conf::control::ErrorCode;
        let err = |code| Response::Error {
            code,
            message: String::new(),
        };
        let find = |services: &Vec<ServiceStatus>, key: &ServiceKey| {
            services.iter().position(|s| s.spec.key == *key)
        };
        match command {
            Command::AddService { service } => {
                if find(&self.services, &service.key).is_some() {
                    return err(ErrorCode::ServiceExists);
                }
                self.services.push(self::service(service.clone(), vec![]));
            }
            Command::EditService { service } => match find(&self.services, &service.key) {
                Some(i) => self.services[i].spec = service.clone(),
                None => return err(ErrorCode::NoService),
            },
            Command::DeleteService { key } => match find(&self.services, key) {
                Some(i) => {
                    self.services.remove(i);
                }
                None => return err(ErrorCode::NoService),
            },
            Command::Clear => self.services.clear(),
            Command::AddServer { service, server: d } => {
                let Some(i) = find(&self.services, service) else {
                    return err(ErrorCode::NoService);
                };
                let servers = &mut self.services[i].servers;
                if servers
                    .iter()
                    .any(|s| s.config.addr == d.addr && s.config.port == d.port)
                {
                    return err(ErrorCode::DestExists);
                }
                servers.insert(0, self::server(d.clone()));
            }
            Command::EditServer { service, server: d } => {
                let Some(i) = find(&self.services, service) else {
                    return err(ErrorCode::NoService);
                };
                match self.services[i]
                    .servers
                    .iter_mut()
                    .find(|s| s.config.addr == d.addr && s.config.port == d.port)
                {
                    Some(s) => s.config = d.clone(),
                    None => return err(ErrorCode::NoDest),
                }
            }
            Command::DeleteServer {
                service,
                addr,
                port,
            } => {
                let Some(i) = find(&self.services, service) else {
                    return err(ErrorCode::NoService);
                };
                let servers = &mut self.services[i].servers;
                match servers
                    .iter()
                    .position(|s| s.config.addr == *addr && s.config.port == *port)
                {
                    Some(j) => {
                        servers.remove(j);
                    }
                    None => return err(ErrorCode::NoDest),
                }
            }
            Command::Zero { service } => {
                if let Some(key) = service {
                    if find(&self.services, key).is_none() {
                        return err(ErrorCode::NoService);
                    }
                }
            }
            Command::SetTimeouts { tcp, tcp_fin, udp } => {
                if *tcp != 0 {
                    self.timeouts.tcp = *tcp;
                }
                if *tcp_fin != 0 {
                    self.timeouts.tcp_fin = *tcp_fin;
                }
                if *udp != 0 {
                    self.timeouts.udp = *udp;
                }
            }
            Command::StartDaemon { .. } | Command::StopDaemon { .. } => {
                return Response::Error {
                    code: ErrorCode::Invalid,
                    message: "connection sync is not implemented in uvsd yet".into(),
                }
            }
            Command::GetInfo => {
                return Response::Info {
                    version: "0.1.0".into(),
                    conn_table_size: 4096,
                }
            }
            Command::ListServices { service } => {
                let services = match service {
                    None => self.services.clone(),
                    Some(k) => match find(&self.services, k) {
                        Some(i) => vec![self.services[i].clone()],
                        None => return err(ErrorCode::NoService),
                    },
                };
                return Response::Services { services };
            }
            Command::ListConnections => {
                return Response::Connections {
                    connections: vec![],
                }
            }
            Command::GetTimeouts => {
                return Response::Timeouts {
                    timeouts: self.timeouts,
                }
            }
            Command::GetDaemons => return Response::Daemons { daemons: vec![] },
            Command::GetEngineStats => {
                return Response::EngineStats {
                    stats: Default::default(),
                }
            }
        }
        Response::Ok
    }
}

/// A transport over a [`FakeEngine`], recording the commands.
pub struct EngineTransport {
    pub engine: FakeEngine,
    pub sent: Vec<Command>,
}

impl EngineTransport {
    pub fn new() -> EngineTransport {
        EngineTransport {
            engine: FakeEngine::default(),
            sent: Vec::new(),
        }
    }
}

impl Transport for EngineTransport {
    fn request(&mut self, command: &Command) -> Result<Response, ClientError> {
        self.sent.push(command.clone());
        Ok(self.engine.apply(command))
    }
}
