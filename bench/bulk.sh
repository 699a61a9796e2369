#!/bin/bash
# bench/bulk.sh: throughput of one relayed connection.
# bench/httpc downloads BENCH_BULK_BYTES (default 1 GiB) with one
# GET /bytes?n=N from bench/srv in the service pod (the fixture's Python
# server stops at 256 MiB and is CPU-bound) and reports MB/s (10^6 bytes/s,
# from before connect to the last byte). Configurations interleaved as in
# short.sh: native in pod, mirrord-trace, proxychains4+microsocks in the pod.
# Targets: traced >= 50% of native, traced >= proxychains.
. "$(dirname "$0")/lib.sh"

BYTES=${BENCH_BULK_BYTES:-1073741824}
CFGS=(native traced proxy)

bench_require
bench_build httpc srv
bench_pod
bench_server
bench_socks

declare -A V
cmd=("$BT/httpc" bulk "$HTTP_IP" "$BENCH_SRV_PORT" "$BYTES")
for r in $(seq "$BENCH_REPS"); do
	for k in 0 1 2; do
		cfg=${CFGS[$(((r + k) % 3))]}
		case $cfg in
		native) run_native "${cmd[@]}" ;;
		traced) run_traced -- "${cmd[@]}" ;;
		proxy) run_proxy -- "${cmd[@]}" ;;
		esac
		check_run "${cmd[*]} ($cfg)" || exit 1
		V[$cfg]+=" $(field 4)"
	done
done

bench_log ""
bench_log "== 3. bulk: $BYTES bytes through one connection ($HTTP_IP:$BENCH_SRV_PORT/bytes); $BENCH_REPS runs per configuration"
printf '%-30s %10s %20s %12s\n' configuration "MB/s" "(min-max)" "vs native"
for cfg in native traced proxy; do
	case $cfg in native) label="native in pod" ;; traced) label="mirrord-trace (workstation)" ;; proxy) label="proxychains4+microsocks (pod)" ;; esac
	# shellcheck disable=SC2086
	printf '%-30s %10.1f %20s %11.1f%%\n' "$label" "$(median ${V[$cfg]})" "($(minv ${V[$cfg]})-$(maxv ${V[$cfg]}))" \
		"$(awk -v a="$(median ${V[$cfg]})" -v b="$(median ${V[native]})" 'BEGIN { print 100 * a / b }')"
done
# shellcheck disable=SC2086
n=$(median ${V[native]}) t=$(median ${V[traced]}) x=$(median ${V[proxy]})
pct=$(awk -v a="$t" -v b="$n" 'BEGIN { printf "%.1f", 100 * a / b }')
summary "$(printf '3 bulk 1 conn    native %7.1f MB/s  traced %7.1f MB/s (%s%%, target >= 50%%) %s  proxychains %7.1f MB/s (target traced >= it) %s' \
	"$n" "$t" "$pct" "$(verdict "$pct >= 50")" "$x" "$(verdict "$t >= $x")")"
