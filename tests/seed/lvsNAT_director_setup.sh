#!/bin/bash
# The seed's lvsNAT_director_setup.sh with the lab's addresses (outside
# eth0 holds the VIP, inside eth1 the DIP), `ipvsadm` found on PATH (the lab
# puts uvsadm there) and a third real server. The seed's iptables
# MASQUERADE line is for the real servers' own outbound traffic and is left
# out (the lab has no upstream). METHOD=-m (NAT) or --fullnat.

IPVSADM=ipvsadm
VIP=${VIP:-10.133.146.47}
SVC=${SVC:-$VIP:80}
RIP1=${RIP1:-192.168.79.129:80}
RIP2=${RIP2:-192.168.79.131:80}
RIP3=${RIP3:-192.168.79.132:80}
METHOD=${METHOD:--m}

#set ip_forward ON for vs-nat director (1 on, 0 off).
cat /proc/sys/net/ipv4/ip_forward
echo "1" >/proc/sys/net/ipv4/ip_forward

#director is gw for realservers
#turn OFF icmp redirects (1 on, 0 off)
echo "0" > /proc/sys/net/ipv4/conf/all/send_redirects
echo "0" > /proc/sys/net/ipv4/conf/default/send_redirects
echo "0" > /proc/sys/net/ipv4/conf/eth0/send_redirects
echo "0" > /proc/sys/net/ipv4/conf/eth1/send_redirects

#clear ipvsadm tables
$IPVSADM -C

#install LVS services with ipvsadm
$IPVSADM -A -t "$SVC" -s rr

#first realserver
$IPVSADM -a -t "$SVC" -r "$RIP1" $METHOD -w 1
h=${RIP1%:*}; h=${h#[}; ping -c 1 -W 2 "${h%]}"

#second realserver
$IPVSADM -a -t "$SVC" -r "$RIP2" $METHOD -w 1
h=${RIP2%:*}; h=${h#[}; ping -c 1 -W 2 "${h%]}"

#third realserver
$IPVSADM -a -t "$SVC" -r "$RIP3" $METHOD -w 1
h=${RIP3%:*}; h=${h#[}; ping -c 1 -W 2 "${h%]}"

#list ipvsadm table
$IPVSADM
