#!/usr/bin/env bash
# Issue 15's "done when", end to end: a real PostgreSQL, a real els-console and three real elsd
# agents, each in its own network namespace behind NFQUEUE with no listening management port,
# dialling the console (fleet_lib.sh). Change control only through the API, with elsctl
# --console and els-pki's client certificates:
#   - a first version (port 8080 closed) deployed while agent3 is stopped: the canary and
#     agent2 apply it, agent3's target stays pending and the deployment waits (rolling), and
#     it completes when agent3 starts again (docs/console-api.md, "Staged deployment");
#   - alice proposes a version that opens port 8080; her own approval is refused (two-person
#     rule), auditor carol's deployment is refused, bob approves and deploys with a canary of
#     1: the canary runs it (real traffic reaches its port 8080) while the two others still
#     refuse the port; after the health gate the rest follow (timestamps of the targets), and
#     then the port answers on all three;
#   - one rollback command: the port is closed again on all three.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
. "$(dirname "$0")/fleet_lib.sh"
els_require
[[ -x $CONSOLE_BIN && -x $ELSCTL ]] || { echo "els-console/elsctl not built in $ELS_BUILD_DIR"; exit 1; }
T0=$SECONDS
FLEET_HEALTH_WAIT_S=5 # the canary runs alone > 4 s: time to see it by traffic (reach_all <= 2 s)
fleet_setup || { fail "fleet setup (namespaces, PostgreSQL, els-pki)"; els_finish; exit 1; }
check "els-console starts with PostgreSQL" fleet_start_console
[[ -n $CONSOLE_PID ]] || { els_finish; exit 1; }

# ---- the registry: the two permits the versions use ----
check "alice adds registry entry console-out" ctl alice registry add console-out --proto tcp \
	--port 7444 --dir out --justification "agents dial their console" --owner ops \
	--category management --expires 2099-12-31
check "alice adds registry entry web-8080" ctl alice registry add web-8080 --proto tcp \
	--port 8080 --dir in --justification "the web application" --owner "web team" \
	--category service --expires 2099-12-31

# ---- three agents dial in ----
for id in "${FLEET_IDS[@]}"; do
	check "elsd $id starts in namespace ${FLEET_NS[$id]}" fleet_start_agent "$id"
done
check "the three agents are recorded as connected" fleet_wait 20 fleet_connected 3
for id in "${FLEET_IDS[@]}"; do
	check_not "$id's elsd listens on no TCP port" \
		bash -c "ip netns exec '${FLEET_NS[$id]}' ss -ltnpH | grep -q elsd"
done
check_eq "elsctl fleet (auditor carol) lists the three agents of group web" "agent1 agent2 agent3" \
	"$(ctl carol --json fleet --group web | jq -r '.agents[].id' | sort | xargs)"
reach_all() { # reach_all: "agent1:yes agent2:no ..." by real traffic, the three tried at once
	local id pids=()
	for id in "${FLEET_IDS[@]}"; do
		{ fleet_reach "$id" && echo "$id:yes" || echo "$id:no"; } >"$WORK/reach.$id" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for id in "${FLEET_IDS[@]}"; do cat "$WORK/reach.$id"; done | xargs
}
CLOSED="agent1:no agent2:no agent3:no" OPEN="agent1:yes agent2:yes agent3:yes"
check_eq "port 8080 is closed on all three by their initial policy" "$CLOSED" "$(reach_all)"

# ---- version 1 (8080 closed) while agent3 is stopped: it completes when agent3 is back ----
fleet_policy "$WORK/v1.conf"
SHA1=$(sha256sum "$WORK/v1.conf" | cut -d' ' -f1)
V1=$(ctl alice --json policy propose --group web --comment "baseline" "$WORK/v1.conf" | jq -r .version.id)
check "bob approves version 1" ctl bob policy approve "$V1"
fleet_stop_agent agent3
check_eq "agent3 stops cleanly (SIGTERM, exit 0)" 0 "$?"
check "the console records agent3 as disconnected" fleet_wait 10 fleet_connected 2
D1=$(ctl bob --json deploy --canary 1 "$V1" | jq -r .deployment.id)
check_eq "bob's deployment of version 1 targets all three, agent3 too" "agent1:0 agent2:1 agent3:1" \
	"$(pq "SELECT string_agg(agent_id || ':' || wave, ' ' ORDER BY agent_id)
	       FROM console_deployment_targets WHERE deployment_id = $D1")"
check "the canary agent1 and agent2 apply it" \
	fleet_wait 20 bash -c "[[ \$(runuser -u postgres -- '$PGBIN/psql' -h '$PGDIR' -p '$PGPORT' -XAtq \
	-c \"SELECT count(*) FROM console_deployment_targets WHERE deployment_id = $D1 AND state = 'ok'\" els) == 2 ]]"
sleep 1 # a deployer pass (interval 0.5 s) and a gate pass (1 s) with agent3 still away
check_eq "offline agent3's target stays pending and the deployment waits (rolling)" "pending|rolling" \
	"$(fleet_target "$D1" agent3)|$(fleet_dep_state "$D1")"
check "agent3 starts again" fleet_start_agent agent3
check "agent3 reconnects and gets version 1: its target ok" fleet_wait 20 fleet_target_is "$D1" agent3 ok
check "the deployment completes (done)" fleet_wait 10 fleet_dep_is "$D1" "done"
check "agent3's policy directory holds version 1" cmp -s "$WORK/agent3/policy.d/policy.conf" "$WORK/v1.conf"
check_eq "port 8080 is still closed on all three" "$CLOSED" "$(reach_all)"

# ---- version 2 opens port 8080: change control through the API ----
fleet_policy "$WORK/v2.conf" '{ id = "web-8080"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; }'
SHA2=$(sha256sum "$WORK/v2.conf" | cut -d' ' -f1)
out=$(ctl alice --json policy propose --group web --comment "open 8080" "$WORK/v2.conf")
check_eq "alice proposes version 2 (exit 0)" 0 "$?"
V2=$(jq -r .version.id <<<"$out")
out=$(ctl alice policy approve "$V2" 2>&1)
check_eq "alice's approval of her own proposal is refused (exit 1)" 1 "$?"
check "... by the two-person rule, HTTP 403" grep -q "HTTP 403.*two-person\|two-person.*HTTP 403" <<<"$out"
check "bob approves version 2" ctl bob policy approve "$V2"
check_eq "version 2: proposed by alice, approved by bob" "approved|alice|bob" \
	"$(pq "SELECT state, author, approved_by FROM console_policy_versions WHERE id = $V2")"
out=$(ctl carol deploy --canary 1 "$V2" 2>&1)
check_eq "auditor carol's deployment is refused (exit 1)" 1 "$?"
check "... with HTTP 403" grep -q "HTTP 403" <<<"$out"
check_eq "... and started nothing" 1 "$(pq "SELECT count(*) FROM console_deployments")"
check_eq "port 8080 is closed on all three before the deployment" "$CLOSED" "$(reach_all)"

D2=$(ctl bob --json deploy --canary 1 "$V2" | jq -r .deployment.id)
check_eq "bob deploys version 2 with a canary of 1: agent1 in wave 0" "agent1:0 agent2:1 agent3:1" \
	"$(pq "SELECT string_agg(agent_id || ':' || wave, ' ' ORDER BY agent_id)
	       FROM console_deployment_targets WHERE deployment_id = $D2")"
check "the canary agent1 applies it first" fleet_wait 20 fleet_target_is "$D2" agent1 ok
gate() { pq "SELECT coalesce(gate_passed_at::text, 'none') FROM console_deployments WHERE id = $D2"; }
g1=$(gate)
seen=$(reach_all)
g2=$(gate)
if [[ $g1 == none && $g2 == none ]]; then
	check_eq "while the canary runs alone, only agent1 answers on port 8080" \
		"agent1:yes agent2:no agent3:no" "$seen"
else
	fail "the health gate passed before the canary could be seen alone (gate $g1 / $g2)"
fi
check "after the health gate, the rest follow: deployment done" fleet_wait 30 fleet_dep_is "$D2" "done"
check_eq "the canary applied before the gate passed, the rest were sent after it" t \
	"$(pq "SELECT max(t.done_at) FILTER (WHERE wave = 0) <= d.gate_passed_at AND
	       d.gate_passed_at <= min(t.sent_at) FILTER (WHERE wave = 1)
	       FROM console_deployment_targets t JOIN console_deployments d ON d.id = t.deployment_id
	       WHERE d.id = $D2 GROUP BY d.gate_passed_at")"
# change_gate.c compares whole epoch seconds: health_wait_s = 5 holds the rest back > 4 s
check_eq "the gate held the rest back health_wait_s (5, in whole seconds) after the canary's apply" t \
	"$(pq "SELECT d.gate_passed_at > t.done_at + interval '4 s' FROM console_deployments d
	       JOIN console_deployment_targets t ON t.deployment_id = d.id
	       WHERE d.id = $D2 AND t.agent_id = 'agent1'")"
check_eq "the port opens on all three" "$OPEN" "$(reach_all)"
mon_names_bob() {
	local id n=0
	for id in "${FLEET_IDS[@]}"; do
		[[ $(sqlite3 "$WORK/$id/monitor.db" "SELECT count(*) FROM records WHERE kind = 'event'
			AND detail LIKE 'mgmt bob via console-1/admin@% policy.apply: ok gen %'" 2>/dev/null) -ge 1 ]] &&
			n=$((n + 1))
	done
	((n == 3))
}
check "each agent's monitor names bob via console-1 for the apply" fleet_wait 10 mon_names_bob
runs_all() { [[ $(pq "SELECT string_agg(policy_sha256, ' ' ORDER BY agent_id) FROM console_agents
	WHERE grp = 'web'") == "$1 $1 $1" ]]; }
check "the heartbeats of all three report version 2 running" fleet_wait 10 runs_all "$SHA2"

# ---- one command rolls the group back: the port closes on all three ----
out=$(ctl carol rollback web 2>&1)
check "auditor carol's rollback is refused with HTTP 403" grep -q "HTTP 403" <<<"$out"
out=$(ctl bob --json rollback web)
check_eq "bob rolls group web back (exit 0)" 0 "$?"
D3=$(jq -r .deployment.id <<<"$out")
check_eq "the rollback deploys version 1, the one version 2 replaced" "$V1" \
	"$(pq "SELECT version_id FROM console_deployments WHERE id = $D3")"
check "the rollback completes" fleet_wait 30 fleet_dep_is "$D3" "done"
check_eq "port 8080 is closed again on all three" "$CLOSED" "$(reach_all)"
check "the heartbeats of all three report version 1 running" fleet_wait 10 runs_all "$SHA1"
check_eq "the audit trail holds the change, by certificate identity" \
	"policy.propose:alice policy.approve:bob deploy.start:bob deploy.rollback:bob" \
	"$(pq "SELECT string_agg(action || ':' || identity, ' ' ORDER BY id) FROM console_audit
	       WHERE outcome = 'ok' AND action IN ('policy.propose', 'policy.approve', 'deploy.start',
	       'deploy.rollback') AND (target = '$V2' OR action = 'deploy.rollback'
	       OR detail->>'version_id' = '$V2')")"

for id in "${FLEET_IDS[@]}"; do
	fleet_stop_agent "$id"
	check_eq "$id's elsd stops cleanly" 0 "$?"
done
kill "$CONSOLE_PID"
wait "$CONSOLE_PID"
check_eq "els-console stops cleanly" 0 "$?"
CONSOLE_PID=
check_eq "no sanitizer report from the console or the agents" 0 \
	"$(cat "$CLOG" "$WORK"/agent*/elsd.log | grep -cE "AddressSanitizer|runtime error|LeakSanitizer")"
log "took $((SECONDS - T0)) s"
els_finish
