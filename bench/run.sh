#!/usr/bin/env bash
# bench/run.sh — the benchmark suite (issue 6): `bench/run.sh [scenario...]`
# (default: every scenario in bench/scenarios, in the order pps conns table
# latency). Root; `make bench` runs scripts/setup.sh and the release build
# first, so a fresh machine needs nothing else.
#
# 1. Records the machine (nproc, kernel, CPU model, load, versions of uvsd,
#    nginx, haproxy, wrk, nft) into $BENCH_OUT/machine.md.
# 2. Runs each scenario (bench/scenarios/NAME.sh) with a progress line; a
#    failing scenario is reported and the others still run.
# 3. Unless BENCH_SMOKE=1: copies each CSV to bench/data/NAME.csv, renders
#    bench/plots/NAME.png (bench/plot.py), and splices NAME.md and the
#    machine record into bench/RESULTS.md between their
#    `<!-- bench:NAME:begin/end -->` markers. With BENCH_SMOKE=1 the plots
#    go to $BENCH_OUT and the committed files stay untouched.
# Env: BENCH_OUT (target/bench), and what the scenarios read (BENCH_REPS,
# BENCH_SECONDS, BENCH_SMOKE).
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export BENCH_OUT=${BENCH_OUT:-$root/target/bench}
BENCH_SMOKE=${BENCH_SMOKE:-0}
# matplotlib comes from Debian's python3-matplotlib: use the system python.
PY=${BENCH_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
mkdir -p "$BENCH_OUT"

say() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for n in pps conns table latency; do
    [ -f "$here/scenarios/$n.sh" ] && scenarios+=("$n")
  done
fi
for n in "${scenarios[@]}"; do
  [ -f "$here/scenarios/$n.sh" ] || { say "no scenario '$n' (bench/scenarios/$n.sh)"; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { say "the benchmarks build namespaces: run as root"; exit 1; }

version() { "$@" 2>&1 | head -n1 | tr -d '\r' || true; }
uvsd_bin=${UVSD:-$root/target/release/uvsd}
machine="$BENCH_OUT/machine.md"
{
  echo "### Machine"
  echo
  echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') by bench/run.sh (${scenarios[*]}) at commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown):"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| CPUs | $(nproc) × $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1) |"
  echo "| kernel | $(uname -r) |"
  echo "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: other work runs beside the benchmark) |"
  echo "| uvsd | $(version "$uvsd_bin" --version) |"
  echo "| nginx | $(version nginx -v) |"
  echo "| haproxy | $(version haproxy -v) |"
  echo "| wrk | $(version wrk --version) |"
  echo "| nft | $(version nft --version) |"
  echo "| clang (bench tools) | $(version clang --version) |"
} >"$machine"

failed=()
i=0
start=$SECONDS
for n in "${scenarios[@]}"; do
  i=$((i + 1))
  say "scenario $i/${#scenarios[@]}: $n"
  t0=$SECONDS
  if bash "$here/scenarios/$n.sh"; then
    say "scenario $n done in $((SECONDS - t0)) s"
  else
    say "scenario $n FAILED after $((SECONDS - t0)) s"
    failed+=("$n")
    continue
  fi
  csv="$BENCH_OUT/$n.csv"
  [ -s "$csv" ] || { say "scenario $n wrote no $csv"; failed+=("$n"); continue; }
  if [ "$BENCH_SMOKE" = 1 ]; then
    "$PY" "$here/plot.py" "$csv" "$BENCH_OUT/$n.png"
  else
    mkdir -p "$here/data" "$here/plots"
    cp "$csv" "$here/data/$n.csv"
    "$PY" "$here/plot.py" "$csv" "$here/plots/$n.png"
    python3 "$here/lib/splice.py" "$here/RESULTS.md" "$n" "$BENCH_OUT/$n.md"
    python3 "$here/lib/splice.py" "$here/RESULTS.md" machine "$machine"
    say "scenario $n: bench/data/$n.csv, bench/plots/$n.png, bench/RESULTS.md updated"
  fi
done
say "all done in $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  say "failed: ${failed[*]}"
  exit 1
fi
