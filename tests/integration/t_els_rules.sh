#!/usr/bin/env bash
# els-rules install/status/remove inside a test namespace: the steering follows the config
# (queue number or range, --queue-bypass only with fail_open, loopback and the management port
# accepted first, jumps at position 1), install is idempotent, the host's own rules survive,
# and remove leaves the namespace's ruleset exactly as it was. Traffic checks show what the
# rules mean with no elsd attached: fail-closed blocks, fail-open passes, loopback and the
# management port always pass.
. "$(dirname "$0")/lib.sh"
RULES=$ELS_SOURCE_DIR/packaging/els-rules
els_setup
export ELSD ELS_RULES_LOCK=$WORK/rules.lock
rules() { in_srv "$RULES" "$@"; }
# The whole ruleset, counters and comments of iptables-save aside.
snapshot() {
	{
		in_srv nft list ruleset 2>/dev/null
		for t in iptables ip6tables iptables-legacy ip6tables-legacy; do
			command -v "$t-save" >/dev/null && in_srv "$t-save" 2>/dev/null
		done
	} | sed -E -e '/^#/d' -e 's/\[[0-9]+:[0-9]+\]//' -e 's/counter packets [0-9]+ bytes [0-9]+/counter/'
}
chain() { in_srv "$1" -S "$2" 2>/dev/null; }

# The host's own rules, in iptables (both families) and in an nftables table of its own.
in_srv iptables -A INPUT -p tcp --dport 9999 -j DROP
in_srv ip6tables -A OUTPUT -p udp --dport 9999 -j DROP
in_srv nft add table inet host
in_srv nft add chain inet host c '{ type filter hook input priority 10; policy accept; }'
in_srv nft add rule inet host c tcp dport 9998 counter
BEFORE=$(snapshot)

els_config "$WORK/closed.conf"
els_config "$WORK/open.conf" 's/^fail_open = false;/fail_open = true;/' 's/^queues = "0";/queues = "2-5";/'

# --- fail-closed, one queue
check "install (fail_open = false, queues 0)" rules -c "$WORK/closed.conf" install
check "status says installed" rules status
for ipt in iptables ip6tables; do
	check "$ipt: INPUT jumps to ELSD-IN first" \
		test "$(chain $ipt INPUT | sed -n 2p)" == "-A INPUT -j ELSD-IN"
	check "$ipt: OUTPUT jumps to ELSD-OUT first" \
		test "$(chain $ipt OUTPUT | sed -n 2p)" == "-A OUTPUT -j ELSD-OUT"
	check "$ipt: loopback accepted before anything is queued" \
		grep -q -- '-i lo .*-j ACCEPT' <<<"$(chain $ipt ELSD-IN | sed -n 2p)"
	check_eq "$ipt: queue 0 without --queue-bypass, in and out" \
		"-j NFQUEUE --queue-num 0|-j NFQUEUE --queue-num 0" \
		"$(chain $ipt ELSD-IN | grep -o -- '-j NFQUEUE.*')|$(chain $ipt ELSD-OUT | grep -o -- '-j NFQUEUE.*')"
done
check "the host's iptables rule survives" in_srv iptables -C INPUT -p tcp --dport 9999 -j DROP
check "the host's nft table survives" in_srv nft list table inet host
AFTER1=$(snapshot)
check "install again" rules -c "$WORK/closed.conf" install
check_eq "install is idempotent" "$AFTER1" "$(snapshot)"
# A rule someone put in front of the jump: a reinstall moves the jump back to first place.
in_srv iptables -I INPUT 1 -p tcp --dport 9997 -j ACCEPT
check "install after a rule was put in front" rules -c "$WORK/closed.conf" install
check "the jump is first again" test "$(chain iptables INPUT | sed -n 2p)" == "-A INPUT -j ELSD-IN"
check_eq "and there is one jump" 1 "$(chain iptables INPUT | grep -c -- '-j ELSD-IN')"
in_srv iptables -D INPUT -p tcp --dport 9997 -j ACCEPT

# What fail-closed means with no elsd on the queue: nothing but loopback passes.
els_listen "$SRV" 8080
check_not "fail-closed, no elsd: TCP to the server is blocked" \
	in_cli timeout 2 nc -z -w 1 "$SRV4" 8080
check "fail-closed, no elsd: loopback still works" in_srv timeout 2 nc -z -w 1 127.0.0.1 8080

# --- fail-open, a queue range: replaces the rules above
check "install (fail_open = true, queues 2-5)" rules -c "$WORK/open.conf" install
for ipt in iptables ip6tables; do
	check "$ipt: --queue-balance 2:5 --queue-bypass, in and out" test "$(chain $ipt ELSD-IN |
		grep -c -- '-j NFQUEUE --queue-balance 2:5 --queue-bypass')$(chain $ipt ELSD-OUT |
		grep -c -- '-j NFQUEUE --queue-balance 2:5 --queue-bypass')" == 11
	check_eq "$ipt: the queue-0 rule is gone" 1 "$(chain $ipt ELSD-IN | grep -c NFQUEUE)"
done
check "fail-open, no elsd: TCP to the server passes" in_cli timeout 3 nc -z -w 2 "$SRV4" 8080
check "fail-open, no elsd: TCP over IPv6 passes" in_cli timeout 3 nc -z -w 2 "$SRV6" 8080

# --- remove
check "remove" rules remove
check_eq "status after remove: not installed (exit 3)" 3 "$(rules status >/dev/null; echo $?)"
check_eq "the ruleset is exactly as before" "$BEFORE" "$(snapshot)"
check "remove with nothing installed" rules remove
check_eq "still as before" "$BEFORE" "$(snapshot)"

# --- a broken config: without last good settings it installs nothing; with them, it
# installs those and still fails, saying so at error priority with the config's reason
els_config "$WORK/bad.conf" 's/^queues = "0";/queues = "zero";/'
check "install kept the last good settings" test -s "$ELS_RULES_STATE/last-good"
mv "$ELS_RULES_STATE/last-good" "$WORK/last-good.saved"
check_not "install refuses an invalid config" rules -c "$WORK/bad.conf" install
check_eq "and touches nothing" "$BEFORE" "$(snapshot)"
out=$(in_srv env JOURNAL_STREAM=8:1 "$RULES" -c "$WORK/bad.conf" install 2>&1)
check "the failure is logged at error priority (<3>) with the file:line reason" \
	grep -q -E "^<3>els-rules: $WORK/bad.conf is not valid: $WORK/bad.conf:[0-9]+: 'queues'" <<<"$out"
check "and what was checked: no rules installed" \
	grep -q -E "^<3>els-rules: .*nothing installed; no steering rules installed \(checked" <<<"$out"
mv "$WORK/last-good.saved" "$ELS_RULES_STATE/last-good"
out=$(rules -c "$WORK/bad.conf" install 2>&1)
check_eq "with last good settings: install still fails" 1 "$?"
check "and says it installed the last valid config's rules, checked" grep -q \
	"is not valid: installed the rules of the last valid config .*steering rules present and first (checked" <<<"$out"
check "the last valid config's rules: queues 2-5 with bypass (open.conf)" \
	test "$(chain iptables ELSD-IN | grep -c -- '--queue-balance 2:5 --queue-bypass')" == 1
check "remove" rules remove
check_eq "as before" "$BEFORE" "$(snapshot)"

# --- offload = true: offloaded connections are accepted ahead of the queue
els_config "$WORK/offload.conf" 's|^queues = "0";|offload = true;\nqueues = "0";|'
check "install (offload = true)" rules -c "$WORK/offload.conf" install
for ipt in iptables ip6tables; do
	# The verdict's packet-mark bit is saved into the connection and cleared from the
	# packet, then the connection's mark is accepted: all just before the queue.
	check_eq "$ipt: the offload mark is saved, then accepted just before the queue, in and out" \
		"save clear connmark NFQUEUE save clear connmark NFQUEUE" \
		"$({ chain $ipt ELSD-IN; chain $ipt ELSD-OUT; } |
			grep -oE 'CONNMARK (--set-xmark|xset) 0x40000000/0x40000000|MARK (--set-xmark|and) 0x0/0x40000000|MARK and 0xbfffffff|connmark --mark 0x40000000/0x40000000|NFQUEUE' |
			sed -e 's/^CONNMARK.*/save/' -e 's/^MARK.*/clear/' -e 's/^connmark.*/connmark/' | tr '\n' ' ' | sed 's/ $//')"
done
check "nft: the same as meta mark and ct mark, in both chains" \
	bash -c "out=\$(ip netns exec $SRV $RULES -c $WORK/offload.conf -b nft -n install) &&
		[ \$(grep -c 'meta mark & 0x40000000 == 0x40000000 meta mark set meta mark & 0xbfffffff ct mark set ct mark | 0x40000000 accept' <<<\"\$out\") = 2 ] &&
		[ \$(grep -c 'ct mark & 0x40000000 == 0x40000000 accept' <<<\"\$out\") = 2 ]"
check "install's summary mentions it" bash -c "ip netns exec $SRV $RULES -c $WORK/offload.conf install 2>&1 | grep -q 'offloaded connections accepted'"
check "remove" rules remove
check_eq "as before" "$BEFORE" "$(snapshot)"

# --- the management port (elsd stands in as a stub: only els-rules' handling is under test)
cat >"$WORK/stub-elsd" <<'EOF'
#!/bin/sh
case $4 in queues) echo 0 ;; fail_open) echo false ;; management.listen) echo "$STUB_LISTEN" ;; esac
EOF
chmod +x "$WORK/stub-elsd"
stub_install() { in_srv env STUB_LISTEN="$1" ELSD="$WORK/stub-elsd" "$RULES" -c x install >/dev/null 2>&1; }
stub_install "$SRV4:7443"
check "management $SRV4:7443 accepted on INPUT (IPv4 only)" \
	in_srv iptables -C ELSD-IN -d "$SRV4/32" -p tcp --dport 7443 -m comment --comment "elsd: management" -j ACCEPT
check "and its replies on OUTPUT" \
	in_srv iptables -C ELSD-OUT -s "$SRV4/32" -p tcp --sport 7443 -m comment --comment "elsd: management" -j ACCEPT
check_eq "no IPv6 rule for an IPv4 management address" 0 "$(chain ip6tables ELSD-IN | grep -c 7443)"
els_listen "$SRV" 7443
check "fail-closed, no elsd: the management port still answers" in_cli timeout 3 nc -z -w 2 "$SRV4" 7443
check_not "fail-closed, no elsd: other ports stay blocked" in_cli timeout 2 nc -z -w 1 "$SRV4" 8080
stub_install "[::]:7443"
check_eq "management [::]:7443 accepted for both families, any address" "1 1" \
	"$(chain iptables ELSD-IN | grep -c -- '^-A ELSD-IN -p tcp -m tcp --dport 7443') $(chain ip6tables ELSD-IN | grep -c -- '^-A ELSD-IN -p tcp -m tcp --dport 7443')"
stub_install "[2001:db8:1::2]:7443"
check_eq "management [2001:db8:1::2]:7443: IPv6 only" "0 1" \
	"$(chain iptables ELSD-IN | grep -c 7443) $(chain ip6tables ELSD-IN | grep -c -- '-d 2001:db8:1::2/128 -p tcp -m tcp --dport 7443')"
stub_install "nonsense"
check_eq "a management.listen without a port is refused (rules unchanged)" 1 \
	"$(chain ip6tables ELSD-IN | grep -c 7443)"

# --- ExecStopPost: after a crash, fail-closed keeps the rules
check "reinstall fail-closed" rules -c "$WORK/closed.conf" install
in_srv env SERVICE_RESULT=signal "$RULES" -c "$WORK/closed.conf" --keep-if-failed remove >/dev/null 2>&1
check "--keep-if-failed after a crash (fail_open = false): rules kept" rules status
in_srv env SERVICE_RESULT=success "$RULES" -c "$WORK/closed.conf" --keep-if-failed remove >/dev/null 2>&1
check_not "--keep-if-failed after a clean stop: rules removed" rules status
rules -c "$WORK/open.conf" install >/dev/null 2>&1
in_srv env SERVICE_RESULT=signal "$RULES" -c "$WORK/open.conf" --keep-if-failed remove >/dev/null 2>&1
check_not "--keep-if-failed after a crash (fail_open = true): rules removed" rules status
check_eq "ruleset as before after all that" "$BEFORE" "$(snapshot)"

# --- nftables: used when the kernel's queue expression works, else iptables is chosen
if in_srv nft -f - >/dev/null 2>&1 <<<$'add table inet p\nadd chain inet p c\nadd rule inet p c queue num 0\ndelete table inet p'; then
	log "nft queue works here: testing the nft backend"
	check "install (nft)" rules -c "$WORK/open.conf" -b nft install
	check "table inet elsd with the range and bypass" grep -q -E \
		'queue (flags bypass to 2-5|num 2-5 bypass)' <<<"$(in_srv nft list table inet elsd)"
	check "remove (nft)" rules remove
	check_eq "ruleset as before (nft)" "$BEFORE" "$(snapshot)"
else
	log "this kernel has no nft queue expression: auto must pick iptables"
	check "auto picks iptables" grep -q '^# backend iptables' \
		<<<"$(rules -c "$WORK/closed.conf" -n install)"
	check_not "an explicit nft backend is refused" rules -c "$WORK/closed.conf" -b nft install
	check_eq "the probe leaves nothing behind" "$BEFORE" "$(snapshot)"
fi
# verify on the nft backend, whatever this kernel has: a stub nft prints a listing of table
# inet elsd as nft 1.0 prints it; verify must accept it as written and name each alteration.
mkdir -p "$WORK/stub"
cat >"$WORK/stub/nft" <<EOF
#!/bin/sh
[ "\$*" = "list table inet elsd" ] && exec cat "$WORK/listing"
exit 1
EOF
chmod +x "$WORK/stub/nft"
listing() {
	printf 'table inet elsd {\n\tchain input {\n\t\ttype filter hook input priority %s; policy accept;\n\t\tiif "lo" accept comment "elsd: loopback"\n%s\t\tqueue %s comment "elsd: queues"\n\t}\n\tchain output {\n\t\ttype filter hook output priority filter - 1; policy accept;\n\t\toif "lo" accept comment "elsd: loopback"\n\t\tqueue to 0 comment "elsd: queues"\n\t}\n}\n' \
		"$1" "$2" "$3" >"$WORK/listing"
}
nft_verify() { in_srv env PATH="$WORK/stub:$PATH" "$RULES" verify 2>&1; }
listing "filter - 1" "" "to 0"
out=$(nft_verify)
check_eq "nft verify: present and first (exit 0)" 0 "$?"
check "nft verify: says what it checked, without bypass" grep -q \
	"present and first (checked: nft table inet elsd: chains input/output at priority filter - 1; queue rules without bypass" <<<"$out"
listing "filter - 1" "" "flags bypass to 0-3"
check "nft verify: bypass seen" grep -q "queue rules with bypass" <<<"$(nft_verify)"
listing "filter - 1" $'\t\ttcp dport 22 accept\n' "to 0"
out=$(nft_verify)
check_eq "nft verify: a foreign rule ahead of the queue (exit 1)" 1 "$?"
check "nft verify: names it" grep -q "nft: a rule els-rules did not write in chain input: 'tcp dport 22 accept'" <<<"$out"
listing "filter + 10" "" "to 0"
check "nft verify: a chain moved to another priority is named" grep -q \
	"nft: chain input is not a filter chain on hook input at priority filter - 1" <<<"$(nft_verify)"
listing "filter - 1" "" "to 0"
sed -i '/chain output/,/^\t}/d' "$WORK/listing"
check "nft verify: a missing chain is named" grep -q "nft: chain output missing" <<<"$(nft_verify)"

# Either way, the nft rules as generated: loopback first, then management, then the queues.
out=$(rules -c "$WORK/open.conf" -b nft -n install)
check "nft dry run: queue range with bypass" grep -q 'queue num 2-5 bypass' <<<"$out"
check "nft dry run: loopback accepted before the queue" \
	grep -q 'iif "lo" accept' <<<"$(grep -E 'iif "lo"|queue num' <<<"$out" | head -n1)"
check "nft dry run: atomic replacement of table inet elsd" grep -q '^delete table inet elsd' <<<"$out"
out=$(rules -c "$WORK/closed.conf" -b nft -n install)
check_not "nft dry run, fail-closed: no bypass" grep -q bypass <<<"$out"
els_finish
