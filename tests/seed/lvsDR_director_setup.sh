#!/bin/bash
# The seed's lvsDR_director_setup.sh (seed/000_3e6388b6fd0bb3d1.txt) with
# the lab's addresses, `ipvsadm` found on PATH (the lab puts uvsadm there),
# ip(8) in place of the retired ifconfig/route/netstat, and a third real
# server. VIP/RS come from the environment (IPv4 or IPv6 run).

ipv=ipvsadm
vip=${VIP:-192.168.79.180}
svc=${SVC:-$vip:80}
rs1=${RS1:-192.168.79.129}
rs2=${RS2:-192.168.79.131}
rs3=${RS3:-}   # the lab's third real server, when it has one

#set ip_forward OFF for lvs-dr director (1 on, 0 off)
#(there is no forwarding in the conventional sense for LVS-DR)
cat       /proc/sys/net/ipv4/ip_forward
echo "0" >/proc/sys/net/ipv4/ip_forward

#director is not gw for realservers: leave icmp redirects on
echo 'setting icmp redirects (1 on, 0 off) '
echo "1" >/proc/sys/net/ipv4/conf/all/send_redirects
echo "1" >/proc/sys/net/ipv4/conf/default/send_redirects
echo "1" >/proc/sys/net/ipv4/conf/eth0/send_redirects

#add ethernet device and routing for VIP (VIP_LOCAL=0: uvsd's TUN backend
#steers the VIP by route and answers ARP for it, so it stays off eth0)
if [ "${VIP_LOCAL:-1}" = 1 ]; then
ip addr replace "$vip" dev eth0
ip addr show dev eth0

#check VIP is reachable from self (director)
ping -c 1 -W 2 "$vip"
fi

#setup_ipvsadm_table
$ipv -C
$ipv -A -t "$svc" -s rr

$ipv -a -t "$svc" -r "$rs1" -g -w 1
ping -c 1 -W 2 "$rs1"                  #check realserver reachable from director
$ipv -a -t "$svc" -r "$rs2" -g -w 1
ping -c 1 -W 2 "$rs2"
if [ -n "$rs3" ]; then
$ipv -a -t "$svc" -r "$rs3" -g -w 1
ping -c 1 -W 2 "$rs3"
fi

#displaying ipvsadm settings
$ipv
