#!/usr/bin/env bash
# Adoption from conntrack (agent/import_ct.c), where conntrack runs: with the offload steering
# (its connmark rule makes the kernel track connections in the namespace), established TCP
# connections are handed to the kernel and bypass the queue. A restart must take them back:
# elsd clears the old process's offload marks at start, so a connection the new policy
# revokes is cut at its next packet instead of flowing on in the kernel unjudged, while a
# permitted one goes on. The restart is a kill -9, which leaves the marks behind. A UDP exchange in which only the server speaks after the first
# datagram (the server's packets have no permit of their own) is adopted from conntrack with
# its real direction, so the server's next datagrams pass as the flow's.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer --offload || exit 1

permit() { printf '    { id = "p%s"; dir = "in"; proto = "%s"; local_ports = [ %s ]; },\\n' "$1" "$2" "$1"; }
els_config "$WORK/a.conf" 's|^queues = "0";|offload = true;\nqueues = "0";|' \
	"s|    { id = \"https-in\";|$(permit 5202 tcp)$(permit 5203 tcp)$(permit 5300 udp)&|"
els_config "$WORK/b.conf" 's|^queues = "0";|offload = true;\nqueues = "0";|' \
	"s|    { id = \"https-in\";|$(permit 5202 tcp)$(permit 5300 udp)&|"
for c in a b; do "$ELSD" -n -c "$WORK/$c.conf" >/dev/null || { echo "bad $c.conf"; exit 1; }; done

bg_in "$SRV" python3 -c '
import socket, threading, time
def echo(c):
    for line in c.makefile("rb"): c.sendall(line)
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(8)
    while True:
        c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
for p in (5202, 5203): threading.Thread(target=serve, args=(p,), daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 5300))
_, peer = u.recvfrom(100)          # one hello, then the server pushes a line every 100 ms
n = 0
while True:
    u.sendto(b"%d\n" % n, peer); n += 1; time.sleep(0.1)
'
for _ in $(seq 50); do [[ $(in_srv ss -ltnH | grep -cE ':520[23] ') == 2 ]] && break; sleep 0.1; done

echoed() { local v; read -r _ v _ <"$WORK/st.$1" 2>/dev/null; echo "${v:-0}"; }
grows() { local a; a=$(echoed "$1"); sleep 0.5; (($(echoed "$1") > a)); }
udp_got() { wc -l <"$WORK/udp.got" 2>/dev/null || echo 0; }
udp_grows() { local a; a=$(udp_got); sleep 0.5; (($(udp_got) > a)); }

els_start "$WORK/a.conf" || exit 1
bg_in "$CLI" python3 "$(dirname "$0")/line_client.py" $SRV4 5202 "$WORK/st.keep" "$WORK/stop.keep"
bg_in "$CLI" python3 "$(dirname "$0")/line_client.py" $SRV4 5203 "$WORK/st.cut" "$WORK/stop.cut"
bg_in "$CLI" python3 -c '
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 5301))
u.sendto(b"hello", (sys.argv[1], 5300))
with open(sys.argv[2], "ab", buffering=0) as f:
    while True: f.write(u.recv(100))
' $SRV4 "$WORK/udp.got"
for c in keep cut; do check "$c: echoes before the restart" wait_until grows $c; done
check "udp: the server's datagrams arrive before the restart" wait_until udp_grows
bypassed=$(in_srv iptables -L INPUT -v -n -x | awk '/connmark/ {print $1}')
check_ge "the connections were offloaded: the connmark rule accepted packets" 10 "${bypassed:-0}"

# A crash: a clean stop unmarks its flows itself, kill -9 leaves the marks in the kernel.
kill -9 "$ELSD_PID"
wait "$ELSD_PID" 2>/dev/null
ELSD_PID=
sleep 1
els_start "$WORK/b.conf" || exit 1
check "conntrack was read and the offload marks cleared" \
	grep -qE 'from sockets, [1-9][0-9]* from conntrack, [1-9][0-9]* offload marks cleared' "$ELSD_LOG"
check "keep: echoes again after the restart" wait_until grows keep
check "udp: the server's datagrams pass again after the restart" wait_until udp_grows
check "the offloaded connection the new policy revokes is cut, not left in the kernel" \
	wait_records "kind='drop' AND reason='not_permitted_at_start' AND (dport=5203 OR sport=5203)"
read -r _ cut_echoed _ <"$WORK/st.cut"
sleep 1.5
check_eq "the revoked connection gets no echo any more" "$cut_echoed" "$(echoed cut)"
check "the UDP exchange was adopted with its permit" \
	wait_records "kind='admit' AND reason='adopted' AND proto='udp' AND rule_name='p5300'"
n=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND (sport=5300 OR dport=5300 OR sport=5202 OR dport=5202)")
check_eq "no packet of the permitted TCP or UDP exchange was dropped" 0 "$n"

touch "$WORK/stop.keep" "$WORK/stop.cut"
finished() { local s e o err; read -r s e o err <"$WORK/st.$1" && { ((e >= s)) || [[ $err != none ]]; }; }
for _ in 1 2 3 4; do wait_until finished keep && break; done
read -r s e o err <"$WORK/st.keep"
log "keep: sent $s, echoed $e, in order $o, error $err"
check_eq "keep: every line sent was echoed, in order, never reset" "$s $s 1 none" "$e $e $o $err"
check "elsd exits 0 on SIGTERM" els_stop
els_finish
