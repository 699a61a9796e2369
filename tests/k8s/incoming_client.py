#!/usr/bin/python3
# incoming_client.py: the cluster-side client of exec_incoming.sh, run in a
# pod's network and mount namespaces (so a service name resolves through the
# pod's DNS). Standard library only.
#
#   load HOST PORT PATH N CONC WANT [EXPECT]
#       N POSTs of PATH?i=K (K = 0..N-1), each on a connection of its own,
#       CONC at a time, with a body of 1..8000 bytes that differs per
#       request. The answer must be 200 with the body echoed (the pod's
#       /echo), or "EXPECT PATH?i=K\n" when EXPECT is given (a local app
#       under steal). Writes "POST PATH?i=K LENGTH SHA1[:12]" per request
#       to WANT, prints "answered A of N" and "latency median M ms p99 P ms"
#       (connect to the last byte of the answer), and the first few wrong
#       answers. Exit 0 when all N were answered as expected.
#   seq HOST PORT REQ...
#       The requests on one keep-alive connection, in order; REQ is
#       "METHOD PATH [HEADER: VALUE]". Prints "STATUS BODY" per request (the
#       body's first line).
#   ws HOST PORT PATH [HEADER: VALUE]
#       A WebSocket upgrade of PATH: prints the status line; after a 101 it
#       checks Sec-WebSocket-Accept, sends three masked frames (5 bytes, 200
#       KiB, 1 byte) and reads them back as the echo server returns them;
#       prints "accept ok" and "echo ok BYTES" or what went wrong.
#   raw HOST PORT WAIT_MS HEX
#       Connects, waits WAIT_MS, sends the bytes HEX spells, half-closes and
#       prints what comes back before the server's EOF (5 s at most), runs
#       of white space as one space, at most 1000 characters.
import base64
import hashlib
import http.client
import os
import random
import socket
import statistics
import sys
import threading
import time


def body_of(i):
    r = random.Random(i)
    return r.randbytes(r.randint(1, 8000))


def load(host, port, path, n, conc, want, expect=None):
    addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    lat = [None] * n
    bad = []
    lock = threading.Lock()
    nxt = [0]

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            body = body_of(i)
            p = "%s?i=%d" % (path, i)
            want_body = body if expect is None else ("%s %s\n" % (expect, p)).encode()
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection(addr, port, timeout=20)
                c.request("POST", p, body, {"Content-Type": "application/octet-stream"})
                r = c.getresponse()
                got = r.read()
                c.close()
                ok = r.status == 200 and got == want_body
                what = "%d %r" % (r.status, got[:60])
            except Exception as e:  # noqa: BLE001 - any failure is a wrong answer
                ok, what = False, repr(e)
            dt = time.monotonic() - t0
            with lock:
                if ok:
                    lat[i] = dt
                else:
                    bad.append("%d: %s" % (i, what))

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(want, "w") as f:
        for i in range(n):
            b = body_of(i)
            f.write("POST %s?i=%d %d %s\n" % (path, i, len(b), hashlib.sha1(b).hexdigest()[:12]))
    got = sorted(x for x in lat if x is not None)
    print("resolved %s to %s" % (host, addr))
    print("answered %d of %d" % (len(got), n))
    if got:
        p99 = got[min(len(got) - 1, int(len(got) * 0.99))]
        print("latency median %.2f ms p99 %.2f ms" % (statistics.median(got) * 1e3, p99 * 1e3))
    for b in sorted(bad)[:5]:
        print("wrong:", b)
    return 0 if len(got) == n else 1


def seq(host, port, reqs):
    c = http.client.HTTPConnection(host, port, timeout=20)
    for spec in reqs:
        parts = spec.split(" ", 2)
        headers = {}
        if len(parts) == 3:
            k, v = parts[2].split(":", 1)
            headers[k.strip()] = v.strip()
        body = b"body of " + spec.encode() if parts[0] in ("POST", "PUT") else None
        c.request(parts[0], parts[1], body, headers)
        r = c.getresponse()
        text = r.read().decode(errors="replace")
        print(r.status, text.split("\n")[0])
    c.close()
    return 0


def ws(host, port, path, header=None):
    s = socket.create_connection((host, port), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = header + "\r\n" if header else ""
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (path, host, key, extra)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            break
        head += b
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    print(lines[0])
    if " 101 " not in lines[0] + " ":
        return 1
    want = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    hdrs = {ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip()
            for ln in lines[1:] if ":" in ln}
    if hdrs.get("sec-websocket-accept") != want:
        print("accept wrong: %r" % hdrs.get("sec-websocket-accept"))
        return 1
    print("accept ok")
    sent = b""
    for payload in (b"hello", os.urandom(200 << 10), b"!"):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x82])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            hdr += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        frame = hdr + mask + bytes(b ^ mask[k % 4] for k, b in enumerate(payload))
        s.sendall(frame)
        sent += frame
        # One frame at a time, each echoed before the next goes.
        while len(rest) < len(sent):
            b = s.recv(1 << 16)
            if not b:
                break
            rest += b
        if rest != sent[: len(rest)] or len(rest) < len(sent):
            print("echo wrong after %d of %d bytes" % (len(rest), len(sent)))
            return 1
    s.close()
    print("echo ok %d" % len(sent))
    return 0


def raw(host, port, wait_ms, data):
    addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    s = socket.create_connection((addr, port), timeout=5)
    time.sleep(wait_ms / 1000)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    try:
        while len(got) < 65536:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    s.close()
    print(" ".join(got.decode("latin-1").split())[:1000])
    return 0


def main():
    a = sys.argv[1:]
    if a and a[0] == "load" and len(a) in (7, 8):
        return load(a[1], int(a[2]), a[3], int(a[4]), int(a[5]), a[6], a[7] if len(a) == 8 else None)
    if a and a[0] == "seq" and len(a) >= 4:
        return seq(a[1], int(a[2]), a[3:])
    if a and a[0] == "raw" and len(a) == 5:
        return raw(a[1], int(a[2]), int(a[3]), bytes.fromhex(a[4]))
    if a and a[0] == "ws" and len(a) in (4, 5):
        return ws(a[1], int(a[2]), a[3], a[4] if len(a) == 5 else None)
    sys.stderr.write("usage: see the head of %s\n" % sys.argv[0])
    return 2


if __name__ == "__main__":
    sys.exit(main())
