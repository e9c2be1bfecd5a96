//! ipvsadm's command line, read exactly as ipvsadm 1.31 reads it with popt.
//!
//! [`parse_args`] takes one invocation (`argv`, program name first) and
//! gives the [`Action`] to run, or the [`ParseError`] ipvsadm would print:
//! the first option must be a command; short options bundle (`-Ln`); an
//! option's argument is the rest of its bundle or the next word (for the
//! optional `-p` only when that word does not start with `-`); leftover
//! words are `--set`'s three values or "unexpected argument"; then the
//! legality matrix (`commands_v_options`, [`LEGALITY`]), the tunnel-type
//! matrix and the semantic checks, each with ipvsadm's message. What the
//! kernel would refuse (an unknown scheduler or persistence engine)
//! becomes [`Action::EngineError`] / [`Action::ListError`], printed when
//! the command runs.
//!
//! Additions, which change nothing ipvsadm accepts: `--json` (listings
//! only) and `--fullnat` (a forwarding method IPVS lacks, like `-g`/`-i`/`-m`).

use std::net::{IpAddr, Ipv4Addr};

use uvs_conf::control::{Command, ServiceSpec, SyncDaemonSpec, SyncRole};
use uvs_conf::{
    DestConfig, Family, ForwardMethod, Netmask, Persistence, PersistenceEngine, SchedFlags,
    SchedulerName, ServiceKey, TunnelCsum, TunnelType,
};

use crate::addr::{atoi, parse_netmask, parse_service, string_to_number, AF_INET, AF_INET6};
use crate::resolve::Resolver;

/// Longest timeout ipvsadm accepts: 31 days.
pub const MAX_TIMEOUT: i64 = 86_400 * 31;

/// Persistence timeout of a bare `-p` (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;

/// ipvsadm's commands, in its `cmdnames` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `-A`.
    Add,
    /// `-E`.
    Edit,
    /// `-D`.
    Del,
    /// `-C`.
    Flush,
    /// `-L`.
    List,
    /// `-a`.
    AddDest,
    /// `-d`.
    DelDest,
    /// `-e`.
    EditDest,
    /// `--set`.
    Timeout,
    /// `--start-daemon`.
    StartDaemon,
    /// `--stop-daemon`.
    StopDaemon,
    /// `-R`.
    Restore,
    /// `-S`.
    Save,
    /// `-Z`.
    Zero,
}

/// Command names as ipvsadm prints them in messages.
pub const CMD_NAMES: [&str; 14] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
];

/// Option names as ipvsadm prints them in messages (its `optnames`), plus
/// uvsadm's `json` at the end.
pub const OPT_NAMES: [&str; 35] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
    "json",
];

/// ipvsadm's `commands_v_options`, one row per [`Cmd`], one column per
/// [`OPT_NAMES`] entry: `+` required, `x` illegal, `1` exclusive, ` `
/// optional. The last column (`json`) is uvsadm's.
pub const LEGALITY: [&str; 14] = [
    "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
    "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
    "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    " 11xxxxxxxxx11       xxxxxxx xxxxx ",
    "xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
    "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxx xxxxxxx xxxx    xxxxxxx",
    "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

/// Option indices (ipvsadm's `OPTC_*`).
#[allow(missing_docs)]
pub mod optc {
    pub const NUMERIC: usize = 0;
    pub const CONNECTION: usize = 1;
    pub const SERVICE: usize = 2;
    pub const SCHEDULER: usize = 3;
    pub const PERSISTENT: usize = 4;
    pub const NETMASK: usize = 5;
    pub const SERVER: usize = 6;
    pub const FORWARD: usize = 7;
    pub const WEIGHT: usize = 8;
    pub const UTHRESHOLD: usize = 9;
    pub const LTHRESHOLD: usize = 10;
    pub const MCAST: usize = 11;
    pub const TIMEOUT: usize = 12;
    pub const DAEMON: usize = 13;
    pub const STATS: usize = 14;
    pub const RATE: usize = 15;
    pub const THRESHOLDS: usize = 16;
    pub const PERSISTENTCONN: usize = 17;
    pub const NOSORT: usize = 18;
    pub const SYNCID: usize = 19;
    pub const EXACT: usize = 20;
    pub const ONEPACKET: usize = 21;
    pub const PE: usize = 22;
    pub const SCHED_FLAGS: usize = 23;
    pub const MCAST_GROUP: usize = 24;
    pub const MCAST_PORT: usize = 25;
    pub const MCAST_TTL: usize = 26;
    pub const SYNC_MAXLEN: usize = 27;
    pub const TUN_INFO: usize = 28;
    pub const TUN_TYPE: usize = 29;
    pub const TUN_PORT: usize = 30;
    pub const TUN_NOCSUM: usize = 31;
    pub const TUN_CSUM: usize = 32;
    pub const TUN_REMCSUM: usize = 33;
    pub const JSON: usize = 34;
}

/// Tunnel types in ipvsadm's order, and its `tunnel_types_v_options`
/// (columns: tun-port, tun-nocsum, tun-csum, tun-remcsum).
const TUN_NAMES: [&str; 3] = ["ipip", "gue", "gre"];
const TUN_OPTS: [usize; 4] = [
    optc::TUN_PORT,
    optc::TUN_NOCSUM,
    optc::TUN_CSUM,
    optc::TUN_REMCSUM,
];
const TUN_LEGALITY: [&str; 3] = ["xxxx", "+111", "x11x"];

/// Listing format switches (ipvsadm's `FMT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    /// `-n`.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact`.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

/// What a listing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListWhat {
    /// The whole table, with the version header.
    All,
    /// One service.
    Service(ServiceKey),
    /// `-c`.
    Connections,
    /// `--timeout`.
    Timeouts,
    /// `--daemon`.
    Daemons,
}

/// What one invocation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `-h`: usage on stdout, exit 0.
    Help,
    /// `-v`: version on stdout, exit 0.
    Version,
    /// `-L`.
    List {
        /// What to list.
        what: ListWhat,
        /// How.
        format: Format,
        /// `--json` instead of ipvsadm's text.
        json: bool,
    },
    /// `-S`.
    Save {
        /// `-n`.
        numeric: bool,
    },
    /// `-R`.
    Restore,
    /// A command for uvsd that changes something.
    Send(Command),
    /// What the engine would answer without being asked (e.g. an unknown
    /// scheduler): printed, exit 255.
    EngineError(&'static str),
    /// A listing the engine cannot answer: printed, exit 1.
    ListError(&'static str),
}

/// Why an invocation is refused before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// ipvsadm's `fail(2, ...)`: the message, exit 2 (ends a restore).
    Fail(String),
    /// ipvsadm's `tryhelp_exit`: "Try `prog -h' ...", exit 255 (ends a
    /// restore).
    TryHelp,
    /// A popt error (unknown option, missing argument): "word: error",
    /// status 255; a restore goes on with the next line.
    Popt {
        /// The word popt blames.
        word: String,
        /// popt's message.
        error: &'static str,
    },
}

impl ParseError {
    /// The text ipvsadm prints on stderr (without the final newline).
    pub fn message(&self, prog: &str) -> String {
        match self {
            ParseError::Fail(m) => m.clone(),
            ParseError::TryHelp => {
                format!("Try `{prog} -h' or '{prog} --help' for more information.")
            }
            ParseError::Popt { word, error } => format!("{word}: {error}"),
        }
    }

    /// The exit status ipvsadm ends with.
    pub fn status(&self) -> i32 {
        match self {
            ParseError::Fail(_) => 2,
            ParseError::TryHelp | ParseError::Popt { .. } => 255,
        }
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Fail(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Command(Cmd),
    Help,
    Version,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masq,
    Ipip,
    Gate,
    FullNat,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Json,
}

struct OptSpec {
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    tag: Tag,
}

const fn opt(long: &'static str, short: Option<char>, arg: ArgKind, tag: Tag) -> OptSpec {
    OptSpec {
        long,
        short,
        arg,
        tag,
    }
}

/// ipvsadm's popt table, in its order.
const OPTIONS: &[OptSpec] = &[
    opt(
        "add-service",
        Some('A'),
        ArgKind::None,
        Tag::Command(Cmd::Add),
    ),
    opt(
        "edit-service",
        Some('E'),
        ArgKind::None,
        Tag::Command(Cmd::Edit),
    ),
    opt(
        "delete-service",
        Some('D'),
        ArgKind::None,
        Tag::Command(Cmd::Del),
    ),
    opt("clear", Some('C'), ArgKind::None, Tag::Command(Cmd::Flush)),
    opt("list", Some('L'), ArgKind::None, Tag::Command(Cmd::List)),
    opt("list", Some('l'), ArgKind::None, Tag::Command(Cmd::List)),
    opt("zero", Some('Z'), ArgKind::None, Tag::Command(Cmd::Zero)),
    opt(
        "add-server",
        Some('a'),
        ArgKind::None,
        Tag::Command(Cmd::AddDest),
    ),
    opt(
        "edit-server",
        Some('e'),
        ArgKind::None,
        Tag::Command(Cmd::EditDest),
    ),
    opt(
        "delete-server",
        Some('d'),
        ArgKind::None,
        Tag::Command(Cmd::DelDest),
    ),
    opt("set", None, ArgKind::None, Tag::Command(Cmd::Timeout)),
    opt("help", Some('h'), ArgKind::None, Tag::Help),
    opt("version", Some('v'), ArgKind::None, Tag::Version),
    opt(
        "restore",
        Some('R'),
        ArgKind::None,
        Tag::Command(Cmd::Restore),
    ),
    opt("save", Some('S'), ArgKind::None, Tag::Command(Cmd::Save)),
    opt("start-daemon", None, ArgKind::Required, Tag::StartDaemon),
    opt("stop-daemon", None, ArgKind::Required, Tag::StopDaemon),
    opt("tcp-service", Some('t'), ArgKind::Required, Tag::Tcp),
    opt("udp-service", Some('u'), ArgKind::Required, Tag::Udp),
    opt("sctp-service", None, ArgKind::Required, Tag::Sctp),
    opt("fwmark-service", Some('f'), ArgKind::Required, Tag::Fwmark),
    opt("scheduler", Some('s'), ArgKind::Required, Tag::Scheduler),
    opt("persistent", Some('p'), ArgKind::Optional, Tag::Persistent),
    opt("netmask", Some('M'), ArgKind::Required, Tag::Netmask),
    opt("real-server", Some('r'), ArgKind::Required, Tag::RealServer),
    opt("masquerading", Some('m'), ArgKind::None, Tag::Masq),
    opt("ipip", Some('i'), ArgKind::None, Tag::Ipip),
    opt("gatewaying", Some('g'), ArgKind::None, Tag::Gate),
    opt("fullnat", None, ArgKind::None, Tag::FullNat),
    opt("weight", Some('w'), ArgKind::Required, Tag::Weight),
    opt("u-threshold", Some('x'), ArgKind::Required, Tag::UThreshold),
    opt("l-threshold", Some('y'), ArgKind::Required, Tag::LThreshold),
    opt("numeric", Some('n'), ArgKind::None, Tag::Numeric),
    opt("connection", Some('c'), ArgKind::None, Tag::Connection),
    opt(
        "mcast-interface",
        None,
        ArgKind::Required,
        Tag::McastInterface,
    ),
    opt("syncid", None, ArgKind::Required, Tag::SyncId),
    opt("timeout", None, ArgKind::None, Tag::Timeout),
    opt("daemon", None, ArgKind::None, Tag::Daemon),
    opt("stats", None, ArgKind::None, Tag::Stats),
    opt("rate", None, ArgKind::None, Tag::Rate),
    opt("thresholds", None, ArgKind::None, Tag::Thresholds),
    opt("persistent-conn", None, ArgKind::None, Tag::PersistentConn),
    opt("nosort", None, ArgKind::None, Tag::NoSort),
    opt("sort", None, ArgKind::None, Tag::Sort),
    opt("exact", Some('X'), ArgKind::None, Tag::Exact),
    opt("ipv6", Some('6'), ArgKind::None, Tag::Ipv6),
    opt("ops", Some('o'), ArgKind::None, Tag::Ops),
    opt("pe", None, ArgKind::Required, Tag::Pe),
    opt("sched-flags", Some('b'), ArgKind::Required, Tag::SchedFlags),
    opt("mcast-group", None, ArgKind::Required, Tag::McastGroup),
    opt("mcast-port", None, ArgKind::Required, Tag::McastPort),
    opt("mcast-ttl", None, ArgKind::Required, Tag::McastTtl),
    opt("sync-maxlen", None, ArgKind::Required, Tag::SyncMaxlen),
    opt("tun-info", None, ArgKind::None, Tag::TunInfo),
    opt("tun-type", None, ArgKind::Required, Tag::TunType),
    opt("tun-port", None, ArgKind::Required, Tag::TunPort),
    opt("tun-nocsum", None, ArgKind::None, Tag::TunNocsum),
    opt("tun-csum", None, ArgKind::None, Tag::TunCsum),
    opt("tun-remcsum", None, ArgKind::None, Tag::TunRemcsum),
    opt("json", None, ArgKind::None, Tag::Json),
];

/// One step of popt's scan.
enum Item {
    Opt { tag: Tag, value: Option<String> },
    Error(&'static str),
    End,
}

/// popt's `poptGetNextOpt` over an argv, collecting leftover words.
struct Scanner<'a> {
    args: &'a [String],
    next: usize,
    /// Word index and byte offset inside a short-option bundle.
    bundle: Option<(usize, usize)>,
    only_args: bool,
    leftovers: Vec<String>,
}

impl<'a> Scanner<'a> {
    fn new(args: &'a [String]) -> Scanner<'a> {
        Scanner {
            args,
            next: 1,
            bundle: None,
            only_args: false,
            leftovers: Vec::new(),
        }
    }

    /// The word popt blames (`argv[next - 1]`).
    fn bad_word(&self) -> String {
        self.args
            .get(self.next.saturating_sub(1))
            .cloned()
            .unwrap_or_default()
    }

    fn take_next(&mut self, kind: ArgKind) -> Result<Option<String>, &'static str> {
        match self.args.get(self.next) {
            None if kind == ArgKind::Optional => Ok(None),
            None => Err("missing argument"),
            Some(w) if kind == ArgKind::Optional && w.starts_with('-') => Ok(None),
            Some(w) => {
                self.next += 1;
                Ok(Some(w.clone()))
            }
        }
    }

    fn next_item(&mut self) -> Item {
        loop {
            if let Some((w, pos)) = self.bundle {
                let word = &self.args[w];
                let Some(c) = word[pos..].chars().next() else {
                    self.bundle = None;
                    continue;
                };
                let mut after = pos + c.len_utf8();
                // popt skips an '=' after a short option ("-p=300").
                if word[after..].starts_with('=') {
                    after += 1;
                }
                self.bundle = (after < word.len()).then_some((w, after));
                let Some(spec) = OPTIONS.iter().find(|o| o.short == Some(c)) else {
                    self.bundle = None;
                    return Item::Error("unknown option");
                };
                let value = match spec.arg {
                    ArgKind::None => None,
                    kind => {
                        if let Some((w, p)) = self.bundle.take() {
                            Some(self.args[w][p..].to_string())
                        } else {
                            match self.take_next(kind) {
                                Ok(v) => v,
                                Err(e) => return Item::Error(e),
                            }
                        }
                    }
                };
                return Item::Opt {
                    tag: spec.tag,
                    value,
                };
            }
            let Some(word) = self.args.get(self.next) else {
                return Item::End;
            };
            self.next += 1;
            if self.only_args {
                self.leftovers.push(word.clone());
                continue;
            }
            if word == "--" {
                self.only_args = true;
                continue;
            }
            if let Some(long) = word.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                let Some(spec) = OPTIONS.iter().find(|o| o.long == name) else {
                    return Item::Error("unknown option");
                };
                let value = match (spec.arg, inline) {
                    (ArgKind::None, Some(_)) => {
                        return Item::Error("option does not take an argument")
                    }
                    (ArgKind::None, None) => None,
                    (_, Some(v)) => Some(v),
                    (kind, None) => match self.take_next(kind) {
                        Ok(v) => v,
                        Err(e) => return Item::Error(e),
                    },
                };
                return Item::Opt {
                    tag: spec.tag,
                    value,
                };
            }
            if word.len() > 1 && word.starts_with('-') {
                self.bundle = Some((self.next - 1, 1));
                continue;
            }
            self.leftovers.push(word.clone());
        }
    }
}

/// ipvsadm's `ipvs_service_t`, as far as the parser fills it.
#[derive(Debug, Clone)]
struct Svc {
    af: u16,
    protocol: u8,
    addr: IpAddr,
    port: u16,
    fwmark: u32,
    sched: String,
    persistent: bool,
    timeout: u32,
    /// IPv4: the mask as a host-order value; IPv6: the prefix length.
    netmask: u32,
    pe: String,
    ops: bool,
    flags: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fwd {
    Dr,
    Tunnel,
    Masq,
    FullNat,
}

/// ipvsadm's `ipvs_dest_t`.
#[derive(Debug, Clone)]
struct Dest {
    af: u16,
    addr: IpAddr,
    port: u16,
    fwd: Fwd,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    tun_type: usize,
    tun_port: u16,
    tun_flags: u8,
}

#[derive(Debug, Clone, Default)]
struct Daemon {
    role: Option<SyncRole>,
    ifname: String,
    syncid: u8,
    maxlen: Option<u16>,
    group: Option<IpAddr>,
    port: Option<u16>,
    ttl: Option<u8>,
}

const SCHED1: u32 = 0x08;
const SCHED2: u32 = 0x10;
const SCHED3: u32 = 0x20;

/// `-b`'s flags, checked against the scheduler as ipvsadm does.
fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, ParseError> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut flags = 0;
    let mut tokens = arg.split(',').filter(|t| !t.is_empty()).peekable();
    if tokens.peek().is_none() {
        return fail("invalid scheduler flag `'");
    }
    for flag in tokens {
        let (bit, needs) = match flag {
            "flag-1" => (SCHED1, None),
            "flag-2" => (SCHED2, None),
            "flag-3" => (SCHED3, None),
            "sh-fallback" => (SCHED1, Some("sh")),
            "sh-port" => (SCHED2, Some("sh")),
            "mh-fallback" => (SCHED1, Some("mh")),
            "mh-port" => (SCHED2, Some("mh")),
            _ => return fail(format!("invalid scheduler flag `{flag}'")),
        };
        flags |= bit;
        if let Some(needed) = needs {
            if sched != needed {
                return fail(format!("incompatible scheduler flag `{flag}'"));
            }
        }
    }
    Ok(flags)
}

fn generic_opt_check(cmd: Cmd, options: u64) -> Result<(), ParseError> {
    let row = LEGALITY[cmd as usize].as_bytes();
    let name = CMD_NAMES[cmd as usize];
    let mut last = None;
    for (j, &cell) in row.iter().enumerate() {
        let set = options & (1u64 << j) != 0;
        if !set {
            if cell == b'+' {
                return fail(format!(
                    "You need to supply the '{}' option for the '{name}' command",
                    OPT_NAMES[j]
                ));
            }
            continue;
        }
        if cell == b'x' {
            return fail(format!(
                "Illegal '{}' option with the '{name}' command",
                OPT_NAMES[j]
            ));
        }
        if cell == b'1' {
            match last {
                None => last = Some(j),
                Some(l) => {
                    return fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{name}' command",
                        OPT_NAMES[j], OPT_NAMES[l]
                    ))
                }
            }
        }
    }
    Ok(())
}

fn tunnel_opt_check(tun_type: usize, options: u64) -> Result<(), ParseError> {
    let row = TUN_LEGALITY[tun_type].as_bytes();
    let name = TUN_NAMES[tun_type];
    let mut last = None;
    for (j, &cell) in row.iter().enumerate() {
        let k = TUN_OPTS[j];
        let set = options & (1u64 << k) != 0;
        if !set {
            if cell == b'+' {
                return fail(format!(
                    "You need to supply the '{}' option for the '{name}' tunnel type",
                    OPT_NAMES[k]
                ));
            }
            continue;
        }
        if cell == b'x' {
            return fail(format!(
                "Illegal '{}' option with the '{name}' tunnel type",
                OPT_NAMES[k]
            ));
        }
        if cell == b'1' {
            match last {
                None => last = Some(k),
                Some(l) => {
                    return fail(format!(
                    "The option '{}' conflicts with the '{}' option in the '{name}' tunnel type",
                    OPT_NAMES[k], OPT_NAMES[l]
                ))
                }
            }
        }
    }
    Ok(())
}

fn set_option(options: &mut u64, optc: usize) -> Result<(), ParseError> {
    let bit = 1u64 << optc;
    if *options & bit != 0 {
        return fail(format!("multiple '{}' options specified", OPT_NAMES[optc]));
    }
    *options |= bit;
    Ok(())
}

fn parse_timeout(buf: Option<&str>, min: i64, max: i64) -> Result<u32, ParseError> {
    let Some(buf) = buf else {
        return Ok(DEFAULT_PERSISTENT_TIMEOUT);
    };
    match string_to_number(buf, min, max) {
        Some(n) => Ok(n as u32),
        None => fail(format!("invalid timeout value `{buf}' specified")),
    }
}

fn number(value: &str, min: i64, max: i64, what: &str) -> Result<i64, ParseError> {
    string_to_number(value, min, max)
        .ok_or_else(|| ParseError::Fail(format!("illegal {what} specified")))
}

/// Read one invocation. `args[0]` is the program name. `resolver` turns
/// host and port names into numbers.
pub fn parse_args(args: &[String], resolver: &dyn Resolver) -> Result<Action, ParseError> {
    let mut scan = Scanner::new(args);
    let mut options: u64 = 0;
    let mut format = Format::default();
    let mut json = false;
    let mut svc = Svc {
        af: 0,
        protocol: 0,
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        fwmark: 0,
        sched: String::new(),
        persistent: false,
        timeout: 0,
        netmask: u32::MAX,
        pe: String::new(),
        ops: false,
        flags: 0,
    };
    let mut dest = Dest {
        af: 0,
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        fwd: Fwd::Dr,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        tun_type: 0,
        tun_port: 0,
        tun_flags: 0,
    };
    let mut daemon = Daemon::default();
    let mut sched_flags_arg = String::new();

    let cmd = match scan.next_item() {
        Item::Opt { tag, value } => match tag {
            Tag::Command(c) => c,
            Tag::Help => return Ok(Action::Help),
            Tag::Version => return Ok(Action::Version),
            Tag::StartDaemon => {
                daemon.role = Some(match value.as_deref() {
                    Some("master") => SyncRole::Master,
                    Some("backup") => SyncRole::Backup,
                    _ => return fail("illegal start-daemon parameter specified"),
                });
                Cmd::StartDaemon
            }
            Tag::StopDaemon => {
                daemon.role = Some(match value.as_deref() {
                    Some("master") => SyncRole::Master,
                    Some("backup") => SyncRole::Backup,
                    _ => return fail("illegal start_daemon specified"),
                });
                Cmd::StopDaemon
            }
            _ => return Err(ParseError::TryHelp),
        },
        Item::Error(_) | Item::End => return Err(ParseError::TryHelp),
    };

    loop {
        let (tag, value) = match scan.next_item() {
            Item::End => break,
            Item::Error(error) => {
                return Err(ParseError::Popt {
                    word: scan.bad_word(),
                    error,
                })
            }
            Item::Opt { tag, value } => (tag, value),
        };
        let v = value.as_deref().unwrap_or("");
        match tag {
            Tag::Tcp | Tag::Udp | Tag::Sctp => {
                set_option(&mut options, optc::SERVICE)?;
                svc.protocol = match tag {
                    Tag::Tcp => 6,
                    Tag::Udp => 17,
                    _ => 132,
                };
                let Some(hp) = parse_service(v, svc.protocol, resolver) else {
                    return fail("illegal virtual server address[:port] specified");
                };
                svc.af = hp.af;
                svc.addr = hp.addr;
                if hp.af == AF_INET6 {
                    svc.netmask = 128;
                }
                if let Some(p) = hp.port {
                    svc.port = p;
                }
            }
            Tag::Fwmark => {
                set_option(&mut options, optc::SERVICE)?;
                svc.af = AF_INET;
                svc.protocol = 6;
                svc.fwmark = match string_to_number(v, 1, i64::from(u32::MAX)) {
                    Some(m) => m as u32,
                    None => return fail(format!("invalid fwmark value `{v}' specified")),
                };
            }
            Tag::Scheduler => {
                set_option(&mut options, optc::SCHEDULER)?;
                svc.sched = v.chars().take(15).collect();
            }
            Tag::Persistent => {
                set_option(&mut options, optc::PERSISTENT)?;
                svc.persistent = true;
                svc.timeout = parse_timeout(value.as_deref(), 1, MAX_TIMEOUT)?;
            }
            Tag::Netmask => {
                set_option(&mut options, optc::NETMASK)?;
                if svc.af != AF_INET6 {
                    match parse_netmask(v, resolver) {
                        Some(m) => svc.netmask = m,
                        None => return fail("illegal virtual server persistent mask specified"),
                    }
                } else {
                    let n = atoi(v);
                    if !(1..=128).contains(&n) {
                        return fail("illegal ipv6 netmask specified");
                    }
                    svc.netmask = n as u32;
                }
            }
            Tag::RealServer => {
                set_option(&mut options, optc::SERVER)?;
                let Some(hp) = parse_service(v, svc.protocol, resolver) else {
                    return fail("illegal real server address[:port] specified");
                };
                dest.af = hp.af;
                dest.addr = hp.addr;
                dest.port = hp.port.unwrap_or(svc.port);
            }
            Tag::Ipip | Tag::Gate | Tag::Masq | Tag::FullNat => {
                set_option(&mut options, optc::FORWARD)?;
                dest.fwd = match tag {
                    Tag::Ipip => Fwd::Tunnel,
                    Tag::Gate => Fwd::Dr,
                    Tag::Masq => Fwd::Masq,
                    _ => Fwd::FullNat,
                };
            }
            Tag::Weight => {
                set_option(&mut options, optc::WEIGHT)?;
                dest.weight = number(v, 0, 65535, "weight")? as u32;
            }
            Tag::UThreshold => {
                set_option(&mut options, optc::UTHRESHOLD)?;
                dest.u_threshold = number(v, 0, i64::from(i32::MAX), "u_threshold")? as u32;
            }
            Tag::LThreshold => {
                set_option(&mut options, optc::LTHRESHOLD)?;
                dest.l_threshold = number(v, 0, i64::from(i32::MAX), "l_threshold")? as u32;
            }
            Tag::Connection => set_option(&mut options, optc::CONNECTION)?,
            Tag::Numeric => {
                set_option(&mut options, optc::NUMERIC)?;
                format.numeric = true;
            }
            Tag::McastInterface => {
                set_option(&mut options, optc::MCAST)?;
                daemon.ifname = v.chars().take(15).collect();
            }
            Tag::SyncId => {
                set_option(&mut options, optc::SYNCID)?;
                daemon.syncid = number(v, 0, 255, "syncid")? as u8;
            }
            Tag::Timeout => set_option(&mut options, optc::TIMEOUT)?,
            Tag::Daemon => set_option(&mut options, optc::DAEMON)?,
            Tag::Stats => {
                set_option(&mut options, optc::STATS)?;
                format.stats = true;
            }
            Tag::Rate => {
                set_option(&mut options, optc::RATE)?;
                format.rate = true;
            }
            Tag::Thresholds => {
                set_option(&mut options, optc::THRESHOLDS)?;
                format.thresholds = true;
            }
            Tag::PersistentConn => {
                set_option(&mut options, optc::PERSISTENTCONN)?;
                format.persistent_conn = true;
            }
            Tag::NoSort => {
                set_option(&mut options, optc::NOSORT)?;
                format.nosort = true;
            }
            Tag::Sort => {}
            Tag::Exact => {
                set_option(&mut options, optc::EXACT)?;
                format.exact = true;
            }
            Tag::Ipv6 => {
                if svc.fwmark != 0 {
                    svc.af = AF_INET6;
                    svc.netmask = 128;
                } else {
                    return fail("-6 used before -f\n");
                }
            }
            Tag::Ops => {
                set_option(&mut options, optc::ONEPACKET)?;
                svc.ops = true;
            }
            Tag::Pe => {
                set_option(&mut options, optc::PE)?;
                svc.pe = v.to_string();
            }
            Tag::SchedFlags => {
                set_option(&mut options, optc::SCHED_FLAGS)?;
                sched_flags_arg = v.chars().take(127).collect();
            }
            Tag::McastGroup => {
                set_option(&mut options, optc::MCAST_GROUP)?;
                if v.contains(':') {
                    match v.parse::<std::net::Ipv6Addr>() {
                        Ok(a) if a.is_multicast() => daemon.group = Some(IpAddr::V6(a)),
                        _ => return fail(format!("invalid IPv6 mcast-group `{v}'")),
                    }
                } else {
                    match v.parse::<Ipv4Addr>() {
                        Ok(a) if a.is_multicast() => daemon.group = Some(IpAddr::V4(a)),
                        _ => return fail(format!("invalid IPv4 mcast-group `{v}'")),
                    }
                }
            }
            Tag::McastPort => {
                set_option(&mut options, optc::MCAST_PORT)?;
                daemon.port = Some(number(v, 1, 65535, "mcast-port")? as u16);
            }
            Tag::McastTtl => {
                set_option(&mut options, optc::MCAST_TTL)?;
                daemon.ttl = Some(number(v, 1, 255, "mcast-ttl")? as u8);
            }
            Tag::SyncMaxlen => {
                set_option(&mut options, optc::SYNC_MAXLEN)?;
                daemon.maxlen = Some(number(v, 1, 65535 - 20 - 8, "sync-maxlen")? as u16);
            }
            Tag::TunInfo => {
                set_option(&mut options, optc::TUN_INFO)?;
                format.tun_info = true;
            }
            Tag::TunType => {
                set_option(&mut options, optc::TUN_TYPE)?;
                dest.tun_type = match TUN_NAMES.iter().position(|n| *n == v) {
                    Some(t) => t,
                    None => return fail("illegal tunnel type specified"),
                };
            }
            Tag::TunPort => {
                set_option(&mut options, optc::TUN_PORT)?;
                dest.tun_port = number(v, 1, 65535, "tunnel port")? as u16;
            }
            Tag::TunNocsum => set_option(&mut options, optc::TUN_NOCSUM)?,
            Tag::TunCsum => {
                set_option(&mut options, optc::TUN_CSUM)?;
                dest.tun_flags |= 1;
            }
            Tag::TunRemcsum => {
                set_option(&mut options, optc::TUN_REMCSUM)?;
                dest.tun_flags |= 2;
            }
            Tag::Json => {
                set_option(&mut options, optc::JSON)?;
                json = true;
            }
            Tag::Command(_) | Tag::Help | Tag::Version | Tag::StartDaemon | Tag::StopDaemon => {
                return fail(format!("invalid option `{}'", scan.bad_word()));
            }
        }
    }

    let mut leftovers = scan.leftovers.into_iter();
    let mut timeouts = [0u32; 3];
    if cmd == Cmd::Timeout {
        let (Some(a), Some(b), Some(c)) = (leftovers.next(), leftovers.next(), leftovers.next())
        else {
            return fail("--set option requires 3 timeout values");
        };
        timeouts = [
            parse_timeout(Some(&a), 0, MAX_TIMEOUT)?,
            parse_timeout(Some(&b), 0, MAX_TIMEOUT)?,
            parse_timeout(Some(&c), 0, MAX_TIMEOUT)?,
        ];
    }
    if let Some(extra) = leftovers.next() {
        return fail(format!("unexpected argument {extra}"));
    }
    if !sched_flags_arg.is_empty() {
        svc.flags = parse_sched_flags(&svc.sched, &sched_flags_arg)?;
    }

    generic_opt_check(cmd, options)?;

    if matches!(cmd, Cmd::Add | Cmd::Edit) {
        if svc.fwmark == 0 && svc.port == 0 && !svc.persistent {
            return fail("Zero port specified for non-persistent service");
        }
        if svc.ops && svc.fwmark == 0 && svc.protocol != 17 {
            return fail("One-Packet Scheduling is only for UDP virtual services");
        }
        if svc.sched.is_empty() {
            svc.sched = "wlc".to_string();
        }
    }
    if cmd == Cmd::StartDaemon && daemon.ifname.is_empty() {
        daemon.ifname = "eth0".to_string();
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
        if svc.fwmark == 0 && matches!(dest.fwd, Fwd::Tunnel | Fwd::Dr) {
            dest.port = svc.port;
        }
        if dest.af != svc.af && dest.fwd != Fwd::Tunnel {
            return fail("Different address family is allowed only for tunneling servers");
        }
        let tun_bits = [
            optc::TUN_TYPE,
            optc::TUN_PORT,
            optc::TUN_NOCSUM,
            optc::TUN_CSUM,
            optc::TUN_REMCSUM,
        ]
        .iter()
        .fold(0u64, |acc, &b| acc | (1u64 << b));
        if options & tun_bits != 0 && dest.fwd != Fwd::Tunnel {
            return fail("Tunnel options conflict with forward method");
        }
        tunnel_opt_check(dest.tun_type, options)?;
    }
    if cmd == Cmd::List {
        let has = |b: usize| options & (1u64 << b) != 0;
        if ((has(optc::CONNECTION) || has(optc::TIMEOUT) || has(optc::DAEMON))
            && (has(optc::STATS) || has(optc::RATE) || has(optc::THRESHOLDS)))
            || ((has(optc::TIMEOUT) || has(optc::DAEMON)) && has(optc::PERSISTENTCONN))
        {
            return fail("options conflicts in the list command");
        }
    }

    build_action(cmd, options, format, json, &svc, &dest, &daemon, timeouts)
}

/// The model's key for the parsed service, or `None` for a protocol the
/// model lacks (none today: `-t`, `-u` and `--sctp-service` all map).
fn service_key(svc: &Svc) -> Option<ServiceKey> {
    if svc.fwmark != 0 {
        return Some(ServiceKey::Fwmark {
            mark: svc.fwmark,
            family: if svc.af == AF_INET6 {
                Family::V6
            } else {
                Family::V4
            },
        });
    }
    let protocol = match svc.protocol {
        6 => uvs_conf::Protocol::Tcp,
        17 => uvs_conf::Protocol::Udp,
        132 => uvs_conf::Protocol::Sctp,
        _ => return None,
    };
    Some(ServiceKey::Addr {
        protocol,
        addr: svc.addr,
        port: svc.port,
    })
}

#[allow(clippy::too_many_arguments)]
fn build_action(
    cmd: Cmd,
    options: u64,
    format: Format,
    json: bool,
    svc: &Svc,
    dest: &Dest,
    daemon: &Daemon,
    timeouts: [u32; 3],
) -> Result<Action, ParseError> {
    const NO_SERVICE: &str = "No such service";
    const NOT_DEFINED: &str = "Service not defined";
    const NOT_FOUND: &str = "Scheduler or persistence engine not found";
    let has = |b: usize| options & (1u64 << b) != 0;
    let key = service_key(svc);
    let action = match cmd {
        Cmd::List => {
            let what = if has(optc::CONNECTION) {
                ListWhat::Connections
            } else if has(optc::SERVICE) {
                match key {
                    Some(k) => ListWhat::Service(k),
                    None => return Ok(Action::ListError(NO_SERVICE)),
                }
            } else if has(optc::TIMEOUT) {
                ListWhat::Timeouts
            } else if has(optc::DAEMON) {
                ListWhat::Daemons
            } else {
                ListWhat::All
            };
            Action::List { what, format, json }
        }
        Cmd::Save => Action::Save {
            numeric: format.numeric,
        },
        Cmd::Restore => Action::Restore,
        Cmd::Flush => Action::Send(Command::Clear),
        Cmd::Add | Cmd::Edit => {
            let Some(key) = key else {
                return Ok(Action::EngineError(if cmd == Cmd::Add {
                    "Protocol not available"
                } else {
                    NO_SERVICE
                }));
            };
            let Some(scheduler) = SchedulerName::from_name(&svc.sched) else {
                return Ok(Action::EngineError(NOT_FOUND));
            };
            // `--pe`: the kernel looks the name up (ip_vs_pe_getbyname);
            // uvs has IPVS's one engine, sip.
            let persistence_engine = if svc.pe.is_empty() {
                None
            } else {
                match PersistenceEngine::from_name(&svc.pe) {
                    Some(pe) => Some(pe),
                    None => return Ok(Action::EngineError(NOT_FOUND)),
                }
            };
            let persistence = if svc.persistent {
                // IPv4: any mask, as ipvsadm sends it (the kernel ANDs
                // the client address with it); IPv6: the prefix length.
                let netmask = if svc.af == AF_INET6 {
                    Netmask::V6(svc.netmask.min(128) as u8)
                } else {
                    Netmask::V4(Ipv4Addr::from(svc.netmask))
                };
                Some(Persistence {
                    timeout: svc.timeout,
                    netmask,
                })
            } else {
                None
            };
            let service = ServiceSpec {
                key,
                scheduler,
                flags: SchedFlags {
                    flag1: svc.flags & SCHED1 != 0,
                    flag2: svc.flags & SCHED2 != 0,
                    flag3: svc.flags & SCHED3 != 0,
                },
                persistence,
                persistence_engine,
                one_packet: svc.ops,
                fwmark_match: Vec::new(),
            };
            Action::Send(if cmd == Cmd::Add {
                Command::AddService { service }
            } else {
                Command::EditService { service }
            })
        }
        Cmd::Del => match key {
            Some(key) => Action::Send(Command::DeleteService { key }),
            None => Action::EngineError(NO_SERVICE),
        },
        Cmd::Zero => {
            if has(optc::SERVICE) {
                match key {
                    Some(k) => Action::Send(Command::Zero { service: Some(k) }),
                    None => Action::EngineError(NO_SERVICE),
                }
            } else {
                Action::Send(Command::Zero { service: None })
            }
        }
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let Some(service) = key else {
                return Ok(Action::EngineError(NOT_DEFINED));
            };
            if cmd == Cmd::DelDest {
                return Ok(Action::Send(Command::DeleteServer {
                    service,
                    addr: dest.addr,
                    port: dest.port,
                }));
            }
            let method = match dest.fwd {
                Fwd::Dr => ForwardMethod::Dr,
                Fwd::Masq => ForwardMethod::Nat,
                Fwd::FullNat => ForwardMethod::FullNat,
                Fwd::Tunnel => ForwardMethod::Tunnel {
                    kind: match dest.tun_type {
                        1 => TunnelType::Gue {
                            port: dest.tun_port,
                        },
                        2 => TunnelType::Gre,
                        _ => TunnelType::Ipip,
                    },
                    csum: match dest.tun_flags {
                        1 => TunnelCsum::Csum,
                        2 => TunnelCsum::RemCsum,
                        _ => TunnelCsum::NoCsum,
                    },
                },
            };
            let server = DestConfig {
                addr: dest.addr,
                port: dest.port,
                method,
                weight: dest.weight,
                u_threshold: dest.u_threshold,
                l_threshold: dest.l_threshold,
            };
            Action::Send(if cmd == Cmd::AddDest {
                Command::AddServer { service, server }
            } else {
                Command::EditServer { service, server }
            })
        }
        Cmd::Timeout => Action::Send(Command::SetTimeouts {
            tcp: timeouts[0],
            tcp_fin: timeouts[1],
            udp: timeouts[2],
        }),
        Cmd::StartDaemon => Action::Send(Command::StartDaemon {
            daemon: SyncDaemonSpec {
                role: daemon.role.unwrap_or(SyncRole::Master),
                interface: daemon.ifname.clone(),
                syncid: daemon.syncid,
                maxlen: daemon.maxlen,
                group: daemon.group,
                port: daemon.port,
                ttl: daemon.ttl,
            },
        }),
        Cmd::StopDaemon => Action::Send(Command::StopDaemon {
            role: daemon.role.unwrap_or(SyncRole::Master),
        }),
    };
    Ok(action)
}

/// uvsadm's version line (`-v`, and the first line of `-h`).
pub fn version_line() -> String {
    format!(
        "uvsadm v{} (ipvsadm v1.31 compatible; drives uvsd over its control socket, IPVS v1.2.1)",
        env!("CARGO_PKG_VERSION")
    )
}

/// ipvsadm 1.31's usage text with uvsadm's additions (`twos`,
/// `--fullnat`, `--json`, the socket); `PROG` stands
/// for the program name.
const USAGE: &str = r#"Usage:
  PROG -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  PROG -D virtual-service
  PROG -C
  PROG -R
  PROG -S [-n]
  PROG -a|e virtual-service -r server-address [options]
  PROG -d virtual-service -r server-address
  PROG -L|l [virtual-service] [options]
  PROG -Z [virtual-service]
  PROG --set tcp tcpfin udp
  PROG --start-daemon {master|backup} [daemon-options]
  PROG --stop-daemon {master|backup}
  PROG -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --fullnat                           full NAT (uvs only)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
  --json                              listings as JSON (uvs only)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)

uvsadm drives uvsd through its control socket, /run/uvs/uvsd.sock
unless UVS_SOCKET names another.
"#;

/// `-h`: usage in ipvsadm's shape, with `prog` as the program name.
pub fn usage(prog: &str) -> String {
    format!("{}\n{}", version_line(), USAGE.replace("PROG", prog))
}
