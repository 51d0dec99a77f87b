#!/usr/bin/env bash
# Fleet mode: three real agents, each an elsd in its own namespace whose management endpoint
# is reached over a veth from a console namespace (through the agent's NFQUEUE steering).
# One `elsctl --agents FILE policy apply` updates all three: every generation goes up and the
# new permit takes effect on real traffic. An agent that is down gets a FAILED line and exit 4;
# refusals (auditor, revoked console) fail every line; a bad fleet file is a usage error.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
ELSCTL=${ELSCTL:-$ELS_BUILD_DIR/elsctl}
PKI=$ELS_SOURCE_DIR/pki/els-pki
[[ -x $ELSCTL ]] || { echo "elsctl not built at $ELSCTL"; exit 1; }
els_require
# Our own scratch name: a sweep of /tmp/els-it.* by a concurrent run once removed it mid-test.
# shellcheck disable=SC2034 # lib.sh reads DB and ELSD_LOG
rmdir "$WORK" && WORK=$(mktemp -d /tmp/elsctl-it.XXXXXX) && DB=$WORK/monitor.db &&
	ELSD_LOG=$WORK/elsd.log || exit 1

N=3
CON="$ELS_TAG-con"
AGENTS=() PIDS=() ADDRS=()
fleet_cleanup() {
	set +e
	for p in "${PIDS[@]}"; do [[ -n $p ]] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for ns in "${AGENTS[@]}" "$CON"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	[[ -n ${ELS_KEEP:-} ]] || rm -rf "$WORK"
}
trap fleet_cleanup EXIT
in_con() { ip netns exec "$CON" "$@"; }

CA=$WORK/ca
{
	$PKI init "$CA" &&
		$PKI console "$CA" alice --role admin &&
		$PKI console "$CA" bob --role auditor &&
		$PKI console "$CA" mallory --role admin &&
		$PKI revoke "$CA" "$CA/consoles/mallory.crt"
} >/dev/null || { echo "PKI setup failed"; exit 1; }

# One policy for the whole fleet: management on every address (so the text is the same on
# each agent), TLS files and the deny list relative to the config file, port 7443 permitted.
MGMT='s|^    { id = "https-in";|    { id = "mgmt-in"; dir = "in"; proto = "tcp"; local_ports = [ 7443 ]; },\n&|'
# shellcheck disable=SC2034 # els_config reads DB; each agent writes its own (--monitor)
DB=/var/lib/elsd/unused.db
els_config "$WORK/fleet.conf" "$MGMT" 's|deny_files = \[ \];|deny_files = [ "deny.txt" ];|'
cat >>"$WORK/fleet.conf" <<'EOF'
management = { listen = "0.0.0.0:7443"; ca = "ca.crt"; cert = "agent.crt"; key = "agent.key";
               crl = "crl.pem"; };
EOF
ip netns add "$CON" || exit 1
in_con ip link set lo up
: >"$WORK/agents"
for i in $(seq $N); do
	ns="$ELS_TAG-a$i" dir=$WORK/a$i addr=198.18.1$i.2
	AGENTS+=("$ns") ADDRS+=("$addr")
	ip netns add "$ns" || exit 1
	ip link add "$ELS_TAG-v$i" netns "$CON" type veth peer name eth0 netns "$ns" || exit 1
	in_con ip addr add "198.18.1$i.1/24" dev "$ELS_TAG-v$i"
	in_con ip link set "$ELS_TAG-v$i" up
	ip netns exec "$ns" ip link set lo up
	ip netns exec "$ns" ip addr add "$addr/24" dev eth0
	ip netns exec "$ns" ip link set eth0 up
	mkdir -p "$dir"
	$PKI agent "$CA" "web$i" --host "web$i.test" --ip "$addr" >/dev/null || exit 1
	cp "$CA/ca.crt" "$CA/crl.pem" "$dir/"
	cp "$CA/agents/web$i.crt" "$dir/agent.crt"
	install -m 0600 "$CA/agents/web$i.key" "$dir/agent.key"
	: >"$dir/deny.txt"
	cp "$WORK/fleet.conf" "$dir/elsd.conf"
	# Each agent its own policy directory, holding the list file a console's policy names.
	sed -i "s|^policy_dir = .*|policy_dir = \"$dir/policy.d\";|" "$dir/elsd.conf"
	mkdir -p "$dir/policy.d" && : >"$dir/policy.d/deny.txt"
	SRV=$ns els_steer
	SRV=$ns els_listen "$ns" 8080 || fail "listener on 8080 in agent $i did not start"
	SRV=$ns ELSD_LOG=$dir/elsd.log els_start "$dir/elsd.conf" --monitor "$dir/monitor.db" ||
		exit 1
	PIDS+=("$ELSD_PID")
	ELSD_PID=
	for _ in $(seq 50); do
		ip netns exec "$ns" ss -ltnH 'sport = :7443' | grep -q . && break
		sleep 0.1
	done
	echo "$addr:7443   # web$i" >>"$WORK/agents"
done
# shellcheck disable=SC2034 # fail() prints ELSD_LOG; the agents each have their own
ELSD_LOG=

export ELSCTL_CA=$CA/ca.crt ELSCTL_CERT=$CA/consoles/alice.crt ELSCTL_KEY=$CA/consoles/alice.key
fleet() { in_con "$ELSCTL" --timeout 3 --agents "$WORK/agents" "$@"; }
rc() {
	local d=$1 want=$2 got
	shift 2
	OUT=$("$@" 2>&1)
	got=$?
	if [[ $got == "$want" ]]; then pass "$d"; else
		fail "$d (exit $got, expected $want)"
		printf '#   %s\n' "${OUT//$'\n'/$'\n#   '}"
	fi
}
has() { if grep -qE -- "$2" <<<"$OUT"; then pass "$1"; else fail "$1: no /$2/ in: $OUT"; fi; }
count() { grep -cE -- "$1" <<<"$OUT"; }
reachable() { # how many agents accept a connection on port $1 from the console
	local n=0
	for a in "${ADDRS[@]}"; do in_con nc -z -w 2 "$a" "$1" && n=$((n + 1)); done
	echo $n
}

rc "fleet status" 0 fleet status
check_eq "one ok line per agent, at generation 1" $N "$(count '^198\.18\.1[1-3]\.2:7443 +ok generation 1 ')"
check_eq "8080 is filtered on every agent" 0 "$(reachable 8080)"

# The new policy: the fleet policy plus a permit for 8080.
els_policy_doc "$WORK/new.conf" "$MGMT" 's|deny_files = \[ \];|deny_files = [ "deny.txt" ];|' \
	's|^    { id = "https-in";|    { id = "alt-in"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },\n&|'
hash=$(sha256sum <"$WORK/new.conf" | cut -c1-12)
rc "one command applies the policy to the fleet" 0 fleet policy apply "$WORK/new.conf"
check_eq "every agent reports generation 2 and the new hash" $N \
	"$(count "^198\.18\.1[1-3]\.2:7443 +ok generation 2 sha256 $hash\$")"
check_eq "8080 now passes on every agent" $N "$(reachable 8080)"
same=0
for i in $(seq $N); do cmp -s "$WORK/new.conf" "$WORK/a$i/policy.d/policy.conf" && same=$((same + 1)); done
check_eq "every agent's managed policy is the new one" $N "$same"
rc "fleet status --json" 0 fleet --json status
check_eq "JSON lines: every agent runs generation 2" "2 2 2" "$(python3 -c '
import json,sys
print(" ".join(str(json.loads(l)["result"]["generation"]) for l in sys.stdin if l.strip()))' <<<"$OUT")"
rc "applying the same policy again" 0 fleet policy apply "$WORK/new.conf"
check_eq "... changes nothing" $N "$(count 'ok generation 2 sha256 [0-9a-f]+ \(unchanged\)$')"

# Refusals fail every line.
rc "an auditor cannot push a policy" 1 fleet --cert "$CA/consoles/bob.crt" \
	--key "$CA/consoles/bob.key" policy apply "$WORK/fleet.conf"
check_eq "each agent says forbidden" $N "$(count ' FAILED: forbidden: ')"
rc "a revoked console reaches no agent" 3 fleet --cert "$CA/consoles/mallory.crt" \
	--key "$CA/consoles/mallory.key" status
check_eq "each agent refuses the revoked certificate" $N "$(count ' FAILED: .*certificate revoked')"
rc "a policy with errors is refused by every agent" 1 fleet policy apply "$ELS_SOURCE_DIR/README.md"
check_eq "... with invalid_policy on each line" $N "$(count ' FAILED: invalid_policy: ')"
check_eq "... and every agent still runs generation 2" $N "$(fleet status | grep -c 'ok generation 2 ')"

# One agent down: its line fails, the others are updated, exit 4.
kill "${PIDS[2]}" && wait "${PIDS[2]}"
PIDS[2]=
rc "rollback with one agent down is a partial success" 4 fleet rollback
check_eq "the live agents roll back to generation 3" 2 "$(count ' ok generation 3 sha256 ')"
has "the down agent's line says FAILED" "^198\.18\.13\.2:7443 +FAILED: "
has "a summary says how many failed" "1 of 3 agents failed"
check_eq "8080 is filtered again on the live agents" 0 \
	"$(for a in "${ADDRS[@]:0:2}"; do in_con nc -z -w 2 "$a" 8080 && echo x; done | wc -l)"

# The fleet file itself.
printf 'web1.test:7443\n198.18.11.2:7443 extra\n' >"$WORK/bad.agents"
rc "a malformed fleet file is a usage error" 2 in_con "$ELSCTL" --agents "$WORK/bad.agents" status
has "... naming the file and line" "bad.agents:2: one HOST:PORT per line"

for p in "${PIDS[@]}"; do
	[[ -n $p ]] || continue
	kill -TERM "$p"
	wait "$p" || fail "an elsd exited non-zero"
done
PIDS=()
els_finish
