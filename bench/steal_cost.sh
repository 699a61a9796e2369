#!/bin/bash
# bench/steal_cost.sh: what one stolen request costs the agent and the
# supervisor (issue 7), counted rather than timed. bench/srv under
# `mirrord-trace --steal` in the workstation netns takes over the pod's
# port (BENCH_IN_PORT, default 8080); load comes from the service netns:
#   saturated  wrk -t1 -c32 -dBENCH_WRK_SECS (keep-alive), count from wrk
#   close      the same with "Connection: close": a new connection per
#              request (wrk sends its next request on the closed one first)
#   rate       bench/rate at BENCH_COST_RATE req/s over 32 keep-alive
#              connections for BENCH_RATE_SECS s: a fixed request count
# Per request, for the agent and the supervisor apart: CPU time (utime +
# stime from /proc/PID/stat), syscalls, epoll_wait, epoll_ctl, sendto,
# recvfrom (perf stat on syscall tracepoints; skipped without perf), and
# the TCP segments sent in the workstation netns (the agent link and the
# supervisor's connections to the app). BENCH_COST_B=DIR adds a second
# build (its mirrord-trace and agent), interleaved run by run with
# MT_BIN_DIR's, for A/B comparisons. BENCH_REPS runs each; medians.
. "$(dirname "$0")/lib.sh"

PORT=${BENCH_IN_PORT:-8080}
WRK_D=${BENCH_WRK_SECS:-5}
COST_RATE=${BENCH_COST_RATE:-2000}
RATE_D=${BENCH_RATE_SECS:-5}
BUILDS=("$MT_BIN_DIR")
[ -n "${BENCH_COST_B:-}" ] && BUILDS+=("$BENCH_COST_B")
EVENTS=raw_syscalls:sys_enter
for s in epoll_wait epoll_ctl sendto recvfrom; do EVENTS+=",syscalls:sys_enter_$s"; done
COLS=(cpu sys epoll_wait epoll_ctl sendto recvfrom)

bench_require
command -v wrk >/dev/null || bench_die "wrk is not installed (scripts/deps)"
PERF=1
perf stat -x, -e "$EVENTS" -- true >/dev/null 2>&1 || PERF=0
bench_build srv rate
bench_pod

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
segs() { ip netns exec "$WORKSTATION_NETNS" nstat -a -s -z TcpOutSegs 2>/dev/null | awk '$1 == "TcpOutSegs" { print $2 }'; }

# one_run BIN_DIR LOAD I: a fresh agent and traced srv, LOAD once; appends
# "KEY value" lines (per request) to $BT/res.I.LOAD.
one_run() {
	local dir=$1 load=$2 key=$3 mt_pid n a0 m0 a1 m1 g0 g1 pa=() pm=()
	# shellcheck disable=SC2034 # MT_AGENT is lib.sh's, for agent_start
	MT=$dir/mirrord-trace MT_AGENT=$dir/mirrord-trace-agent
	agent_start
	bench_bg "$BT/local.out" ip netns exec "$WORKSTATION_NETNS" "$MT" --agent-addr "127.0.0.1:$AGENT_PORT" \
		--steal -- "$BT/srv" "$PORT"
	mt_pid=$BG_PID
	bench_wait_line "$BT/local.out" '^listening' 20 || bench_die "srv under mirrord-trace did not start: $(cat "$BT/local.out")"
	# warm-up: the connections' first requests, allocations
	ip netns exec "$SVC_NETNS" "$BT/rate" "$POD_IP" "$PORT" 500 32 1 >/dev/null 2>&1
	if [ "$PERF" = 1 ]; then
		perf stat -x, -e "$EVENTS" -p "$AGENT_PID" -o "$BT/perf.agent" &
		pa=($!)
		perf stat -x, -e "$EVENTS" -p "$mt_pid" -o "$BT/perf.sup" &
		pm=($!)
		sleep 0.5
	fi
	a0=$(cpu_ticks "$AGENT_PID") m0=$(cpu_ticks "$mt_pid") g0=$(segs)
	if [ "$load" != rate ]; then
		local hdr=()
		[ "$load" = close ] && hdr=(-H 'Connection: close')
		RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" ip netns exec "$SVC_NETNS" wrk -t1 -c32 -d"${WRK_D}s" \
			"${hdr[@]}" "http://$POD_IP:$PORT/" 2>&1 </dev/null)
		n=$(printf '%s\n' "$RUN_OUT" | awk '/ requests in / { print $1 }')
	else
		RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" ip netns exec "$SVC_NETNS" "$BT/rate" "$POD_IP" "$PORT" \
			"$COST_RATE" 32 "$RATE_D" 2>&1 </dev/null)
		n=$(printf '%s\n' "$RUN_OUT" | tail -n 1 | awk '$1 == "rate" { print $3 }')
	fi
	a1=$(cpu_ticks "$AGENT_PID") m1=$(cpu_ticks "$mt_pid") g1=$(segs)
	if [ "$PERF" = 1 ]; then
		kill -INT "${pa[0]}" "${pm[0]}"
		wait "${pa[0]}" "${pm[0]}"
	fi
	if [ -z "$n" ] || [ "$n" -le 0 ]; then bench_die "$load load failed: $RUN_OUT"; fi
	local hz
	hz=$(getconf CLK_TCK)
	{
		echo "agent.cpu $(awk -v d=$((a1 - a0)) -v n="$n" -v hz="$hz" 'BEGIN { print d * 1e6 / hz / n }')"
		echo "sup.cpu $(awk -v d=$((m1 - m0)) -v n="$n" -v hz="$hz" 'BEGIN { print d * 1e6 / hz / n }')"
		echo "segs $(awk -v d=$((g1 - g0)) -v n="$n" 'BEGIN { print d / n }')"
		if [ "$PERF" = 1 ]; then
			for who in agent sup; do
				awk -F, -v n="$n" -v w="$who" '$1 ~ /^[0-9]+$/ {
					k = $3; sub(/^raw_syscalls:sys_enter$/, "sys", k); sub(/^syscalls:sys_enter_/, "", k)
					print w "." k, $1 / n }' "$BT/perf.$who"
			done
		fi
	} >>"$BT/res.$key.$load"
	bench_kill "$mt_pid"
	agent_stop
}

bench_log "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) (other users of the machine are not stopped)"
[ "$PERF" = 1 ] || bench_log "perf cannot count syscall tracepoints here: CPU and segments only"
for r in $(seq "$BENCH_REPS"); do
	for load in saturated close rate; do
		for k in $(seq 0 $((${#BUILDS[@]} - 1))); do
			# rotate the order every round, as the other scripts do
			i=$(((r + k) % ${#BUILDS[@]}))
			one_run "${BUILDS[$i]}" "$load" "$i"
		done
	done
done

# med FILE KEY: median of KEY's values in FILE, 2 decimals
med() {
	local v
	mapfile -t v < <(awk -v k="$2" '$1 == k { print $2 }' "$1")
	[ ${#v[@]} -gt 0 ] || { echo "-"; return; }
	median "${v[@]}" | awk '{ printf "%.2f", $1 }'
}
bench_log ""
bench_log "== steal cost per request: saturated = wrk -t1 -c32 -d${WRK_D}s, close = the same with Connection: close, rate = bench/rate $COST_RATE req/s x ${RATE_D}s over 32 connections; $BENCH_REPS runs each, medians"
bench_log "   cpu in µs; sys = all syscalls; segs = TCP segments sent in the workstation netns"
for load in saturated close rate; do
	for i in $(seq 0 $((${#BUILDS[@]} - 1))); do
		f=$BT/res.$i.$load
		line=$(printf '%-10s %s\n          ' "$load" "${BUILDS[$i]}")
		for who in agent sup; do
			line+="  $who:"
			for c in "${COLS[@]}"; do line+=" $c $(med "$f" "$who.$c")"; done
		done
		bench_log "$line  segs $(med "$f" segs)"
	done
done
