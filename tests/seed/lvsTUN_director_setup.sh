#!/bin/bash
# The seed's lvsTUN_director_setup.sh with the lab's addresses, `ipvsadm`
# found on PATH (the lab puts uvsadm there), ip(8) in place of
# ifconfig/route/netstat, and a third real server. The real servers run
# `uvsd --decap` (no ipip module on this machine).

ipv=ipvsadm
vip=${VIP:-192.168.79.180}
rs1=${RS1:-192.168.79.129}
rs2=${RS2:-192.168.79.131}
rs3=${RS3:-192.168.79.132}

#set ip_forward OFF for lvs-dr director (1 on, 0 off)
echo "0" > /proc/sys/net/ipv4/ip_forward
cat /proc/sys/net/ipv4/ip_forward

#director is not gw for realservers: leave icmp redirects on
echo "1" > /proc/sys/net/ipv4/conf/all/send_redirects
echo "1" > /proc/sys/net/ipv4/conf/default/send_redirects
echo "1" > /proc/sys/net/ipv4/conf/eth0/send_redirects

#add ethernet device and routing for VIP (VIP_LOCAL=0: uvsd's TUN backend
#steers the VIP by route and answers ARP for it, so it stays off eth0)
if [ "${VIP_LOCAL:-1}" = 1 ]; then
ip addr replace "$vip" dev eth0
ping -c 1 -W 2 "$vip"
fi

#setup_ipvsadm_table
$ipv -C
$ipv -A -t $vip:80 -s rr

$ipv -a -t $vip:80 -r $rs1:80 -i -w 1
ping -c 1 -W 2 $rs1                  #check realserver reachable from director

$ipv -a -t $vip:80 -r $rs2:80 -i -w 1
ping -c 1 -W 2 $rs2

$ipv -a -t $vip:80 -r $rs3:80 -i -w 1
ping -c 1 -W 2 $rs3

#displaying ipvsadm settings
$ipv
