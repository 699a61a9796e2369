#!/bin/bash
# Trace mode through the real binary: `--trace`, MIRRORD_TRACE_LOG=trace and
# `--trace-stacks` log each intercepted syscall with its decision (local /
# remote / denied), its result and the time spent, one line each; stacks
# name frames by function and module, and by module and offset where a
# stripped library has no symbol for them.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "trace mode exists only under mirrord-trace"
require_cmd curl
require_programs go

# A trace line: [pid N] WHAT -> DECISION: RESULT (T ms)
L='^\[pid [0-9]+\] '
R=' \([0-9]+\.[0-9]+ ms\)$'
H4=${HTTP_IP//./\\.}

# expect_err_line ERE WHAT: a whole stderr line matches ERE (case matters).
expect_err_line() {
	if grep -qE -- "$1" <<<"$ERR"; then pass "$2"; else fail "$2" "a stderr line matching /$1/" "none"; fi
}

run traced --trace -- curl -sS "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "--trace: the program's output is unchanged"
expect_err_line "${L}connect\([0-9]+, $H4:$HTTP_PORT\) via agent -> remote: (0|-1 EINPROGRESS)$R" \
	"--trace: the TCP connect to the pod service is 'remote' with its result and time"
expect_err_line "${L}connect\([0-9]+, 127\.0\.0\.15[3-9]:53\) .* -> local: 0$R" \
	"--trace: the resolver's connect to the local DNS relay is 'local'"
expect_err_line "${L}connect\([0-9]+, $H4:$HTTP_PORT\) udp via agent -> remote: 0$R" \
	"--trace: the resolver's UDP address sorting connect is 'remote'"
expect_err_line "${L}getpeername\([0-9]+, $H4:$HTTP_PORT\) \(pod-side address\) -> emulated: 0$R" \
	"--trace: getpeername answered with the pod address is 'emulated'"
expect_err_line "${L}connect\([0-9]+, AF_UNIX\) not IP -> local: " \
	"--trace: a unix-socket connect (nscd) is 'local', named as such"

# (An assignment before a function call reaches the commands it runs.)
MIRRORD_TRACE_LOG=trace run traced curl -sS "http://$HTTP_IP:$CLOSED_PORT/"
expect_rc 7 "MIRRORD_TRACE_LOG=trace: curl to the closed port fails as in the pod"
expect_err_line "${L}connect\([0-9]+, $H4:$CLOSED_PORT\) via agent \(the pod answered ECONNREFUSED\) -> remote: -1 E(CONNREFUSED|INPROGRESS)$R" \
	"MIRRORD_TRACE_LOG=trace: the refusal names the pod's answer"

run traced --trace -- "$PY" -c 'import ctypes; print(ctypes.CDLL(None).syscall(425, 1, 0))'
expect_out_eq "-1" "--trace: io_uring_setup fails for the program"
expect_err_line "${L}io_uring_setup -> denied: -1 ENOSYS$R" "--trace: io_uring_setup shows as 'denied' with ENOSYS"

run traced -- curl -sS "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "without --trace: output unchanged"
if grep -qE "$L" <<<"$ERR"; then fail "without --trace: no trace lines" "no '[pid N]' line" "some"; else pass "without --trace: no trace lines"; fi

run traced --trace-stacks -- curl -sS "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "--trace-stacks: output unchanged"
# The TCP connect's block: its line, the disassembled site, then frames.
blk=$(awk -v re="${L}connect\\\\([0-9]+, $H4:$HTTP_PORT\\\\) via agent" '
	$0 ~ /^\[pid/ { on = ($0 ~ re) } on' <<<"$ERR")
expect_true "--trace-stacks: the connect line is followed by its syscall site" \
	grep -qE '^    site 0x[0-9a-f]+: syscall' <<<"$blk"
expect_true "--trace-stacks: the frame inside libc is named with its module" \
	grep -qE '^    #0 0x[0-9a-f]+ [A-Za-z_][A-Za-z0-9_]*\+0x[0-9a-f]+ \(libc\.so\.6\)$' <<<"$blk"
expect_true "--trace-stacks: curl's own frames (a stripped binary) show as module+offset" \
	grep -qE '^    #[0-9]+ 0x[0-9a-f]+ (curl|libcurl\.so\.4[.0-9]*)\+0x[0-9a-f]+$' <<<"$blk"

run traced --trace-stacks -- "$MT_PROG_DIR/go_client" http "$HTTP_SHORT_NAME" "$HTTP_PORT" / 1
expect_out_has "ok 1" "--trace-stacks: the static Go client works"
blk=$(awk -v re="${L}connect\\\\([0-9]+, $H4:$HTTP_PORT\\\\) via agent" '
	$0 ~ /^\[pid/ { on = ($0 ~ re) } on' <<<"$ERR")
expect_true "--trace-stacks: a static Go program's connect unwinds through net.(*netFD).connect" \
	grep -qE '^    (fp)?#[0-9]+ 0x[0-9a-f]+ net\.\(\*netFD\)\.connect\+0x[0-9a-f]+ \(go_client\)$' <<<"$blk"
e2e_done
