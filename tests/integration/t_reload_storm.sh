#!/usr/bin/env bash
# 100 SIGHUP reloads, every other one with a broken config, while HTTPS connections run
# without pause: no connection stalls (every packet got its verdict), elsd never crashes, the
# generation counts exactly the 50 good reloads, and the good policy is in force at the end.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
CONF=$WORK/elsd.conf
els_config "$WORK/good.conf"
cp "$WORK/good.conf" "$CONF"
cp "$WORK/good.conf" "$WORK/bad.conf"
echo 'header_filter = { permits = ( { dir = "sideways"; } ); };' >>"$WORK/bad.conf"
els_https_server || fail "https server did not start"
els_start "$CONF" || exit 1

# Sustained traffic: back-to-back HTTPS requests; each one's outcome goes to a file.
bg_in "$CLI" bash -c "while :; do curl -sk --max-time 3 -o /dev/null -w '%{http_code}\n' https://$SRV4/ >>$WORK/curl.log 2>&1 || echo FAIL >>$WORK/curl.log; done"
for i in $(seq 100); do
	if ((i % 2)); then cp "$WORK/bad.conf" "$CONF"; else cp "$WORK/good.conf" "$CONF"; fi
	before=$(grep -cE "reloaded |reload failed" "$ELSD_LOG")
	kill -HUP "$ELSD_PID" || break
	# Signals of one kind do not queue: wait for this reload to finish before the next.
	for _ in $(seq 100); do
		[[ $(grep -cE "reloaded |reload failed" "$ELSD_LOG") -gt $before ]] && break
		sleep 0.02
	done
done
sleep 1
kill "${BG_PIDS[-1]}" 2>/dev/null
check "elsd is alive after 100 reloads" kill -0 "$ELSD_PID"
check_eq "50 reloads succeeded" 50 "$(grep -c "reloaded " "$ELSD_LOG")"
check_ge "the broken ones were refused (each error line says so)" 50 "$(grep -c "reload failed, keeping" "$ELSD_LOG")"
check "the last good reload is generation 51" grep -q "reloaded .*generation 51," "$ELSD_LOG"
total=$(grep -c . "$WORK/curl.log")
bad=$(grep -vc '^200$' "$WORK/curl.log")
log "$total HTTPS requests during the storm"
check_ge "requests ran all through the storm" 20 "$total"
check_eq "no request failed or stalled during the storm" 0 "$bad"
check "HTTPS passes under the final policy" in_cli curl -sk --max-time 3 "https://$SRV4/"
check_not "port 22 is filtered under the final policy" in_cli nc -z -w 1 "$SRV4" 22
els_stop || fail "elsd exited non-zero"
check_eq "the monitor has 50 'reload ok' events" 50 "$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'reload ok%'")"
check_eq "and 50 'reload failed' events" 50 "$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'reload failed%'")"
els_finish
