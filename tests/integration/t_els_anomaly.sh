#!/usr/bin/env bash
# The anomaly handler: hping3 sends TCP flag sets no stack sends (NULL, XMAS, SYN+FIN,
# SYN+RST) and port 0 to the permitted HTTPS port; each is dropped with its own reason and
# alerted, while a plain SYN is answered. Packets the kernel never lets reach INPUT as
# crafted (land: a martian source; IPv4 fragments: reassembled before INPUT) are crafted with
# scapy into a capture and judged by the same chain through `elsd --replay`, together with an
# IPv6 chain of 10 extension headers, a repeated routing header, a tiny first fragment and IPv6
# flag anomalies. One check
# set to "observe" passes its packets and records them as would_drop.
. "$(dirname "$0")/lib.sh"
els_setup
els_steer
els_config "$WORK/elsd.conf" \
	's|chain = \[ "anomaly", "iplist", "tracker", "header_filter" \];|chain = [ "iplist", "anomaly", "tracker", "header_filter" ];\nanomaly = { tcp_syn_rst = "observe"; };|'
els_https_server || fail "https server did not start"
els_start "$WORK/elsd.conf" || exit 1

hp() { in_cli hping3 "$@" -p 443 -c 2 -i u100000 "$SRV4" 2>&1; }
check "a plain SYN to 443 is answered" grep -q "flags=SA" <<<"$(hp -S)"
check "a NULL probe gets no answer" grep -q "100% packet loss" <<<"$(hp)"
check "an XMAS probe gets no answer" grep -q "100% packet loss" <<<"$(hp -F -P -U)"
check "a SYN+FIN probe gets no answer" grep -q "100% packet loss" <<<"$(hp -S -F)"
in_cli hping3 -S -R -p 443 -c 2 -i u100000 "$SRV4" >/dev/null 2>&1
in_cli hping3 -S -p 0 -c 2 -i u100000 "$SRV4" >/dev/null 2>&1
els_stop || fail "elsd exited non-zero"

for r in tcp_null tcp_xmas tcp_syn_fin port_zero; do
	n=$(sql "SELECT coalesce(sum(count),0) FROM records WHERE kind='drop' AND handler='anomaly' AND reason='$r' AND src='$CLI4'")
	check_ge "$r probes dropped by anomaly with reason $r" 2 "$n"
	check "$r is alerted" grep -q "alert: event=$r src=$CLI4" "$ELSD_LOG"
done
n=$(sql "SELECT count(*) FROM records WHERE kind='would_drop' AND handler='anomaly' AND reason='tcp_syn_rst' AND verdict='accept'")
check_ge "tcp_syn_rst in observe mode: passed and recorded as would_drop" 2 "$n"
n=$(sql "SELECT count(*) FROM records WHERE kind='drop' AND reason='tcp_syn_rst'")
check_eq "and never recorded as a drop" 0 "$n"

# Crafted capture: one packet per line of $WORK/expect, in order.
/usr/bin/python3 - "$WORK/crafted.pcap" "$CLI4" "$SRV4" "$CLI6" "$SRV6" <<'EOF' 2>/dev/null
import sys
from scapy.all import IP, IPv6, TCP, UDP, Raw, Ether, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, wrpcap
out, c4, s4, c6, s6 = sys.argv[1:]
E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
pk = [
    E / IP(src=c4, dst=s4) / TCP(sport=40000, dport=443, flags="S"),            # control
    E / IP(src=s4, dst=s4) / TCP(sport=443, dport=443, flags="S"),              # land
    E / IP(src=c4, dst=s4, id=77, flags="MF", frag=0, proto=17) / Raw(b"\x13\x88\x00\x35" + b"\x04\x00\x00\x00" + b"A" * 1000),
    E / IP(src=c4, dst=s4, id=77, frag=64, proto=17) / Raw(b"B" * 600),      # overlaps bytes 512..
    E / IP(src=c4, dst=s4, id=78, flags="MF", frag=0, proto=6) / Raw(b"\x9c\x40\x01\xbb" + b"\x00" * 4),  # 8 bytes of TCP
    E / IPv6(src=c6, dst=s6) / (IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()) / UDP(sport=5000, dport=53),
    E / IPv6(src=c6, dst=s6) / TCP(sport=40001, dport=443, flags=""),          # NULL over IPv6
    E / IPv6(src=c6, dst=s6) / TCP(sport=40002, dport=443, flags="FPU"),       # XMAS over IPv6
    E / IPv6(src=c6, dst=s6) / IPv6ExtHdrRouting(type=2) / IPv6ExtHdrRouting(type=2) / TCP(sport=40003, dport=443, flags="S"),
    E / IPv6(src=c6, dst=s6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(type=2) / IPv6ExtHdrDestOpt() / TCP(sport=40004, dport=443, flags="S"),
]
wrpcap(out, pk)
EOF
check "scapy wrote the crafted capture" test -s "$WORK/crafted.pcap"
v=$("$ELSD" -c "$WORK/elsd.conf" --replay "$WORK/crafted.pcap" --monitor "$WORK/crafted.db" --verdicts 2>/dev/null)
line() { sed -n "$1p" <<<"$v" | awk '{print $3, $4, $5}'; }
check_eq "control SYN is accepted" "accept header_filter permit" "$(line 1)"
check_eq "land packet dropped as land" "drop anomaly land" "$(line 2)"
check_eq "the first fragment (UDP to 53, no permit) is dropped as no_permit" "drop header_filter no_permit" "$(line 3)"
check_eq "overlapping fragment dropped as fragment_overlap" "drop anomaly fragment_overlap" "$(line 4)"
check_eq "tiny first fragment dropped by the decoder" "drop decode tiny_fragment" "$(line 5)"
check_eq "10 IPv6 extension headers dropped as too long" "drop anomaly ipv6_ext_chain_too_long" "$(line 6)"
check_eq "NULL over IPv6 dropped" "drop anomaly tcp_null" "$(line 7)"
check_eq "XMAS over IPv6 dropped" "drop anomaly tcp_xmas" "$(line 8)"
check_eq "two routing headers dropped as repeated" "drop anomaly ipv6_ext_repeated" "$(line 9)"
check_eq "hop-by-hop, dest opts, routing, dest opts (RFC 8200 order) is accepted" \
	"accept header_filter permit" "$(line 10)"
els_finish
