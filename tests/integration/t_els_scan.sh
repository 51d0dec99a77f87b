#!/usr/bin/env bash
# Scan response: an nmap SYN scan from the client crosses the threshold (more than 20 closed
# ports in 10 s), so the client is put on the runtime deny set: even the permitted HTTPS port
# is closed to it, the detection is recorded and alerted, and after `deny` seconds the entry
# expires by itself and HTTPS works again. Another client address is never affected.
. "$(dirname "$0")/lib.sh"
CLI4B=198.18.0.3
els_setup
in_cli ip addr add $CLI4B/24 dev eth0
els_steer
els_config "$WORK/elsd.conf" \
	's|chain = \[ "anomaly", "iplist", "tracker", "header_filter" \];|chain = [ "scan", "iplist", "anomaly", "tracker", "header_filter" ];\nscan = { ports = 20; window = 10; deny = 4; };|'
els_https_server || fail "https server did not start"
els_start "$WORK/elsd.conf" || exit 1

https() { in_cli curl -sk --max-time 2 ${2:+--interface $2} "https://$1/" >/dev/null 2>&1; }
check "before the scan, the client reaches HTTPS" https $SRV4
in_cli nmap -n -Pn -sS -T4 --max-retries 0 -p 1-100 "$SRV4" >/dev/null 2>&1
check_not "right after the scan, the scanner cannot reach HTTPS" https $SRV4
check "another address of the same host still can" https $SRV4 $CLI4B
check "the detection is alerted" grep -q "alert: event=scan_detected .*src=$CLI4\b" "$ELSD_LOG"
# deny = 4 s; the sweep that records the end looks at every entry within about 7 s
for _ in $(seq 120); do
	grep -q "alert: event=scan_deny .*scan deny expired" "$ELSD_LOG" && break
	sleep 0.1
done
check "the end of the deny is alerted" grep -q "alert: event=scan_deny .*scan deny expired.*$CLI4" "$ELSD_LOG"
check "after the deny expired, the client reaches HTTPS again" https $SRV4
els_stop || fail "elsd exited non-zero"

n=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND reason='scan_detected' AND src='$CLI4'")
check_eq "one probe's drop marks the detection" 1 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='event' AND reason='scan_detected' AND handler='scan' AND detail = 'scan: 21 closed ports in 10s, denied 4s: $CLI4'")
check_eq "the detection is recorded as an event" 1 "$n"
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND reason='scan_deny' AND handler='scan'")
check_ge "packets of the denied scanner are dropped as scan_deny" 10 "$n"
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND reason='scan_deny' AND (src='$CLI4B' OR dst='$CLI4B')")
check_eq "nothing of the other address was denied" 0 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='event' AND reason='scan_deny' AND detail LIKE 'scan deny expired%$CLI4'")
check_eq "the expiry is recorded as an event" 1 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='admit' AND dport=443 AND src='$CLI4' AND ts_ns > (SELECT ts_ns FROM records WHERE kind='event' AND reason='scan_deny')")
check_ge "an HTTPS flow is admitted after the expiry" 1 "$n"
els_finish
