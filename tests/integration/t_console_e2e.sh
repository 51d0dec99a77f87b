#!/usr/bin/env bash
# End to end: real elsd (NFQUEUE in its namespace, no listening management port) dials a real
# els-console backed by a real PostgreSQL; the console records it from its hello and
# heartbeats, and a deployment made as change control makes one (NOTIFY els_deploy) reaches
# the agent over the agent's own connection: the policy changes what real traffic passes,
# the agent's monitor names the deployment's starter, and the console's tables show the
# result and the new running policy. A console restart: the agent comes back by itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
CONSOLE=$ELS_BUILD_DIR/els-console PKI=$ELS_SOURCE_DIR/pki/els-pki
[[ -x $CONSOLE ]] || { echo "els-console not built in $ELS_BUILD_DIR"; exit 1; }
els_setup
CPID=
stop_console() { [[ -n $CPID ]] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null; CPID=; }
trap 'stop_console; pg_stop; els_cleanup' EXIT
pg_start >/dev/null || { fail "PostgreSQL starts"; els_finish; exit 1; }

CA=$WORK/ca TLS=$WORK/tls
{
	"$PKI" init "$CA" && "$PKI" agent "$CA" agent1 --host agent1.test &&
		"$PKI" console-server "$CA" console-1 --host console.test --ip $CLI4
} >/dev/null || { fail "els-pki"; els_finish; exit 1; }
mkdir -m 0700 "$TLS"
install -m 0644 "$CA/ca.crt" "$CA/crl.pem" "$TLS/"
install -m 0644 "$CA/agents/agent1.crt" "$TLS/agent.crt"
install -m 0600 "$CA/agents/agent1.key" "$TLS/agent.key"

cat >"$WORK/console.conf" <<EOF
console = { name = "console-1"; };
agents = { listen = "$CLI4:7444"; ca = "$CA/ca.crt"; crl = "$CA/crl.pem";
           cert = "$CA/servers/console-1.crt"; key = "$CA/servers/console-1.key";
           heartbeat_timeout_s = 5; };
api = { listen = "$CLI4:8443"; ca = "$CA/ca.crt"; crl = "$CA/crl.pem";
        cert = "$CA/servers/console-1.crt"; key = "$CA/servers/console-1.key"; };
database = { conninfo = "host=$PGDIR port=$PGPORT dbname=els user=postgres";
             sql_dir = "$ELS_SOURCE_DIR/console/sql"; };
deploy = { interval_ms = 600000; };
EOF
start_console() {
	echo "--- start" >>"$WORK/console.log"
	ip netns exec "$CLI" "$CONSOLE" -d -c "$WORK/console.conf" >>"$WORK/console.log" 2>&1 &
	CPID=$!
	wait_until grep -q "console console-1 running" "$WORK/console.log"
}
wait_for() { local end=$((SECONDS + $1)); shift; until "$@"; do ((SECONDS < end)) || return 1; sleep 0.2; done; }
check "els-console starts with PostgreSQL" start_console

OUT_PERMIT='{ id = "console-out"; dir = "out"; proto = "tcp"; remote_ports = [ 7444 ]; },'
CONF=$WORK/elsd.conf
els_config "$CONF" "s|{ id = \"https-in\";|$OUT_PERMIT\n    &|"
cat >>"$CONF" <<EOF
agent_id = "agent1";
console = { address = "$CLI4:7444"; ca = "tls/ca.crt"; cert = "tls/agent.crt";
            key = "tls/agent.key"; crl = "tls/crl.pem"; group = "web"; heartbeat_s = 1; };
management = { user = "nobody"; };
EOF
els_steer
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || { els_finish; exit 1; }
tcp8080() { in_cli timeout 3 bash -c "exec 3<>/dev/tcp/$SRV4/8080 && head -c5 <&3" 2>/dev/null | grep -q hello; }

agent() { pq "SELECT $1 FROM console_agents WHERE agent_id = 'agent1'" 2>/dev/null; }
connected() { [[ $(agent "coalesce(connected_to, '-')") == console-1 ]]; }
check "elsd dials the console and is recorded as connected" wait_for 20 connected
check_not "elsd listens on no TCP port" bash -c "ip netns exec '$SRV' ss -ltnpH | grep -q elsd"
check_eq "console_agents: group from console.group" web "$(agent grp)"
check_eq "console_agents: the running policy's hash" "$(sha256sum "$CONF" | cut -d' ' -f1)" \
	"$(agent policy_sha256)"
check_eq "console_agents: not managed yet" f "$(agent managed)"
check_eq "console_agents: the listener on 8080 is reported" t \
	"$(agent "listeners @> '[{\"port\": 8080, \"proto\": \"tcp\"}]'::jsonb")"
check_not "port 8080 is closed by the initial policy" tcp8080

# A deployment as change control makes one (its tables: console/sql/002_change.sql), then
# NOTIFY els_deploy.
els_policy_doc "$WORK/open8080.conf" \
	"s|{ id = \"https-in\";|$OUT_PERMIT\n    { id = \"web-8080\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8080 ]; },\n    &|"
SHA=$(sha256sum "$WORK/open8080.conf" | cut -d' ' -f1)
deploy() { # deploy FILE STARTER: prints the deployment id
	# One statement: the health gate must never see the deployment without its target (a
	# rolling deployment with nothing left to send is done at once).
	pq "WITH v AS (INSERT INTO console_policy_versions (grp, version, body, sha256, author, state)
		VALUES ('web', (SELECT count(*) + 1 FROM console_policy_versions),
		convert_from(decode('$(base64 -w0 "$1")', 'base64'), 'UTF8'), '$(sha256sum "$1" | cut -d' ' -f1)',
		'carol', 'approved') RETURNING id),
	d AS (INSERT INTO console_deployments (grp, version_id, started_by, state, open_wave)
		SELECT 'web', id, '$2', 'rolling', 1 FROM v RETURNING id),
	t AS (INSERT INTO console_deployment_targets (deployment_id, agent_id, wave)
		SELECT id, 'agent1', 0 FROM d RETURNING 1)
	SELECT id FROM d" | head -1
	pq "NOTIFY els_deploy" >/dev/null
}
target() { pq "SELECT state FROM console_deployment_targets WHERE deployment_id = $1 AND agent_id = 'agent1'"; }
target_is() { [[ $(target "$1") == "$2" ]]; }
D1=$(deploy "$WORK/open8080.conf" dave)
check "the deployment reaches the agent over its own connection: target ok" wait_for 20 target_is "$D1" ok
check "the deployed policy opens port 8080 to real traffic" tcp8080
check "the agent's monitor names the deployment's starter via the console" wait_records \
	"kind = 'event' AND handler = 'mgmt' AND detail LIKE 'mgmt dave via console-1/admin@$CLI4 policy.apply: ok gen %'"
check "the agent's policy directory holds the deployed document" cmp -s "$WORK/policy.d/policy.conf" "$WORK/open8080.conf"
check "heartbeats report the new running policy, managed" wait_for 10 \
	bash -c "[[ \$(runuser -u postgres -- '$PGBIN/psql' -h '$PGDIR' -p '$PGPORT' -XAtq -c \"SELECT policy_sha256 || managed::text FROM console_agents WHERE agent_id = 'agent1'\" els) == ${SHA}true ]]"

# A document the agent refuses (an agent setting in it): the target fails with the agent's reason.
{ cat "$WORK/open8080.conf"; printf 'management = { listen = "0.0.0.0:7443"; };\n'; } >"$WORK/evil.conf"
D2=$(deploy "$WORK/evil.conf" mallory)
check "a document holding an agent setting fails at the agent" wait_for 20 target_is "$D2" failed
check "... with the agent's error code" grep -q "^invalid_policy" \
	<<<"$(pq "SELECT error FROM console_deployment_targets WHERE deployment_id = $D2")"
check "... and the running policy is unchanged" cmp -s "$WORK/policy.d/policy.conf" "$WORK/open8080.conf"

# The console restarts: the agent reconnects by itself.
stop_console
check "the agent notices the console is gone" wait_for 15 grep -q "console: $CLI4:7444: .*next try in" "$ELSD_LOG"
check "filtering goes on without the console" tcp8080
check "els-console starts again" start_console
check "the agent is connected again" wait_for 30 \
	bash -c "grep -c 'console: connected to' '$ELSD_LOG' | grep -q '^[2-9]'"
check "and recorded as connected" wait_for 10 connected
els_stop
check_eq "elsd stops cleanly" 0 "$?"
els_finish
