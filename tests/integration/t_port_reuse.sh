#!/usr/bin/env bash
# A client reconnects from the ports of a connection the server still holds (its reset never
# arrived, and a forged out-of-window RST made elsd's flow look closed). The server answers
# the new SYN with a challenge ACK (RFC 5961 4.2); elsd must let that bare ACK through, so
# the client's RST clears the stale connection and its SYN, resent at once, connects. Were
# the ACK dropped (as bad_tcp_transition, which it was), the stale connection would stay and
# every retransmitted SYN would meet it again: the connect would not complete.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
els_config "$WORK/elsd.conf"
els_start "$WORK/elsd.conf" || exit 1

SPORT=40123
# The server accepts and holds every connection (never closes), counting them.
bg_in "$SRV" python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("'"$SRV4"'", 443)); s.listen(16)
held = []
with open(sys.argv[1], "w") as log:
    while True:
        c, a = s.accept(); held.append(c); print("accepted", a[1], flush=True, file=log)
' "$WORK/accepts"
sleep 0.5

# 1. The first connection, from SPORT. Its end is a reset that a rule of the client's own
# drops (the handshake has no RST, so the rule is in place from the start), so the server
# keeps the connection open.
in_cli iptables -A OUTPUT -p tcp --dport 443 --tcp-flags RST,ACK RST,ACK -j DROP
in_cli python3 -c '
import socket, struct, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("'"$CLI4"'", '$SPORT')); s.connect(("'"$SRV4"'", 443)); time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
'
sleep 0.2
check "the first connection was accepted" grep -q "accepted $SPORT" "$WORK/accepts"
# 2. A forged RST from the same ports, far out of the server's window: elsd (which does not
# track sequence numbers) takes the flow as closed; the server ignores it.
in_cli hping3 -R -s $SPORT -k -p 443 -M 1 -c 1 "$SRV4" >/dev/null 2>&1
in_cli iptables -D OUTPUT -p tcp --dport 443 --tcp-flags RST,ACK RST,ACK -j DROP
sleep 0.3
n=$(in_srv ss -Htn state established "( sport = :443 and dport = :$SPORT )" | wc -l)
check "the server still holds the first connection" test "$n" = 1

# 3. The reconnect from the same ports, timed.
took=$(in_cli python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("'"$CLI4"'", '$SPORT')); s.settimeout(6); t = time.monotonic()
try:
    s.connect(("'"$SRV4"'", 443)); print(round(time.monotonic() - t, 3))
except OSError as e:
    print("failed", e)
')
echo "# reconnect from port $SPORT: $took"
# Without the challenge ACK the connect never completes (the stale connection outlives every
# retransmitted SYN); with it, it takes milliseconds. Only completion is checked: a time limit
# would be a timing test on a shared machine.
check "the reconnect from the same ports completes" python3 -c "float('$took')"
sleep 0.3
check "the server accepted the reconnect" test "$(grep -c "accepted $SPORT" "$WORK/accepts")" = 2
check "elsd is still running" kill -0 "$ELSD_PID"
els_stop
n=$(sql "SELECT count(*) FROM records WHERE reason = 'bad_tcp_transition'")
check "no packet of the reconnect was dropped as bad_tcp_transition" test "$n" = 0
n=$(sql "SELECT count(*) FROM records WHERE kind = 'admit' AND sport = $SPORT AND dport = 443")
check_ge "both connections were admitted" 2 "$n"
els_finish
