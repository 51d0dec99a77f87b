#!/usr/bin/env bash
# SIGHUP reloads. A broken file keeps the running policy (and says where it is broken); a good
# file that drops a permit cuts the flows that permit admitted, on their next packet.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
CONF=$WORK/elsd.conf
ALT='s|^    { id = "https-in";|    { id = "alt-in"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },\n&|'
els_config "$CONF" "$ALT"
els_https_server || fail "https server did not start"
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || exit 1

# A long-lived connection on the alt port that keeps sending (each send is a packet).
bg_in "$CLI" python3 -c '
import socket,time
s=socket.create_connection(("198.18.0.2",8080),timeout=3); s.recv(16)
for _ in range(60):
    s.send(b"x"); time.sleep(0.1)
'
wait_records "kind='admit' AND dport=8080" || fail "long-lived connection was not admitted"

# 1. A broken file: the old policy stays.
cp "$CONF" "$WORK/good.conf"
printf 'header_filter = { permits = ( { dir = "in"; proto = "tcp"; local_ports = [ "nosuchservice" ]; } ); };\n' >>"$CONF"
kill -HUP "$ELSD_PID"
for _ in $(seq 50); do grep -q "reload failed" "$ELSD_LOG" && break; sleep 0.1; done
check "a broken reload is logged with the file and line" grep -qE "reload failed.*elsd.conf:[0-9]+: " "$ELSD_LOG"
# (the alert follows the log line waited for above: give it a moment)
check "... and alerted as policy_rejected" wait_log "alert: event=policy_rejected generation=1 kept"
check "HTTPS still passes after the broken reload" in_cli curl -sk --max-time 3 "https://$SRV4/"
check_not "port 22 is still filtered after the broken reload" in_cli nc -z -w 2 $SRV4 22
wait_records "kind='event' AND detail LIKE 'reload failed%'" && pass "the failed reload is a monitor event" || fail "no reload-failed event"

# 2. A good file without the alt permit: the running connection is cut.
els_config "$CONF"
kill -HUP "$ELSD_PID"
for _ in $(seq 50); do grep -q "generation 2" "$ELSD_LOG" && break; sleep 0.1; done
check "the good reload becomes generation 2" grep -q "reloaded .*generation 2" "$ELSD_LOG"
check "... and is alerted as policy_changed" wait_log "alert: event=policy_changed generation=2 sha256="
# Whichever side sends next (the client's data or the server's ACK) meets the new policy.
wait_records "kind='drop' AND reason='permit_revoked' AND (dport=8080 OR sport=8080) AND generation=2" &&
	pass "the revoked flow is cut on its next packet" || fail "no permit_revoked drop for the 8080 flow"
wait_records "kind='flow_end' AND reason='permit_revoked' AND dport=8080 AND src='$CLI4'" &&
	pass "the cut flow's end is recorded as permit_revoked" || fail "no flow_end for the revoked flow"
# Drops are aggregated per second, so this one may take a second to be written.
wait_records "kind='drop' AND src='$CLI4' AND dport=8080 AND reason='out_of_state'" &&
	pass "the client's later packets are dropped as out_of_state" ||
	fail "no out_of_state drop for the client's later packets"
check_not "a new connection to 8080 is refused by the new policy" in_cli nc -z -w 2 $SRV4 8080
check "HTTPS still passes under generation 2" in_cli curl -sk --max-time 3 "https://$SRV4/"
els_stop || fail "elsd exited non-zero"
n=$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'reload ok: generation 2%'")
check_eq "the good reload is a monitor event" 1 "$n"
els_finish
