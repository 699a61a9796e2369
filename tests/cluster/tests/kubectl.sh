#!/bin/bash
# Real kubectl against the fake API server, from the workstation namespace.
#   kubectl.sh VERSION CASE     CASE: get_pods_json | get_deploy | watch | delete_job
. "$(dirname "$0")/lib.sh"
VER=$1 CASE=$2
KDIR=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")
KC=$KDIR/kubectl.$VER
[ -x "$KC" ] || skip "kubectl.$VER not found next to the kubectl dispatcher ($KDIR)"
CACHE=$(mktemp -d)
OUT=$(mktemp)
cleanup() { rm -rf "$CACHE" "$OUT" "$API_OUT" "$API_OUT.h"; [ -n "${BG:-}" ] && kill "$BG" 2>/dev/null; true; }
trap cleanup EXIT
k() { in_ws "$KC" --cache-dir="$CACHE" --request-timeout=20s "$@"; }

case $CASE in
get_pods_json)
	k get pods -o json >"$OUT" || fail "kubectl get pods -o json failed"
	/usr/bin/python3 - "$OUT" "$PODS_JSON" <<'PY' || fail "get pods -o json: unexpected content"
import json, sys
got = json.load(open(sys.argv[1]))
assert got["kind"] == "List" and got["apiVersion"] == "v1", got.get("kind")
names = sorted(p["metadata"]["name"] for p in got["items"])
want = sorted(p["name"] for p in json.load(open(sys.argv[2])) if p["namespace"] == "default")
assert names == want, (names, want)
for p in got["items"]:
    assert p["kind"] == "Pod" and p["status"]["phase"] == "Running", p["metadata"]["name"]
    for cs in p["status"]["containerStatuses"]:
        assert cs["containerID"].startswith("containerd://") and len(cs["containerID"]) == 13 + 64
lolz = [p for p in got["items"] if p["metadata"]["name"].startswith("lolz-")]
assert len(lolz) == 2 and [c["name"] for c in lolz[0]["spec"]["containers"]] == ["main-container", "sidecar"]
print("ok: %d pods" % len(names))
PY
	# selectors go to the server
	k get pods -l app=lolz -o name >"$OUT" || fail "get -l failed"
	[ "$(grep -c '^pod/lolz-' "$OUT")" = 2 ] || fail "label selector: $(cat "$OUT")"
	k get pods --field-selector=metadata.name=standalone -o name >"$OUT" || fail "field selector failed"
	[ "$(cat "$OUT")" = pod/standalone ] || fail "field selector: $(cat "$OUT")"
	k get pods -A --field-selector=status.phase=Running -o name >"$OUT" || fail "phase selector"
	[ "$(wc -l <"$OUT")" -ge 7 ] || fail "phase selector: $(cat "$OUT")"
	if k get pods --field-selector=spec.bogus=x >"$OUT" 2>&1; then fail "unsupported field label accepted"; fi
	grep -q 'field label not supported: spec.bogus' "$OUT" || fail "bad field selector error: $(cat "$OUT")"
	if k get pod nosuchpod >"$OUT" 2>&1; then fail "missing pod found"; fi
	grep -q 'pods "nosuchpod" not found' "$OUT" || fail "NotFound text: $(cat "$OUT")"
	echo ok
	;;
get_deploy)
	k get deploy >"$OUT" || fail "kubectl get deploy failed"
	cat "$OUT"
	grep -qE '^NAME +READY +UP-TO-DATE +AVAILABLE +AGE' <<<"$(head -1 "$OUT")" || fail "header"
	grep -qE '^lolz +2/2 +2 +2 ' "$OUT" || fail "lolz row"
	k get deploy lolz -n lolzspace -o jsonpath='{.spec.replicas} {.spec.selector.matchLabels.app}' >"$OUT" || fail "get deploy -n"
	[ "$(cat "$OUT")" = "1 lolz" ] || fail "jsonpath: $(cat "$OUT")"
	k get sts,rs,svc,cronjobs,jobs,nodes,ns -A >"$OUT" || fail "get other kinds"
	grep -q 'statefulset.apps/redis' "$OUT" && grep -q 'node/mtc-node-1' "$OUT" || fail "kinds: $(cat "$OUT")"
	# The SPEC's CronJob, and an AGE on every row (up fills creationTimestamp).
	grep -qE '^default +cronjob.batch/nightly +0 3 \* \* \* +' "$OUT" || fail "no cronjob row: $(cat "$OUT")"
	grep -q '<unknown>' "$OUT" && fail "an object without creationTimestamp: $(grep '<unknown>' "$OUT")"
	echo ok
	;;
watch)
	pod=$(pod_name default meshed-) || fail "no meshed pod"
	orig=$("$CLUSTER/admin" raw "{\"op\":\"get\",\"resource\":\"pods\",\"namespace\":\"default\",\"name\":\"$pod\"}" |
		/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["object"]["status"]))') ||
		fail "cannot read the pod's status"
	restore() { "$CLUSTER/admin" pod-status default "$pod" "$orig" >/dev/null; }
	in_ws "$KC" --cache-dir="$CACHE" get pod "$pod" -w >"$OUT" 2>&1 &
	BG=$!
	wait_until 15 grep -q "$pod .*Running" "$OUT" || fail "watch: no initial line: $(cat "$OUT")"
	reason=Mtc$RANDOM
	"$CLUSTER/admin" pod-status default "$pod" \
		"{\"containerStatuses\":[{\"name\":\"istio-proxy\",\"ready\":false,\"restartCount\":1,\"image\":\"mt/sleep:1\",\"imageID\":\"\",\"state\":{\"waiting\":{\"reason\":\"$reason\"}}}]}" >/dev/null ||
		fail "admin hook failed"
	wait_until 15 grep -q "$pod .*$reason" "$OUT" || { restore; fail "watch did not show the change: $(cat "$OUT")"; }
	restore # other tests look at this pod
	restored() { grep -q "$pod .*2/2 .*Running" <<<"$(tail -n 1 "$OUT")"; }
	wait_until 15 restored || fail "watch did not show the restore: $(cat "$OUT")"
	cat "$OUT"
	kill "$BG" 2>/dev/null; wait "$BG" 2>/dev/null; BG=
	echo ok
	;;
delete_job)
	job=mtc-job-$VER-$RANDOM
	job=${job//./-}
	code=$(api POST /apis/batch/v1/namespaces/default/jobs "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"$job\"},\"spec\":{\"template\":{\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\",\"image\":\"mt/sleep:1\"}]}}}}")
	[ "$code" = 201 ] || fail "create job: $code $(cat "$API_OUT")"
	has_running_pod() { k get pods -l "job-name=$job" -o jsonpath='{.items[*].status.phase}' | grep Running >/dev/null; }
	wait_until 15 has_running_pod || fail "job pod never ran: $(k get pods -l job-name=$job 2>&1)"
	pod=$(k get pods -l "batch.kubernetes.io/job-name=$job" -o jsonpath='{.items[0].metadata.name}')
	k get job "$job" >"$OUT" || fail "get job"
	k delete job "$job" --cascade=background >"$OUT" 2>&1 || fail "kubectl delete job: $(cat "$OUT")"
	cat "$OUT"
	grep -q "job.batch \"$job\" deleted" "$OUT" || fail "delete output"
	no_pods() { [ -z "$(k get pods -l "job-name=$job" -o name)" ]; }
	wait_until 15 no_pods || fail "background cascade left the pod: $(k get pods -l job-name=$job)"
	if k get job "$job" >"$OUT" 2>&1; then fail "job still there"; fi
	grep -q "jobs.batch \"$job\" not found" "$OUT" || fail "NotFound: $(cat "$OUT")"
	if grep -q "\"$pod\"" "$PODS_JSON"; then fail "pods.json still lists $pod"; fi
	echo ok
	;;
*) fail "unknown case $CASE" ;;
esac
