#!/usr/bin/env bash
# pki/els-pki builds a working management PKI: keys private from birth, certificates with the
# promised extensions, a real mutually authenticated TLS 1.3 handshake between an agent and a
# console certificate on 127.0.0.1, and revocation that actually locks the console out.
# Needs only openssl; no namespaces, no root. Not `set -e`: every check runs and is reported.
set -uo pipefail

: "${ELS_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PKI=$ELS_SOURCE_DIR/pki/els-pki
WORK=$(mktemp -d /tmp/els-pki-test.XXXXXX)
CA=$WORK/ca
OTHER=$WORK/other-ca
SERVER_PID=
PASSED=0 FAILED=0

cleanup() {
	if [[ -n $SERVER_PID ]]; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	rm -rf -- "$WORK"
}
trap cleanup EXIT

pass() { PASSED=$((PASSED + 1)); printf 'ok %d - %s\n' $((PASSED + FAILED)) "$1"; }
fail() {
	FAILED=$((FAILED + 1))
	printf 'not ok %d - %s\n' $((PASSED + FAILED)) "$1"
	if (($# > 1)); then printf '%s\n' "$2" | sed 's/^/#   /' | tail -n 15; fi
}
# check DESCRIPTION COMMAND...: the command succeeds
check() {
	local d=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$d"; else fail "$d" "$out"; fi
}
# check_not DESCRIPTION COMMAND...: the command fails
check_not() {
	local d=$1 out
	shift
	if out=$("$@" 2>&1); then fail "$d (unexpectedly succeeded)" "$out"; else pass "$d"; fi
}
check_eq() { if [[ $2 == "$3" ]]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi; }
mode() { stat -c %a "$1" 2>/dev/null || echo missing; }
# ext CERT NAME: one X.509v3 extension as openssl prints it
ext() { openssl x509 -in "$1" -noout -ext "$2" 2>/dev/null; }

# 77: ctest reports the scenario as skipped (SKIP_RETURN_CODE in CMakeLists.txt), not passed.
if ! command -v openssl >/dev/null; then
	echo "1..0 # SKIP openssl not installed"
	exit 77
fi

# --- help and usage --------------------------------------------------------------------------
out=$("$PKI" --help 2>&1)
check_eq "--help exits 0" 0 $?
check "--help documents the exit status" grep -q '^EXIT STATUS' <<<"$out"
missing=
for c in init agent console console-server revoke crl list; do
	grep -q "^    els-pki $c" <<<"$out" || missing+=" $c"
done
check_eq "--help has a synopsis line for every command" "" "$missing"
out=$("$PKI" frobnicate "$CA" 2>&1)
check_eq "an unknown command is a usage error (exit 2)" 2 $?

# --- init --------------------------------------------------------------------------------------
# A permissive caller umask must not leak into the CA: the script sets its own.
out=$(umask 000 && "$PKI" init "$CA" --cn "t_pki test CA" --days 30 2>&1)
check_eq "init succeeds" 0 $?
check_eq "the CA directory is 0700" 700 "$(mode "$CA")"
check_eq "ca.key is 0600" 600 "$(mode "$CA/ca.key")"
check_eq "index.txt is private despite umask 000" 600 "$(mode "$CA/index.txt")"
check "ca.crt is a CA certificate (CA:TRUE)" grep -q 'CA:TRUE' <<<"$(ext "$CA/ca.crt" \
	basicConstraints)"
check "ca.crt carries the --cn subject" grep -q 'CN *= *t_pki test CA' \
	<<<"$(openssl x509 -in "$CA/ca.crt" -noout -subject)"
check "ca.key is ECDSA P-256" grep -q 'NIST CURVE: P-256' \
	<<<"$(openssl pkey -in "$CA/ca.key" -noout -text)"
check "ca.crt is signed with ecdsa-with-SHA256" grep -q 'ecdsa-with-SHA256' \
	<<<"$(openssl x509 -in "$CA/ca.crt" -noout -text)"
check "crl.pem is a CRL signed by the CA" openssl crl -in "$CA/crl.pem" -CAfile "$CA/ca.crt" \
	-noout
check "the initial CRL revokes nothing" grep -q 'No Revoked Certificates' \
	<<<"$(openssl crl -in "$CA/crl.pem" -noout -text)"
out=$("$PKI" init "$CA" 2>&1)
rc=$?
check_eq "init refuses an existing CA (exit 3)" 3 "$rc"
check "the refusal names the CA file" grep -q "$CA/ca" <<<"$out"

# --- agent -------------------------------------------------------------------------------------
A=$CA/agents/web1
out=$(umask 000 && "$PKI" agent "$CA" web1 --host web1.example.net --ip 127.0.0.1 \
	--ip 2001:db8::10 2>&1)
check_eq "agent succeeds" 0 $?
check_eq "agent key is 0600 even under umask 000" 600 "$(mode "$A.key")"
check "agent key is ECDSA P-256" grep -q 'NIST CURVE: P-256' \
	<<<"$(openssl pkey -in "$A.key" -noout -text)"
check "openssl verify accepts the agent cert as an SSL server" \
	openssl verify -CAfile "$CA/ca.crt" -purpose sslserver "$A.crt"
check "the agent cert matches web1.example.net" \
	openssl verify -CAfile "$CA/ca.crt" -verify_hostname web1.example.net "$A.crt"
check_not "the agent cert does not match another host name" \
	openssl verify -CAfile "$CA/ca.crt" -verify_hostname web2.example.net "$A.crt"
san=$(ext "$A.crt" subjectAltName)
check "agent SAN has DNS:web1.example.net" grep -q 'DNS:web1.example.net' <<<"$san"
check "agent SAN has IP 127.0.0.1" grep -q 'IP Address:127.0.0.1' <<<"$san"
check "agent SAN has IP 2001:db8::10" grep -qi 'IP Address:2001:DB8:0:0:0:0:0:10' <<<"$san"
eku=$(ext "$A.crt" extendedKeyUsage)
check "agent EKU has serverAuth (its listening endpoint)" grep -q 'TLS Web Server Authentication' \
	<<<"$eku"
check "agent EKU has clientAuth (dialling out to els-console)" \
	grep -q 'TLS Web Client Authentication' <<<"$eku"
check_not "agent cert carries no els:role URI (no operator role)" grep -q 'els:role' \
	<<<"$(ext "$A.crt" subjectAltName)"
check "agent cert is not a CA" grep -q 'CA:FALSE' <<<"$(ext "$A.crt" basicConstraints)"

sum_before=$(cat "$A.crt" "$A.key" | sha256sum)
out=$("$PKI" agent "$CA" web1 --host other.example.net 2>&1)
rc=$?
check_eq "a second 'agent web1' is refused (exit 3)" 3 "$rc"
check "the refusal names the existing file" grep -q "$A.crt" <<<"$out"
check_eq "the existing agent cert and key are untouched" "$sum_before" \
	"$(cat "$A.crt" "$A.key" | sha256sum)"
out=$("$PKI" agent "$CA" web2 2>&1)
check_eq "agent without --host is a usage error" 2 $?
out=$("$PKI" agent "$CA" web3 --host web3.example.net --ip 300.1.2.3 2>&1)
check_eq "an invalid --ip is a usage error" 2 $?
check "the error names the bad address" grep -q "300.1.2.3" <<<"$out"
check_not "no key is left behind for the rejected agent" test -e "$CA/agents/web3.key"

# --- console -----------------------------------------------------------------------------------
C=$CA/consoles/alice
out=$("$PKI" console "$CA" alice --role admin 2>&1)
check_eq "console succeeds" 0 $?
check_eq "console key is 0600" 600 "$(mode "$C.key")"
check "openssl verify accepts the console cert as an SSL client" \
	openssl verify -CAfile "$CA/ca.crt" -purpose sslclient "$C.crt"
check_not "openssl verify rejects the console cert as an SSL server" \
	openssl verify -CAfile "$CA/ca.crt" -purpose sslserver "$C.crt"
subj=$(openssl x509 -in "$C.crt" -noout -subject -nameopt RFC2253)
check_eq "console subject is OU=admin, CN=alice" "subject=CN=alice,OU=admin" "$subj"
check "console SAN is URI:els:role:admin" grep -qx ' *URI:els:role:admin' \
	<<<"$(ext "$C.crt" subjectAltName)"
eku=$(ext "$C.crt" extendedKeyUsage)
check "console EKU is clientAuth" grep -q 'TLS Web Client Authentication' <<<"$eku"
check_not "console EKU lacks serverAuth" grep -q 'Server Authentication' <<<"$eku"
"$PKI" console "$CA" bob --role auditor >/dev/null 2>&1
check "an auditor gets OU=auditor" grep -q 'OU *= *auditor' \
	<<<"$(openssl x509 -in "$CA/consoles/bob.crt" -noout -subject)"
check "an auditor gets URI:els:role:auditor" grep -q 'URI:els:role:auditor' \
	<<<"$(ext "$CA/consoles/bob.crt" subjectAltName)"
# --- console-server ---------------------------------------------------------------------------
S=$CA/servers/console-1
out=$("$PKI" console-server "$CA" console-1 --host console.example.net --ip 127.0.0.1 2>&1)
check_eq "console-server succeeds" 0 $?
check_eq "console-server key is 0600" 600 "$(mode "$S.key")"
subj=$(openssl x509 -in "$S.crt" -noout -subject -nameopt RFC2253)
check_eq "console-server subject is OU=console, CN=console-1" "subject=CN=console-1,OU=console" \
	"$subj"
san=$(ext "$S.crt" subjectAltName)
check "console-server SAN has DNS:console.example.net" grep -q 'DNS:console.example.net' <<<"$san"
check "console-server SAN has IP 127.0.0.1" grep -q 'IP Address:127.0.0.1' <<<"$san"
check "console-server SAN has URI:els:role:console" grep -q 'URI:els:role:console' <<<"$san"
eku=$(ext "$S.crt" extendedKeyUsage)
check "console-server EKU is serverAuth" grep -q 'TLS Web Server Authentication' <<<"$eku"
check_not "console-server EKU lacks clientAuth" grep -q 'Client Authentication' <<<"$eku"
check "openssl verify accepts the console-server cert as an SSL server for its host" \
	openssl verify -CAfile "$CA/ca.crt" -purpose sslserver -verify_hostname \
	console.example.net "$S.crt"
check_not "openssl verify rejects the console-server cert as an SSL client" \
	openssl verify -CAfile "$CA/ca.crt" -purpose sslclient "$S.crt"
out=$("$PKI" console-server "$CA" console-2 2>&1)
check_eq "console-server without --host is a usage error" 2 $?
out=$("$PKI" console-server "$CA" console-1 --host console.example.net 2>&1)
check_eq "a second 'console-server console-1' is refused (exit 3)" 3 $?

s1=$(openssl x509 -in "$A.crt" -noout -serial)
s2=$(openssl x509 -in "$C.crt" -noout -serial)
s3=$(openssl x509 -in "$CA/consoles/bob.crt" -noout -serial)
check "serials are unique" test "$s1" != "$s2" -a "$s2" != "$s3" -a "$s1" != "$s3"

out=$("$PKI" console "$CA" mallory --role root 2>&1)
check_eq "a bad role is a usage error (exit 2)" 2 $?
check "the bad-role message names the role and the choices" \
	grep -q "invalid role 'root': must be 'admin' or 'auditor'" <<<"$out"
check_not "no key is created for a bad role" test -e "$CA/consoles/mallory.key"
out=$("$PKI" console "$CA" ../escape --role admin 2>&1)
check_eq "a name with a slash is a usage error" 2 $?
check_not "nothing is written outside consoles/" test -e "$CA/escape.key"
out=$("$PKI" console "$CA" alice --role auditor 2>&1)
check_eq "a second 'console alice' is refused (exit 3)" 3 $?

# A console from an unrelated CA, to prove the agent trusts only its own CA.
"$PKI" init "$OTHER" >/dev/null 2>&1 && "$PKI" console "$OTHER" eve --role admin >/dev/null 2>&1
check_not "openssl verify rejects a console cert from another CA" \
	openssl verify -CAfile "$CA/ca.crt" "$OTHER/consoles/eve.crt"
out=$("$PKI" revoke "$CA" "$OTHER/consoles/eve.crt" 2>&1)
check_eq "revoke refuses a certificate from another CA" 1 $?

# --- TLS 1.3 handshakes ------------------------------------------------------------------------
# start_server CERT KEY: an agent stand-in that demands a client cert, checks it against the
# CA and the current CRL, and echoes one line back reversed (-rev). Retries on a busy port.
start_server() {
	for _ in 1 2 3 4 5; do
		PORT=$((20000 + RANDOM % 40000))
		timeout 20 openssl s_server -accept "127.0.0.1:$PORT" -tls1_3 -rev -naccept 1 \
			-cert "$1" -key "$2" -CAfile "$CA/ca.crt" -Verify 1 -verify_return_error \
			-CRL "$CA/crl.pem" -crl_check </dev/null >"$WORK/server.log" 2>&1 &
		SERVER_PID=$!
		for _ in $(seq 100); do
			grep -q '^ACCEPT' "$WORK/server.log" && return 0
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
		SERVER_PID=
	done
	return 1
}

# handshake CLIENT-CERT CLIENT-KEY [SERVER-CERT SERVER-KEY]: 0 when the whole exchange worked
# (the reversed token came back, the server saw a verified TLS 1.3 peer). TLS 1.3 finishes the
# client's handshake before the server has judged the client certificate, so the client's exit
# status alone would not prove acceptance; the echoed data does.
handshake() {
	local token="els-$RANDOM$RANDOM" rev="" i
	for ((i = ${#token} - 1; i >= 0; i--)); do rev+=${token:i:1}; done
	start_server "${3:-$A.crt}" "${4:-$A.key}" || {
		{ echo "s_server did not start; its last log:"; cat "$WORK/server.log"; } \
			>"$WORK/client.log" 2>&1
		return 2
	}
	printf '%s\nCLOSE\n' "$token" | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
		-tls1_3 -cert "$1" -key "$2" -CAfile "$CA/ca.crt" -verify_return_error \
		-verify_ip 127.0.0.1 -ign_eof -quiet >"$WORK/client.log" 2>&1
	wait "$SERVER_PID" 2>/dev/null
	SERVER_PID=
	grep -qx "$rev" "$WORK/client.log" &&
		grep -q 'Protocol version: TLSv1.3' "$WORK/server.log" &&
		grep -q 'Verification: OK' "$WORK/server.log"
}
logs() { cat "$WORK/server.log" "$WORK/client.log" 2>/dev/null; }

if handshake "$C.crt" "$C.key"; then
	pass "TLS 1.3 handshake agent <-> console alice succeeds and carries data"
else
	fail "TLS 1.3 handshake agent <-> console alice succeeds and carries data" "$(logs)"
fi
check "the server saw the console's identity" grep -q 'Peer certificate: .*CN *= *alice' \
	"$WORK/server.log"

if handshake "$OTHER/consoles/eve.crt" "$OTHER/consoles/eve.key"; then
	fail "a console cert from another CA is rejected" "$(logs)"
else
	grep -q 'unable to get local issuer certificate' "$WORK/server.log" &&
		pass "a console cert from another CA is rejected (unknown issuer)" ||
		fail "a console cert from another CA is rejected (unknown issuer)" "$(logs)"
fi

# An agent dials its console: agent certificate as the client, console-server as the server.
if handshake "$A.crt" "$A.key" "$S.crt" "$S.key"; then
	pass "TLS 1.3 handshake agent (client) -> console-server succeeds and carries data"
else
	fail "TLS 1.3 handshake agent (client) -> console-server succeeds and carries data" "$(logs)"
fi
check "the console-server saw the agent's identity" grep -q 'Peer certificate: .*CN *= *web1' \
	"$WORK/server.log"
if handshake "$S.crt" "$S.key"; then
	fail "a console-server (serverAuth) cert is rejected as a client cert" "$(logs)"
else
	grep -q 'unsuitable certificate purpose' "$WORK/server.log" &&
		pass "a console-server (serverAuth) cert is rejected as a client cert" ||
		fail "a console-server (serverAuth) cert is rejected as a client cert" "$(logs)"
fi

if handshake "$C.crt" "$C.key" "$C.crt" "$C.key"; then
	fail "the console rejects a server presenting a clientAuth cert" "$(logs)"
else
	grep -q 'unsuitable certificate purpose' "$WORK/client.log" &&
		pass "the console rejects a server presenting a clientAuth cert" ||
		fail "the console rejects a server presenting a clientAuth cert" "$(logs)"
fi

# --- revocation --------------------------------------------------------------------------------
crlnum() { openssl crl -in "$CA/crl.pem" -noout -crlnumber | cut -d= -f2; }
n_before=$(crlnum)
out=$("$PKI" revoke "$CA" "$C.crt" --reason keyCompromise 2>&1)
check_eq "revoke succeeds" 0 $?
serial=$(openssl x509 -in "$C.crt" -noout -serial | cut -d= -f2)
check "the new CRL lists the revoked serial" grep -q "Serial Number: $serial" \
	<<<"$(openssl crl -in "$CA/crl.pem" -noout -text)"
check "the new CRL is signed by the CA" openssl crl -in "$CA/crl.pem" -CAfile "$CA/ca.crt" -noout
check "the CRL number increased" test "$(crlnum)" != "$n_before"
check_not "openssl verify -crl_check rejects the revoked console cert" \
	openssl verify -CAfile "$CA/ca.crt" -CRLfile "$CA/crl.pem" -crl_check "$C.crt"
check "openssl verify -crl_check still accepts bob" \
	openssl verify -CAfile "$CA/ca.crt" -CRLfile "$CA/crl.pem" -crl_check "$CA/consoles/bob.crt"

if handshake "$C.crt" "$C.key"; then
	fail "after revoke, the same handshake with alice fails" "$(logs)"
else
	check "after revoke, the same handshake with alice fails (certificate revoked)" \
		grep -q 'certificate revoked' "$WORK/server.log"
fi
if handshake "$CA/consoles/bob.crt" "$CA/consoles/bob.key"; then
	pass "after revoke, an unrevoked console (bob) still connects"
else
	fail "after revoke, an unrevoked console (bob) still connects" "$(logs)"
fi

out=$("$PKI" revoke "$CA" "$C.crt" 2>&1)
check_eq "revoking twice is harmless (exit 0)" 0 $?
n_before=$(crlnum)
out=$("$PKI" crl "$CA" 2>&1)
check_eq "crl succeeds" 0 $?
check "crl issues a new CRL number" test "$(crlnum)" != "$n_before"
check "the refreshed CRL still lists the revoked serial" grep -q "Serial Number: $serial" \
	<<<"$(openssl crl -in "$CA/crl.pem" -noout -text)"
check_eq "crl.pem is world-readable (0644)" 644 "$(mode "$CA/crl.pem")"

# --- list --------------------------------------------------------------------------------------
out=$("$PKI" list "$CA" 2>&1)
check_eq "list succeeds" 0 $?
check "list shows alice revoked" grep -Eq '^revoked .*CN=alice +consoles/alice.crt$' <<<"$out"
check "list shows bob valid" grep -Eq '^valid .*CN=bob +consoles/bob.crt$' <<<"$out"
check "list shows web1 valid" grep -Eq '^valid .*CN=web1 +agents/web1.crt$' <<<"$out"
check "list shows console-1 valid" grep -Eq '^valid .*CN=console-1 +servers/console-1.crt$' \
	<<<"$out"
# Expiry needs a past date, which openssl ca will not issue; age bob in a copy of the database.
cp -a "$CA" "$WORK/aged"
serial_bob=$(openssl x509 -in "$CA/consoles/bob.crt" -noout -serial | cut -d= -f2)
awk -F'\t' -v OFS='\t' -v s="$serial_bob" '$4 == s { $2 = "200101000000Z" } { print }' \
	"$CA/index.txt" >"$WORK/aged/index.txt"
check "list shows an expired certificate as expired" grep -Eq '^expired .*CN=bob ' \
	<<<"$("$PKI" list "$WORK/aged" 2>&1)"

printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
((FAILED == 0 && PASSED > 0))
