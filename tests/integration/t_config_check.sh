#!/usr/bin/env bash
# `elsd -n` accepts the shipped examples and reports each kind of mistake as FILE:LINE: message
# with a non-zero exit. No namespaces needed.
. "$(dirname "$0")/lib.sh"
els_require
trap els_cleanup EXIT
C=$WORK/elsd.conf

out=$("$ELSD" -n -c "$ELS_SOURCE_DIR/conf/elsd.conf" 2>&1)
check_eq "the example config is valid" 0 $?
check "the check names the chain" grep -q "iplist, tracker, header_filter" <<<"$out"

# expect_error DESCRIPTION PATTERN-IN-FILE MESSAGE-REGEX: the error names the line of PATTERN
expect_error() {
	local line msg rc
	line=$(grep -n -m1 -F -- "$2" "$C" | cut -d: -f1)
	msg=$("$ELSD" -n -c "$C" 2>&1); rc=$?
	if ((rc == 1)) && grep -qE -- "^$C:$line: .*$3" <<<"$msg"; then
		pass "$1"
	else
		fail "$1: exit $rc, line $line, got: $msg"
	fi
}
cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|"iplist", "tracker"|"iplsit", "tracker"|' "$C"
expect_error "unknown handler in chain" '"iplsit"' "unknown handler 'iplsit'"

cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|"198.19.66.0/24"|"198.19.66.300/24"|' "$C"
expect_error "bad CIDR in the deny list" '198.19.66.300' "198.19.66.300"

cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|local_ports = \[ "https" \]|local_ports = [ "https" ]; colour = "red"|' "$C"
expect_error "unknown key in a permit" 'colour' "colour"

cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|local_ports = \[ "https" \]|local_ports = [ "htps" ]|' "$C"
expect_error "unknown service name" '"htps"' "htps"

cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|^copy_bytes = 256;|copy_bytes = = 256;|' "$C"
expect_error "a syntax error names the file and line" 'copy_bytes' "syntax error"

cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|^queues = "0";|queues = "0"; queus = "1";|' "$C"
expect_error "unknown top-level setting" 'queus' "queus"

cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|"tracker", "header_filter" \]|"header_filter", "tracker" ]|' "$C"
expect_error "tracker after header_filter is refused" 'chain = [' "tracker.*before"

# Several mistakes at once: every one reported.
cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i -e 's|"198.19.66.0/24"|"198.19.66.300/24"|' -e 's|local_ports = \[ "https" \]|local_ports = [ "htps" ]|' "$C"
n=$("$ELSD" -n -c "$C" 2>&1 | grep -c "^$C:[0-9]*: ")
check_ge "two mistakes give two messages" 2 "$n"

msg=$("$ELSD" -n -c "$WORK/missing.conf" 2>&1); rc=$?
check_eq "a missing file exits 1" 1 "$rc"
check "a missing file is named" grep -q "missing.conf" <<<"$msg"
check "--help documents --replay" sh -c "'$ELSD' --help | grep -q -- --replay"
"$ELSD" --bogus >/dev/null 2>&1; check_eq "an unknown option exits 2" 2 $?
# Service-bound permits need CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE to see other users' socket
# owners (docs/els-policy.md, "Privileges"): -n warns, naming the permit's line, when elsd would
# lack them, whether this process lacks them or the `user` drop would shed them.
cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|local_ports = \[ "https" \]|local_ports = [ "https" ]; exe = "/usr/sbin/nginx"|' "$C"
line=$(grep -n -m1 -F 'exe = "/usr/sbin/nginx"' "$C" | cut -d: -f1)
nocaps() { capsh --drop=cap_dac_read_search,cap_sys_ptrace -- -c "$(printf '%q ' "$@")"; }
msg=$("$ELSD" -n -c "$C" 2>&1)
if capsh --has-p=cap_dac_read_search && capsh --has-p=cap_sys_ptrace; then
	check_eq "with both capabilities (root): no warning about owners" 0 "$(grep -c "will lack" <<<"$msg")"
else
	log "not checked: this root lacks CAP_DAC_READ_SEARCH or CAP_SYS_PTRACE (a confined container)"
fi
msg=$(nocaps "$ELSD" -n -c "$C" 2>&1); rc=$?
check_eq "without them the config is still valid" 0 "$rc"
check "... with a warning at the permit's line naming it, its binding and both capabilities" \
	grep -qE "^$C:$line: warning: permit 'https-in' is bound to exe=/usr/sbin/nginx, but elsd will lack CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE" <<<"$msg"
check "... saying what happens and where the drop-in is" \
	grep -q "fail policy (reason owner_unknown); grant both with the systemd drop-in in docs/els-policy.md" <<<"$msg"
check "... counted in the OK line" grep -q "OK: .*, 1 warning$" <<<"$msg"
nocaps "$ELSD" -n --strict -c "$C" >/dev/null 2>&1
check_eq "... and --strict refuses it" 1 "$?"
sed -i 's|^# user = "elsd";|user = "nobody";|' "$C"
msg=$("$ELSD" -n -c "$C" 2>&1)
check "as root with user = \"nobody\": warned too (the drop keeps CAP_NET_ADMIN alone)" \
	grep -q "^$C:$line: warning: .*user setting drops elsd" <<<"$msg"
cp "$ELS_SOURCE_DIR/conf/elsd.conf" "$C"
sed -i 's|local_ports = \[ "https" \]|local_ports = [ "https" ]; user = "nobody"|' "$C"
msg=$(nocaps "$ELSD" -n -c "$C" 2>&1)
check_eq "a permit bound by user alone needs no /proc: no warning" 0 "$(grep -c "will lack" <<<"$msg")"

els_finish
