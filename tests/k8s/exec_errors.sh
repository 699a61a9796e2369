#!/bin/bash
# Every way `mirrord-trace exec` on Kubernetes can fail says what failed and
# what to do, in one line, exits non-zero, and leaves no agent Job, pod or
# process: RBAC denials, a missing namespace, a Pending pod, a pod with no
# ready container, a wrong container name, API server errors and timeouts,
# an agent image that cannot be pulled, an agent that never starts.
# Usage: exec_errors.sh MIRRORD_TRACE
. "$(dirname "$0")/exec_lib.sh"

# expect_fail WHAT REGEX ARGS...: mirrord-trace exec ARGS fails (not 0, not
# the program's own code), stderr matches REGEX, nothing is left behind.
expect_fail() {
	local what=$1 re=$2 rc
	shift 2
	mt "$@"
	rc=$?
	[ "$rc" != 0 ] || fail "$what: succeeded; err=$(cat "$ERR")"
	[ "$rc" != 124 ] || fail "$what: hung (timeout)"
	grep -qE -- "$re" "$ERR" || fail "$what: stderr does not match /$re/: $(cat "$ERR")"
	grep -q "Traceback\|Segmentation\|AddressSanitizer\|core dumped" "$ERR" && fail "$what: crashed: $(cat "$ERR")"
	echo "ok: $what: $(tail -n 1 "$ERR")"
	# Faults would hit our own checks too: each case sets its own.
	admin reset
	none_left "after: $what"
}

none_left "before the tests"
POD=$(pod_name lolzspace lolz-) || fail "no lolz pod in lolzspace"

# --- RBAC: each verb the run needs, denied in turn
admin fault forbid '[["create","jobs"]]'
expect_fail "create jobs forbidden" \
	"cannot create jobs in namespace default: forbidden \(RBAC\).*batch/jobs create.*deploy/rbac.yaml" \
	-t deploy/lolz -n lolzspace -- true
admin fault forbid '[["get","deployments"]]'
expect_fail "get deployments forbidden" "cannot get deployments.* in namespace lolzspace: forbidden \(RBAC\).*deploy/rbac.yaml" \
	-t deploy/lolz -n lolzspace -- true
admin fault forbid '[["get","pods/portforward"],["create","pods/portforward"]]'
expect_fail "port-forward forbidden" "port-forward.*forbidden \(RBAC\).*pods/portforward" \
	-t deploy/lolz -n lolzspace -- true

# --- names that do not exist
expect_fail "missing namespace" 'namespace.*"?nosuchns"? not found|nosuchns.*not found' \
	-t deploy/lolz -n nosuchns -- true
expect_fail "missing deployment" 'deployment.*"?nosuch"? not found|nosuch.*not found' \
	-t deploy/nosuch -n lolzspace -- true
expect_fail "wrong container" "container 'nope' not found in pod lolzspace/$POD; containers: main-container" \
	-t "pod/$POD/container/nope" -n lolzspace -- true

# --- pod states (the pod's real status is put back afterwards)
ORIG=$("$ADMIN" raw "{\"op\": \"get\", \"resource\": \"pods\", \"namespace\": \"lolzspace\", \"name\": \"$POD\"}" |
	/usr/bin/python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["object"]["status"]))') ||
	fail "cannot read the status of $POD"
admin pod-status lolzspace "$POD" '{"phase": "Pending"}'
expect_fail "pending pod" "pod lolzspace/$POD is Pending" -t "pod/$POD" -n lolzspace -- true
admin pod-status lolzspace "$POD" '{"phase": "Running", "containerStatuses": [{"name": "main-container", "ready": false, "restartCount": 0, "image": "mt/http-server", "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}'
expect_fail "no ready container" "pod lolzspace/$POD.*not ready|no ready container|container main-container.*not ready" \
	-t "pod/$POD" -n lolzspace -- true
expect_fail "deployment without an eligible pod" "no .*pod|not ready|none.*eligible" \
	-t deploy/lolz -n lolzspace -- true
admin pod-status lolzspace "$POD" "$ORIG"

# --- API server errors and timeouts
admin fault errors '[{"verb": "list", "resource": "pods", "code": 500}]'
expect_fail "API 500" "[Ii]nternal error|InternalError|500" -t deploy/lolz -n lolzspace -- true
admin fault errors '[{"verb": "get", "resource": "deployments", "code": "timeout", "seconds": 2}]'
expect_fail "API 504" "[Tt]imeout|504" -t deploy/lolz -n lolzspace -- true

# --- the agent itself
admin fault errimagepull '["mirrord-trace-agent"]'
expect_fail "agent image pull" 'agent container failed to pull image ".*mirrord-trace-agent.*" \(ErrImagePull\)' \
	-t deploy/lolz -n lolzspace -- true
admin fault pending '["mirrord-trace-agent"]'
expect_fail "agent startup timeout" \
	"timeout waiting for the agent to be ready \(3 s, agent.startup_timeout\): pod lolzspace/mirrord-trace-agent-[a-z0-9]+-[a-z0-9]+ is Pending \(ContainerCreating\)" \
	--agent-startup-timeout 3 -a lolzspace -t deploy/lolz -n lolzspace -- true

# --- Pod Security: an agent namespace that enforces "baseline" refuses the
# agent's pod (hostPID, capabilities); the Job's FailedCreate event says so
# long before agent.startup_timeout.
expect_fail "Pod Security" \
	"the agent Job psa-baseline/mirrord-trace-agent-[a-z0-9]+ cannot create its pod: .*violates PodSecurity \"baseline:latest\".*hostPID.*pod-security.kubernetes.io/enforce=privileged" \
	-a psa-baseline -t deploy/lolz -n lolzspace -- true

# --- the kubeconfig
KC_BAD=$(mktemp)
EXTRA_FILES="$KC_BAD"
printf 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\ncurrent-context: nope\n' >"$KC_BAD"
KUBECONFIG="$KC_BAD" expect_fail "kubeconfig without the context" 'context.*nope' -t deploy/lolz -n lolzspace -- true

echo "PASS"
