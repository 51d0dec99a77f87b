#!/usr/bin/env bash
# Bash completion (completion/*, installed under share/bash-completion/completions): each file
# loads under bash-completion without an error and registers a function for its program; the
# function completes real command lines (subcommands, values, options after a subcommand);
# and every option that a program's --help prints is offered after "-" (elsctl: after "-"
# and after each subcommand), so a new option without completion fails here. No namespaces.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
trap els_cleanup EXIT
COMP=$ELS_SOURCE_DIR/completion
BASH_COMPLETION=/usr/share/bash-completion/bash_completion
if [[ ! -r $BASH_COMPLETION ]]; then
	echo "needs bash-completion ($BASH_COMPLETION; scripts/deps installs it)"
	exit 1
fi

# complete_line WORD...: what bash offers for the last WORD of the line, one per line, in a
# fresh bash that has loaded bash-completion and the program's file, as an interactive shell
# would (no set -u: bash-completion is not written for it).
complete_line() {
	local prog=$1
	bash --norc --noprofile -c '
		. "$1" || exit 9
		. "$2" || exit 9
		shift 2
		spec=$(complete -p "$1" 2>/dev/null) || exit 8
		fn=$(sed -E "s/.*-F ([^ ]+) .*/\1/" <<<"$spec")
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		COMPREPLY=()
		"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"
	' complete "$BASH_COMPLETION" "$COMP/$prog" "$@"
}

# offers "description" EXPECTED WORD...: EXPECTED is among the completions.
offers() {
	local d=$1 want=$2
	shift 2
	check "$d" grep -qx -- "$want" <(complete_line "$@")
}

for f in "$COMP"/*; do
	prog=${f##*/}
	bash --norc --noprofile -c '. "$1" && . "$2" && complete -p "$3"' x "$BASH_COMPLETION" \
		"$f" "$prog" >"$WORK/out" 2>&1
	check_eq "$prog: loads and registers a completion function (exit)" 0 $?
	check_eq "$prog: loads without a message" "" "$(grep -v '^complete ' "$WORK/out")"
done

offers "elsctl pol<TAB> -> policy" policy elsctl pol
check_eq "elsctl pol<TAB>: only policy" "policy" "$(complete_line elsctl pol)"
offers "elsctl policy <TAB> -> apply" apply elsctl policy ''
offers "elsctl --agent h:1 list <TAB> -> add" add elsctl --agent h:1 list ''
offers "elsctl list add <TAB> -> deny" deny elsctl list add ''
offers "elsctl status --js<TAB> -> --json (after the subcommand)" --json elsctl status --js
offers "elsctl log --kind <TAB> -> would_drop" would_drop elsctl log --kind ''
offers "elsctl help re<TAB> -> registry" registry elsctl help re
offers "els-rules <TAB> -> install" install els-rules ''
offers "els-rules -b <TAB> -> nft" nft els-rules -b ''
offers "elsd --get que<TAB> -> queues" queues elsd --get que
offers "els-log --kind fl<TAB> -> flow_end" flow_end els-log --kind fl
# Every record kind the programs know (their --help prints the one list, ELS_REC_KINDS) is
# offered after --kind, so a new kind without completion fails here.
kinds=$("$ELS_BUILD_DIR/els-log" --help | sed -nE 's/^ +-k, --kind KIND +//p' | tr -d ',')
check "els-log --help lists the record kinds" test -n "$kinds"
for k in $kinds; do
	offers "els-log --kind <TAB> -> $k" "$k" els-log --kind ''
	offers "elsctl log --kind <TAB> -> $k" "$k" elsctl log --kind ''
done
offers "els-sweep --sslmode <TAB> -> verify-full" verify-full els-sweep --sslmode ''
offers "els-pki <TAB> -> console" console els-pki ''
offers "els-pki console /ca alice --role <TAB> -> auditor" auditor els-pki console /ca alice --role ''
mkdir -p "$WORK/files" && touch "$WORK/files/web.conf"
offers "elsctl policy apply <file><TAB> completes a file name" "$WORK/files/web.conf" \
	elsctl policy apply "$WORK/files/we"

# Every option a --help prints is offered (not those of other commands it quotes in `...`).
help_options() {
	sed 's/`[^`]*`//g' | grep -oE -- '(^|[][ ,(|])--?[A-Za-z][A-Za-z0-9-]*' | sed -E 's/^[][ ,(|]//' | sort -u
}
# all_offered "label" HELPFILE WORD...: every option of HELPFILE is completed after WORD... -
all_offered() {
	local label=$1 help=$2 missing='' opt
	shift 2
	complete_line "$@" - >"$WORK/offered"
	while read -r opt; do
		grep -qx -- "$opt" "$WORK/offered" || missing+=" $opt"
	done < <(help_options <"$help")
	check_eq "$label: completion offers every option of --help" "" "$missing"
}
"$ELSD" --help >"$WORK/help" 2>&1
all_offered elsd "$WORK/help" elsd
"$ELS_BUILD_DIR/els-log" --help >"$WORK/help" 2>&1
all_offered els-log "$WORK/help" els-log
"$ELS_BUILD_DIR/els-sweep" --help >"$WORK/help" 2>&1
all_offered els-sweep "$WORK/help" els-sweep
"$ELS_SOURCE_DIR/packaging/els-rules" --help >"$WORK/help" 2>&1
all_offered els-rules "$WORK/help" els-rules
"$ELS_BUILD_DIR/els-console" --help >"$WORK/help" 2>&1
all_offered els-console "$WORK/help" els-console
CTL=$ELS_BUILD_DIR/elsctl
"$CTL" --help | sed -n '/^Options/,/^Roles/p' >"$WORK/help"
all_offered "elsctl (global)" "$WORK/help" elsctl
for sub in flows log registry suggest audit; do
	"$CTL" help "$sub" | grep -v '^Usage: elsctl \[OPTIONS\]' >"$WORK/help"
	all_offered "elsctl $sub" "$WORK/help" elsctl "$sub"
done
"$CTL" help list | grep -v '^Usage: elsctl \[OPTIONS\]' >"$WORK/help"
all_offered "elsctl list add" "$WORK/help" elsctl list add
for pki_cmd in init agent console revoke; do
	"$ELS_SOURCE_DIR/pki/els-pki" --help | grep -E "^ +els-pki $pki_cmd " >"$WORK/help"
	all_offered "els-pki $pki_cmd" "$WORK/help" els-pki "$pki_cmd" /ca x
done
els_finish
