#!/bin/bash
# The isolation the other scenarios rely on: the workstation netns has only
# loopback, so a program that runs there WITHOUT the tracer cannot reach the
# pod network (and nothing of the pod network exists in the host namespace).
# A traced program that reaches the pod can only have done so via the agent.
. "$(dirname "$0")/lib.sh"
require_pod
require_cmd curl

run ip -o addr show
expect_eq "" "$(printf '%s\n' "$OUT" | grep -E '10\.244\.|fd00:244:' || true)" \
	"the host namespace has no pod-network address"
run ip route show
expect_eq "" "$(printf '%s\n' "$OUT" | grep -E '10\.244\.' || true)" "the host namespace has no pod-network IPv4 route"
run ip -6 route show
expect_eq "" "$(printf '%s\n' "$OUT" | grep -E 'fd00:244:' || true)" "the host namespace has no pod-network IPv6 route"

run in_ws ip -o link show
expect_eq "lo" "$(printf '%s\n' "$OUT" | awk -F': ' '{print $2}' | tr '\n' ' ' | sed 's/ $//')" \
	"the workstation netns has only a loopback interface"
run in_ws ip route show
expect_out_eq "" "the workstation netns has no IPv4 route"

run in_ws curl -sS --max-time 5 "http://$HTTP_IP:$HTTP_PORT/"
expect_rc 7 "untraced curl to the service IP fails in the workstation netns"
run in_ws curl -sS --max-time 5 -g "http://[$HTTP_IP6]:$HTTP_PORT/"
expect_rc 7 "untraced curl to the service IPv6 fails in the workstation netns"
run in_ws "$PY" "$PROGRAMS_SRC/py_client.py" connect "$HTTP_IP" "$HTTP_PORT"
expect_out_eq ENETUNREACH "untraced connect() to the service IP gives ENETUNREACH"
run in_ws curl -sS --max-time 5 "http://$HTTP_NAME:$HTTP_PORT/"
expect_rc 6 "untraced curl cannot even resolve the service name"
e2e_done
