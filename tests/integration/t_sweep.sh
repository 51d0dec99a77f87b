#!/usr/bin/env bash
# els-sweep against a real PostgreSQL 15 (private cluster, TLS required over TCP, verified with
# sslmode=verify-full): records of real traffic through elsd land with the right counts per
# kind, agent and host on every row; a second sweep adds nothing; a sweep killed with -9
# midway (batch size 1) and one that dies between PostgreSQL's commit and the file's mark both
# end, once re-run, with exactly one copy of each record; a tampered swept record stops the
# sweep and is recorded as a finding; retention then deletes only what was swept.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pglib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
SWEEP=$ELS_BUILD_DIR/els-sweep
ELSLOG=$ELS_BUILD_DIR/els-log
[[ -x $SWEEP && -x $ELSLOG ]] || { echo "els-sweep/els-log not built in $ELS_BUILD_DIR"; exit 1; }
els_setup
trap 'pg_stop; els_cleanup' EXIT
pg_start || { fail "PostgreSQL starts"; els_finish; exit 1; }

check "--print-schema is docs/enterprise-schema.sql" \
	diff <("$SWEEP" --print-schema) "$ELS_SOURCE_DIR/docs/enterprise-schema.sql"

# ---- real traffic through elsd ----
els_steer
els_config "$WORK/elsd.conf"
els_https_server || { fail "https server did not start"; els_finish; exit 1; }
els_start "$WORK/elsd.conf" || exit 1
check "curl over IPv4 through elsd" in_cli curl -sk --max-time 5 "https://$SRV4/"
check "curl over IPv6 through elsd" in_cli curl -sk --max-time 5 "https://[$SRV6]/"
for port in 22 23 25; do in_cli timeout 1 bash -c "echo >/dev/tcp/$SRV4/$port" 2>/dev/null; done
in_cli ping -c1 -W2 "$SRV4" >/dev/null
# SYNs to the permitted port from a raw socket: the client's kernel resets each SYN-ACK, so no
# handshake completes: half_open records, not admits.
in_cli hping3 -S -c 3 -i u100000 -p 443 -q "$SRV4" >/dev/null 2>&1
els_stop || fail "elsd exited non-zero"
check_ge "SYNs without a handshake wrote half_open records" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='half_open' AND dport=443")"
# The same monitor file, the policy in observe mode: telnet passes, as would_drop records.
els_config "$WORK/observe.conf" 's|^header_filter = {|header_filter = {\n  mode = "observe";|'
els_start "$WORK/observe.conf" || exit 1
in_cli timeout 1 bash -c "echo >/dev/tcp/$SRV4/23" 2>/dev/null
els_stop || fail "elsd (observe) exited non-zero"
check_ge "observe mode wrote would_drop records" 1 "$(sql "SELECT count(*) FROM records WHERE kind='would_drop'")"

cat >"$WORK/sweep.conf" <<EOF
conninfo = "$PGCONN";
sslmode = "verify-full";
monitor = "$DB";
batch_size = 3;
EOF
out=$("$SWEEP" -c "$WORK/sweep.conf" 2>&1)
check_eq "a database without the tables: exit 3" 3 $?
check "... and the reason says how to create them" grep -q -- "--init-db" <<<"$out"
check "els-sweep --init-db creates the tables" "$SWEEP" -c "$WORK/sweep.conf" --init-db
check "--init-db again is harmless" "$SWEEP" -c "$WORK/sweep.conf" --init-db
out=$("$SWEEP" -c "$WORK/sweep.conf" 2>&1)
check_eq "the sweep (TLS, verify-full) exits 0" 0 $?
log "$out"
check "its summary line counts what was new" grep -Eq "records \(seq 1\.\.[0-9]+\) in [0-9]+ batches, [0-9]+ new, 0 already" <<<"$out"

for kind in drop:els_drops admit:els_admits would_drop:els_would_drops flow_end:els_flow_ends \
	event:els_events gap:els_gaps half_open:els_half_opens; do
	k=${kind%%:*} t=${kind#*:}
	check_eq "$t holds every $k record" "$(sql "SELECT count(*) FROM records WHERE kind='$k'")" \
		"$(pq "SELECT count(*) FROM $t")"
done
check_ge "real traffic gave admits" 2 "$(pq "SELECT count(*) FROM els_admits WHERE dport = 443")"
check_ge "real traffic gave drops" 3 "$(pq "SELECT count(*) FROM els_drops WHERE dport IN (22, 23, 25)")"
check_eq "dropped packets add up" "$(sql "SELECT sum(count) FROM records WHERE kind='drop'")" \
	"$(pq "SELECT sum(packets) FROM els_drops")"
check_eq "half-open flows add up" "$(sql "SELECT sum(count) FROM records WHERE kind='half_open'")" \
	"$(pq "SELECT sum(flows) FROM els_half_opens")"
agent=$(sql "SELECT value FROM meta WHERE key='agent_id'")
check_eq "agent id and host on every row" 0 "$(pq "SELECT count(*) FROM els_records
	WHERE agent_id IS DISTINCT FROM '$agent' OR host IS NULL OR host = ''")"
check_eq "every record kind in the file has its table" "$(sql "SELECT count(*) FROM records")" \
	"$(pq "SELECT count(*) FROM els_records")"
total=$(sql "SELECT count(*) FROM records")
check_eq "the sweep marked the file swept up to its head" "$(sql "SELECT max(seq) FROM records")" \
	"$(sql "SELECT CAST(value AS INTEGER) FROM meta WHERE key='swept'")"
out=$("$SWEEP" -c "$WORK/sweep.conf" 2>&1)
check_eq "a second sweep exits 0" 0 $?
check "... says nothing is new" grep -q "nothing new to sweep" <<<"$out"
check_eq "... and adds nothing" "$total" "$(pq "SELECT count(*) FROM els_records")"

# TLS: the server takes no unencrypted TCP, and verify-full checks the certificate
out=$("$SWEEP" --db "$PGCONN" --sslmode disable -m "$DB" 2>&1)
check_eq "without TLS the server refuses (so the sweeps above used TLS)" 3 $?
out=$("$SWEEP" --db "$PGCONN sslrootcert=/etc/ssl/certs/ca-certificates.crt" -m "$DB" 2>&1)
check "verify-full refuses a certificate the root does not sign" grep -qi "certificate" <<<"$out"

# ---- a sweep killed with -9 midway, then re-run ----
python3 "$ELS_SOURCE_DIR/tests/integration/gen_flood.py" "$WORK/flood.pcap" 6000 || fail "capture"
DB2=$WORK/bulk.db
"$ELSD" -c "$WORK/elsd.conf" --monitor "$DB2" --replay "$WORK/flood.pcap" 2>>"$ELSD_LOG" ||
	fail "replay into $DB2"
n2=$(sqlite3 "$DB2" "SELECT count(*) FROM records")
check_ge "the flood gave many records" 9000 "$n2"
chain2=$(sqlite3 "$DB2" "SELECT value FROM meta WHERE key='chain_id'")
"$SWEEP" --db "$PGCONN" -m "$DB2" -b 1 -q >"$WORK/killed.out" 2>&1 &
pid=$!
for _ in $(seq 200); do
	[[ $(pq "SELECT count(*) FROM els_sweeps WHERE chain_id='$chain2'") -ge 200 ]] && break
	sleep 0.05
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
got=$(pq "SELECT count(*) FROM els_records WHERE chain_id='$chain2'")
check "the killed sweep stopped midway ($got of $n2)" test "$got" -gt 0 -a "$got" -lt "$n2"
out=$("$SWEEP" --db "$PGCONN" -m "$DB2" 2>&1)
check_eq "the re-run exits 0" 0 $?
log "$out"
check_eq "after the re-run: every record once" "$n2" \
	"$(pq "SELECT count(DISTINCT seq) FROM els_records WHERE chain_id='$chain2'")"
check_eq "... and no record twice" "$n2" "$(pq "SELECT count(*) FROM els_records WHERE chain_id='$chain2'")"
check_eq "... drops" "$(sqlite3 "$DB2" "SELECT count(*) FROM records WHERE kind='drop'")" \
	"$(pq "SELECT count(*) FROM els_drops WHERE chain_id='$chain2'")"
check_eq "... flow ends" "$(sqlite3 "$DB2" "SELECT count(*) FROM records WHERE kind='flow_end'")" \
	"$(pq "SELECT count(*) FROM els_flow_ends WHERE chain_id='$chain2'")"

# ---- death between PostgreSQL's commit and the file's mark ----
DB3=$WORK/crash.db
"$ELSD" -c "$WORK/elsd.conf" --monitor "$DB3" --replay "$WORK/flood.pcap" 2>>"$ELSD_LOG"
n3=$(sqlite3 "$DB3" "SELECT count(*) FROM records")
chain3=$(sqlite3 "$DB3" "SELECT value FROM meta WHERE key='chain_id'")
ELS_SWEEP_CRASH_AFTER_BATCHES=3 "$SWEEP" --db "$PGCONN" -m "$DB3" -b 1000 -q >/dev/null 2>&1
check_eq "the injected crash kills the sweep after its third commit" 99 $?
check_eq "... PostgreSQL has three batches" 3000 "$(pq "SELECT count(*) FROM els_records WHERE chain_id='$chain3'")"
check_eq "... the file's mark is one batch behind" 2000 \
	"$(sqlite3 "$DB3" "SELECT CAST(value AS INTEGER) FROM meta WHERE key='swept'")"
"$SWEEP" --db "$PGCONN" -m "$DB3" -b 1000 >/dev/null 2>&1
check_eq "the re-run exits 0" 0 $?
check_eq "... every record exactly once" "$n3/$n3" \
	"$(pq "SELECT count(*) || '/' || count(DISTINCT seq) FROM els_records WHERE chain_id='$chain3'")"

# ---- a tampered record that was already swept ----
last=$(sqlite3 "$DB3" "SELECT max(seq) FROM records")
sqlite3 "$DB3" "UPDATE records SET dport = 8443 WHERE seq = $last"
out=$("$SWEEP" --db "$PGCONN" -m "$DB3" 2>&1)
check_eq "a swept record that changed stops the sweep: exit 1" 1 $?
check "... naming the record" grep -q "record $last differs" <<<"$out"
check_eq "... and it is recorded in els_findings" 1 \
	"$(pq "SELECT count(*) FROM els_findings WHERE chain_id='$chain3' AND seq=$last")"

# ---- retention deletes only swept records ----
DB4=$WORK/retain.db
python3 "$ELS_SOURCE_DIR/tests/integration/gen_flood.py" "$WORK/small.pcap" 2 || fail "capture"
"$ELSD" -c "$WORK/elsd.conf" --monitor "$DB4" --replay "$WORK/flood.pcap" 2>>"$ELSD_LOG"
n4=$(sqlite3 "$DB4" "SELECT count(*) FROM records")
"$SWEEP" --db "$PGCONN" -m "$DB4" -b 500 --limit 4000 -q >/dev/null 2>&1
check_eq "a sweep limited to 4000 records" 4000 "$(sqlite3 "$DB4" "SELECT CAST(value AS INTEGER) FROM meta WHERE key='swept'")"
# The capture's packets are from 2023, older than any retention, but each replay records a
# "replay" event of today. Where it lands among the first records depends on which ring the
# writer drains first, so the boundary is read from the file: age-based retention deletes the
# swept prefix up to the first young record, and not one record more.
young=$(sqlite3 "$DB4" "SELECT min(seq) FROM records WHERE ts_ns >= (strftime('%s','now') - 86400) * 1000000000")
check_ge "a young record exists in the swept prefix" 1 "$young"
# A short replay runs elsd's writer, whose first retention run always completes.
els_config "$WORK/retain.conf" 's|log = "default";|log = "default"; retention_days = 1;|'
"$ELSD" -c "$WORK/retain.conf" --monitor "$DB4" --replay "$WORK/small.pcap" 2>"$WORK/retain.log"
if ((young > 1)); then
	check "elsd reports what retention deleted" \
		grep -q "retention deleted $((young - 1)) swept records" "$WORK/retain.log"
fi
check_eq "age-based retention stops at the first young record" "$young" "$(sqlite3 "$DB4" "SELECT min(seq) FROM records")"
# Over the size cap, swept records of any age make room; unswept ones never do.
check_ge "the file is over 1 MiB" 1100000 "$(sqlite3 "$DB4" "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")"
els_config "$WORK/cap.conf" 's|log = "default";|log = "default"; retention_days = 1; max_size_mb = 1;|'
"$ELSD" -c "$WORK/cap.conf" --monitor "$DB4" --replay "$WORK/small.pcap" 2>"$WORK/retain.log"
check "over the cap, elsd says so" grep -q "monitor size .* KiB of 1024 KiB: full" "$WORK/retain.log"
check_eq "retention deleted exactly the swept records" 4001 "$(sqlite3 "$DB4" "SELECT min(seq) FROM records")"
check_ge "... and kept every unswept one" $((n4 - 4000)) "$(sqlite3 "$DB4" "SELECT count(*) FROM records")"
check "the file still verifies from its new anchor" "$ELSLOG" --verify "$DB4"
"$SWEEP" --db "$PGCONN" -m "$DB4" -q >/dev/null 2>&1
check_eq "a later sweep carries on after retention" 0 $?
chain4=$(sqlite3 "$DB4" "SELECT value FROM meta WHERE key='chain_id'")
check_eq "... with every record once" "$(sqlite3 "$DB4" "SELECT max(seq) FROM records")" \
	"$(pq "SELECT count(DISTINCT seq) || '' FROM els_records WHERE chain_id='$chain4'")"
els_finish
