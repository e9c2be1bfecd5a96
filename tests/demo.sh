#!/usr/bin/env bash
# `make demo`: the seed's DR example, live. Builds the seed's LAN in network
# namespaces (client, director, two nginx real servers with the VIP on lo
# and arp_ignore/arp_announce), starts uvsd in the director, runs the
# seed's lvsDR_director_setup.sh with uvsadm in place of ipvsadm, sends a
# handful of requests printing which server answered each, shows
# `uvsadm -Ln` and `--stats`, and tears everything down.
# DEMO_BACKEND=afxdp|tun (default afxdp).
set -o errexit -o nounset -o pipefail
SCENARIO=demo
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/lab.sh"
backend=${DEMO_BACKEND:-afxdp}
VIP_LOCAL=$(vip_local_for "$backend")

lab_init
echo "== building the seed's DR lab (namespaces ${LAB_ID}-*)"
lab_lan 2
lab_vip_on_lo
echo "   client $CLIENT4, director DIP $DIP4 VIP $VIP4, real servers ${RS4[0]} (rs1) ${RS4[1]} (rs2)"
echo "== starting uvsd --backend $backend in the director"
uvsd_start "$backend"
sed 's/^/   /' "$LAB_TMP/uvsd.log"
echo "== running the seed's lvsDR_director_setup.sh with uvsadm as ipvsadm"
run_seed_script "$here/seed/lvsDR_director_setup.sh" VIP="$VIP4" \
  RS1="${RS4[0]}" RS2="${RS4[1]}" RS3=
grep -E '^\$ipv -[aA]' "$here/seed/lvsDR_director_setup.sh" | head -n 3 | sed 's/^/   /'
echo "== six requests from the client to http://$VIP4/"
for i in 1 2 3 4 5 6; do
  printf '   request %d answered by %s\n' "$i" "$(get "$CLIENT4" "$(url "$VIP4")")"
done
echo "== uvsadm -Ln"
uvsadm -Ln | sed 's/^/   /'
echo "== uvsadm -Ln --stats"
uvsadm -Ln --stats | sed 's/^/   /'
echo "== tearing down"
