#!/usr/bin/env bash
# The management endpoint is confined as an attacker who took it over would find it: it is a
# fresh exec of elsd (its /proc exe and cmdline, an empty environment), not a fork of the main
# process, so the monitor's chain key is nowhere in its memory (searched in /proc/PID/mem, and
# found in the main process's as a control); its fd 2 is /dev/null, not elsd's log; it runs
# under seccomp (Seccomp: 2) with no_new_privs; its log lines reach elsd's log prefixed. A
# restarted endpoint (after kill -9) is the same. Meanwhile elsd filters and answers.
. "$(dirname "$0")/lib.sh"
els_setup
. "$(dirname "$0")/mgmt_lib.sh"
mgmt_pki alice:admin
mgmt_install_tls

CONF="$WORK/elsd.conf"
els_config "$CONF"
cat >>"$CONF" <<EOF
management = {
  listen = "$ADDR";
  ca = "tls/ca.crt"; cert = "tls/agent.crt"; key = "tls/agent.key"; crl = "tls/crl.pem";
  user = "nobody";
};
EOF
els_steer
els_start "$CONF" || exit 1
KEY="$WORK/monitor.key" # beside the monitor file: elsd made it at start
check "the monitor's chain key exists (32 bytes)" test "$(stat -c %s "$KEY" 2>/dev/null)" = 32

# key_scan PID: exit 0 when the key's bytes (raw or hex) are in the process's memory, 1 when
# they are not, 2 when the scan itself failed (so a broken scan never reads as "not there").
# Mappings over 1 GiB are the sanitizer's shadow and reserved ranges, never the heap.
key_scan() {
	python3 - "$1" "$KEY" <<'EOF'
import sys
try:
    pid, key = sys.argv[1], open(sys.argv[2], "rb").read()
    needles = [key, key.hex().encode(), key.hex().upper().encode()]
    scanned = 0
    with open("/proc/%s/maps" % pid) as maps, open("/proc/%s/mem" % pid, "rb", 0) as mem:
        for line in maps:
            rng, perms = line.split()[:2]
            if "r" not in perms or line.rstrip().endswith("[vvar]"):
                continue
            lo, hi = (int(x, 16) for x in rng.split("-"))
            if hi - lo > 1 << 30:
                continue
            tail = b""
            for off in range(lo, hi, 16 << 20):
                try:
                    mem.seek(off)
                    data = tail + mem.read(min(16 << 20, hi - off))
                except OSError:
                    break
                scanned += len(data)
                if any(n in data for n in needles):
                    sys.exit(0)
                tail = data[-128:]
    sys.exit(1 if scanned > 0 else 2)
except SystemExit:
    raise
except BaseException as e:
    print("scan failed: %r" % e, file=sys.stderr)
    sys.exit(2)
EOF
}
holds_key() { key_scan "$1"; }
lacks_key() { key_scan "$1"; [[ $? == 1 ]]; }

# confined PID WHICH: the checks on one endpoint process
confined() {
	local ep=$1 what=$2
	check "$what: is a fresh exec of elsd ($(readlink "/proc/$ep/exe"))" \
		test "$(readlink "/proc/$ep/exe")" = "$(readlink -f "$ELSD")"
	check_eq "$what: its command line is elsd's hidden endpoint mode" "elsd --mgmt-endpoint" \
		"$(tr '\0' ' ' <"/proc/$ep/cmdline" | sed 's/ $//')"
	check_eq "$what: its environment is empty" 0 "$(wc -c <"/proc/$ep/environ")"
	check_eq "$what: its fd 2 is /dev/null, not elsd's log" /dev/null "$(readlink "/proc/$ep/fd/2")"
	check "$what: ... while elsd's own fd 2 is the log" test "$(readlink "/proc/$ELSD_PID/fd/2")" != /dev/null
	check_eq "$what: seccomp filter mode" 2 "$(awk '$1 == "Seccomp:" { print $2 }' "/proc/$ep/status")"
	check_eq "$what: no_new_privs" 1 "$(awk '$1 == "NoNewPrivs:" { print $2 }' "/proc/$ep/status")"
	check_eq "$what: runs as nobody" "$(id -u nobody)" "$(awk '$1 == "Uid:" { print $2 }' "/proc/$ep/status")"
	check_eq "$what: holds no capability" 0000000000000000 "$(awk '$1 == "CapEff:" { print $2 }' "/proc/$ep/status")"
	check_eq "$what: only fds 0-3, the listening socket and nothing of elsd's" \
		"0 1 2 3 4" "$(ls "/proc/$ep/fd" | sort -n | tr '\n' ' ' | sed 's/ $//')"
	check "$what: the monitor's chain key is not in its memory" lacks_key "$ep"
}

r=$(as alice status)
check_eq "status is answered" "True" "$(jget "$r" 'r["ok"]')"
EP=$(pgrep -P "$ELSD_PID" | head -1)
check "the endpoint runs" test -n "$EP"
check "control: the scan finds the chain key in the main process's memory" holds_key "$ELSD_PID"
confined "$EP" "endpoint"

# The endpoint's log lines reach elsd's log through the main process, prefixed.
check "the endpoint's start-up line is in elsd's log, prefixed by the main process" \
	grep -qE "elsd: info: management endpoint: confined: uid $(id -u nobody), no capabilities, Landlock ABI [0-9]+, seccomp filter" "$ELSD_LOG"
check "filtering works (ping)" in_cli ping -c1 -W2 $SRV4

kill -9 "$EP"
new=
for _ in $(seq 50); do
	new=$(pgrep -P "$ELSD_PID" | head -1)
	[[ -n $new && $new != "$EP" ]] && as alice status >/dev/null 2>&1 && break
	sleep 0.2
done
check "elsd started a new endpoint after kill -9 ($EP -> $new)" test -n "$new" -a "$new" != "$EP"
confined "$new" "restarted endpoint"
check "filtering works after the restart (ping)" in_cli ping -c1 -W2 $SRV4
r=$(as alice status)
check_eq "status is answered by the restarted endpoint" "True" "$(jget "$r" 'r["ok"]')"
els_stop
els_finish
