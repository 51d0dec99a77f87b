#!/usr/bin/env bash
# scripts/demo --fleet (run that: it installs and builds first): a fleet of three elsd agents
# under an els-console, with the pieces of tests/integration/t_console_fleet.sh
# (tests/integration/fleet_lib.sh). A newcomer sees each elsctl command as it is typed, what it
# answers, and what real traffic does before and after. Needs root and a build in build/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
[[ $(id -u) == 0 ]] || { echo "scripts/demo --fleet: run as root (it creates network namespaces)" >&2; exit 1; }
ELS_SOURCE_DIR=$PWD ELSD=$PWD/build/elsd ELS_BUILD_DIR=$PWD/build
. tests/integration/lib.sh
. tests/integration/pglib.sh
. tests/integration/fleet_lib.sh
for b in "$ELSD" "$CONSOLE_BIN" "$ELSCTL"; do
	[[ -x $b ]] || { echo "scripts/demo --fleet: $b is not built (run scripts/demo --fleet)" >&2; exit 1; }
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\033[31m%s\033[0m\n' "$*" >&2; exit 1; }
# run WHO ARGS...: elsctl as operator WHO, the command line shown first, its answer indented
run() {
	local args
	printf -v args '%q ' "${@:2}"
	args=${args% }
	printf '  \033[36m$ elsctl --console %s --cert %s.crt ... %s\033[0m\n' "$API_URL" "$1" "$args"
	ctl "$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}
traffic() { # traffic: the client ($CLI4) tries port 8080 of every agent
	local id
	for id in "${FLEET_IDS[@]}"; do
		if fleet_reach "$id"; then
			printf '  client -> %-12s %-26s \033[32mpassed\033[0m\n' "$id" "${FLEET_ADDR[$id]}:8080"
		else
			printf '  client -> %-12s %-26s \033[31mstopped\033[0m\n' "$id" "${FLEET_ADDR[$id]}:8080"
		fi
	done
}
# follow ID: the deployment's targets each time one changes, until it is done or halted
follow() {
	local last='' now state end=$((SECONDS + 60))
	while ((SECONDS < end)); do
		now=$(pq "SELECT string_agg(agent_id || ' (wave ' || wave || '): ' || state, ', '
		          ORDER BY wave, agent_id) FROM console_deployment_targets WHERE deployment_id = $1")
		state=$(fleet_dep_state "$1")
		[[ "$state $now" != "$last" ]] && printf '  +%5d ms  %-14s %s\n' \
			$((($(date +%s%N) - T0) / 1000000)) "$state" "$now"
		last="$state $now"
		[[ $state == "done" || $state == halted ]] && return 0
		sleep 0.2
	done
	return 1
}

step "Setup: PostgreSQL, a CA (pki/els-pki), els-console, three agents in their own namespaces"
fleet_setup || die "fleet setup failed"
fleet_start_console || die "els-console did not start"
echo "  els-console in namespace $CLI: agents dial $CLI4:$CONSOLE_PORT, API and pages at $API_URL/"
for id in "${FLEET_IDS[@]}"; do
	fleet_start_agent "$id" || die "elsd $id did not start"
	echo "  elsd $id in namespace ${FLEET_NS[$id]} (${FLEET_ADDR[$id]}): NFQUEUE, no management port, dials the console"
done
fleet_wait 20 fleet_connected 3 || die "the agents did not connect (see $WORK/agent*/elsd.log)"
echo "  operators: alice and bob (admin), carol (auditor): certificates in $CA/consoles/"

step "The fleet"
run carol fleet

step "The PPS registry: every permit a policy may hold, approved once for the enterprise"
run alice registry add console-out --proto tcp --port 7444 --dir out \
	--justification "agents dial their console" --owner ops --expires 2099-12-31 >/dev/null
run alice registry add web-8080 --proto tcp --port 8080 --dir in \
	--justification "the web application" --owner "web team" --expires 2099-12-31 >/dev/null
run carol registry

step "A baseline version (port 8080 closed), so that there is something to roll back to"
fleet_policy "$WORK/v1.conf"
V1=$(ctl alice --json policy propose --group web --comment baseline "$WORK/v1.conf" | jq -r .version.id)
ctl bob policy approve "$V1" >/dev/null
D1=$(ctl bob --json deploy "$V1" | jq -r .deployment.id)
fleet_wait 30 fleet_dep_is "$D1" "done" || die "the baseline deployment did not complete"
echo "  version $V1 proposed by alice, approved by bob, deployed to group web: deployment $D1 done"

step "Traffic before the change (each agent runs a listener on 8080; elsd stops it)"
traffic

step "Change control: alice proposes a version that opens port 8080"
fleet_policy "$WORK/v2.conf" '{ id = "web-8080"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; }'
echo "  $WORK/v2.conf adds: { id = \"web-8080\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8080 ]; }"
run alice policy propose --group web --comment "open 8080" "$WORK/v2.conf"
V2=$(pq "SELECT max(id) FROM console_policy_versions")
echo "  alice may not approve her own change (two-person rule):"
run alice policy approve "$V2"
echo "  carol is an auditor: she reads everything and changes nothing:"
run carol policy approve "$V2"
echo "  bob approves:"
run bob policy approve "$V2"

step "Staged deployment: canary of 1 agent, health gate, then the rest"
T0=$(date +%s%N)
run bob deploy --canary 1 "$V2"
D2=$(pq "SELECT max(id) FROM console_deployments")
follow "$D2" || die "deployment $D2 did not finish"
run carol deployment "$D2"

step "Traffic after the change"
traffic

step "One command rolls the group back"
T0=$(date +%s%N)
run bob rollback web
D3=$(pq "SELECT max(id) FROM console_deployments")
follow "$D3" || die "rollback $D3 did not finish"
traffic

step "Drift: each agent listens on 8080, which the rolled-back policy no longer permits"
listener_drift() { [[ $(pq "SELECT count(*) FROM console_drift WHERE kind = 'listener' AND resolved_at IS NULL") == 3 ]]; }
fleet_wait 10 listener_drift
run carol drift

step "The audit trail (every action, by certificate identity; the console's own as 'console')"
run carol audit --limit 25

step "The console's web pages"
cat <<EOF
  The pages are at $API_URL/ (the API's address, inside namespace $CLI).
  From this shell, as auditor carol:
    ip netns exec $CLI curl --cacert $CA/ca.crt \\
        --cert $CA/consoles/carol.crt --key $CA/consoles/carol.key $API_URL/api/fleet
  In a browser, import an operator's certificate (docs/console.md, "Opening the console"):
    openssl pkcs12 -export -in $CA/consoles/alice.crt \\
        -inkey $CA/consoles/alice.key -name alice -out alice.p12
  then import alice.p12 (Firefox: Settings, Certificates, Your Certificates, Import), trust
  $CA/ca.crt for web sites, and open $API_URL/ from a browser that runs in $CLI
  (e.g. ip netns exec $CLI firefox).
EOF
if [[ -t 0 ]]; then
	printf '\nThe fleet keeps running. Press Enter to stop it and remove the namespaces... '
	read -r _
fi
step "Stopping: the agents, els-console, PostgreSQL, the namespaces"
