#!/usr/bin/env python3
"""bench/lib/perfstat.py — per-packet figures from one pps measurement's
`perf stat -x,` files (bench/scenarios/pps.sh with BENCH_PROFILE=stat).

    perfstat.py DIR DELIVERED_PPS SECONDS

DIR/proc.csv: the forwarding process's counters (task-clock, context
switches, page faults, syscalls by tracepoint); DIR/cpu.csv: system-wide
xdp:xdp_redirect / xdp:xdp_redirect_err (redirects into AF_XDP sockets
and their failures: fill ring empty or RX ring full); DIR/stat.before
and DIR/stat.after: /proc/stat's per-CPU lines around the window;
DIR/times.before and DIR/times.after: the process's utime and stime. Prints one
"metric unit value" line per figure, for bench_row. A missing file or
counter prints nothing for the figures that need it.
"""
import os
import sys


def read(path):
    counts = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return counts
    for line in lines:
        if not line or line.startswith("#"):
            continue
        f = line.split(",")
        if len(f) < 3:
            continue
        try:
            counts[f[2]] = float(f[0])
        except ValueError:
            continue  # "<not counted>", "<not supported>"
    return counts


def stat(path):
    """/proc/stat lines "cpuN user nice system idle iowait irq softirq steal ..."."""
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return {}
    return {f[0]: [int(x) for x in f[1:]] for f in (line.split() for line in lines)}


def ticks(path):
    """"utime stime" of /proc/PID/stat, or None."""
    try:
        return [int(x) for x in open(path).read().split()]
    except (OSError, ValueError):
        return None


def main():
    d, pps, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    pkts = pps * secs
    if pkts <= 0:
        return
    proc, cpu = read(f"{d}/proc.csv"), read(f"{d}/cpu.csv")
    out = []
    if "task-clock" in proc:
        ms = proc["task-clock"]
        out.append(("fwd_cpu_per_pkt", "ns", ms * 1e6 / pkts))
        out.append(("fwd_cpu_busy", "%", ms / (secs * 1000) * 100))
        # Packets per second of the forwarder's own CPU time: its rate if
        # it had CPU1 to itself (the comparable throughput on a shared
        # machine, where the scheduler share moves from run to run).
        if ms > 0:
            out.append(("pps_per_cpu", "pps", pkts / (ms / 1000)))
    syscalls = {
        "sendto": ["syscalls:sys_enter_sendto"],
        "recvfrom": ["syscalls:sys_enter_recvfrom"],
        "poll": ["syscalls:sys_enter_poll", "syscalls:sys_enter_ppoll"],
        "clock_gettime": ["syscalls:sys_enter_clock_gettime"],
    }
    for name, events in syscalls.items():
        if any(e in proc for e in events):
            n = sum(proc.get(e, 0.0) for e in events)
            out.append((f"{name}_per_kpkt", "calls", n * 1000 / pkts))
    if proc.get("syscalls:sys_enter_sendto", 0) > 0:
        out.append(("pkts_per_sendto", "pkts", pkts / proc["syscalls:sys_enter_sendto"]))
    for event, name in [("context-switches", "ctx_switches"), ("page-faults", "page_faults")]:
        if event in proc:
            out.append((f"{name}_per_s", "/s", proc[event] / secs))
    ok, err = cpu.get("xdp:xdp_redirect"), cpu.get("xdp:xdp_redirect_err")
    if ok is not None and err is not None and ok + err > 0:
        out.append(("redirect_fail", "%", err * 100 / (ok + err)))
    # CPU1 (the forwarding CPU) from /proc/stat: what share of it was
    # busy, in softirq (NAPI run outside the process) and stolen by the
    # hypervisor, and its busy time per packet.
    before, after = stat(f"{d}/stat.before"), stat(f"{d}/stat.after")
    if "cpu1" in before and "cpu1" in after:
        delta = [b - a for a, b in zip(before["cpu1"], after["cpu1"])]
        total = sum(delta[:8]) or 1
        idle = delta[3] + delta[4]
        busy = total - idle
        out.append(("cpu1_busy", "%", busy * 100 / total))
        out.append(("cpu1_softirq", "%", delta[6] * 100 / total))
        out.append(("cpu1_steal", "%", delta[7] * 100 / total))
        hz_ns = secs * 1e9 / total  # ns per tick over the window
        out.append(("cpu1_busy_per_pkt", "ns", busy * hz_ns / pkts))
    # The forwarding process's user time (its own code: the engine and
    # the ring handling) per packet, from /proc/PID/stat before and after
    # (utime stime, in clock ticks): what an engine change moves, without
    # the copy-mode kernel work that dominates task-clock.
    t0, t1 = ticks(f"{d}/times.before"), ticks(f"{d}/times.after")
    if t0 and t1:
        tick_ns = 1e9 / os.sysconf("SC_CLK_TCK")
        user, system = (t1[0] - t0[0]) * tick_ns, (t1[1] - t0[1]) * tick_ns
        out.append(("fwd_user_per_pkt", "ns", user / pkts))
        if user + system > 0:
            out.append(("fwd_user_share", "%", user * 100 / (user + system)))
    for metric, unit, value in out:
        print(metric, unit, f"{value:.4g}")


main()
