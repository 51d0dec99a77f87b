#!/usr/bin/env bash
# Service-bound permits (docs/els-policy.md): a permitted port belongs to a named executable or
# user. Attacks tried: a copy of the server's binary elsewhere listening on its port, a listener
# run as another user, a stand-in binding the port after the server died, a non-permitted
# process connecting to a permitted outbound port. Each is refused and recorded as
# wrong_service naming the process; the real server (and its restart, a new pid) is admitted;
# elsd keeps filtering other traffic meanwhile.
. "$(dirname "$0")/lib.sh"
ELSCTL=${ELSCTL:-$(dirname "$ELSD")/elsctl}
els_setup

# The "web server" is a copy of python3 at a path of its own; the impostor is another copy of
# the very same bytes elsewhere: only its path (and inode) differ.
mkdir -p "$WORK/real" "$WORK/evil"
PY=$(readlink -f "$(python3 -c 'import sys; print(sys.executable)')") # not a pyenv shim
cp "$PY" "$WORK/real/websrv"
cp "$PY" "$WORK/evil/websrv"
chmod 755 "$WORK" "$WORK/real" "$WORK/evil"
REAL=$WORK/real/websrv EVIL=$WORK/evil/websrv

SERVE='
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
while True:
    c,_=s.accept(); c.sendall(b"hello\n"); c.close()
'
CONNECT='
import socket,sys
s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); print(s.recv(16).decode().strip())
'

els_config "$WORK/elsd.conf" "/permits = (/a\\
    { id = \"web\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ]; exe = \"$REAL\"; },\\
    { id = \"web-user\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8444 ]; user = \"nobody\"; },\\
    { id = \"db-client\"; dir = \"out\"; proto = \"tcp\"; remote_ports = [ 5432 ]; exe = \"$REAL\"; },\\
    { id = \"db-user\"; dir = \"out\"; proto = \"tcp\"; remote_ports = [ 5433 ]; user = \"nobody\"; },\\
    { id = \"no-listener\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8445 ]; exe = \"$REAL\"; },"
# The socket-owner counters go to the metrics (docs/metrics.md), read below on a Unix socket.
echo "metrics = { listen = \"$WORK/metrics.sock\"; };" >>"$WORK/elsd.conf"
els_https_server || fail "https server did not start"
els_listen "$CLI" 5432 || fail "client listener 5432 did not start"
els_listen "$CLI" 5433 || fail "client listener 5433 did not start"
els_steer
els_start "$WORK/elsd.conf" || exit 1

# start_listener NAME EXE PORT [setpriv args]: a listener in the server namespace.
start_listener() {
	local exe=$2 port=$3; shift 3
	ip netns exec "$SRV" setpriv "${@:---reuid=0}" "$exe" -c "$SERVE" "$port" >/dev/null 2>&1 &
	LPID=$!
	BG_PIDS+=("$LPID")
	wait_until sh -c "ip netns exec $SRV ss -ltnH 'sport = :$port' | grep -q ."
}
stop_listener() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	wait_until sh -c "! ip netns exec $SRV ss -ltnH 'sport = :$2' | grep -q ."
}
hello() { [[ $(in_cli timeout 5 python3 -c "$CONNECT" "$1" "$2" 2>/dev/null) == hello ]]; }

# Inbound, by executable.
start_listener real "$REAL" 8443 || fail "real server did not start"
check "the real server's port is reachable" hello $SRV4 8443
REAL_PID=$LPID
stop_listener "$REAL_PID" 8443
start_listener evil "$EVIL" 8443 || fail "stand-in did not start"
EVIL_PID=$LPID
check_not "a copy of the binary elsewhere, bound to the dead server's port, is refused" \
	hello $SRV4 8443
check "HTTPS (not service-bound) keeps flowing meanwhile" \
	in_cli curl -sk --max-time 5 "https://$SRV4/"
out=$(in_srv "$ELSCTL" audit -c "$WORK/elsd.conf")
check_eq "elsctl audit exits 1 with a stand-in on a service's port" 1 "$?"
check "audit names the stand-in: WRONG-SERVICE on 8443 with its executable" \
	grep -Eq "^WRONG-SERVICE +tcp +.*:8443 .*permit web wants exe=$REAL; owned by .*pid=$EVIL_PID exe=$EVIL" <<<"$out"
stop_listener "$EVIL_PID" 8443
start_listener real "$REAL" 8443 || fail "restarted server did not start"
check "the restarted server (new pid, same executable) is reachable" hello $SRV4 8443
[[ $LPID != "$REAL_PID" ]] || fail "the restart kept its pid"
stop_listener "$LPID" 8443

# Inbound, by user.
start_listener root "$REAL" 8444 --reuid=0 || fail "root listener did not start"
ROOT_PID=$LPID
check_not "a listener on the user-bound port run as root is refused" hello $SRV4 8444
stop_listener "$ROOT_PID" 8444
start_listener nobody "$REAL" 8444 --reuid=nobody --regid=nogroup --clear-groups ||
	fail "nobody's listener did not start"
check "the same listener run as nobody is admitted" hello $SRV4 8444
stop_listener "$LPID" 8444

# Outbound: the permitted executable passes, another process to the same port is refused.
check "the permitted executable reaches the database port" \
	sh -c "[ \"\$(ip netns exec $SRV timeout 5 $REAL -c '$CONNECT' $CLI4 5432 2>/dev/null)\" = hello ]"
check_not "another program (python3 itself) connecting to the database port is refused" \
	sh -c "[ \"\$(ip netns exec $SRV timeout 5 python3 -c '$CONNECT' $CLI4 5432 2>/dev/null)\" = hello ]"
check "user-bound outbound: nobody passes" sh -c "[ \"\$(ip netns exec $SRV setpriv --reuid=nobody \
	--regid=nogroup --clear-groups timeout 5 python3 -c '$CONNECT' $CLI4 5433 2>/dev/null)\" = hello ]"
check_not "user-bound outbound: root is refused" \
	sh -c "[ \"\$(ip netns exec $SRV timeout 5 python3 -c '$CONNECT' $CLI4 5433 2>/dev/null)\" = hello ]"

# No socket at all behind a service-bound port: owner unknown, fail closed.
check_not "a service-bound port nobody listens on stays closed" hello $SRV4 8445

# The same lookups as the metrics count them, summed over the queues: the first connection to
# each listener missed the cache and waited (deferred) for /proc, a second one to the same
# listener was a hit, and the port without a listener had no owner.
curl -s --max-time 5 --unix-socket "$WORK/metrics.sock" http://elsd/metrics >"$WORK/metrics.txt"
owner_metric() { awk -v n="$1" '$1 ~ "^"n"[{]" { s += $2 } END { print s + 0 }' "$WORK/metrics.txt"; }
check_ge "metrics: owner lookups that missed the cache" 1 "$(owner_metric els_owner_cache_misses_total)"
check_ge "metrics: lookups deferred while /proc was read" 1 "$(owner_metric els_owner_lookups_deferred_total)"
check_ge "metrics: owner cache hits" 1 "$(owner_metric els_owner_cache_hits_total)"
check_ge "metrics: owners unknown (the port without a listener)" 1 "$(owner_metric els_owner_unknown_total)"

els_stop
q() { sql "SELECT $1 FROM records WHERE $2"; }
n=$(q "count(*)" "kind='drop' AND reason='wrong_service' AND rule_name='web' AND dport=8443
	AND detail LIKE '%pid=$EVIL_PID %' AND detail LIKE '%exe=$EVIL'")
check_ge "the stand-in's drop is wrong_service and names its pid and executable" 1 "$n"
n=$(q "count(*)" "kind='admit' AND rule_name='web' AND detail LIKE '%pid=$REAL_PID %exe=$REAL'")
check_ge "the real server's admit names its pid and executable" 1 "$n"
n=$(q "count(*)" "kind='flow_end' AND rule_name='web' AND detail LIKE '%exe=$REAL'")
check_ge "its flow_end names the executable too" 1 "$n"
n=$(q "count(*)" "kind='drop' AND reason='wrong_service' AND dport=8444 AND detail LIKE '%pid=$ROOT_PID %'
	AND detail LIKE '%uid=0 %'")
check_ge "root's listener on the user-bound port: wrong_service, uid 0, its pid" 1 "$n"
n=$(q "count(*)" "kind='drop' AND dir='out' AND reason='wrong_service' AND dport=5432
	AND detail LIKE '%exe=$PY'")
check_ge "the outbound intruder's drop names python3" 1 "$n"
n=$(q "count(*)" "kind='admit' AND dir='out' AND rule_name='db-client' AND dport=5432")
check_ge "the permitted client's flow is admitted" 1 "$n"
n=$(q "count(*)" "kind='drop' AND dir='out' AND reason='wrong_service' AND dport=5433")
check_ge "root's outbound to the user-bound port: wrong_service" 1 "$n"
n=$(q "count(*)" "kind='drop' AND reason='owner_unknown' AND dport=8445")
check_ge "the port without a listener: owner_unknown" 1 "$n"
out=$("$ELSCTL" registry -c "$WORK/elsd.conf" --monitor "$DB")
check "the registry shows what the permit is bound to" grep -q "bound to: exe=$REAL" <<<"$out"
check "the registry counts hits per owner (restarts are one owner)" \
	grep -Eq "hits by owner: unit=- uid=0 exe=$REAL: [2-9]" <<<"$out"

# Learning: an observe-mode run records who owned each listener, and elsctl suggest binds the
# permit it proposes for 8443 to that executable.
els_config "$WORK/observe.conf" "s|$DB|$WORK/observe.db|" '/^header_filter = {/a\
  mode = "observe";'
els_start "$WORK/observe.conf" || exit 1
start_listener real "$REAL" 8443 || fail "server did not start for the observe run"
check "observe mode: the connection passes" hello $SRV4 8443
stop_listener "$LPID" 8443
els_stop
out=$("$ELSCTL" suggest "$WORK/observe.db" 2>/dev/null)
check "elsctl suggest binds the learnt 8443 permit to the server's executable" python3 -c '
import re, sys
text = sys.stdin.read()
for m in re.finditer(r"\{[^{}]*\}", text):
    p = m.group(0)
    if re.search(r"local_ports = \[ 8443 \]", p) and ("exe = \"%s\"" % sys.argv[1]) in p:
        sys.exit(0)
sys.exit(1)' "$REAL" <<<"$out"
els_finish
