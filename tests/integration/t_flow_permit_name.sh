#!/usr/bin/env bash
# Flow records name the permit of the generation that admitted the flow. A connection admitted
# by permit "web-a" lives on across a reload that renames that permit "web-b" (same port, so
# the flow is kept): its admit and its flow_end both say "web-a", and the packets it sends
# after the reload pass as part of it; a connection opened after the reload says "web-b".
# Before, the end record looked the rule up in the generation current at the end.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
CONF=$WORK/elsd.conf
els_config "$CONF" 's|{ id = "https-in";|{ id = "web-a";|'
grep -q 'id = "web-a"' "$CONF" || fail "the config names the permit web-a"
# A plain TCP server on the permitted port that reads until its client closes.
bg_in "$SRV" python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("'"$SRV4"'", 443)); s.listen(8)
def serve(c):
    while c.recv(4096): pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()'
for _ in $(seq 50); do in_srv ss -ltnH 'sport = :443' | grep -q . && break; sleep 0.1; done
els_start "$CONF" || exit 1

# The long-lived connection: connects (generation 1), waits for the reload, sends, closes.
in_cli python3 -c '
import socket, sys, time
s = socket.create_connection(("'"$SRV4"'", 443), timeout=5)
print(s.getsockname()[1], flush=True)
s.sendall(b"before\n")
while not __import__("os").path.exists("'"$WORK/reloaded"'"): time.sleep(0.05)
for _ in range(3):
    s.sendall(b"after the reload\n"); time.sleep(0.1)
s.close()
print("ok", flush=True)' >"$WORK/client.out" 2>&1 &
client=$!
for _ in $(seq 50); do [[ -s $WORK/client.out ]] && break; sleep 0.1; done
sport=$(head -1 "$WORK/client.out")
[[ $sport =~ ^[0-9]+$ ]] || fail "the client connected (got '$sport')"
wait_records "kind='admit' AND sport=$sport AND rule_name='web-a'" &&
	pass "the connection's admit names web-a" || fail "no admit naming web-a"

sed -i 's|{ id = "web-a";|{ id = "web-b";|' "$CONF"
kill -HUP "$ELSD_PID"
wait_log "reloaded .*generation 2" && pass "the rename reloads as generation 2" || fail "no reload"
touch "$WORK/reloaded"
wait "$client"
check "the connection lived on across the reload (its data after it passed)" grep -q '^ok$' "$WORK/client.out"
check "a new connection passes after the reload" in_cli python3 -c '
import socket; s = socket.create_connection(("'"$SRV4"'", 443), timeout=5); s.sendall(b"x"); s.close()'
els_stop || fail "elsd exited non-zero"

check_eq "the old connection's packets were not cut" 0 \
	"$(sql "SELECT count(*) FROM records WHERE kind='drop' AND (sport=$sport OR dport=$sport)")"
end=$(sql "SELECT rule_name || ' ' || generation FROM records WHERE kind='flow_end' AND sport=$sport AND src='$CLI4'")
check_eq "its flow_end names the admitting permit and generation" "web-a 1" "$end"
check_eq "the new connection's admit names web-b" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='admit' AND sport<>$sport AND dport=443 AND rule_name='web-b' AND generation=2")"
check_eq "... and so does its flow_end" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND sport<>$sport AND dport=443 AND src='$CLI4' AND rule_name='web-b'")"
els_finish
