#!/bin/bash
# bench/short.sh: many short TCP connections through the relay.
# bench/httpc does COUNT sequential "GET /" to bench/srv in the service pod,
# one new connection each, and reports the mean time per request (and p50,
# p99). Configurations, interleaved (order rotating), BENCH_REPS each:
#   native   inside the target container (nsenter: pod netns, mounts, env)
#   traced   under mirrord-trace in the workstation netns (fresh agent per run)
#   proxy    proxychains4 + microsocks, both inside the pod (LD_PRELOAD+SOCKS5)
# Two variants: by IP (COUNT=BENCH_SHORT_N, default 2000) and by name
# ("web", resolved through the pod's DNS before every request,
# BENCH_SHORT_NAME_N, default 500; proxychains uses proxy_dns there, so
# microsocks resolves). Targets (by IP): traced <= 1.5x native, traced < proxy.
. "$(dirname "$0")/lib.sh"

N=${BENCH_SHORT_N:-2000}
NN=${BENCH_SHORT_NAME_N:-500}
TARGET=1.5
CFGS=(native traced proxy)

bench_require
bench_build httpc srv
bench_pod
bench_server
bench_socks

declare -A MEAN P50 P99
for r in $(seq "$BENCH_REPS"); do
	for variant in ip name; do
		if [ $variant = ip ]; then host=$HTTP_IP count=$N conf=$BT/pc.conf; else host=$HTTP_SHORT_NAME count=$NN conf=$BT/pc-dns.conf; fi
		cmd=("$BT/httpc" get "$host" "$BENCH_SRV_PORT" "$count")
		for k in 0 1 2; do
			cfg=${CFGS[$(((r + k) % 3))]}
			case $cfg in
			native) run_native "${cmd[@]}" ;;
			traced) run_traced -- "${cmd[@]}" ;;
			proxy) run_proxy "$conf" -- "${cmd[@]}" ;;
			esac
			check_run "${cmd[*]} ($cfg)" || exit 1
			MEAN[$variant.$cfg]+=" $(field 3)"
			P50[$variant.$cfg]+=" $(field 4)"
			P99[$variant.$cfg]+=" $(field 5)"
		done
	done
done

us() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }'; }
bench_log ""
bench_log "== 2. short connections: sequential GET /, new TCP connection each, one client process; $BENCH_REPS runs per configuration"
bench_log "   time per request in us: median over runs of (mean, p50, p99 within a run); ratio of means vs native-in-pod"
printf '%-30s %10s %10s %10s %9s %s\n' configuration mean p50 p99 ratio ""
for variant in ip name; do
	if [ $variant = ip ]; then bench_log "-- by IP ($HTTP_IP:$BENCH_SRV_PORT), $N requests per run"; else bench_log "-- by name ('$HTTP_SHORT_NAME', resolved per request), $NN requests per run"; fi
	# shellcheck disable=SC2086
	base=$(median ${MEAN[$variant.native]})
	for cfg in native traced proxy; do
		case $cfg in native) label="native in pod" ;; traced) label="mirrord-trace (workstation)" ;; proxy) label="proxychains4+microsocks (pod)" ;; esac
		# shellcheck disable=SC2086
		m=$(median ${MEAN[$variant.$cfg]}) p=$(median ${P50[$variant.$cfg]}) q=$(median ${P99[$variant.$cfg]})
		printf '%-30s %10s %10s %10s %8sx\n' "$label" "$(us "$m")" "$(us "$p")" "$(us "$q")" "$(ratio "$m" "$base")"
	done
	# shellcheck disable=SC2086
	t=$(median ${MEAN[$variant.traced]}) x=$(median ${MEAN[$variant.proxy]})
	rt=$(ratio "$t" "$base") rx=$(ratio "$t" "$x")
	if [ $variant = ip ]; then
		summary "$(printf '2 short by IP   native %7s us  traced %7s us (%sx, target <= %s) %s  proxychains %7s us (traced/proxy %sx, target < 1) %s' \
			"$(us "$base")" "$(us "$t")" "$rt" "$TARGET" "$(verdict "$rt <= $TARGET")" "$(us "$x")" "$rx" "$(verdict "$rx < 1")")"
	else
		summary "$(printf '2 short by name native %7s us  traced %7s us (%sx)  proxychains %7s us (traced/proxy %sx)  [no target]' \
			"$(us "$base")" "$(us "$t")" "$rt" "$(us "$x")" "$rx")"
	fi
done
