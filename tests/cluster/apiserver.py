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
"""
import argparse
import copy
import datetime
import json
import os
import re
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Run as root from the source tree: importing cluster.py and portforward.py
# must not leave tests/cluster/__pycache__ behind (set before the imports).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
import portforward  # noqa: E402

# The official schemas the fake validates bodies against: a copy of
# shared/reference/k8s-openapi-subset.json kept in the tree (tests/data/),
# so the tests need nothing outside the repository.
SCHEMA_PATH = os.environ.get("MTC_OPENAPI_SUBSET", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "data", "k8s-openapi-subset.json"))

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-mtc", "gitCommit": "0" * 40,
           "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.4",
           "compiler": "gc", "platform": "linux/amd64"}

# (group, version, plural) -> info
RESOURCES = {
    "pods": dict(group="", version="v1", kind="Pod", ns=True, short=["po"], singular="pod",
                 verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                 cats=["all"], schema="io.k8s.api.core.v1.Pod"),
    "services": dict(group="", version="v1", kind="Service", ns=True, short=["svc"], singular="service",
                     verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                     cats=["all"], schema="io.k8s.api.core.v1.Service"),
    "namespaces": dict(group="", version="v1", kind="Namespace", ns=False, short=["ns"], singular="namespace",
                       verbs=["create", "delete", "get", "list", "patch", "update", "watch"], cats=[]),
    "nodes": dict(group="", version="v1", kind="Node", ns=False, short=["no"], singular="node",
                  verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                  cats=[]),
    "deployments": dict(group="apps", version="v1", kind="Deployment", ns=True, short=["deploy"],
                        singular="deployment", cats=["all"], schema="io.k8s.api.apps.v1.Deployment",
                        verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    "replicasets": dict(group="apps", version="v1", kind="ReplicaSet", ns=True, short=["rs"], singular="replicaset",
                        cats=["all"],
                        verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    "statefulsets": dict(group="apps", version="v1", kind="StatefulSet", ns=True, short=["sts"],
                         singular="statefulset", cats=["all"], schema="io.k8s.api.apps.v1.StatefulSet",
                         verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    "jobs": dict(group="batch", version="v1", kind="Job", ns=True, short=[], singular="job", cats=["all"],
                 schema="io.k8s.api.batch.v1.Job",
                 verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    "cronjobs": dict(group="batch", version="v1", kind="CronJob", ns=True, short=["cj"], singular="cronjob",
                     cats=["all"], schema="io.k8s.api.batch.v1.CronJob",
                     verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
    # core/v1 Events, written by the fake's controllers and kubelet (read-only over the API).
    "events": dict(group="", version="v1", kind="Event", ns=True, short=["ev"], singular="event", cats=[],
                   verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
}
SUBRESOURCES = {"pods": {"log": ("Pod", ["get"]), "portforward": ("PodPortForwardOptions", ["create", "get"]),
                         "exec": ("PodExecOptions", ["create", "get"]), "status": ("Pod", ["get", "patch", "update"]),
                         "ephemeralcontainers": ("Pod", ["get", "patch", "update"])},
                "deployments": {"status": ("Deployment", ["get", "patch", "update"])},
                "jobs": {"status": ("Job", ["get", "patch", "update"])}}
CREATABLE = {"pods", "jobs"}
DELETABLE = {"pods", "jobs"}
POD_FIELDS = {"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
              "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
              "status.nominatedNodeName"}
EXTRA_FIELDS = {"jobs": {"status.successful"}, "nodes": {"spec.unschedulable"},
                "namespaces": {"status.phase"}, "replicasets": {"status.replicas"},
                "services": {"spec.clusterIP", "spec.type"},
                # pkg/registry/core/event/strategy.go ToSelectableFields
                "events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                           "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                           "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}}
DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

STATE = None
NODE = None
LOCK = threading.RLock()
COND = threading.Condition(LOCK)
STORE = {}  # (plural, ns, name) -> obj
EVENTS = []  # (rv:int, plural, type, obj)
MAX_EVENTS = 2000
RV = [1000]
TOKENS = {}
# Fault switches (tests/cluster/admin fault NAME JSON; `admin reset` restores these).
DEFAULT_FAULTS = {"forbid": [], "errors": [], "pending": [], "errimagepull": [], "split": 0,
                  "watch_close_after": 0, "watch_expire": False, "expired_before": 0,
                  "ws_split": 0, "portforward_drop": 0, "portforward_ws": True,
                  "portforward_error": "", "portforward_coalesce": False}
FAULTS = copy.deepcopy(DEFAULT_FAULTS)
GRANTS = []  # (user, verb, resource) for service accounts ("*" wildcards)
BINDINGS = []  # {"subject", "namespace" (None: ClusterRoleBinding), "kind", "role", "rules"}
KUBELET = {}  # (ns, name) -> {"procs": {cname: Popen}, "netns": str, "dir": str}
LOG = lambda m: sys.stderr.write("%s apiserver: %s\n" % (time.strftime("%H:%M:%S"), m))  # noqa: E731


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def next_rv():
    RV[0] += 1
    return RV[0]


def qualified(plural):
    g = RESOURCES.get(plural, {}).get("group", "")
    return "%s.%s" % (plural, g) if g else plural


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason, "code": code}
    if details is not None:
        s["details"] = details
    return s


class APIError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details)
        self.code = code
        self.headers = headers or {}


def not_found(plural, name):
    return APIError(404, "NotFound", '%s "%s" not found' % (qualified(plural), name),
                    {"name": name, "group": RESOURCES.get(plural, {}).get("group", ""), "kind": plural})


def bad_request(msg):
    return APIError(400, "BadRequest", msg)


# ------------------------------------------------------------------ store

def put(plural, obj, etype):
    """Insert/replace OBJ, bump its resourceVersion, record a watch event."""
    with COND:
        rv = next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        key = (plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if etype == "DELETED":
            STORE.pop(key, None)
        else:
            STORE[key] = obj
        EVENTS.append((rv, plural, etype, copy.deepcopy(obj)))
        if len(EVENTS) > MAX_EVENTS:
            del EVENTS[:len(EVENTS) - MAX_EVENTS]
        COND.notify_all()
        return rv


def get_obj(plural, ns, name):
    with LOCK:
        o = STORE.get((plural, ns or "", name))
        return copy.deepcopy(o) if o else None


def list_objs(plural, ns):
    with LOCK:
        return [copy.deepcopy(o) for (p, n, _), o in sorted(STORE.items()) if p == plural and (ns is None or n == ns)]


def write_pods_json():
    """Rewrite pods.json from the kubelet's view (atomic)."""
    try:
        with open(STATE + "/pods.json") as f:
            cur = json.load(f)
    except (OSError, ValueError):
        cur = []
    with LOCK:
        keep = [p for p in cur if ("pods", p["namespace"], p["name"]) in STORE]
        names = {(p["namespace"], p["name"]) for p in keep}
        for (ns, name), k in KUBELET.items():
            if (ns, name) not in names and k.get("entry") and ("pods", ns, name) in STORE:
                keep.append(k["entry"])
    tmp = STATE + "/pods.json.tmp"
    with open(tmp, "w") as f:
        json.dump(keep, f, indent=1)
    os.rename(tmp, STATE + "/pods.json")


# ------------------------------------------------------------------ selectors

def split_top(s):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def parse_label_selector(s):
    reqs = []
    for term in split_top(s or ""):
        t = term.strip()
        m = re.match(r"^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$", t)
        if m:
            reqs.append((m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}))
            continue
        m = re.match(r"^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$", t)
        if m:
            reqs.append((m.group(1), {"==": "=", "=": "=", "!=": "!="}[m.group(2)], m.group(3)))
            continue
        m = re.match(r"^!\s*([^\s!=]+)$", t)
        if m:
            reqs.append((m.group(1), "!", None))
            continue
        if re.match(r"^[A-Za-z0-9./_-]+$", t):
            reqs.append((t, "exists", None))
            continue
        raise bad_request("unable to parse requirement: found '%s', expected: identifier" % t)
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for k, op, v in reqs:
        if op == "=" and labels.get(k) != v:
            return False
        if op == "!=" and labels.get(k) == v:
            return False
        if op == "in" and labels.get(k) not in v:
            return False
        if op == "notin" and k in labels and labels[k] in v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    return True


def field_value(obj, path):
    if path == "status.podIPs":
        return ",".join(p["ip"] for p in obj.get("status", {}).get("podIPs", []))
    if path == "source" and obj.get("kind", "Event") == "Event" and "involvedObject" in obj:
        return (obj.get("source") or {}).get("component", "")
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(plural, s):
    allowed = {"metadata.name", "metadata.namespace"}
    allowed |= POD_FIELDS if plural == "pods" else EXTRA_FIELDS.get(plural, set())
    reqs = []
    for term in (s or "").split(","):
        if not term.strip():
            continue
        m = re.match(r"^([^=!]+)(==|=|!=)(.*)$", term.strip())
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, term))
        if m.group(1) not in allowed:
            raise bad_request('field label not supported: %s' % m.group(1))
        reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return reqs


def fields_match(reqs, obj):
    for f, op, v in reqs:
        have = field_value(obj, f)
        if (have == v) != (op == "="):
            return False
    return True


# ------------------------------------------------------------------ tables

def age(ts):
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    s = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    if s < 0:
        s = 0
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = m // 60
    if h < 48:
        return "%dh" % h
    return "%dd" % (h // 24)


def pod_status_text(p):
    if p["metadata"].get("deletionTimestamp"):
        return "Terminating"
    st = p.get("status", {})
    reason = st.get("phase", "Pending")
    for cs in st.get("containerStatuses", []):
        s = cs.get("state", {})
        if "waiting" in s and s["waiting"].get("reason"):
            reason = s["waiting"]["reason"]
        elif "terminated" in s and s["terminated"].get("reason"):
            reason = s["terminated"]["reason"]
    return reason


COLS = {
    "pods": [("Name", "string", "name"), ("Ready", "string", ""), ("Status", "string", ""),
             ("Restarts", "string", ""), ("Age", "string", ""), ("IP", "string", "", 1), ("Node", "string", "", 1)],
    "deployments": [("Name", "string", "name"), ("Ready", "string", ""), ("Up-to-date", "string", ""),
                    ("Available", "string", ""), ("Age", "string", "")],
    "replicasets": [("Name", "string", "name"), ("Desired", "integer", ""), ("Current", "integer", ""),
                    ("Ready", "integer", ""), ("Age", "string", "")],
    "statefulsets": [("Name", "string", "name"), ("Ready", "string", ""), ("Age", "string", "")],
    "jobs": [("Name", "string", "name"), ("Status", "string", ""), ("Completions", "string", ""),
             ("Duration", "string", ""), ("Age", "string", "")],
    "cronjobs": [("Name", "string", "name"), ("Schedule", "string", ""), ("Suspend", "boolean", ""),
                 ("Active", "integer", ""), ("Last Schedule", "string", ""), ("Age", "string", "")],
    "services": [("Name", "string", "name"), ("Type", "string", ""), ("Cluster-IP", "string", ""),
                 ("External-IP", "string", ""), ("Port(s)", "string", ""), ("Age", "string", "")],
    "nodes": [("Name", "string", "name"), ("Status", "string", ""), ("Roles", "string", ""),
              ("Age", "string", ""), ("Version", "string", "")],
    "namespaces": [("Name", "string", "name"), ("Status", "string", ""), ("Age", "string", "")],
    # pkg/printers/internalversion/printers.go eventColumnDefinitions
    "events": [("Last Seen", "string", ""), ("Type", "string", ""), ("Reason", "string", ""),
               ("Object", "string", ""), ("Subobject", "string", "", 1), ("Source", "string", "", 1),
               ("Message", "string", ""), ("First Seen", "string", "", 1), ("Count", "string", "", 1),
               ("Name", "string", "name", 1)],
}


def cells(plural, o):
    md, sp, st = o["metadata"], o.get("spec", {}), o.get("status", {})
    a = age(md.get("creationTimestamp"))
    if plural == "pods":
        css = st.get("containerStatuses", [])
        ready = sum(1 for c in css if c.get("ready"))
        return [md["name"], "%d/%d" % (ready, len(sp.get("containers", []))), pod_status_text(o),
                str(sum(c.get("restartCount", 0) for c in css)), a, st.get("podIP", "<none>"),
                sp.get("nodeName", "<none>")]
    if plural == "deployments":
        return [md["name"], "%d/%d" % (st.get("readyReplicas", 0), sp.get("replicas", 1)),
                str(st.get("updatedReplicas", 0)), str(st.get("availableReplicas", 0)), a]
    if plural == "replicasets":
        return [md["name"], sp.get("replicas", 1), st.get("replicas", 0), st.get("readyReplicas", 0), a]
    if plural == "statefulsets":
        return [md["name"], "%d/%d" % (st.get("readyReplicas", 0), sp.get("replicas", 1)), a]
    if plural == "jobs":
        conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
        status = "Complete" if conds.get("Complete") == "True" else (
            "Failed" if conds.get("Failed") == "True" else "Running")
        return [md["name"], status, "%d/%d" % (st.get("succeeded", 0), sp.get("completions", 1)), "", a]
    if plural == "cronjobs":
        return [md["name"], sp.get("schedule", ""), bool(sp.get("suspend", False)), len(st.get("active", [])),
                "<none>", a]
    if plural == "services":
        ports = ",".join("%d/%s" % (p["port"], p.get("protocol", "TCP")) for p in sp.get("ports", []))
        return [md["name"], sp.get("type", "ClusterIP"), sp.get("clusterIP", ""), "<none>", ports, a]
    if plural == "nodes":
        return [md["name"], "Ready", "control-plane", a, "v1.32.0"]
    if plural == "namespaces":
        return [md["name"], st.get("phase", "Active"), a]
    if plural == "events":
        first = age(o.get("firstTimestamp") or o.get("eventTime") or md.get("creationTimestamp"))
        last = age(o.get("lastTimestamp") or o.get("eventTime") or md.get("creationTimestamp"))
        count = o.get("count") or 1
        if count > 1:
            last = "%s (x%d over %s)" % (last, count, first)
        io = o.get("involvedObject") or {}
        src = o.get("source") or {}
        source = src.get("component") or o.get("reportingComponent") or ""
        if src.get("host") or o.get("reportingInstance"):
            source += ", " + (src.get("host") or o.get("reportingInstance"))
        target = "%s/%s" % (io.get("kind", "").lower(), io.get("name", ""))
        return [last, o.get("type", ""), o.get("reason", ""), target, io.get("fieldPath", ""), source,
                (o.get("message") or "").strip(), first, count, md["name"]]
    return [md["name"], a]


def to_table(plural, objs, rv, include="Metadata"):
    cols = COLS.get(plural, [("Name", "string", "name"), ("Age", "string", "")])
    rows = []
    for o in objs:
        row = {"cells": cells(plural, o)}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
            "columnDefinitions": [{"name": c[0], "type": c[1], "format": c[2], "description": c[0],
                                   "priority": c[3] if len(c) > 3 else 0} for c in cols],
            "rows": rows}


# ------------------------------------------------------------------ validation

with open(SCHEMA_PATH) as _f:
    DEFS = json.load(_f)["definitions"]

GO_TYPES = {"string": "string", "integer": "int32", "boolean": "bool", "number": "float64",
            "object": "map[string]interface {}", "array": "[]interface {}"}


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def validate_schema(value, schema, path, unknown, errs, required_missing):
    """Walk VALUE against an OpenAPI v2 SCHEMA: collect unknown fields
    (strict decoding), type errors and missing required fields."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = dict(DEFS.get(name, {}), _def=name)
    if value is None:
        return
    t = schema.get("type")
    fmt = schema.get("format")
    if fmt == "int-or-string":
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            errs.append((path, json_type(value), "intstr.IntOrString"))
        return
    if schema.get("_def", "").endswith("Quantity"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            errs.append((path, json_type(value), "resource.Quantity"))
        return
    if schema.get("_def", "").endswith(("RawExtension", "FieldsV1")):
        return
    if t == "object" or "properties" in schema:
        if not isinstance(value, dict):
            errs.append((path, json_type(value), "struct" if "properties" in schema else "map"))
            return
        props = schema.get("properties")
        if props is None:
            addl = schema.get("additionalProperties")
            if isinstance(addl, dict):
                for k, v in value.items():
                    validate_schema(v, addl, "%s[%s]" % (path, k) if path else k, unknown, errs,
                                    required_missing)
            return
        for k, v in value.items():
            sub = "%s.%s" % (path, k) if path else k
            if k not in props:
                unknown.append(sub)
                continue
            validate_schema(v, props[k], sub, unknown, errs, required_missing)
        for r in schema.get("required", []):
            if value.get(r) in (None, "", []) and not (r == "imageID" or r == "restartCount"):
                required_missing.append("%s.%s" % (path, r) if path else r)
        return
    if t == "array":
        if not isinstance(value, list):
            errs.append((path, json_type(value), "[]" + schema.get("items", {}).get("$ref", "x").split(".")[-1]))
            return
        for i, v in enumerate(value):
            validate_schema(v, schema.get("items", {}), "%s[%d]" % (path, i), unknown, errs, required_missing)
        return
    if t == "string" and not isinstance(value, str):
        errs.append((path, json_type(value), "string"))
    elif t == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        errs.append((path, json_type(value), "int32" if fmt == "int32" else "int64"))
    elif t == "boolean" and not isinstance(value, bool):
        errs.append((path, json_type(value), "bool"))
    elif t == "number" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        errs.append((path, json_type(value), "float64"))


def decode_body(raw, kind, group_version, field_validation):
    """Decode a JSON request body strictly. Returns (obj, warnings)."""
    dups = []

    def hook(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                dups.append(k)
            seen[k] = v
        return seen
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=hook)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request("%s in version \"%s\" cannot be handled as a %s: %s"
                          % (kind, group_version.split("/")[-1], kind, e))
    if not isinstance(obj, dict):
        raise bad_request("%s in version \"%s\" cannot be handled as a %s: json: cannot unmarshal %s into Go value "
                          "of type struct" % (kind, group_version.split("/")[-1], kind, json_type(obj)))
    if obj.get("kind") not in (None, kind) or obj.get("apiVersion") not in (None, group_version):
        raise bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                          % (obj.get("apiVersion"), group_version) if obj.get("apiVersion") != group_version
                          else "the kind in the data (%s) does not match the expected kind (%s)"
                          % (obj.get("kind"), kind))
    schema = RESOURCES[{"Pod": "pods", "Job": "jobs"}[kind]]["schema"]
    unknown, errs, req = [], [], []
    validate_schema(obj, {"$ref": "#/definitions/" + schema}, "", unknown, errs, req)
    ver = group_version.split("/")[-1]
    if errs:
        p, have, want = errs[0]
        raise bad_request('%s in version "%s" cannot be handled as a %s: json: cannot unmarshal %s into Go struct '
                          'field %s of type %s' % (kind, ver, kind, have, p, want))
    problems = ['unknown field "%s"' % u for u in unknown] + ['duplicate field "%s"' % d for d in dups]
    warnings = []
    if problems:
        if field_validation == "Strict":
            raise bad_request('%s in version "%s" cannot be handled as a %s: strict decoding error: %s'
                              % (kind, ver, kind, ", ".join(problems)))
        if field_validation != "Ignore":
            warnings = problems
    return obj, warnings, req


def invalid(kind, plural, name, causes):
    msg = '%s "%s" is invalid: %s' % (kind, name, "; ".join("%s: %s" % (c["field"], c["message"]) for c in causes)) \
        if len(causes) == 1 else '%s "%s" is invalid: [%s]' % (
            kind, name, ", ".join("%s: %s" % (c["field"], c["message"]) for c in causes))
    return APIError(422, "Invalid", msg, {"name": name, "group": RESOURCES[plural]["group"], "kind": kind,
                                          "causes": causes})


def semantic_checks(kind, plural, obj, req_missing):
    md = obj.setdefault("metadata", {})
    name = md.get("name") or md.get("generateName") or ""
    causes = []
    for r in req_missing:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": r})
    if not md.get("name") and not md.get("generateName"):
        causes.append({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                       "field": "metadata.name"})
    elif md.get("name") and (len(md["name"]) > 253 or not DNS1123_SUB.match(md["name"])):
        causes.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                       "message": 'Invalid value: "%s": a lowercase RFC 1123 subdomain must consist of lower case '
                                  "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                                  "character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*"
                                  "[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')" % md["name"]})
    for k, v in (md.get("labels") or {}).items():
        if len(v) > 63 or (v and not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", v)):
            causes.append({"reason": "FieldValueInvalid", "field": "metadata.labels",
                           "message": 'Invalid value: "%s": a valid label must be an empty string or consist of '
                                      "alphanumeric characters, '-', '_' or '.'" % v})
    pspec, pre = (obj.get("spec") or {}), "spec"
    if kind == "Job":
        pspec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        pre = "spec.template.spec"
        rp = pspec.get("restartPolicy")
        if rp not in ("Never", "OnFailure"):
            causes.append({"reason": "FieldValueNotSupported", "field": pre + ".restartPolicy",
                           "message": 'Unsupported value: "%s": supported values: "OnFailure", "Never"' % (rp or "Always")
                           if rp else 'Required value: valid values: "OnFailure", "Never"'})
    if not pspec.get("containers") and not any(c["field"] == pre + ".containers" for c in causes):
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": pre + ".containers"})
    seen = set()
    for i, c in enumerate(pspec.get("containers") or []):
        cn = c.get("name") or ""
        if cn and not DNS1123_LABEL.match(cn):
            causes.append({"reason": "FieldValueInvalid", "field": "%s.containers[%d].name" % (pre, i),
                           "message": 'Invalid value: "%s": a lowercase RFC 1123 label must consist of lower case '
                                      "alphanumeric characters or '-'" % cn})
        if cn in seen:
            causes.append({"reason": "FieldValueDuplicate", "field": "%s.containers[%d].name" % (pre, i),
                           "message": 'Duplicate value: "%s"' % cn})
        seen.add(cn)
        if not c.get("image"):
            causes.append({"reason": "FieldValueRequired", "field": "%s.containers[%d].image" % (pre, i),
                           "message": "Required value"})
    if causes:
        raise invalid(kind, plural, name, causes)


# ------------------------------------------------------------------ RBAC

def rule_allows(rule, verb, group, resource, sub, name):
    """rbac/v1 PolicyRule matching (plugin/pkg/auth/authorizer/rbac RuleAllows)."""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    combined = resource + "/" + sub if sub else resource
    if not any(r == "*" or r == combined or (sub and r == "*/" + sub) for r in rule.get("resources") or []):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name or "") in names


def subject_matches(subject, who):
    if subject.startswith("group:"):
        return subject[len("group:"):] in who.get("groups", [])
    return subject == who["user"]


def rbac_allows(who, verb, group, resource, sub, ns, name):
    with LOCK:
        bindings = list(BINDINGS)
    for b in bindings:
        if not subject_matches(b["subject"], who):
            continue
        # A RoleBinding grants only inside its namespace; a ClusterRoleBinding everywhere.
        if b["namespace"] is not None and b["namespace"] != ns:
            continue
        if any(rule_allows(r, verb, group, resource, sub, name) for r in b["rules"]):
            return True
    return False


def check_role(doc, kinds):
    """Validate a Role/ClusterRole the way the API server would (the subset
    that matters); returns its rules or raises ValueError."""
    if not isinstance(doc, dict) or doc.get("kind") not in kinds:
        raise ValueError("not a %s: %r" % ("/".join(kinds), (doc or {}).get("kind") if isinstance(doc, dict) else doc))
    if doc.get("apiVersion") != "rbac.authorization.k8s.io/v1":
        raise ValueError('%s "%s": apiVersion must be rbac.authorization.k8s.io/v1'
                         % (doc["kind"], (doc.get("metadata") or {}).get("name")))
    name = (doc.get("metadata") or {}).get("name")
    if not name:
        raise ValueError("%s without metadata.name" % doc["kind"])
    rules = doc.get("rules") or []
    for i, r in enumerate(rules):
        for f in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"):
            if f in r and (not isinstance(r[f], list) or not all(isinstance(x, str) for x in r[f])):
                raise ValueError('%s.rbac.authorization.k8s.io "%s" is invalid: rules[%d].%s: must be a list of '
                                 'strings' % (doc["kind"], name, i, f))
        if not r.get("verbs"):
            raise ValueError('%s.rbac.authorization.k8s.io "%s" is invalid: rules[%d].verbs: Required value'
                             % (doc["kind"], name, i))
        if r.get("nonResourceURLs") and doc["kind"] == "Role":
            raise ValueError('Role.rbac.authorization.k8s.io "%s" is invalid: rules[%d].nonResourceURLs: Invalid '
                             'value: namespaced rules cannot apply to non-resource URLs' % (name, i))
        if not r.get("nonResourceURLs") and "apiGroups" not in r:
            raise ValueError('%s.rbac.authorization.k8s.io "%s" is invalid: rules[%d].apiGroups: Required value: '
                             'resource rules must supply at least one api group' % (doc["kind"], name, i))
        if not r.get("nonResourceURLs") and not r.get("resources"):
            raise ValueError('%s.rbac.authorization.k8s.io "%s" is invalid: rules[%d].resources: Required value: '
                             'resource rules must supply at least one resource' % (doc["kind"], name, i))
    return rules


# ------------------------------------------------------------------ events (core/v1)

EVENT_KEYS = {}  # exact key -> event name (identical repeats bump count)
EVENT_SIMILAR = {}  # aggregate key -> set of messages seen (EventAggregator, 10 per 10 min)


def record_event(obj, etype, reason, message, component, host=None, field_path=None):
    """Record a core/v1 Event the way client-go's recorder does: a new Event
    named <object>.<hex unix nanos>; an identical repeat bumps count and
    lastTimestamp; from the 11th different message with the same reason the
    aggregator writes '(combined from similar events): ...' to one Event."""
    md = obj["metadata"]
    ns = md.get("namespace") or "default"
    io = {"kind": obj.get("kind"), "namespace": md.get("namespace"), "name": md["name"], "uid": md.get("uid"),
          "apiVersion": obj.get("apiVersion"), "resourceVersion": md.get("resourceVersion")}
    if field_path:
        io["fieldPath"] = field_path
    io = {k: v for k, v in io.items() if v}
    t = now()
    with LOCK:
        agg = (md.get("uid"), etype, reason, component, host)
        seen = EVENT_SIMILAR.setdefault(agg, set())
        if message not in seen and len(seen) >= 10:
            key = agg + ("(combined)",)
            message = "(combined from similar events): " + message
        else:
            seen.add(message)
            key = agg + (field_path, message)
        name = EVENT_KEYS.get(key)
        ev = get_obj("events", ns, name) if name else None
        if ev:
            ev["count"] = ev.get("count", 1) + 1
            ev["lastTimestamp"] = t
            ev["message"] = message
            put("events", ev, "MODIFIED")
            return ev
        name = "%s.%x" % (md["name"], time.time_ns())
        ev = {"kind": "Event", "apiVersion": "v1",
              "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()), "creationTimestamp": t},
              "involvedObject": io, "reason": reason, "message": message,
              "source": dict({"component": component}, **({"host": host} if host else {})),
              "firstTimestamp": t, "lastTimestamp": t, "count": 1, "type": etype, "eventTime": None,
              "reportingComponent": component, "reportingInstance": host or ""}
        EVENT_KEYS[key] = name
        put("events", ev, "ADDED")
        return ev


# ------------------------------------------------------------------ Pod Security Admission

PSA_LEVELS = ("privileged", "baseline", "restricted")
# Pod Security Standards, baseline "Capabilities": what may be added.
PSA_BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                     "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
PSA_RESTRICTED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                          "projected", "secret")


def psa_policy(ns):
    """(level, version) enforced in namespace NS, from its labels. An invalid
    level is enforced as restricted, as pod-security-admission does."""
    o = get_obj("namespaces", None, ns)
    labels = (o or {}).get("metadata", {}).get("labels") or {}
    level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
    if level not in PSA_LEVELS:
        level = "restricted"
    version = labels.get("pod-security.kubernetes.io/enforce-version", "latest") or "latest"
    return level, version


def _plural(one, many, n):
    return one if n == 1 else many


def _jq(items):
    return ", ".join('"%s"' % x for x in items)


def _ctrs(spec):
    """visitContainers order: init, regular, ephemeral."""
    return [c for k in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(k) or []]


def _sc(c):
    return c.get("securityContext") or {}


def psa_violations(spec, level):
    """[(reason, detail)] of the checks of pod-security-admission/policy that
    fail at LEVEL, in the order the real evaluator reports them (baseline
    checks by file name, then the restricted ones; restricted overrides
    capabilities_baseline, hostPathVolumes and seccompProfile_baseline)."""
    if level == "privileged":
        return []
    out = []
    ctrs = _ctrs(spec)
    psc = spec.get("securityContext") or {}

    def caps_baseline():
        bad, caps = [], set()
        for c in ctrs:
            add = [x for x in (_sc(c).get("capabilities") or {}).get("add") or [] if x not in PSA_BASELINE_CAPS]
            if add:
                bad.append(c["name"])
                caps |= set(add)
        if bad:
            out.append(("non-default capabilities", "%s %s must not include %s in securityContext.capabilities.add"
                        % (_plural("container", "containers", len(bad)), _jq(bad), _jq(sorted(caps)))))

    def host_namespaces():
        hn = [f + "=true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]
        if hn:
            out.append(("host namespaces", ", ".join(hn)))

    def host_path():
        vols = [v.get("name", "") for v in spec.get("volumes") or [] if v.get("hostPath") is not None]
        if vols:
            out.append(("hostPath volumes", "%s %s" % (_plural("volume", "volumes", len(vols)), _jq(vols))))

    def host_ports():
        bad, ports = [], []
        for c in ctrs:
            hp = [str(p["hostPort"]) for p in c.get("ports") or [] if p.get("hostPort")]
            if hp:
                bad.append(c["name"])
                ports += hp
        if bad:
            out.append(("hostPort", "%s %s %s %s %s" % (
                _plural("container", "containers", len(bad)), _jq(bad), _plural("uses", "use", len(bad)),
                _plural("hostPort", "hostPorts", len(ports)), ", ".join(ports))))

    def privileged():
        bad = [c["name"] for c in ctrs if _sc(c).get("privileged") is True]
        if bad:
            out.append(("privileged", "%s %s must not set securityContext.privileged=true"
                        % (_plural("container", "containers", len(bad)), _jq(bad))))

    def seccomp_baseline():
        setters, vals = [], set()
        if ((psc.get("seccompProfile") or {}).get("type")) == "Unconfined":
            setters.append("pod")
            vals.add("Unconfined")
        bad = [c["name"] for c in ctrs if (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined"]
        if bad:
            setters.append("%s %s" % (_plural("container", "containers", len(bad)), _jq(bad)))
            vals.add("Unconfined")
        if setters:
            out.append(("seccompProfile", "%s must not set securityContext.seccompProfile.type to %s"
                        % (" and ".join(setters), _jq(sorted(vals)))))

    if level == "baseline":
        caps_baseline()
        host_namespaces()
        host_path()
        host_ports()
        privileged()
        seccomp_baseline()
        return out
    host_namespaces()
    host_ports()
    privileged()
    bad = [c["name"] for c in ctrs if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        out.append(("allowPrivilegeEscalation != false", "%s %s must set securityContext.allowPrivilegeEscalation="
                    "false" % (_plural("container", "containers", len(bad)), _jq(bad))))
    nodrop, adding, caps = [], [], set()
    for c in ctrs:
        cp = _sc(c).get("capabilities") or {}
        if "ALL" not in (cp.get("drop") or []):
            nodrop.append(c["name"])
        add = [x for x in cp.get("add") or [] if x != "NET_BIND_SERVICE"]
        if add:
            adding.append(c["name"])
            caps |= set(add)
    det = []
    if nodrop:
        det.append('%s %s must set securityContext.capabilities.drop=["ALL"]'
                   % (_plural("container", "containers", len(nodrop)), _jq(nodrop)))
    if adding:
        det.append("%s %s must not include %s in securityContext.capabilities.add"
                   % (_plural("container", "containers", len(adding)), _jq(adding), _jq(sorted(caps))))
    if det:
        out.append(("unrestricted capabilities", "; ".join(det)))
    badv, types = [], set()
    for v in spec.get("volumes") or []:
        t = [k for k in v if k != "name" and k not in PSA_RESTRICTED_VOLUMES]
        if t:
            badv.append(v.get("name", ""))
            types |= set(t)
    if badv:
        out.append(("restricted volume types", "%s %s %s %s %s" % (
            _plural("volume", "volumes", len(badv)), _jq(badv), _plural("uses", "use", len(badv)),
            _plural("restricted volume type", "restricted volume types", len(types)), _jq(sorted(types)))))
    for field, reason, good, must_not, must in (
            ("runAsNonRoot", "runAsNonRoot != true", lambda v: v is True,
             "%s must not set securityContext.runAsNonRoot=false",
             "pod or %s %s must set securityContext.runAsNonRoot=true"),
            ("seccompProfile", "seccompProfile", lambda v: (v or {}).get("type") in ("RuntimeDefault", "Localhost"),
             "%s must not set securityContext.seccompProfile.type to %s",
             'pod or %s %s must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')):
        setters, vals, implicit = [], set(), []
        pod_ok = False
        if psc.get(field) is not None:
            if good(psc[field]):
                pod_ok = True
            else:
                setters.append("pod")
                vals.add(str((psc[field] or {}).get("type")) if field == "seccompProfile" else "")
        explicit = []
        for c in ctrs:
            v = _sc(c).get(field)
            if v is not None:
                if not good(v):
                    explicit.append(c["name"])
                    vals.add(str((v or {}).get("type")) if field == "seccompProfile" else "")
            elif not pod_ok:
                implicit.append(c["name"])
        if explicit:
            setters.append("%s %s" % (_plural("container", "containers", len(explicit)), _jq(explicit)))
        if setters:
            out.append((reason, must_not % ((" and ".join(setters),) if field == "runAsNonRoot"
                                            else (" and ".join(setters), _jq(sorted(vals))))))
        elif implicit:
            out.append((reason, must % (_plural("container", "containers", len(implicit)), _jq(implicit))))
        if field == "runAsNonRoot":  # check_runAsUser.go sorts between the two
            setters = (["pod"] if psc.get("runAsUser") == 0 else [])
            bad = [c["name"] for c in ctrs if _sc(c).get("runAsUser") == 0]
            if bad:
                setters.append("%s %s" % (_plural("container", "containers", len(bad)), _jq(bad)))
            if setters:
                out.append(("runAsUser=0", "%s must not set runAsUser=0" % " and ".join(setters)))
    return out


def psa_check(ns, name, spec):
    """The PodSecurity admission error for a pod NAME with SPEC in NS, or None."""
    level, version = psa_policy(ns)
    bad = psa_violations(spec or {}, level)
    if not bad:
        return None
    detail = ", ".join("%s (%s)" % (r, d) if d else r for r, d in bad)
    return APIError(403, "Forbidden", 'pods "%s" is forbidden: violates PodSecurity "%s:%s": %s'
                    % (name, level, version, detail), {"name": name, "group": "", "kind": "pods"})


# ------------------------------------------------------------------ kubelet

def gen_suffix():
    return "".join(cluster.ALNUM[b % len(cluster.ALNUM)] for b in os.urandom(5))


def alloc_index():
    with LOCK:
        p = STATE + "/next-pod-index"
        idx = int(open(p).read().strip())
        if idx > 250:
            raise RuntimeError("pod addresses exhausted")
        with open(p, "w") as f:
            f.write(str(idx + 1))
        return idx


def set_pod_status(ns, name, fn):
    with LOCK:
        p = get_obj("pods", ns, name)
        if not p:
            return None
        fn(p)
        put("pods", p, "MODIFIED")
        return p


def waiting_status(pod, reason, message):
    st = pod.setdefault("status", {})
    st.update({"phase": "Pending", "hostIP": cluster.BRIDGE_IP, "startTime": st.get("startTime") or now(),
               "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": now()},
                              {"type": "Ready", "status": "False", "lastProbeTime": None,
                               "lastTransitionTime": now(), "reason": "ContainersNotReady",
                               "message": "containers with unready status: [%s]"
                               % " ".join(c["name"] for c in pod["spec"]["containers"])}],
               "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                      "ready": False, "started": False, "restartCount": 0,
                                      "state": {"waiting": {"reason": reason, "message": message}}}
                                     for c in pod["spec"]["containers"]]})


def kubelet_run(ns, name):
    """Run a pod created through the API: Pending -> Running -> Succeeded/Failed."""
    pod = get_obj("pods", ns, name)
    if not pod:
        return
    images = [c.get("image", "") for c in pod["spec"]["containers"]]
    for pat in FAULTS["errimagepull"]:
        if any(pat in i for i in images) or pat == name:
            set_pod_status(ns, name, lambda p: waiting_status(
                p, "ErrImagePull", 'failed to pull and unpack image "%s": not found (fault switch)' % images[0]))
            return
    if any(pat in images or pat == name or any(pat in i for i in images) for pat in FAULTS["pending"]):
        set_pod_status(ns, name, lambda p: waiting_status(p, "ContainerCreating", ""))
        return
    argvs = {}
    for c in pod["spec"]["containers"]:
        a = cluster.image_command(c)
        if a is None:
            why = "no local program for this image"
            if c.get("image", "").split(":")[0].endswith("mirrord-trace-agent"):
                why = "no executable %s (from %s)" % cluster.agent_bin_choice()
            set_pod_status(ns, name, lambda p, why=why: waiting_status(
                p, "ErrImagePull", 'failed to pull and unpack image "%s": %s' % (c.get("image"), why)))
            return
        argvs[c["name"]] = a
    set_pod_status(ns, name, lambda p: waiting_status(p, "ContainerCreating", ""))
    try:
        idx = alloc_index()
        ip = "10.244.0.%d" % idx
        netns = cluster.new_pod_netns(idx, ip)
        cluster.apply_service_rules(netns, open(STATE + "/svc-rules").read())
        pdir = "%s/pods/%s_%s" % (STATE, ns, name)
        token = cluster.sa_token(ns, name, pod["spec"].get("serviceAccountName", "default"))
        with LOCK:
            TOKENS[token] = {"user": "system:serviceaccount:%s:%s" % (ns, pod["spec"].get("serviceAccountName",
                                                                                          "default")),
                             "groups": ["system:serviceaccounts", "system:serviceaccounts:" + ns,
                                        "system:authenticated"], "pod": "%s/%s" % (ns, name)}
        hostname = pod["spec"].get("hostname") or name
        cluster.write_pod_files(pdir, name, ns, ip, hostname[:63], pod["spec"].get("subdomain"), token,
                                open(STATE + "/pki/ca.crt").read(), pod["spec"].get("hostAliases") or [])
        cluster.write_pod_dns(ns, name, ip, hostname[:63], pod["spec"].get("subdomain"))
        services = list_objs("services", None)
        procs, cids, pids = {}, {}, {}
        for c in pod["spec"]["containers"]:
            env = cluster.container_env(c, services, ns, hostname)
            env += [("KUBERNETES_SERVICE_HOST", cluster.K8S_SVC_IP), ("KUBERNETES_SERVICE_PORT", "443")]
            pid, cid, proc = cluster.start_container(netns, pdir, pod["metadata"]["uid"], hostname[:63], c,
                                                     argvs[c["name"]], env, want_proc=True)
            procs[c["name"]], cids[c["name"]], pids[c["name"]] = proc, cid, pid
    except Exception as e:  # noqa: BLE001
        LOG("kubelet: cannot start %s/%s: %s" % (ns, name, e))
        set_pod_status(ns, name, lambda p: waiting_status(p, "CreateContainerError", str(e)))
        return
    entry = {"name": name, "namespace": ns, "node": NODE, "uid": pod["metadata"]["uid"], "ip": ip,
             "netns": cluster.netns_path(netns), "netnsName": netns, "dir": pdir,
             "containers": [{"name": c["name"], "pid": pids[c["name"]], "containerID": "containerd://" + cids[c["name"]],
                             "image": c.get("image", "")} for c in pod["spec"]["containers"]]}
    with LOCK:
        KUBELET[(ns, name)] = {"procs": procs, "netns": netns, "dir": pdir, "entry": entry, "cids": cids}
    for c in pod["spec"]["containers"]:
        fp = "spec.containers{%s}" % c["name"]
        record_event(pod, "Normal", "Pulled", 'Container image "%s" already present on machine' % c.get("image"),
                     "kubelet", NODE, fp)
        record_event(pod, "Normal", "Created", "Created container: " + c["name"], "kubelet", NODE, fp)
        record_event(pod, "Normal", "Started", "Started container " + c["name"], "kubelet", NODE, fp)
    started = now()
    set_pod_status(ns, name, lambda p: p.__setitem__("status", cluster.running_status(p, ip, started, cids)))
    write_pods_json()
    owner_job_update(ns, name)
    threading.Thread(target=kubelet_wait, args=(ns, name, procs, started, cids), daemon=True).start()


def kubelet_wait(ns, name, procs, started, cids):
    codes = {}
    for cname, proc in procs.items():
        codes[cname] = proc.wait()
    failed = any(c != 0 for c in codes.values())

    def fin(p):
        st = p["status"]
        st["phase"] = "Failed" if failed else "Succeeded"
        for c in st.get("conditions", []):
            if c["type"] in ("Ready", "ContainersReady"):
                c["status"] = "False"
                c["reason"] = "PodCompleted"
        for cs in st.get("containerStatuses", []):
            code = codes.get(cs["name"], 0)
            cs["ready"] = False
            cs["started"] = False
            cs["state"] = {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed",
                                          "startedAt": started, "finishedAt": now(),
                                          "containerID": "containerd://" + cids[cs["name"]]}}
    if get_obj("pods", ns, name) and not get_obj("pods", ns, name)["metadata"].get("deletionTimestamp"):
        set_pod_status(ns, name, fin)
        owner_job_update(ns, name)


def cgroup_pids(cg):
    """Every pid in the cgroup tree CG (cgroup.procs of each level)."""
    out = set()
    for d, _, files in os.walk(cg):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    out |= {int(x) for x in f.read().split()}
            except (OSError, ValueError):
                pass
    return out


def pid_pod_uid(pid):
    """The pod uid of PID's cgroup (…/mtc-kubepods/pod<uid>/…), or None."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                m = re.search(r"/mtc-kubepods/pod([0-9a-f-]{36})(/|$)", line)
                if m:
                    return m.group(1)
    except (OSError, ValueError):
        pass
    return None


def kubelet_stop(ns, name, uid=None):
    """Stop a pod as the kubelet does: every process of the pod's cgroup tree
    (pod<uid>/<container id>), wherever it has moved since (a process that
    setns()ed into another pod's network namespace still dies with its own
    pod), SIGTERM then, after a short grace, SIGKILL with forks blocked
    (pids.max=0) until the tree is empty. Processes left in the pod's network
    namespace that belong to no other pod's cgroup (helpers, the unshare
    parents) are stopped too; a process of another pod that merely entered
    this namespace survives, as it would with a real kubelet. Then the netns
    and the cgroups go."""
    with LOCK:
        k = KUBELET.pop((ns, name), None)
    cluster.remove_pod_dns(ns, name)  # kube-dns forgets a terminating pod
    netns = k["netns"] if k else None
    if k and k.get("entry"):
        uid = uid or k["entry"].get("uid")
    if not netns or not uid:
        try:
            for p in json.load(open(STATE + "/pods.json")):
                if p["namespace"] == ns and p["name"] == name:
                    netns = netns or p["netnsName"]
                    uid = uid or p.get("uid")
        except (OSError, ValueError):
            pass
    cg = "%s/pod%s" % (cluster.CGROUP_ROOT, uid) if uid else None
    me = os.getpid()

    def victims():
        pids = cgroup_pids(cg) if cg else set()
        if netns:
            out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
            for p in out:
                try:
                    pid = int(p)
                except ValueError:
                    continue
                if pid_pod_uid(pid) in (None, uid):
                    pids.add(pid)
        pids.discard(me)
        return pids

    def signal(sig):
        left = victims()
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        return left

    if signal(15):
        end = time.time() + 3
        while victims() and time.time() < end:
            time.sleep(0.1)
    if cg and os.path.exists(cg + "/pids.max"):
        try:
            with open(cg + "/pids.max", "w") as f:
                f.write("0")  # no new forks anywhere in the tree while we kill
        except OSError:
            pass
    end = time.time() + 5
    while signal(9) and time.time() < end:
        time.sleep(0.05)
    left = victims()
    if left:
        LOG("kubelet: %s/%s: processes survive SIGKILL: %s" % (ns, name, sorted(left)))
    if netns:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
    if k:
        for proc in k["procs"].values():
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
    if cg and os.path.isdir(cg):
        for d, _, _ in sorted(os.walk(cg), key=lambda x: -len(x[0])):
            try:
                os.rmdir(d)
            except OSError:
                pass


def owner_job_update(ns, podname):
    pod = get_obj("pods", ns, podname)
    if not pod:
        return
    for ref in pod["metadata"].get("ownerReferences", []):
        if ref.get("kind") != "Job":
            continue
        with LOCK:
            job = get_obj("jobs", ns, ref["name"])
            if not job or job["metadata"].get("uid") != ref.get("uid"):
                continue
            st = job.setdefault("status", {})
            phase = pod["status"].get("phase")
            st.setdefault("startTime", now())
            if phase == "Running":
                st["active"], st["ready"] = 1, 1
            elif phase in ("Succeeded", "Failed"):
                st["active"], st["ready"] = 0, 0
                st.pop("active")
                t = now()
                if phase == "Succeeded":
                    st["succeeded"] = 1
                    st["completionTime"] = t
                    st["conditions"] = [{"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                                         "message": "Reached expected number of succeeded pods",
                                         "lastProbeTime": t, "lastTransitionTime": t},
                                        {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                                         "message": "Reached expected number of succeeded pods",
                                         "lastProbeTime": t, "lastTransitionTime": t}]
                else:
                    st["failed"] = 1
                    st["conditions"] = [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the specified backoff limit",
                                         "lastProbeTime": t, "lastTransitionTime": t},
                                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the specified backoff limit",
                                         "lastProbeTime": t, "lastTransitionTime": t}]
            put("jobs", job, "MODIFIED")
        ttl = job.get("spec", {}).get("ttlSecondsAfterFinished")
        if ttl is not None and pod["status"].get("phase") in ("Succeeded", "Failed"):
            def reap(jn=ref["name"], uid=ref["uid"]):
                time.sleep(min(ttl, 3600))
                j = get_obj("jobs", ns, jn)
                if j and j["metadata"]["uid"] == uid:
                    delete_object("jobs", ns, jn, "Background")
            threading.Thread(target=reap, daemon=True).start()


def delete_object(plural, ns, name, policy, grace=None):
    """Delete NAME; returns (object as returned to the client, warnings)."""
    warnings = []
    with LOCK:
        obj = get_obj(plural, ns, name)
        if not obj:
            raise not_found(plural, name)
    if plural == "jobs":
        if policy is None:
            policy = "Orphan"
            warnings.append("child pods are preserved by default when jobs are deleted; set "
                            "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to "
                            "suppress this warning")
        uid = obj["metadata"]["uid"]
        children = [p for p in list_objs("pods", ns)
                    if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences", []))]
        obj["metadata"]["deletionTimestamp"] = now()
        obj["metadata"]["deletionGracePeriodSeconds"] = 0
        put("jobs", obj, "DELETED")
        if policy == "Orphan":
            for p in children:
                def strip(pp, uid=uid):
                    pp["metadata"]["ownerReferences"] = [r for r in pp["metadata"].get("ownerReferences", [])
                                                         if r.get("uid") != uid]
                    if not pp["metadata"]["ownerReferences"]:
                        del pp["metadata"]["ownerReferences"]
                set_pod_status(ns, p["metadata"]["name"], strip)
        else:
            for p in children:
                threading.Thread(target=lambda n=p["metadata"]["name"]: safe_delete_pod(ns, n),
                                 daemon=True).start()
        return obj, warnings
    # pods: graceful — MODIFIED with deletionTimestamp, then DELETED once stopped.
    obj = set_pod_status(ns, name, lambda p: p["metadata"].update(
        deletionTimestamp=now(), deletionGracePeriodSeconds=30 if grace is None else grace))

    uid = obj["metadata"].get("uid") if obj else None
    for c in (obj or {}).get("spec", {}).get("containers", []):
        if (obj.get("status") or {}).get("phase") == "Running":
            record_event(obj, "Normal", "Killing", "Stopping container " + c["name"], "kubelet", NODE,
                         "spec.containers{%s}" % c["name"])

    def finish():
        kubelet_stop(ns, name, uid)
        o = get_obj("pods", ns, name)
        if o:
            put("pods", o, "DELETED")
        write_pods_json()
    threading.Thread(target=finish, daemon=True).start()
    return obj, warnings


def pod_netns(ns, name):
    """Path of a running pod's network namespace (kubelet state, else pods.json)."""
    with LOCK:
        k = KUBELET.get((ns, name))
        if k and k.get("entry"):
            return k["entry"]["netns"]
    try:
        for p in json.load(open(STATE + "/pods.json")):
            if p["namespace"] == ns and p["name"] == name:
                return p["netns"] if os.path.exists(p["netns"]) else None
    except (OSError, ValueError):
        pass
    return None


def merge_patch(cur, patch, strategic):
    """RFC 7386 JSON merge patch; with STRATEGIC, lists of objects keyed by "name"
    (containers, ephemeralContainers, env, ports...) merge by name, and $-directives
    other than $patch: delete are dropped."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(cur) if isinstance(cur, dict) else {}
    for k, v in patch.items():
        if strategic and k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        elif strategic and isinstance(v, list) and isinstance(out.get(k), list) and \
                all(isinstance(x, dict) and "name" in x for x in v + out[k]):
            merged = [copy.deepcopy(x) for x in out[k]]
            for x in v:
                idx = next((i for i, y in enumerate(merged) if y["name"] == x["name"]), None)
                if x.get("$patch") == "delete":
                    if idx is not None:
                        merged.pop(idx)
                elif idx is None:
                    merged.append(merge_patch({}, x, True))
                else:
                    merged[idx] = merge_patch(merged[idx], x, True)
            out[k] = merged
        else:
            out[k] = merge_patch(out.get(k), v, strategic) if isinstance(v, dict) else copy.deepcopy(v)
    return out


def json_patch(doc, ops):
    """RFC 6902 (add, remove, replace, test, copy, move)."""
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal %s into Go value of type jsonpatch.Patch" % json_type(ops))
    doc = copy.deepcopy(doc)

    def parts(ptr):
        if ptr == "":
            return []
        if not ptr.startswith("/"):
            raise APIError(422, "Invalid", "the server rejected our request due to an error in our request",
                           {"causes": [{"message": 'invalid JSON pointer "%s"' % ptr}]})
        return [x.replace("~1", "/").replace("~0", "~") for x in ptr[1:].split("/")]

    def walk(ptr):
        ps = parts(ptr)
        node = doc
        for x in ps[:-1]:
            node = node[int(x)] if isinstance(node, list) else node[x]
        return node, ps[-1]

    for op in ops:
        try:
            kind, path = op["op"], op["path"]
            parent, last = walk(path)
            if kind in ("add", "replace", "copy", "move"):
                if kind == "copy" or kind == "move":
                    sp, sl = walk(op["from"])
                    val = copy.deepcopy(sp[int(sl)] if isinstance(sp, list) else sp[sl])
                    if kind == "move":
                        sp.pop(int(sl)) if isinstance(sp, list) else sp.pop(sl)
                else:
                    val = op["value"]
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(val)
                    elif kind == "add":
                        parent.insert(int(last), val)
                    else:
                        parent[int(last)] = val
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = val
            elif kind == "remove":
                parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)
            elif kind == "test":
                if (parent[int(last)] if isinstance(parent, list) else parent[last]) != op["value"]:
                    raise APIError(422, "Invalid", "the server rejected our request due to an error in our request",
                                   {"causes": [{"message": "testing value %s failed" % path}]})
            else:
                raise bad_request('Unexpected kind: %s' % kind)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:
            raise APIError(422, "Invalid", "the server rejected our request due to an error in our request",
                           {"causes": [{"message": "%s operation does not apply: doc is missing path: \"%s\": %s"
                                        % (op.get("op") if isinstance(op, dict) else op,
                                           op.get("path") if isinstance(op, dict) else "", e)}]})
    return doc


def pods_json_update(ns, name, fn):
    with LOCK:
        try:
            cur = json.load(open(STATE + "/pods.json"))
        except (OSError, ValueError):
            cur = []
        for p in cur:
            if p["namespace"] == ns and p["name"] == name:
                fn(p)
        k = KUBELET.get((ns, name))
        if k and k.get("entry") and not any(p["namespace"] == ns and p["name"] == name for p in cur):
            fn(k["entry"])
        elif k and k.get("entry"):
            k["entry"] = next(p for p in cur if p["namespace"] == ns and p["name"] == name)
        tmp = STATE + "/pods.json.tmp"
        with open(tmp, "w") as f:
            json.dump(cur, f, indent=1)
        os.rename(tmp, STATE + "/pods.json")


def pod_entry(ns, name):
    with LOCK:
        k = KUBELET.get((ns, name))
        if k and k.get("entry"):
            return copy.deepcopy(k["entry"])
    try:
        for p in json.load(open(STATE + "/pods.json")):
            if p["namespace"] == ns and p["name"] == name:
                return p
    except (OSError, ValueError):
        pass
    return None


def kubelet_ephemeral(ns, name, c):
    """Start an ephemeral container: a process in the pod's network namespace (its
    own mount/UTS namespaces, like every container here; host PID namespace, so it
    sees the target container's processes), status in ephemeralContainerStatuses."""
    entry = pod_entry(ns, name)
    pod = get_obj("pods", ns, name)
    if not entry or not pod:
        return

    def set_ecs(st):
        def upd(p):
            lst = [x for x in p["status"].get("ephemeralContainerStatuses", []) if x["name"] != c["name"]]
            lst.append(st)
            p["status"]["ephemeralContainerStatuses"] = lst
        set_pod_status(ns, name, upd)
    img = c.get("image", "")
    base = {"name": c["name"], "image": img, "imageID": "", "ready": False, "restartCount": 0, "lastState": {}}
    argv = cluster.image_command(c)
    if argv is None:
        set_ecs(dict(base, state={"waiting": {"reason": "ErrImagePull", "message": 'failed to pull and unpack '
                                                "image \"%s\": no local program for this image" % img}}))
        return
    set_ecs(dict(base, state={"waiting": {"reason": "ContainerCreating"}}))
    hostname = pod["spec"].get("hostname") or name
    env = cluster.container_env(c, list_objs("services", None), ns, hostname)
    env += [("KUBERNETES_SERVICE_HOST", cluster.K8S_SVC_IP), ("KUBERNETES_SERVICE_PORT", "443")]
    try:
        pid, cid, proc = cluster.start_container(entry["netnsName"], entry["dir"], entry["uid"], hostname[:63], c,
                                                 argv, env, want_proc=True)
    except Exception as e:  # noqa: BLE001
        set_ecs(dict(base, state={"waiting": {"reason": "CreateContainerError", "message": str(e)}}))
        return
    started = now()
    base.update(containerID="containerd://" + cid, imageID="docker.io/library/%s@sha256:%s" % (
        img.split(":")[0], hashlib_sha(img)))
    set_ecs(dict(base, state={"running": {"startedAt": started}}))
    pods_json_update(ns, name, lambda p: p["containers"].append(
        {"name": c["name"], "pid": pid, "containerID": "containerd://" + cid, "image": img, "ephemeral": True,
         "targetContainerName": c.get("targetContainerName")}))
    LOG("kubelet: ephemeral container %s/%s/%s pid %d" % (ns, name, c["name"], pid))
    code = proc.wait()
    if get_obj("pods", ns, name):
        set_ecs(dict(base, state={"terminated": {"exitCode": code, "reason": "Error" if code else "Completed",
                                                 "startedAt": started, "finishedAt": now(),
                                                 "containerID": "containerd://" + cid}}))


def hashlib_sha(s):
    import hashlib
    return hashlib.sha256(s.encode()).hexdigest()


def safe_delete_pod(ns, name):
    try:
        delete_object("pods", ns, name, None)
    except APIError:
        pass


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


class Handler(BaseHTTPRequestHandler):
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

    # ---- pods/ephemeralcontainers (k8s-wire.md §2.6)
    def patch_ephemeral(self, ns, name, method, body):
        pod = get_obj("pods", ns, name)
        if not pod:
            raise not_found("pods", name)
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
        fv = self.q.get("fieldValidation", "Warn")
        if fv not in ("Ignore", "Warn", "Strict"):
            raise bad_request('fieldValidation parameter unsupported: "%s"' % fv)
        if method == "PUT":
            if ctype != "application/json":
                raise APIError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json, application/yaml")
            new = body
        else:
            kinds = ("application/json-patch+json", "application/merge-patch+json",
                     "application/strategic-merge-patch+json")
            if ctype not in kinds:
                raise APIError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json-patch+json, application/merge-patch+json,"
                               " application/apply-patch+yaml, application/strategic-merge-patch+json")
            try:
                patch = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise bad_request("error decoding patch: %s" % e)
            cur = copy.deepcopy(pod)
            cur["kind"], cur["apiVersion"] = "Pod", "v1"
            if ctype == "application/json-patch+json":
                new = json_patch(cur, patch)
            elif not isinstance(patch, dict):
                raise bad_request("json: cannot unmarshal %s into Go value of type map[string]interface {}"
                                  % json_type(patch))
            else:
                new = merge_patch(cur, patch, strategic=ctype.startswith("application/strategic"))
            new = json.dumps(new).encode()
        obj, warnings, _ = decode_body(new, "Pod", "v1", fv)
        if obj.get("metadata", {}).get("uid") not in (None, pod["metadata"]["uid"]):
            raise APIError(409, "Conflict", 'Operation cannot be fulfilled on pods "%s": Precondition failed: UID in '
                           'precondition: %s, UID in object meta: %s' % (name, obj["metadata"]["uid"],
                                                                         pod["metadata"]["uid"]),
                           {"name": name, "kind": "pods"})
        old_ecs = pod["spec"].get("ephemeralContainers") or []
        new_ecs = (obj.get("spec") or {}).get("ephemeralContainers") or []
        causes = []
        fld = "spec.ephemeralContainers"
        by_name = {c.get("name"): c for c in new_ecs}
        for oc in old_ecs:
            nc = by_name.get(oc["name"])
            if nc is None:
                causes.append({"reason": "FieldValueForbidden", "field": fld,
                               "message": 'Forbidden: existing ephemeral containers "%s" may not be removed'
                               % oc["name"]})
            elif nc != oc:
                causes.append({"reason": "FieldValueForbidden", "field": fld,
                               "message": 'Forbidden: existing ephemeral containers "%s" may not be changed'
                               % oc["name"]})
        old_names = {c["name"] for c in old_ecs}
        names = {c["name"] for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", [])} | old_names
        added = []
        for i, c in enumerate(new_ecs):
            f = "%s[%d]" % (fld, i)
            if c.get("name") in old_names:
                continue
            cn = c.get("name") or ""
            if not cn:
                causes.append({"reason": "FieldValueRequired", "field": f + ".name", "message": "Required value"})
            elif not DNS1123_LABEL.match(cn) or len(cn) > 63:
                causes.append({"reason": "FieldValueInvalid", "field": f + ".name", "message": 'Invalid value: "%s": '
                               "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
                               "'-', and must start and end with an alphanumeric character" % cn})
            elif cn in names:
                causes.append({"reason": "FieldValueDuplicate", "field": f + ".name",
                               "message": 'Duplicate value: "%s"' % cn})
            names.add(cn)
            if not c.get("image"):
                causes.append({"reason": "FieldValueRequired", "field": f + ".image", "message": "Required value"})
            for k in ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resizePolicy"):
                if c.get(k):
                    causes.append({"reason": "FieldValueForbidden", "field": "%s.%s" % (f, k),
                                   "message": "Forbidden: cannot be set for an Ephemeral Container"})
            if any((c.get("resources") or {}).values()):
                causes.append({"reason": "FieldValueForbidden", "field": f + ".resources",
                               "message": "Forbidden: cannot be set for an Ephemeral Container"})
            t = c.get("targetContainerName")
            if t and t not in {x["name"] for x in pod["spec"]["containers"]}:
                causes.append({"reason": "FieldValueNotFound", "field": f + ".targetContainerName",
                               "message": 'Not found: "%s"' % t})
            added.append(c)
        if causes:
            raise invalid("Pod", "pods", name, causes)
        for c in added:
            img = c.get("image", "")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", "Always" if ":" not in img.split("/")[-1] or img.endswith(":latest")
                         else "IfNotPresent")
            c.setdefault("resources", {})
        if added:  # PodSecurity admission also checks pods/ephemeralcontainers updates
            err = psa_check(ns, name, dict(pod["spec"], ephemeralContainers=old_ecs + added))
            if err:
                raise err
        dry = self.q.get("dryRun") == "All"
        with LOCK:
            p = get_obj("pods", ns, name)
            if not p or p["metadata"]["uid"] != pod["metadata"]["uid"]:
                raise not_found("pods", name)
            if (p["spec"].get("ephemeralContainers") or []) != old_ecs:
                raise APIError(409, "Conflict", 'Operation cannot be fulfilled on pods "%s": the object has been '
                               'modified; please apply your changes to the latest version and try again' % name,
                               {"name": name, "kind": "pods"})
            if added:
                p["spec"]["ephemeralContainers"] = old_ecs + added
            if not dry and added:
                put("pods", p, "MODIFIED")
        p["kind"], p["apiVersion"] = "Pod", "v1"
        self.send_json(200, p, {"Warning": ['299 - "%s"' % w.replace('"', '\\"') for w in warnings]}
                       if warnings else None)
        if not dry:
            for c in added:
                threading.Thread(target=kubelet_ephemeral, args=(ns, name, c), daemon=True).start()

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

    def wants_table(self):
        return "as=Table" in self.headers.get("Accept", "")

    def list(self, plural, info, ns):
        lreqs = parse_label_selector(self.q.get("labelSelector"))
        freqs = parse_field_selector(plural, self.q.get("fieldSelector"))
        with LOCK:
            rv = RV[0]
            items = [o for o in list_objs(plural, ns) if labels_match(lreqs, o["metadata"].get("labels"))
                     and fields_match(freqs, o)]
        meta = {"resourceVersion": str(rv)}
        limit = int(self.q.get("limit") or 0)
        start = 0
        if self.q.get("continue"):
            try:
                crv, start = (int(x) for x in self.q["continue"].split(":"))
            except ValueError:
                raise bad_request("continue key is not valid: invalid continue token")
            with LOCK:
                oldest = EVENTS[0][0] if EVENTS else rv
            if crv < oldest - 1 and FAULTS["watch_expire"]:
                raise APIError(410, "Expired", "The provided continue parameter is too old to display a consistent "
                               "list result. You can start a new list without the continue parameter.")
        if limit and start + limit < len(items):
            meta["continue"] = "%d:%d" % (rv, start + limit)
            meta["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        else:
            items = items[start:]
        if self.wants_table():
            t = to_table(plural, items, rv, self.q.get("includeObject", "Metadata"))
            t["metadata"].update(meta)
            self.send_json(200, t)
            return
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        self.send_json(200, {"kind": info["kind"] + "List", "apiVersion": (info["group"] + "/v1")
                             if info["group"] else "v1", "metadata": meta, "items": items})

    def chunk(self, data):
        split = FAULTS["split"]
        pieces = [data[i:i + split] for i in range(0, len(data), split)] if split else [data]
        for p in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
            self.wfile.flush()

    def watch(self, plural, info, ns, name):
        lreqs = parse_label_selector(self.q.get("labelSelector"))
        freqs = parse_field_selector(plural, self.q.get("fieldSelector"))
        if name:
            freqs.append(("metadata.name", "=", name))
        rvq = self.q.get("resourceVersion", "")
        timeout = min(float(self.q.get("timeoutSeconds") or 1800), 3600)
        bookmarks = self.q.get("allowWatchBookmarks") in ("1", "true")
        table = self.wants_table()
        gv = (info["group"] + "/v1") if info["group"] else "v1"

        def match(o):
            return ((ns is None or o["metadata"].get("namespace") == ns)
                    and labels_match(lreqs, o["metadata"].get("labels")) and fields_match(freqs, o))

        def encode(etype, o):
            o = copy.deepcopy(o)
            o["kind"], o["apiVersion"] = info["kind"], gv
            if table and etype in ("ADDED", "MODIFIED", "DELETED"):
                o = to_table(plural, [o], o["metadata"]["resourceVersion"], self.q.get("includeObject", "Metadata"))
            return (json.dumps({"type": etype, "object": o}) + "\n").encode()

        initial = []
        with LOCK:
            cur = RV[0]
            if rvq in ("", "0"):
                initial = [o for o in list_objs(plural, ns) if match(o)]
                since = cur
                expired = False
            else:
                try:
                    since = int(rvq)
                except ValueError:
                    raise bad_request('invalid resource version "%s"' % rvq)
                oldest = EVENTS[0][0] if EVENTS else cur
                expired = FAULTS["watch_expire"] or since < max(oldest - 1, FAULTS["expired_before"])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        if expired:
            self.chunk((json.dumps({"type": "ERROR", "object": status_obj(
                410, "Expired", "too old resource version: %s (%d)" % (rvq, cur))}) + "\n").encode())
            self.wfile.write(b"0\r\n\r\n")
            return
        # Fault watch_close_after: end this watch early, as a real API server
        # does at its own (random) request timeout: after N events (the
        # synthetic ADDED ones count) or S seconds, whichever comes first.
        close_events, close_seconds = watch_close_limits(FAULTS["watch_close_after"])
        sent = 0
        for o in initial:
            self.chunk(encode("ADDED", o))
            sent += 1
            if close_events and sent >= close_events:
                self.wfile.write(b"0\r\n\r\n")
                return
        if self.q.get("sendInitialEvents") == "true" and bookmarks:
            self.chunk((json.dumps({"type": "BOOKMARK", "object": {
                "kind": info["kind"], "apiVersion": gv, "metadata": {
                    "resourceVersion": str(cur), "annotations": {"k8s.io/initial-events-end": "true"}}}}) + "\n").encode())
        end = time.time() + timeout
        if close_seconds:
            end = min(end, time.time() + close_seconds)
        last_bm = time.time()
        while time.time() < end:
            with COND:
                pending = [e for e in EVENTS if e[0] > since and e[1] == plural]
                if not pending:
                    COND.wait(min(1.0, max(0.01, end - time.time())))
                    pending = [e for e in EVENTS if e[0] > since and e[1] == plural]
                if EVENTS:
                    since = max(since, EVENTS[-1][0]) if not pending else since
            for rv, _, etype, o in pending:
                since = max(since, rv)
                if match(o):
                    self.chunk(encode(etype, o))
                    sent += 1
                    if close_events and sent >= close_events:
                        self.wfile.write(b"0\r\n\r\n")
                        return
            if bookmarks and time.time() - last_bm > 5:
                last_bm = time.time()
                self.chunk((json.dumps({"type": "BOOKMARK", "object": {
                    "kind": info["kind"], "apiVersion": gv, "metadata": {"resourceVersion": str(since)}}})
                    + "\n").encode())
        self.wfile.write(b"0\r\n\r\n")

    def create(self, plural, info, group, ns, body):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype != "application/json":
            raise APIError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted '
                           'media types include: application/json, application/yaml')
        fv = self.q.get("fieldValidation", "Warn")
        if fv not in ("Ignore", "Warn", "Strict"):
            raise bad_request('fieldValidation parameter unsupported: "%s"' % fv)
        gv = (group + "/v1") if group else "v1"
        obj, warnings, req = decode_body(body, info["kind"], gv, fv)
        md = obj.setdefault("metadata", {})
        if md.get("namespace") not in (None, "", ns):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        semantic_checks(info["kind"], plural, obj, req)
        if not get_obj("namespaces", None, ns):
            raise not_found("namespaces", ns)
        obj["kind"], obj["apiVersion"] = info["kind"], gv
        if not md.get("name"):
            md["name"] = md["generateName"][:58] + gen_suffix()
        md["namespace"] = ns
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now()
        md.pop("resourceVersion", None)
        md.setdefault("generation", 1)
        dry = self.q.get("dryRun") == "All"
        if plural == "pods":
            # validating admission (PodSecurity) runs after the name is generated
            # and before storage (so before AlreadyExists), dry run included
            err = psa_check(ns, md["name"], obj.get("spec"))
            if err:
                raise err
        with LOCK:
            if get_obj(plural, ns, md["name"]):
                raise APIError(409, "AlreadyExists", '%s "%s" already exists' % (qualified(plural), md["name"]),
                               {"name": md["name"], "group": group, "kind": plural})
            if plural == "jobs":
                self.job_defaults(obj)
            else:
                self.pod_defaults(obj)
            if not dry:
                put(plural, obj, "ADDED")
        headers = {"Warning": ['299 - "%s"' % w.replace('"', '\\"') for w in warnings]} if warnings else {}
        self.send_json(201, obj, headers)
        if dry:
            return
        if plural == "jobs":
            threading.Thread(target=self.job_controller, args=(obj,), daemon=True).start()
        elif obj["spec"].get("nodeName") == NODE:
            threading.Thread(target=kubelet_run, args=(ns, md["name"]), daemon=True).start()

    @staticmethod
    def pod_defaults(obj):
        sp = obj.setdefault("spec", {})
        sp.setdefault("restartPolicy", "Always")
        sp.setdefault("dnsPolicy", "ClusterFirst")
        sp.setdefault("schedulerName", "default-scheduler")
        sp.setdefault("serviceAccountName", "default")
        sp.setdefault("terminationGracePeriodSeconds", 30)
        sp.setdefault("nodeName", NODE)  # the only node: "scheduled" at once
        for c in sp.get("containers", []):
            c.setdefault("imagePullPolicy", "Always" if c.get("image", "").endswith(":latest") or
                         ":" not in c.get("image", "") else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    @staticmethod
    def job_defaults(obj):
        uid = obj["metadata"]["uid"]
        name = obj["metadata"]["name"]
        sp = obj["spec"]
        for k, v in (("parallelism", 1), ("completions", 1), ("backoffLimit", 6), ("completionMode", "NonIndexed"),
                     ("suspend", False), ("manualSelector", None), ("podReplacementPolicy", "TerminatingOrFailed")):
            if v is not None:
                sp.setdefault(k, v)
        if not sp.get("manualSelector"):
            sp["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        tl = sp["template"].setdefault("metadata", {}).setdefault("labels", {})
        tl.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                   "controller-uid": uid, "job-name": name})
        ol = obj["metadata"].setdefault("labels", {})
        for k in ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "controller-uid", "job-name"):
            ol.setdefault(k, tl[k])
        obj["status"] = {}

    @staticmethod
    def job_controller(job, delay=0.0):
        """One pod per Job. A pod rejected by admission (PodSecurity) is not
        created: a Warning FailedCreate Event goes to the Job and the controller
        retries with the workqueue's backoff (1 s doubling, at most 60 s) while
        the Job exists, so relabelling the namespace lets it through."""
        ns, jn, uid = job["metadata"]["namespace"], job["metadata"]["name"], job["metadata"]["uid"]
        if delay:
            time.sleep(delay)
            cur = get_obj("jobs", ns, jn)
            if not cur or cur["metadata"]["uid"] != uid:
                return
            job = cur
        tmpl = job["spec"]["template"]
        pod = {"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": "%s-%s" % (jn[:57], gen_suffix()), "namespace": ns,
                            "uid": str(uuid.uuid4()), "creationTimestamp": now(), "generateName": jn + "-",
                            "labels": dict(tmpl.get("metadata", {}).get("labels", {})),
                            "annotations": dict(tmpl.get("metadata", {}).get("annotations", {})),
                            "finalizers": ["batch.kubernetes.io/job-tracking"],
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": jn, "uid": uid,
                                                 "controller": True, "blockOwnerDeletion": True}]},
               "spec": copy.deepcopy(tmpl["spec"])}
        if not pod["metadata"]["annotations"]:
            del pod["metadata"]["annotations"]
        Handler.pod_defaults(pod)
        err = psa_check(ns, pod["metadata"]["name"], pod["spec"])
        if err:
            j = get_obj("jobs", ns, jn)
            if not j or j["metadata"]["uid"] != uid:
                return
            record_event(j, "Warning", "FailedCreate", "Error creating: " + err.status["message"], "job-controller")
            if not j.get("status", {}).get("startTime"):
                with LOCK:
                    j = get_obj("jobs", ns, jn)
                    if j and j["metadata"]["uid"] == uid:
                        j["status"] = {"startTime": now(), "ready": 0, "terminating": 0,
                                       "uncountedTerminatedPods": {}}
                        put("jobs", j, "MODIFIED")
            threading.Thread(target=Handler.job_controller, args=(job, min(max(delay * 2, 1.0), 60.0)),
                             daemon=True).start()
            return
        with LOCK:
            j = get_obj("jobs", ns, jn)
            if not j or j["metadata"]["uid"] != uid:
                return
            put("pods", pod, "ADDED")
            j = get_obj("jobs", ns, jn)
            j["status"] = {"active": 1, "ready": 0, "startTime": now(), "terminating": 0,
                           "uncountedTerminatedPods": {}}
            put("jobs", j, "MODIFIED")
        record_event(j, "Normal", "SuccessfulCreate", "Created pod: " + pod["metadata"]["name"], "job-controller")
        if pod["spec"]["nodeName"] == NODE:
            kubelet_run(ns, pod["metadata"]["name"])

    def delete(self, plural, ns, name, body):
        opts = {}
        if body.strip():
            try:
                opts = json.loads(body)
            except ValueError as e:
                raise bad_request("invalid DeleteOptions: %s" % e)
            unknown, errs, req = [], [], []
            validate_schema(opts, {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"}, "",
                            unknown, errs, req)
            if unknown or errs:
                raise bad_request('DeleteOptions in version "v1" cannot be handled as a DeleteOptions: strict '
                                  'decoding error: %s' % ", ".join('unknown field "%s"' % u for u in unknown)
                                  if unknown else "json: cannot unmarshal %s" % errs[0][1])
        policy = opts.get("propagationPolicy") or self.q.get("propagationPolicy")
        if opts.get("orphanDependents") is not None and policy is None:
            policy = "Orphan" if opts["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise invalid("DeleteOptions", plural, "", [{"reason": "FieldValueNotSupported",
                                                         "field": "propagationPolicy",
                                                         "message": 'Unsupported value: "%s": supported values: '
                                                                    '"Foreground", "Background", "Orphan", "nil"'
                                                                    % policy}])
        pre = (opts.get("preconditions") or {}).get("uid")
        o = get_obj(plural, ns, name)
        if not o:
            raise not_found(plural, name)
        if pre and pre != o["metadata"]["uid"]:
            raise APIError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": Precondition failed: UID in '
                           'precondition: %s, UID in object meta: %s' % (qualified(plural), name, pre,
                                                                         o["metadata"]["uid"]),
                           {"name": name, "group": RESOURCES[plural]["group"], "kind": plural})
        grace = opts.get("gracePeriodSeconds", self.q.get("gracePeriodSeconds"))
        obj, warnings = delete_object(plural, ns, name, policy, int(grace) if grace is not None else None)
        obj["kind"] = RESOURCES[plural]["kind"]
        obj["apiVersion"] = ((RESOURCES[plural]["group"] + "/v1") if RESOURCES[plural]["group"] else "v1")
        self.send_json(200, obj, {"Warning": ['299 - "%s"' % w for w in warnings]} if warnings else None)

    def pod_log(self, ns, name):
        pod = get_obj("pods", ns, name)
        if not pod:
            raise not_found("pods", name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        enames = [c["name"] for c in pod["spec"].get("ephemeralContainers") or []]
        cname = self.q.get("container")
        if not cname:
            if len(names) != 1:
                raise bad_request("a container name must be specified for pod %s, choose one of: [%s]"
                                  % (name, " ".join(names)))
            cname = names[0]
        if cname not in names + enames:
            raise bad_request("container %s is not valid for pod %s" % (cname, name))
        if pod["status"].get("phase") == "Pending":
            raise bad_request('container "%s" in pod "%s" is waiting to start: ContainerCreating' % (cname, name))
        logf = "%s/pods/%s_%s/%s.log" % (STATE, ns, name, cname)
        follow = self.q.get("follow") in ("1", "true")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            f = open(logf, "rb")
        except OSError:
            self.wfile.write(b"0\r\n\r\n")
            return
        with f:
            data = f.read()
            tail = self.q.get("tailLines")
            if tail is not None:
                lines = data.splitlines(keepends=True)
                data = b"".join(lines[-int(tail):]) if int(tail) else b""
            if data:
                self.chunk(data)
            while follow:
                data = f.read()
                if data:
                    self.chunk(data)
                    continue
                p = get_obj("pods", ns, name)
                if not p or p["status"].get("phase") in ("Succeeded", "Failed"):
                    data = f.read()
                    if data:
                        self.chunk(data)
                    break
                time.sleep(0.1)
        self.wfile.write(b"0\r\n\r\n")


def watch_close_limits(v):
    """(events, seconds) of the fault watch_close_after: N, or {"events": N,
    "seconds": S} (either may be left out); 0 or absent is no limit."""
    if isinstance(v, dict):
        return int(v.get("events") or 0), float(v.get("seconds") or 0)
    return int(v or 0), 0.0


def hashlib_short(s):
    import hashlib
    import base64
    return base64.b64encode(hashlib.sha256(s.encode()).digest()[:8]).decode()


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


def main():
    global STATE, NODE
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--port", type=int, default=cluster.API_PORT)
    a = ap.parse_args()
    STATE, NODE = a.state, a.node
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
