#!/bin/sh
# Regenerates ipvsadm.pcap (the golden capture of tests/ipvs_golden.rs) in
# the lab VM, from the repository root:
#   anycastd lab vm -- "sh tests/data/ipvs/capture.sh" | sed -n "/^BEGIN$/,/^END$/p" | sed "1d;\$d" | base64 -d > tests/data/ipvs/ipvsadm.pcap
ip link add nlmon0 type nlmon
ip link set nlmon0 up
tcpdump -i nlmon0 -w /run/cap.pcap -U > /dev/null 2>&1 &
TP=$!
sleep 1.5
ipvsadm -A -t 192.0.2.10:80 -s mh -b mh-fallback,mh-port
ipvsadm -a -t 192.0.2.10:80 -r 198.18.1.1:80 -g -w 5
ipvsadm -e -t 192.0.2.10:80 -r 198.18.1.1:80 -g -w 0
ipvsadm -A -u [2001:db8::10]:53 -s mh
ipvsadm -a -u [2001:db8::10]:53 -r [2001:db8::1]:53 -m -w 1
ipvsadm -A -f 7 -s sh -p 300
ipvsadm -Ln > /dev/null
ipvsadm -d -t 192.0.2.10:80 -r 198.18.1.1:80
ipvsadm -D -t 192.0.2.10:80
sleep 1
kill $TP
sleep 0.5
echo BEGIN
base64 -w0 /run/cap.pcap
echo
echo END
