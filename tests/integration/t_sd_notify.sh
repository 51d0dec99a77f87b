#!/usr/bin/env bash
# elsd speaks systemd's notify protocol: READY=1 once its queue is bound and the policy
# loaded, STATUS= with the generation, WATCHDOG=1 at half of WATCHDOG_USEC while its worker
# lives, RELOADING=1/READY=1 around a SIGHUP reload (STATUS= then gives the last reload's
# result), STOPPING=1 on SIGTERM. The listener is a
# plain unix datagram socket, as systemd's is.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
els_config "$WORK/elsd.conf"
SOCK=$WORK/notify.sock
MSGS=$WORK/notify.log
bg_in "$SRV" python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        m=s.recv(4096).decode()
        out.write(m.replace("\n", "|") + "\n")
' "$SOCK" "$MSGS"
for _ in $(seq 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=400000 els_start "$WORK/elsd.conf" || exit 1
sleep 1.2
check "READY=1 with a STATUS naming the generation" grep -q "^READY=1|STATUS=filtering queues 0-0, generation 1|MAINPID=$ELSD_PID" "$MSGS"
n=$(grep -c "^WATCHDOG=1" "$MSGS")
check_ge "WATCHDOG=1 about every 200 ms while the worker lives" 4 "$n"
kill -HUP "$ELSD_PID"
for _ in $(seq 30); do grep -q "generation 2" "$MSGS" && break; sleep 0.1; done
check "SIGHUP brackets the reload with RELOADING=1 and READY=1" \
	grep -A1 -q "^RELOADING=1" "$MSGS"
check "READY after reload reports generation 2" grep -q "^READY=1|STATUS=filtering, generation 2" "$MSGS"
check "... and that the last reload was ok" \
	grep -Eq "^READY=1\|STATUS=filtering, generation 2; last reload ok at [0-9T:-]+Z$" "$MSGS"
# A rejected reload: STATUS= says so, with the file and line.
cp "$WORK/elsd.conf" "$WORK/good.conf"
echo 'chain = ;' >>"$WORK/elsd.conf"
kill -HUP "$ELSD_PID"
for _ in $(seq 30); do grep -q "FAILED" "$MSGS" && break; sleep 0.1; done
check "a rejected reload: STATUS= says FAILED with FILE:LINE" grep -Eq \
	"^READY=1\|STATUS=filtering, generation 2; last reload FAILED at [0-9T:-]+Z: $WORK/elsd.conf:[0-9]+: " \
	"$MSGS"
cp "$WORK/good.conf" "$WORK/elsd.conf"
els_stop || fail "elsd exited non-zero"
sleep 0.2
check "STOPPING=1 on SIGTERM" grep -q "^STOPPING=1" "$MSGS"
# A WATCHDOG_PID for another process means the watchdog is not ours.
: >"$MSGS"
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=200000 WATCHDOG_PID=1 els_start "$WORK/elsd.conf" || exit 1
sleep 0.8
els_stop
check_eq "no WATCHDOG=1 when WATCHDOG_PID names another process" 0 "$(grep -c '^WATCHDOG=1' "$MSGS")"
els_finish
