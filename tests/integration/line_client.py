#!/usr/bin/python3
"""A long-lived TCP client for the restart tests: connects to HOST PORT, sends a numbered line
every 100 ms until the file STOP exists, checks every echo comes back in order, then waits up
to 15 s for the last echoes. STATUS always holds "sent echoed in_order error" (error: none,
eof, or the exception's name, e.g. ConnectionResetError)."""
import os, socket, sys, threading, time
host, port, status, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
st = {"sent": 0, "echoed": 0, "order": 1, "err": "none"}
lock = threading.Lock()
def write():
    with lock:
        with open(status + ".tmp", "w") as f:
            f.write("%d %d %d %s\n" % (st["sent"], st["echoed"], st["order"], st["err"]))
        os.replace(status + ".tmp", status)
s = socket.create_connection((host, port), timeout=5)
s.settimeout(None)
def reader():
    try:
        for line in s.makefile("rb"):
            if line != b"%d\n" % st["echoed"]: st["order"] = 0
            st["echoed"] += 1; write()
        st["err"] = "eof"
    except OSError as e:
        st["err"] = type(e).__name__
    write()
threading.Thread(target=reader, daemon=True).start()
try:
    while not os.path.exists(stop):
        s.sendall(b"%d\n" % st["sent"]); st["sent"] += 1; write(); time.sleep(0.1)
except OSError as e:
    st["err"] = type(e).__name__
for _ in range(150):
    if st["echoed"] >= st["sent"] or st["err"] != "none": break
    time.sleep(0.1)
write()
