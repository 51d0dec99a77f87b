#!/usr/bin/env bash
# The management channel end to end, over real mutual TLS on the server namespace's loopback,
# with certificates from pki/els-pki: an admin applies a policy that opens a port for real
# traffic, an auditor reads but is refused changes, a bad policy is answered with every error
# and changes nothing, rollback restores, deny-list edits give per-entry feedback and block
# real traffic, every request is in the monitor with the certificate's identity, and the
# endpoint process runs as the configured user without capabilities.
. "$(dirname "$0")/lib.sh"
els_setup
. "$(dirname "$0")/mgmt_lib.sh"
mgmt_pki alice:admin bob:auditor poller:auditor
mgmt_install_tls

CONF="$WORK/elsd.conf"
mkdir -p "$WORK/policy.d" && : >"$WORK/policy.d/deny.txt"
els_config "$CONF" 's|deny_files = \[ \];|deny_files = [ "policy.d/deny.txt" ];|'
cat >>"$CONF" <<EOF
management = {
  listen = "$ADDR";
  ca = "tls/ca.crt"; cert = "tls/agent.crt"; key = "tls/agent.key"; crl = "tls/crl.pem";
  user = "nobody";
  max_clients = 8;
  timeout_s = 5;
};
EOF
cp "$CONF" "$WORK/orig.conf"
els_steer
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || exit 1
tcp8080() { in_cli timeout 3 bash -c "exec 3<>/dev/tcp/$SRV4/8080 && head -c5 <&3" 2>/dev/null | grep -q hello; }

check_not "port 8080 is closed by the initial policy" tcp8080

# The endpoint process: the main process's only child.
MPID=$(pgrep -P "$ELSD_PID" | head -n1)
if [[ -n $MPID ]]; then
	st=/proc/$MPID/status
	check_eq "endpoint runs as nobody" "$(id -u nobody)" "$(awk '/^Uid:/ {print $3}' "$st")"
	check_eq "endpoint has no effective capabilities" 0000000000000000 "$(awk '/^CapEff:/ {print $2}' "$st")"
	check_eq "endpoint has no permitted capabilities" 0000000000000000 "$(awk '/^CapPrm:/ {print $2}' "$st")"
	check_eq "endpoint has an empty bounding set" 0000000000000000 "$(awk '/^CapBnd:/ {print $2}' "$st")"
	check_eq "endpoint has no_new_privs" 1 "$(awk '/^NoNewPrivs:/ {print $2}' "$st")"
	check_eq "endpoint keeps no descriptor of the main process" \
		"$(ls /proc/"$MPID"/fd | wc -l)" "$((3 + 2))" # stdio, socketpair, listen socket
else
	fail "no management endpoint process found"
fi

r=$(as bob status)
check_eq "auditor reads status" "True" "$(jget "$r" 'r["ok"]')"
check_eq "status names the client's identity and role" "bob/auditor" \
	"$(jget "$r" 'r["result"]["client"]["identity"]+"/"+r["result"]["client"]["role"]' 2>/dev/null)"
gen0=$(jget "$r" 'r["result"]["generation"]')
check_eq "status reports the running policy hash" "$(sha256sum "$CONF" | cut -d' ' -f1)" \
	"$(jget "$r" 'r["result"]["policy_sha256"]')"

# A console sends only the policy (chain and handler sections); its list files are names in
# the policy directory.
els_policy_doc "$WORK/open8080.conf" 's|deny_files = \[ \];|deny_files = [ "deny.txt" ];|' \
	's|{ id = "https-in";|{ id = "web-8080"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },\n    &|'
r=$(as bob policy.get)
python3 -c 'import json,sys; sys.stdout.write(json.loads(sys.argv[1])["result"]["text"])' "$r" >"$WORK/local-policy.txt"
check "policy.get, before any apply, shows the local policy without agent settings" \
	bash -c "grep -q 'chain' '$WORK/local-policy.txt' && ! grep -qE 'management|monitor|policy_dir' '$WORK/local-policy.txt'"
r=$(as bob policy.apply --text "$WORK/open8080.conf")
check_eq "auditor is refused policy.apply" "forbidden" "$(jget "$r" 'r["error"]["code"]')"
check_not "the refused apply changed nothing" tcp8080

r=$(as alice policy.apply --text "$WORK/open8080.conf")
check_eq "admin applies a policy" "True" "$(jget "$r" 'r["ok"]')"
gen1=$(jget "$r" 'r["result"]["generation"]')
check_eq "the apply made a new generation" "$((gen0 + 1))" "$gen1"
check "the applied policy opens port 8080 to real traffic" tcp8080
check "the applied policy is persisted in the policy directory" cmp -s "$WORK/policy.d/policy.conf" "$WORK/open8080.conf"
check "the host's config file is untouched" cmp -s "$CONF" "$WORK/orig.conf"
check "the previous (local) policy is kept for rollback" cmp -s "$WORK/policy.d/policy.conf.prev" "$WORK/local-policy.txt"
check "the apply is alerted as policy_changed, with who did it" \
	grep -qE "alert: event=policy_changed generation=$gen1 by=\"alice\" peer=[^ ]+ cmd=policy.apply outcome=ok" "$ELSD_LOG"
check "the auditor's refused apply is alerted as mgmt_refused" \
	grep -qE "alert: event=mgmt_refused detail=\"mgmt bob/auditor@[^ ]+ policy.apply: forbidden\"" "$ELSD_LOG"

sed 's|tcp_syn = 30;|tcp_syn = "lots";|' "$WORK/open8080.conf" >"$WORK/bad.conf"
printf 'bogus_setting = 1;\n' >>"$WORK/bad.conf"
r=$(as alice policy.apply --text "$WORK/bad.conf")
check_eq "an invalid policy is refused" "invalid_policy" "$(jget "$r" 'r["error"]["code"]')"
nerr=$(jget "$r" 'len([d for d in r["error"]["details"] if d["file"]=="<policy>" and d["line"]])')
check_ge "every error is listed with its line" 2 "$nerr"
r=$(as bob policy.validate --text "$WORK/bad.conf")
check_eq "policy.validate reports the same errors" "$nerr" \
	"$(jget "$r" 'len([d for d in r["error"]["details"] if d["line"]])')"
r=$(as bob status)
check_eq "the running generation is unchanged after the refused apply" "$gen1" \
	"$(jget "$r" 'r["result"]["generation"]')"
check "port 8080 still open after the refused apply" tcp8080
check "the managed policy is unchanged after the refused apply" cmp -s "$WORK/policy.d/policy.conf" "$WORK/open8080.conf"

r=$(as alice policy.rollback)
check_eq "rollback succeeds" "True" "$(jget "$r" 'r["ok"]')"
check_not "rollback closes port 8080 again" tcp8080
check "rollback restores the previous policy" cmp -s "$WORK/policy.d/policy.conf" "$WORK/local-policy.txt"

check "the client pings the server before the deny-list change" in_cli ping -c1 -W2 $SRV4
r=$(as alice list.add "{\"list\":\"deny\",\"entries\":[\"$CLI4\",\"10.1.2.3/8\",\"$CLI4/32\"]}")
check_eq "list.add gives per-entry feedback" "added invalid duplicate" \
	"$(jget "$r" '" ".join(e["status"] for e in r["result"]["results"])')"
check_not "the deny-listed client is blocked" in_cli ping -c1 -W2 $SRV4
check "the managed list file holds the entry" grep -qx "$CLI4/32" "$WORK/policy.d/deny.txt"
r=$(as bob list.get '{"list":"deny"}')
check_eq "list.get shows the managed entries" "['$CLI4/32']" "$(jget "$r" 'r["result"]["entries"]')"
r=$(as bob stats)
check_ge "stats count iplist drops" 1 \
	"$(jget "$r" '[h["dropped"] for h in r["result"]["handlers"] if h["name"]=="iplist"][0]')"
r=$(as alice list.del "{\"list\":\"deny\",\"entries\":[\"$CLI4\",\"198.51.100.9\"]}")
check_eq "list.del gives per-entry feedback" "removed not_found" \
	"$(jget "$r" '" ".join(e["status"] for e in r["result"]["results"])')"
check "the client reaches the server again" in_cli ping -c1 -W2 $SRV4
r=$(as alice list.add '{"list":"allow","entries":["192.0.2.1"]}')
check_eq "a list with no managed file is not_configured" "not_configured" "$(jget "$r" 'r["error"]["code"]')"

els_listen "$SRV" 443 || fail "listener on 443 did not start"
bg_in "$CLI" bash -c "exec 3<>/dev/tcp/$SRV4/443; sleep 20"
sleep 0.5
r=$(as bob flows '{"limit":50}')
check_ge "flows lists live flows" 1 "$(jget "$r" 'r["result"]["total"]')"
check_eq "flows shows the held connection" "True" \
	"$(jget "$r" 'any(f["src"]=="'$CLI4'" and f["dport"]==443 and f["state"]=="established" for f in r["result"]["flows"])')"

r=$(as bob log '{"kind":"event","limit":200}')
check_ge "log returns the management events" 5 \
	"$(jget "$r" 'len([x for x in r["result"]["rows"] if x["detail"].startswith("mgmt ")])')"
r=$(as bob log '{"kind":"drop","addr":"'$CLI4'","limit":5}')
check_ge "log filters drops by address" 1 "$(jget "$r" 'len(r["result"]["rows"])')"

# Health polls do not bury the audit: a monitoring system's 20 status polls (and its stats)
# are recorded once in the window; its refusals and an admin's changes each time.
before_add=$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt alice/admin@% list.add: ok%'")
ok=0
for i in $(seq 20); do
	r=$(as poller status)
	[ "$(jget "$r" 'r["ok"]')" = True ] && ok=$((ok + 1))
done
check_eq "20 status polls are all answered" 20 "$ok"
r=$(as poller stats)
check_eq "a stats poll is answered" True "$(jget "$r" 'r["ok"]')"
for i in 1 2 3; do
	r=$(as poller policy.apply --text "$WORK/open8080.conf")
	check_eq "the poller is refused policy.apply ($i)" "forbidden" "$(jget "$r" 'r["error"]["code"]')"
done
for i in 1 2; do
	r=$(as alice list.add "{\"list\":\"deny\",\"entries\":[\"198.19.77.$i\"]}")
	check_eq "the admin's list.add $i is applied" "added" "$(jget "$r" '" ".join(e["status"] for e in r["result"]["results"])')"
done
r=$(as poller status)
check_eq "the agent still answers the poller" True "$(jget "$r" 'r["ok"]')"

els_stop
polls=$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt poller/auditor@% status: ok%'")
check_ge "21 status polls wrote at least one audit row" 1 "$polls"
check_ge "... and at most two (the window is 10 minutes): $polls" "$polls" 2
check_eq "the poller's stats in the same window wrote none" 0 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt poller/auditor@% stats:%'")"
check_eq "each of the poller's 3 refusals wrote its row" 3 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt poller/auditor@% policy.apply: forbidden%'")"
check_eq "each of the admin's 2 list.add wrote its row" 2 \
	"$(( $(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt alice/admin@% list.add: ok%'") - before_add ))"
check_ge "accepted requests are recorded with the identity" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND handler='mgmt' AND detail LIKE 'mgmt alice/admin@127.0.0.1 policy.apply: ok%'")"
check_ge "refused requests are recorded with the identity" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt bob/auditor@127.0.0.1 policy.apply: forbidden%'")"
check_ge "invalid policies are recorded" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind='event' AND detail LIKE 'mgmt alice/admin@% policy.apply: invalid_policy%'")"
els_finish
