#!/usr/bin/env bash
# The console in a real browser (issue 16): Debian's chromium, headless, driven through
# chromium-driver by python3-selenium (console_web_browser.py), against a real els-console
# on a real PostgreSQL seeded with 10,000 agents, drift of every kind, a pending approval, and
# traffic: real records of a real elsd (curl, blocked ports, an observe-mode would_drop) swept
# with els-sweep, plus a day of rows across the fleet. The browser presents client
# certificates made by els-pki from its own NSS database ($HOME/.pki/nssdb of a temporary
# HOME); the certificate is chosen by the profile's auto-select setting, so nothing is
# written under /etc and the console sees the browser's own certificate.
# Every page is loaded with its content checked, no JavaScript error and a screenshot in
# $ELS_BUILD_DIR/artifacts/console-web/; the fleet page's time to render 10,000 agents is
# measured in the browser and must stay under 2 s; propose -> approve (another admin) ->
# deploy -> rollback is done by clicking; an auditor sees no action and is refused one; a
# forged cross-site POST and a POST without the anti-CSRF header are refused; hostile
# agent-supplied strings stay text; a browser without a certificate gets no page.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
CONSOLE=$ELS_BUILD_DIR/els-console
SWEEP=$ELS_BUILD_DIR/els-sweep
PKI=$ELS_SOURCE_DIR/pki/els-pki
PY=/usr/bin/python3 # Debian's python3, where python3-selenium lives
ART=$ELS_BUILD_DIR/artifacts/console-web
[[ -x $CONSOLE && -x $SWEEP ]] || { echo "els-console/els-sweep not built in $ELS_BUILD_DIR"; exit 1; }
for need in /usr/bin/chromium /usr/bin/chromedriver /usr/bin/certutil /usr/bin/pk12util \
	/usr/share/javascript/chart.js/chart.min.js; do
	[[ -e $need ]] || { echo "skip: $need is missing (scripts/deps installs it)"; exit 77; }
done
"$PY" -c 'import selenium' 2>/dev/null || { echo "skip: python3-selenium is missing"; exit 77; }

CONSOLE_PID=
web_cleanup() {
	[[ -n $CONSOLE_PID ]] && kill "$CONSOLE_PID" 2>/dev/null && wait "$CONSOLE_PID" 2>/dev/null
	CONSOLE_PID=
}
els_setup
trap 'web_cleanup; pg_stop; els_cleanup' EXIT
pg_start || { fail "PostgreSQL starts"; els_finish; exit 1; }
rm -rf "$ART" && mkdir -p "$ART"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- real traffic through a real elsd, swept into the enterprise tables ----
AGENT=swept-web-1
els_steer
els_config "$WORK/elsd.conf" "s|^# agent_id = .*|agent_id = \"$AGENT\";|"
els_https_server || { fail "https server did not start"; els_finish; exit 1; }
els_start "$WORK/elsd.conf" || exit 1
check "curl through elsd" in_cli curl -sk --max-time 5 "https://$SRV4/"
check "curl again (a second admitted flow)" in_cli curl -sk --max-time 5 "https://$SRV4/"
for port in 22 23 25 3389; do in_cli timeout 1 bash -c "echo >/dev/tcp/$SRV4/$port" 2>/dev/null; done
els_stop || fail "elsd exited non-zero"
els_config "$WORK/observe.conf" "s|^# agent_id = .*|agent_id = \"$AGENT\";|" \
	's|^header_filter = {|header_filter = {\n  mode = "observe";|'
els_start "$WORK/observe.conf" || exit 1
in_cli timeout 1 bash -c "echo >/dev/tcp/$SRV4/23" 2>/dev/null
els_stop || fail "elsd (observe) exited non-zero"
"$SWEEP" --db "$PGCONN" -m "$DB" --init-db >/dev/null 2>&1 || fail "els-sweep --init-db"
out=$("$SWEEP" --db "$PGCONN" -m "$DB" 2>&1)
check_eq "els-sweep carries the monitor file to PostgreSQL" 0 $?
log "$out"
check_ge "real drops swept" 4 "$(pq "SELECT count(*) FROM els_drops WHERE agent_id = '$AGENT'")"
check_ge "real admits swept" 2 "$(pq "SELECT count(*) FROM els_admits WHERE agent_id = '$AGENT'")"
check_ge "a real would_drop swept" 1 "$(pq "SELECT count(*) FROM els_would_drops WHERE agent_id = '$AGENT'")"

# ---- certificates: the console's, two admins (two-person rule), an auditor, two lab agents ----
"$PKI" init "$WORK/pki" >/dev/null || fail "els-pki init"
"$PKI" agent "$WORK/pki" console-1 --host localhost --ip 127.0.0.1 >/dev/null || fail "server certificate"
for who in alice:admin bob:admin carol:auditor; do
	"$PKI" console "$WORK/pki" "${who%%:*}" --role "${who#*:}" >/dev/null || fail "certificate ${who%%:*}"
done
# agents dial the console: client certificates (OU=agent) from the same CA's openssl database
for a in lab-1 lab-2; do
	printf '[ ext ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth, serverAuth\nsubjectAltName = URI:els:role:agent\n' >"$WORK/$a.ext"
	{ openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/OU=agent/CN=$a" \
		-keyout "$WORK/$a.key" -out "$WORK/$a.csr" &&
		ELS_PKI_DIR=$WORK/pki openssl ca -batch -notext -config "$WORK/pki/openssl.cnf" -days 2 \
			-extfile "$WORK/$a.ext" -extensions ext -in "$WORK/$a.csr" -out "$WORK/$a.crt"; } \
		>/dev/null 2>&1 || fail "agent certificate $a"
done
"$PKI" crl "$WORK/pki" >/dev/null || fail "els-pki crl"

# ---- the console ----
API_PORT=$(free_port) AGENT_PORT=$(free_port)
cat >"$WORK/console.conf" <<EOF
console = { name = "console-1"; };
agents = { listen = "127.0.0.1:$AGENT_PORT"; ca = "pki/ca.crt"; cert = "pki/agents/console-1.crt";
           key = "pki/agents/console-1.key"; crl = "pki/crl.pem"; };
api = { listen = "127.0.0.1:$API_PORT"; ca = "pki/ca.crt"; cert = "pki/agents/console-1.crt";
        key = "pki/agents/console-1.key"; crl = "pki/crl.pem"; };
database = { conninfo = "host=$PGDIR port=$PGPORT dbname=els user=postgres";
             sql_dir = "$ELS_SOURCE_DIR/console/sql"; };
drift = { silent_after_s = 86400; };
deploy = { health_wait_s = 1; interval_ms = 200; };
web = { root = "$ELS_SOURCE_DIR/console/www"; };
EOF
check "els-console -n accepts the web section" "$CONSOLE" -c "$WORK/console.conf" -n
"$CONSOLE" -c "$WORK/console.conf" >"$WORK/console.log" 2>&1 &
CONSOLE_PID=$!
wait_until grep -q "running" "$WORK/console.log" || { cat "$WORK/console.log"; fail "els-console starts"; els_finish; exit 1; }
runuser -u postgres -- "$PGBIN/psql" -h "$PGDIR" -p "$PGPORT" -XAtq -v ON_ERROR_STOP=1 \
	-v now_agent="$AGENT" -f "$ELS_SOURCE_DIR/tests/integration/console_web_seed.sql" els >/dev/null ||
	fail "the seed applies"
check_ge "10,000 agents seeded" 10000 "$(pq "SELECT count(*) FROM console_agents")"
# the lab group: stand-in agents over real TLS, answering policy.apply
for a in lab-1 lab-2; do
	"$PY" "$ELS_SOURCE_DIR/tests/integration/console_agent.py" run "127.0.0.1:$AGENT_PORT" \
		"$WORK/pki/ca.crt" "$WORK/$a.crt" "$WORK/$a.key" --id "$a" --group lab --heartbeat 1 \
		--apply ok --events "$WORK/$a.events" >/dev/null 2>&1 &
	BG_PIDS+=($!)
done
lab_connected() { [[ $(pq "SELECT count(*) FROM console_agents WHERE grp = 'lab' AND connected_to = 'console-1'") == 2 ]]; }
check "the lab agents connect to the console" wait_until lab_connected

# ---- the browser ----
cat >"$WORK/pq" <<EOF
#!/bin/sh
exec runuser -u postgres -- "$PGBIN/psql" -h "$PGDIR" -p "$PGPORT" -XAtq -v ON_ERROR_STOP=1 -c "\$1" els
EOF
chmod +x "$WORK/pq"
ELS_URL="https://127.0.0.1:$API_PORT" ELS_PKI="$WORK/pki" ELS_WORK="$WORK" ELS_ART="$ART" \
	ELS_PQ="$WORK/pq" ELS_SWEPT_AGENT="$AGENT" \
	timeout 240 "$PY" "$ELS_SOURCE_DIR/tests/integration/console_web_browser.py" >"$WORK/browser.out" 2>&1
rc=$?
while IFS= read -r line; do
	case $line in
	"PASS "*) pass "${line#PASS }" ;;
	"FAIL "*) fail "${line#FAIL }" ;;
	*) log "$line" ;;
	esac
done <"$WORK/browser.out"
check_eq "the browser script ran to its end" 0 "$rc"

# The pages' own database connection (web_db.c) after PostgreSQL restarted: the first query
# finds the connection lost, runs again on a new one, and the page gets its answer.
api() { curl -sk --max-time 10 --cert "$WORK/pki/consoles/alice.crt" --key "$WORK/pki/consoles/alice.key" \
	-o "$WORK/api.out" -w '%{http_code}' "https://127.0.0.1:$API_PORT$1"; }
check_eq "GET /api/fleet before the restart" 200 "$(api '/api/fleet?limit=1')"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w restart -l "$PGDIR/server.log" >/dev/null ||
	fail "PostgreSQL restarts"
check_eq "GET /api/fleet right after PostgreSQL restarted: answered" 200 "$(api '/api/fleet?limit=1')"
check "... with the fleet" grep -q '"total" : 1000' "$WORK/api.out"
check_eq "GET /api/traffic as CSV after the restart" 200 "$(api '/api/traffic?kind=blocked_ports&format=csv')"
check "... a CSV table" grep -q '^proto,port,packets,agents' "$WORK/api.out"
check "els-console is still running" kill -0 "$CONSOLE_PID"
kill -TERM "$CONSOLE_PID"
wait "$CONSOLE_PID"
check_eq "els-console stops cleanly on SIGTERM" 0 $?
CONSOLE_PID=
check_not "... with no sanitizer report (ASan build)" grep -q "Sanitizer" "$WORK/console.log"
grep -E "error|warning|Sanitizer" "$WORK/console.log" | head -n 20 | sed 's/^/#   console: /'
log "screenshots: $ART"
els_finish
