#!/usr/bin/env bash
# Reload with a result (agent/ctlsock.c): `elsd --reload` asks the running elsd over its local
# control socket and waits, exit 0 with the new generation or exit 1 with FILE:LINE on stderr;
# only root is served (SO_PEERCRED), even when the socket's mode lets others connect; a client
# that sends nothing does not stall elsd; SIGHUP still works and its result is recorded too.
# And the administrator's own session: `elsd -n`, a reload and a start name each established
# connection a new policy would cut, before it does cut it.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
CONF=$WORK/elsd.conf
ALT='s|^    { id = "https-in";|    { id = "alt-in"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },\n&|'
els_config "$CONF" "$ALT"
cp "$CONF" "$WORK/alt.conf"
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || exit 1
SOCK=$ELS_CTLSOCK
reload() { in_srv "$ELSD" --reload --control-socket "$SOCK"; }
ask_status() {
	in_srv python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"status\n")
print(s.recv(4096).decode(), end="")' "$SOCK"
}

check_eq "the control socket is 0600 root" "600 root srw-------" "$(stat -c '%a %U %A' "$SOCK")"

# 1. A good reload answers with the new generation.
out=$(reload 2>"$WORK/err")
rc=$?
check_eq "elsd --reload: exit 0 on success" 0 $rc
check "... and prints the new generation ($out)" \
	grep -Eq "^reloaded $CONF: generation 2 sha256 [0-9a-f]{16}$" <<<"$out"
check "the status answer says the last reload was ok" grep -q "^ok generation 2 .*last reload: ok" \
	<<<"$(ask_status)"

# 2. A rejected file: exit 1, every FILE:LINE: message on stderr, the running policy stays.
printf 'header_filter = { permits = ( { dir = "in"; proto = "tcp"; local_ports = [ "nosuchservice" ]; } ); };\n' >>"$CONF"
out=$(reload 2>"$WORK/err")
rc=$?
check_eq "elsd --reload: exit 1 on a rejected config" 1 $rc
check "... with nothing on stdout" test -z "$out"
check "... and FILE:LINE: message on stderr" grep -Eq "^$CONF:[0-9]+: " "$WORK/err"
check "... saying the running generation stays" grep -q "rejected, generation 2 keeps running" \
	"$WORK/err"
check "the status answer says FAILED with the reason" \
	grep -Eq "last reload: FAILED, $CONF:[0-9]+: " <<<"$(ask_status)"
check "elsd still filters: port 22 is closed" sh -c "! ip netns exec $CLI nc -z -w 2 $SRV4 22"
check "... and the permitted port answers" in_cli nc -z -w 2 $SRV4 8080
wait_records "kind='event' AND detail LIKE 'reload failed%'" &&
	pass "the rejected reload is a monitor event" || fail "no reload-failed event"

# 3. SIGHUP still reloads, and its result is recorded too.
cp "$WORK/alt.conf" "$CONF"
kill -HUP "$ELSD_PID"
check "SIGHUP reloads (generation 3)" wait_log "reloaded .*generation 3"
check "... and the status answer records it" grep -q "^ok generation 3 .*last reload: ok" \
	<<<"$(ask_status)"

# 4. Root only, whatever the socket's mode: the attacker's request is refused, nothing reloads.
chmod 0711 "$WORK" # (mktemp made it 0700: let the attacker reach the socket)
chmod 0666 "$SOCK"
out=$(runuser -u nobody -- "$ELSD" --reload --control-socket "$SOCK" 2>&1)
rc=$?
check_eq "a non-root --reload is refused (exit 1)" "1" "$rc"
check "... with a permission message ($out)" grep -q "permission denied" <<<"$out"
check "... logged with the peer's uid" wait_log "control socket: refused a client \(pid [0-9]+, uid 65534\)"
check "... and nothing reloaded (still generation 3)" grep -q "^ok generation 3 " <<<"$(ask_status)"
chmod 0600 "$SOCK"
check_not "with mode 0600 a non-root user cannot even connect" \
	runuser -u nobody -- "$ELSD" --reload --control-socket "$SOCK"

# 5. A client that connects and says nothing is dropped after a second; elsd keeps filtering.
in_srv python3 -c '
import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(3)' "$SOCK" &
SILENT=$!
sleep 0.3
check "while a silent client holds the socket, traffic is judged" in_cli nc -z -w 2 $SRV4 8080
check "... and the next --reload is answered" reload
wait "$SILENT"
check "no elsd at the socket: exit 3" sh -c \
	"ip netns exec $SRV $ELSD --reload --control-socket $WORK/none.sock; test \$? -eq 3"

# 6. The administrator's own session. A connection to 8080 is established; a policy without
# alt-in would cut it: elsd -n names it, and so does the reload that then cuts it.
bg_in "$CLI" python3 -c '
import socket,time
s=socket.create_connection(("198.18.0.2",8080),timeout=3); s.recv(16)
for _ in range(100):
    s.send(b"x"); time.sleep(0.1)
'
established_8080() { ip netns exec "$SRV" ss -Htn state established '( sport = :8080 )' | grep -q .; }
check "the session on 8080 is established" wait_until established_8080
els_config "$WORK/cut.conf"
out=$(in_srv "$ELSD" -n -c "$WORK/cut.conf")
check_eq "elsd -n still exits 0 (the file is valid)" 0 $?
check "elsd -n warns about the session it would cut" grep -Eq \
	"^$WORK/cut.conf: warning: an established [a-z-]+ session from $CLI4:[0-9]+ to port 8080 \\($SRV4:8080\\) is not permitted by this policy and will be cut$" \
	<<<"$out"
check_not "elsd -n does not warn about the policy that permits it" \
	grep -q warning <<<"$(in_srv "$ELSD" -n -c "$WORK/alt.conf")"
sed -e 's|^  permits = (|  mode = "observe";\n&|' "$WORK/cut.conf" >"$WORK/observe.conf"
check "in observe mode it is a note: cut once it enforces" grep -Eq \
	"note: an established [a-z-]+ session from $CLI4:[0-9]* to port 8080 .* would be cut once it enforces" \
	<<<"$(in_srv "$ELSD" -n -c "$WORK/observe.conf")"
cp "$WORK/cut.conf" "$CONF"
check "the reload that cuts it succeeds" reload
check "elsd logged the warning before the new policy ran" wait_log \
	"warning: an established [a-z-]+ session from $CLI4:[0-9]+ to port 8080 .* not permitted by the new policy and will be cut"
check "... and alerted it" wait_log "alert: event=session_cut detail=.an established [a-z-]+ session from $CLI4"
w=$(grep -n "will be cut" "$ELSD_LOG" | head -1 | cut -d: -f1)
g=$(grep -n "reloaded .*generation 5" "$ELSD_LOG" | head -1 | cut -d: -f1)
check "... before the new generation was published (line $w < $g)" test "${w:-99999}" -lt "${g:-0}"
wait_records "kind='drop' AND reason='permit_revoked' AND (dport=8080 OR sport=8080)" &&
	pass "the session named was the one cut" || fail "no permit_revoked drop for 8080"

# 7. At start: elsd names the sessions it will cut. The session is opened under a policy that
# permits it; elsd then restarts with one that does not.
els_stop
cp "$WORK/alt.conf" "$CONF"
els_start "$CONF" || exit 1
# 25 of them: elsd names 20 and counts the rest, so that a big cut cannot flood the journal.
bg_in "$CLI" python3 -c '
import socket,time
ss=[socket.create_connection(("198.18.0.2",8080),timeout=3) for _ in range(25)]
for s in ss: s.recv(16)
time.sleep(20)
'
n_established() { ip netns exec "$SRV" ss -Htn state established '( sport = :8080 )' | wc -l; }
all_established() { (($(n_established) >= 25)); }
check "25 sessions to 8080 are established" wait_until all_established
els_stop
cp "$WORK/cut.conf" "$CONF"
els_start "$CONF" || exit 1
check "elsd names it at start" wait_log \
	"warning: an established [a-z-]+ session from $CLI4:[0-9]+ to port 8080 .* not permitted by the policy and will be cut"
wait_log "started:" # the warnings come before it
check_eq "... 20 of them by name" 20 "$(grep -c 'warning: an established .* to port 8080 .* will be cut' "$ELSD_LOG")"
# (25, and the sockets of the session cut in 6., still established at both ends)
more=$(sed -n 's/.*and \([0-9]*\) more established connections the policy will cut.*/\1/p' "$ELSD_LOG")
check "... and counts the others ($more)" test "${more:-0}" -ge 5
els_stop || fail "elsd exited non-zero"
els_finish
