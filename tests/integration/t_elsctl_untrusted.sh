#!/usr/bin/env bash
# elsctl treats what an agent sends as untrusted (issue 12, deliverable 8), against a real elsd
# over real TLS:
# - an agent whose certificate the CA has revoked is refused (default CRL beside the CA file,
#   --crl, $ELSCTL_CRL), an expired CRL stops elsctl before it dials, a CRL of another CA is
#   named as such;
# - a permit id carrying terminal escapes (clear screen, set window title) reaches the monitor
#   through real traffic and comes out of `elsctl log`, `elsctl registry` and the JSON output
#   without one ESC byte, while the JSON keeps the exact text as \u escapes;
# - an agent certificate whose CN carries escapes is named harmlessly in the error;
# - the audit line of a request by a console with a long CN is printed in full, exactly as the
#   monitor holds it.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
ELSCTL=${ELSCTL:-$ELS_BUILD_DIR/elsctl}
PKI=$ELS_SOURCE_DIR/pki/els-pki
[[ -x $ELSCTL ]] || { echo "elsctl not built at $ELSCTL"; exit 1; }
command -v openssl >/dev/null || { echo "needs openssl"; exit 1; }
# shellcheck disable=SC2034 # lib.sh reads DB and ELSD_LOG
rmdir "$WORK" && WORK=$(mktemp -d /tmp/elsctl-ut.XXXXXX) && DB=$WORK/monitor.db &&
	ELSD_LOG=$WORK/elsd.log || exit 1
els_setup
els_steer

CA=$WORK/ca AG=$WORK/agent
LONGCN=console-with-a-long-common-name-that-fills-the-audit-line-012345
mkdir -p "$AG"
{
	$PKI init "$CA" &&
		$PKI agent "$CA" web1 --host web1.test --ip "$SRV4" &&
		$PKI console "$CA" alice --role admin &&
		$PKI console "$CA" "$LONGCN" --role auditor &&
		$PKI init "$WORK/other"
} >/dev/null || { echo "PKI setup failed"; exit 1; }
cp "$CA/ca.crt" "$CA/crl.pem" "$AG/"
cp "$CA/crl.pem" "$WORK/crl-before.pem"
cp "$CA/agents/web1.crt" "$AG/agent.crt"
install -m 0600 "$CA/agents/web1.key" "$AG/agent.key"

# A permit whose id clears the screen and sets the window title, on port 8080, and the
# management port.
CONF=$AG/elsd.conf
EVIL='    { id = "e\\x1b[2Jvil\\x1b]0;pwn\\x07"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },'
MGMT='    { id = "mgmt-in"; dir = "in"; proto = "tcp"; local_ports = [ 7443 ]; },'
els_config "$CONF" "s|^    { id = \"https-in\";|$MGMT\n$EVIL\n&|"
cat >>"$CONF" <<EOF
management = { listen = "$SRV4:7443"; ca = "ca.crt"; cert = "agent.crt"; key = "agent.key";
               crl = "crl.pem"; };
EOF
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || exit 1
for _ in $(seq 50); do in_srv ss -ltnH 'sport = :7443' | grep -q . && break; sleep 0.1; done

export ELSCTL_CA=$CA/ca.crt ELSCTL_CERT=$CA/consoles/alice.crt ELSCTL_KEY=$CA/consoles/alice.key
export ELSCTL_AGENT=$SRV4:7443
unset ELSCTL_CRL
ctl() { in_cli "$ELSCTL" --timeout 5 "$@"; }
rc() {
	local d=$1 want=$2 got
	shift 2
	OUT=$("$@" 2>&1)
	got=$?
	if [[ $got == "$want" ]]; then pass "$d"; else
		fail "$d (exit $got, expected $want)"
		printf '#   %s\n' "${OUT//$'\n'/$'\n#   '}"
	fi
}
has() { if grep -qE -- "$2" <<<"$OUT"; then pass "$1"; else fail "$1: no /$2/ in: $OUT"; fi; }
# no_esc "description": $OUT holds no ESC, BEL or other C0 byte but newline and tab.
no_esc() {
	local n
	n=$(printf '%s' "$OUT" | LC_ALL=C tr -d '\n\t' | LC_ALL=C tr -cd '\000-\037\177' | wc -c)
	check_eq "$1" 0 "$n"
}

# ---- terminal escapes from the agent's data ----
check "the evil permit admits a connection" in_cli nc -z -w 2 "$SRV4" 8080
wait_records "kind = 'admit' AND dport = 8080" || fail "no admit record for 8080"
check_eq "the monitor holds the raw escape in rule_name" 1 \
	"$(sql "SELECT count(*) FROM records WHERE kind = 'admit' AND dport = 8080 AND instr(rule_name, char(27)) > 0")"
rc "elsctl log shows the admitted flow" 0 ctl log --port 8080
has "... with the permit id made harmless" "e\?vil\?"
no_esc "... and not one control byte in elsctl log"
rc "elsctl --json log" 0 ctl --json log --port 8080
no_esc "... has no raw control byte either"
has "... but keeps the exact id as \\u escapes" 'e\\u001[bB]\[2Jvil\\u001[bB]\]0;pwn\\u0007'
rc "elsctl registry of the agent's config" 0 "$ELSCTL" registry -c "$CONF" --monitor "$DB"
has "... names the permit harmlessly" "^permit e\?vil\? "
no_esc "... without a control byte"
rc "fleet mode log" 0 ctl --agents <(echo "$SRV4:7443") log --port 8080
no_esc "... fleet lines without a control byte"

# ---- an agent certificate naming itself with escapes ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj "/OU=agent/CN=$(printf 'x\033[2J\033]0;pwn\007y')" -keyout "$WORK/fake.key" \
	-out "$WORK/fake.crt" 2>/dev/null
bg_in "$CLI" openssl s_server -quiet -accept 127.0.0.1:9443 -cert "$WORK/fake.crt" \
	-key "$WORK/fake.key"
wait_until in_cli sh -c 'ss -ltnH "sport = :9443" | grep -q .' || fail "fake agent did not start"
rc "an agent with an unknown self-signed certificate is refused" 3 ctl --agent 127.0.0.1:9443 status
has "... naming its subject harmlessly" "agent certificate for 127.0.0.1 \(CN=x\?.*y, OU=agent\)"
no_esc "... without a control byte"

# ---- the full audit line of a long CN ----
rc "a console with a long CN reads the status" 0 ctl --cert "$CA/consoles/$LONGCN.crt" \
	--key "$CA/consoles/$LONGCN.key" status
wait_records "kind = 'event' AND detail LIKE 'mgmt console-with-a-long%'" ||
	fail "no audit record for the long CN"
DETAIL=$(sql "SELECT detail FROM records WHERE kind = 'event' AND detail LIKE 'mgmt console-with-a-long%' ORDER BY seq DESC LIMIT 1")
check "the monitor holds the audit line" test -n "$DETAIL"
rc "log of the audit events" 0 ctl log --kind event --limit 500
has "the audit line is printed in full, as the monitor holds it" "$(printf '%s' "$DETAIL" | sed 's/[][\.*^$()+?{}|/]/\\&/g')\$"
rc "log --json" 0 ctl --json log --kind event --limit 500
check "... carries the same full detail" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]  # NDJSON, as els-log --json
sys.exit(0 if any(r.get("detail") == sys.argv[2] for r in rows) else 1)' <(printf '%s' "$OUT") "$DETAIL"

# ---- revocation of the agent's certificate ----
rc "before the revocation the agent is trusted (default CRL beside the CA)" 0 ctl status
$PKI revoke "$CA" "$CA/agents/web1.crt" --reason keyCompromise >/dev/null ||
	fail "revoking web1 failed"
rc "a revoked agent certificate is refused (default CRL: crl.pem beside --ca)" 3 ctl status
has "... saying it is revoked and by which CRL" "agent certificate for $SRV4 \(CN=web1, OU=agent\): certificate revoked \(listed in the CRL $CA/crl.pem\)"
rc "--crl with the CRL from before the revocation lets it through" 0 ctl --crl "$WORK/crl-before.pem" status
rc "--crl with the current CRL refuses it" 3 ctl --crl "$CA/crl.pem" status
has "... as revoked" "certificate revoked"
rc "\$ELSCTL_CRL is honoured" 3 env ELSCTL_CRL="$CA/crl.pem" ELSCTL_CA="$WORK/ca-copy.crt" \
	sh -c 'cp "$0" "$ELSCTL_CA" && exec "$@"' "$CA/ca.crt" ip netns exec "$CLI" "$ELSCTL" status
has "... as revoked" "certificate revoked"
cp "$CA/ca.crt" "$WORK/lone-ca.crt"
rc "without any CRL (none beside the CA, none named) revocation is not checked" 0 \
	ctl --ca "$WORK/lone-ca.crt" status
rc "a missing --crl file stops elsctl" 3 ctl --crl "$WORK/nope.pem" status
has "... naming it" "CRL file $WORK/nope.pem: No such file or directory"
rc "a CRL of another CA is named as such" 3 ctl --crl "$WORK/other/crl.pem" status
has "... with what to do" "unable to get certificate CRL \(the CRL .* is not from the CA"
ELS_PKI_DIR=$CA openssl ca -config "$CA/openssl.cnf" -gencrl -crl_lastupdate 20200101000000Z \
	-crl_nextupdate 20200201000000Z -out "$WORK/expired-crl.pem" >/dev/null 2>&1 ||
	fail "could not make an expired CRL"
rc "an expired CRL stops elsctl before it dials" 3 ctl --crl "$WORK/expired-crl.pem" status
has "... saying when and what to do" "CRL file $WORK/expired-crl.pem expired on .*2020.*els-pki crl"
rc "the agent keeps answering throughout" 0 ctl --crl "$WORK/crl-before.pem" status
check "and keeps filtering: 8080 still passes" in_cli nc -z -w 2 "$SRV4" 8080
check_not "and 9999 is still dropped" in_cli nc -z -w 2 "$SRV4" 9999

els_stop || fail "elsd exited non-zero"
els_finish
