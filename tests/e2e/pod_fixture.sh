#!/bin/bash
# ctest wrapper around tests/pod/up and tests/pod/down (fixture tests
# e2e.pod_up / e2e.pod_down). An environment that cannot host the fixture
# (not root, tools missing) is a skip (77), or a failure when
# MIRRORD_TRACE_MUST_WORK=1. MT_POD_KEEP=1 leaves the fixture up after the run.
set -uo pipefail
POD=$(cd "$(dirname "$0")/../pod" && pwd)

skip() {
	if [ "${MIRRORD_TRACE_MUST_WORK:-0}" = 1 ]; then
		echo "FAIL: pod fixture cannot run (MIRRORD_TRACE_MUST_WORK=1 forbids skipping): $*"
		exit 1
	fi
	echo "SKIP: pod fixture: $*"
	exit 77
}

case ${1:-} in
up)
	[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
	for t in ip unshare nsenter dnsmasq redis-server redis-cli curl busybox /usr/bin/python3 node; do
		command -v "$t" >/dev/null 2>&1 || skip "'$t' is not installed (run scripts/deps)"
	done
	ip netns add mt-probe-$$ 2>/dev/null || skip "cannot create network namespaces here"
	ip netns del mt-probe-$$
	exec "$POD/up"
	;;
down)
	[ "$(id -u)" = 0 ] || skip "needs root"
	if [ "${MT_POD_KEEP:-0}" = 1 ]; then
		echo "MT_POD_KEEP=1: leaving the pod fixture up (tests/pod/down removes it)"
		exit 0
	fi
	exec "$POD/down"
	;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac
