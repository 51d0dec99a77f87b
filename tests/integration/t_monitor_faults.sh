#!/usr/bin/env bash
# The monitor file deleted under elsd, then its directory made read-only: filtering goes on,
# each condition is reported in the log, nothing crashes, and once the directory is writable
# again a gap row counts the records lost meanwhile. elsd runs as nobody (user = "nobody"),
# so file permissions bind it as they would the packaged service's elsd user.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
MON=$WORK/mon
chmod 0711 "$WORK" # elsd, as nobody, must reach its directory
mkdir -m 0755 "$MON" && chown nobody: "$MON"
DB=$MON/monitor.db
els_config "$WORK/elsd.conf" "s|$WORK/monitor.db|$DB|" 's|^# user = "elsd";|user = "nobody";|'
els_https_server || fail "https server did not start"
els_start "$WORK/elsd.conf" || exit 1
check "HTTPS passes" in_cli curl -sk --max-time 3 "https://$SRV4/"
wait_records "kind='admit'" || fail "no admit record at first"

# 1. Deleted (with its WAL): elsd notices within a second or two and starts a new file.
rm -f "$DB" "$DB-wal" "$DB-shm"
check "HTTPS passes with the file gone" in_cli curl -sk --max-time 3 "https://$SRV4/"
for _ in $(seq 50); do [[ -f $DB ]] && break; sleep 0.1; done
check "elsd recreated the monitor file" test -f "$DB"
check "a connection after the deletion is recorded in the new file" \
	bash -c "for _ in \$(seq 30); do ip netns exec $SRV true; [[ \$(sqlite3 $DB \"SELECT count(*) FROM records WHERE kind='admit'\" 2>/dev/null) -ge 1 ]] && exit 0; ip netns exec $CLI curl -sk --max-time 2 -o /dev/null https://$SRV4/; sleep 0.2; done; exit 1"

# 2. Deleted again, and the directory read-only for elsd: writing fails, filtering does not.
# Read-only first, then delete (root may): the other way round, elsd's writer can recreate
# the file in between and nothing fails.
chmod 0555 "$MON"
rm -f "$DB" "$DB-wal" "$DB-shm"
for i in $(seq 5); do in_cli curl -sk --max-time 3 -o /dev/null "https://$SRV4/" && ok=$i; done
check_eq "HTTPS keeps passing while the monitor cannot be written" 5 "${ok:-0}"
check_not "port 22 stays filtered meanwhile" in_cli nc -z -w 1 "$SRV4" 22
# (up to 10 s: on a loaded machine the writer takes a while to find the file gone)
wait_log "monitor $DB: .*(cannot|unable)" || wait_log "monitor $DB: .*(cannot|unable)"
check "the log reports that the monitor cannot be written" grep -q "monitor $DB: .*\(cannot\|unable\)" "$ELSD_LOG"
check "elsd is alive" kill -0 "$ELSD_PID"

# 3. Writable again: writing resumes and a gap row counts what was lost.
chmod 0755 "$MON"
for _ in $(seq 60); do
	in_cli curl -sk --max-time 2 -o /dev/null "https://$SRV4/"
	# Only look once elsd has made the file, and as elsd's user: a root sqlite3 would create
	# a root-owned file (or -shm) that elsd could not open.
	[[ -s $DB ]] && [[ $(runuser -u nobody -- sqlite3 "$DB" \
		"SELECT count(*) FROM records WHERE kind='gap'" 2>/dev/null) -ge 1 ]] && break
	sleep 0.2
done
check_ge "a gap row says records were lost while the file could not be written" 1 \
	"$(sqlite3 "$DB" "SELECT coalesce(sum(count),0) FROM records WHERE kind='gap'")"
check "... and the gap is alerted" grep -qE "alert: event=monitor_gap records=[0-9]+ detail=" "$ELSD_LOG"
els_stop || fail "elsd exited non-zero"
check_eq "the new file is a sound SQLite database" ok "$(sqlite3 "$DB" 'PRAGMA integrity_check')"
els_finish
