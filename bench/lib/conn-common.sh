# shellcheck shell=bash
# bench/lib/conn-common.sh — what the benchmark scenarios conns, table and
# latency (bench/scenarios/) share; sourced after tests/lib/lab.sh.
#
# Owns: the suite's environment (BENCH_REPS, BENCH_SECONDS, BENCH_SMOKE,
# BENCH_OUT), the CSV rows (`scenario,case,metric,unit,rep,value`), the
# director "modes" a case puts in place in the NAT lab of packet-io.md §6
# (direct, uvsd AF_XDP NAT / DR, the bare AF_XDP NAT / DR forwarders, uvsd
# TUN NAT, the bare TUN NAT loop, nftables DNAT numgen, HAProxy mode tcp,
# nginx stream) and takes down again, an own client
# source address per measurement (the TIME_WAIT pitfall of §6), CPU
# pinning (client CPU0, forwarding and servers CPU1), CPU time of the
# lab's processes (and /proc/stat's machine-wide busy time), and uvsd's engine counters read over its control socket.
# Rendering the .md section is bench/tools/conn_report.py's.

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_init NAME DEFAULT_SECONDS: read the environment, start the CSV.
# Sets BENCH_NAME REPS SECS OUT CSV MD.
bench_init() {
  BENCH_NAME=$1
  if [ "${BENCH_SMOKE:-0}" = 1 ]; then
    REPS=1
    SECS=2
  else
    REPS=${BENCH_REPS:-5}
    SECS=${BENCH_SECONDS:-$2}
  fi
  OUT=${BENCH_OUT:-$E2E_ROOT/target/bench}
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  CSV="$OUT/$BENCH_NAME.csv"
  MD="$OUT/$BENCH_NAME.md"
  echo "scenario,case,metric,unit,rep,value" >"$CSV"
  BENCH_STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
  BENCH_LOAD0=$(cut -d' ' -f1 /proc/loadavg)
}

# row CASE METRIC UNIT REP VALUE: one measurement.
row() {
  [ -n "${5:-}" ] || fail "no value measured for $1 $2 (rep $4)"
  echo "$BENCH_NAME,$1,$2,$3,$4,$5" >>"$CSV"
}

# progress TEXT: the one line per case the harness shows.
progress() { printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2; }

# median CASE METRIC: the median of the rows so far ("" when none).
median() { python3 "$BENCH_HERE/tools/conn_report.py" median "$CSV" "$1" "$2"; }

# render TITLE SETUP_TEXT TARGET_LINES [NOTES]: write $MD.
render() {
  python3 "$BENCH_HERE/tools/conn_report.py" table "$CSV" "$1" "$2" "$3" "${4:-}" >"$MD"
}

# ---------------------------------------------------------------- machine

# cpu_busy: busy jiffies of all CPUs so far (user nice system irq softirq;
# idle, iowait and steal are not ours).
cpu_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8; exit}' /proc/stat; }

# cpu_lab: CPU ticks so far of the lab's processes (every process in its
# namespaces) and the kernel threads (bench/tools/cpu_lab.py).
cpu_lab() { python3 "$BENCH_HERE/tools/cpu_lab.py" "$LAB_ID"; }

# jiffy_us: microseconds per /proc/stat tick.
jiffy_us() { echo $((1000000 / $(getconf CLK_TCK))); }

# pin_ns NS CPU: every process in lab namespace NS onto CPU (all threads).
pin_ns() {
  local p
  for p in $(ip netns pids "$(ns "$1")"); do taskset -a -p -c "$2" "$p" >/dev/null 2>&1 || true; done
}

# ---------------------------------------------------------------- the lab

# conn_lab N_RS: the NAT lab of packet-io.md §6: client ns → director ns →
# N_RS real servers (nginx, worker_processes 1, tiny body) routing by
# default via the director; the VIP on the real servers' lo for DR;
# forwarding on; accept_local on the director; client addresses for every
# measurement (CLIENT_POOL); every server on CPU1. Plus a router
# namespace `gw` on both switches (GW_OUT4 on the clients' side, GW_IN4
# on the servers'): the real servers' gateway toward the clients in DR
# mode (mode_up uvsd-xdp-dr), so DR replies go from the real server to the
# client through a router, never through the director, as in the seed's
# DR set-up ("director is not gw for realservers") and in deployments.
# The other modes need the director on the reply path (NAT) or do not
# care (proxies, direct), and keep the director as the servers' gateway.
conn_lab() {
  VIP_LOCAL=0
  lab_nat "$1"
  lab_vip_on_lo
  nsx director sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.accept_local=1 \
    net.ipv4.conf.eth1.accept_local=1 net.ipv4.conf.eth0.accept_local=1
  GW_OUT4=10.133.146.2 GW_IN4=192.168.79.2
  lab_ns gw
  lab_port gw eth0 swout
  lab_port gw eth1 swin
  lab_addr gw eth0 $GW_OUT4/24
  lab_addr gw eth1 $GW_IN4/24
  nsx gw sysctl -qw net.ipv4.ip_forward=1
  CLIENT_POOL=()
  local i
  for ((i = 110; i < 250; i++)); do CLIENT_POOL+=("10.133.146.$i"); done
  # One `ip -batch` instead of 140 processes.
  printf 'addr add %s/24 dev eth0\n' "${CLIENT_POOL[@]}" | nsx client ip -batch -
  CLIENT_NEXT=0
  local n
  for n in "${RS_NAMES[@]}"; do pin_ns "$n" 1; done
}

# client_src: a client address not used before in this run (wraps after
# 140); routes the VIP and the real servers' network from it, so wrk and
# sockperf (which cannot bind) use it. Sets SRC.
client_src() {
  SRC=${CLIENT_POOL[$((CLIENT_NEXT % ${#CLIENT_POOL[@]}))]}
  CLIENT_NEXT=$((CLIENT_NEXT + 1))
  nsx client ip route replace "$VIP4/32" dev eth0 src "$SRC"
  nsx client ip route replace 192.168.79.0/24 via "$DOUT4" src "$SRC"
}

# ---------------------------------------------------------------- modes

# Which address a client dials in each mode.
mode_target() { if [ "$1" = direct ]; then echo "${RS4[0]}"; else echo "$VIP4"; fi; }

# mode_up MODE SERVICES: put MODE in place on the director for SERVICES,
# a list of "proto:port" (tcp:80 udp:11111 …). Modes (also the case
# names): direct uvsd-xdp-nat uvsd-xdp-dr xsk-bare-nat xsk-bare-dr
# uvsd-tun-nat tun-bare-nat nft-dnat haproxy nginx-stream (the proxies:
# tcp only; tun-bare-nat and xsk-bare-nat: the first service's port only;
# the bare ones need BENCH_TOOLS to hold tunloop and xskfwd).
mode_up() {
  local mode=$1 services=$2 s proto port flag
  case $mode in
    direct) ;;
    uvsd-xdp-nat | uvsd-xdp-dr | uvsd-tun-nat)
      local backend=afxdp
      [ "$mode" = uvsd-tun-nat ] && backend=tun
      # AF_XDP: the VIP on eth0 (the kernel's ARP answers, the XDP program
      # takes its traffic); TUN steers by routes, uvsd answers ARP.
      [ "$backend" = afxdp ] && nsx director ip addr add "$VIP4/32" dev eth0
      uvsd_start "$backend" ${UVSD_CONFIG:+--config "$UVSD_CONFIG"}
      taskset -a -p -c 1 "$UVSD_PID" >/dev/null
      flag=-m
      if [ "$mode" = uvsd-xdp-dr ]; then
        flag=-g
        # DR replies: real server → router → client, not via the director.
        dr_replies_via gw
        GW_RX0=$(gw_rx)
      fi
      for s in $services; do
        proto=${s%%:*} port=${s##*:}
        local p=-t
        [ "$proto" = udp ] && p=-u
        uvsadm -A "$p" "$VIP4:$port" -s rr
        local rs
        for rs in "${RS4[@]:0:${#RS_NAMES[@]}}"; do uvsadm -a "$p" "$VIP4:$port" -r "$rs:$port" "$flag"; done
      done
      ;;
    xsk-bare-dr | xsk-bare-nat)
      # The AF_XDP path's ceiling: bench/tools/xskfwd, the copy-mode RX
      # and TX uvsd does without the engine, steered as uvsd is (the VIP
      # on eth0, the kernel answers ARP; IPv4 TCP and UDP into the
      # sockets). DR: the destination MAC rewritten (a real server per
      # flow, by hash), out of eth1. NAT: a stateless NAT (the flow's
      # server by hash; replies from the servers' port get the VIP back).
      nsx director ip addr add "$VIP4/32" dev eth0
      local n args=() dsts=""
      if [ "$mode" = xsk-bare-dr ]; then
        dr_replies_via gw
        GW_RX0=$(gw_rx)
        for n in "${RS_NAMES[@]}"; do dsts+="${dsts:+,}$(nsx "$n" cat /sys/class/net/eth0/address)"; done
        args=(eth0 "eth1=$dsts")
      else
        port=${services%% *}
        port=${port##*:}
        local i=0
        for n in "${RS_NAMES[@]}"; do
          dsts+="${dsts:+,}${RS4[$i]}@$(nsx "$n" cat /sys/class/net/eth0/address)"
          i=$((i + 1))
        done
        args=(--nat "$VIP4" "$port" "eth0=$(nsx client cat /sys/class/net/eth0/address)" "eth1=$dsts")
      fi
      xskfwd_start "${args[@]}" # bench/lib/common.sh
      PROXY_PID=$XSKFWD_PID
      ;;
    tun-bare-nat)
      # The TUN backend's ceiling: bench/tools/tunloop as a stateless NAT
      # (flow hash → real server; replies from the servers' port get the
      # VIP back), steered as uvsd's TUN backend steers: a route sends
      # the VIP into the device, a policy rule per real server the
      # replies; proxy ARP answers for the VIP (uvsd answers it itself).
      port=${services%% *}
      port=${port##*:}
      ip netns exec "$(ns director)" taskset -c 1 "$BENCH_TOOLS/tunloop" bt0 "$VIP4" \
        "$(IFS=,; echo "${RS4[*]:0:${#RS_NAMES[@]}}")" "$port" >"$LAB_TMP/tunloop.out" 2>&1 &
      PROXY_PID=$!
      LAB_PIDS+=("$PROXY_PID")
      wait_until 10 "the bare TUN loop's device" nsx director ip link show bt0 up
      nsx director sysctl -qw net.ipv4.conf.bt0.rp_filter=0 net.ipv4.conf.eth0.proxy_arp=1 \
        net.ipv4.neigh.eth0.proxy_delay=0
      nsx director ip route add "$VIP4/32" dev bt0
      nsx director ip route add default dev bt0 table 7799
      local rs
      for rs in "${RS4[@]:0:${#RS_NAMES[@]}}"; do
        nsx director ip rule add from "$rs" sport "$port" lookup 7799 pref 7799
      done
      ;;
    nft-dnat)
      nsx director ip addr add "$VIP4/32" dev eth0
      local rules="" map="" i=0 rs
      for rs in "${RS4[@]:0:${#RS_NAMES[@]}}"; do
        map+="${map:+, }$i : $rs"
        i=$((i + 1))
      done
      for s in $services; do
        proto=${s%%:*} port=${s##*:}
        rules+="    ip daddr $VIP4 $proto dport $port dnat to numgen inc mod $i map { $map }
"
      done
      nsx director nft -f - <<NFT
table ip uvsbench {
  chain pre {
    type nat hook prerouting priority dstnat;
$rules  }
}
NFT
      ;;
    haproxy)
      nsx director ip addr add "$VIP4/32" dev eth0
      local cfg="$LAB_TMP/haproxy.cfg" rs i=1
      {
        printf 'global\n  maxconn 8000\n  nbthread 1\n'
        printf 'defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n'
        for s in $services; do
          port=${s##*:}
          printf 'frontend f%s\n  bind %s:%s\n  maxconn 8000\n  default_backend b%s\n' "$port" "$VIP4" "$port" "$port"
          printf 'backend b%s\n  balance roundrobin\n' "$port"
          for rs in "${RS4[@]:0:${#RS_NAMES[@]}}"; do printf '  server rs%s %s:%s\n' $((i++)) "$rs" "$port"; done
        done
      } >"$cfg"
      ip netns exec "$(ns director)" taskset -c 1 haproxy -db -f "$cfg" >>"$LAB_TMP/haproxy.log" 2>&1 &
      PROXY_PID=$!
      LAB_PIDS+=("$PROXY_PID")
      ;;
    nginx-stream)
      nsx director ip addr add "$VIP4/32" dev eth0
      local dir="$LAB_TMP/nginx-stream" rs
      mkdir -p "$dir"
      {
        printf 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n'
        printf 'worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/error.log;\n' "$dir" "$dir"
        printf 'events { worker_connections 8000; }\nstream {\n'
        for s in $services; do
          port=${s##*:}
          printf '  upstream u%s {\n' "$port"
          for rs in "${RS4[@]:0:${#RS_NAMES[@]}}"; do printf '    server %s:%s;\n' "$rs" "$port"; done
          printf '  }\n  server { listen %s:%s; proxy_pass u%s; }\n' "$VIP4" "$port" "$port"
        done
        printf '}\n'
      } >"$dir/nginx.conf"
      ip netns exec "$(ns director)" taskset -c 1 nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" \
        >>"$dir/out.log" 2>&1 &
      PROXY_PID=$!
      LAB_PIDS+=("$PROXY_PID")
      ;;
    *) fail "unknown mode $mode" ;;
  esac
  # The workers of a proxy fork after start: pin them once they exist.
  case $mode in haproxy | nginx-stream) wait_until 10 "$mode to listen" \
    bash -c "ip netns exec $(ns director) ss -Hltn | grep -q '$VIP4:'" ;;
  esac
  [ "$mode" = haproxy ] || [ "$mode" = nginx-stream ] && pin_ns director 1
  return 0
}

# mode_down MODE: undo mode_up.
mode_down() {
  case $1 in
    direct) ;;
    uvsd-xdp-nat | uvsd-xdp-dr | uvsd-tun-nat)
      uvsd_stop
      if [ "$1" = uvsd-xdp-dr ]; then
        dr_replies_via director
        # The replies did take the router (a lab that sent them via the
        # director would still work, and measure something else).
        [ "$(gw_rx)" -gt $((GW_RX0 + 100)) ] || fail "DR replies did not go through the router gw"
      fi
      [ "$1" = uvsd-tun-nat ] || nsx director ip addr del "$VIP4/32" dev eth0
      ;;
    xsk-bare-dr | xsk-bare-nat)
      kill -TERM "$PROXY_PID"
      wait "$PROXY_PID" || fail "xskfwd exited non-zero: $(cat "$LAB_TMP/xskfwd.out")"
      if [ "$1" = xsk-bare-dr ]; then
        dr_replies_via director
        [ "$(gw_rx)" -gt $((GW_RX0 + 100)) ] || fail "DR replies did not go through the router gw"
      fi
      nsx director ip addr del "$VIP4/32" dev eth0
      ;;
    tun-bare-nat)
      kill -TERM "$PROXY_PID"
      wait "$PROXY_PID" || fail "tunloop exited non-zero: $(cat "$LAB_TMP/tunloop.out")"
      # The routes went with the device; the rules and proxy ARP stay.
      local rs
      for rs in "${RS4[@]:0:${#RS_NAMES[@]}}"; do nsx director ip rule del pref 7799; done
      nsx director sysctl -qw net.ipv4.conf.eth0.proxy_arp=0
      ;;
    nft-dnat)
      nsx director nft delete table ip uvsbench
      nsx director ip addr del "$VIP4/32" dev eth0
      ;;
    haproxy | nginx-stream)
      kill -TERM "$PROXY_PID" 2>/dev/null || true
      local deadline=$((SECONDS + 10))
      while kill -0 "$PROXY_PID" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || kill -KILL "$PROXY_PID" 2>/dev/null || true
        sleep 0.05
      done
      wait "$PROXY_PID" 2>/dev/null || true
      # nginx workers outlive a killed master only briefly; none may keep the port.
      wait_until 10 "$1 to release $VIP4" \
        bash -c "! ip netns exec $(ns director) ss -Hltn | grep -q '$VIP4:'"
      nsx director ip addr del "$VIP4/32" dev eth0
      ;;
  esac
}

# dr_replies_via gw|director: the real servers' route to the clients'
# network (the VIP's /24): through the router namespace (DR) or back to
# the default, the director.
dr_replies_via() {
  local n
  for n in "${RS_NAMES[@]}"; do
    if [ "$1" = gw ]; then
      nsx "$n" ip route replace "${VIP4%.*}.0/24" via "$GW_IN4"
    else
      nsx "$n" ip route del "${VIP4%.*}.0/24" via "$GW_IN4" 2>/dev/null || true
    fi
  done
}

# gw_rx: packets the router received from the servers' side.
gw_rx() { nsx gw cat /sys/class/net/eth1/statistics/rx_packets; }

# mode_label MODE: the row name in the tables.
mode_label() {
  case $1 in
    direct) echo "direct to a real server" ;;
    uvsd-xdp-nat) echo "uvsd AF_XDP, NAT" ;;
    uvsd-xdp-dr) echo "uvsd AF_XDP, DR" ;;
    uvsd-tun-nat) echo "uvsd TUN, NAT" ;;
    tun-bare-nat) echo "bare TUN NAT loop" ;;
    xsk-bare-dr) echo "bare AF_XDP DR forwarder" ;;
    xsk-bare-nat) echo "bare AF_XDP NAT forwarder" ;;
    nft-dnat) echo "nftables DNAT numgen" ;;
    haproxy) echo "HAProxy mode tcp" ;;
    nginx-stream) echo "nginx stream" ;;
  esac
}

# ---------------------------------------------------------------- uvsd stats

# engine_stats [FIELD]: uvsd's engine counters (control protocol
# GetEngineStats) as JSON, or one field of it (drops.NAME for a drop reason).
engine_stats() {
  nsx director python3 - "$LAB_TMP/uvsd.sock" "${1:-}" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"version":1,"command":{"op":"get_engine_stats"}}\n')
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
ans = json.loads(buf)
if ans.get("kind") != "engine_stats":
    sys.exit("uvsd answered %r" % ans)
stats = ans["stats"]
if sys.argv[2]:
    for part in sys.argv[2].split("."):
        stats = stats[part]
print(json.dumps(stats) if isinstance(stats, dict) else stats)
PY
}
