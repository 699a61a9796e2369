#!/bin/bash
# k8s/portforward.c against the fake API server's WebSocket v4
# port-forward: 4 MiB echoed both ways through pod/standalone:8080 (sha256),
# the error channel of a closed port, an error-channel message on an open
# port (portforward_error), the port prefixes (and that message) in the same
# packet as the 101 (portforward_coalesce), and a drop (admin fault
# portforward_drop) followed by a reconnect of the same session.
# Usage: pf_cluster.sh PF_CLIENT
. "$(dirname "$0")/../cluster/tests/lib.sh"
PF=$1
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
ADMIN="$CLUSTER/admin"
trap '"$ADMIN" reset >/dev/null 2>&1' EXIT
APILOG=$MTC_DIR/logs/apiserver
LOGSTART=$(stat -c %s "$APILOG")
newlog() { tail -c +"$((LOGSTART + 1))" "$APILOG"; }

run() { T=60 in_ws "$PF" "$@" || fail "pf_client $*"; }
run echo default standalone 8080 4
"$ADMIN" fault ws_split 7 >/dev/null || fail "admin fault ws_split"
run echo default standalone 8080 1
"$ADMIN" fault ws_split 0 >/dev/null
run closed default standalone 9
# The kubelet's error text on an open port's error channel.
"$ADMIN" fault portforward_error '"injected by pf_cluster.sh"' >/dev/null || fail "admin fault portforward_error"
PF_EXPECT="uid $(pod_uid default standalone): injected by pf_cluster.sh" run error default standalone 8080
# The 101 head, the port prefixes and the error message in one TLS record.
"$ADMIN" fault portforward_coalesce true >/dev/null || fail "admin fault portforward_coalesce"
PF_EXPECT="injected by pf_cluster.sh" run error default standalone 8080
"$ADMIN" fault portforward_error '""' >/dev/null
# The 101 head and the port prefixes in one TLS record, then 1 MiB each way.
run echo default standalone 8080 1
"$ADMIN" fault portforward_coalesce false >/dev/null
n=$(newlog | grep -c 'fault portforward_coalesce: the 101 and [1-9][0-9]* more bytes in one write')
[ "$n" = 2 ] || fail "portforward_coalesce fired $n times, not 2"
"$ADMIN" fault portforward_drop 1000000 >/dev/null || fail "admin fault portforward_drop"
PF_AFTER_DROP_CMD="$ADMIN fault portforward_drop 0 >/dev/null" run drop default standalone 8080
echo "PASS"
