#!/bin/bash
# RBAC from deploy/rbac.yaml and other Role objects, minted user tokens, Events,
# Pod Security admission (direct POST, Job FailedCreate) and the kubelet's kill
# by cgroup (tests/rbac_events_test.py), plus `kubectl get events` (1.32).
. "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml missing (admin bind-role reads YAML)"
KDIR=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")
[ -x "$KDIR/kubectl.1.32" ] || skip "kubectl.1.32 not found next to the kubectl dispatcher ($KDIR)"
T=150 in_ws /usr/bin/python3 "$TESTS/rbac_events_test.py" "$KDIR/kubectl.1.32"
