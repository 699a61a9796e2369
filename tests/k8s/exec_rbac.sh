#!/bin/bash
# Everything `mirrord-trace exec` and `ls` do, as a user who has exactly
# deploy/rbac.yaml: the Role bound in the target and agent namespaces, the
# optional ClusterRole once. A targeted run (Job in another namespace than
# the target), a targetless run, an ephemeral agent and `ls` all work; with
# the Role missing from the agent namespace the run fails with the RBAC
# message and leaves nothing behind.
# Usage: exec_rbac.sh MIRRORD_TRACE
. "$(dirname "$0")/exec_lib.sh"
RBAC=$(cd "$(dirname "$0")/../.." && pwd)/deploy/rbac.yaml
KC=$(mktemp)
EXTRA_FILES="$KC"
USER_NAME=mt-dev

none_left "before the tests"
admin kubeconfig "$USER_NAME" "$KC"
export KUBECONFIG="$KC"

# Nothing bound yet: even the target cannot be read.
mt -t deploy/lolz -n lolzspace -- true && fail "ran without any role"
grep -q "forbidden (RBAC)" "$ERR" || fail "no RBAC message without a role: $(cat "$ERR")"

admin bind-role lolzspace "$USER_NAME" "$RBAC" mirrord-trace
# The target namespace only: the agent Job goes to the kubeconfig's
# namespace (default), where the user has no rights yet.
mt -t deploy/lolz -n lolzspace -- true && fail "ran without the role in the agent namespace"
grep -q "cannot create jobs in namespace default: forbidden (RBAC); the role needs batch/jobs create, see deploy/rbac.yaml" "$ERR" ||
	fail "agent namespace message: $(cat "$ERR")"
admin reset
none_left "after the missing role"

admin bind-role lolzspace "$USER_NAME" "$RBAC" mirrord-trace
admin bind-role default "$USER_NAME" "$RBAC" mirrord-trace
admin bind-clusterrole "$USER_NAME" "$RBAC" mirrord-trace-ls

mt -t deploy/lolz -n lolzspace -- curl -sS -m 20 http://lolz.default.svc.cluster.local/ ||
	fail "targeted under rbac.yaml: rc=$? err=$(cat "$ERR")"
grep -q "hello from the pod" "$OUT" || fail "targeted under rbac.yaml: $(cat "$OUT")"
none_left "after the targeted run"

mt -t targetless -n lolzspace -- curl -sS -m 20 http://lolz/ ||
	fail "targetless under rbac.yaml: rc=$? err=$(cat "$ERR")"
grep -q "hello from the pod" "$OUT" || fail "targetless under rbac.yaml: $(cat "$OUT")"
none_left "after the targetless run"

mt -e -t pod/standalone -- cat /etc/hostname || fail "ephemeral under rbac.yaml: rc=$? err=$(cat "$ERR")"
grep -qx "standalone" "$OUT" || fail "ephemeral under rbac.yaml: $(cat "$OUT")"
none_left "after the ephemeral run"

T=30 in_ws "$MT" ls -n lolzspace >"$OUT" 2>"$ERR" || fail "ls under rbac.yaml: $(cat "$ERR")"
grep -qx "deployment/lolz" "$OUT" || fail "ls under rbac.yaml: $(cat "$OUT")"

echo "PASS"
