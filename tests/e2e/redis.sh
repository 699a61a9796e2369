#!/bin/bash
# redis-cli (hiredis) against the pod's Redis: state written through the
# tracer is really in the pod's Redis and is read back from the pod natively.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_cmd redis-cli

KEY=mt-e2e-$$-$RANDOM
R=(redis-cli -h "$REDIS_SHORT_NAME" -p "$REDIS_PORT")
run traced "${R[@]}" PING
expect_rc 0 "redis-cli PING"
expect_out_eq PONG "PING by short name"
run traced "${R[@]}" SET "$KEY" "value-$KEY"
expect_out_eq OK "SET"
run traced redis-cli -h "$REDIS_NAME" -p "$REDIS_PORT" GET "$KEY"
expect_out_eq "value-$KEY" "GET by FQDN returns what SET stored"
run traced redis-cli -h "$REDIS_IP6" -p "$REDIS_PORT" GET "$KEY"
expect_out_eq "value-$KEY" "GET over IPv6"
run in_pod redis-cli -h "$REDIS_IP" -p "$REDIS_PORT" GET "$KEY"
expect_out_eq "value-$KEY" "the value is in the pod's Redis (read natively in the pod)"
run traced "${R[@]}" DEL "$KEY"
expect_out_eq 1 "DEL"
run traced redis-cli -h "$REDIS_SHORT_NAME" -p "$CLOSED_PORT" PING
expect_err_match 'refused' "redis-cli to a closed port reports connection refused"
e2e_done
