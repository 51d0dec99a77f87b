#!/usr/bin/env python3
"""A console for the agent <-> console protocol tests (docs/console-protocol.md), stdlib only:
a real TLS server with the real framing, independent of els-console, so that elsd's side is
tested against the document.

  console_peer.py ADDR CA CERT KEY LOG [--tls12] [--request FILE]...

Listens on ADDR (host:port), TLS 1.3 (or at most 1.2 with --tls12), requires and verifies the
agent's client certificate against CA. For every connection it logs one JSON line per event to
LOG: {"ev":"accept"}, {"ev":"tls_error","error":...}, {"ev":"frame","body":{...}} (hello,
heartbeat, response), {"ev":"closed"}. After the first hello of the process it sends each
--request FILE (a JSON request object, e.g. with on_behalf_of) once, in order, waiting for its
answer before the next. Runs until killed.
"""
import json
import socket
import ssl
import sys
import threading
import time

from mgmt_frame import read_frame, send_frame

lock = threading.Lock()


def log(path, obj):
    obj["t"] = round(time.time(), 3)
    with lock, open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")


requests_sent = False


def serve(conn, ctx, logpath, requests):
    global requests_sent
    try:
        s = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        log(logpath, {"ev": "tls_error", "error": str(e)})
        conn.close()
        return
    peer = s.getpeercert()
    cn = [v for rdn in peer.get("subject", ()) for (k, v) in rdn if k == "commonName"]
    log(logpath, {"ev": "tls_ok", "version": s.version(), "agent_cn": cn[0] if cn else None})
    try:
        pending = None
        while True:
            f = read_frame(s, max_len=16 << 20)
            log(logpath, {"ev": "frame", "body": f})
            if f.get("type") == "hello" and not requests_sent and requests:
                requests_sent = True
                pending = list(requests)
            if pending and (f.get("type") == "hello" or "ok" in f):
                send_frame(s, pending.pop(0))
    except (EOFError, ssl.SSLError, OSError, ValueError) as e:
        log(logpath, {"ev": "closed", "why": str(e)})
    finally:
        s.close()


def main():
    args = sys.argv[1:]
    tls12 = "--tls12" in args
    args = [a for a in args if a != "--tls12"]
    requests = []
    while "--request" in args:
        i = args.index("--request")
        with open(args[i + 1]) as f:
            requests.append(json.load(f))
        del args[i : i + 2]
    addr, ca, cert, key, logpath = args
    host, port = addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ls = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host.strip("[]"), int(port)))
    ls.listen(16)
    log(logpath, {"ev": "listening"})
    while True:
        c, _ = ls.accept()
        log(logpath, {"ev": "accept"})
        threading.Thread(target=serve, args=(c, ctx, logpath, requests), daemon=True).start()


if __name__ == "__main__":
    main()
