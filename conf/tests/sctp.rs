//! SCTP services in the config file: `protocol = "sctp"` parses to
//! [`Protocol::Sctp`], ipvsadm's rules hold for it (one-packet is UDP only,
//! port 0 only with persistence), fwmark ranges take `sctp`, and the TOML
//! written back reads the same.

use uvs_conf::{parse_config, to_toml, Protocol, ServiceKey};

const SCTP: &str = r#"
[[service]]
protocol = "sctp"
address = "192.0.2.1:3868"
scheduler = "rr"
  [[service.real_server]]
  address = "10.0.0.2"
  method = "nat"

[[service]]
protocol = "SCTP"
address = "[2001:db8::1]:0"
persistent = 60
  [[service.real_server]]
  address = "2001:db8::2"

[[service]]
fwmark = 7
  [[service.match]]
  protocol = "sctp"
  address = "192.0.2.10-192.0.2.11"
  port = "2905"
"#;

#[test]
fn sctp_services_parse_and_round_trip() {
    let config = parse_config("sctp.toml", SCTP).expect("valid");
    let protocols: Vec<Option<Protocol>> = config
        .services
        .iter()
        .map(|s| match s.key {
            ServiceKey::Addr { protocol, .. } => Some(protocol),
            ServiceKey::Fwmark { .. } => s.fwmark_match[0].protocol,
        })
        .collect();
    assert_eq!(
        protocols,
        [
            Some(Protocol::Sctp),
            Some(Protocol::Sctp),
            Some(Protocol::Sctp)
        ]
    );
    assert_eq!(Protocol::Sctp.number(), 132);
    let text = to_toml(&config);
    assert!(text.contains("protocol = \"sctp\""), "{text}");
    assert_eq!(parse_config("again.toml", &text).expect("re-read"), config);
}

fn first_message(text: &str) -> String {
    let err = parse_config("bad.toml", text).expect_err("invalid");
    err.problems()[0].message.clone()
}

#[test]
fn sctp_keeps_ipvsadms_rules() {
    let one_packet =
        "[[service]]\nprotocol = \"sctp\"\naddress = \"192.0.2.1:3868\"\none_packet = true\n";
    assert!(
        first_message(one_packet) == "One-Packet Scheduling is only for UDP virtual services",
        "{}",
        first_message(one_packet)
    );
    let port_zero = "[[service]]\nprotocol = \"sctp\"\naddress = \"192.0.2.1\"\n";
    let message = first_message(port_zero);
    assert_eq!(message, "Zero port specified for non-persistent service");
}
