#!/bin/bash
# bench/syscalls.sh: cost of syscalls mirrord-trace does NOT trap.
# bench/loops.c runs N getpid and N 1-byte reads of /dev/zero; natively in
# the workstation netns and under mirrord-trace (--agent-addr, fresh agent per
# run), interleaved, BENCH_REPS times each. Target: traced/native <= 1.03.
. "$(dirname "$0")/lib.sh"

N=${BENCH_LOOP_N:-1000000}
TARGET=1.03

bench_require
bench_build loops
bench_pod

declare -A V
for r in $(seq "$BENCH_REPS"); do
	for kind in getpid read; do
		# alternate which configuration goes first, so drift hits both
		if [ $((r % 2)) = 1 ]; then order="native traced"; else order="traced native"; fi
		for cfg in $order; do
			if [ "$cfg" = native ]; then run_ws "$BT/loops" "$kind" "$N"; else run_traced -- "$BT/loops" "$kind" "$N"; fi
			check_run "loops $kind $N ($cfg)" || exit 1
			V[$kind.$cfg]+=" $(field 3)"
		done
	done
done

bench_log ""
bench_log "== 1. untrapped syscalls: $N calls per run, $BENCH_REPS runs per configuration, median (min-max) ns/call"
printf '%-22s %20s %20s %9s %8s\n' loop native mirrord-trace ratio target
for kind in getpid read; do
	# shellcheck disable=SC2086
	n=$(median ${V[$kind.native]}) t=$(median ${V[$kind.traced]})
	# shellcheck disable=SC2086
	printf '%-22s %8.1f (%s-%s) %8.1f (%s-%s) %8sx %8s\n' "$kind" "$n" $(minv ${V[$kind.native]}) $(maxv ${V[$kind.native]}) \
		"$t" $(minv ${V[$kind.traced]}) $(maxv ${V[$kind.traced]}) "$(ratio "$t" "$n")" "<=$TARGET"
	rt=$(ratio "$t" "$n")
	summary "$(printf '1 untrapped %-7s native %7.1f ns  traced %7.1f ns  ratio %sx (target <= %s) %s' \
		"$kind" "$n" "$t" "$rt" "$TARGET" "$(verdict "$rt <= $TARGET")")"
done
