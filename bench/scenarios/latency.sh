#!/usr/bin/env bash
# bench/scenarios/latency.sh — benchmark scenario 4 (issue 6): latency
# added per packet at a moderate fixed rate. sockperf ping-pong (UDP, then
# TCP over one connection) at LAT_MPS messages/s from the client
# namespace (CPU0) to a sockperf server on the real server (CPU1), round
# trip p50/p99 (--full-rtt), side by side:
#   direct        the client pings the real server (kernel forwarding)
#   uvsd-xdp-nat  uvsd --backend afxdp, NAT
#   uvsd-xdp-dr   uvsd --backend afxdp, DR (replies through the router
#                 namespace gw, not the director: conn-common.sh conn_lab)
#   uvsd-tun-nat  uvsd --backend tun, NAT
#   nft-dnat      nftables DNAT numgen
# added_* = the case's percentile minus direct's in the same repetition.
# Each case: its own client address, 1 s warm-up runs (TCP, then UDP until
# replies come), then BENCH_SECONDS measured per protocol. Cases interleave within each repetition.
#
# Root. Env: BENCH_REPS (5), BENCH_SECONDS (3), BENCH_SMOKE=1, BENCH_OUT,
# LAT_MPS (10000). Writes $BENCH_OUT/latency.csv and $BENCH_OUT/latency.md.
set -o errexit -o nounset -o pipefail
SCENARIO=latency
here=$(cd "$(dirname "$0")" && pwd)
LAB_ID=${LAB_ID:-bl$$}
source "$here/../../tests/lib/lab.sh"
source "$here/../lib/conn-common.sh"

CASES=(direct uvsd-xdp-nat uvsd-xdp-dr uvsd-tun-nat nft-dnat)
[ -n "${LAT_CASES:-}" ] && read -r -a CASES <<<"$LAT_CASES"
MPS=${LAT_MPS:-10000}
PORT=11111

bench_init latency 3
HZ_KERNEL=$(zcat /proc/config.gz 2>/dev/null | sed -n 's/^CONFIG_HZ=//p')
need sockperf nft taskset
lab_init
conn_lab 1
# UDP servers on the real server's own address (direct, NAT) and on the
# VIP (DR: a reply must leave from the address asked); TCP on all.
for spec in "${RS4[0]}" "$VIP4" "0.0.0.0 --tcp"; do
  read -r addr tcp <<<"$spec"
  ip netns exec "$(ns rs1)" taskset -c 1 sockperf server -i "$addr" -p "$PORT" ${tcp:+"$tcp"} \
    >>"$LAB_TMP/sockperf-server.log" 2>&1 &
  LAB_PIDS+=($!)
done
wait_until 10 "the sockperf servers" bash -c "[ \$(ip netns exec $(ns rs1) ss -Hlnut | grep -c ':$PORT ') -ge 3 ]"

# ping_try TARGET SECONDS [--tcp]: sockperf ping-pong from the client on
# CPU0; sets P50 P99 (µs, round trip) and P_OBS (replies), or returns 1
# when no reply came (sockperf's UDP ping-pong stalls on a lost reply).
ping_try() {
  local target=$1 secs=$2
  shift 2
  P_OUT=$(nsx client taskset -c 0 sockperf ping-pong -i "$target" -p "$PORT" --mps="$MPS" -t "$secs" \
    --full-rtt "$@" 2>&1) || true
  read -r P50 P99 P_OBS <<<"$(awk '
    /percentile 50.000 =/ { p50 = $NF }
    /percentile 99.000 =/ { p99 = $NF }
    /\[Valid Duration\]/ { for (i = 1; i <= NF; i++) if ($i ~ /^ReceivedMessages=/) { split($i, a, "="); obs = a[2] + 0 } }
    END { printf "%s %s %s\n", p50, p99, obs }' <<<"$P_OUT")"
  [ -n "${P99:-}" ] && [ "${P_OBS:-0}" -gt 0 ]
}

# warm TARGET: TCP first (its retransmissions let the director learn the
# new client address's MAC), then UDP until a run gets replies (bounded).
warm() {
  ping_try "$1" 1 --tcp || true
  local i
  for _ in 1 2 3 4 5; do
    ping_try "$1" 1 && return 0
  done
  fail "no UDP reply from $1 in 5 warm-up runs: $(tail -5 <<<"$P_OUT")"
}

declare -A direct_p
for ((rep = 1; rep <= REPS; rep++)); do
  for c in "${CASES[@]}"; do
    mode_up "$c" "udp:$PORT tcp:$PORT"
    target=$(mode_target "$c")
    line=""
    client_src
    warm "$target"
    for proto in udp tcp; do
      flag=""
      [ "$proto" = tcp ] && flag=--tcp
      # A reply lost in the run stalls sockperf's UDP ping-pong: retry (bounded).
      ping_try "$target" "$SECS" $flag || ping_try "$target" "$SECS" $flag || ping_try "$target" "$SECS" $flag \
        || fail "sockperf $proto to $target ($c) got no reply in 3 runs: $(tail -5 <<<"$P_OUT")"
      row "$c" "rtt_p50_$proto" us "$rep" "$P50"
      row "$c" "rtt_p99_$proto" us "$rep" "$P99"
      if [ "$c" = direct ]; then
        direct_p[$rep.$proto.50]=$P50
        direct_p[$rep.$proto.99]=$P99
      elif [ -n "${direct_p[$rep.$proto.50]:-}" ]; then
        row "$c" "added_p50_$proto" us "$rep" "$(awk -v a="$P50" -v d="${direct_p[$rep.$proto.50]}" 'BEGIN { printf "%.2f", a - d }')"
        row "$c" "added_p99_$proto" us "$rep" "$(awk -v a="$P99" -v d="${direct_p[$rep.$proto.99]}" 'BEGIN { printf "%.2f", a - d }')"
      fi
      line+=" $proto p50 $P50 µs p99 $P99 µs ($P_OBS replies);"
    done
    mode_down "$c"
    progress "rep $rep/$REPS $c:${line%;}"
  done
done

render "Scenario 4: latency added per packet (make bench SCENARIO=latency)" \
  "Run of $BENCH_STARTED, $(nproc) vCPUs, kernel $(uname -r), load average $BENCH_LOAD0 at the start and $(cut -d' ' -f1 /proc/loadavg) at the end (shared machine). NAT lab of packet-io.md §6 with one real server; \`sockperf ping-pong --mps=$MPS --full-rtt -t $SECS\` ($(sockperf --version 2>&1 | head -1 | awk '{print $3}' | tr -d ,)) from the client namespace on CPU0 to a sockperf server on the real server on CPU1 (uvsd also on CPU1), UDP and TCP (one connection); figures are round-trip times in µs, p50 and p99 of one measured run per repetition and protocol after 1 s warm-up runs; added_* = the percentile minus direct's in the same repetition. $REPS repetitions, cases interleaved; veth, AF_XDP copy mode. DR replies return from the real server through a router namespace (kernel forwarding), not through the director." "" \
  "Reading: the p50 rows are the path's cost; a p99 near $((1000 / ${HZ_KERNEL:-250})) ms is one scheduler tick (HZ=${HZ_KERNEL:-250}): the server, the client or the forwarder waited for its CPU, which on this shared 2-vCPU machine says more about the other load than about the path."
progress "wrote $CSV and $MD"
