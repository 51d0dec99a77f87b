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
check "--verdicts names the permit of a flow's packets (the SYN-ACK, 2), with its addresses and ports" \
	grep -qx "2 out accept tracker flow proto=tcp src=198.18.0.2:443 dst=198.18.0.1:40000 rule=1 rule_name=https-in" "$WORK/got"
check "--verdicts writes an IPv6 endpoint in brackets before its port (17)" \
	grep -q "^17 in accept header_filter permit proto=tcp src=\[2001:db8:1::1\]:40006 dst=\[2001:db8:1::2\]:443 " "$WORK/got"
check "--verdicts gives an ICMP echo's type and code (20)" \
	grep -q "^20 in accept header_filter permit proto=icmp src=198.18.0.1 dst=198.18.0.2 icmp_type=8 icmp_code=0 rule=2" "$WORK/got"
check "a later fragment has addresses but no ports (11)" \
	grep -q "^11 in accept tracker fragment_of_admitted proto=tcp src=198.18.0.1 dst=198.18.0.2 rule=0" "$WORK/got"
check_not "packets of a capture that matches local_addresses draw no direction warning" \
	grep -q "no packet matched a local address" "$ELSD_LOG"

# --verdicts --json: one object per packet, the same verdicts, every key in every object.
"$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/cap.pcap" --monitor "$WORK/json.db" --verdicts --json >"$WORK/got.json" 2>/dev/null
check_eq "--verdicts --json exits 0" 0 $?
check_eq "one JSON object per packet" "$(wc -l <"$WORK/got")" "$(jq -c . "$WORK/got.json" | wc -l)"
check_eq "the JSON verdicts are the text verdicts" \
	"$(awk '{ print $1, $2, $3, $4, $5 }' "$WORK/got")" \
	"$(jq -r '"\(.packet) \(.dir) \(.verdict) \(.handler) \(.reason)"' "$WORK/got.json")"
check_eq "every object has the same keys" 1 \
	"$(jq -c 'keys' "$WORK/got.json" | sort -u | wc -l)"
check_eq "the SYN-ACK's addresses, ports and permit" \
	'"out" "tcp" "198.18.0.2" 443 "198.18.0.1" 40000 1 "https-in"' \
	"$(jq -r 'select(.packet == 2) | [.dir, .proto, .src_ip, .src_port, .dest_ip, .dest_port, .rule, .rule_name] | map(tojson) | join(" ")' "$WORK/got.json")"
check_eq "no ports for a later fragment: null, not 0" "null null" \
	"$(jq -r 'select(.packet == 11) | "\(.src_port) \(.dest_port)"' "$WORK/got.json")"

# A capture none of whose packets is ours was judged all inbound: say so.
"$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/cap.pcap" --monitor "$WORK/nolocal.db" \
	--local 198.18.200.0/24 --local 2001:db8:ffff::/48 --verdicts >"$WORK/nolocal" 2>"$WORK/nolocal.err"
check_eq "a replay with no local match still exits 0" 0 $?
check "it warns that every packet was judged as inbound" \
	grep -q "no packet matched a local address: every packet was judged as inbound; give --local CIDR" "$WORK/nolocal.err"
check_eq "and it did: no packet is outbound" 0 "$(awk '$2 == "out"' "$WORK/nolocal" | wc -l)"
check_eq "--json without --verdicts, --report or --handlers is a usage error" 2 \
	"$("$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/cap.pcap" --monitor "$WORK/x.db" --json >/dev/null 2>&1; echo $?)"
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
