#!/bin/bash
# bench/k8s.sh: the Kubernetes path, on tests/cluster (brought up here if it
# is not, and down again at the end; needs the cluster to be otherwise idle).
#  1. Port-forward throughput through the API server, one 256 MiB download
#     from pod/standalone:8080 per run, interleaved: our port-forward client
#     (k8s/portforward.c, tests/k8s/pf_client get), `kubectl port-forward` +
#     curl, and the whole product path (`mirrord-trace exec -t pod/standalone
#     -- curl` of the Service: relay, agent, port-forward). Target: ours >=
#     kubectl's.
#  2. Start-up: `mirrord-trace exec -q -t deploy/lolz -n lolzspace -- true`,
#     split by the "startup:" info line into our own work (kubeconfig and
#     client, target resolution, Job create, port-forward, handshake) and the
#     cluster's (pod start, agent start and its ready line). Target: our own
#     work <= 300 ms.
. "$(dirname "$0")/lib.sh"

MIB=${BENCH_K8S_MIB:-256}
KUBECTL=${BENCH_KUBECTL:-$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.32}
CLUSTER=$MT_SOURCE_DIR/tests/cluster
MTC_DIR=${MIRRORD_TRACE_CLUSTER_DIR:-/run/mirrord-trace-cluster}
OWN_CLUSTER=0

bench_require
[ -x "$MT_BIN_DIR/pf_client" ] || bench_die "$MT_BIN_DIR/pf_client is missing (build the tests too)"
[ -x "$KUBECTL" ] || bench_die "no kubectl at $KUBECTL (BENCH_KUBECTL)"
if ! "$CLUSTER/admin" ping >/dev/null 2>&1; then
	MIRRORD_TRACE_AGENT_BIN=$MT_AGENT timeout 120 "$CLUSTER/up" >/dev/null || bench_die "tests/cluster/up failed"
	OWN_CLUSTER=1
fi
k8s_cleanup() { [ "$OWN_CLUSTER" = 1 ] && timeout 60 "$CLUSTER/down" >/dev/null 2>&1; }
trap 'k8s_cleanup; bench_cleanup' EXIT
. "$MTC_DIR/cluster.env"
export KUBECONFIG
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
ws() { timeout "$BENCH_TIMEOUT" nsenter --net="$WORKSTATION_NETNS" -- "$@"; }
BYTES=$((MIB << 20))

# kubectl: forward a fresh local port per run, curl through it.
kubectl_run() {
	local port=$((20000 + RANDOM % 20000)) out=$BT/kpf.out bps
	ws "$KUBECTL" --cache-dir="$BT/kcache" port-forward pod/standalone "$port:8080" >"$out" 2>&1 &
	local kp=$!
	for _ in $(seq 100); do grep -q "Forwarding from" "$out" && break; sleep 0.1; done
	bps=$(ws curl -sS -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$port/bytes?n=$BYTES")
	kill "$kp" 2>/dev/null
	wait "$kp" 2>/dev/null
	awk -v b="$bps" 'BEGIN { printf "%.1f\n", b / 1e6 }'
}
ours_run() {
	ws "$MT_BIN_DIR/pf_client" get default standalone 8080 "$MIB" | awk '{ print $(NF-1) }'
}
product_run() {
	local bps
	bps=$(ws "$MT" exec -q -t pod/standalone -- curl -sS -o /dev/null -w '%{speed_download}' \
		"http://standalone.default.svc.cluster.local/bytes?n=$BYTES")
	awk -v b="$bps" 'BEGIN { printf "%.1f\n", b / 1e6 }'
}

declare -A V
CFGS=(ours kubectl product)
for r in $(seq "$BENCH_REPS"); do
	for k in 0 1 2; do
		cfg=${CFGS[$(((r + k) % 3))]}
		v=$("${cfg}_run") || bench_die "$cfg run failed"
		[ -n "$v" ] || bench_die "$cfg run printed nothing"
		V[$cfg]+=" $v"
	done
done
bench_log ""
bench_log "== k8s 1. port-forward: $MIB MiB from pod/standalone:8080 through the API server; $BENCH_REPS runs each"
printf '%-44s %10s %20s %12s\n' configuration "MB/s" "(min-max)" "vs kubectl"
for cfg in ours kubectl product; do
	case $cfg in ours) label="mirrord-trace port-forward (pf_client)" ;; kubectl) label="kubectl port-forward + curl" ;; product) label="mirrord-trace exec curl (agent + pf)" ;; esac
	# shellcheck disable=SC2086
	printf '%-44s %10.1f %20s %11.1f%%\n' "$label" "$(median ${V[$cfg]})" "($(minv ${V[$cfg]})-$(maxv ${V[$cfg]}))" \
		"$(awk -v a="$(median ${V[$cfg]})" -v b="$(median ${V[kubectl]})" 'BEGIN { print 100 * a / b }')"
done
# shellcheck disable=SC2086
o=$(median ${V[ours]}) k=$(median ${V[kubectl]}) p=$(median ${V[product]})
summary "$(printf 'k8s port-forward  ours %7.1f MB/s  kubectl %7.1f MB/s (target ours >= kubectl) %s  exec+curl %7.1f MB/s' \
	"$o" "$k" "$(verdict "$o >= $k")" "$p")"

# --- 2. start-up split
declare -A S
PHASES=(client resolve job_create pod_start agent_ready portforward handshake total)
WALL=""
for r in $(seq "$BENCH_REPS"); do
	t0=$(date +%s%N)
	line=$(MIRRORD_TRACE_LOG=info ws "$MT" exec -q -t deploy/lolz -n lolzspace -- true 2>&1 | grep "startup:") ||
		bench_die "start-up run failed"
	t1=$(date +%s%N)
	WALL+=" $(((t1 - t0) / 1000000))"
	for p in "${PHASES[@]}"; do
		S[$p]+=" $(sed -n "s/.* $p=\([0-9]*\)ms.*/\1/p" <<<"$line")"
	done
	sleep 1 # the previous agent's Job goes away in the background
done
bench_log ""
bench_log "== k8s 2. start-up of exec -t deploy/lolz (ms, median of $BENCH_REPS; the fake kubelet starts pods at once)"
for p in "${PHASES[@]}"; do
	# shellcheck disable=SC2086
	printf '  %-12s %6s  (%s-%s)\n' "$p" "$(median ${S[$p]})" "$(minv ${S[$p]})" "$(maxv ${S[$p]})"
done
# shellcheck disable=SC2086
printf '  %-12s %6s  (%s-%s)  command start to exit, Job deletion included\n' wall "$(median $WALL)" "$(minv $WALL)" "$(maxv $WALL)"
# shellcheck disable=SC2086
own=$(awk -v a="$(median ${S[client]})" -v b="$(median ${S[resolve]})" -v c="$(median ${S[job_create]})" \
	-v d="$(median ${S[portforward]})" -v e="$(median ${S[handshake]})" 'BEGIN { print a + b + c + d + e }')
# shellcheck disable=SC2086
summary "$(printf 'k8s start-up      our own work %4d ms (client+resolve+job_create+portforward+handshake, target <= 300) %s  cluster %4d ms  total %4d ms' \
	"$own" "$(verdict "$own <= 300")" "$(($(median ${S[pod_start]}) + $(median ${S[agent_ready]})))" "$(median ${S[total]})")"
