#!/usr/bin/env bash
# Robustness on backend $1, in the seed's DR lab: a second uvsd on the same
# interface is refused with a clear message; a non-root peer on the control
# socket is refused even when the socket file is opened up (peer
# credentials); malformed control messages get error replies and the daemon
# keeps serving; kill -9 leaves no XDP program, device, route or rule
# behind, and a restart works with no manual cleanup.
set -o errexit -o nounset -o pipefail
BACKEND=${1:?usage: robust.sh afxdp|tun}
SCENARIO="robust/$BACKEND"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
VIP_LOCAL=$(vip_local_for "$BACKEND")

lab_init
lab_lan 2
lab_vip_on_lo
# The VIP as the seed's script puts it, before the baseline below.
[ "$VIP_LOCAL" = 1 ] && nsx director ip addr add "$VIP4/32" dev eth0

# net_state: what uvsd may change in the director's namespace.
net_state() {
  {
    nsx director ip -o link show | sed -E 's/^[0-9]+: //; s/ qlen [0-9]+//' | awk '{print $1, $2}'
    nsx director ip -d link show | grep -ci 'xdp' | sed 's/^/xdp lines: /'
    nsx director ip rule show
    nsx director ip -6 rule show
    nsx director ip -4 route show table all
    # (anycast routes follow the forwarding sysctl, not uvsd: full_state)
    nsx director ip -6 route show table all | grep -v '^multicast\|^ff00::/8\|^anycast'
  } | sort
}

# full_state: net_state plus what uvsd sets up and undoes itself (proxy
# ARP/NDP entries, addresses, the sysctls it may change); a restart undoes
# what a kill -9 left of these, and a clean stop everything.
full_state() {
  net_state
  {
    nsx director ip neigh show proxy
    nsx director ip -6 neigh show proxy
    nsx director ip -6 route show table local | grep '^anycast'
    nsx director ip -o addr show | awk '{print $2, $3, $4}'
    for k in net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.rp_filter \
      net.ipv4.conf.eth0.accept_local net.ipv6.conf.eth0.proxy_ndp; do
      nsx director sysctl -n "$k" | sed "s/^/$k = /"
    done
  } | sort
}

configure() {
  run_seed_script "$here/../seed/lvsDR_director_setup.sh" VIP="$VIP4" \
    RS1="${RS4[0]}" RS2="${RS4[1]}" RS3=
  wait_until 10 "an answer through the VIP" get "$CLIENT4" "$(url "$VIP4")"
}

# The seed's script sets these two; the baselines have them as it leaves them.
nsx director sysctl -qw net.ipv4.ip_forward=0 net.ipv4.conf.all.send_redirects=1
baseline=$(net_state)
full_baseline=$(full_state)
uvsd_start "$BACKEND"
configure
pass "uvsd serves through the VIP"

# --- a second instance on the same interface
# (uvsd attaches on demand; this one is told the interface up front.)
printf '[engine]\ninterfaces = ["eth0"]\n' >"$LAB_TMP/second.toml"
set +o errexit
timeout 20 ip netns exec "$(ns director)" "$UVSD" --backend "$BACKEND" \
  --config "$LAB_TMP/second.toml" --socket "$LAB_TMP/second.sock" >"$LAB_TMP/second.out" 2>&1
rc=$?
set -o errexit
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "a second uvsd on eth0 was not refused (rc=$rc): $(cat "$LAB_TMP/second.out")"
grep -q 'eth0' "$LAB_TMP/second.out" ||
  fail "the second uvsd's refusal does not name the interface: $(cat "$LAB_TMP/second.out")"
get "$CLIENT4" "$(url "$VIP4")" >/dev/null || fail "the first uvsd stopped serving after the second was refused"
pass "second uvsd refused: $(grep -m1 -i 'error' "$LAB_TMP/second.out")"

# --- a non-root peer
chmod 0666 "$LAB_TMP/uvsd.sock"
set +o errexit
nsx director setpriv --reuid=65534 --regid=65534 --clear-groups \
  env UVS_SOCKET="$LAB_TMP/uvsd.sock" "$UVSADM" -Ln >"$LAB_TMP/nobody.out" 2>&1
rc=$?
set -o errexit
[ "$rc" -ne 0 ] || fail "a non-root peer was served: $(cat "$LAB_TMP/nobody.out")"
chmod 0600 "$LAB_TMP/uvsd.sock"
uvsadm -Ln >/dev/null || fail "root refused after a non-root peer"
pass "non-root peer refused (rc=$rc: $(head -n1 "$LAB_TMP/nobody.out"))"

# --- malformed control messages
python3 - "$LAB_TMP/uvsd.sock" >"$LAB_TMP/malformed.out" <<'PY'
import socket, sys
for msg in [b"this is not json\n", b'{"version": 1}\n', b'{"version": 99, "command": "List"}\n',
            b"\xff\xfe\x00garbage\n"]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sys.argv[1])
    s.sendall(msg)
    print(s.makefile("rb").readline().decode("utf-8", "replace").strip())
    s.close()
PY
[ "$(grep -ci 'error' "$LAB_TMP/malformed.out")" -eq 4 ] ||
  fail "malformed messages did not each get an error reply: $(cat "$LAB_TMP/malformed.out")"
uvsadm -Ln >/dev/null || fail "uvsd stopped answering after malformed messages"
get "$CLIENT4" "$(url "$VIP4")" >/dev/null || fail "uvsd stopped forwarding after malformed messages"
pass "4 malformed messages got 4 error replies; the daemon keeps serving"

# --- kill -9, nothing left behind, restart
kill -KILL "$UVSD_PID"
wait "$UVSD_PID" 2>/dev/null || true
UVSD_PID=""
after=""
deadline=$((SECONDS + 10))
while :; do
  after=$(net_state)
  [ "$after" = "$baseline" ] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "kill -9 left state behind:
$(diff <(echo "$baseline") <(echo "$after"))"
  sleep 0.1
done
pass "kill -9 left no XDP program, device, route or rule (ip link/rule/route as before start)"
uvsd_start "$BACKEND"
configure
pass "restart after kill -9 serves again with no manual cleanup"

# --- a clean stop after that restart leaves the namespace as it was
uvsd_stop
after=$(full_state)
[ "$after" = "$full_baseline" ] || fail "SIGTERM after the restart left state behind:
$(diff <(echo "$full_baseline") <(echo "$after"))"
pass "SIGTERM after the restart leaves links, XDP, rules, routes, proxy entries, addresses, sysctls as before"
