"""The admin/test socket of the fake API server (apiserver.py): one JSON
request per line on DIR/admin.sock (tests/cluster/admin): pod-status,
fault switches, expire-now, grants, RBAC bindings, tokens, namespace
labels, reset."""
import copy
import json
import os
import socketserver

import cluster
from api_kubelet import set_pod_status
from api_policy import check_role
from api_reads import watch_close_limits
from api_store import BINDINGS, DEFAULT_FAULTS, FAULTS, GRANTS, LOCK, LOG, RV, TOKENS, get_obj, put


# ------------------------------------------------------------------ admin socket

def admin(req):
    op = req.get("op")
    if op == "ping":
        return {"ok": True, "rv": RV[0]}
    if op == "pod-status":  # merge req["status"] into a pod's status (test hook)
        def upd(p):
            st = p.setdefault("status", {})
            for k, v in req["status"].items():
                st[k] = v
            if "phase" in req["status"] and req["status"]["phase"] != "Running":
                for cs in st.get("containerStatuses", []):
                    cs["ready"] = False
                for c in st.get("conditions", []):
                    if c["type"] in ("Ready", "ContainersReady"):
                        c["status"] = "False"
        p = set_pod_status(req["namespace"], req["name"], upd)
        return {"ok": p is not None}
    if op == "fault":  # set one fault switch: {"name": ..., "value": ...}
        if req["name"] not in FAULTS:
            return {"ok": False, "error": "unknown fault %s" % req["name"]}
        if req["name"] == "watch_close_after":
            try:
                watch_close_limits(req["value"])
            except (TypeError, ValueError, AttributeError):
                return {"ok": False, "error": 'watch_close_after: N or {"events": N, "seconds": S}'}
        if req["name"] == "portforward_error" and not isinstance(req["value"], str):
            return {"ok": False, "error": "portforward_error: a string (empty: off)"}
        FAULTS[req["name"]] = req["value"]
        return {"ok": True}
    if op == "expire-now":  # every resourceVersion so far is "too old"
        FAULTS["expired_before"] = RV[0] + 1
        return {"ok": True}
    if op == "grant":
        GRANTS.append((req["user"], req["verb"], req["resource"]))
        return {"ok": True}
    if op == "bind":  # RoleBinding (namespace) or ClusterRoleBinding (namespace null) of parsed roles
        ns = req.get("namespace")
        kinds = ("Role", "ClusterRole") if ns is not None else ("ClusterRole",)
        if not req.get("roles"):
            return {"ok": False, "error": "no %s to bind" % " or ".join(kinds)}
        if ns is not None and not get_obj("namespaces", None, ns):
            return {"ok": False, "error": 'namespaces "%s" not found' % ns}
        new = []
        for doc in req["roles"]:
            try:
                rules = check_role(doc, kinds)
            except ValueError as e:
                return {"ok": False, "error": str(e)}
            new.append({"subject": req["user"], "namespace": ns, "kind": doc["kind"],
                        "role": doc["metadata"]["name"], "rules": rules})
        with LOCK:
            BINDINGS.extend(new)
        LOG("admin: bound %s to %s %s" % (", ".join("%s/%s" % (b["kind"], b["role"]) for b in new), req["user"],
                                          "in namespace " + ns if ns is not None else "cluster-wide"))
        return {"ok": True, "bound": ["%s/%s" % (b["kind"], b["role"]) for b in new]}
    if op == "token":  # a bearer token for an arbitrary user (and groups)
        tok = cluster.b64u(os.urandom(24))
        groups = list(req.get("groups") or [])
        with LOCK:
            TOKENS[tok] = {"user": req["user"], "groups": groups + ["system:authenticated"]}
        return {"ok": True, "token": tok}
    if op == "ns-label":  # set (or, with an empty value, remove) a namespace label
        with LOCK:
            o = get_obj("namespaces", None, req["namespace"])
            if not o:
                return {"ok": False, "error": 'namespaces "%s" not found' % req["namespace"]}
            labels = o["metadata"].setdefault("labels", {})
            if req.get("value"):
                labels[req["key"]] = req["value"]
            else:
                labels.pop(req["key"], None)
            put("namespaces", o, "MODIFIED")
        return {"ok": True, "labels": labels}
    if op == "reset":
        FAULTS.update(copy.deepcopy(DEFAULT_FAULTS))
        del GRANTS[:]
        with LOCK:
            del BINDINGS[:]
        return {"ok": True}
    if op == "get":
        return {"ok": True, "object": get_obj(req["resource"], req.get("namespace"), req["name"])}
    return {"ok": False, "error": "unknown op %r" % op}


class AdminHandler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            try:
                resp = admin(json.loads(line))
            except Exception as e:  # noqa: BLE001
                resp = {"ok": False, "error": repr(e)}
            self.wfile.write((json.dumps(resp) + "\n").encode())


class AdminServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
