#!/usr/bin/env bash
# elsctl against one real elsd: human and JSON output, certificate errors with their exit
# codes (wrong CA on either side, revoked, expired), role refusal, list edits with per-entry
# feedback that change real traffic, policy check/apply errors, flows and log, usage errors.
# The agent's management endpoint listens on the server's veth address; elsctl runs in the
# client namespace, so every request crosses the NFQUEUE-steered interface.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
ELSCTL=${ELSCTL:-$ELS_BUILD_DIR/elsctl}
PKI=$ELS_SOURCE_DIR/pki/els-pki
[[ -x $ELSCTL ]] || { echo "elsctl not built at $ELSCTL"; exit 1; }
# Our own scratch name: a sweep of /tmp/els-it.* by a concurrent run once removed it mid-test.
# shellcheck disable=SC2034 # lib.sh reads DB and ELSD_LOG
rmdir "$WORK" && WORK=$(mktemp -d /tmp/elsctl-it.XXXXXX) && DB=$WORK/monitor.db &&
	ELSD_LOG=$WORK/elsd.log || exit 1
els_setup
els_steer

CA=$WORK/ca OTHER=$WORK/other AG=$WORK/agent
mkdir -p "$AG"
{
	$PKI init "$CA" &&
		$PKI agent "$CA" web1 --host web1.test --ip "$SRV4" &&
		$PKI console "$CA" alice --role admin &&
		$PKI console "$CA" bob --role auditor &&
		$PKI console "$CA" mallory --role admin &&
		$PKI revoke "$CA" "$CA/consoles/mallory.crt" &&
		$PKI init "$OTHER" &&
		$PKI console "$OTHER" eve --role admin &&
		$PKI agent "$OTHER" web1 --host web1.test --ip "$SRV4"
} >/dev/null || { echo "PKI setup failed"; exit 1; }
# An expired console certificate from the right CA: els-pki has no back-dating, openssl ca has.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/OU=admin/CN=old" \
	-keyout "$WORK/old.key" -out "$WORK/old.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$WORK/old.ext"
ELS_PKI_DIR=$CA openssl ca -config "$CA/openssl.cnf" -batch -notext -startdate 20200101000000Z \
	-enddate 20200201000000Z -in "$WORK/old.csr" -out "$WORK/old.crt" -extfile "$WORK/old.ext" \
	>/dev/null 2>&1 || echo "could not issue the expired certificate"
chmod 600 "$WORK/old.key"

cp "$CA/ca.crt" "$CA/crl.pem" "$AG/"
cp "$CA/agents/web1.crt" "$AG/agent.crt"
install -m 0600 "$CA/agents/web1.key" "$AG/agent.key"
mkdir -p "$WORK/policy.d" && : >"$WORK/policy.d/deny.txt"
: >"$WORK/deny.txt" # for `elsctl policy check` of a document in $WORK

# The example policy, plus: management on the server's address (permitted inbound), a managed
# deny list file, and a service on 8080 that the policy does not permit.
CONF=$AG/elsd.conf
MGMT='s|^    { id = "https-in";|    { id = "mgmt-in"; dir = "in"; proto = "tcp"; local_ports = [ 7443 ]; },\n&|'
els_config "$CONF" "$MGMT" "s|deny_files = \\[ \\];|deny_files = [ \"$WORK/policy.d/deny.txt\" ];|"
# What a console sends: the policy part only, its list files named inside the policy directory.
els_policy_doc "$WORK/new.conf" "$MGMT" 's|deny_files = \[ \];|deny_files = [ "deny.txt" ];|'
cat >>"$CONF" <<EOF
management = { listen = "$SRV4:7443"; ca = "ca.crt"; cert = "agent.crt"; key = "agent.key";
               crl = "crl.pem"; };
EOF
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || exit 1
for _ in $(seq 50); do in_srv ss -ltnH 'sport = :7443' | grep -q . && break; sleep 0.1; done

export ELSCTL_CA=$CA/ca.crt ELSCTL_CERT=$CA/consoles/alice.crt ELSCTL_KEY=$CA/consoles/alice.key
export ELSCTL_AGENT=$SRV4:7443
ctl() { in_cli "$ELSCTL" --timeout 5 "$@"; }
# rc "description" expected-exit command...: output in $OUT (stdout+stderr)
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
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# status, human and JSON
rc "status succeeds" 0 ctl status
has "status shows generation 1" "^policy: +generation 1, sha256 "
has "status shows who we are" "^you: +alice \(role admin\)"
has "status has a queue table" "^QUEUE +PACKETS +ACCEPTED +DROPPED"
rc "status --json succeeds" 0 ctl --json status
check_eq "JSON status: generation" 1 "$(json 'd["generation"]' <<<"$OUT")"
check_eq "JSON status: the agent's hash is the file's" "$(sha256sum <"$CONF" | cut -d' ' -f1)" \
	"$(json 'd["policy_sha256"]' <<<"$OUT")"
check_eq "JSON status: role" admin "$(json 'd["client"]["role"]' <<<"$OUT")"
rc "stats succeeds" 0 ctl stats
has "stats lists the chain" "chain: anomaly -> iplist -> tracker -> header_filter"
has "stats has a handler table" "^header_filter +yes +[0-9]+ +[0-9]+"

# Certificates: each failure says which certificate and why, and exits 3.
rc "a console from another CA is refused" 3 ctl --cert "$OTHER/consoles/eve.crt" \
	--key "$OTHER/consoles/eve.key" status
has "... with the agent's reason" "refused our certificate \(CN=eve, OU=admin\): unknown CA"
rc "a revoked console is refused" 3 ctl --cert "$CA/consoles/mallory.crt" \
	--key "$CA/consoles/mallory.key" status
has "... as revoked" "refused our certificate \(CN=mallory, OU=admin\): certificate revoked"
rc "an expired console certificate is caught before dialling" 3 ctl --cert "$WORK/old.crt" \
	--key "$WORK/old.key" status
has "... saying when it expired" "console certificate .*old.crt \(CN=old, OU=admin\) expired on .*2020"
rc "an agent certificate from another CA is refused" 3 ctl --ca "$OTHER/ca.crt" status
has "... naming the agent certificate" "agent certificate for $SRV4 \(CN=web1, OU=agent"
rc "a host name the agent certificate does not carry is refused" 3 \
	ctl --agent "$CLI4:7443" --timeout 2 status
cp "$CA/consoles/bob.key" "$WORK/loose.key" && chmod 644 "$WORK/loose.key"
rc "a group-readable console key is refused" 3 ctl --cert "$CA/consoles/bob.crt" \
	--key "$WORK/loose.key" status
has "... saying what to do" "accessible by group or others .*chmod 600"

# Roles
AUD=(--cert "$CA/consoles/bob.crt" --key "$CA/consoles/bob.key")
rc "an auditor reads the status" 0 ctl "${AUD[@]}" status
rc "an auditor may not apply" 1 ctl "${AUD[@]}" policy apply "$WORK/new.conf"
has "... and is told so" "forbidden: .*auditor.*policy.apply"
rc "an auditor may not edit lists" 1 ctl "${AUD[@]}" list add deny 198.19.1.0/24
has "... forbidden too" "forbidden"

# Lists: per-entry feedback, and the edit changes real traffic.
els_https_server || fail "https server did not start"
in_cli ip addr add 198.18.0.99/24 dev eth0
check "443 is reachable from .99 before the edit" in_cli nc -z -w 2 -s 198.18.0.99 "$SRV4" 443
rc "list add with an invalid entry exits 1" 1 ctl list add deny 198.19.1.0/24 198.18.0.99 \
	10.1.2.3/8 198.19.1.0/24
has "added is reported per entry" "^added 198.19.1.0/24$"
has "a host address is shown as /32" "^added 198.18.0.99/32$"
has "invalid entries say why" "^invalid 10.1.2.3/8: "
has "a repeated entry is a duplicate" "^duplicate 198.19.1.0/24$"
has "the new generation is reported" "updated: generation 2"
check_not "the denied address is now refused" in_cli nc -z -w 2 -s 198.18.0.99 "$SRV4" 443
check "other addresses still pass" in_cli nc -z -w 2 "$SRV4" 443
rc "list get" 0 ctl list get deny
has "list get prints the entries" "^198.18.0.99/32$"
rc "list del" 0 ctl list del deny 198.18.0.99 203.0.113.1
has "removed is reported" "^removed 198.18.0.99/32$"
has "a missing entry is not found" "^not found 203.0.113.1"
check_eq "the list file keeps the other entry" "198.19.1.0/24" \
	"$(grep -v '^#' "$WORK/policy.d/deny.txt" | grep .)"
check "the removed address passes again" in_cli nc -z -w 2 -s 198.18.0.99 "$SRV4" 443

# Policies
# A broken policy: a port name /etc/services does not know, on a line of its own.
cp "$WORK/new.conf" "$WORK/bad.conf"
printf 'header_filter = { permits = ( { dir = "in"; proto = "tcp"; local_ports = [ "nosuchservice" ]; } ); };\n' \
	>>"$WORK/bad.conf"
rc "policy check finds errors locally" 1 "$ELSCTL" policy check "$WORK/bad.conf"
has "... as FILE:LINE" "bad.conf:[0-9]+: "
rc "policy check passes a good file" 0 "$ELSCTL" policy check "$WORK/new.conf"
rc "policy check --remote asks the agent" 1 ctl policy check --remote "$WORK/bad.conf"
has "... which lists the errors under our file name" "^  $WORK/bad.conf:[0-9]+: "
gen_before=$(ctl --json status | json 'd["generation"]')
rc "applying a broken policy fails" 1 ctl policy apply "$WORK/bad.conf"
has "... with invalid_policy" "invalid_policy"
check_eq "... and the generation is unchanged" "$gen_before" \
	"$(ctl --json status | json 'd["generation"]')"
sed -i 's|^    { id = "https-in";|    { id = "alt-in"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },\n&|' \
	"$WORK/new.conf"
check_not "8080 is filtered before the apply" in_cli nc -z -w 2 "$SRV4" 8080
rc "apply a policy that permits 8080" 0 ctl policy apply "$WORK/new.conf"
has "apply reports the new generation" "^applied: generation $((gen_before + 1)), sha256 "
check "8080 passes after the apply" in_cli nc -z -w 2 "$SRV4" 8080
check "the applied policy is the agent's managed policy now" cmp -s "$WORK/new.conf" "$WORK/policy.d/policy.conf"
rc "rollback" 0 ctl rollback
has "rollback reports the generation" "^rolled back: generation $((gen_before + 2))"
check_not "8080 is filtered again after the rollback" in_cli nc -z -w 2 "$SRV4" 8080
check "policy get prints the agent's policy as it is" cmp -s "$WORK/policy.d/policy.conf" <(ctl policy get)
rc "an auditor may read the policy" 0 ctl "${AUD[@]}" policy get

# flows and log
rc "flows" 0 ctl flows --limit 5
has "flows shows our own management connection" "^tcp +$CLI4 +[0-9]+ +$SRV4 +7443 +in "
has "... with the permit that admitted it" "^tcp +$CLI4 +[0-9]+ +$SRV4 +7443 +in .* mgmt-in *$"
rc "log of management events" 0 ctl log --kind event --limit 200
has "the refused apply is in the monitor with the identity" "mgmt bob/auditor@.* policy.apply: forbidden"

# The last reload's result (elsd --reload over the local control socket), in status.
check_eq "JSON status: no reload yet" None "$(ctl --json status | json 'd["last_reload"]')"
cp "$CONF" "$WORK/before-reload.conf"
echo 'tracker = ;' >>"$CONF"
check_not "elsd --reload refuses a broken config" \
	in_srv "$ELSD" --reload --control-socket "$ELS_CTLSOCK"
rc "status after the rejected reload" 0 ctl status
has "status shows the failed reload with FILE:LINE" "^reload: +FAILED at [0-9T:-]+Z: $CONF:[0-9]+: "
check_eq "JSON status: last_reload.result" failed \
	"$(ctl --json status | json 'd["last_reload"]["result"]')"
cp "$WORK/before-reload.conf" "$CONF"
check "elsd --reload accepts the repaired config" \
	in_srv "$ELSD" --reload --control-socket "$ELS_CTLSOCK"
rc "status after the good reload" 0 ctl status
has "status shows the reload ok with its generation" "^reload: +ok at [0-9T:-]+Z: generation [0-9]+ sha256 "

# Usage errors exit 2 without contacting anyone.
rc "an unknown subcommand is a usage error" 2 "$ELSCTL" frobnicate
rc "a bad option value is a usage error" 2 "$ELSCTL" flows --limit 0
rc "a missing fleet file is a usage error" 2 "$ELSCTL" --agents "$WORK/nope" status
rc "a bad agent address is a usage error" 2 "$ELSCTL" --agent "web1:99999" status
rc "list add without addresses is a usage error" 2 "$ELSCTL" list add deny
rc "--help exits 0" 0 "$ELSCTL" --help
has "--help documents the exit codes" "^  4  fleet mode"

els_stop || fail "elsd exited non-zero"
els_finish
