#!/usr/bin/env bash
# Variations on the attacks of t_mgmt_boundary.sh, tried the way an attacker who read that test
# would: agent settings spelt another way (case, nested in a handler section, @include behind
# whitespace, settings added since the boundary was drawn); list.add entries that carry a
# newline, a '#' or a NUL to change the list file's meaning; policy.get read for the host's
# secrets; a rollback to a planted previous document; a checker child killed mid-way and a
# burst of concurrent checks; list.add fed thousands of entries at a time. Each is refused or
# harmless, and elsd keeps answering `status` and filtering packets throughout.
. "$(dirname "$0")/lib.sh"
els_setup
. "$(dirname "$0")/mgmt_lib.sh"
PD="$WORK/policy.d"
mgmt_pki alice:admin bob:auditor
mgmt_install_tls
# doc_bytes USER CMD FILE: sends FILE's bytes unchanged as the document (mgmt_client.py reads
# text mode, which would turn a lone CR into a newline); prints the answer, or "closed".
doc_bytes() {
	in_srv python3 - "$ADDR" "$TLS/ca.crt" "$CA/consoles/$1.crt" "$CA/consoles/$1.key" "$2" "$3" <<'PY'
import json, socket, ssl, struct, sys
addr, ca, cert, key, cmd, doc = sys.argv[1:]
host, port = addr.rsplit(":", 1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.load_verify_locations(ca); ctx.load_cert_chain(cert, key)
s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=20), server_hostname=host)
text = open(doc, "rb").read().decode("latin-1")
body = json.dumps({"v": 1, "id": 1, "cmd": cmd, "args": {"text": text}}).encode()
s.sendall(struct.pack(">I", len(body)) + body)
def exact(n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c: raise EOFError
        buf += c
    return buf
try:
    n, = struct.unpack(">I", exact(4))
    print(exact(n).decode())
except Exception:
    print('{"ok": false, "closed": true}')
PY
}

mkdir -p "$PD"
printf '198.51.100.10\n' >"$PD/deny.txt"
printf 'SECRET-MARKER-4242\n' >"$WORK/target.txt"

CONF="$WORK/elsd.conf"
els_config "$CONF" 's|deny_files = \[ \];|deny_files = [ "policy.d/deny.txt" ];|'
cat >>"$CONF" <<EOF
management = {
  listen = "$ADDR";
  ca = "tls/ca.crt"; cert = "tls/agent.crt"; key = "tls/agent.key"; crl = "tls/crl.pem";
  user = "nobody";
  timeout_s = 30;
  sweep_command = [ "$WORK/sweep-secret-path.sh" ];
};
EOF
conf_sum=$(sha256sum "$CONF")
els_steer
els_start "$CONF" || exit 1
for _ in $(seq 50); do in_srv ss -ltnH 'sport = :7443' | grep -q . && break; sleep 0.1; done

probe=0
alive() {
	local what=$1 r
	r=$(as bob status)
	check_eq "elsd answers status ($what)" True "$(jget "$r" 'r["ok"]' 2>/dev/null)"
	check "a permitted ping passes ($what)" in_cli ping -c1 -W2 "$SRV4"
	probe=$((probe + 1))
	in_cli nc -z -w 1 "$SRV4" $((2300 + probe)) && fail "port $((2300 + probe)) open ($what)"
	wait_records "kind='drop' AND dport=$((2300 + probe))" &&
		pass "a forbidden port is still dropped and recorded ($what)" ||
		fail "no drop record for port $((2300 + probe)) ($what)"
}
gen() { jget "$(as bob status)" 'r["result"]["generation"]'; }
alive "at start"
gen0=$(gen)

log "1. agent settings in disguise"
els_policy_doc "$WORK/base.doc"
disguise() { # disguise LABEL TEXT: TEXT appended to a valid policy never applies
	local label=$1 text=$2 r
	cp "$WORK/base.doc" "$WORK/attack.doc"
	printf '%s\n' "$text" >>"$WORK/attack.doc"
	r=$(as alice policy.apply --text "$WORK/attack.doc")
	check_eq "$label: refused" invalid_policy "$(jget "$r" 'r["error"]["code"]' 2>/dev/null)"
	LAST=$r
}
disguise "MANAGEMENT in capitals" 'MANAGEMENT = { ca = "/tmp/evil.pem"; };'
check "... as an unknown setting, named" grep -q "unknown setting 'MANAGEMENT'" <<<"$(errs "$LAST")"
disguise "Sweep_command at the top" 'Sweep_command = [ "/bin/sh" ];'
disguise "sweep_command at the top" 'sweep_command = [ "/bin/sh" ];'
check "... named as an agent setting" grep -q "'sweep_command' is an agent setting" <<<"$(errs "$LAST")"
sed 's|^iplist = {|iplist = {\n  management = { ca = "/tmp/evil.pem"; };|' "$WORK/base.doc" >"$WORK/attack.doc"
r=$(as alice policy.apply --text "$WORK/attack.doc")
check_eq "management nested in the iplist section: refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
check "... as unknown in iplist" grep -q "unknown setting 'management' in iplist" <<<"$(errs "$r")"
sed 's|^tracker = {|tracker = {\n  sweep_command = [ "/bin/sh" ];|' "$WORK/base.doc" >"$WORK/attack.doc"
r=$(as alice policy.apply --text "$WORK/attack.doc")
check_eq "sweep_command nested in the tracker section: refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
disguise "a handler section named 'management' in the chain" 'chain = [ "management" ];'
disguise "rules (the ruleset self-heal)" 'rules = { self_heal = false; };'
check "... named as an agent setting" grep -q "'rules' is an agent setting" <<<"$(errs "$LAST")"
disguise "events (files elsd writes)" "events = { file = { path = \"$WORK/evil.json\"; }; };"
check "... named as an agent setting" grep -q "'events' is an agent setting" <<<"$(errs "$LAST")"
disguise "metrics (a listener)" 'metrics = { listen = "0.0.0.0:9100"; };'
check "... named as an agent setting" grep -q "'metrics' is an agent setting" <<<"$(errs "$LAST")"
for ws in ' ' '\t' '\t \t' '\r'; do
	printf "${ws}@include \"%s\"\n" "$WORK/target.txt" | cat - "$WORK/base.doc" >"$WORK/attack.doc"
	r=$(doc_bytes bob policy.validate "$WORK/attack.doc")
	check "@include behind '$ws' is refused as a directive" grep -q "^1: directives such as @include" <<<"$(errs "$r")"
	check_not "... and nothing of the file comes back" grep -q SECRET-MARKER <<<"$r"
done
# A Cyrillic 'е' in the name: not a libconfig name at all.
disguise "a look-alike name (Cyrillic е)" 'managеment = { ca = "/tmp/evil.pem"; };'
# A NUL in the document: text after it must not escape the check.
{ cat "$WORK/base.doc"; printf '\0management = { ca = "/tmp/evil.pem"; };\n'; } >"$WORK/attack.doc"
r=$(doc_bytes alice policy.apply "$WORK/attack.doc")
check_eq "a document with a NUL before an agent setting is refused" False "$(jget "$r" 'r["ok"]')"
check "... as a bad request, alerted" grep -qE 'alert: event=mgmt_refused detail="mgmt alice/admin@127.0.0.1 \?: bad_request"' "$ELSD_LOG"
check_eq "the generation is unchanged after the disguises" "$gen0" "$(gen)"
check_not "no managed policy was written" test -e "$PD/policy.conf"
check "the host's config file is untouched" test "$(sha256sum "$CONF")" = "$conf_sum"
alive "after the disguises"

log "2. list.add entries that try to change the list file's meaning"
deny_sum=$(sha256sum <"$PD/deny.txt")
r=$(as alice list.add '{"list":"deny","entries":["198.51.100.1\n0.0.0.0/0","198.51.100.2 # x","198.51.100.3#","0.0.0.0/0 198.51.100.4"," 198.51.100.5\n::/0"]}')
check_eq "entries with a newline, '#' or a space are each invalid" "invalid invalid invalid invalid invalid" \
	"$(jget "$r" '" ".join(x["status"] for x in r["result"]["results"])')"
check_eq "... nothing changed" False "$(jget "$r" 'r["result"]["changed"]')"
check_eq "... the list file is byte for byte the same" "$deny_sum" "$(sha256sum <"$PD/deny.txt")"
r=$(as alice list.add '{"list":"deny","entries":["198.51.100.1\u0000\n0.0.0.0/0"]}')
check_eq "an entry with a NUL is refused" False "$(jget "$r" 'r["ok"] and r["result"]["changed"]')"
check_eq "... the list file is the same" "$deny_sum" "$(sha256sum <"$PD/deny.txt")"
r=$(as alice list.add '{"list":"deny","entries":["198.51.100.0/255"]}')
check_eq "an out-of-range prefix is invalid" invalid "$(jget "$r" 'r["result"]["results"][0]["status"]')"
r=$(as alice list.add '{"list":"deny","entries":["198.51.100.66"]}')
check_eq "a plain entry is added" added "$(jget "$r" 'r["result"]["results"][0]["status"]')"
check_eq "... as one canonical line" "198.51.100.10 198.51.100.66/32" "$(xargs <"$PD/deny.txt")"
check_not "0.0.0.0/0 never reached the file" grep -q '0\.0\.0\.0' "$PD/deny.txt"
r=$(as bob list.add '{"list":"deny","entries":["198.51.100.67"]}')
check_eq "an auditor may not add" forbidden "$(jget "$r" 'r["error"]["code"]')"
check_not "... and did not" grep -q '198\.51\.100\.67' "$PD/deny.txt"
alive "after the list entries"
gen0=$(gen)

log "3. policy.get for the host's secrets"
r=$(as bob policy.get)
check_eq "an auditor reads the policy" True "$(jget "$r" 'r["ok"]')"
text=$(jget "$r" 'r["result"]["text"]')
check_not "... which holds no management section" grep -qE 'management|agent\.key|sweep' <<<"$text"
check_not "... nor the sweep command's path" grep -q 'sweep-secret-path' <<<"$r"
check_not "... nor the monitor's path" grep -q "$DB" <<<"$text"
check "... the host's list file comes as its name inside the policy directory" \
	grep -q '"deny.txt"' <<<"$text"

log "4. a rollback to a planted previous document"
# Only the host's root can write there; a file left by an older elsd (or by hand) must still
# pass the checker like any console document.
cp "$WORK/base.doc" "$PD/policy.conf.prev"
printf 'management = { ca = "/tmp/evil.pem"; };\n' >>"$PD/policy.conf.prev"
r=$(as alice policy.rollback)
check_eq "rollback to a document with an agent setting is refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
check "... naming it" grep -q "'management' is an agent setting" <<<"$(errs "$r")"
check_eq "... the generation is unchanged" "$gen0" "$(gen)"
check_not "... no managed policy was written" test -e "$PD/policy.conf"
rm -f "$PD/policy.conf.prev"
r=$(as alice policy.rollback)
check_eq "with no previous document, rollback says so" not_found "$(jget "$r" 'r["error"]["code"]')"

log "5. the checker killed mid-way, and a burst of checks"
python3 -c "
import sys
sys.stdout.write(open(sys.argv[1]).read() + 'scan = {' + ''.join('a%d=1;' % i for i in range(90000)) + '};\n')" \
	"$WORK/base.doc" >"$WORK/slow.doc"
out="$WORK/slow.out"
(as alice policy.apply --text "$WORK/slow.doc" >"$out") &
slow=$!
checker=
for _ in $(seq 50); do
	checker=$(pgrep -P "$ELSD_PID" -f -- '--check-policy-fd' | head -1)
	[[ -n $checker ]] && break
	sleep 0.1
done
check "the checker child runs" test -n "$checker"
kill -KILL "$checker" 2>/dev/null
t0=$(date +%s%N)
wait "$slow"
ms=$((($(date +%s%N) - t0) / 1000000))
r=$(cat "$out")
check_eq "the apply whose checker was killed is refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
check "... saying the checker was killed ($ms ms)" grep -q "the policy checker was killed by signal 9" <<<"$r"
check_eq "... nothing was applied" "$gen0" "$(gen)"
check_eq "... no temporary file is left" "" "$(find "$PD" -name '.*tmp-*')"
r=$(as bob policy.validate --text "$WORK/base.doc")
check_eq "the next check runs (not stuck busy)" True "$(jget "$r" 'r["result"]["valid"]')"
# Four auditors at once (per_source_preauth is 4: a fifth handshake from the same address
# may be evicted, which is the pre-auth limit at work, not the checker), each with the slow
# document: one check runs, the rest are busy.
burst=()
for i in $(seq 4); do
	(as bob policy.validate --text "$WORK/slow.doc" >"$WORK/burst.$i") &
	burst+=($!)
done
sleep 1
t0=$(date +%s%N)
r=$(as bob status)
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "status answers during the burst" True "$(jget "$r" 'r["ok"]')"
check "... at once ($ms ms < 2000)" test "$ms" -lt 2000
wait "${burst[@]}"
busy=0 refused=0
for i in $(seq 4); do
	c=$(jget "$(cat "$WORK/burst.$i")" 'r["error"]["code"]' 2>/dev/null)
	[[ $c == busy ]] && busy=$((busy + 1))
	[[ $c == invalid_policy ]] && refused=$((refused + 1))
done
check_eq "every burst request got an answer (busy or refused)" 4 $((busy + refused))
check_ge "... most of them busy" 2 "$busy"
check_eq "no checker child is left" "" "$(pgrep -P "$ELSD_PID" -f -- '--check-policy-fd')"
alive "after the killed checker and the burst"

log "6. list.add with thousands of entries at a time"
python3 -c '
import json
for k in range(12):
    print(json.dumps({"list": "deny", "entries": ["10.%d.%d.%d" % (k, i >> 8, i & 255) for i in range(4096)]}))
' >"$WORK/big.args"
worst=0
while read -r args; do
	t0=$(date +%s%N)
	r=$(as alice list.add "$args")
	ms=$((($(date +%s%N) - t0) / 1000000))
	((ms > worst)) && worst=$ms
	[[ $(jget "$r" 'r["result"]["changed"]') == True ]] || fail "a 4096-entry list.add failed: ${r:0:300}"
done <"$WORK/big.args"
check_eq "the list holds every entry" $((12 * 4096 + 2)) "$(grep -c . "$PD/deny.txt")"
check "the slowest 4096-entry list.add took $worst ms (< 5000)" test "$worst" -lt 5000
# Deleting all of the first batch again: every entry looked up in a 49 000-line file.
args=$(head -1 "$WORK/big.args")
t0=$(date +%s%N)
r=$(as alice list.del "$args")
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "list.del of 4096 entries removes them" 4096 "$(jget "$r" 'sum(x["status"] == "removed" for x in r["result"]["results"])')"
check "... in $ms ms (< 5000)" test "$ms" -lt 5000
r=$(as alice list.add '{"list":"deny","entries":["10.99.0.1","10.99.0.1","10.99.0.1"]}')
check_eq "the same entry three times in one request is added once" "added duplicate duplicate" \
	"$(jget "$r" '" ".join(x["status"] for x in r["result"]["results"])')"
python3 -c 'import json; print(json.dumps({"list": "deny", "entries": ["10.200.%d.%d" % (i >> 8, i & 255) for i in range(4097)]}))' >"$WORK/over.args"
r=$(as alice list.add "$(cat "$WORK/over.args")")
check_eq "4097 entries in one request are refused" False "$(jget "$r" 'r["ok"]')"
check_not "... and none was written" grep -q '^10\.200\.' "$PD/deny.txt"
in_cli nc -z -w 1 "$SRV4" 22 && fail "port 22 open after the list growth"
alive "after the list growth"

log "7. one list file named many times, then list.add against a list of a million lines"
# Accepted while the file is small, a policy naming it 200 times would make every later
# list.add (which rebuilds the policy on the main thread, with no checker) read it 200 times.
names=$(python3 -c 'print(", ".join(["\"deny.txt\""] * 200))')
els_policy_doc "$WORK/attack.doc" "s|deny_files = \[ \];|deny_files = [ $names ];|"
gen1=$(gen)
r=$(as alice policy.apply --text "$WORK/attack.doc")
check_eq "deny_files naming deny.txt 200 times is refused" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
check "... saying it is named a second time" grep -q 'names \\"deny.txt\\" a second time' <<<"$r"
check_eq "... the generation is unchanged" "$gen1" "$(gen)"
els_policy_doc "$WORK/attack.doc" 's|deny_files = \[ \];|deny_files = [ "deny.txt" ];|; s|allow_files = \[ \];|allow_files = [ "deny.txt" ];|'
r=$(as bob policy.validate --text "$WORK/attack.doc")
check_eq "the same file as a deny and an allow list is refused too" invalid_policy "$(jget "$r" 'r["error"]["code"]')"
# What ~250 list.add calls of 4096 entries would grow, written at once: list.add compared
# every request entry with every line, 4096 x 1M string compares on elsd's main thread (a
# 2-million-line list kept it 20 s: status timed out, close to WatchdogSec=30s).
python3 -c 'import sys; sys.stdout.write("".join("10.%d.%d.%d\n" % (100 + a, b, c) for a in range(16) for b in range(256) for c in range(256)))' \
	>>"$PD/deny.txt"
python3 -c 'import json; print(json.dumps({"list": "deny", "entries": ["172.16.%d.%d" % (i >> 8, i & 255) for i in range(4096)]}))' >"$WORK/m.args"
t0=$(date +%s%N)
(as alice list.add "$(cat "$WORK/m.args")" >"$WORK/m.out") &
madd=$!
sleep 0.3
slowest=0
for _ in 1 2 3 4; do
	s0=$(date +%s%N)
	r=$(as bob status)
	ms=$((($(date +%s%N) - s0) / 1000000))
	((ms > slowest)) && slowest=$ms
	[[ $(jget "$r" 'r["ok"]' 2>/dev/null) == True ]] || slowest=99999
done
wait "$madd"
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "a 4096-entry list.add to a 1-million-line list succeeds" True "$(jget "$(cat "$WORK/m.out")" 'r["result"]["changed"]' 2>/dev/null)"
check "... in $ms ms (< 8000)" test "$ms" -lt 8000
check "status was answered meanwhile, the slowest in $slowest ms (< 5000)" test "$slowest" -lt 5000
alive "after the million-line list"

check "the refusals are alerted" grep -qE 'alert: event=policy_rejected .*outcome=invalid_policy' "$ELSD_LOG"
els_stop
check_eq "SIGTERM still stops elsd cleanly" 0 "$?"
els_finish
