#!/usr/bin/env bash
# els-log (the local monitor file) and elsctl log (the same file through a real elsd over real
# TLS) share one query module (issue 17, deliverable 3): for the same flags they print the same
# rows, in the same order, as the same NDJSON and the same table; CIDR matching works for IPv4
# and IPv6 in any spelling; bad values are errors naming the value in both; `top` agrees; and
# --follow on both shows the drops that real traffic causes while they run.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
ELSCTL=${ELSCTL:-$ELS_BUILD_DIR/elsctl}
ELSLOG=${ELSLOG:-$ELS_BUILD_DIR/els-log}
PKI=$ELS_SOURCE_DIR/pki/els-pki
[[ -x $ELSCTL && -x $ELSLOG ]] || { echo "elsctl or els-log not built in $ELS_BUILD_DIR"; exit 1; }
# shellcheck disable=SC2034 # lib.sh reads DB and ELSD_LOG
rmdir "$WORK" && WORK=$(mktemp -d /tmp/els-query.XXXXXX) && DB=$WORK/monitor.db &&
	ELSD_LOG=$WORK/elsd.log || exit 1
els_setup
els_steer

CA=$WORK/ca AG=$WORK/agent
mkdir -p "$AG"
{
	$PKI init "$CA" && $PKI agent "$CA" web1 --host web1.test --ip "$SRV4" &&
		$PKI console "$CA" bob --role auditor
} >/dev/null || { echo "PKI setup failed"; exit 1; }
cp "$CA/ca.crt" "$CA/crl.pem" "$AG/"
cp "$CA/agents/web1.crt" "$AG/agent.crt"
install -m 0600 "$CA/agents/web1.key" "$AG/agent.key"
CONF=$AG/elsd.conf
MGMT='    { id = "mgmt-in"; dir = "in"; proto = "tcp"; local_ports = [ 7443 ]; },'
ALT='    { id = "alt-in"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },'
els_config "$CONF" "s|^    { id = \"https-in\";|$MGMT\n$ALT\n&|"
cat >>"$CONF" <<EOF
management = { listen = "$SRV4:7443"; ca = "ca.crt"; cert = "agent.crt"; key = "agent.key";
               crl = "crl.pem"; };
EOF
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || exit 1
for _ in $(seq 50); do in_srv ss -ltnH 'sport = :7443' | grep -q . && break; sleep 0.1; done
export ELSCTL_CA=$CA/ca.crt ELSCTL_CERT=$CA/consoles/bob.crt ELSCTL_KEY=$CA/consoles/bob.key
export ELSCTL_AGENT=$SRV4:7443
ctl() { in_cli "$ELSCTL" --timeout 5 "$@"; }

# Traffic: admitted flows on 8080 over IPv4 and IPv6, drops to 9999 from two IPv4 sources
# and one IPv6 source.
in_cli ip addr add 198.18.0.99/24 dev eth0
check "8080 over IPv4" in_cli nc -z -w 2 "$SRV4" 8080
check "8080 over IPv6" in_cli nc -z -w 2 "$SRV6" 8080
check_not "9999 over IPv4 is dropped" in_cli nc -z -w 1 "$SRV4" 9999
check_not "9999 from .99 is dropped" in_cli nc -z -w 1 -s 198.18.0.99 "$SRV4" 9999
check_not "9999 over IPv6 is dropped" in_cli nc -z -w 1 "$SRV6" 9999
wait_records "kind = 'drop' AND dport = 9999 AND family = 6" || fail "no IPv6 drop recorded"
wait_records "kind = 'drop' AND src = '198.18.0.99'" || fail "no drop from .99 recorded"
sleep 1.5
# Everything compared below lies before T: elsctl's own requests are audit events after it.
T=@$(date +%s)
sleep 1.2

# same "description" FLAGS...: both tools' NDJSON are identical (and the rows counted)
same() {
	local d=$1 a b
	shift
	# stdout only: elsctl notes "more records match" on stderr
	a=$("$ELSLOG" --json --until "$T" "$@" "$DB")
	b=$(ctl log --json --until "$T" --limit 10000 "$@")
	if [[ -n $a && $a == "$b" ]]; then pass "$d ($(wc -l <<<"$a") rows)"; else
		fail "$d: els-log and elsctl log differ"
		diff <(echo "$a") <(echo "$b") | head -n 10 | sed 's/^/#   /'
	fi
	ROWS=$a
}
rows_where() { sql "SELECT count(*) FROM records WHERE ts_ns < ${T#@}000000000 AND ($1)"; }

same "every record"
check_eq "... as many as the file holds" "$(rows_where 1)" "$(wc -l <<<"$ROWS")"
same "--kind drop,admit" --kind drop,admit
check_eq "... every drop and admit" "$(rows_where "kind IN ('drop','admit')")" "$(wc -l <<<"$ROWS")"
same "--kind drop --kind admit (repeated)" --kind drop --kind admit
same "--addr 198.18.0.0/24 (CIDR)" --addr 198.18.0.0/24
same "--addr 198.18.0.99 (one address)" --addr 198.18.0.99
check_eq "... only the records of .99" "$(rows_where "src = '198.18.0.99' OR dst = '198.18.0.99'")" \
	"$(wc -l <<<"$ROWS")"
same "--addr 2001:db8:1::/48 (IPv6 CIDR)" --addr 2001:db8:1::/48
check_eq "... every record of 2001:db8:1::/48" \
	"$(rows_where "src LIKE '2001:db8:1:%' OR dst LIKE '2001:db8:1:%'")" "$(wc -l <<<"$ROWS")"
same "--addr 2001:0DB8:0001:0:0:0:0:0001 (non-canonical IPv6)" --addr 2001:0DB8:0001:0:0:0:0:0001
check_eq "... matches the canonical stored address" \
	"$(rows_where "src = '$CLI6' OR dst = '$CLI6'")" "$(wc -l <<<"$ROWS")"
same "--port 9999,8080" --port 9999,8080
same "--reason no_permit --handler header_filter" --reason no_permit --handler header_filter
same "--kind drop --verdict drop --addr 198.18.0.0/16,2001:db8::/32" --kind drop --verdict drop \
	--addr 198.18.0.0/16,2001:db8::/32
same "--since 1h" --since 1h
same "--limit 3 (the newest three, oldest first)" --limit 3 2>/dev/null
check_eq "... three rows" 3 "$(wc -l <<<"$ROWS")"
check_eq "... the newest three, oldest first" \
	"$(sql "SELECT seq FROM (SELECT seq FROM records WHERE ts_ns < ${T#@}000000000 ORDER BY seq DESC LIMIT 3) ORDER BY seq" | tr '\n' ' ')" \
	"$(python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["seq"]) for l in sys.stdin) + " ")' <<<"$ROWS")"
check "every row has every column, null when empty" python3 -c '
import json, sys
cols = ["seq","ts_ns","time","kind","verdict","dir","family","proto","src","sport","dst","dport",
        "icmp_type","icmp_code","tcp_flags","handler","reason","rule","rule_name","generation",
        "count","pkts_init","pkts_resp","bytes_init","bytes_resp","duration_ns","detail"]
rows = [json.loads(l) for l in sys.stdin]
sys.exit(0 if rows and all(list(r) == cols for r in rows) else 1)' <<<"$ROWS"
a=$("$ELSLOG" --until "$T" --kind drop "$DB")
b=$(ctl log --until "$T" --kind drop --limit 10000)
check_eq "the text tables are the same too" "$a" "$b"

# One letter, one meaning (docs/cli.md, "Short options"): -l is the count and -j JSON in both
# tools; --last still works; -n (a dry run everywhere) and els-log's old -a (elsctl's --agent)
# are usage errors that name the new spelling, never a silent other meaning.
check_eq "els-log -l 3 -j is --limit 3 --json" "$("$ELSLOG" --limit 3 --json --until "$T" "$DB")" \
	"$("$ELSLOG" -l 3 -j --until "$T" "$DB")"
check_eq "els-log --last 3 (the old name) is --limit 3" "$("$ELSLOG" --limit 3 --until "$T" "$DB")" \
	"$("$ELSLOG" --last 3 --until "$T" "$DB")"
check_eq "elsctl log -l 3 -j is els-log -l 3 -j" "$("$ELSLOG" -l 3 -j --until "$T" "$DB")" \
	"$(ctl log -l 3 -j --until "$T" 2>/dev/null)"
for tool in els-log "elsctl log"; do
	if [[ $tool == els-log ]]; then run=("$ELSLOG" -n 3 "$DB"); else run=(ctl log -n 3); fi
	out=$("${run[@]}" 2>&1)
	check_eq "$tool -n 3: exit 2" 2 $?
	check "$tool -n 3: names -l and --limit" grep -q -- "-n is a dry run in every tool; the count is -l 3 (--limit)" <<<"$out"
done
out=$(ctl flows -n 3 2>&1)
check_eq "elsctl flows -n 3: exit 2" 2 $?
check "elsctl flows -n 3: names -l" grep -q -- "the count is -l 3" <<<"$out"
check_eq "elsctl flows -l 3 is accepted (exit 0)" 0 "$(ctl flows -l 3 >/dev/null 2>&1; echo $?)"
out=$("$ELSLOG" -a 198.18.0.0/24 "$DB" 2>&1)
check_eq "els-log -a CIDR: exit 2" 2 $?
check "els-log -a CIDR: names --addr" grep -q -- "-a is --agent in elsctl; the address filter is --addr 198.18.0.0/24" <<<"$out"

# Bad values: an error naming the value, exit 2, from both; never an empty result.
for bad in "--addr foo" "--addr 198.18.0.1/24" "--reason nosuch" "--handler nosuch" \
	"--kind drop,nosuch" "--since yesterday" "--port 70000" "--verdict maybe"; do
	# shellcheck disable=SC2086 # the flag and its value
	out=$("$ELSLOG" $bad "$DB" 2>&1)
	rc=$?
	check_eq "els-log $bad exits 2" 2 "$rc"
	# the message names the option and the bad value: "--kind 'nosuch': ..."
	flag=${bad%% *} value=${bad#* } value=${value##*,}
	check_eq "... naming the value" 1 "$(grep -c -- "$flag '$value'" <<<"$out")"
	# shellcheck disable=SC2086
	out=$(ctl log $bad 2>&1)
	rc=$?
	check_eq "elsctl log $bad exits 2" 2 "$rc"
	check_eq "... with the same message" 1 "$(grep -c -- "$flag '$value'" <<<"$out")"
done
out=$("$ELSLOG" --handler nosuch "$DB" 2>&1)
check "the handler error lists the known handlers" grep -q "one of iplist, tracker, header_filter" <<<"$out"

# top: the same summary from both, and it is right.
a=$("$ELSLOG" top --by port --kind drop --until "$T" --json "$DB")
b=$(ctl log top --by port --kind drop --until "$T" --json)
check_eq "top --by port: els-log and elsctl agree" "$a" "$b"
check_eq "... port 9999 with every packet counted" \
	"$(sql "SELECT sum(count) || ' ' || count(*) FROM records WHERE kind = 'drop' AND dport = 9999 AND ts_ns < ${T#@}000000000")" \
	"$(python3 -c 'import json,sys; print(*[str(d["packets"]) + " " + str(d["records"]) for d in map(json.loads, sys.stdin) if d["value"] == 9999])' <<<"$a")"
log "els-log top --by port --kind drop:"
"$ELSLOG" top --by port --kind drop --until "$T" "$DB" | sed 's/^/#   /'
a=$("$ELSLOG" top --by src --until "$T" --kind drop "$DB")
b=$(ctl log top --by src --until "$T" --kind drop)
check_eq "top --by src, text: the same table" "$a" "$b"
check "... naming .99" grep -q '^198.18.0.99 ' <<<"$a"
for by in reason permit; do
	check_eq "top --by $by agrees" "$("$ELSLOG" top --by $by --until "$T" --json "$DB")" \
		"$(ctl log top --by $by --until "$T" --json)"
done

# --follow on both: new drops to 7777 appear in each while it runs.
"$ELSLOG" --follow --json --kind drop --port 7777 "$DB" >"$WORK/follow-log.json" 2>&1 &
FL=$!
BG_PIDS+=("$FL")
in_cli "$ELSCTL" --timeout 5 log --follow --json --kind drop --port 7777 \
	>"$WORK/follow-ctl.json" 2>&1 &
FC=$!
BG_PIDS+=("$FC")
sleep 1
check_not "7777 is dropped (1)" in_cli nc -z -w 1 "$SRV4" 7777
check_not "7777 is dropped (2)" in_cli nc -z -w 1 "$SRV6" 7777
wait_records "kind = 'drop' AND dport = 7777 AND family = 6" || fail "no drop on 7777 recorded"
want=$(sql "SELECT group_concat(seq, ' ') FROM (SELECT seq FROM records WHERE kind = 'drop' AND dport = 7777 ORDER BY seq)")
seqs() { python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["seq"]) for l in open(sys.argv[1]) if l.strip()))' "$1" 2>/dev/null; }
for _ in $(seq 60); do
	[[ $(seqs "$WORK/follow-log.json") == "$want" && $(seqs "$WORK/follow-ctl.json") == "$want" ]] && break
	sleep 0.1
done
check_eq "els-log --follow printed the new drops" "$want" "$(seqs "$WORK/follow-log.json")"
check_eq "elsctl log --follow printed the same" "$want" "$(seqs "$WORK/follow-ctl.json")"
check "... both still running" kill -0 "$FL" "$FC"
log "els-log --follow --kind drop --port 7777 (NDJSON, as printed):"
sed 's/^/#   /' "$WORK/follow-log.json"
kill "$FL" "$FC" 2>/dev/null
wait "$FL" "$FC" 2>/dev/null
check "elsd still answers" ctl status
check "and still filters: 8080 passes" in_cli nc -z -w 2 "$SRV4" 8080

els_stop || fail "elsd exited non-zero"
els_finish
