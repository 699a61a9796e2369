#!/bin/bash
# bench/bulk_ab.sh: two builds on the bulk download of bulk.sh, interleaved
# with native runs: MB/s, and the CPU time that the supervisor and the agent
# spend per GiB (perf stat task-clock of each process alone, -i: not its
# children), which a shared machine disturbs less than the throughput.
#   sudo BENCH_REPS=6 bench/bulk_ab.sh BIN_DIR_A BIN_DIR_B
# Not part of bench/run (it needs two builds). Needs perf.
A=${1:?usage: bulk_ab.sh BIN_DIR_A BIN_DIR_B} B=${2:?usage: bulk_ab.sh BIN_DIR_A BIN_DIR_B}
export MT_BIN_DIR=$A
. "$(dirname "$0")/lib.sh"

BYTES=${BENCH_BULK_BYTES:-1073741824}
ab_setup "$B"

cmd=("$BT/httpc" bulk "$HTTP_IP" "$BENCH_SRV_PORT" "$BYTES")
declare -A V
# task-clock ms in a perf stat -x, file, per GiB
ms_per_gib() { awk -F, -v b="$BYTES" '/task-clock/ { printf "%.0f", $1 * 1073741824 / b }' "$1"; }

# run_ab DIR KEY: one traced run with DIR's binaries, perf stat on both.
run_ab() {
	ab_run "$1" task-clock "${cmd[@]}"
	check_run "${cmd[*]} ($2)" || exit 1
	V[$2]+=" $(field 4)"
	V[$2.sup]+=" $(ms_per_gib "$BT/sup.perf")"
	V[$2.agent]+=" $(ms_per_gib "$BT/agent.perf")"
}

for r in $(seq "$BENCH_REPS"); do
	order="N A B"
	[ $((r % 2)) = 0 ] && order="B A N"
	for c in $order; do
		case $c in
		N)
			run_native "${cmd[@]}"
			check_run "${cmd[*]} (native)" || exit 1
			V[N]+=" $(field 4)"
			;;
		A) run_ab "$A" A ;;
		B) run_ab "$B" B ;;
		esac
	done
done

bench_log "== bulk A/B: $BYTES bytes, $BENCH_REPS runs each, median (min-max); A=$A B=$B"
# shellcheck disable=SC2086
n=$(median ${V[N]})
printf '%-14s %10s %20s %10s %16s %16s\n' build "MB/s" "(min-max)" "vs native" "supervisor ms/GiB" "agent ms/GiB"
# shellcheck disable=SC2086
printf '%-14s %10.1f %20s %9.1f%%\n' native "$n" "($(minv ${V[N]})-$(maxv ${V[N]}))" 100
for c in A B; do
	# shellcheck disable=SC2086
	printf '%-14s %10.1f %20s %9.1f%% %16s %16s\n' "$c" "$(median ${V[$c]})" "($(minv ${V[$c]})-$(maxv ${V[$c]}))" \
		"$(awk -v a="$(median ${V[$c]})" -v b="$n" 'BEGIN { print 100 * a / b }')" \
		"$(median ${V[$c.sup]})" "$(median ${V[$c.agent]})"
done
