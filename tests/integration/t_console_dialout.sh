#!/usr/bin/env bash
# elsd dials its console (docs/console-protocol.md), against a console of the test's own
# (console_peer.py: real TLS 1.3, real framing) and real NFQUEUE. The agent sits behind a NAT
# namespace that the console cannot route to, and has no listening management port: it still
# says hello (with its state) and heartbeats, and a policy.apply sent over its own outbound
# connection changes what real traffic it admits, recorded under the console user's name.
# A console whose certificate fails (another CA, revoked, expired, no console role, a name
# that does not match, TLS 1.2) gets nothing from the agent, which keeps retrying with back-off
# while it goes on filtering; a console that goes away and comes back is reconnected.
. "$(dirname "$0")/lib.sh"
els_require
RTR="$ELS_TAG-rtr"
cleanup() {
	els_cleanup
	ip netns pids "$RTR" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$RTR" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# agent (SRV, 198.19.5.2) -- NAT router (RTR) -- console (CLI, 198.18.7.2)
AG4=198.19.5.2 RIN4=198.19.5.1 ROUT4=198.18.7.1 CON4=198.18.7.2 PORT=7444
ip netns add "$CLI" && ip netns add "$SRV" && ip netns add "$RTR" || exit 1
ip link add "$ELS_TAG-a" netns "$SRV" type veth peer name "$ELS_TAG-ri" netns "$RTR" || exit 1
ip link add "$ELS_TAG-c" netns "$CLI" type veth peer name "$ELS_TAG-ro" netns "$RTR" || exit 1
for ns in "$CLI" "$SRV" "$RTR"; do ip netns exec "$ns" ip link set lo up; done
in_srv ip link set "$ELS_TAG-a" name eth0
in_cli ip link set "$ELS_TAG-c" name eth0
in_srv ip addr add $AG4/24 dev eth0 && in_srv ip link set eth0 up
in_srv ip route add default via $RIN4
in_cli ip addr add $CON4/24 dev eth0 && in_cli ip link set eth0 up
ip netns exec "$RTR" ip addr add $RIN4/24 dev "$ELS_TAG-ri"
ip netns exec "$RTR" ip addr add $ROUT4/24 dev "$ELS_TAG-ro"
ip netns exec "$RTR" ip link set "$ELS_TAG-ri" up
ip netns exec "$RTR" ip link set "$ELS_TAG-ro" up
ip netns exec "$RTR" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$RTR" iptables -t nat -A POSTROUTING -o "$ELS_TAG-ro" -j MASQUERADE

PKI="$ELS_SOURCE_DIR/pki/els-pki"
PEER="$ELS_SOURCE_DIR/tests/integration/console_peer.py"
CA="$WORK/ca" OTHER="$WORK/other" TLS="$WORK/tls"
log "creating the PKI"
{
	"$PKI" init "$CA" && "$PKI" init "$OTHER" &&
		"$PKI" agent "$CA" agent1 --host agent1.test &&
		"$PKI" console-server "$CA" console-1 --host console.test --ip $CON4 &&
		"$PKI" console-server "$CA" revoked --host console.test --ip $CON4 &&
		"$PKI" console-server "$CA" elsewhere --host other.test --ip 198.18.7.99 &&
		"$PKI" console-server "$OTHER" foreign --host console.test --ip $CON4 &&
		"$PKI" agent "$CA" impostor --host console.test --ip $CON4 &&
		"$PKI" revoke "$CA" "$CA/servers/revoked.crt"
} >/dev/null || { echo "els-pki failed"; exit 1; }
# An expired console-server certificate of the real CA (els-pki cannot backdate; openssl can).
printf '[ ext ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:%s, URI:els:role:console\n' $CON4 >"$WORK/old.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/OU=console/CN=old" \
	-keyout "$WORK/old.key" -out "$WORK/old.csr" 2>/dev/null &&
	ELS_PKI_DIR="$CA" openssl ca -batch -notext -config "$CA/openssl.cnf" \
		-startdate 20200101000000Z -enddate 20200201000000Z -extfile "$WORK/old.ext" \
		-extensions ext -in "$WORK/old.csr" -out "$WORK/old.crt" >/dev/null 2>&1 ||
	fail "could not create the expired certificate"
mkdir -m 0700 "$TLS"
install -m 0644 "$CA/ca.crt" "$TLS/ca.crt"
install -m 0644 "$CA/crl.pem" "$TLS/crl.pem"
install -m 0644 "$CA/agents/agent1.crt" "$TLS/agent.crt"
install -m 0600 "$CA/agents/agent1.key" "$TLS/agent.key"

# The agent's policy admits its own connection to the console (outbound tcp/7444).
OUT_PERMIT='{ id = "console-out"; dir = "out"; proto = "tcp"; remote_ports = [ 7444 ]; },'
CONF="$WORK/elsd.conf"
els_config "$CONF" "s|{ id = \"https-in\";|$OUT_PERMIT\n    &|"
cat >>"$CONF" <<EOF
agent_id = "agent1";
console = {
  address = "$CON4:$PORT";
  ca = "tls/ca.crt"; cert = "tls/agent.crt"; key = "tls/agent.key"; crl = "tls/crl.pem";
  group = "web";
  heartbeat_s = 1;
};
management = { user = "nobody"; timeout_s = 5; };
EOF
els_policy_doc "$WORK/open8080.conf" \
	"s|{ id = \"https-in\";|$OUT_PERMIT\n    { id = \"web-8080\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8080 ]; },\n    &|"
doc=$(python3 -c 'import json,sys; print(json.dumps({"text": open(sys.argv[1]).read()}))' "$WORK/open8080.conf")
req() { # req FILE ID CMD ARGS_JSON ON_BEHALF_JSON|-
	python3 - "$@" <<'PY'
import json, sys
f, rid, cmd, args, ob = sys.argv[1:6]
r = {"v": 1, "id": int(rid), "cmd": cmd, "args": json.loads(args)}
if ob != "-":
    r["on_behalf_of"] = json.loads(ob)
json.dump(r, open(f, "w"))
PY
}
req "$WORK/r1.json" 1 policy.apply "$doc" '{"identity":"bob","role":"auditor"}'
req "$WORK/r2.json" 2 policy.apply "$doc" '{"identity":"alice","role":"admin"}'
req "$WORK/r3.json" 3 status '{}' -

# console CERT [ARGS...]: (re)starts the console in CLI with servers/CERT.crt or a path
CPID=
console() {
	local crt=$1 key
	shift
	[[ -f $crt ]] || crt=$CA/servers/$crt.crt
	key=${crt%.crt}.key
	[[ -n $CPID ]] && { kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; }
	CLOG=$WORK/console-$RANDOM.log
	ip netns exec "$CLI" python3 "$PEER" "$CON4:$PORT" "$CA/ca.crt" "$crt" "$key" "$CLOG" "$@" \
		>/dev/null 2>&1 &
	CPID=$!
	BG_PIDS+=("$CPID")
	wait_until grep -q listening "$CLOG"
}
count() { grep -c "$1" "$CLOG" 2>/dev/null || true; }
frames() { # frames TYPE: the bodies of frames of that type ("response": answers)
	python3 - "$CLOG" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    b = e.get("body")
    if e["ev"] == "frame" and (b.get("type") == sys.argv[2] or (sys.argv[2] == "response" and "ok" in b)):
        print(json.dumps(b))
PY
}
jget() { python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
wait_long() { for _ in $(seq "$1"); do "${@:2}" && return 0; sleep 0.2; done; return 1; }

console console-1 --request "$WORK/r1.json" --request "$WORK/r2.json" --request "$WORK/r3.json"
els_steer
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || exit 1
tcp8080() { in_cli timeout 3 bash -c "exec 3<>/dev/tcp/$AG4/8080 && head -c5 <&3" 2>/dev/null | grep -q hello; }

# els-rules, with this config, steers everything and opens no management port (in a namespace
# of its own, so the test's steering stays as it is).
RNS="$ELS_TAG-rules"
ip netns add "$RNS" && ip netns exec "$RNS" ip link set lo up
ELSD="$ELSD" ELS_RULES_STATE="$WORK/rules-state" ip netns exec "$RNS" \
	"$ELS_SOURCE_DIR/packaging/els-rules" -c "$CONF" install >"$WORK/rules.out" 2>&1
rules=$(ELSD="$ELSD" ELS_RULES_STATE="$WORK/rules-state" ip netns exec "$RNS" \
	"$ELS_SOURCE_DIR/packaging/els-rules" -c "$CONF" status 2>&1)
ip netns del "$RNS"
check "els-rules installs the steering for this config" grep -q "elsd: queues" <<<"$rules"
# (with management.listen = "0.0.0.0:7443" the same commands say "management port 7443
# accepted" and list four "elsd: management" rules)
check_not "els-rules opens no management port (no management.listen)" \
	grep -qE "elsd: management|management port" "$WORK/rules.out" - <<<"$rules"
check_not "elsd (and its endpoint) listen on no TCP port" \
	bash -c "ip netns exec '$SRV' ss -ltnpH | grep -q elsd"
check "the agent dials out and says hello" wait_long 50 grep -q '"type": "hello"' "$CLOG"
# The endpoint stays confined: the main process connected the socket and passed it over.
MPID=$(pgrep -P "$ELSD_PID" | head -n1)
if [[ -n $MPID ]]; then
	st=/proc/$MPID/status
	check_eq "endpoint: seccomp filter on" 2 "$(awk '/^Seccomp:/ {print $2}' "$st")"
	check_eq "endpoint: no_new_privs" 1 "$(awk '/^NoNewPrivs:/ {print $2}' "$st")"
	check_eq "endpoint: no effective capabilities" 0000000000000000 "$(awk '/^CapEff:/ {print $2}' "$st")"
	check_eq "endpoint: stdio, the socketpair and the console's socket only" 5 \
		"$(ls /proc/"$MPID"/fd | wc -l)"
	check "endpoint: the console connection is a TCP socket it was given" \
		bash -c "ip netns exec '$SRV' ss -tnpH state established | grep -q 'pid=$MPID,'"
else
	fail "no management endpoint process found"
fi
hello=$(frames hello | head -n1)
check_eq "hello: v 1" 1 "$(jget "$hello" 'r["v"]')"
check_eq "hello: agent_id" agent1 "$(jget "$hello" 'r["agent_id"]')"
check_eq "hello: group from console.group" web "$(jget "$hello" 'r["group"]')"
check_eq "hello: the running policy hash" "$(sha256sum "$CONF" | cut -d' ' -f1)" \
	"$(jget "$hello" 'r["policy_sha256"]')"
check_eq "hello: not yet managed" False "$(jget "$hello" 'r["managed"]')"
check_eq "hello: listeners name port 8080" True \
	"$(jget "$hello" 'any(l["port"]==8080 and l["proto"]=="tcp" for l in r["listeners"])')"
check_eq "hello: permits list https-in" True "$(jget "$hello" 'any(p["id"]=="https-in" for p in r["permits"])')"
check_eq "hello: counters" "['admitted', 'dropped']" "$(jget "$hello" 'sorted(r["counters"])')"
check "hello: time is UTC ISO 8601" grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' \
	<<<"$(jget "$hello" 'r["time"]')"
check_eq "the console saw the agent's certificate CN" agent1 \
	"$(python3 -c 'import json,sys; print([json.loads(l)["agent_cn"] for l in open(sys.argv[1]) if "tls_ok" in l][0])' "$CLOG")"
heartbeats_at_least() { (($(frames heartbeat | wc -l) >= $1)); }
check "heartbeats follow every heartbeat_s" wait_long 25 heartbeats_at_least 2
check_not "the console cannot reach the agent behind the NAT" \
	in_cli timeout 2 bash -c "exec 3<>/dev/tcp/$AG4/8080"

check "three answers come back over the agent's connection" wait_long 50 \
	bash -c "(( \$(grep -c '\"ok\"' '$CLOG') >= 3 ))"
r1=$(frames response | sed -n 1p) r2=$(frames response | sed -n 2p) r3=$(frames response | sed -n 3p)
check_eq "policy.apply on behalf of an auditor: forbidden" forbidden "$(jget "$r1" 'r["error"]["code"]')"
check_eq "policy.apply on behalf of an admin: ok" True "$(jget "$r2" 'r["ok"]')"
check_eq "status without on_behalf_of runs as auditor" auditor "$(jget "$r3" 'r["result"]["client"]["role"]')"
check_eq "status names the console" "? via console-1" "$(jget "$r3" 'r["result"]["client"]["identity"]')"
check "the applied policy opens port 8080 to real traffic (from the router's side)" \
	ip netns exec "$RTR" timeout 3 bash -c "exec 3<>/dev/tcp/$AG4/8080 && head -c5 <&3"
check "the monitor names the console user for the apply" wait_records \
	"kind = 'event' AND handler = 'mgmt' AND detail LIKE 'mgmt alice via console-1/admin@$CON4 policy.apply: ok gen %'"
check "the monitor records the auditor's refusal" wait_records \
	"kind = 'event' AND handler = 'mgmt' AND detail LIKE 'mgmt bob via console-1/auditor@$CON4 policy.apply: forbidden%'"
newsha=$(sha256sum "$WORK/open8080.conf" | cut -d' ' -f1)
check "a heartbeat after the apply carries the new policy, managed" wait_long 25 \
	bash -c "grep -q '\"policy_sha256\": \"$newsha\", \"policy_generation\": [0-9]*, \"managed\": true' '$CLOG' || grep '$newsha' '$CLOG' | grep -q '\"managed\": true'"

# The console goes away and comes back: the agent reconnects by itself.
kill "$CPID"; wait "$CPID" 2>/dev/null; CPID=
check "the agent notices the loss" wait_long 50 grep -q "console: $CON4:$PORT: .*next try in" "$ELSD_LOG"
console console-1 --request "$WORK/r3.json"
check "the agent reconnects and says hello again" wait_long 100 grep -q '"type": "hello"' "$CLOG"
check "and answers the console on the new connection" wait_long 25 grep -q '"ok": true' "$CLOG"

# The console vanishes without closing anything (the router drops every packet): the agent's
# unacknowledged heartbeats end the connection within 3 heartbeat intervals (TCP_USER_TIMEOUT,
# and the endpoint's own stall check), and it connects again once the path is back.
nloss=$(grep -c "next try in" "$ELSD_LOG")
t0=$SECONDS
ip netns exec "$RTR" iptables -I FORWARD -j DROP
check "a silently vanished console is noticed" wait_long 75 \
	bash -c "(( \$(grep -c 'next try in' '$ELSD_LOG') > $nloss ))"
check "... within a few heartbeat intervals (took $((SECONDS - t0)) s, heartbeat_s 1)" \
	test $((SECONDS - t0)) -le 10
ip netns exec "$RTR" iptables -D FORWARD -j DROP
nconn=$(grep -c "console: connected to" "$ELSD_LOG")
check "and the agent connects again once the path is back" wait_long 100 \
	bash -c "(( \$(grep -c 'console: connected to' '$ELSD_LOG') > $nconn ))"

# The refusal matrix: the agent checks the console's certificate and says nothing to a bad one.
# Between cases the good console takes the connection back, which resets the back-off, so each
# case is tried within seconds.
good_again() {
	console console-1
	wait_long 100 grep -q '"type": "hello"' "$CLOG" || fail "the good console was not reconnected"
}
refused() { # refused NAME REASON CERT [ARGS...]
	local name=$1 reason=$2 before
	shift 2
	before=$(grep -cE "$CON4:$PORT: .*$reason" "$ELSD_LOG")
	console "$@"
	if wait_long 100 bash -c "(( \$(grep -cE '$CON4:$PORT: .*$reason' '$ELSD_LOG') > $before ))"; then
		pass "$name: refused ($reason)"
	else
		fail "$name: refused ($reason)"
		grep 'console:' "$ELSD_LOG" | tail -n 5 | sed 's/^/#   /'
	fi
	check_eq "$name: no hello reached it" 0 "$(count '"hello"')"
	check "$name: filtering goes on meanwhile" ip netns exec "$RTR" timeout 3 bash -c "exec 3<>/dev/tcp/$AG4/8080 && head -c5 <&3"
}
refused "a console of another CA" "unable to get local issuer certificate" "$OTHER/servers/foreign.crt"
good_again
refused "a revoked console" "certificate revoked" revoked
good_again
refused "an expired console" "certificate has expired" "$WORK/old.crt"
good_again
refused "a certificate without the console role (an agent's)" "has no role console" "$CA/agents/impostor.crt"
good_again
refused "a console whose name does not match the address" "IP address mismatch" elsewhere
good_again
refused "a TLS 1.2 console" "(unsupported protocol|protocol version|no protocols available)" console-1 --tls12
# It stays: the agent keeps trying, further apart each time (full jitter: 1 s .. 2^n s).
n0=$(grep -c "handshake failed" "$ELSD_LOG")
check "a refused console is tried again and again" wait_long 100 \
	bash -c "(( \$(grep -c 'handshake failed' '$ELSD_LOG') >= $n0 + 2 ))"
delays=$(grep -oE "next try in [0-9.]+ s" "$ELSD_LOG" | tail -n 3 | awk '{print $4}' | paste -sd' ')
check "the retries back off: the cap doubles ($delays)" \
	awk -v d="$delays" 'BEGIN { split(d, a, " "); exit !(a[1] <= 2.0 && a[2] <= 4.0 && a[3] <= 8.0 && a[1] >= 1.0) }'
# Sessions follow the certificate: a new CRL (the file replaced, no SIGHUP) that revokes the
# connected console ends its connection, and it is refused from then on.
good_again
nrev=$(grep -c "handshake failed: certificate revoked" "$ELSD_LOG")
"$PKI" revoke "$CA" "$CA/servers/console-1.crt" >/dev/null
cp "$CA/crl.pem" "$TLS/crl.new" && mv -f "$TLS/crl.new" "$TLS/crl.pem"
check "a new CRL revoking the connected console ends the connection" wait_long 50 \
	grep -q "console: $CON4:$PORT: the console's certificate: certificate revoked" "$ELSD_LOG"
check "the revoked console is refused at the next attempts" wait_long 75 \
	bash -c "(( \$(grep -c 'handshake failed: certificate revoked' '$ELSD_LOG') > $nrev ))"
check "elsd is still running" kill -0 "$ELSD_PID"
check "the loss is in the monitor" wait_records "kind = 'event' AND detail LIKE 'mgmt console $CON4:$PORT down%'"
check "the connection is in the monitor" wait_records "kind = 'event' AND detail LIKE 'mgmt console $CON4:$PORT connected%'"
els_stop
check_eq "elsd stops cleanly" 0 "$?"
els_finish
