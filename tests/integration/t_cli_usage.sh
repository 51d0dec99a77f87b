#!/usr/bin/env bash
# Command-line mistakes in the tools that t_config_check (elsd), t_elsctl_single (elsctl) and
# t_pki (els-pki) do not cover: els-log, els-sweep and els-rules. Each mistake exits 2 with a
# message that names what was wrong and points to --help, before touching any file, database
# or ruleset; --help exits 0 and starts with a usage line. Needs no namespaces.
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
els_finish
