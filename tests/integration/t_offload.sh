#!/usr/bin/env bash
# Offload (agent/offload.h): an admitted, established TCP flow is handed to the kernel with a
# connmark, and the rule ahead of NFQUEUE accepts the rest of it there. The flow still ends
# up in the monitor, with the kernel's counters, when conntrack destroys it; and a reload
# that revokes the flow's permit takes it back from the kernel and cuts it.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer --offload || exit 1
# Counters for the end records; short closing timeouts so that conntrack destroys a closed
# connection within the test.
in_srv sysctl -qw net.netfilter.nf_conntrack_acct=1
for t in time_wait close close_wait fin_wait last_ack; do
	in_srv sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_$t=1
done
els_config "$WORK/elsd.conf" \
	's|^queues = "0";|offload = true;\nqueues = "0";|' \
	's|    { id = "https-in";|    { id = "bulk-in"; dir = "in"; proto = "tcp"; local_ports = [ 5201 ]; },\n    { id = "chat-in"; dir = "in"; proto = "tcp"; local_ports = [ 5202 ]; },\n&|'

# 5201 reads everything and answers with the byte count; 5202 echoes lines.
bg_in "$SRV" python3 -c '
import socket, threading
def bulk(c):
    n = 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        n += len(b)
    c.sendall(b"%d\n" % n); c.close()
def echo(c):
    f = c.makefile("rb")
    for line in f: c.sendall(line)
def serve(port, fn):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(8)
    while True:
        c, _ = s.accept(); threading.Thread(target=fn, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(5202, echo), daemon=True).start()
serve(5201, bulk)
'
for _ in $(seq 50); do [[ $(in_srv ss -ltnH | grep -cE ':520[12] ') == 2 ]] && break; sleep 0.1; done
els_start "$WORK/elsd.conf" || exit 1

# 1. A 4 MiB upload: offloaded after the handshake, its end record comes from conntrack.
SIZE=4194304
got=$(in_cli python3 -c '
import socket, sys
s = socket.create_connection(("'$SRV4'", 5201), timeout=10)
s.sendall(b"x" * '$SIZE'); s.shutdown(socket.SHUT_WR)
print(s.makefile().readline().strip())
')
check_eq "upload completes through the offloaded path" "$SIZE" "$got"
bypassed=$(in_srv iptables -L INPUT -v -n -x | awk '/connmark/ {print $1}')
check_ge "the connmark rule accepted the flow's packets in the kernel" 10 "${bypassed:-0}"
# The mark came with the verdict (NF_REPEAT, packet mark saved by the steering rule), not by a
# conntrack update: the save rule saw the packet that completed the handshake.
saved=$(in_srv iptables -L INPUT -v -n -x | awk '/CONNMARK/ {print $1}')
check_ge "the verdict's packet mark was saved into the connection" 1 "${saved:-0}"
for _ in $(seq 150); do
	[[ $(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND dport=5201") -gt 0 ]] && break
	sleep 0.2
done
row=$(sql "SELECT reason, pkts_init, bytes_init, pkts_resp, duration_ns > 0 FROM records
	WHERE kind='flow_end' AND dport=5201")
check "the offloaded flow has its end record" test -n "$row"
IFS='|' read -r reason pkts bytes rpkts dur <<<"$row"
check_eq "ended as closed (conntrack destroy)" flow_closed "$reason"
check_ge "end record carries the kernel's byte count (>= the upload)" "$SIZE" "${bytes:-0}"
check_ge "end record counts the initiator's packets" 4 "${pkts:-0}"
check_ge "end record counts the responder's packets" 2 "${rpkts:-0}"
check_eq "end record has a duration" 1 "$dur"
n=$(sql "SELECT count(*) FROM records WHERE kind='admit' AND dport=5201")
check_eq "one admit for the upload" 1 "$n"

# 2. A revoked permit cuts an offloaded flow.
in_cli python3 -c '
import socket, time, sys
s = socket.create_connection(("'$SRV4'", 5202), timeout=1)
f = s.makefile("rb")
ok = 0
for i in range(150):   # 30 s at most
    try:
        s.sendall(b"ping\n")
        if f.readline() != b"ping\n": break
        ok += 1
    except OSError:
        break
    time.sleep(0.2)
print("echoes %d" % ok, flush=True)
' >"$WORK/chat.out" 2>&1 &
CHAT=$!
BG_PIDS+=($CHAT)
marked=0
for _ in $(seq 50); do
	in_srv conntrack -L -p tcp --dport 5202 --mark 0x40000000/0x40000000 2>/dev/null |
		grep -q ESTABLISHED && { marked=1; break; }
	sleep 0.1
done
check_eq "the chat connection is offloaded (conntrack carries the mark)" 1 "$marked"
sleep 1
sed -i '/id = "chat-in"/d' "$WORK/elsd.conf"
kill -HUP "$ELSD_PID"
wait $CHAT
check "the chat connection is cut after the reload" grep -qE "^echoes ([5-9]|[0-9]{2,3})$" "$WORK/chat.out"
check_not "the chat connection did not run to its end" grep -q "^echoes 150$" "$WORK/chat.out"
left=$(in_srv conntrack -L -p tcp --dport 5202 --mark 0x40000000/0x40000000 2>/dev/null | grep -c ESTABLISHED)
check_eq "the mark is cleared" 0 "$left"
wait_records "kind='flow_end' AND dport=5202 AND reason='permit_revoked'"
n=$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND dport=5202 AND reason='permit_revoked'")
check_eq "the cut flow ends as permit_revoked" 1 "$n"
# Drops are aggregated per second before they reach the file, and which side
# of the cut connection speaks first (the client's retransmission or the
# server's echo) is a race: wait for either direction of the flow.
cut="kind='drop' AND (dport=5202 OR sport=5202)"
wait_records "$cut"
n=$(sql "SELECT count(*) FROM records WHERE $cut")
check_ge "its packets are dropped after the reload" 1 "$n"

# 3. Steering rules of an older install (the connmark accept, no rule that saves the packet
# mark): the first packet elsd sends back marked returns to the queue with the bit; elsd
# judges it, says so, and offloads by conntrack updates from then on. Nothing loops, and the
# upload is still offloaded.
for ipt in iptables ip6tables; do
	for chain in INPUT OUTPUT; do
		ifopt=-i
		[[ $chain == OUTPUT ]] && ifopt=-o
		in_srv $ipt -F $chain
		in_srv $ipt -A $chain $ifopt lo -j ACCEPT
		in_srv $ipt -A $chain -m connmark --mark 0x40000000/0x40000000 -j ACCEPT
		in_srv $ipt -A $chain -j NFQUEUE --queue-num "$QUEUE"
	done
done
got=$(in_cli python3 -c '
import socket, sys
s = socket.create_connection(("'$SRV4'", 5201), timeout=10)
s.sendall(b"x" * '$SIZE'); s.shutdown(socket.SHUT_WR)
print(s.makefile().readline().strip())
')
check_eq "upload completes with rules that do not save the verdict's mark" "$SIZE" "$got"
check "elsd says the rules do not save the mark" grep -q "do not save it into the connection" "$ELSD_LOG"
bypassed=$(in_srv iptables -L INPUT -v -n -x | awk '/connmark/ {print $1}')
check_ge "the upload is offloaded by a conntrack update instead" 10 "${bypassed:-0}"

# 4. A closed offloaded connection ends when conntrack shows it closed (its refresh dump,
# every 5 s), not when conntrack destroys the entry after TIME_WAIT (120 s here); and the
# entry loses the mark, so a new connection on the same ports would be judged.
in_srv sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=120
got=$(in_cli python3 -c '
import socket, sys
s = socket.create_connection(("'$SRV4'", 5201), timeout=10)
print(s.getsockname()[1], file=sys.stderr)
s.sendall(b"x" * 65536); s.shutdown(socket.SHUT_WR)
print(s.makefile().readline().strip())
' 2>"$WORK/port4")
check_eq "a short upload completes" 65536 "$got"
port4=$(cat "$WORK/port4")
tw=0
for _ in $(seq 50); do
	in_srv conntrack -L -p tcp --sport "$port4" 2>/dev/null | grep -q TIME_WAIT && { tw=1; break; }
	sleep 0.1
done
check_eq "its conntrack entry is in TIME_WAIT" 1 "$tw"
for _ in $(seq 120); do # the next refresh dump: within 5 s, and the writer's commit
	records_exist "kind='flow_end' AND dport=5201 AND sport=$port4" && break
	sleep 0.1
done
check_eq "its flow_end is written while conntrack still holds it" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND dport=5201 AND sport=$port4 AND reason='flow_closed'")"
check_eq "... in TIME_WAIT, no longer marked" 0 \
	"$(in_srv conntrack -L -p tcp --sport "$port4" --mark 0x40000000/0x40000000 2>/dev/null | grep -c TIME_WAIT)"
check_eq "... but still there" 1 "$(in_srv conntrack -L -p tcp --sport "$port4" 2>/dev/null | grep -c TIME_WAIT)"
els_stop || fail "elsd exited non-zero"
els_finish
