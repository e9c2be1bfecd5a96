#!/usr/bin/env bash
# Reload under load: uvsd starts from a config file (the seed's NAT
# service, wrr, three real servers); while wrk holds keep-alive
# connections open, weights change by SIGHUP (file edited) and by the
# socket (uvsadm -e), and a broken file is refused by SIGHUP with the
# running config kept. wrk must report no socket error and no non-2xx.
set -o errexit -o nounset -o pipefail
BACKEND=${1:?usage: reload.sh afxdp|tun}
SCENARIO="reload/$BACKEND"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
VIP_LOCAL=$(vip_local_for "$BACKEND")

lab_init
lab_nat 3

# write_config W1 W2 W3
write_config() {
  cat >"$LAB_TMP/uvsd.toml.new" <<EOT
[[service]]
protocol = "tcp"
address = "$VIP4:80"
scheduler = "wrr"
  [[service.real_server]]
  address = "${RS4[0]}:80"
  method = "nat"
  weight = $1
  [[service.real_server]]
  address = "${RS4[1]}:80"
  method = "nat"
  weight = $2
  [[service.real_server]]
  address = "${RS4[2]}:80"
  method = "nat"
  weight = $3
EOT
  mv "$LAB_TMP/uvsd.toml.new" "$LAB_TMP/uvsd.toml"
}

# weight_of RS_ADDR: its weight in `uvsadm -Ln`.
weight_of() { uvsadm -Ln | awk -v rs="$1:80" '$1=="->" && $2==rs {print $4}'; }
weights_are() { [ "$(weight_of "${RS4[0]}") $(weight_of "${RS4[1]}") $(weight_of "${RS4[2]}")" = "$*" ]; }

write_config 1 1 1
nsx director sysctl -qw net.ipv4.ip_forward=1
uvsd_start "$BACKEND" --config "$LAB_TMP/uvsd.toml"
wait_until 5 "weights 1 1 1 from the file" weights_are 1 1 1
[ "$(get "$CLIENT4" "$(url "$VIP4")")" != "" ] || fail "no answer through the VIP"

# Paced (tests/lib/paced.lua): reloads under steady traffic, not overload.
nsx client wrk -t1 -c16 -d8s -s "$E2E_ROOT/tests/lib/paced.lua" "$(url "$VIP4")" \
  >"$LAB_TMP/wrk.out" 2>&1 &
wrk_pid=$!
wait_until 5 "wrk's connections to be tracked" \
  bash -c "[ \$(UVS_SOCKET=$LAB_TMP/uvsd.sock ip netns exec $(ns director) $UVSADM -Ln | awk '\$1==\"->\"{s+=\$5} END{print s+0}') -ge 16 ]"

write_config 3 2 1
kill -HUP "$UVSD_PID"
wait_until 5 "SIGHUP to apply weights 3 2 1" weights_are 3 2 1
pass "SIGHUP applied weights 3 2 1 under load"

uvsadm -e -t "$VIP4:80" -r "${RS4[2]}:80" -m -w 4
wait_until 5 "the socket to apply weight 4" weights_are 3 2 4
pass "uvsadm -e applied weight 4 under load"

echo 'this is [not valid toml' >"$LAB_TMP/uvsd.toml"
logged=$(wc -l <"$LAB_TMP/uvsd.log")
kill -HUP "$UVSD_PID"
wait_until 5 "the broken file to be refused in the log" \
  bash -c "tail -n +$((logged + 1)) $LAB_TMP/uvsd.log | grep -q uvsd.toml"
kill -0 "$UVSD_PID" || fail "uvsd died on a broken file"
weights_are 3 2 4 || fail "a broken file changed the running config: $(uvsadm -Ln)"
pass "SIGHUP with a broken file is refused; the running config stays"

wait "$wrk_pid" || fail "wrk failed: $(cat "$LAB_TMP/wrk.out")"
grep -q 'Requests/sec' "$LAB_TMP/wrk.out" || fail "wrk printed no rate: $(cat "$LAB_TMP/wrk.out")"
if grep -qE 'Socket errors|Non-2xx' "$LAB_TMP/wrk.out"; then
  fail "connections failed across the reloads: $(cat "$LAB_TMP/wrk.out")"
fi
pass "wrk: $(grep -E 'requests in' "$LAB_TMP/wrk.out" | tr -s ' '), 0 errors, 0 non-2xx across both reloads"
