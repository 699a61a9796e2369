#!/bin/bash
# bench/stops.sh: how many syscalls mirrord-trace traps, per workload.
# The supervisor has no counters; `mirrord-trace --trace` logs one line per
# trapped syscall (a seccomp stop handled by the policy), with the time the
# tracee was held. Line counts are a proxy for ptrace stops: they miss the
# extra stops the engine takes itself (exec, clone, the injected scratch
# mmap, exit stops of rewritten syscalls, signal-delivery stops). These runs
# are separate from the timed ones (logging costs time).
# Per-request figures come from two runs of different length (the
# difference cancels start-up), so they are exact for this client.
. "$(dirname "$0")/lib.sh"

bench_require
bench_build loops httpc srv
bench_pod
bench_server

# trace_run NAME CMD...: run traced with --trace; LINES, and the log in $BT/NAME.trace
trace_run() {
	local name=$1
	shift
	MT_STDERR=$BT/$name.trace run_traced --trace -- "$@"
	MT_STDERR="" 
	check_run "$* (--trace)" || { tail -n 5 "$BT/$name.trace"; exit 1; }
	LINES=$(grep -c '^\[pid ' "$BT/$name.trace")
}
# held_ms FILE REGEX: mean of "(X ms)" over the matching lines
held_ms() { grep -E "$2" "$1" | sed -n 's/.*(\([0-9.]*\) ms)$/\1/p' | awk '{ s += $1; n++ } END { if (n) printf "%.3f", s / n; else print "-" }'; }
# hist FILE: "name:count" of the trapped syscalls, most frequent first
hist() { sed -n 's/^\[pid [0-9]*\] \([a-z0-9_]*\).*/\1/p' "$1" | sort | uniq -c | sort -rn | awk '{ printf "%s%s:%s", (NR > 1 ? " " : ""), $2, $1 }'; }

ip=$HTTP_IP port=$BENCH_SRV_PORT
trace_run loops "$BT/loops" getpid 1000000; L_LOOPS=$LINES
trace_run read "$BT/loops" read 1000000; L_READ=$LINES
trace_run ip100 "$BT/httpc" get "$ip" "$port" 100; L_IP1=$LINES
trace_run ip200 "$BT/httpc" get "$ip" "$port" 200; L_IP2=$LINES
trace_run nm20 "$BT/httpc" get "$HTTP_SHORT_NAME" "$port" 20; L_NM1=$LINES
trace_run nm40 "$BT/httpc" get "$HTTP_SHORT_NAME" "$port" 40; L_NM2=$LINES
trace_run bulk "$BT/httpc" bulk "$ip" "$port" "${BENCH_BULK_BYTES:-1073741824}"; L_BULK=$LINES

per_ip=$(awk -v a="$L_IP1" -v b="$L_IP2" 'BEGIN { printf "%.2f", (b - a) / 100 }')
per_nm=$(awk -v a="$L_NM1" -v b="$L_NM2" 'BEGIN { printf "%.2f", (b - a) / 20 }')
bench_log ""
bench_log "== 5. trapped syscalls (lines of mirrord-trace --trace; a proxy for ptrace stops)"
printf '%-44s %8s  %s\n' workload stops "trapped syscalls (whole run)"
printf '%-44s %8s  %s\n' "loops getpid 1000000" "$L_LOOPS" "$(hist "$BT/loops.trace")"
printf '%-44s %8s  %s\n' "loops read 1000000" "$L_READ" "$(hist "$BT/read.trace")"
printf '%-44s %8s  %s\n' "httpc get by IP, 200 requests" "$L_IP2" "$(hist "$BT/ip200.trace")"
printf '%-44s %8s  %s\n' "httpc get by name, 40 requests" "$L_NM2" "$(hist "$BT/nm40.trace")"
printf '%-44s %8s  %s\n' "httpc bulk 1 GiB" "$L_BULK" "$(hist "$BT/bulk.trace")"
bench_log "per request: by IP $per_ip stops, by name $per_nm stops"
bench_log "mean time a tracee is held (stop to resume) for connect via agent: $(held_ms "$BT/ip200.trace" 'connect\(.*via agent') ms (by IP);" \
	"all stops of a by-name request: $(sed -n 's/.*(\([0-9.]*\) ms)$/\1/p' "$BT/nm40.trace" | awk '{ s += $1 } END { printf "%.3f", s / 40 }') ms held in total"
summary "5 stops  untrapped loops: $L_LOOPS (start-up only)  per short request: by IP $per_ip, by name $per_nm  bulk 1 GiB: $L_BULK"
