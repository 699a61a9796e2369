#!/bin/bash
# PATCH pods/ephemeralcontainers: `kubectl debug --target` (strategic merge patch)
# and the other patch types over the wire, the kubelet starting the container in
# the pod's network namespace, ephemeralContainerStatuses and pods/log.
#   ephemeral.sh VERSION
. "$(dirname "$0")/lib.sh"
VER=$1
KDIR=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")
KC=$KDIR/kubectl.$VER
[ -x "$KC" ] || skip "kubectl.$VER not found next to the kubectl dispatcher ($KDIR)"
CACHE=$(mktemp -d)
OUT=$(mktemp)
trap 'rm -rf "$CACHE" "$OUT" "$API_OUT" "$API_OUT.h"' EXIT
k() { in_ws "$KC" --cache-dir="$CACHE" --request-timeout=20s "$@"; }
WEBPID=$(pod_pid default standalone web) || fail "no standalone pod"
name=dbg-${VER/./}-$RANDOM
k debug pod/standalone --image=busybox --target=web --container="$name" -- \
	sh -c "curl -sS http://127.0.0.1:8080/; test -d /proc/$WEBPID && echo sees-target-pid; cat /etc/hostname" \
	>"$OUT" 2>&1 || fail "kubectl debug: $(cat "$OUT")"
state() { k get pod standalone -o jsonpath="{.status.ephemeralContainerStatuses[?(@.name==\"$name\")].state.terminated.exitCode}"; }
done0() { [ "$(state)" = 0 ]; }
wait_until 15 done0 || fail "ephemeral container did not finish with 0: $(k get pod standalone -o jsonpath='{.status.ephemeralContainerStatuses}')"
k logs standalone -c "$name" >"$OUT" || fail "logs -c $name"
grep -qx 'hello from the pod' "$OUT" || fail "not in the pod's network namespace: $(cat "$OUT")"
grep -qx 'sees-target-pid' "$OUT" || fail "does not see the target's processes: $(cat "$OUT")"
grep -qx 'standalone' "$OUT" || fail "hostname: $(cat "$OUT")"
k get pod standalone -o jsonpath="{.spec.ephemeralContainers[?(@.name==\"$name\")].targetContainerName}" >"$OUT"
[ "$(cat "$OUT")" = web ] || fail "spec: $(cat "$OUT")"
grep -q "\"$name\"" "$PODS_JSON" || fail "pods.json does not list $name"
echo "ok: kubectl.$VER debug --target=web: ran in the pod's netns, saw the target, status terminated 0, logs"

# the wire, with curl: patch types, validation
P=/api/v1/namespaces/default/pods/standalone/ephemeralcontainers
patch() { # CTYPE BODY [QUERY]
	in_ws curl -sS -m 20 -o "$API_OUT" -w '%{http_code}' --cacert "$CA_CERT" -H "Authorization: Bearer $ADMIN_TOKEN" \
		-X PATCH -H "Content-Type: $1" --data-binary "$2" "$API_SERVER$P${3:-}"
}
expect() { # NAME CODE GOT PATTERN
	[ "$2" = "$3" ] && grep -q -- "$4" "$API_OUT" || fail "$1: $3 $(cat "$API_OUT")"
	echo "ok: $1"
}
n2=m${RANDOM}
expect "merge-patch with a port: 422 Forbidden" 422 "$(patch application/merge-patch+json \
	"{\"spec\":{\"ephemeralContainers\":[{\"name\":\"$n2\",\"image\":\"busybox\",\"ports\":[{\"containerPort\":1}]}]}}")" \
	"spec.ephemeralContainers\[0\].ports: Forbidden: cannot be set for an Ephemeral Container"
expect "strict unknown field: 400" 400 "$(patch application/strategic-merge-patch+json \
	"{\"spec\":{\"ephemeralContainers\":[{\"name\":\"$n2\",\"image\":\"busybox\",\"bogus\":1}]}}" '?fieldValidation=Strict')" \
	'strict decoding error: unknown field \\"spec.ephemeralContainers\[[0-9]*\].bogus\\"'
expect "bad target: 422 Not found" 422 "$(patch application/strategic-merge-patch+json \
	"{\"spec\":{\"ephemeralContainers\":[{\"name\":\"$n2\",\"image\":\"busybox\",\"targetContainerName\":\"nope\"}]}}")" \
	'targetContainerName: Not found: \\"nope\\"'
expect "json-patch add: 200" 200 "$(patch application/json-patch+json \
	"[{\"op\":\"add\",\"path\":\"/spec/ephemeralContainers/-\",\"value\":{\"name\":\"$n2\",\"image\":\"busybox\",\"command\":[\"true\"]}}]")" \
	"\"name\": \"$n2\""
expect "changing an existing one: 422" 422 "$(patch application/json-patch+json \
	"[{\"op\":\"replace\",\"path\":\"/spec/ephemeralContainers/0/image\",\"value\":\"alpine\"}]")" \
	'may not be changed'
expect "merge-patch that drops them: 422" 422 "$(patch application/merge-patch+json '{"spec":{"ephemeralContainers":[]}}')" \
	'may not be removed'
expect "yaml apply: 415" 415 "$(patch application/yaml '{}')" UnsupportedMediaType
echo ok
