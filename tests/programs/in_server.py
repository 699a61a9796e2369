#!/usr/bin/python3
# in_server.py NAME PORT LOG: an HTTP server for the incoming-traffic
# scenarios. It listens on [::] PORT (dual stack; $IN_ADDR another IPv6
# address, $IN_V6ONLY=1 IPv6 only), prints "ready PORT" with the port
# getsockname() reports once listen() returned, answers every request with
# "NAME PATH", and appends one line per request to LOG: "METHOD PATH
# BODY_LENGTH BODY_SHA1 PEER_IP" (the peer as accept() and getpeername()
# report it; "mismatch" if they differ). A GET with "Upgrade: websocket"
# gets the RFC 6455 handshake (101 with Sec-WebSocket-Accept); then the
# server echoes every byte it reads, frames and all, until EOF.
import base64
import hashlib
import http.server
import os
import socket
import sys
import time

name, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        peer = self.connection.getpeername()[0]
        if peer != self.client_address[0]:
            peer = "mismatch:%s:%s" % (peer, self.client_address[0])
        with open(log, "a") as f:
            f.write("%s %s %d %s %s\n" % (self.command, self.path, len(body),
                                          hashlib.sha1(body).hexdigest()[:12], peer))
        if (self.headers.get("Upgrade") or "").lower() == "websocket":
            self.websocket()
            return
        out = ("%s %s\n" % (name, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_any

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            b = self.rfile.read1(65536)
            if not b:
                break
            self.wfile.write(b)
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = int(os.environ.get("IN_BACKLOG", "5"))

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY,
                               int(os.environ.get("IN_V6ONLY", "0")))
        super().server_bind()


srv = Server((os.environ.get("IN_ADDR", "::"), port), Handler)
print("ready", srv.socket.getsockname()[1], flush=True)
time.sleep(float(os.environ.get("IN_ACCEPT_DELAY", "0")))
srv.serve_forever()
