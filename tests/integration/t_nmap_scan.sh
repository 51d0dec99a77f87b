#!/usr/bin/env bash
# nmap from the client finds exactly the permitted port open: services listening on other
# ports (22, 80, 8080) are filtered, as is everything else, and the probes are recorded.
. "$(dirname "$0")/lib.sh"
els_setup
els_config "$WORK/elsd.conf"
els_https_server || fail "https server did not start"
for p in 22 80 8080; do els_listen "$SRV" $p || fail "listener on $p did not start"; done
# Without elsd, all four would be open: make sure the scan below can tell the difference.
pre=$(in_cli nmap -n -Pn -sS -p 22,80,443,8080 --max-retries 1 -oG - "$SRV4" 2>/dev/null)
check_eq "without elsd, 4 ports are open" 4 "$(grep -o '/open/' <<<"$pre" | wc -l)"
els_steer
els_start "$WORK/elsd.conf" || exit 1

for fam in 4 6; do
	target=$SRV4; opt=
	[[ $fam == 6 ]] && { target=$SRV6; opt=-6; }
	out=$(in_cli nmap -n -Pn -sS $opt -T4 --max-retries 1 -p 1-1024,8080 -oG - "$target" 2>/dev/null)
	open=$(grep -o '[0-9]*/open/' <<<"$out" | tr '\n' ' ')
	check_eq "IPv$fam: nmap finds exactly 443 open" "443/open/ " "$open"
	check "IPv$fam: every other scanned port is filtered" grep -q "Ignored State: filtered (1024)" <<<"$out"
done
els_stop || fail "elsd exited non-zero"
for p in 22 80 8080; do
	n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dir='in' AND proto='tcp'
		AND dport=$p AND reason='no_permit' AND handler='header_filter'")
	check_ge "probes of listening port $p dropped as no_permit" 2 "$n"
done
total=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND reason='no_permit' AND dir='in'")
check_ge "at least one drop counted per scanned port and family" 2050 "$total"
els_finish
