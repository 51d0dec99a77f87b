#!/usr/bin/env bash
# `elsctl sweep`: an admin console asks the agent to run its forensic sweep now. The agent
# starts els-sweep (management.sweep_command) as its child, off the packet path; the records of
# real traffic land in a real PostgreSQL; the sweep's end is a monitor event; an auditor is
# refused. PostgreSQL is reached through its unix socket, which works across the namespaces.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
ELSCTL=$ELS_BUILD_DIR/elsctl SWEEP=$ELS_BUILD_DIR/els-sweep PKI=$ELS_SOURCE_DIR/pki/els-pki
[[ -x $ELSCTL && -x $SWEEP ]] || { echo "elsctl/els-sweep not built in $ELS_BUILD_DIR"; exit 1; }
els_setup
trap 'pg_stop; els_cleanup' EXIT
pg_start || { fail "PostgreSQL starts"; els_finish; exit 1; }
# The sweep runs without any capability (not even CAP_DAC_OVERRIDE as root): it reaches the
# server's unix socket only through a directory it may search.
chmod 711 "$PGDIR"

CA=$WORK/ca AG=$WORK/agent
mkdir -p "$AG"
{
	$PKI init "$CA" && $PKI agent "$CA" web1 --host localhost --ip 127.0.0.1 &&
		$PKI console "$CA" alice --role admin && $PKI console "$CA" bob --role auditor
} >/dev/null || { echo "PKI setup failed"; exit 1; }
cp "$CA/ca.crt" "$CA/crl.pem" "$CA/agents/web1.crt" "$AG/"
install -m 0600 "$CA/agents/web1.key" "$AG/web1.key"

cat >"$WORK/sweep.conf" <<EOF
conninfo = "host=$PGDIR port=$PGPORT dbname=els user=postgres";
sslmode = "disable"; # a unix socket: nothing leaves the machine
monitor = "$DB";
EOF
check "els-sweep --init-db creates the enterprise tables" "$SWEEP" -c "$WORK/sweep.conf" --init-db

CONF=$AG/elsd.conf
els_config "$CONF"
cat >>"$CONF" <<EOF
management = { listen = "127.0.0.1:7443"; ca = "ca.crt"; cert = "web1.crt"; key = "web1.key";
               crl = "crl.pem"; sweep_command = [ "$SWEEP", "-c", "$WORK/sweep.conf" ]; };
EOF
els_steer
els_https_server || fail "https server did not start"
els_start "$CONF" || exit 1
for _ in $(seq 50); do in_srv ss -ltnH 'sport = :7443' | grep -q . && break; sleep 0.1; done

check "curl through elsd" in_cli curl -sk --max-time 5 "https://$SRV4/"
check_not "port 22 is filtered" in_cli nc -z -w 1 "$SRV4" 22
wait_records "kind='admit' AND dport=443" || fail "no admit record for the curl"
wait_records "kind='drop' AND dport=22" || fail "no drop record for port 22"

ctl() { # ctl USER ARGS...: elsctl in the server namespace as console USER
	local u=$1
	shift
	ip netns exec "$SRV" "$ELSCTL" --agent 127.0.0.1:7443 --ca "$CA/ca.crt" \
		--cert "$CA/consoles/$u.crt" --key "$CA/consoles/$u.key" "$@"
}
out=$(ctl bob sweep 2>&1)
check_eq "an auditor may not start a sweep (exit 1)" 1 $?
check "... and is told why" grep -q "forbidden" <<<"$out"
out=$(ctl alice sweep 2>&1)
check_eq "an admin starts the sweep (exit 0)" 0 $?
check "... elsctl says it started, with the pid" grep -Eq "sweep started: .*els-sweep, pid [0-9]+" <<<"$out"
wait_records "kind='event' AND detail LIKE 'sweep by alice finished%exit 0 (ok)'" &&
	pass "the sweep's successful end is a monitor event naming the console" ||
	fail "no 'sweep finished' event"
check_ge "the admitted HTTPS flow reached PostgreSQL" 1 \
	"$(pq "SELECT count(*) FROM els_admits WHERE dport = 443")"
check_ge "the dropped probe of port 22 reached PostgreSQL" 1 \
	"$(pq "SELECT count(*) FROM els_drops WHERE dport = 22")"
n=$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE '%bob%sweep%'")
check_ge "the refused request is in the monitor with the auditor's identity" 1 "$n"
out=$(ctl alice --json sweep 2>&1)
check "--json gives the raw result" python3 -c \
	'import json,sys; r=json.loads(sys.argv[1]); assert r["started"] and r["pid"] > 0' "$out"
els_stop || fail "elsd exited non-zero"
els_finish
