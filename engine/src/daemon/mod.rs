//! `uvsd`, the director daemon: the control plane around the engine.
//!
//! [`run`] is the whole daemon, and `src/bin/uvsd.rs` only calls it. At
//! start it reads and validates the config file (errors as
//! `file:line:column`, exit 1), or starts with no services; chooses the
//! interfaces (`[engine] interfaces`, or else those the kernel routes the
//! virtual addresses and real servers over: [`netview::interfaces_for`]);
//! reads the kernel's network view ([`netview`]); builds the [`Engine`];
//! binds the control socket ([`control`]); locks the interfaces against
//! a second uvsd ([`lock`]); undoes what a killed predecessor left in the
//! kernel and prepares it for the backend ([`kernel`]); starts a packet
//! backend through [`start_backend`] (AF_XDP, falling back to TUN with
//! the reason logged; `[engine] umem_frames` and `tun_device`); and hands
//! everything to the control thread.
//!
//! That thread runs one mio event loop: control clients, signals
//! ([`signals`]), the 2 s rate estimator tick ([`estimator`]), neighbour
//! resolution every 100 ms ([`neighbours`]) and the periodic network
//! view refresh. Changes from clients and from SIGHUP go through
//! [`Controller::commit`] ([`commands`] for the ipvsadm semantics,
//! [`steering`] for what the backend must deliver). After each change
//! the loop makes the director answer ARP/NDP for the owned addresses
//! ([`kernel::KernelSetup::sync_addresses`]), has the kernel resolve the
//! real servers' MACs, and — when no interface is configured — attaches
//! to newly needed interfaces: live where the backend can (AF_XDP adds
//! the interface's program, sockets and workers beside the running
//! ones), else by restarting the backend on the larger set (the
//! connection table lives in the engine, so established connections
//! survive; with nothing configured uvsd starts idle and attaches when
//! the first service arrives). SIGTERM or SIGINT ends the
//! loop; the backend is shut down, every kernel change undone and the
//! socket file removed.
//!
//! `uvsd --decap` runs only the real-server decap role ([`decap`]).
//!
//! Logs go to stderr, one line per event ([`log`]); the packet path
//! never logs.

pub mod commands;
pub mod control;
pub mod controller;
pub mod decap;
pub mod estimator;
pub mod kernel;
pub mod lock;
pub mod log;
pub mod neighbours;
pub mod netview;
pub mod signals;
pub mod steering;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use mio::{Events, Poll, Token};
use uvs_conf::control::DEFAULT_SOCKET_PATH;
use uvs_conf::{Config, EngineSettings};

pub use controller::Controller;
pub use kernel::KernelSetup;

use crate::dest::DestRegistry;
use crate::engine::{Engine, DEST_REGISTRY_CAPACITY};
use crate::io::afxdp::{self, AfXdpConfig};
use crate::io::mem::MemBackend;
use crate::io::tun::{self, TunConfig};
use crate::io::{Backend, IoError, Steering};
use crate::route::NetView;
use crate::snapshot::Snapshot;

/// How often the network view is read again.
pub const NET_REFRESH: Duration = Duration::from_secs(10);
/// How soon it is read again after frames were dropped for want of a
/// route or neighbour.
pub const NET_REFRESH_ON_MISS: Duration = Duration::from_secs(1);

/// Command-line options of `uvsd`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "uvsd",
    version,
    about = "uvs director daemon: a userspace Linux Virtual Server",
    long_about = "uvs director daemon: a userspace Linux Virtual Server.\n\n\
        Reads FILE (TOML), balances the services it names, and serves uvsadm on a control \
        socket. SIGHUP re-reads FILE (a file with an error is refused and the running \
        configuration stays); SIGTERM or SIGINT shuts down cleanly.\n\n\
        On a TUN-mode real server, `uvsd --decap --vip VIP --director ADDR` runs only the \
        decap role."
)]
pub struct Options {
    /// Configuration file; without it uvsd starts with no services.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate FILE and exit: 0 when valid, 1 with its errors.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub check: Option<PathBuf>,
    /// Control socket path (its directory is created if missing).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET_PATH)]
    pub socket: PathBuf,
    /// Packet backend [default: afxdp, falling back to tun].
    #[arg(long, value_enum, value_name = "KIND")]
    pub backend: Option<BackendKind>,
    /// Run only the decap role of a TUN-mode real server (no engine, no
    /// control socket): needs --vip and --director.
    #[arg(long, conflicts_with_all = ["config", "check", "backend"], requires_all = ["vips", "directors"])]
    pub decap: bool,
    /// With --decap: a virtual address this real server answers for
    /// (repeat for more).
    #[arg(long = "vip", value_name = "ADDR", requires = "decap")]
    pub vips: Vec<IpAddr>,
    /// With --decap: a director whose tunnels are accepted (repeat for
    /// more); tunnels from any other source are dropped.
    #[arg(long = "director", value_name = "ADDR", requires = "decap")]
    pub directors: Vec<IpAddr>,
    /// With --decap: also receive GUE on this UDP port.
    #[arg(long, value_name = "PORT", requires = "decap")]
    pub gue_port: Option<u16>,
    /// With --decap: the TUN device holding the virtual addresses.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "uvsdecap0",
        requires = "decap"
    )]
    pub decap_device: String,
}

/// Which packet backend to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// AF_XDP sockets with the engine's own XDP program.
    Afxdp,
    /// A TUN device with policy routes.
    Tun,
    /// In memory, no traffic (tests, dry runs).
    Mem,
}

impl BackendKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Afxdp => "afxdp",
            BackendKind::Tun => "tun",
            BackendKind::Mem => "mem",
        }
    }
}

/// Start a backend of `kind` for `engine` on `interfaces` (in
/// [`crate::route::PortId`] order, as in the engine's network view):
/// the defaults of [`AfXdpConfig`] and [`TunConfig`] with `settings`'
/// `umem_frames` (rings sized to at most half of them) and `tun_device`.
pub fn start_backend(
    kind: BackendKind,
    engine: Arc<Engine>,
    interfaces: &[String],
    settings: &EngineSettings,
) -> Result<Box<dyn Backend>, IoError> {
    match kind {
        BackendKind::Mem => Ok(Box::new(MemBackend::new(engine, interfaces))),
        BackendKind::Afxdp => {
            let default = AfXdpConfig::default();
            let config = AfXdpConfig {
                interfaces: interfaces.to_vec(),
                frames: settings.umem_frames,
                ring_size: default.ring_size.min(settings.umem_frames / 2).max(1),
                ..default
            };
            Ok(Box::new(afxdp::start(engine, &config)?))
        }
        BackendKind::Tun => {
            let config = TunConfig {
                device: settings.tun_device.clone(),
                interfaces: interfaces.to_vec(),
                ..TunConfig::default()
            };
            Ok(Box::new(tun::start(engine, &config)?))
        }
    }
}

/// Prepare the kernel for `kind` and start it.
fn try_backend(
    kind: BackendKind,
    engine: &Arc<Engine>,
    interfaces: &[String],
    kernel: &mut KernelSetup,
    locks: &mut lock::Locks,
    settings: &EngineSettings,
) -> Result<Box<dyn Backend>, String> {
    if kind == BackendKind::Tun {
        locks.acquire(std::slice::from_ref(&settings.tun_device), "TUN device")?;
    }
    kernel.prepare(kind)?;
    start_backend(kind, Arc::clone(engine), interfaces, settings).map_err(|e| e.to_string())
}

/// The backend asked for, or AF_XDP falling back to TUN (the reason
/// logged).
fn choose_backend(
    asked: Option<BackendKind>,
    engine: &Arc<Engine>,
    interfaces: &[String],
    kernel: &mut KernelSetup,
    locks: &mut lock::Locks,
    settings: &EngineSettings,
) -> Result<(BackendKind, Box<dyn Backend>), String> {
    if let Some(kind) = asked {
        return try_backend(kind, engine, interfaces, kernel, locks, settings)
            .map(|backend| (kind, backend))
            .map_err(|e| format!("backend {}: {e}", kind.name()));
    }
    match try_backend(
        BackendKind::Afxdp,
        engine,
        interfaces,
        kernel,
        locks,
        settings,
    ) {
        Ok(backend) => Ok((BackendKind::Afxdp, backend)),
        Err(afxdp) => {
            log::warn(format_args!(
                "AF_XDP backend unavailable ({afxdp}); falling back to TUN"
            ));
            try_backend(
                BackendKind::Tun,
                engine,
                interfaces,
                kernel,
                locks,
                settings,
            )
            .map(|backend| (BackendKind::Tun, backend))
            .map_err(|tun| format!("no backend could start: afxdp: {afxdp}; tun: {tun}"))
        }
    }
}

/// The addresses the director must answer ARP/NDP for.
fn owned_addresses(steering: &Steering) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = steering
        .virtual_services
        .iter()
        .map(|&(_, addr, _)| addr)
        .chain(steering.fullnat_locals.iter().copied())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The addresses whose interfaces the director attaches to when the
/// config names none: virtual and full-NAT local addresses, real servers.
fn needed_addresses(config: &Config) -> Vec<IpAddr> {
    let mut out = steering::compute(config)
        .map(|s| owned_addresses(&s))
        .unwrap_or_default();
    out.extend(
        config
            .services
            .iter()
            .flat_map(|s| s.dests.iter().map(|d| d.addr)),
    );
    out.sort();
    out.dedup();
    out
}

/// The interfaces to attach at start: those the config names; else
/// (real backends) those routing to the configuration's addresses; the
/// in-memory backend takes every interface that is up.
fn initial_interfaces(config: &Config, asked: Option<BackendKind>) -> Result<Vec<String>, String> {
    let listed = if !config.engine.interfaces.is_empty() || asked == Some(BackendKind::Mem) {
        netview::choose_interfaces(&config.engine.interfaces)
    } else {
        netview::interfaces_for(&needed_addresses(config), &[TunConfig::default().device])
    };
    listed.map_err(|e| format!("cannot list network interfaces: {e}"))
}

/// The file recording kernel changes for the daemon on `socket`.
pub fn kernel_state_path(socket: &std::path::Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".kernel");
    PathBuf::from(name)
}

/// `--check FILE`: 0 when valid, 1 with every problem on stderr.
pub fn check(path: &std::path::Path) -> ExitCode {
    let config = match uvs_conf::load_config(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    // Build the snapshot too: a scheduler may refuse its real servers.
    let registry = DestRegistry::new(DEST_REGISTRY_CAPACITY);
    if let Err(e) = Snapshot::build(&config, None, &registry) {
        eprintln!("{}: {e}", path.display());
        return ExitCode::from(1);
    }
    println!(
        "{}: configuration is valid ({})",
        path.display(),
        controller::summary(&config)
    );
    ExitCode::SUCCESS
}

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);

/// Run the daemon until SIGTERM/SIGINT; the process exit code.
pub fn run(options: Options) -> ExitCode {
    if let Some(path) = &options.check {
        return check(path);
    }
    let result = if options.decap {
        decap::run(&decap::DecapOptions {
            vips: options.vips.clone(),
            directors: options.directors.clone(),
            gue_port: options.gue_port,
            device: options.decap_device.clone(),
        })
    } else {
        start(options)
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            log::error(message);
            ExitCode::from(1)
        }
    }
}

fn start(options: Options) -> Result<ExitCode, String> {
    // Catch signals first: a SIGTERM during start-up then stops us
    // cleanly once the loop runs.
    let mut signals = signals::install().map_err(|e| format!("cannot catch signals: {e}"))?;
    let config = match &options.config {
        Some(path) => uvs_conf::load_config(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    log::info(format_args!(
        "uvsd {} starting ({})",
        env!("CARGO_PKG_VERSION"),
        match &options.config {
            Some(path) => format!("config {}", path.display()),
            None => "no config file: starting with no services".to_string(),
        }
    ));
    let interfaces = initial_interfaces(&config, options.backend)?;
    let net = match netview::read(&interfaces) {
        Ok(net) => net,
        Err(e) => {
            log::warn(format_args!(
                "cannot read the network view ({e}); starting with none"
            ));
            NetView::default()
        }
    };
    let engine = Arc::new(Engine::new(&config, net.clone()).map_err(|e| e.to_string())?);
    let listener = control::bind(&options.socket).map_err(|e| e.to_string())?;
    let mut server = control::ControlServer::new(listener, options.socket.clone());
    let mut locks = lock::Locks::new();
    // The in-memory backend drives no interface: nothing to lock.
    let drives = options.backend != Some(BackendKind::Mem);
    let locked = if drives {
        locks.acquire(&interfaces, "interface")
    } else {
        Ok(())
    };
    if let Err(e) = locked {
        server.remove_socket();
        return Err(e);
    }
    let mut kernel = KernelSetup::new(kernel_state_path(&options.socket));
    let idle = interfaces.is_empty() && options.backend != Some(BackendKind::Mem);
    let chosen = if idle {
        log::info("no interface to attach to yet: waiting for a virtual service");
        Ok((
            BackendKind::Mem,
            Box::new(MemBackend::new(Arc::clone(&engine), &[])) as Box<dyn Backend>,
        ))
    } else {
        choose_backend(
            options.backend,
            &engine,
            &interfaces,
            &mut kernel,
            &mut locks,
            &config.engine,
        )
    };
    let (kind, backend) = match chosen {
        Ok(chosen) => chosen,
        Err(e) => {
            kernel.restore();
            server.remove_socket();
            return Err(e);
        }
    };
    if !idle {
        log_backend(backend.as_ref());
    }
    let controller = match Controller::new(config, options.config.clone(), engine, backend) {
        Ok(c) => c,
        Err(e) => {
            kernel.restore();
            server.remove_socket();
            return Err(e);
        }
    };
    let poll = match Poll::new().and_then(|poll| {
        server.register(poll.registry(), LISTENER)?;
        poll.registry()
            .register(&mut signals, SIGNALS, mio::Interest::READABLE)?;
        Ok(poll)
    }) {
        Ok(poll) => poll,
        Err(e) => {
            controller.backend().shutdown();
            kernel.restore();
            server.remove_socket();
            return Err(format!("cannot set up the event loop: {e}"));
        }
    };
    log::info(format_args!(
        "configuration applied: {}",
        controller::summary(controller.config())
    ));
    log::info(format_args!(
        "control socket {} ready",
        options.socket.display()
    ));
    let state = kernel.state_path().to_path_buf();
    let plane = Plane {
        controller,
        kernel,
        locks,
        asked: options.backend,
        kind,
        idle,
        interfaces,
        net,
    };
    let thread = std::thread::Builder::new()
        .name("uvsd-control".into())
        .spawn(move || serve(poll, server, signals, plane));
    let (plane, server) = match thread {
        Ok(handle) => match handle.join() {
            Ok(done) => done,
            Err(_) => {
                // The thread took its state with it; the socket file is
                // left to clean, and the kernel changes to the next start
                // (the state file lists them).
                let _ = std::fs::remove_file(&options.socket);
                return Err(format!(
                    "the control thread panicked; {} lists kernel changes left behind",
                    state.display()
                ));
            }
        },
        Err(e) => return Err(format!("cannot start the control thread: {e}")),
    };
    let Plane {
        controller,
        mut kernel,
        ..
    } = plane;
    controller.backend().shutdown();
    kernel.restore();
    server.remove_socket();
    log::info(controller::traffic_summary(controller.engine()));
    log::info("uvsd stopped");
    Ok(ExitCode::SUCCESS)
}

/// "backend af_xdp on out0, in1".
fn log_backend(backend: &dyn Backend) {
    let ports: Vec<String> = backend.ports().into_iter().map(|(_, n)| n).collect();
    log::info(format_args!(
        "backend {} on {}",
        backend.name(),
        if ports.is_empty() {
            "no interface".to_string()
        } else {
            ports.join(", ")
        }
    ));
}

/// What the control thread owns besides the socket and signals.
struct Plane {
    controller: Controller,
    kernel: KernelSetup,
    locks: lock::Locks,
    /// The backend asked for on the command line.
    asked: Option<BackendKind>,
    /// The backend running (`Mem` while idle).
    kind: BackendKind,
    /// No interface yet: a placeholder runs until a service needs one.
    idle: bool,
    /// Attached interfaces, in `PortId` order (only ever appended to).
    interfaces: Vec<String>,
    net: NetView,
}

impl Plane {
    /// When the config names no interface: the interfaces the running
    /// configuration needs that are not attached yet.
    fn missing_interfaces(&self) -> Vec<String> {
        let config = self.controller.config();
        if !config.engine.interfaces.is_empty() || self.asked == Some(BackendKind::Mem) {
            return Vec::new();
        }
        match netview::interfaces_for(&needed_addresses(config), &[TunConfig::default().device]) {
            Ok(needed) => needed
                .into_iter()
                .filter(|name| !self.interfaces.contains(name))
                .collect(),
            Err(e) => {
                log::warn(format_args!("cannot list network interfaces: {e}"));
                Vec::new()
            }
        }
    }

    /// Attach the interfaces `more` (appended: existing ports keep their
    /// ids). A running backend that can ([`Backend::add_interfaces`]:
    /// AF_XDP) adds them live, leaving the running interfaces alone, so
    /// established connections see no gap. Otherwise (TUN, the idle
    /// placeholder, or a live add that failed) the backend restarts on
    /// the larger set: the connection table lives in the engine, so
    /// established connections survive, but frames arriving during the
    /// restart go to the kernel (under AF_XDP, which holds the VIP on lo,
    /// that means RSTs).
    fn attach(&mut self, more: Vec<String>, net_error: &mut Option<String>) {
        if let Err(e) = self.locks.acquire(&more, "interface") {
            log::error(e);
            return;
        }
        if !self.idle {
            match self.controller.backend().add_interfaces(&more) {
                Ok(true) => {
                    log::info(format_args!(
                        "the configuration needs {}: attached without a restart",
                        more.join(", ")
                    ));
                    self.interfaces.extend(more);
                    // The engine routes to the new ports only now that
                    // they are served.
                    self.refresh(net_error);
                    log_backend(self.controller.backend());
                    return;
                }
                Ok(false) => {}
                Err(e) => log::warn(format_args!(
                    "cannot attach {} to the running backend ({e}); restarting it instead",
                    more.join(", ")
                )),
            }
        }
        log::info(format_args!(
            "the configuration needs {}: restarting the backend to attach",
            more.join(", ")
        ));
        // Shut the running backend down before the new one attaches (one
        // XDP program and one TUN device per interface/name).
        self.controller.backend().shutdown();
        self.interfaces.extend(more);
        self.refresh(net_error);
        let engine = Arc::clone(self.controller.engine());
        let settings = self.controller.config().engine.clone();
        let started = if self.idle {
            choose_backend(
                self.asked,
                &engine,
                &self.interfaces,
                &mut self.kernel,
                &mut self.locks,
                &settings,
            )
        } else {
            try_backend(
                self.kind,
                &engine,
                &self.interfaces,
                &mut self.kernel,
                &mut self.locks,
                &settings,
            )
            .map(|backend| (self.kind, backend))
        };
        match started {
            Ok((kind, backend)) => {
                log_backend(backend.as_ref());
                self.kind = kind;
                self.idle = false;
                if let Err(e) = self.controller.replace_backend(backend) {
                    log::error(e);
                }
            }
            Err(e) => {
                log::error(format_args!(
                    "cannot start the backend on {}: {e}; no traffic is served",
                    self.interfaces.join(", ")
                ));
                self.kind = BackendKind::Mem;
                self.idle = true;
                let placeholder = Box::new(MemBackend::new(engine, &[]));
                if let Err(e) = self.controller.replace_backend(placeholder) {
                    log::error(e);
                }
            }
        }
    }

    /// After a configuration change (and at start): attach to newly
    /// needed interfaces, answer ARP/NDP for the owned addresses, and
    /// resolve the real servers' neighbours.
    fn changed(&mut self, resolver: &mut neighbours::Resolver, net_error: &mut Option<String>) {
        let more = self.missing_interfaces();
        if !more.is_empty() {
            self.attach(more, net_error);
        }
        let owned = owned_addresses(self.controller.steering());
        self.kernel
            .sync_addresses(self.kind, &owned, &self.interfaces);
        resolver.want(
            neighbours::wanted(self.controller.config(), &self.net),
            &self.net,
            Instant::now(),
        );
    }

    /// Read the network view again and hand it to the engine.
    fn refresh(&mut self, net_error: &mut Option<String>) {
        if self.interfaces.is_empty() {
            return;
        }
        match netview::read(&self.interfaces) {
            Ok(view) => {
                self.net = view.clone();
                self.controller.engine().set_net(view);
                if net_error.take().is_some() {
                    log::info("network view readable again");
                }
            }
            Err(e) => {
                let message = e.to_string();
                if net_error.as_deref() != Some(message.as_str()) {
                    log::warn(format_args!("cannot refresh the network view: {message}"));
                    *net_error = Some(message);
                }
            }
        }
    }
}

/// The control thread's event loop: clients, signals, estimator ticks,
/// neighbour resolution and network refreshes, until a stop signal (or
/// a broken poll).
fn serve(
    mut poll: Poll,
    mut server: control::ControlServer,
    mut signals: signal_hook_mio::v1_0::Signals,
    mut plane: Plane,
) -> (Plane, control::ControlServer) {
    let tick = Duration::from_secs(estimator::TICK_SECS);
    let mut events = Events::with_capacity(256);
    let mut next_tick = Instant::now() + tick;
    let mut next_net = Instant::now() + NET_REFRESH;
    let mut next_miss = Instant::now() + neighbours::POLL;
    let mut net_error: Option<String> = None;
    // The in-memory backend sends nothing: no neighbour to resolve (and
    // no datagram to send from a test's host namespace).
    let mut resolver = neighbours::Resolver::new(plane.asked != Some(BackendKind::Mem));
    let mut generation = plane.controller.generation();
    plane.changed(&mut resolver, &mut net_error);
    loop {
        let now = Instant::now();
        let wake = next_tick.min(next_net).min(next_miss);
        let timeout = wake.saturating_duration_since(now);
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log::error(format_args!("event loop failed: {e}; shutting down"));
                return (plane, server);
            }
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => server.accept(poll.registry()),
                SIGNALS => {
                    for action in signals::pending(&mut signals) {
                        match action {
                            signals::SignalAction::Reload => {
                                log::info("SIGHUP: reloading the configuration");
                                plane.controller.reload();
                            }
                            signals::SignalAction::Stop(name) => {
                                log::info(format_args!("{name}: shutting down"));
                                return (plane, server);
                            }
                        }
                    }
                }
                token => server.ready(poll.registry(), token, &mut plane.controller),
            }
        }
        if plane.controller.generation() != generation {
            generation = plane.controller.generation();
            plane.changed(&mut resolver, &mut net_error);
        }
        let now = Instant::now();
        if now >= next_tick {
            plane.controller.tick();
            next_tick += tick;
            if next_tick <= now {
                // The loop fell behind (a long command): skip, don't burst.
                next_tick = now + tick;
            }
            if plane.controller.route_misses_grew() {
                next_net = next_net.min(now + NET_REFRESH_ON_MISS);
            }
        }
        if now >= next_miss {
            next_miss = now + neighbours::POLL;
            resolver.poll(plane.controller.engine(), &plane.net, now);
            if resolver.busy() {
                next_net = next_net.min(now + neighbours::POLL);
            }
        }
        if now >= next_net {
            next_net = now + NET_REFRESH;
            plane.refresh(&mut net_error);
            resolver.settle(&plane.net, now);
            if resolver.busy() {
                next_net = now + neighbours::POLL;
            }
        }
    }
}
