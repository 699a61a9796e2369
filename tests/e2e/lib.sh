# shellcheck shell=bash
# tests/e2e/lib.sh: the library every end-to-end scenario sources.
#
#   bash tests/e2e/SCENARIO.sh BIN_DIR [PROGRAMS_DIR]
#
# BIN_DIR holds mirrord-trace and mirrord-trace-agent (ctest passes
# ${CMAKE_BINARY_DIR}/bin); PROGRAMS_DIR is where tests/programs/build.sh puts
# the static clients (default BIN_DIR/../tests/programs). The pod fixture must
# be up (tests/pod/up; ctest's e2e.pod_up does that); its pod.env is sourced.
#
# A scenario is a flat list of `run ...` followed by `expect_*` checks. A
# failed check prints what was expected and what came out, and the scenario
# goes on; e2e_done exits 1 if any check failed. `skip REASON` exits 77 (ctest
# SKIP_RETURN_CODE), or 1 when MIRRORD_TRACE_MUST_WORK=1.
#
# Knobs (environment): MT_RUN_TIMEOUT (s, per traced run, default 60),
# E2E_MT_FLAGS (extra flags for every mirrord-trace run, e.g. --trace),
# E2E_VERBOSE=1 (print every command's output, not only on failure),
# E2E_BASELINE=1 (native mode: `traced` runs the program directly inside the
# target container instead, with the pod's environment; no tracer needed. It
# checks the fixture and the scenario's expectations, not mirrord-trace).

set -uo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MT_SOURCE_DIR=$(cd "$E2E_DIR/../.." && pwd)
E2E_NAME=$(basename "$0" .sh)
MT_BIN_DIR=${1:-${MT_BIN_DIR:-$MT_SOURCE_DIR/build/bin}}
MT_PROG_DIR=${2:-${MT_PROG_DIR:-$MT_BIN_DIR/../tests/programs}}
MT=$MT_BIN_DIR/mirrord-trace
MT_AGENT=$MT_BIN_DIR/mirrord-trace-agent
MT_POD_DIR=${MT_POD_DIR:-/run/mirrord-trace-pod}
MT_RUN_TIMEOUT=${MT_RUN_TIMEOUT:-60}
PY=/usr/bin/python3
PROGRAMS_SRC=$MT_SOURCE_DIR/tests/programs

E2E_CHECKS=0
E2E_FAILS=0
AGENT_PID=""
AGENT_ADDR=""
AGENT_FRESH=0
AGENT_N=0
E2E_PIDS=() # every background process a scenario started, killed at exit
RC=0 OUT="" ERR="" LAST_CMD=""

T=$(mktemp -d "/tmp/mt-e2e-$E2E_NAME.XXXXXX")
# Every process this scenario starts inherits this marker (mirrord-trace keeps
# local variables), so leftovers can be told apart from other users' runs.
export MT_E2E_RUN="$E2E_NAME.$$"

# ours PID: PID carries this scenario's marker in its environment.
ours() { grep -qzx "MT_E2E_RUN=$MT_E2E_RUN" "/proc/$1/environ" 2>/dev/null; }

e2e_log() { printf '%s\n' "$*"; }

# ---- cleanup ----
e2e_cleanup() {
	local pid
	for pid in "${E2E_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null
		kill -CONT "$pid" 2>/dev/null
	done
	for _ in $(seq 30); do
		local any=0
		for pid in "${E2E_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && any=1; done
		[ $any = 0 ] && break
		sleep 0.1
	done
	for pid in "${E2E_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	rm -rf "$T"
}
trap e2e_cleanup EXIT

# ---- skipping ----
# skip REASON: the environment cannot run this scenario.
skip() {
	if [ "${MIRRORD_TRACE_MUST_WORK:-0}" = 1 ]; then
		e2e_log "FAIL: $E2E_NAME cannot run (MIRRORD_TRACE_MUST_WORK=1 forbids skipping): $*"
		exit 1
	fi
	e2e_log "SKIP: $E2E_NAME: $*"
	exit 77
}

require_root() { [ "$(id -u)" = 0 ] || skip "needs root (network namespaces, ptrace of other users' processes)"; }

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "'$c' is not installed (run scripts/deps)"
	done
}

# require_pod: the fixture is up; sources its pod.env.
require_pod() {
	require_root
	[ -f "$MT_POD_DIR/pod.env" ] || skip "pod fixture is not up ($MT_POD_DIR/pod.env missing; run tests/pod/up)"
	# shellcheck disable=SC1091
	. "$MT_POD_DIR/pod.env"
	kill -0 "$TARGET_PID" 2>/dev/null || skip "pod fixture is broken: target pid $TARGET_PID is gone (rerun tests/pod/up)"
	[ -e "/run/netns/$WORKSTATION_NETNS" ] || skip "pod fixture is broken: netns $WORKSTATION_NETNS missing"
}

# baseline: true in native mode (E2E_BASELINE=1).
baseline() { [ "${E2E_BASELINE:-0}" = 1 ]; }

# require_tracer: mirrord-trace and the agent are built.
require_tracer() {
	baseline && return 0
	[ -x "$MT" ] || skip "$MT is not built"
	[ -x "$MT_AGENT" ] || skip "$MT_AGENT is not built"
}

# require_programs NAME...: build (or reuse) static clients (go rust cenv musl).
require_programs() {
	local rc=0
	"$PROGRAMS_SRC/build.sh" "$MT_PROG_DIR" "$@" >"$T/build.log" 2>&1 || rc=$?
	case $rc in
	0) ;;
	77) skip "a toolchain is missing: $(grep 'not found' "$T/build.log" | head -n 3 | tr '\n' ' ')" ;;
	*)
		e2e_log "FAIL: building test programs ($*) failed:"
		sed 's/^/  | /' "$T/build.log"
		exit 1
		;;
	esac
}

# ---- the agent ----
# start_agent [AGENT_ARGS...]: start mirrord-trace-agent inside the workstation
# netns (it listens on that loopback, then enters the target's netns itself),
# wait up to 10 s for its readiness line, export AGENT_ADDR. Default args:
# `targeted --pid $TARGET_PID`. The agent is killed at exit if still running.
start_agent() {
	local args=("$@") i port
	[ ${#args[@]} -gt 0 ] || args=(targeted --pid "$TARGET_PID")
	AGENT_N=$((AGENT_N + 1))
	AGENT_OUT=$T/agent.$AGENT_N.out
	AGENT_ERR=$T/agent.$AGENT_N.err
	# Runs started in the background (a subshell) all count from the
	# same AGENT_N: the previous agent's "agent ready" and port must not
	# be read as this one's before the background job truncates the file.
	rm -f "$AGENT_OUT" "$AGENT_ERR"
	ip netns exec "$WORKSTATION_NETNS" "$MT_AGENT" --listen 127.0.0.1:0 "${args[@]}" \
		</dev/null >"$AGENT_OUT" 2>"$AGENT_ERR" &
	AGENT_PID=$!
	E2E_PIDS+=("$AGENT_PID")
	for i in $(seq 100); do
		grep -q '^agent ready' "$AGENT_OUT" 2>/dev/null && break
		if ! kill -0 "$AGENT_PID" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if ! grep -q '^agent ready' "$AGENT_OUT" 2>/dev/null; then
		e2e_log "FAIL: agent did not print 'agent ready' within 10 s (args: ${args[*]})"
		e2e_log "  agent stdout:"
		sed 's/^/  | /' "$AGENT_OUT"
		e2e_log "  agent stderr:"
		tail -n 20 "$AGENT_ERR" | sed 's/^/  | /'
		exit 1
	fi
	port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$AGENT_OUT" | head -n 1)
	if [ -z "$port" ]; then
		e2e_log "FAIL: agent printed no 'listening on 127.0.0.1:PORT' line:"
		sed 's/^/  | /' "$AGENT_OUT"
		exit 1
	fi
	export AGENT_ADDR=127.0.0.1:$port
	AGENT_FRESH=1
}

# agent_wait_exit SECONDS: true if the current agent exits within SECONDS.
agent_wait_exit() {
	local i
	[ -n "$AGENT_PID" ] || return 0
	for i in $(seq $(($1 * 10))); do
		kill -0 "$AGENT_PID" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

agent_stop() {
	[ -n "$AGENT_PID" ] || return 0
	if ! agent_wait_exit 0; then
		kill -TERM "$AGENT_PID" 2>/dev/null
		agent_wait_exit 3 || kill -KILL "$AGENT_PID" 2>/dev/null
	fi
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=""
	AGENT_FRESH=0
}

# ---- running programs ----
# traced [MT_FLAGS... --] PROG [ARGS...]: run PROG under mirrord-trace in the
# workstation netns, bounded by MT_RUN_TIMEOUT. The agent serves one client,
# so a fresh one is started unless start_agent was just called. With flags,
# `--` separates them from the program: traced -x FOO -- env.
traced() {
	local flags=()
	if [ "${1:-}" != "${1#-}" ]; then
		while [ $# -gt 0 ] && [ "$1" != -- ]; do
			flags+=("$1")
			shift
		done
		shift # the --
	fi
	if baseline; then
		[ ${#flags[@]} = 0 ] || { echo "e2e: mirrord-trace flags make no sense natively" >&2; return 125; }
		in_pod "$@"
		return
	fi
	[ "$AGENT_FRESH" = 1 ] || { agent_stop; start_agent; }
	AGENT_FRESH=0
	local rc=0
	# shellcheck disable=SC2086
	timeout -k 5 "$MT_RUN_TIMEOUT" ip netns exec "$WORKSTATION_NETNS" \
		"$MT" --agent-addr "$AGENT_ADDR" ${E2E_MT_FLAGS:-} "${flags[@]}" -- "$@" || rc=$?
	[ $rc != 124 ] || echo "e2e: mirrord-trace did not finish within ${MT_RUN_TIMEOUT}s" >&2
	# The agent exits when its client is gone; give it a moment, then make sure.
	agent_wait_exit 3 || true
	agent_stop
	return $rc
}

# in_ws CMD...: run CMD in the workstation netns WITHOUT the tracer.
in_ws() { timeout -k 5 "$MT_RUN_TIMEOUT" ip netns exec "$WORKSTATION_NETNS" "$@"; }

# in_pod CMD...: run CMD natively inside the target container (its network,
# mount and UTS namespaces: the pod's /etc files), with the target's
# environment. The baseline that a traced run should match.
in_pod() {
	local env=()
	mapfile -d '' env <"/proc/$TARGET_PID/environ"
	timeout -k 5 "$MT_RUN_TIMEOUT" nsenter -t "$TARGET_PID" -n -m -u --wd=/ -- env -i "${env[@]}" "$@"
}

# run CMD...: run CMD, capture RC, OUT (stdout) and ERR (stderr).
run() {
	LAST_CMD="$*"
	RC=0
	"$@" >"$T/out" 2>"$T/err" </dev/null || RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	if [ "${E2E_VERBOSE:-0}" = 1 ]; then
		e2e_log "\$ $LAST_CMD  (exit $RC)"
		sed 's/^/  1| /' "$T/out"
		sed 's/^/  2| /' "$T/err"
	fi
}

# ---- checks ----
pass() {
	E2E_CHECKS=$((E2E_CHECKS + 1))
	e2e_log "ok: $1"
}

# fail WHAT EXPECTED ACTUAL
fail() {
	E2E_CHECKS=$((E2E_CHECKS + 1))
	E2E_FAILS=$((E2E_FAILS + 1))
	e2e_log "FAIL: $1"
	e2e_log "  command:  $LAST_CMD"
	e2e_log "  expected: $2"
	e2e_log "  actual:   $3"
	e2e_log "  exit:     $RC"
	e2e_log "  stdout:"
	printf '%s\n' "$OUT" | head -n 40 | sed 's/^/  | /'
	e2e_log "  stderr:"
	printf '%s\n' "$ERR" | tail -n 40 | sed 's/^/  | /'
	if [ -n "${AGENT_ERR:-}" ] && [ -s "$AGENT_ERR" ]; then
		e2e_log "  last agent stderr:"
		tail -n 15 "$AGENT_ERR" | sed 's/^/  | /'
	fi
}

# expect_rc N WHAT
expect_rc() {
	if [ "$RC" = "$1" ]; then pass "$2 (exit $1)"; else fail "$2" "exit status $1" "exit status $RC"; fi
}

# expect_rc_nonzero WHAT
expect_rc_nonzero() {
	if [ "$RC" != 0 ]; then pass "$1 (exit $RC)"; else fail "$1" "a non-zero exit status" "exit status 0"; fi
}

# expect_eq EXPECTED ACTUAL WHAT
expect_eq() {
	if [ "$1" = "$2" ]; then pass "$3"; else fail "$3" "'$1'" "'$2'"; fi
}

# expect_out_eq EXPECTED WHAT: stdout is exactly EXPECTED (trailing newlines aside)
expect_out_eq() { expect_eq "$1" "$OUT" "$2"; }

# expect_out_has NEEDLE WHAT / expect_out_lacks NEEDLE WHAT (whole line match)
expect_out_has() {
	if grep -qxF -- "$1" <<<"$OUT"; then pass "$2"; else fail "$2" "a line '$1' in stdout" "no such line"; fi
}
expect_out_lacks() {
	if grep -qxF -- "$1" <<<"$OUT"; then fail "$2" "no line '$1' in stdout" "it is there"; else pass "$2"; fi
}

# expect_out_match ERE WHAT: some stdout line matches the extended regex
expect_out_match() {
	if grep -qE -- "$1" <<<"$OUT"; then pass "$2"; else fail "$2" "stdout matching /$1/" "no match"; fi
}

# expect_err_match ERE WHAT: stderr matches (case-insensitive)
expect_err_match() {
	if grep -qiE -- "$1" <<<"$ERR"; then pass "$2"; else fail "$2" "stderr matching /$1/ (any case)" "no match"; fi
}

# expect_true WHAT CMD...: CMD succeeds
expect_true() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what" "'$*' to succeed" "it failed"; fi
}

# expect_no_stopped_in_ws WHAT: none of our processes in the workstation netns
# is stopped (state T or t).
expect_no_stopped_in_ws() {
	local pids stat="" pid
	pids=$(ip netns pids "$WORKSTATION_NETNS" 2>/dev/null | tr '\n' ' ')
	for pid in $pids; do
		ours "$pid" || continue
		stat+="$pid:$(ps -o stat= -p "$pid" 2>/dev/null | tr -d ' ')[$(ps -o comm= -p "$pid" 2>/dev/null)] "
	done
	if grep -qE ':[^ ]*[Tt]' <<<"$stat"; then
		fail "$1" "no stopped process in netns $WORKSTATION_NETNS" "$stat"
	else
		pass "$1"
	fi
}

# leftover_in_ws: processes this scenario started that are still in the
# workstation netns, except the ones it keeps on purpose (E2E_PIDS).
leftover_in_ws() {
	local pid mine
	for pid in $(ip netns pids "$WORKSTATION_NETNS" 2>/dev/null); do
		ours "$pid" || continue
		mine=0
		for p in "${E2E_PIDS[@]}"; do [ "$p" = "$pid" ] && mine=1; done
		[ $mine = 1 ] || printf '%s(%s) ' "$pid" "$(ps -o comm= -p "$pid" 2>/dev/null)"
	done
}

# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# e2e_done: summary; exit 1 if any check failed.
e2e_done() {
	if [ "$E2E_FAILS" -gt 0 ]; then
		e2e_log "$E2E_NAME: $E2E_FAILS of $E2E_CHECKS checks failed"
		exit 1
	fi
	e2e_log "$E2E_NAME: all $E2E_CHECKS checks passed"
	exit 0
}
