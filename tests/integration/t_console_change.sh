#!/usr/bin/env bash
# els-console change control end to end, with a real els-console, a real PostgreSQL 15 and
# real client certificates from els-pki, driven with elsctl --console and curl:
#   - the PPS registry: an entry added by an admin; a proposal whose permit is not in it, or
#     whose entry expired, cannot be approved, and the refusal names the permit;
#   - the two-person rule: the author's own approval is refused (403), another admin's works;
#   - an auditor reads everything, and every action of theirs is refused 403 with nothing
#     changed in the database; a POST without the anti-CSRF pair is refused too;
#   - a staged deployment: only the canary is offered to the deployer; the health gate opens
#     the rest after the canary applied and heartbeated; done when all applied;
#   - a failing canary halts the deployment (the rest is never offered), and one rollback
#     command deploys the previous approved version to the whole group;
#   - drift: an agent running another policy, with missing steering rules, listening on a port
#     no permit admits, or silent, is flagged with a log line and an audit row, and resolved
#     when fixed.
# Agents: stand-ins for elsd (console_agent.py: real TLS 1.3 client certificates, elsd's
# framing, hello, heartbeats every second, policy.apply answered ok or with an error) dial the
# console's agent port, and the console's own deployer sends them the policy; the drift kinds
# the stand-in cannot show (steering rules, listeners, silence) are played on agents that
# exist only in the database, as the agent port would record their heartbeats.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
CONSOLE_BIN=$ELS_BUILD_DIR/els-console
ELSCTL=$ELS_BUILD_DIR/elsctl
PKI=$ELS_SOURCE_DIR/pki/els-pki
[[ $(id -u) == 0 ]] || { echo "needs root (runs PostgreSQL as the postgres user)"; exit 1; }
[[ -x $CONSOLE_BIN && -x $ELSCTL ]] || { echo "els-console/elsctl not built in $ELS_BUILD_DIR"; exit 1; }
CONSOLE_PID=
CLOG=$WORK/console.log
cleanup() {
	[[ -n $CONSOLE_PID ]] && kill "$CONSOLE_PID" 2>/dev/null && wait "$CONSOLE_PID" 2>/dev/null
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	pg_stop
	els_cleanup
}
trap cleanup EXIT
pg_start || { fail "PostgreSQL starts"; els_finish; exit 1; }

# ---- certificates: the els-pki CA, three operators, the console's server certificate ----
CA=$WORK/pki
"$PKI" init "$CA" >/dev/null || { fail "els-pki init"; els_finish; exit 1; }
"$PKI" console "$CA" alice --role admin >/dev/null
"$PKI" console "$CA" bob --role admin >/dev/null
"$PKI" console "$CA" audrey --role auditor >/dev/null
AGENT=$ELS_SOURCE_DIR/tests/integration/console_agent.py
# agent_cert NAME: OU=agent, URI:els:role:agent, clientAuth (dial-out's els-pki agent will)
agent_cert() {
	printf '[ ext ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth, serverAuth\nsubjectAltName = URI:els:role:agent\n' >"$WORK/$1.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/OU=agent/CN=$1" \
		-keyout "$WORK/$1.key" -out "$WORK/$1.csr" 2>/dev/null &&
		ELS_PKI_DIR=$CA openssl ca -batch -notext -config "$CA/openssl.cnf" -days 2 \
			-extfile "$WORK/$1.ext" -extensions ext -in "$WORK/$1.csr" \
			-out "$WORK/$1.crt" >/dev/null 2>&1 && chmod 600 "$WORK/$1.key"
}
for a in web-01 web-02 web-03 web-04 api-01 api-02 db-01 db-02; do
	agent_cert $a || { fail "agent certificate $a"; els_finish; exit 1; }
done
mkdir -p "$CA/servers"
if "$PKI" help 2>&1 | grep -q console-server; then
	"$PKI" console-server "$CA" console-1 --host localhost --ip 127.0.0.1 >/dev/null
else # els-pki's console-server lands with the dial-out branch: the same certificate by hand
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj \
		"/CN=console-1/OU=console" -keyout "$CA/servers/console-1.key" \
		-out "$WORK/console.csr" 2>/dev/null
	printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,URI:els:role:console" \
		"extendedKeyUsage=serverAuth,clientAuth" "keyUsage=digitalSignature" >"$WORK/ext"
	openssl x509 -req -in "$WORK/console.csr" -CA "$CA/ca.crt" -CAkey "$CA/ca.key" \
		-CAcreateserial -days 2 -sha256 -extfile "$WORK/ext" \
		-out "$CA/servers/console-1.crt" 2>/dev/null
	chmod 600 "$CA/servers/console-1.key"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port) AGENT_PORT=$(free_port)
cat >"$WORK/console.conf" <<EOF
console = { name = "console-1"; };
agents = { listen = "127.0.0.1:$AGENT_PORT"; ca = "$CA/ca.crt"; cert = "$CA/servers/console-1.crt";
           key = "$CA/servers/console-1.key"; crl = "$CA/crl.pem"; heartbeat_timeout_s = 3; };
api = { listen = "127.0.0.1:$API_PORT"; ca = "$CA/ca.crt"; cert = "$CA/servers/console-1.crt";
        key = "$CA/servers/console-1.key"; crl = "$CA/crl.pem"; };
database = { conninfo = "$PGCONN sslmode=verify-full"; sql_dir = "$ELS_SOURCE_DIR/console/sql"; };
change_control = { two_person = true; };
drift = { silent_after_s = 30; };
deploy = { health_wait_s = 1; };
EOF
check "els-console -n accepts the test config" "$CONSOLE_BIN" -n -c "$WORK/console.conf"
"$CONSOLE_BIN" -c "$WORK/console.conf" >"$CLOG" 2>&1 &
CONSOLE_PID=$!
URL=https://127.0.0.1:$API_PORT
ctl() { # ctl WHO ARGS...: elsctl --console as operator WHO
	local who=$1
	shift
	"$ELSCTL" --console "$URL" --cert "$CA/consoles/$who.crt" --key "$CA/consoles/$who.key" \
		--ca "$CA/ca.crt" "$@"
}
api_up() { ctl audrey registry >/dev/null 2>&1; }
wait_until api_up || { fail "els-console API answers"; cat "$CLOG"; els_finish; exit 1; }
pass "els-console API answers an auditor"

# ---- the agents: web-01..04 in group web, api-01 (refuses every policy) and api-02 in api ----
# agent ID GROUP EVENTS [options]: a stand-in agent that dials the agent port and reconnects
agent() {
	python3 "$AGENT" run "127.0.0.1:$AGENT_PORT" "$CA/ca.crt" "$WORK/$1.crt" "$WORK/$1.key" \
		--id "$1" --group "$2" --events "$WORK/$1.ev" --reconnect --heartbeat 1 "${@:3}" \
		>/dev/null 2>&1 &
	BG_PIDS+=($!)
}
for a in web-01 web-02 web-03 web-04 api-02; do agent $a "${a%-*}"; done
agent api-01 api --apply fail
all_connected() { [[ $(pq "SELECT count(*) FROM console_agents WHERE connected_to = 'console-1'") == 6 ]]; }
check "six stand-in agents said hello" wait_until all_connected
OLD=0000000000000000000000000000000000000000000000000000000000000000
dep_state() { pq "SELECT state FROM console_deployments WHERE id = $1"; }
wait_state() { # wait_state DEPLOYMENT STATE: the console's own pass moves it (every second)
	for _ in $(seq 150); do [[ $(dep_state "$1") == "$2" ]] && return 0; sleep 0.1; done
	return 1
}
applies() { grep -c '"cmd": "policy.apply"' "$WORK/$1.ev"; } # policy.apply requests agent $1 got
runs() { pq "SELECT policy_sha256 FROM console_agents WHERE agent_id = '$1'"; }

# ---- the registry ----
check "admin alice adds registry entry https" ctl alice registry add https --proto tcp \
	--port 443 --dir in --justification "public web service" --owner "web team" \
	--category service --expires 2099-12-31
check_eq "the entry is stored with alice as its author" "tcp|443|alice" \
	"$(pq "SELECT proto, port, updated_by FROM console_registry WHERE id = 'https'")"
out=$(ctl alice registry add bad --proto tcp --port 99999 --justification x --owner y 2>&1)
check_eq "a registry entry with port 99999 is refused (exit 1)" 1 "$?"
check "... naming the field" grep -q "'port' must be a port list" <<<"$out"

policy_doc() { # policy_doc PERMIT-ID PORT
	cat <<-EOF
		chain = ["header_filter"];
		header_filter: {
		  permits = (
		    { id = "$1"; dir = "in"; proto = "tcp"; local_ports = [$2];
		      justification = "web"; owner = "web team"; }
		  );
		};
	EOF
}
policy_doc https 443 >"$WORK/v1.conf"
SHA1=$(sha256sum "$WORK/v1.conf" | cut -d' ' -f1)

# ---- two-person rule ----
out=$(ctl alice --json policy propose --group web --comment "first" "$WORK/v1.conf")
check_eq "alice proposes version 1 (exit 0)" 0 "$?"
V1=$(jq -r .version.id <<<"$out")
check_eq "the stored version is the file, by its sha256" "$SHA1|alice|proposed" \
	"$(pq "SELECT sha256, author, state FROM console_policy_versions WHERE id = $V1")"
out=$(ctl alice policy approve "$V1" 2>&1)
check_eq "alice's approval of her own proposal is refused (exit 1)" 1 "$?"
check "... by the two-person rule, in words" grep -q "two-person rule" <<<"$out"
check "... with HTTP 403" grep -q "HTTP 403" <<<"$out"
check_eq "the version is still proposed, approved by nobody" "proposed|" \
	"$(pq "SELECT state, approved_by FROM console_policy_versions WHERE id = $V1")"
check_eq "the refusal is in the audit trail with alice's identity" 1 \
	"$(pq "SELECT count(*) FROM console_audit WHERE action = 'policy.approve' AND
	       identity = 'alice' AND outcome = 'refused' AND target = '$V1'")"
check "bob approves version 1" ctl bob policy approve "$V1"
check_eq "version 1 is approved by bob" "approved|bob" \
	"$(pq "SELECT state, approved_by FROM console_policy_versions WHERE id = $V1")"
check_eq "bob's approval is recorded with his certificate identity and role" "bob|admin|approve" \
	"$(pq "SELECT identity, role, decision FROM console_approvals WHERE version_id = $V1")"

# ---- registry check blocks approval ----
policy_doc ssh 22 >"$WORK/v2.conf"
V2=$(ctl alice --json policy propose --group web "$WORK/v2.conf" | jq -r .version.id)
check "the proposal of a permit outside the registry is stored (approval is what it blocks)" \
	test "$(pq "SELECT state FROM console_policy_versions WHERE id = $V2")" = proposed
out=$(ctl bob policy approve "$V2" 2>&1)
check_eq "bob's approval of a permit outside the registry is refused (exit 1)" 1 "$?"
check "... naming the permit" grep -q "permit 'ssh' is not in the PPS registry" <<<"$out"
check_eq "version 2 stays proposed" proposed \
	"$(pq "SELECT state FROM console_policy_versions WHERE id = $V2")"
check "diff of version 2 against its parent (version 1) shows the changed permit" \
	grep -q '^+.*id = "ssh"' <(ctl audrey policy diff "$V2")
# an expired registry entry blocks as well
ctl alice registry add ssh --proto tcp --port 22 --dir in --justification "admin access" \
	--owner ops --expires 2020-01-01 >/dev/null
out=$(ctl bob policy approve "$V2" 2>&1)
check_eq "approval with the permit's registry entry expired is refused" 1 "$?"
check "... saying the entry expired" grep -q "permit 'ssh': its registry entry has expired" <<<"$out"

# ---- the auditor reads, and changes nothing ----
snapshot() {
	pq "SELECT (SELECT count(*) FROM console_registry) || '/' ||
	    (SELECT count(*) FROM console_policy_versions) || '/' ||
	    (SELECT count(*) FROM console_approvals) || '/' ||
	    (SELECT count(*) FROM console_deployments) || '/' ||
	    (SELECT string_agg(state, ',' ORDER BY id) FROM console_policy_versions) || '/' ||
	    (SELECT md5(string_agg(id || proto || coalesce(port, '') || coalesce(expires_at::text, ''), ',' ORDER BY id)) FROM console_registry)"
}
before=$(snapshot)
refused=0
for cmd in "registry add evil --proto tcp --port 1-65535 --justification x --owner y" \
	"policy propose --group web $WORK/v1.conf" "policy approve $V2" "policy reject $V2" \
	"deploy $V1" "rollback web"; do
	# shellcheck disable=SC2086
	out=$(ctl audrey $cmd 2>&1)
	[[ $? == 1 && $out == *"HTTP 403"* ]] && refused=$((refused + 1))
done
check_eq "every one of the auditor's 6 actions is refused with 403" 6 "$refused"
check_eq "and nothing changed in the database" "$before" "$(snapshot)"
check_ge "the auditor's refusals are audited" 6 \
	"$(pq "SELECT count(*) FROM console_audit WHERE identity = 'audrey' AND outcome <> 'ok'")"
check "the auditor lists the versions" grep -q "$SHA1" <(ctl audrey --json policy list --group web)
check "the auditor reads the audit trail" grep -q policy.approve <(ctl audrey audit)
# An attacker's page cannot make an admin's browser post: no anti-CSRF pair, no change.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA/ca.crt" --cert "$CA/consoles/bob.crt" \
	--key "$CA/consoles/bob.key" -H 'Content-Type: application/json' \
	-d "{\"version_id\": $V1}" "$URL/api/deployments")
check_eq "an admin's POST without X-ELS-CSRF is refused 403" 403 "$code"
check_eq "... and started no deployment" 0 "$(pq "SELECT count(*) FROM console_deployments")"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA/ca.crt" "$URL/api/registry")
check_eq "no client certificate: no answer at all" 000 "$code"

# ---- staged deployment: canary, health gate, the rest ----
out=$(ctl bob --json deploy --canary 1 "$V1")
check_eq "bob deploys version 1 to group web with a canary of 1 agent" 0 "$?"
D1=$(jq -r .deployment.id <<<"$out")
check_eq "one canary (wave 0), three in wave 1" "0:1,1:3" \
	"$(pq "SELECT string_agg(wave || ':' || n, ',' ORDER BY wave) FROM (SELECT wave, count(*) n
	       FROM console_deployment_targets WHERE deployment_id = $D1 GROUP BY wave) w")"
CANARY=$(pq "SELECT agent_id FROM console_deployment_targets WHERE deployment_id = $D1 AND wave = 0")
check_eq "the canary is the first connected agent by name" web-01 "$CANARY"
out=$(ctl bob deploy "$V1" 2>&1)
check "a second deployment to the group while one runs is refused" grep -q "still in progress" <<<"$out"
check "every agent applied: done" wait_state "$D1" "done"
check_eq "the rest was sent only after the canary applied and the gate passed" t \
	"$(pq "SELECT max(t.done_at) FILTER (WHERE wave = 0) <= d.gate_passed_at AND
	       d.gate_passed_at <= min(t.sent_at) FILTER (WHERE wave = 1)
	       FROM console_deployment_targets t JOIN console_deployments d ON d.id = t.deployment_id
	       WHERE d.id = $D1 GROUP BY d.gate_passed_at")"
check_eq "each web agent got version 1 once" "1 1 1 1" \
	"$(for a in web-01 web-02 web-03 web-04; do applies $a; done | xargs)"
check "on behalf of bob, the admin who deployed" grep -q '"identity": "bob"' "$WORK/web-03.ev"
check_eq "and each runs it now (its heartbeat says so)" "$SHA1 $SHA1 $SHA1 $SHA1" \
	"$(for a in web-01 web-02 web-03 web-04; do runs $a; done | xargs)"
check_eq "the state changes are audited: waiting_health, rolling, done" \
	"waiting_health,rolling,done" \
	"$(pq "SELECT string_agg(detail->>'to', ',' ORDER BY id) FROM console_audit WHERE
	       action = 'deploy.state' AND detail->>'deployment_id' = '$D1'")"
check "elsctl shows the finished deployment" grep -q "state done" <(ctl audrey deployment "$D1")
out=$(ctl audrey --json fleet --group web 2>/dev/null)
if [[ $(jq -r '.error // empty' <<<"$out") == not_found ]]; then
	log "elsctl fleet: GET /api/fleet is c-web's and not in this build: not checked"
else
	check_eq "elsctl fleet --group web lists the four web agents" "web-01 web-02 web-03 web-04" \
		"$(jq -r '.agents[].id' <<<"$out" | xargs)"
fi
check_eq "no web agent drifts from the approved version" 0 \
	"$(sleep 2.2; pq "SELECT count(*) FROM console_drift WHERE resolved_at IS NULL AND agent_id LIKE 'web-%'")"

# ---- drift: agents recorded only in the database (no session), as heartbeats leave them ----
for a in lab-01 lab-02 lab-03 lab-04; do
	pq "INSERT INTO console_agents (agent_id, host, grp, version, policy_sha256, managed,
	    rules_ok, monitor_ok, listeners, permits, counters, last_seen)
	    VALUES ('$a', '$a.example', 'web', '0.1.0', '$SHA1', true, true, true,
	    '[{\"proto\":\"tcp\",\"addr\":\"0.0.0.0\",\"port\":443}]',
	    '[{\"id\":\"https\",\"proto\":\"tcp\",\"port\":\"443\",\"dir\":\"in\"}]',
	    '{\"dropped\":1}', now())"
done
beat() { pq "UPDATE console_agents SET last_seen = now(), policy_sha256 = '$2' WHERE agent_id = '$1'"; }
# count_at_least N SQL-COUNT: evaluated afresh on each try of wait_until
count_at_least() { [[ $(pq "$2") -ge $1 ]]; }
wait_drift() { wait_until count_at_least 1 "SELECT count(*) FROM console_drift WHERE $1"; }
beat lab-04 "$OLD"
pq "UPDATE console_agents SET rules_ok = false, monitor_ok = false, listeners = listeners ||
    '[{\"proto\":\"tcp\",\"addr\":\"0.0.0.0\",\"port\":2222},{\"proto\":\"tcp\",\"addr\":\"127.0.0.1\",\"port\":5432}]'
    WHERE agent_id = 'lab-03'"
pq "UPDATE console_agents SET last_seen = now() - interval '10 minutes' WHERE agent_id = 'lab-02'"
check "lab-04 running another policy than the approved one is flagged" wait_drift "agent_id = 'lab-04' AND kind = 'policy' AND resolved_at IS NULL"
check "lab-03's missing steering rules are flagged" wait_drift "agent_id = 'lab-03' AND kind = 'rules' AND resolved_at IS NULL"
check "lab-03's monitor chain failing to verify is flagged" wait_drift "agent_id = 'lab-03' AND kind = 'monitor' AND resolved_at IS NULL"
check_eq "lab-03 listening on 2222 (no permit) is flagged, its loopback listener is not" 1 \
	"$(pq "SELECT count(*) FROM console_drift WHERE agent_id = 'lab-03' AND kind = 'listener'
	       AND detail LIKE '%0.0.0.0:2222%' AND detail NOT LIKE '%5432%'")"
check "silent lab-02 is flagged" wait_drift "agent_id = 'lab-02' AND kind = 'silent'"
check_eq "lab-01 is not flagged" 0 "$(pq "SELECT count(*) FROM console_drift WHERE agent_id = 'lab-01'")"
check "the drift is alerted in the console's log" grep -q "drift: agent lab-04: policy" "$CLOG"
check_ge "and in the audit trail" 5 "$(pq "SELECT count(*) FROM console_audit WHERE action = 'drift.flagged'")"
out=$(ctl audrey drift)
check_eq "elsctl drift exits 1 while drift is open" 1 "$?"
check "... and lists it" grep -q "lab-04 *policy" <<<"$out"
beat lab-04 "$SHA1"
check "fixed: lab-04's policy drift is resolved" wait_drift "agent_id = 'lab-04' AND kind = 'policy' AND resolved_at IS NOT NULL"
check "the resolution is audited" wait_until count_at_least 1 \
	"SELECT count(*) FROM console_audit WHERE action = 'drift.resolved' AND target = 'lab-04'"
pq "DELETE FROM console_agents WHERE agent_id LIKE 'lab-%'"

# ---- version 2 to web, then one command rolls it back to version 1 ----
ctl alice registry add ssh --proto tcp --port 22 --dir in --justification "admin access" \
	--owner ops --expires 2099-01-01 >/dev/null
check "with the ssh entry renewed, bob approves version 2" ctl bob policy approve "$V2"
SHA2=$(pq "SELECT sha256 FROM console_policy_versions WHERE id = $V2")
D2=$(ctl bob --json deploy --canary 25% "$V2" | jq -r .deployment.id)
check_eq "25% of 4 agents is one canary" 1 \
	"$(pq "SELECT count(*) FROM console_deployment_targets WHERE deployment_id = $D2 AND wave = 0")"
check "version 2 reaches the whole group" wait_state "$D2" "done"
check_eq "every web agent runs version 2" "$SHA2 $SHA2 $SHA2 $SHA2" \
	"$(for a in web-01 web-02 web-03 web-04; do runs $a; done | xargs)"
out=$(ctl bob --json rollback web)
check_eq "one command rolls group web back" 0 "$?"
D3=$(jq -r .deployment.id <<<"$out")
check_eq "the rollback deploys version 1, the one version 2 replaced" "$V1" \
	"$(pq "SELECT version_id FROM console_deployments WHERE id = $D3")"
check "the rollback completes" wait_state "$D3" "done"
check_eq "every web agent runs version 1 again" "$SHA1 $SHA1 $SHA1 $SHA1" \
	"$(for a in web-01 web-02 web-03 web-04; do runs $a; done | xargs)"
check_eq "the rollback is audited with bob's identity" 1 \
	"$(pq "SELECT count(*) FROM console_audit WHERE action = 'deploy.rollback' AND identity = 'bob' AND outcome = 'ok'")"

# ---- a failing canary halts the deployment ----
V3=$(ctl alice --json policy propose --group api "$WORK/v1.conf" | jq -r .version.id)
ctl bob policy approve "$V3" >/dev/null
D4=$(ctl bob --json deploy --canary 1 "$V3" | jq -r .deployment.id)
check_eq "api-01 (connected, first by name) is the canary" api-01 \
	"$(pq "SELECT agent_id FROM console_deployment_targets WHERE deployment_id = $D4 AND wave = 0")"
check "api-01 refuses the policy: the deployment halts" wait_state "$D4" halted
check "the halt reason names the agent" grep -q "canary agent api-01 failed to apply" \
	<<<"$(pq "SELECT halt_reason FROM console_deployments WHERE id = $D4")"
sleep 2
check_eq "api-02 was never sent the policy" 0 "$(applies api-02)"
check_eq "its target stays pending, outside any open wave" "pending|0" \
	"$(pq "SELECT t.state, d.open_wave FROM console_deployment_targets t JOIN console_deployments d
	       ON d.id = t.deployment_id WHERE d.id = $D4 AND t.agent_id = 'api-02'")"
check "the halt is alerted in the log" grep -q "deployment $D4 to group api: canary -> halted" "$CLOG"
# ---- a canary that goes silent after its apply: management lockout halts the deployment ----
python3 "$AGENT" run "127.0.0.1:$AGENT_PORT" "$CA/ca.crt" "$WORK/db-01.crt" "$WORK/db-01.key" \
	--id db-01 --group db --events "$WORK/db-01.ev" --heartbeat 1 >/dev/null 2>&1 &
LOCK_PID=$!
BG_PIDS+=("$LOCK_PID")
agent db-02 db
db_up() { [[ $(pq "SELECT count(*) FROM console_agents WHERE grp = 'db' AND connected_to IS NOT NULL") == 2 ]]; }
check "db-01 and db-02 said hello" wait_until db_up
V5=$(ctl alice --json policy propose --group db "$WORK/v1.conf" | jq -r .version.id)
ctl bob policy approve "$V5" >/dev/null
D5=$(ctl bob --json deploy --canary 1 "$V5" | jq -r .deployment.id)
got_apply() { [[ $(applies db-01) -ge 1 ]]; }
wait_until got_apply && kill "$LOCK_PID" # it applied, and is never heard of again
check "the canary silent after its apply halts the deployment" wait_state "$D5" halted
check "the halt reason says management lockout, naming db-01" grep -q "canary agent db-01 .*management lockout" \
	<<<"$(pq "SELECT halt_reason FROM console_deployments WHERE id = $D5")"
check_eq "db-02 was never sent the policy" 0 "$(applies db-02)"

out=$(ctl bob rollback api 2>&1)
check "rolling back a group that never completed a deployment is refused, in words" \
	grep -q "no previous approved version" <<<"$out"
check_eq "the console kept running throughout" 0 "$(kill -0 "$CONSOLE_PID"; echo $?)"

# ---- elsctl talks to a console only: a server with an agent's certificate of the same CA,
# valid for the address elsctl dials ----
FAKE_PORT=$(free_port)
"$PKI" agent "$CA" impostor --host localhost --ip 127.0.0.1 >/dev/null
python3 - "$FAKE_PORT" "$CA/agents/impostor.crt" "$CA/agents/impostor.key" "$CA/ca.crt" "$WORK/fake.got" <<'PY' &
import socket, ssl, sys
port, cert, key, ca, got = sys.argv[1:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_OPTIONAL
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(port)))
s.listen(1)
s.settimeout(20)
open(got, "wb").close()
c, _ = s.accept()
try:
    t = ctx.wrap_socket(c, server_side=True)
    t.settimeout(3)
    open(got, "wb").write(t.recv(65536))
except Exception as e:
    open(got + ".err", "w").write(str(e))
PY
FAKE_PID=$!
BG_PIDS+=("$FAKE_PID")
wait_until test -e "$WORK/fake.got"
out=$("$ELSCTL" --console "https://127.0.0.1:$FAKE_PORT" --cert "$CA/consoles/bob.crt" \
	--key "$CA/consoles/bob.key" --ca "$CA/ca.crt" policy propose --group web "$WORK/v1.conf" 2>&1)
check_eq "elsctl refuses a server whose certificate is an agent's (exit 3)" 3 "$?"
check "... saying it is not a console's" grep -q "not a console's" <<<"$out"
wait "$FAKE_PID"
check_eq "... and the policy never reached that server" 0 "$(wc -c <"$WORK/fake.got")"

kill "$CONSOLE_PID"
wait "$CONSOLE_PID"
check_eq "els-console stops cleanly on SIGTERM" 0 "$?"
CONSOLE_PID=

# ---- the two-person rule is configurable ----
sed -i 's/two_person = true;/two_person = false;/' "$WORK/console.conf"
"$CONSOLE_BIN" -c "$WORK/console.conf" >>"$CLOG" 2>&1 &
CONSOLE_PID=$!
wait_until api_up || fail "els-console restarts"
V4=$(ctl alice --json policy propose --group web --comment "solo" "$WORK/v1.conf" | jq -r .version.id)
check "with change_control.two_person = false the author may approve" ctl alice policy approve "$V4"
check_eq "... recorded as approved by alice" "approved|alice" \
	"$(pq "SELECT state, approved_by FROM console_policy_versions WHERE id = $V4")"
kill "$CONSOLE_PID"
wait "$CONSOLE_PID"
check_eq "els-console stops cleanly again" 0 "$?"
CONSOLE_PID=
check_eq "no sanitizer report in the console's log" 0 \
	"$(grep -E "AddressSanitizer|runtime error|LeakSanitizer" -c "$CLOG")"
els_finish
