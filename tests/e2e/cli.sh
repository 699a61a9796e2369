#!/bin/bash
# The command line and the agent link, as a user meets them: usage errors,
# an unreachable or garbage agent, exit statuses passed through, both command
# forms, and the agent's readiness line and exit after its client leaves.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "nothing to compare natively"

# expect_one_line WHAT: stderr is exactly one non-empty line.
expect_one_line() {
	local n
	n=$(printf '%s' "$ERR" | grep -c .)
	if [ "$n" = 1 ]; then pass "$1"; else fail "$1" "one line on stderr" "$n lines"; fi
}
ran_not() { [ ! -e "$1" ]; }

run in_ws "$MT"
expect_rc_nonzero "no program"
expect_one_line "no program: one line"
run in_ws "$MT" --agent-addr 127.0.0.1:1
expect_rc_nonzero "--agent-addr but no program"
expect_one_line "--agent-addr but no program: one line"
run in_ws "$MT" --no-such-flag-mt -- touch "$T/ran1"
expect_rc_nonzero "unknown flag"
expect_one_line "unknown flag: one line"
expect_err_match 'no-such-flag-mt' "unknown flag: the message names the flag"
expect_true "unknown flag: the program did not run" ran_not "$T/ran1"
run in_ws "$MT" --agent-addr nonsense -- touch "$T/ran2"
expect_rc_nonzero "--agent-addr nonsense"
expect_one_line "--agent-addr nonsense: one line"
expect_err_match "nonsense" "--agent-addr nonsense: the message quotes the address"
expect_true "--agent-addr nonsense: the program did not run" ran_not "$T/ran2"
# Port 1 on the workstation's loopback: nothing listens there.
run in_ws "$MT" --agent-addr 127.0.0.1:1 -- touch "$T/ran3"
expect_rc_nonzero "no agent at the address"
expect_err_match 'agent|connect|refused' "no agent: the message says so"
expect_true "no agent: the program did not run" ran_not "$T/ran3"

# A program that does not exist: 127 as a shell says, one line naming it,
# before any agent is contacted (port 1: nothing listens there).
run in_ws "$MT" --agent-addr 127.0.0.1:1 -- no-such-program-mt
expect_rc 127 "missing program"
expect_one_line "missing program: one line"
expect_err_match '"no-such-program-mt": program not found in PATH' "missing program: the message names it and says where it looked"
run in_ws "$MT" --agent-addr 127.0.0.1:1 -- "$T/no/such/prog"
expect_rc 127 "missing program by path"
expect_one_line "missing program by path: one line"
expect_err_match "\"$T/no/such/prog\": no such file" "missing program by path: the message quotes the path"
# Options that conflict: include and exclude of the environment, in either
# order and through a variable; the program never runs.
run in_ws "$MT" -s A -x B --agent-addr 127.0.0.1:1 -- touch "$T/ran5"
expect_rc 2 "-s A -x B"
expect_one_line "-s A -x B: one line"
expect_err_match 'include and exclude cannot be used together.*keep one of them' "-s A -x B: the message names the conflict and the fix"
expect_true "-s A -x B: the program did not run" ran_not "$T/ran5"
run in_ws env MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE=B "$MT" -s A --agent-addr 127.0.0.1:1 -- touch "$T/ran6"
expect_rc 2 "-s A with MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE=B"
expect_one_line "-s A with an exclude variable: one line"
expect_err_match 'include and exclude cannot be used together' "-s A with an exclude variable: the message names the conflict"
expect_true "-s A with an exclude variable: the program did not run" ran_not "$T/ran6"

# A peer that speaks something else: it answers every connection with junk.
# Bounded: it serves at most 3 connections and lives at most 20 s. (A simple
# command, not the in_ws function, so that $! is the process to kill.)
timeout -k 2 25 ip netns exec "$WORKSTATION_NETNS" "$PY" -u -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
s.settimeout(20); end = time.time() + 20
for _ in range(3):
    try:
        c, _ = s.accept()
    except OSError:
        break
    c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" + bytes(range(256)) * 8)
    c.settimeout(max(0.1, min(3, end - time.time())))
    try:
        c.recv(4096)
    except OSError:
        pass
    c.close()
' >"$T/junk.port" 2>"$T/junk.err" &
JUNK_PID=$!
E2E_PIDS+=("$JUNK_PID")
for _ in $(seq 50); do [ -s "$T/junk.port" ] && break; sleep 0.1; done
JUNK_PORT=$(head -n 1 "$T/junk.port")
t0=$(now_ms)
run in_ws timeout -k 2 20 "$MT" --agent-addr "127.0.0.1:$JUNK_PORT" -- touch "$T/ran4"
dt=$(($(now_ms) - t0))
expect_rc_nonzero "garbage peer on the agent port"
expect_err_match 'handshake' "garbage peer: the message mentions the handshake"
expect_true "garbage peer: the program did not run" ran_not "$T/ran4"
expect_true "garbage peer: gave up within 10 s (took ${dt} ms)" test "$dt" -lt 10000
kill "$JUNK_PID" 2>/dev/null
wait "$JUNK_PID" 2>/dev/null

# Exit statuses and signals pass through.
run traced sh -c 'exit 3'
expect_rc 3 "exit status of the program"
run traced sh -c 'kill -TERM $$'
expect_rc 143 "death by SIGTERM is re-raised (128+15)"
run traced true
expect_rc 0 "true"

# Both command forms; and the agent protocol around them.
start_agent
expect_true "agent prints 'listening on 127.0.0.1:PORT' first" \
	grep -qE '^listening on 127\.0\.0\.1:[0-9]+$' <(head -n 1 "$AGENT_OUT")
expect_true "agent prints 'agent ready - version X'" grep -qE '^agent ready - version [0-9]' "$AGENT_OUT"
run in_ws timeout -k 5 "$MT_RUN_TIMEOUT" "$MT" exec --agent-addr "$AGENT_ADDR" -- curl -sS "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "'mirrord-trace exec --agent-addr A -- PROG'"
expect_true "the agent exits within 5 s after its client disconnects" agent_wait_exit 5
wait "$AGENT_PID" 2>/dev/null
arc=$?
expect_eq 0 "$arc" "the agent's exit status after a normal session"
AGENT_FRESH=0

start_agent
run in_ws timeout -k 5 "$MT_RUN_TIMEOUT" "$MT" --agent-addr "$AGENT_ADDR" curl -sS "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "short form without '--': 'mirrord-trace --agent-addr A PROG ARGS'"
agent_stop

run traced --trace -- true
expect_rc 0 "--trace runs the program"
expect_true "--trace writes diagnostics to stderr" test -n "$ERR"
expect_eq "" "$(leftover_in_ws)" "nothing left running in the workstation netns"
e2e_done
