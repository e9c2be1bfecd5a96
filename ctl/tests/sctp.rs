//! SCTP services (`--sctp-service`): parsed into the model as ipvsadm 1.31
//! does, refused with ipvsadm's one-packet rule, listed as `SCTP`, saved as
//! `--sctp-service` (ipvsadm's `print_service_entry` rule form), `-c` rows
//! with the kernel's SCTP state names, and a `-S | -C | -R` round trip.

mod common;

use common::*;
use uvs_conf::control::{Command, ConnectionStatus};
use uvs_conf::{ForwardMethod, Protocol, SchedulerName, ServiceKey};
use uvs_ctl::list::{self, Names};
use uvs_ctl::parse::{parse_args, Action, Format, ListWhat, ParseError};

fn sctp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: ip(addr),
        port,
    }
}

fn parse(line: &str) -> Result<Action, ParseError> {
    parse_args(&args(line), &resolver())
}

#[test]
fn sctp_service_commands_reach_the_engine() {
    match parse("-A --sctp-service 10.0.0.1:3868 -s rr") {
        Ok(Action::Send(Command::AddService { service })) => {
            assert_eq!(service.key, sctp("10.0.0.1", 3868));
            assert_eq!(service.scheduler, SchedulerName::Rr);
        }
        other => panic!("{other:?}"),
    }
    match parse("-E --sctp-service [2001:db8::1]:3868 -s wrr -p 60") {
        Ok(Action::Send(Command::EditService { service })) => {
            assert_eq!(service.key, sctp("2001:db8::1", 3868));
            assert_eq!(service.persistence.map(|p| p.timeout), Some(60));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse("-D --sctp-service 10.0.0.1:3868"),
        Ok(Action::Send(Command::DeleteService {
            key: sctp("10.0.0.1", 3868)
        }))
    );
    match parse("-a --sctp-service 10.0.0.1:3868 -r 10.0.1.1:3869 -m -w 2") {
        Ok(Action::Send(Command::AddServer { service, server })) => {
            assert_eq!(service, sctp("10.0.0.1", 3868));
            assert_eq!(server.method, ForwardMethod::Nat);
            assert_eq!((server.port, server.weight), (3869, 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse("-Z --sctp-service 10.0.0.1:3868"),
        Ok(Action::Send(Command::Zero {
            service: Some(sctp("10.0.0.1", 3868))
        }))
    );
    match parse("-L -n --sctp-service 10.0.0.1:3868") {
        Ok(Action::List {
            what: ListWhat::Service(key),
            ..
        }) => assert_eq!(key, sctp("10.0.0.1", 3868)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sctp_keeps_ipvsadms_rules() {
    // One-packet scheduling is for UDP only; -t/-u/--sctp-service are one
    // option slot.
    assert_eq!(
        parse("-A --sctp-service 10.0.0.1:3868 -o"),
        Err(ParseError::Fail(
            "One-Packet Scheduling is only for UDP virtual services".into()
        ))
    );
    assert!(matches!(
        parse("-A --sctp-service 10.0.0.1:3868 -t 10.0.0.1:80"),
        Err(ParseError::Fail(_))
    ));
}

fn table() -> Vec<uvs_conf::control::ServiceStatus> {
    vec![
        service(
            spec(sctp("10.0.0.1", 3868), SchedulerName::Rr),
            vec![
                server(dest("10.0.1.2", 3868, ForwardMethod::Nat, 1)),
                server(dest("10.0.1.1", 3868, ForwardMethod::Dr, 1)),
            ],
        ),
        service(spec(udp("10.0.0.1", 53), SchedulerName::Wlc), vec![]),
        service(spec(tcp("10.0.0.1", 80), SchedulerName::Wlc), vec![]),
        service(
            spec(sctp("2001:db8::1", 2905), SchedulerName::Wlc),
            vec![server(dest(
                "2001:db8::10",
                2905,
                ForwardMethod::FullNat,
                3,
            ))],
        ),
    ]
}

#[test]
fn sctp_services_list_after_tcp_and_udp() {
    let r = resolver();
    let names = Names {
        resolver: &r,
        numeric: true,
    };
    let text = list::list_all(4096, &table(), &Format::default(), names);
    assert_eq!(
        text,
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 wlc
UDP  10.0.0.1:53 wlc
SCTP 10.0.0.1:3868 rr
  -> 10.0.1.1:3868                Route   1      0          0         
  -> 10.0.1.2:3868                Masq    1      0          0         
SCTP [2001:db8::1]:2905 wlc
  -> [2001:db8::10]:2905          FullNat 3      0          0         
"
    );
}

#[test]
fn sctp_connections_show_the_kernels_state_names() {
    let r = resolver();
    let names = Names {
        resolver: &r,
        numeric: true,
    };
    let row = |state: &str, expires_secs: u32| ConnectionStatus {
        protocol: 132,
        client: ip("192.0.2.50"),
        client_port: 40000,
        virtual_addr: ip("10.0.0.1"),
        virtual_port: 3868,
        server: ip("10.0.1.1"),
        server_port: 3868,
        state: state.into(),
        expires_secs,
        template: false,
        pe: None,
    };
    let conns = vec![
        row("ESTABLISHED", 900),
        row("C-ECHOED", 15),
        row("S-RECEIVED", 3),
    ];
    let f = Format {
        numeric: true,
        ..Format::default()
    };
    // ipvsadm prints the kernel's protocol name with "%-3s": SCTP
    // overflows it. State names are the kernel's sctp_state_name_table.
    assert_eq!(
        list::list_connections(&conns, &f, names),
        "IPVS connection entries
pro expire state       source             virtual            destination
SCTP 15:00  ESTABLISHED 192.0.2.50:40000   10.0.0.1:3868      10.0.1.1:3868
SCTP 00:15  C-ECHOED    192.0.2.50:40000   10.0.0.1:3868      10.0.1.1:3868
SCTP 00:03  S-RECEIVED  192.0.2.50:40000   10.0.0.1:3868      10.0.1.1:3868
"
    );
}

const SCRIPT: &str = "\
-A --sctp-service 10.0.0.1:3868 -s rr
-a --sctp-service 10.0.0.1:3868 -r 10.0.1.1 -g
-a --sctp-service 10.0.0.1:3868 -r 10.0.1.2:3869 -m -w 2
-A -u 10.0.0.1:53 -s wlc
-A --sctp-service [2001:db8::1]:0 -s sh -p 60 -M 64
-a --sctp-service [2001:db8::1]:0 -r [2001:db8::10]:0 -i
";

const SAVED: &str = "\
-A -u 10.0.0.1:53 -s wlc
-A --sctp-service 10.0.0.1:3868 -s rr
-a --sctp-service 10.0.0.1:3868 -r 10.0.1.1:3868 -g -w 1
-a --sctp-service 10.0.0.1:3868 -r 10.0.1.2:3869 -m -w 2
-A --sctp-service [2001:db8::1]:0 -s sh -p 60 -M 64
-a --sctp-service [2001:db8::1]:0 -r [2001:db8::10]:0 -i -w 1 --tun-type ipip
";

#[test]
fn sctp_services_save_and_restore() {
    let mut t = EngineTransport::new();
    let o = run_with(&mut t, &args("-R"), SCRIPT);
    assert_eq!((o.status, o.stderr.as_str()), (0, ""), "{o:?}");
    let saved = run_with(&mut t, &args("-S -n"), "");
    assert_eq!(saved.status, 0);
    assert_eq!(saved.stdout, SAVED);
    let before = t.engine.services.clone();
    assert_eq!(run_with(&mut t, &args("-C"), "").status, 0);
    assert!(t.engine.services.is_empty());
    let o = run_with(&mut t, &args("-R"), &saved.stdout);
    assert_eq!((o.status, o.stderr.as_str()), (0, ""), "{o:?}");
    assert_eq!(run_with(&mut t, &args("-S -n"), "").stdout, SAVED);
    assert_eq!(t.engine.services.len(), before.len());
}

#[test]
fn sctp_json_listing_names_the_protocol() {
    let mut t = EngineTransport::new();
    let o = run_with(&mut t, &args("-R"), SCRIPT);
    assert_eq!(o.status, 0, "{o:?}");
    let o = run_with(&mut t, &args("-L -n --json"), "");
    assert_eq!(o.status, 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let protocols: Vec<&str> = v["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["spec"]["key"]["Addr"]["protocol"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(protocols, ["Udp", "Sctp", "Sctp"], "{v}");
}
