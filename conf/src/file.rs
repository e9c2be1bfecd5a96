//! The TOML configuration file: its format, and reading it into a
//! validated [`Config`] with errors that point at the offending value.
//!
//! The format uses ipvsadm's words. Every table and key is optional except
//! where said; unknown keys are errors.
//!
//! ```toml
//! [engine]
//! conn_table_size = 1048576      # most tracked connections (> 0)
//! conn_tab_bits = 12             # ipvsadm -L header size=2^bits, 8..20
//! interfaces = ["eth0"]          # empty: chosen from the routes
//! tunnel_source_v4 = "10.0.0.1"  # outer source of TUN packets
//! tunnel_source_v6 = "fd00::1"
//! expire_nodest_conn = false
//! expire_quiescent_template = false
//! conn_reuse_mode = 1            # 0..3
//! umem_frames = 4096             # AF_XDP frames per worker: power of two, 64..1048576
//! tun_device = "uvs0"            # TUN backend device name
//!
//! [timeouts]                     # ipvsadm --set tcp tcpfin udp
//! tcp = 900                      # 0..2678400 s; 0 = keep the default
//! tcpfin = 120
//! udp = 300
//!
//! [fullnat]                      # local address pool of full-NAT
//! addrs = ["10.0.0.250", "fd00::250"]
//! port_range = "1024-65535"
//!
//! [[service]]
//! protocol = "tcp"               # tcp | udp | sctp (required with address)
//! address = "192.168.1.100:80"   # addr:port, [v6]:port; no port = 0
//! scheduler = "wrr"              # default wlc
//! flags = ["flag-3"]             # sh-fallback sh-port mh-fallback mh-port flag-1..3
//! persistent = 360               # seconds, 1..2678400; true = 360
//! netmask = "255.255.255.0"      # any mask (e.g. "255.0.255.0") or 0..32; IPv6: 1..128
//! persistence_engine = "sip"     # --pe: UDP SIP pinned by Call-ID (with persistent)
//! one_packet = false             # UDP and fwmark services only
//!   [[service.real_server]]
//!   address = "10.0.0.2:80"      # no port = the service's port
//!   method = "tun"               # dr | tun | nat | fullnat (default dr)
//!   tun_type = "gue"             # ipip | gue | gre (tun only; default ipip)
//!   tun_port = 6080              # gue only, required there
//!   tun_csum = "csum"            # nocsum | csum | remcsum (gue, gre)
//!   weight = 3                   # 0..65535, default 1
//!   u_threshold = 0              # 0 = no limit
//!   l_threshold = 0              # <= u_threshold
//!   [[service.real_server]]
//!   address = "10.0.0.3"
//!   method = "fullnat"           # needs an address of its family in [fullnat]
//!
//! [[service]]
//! fwmark = 5                     # instead of protocol + address
//! family = "ipv6"                # ipv4 (default) | ipv6
//!   [[service.match]]            # packets that carry the mark (>= 1)
//!   protocol = "tcp"             # tcp | udp | sctp; none = all three
//!   address = "2001:db8::/64"    # one address, first-last, or a CIDR prefix
//!   port = "80-443"              # a port or first-last; none = all
//! ```
//!
//! Method names also take ipvsadm's and keepalived's spellings
//! (`gatewaying`, `route`, `ipip`, `tunnel`, `masquerading`, `masq`, any
//! case). A real server of a DR or TUN address/port service must be on
//! the service's port: ipvsadm silently replaces another port, uvs
//! reports it, since the packet would not reach the port written.
//!
//! All problems found are reported, each as `file:line:column: message`,
//! sorted by position. A TOML syntax or type error stops the reading, so
//! it is reported alone.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::model::{
    Config, DestConfig, EngineSettings, Family, ForwardMethod, FwmarkMatch, LocalAddrPool, Netmask,
    Persistence, PersistenceEngine, Protocol, SchedFlags, SchedulerName, ServiceConfig, ServiceKey,
    Timeouts, TunnelCsum, TunnelType,
};
use crate::validate::{
    DestField, EngineField, MatchField, ModelError, ModelErrorKind, Place, PoolField, ServiceField,
    TimeoutField,
};

/// Persistence timeout of a bare `-p` (`persistent = true`): 360 s.
pub const DEFAULT_PERSISTENCE_TIMEOUT: u32 = 360;

/// One problem in a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// What is wrong, for a person.
    pub message: String,
}

/// Why a config file was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The path as given.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The file was read but is not a valid configuration. Holds every
    /// problem found (at least one), sorted by position.
    Invalid {
        /// The file name used in messages.
        file: String,
        /// The problems.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The located problems (empty for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

impl fmt::Display for ConfigError {
    /// One line per problem: `file:line:column: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, reason } => write!(f, "{path}: cannot read: {reason}"),
            ConfigError::Invalid { file, problems } => {
                for (index, problem) in problems.iter().enumerate() {
                    if index > 0 {
                        writeln!(f)?;
                    }
                    write!(
                        f,
                        "{file}:{}:{}: {}",
                        problem.line, problem.column, problem.message
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Read and validate the config file at `path`.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: name.clone(),
        reason: error.to_string(),
    })?;
    parse_config(&name, &text)
}

/// Parse and validate config `text`; `path_for_messages` names it in
/// errors.
pub fn parse_config(path_for_messages: &str, text: &str) -> Result<Config, ConfigError> {
    let invalid = |spans: Vec<(Range<usize>, String)>| ConfigError::Invalid {
        file: path_for_messages.to_string(),
        problems: locate(text, spans),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            return Err(invalid(vec![(span, toml_message(error.message()))]));
        }
    };
    let mut reader = Reader::default();
    let config = reader.config(&raw);
    if !reader.errors.is_empty() {
        return Err(invalid(reader.errors));
    }
    let problems = config.problems();
    if problems.is_empty() {
        return Ok(config);
    }
    let spans = problems
        .iter()
        .map(|problem| {
            let span = span_of(&raw, problem.place);
            (span, message_for(text, &raw, &config, problem))
        })
        .collect();
    Err(invalid(spans))
}

/// toml/serde's message in the file's vocabulary, on one line.
fn toml_message(message: &str) -> String {
    message
        .trim()
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected an array")
        .replace('\n', "; ")
}

/// Turn byte spans into sorted, de-duplicated problems.
fn locate(text: &str, mut spans: Vec<(Range<usize>, String)>) -> Vec<Problem> {
    spans.sort_by_key(|(span, _)| span.start);
    let mut problems: Vec<Problem> = Vec::with_capacity(spans.len());
    for (span, message) in spans {
        let (line, column) = line_column(text, span.start);
        let problem = Problem {
            line,
            column,
            message,
        };
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    problems
}

/// 1-based line and character column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Write `config` in the config file format, every setting spelled out,
/// so that [`parse_config`] gives `config` back (for a config that
/// [`Config::validate`] accepts).
pub fn to_toml(config: &Config) -> String {
    let mut out = String::new();
    render_engine(&mut out, &config.engine);
    let timeouts = &config.timeouts;
    out.push_str(&format!(
        "\n[timeouts]\ntcp = {}\ntcpfin = {}\nudp = {}\n",
        timeouts.tcp, timeouts.tcp_fin, timeouts.udp
    ));
    let pool = &config.fullnat_pool;
    out.push_str(&format!(
        "\n[fullnat]\naddrs = [{}]\nport_range = \"{}-{}\"\n",
        quoted_list(pool.addrs.iter().map(IpAddr::to_string)),
        pool.port_first,
        pool.port_last
    ));
    for service in &config.services {
        render_service(&mut out, service);
    }
    out
}

/// `value` as a TOML basic string, quoted and escaped.
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

fn quoted_list(values: impl Iterator<Item = String>) -> String {
    values
        .map(|value| quoted(&value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `addr:port`, or `[addr]:port` for IPv6.
fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

fn render_engine(out: &mut String, engine: &EngineSettings) {
    out.push_str(&format!(
        "[engine]\nconn_table_size = {}\nconn_tab_bits = {}\ninterfaces = [{}]\n",
        engine.conn_table_size,
        engine.conn_tab_bits,
        quoted_list(engine.interfaces.iter().cloned())
    ));
    if let Some(addr) = engine.tunnel_source_v4 {
        out.push_str(&format!("tunnel_source_v4 = \"{addr}\"\n"));
    }
    if let Some(addr) = engine.tunnel_source_v6 {
        out.push_str(&format!("tunnel_source_v6 = \"{addr}\"\n"));
    }
    out.push_str(&format!(
        "expire_nodest_conn = {}\nexpire_quiescent_template = {}\nconn_reuse_mode = {}\n",
        engine.expire_nodest_conn, engine.expire_quiescent_template, engine.conn_reuse_mode
    ));
    let default = EngineSettings::default();
    if engine.umem_frames != default.umem_frames {
        out.push_str(&format!("umem_frames = {}\n", engine.umem_frames));
    }
    if engine.tun_device != default.tun_device {
        out.push_str(&format!("tun_device = {}\n", quoted(&engine.tun_device)));
    }
}

fn render_service(out: &mut String, service: &ServiceConfig) {
    out.push_str("\n[[service]]\n");
    match service.key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let protocol = protocol.name();
            out.push_str(&format!(
                "protocol = \"{protocol}\"\naddress = \"{}\"\n",
                addr_port(addr, port)
            ));
        }
        ServiceKey::Fwmark { mark, family } => {
            let name = match family {
                Family::V4 => "ipv4",
                Family::V6 => "ipv6",
            };
            out.push_str(&format!("fwmark = {mark}\nfamily = \"{name}\"\n"));
        }
    }
    out.push_str(&format!("scheduler = \"{}\"\n", service.scheduler.as_str()));
    let flags = sched_flag_names(service.flags, service.scheduler);
    if !flags.is_empty() {
        out.push_str(&format!(
            "flags = [{}]\n",
            quoted_list(flags.iter().map(|flag| flag.to_string()))
        ));
    }
    if let Some(persistence) = service.persistence {
        let netmask = match persistence.netmask {
            Netmask::V4(mask) => format!("\"{mask}\""),
            Netmask::V6(prefix) => prefix.to_string(),
        };
        out.push_str(&format!(
            "persistent = {}\nnetmask = {netmask}\n",
            persistence.timeout
        ));
    }
    if let Some(pe) = service.persistence_engine {
        out.push_str(&format!("persistence_engine = \"{}\"\n", pe.as_str()));
    }
    out.push_str(&format!("one_packet = {}\n", service.one_packet));
    for range in &service.fwmark_match {
        out.push_str("  [[service.match]]\n");
        if let Some(protocol) = range.protocol {
            let protocol = protocol.name();
            out.push_str(&format!("  protocol = \"{protocol}\"\n"));
        }
        out.push_str(&format!(
            "  address = \"{}-{}\"\n  port = \"{}-{}\"\n",
            range.addr_first, range.addr_last, range.port_first, range.port_last
        ));
    }
    for dest in &service.dests {
        render_dest(out, dest);
    }
}

/// ipvsadm's names for the flags that are set, in `-b` order.
fn sched_flag_names(flags: SchedFlags, scheduler: SchedulerName) -> Vec<&'static str> {
    let (fallback, port) = match scheduler {
        SchedulerName::Sh => ("sh-fallback", "sh-port"),
        SchedulerName::Mh => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    [
        (flags.flag1, fallback),
        (flags.flag2, port),
        (flags.flag3, "flag-3"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

fn render_dest(out: &mut String, dest: &DestConfig) {
    out.push_str(&format!(
        "  [[service.real_server]]\n  address = \"{}\"\n",
        addr_port(dest.addr, dest.port)
    ));
    match dest.method {
        ForwardMethod::Dr => out.push_str("  method = \"dr\"\n"),
        ForwardMethod::Nat => out.push_str("  method = \"nat\"\n"),
        ForwardMethod::FullNat => out.push_str("  method = \"fullnat\"\n"),
        ForwardMethod::Tunnel { kind, csum } => {
            out.push_str("  method = \"tun\"\n");
            match kind {
                TunnelType::Ipip => out.push_str("  tun_type = \"ipip\"\n"),
                TunnelType::Gre => out.push_str("  tun_type = \"gre\"\n"),
                TunnelType::Gue { port } => {
                    out.push_str(&format!("  tun_type = \"gue\"\n  tun_port = {port}\n"))
                }
            }
            if kind != TunnelType::Ipip {
                let csum = match csum {
                    TunnelCsum::NoCsum => "nocsum",
                    TunnelCsum::Csum => "csum",
                    TunnelCsum::RemCsum => "remcsum",
                };
                out.push_str(&format!("  tun_csum = \"{csum}\"\n"));
            }
        }
    }
    out.push_str(&format!(
        "  weight = {}\n  u_threshold = {}\n  l_threshold = {}\n",
        dest.weight, dest.u_threshold, dest.l_threshold
    ));
}

// ---------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    engine: Option<Spanned<RawEngine>>,
    timeouts: Option<Spanned<RawTimeouts>>,
    fullnat: Option<Spanned<RawPool>>,
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    conn_table_size: Option<Spanned<i64>>,
    conn_tab_bits: Option<Spanned<i64>>,
    #[serde(default)]
    interfaces: Vec<Spanned<String>>,
    tunnel_source_v4: Option<Spanned<String>>,
    tunnel_source_v6: Option<Spanned<String>>,
    expire_nodest_conn: Option<bool>,
    expire_quiescent_template: Option<bool>,
    conn_reuse_mode: Option<Spanned<i64>>,
    umem_frames: Option<Spanned<i64>>,
    tun_device: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    tcp: Option<Spanned<i64>>,
    tcpfin: Option<Spanned<i64>>,
    udp: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    #[serde(default)]
    addrs: Vec<Spanned<String>>,
    port_range: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    protocol: Option<Spanned<String>>,
    address: Option<Spanned<String>>,
    fwmark: Option<Spanned<i64>>,
    family: Option<Spanned<String>>,
    scheduler: Option<Spanned<String>>,
    flags: Option<Spanned<Vec<Spanned<String>>>>,
    persistent: Option<Spanned<toml::Value>>,
    netmask: Option<Spanned<toml::Value>>,
    persistence_engine: Option<Spanned<String>>,
    one_packet: Option<Spanned<bool>>,
    #[serde(rename = "match", default)]
    matches: Vec<Spanned<RawMatch>>,
    #[serde(default)]
    real_server: Vec<Spanned<RawDest>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    protocol: Option<Spanned<String>>,
    address: Spanned<String>,
    port: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDest {
    address: Spanned<String>,
    method: Option<Spanned<String>>,
    tun_type: Option<Spanned<String>>,
    tun_port: Option<Spanned<i64>>,
    tun_csum: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
    u_threshold: Option<Spanned<i64>>,
    l_threshold: Option<Spanned<i64>>,
}

// ---------------------------------------------------------------------
// From the file to the model.

/// Collects the problems found while turning the file into a [`Config`].
#[derive(Default)]
struct Reader {
    errors: Vec<(Range<usize>, String)>,
}

/// How a real server reaches its packets, before tunnel options are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MethodName {
    Dr,
    Tun,
    Nat,
    FullNat,
}

impl Reader {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push((span, message.into()));
    }

    /// A TOML integer converted to `T`; `allowed` says the legal range.
    fn int<T: TryFrom<i64>>(
        &mut self,
        value: &Spanned<i64>,
        key: &str,
        allowed: &str,
    ) -> Option<T> {
        match T::try_from(*value.get_ref()) {
            Ok(converted) => Some(converted),
            Err(_) => {
                self.error(
                    value.span(),
                    format!("{key} must be {allowed}, not {}", value.get_ref()),
                );
                None
            }
        }
    }

    /// An optional integer, `default` when absent or unusable.
    fn int_or<T: TryFrom<i64>>(
        &mut self,
        value: &Option<Spanned<i64>>,
        default: T,
        key: &str,
        allowed: &str,
    ) -> T {
        value
            .as_ref()
            .and_then(|value| self.int(value, key, allowed))
            .unwrap_or(default)
    }

    fn ip(&mut self, value: &Spanned<String>, what: &str) -> Option<IpAddr> {
        match parse_ip(value.get_ref()) {
            Ok(addr) => Some(addr),
            Err(reason) => {
                self.error(value.span(), format!("{what}: {reason}"));
                None
            }
        }
    }

    fn config(&mut self, raw: &RawConfig) -> Config {
        Config {
            engine: raw
                .engine
                .as_ref()
                .map_or_else(EngineSettings::default, |engine| {
                    self.engine(engine.get_ref())
                }),
            timeouts: raw
                .timeouts
                .as_ref()
                .map_or_else(Timeouts::default, |timeouts| {
                    self.timeouts(timeouts.get_ref())
                }),
            fullnat_pool: raw
                .fullnat
                .as_ref()
                .map_or_else(LocalAddrPool::default, |pool| self.pool(pool.get_ref())),
            services: raw
                .service
                .iter()
                .map(|service| self.service(service))
                .collect(),
        }
    }

    fn engine(&mut self, raw: &RawEngine) -> EngineSettings {
        let default = EngineSettings::default();
        EngineSettings {
            conn_table_size: self.int_or(
                &raw.conn_table_size,
                default.conn_table_size,
                "conn_table_size",
                "1 to 4294967295",
            ),
            conn_tab_bits: self.int_or(
                &raw.conn_tab_bits,
                default.conn_tab_bits,
                "conn_tab_bits",
                "8 to 20",
            ),
            interfaces: raw
                .interfaces
                .iter()
                .map(|name| name.get_ref().clone())
                .collect(),
            tunnel_source_v4: raw
                .tunnel_source_v4
                .as_ref()
                .and_then(|addr| self.ip(addr, "tunnel_source_v4")),
            tunnel_source_v6: raw
                .tunnel_source_v6
                .as_ref()
                .and_then(|addr| self.ip(addr, "tunnel_source_v6")),
            expire_nodest_conn: raw.expire_nodest_conn.unwrap_or(default.expire_nodest_conn),
            expire_quiescent_template: raw
                .expire_quiescent_template
                .unwrap_or(default.expire_quiescent_template),
            conn_reuse_mode: self.int_or(
                &raw.conn_reuse_mode,
                default.conn_reuse_mode,
                "conn_reuse_mode",
                "0 to 3",
            ),
            umem_frames: self.int_or(
                &raw.umem_frames,
                default.umem_frames,
                "umem_frames",
                "a power of two from 64 to 1048576",
            ),
            tun_device: raw
                .tun_device
                .as_ref()
                .map_or(default.tun_device, |name| name.get_ref().clone()),
        }
    }

    fn timeouts(&mut self, raw: &RawTimeouts) -> Timeouts {
        let default = Timeouts::default();
        let mut timeout = |value: &Option<Spanned<i64>>, default: u32, key: &str| match self.int_or(
            value,
            default,
            key,
            "0 to 2678400 seconds (0 = the default)",
        ) {
            0 => default,
            seconds => seconds,
        };
        Timeouts {
            tcp: timeout(&raw.tcp, default.tcp, "tcp"),
            tcp_fin: timeout(&raw.tcpfin, default.tcp_fin, "tcpfin"),
            udp: timeout(&raw.udp, default.udp, "udp"),
        }
    }

    fn pool(&mut self, raw: &RawPool) -> LocalAddrPool {
        let default = LocalAddrPool::default();
        let addrs = raw
            .addrs
            .iter()
            .filter_map(|addr| self.ip(addr, "full-NAT local address"))
            .collect();
        let (port_first, port_last) = match &raw.port_range {
            None => (default.port_first, default.port_last),
            Some(range) => match parse_port_range(range.get_ref()) {
                Some(ports) => ports,
                None => {
                    self.error(
                        range.span(),
                        format!(
                            "port_range `{}` is not a port range: write it as \"1024-65535\"",
                            range.get_ref()
                        ),
                    );
                    (default.port_first, default.port_last)
                }
            },
        };
        LocalAddrPool {
            addrs,
            port_first,
            port_last,
        }
    }

    fn service(&mut self, spanned: &Spanned<RawService>) -> ServiceConfig {
        let raw = spanned.get_ref();
        let key = self.service_key(spanned);
        let scheduler = match &raw.scheduler {
            None => Some(SchedulerName::Wlc),
            Some(name) => {
                let found = SchedulerName::from_name(name.get_ref());
                if found.is_none() {
                    let known: Vec<&str> = SchedulerName::ALL.iter().map(|s| s.as_str()).collect();
                    self.error(
                        name.span(),
                        format!(
                            "unknown scheduler `{}`: use one of {}",
                            name.get_ref(),
                            known.join(", ")
                        ),
                    );
                }
                found
            }
        };
        // Flags are checked against a known scheduler only, so that an
        // unknown one is reported once, not once more per flag.
        let flags = scheduler.map_or_else(SchedFlags::default, |scheduler| {
            self.sched_flags(raw, scheduler)
        });
        let scheduler = scheduler.unwrap_or(SchedulerName::Wlc);
        let persistence = self.persistence(raw, key.family());
        let persistence_engine = raw.persistence_engine.as_ref().and_then(|name| {
            let found = PersistenceEngine::from_name(name.get_ref());
            if found.is_none() {
                self.error(
                    name.span(),
                    format!(
                        "unknown persistence engine `{}`: uvs has sip",
                        name.get_ref()
                    ),
                );
            }
            found
        });
        let one_packet = raw.one_packet.as_ref().is_some_and(|flag| *flag.get_ref());
        let fwmark_match = raw
            .matches
            .iter()
            .filter_map(|range| self.fwmark_match(range.get_ref()))
            .collect();
        let service_port = match key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        let dests = raw
            .real_server
            .iter()
            .filter_map(|dest| self.dest(dest.get_ref(), service_port))
            .collect();
        ServiceConfig {
            key,
            scheduler,
            flags,
            persistence,
            persistence_engine,
            one_packet,
            fwmark_match,
            dests,
        }
    }

    fn service_key(&mut self, spanned: &Spanned<RawService>) -> ServiceKey {
        let raw = spanned.get_ref();
        let placeholder = ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
        };
        if let Some(fwmark) = &raw.fwmark {
            if let Some(address) = &raw.address {
                self.error(
                    address.span(),
                    "a service has either `fwmark` or `address`, not both",
                );
            }
            if let Some(protocol) = &raw.protocol {
                self.error(
                    protocol.span(),
                    "a fwmark service has no `protocol`: give one to its [[service.match]] ranges instead",
                );
            }
            let mark = self.int(fwmark, "fwmark", "1 to 4294967295").unwrap_or(1);
            let family = match &raw.family {
                None => Family::V4,
                Some(family) => match family.get_ref().to_ascii_lowercase().as_str() {
                    "ipv4" | "inet" => Family::V4,
                    "ipv6" | "inet6" => Family::V6,
                    other => {
                        self.error(
                            family.span(),
                            format!("unknown family `{other}`: use \"ipv4\" or \"ipv6\""),
                        );
                        Family::V4
                    }
                },
            };
            return ServiceKey::Fwmark { mark, family };
        }
        if let Some(family) = &raw.family {
            self.error(
                family.span(),
                "`family` is only for fwmark services; this service's family is its address's",
            );
        }
        let Some(address) = &raw.address else {
            self.error(
                spanned.span(),
                "a service needs `protocol` and `address`, or `fwmark`",
            );
            return placeholder;
        };
        let protocol = match &raw.protocol {
            None => {
                self.error(
                    spanned.span(),
                    "missing key `protocol` (\"tcp\", \"udp\" or \"sctp\") for this service",
                );
                Protocol::Tcp
            }
            Some(protocol) => self.protocol(protocol).unwrap_or(Protocol::Tcp),
        };
        match parse_host_port(address.get_ref()) {
            Ok((addr, port)) => ServiceKey::Addr {
                protocol,
                addr,
                port: port.unwrap_or(0),
            },
            Err(reason) => {
                self.error(
                    address.span(),
                    format!("illegal virtual server address[:port] specified: {reason}"),
                );
                placeholder
            }
        }
    }

    fn protocol(&mut self, value: &Spanned<String>) -> Option<Protocol> {
        match value.get_ref().to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            other => {
                self.error(
                    value.span(),
                    format!("unknown protocol `{other}`: use \"tcp\", \"udp\" or \"sctp\""),
                );
                None
            }
        }
    }

    fn sched_flags(&mut self, raw: &RawService, scheduler: SchedulerName) -> SchedFlags {
        let mut flags = SchedFlags::default();
        for name in raw.flags.iter().flat_map(|flags| flags.get_ref()) {
            match SchedFlags::from_names([name.get_ref().as_str()], scheduler) {
                Ok(one) => {
                    flags.flag1 |= one.flag1;
                    flags.flag2 |= one.flag2;
                    flags.flag3 |= one.flag3;
                }
                Err(kind @ ModelErrorKind::IncompatibleSchedFlag { needs, .. }) => self.error(
                    name.span(),
                    format!(
                        "{kind}: it needs scheduler = \"{}\", this service uses \"{}\"",
                        needs.as_str(),
                        scheduler.as_str()
                    ),
                ),
                Err(kind) => self.error(
                    name.span(),
                    format!(
                        "{kind}: use flag-1, flag-2, flag-3, sh-fallback, sh-port, mh-fallback or mh-port"
                    ),
                ),
            }
        }
        flags
    }

    fn persistence(&mut self, raw: &RawService, family: Family) -> Option<Persistence> {
        let timeout = match &raw.persistent {
            None => None,
            Some(value) => match value.get_ref() {
                toml::Value::Boolean(true) => Some(DEFAULT_PERSISTENCE_TIMEOUT),
                toml::Value::Boolean(false) => None,
                toml::Value::Integer(seconds) => {
                    let seconds = Spanned::new(value.span(), *seconds);
                    Some(
                        self.int(&seconds, "persistent", "1 to 2678400 seconds, or true")
                            .unwrap_or(DEFAULT_PERSISTENCE_TIMEOUT),
                    )
                }
                _ => {
                    self.error(
                        value.span(),
                        "persistent must be a number of seconds (1 to 2678400), true (360 s) or false",
                    );
                    None
                }
            },
        };
        let netmask = match &raw.netmask {
            None => Netmask::full(family),
            Some(value) => {
                if timeout.is_none() {
                    self.error(
                        value.span(),
                        "netmask sets the granularity of persistence and needs `persistent`",
                    );
                }
                self.netmask(value, family).unwrap_or(Netmask::full(family))
            }
        };
        timeout.map(|timeout| Persistence { timeout, netmask })
    }

    /// `netmask`: an IPv4 service takes any dotted mask (contiguous or not,
    /// as ipvsadm's `-M`) or a prefix length 0 to 32; an IPv6 service a
    /// prefix length (checked 1 to 128 by validation).
    fn netmask(&mut self, value: &Spanned<toml::Value>, family: Family) -> Option<Netmask> {
        match (value.get_ref(), family) {
            (toml::Value::Integer(prefix), Family::V4) => {
                let prefix = Spanned::new(value.span(), *prefix);
                let prefix: u8 = self.int(&prefix, "netmask", "a prefix length 0 to 32")?;
                if prefix > 32 {
                    self.error(
                        value.span(),
                        format!("netmask must be a prefix length 0 to 32, not {prefix}"),
                    );
                    return None;
                }
                Some(Netmask::v4_prefix(prefix))
            }
            (toml::Value::Integer(prefix), Family::V6) => {
                let prefix = Spanned::new(value.span(), *prefix);
                self.int(&prefix, "netmask", "a prefix length 1 to 128")
                    .map(Netmask::V6)
            }
            (toml::Value::String(mask), Family::V4) => match mask.parse::<Ipv4Addr>() {
                Ok(mask) => Some(Netmask::V4(mask)),
                Err(_) => {
                    self.error(
                        value.span(),
                        format!(
                            "illegal virtual server persistent mask specified: `{mask}` is not a netmask like \"255.255.255.0\""
                        ),
                    );
                    None
                }
            },
            (_, Family::V4) => {
                self.error(
                    value.span(),
                    "netmask must be a dotted mask like \"255.255.255.0\" or a prefix length 0 to 32",
                );
                None
            }
            (_, Family::V6) => {
                self.error(
                    value.span(),
                    "illegal ipv6 netmask specified: an IPv6 service's netmask is a prefix length 1 to 128, like 64",
                );
                None
            }
        }
    }

    fn fwmark_match(&mut self, raw: &RawMatch) -> Option<FwmarkMatch> {
        let protocol = match &raw.protocol {
            None => None,
            Some(protocol) => Some(self.protocol(protocol)?),
        };
        let (addr_first, addr_last) = match parse_addr_range(raw.address.get_ref()) {
            Ok(range) => range,
            Err(reason) => {
                self.error(raw.address.span(), format!("match address: {reason}"));
                return None;
            }
        };
        let (port_first, port_last) = match &raw.port {
            None => (0, u16::MAX),
            Some(port) => {
                let parsed = match port.get_ref() {
                    toml::Value::Integer(port) => {
                        u16::try_from(*port).ok().map(|port| (port, port))
                    }
                    toml::Value::String(range) => parse_port_range(range),
                    _ => None,
                };
                match parsed {
                    Some(range) => range,
                    None => {
                        self.error(
                            port.span(),
                            "match port must be a port 0 to 65535 or a range like \"8000-8099\"",
                        );
                        return None;
                    }
                }
            }
        };
        Some(FwmarkMatch {
            protocol,
            addr_first,
            addr_last,
            port_first,
            port_last,
        })
    }

    fn dest(&mut self, raw: &RawDest, service_port: u16) -> Option<DestConfig> {
        let parsed = parse_host_port(raw.address.get_ref());
        let method = self.method(raw);
        let weight = self.int_or(&raw.weight, 1, "weight", "0 to 65535");
        let u_threshold = self.int_or(&raw.u_threshold, 0, "u_threshold", "0 to 2147483647");
        let l_threshold = self.int_or(&raw.l_threshold, 0, "l_threshold", "0 to 2147483647");
        let (addr, port) = match parsed {
            Ok(addr_port) => addr_port,
            Err(reason) => {
                self.error(
                    raw.address.span(),
                    format!("illegal real server address[:port] specified: {reason}"),
                );
                return None;
            }
        };
        Some(DestConfig {
            addr,
            port: port.unwrap_or(service_port),
            method: method?,
            weight,
            u_threshold,
            l_threshold,
        })
    }

    fn method(&mut self, raw: &RawDest) -> Option<ForwardMethod> {
        let name = match &raw.method {
            None => MethodName::Dr,
            Some(method) => match method.get_ref().to_ascii_lowercase().as_str() {
                "dr" | "gatewaying" | "route" | "droute" => MethodName::Dr,
                "tun" | "ipip" | "tunnel" | "tunneling" => MethodName::Tun,
                "nat" | "masquerading" | "masq" => MethodName::Nat,
                "fullnat" | "full-nat" | "fnat" => MethodName::FullNat,
                other => {
                    self.error(
                        method.span(),
                        format!("unknown forwarding method `{other}`: use dr, tun, nat or fullnat"),
                    );
                    return None;
                }
            },
        };
        if name != MethodName::Tun {
            let tunnel_option = [
                raw.tun_type.as_ref().map(Spanned::span),
                raw.tun_port.as_ref().map(Spanned::span),
                raw.tun_csum.as_ref().map(Spanned::span),
            ]
            .into_iter()
            .flatten()
            .min_by_key(|span| span.start);
            if let Some(span) = tunnel_option {
                self.error(
                    span,
                    "Tunnel options conflict with forward method: tun_type, tun_port and tun_csum need method = \"tun\"",
                );
                return None;
            }
        }
        match name {
            MethodName::Dr => Some(ForwardMethod::Dr),
            MethodName::Nat => Some(ForwardMethod::Nat),
            MethodName::FullNat => Some(ForwardMethod::FullNat),
            MethodName::Tun => self.tunnel(raw),
        }
    }

    fn tunnel(&mut self, raw: &RawDest) -> Option<ForwardMethod> {
        let tunnel_name = match &raw.tun_type {
            None => "ipip".to_string(),
            Some(kind) => kind.get_ref().to_ascii_lowercase(),
        };
        if !matches!(tunnel_name.as_str(), "ipip" | "gue" | "gre") {
            let span = raw.tun_type.as_ref().map_or(0..0, Spanned::span);
            self.error(
                span,
                format!("illegal tunnel type specified: `{tunnel_name}` (use ipip, gue or gre)"),
            );
            return None;
        }
        let kind = match (tunnel_name.as_str(), &raw.tun_port) {
            ("gue", Some(port)) => match self.int(port, "tun_port", "1 to 65535")? {
                0 => {
                    self.error(
                        port.span(),
                        "illegal tunnel port specified: tun_port must be 1 to 65535, not 0",
                    );
                    return None;
                }
                port => TunnelType::Gue { port },
            },
            ("gue", None) => {
                let span = raw
                    .tun_type
                    .as_ref()
                    .map_or(raw.address.span(), Spanned::span);
                self.error(
                    span,
                    "You need to supply the 'tun-port' option for the 'gue' tunnel type: add tun_port, e.g. tun_port = 6080",
                );
                return None;
            }
            (other, Some(port)) => {
                self.error(
                    port.span(),
                    format!("Illegal 'tun-port' option with the '{other}' tunnel type: only gue has a port"),
                );
                return None;
            }
            ("gre", None) => TunnelType::Gre,
            (_, None) => TunnelType::Ipip,
        };
        let csum = match &raw.tun_csum {
            None => TunnelCsum::NoCsum,
            Some(csum) => {
                let (value, option) = match csum.get_ref().to_ascii_lowercase().as_str() {
                    "nocsum" | "tun-nocsum" => (TunnelCsum::NoCsum, "tun-nocsum"),
                    "csum" | "tun-csum" => (TunnelCsum::Csum, "tun-csum"),
                    "remcsum" | "tun-remcsum" => (TunnelCsum::RemCsum, "tun-remcsum"),
                    other => {
                        self.error(
                            csum.span(),
                            format!("unknown tun_csum `{other}`: use nocsum, csum or remcsum"),
                        );
                        return None;
                    }
                };
                if kind == TunnelType::Ipip {
                    self.error(
                        csum.span(),
                        format!("Illegal '{option}' option with the 'ipip' tunnel type: ipip has no checksum option"),
                    );
                    return None;
                }
                value
            }
        };
        Some(ForwardMethod::Tunnel { kind, csum })
    }
}

// ---------------------------------------------------------------------
// Text forms of addresses and ports.

/// An IP address, with a clear reason when it is not one.
fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse::<IpAddr>().map_err(|_| {
        if text.chars().any(|c| c.is_ascii_alphabetic()) && !text.contains(':') {
            format!("`{text}` is not an IP address (host names are not looked up)")
        } else {
            format!("`{text}` is not an IP address")
        }
    })
}

/// `addr`, `addr:port`, `[v6addr]` or `[v6addr]:port`; a bare IPv6
/// address has no port.
fn parse_host_port(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let port_number = |port: &str| {
        port.parse::<u16>().map_err(|_| {
            format!("port `{port}` is not a number 0 to 65535 (service names are not looked up)")
        })
    };
    if let Some(rest) = text.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!("`{text}` lacks the closing `]`"));
        };
        let addr = addr
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("`{addr}` is not an IPv6 address"))?;
        return match after {
            "" => Ok((IpAddr::V6(addr), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((IpAddr::V6(addr), Some(port_number(port)?))),
                None => Err(format!("`{text}`: expected `:port` after `]`")),
            },
        };
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok((addr, None));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let addr = parse_ip(host)?;
            Ok((addr, Some(port_number(port)?)))
        }
        Some(_) => Err(format!(
            "`{text}` is not an address: write an IPv6 address with a port as [2001:db8::1]:80"
        )),
        None => Err(parse_ip(text).err().unwrap_or_default()),
    }
}

/// `first-last` or a single port.
fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((first, last)) => Some((first.trim().parse().ok()?, last.trim().parse().ok()?)),
        None => {
            let port = text.trim().parse().ok()?;
            Some((port, port))
        }
    }
}

/// One address, `first-last`, or `addr/prefix` (whose host bits must be
/// zero).
fn parse_addr_range(text: &str) -> Result<(IpAddr, IpAddr), String> {
    if let Some((addr, prefix)) = text.split_once('/') {
        let addr = parse_ip(addr.trim())?;
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix: u32 = prefix
            .trim()
            .parse()
            .ok()
            .filter(|prefix| *prefix <= bits)
            .ok_or_else(|| format!("`/{prefix}` is not a prefix length 0 to {bits}"))?;
        return match addr {
            IpAddr::V4(v4) => {
                let host_mask = u32::MAX.checked_shr(prefix).unwrap_or(0);
                let first = u32::from(v4) & !host_mask;
                if first != u32::from(v4) {
                    return Err(format!(
                        "`{text}` has host bits set; the network is {}/{prefix}",
                        Ipv4Addr::from(first)
                    ));
                }
                Ok((
                    IpAddr::V4(Ipv4Addr::from(first)),
                    IpAddr::V4(Ipv4Addr::from(first | host_mask)),
                ))
            }
            IpAddr::V6(v6) => {
                let host_mask = u128::MAX.checked_shr(prefix).unwrap_or(0);
                let first = u128::from(v6) & !host_mask;
                if first != u128::from(v6) {
                    return Err(format!(
                        "`{text}` has host bits set; the network is {}/{prefix}",
                        Ipv6Addr::from(first)
                    ));
                }
                Ok((
                    IpAddr::V6(Ipv6Addr::from(first)),
                    IpAddr::V6(Ipv6Addr::from(first | host_mask)),
                ))
            }
        };
    }
    if let Some((first, last)) = text.split_once('-') {
        let first = parse_ip(first.trim())?;
        let last = parse_ip(last.trim())?;
        if (first.is_ipv4()) != (last.is_ipv4()) {
            return Err(format!("`{text}` mixes IPv4 and IPv6"));
        }
        return Ok((first, last));
    }
    let addr = parse_ip(text.trim())?;
    Ok((addr, addr))
}

// ---------------------------------------------------------------------
// From a model place back to the file.

/// The span of the first present value, else `fallback`.
fn first_span(candidates: &[Option<Range<usize>>], fallback: Range<usize>) -> Range<usize> {
    candidates
        .iter()
        .flatten()
        .next()
        .cloned()
        .unwrap_or(fallback)
}

fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
    value.as_ref().map(Spanned::span)
}

/// Where in the file the value a [`Place`] names was written (or the
/// table that lacks it).
fn span_of(raw: &RawConfig, place: Place) -> Range<usize> {
    match place {
        Place::Engine(field) => {
            let Some(engine) = &raw.engine else {
                return 0..0;
            };
            let table = engine.span();
            let engine = engine.get_ref();
            match field {
                EngineField::ConnTableSize => first_span(&[span(&engine.conn_table_size)], table),
                EngineField::ConnTabBits => first_span(&[span(&engine.conn_tab_bits)], table),
                EngineField::Interface(index) => {
                    engine.interfaces.get(index).map_or(table, Spanned::span)
                }
                EngineField::TunnelSourceV4 => first_span(&[span(&engine.tunnel_source_v4)], table),
                EngineField::TunnelSourceV6 => first_span(&[span(&engine.tunnel_source_v6)], table),
                EngineField::ConnReuseMode => first_span(&[span(&engine.conn_reuse_mode)], table),
                EngineField::UmemFrames => first_span(&[span(&engine.umem_frames)], table),
                EngineField::TunDevice => first_span(&[span(&engine.tun_device)], table),
            }
        }
        Place::Timeout(field) => {
            let Some(timeouts) = &raw.timeouts else {
                return 0..0;
            };
            let table = timeouts.span();
            let timeouts = timeouts.get_ref();
            let value = match field {
                TimeoutField::Tcp => span(&timeouts.tcp),
                TimeoutField::TcpFin => span(&timeouts.tcpfin),
                TimeoutField::Udp => span(&timeouts.udp),
            };
            first_span(&[value], table)
        }
        Place::FullNatPool(field) => {
            let Some(pool) = &raw.fullnat else {
                return 0..0;
            };
            let table = pool.span();
            let pool = pool.get_ref();
            match field {
                PoolField::Addr(index) => pool.addrs.get(index).map_or(table, Spanned::span),
                PoolField::Ports => first_span(&[span(&pool.port_range)], table),
            }
        }
        Place::Service { service, field } => {
            let Some(spanned) = raw.service.get(service) else {
                return 0..0;
            };
            let header = spanned.span();
            let service = spanned.get_ref();
            let key = [span(&service.address), span(&service.fwmark)];
            match field {
                ServiceField::Whole | ServiceField::Dests => header,
                ServiceField::Key | ServiceField::Port => first_span(&key, header),
                ServiceField::Scheduler => first_span(&[span(&service.scheduler)], header),
                ServiceField::Flags => first_span(&[span(&service.flags)], header),
                ServiceField::Persistence => first_span(&[span(&service.persistent)], header),
                ServiceField::Netmask => {
                    first_span(&[span(&service.netmask), span(&service.persistent)], header)
                }
                ServiceField::OnePacket => first_span(&[span(&service.one_packet)], header),
            }
        }
        Place::Match {
            service,
            index,
            field,
        } => {
            let Some(spanned) = raw.service.get(service) else {
                return 0..0;
            };
            let Some(range) = spanned.get_ref().matches.get(index) else {
                return spanned.span();
            };
            let header = range.span();
            let range = range.get_ref();
            match field {
                MatchField::Whole => header,
                MatchField::Addr => range.address.span(),
                MatchField::Ports => first_span(&[span(&range.port)], header),
            }
        }
        Place::Dest {
            service,
            dest,
            field,
        } => {
            let Some(spanned) = raw.service.get(service) else {
                return 0..0;
            };
            let Some(dest) = spanned.get_ref().real_server.get(dest) else {
                return spanned.span();
            };
            let header = dest.span();
            let dest = dest.get_ref();
            let method = span(&dest.method);
            match field {
                DestField::Whole => header,
                DestField::Addr | DestField::Port => dest.address.span(),
                DestField::Method => first_span(&[method], header),
                DestField::TunnelType => first_span(&[span(&dest.tun_type), method], header),
                DestField::TunnelPort => first_span(
                    &[span(&dest.tun_port), span(&dest.tun_type), method],
                    header,
                ),
                DestField::TunnelCsum => first_span(
                    &[span(&dest.tun_csum), span(&dest.tun_type), method],
                    header,
                ),
                DestField::Weight => first_span(&[span(&dest.weight)], header),
                DestField::UThreshold => first_span(&[span(&dest.u_threshold)], header),
                DestField::LThreshold => {
                    first_span(&[span(&dest.l_threshold), span(&dest.u_threshold)], header)
                }
            }
        }
    }
}

/// The message for a model problem found in a file: the model's words,
/// plus where the first copy of a duplicate is.
fn message_for(text: &str, raw: &RawConfig, config: &Config, problem: &ModelError) -> String {
    let earlier_line = |place: Place| line_column(text, span_of(raw, place).start).0;
    match (&problem.kind, problem.place) {
        (ModelErrorKind::DuplicateService, Place::Service { service, .. }) => {
            let first = config
                .services
                .iter()
                .position(|other| other.key == config.services[service].key)
                .unwrap_or(service);
            let line = earlier_line(Place::Service {
                service: first,
                field: ServiceField::Key,
            });
            format!(
                "{}: the same service is defined at line {line}",
                problem.kind
            )
        }
        (ModelErrorKind::DuplicateDest, Place::Dest { service, dest, .. }) => {
            let dests = &config.services[service].dests;
            let first = dests
                .iter()
                .position(|other| other.addr == dests[dest].addr && other.port == dests[dest].port)
                .unwrap_or(dest);
            let line = earlier_line(Place::Dest {
                service,
                dest: first,
                field: DestField::Addr,
            });
            format!(
                "{}: the same real server is defined at line {line}",
                problem.kind
            )
        }
        _ => problem.kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_settings_are_read_and_written() {
        let config = parse_config(
            "t.toml",
            "[engine]\numem_frames = 1024\ntun_device = \"uvt3\"\n",
        )
        .expect("valid");
        assert_eq!(config.engine.umem_frames, 1024);
        assert_eq!(config.engine.tun_device, "uvt3");
        assert_eq!(
            parse_config("t.toml", &to_toml(&config)).expect("valid"),
            config
        );
        let default = parse_config("t.toml", "").expect("valid");
        assert_eq!(default.engine.umem_frames, 4096);
        assert_eq!(default.engine.tun_device, "uvs0");
    }

    #[test]
    fn bad_backend_settings_point_at_their_values() {
        let text = "[engine]\numem_frames = 1000\ntun_device = \"a/b\"\n";
        let message = parse_config("t.toml", text).unwrap_err().to_string();
        assert!(
            message.contains("t.toml:2:15:") && message.contains("umem_frames 1000"),
            "{message}"
        );
        assert!(
            message.contains("t.toml:3:14:") && message.contains("invalid tun_device `a/b'"),
            "{message}"
        );
        let message = parse_config("t.toml", "[engine]\numem_frames = 32\n")
            .unwrap_err()
            .to_string();
        assert!(message.contains("t.toml:2:15:"), "{message}");
        let message = parse_config("t.toml", "[engine]\numem_frames = -1\n")
            .unwrap_err()
            .to_string();
        assert!(message.contains("t.toml:2:15:"), "{message}");
    }
}
