#!/usr/bin/env python3
"""The legitimate client of bench/run's SYN-flood runs: for SECONDS, CONC threads each open a
TCP connection to DST:PORT, complete a TLS handshake and close, one after the other. An
attempt succeeds when the handshake completes within TIMEOUT seconds (default 2: one
retransmitted SYN, at 1 s, still counts; a connection the flood kept out does not).
Prints one line: "attempts N ok M p50_ms X p99_ms Y" (latencies of the successful ones).

  https_probe.py DST PORT SECONDS [CONC] [TIMEOUT]
"""
import socket
import ssl
import sys
import threading
import time


def main():
    dst, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    conc = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    end = time.monotonic() + secs
    lock = threading.Lock()
    res = {"attempts": 0, "ok": 0, "lat": []}

    def worker():
        while time.monotonic() < end:
            t0 = time.monotonic()
            ok = False
            try:
                with socket.create_connection((dst, port), timeout=timeout) as s:
                    s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
                    with ctx.wrap_socket(s, server_hostname="srv.test"):
                        ok = True
            except (OSError, ssl.SSLError):
                pass
            dt = time.monotonic() - t0
            ok = ok and dt <= timeout
            with lock:
                res["attempts"] += 1
                if ok:
                    res["ok"] += 1
                    res["lat"].append(dt * 1000)
            if not ok and dt < 0.05:
                time.sleep(0.05)  # refused at once: do not spin

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = sorted(res["lat"])

    def pct(p):
        return round(lat[min(len(lat) - 1, int(len(lat) * p))], 2) if lat else "-"

    print("attempts %d ok %d p50_ms %s p99_ms %s" % (res["attempts"], res["ok"], pct(0.5), pct(0.99)))


if __name__ == "__main__":
    main()
