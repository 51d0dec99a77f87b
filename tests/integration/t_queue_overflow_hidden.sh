#!/usr/bin/env bash
# Kernel queue drops are still reported when /proc hides their counters, as under the shipped
# unit's sandbox: after elsd started, /proc in elsd's own mount namespace is replaced by one
# mounted with subset=pid (what systemd's ProcSubset=pid mounts), which hides
# /proc/self/net/netfilter/nfnetlink_queue. A flood then outruns a tiny queue: elsd must still
# log, alert and record the drops, from the descriptor it opened at start.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
els_config "$WORK/elsd.conf" 's|^queue_maxlen = 4096;|queue_maxlen = 16;|'
els_https_server || fail "https server did not start"
els_start "$WORK/elsd.conf" || exit 1

# `ip netns exec` gave elsd a mount namespace of its own (slave to the host's): the new /proc
# is visible there only.
nsenter -t "$ELSD_PID" -m mount -t proc -o subset=pid,hidepid=invisible proc /proc ||
	fail "cannot mount a subset=pid /proc in elsd's mount namespace"
check_not "the counters file is hidden from elsd's namespace now" \
	nsenter -t "$ELSD_PID" -m cat /proc/self/net/netfilter/nfnetlink_queue
check "... but still readable from the host (the test's own view)" \
	cat /proc/self/net/netfilter/nfnetlink_queue

floods=()
for _ in 1 2; do
	in_cli timeout 3 hping3 --flood --udp -p 5000 -q "$SRV4" >/dev/null 2>&1 &
	floods+=($!)
done
wait "${floods[@]}"
sleep 1.5 # the main loop reads the kernel's counters once a second
check "elsd survived the flood" kill -0 "$ELSD_PID"
check "elsd reports the packets the kernel dropped, with /proc hidden" \
	grep -q "kernel dropped [0-9]* packets unjudged" "$ELSD_LOG"
check "... and alerts them" grep -qE "alert: event=queue_overflow queue=0 dropped=[0-9]+" "$ELSD_LOG"
check "HTTPS still passes after the flood" in_cli curl -sk --max-time 5 "https://$SRV4/"
els_stop || fail "elsd exited non-zero"
kernel=$(sed -n 's/^elsd: warning: queue [0-9]*: kernel dropped \([0-9]*\) packets.*/\1/p' "$ELSD_LOG" |
	paste -sd+ | bc)
recorded=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='gap' AND reason='queue_overflow'")
check_ge "the kernel dropped packets (the flood did outrun the queue)" 1 "$kernel"
check_eq "the monitor's gap records count exactly what the kernel dropped" "$kernel" "$recorded"
els_finish
