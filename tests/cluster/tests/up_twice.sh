#!/bin/bash
# up is idempotent: on a healthy cluster a second `up` with the same SPEC
# says "already up" and changes nothing (API server, kube-dns and container
# pids, cluster.env, the network namespaces).
. "$(dirname "$0")/lib.sh"
spec=$(cat "$MTC_DIR/spec") || fail "no $MTC_DIR/spec"
state() {
	echo "apiserver $(cat "$MTC_DIR/apiserver.pid")"
	echo "up-pids $(tr '\n' ' ' <"$MTC_DIR/up-pids")"
	/usr/bin/python3 -c 'import json, sys
for p in json.load(open(sys.argv[1])):
    print(p["namespace"], p["name"], [c["pid"] for c in p["containers"]])' "$PODS_JSON" | sort
	stat -c 'cluster.env %i %Y' "$MTC_DIR/cluster.env"
	mtc_netns | tr '\n' ' '
}
before=$(state)
out=$(timeout 60 "$CLUSTER/up" "$spec" 2>&1) || fail "second up failed: $out"
grep -q 'already up' <<<"$out" || fail "second up did not say 'already up': $out"
after=$(state)
[ "$before" = "$after" ] || fail "second up changed the cluster: $(diff <(echo "$before") <(echo "$after"))"
echo "ok: $out"
