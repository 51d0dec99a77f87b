#!/usr/bin/env bash
# `elsd --replay` judges a crafted capture with the same chain as live traffic: fragments,
# truncated and malformed headers, IPv6 extension headers, ICMP echo flows. Each packet's
# verdict, handler and reason is compared with the expectation written next to the capture,
# and the monitor file holds the same decisions. Needs no privileges or namespaces.
. "$(dirname "$0")/lib.sh"
trap els_cleanup EXIT
/usr/bin/python3 "$(dirname "$0")/make_capture.py" "$WORK/cap.pcap" "$WORK/expected" 2>/dev/null ||
	{ fail "scapy could not write the capture"; els_finish; exit; }
# A replay never writes the live monitor (monitor.path): it records into --monitor.
els_config "$WORK/elsd.conf" "s|$DB|$WORK/live.db|"
"$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/cap.pcap" --monitor "$DB" --verdicts >"$WORK/got" 2>"$ELSD_LOG"
check_eq "replay exits 0" 0 $?
n=0
while read -r dir verdict handler reason; do
	n=$((n + 1))
	got=$(awk -v n=$n '$1 == n { print $2, $3, $4, $5 }' "$WORK/got")
	check_eq "packet $n: $dir $verdict $handler $reason" "$dir $verdict $handler $reason" "$got"
done <"$WORK/expected"
check "the summary counts every packet" grep -q "replayed $n packets" "$ELSD_LOG"
check "--verdicts names the permit of a flow's packets (the SYN-ACK, 2)" \
	grep -qx "2 out accept tracker flow rule=1 rule_name=https-in" "$WORK/got"
drops=$(grep -c " drop " "$WORK/expected")
got=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop'")
check_eq "the monitor holds every drop" "$drops" "$got"
got=$(sql "SELECT count(*) FROM records WHERE kind='admit'")
check_eq "the monitor holds one admit per admitted flow (1 TCP v4 handshake, 2 echo)" 3 "$got"
# The fragmented IPv4 SYN and the two permitted IPv6 SYNs (one answered, never ACKed; one
# from the standards cases) never completed their handshake: no admit, no flow_end, and one
# half_open row per destination (two rows, three flows).
got=$(sql "SELECT count(*) || ' ' || sum(count) FROM records WHERE kind='half_open' AND dport=443 AND src IS NULL AND rule_name='https-in'")
check_eq "the three TCP flows without a completed handshake are half_open, not admit + end" "2 3" "$got"
got=$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND proto='tcp'")
check_eq "only the completed TCP flow has a flow_end" 1 "$got"
got=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND reason='tiny_fragment' AND handler='decode'")
check_eq "decode drops carry the decoder's reason" 1 "$got"
els_finish
