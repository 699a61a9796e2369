#!/bin/bash
# k8s/portforward.c against the fake API server's WebSocket v4
# port-forward: 4 MiB echoed both ways through pod/standalone:8080 (sha256),
# the error channel of a closed port, and a drop (admin fault
# portforward_drop) followed by a reconnect of the same session.
# Usage: pf_cluster.sh PF_CLIENT
. "$(dirname "$0")/../cluster/tests/lib.sh"
PF=$1
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
ADMIN="$CLUSTER/admin"
trap '"$ADMIN" fault portforward_drop 0 >/dev/null 2>&1; "$ADMIN" fault ws_split 0 >/dev/null 2>&1' EXIT

run() { T=60 in_ws "$PF" "$@" || fail "pf_client $*"; }
run echo default standalone 8080 4
"$ADMIN" fault ws_split 7 >/dev/null || fail "admin fault ws_split"
run echo default standalone 8080 1
"$ADMIN" fault ws_split 0 >/dev/null
run closed default standalone 9
"$ADMIN" fault portforward_drop 1000000 >/dev/null || fail "admin fault portforward_drop"
PF_AFTER_DROP_CMD="$ADMIN fault portforward_drop 0 >/dev/null" run drop default standalone 8080
echo "PASS"
