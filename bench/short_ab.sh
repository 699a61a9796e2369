#!/bin/bash
# bench/short_ab.sh: two builds on the short connections of short.sh (by IP),
# interleaved (the order alternating every round), counted per request:
# time, CPU time of the supervisor and of the agent alone (perf stat -i
# task-clock: not their children), their syscalls and epoll_wait() calls
# (syscall tracepoints), and the TCP segments sent in the workstation
# netns (OutSegs: the program's relayed connections and the agent link).
# Counts barely depend on how busy the machine is; time does.
#   sudo BENCH_REPS=8 bench/short_ab.sh BIN_DIR_A BIN_DIR_B
# Not part of bench/run (it needs two builds). Needs perf.
A=${1:?usage: short_ab.sh BIN_DIR_A BIN_DIR_B} B=${2:?usage: short_ab.sh BIN_DIR_A BIN_DIR_B}
export MT_BIN_DIR=$A
. "$(dirname "$0")/lib.sh"

N=${BENCH_SHORT_N:-2000}
EVENTS=task-clock,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait
perf stat -x, -e "$EVENTS" -- true >/dev/null 2>&1 || bench_die "perf cannot count syscall tracepoints here"
ab_setup "$B"

cmd=("$BT/httpc" get "$HTTP_IP" "$BENCH_SRV_PORT" "$N")
KEYS=(us sup_us agent_us sup_sys agent_sys sup_epw agent_epw segs)
declare -A V
out_segs() { ip netns exec "$WORKSTATION_NETNS" awk '/^Tcp:/ { if (++n == 2) print $12 }' /proc/net/snmp; }
# per_req FILE EVENT SCALE: a perf stat -x, count per request, times SCALE
per_req() { awk -F, -v e="$2" -v n="$N" -v k="$3" '$3 == e { printf "%.2f", $1 * k / n }' "$1"; }

# run_ab DIR KEY: one traced run with DIR's binaries, perf stat on both.
run_ab() {
	local s0 s1
	s0=$(out_segs)
	ab_run "$1" "$EVENTS" "${cmd[@]}"
	s1=$(out_segs)
	check_run "${cmd[*]} ($2)" || exit 1
	V[$2.us]+=" $(awk -v v="$(field 3)" 'BEGIN { printf "%.1f", v / 1000 }')"
	V[$2.sup_us]+=" $(per_req "$BT/sup.perf" task-clock 1000)"
	V[$2.agent_us]+=" $(per_req "$BT/agent.perf" task-clock 1000)"
	V[$2.sup_sys]+=" $(per_req "$BT/sup.perf" raw_syscalls:sys_enter 1)"
	V[$2.agent_sys]+=" $(per_req "$BT/agent.perf" raw_syscalls:sys_enter 1)"
	V[$2.sup_epw]+=" $(per_req "$BT/sup.perf" syscalls:sys_enter_epoll_wait 1)"
	V[$2.agent_epw]+=" $(per_req "$BT/agent.perf" syscalls:sys_enter_epoll_wait 1)"
	V[$2.segs]+=" $(awk -v a="$s0" -v b="$s1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n }')"
}

for r in $(seq "$BENCH_REPS"); do
	if [ $((r % 2)) = 1 ]; then run_ab "$A" A && run_ab "$B" B; else run_ab "$B" B && run_ab "$A" A; fi
done

bench_log ""
bench_log "== short connections A/B: $N sequential GET / by IP, new connection each; $BENCH_REPS runs per build, interleaved"
bench_log "   A=$A"
bench_log "   B=$B"
bench_log "   per request, median over runs: time (us), CPU time (us) and syscalls of the supervisor and the agent,"
bench_log "   their epoll_wait() calls, TCP segments sent in the workstation netns (syscall tracepoints add to the CPU time)"
printf '%-10s %10s %10s %10s\n' "" A B "B/A"
for k in "${KEYS[@]}"; do
	# shellcheck disable=SC2086
	a=$(median ${V[A.$k]}) b=$(median ${V[B.$k]})
	printf '%-10s %10s %10s %10s\n' "$k" "$a" "$b" "$(ratio "$b" "$a")"
done
