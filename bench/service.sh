# bench/service.sh: service-bound permits (docs/els-policy.md), sourced by bench/run.
#
# Two figures. The added cost per new flow: bench/owner_cost runs elsd's own owner lookup
# (agent/packet/owner.c: the sock_diag lookup of the socket a SYN meets, then the cache) SVC_N
# times against a listener, p50/p99 in microseconds; and once the miss (a socket never seen:
# the /proc scan on the resolver thread, which the packet waits for off the worker thread).
# The new-flow rate: bench/svc_flows opens and resets TCP connections for T seconds through
# elsd with the example policy plus a permit for its port, once plain and once bound to the
# listener's executable, alternating in ROUNDS rounds; the ratio is the median of each round's
# bound/plain.
cc "${CFLAGS[@]}" -o "$BIN/svc_flows" "$SRC/bench/svc_flows.c" &&
	cc "${CFLAGS[@]}" -D_GNU_SOURCE -I"$SRC/include" -I"$SRC/agent/packet" \
		-o "$BIN/owner_cost" "$SRC/bench/owner_cost.c" "$SRC/agent/packet/owner.c" \
		"$SRC/agent/packet/owner_proc.c" "$SRC/lib/owner/owner_proc.c" "$SRC/lib/owner/owner_parse.c" \
		"$SRC/lib/log.c" -lpthread ||
	{ echo "bench/run: cannot build the service-bound permit programs" >&2; exit 1; }

svc_config() { # svc_config FILE [BINDING]: the example policy plus a permit for tcp/7443
	els_config "$1" "/permits = (/a\\
    { id = \"svc\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 7443 ]; ${2:-} },"
	sed -i "s|$DB|$(dirname "$1")/monitor.db|" "$1"
}

# svc_counters: the kernel's counters that say why new connections would stall (SYN
# retransmissions on the client, listen drops on the server, the queue's drops, conntrack's
# size), as NAME=VALUE words; svc_rate logs the ones that moved during a run.
svc_counters() {
	local f
	for f in "$CLI:cli" "$SRV:srv"; do
		ip netns exec "${f%%:*}" awk -v p="${f##*:}" '
			/^(Tcp|TcpExt):/ { if (!h[$1]) { h[$1] = 1; for (i = 2; i <= NF; i++) k[$1, i] = $i; next }
				for (i = 2; i <= NF; i++) if (k[$1, i] ~ /^(RetransSegs|TCPSynRetrans|ListenOverflows|ListenDrops|TCPReqQFullDrop|SyncookiesSent|AttemptFails|OutRsts)$/)
					printf "%s.%s=%s ", p, k[$1, i], $i }' /proc/net/snmp /proc/net/netstat
	done
	in_srv awk '{printf "queue%s.dropped=%s queue%s.user_dropped=%s ", $1, $6, $1, $7}' \
		/proc/net/netfilter/nfnetlink_queue 2>/dev/null
	printf "srv.conntrack=%s\n" "$(in_srv conntrack -C 2>/dev/null || echo 0)"
}

# svc_rate NAME CONF: new TCP flows per second through elsd with CONF; sets SVC_RATE.
svc_rate() {
	SVC_RATE= SVC_CPU=
	els_steer && start_elsd "$2" || { log "$1: elsd did not start"; unsteer; return 1; }
	ip netns exec "$SRV" $FPIN "$BIN/svc_flows" listen 7443 $((T + 3)) >/dev/null 2>&1 &
	local lpid=$!
	sleep 0.3
	# the first flow pays the miss; the measured ones find the listener's owner cached
	in_cli "$BIN/svc_flows" connect $SRV4 7443 0.5 --par 1 >/dev/null
	local out c0 c1 k0 k1
	k0=$(svc_counters)
	c0=$(cpu_ticks "$ELSD_PID")
	out=$(in_cli $PIN "$BIN/svc_flows" connect $SRV4 7443 "$T" --par 16)
	c1=$(cpu_ticks "$ELSD_PID")
	k1=$(svc_counters)
	log "$1: kernel counters during the run: $(paste -d' ' <(tr ' ' '\n' <<<"$k0") <(tr ' ' '\n' <<<"$k1") |
		awk -F'[= ]' '$2 != $4 {printf "%s +%d ", $1, $4 - $2}')"
	log "$1: elsd's drop records: $(sqlite3 -cmd '.timeout 5000' "$(dirname "$2")/monitor.db" \
		"SELECT group_concat(reason || '=' || n, ' ') FROM (SELECT reason, sum(count) n FROM records
		 WHERE verdict = 'drop' GROUP BY reason)" 2>/dev/null)"
	kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
	els_stop; unsteer
	local n
	n=$(awk '{print $2}' <<<"$out")
	num "$n" && ((n > 0)) || { log "$1: no connection completed ($out)"; return 1; }
	SVC_RATE=$(calc "round($n / $T)")
	# elsd's CPU time per flow: steadier than the rate on a shared machine, where the rate
	# follows whatever else runs
	SVC_CPU=$(calc "round(($c1 - $c0) / $CLK / $n * 1e6, 1)")
	log "$1: $out in ${T}s: $SVC_RATE new flows/s, elsd CPU $SVC_CPU us per flow"
}

svc_bench() {
	log "service-bound permits: owner lookup cost, new-flow rate plain vs bound"
	ip netns exec "$SRV" "$BIN/svc_flows" listen 7001 120 >/dev/null 2>&1 &
	local lpid=$!
	sleep 0.3
	local cost
	cost=$(ip netns exec "$SRV" $FPIN "$BIN/owner_cost" 7001 "$SVC_N")
	kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
	log "owner lookup: $cost"
	set_r svc_hit_p50_us "$(awk '{print $2}' <<<"$cost")"
	set_r svc_hit_p99_us "$(awk '{print $4}' <<<"$cost")"
	set_r svc_miss_ms "$(awk '{print $6}' <<<"$cost")"
	mkdir -p "$WORK/svc-plain" "$WORK/svc-bound"
	svc_config "$WORK/svc-plain/elsd.conf"
	svc_config "$WORK/svc-bound/elsd.conf" "exe = \"$BIN/svc_flows\";"
	local r
	for ((r = 1; r <= ROUNDS; r++)); do
		local order=(plain bound) p= b=
		((r % 2 == 0)) && order=(bound plain)
		for c in "${order[@]}"; do
			svc_rate "svc-$c" "$WORK/svc-$c/elsd.conf" || continue
			[[ $c == plain ]] && p=$SVC_RATE || b=$SVC_RATE
			sample "svc.cpu_$c" "$SVC_CPU"
		done
		sample svc.plain "$p"
		sample svc.bound "$b"
		[[ -n $p && -n $b ]] && sample svc.ratio "$(calc "round($b / $p, 3)")"
	done
	set_r svc_flows_plain "$(median_int svc.plain)"
	set_r svc_flows_bound "$(median_int svc.bound)"
	set_r svc_flow_ratio "$(median svc.ratio)"
	set_r svc_cpu_us_plain "$(median svc.cpu_plain)"
	set_r svc_cpu_us_bound "$(median svc.cpu_bound)"
	local n
	n=$(sqlite3 "$WORK/svc-bound/monitor.db" \
		"SELECT count(*) FROM records WHERE kind = 'admit' AND rule_name = 'svc' AND detail LIKE '%exe=$BIN/svc_flows'" 2>/dev/null)
	log "bound run: ${n:-no} admits name the listener's executable"
	num "${n:-}" && ((n > 0)) || { log "the bound runs admitted nothing by their owner"; R[svc_flow_ratio]=; }
}

svc_table() {
	echo "service-bound permits (owner lookup x $SVC_N; new TCP flows/s through elsd, medians of $ROUNDS round(s))"
	target "  added cost per new flow p50 (us)" "${R[svc_hit_p50_us]:-}" "<" 50
	target "  added cost per new flow p99 (us)" "${R[svc_hit_p99_us]:-}" "<" 50
	printf "%-48s %12s   (once per new socket, off the worker thread)\n" "  owner miss: /proc scan (ms)" "$(fmt "${R[svc_miss_ms]:-}")"
	printf "%-48s %12s\n" "  new flows/s, plain permit" "$(fmt "${R[svc_flows_plain]:-}")"
	printf "%-48s %12s\n" "  new flows/s, exe-bound permit" "$(fmt "${R[svc_flows_bound]:-}")"
	target "  bound / plain new-flow rate" "${R[svc_flow_ratio]:-}" ">=" 0.8
	printf "%-48s %12s\n" "  elsd CPU us per new flow, plain" "$(fmt "${R[svc_cpu_us_plain]:-}")"
	printf "%-48s %12s\n" "  elsd CPU us per new flow, exe-bound" "$(fmt "${R[svc_cpu_us_bound]:-}")"
	echo "(per round: ${S[svc.ratio]:-none})"
}
