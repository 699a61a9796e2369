#!/usr/bin/python3
"""Wire-level checks of the fake API server (k8s-wire.md §2, §7), run from
the workstation namespace: api_test.py (reads $MIRRORD_TRACE_CLUSTER_DIR/cluster.env).
Each check prints "ok: NAME"; the first failure raises."""
import http.client
import json
import os
import ssl
import subprocess
import sys
import time

STATE = os.environ.get("MIRRORD_TRACE_CLUSTER_DIR", "/run/mirrord-trace-cluster")
ENV = dict(l.strip().split("=", 1) for l in open(STATE + "/cluster.env") if "=" in l and not l.startswith("#"))
ADMIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "admin")
CTX = ssl.create_default_context(cafile=ENV["CA_CERT"])


def conn():
    return http.client.HTTPSConnection(ENV["API_SERVER_IP"], int(ENV["API_SERVER_PORT"]), context=CTX, timeout=20)


def req(method, path, body=None, token=ENV["ADMIN_TOKEN"], ctype="application/json", headers=None):
    c = conn()
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if body is not None:
        h["Content-Type"] = ctype
        body = body if isinstance(body, (bytes, str)) else json.dumps(body)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        obj = json.loads(data)
    except ValueError:
        obj = data
    return r.status, obj, r


def admin(*args):
    subprocess.run([ADMIN] + list(args), check=True, capture_output=True, timeout=10)


def check(name, cond, detail=""):
    if not cond:
        raise SystemExit("FAIL: %s %s" % (name, detail))
    print("ok:", name)


def expect_status(name, got, code, reason, message=None, details=None):
    st, obj, _ = got
    ok = (st == code and isinstance(obj, dict) and obj.get("kind") == "Status" and obj.get("apiVersion") == "v1"
          and obj.get("status") == "Failure" and obj.get("code") == code and obj.get("reason") == reason
          and obj.get("metadata") == {})
    if message is not None:
        ok = ok and obj.get("message") == message
    if details is not None:
        ok = ok and all(obj.get("details", {}).get(k) == v for k, v in details.items())
    check(name, ok, "%s %s" % (st, obj))
    return obj


def wait(fn, seconds=15):
    end = time.time() + seconds
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    return None


def pod(ns, name):
    return req("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, name))[1]


def watch_events(path, n, timeout=15, token=ENV["ADMIN_TOKEN"]):
    """Read up to N events from a watch (parsing a chunked stream)."""
    c = conn()
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked", r.status
    c.sock.settimeout(timeout)
    buf, out = "", []
    dec = json.JSONDecoder()
    while len(out) < n:
        d = r.read1(65536)
        if not d:
            break
        buf += d.decode()
        while True:
            s = buf.lstrip()
            try:
                obj, end = dec.raw_decode(s)
            except ValueError:
                break
            out.append(obj)
            buf = s[end:]
    c.close()
    return out


def watch_to_end(path, limit):
    """Every event of a watch until the server ends it: (events, ended, seconds).
    ended is False when LIMIT seconds passed first."""
    c = conn()
    t0 = time.time()
    c.request("GET", path, headers={"Authorization": "Bearer " + ENV["ADMIN_TOKEN"]})
    r = c.getresponse()
    assert r.status == 200, r.status
    c.sock.settimeout(max(0.1, limit - (time.time() - t0)))
    buf, out, ended = "", [], False
    dec = json.JSONDecoder()
    try:
        while True:
            d = r.read1(65536)
            if not d:
                ended = True
                break
            buf += d.decode()
            while True:
                s = buf.lstrip()
                try:
                    obj, end = dec.raw_decode(s)
                except ValueError:
                    break
                out.append(obj)
                buf = s[end:]
    except (TimeoutError, OSError):
        pass
    c.close()
    return out, ended, time.time() - t0


def watch_faults():
    """watch_close_after (events and seconds, idle watches too) and watch_expire."""
    lolz = "/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dlolz"
    admin("fault", "watch_close_after", "1")
    ev, ended, took = watch_to_end(lolz, 8)
    check("watch_close_after 1: ends after the first synthetic ADDED, though idle (%.1f s)" % took,
          ended and len(ev) == 1 and ev[0]["type"] == "ADDED" and took < 5, (ended, len(ev), took))
    st, lst, _ = req("GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dstandalone")
    rv = lst["metadata"]["resourceVersion"]
    import threading
    t = threading.Timer(0.5, lambda: admin("pod-status", "default", "standalone", '{"message": "close-after"}'))
    t.start()
    ev, ended, took = watch_to_end("/api/v1/namespaces/default/pods?watch=1&fieldSelector=metadata.name%3D"
                                   "standalone&resourceVersion=" + rv, 8)
    t.join()
    check("watch_close_after 1: from a resourceVersion, ends after one live MODIFIED",
          ended and [e["type"] for e in ev] == ["MODIFIED"] and
          ev[0]["object"]["status"]["message"] == "close-after", (ended, ev))
    admin("fault", "watch_close_after", '{"seconds": 1}')
    ev, ended, took = watch_to_end("/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv +
                                   "&fieldSelector=metadata.name%3Dnosuchpod", 8)
    check("watch_close_after {seconds: 1}: an idle watch ends after ~1 s (%.1f s)" % took,
          ended and ev == [] and 0.8 < took < 4, (ended, ev, took))
    admin("fault", "watch_close_after", '{"events": 3, "seconds": 30}')
    ev, ended, took = watch_to_end(lolz, 3)
    check("watch_close_after {events: 3}: the two ADDED, then open (ends by our limit)",
          not ended and len(ev) == 2, (ended, len(ev), took))
    r = subprocess.run([ADMIN, "fault", "watch_close_after", '"x"'], capture_output=True, text=True, timeout=10)
    check("watch_close_after rejects a bad value", r.returncode != 0 and "watch_close_after" in r.stdout, r.stdout)
    admin("fault", "watch_close_after", "0")
    # watch_expire: every watch with a resourceVersion gets 410; one without starts with ADDED
    admin("fault", "watch_expire", "true")
    ev, ended, took = watch_to_end("/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv, 8)
    check("watch_expire: a current resourceVersion gets ERROR 410 Expired and the end",
          ended and len(ev) == 1 and ev[0]["type"] == "ERROR" and ev[0]["object"]["code"] == 410 and
          ev[0]["object"]["reason"] == "Expired", (ended, ev))
    st, lst, _ = req("GET", "/apis/apps/v1/namespaces/default/deployments")
    ev, ended, took = watch_to_end("/apis/apps/v1/namespaces/default/deployments?watch=1&resourceVersion=" +
                                   lst["metadata"]["resourceVersion"], 8)
    check("watch_expire: deployments too", ended and ev and ev[0]["object"]["code"] == 410, ev)
    admin("fault", "watch_close_after", '{"seconds": 1}')
    ev, ended, took = watch_to_end(lolz, 8)
    check("watch_expire: no resourceVersion still lists (ADDED)", len(ev) == 2 and
          all(e["type"] == "ADDED" for e in ev), ev)
    admin("fault", "watch_expire", "false")
    ev, ended, took = watch_to_end("/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv +
                                   "&fieldSelector=metadata.name%3Dnosuchpod", 8)
    check("watch_expire off again: the same resourceVersion watches (no ERROR)", ended and ev == [], ev)
    admin("fault", "watch_close_after", "0")


def non_pod_kinds():
    """The SPEC's CronJob (a raw object of demo.json) got the metadata a create
    gives; selectors and watches work on kinds other than pods."""
    st, cj, _ = req("GET", "/apis/batch/v1/namespaces/default/cronjobs/nightly")
    md = cj.get("metadata", {}) if st == 200 else {}
    check("SPEC CronJob: uid, creationTimestamp, resourceVersion, generation", st == 200 and
          cj["kind"] == "CronJob" and len(md.get("uid", "")) == 36 and md.get("resourceVersion", "").isdigit() and
          time.strptime(md.get("creationTimestamp", "x"), "%Y-%m-%dT%H:%M:%SZ") and md.get("generation") == 1,
          (st, md))
    names = lambda o: sorted("%s/%s" % (i["metadata"]["namespace"], i["metadata"]["name"]) for i in o["items"])
    st, o, _ = req("GET", "/apis/batch/v1/cronjobs?labelSelector=app%3Dnightly")
    check("cronjobs labelSelector app=nightly", st == 200 and names(o) == ["default/nightly"], o)
    st, o, _ = req("GET", "/apis/batch/v1/cronjobs?labelSelector=app%21%3Dnightly")
    check("cronjobs labelSelector app!=nightly", st == 200 and "default/nightly" not in names(o), o)
    st, o, _ = req("GET", "/apis/batch/v1/namespaces/lolzspace/cronjobs")
    check("cronjobs in another namespace: none", st == 200 and o["items"] == [], o)
    st, o, _ = req("GET", "/apis/apps/v1/deployments?fieldSelector=metadata.namespace%3Dlolzspace")
    check("deployments fieldSelector metadata.namespace", names(o) == ["lolzspace/lolz"], o)
    st, o, _ = req("GET", "/apis/apps/v1/deployments?labelSelector=app+in+%28lolz%2Cmeshed%29")
    check("deployments labelSelector app in (lolz,meshed)", names(o) == ["default/lolz", "default/meshed",
                                                                        "lolzspace/lolz"], o)
    expect_status("cronjobs: unsupported field label", req("GET", "/apis/batch/v1/cronjobs?fieldSelector="
                                                                  "spec.schedule%3Dx"), 400, "BadRequest",
                  "field label not supported: spec.schedule")
    admin("fault", "watch_close_after", '{"seconds": 1}')
    try:
        ev, ended, _ = watch_to_end("/apis/batch/v1/namespaces/default/cronjobs?watch=1&labelSelector=app%3Dnightly", 8)
        check("watch cronjobs by label: one ADDED with the SPEC metadata", ended and len(ev) == 1 and
              ev[0]["type"] == "ADDED" and ev[0]["object"]["kind"] == "CronJob" and
              ev[0]["object"]["metadata"]["uid"] == md.get("uid"), ev)
        ev, ended, _ = watch_to_end("/apis/apps/v1/deployments?watch=1&labelSelector=app%3Dlolz"
                                    "&fieldSelector=metadata.namespace%3Ddefault", 8)
        check("watch deployments with label and field selectors", ended and
              [(e["type"], e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"]) for e in ev] ==
              [("ADDED", "default", "lolz")], ev)
        ev, ended, _ = watch_to_end("/apis/batch/v1/namespaces/default/cronjobs?watch=1&resourceVersion=" +
                                    md.get("resourceVersion", "0") + "&labelSelector=app%3Dnightly", 8)
        check("watch cronjobs from their resourceVersion: nothing new", ended and ev == [], ev)
    finally:
        admin("fault", "watch_close_after", "0")


def main():
    admin("reset")
    # --- auth
    expect_status("401 without credentials", req("GET", "/api/v1/namespaces/default/pods", token=None), 401,
                  "Unauthorized", "Unauthorized")
    expect_status("401 bad token", req("GET", "/api/v1/pods", token="nope"), 401, "Unauthorized")
    sa = [l for l in json.load(open(STATE + "/tokens.json")).items() if l[1].get("pod")][0]
    expect_status("403 for a service account without RBAC", req("GET", "/api/v1/namespaces/default/pods",
                                                                token=sa[0]), 403, "Forbidden",
                  'pods is forbidden: User "%s" cannot list resource "pods" in API group "" in the namespace '
                  '"default"' % sa[1]["user"], {"kind": "pods", "group": ""})
    st, obj, _ = req("GET", "/version", token=sa[0])
    check("discovery for service accounts", st == 200 and obj["major"] == "1")
    # --- discovery
    st, obj, _ = req("GET", "/apis/batch/v1")
    check("APIResourceList batch/v1", st == 200 and obj["kind"] == "APIResourceList" and
          {r["name"] for r in obj["resources"]} >= {"jobs", "cronjobs", "jobs/status"})
    st, obj, _ = req("GET", "/api/v1")
    check("APIResourceList v1", {"pods", "pods/log", "pods/portforward", "services", "nodes", "namespaces"}
          <= {r["name"] for r in obj["resources"]})
    # --- errors
    expect_status("404 pod", req("GET", "/api/v1/namespaces/default/pods/nope"), 404, "NotFound",
                  'pods "nope" not found', {"name": "nope", "group": "", "kind": "pods"})
    expect_status("404 job", req("GET", "/apis/batch/v1/namespaces/default/jobs/nope"), 404, "NotFound",
                  'jobs.batch "nope" not found', {"name": "nope", "group": "batch", "kind": "jobs"})
    expect_status("404 deployment", req("GET", "/apis/apps/v1/namespaces/default/deployments/nope"), 404,
                  "NotFound", 'deployments.apps "nope" not found')
    podbody = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "standalone"},
               "spec": {"containers": [{"name": "c", "image": "mt/sleep:1"}]}}
    expect_status("409 AlreadyExists", req("POST", "/api/v1/namespaces/default/pods", podbody), 409,
                  "AlreadyExists", 'pods "standalone" already exists', {"name": "standalone", "kind": "pods"})
    bad_job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad"},
               "spec": {"template": {"spec": {"restartPolicy": "Always",
                                              "containers": [{"name": "c", "image": "x"}]}}}}
    o = expect_status("422 Invalid restartPolicy", req("POST", "/apis/batch/v1/namespaces/default/jobs", bad_job),
                      422, "Invalid")
    check("422 causes field", o["details"]["causes"][0]["field"] == "spec.template.spec.restartPolicy" and
          o["details"]["kind"] == "Job" and o["details"]["group"] == "batch", o)
    o = expect_status("422 Invalid name", req("POST", "/api/v1/namespaces/default/pods",
                                              dict(podbody, metadata={"name": "Bad_Name"})), 422, "Invalid")
    check("422 name cause", o["details"]["causes"][0]["field"] == "metadata.name")
    o = expect_status("422 missing containers", req("POST", "/api/v1/namespaces/default/pods",
                                                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                                                     "spec": {}}), 422, "Invalid")
    unk = dict(podbody, metadata={"name": "strict-x"}, spec={"containers": [{"name": "c", "image": "mt/sleep:1",
                                                                              "bogus": 1}], "alsoBogus": True})
    expect_status("400 strict unknown field", req("POST", "/api/v1/namespaces/default/pods?fieldValidation=Strict",
                                                  unk), 400, "BadRequest",
                  'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field '
                  '"spec.containers[0].bogus", unknown field "spec.alsoBogus"')
    st, obj, r = req("POST", "/api/v1/namespaces/default/pods?fieldValidation=Strict",
                     '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d"},"metadata":{"name":"d2"},'
                     '"spec":{"containers":[{"name":"c","image":"mt/sleep:1"}]}}')
    check("400 strict duplicate field", st == 400 and 'duplicate field "metadata"' in obj["message"], obj)
    expect_status("400 wrong type", req("POST", "/api/v1/namespaces/default/pods",
                                        dict(podbody, metadata={"name": "t"}, spec={"containers": "x"})),
                  400, "BadRequest")
    expect_status("415 protobuf body", req("POST", "/api/v1/namespaces/default/pods", b"\x6b\x38\x73\x00",
                                           ctype="application/vnd.kubernetes.protobuf"), 415, "UnsupportedMediaType")
    expect_status("404 namespace on create", req("POST", "/api/v1/namespaces/nons/pods",
                                                 dict(podbody, metadata={"name": "q"})), 404, "NotFound",
                  'namespaces "nons" not found')
    expect_status("400 field label", req("GET", "/api/v1/pods?fieldSelector=spec.foo%3Dx"), 400, "BadRequest",
                  "field label not supported: spec.foo")
    # --- warning for unknown fields without Strict, pod runs (kubelet)
    st, obj, r = req("POST", "/api/v1/namespaces/default/pods", dict(unk, metadata={"generateName": "warned-"}))
    check("201 + Warning header", st == 201 and r.getheader("Warning", "").startswith('299 - "unknown field') and
          obj["metadata"]["name"].startswith("warned-") and len(obj["metadata"]["name"]) == 12, (st, obj))
    name = obj["metadata"]["name"]
    p = wait(lambda: (lambda x: x if x["status"].get("phase") == "Running" else None)(pod("default", name)))
    check("kubelet: pod Running with containerID and ready", p and
          p["status"]["containerStatuses"][0]["containerID"].startswith("containerd://") and
          p["status"]["containerStatuses"][0]["ready"] is True and p["status"]["podIP"].startswith("10.244."), p)
    st, obj, _ = req("DELETE", "/api/v1/namespaces/default/pods/" + name)
    check("pod delete returns the pod with deletionTimestamp", st == 200 and obj["metadata"].get("deletionTimestamp"))
    check("pod gone", wait(lambda: req("GET", "/api/v1/namespaces/default/pods/" + name)[0] == 404))
    # --- a failing pod: logs and exit code
    fp = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fails-%d" % os.getpid()},
          "spec": {"restartPolicy": "Never", "containers": [
              {"name": "c", "image": "busybox", "command": ["/bin/sh", "-c", "echo line1; sleep 1; echo line2; exit 3"]}]}}
    st, obj, _ = req("POST", "/api/v1/namespaces/default/pods", fp)
    check("create failing pod", st == 201, obj)
    fname = fp["metadata"]["name"]
    wait(lambda: pod("default", fname)["status"].get("phase") == "Running", 10)
    st, logs, _ = req("GET", "/api/v1/namespaces/default/pods/%s/log?follow=true" % fname)
    check("pods/log?follow=true streams until exit", st == 200 and logs == b"line1\nline2\n", logs)
    p = wait(lambda: (lambda x: x if x["status"].get("phase") == "Failed" else None)(pod("default", fname)))
    check("Failed with exitCode 3", p and p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3)
    req("DELETE", "/api/v1/namespaces/default/pods/%s" % fname, {"gracePeriodSeconds": 0})
    # --- jobs: orphan by default, job-name labels, completion
    jb = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "orphan-%d" % os.getpid()},
          "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
              {"name": "c", "image": "busybox", "command": ["/bin/sh", "-c", "echo done"]}]}}}}
    st, job, _ = req("POST", "/apis/batch/v1/namespaces/default/jobs?fieldValidation=Strict", jb)
    jn = jb["metadata"]["name"]
    check("job created with selector", st == 201 and job["spec"]["selector"]["matchLabels"] ==
          {"batch.kubernetes.io/controller-uid": job["metadata"]["uid"]}, job)
    lbl = "/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3D" + jn
    items = wait(lambda: req("GET", lbl)[1]["items"])
    check("job pod has job-name labels", items and items[0]["metadata"]["labels"]["job-name"] == jn and
          items[0]["metadata"]["ownerReferences"][0]["kind"] == "Job")
    jpod = items[0]["metadata"]["name"]
    done = wait(lambda: (lambda j: j if any(c["type"] == "Complete" for c in j.get("status", {}).get(
        "conditions", [])) else None)(req("GET", "/apis/batch/v1/namespaces/default/jobs/" + jn)[1]))
    check("job Complete, succeeded=1", done and done["status"]["succeeded"] == 1)
    check("job pod Succeeded", pod("default", jpod)["status"]["phase"] == "Succeeded")
    st, obj, r = req("DELETE", "/apis/batch/v1/namespaces/default/jobs/" + jn)
    check("job delete default: orphan + Warning", st == 200 and "child pods are preserved by default" in
          r.getheader("Warning", ""), (st, r.getheader("Warning")))
    p = pod("default", jpod)
    check("orphaned pod stays, without ownerReferences", p.get("kind") == "Pod" and
          "ownerReferences" not in p["metadata"])
    req("DELETE", "/api/v1/namespaces/default/pods/" + jpod)
    # --- watch: synthetic ADDED, MODIFIED through the admin hook, odd chunking
    admin("fault", "split", "7")
    st, lst, _ = req("GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dstandalone")
    rv = lst["metadata"]["resourceVersion"]
    import threading
    t = threading.Timer(0.5, lambda: admin("pod-status", "default", "standalone", '{"message": "poked"}'))
    t.start()
    ev = watch_events("/api/v1/namespaces/default/pods?watch=1&fieldSelector=metadata.name%3Dstandalone"
                      "&resourceVersion=" + rv, 1)
    t.join()
    check("watch from RV sees MODIFIED (7-byte chunks)", ev and ev[0]["type"] == "MODIFIED" and
          ev[0]["object"]["status"]["message"] == "poked", ev)
    admin("fault", "split", "0")
    ev = watch_events("/api/v1/namespaces/default/pods?watch=true&labelSelector=app%3Dlolz", 2)
    check("watch without RV: synthetic ADDED", len(ev) == 2 and all(e["type"] == "ADDED" for e in ev))
    admin("expire-now")
    ev = watch_events("/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv, 1)
    check("watch 410 Expired", ev and ev[0]["type"] == "ERROR" and ev[0]["object"]["code"] == 410 and
          ev[0]["object"]["reason"] == "Expired", ev)
    # --- fault switches
    admin("fault", "forbid", '[["get","pods"]]')
    expect_status("403 fault switch", req("GET", "/api/v1/namespaces/default/pods/standalone"), 403, "Forbidden",
                  'pods "standalone" is forbidden: User "kubernetes-admin" cannot get resource "pods" in API '
                  'group "" in the namespace "default"')
    admin("fault", "errors", '[{"verb":"list","resource":"services","code":500}]')
    expect_status("500 fault switch", req("GET", "/api/v1/services"), 500, "InternalError")
    admin("reset")
    watch_faults()
    non_pod_kinds()
    # --- list paging
    st, obj, _ = req("GET", "/api/v1/pods?limit=2")
    check("limit/continue", len(obj["items"]) == 2 and obj["metadata"].get("continue"))
    st, obj2, _ = req("GET", "/api/v1/pods?limit=100&continue=" + obj["metadata"]["continue"])
    check("continue returns the rest", len(obj2["items"]) >= 5)
    print("all ok")


if __name__ == "__main__":
    main()
