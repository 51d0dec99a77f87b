#!/usr/bin/env bash
# els-console's backbone with real PostgreSQL, real TLS clients and stand-in agents
# (console_agent.py: real TLS 1.3, elsd's framing): -n; agents dial in, say hello, heartbeat
# and land in console_agents; the refusal matrix of the agent port and of the HTTPS API (no
# certificate, another CA, expired, revoked, TLS 1.2, wrong role, a hello naming another
# agent, silence), each tried while a real agent stays connected and the API keeps answering;
# the anti-CSRF check and roles; the deployer (on behalf of the starter, waves, an offline
# agent completing at its reconnect); two instances on one database (a deployment reaches the
# agent another instance holds, and so does a request through the other instance); a console restart and a PostgreSQL restart lose no state.
# The consoles run in the server namespace (198.18.0.2), clients in the client namespace.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
CONSOLE=$ELS_BUILD_DIR/els-console PKI=$ELS_SOURCE_DIR/pki/els-pki
AGENT=$ELS_SOURCE_DIR/tests/integration/console_agent.py
[[ -x $CONSOLE ]] || { echo "els-console not built in $ELS_BUILD_DIR"; exit 1; }
els_setup
C1_PID='' C2_PID=''
stop_consoles() {
	for p in $C1_PID $C2_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	C1_PID='' C2_PID=''
}
trap 'stop_consoles; pg_stop; els_cleanup' EXIT
pg_start || { fail "PostgreSQL starts"; els_finish; exit 1; }

# ---- certificates ----
CA=$WORK/ca OTHER=$WORK/other
# issue CA NAME OU EKU [expired]: a certificate of CA's openssl database (so els-pki revoke
# knows it), OU and URI:els:role:OU, into $WORK/NAME.{crt,key}.
issue() {
	local ca=$1 name=$2 ou=$3 eku=$4 dates=(-days 30)
	[[ ${5:-} == expired ]] && dates=(-startdate "$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)"
		-enddate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)")
	printf '[ ext ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = %s\nsubjectAltName = URI:els:role:%s\n' \
		"$eku" "$ou" >"$WORK/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/OU=$ou/CN=$name" \
		-keyout "$WORK/$name.key" -out "$WORK/$name.csr" 2>/dev/null &&
		ELS_PKI_DIR=$ca openssl ca -batch -notext -config "$ca/openssl.cnf" "${dates[@]}" \
			-extfile "$WORK/$name.ext" -extensions ext -in "$WORK/$name.csr" \
			-out "$WORK/$name.crt" >/dev/null 2>&1 && chmod 600 "$WORK/$name.key"
}
{
	$PKI init "$CA" && $PKI init "$OTHER" &&
		$PKI agent "$CA" console-1 --host console.test --ip 198.18.0.2 &&
		$PKI agent "$CA" console-2 --host console.test --ip 198.18.0.2 &&
		for a in web-01 web-02 web-03 web-04 web-05 web-09 gone-agent; do
			issue "$CA" $a agent "clientAuth, serverAuth" || exit 1
		done &&
		issue "$CA" old-agent agent "clientAuth, serverAuth" expired &&
		issue "$CA" alice admin clientAuth && issue "$CA" bob auditor clientAuth &&
		issue "$CA" mallory admin clientAuth && issue "$CA" old-admin admin clientAuth expired &&
		issue "$OTHER" stranger agent "clientAuth, serverAuth" &&
		issue "$OTHER" eve admin clientAuth &&
		$PKI revoke "$CA" "$WORK/gone-agent.crt" && $PKI revoke "$CA" "$WORK/mallory.crt"
} >/dev/null 2>&1 || { fail "certificates for the test"; els_finish; exit 1; }

# ---- configuration ----
console_conf() { # console_conf NAME AGENT_PORT API_PORT
	cat <<-EOF
		console = { name = "$1"; };
		agents = { listen = "198.18.0.2:$2"; ca = "$CA/ca.crt"; crl = "$CA/crl.pem";
		           cert = "$CA/agents/$1.crt"; key = "$CA/agents/$1.key";
		           heartbeat_timeout_s = 3; handshake_timeout_s = 2; max_handshakes = 8; };
		api = { listen = "198.18.0.2:$3"; ca = "$CA/ca.crt"; crl = "$CA/crl.pem";
		        cert = "$CA/agents/$1.crt"; key = "$CA/agents/$1.key"; };
		database = { conninfo = "host=$PGDIR port=$PGPORT dbname=els user=postgres";
		             sql_dir = "$ELS_SOURCE_DIR/console/sql"; };
		# Only NOTIFY els_deploy and hellos wake the deployer here: the test sees that they do.
		deploy = { interval_ms = 600000; };
	EOF
}
console_conf console-1 7444 8443 >"$WORK/c1.conf"
console_conf console-2 7445 8444 >"$WORK/c2.conf"
C1_LOG=$WORK/console-1.log C2_LOG=$WORK/console-2.log

check "els-console -n accepts the configuration" "$CONSOLE" -n -c "$WORK/c1.conf"
sed 's/heartbeat_timeout_s = 3;/heartbeat_timeout_s = 3; bogus = 1;/' "$WORK/c1.conf" >"$WORK/bad.conf"
out=$("$CONSOLE" -n -c "$WORK/bad.conf" 2>&1); rc=$?
check_eq "-n refuses an unknown key (exit 1)" 1 "$rc"
check "-n names the file, line and key" grep -q "bad.conf:4: unknown key agents.bogus" <<<"$out"
cp "$CA/agents/console-1.key" "$WORK/readable.key" && chmod 644 "$WORK/readable.key"
sed "s|key = \"$CA/agents/console-1.key\"; };|key = \"$WORK/readable.key\"; };|" "$WORK/c1.conf" >"$WORK/leaky.conf"
out=$("$CONSOLE" -n -c "$WORK/leaky.conf" 2>&1); rc=$?
check "-n refuses a key others may read, naming it" grep -q "readable.key is accessible by group or others" <<<"$out"

start_console() { # start_console 1|2
	local log=$WORK/console-$1.log
	echo "--- start" >>"$log"
	ip netns exec "$SRV" "$CONSOLE" -d -c "$WORK/c$1.conf" >>"$log" 2>&1 &
	if [[ $1 == 1 ]]; then C1_PID=$!; else C2_PID=$!; fi
	wait_until grep -q "console console-$1 running" "$log"
}
# wait_for SECONDS CMD...: as wait_until, for longer conditions.
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@"; do ((SECONDS < end)) || return 1; sleep 0.1; done
}
check "console-1 starts" start_console 1

# ---- an agent dials in ----
agent() { # agent ADDR ID EVENTS [options]
	local addr=$1 id=$2 ev=$3; shift 3
	ip netns exec "$CLI" python3 "$AGENT" run "$addr" "$CA/ca.crt" "$WORK/$id.crt" \
		"$WORK/$id.key" --id "$id" --events "$ev" --reconnect --heartbeat 1 "$@" \
		>/dev/null 2>&1 &
	BG_PIDS+=($!)
}
connected_to() { pq "SELECT coalesce(connected_to, '-') FROM console_agents WHERE agent_id = '$1'"; }
is_connected() { [[ $(connected_to "$1") == "$2" ]]; }
agent 198.18.0.2:7444 web-01 "$WORK/web-01.ev"
check "web-01 said hello: console_agents.connected_to = console-1" wait_until is_connected web-01 console-1
check_eq "its group, host and listeners are recorded" "web|web-01.example|443" \
	"$(pq "SELECT grp, host, listeners->0->>'port' FROM console_agents WHERE agent_id = 'web-01'")"
check_eq "its certificate's expiry is recorded" "t" \
	"$(pq "SELECT cert_not_after > now() + interval '29 days' FROM console_agents WHERE agent_id = 'web-01'")"
seen1=$(pq "SELECT last_seen FROM console_agents WHERE agent_id = 'web-01'")
check "heartbeats move last_seen" wait_for 20 bash -c "[[ \$(runuser -u postgres -- $PGBIN/psql -h $PGDIR -p $PGPORT -XAtq -c \"SELECT last_seen > '$seen1' FROM console_agents WHERE agent_id = 'web-01'\" els) == t ]]"

# ---- the HTTPS API ----
API1=https://198.18.0.2:8443
# api WHO URL [curl options]: prints the HTTP status ("000" when no HTTP answer at all);
# headers in $WORK/h, body in $WORK/b. WHO is a name of $WORK/NAME.{crt,key} or "-".
api() {
	local who=$1 url=$2; shift 2
	local certopt=()
	[[ $who != - ]] && certopt=(--cert "$WORK/$who.crt" --key "$WORK/$who.key")
	: >"$WORK/h"; : >"$WORK/b"
	ip netns exec "$CLI" curl -s --max-time 15 --tlsv1.3 --cacert "$CA/ca.crt" "${certopt[@]}" \
		-D "$WORK/h" -o "$WORK/b" -w '%{http_code}' "$@" "$url" 2>/dev/null
}
jq_b() { jq -r "$1" "$WORK/b" 2>/dev/null; }
check_eq "an auditor reads GET /api/console/instances" 200 "$(api bob $API1/api/console/instances)"
check_eq "it names this instance and counts its agent" "console-1 1" "$(jq_b '"\(.this) \(.agents_connected)"')"
check "the answer carries the CSP" grep -qi "^Content-Security-Policy: default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'" "$WORK/h"
check "... HSTS and nosniff" bash -c "grep -qi '^Strict-Transport-Security: max-age=31536000' $WORK/h && grep -qi '^X-Content-Type-Options: nosniff' $WORK/h"
check "... and sets the anti-CSRF cookie" grep -qi '^Set-Cookie: els_csrf=[0-9a-f]\{32\}; Path=/; Secure; SameSite=Strict' "$WORK/h"
check_eq "JSON is application/json" "application/json" "$(grep -i '^Content-Type:' "$WORK/h" | tr -d '\r' | cut -d' ' -f2)"
check_eq "an unknown path is 404" 404 "$(api bob $API1/api/console/nothing-here)"
check_eq "a known path with another method is 405" 405 "$(api bob $API1/api/console/instances -X DELETE)"

audits() { pq "SELECT count(*) FROM console_audit WHERE $1"; }
alive() { # the console still serves: its agent is connected and the API answers
	kill -0 "$C1_PID" && is_connected web-01 console-1 &&
		[[ $(api bob $API1/api/console/instances) == 200 ]]
}

log "the API's refusal matrix"
for t in "no certificate:-" "another CA's admin:eve" "an expired admin:old-admin" \
	"a revoked admin:mallory"; do
	check_eq "API: $t gets no HTTP answer (handshake refused)" 000 "$(api "${t#*:}" $API1/api/console/instances)"
done
check_eq "API: TLS 1.2 gets no HTTP answer" 000 \
	"$(api alice $API1/api/console/instances --tlsv1.2 --tls-max 1.2)"
check_eq "API: an agent's certificate is refused (403)" 403 "$(api web-01 $API1/api/console/instances)"
check_eq "... and audited" 1 "$(audits "identity = 'web-01' AND role = 'agent' AND outcome LIKE 'refused: not an operator%'")"
CSRF=0123456789abcdef0123456789abcdef
post_disconnect() { # post_disconnect WHO [curl options]
	local who=$1; shift
	api "$who" $API1/api/console/disconnect -X POST -H 'Content-Type: application/json' \
		--data '{"agent_id":"web-01"}' "$@"
}
check_eq "API: an auditor on an admin route is refused (403)" 403 \
	"$(post_disconnect bob -H "X-ELS-CSRF: $CSRF" -b "els_csrf=$CSRF")"
check_eq "... and audited" 1 "$(audits "identity = 'bob' AND action = 'http POST /api/console/disconnect' AND outcome = 'refused: needs the admin role'")"
check_eq "API: an admin without the anti-CSRF header is refused (403)" 403 \
	"$(post_disconnect alice -b "els_csrf=$CSRF")"
check_eq "API: an admin whose header differs from the cookie is refused (403)" 403 \
	"$(post_disconnect alice -H "X-ELS-CSRF: ${CSRF/0/1}" -b "els_csrf=$CSRF")"
check_eq "... both audited" 2 "$(audits "identity = 'alice' AND outcome = 'refused: anti-CSRF check failed'")"
check_eq "API: a body over the route's cap is refused (413)" 413 \
	"$(post_disconnect alice -H "X-ELS-CSRF: $CSRF" -b "els_csrf=$CSRF" --data "{\"agent_id\":\"$(head -c 5000 /dev/zero | tr '\0' x)\"}")"
check "none of them cut web-01, and the console serves" alive

log "the agent port's refusal matrix"
probe() { # probe CERTNAME [options]: what the console does with this peer
	local name=$1; shift
	local cert=$WORK/$name.crt key=$WORK/$name.key
	[[ $name == - ]] && cert=- key=-
	ip netns exec "$CLI" python3 "$AGENT" probe 198.18.0.2:7444 "$CA/ca.crt" "$cert" "$key" \
		--id "$name" "$@" 2>&1
}
refused() { [[ $1 == refused:* || $1 == closed ]]; }
for t in "no certificate:-" "another CA:stranger" "an expired certificate:old-agent" \
	"a revoked certificate:gone-agent"; do
	r=$(probe "${t#*:}")
	check "agent port: $t is refused ($r)" refused "$r"
done
r=$(probe web-02 --tls12)
check "agent port: TLS 1.2 is refused ($r)" refused "$r"
r=$(probe alice --id alice)
check_eq "agent port: an operator's certificate is cut" closed "$r"
check_eq "... and audited" 1 "$(audits "identity = 'alice' AND action = 'agent.connect' AND outcome = 'refused: role admin is not agent'")"
r=$(probe web-09 --id web-99)
check_eq "agent port: a hello naming another agent is cut" closed "$r"
check_eq "... and audited" 1 "$(audits "identity = 'web-09' AND outcome = 'refused: hello agent_id differs from the certificate'")"
r=$(probe web-02 --no-hello --wait 6)
check_eq "agent port: no hello within handshake_timeout_s: cut" closed "$r"
r=$(probe web-03 --wait 8)
check_eq "agent port: a hello, then silence past heartbeat_timeout_s: cut" closed "$r"
check_eq "none of the refused peers is in console_agents" 0 \
	"$(pq "SELECT count(*) FROM console_agents WHERE agent_id IN ('-', 'stranger', 'old-agent', 'gone-agent', 'alice', 'web-99', 'web-09', 'web-02')")"
check "the silent agent is marked disconnected" wait_until is_connected web-03 -
check "web-01 stayed connected and the API answers" alive

log "a flood of idle connections does not keep agents out (max_handshakes = 8)"
# 20 new TCP connections a second that never start TLS, at most 40 open, for 4 seconds.
ip netns exec "$CLI" python3 -c '
import socket, time
socks, end = [], time.monotonic() + 4
while time.monotonic() < end:
    try:
        socks.append(socket.create_connection(("198.18.0.2", 7444), timeout=1))
    except OSError:
        pass
    socks = socks[-40:]
    time.sleep(0.05)
' &
FLOOD=$!
BG_PIDS+=("$FLOOD")
wait_for 10 grep -q "connection evicted" "$C1_LOG"
r=$(probe web-05 --wait 1)
check_eq "during the flood, a new agent connects and stays (oldest idle ones give way)" open "$r"
check "the console logged the evictions" grep -q "connection evicted @198.18.0.1" "$C1_LOG"
check "web-01 stayed connected" is_connected web-01 console-1
wait "$FLOOD"

log "an admin cuts an agent's session (it reconnects)"
check_eq "admin with the anti-CSRF cookie and header: 200" 200 \
	"$(post_disconnect alice -H "X-ELS-CSRF: $CSRF" -b "els_csrf=$CSRF")"
check_eq "... audited as done" 1 "$(audits "identity = 'alice' AND action = 'agent.disconnect' AND outcome = 'ok'")"
check "... and is connected again" wait_until bash -c "(( \$(grep -c '\"connected\"' $WORK/web-01.ev) >= 2 ))"
check "... to console-1" wait_until is_connected web-01 console-1

# ---- the deployer ----
# deploy BODY STARTER STATE OPEN_WAVE AGENT:WAVE...: a deployment as change control makes one,
# then NOTIFY els_deploy; prints its id.
deploy() {
	local body=$1 starter=$2 state=$3 wave=$4; shift 4
	local t vals=
	for t in "$@"; do vals+="${vals:+, }('${t%:*}', ${t#*:})"; done
	# One statement: the health gate (every second, in both instances) must never see the
	# deployment without its targets, or it halts a canary with "no agents" and finishes a
	# rolling one with nothing left to do.
	pq "WITH v AS (INSERT INTO console_policy_versions (grp, version, body, sha256, author, state)
		VALUES ('web', (SELECT count(*) + 1 FROM console_policy_versions), '$body',
		encode(sha256('$body'::bytea), 'hex'), 'carol', 'approved') RETURNING id),
	d AS (INSERT INTO console_deployments (grp, version_id, started_by, state, open_wave)
		SELECT 'web', id, '$starter', '$state', $wave FROM v RETURNING id),
	t AS (INSERT INTO console_deployment_targets (deployment_id, agent_id, wave)
		SELECT d.id, x.a, x.w FROM d, (VALUES $vals) AS x(a, w) RETURNING 1)
	SELECT id FROM d" | head -1
	pq "NOTIFY els_deploy" >/dev/null
}
target() { pq "SELECT state FROM console_deployment_targets WHERE deployment_id = $1 AND agent_id = '$2'"; }
target_is() { [[ $(target "$1" "$2") == "$3" ]]; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# These deployments are made by hand and overlap on web-01 (change control allows one per
# group at a time): as "rolling" they are the deployer's alone. As "canary", change control's
# health gate would rightly halt D1 once D2 replaced the version web-01 applied, and web-03,
# still offline, would never be sent it.
D1=$(deploy "policy one" dave rolling 0 web-01:0 web-03:0 web-01x:1)
check "deployment $D1: web-01 (canary wave, connected) applied it" wait_for 20 target_is "$D1" web-01 ok
req=$(grep '"policy.apply"' "$WORK/web-01.ev" | tail -1)
check_eq "... on behalf of the deployment's starter, as admin" "dave admin" \
	"$(jq -r '"\(.on_behalf_of.identity) \(.on_behalf_of.role)"' <<<"$req")"
check_eq "... with the version's text" "policy one" "$(jq -r .args.text <<<"$req")"
check_eq "... sent by console-1" "console-1" "$(pq "SELECT sent_by FROM console_deployment_targets WHERE deployment_id = $D1 AND agent_id = 'web-01'")"
check_eq "console_agents shows the hash it runs now" "$(sha "policy one")" \
	"$(pq "SELECT policy_sha256 FROM console_agents WHERE agent_id = 'web-01'")"
check_eq "web-03 (offline) stays pending" pending "$(target "$D1" web-03)"
D2=$(deploy "policy two" erin rolling 0 web-01:1)
sleep 1
check_eq "deployment $D2: a target in a wave not yet open stays pending" pending "$(target "$D2" web-01)"
pq "UPDATE console_deployments SET state = 'rolling', open_wave = 1 WHERE id = $D2; NOTIFY els_deploy" >/dev/null
check "... and is applied once its wave opens (NOTIFY els_deploy)" wait_for 20 target_is "$D2" web-01 ok
agent 198.18.0.2:7444 web-03 "$WORK/web-03.ev"
check "an offline agent's deployment completes when it connects" wait_for 20 target_is "$D1" web-03 ok
D3=$(deploy "policy bad" dave canary 0 web-04:0)
agent 198.18.0.2:7444 web-04 "$WORK/web-04.ev" --apply fail
check "an agent refusing the policy: target failed" wait_for 20 target_is "$D3" web-04 failed
check_eq "... with the agent's error" "invalid_policy: policy has 1 error" \
	"$(pq "SELECT error FROM console_deployment_targets WHERE deployment_id = $D3")"

log "two instances on one database"
check "console-2 starts beside console-1" start_console 2
agent 198.18.0.2:7445 web-02 "$WORK/web-02.ev"
check "web-02 dials console-2" wait_until is_connected web-02 console-2
check_eq "console-1's API lists both instances" "console-1 console-2" \
	"$( [[ $(api bob $API1/api/console/instances) == 200 ]] && jq_b '[.instances[].name] | join(" ")')"
D4=$(deploy "policy four" frank canary 0 web-01:0 web-02:0)
check "deployment $D4 reaches web-02, held by console-2" wait_for 20 target_is "$D4" web-02 ok
check "... and web-01, held by console-1" wait_for 20 target_is "$D4" web-01 ok
check_eq "each sent by the instance holding the agent" "console-1 console-2" \
	"$(pq "SELECT string_agg(sent_by, ' ' ORDER BY agent_id) FROM console_deployment_targets WHERE deployment_id = $D4")"
check_eq "web-02 got it on behalf of frank" "frank" \
	"$(grep '"policy.apply"' "$WORK/web-02.ev" | tail -1 | jq -r .on_behalf_of.identity)"

ask() { # ask WHO AGENT CMD: POST /api/console/agent-request through console-1
	api "$1" $API1/api/console/agent-request -X POST -H 'Content-Type: application/json' \
		-H "X-ELS-CSRF: $CSRF" -b "els_csrf=$CSRF" --data "{\"agent_id\":\"$2\",\"cmd\":\"$3\"}"
}
check_eq "a request through console-1 to web-02, held by console-2, is answered" 200 \
	"$(ask bob web-02 status)"
check_eq "... with the agent's own response" "true status" "$(jq_b '"\(.response.ok) \(.response.result.echo)"')"
check_eq "... which got it on behalf of bob, as auditor" "bob auditor" \
	"$(grep '"status"' "$WORK/web-02.ev" | tail -1 | jq -r '"\(.on_behalf_of.identity) \(.on_behalf_of.role)"')"
check_eq "... and the relay row is gone" 0 "$(pq "SELECT count(*) FROM console_agent_requests")"
check_eq "... audited" 1 "$(audits "identity = 'bob' AND action = 'agent.request' AND target = 'web-02' AND outcome = 'ok'")"
check_eq "a request to web-01, held by console-1 itself" "200 true" "$(ask alice web-01 flows) $(jq_b .response.ok)"
check_eq "an agent connected nowhere: 404" 404 "$(ask alice nobody status)"

log "a console restart loses no state"
before=$(pq "SELECT count(*) FILTER (WHERE state = 'ok') || ' ' || count(*) FROM console_deployment_targets")
audit_before=$(pq "SELECT count(*) FROM console_audit")
kill "$C1_PID"; wait "$C1_PID"; rc=$?; C1_PID=
check_eq "console-1 stops cleanly on SIGTERM" 0 "$rc"
check_eq "its agents are marked disconnected" "- -" "$(connected_to web-01) $(connected_to web-03)"
D5=$(deploy "policy five" gina canary 0 web-01:0)
# As if console-1 had died between claiming a target and recording the answer.
D6=$(deploy "policy six" gina canary 0 web-03:0)
pq "UPDATE console_deployment_targets SET state = 'sent', sent_by = 'console-1', sent_at = now() WHERE deployment_id = $D6" >/dev/null
check_eq "while console-1 is down, its agents' targets wait" "pending sent" "$(target "$D5" web-01) $(target "$D6" web-03)"
check "console-1 starts again" start_console 1
check "web-01 reconnects to it" wait_for 20 is_connected web-01 console-1
check "the deployment made while it was down completes" wait_for 20 target_is "$D5" web-01 ok
check "the target it had claimed before dying is sent again and completes" wait_for 20 target_is "$D6" web-03 ok
after=$(pq "SELECT count(*) FILTER (WHERE state = 'ok' AND deployment_id < $D5) || ' ' || count(*) FILTER (WHERE deployment_id < $D5) FROM console_deployment_targets")
check_eq "every earlier target kept its state" "$before" "$after"
check_ge "the audit trail kept every row" "$audit_before" "$(pq "SELECT count(*) FROM console_audit")"

log "a PostgreSQL restart loses no state"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w restart >/dev/null 2>&1
check "PostgreSQL restarted" pq "SELECT 1"
check "console-1 reconnects to the database" wait_for 20 grep -q "database: connected again" "$C1_LOG"
D7=$(deploy "policy seven" hana canary 0 web-01:0 web-02:0)
check "a deployment after the restart reaches console-1's agent (LISTEN renewed)" wait_for 20 target_is "$D7" web-01 ok
check "... and console-2's" wait_for 20 target_is "$D7" web-02 ok
check_eq "earlier targets kept their state" "$before" "$(pq "SELECT count(*) FILTER (WHERE state = 'ok' AND deployment_id < $D5) || ' ' || count(*) FILTER (WHERE deployment_id < $D5) FROM console_deployment_targets")"
seen2=$(pq "SELECT last_seen FROM console_agents WHERE agent_id = 'web-02'")
check "heartbeats reach the database again" wait_for 20 bash -c "[[ \$(runuser -u postgres -- $PGBIN/psql -h $PGDIR -p $PGPORT -XAtq -c \"SELECT last_seen > '$seen2' FROM console_agents WHERE agent_id = 'web-02'\" els) == t ]]"
check "console-1 still serves" alive

log "a new CRL (SIGHUP) cuts a revoked agent's session and refuses a revoked operator"
$PKI revoke "$CA" "$WORK/web-04.crt" >/dev/null 2>&1 && $PKI revoke "$CA" "$WORK/bob.crt" >/dev/null 2>&1
check_eq "before the reload, web-04 is connected and bob is served" "console-1 200" \
	"$(connected_to web-04) $(api bob $API1/api/console/instances)"
kill -HUP "$C1_PID"
check "after SIGHUP, web-04's session is cut" wait_for 20 is_connected web-04 -
check_eq "... and audited" 1 "$(audits "identity = 'web-04' AND action = 'agent.session' AND outcome = 'session closed: certificate revoked'")"
sleep 1 # web-04 tries to reconnect every 0.2 s
check_eq "... and its reconnections are refused" - "$(connected_to web-04)"
check_eq "bob's revoked certificate gets no HTTP answer" 000 "$(api bob $API1/api/console/instances)"
check_eq "alice is still served" 200 "$(api alice $API1/api/console/instances)"
check "web-01 stayed connected" is_connected web-01 console-1

for n in 1 2; do
	pid_var=C${n}_PID
	kill "${!pid_var}"; wait "${!pid_var}"; rc=$?
	check_eq "console-$n exits 0 on SIGTERM (clean, no leak reports under ASan)" 0 "$rc"
	eval "$pid_var="
done
check_not "no sanitizer report in the consoles' logs" grep -q "Sanitizer" "$C1_LOG" "$C2_LOG"
if ((FAILED)); then
	sed 's/^/#   console-1: /' "$C1_LOG" | tail -n 40
	sed 's/^/#   console-2: /' "$C2_LOG" | tail -n 15
fi
els_finish
