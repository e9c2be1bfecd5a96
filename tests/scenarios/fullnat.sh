#!/usr/bin/env bash
# Full NAT (--fullnat, uvs only) end to end: the seed's NAT lab, but the
# real servers have NO route back to the client — they see the director's
# local pool address as the source — IPv4 then IPv6, on backend $1. The
# pool comes from the config file ([fullnat]); the services from the
# seed's NAT script with --fullnat nsx place of -m.
set -o errexit -o nounset -o pipefail
BACKEND=${1:?usage: fullnat.sh afxdp|tun}
SCENARIO="fullnat/$BACKEND"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
VIP_LOCAL=$(vip_local_for "$BACKEND")
source "$here/../lib/checks.sh"

lab_init
lab_nat 3
POOL4=192.168.79.250 POOL6=fd79::250
# The pool is the director's: a local address under AF_XDP (its program
# takes the replies first); under TUN it must not be local (routes into the
# device lose to the local table) and uvsd answers ARP/NDP for it.
[ "$VIP_LOCAL" = 1 ] && lab_addr director eth1 $POOL4/24 $POOL6/64
for n in "${RS_NAMES[@]}"; do
  nsx "$n" ip route del default
  nsx "$n" ip -6 route del default
done
cat >"$LAB_TMP/uvsd.toml" <<EOT
[fullnat]
addrs = ["$POOL4", "$POOL6"]
port_range = "20000-60000"
EOT
uvsd_start "$BACKEND" --config "$LAB_TMP/uvsd.toml"

SCENARIO="fullnat/$BACKEND/ipv4"
VIP=$VIP4 SVC=$VIP4:80 C1=$CLIENT4 C2=$CLIENT4B FWD=--fullnat MASK=255.255.255.0 DIP_CLIENT=$DOUT4
RSA=("${RS4[0]}:80" "${RS4[1]}:80" "${RS4[2]}:80")
run_seed_script "$here/../seed/lvsNAT_director_setup.sh" VIP="$VIP4" METHOD=--fullnat \
  RIP1="${RSA[0]}" RIP2="${RSA[1]}" RIP3="${RSA[2]}"
check_all

SCENARIO="fullnat/$BACKEND/ipv6"
VIP=$VIP6 SVC="[$VIP6]:80" C1=$CLIENT6 C2=$CLIENT6B FWD=--fullnat MASK=64 DIP_CLIENT=$DOUT6
RSA=("[${RS6[0]}]:80" "[${RS6[1]}]:80" "[${RS6[2]}]:80")
run_seed_script "$here/../seed/lvsNAT_director_setup.sh" VIP="$VIP6" SVC="[$VIP6]:80" METHOD=--fullnat \
  RIP1="${RSA[0]}" RIP2="${RSA[1]}" RIP3="${RSA[2]}"
check_all
