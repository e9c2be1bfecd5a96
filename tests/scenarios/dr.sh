#!/usr/bin/env bash
# DR (-g) end to end: the seed's lvsDR_director_setup.sh run with uvsadm
# against a LAN of client, director and three nginx real servers (VIP on
# lo, arp_ignore/arp_announce), IPv4 then IPv6, on the backend named by $1.
set -o errexit -o nounset -o pipefail
BACKEND=${1:?usage: dr.sh afxdp|tun}
SCENARIO="dr/$BACKEND"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
VIP_LOCAL=$(vip_local_for "$BACKEND")
source "$here/../lib/checks.sh"

lab_init
lab_lan 3
lab_vip_on_lo
uvsd_start "$BACKEND"

SCENARIO="dr/$BACKEND/ipv4"
VIP=$VIP4 SVC=$VIP4:80 C1=$CLIENT4 C2=$CLIENT4B FWD=-g MASK=255.255.255.0 DIP_CLIENT=$DIP4
RSA=("${RS4[@]}")
run_seed_script "$here/../seed/lvsDR_director_setup.sh" VIP="$VIP4" \
  RS1="${RS4[0]}" RS2="${RS4[1]}" RS3="${RS4[2]}"
check_all

SCENARIO="dr/$BACKEND/ipv6"
VIP=$VIP6 SVC="[$VIP6]:80" C1=$CLIENT6 C2=$CLIENT6B FWD=-g MASK=64 DIP_CLIENT=$DIP6
RSA=("${RS6[@]}")
run_seed_script "$here/../seed/lvsDR_director_setup.sh" VIP="$VIP6" SVC="[$VIP6]:80" \
  RS1="${RS6[0]}" RS2="${RS6[1]}" RS3="${RS6[2]}"
check_all
