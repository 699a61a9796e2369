"""Shared state of the fake API server (apiserver.py): the served resources,
the object store with its resourceVersions and watch event log, the Status
errors, label/field selectors and core/v1 Event recording.

STATE and NODE are set by apiserver.py main() after every module is
imported: other modules read them as api_store.STATE / api_store.NODE.
"""
import copy
import json
import os
import re
import sys
import threading
import time
import uuid

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
