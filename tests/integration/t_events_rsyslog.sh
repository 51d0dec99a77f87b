#!/usr/bin/env bash
# The event stream over RFC 5425 to a real rsyslog (Debian's rsyslog + rsyslog-openssl: imtcp
# with the ossl driver, x509/certvalid: elsd must present a client certificate). rsyslog runs
# in the client namespace as a remote collector, so elsd's own TLS connection passes its
# filter under a permit. Checks: drop events arrive as RFC 5424 messages whose MSG is the EVE
# JSON; rsyslog is stopped in the middle of traffic and what elsd sent meanwhile arrives from
# the spool once it is back; a spool too small for a flood sheds, and the shed events are
# counted in a gap event; filtering never stalls (a prober keeps getting answers).
. "$(dirname "$0")/lib.sh"
RSYSLOGD=$(command -v rsyslogd) || { echo "rsyslogd missing: run scripts/deps"; exit 1; }
[[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so || -n $(find /usr/lib -name lmnsd_ossl.so 2>/dev/null) ]] ||
	{ echo "rsyslog's ossl driver missing (rsyslog-openssl): run scripts/deps"; exit 1; }
els_setup
els_steer
RS="$WORK/rsyslog" PKI="$WORK/pki" GOT="$RS/received.log" PARSED="$RS/parsed.log"
RS_PID=
mkdir -p "$RS/work" "$PKI"

# ---- certificates: a CA, the collector (name and address), elsd's client certificate ----
cd "$PKI" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=test CA" \
	-keyout ca.key -out ca.crt 2>/dev/null
mkcert() { # name subject-alt-names extended-key-usage
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
		-keyout "$1.key" -out "$1.csr" 2>/dev/null &&
		printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "$3" >"$1.ext" &&
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile "$1.ext" -out "$1.crt" 2>/dev/null && chmod 600 "$1.key"
}
mkcert collector "DNS:collector.test,IP:$CLI4" serverAuth
mkcert elsd "DNS:elsd.test" clientAuth
mkcert rogue "DNS:collector.test" serverAuth # right name, but self-made CA below
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=collector.test" -addext "subjectAltName=DNS:collector.test,IP:$CLI4" \
	-keyout rogue.key -out rogue.crt 2>/dev/null
cd - >/dev/null || exit 1

# ---- the collector ----
rs_conf() { # cert key
	cat >"$RS/rsyslog.conf" <<CONF
global(workDirectory="$RS/work" maxMessageSize="16k"
       DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="$PKI/ca.crt"
       DefaultNetstreamDriverCertFile="$PKI/$1" DefaultNetstreamDriverKeyFile="$PKI/$2")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1"
       StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" port="6514" address="$CLI4")
template(name="raw" type="string" string="%rawmsg%\n")
template(name="fields" type="string"
         string="%protocol-version%|%app-name%|%msgid%|%pri%|%msg%\n")
action(type="omfile" file="$GOT" template="raw" flushOnTXEnd="on" asyncWriting="off")
action(type="omfile" file="$PARSED" template="fields" flushOnTXEnd="on" asyncWriting="off")
CONF
}
rs_start() {
	ip netns exec "$CLI" "$RSYSLOGD" -n -f "$RS/rsyslog.conf" -i "$RS/rsyslogd.pid" \
		>>"$RS/rsyslogd.out" 2>&1 &
	RS_PID=$!
	BG_PIDS+=("$RS_PID")
	wait_until eval "in_cli ss -ltnH 'sport = :6514' | grep -q 6514"
}
rs_stop() { [[ -n $RS_PID ]] && kill "$RS_PID" 2>/dev/null && wait "$RS_PID" 2>/dev/null; RS_PID=; }
rs_conf collector.crt collector.key
rs_start || { fail "rsyslogd did not listen on 6514"; cat "$RS/rsyslogd.out"; els_finish; exit; }

els_config "$WORK/elsd.conf" \
	's|{ id = "https-in";|{ id = "syslog-out"; dir = "out"; proto = "tcp"; remote_ports = [ 6514 ]; remote = [ "198.18.0.1" ]; },\n    { id = "https-in";|'
cat >>"$WORK/elsd.conf" <<CONF
events = {
  syslog = { server = "$CLI4:6514"; name = "collector.test";
             ca = "$PKI/ca.crt"; cert = "$PKI/elsd.crt"; key = "$PKI/elsd.key";
             spool = "$WORK/events.spool"; spool_max_mb = 1; };
};
CONF
els_listen "$SRV" 443 || { fail "listener on 443 did not start"; els_finish; exit; }
els_start "$WORK/elsd.conf" || exit 1
check "elsd connects to the collector over TLS" wait_log "events: connected to collector"

# A prober on the permitted port, for the whole test: one try every 0.2 s, each must answer.
in_cli bash -c "while :; do if nc -z -w 2 $SRV4 443; then echo ok; else echo FAIL; fi; sleep 0.2; done" \
	>"$WORK/probe.log" 2>/dev/null &
BG_PIDS+=($!)

# Drop events for ports P..Q, one connection attempt each.
deny() {
	local pids=()
	for p in $(seq "$1" "$2"); do in_cli nc -z -w 1 "$SRV4" "$p" & pids+=($!); done
	wait "${pids[@]}"
}
# The ports of drop events rsyslog received as RFC 5424 with EVE JSON in MSG.
received_ports() {
	python3 - "$PARSED" <<'PY'
import json, sys
ports = set()
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    ver, app, msgid, pri, msg = line.rstrip("\n").split("|", 4)
    if ver != "1" or app != "elsd":
        continue
    e = json.loads(msg.strip())
    if (msgid == "drop" and e["event_type"] == "drop" and e.get("action") == "blocked"
            and e.get("proto") == "TCP" and e.get("src_ip") == "198.18.0.1"
            and pri == "28"):  # daemon.warning
        ports.add(e["dest_port"])
for p in sorted(ports):
    print(p)
PY
}
have_ports() { # P Q: every port in P..Q received
	local want=$(($2 - $1 + 1))
	[[ $(received_ports 2>/dev/null | awk -v a="$1" -v b="$2" '$1>=a && $1<=b' | wc -l) -eq $want ]]
}
wait_ports() { for _ in $(seq 150); do have_ports "$1" "$2" && return 0; sleep 0.1; done; return 1; }

deny 2001 2010
check "drop events for 10 denied ports arrive at rsyslog as RFC 5424 with EVE JSON" wait_ports 2001 2010
check "the raw frames rsyslog logged are RFC 5424 (<28>1 TIMESTAMP HOST elsd PID drop -)" \
	grep -qE '^<28>1 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z [^ ]+ elsd [0-9]+ drop - \{' "$GOT"
check "every message's MSG is one JSON object" python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    ver, app, msgid, pri, msg = line.rstrip("\n").split("|", 4)
    json.loads(msg.strip()); n += 1
sys.exit(0 if n else 1)' "$PARSED"

# ---- the collector goes away in the middle of traffic ----
rs_stop
deny 3001 3020
sleep 1.5 # aggregation (1 s) and the sender's notice of the closed connection
check "elsd notices the collector is gone and spools" wait_log "spooling to $WORK/events.spool"
check_ge "the spool file holds the events meanwhile" 1 "$(stat -c %s "$WORK/events.spool" 2>/dev/null || echo 0)"
check_not "none of them reached the collector while it was down" have_ports 3001 3001
check "filtering goes on meanwhile: a denied port is still refused" bash -c "! ip netns exec $CLI nc -z -w 1 $SRV4 23"
rs_start || fail "rsyslogd did not restart"
check "after the restart, every event sent while it was down arrives (from the spool)" wait_ports 3001 3020
deny 3101 3105
check "and new events follow them" wait_ports 3101 3105
check_eq "the spool is emptied once sent" 0 "$(stat -c %s "$WORK/events.spool")"

# ---- down again, with more than the 1 MiB spool holds: the excess is a counted gap ----
rs_stop
sleep 1
in_cli hping3 -q -S -p ++10000 -i u300 -c 5000 "$SRV4" >/dev/null 2>&1
sleep 1.5
rs_start || fail "rsyslogd did not restart"
gap_count() {
	python3 - "$PARSED" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    ver, app, msgid, pri, msg = line.rstrip("\n").split("|", 4)
    e = json.loads(msg.strip())
    if e["event_type"] == "els" and e["els"]["kind"] == "gap" and "event stream" in e["els"].get("detail", ""):
        n += e["els"]["count"]
print(n)
PY
}
wait_until eval '[[ $(gap_count) -gt 0 ]]'; sleep 1
shed=$(gap_count)
check_ge "what the full spool shed is reported in a gap event" 1 "$shed"
flood=$(received_ports | awk '$1>=10000 && $1<15000' | wc -l)
check_ge "what the spool held arrived" 100 "$flood"
check "no flood event is both delivered and counted: delivered + shed <= sent" \
	test $((flood + shed)) -le 5100
log "flood: $flood delivered from the spool, $shed shed and counted"

# ---- the prober never went unanswered ----
probes=$(grep -c ok "$WORK/probe.log")
check_ge "the prober got answers throughout" 20 "$probes"
check_eq "no probe of the permitted port failed while the collector was down or flooded" 0 \
	"$(grep -c FAIL "$WORK/probe.log")"

# ---- a collector without a certificate from the configured CA is refused ----
rs_stop
rs_conf rogue.crt rogue.key
: >"$GOT"
rs_start || fail "rogue rsyslogd did not start"
deny 4001 4003
sleep 3
check "elsd refuses a collector whose certificate the CA did not sign" \
	wait_log "certificate: (self.signed|unable to get local issuer)"
check_not "and sends it nothing" grep -q elsd "$GOT"
els_stop || fail "elsd exited non-zero"
check "what it could not send stays in the spool for the next start" \
	grep -q '"dest_port":4001' "$WORK/events.spool"
rs_stop
els_finish
