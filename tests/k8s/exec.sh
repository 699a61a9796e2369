#!/bin/bash
# `mirrord-trace exec` on Kubernetes targets (cli/k8s_run.c) on the fake
# cluster, from the workstation namespace with the cluster's kubeconfig:
# the agent Job starts on the target's node, the session runs over a
# port-forward, and after every run (normal exit, failing program, SIGTERM,
# bad target) no agent Job, pod or process is left.
# Usage: exec.sh MIRRORD_TRACE
. "$(dirname "$0")/exec_lib.sh"

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
start_ready "SIGTERM run" 60
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
