#!/usr/bin/env bash
# Session-gated permits and expiry (paper XI: "Other ports may be opened as needed ...
# following HTTPS establishment"). Port 8443 is permitted only to a remote that holds an
# established HTTPS flow: a client address with an HTTPS session reaches it, another address
# of the same client without one does not; when the session ends, the gated connection is cut.
# A permit whose date has passed matches nothing, and one that expires while elsd runs stops
# matching then, with a permit_expired event and alert; `elsd --report` shows both.
. "$(dirname "$0")/lib.sh"
CLI4B=198.18.0.3
els_setup
in_cli ip addr add $CLI4B/24 dev eth0
els_steer
els_config "$WORK/elsd.conf" "s|{ id = \"https-in\";|{ id = \"admin-gated\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ]; requires = \"tcp/https\"; owner = \"ops\"; },\n    { id = \"old-exception\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 2222 ]; expires = \"2020-06-30\"; owner = \"legacy team\"; },\n    { id = \"short-exception\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 7777 ]; expires = \"2099-01-01\"; },\n    { id = \"https-in\"; justification = \"the ELS web service\"; category = \"CAL\";|"
els_https_server || fail "https server did not start"
for p in 2222 7777; do els_listen "$SRV" $p || fail "listener on $p did not start"; done
# 8443: says hello, then echoes, so a client can tell whether its data still gets through
bg_in "$SRV" python3 -c '
import socket, threading
def serve(c):
    c.sendall(b"hello\n")
    while (d := c.recv(64)):
        c.sendall(d)
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", 8443)); s.listen(16)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
'
for _ in $(seq 50); do in_srv ss -ltn | grep -q ":8443 " && break; sleep 0.1; done
els_start "$WORK/elsd.conf" || exit 1

# connect ADDR PORT [SRC]: prints what the server sent, or nothing
connect() {
	in_cli python3 - "$@" <<'EOF' 2>/dev/null
import socket, sys
src = (sys.argv[3], 0) if len(sys.argv) > 3 else None
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2, source_address=src)
    print(s.recv(16).decode().strip())
except OSError:
    pass
EOF
}

check_eq "without a session, $CLI4 cannot reach gated port 8443" "" "$(connect $SRV4 8443)"
# Hold an HTTPS session open from CLI4 (stdin stays open, so s_client keeps the connection).
mkfifo "$WORK/hold"
ip netns exec "$CLI" sh -c "exec openssl s_client -quiet -connect $SRV4:443 <$WORK/hold >/dev/null 2>&1" &
SCLIENT=$!
BG_PIDS+=("$SCLIENT")
exec 7>"$WORK/hold"
for _ in $(seq 30); do
	in_cli ss -tnH state established "dst $SRV4:443" | grep -q . && break
	sleep 0.1
done
check_eq "with an HTTPS session, $CLI4 reaches gated port 8443" "hello" "$(connect $SRV4 8443)"
check_eq "at the same time $CLI4B (no session) does not" "" "$(connect $SRV4 8443 $CLI4B)"

# A gated connection held open across the end of the session is cut with it.
in_cli python3 - $SRV4 >"$WORK/held.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], 8443), timeout=2)
print("open", s.recv(16).decode().strip(), flush=True)
time.sleep(2.5)
s.settimeout(2)
try:
    s.sendall(b"ping\n"); print("still open", s.recv(16).decode().strip(), flush=True)
except OSError as e:
    print("cut", e, flush=True)
EOF
HELD=$!
sleep 1
exec 7>&- # ends s_client: the HTTPS session closes
kill $SCLIENT 2>/dev/null
wait $HELD
check_eq "the HTTPS session is over" "" "$(in_cli ss -tnH state established "dst $SRV4:443")"
check "the gated connection opened during the session" grep -q "^open hello" "$WORK/held.out"
check "the gated connection is cut when the session ends" grep -q "^cut" "$WORK/held.out"
check_eq "after the session, $CLI4 cannot reach 8443 again" "" "$(connect $SRV4 8443)"

check_eq "a permit that expired in 2020 does not match" "" "$(connect $SRV4 2222)"
check_eq "a permit with a future date matches" "hello" "$(connect $SRV4 7777)"
# Moving its date to a few seconds from now is a reload; the date then passes while elsd runs.
soon=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)
sed -i "s|expires = \"2099-01-01\"|expires = \"$soon\"|" "$WORK/elsd.conf"
kill -HUP "$ELSD_PID"
for _ in $(seq 30); do grep -q "reloaded" "$ELSD_LOG" && break; sleep 0.1; done
check_eq "after the reload, before its date, it still matches" "hello" "$(connect $SRV4 7777)"
while [[ $(date -u +%s) -le $(date -u -d "$soon" +%s) ]]; do sleep 0.5; done
sleep 0.5
check_eq "once its date passed, it no longer matches" "" "$(connect $SRV4 7777)"
check "the expiry is alerted" grep -q "alert: event=permit_expired.*rule=short-exception" "$ELSD_LOG"
els_stop || fail "elsd exited non-zero"

n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dport=8443 AND reason='session_required' AND src='$CLI4B'")
check_ge "the sessionless client's SYNs are dropped as session_required" 1 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='admit' AND dport=8443 AND rule_name='admin-gated' AND src='$CLI4'")
check_ge "the gated connections are admitted by admin-gated" 2 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND dport=8443 AND reason='permit_revoked'")
check_ge "the cut connection ends as permit_revoked" 1 "$n"
n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dport=2222 AND reason='no_permit'")
check_ge "SYNs to the expired permit's port are dropped as no_permit" 1 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='event' AND reason='permit_expired' AND rule_name='short-exception'")
check_eq "one permit_expired event for the runtime expiry" 1 "$n"

report=$("$ELSD" --report -c "$WORK/elsd.conf" --monitor "$DB" 2>/dev/null)
rc=$?
check_eq "elsd --report exits 4 when permits have expired" 4 "$rc"
check "the report marks the old exception EXPIRED" grep -q "^permit old-exception (line [0-9]*) EXPIRED" <<<"$report"
check "the report names the IANA service of 443" grep -q "in tcp local 443 (https)" <<<"$report"
check "the report carries the metadata" grep -q "justification: the ELS web service" <<<"$report"
hits=$(grep -A8 "^permit admin-gated" <<<"$report" | sed -n 's/.*hits: \([0-9]*\).*/\1/p')
check_ge "the report counts the gated permit's hits" 2 "$hits"
ELSCTL=${ELS_BUILD_DIR:-$(dirname "$ELSD")}/elsctl
check "elsctl policy report prints the same registry" \
	diff <("$ELSCTL" policy report -c "$WORK/elsd.conf" --monitor "$DB" 2>/dev/null) <(printf '%s\n' "$report")
els_finish
