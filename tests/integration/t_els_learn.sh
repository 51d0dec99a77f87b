#!/usr/bin/env bash
# Observe and learn (paper VII, VIII). With header_filter mode = "observe" nothing is dropped:
# a service the policy lacks (TCP 8080) is reachable, and its flows are recorded as
# would_drop, never as drop. Switching to enforce is a reload. `elsctl suggest` turns the
# recorded run into a config that `elsd -n` accepts; replaying the run's capture through it
# drops nothing, while a port scan through it is dropped except on the learnt ports.
# `elsctl audit` finds the listener on 2222 that the learnt policy does not permit.
. "$(dirname "$0")/lib.sh"
ELSCTL=${ELSCTL:-$(dirname "$ELSD")/elsctl}
els_setup
els_steer
els_config "$WORK/elsd.conf" 's|^header_filter = {|header_filter = {\n  mode = "observe";|'
els_https_server || fail "https server did not start"
for p in 8080 2222; do els_listen "$SRV" $p || fail "listener on $p did not start"; done
# the run: this host's unicast traffic (not the link's multicast chatter, which the
# INPUT hook of a host that did not join those groups never sees)
in_srv tcpdump -i eth0 -U -w "$WORK/run.pcap" "host $SRV4 or host $SRV6" >/dev/null 2>&1 &
TCPDUMP=$!
BG_PIDS+=("$TCPDUMP")
els_start "$WORK/elsd.conf" || exit 1
sleep 0.5 # tcpdump attached

get() { in_cli python3 -c '
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); print(s.recv(16).decode().strip())
except OSError: pass' "$@" 2>/dev/null; }
check "observe: HTTPS over IPv4 works" in_cli curl -sk --max-time 3 "https://$SRV4/"
check "observe: HTTPS over IPv6 works" in_cli curl -sk --max-time 3 "https://[$SRV6]/"
check_eq "observe: TCP 8080 (no permit) passes" "hello" "$(get $SRV4 8080)"
check_eq "observe: TCP 8080 over IPv6 passes" "hello" "$(get $SRV6 8080)"
check "observe: ping works" in_cli ping -c1 -W2 "$SRV4"
sleep 0.5
kill $TCPDUMP; wait $TCPDUMP 2>/dev/null

sed -i 's|mode = "observe";|mode = "enforce";|' "$WORK/elsd.conf"
kill -HUP "$ELSD_PID"
for _ in $(seq 30); do grep -q "reloaded" "$ELSD_LOG" && break; sleep 0.1; done
check_eq "after a reload to enforce, 8080 is closed" "" "$(get $SRV4 8080)"
check "and HTTPS still works" in_cli curl -sk --max-time 3 "https://$SRV4/"
els_stop || fail "elsd exited non-zero"

n=$(sql "SELECT count(*) FROM records WHERE kind='would_drop' AND verdict='accept' AND dport=8080 AND reason='no_permit' AND handler='header_filter' AND generation=1")
check_ge "8080 flows recorded as would_drop (v4 and v6) in observe mode" 2 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND dport=8080 AND generation=1")
check_eq "no drop records while observing" 0 "$n"
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dport=8080 AND reason='no_permit' AND generation=2")
check_ge "8080 dropped after switching to enforce" 1 "$n"

# Learn from generation 1 (the observe run) only.
sqlite3 "$DB" ".backup $WORK/observe.db"
sqlite3 "$WORK/observe.db" "DELETE FROM records WHERE generation > 1" 2>/dev/null
"$ELSCTL" suggest --base "$WORK/elsd.conf" "$WORK/observe.db" >"$WORK/learnt.conf" 2>"$WORK/suggest.err"
check "elsctl suggest succeeds" test -s "$WORK/learnt.conf"
check "elsctl policy suggest is the same command" \
	cmp -s "$WORK/learnt.conf" <("$ELSCTL" policy suggest --base "$WORK/elsd.conf" "$WORK/observe.db" 2>/dev/null)
check "elsd -n accepts the suggestion" "$ELSD" -n -c "$WORK/learnt.conf"
# One permit, or one each when their listeners' executables differ (service-bound permits).
check "the suggestion permits 8080 and 443 inbound" sh -c "grep -Eq 'local_ports = \[ ([0-9]+, )*443(, [0-9]+)* \]' '$WORK/learnt.conf' &&
	grep -Eq 'local_ports = \[ ([0-9]+, )*8080(, [0-9]+)* \]' '$WORK/learnt.conf'"
check "its counts are in comments" grep -Eq "^#   learn-[0-9]+-in-tcp: port" "$WORK/learnt.conf"
check_not "the suggestion is enforcing" grep -q 'mode = "observe"' "$WORK/learnt.conf"

v=$("$ELSD" -c "$WORK/learnt.conf" --replay "$WORK/run.pcap" --monitor "$WORK/r1.db" --verdicts 2>/dev/null)
check_ge "the recorded run replays" 20 "$(wc -l <<<"$v")"
check_eq "the learnt policy drops nothing of the recorded run" 0 "$(grep -c ' drop ' <<<"$v")"

/usr/bin/python3 - "$WORK/scan.pcap" "$CLI4" "$SRV4" <<'EOF' 2>/dev/null
import sys
from scapy.all import IP, TCP, Ether, wrpcap
out, c, s = sys.argv[1:]
wrpcap(out, [Ether() / IP(src=c, dst=s) / TCP(sport=50000 + p, dport=p, flags="S") for p in range(1, 1025)] +
       [Ether() / IP(src=c, dst=s) / TCP(sport=61000, dport=8080, flags="S")])
EOF
v=$("$ELSD" -c "$WORK/learnt.conf" --replay "$WORK/scan.pcap" --monitor "$WORK/r2.db" --verdicts 2>/dev/null)
check_eq "a SYN scan of ports 1-1024 and 8080 through the learnt policy: 1023 dropped" 1023 "$(grep -c ' drop ' <<<"$v")"
check_eq "only 443 and 8080 accepted" 2 "$(grep -c ' accept header_filter permit' <<<"$v")"

out=$(in_srv "$ELSCTL" audit -c "$WORK/learnt.conf")
check_eq "audit exits 1 when something is flagged" 1 "$?"
check "audit flags the listener on 2222 as not permitted" grep -Eq "^NOT-PERMITTED +tcp +.*:2222 +python3" <<<"$out"
check "audit shows 8080 as permitted by the learnt permit" grep -Eq "^permitted +tcp +.*:8080 .*permit learn-" <<<"$out"
check "audit shows 443 with its owner" grep -Eq "^permitted +tcp +.*:443 +openssl" <<<"$out"
els_finish
