#!/usr/bin/python3
"""Writes a pcap of N IPv4 TCP SYNs to the test server 198.18.0.2 for bulk monitor records:
even packets go to port 22 (dropped: no_permit), odd ones to 443 (admitted: https-in), each
from its own source address, so no two drops aggregate and every packet is one record.
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
            dport = 22 if i % 2 == 0 else 443
            tcp = struct.pack("!HHIIBBHHH", 40000 + i % 20000, dport, i, 0, 5 << 4, 0x02,
                              65535, 0, 0)
            pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
            tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0,
                             src, dst)
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            pkt = ip + tcp
            usec = i * 1000  # one packet per millisecond
            f.write(struct.pack("<IIII", t0 + usec // 1000000, usec % 1000000, len(pkt),
                                len(pkt)))
            f.write(pkt)


main()
