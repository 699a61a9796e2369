#!/usr/bin/python3
"""WebSocket v4 pods/portforward against the fake API server (k8s-wire.md §3.3), with
a small RFC 6455 client of our own, run from the workstation namespace. Each check
prints "ok: NAME"; the first failure exits non-zero."""
import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import subprocess
import threading
import time

STATE = os.environ.get("MIRRORD_TRACE_CLUSTER_DIR", "/run/mirrord-trace-cluster")
ENV = dict(l.strip().split("=", 1) for l in open(STATE + "/cluster.env") if "=" in l and not l.startswith("#"))
ADMIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "admin")
CTX = ssl.create_default_context(cafile=ENV["CA_CERT"])
PF = "/api/v1/namespaces/default/pods/standalone/portforward"


def check(name, cond, detail=""):
    if not cond:
        raise SystemExit("FAIL: %s %s" % (name, detail))
    print("ok:", name)


def admin(*args):
    subprocess.run([ADMIN] + list(args), check=True, capture_output=True, timeout=10)


class WSClient:
    def __init__(self, path, protocols=("v4.channel.k8s.io",), token=ENV["ADMIN_TOKEN"], upgrade=True):
        s = socket.create_connection((ENV["API_SERVER_IP"], int(ENV["API_SERVER_PORT"])), timeout=20)
        self.s = CTX.wrap_socket(s, server_hostname=ENV["API_SERVER_IP"])
        key = base64.b64encode(os.urandom(16)).decode()
        h = ["GET %s HTTP/1.1" % path, "Host: %s" % ENV["API_SERVER_IP"]]
        if upgrade:
            h += ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + key]
        if protocols:
            h.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        if token:
            h.append("Authorization: Bearer " + token)
        self.s.sendall(("\r\n".join(h) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        self.accept_ok = self.headers.get("sec-websocket-accept") == base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.frames = []  # (fin, opcode, len) of every frame received
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self.buf += self.s.recv(65536)
            self.body = self.buf[:n]

    def status_obj(self):
        return json.loads(self.body)

    # After the handshake the socket is non-blocking and one lock serialises SSL
    # calls: an OpenSSL object must not be read and written by two threads at once.
    def _io(self, fn, arg, want_write):
        end = time.time() + 20
        while time.time() < end:
            with self.lock:
                try:
                    return fn(arg)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
            if want_write:
                select.select([], [self.s], [], 0.2)
            elif not self.s.pending():
                select.select([self.s], [], [], 0.2)
        raise TimeoutError()

    def read_exact(self, n):
        if not hasattr(self, "lock"):
            self.lock = threading.Lock()
            self.s.settimeout(0.0)
        while len(self.buf) < n:
            d = self._io(self.s.recv, 65536, False)
            if not d:
                raise EOFError()
            self.buf += d
        b, self.buf = self.buf[:n], self.buf[n:]
        return b

    def sendall(self, data):
        if not hasattr(self, "lock"):
            self.lock = threading.Lock()
            self.s.settimeout(0.0)
        while data:
            data = data[self._io(self.s.send, data[:65536], True):]

    def send(self, op, payload):
        mask = os.urandom(4)
        n = len(payload)
        h = bytes([0x80 | op])
        h += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536
                                                 else bytes([0x80 | 127]) + struct.pack(">Q", n))
        m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        self.sendall(h + mask + (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big") if n else h + mask)

    def recv(self):
        """(opcode, payload) of the next message; control frames are returned too."""
        op0, data = None, b""
        while True:
            b0, b1 = self.read_exact(2)
            fin, op, n = b0 & 0x80, b0 & 0x0f, b1 & 0x7f
            assert not b1 & 0x80, "server frames must not be masked"
            if n == 126:
                n = struct.unpack(">H", self.read_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.read_exact(8))[0]
            p = self.read_exact(n)
            self.frames.append((bool(fin), op, n))
            if op >= 8:
                return op, p
            op0 = op if op0 is None else op0
            data += p
            if fin:
                return op0, data


def read_http(ws, ch=0):
    """One HTTP response from the pod through data channel CH: (status line, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        op, p = ws.recv()
        assert op == 2 and p[0] == ch, (op, p[:20])
        buf += p[1:]
    head, _, body = buf.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(body) < n:
        op, p = ws.recv()
        assert op == 2 and p[0] == ch, (op, p[:20])
        body += p[1:]
    return head.split(b"\r\n")[0], body


def main():
    admin("reset")
    # errors before the upgrade
    w = WSClient(PF, upgrade=False)
    check("plain GET: 400 Upgrade request required", w.status == 400 and
          w.status_obj()["message"] == "Upgrade request required", w.body)
    w = WSClient(PF)
    check("no ports: 400 Status", w.status == 400 and w.status_obj()["reason"] == "BadRequest"
          and "port" in w.status_obj()["message"], w.body)
    w = WSClient(PF + "?ports=0")
    check("port 0: 400", w.status == 400, w.body)
    w = WSClient(PF + "?ports=80", protocols=("v5.channel.k8s.io",))
    check("unsupported subprotocol: 403", w.status == 403 and b"not supported" in w.body, w.body)
    w = WSClient("/api/v1/namespaces/default/pods/nosuch/portforward?ports=80")
    check("missing pod: 404", w.status == 404 and w.status_obj()["message"] == 'pods "nosuch" not found', w.body)
    w = WSClient(PF + "?ports=80", token=None)
    check("no credentials: 401", w.status == 401, w.body)
    sa = [t for t, v in json.load(open(STATE + "/tokens.json")).items()
          if v["user"] == "system:serviceaccount:default:default"][0]
    w = WSClient(PF + "?ports=80", token=sa)
    check("service account: 403 Forbidden on pods/portforward", w.status == 403 and
          'cannot get resource "pods/portforward"' in w.status_obj()["message"], w.body)

    # v4: two ports, one of them closed
    t0 = time.time()
    w = WSClient(PF + "?ports=8080&ports=9", protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
    check("101, Sec-WebSocket-Accept, protocol v4", w.status == 101 and w.accept_ok and
          w.headers.get("sec-websocket-protocol") == "v4.channel.k8s.io", w.headers)
    first = [w.recv() for _ in range(4)]
    check("port prefix (uint16 LE) first on every channel",
          sorted(first) == [(2, b"\x00\x90\x1f"), (2, b"\x01\x90\x1f"), (2, b"\x02\x09\x00"), (2, b"\x03\x09\x00")],
          first)
    op, p = w.recv()
    check("error channel 3: kubelet-style message for the closed port", op == 2 and p[0] == 3 and
          p[1:].startswith(b"error forwarding port 9 to pod standalone, uid ") and b"connection refused" in p, p)
    w.send(9, b"ping-1")
    op, p = w.recv()
    check("ping -> pong with the same payload", (op, p) == (10, b"ping-1"), (op, p))
    body = os.urandom(3 << 20)
    req = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    def upload():  # the pod echoes as it reads: keep reading while we write
        w.send(2, b"\x00" + req + body[:1000])
        for i in range(1000, len(body), 60000):
            w.send(2, b"\x00" + body[i:i + 60000])
    th = threading.Thread(target=upload, daemon=True)
    th.start()
    line, got = read_http(w)
    th.join(20)
    check("3 MiB up and echoed back on channel 0, sha256 equal", line.endswith(b"200 OK") and
          hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), (line, len(got)))
    w.send(8, struct.pack(">H", 1000))
    op, p = w.recv()
    check("client close -> server close 1000", op == 8 and p[:2] == struct.pack(">H", 1000), (op, p))
    print("   (v4 session took %.2f s)" % (time.time() - t0))

    # the pod closes its end: the WebSocket closes (one TCP connection per port)
    w = WSClient(PF + "?ports=8080")
    [w.recv() for _ in range(2)]
    w.send(2, b"\x00GET / HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        op, p = w.recv()
        if op == 8:
            break
        data += p[1:]
    check("pod closes -> data then server close", data.endswith(b"hello from the pod\n") and p[:2] ==
          struct.pack(">H", 1000), (data[-40:], p))

    # base64 variant and no-protocol variant
    w = WSClient(PF + "?ports=8080", protocols=("v4.base64.channel.k8s.io",))
    first = [w.recv() for _ in range(2)]
    check("base64: text frames '0'/'1' + base64(port)", first == [(1, b"0" + base64.b64encode(b"\x90\x1f")),
                                                                  (1, b"1" + base64.b64encode(b"\x90\x1f"))], first)
    w.send(1, b"0" + base64.b64encode(b"GET / HTTP/1.0\r\n\r\n"))
    data = b""
    while True:
        op, p = w.recv()
        if op == 8:
            break
        data += base64.b64decode(p[1:])
    check("base64: GET / through channel 0", data.endswith(b"hello from the pod\n"), data[-40:])
    w = WSClient(PF + "?ports=8080", protocols=())
    check("no Sec-WebSocket-Protocol: accepted, none echoed", w.status == 101 and
          "sec-websocket-protocol" not in w.headers and w.recv() == (2, b"\x00\x90\x1f"), w.headers)

    # fault: WebSocket writes split at odd sizes (continuation frames, 7-byte TLS writes)
    admin("fault", "ws_split", "7")
    try:
        w = WSClient(PF + "?ports=8080")
        [w.recv() for _ in range(2)]
        body = os.urandom(20000)
        w.send(2, b"\x00POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        line, got = read_http(w)
        cont = sum(1 for f in w.frames if f[1] == 0)
        check("ws_split 7: fragmented messages reassemble (%d continuation frames)" % cont,
              got == body and cont > 100 and max(f[2] for f in w.frames) <= 7, (line, len(got)))
        w.send(8, struct.pack(">H", 1000))
    finally:
        admin("fault", "ws_split", "0")

    # fault: the kubelet's error text on an open port's error channel, then the close
    uid = [p["uid"] for p in json.load(open(ENV["PODS_JSON"])) if p["name"] == "standalone"][0]
    admin("fault", "portforward_error", json.dumps("injected: connection reset by peer"))
    try:
        w = WSClient(PF + "?ports=8080")
        first = [w.recv() for _ in range(2)]
        check("portforward_error: port prefixes first", first == [(2, b"\x00\x90\x1f"), (2, b"\x01\x90\x1f")],
              first)
        msgs = [w.recv() for _ in range(2)]
        check("portforward_error: the message on error channel 1, then close 1000", msgs == [
            (2, b"\x01error forwarding port 8080 to pod standalone, uid %s: injected: connection reset by peer"
             % uid.encode()), (8, struct.pack(">H", 1000))], msgs)

        # ... and with portforward_coalesce, all of it in the same read as the 101
        admin("fault", "portforward_coalesce", "true")
        w = WSClient(PF + "?ports=8080")
        check("portforward_coalesce + error: 101, prefixes, error and close in the first read",
              w.status == 101 and w.buf.startswith(b"\x82\x03\x00\x90\x1f\x82\x03\x01\x90\x1f") and
              b"injected: connection reset by peer" in w.buf and w.buf.endswith(b"\x88\x02\x03\xe8"), w.buf)
    finally:
        admin("fault", "portforward_error", '""')
        admin("fault", "portforward_coalesce", "false")

    # fault: the port prefixes in the same packet (TLS record) as the 101
    w = WSClient(PF + "?ports=8080")
    check("without portforward_coalesce the 101 is a write of its own", w.status == 101 and w.buf == b"", w.buf)
    w.send(8, struct.pack(">H", 1000))
    admin("fault", "portforward_coalesce", "true")
    try:
        w = WSClient(PF + "?ports=8080")
        check("portforward_coalesce: both port prefixes in the same read as the 101",
              w.status == 101 and w.accept_ok and w.buf == b"\x82\x03\x00\x90\x1f\x82\x03\x01\x90\x1f", w.buf)
        [w.recv() for _ in range(2)]
        w.send(2, b"\x00GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            op, p = w.recv()
            if op == 8:
                break
            data += p[1:]
        check("portforward_coalesce: GET / through channel 0", data.endswith(b"hello from the pod\n"), data[-40:])
    finally:
        admin("fault", "portforward_coalesce", "false")

    # fault: drop the port-forward mid-stream
    admin("fault", "portforward_drop", "200000")
    try:
        w = WSClient(PF + "?ports=8080")
        [w.recv() for _ in range(2)]
        w.send(2, b"\x00GET /bytes?n=4000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        n, how = 0, None
        try:
            while True:
                op, p = w.recv()
                if op == 8:
                    how = "close frame"
                    break
                n += len(p) - 1
        except (EOFError, OSError, ssl.SSLError) as e:
            how = "EOF (%s)" % type(e).__name__
        check("portforward_drop: cut without a close frame after %d bytes" % n,
              how.startswith("EOF") and 200000 <= n < 4000000, (how, n))
    finally:
        admin("fault", "portforward_drop", "0")
    admin("reset")


main()
