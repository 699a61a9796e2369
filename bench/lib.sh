# shellcheck shell=bash
# bench/lib.sh: what every benchmark script sources. See bench/README.md.
#
# Knobs (environment):
#   MT_BIN_DIR      mirrord-trace and mirrord-trace-agent (default build-bench/bin)
#   MT_POD_DIR, MT_POD_NETNS, MT_SVC_NETNS, MT_WS_NETNS
#                   the pod fixture to use (default /run/mt-bench, bpod, bsvc, bws).
#                   If it is not up, the script brings it up and takes it down at exit.
#   BENCH_REPS      repetitions per configuration (default 5; median reported)
#   BENCH_TIMEOUT   seconds, per single run (default 120)
#   BENCH_SRV_PORT  port of bench/srv in the service pod (default 8080)
#   BENCH_SOCKS_PORT port of microsocks on the pod's loopback (default 1080)
#
# Every process started here is recorded and killed at exit; every run is
# bounded by BENCH_TIMEOUT. Nothing is written outside a temporary directory.

set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MT_SOURCE_DIR=$(cd "$BENCH_DIR/.." && pwd)
BENCH_NAME=$(basename "$0" .sh)
MT_BIN_DIR=${MT_BIN_DIR:-$MT_SOURCE_DIR/build-bench/bin}
MT=$MT_BIN_DIR/mirrord-trace
MT_AGENT=$MT_BIN_DIR/mirrord-trace-agent
export MT_POD_DIR=${MT_POD_DIR:-/run/mt-bench}
export MT_POD_NETNS=${MT_POD_NETNS:-bpod}
export MT_SVC_NETNS=${MT_SVC_NETNS:-bsvc}
export MT_WS_NETNS=${MT_WS_NETNS:-bws}
BENCH_REPS=${BENCH_REPS:-5}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-120}
BENCH_SRV_PORT=${BENCH_SRV_PORT:-8080}
BENCH_SOCKS_PORT=${BENCH_SOCKS_PORT:-1080}

BT=$(mktemp -d "/tmp/mt-bench-$BENCH_NAME.XXXXXX")
BENCH_PIDS=()
BENCH_OWN_POD=0
AGENT_PID="" AGENT_PORT=""
RUN_OUT="" RUN_RC=0

bench_log() { printf '%s\n' "$*"; }
bench_die() {
	printf '%s: %s\n' "$BENCH_NAME" "$*" >&2
	exit 1
}

# ---- cleanup ----
bench_kill() { # PID: TERM (plus CONT), wait up to 3 s, then KILL
	local pid=$1 _
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	kill -CONT "$pid" 2>/dev/null
	for _ in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

bench_cleanup() {
	local pid
	for pid in "${BENCH_PIDS[@]}"; do bench_kill "$pid"; done
	if [ "$BENCH_OWN_POD" = 1 ]; then
		timeout -k 5 30 "$MT_SOURCE_DIR/tests/pod/down" >/dev/null 2>&1
	fi
	rm -rf "$BT"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ----
bench_require() {
	[ "$(id -u)" = 0 ] || bench_die "needs root (network namespaces, nsenter, ptrace)"
	[ -x "$MT" ] && [ -x "$MT_AGENT" ] ||
		bench_die "$MT_BIN_DIR has no mirrord-trace / mirrord-trace-agent; build with:
  cmake -S $MT_SOURCE_DIR -B $MT_SOURCE_DIR/build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build $MT_SOURCE_DIR/build-bench -j2"
	command -v gcc >/dev/null || bench_die "gcc is not installed"
}

# bench_build NAME...: gcc -O2 bench/NAME.c into $BT/NAME.
bench_build() {
	local p
	for p in "$@"; do
		gcc -O2 -Wall -o "$BT/$p" "$BENCH_DIR/$p.c" || bench_die "building $p.c failed"
	done
}

# bench_pod: use the fixture if it is up, else bring it up (and down at exit).
bench_pod() {
	if ! { [ -f "$MT_POD_DIR/pod.env" ] && . "$MT_POD_DIR/pod.env" && kill -0 "$TARGET_PID" 2>/dev/null; }; then
		timeout -k 5 60 "$MT_SOURCE_DIR/tests/pod/up" >"$BT/pod-up.log" 2>&1 || {
			cat "$BT/pod-up.log" >&2
			bench_die "tests/pod/up failed"
		}
		BENCH_OWN_POD=1
	fi
	# shellcheck disable=SC1091
	. "$MT_POD_DIR/pod.env"
	mapfile -d '' POD_ENV <"/proc/$TARGET_PID/environ"
}

# bench_bg OUTFILE CMD...: start CMD in the background, record its pid in BG_PID.
bench_bg() {
	local out=$1
	shift
	"$@" </dev/null >"$out" 2>&1 &
	BG_PID=$!
	BENCH_PIDS+=("$BG_PID")
}

# bench_wait_line FILE REGEX SECONDS: until a line of FILE matches.
bench_wait_line() {
	local _
	for _ in $(seq $(($3 * 10))); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# bench_server: bench/srv on [::]:BENCH_SRV_PORT in the service pod's netns
# (so it answers on HTTP_IP and HTTP_IP6 too). Must be built (bench_build srv).
bench_server() {
	bench_bg "$BT/srv.log" ip netns exec "$SVC_NETNS" "$BT/srv" "$BENCH_SRV_PORT"
	# shellcheck disable=SC2034 # for the scripts
	SRV_PID=$BG_PID
	bench_wait_line "$BT/srv.log" '^listening' 5 || bench_die "bench/srv did not start: $(cat "$BT/srv.log")"
}

# bench_socks: microsocks on the pod's 127.0.0.1:BENCH_SOCKS_PORT, and a
# proxychains4 config for it ($BT/pc.conf; $BT/pc-dns.conf adds proxy_dns).
bench_socks() {
	command -v microsocks >/dev/null && command -v proxychains4 >/dev/null ||
		bench_die "microsocks and proxychains4 are needed (scripts/deps)"
	bench_bg "$BT/socks.log" nsenter -t "$TARGET_PID" -n -m -u -- microsocks -i 127.0.0.1 -p "$BENCH_SOCKS_PORT"
	# shellcheck disable=SC2034 # used by memory.sh
	SOCKS_PID=$BG_PID
	local _
	for _ in $(seq 50); do
		nsenter -t "$TARGET_PID" -n -- ss -Hltn "sport = :$BENCH_SOCKS_PORT" 2>/dev/null | grep . >/dev/null && break
		sleep 0.1
	done
	printf 'strict_chain\nquiet_mode\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\nsocks5 127.0.0.1 %s\n' \
		"$BENCH_SOCKS_PORT" >"$BT/pc.conf"
	{ printf 'proxy_dns\nremote_dns_subnet 224\n'; cat "$BT/pc.conf"; } >"$BT/pc-dns.conf"
}

# ---- the three ways to run a program ----
# Each sets RUN_OUT (stdout) and RUN_RC; stderr goes to $BT/last.err.

# run_native CMD...: inside the target container (pod netns, mounts, UTS) with
# the pod's environment: the baseline a traced run should match.
run_native() {
	RUN_RC=0
	RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" nsenter -t "$TARGET_PID" -n -m -u --wd=/ -- \
		env -i "${POD_ENV[@]}" "$@" 2>"$BT/last.err" </dev/null) || RUN_RC=$?
}

# run_ws CMD...: in the workstation netns, no tracer (for loops: no network).
run_ws() {
	RUN_RC=0
	RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" ip netns exec "$WORKSTATION_NETNS" "$@" 2>"$BT/last.err" </dev/null) || RUN_RC=$?
}

# run_proxy [CONF] -- CMD...: under proxychains4 in the target container,
# through microsocks on the pod's loopback (bench_socks first).
run_proxy() {
	local conf=$BT/pc.conf
	if [ "$1" != -- ]; then conf=$1; shift; fi
	shift
	RUN_RC=0
	RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" nsenter -t "$TARGET_PID" -n -m -u --wd=/ -- \
		env -i "${POD_ENV[@]}" proxychains4 -q -f "$conf" "$@" 2>"$BT/last.err" </dev/null) || RUN_RC=$?
}

# agent_start: a fresh agent in the workstation netns (it serves one client).
agent_start() {
	# The previous agent's "agent ready" must not be read as this one's: the
	# background job truncates the file only once it runs.
	rm -f "$BT/agent.out"
	bench_bg "$BT/agent.out" ip netns exec "$WORKSTATION_NETNS" "$MT_AGENT" --listen 127.0.0.1:0 \
		targeted --pid "$TARGET_PID"
	AGENT_PID=$BG_PID # ip netns exec execs: this is the agent itself (checked below)
	bench_wait_line "$BT/agent.out" '^agent ready' 10 || bench_die "agent not ready: $(cat "$BT/agent.out")"
	AGENT_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$BT/agent.out" | head -n 1)
	[ -n "$AGENT_PORT" ] || bench_die "agent printed no port: $(cat "$BT/agent.out")"
	[ "$(cat "/proc/$AGENT_PID/comm" 2>/dev/null)" = mirrord-trace-a ] ||
		bench_die "pid $AGENT_PID is not the agent (memory samples would be wrong)"
}

# agent_stop: the agent exits by itself when its client is gone; make sure.
agent_stop() {
	local _
	[ -n "$AGENT_PID" ] || return 0
	for _ in $(seq 30); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	bench_kill "$AGENT_PID"
	AGENT_PID=""
}

# run_traced [MT_FLAGS...] -- CMD...: under mirrord-trace in the workstation
# netns, with a fresh agent. MT_STDERR (default $BT/last.err) gets stderr.
run_traced() {
	local flags=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
	[ $# -gt 0 ] || bench_die "run_traced: no -- before the program"
	shift
	agent_start
	RUN_RC=0
	RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" ip netns exec "$WORKSTATION_NETNS" \
		"$MT" --agent-addr "127.0.0.1:$AGENT_PORT" "${flags[@]}" -- "$@" \
		2>"${MT_STDERR:-$BT/last.err}" </dev/null) || RUN_RC=$?
	agent_stop
}

# ---- A/B of two builds (bulk_ab.sh, short_ab.sh) ----
# ab_setup DIR_B: DIR_B has the binaries, perf is there; then the usual
# setup with bench/httpc, bench/srv and the service pod's srv running.
ab_setup() {
	command -v perf >/dev/null || bench_die "perf is not installed"
	if [ ! -x "$1/mirrord-trace" ] || [ ! -x "$1/mirrord-trace-agent" ]; then
		bench_die "$1 has no mirrord-trace / mirrord-trace-agent"
	fi
	bench_require
	bench_build httpc srv
	bench_pod
	bench_server
}

# ab_run DIR EVENTS CMD...: one traced run of CMD with DIR's binaries (a
# fresh agent), perf stat -i -e EVENTS on the agent ($BT/agent.perf) and
# on the supervisor ($BT/sup.perf); sets RUN_OUT and RUN_RC.
ab_run() {
	local d=$1 ev=$2 port
	shift 2
	rm -f "$BT/agent.out"
	bench_bg "$BT/agent.out" ip netns exec "$WORKSTATION_NETNS" perf stat -i -x, -e "$ev" -o "$BT/agent.perf" -- \
		"$d/mirrord-trace-agent" --listen 127.0.0.1:0 targeted --pid "$TARGET_PID"
	AGENT_PID=$BG_PID # agent_stop's: perf, which exits with the agent
	bench_wait_line "$BT/agent.out" '^agent ready' 10 || bench_die "agent not ready: $(cat "$BT/agent.out")"
	port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$BT/agent.out" | head -n 1)
	RUN_RC=0
	RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" ip netns exec "$WORKSTATION_NETNS" perf stat -i -x, -e "$ev" -o "$BT/sup.perf" -- \
		"$d/mirrord-trace" --agent-addr "127.0.0.1:$port" -- "$@" 2>"$BT/last.err" </dev/null) || RUN_RC=$?
	agent_stop
}

# check_run WHAT: die with the output if the last run failed.
check_run() {
	[ "$RUN_RC" = 0 ] && return 0
	local why=""
	[ "$RUN_RC" != 124 ] || why=", timed out after ${BENCH_TIMEOUT}s"
	bench_log "FAILED: $1 (exit $RUN_RC$why)"
	bench_log "  stdout: $RUN_OUT"
	sed 's/^/  stderr: /' "$BT/last.err" | tail -n 20
	return 1
}

# field N: the Nth space-separated field of RUN_OUT's last line.
field() { printf '%s\n' "$RUN_OUT" | tail -n 1 | awk -v n="$1" '{ print $n }'; }

# ---- statistics ----
# median V...: the median (mean of the middle two for an even count).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minv() { printf '%s\n' "$@" | sort -g | head -n 1; }
maxv() { printf '%s\n' "$@" | sort -g | tail -n 1; }
# ratio A B: A/B with 3 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.3f\n", a / b }'; }
# verdict OK?: "ok" or "MISSED" from an awk condition on numbers
verdict() { awk "BEGIN { exit !($1) }" && echo ok || echo MISSED; }

# summary LINE: one line for bench/run's summary (also printed here).
summary() { printf 'summary| %s\n' "$*"; }
