#!/bin/bash
# WebSocket v4 port-forward checks (tests/portforward_ws_test.py) from the workstation.
. "$(dirname "$0")/lib.sh"
trap '"$CLUSTER/admin" reset >/dev/null 2>&1; rm -f "$API_OUT" "$API_OUT.h"' EXIT
T=120 in_ws /usr/bin/python3 "$TESTS/portforward_ws_test.py"
