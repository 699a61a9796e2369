#!/bin/bash
# A shell in a pod (ip netns exec + nsenter) resolves lolz.default.svc.cluster.local
# and curls it; short names, pod records and kubernetes.default.svc work too.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl not installed"
pod=$(pod_name default standalone) || fail "no standalone pod"
pid=$(pod_pid default "$pod") || fail "no pid"
netns=$(/usr/bin/python3 -c 'import json,sys
print([p["netnsName"] for p in json.load(open(sys.argv[1])) if p["name"] == sys.argv[2]][0])' "$PODS_JSON" "$pod")
in_pod() { timeout 20 ip netns exec "$netns" nsenter -t "$pid" -m -u -- "$@"; }
out=$(in_pod sh -c 'getent hosts lolz.default.svc.cluster.local') || fail "resolve: $out"
grep -q '^10\.96\.' <<<"$out" || fail "not a ClusterIP: $out"
body=$(in_pod curl -sS -m 5 http://lolz.default.svc.cluster.local/) || fail "curl: $body"
[ "$body" = "hello from the pod" ] || fail "body: $body"
body=$(in_pod curl -sS -m 5 http://lolz/) || fail "short name: $body"
in_pod getent hosts redis.lolzspace >/dev/null || fail "ns-qualified short name"
in_pod getent hosts redis-0.redis.lolzspace.svc.cluster.local >/dev/null || fail "statefulset pod record"
ip=$(/usr/bin/python3 -c 'import json,sys
print([p["ip"] for p in json.load(open(sys.argv[1])) if p["name"] == "redis-0"][0])' "$PODS_JSON")
in_pod getent hosts "${ip//./-}.lolzspace.pod.cluster.local" | grep "$ip" >/dev/null || fail "pod A record"
in_pod sh -c 'curl -sS -m 5 --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt https://kubernetes.default.svc/version' | grep gitVersion >/dev/null || fail "kubernetes.default.svc"
[ "$(in_pod hostname)" = "$pod" ] || fail "hostname"
in_pod cat /var/run/secrets/kubernetes.io/serviceaccount/namespace | grep -x default >/dev/null || fail "sa namespace"
grep -qzx 'LOLZ_SERVICE_HOST=10.96.0.20' "/proc/$pid/environ" || fail "service env"
grep -q "pod.*/[0-9a-f]\{64\}$" "/proc/$pid/cgroup" || fail "cgroup: $(cat /proc/$pid/cgroup)"
if in_pod curl -sS -m 2 http://example.com/ >/dev/null 2>&1; then fail "reached example.com"; fi
# kube-dns follows the kubelet: a pod POSTed now gets its A record, and
# loses it when it is deleted (dnsmasq --hostsdir, re-read through inotify).
probe=dns-probe-$$
trap 'api DELETE "/api/v1/namespaces/default/pods/$probe" >/dev/null 2>&1; rm -f "$API_OUT" "$API_OUT.h"' EXIT
code=$(api POST /api/v1/namespaces/default/pods "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$probe\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"mt/sleep:1\"}]}}")
[ "$code" = 201 ] || fail "create $probe: $code $(cat "$API_OUT")"
probe_ip() {
	api GET "/api/v1/namespaces/default/pods/$probe" >/dev/null &&
		/usr/bin/python3 -c 'import json,sys
st = json.load(open(sys.argv[1])).get("status", {})
sys.exit(0 if st.get("phase") == "Running" and st.get("podIP") else 1)' "$API_OUT"
}
wait_until 20 probe_ip || fail "$probe is not Running: $(cat "$API_OUT")"
pip=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"]["podIP"])' "$API_OUT")
rec="${pip//./-}.default.pod.cluster.local"
resolves() { in_pod getent hosts "$rec" | grep -q "^$pip "; }
wait_until 5 resolves || fail "no A record $rec for the POSTed pod $probe"
echo "ok: $rec -> $pip (pod started after up)"
code=$(api DELETE "/api/v1/namespaces/default/pods/$probe")
[ "$code" = 200 ] || fail "delete $probe: $code"
gone() { [ "$(api GET "/api/v1/namespaces/default/pods/$probe")" = 404 ]; }
wait_until 20 gone || fail "$probe not deleted"
wait_until 5 eval '! resolves' || fail "$rec still resolves after $probe was deleted"
echo "ok: $rec is gone with its pod"
# the workstation reaches the API server and nothing else
if in_ws curl -sS -m 2 http://10.96.0.20/ >/dev/null 2>&1; then fail "workstation reached a ClusterIP"; fi
[ "$(ip -n "$WORKSTATION_NETNS_NAME" route | wc -l)" = 1 ] || fail "workstation routes: $(ip -n "$WORKSTATION_NETNS_NAME" route)"
echo ok
