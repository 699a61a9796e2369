#!/bin/bash
# bench/memory.sh: peak memory of the supervisor and the agent with many
# relayed connections open at once.
# bench/httpc opens BENCH_MEM_CONNS (default 1000) connections to bench/srv
# in the service pod, does one keep-alive GET / on each, holds them all open
# for 1 s and closes them. The script samples VmHWM (peak RSS) in
# /proc/PID/status of the mirrord-trace process and of the agent every 50 ms;
# the last sample before exit is the peak. The same with 1 connection gives
# the baseline, so the per-connection cost can be read off. For comparison,
# the peak RSS of microsocks (the proxychains peer's relay) in the same test.
# Targets: supervisor <= 32 MB, agent <= 16 MB (MB = 2^20 bytes here).
. "$(dirname "$0")/lib.sh"

CONNS=${BENCH_MEM_CONNS:-1000}
REPS=$((BENCH_REPS < 3 ? BENCH_REPS : 3))

bench_require
bench_build httpc srv
bench_pod
bench_server
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# traced_hold COUNT: one run; sets SUP_KB AGENT_KB (peak RSS, KiB) and HOLD_OUT.
traced_hold() {
	local count=$1 pid v
	agent_start
	bench_bg "$BT/hold.out" ip netns exec "$WORKSTATION_NETNS" "$MT" --agent-addr "127.0.0.1:$AGENT_PORT" -- \
		"$BT/httpc" hold "$HTTP_IP" "$BENCH_SRV_PORT" "$count" 1
	pid=$BG_PID
	SUP_KB=0 AGENT_KB=0
	for _ in $(seq $((BENCH_TIMEOUT * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		v=$(hwm "$pid") && [ -n "$v" ] && [ "$v" -gt "$SUP_KB" ] && SUP_KB=$v
		v=$(hwm "$AGENT_PID") && [ -n "$v" ] && [ "$v" -gt "$AGENT_KB" ] && AGENT_KB=$v
		sleep 0.05
	done
	bench_kill "$pid"
	wait "$pid" 2>/dev/null
	HOLD_RC=$?
	agent_stop
	HOLD_OUT=$(cat "$BT/hold.out")
	if ! grep -q "^hold $count " "$BT/hold.out"; then
		bench_log "FAILED: httpc hold $count under mirrord-trace (exit $HOLD_RC): $HOLD_OUT"
		exit 1
	fi
}

declare -A V
for _ in $(seq "$REPS"); do
	for count in 1 "$CONNS"; do
		traced_hold "$count"
		V[sup.$count]+=" $SUP_KB"
		V[agent.$count]+=" $AGENT_KB"
		[ "$count" = "$CONNS" ] && V[open]+=" $(printf '%s\n' "$HOLD_OUT" | awk '/^hold/ { print $3 }')"
	done
done

# the peer: a fresh microsocks, the same client under proxychains4 in the pod
bench_socks
run_proxy -- "$BT/httpc" hold "$HTTP_IP" "$BENCH_SRV_PORT" "$CONNS" 1
check_run "httpc hold $CONNS under proxychains4" || exit 1
SOCKS_KB=$(hwm "$SOCKS_PID")

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# shellcheck disable=SC2086
s1=$(median ${V[sup.1]}) sN=$(median ${V[sup.$CONNS]}) a1=$(median ${V[agent.1]}) aN=$(median ${V[agent.$CONNS]})
bench_log ""
bench_log "== 4. memory: peak RSS (VmHWM) with $CONNS relayed connections open at once; $REPS runs, median (max)"
# shellcheck disable=SC2086
bench_log "   opening $CONNS connections (each connect + one GET) took $(median ${V[open]}) s under mirrord-trace (median)"
printf '%-28s %18s %18s %14s %10s\n' process "1 connection" "$CONNS connections" "per conn" target
# shellcheck disable=SC2086
printf '%-28s %9s MB (%s) %9s MB (%s) %11s KB %10s\n' "mirrord-trace (supervisor)" "$(mb "$s1")" "$(mb "$(maxv ${V[sup.1]})")" \
	"$(mb "$sN")" "$(mb "$(maxv ${V[sup.$CONNS]})")" "$(awk -v a="$s1" -v b="$sN" -v n="$CONNS" 'BEGIN { printf "%.1f", (b - a) / (n - 1) }')" "<= 32 MB"
# shellcheck disable=SC2086
printf '%-28s %9s MB (%s) %9s MB (%s) %11s KB %10s\n' "mirrord-trace-agent" "$(mb "$a1")" "$(mb "$(maxv ${V[agent.1]})")" \
	"$(mb "$aN")" "$(mb "$(maxv ${V[agent.$CONNS]})")" "$(awk -v a="$a1" -v b="$aN" -v n="$CONNS" 'BEGIN { printf "%.1f", (b - a) / (n - 1) }')" "<= 16 MB"
printf '%-28s %18s %9s MB %21s\n' "microsocks (peer, 1 run)" "" "$(mb "$SOCKS_KB")" ""
summary "$(printf '4 memory %s conns  supervisor %s MB (target <= 32) %s  agent %s MB (target <= 16) %s  [microsocks %s MB]' \
	"$CONNS" "$(mb "$sN")" "$(verdict "$sN <= 32768")" "$(mb "$aN")" "$(verdict "$aN <= 16384")" "$(mb "$SOCKS_KB")")"
