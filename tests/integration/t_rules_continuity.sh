#!/usr/bin/env bash
# No unenforced window (fail_open = false): the steering rules live apart from elsd, as the
# units have it (packaging/elsd-rules.service installs them once; elsd.service starts, stops
# and restarts elsd without touching them, and runs `els-rules verify` after every stop). This
# plays the sequence the units perform, in a namespace, while probers keep trying to connect
# to a denied port (22): clean stops and starts, 20 restarts, kill -9 and a start again, a
# start with a broken config, a package upgrade (`els-rules install` replacing the rules,
# then a restart), and an install from a broken config. Not one connection may reach 22; the
# permitted port (443) works whenever elsd runs. With fail_open = true the rules carry bypass:
# traffic flows while no elsd is bound, as before.
. "$(dirname "$0")/lib.sh"
RULES=$ELS_SOURCE_DIR/packaging/els-rules
export ELSD ELS_RULES=$RULES ELS_RULES_LOCK=$WORK/rules.lock
els_setup
els_config "$WORK/elsd.conf"
els_config "$WORK/bad.conf" 's/^queues = "0";/queues = "zero";/'
els_listen "$SRV" 443 || { fail "listener on 443 did not start"; els_finish; exit; }
els_listen "$SRV" 22 || { fail "listener on 22 did not start"; els_finish; exit; }
port443() { in_cli timeout 4 nc -z -w 3 "$SRV4" 443; }
rules() { in_srv "$RULES" "$@"; }
# What elsd.service's ExecStopPost says after a stop: the rules as checked.
stop_post() { rules -c "$WORK/elsd.conf" verify 2>&1; }

check "elsd-rules.service: els-rules install" rules -c "$WORK/elsd.conf" install
els_start "$WORK/elsd.conf" || { fail "elsd did not start"; els_finish; exit; }
check "443 passes" port443

# Four probers, each a new TCP connection to 22 (IPv4 and IPv6) as soon as the last one ended
# (a dropped SYN ends it after 1 s). Every completed connection is a packet that passed.
: >"$WORK/hits"
: >"$WORK/tries"
for addr in "$SRV4" "$SRV4" "$SRV6" "$SRV6"; do
	bg_in "$CLI" bash -c "while :; do echo >>$WORK/tries
		if timeout 2 nc -z -w 1 $addr 22; then echo $addr >>$WORK/hits; fi; sleep 0.05; done"
done

# --- systemctl stop elsd: the rules stay, and the stop says so after checking
els_stop
out=$(stop_post)
check "after a stop: verify says the rules are present, without bypass (checked)" grep -q \
	"steering rules present and first (checked: .*queue rules without bypass: steered packets wait for elsd or drop)" <<<"$out"
sleep 2
check_not "while elsd is stopped, 443 does not pass either (fail-closed)" \
	in_cli timeout 2 nc -z -w 1 "$SRV4" 443
els_start "$WORK/elsd.conf" || fail "elsd did not start again"
check "started again: 443 passes" port443

# --- systemctl restart elsd, 20 times
ok=0
for i in $(seq 20); do
	els_stop
	stop_post | grep -q "present and first (checked" || log "restart $i: verify did not find the rules"
	els_start "$WORK/elsd.conf" >/dev/null && ok=$((ok + 1))
done
check_eq "20 restarts" 20 "$ok"
check "443 passes after them" port443

# --- a crash: kill -9, then Restart=on-failure a second later
kill -KILL "$ELSD_PID"
wait "$ELSD_PID" 2>/dev/null
ELSD_PID=
check "after kill -9: the rules are present (checked)" grep -q "present and first" <<<"$(stop_post)"
sleep 1
els_start "$WORK/elsd.conf" || fail "elsd did not start after the kill"
check "443 passes after the crash" port443

# --- a restart with a broken config: the start fails, the rules stay
els_stop
cp "$WORK/elsd.conf" "$WORK/good.conf"
cp "$WORK/bad.conf" "$WORK/elsd.conf"
check_not "elsd refuses to start with a broken config" \
	in_srv timeout 10 "$ELSD" -c "$WORK/elsd.conf"
for _ in 1 2 3; do # Restart=on-failure retries
	in_srv timeout 10 "$ELSD" -c "$WORK/elsd.conf" >/dev/null 2>&1
	sleep 0.5
done
out=$(in_srv "$RULES" -c "$WORK/elsd.conf" verify 2>&1)
check "broken config: verify still finds the rules in place (checked)" grep -q "present and first" <<<"$out"
# A boot (or `systemctl restart elsd-rules`) with the broken config: the last good rules.
out=$(in_srv env JOURNAL_STREAM=8:1 "$RULES" -c "$WORK/elsd.conf" install 2>&1)
check_eq "els-rules install with the broken config fails" 1 "$?"
check "at error priority, with the reason and the rules it installed instead (checked)" grep -q \
	"^<3>els-rules: $WORK/elsd.conf is not valid: installed the rules of the last valid config .*present and first (checked" <<<"$out"
cp "$WORK/good.conf" "$WORK/elsd.conf"
els_start "$WORK/elsd.conf" || fail "elsd did not start with the fixed config"
check "fixed config: 443 passes" port443

# --- an upgrade: postinst reloads elsd-rules (els-rules install, atomic), then restarts elsd
check "upgrade: els-rules install over the running rules" rules -c "$WORK/elsd.conf" install
els_stop
els_start "$WORK/elsd.conf" || fail "elsd did not start after the upgrade"
check "443 passes after the upgrade" port443

sleep 1 # the probers' last attempts end
for p in "${BG_PIDS[@]:2}"; do kill "$p" 2>/dev/null; done
tries=$(wc -l <"$WORK/tries")
log "probers: $tries connection attempts to 22, $(wc -l <"$WORK/hits") completed"
check_ge "the probers kept trying throughout (attempts)" 40 "$tries"
check_eq "not one connection reached the denied port 22" 0 "$(wc -l <"$WORK/hits")"
els_stop

# --- fail_open = true: the rules carry bypass, so traffic flows while no elsd is bound
els_config "$WORK/open.conf" 's/^fail_open = false;/fail_open = true;/'
check "fail_open = true: install" rules -c "$WORK/open.conf" install
check "fail_open = true: verify says bypass (checked)" grep -q \
	"queue rules with bypass: traffic passes unjudged while no elsd is bound" <<<"$(stop_post)"
check "fail_open = true, no elsd: 22 passes (bypass)" in_cli timeout 3 nc -z -w 2 "$SRV4" 22
els_finish
