#!/usr/bin/env bash
# The management endpoint under bad clients: certificates that must fail the handshake (none,
# another CA, revoked, expired, TLS 1.2; checked with the test's own client and with
# `openssl s_client`), malformed and oversized frames, unknown commands and versions, slow
# clients and a connection flood beyond max_clients. None of it may stall the packet path or
# a well-behaved console on another connection, a legitimate request still succeeds after,
# a CRL refreshed with SIGHUP takes effect, and every refusal is in the monitor.
. "$(dirname "$0")/lib.sh"
els_setup
. "$(dirname "$0")/mgmt_lib.sh"
OTHER="$WORK/other-ca"
mgmt_pki alice:admin bob:auditor mallory:admin
{
	"$PKI" init "$OTHER" && "$PKI" console "$OTHER" eve --role admin &&
		"$PKI" revoke "$CA" "$CA/consoles/mallory.crt"
} >/dev/null || { echo "els-pki failed"; exit 1; }
# An expired console certificate, signed by the real CA: els-pki cannot backdate, openssl can.
mgmt_console_dated old 20200101000000Z 20200201000000Z ||
	fail "could not create the expired certificate"
mgmt_install_tls
# frame JSON: the hex of one protocol frame
frame() { python3 -c 'import sys,struct; b=sys.argv[1].encode(); print((struct.pack(">I",len(b))+b).hex())' "$1"; }

CONF="$WORK/elsd.conf"
els_config "$CONF"
cat >>"$CONF" <<EOF
management = {
  listen = "$ADDR";
  ca = "tls/ca.crt"; cert = "tls/agent.crt"; key = "tls/agent.key"; crl = "tls/crl.pem";
  max_clients = 4;
  timeout_s = 2;
};
EOF

# The key check comes first: a group-readable agent key stops the start, naming the file.
chmod 0640 "$TLS/agent.key"
if ip netns exec "$SRV" "$ELSD" -c "$CONF" >"$WORK/keycheck.log" 2>&1; then
	fail "elsd starts with a group-readable agent key"
else
	check "a group-readable agent key is refused, naming the file" \
		grep -q "$TLS/agent.key.*chmod 600" "$WORK/keycheck.log"
fi
chmod 0600 "$TLS/agent.key"

els_steer
els_listen "$SRV" 443 || fail "listener on 443 did not start"
els_start "$CONF" || exit 1

r=$(as alice status)
check_eq "a valid admin certificate is accepted" "True" "$(jget "$r" 'r["ok"]')"
client - - status >/dev/null 2>&1
check_eq "no client certificate: refused at the handshake" 2 $?
client "$OTHER/consoles/eve.crt" "$OTHER/consoles/eve.key" status >/dev/null 2>&1
check_eq "a certificate from another CA: refused at the handshake" 2 $?
as mallory status >/dev/null 2>&1
check_eq "a revoked certificate: refused at the handshake" 2 $?
client "$WORK/old.crt" "$WORK/old.key" status >/dev/null 2>&1
check_eq "an expired certificate: refused at the handshake" 2 $?

# openssl s_client as an independent client: TLS 1.3 + a valid certificate gets an answer,
# TLS 1.2 and the revoked certificate do not.
sclient() {
	frame '{"v":1,"id":9,"cmd":"status"}' | xxd -r -p |
		in_srv timeout 5 openssl s_client -connect "$ADDR" -CAfile "$TLS/ca.crt" \
			-verify_return_error -verify_ip 127.0.0.1 -ign_eof -quiet "$@" 2>&1 | tr -d '\0'
}
check "s_client with TLS 1.3 and a valid certificate gets an answer" \
	bash -c "$(declare -f frame sclient in_srv); SRV=$SRV ADDR=$ADDR TLS=$TLS; sclient -tls1_3 -cert $CA/consoles/alice.crt -key $CA/consoles/alice.key | grep -q '\"ok\":true'"
check_not "s_client with TLS 1.2 is refused" \
	bash -c "$(declare -f frame sclient in_srv); SRV=$SRV ADDR=$ADDR TLS=$TLS; sclient -tls1_2 -cert $CA/consoles/alice.crt -key $CA/consoles/alice.key | grep -q '\"ok\"'"
check_not "s_client with the revoked certificate gets no answer" \
	bash -c "$(declare -f frame sclient in_srv); SRV=$SRV ADDR=$ADDR TLS=$TLS; sclient -tls1_3 -cert $CA/consoles/mallory.crt -key $CA/consoles/mallory.key | grep -q '\"ok\"'"

# A well-behaved console on its own connection for the whole bad-client phase.
in_srv python3 "$CLIENT" "$ADDR" "$TLS/ca.crt" "$CA/consoles/bob.crt" "$CA/consoles/bob.key" \
	--repeat 20 0.3 >"$WORK/steady.out" 2>&1 &
STEADY=$!
BG_PIDS+=($STEADY)

out=$(as alice --raw "$(frame '{"v":1,"id":1,"cmd":"nope"}')$(frame '{"v":2,"id":2,"cmd":"status"}')$(frame '{"v":1,"id":3,"cmd":"status","args":{"bogus":1}}')$(frame 'not json{')$(frame '{"v":1,"id":5,"cmd":"status"}')" 2>/dev/null)
codes=$(while read -r l; do jget "$l" 'r["error"]["code"] if not r["ok"] else "ok"'; done <<<"$out" | tr '\n' ' ')
check_eq "unknown command, other version, unknown argument, bad JSON, then a good request on one connection" \
	"unknown_command unsupported_version bad_request bad_request ok " "$codes"
out=$(as alice --raw "01000001$(printf '%0100d' 0)" 2>/dev/null)
check_eq "an oversized frame is answered frame_too_large and the connection closed" \
	frame_too_large "$(jget "$out" 'r["error"]["code"]')"
# Random bytes: a length prefix of 0xff.. is over the cap, so the agent must
# answer at once (an answer, not the silent cut at timeout_s) and close; the
# same bytes inside a well-formed frame are bad JSON.
noise=$(head -c 3000 /dev/urandom | od -An -tx1 | tr -d ' \n')
out=$(as alice --raw "ff${noise}" 2>"$WORK/raw.err" | tail -n1)
check_eq "random bytes are answered frame_too_large" frame_too_large "$(jget "$out" 'r["error"]["code"]')"
check "... and the agent closes the connection (not the client's own time-out)" \
	grep -q 'connection closed' "$WORK/raw.err"
out=$(as alice --raw "$(printf '%08x' 3000)${noise}$(frame '{"v":1,"id":9,"cmd":"status"}')" 2>/dev/null)
codes=$(while read -r l; do jget "$l" 'r["error"]["code"] if not r["ok"] else "ok"'; done <<<"$out" | tr '\n' ' ')
check_eq "a frame of random bytes is bad_request and the next request on the connection still answered" \
	"bad_request ok " "$codes"
in_srv timeout 5 bash -c "head -c 5000 /dev/urandom >/dev/tcp/127.0.0.1/7443" 2>/dev/null
held=$(as alice --hold 10)
check "a silent client is cut after timeout_s (2 s): $held" \
	python3 -c "import sys; k,t=sys.argv[1].split(); sys.exit(not (k=='closed' and 1.5 <= float(t) < 4))" "$held"

# 1,000 connections opened at once that never speak, far beyond max_clients = 4, while real
# traffic flows and the steady console above keeps asking.
bg_in "$SRV" python3 -c '
import resource, socket, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
s = []
for _ in range(1000):
    try: s.append(socket.create_connection(("127.0.0.1", 7443), timeout=2))
    except OSError: pass
time.sleep(4)'
sleep 0.3
check "the packet path works during the 1,000-connection flood (ping)" in_cli ping -c3 -i0.2 -W2 $SRV4
check "the packet path works during the connection flood (TCP 443)" \
	in_cli timeout 3 bash -c "exec 3<>/dev/tcp/$SRV4/443 && head -c5 <&3 | grep -q hello"
wait "${BG_PIDS[-1]}" 2>/dev/null # the flood client lets go of its connections
sleep 0.5
r=$(as alice status)
check_eq "a legitimate request succeeds after the flood" "True" "$(jget "$r" 'r["ok"]')"
wait "$STEADY"
check_eq "the steady console was answered every time through all of it" 20 "$(cat "$WORK/steady.out")"

# CRL refresh: revoke bob, install the new CRL, SIGHUP.
"$PKI" revoke "$CA" "$CA/consoles/bob.crt" >/dev/null 2>&1
install -m 0644 "$CA/crl.pem" "$TLS/crl.pem"
kill -HUP "$ELSD_PID"
sleep 1
as bob status >/dev/null 2>&1
check_eq "a certificate revoked by a CRL refreshed with SIGHUP is refused" 2 $?
r=$(as alice status)
check_eq "others still get in after the CRL refresh" "True" "$(jget "$r" 'r["ok"]')"

# The endpoint process dies (kill -9): filtering goes on, and elsd starts another.
ep=$(pgrep -P "$ELSD_PID" | head -1)
check "the endpoint runs as a child process of elsd" test -n "$ep"
kill -9 "$ep"
sleep 0.3
check "the packet path works while the endpoint is down" in_cli ping -c1 -W2 $SRV4
r=
for _ in $(seq 50); do r=$(as alice status 2>/dev/null) && break; sleep 0.2; done
check_eq "a console is answered again once elsd has started the endpoint again" \
	"True" "$(jget "$r" 'r["ok"]')"
new=$(pgrep -P "$ELSD_PID" | head -1)
check "... by a new endpoint process ($ep -> $new)" test -n "$new" -a "$new" != "$ep"
check "the log says the endpoint was started again" \
	grep -q "management: endpoint started again" "$ELSD_LOG"
as bob status >/dev/null 2>&1
check_eq "the new endpoint reads the current CRL: bob is still refused" 2 $?

els_stop
check "handshake refusals are alerted" \
	grep -q 'alert: event=mgmt_refused detail="mgmt handshake refused @127.0.0.1' "$ELSD_LOG"
check "refused requests are alerted with the identity" \
	grep -qE "alert: event=mgmt_refused detail=\"mgmt alice/admin@127.0.0.1[^ ]* nope: unknown_command\"" "$ELSD_LOG"
check_ge "handshake refusals are in the monitor" 4 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt handshake refused @127.0.0.1%'")"
check_ge "the revoked certificate's refusal says why" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt handshake refused%revoked%'")"
check_ge "connections over max_clients are in the monitor" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE '%max_clients%'")"
check_ge "protocol refusals carry the identity" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt alice/admin@127.0.0.1 nope: unknown_command%'")"
check_ge "the endpoint's death is in the monitor" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'the endpoint process%'")"
check_ge "and its new start" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail = 'management endpoint started again'")"
check_not "the CRL reload is no refusal: not alerted as one" \
	grep -q 'event=mgmt_refused detail="mgmt: CRL reloaded' "$ELSD_LOG"
check_ge "the CRL reload is in the monitor" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail = 'mgmt: CRL reloaded'")"
els_finish
