//! Control commands that change the configuration, applied to a
//! [`Config`] with ipvsadm's semantics and error codes.
//!
//! [`edit`] is pure: it takes the running configuration and one
//! [`Command`] and returns the configuration the command asks for, or the
//! error IPVS would give (`ServiceExists`, `NoService`, `DestExists`,
//! `NoDest`). It does not validate the result: the caller checks it with
//! [`Config::validate`] (the same rules as the config file) and applies
//! it atomically, or changes nothing. As with ipvsadm, `-E` and `-e`
//! carry a full record: fields the operator omitted come back at their
//! defaults. Commands that read or do not touch the configuration
//! ([`is_change`] is false) are answered elsewhere.

use uvs_conf::control::{Command, ErrorCode, ServiceSpec};
use uvs_conf::{Config, ModelError, ModelErrorKind, ServiceConfig, ServiceKey};

use crate::snapshot::service_name;

/// A refused command: the code and a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// Which error.
    pub code: ErrorCode,
    /// What to tell the operator.
    pub message: String,
}

impl CommandError {
    /// An error with ipvsadm's message for `code` (or `fallback` where
    /// ipvsadm has none).
    pub fn new(code: ErrorCode, fallback: impl Into<String>) -> CommandError {
        CommandError {
            code,
            message: code
                .ipvsadm_message()
                .map(str::to_string)
                .unwrap_or_else(|| fallback.into()),
        }
    }

    /// An [`ErrorCode::Invalid`] error with `message`.
    pub fn invalid(message: impl Into<String>) -> CommandError {
        CommandError {
            code: ErrorCode::Invalid,
            message: message.into(),
        }
    }
}

/// Whether `command` changes the configuration (and so goes through
/// [`edit`]).
pub fn is_change(command: &Command) -> bool {
    matches!(
        command,
        Command::AddService { .. }
            | Command::EditService { .. }
            | Command::DeleteService { .. }
            | Command::Clear
            | Command::AddServer { .. }
            | Command::EditServer { .. }
            | Command::DeleteServer { .. }
            | Command::SetTimeouts { .. }
    )
}

fn find_service(config: &Config, key: &ServiceKey) -> Result<usize, CommandError> {
    config
        .services
        .iter()
        .position(|s| s.key == *key)
        .ok_or_else(|| CommandError::new(ErrorCode::NoService, "No such service"))
}

fn apply_spec(service: &mut ServiceConfig, spec: &ServiceSpec) {
    service.scheduler = spec.scheduler;
    service.flags = spec.flags;
    service.persistence = spec.persistence;
    service.persistence_engine = spec.persistence_engine;
    service.one_packet = spec.one_packet;
    if !spec.fwmark_match.is_empty() {
        service.fwmark_match = spec.fwmark_match.clone();
    }
}

/// The configuration after `command`. Commands that are not changes
/// ([`is_change`] false) return `config` unchanged.
pub fn edit(config: &Config, command: &Command) -> Result<Config, CommandError> {
    let mut next = config.clone();
    match command {
        Command::AddService { service: spec } => {
            if next.services.iter().any(|s| s.key == spec.key) {
                return Err(CommandError::new(ErrorCode::ServiceExists, ""));
            }
            let mut service = ServiceConfig {
                key: spec.key,
                scheduler: spec.scheduler,
                flags: spec.flags,
                persistence: spec.persistence,
                persistence_engine: spec.persistence_engine,
                one_packet: spec.one_packet,
                fwmark_match: Vec::new(),
                dests: Vec::new(),
            };
            apply_spec(&mut service, spec);
            next.services.push(service);
        }
        Command::EditService { service: spec } => {
            let index = find_service(&next, &spec.key)?;
            if let Some(service) = next.services.get_mut(index) {
                apply_spec(service, spec);
            }
        }
        Command::DeleteService { key } => {
            let index = find_service(&next, key)?;
            next.services.remove(index);
        }
        Command::Clear => next.services.clear(),
        Command::AddServer { service, server } => {
            let index = find_service(&next, service)?;
            if let Some(svc) = next.services.get_mut(index) {
                if svc
                    .dests
                    .iter()
                    .any(|d| d.addr == server.addr && d.port == server.port)
                {
                    return Err(CommandError::new(ErrorCode::DestExists, ""));
                }
                svc.dests.push(server.clone());
            }
        }
        Command::EditServer { service, server } => {
            let index = find_service(&next, service)?;
            if let Some(svc) = next.services.get_mut(index) {
                let dest = svc
                    .dests
                    .iter_mut()
                    .find(|d| d.addr == server.addr && d.port == server.port)
                    .ok_or_else(|| CommandError::new(ErrorCode::NoDest, ""))?;
                *dest = server.clone();
            }
        }
        Command::DeleteServer {
            service,
            addr,
            port,
        } => {
            let index = find_service(&next, service)?;
            if let Some(svc) = next.services.get_mut(index) {
                let at = svc
                    .dests
                    .iter()
                    .position(|d| d.addr == *addr && d.port == *port)
                    .ok_or_else(|| CommandError::new(ErrorCode::NoDest, ""))?;
                svc.dests.remove(at);
            }
        }
        Command::SetTimeouts { tcp, tcp_fin, udp } => {
            for (value, slot) in [
                (*tcp, &mut next.timeouts.tcp),
                (*tcp_fin, &mut next.timeouts.tcp_fin),
                (*udp, &mut next.timeouts.udp),
            ] {
                if value != 0 {
                    *slot = value;
                }
            }
        }
        Command::Zero { .. }
        | Command::StartDaemon { .. }
        | Command::StopDaemon { .. }
        | Command::GetInfo
        | Command::ListServices { .. }
        | Command::ListConnections
        | Command::GetTimeouts
        | Command::GetDaemons
        | Command::GetEngineStats => {}
    }
    Ok(next)
}

/// Check `config` with the config file's rules; a problem becomes the
/// error ipvsadm would report (duplicates as `ServiceExists` /
/// `DestExists`), else [`ErrorCode::Invalid`] with the rule's message
/// naming the service.
pub fn check(config: &Config) -> Result<(), CommandError> {
    config.validate().map_err(|e| model_error(config, &e))
}

fn model_error(config: &Config, error: &ModelError) -> CommandError {
    match error.kind {
        ModelErrorKind::DuplicateService => CommandError::new(ErrorCode::ServiceExists, ""),
        ModelErrorKind::DuplicateDest => CommandError::new(ErrorCode::DestExists, ""),
        _ => {
            let service = match error.place {
                uvs_conf::Place::Service { service, .. }
                | uvs_conf::Place::Match { service, .. }
                | uvs_conf::Place::Dest { service, .. } => config.services.get(service),
                _ => None,
            };
            match service {
                Some(s) => CommandError::invalid(format!(
                    "{}: {}",
                    service_name(&s.key).replace("  ", " "),
                    error.kind
                )),
                None => CommandError::invalid(error.kind.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use uvs_conf::{
        DestConfig, ForwardMethod, Persistence, Protocol, SchedFlags, SchedulerName, Timeouts,
    };

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: "192.0.2.100".parse().unwrap(),
            port,
        }
    }

    fn spec(port: u16) -> ServiceSpec {
        ServiceSpec {
            key: key(port),
            scheduler: SchedulerName::Wlc,
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

    fn run(config: &Config, command: Command) -> Result<Config, CommandError> {
        let next = edit(config, &command)?;
        check(&next)?;
        Ok(next)
    }

    fn with_service() -> Config {
        let config = run(
            &Config::default(),
            Command::AddService { service: spec(80) },
        )
        .unwrap();
        run(
            &config,
            Command::AddServer {
                service: key(80),
                server: server(11, 1),
            },
        )
        .unwrap()
    }

    #[test]
    fn add_service_twice_is_service_exists() {
        let config = with_service();
        let err = run(&config, Command::AddService { service: spec(80) }).unwrap_err();
        assert_eq!(err.code, ErrorCode::ServiceExists);
        assert_eq!(err.message, "Service already exists");
    }

    #[test]
    fn commands_on_a_missing_service_are_no_service() {
        let config = with_service();
        for command in [
            Command::EditService { service: spec(81) },
            Command::DeleteService { key: key(81) },
            Command::AddServer {
                service: key(81),
                server: server(12, 1),
            },
            Command::EditServer {
                service: key(81),
                server: server(11, 1),
            },
            Command::DeleteServer {
                service: key(81),
                addr: IpAddr::from([198, 51, 100, 11]),
                port: 80,
            },
        ] {
            let err = run(&config, command.clone()).unwrap_err();
            assert_eq!(err.code, ErrorCode::NoService, "{command:?}");
            assert_eq!(err.message, "No such service");
        }
    }

    #[test]
    fn add_server_twice_is_dest_exists() {
        let config = with_service();
        let err = run(
            &config,
            Command::AddServer {
                service: key(80),
                server: server(11, 5),
            },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::DestExists);
        assert_eq!(err.message, "Destination already exists");
    }

    #[test]
    fn edit_or_delete_of_a_missing_server_is_no_dest() {
        let config = with_service();
        let err = run(
            &config,
            Command::EditServer {
                service: key(80),
                server: server(12, 1),
            },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::NoDest);
        let err = run(
            &config,
            Command::DeleteServer {
                service: key(80),
                addr: IpAddr::from([198, 51, 100, 11]),
                port: 8080,
            },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::NoDest);
        assert_eq!(err.message, "No such destination");
    }

    #[test]
    fn edit_service_replaces_every_field_and_keeps_servers() {
        let mut s = spec(80);
        s.scheduler = SchedulerName::Sh;
        s.flags.flag1 = true;
        s.persistence = Some(Persistence {
            timeout: 300,
            netmask: uvs_conf::Netmask::v4_prefix(24),
        });
        let config = run(&with_service(), Command::EditService { service: s }).unwrap();
        assert_eq!(config.services[0].scheduler, SchedulerName::Sh);
        assert!(config.services[0].persistence.is_some());
        // `-E -t vip:80` alone: the scheduler reverts to wlc, persistence
        // and flags are gone; the real servers stay.
        let config = run(&config, Command::EditService { service: spec(80) }).unwrap();
        let svc = &config.services[0];
        assert_eq!(svc.scheduler, SchedulerName::Wlc);
        assert_eq!(svc.flags, SchedFlags::default());
        assert_eq!(svc.persistence, None);
        assert_eq!(svc.dests, vec![server(11, 1)]);
    }

    #[test]
    fn edit_server_resets_omitted_fields() {
        let mut heavy = server(11, 7);
        heavy.u_threshold = 100;
        heavy.l_threshold = 10;
        let config = run(
            &with_service(),
            Command::EditServer {
                service: key(80),
                server: heavy.clone(),
            },
        )
        .unwrap();
        assert_eq!(config.services[0].dests, vec![heavy]);
        let config = run(
            &config,
            Command::EditServer {
                service: key(80),
                server: server(11, 1),
            },
        )
        .unwrap();
        assert_eq!(config.services[0].dests, vec![server(11, 1)]);
    }

    #[test]
    fn delete_and_clear_remove_what_they_name() {
        let config = run(&with_service(), Command::AddService { service: spec(443) }).unwrap();
        let config = run(
            &config,
            Command::DeleteServer {
                service: key(80),
                addr: IpAddr::from([198, 51, 100, 11]),
                port: 80,
            },
        )
        .unwrap();
        assert!(config.services[0].dests.is_empty());
        let config = run(&config, Command::DeleteService { key: key(80) }).unwrap();
        assert_eq!(config.services.len(), 1);
        assert_eq!(config.services[0].key, key(443));
        let config = run(&config, Command::Clear).unwrap();
        assert!(config.services.is_empty());
    }

    #[test]
    fn set_timeouts_zero_leaves_a_value_unchanged() {
        let config = run(
            &Config::default(),
            Command::SetTimeouts {
                tcp: 0,
                tcp_fin: 60,
                udp: 0,
            },
        )
        .unwrap();
        assert_eq!(
            config.timeouts,
            Timeouts {
                tcp: 900,
                tcp_fin: 60,
                udp: 300
            }
        );
        let err = run(
            &config,
            Command::SetTimeouts {
                tcp: 2_678_401,
                tcp_fin: 0,
                udp: 0,
            },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::Invalid);
        assert!(err.message.contains("2678401"), "{}", err.message);
    }

    #[test]
    fn a_rule_broken_by_a_command_is_invalid_and_names_the_service() {
        let mut s = spec(0);
        s.persistence = None;
        let err = run(&Config::default(), Command::AddService { service: s }).unwrap_err();
        assert_eq!(err.code, ErrorCode::Invalid);
        assert_eq!(
            err.message,
            "TCP 192.0.2.100:0: Zero port specified for non-persistent service"
        );
        let mut heavy = server(12, 70_000);
        heavy.weight = 70_000;
        let err = run(
            &with_service(),
            Command::AddServer {
                service: key(80),
                server: heavy,
            },
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::Invalid);
        assert!(err.message.contains("70000"), "{}", err.message);
    }

    #[test]
    fn read_commands_are_not_changes() {
        assert!(!is_change(&Command::ListConnections));
        assert!(!is_change(&Command::Zero { service: None }));
        assert!(is_change(&Command::Clear));
        let config = with_service();
        assert_eq!(edit(&config, &Command::GetInfo).unwrap(), config);
    }
}
