# shellcheck shell=bash
# What the t_mgmt_* scenarios share, sourced after lib.sh and els_setup: a management CA made
# by pki/els-pki with the agent certificate agent1 (localhost, 127.0.0.1) and the consoles a
# scenario names, the agent's TLS files installed as elsd reads them, and a client that sends
# one request from inside the server namespace (mgmt_client.py).
PKI="$ELS_SOURCE_DIR/pki/els-pki"
CLIENT="$ELS_SOURCE_DIR/tests/integration/mgmt_client.py"
CA="$WORK/ca"
TLS="$WORK/tls"
ADDR=127.0.0.1:7443

# mgmt_pki NAME:ROLE...: the CA, agent1 and one console per NAME:ROLE ("alice:admin").
mgmt_pki() {
	local spec
	log "creating the PKI"
	{
		"$PKI" init "$CA" && "$PKI" agent "$CA" agent1 --host localhost --ip 127.0.0.1 &&
			for spec; do
				"$PKI" console "$CA" "${spec%%:*}" --role "${spec#*:}" || exit 1
			done
	} >/dev/null || { echo "els-pki failed"; exit 1; }
}

# mgmt_install_tls: the CA, CRL, agent certificate and key in $TLS, as elsd wants them (the
# key 0600 in a 0700 directory). After mgmt_pki and whatever a scenario adds to the CA.
mgmt_install_tls() {
	mkdir -m 0700 "$TLS"
	install -m 0644 "$CA/ca.crt" "$TLS/ca.crt"
	install -m 0644 "$CA/crl.pem" "$TLS/crl.pem"
	install -m 0644 "$CA/agents/agent1.crt" "$TLS/agent.crt"
	install -m 0600 "$CA/agents/agent1.key" "$TLS/agent.key"
}

# mgmt_console_dated NAME START END: an admin console certificate of the real CA valid from
# START to END (openssl's YYYYMMDDHHMMSSZ), which els-pki cannot make: $WORK/NAME.crt and .key.
mgmt_console_dated() {
	local name=$1 start=$2 end=$3
	printf '[ ext ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\nsubjectAltName = URI:els:role:admin\n' >"$WORK/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/OU=admin/CN=$name" -keyout "$WORK/$name.key" -out "$WORK/$name.csr" \
		2>/dev/null &&
		ELS_PKI_DIR="$CA" openssl ca -batch -notext -config "$CA/openssl.cnf" \
			-startdate "$start" -enddate "$end" -extfile "$WORK/$name.ext" \
			-extensions ext -in "$WORK/$name.csr" -out "$WORK/$name.crt" >/dev/null 2>&1
}

# client CERT KEY CMD [ARGS_JSON] [--text FILE]: one request with that certificate.
client() { in_srv python3 "$CLIENT" "$ADDR" "$TLS/ca.crt" "$@"; }
# as USER CMD [ARGS_JSON] [--text FILE]: one request as console USER of the CA.
as() {
	local who=$1
	shift
	client "$CA/consoles/$who.crt" "$CA/consoles/$who.key" "$@"
}
# jget JSON EXPR: EXPR (Python, on the parsed answer r) printed; nothing when JSON is not an
# answer ("closed"). The JSON goes through stdin: a list answer is larger than one argument.
jget() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2" <<<"$1" 2>/dev/null; }
# errs JSON: every detail of an error answer, one "line: message" per line
errs() { jget "$1" '"\n".join("%s: %s" % (d["line"], d["message"]) for d in r["error"]["details"])'; }
