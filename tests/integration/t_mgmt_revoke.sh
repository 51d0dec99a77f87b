#!/usr/bin/env bash
# Sessions follow revocation and expiry. An admin holds an open, authenticated connection;
# its certificate is revoked: once the CRL is reloaded (SIGHUP), and in a second round once the
# CRL file is only replaced (no SIGHUP), the agent closes the session on its own, records why
# with the identity, and the list.add the admin then sends on it never applies. A certificate
# that expires mid-session has its session closed at notAfter. Meanwhile elsd keeps filtering
# and other consoles keep getting answers.
. "$(dirname "$0")/lib.sh"
els_setup
. "$(dirname "$0")/mgmt_lib.sh"
mgmt_pki alice:admin carol:admin bob:auditor
mgmt_install_tls

# A console certificate of the real CA that expires EXPIRES_IN seconds from now.
EXPIRES_IN=8
mgmt_console_dated shortlived "$(date -u -d '-1 minute' +%Y%m%d%H%M%SZ)" \
	"$(date -u -d "+$EXPIRES_IN seconds" +%Y%m%d%H%M%SZ)" ||
	fail "could not create the short-lived certificate"
SHORT_MADE=$(date +%s)

CONF="$WORK/elsd.conf"
mkdir -p "$WORK/policy.d" && : >"$WORK/policy.d/deny.txt"
els_config "$CONF" 's|deny_files = \[ \];|deny_files = [ "policy.d/deny.txt" ];|'
cat >>"$CONF" <<EOF
management = {
  listen = "$ADDR";
  ca = "tls/ca.crt"; cert = "tls/agent.crt"; key = "tls/agent.key"; crl = "tls/crl.pem";
  user = "nobody";
  timeout_s = 60;
};
EOF
els_steer
els_start "$CONF" || exit 1

# ---- expiry: a session of the short-lived certificate, held open, silent ----
client "$WORK/shortlived.crt" "$WORK/shortlived.key" --hold 40 >"$WORK/short.out" 2>&1 &
SHORT=$!
BG_PIDS+=($SHORT)

# ---- revocation with SIGHUP ----
rm -f "$WORK/go1"
as alice --wait-then "$WORK/go1" list.add "{\"list\":\"deny\",\"entries\":[\"198.18.77.1\"]}" \
	>"$WORK/alice.out" 2>&1 &
ALICE=$!
BG_PIDS+=($ALICE)
wait_until grep -q "first" "$WORK/alice.out"
check_eq "alice's session is open and authenticated" "first ok" "$(head -1 "$WORK/alice.out")"
"$PKI" revoke "$CA" "$CA/consoles/alice.crt" >/dev/null 2>&1
install -m 0644 "$CA/crl.pem" "$TLS/crl.pem.new" && mv "$TLS/crl.pem.new" "$TLS/crl.pem"
kill -HUP "$ELSD_PID"
check "the agent closes the revoked admin's live session (audit with the identity)" \
	wait_records "kind='event' AND detail LIKE 'mgmt alice/admin@127.0.0.1 session: closed (certificate revoked)%'"
touch "$WORK/go1"
wait "$ALICE"
check_eq "alice's next list.add on that connection finds it closed" "closed" "$(tail -1 "$WORK/alice.out")"
check_not "... and never applied: the deny file is untouched" grep -q 198.18.77.1 "$WORK/policy.d/deny.txt"
r=$(as bob list.get '{"list":"deny"}')
check_eq "... and the running list does not have it" "[]" "$(jget "$r" 'r["result"]["entries"]')"
as alice status >/dev/null 2>&1
check_eq "a new connection of alice is refused at the handshake" 2 $?
r=$(as carol status)
check_eq "another admin's new session works after the reload" "True" "$(jget "$r" 'r["ok"]')"

# ---- revocation by replacing the CRL file only: no SIGHUP ----
rm -f "$WORK/go2"
as carol --wait-then "$WORK/go2" list.add "{\"list\":\"deny\",\"entries\":[\"198.18.77.2\"]}" \
	>"$WORK/carol.out" 2>&1 &
CAROL=$!
BG_PIDS+=($CAROL)
wait_until grep -q "first" "$WORK/carol.out"
check_eq "carol's session is open and authenticated" "first ok" "$(head -1 "$WORK/carol.out")"
"$PKI" revoke "$CA" "$CA/consoles/carol.crt" >/dev/null 2>&1
t0=$(date +%s.%N)
install -m 0644 "$CA/crl.pem" "$TLS/crl.pem.new" && mv "$TLS/crl.pem.new" "$TLS/crl.pem"
check "without SIGHUP, the changed CRL file closes carol's live session" \
	wait_records "kind='event' AND detail LIKE 'mgmt carol/admin@127.0.0.1 session: closed (certificate revoked)%'"
t1=$(date +%s.%N)
check "... within 5 s of the file change (checked every 2 s): $(echo "$t1 - $t0" | bc) s" \
	test "$(echo "$t1 - $t0 < 5" | bc)" = 1
check "the log says the CRL file changed" grep -q "the CRL file changed" "$ELSD_LOG"
touch "$WORK/go2"
wait "$CAROL"
check_eq "carol's next list.add finds the connection closed" "closed" "$(tail -1 "$WORK/carol.out")"
check_not "... and never applied" grep -q 198.18.77.2 "$WORK/policy.d/deny.txt"

# ---- expiry ----
wait "$SHORT"
held=$(cat "$WORK/short.out")
check "the short-lived certificate's session was closed by the agent: $held" \
	grep -q '^closed' "$WORK/short.out"
check "... at its notAfter, not at the 40 s hold or the 60 s idle limit ($held, expiry in ${EXPIRES_IN}s)" \
	python3 -c "import sys; k,t=sys.argv[1].split(); sys.exit(not (k=='closed' and float(t) < 20))" "$held"
check "the expiry is in the monitor with the identity" \
	wait_records "kind='event' AND detail LIKE 'mgmt shortlived/admin@127.0.0.1 session: closed (certificate has expired)%'"
client "$WORK/shortlived.crt" "$WORK/shortlived.key" status >/dev/null 2>&1
check_eq "the expired certificate cannot connect again" 2 $?

# Throughout: filtering and answers.
check "the packet path works (ping)" in_cli ping -c1 -W2 $SRV4
r=$(as bob status)
check_eq "status is answered" "True" "$(jget "$r" 'r["ok"]')"
els_stop
check "the revocation closes are alerted" grep -q 'event=mgmt_refused detail="mgmt alice/admin@127.0.0.1 session: closed (certificate revoked)' "$ELSD_LOG"
els_finish
