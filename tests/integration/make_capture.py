#!/usr/bin/python3
"""Writes a capture of crafted packets for `elsd --replay` tests, and the verdict expected
for each, one per line: "<in|out> <accept|drop> <handler> <reason>". The server is
198.18.0.2 / 2001:db8:1::2; the client 198.18.0.1 / 2001:db8:1::1.

Fragments are crafted here because inside a namespace with conntrack the kernel reassembles
them before NFQUEUE sees them; replay is where the decoder's fragment handling is tested."""
import sys
from scapy.all import (IP, IPv6, TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply, Ether,
                       IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                       IPv6ExtHdrRouting, ICMPv6ND_NS, ICMPv6ND_NA, Raw, wrpcap)

C4, S4, C6, S6 = "198.18.0.1", "198.18.0.2", "2001:db8:1::1", "2001:db8:1::2"
BAD4 = "198.19.66.7"
cases = []


def add(pkt, expect):
    cases.append((Ether() / pkt if not isinstance(pkt, Ether) else pkt, expect))


add(IP(src=C4, dst=S4) / TCP(sport=40000, dport=443, flags="S"), "in accept header_filter permit")
add(IP(src=S4, dst=C4) / TCP(sport=443, dport=40000, flags="SA"), "out accept tracker flow")
add(IP(src=C4, dst=S4) / TCP(sport=40000, dport=443, flags="A"), "in accept tracker flow")
add(IP(src=C4, dst=S4) / TCP(sport=40001, dport=22, flags="S"), "in drop header_filter no_permit")
add(IP(src=C4, dst=S4) / TCP(sport=40002, dport=443, flags="A"), "in drop tracker out_of_state")
add(IP(src=S4, dst=C4) / TCP(sport=50000, dport=8080, flags="S"), "out drop header_filter no_permit")
add(IP(src=C4, dst=S4) / UDP(sport=5000, dport=0), "in drop anomaly port_zero")
add(IP(src=BAD4, dst=S4) / TCP(sport=40003, dport=443, flags="S"), "in drop iplist deny_list")
add(IP(src=C4, dst=S4) / TCP(sport=40004, dport=443, flags="SF"), "in drop anomaly tcp_syn_fin")
# A SYN to 443 split in two fragments: the first carries the ports, the second only bytes.
syn = IP(src=C4, dst=S4, id=77) / TCP(sport=40005, dport=443, flags="S") / Raw(b"a" * 40)
first, later = syn.fragment(fragsize=24)[:2]
add(first, "in accept header_filter permit")
add(later, "in accept tracker fragment_of_admitted")
add(IP(src=C4, dst=S4, id=99, frag=3, proto=6) / Raw(b"b" * 24), "in drop header_filter fragment_no_ports")
# A first fragment too short to hold a TCP header (RFC 1858).
add(IP(src=C4, dst=S4, id=100, flags="MF", proto=6) / Raw(b"\x9c\x45\x01\xbb\0\0\0\0"), "in drop decode tiny_fragment")
# Broken headers.
add(Ether(type=0x0800) / Raw(b"\x45\x00\x00"), "in drop decode truncated")
add(Ether(type=0x0800) / Raw(bytes(IP(src=C4, dst=S4, ihl=15) / TCP(dport=443))), "in drop decode bad_ihl")
add(IP(src=C4, dst=S4, proto=132) / Raw(b"\0" * 12), "in drop decode unknown_protocol")
# IPv6 with extension headers before TCP, and an orphan later fragment.
add(IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(sport=40006, dport=443, flags="S"),
    "in accept header_filter permit")
add(IPv6(src=S6, dst=C6) / TCP(sport=443, dport=40006, flags="SA"), "out accept tracker flow")
add(IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(offset=8, id=5, nh=6) / Raw(b"c" * 16),
    "in drop header_filter fragment_no_ports")
# ICMP echo: the request is permitted, the reply rides the flow.
add(IP(src=C4, dst=S4) / ICMP(type=8, id=7), "in accept header_filter permit")
add(IP(src=S4, dst=C4) / ICMP(type=0, id=7), "out accept tracker flow")
add(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=8), "in accept header_filter permit")
add(IPv6(src=S6, dst=C6) / ICMPv6EchoReply(id=8), "out accept tracker flow")
# An unsolicited echo reply going out belongs to no flow and matches no permit.
add(IP(src=S4, dst=C4) / ICMP(type=0, id=9), "out drop header_filter no_permit")

# What the standards say a receiver discards (docs/anomaly-rfc-audit.md), one of each.
SYN6 = TCP(sport=40010, dport=443, flags="S")
add(IPv6(src=C6, dst=S6) / IPv6ExtHdrRouting(type=0, addresses=["2001:db8:2::1"], segleft=1) / SYN6,
    "in drop anomaly ipv6_rh0")                                            # RFC 5095
add(IPv6(src=C6, dst=S6) / IPv6ExtHdrRouting(type=200, addresses=["2001:db8:2::1"], segleft=1) / SYN6,
    "in drop anomaly ipv6_rh_unknown")                                     # RFC 8200 4.4
add(IPv6(src=C6, dst=S6) / IPv6ExtHdrRouting(type=2, addresses=["2001:db8:1::2"], segleft=0) / SYN6,
    "in accept header_filter permit")                                      # Mobile IPv6: fine
add(IPv6(src=C6, dst=S6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / TCP(sport=40011, dport=443, flags="S"),
    "in drop decode ipv6_hbh_not_first")                                   # RFC 8200 4.1
add(IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(m=1, offset=0, id=6, nh=6) / Raw(b"\x9c\x40\x01\xbb" + b"\0" * 4),
    "in drop decode ipv6_first_fragment_incomplete")                       # RFC 7112
add(IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(m=1, offset=0, id=8, nh=17) / UDP(sport=5000, dport=53) / Raw(b"x" * 5),
    "in drop anomaly fragment_bad_length")                                 # RFC 8200 4.5
add(IP(src=C4, dst=S4, id=101, frag=8191, proto=17) / Raw(b"z" * 40),
    "in drop anomaly fragment_too_big")                                    # RFC 791, ping of death
add(IPv6(src="fe80::1", dst="ff02::1:ff00:2", hlim=255) / IPv6ExtHdrFragment(m=1, offset=0, id=7, nh=58) / ICMPv6ND_NS(tgt=S6),
    "in drop anomaly nd_fragmented")                                       # RFC 6980
add(IPv6(src="fe80::1", dst=S6, hlim=64) / ICMPv6ND_NA(tgt="fe80::1"),
    "in drop anomaly nd_hop_limit")                                        # RFC 4861 7.1.2
add(IP(src="224.0.0.9", dst=S4) / UDP(sport=520, dport=520), "in drop anomaly martian_source")
add(IPv6(src="::ffff:198.18.0.1", dst=S6) / TCP(sport=40012, dport=443, flags="S"),
    "in drop anomaly martian_source")                                      # RFC 4291 2.5.5.2
add(IPv6(src=C6, dst="ff00::1") / UDP(sport=5000, dport=5000), "in drop anomaly martian_destination")
add(IP(src=C4, dst="127.0.0.1") / TCP(sport=40013, dport=443, flags="S"), "in drop anomaly martian_destination")

pkts = []
for i, (p, _) in enumerate(cases):
    p.time = 1700000000 + i * 0.01
    pkts.append(p)
wrpcap(sys.argv[1], pkts)
with open(sys.argv[2], "w") as f:
    for _, e in cases:
        f.write(e + "\n")
