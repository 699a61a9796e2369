"""pods/portforward for the fake API server (apiserver.py), after the HTTP upgrade.

Three wire forms (shared/reference/k8s-wire.md §3, captures/):
  - WebSocket v4 (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, or no protocol):
    `?ports=A,B`; port i has channel 2i (data) and 2i+1 (error); the first message
    on every channel is the port as uint16 little-endian; one TCP connection per port.
  - SPDY/3.1 (`POST`, `Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version: portforward.k8s.io`):
    error+data stream pairs by `requestid`, zlib header blocks with the SPDY/3 dictionary.
  - SPDY tunnelled in WebSocket (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+): the SPDY
    byte stream carried in binary WS messages with arbitrary boundaries.

The pod end is a TCP connection to 127.0.0.1:PORT (then [::1]:PORT) opened INSIDE the
pod's network namespace: the connecting thread setns()es into it, creates and connects
the socket, and setns()es back (a network namespace is per thread). Faults (FAULTS of
api_store.py): `ws_split` N (WS messages fragmented into N-byte continuation frames
and written N bytes at a time), `portforward_drop` N (cut the client connection,
without any close frame, after N bytes came from the pod), `portforward_ws` false
(refuse WebSocket upgrades, so kubectl 1.31+ falls back to SPDY), `portforward_error`
TEXT (every port-forward fails as if the kubelet's connect had failed with TEXT: the
kubelet-style message on the error channel / stream, instead of connecting to the pod),
`portforward_coalesce` true (the 101 head and the first protocol bytes in one write:
the v4 port prefixes, plus any error message; for SPDY a server PING, id 2).
"""
import base64
import ctypes
import errno
import hashlib
import os
import select
import socket
import ssl
import struct
import threading
import zlib

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
V4 = "v4.channel.k8s.io"
V4B64 = "v4.base64.channel.k8s.io"
TUNNEL = "SPDY/3.1+portforward.k8s.io"
SPDY_PROTO = "portforward.k8s.io"
# The SPDY/3 header-compression dictionary (a constant of the SPDY/3 spec),
# kept in the tree so the tests need nothing outside the repository.
_DICT_PATHS = [os.environ.get("MTC_SPDY_DICT", ""),
               os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "spdy3_dict.bin")]


def spdy_dict():
    for p in _DICT_PATHS:
        if p and os.path.exists(p):
            d = open(p, "rb").read()
            if zlib.adler32(d) == 0xe3c6a7c2:
                return d
    raise RuntimeError("SPDY/3 dictionary (captures/spdy_dict.bin) not found")


SPDY_DICT = spdy_dict()


class Closed(Exception):
    pass


def connect_pod(raw, netns, port):
    """The pod end of a port-forward, or OSError with the kubelet's reason
    (fault portforward_error: that text, without connecting)."""
    fault = raw.faults.get("portforward_error")
    if fault:
        raise OSError(0, fault)
    return PodConn(connect_in_netns(netns, port))


def connect_in_netns(netns, port, timeout=5.0):
    """A TCP socket connected to localhost:PORT inside the network namespace NETNS
    (a path). Raises OSError with a containerd-like message."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    errs = []
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (netns, os.strerror(e)))
        try:
            for fam, addr, tag in ((socket.AF_INET, "127.0.0.1", "IPv4: dial tcp4 127.0.0.1"),
                                   (socket.AF_INET6, "::1", "IPv6 dial tcp6 [::1]")):
                s = socket.socket(fam, socket.SOCK_STREAM)
                s.settimeout(timeout)
                try:
                    s.connect((addr, port))
                    s.settimeout(None)
                    return s
                except OSError as e:
                    s.close()
                    errs.append("%s:%d: connect: %s" % (tag, port, os.strerror(e.errno or errno.ECONNREFUSED).lower()))
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                os._exit(70)  # this thread would stay in the pod's netns: never continue like that
    finally:
        os.close(own)
        os.close(target)
    raise OSError(errno.ECONNREFUSED, 'failed to execute portforward in network namespace "%s": failed to connect '
                  'to localhost:%d inside namespace "%s", %s ' % (netns, port, netns, " ".join(errs)))


class Raw:
    """The upgraded TLS connection, non-blocking. `lock` serialises every SSL call
    (an OpenSSL object must not be used by two threads at once) and is never held
    while waiting; `wlock` keeps one message's bytes together. So a client that is
    slow to read never stops us from reading it, as with a real API server."""

    def __init__(self, sock, initial, faults, log):
        self.sock, self.buf, self.faults, self.log = sock, bytearray(initial), faults, log
        self.lock = threading.Lock()
        self.wlock = threading.Lock()
        self.closed = False
        self.from_pod = 0
        self.corked = None  # bytes held back by cork()
        sock.settimeout(0.0)

    def cork(self, data=b""):
        """Hold every write, starting with DATA (the 101 head), until uncork()."""
        with self.wlock:
            self.corked = bytearray(data)

    def uncork(self):
        """Send what cork() held in a single write: one TLS record, one packet."""
        with self.wlock:
            data, self.corked = self.corked, None
        if data:
            self.log("portforward: fault portforward_coalesce: the 101 and %d more bytes in one write"
                     % (len(data) - data.index(b"\r\n\r\n") - 4))
            self.send(bytes(data))

    def _recv_sock(self):
        while not self.closed:
            if not self.sock.pending():
                try:
                    r, _, _ = select.select([self.sock], [], [], 0.5)
                except (OSError, ValueError):
                    break
                if not r:
                    continue
            with self.lock:
                if self.closed:
                    break
                try:
                    d = self.sock.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                except (OSError, ssl.SSLError):
                    d = b""
            if not d:
                raise Closed()
            return d
        raise Closed()

    def read_exact(self, n):
        while len(self.buf) < n:
            self.buf += self._recv_sock()
        b = bytes(self.buf[:n])
        del self.buf[:n]
        return b

    def send(self, data, split=0):
        step = split or 65536
        with self.wlock:
            if self.corked is not None:
                self.corked += data
                return
            for i in range(0, len(data), step):
                piece = data[i:i + step]
                while piece:
                    with self.lock:
                        if self.closed:
                            raise Closed()
                        try:
                            n = self.sock.send(piece)
                        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                            n = 0
                        except (OSError, ssl.SSLError):
                            self.closed = True
                            raise Closed()
                    if n:
                        piece = piece[n:]
                    else:
                        try:
                            select.select([], [self.sock], [], 0.5)
                        except (OSError, ValueError):
                            raise Closed()

    def count_from_pod(self, n):
        """Fault portforward_drop: cut the connection once N bytes came from the pod."""
        self.from_pod += n
        lim = self.faults.get("portforward_drop") or 0
        if lim and self.from_pod >= lim:
            self.log("portforward: fault portforward_drop: cutting the connection after %d bytes" % self.from_pod)
            self.abort()
            raise Closed()

    def abort(self):
        try:
            self.uncork()  # a close frame still held back goes first
        except Closed:
            pass
        with self.lock:
            if not self.closed:
                self.closed = True
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# ------------------------------------------------------------------ WebSocket (RFC 6455, server side)

def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


class WS:
    def __init__(self, raw):
        self.raw = raw
        self.close_sent = False

    def frame(self, op, payload, fin=True):
        n = len(payload)
        h = bytes([(0x80 if fin else 0) | op])
        if n < 126:
            h += bytes([n])
        elif n < 65536:
            h += bytes([126]) + struct.pack(">H", n)
        else:
            h += bytes([127]) + struct.pack(">Q", n)
        return h + payload

    def send(self, op, payload):
        split = self.raw.faults.get("ws_split") or 0
        if split and op < 8 and len(payload) > split:
            out = b""
            for i in range(0, len(payload), split):
                part = payload[i:i + split]
                out += self.frame(op if i == 0 else 0, part, fin=i + split >= len(payload))
        else:
            out = self.frame(op, payload)
        self.raw.send(out, split)

    def close(self, code=1000, reason=b""):
        if not self.close_sent:
            self.close_sent = True
            try:
                self.send(8, struct.pack(">H", code) + reason)
            except Closed:
                pass

    def recv(self):
        """Next data message as (opcode, payload); None after a close frame."""
        op0, data = None, b""
        while True:
            b0, b1 = self.raw.read_exact(2)
            fin, op, masked, n = b0 & 0x80, b0 & 0x0f, b1 & 0x80, b1 & 0x7f
            if b0 & 0x70:
                self.close(1002, b"reserved bits set")
                raise Closed()
            if n == 126:
                n = struct.unpack(">H", self.raw.read_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.raw.read_exact(8))[0]
            if not masked:
                self.close(1002, b"client frames must be masked")
                raise Closed()
            if n > (1 << 24):
                self.close(1009, b"message too big")
                raise Closed()
            mask = self.raw.read_exact(4)
            p = self.raw.read_exact(n)
            p = bytes(c ^ mask[i & 3] for i, c in enumerate(p)) if n < 64 else _unmask(p, mask)
            if op >= 8:
                if op == 8:
                    self.close(struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1000)
                    return None
                if op == 9:
                    self.send(10, p)
                continue  # pong
            if op == 0:
                if op0 is None:
                    self.close(1002, b"unexpected continuation frame")
                    raise Closed()
            else:
                if op0 is not None:
                    self.close(1002, b"expected a continuation frame")
                    raise Closed()
                op0 = op
            data += p
            if fin:
                return op0, data


def _unmask(p, mask):
    n = len(p)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(p, "big") ^ m).to_bytes(n, "big")


class WSByteStream:
    """The SPDY byte stream inside binary WebSocket messages (the tunnel)."""

    def __init__(self, ws):
        self.ws, self.buf = ws, bytearray()
        self.faults = ws.raw.faults

    def read_exact(self, n):
        while len(self.buf) < n:
            m = self.ws.recv()
            if m is None:
                raise Closed()
            self.buf += m[1]
        b = bytes(self.buf[:n])
        del self.buf[:n]
        return b

    def send(self, data):
        self.ws.send(2, data)  # one message per SPDY frame, as the apiserver's tunnel writes them


class RawByteStream:
    def __init__(self, raw):
        self.raw = raw

    def read_exact(self, n):
        return self.raw.read_exact(n)

    def send(self, data):
        self.raw.send(data)


# ------------------------------------------------------------------ the pod end of one forwarded connection

class PodConn:
    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = False

    def write(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def shut_wr(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        with self.lock:
            if not self.closed:
                self.closed = True
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def pump(pod, raw, on_data, on_eof):
    """Copy pod -> client until EOF; on_data(bytes) frames and sends."""
    try:
        while True:
            try:
                d = pod.sock.recv(32768)
            except OSError:
                d = b""
            if not d or pod.closed:
                break
            on_data(d)
            raw.count_from_pod(len(d))
    except Closed:
        pass
    finally:
        try:
            on_eof()
        except Closed:
            pass
        pod.close()
        pod.sock.close()


# ------------------------------------------------------------------ WebSocket v4 session

def serve_v4(raw, protocol, ports, netns, pod_name, pod_uid, log):
    ws = WS(raw)
    b64 = protocol == V4B64
    lock = threading.Lock()
    state = {"left": len(ports)}

    def send(ch, payload):
        if b64:
            ws.send(1, (chr(ord("0") + ch) + base64.b64encode(payload).decode()).encode())
        else:
            ws.send(2, bytes([ch]) + payload)

    def port_done():
        with lock:
            state["left"] -= 1
            last = state["left"] == 0
        if last:  # the kubelet closes the WebSocket when every port handler has ended
            ws.close(1000)
            raw.abort()

    pods = {}
    try:
        for i, port in enumerate(ports):
            send(2 * i, struct.pack("<H", port))
            send(2 * i + 1, struct.pack("<H", port))
        for i, port in enumerate(ports):
            try:
                pods[i] = connect_pod(raw, netns, port)
            except OSError as e:
                log("portforward v4: port %d: %s" % (port, e.strerror or e))
                send(2 * i + 1, ("error forwarding port %d to pod %s, uid %s: %s" % (
                    port, pod_name, pod_uid, e.strerror or e)).encode())
                port_done()
                continue
            threading.Thread(target=pump, daemon=True, args=(
                pods[i], raw, lambda d, ch=2 * i: send(ch, d), port_done)).start()
        raw.uncork()  # fault portforward_coalesce: 101 + prefixes (+ errors) at once
        while True:
            m = ws.recv()
            if m is None:
                break
            op, p = m
            if b64:
                if op != 1 or not p:
                    continue
                ch, p = p[0] - ord("0"), base64.b64decode(p[1:])
            else:
                if not p:
                    continue
                ch, p = p[0], p[1:]
            if ch % 2 == 0 and ch // 2 in pods and p:
                pods[ch // 2].write(p)
    except Closed:
        pass
    finally:
        for pc in pods.values():
            pc.close()
        raw.abort()


# ------------------------------------------------------------------ SPDY/3.1 session

def spdy_ctrl(ftype, flags, payload):
    return struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload


class SPDY:
    def __init__(self, stream, raw, netns, pod_name, pod_uid, log, kind):
        self.stream, self.raw, self.netns, self.log, self.kind = stream, raw, netns, log, kind
        self.pod_name, self.pod_uid = pod_name, pod_uid
        self.inflate = zlib.decompressobj(zdict=SPDY_DICT)
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, SPDY_DICT)
        self.wlock = threading.Lock()
        self.streams = {}   # sid -> {"type", "port", "rid"}
        self.pairs = {}     # requestid -> {"error": sid, "data": sid, "pod": PodConn, "pending": [..]}

    def send(self, frame):
        self.stream.send(frame)

    def headers(self, block):
        raw = self.inflate.decompress(block)
        n = struct.unpack(">I", raw[:4])[0]
        off, h = 4, {}
        for _ in range(n):
            ln = struct.unpack(">I", raw[off:off + 4])[0]
            name = raw[off + 4:off + 4 + ln].decode().lower()
            off += 4 + ln
            lv = struct.unpack(">I", raw[off:off + 4])[0]
            h[name] = raw[off + 4:off + 4 + lv].decode()
            off += 4 + lv
        return h

    def syn_reply(self, sid):
        with self.wlock:  # one deflate stream per direction: compress and send in order
            block = self.deflate.compress(struct.pack(">I", 0)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            self.send(spdy_ctrl(2, 0, struct.pack(">I", sid) + block))

    def data(self, sid, payload, fin=False):
        for i in range(0, max(len(payload), 1), 0xffffff):
            part = payload[i:i + 0xffffff]
            self.send(struct.pack(">II", sid & 0x7fffffff, ((1 if fin and i + 0xffffff >= len(payload) else 0) << 24)
                                  | len(part)) + part)

    def rst(self, sid, status):
        self.send(spdy_ctrl(3, 0, struct.pack(">II", sid, status)))

    def start_pair(self, rid):
        pr = self.pairs[rid]
        port = pr["port"]
        try:
            pod = connect_pod(self.raw, self.netns, port)
        except OSError as e:
            self.log("portforward %s: port %d: %s" % (self.kind, port, e.strerror or e))
            try:
                self.data(pr["error"], ("error forwarding port %d to pod %s, uid %s: %s" % (
                    port, self.pod_name, self.pod_uid, e.strerror or e)).encode())
                self.data(pr["error"], b"", fin=True)
                self.data(pr["data"], b"", fin=True)
            except Closed:
                pass
            return
        pr["pod"] = pod
        for d in pr.pop("pending", []):
            pod.write(d)
        if pr.get("fin_in"):
            pod.shut_wr()

        def eof():
            if not pr.get("reset"):
                self.data(pr["data"], b"", fin=True)
                self.data(pr["error"], b"", fin=True)
        threading.Thread(target=pump, daemon=True,
                         args=(pod, self.raw, lambda d: self.data(pr["data"], d), eof)).start()

    def run(self):
        try:
            if self.raw.corked is not None:
                # Fault portforward_coalesce: SPDY bytes in the same packet as the
                # 101 (k8s-wire.md §3.2). A server PING (even id) must come back.
                self.log("portforward %s: server ping 2 sent with the 101" % self.kind)
                self.send(spdy_ctrl(6, 0, struct.pack(">I", 2)))
                self.raw.uncork()
            while True:
                hdr = self.stream.read_exact(8)
                ln = int.from_bytes(hdr[5:8], "big")
                flags = hdr[4]
                payload = self.stream.read_exact(ln)
                if hdr[0] & 0x80:
                    ver, ftype = struct.unpack(">HH", hdr[:4])
                    if ver & 0x7fff != 3:
                        self.rst(0, 4)
                        break
                    if ftype == 1:
                        self.on_syn(payload)
                    elif ftype == 3:
                        sid = struct.unpack(">I", payload[:4])[0] & 0x7fffffff
                        self.on_rst(sid)
                    elif ftype == 6:
                        pid = struct.unpack(">I", payload[:4])[0]
                        if pid % 2:  # the client's ping: echo it
                            self.send(spdy_ctrl(6, 0, payload[:4]))
                        else:  # the answer to ours (server ids are even)
                            self.log("portforward %s: the client answered server ping %d" % (self.kind, pid))
                    elif ftype == 7:
                        break
                    # SETTINGS, HEADERS, WINDOW_UPDATE: spdystream keeps no windows; ignore
                else:
                    sid = struct.unpack(">I", hdr[:4])[0] & 0x7fffffff
                    self.on_data(sid, payload, flags & 1)
        except Closed:
            pass
        finally:
            for pr in self.pairs.values():
                if pr.get("pod"):
                    pr["pod"].close()
            self.raw.abort()

    def on_syn(self, payload):
        sid = struct.unpack(">I", payload[:4])[0] & 0x7fffffff
        h = self.headers(payload[10:])
        st, port, rid = h.get("streamtype"), h.get("port", ""), h.get("requestid")
        try:
            port = int(port)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            port = None
        if st not in ("data", "error") or port is None:
            self.log("portforward %s: rejecting stream %d with headers %s" % (self.kind, sid, h))
            self.rst(sid, 5)
            return
        if rid is None:  # old clients: pair consecutive streams
            rid = "sid-%d" % ((sid - 1) // 4)
        self.streams[sid] = {"type": st, "port": port, "rid": rid}
        self.syn_reply(sid)
        pr = self.pairs.setdefault(rid, {"pending": [], "port": port})
        pr[st] = sid
        if "error" in pr and "data" in pr and "pod" not in pr and not pr.get("started"):
            pr["started"] = True
            self.start_pair(rid)

    def on_data(self, sid, payload, fin):
        s = self.streams.get(sid)
        if not s:
            self.rst(sid, 2)
            return
        if s["type"] != "data":
            return  # the client half-closes the error stream at once
        pr = self.pairs[s["rid"]]
        pod = pr.get("pod")
        if pod is None:
            if payload:
                pr["pending"].append(payload)
            if fin:
                pr["fin_in"] = True
            return
        if payload:
            pod.write(payload)
        if fin:
            pod.shut_wr()

    def on_rst(self, sid):
        s = self.streams.get(sid)
        if s:
            pr = self.pairs.get(s["rid"], {})
            if s["type"] == "data":
                pr["reset"] = True
                if pr.get("pod"):
                    pr["pod"].close()
