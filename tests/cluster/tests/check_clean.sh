#!/bin/bash
# After tests/cluster/down: nothing of the cluster is left. check_clean.sh [SNAPSHOT]
# compares the host's links, addresses, routes and firewall rules with the
# snapshot fixture.sh took before up.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/common.sh"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

left=$(mtc_netns)
[ -z "$left" ] || bad "network namespaces left: $left"
ip -o link show | grep -E 'mtc' && bad "links named mtc* left in the host"
[ -e "$MTC_CGROUP_ROOT" ] && bad "cgroup $MTC_CGROUP_ROOT left"
[ -e "$MTC_DIR" ] && bad "state dir $MTC_DIR left"
procs=$(ps -eo pid=,args= | grep -E "tests/cluster/|$MTC_DIR|mtc-kubepods" | grep -vE "grep|check_clean|fixture.sh|ctest" || true)
[ -z "$procs" ] || bad "processes left: $procs"
for d in "$HERE/__pycache__" "$HERE/../pod/__pycache__"; do
	[ -e "$d" ] && bad "bytecode left in the source tree: $d"
done
if [ -n "${1:-}" ] && [ -f "$1" ]; then
	now=$(mktemp)
	host_state >"$now"
	if ! diff -u "$1" "$now"; then
		bad "the host's network state changed (diff above)"
	fi
	rm -f "$now"
fi
[ $fail = 0 ] && echo "ok: down left the machine as it was"
exit $fail
