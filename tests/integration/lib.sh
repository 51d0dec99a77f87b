# Shared harness for integration scenarios: two network namespaces joined by a veth pair,
# a client (198.18.0.1, 2001:db8:1::1) and a server (198.18.0.2, 2001:db8:1::2) whose INPUT
# and OUTPUT traffic is steered to elsd through NFQUEUE. Every rule and address lives inside
# the namespaces; the host is never touched. Source this file, then call els_setup.
set -uo pipefail

: "${ELS_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ELSD:=$ELS_SOURCE_DIR/build/elsd}"

ELS_TAG="e$$"
CLI="$ELS_TAG-cli"
SRV="$ELS_TAG-srv"
CLI4=198.18.0.1 SRV4=198.18.0.2 CLI6=2001:db8:1::1 SRV6=2001:db8:1::2
WORK=$(mktemp -d /tmp/els-it.XXXXXX)
DB="$WORK/monitor.db"
ELSD_LOG="$WORK/elsd.log"
ELSD_PID=
ELS_CTLSOCK= # set by els_start
QUEUE=0
# els-rules keeps its last good settings and the removal mark here, never on the host.
export ELS_RULES_STATE=$WORK/rules-state
PASSED=0 FAILED=0
BG_PIDS=()

log() { printf '# %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf 'ok %d - %s\n' $((PASSED + FAILED)) "$1"; }
fail() {
	FAILED=$((FAILED + 1))
	printf 'not ok %d - %s\n' $((PASSED + FAILED)) "$1"
	[[ -f $ELSD_LOG ]] && sed 's/^/#   elsd: /' "$ELSD_LOG" | tail -n 20
}
# check "description" command...: passes when the command succeeds
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then pass "$d"; else fail "$d"; fi; }
# check_not "description" command...: passes when the command fails
check_not() { local d=$1; shift; if "$@" >/dev/null 2>&1; then fail "$d"; else pass "$d"; fi; }
# check_eq "description" expected actual
check_eq() {
	if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1 (expected '$2', got '$3')"; fi
}
# check_ge "description" minimum actual
check_ge() {
	if [[ $3 =~ ^[0-9]+$ ]] && (($3 >= $2)); then pass "$1"; else fail "$1 (expected >= $2, got '$3')"; fi
}

in_cli() { ip netns exec "$CLI" "$@"; }
in_srv() { ip netns exec "$SRV" "$@"; }
sql() { sqlite3 -batch -noheader "$DB" "$@"; }

els_cleanup() {
	set +e
	[[ -n $ELSD_PID ]] && kill "$ELSD_PID" 2>/dev/null && wait "$ELSD_PID" 2>/dev/null
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	ip netns pids "$SRV" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns pids "$CLI" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$CLI" 2>/dev/null
	ip netns del "$SRV" 2>/dev/null
	[[ -n ${ELS_KEEP:-} ]] || rm -rf "$WORK"
}

# The scenario's exit status: it fails when a check failed, and when it ran no check at all
# (an early return or a mistyped loop must not look like a pass).
els_finish() {
	echo "$PASSED passed, $FAILED failed"
	if ((PASSED + FAILED == 0)); then
		echo "not ok - the scenario ran no check"
		return 1
	fi
	((FAILED == 0))
}

els_require() {
	[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces)"; exit 1; }
	[[ -x $ELSD ]] || { echo "elsd not built at $ELSD"; exit 1; }
}

els_setup() {
	els_require
	trap els_cleanup EXIT
	# A test killed by ctest's timeout (SIGTERM) or ^C must still remove its namespaces:
	# bash runs the EXIT trap only when it exits, so turn those signals into an exit.
	trap 'exit 143' TERM
	trap 'exit 130' INT
	ip netns add "$CLI" && ip netns add "$SRV" || exit 1
	ip link add "$ELS_TAG-c" netns "$CLI" type veth peer name "$ELS_TAG-s" netns "$SRV" || exit 1
	in_cli ip link set lo up
	in_srv ip link set lo up
	in_cli ip link set "$ELS_TAG-c" name eth0
	in_srv ip link set "$ELS_TAG-s" name eth0
	in_cli ip addr add $CLI4/24 dev eth0
	in_srv ip addr add $SRV4/24 dev eth0
	in_cli ip -6 addr add $CLI6/64 dev eth0 nodad
	in_srv ip -6 addr add $SRV6/64 dev eth0 nodad
	in_cli ip link set eth0 up
	in_srv ip link set eth0 up
}

# Steers the server's non-loopback INPUT and OUTPUT to NFQUEUE $QUEUE (IPv4 and IPv6).
# Extra arguments (e.g. --queue-bypass, --queue-balance 0:1) are added to the NFQUEUE rules;
# --queue-balance replaces --queue-num. A first argument --offload adds, ahead of NFQUEUE, the
# rule that accepts connections elsd has offloaded (connmark 0x40000000, agent/offload.h).
els_steer() {
	local target=(--queue-num "$QUEUE") offload=
	[[ ${1:-} == --offload ]] && { offload=1; shift; }
	[[ " $* " == *" --queue-balance "* ]] && target=()
	for ipt in iptables ip6tables; do
		for chain in INPUT OUTPUT; do
			local ifopt=-i
			[[ $chain == OUTPUT ]] && ifopt=-o
			in_srv $ipt -A $chain $ifopt lo -j ACCEPT
			if [[ -n $offload ]]; then
				# elsd offloads by its verdict: NF_REPEAT with the bit in the packet
				# mark, saved here into the connection and cleared from the packet.
				in_srv $ipt -A $chain -m mark --mark 0x40000000/0x40000000 \
					-j CONNMARK --set-xmark 0x40000000/0x40000000
				in_srv $ipt -A $chain -m mark --mark 0x40000000/0x40000000 \
					-j MARK --set-xmark 0/0x40000000
				in_srv $ipt -A $chain -m connmark \
					--mark 0x40000000/0x40000000 -j ACCEPT
			fi
			in_srv $ipt -A $chain -j NFQUEUE "${target[@]}" "$@" ||
				{ echo "els_steer: $ipt rejected the rule"; return 1; }
		done
	done
}

# Writes a config: the conf/elsd.conf example with the monitor and addresses of this test.
# Usage: els_config FILE [sed expressions...]
els_config() {
	local out=$1; shift
	sed -e "s|/var/lib/elsd/monitor.db|$DB|" "$ELS_SOURCE_DIR/conf/elsd.conf" >"$out"
	# The test's own policy directory, never the host's /etc/elsd/policy.d.
	mkdir -p "$WORK/policy.d"
	printf 'policy_dir = "%s";\n' "$WORK/policy.d" >>"$out"
	for e in "$@"; do sed -i -e "$e" "$out"; done
}

# Writes the policy part of conf/elsd.conf (chain and handler sections: what a console may
# send) to $1, then applies the sed expressions that follow.
els_policy_doc() {
	local out=$1; shift
	sed -n '/^chain = /,$p' "$ELS_SOURCE_DIR/conf/elsd.conf" >"$out"
	for e in "$@"; do sed -i -e "$e" "$out"; done
}

# Starts elsd in the server namespace with config $1; waits until its queues are bound.
els_start() {
	local conf=$1; shift
	: >"$ELSD_LOG"
	# A control socket of this elsd's own (elsd --reload --control-socket "$ELS_CTLSOCK"):
	# other tests, and other agents of this one, run elsd at the same time.
	ELS_CTLSOCK=$WORK/ctl-$SRV.sock
	ip netns exec "$SRV" "$ELSD" -c "$conf" --control-socket "$ELS_CTLSOCK" "$@" \
		>>"$ELSD_LOG" 2>&1 &
	ELSD_PID=$!
	for _ in $(seq 100); do
		grep -q "started:" "$ELSD_LOG" && return 0
		kill -0 "$ELSD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "elsd did not start:"; cat "$ELSD_LOG"
	return 1
}

# Stops elsd (SIGTERM) and waits; the monitor file is complete afterwards.
els_stop() {
	[[ -n $ELSD_PID ]] || return 0
	kill -TERM "$ELSD_PID" 2>/dev/null
	wait "$ELSD_PID"
	local rc=$?
	ELSD_PID=
	return $rc
}

# Runs a command in the background in a namespace; it is killed at cleanup.
bg_in() { local ns=$1; shift; ip netns exec "$ns" "$@" >/dev/null 2>&1 & BG_PIDS+=($!); }

# Self-signed certificate for the test HTTPS server.
els_https_server() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj "/CN=srv.test" -keyout "$WORK/srv.key" -out "$WORK/srv.crt" 2>/dev/null
	# openssl binds [::] IPv6-only: one server per family.
	bg_in "$SRV" openssl s_server -quiet -4 -accept "$SRV4:443" -cert "$WORK/srv.crt" \
		-key "$WORK/srv.key" -www
	bg_in "$SRV" openssl s_server -quiet -6 -accept "[$SRV6]:443" -cert "$WORK/srv.crt" \
		-key "$WORK/srv.key" -www
	for _ in $(seq 50); do
		[[ $(in_srv ss -ltnH 'sport = :443' | wc -l) -ge 2 ]] && return 0
		sleep 0.1
	done
	return 1
}

# A TCP listener on port $2 in namespace $1 (answers with a line, keeps listening).
els_listen() { bg_in "$1" python3 -c '
import socket,sys,threading
s=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", int(sys.argv[1]))); s.listen(64)
while True:
    c,_=s.accept(); c.sendall(b"hello\n"); threading.Timer(30, c.close).start()
' "$2"; for _ in $(seq 50); do ip netns exec "$1" ss -ltn | grep -q ":$2 " && return 0; sleep 0.1; done; return 1; }

# wait_until CMD...: runs CMD every 0.1 s until it succeeds, for at most ELS_WAIT_S seconds
# (default 15). It returns as soon as CMD succeeds, so the bound only matters on a loaded
# machine (CI runs two builds' worth of daemons on two cores); no test waits on it to fail.
wait_until() {
	local end=$((SECONDS + ${ELS_WAIT_S:-15}))
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

# Waits until the monitor file has committed records matching a WHERE clause.
records_exist() { [[ $(sql "SELECT count(*) FROM records WHERE $1" 2>/dev/null) -gt 0 ]] 2>/dev/null; }
wait_records() { wait_until records_exist "$1"; }

# wait_log PATTERN: until an extended regex appears in elsd's log.
wait_log() { wait_until grep -qE -- "$1" "$ELSD_LOG"; }
