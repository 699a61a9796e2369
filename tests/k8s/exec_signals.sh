#!/bin/bash
# Signals and `mirrord-trace exec` on Kubernetes: Ctrl-C (SIGINT) and
# SIGTERM while the agent starts cancel the wait at once and delete the
# Job; SIGINT after the program started goes to the program; after SIGKILL
# the agent notices its client is gone and exits after its communication
# timeout, and the Job's TTL removes the Job and its pod. Each case ends
# with no agent Job, pod or process left.
# Usage: exec_signals.sh MIRRORD_TRACE
. "$(dirname "$0")/exec_lib.sh"

none_left "before the tests"

# cancel_during_start SIG RC: the agent pod never leaves Pending (fault
# switch); the signal must end the run within a few seconds, not at
# agent.startup_timeout (60 s).
cancel_during_start() {
	local sig=$1 want=$2 pid mtpid t0 t1 rc
	admin fault pending '["mirrord-trace-agent"]'
	in_ws "$MT" exec -t deploy/lolz -n lolzspace -- true >"$OUT" 2>"$ERR" &
	pid=$!
	wait_until 30 grep -q "starting agent" "$ERR" || fail "$sig: no 'starting agent' progress: $(cat "$ERR")"
	mtpid=$(mt_pid "exec -t deploy/lolz -n lolzspace -- true") || fail "$sig: no mirrord-trace process"
	t0=$(date +%s%N)
	kill "-$sig" "$mtpid"
	wait "$pid"
	rc=$?
	t1=$(date +%s%N)
	[ "$rc" = "$want" ] || fail "$sig during start: rc=$rc (want $want), err=$(cat "$ERR")"
	# libcurl polls the cancel flag about once a second.
	[ $(((t1 - t0) / 1000000)) -lt 5000 ] ||
		fail "$sig during start: took $(((t1 - t0) / 1000000)) ms to stop"
	grep -q "interrupted by .* while the agent started; the agent was removed" "$ERR" ||
		fail "$sig during start: message: $(cat "$ERR")"
	admin fault pending '[]'
	none_left "after $sig during start"
}
cancel_during_start INT 130
cancel_during_start TERM 143

# --- SIGINT once the program runs: the program gets it (sleep dies of it)
start_ready "SIGINT run" 60
kill -INT "$MTPID"
wait "$PID"
rc=$?
[ "$rc" = 130 ] || fail "SIGINT run: rc=$rc (want 130), err=$(cat "$ERR")"
none_left "after SIGINT"

# --- SIGKILL: nothing of ours runs any more; the agent's communication
# timeout (10 s here) and the Job's TTL clean up.
start_ready "SIGKILL run" 300
SLEEPER=$(pgrep -P "$MTPID" -x sleep) || fail "SIGKILL run: no traced sleep"
kill -KILL "$MTPID"
wait "$PID"
# The traced program dies with its tracer (PTRACE_O_EXITKILL).
wait_until 5 sh -c "! kill -0 $SLEEPER 2>/dev/null" || fail "SIGKILL run: the program survived its tracer"
[ -n "$(agent_procs)" ] || fail "SIGKILL run: the agent was gone at once (it should wait for a reconnect)"
none_left "after SIGKILL" 40

echo "PASS"
