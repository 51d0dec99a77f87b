#!/usr/bin/env bash
# Egress control: a connection the server itself starts to an unpermitted port is stopped
# (the paper's exfiltration case), while replies to a permitted inbound flow pass.
. "$(dirname "$0")/lib.sh"
els_setup
els_config "$WORK/elsd.conf"
els_https_server || fail "https server did not start"
els_listen "$CLI" 8080 || fail "client listener did not start"
check "before elsd, the server can reach the client's 8080" in_srv nc -z -w 2 $CLI4 8080
els_steer
els_start "$WORK/elsd.conf" || exit 1

check_not "server -> client:8080 over IPv4 is stopped" in_srv nc -z -w 2 $CLI4 8080
check_not "server -> client:8080 over IPv6 is stopped" in_srv nc -z -w 2 $CLI6 8080
in_srv sh -c "echo exfil | nc -u -w 1 $CLI4 5353" >/dev/null 2>&1
check "replies of a permitted inbound HTTPS flow pass meanwhile" in_cli curl -sk --max-time 5 "https://$SRV4/"
els_stop
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dir='out' AND proto='tcp'
	AND dst='$CLI4' AND dport=8080 AND reason='no_permit'")
check_ge "outbound SYNs to 8080 recorded as dropped (IPv4)" 1 "$n"
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dir='out' AND dst='$CLI6' AND dport=8080")
check_ge "outbound SYNs to 8080 recorded as dropped (IPv6)" 1 "$n"
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dir='out' AND proto='udp' AND dport=5353")
check_ge "outbound UDP to 5353 recorded as dropped" 1 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='admit' AND dir='out'")
check_eq "no outbound flow admitted" 0 "$n"
els_finish
