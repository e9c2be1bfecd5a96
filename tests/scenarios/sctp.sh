#!/usr/bin/env bash
# SCTP virtual services (--sctp-service) end to end on backend $1: NAT
# (two networks, real servers on port 3869 behind VIP:3868, so the port
# rewrite needs a fresh CRC32c), DR (one LAN, VIP on the real servers'
# lo), then full NAT (the NAT lab, real servers without a route to the
# client); IPv4, rr over two real servers.
#
# The lab kernel has no SCTP (CONFIG_IP_SCTP unset), so the client and the
# real servers speak SCTP over raw IP sockets (tests/lib/sctp_peer.py):
# INIT, INIT ACK, COOKIE ECHO, COOKIE ACK, DATA echoed by the real server,
# SHUTDOWN, SHUTDOWN ACK, SHUTDOWN COMPLETE. Real deployments would run
# kernel SCTP on the real servers. Checked: associations alternate over the
# real servers (rr), each real server saw the addresses and ports the
# method promises and only valid CRC32c, `uvsadm -Lnc` shows the kernel's
# SCTP state names, ActiveConn and the stats count, -S/-C/-R keep the
# service.
set -o errexit -o nounset -o pipefail
BACKEND=${1:?usage: sctp.sh afxdp|tun}
SCENARIO="sctp/$BACKEND"
here=$(cd "$(dirname "$0")" && pwd)
PEER="$here/../lib/sctp_peer.py"
source "$here/../lib/lab.sh"
VIP_LOCAL=$(vip_local_for "$BACKEND")
PORT=3868
COUNT=4

# responders [EXTRA_ADDR]: the SCTP responder on each real server, sending
# from its own address (and EXTRA_ADDR, the VIP for DR); waits until all
# listen.
responders() {
  local i n
  for i in "${!RS_NAMES[@]}"; do
    n=${RS_NAMES[$i]}
    local binds=(--bind "${RS4[$i]}")
    [ -z "${1:-}" ] || binds+=(--bind "$1")
    ip netns exec "$(ns "$n")" python3 "$PEER" respond --name "$n" "${binds[@]}" \
      --log "$LAB_TMP/sctp-$n.log" --seconds 90 >>"$LAB_TMP/sctp-$n.out" 2>&1 &
    LAB_PIDS+=($!)
  done
  for n in "${RS_NAMES[@]}"; do
    wait_until 10 "the SCTP responder on $n" test -f "$LAB_TMP/sctp-$n.log.ready"
  done
}

# check_rr_assocs FILE: COUNT associations, alternating over two servers.
check_rr_assocs() {
  local got
  got=$(awk '$1=="assoc"{print $3}' "$1" | tr '\n' ' ')
  read -r a b c d <<<"$got"
  [ -n "${d:-}" ] && [ "$a" != "$b" ] && [ "$a $b" = "$c $d" ] ||
    fail "rr over two real servers: associations went to: $got"
  pass "rr: $COUNT associations went to $got"
}

# check_responder_logs DST [SRC_ADDR]: every packet each real server saw
# came from SRC_ADDR (default the client), to DST ("RS" stands for the
# server's address), with a valid CRC32c; each saw INITs from COUNT/2
# source ports.
check_responder_logs() {
  local want_dst=$1 src=${2:-$CLIENT4} i n log
  for i in "${!RS_NAMES[@]}"; do
    n=${RS_NAMES[$i]}
    log="$LAB_TMP/sctp-$n.log"
    local dst=${want_dst//RS/${RS4[$i]}}
    [ -s "$log" ] || fail "$n saw no SCTP packet"
    grep -v "crc=ok" "$log" >&2 && fail "$n received SCTP packets with a bad CRC32c"
    grep -v "^src=$src:[0-9]* dst=$dst " "$log" >&2 &&
      fail "$n saw packets not from $src to $dst"
    # INITs from how many client ports (a retransmitted INIT counts once).
    local inits
    inits=$(awk '$3=="chunk=1" {print $1}' "$log" | sort -u | wc -l)
    [ "$inits" -eq $((COUNT / 2)) ] || fail "$n saw INITs from $inits ports, not $((COUNT / 2))"
  done
  pass "each real server saw $src:port -> ${want_dst//RS/its address} with valid CRC32c, $((COUNT / 2)) associations"
}

# check_states STATE: COUNT SCTP rows of uvsadm -Lnc, all in STATE.
check_states() {
  local rows
  rows=$(uvsadm -Lnc | awk '$1=="SCTP"')
  [ "$(grep -c . <<<"$rows")" -eq "$COUNT" ] && [ -z "$(awk -v s="$1" '$3!=s' <<<"$rows")" ] ||
    fail "uvsadm -Lnc: wanted $COUNT SCTP rows in $1, got:
$(uvsadm -Lnc)"
  pass "uvsadm -Lnc: $COUNT SCTP associations in $1 ($(head -n 1 <<<"$rows"))"
}

# check_stats MIN_IN MIN_OUT: the service's Conns is COUNT and its packet
# counters at least MIN_IN / MIN_OUT.
check_stats() {
  local line conns inpkts outpkts
  line=$(uvsadm -Ln --stats --exact | awk -v s="$VIP4:$PORT" '$1=="SCTP" && $2==s')
  read -r _ _ conns inpkts outpkts _ <<<"$line"
  [ "${conns:-0}" -eq "$COUNT" ] && [ "${inpkts:-0}" -ge "$1" ] && [ "${outpkts:-0}" -ge "$2" ] ||
    fail "stats: wanted Conns $COUNT, InPkts >= $1, OutPkts >= $2, got: $line"
  pass "stats: Conns $conns InPkts $inpkts OutPkts $outpkts"
}

# check_save_restore: -S names the service with --sctp-service and -C|-R
# brings the same listing back.
check_save_restore() {
  local saved before after
  saved=$(uvsadm -S -n)
  grep -q -- "^-A --sctp-service $VIP4:$PORT -s rr" <<<"$saved" || fail "-S: $saved"
  before=$(uvsadm -Ln | grep -v '^IP Virtual')
  uvsadm -C
  uvsadm -R <<<"$saved"
  after=$(uvsadm -Ln | grep -v '^IP Virtual')
  [ "$before" = "$after" ] || fail "-S | -C | -R changed the table:
$before
----
$after"
  pass "-S | -C | -R keeps the SCTP service ($(grep -c . <<<"$saved") rules)"
}

run_nat() (
  SCENARIO="sctp/$BACKEND/nat"
  lab_init
  lab_nat 2
  nsx director sysctl -qw net.ipv4.ip_forward=1
  uvsd_start "$BACKEND"
  uvsadm -A --sctp-service "$VIP4:$PORT" -s rr
  uvsadm -a --sctp-service "$VIP4:$PORT" -r "${RS4[0]}:3869" -m
  uvsadm -a --sctp-service "$VIP4:$PORT" -r "${RS4[1]}:3869" -m
  uvsadm -Ln | grep -q "^SCTP $VIP4:$PORT rr" || fail "listing: $(uvsadm -Ln)"
  pass "uvsadm -Ln lists SCTP $VIP4:$PORT rr"
  responders ""
  nsx client python3 "$PEER" client --vip "$VIP4" --port "$PORT" --count "$COUNT" \
    --first-port 40000 --hold "$LAB_TMP/go" --seconds 30 >"$LAB_TMP/client.out" 2>&1 &
  local client=$!
  LAB_PIDS+=("$client")
  wait_until 20 "$COUNT associations up to their DATA echo" test -f "$LAB_TMP/go.ready"
  check_rr_assocs "$LAB_TMP/client.out"
  check_states ESTABLISHED
  local rs active
  for rs in "${RS4[0]}" "${RS4[1]}"; do
    active=$(uvsadm -Ln | awk -v r="$rs:3869" '$1=="->" && $2==r {print $5 "/" $6}')
    [ "$active" = "$((COUNT / 2))/0" ] || fail "ActiveConn/InActConn of $rs: $active"
  done
  pass "ActiveConn $((COUNT / 2)) per real server while ESTABLISHED"
  touch "$LAB_TMP/go"
  wait "$client" || fail "the SCTP client failed: $(cat "$LAB_TMP/client.out")"
  [ "$(grep -c '^closed' "$LAB_TMP/client.out")" -eq "$COUNT" ] ||
    fail "not every association shut down: $(cat "$LAB_TMP/client.out")"
  check_states CLOSED
  # Per association in: INIT, COOKIE ECHO, DATA, SHUTDOWN, SHUTDOWN
  # COMPLETE; out: INIT ACK, COOKIE ACK, SACK+DATA, SHUTDOWN ACK.
  check_stats $((COUNT * 5)) $((COUNT * 4))
  check_responder_logs "RS:3869"
  check_save_restore
)

run_dr() (
  SCENARIO="sctp/$BACKEND/dr"
  lab_init
  lab_lan 2
  lab_vip_on_lo
  [ "$VIP_LOCAL" = 1 ] && nsx director ip addr replace "$VIP4/32" dev eth0
  uvsd_start "$BACKEND"
  uvsadm -A --sctp-service "$VIP4:$PORT" -s rr
  uvsadm -a --sctp-service "$VIP4:$PORT" -r "${RS4[0]}" -g
  uvsadm -a --sctp-service "$VIP4:$PORT" -r "${RS4[1]}" -g
  responders "$VIP4"
  nsx client python3 "$PEER" client --vip "$VIP4" --port "$PORT" --count "$COUNT" \
    --first-port 41000 --seconds 30 >"$LAB_TMP/client.out" 2>&1 ||
    fail "the SCTP client failed: $(cat "$LAB_TMP/client.out")"
  check_rr_assocs "$LAB_TMP/client.out"
  # The director sees the client's side only (INPUT_ONLY table): its
  # SHUTDOWN COMPLETE closes the association.
  check_states CLOSED
  check_stats $((COUNT * 5)) 0
  check_responder_logs "$VIP4:$PORT"
)

# Full NAT: the real servers have no route to the client; they see the
# director's pool address and a port from its range.
run_fullnat() (
  SCENARIO="sctp/$BACKEND/fullnat"
  lab_init
  lab_nat 2
  local pool=192.168.79.250 n
  [ "$VIP_LOCAL" = 1 ] && lab_addr director eth1 $pool/24
  for n in "${RS_NAMES[@]}"; do nsx "$n" ip route del default; done
  printf '[fullnat]\naddrs = ["%s"]\nport_range = "20000-60000"\n' "$pool" >"$LAB_TMP/uvsd.toml"
  uvsd_start "$BACKEND" --config "$LAB_TMP/uvsd.toml"
  uvsadm -A --sctp-service "$VIP4:$PORT" -s rr
  uvsadm -a --sctp-service "$VIP4:$PORT" -r "${RS4[0]}:3869" --fullnat
  uvsadm -a --sctp-service "$VIP4:$PORT" -r "${RS4[1]}:3869" --fullnat
  responders ""
  nsx client python3 "$PEER" client --vip "$VIP4" --port "$PORT" --count "$COUNT" \
    --first-port 42000 --seconds 30 >"$LAB_TMP/client.out" 2>&1 ||
    fail "the SCTP client failed: $(cat "$LAB_TMP/client.out")"
  check_rr_assocs "$LAB_TMP/client.out"
  check_states CLOSED
  check_stats $((COUNT * 5)) $((COUNT * 4))
  check_responder_logs "RS:3869" "$pool"
)

run_nat
run_dr
run_fullnat
