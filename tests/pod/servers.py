#!/usr/bin/python3
"""Service-pod servers for the local pod fixture (tests/pod/up).

  servers.py http ADDR PORT   HTTP/1.1 on ADDR (use "::" for IPv4+IPv6)
  servers.py udp  ADDRS PORT  UDP echo on each of the comma-separated ADDRS

HTTP paths (all bodies are plain text):
  /, /index.html      "hello from the pod\n"
  /peer               the client's address as this server sees it (IPv4-mapped
                      addresses are unmapped), e.g. "10.244.0.10\n"
  /echo               GET: the request line and headers; POST/PUT: the request body
  /cgi-bin/echo       POST/PUT: the request body, as /echo (a path busybox httpd
                      runs a CGI script for, so one request suits both servers)
  /bytes?n=N          N bytes (N <= 256 MiB) of the repeating pattern
                      b"0123456789abcdef..." (PATTERN below), with Content-Length
  /slow?seconds=S     Content-Length of S*10 lines; one line "tick NNNN\n" every
                      100 ms, so a client sees a long download that is still open
  /delay?ms=M         "hello from the pod\n" after M ms (M <= 10000)
Anything else is a 404. Standard library only; runs until killed.
"""
import select
import socket
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HELLO = b"hello from the pod\n"
PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/\n"
MAX_BYTES = 256 << 20


def unmapped(host):
    return host[7:] if host.startswith("::ffff:") else host


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mtpod-web/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (unmapped(self.client_address[0]), fmt % args))

    def reply(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def query(self, name, default, limit):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        try:
            v = int(q.get(name, [default])[0])
        except ValueError:
            v = default
        return max(0, min(v, limit))

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self.reply(HELLO)
        elif path == "/peer":
            self.reply((unmapped(self.client_address[0]) + "\n").encode())
        elif path == "/echo":
            head = "%s %s %s\n" % (self.command, self.path, self.request_version)
            self.reply((head + str(self.headers)).encode())
        elif path == "/delay":
            time.sleep(self.query("ms", 100, 10000) / 1000.0)
            self.reply(HELLO)
        elif path == "/bytes":
            n = self.query("n", 0, MAX_BYTES)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            block = PATTERN * (65536 // len(PATTERN) + 1)
            block = block[: (65536 // len(PATTERN)) * len(PATTERN)]
            while n > 0:
                chunk = block[: min(n, len(block))]
                self.wfile.write(chunk)
                n -= len(chunk)
        elif path == "/slow":
            lines = self.query("seconds", 30, 600) * 10
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(lines * len(b"tick 0000\n")))
            self.end_headers()
            for i in range(lines):
                self.wfile.write(b"tick %04d\n" % (i % 10000))
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.reply(b"not found\n", 404)

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        if path not in ("/echo", "/cgi-bin/echo"):
            self.reply(b"not found\n", 404)
            return
        n = int(self.headers.get("Content-Length", "0"))
        if n < 0 or n > MAX_BYTES:
            self.reply(b"too large\n", 413)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        while n > 0:
            chunk = self.rfile.read(min(n, 65536))
            if not chunk:
                break
            self.wfile.write(chunk)
            n -= len(chunk)

    do_PUT = do_POST


class DualStackHTTPServer(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True

    def __init__(self, addr, handler):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def udp_echo(addrs, port):
    # One socket per address, not a wildcard: a reply must leave from the
    # address the datagram was sent to, or a connected client drops it.
    socks = []
    for addr in addrs.split(","):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((addr, port))
        socks.append(s)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("http", "udp"):
        sys.stderr.write(__doc__)
        return 2
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "http":
        DualStackHTTPServer((addr, port), Handler).serve_forever()
    else:
        udp_echo(addr, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
