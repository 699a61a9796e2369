#!/bin/bash
# kubectl port-forward against the fake API server, from the workstation namespace.
#   portforward.sh VERSION CASE
#   CASE: echo      4 MiB each way through pod/standalone (sha256), two connections at
#                   once; 1.29 must use SPDY/3.1, 1.31+ the SPDY-in-WebSocket tunnel
#         fallback  WebSocket upgrades refused (fault portforward_ws=false): 1.31+ falls
#                   back to SPDY and still works
#         closed    a port nothing listens on: the kubelet-style error on the error
#                   stream, kubectl says "lost connection to pod" and exits
#         drop      fault portforward_drop: the connection is cut mid-download; the
#                   client sees a short read and kubectl exits
#         error     fault portforward_error: an open port's error stream carries the
#                   kubelet-style text; kubectl prints it and exits as for "closed"
#         coalesce  fault portforward_coalesce: SPDY bytes (a server PING) in the same
#                   packet as the 101; kubectl forwards as usual; 1.31+ (SPDY in
#                   WebSocket) answers the ping, 1.29/1.30 (direct SPDY) lose it
. "$(dirname "$0")/lib.sh"
VER=$1 CASE=$2
KDIR=$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")
KC=$KDIR/kubectl.$VER
[ -x "$KC" ] || skip "kubectl.$VER not found next to the kubectl dispatcher ($KDIR)"
CACHE=$(mktemp -d)
WORK=$(mktemp -d)
BG=
cleanup() {
	[ -n "$BG" ] && kill "$BG" 2>/dev/null && wait "$BG" 2>/dev/null
	"$CLUSTER/admin" reset >/dev/null 2>&1
	rm -rf "$CACHE" "$WORK" "$API_OUT" "$API_OUT.h"
	true
}
trap cleanup EXIT
APILOG=$MTC_DIR/logs/apiserver
LOGSTART=$(stat -c %s "$APILOG")
newlog() { tail -c +"$((LOGSTART + 1))" "$APILOG"; }
LPORT=$((20000 + RANDOM % 20000))

# forward PORT: kubectl port-forward pod/standalone LPORT:PORT in the background.
forward() {
	T=60 in_ws "$KC" --cache-dir="$CACHE" port-forward pod/standalone "$LPORT:$1" >"$WORK/kubectl.out" 2>&1 &
	BG=$!
	wait_until 15 grep -q "^Forwarding from 127.0.0.1:$LPORT -> $1" "$WORK/kubectl.out" ||
		fail "kubectl port-forward did not start: $(cat "$WORK/kubectl.out")"
}
lcurl() { T=40 in_ws curl -sS -m 30 "$@"; }
# sha256 of /bytes?n=N as the pod serves it (tests/pod/servers.py PATTERN)
pattern_sha() {
	/usr/bin/python3 -c 'import hashlib, sys
sys.path.insert(0, sys.argv[1]); from servers import PATTERN
n = int(sys.argv[2]); d = PATTERN * (n // len(PATTERN) + 1)
print(hashlib.sha256(d[:n]).hexdigest())' "$(dirname "$CLUSTER")/pod" "$1"
}
exited() { ! kill -0 "$BG" 2>/dev/null; }
want_proto() {
	local want=$1
	newlog | grep "portforward default/standalone: $want by" >/dev/null ||
		fail "API server did not see a $want port-forward: $(newlog | grep portforward)"
	echo "ok: kubectl.$VER used $want"
}
echo_both_ways() {
	local N=$((4 << 20))
	[ "$(lcurl "http://127.0.0.1:$LPORT/")" = "hello from the pod" ] || fail "GET / through the forward"
	head -c "$N" /dev/urandom >"$WORK/up.bin"
	# two connections at once: upload+echo and a download
	lcurl --data-binary @"$WORK/up.bin" -H 'Content-Type: application/octet-stream' \
		"http://127.0.0.1:$LPORT/echo" -o "$WORK/echoed.bin" &
	local c1=$!
	lcurl "http://127.0.0.1:$LPORT/bytes?n=$N" -o "$WORK/down.bin" || fail "download failed"
	wait "$c1" || fail "upload/echo failed"
	[ "$(sha256sum <"$WORK/up.bin")" = "$(sha256sum <"$WORK/echoed.bin")" ] || fail "echoed 4 MiB differ"
	[ "$(sha256sum <"$WORK/down.bin" | cut -d' ' -f1)" = "$(pattern_sha "$N")" ] || fail "downloaded 4 MiB differ"
	echo "ok: 4 MiB up+echo and 4 MiB down, sha256 equal, two connections at once"
}

case $CASE in
echo)
	forward 8080
	echo_both_ways
	case $VER in 1.29 | 1.30) want_proto spdy ;; *) want_proto ws-tunnel ;; esac
	;;
fallback)
	"$CLUSTER/admin" fault portforward_ws false >/dev/null || fail "admin fault"
	forward 8080
	echo_both_ways
	want_proto spdy
	newlog | grep 'GET /api/v1/namespaces/default/pods/standalone/portforward HTTP/1.1" 400' >/dev/null ||
		fail "no refused WebSocket attempt first"
	echo "ok: refused WebSocket upgrade, fell back to SPDY"
	;;
closed)
	forward 9
	if lcurl "http://127.0.0.1:$LPORT/" >"$WORK/curl.out" 2>&1; then fail "closed port answered"; fi
	wait_until 15 exited || fail "kubectl still running after the error stream message"
	cat "$WORK/kubectl.out"
	grep -q 'error forwarding port 9 to pod standalone, uid [0-9a-f-]*: failed to execute portforward in network namespace.*connect: connection refused' \
		"$WORK/kubectl.out" || fail "no kubelet-style error: $(cat "$WORK/kubectl.out")"
	grep -q '^error: lost connection to pod' "$WORK/kubectl.out" || fail "no 'lost connection to pod'"
	echo ok
	;;
drop)
	forward 8080
	"$CLUSTER/admin" fault portforward_drop 1000000 >/dev/null || fail "admin fault"
	N=$((8 << 20))
	lcurl "http://127.0.0.1:$LPORT/bytes?n=$N" -o "$WORK/down.bin" >"$WORK/curl.out" 2>&1
	got=$(stat -c %s "$WORK/down.bin" 2>/dev/null || echo 0)
	[ "$got" -lt "$N" ] || fail "the whole download arrived despite portforward_drop"
	wait_until 20 exited || fail "kubectl still running after the connection was cut"
	newlog | grep 'fault portforward_drop: cutting' >/dev/null || fail "the fault did not fire"
	echo "ok: cut after $got of $N bytes; kubectl: $(tail -n 1 "$WORK/kubectl.out")"
	;;
error)
	"$CLUSTER/admin" fault portforward_error '"injected by portforward.sh"' >/dev/null || fail "admin fault"
	forward 8080
	if lcurl "http://127.0.0.1:$LPORT/" >"$WORK/curl.out" 2>&1; then fail "the port answered despite the fault"; fi
	wait_until 15 exited || fail "kubectl still running after the error stream message"
	cat "$WORK/kubectl.out"
	grep -q "error forwarding port 8080 to pod standalone, uid $(pod_uid default standalone): injected by portforward.sh" \
		"$WORK/kubectl.out" || fail "kubectl did not show the error stream text"
	grep -q '^error: lost connection to pod' "$WORK/kubectl.out" || fail "no 'lost connection to pod'"
	echo ok
	;;
coalesce)
	"$CLUSTER/admin" fault portforward_coalesce true >/dev/null || fail "admin fault"
	forward 8080
	[ "$(lcurl "http://127.0.0.1:$LPORT/")" = "hello from the pod" ] || fail "GET / through the forward"
	newlog | grep -q 'fault portforward_coalesce: the 101 and [1-9][0-9]* more bytes in one write' ||
		fail "the fault did not fire"
	answered() { tail -c +"$((LOGSTART + 1))" "$APILOG" | grep -q 'the client answered server ping 2'; }
	case $VER in
	1.29 | 1.30)
		# Direct SPDY: client-go's SpdyRoundTripper reads the 101 through a
		# bufio.Reader and then drops it, so SPDY bytes that came in the same
		# read are lost: here one whole PING frame, so the stream stays in
		# step and forwarding works. (Observed with 1.29, 1.30 and 1.32's SPDY
		# fallback; real kubelets never speak first on SPDY.) Should a kubectl
		# start answering, this check says so.
		sleep 3
		answered && fail "kubectl.$VER answered the PING sent with the 101: client-go now keeps those bytes"
		echo "ok: kubectl.$VER lost the PING that came with the 101 (client-go), and still forwarded"
		;;
	*)
		wait_until 10 answered ||
			fail "kubectl.$VER did not answer the PING sent in the same packet as the 101: $(newlog | grep portforward)"
		echo "ok: kubectl.$VER read the SPDY PING that came with the 101 (in the tunnel), answered it, and forwarded"
		;;
	esac
	;;
*) fail "unknown case $CASE" ;;
esac
