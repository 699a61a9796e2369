#!/bin/bash
# `mirrord-trace exec` on Kubernetes targets (cli/k8s_run.c) on the fake
# cluster, from the workstation namespace with the cluster's kubeconfig:
# the agent Job starts on the target's node, the session runs over a
# port-forward, and after every run (normal exit, failing program, SIGTERM,
# bad target) no agent Job, pod or process is left.
# Usage: exec.sh MIRRORD_TRACE
. "$(dirname "$0")/../cluster/tests/lib.sh"
MT=$(readlink -f "$1")
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
OUT=$(mktemp)
ERR=$(mktemp)
cleanup() {
	rm -f "$OUT" "$ERR" "$API_OUT" "$API_OUT.h"
	# Jobs a failed check left behind.
	for ns in default lolzspace; do
		api GET "/apis/batch/v1/namespaces/$ns/jobs?labelSelector=app%3Dmirrord-trace" >/dev/null 2>&1
		for j in $(/usr/bin/python3 -c 'import json,sys; [print(i["metadata"]["name"]) for i in json.load(open(sys.argv[1])).get("items", [])]' "$API_OUT" 2>/dev/null); do
			api DELETE "/apis/batch/v1/namespaces/$ns/jobs/$j?propagationPolicy=Background" >/dev/null 2>&1
		done
	done
}
trap cleanup EXIT

# The kubelet runs $MIRRORD_TRACE_AGENT_BIN for the agent image; exec has
# no command override, so without it there is nothing to test.
APISERVER_PID=$(cat "$MTC_DIR/apiserver.pid" 2>/dev/null)
grep -qz '^MIRRORD_TRACE_AGENT_BIN=.' "/proc/$APISERVER_PID/environ" 2>/dev/null ||
	skip "the cluster was brought up without MIRRORD_TRACE_AGENT_BIN (run cluster.up from ctest)"

# The agent exits when its client leaves; a short communication timeout
# covers an agent whose client never came.
export MIRRORD_AGENT_COMMUNICATION_TIMEOUT=10

mt() { T=${T:-90} in_ws "$MT" exec "$@" >"$OUT" 2>"$ERR"; }
agent_procs() { pgrep -f -- "--listen 0.0.0.0:[0-9]+ " || true; }
items() { /usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$API_OUT"; }

# none_left WHAT: within 20 s no agent Job or pod in default/lolzspace and
# no agent process.
none_left() {
	local i jobs pods procs
	for i in $(seq 100); do
		jobs=0 pods=0
		for ns in default lolzspace; do
			[ "$(api GET "/apis/batch/v1/namespaces/$ns/jobs?labelSelector=app%3Dmirrord-trace")" = 200 ] || fail "$1: list jobs"
			jobs=$((jobs + $(items)))
			[ "$(api GET "/api/v1/namespaces/$ns/pods?labelSelector=app%3Dmirrord-trace")" = 200 ] || fail "$1: list pods"
			pods=$((pods + $(items)))
		done
		procs=$(agent_procs)
		[ "$jobs" = 0 ] && [ "$pods" = 0 ] && [ -z "$procs" ] && return 0
		sleep 0.2
	done
	fail "$1: left behind: $jobs job(s), $pods pod(s), agent pids: $procs"
}

none_left "before the tests"

# --- deploy/lolz in lolzspace: curl a cluster service by name
mt -t deploy/lolz -n lolzspace -- curl -sS -m 20 http://lolz.default.svc.cluster.local/ ||
	fail "exec deploy/lolz: rc=$? out=$(cat "$OUT") err=$(cat "$ERR")"
grep -q "hello from the pod" "$OUT" || fail "deploy/lolz curl body: $(cat "$OUT") err=$(cat "$ERR")"
grep -qE "^✓ target deploy(ment)?/lolz → pod lolz-[a-z0-9]+-[a-z0-9]+ \(main-container\) on $NODE_NAME$" "$ERR" ||
	fail "target progress line: $(cat "$ERR")"
grep -qE "^✓ agent ready \([0-9]+ ms\)$" "$ERR" || fail "agent ready line: $(cat "$ERR")"
none_left "after deploy/lolz"

# --- pod/<name>/container/main-container: the container's environment
POD=$(pod_name default lolz-) || fail "no lolz pod in default"
mt -t "pod/$POD/container/main-container" -- env || fail "exec env: rc=$? err=$(cat "$ERR")"
grep -qx "APP_MODE=lolz" "$OUT" || fail "env: no APP_MODE=lolz: $(cat "$OUT")"
grep -qx "DATABASE_URL=redis://redis.lolzspace.svc.cluster.local:6379" "$OUT" || fail "env: no DATABASE_URL"
grep -qx "KUBERNETES_SERVICE_HOST=10.96.0.1" "$OUT" || fail "env: no KUBERNETES_SERVICE_HOST"
grep -q "^✓ target pod/$POD/container/main-container → pod $POD (main-container) on $NODE_NAME$" "$ERR" ||
	fail "pod target progress line: $(cat "$ERR")"
none_left "after pod/.../container/main-container"

# --- targetless reaches services
mt -t targetless -- curl -sS -m 20 http://lolz.default.svc.cluster.local/ ||
	fail "exec targetless: rc=$? out=$(cat "$OUT") err=$(cat "$ERR")"
grep -q "hello from the pod" "$OUT" || fail "targetless curl body: $(cat "$OUT")"
none_left "after targetless"

# --- the program's exit code is exec's, and the Job still goes
mt -t deploy/lolz -n lolzspace -- sh -c 'exit 7'
rc=$?
[ "$rc" = 7 ] || fail "exit code: $rc (want 7), err=$(cat "$ERR")"
none_left "after a failing program"

# --- SIGTERM to mirrord-trace: passed to the program, then cleanup
in_ws "$MT" exec -t deploy/lolz -n lolzspace -- sleep 60 >"$OUT" 2>"$ERR" &
PID=$!
wait_until 60 grep -q "agent ready" "$ERR" || fail "SIGTERM run: agent not ready: $(cat "$ERR")"
sleep 0.5
# in_ws is timeout → nsenter → mirrord-trace: signal mirrord-trace itself.
MTPID=
for p in $(pgrep -f -- "exec -t deploy/lolz -n lolzspace -- sleep 60"); do
	[ "$(readlink -f "/proc/$p/exe")" = "$MT" ] && MTPID=$p
done
[ -n "$MTPID" ] || fail "SIGTERM run: no mirrord-trace process"
kill -TERM "$MTPID"
wait "$PID"
rc=$?
[ "$rc" = 143 ] || fail "SIGTERM run: rc=$rc (want 143), err=$(cat "$ERR")"
none_left "after SIGTERM"

# --- a wrong container name fails with its message and leaves no Job
mt -t "pod/$POD/container/nope" -- true && fail "wrong container succeeded"
grep -q "container 'nope' not found in pod" "$ERR" || fail "wrong container message: $(cat "$ERR")"
grep -q "main-container" "$ERR" || fail "wrong container message does not list the containers: $(cat "$ERR")"
none_left "after a wrong container name"

echo "PASS"
