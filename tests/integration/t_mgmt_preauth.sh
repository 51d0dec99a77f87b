#!/usr/bin/env bash
# Limits before authentication, tried as an attacker would: 40 plain TCP connections held
# open and reopened at once when cut, first from the admin's own address, then from four
# others, must not keep an admin out (status answered within 3 s, every time); a slowloris
# handshake (a byte every half second) is cut at handshake_timeout_s; sixteen clients sending
# 15 MiB frames at once get answers (ok or busy) and do not grow the endpoint's memory past
# buffer_mb. Meanwhile elsd keeps filtering and answering.
. "$(dirname "$0")/lib.sh"
els_setup
. "$(dirname "$0")/mgmt_lib.sh"
mgmt_pki alice:admin bob:auditor
mgmt_install_tls

CONF="$WORK/elsd.conf"
els_config "$CONF"
cat >>"$CONF" <<EOF
management = {
  listen = "$ADDR";
  ca = "tls/ca.crt"; cert = "tls/agent.crt"; key = "tls/agent.key"; crl = "tls/crl.pem";
  user = "nobody";
  max_clients = 24;       # reserved_slots: 6 by default
  handshake_timeout_s = 3;
  buffer_mb = 32;
};
EOF
els_steer
els_start "$CONF" || exit 1
EP=$(pgrep -P "$ELSD_PID" | head -1)

# flood SECONDS ADDR...: 40 connections spread over the source addresses, never speaking,
# each reopened as soon as the agent cuts it; prints how many (re)connections it made.
flood() {
	in_srv python3 - "$@" <<'EOF'
import selectors, socket, sys, time
secs, srcs = float(sys.argv[1]), sys.argv[2:]
sel = selectors.DefaultSelector()
made = 0
def opener(src):
    global made
    s = socket.socket()
    s.setblocking(False)
    s.bind((src, 0))
    try:
        s.connect(("127.0.0.1", 7443))
    except BlockingIOError:
        pass
    sel.register(s, selectors.EVENT_READ, src)
    made += 1
for i in range(40):
    opener(srcs[i % len(srcs)])
end = time.monotonic() + secs
while time.monotonic() < end:
    for key, _ in sel.select(0.1):
        try:
            data = key.fileobj.recv(1)
        except OSError:
            data = b""
        if not data:
            sel.unregister(key.fileobj)
            key.fileobj.close()
            opener(key.data)
print(made)
EOF
}

# admin_during LABEL: five admin status requests during a flood, each within 3 s
admin_during() {
	local ok=0 slow=0
	for _ in 1 2 3 4 5; do
		local t0 t1 r
		t0=$(date +%s%N)
		r=$(as alice status 2>/dev/null)
		t1=$(date +%s%N)
		[[ $(jget "$r" 'r["ok"]') == True ]] && ok=$((ok + 1))
		(((t1 - t0) / 1000000 > 3000)) && slow=$((slow + 1))
		sleep 0.3
	done
	check_eq "$1: the admin's status succeeded 5 times out of 5" 5 "$ok"
	check_eq "$1: ... each within 3 s" 0 "$slow"
}

log "flood from the admin's own address"
flood 12 127.0.0.1 >"$WORK/flood1.out" &
FLOOD=$!
BG_PIDS+=($FLOOD)
sleep 1.5
check "the flood holds connections: the agent evicts them" \
	wait_records "kind='event' AND detail LIKE 'mgmt connection evicted @127.0.0.1%'"
admin_during "flood from the admin's address"
check "filtering goes on during the flood (ping)" in_cli ping -c2 -i0.2 -W2 $SRV4
wait "$FLOOD"
check_ge "the flood reopened its cut connections (made $(cat "$WORK/flood1.out"))" 41 "$(cat "$WORK/flood1.out")"

log "flood from four other addresses"
flood 12 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 >"$WORK/flood2.out" &
FLOOD=$!
BG_PIDS+=($FLOOD)
sleep 1.5
admin_during "flood from four other addresses"
r=$(as bob status)
check_eq "an auditor gets in too" "True" "$(jget "$r" 'r["ok"]')"
wait "$FLOOD"
check_ge "the second flood reopened its cut connections" 41 "$(cat "$WORK/flood2.out")"

log "slowloris handshake"
held=$(in_srv python3 - <<'EOF'
import socket, time
s = socket.create_connection(("127.0.0.1", 7443))
hello = bytes.fromhex("16030100c8010000c40303") + b"\0" * 200
t0 = time.monotonic()
try:
    for b in hello:
        s.sendall(bytes([b]))
        time.sleep(0.5)
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                break
        except BlockingIOError:
            pass
        s.setblocking(True)
except OSError:
    pass
print("%.1f" % (time.monotonic() - t0))
EOF
)
check "a handshake sent a byte every 0.5 s is cut at handshake_timeout_s = 3 s (after $held s)" \
	python3 -c "import sys; sys.exit(not (2.5 <= float(sys.argv[1]) <= 5))" "$held"
check "the cut handshake is in the monitor" \
	wait_records "kind='event' AND detail LIKE 'mgmt handshake refused @127.0.0.1: timed out%'"

log "large frames from many clients at once"
rss() { awk -v k="$2:" '$1 == k { print int($2 / 1024) }' "/proc/$1/status"; }
before=$(rss "$EP" VmRSS)
in_srv python3 - "$ADDR" "$TLS/ca.crt" "$CA/consoles/alice.crt" "$CA/consoles/alice.key" \
	"$ELS_SOURCE_DIR/tests/integration" >"$WORK/big.out" <<'EOF'
import select, socket, ssl, struct, sys, threading
addr, ca, cert, key = sys.argv[1:5]
sys.path.insert(0, sys.argv[5])
from mgmt_frame import read_frame  # noqa: E402 (the framing, mgmt_frame.py)
N, SIZE = 16, 15 << 20
body = b'{"v":1,"id":1,"cmd":"status"}' + b" " * (SIZE - 29)
ready = threading.Barrier(N)
out = []
def one(i):
    # each from its own address: the per-address caps are not what this part tests
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection(("127.0.0.1", 7443), timeout=60,
                                       source_address=("127.0.0.%d" % (10 + i), 0))
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall(struct.pack(">I", len(body)))
    except Exception as e:
        out.append("nohandshake:%s" % e)
        s = None
    try:
        ready.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass
    if s is None:
        return
    try:
        for off in range(0, len(body), 1 << 16):
            if select.select([s], [], [], 0)[0] or s.pending():
                break  # answered before the body: refused
            s.sendall(body[off:off + (1 << 16)])
        r = read_frame(s)
        out.append("ok" if r.get("ok") else r["error"]["code"])
    except Exception as e:
        out.append("noanswer:%s" % e)
ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]
for t in ts: t.start()
for t in ts: t.join()
print(" ".join(sorted(out)))
EOF
hwm=$(rss "$EP" VmHWM)
answers=$(cat "$WORK/big.out")
log "answers: $answers; endpoint VmRSS before ${before} MiB, peak ${hwm} MiB"
check_eq "every one of the 16 clients got an answer (ok or busy)" 16 \
	"$(tr ' ' '\n' <<<"$answers" | grep -cE '^(ok|busy)$')"
check "some were refused busy (16 x 15 MiB is over buffer_mb = 32)" grep -q busy <<<"$answers"
check "some were served" grep -q ok <<<"$answers"
# Uncapped, 16 x 15 MiB would be 240 MiB. The cap holds 32 MiB of frames; the slack covers
# one frame being parsed and what ASan's quarantine keeps of freed buffers.
# Under ASan the quarantine (256 MiB by default; the exec'd endpoint gets no ASAN_OPTIONS)
# keeps freed frames resident, so the peak says nothing about the cap there: the check runs on
# the plain build (CI runs both) and is left out, saying so, on a sanitizer build.
if ldd "$ELSD" 2>/dev/null | grep -q libasan; then
	log "ASan build: the endpoint's peak memory is not checked (quarantine); see the plain run"
else
	check "the endpoint's peak memory grew by less than 2 x buffer_mb + 40 MiB ($before -> $hwm MiB)" \
		test $((hwm - before)) -lt 104
fi
check "busy refusals are in the monitor" \
	wait_records "kind='event' AND detail LIKE 'mgmt alice/admin@127.0.0.% ?: busy (buffer_mb 32 reached)%'"

check "filtering goes on after all of it (ping)" in_cli ping -c1 -W2 $SRV4
r=$(as alice status)
check_eq "status is answered after all of it" "True" "$(jget "$r" 'r["ok"]')"
check_eq "the same endpoint process served throughout" "$EP" "$(pgrep -P "$ELSD_PID" | head -1)"
els_stop
els_finish
