#!/usr/bin/env bash
# A flood that outruns elsd with fail_open = false and a tiny queue: the kernel drops what does
# not fit (fail-closed), elsd survives, reports how many packets the kernel dropped unjudged,
# and records that gap in the monitor; filtering is intact afterwards.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
els_config "$WORK/elsd.conf" 's|^queue_maxlen = 4096;|queue_maxlen = 16;|'
els_https_server || fail "https server did not start"
els_start "$WORK/elsd.conf" || exit 1

# Two hping3 floods (UDP to an unpermitted port) for 3 seconds.
floods=()
for _ in 1 2; do
	in_cli timeout 3 hping3 --flood --udp -p 5000 -q "$SRV4" >/dev/null 2>&1 &
	floods+=($!)
done
wait "${floods[@]}"
sleep 1.5 # the main loop reads the kernel's counters once a second
check "elsd survived the flood" kill -0 "$ELSD_PID"
check "elsd reports the packets the kernel dropped" grep -q "kernel dropped [0-9]* packets unjudged" "$ELSD_LOG"
check "... and alerts them" grep -qE "alert: event=queue_overflow queue=0 dropped=[0-9]+" "$ELSD_LOG"
check_not "... once, not again as a monitor gap" grep -q "alert: event=monitor_gap.*kernel dropped" "$ELSD_LOG"
check "HTTPS still passes after the flood" in_cli curl -sk --max-time 5 "https://$SRV4/"
check_not "port 22 is still filtered after the flood" in_cli nc -z -w 1 "$SRV4" 22
els_stop || fail "elsd exited non-zero"
kernel=$(sed -n 's/^elsd: warning: queue [0-9]*: kernel dropped \([0-9]*\) packets.*/\1/p' "$ELSD_LOG" |
	paste -sd+ | bc)
recorded=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='gap' AND reason='queue_overflow'")
check_ge "the kernel dropped packets (the flood did outrun the queue)" 1 "$kernel"
check_eq "the monitor's gap records count exactly what the kernel dropped" "$kernel" "$recorded"
judged=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dport=5000")
check_ge "elsd still judged (and recorded) flood packets it received" 1 "$judged"
els_finish
