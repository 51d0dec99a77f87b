#!/usr/bin/env bash
# The management trust boundary, tried as a console with valid certificates would: an admin
# tries to change agent settings (management, sweep_command, monitor path, user, queues) and
# to reach files outside the policy directory; an auditor tries to read /etc/shadow, devices,
# a FIFO and a secret through policy.validate; oversized and pathological documents try to
# stall the daemon. Each is refused with a clear reason, the harm is checked not to have
# happened, and elsd keeps answering `status` and filtering packets throughout. Last, a sweep
# child reports what it inherited: no capability, no blocked signal, no systemd variable, no
# descriptor but 0-2.
. "$(dirname "$0")/lib.sh"
els_setup
. "$(dirname "$0")/mgmt_lib.sh"
PD="$WORK/policy.d"
mgmt_pki alice:admin bob:auditor
mgmt_install_tls

# The files an attacker is after, outside the policy directory, and traps inside it.
mkdir -p "$PD"
: >"$PD/deny.txt"
printf 'SECRET-MARKER-4242 line one\nSECRET-MARKER-4242 line two\n' >"$WORK/target.txt"
chmod 600 "$WORK/target.txt"
target_sum=$(sha256sum "$WORK/target.txt")
ln -s "$WORK/target.txt" "$PD/escape.txt"
mkfifo "$PD/fifo"
mknod "$PD/zero" c 1 5
mknod "$PD/urandom" c 1 9
printf 'SECRET-MARKER-4242\n-----BEGIN PRIVATE KEY-----\n' >"$PD/secret.txt"
# A temporary file an interrupted apply could have left: removed when elsd starts.
echo stale >"$PD/.policy.conf.tmp-AbC123"

# The sweep child reports what it has, then stays a moment so that its descriptors can be
# looked at from outside (a listing from inside would show the lister's own).
cat >"$WORK/report.sh" <<EOF
#!/bin/sh
cat /proc/self/status >"$WORK/child.status"
env >"$WORK/child.env"
exec sleep 5
EOF
chmod 755 "$WORK/report.sh"

CONF="$WORK/elsd.conf"
els_config "$CONF" 's|deny_files = \[ \];|deny_files = [ "policy.d/deny.txt" ];|'
cat >>"$CONF" <<EOF
management = {
  listen = "$ADDR";
  ca = "tls/ca.crt"; cert = "tls/agent.crt"; key = "tls/agent.key"; crl = "tls/crl.pem";
  user = "nobody";
  timeout_s = 15;
  sweep_command = [ "$WORK/report.sh" ];
};
EOF
conf_sum=$(sha256sum "$CONF")
els_steer
# What a console should never be able to hand the sweep or the checker.
NOTIFY_SOCKET=@els-test-notify-$$ WATCHDOG_USEC=600000000 ELS_TEST_SECRET=leak \
	els_start "$CONF" || exit 1
for _ in $(seq 50); do in_srv ss -ltnH 'sport = :7443' | grep -q . && break; sleep 0.1; done

check_not "a stale temporary file in the policy directory is removed at start" \
	test -e "$PD/.policy.conf.tmp-AbC123"

gen0=$(jget "$(as bob status)" 'r["result"]["generation"]')
# alive: elsd answers status and still filters (ping permitted, port 22 dropped).
probe=0
alive() {
	local what=$1 r
	r=$(as bob status)
	check_eq "elsd answers status ($what)" True "$(jget "$r" 'r["ok"]' 2>/dev/null)"
	check "a permitted ping passes ($what)" in_cli ping -c1 -W2 "$SRV4"
	probe=$((probe + 1))
	in_cli nc -z -w 1 "$SRV4" $((2200 + probe)) && fail "port $((2200 + probe)) open ($what)"
	wait_records "kind='drop' AND dport=$((2200 + probe))" &&
		pass "a forbidden port is still dropped and recorded ($what)" ||
		fail "no drop record for port $((2200 + probe)) ($what)"
}
no_policy_change() {
	check_eq "the generation is unchanged ($1)" "$gen0" \
		"$(jget "$(as bob status)" 'r["result"]["generation"]')"
	check_not "no managed policy was written ($1)" test -e "$PD/policy.conf"
	check "the host's config file is untouched ($1)" test "$(sha256sum "$CONF")" = "$conf_sum"
	check_eq "no temporary file is left in the policy directory ($1)" "" \
		"$(find "$PD" -name '.*tmp-*')"
}
alive "at start"

log "1. an admin tries to change agent settings"
els_policy_doc "$WORK/base.doc"
try_setting() { # try_setting NAME TEXT: TEXT appended to a valid policy is refused by name
	local name=$1 text=$2 r line
	cp "$WORK/base.doc" "$WORK/attack.doc"
	printf '%s\n' "$text" >>"$WORK/attack.doc"
	line=$(($(wc -l <"$WORK/base.doc") + 1))
	r=$(as alice policy.apply --text "$WORK/attack.doc")
	check_eq "policy.apply with $name is refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
	check "... naming '$name' and its line $line" \
		grep -qE "^$line: '$name' is an agent setting" <<<"$(errs "$r")"
}
try_setting management "management = { listen = \"0.0.0.0:7443\"; ca = \"/tmp/evil-ca.pem\"; };"
try_setting monitor "monitor = { path = \"$WORK/evil.db\"; };"
try_setting user 'user = "root";'
try_setting queues 'queues = "0-7";'
try_setting fail_open 'fail_open = true;'
cp "$WORK/base.doc" "$WORK/attack.doc"
printf 'management = {\n  sweep_command = [ "/bin/sh", "-c", "id > %s/pwned" ];\n};\n' "$WORK" >>"$WORK/attack.doc"
r=$(as alice policy.apply --text "$WORK/attack.doc")
check "a sweep_command in a policy is refused, named with its line" \
	grep -qE "^$(($(wc -l <"$WORK/base.doc") + 2)): 'management.sweep_command' is an agent setting" \
	<<<"$(errs "$r")"
r=$(as bob policy.validate --text "$WORK/attack.doc")
check_eq "policy.validate refuses it the same way" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
printf '@include "%s"\n' "$WORK/target.txt" | cat - "$WORK/base.doc" >"$WORK/attack.doc"
r=$(as bob policy.validate --text "$WORK/attack.doc")
check "@include is refused at its line" grep -q "^1: directives such as @include are refused" <<<"$(errs "$r")"
check_not "... and nothing of the included file comes back" grep -q SECRET-MARKER <<<"$r"
no_policy_change "agent settings"
alive "after the agent-setting attempts"

log "2. list files outside the policy directory"
for name in ../target.txt "$WORK/target.txt" /etc/shadow escape.txt sub/../../target.txt .hidden; do
	els_policy_doc "$WORK/attack.doc" "s|deny_files = \[ \];|deny_files = [ \"$name\" ];|"
	r=$(as alice policy.apply --text "$WORK/attack.doc")
	check_eq "deny_files = [\"$name\"] is refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
	check_not "... and no content of it comes back" grep -qE "SECRET-MARKER|root:" <<<"$r"
done
check "the symlink is refused as a symlink" grep -q "symbolic link" <<<"$(jget "$(
	els_policy_doc "$WORK/attack.doc" 's|deny_files = \[ \];|deny_files = [ "escape.txt" ];|'
	as alice policy.apply --text "$WORK/attack.doc")" 'r["error"]["details"]')"
r=$(as alice list.add '{"list":"deny","entries":["198.51.100.77"]}')
check_eq "list.add afterwards edits the managed list inside the policy directory" True "$(jget "$r" 'r["ok"]')"
check_eq "... which is policy.d/deny.txt" "$PD/deny.txt" "$(jget "$r" 'r["result"]["file"]')"
check "the file outside the policy directory is untouched" test "$(sha256sum "$WORK/target.txt")" = "$target_sum"
# (Other tests on this machine may add users meanwhile: look for what the attack would add.)
check_not "/etc/shadow did not get the entry" grep -q '198\.51\.100\.77' /etc/shadow
check "the symlink still points where it did, its target unchanged" \
	test "$(readlink "$PD/escape.txt")" = "$WORK/target.txt"
gen0=$(jget "$(as bob status)" 'r["result"]["generation"]') # the list.add made one
no_policy_change "list files"
alive "after the list-file attempts"

log "3. an auditor tries to read files and to stall the daemon through policy.validate"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$ELSD_PID/status"; }
rss0=$(rss)
for name in /etc/shadow /dev/zero /dev/urandom zero urandom fifo secret.txt ../target.txt; do
	els_policy_doc "$WORK/attack.doc" "s|deny_files = \[ \];|deny_files = [ \"$name\" ];|"
	t0=$(date +%s%N)
	r=$(as bob policy.validate --text "$WORK/attack.doc")
	ms=$((($(date +%s%N) - t0) / 1000000))
	check_eq "validate with list file $name is refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
	check "... with a reason, in $ms ms (< 5000)" test "$ms" -lt 5000
	check_not "... and no file content is echoed" grep -qE "SECRET-MARKER|BEGIN PRIVATE|root:" <<<"$r"
done
check "a device is refused as not a regular file" grep -q "not a regular file" <<<"$(
	els_policy_doc "$WORK/attack.doc" 's|deny_files = \[ \];|deny_files = [ "zero" ];|'
	as bob policy.validate --text "$WORK/attack.doc")"
check "bad lines of a readable file are reported by number only" grep -qE \
	'"line": 1, "message": "bad entry: ' <<<"$(
	els_policy_doc "$WORK/attack.doc" 's|deny_files = \[ \];|deny_files = [ "secret.txt" ];|'
	as bob policy.validate --text "$WORK/attack.doc")"
rss1=$(rss)
check "elsd's memory stayed bounded (RSS $rss0 -> $rss1 kB)" test "$rss1" -lt $((rss0 + 65536))
alive "after the file-reading attempts"

log "4. oversized and pathological documents"
python3 -c "import sys; sys.stdout.write('#' + 'x' * (12 << 20) + '\n')" >"$WORK/huge.doc"
t0=$(date +%s%N)
r=$(as bob policy.validate --text "$WORK/huge.doc")
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "a 12 MB one-comment-line document is refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
check "... by the size cap" grep -q "more than the 1048576 a policy may have" <<<"$r"
check "... fast ($ms ms < 5000)" test "$ms" -lt 5000
# Just under the cap: one group with ~90000 members, quadratic in libconfig (tens of seconds).
python3 -c "
import sys
sys.stdout.write(open(sys.argv[1]).read() + 'scan = {' + ''.join('a%d=1;' % i for i in range(90000)) + '};\n')" \
	"$WORK/base.doc" >"$WORK/slow.doc"
check "the pathological document is under the cap" test "$(stat -c %s "$WORK/slow.doc")" -lt 1048576
out="$WORK/slow.out"
(as alice policy.apply --text "$WORK/slow.doc" >"$out") &
slow=$!
sleep 1
t0=$(date +%s%N)
r=$(as bob status)
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "status answers while the document is being checked" True "$(jget "$r" 'r["ok"]')"
check "... at once ($ms ms < 2000)" test "$ms" -lt 2000
r=$(as bob policy.validate --text "$WORK/base.doc")
check_eq "a second check meanwhile is answered busy" busy "$(jget "$r" 'r["error"]["code"]')"
t0=$(date +%s%N)
wait "$slow"
r=$(cat "$out")
check_eq "the pathological apply is refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
check "... by the wall-clock cap of the checker" grep -q "took longer than 5000 ms and was stopped" <<<"$r"
check "elsd itself is still running" kill -0 "$ELSD_PID"
check_eq "no checker child is left" "" "$(pgrep -f -- '--check-policy-fd' | while read -r p; do
	[[ $(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null) == "$ELSD_PID" ]] && echo "$p"; done)"
no_policy_change "oversized documents"
alive "after the oversized documents"
check "the refusals are alerted" grep -qE 'alert: event=policy_rejected .*cmd=policy.apply outcome=invalid_policy' "$ELSD_LOG"
check "an auditor's refused validate is alerted too" \
	grep -qE 'alert: event=policy_rejected generation=[0-9]+ by="bob" peer=127.0.0.1 cmd=policy.validate outcome=invalid_policy' "$ELSD_LOG"

log "5. a valid apply still works, and leaves no temporary file"
els_policy_doc "$WORK/good.doc" 's|deny_files = \[ \];|deny_files = [ "deny.txt" ];|'
r=$(as alice policy.apply --text "$WORK/good.doc")
check_eq "a policy within the boundary is applied" True "$(jget "$r" 'r["ok"]')"
check "it is the managed policy now" cmp -s "$PD/policy.conf" "$WORK/good.doc"
check_eq "no temporary file is left" "" "$(find "$PD" -name '.*tmp-*')"
alive "after the valid apply"

log "6. a child reports what it has"
r=$(as alice sweep)
check_eq "the admin starts the sweep" True "$(jget "$r" 'r["ok"]')"
spid=$(jget "$r" 'r["result"]["pid"]')
wait_until test -s "$WORK/child.env" || fail "the sweep child wrote nothing"
sleep 0.3
st="$WORK/child.status"
for f in CapInh CapPrm CapEff CapBnd CapAmb; do
	check_eq "the sweep child's $f is empty" 0000000000000000 "$(awk "/^$f:/ {print \$2}" "$st")"
done
check_eq "the sweep child blocks no signal" 0000000000000000 "$(awk '/^SigBlk:/ {print $2}' "$st")"
check_eq "the sweep child ignores no signal" 0000000000000000 "$(awk '/^SigIgn:/ {print $2}' "$st")"
check_eq "the sweep child has no_new_privs" 1 "$(awk '/^NoNewPrivs:/ {print $2}' "$st")"
check_not "no NOTIFY_SOCKET in its environment" grep -q '^NOTIFY_SOCKET=' "$WORK/child.env"
check_not "no WATCHDOG_USEC in its environment" grep -q '^WATCHDOG_USEC=' "$WORK/child.env"
check_not "nothing else of elsd's environment" grep -q '^ELS_TEST_SECRET=' "$WORK/child.env"
check_eq "the sweep child holds only descriptors 0, 1 and 2" "0 1 2" \
	"$(ls /proc/"$spid"/fd 2>/dev/null | sort -n | xargs)"
check_eq "... none of them a socket" "" \
	"$(for f in /proc/"$spid"/fd/*; do readlink "$f"; done | grep 'socket:')"
check_not "the sweep ran the host's command, never the one a console sent" test -e "$WORK/pwned"
check_not "no monitor file appeared where a console pointed" test -e "$WORK/evil.db"

els_stop
check_eq "SIGTERM still stops elsd cleanly" 0 "$?"
check_ge "the refused applies are in the monitor with the identity" 5 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt alice/admin@% policy.apply: invalid_policy%'")"
els_finish
