#!/usr/bin/env bash
# A deny-listed source cannot reach even the permitted HTTPS port; a neighbour that is not
# listed can. IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"
els_setup
BAD4=198.19.66.7 BAD6=2001:db8:666::7
in_cli ip addr add $BAD4/32 dev eth0
in_cli ip -6 addr add $BAD6/128 dev eth0 nodad
in_cli ip route add 198.19.0.0/16 dev eth0
in_srv ip route add $BAD4/32 dev eth0
in_srv ip -6 route add $BAD6/128 dev eth0
els_https_server || fail "https server did not start"
check "without elsd the listed address connects" in_cli curl -sk --max-time 3 --interface $BAD4 "https://$SRV4/"
els_steer
els_config "$WORK/elsd.conf"
els_start "$WORK/elsd.conf" || exit 1

check_not "deny-listed IPv4 source is stopped" in_cli curl -sk --max-time 3 --interface $BAD4 "https://$SRV4/"
check_not "deny-listed IPv6 source is stopped" in_cli curl -sk --max-time 3 --interface $BAD6 "https://[$SRV6]/"
check "an unlisted source still connects" in_cli curl -sk --max-time 3 "https://$SRV4/"
els_stop
n4=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND src='$BAD4' AND reason='deny_list' AND handler='iplist'")
check_ge "IPv4 drops recorded with reason deny_list" 1 "$n4"
n6=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND src='$BAD6' AND reason='deny_list'")
check_ge "IPv6 drops recorded with reason deny_list" 1 "$n6"
adm=$(sql "SELECT count(*) FROM records WHERE kind='admit' AND (src='$BAD4' OR src='$BAD6')")
check_eq "no flow admitted from a listed source" 0 "$adm"
els_finish
