#!/usr/bin/env bash
# Fail-closed and fail-open, for real: els-rules steers the server namespace as the config
# says, connections to 443 run in a loop, and elsd is killed with SIGKILL in the middle of it.
# fail_open = false: while elsd is down, new connections to 443 fail. fail_open = true
# (--queue-bypass and NFQA_CFG_F_FAIL_OPEN): they pass. Either way a restart resumes filtering
# (443 passes, 22 is dropped again), and every monitor record committed before the kill is
# still there, unchanged, in a file that passes PRAGMA integrity_check.
# shellcheck disable=SC2119 # els_steer-style helpers take no arguments here
. "$(dirname "$0")/lib.sh"
RULES=$ELS_SOURCE_DIR/packaging/els-rules
export ELSD ELS_RULES_LOCK=$WORK/rules.lock
els_setup
els_config "$WORK/closed.conf"
els_config "$WORK/open.conf" 's/^fail_open = false;/fail_open = true;/'
# Plain TCP listeners that never block on one client (openssl s_server serves one connection
# at a time, and a connection cut by the kill would hold it): the policy permits 443 whatever
# is spoken on it.
els_listen "$SRV" 443 || { fail "listener on 443 did not start"; els_finish; exit; }
els_listen "$SRV" 22 || { fail "listener on 22 did not start"; els_finish; exit; }

# connect HOST [TIMEOUT] [SOURCE-PORT]: a new TCP connection to 443 completes
port443() { in_cli timeout $((${2:-3} + 1)) nc -z -w "${2:-3}" ${3:+-p "$3"} "$1" 443; }
port22() { in_cli timeout 3 nc -z -w 2 "$1" 22; }
# The records committed so far, as a fingerprint: the rows up to the newest one, in order.
fingerprint() { sql "SELECT * FROM records WHERE rowid <= $1 ORDER BY rowid" | sha256sum; }

# One round: elsd filtering under a loop of HTTPS requests, a sync point, kill -9, checks
# while it is down ($2: "blocked" or "passes"), restart, checks after.
round() {
	local conf=$1 down=$2 marker=$3
	check "els-rules install ($down while down)" in_srv "$RULES" -c "$conf" install
	els_start "$conf" || { fail "elsd did not start"; return; }
	check "filtering: 443 passes" port443 "$SRV4"
	check_not "filtering: 22 is dropped" port22 "$SRV4"
	bg_in "$CLI" bash -c "while :; do nc -z -w 1 $SRV4 443; sleep 0.02; done"
	local loop=${BG_PIDS[-1]}
	# Sync point: once the marker connection's record is visible, everything before it is
	# committed; remember those rows.
	port443 "$SRV4" 3 "$marker"
	check "sync point: the marker connection is in the monitor" \
		wait_records "kind='admit' AND sport=$marker AND dport=443"
	local max n fp
	max=$(sql "SELECT max(rowid) FROM records")
	n=$(sql "SELECT count(*) FROM records WHERE rowid <= $max")
	fp=$(fingerprint "$max")
	log "$n records committed before the kill"
	kill -9 "$ELSD_PID"
	wait "$ELSD_PID" 2>/dev/null
	ELSD_PID=
	if [[ $down == blocked ]]; then
		check_not "elsd killed, fail-closed: new connections to 443 fail" port443 "$SRV4" 2
		check_not "elsd killed, fail-closed: IPv6 too" port443 "$SRV6" 2
	else
		check "elsd killed, fail-open: new connections to 443 pass" port443 "$SRV4"
		check "elsd killed, fail-open: IPv6 too" port443 "$SRV6"
		check "elsd killed, fail-open: nothing is filtered (22 passes)" port22 "$SRV4"
	fi
	els_start "$conf" || { fail "elsd did not restart"; return; }
	check "restarted under traffic: 443 passes" port443 "$SRV4"
	check_not "restarted: 22 is dropped again" port22 "$SRV4"
	kill "$loop" 2>/dev/null
	check_eq "all $n records committed before the kill are still there" "$n" \
		"$(sql "SELECT count(*) FROM records WHERE rowid <= $max")"
	check_eq "and unchanged" "$fp" "$(fingerprint "$max")"
	check "the monitor keeps recording after the restart" \
		wait_records "rowid > $max AND kind='admit' AND dport=443"
	els_stop || fail "elsd exited non-zero"
	check_eq "PRAGMA integrity_check" ok "$(sql 'PRAGMA integrity_check')"
}

log "fail_open = false"
round "$WORK/closed.conf" blocked 40001
log "fail_open = true"
round "$WORK/open.conf" passes 40002
check "els-rules remove" in_srv "$RULES" remove
els_finish
