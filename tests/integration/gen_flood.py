#!/usr/bin/python3
"""Writes a pcap of N IPv4 packets to the test server 198.18.0.2 for bulk monitor records:
even ones are TCP SYNs to port 22 (dropped: no_permit), odd ones ICMP echo requests (admitted:
ping-in; an admit and, at the end, a flow_end each), each from its own source address, so no
two drops aggregate and every packet is one record (two for an echo).
Usage: gen_flood.py OUT.pcap N [FIRST_EPOCH_SECONDS]. Plain struct, no scapy: fast."""
import struct
import sys


def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    t0 = int(sys.argv[3]) if len(sys.argv) > 3 else 1700000000
    dst = bytes([198, 18, 0, 2])
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # raw IP
        for i in range(n):
            src = bytes([10, (i >> 16) & 255, (i >> 8) & 255, i & 255])
            if i % 2 == 0:
                l4, proto = struct.pack("!HHIIBBHHH", 40000 + i % 20000, 22, i, 0, 5 << 4,
                                        0x02, 65535, 0, 0), 6
                pseudo = src + dst + struct.pack("!BBH", 0, 6, len(l4))
                l4 = l4[:16] + struct.pack("!H", csum(pseudo + l4)) + l4[18:]
            else:
                # an echo request: admitted at its first packet (a TCP SYN would only be
                # admitted once its handshake completed)
                l4, proto = struct.pack("!BBHHH", 8, 0, 0, i & 0xFFFF, 1), 1
                l4 = l4[:2] + struct.pack("!H", csum(l4)) + l4[4:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0, 64, proto,
                             0, src, dst)
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            pkt = ip + l4
            # one packet per 20 ms: 25 drops a second, each from its own source, stay below
            # the 64 distinct sources a second after which the agent merges them (a spoofed
            # flood's), so every drop is a row of its own
            usec = i * 20000
            f.write(struct.pack("<IIII", t0 + usec // 1000000, usec % 1000000, len(pkt),
                                len(pkt)))
            f.write(pkt)


main()
