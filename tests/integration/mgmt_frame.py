"""elsd's management framing, for the test clients and stand-ins (mgmt_client.py,
console_agent.py, console_peer.py), stdlib only: a 4-byte big-endian length, then one JSON
object (docs/management-protocol.md, "Framing"; the console connection uses the same).
"""
import json
import struct


def encode(obj):
    """obj as one frame's bytes."""
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def send_frame(s, obj):
    s.sendall(encode(obj))


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def read_frame(s, max_len=None):
    """The next frame's object; EOFError when the peer closed, ValueError for a length of 0
    or over max_len (when given)."""
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    if max_len is not None and (n == 0 or n > max_len):
        raise ValueError("bad frame length %d" % n)
    return json.loads(recv_exact(s, n))


def take_frame(buf):
    """From bytes read so far: (the first complete frame's object, the rest), or (None, buf)
    while the frame is incomplete."""
    if len(buf) < 4:
        return None, buf
    (n,) = struct.unpack(">I", buf[:4])
    if len(buf) < 4 + n:
        return None, buf
    return json.loads(buf[4:4 + n]), buf[4 + n:]
