#!/usr/bin/python3
"""RBAC from real Role objects, Events, Pod Security admission and the
kubelet's kill by cgroup (tests/cluster/README.md), run from the workstation
namespace: rbac_events_test.py [KUBECTL]. Each check prints "ok: NAME"; the
first failure raises. With KUBECTL (a kubectl binary), `kubectl get events`
is checked too, as admin and as a user bound to deploy/rbac.yaml."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_test import ADMIN, ENV, STATE, check, expect_status, pod, req, wait, watch_events  # noqa: E402

RBAC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "deploy", "rbac.yaml")
KUBECTL = sys.argv[1] if len(sys.argv) > 1 else None
PSA = "pod-security.kubernetes.io/enforce"
ALNUM5 = "[bcdfghjklmnpqrstvwxz2456789]{5}"
TAG = str(os.getpid())


def admin_out(*args):
    r = subprocess.run([ADMIN] + list(args), capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise SystemExit("FAIL: admin %s: %s %s" % (" ".join(args), r.stdout, r.stderr))
    return r.stdout.strip()


def forbidden(user, verb, res, group, ns, name=None, what=None):
    what = what or (res.split("/")[0] + ("." + group if group else ""))
    what = '%s "%s"' % (what, name) if name else what
    where = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
    return '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
        what, user, verb, res, group, where)


def pods_json():
    return json.load(open(STATE + "/pods.json"))


def entry(ns, name):
    return next((p for p in pods_json() if p["namespace"] == ns and p["name"] == name), None)


def events(ns, sel):
    st, obj, _ = req("GET", "/api/v1/namespaces/%s/events?fieldSelector=%s" % (ns, sel))
    assert st == 200, (st, obj)
    return obj["items"]


def rbac():
    admin("reset")
    alice = admin_out("token", "alice")
    check("admin token prints a token", re.match(r"^[A-Za-z0-9_-]{20,}$", alice), alice)
    lz = next(p["name"] for p in pods_json() if p["namespace"] == "lolzspace" and p["name"].startswith("lolz-"))
    expect_status("minted token, no binding: 403", req("GET", "/api/v1/namespaces/lolzspace/pods/" + lz, token=alice),
                  403, "Forbidden", forbidden("alice", "get", "pods", "", "lolzspace", lz),
                  {"name": lz, "group": "", "kind": "pods"})
    admin_out("bind-role", "lolzspace", "alice", RBAC)
    st, obj, _ = req("GET", "/api/v1/namespaces/lolzspace/pods/" + lz, token=alice)
    check("Role: get pods allowed", st == 200 and obj["metadata"]["name"] == lz, st)
    st, obj, _ = req("GET", "/api/v1/namespaces/lolzspace/pods?labelSelector=app%3Dlolz", token=alice)
    check("Role: list pods allowed", st == 200 and len(obj["items"]) == 1, st)
    ev = watch_events("/api/v1/namespaces/lolzspace/pods?watch=1&fieldSelector=metadata.name%3Dredis-0", 1,
                      token=alice)
    check("Role: watch pods allowed", ev and ev[0]["type"] == "ADDED", ev)
    expect_status("Role: delete pods denied (exact message)",
                  req("DELETE", "/api/v1/namespaces/lolzspace/pods/" + lz, token=alice), 403, "Forbidden",
                  forbidden("alice", "delete", "pods", "", "lolzspace", lz), {"name": lz, "kind": "pods"})
    check("the pod is still there", pod("lolzspace", lz).get("kind") == "Pod")
    expect_status("Role: another namespace denied", req("GET", "/api/v1/namespaces/default/pods/standalone",
                                                        token=alice), 403, "Forbidden",
                  forbidden("alice", "get", "pods", "", "default", "standalone"))
    expect_status("Role: all namespaces denied", req("GET", "/api/v1/pods", token=alice), 403, "Forbidden",
                  forbidden("alice", "list", "pods", "", None))
    expect_status("Role: apiGroup mismatch denied (403 before 404)",
                  req("GET", "/apis/batch/v1/namespaces/lolzspace/deployments", token=alice), 403, "Forbidden",
                  forbidden("alice", "list", "deployments", "batch", "lolzspace"), {"group": "batch"})
    st, obj, _ = req("GET", "/apis/apps/v1/namespaces/lolzspace/deployments", token=alice)
    check("Role: list deployments.apps allowed", st == 200 and obj["kind"] == "DeploymentList", st)
    expect_status("Role: watch deployments denied (verbs get, list)",
                  req("GET", "/apis/apps/v1/namespaces/lolzspace/deployments?watch=1", token=alice), 403,
                  "Forbidden", forbidden("alice", "watch", "deployments", "apps", "lolzspace"))
    st, obj, _ = req("GET", "/api/v1/namespaces/lolzspace/pods/redis-0/log?tailLines=1", token=alice)
    check("Role: pods/log allowed", st == 200, (st, obj))
    expect_status("Role: pods/exec denied", req("POST", "/api/v1/namespaces/lolzspace/pods/redis-0/exec",
                                                token=alice), 403, "Forbidden",
                  forbidden("alice", "create", "pods/exec", "", "lolzspace", "redis-0", "pods"))
    expect_status("Role: pods/portforward GET checks get (then 400 without Upgrade)",
                  req("GET", "/api/v1/namespaces/lolzspace/pods/redis-0/portforward?ports=6379", token=alice),
                  400, "BadRequest", "Upgrade request required")
    expect_status("Role: rollouts.argoproj.io allowed, then 404 (no such API)",
                  req("GET", "/apis/argoproj.io/v1alpha1/namespaces/lolzspace/rollouts/x", token=alice),
                  404, "NotFound")
    expect_status("no binding: rollouts.argoproj.io 403",
                  req("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/x", token=alice),
                  403, "Forbidden", forbidden("alice", "get", "rollouts", "argoproj.io", "default", "x"))
    st, obj, _ = req("GET", "/api/v1/namespaces/lolzspace/events", token=alice)
    check("Role: list events allowed", st == 200 and obj["kind"] == "EventList", st)
    expect_status("Role: watch events denied", req("GET", "/api/v1/namespaces/lolzspace/events?watch=1",
                                                   token=alice), 403, "Forbidden",
                  forbidden("alice", "watch", "events", "", "lolzspace"))
    jb = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "rbac-%s" % TAG},
          "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
              {"name": "c", "image": "busybox", "command": ["/bin/true"]}]}}}}
    st, obj, _ = req("POST", "/apis/batch/v1/namespaces/lolzspace/jobs", jb, token=alice)
    check("Role: create jobs allowed", st == 201, (st, obj))
    st, obj, _ = req("DELETE", "/apis/batch/v1/namespaces/lolzspace/jobs/" + jb["metadata"]["name"],
                     {"propagationPolicy": "Background"}, token=alice)
    check("Role: delete jobs allowed", st == 200, (st, obj))
    # ClusterRole mirrord-trace-ls: list namespaces, nothing else
    expect_status("no ClusterRole: list namespaces denied", req("GET", "/api/v1/namespaces", token=alice), 403,
                  "Forbidden", forbidden("alice", "list", "namespaces", "", None))
    admin_out("bind-clusterrole", "alice", RBAC)
    st, obj, _ = req("GET", "/api/v1/namespaces", token=alice)
    check("ClusterRole: list namespaces allowed", st == 200 and any(
        n["metadata"]["name"] == "lolzspace" for n in obj["items"]), st)
    expect_status("ClusterRole: get namespace denied (verb list only)",
                  req("GET", "/api/v1/namespaces/default", token=alice), 403, "Forbidden",
                  forbidden("alice", "get", "namespaces", "", "default", "default"))
    # resourceNames, wildcards, group subjects, a ClusterRole bound by a RoleBinding
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: just-redis}
rules:
- apiGroups: [""]
  resources: [pods]
  resourceNames: [redis-0]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: everything}
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["*"]
""")
    try:
        bob = admin_out("token", "bob")
        admin_out("bind-role", "lolzspace", "bob", f.name, "just-redis")
        check("resourceNames: the named pod", req("GET", "/api/v1/namespaces/lolzspace/pods/redis-0",
                                                   token=bob)[0] == 200)
        expect_status("resourceNames: another pod denied", req("GET", "/api/v1/namespaces/lolzspace/pods/" + lz,
                                                               token=bob), 403, "Forbidden",
                      forbidden("bob", "get", "pods", "", "lolzspace", lz))
        expect_status("resourceNames: list denied", req("GET", "/api/v1/namespaces/lolzspace/pods", token=bob),
                      403, "Forbidden", forbidden("bob", "list", "pods", "", "lolzspace"))
        carol = admin_out("token", "carol", "devs")
        admin_out("bind-role", "default", "group:devs", f.name, "everything")
        check("\"*\" rules via group subject: pods/log in default",
              req("GET", "/api/v1/namespaces/default/pods/standalone/log?tailLines=1", token=carol)[0] == 200)
        check("\"*\" rules: jobs.batch in default",
              req("GET", "/apis/batch/v1/namespaces/default/jobs", token=carol)[0] == 200)
        expect_status("ClusterRole via RoleBinding stays in its namespace",
                      req("GET", "/api/v1/namespaces/lolzspace/pods", token=carol), 403, "Forbidden",
                      forbidden("carol", "list", "pods", "", "lolzspace"))
        r = subprocess.run([ADMIN, "bind-clusterrole", "bob", f.name, "just-redis"], capture_output=True, text=True)
        check("bind-clusterrole refuses a Role", r.returncode != 0 and "no ClusterRole named just-redis" in r.stderr,
              r.stderr)
    finally:
        os.unlink(f.name)
    # a kubeconfig for a user
    kc = tempfile.mktemp(prefix="mtc-kc-")
    admin_out("kubeconfig", "alice", kc)
    text = open(kc).read()
    check("admin kubeconfig writes a token kubeconfig", "token: " in text and ENV["API_SERVER"] in text and
          oct(os.stat(kc).st_mode & 0o777) == "0o600", text[:200])
    admin("reset")
    expect_status("admin reset clears bindings", req("GET", "/api/v1/namespaces/lolzspace/pods/" + lz,
                                                     token=alice), 403, "Forbidden")
    return kc


def admin(*args):
    admin_out(*args)


def psa():
    ns = "psa-baseline"
    st, obj, _ = req("GET", "/api/v1/namespaces/" + ns)
    check("SPEC namespace labels", obj["metadata"]["labels"].get(PSA) == "baseline", obj["metadata"])
    st, obj, _ = req("GET", "/api/v1")
    evr = [r for r in obj["resources"] if r["name"] == "events"]
    check("events in /api/v1 discovery, short name ev", evr and evr[0]["shortNames"] == ["ev"] and
          evr[0]["kind"] == "Event" and evr[0]["namespaced"] is True, evr)
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "psa-direct"},
           "spec": {"hostPID": True, "containers": [{"name": "c", "image": "busybox",
                                                       "securityContext": {"privileged": True}}]}}
    expect_status("PSA baseline: direct POST 403", req("POST", "/api/v1/namespaces/%s/pods" % ns, bad), 403,
                  "Forbidden", 'pods "psa-direct" is forbidden: violates PodSecurity "baseline:latest": host '
                  'namespaces (hostPID=true), privileged (container "c" must not set securityContext.privileged='
                  'true)', {"name": "psa-direct", "group": "", "kind": "pods"})
    check("PSA: no pod stored", req("GET", "/api/v1/namespaces/%s/pods/psa-direct" % ns)[0] == 404)
    st, obj, _ = req("POST", "/api/v1/namespaces/%s/pods?dryRun=All" % ns,
                     dict(bad, metadata={"name": "ok"}, spec={"containers": [{"name": "c", "image": "busybox",
                          "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"]}}}]}))
    check("PSA baseline: baseline capabilities admitted", st == 201, (st, obj))
    st, obj, _ = req("POST", "/api/v1/namespaces/default/pods?dryRun=All", bad)
    check("PSA: unlabelled namespace is privileged", st == 201, (st, obj))
    admin("ns-label", ns, PSA, "restricted")
    plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "plain-"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    o = expect_status("PSA restricted: plain pod 403", req("POST", "/api/v1/namespaces/%s/pods" % ns, plain), 403,
                      "Forbidden")
    msg = ('violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set '
           'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set '
           'securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set '
           'securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set '
           'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')
    check("PSA restricted: message (generated name)", re.fullmatch(
        r'pods "plain-%s" is forbidden: %s' % (ALNUM5, re.escape(msg)), o["message"]), o["message"])
    good = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good"},
            "spec": {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "c", "image": "busybox", "securityContext": {
                         "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}
    st, obj, _ = req("POST", "/api/v1/namespaces/%s/pods?dryRun=All" % ns, good)
    check("PSA restricted: compliant pod admitted", st == 201, (st, obj))
    admin("ns-label", ns, PSA, "baseline")
    # --- a Job whose pod is rejected: no pod, FailedCreate Events, retries
    jn = "agent-%s" % TAG
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": jn},
           "spec": {"backoffLimit": 0, "template": {"spec": {
               "restartPolicy": "Never", "hostPID": True,
               "volumes": [{"name": "hostrun", "hostPath": {"path": "/run"}}],
               "containers": [{"name": "agent", "image": "busybox", "command": ["/bin/sh", "-c", "sleep 30"],
                               "volumeMounts": [{"name": "hostrun", "mountPath": "/host/run"}],
                               "securityContext": {"capabilities": {"add": ["SYS_PTRACE", "NET_ADMIN"]}}}]}}}}
    st, jo, _ = req("POST", "/apis/batch/v1/namespaces/%s/jobs" % ns, job)
    check("PSA: the Job itself is created", st == 201, (st, jo))
    uid = jo["metadata"]["uid"]
    evs = wait(lambda: events(ns, "involvedObject.name%3D" + jn), 10)
    check("FailedCreate event listed by involvedObject.name", evs, evs)
    e = evs[0]
    want = ('Error creating: pods "%s-%s" is forbidden: violates PodSecurity "baseline:latest": non-default '
            'capabilities (container "agent" must not include "NET_ADMIN", "SYS_PTRACE" in securityContext.'
            'capabilities.add), host namespaces (hostPID=true), hostPath volumes (volume "hostrun")')
    one = req("GET", "/api/v1/namespaces/%s/events/%s" % (ns, e["metadata"]["name"]))[1]
    check("GET one event", one.get("kind") == "Event" and one.get("apiVersion") == "v1", one)
    check("FailedCreate event shape", e["type"] == "Warning"
          and e["reason"] == "FailedCreate" and e["count"] == 1 and e["source"] == {"component": "job-controller"}
          and e["reportingComponent"] == "job-controller" and e["firstTimestamp"] and e["lastTimestamp"]
          and re.match(r"^%s\.[0-9a-f]+$" % jn, e["metadata"]["name"]) and e["metadata"]["namespace"] == ns
          and {k: e["involvedObject"].get(k) for k in ("kind", "apiVersion", "name", "namespace", "uid")} ==
          {"kind": "Job", "apiVersion": "batch/v1", "name": jn, "namespace": ns, "uid": uid}, e)
    check("FailedCreate message", re.fullmatch(re.escape(want % (jn, "XXXXX")).replace("XXXXX", ALNUM5),
                                               e["message"]), e["message"])
    lbl = "/api/v1/namespaces/%s/pods?labelSelector=batch.kubernetes.io%%2Fjob-name%%3D%s" % (ns, jn)
    check("the Job has no pod", req("GET", lbl)[1]["items"] == [])
    for sel, n in (("involvedObject.uid%3D" + uid, 1), ("reason%3DFailedCreate,type%3DWarning", 1),
                   ("involvedObject.kind%3DJob,involvedObject.namespace%3D" + ns, 1),
                   ("involvedObject.name%3D" + jn + ",type%3DNormal", 0), ("reason!%3DFailedCreate", 0)):
        got = [x for x in events(ns, sel) if x["involvedObject"].get("uid") == uid]
        check("fieldSelector %s" % sel.replace("%3D", "="), (len(got) >= 1) == (n == 1), got)
    expect_status("events: unsupported field label", req("GET", "/api/v1/namespaces/%s/events?fieldSelector="
                                                          "involvedObject.foo%%3Dx" % ns), 400, "BadRequest",
                  "field label not supported: involvedObject.foo")
    st, obj, _ = req("GET", "/api/v1/events?fieldSelector=involvedObject.uid%3D" + uid)
    check("/api/v1/events (all namespaces)", st == 200 and obj["kind"] == "EventList" and obj["items"], obj)
    rv = obj["metadata"]["resourceVersion"]
    ev = watch_events("/api/v1/namespaces/%s/events?watch=1&resourceVersion=%s&fieldSelector=involvedObject.uid%%3D%s"
                      % (ns, rv, uid), 1, timeout=20)
    check("watch events: the controller's retry (backoff) is a new FailedCreate", ev and ev[0]["type"] == "ADDED"
          and ev[0]["object"]["reason"] == "FailedCreate", ev)
    st, obj, _ = req("GET", "/api/v1/namespaces/%s/events?fieldSelector=involvedObject.name%%3D%s" % (ns, jn),
                     headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    check("events Table columns", st == 200 and [c["name"] for c in obj["columnDefinitions"] if c["priority"] == 0]
          == ["Last Seen", "Type", "Reason", "Object", "Message"] and obj["rows"][0]["cells"][1:4] ==
          ["Warning", "FailedCreate", "job/" + jn], obj)
    if KUBECTL:
        kubectl_events(ns, jn)
    # relabelled privileged: the next retry creates the pod
    admin("ns-label", ns, PSA, "privileged")
    items = wait(lambda: req("GET", lbl)[1]["items"], 40)
    check("namespace relabelled privileged: the Job's pod is created on retry", items, items)
    check("SuccessfulCreate event", wait(lambda: [x for x in events(ns, "involvedObject.name%3D" + jn)
                                                  if x["reason"] == "SuccessfulCreate" and x["type"] == "Normal"
                                                  and x["message"] == "Created pod: " + items[0]["metadata"]["name"]]))
    pn = items[0]["metadata"]["name"]
    p = wait(lambda: (lambda x: x if x["status"].get("phase") == "Running" else None)(pod(ns, pn)))
    check("kubelet events Pulled, Created, Started", p and wait(lambda: [x["reason"] for x in events(
        ns, "involvedObject.name%3D" + pn)] == ["Pulled", "Created", "Started"]),
          events(ns, "involvedObject.name%3D" + pn))
    e = events(ns, "involvedObject.name%3D" + pn + ",reason%3DStarted")[0]
    check("kubelet event shape", e["source"] == {"component": "kubelet", "host": ENV["NODE_NAME"]} and
          e["involvedObject"]["fieldPath"] == "spec.containers{agent}" and e["message"] == "Started container agent"
          and e["involvedObject"]["kind"] == "Pod", e)
    admin("ns-label", ns, PSA, "baseline")
    req("DELETE", "/apis/batch/v1/namespaces/%s/jobs/%s" % (ns, jn), {"propagationPolicy": "Background"})
    check("job pod deleted", wait(lambda: req("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, pn))[0] == 404, 20))


def kubectl_events(ns, jn):
    cache = tempfile.mkdtemp()

    def k(*args, kubeconfig=None):
        env = dict(os.environ, KUBECONFIG=kubeconfig or ENV["KUBECONFIG"])
        return subprocess.run([KUBECTL, "--cache-dir=" + cache, "--request-timeout=20s"] + list(args),
                              capture_output=True, text=True, timeout=30, env=env)
    r = k("get", "events", "-n", ns)
    lines = r.stdout.splitlines()
    check("kubectl get events: header", r.returncode == 0 and lines and
          re.match(r"^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$", lines[0]), r.stdout + r.stderr)
    check("kubectl get events: FailedCreate row", any(re.match(
        r"^\S+\s+Warning\s+FailedCreate\s+job/%s\s+Error creating: pods \"%s-%s\" is forbidden: violates PodSecurity "
        r"\"baseline:latest\": non-default capabilities" % (jn, jn, ALNUM5), ln) for ln in lines), r.stdout)
    r = k("get", "ev", "-n", ns, "--field-selector", "involvedObject.name=%s,reason=FailedCreate" % jn, "-o", "json")
    check("kubectl get ev --field-selector -o json", r.returncode == 0 and json.loads(r.stdout)["items"] and all(
        i["reason"] == "FailedCreate" for i in json.loads(r.stdout)["items"]), r.stdout[:300] + r.stderr)
    # as a user of deploy/rbac.yaml, with a minted kubeconfig
    kc = tempfile.mktemp(prefix="mtc-kc-")
    admin_out("kubeconfig", "dave", kc)
    try:
        r = k("get", "events", "-n", ns, kubeconfig=kc)
        check("kubectl as a user without RBAC: Forbidden", r.returncode != 0 and 'User "dave" cannot list resource '
              '"events" in API group "" in the namespace "%s"' % ns in r.stderr, r.stderr)
        admin_out("bind-role", ns, "dave", RBAC)
        r = k("get", "events", "-n", ns, kubeconfig=kc)
        check("kubectl as a user bound to deploy/rbac.yaml: get events", r.returncode == 0 and "FailedCreate" in
              r.stdout, r.stdout + r.stderr)
    finally:
        admin("reset")
        os.unlink(kc)
        subprocess.run(["rm", "-rf", cache])


def cgroup_kill():
    ns = "default"
    made = []
    for n in ("mover-a-%s" % TAG, "mover-b-%s" % TAG):
        st, obj, _ = req("POST", "/api/v1/namespaces/%s/pods" % ns, {"apiVersion": "v1", "kind": "Pod",
                                                                   "metadata": {"name": n}, "spec": {"containers": [
                                                                       {"name": "c", "image": "mt/sleep:1"}]}})
        check("create " + n, st == 201, (st, obj))
        made.append(n)
    a, b = [wait(lambda n=n: (lambda e: e if e and pod(ns, n)["status"].get("phase") == "Running" else None)(
        entry(ns, n))) for n in made]
    check("both pods run (pods.json)", a and b)
    cg = "/sys/fs/cgroup/pids/mtc-kubepods/pod%s/%s" % (a["uid"], a["containers"][0]["containerID"].split("//")[1])
    if not os.path.isdir(cg):
        cg = "/sys/fs/cgroup/mtc-kubepods/pod%s/%s" % (a["uid"], a["containers"][0]["containerID"].split("//")[1])
    # Like the agent: starts in pod A's cgroup, then setns() into pod B's network namespace.
    mover = subprocess.Popen(["/bin/sh", "-c", 'echo $$ >"$1/cgroup.procs" && exec nsenter --net="$2" sleep 1000',
                              "sh", cg, b["netns"]])
    ok = wait(lambda: os.path.exists("/proc/%d" % mover.pid) and open("/proc/%d/comm" % mover.pid).read().strip()
              == "sleep", 5)
    check("mover: in pod A's cgroup and pod B's netns", ok and os.stat("/proc/%d/ns/net" % mover.pid).st_ino ==
          os.stat(b["netns"]).st_ino and "/pod%s/" % a["uid"] in open("/proc/%d/cgroup" % mover.pid).read())
    req("DELETE", "/api/v1/namespaces/%s/pods/%s" % (ns, made[1]))
    check("pod B deleted", wait(lambda: req("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, made[1]))[0] == 404, 20))
    time.sleep(0.5)
    check("deleting pod B spares pod A's process in B's netns", mover.poll() is None)
    req("DELETE", "/api/v1/namespaces/%s/pods/%s" % (ns, made[0]))
    check("pod A deleted", wait(lambda: req("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, made[0]))[0] == 404, 20))
    try:
        code = mover.wait(timeout=5)
    except subprocess.TimeoutExpired:
        mover.kill()
        code = None
    check("deleting pod A kills its process that moved to B's netns", code in (-9, -15), code)
    check("pod A's cgroup removed", not os.path.exists(os.path.dirname(cg)))


def main():
    try:
        kc = rbac()
        os.unlink(kc)
        psa()
        cgroup_kill()
    finally:
        admin("reset")
        admin("ns-label", "psa-baseline", PSA, "baseline")
    print("all ok")


if __name__ == "__main__":
    main()
