"""Read paths of the fake API server (apiserver.py) beyond a single GET:
server-side Tables, LIST with paging, WATCH (chunked events, bookmarks,
410 Expired, the watch fault switches) and pods/log, as the Reads mixin
of the HTTP handler (api_http.Handler)."""
import copy
import datetime
import json
import time

import api_store
from api_store import (COND, EVENTS, FAULTS, LOCK, RV, APIError, bad_request, fields_match, get_obj, labels_match,
                       list_objs, not_found, parse_field_selector, parse_label_selector, status_obj)


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


class Reads:
    """LIST, WATCH and pods/log; mixed into api_http.Handler."""

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
        logf = "%s/pods/%s_%s/%s.log" % (api_store.STATE, ns, name, cname)
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
