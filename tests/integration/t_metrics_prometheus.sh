#!/usr/bin/env bash
# The metrics endpoint as its users meet it. A real Prometheus (Debian's package) runs in the
# server namespace, scrapes elsd's loopback listener every second, and its HTTP API is asked
# for the denied-packet counter after real denied traffic: it must equal what the monitor
# recorded for the same handler and reason, and count at least every datagram sent. The page
# passes promtool's check even with a permit id and an agent id holding quotes, backslashes
# and newlines. Then elsd serves over mutual TLS 1.3 to the client namespace, as to a remote
# appliance: curl with a certificate from the management CA gets the page; without one, with
# one from a foreign CA, or with the agent's own (server) certificate, the handshake fails and
# nothing is served; once the scraper's certificate is revoked and elsd is sent SIGHUP, it is
# refused too; elsd keeps filtering and answering meanwhile. Anything but GET /metrics
# is refused. A UNIX socket listener serves the same page.
. "$(dirname "$0")/lib.sh"
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
	echo "SKIP: prometheus/promtool not installed (scripts/deps installs them)"
	exit 77
fi
els_setup
PKI="$ELS_SOURCE_DIR/pki/els-pki"
MPORT=9764 TPORT=9765 PPORT=9090
SENT=37 # denied UDP datagrams

# A policy of its own: tcp/8080 in (allowed traffic), the TLS metrics port from the client,
# and a permit whose id an attacker-minded admin wrote (quote, backslash, newline).
write_conf() {
	cat >"$1" <<CONF
queues = "0";
monitor = { path = "$DB"; };
agent_id = "web \"01\" \\\\ prod\nline2";
chain = [ "tracker", "header_filter" ];
header_filter = {
  permits = (
    { id = "web-8080"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },
    { id = "metrics-tls"; dir = "in"; proto = "tcp"; local_ports = [ $TPORT ]; remote = [ "$CLI4" ]; },
    { id = "evil\"} 1\nels_fake_total 9\n\\\\"; dir = "in"; proto = "udp"; local_ports = [ 5353 ]; }
  );
};
$2
CONF
}

# prom QUERY: the first value Prometheus returns for an instant query, or nothing.
prom() {
	in_srv curl -s --max-time 5 "http://127.0.0.1:$PPORT/api/v1/query" \
		--data-urlencode "query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)
res = r["data"]["result"] if r.get("status") == "success" else []
print(res[0]["value"][1] if res else "")' 2>/dev/null
}
monitor_drops() {
	sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND handler='header_filter' AND reason='no_permit'"
}
scrape() { in_srv curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics"; }

log "phase 1: plain HTTP on the server's loopback, scraped by Prometheus"
CONF="$WORK/elsd.conf"
write_conf "$CONF" "metrics = { listen = \"127.0.0.1:$MPORT\"; };"
check "elsd -n accepts the metrics setting and the hostile ids" "$ELSD" -n -c "$CONF"
els_steer
els_listen "$SRV" 8080 || fail "listener on 8080 did not start"
els_start "$CONF" || exit 1

scrape >"$WORK/page1.txt"
check "GET /metrics answers with the exposition" grep -q '^els_queue_packets_total{queue="0"}' "$WORK/page1.txt"
check "promtool check metrics passes the page (hostile ids escaped)" \
	bash -c "promtool check metrics <'$WORK/page1.txt'"
check "the hostile permit id is one escaped label value" \
	grep -qF 'els_permit_info{id="evil\"} 1\nels_fake_total 9\n\\",position="3"} 1' "$WORK/page1.txt"
check_not "no sample was injected through the id" grep -q '^els_fake_total' "$WORK/page1.txt"
check "the agent id is escaped too" grep -qF 'agent_id="web \"01\" \\ prod\nline2"' "$WORK/page1.txt"

code() { in_srv curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
check_eq "POST is refused (libevent: 501, before reading a body)" 501 "$(code -X POST "http://127.0.0.1:$MPORT/metrics")"
check_eq "another path is refused" 404 "$(code "http://127.0.0.1:$MPORT/")"
check_eq "a query string is refused" 404 "$(code "http://127.0.0.1:$MPORT/metrics?x=1")"
check_ge "a request with a 16 KiB header is refused, not served" 400 \
	"$(code -H "X-Junk: $(head -c 16384 /dev/zero | tr '\0' a)" "http://127.0.0.1:$MPORT/metrics")"

cat >"$WORK/prom.yml" <<YML
global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: elsd
    static_configs: [ { targets: [ "127.0.0.1:$MPORT" ] } ]
YML
check "promtool accepts the Prometheus config" promtool check config "$WORK/prom.yml"
ip netns exec "$SRV" prometheus --config.file="$WORK/prom.yml" \
	--storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$PPORT" \
	>"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
BG_PIDS+=("$PROM_PID")
wait_up() { [[ $(prom 'up{job="elsd"}') == 1 ]]; }
for _ in $(seq 60); do wait_up && break; sleep 0.5; done
check_eq "Prometheus scrapes elsd (up == 1)" 1 "$(prom 'up{job="elsd"}')"

log "driving traffic: allowed tcp/8080, $SENT denied UDP datagrams"
tcp8080() { in_cli timeout 3 bash -c "exec 3<>/dev/tcp/$SRV4/8080 && head -c5 <&3" 2>/dev/null | grep -q hello; }
check "allowed traffic passes" tcp8080
in_cli python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(b"x", (sys.argv[1], 9999)); time.sleep(0.002)' "$SRV4" "$SENT"

# The monitor's drop aggregates reach the file within a second or two; Prometheus's copy of
# the counter within a scrape interval. Both must settle on the same number.
Q='sum(els_drops_total{handler="header_filter",reason="no_permit"})'
settled() {
	local p m
	p=$(prom "$Q") m=$(monitor_drops)
	[[ -n $p && $p == "$m" && $p -ge $SENT ]]
}
for _ in $(seq 40); do settled && break; sleep 0.5; done
P=$(prom "$Q") M=$(monitor_drops)
log "Prometheus: $P no_permit drops; monitor: $M"
check_ge "Prometheus counts every denied datagram" "$SENT" "$P"
check_eq "Prometheus's denied count equals the monitor's" "$M" "$P"
check_ge "Prometheus counts the allowed connection (accepts by header_filter)" 1 \
	"$(prom 'els_handler_decisions_total{handler="header_filter",verdict="accept"}')"
check_ge "flow table occupancy is exported" 0 "$(prom 'els_flows_active{queue="0"}')"
check_eq "the running generation is exported" 1 "$(prom 'els_policy_generation')"
HITS='els_permit_hits_total{id="web-8080"}'
check_eq "one admitted flow is one hit for permit web-8080" 1 "$(prom "$HITS")"
check_eq "the hostile permit has no hit" 0 "$(prom 'sum(els_permit_hits_total{id=~"(?s)evil.*"})')"

log "a reload that fails is exported as such"
cp "$CONF" "$WORK/good.conf"
echo 'chain = [ "nosuch" ];' >>"$CONF"
kill -HUP "$ELSD_PID"
wait_log "reload failed" || fail "the bad reload was not logged"
for _ in $(seq 20); do [[ $(prom 'els_reload_last_success') == 0 ]] && break; sleep 0.5; done
check_eq "els_reload_last_success is 0 after a refused reload" 0 "$(prom 'els_reload_last_success')"
check_eq "els_reloads_total{result=failed} is 1" 1 "$(prom 'els_reloads_total{result="failed"}')"
cp "$WORK/good.conf" "$CONF"
kill -HUP "$ELSD_PID"
for _ in $(seq 20); do [[ $(prom 'els_policy_generation') == 2 ]] && break; sleep 0.5; done
check_eq "a good reload moves the generation to 2" 2 "$(prom 'els_policy_generation')"
check_eq "and sets els_reload_last_success to 1" 1 "$(prom 'els_reload_last_success')"
check "allowed traffic passes under generation 2" tcp8080
for _ in $(seq 20); do [[ $(prom "$HITS") == 2 ]] && break; sleep 0.5; done
check_eq "hits per permit carry across the reload (1 before + 1 after)" 2 "$(prom "$HITS")"
check_eq "and equal the monitor's admits for the permit" \
	"$(sql "SELECT count(*) FROM records WHERE kind='admit' AND rule_name='web-8080'")" "$(prom "$HITS")"
check "elsd stops cleanly" els_stop
kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null

log "phase 2: mutual TLS 1.3 on $SRV4:$TPORT, scraped from the client namespace"
{
	"$PKI" init "$WORK/ca" &&
		"$PKI" agent "$WORK/ca" agent1 --host srv.test --ip "$SRV4" &&
		"$PKI" console "$WORK/ca" scraper --role auditor &&
		"$PKI" init "$WORK/foreign" &&
		"$PKI" console "$WORK/foreign" mallory --role admin
} >/dev/null 2>&1 || { fail "els-pki failed"; els_finish; exit; }
install -m 0600 "$WORK/ca/agents/agent1.key" "$WORK/agent.key"
write_conf "$CONF" "metrics = { listen = \"$SRV4:$TPORT\";
  tls = { cert = \"ca/agents/agent1.crt\"; key = \"agent.key\"; ca = \"ca/ca.crt\"; crl = \"ca/crl.pem\"; }; };
management = { listen = \"127.0.0.1:7443\"; user = \"nobody\";
  cert = \"ca/agents/agent1.crt\"; key = \"agent.key\"; ca = \"ca/ca.crt\"; crl = \"ca/crl.pem\"; };"
els_start "$CONF" || { els_finish; exit; }
URL="https://$SRV4:$TPORT/metrics"
tls() { in_cli curl -s --max-time 5 --cacert "$WORK/ca/ca.crt" "$@" "$URL"; }
tls --cert "$WORK/ca/consoles/scraper.crt" --key "$WORK/ca/consoles/scraper.key" >"$WORK/page2.txt"
check "a scraper with a management-CA client certificate gets the page" \
	grep -q '^els_queue_packets_total{queue="0"}' "$WORK/page2.txt"
check "the TLS page passes promtool too" bash -c "promtool check metrics <'$WORK/page2.txt'"
tls --cert "$WORK/ca/consoles/scraper.crt" --key "$WORK/ca/consoles/scraper.key" -v \
	-o /dev/null 2>"$WORK/curl-v.txt"
check "TLS 1.3 is what was negotiated" grep -q "SSL connection using TLSv1.3" "$WORK/curl-v.txt"
page_with() { tls "$@" 2>/dev/null | grep -q '^els_queue_packets_total'; }
check_not "TLS 1.2 is refused, even with a good certificate" page_with --tls-max 1.2 \
	--cert "$WORK/ca/consoles/scraper.crt" --key "$WORK/ca/consoles/scraper.key"
check_not "without a client certificate: no page" page_with
check_not "with a certificate from a foreign CA: no page" page_with \
	--cert "$WORK/foreign/consoles/mallory.crt" --key "$WORK/foreign/consoles/mallory.key"
check_not "with the agent's own certificate (no operator role) as a client: no page" page_with \
	--cert "$WORK/ca/agents/agent1.crt" --key "$WORK/agent.key"
check_not "plain HTTP to the TLS port: no page" bash -c \
	"ip netns exec '$CLI' curl -s --max-time 5 'http://$SRV4:$TPORT/metrics' | grep -q els_"
check "elsd still filters: allowed traffic passes after the refused handshakes" tcp8080
refusals() {
	tls --cert "$WORK/ca/consoles/scraper.crt" --key "$WORK/ca/consoles/scraper.key" |
		sed -n 's/^els_mgmt_refusals_total //p'
}
check_eq "no management refusal counted yet" 0 "$(refusals)"
in_srv openssl s_client -connect 127.0.0.1:7443 -CAfile "$WORK/ca/ca.crt" </dev/null >/dev/null 2>&1
for _ in $(seq 30); do [[ $(refusals) -ge 1 ]] 2>/dev/null && break; sleep 0.2; done
check_eq "a management handshake without a certificate is counted as a refusal" 1 "$(refusals)"
# One retry, said in the log: a scrape of this page timed out once in about twenty runs on a
# loaded CI machine (not reproduced in 14 runs here, under load too), and what this check is
# about is that the refusal did not take the endpoint down.
scraped() {
	page_with "$@" && return 0
	log "the scrape after the refusal failed once; retrying"
	page_with "$@"
}
check "and still serves the authenticated scraper" scraped \
	--cert "$WORK/ca/consoles/scraper.crt" --key "$WORK/ca/consoles/scraper.key"
"$PKI" revoke "$WORK/ca" "$WORK/ca/consoles/scraper.crt" >/dev/null 2>&1 || fail "els-pki revoke failed"
kill -HUP "$ELSD_PID"
wait_log "reloaded .*generation 2" || fail "the SIGHUP reload was not logged"
check_not "once revoked (new CRL, SIGHUP), the scraper's certificate is refused" page_with \
	--cert "$WORK/ca/consoles/scraper.crt" --key "$WORK/ca/consoles/scraper.key"
check "elsd still filters after the revocation" tcp8080
check "elsd stops cleanly" els_stop

log "phase 3: a UNIX socket"
SOCK="$WORK/metrics.sock"
write_conf "$CONF" "metrics = { listen = \"$SOCK\"; };"
els_start "$CONF" || { els_finish; exit; }
check "curl --unix-socket gets the page" bash -c \
	"curl -s --max-time 5 --unix-socket '$SOCK' http://elsd/metrics | grep -q '^els_queue_packets_total'"
check_eq "the socket is mode 0660" 660 "$(stat -c %a "$SOCK")"
check "elsd stops cleanly" els_stop
check_not "and removes its socket" test -e "$SOCK"
els_finish
