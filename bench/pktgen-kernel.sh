#!/usr/bin/env bash
# bench/pktgen-kernel.sh — drive the kernel's packet generator
# (/proc/net/pktgen) where the module exists, as on most distribution
# kernels. This machine's kernel has none: the script then says so and
# exits 2, and the benchmark harness uses the userspace live-frames
# generator (bench/tools/xdpgen) instead.
#
#   bench/pktgen-kernel.sh DEV DST_MAC DST_IP[-DST_IP_MAX] [options]
#     --src IP[-IP]      client addresses (default 10.201.0.1-10.201.0.16)
#     --sport P[-P]      client ports (default 1024-1279)
#     --dport P          destination port (default 9)
#     --size BYTES       frame without FCS, 60..1514 (default 60)
#     --rate PPS         fixed rate; 0 = flat out (default 0)
#     --duration S       how long (default 10)
#     --cpu N            the pktgen thread's CPU (default 0)
#
# pktgen sends UDP only (no TCP SYN/data); for those use bench/tools/xdpgen.
# Run it inside the sending namespace (ip netns exec ...). Prints
# "sent N frames in T s: R pps", as xdpgen does.
set -o errexit -o nounset -o pipefail

# die MESSAGE [STATUS]
die() { echo "pktgen-kernel.sh: $1" >&2; exit "${2:-1}"; }
[ $# -ge 3 ] || die "usage: pktgen-kernel.sh DEV DST_MAC DST_IP[-MAX] [--src A[-B]] [--sport P[-Q]] [--dport P] [--size N] [--rate PPS] [--duration S] [--cpu N]"
dev=$1 dmac=$2 dst=$3
shift 3
src=10.201.0.1-10.201.0.16 sport=1024-1279 dport=9 size=60 rate=0 duration=10 cpu=0
while [ $# -gt 0 ]; do
  case $1 in
    --src) src=$2 ;;
    --sport) sport=$2 ;;
    --dport) dport=$2 ;;
    --size) size=$2 ;;
    --rate) rate=$2 ;;
    --duration) duration=$2 ;;
    --cpu) cpu=$2 ;;
    *) die "unknown option $1" ;;
  esac
  shift 2
done

if [ ! -d /proc/net/pktgen ]; then
  modprobe pktgen 2>/dev/null || true
fi
[ -d /proc/net/pktgen ] || die "no kernel pktgen here: /proc/net/pktgen is missing and 'modprobe pktgen' failed (CONFIG_NET_PKTGEN is not built). Use the userspace generator bench/tools/xdpgen (the harness does)." 2
[ -e "/proc/net/pktgen/kpktgend_$cpu" ] || die "no pktgen thread on CPU $cpu"
(( size >= 60 && size <= 1514 )) || die "--size $size is outside 60..1514"

pg() { echo "$2" >"$1" || die "pktgen refused '$2' in $1"; }
thread=/proc/net/pktgen/kpktgend_$cpu
pg "$thread" rem_device_all
pg "$thread" "add_device $dev"
d=/proc/net/pktgen/$dev
pg "$d" "count 0"
pg "$d" "clone_skb 0"
pg "$d" "pkt_size $((size + 4))" # pktgen's size includes the FCS
pg "$d" "delay 0"
[ "$rate" != 0 ] && pg "$d" "ratep $rate"
pg "$d" "dst_mac $dmac"
pg "$d" "dst_min ${dst%-*}"
pg "$d" "dst_max ${dst#*-}"
pg "$d" "src_min ${src%-*}"
pg "$d" "src_max ${src#*-}"
pg "$d" "udp_src_min ${sport%-*}"
pg "$d" "udp_src_max ${sport#*-}"
pg "$d" "udp_dst_min $dport"
pg "$d" "udp_dst_max $dport"
pg "$d" "flag IPSRC_RND"
pg "$d" "flag UDPSRC_RND"
pg "$d" "flag UDPCSUM"

ctrl=/proc/net/pktgen/pgctrl
echo start >"$ctrl" &
runner=$!
deadline=$((SECONDS + ${duration%.*} + 1))
start=$(date +%s.%N)
# pktgen runs until stopped: stop it after the duration (bounded wait).
while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$runner" 2>/dev/null; do sleep 0.1; done
echo stop >"$ctrl"
wait "$runner" 2>/dev/null || true
end=$(date +%s.%N)
sent=$(sed -n 's/.*pkts-sofar: \([0-9]*\).*/\1/p' "$d" | head -n1)
pg "$thread" rem_device_all
awk -v n="${sent:-0}" -v a="$start" -v b="$end" 'BEGIN{t=b-a; printf "sent %d frames in %.3f s: %.0f pps\n", n, t, (t>0?n/t:0)}'
