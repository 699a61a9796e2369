#!/bin/bash
# ctest wrapper around tests/cluster/up and down (cluster.up / cluster.down).
#   fixture.sh up SNAPSHOT     snapshot the host's network state, then up
#   fixture.sh down SNAPSHOT   down, then check the machine is as it was
# An environment that cannot host the cluster is a skip (77), or a failure
# when MIRRORD_TRACE_MUST_WORK=1. MTC_KEEP=1 leaves the cluster up.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"

skip() {
	if [ "${MIRRORD_TRACE_MUST_WORK:-0}" = 1 ]; then
		echo "FAIL: cluster cannot run (MIRRORD_TRACE_MUST_WORK=1 forbids skipping): $*"
		exit 1
	fi
	echo "SKIP: cluster: $*"
	exit 77
}

case ${1:-} in
up)
	[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
	for t in ip nsenter unshare iptables-restore dnsmasq redis-server openssl curl /usr/bin/python3; do
		command -v "$t" >/dev/null 2>&1 || skip "'$t' is not installed (run scripts/deps)"
	done
	ip netns add mtc-probe-$$ 2>/dev/null || skip "cannot create network namespaces here"
	ip netns del mtc-probe-$$
	"$HERE/down" || exit 1
	[ -n "${2:-}" ] && host_state >"$2"
	# Bytecode is never ours to leave behind (check_clean.sh looks after down).
	rm -rf "$HERE/__pycache__" "$HERE/../pod/__pycache__"
	start=$(date +%s%N)
	"$HERE/up" "${MTC_SPEC:-$HERE/demo.json}" || exit 1
	ms=$((($(date +%s%N) - start) / 1000000))
	echo "up took $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s (limit ${MTC_UP_LIMIT_S:-30} s)"
	# Issue 4: up on a clean machine takes under 30 s.
	if [ "$ms" -gt $((${MTC_UP_LIMIT_S:-30} * 1000)) ]; then
		echo "FAIL: up took longer than ${MTC_UP_LIMIT_S:-30} s"
		"$HERE/down" >/dev/null 2>&1
		exit 1
	fi
	;;
down)
	[ "$(id -u)" = 0 ] || skip "needs root"
	if [ "${MTC_KEEP:-0}" = 1 ]; then
		echo "MTC_KEEP=1: leaving the cluster up (tests/cluster/down removes it)"
		exit 0
	fi
	"$HERE/down" || exit 1
	"$HERE/down" || { echo "FAIL: second down failed"; exit 1; }
	exec bash "$HERE/tests/check_clean.sh" "${2:-}"
	;;
*)
	echo "usage: $0 up|down [SNAPSHOT]" >&2
	exit 2
	;;
esac
