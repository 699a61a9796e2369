#!/bin/bash
# A static Go binary (CGO_ENABLED=0: Go's own resolver, raw syscalls from many
# runtime threads): parallel dials must not deadlock, DNS goes to the pod.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_cmd go
require_programs go
G=$MT_PROG_DIR/go_client

run traced "$G" http "$HTTP_SHORT_NAME" "$HTTP_PORT" / 32
expect_rc 0 "32 goroutines GET by short name"
expect_out_has "ok 32" "all 32 requests succeeded"
expect_eq 32 "$(printf '%s\n' "$OUT" | grep -cE "^[0-9]+ 200 $HTTP_BODY\$")" "32 bodies are the pod's"
# Each request waits 300 ms at the server, so 100 must be in flight at once.
run traced "$G" http "$HTTP_NAME" "$HTTP_PORT" "/delay?ms=300" 100
expect_rc 0 "100 goroutines with slow responses do not deadlock"
expect_out_has "ok 100" "all 100 slow requests succeeded"
run traced "$G" resolve "$HTTP_SHORT_NAME"
expect_out_eq "$(printf '%s\n%s' "$HTTP_IP" "$HTTP_IP6")" "Go resolver: A and AAAA through the search domains"
run traced "$G" resolve "$POD_HOSTS_NAME"
expect_out_eq "$POD_HOSTS_IP" "Go resolver reads the pod's /etc/hosts"
run traced "$G" resolve "$UNRESOLVABLE_NAME"
expect_rc 1 "Go resolver: unknown name fails"
run traced "$G" udp "$UDP_ECHO_IP" "$UDP_ECHO_PORT" hello-go
expect_out_eq "reply hello-go from $UDP_ECHO_IP:$UDP_ECHO_PORT" "Go connected UDP echo"
run traced "$G" udp "$UDP_ECHO_SHORT_NAME" "$UDP_ECHO_PORT" hello-go-name
expect_out_match '^reply hello-go-name from ' "Go UDP echo by name"
e2e_done
