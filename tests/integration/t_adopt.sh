#!/usr/bin/env bash
# Established connections survive a restart (agent/import.h, include/els/adopt.h): elsd learns
# at start the connections that exist, admits those its policy grants (admit, reason adopted)
# and cuts the others at their next packet (drop, reason not_permitted_at_start); observe mode
# only records would_drop. Clients in the other namespace send a line every 100 ms and check
# every echo, across: SIGTERM + start, kill -9 + start with a policy that revokes one port,
# SIGTERM + start in observe mode that revokes another. The steering rules stay all along with
# no bypass (fail-closed): packets that arrive while no elsd runs are dropped, and TCP sends
# them again. Two queues (--queue-balance), so connections are adopted by whichever worker
# the kernel's hash gives them.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer --queue-balance 0:1 || exit 1

permit() { printf '    { id = "p%s"; dir = "in"; proto = "tcp"; local_ports = [ %s ]; },\\n' "$1" "$1"; }
# A: 5202, 5203, 5204 permitted. B: 5203 revoked. C: observe mode, 5203 and 5204 revoked.
els_config "$WORK/a.conf" 's|^queues = "0";|queues = "0-1";|' \
	"s|    { id = \"https-in\";|$(permit 5202)$(permit 5203)$(permit 5204)&|"
els_config "$WORK/b.conf" 's|^queues = "0";|queues = "0-1";|' \
	"s|    { id = \"https-in\";|$(permit 5202)$(permit 5204)&|"
els_config "$WORK/c.conf" 's|^queues = "0";|queues = "0-1";|' \
	"s|    { id = \"https-in\";|$(permit 5202)&|" \
	's|^  permits = (|  mode = "observe";\n&|'
for c in a b c; do "$ELSD" -n -c "$WORK/$c.conf" >/dev/null || { echo "bad $c.conf"; exit 1; }; done

bg_in "$SRV" python3 -c '
import socket, threading
def echo(c):
    for line in c.makefile("rb"): c.sendall(line)
def serve(port):
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", port)); s.listen(8)
    while True:
        c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
for p in (5202, 5203, 5204): threading.Thread(target=serve, args=(p,), daemon=True).start()
threading.Event().wait()
'
for _ in $(seq 50); do [[ $(in_srv ss -ltnH | grep -cE ':520[234] ') == 3 ]] && break; sleep 0.1; done

echoed() { local v; read -r _ v _ <"$WORK/st.$1" 2>/dev/null; echo "${v:-0}"; }
finished() { local s e o err; read -r s e o err <"$WORK/st.$1" && { ((e >= s)) || [[ $err != none ]]; }; }
grows() { local a; a=$(echoed "$1"); sleep 0.5; (($(echoed "$1") > a)); }

els_start "$WORK/a.conf" || exit 1
start_client() { bg_in "$CLI" python3 "$(dirname "$0")/line_client.py" "$1" "$2" "$WORK/st.$3" "$WORK/stop.$3"; }
start_client $SRV4 5202 v4
start_client $SRV6 5202 v6
start_client $SRV4 5203 cut
start_client $SRV4 5204 obs
for c in v4 v6 cut obs; do check "$c: echoes before any restart" wait_until grows $c; done

# 1. SIGTERM, a second without elsd (packets dropped, TCP retransmits), start again.
check "elsd exits 0 on SIGTERM" els_stop
sleep 1
els_start "$WORK/a.conf" || exit 1
check "the start log counts the adopted connections" \
	grep -qE 'adopted [0-9]+ existing connections \(4 from sockets' "$ELSD_LOG"
for c in v4 v6 cut obs; do
	check "$c: echoes again after stop + start" wait_until grows $c
done
check "the start is recorded with the adoption's summary" \
	wait_records "kind='event' AND detail LIKE 'adopt: 4 connections, 4 permitted, 0 cut%'"
check "admit records with reason adopted name the permit" \
	wait_records "kind='admit' AND reason='adopted' AND (dport=5202 OR sport=5202) AND rule_name='p5202'"

# 2. kill -9, a second without elsd, start with a policy that revokes 5203.
kill -9 "$ELSD_PID"
wait "$ELSD_PID" 2>/dev/null
ELSD_PID=
sleep 1
els_start "$WORK/b.conf" || exit 1
for c in v4 v6 obs; do check "$c: echoes again after kill -9 + start" wait_until grows $c; done
check "the revoked connection is cut at its next packet, with its own reason" \
	wait_records "kind='drop' AND reason='not_permitted_at_start' AND (dport=5203 OR sport=5203)"
read -r _ cut_echoed _ <"$WORK/st.cut"
sleep 1.5
check_eq "the revoked connection gets no echo any more" "$cut_echoed" "$(echoed cut)"
check_ge "...while its client kept sending" $((cut_echoed + 5)) "$(read -r s _ <"$WORK/st.cut"; echo "$s")"

# 3. SIGTERM, start in observe mode with 5204 revoked too: nothing is dropped.
check "elsd exits 0 on SIGTERM (2)" els_stop
sleep 1
els_start "$WORK/c.conf" || exit 1
for c in v4 v6 obs; do check "$c: echoes again after the observe-mode start" wait_until grows $c; done
check "observe mode records the revoked connection as would_drop" \
	wait_records "kind='would_drop' AND reason='not_permitted_at_start' AND (dport=5204 OR sport=5204)"

touch "$WORK/stop.v4" "$WORK/stop.v6" "$WORK/stop.obs" "$WORK/stop.cut"
for c in v4 v6 obs; do
	for _ in 1 2 3 4; do wait_until finished $c && break; done
	read -r s e o err <"$WORK/st.$c"
	log "$c: sent $s, echoed $e, in order $o, error $err"
	check_ge "$c: the client sent lines all along (>= 60)" 60 "$s"
	check_eq "$c: every line sent was echoed, in order" "$s $s 1" "$e $e $o"
	check_eq "$c: the connection was never reset" none "$err"
done
check "elsd exits 0 on SIGTERM (3)" els_stop
n=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND (dport IN (5202,5204) OR sport IN (5202,5204))")
check_eq "no packet of a permitted connection was dropped (no out_of_state)" 0 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND reason='out_of_state'")
check_eq "no out_of_state drop at all" 0 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND reason='not_permitted_at_start' AND NOT (dport=5203 OR sport=5203)")
check_eq "only the revoked connection was cut" 0 "$n"
els_finish
