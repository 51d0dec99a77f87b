#!/usr/bin/env bash
# The live monitor has one writer. While elsd runs: `elsd --replay` refuses the live file
# (named as monitor.path, or through --monitor from another config: the daemon's lock), and by
# default records into replay-NAME.db in the current directory; the replayed packets never
# show in the live file, nor as registry hits (--report). Rows another program inserts into the
# live file (the sqlite3 shell) do not stop elsd writing: it goes on after them, says so in an
# event row, and els-log --verify reports the foreign rows.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
ELSLOG=$ELS_BUILD_DIR/els-log
els_setup
els_steer
els_config "$WORK/elsd.conf"
els_config "$WORK/other.conf" "s|$DB|$WORK/other.db|"
els_https_server || fail "https server did not start"
/usr/bin/python3 "$ELS_SOURCE_DIR/tests/integration/make_capture.py" "$WORK/cap.pcap" "$WORK/expected" 2>/dev/null ||
	fail "scapy could not write the capture"
els_start "$WORK/elsd.conf" || exit 1
check "HTTPS passes" in_cli curl -sk --max-time 5 "https://$SRV4/"
wait_records "kind='admit' AND dport=443" || fail "no admit for the request"
report() { "$ELSD" -c "$WORK/elsd.conf" --report 2>&1 | grep -E "https-in|hits"; }
report_before=$(report)
check "the report counts the live request as a hit" grep -qE "hits: [1-9]" <<<"$report_before"
rows_before=$(sql "SELECT count(*) FROM records")

out=$("$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/cap.pcap" --monitor "$DB" 2>&1)
check_eq "--replay --monitor LIVE (monitor.path): refused, exit 3" 3 $?
check "... saying it is the live monitor" grep -q "is the live monitor" <<<"$out"
out=$("$ELSD" -c "$WORK/other.conf" --replay "$WORK/cap.pcap" --monitor "$DB" 2>&1)
check_eq "--replay into the file a running elsd writes (another config): refused, exit 3" 3 $?
check "... saying another elsd writes it" grep -q "is in use: another elsd process" <<<"$out"
mkdir "$WORK/here"
out=$(cd "$WORK/here" && "$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/cap.pcap" 2>&1)
check_eq "--replay without --monitor: exit 0" 0 $?
check "... recording into replay-cap.db here" test -s "$WORK/here/replay-cap.db"
check "... and saying so" grep -q "replay records go to replay-cap.db" <<<"$out"
check_ge "the replay file holds the replayed admits" 1 \
	"$(sqlite3 "$WORK/here/replay-cap.db" "SELECT count(*) FROM records WHERE kind='admit'")"
check "... and verifies with its own key beside it" "$ELSLOG" --verify "$WORK/here/replay-cap.db"
sleep 0.5 # a flush period of the live writer
check_eq "the live file got no replay row" 0 "$(sql "SELECT count(*) FROM records WHERE detail LIKE 'replay %' OR src = '198.19.66.1'")"
check_eq "the registry's hits did not change" "$report_before" "$(report)"

# Foreign rows: the sqlite3 shell does not care about elsd's lock.
head=$(sql "SELECT max(seq) FROM records")
sql "INSERT INTO records(seq, ts_ns, kind, mac) VALUES ($head + 1, 1, 'admit', zeroblob(32)), ($head + 2, 1, 'admit', zeroblob(32))"
check_eq "two foreign rows went in" $((head + 2)) "$(sql "SELECT max(seq) FROM records")"
check "HTTPS passes after them" in_cli curl -sk --max-time 5 "https://$SRV4/"
wait_records "kind='admit' AND dport=443 AND seq > $((head + 2))" &&
	pass "elsd writes on after the foreign rows" || fail "elsd wrote nothing after the foreign rows"
check "its event row names them" test "$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail = 'conflict: rows $((head + 1))..$((head + 2)) not written by this elsd'")" = 1
check "... and so does its log" grep -q "conflict: rows $((head + 1))..$((head + 2)) not written by this elsd" "$ELSD_LOG"
check_not "no write error" grep -q "cannot write" "$ELSD_LOG"
els_stop || fail "elsd exited non-zero"
out=$("$ELSLOG" --verify "$DB" 2>&1)
check_eq "els-log --verify: a finding (exit 1)" 1 $?
log "$out"
check "... at the first foreign row" grep -qE "TAMPERED \((inserted|altered)\) at seq $((head + 1))" <<<"$out"
els_finish
