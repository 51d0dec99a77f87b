# shellcheck shell=bash
# A fleet under a console, for t_console_fleet.sh and scripts/demo --fleet: a real PostgreSQL
# (pglib.sh), a real els-console in the client namespace of lib.sh ($CLI, 198.18.0.1), and
# three real elsd agents, each in a namespace of its own with its INPUT and OUTPUT steered to
# NFQUEUE, no listening management port, dialling the console:
#   agent1 in $SRV (198.18.0.2, lib.sh's server), agent2 in $ELS_TAG-a2 (198.18.2.2) and
#   agent3 in $ELS_TAG-a3 (198.18.3.2), each joined to $CLI by a veth pair of its own.
# Certificates from pki/els-pki: the console's server certificate, one per agent, and the
# operators alice and bob (admin) and carol (auditor). Every name carries the PID ($ELS_TAG);
# fleet_cleanup (the EXIT trap fleet_setup sets) removes everything, also after a failure.
# Source after lib.sh and pglib.sh; then fleet_setup, fleet_start_console, fleet_start_agent ID.
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
CONSOLE_BIN=$ELS_BUILD_DIR/els-console
ELSCTL=$ELS_BUILD_DIR/elsctl
PKI=$ELS_SOURCE_DIR/pki/els-pki
FLEET_IDS=(agent1 agent2 agent3)
declare -A FLEET_NS FLEET_ADDR FLEET_PID
FLEET_EXTRA_NS=()
CONSOLE_PID=
CA= CLOG= API_URL=https://$CLI4:8443
CONSOLE_PORT=7444

# The policy documents a console sends: conf/elsd.conf's chain and handler sections with the
# permits replaced by the one every agent needs to reach its console (console-out) and those
# given as arguments (libconfig permit lines).
FLEET_OUT_PERMIT='{ id = "console-out"; dir = "out"; proto = "tcp"; remote_ports = [ 7444 ]; }'
fleet_policy() { # fleet_policy FILE [PERMIT...]
	local out=$1 p
	shift
	{
		sed -n '/^chain = /,/^header_filter = {/p' "$ELS_SOURCE_DIR/conf/elsd.conf"
		printf '  permits = (\n    %s' "$FLEET_OUT_PERMIT"
		for p in "$@"; do printf ',\n    %s' "$p"; done
		printf '\n  );\n};\n'
	} >"$out"
}

fleet_cleanup() {
	set +e
	local id ns
	for id in "${FLEET_IDS[@]}"; do
		[[ -n ${FLEET_PID[$id]:-} ]] && kill "${FLEET_PID[$id]}" 2>/dev/null &&
			wait "${FLEET_PID[$id]}" 2>/dev/null
	done
	[[ -n $CONSOLE_PID ]] && kill "$CONSOLE_PID" 2>/dev/null && wait "$CONSOLE_PID" 2>/dev/null
	CONSOLE_PID=
	for ns in "${FLEET_EXTRA_NS[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	pg_stop
	els_cleanup
}

# The network (lib.sh's pair plus one namespace per extra agent), PostgreSQL and the PKI.
fleet_setup() {
	els_setup
	trap fleet_cleanup EXIT
	FLEET_NS[agent1]=$SRV FLEET_ADDR[agent1]=$SRV4
	local i ns id
	for i in 2 3; do
		ns=$ELS_TAG-a$i
		FLEET_EXTRA_NS+=("$ns") # before it exists: cleaned up whatever happens next
		FLEET_NS[agent$i]=$ns FLEET_ADDR[agent$i]=198.18.$i.2
		ip netns add "$ns" &&
			ip link add "$ELS_TAG-c$i" netns "$CLI" type veth peer name "$ELS_TAG-a$i" netns "$ns" &&
			ip -n "$ns" link set "$ELS_TAG-a$i" name eth0 &&
			ip -n "$CLI" addr add "198.18.$i.1/24" dev "$ELS_TAG-c$i" &&
			ip -n "$CLI" link set "$ELS_TAG-c$i" up &&
			ip -n "$ns" link set lo up && ip -n "$ns" addr add "198.18.$i.2/24" dev eth0 &&
			ip -n "$ns" link set eth0 up && ip -n "$ns" route add default via "198.18.$i.1" ||
			{ echo "fleet_setup: namespace $ns"; return 1; }
	done
	for id in "${FLEET_IDS[@]}"; do SRV=${FLEET_NS[$id]} els_steer || return 1; done
	pg_start >/dev/null || { echo "fleet_setup: PostgreSQL did not start"; return 1; }

	CA=$WORK/pki
	{
		"$PKI" init "$CA" &&
			"$PKI" console-server "$CA" console-1 --host console.test --ip "$CLI4" &&
			"$PKI" console "$CA" alice --role admin && "$PKI" console "$CA" bob --role admin &&
			"$PKI" console "$CA" carol --role auditor
	} >/dev/null || { echo "fleet_setup: els-pki failed"; return 1; }
	for id in "${FLEET_IDS[@]}"; do
		"$PKI" agent "$CA" "$id" --host "$id.test" >/dev/null || { echo "fleet_setup: els-pki agent $id"; return 1; }
	done
}

# els-console in $CLI: agent port $CLI4:7444, API $API_URL, database from pg_start.
fleet_start_console() {
	CLOG=$WORK/console.log
	cat >"$WORK/console.conf" <<-EOF
		console = { name = "console-1"; };
		agents = { listen = "$CLI4:$CONSOLE_PORT"; ca = "$CA/ca.crt"; crl = "$CA/crl.pem";
		           cert = "$CA/servers/console-1.crt"; key = "$CA/servers/console-1.key";
		           heartbeat_timeout_s = 5; };
		api = { listen = "$CLI4:8443"; ca = "$CA/ca.crt"; crl = "$CA/crl.pem";
		        cert = "$CA/servers/console-1.crt"; key = "$CA/servers/console-1.key"; };
		database = { conninfo = "host=$PGDIR port=$PGPORT dbname=els user=postgres";
		             sql_dir = "$ELS_SOURCE_DIR/console/sql"; };
		change_control = { two_person = true; };
		deploy = { health_wait_s = ${FLEET_HEALTH_WAIT_S:-2}; interval_ms = 500; };
	EOF
	"$CONSOLE_BIN" -n -c "$WORK/console.conf" >/dev/null || return 1
	ip netns exec "$CLI" "$CONSOLE_BIN" -d -c "$WORK/console.conf" >>"$CLOG" 2>&1 &
	CONSOLE_PID=$!
	local end=$((SECONDS + 20))
	until grep -q "console console-1 running" "$CLOG"; do
		kill -0 "$CONSOLE_PID" 2>/dev/null && ((SECONDS < end)) || { cat "$CLOG"; return 1; }
		sleep 0.1
	done
}

# ctl WHO ARGS...: elsctl --console $API_URL as operator WHO (run in $CLI, where the API is).
ctl() {
	local who=$1
	shift
	ip netns exec "$CLI" "$ELSCTL" --console "$API_URL" --cert "$CA/consoles/$who.crt" \
		--key "$CA/consoles/$who.key" --ca "$CA/ca.crt" "$@"
}

# fleet_start_agent ID: elsd in the agent's namespace with conf/elsd.conf's policy (port 8080
# closed), a console section, no management listener; its files under $WORK/ID/.
fleet_start_agent() {
	local id=$1 dir=$WORK/$1
	local log=$dir/elsd.log
	if [[ ! -d $dir ]]; then
		mkdir -p "$dir/policy.d" && mkdir -m 0700 "$dir/tls" || return 1
		install -m 0644 "$CA/ca.crt" "$CA/crl.pem" "$dir/tls/"
		install -m 0644 "$CA/agents/$id.crt" "$dir/tls/agent.crt"
		install -m 0600 "$CA/agents/$id.key" "$dir/tls/agent.key"
		sed -e "s|/var/lib/elsd/monitor.db|$dir/monitor.db|" \
			-e "s|{ id = \"https-in\";|$FLEET_OUT_PERMIT,\n    &|" \
			"$ELS_SOURCE_DIR/conf/elsd.conf" >"$dir/elsd.conf"
		cat >>"$dir/elsd.conf" <<-EOF
			policy_dir = "$dir/policy.d";
			agent_id = "$id";
			console = { address = "$CLI4:$CONSOLE_PORT"; ca = "$dir/tls/ca.crt";
			            cert = "$dir/tls/agent.crt"; key = "$dir/tls/agent.key";
			            crl = "$dir/tls/crl.pem"; group = "web"; heartbeat_s = 1; };
			management = { user = "nobody"; };
		EOF
		ip netns exec "${FLEET_NS[$id]}" python3 -c '
import socket,sys,threading
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(64)
while True:
    c,_=s.accept(); c.sendall(b"hello\n"); threading.Timer(30, c.close).start()
' >/dev/null 2>&1 &
		BG_PIDS+=($!)
		disown $! # killed by PID at cleanup, without a job notice
	fi
	echo "--- start" >>"$log"
	ip netns exec "${FLEET_NS[$id]}" "$ELSD" -c "$dir/elsd.conf" \
		--control-socket "$dir/ctl.sock" >>"$log" 2>&1 &
	FLEET_PID[$id]=$!
	local end=$((SECONDS + 10)) n
	n=$(grep -c "^--- start" "$log")
	until [[ $(grep -c "started:" "$log") -ge $n ]]; do
		kill -0 "${FLEET_PID[$id]}" 2>/dev/null && ((SECONDS < end)) || { tail "$log"; return 1; }
		sleep 0.1
	done
}

# fleet_stop_agent ID: SIGTERM, and its exit status.
fleet_stop_agent() {
	local pid=${FLEET_PID[$1]:-}
	[[ -n $pid ]] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid"
	local rc=$?
	FLEET_PID[$1]=
	return $rc
}

# fleet_reach ID: a TCP connection from $CLI to the agent's port 8080 gets the listener's line.
fleet_reach() {
	in_cli timeout 2 bash -c "exec 3<>/dev/tcp/${FLEET_ADDR[$1]}/8080 && head -c5 <&3" 2>/dev/null |
		grep -q hello
}

# fleet_wait SECONDS CMD...: CMD every 0.2 s until it succeeds.
fleet_wait() { local end=$((SECONDS + $1)); shift; until "$@"; do ((SECONDS < end)) || return 1; sleep 0.2; done; }
fleet_connected() { # fleet_connected N: N agents are connected to console-1
	[[ $(pq "SELECT count(*) FROM console_agents WHERE connected_to = 'console-1'" 2>/dev/null) == "$1" ]]
}
fleet_dep_state() { pq "SELECT state FROM console_deployments WHERE id = $1"; }
fleet_dep_is() { [[ $(fleet_dep_state "$1") == "$2" ]]; }
fleet_target() { pq "SELECT state FROM console_deployment_targets WHERE deployment_id = $1 AND agent_id = '$2'"; }
fleet_target_is() { [[ $(fleet_target "$1" "$2") == "$3" ]]; }
