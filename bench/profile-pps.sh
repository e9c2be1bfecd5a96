#!/usr/bin/env bash
# bench/profile-pps.sh — where the forwarding CPU goes, per delivered
# packet, for a few pps cases side by side (issue 6: uvsd AF_XDP vs the
# bare AF_XDP forwarder). Builds the pps lab (bench/scenarios/pps.sh),
# runs the cases interleaved, and over each measuring window counts with
# `perf stat` the forwarding process's CPU time, system calls, context
# switches and page faults, plus the system-wide redirects into AF_XDP
# sockets that failed (fill ring empty / RX ring full). This machine kind
# has no hardware counters (cycles, instructions, cache misses are "not
# supported" in the VM), so CPU time per packet stands for cycles.
#
#   bench/profile-pps.sh [CASE...]     (default: xsk-bare uvsd-xdp-dr)
#
# Env: PROFILE_REPS (3), PROFILE_SECONDS (5), PROFILE_RECORD=1 (then a
# `perf record` of each case's forwarder in one more repetition, with the
# top symbols in $OUT/profile-pps/CASE.perf.txt), PPS_CONN_TABLE_SIZE.
# Writes target/bench/profile/pps.{csv,md}; prints the table. Root.
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(xsk-bare uvsd-xdp-dr)
out=${BENCH_OUT:-$here/../target/bench/profile}
BENCH_OUT=$out BENCH_CASES="${cases[*]}" BENCH_REPS=${PROFILE_REPS:-3} \
  BENCH_SECONDS=${PROFILE_SECONDS:-5} BENCH_PROFILE=stat bash "$here/scenarios/pps.sh"
sed -n '/^| case/,/^$/p' "$out/pps.md"
if [ "${PROFILE_RECORD:-0}" = 1 ]; then
  BENCH_OUT=$out/record BENCH_CASES="${cases[*]}" BENCH_REPS=1 \
    BENCH_SECONDS=${PROFILE_SECONDS:-5} BENCH_PROFILE=1 bash "$here/scenarios/pps.sh"
  for c in "${cases[@]}"; do
    echo "== $c"
    sed -n '/by command, object and symbol/,$p' "$out/record/profile-pps/$c.perf.txt" | head -30
  done
fi
