//! Every cell of ipvsadm's legality matrix (`commands_v_options`): for each
//! command and each option, an illegal option gives ipvsadm's exact
//! message, a legal one parses, a required one missing gives its message;
//! the exclusive options of `-L` conflict pairwise; every option given
//! twice is refused; the tunnel-type matrix the same way.

mod common;

use uvs_ctl::parse::{parse_args, Action, ParseError, CMD_NAMES, OPT_NAMES};

/// ipvsadm 1.31's `commands_v_options`, transcribed from ipvsadm.c
/// independently of the crate's copy, plus uvsadm's `json` column (legal
/// only with `-L`). Rows: add-service, edit-service, delete-service,
/// flush, list, add-server, delete-server, edit-server, set,
/// start-daemon, stop-daemon, restore, save, zero.
const LEGALITY: [&str; 14] = [
    //-n  -c  svc -s  -p  -M  -r  fwd -w  -x  -y  -mc tot dmn -st -rt thr -pc srt sid -ex ops -pe -b  grp prt ttl siz tin typ tpr noc csm rem json
    concat!(
        "x", "x", "+", " ", " ", " ", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", " ", " ", " ", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        "x", "x", "+", " ", " ", " ", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", " ", " ", " ", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        "x", "x", "+", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        " ", "1", "1", "x", "x", "x", "x", "x", "x", "x", "x", "x", "1", "1", " ", " ", " ", " ",
        " ", " ", " ", "x", "x", "x", "x", "x", "x", "x", " ", "x", "x", "x", "x", "x", " "
    ),
    concat!(
        "x", "x", "+", "x", "x", "x", "+", " ", " ", " ", " ", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", " ", " ", " ", " ", " ", "x"
    ),
    concat!(
        "x", "x", "+", "x", "x", "x", "+", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        "x", "x", "+", "x", "x", "x", "+", " ", " ", " ", " ", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", " ", " ", " ", " ", " ", "x"
    ),
    concat!(
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", " ", "x", "x", "x", "x", "x", "x",
        "x", " ", "x", "x", "x", "x", " ", " ", " ", " ", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", " ", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        " ", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
    concat!(
        "x", "x", " ", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x",
        "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x", "x"
    ),
];

/// The words that set each option (by index in `OPT_NAMES`).
const OPTION_WORDS: [&str; 35] = [
    "-n",
    "-c",
    "-t 10.0.0.1:80",
    "-s rr",
    "-p 300",
    "-M 255.255.255.0",
    "-r 192.168.1.2",
    "-m",
    "-w 2",
    "-x 10",
    "-y 5",
    "--mcast-interface eth1",
    "--timeout",
    "--daemon",
    "--stats",
    "--rate",
    "--thresholds",
    "--persistent-conn",
    "--nosort",
    "--syncid 5",
    "--exact",
    "-o",
    "--pe sip",
    "-b flag-1",
    "--mcast-group 224.0.0.81",
    "--mcast-port 8848",
    "--mcast-ttl 1",
    "--sync-maxlen 1472",
    "--tun-info",
    "--tun-type ipip",
    "--tun-port 6080",
    "--tun-nocsum",
    "--tun-csum",
    "--tun-remcsum",
    "--json",
];

/// Each command's word, in `CMD_NAMES` order.
const COMMAND_WORDS: [&str; 14] = [
    "-A",
    "-E",
    "-D",
    "-C",
    "-L",
    "-a",
    "-d",
    "-e",
    "--set 900 120 300",
    "--start-daemon master",
    "--stop-daemon master",
    "-R",
    "-S",
    "-Z",
];

fn parse(line: &str) -> Result<Action, ParseError> {
    parse_args(&common::args(line), &common::resolver())
}

fn fail_text(line: &str) -> String {
    match parse(line) {
        Err(ParseError::Fail(m)) => m,
        other => panic!("`{line}`: expected a parse failure, got {other:?}"),
    }
}

/// Words that make option `j` usable with command `i` beyond the matrix
/// (a UDP service for `-o`, tunnel mode for tunnel options).
fn context(cmd: usize, j: usize) -> &'static str {
    let name = OPT_NAMES[j];
    match (CMD_NAMES[cmd], name) {
        ("add-server" | "edit-server", "tun-type") => "-i",
        ("add-server" | "edit-server", "tun-port") => "-i --tun-type gue",
        ("add-server" | "edit-server", "tun-remcsum") => "-i --tun-type gue --tun-port 6080",
        ("add-server" | "edit-server", "tun-nocsum" | "tun-csum") => "-i --tun-type gre",
        _ => "",
    }
}

/// The required options of a command, as words.
fn required(cmd: usize) -> Vec<usize> {
    LEGALITY[cmd]
        .bytes()
        .enumerate()
        .filter(|(_, c)| *c == b'+')
        .map(|(j, _)| j)
        .collect()
}

fn base(cmd: usize, service_words: &str) -> String {
    let mut line = COMMAND_WORDS[cmd].to_string();
    for j in required(cmd) {
        line.push(' ');
        line.push_str(if j == 2 {
            service_words
        } else {
            OPTION_WORDS[j]
        });
    }
    line
}

#[test]
fn every_option_with_every_command() {
    let mut checked = 0;
    for (i, row) in LEGALITY.iter().enumerate() {
        for (j, cell) in row.bytes().enumerate() {
            if cell == b'+' {
                continue;
            }
            let uses_ops = OPT_NAMES[j] == "ops";
            let svc = if uses_ops {
                "-u 10.0.0.1:53"
            } else {
                OPTION_WORDS[2]
            };
            let line = format!("{} {} {}", base(i, svc), context(i, j), OPTION_WORDS[j]);
            let result = parse(&line);
            if cell == b'x' {
                let expected = format!(
                    "Illegal '{}' option with the '{}' command",
                    OPT_NAMES[j], CMD_NAMES[i]
                );
                assert_eq!(
                    result,
                    Err(ParseError::Fail(expected)),
                    "cell {}/{}: `{line}`",
                    CMD_NAMES[i],
                    OPT_NAMES[j]
                );
            } else {
                match result {
                    Ok(_) => {}
                    other => panic!(
                        "cell {}/{} is legal but `{line}` gave {other:?}",
                        CMD_NAMES[i], OPT_NAMES[j]
                    ),
                }
            }
            checked += 1;
        }
    }
    // 14 commands x 35 options, less the required cells.
    let required_cells: usize = (0..14).map(|i| required(i).len()).sum();
    assert_eq!(checked + required_cells, 14 * 35);
}

#[test]
fn every_required_option_missing() {
    for i in 0..14 {
        let req = required(i);
        for &missing in &req {
            let mut line = COMMAND_WORDS[i].to_string();
            for &j in &req {
                if j != missing {
                    line.push(' ');
                    line.push_str(OPTION_WORDS[j]);
                }
            }
            let expected = format!(
                "You need to supply the '{}' option for the '{}' command",
                OPT_NAMES[missing], CMD_NAMES[i]
            );
            assert_eq!(fail_text(&line), expected, "`{line}`");
        }
    }
    // The cells marked '+': service for -A -E -D -a -d -e, real-server for -a -d -e.
    let total: usize = (0..14).map(|i| required(i).len()).sum();
    assert_eq!(total, 9);
}

#[test]
fn exclusive_list_options_conflict_pairwise() {
    // connection, service-address, timeout, daemon (table order).
    let ones = [1usize, 2, 12, 13];
    for (a, &x) in ones.iter().enumerate() {
        for &y in &ones[a + 1..] {
            for (first, second) in [(x, y), (y, x)] {
                let line = format!("-L {} {}", OPTION_WORDS[first], OPTION_WORDS[second]);
                // The later one in ipvsadm's option table is named first.
                let expected = format!(
                    "The option '{}' conflicts with the '{}' option in the 'list' command",
                    OPT_NAMES[x.max(y)],
                    OPT_NAMES[x.min(y)]
                );
                assert_eq!(fail_text(&line), expected, "`{line}`");
            }
        }
    }
}

#[test]
fn list_format_conflicts() {
    for line in [
        "-L -c --stats",
        "-L -c --rate",
        "-L -c --thresholds",
        "-L --timeout --stats",
        "-L --daemon --rate",
        "-L --timeout --persistent-conn",
        "-L --daemon --persistent-conn",
    ] {
        assert_eq!(
            fail_text(line),
            "options conflicts in the list command",
            "`{line}`"
        );
    }
    assert!(parse("-L -c --persistent-conn").is_ok());
}

#[test]
fn every_option_twice() {
    for (j, words) in OPTION_WORDS.iter().enumerate() {
        let line = format!("-L {words} {words}");
        let expected = format!("multiple '{}' options specified", OPT_NAMES[j]);
        assert_eq!(fail_text(&line), expected, "`{line}`");
    }
    // Forwarding methods share one option.
    assert_eq!(
        fail_text("-a -t 10.0.0.1:80 -r 10.0.0.2 -g -m"),
        "multiple 'forwarding-method' options specified"
    );
    assert_eq!(
        fail_text("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --fullnat"),
        "multiple 'forwarding-method' options specified"
    );
    assert_eq!(
        fail_text("-A -t 10.0.0.1:80 -f 3"),
        "multiple 'service-address' options specified"
    );
}

#[test]
fn tunnel_type_matrix() {
    let svc = "-a -t 10.0.0.1:80 -r 10.0.0.2 -i";
    let cases = [
        ("--tun-type ipip --tun-port 6080", "Illegal 'tun-port' option with the 'ipip' tunnel type"),
        ("--tun-type ipip --tun-nocsum", "Illegal 'tun-nocsum' option with the 'ipip' tunnel type"),
        ("--tun-type ipip --tun-csum", "Illegal 'tun-csum' option with the 'ipip' tunnel type"),
        ("--tun-type ipip --tun-remcsum", "Illegal 'tun-remcsum' option with the 'ipip' tunnel type"),
        ("--tun-nocsum", "Illegal 'tun-nocsum' option with the 'ipip' tunnel type"),
        ("--tun-type gue", "You need to supply the 'tun-port' option for the 'gue' tunnel type"),
        ("--tun-type gue --tun-port 6080 --tun-nocsum --tun-csum", "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type"),
        ("--tun-type gue --tun-port 6080 --tun-remcsum --tun-csum", "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type"),
        ("--tun-type gre --tun-port 6080", "Illegal 'tun-port' option with the 'gre' tunnel type"),
        ("--tun-type gre --tun-remcsum", "Illegal 'tun-remcsum' option with the 'gre' tunnel type"),
        ("--tun-type gre --tun-csum --tun-nocsum", "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type"),
        ("--tun-type vxlan", "illegal tunnel type specified"),
        ("--tun-type gue --tun-port 0", "illegal tunnel port specified"),
    ];
    for (extra, expected) in cases {
        let line = format!("{svc} {extra}");
        assert_eq!(fail_text(&line), expected, "`{line}`");
    }
    for ok in [
        "--tun-type ipip",
        "--tun-type gue --tun-port 6080",
        "--tun-type gue --tun-port 6080 --tun-remcsum",
        "--tun-type gre --tun-csum",
        "--tun-type gre",
    ] {
        assert!(parse(&format!("{svc} {ok}")).is_ok(), "{ok}");
    }
    assert_eq!(
        fail_text("-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gre"),
        "Tunnel options conflict with forward method"
    );
    assert_eq!(
        fail_text("-e -t 10.0.0.1:80 -r 10.0.0.2 --tun-csum"),
        "Tunnel options conflict with forward method"
    );
}
