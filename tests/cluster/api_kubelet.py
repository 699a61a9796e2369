"""The fake API server's built-in kubelet (apiserver.py): starts pods as
processes in new pod network namespaces (cluster.py functions), keeps
their status and pods.json, stops them by cgroup, runs ephemeral
containers; plus the object deletion it serves (graceful pods, Jobs and
their propagation) and the Job status it reports to."""
import copy
import json
import os
import re
import subprocess
import threading
import time

import api_store
import cluster
from api_store import (FAULTS, KUBELET, LOCK, LOG, TOKENS, APIError, get_obj, list_objs, not_found, now, put,
                       record_event, write_pods_json)


# ------------------------------------------------------------------ kubelet

def gen_suffix():
    return "".join(cluster.ALNUM[b % len(cluster.ALNUM)] for b in os.urandom(5))


def alloc_index():
    with LOCK:
        p = api_store.STATE + "/next-pod-index"
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
        cluster.apply_service_rules(netns, open(api_store.STATE + "/svc-rules").read())
        pdir = "%s/pods/%s_%s" % (api_store.STATE, ns, name)
        token = cluster.sa_token(ns, name, pod["spec"].get("serviceAccountName", "default"))
        with LOCK:
            TOKENS[token] = {"user": "system:serviceaccount:%s:%s" % (ns, pod["spec"].get("serviceAccountName",
                                                                                          "default")),
                             "groups": ["system:serviceaccounts", "system:serviceaccounts:" + ns,
                                        "system:authenticated"], "pod": "%s/%s" % (ns, name)}
        hostname = pod["spec"].get("hostname") or name
        cluster.write_pod_files(pdir, name, ns, ip, hostname[:63], pod["spec"].get("subdomain"), token,
                                open(api_store.STATE + "/pki/ca.crt").read(), pod["spec"].get("hostAliases") or [])
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
    entry = {"name": name, "namespace": ns, "node": api_store.NODE, "uid": pod["metadata"]["uid"], "ip": ip,
             "netns": cluster.netns_path(netns), "netnsName": netns, "dir": pdir,
             "containers": [{"name": c["name"], "pid": pids[c["name"]], "containerID": "containerd://" + cids[c["name"]],
                             "image": c.get("image", "")} for c in pod["spec"]["containers"]]}
    with LOCK:
        KUBELET[(ns, name)] = {"procs": procs, "netns": netns, "dir": pdir, "entry": entry, "cids": cids}
    for c in pod["spec"]["containers"]:
        fp = "spec.containers{%s}" % c["name"]
        record_event(pod, "Normal", "Pulled", 'Container image "%s" already present on machine' % c.get("image"),
                     "kubelet", api_store.NODE, fp)
        record_event(pod, "Normal", "Created", "Created container: " + c["name"], "kubelet", api_store.NODE, fp)
        record_event(pod, "Normal", "Started", "Started container " + c["name"], "kubelet", api_store.NODE, fp)
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
            for p in json.load(open(api_store.STATE + "/pods.json")):
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
            record_event(obj, "Normal", "Killing", "Stopping container " + c["name"], "kubelet", api_store.NODE,
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
        for p in json.load(open(api_store.STATE + "/pods.json")):
            if p["namespace"] == ns and p["name"] == name:
                return p["netns"] if os.path.exists(p["netns"]) else None
    except (OSError, ValueError):
        pass
    return None


def pods_json_update(ns, name, fn):
    with LOCK:
        try:
            cur = json.load(open(api_store.STATE + "/pods.json"))
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
        tmp = api_store.STATE + "/pods.json.tmp"
        with open(tmp, "w") as f:
            json.dump(cur, f, indent=1)
        os.rename(tmp, api_store.STATE + "/pods.json")


def pod_entry(ns, name):
    with LOCK:
        k = KUBELET.get((ns, name))
        if k and k.get("entry"):
            return copy.deepcopy(k["entry"])
    try:
        for p in json.load(open(api_store.STATE + "/pods.json")):
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
