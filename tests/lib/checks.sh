# shellcheck shell=bash
# tests/lib/checks.sh — the checks every forwarding scenario runs against a
# configured director (sourced after lab.sh).
#
# Owns: rr order, wrr split, persistence with a netmask, weight 0 with an
# open connection, deleting a server, a 1 MB download's checksum, stats
# counters against what the client sent, the listing shapes, -S|-C|-R, and
# the director's own ping/ARP while the engine runs, and SIP persistence
# (--pe sip: one Call-ID from two client addresses, one real server).
#
# Inputs (set by the scenario): VIP, SVC (uvsadm's -t argument), C1 and C2
# (two client source addresses nsx one /24 or /64), RSA (the -r arguments,
# nsx the order added), FWD (-g | -m | -i | --fullnat), MASK (-M value),
# DIP_CLIENT (an address of the director the client reaches directly).

# server_of HEADERS_FILE: the X-Server a reply named.
server_of() { tr -d '\r' <"$1" | awk 'tolower($1)=="x-server:"{print $2}' | tail -n 1; }

# The names answering N requests, space separated.
answers() { names "$C1" "$(url "$VIP")" "$1" | tr '\n' ' '; }

check_rr() {
  local got
  got=$(answers 6)
  # rr: three distinct servers, then the same three again nsx the same order.
  read -r a b c d e f <<<"$got"
  [ "$a" != "$b" ] && [ "$b" != "$c" ] && [ "$a" != "$c" ] &&
    [ "$a $b $c" = "$d $e $f" ] || fail "rr order: got $got"
  pass "rr: $got"
}

check_wrr() {
  uvsadm -E -t "$SVC" -s wrr
  uvsadm -e -t "$SVC" -r "${RSA[0]}" "$FWD" -w 3
  local got n1 n2 n3
  got=$(answers 10)
  n1=$(grep -o rs1 <<<"$got" | wc -l)
  n2=$(grep -o rs2 <<<"$got" | wc -l)
  n3=$(grep -o rs3 <<<"$got" | wc -l)
  # weights 3:1:1 over two full wrr cycles.
  [ "$n1 $n2 $n3" = "6 2 2" ] || fail "wrr 3:1:1 split: got rs1=$n1 rs2=$n2 rs3=$n3 ($got)"
  uvsadm -e -t "$SVC" -r "${RSA[0]}" "$FWD" -w 1
  uvsadm -E -t "$SVC" -s rr
  pass "wrr 3:1:1 gives 6/2/2 of 10"
}

check_persistence() {
  uvsadm -E -t "$SVC" -s rr -p 60 -M "$MASK"
  local got first
  got=$(names "$C1" "$(url "$VIP")" 4; names "$C2" "$(url "$VIP")" 4)
  first=$(head -n 1 <<<"$got")
  [ "$(sort -u <<<"$got" | wc -l)" -eq 1 ] ||
    fail "-p 60 -M $MASK: two clients nsx one netmask spread over $(sort -u <<<"$got" | tr '\n' ' ')"
  uvsadm -E -t "$SVC" -s rr
  pass "-p -M $MASK pins both client addresses to $first"
}

# slow_download PATH RATE TAG: a rate-limited curl nsx the background;
# sets SLOW_PID, writes headers/body under $LAB_TMP/TAG.*; waits for the
# headers and sets SLOW_SERVER.
slow_download() {
  local path=$1 rate=$2 tag=$3
  rm -f "$LAB_TMP/$tag.hdr" "$LAB_TMP/$tag.body" "$LAB_TMP/$tag.err"
  ip netns exec "$(ns client)" curl -fsS --max-time "${SLOW_MAX:-20}" --limit-rate "$rate" --interface "$C1" \
    -D "$LAB_TMP/$tag.hdr" -o "$LAB_TMP/$tag.body" "$(url "$VIP" 80 "$path")" \
    2>"$LAB_TMP/$tag.err" &
  SLOW_PID=$!
  wait_until 10 "headers of the slow download" grep -qi '^x-server' "$LAB_TMP/$tag.hdr"
  SLOW_SERVER=$(server_of "$LAB_TMP/$tag.hdr")
  [ -n "$SLOW_SERVER" ] || fail "slow download named no server"
}

# rs_arg NAME: the -r argument of real server NAME.
rs_arg() { echo "${RSA[$((${1#rs} - 1))]}"; }

check_weight0() {
  slow_download /big 250k slow0
  local s=$SLOW_SERVER
  uvsadm -e -t "$SVC" -r "$(rs_arg "$s")" "$FWD" -w 0
  local got
  got=$(answers 6)
  grep -qw "$s" <<<"$got" && fail "weight 0 on $s: new requests still reach it ($got)"
  wait "$SLOW_PID" || fail "the open download from $s failed after weight 0: $(cat "$LAB_TMP/slow0.err")"
  [ "$(sha256sum <"$LAB_TMP/slow0.body" | cut -d' ' -f1)" = "$(sha_of "$s" big)" ] ||
    fail "the open download from $s arrived corrupted after weight 0"
  uvsadm -e -t "$SVC" -r "$(rs_arg "$s")" "$FWD" -w 1
  pass "weight 0 on $s: new requests avoid it ($got), the open 1 MB download completes intact"
}

# body_size TAG: bytes of the slow download TAG so far.
body_size() { stat -c %s "$LAB_TMP/$1.body" 2>/dev/null || echo 0; }

check_delete() {
  SLOW_MAX=15 slow_download /huge 1M slowd
  local s=$SLOW_SERVER
  wait_until 5 "the download to be under way" bash -c "[ \$(stat -c %s $LAB_TMP/slowd.body 2>/dev/null || echo 0) -gt 0 ]"
  uvsadm -d -t "$SVC" -r "$(rs_arg "$s")"
  local at_delete
  at_delete=$(body_size slowd)
  # The download must stall (no byte for a whole second) or fail, well
  # before it could finish: at 1 MB/s the 16 MB take 16 s.
  local prev=-1 cur deadline=$((SECONDS + 8)) stalled=0
  while [ "$SECONDS" -lt "$deadline" ]; do
    cur=$(body_size slowd)
    if ! kill -0 "$SLOW_PID" 2>/dev/null || [ "$cur" = "$prev" ]; then
      stalled=1
      break
    fi
    prev=$cur
    sleep 1
  done
  kill "$SLOW_PID" 2>/dev/null || true
  wait "$SLOW_PID" 2>/dev/null || true
  cur=$(body_size slowd)
  [ "$stalled" = 1 ] && [ "$cur" -lt 16777216 ] ||
    fail "deleting $s did not end its connection: $at_delete bytes at delete, $cur later, still flowing"
  local got
  got=$(answers 4)
  grep -qw "$s" <<<"$got" && fail "deleted $s still answers ($got)"
  uvsadm -a -t "$SVC" -r "$(rs_arg "$s")" "$FWD" -w 1
  pass "deleting $s ends its open download ($at_delete bytes at delete, $cur in all); new requests avoid it"
}

check_download() {
  local i s sum
  for i in 1 2 3; do
    nsx client curl -fsS --max-time 10 --interface "$C1" -D "$LAB_TMP/dl.hdr" \
      -o "$LAB_TMP/dl.body" "$(url "$VIP" 80 /big)" || fail "1 MB download $i failed"
    s=$(server_of "$LAB_TMP/dl.hdr")
    sum=$(sha256sum <"$LAB_TMP/dl.body" | cut -d' ' -f1)
    [ "$sum" = "$(sha_of "$s" big)" ] || fail "1 MB download from $s: sha256 differs"
  done
  pass "1 MB downloads through the VIP arrive intact (sha256) from three servers"
}

# tx_packets NS IF: packets IF has sent.
tx_packets() { nsx "$1" cat "/sys/class/net/$2/statistics/tx_packets"; }

# svc_stats: the service line of `uvsadm -Ln --stats --exact` as
# "conns inpkts outpkts inbytes outbytes".
svc_stats() { uvsadm -Ln --stats --exact | awk '$1=="TCP"{print $3, $4, $5, $6, $7; exit}'; }

# The counters must equal what the client did, so nothing else may flow
# through the service in the window: check_all runs this before
# check_weight0 and check_delete. (The download check_delete aborts
# leaves the client's orphaned socket retransmitting its FIN; re-adding
# the server revives its connections from the trash, as IPVS does, and
# that flow's last packets — the FIN and the client's RSTs to the real
# server's retransmissions — are counted like any other: that was the
# "InPkts 111 but the client sent 54" failure.) The client's counter is
# read before -Z and after the director's, so the director's window lies
# inside the client's: InPkts can only fall short of it by the odd
# ARP/NDP, never exceed it.
check_stats() {
  local before after sent n=9
  before=$(tx_packets client eth0)
  uvsadm -Z
  names "$C1" "$(url "$VIP")" $n >/dev/null
  local line conns inpkts
  wait_until 5 "stats to count $n connections" \
    bash -c "[ \"\$(UVS_SOCKET=$LAB_TMP/uvsd.sock ip netns exec $(ns director) $UVSADM -Ln --stats --exact | awk '\$1==\"TCP\"{print \$3; exit}')\" = $n ]"
  line=$(svc_stats)
  after=$(tx_packets client eth0)
  sent=$((after - before))
  read -r conns inpkts _ <<<"$line"
  [ "$inpkts" -le "$sent" ] && [ "$inpkts" -ge $((sent - 4)) ] || {
    uvsadm -Ln --stats --exact >&2
    uvsadm -Lnc >&2
    fail "stats: InPkts $inpkts but the client sent $sent packets"
  }
  # Per server: 3 connections each (rr).
  local per
  per=$(uvsadm -Ln --stats --exact | awk '$1=="->" && $2 ~ /[0-9]/ {print $3}' | sort -u | tr '\n' ' ')
  [ "$per" = "3 " ] || fail "stats: per-server Conns $per, expected 3 each"
  pass "stats: Conns $conns = requests, InPkts $inpkts ≈ client sent $sent, 3 per server"
}

check_listings() {
  local l
  l=$(uvsadm -Ln)
  grep -q '^IP Virtual Server version 1.2.1 (size=4096)$' <<<"$l" || fail "-Ln header: $l"
  grep -q '^Prot LocalAddress:Port Scheduler Flags$' <<<"$l" || fail "-Ln columns: $l"
  grep -q '^  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn$' <<<"$l" ||
    fail "-Ln server columns: $l"
  [ "$(grep -c '^  -> ' <<<"$l")" -eq 4 ] || fail "-Ln lists $(grep -c '^  -> ' <<<"$l") lines for 3 servers"
  l=$(uvsadm -Ln --stats)
  grep -q '^Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes$' <<<"$l" ||
    fail "--stats columns: $l"
  # --rate with live numbers: traffic for two estimator ticks.
  nsx client wrk -t1 -c4 -d5s -s "$E2E_ROOT/tests/lib/paced.lua" "$(url "$VIP")" \
    >"$LAB_TMP/wrk-rate.out" 2>&1 &
  local wpid=$!
  wait_until 12 "a non-zero InPPS in --rate" \
    bash -c "UVS_SOCKET=$LAB_TMP/uvsd.sock ip netns exec $(ns director) $UVSADM -Ln --rate | awk '\$1==\"TCP\" && \$4>0 {f=1} END{exit !f}'"
  l=$(uvsadm -Ln --rate)
  grep -q '^Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS$' <<<"$l" ||
    fail "--rate columns: $l"
  wait "$wpid" || fail "wrk failed: $(cat "$LAB_TMP/wrk-rate.out")"
  ! grep -qE 'Socket errors|Non-2xx' "$LAB_TMP/wrk-rate.out" || fail "wrk errors: $(cat "$LAB_TMP/wrk-rate.out")"
  pass "-Ln, --stats, --rate show ipvsadm's shapes; --rate live: $(awk '$1=="TCP"' <<<"$l" | tr -s ' ')"
}

check_save_restore() {
  uvsadm -E -t "$SVC" -s wrr -p 120 -M "$MASK"
  uvsadm -e -t "$SVC" -r "${RSA[1]}" "$FWD" -w 5
  uvsadm -A -u "$SVC" -s sh
  uvsadm -a -u "$SVC" -r "${RSA[0]}" "$FWD" -w 2
  local a b
  a=$(uvsadm -Sn)
  uvsadm -C
  [ -z "$(uvsadm -Sn)" ] || fail "-C left rules"
  uvsadm -R <<<"$a" || fail "-R refused -S's output: $a"
  b=$(uvsadm -Sn)
  [ "$a" = "$b" ] || fail "-S | -C | -R changed the rules: before <$a> after <$b>"
  uvsadm -D -u "$SVC"
  uvsadm -E -t "$SVC" -s rr
  uvsadm -e -t "$SVC" -r "${RSA[1]}" "$FWD" -w 1
  pass "-S | -C | -R round-trips ($(wc -l <<<"$a") rules)"
}

check_kernel_path() {
  nsx client ip neigh flush all
  nsx client ping -c 2 -W 2 "$DIP_CLIENT" >/dev/null || fail "ping to the director's $DIP_CLIENT failed"
  nsx client ip neigh show "$DIP_CLIENT" | grep -q lladdr ||
    fail "no ARP/NDP entry for the director's $DIP_CLIENT"
  pass "ping and ARP/NDP to the director ($DIP_CLIENT) work beside the engine"
}

# ---------------------------------------------------------------- SIP (--pe sip)

# sip_servers: a UDP responder on :5060 in each real server, answering
# every datagram with its name (started once per run; teardown kills it).
SIP_STARTED=0
sip_servers() {
  [ "$SIP_STARTED" = 1 ] && return
  local n
  for n in "${RS_NAMES[@]}"; do
    nsx "$n" python3 - "$n" "$LAB_TMP/sip-$n.ready" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5060))
open(sys.argv[2], "w").close()
while True:
    data, peer = s.recvfrom(4096)
    s.sendto(sys.argv[1].encode(), peer)
PY
    LAB_PIDS+=("$!")
  done
  for n in "${RS_NAMES[@]}"; do
    wait_until 5 "the SIP responder on $n" test -e "$LAB_TMP/sip-$n.ready"
  done
  SIP_STARTED=1
}

# sip_calls SRC:SPORT:CALLID...: one SIP INVITE per argument from SRC:SPORT
# to $VIP:5060; prints the real server that answered each (bounded retries).
sip_calls() {
  nsx client python3 - "$VIP" "$@" <<'PY'
import socket, sys
vip = sys.argv[1]
for arg in sys.argv[2:]:
    src, sport, call = arg.split(":")
    msg = ("INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%s\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"
           "Content-Length: 0\r\n\r\n" % (src, sport, call)).encode()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, int(sport)))
    s.settimeout(1)
    for attempt in range(3):
        s.sendto(msg, (vip, 5060))
        try:
            print(s.recv(64).decode())
            break
        except socket.timeout:
            continue
    else:
        sys.exit("no answer to Call-ID %s from %s:%s" % (call, src, sport))
    s.close()
PY
}

# check_sip: `-p -M 0.0.0.0 --pe sip` on a UDP service (IPv4): one Call-ID
# from two client addresses lands on one real server, other Call-IDs are
# scheduled afresh (rr), and -Ln, -Lnc --persistent-conn and -S show it.
check_sip() {
  sip_servers
  local svc="$VIP:5060" i got a b c
  uvsadm -A -u "$svc" -s rr -p 60 -M 0.0.0.0 --pe sip
  for i in 0 1 2; do uvsadm -a -u "$svc" -r "${RS4[$i]}:5060" -m; done
  got=$(sip_calls "$C1:40001:call-a@uvs" "$C2:40002:call-a@uvs" "$C1:40003:call-a@uvs" \
    "$C2:40004:call-b" "$C1:40005:call-c") || fail "SIP datagrams got no answer: $got"
  read -r a a2 a3 b c <<<"$(tr '\n' ' ' <<<"$got")"
  [ "$a" = "$a2" ] && [ "$a" = "$a3" ] ||
    fail "--pe sip: one Call-ID from $C1 and $C2 reached $a $a2 $a3"
  [ "$(printf '%s\n' "$a" "$b" "$c" | sort -u | wc -l)" -eq 3 ] ||
    fail "--pe sip: three Call-IDs should use three real servers under rr, got $a $b $c"
  local l
  l=$(uvsadm -Ln)
  grep -q "^UDP  $svc rr persistent 60 mask 0.0.0.0 pe sip$" <<<"$l" || fail "-Ln service line: $l"
  l=$(uvsadm -Lnc --persistent-conn)
  grep -qE "^UDP +[0-9:]+ +(NONE|ASSURED) +0\.0\.0\.0:0 +$svc +[0-9.]+:5060 +sip +call-a@uvs$" <<<"$l" ||
    fail "-Lnc --persistent-conn has no sip template for call-a@uvs: $l"
  [ "$(grep -c ' sip ' <<<"$l")" -eq 3 ] || fail "-Lnc --persistent-conn: expected 3 sip templates: $l"
  grep -qx -- "-A -u $svc -s rr -p 60 -M 0.0.0.0 --pe sip" <<<"$(uvsadm -Sn)" ||
    fail "-S does not save --pe sip: $(uvsadm -Sn)"
  uvsadm -D -u "$svc"
  pass "--pe sip: call-a from $C1 and $C2 -> $a, call-b -> $b, call-c -> $c; listed and saved"
}

# check_all: every check, nsx an order where each leaves the service as
# the seed script made it (rr, weight 1 each).
check_all() {
  check_kernel_path
  check_rr
  check_wrr
  check_rr
  check_persistence
  check_download
  check_stats
  check_weight0
  check_delete
  check_listings
  check_save_restore
  check_rr
}
