#!/usr/bin/python3
"""A strict fake kube-apiserver for tests/cluster (README.md there).

  apiserver.py --state DIR --node NODE

Serves HTTPS on 0.0.0.0:6443 of the node network namespace (TLS with the
cluster CA; client-certificate or bearer-token auth; each pod's
service-account token), plus an admin/test socket DIR/admin.sock (one JSON
request per line, see tests/cluster/admin). Objects start from
DIR/objects.json; Jobs and Pods POSTed for this node are run by the
built-in "kubelet" (cluster.py functions) as processes in new pod network
namespaces. Wire behaviour follows shared/reference/k8s-wire.md §2, §3, §7.

This file parses the command line and starts the servers; the rest is split
by concern: api_store.py (shared state, object store, selectors, Events),
api_schema.py (body validation against the OpenAPI subset), api_policy.py
(RBAC, Pod Security Admission), api_kubelet.py (pod processes, status,
deletion), api_http.py (TLS server, auth, routing, discovery, the
port-forward upgrade), api_reads.py (Tables, list, watch, pods/log),
api_writes.py (create, delete, ephemeral containers, the job controller)
and api_admin.py (the admin socket).
"""
import argparse
import json
import os
import ssl
import sys
import threading

# Run as root from the source tree: importing cluster.py, portforward.py and
# the api_*.py modules must not leave tests/cluster/__pycache__ behind (set
# before the imports).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
import api_store  # noqa: E402
from api_admin import AdminHandler, AdminServer  # noqa: E402
from api_http import Handler, Server  # noqa: E402
from api_store import LOG, RESOURCES, STORE, TOKENS, put  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--port", type=int, default=cluster.API_PORT)
    a = ap.parse_args()
    STATE, NODE = a.state, a.node
    # The other modules read these as api_store.STATE and api_store.NODE.
    api_store.STATE, api_store.NODE = STATE, NODE
    with open(STATE + "/apiserver.pid.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(STATE + "/apiserver.pid.tmp", STATE + "/apiserver.pid")
    for o in json.load(open(STATE + "/objects.json")):
        plural = {v["kind"]: k for k, v in RESOURCES.items()}[o["kind"]]
        put(plural, o, "ADDED")
    TOKENS.update(json.load(open(STATE + "/tokens.json")))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(STATE + "/pki/apiserver.crt", STATE + "/pki/apiserver.key")
    ctx.load_verify_locations(STATE + "/pki/ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    srv = Server(("0.0.0.0", a.port), Handler, ctx)
    sock = STATE + "/admin.sock"
    if os.path.exists(sock):
        os.unlink(sock)
    adm = AdminServer(sock, AdminHandler)
    threading.Thread(target=adm.serve_forever, daemon=True).start()
    LOG("listening on 0.0.0.0:%d (node %s), %d objects" % (a.port, NODE, len(STORE)))
    srv.serve_forever()


if __name__ == "__main__":
    main()
