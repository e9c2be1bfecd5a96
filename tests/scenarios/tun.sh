#!/usr/bin/env bash
# TUN (-i, IPIP) end to end: the seed's lvsTUN_director_setup.sh run with
# uvsadm against the LAN; each real server runs `uvsd --decap` (this
# machine has no ipip module) holding the VIP, with arp_ignore/arp_announce
# as the seed's real-server script sets; director and real servers carry
# MTU 1600 for the 20-byte outer header (packet-io.md §5). IPv4 only: the
# seed's TUN set-up is IPv4, and the decap role reads IPv4 outer headers.
set -o errexit -o nounset -o pipefail
BACKEND=${1:?usage: tun.sh afxdp|tun}
SCENARIO="tun/$BACKEND"
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/lab.sh"
VIP_LOCAL=$(vip_local_for "$BACKEND")
source "$here/../lib/checks.sh"

lab_init
lab_lan 3
lab_mtu 1600 director "${RS_NAMES[@]}"
for n in "${RS_NAMES[@]}"; do
  nsx "$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  decap_start "$n" "$VIP4" "$DIP4"
done
uvsd_start "$BACKEND"

SCENARIO="tun/$BACKEND/ipv4"
VIP=$VIP4 SVC=$VIP4:80 C1=$CLIENT4 C2=$CLIENT4B FWD=-i MASK=255.255.255.0 DIP_CLIENT=$DIP4
RSA=("${RS4[0]}:80" "${RS4[1]}:80" "${RS4[2]}:80")
run_seed_script "$here/../seed/lvsTUN_director_setup.sh" VIP="$VIP4" \
  RS1="${RS4[0]}" RS2="${RS4[1]}" RS3="${RS4[2]}"
check_all
