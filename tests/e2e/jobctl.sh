#!/bin/bash
# Ctrl-C and Ctrl-Z/fg at a terminal: an interactive bash on a
# pseudo-terminal (jobctl_pty.py) runs a job, first bare, then under
# mirrord-trace; the terminal's ^C and ^Z signal the whole foreground
# process group (supervisor and program alike), `fg` resumes the job. What
# the user sees must be the same both ways.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "the comparison with a bare run is part of this scenario"
[ -x "$PY" ] || skip "$PY is not installed (drives the pseudo-terminal)"
[ -x /bin/bash ] || skip "/bin/bash is needed as the interactive shell"

PTY=$E2E_DIR/jobctl_pty.py
want="ctrl-c: the job ended, status 130
ctrl-z: the shell says 'Stopped'
jobs: 'Stopped'
fg: the job continued in the foreground and read the terminal
fg: the job ended, status 5
jobs at the end: ''"

run in_ws "$PY" "$PTY" "" ""
expect_rc 0 "bare: the terminal session ran"
expect_out_eq "$want" "bare: Ctrl-C ends the job (130), Ctrl-Z stops it, fg resumes it"

# One agent per job (an agent serves one client).
start_agent
A1=$AGENT_ADDR
start_agent
A2=$AGENT_ADDR
run in_ws "$PY" "$PTY" "$MT --agent-addr $A1 --" "$MT --agent-addr $A2 --"
expect_rc 0 "under mirrord-trace: the terminal session ran"
expect_out_eq "$want" "under mirrord-trace: the user sees the same as bare"
expect_no_stopped_in_ws "nothing left stopped in the workstation"
expect_eq "" "$(leftover_in_ws)" "nothing left running in the workstation netns"
e2e_done
