//! The control plane's state and the answer to every control command.
//!
//! A [`Controller`] owns the running [`Config`], the [`Engine`] it was
//! applied to, the backend and the statistics. Every change follows one
//! path, whatever asked for it (a control command or SIGHUP): build the
//! next configuration, check it with the config file's rules, compute
//! its [`Steering`], tell the backend to steer that
//! traffic, swap the engine's snapshot ([`Engine::apply`]), and only
//! then make it the running configuration. Any failure leaves the
//! running configuration as it was (the backend is steered back).
//!
//! The controller lives on the control thread; nothing here runs per
//! packet.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use uvs_conf::control::{
    Command, ConnectionStatus, EngineStats, ErrorCode, PeData, Response, ServerStatus, ServiceSpec,
    ServiceStatus,
};
use uvs_conf::{Config, DestConfig, ServiceKey};

use super::commands::{self, CommandError};
use super::estimator::Stats;
use super::{log, steering};
use crate::engine::{DropReason, Engine};
use crate::io::{Backend, Steering};
use crate::time::Millis;

/// What `--start-daemon` and `--stop-daemon` answer until connection
/// sync exists.
pub const SYNC_NOT_IMPLEMENTED: &str = "connection sync is not implemented in uvsd yet";

/// The control plane of a running uvsd.
#[derive(Debug)]
pub struct Controller {
    config: Config,
    config_path: Option<PathBuf>,
    engine: Arc<Engine>,
    backend: Box<dyn Backend>,
    steering: Steering,
    stats: Stats,
    route_misses: u64,
    generation: u64,
}

impl Controller {
    /// Take charge of `engine` (already built from `config`) and
    /// `backend`: steer the configuration's traffic to the engine.
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        engine: Arc<Engine>,
        backend: Box<dyn Backend>,
    ) -> Result<Controller, String> {
        let steering = steering::compute(&config).map_err(|e| e.to_string())?;
        backend
            .steer(&steering)
            .map_err(|e| format!("backend {}: cannot steer traffic: {e}", backend.name()))?;
        let mut stats = Stats::new();
        stats.sync(&engine.snapshot());
        Ok(Controller {
            config,
            config_path,
            engine,
            backend,
            steering,
            stats,
            route_misses: 0,
            generation: 0,
        })
    }

    /// The running configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the backend is steered to deliver now.
    pub fn steering(&self) -> &Steering {
        &self.steering
    }

    /// Counts committed changes: differs after every change to the
    /// running configuration.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Put `backend` in place of the running one (shut down first) and
    /// steer it to the running configuration's traffic.
    pub fn replace_backend(&mut self, backend: Box<dyn Backend>) -> Result<(), String> {
        let old = std::mem::replace(&mut self.backend, backend);
        old.shutdown();
        self.backend
            .steer(&self.steering)
            .map_err(|e| format!("backend {}: cannot steer traffic: {e}", self.backend.name()))
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Make `next` the running configuration, or change nothing.
    pub fn commit(&mut self, next: Config) -> Result<(), CommandError> {
        commands::check(&next)?;
        let steering =
            steering::compute(&next).map_err(|e| CommandError::invalid(e.to_string()))?;
        if steering != self.steering {
            self.backend.steer(&steering).map_err(|e| CommandError {
                code: ErrorCode::Internal,
                message: format!("backend {}: cannot steer traffic: {e}", self.backend.name()),
            })?;
        }
        if let Err(e) = self.engine.apply(&next) {
            if steering != self.steering {
                if let Err(back) = self.backend.steer(&self.steering) {
                    log::error(format_args!(
                        "backend {}: cannot steer back to the running configuration: {back}",
                        self.backend.name()
                    ));
                }
            }
            return Err(CommandError::invalid(e.to_string()));
        }
        self.steering = steering;
        self.config = next;
        self.generation += 1;
        self.stats.sync(&self.engine.snapshot());
        Ok(())
    }

    /// Answer one control command.
    pub fn handle(&mut self, command: Command) -> Response {
        match self.answer(command) {
            Ok(response) => response,
            Err(e) => Response::Error {
                code: e.code,
                message: e.message,
            },
        }
    }

    fn answer(&mut self, command: Command) -> Result<Response, CommandError> {
        if commands::is_change(&command) {
            let next = commands::edit(&self.config, &command)?;
            self.commit(next)?;
            log::info(format_args!("applied {}", describe(&command)));
            return Ok(Response::Ok);
        }
        match command {
            Command::Zero { service } => {
                let snapshot = self.engine.snapshot();
                if !self.stats.zero(&snapshot, service.as_ref()) {
                    return Err(CommandError::new(ErrorCode::NoService, ""));
                }
                Ok(Response::Ok)
            }
            Command::StartDaemon { .. } | Command::StopDaemon { .. } => Err(CommandError {
                code: ErrorCode::Internal,
                message: SYNC_NOT_IMPLEMENTED.to_string(),
            }),
            Command::GetDaemons => Ok(Response::Daemons {
                daemons: Vec::new(),
            }),
            Command::GetInfo => Ok(Response::Info {
                version: env!("CARGO_PKG_VERSION").to_string(),
                conn_table_size: 1u32 << self.config.engine.conn_tab_bits.min(31),
            }),
            Command::GetTimeouts => Ok(Response::Timeouts {
                timeouts: self.config.timeouts,
            }),
            Command::ListServices { service } => self.list_services(service.as_ref()),
            Command::ListConnections => Ok(self.list_connections()),
            Command::GetEngineStats => Ok(Response::EngineStats {
                stats: engine_stats(&self.engine),
            }),
            // Changes were handled above.
            _ => Ok(Response::Ok),
        }
    }

    fn list_services(&self, only: Option<&ServiceKey>) -> Result<Response, CommandError> {
        let snapshot = self.engine.snapshot();
        let mut services = Vec::new();
        for svc in snapshot.services() {
            if only.is_some_and(|k| *k != svc.key) {
                continue;
            }
            let fwmark_match = self
                .config
                .services
                .iter()
                .find(|s| s.key == svc.key)
                .map(|s| s.fwmark_match.clone())
                .unwrap_or_default();
            let servers = svc
                .dests
                .iter()
                .map(|d| {
                    let (counters, rates) = self.stats.dest(d.id, &d.counters);
                    ServerStatus {
                        config: DestConfig {
                            addr: d.addr,
                            port: d.port,
                            method: d.method,
                            weight: d.weight,
                            u_threshold: d.u_threshold,
                            l_threshold: d.l_threshold,
                        },
                        active_conns: d.counters.active(),
                        inactive_conns: d.counters.inactive(),
                        persistent_conns: d.counters.persistent(),
                        counters,
                        rates,
                    }
                })
                .collect();
            let (counters, rates) = self.stats.service(&svc.key, &svc.stats);
            services.push(ServiceStatus {
                spec: ServiceSpec {
                    key: svc.key,
                    scheduler: svc.scheduler_name,
                    flags: svc.flags,
                    persistence: svc.persistence,
                    persistence_engine: svc.persistence_engine,
                    one_packet: svc.one_packet,
                    fwmark_match,
                },
                servers,
                counters,
                rates,
            });
        }
        if only.is_some() && services.is_empty() {
            return Err(CommandError::new(ErrorCode::NoService, ""));
        }
        Ok(Response::Services { services })
    }

    fn list_connections(&self) -> Response {
        let mut connections = Vec::new();
        self.engine.conns().for_each(Millis::now(), |entry| {
            let info = &entry.info;
            connections.push(ConnectionStatus {
                protocol: info.key.protocol,
                client: info.key.caddr,
                client_port: info.key.cport,
                virtual_addr: if info.template && info.fwmark != 0 {
                    IpAddr::V4(Ipv4Addr::from(info.fwmark))
                } else {
                    info.key.vaddr
                },
                virtual_port: info.key.vport,
                server: info.daddr,
                server_port: info.dport,
                state: entry.state_name.to_string(),
                expires_secs: u32::try_from(entry.remaining_ms / 1000).unwrap_or(u32::MAX),
                template: info.template,
                pe: entry.pe_data.as_ref().map(|pe| PeData {
                    name: pe.engine.as_str().to_string(),
                    data: String::from_utf8_lossy(pe.data()).into_owned(),
                }),
            });
        });
        Response::Connections { connections }
    }

    /// SIGHUP: read the config file again and apply it whole, or keep
    /// the running configuration and log why.
    pub fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            log::warn("SIGHUP: uvsd was started without --config; nothing to reload");
            return;
        };
        let next = match uvs_conf::load_config(&path) {
            Ok(next) => next,
            Err(e) => {
                log::error(format_args!("reload refused, running configuration kept:"));
                log::error(e);
                return;
            }
        };
        if next.engine != self.config.engine {
            log::warn(format_args!(
                "{}: [engine] settings changed; they take effect when uvsd restarts",
                path.display()
            ));
        }
        let mut next = next;
        // Engine settings belong to the running process until restart.
        next.engine = self.config.engine.clone();
        match self.commit(next) {
            Ok(()) => log::info(format_args!(
                "reloaded {}: configuration applied, {}",
                path.display(),
                summary(&self.config)
            )),
            Err(e) => log::error(format_args!(
                "reload of {} refused, running configuration kept: {}",
                path.display(),
                e.message
            )),
        }
    }

    /// One estimator tick (every [`super::estimator::TICK_SECS`]).
    pub fn tick(&mut self) {
        self.stats.tick(&self.engine.snapshot());
    }

    /// Frames dropped so far for want of a route or a neighbour; when
    /// this grows, the network view is refreshed sooner.
    pub fn route_misses_grew(&mut self) -> bool {
        let counters = self.engine.counters();
        let now = counters.drops(DropReason::NoRoute) + counters.drops(DropReason::NoNeighbour);
        let grew = now != self.route_misses;
        self.route_misses = now;
        grew
    }
}

/// "2 services, 3 real servers".
pub fn summary(config: &Config) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(config.services.len(), "service"),
        plural(
            config.services.iter().map(|s| s.dests.len()).sum(),
            "real server"
        )
    )
}

/// The engine's counters as the control protocol reports them; every
/// drop reason is listed, zero or not.
pub fn engine_stats(engine: &Engine) -> EngineStats {
    use std::sync::atomic::Ordering;
    let c = engine.counters();
    let table = engine.conns().stats();
    EngineStats {
        forwarded: c.forwarded.load(Ordering::Relaxed),
        passed: c.passed.load(Ordering::Relaxed),
        icmp_sent: c.icmp_sent.load(Ordering::Relaxed),
        new_conns: c.new_conns.load(Ordering::Relaxed),
        drops: DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), c.drops(*r)))
            .collect(),
        conn_entries: table.entries,
        conn_capacity: engine.conns().capacity() as u64,
        conn_table_full: table.full_drops,
        sip_call_id_too_long: engine.conns().pe_stats().call_id_too_long,
        pe_arena_full: engine.conns().pe_stats().arena_full,
    }
}

/// Engine-wide frame counters as one log line, drops by reason.
pub fn traffic_summary(engine: &Engine) -> String {
    let s = engine_stats(engine);
    let mut line = format!(
        "frames forwarded {}, passed to the kernel {}, ICMP errors sent {}, new connections {}",
        s.forwarded, s.passed, s.icmp_sent, s.new_conns
    );
    let drops: Vec<String> = s
        .drops
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if drops.is_empty() {
        line.push_str("; no drops");
    } else {
        line.push_str("; dropped: ");
        line.push_str(&drops.join(", "));
    }
    line
}

/// A command as a log line ("add service TCP 192.0.2.1:80").
fn describe(command: &Command) -> String {
    use crate::snapshot::service_name;
    let name = |k: &ServiceKey| service_name(k).replace("  ", " ");
    match command {
        Command::AddService { service } => format!("add service {}", name(&service.key)),
        Command::EditService { service } => format!("edit service {}", name(&service.key)),
        Command::DeleteService { key } => format!("delete service {}", name(key)),
        Command::Clear => "clear (all services deleted)".to_string(),
        Command::AddServer { service, server } => format!(
            "add real server {} to {}",
            std::net::SocketAddr::new(server.addr, server.port),
            name(service)
        ),
        Command::EditServer { service, server } => format!(
            "edit real server {} of {}",
            std::net::SocketAddr::new(server.addr, server.port),
            name(service)
        ),
        Command::DeleteServer {
            service,
            addr,
            port,
        } => format!(
            "delete real server {} from {}",
            std::net::SocketAddr::new(*addr, *port),
            name(service)
        ),
        Command::SetTimeouts { tcp, tcp_fin, udp } => {
            format!("set timeouts tcp {tcp} tcpfin {tcp_fin} udp {udp} (0 = unchanged)")
        }
        other => format!("{other:?}"),
    }
}
