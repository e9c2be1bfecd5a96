//! Running an ipvsadm invocation against uvsd: parse, send, print, and
//! the exit status ipvsadm would end with.
//!
//! [`Runner::main`] is `uvsadm`'s whole behaviour with its inputs and
//! outputs passed in (arguments, stdin, stdout, stderr, a [`Transport`]
//! and a [`Resolver`]), so tests drive it in-process against a fake uvsd.
//! Exit statuses follow ipvsadm 1.31: 0 done; 2 for a parse error
//! (`fail()`), which also ends a restore at once; 255 for a usage error,
//! a popt error or an error from the engine on a command that changes
//! the table; 1 for a listing that fails. `-R` runs each stdin line as one
//! invocation, goes on after errors from the engine or popt, and ends
//! with the status of the last line. When uvsd cannot be reached, one
//! line says why and the status is 2 (as ipvsadm's "Can't initialize
//! ipvs").

use std::io::{BufRead, Write};

use uvs_conf::control::{Command, ErrorCode, Response};

use crate::client::{ClientError, Transport};
use crate::list::{self, Names};
use crate::parse::{parse_args, usage, version_line, Action, ListWhat, ParseError};
use crate::resolve::Resolver;

/// Whether a result ends the whole run (ipvsadm's `exit()`) or is a
/// status that a restore goes on after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Status(i32),
    Exit(i32),
}

/// ipvsadm's text for an error the engine answered to `command`
/// (libipvs's `ipvs_strerror` table).
pub fn engine_message(command: &Command, code: ErrorCode, message: &str) -> String {
    let dest_op = matches!(
        command,
        Command::AddServer { .. } | Command::EditServer { .. } | Command::DeleteServer { .. }
    );
    if dest_op && code == ErrorCode::NoService {
        return "Service not defined".to_string();
    }
    if let Some(text) = code.ipvsadm_message() {
        return text.to_string();
    }
    if message.is_empty() {
        "Invalid operation.  Possibly wrong module version, address not unicast, ...".to_string()
    } else {
        message.to_string()
    }
}

/// Split restore input into invocations as ipvsadm's `config_stream_read`
/// does: one per line, words separated by blanks, tabs and carriage
/// returns, the word `ipvsadm` (and `uvsadm`) dropped, empty lines skipped.
pub fn restore_lines(input: &str) -> Vec<Vec<String>> {
    input
        .split('\n')
        .map(|line| {
            line.split([' ', '\t', '\r'])
                .filter(|w| !w.is_empty() && *w != "ipvsadm" && *w != "uvsadm")
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|words| !words.is_empty())
        .collect()
}

/// One run of `uvsadm`.
pub struct Runner<'a> {
    /// The program name (`argv[0]`), used in messages as ipvsadm does.
    pub prog: String,
    /// The way to uvsd.
    pub transport: &'a mut dyn Transport,
    /// Name look-ups.
    pub resolver: &'a dyn Resolver,
    /// Standard output.
    pub out: &'a mut dyn Write,
    /// Standard error.
    pub err: &'a mut dyn Write,
}

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("prog", &self.prog).finish()
    }
}

impl Runner<'_> {
    /// Run `args` (program name first), reading `stdin` for `-R`; the exit
    /// status.
    pub fn main(&mut self, args: &[String], stdin: &mut dyn BufRead) -> i32 {
        let args: Vec<String> = if args.len() <= 1 {
            // No arguments: `-L` without `-n`.
            vec![self.prog.clone(), "-L".to_string()]
        } else {
            args.to_vec()
        };
        let flow = self.process(&args, false, stdin);
        let _ = self.out.flush();
        let _ = self.err.flush();
        match flow {
            Flow::Status(s) | Flow::Exit(s) => s,
        }
    }

    fn say_err(&mut self, text: &str) {
        let _ = writeln!(self.err, "{text}");
    }

    fn process(&mut self, args: &[String], reading_stdin: bool, stdin: &mut dyn BufRead) -> Flow {
        match parse_args(args, self.resolver) {
            Err(e) => {
                let text = e.message(&self.prog);
                self.say_err(&text);
                match e {
                    ParseError::Popt { .. } => Flow::Status(255),
                    other => Flow::Exit(other.status()),
                }
            }
            Ok(action) => self.execute(action, reading_stdin, stdin),
        }
    }

    fn client_failed(&mut self, e: ClientError) -> Flow {
        let text = format!("{}: {e}", self.prog);
        self.say_err(&text);
        Flow::Exit(2)
    }

    fn unexpected(&mut self, r: &Response) -> Flow {
        let text = format!("{}: unexpected answer from uvsd: {r:?}", self.prog);
        self.say_err(&text);
        Flow::Exit(2)
    }

    fn ask(&mut self, command: Command) -> Result<Response, Flow> {
        self.transport
            .request(&command)
            .map_err(|e| self.client_failed(e))
    }

    fn print(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
    }

    fn print_json(&mut self, value: serde_json::Value) {
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        let _ = writeln!(self.out, "{text}");
    }

    fn execute(&mut self, action: Action, reading_stdin: bool, stdin: &mut dyn BufRead) -> Flow {
        match action {
            Action::Help => {
                let text = usage(&self.prog);
                self.print(&text);
                Flow::Exit(0)
            }
            Action::Version => {
                let text = version_line();
                let _ = writeln!(self.out, "{text}");
                Flow::Exit(0)
            }
            // What uvsd would refuse is refused here, but only once uvsd is
            // known to be there (ipvsadm reaches IPVS before anything else).
            Action::EngineError(m) => match self.ask(Command::GetInfo) {
                Err(flow) => flow,
                Ok(_) => {
                    self.say_err(m);
                    Flow::Status(255)
                }
            },
            Action::ListError(m) => match self.ask(Command::GetInfo) {
                Err(flow) => flow,
                Ok(_) => {
                    self.say_err(m);
                    Flow::Exit(1)
                }
            },
            Action::Send(command) => match self.ask(command.clone()) {
                Err(flow) => flow,
                Ok(Response::Ok) => Flow::Status(0),
                Ok(Response::Error { code, message }) => {
                    let text = engine_message(&command, code, &message);
                    self.say_err(&text);
                    Flow::Status(255)
                }
                Ok(other) => self.unexpected(&other),
            },
            Action::Save { numeric } => {
                let services = match self.ask(Command::ListServices { service: None }) {
                    Err(flow) => return flow,
                    Ok(Response::Services { services }) => services,
                    Ok(Response::Error { code, message }) => {
                        let text = engine_message(
                            &Command::ListServices { service: None },
                            code,
                            &message,
                        );
                        self.say_err(&text);
                        return Flow::Exit(1);
                    }
                    Ok(other) => return self.unexpected(&other),
                };
                let names = Names {
                    resolver: self.resolver,
                    numeric,
                };
                let text = list::save(&services, names);
                self.print(&text);
                Flow::Status(0)
            }
            Action::Restore => {
                if reading_stdin {
                    let text = ParseError::TryHelp.message(&self.prog);
                    self.say_err(&text);
                    return Flow::Exit(255);
                }
                let mut input = Vec::new();
                let _ = stdin.read_to_end(&mut input);
                let input = String::from_utf8_lossy(&input).into_owned();
                let mut result = 0;
                for words in restore_lines(&input) {
                    let mut argv = vec![self.prog.clone()];
                    argv.extend(words);
                    match self.process(&argv, true, stdin) {
                        Flow::Status(s) => result = s,
                        Flow::Exit(s) => return Flow::Exit(s),
                    }
                }
                Flow::Status(result)
            }
            Action::List { what, format, json } => self.list(what, format, json),
        }
    }

    fn list(&mut self, what: ListWhat, format: crate::parse::Format, json: bool) -> Flow {
        let names = Names {
            resolver: self.resolver,
            numeric: format.numeric,
        };
        match what {
            ListWhat::All => {
                let size = match self.ask(Command::GetInfo) {
                    Err(flow) => return flow,
                    Ok(Response::Info {
                        conn_table_size, ..
                    }) => conn_table_size,
                    Ok(Response::Error { code, message }) => {
                        let text = engine_message(&Command::GetInfo, code, &message);
                        self.say_err(&text);
                        return Flow::Exit(1);
                    }
                    Ok(other) => return self.unexpected(&other),
                };
                let services = match self.ask(Command::ListServices { service: None }) {
                    Err(flow) => return flow,
                    Ok(Response::Services { services }) => services,
                    Ok(Response::Error { code, message }) => {
                        // ipvsadm has printed its header by then.
                        if !json {
                            self.print(&list::header(size));
                        }
                        let text = engine_message(
                            &Command::ListServices { service: None },
                            code,
                            &message,
                        );
                        self.say_err(&text);
                        return Flow::Exit(1);
                    }
                    Ok(other) => return self.unexpected(&other),
                };
                if json {
                    let sorted = list::sorted_services(&services, format.nosort);
                    self.print_json(serde_json::json!({
                        "ipvs_version": list::IPVS_VERSION,
                        "conn_table_size": size,
                        "services": sorted,
                    }));
                } else {
                    let text = list::list_all(size, &services, &format, names);
                    self.print(&text);
                }
                Flow::Status(0)
            }
            ListWhat::Service(key) => {
                let command = Command::ListServices { service: Some(key) };
                let services = match self.ask(command.clone()) {
                    Err(flow) => return flow,
                    Ok(Response::Services { services }) => services,
                    Ok(Response::Error { code, message }) => {
                        let text = engine_message(&command, code, &message);
                        self.say_err(&text);
                        return Flow::Exit(1);
                    }
                    Ok(other) => return self.unexpected(&other),
                };
                let Some(service) = services.iter().find(|s| s.spec.key == key) else {
                    self.say_err("No such service");
                    return Flow::Exit(1);
                };
                if json {
                    let sorted =
                        list::sorted_services(std::slice::from_ref(service), format.nosort);
                    self.print_json(serde_json::json!({ "services": sorted }));
                } else {
                    let text = list::list_service(service, &format, names);
                    self.print(&text);
                }
                Flow::Status(0)
            }
            ListWhat::Connections => {
                let connections = match self.ask(Command::ListConnections) {
                    Err(flow) => return flow,
                    Ok(Response::Connections { connections }) => connections,
                    Ok(Response::Error { message, .. }) => {
                        let text = if message.is_empty() {
                            "cannot read the connection table from uvsd".to_string()
                        } else {
                            message
                        };
                        self.say_err(&text);
                        return Flow::Exit(1);
                    }
                    Ok(other) => return self.unexpected(&other),
                };
                if json {
                    self.print_json(serde_json::json!({ "connections": connections }));
                } else {
                    let text = list::list_connections(&connections, &format, names);
                    self.print(&text);
                }
                Flow::Status(0)
            }
            ListWhat::Timeouts => {
                let timeouts = match self.ask(Command::GetTimeouts) {
                    Err(flow) => return flow,
                    Ok(Response::Timeouts { timeouts }) => timeouts,
                    // ipvsadm exits 1 without a word when the read fails.
                    Ok(Response::Error { .. }) => return Flow::Exit(1),
                    Ok(other) => return self.unexpected(&other),
                };
                if json {
                    self.print_json(serde_json::json!({ "timeouts": timeouts }));
                } else {
                    self.print(&list::list_timeouts(&timeouts));
                }
                Flow::Status(0)
            }
            ListWhat::Daemons => {
                let daemons = match self.ask(Command::GetDaemons) {
                    Err(flow) => return flow,
                    Ok(Response::Daemons { daemons }) => daemons,
                    Ok(Response::Error { .. }) => return Flow::Exit(1),
                    Ok(other) => return self.unexpected(&other),
                };
                if json {
                    self.print_json(serde_json::json!({ "daemons": daemons }));
                } else {
                    self.print(&list::list_daemons(&daemons));
                }
                Flow::Status(0)
            }
        }
    }
}

/// `uvsadm-save [-n]`: `uvsadm -S [-n]`; any other dash argument prints
/// help on stderr and exits 1, as ipvsadm-save does.
pub fn save_main(runner: &mut Runner<'_>, args: &[String], stdin: &mut dyn BufRead) -> i32 {
    let mut numeric = false;
    for a in args.iter().skip(1) {
        if a == "-n" {
            numeric = true;
        } else if a.starts_with('-') {
            let name = args
                .first()
                .and_then(|p| p.rsplit('/').next())
                .unwrap_or("uvsadm-save");
            let _ = writeln!(
                runner.err,
                "{name}: Script to save the IPVS table to stdout.\n   With the -n option, prints out the table in numeric format."
            );
            return 1;
        }
    }
    let mut argv = vec![runner.prog.clone(), "-S".to_string()];
    if numeric {
        argv.push("-n".to_string());
    }
    runner.main(&argv, stdin)
}

/// `uvsadm-restore`: drop the lines of stdin that start with `#`, clear
/// the table (`-C`), then restore the rest (`-R`). Ends early if the
/// clear fails; else the status of the restore.
pub fn restore_main(runner: &mut Runner<'_>, stdin: &mut dyn BufRead) -> i32 {
    let mut input = Vec::new();
    let _ = stdin.read_to_end(&mut input);
    let text = String::from_utf8_lossy(&input);
    let kept: String = text
        .split_inclusive('\n')
        .filter(|l| !l.starts_with('#'))
        .collect();
    let prog = runner.prog.clone();
    let status = runner.main(&[prog.clone(), "-C".to_string()], &mut std::io::empty());
    if status != 0 {
        return status;
    }
    runner.main(&[prog, "-R".to_string()], &mut kept.as_bytes())
}
