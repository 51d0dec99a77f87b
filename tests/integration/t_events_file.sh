#!/usr/bin/env bash
# The event stream's file output: allowed and denied traffic become EVE JSON lines (every
# line valid JSON with the EVE fields), a permit id with quotes and a backslash stays valid
# JSON, and SIGUSR1 after a logrotate-style `mv` makes elsd write a new file.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
EVE="$WORK/log/eve.json"
mkdir -p "$WORK/log"
els_config "$WORK/elsd.conf" \
	's|{ id = "https-in";|{ id = "web \\"in\\" \\\\ x"; dir = "in"; proto = "tcp"; local_ports = [ 8080 ]; },\n    { id = "https-in";|'
cat >>"$WORK/elsd.conf" <<CONF
events = { file = "$EVE"; };
CONF
els_listen "$SRV" 443 || { fail "listener on 443 did not start"; els_finish; exit; }
els_listen "$SRV" 8080 || { fail "listener on 8080 did not start"; els_finish; exit; }
els_start "$WORK/elsd.conf" || exit 1

check "a permitted connection (443) gets through" in_cli nc -z -w 3 "$SRV4" 443
check "a permitted connection (8080, permit id with quotes) gets through" \
	in_cli nc -z -w 3 "$SRV4" 8080
check_not "a denied connection (port 23) does not" in_cli nc -z -w 2 "$SRV4" 23

# Every line must be a JSON object with the EVE fields; prints counts of what the test needs.
validate() {
	python3 - "$1" <<'PY'
import json, sys
drops = admits = bad = quoted = 0
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        e = json.loads(line)
    except ValueError as x:
        print(f"line {n} is not JSON: {x}: {line!r}", file=sys.stderr); bad += 1; continue
    for k in ("timestamp", "event_type", "els"):
        if k not in e:
            print(f"line {n} lacks {k}", file=sys.stderr); bad += 1
    ts = e.get("timestamp", "")
    # Suricata's form: 2026-12-04T22:19:38.123456+0000
    if len(ts) != 31 or ts[10] != "T" or ts[19] != "." or ts[26] not in "+-":
        print(f"line {n}: timestamp {ts!r} is not EVE's", file=sys.stderr); bad += 1
    if "src_ip" in e and e.get("proto") in ("TCP", "UDP") and not (
            "flow_id" in e and "src_port" in e and "dest_ip" in e and "dest_port" in e):
        print(f"line {n}: a TCP/UDP event without flow_id/ports: {line!r}", file=sys.stderr); bad += 1
    if (e["event_type"] == "drop" and e.get("action") == "blocked" and e.get("proto") == "TCP"
            and e.get("dest_port") == 23 and e.get("src_ip") == "198.18.0.1"
            and e["els"].get("handler") == "header_filter" and e["els"].get("dir") == "in"
            and e["els"].get("count", 0) >= 1):
        drops += 1
    if (e["event_type"] == "flow" and e.get("action") == "allowed" and e.get("dest_port") == 443
            and e.get("flow", {}).get("state") == "new" and e["els"].get("permit") == "https-in"):
        admits += 1
    if e["event_type"] == "flow" and e["els"].get("permit") == 'web "in" \\ x':
        quoted += 1
print(drops, admits, quoted, bad)
PY
}
wait_for_line() { wait_until grep -q "$1" "$2" 2>/dev/null; }
wait_for_line '"dest_port":23' "$EVE" || true
wait_for_line '"dest_port":443' "$EVE" || true
read -r drops admits quoted bad < <(validate "$EVE")
check_ge "the denied connection is a drop event (blocked, TCP, dest_port 23, handler, dir)" 1 "$drops"
check_ge "the permitted connection is a flow event (allowed, permit https-in)" 1 "$admits"
check_ge "a permit id with quotes and a backslash comes out as valid JSON, intact" 1 "$quoted"
check_eq "every line is valid JSON with EVE's fields and timestamp form" 0 "$bad"
check "jq reads the whole file" jq -e . "$EVE"
start=$(grep -c '"detail":"start:' "$EVE")
check_eq "the agent's start event is in the stream" 1 "$start"

# logrotate: move the file, signal, and the next events go to a new file at the same path.
mv "$EVE" "$EVE.1"
before=$(wc -l <"$EVE.1")
kill -USR1 "$ELSD_PID"
wait_until test -e "$EVE"
check "SIGUSR1 reopens: a new file exists at the path" test -e "$EVE"
check_not "a denied connection after rotation is refused" in_cli nc -z -w 2 "$SRV4" 25
wait_for_line '"dest_port":25' "$EVE" || true
check "the drop after rotation is in the new file" grep -q '"dest_port":25' "$EVE"
check_not "and not in the rotated one" grep -q '"dest_port":25' "$EVE.1"
check_eq "the rotated file got no lines after the signal" "$before" "$(wc -l <"$EVE.1")"
check "elsd still answers after the signal" in_cli nc -z -w 3 "$SRV4" 443

# A reload replaces the policy the stream's settings came from: the stream keeps its own copy,
# goes on, and carries the agent alert about the new generation.
echo "# reloaded" >>"$WORK/elsd.conf"
kill -HUP "$ELSD_PID"
check "the reload is applied" wait_log "alert: event=policy_changed generation=2"
check_not "a denied connection after the reload is refused" in_cli nc -z -w 2 "$SRV4" 26
wait_for_line '"dest_port":26' "$EVE" || true
check "the stream goes on after a reload" grep -q '"dest_port":26' "$EVE"
check "the policy_changed alert is an EVE alert event" \
	grep -q '"event_type":"alert".*"signature":"policy_changed"' "$EVE"
els_stop || fail "elsd exited non-zero"
check "the stop event reached the new file" grep -q '"detail":"stop after' "$EVE"
read -r _ _ _ bad < <(validate "$EVE")
check_eq "every line of the new file is valid JSON" 0 "$bad"
els_finish
