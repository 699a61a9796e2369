#!/bin/bash
# curl (dynamic glibc) under the tracer: names resolved by the pod's DNS and
# search domains, IPv6, the pod's /etc/hosts, refused and unresolvable
# targets, and megabytes in both directions.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_cmd curl sha256sum cmp

C=(curl -sS --max-time 30)
run traced "${C[@]}" "http://$HTTP_NAME:$HTTP_PORT/"
expect_rc 0 "GET by FQDN"
expect_out_eq "$HTTP_BODY" "body by FQDN"
run traced "${C[@]}" "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "body by short name (pod's search domains)"
run traced "${C[@]}" "http://$HTTP_IP:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "body by service IPv4"
run traced "${C[@]}" -g "http://[$HTTP_IP6]:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "body by service IPv6"
run traced "${C[@]}" -4 "http://$HTTP_SHORT_NAME:$HTTP_PORT/peer"
expect_out_eq "$POD_IP" "the service sees the pod's IPv4 as the client"
run traced "${C[@]}" -6 "http://$HTTP_SHORT_NAME:$HTTP_PORT/peer"
expect_out_eq "$POD_IP6" "the service sees the pod's IPv6 as the client"
run traced "${C[@]}" "http://$HTTP_SHORT_NAME:$HTTP_PORT/" "http://$HTTP_SHORT_NAME:$HTTP_PORT/echo"
expect_out_match '^GET /echo HTTP/1.1$' "two requests on one connection"

run traced "${C[@]}" "http://$POD_HOSTS_NAME:$HTTP_PORT/"
expect_rc 0 "name from the pod's /etc/hosts"
expect_out_eq "$HTTP_BODY" "body via the pod's /etc/hosts"
run traced "${C[@]}" "http://$UNRESOLVABLE_NAME:$HTTP_PORT/"
expect_rc 6 "a name nobody resolves: curl 'could not resolve host'"
run traced "${C[@]}" "http://$HTTP_SHORT_NAME:$CLOSED_PORT/"
expect_rc 7 "closed port in the pod network: connection refused"
expect_err_match 'Failed to connect|Couldn.t connect|refused' "curl reports the refused connection"

# 8 MiB down and up: flow control and relays under load.
N=$((8 << 20))
"$PY" -c "import sys; p=b'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/\n'; n=$N; sys.stdout.buffer.write((p*(n//len(p)+1))[:n])" >"$T/expected.bin"
run traced "${C[@]}" -o "$T/down.bin" "http://$HTTP_SHORT_NAME:$HTTP_PORT/bytes?n=$N"
expect_rc 0 "8 MiB download"
expect_eq "$(sha256sum <"$T/expected.bin" | cut -d' ' -f1)" "$(sha256sum <"$T/down.bin" 2>/dev/null | cut -d' ' -f1)" \
	"8 MiB download is intact"
run traced "${C[@]}" --data-binary "@$T/expected.bin" -H 'Content-Type: application/octet-stream' \
	-o "$T/up.bin" "http://$HTTP_SHORT_NAME:$HTTP_PORT/echo"
expect_rc 0 "8 MiB upload echoed back"
expect_true "8 MiB round trip is intact" cmp -s "$T/expected.bin" "$T/up.bin"

# 16 MiB of random bytes echoed (a repeating pattern could hide a block in
# the wrong place), read at a limited rate: the relay moves large frames
# through a pipe while the program's socket takes them, and through its
# buffer when the socket is full.
head -c $((16 << 20)) /dev/urandom >"$T/random.bin"
run traced "${C[@]}" --limit-rate 16M --data-binary "@$T/random.bin" \
	-H 'Content-Type: application/octet-stream' -o "$T/random.echo" "http://$HTTP_SHORT_NAME:$HTTP_PORT/echo"
expect_rc 0 "16 MiB of random bytes echoed back, read slowly"
expect_true "16 MiB random round trip is intact" cmp -s "$T/random.bin" "$T/random.echo"
e2e_done
