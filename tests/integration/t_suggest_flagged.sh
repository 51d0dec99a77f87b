#!/usr/bin/env bash
# `elsctl suggest` learns only what deserves a permit. An observe-mode run, replayed by the
# real elsd from a capture, holds legitimate clients of TCP 8080, a port scan (30 closed ports)
# followed by this host connecting back to the scanner's 4444 (a reverse shell), an XMAS probe
# (the anomaly handler drops it) from a host that also tried 8443, and a client of 9000 that a
# later run of the same monitor file drops as deny-listed; the base config denies one more
# address. The suggestion must permit 8080 and nothing of the flagged remotes, say what it
# left out and why, and pass `elsd -n`. No namespaces: --replay needs none.
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
ELSCTL=$ELS_BUILD_DIR/elsctl
trap els_cleanup EXIT
SRV=198.18.0.2

cat >"$WORK/observe.conf" <<CONF
chain = [ "scan", "iplist", "anomaly", "tracker", "header_filter" ];
scan = { ports = 20; window = 10; deny = 300; };
iplist = { deny = [ ]; };
header_filter = { mode = "observe"; permits = (
  { id = "ping-in"; dir = "in"; proto = "icmp"; icmp_types = [ "echo-request" ]; }
); };
monitor = { path = "$WORK/run.db"; log = "default"; };
CONF
sed 's|deny = \[ \];|deny = [ "198.18.0.99" ];|' "$WORK/observe.conf" >"$WORK/deny.conf"
# The base the suggestion is built on: the policy in force, which already denies 198.18.0.88.
sed 's|deny = \[ \];|deny = [ "198.18.0.88" ];|; s|mode = "observe"; ||' "$WORK/observe.conf" \
	>"$WORK/base.conf"

/usr/bin/python3 - "$WORK" "$SRV" <<'PY' 2>/dev/null
import sys
from scapy.all import IP, TCP, Ether, wrpcap
work, srv = sys.argv[1:]
syn = lambda c, sp, dp: Ether() / IP(src=c, dst=srv) / TCP(sport=sp, dport=dp, flags="S", seq=1)
synack = lambda c, sp, dp: Ether() / IP(src=srv, dst=c) / TCP(sport=dp, dport=sp, flags="SA", seq=9, ack=2)
run = []
for c in ("198.18.0.1", "198.18.0.3"):                      # clients of 8080
    run += [syn(c, 40000, 8080), synack(c, 40000, 8080)]
run += [syn("198.18.0.66", 50000 + p, p) for p in range(1, 31)]  # a port scan
run += [Ether() / IP(src=srv, dst="198.18.0.66") / TCP(sport=41000, dport=4444, flags="S")]
run += [Ether() / IP(src="198.18.0.77", dst=srv) / TCP(sport=1234, dport=22, flags="FPU")]
run += [syn("198.18.0.77", 1235, 8443), synack("198.18.0.77", 1235, 8443)]
run += [syn("198.18.0.99", 45000, 9000), synack("198.18.0.99", 45000, 9000)]
run += [syn("198.18.0.88", 45001, 9001), synack("198.18.0.88", 45001, 9001)]
wrpcap(work + "/run.pcap", run)
wrpcap(work + "/later.pcap", [syn("198.18.0.99", 45002, 9000)])
PY
check "the captures were made" test -s "$WORK/later.pcap"
# Replays record into a file of their own (never the config's live monitor.path).
check "elsd --replay of the observe run" "$ELSD" -c "$WORK/observe.conf" --replay "$WORK/run.pcap" \
	--local $SRV --monitor "$WORK/replay.db"
check "a later run into the same monitor, 198.18.0.99 now denied" \
	"$ELSD" -c "$WORK/deny.conf" --replay "$WORK/later.pcap" --local $SRV --monitor "$WORK/replay.db"
DB=$WORK/replay.db
check_ge "the run recorded would_drop for the scan" 30 \
	"$(sql "SELECT count(*) FROM records WHERE kind = 'would_drop' AND src = '198.18.0.66'")"
check_ge "the anomaly handler recorded the XMAS probe" 1 \
	"$(sql "SELECT count(*) FROM records WHERE handler = 'anomaly' AND src = '198.18.0.77'")"
check_ge "the later run dropped 198.18.0.99 as deny-listed" 1 \
	"$(sql "SELECT count(*) FROM records WHERE reason = 'deny_list' AND src = '198.18.0.99'")"

"$ELSCTL" suggest "$DB" --base "$WORK/base.conf" >"$WORK/learnt.conf" 2>"$WORK/err"
check_eq "elsctl suggest MONITOR --base CONF (option after the file): exit 0" 0 $?
check "elsd -n accepts the suggestion" "$ELSD" -n -c "$WORK/learnt.conf"
check "8080 inbound is learnt" grep -Eq 'local_ports = \[ 8080 \]' "$WORK/learnt.conf"
permits=$(sed -n '/permits = (/,$p' "$WORK/learnt.conf")
for port in 22 25 4444 8443 9000 9001; do
	check_not "no permit names port $port" grep -Eq "ports = \[[^]]*\b$port\b" <<<"$permits"
done
check_not "the scanner is in no permit" grep -q '198.18.0.66' <<<"$permits"
check "says the scanner was left out" grep -Eq '^#   scanning: 3[12] records of 1 remote: 198.18.0.66/32$' \
	"$WORK/learnt.conf"
check "says the anomalous host was left out" grep -Eq '^#   anomalies: [0-9]+ records of 1 remote: 198.18.0.77/32$' \
	"$WORK/learnt.conf"
check "says the deny-listed hosts were left out (monitor and base)" \
	grep -Eq '^#   deny-listed: [0-9]+ records of 2 remotes: 198.18.0.(99/32, 198.18.0.88|88/32, 198.18.0.99)/32$' \
	"$WORK/learnt.conf"
check "and says so on stderr" grep -q 'left out .* records' "$WORK/err"

# The same run without the base: the monitor's flags alone still keep the scan out.
"$ELSCTL" suggest "$DB" >"$WORK/nobase.conf" 2>/dev/null
check_not "without --base: no permit for 4444" grep -Eq 'remote_ports = \[[^]]*4444' "$WORK/nobase.conf"
check "without --base: 198.18.0.88 (only the base denies it) is learnt on 9001" \
	grep -Eq 'local_ports = \[[^]]*9001' "$WORK/nobase.conf"
[[ -n ${ELS_SHOW:-} ]] && cat "$WORK/learnt.conf" "$WORK/err"
els_finish
