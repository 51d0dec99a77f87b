#!/usr/bin/env bash
# A client reaches the permitted HTTPS port over IPv4 and IPv6 with curl and openssl s_client.
# Each connection is an admitted flow in the monitor, its replies pass through the tracker,
# and its end is recorded with packet and byte counts.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
els_config "$WORK/elsd.conf"
els_https_server || { fail "https server did not start"; els_finish; exit; }
els_start "$WORK/elsd.conf" || exit 1

check "curl reaches https over IPv4" in_cli curl -sk --max-time 5 "https://$SRV4/"
check "curl reaches https over IPv6" in_cli curl -sk --max-time 5 "https://[$SRV6]/"
out=$(echo | in_cli timeout 5 openssl s_client -connect "$SRV4:443" 2>&1)
check "openssl s_client completes a TLS handshake" grep -q "BEGIN CERTIFICATE" <<<"$out"
check "ping (permit ping-in) is answered over IPv4" in_cli ping -c1 -W2 "$SRV4"
check "ping6 (permit ping6-in) is answered over IPv6" in_cli ping -6 -c1 -W2 "$SRV6"
els_stop || fail "elsd exited non-zero"

admits4=$(sql "SELECT count(*) FROM records WHERE kind='admit' AND dir='in' AND proto='tcp'
	AND src='$CLI4' AND dst='$SRV4' AND dport=443 AND rule_name='https-in' AND verdict='accept'")
check_ge "IPv4 connections recorded as admitted by permit https-in" 2 "$admits4"
admits6=$(sql "SELECT count(*) FROM records WHERE kind='admit' AND family=6 AND src='$CLI6'
	AND dport=443 AND rule_name='https-in'")
check_ge "IPv6 connection recorded as admitted" 1 "$admits6"
ends=$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND dport=443 AND src='$CLI4'
	AND pkts_init > 2 AND pkts_resp > 2 AND bytes_resp > 500 AND handler='tracker'")
check_ge "flow ends carry both directions' packet and byte counts" 2 "$ends"
drops=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND proto='tcp'
	AND (dport=443 OR sport=443)")
check_eq "no packet of a permitted HTTPS flow was dropped" 0 "$drops"
n=$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND proto IN ('icmp','icmpv6')
	AND rule_name IN ('ping-in','ping6-in') AND pkts_init=1 AND pkts_resp=1")
check_eq "each echo exchange is one flow: request admitted, reply passed on the flow" 2 "$n"
events=$(sql "SELECT count(*) FROM records WHERE kind='event' AND (detail LIKE 'start%' OR detail LIKE 'stop%')")
check_eq "start and stop events recorded" 2 "$events"
els_finish
