#!/usr/bin/env bash
# Soak test (not part of CI): elsd under mixed traffic, reloads and management requests for a
# while (default 10 minutes), sampling its memory and open descriptors. Passes when RSS stays
# flat (the last samples within 10% + 2 MiB of the first after warm-up) and the descriptor
# count returns to where it started.
#   sudo tests/soak/soak.sh [--minutes N]      (build first: scripts/build)
set -uo pipefail
MINUTES=10
[[ ${1:-} == --minutes ]] && MINUTES=$2
ELS_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
: "${ELSD:=$ELS_SOURCE_DIR/build/elsd}"
: "${ELSCTL:=$ELS_SOURCE_DIR/build/elsctl}"
. "$ELS_SOURCE_DIR/tests/integration/lib.sh"
els_setup
els_steer
PKI=$ELS_SOURCE_DIR/pki/els-pki
CA=$WORK/ca
{ $PKI init "$CA" && $PKI agent "$CA" agent --host localhost --ip 127.0.0.1 &&
	$PKI console "$CA" ops --role auditor; } >/dev/null || { echo "PKI setup failed"; exit 1; }
CONF=$WORK/elsd.conf
els_config "$CONF"
cat >>"$CONF" <<EOF
management = { listen = "127.0.0.1:7443"; ca = "$CA/ca.crt"; cert = "$CA/agents/agent.crt";
               key = "$CA/agents/agent.key"; crl = "$CA/crl.pem"; };
EOF
els_https_server || { echo "https server did not start"; exit 1; }
els_start "$CONF" || exit 1
END=$((SECONDS + MINUTES * 60))

# Traffic: HTTPS requests, probes of closed ports (drops), pings, and new flows all the time.
bg_in "$CLI" bash -c "while :; do curl -sk --max-time 2 -o /dev/null https://$SRV4/; done"
bg_in "$CLI" bash -c "while :; do for p in 22 80 8080 3306 5432; do nc -z -w 1 $SRV4 \$p; done; done"
bg_in "$CLI" bash -c "while :; do ping -c 20 -i 0.05 -q $SRV4; done"
# Management requests, as a console would make them.
bg_in "$SRV" bash -c "while :; do $ELSCTL --agent 127.0.0.1:7443 --ca $CA/ca.crt \
	--cert $CA/consoles/ops.crt --key $CA/consoles/ops.key status; sleep 1; done"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$ELSD_PID/status"; }
fds() { ls "/proc/$ELSD_PID/fd" | wc -l; }
printf "# %8s %10s %5s\n" seconds rss_kib fds
samples=()
fd0=
while ((SECONDS < END)); do
	sleep 10
	kill -HUP "$ELSD_PID" # a reload every 10 s
	kill -0 "$ELSD_PID" 2>/dev/null || { fail "elsd died"; break; }
	r=$(rss) f=$(fds)
	[[ -z $fd0 ]] && fd0=$f
	samples+=("$r")
	printf '# %8d %10d %5d\n' "$SECONDS" "$r" "$f"
done
for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
sleep 2
f_end=$(fds)
n=${#samples[@]}
if ((n >= 6)); then
	first=${samples[2]} # after warm-up (flow table and caches filled)
	last=${samples[n - 1]}
	limit=$((first + first / 10 + 2048))
	check "RSS flat: last ${last} KiB <= ${limit} KiB (first after warm-up ${first} KiB)" test "$last" -le "$limit"
else
	fail "too few samples for an RSS verdict (run at least a minute)"
fi
check "open descriptors back to where they started ($fd0 -> $f_end)" test "$f_end" -le "$((fd0 + 2))"
els_stop || fail "elsd exited non-zero"
check_ge "reloads all succeeded" $((n - 1)) "$(grep -c "reloaded " "$ELSD_LOG")"
els_finish
