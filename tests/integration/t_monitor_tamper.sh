#!/usr/bin/env bash
# Tamper evidence: a monitor file written by `elsd --replay` verifies clean with els-log
# --verify and els-sweep --verify; every way of changing it with the sqlite3 tool (edit a
# column, edit a MAC, delete a row, delete the first rows, insert a row, insert a copy of a
# row, truncate the tail, move the chain head to hide it) is reported with the right seq and
# exit status 1; a wrong or exposed key cannot verify (exit 2). Needs no namespaces.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
SWEEP=$ELS_BUILD_DIR/els-sweep
ELSLOG=$ELS_BUILD_DIR/els-log
[[ -x $SWEEP && -x $ELSLOG ]] || { echo "els-sweep/els-log not built in $ELS_BUILD_DIR"; exit 1; }
trap els_cleanup EXIT

python3 "$ELS_SOURCE_DIR/tests/integration/gen_flood.py" "$WORK/cap.pcap" 40 || fail "capture"
els_config "$WORK/elsd.conf" "s|$DB|$WORK/live.db|"
"$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/cap.pcap" --monitor "$DB" 2>"$ELSD_LOG"
check_eq "replay writes the file" 0 $?
check_eq "the key file is created 0600" 600 "$(stat -c %a "$WORK/monitor.key")"
n=$(sql "SELECT count(*) FROM records")
check_ge "records to tamper with" 50 "$n"
out=$("$ELSLOG" --verify "$DB")
check_eq "els-log --verify: a clean file exits 0" 0 $?
check "... and says OK with the count" grep -q "OK: $n records verified" <<<"$out"
check "els-sweep --verify: a clean file exits 0" "$SWEEP" --verify -m "$DB"

# tamper NAME SQL EXPECTED-WORDS: on a fresh copy of the clean file (same directory, same key)
tamper() {
	local name=$1 stmt=$2 want=$3 f="$WORK/t.db" out rc
	rm -f "$f" "$f-wal" "$f-shm"
	cp "$DB" "$f"
	sqlite3 "$f" "$stmt" || { fail "$name: sqlite3 rejected the change"; return; }
	out=$("$ELSLOG" --verify "$f")
	rc=$?
	check_eq "$name: els-log --verify exits 1" 1 "$rc"
	check "$name: reported as '$want'" grep -q -- "$want" <<<"$out"
	"$SWEEP" --verify -m "$f" >/dev/null
	check_eq "$name: els-sweep --verify exits 1" 1 $?
}

tamper "edit a column" "UPDATE records SET dport = 8443 WHERE seq = 20" "TAMPERED (altered) at seq 20"
tamper "edit a count" "UPDATE records SET count = count + 1 WHERE seq = 33" "at seq 33"
tamper "edit a MAC" "UPDATE records SET mac = randomblob(32) WHERE seq = 7" "(altered) at seq 7"
tamper "delete a row" "DELETE FROM records WHERE seq = 25" "(deleted) at seq 25: record 25 was deleted"
tamper "delete rows" "DELETE FROM records WHERE seq BETWEEN 30 AND 39" "records 30..39 were deleted"
tamper "delete the first rows" "DELETE FROM records WHERE seq <= 3" "(deleted) at seq 1"
tamper "insert a row" "INSERT INTO records(ts_ns, kind, count) VALUES(1700000000000000000, 'drop', 1)" \
	"(inserted) at seq $((n + 1))"
tamper "insert a copy with its MAC" "INSERT INTO records SELECT $((n + 1)), ts_ns, kind, verdict, dir,
	family, proto, src, sport, dst, dport, icmp_type, icmp_code, tcp_flags, handler, reason, rule,
	rule_name, generation, count, pkts_init, pkts_resp, bytes_init, bytes_resp, duration_ns,
	detail, mac FROM records WHERE seq = 10" "beyond the chain head"
tamper "replace a row" "DELETE FROM records WHERE seq = 15; INSERT INTO records(seq, ts_ns, kind,
	count, mac) VALUES(15, 1, 'event', 1, (SELECT mac FROM records WHERE seq = 15 - 1))" "at seq 15"
tamper "truncate the tail" "DELETE FROM records WHERE seq > $((n - 5))" \
	"(truncated) at seq $((n - 4)): the file was truncated"
tamper "truncate and move the head" "DELETE FROM records WHERE seq > $((n - 5));
	UPDATE meta SET value = '$((n - 5)) ' || lower(hex((SELECT mac FROM records WHERE seq = $((n - 5)))))
	|| ' ' || substr(value, -64) WHERE key = 'head'" "chain head in meta was altered"

check_eq "PRAGMA integrity_check of the clean file" ok "$(sql "PRAGMA integrity_check")"

# the key: another agent's cannot verify; one others can read is refused
head -c 32 /dev/urandom >"$WORK/other.key"
chmod 600 "$WORK/other.key"
out=$("$ELSLOG" --verify "$DB" --key "$WORK/other.key" 2>&1)
check_eq "another key cannot verify: exit 2" 2 $?
check "... and says which key id the file wants" grep -q "key id" <<<"$out"
chmod 644 "$WORK/monitor.key"
out=$("$ELSLOG" --verify "$DB" 2>&1)
check_eq "a key others can read is refused: exit 2" 2 $?
check "... with how to fix it" grep -q "chmod 600" <<<"$out"
out=$("$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/cap.pcap" --monitor "$DB" 2>&1)
check_eq "elsd refuses it too (exit 3)" 3 $?
check "... naming the key file" grep -q "monitor.key.*accessible by group or others" <<<"$out"
chmod 600 "$WORK/monitor.key"
els_finish
