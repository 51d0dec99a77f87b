#!/usr/bin/env bash
# bench/run --quick as a smoke test: every figure of the benchmark must be measured and make
# sense. Never fails on timing (the machine may be slow or shared): only on a figure that is
# missing, not a number, negative, or a ratio against the kernel or the minimal filter above
# 10 (a userspace filter cannot be ten times faster than the queue round trip it sits on).
# The elsd / iptables ratio has no such ceiling: a linear chain of a million rules can be
# thousands of times slower. --quick skips OpenSnitch, ulogd2, the SYN flood and the
# flow-table growth: their figures must then be null AND their skip printed (a skip is never
# a number), and every other peer figure must be measured.
set -uo pipefail
: "${ELS_SOURCE_DIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces)"; exit 1; }
out=$(mktemp /tmp/els-bench-quick.XXXXXX)
trap 'rm -f "$out" "$out.json"' EXIT
"$ELS_SOURCE_DIR/bench/run" --quick --json "$out.json" >"$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
python3 - "$out.json" "$rc" "$out" <<'EOF'
import json, math, sys
keys = """pps_kernel pps_minimal pps_elsd pps_elsd_large pps_iptables_large ratio_elsd_minimal
ratio_large_minimal ratio_large_iptables insn_per_pkt_10_rules insn_per_pkt_100k_rules
insn_per_pkt_1k_list insn_per_pkt_1m_list monitor_records_per_s apply_1m_list_s
apply_lost_packets bytes_per_flow pps_offload_tcp ratio_offload_kernel
ratio_newconn_nft ratio_newconn_offload_nft ratio_offload_tcp_nft ratio_udp_nft
ratio_newconn_min_nft ratio_newconn_elsd_min synflood_ok_min ratio_newconn_opensnitch ratio_monitor_ulogd synflood_ok_elsd synflood_ok_nft
synflood_ok_elsd_guard monitor_rows_per_100k_syn_guard
monitor_rows_per_100k_syn newconn_growth_1m_flows svc_hit_p50_us
svc_hit_p99_us svc_miss_ms svc_flows_plain svc_flows_bound svc_flow_ratio svc_cpu_us_plain
svc_cpu_us_bound""".split()
capped = {"ratio_elsd_minimal", "ratio_large_minimal", "ratio_offload_kernel",
          "ratio_newconn_nft", "ratio_newconn_offload_nft", "ratio_offload_tcp_nft",
          "ratio_newconn_min_nft", "ratio_newconn_elsd_min", "svc_flow_ratio"}
# key -> the skip line bench/run prints when --quick leaves it out
skipped_in_quick = {
    "ratio_newconn_opensnitch": "OpenSnitch: skipped: --quick",
    "ratio_monitor_ulogd": "ulogd2: skipped: --quick",
    "synflood_ok_elsd": "SYN flood: skipped: --quick",
    "synflood_ok_nft": "SYN flood: skipped: --quick",
    "synflood_ok_min": "SYN flood: skipped: --quick",
    "synflood_ok_elsd_guard": "SYN flood: skipped: --quick",
    "monitor_rows_per_100k_syn_guard": "SYN flood: skipped: --quick",
    "monitor_rows_per_100k_syn": "SYN flood: skipped: --quick",
    "newconn_growth_1m_flows": "new connections with 10k/100k/1M flows: skipped: --quick",
}
out = open(sys.argv[3]).read()
passed = failed = 0
def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok %d - %s" % (passed + failed, what))
    else:
        failed += 1
        print("not ok %d - %s" % (passed + failed, what))
check(sys.argv[2] == "0", "bench/run --quick exits 0")
try:
    fig = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    fig = {}
    check(False, "the JSON file is readable: %s" % e)
check(sorted(fig) == sorted(keys), "the JSON object has exactly the documented keys")
for k in keys:
    v = fig.get(k)
    if k in skipped_in_quick:
        check(v is None and skipped_in_quick[k] in out,
              "%s is null and its skip is printed (%r)" % (k, v))
        continue
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    if ok and k in capped:
        ok = v <= 10
    if ok and k.startswith("ratio_"):
        ok = v > 0
    if ok and k.startswith(("pps_", "insn_", "monitor_", "bytes_")):
        ok = v > 0
    check(ok, "%s is measured and sensible (%r)" % (k, v))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
