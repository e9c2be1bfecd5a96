# shellcheck shell=bash
# tests/lib/lab.sh — the end-to-end lab builder (sourced by every scenario).
#
# Owns: network namespaces for client(s), the director and real servers,
# the veth/bridge wiring between them, nginx on each real server, uvsd and
# uvsadm inside the director namespace, bounded waits, and teardown.
#
# Why bash and not a Rust crate: the scenarios are operator scripts — the
# seed's director scripts run with `uvsadm` nsx place of `ipvsadm`, then curl,
# wrk and ip(8) look at the result — so a shell library keeps them what an
# operator would type (as the kernel's tools/testing/selftests/net/ipvs.sh
# does). The Rust lab guard (engine/tests/netns/) serves the crate tests.
#
# Every name carries a per-run prefix (LAB_ID), so runs never collide;
# `lab_init` installs a trap that tears everything down on EXIT, even when
# a check fails. Waits poll a condition with a deadline; nothing sleeps a
# fixed time nsx place of a condition.
#
# Topologies:
#   lan  — one switch namespace (bridge) joining client, director and real
#          servers on 192.168.79.0/24 + fd79::/64, as nsx the seed's DR and
#          TUN walkthroughs (DIP .128, VIP .180, RS .129 .131 .132).
#   nat  — two networks, as nsx the seed's NAT walkthrough: outside
#          10.133.146.0/24 + fd10::/64 (client .100/.101, director .1,
#          VIP .47 on it when VIP_LOCAL=1), inside 192.168.79.0/24 + fd79::/64 (director .128, real
#          servers route by default via it).

set -o errexit -o nounset -o pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
UVSD=${UVSD:-$E2E_ROOT/target/release/uvsd}
UVSADM=${UVSADM:-$E2E_ROOT/target/release/uvsadm}

LAB_ID=${LAB_ID:-u$$}
LAB_TMP=""
LAB_NS=()
LAB_PIDS=()
LAB_FAILED=0
# VIP_LOCAL=1: the VIP is an address of the director's interface, as the
# seed's scripts make it; the AF_XDP program takes the VIP's traffic before
# the kernel. The TUN backend steers by routes, which the local table would
# beat (engine/src/io/tun.rs), so there the VIP stays off the director's
# interfaces (VIP_LOCAL=0) and uvsd answers ARP/NDP for it.
VIP_LOCAL=${VIP_LOCAL:-1}

# vip_local_for BACKEND: the VIP_LOCAL that backend wants.
vip_local_for() { if [ "$1" = tun ]; then echo 0; else echo 1; fi; }

# ---------------------------------------------------------------- logging

log() { printf '[%s] %s\n' "${SCENARIO:-lab}" "$*" >&2; }

# fail MESSAGE: print and exit non-zero (teardown runs from the trap).
fail() {
  printf '[%s] FAIL: %s\n' "${SCENARIO:-lab}" "$*" >&2
  LAB_FAILED=1
  if [ -n "$LAB_TMP" ] && [ -f "$LAB_TMP/uvsd.log" ]; then
    echo "---- uvsd log (last 30 lines) ----" >&2
    tail -n 30 "$LAB_TMP/uvsd.log" >&2 || true
  fi
  exit 1
}

pass() { printf '[%s] ok: %s\n' "${SCENARIO:-lab}" "$*" >&2; }

# need TOOL...: a missing tool is a failure, never a skip.
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || fail "$t is missing: run scripts/setup.sh (as root)"
  done
}

# ---------------------------------------------------------------- waits

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 50 ms until it
# succeeds; fail after SECONDS.
wait_until() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.05
  done
}

# ---------------------------------------------------------------- namespaces

ns() { echo "${LAB_ID}-$1"; }

# nsx NS CMD...: run CMD inside the lab namespace NS.
nsx() {
  local n=$1
  shift
  ip netns exec "$(ns "$n")" "$@"
}

lab_init() {
  [ "$(id -u)" -eq 0 ] || fail "the end-to-end lab needs root"
  need ip ethtool ping curl wrk nginx sha256sum python3 setpriv
  [ -x "$UVSD" ] || fail "$UVSD not built (make build)"
  [ -x "$UVSADM" ] || fail "$UVSADM not built (make build)"
  LAB_TMP=$(mktemp -d "/tmp/uvs-e2e-${LAB_ID}.XXXXXX")
  chmod 0755 "$LAB_TMP" # nginx workers (www-data) read the files below it
  trap lab_teardown EXIT
  trap 'fail "interrupted"' INT TERM
}

lab_teardown() {
  local rc=$?
  set +o errexit
  local pid
  for pid in "${LAB_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${LAB_PIDS[@]}"; do
    local deadline=$((SECONDS + 5))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  # nginx daemonises: stop each by its pid file.
  local pidfile
  for pidfile in "$LAB_TMP"/nginx-*/nginx.pid; do
    [ -f "$pidfile" ] || continue
    kill -TERM "$(cat "$pidfile")" 2>/dev/null
  done
  local n
  for n in "${LAB_NS[@]}"; do
    # Any process still inside the namespace (nginx workers) goes with it.
    local pids
    pids=$(ip netns pids "$(ns "$n")" 2>/dev/null)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    ip netns del "$(ns "$n")" 2>/dev/null
  done
  [ -n "$LAB_TMP" ] && rm -rf "$LAB_TMP"
  if [ "$rc" -ne 0 ] || [ "$LAB_FAILED" -ne 0 ]; then
    printf '[%s] FAILED\n' "${SCENARIO:-lab}" >&2
    exit 1
  fi
  exit 0
}

# lab_ns NAME: a namespace with lo up and the settings of packet-io.md §6.
lab_ns() {
  local n=$1
  ip netns add "$(ns "$n")"
  LAB_NS+=("$n")
  nsx "$n" ip link set lo up
  nsx "$n" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535" \
    net.core.somaxconn=4096 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# lab_port HOST IFNAME SWITCH: a veth from HOST's IFNAME to the bridge br0
# nsx namespace SWITCH. TX checksum offload off on the host side (every
# host sends toward the director; packet-io.md §7).
lab_port() {
  local host=$1 ifname=$2 sw=$3
  local port="p${#LAB_NS[@]}$RANDOM"
  port=${port:0:15}
  ip link add "$ifname" netns "$(ns "$host")" type veth peer name "$port" netns "$(ns "$sw")"
  nsx "$sw" ip link set "$port" master br0 up
  nsx "$host" ethtool -K "$ifname" tx off >/dev/null
  nsx "$sw" ethtool -K "$port" tx off >/dev/null
  nsx "$host" ip link set "$ifname" up
}

# lab_switch NAME: a namespace holding bridge br0 (no STP, no forward delay).
# Bridge netfilter off in it: where br_netfilter is loaded (built in on
# this kernel) every bridged frame would otherwise run the IP hooks of
# the switch namespace, a cost no cable has, paid by every case alike.
lab_switch() {
  lab_ns "$1"
  nsx "$1" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
    net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
  nsx "$1" ip link add br0 type bridge forward_delay 0 stp_state 0
  nsx "$1" ip link set br0 up
}

# lab_addr HOST IFNAME ADDR/LEN...
lab_addr() {
  local host=$1 ifname=$2 a
  shift 2
  for a in "$@"; do
    case $a in
      *:*) nsx "$host" ip -6 addr add "$a" dev "$ifname" nodad ;;
      *) nsx "$host" ip addr add "$a" dev "$ifname" ;;
    esac
  done
}

# ---------------------------------------------------------------- nginx

# lab_nginx HOST NAME: nginx in HOST answering every path with "NAME\n",
# /big a 1 MB random file, /huge a 16 MB one; every reply carries
# "X-Server: NAME". Files, pid and logs live under the run's temp dir.
lab_nginx() {
  local host=$1 name=$2
  local dir="$LAB_TMP/nginx-$name"
  mkdir -p "$dir/www" "$dir/tmp"
  head -c 1048576 /dev/urandom >"$dir/www/big"
  head -c 16777216 /dev/urandom >"$dir/www/huge"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 1000000;
  server {
    listen 80 reuseport;
    listen [::]:80 reuseport;
    root $dir/www;
    add_header X-Server $name always;
    location = /big { default_type application/octet-stream; }
    location = /huge { default_type application/octet-stream; }
    location / { default_type text/plain; return 200 "$name\n"; }
  }
}
EOF
  nsx "$host" nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" \
    || fail "nginx on $host did not start"
  wait_until 10 "nginx on $host" nsx "$host" curl -sf -o /dev/null http://127.0.0.1/
}

# sha_of NAME FILE: sha256 of real server NAME's FILE (big|huge).
sha_of() { sha256sum "$LAB_TMP/nginx-$1/www/$2" | cut -d' ' -f1; }

# ---------------------------------------------------------------- uvsd

UVSD_PID=""

# uvsadm ARGS...: uvsadm nsx the director namespace, talking to this run's uvsd.
uvsadm() { nsx director env UVS_SOCKET="$LAB_TMP/uvsd.sock" "$UVSADM" "$@"; }

# uvsd_start BACKEND [ARGS...]: uvsd nsx the director namespace; waits
# until its control socket answers.
uvsd_start() {
  local backend=$1
  shift
  # ip netns exec directly (not the nsx function), so $! is uvsd itself.
  ip netns exec "$(ns director)" "$UVSD" --backend "$backend" --socket "$LAB_TMP/uvsd.sock" "$@" \
    >>"$LAB_TMP/uvsd.log" 2>&1 &
  UVSD_PID=$!
  LAB_PIDS+=("$UVSD_PID")
  local deadline=$((SECONDS + 20))
  until uvsadm -Ln >/dev/null 2>&1; do
    kill -0 "$UVSD_PID" 2>/dev/null || fail "uvsd --backend $backend exited at start"
    [ "$SECONDS" -lt "$deadline" ] || fail "uvsd did not answer on its socket within 20s"
    sleep 0.05
  done
}

# uvsd_stop: SIGTERM and wait (bounded).
uvsd_stop() {
  [ -n "$UVSD_PID" ] || return 0
  kill -TERM "$UVSD_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while kill -0 "$UVSD_PID" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "uvsd ignored SIGTERM for 10s"
    sleep 0.05
  done
  wait "$UVSD_PID" 2>/dev/null || true
  UVSD_PID=""
}

# run_seed_script FILE [VAR=VALUE...]: run a seed director script
# (tests/seed/) inside the director namespace with `uvsadm` nsx place of
# /sbin/ipvsadm, the variables nsx its environment.
run_seed_script() {
  local script=$1
  shift
  mkdir -p "$LAB_TMP/bin"
  cat >"$LAB_TMP/bin/ipvsadm" <<EOF
#!/bin/sh
exec env UVS_SOCKET="$LAB_TMP/uvsd.sock" "$UVSADM" "\$@"
EOF
  chmod +x "$LAB_TMP/bin/ipvsadm"
  cp "$LAB_TMP/bin/ipvsadm" "$LAB_TMP/bin/uvsadm"
  nsx director env PATH="$LAB_TMP/bin:$PATH" VIP_LOCAL="$VIP_LOCAL" "$@" \
    bash "$script" >"$LAB_TMP/seed-script.out" 2>&1 \
    || {
      cat "$LAB_TMP/seed-script.out" >&2
      fail "seed script $(basename "$script") failed"
    }
}

# ---------------------------------------------------------------- topologies

# lab_lan N_RS: the seed's DR/TUN LAN. Sets VIP4 VIP6 DIP4 DIP6 RS_NAMES
# RS4[] RS6[] CLIENT4 CLIENT4B CLIENT6 CLIENT6B.
lab_lan() {
  local nrs=${1:-3} i
  lab_switch sw
  lab_ns client
  lab_ns director
  lab_port client eth0 sw
  lab_port director eth0 sw
  VIP4=192.168.79.180 VIP6=fd79::180 DIP4=192.168.79.128 DIP6=fd79::128
  CLIENT4=192.168.79.100 CLIENT4B=192.168.79.101 CLIENT6=fd79::100 CLIENT6B=fd79::101
  lab_addr client eth0 $CLIENT4/24 $CLIENT4B/24 $CLIENT6/64 $CLIENT6B/64
  lab_addr director eth0 $DIP4/24 $DIP6/64
  RS4=(192.168.79.129 192.168.79.131 192.168.79.132)
  RS6=(fd79::129 fd79::131 fd79::132)
  RS_NAMES=()
  for ((i = 0; i < nrs; i++)); do
    local n="rs$((i + 1))"
    RS_NAMES+=("$n")
    lab_ns "$n"
    lab_port "$n" eth0 sw
    lab_addr "$n" eth0 "${RS4[$i]}/24" "${RS6[$i]}/64"
    lab_nginx "$n" "$n"
  done
}

# lab_dr_realservers: the seed's DR real-server setup — VIP on lo,
# arp_ignore=1 / arp_announce=2 (IPv6: the VIP on lo answers no NDP).
lab_vip_on_lo() {
  local n
  for n in "${RS_NAMES[@]}"; do
    nsx "$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
    nsx "$n" ip addr add "$VIP4/32" dev lo
    nsx "$n" ip -6 addr add "$VIP6/128" dev lo nodad
  done
}

# lab_nat N_RS: the seed's NAT lab (two networks).
lab_nat() {
  local nrs=${1:-3} i
  lab_switch swout
  lab_switch swin
  lab_ns client
  lab_ns director
  lab_port client eth0 swout
  lab_port director eth0 swout
  lab_port director eth1 swin
  VIP4=10.133.146.47 VIP6=fd10::47 DIP4=192.168.79.128 DIP6=fd79::128
  DOUT4=10.133.146.1 DOUT6=fd10::1
  CLIENT4=10.133.146.100 CLIENT4B=10.133.146.101 CLIENT6=fd10::100 CLIENT6B=fd10::101
  lab_addr client eth0 $CLIENT4/24 $CLIENT4B/24 $CLIENT6/64 $CLIENT6B/64
  lab_addr director eth0 $DOUT4/24 $DOUT6/64
  # The seed's director holds the VIP on its outside interface.
  [ "$VIP_LOCAL" = 1 ] && lab_addr director eth0 $VIP4/32 $VIP6/128
  lab_addr director eth1 $DIP4/24 $DIP6/64
  nsx client ip route add 192.168.79.0/24 via $DOUT4
  nsx client ip -6 route add fd79::/64 via $DOUT6
  RS4=(192.168.79.129 192.168.79.131 192.168.79.132)
  RS6=(fd79::129 fd79::131 fd79::132)
  RS_NAMES=()
  for ((i = 0; i < nrs; i++)); do
    local n="rs$((i + 1))"
    RS_NAMES+=("$n")
    lab_ns "$n"
    lab_port "$n" eth0 swin
    lab_addr "$n" eth0 "${RS4[$i]}/24" "${RS6[$i]}/64"
    nsx "$n" ip route add default via $DIP4
    nsx "$n" ip -6 route add default via $DIP6
    lab_nginx "$n" "$n"
  done
}

# ---------------------------------------------------------------- clients

# url HOST [PORT] [PATH]: an http URL, IPv6 nsx brackets.
url() {
  local h=$1 port=${2:-80} path=${3:-/}
  case $h in *:*) h="[$h]" ;; esac
  echo "http://$h:$port$path"
}

# get FROM_ADDR URL: one request from the client namespace; prints the
# body (the answering server's name).
get() { nsx client curl -fsS --max-time 5 --interface "$1" "$2"; }

# names FROM_ADDR URL N: N requests, one answering name per line.
names() {
  local i
  for ((i = 0; i < $3; i++)); do
    get "$1" "$2" || {
      # Which real server the director bound each connection to.
      [ -z "$UVSD_PID" ] || uvsadm -Lnc >&2 || true
      fail "request $i to $2 from $1 failed"
    }
  done
}

# lab_mtu MTU HOST...: eth0 of each HOST and its switch port get MTU.
lab_mtu() {
  local mtu=$1 h peer
  shift
  for h in "$@"; do
    nsx "$h" ip link set eth0 mtu "$mtu"
    peer=$(nsx "$h" cat /sys/class/net/eth0/iflink)
    local sw
    for sw in sw swin swout; do
      [[ " ${LAB_NS[*]} " == *" $sw "* ]] || continue
      local name
      name=$(nsx "$sw" ip -o link | awk -F': ' -v i="$peer" '$1==i{print $2}' | cut -d@ -f1)
      [ -n "$name" ] && nsx "$sw" ip link set "$name" mtu "$mtu"
    done
  done
  local sw
  for sw in sw swin swout; do
    [[ " ${LAB_NS[*]} " == *" $sw "* ]] || continue
    nsx "$sw" ip link set br0 mtu "$mtu" 2>/dev/null || true
  done
}

# decap_start HOST VIP DIRECTOR: `uvsd --decap` on a real server, taking
# IPIP from DIRECTOR for VIP into a TUN device holding VIP.
decap_start() {
  local host=$1 vip=$2 director=$3
  ip netns exec "$(ns "$host")" "$UVSD" --decap --vip "$vip" --director "$director" \
    --socket "$LAB_TMP/decap-$host.sock" >>"$LAB_TMP/decap-$host.log" 2>&1 &
  local pid=$!
  LAB_PIDS+=("$pid")
  wait_until 10 "the decap role on $host to hold $vip" \
    bash -c "kill -0 $pid && ip netns exec $(ns "$host") ip -o addr show | grep -qw '$vip'"
}
