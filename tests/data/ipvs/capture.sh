#!/bin/sh
# Regenerates ipvsadm.pcap (the golden capture of tests/ipvs_golden.rs) in
# the lab VM, from the repository root:
#   anycastd-lab vm -- "sh tests/data/ipvs/capture.sh" | sed -n "/^BEGIN$/,/^END$/p" | sed "1d;\$d" | base64 -d > tests/data/ipvs/ipvsadm.pcap
# What ipvsadm printed goes to stderr (the tests' expected values).
# Errors are wanted for some commands: no `set -e`.
ip link add nlmon0 type nlmon
ip link set nlmon0 up
ip link add dummy0 type dummy
ip addr add 198.18.0.11/24 dev dummy0
ip link set dummy0 up
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
# Second part: SET_SERVICE, SCTP, tunnels and thresholds, IPv6 fwmark,
# timeouts, counters, the sync daemon, kernel errors.
ipvsadm -E -f 7 -s sh -b sh-fallback,sh-port -p 600 -M 255.255.255.0
ipvsadm -A --sctp-service 192.0.2.11:5000 -s wrr
ipvsadm -a --sctp-service 192.0.2.11:5000 -r 198.18.1.5:5000 -i -w 2 -x 100 -y 50
ipvsadm -a --sctp-service 192.0.2.11:5000 -r 198.18.1.6:5000 -i --tun-type gue --tun-port 6080 --tun-csum -w 3
ipvsadm -a --sctp-service 192.0.2.11:5000 -r 198.18.1.7:5000 -i --tun-type gre --tun-csum -w 4
ipvsadm -A -f 9 -6 -s mh -b mh-port
ipvsadm --set 900 120 300
ipvsadm -L --timeout >&2
ipvsadm -Z
ipvsadm -Z --sctp-service 192.0.2.11:5000
ipvsadm --start-daemon master --mcast-interface dummy0 --syncid 7
ipvsadm --start-daemon backup --mcast-interface dummy0 --syncid 8 --mcast-group 224.0.0.81 --mcast-port 8848 --mcast-ttl 2 --sync-maxlen 1400
ipvsadm -L --daemon >&2
ipvsadm --stop-daemon master
ipvsadm --stop-daemon backup
ipvsadm -Ln >&2
echo "errors:" >&2
ipvsadm -A -t 192.0.2.12:80 -s nosuch 2>&1 | cat >&2
ipvsadm -A -f 9 -6 -s mh 2>&1 | cat >&2
ipvsadm -D -t 192.0.2.99:80 2>&1 | cat >&2
ipvsadm -d --sctp-service 192.0.2.11:5000 -r 198.18.1.99:5000 2>&1 | cat >&2
ipvsadm -a --sctp-service 192.0.2.11:5000 -r 198.18.1.5:5000 -i -w 2 2>&1 | cat >&2
ipvsadm -C
sleep 1
kill $TP
sleep 0.5
echo BEGIN
base64 -w0 /run/cap.pcap
echo
echo END
