//! `-S` and `-R`, and `uvsadm-save` / `uvsadm-restore`: the exact rules
//! saved for a configuration with every feature, the round trip through
//! `-C` and `-R`, what is not saved (thresholds), and how a restore goes on
//! after an engine error and stops at a parse error.

mod common;

use common::*;
use uvs_ctl::resolve::StaticResolver;
use uvs_ctl::run::{restore_lines, restore_main, save_main, Runner};

/// uvsadm lines building a table with every feature ipvsadm can save.
const SCRIPT: &str = "\
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 192.168.1.2:80 -g -w 1
-a -t 10.0.0.1:80 -r 192.168.1.3:80 -g -w 0 -x 100 -y 50
-A -t 10.0.0.2:443 -s wlc -p 300 -M 255.255.255.0
-a -t 10.0.0.2:443 -r 192.168.1.4:8443 -m -w 3
-a -t 10.0.0.2:443 -r 192.168.1.5 --fullnat -w 2
-A -u 10.0.0.3:53 -s sh -b sh-fallback,sh-port -o
-a -u 10.0.0.3:53 -r 192.168.1.6 -i -w 1
-a -u 10.0.0.3:53 -r 192.168.1.7 -i --tun-type gue --tun-port 6080 --tun-remcsum -w 1
-a -u 10.0.0.3:53 -r 192.168.1.8 -i --tun-type gue --tun-port 6081 --tun-csum -w 1
-a -u 10.0.0.3:53 -r 192.168.1.9 -i --tun-type gre --tun-csum -w 1
-a -u 10.0.0.3:53 -r 192.168.1.10 -i --tun-type gre -w 1
-A -u 10.0.0.6:5060 -s rr -p 60 -M 255.0.255.0 --pe sip
-a -u 10.0.0.6:5060 -r 192.168.1.13 -m
-A -t [2001:db8::1]:80 -s mh -b mh-port -p 60 -M 64
-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -g -w 5
-A -t 10.0.0.4:0 -s lc -p
-a -t 10.0.0.4:0 -r 192.168.1.11 -g
-A -f 7 -s wrr -p 120
-a -f 7 -r 192.168.1.12:80 -m -w 2
-A -f 8 -6 -s fo
-a -f 8 -6 -r [2001:db8::11]:443 -m
-A -t 10.0.0.5:80 -s twos -b flag-3
-a -t 10.0.0.5:80 -r [2001:db8::12]:80 -i
";

/// What `-S -n` prints for SCRIPT, written from ipvsadm's rule formats:
/// sorted, `-x`/`-y` dropped, port of DR/TUN servers forced, tunnel
/// options appended.
const SAVED: &str = "\
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 192.168.1.2:80 -g -w 1
-a -t 10.0.0.1:80 -r 192.168.1.3:80 -g -w 0
-A -t 10.0.0.2:443 -s wlc -p 300 -M 255.255.255.0
-a -t 10.0.0.2:443 -r 192.168.1.4:8443 -m -w 3
-a -t 10.0.0.2:443 -r 192.168.1.5:443 --fullnat -w 2
-A -t 10.0.0.4:0 -s lc -p 360
-a -t 10.0.0.4:0 -r 192.168.1.11:0 -g -w 1
-A -t 10.0.0.5:80 -s twos -b flag-3
-a -t 10.0.0.5:80 -r [2001:db8::12]:80 -i -w 1 --tun-type ipip
-A -u 10.0.0.3:53 -s sh -o -b sh-fallback,sh-port
-a -u 10.0.0.3:53 -r 192.168.1.6:53 -i -w 1 --tun-type ipip
-a -u 10.0.0.3:53 -r 192.168.1.7:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum
-a -u 10.0.0.3:53 -r 192.168.1.8:53 -i -w 1 --tun-type gue --tun-port 6081 --tun-csum
-a -u 10.0.0.3:53 -r 192.168.1.9:53 -i -w 1 --tun-type gre --tun-csum
-a -u 10.0.0.3:53 -r 192.168.1.10:53 -i -w 1 --tun-type gre --tun-nocsum
-A -u 10.0.0.6:5060 -s rr -p 60 -M 255.0.255.0 --pe sip
-a -u 10.0.0.6:5060 -r 192.168.1.13:5060 -m -w 1
-A -t [2001:db8::1]:80 -s mh -p 60 -M 64 -b mh-port
-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -g -w 5
-A -f 7 -s wrr -p 120
-a -f 7 -r 192.168.1.12:80 -m -w 2
-A -f 8 -6 -s fo
-a -f 8 -6 -r [2001:db8::11]:443 -m -w 1
";

fn run(t: &mut EngineTransport, line: &str, stdin: &str) -> Outcome {
    run_with(t, &args(line), stdin)
}

fn build() -> EngineTransport {
    let mut t = EngineTransport::new();
    let o = run(&mut t, "-R", SCRIPT);
    assert_eq!((o.status, o.stderr.as_str()), (0, ""), "{o:?}");
    t
}

#[test]
fn save_prints_every_feature_as_ipvsadm_does() {
    let mut t = build();
    let o = run(&mut t, "-S -n", "");
    assert_eq!(o.status, 0);
    assert_eq!(o.stdout, SAVED);
    // Thresholds are in the table, but not in the rules.
    let svc = &t.engine.services[0];
    assert!(svc.servers.iter().any(|s| s.config.u_threshold == 100));
}

#[test]
fn save_clear_restore_round_trips() {
    let mut t = build();
    let saved = run(&mut t, "-S -n", "").stdout;
    assert_eq!(run(&mut t, "-C", "").status, 0);
    assert!(t.engine.services.is_empty());
    let o = run(&mut t, "-R", &saved);
    assert_eq!((o.status, o.stderr.as_str()), (0, ""));
    assert_eq!(run(&mut t, "-S -n", "").stdout, saved);
    // The same table, but for the thresholds -S does not carry.
    let mut original = build().engine.services;
    for s in &mut original {
        for d in &mut s.servers {
            d.config.u_threshold = 0;
            d.config.l_threshold = 0;
        }
        s.servers.sort_by_key(|d| (d.config.addr, d.config.port));
    }
    let mut restored = t.engine.services.clone();
    for s in &mut restored {
        s.servers.sort_by_key(|d| (d.config.addr, d.config.port));
    }
    original.sort_by_key(|s| format!("{:?}", s.spec.key));
    restored.sort_by_key(|s| format!("{:?}", s.spec.key));
    assert_eq!(original, restored);
}

#[test]
fn rules_saved_by_ipvsadm_with_names_restore_unchanged() {
    // `ipvsadm -S` on the seed's DR director (names, not -n).
    let kernel_saved = "-A -t localhost.localdomain:http -s rr\n\
-a -t localhost.localdomain:http -r 192.168.79.129:http -g -w 1\n\
-a -t localhost.localdomain:http -r 192.168.79.131:http -g -w 1\n";
    let mut t = EngineTransport::new();
    let o = run(&mut t, "-R", kernel_saved);
    assert_eq!((o.status, o.stderr.as_str()), (0, ""));
    assert_eq!(t.engine.services[0].spec.key, tcp("192.168.79.180", 80));
    assert_eq!(run(&mut t, "-S", "").stdout, kernel_saved);
    assert_eq!(
        run(&mut t, "-S -n", "").stdout,
        "-A -t 192.168.79.180:80 -s rr\n\
-a -t 192.168.79.180:80 -r 192.168.79.129:80 -g -w 1\n\
-a -t 192.168.79.180:80 -r 192.168.79.131:80 -g -w 1\n"
    );
}

#[test]
fn restore_goes_on_after_engine_errors_and_ends_with_the_last_status() {
    let mut t = EngineTransport::new();
    let o = run(
        &mut t,
        "-R",
        "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n-a -t 10.0.0.9:80 -r 10.0.0.2\n-A -t 10.0.0.2:80\n",
    );
    assert_eq!(o.status, 0);
    assert_eq!(o.stderr, "Service already exists\nService not defined\n");
    assert_eq!(t.engine.services.len(), 2);
    let o = run(&mut t, "-R", "-A -t 10.0.0.3:80\n-A -t 10.0.0.3:80\n");
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (255, "Service already exists\n")
    );
}

#[test]
fn restore_stops_at_a_parse_error() {
    let mut t = EngineTransport::new();
    let o = run(
        &mut t,
        "-R",
        "-A -t 10.0.0.1:80\n-A -t 10.0.0.9\n-A -t 10.0.0.2:80\n",
    );
    assert_eq!(o.status, 2);
    assert_eq!(o.stderr, "Zero port specified for non-persistent service\n");
    assert_eq!(t.engine.services.len(), 1);
    // A popt error is only a status: the restore goes on.
    let o = run(&mut t, "-R", "-A --bogus\n-A -t 10.0.0.2:80\n");
    assert_eq!(
        (o.status, o.stderr.as_str()),
        (0, "--bogus: unknown option\n")
    );
    assert_eq!(t.engine.services.len(), 2);
    // No nested restore; no '#' comments inside -R (ipvsadm has none).
    let o = run(&mut t, "-R", "-R\n-A -t 10.0.0.3:80\n");
    assert_eq!(o.status, 255);
    assert_eq!(
        o.stderr,
        "Try `uvsadm -h' or 'uvsadm --help' for more information.\n"
    );
    let o = run(&mut t, "-R", "# a comment\n-A -t 10.0.0.3:80\n");
    assert_eq!(o.status, 255);
    assert_eq!(t.engine.services.len(), 2);
}

#[test]
fn restore_reads_lines_as_ipvsadm_does() {
    let input = "ipvsadm -A -t 10.0.0.1:80 -s rr\r\n\n   \n\tipvsadm\t-a  -t 10.0.0.1:80 -r 10.0.0.2\nipvsadm\n-a -t 10.0.0.1:80 -r 10.0.0.3";
    assert_eq!(
        restore_lines(input),
        vec![
            args("-A -t 10.0.0.1:80 -s rr")[1..].to_vec(),
            args("-a -t 10.0.0.1:80 -r 10.0.0.2")[1..].to_vec(),
            args("-a -t 10.0.0.1:80 -r 10.0.0.3")[1..].to_vec(),
        ]
    );
    let mut t = EngineTransport::new();
    let o = run(&mut t, "-R", input);
    assert_eq!((o.status, o.stderr.as_str()), (0, ""));
    assert_eq!(t.engine.services[0].servers.len(), 2);
    // Listings inside a restore print as usual.
    let o = run(&mut t, "-R", "-L -n --timeout\n");
    assert_eq!(o.stdout, "Timeout (tcp tcpfin udp): 900 120 300\n");
}

fn runner_io<'a>(
    t: &'a mut EngineTransport,
    r: &'a StaticResolver,
    out: &'a mut Vec<u8>,
    err: &'a mut Vec<u8>,
) -> Runner<'a> {
    Runner {
        prog: "uvsadm".into(),
        transport: t,
        resolver: r,
        out,
        err,
    }
}

#[test]
fn uvsadm_save_and_restore_programs() {
    let r = resolver();
    let mut t = build();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = save_main(
        &mut runner_io(&mut t, &r, &mut out, &mut err),
        &args("-n"),
        &mut "".as_bytes(),
    );
    assert_eq!(status, 0);
    assert_eq!(String::from_utf8(out).unwrap(), SAVED);

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = save_main(
        &mut runner_io(&mut t, &r, &mut out, &mut err),
        &["/usr/sbin/uvsadm-save".to_string(), "-x".to_string()],
        &mut "".as_bytes(),
    );
    assert_eq!(status, 1);
    assert!(out.is_empty());
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "uvsadm-save: Script to save the IPVS table to stdout.\n   With the -n option, prints out the table in numeric format.\n"
    );

    // uvsadm-restore: '#' lines dropped, the table cleared first.
    let mut t = EngineTransport::new();
    run(&mut t, "-A -t 10.9.9.9:80", "");
    let input = format!("# saved by uvsadm-save\n{SAVED}# end\n");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = restore_main(
        &mut runner_io(&mut t, &r, &mut out, &mut err),
        &mut input.as_bytes(),
    );
    assert_eq!((status, err.as_slice()), (0, &b""[..]));
    assert_eq!(t.sent[1], uvs_conf::control::Command::Clear);
    assert_eq!(run(&mut t, "-S -n", "").stdout, SAVED);
}
