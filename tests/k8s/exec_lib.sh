# Shared by the `mirrord-trace exec` cluster tests (sourced after setting
# nothing; $1 of the test is the mirrord-trace binary).
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/tests/lib.sh"
MT=$(readlink -f "$1")
ADMIN="$CLUSTER/admin"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
OUT=$(mktemp)
ERR=$(mktemp)
# Where agent Jobs may go in these tests (checked for leftovers).
AGENT_NAMESPACES="default lolzspace psa-baseline"
cleanup() {
	"$ADMIN" reset >/dev/null 2>&1
	rm -f "$OUT" "$ERR" "$API_OUT" "$API_OUT.h" ${EXTRA_FILES:-}
	# Jobs a failed check left behind.
	for ns in $AGENT_NAMESPACES; do
		api GET "/apis/batch/v1/namespaces/$ns/jobs?labelSelector=app%3Dmirrord-trace" >/dev/null 2>&1
		for j in $(/usr/bin/python3 -c 'import json,sys; [print(i["metadata"]["name"]) for i in json.load(open(sys.argv[1])).get("items", [])]' "$API_OUT" 2>/dev/null); do
			api DELETE "/apis/batch/v1/namespaces/$ns/jobs/$j?propagationPolicy=Background" >/dev/null 2>&1
		done
	done
}
trap cleanup EXIT

# On a failure, the logs of the agents this test's last run named (the
# kubelet keeps a pod's directory after the pod is deleted): the agent's
# side of the story, which CI would otherwise lose with the cluster.
agent_logs() {
	local j f
	[ -s "${ERR:-}" ] || return 0
	for j in $(grep -o 'agent job [a-z0-9-]*/mirrord-trace-agent-[a-z0-9]*' "$ERR" | cut -d' ' -f3 | sort -u); do
		for f in "$MTC_DIR/pods/${j%%/*}_${j#*/}"-*/*.log; do
			[ -f "$f" ] || continue
			echo "--- agent log $f (last 120 lines)"
			tail -n 120 "$f"
		done
	done
}
fail() { echo "FAIL: $*"; agent_logs; exit 1; }

# The kubelet runs the program recorded in cluster.env for the agent image;
# exec has no command override, so without one there is nothing to test.
[ -n "${MIRRORD_TRACE_AGENT_BIN:-}" ] ||
	skip "the cluster was brought up without an agent program (cluster.env MIRRORD_TRACE_AGENT_BIN; run cluster.up from ctest)"

# An agent whose client is gone waits this long for a reconnect, then
# exits (the safety net after a SIGKILLed mirrord-trace).
export MIRRORD_AGENT_COMMUNICATION_TIMEOUT=${MIRRORD_AGENT_COMMUNICATION_TIMEOUT:-10}

mt() { T=${T:-90} in_ws "$MT" exec "$@" >"$OUT" 2>"$ERR"; }
agent_procs() { cluster_pgrep "--listen 127.0.0.1:[0-9]+ "; }
items() { /usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$API_OUT"; }

# none_left WHAT [SECONDS]: within SECONDS (default 20) no agent Job or pod
# in $AGENT_NAMESPACES and no agent process.
none_left() {
	local i jobs pods procs
	for i in $(seq $((${2:-20} * 5))); do
		jobs=0 pods=0
		for ns in $AGENT_NAMESPACES; do
			[ "$(api GET "/apis/batch/v1/namespaces/$ns/jobs?labelSelector=app%3Dmirrord-trace")" = 200 ] || fail "$1: list jobs"
			jobs=$((jobs + $(items)))
			[ "$(api GET "/api/v1/namespaces/$ns/pods?labelSelector=app%3Dmirrord-trace")" = 200 ] || fail "$1: list pods"
			pods=$((pods + $(items)))
		done
		procs=$(agent_procs)
		[ "$jobs" = 0 ] && [ "$pods" = 0 ] && [ -z "$procs" ] && return 0
		sleep 0.2
	done
	fail "$1: left behind: $jobs job(s), $pods pod(s), agent pids: $procs"
}

# mt_pid PATTERN: the mirrord-trace process whose command line matches
# (in_ws is timeout -> nsenter -> mirrord-trace: signal it directly).
mt_pid() {
	local p
	for p in $(pgrep -f -- "$1"); do
		[ "$(readlink -f "/proc/$p/exe")" = "$MT" ] && { echo "$p"; return 0; }
	done
	return 1
}

# start_ready WHAT SECONDS: start `exec -t deploy/lolz -n lolzspace -- sleep
# SECONDS` in the background and wait until the program runs; sets PID (the
# background job) and MTPID (mirrord-trace itself).
start_ready() {
	in_ws "$MT" exec -t deploy/lolz -n lolzspace -- sleep "$2" >"$OUT" 2>"$ERR" &
	PID=$!
	wait_until 60 grep -q "agent ready" "$ERR" || fail "$1: agent not ready: $(cat "$ERR")"
	sleep 0.5
	MTPID=$(mt_pid "exec -t deploy/lolz -n lolzspace -- sleep $2") || fail "$1: no mirrord-trace process"
}

# admin ARGS...: a test hook of the fake API server; fails the test if refused.
admin() { "$ADMIN" "$@" >/dev/null || fail "admin $*"; }
