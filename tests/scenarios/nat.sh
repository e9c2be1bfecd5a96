#!/usr/bin/env bash
# NAT (-m) end to end: the seed's lvsNAT_director_setup.sh run with uvsadm
# against two networks (client outside, three nginx real servers inside
# routing by default via the director), IPv4 then IPv6, on backend $1.
set -o errexit -o nounset -o pipefail
BACKEND=${1:?usage: nat.sh afxdp|tun}
SCENARIO="nat/$BACKEND"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
VIP_LOCAL=$(vip_local_for "$BACKEND")
source "$here/../lib/checks.sh"

lab_init
lab_nat 3
uvsd_start "$BACKEND"

SCENARIO="nat/$BACKEND/ipv4"
VIP=$VIP4 SVC=$VIP4:80 C1=$CLIENT4 C2=$CLIENT4B FWD=-m MASK=255.255.255.0 DIP_CLIENT=$DOUT4
RSA=("${RS4[0]}:80" "${RS4[1]}:80" "${RS4[2]}:80")
run_seed_script "$here/../seed/lvsNAT_director_setup.sh" VIP="$VIP4" \
  RIP1="${RSA[0]}" RIP2="${RSA[1]}" RIP3="${RSA[2]}"
check_all
check_sip

SCENARIO="nat/$BACKEND/ipv6"
VIP=$VIP6 SVC="[$VIP6]:80" C1=$CLIENT6 C2=$CLIENT6B FWD=-m MASK=64 DIP_CLIENT=$DOUT6
RSA=("[${RS6[0]}]:80" "[${RS6[1]}]:80" "[${RS6[2]}]:80")
run_seed_script "$here/../seed/lvsNAT_director_setup.sh" VIP="$VIP6" SVC="[$VIP6]:80" \
  RIP1="${RSA[0]}" RIP2="${RSA[1]}" RIP3="${RSA[2]}"
check_all
