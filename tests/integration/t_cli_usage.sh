#!/usr/bin/env bash
# Command-line mistakes in the tools that t_config_check (elsd), t_elsctl_single (elsctl) and
# t_pki (els-pki) do not cover: els-log, els-sweep, els-rules and els-console. Each mistake exits 2 with a
# message that names what was wrong and points to --help, before touching any file, database
# or ruleset; --help exits 0 and starts with a usage line. Then the conventions the tools share
# (docs/cli.md): global options after an elsctl subcommand, short usage errors, JSON from the
# read commands, elsd --get of an unknown setting, and els-rules -n, which must leave the
# live ruleset alone (watched with `nft monitor` in a scratch namespace).
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
trap els_cleanup EXIT
RULES=$ELS_SOURCE_DIR/packaging/els-rules

# usage_error LABEL PATTERN CMD...: exit 2, and stderr matches PATTERN and mentions --help.
usage_error() {
	local label=$1 pat=$2 rc
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	check_eq "$label: exit 2" 2 "$rc"
	check "$label: says what was wrong" grep -qE -- "$pat" "$WORK/err"
	check "$label: points to --help or prints the usage" grep -qE -- "--help|^Usage:" "$WORK/err"
	check_eq "$label: nothing on stdout" "" "$(cat "$WORK/out")"
}

LOG=$ELS_BUILD_DIR/els-log
SWEEP=$ELS_BUILD_DIR/els-sweep
usage_error "els-log, unknown option" "unrecognized option '--bogus'" "$LOG" --bogus
usage_error "els-log, bad --kind" "--kind 'nope': one of drop, .*would_drop" "$LOG" --kind nope x.db
usage_error "els-log, bad --since" "--since 'soonish': not a time" "$LOG" --since soonish x.db
usage_error "els-log, bad --port" "--port" "$LOG" --port 70000 x.db
usage_error "els-log, two files" "unexpected argument 'b.db'" "$LOG" a.db b.db
usage_error "els-sweep, unknown option" "unrecognized option '--bogus'" "$SWEEP" --bogus
usage_error "els-sweep, stray argument" "unexpected argument 'extra'" "$SWEEP" extra
CONSOLE=$ELS_BUILD_DIR/els-console
usage_error "els-console, unknown option" "unrecognized option '--bogus'" "$CONSOLE" --bogus
usage_error "els-console, stray argument" "unexpected argument 'extra'" "$CONSOLE" -n extra
check "els-console --help starts with a usage line" bash -c "'$CONSOLE' --help | head -1 | grep -q '^Usage: els-console'"
# els-rules: the lock would be taken and elsd run only after the arguments are checked.
export ELS_RULES_NOLOCK=1
usage_error "els-rules, no command" "^Usage:" "$RULES"
usage_error "els-rules, unknown command" "unknown argument 'frob'" "$RULES" frob
usage_error "els-rules, two commands" "one command at a time" "$RULES" install remove
usage_error "els-rules, unknown backend" "unknown backend 'pf' \(auto, nft, iptables\)" \
	"$RULES" -b pf install
usage_error "els-rules, --backend without a value" "^Usage:" "$RULES" install -b

for tool in "$LOG" "$SWEEP" "$RULES"; do
	name=${tool##*/}
	"$tool" --help >"$WORK/out" 2>&1
	check_eq "$name --help exits 0" 0 $?
	check "$name --help starts with its usage line" grep -q "^Usage: $name " <(head -1 "$WORK/out")
done

# --- conventions ---------------------------------------------------------------------------
CTL=$ELS_BUILD_DIR/elsctl
CONF=$ELS_SOURCE_DIR/conf/elsd.conf
usage_error "elsctl, unknown subcommand" "unknown subcommand 'bogus'" "$CTL" bogus
check_ge "elsctl bogus: two lines, not the whole help" 2 "$(wc -l <"$WORK/err")"
check_eq "elsctl bogus: at most two lines" 2 "$(wc -l <"$WORK/err")"
usage_error "elsctl, no subcommand" "no subcommand" "$CTL"
check_eq "elsctl without a subcommand: two lines" 2 "$(wc -l <"$WORK/err")"
# Global options after the subcommand are the global options: their checks fire.
usage_error "elsctl status --timeout 0 (after the subcommand)" "--timeout: need 1..3600" \
	"$CTL" status --timeout 0
usage_error "elsctl status --agent BAD (after the subcommand)" "--agent 198.18.0.9:notaport" \
	"$CTL" status --agent 198.18.0.9:notaport
usage_error "elsctl flows -l 5 -P 0 (short global after the subcommand)" "--parallel" \
	"$CTL" flows -l 5 -P 0
# Short options mean one thing in every tool (docs/cli.md): -n is a dry run, never a count.
usage_error "els-log -n 5 (the count is -l)" "-n is a dry run in every tool; the count is -l 5 \(--limit\)" \
	"$LOG" -n 5 x.db
usage_error "els-log -a CIDR (-a is --agent)" "the address filter is --addr 198.18.0.0/24" \
	"$LOG" -a 198.18.0.0/24 x.db
usage_error "elsctl log -n 5 (the count is -l)" "the count is -l 5" "$CTL" log -n 5
usage_error "elsctl flows -n 5 (the count is -l)" "the count is -l 5" "$CTL" flows -n 5
usage_error "els-sweep -k FILE (-k is --kind)" "the chain key is -K k.key \\(--key\\)" "$SWEEP" -k k.key
usage_error "elsctl status --agent=BAD (= form)" "--agent 198.18.0.9:x" \
	"$CTL" status --agent=198.18.0.9:x
# The subcommand's own -h still asks about the subcommand.
"$CTL" status -h >"$WORK/out" 2>&1
check "elsctl status -h: the subcommand's help" grep -q '^Usage: elsctl \[OPTIONS\] status' "$WORK/out"
# JSON from the read commands that work without an agent.
npermits=$("$ELSD" -c "$CONF" --report | grep -c '^permit ')
check_ge "elsd --report: the example has permits" 3 "$npermits"
"$ELSD" -c "$CONF" --report --json --monitor "$WORK/none.db" >"$WORK/out" 2>"$WORK/err"
check_eq "elsd --report --json: exit 0" 0 $?
check_eq "elsd --report --json: every permit, as JSON" "$npermits" \
	"$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["permits"]))' <"$WORK/out")"
check_eq "elsd --report --json: the first permit's id" https-in \
	"$(python3 -c 'import json,sys; print(json.load(sys.stdin)["permits"][0]["id"])' <"$WORK/out")"
for argv in "--json registry -c $CONF" "registry -c $CONF --json" "registry -j -c $CONF"; do
	# shellcheck disable=SC2086 # the words are the arguments
	"$CTL" $argv --monitor "$WORK/none.db" >"$WORK/out" 2>"$WORK/err"
	check_eq "elsctl $argv: same permits as JSON" "$npermits" \
		"$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["permits"]))' <"$WORK/out")"
done
check_eq "elsd --handlers --json: every handler of the text list" \
	"$("$ELSD" --handlers | wc -l)" \
	"$("$ELSD" --handlers --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
usage_error "elsd, --json without --report" "--json only applies to --report" \
	"$ELSD" -c "$CONF" --json -n
# --get: a setting left out prints nothing (its default applies); a name elsd does not know
# is an error, so a script never mistakes a typo for an absent setting.
"$ELSD" -c "$CONF" --get nosuch >"$WORK/out" 2>"$WORK/err"
check_eq "elsd --get nosuch: exit 1" 1 $?
check "elsd --get nosuch: says so" grep -q -- "--get nosuch: no such setting" "$WORK/err"
check_eq "elsd --get nosuch: nothing on stdout" "" "$(cat "$WORK/out")"
"$ELSD" -c "$CONF" --get monitor.nosuch >/dev/null 2>&1
check_eq "elsd --get monitor.nosuch (known section, absent key): exit 0" 0 $?
"$ELSD" -c "$CONF" --get management.listen >"$WORK/out" 2>&1
check_eq "elsd --get management.listen (absent): exit 0" 0 $?
check_eq "elsd --get management.listen (absent): prints nothing" "" "$(cat "$WORK/out")"
check_eq "elsd --get queues" 0 "$("$ELSD" -c "$CONF" --get queues)"

# els-rules -n in a namespace of its own: nothing it does may show up in `nft monitor`.
NS=$ELS_TAG-rules
ip netns add "$NS" || exit 1
trap 'kill $MON 2>/dev/null; ip netns del "$NS" 2>/dev/null; els_cleanup' EXIT
rules_ns() { ip netns exec "$NS" env ELSD="$ELSD" "$RULES" -c "$CONF" "$@"; }
# >>: the file is emptied between steps while nft monitor keeps writing to it.
ip netns exec "$NS" nft monitor >>"$WORK/monitor" 2>&1 &
MON=$!
sleep 0.5
rules_ns -n install >"$WORK/dry-install" 2>&1
check_eq "els-rules -n install: exit 0" 0 $?
check "els-rules -n install: prints the rules" grep -qE 'queue num 0|--queue-num 0' "$WORK/dry-install"
rules_ns -n -b nft install >/dev/null 2>&1
rules_ns -n -b iptables install >/dev/null 2>&1
rules_ns -n remove >"$WORK/dry-remove-empty" 2>&1
check "els-rules -n remove, nothing installed: says so" grep -q 'nothing installed' \
	"$WORK/dry-remove-empty"
sleep 0.5
check_eq "dry runs made no change to the ruleset (nft monitor saw nothing)" "" \
	"$(grep -v '^#' "$WORK/monitor")"
check_eq "the namespace's ruleset is still empty" "" "$(ip netns exec "$NS" nft list ruleset)"
# Now installed for real, then a dry remove: the table (nft) or chains (iptables) must stay.
# nft's queue expression needs kernel support (nft_queue), which not every kernel has.
if ip netns exec "$NS" nft -c -f - >/dev/null 2>&1 <<<'add table inet p
add chain inet p c
add rule inet p c queue num 0'; then
	check "els-rules install (nft)" rules_ns -b nft install
	sleep 0.5
	check "nft monitor sees a real change (so its silence above means something)" \
		grep -q 'add table inet elsd' "$WORK/monitor"
	: >"$WORK/monitor"
	rules_ns -n remove >"$WORK/dry-remove" 2>&1
	check_eq "els-rules -n remove: exit 0" 0 $?
	check "els-rules -n remove: prints what it would delete" \
		grep -qx 'nft delete table inet elsd' "$WORK/dry-remove"
	sleep 0.5
	check "els-rules -n remove: the table is still there" \
		ip netns exec "$NS" nft list table inet elsd
	check_eq "els-rules -n remove: nft monitor saw no change" "" "$(grep -v '^#' "$WORK/monitor")"
	check "els-rules remove (for real)" rules_ns remove
	check_not "removed: no table inet elsd" ip netns exec "$NS" nft list table inet elsd
else
	log "this kernel has no nft queue expression: the nft remove is covered by iptables below"
	check "els-rules -n install (auto) picked iptables, as a real install would" \
		grep -q '^# backend iptables' "$WORK/dry-install"
fi
# iptables: the same with the chains.
check "els-rules install (iptables)" rules_ns -b iptables install
sleep 0.5
check "nft monitor sees the iptables-nft change (so its silence means something)" \
	grep -q 'ELSD-IN' "$WORK/monitor"
: >"$WORK/monitor"
rules_ns -n remove >"$WORK/dry-remove" 2>&1
check "els-rules -n remove (iptables): prints the jumps it would delete" \
	grep -qx 'iptables -D INPUT -j ELSD-IN' "$WORK/dry-remove"
check "els-rules -n remove (iptables): ELSD-IN is still there" \
	ip netns exec "$NS" iptables -w -S ELSD-IN
check "els-rules -n remove (iptables): the jump is still there" \
	ip netns exec "$NS" iptables -w -C INPUT -j ELSD-IN
sleep 0.5
check_eq "els-rules -n remove (iptables): nft monitor saw no change" "" \
	"$(tr -d '\0' <"$WORK/monitor" | grep -v '^#')"
check "els-rules remove (iptables, for real)" rules_ns remove
check_not "removed: no ELSD-IN" ip netns exec "$NS" iptables -w -S ELSD-IN
els_finish
