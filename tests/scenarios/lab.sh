#!/usr/bin/env bash
# The lab itself, with no uvsd: both topologies build, every nginx answers
# its own name directly (LAN) and through the director's kernel forwarding
# (NAT lab), a 1 MB file crosses intact, wrk runs, and teardown leaves no
# namespace behind. Proves the plumbing the uvsd scenarios stand on.
set -o errexit -o nounset -o pipefail
SCENARIO=lab
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" != inner ]; then
  id=l$$
  LAB_ID=$id bash "$0" inner lan
  LAB_ID=$id bash "$0" inner nat
  left=$(ip netns list | grep -c "^$id-" || true)
  [ "$left" -eq 0 ] || { echo "[lab] FAIL: $left namespaces left after teardown" >&2; exit 1; }
  echo "[lab] ok: teardown left no namespace" >&2
  exit 0
fi

source "$here/../lib/lab.sh"
lab_init
case $2 in
  lan)
    lab_lan 3
    for i in 0 1 2; do
      [ "$(get "$CLIENT4" "$(url "${RS4[$i]}")")" = "rs$((i + 1))" ] || fail "rs$((i + 1)) over IPv4"
      [ "$(get "$CLIENT6" "$(url "${RS6[$i]}")")" = "rs$((i + 1))" ] || fail "rs$((i + 1)) over IPv6"
    done
    pass "LAN: three nginx answer their names over IPv4 and IPv6"
    ;;
  nat)
    lab_nat 3
    nsx director sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    for i in 0 1 2; do
      [ "$(get "$CLIENT4" "$(url "${RS4[$i]}")")" = "rs$((i + 1))" ] || fail "rs$((i + 1)) routed IPv4"
      [ "$(get "$CLIENT6" "$(url "${RS6[$i]}")")" = "rs$((i + 1))" ] || fail "rs$((i + 1)) routed IPv6"
    done
    nsx client curl -fsS --max-time 10 -o "$LAB_TMP/big" "$(url "${RS4[0]}" 80 /big)"
    [ "$(sha256sum <"$LAB_TMP/big" | cut -d' ' -f1)" = "$(sha_of rs1 big)" ] || fail "1 MB routed"
    nsx client wrk -t1 -c4 -d1s "$(url "${RS4[1]}")" >"$LAB_TMP/wrk.out"
    grep -q 'Requests/sec' "$LAB_TMP/wrk.out" || fail "wrk: $(cat "$LAB_TMP/wrk.out")"
    ! grep -qE 'Socket errors|Non-2xx' "$LAB_TMP/wrk.out" || fail "wrk errors: $(cat "$LAB_TMP/wrk.out")"
    pass "NAT lab: kernel forwarding reaches every nginx (IPv4, IPv6), 1 MB intact, wrk clean"
    ;;
esac
