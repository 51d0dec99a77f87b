#!/usr/bin/env bash
# The man pages (man/*.scd, rendered by the build into $ELS_BUILD_DIR/man): each renders with
# man(1) and groff without a single warning, and names every short and long option that its
# program's --help prints (elsctl: also every subcommand's help), so a new option without
# documentation fails here. Needs no namespaces.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
trap els_cleanup EXIT
MAN=$ELS_BUILD_DIR/man

# The options a help text names: "-x" and "--long-name" at a word start.
help_options() {
	grep -oE -- '(^|[][ ,(|])--?[A-Za-z][A-Za-z0-9-]*' | sed -E 's/^[][ ,(|]//' | sort -u
}

# The page as plain text, as a reader sees it.
page_text() { MANWIDTH=200 man -l "$1" 2>/dev/null | col -b; }

# check_page PAGE HELPFILE: renders cleanly, and every option of HELPFILE is in it.
check_page() {
	local page=$1 help=$2 opt missing='' n=0
	check "$page: built" test -s "$MAN/$page"
	groff -man -ww -z "$MAN/$page" >"$WORK/groff.err" 2>&1
	check_eq "$page: groff -man -ww renders it without warnings" "" "$(cat "$WORK/groff.err")"
	MANWIDTH=80 man --warnings=w -l "$MAN/$page" >"$WORK/man.out" 2>"$WORK/man.err"
	check_eq "$page: man -l renders it without warnings" "" "$(cat "$WORK/man.err")"
	check "$page: man -l shows its NAME section" grep -q '^NAME' "$WORK/man.out"
	page_text "$MAN/$page" >"$WORK/page.txt"
	while read -r opt; do
		n=$((n + 1))
		grep -qE -- "(^|[^A-Za-z0-9-])${opt}([^A-Za-z0-9-]|\$)" "$WORK/page.txt" ||
			missing+=" $opt"
	done < <(help_options <"$help")
	check_ge "$page: --help names options to look for" 3 "$n"
	check_eq "$page: every option of --help is in the page" "" "$missing"
}

"$ELSD" --help >"$WORK/help" 2>&1
check_page elsd.8 "$WORK/help"
"$ELS_BUILD_DIR/els-log" --help >"$WORK/help" 2>&1
check_page els-log.8 "$WORK/help"
"$ELS_BUILD_DIR/els-sweep" --help >"$WORK/help" 2>&1
check_page els-sweep.8 "$WORK/help"
"$ELS_SOURCE_DIR/packaging/els-rules" --help >"$WORK/help" 2>&1
check_page els-rules.8 "$WORK/help"
"$ELS_SOURCE_DIR/pki/els-pki" --help >"$WORK/help" 2>&1
check_page els-pki.8 "$WORK/help"
"$ELS_BUILD_DIR/els-console" --help >"$WORK/help" 2>&1
check_page els-console.8 "$WORK/help"
CTL=$ELS_BUILD_DIR/elsctl
"$CTL" --help >"$WORK/help" 2>&1
subs=$(sed -n '/^Subcommands:/,/^$/p' "$WORK/help" | awk 'NR > 1 && NF {print $1}')
check_ge "elsctl --help lists its subcommands" 10 "$(wc -w <<<"$subs")"
page_text "$MAN/elsctl.8" >"$WORK/page.txt"
missing=''
for s in $subs; do
	"$CTL" help "$s" >>"$WORK/help" 2>&1
	grep -qE "^ +$s( |\$)" "$WORK/page.txt" || missing+=" $s"
done
check_eq "elsctl.8: every subcommand has an entry" "" "$missing"
check_page elsctl.8 "$WORK/help"

# The configuration page: every top-level setting and section the loader accepts (its list in
# engine/policy.c), every handler (elsd --handlers).
page_text "$MAN/elsd.conf.5" >"$WORK/conf.txt"
top=$(sed -n '/top_keys\[\] = {/,/NULL/p' "$ELS_SOURCE_DIR/engine/policy.c" | grep -oE '"[a-z_]+"' |
	tr -d '"')
check_ge "engine/policy.c lists top-level settings" 10 "$(wc -w <<<"$top")"
missing=''
for key in $top $("$ELSD" --handlers | awk '{print $1}'); do
	grep -qw -- "$key" "$WORK/conf.txt" || missing+=" $key"
done
check_eq "elsd.conf.5 documents every top-level setting and handler" "" "$missing"
# Every setting of the shipped example config (name = ...) is in the page.
missing=''
for key in $(sed -E 's/#.*//' "$ELS_SOURCE_DIR/conf/elsd.conf" | grep -oE '\b[a-z_]+ *=' |
	tr -d ' =' | sort -u); do
	grep -qw -- "$key" "$WORK/conf.txt" || missing+=" $key"
done
check_eq "elsd.conf.5 documents every setting conf/elsd.conf uses" "" "$missing"
els_finish
