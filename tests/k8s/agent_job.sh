#!/bin/bash
# The agent Job (k8s/agent_job.h) on the fake cluster: for deploy/lolz's pod
# in lolzspace the Job's pod runs on the target's node, its log has
# "agent ready", and after agent_job_delete no Job, pod or agent process is
# left. A targetless agent too. Fast failures with their messages:
# ErrImagePull (fault switch) and RBAC 403 on jobs create.
# Usage: agent_job.sh AGENTCTL AGENT_BIN
. "$(dirname "$0")/../cluster/tests/lib.sh"
AGENTCTL=$1
AGENT_BIN=$(readlink -f "$2")
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
ADMIN="$CLUSTER/admin"
OUT=$(mktemp)
ERR=$(mktemp)
JOBS=()
cleanup() {
	"$ADMIN" fault forbid '[]' >/dev/null 2>&1
	"$ADMIN" fault errimagepull '[]' >/dev/null 2>&1
	for j in "${JOBS[@]}"; do
		in_ws "$AGENTCTL" --kubeconfig "$KUBECONFIG" delete "${j%%/*}" "${j#*/}" >/dev/null 2>&1
	done
	rm -f "$OUT" "$ERR" "$API_OUT" "$API_OUT.h"
}
trap cleanup EXIT

# The kubelet maps the image mirrord-trace-agent:dev to the program up
# chose and recorded in cluster.env (MIRRORD_TRACE_AGENT_BIN). If it found
# none, run the build's agent through a command override instead.
if [ -n "${MIRRORD_TRACE_AGENT_BIN:-}" ]; then
	IMAGE=(mirrord-trace-agent:dev)
else
	echo "note: the cluster was brought up without an agent program; using image busybox with command $AGENT_BIN"
	IMAGE=(busybox "$AGENT_BIN")
fi

a() { T=${T:-60} in_ws "$AGENTCTL" --kubeconfig "$KUBECONFIG" "$@" >"$OUT" 2>"$ERR"; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$OUT"; }
agent_procs() { cluster_pgrep "--listen 127.0.0.1:$1 "; }

# The fake kubelet stops a deleted pod's processes by its cgroup, as a real
# one does, so the agent goes with its pod although it setns()'d into the
# target's network namespace. A short --communication-timeout is the
# safety net should that break.
export AGENTCTL_COMM_TIMEOUT=6

# gone NS JOB POD PORT: within 15 s the Job and pod are 404 and no agent
# process with that port is left.
gone() {
	local i
	for i in $(seq 75); do
		if [ "$(api GET "/apis/batch/v1/namespaces/$1/jobs/$2")" = 404 ] &&
			[ "$(api GET "/api/v1/namespaces/$1/pods/$3")" = 404 ]; then
			[ -z "$(agent_procs "$4")" ] && return 0
		fi
		sleep 0.2
	done
	fail "after delete: job $1/$2 $(api GET "/apis/batch/v1/namespaces/$1/jobs/$2"), pod $3 $(api GET "/api/v1/namespaces/$1/pods/$3"), agent pids: $(agent_procs "$4")"
}

# --- targeted: deploy/lolz in lolzspace
a start lolzspace deploy/lolz 30 "${IMAGE[@]}" || fail "start: $(cat "$ERR")"
JOB=$(field job) POD=$(field pod) PORT=$(field port)
JOBS+=("lolzspace/$JOB")
[[ $JOB == mirrord-trace-agent-?????????? ]] || fail "job name: $JOB"
[ "$PORT" -ge 30000 ] && [ "$PORT" -le 65535 ] || fail "port: $PORT"
grep -q "^progress created job lolzspace/$JOB" "$ERR" || fail "no 'created' progress: $(cat "$ERR")"
grep -q "^progress ready" "$ERR" || fail "no 'ready' progress: $(cat "$ERR")"
[ "$(api GET "/api/v1/namespaces/lolzspace/pods/$POD")" = 200 ] || fail "GET pod $POD"
/usr/bin/python3 - "$API_OUT" "$NODE_NAME" <<'PY' || fail "agent pod: $(cat "$API_OUT")"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["status"]["phase"] == "Running", p["status"]
assert p["spec"]["nodeName"] == sys.argv[2], p["spec"]
assert p["spec"]["hostPID"] is True
c = p["spec"]["containers"][0]
assert c["args"][-3:-1] == ["targeted", "--container-id"], c["args"]
PY
[ "$(api GET "/api/v1/namespaces/lolzspace/pods/$POD/log")" = 200 ] || fail "pods/log"
grep -q "agent ready" "$API_OUT" || fail "no 'agent ready' in the log: $(cat "$API_OUT")"
[ -n "$(agent_procs "$PORT")" ] || fail "no agent process for port $PORT"
a delete lolzspace "$JOB" || fail "delete: $(cat "$ERR")"
gone lolzspace "$JOB" "$POD" "$PORT"
# Deleting again is not an error (the TTL controller may have been first).
a delete lolzspace "$JOB" || fail "second delete: $(cat "$ERR")"

# --- targetless in default
a start default targetless 30 "${IMAGE[@]}" || fail "targetless start: $(cat "$ERR")"
JOB=$(field job) POD=$(field pod) PORT=$(field port)
JOBS+=("default/$JOB")
api GET "/api/v1/namespaces/default/pods/$POD" >/dev/null
/usr/bin/python3 - "$API_OUT" <<'PY' || fail "targetless pod: $(cat "$API_OUT")"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["status"]["phase"] == "Running"
assert "hostPID" not in p["spec"] and "nodeName" in p["spec"]  # the kubelet sets it
c = p["spec"]["containers"][0]
assert c["args"][-1] == "targetless", c["args"]
assert "capabilities" not in c.get("securityContext", {})
PY
a delete default "$JOB" || fail "targetless delete: $(cat "$ERR")"
gone default "$JOB" "$POD" "$PORT"

# --- ErrImagePull fails fast, and the Job is cleaned up
"$ADMIN" fault errimagepull '["mirrord-trace-agent", "busybox"]' >/dev/null || fail "admin fault errimagepull"
START=$(date +%s)
a start lolzspace deploy/lolz 30 "${IMAGE[@]}" && fail "start succeeded under ErrImagePull"
[ $(($(date +%s) - START)) -le 10 ] || fail "ErrImagePull took $(($(date +%s) - START)) s (not fast)"
grep -qE "^agentctl: agent container failed to pull image \"(mirrord-trace-agent:dev|busybox)\" \(ErrImagePull\): failed to pull and unpack image" "$ERR" \
	|| fail "ErrImagePull message: $(cat "$ERR")"
"$ADMIN" fault errimagepull '[]' >/dev/null
api GET "/apis/batch/v1/namespaces/lolzspace/jobs?labelSelector=app%3Dmirrord-trace" >/dev/null
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(len(d["items"]) != 0)' "$API_OUT" \
	|| fail "agent Job left behind after ErrImagePull: $(cat "$API_OUT")"

# --- RBAC: jobs create forbidden
"$ADMIN" fault forbid '[["create","jobs"]]' >/dev/null || fail "admin fault forbid"
a start lolzspace deploy/lolz 30 "${IMAGE[@]}" && fail "start succeeded without jobs create"
grep -qx "agentctl: cannot create jobs in namespace lolzspace: forbidden (RBAC); the role needs batch/jobs create, see deploy/rbac.yaml" "$ERR" \
	|| fail "403 message: $(cat "$ERR")"
"$ADMIN" fault forbid '[]' >/dev/null
echo "PASS"
