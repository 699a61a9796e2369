"""HTTPS front of the fake API server (apiserver.py): the TLS server,
replies, authentication and authorization, routing (RequestInfo, then
authz, then the resource), discovery, and the pods/portforward upgrade
(portforward.py speaks the protocols after it)."""
import json
import socket
import ssl
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cluster
import portforward
from api_kubelet import pod_netns
from api_policy import rbac_allows
from api_reads import Reads, to_table
from api_store import (CREATABLE, DELETABLE, FAULTS, GRANTS, LOCK, LOG, RESOURCES, SUBRESOURCES, TOKENS, APIError,
                       bad_request, get_obj, not_found)
from api_writes import Writes

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-mtc", "gitCommit": "0" * 40,
           "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.4",
           "compiler": "gc", "platform": "linux/amd64"}


# ------------------------------------------------------------------ HTTP

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, ctx):
        self.ctx = ctx
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class Handler(Reads, Writes, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mtc-apiserver"
    timeout = 300

    def setup(self):
        self.request.settimeout(10)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            LOG("TLS handshake from %s failed: %s" % (self.client_address[0], e))
            raise
        self.request.settimeout(None)
        super().setup()

    def log_message(self, fmt, *args):
        LOG("%s %s" % (self.client_address[0], fmt % args))

    # ---- replies
    def send_json(self, code, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            if isinstance(v, list):
                for x in v:
                    self.send_header(k, x)
            else:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_status(self, err):
        self.send_json(err.code, err.status, err.headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        return self.rfile.read(n) if n else b""

    # ---- auth
    def identity(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            with LOCK:
                who = TOKENS.get(auth[7:].strip())
            return who
        try:
            cert = self.request.getpeercert()
        except (ValueError, AttributeError):
            cert = None
        if cert:
            subj = dict(x[0] for x in cert.get("subject", ()))
            groups = [v for rdn in cert.get("subject", ()) for (k, v) in rdn if k == "organizationName"]
            return {"user": subj.get("commonName", ""), "groups": groups + ["system:authenticated"]}
        return None

    def authorize(self, who, verb, plural, sub, ns, name, g=None):
        """RBAC-like authorization: fault switch "forbid" first, then
        system:masters, `admin grant`, and the Role/ClusterRole bindings of
        `admin bind-role`/`bind-clusterrole`. NS is the request's namespace
        (for a namespaces/NAME request, NAME, as in the real RequestInfo)."""
        res = plural + ("/" + sub if sub else "")
        if g is None:
            g = RESOURCES.get(plural, {}).get("group", "")
        for fv, fr in FAULTS["forbid"]:
            if fv in (verb, "*") and fr in (res, plural, "*"):
                break
        else:
            if "system:masters" in who.get("groups", []):
                return
            for u, v, r in GRANTS:
                if u in (who["user"], "*") and v in (verb, "*") and r in (res, "*"):
                    return
            if rbac_allows(who, verb, g, plural, sub, ns, name):
                return
        qual = "%s.%s" % (plural, g) if g else plural
        what = '%s "%s"' % (qual, name) if name else qual
        where = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
        raise APIError(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s'
                       % (what, who["user"], verb, res, g, where),
                       dict({"name": name} if name else {}, group=g, kind=plural))

    def fault_errors(self, verb, plural):
        for e in FAULTS["errors"]:
            if e.get("verb", "*") in (verb, "*") and e.get("resource", "*") in (plural, "*"):
                if e.get("code") == "timeout":
                    time.sleep(float(e.get("seconds", 60)))
                    raise APIError(504, "Timeout", "Timeout: request did not complete within requested timeout - "
                                   "context deadline exceeded", {})
                raise APIError(500, "InternalError", "Internal error occurred: injected fault",
                               {"causes": [{"message": "injected fault"}]})

    # ---- routing
    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        try:
            u = urllib.parse.urlsplit(self.path)
            self.q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
            self.qall = urllib.parse.parse_qs(u.query, keep_blank_values=True)
            path = u.path.rstrip("/") or "/"
            who = self.identity()
            if who is None and method == "GET" and path in ("/version", "/healthz", "/livez", "/readyz"):
                # system:public-info-viewer (anonymous auth is on by default)
                who = {"user": "system:anonymous", "groups": ["system:unauthenticated"]}
            if who is None:
                # drain a body so the connection stays usable
                if method in ("POST", "PUT", "PATCH", "DELETE"):
                    self.read_body()
                raise APIError(401, "Unauthorized", "Unauthorized")
            self.who = who
            if path in ("/healthz", "/livez", "/readyz"):
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(body)
                return
            if method == "GET" and self.discovery(path):
                return
            self.resource(method, path)
        except APIError as e:
            self.send_error_status(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001
            LOG("internal error on %s %s: %r" % (method, self.path, e))
            import traceback
            traceback.print_exc()
            try:
                self.send_error_status(APIError(500, "InternalError", "Internal error occurred: %s" % e))
            except OSError:
                pass

    def discovery(self, path):
        if path == "/version":
            self.send_json(200, VERSION)
        elif path == "/api":
            self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % (cluster.API_IP, cluster.API_PORT)}]})
        elif path == "/apis":
            groups = []
            for g in ("apps", "batch"):
                gv = {"groupVersion": g + "/v1", "version": "v1"}
                groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
            self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        elif path in ("/api/v1", "/apis/apps/v1", "/apis/batch/v1"):
            gv = "v1" if path == "/api/v1" else path[len("/apis/"):]
            group = "" if path == "/api/v1" else gv.split("/")[0]
            res = []
            for plural, info in RESOURCES.items():
                if info["group"] != group:
                    continue
                r = {"name": plural, "singularName": info["singular"], "namespaced": info["ns"],
                     "kind": info["kind"], "verbs": info["verbs"],
                     "storageVersionHash": hashlib_short(plural)}
                if info["short"]:
                    r["shortNames"] = info["short"]
                if info["cats"]:
                    r["categories"] = info["cats"]
                res.append(r)
                for sub, (kind, verbs) in SUBRESOURCES.get(plural, {}).items():
                    res.append({"name": plural + "/" + sub, "singularName": "", "namespaced": info["ns"],
                                "kind": kind, "verbs": verbs})
            self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                 "resources": res})
        elif path in ("/apis/apps", "/apis/batch"):
            g = path.split("/")[-1]
            gv = {"groupVersion": g + "/v1", "version": "v1"}
            self.send_json(200, {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv],
                                 "preferredVersion": gv})
        else:
            return False
        return True

    def resource(self, method, path):
        parts = path.strip("/").split("/")
        # RequestInfo first (apiserver/pkg/endpoints/request), then authorization,
        # then routing: an unknown resource of a forbidden user is a 403, not a 404.
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise APIError(404, "NotFound", "the server could not find the requested resource",
                           {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2 or (len(rest) >= 3 and rest[0] == "namespaces"):
            ns, rest = rest[1], rest[2:]
        if not rest:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        plural, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
        watch = self.q.get("watch") in ("1", "true")
        verb = {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create",
                "DELETE": "delete" if name else "deletecollection", "PUT": "update", "PATCH": "patch"}[method]
        if sub == "portforward" or sub == "exec":
            verb = "get" if method == "GET" else "create"
        body = self.read_body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
        auth_ns = ns if ns is not None else (name if plural == "namespaces" and name else None)
        self.authorize(self.who, verb, plural, sub, auth_ns, name, group)
        info = RESOURCES.get(plural)
        if not info or info["group"] != group or version != "v1" or len(rest) > 3 or \
                (ns is not None and not info["ns"]):
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if sub and sub not in SUBRESOURCES.get(plural, {}):
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        self.fault_errors(verb, plural)
        if ns is not None and info["ns"] and plural != "namespaces" and not get_obj("namespaces", None, ns) \
                and method in ("POST",):
            raise not_found("namespaces", ns)
        if method == "GET" and sub is None:
            if name and not watch:
                o = get_obj(plural, ns, name)
                if not o:
                    raise not_found(plural, name)
                o.setdefault("kind", info["kind"])
                o.setdefault("apiVersion", (group + "/v1") if group else "v1")
                if self.wants_table():
                    self.send_json(200, to_table(plural, [o], o["metadata"]["resourceVersion"],
                                                 self.q.get("includeObject", "Metadata")))
                else:
                    self.send_json(200, o)
                return
            if watch:
                self.watch(plural, info, ns, name)
                return
            self.list(plural, info, ns)
            return
        if sub == "log" and method == "GET":
            self.pod_log(ns, name)
            return
        if sub in ("portforward", "exec"):
            if not get_obj("pods", ns, name):
                raise not_found("pods", name)
            if "upgrade" not in self.headers.get("Connection", "").lower():
                raise bad_request("Upgrade request required")
            if sub == "exec":
                raise APIError(400, "BadRequest", "exec is not implemented by the tests/cluster fake API server")
            self.port_forward(ns, name, method)
            return
        if sub == "ephemeralcontainers" and method in ("PATCH", "PUT"):
            self.patch_ephemeral(ns, name, method, body)
            return
        if sub == "ephemeralcontainers" and method == "GET":
            o = get_obj("pods", ns, name)
            if not o:
                raise not_found("pods", name)
            self.send_json(200, o)
            return
        if method == "POST" and name is None:
            if plural not in CREATABLE:
                raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                               "resource", {"kind": plural, "group": group})
            self.create(plural, info, group, ns, body)
            return
        if method == "DELETE" and name and sub is None:
            if plural not in DELETABLE:
                raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                               "resource", {"kind": plural, "group": group})
            self.delete(plural, ns, name, body)
            return
        raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                       {"kind": plural, "group": group})

    # ---- pods/portforward (portforward.py does the protocols)
    def port_forward(self, ns, name, method):
        pod = get_obj("pods", ns, name)
        netns = pod_netns(ns, name)
        if pod["status"].get("phase") != "Running" or not netns:
            raise bad_request("unable to upgrade connection: pod %s is not running (phase %s)"
                              % (name, pod["status"].get("phase")))
        upgrade = self.headers.get("Upgrade", "").lower()
        uid = pod["metadata"]["uid"]
        if upgrade == "websocket":
            if method != "GET":
                raise bad_request("WebSocket upgrades must use GET")
            if not FAULTS["portforward_ws"]:
                raise bad_request("unable to upgrade connection: WebSocket upgrades refused (fault portforward_ws)")
            key = self.headers.get("Sec-WebSocket-Key", "")
            if self.headers.get("Sec-WebSocket-Version") != "13" or not key:
                raise bad_request("websocket: unsupported version or missing Sec-WebSocket-Key")
            offered = [p.strip() for h in self.headers.get_all("Sec-WebSocket-Protocol") or []
                       for p in h.split(",") if p.strip()]
            supported = ["", portforward.V4, portforward.V4B64, portforward.TUNNEL]
            chosen = "" if not offered else next((p for p in offered if p in supported), None)
            if chosen is None:
                self.send_response(403)
                msg = ("requested protocol(s) are not supported: %s; supports %s"
                       % (offered, supported)).encode()
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
            ports = []
            if chosen != portforward.TUNNEL:
                for v in self.qall.get("ports", []):
                    for ps in v.split(","):
                        try:
                            pn = int(ps)
                        except ValueError:
                            raise bad_request('unable to parse "%s" as a port: invalid syntax' % ps)
                        if not 0 < pn < 65536:
                            raise bad_request('port "%s" must be > 0 and < 65536' % ps)
                        ports.append(pn)
                if not ports:
                    raise bad_request('query parameter "port" is required')
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", portforward.ws_accept(key))
            if chosen:
                self.send_header("Sec-WebSocket-Protocol", chosen)
            raw = self.upgraded()
            if chosen == portforward.TUNNEL:
                LOG("portforward %s/%s: ws-tunnel by %s (SPDY in WebSocket)" % (ns, name, self.who["user"]))
                ws = portforward.WS(raw)
                portforward.SPDY(portforward.WSByteStream(ws), raw, netns, name, uid, LOG, "ws-tunnel").run()
                ws.close(1000)
            else:
                LOG("portforward %s/%s: websocket %s ports %s" % (ns, name, chosen or '""', ports))
                portforward.serve_v4(raw, chosen, ports, netns, name, uid, LOG)
            LOG("portforward %s/%s: done" % (ns, name))
            return
        if upgrade.startswith("spdy/3.1"):
            if method != "POST" and method != "GET":
                raise bad_request("SPDY upgrades must use POST")
            versions = [p.strip() for h in self.headers.get_all("X-Stream-Protocol-Version") or []
                        for p in h.split(",") if p.strip()]
            if not versions:
                raise bad_request("unable to upgrade: unable to negotiate protocol: client supports no protocols")
            if portforward.SPDY_PROTO not in versions:
                raise APIError(403, "Forbidden", "unable to upgrade: unable to negotiate protocol: no common protocol"
                               " between client %s and server [portforward.k8s.io]" % versions, {},
                               {"X-Accepted-Stream-Protocol-Versions": portforward.SPDY_PROTO})
            self.send_response(101, "Switching Protocols")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "SPDY/3.1")
            self.send_header("X-Stream-Protocol-Version", portforward.SPDY_PROTO)
            raw = self.upgraded()
            LOG("portforward %s/%s: spdy by %s" % (ns, name, self.who["user"]))
            portforward.SPDY(portforward.RawByteStream(raw), raw, netns, name, uid, LOG, "spdy").run()
            LOG("portforward %s/%s: done" % (ns, name))
            return
        raise bad_request("unable to upgrade connection: unsupported Upgrade %r" % self.headers.get("Upgrade"))

    def upgraded(self):
        """End the 101 head and return the connection after it: bytes the client
        sent right behind the request (still in rfile's buffer) plus the TLS socket.
        Fault portforward_coalesce: the head is held back and goes out in one write
        with the first protocol bytes (the WebSocket v4 port prefixes, or a server
        SPDY PING), so clients see them in the same packet and read as the 101."""
        head = None
        if FAULTS["portforward_coalesce"]:
            self._headers_buffer.append(b"\r\n")
            head = b"".join(self._headers_buffer)
            self._headers_buffer = []
        else:
            self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        initial = b""
        self.request.settimeout(0.02)
        try:
            initial = self.rfile.read1(65536) or b""
        except (socket.timeout, ssl.SSLError, OSError):
            pass
        self.request.settimeout(None)
        raw = portforward.Raw(self.request, initial, FAULTS, LOG)
        if head is not None:
            raw.cork(head)
        return raw


def hashlib_short(s):
    import hashlib
    import base64
    return base64.b64encode(hashlib.sha256(s.encode()).digest()[:8]).decode()
