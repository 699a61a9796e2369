#!/bin/bash
# The agent's ways of finding its target: by pid (every other scenario), by
# container id (scanning /proc/*/cgroup, as on a real node: the fixture puts
# the target in a cgroup named by its id), and targetless.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
[ -n "${CONTAINER_ID:-}" ] || skip "the fixture has no CONTAINER_ID (old tests/pod/up?)"

start_agent targeted --container-id "$CONTAINER_ID"
run traced sh -c 'echo "$MT_POD_MARKER"'
expect_rc 0 "run with an agent that found its target by container id"
expect_out_eq "$POD_ENV_MARKER" "the target found by container id is the pod's process"
start_agent targeted --container-id "$CONTAINER_ID"
run traced curl -sS "http://$HTTP_NAME:$HTTP_PORT/peer"
expect_out_match "^($POD_IP|$POD_IP6)\$" "its connections leave from the pod"

# An id nobody has: one clear line, non-zero exit, before any client.
run timeout 10 ip netns exec "$WORKSTATION_NETNS" "$MT_AGENT" --listen 127.0.0.1:0 \
	targeted --container-id 0000000000000000000000000000000000000000000000000000000000000000
expect_rc_nonzero "an unknown container id is refused"
expect_err_match "container" "the message names the container"

# Targetless: the agent's own network and environment (here the
# workstation's loopback-only namespace, so remote connects fail).
start_agent targetless
run traced sh -c 'echo "${MT_POD_MARKER:-unset}"'
expect_out_eq unset "targetless: no pod environment"
start_agent targetless
run traced python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); t = socket.socket(); t.bind(('127.0.0.1', 0)); t.listen(); print('listening')"
expect_out_eq listening "targetless: listen() works locally"
expect_err_match "listens on this machine only: targetless runs never mirror or steal" \
	"targetless: a listen gets a notice"
expect_eq 1 "$(printf '%s\n' "$ERR" | grep -c 'listens on this machine only')" \
	"targetless: the notice comes once"
e2e_done
