#!/bin/bash
# k8s/ against the fake API server: resolution of every demo workload, the
# error texts (404, 403 via the forbid fault, a Pending pod via pod-status),
# watch through 7-byte split writes, list, create and delete.
# Usage: cluster.sh K8SCTL
. "$(dirname "$0")/../cluster/tests/lib.sh"
K8SCTL=$1
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
ADMIN="$CLUSTER/admin"
OUT=$(mktemp)
ERR=$(mktemp)
cleanup() {
	"$ADMIN" fault forbid '[]' >/dev/null 2>&1
	"$ADMIN" fault split 0 >/dev/null 2>&1
	[ -n "${RESTORE:-}" ] && "$ADMIN" pod-status lolzspace "$LZ" "$RESTORE" >/dev/null 2>&1
	rm -f "$OUT" "$ERR" "$API_OUT"
}
trap cleanup EXIT

k() { T=30 in_ws "$K8SCTL" --kubeconfig "$KUBECONFIG" "$@" >"$OUT" 2>"$ERR"; }
ok() { k "$@" || fail "k8sctl $*: $(cat "$ERR")"; }
expect_err() { # expect_err MESSAGE ARGS...
	local want=$1; shift
	k "$@" && fail "k8sctl $* succeeded: $(cat "$OUT")"
	[ "$(cat "$ERR")" = "k8sctl: $want" ] || fail "k8sctl $*:
 got: $(cat "$ERR")
want: k8sctl: $want"
}
has() { grep -qF -- "$1" "$OUT" || fail "missing '$1' in: $(cat "$OUT")"; }

LZ=$(pod_name lolzspace lolz-) || fail "no lolz pod in lolzspace"
LD=$(pod_name default lolz-) || fail "no lolz pod in default"
cid() { /usr/bin/python3 -c 'import json, sys
for p in json.load(open(sys.argv[1])):
    if p["namespace"] == sys.argv[2] and p["name"] == sys.argv[3]:
        for c in p["containers"]:
            if c["name"] == sys.argv[4]: print(c["containerID"].split("://")[-1])' "$PODS_JSON" "$@"; }

# kubeconfig context namespace
ok ns; has default

# resolution
ok resolve deploy/lolz lolzspace
has "pod=$LZ namespace=lolzspace node=$NODE_NAME container=main-container runtime=containerd id=$(cid lolzspace "$LZ" main-container) ip=10.244."
ok resolve deploy/lolz default
has "namespace=default"; has "container=main-container"
grep -qF "picked 'main-container'" "$ERR" || fail "no note on the picked container: $(cat "$ERR")"
ok resolve "pod/$LD/container/sidecar" default
has "pod=$LD namespace=default"; has "container=sidecar runtime=containerd id=$(cid default "$LD" sidecar) "
ok resolve deploy/meshed default
has "container=app"
ok resolve statefulset/redis lolzspace
has "pod=redis-0 namespace=lolzspace"
ok resolve service/lolz default
has "namespace=default"
ok resolve pod/standalone default
has "pod=standalone"

# errors
expect_err "container 'foo' not found in pod default/$LD; containers: main-container, sidecar" \
	resolve "pod/$LD/container/foo" default
expect_err 'deployments.apps "nope" not found in namespace lolzspace; check the name and the namespace' \
	resolve deploy/nope lolzspace
k resolve deploy/lolz nonamespace && fail "missing namespace resolved"
grep -q 'not found' "$ERR" || fail "missing namespace: $(cat "$ERR")"

"$ADMIN" fault forbid '[["list","pods"]]' >/dev/null || fail "admin fault forbid"
expect_err "cannot list pods in namespace lolzspace: forbidden (RBAC); the role needs pods list, see deploy/rbac.yaml" \
	resolve deploy/lolz lolzspace
"$ADMIN" fault forbid '[]' >/dev/null

ok get "/api/v1/namespaces/lolzspace/pods/$LZ"
RESTORE=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["status"]))' "$OUT")
"$ADMIN" pod-status lolzspace "$LZ" '{"phase":"Pending","containerStatuses":[{"name":"main-container","ready":false,"restartCount":0,"image":"x","imageID":"","state":{"waiting":{"reason":"ContainerCreating"}}}]}' >/dev/null \
	|| fail "admin pod-status"
expect_err "pod lolzspace/$LZ is Pending (ContainerCreating)" resolve "pod/$LZ" lolzspace
expect_err "no pod of deployment lolzspace/lolz is ready to be targeted: pod lolzspace/$LZ is Pending (ContainerCreating)" \
	resolve deploy/lolz lolzspace
"$ADMIN" pod-status lolzspace "$LZ" "$RESTORE" >/dev/null || fail "restore pod status"
RESTORE=
ok resolve deploy/lolz lolzspace

# watch through 7-byte writes
"$ADMIN" fault split 7 >/dev/null || fail "admin fault split"
ok watch /api/v1/namespaces/lolzspace/pods metadata.name=redis-0 1 10
has "ADDED redis-0 Running"
"$ADMIN" fault split 0 >/dev/null

# list with a selector; create and delete a Job (Background)
ok list /api/v1/pods
[ "$(wc -l <"$OUT")" = "$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$PODS_JSON")" ] \
	|| fail "list /api/v1/pods: $(cat "$OUT")"
ok list /api/v1/namespaces/lolzspace/pods 'statefulset.kubernetes.io/pod-name in (redis-0)'
[ "$(cat "$OUT")" = redis-0 ] || fail "label list: $(cat "$OUT")"
ok create /apis/batch/v1/namespaces/lolzspace/jobs '{"apiVersion":"batch/v1","kind":"Job","metadata":{"generateName":"k8s-test-"},"spec":{"ttlSecondsAfterFinished":5,"backoffLimit":0,"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}'
JOB=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["name"])' "$OUT")
ok delete "/apis/batch/v1/namespaces/lolzspace/jobs/$JOB"
expect_err "jobs.batch \"$JOB\" not found in namespace lolzspace; check the name and the namespace" \
	get "/apis/batch/v1/namespaces/lolzspace/jobs/$JOB"
echo "PASS"
