#!/bin/bash
# `mirrord-trace ls` on the fake cluster: plain lines, --json (mirrord's
# plain array) and MIRRORD_LS_RICH_OUTPUT=true (the IDE's rich object), -n,
# the kubeconfig context's namespace, and an RBAC error.
# Usage: ls.sh MIRRORD_TRACE
. "$(dirname "$0")/../cluster/tests/lib.sh"
MT=$1
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
unset MIRRORD_TARGET_NAMESPACE MIRRORD_KUBECONFIG MIRRORD_KUBE_CONTEXT MIRRORD_LS_RICH_OUTPUT
ADMIN="$CLUSTER/admin"
OUT=$(mktemp)
ERR=$(mktemp)
cleanup() {
	"$ADMIN" fault forbid '[]' >/dev/null 2>&1
	rm -f "$OUT" "$ERR" "$API_OUT"
}
trap cleanup EXIT
m() { T=30 in_ws "$MT" ls "$@" >"$OUT" 2>"$ERR"; }
has() { grep -qxF -- "$1" "$OUT" || fail "missing line '$1' in: $(cat "$OUT")"; }

LZ=$(pod_name lolzspace lolz-) || fail "no lolz pod in lolzspace"
LD=$(pod_name default lolz-) || fail "no lolz pod in default"

m -n lolzspace || fail "ls -n lolzspace: $(cat "$ERR")"
[ "$(head -1 "$OUT")" = targetless ] || fail "targetless is not first: $(cat "$OUT")"
has "pod/$LZ/container/main-container"
has "deployment/lolz"
has "statefulset/redis"
has "pod/redis-0/container/redis"
has "service/lolz"
grep -q "^replicaset/" "$OUT" && fail "ReplicaSets owned by Deployments listed: $(cat "$OUT")"

# Without -n: the kubeconfig context's namespace (default).
m || fail "ls: $(cat "$ERR")"
has "pod/$LD/container/main-container"
has "pod/$LD/container/sidecar"
has "deployment/meshed"
grep -q "container/istio-proxy" "$OUT" && fail "mesh sidecar listed: $(cat "$OUT")"

m -n lolzspace --json || fail "ls --json: $(cat "$ERR")"
/usr/bin/python3 - "$OUT" "$LZ" <<'PY' || fail "plain JSON: $(cat "$OUT")"
import json, sys
v = json.load(open(sys.argv[1]))
assert isinstance(v, list) and all(isinstance(s, str) for s in v), v
assert v[0] == "targetless"
for want in ("deployment/lolz", "statefulset/redis", "pod/%s/container/main-container" % sys.argv[2]):
    assert want in v, want
PY

MIRRORD_LS_RICH_OUTPUT=true m -n lolzspace --json || fail "rich: $(cat "$ERR")"
/usr/bin/python3 - "$OUT" <<'PY' || fail "rich JSON: $(cat "$OUT")"
import json, sys
v = json.load(open(sys.argv[1]))
assert set(v) == {"targets", "current_namespace", "namespaces"}, v.keys()
assert v["current_namespace"] == "lolzspace"
assert "default" in v["namespaces"] and "lolzspace" in v["namespaces"], v["namespaces"]
t = {x["path"]: x["available"] for x in v["targets"]}
assert all(set(x) == {"path", "available"} for x in v["targets"])
assert t["targetless"] is True and t["deployment/lolz"] is True, t
PY

# A pod that is not ready is listed, but not available.
ok_get() { [ "$(api GET "$1")" = 200 ] || fail "GET $1"; }
ok_get "/api/v1/namespaces/lolzspace/pods/$LZ"
RESTORE=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["status"]))' "$API_OUT")
"$ADMIN" pod-status lolzspace "$LZ" '{"phase":"Pending","containerStatuses":[{"name":"main-container","ready":false,"restartCount":0,"image":"x","imageID":"","state":{"waiting":{"reason":"ContainerCreating"}}}]}' >/dev/null \
	|| fail "admin pod-status"
m -n lolzspace; R=$?
"$ADMIN" pod-status lolzspace "$LZ" "$RESTORE" >/dev/null || fail "restore pod status"
[ $R = 0 ] || fail "ls with a pending pod: $(cat "$ERR")"
has "pod/$LZ/container/main-container (not ready)"

"$ADMIN" fault forbid '[["list","pods"]]' >/dev/null || fail "admin fault forbid"
m -n lolzspace && fail "ls succeeded without pods list"
grep -q "ls: cannot list pods in namespace lolzspace: forbidden (RBAC); the role needs pods list, see deploy/rbac.yaml$" "$ERR" \
	|| fail "403 message: $(cat "$ERR")"
echo "PASS"
