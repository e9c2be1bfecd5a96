# shellcheck shell=bash
# bench/lib/common.sh — what every benchmark scenario shares (sourced after
# tests/lib/lab.sh, whose namespaces, waits, uvsd helpers and EXIT-trap
# teardown it builds on): the conventions' environment (BENCH_REPS,
# BENCH_SECONDS, BENCH_SMOKE, BENCH_OUT), the CSV file, the packet tools
# of bench/tools (built here, never installed), the XDP sinks on the real
# servers and reading their counters, and the markdown report.
#
# CSV: $BENCH_OUT/<scenario>.csv, header scenario,case,metric,unit,rep,value.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_TOOLS=${BENCH_TOOLS:-$BENCH_ROOT/target/bench-tools}
BENCH_SMOKE=${BENCH_SMOKE:-0}
BENCH_OUT=${BENCH_OUT:-$BENCH_ROOT/target/bench}
if [ "$BENCH_SMOKE" = 1 ]; then
  BENCH_REPS=1
  BENCH_SECONDS=2
else
  BENCH_REPS=${BENCH_REPS:-5}
fi

# xskfwd_start ARGS...: bench/tools/xskfwd ARGS (the bare AF_XDP
# forwarder) in the director namespace on CPU1, once it prints "ready"
# (its sockets registered). The kernel releases a closed AF_XDP socket's
# UMEM asynchronously, so a bind right after the previous case can fail
# (EBUSY): started again, five times at most. Sets XSKFWD_PID; its output
# is $LAB_TMP/xskfwd.out ("rx N tx N" at exit).
xskfwd_start() {
  local attempt
  for attempt in 1 2 3 4 5; do
    ip netns exec "$(ns director)" taskset -c 1 "$BENCH_TOOLS/xskfwd" "$@" \
      >"$LAB_TMP/xskfwd.out" 2>&1 &
    XSKFWD_PID=$!
    LAB_PIDS+=("$XSKFWD_PID")
    wait_until 10 "xskfwd to be ready or to exit" \
      bash -c "grep -q ready '$LAB_TMP/xskfwd.out' || ! kill -0 $XSKFWD_PID 2>/dev/null"
    grep -q ready "$LAB_TMP/xskfwd.out" && return 0
    log "xskfwd exited at start (attempt $attempt): $(cat "$LAB_TMP/xskfwd.out")"
    sleep 0.2 # give the kernel time to release the previous socket
  done
  fail "xskfwd did not start"
}

# bench_tools: build bench/tools into $BENCH_TOOLS (a no-op when current).
bench_tools() {
  make -s -C "$BENCH_ROOT/bench/tools" OUT="$BENCH_TOOLS" >&2 \
    || fail "building bench/tools failed (scripts/setup.sh installs clang, libbpf-dev, libxdp-dev)"
}

# bench_csv_init NAME: start $BENCH_OUT/NAME.csv (BENCH_CSV) with the header.
bench_csv_init() {
  mkdir -p "$BENCH_OUT"
  BENCH_NAME=$1
  BENCH_CSV="$BENCH_OUT/$1.csv"
  echo "scenario,case,metric,unit,rep,value" >"$BENCH_CSV"
}

# bench_row CASE METRIC UNIT REP VALUE: one measurement.
bench_row() { echo "$BENCH_NAME,$1,$2,$3,$4,$5" >>"$BENCH_CSV"; }

# ---------------------------------------------------------------- sinks

BENCH_SINKS=()

# sink_start HOST: xdpsink (count and drop IPv4 UDP/TCP/IPIP) on HOST's
# eth0, its counters in $LAB_TMP/sink-HOST.
sink_start() {
  local host=$1 file="$LAB_TMP/sink-$1"
  ip netns exec "$(ns "$host")" "$BENCH_TOOLS/xdpsink" eth0 "$file" 2>>"$LAB_TMP/sink-$host.log" &
  LAB_PIDS+=($!)
  BENCH_SINKS+=("$host")
  wait_until 10 "the XDP sink on $host" test -s "$file"
}

# sink_read HOST: "packets bytes monotonic_ns" of HOST's sink.
sink_read() { cat "$LAB_TMP/sink-$1"; }

# sinks_snapshot: every sink's reading, one "host packets bytes ns" a line.
sinks_snapshot() {
  local h
  for h in "${BENCH_SINKS[@]}"; do echo "$h $(sink_read "$h")"; done
}

# sinks_total: packets counted by all sinks together.
sinks_total() {
  local h p _ total=0
  for h in "${BENCH_SINKS[@]}"; do
    read -r p _ <"$LAB_TMP/sink-$h"
    total=$((total + p))
  done
  echo "$total"
}

# sinks_rate BEFORE AFTER: packets per second between two snapshots (each
# sink's count over its own timestamps, summed).
sinks_rate() {
  python3 - "$1" "$2" <<'PY'
import sys
def parse(text):
    return {l.split()[0]: (int(l.split()[1]), int(l.split()[3])) for l in text.strip().splitlines()}
a, b = parse(sys.argv[1]), parse(sys.argv[2])
rate = 0.0
for host, (p1, t1) in b.items():
    p0, t0 = a[host]
    if t1 > t0:
        rate += (p1 - p0) / ((t1 - t0) / 1e9)
print(int(rate))
PY
}

# ---------------------------------------------------------------- report

# bench_report TITLE SETUP [--target SPEC]...: $BENCH_OUT/NAME.md from the
# CSV (bench/lib/report.py says what SPEC is).
bench_report() {
  local title=$1 setup=$2
  shift 2
  python3 "$BENCH_ROOT/bench/lib/report.py" "$BENCH_CSV" --title "$title" --setup "$setup" "$@" \
    >"$BENCH_OUT/$BENCH_NAME.md"
}
