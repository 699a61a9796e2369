#!/bin/bash
# A static Rust binary (std, glibc linked statically): parallel threads, each
# resolving through getaddrinfo and dialing.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_programs rust
R=$MT_PROG_DIR/rust_client

run traced "$R" "$HTTP_SHORT_NAME" "$HTTP_PORT" / 16
expect_rc 0 "16 threads GET by short name"
expect_out_has "ok 16" "all 16 requests succeeded"
expect_eq 16 "$(printf '%s\n' "$OUT" | grep -cE "^[0-9]+ 200 $HTTP_BODY\$")" "16 bodies are the pod's"
run traced "$R" "$HTTP_NAME" "$HTTP_PORT" /peer 4
expect_eq 4 "$(printf '%s\n' "$OUT" | grep -cE "^[0-9]+ 200 ($POD_IP|$POD_IP6)\$")" \
	"the service sees the pod as the client of every thread"
run traced "$R" "$HTTP_SHORT_NAME" "$CLOSED_PORT" / 2
expect_rc 1 "threads dialing the closed port fail"
expect_out_match 'refused' "Rust reports connection refused"
e2e_done
