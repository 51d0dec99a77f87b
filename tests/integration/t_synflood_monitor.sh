#!/usr/bin/env bash
# A flood of spoofed SYNs to a permitted port must not flood the monitor: a SYN whose
# handshake never completes writes no admit and no flow_end; such flows are aggregated into
# half_open rows (per second, destination, port, reason; `count` flows). The test sends N
# SYNs, each from its own spoofed (address, port), counts the rows they cost, checks that
# the half_open counts add up to the SYNs elsd saw (those the kernel dropped for a full queue
# are counted in queue_overflow gaps), and that a real connection to the same port during
# the flood still gets its admit and flow_end. Then the same flood to a port no permit opens:
# the drops from spoofed sources merge into rows without a source after 64 sources a second.
# Prints both figures.
. "$(dirname "$0")/lib.sh"
N=${ELS_SYNFLOOD_N:-100000}
els_setup
els_steer
# The default tcp_syn timeout (30 s) outlasts the server's SYN-ACK retransmissions (about
# 31 s after 1+2+4+8+16 s, each of which renews it), so none meets a flow that is gone. The
# half-open flows end at the stop (flow_shutdown); t_replay covers other reasons.
els_config "$WORK/elsd.conf"
els_https_server || fail "https server did not start"
# The server's SYN-ACKs to the spoofed sources go out through elsd (the client namespace
# throws them away): the flows reach syn_recv, as a real flood's do.
in_srv ip route add 198.18.128.0/17 via "$CLI4"
els_start "$WORK/elsd.conf" || exit 1
sleep 0.5
# max_size_mb unset: the cap is 10% of the monitor's file system, at most 1024 MiB.
fs=$(stat -f -c '%b * %S' "$WORK") && fs=$((fs))
want=$((fs / 100 * 10 >> 20)); ((want > 1024)) && want=1024
check "the monitor has a default size cap sized to its file system ($want MiB)" \
	grep -q "monitor $DB: size cap $want MiB (monitor.max_size_mb unset" "$ELSD_LOG"
before=$(sql "SELECT max(seq) FROM records")

in_cli python3 "$ELS_SOURCE_DIR/tests/integration/synflood.py" "$SRV4" 443 "$N" >"$WORK/flood.out" &
flood=$!
# A real client connects during the flood.
check "a real HTTPS request succeeds during the flood" in_cli curl -sk --max-time 10 "https://$SRV4/"
wait "$flood"
sent=$(sed -n 's/^sent \([0-9]*\)$/\1/p' "$WORK/flood.out")
check_eq "the flood sent every SYN" "$N" "$sent"
sleep 2 # retransmitted SYN-ACKs
check "elsd survived the flood" kill -0 "$ELSD_PID"
check "HTTPS still passes after the flood" in_cli curl -sk --max-time 5 "https://$SRV4/"
mid=$(sql "SELECT max(seq) FROM records")
in_cli python3 "$ELS_SOURCE_DIR/tests/integration/synflood.py" "$SRV4" 22 "$N" >"$WORK/flood22.out"
check_eq "the flood to port 22 sent every SYN" "sent $N" "$(cat "$WORK/flood22.out")"
sleep 1.5 # the aggregated drops of the last second are flushed
check_not "port 22 stays closed" in_cli nc -z -w 1 "$SRV4" 22
els_stop || fail "elsd exited non-zero"

# The SYNs to 443 cost their half_open rows (and nothing else: checked below), written when
# they ended, at the stop.
rows=$(sql "SELECT count(*) FROM records WHERE seq > $before AND dport=443 AND src IS NOT '$CLI4'")
log "monitor rows written for the flood to 443: $rows per $N spoofed SYNs"
echo "# rows per $N spoofed SYNs to a permitted port: $rows"
check "rows written are at most 1% of the SYNs sent ($rows for $N)" test "$rows" -le $((N / 100))
check_eq "no admit for any spoofed SYN" 0 \
	"$(sql "SELECT count(*) FROM records WHERE kind='admit' AND src <> '$CLI4'")"
check_eq "no flow_end for any spoofed SYN" 0 \
	"$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND src <> '$CLI4'")"
half=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='half_open' AND dport=443 AND dst='$SRV4'")
kernel=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='gap' AND reason='queue_overflow'")
dropped=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dport=443 AND dir='in'")
log "half_open flows $half, kernel queue drops $kernel (also SYN-ACKs), drops $dropped"
check_ge "half_open rows were written" 1 "$(sql "SELECT count(*) FROM records WHERE kind='half_open'")"
check "they name the permit that admitted the SYNs" test \
	"$(sql "SELECT count(*) FROM records WHERE kind='half_open' AND (rule_name IS NOT 'https-in' OR src IS NOT NULL)")" = 0
# Every SYN elsd saw is one half-open flow: sent = half_open + refused by the kernel (full
# queue; that count also holds SYN-ACKs, so it bounds from above) + dropped by the chain.
check "half-open flows + drops account for every SYN ($half + $dropped + <= $kernel kernel drops = $N)" \
	test $((half + dropped)) -le "$N" -a $((half + dropped + kernel)) -ge "$N"
if ((kernel == 0)); then
	check_eq "no kernel drops: the half_open counts are exactly the SYNs sent" "$N" $((half + dropped))
fi
rows22=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND dport=22 AND seq > $mid AND src IS NOT '$CLI4'")
drops22=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dport=22 AND seq > $mid AND src IS NOT '$CLI4'")
merged22=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND dport=22 AND seq > $mid AND src IS NULL")
kernel22=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='gap' AND reason='queue_overflow' AND seq > $mid")
log "drops of the SYNs to 22: $drops22 in $rows22 rows ($merged22 in rows without a source), kernel drops $kernel22"
echo "# rows per $N spoofed SYNs to a denied port: $rows22"
check "... to a denied port: at most 1% of the SYNs ($rows22 for $N)" test "$rows22" -le $((N / 100))
check_ge "most of them merged into rows without a source" $((N / 2)) "$merged22"
check "the drops plus the kernel's account for every SYN to 22 ($drops22 + $kernel22 = $N)" \
	test "$drops22" -le "$N" -a $((drops22 + kernel22)) -ge "$N"
check_eq "the real connections have their admit" 2 \
	"$(sql "SELECT count(*) FROM records WHERE kind='admit' AND src='$CLI4' AND dport=443")"
check_eq "... and their flow_end" 2 \
	"$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND src='$CLI4' AND dport=443 AND rule_name='https-in'")"
els_finish
