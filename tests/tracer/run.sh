#!/bin/sh
# Scenario driver for tests that need more than one exit code:
#   run.sh status WANT -- cmd...      exit status of cmd must be WANT
#   run.sh jobctl HARNESS PROBE       SIGSTOP/SIGCONT stop and resume the program
#   run.sh killtracer HARNESS PROBE   SIGKILL of the tracer kills the program
#   run.sh daemon HARNESS PROBE       the tracer waits for a daemonised child
# Every wait is bounded.
set -u
mode=$1; shift
dir=$(mktemp -d /tmp/mt-tracer-test.XXXXXX) || exit 2
trap 'rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

# wait_for FILE TENTHS
wait_for() {
	i=0
	while [ ! -s "$1" ]; do
		i=$((i + 1)); [ "$i" -gt "$2" ] && return 1
		sleep 0.1
	done
}

tick() { cat "$dir/pid.tick" 2>/dev/null || echo -1; }

state() { sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null; }

case $mode in
status)
	want=$1; shift; [ "$1" = "--" ] && shift
	timeout -k 5 60 "$@"; rc=$?
	echo "exit status $rc (want $want)"
	[ "$rc" -eq "$want" ] || fail "status $rc"
	;;
jobctl)
	harness=$1 probe=$2
	timeout -k 5 60 "$harness" -- "$probe" sleeper "$dir/pid" & hpid=$!
	wait_for "$dir/pid" 50 || fail "program did not start"
	pid=$(cat "$dir/pid")
	sleep 0.3; t0=$(tick); sleep 0.3; t1=$(tick)
	[ "$t1" -gt "$t0" ] || fail "not ticking before SIGSTOP ($t0 $t1)"
	kill -STOP "$pid"; sleep 0.3
	t2=$(tick); st=$(state "$pid"); sleep 0.5; t3=$(tick)
	echo "stopped: state=$st ticks $t2 -> $t3"
	[ "$t3" -eq "$t2" ] || fail "still ticking after SIGSTOP ($t2 $t3)"
	case $st in t|T) ;; *) fail "state '$st' after SIGSTOP" ;; esac
	kill -CONT "$pid"; sleep 0.5; t4=$(tick)
	echo "continued: ticks $t3 -> $t4"
	[ "$t4" -gt "$t3" ] || fail "not ticking after SIGCONT ($t3 $t4)"
	kill -TERM "$hpid"  # forwarded to the program; harness re-raises
	wait "$hpid"; rc=$?
	echo "harness status $rc"
	[ "$rc" -eq 143 ] || fail "harness status $rc, want 143"
	;;
killtracer)
	harness=$1 probe=$2
	"$harness" -- "$probe" sleeper "$dir/pid" & hpid=$!
	wait_for "$dir/pid" 50 || fail "program did not start"
	pid=$(cat "$dir/pid")
	kill -KILL "$hpid"; wait "$hpid" 2>/dev/null
	i=0
	while st=$(state "$pid"); [ -n "$st" ] && [ "$st" != Z ]; do
		i=$((i + 1)); [ "$i" -gt 30 ] && fail "program $pid survived the tracer (state $st)"
		sleep 0.1
	done
	echo "program gone after tracer SIGKILL (state '${st:-reaped}')"
	;;
daemon)
	harness=$1 probe=$2
	timeout -k 5 60 "$harness" -- "$probe" daemon "$dir/done"; rc=$?
	echo "harness status $rc; daemon file: $(cat "$dir/done" 2>/dev/null)"
	[ "$rc" -eq 5 ] || fail "status $rc, want 5"
	grep -q "daemon-done 4242" "$dir/done" 2>/dev/null ||
		fail "harness returned before the daemon finished"
	;;
*)
	fail "unknown mode $mode"
	;;
esac
echo PASS
