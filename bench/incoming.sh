#!/bin/bash
# bench/incoming.sh: incoming traffic (issue 7), steal and mirror.
# bench/srv serves the pod's port (BENCH_IN_PORT, default 8080) inside the
# target container's netns: the pod's own app. Clients run in the service
# netns, the "cluster client", against POD_IP:PORT.
#
# 1. Steal: requests/s of wrk (BENCH_WRK_THREADS threads, BENCH_WRK_CONNS
#    connections, BENCH_WRK_SECS seconds) against
#      direct   the pod's srv answering (no mirrord-trace anywhere)
#      stolen   the same srv under `mirrord-trace --steal` in the workstation
#               netns, listening on the same port; the agent redirects it
#    with keep-alive (wrk's default) and with "Connection: close" (a new
#    connection per request; wrk counts each close as a read error).
#    Target: stolen >= 50 % of direct, keep-alive.
# 2. Mirror: bench/rate, open loop, RATE req/s (each of BENCH_MIRROR_RATES)
#    over BENCH_RATE_CONNS keep-alive connections for BENCH_RATE_SECS s:
#      off      the pod's srv alone
#      on       plus srv under mirrord-trace (mirror mode) in the workstation
#    The pod's p50/p99 (latency from each request's due time) and, for on,
#    the loss: requests the pod's srv parsed minus those the local srv parsed
#    (both read with SIGUSR1, the local count once it stops growing, at most
#    BENCH_MIRROR_SETTLE s). Target: 0 lost at 5000 req/s.
# Configurations interleaved (order rotating), BENCH_REPS each; medians.
. "$(dirname "$0")/lib.sh"

PORT=${BENCH_IN_PORT:-8080}
WRK_T=${BENCH_WRK_THREADS:-1}
WRK_C=${BENCH_WRK_CONNS:-32}
WRK_D=${BENCH_WRK_SECS:-5}
RATES=${BENCH_MIRROR_RATES:-1000 5000 10000}
RATE_C=${BENCH_RATE_CONNS:-32}
RATE_D=${BENCH_RATE_SECS:-5}
SETTLE=${BENCH_MIRROR_SETTLE:-10}
STEAL_TARGET=0.5
STEAL_CFGS=(direct stolen)
MIRROR_CFGS=(off on)
LOSS_RATE=5000

bench_require
command -v wrk >/dev/null || bench_die "wrk is not installed (scripts/deps)"
bench_build srv rate
bench_pod

# srv_count PID FILE: ask srv PID (stdout in FILE) for its request count.
srv_count() {
	local pid=$1 f=$2 n0 _
	n0=$(grep -c '^requests ' "$f")
	kill -USR1 "$pid" 2>/dev/null || return 1
	for _ in $(seq 40); do
		[ "$(grep -c '^requests ' "$f")" -gt "$n0" ] && break
		sleep 0.05
	done
	sed -n 's/^requests //p' "$f" | tail -n 1
}

# The pod's own app.
nsenter -t "$TARGET_PID" -n -- ss -Hltn "sport = :$PORT" | grep . >/dev/null &&
	bench_die "port $PORT is busy in the pod (BENCH_IN_PORT)"
bench_bg "$BT/pod.out" nsenter -t "$TARGET_PID" -n -- "$BT/srv" "$PORT"
POD_SRV=$BG_PID # nsenter without -p execs: this is srv
bench_wait_line "$BT/pod.out" '^listening' 5 || bench_die "srv in the pod did not start: $(cat "$BT/pod.out")"

# local_start [MT_FLAGS...]: srv under mirrord-trace in the workstation netns
# on PORT, with a fresh agent; returns once listen() returned (subscribed).
# LOCAL_MT is mirrord-trace, LOCAL_SRV the traced srv.
LOCAL_MT="" LOCAL_SRV="" LOCAL_N=0
local_start() {
	local _
	agent_start
	LOCAL_N=$((LOCAL_N + 1))
	LOCAL_OUT=$BT/local.$LOCAL_N.out
	bench_bg "$LOCAL_OUT" ip netns exec "$WORKSTATION_NETNS" "$MT" --agent-addr "127.0.0.1:$AGENT_PORT" \
		"$@" -- "$BT/srv" "$PORT"
	LOCAL_MT=$BG_PID
	bench_wait_line "$LOCAL_OUT" '^listening' 20 || bench_die "srv under mirrord-trace $* did not start: $(cat "$LOCAL_OUT")"
	LOCAL_SRV=""
	for _ in $(seq 20); do
		LOCAL_SRV=$(cat /proc/"$LOCAL_MT"/task/*/children 2>/dev/null | awk '{ print $1; exit }')
		[ -n "$LOCAL_SRV" ] && break
		sleep 0.05
	done
	[ "$(cat "/proc/$LOCAL_SRV/comm" 2>/dev/null)" = srv ] || bench_die "no traced srv under pid $LOCAL_MT"
}
local_stop() {
	bench_kill "$LOCAL_MT" # SIGTERM: mirrord-trace passes it on and says goodbye
	agent_stop
	LOCAL_MT="" LOCAL_SRV=""
}

# run_wrk [ARGS...]: wrk in the service netns; RUN_OUT, RUN_RC as in lib.sh.
run_wrk() {
	RUN_RC=0
	RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" ip netns exec "$SVC_NETNS" wrk -t"$WRK_T" -c"$WRK_C" \
		-d"${WRK_D}s" "$@" "http://$POD_IP:$PORT/" 2>"$BT/last.err" </dev/null) || RUN_RC=$?
	WRK_RPS=$(printf '%s\n' "$RUN_OUT" | awk '/^Requests\/sec:/ { print $2 }')
	WRK_REQS=$(printf '%s\n' "$RUN_OUT" | awk '/ requests in / { print $1 }')
	if [ -z "$WRK_RPS" ] || [ -z "$WRK_REQS" ]; then [ "$RUN_RC" != 0 ] || RUN_RC=1; fi
}

# run_rate R: bench/rate at R req/s in the service netns.
run_rate() {
	RUN_RC=0
	RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" ip netns exec "$SVC_NETNS" "$BT/rate" "$POD_IP" "$PORT" \
		"$1" "$RATE_C" "$RATE_D" 2>"$BT/last.err" </dev/null) || RUN_RC=$?
	# exit 1 is "not every request answered": recorded, not fatal
	[ "$RUN_RC" = 1 ] && [ "$(field 1)" = rate ] && RUN_RC=0
}

bench_log "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) (other users of the machine are not stopped)"

# ---- 1. steal ----
declare -A RPS
STEAL_POD_LEAK=0 STEAL_SHORT=0
for r in $(seq "$BENCH_REPS"); do
	for k in 0 1; do
		cfg=${STEAL_CFGS[$(((r + k) % 2))]}
		if [ "$cfg" = stolen ]; then
			local_start --steal
			pod0=$(srv_count "$POD_SRV" "$BT/pod.out") loc0=$(srv_count "$LOCAL_SRV" "$LOCAL_OUT")
		fi
		for conn in keep close; do
			if [ $conn = keep ]; then run_wrk; else run_wrk -H 'Connection: close'; fi
			check_run "wrk $conn ($cfg)" || exit 1
			RPS[$cfg.$conn]+=" $WRK_RPS"
			[ "$cfg" = stolen ] && STEAL_SHORT=$((STEAL_SHORT + WRK_REQS))
		done
		if [ "$cfg" = stolen ]; then
			# wrk's totals are what it got answers to; the local srv must
			# have parsed at least that many and the pod's srv none.
			pod1=$(srv_count "$POD_SRV" "$BT/pod.out") loc1=$(srv_count "$LOCAL_SRV" "$LOCAL_OUT")
			STEAL_POD_LEAK=$((STEAL_POD_LEAK + pod1 - pod0))
			STEAL_SHORT=$((STEAL_SHORT - (loc1 - loc0)))
			local_stop
		fi
	done
done

krps() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }'; }
bench_log ""
bench_log "== 8a. steal: wrk -t$WRK_T -c$WRK_C -d${WRK_D}s from the service netns to $POD_IP:$PORT; $BENCH_REPS runs per configuration"
bench_log "   requests/s in thousands: median (min-max); ratio of medians vs the pod serving directly"
printf '%-48s %18s %20s\n' "" "keep-alive" "new conn. per req."
for cfg in direct stolen; do
	case $cfg in direct) label="direct (bench/srv in the pod)" ;; stolen) label="stolen (bench/srv under mirrord-trace --steal)" ;; esac
	line=$(printf '%-48s' "$label")
	for conn in keep close; do
		# shellcheck disable=SC2086
		m=$(median ${RPS[$cfg.$conn]}) lo=$(minv ${RPS[$cfg.$conn]}) hi=$(maxv ${RPS[$cfg.$conn]})
		line+=$(printf ' %18s  ' "$(krps "$m") ($(krps "$lo")-$(krps "$hi"))")
	done
	bench_log "$line"
done
# shellcheck disable=SC2086
rk=$(ratio "$(median ${RPS[stolen.keep]})" "$(median ${RPS[direct.keep]})")
# shellcheck disable=SC2086
rc=$(ratio "$(median ${RPS[stolen.close]})" "$(median ${RPS[direct.close]})")
printf '%-48s %18s %20s\n' "ratio stolen/direct" "$rk" "$rc"
# The direct baseline drifts between runs of the same binaries (wrk and
# srv share two CPUs); each repetition runs both back to back, so the
# ratio within a repetition is the steadier figure.
pairs() {
	local -a s d
	read -ra s <<<"${RPS[stolen.$1]}"
	read -ra d <<<"${RPS[direct.$1]}"
	for i in "${!s[@]}"; do ratio "${s[$i]}" "${d[$i]}"; done
}
# shellcheck disable=SC2046
pk=$(median $(pairs keep)) pc=$(median $(pairs close))
bench_log "   per repetition (stolen/direct of the same repetition), keep-alive: $(pairs keep | tr '\n' ' ')(median $pk);" \
	"new conn.: $(pairs close | tr '\n' ' ')(median $pc)"
# shellcheck disable=SC2086
dk=$(median ${RPS[direct.keep]}) sk=$(median ${RPS[stolen.keep]})
bench_log "   requests the pod's srv parsed during stolen runs: $STEAL_POD_LEAK (expected 0);" \
	"answered to wrk but not parsed by the local srv: $((STEAL_SHORT > 0 ? STEAL_SHORT : 0)) (expected 0)"
summary "$(printf '8 steal keep-alive direct %6s k/s  stolen %6s k/s (%s, per repetition %s, target >= %s) %s  new-conn stolen/direct %s' \
	"$(krps "$dk")" "$(krps "$sk")" "$rk" "$pk" "$STEAL_TARGET" \
	"$(verdict "$rk >= $STEAL_TARGET")" "$rc")"

# ---- 2. mirror ----
declare -A P50 P99 OKS CNT LOST SENT
for r in $(seq "$BENCH_REPS"); do
	for rate in $RATES; do
		for k in 0 1; do
			cfg=${MIRROR_CFGS[$(((r + k) % 2))]}
			[ "$cfg" = on ] && local_start
			pod0=$(srv_count "$POD_SRV" "$BT/pod.out")
			run_rate "$rate"
			check_run "rate $rate ($cfg)" || exit 1
			P50[$rate.$cfg]+=" $(field 4)"
			P99[$rate.$cfg]+=" $(field 5)"
			CNT[$rate.$cfg]=$((${CNT[$rate.$cfg]:-0} + $(field 2)))
			OKS[$rate.$cfg]=$((${OKS[$rate.$cfg]:-0} + $(field 3)))
			if [ "$cfg" = on ]; then
				pod1=$(srv_count "$POD_SRV" "$BT/pod.out")
				sent=$((pod1 - pod0)) got=-1 same=0
				# The copy lags: wait until the local count reaches the
				# pod's or has not moved for 1 s, at most SETTLE s.
				for _ in $(seq $((SETTLE * 5))); do
					n=$(srv_count "$LOCAL_SRV" "$LOCAL_OUT")
					[ "$n" = "$got" ] && same=$((same + 1)) || same=0
					got=$n
					[ "$got" -ge "$sent" ] || [ "$same" -ge 5 ] && break
					sleep 0.2
				done
				SENT[$rate]=$((${SENT[$rate]:-0} + sent))
				LOST[$rate]=$((${LOST[$rate]:-0} + sent - got))
				local_stop
			fi
		done
	done
done

ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
bench_log ""
bench_log "== 8b. mirror: bench/rate, open loop, RATE req/s over $RATE_C keep-alive connections for ${RATE_D}s, from the service netns to $POD_IP:$PORT; $BENCH_REPS runs per configuration"
bench_log "   the pod's latency in ms from each request's due time: median over runs of (p50, p99 within a run);"
bench_log "   added = on - off; lost = parsed by the pod's srv - parsed by the local srv, over all runs"
printf '%8s %9s %9s %9s %9s %9s %9s %11s %14s %9s\n' "req/s" "p50 off" "p50 on" "added" "p99 off" "p99 on" "added" "answered" "lost/sent" "loss"
for rate in $RATES; do
	# shellcheck disable=SC2086
	a=$(median ${P50[$rate.off]}) b=$(median ${P50[$rate.on]}) c=$(median ${P99[$rate.off]}) d=$(median ${P99[$rate.on]})
	lost=${LOST[$rate]} sent=${SENT[$rate]}
	loss=$(awk -v l="$lost" -v s="$sent" 'BEGIN { printf "%.3f%%", s ? 100 * l / s : 0 }')
	printf '%8s %9s %9s %9s %9s %9s %9s %11s %14s %9s\n' "$rate" "$(ms "$a")" "$(ms "$b")" \
		"$(ms "$(awk -v x="$b" -v y="$a" 'BEGIN { print x - y }')")" "$(ms "$c")" "$(ms "$d")" \
		"$(ms "$(awk -v x="$d" -v y="$c" 'BEGIN { print x - y }')")" \
		"$(awk -v o="${OKS[$rate.on]}" -v n="${CNT[$rate.on]}" 'BEGIN { printf "%.2f%%", 100 * o / n }')" \
		"$lost/$sent" "$loss"
done
bench_log "   answered: requests that bench/rate got a 200 for within 5 s of the last one being due, mirror on"
for rate in $RATES; do
	# shellcheck disable=SC2086
	a=$(median ${P50[$rate.off]}) b=$(median ${P50[$rate.on]}) c=$(median ${P99[$rate.off]}) d=$(median ${P99[$rate.on]})
	lost=${LOST[$rate]} sent=${SENT[$rate]}
	if [ "$rate" = "$LOSS_RATE" ]; then
		summary "$(printf '8 mirror %s req/s  p50 %s ms -> %s ms  p99 %s ms -> %s ms  lost %s of %s (target 0) %s' \
			"$rate" "$(ms "$a")" "$(ms "$b")" "$(ms "$c")" "$(ms "$d")" "$lost" "$sent" "$(verdict "$lost == 0")")"
	else
		summary "$(printf '8 mirror %s req/s  p50 %s ms -> %s ms  p99 %s ms -> %s ms  lost %s of %s  [no target]' \
			"$rate" "$(ms "$a")" "$(ms "$b")" "$(ms "$c")" "$(ms "$d")" "$lost" "$sent")"
	fi
done
