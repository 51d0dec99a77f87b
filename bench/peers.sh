# shellcheck shell=bash
# bench/peers.sh: the peers a user would pick instead of elsd, sourced by bench/run (which
# defines the namespaces, run_udp/run_tcp, switch_to, sample/median and the result tables).
#
#   nft-set   the same policy as nftables sets with conntrack (bench/gen_policy.py writes it)
#   newconn   new connections/s: nginx answering 204 with Connection: close, wrk from the client
#   growth    the same with the flow table already holding 10k, 100k and 1M flows
#   opensnitch  Debian's opensnitchd in the client namespace, outbound new connections
#   ulogd     Debian's ulogd2 + SQLite3 fed by NFLOG, against elsd's monitor, same drop events
#   synflood  spoofed SYNs while a client measures HTTPS handshakes
#
# Every peer that cannot run here (a package missing, a kernel feature missing) prints
# "skipped: WHY" and leaves its figures null; nothing is ever filled in.

PEER_PIDS=() # nginx, ulogd, opensnitchd, s_server: killed by peers_cleanup
peers_cleanup() {
	https_stop
	local p
	for p in "${PEER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PEER_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PEER_PIDS=()
}
skip() { # skip WHAT WHY: said in the log and in the table
	SKIPS+=("$1: skipped: $2")
	log "$1: skipped: $2"
}
SKIPS=()

# --- the kernel-native peer: nftables sets with conntrack ----------------------------------
# The sets (a million-entry interval set takes ~10 s to load) are loaded once; switch_to n adds
# the two base chains that use them, unsteer removes the chains. A table without base chains
# costs no packet anything.
NFT_OK= NFT_CHAINS=
nft_load_sets() { # nft_load_sets DIR
	in_srv nft -f "$1/nft-sets.nft" 2>"$WORK/nft.err" && NFT_OK=1 ||
		skip "nft-set" "nft -f $1/nft-sets.nft failed: $(head -c 200 "$WORK/nft.err")"
}
# (nft list would print the million-entry set too: whether the chains are in is remembered)
nft_on() { [[ -n $NFT_OK ]] && NFT_CHAINS=1 && in_srv nft -f "$NFT_DIR/nft-chains.nft"; }
nft_off() {
	[[ -n $NFT_CHAINS ]] || return 0
	in_srv nft 'flush chain inet elsbench input; delete chain inet elsbench input;
		flush chain inet elsbench output; delete chain inet elsbench output' 2>/dev/null
	NFT_CHAINS=
	return 0
}

# --- new connections per second --------------------------------------------------------------
# nginx (one worker, pinned with the filter on CPU 1) returns 204 and closes every connection
# (keepalive_timeout 0); wrk (one thread, CPU 0) keeps CONN_CLIENTS connections in flight,
# each a connect, a request, the first byte of the answer and a close.
CONN_OK=
nginx_start() { # nginx_start NS ADDR
	local d=$WORK/nginx-$1
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<-EOF
		worker_processes 1;
		pid $d/nginx.pid;
		error_log $d/error.log;
		events { worker_connections 8192; }
		http {
		  access_log off;
		  keepalive_timeout 0;
		  client_body_temp_path $d/tmp; proxy_temp_path $d/tmp; fastcgi_temp_path $d/tmp;
		  uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
		  server { listen $2:80 backlog=4096; location / { return 204; } }
		}
	EOF
	ip netns exec "$1" $FPIN nginx -c "$d/nginx.conf" -p "$d" -g 'daemon off;' \
		>"$d/out.log" 2>&1 &
	PEER_PIDS+=($!)
	for _ in $(seq 50); do
		ip netns exec "$1" ss -ltnH "sport = :80" | grep -q . && return 0
		sleep 0.1
	done
	echo "nginx did not start:"; cat "$d/out.log" "$d/error.log" 2>/dev/null | tail -5
	return 1
}
conn_setup() {
	command -v wrk >/dev/null || { skip "new connections/s" "wrk is not installed (scripts/deps)"; return 1; }
	command -v nginx >/dev/null || { skip "new connections/s" "nginx is not installed (scripts/deps)"; return 1; }
	# many short connections: use every client port, so that a port comes back while the
	# server still holds its TIME_WAIT as rarely as possible
	in_cli sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
	nginx_start "$SRV" "$SRV4" && CONN_OK=1
}

# run_conn NAME PID: wrk for CONN_T seconds. CONN_RATE (connections/s), CONN_CPU (filter CPU
# microseconds per connection), CONN_ERR (wrk's socket errors), or returns 1.
CONN_RATE= CONN_CPU= CONN_ERR=
run_conn() {
	local name=$1 pid=${2:-} c0 c1 out
	CONN_RATE= CONN_CPU= CONN_ERR=
	quiesce
	c0=$(cpu_ticks "$pid")
	out=$(in_cli $PIN wrk -t1 -c"$CONN_CLIENTS" -d"${CONN_T}s" -H 'Connection: close' \
		"http://$SRV4/" 2>&1)
	c1=$(cpu_ticks "$pid")
	local rate
	rate=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	CONN_ERR=$(awk '/Socket errors/ {gsub(",", ""); e = $4 + $6 + $8 + $10} END {print e + 0}' <<<"$out")
	num "$rate" && calc "$rate > 0" | grep -q True && filter_alive "$pid" ||
		{ log "$name: connection run failed: $(tr '\n' ' ' <<<"$out" | head -c 300)"; return 1; }
	CONN_RATE=$(calc "round($rate)")
	[[ -n $pid ]] && CONN_CPU=$(calc "round(($c1 - $c0) / $CLK / ($rate * $CONN_T) * 1e6, 1)")
	log "$name: $CONN_RATE connections/s, cpu ${CONN_CPU:--} us/connection, socket errors ${CONN_ERR:-0}"
}

# prefill LEVEL: one UDP packet for each of the first LEVEL flows of a fixed sequence (100
# sources x up to 10,000 ports), paced so that the queue never overflows: the flow table (or
# conntrack) then holds at least LEVEL flows for the next 30 s (udp_unreplied). Incremental:
# 10k, then 100k (the first 10k again), then 1M.
PREFILLED=0
prefill() {
	local level=$1 d0 d1 sent
	d0=$(udp_delivered)
	sent=$(in_cli $PIN "$BIN/blast" udp-send $SRV4 9000 60 --srcs 198.18.1.1 100 --sports 10000 \
		--count "$level" --pps "$PREFILL_PPS" | awk '{print $2}')
	sleep 0.3
	d1=$(udp_delivered)
	PREFILLED=$level
	# elsd's monitor writes an admit record per flow (a million take it seconds): the run
	# measures a table that holds the flows, not the writer catching up with their admission
	if [[ $CUR != n ]]; then
		q_seq() { sqlite3 -cmd '.timeout 5000' "$WORK/$CUR/monitor.db" "SELECT max(seq) FROM records"; }
		LOG_T0=$(date +%s.%N)
		settle q_seq >/dev/null
	fi
	log "prefill $level: sent $sent, admitted $((d1 - d0))$([[ $CUR == n ]] && echo ", conntrack $(in_srv conntrack -C 2>/dev/null)")"
}

# --- OpenSnitch: outbound new connections from the client namespace --------------------------
# opensnitchd (Debian's 1.5.x) queues the first packet of every new outbound connection
# (iptables mangle OUTPUT, ctstate NEW, NFQUEUE 0 with --queue-bypass), finds the process that
# owns the socket (/proc), matches its rules and sets the verdict. It runs inside the client
# namespace with one rule, "allow tcp to port 80", and reads its default config
# (/etc/opensnitchd/default-config.json, DefaultAction allow) unchanged; its UI socket and log
# are in the work directory. elsd runs on the same traffic in the same place: in the client
# namespace, all of its in- and outbound packets queued, with an outbound permit for tcp/80.
OS_OK=
os_setup() {
	command -v opensnitchd >/dev/null ||
		{ skip "OpenSnitch" "opensnitchd is not installed (bench/deps)"; return 1; }
	[[ -n $CONN_OK ]] || { skip "OpenSnitch" "no new-connection runs here (see above)"; return 1; }
	mkdir -p "$WORK/os-rules"
	cat >"$WORK/os-rules/allow-http.json" <<-'EOF'
		{"created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
		 "name": "allow-http", "enabled": true, "precedence": true, "action": "allow",
		 "duration": "always",
		 "operator": {"type": "simple", "operand": "dest.port", "sensitive": false, "data": "80",
		              "list": []}}
	EOF
	# elsd on the client side: the example policy for the client's address, tcp/80 out
	policy "$WORK/o" 2 0
	sed -i -e 's/local_addresses = \[ "198.18.0.2", "2001:db8:1::2" \];/local_addresses = [ "198.18.0.1", "2001:db8:1::1" ];/' \
		-e 's/^  permits = ($/  permits = (\n    { id = "bench-http-out"; dir = "out"; proto = "tcp"; remote_ports = [ 80 ]; },/' \
		"$WORK/o/elsd.conf"
	grep -q bench-http-out "$WORK/o/elsd.conf" ||
		{ skip "OpenSnitch" "could not write the client-side elsd policy"; return 1; }
	OS_OK=1
}
cli_unsteer() {
	for ipt in iptables ip6tables; do in_cli $ipt -F; in_cli $ipt -t mangle -F; done
	in_cli conntrack -F >/dev/null 2>&1
}
cli_steer() { # all of the client's non-loopback packets to queue 0, as els_steer does
	local ipt chain ifopt
	for ipt in iptables ip6tables; do
		for chain in INPUT OUTPUT; do
			ifopt=-i; [[ $chain == OUTPUT ]] && ifopt=-o
			in_cli $ipt -A $chain $ifopt lo -j ACCEPT
			in_cli $ipt -A $chain -j NFQUEUE --queue-num 0 || return 1
		done
	done
}
OS_FPID=
os_switch() { # os_switch none|elsd|opensnitch: the filter in the client namespace
	if [[ -n $OS_FPID ]]; then kill "$OS_FPID" 2>/dev/null; wait "$OS_FPID" 2>/dev/null; fi
	OS_FPID=
	cli_unsteer
	case $1 in
	none) return 0 ;;
	elsd)
		cli_steer || return 1
		: >"$WORK/o/elsd.log"
		ip netns exec "$CLI" "$ELSD" -c "$WORK/o/elsd.conf" --control-socket "$WORK/o/ctl.sock" \
			>>"$WORK/o/elsd.log" 2>&1 &
		OS_FPID=$!
		for _ in $(seq 100); do grep -q "started:" "$WORK/o/elsd.log" && break; sleep 0.1; done
		grep -q "started:" "$WORK/o/elsd.log" || { tail -3 "$WORK/o/elsd.log"; os_switch none; return 1; }
		;;
	opensnitch)
		ip netns exec "$CLI" opensnitchd -rules-path "$WORK/os-rules" \
			-ui-socket "unix://$WORK/osui.sock" -log-file "$WORK/opensnitchd.log" \
			-process-monitor-method proc -queue-num 0 >>"$WORK/opensnitchd.out" 2>&1 &
		OS_FPID=$!
		for _ in $(seq 100); do
			in_cli iptables -t mangle -S OUTPUT 2>/dev/null | grep -q NFQUEUE && break
			kill -0 "$OS_FPID" 2>/dev/null || break
			sleep 0.1
		done
		in_cli iptables -t mangle -S OUTPUT 2>/dev/null | grep -q NFQUEUE || {
			log "opensnitchd did not install its queue rule: $(tail -3 "$WORK/opensnitchd.log" "$WORK/opensnitchd.out" 2>/dev/null | tr '\n' ' ')"
			os_switch none; return 1; }
		sleep 0.5 # its rules load after the firewall is up
		;;
	esac
	[[ -n $FPIN ]] && taskset -a -p -c 1 "$OS_FPID" >/dev/null
	return 0
}

# --- ulogd2 against elsd's monitor: the same drop events -------------------------------------
# UDP to 10,000 closed ports (20000-29999) from 251 sources, the port changing with every
# packet: every packet a drop event with a key of its own. elsd aggregates drops per source,
# destination and port within a second, and per destination and port once 64 sources have
# hit it in a second (docs/monitor-schema.md); this stream meets neither (a port sees a few
# dozen packets a second, each from another source), so elsd writes one row per packet too. ulogd2 gets the
# same packets through `NFLOG --nflog-group 1` ahead of a DROP, one row per packet in SQLite.
ULOGD_OK=
ULOGD_LIB=
ulogd_setup() {
	command -v ulogd >/dev/null || { skip "ulogd2" "ulogd is not installed (bench/deps)"; return 1; }
	ULOGD_LIB=$(dirname "$(dpkg -L ulogd2-sqlite3 2>/dev/null | grep -m1 'ulogd_output_SQLITE3.so$')")
	[[ -f $ULOGD_LIB/ulogd_output_SQLITE3.so ]] ||
		{ skip "ulogd2" "ulogd2-sqlite3 is not installed (bench/deps)"; return 1; }
	ULOGD_OK=1
}
ulogd_start() { # a fresh database; its table holds what elsd's drop rows hold
	local d=$WORK/ulogd
	rm -rf "$d"; mkdir -p "$d"
	sqlite3 "$d/ulogd.db" "CREATE TABLE ulog(oob_time_sec INTEGER, oob_time_usec INTEGER,
		oob_prefix TEXT, oob_in TEXT, oob_out TEXT, ip_saddr_str TEXT, ip_daddr_str TEXT,
		ip_protocol INTEGER, udp_sport INTEGER, udp_dport INTEGER, tcp_sport INTEGER,
		tcp_dport INTEGER, tcp_syn INTEGER, raw_pktlen INTEGER);"
	cat >"$d/ulogd.conf" <<-EOF
		[global]
		logfile="$d/ulogd.log"
		loglevel=5
		plugin="$ULOGD_LIB/ulogd_inppkt_NFLOG.so"
		plugin="$ULOGD_LIB/ulogd_raw2packet_BASE.so"
		plugin="$ULOGD_LIB/ulogd_filter_IFINDEX.so"
		plugin="$ULOGD_LIB/ulogd_filter_IP2STR.so"
		plugin="$ULOGD_LIB/ulogd_output_SQLITE3.so"
		stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,sql1:SQLITE3
		[log1]
		group=1
		# the receive buffer sizes of Debian's example /etc/ulogd.conf (commented out there):
		# without them a burst overflows the netlink socket at once
		netlink_socket_buffer_size=217088
		netlink_socket_buffer_maxsize=1085760
		[sql1]
		table="ulog"
		db="$d/ulogd.db"
		buffer=200
	EOF
	ip netns exec "$SRV" $FPIN ulogd -c "$d/ulogd.conf" >"$d/out.log" 2>&1 &
	ULOGD_PID=$!
	PEER_PIDS+=($ULOGD_PID)
	for _ in $(seq 50); do
		grep -q "building new pluginstance stack" "$d/ulogd.log" 2>/dev/null && break
		kill -0 "$ULOGD_PID" 2>/dev/null || break
		sleep 0.1
	done
	sleep 0.3
	kill -0 "$ULOGD_PID" 2>/dev/null || { log "ulogd did not start: $(tail -3 "$d/ulogd.log" "$d/out.log" | tr '\n' ' ')"; return 1; }
	in_srv iptables -A INPUT -p udp --dport 20000:29999 -j NFLOG --nflog-group 1 &&
		in_srv iptables -A INPUT -p udp --dport 20000:29999 -j DROP
}
# settle COUNT_CMD...: until the count stops growing (1 s unchanged, 60 s at most); prints
# "COUNT SECONDS" with SECONDS from LOG_T0 to the last change.
settle() {
	local last=-1 n t_last now stable=0
	t_last=$(date +%s.%N)
	for _ in $(seq 300); do
		n=$("$@" 2>/dev/null)
		num "$n" || n=$last
		now=$(date +%s.%N)
		if [[ $n != "$last" ]]; then last=$n t_last=$now stable=0; else stable=$((stable + 1)); fi
		((stable >= 5)) && break
		sleep 0.2
	done
	echo "$last $(calc "round($t_last - $LOG_T0, 3)")"
}
db_bytes() { cat "$1" "$1-wal" 2>/dev/null | wc -c; }
# run_logger elsd|ulogd: LOG_T seconds of drop traffic; LOG_ROWS, LOG_RPS (rows/s over the
# time until the last row was written), LOG_EPS (drop events recorded/s), LOG_BPR (bytes/row).
run_logger() {
	local who=$1 db rows0 ev0 b0 sent
	LOG_ROWS= LOG_RPS= LOG_EPS= LOG_BPR=
	if [[ $who == elsd ]]; then
		els_steer && start_elsd "$WORK/c/elsd.conf" || { unsteer; return 1; }
		db=$WORK/c/monitor.db
		q_rows() { sqlite3 -cmd '.timeout 5000' "$WORK/c/monitor.db" \
			"SELECT count(*) FROM records WHERE kind = 'drop' AND dport BETWEEN 20000 AND 29999"; }
		q_events() { sqlite3 -cmd '.timeout 5000' "$WORK/c/monitor.db" \
			"SELECT coalesce(sum(count), 0) FROM records WHERE kind = 'drop' AND dport BETWEEN 20000 AND 29999"; }
	else
		ulogd_start || { peers_cleanup; unsteer; return 1; }
		db=$WORK/ulogd/ulogd.db
		q_rows() { sqlite3 -cmd '.timeout 5000' "$WORK/ulogd/ulogd.db" "SELECT count(*) FROM ulog"; }
		q_events() { q_rows; }
	fi
	sleep 0.5
	quiesce
	rows0=$(q_rows) ev0=$(q_events) b0=$(db_bytes "$db")
	LOG_T0=$(date +%s.%N)
	sent=$(in_cli $PIN "$BIN/blast" udp-send $SRV4 20000 "$LOG_T" --srcs 198.18.1.1 251 \
		--sports 10000 --dports 10000 | awk '{print $2}')
	local r
	read -r r secs < <(settle q_rows)
	local ev b1
	ev=$(q_events) b1=$(db_bytes "$db")
	if [[ $who == elsd ]]; then
		filter_alive "$ELSD_PID" || r=
		els_stop
	else
		kill "$ULOGD_PID"; wait "$ULOGD_PID" 2>/dev/null
		local p keep=()
		for p in "${PEER_PIDS[@]}"; do [[ $p == "$ULOGD_PID" ]] || keep+=("$p"); done
		PEER_PIDS=("${keep[@]}")
	fi
	unsteer
	num "$r" && num "$rows0" && ((r > rows0)) ||
		{ log "$who: logger run failed (no rows)"; return 1; }
	LOG_ROWS=$((r - rows0))
	LOG_RPS=$(calc "round($LOG_ROWS / max(0.001, $secs))")
	LOG_EPS=$(calc "round(($ev - $ev0) / max(0.001, $secs))")
	LOG_BPR=$(calc "round(max(0, $b1 - $b0) / $LOG_ROWS, 1)")
	log "$who: sent $sent drop events in ${LOG_T}s; $LOG_ROWS rows ($((ev - ev0)) events) by ${secs}s: $LOG_RPS rows/s, $LOG_EPS events/s, $LOG_BPR bytes/row"
}

# --- SYN flood ----------------------------------------------------------------------------------
# blast syn-flood (CPU 0) sends spoofed SYNs from 198.18.128.0/17 as fast as it can for FLOOD_T
# seconds, to 443 (permitted, openssl s_server listening) or to 8443 (neither permitted nor
# listening); meanwhile bench/https_probe.py (4 clients) counts TLS handshakes with 443 that
# complete within 2 s. The server routes the spoofed range back to the client namespace, where
# the SYN-ACKs die. For elsd: the monitor rows the flood wrote (all rows but those of the
# client's own connections), and their bytes at the file's mean bytes per row.
HTTPS_OK= HTTPS_PIDS=()
https_setup() {
	in_srv ip route add 198.18.128.0/17 via $CLI4
	local n=${#BG_PIDS[@]}
	els_https_server && HTTPS_OK=1 || skip "SYN flood" "openssl s_server did not start"
	HTTPS_PIDS=("${BG_PIDS[@]:n}")
}
# The servers stop with the flood section: bench/run's later `wait` (the callgrind runs)
# waits for every child, and would wait for them for ever.
https_stop() {
	local p
	for p in "${HTTPS_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${HTTPS_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	HTTPS_PIDS=()
}
flood_queue_stats() { # queue 0's packets so far, kernel drops (full queue), dropped by the peer
	in_srv awk '$1 == 0 {printf "%s/%s/%s", $8, $6, $7}' /proc/net/netfilter/nfnetlink_queue 2>/dev/null
}
run_flood() { # run_flood NAME PORT: FL_SENT FL_OK FL_ATT FL_P50 FL_P99 FL_ROWS FL_BYTES
	local name=$1 port=$2 db= r0= fpid out
	FL_SENT= FL_OK= FL_ATT= FL_P50= FL_P99= FL_ROWS= FL_BYTES=
	[[ $CUR == n || $CUR == b ]] || db=$WORK/$CUR/monitor.db # nft and nfq_min keep no records
	quiesce
	# the flood's rows: not those of the legitimate client's own connections (admit, flow_end)
	q_flood() { sqlite3 -cmd '.timeout 5000' "$db" "SELECT count(*) FROM records
		WHERE coalesce(src, '') <> '$CLI4' AND coalesce(dst, '') <> '$CLI4'"; }
	[[ -n $db ]] && r0=$(q_flood)
	# what the queue and the filter did meanwhile, for the log (a run that goes wrong says why)
	local s0= k0 k1 c0 c1
	[[ -n $db ]] && s0=$(sqlite3 -cmd '.timeout 5000' "$db" "SELECT coalesce(max(seq), 0) FROM records")
	k0=$(flood_queue_stats) c0=$(cpu_ticks "$FPID")
	in_cli $PIN "$BIN/blast" syn-flood $SRV4 "$port" "$FLOOD_T" >"$WORK/flood.out" 2>&1 &
	fpid=$!
	sleep 0.2
	out=$(in_cli python3 "$SRC/bench/https_probe.py" $SRV4 443 "$(calc "$FLOOD_T - 0.5")" 4 2)
	wait $fpid
	k1=$(flood_queue_stats) c1=$(cpu_ticks "$FPID")
	log "$name -> :$port: queue (packets, kernel drops, verdict-less drops) $k0 -> $k1;" \
		"filter CPU $(calc "round(($c1 - $c0) / $CLK, 2)") s; load $(cut -d' ' -f1-3 /proc/loadavg)"
	FL_SENT=$(awk '/^sent/ {print $2}' "$WORK/flood.out")
	read -r _ FL_ATT _ FL_OK _ FL_P50 _ FL_P99 <<<"$out"
	num "$FL_SENT" && num "$FL_ATT" && ((FL_ATT > 0)) && filter_alive "$FPID" ||
		{ log "$name: flood run failed: $(cat "$WORK/flood.out") / $out"; FL_SENT= FL_ATT= FL_OK=; return 1; }
	if [[ -n $db ]]; then
		LOG_T0=$(date +%s.%N)
		local r secs size all
		read -r r secs < <(settle q_flood)
		FL_ROWS=$((r - r0))
		# the flood's share of the file: its rows at the file's mean bytes per row (the file
		# also grew by the client's own records, and its WAL grows in steps)
		size=$(sqlite3 -cmd '.timeout 5000' "$db" \
			"SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
		all=$(sqlite3 -cmd '.timeout 5000' "$db" "SELECT count(*) FROM records")
		num "$size" && num "$all" && ((all > 0)) && FL_BYTES=$(calc "round($FL_ROWS * $size / $all)")
		log "$name -> :$port: records since the start of the flood: $(sqlite3 -cmd '.timeout 5000' "$db" \
			"SELECT group_concat(k, ' ') FROM (SELECT kind || '/' || coalesce(reason, '-') || '=' || sum(count) k
			 FROM records WHERE seq > ${s0:-0} GROUP BY kind, reason)"); the file holds $all rows"
	fi
	log "$name -> :$port: $FL_SENT SYNs in ${FLOOD_T}s; handshakes $FL_OK/$FL_ATT ok, p50 $FL_P50 ms, p99 $FL_P99 ms; monitor +${FL_ROWS:--} rows, +${FL_BYTES:--} bytes"
}
