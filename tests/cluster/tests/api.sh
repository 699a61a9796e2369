#!/bin/bash
# Wire-level checks of the fake API server (tests/api_test.py) from the workstation.
. "$(dirname "$0")/lib.sh"
T=120 in_ws /usr/bin/python3 "$TESTS/api_test.py"
