#!/usr/bin/env bash
# A capture whose 70,000 admitted flows (handshakes completed) are all still live when it ends: more end records than
# the monitor's ring holds (65,536). elsd waits for the writer rather than lose them, so every
# admitted flow has exactly one end record and no gap is written. No privileges needed.
. "$(dirname "$0")/lib.sh"
trap els_cleanup EXIT
N=70000
python3 - "$WORK/syn.pcap" $N <<'PY'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW
    for i in range(n):
        cli = bytes([198, 18, 1 + i // 60000, 1 + (i // 250) % 240])
        srv, sport = bytes([198, 18, 0, 2]), 1024 + i % 60000
        # SYN, SYN-ACK, ACK: a completed handshake, so the flow is admitted (a SYN alone
        # would be a half-open flow, aggregated at its end)
        for src, dst, sp, dp, fl in ((cli, srv, sport, 443, 0x02), (srv, cli, 443, sport, 0x12),
                                     (cli, srv, sport, 443, 0x10)):
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xffff, 0, 64, 6, 0, src, dst)
            tcp = struct.pack("!HHIIBBHHH", sp, dp, i, 0, 0x50, fl, 65535, 0, 0)
            f.write(struct.pack("<IIII", 1700000000, i, 40, 40) + ip + tcp)
PY
els_config "$WORK/elsd.conf" "s|$DB|$WORK/live.db|"
"$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/syn.pcap" --monitor "$DB" 2>"$ELSD_LOG"
check_eq "replay exits 0" 0 $?
check "every packet was accepted" grep -q "replayed $((3 * N)) packets: $((3 * N)) accepted" "$ELSD_LOG"
check_eq "one admit record per flow" $N "$(sql "SELECT count(*) FROM records WHERE kind='admit'")"
check_eq "one end record per flow (reason flow_shutdown)" $N \
	"$(sql "SELECT count(*) FROM records WHERE kind='flow_end' AND reason='flow_shutdown'")"
check_eq "no gap: nothing was lost" 0 "$(sql "SELECT count(*) FROM records WHERE kind='gap'")"
els_finish
