# shellcheck shell=bash
# tests/lib/tun6.sh — decap-role helpers for the TUN scenario over both IP
# families (sourced after lab.sh).
#
# Owns: one `uvsd --decap` per real server holding several virtual
# addresses and accepting several directors (lab.sh's decap_start takes
# one of each), stopping the roles to read the counters they log at exit,
# and hand-made tunnel packets that the roles must refuse.

DECAP_PIDS=()

# decap_start_multi HOST "VIP..." "DIRECTOR..." [ARGS...]: `uvsd --decap`
# on real server HOST holding every VIP on its TUN device and taking
# tunnels from every DIRECTOR, with ARGS (e.g. --gue-port 6080); waits
# until the device holds them all.
decap_start_multi() {
  local host=$1 vips=$2 directors=$3 args=() a
  shift 3
  args+=("$@")
  for a in $vips; do args+=(--vip "$a"); done
  for a in $directors; do args+=(--director "$a"); done
  ip netns exec "$(ns "$host")" "$UVSD" --decap "${args[@]}" \
    >>"$LAB_TMP/decap-$host.log" 2>&1 &
  local pid=$!
  LAB_PIDS+=("$pid")
  DECAP_PIDS+=("$host:$pid")
  for a in $vips; do
    wait_until 10 "the decap role on $host to hold $a" \
      bash -c "kill -0 $pid && ip netns exec $(ns "$host") ip -o addr show dev uvsdecap0 | grep -qw '$a'"
  done
}

# decap_stop_all: SIGTERM every role decap_start_multi started and wait
# (bounded) for each to log its counters and exit.
decap_stop_all() {
  local e pid
  for e in "${DECAP_PIDS[@]}"; do
    pid=${e#*:}
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
      [ "$SECONDS" -lt "$deadline" ] || fail "the decap role ${e%%:*} ignored SIGTERM for 10s"
      sleep 0.05
    done
    wait "$pid" 2>/dev/null || true
  done
}

# decap_counter HOST WHAT: a number from the role's exit line, WHAT being
# one of: delivered, foreign, not_virtual, malformed, truncated, unknown,
# refused.
decap_counter() {
  local line
  line=$(grep 'decap role stopped:' "$LAB_TMP/decap-$1.log" | tail -n 1)
  [ -n "$line" ] || fail "the decap role on $1 logged no counters at exit"
  case $2 in
    delivered) sed -E 's/.*stopped: ([0-9]+) packets delivered.*/\1/' <<<"$line" ;;
    foreign) sed -E 's/.* ([0-9]+) from other sources.*/\1/' <<<"$line" ;;
    not_virtual) sed -E 's/.* ([0-9]+) to other addresses.*/\1/' <<<"$line" ;;
    malformed) sed -E 's/.* ([0-9]+) malformed.*/\1/' <<<"$line" ;;
    truncated) sed -E 's/.* ([0-9]+) truncated.*/\1/' <<<"$line" ;;
    unknown) sed -E 's/.* ([0-9]+) of unknown protocol.*/\1/' <<<"$line" ;;
    refused) sed -E 's/.* ([0-9]+) refused by the device.*/\1/' <<<"$line" ;;
    *) fail "decap_counter: no counter '$2'" ;;
  esac
}

# decap_wait_drops HOST FOREIGN NOT_VIRTUAL: wait (bounded) until the
# role on HOST logs drop totals of FOREIGN tunnels from other sources and
# NOT_VIRTUAL to other addresses (it reports changes at most every 5 s).
decap_wait_drops() {
  wait_until 15 "the decap role on $1 to report $2 foreign and $3 not-virtual drops" \
    grep -q "decap role drops so far: $2 from other sources, $3 to other addresses" \
    "$LAB_TMP/decap-$1.log"
}

# send_tunnel6 FROM_NS FROM_ADDR TO_ADDR INNER_DST [NEXT_HEADER]: one
# hand-made tunnel packet over IPv6 from FROM_ADDR in namespace FROM_NS to
# real server TO_ADDR (the kernel writes the outer header): with next
# header 41 an IPv6/UDP packet to INNER_DST port 9, with 4 an IPv4/UDP one.
send_tunnel6() {
  local from=$1 src=$2 to=$3 dst=$4 nh=${5:-41}
  nsx "$from" python3 - "$src" "$to" "$dst" "$nh" <<'EOF'
import ipaddress, socket, struct, sys
src, to, dst, nh = sys.argv[1], sys.argv[2], ipaddress.ip_address(sys.argv[3]), int(sys.argv[4])
udp = struct.pack('!HHHH', 4000, 9, 12, 0) + b'uvs!'
if nh == 41:
    isrc = ipaddress.ip_address('fd79::77')
    inner = struct.pack('!IHBB', 6 << 28, len(udp), 17, 64) + isrc.packed + dst.packed + udp
else:
    isrc = ipaddress.ip_address('192.0.2.77')
    inner = struct.pack('!BBHHHBBH', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0) + isrc.packed + dst.packed + udp
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, nh)
s.bind((src, 0))
s.sendto(inner, (to, 0))
EOF
}

# client_settled VIP: wait (bounded) until the client holds no TCP
# connection to VIP that may still send (only TIME-WAIT ones, or none),
# so a stats window opened next sees only its own requests' packets.
client_settled() {
  local dst=$1
  case $dst in *:*) dst="[$dst]" ;; esac
  nsx client ss -Htan dst "$dst" >/dev/null || fail "ss cannot filter on $dst"
  wait_until 10 "the client's connections to $1 to close" \
    bash -c "! ip netns exec $(ns client) ss -Htan dst '$dst' | grep -v '^TIME-WAIT'"
}
