#!/usr/bin/env bash
# syn_guard: els-rules puts the kernel's SYNPROXY ahead of the queue for port 443, so a flood
# of spoofed SYNs is answered with cookies and never reaches elsd, while elsd still judges
# every real connection (at the server's SYN-ACK, agent/packet/syn_guard.h). Checked with the
# rules els-rules writes: real clients connect (IPv4, IPv6) and are admitted; a deny-listed
# source completes the kernel's cookie handshake but never reaches the server; a spoofed flood
# leaves the queue nearly untouched and a client connects throughout; a port without the
# guard is queued and judged as before; `remove` takes the guard's raw chain away.
. "$(dirname "$0")/lib.sh"
RULES=$ELS_SOURCE_DIR/packaging/els-rules
N=${ELS_SYNFLOOD_N:-300000}
els_setup
BAD4=198.19.66.7
in_cli ip addr add $BAD4/32 dev eth0
in_cli ip route add 198.19.0.0/16 dev eth0
in_srv ip route add $BAD4/32 dev eth0
# The SYN-ACKs to the flood's spoofed sources die in the client namespace.
in_srv ip route add 198.18.128.0/17 via "$CLI4"
in_srv sysctl -qw net.ipv4.tcp_syncookies=1

# A server that logs the address of every connection it accepts, answers a line and closes.
bg_in "$SRV" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", 443)); s.listen(256)
with open(sys.argv[1], "w") as log:
    while True:
        c, a = s.accept(); print("accepted", a[0], flush=True, file=log)
        c.sendall(b"hello\n"); c.close()
' "$WORK/accepts"
wait_until in_srv ss -ltnH 'sport = :443' || fail "the server did not start"

els_config "$WORK/elsd.conf"
echo 'syn_guard = [ 443 ];' >>"$WORK/elsd.conf"
out=$(in_srv env ELSD="$ELSD" "$RULES" -c "$WORK/elsd.conf" -b iptables install 2>&1)
check "els-rules installs the SYN guard" grep -q "SYN guard (SYNPROXY) on ports 443" <<<"$out"
check "the raw chain takes guarded SYNs out of conntrack" \
	grep -q -- "--dports 443 .*-j CT --notrack" <<<"$(in_srv iptables -t raw -S ELSD-RAW)"
check "and it is jumped to from PREROUTING" \
	grep -q -x -- "-A PREROUTING -j ELSD-RAW" <<<"$(in_srv iptables -t raw -S PREROUTING)"
check_eq "conntrack's loose pickup is off (SYNPROXY needs it)" 0 \
	"$(in_srv cat /proc/sys/net/netfilter/nf_conntrack_tcp_loose)"
check "verify accepts the guard's rules" in_srv env ELSD="$ELSD" "$RULES" -c "$WORK/elsd.conf" verify
export ELS_RULES=$RULES # elsd watches the rules with it
els_start "$WORK/elsd.conf" || exit 1
check "elsd found the rules in place" wait_log "rules: .*steering rules present and first"

hello() { in_cli nc -w 3 "$@" 2>/dev/null | grep -q hello; }
check "a client connects over IPv4 through the guard" hello "$SRV4" 443
check "and over IPv6" hello "$SRV6" 443
# Its rule sees the SYN and the ACK of each handshake.
for ipt in iptables ip6tables; do
	synproxied=$(in_srv $ipt -nvxL ELSD-IN | awk '/SYNPROXY/ { print $1 }')
	check_ge "the kernel's SYNPROXY made the handshake ($ipt: its rule's packets)" 2 "${synproxied:-0}"
done

# Port reuse: the same client port again. SYNPROXY itself fails it while conntrack keeps the
# first connection in TIME_WAIT (120 s by default: the client's ACK meets that entry and never
# reaches SYNPROXY), so the documented remedy is a short conntrack TIME_WAIT. elsd's own flow
# is still in TIME_WAIT (10 s): the second SYN-ACK must reopen it, not meet a closed flow.
in_srv sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1
check "a connection from client port 40555" hello -p 40555 "$SRV4" 443
sleep 1.5
check "and another from the same port 1.5 s later" hello -p 40555 "$SRV4" 443

# A deny-listed source: SYNPROXY answers its SYN (it cannot know the list), but elsd refuses
# the connection at the server's SYN-ACK, so the server never accepts it.
check_not "a deny-listed source gets no answer from the server" hello -s $BAD4 "$SRV4" 443
sleep 0.5
check_not "the server never accepted a connection from it" grep -q "$BAD4" "$WORK/accepts"

# A port without the guard: its SYN is queued and judged as before (no permit for 22).
check_not "port 22 stays closed" in_cli nc -z -w 1 "$SRV4" 22

# The flood: N spoofed SYNs to 443 while a client connects over and over.
queued_before=$(in_srv awk '$1 == 0 { print $8 }' /proc/net/netfilter/nfnetlink_queue)
in_cli python3 "$ELS_SOURCE_DIR/tests/integration/synflood.py" "$SRV4" 443 "$N" >"$WORK/flood.out" &
flood=$!
ok=0 tries=0
while kill -0 "$flood" 2>/dev/null; do
	tries=$((tries + 1))
	hello "$SRV4" 443 && ok=$((ok + 1))
done
wait "$flood"
queued_after=$(in_srv awk '$1 == 0 { print $8 }' /proc/net/netfilter/nfnetlink_queue)
log "during the flood: $ok of $tries connections; packets queued: $((queued_after - queued_before)) for $N SYNs"
check_eq "the flood sent every SYN" "sent $N" "$(cat "$WORK/flood.out")"
check_ge "a client connected during the flood" 1 "$tries"
check_eq "every connection during the flood succeeded ($ok of $tries)" "$tries" "$ok"
check "the flood's SYNs stayed out of the queue (fewer than 1 in 100 queued)" \
	test $((queued_after - queued_before)) -lt $((N / 100))
check "elsd is still running" kill -0 "$ELSD_PID"
els_stop || fail "elsd exited non-zero"

adm=$(sql "SELECT count(*) FROM records WHERE kind = 'admit' AND dport = 443 AND dir = 'in' AND src IN ('$CLI4', '$CLI6')")
check_ge "the clients' connections were admitted, recorded as inbound to 443" $((4 + ok)) "$adm"
check_eq "no connection admitted from the deny-listed source" 0 \
	"$(sql "SELECT count(*) FROM records WHERE kind = 'admit' AND src = '$BAD4'")"
check_ge "its refusal is recorded as its connection to 443 (deny_list)" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind = 'drop' AND src = '$BAD4' AND dport = 443 AND reason = 'deny_list'")"
check_eq "no spoofed SYN cost a monitor row" 0 \
	"$(sql "SELECT count(*) FROM records WHERE src LIKE '198.18.1%' AND src <> '$CLI4'")"

in_srv env ELSD="$ELSD" "$RULES" -c "$WORK/elsd.conf" remove >/dev/null 2>&1
check_not "remove takes the guard's raw chain away" in_srv iptables -t raw -S ELSD-RAW
check_not "and its jump" grep -q ELSD-RAW <<<"$(in_srv iptables -t raw -S PREROUTING)"
els_finish
