#!/usr/bin/env bash
# TCP and UDP traffic to or from port 0 (seeds 000/001) is dropped with its own reason, while
# the same probe to the permitted port is answered, so the test can tell the two apart.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
els_config "$WORK/elsd.conf"
els_https_server || fail "https server did not start"
els_start "$WORK/elsd.conf" || exit 1

out=$(in_cli hping3 -S -p 443 -c 2 -i u200000 "$SRV4" 2>&1)
check "hping3 SYN to 443 is answered" grep -q "flags=SA" <<<"$out"
out=$(in_cli hping3 -S -p 0 -c 3 -i u200000 "$SRV4" 2>&1)
check "hping3 SYN to port 0 gets no answer" grep -q "100% packet loss" <<<"$out"
out=$(in_cli hping3 -S -s 0 -k -p 443 -c 3 -i u200000 "$SRV4" 2>&1)
check "hping3 SYN from source port 0 to 443 gets no answer" grep -q "100% packet loss" <<<"$out"
in_cli hping3 --udp -p 0 -c 2 -i u200000 "$SRV4" >/dev/null 2>&1
els_stop
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND proto='tcp' AND dport=0 AND reason='port_zero'")
check_ge "SYNs to port 0 recorded with reason port_zero" 3 "$n"
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND proto='tcp' AND sport=0 AND dport=443 AND reason='port_zero'")
check_ge "SYNs from port 0 recorded with reason port_zero" 3 "$n"
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND proto='udp' AND dport=0 AND reason='port_zero'")
check_ge "UDP to port 0 recorded with reason port_zero" 2 "$n"
els_finish
