"""Write paths of the fake API server (apiserver.py): POST of pods and jobs
(defaults, admission), DELETE with propagation, pods/ephemeralcontainers
PATCH/PUT (RFC 7386/6902 and strategic merge patches), and the job
controller, as the Writes mixin of the HTTP handler (api_http.Handler)."""
import copy
import json
import threading
import time
import uuid

import api_store
from api_kubelet import delete_object, gen_suffix, kubelet_ephemeral, kubelet_run
from api_policy import psa_check
from api_schema import DNS1123_LABEL, decode_body, invalid, json_type, semantic_checks, validate_schema
from api_store import (LOCK, RESOURCES, APIError, bad_request, get_obj, not_found, now, put, qualified,
                       record_event)

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


class Writes:
    """Create, delete, pods/ephemeralcontainers and the job controller;
    mixed into api_http.Handler."""

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
        elif obj["spec"].get("nodeName") == api_store.NODE:
            threading.Thread(target=kubelet_run, args=(ns, md["name"]), daemon=True).start()

    @staticmethod
    def pod_defaults(obj):
        sp = obj.setdefault("spec", {})
        sp.setdefault("restartPolicy", "Always")
        sp.setdefault("dnsPolicy", "ClusterFirst")
        sp.setdefault("schedulerName", "default-scheduler")
        sp.setdefault("serviceAccountName", "default")
        sp.setdefault("terminationGracePeriodSeconds", 30)
        sp.setdefault("nodeName", api_store.NODE)  # the only node: "scheduled" at once
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
        Writes.pod_defaults(pod)
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
            threading.Thread(target=Writes.job_controller, args=(job, min(max(delay * 2, 1.0), 60.0)),
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
        if pod["spec"]["nodeName"] == api_store.NODE:
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
