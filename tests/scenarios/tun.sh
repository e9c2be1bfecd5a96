#!/usr/bin/env bash
# TUN (-i) end to end on backend $1, every family IPVS tunnels:
#   ipv4   — the seed's lvsTUN_director_setup.sh run with uvsadm (IPIP);
#   ipv6   — the same service on the IPv6 VIP over IPv6 real servers
#            (IPv6-in-IPv6), configured with uvsadm;
#   4in6   — the IPv4 VIP over the IPv6 real servers (IPv4-in-IPv6);
#   6in4   — the IPv6 VIP over the IPv4 real servers (IPv6-in-IPv4);
#   gue6, gre6 — the IPv6 VIP over the IPv6 real servers in GUE (port
#            6080) and in GRE with its checksum field.
# Each real server runs one `uvsd --decap` (this machine has no ipip,
# ip6_tunnel or sit module) holding both VIPs and taking tunnels from both
# director addresses, with arp_ignore/arp_announce as the seed's
# real-server script sets (IPv6 needs nothing: the VIP sits on the TUN
# device, and NDP answers only for the receiving interface's addresses).
# Director and real servers carry MTU 1600 for the outer header (20 bytes
# over IPv4, 40 over IPv6; packet-io.md §5). The ipv4 and ipv6 runs make
# every check of checks.sh; the mixed-family runs rr order, 1 MB
# downloads and stats; gue6 and gre6 rr order and 1 MB downloads. At the end the roles' counters must show delivered
# packets, no drop but the two hand-made foreign/not-virtual tunnels sent
# to rs1.
set -o errexit -o nounset -o pipefail
BACKEND=${1:?usage: tun.sh afxdp|tun}
SCENARIO="tun/$BACKEND"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
VIP_LOCAL=$(vip_local_for "$BACKEND")
source "$here/../lib/checks.sh"
source "$here/../lib/tun6.sh"

lab_init
lab_lan 3
lab_mtu 1600 director "${RS_NAMES[@]}"
for n in "${RS_NAMES[@]}"; do
  nsx "$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  decap_start_multi "$n" "$VIP4 $VIP6" "$DIP4 $DIP6" --gue-port 6080
done
uvsd_start "$BACKEND"

SCENARIO="tun/$BACKEND/ipv4"
VIP=$VIP4 SVC=$VIP4:80 C1=$CLIENT4 C2=$CLIENT4B FWD=-i MASK=255.255.255.0 DIP_CLIENT=$DIP4
RSA=("${RS4[0]}:80" "${RS4[1]}:80" "${RS4[2]}:80")
run_seed_script "$here/../seed/lvsTUN_director_setup.sh" VIP="$VIP4" \
  RS1="${RS4[0]}" RS2="${RS4[1]}" RS3="${RS4[2]}"
check_all

# tun_service VIP SVC RS...: the director holds VIP as the seed's script
# makes it (VIP_LOCAL=1), and SVC is an rr service tunnelling to each RS
# with weight 1 — the seed's table, typed with uvsadm. TUN_OPTS: extra
# tunnel options for each server (--tun-type ...).
tun_service() {
  local vip=$1 svc=$2 r
  shift 2
  if [ "$VIP_LOCAL" = 1 ]; then
    case $vip in
      *:*) nsx director ip -6 addr replace "$vip/128" dev eth0 nodad ;;
      *) nsx director ip addr replace "$vip/32" dev eth0 ;;
    esac
  fi
  uvsadm -C
  uvsadm -A -t "$svc" -s rr
  # shellcheck disable=SC2086 # TUN_OPTS is a list of words
  for r in "$@"; do uvsadm -a -t "$svc" -r "$r" -i -w 1 ${TUN_OPTS:-}; done
  pass "uvsadm: $svc tunnels (-i ${TUN_OPTS:-}) to $*"
}

SCENARIO="tun/$BACKEND/ipv6"
VIP=$VIP6 SVC="[$VIP6]:80" C1=$CLIENT6 C2=$CLIENT6B FWD=-i MASK=64 DIP_CLIENT=$DIP6
RSA=("[${RS6[0]}]:80" "[${RS6[1]}]:80" "[${RS6[2]}]:80")
tun_service "$VIP" "$SVC" "${RSA[@]}"
check_all

# Mixed families (IPVS allows them for tunnelling servers only): the
# outer header is the real server's family, the inner the client's.
# Each section below has a client address of its own: after -C the
# director still holds the earlier sections' connections (FIN_WAIT, 2
# minutes, as IPVS keeps input-only ones) with their real servers gone,
# and a SYN reusing such a client port is dropped, as IPVS does with
# expire_nodest_conn=0.
CLIENT4C=192.168.79.102 CLIENT6C=fd79::102 CLIENT6D=fd79::103 CLIENT6E=fd79::104
lab_addr client eth0 $CLIENT4C/24 $CLIENT6C/64 $CLIENT6D/64 $CLIENT6E/64
SCENARIO="tun/$BACKEND/4in6"
VIP=$VIP4 SVC=$VIP4:80 C1=$CLIENT4C C2=$CLIENT4B FWD=-i MASK=255.255.255.0 DIP_CLIENT=$DIP4
RSA=("[${RS6[0]}]:80" "[${RS6[1]}]:80" "[${RS6[2]}]:80")
tun_service "$VIP" "$SVC" "${RSA[@]}"
check_rr
check_download
client_settled "$VIP"
check_stats

SCENARIO="tun/$BACKEND/6in4"
VIP=$VIP6 SVC="[$VIP6]:80" C1=$CLIENT6C C2=$CLIENT6B FWD=-i MASK=64 DIP_CLIENT=$DIP6
RSA=("${RS4[0]}:80" "${RS4[1]}:80" "${RS4[2]}:80")
tun_service "$VIP" "$SVC" "${RSA[@]}"
check_rr
check_download
client_settled "$VIP"
check_stats

# GUE and GRE (with its checksum field) over IPv6: rr and 1 MB downloads.
SCENARIO="tun/$BACKEND/gue6"
VIP=$VIP6 SVC="[$VIP6]:80" C1=$CLIENT6D C2=$CLIENT6B FWD=-i MASK=64 DIP_CLIENT=$DIP6
RSA=("[${RS6[0]}]:80" "[${RS6[1]}]:80" "[${RS6[2]}]:80")
TUN_OPTS="--tun-type gue --tun-port 6080" tun_service "$VIP" "$SVC" "${RSA[@]}"
check_rr
check_download
SCENARIO="tun/$BACKEND/gre6"
C1=$CLIENT6E
TUN_OPTS="--tun-type gre --tun-csum" tun_service "$VIP" "$SVC" "${RSA[@]}"
check_rr
check_download

# The roles refuse tunnels they must not take: IPv6-in-IPv6 from the
# client (not a director), and IPv4-in-IPv6 from the director to an
# address that is not a VIP.
SCENARIO="tun/$BACKEND/decap"
send_tunnel6 client "$CLIENT6" "${RS6[0]}" "$VIP6" 41
send_tunnel6 director "$DIP6" "${RS6[0]}" "${RS4[0]}" 4
decap_wait_drops rs1 1 1
pass "rs1's decap role logs the foreign and the not-a-VIP tunnel as drops"
decap_stop_all
for n in "${RS_NAMES[@]}"; do
  delivered=$(decap_counter "$n" delivered)
  [ "$delivered" -gt 100 ] || fail "the decap role on $n delivered only $delivered packets"
  want_foreign=0 want_other=0
  [ "$n" = rs1 ] && want_foreign=1 want_other=1
  for c in malformed truncated unknown refused; do
    [ "$(decap_counter "$n" "$c")" = 0 ] ||
      fail "the decap role on $n dropped $(decap_counter "$n" "$c") packets as $c: $(tail -n 1 "$LAB_TMP/decap-$n.log")"
  done
  [ "$(decap_counter "$n" foreign)" = "$want_foreign" ] && [ "$(decap_counter "$n" not_virtual)" = "$want_other" ] ||
    fail "the decap role on $n: foreign/not-virtual drops $(decap_counter "$n" foreign)/$(decap_counter "$n" not_virtual), expected $want_foreign/$want_other"
  pass "decap role on $n: $delivered packets delivered; drops: $want_foreign foreign source, $want_other not a VIP, nothing else"
done
