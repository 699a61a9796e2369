#!/bin/bash
# node: http.get (getaddrinfo on libuv's thread pool), c-ares DNS, and
# concurrent requests from one event loop.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_cmd node
N=(node "$PROGRAMS_SRC/node_client.js")

run traced "${N[@]}" get "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_rc 0 "node http.get by short name"
expect_out_eq "$HTTP_BODY" "node http.get body"
run traced "${N[@]}" get "http://$HTTP_NAME:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "node http.get body by FQDN"
run traced "${N[@]}" resolve4 "$HTTP_NAME"
expect_out_eq "$HTTP_IP" "node dns.resolve4 (c-ares) asks the pod's DNS"
run traced "${N[@]}" parallel "http://$HTTP_SHORT_NAME:$HTTP_PORT/" 20
expect_rc 0 "20 concurrent node requests"
expect_out_has "ok 20" "all 20 bodies are the pod's"
run traced "${N[@]}" get "http://$HTTP_SHORT_NAME:$CLOSED_PORT/"
expect_rc 1 "node http.get to the closed port fails"
expect_err_match 'ECONNREFUSED' "node reports ECONNREFUSED"
e2e_done
