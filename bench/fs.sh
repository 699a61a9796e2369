#!/bin/bash
# bench/fs.sh: remote files (feature.fs), issue 6's closing figures.
#   (a) python3 -c "import json, email, http.client, asyncio, ssl": native in
#       the pod vs mirrord-trace in read mode (the default: every path
#       syscall trapped and decided) and in local mode (none trapped).
#       Targets: read <= 1.5x native, local <= 1.05x native (local mode
#       traps no path syscall: the pod's resolv.conf, hosts and hostname
#       are bind-mounted in the program's mount namespace; without the
#       right to mount, their opens are trapped). Also the ptrace stops of
#       one start per mode (--log-level debug). The traced
#       figures include mirrord-trace's own start (session, env, seccomp),
#       measured apart with `true` and shown as "start-up".
#   (b) a 200 MB pod-only file read sequentially (cat >/dev/null): MB/s of
#       the pod's own cat vs under mirrord-trace (fetched whole into the
#       run's cache at open, then read locally).
#   (c) per-open overhead on a local path (bench/loops open: openat+close of
#       /etc/passwd): us per open traced in read mode vs untraced, and the
#       ptrace stops per open (from --log-level debug's `ptrace stops:`
#       line, the difference of two run lengths).
#   (d) the same on paths the pod serves, whose path argument is rewritten:
#       /etc/hosts (the pod's copy in the run directory: a rewrite and no
#       agent round trip) and a pod-only file (each open also asks the
#       agent: open + close in the pod). 1 stop per open with the x86-64
#       stub, 2 without.
# BENCH_FS_PARTS (default "a b c d") picks the parts.
. "$(dirname "$0")/lib.sh"

PY_IMPORT="import json, email, http.client, asyncio, ssl"
# The interpreter itself: a PATH python3 may be a shim (pyenv) that runs
# bash and more processes first, and the pod's PATH may find another one.
PY=${BENCH_FS_PYTHON:-/usr/bin/python3}
BIG_MB=${BENCH_FS_MB:-200}
OPEN_N=${BENCH_FS_OPEN_N:-20000}
REMOTE_OPEN_N=${BENCH_FS_REMOTE_OPEN_N:-2000}
PY_TARGET=1.5
LOCAL_TARGET=1.05
# want PART: is the part in BENCH_FS_PARTS?
want() { case " ${BENCH_FS_PARTS:-a b c d} " in *" $1 "*) return 0 ;; esac; return 1; }

bench_require
[ -x "$PY" ] || bench_die "$PY is not installed (BENCH_FS_PYTHON)"
bench_build loops
bench_pod

# now_ns: wall clock in ns.
now_ns() { date +%s%N; }

# timed_native CMD...: ELAPSED_MS of CMD inside the target container.
timed_native() {
	local t0
	t0=$(now_ns)
	run_native "$@"
	ELAPSED_MS=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')
}
# timed_traced [MT_FLAGS...] -- CMD...: ELAPSED_MS of mirrord-trace alone
# (the fresh agent is started before the clock and stopped after it).
timed_traced() {
	local flags=() t0
	while [ "$1" != -- ]; do flags+=("$1"); shift; done
	shift
	agent_start
	RUN_RC=0
	t0=$(now_ns)
	RUN_OUT=$(timeout -k 5 "$BENCH_TIMEOUT" ip netns exec "$WORKSTATION_NETNS" \
		"$MT" --agent-addr "127.0.0.1:$AGENT_PORT" "${flags[@]}" -- "$@" \
		2>"${MT_STDERR:-$BT/last.err}" </dev/null) || RUN_RC=$?
	ELAPSED_MS=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')
	agent_stop
}

# stops STDERR: the sum of the `ptrace stops:` counters.
stops() { sed -n 's/.*ptrace stops: \([0-9]*\) seccomp, \([0-9]*\) exit, \([0-9]*\) signal, \([0-9]*\) event.*/\1 \2 \3 \4/p' "$1" | awk '{ print $1 + $2 + $3 + $4 }'; }
# stops_per_open N PATH...: ptrace stops per open in read mode, from runs of
# N and 2N opens (a run of N opens does N*1.1 of them: loops' warm-up).
stops_per_open() {
	local n=$1 s1 s2
	shift
	MT_STDERR=$BT/o1.err timed_traced --fs-mode read --log-level debug -- "$BT/loops" open "$n" "$@"
	check_run "loops open $* (debug)" || exit 1
	MT_STDERR=$BT/o2.err timed_traced --fs-mode read --log-level debug -- "$BT/loops" open $((n * 2)) "$@"
	check_run "loops open $* (debug, 2x)" || exit 1
	s1=$(stops "$BT/o1.err") s2=$(stops "$BT/o2.err")
	[ -n "$s1" ] && [ -n "$s2" ] || bench_die "no 'ptrace stops:' line at --log-level debug: $(tail -n 3 "$BT/o1.err")"
	STOPS_DETAIL="stops: $s1 for $n, $s2 for $((n * 2))"
	PER_OPEN=$(awk -v a="$s1" -v b="$s2" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / (n * 1.1) }')
}
us() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }

# ---- (a) python3 import-heavy start ----
if want a; then
declare -A PYMS
CFGS=(native read local localnodns start)
for r in $(seq "$BENCH_REPS"); do
	for k in 0 1 2 3 4; do
		cfg=${CFGS[$(((r + k) % 5))]}
		case $cfg in
		native) timed_native "$PY" -c "$PY_IMPORT" ;;
		read) timed_traced --fs-mode read -- "$PY" -c "$PY_IMPORT" ;;
		local) timed_traced --fs-mode local -- "$PY" -c "$PY_IMPORT" ;;
		localnodns) timed_traced --fs-mode local --no-remote-dns -- "$PY" -c "$PY_IMPORT" ;;
		start) timed_traced --fs-mode read -- true ;;
		esac
		check_run "python3 import ($cfg)" || exit 1
		PYMS[$cfg]+=" $ELAPSED_MS"
	done
done
# Trapped path syscalls of one read-mode start, and how many went remote.
MT_STDERR=$BT/py.trace timed_traced --fs-mode read --trace -- "$PY" -c "$PY_IMPORT"
check_run "python3 import (--trace)" || exit 1
PY_TRAPPED=$(grep -c '^\[pid ' "$BT/py.trace")
PY_REMOTE=$(grep '^\[pid ' "$BT/py.trace" | grep -c -- '-> remote')
# ptrace stops of one start per mode.
declare -A PYSTOPS
for m in read local; do
	MT_STDERR=$BT/py.$m.err timed_traced --fs-mode $m --log-level debug -- "$PY" -c "$PY_IMPORT"
	check_run "python3 import ($m, debug)" || exit 1
	PYSTOPS[$m]=$(stops "$BT/py.$m.err")
done

# shellcheck disable=SC2086
{
	py_n=$(median ${PYMS[native]}) py_r=$(median ${PYMS[read]})
	py_l=$(median ${PYMS[local]}) py_s=$(median ${PYMS[start]})
	py_ln=$(median ${PYMS[localnodns]})
}
ratio_r=$(ratio "$py_r" "$py_n") ratio_l=$(ratio "$py_l" "$py_n")
net_r=$(ratio "$(awk -v a="$py_r" -v s="$py_s" 'BEGIN { print a - s }')" "$py_n")
net_l=$(ratio "$(awk -v a="$py_l" -v s="$py_s" 'BEGIN { print a - s }')" "$py_n")
ratio_ln=$(ratio "$py_ln" "$py_n")
net_ln=$(ratio "$(awk -v a="$py_ln" -v s="$py_s" 'BEGIN { print a - s }')" "$py_n")
bench_log ""
bench_log "== 8. remote files (feature.fs); $BENCH_REPS runs per configuration, medians"
bench_log "-- (a) python3 -c \"$PY_IMPORT\", wall ms"
printf '%-44s %10s %8s %14s\n' configuration ms ratio "ratio-start-up"
printf '%-44s %10s %7sx\n' "native in pod" "$py_n" "1.000"
printf '%-44s %10s %7sx %13sx\n' "mirrord-trace --fs-mode read (default)" "$py_r" "$ratio_r" "$net_r"
printf '%-44s %10s %7sx %13sx\n' "mirrord-trace --fs-mode local" "$py_l" "$ratio_l" "$net_l"
printf '%-44s %10s %7sx %13sx\n' "  ... and --no-remote-dns (nothing trapped)" "$py_ln" "$ratio_ln" "$net_ln"
printf '%-44s %10s\n' "mirrord-trace start-up (-- true)" "$py_s"
bench_log "read mode: $PY_TRAPPED trapped syscalls per start, $PY_REMOTE of them answered by the pod;" \
	"ptrace stops per start: read ${PYSTOPS[read]}, local ${PYSTOPS[local]}"
bench_log "target read <= ${PY_TARGET}x: $(verdict "$ratio_r <= $PY_TARGET") (without start-up: $(verdict "$net_r <= $PY_TARGET"));" \
	"local <= ${LOCAL_TARGET}x: $(verdict "$ratio_l <= $LOCAL_TARGET") (without start-up: $(verdict "$net_l <= $LOCAL_TARGET"));" \
	"local, no remote DNS: $(verdict "$ratio_ln <= $LOCAL_TARGET") (without start-up: $(verdict "$net_ln <= $LOCAL_TARGET"))"
bench_log "(local mode traps no open when it may mount: the pod's resolv.conf, hosts and hostname are bind-mounted for the program)"
summary "8a fs python3 import: native $py_n ms, read $py_r ms (${ratio_r}x, ${net_r}x without the ${py_s} ms start-up, ${PYSTOPS[read]} stops), local $py_l ms (${ratio_l}x, ${net_l}x, ${PYSTOPS[local]} stops), local+no-remote-dns $py_ln ms (${ratio_ln}x, ${net_ln}x)"
fi

# ---- (b) a 200 MB pod-only file, read sequentially ----
if want b; then
BIG_HOST=$MT_POD_DIR/srv/mt-bench-fs-$$
BIG=/srv/mt-bench-fs-$$ # the pod's path; the host's /srv does not have it
[ ! -e "$BIG" ] || bench_die "$BIG exists on this machine: it must be pod-only"
head -c $((BIG_MB * 1048576)) /dev/urandom >"$BIG_HOST" || bench_die "cannot write $BIG_HOST"
trap 'rm -f "$BIG_HOST"; bench_cleanup' EXIT
declare -A BIGMS
for r in $(seq "$BENCH_REPS"); do
	for k in 0 1; do
		case $(((r + k) % 2)) in
		0) timed_native sh -c "cat $BIG >/dev/null"; cfg=native ;;
		1) timed_traced -- sh -c "cat $BIG >/dev/null"; cfg=traced ;;
		esac
		check_run "cat $BIG ($cfg)" || exit 1
		BIGMS[$cfg]+=" $ELAPSED_MS"
	done
done
# shellcheck disable=SC2086
{ big_n=$(median ${BIGMS[native]}) big_t=$(median ${BIGMS[traced]}); }
mbs() { awk -v ms="$1" -v mb="$BIG_MB" 'BEGIN { printf "%.0f", mb / (ms / 1000) }'; }
bench_log "-- (b) $BIG_MB MB pod-only file read sequentially (cat), wall ms and MB/s"
printf '%-44s %10s %8s\n' configuration ms MB/s
printf '%-44s %10s %8s\n' "pod-local cat (native in pod)" "$big_n" "$(mbs "$big_n")"
printf '%-44s %10s %8s\n' "mirrord-trace, read mode (cat >/dev/null)" "$big_t" "$(mbs "$big_t")"
summary "8b fs ${BIG_MB} MB remote read: pod-local cat $(mbs "$big_n") MB/s, mirrord-trace $(mbs "$big_t") MB/s ($(ratio "$(mbs "$big_t")" "$(mbs "$big_n")")x)"
rm -f "$BIG_HOST"
fi

# ---- (c) per-open overhead on a local path ----
if want c; then
declare -A OPNS
for r in $(seq "$BENCH_REPS"); do
	run_ws "$BT/loops" open "$OPEN_N"
	check_run "loops open (untraced)" || exit 1
	OPNS[untraced]+=" $(field 3)"
	timed_traced --fs-mode read -- "$BT/loops" open "$OPEN_N"
	check_run "loops open (read)" || exit 1
	OPNS[read]+=" $(field 3)"
	timed_traced --fs-mode local -- "$BT/loops" open "$OPEN_N"
	check_run "loops open (local)" || exit 1
	OPNS[local]+=" $(field 3)"
done
stops_per_open "$OPEN_N"
per_open=$PER_OPEN
# shellcheck disable=SC2086
{ o_u=$(median ${OPNS[untraced]}) o_r=$(median ${OPNS[read]}) o_l=$(median ${OPNS[local]}); }
over=$(awk -v a="$o_r" -v b="$o_u" 'BEGIN { printf "%.2f", (a - b) / 1000 }')
bench_log "-- (c) openat+close of a local path (/etc/passwd), $OPEN_N per run, us per open"
printf '%-44s %10s\n' configuration "us/open"
printf '%-44s %10s\n' "untraced (workstation)" "$(us "$o_u")"
printf '%-44s %10s\n' "mirrord-trace --fs-mode read" "$(us "$o_r")"
printf '%-44s %10s\n' "mirrord-trace --fs-mode local" "$(us "$o_l")"
bench_log "read mode: +$over us and $per_open ptrace stops per open ($STOPS_DETAIL)"
summary "8c fs local open: untraced $(us "$o_u") us, read mode $(us "$o_r") us (+$over us, $per_open stops/open), local mode $(us "$o_l") us"
fi

# ---- (d) per-open overhead on paths the pod serves (rewritten) ----
if want d; then
SMALL_HOST=$MT_POD_DIR/srv/mt-bench-open-$$
SMALL=/srv/mt-bench-open-$$ # the pod's path; the host's /srv does not have it
[ ! -e "$SMALL" ] || bench_die "$SMALL exists on this machine: it must be pod-only"
echo "pod-only file for bench/fs.sh" >"$SMALL_HOST" || bench_die "cannot write $SMALL_HOST"
trap 'rm -f "$SMALL_HOST"; bench_cleanup' EXIT
declare -A RONS
for r in $(seq "$BENCH_REPS"); do
	run_ws "$BT/loops" open "$OPEN_N" /etc/hosts
	check_run "loops open /etc/hosts (untraced)" || exit 1
	RONS[untraced]+=" $(field 3)"
	timed_traced --fs-mode read -- "$BT/loops" open "$OPEN_N" /etc/hosts
	check_run "loops open /etc/hosts (read)" || exit 1
	RONS[hosts]+=" $(field 3)"
	timed_traced --fs-mode read -- "$BT/loops" open "$REMOTE_OPEN_N" "$SMALL"
	check_run "loops open $SMALL (read)" || exit 1
	RONS[pod]+=" $(field 3)"
done
stops_per_open "$OPEN_N" /etc/hosts
hosts_stops=$PER_OPEN hosts_detail=$STOPS_DETAIL
stops_per_open "$REMOTE_OPEN_N" "$SMALL"
pod_stops=$PER_OPEN pod_detail=$STOPS_DETAIL
rm -f "$SMALL_HOST"
# shellcheck disable=SC2086
{ r_u=$(median ${RONS[untraced]}) r_h=$(median ${RONS[hosts]}) r_p=$(median ${RONS[pod]}); }
bench_log "-- (d) openat+close of paths the pod serves (path rewritten to the run's copy), us per open"
printf '%-44s %10s %12s\n' configuration "us/open" "stops/open"
printf '%-44s %10s\n' "untraced /etc/hosts (workstation)" "$(us "$r_u")"
printf '%-44s %10s %12s\n' "read mode, /etc/hosts (pod's copy)" "$(us "$r_h")" "$hosts_stops"
printf '%-44s %10s %12s\n' "read mode, pod-only file (agent open+close)" "$(us "$r_p")" "$pod_stops"
bench_log "/etc/hosts: $hosts_detail; pod-only file: $pod_detail ($OPEN_N / $REMOTE_OPEN_N opens per run)"
summary "8d fs rewritten open: untraced $(us "$r_u") us, /etc/hosts read mode $(us "$r_h") us ($hosts_stops stops/open), pod-only file $(us "$r_p") us ($pod_stops stops/open)"
fi
