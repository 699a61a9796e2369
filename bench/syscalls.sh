#!/bin/bash
# bench/syscalls.sh: cost of syscalls mirrord-trace does NOT trap.
# bench/loops.c runs N getpid and N 1-byte reads of /dev/zero in the
# workstation netns: natively, under a bare allow-all seccomp filter (no
# tracer: what the kernel charges any seccomp user) and under mirrord-trace
# (--agent-addr, a fresh agent per run). Configurations are interleaved, the
# order rotating each round; BENCH_LOOP_REPS rounds (default 9), median.
# Target: mirrord-trace / native <= 1.03.
. "$(dirname "$0")/lib.sh"

N=${BENCH_LOOP_N:-2000000}
REPS=${BENCH_LOOP_REPS:-9}
TARGET=1.03
CFGS=(native seccomp traced)

bench_require
bench_build loops seccomp_only
bench_pod

declare -A V
for r in $(seq "$REPS"); do
	for kind in getpid read; do
		for k in 0 1 2; do
			cfg=${CFGS[$(((r + k) % 3))]}
			case $cfg in
			native) run_ws "$BT/loops" "$kind" "$N" ;;
			seccomp) run_ws "$BT/seccomp_only" "$BT/loops" "$kind" "$N" ;;
			traced) run_traced -- "$BT/loops" "$kind" "$N" ;;
			esac
			check_run "loops $kind $N ($cfg)" || exit 1
			V[$kind.$cfg]+=" $(field 3)"
		done
	done
done

cell() { # cell KEY: "median (min-max)"
	# shellcheck disable=SC2086
	printf '%6.1f (%.0f-%.0f)' "$(median ${V[$1]})" "$(minv ${V[$1]})" "$(maxv ${V[$1]})"
}
bench_log ""
bench_log "== 1. untrapped syscalls: $N calls per run, $REPS runs per configuration; ns/call, median (min-max)"
printf '%-7s %18s %18s %18s %10s %10s %8s\n' loop native seccomp-only mirrord-trace "seccomp/n" "traced/n" target
for kind in getpid read; do
	# shellcheck disable=SC2086
	n=$(median ${V[$kind.native]}) s=$(median ${V[$kind.seccomp]}) t=$(median ${V[$kind.traced]})
	rt=$(ratio "$t" "$n")
	printf '%-7s %18s %18s %18s %9sx %9sx %8s\n' "$kind" "$(cell "$kind.native")" "$(cell "$kind.seccomp")" \
		"$(cell "$kind.traced")" "$(ratio "$s" "$n")" "$rt" "<=$TARGET"
	summary "$(printf '1 untrapped %-6s native %6.1f ns  traced %6.1f ns  ratio %sx (target <= %s) %s  [bare seccomp filter: %sx]' \
		"$kind" "$n" "$t" "$rt" "$TARGET" "$(verdict "$rt <= $TARGET")" "$(ratio "$s" "$n")")"
done
