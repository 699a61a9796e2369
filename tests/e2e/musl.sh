#!/bin/bash
# A static musl binary: musl's own resolver (search domains, ndots) and
# getpeername after connect.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_programs musl
M=$MT_PROG_DIR/musl_http

run traced "$M" "$HTTP_SHORT_NAME" "$HTTP_PORT" /
expect_rc 0 "musl client by short name"
expect_out_match "^peer ($HTTP_IP|$HTTP_IP6) $HTTP_PORT\$" "getpeername() is the service"
expect_out_has "$HTTP_BODY" "musl client body"
run traced "$M" "$POD_HOSTS_NAME" "$HTTP_PORT" /peer
expect_out_eq "$(printf 'peer %s %s\n%s' "$POD_HOSTS_IP" "$HTTP_PORT" "$POD_IP")" \
	"musl reads the pod's /etc/hosts; the service sees the pod"
run traced "$M" "$HTTP_SHORT_NAME" "$CLOSED_PORT" /
expect_rc 1 "musl client to the closed port fails"
expect_err_match 'ECONNREFUSED' "musl client sees ECONNREFUSED"
run traced "$M" "$UNRESOLVABLE_NAME" "$HTTP_PORT" /
expect_rc 1 "musl client: unknown name fails"
expect_err_match 'getaddrinfo' "musl client reports the resolver failure"
e2e_done
