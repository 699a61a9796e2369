"""Authorization and admission of the fake API server (apiserver.py): RBAC
rule matching over the bindings `admin bind-role`/`bind-clusterrole` make,
and Pod Security Admission (enforce mode)."""
from api_store import BINDINGS, LOCK, APIError, get_obj


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
