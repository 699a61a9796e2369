# Shared helpers of the cluster tests (sourced).
set -uo pipefail
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER=$(dirname "$TESTS")
. "$CLUSTER/common.sh"

fail() { echo "FAIL: $*"; exit 1; }
skip() {
	if [ "${MIRRORD_TRACE_MUST_WORK:-0}" = 1 ]; then
		echo "FAIL: cannot run (MIRRORD_TRACE_MUST_WORK=1 forbids skipping): $*"
		exit 1
	fi
	echo "SKIP: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root"
[ -f "$MTC_DIR/cluster.env" ] || fail "cluster is not up ($MTC_DIR/cluster.env missing; see cluster.up)"
. "$MTC_DIR/cluster.env"
export KUBECONFIG MIRRORD_TRACE_CLUSTER_DIR

# cluster_pgrep PATTERN: the pids of `pgrep -f PATTERN` that run in the
# cluster's pods (their cgroup is under mtc-kubepods): the same program
# elsewhere on the machine (another test's agent, a developer's) is not ours.
cluster_pgrep() {
	local p
	for p in $(pgrep -f -- "$1"); do
		grep -qs "/mtc-kubepods/" "/proc/$p/cgroup" && echo "$p"
	done
	return 0
}

# in_ws CMD...: run CMD in the workstation namespace.
in_ws() { timeout "${T:-30}" nsenter --net="$WORKSTATION_NETNS" -- "$@"; }

# pod_pid NS NAME [CONTAINER]: a container's pid from pods.json.
pod_pid() {
	/usr/bin/python3 -c 'import json, sys
ns, name = sys.argv[2], sys.argv[3]
c = sys.argv[4] if len(sys.argv) > 4 else None
for p in json.load(open(sys.argv[1])):
    if p["namespace"] == ns and p["name"] == name:
        for k in p["containers"]:
            if c is None or k["name"] == c:
                print(k["pid"]); sys.exit(0)
sys.exit(1)' "$PODS_JSON" "$@"
}

# pod_uid NS NAME: a pod's uid from pods.json.
pod_uid() {
	/usr/bin/python3 -c 'import json, sys
for p in json.load(open(sys.argv[1])):
    if p["namespace"] == sys.argv[2] and p["name"] == sys.argv[3]:
        print(p["uid"]); sys.exit(0)
sys.exit(1)' "$PODS_JSON" "$@"
}

# pod_name NS PREFIX: first pod whose name starts with PREFIX.
pod_name() {
	/usr/bin/python3 -c 'import json, sys
for p in json.load(open(sys.argv[1])):
    if p["namespace"] == sys.argv[2] and p["name"].startswith(sys.argv[3]):
        print(p["name"]); sys.exit(0)
sys.exit(1)' "$PODS_JSON" "$@"
}

# api METHOD PATH [BODY]: curl the API server as admin (token) from the
# workstation; prints "CODE" on the first line, then headers+body in $API_OUT.
API_OUT=$(mktemp)
trap 'rm -f "$API_OUT"' EXIT
api() {
	local m=$1 p=$2 body=${3:-}
	local args=(-sS -m 20 -o "$API_OUT" -D "$API_OUT.h" -w '%{http_code}' --cacert "$CA_CERT"
		-H "Authorization: Bearer $ADMIN_TOKEN" -X "$m")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	in_ws curl "${args[@]}" "$API_SERVER$p"
}

# wait_until SECONDS CMD...: retry CMD every 0.2 s.
wait_until() {
	local n=$(($1 * 5))
	shift
	for _ in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
