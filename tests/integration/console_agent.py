#!/usr/bin/env python3
"""A small stand-in for elsd's side of the console protocol (CONSOLE.md, "Agent <-> console
protocol"), stdlib only: real TLS 1.3 with a client certificate, elsd's framing (4-byte
big-endian length + one JSON object), hello, heartbeats, and answers to the console's
requests. For els-console's own tests until elsd dials out; the end-to-end test uses elsd.

  console_agent.py run ADDR CA CERT KEY [--id ID] [--group G] [--heartbeat S]
                   [--apply ok|fail|busy|silent] [--reconnect] [--events FILE]
      say hello, heartbeat every S seconds (default 1), answer every request: policy.apply
      with ok (sha256 of the text, generation + 1), an invalid_policy error, busy, or never;
      other commands with ok and {"echo": cmd}. With --reconnect, connect again 0.2 s after
      the connection ends (the console restarted). Appends one JSON line per event to FILE
      (default stdout): connected, request (cmd, args, on_behalf_of), closed.
  console_agent.py probe ADDR CA CERT KEY [--id ID] [--tls12] [--no-hello] [--wait S]
      handshake, send a hello (unless --no-hello), then wait up to S seconds (default 3):
      prints "refused: REASON" (handshake failed), "closed" (the console ended the
      connection) or "open" (still open after S seconds). Exit 0 in every case.
CERT/KEY may be '-' for no client certificate.
"""
import argparse
import hashlib
import json
import socket
import ssl
import sys
import time

from mgmt_frame import send_frame, take_frame


def connect(addr, ca, cert, key, tls12=False, timeout=10):
    host, port = addr.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False  # the console's name check is dialout's; here: its CA
    if cert != "-":
        ctx.load_cert_chain(cert, key)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    raw = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=host.strip("[]"))
    except Exception:
        raw.close()
        raise


class State:
    def __init__(self, args):
        self.args = args
        self.sha = "0" * 64
        self.generation = 1

    def frame(self, kind):
        return {"v": 1, "type": kind, "agent_id": self.args.id,
                "host": self.args.id + ".example", "version": "test",
                "group": self.args.group, "policy_sha256": self.sha,
                "policy_generation": self.generation, "managed": True, "rules_ok": True,
                "monitor_ok": True,
                "listeners": [{"proto": "tcp", "addr": "0.0.0.0", "port": 443}],
                "permits": [{"id": "https", "proto": "tcp", "port": "443", "dir": "in"}],
                "counters": {"dropped": 1, "admitted": 2, "would_drop": 0},
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def emit(opts, **ev):
    line = json.dumps(ev)
    if opts.events:
        with open(opts.events, "a") as f:
            f.write(line + "\n")
    else:
        print(line, flush=True)


def answer(st, req):
    cmd, rid = req.get("cmd"), req.get("id")
    if cmd != "policy.apply":
        return {"v": 1, "id": rid, "ok": True, "result": {"echo": cmd}}
    mode = st.args.apply
    if mode == "silent":
        return None
    if mode == "busy":
        return {"v": 1, "id": rid, "ok": False,
                "error": {"code": "busy", "message": "a check is running", "details": []}}
    if mode == "fail":
        return {"v": 1, "id": rid, "ok": False,
                "error": {"code": "invalid_policy", "message": "policy has 1 error",
                          "details": [{"file": "<policy>", "line": 1, "message": "test"}]}}
    text = req.get("args", {}).get("text", "")
    prev = st.sha
    st.sha = hashlib.sha256(text.encode()).hexdigest()
    st.generation += 1
    return {"v": 1, "id": rid, "ok": True,
            "result": {"generation": st.generation, "sha256": st.sha, "previous_sha256": prev,
                       "changed": True, "warnings": []}}


def session(st):
    a = st.args
    s = connect(a.addr, a.ca, a.cert, a.key)
    emit(a, event="connected", id=a.id)
    send_frame(s, st.frame("hello"))
    s.settimeout(0.2)
    next_hb = time.monotonic() + a.heartbeat
    buf = b""
    while True:
        if time.monotonic() >= next_hb:
            send_frame(s, st.frame("heartbeat"))
            next_hb = time.monotonic() + a.heartbeat
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        if not chunk:
            raise EOFError("closed by the console")
        buf += chunk
        while True:
            req, buf = take_frame(buf)
            if req is None:
                break
            emit(a, event="request", cmd=req.get("cmd"), id=req.get("id"),
                 args=req.get("args"), on_behalf_of=req.get("on_behalf_of"))
            resp = answer(st, req)
            if resp is not None:
                send_frame(s, resp)
                # A real agent reports what it runs at once: so does this one.
                send_frame(s, st.frame("heartbeat"))


def run(a):
    st = State(a)
    while True:
        try:
            session(st)
        except (OSError, EOFError, ssl.SSLError) as e:
            emit(a, event="closed", reason=str(e))
        if not a.reconnect:
            return 0
        time.sleep(0.2)


def probe(a):
    try:
        s = connect(a.addr, a.ca, a.cert, a.key, tls12=a.tls12)
    except (OSError, ssl.SSLError) as e:
        print("refused: %s" % e)
        return 0
    # TLS 1.3: the server checks the client certificate after the client's handshake is
    # done, so a refusal shows up as an alert or a close on the first read or write.
    deadline = time.monotonic() + a.wait
    try:
        if not a.no_hello:
            send_frame(s, State(a).frame("hello"))
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                print("closed")
                return 0
    except ssl.SSLError as e:
        print("refused: %s" % e)
        return 0
    except (OSError, EOFError):
        print("closed")
        return 0
    print("open")
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["run", "probe"])
    p.add_argument("addr")
    p.add_argument("ca")
    p.add_argument("cert")
    p.add_argument("key")
    p.add_argument("--id", default="agent-1")
    p.add_argument("--group", default="web")
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--apply", default="ok", choices=["ok", "fail", "busy", "silent"])
    p.add_argument("--reconnect", action="store_true")
    p.add_argument("--events")
    p.add_argument("--tls12", action="store_true")
    p.add_argument("--no-hello", action="store_true")
    p.add_argument("--wait", type=float, default=3.0)
    a = p.parse_args()
    return run(a) if a.mode == "run" else probe(a)


if __name__ == "__main__":
    sys.exit(main())
