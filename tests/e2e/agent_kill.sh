#!/bin/bash
# The agent dies mid-stream: the program must see an error (not hang),
# mirrord-trace must exit non-zero with a clear message within a few seconds,
# and no process may be left stopped or running.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_cmd curl redis-cli
baseline && skip "nothing to compare natively"

# kill_agent_during NAME READY_REGEX CMD...: start CMD traced in the background,
# wait (<= 15 s) until its stdout matches READY_REGEX, SIGKILL the agent, and
# time how long mirrord-trace takes to exit (<= 15 s). Sets RC, OUT, ERR, DT.
kill_agent_during() {
	local name=$1 ready=$2 mt_pid i
	shift 2
	start_agent
	LAST_CMD="$*"
	ip netns exec "$WORKSTATION_NETNS" "$MT" --agent-addr "$AGENT_ADDR" -- "$@" \
		</dev/null >"$T/$name.out" 2>"$T/$name.err" &
	mt_pid=$!
	E2E_PIDS+=("$mt_pid")
	for i in $(seq 150); do
		grep -qE "$ready" "$T/$name.out" 2>/dev/null && break
		kill -0 "$mt_pid" 2>/dev/null || break
		sleep 0.1
	done
	OUT=$(cat "$T/$name.out") ERR=$(cat "$T/$name.err") RC=running
	if ! grep -qE "$ready" "$T/$name.out"; then
		fail "$name: stream started" "stdout matching /$ready/ within 15 s" "no match"
		return 1
	fi
	pass "$name: stream started through the agent"
	local t0
	t0=$(now_ms)
	kill -KILL "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null # reap it quietly (no "Killed" job notice)
	for i in $(seq 150); do
		kill -0 "$mt_pid" 2>/dev/null || break
		sleep 0.1
	done
	DT=$(($(now_ms) - t0))
	if kill -0 "$mt_pid" 2>/dev/null; then
		expect_no_stopped_in_ws "$name: (still running after 15 s) no stopped process"
		fail "$name: mirrord-trace exits after the agent dies" "exit within 15 s" "still running"
		return 1
	fi
	RC=0
	wait "$mt_pid" || RC=$?
	OUT=$(cat "$T/$name.out") ERR=$(cat "$T/$name.err")
	AGENT_PID="" AGENT_FRESH=0
}

# 1. A slow HTTP download (one line every 100 ms for 30 s).
if kill_agent_during curl 'tick 000[2-9]' \
	curl -sS -N "http://$HTTP_SHORT_NAME:$HTTP_PORT/slow?seconds=30"; then
	expect_rc_nonzero "curl: mirrord-trace exits non-zero"
	expect_true "curl: mirrord-trace exits within 5 s of the agent's death (took ${DT} ms)" test "$DT" -le 5000
	expect_err_match 'agent' "curl: mirrord-trace says the agent connection was lost"
	expect_err_match '^curl: \([0-9]+\)' "curl itself saw an error"
	expect_true "curl: the download is incomplete" test "$(printf '%s\n' "$OUT" | grep -c tick)" -lt 300
fi
expect_no_stopped_in_ws "curl: no process left stopped"
sleep 1
expect_eq "" "$(leftover_in_ws)" "curl: no process left in the workstation netns"

# 2. A redis-cli SUBSCRIBE that waits for messages forever.
CH=mt-e2e-$$-$RANDOM
if kill_agent_during redis '^subscribe$' redis-cli -h "$REDIS_SHORT_NAME" -p "$REDIS_PORT" SUBSCRIBE "$CH"; then
	expect_rc_nonzero "redis-cli: mirrord-trace exits non-zero"
	expect_true "redis-cli: mirrord-trace exits within 5 s of the agent's death (took ${DT} ms)" test "$DT" -le 5000
	expect_err_match 'agent' "redis-cli: mirrord-trace says the agent connection was lost"
fi
expect_no_stopped_in_ws "redis-cli: no process left stopped"
sleep 1
expect_eq "" "$(leftover_in_ws)" "redis-cli: no process left in the workstation netns"
e2e_done
