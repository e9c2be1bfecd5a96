#!/usr/bin/env bash
# bench/first-throughput.sh — the first throughput figure (issue 4): small
# UDP packets (64-byte frames) from a userspace sendmmsg generator
# (bench/udpgen.c) through the director namespace of the seed's NAT lab to
# one real server, which counts it on eth0 (rx_packets) and drops it at a
# socket that never reads (this kernel has no tc drop action). Cases, interleaved over ROUNDS rounds of SECS seconds:
#   kernel  — plain kernel forwarding: client → real server address, routed
#   afxdp   — uvsd --backend afxdp, NAT service -u VIP:9 → RS:9 (-m)
#   tun     — uvsd --backend tun, the same service
# CPUs: the generator (and the veth RX softirq it triggers) on CPU0; the
# forwarding on CPU1 — uvsd's threads pinned there, the kernel case by RPS.
# Prints delivered pps per case (median, min, max) and the ratio to kernel;
# RESULTS_WRITE=1 replaces the "First throughput figure" section of
# bench/RESULTS.md. Root; uses tests/lib/lab.sh for the namespaces.
set -o errexit -o nounset -o pipefail
SCENARIO=bench-first
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../tests/lib/lab.sh"
VIP_LOCAL=0 # per case below: on eth0 for AF_XDP only (see lab.sh)
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
PAYLOAD=18 # 14 + 20 + 8 + 18 = 60 bytes + FCS = 64 on the wire
CC=${CC:-$(command -v cc || command -v clang)}

lab_init
"$CC" -O2 -o "$LAB_TMP/udpgen" "$here/udpgen.c"
lab_nat 1
nsx director sysctl -qw net.ipv4.ip_forward=1
# The sink: a UDP socket on port 9 that never reads, so the real server's
# stack counts each datagram on eth0 (rx_packets) and drops it at the full
# socket buffer, with no ICMP errors flowing back.
ip netns exec "$(ns rs1)" python3 -c 'import signal, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("0.0.0.0", 9))
signal.pause()' &
LAB_PIDS+=($!)

rx() { nsx rs1 cat /sys/class/net/eth0/statistics/rx_packets; }

# measure DST: "delivered offered" pps over SECS seconds of flat-out
# sending, into $LAB_TMP/result.
measure() {
  local dst=$1 before after out
  before=$(rx)
  out=$(nsx client taskset -c 0 "$LAB_TMP/udpgen" "$CLIENT4" "$dst" 9 $PAYLOAD "$SECS" 16)
  # Let the last in-flight packets land (bounded: until rx stops moving).
  local prev=-1 cur deadline=$((SECONDS + 3))
  cur=$(rx)
  while [ "$cur" != "$prev" ] && [ "$SECONDS" -lt "$deadline" ]; do
    prev=$cur
    sleep 0.2
    cur=$(rx)
  done
  after=$cur
  echo "$(((after - before) / SECS)) $(($(cut -d' ' -f1 <<<"$out") / SECS))" >"$LAB_TMP/result"
}

run_case() {
  case $1 in
    kernel)
      # Forwarding on CPU1 by RPS, as uvsd's worker is below.
      nsx director sh -c 'echo 2 >/sys/class/net/eth0/queues/rx-0/rps_cpus'
      measure "${RS4[0]}"
      nsx director sh -c 'echo 0 >/sys/class/net/eth0/queues/rx-0/rps_cpus'
      ;;
    afxdp | tun)
      if [ "$1" = afxdp ]; then nsx director ip addr add "$VIP4/32" dev eth0; fi
      uvsd_start "$1"
      # Every uvsd thread on CPU1, away from the generator and the RX
      # softirq on CPU0 (packet-io.md §2: same-core AF_XDP livelocks).
      taskset -a -p -c 1 "$UVSD_PID" >/dev/null
      uvsadm -A -u "$VIP4:9" -s rr
      uvsadm -a -u "$VIP4:9" -r "${RS4[0]}:9" -m
      # One packet through first: the engine steers before we time it.
      local b
      b=$(rx)
      wait_until 10 "uvsd $1 to deliver to the real server" \
        bash -c "ip netns exec $(ns client) $LAB_TMP/udpgen $CLIENT4 $VIP4 9 $PAYLOAD 0.05 1 >/dev/null; [ \$(ip netns exec $(ns rs1) cat /sys/class/net/eth0/statistics/rx_packets) -gt $b ]"
      measure "$VIP4"
      uvsd_stop
      if [ "$1" = afxdp ]; then nsx director ip addr del "$VIP4/32" dev eth0; fi
      ;;
  esac
}

declare -A res offered
for ((r = 1; r <= ROUNDS; r++)); do
  for c in kernel afxdp tun; do
    rm -f "$LAB_TMP/result"
    run_case "$c"
    read -r pps off <"$LAB_TMP/result" || fail "case $c measured nothing"
    [ "$pps" -gt 0 ] || fail "case $c delivered nothing"
    res[$c]="${res[$c]:-} $pps"
    offered[$c]="${offered[$c]:-} $off"
    log "round $r $c: $pps pps delivered ($off offered)"
  done
done

stats() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)], a[1], a[NR]}'; }
read -r kmed _ _ <<<"$(stats "${res[kernel]}")"
table="| case | delivered pps, median (min–max) | × kernel | offered pps (median) |
|---|---|---|---|"
for c in kernel afxdp tun; do
  read -r med min max <<<"$(stats "${res[$c]}")"
  read -r omed _ _ <<<"$(stats "${offered[$c]}")"
  ratio=$(awk -v a="$med" -v b="$kmed" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}')
  name=$c
  [ "$c" = kernel ] && name="kernel ip_forward (client → RS address)"
  [ "$c" = afxdp ] && name="uvsd AF_XDP, NAT (-m)"
  [ "$c" = tun ] && name="uvsd TUN, NAT (-m)"
  table+="
| $name | $med ($min–$max) | $ratio | $omed |"
done
echo "$table"

if [ "${RESULTS_WRITE:-0}" = 1 ]; then
  section="## First throughput figure

Measured $(date -u +%Y-%m-%d) by \`make bench-first\` (bench/first-throughput.sh): 64-byte UDP
frames from \`bench/udpgen.c\` (sendmmsg, 64 per call, 16 source ports, pinned to CPU0; forwarding on CPU1: uvsd pinned there,
kernel forwarding moved there by RPS) in the
client namespace of the seed's NAT lab, through the director namespace, to one real server
that counts it on eth0 and drops it at a socket that never reads. ${ROUNDS} interleaved rounds of ${SECS} s; machine:
$(nproc) vCPUs shared with other work, kernel $(uname -r). Every case is overload (offered >
delivered); veth, AF_XDP copy mode.

$table

Read it as ratios within this one run (the machine is noisy, ±20 %); packet-io.md §2
explains why AF_XDP copy mode on veth does not beat the kernel here and TUN gets about a
quarter of it. The full benchmark suite (issue 6) is separate.
"
  python3 - "$here/RESULTS.md" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
pat = re.compile(r"^## First throughput figure\n.*?(?=^## |\Z)", re.S | re.M)
text = pat.sub(lambda m: section + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
  log "wrote the section to bench/RESULTS.md"
fi
