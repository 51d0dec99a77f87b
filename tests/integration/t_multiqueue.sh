#!/usr/bin/env bash
# queues = "0-1" with --queue-balance: one worker per queue, the kernel spreads connections
# over both, and since it hashes both directions of a connection to the same queue, every
# worker's flow table sees whole flows: all connections complete, none is dropped.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer --queue-balance 0:1 || exit 1
els_config "$WORK/elsd.conf" 's|^queues = "0";|queues = "0-1";|'
els_https_server || fail "https server did not start"
els_start "$WORK/elsd.conf" || exit 1
check "elsd reports both queues" grep -q "started: queues 0-1" "$ELSD_LOG"
ok=0
for i in $(seq 24); do
	# Distinct client addresses vary the kernel's queue hash (it hashes addresses).
	in_cli ip addr add 198.18.0.$((100 + i))/32 dev eth0 2>/dev/null
	in_srv ip route add 198.18.0.$((100 + i))/32 dev eth0 2>/dev/null
	in_cli curl -sk --max-time 3 --interface 198.18.0.$((100 + i)) "https://$SRV4/" >/dev/null && ok=$((ok + 1))
done
check_eq "all 24 connections complete" 24 "$ok"
els_stop || fail "elsd exited non-zero"
q0=$(sed -n 's/.*queue 0: \([0-9]*\) packets.*/\1/p' "$ELSD_LOG")
q1=$(sed -n 's/.*queue 1: \([0-9]*\) packets.*/\1/p' "$ELSD_LOG")
check_ge "worker of queue 0 judged packets" 1 "$q0"
check_ge "worker of queue 1 judged packets" 1 "$q1"
n=$(sql "SELECT count(*) FROM records WHERE kind='admit' AND dport=443")
check_eq "one admit per connection" 24 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND (sport=443 OR dport=443)")
check_eq "no packet of any connection dropped (each flow stayed on one worker)" 0 "$n"
els_finish
