#!/usr/bin/env bash
# A full disk never stops filtering and never corrupts the monitor file: elsd writes its
# monitor on a 2 MiB tmpfs (mounted in a private mount namespace, so the host never sees it)
# that is then filled up. HTTPS through elsd keeps working and refused ports stay refused;
# elsd logs the condition; once space is back, a "write error" gap row says how many records
# were lost; the file passes PRAGMA integrity_check and its chain verifies. A replay onto the
# full file system still judges every packet. Finally the size cap (max_size_mb) sheds
# admits and flow ends before drops, and says so in the file.
if [[ -z ${ELS_IN_MNTNS:-} ]]; then
	[[ $(id -u) == 0 ]] || { echo "needs root (mount namespace)"; exit 1; }
	exec unshare -m --propagation private env ELS_IN_MNTNS=1 "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
: "${ELS_BUILD_DIR:=$(dirname "$ELSD")}"
ELSLOG=$ELS_BUILD_DIR/els-log
[[ -x $ELSLOG ]] || { echo "els-log not built in $ELS_BUILD_DIR"; exit 1; }
FULL=$WORK/full
els_setup
trap 'umount -l "$FULL" 2>/dev/null; els_cleanup' EXIT
mkdir -p "$FULL"
mount -t tmpfs -o size=2m,mode=0700 els-full "$FULL" || { fail "mount a 2 MiB tmpfs"; els_finish; exit; }
DB=$FULL/monitor.db

fill() { dd if=/dev/zero of="$FULL/filler$1" bs=4k >/dev/null 2>&1; sync; }
free_kb() { df -k --output=avail "$FULL" | tail -1 | tr -d ' '; }
refused() { ! in_cli timeout 0.3 bash -c "echo >/dev/tcp/$SRV4/$1" 2>/dev/null; }

els_steer
els_config "$WORK/elsd.conf"
els_https_server || { fail "https server did not start"; els_finish; exit; }
els_start "$WORK/elsd.conf" || exit 1
check "curl works before the disk is full" in_cli curl -sk --max-time 5 "https://$SRV4/"
wait_records "kind = 'admit'" || fail "first records reach the file"

fill 1
check_eq "the file system is full" 0 "$(free_kb)"
ok=0
for i in $(seq 20); do
	in_cli curl -sk --max-time 5 "https://$SRV4/" >/dev/null && ok=$((ok + 1))
	refused $((2000 + i))
done
check_eq "with the disk full, every curl still gets through" 20 "$ok"
check "... and a refused port stays refused" refused 22
for _ in $(seq 50); do grep -q "cannot write" "$ELSD_LOG" && break; sleep 0.1; done
check "elsd logs that it cannot write" grep -q "monitor $DB: cannot write (.*full" "$ELSD_LOG"
check "elsd is still running" kill -0 "$ELSD_PID"

rm -f "$FULL/filler1"
for i in $(seq 5); do
	in_cli curl -sk --max-time 5 "https://$SRV4/" >/dev/null
	refused $((3000 + i))
	wait_records "kind = 'gap' AND detail LIKE 'write error:%full%'" && break
done
check_ge "space back: a gap row counts the records lost" 1 \
	"$(sql "SELECT sum(count) FROM records WHERE kind = 'gap' AND detail LIKE 'write error:%full%'")"
check "... and elsd logs that it writes again" grep -q "writing again; [0-9]* records were lost" "$ELSD_LOG"
els_stop || fail "elsd exited non-zero"
check_eq "PRAGMA integrity_check" ok "$(sql "PRAGMA integrity_check")"
check "the chain verifies" "$ELSLOG" --verify "$DB"

# a replay onto the full file system judges every packet
python3 "$ELS_SOURCE_DIR/tests/integration/gen_flood.py" "$WORK/flood.pcap" 20000 || fail "capture"
fill 2
els_config "$WORK/replay.conf" "s|$DB|$WORK/live.db|"
out=$("$ELSD" -c "$WORK/replay.conf" --replay "$WORK/flood.pcap" --monitor "$DB" 2>&1)
check_eq "replay onto a full disk exits 0" 0 $?
check "... and judges every packet" grep -q "replayed 20000 packets: 10000 accepted, 10000 dropped" <<<"$out"
check "... saying it cannot write" grep -q "cannot write" <<<"$out"
check_eq "PRAGMA integrity_check after the replay" ok "$(sql "PRAGMA integrity_check")"
check "the chain still verifies" "$ELSLOG" --verify "$DB"
rm -f "$FULL"/filler*

# the size cap: admits and flow ends go first, drops last, and the file says so
CAP=$WORK/cap.db
els_config "$WORK/cap.conf" 's|log = "default";|log = "default"; max_size_mb = 1;|'
"$ELSD" -c "$WORK/cap.conf" --monitor "$CAP" --replay "$WORK/flood.pcap" 2>"$WORK/cap.log"
check_eq "replay with max_size_mb = 1 exits 0" 0 $?
capq() { sqlite3 "$CAP" "$1"; }
soft=$(capq "SELECT min(seq) FROM records WHERE detail LIKE '%not writing admits%'")
full=$(capq "SELECT min(seq) FROM records WHERE detail LIKE '%full: not writing drops%'")
check "at 90% an event says admits stop" test -n "$soft"
check "at 100% an event says drops stop" test -n "$full"
check "no admit after the first event" test "$(capq "SELECT max(seq) FROM records WHERE kind = 'admit'")" -lt "$soft"
check "drops go on between the two" test "$(capq "SELECT count(*) FROM records WHERE kind = 'drop' AND seq > $soft")" -gt 0
check "elsd logs the cap" grep -q "monitor size .* of 1024 KiB" "$WORK/cap.log"
lost=$(capq "SELECT sum(count) FROM records WHERE kind = 'gap' AND detail LIKE 'size cap:%'")
written=$(capq "SELECT count(*) FROM records WHERE kind IN ('admit', 'drop', 'flow_end')")
check_eq "records written plus size-cap gaps account for all 30000" 30000 $((written + lost))
check "the capped file verifies" "$ELSLOG" --verify "$CAP"
els_finish
