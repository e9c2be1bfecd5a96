#!/usr/bin/env bash
# bench/scenarios/pps.sh — issue 6, scenario 1: small-packet pps through
# the director, every case side by side in one run, plus overload.
#
#   client ns ──veth── director ns ──veth── rs1 ns (XDP sink)
#   (xdpgen, CPU0)     (forwarding,  └─veth── rs2 ns (XDP sink)
#                       CPU1)
#
# The client sends 64-byte UDP frames (60 + FCS) from bench/tools/xdpgen
# (BPF_PROG_RUN live frames, XDP_TX out of its eth0; 16 client addresses ×
# 256 ports = 4096 flows) to the director; each real server's eth0 runs
# bench/tools/xdpsink, which counts and drops them (per CPU), read per real
# server. Pinning (packet-io.md §2): generator and the director's RX NAPI
# on CPU0, forwarding on CPU1 (uvsd's threads and the bare forwarders by
# taskset, kernel paths by RPS; the TUN cases route into the device on
# CPU0, as §4 measured). Cases, interleaved per repetition:
#   kernel            plain kernel forwarding, client → real server addresses
#   xsk-bare          bench/tools/xskfwd: AF_XDP MAC rewrite, shared UMEM
#   uvsd-xdp-dr|nat|fullnat|tun   uvsd --backend afxdp, that method
#   nft-dnat          nftables DNAT, numgen inc mod 2 over the real servers
#   tun-bare          bench/tools/tunloop: TUN read/rewrite/write
#   uvsd-tun          uvsd --backend tun, NAT
#   overload-1x|2x    uvsd AF_XDP NAT at the rate uvsd-xdp-nat delivered
#                     flat out in this repetition (its saturation), and at 2×
# Every other case is flat out. Metrics: delivered pps (sinks, over
# BENCH_SECONDS after a warm-up) and offered pps (generator).
#
# Env: BENCH_REPS (5), BENCH_SECONDS (5), BENCH_SMOKE=1, BENCH_OUT
# (target/bench), BENCH_CASES (a subset, in order; CASE@PPS runs CASE at
# that fixed offered rate, e.g. xsk-bare@200000), BENCH_PROFILE=1 (in
# the last repetition's window: `perf record` of the forwarding process
# (all of CPU1 for the kernel cases) and mpstat into
# $BENCH_OUT/profile-pps/CASE.{perf.txt,perf.data,mpstat.txt}; BENCH_PROFILE=stat:
# perf stat counters per packet in every repetition, see
# bench/profile-pps.sh; PPS_STAT_METRICS="m1 m2" keeps only those rows),
# PPS_CONN_TABLE_SIZE
# (uvsd's conn_table_size, for experiments). Root; installs nothing.
# Writes $BENCH_OUT/pps.csv and $BENCH_OUT/pps.md.
set -o errexit -o nounset -o pipefail
SCENARIO=pps
LAB_ID=${LAB_ID:-bpps$$}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../tests/lib/lab.sh"
source "$here/../lib/common.sh"
BENCH_SECONDS=${BENCH_SECONDS:-5}
WARM=1
[ "$BENCH_SMOKE" = 1 ] && WARM=0.5
ALL_CASES=(kernel xsk-bare uvsd-xdp-dr uvsd-xdp-nat uvsd-xdp-fullnat uvsd-xdp-tun nft-dnat tun-bare
  uvsd-tun overload-1x overload-2x)
read -r -a CASES <<<"${BENCH_CASES:-${ALL_CASES[*]}}"

VIP=10.200.9.9 POOL=10.200.1.250 CSRC=10.201.0.1
RS1=10.200.1.2 RS2=10.200.2.2

need nft taskset python3
bench_tools
# The kernel's pktgen (bench/pktgen-kernel.sh) is absent on this machine
# kind; the scenario always uses the live-frames generator, so figures
# compare across machines.
if [ -d /proc/net/pktgen ]; then
  log "kernel pktgen present; this scenario still uses bench/tools/xdpgen"
else
  log "no kernel pktgen (bench/pktgen-kernel.sh says why): using bench/tools/xdpgen"
fi
lab_init
bench_csv_init pps
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- the lab

# veth HOST_A IF_A HOST_B IF_B: a veth pair, both ends up, TX checksum
# offload off (every sender writes complete checksums; packet-io.md §7).
veth() {
  ip link add "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
  nsx "$1" ethtool -K "$2" tx off >/dev/null
  nsx "$3" ethtool -K "$4" tx off >/dev/null
  nsx "$1" ip link set "$2" up
  nsx "$3" ip link set "$4" up
}
lab_ns client
lab_ns director
lab_ns rs1
lab_ns rs2
veth client eth0 director eth0
veth director eth1 rs1 eth0
veth director eth2 rs2 eth0
lab_addr client eth0 10.200.0.2/24
lab_addr director eth0 10.200.0.1/24
lab_addr director eth1 10.200.1.1/24
lab_addr director eth2 10.200.2.1/24
lab_addr rs1 eth0 $RS1/24
lab_addr rs2 eth0 $RS2/24
nsx rs1 ip route add default via 10.200.1.1
nsx rs2 ip route add default via 10.200.2.1
nsx director sysctl -qw net.ipv4.ip_forward=1
# XDP frames into a veth need NAPI on the peer (packet-io.md §3): GRO on
# the director's eth0 gives it in the cases without an XDP program there.
nsx director ethtool -K eth0 gro on >/dev/null
CMAC=$(nsx client cat /sys/class/net/eth0/address)
DMAC=$(nsx director cat /sys/class/net/eth0/address)
RS1MAC=$(nsx rs1 cat /sys/class/net/eth0/address)
RS2MAC=$(nsx rs2 cat /sys/class/net/eth0/address)
sink_start rs1
sink_start rs2
# The director knows the real servers' MACs before the first case.
nsx director ping -c1 -W2 $RS1 >/dev/null || fail "director cannot reach rs1"
nsx director ping -c1 -W2 $RS2 >/dev/null || fail "director cannot reach rs2"

rps() { nsx director sh -c "echo $1 >/sys/class/net/eth0/queues/rx-0/rps_cpus"; }

# gen RATE SECONDS DSTS: xdpgen in the client on CPU0 (RATE 0 = flat out).
gen() {
  nsx client taskset -c 0 "$BENCH_TOOLS/xdpgen" --dev eth0 --src-mac "$CMAC" --dst-mac "$DMAC" \
    --src $CSRC --src-count 16 --sport 1024 --sport-count 256 --dst "$3" --dport 9 \
    --proto udp --size 60 --rate "$1" --duration "$2"
}

# flowing: a short burst reaches the sinks (false at once if the bare
# forwarder has exited).
flowing() {
  if [ -n "$TOOL_PID" ] && ! kill -0 "$TOOL_PID" 2>/dev/null; then
    return 1
  fi
  local before
  before=$(sinks_total)
  gen 100000 0.1 "$DSTS" >/dev/null
  [ "$(sinks_total)" -gt "$before" ]
}

# uvsd_case BACKEND METHOD: uvsd with one UDP service VIP:9 → rs1, rs2.
uvsd_case() {
  local backend=$1 method=$2 conf="$LAB_TMP/uvsd-$2.toml"
  {
    echo '[engine]'
    echo 'interfaces = ["eth0", "eth1", "eth2"]'
    # PPS_CONN_TABLE_SIZE: an experiment's table size (default: uvsd's).
    [ -n "${PPS_CONN_TABLE_SIZE:-}" ] && echo "conn_table_size = $PPS_CONN_TABLE_SIZE"
    if [ "$method" = fullnat ]; then
      printf '[fullnat]\naddrs = ["%s"]\nport_range = "20000-60000"\n' $POOL
    fi
    printf '[[service]]\nprotocol = "udp"\naddress = "%s:9"\nscheduler = "rr"\n' $VIP
    for rs in $RS1 $RS2; do
      printf '  [[service.real_server]]\n  address = "%s:9"\n  method = "%s"\n' "$rs" "$method"
    done
  } >"$conf"
  if [ "$backend" = afxdp ]; then
    # AF_XDP: the VIP (and pool) are the director's own addresses, as the
    # seed's scripts make them; the TUN backend steers by routes instead.
    nsx director ip addr add $VIP/32 dev eth0
    [ "$method" = fullnat ] && nsx director ip addr add $POOL/32 dev eth1
  fi
  uvsd_start "$backend" --config "$conf"
  # Every uvsd thread on CPU1, away from the generator and RX (§2).
  taskset -a -p -c 1 "$UVSD_PID" >/dev/null
  DSTS=$VIP
}

uvsd_case_stop() {
  uvsd_stop
  nsx director ip addr del $VIP/32 dev eth0 2>/dev/null || true
  nsx director ip addr del $POOL/32 dev eth1 2>/dev/null || true
}

TOOL_PID=""

# start_xskfwd: the bare AF_XDP forwarder (bench/lib/common.sh
# xskfwd_start), until traffic flows.
start_xskfwd() {
  xskfwd_start eth0 "eth1=$RS1MAC" "eth2=$RS2MAC"
  TOOL_PID=$XSKFWD_PID
  wait_until 20 "traffic through xskfwd" flowing
}

case_start() {
  RATE=0
  case $1 in
    kernel)
      rps 2
      DSTS="$RS1,$RS2"
      ;;
    xsk-bare)
      DSTS=$VIP
      start_xskfwd
      return
      ;;
    uvsd-xdp-*) uvsd_case afxdp "${1#uvsd-xdp-}" ;;
    overload-1x | overload-2x)
      [ -n "${SATURATION:-}" ] || fail "$1 needs uvsd-xdp-nat measured before it in the repetition"
      uvsd_case afxdp nat
      RATE=$SATURATION
      [ "$1" = overload-2x ] && RATE=$((2 * SATURATION))
      ;;
    nft-dnat)
      nsx director nft -f - <<EOT
table ip uvsbench {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $VIP udp dport 9 dnat to numgen inc mod 2 map { 0 : $RS1, 1 : $RS2 }
  }
}
EOT
      rps 2
      DSTS=$VIP
      ;;
    tun-bare)
      ip netns exec "$(ns director)" taskset -c 1 "$BENCH_TOOLS/tunloop" bt0 $VIP "$RS1,$RS2" \
        >"$LAB_TMP/tunloop.out" 2>&1 &
      TOOL_PID=$!
      LAB_PIDS+=("$TOOL_PID")
      wait_until 10 "the bare TUN loop's device" nsx director ip link show bt0 up
      nsx director ip route add $VIP/32 dev bt0
      nsx director sysctl -qw net.ipv4.conf.bt0.rp_filter=0
      DSTS=$VIP
      ;;
    uvsd-tun) uvsd_case tun nat ;;
    *) fail "unknown case $1" ;;
  esac
  wait_until 20 "traffic to flow in case $1" flowing
}

case_stop() {
  case $1 in
    kernel) rps 0 ;;
    xsk-bare | tun-bare)
      kill -TERM "$TOOL_PID"
      wait "$TOOL_PID" || fail "$1's tool exited non-zero: $(cat "$LAB_TMP/${1%-bare}"*.out)"
      TOOL_PID=""
      [ "$BENCH_SMOKE" = 1 ] || log "$1 counted: $(tail -n1 "$LAB_TMP/${1%-bare}"*.out)"
      ;;
    uvsd-* | overload-*) uvsd_case_stop ;;
    nft-dnat)
      nsx director nft delete table ip uvsbench
      rps 0
      ;;
  esac
}

# measure CASE REP: generator for WARM + BENCH_SECONDS (+ slack); the
# sinks' rate over the BENCH_SECONDS window after the warm-up.
measure() {
  local c=$1 rep=$2 a b pid out="$LAB_TMP/gen.out" delivered offered
  gen "$RATE" "$(python3 -c "print($WARM + $BENCH_SECONDS + 0.3)")" "$DSTS" >"$out" &
  pid=$!
  sleep "$WARM" # warm-up: rings, caches, connection tables filled
  a=$(sinks_snapshot)
  local stat_dir=""
  if [ "${BENCH_PROFILE:-0}" = stat ]; then
    # Counters of the forwarding process over the window, every
    # repetition (bench/profile-pps.sh turns them into per-packet rows).
    stat_dir="$BENCH_OUT/profile-pps/$c.$rep"
    mkdir -p "$stat_dir"
    local fwd=${TOOL_PID:-$UVSD_PID} sp
    if [ -n "$fwd" ]; then
      perf stat -x, -o "$stat_dir/proc.csv" -p "$fwd" -e task-clock,context-switches \
        -e cpu-migrations,page-faults,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom \
        -e syscalls:sys_enter_poll,syscalls:sys_enter_ppoll,syscalls:sys_enter_clock_gettime \
        -- sleep "$BENCH_SECONDS" 2>/dev/null &
      sp=$!
    fi
    # Redirects into AF_XDP sockets and their failures (fill ring empty
    # or RX ring full) happen on the RX CPU, outside the process.
    grep '^cpu[0-9]' /proc/stat >"$stat_dir/stat.before"
    # User and system time of the forwarding process (all threads).
    [ -n "$fwd" ] && cut -d' ' -f14,15 "/proc/$fwd/stat" >"$stat_dir/times.before"
    if [ -z "${PPS_STAT_METRICS:-}" ] || [[ " $PPS_STAT_METRICS " == *" redirect_fail "* ]]; then
      perf stat -x, -o "$stat_dir/cpu.csv" -a -e xdp:xdp_redirect,xdp:xdp_redirect_err \
        -- sleep "$BENCH_SECONDS" 2>/dev/null
    else
      # Not asked for: no tracepoint cost on the RX CPU.
      sleep "$BENCH_SECONDS"
    fi
    grep '^cpu[0-9]' /proc/stat >"$stat_dir/stat.after"
    [ -n "$fwd" ] && cut -d' ' -f14,15 "/proc/$fwd/stat" >"$stat_dir/times.after"
    [ -n "$fwd" ] && { wait "$sp" || true; }
  elif [ "${BENCH_PROFILE:-0}" = 1 ] && [ "$rep" = "$BENCH_REPS" ]; then
    local pd="$BENCH_OUT/profile-pps"
    mkdir -p "$pd"
    mpstat -P ALL "$BENCH_SECONDS" 1 >"$pd/$c.mpstat.txt" 2>&1 &
    local mp=$!
    # The forwarding process where there is one (other work on a shared
    # machine stays out of its profile), else all of CPU1.
    local target=(-C 1)
    if [ -n "$TOOL_PID" ]; then
      target=(-p "$TOOL_PID")
    elif [ -n "$UVSD_PID" ]; then
      target=(-p "$UVSD_PID")
    fi
    perf record -q "${target[@]}" -o "$LAB_TMP/perf.data" -- sleep "$BENCH_SECONDS" >/dev/null 2>&1
    wait "$mp" || true
  else
    sleep "$BENCH_SECONDS" # the measuring window
  fi
  b=$(sinks_snapshot)
  wait "$pid" || fail "the generator failed in case $c"
  delivered=$(sinks_rate "$a" "$b")
  offered=$(sed -n 's/.*: \([0-9]*\) pps$/\1/p' "$out")
  [ "$delivered" -gt 0 ] || fail "case $c delivered nothing"
  bench_row "$c" delivered pps "$rep" "$delivered"
  bench_row "$c" offered pps "$rep" "${offered:-0}"
  local share
  share=$(python3 - "$a" "$b" <<'PY'
import sys
a = {l.split()[0]: int(l.split()[1]) for l in sys.argv[1].splitlines()}
b = {l.split()[0]: int(l.split()[1]) for l in sys.argv[2].splitlines()}
d = {h: b[h] - a[h] for h in b}
t = sum(d.values()) or 1
print(" ".join(f"{h} {100 * v / t:.0f}%" for h, v in sorted(d.items())))
PY
)
  if [ -f "$LAB_TMP/perf.data" ]; then
    {
      echo "# ${target[*]}, by command and object"
      perf report -q --stdio --no-children --sort comm,dso -i "$LAB_TMP/perf.data" 2>/dev/null \
        | grep -v '^$' | head -15
      echo "# ${target[*]}, by command, object and symbol"
      perf report -q --stdio --no-children --sort comm,dso,sym -i "$LAB_TMP/perf.data" 2>/dev/null \
        | grep -v '^$' | head -60
    } >"$BENCH_OUT/profile-pps/$c.perf.txt" || true
    mv "$LAB_TMP/perf.data" "$BENCH_OUT/profile-pps/$c.perf.data"
  fi
  if [ -n "$stat_dir" ]; then
    python3 "$BENCH_ROOT/bench/lib/perfstat.py" "$stat_dir" "$delivered" "$BENCH_SECONDS" \
      | while read -r metric unit value; do
        # PPS_STAT_METRICS: keep only these (the report and plot of a
        # full run stay readable); unset = every figure.
        [ -z "${PPS_STAT_METRICS:-}" ] || [[ " $PPS_STAT_METRICS " == *" $metric "* ]] || continue
        bench_row "$c" "$metric" "$unit" "$rep" "$value"
      done
  fi
  [ "$c" = uvsd-xdp-nat ] && SATURATION=$delivered
  log "rep $rep/$BENCH_REPS $c: $delivered pps delivered, ${offered:-?} offered ($share)"
}

for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  SATURATION=""
  for c in "${CASES[@]}"; do
    # CASE@PPS: that case at a fixed offered rate instead of flat out.
    case_start "${c%@*}"
    [[ $c == *@* ]] && RATE=${c#*@}
    measure "$c" "$rep"
    case_stop "${c%@*}"
  done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
setup="Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`make bench SCENARIO=pps\` (bench/scenarios/pps.sh):
64-byte UDP frames (60 + FCS; 16 client addresses × 256 ports) from \`bench/tools/xdpgen\`
(BPF_PROG_RUN live frames) in a client namespace, through a director namespace, to two real-server
namespaces joined by direct veths, whose XDP sinks (\`bench/tools/xdpsink\`) count and drop them.
Generator and the director's RX on CPU0, forwarding on CPU1 (uvsd and the bare forwarders by
taskset; kernel forwarding and nft by RPS; the TUN cases route into the device on CPU0).
Delivered = the sinks' rate over ${BENCH_SECONDS} s after a ${WARM} s warm-up; offered = the
generator's rate. Every case is flat out except overload-1x/2x: uvsd AF_XDP NAT at the rate
uvsd-xdp-nat delivered in the same repetition, and at twice it. veth, so AF_XDP is copy mode.
Machine: $(nproc) vCPUs shared with other work, kernel $(uname -r); load average ${load_before}
before, ${load_after} after."
if [ "${BENCH_PROFILE:-0}" = stat ]; then
  setup+=" fwd_cpu_per_pkt = the forwarding process's CPU time over the window (\`perf stat\`
task-clock of xskfwd / tunloop / uvsd, kernel work in its system calls included) / packets
delivered, the figure that does not depend on how much of CPU1 the scheduler gave it;
fwd_cpu_busy = that CPU time / the window (the rest of CPU1 ran softirqs and other work);
pps_per_cpu = packets delivered per second of that CPU time (its rate on a whole core);
fwd_user_per_pkt = the process's user time (/proc/PID/stat utime: its own code, engine and rings,
without the copy-mode kernel work) / packets delivered; fwd_user_share = user / (user + system)."
fi
targets=()
for m in dr nat fullnat tun; do
  targets+=(--target "uvsd-xdp-$m/delivered >= 0.9 xsk-bare/delivered")
  targets+=(--target "uvsd-xdp-$m/delivered >= 1.0 nft-dnat/delivered")
done
targets+=(--target "uvsd-tun/delivered >= 0.9 tun-bare/delivered")
if [ "${BENCH_PROFILE:-0}" = stat ]; then
  # The same ratios per second of the forwarder's own CPU.
  for m in dr nat fullnat tun; do
    targets+=(--target "uvsd-xdp-$m/pps_per_cpu >= 0.9 xsk-bare/pps_per_cpu")
  done
  targets+=(--target "uvsd-tun/pps_per_cpu >= 0.9 tun-bare/pps_per_cpu")
fi
# Overload: 2× the saturation rate against the throughput at saturation
# (uvsd-xdp-nat flat out, the rate the overload cases derive from) and
# against the paced run at that rate.
targets+=(--target "overload-2x/delivered >= 0.9 uvsd-xdp-nat/delivered")
targets+=(--target "overload-2x/delivered >= 0.9 overload-1x/delivered")
bench_report "Scenario 1: small-packet pps through the director (pps)" "$setup" "${targets[@]}" \
  --label "kernel=kernel ip_forward" --label "xsk-bare=bare AF_XDP forwarder" \
  --label "nft-dnat=nftables DNAT numgen" --label "tun-bare=bare TUN loop" \
  --label "uvsd-tun=uvsd TUN backend, NAT"
log "wrote $BENCH_CSV and $BENCH_OUT/pps.md"
