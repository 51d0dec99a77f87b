#!/usr/bin/env python3
"""Minimal management-protocol client for the integration tests (stdlib only), independent of
elsctl so that the agent side is tested against docs/management-protocol.md itself.

  mgmt_client.py ADDR CA CERT KEY CMD [ARGS_JSON] [--text FILE] [--conn-reuse N]
      one request; prints the response JSON; exit 0 if ok, 1 if an error response,
      2 if no response (handshake refused, connection closed)
  mgmt_client.py ADDR CA CERT KEY --raw HEX       send raw bytes after the handshake, print
                                                  each response, until EOF (exit 2 at once
                                                  if the handshake fails)
  mgmt_client.py ADDR CA CERT KEY --hold SECONDS  handshake, then send nothing: prints how
                                                  long until the agent closed
  mgmt_client.py ADDR CA CERT KEY --repeat N SECS status N times on one connection, SECS
                                                  apart; prints how many answered ok
  mgmt_client.py ADDR CA CERT KEY --wait-then FILE CMD [ARGS_JSON]
                                                  status on one connection, then wait
                                                  (up to 60 s) until FILE exists, then CMD
                                                  on the same connection: prints
                                                  "first ok", then the answer or "closed"
CERT/KEY may be '-' for no client certificate.
"""
import json
import os
import socket
import ssl
import sys
import time

from mgmt_frame import read_frame, send_frame


def connect(addr, ca, cert, key, tls12=False):
    host, port = addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if cert != "-":
        ctx.load_cert_chain(cert, key)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection((host, int(port)), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=host)
    return s


def request(s, rid, cmd, args):
    send_frame(s, {"v": 1, "id": rid, "cmd": cmd, "args": args})
    return read_frame(s)


def main():
    a = sys.argv[1:]
    addr, ca, cert, key = a[:4]
    rest = a[4:]
    try:
        s = connect(addr, ca, cert, key)
        if rest[0] == "--raw":
            s.sendall(bytes.fromhex(rest[1]))
            while True:
                print(json.dumps(read_frame(s)))
        if rest[0] == "--repeat":
            good = 0
            try:
                for rid in range(int(rest[1])):
                    r = request(s, rid, "status", {})
                    good += bool(r.get("ok"))
                    time.sleep(float(rest[2]))
            finally:
                print(good)
            return 0
        if rest[0] == "--wait-then":
            r = request(s, 0, "status", {})
            print("first ok" if r.get("ok") else "first failed", flush=True)
            for _ in range(600):
                if os.path.exists(rest[1]):
                    break
                time.sleep(0.1)
            args = json.loads(rest[3]) if len(rest) > 3 else {}
            try:
                print(json.dumps(request(s, 1, rest[2], args)))
            except (EOFError, OSError, ssl.SSLError):
                print("closed")
            return 0
        if rest[0] == "--hold":
            t0 = time.monotonic()
            s.settimeout(float(rest[1]))
            try:
                while s.recv(1):
                    pass
            except (socket.timeout, TimeoutError):
                print("held %.1f" % (time.monotonic() - t0))
                return 0
            except (OSError, ssl.SSLError):
                pass
            print("closed %.1f" % (time.monotonic() - t0))
            return 0
        cmd = rest[0]
        args = {}
        reuse = 1
        i = 1
        while i < len(rest):
            if rest[i] == "--text":
                with open(rest[i + 1], encoding="utf-8") as f:
                    args["text"] = f.read()
                i += 2
            elif rest[i] == "--conn-reuse":
                reuse = int(rest[i + 1])
                i += 2
            else:
                args.update(json.loads(rest[i]))
                i += 1
        for rid in range(1, reuse + 1):
            r = request(s, rid, cmd, args)
        print(json.dumps(r))
        return 0 if r.get("ok") else 1
    except (EOFError, OSError, ssl.SSLError, ValueError) as e:
        print("no response: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
