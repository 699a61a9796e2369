#!/bin/bash
# python3 (dynamic glibc, its own socket module): urllib, getaddrinfo,
# getpeername, non-blocking connect, refused connects, UDP in both styles.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
[ -x "$PY" ] || skip "$PY is not installed"
P=("$PY" "$PROGRAMS_SRC/py_client.py")
# With a name, the address family follows getaddrinfo's order, which may
# differ between the pod and the workstation; both are right.
# either A B [SUFFIX]: an ERE for "A or B, then SUFFIX, at the end of a line".
either() { printf '(%s|%s)%s$' "${1//./\\.}" "$2" "${3:-}"; }

run traced "${P[@]}" get "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_rc 0 "urllib GET by short name"
expect_out_eq "$HTTP_BODY" "urllib body"
run traced "${P[@]}" get "http://$HTTP_NAME:$HTTP_PORT/peer"
expect_out_match "^$(either "$POD_IP" "$POD_IP6")" "the service sees a pod address as the client"

run traced "${P[@]}" resolve "$HTTP_SHORT_NAME" "$HTTP_PORT"
expect_out_has "$HTTP_IP" "getaddrinfo(short name) has the service IPv4"
expect_out_has "$HTTP_IP6" "getaddrinfo(short name) has the service IPv6"
run traced "${P[@]}" resolve "$POD_HOSTS_NAME" "$HTTP_PORT"
expect_out_eq "$POD_HOSTS_IP" "getaddrinfo of a name only the pod's /etc/hosts knows"

run traced "${P[@]}" peer "$HTTP_SHORT_NAME" "$HTTP_PORT"
expect_out_match "^$(either "$HTTP_IP" "$HTTP_IP6" " $HTTP_PORT")" "getpeername() by name is the service, not loopback"
run traced "${P[@]}" peer "$HTTP_IP" "$HTTP_PORT"
expect_out_eq "$HTTP_IP $HTTP_PORT" "getpeername() of an IPv4 connect"
run traced "${P[@]}" peer "$HTTP_IP6" "$HTTP_PORT"
expect_out_eq "$HTTP_IP6 $HTTP_PORT" "getpeername() of an IPv6 connect"
run traced "${P[@]}" peer "::ffff:$HTTP_IP" "$HTTP_PORT"
expect_out_eq "::ffff:$HTTP_IP $HTTP_PORT" "getpeername() of a v4-mapped IPv6 connect"

run traced "${P[@]}" connect "$HTTP_SHORT_NAME" "$CLOSED_PORT"
expect_rc 1 "connect to the closed port fails"
expect_out_eq ECONNREFUSED "connect to the closed port gives ECONNREFUSED"
run traced "${P[@]}" nbconnect "$HTTP_SHORT_NAME" "$HTTP_PORT"
expect_out_eq "$(printf 'EINPROGRESS\n0')" "non-blocking connect: EINPROGRESS, then SO_ERROR 0"
run traced "${P[@]}" nbconnect "$HTTP_SHORT_NAME" "$CLOSED_PORT"
expect_out_eq "$(printf 'EINPROGRESS\nECONNREFUSED')" "non-blocking connect to the closed port: SO_ERROR ECONNREFUSED"

run traced "${P[@]}" udp "$UDP_ECHO_SHORT_NAME" "$UDP_ECHO_PORT" hello-udp
expect_rc 0 "UDP sendto/recvfrom by name"
expect_out_match "^reply hello-udp from $(either "$UDP_ECHO_IP" "$UDP_ECHO_IP6" " $UDP_ECHO_PORT")" \
	"recvfrom() reports the echo server's real address"
expect_out_match '^reply hello-udp from ' "the datagram came back"
run traced "${P[@]}" udp "$UDP_ECHO_IP" "$UDP_ECHO_PORT" hello-v4
expect_out_eq "reply hello-v4 from $UDP_ECHO_IP $UDP_ECHO_PORT" "UDP sendto/recvfrom over IPv4"
run traced "${P[@]}" udp "$UDP_ECHO_IP6" "$UDP_ECHO_PORT" hello-v6
expect_out_eq "reply hello-v6 from $UDP_ECHO_IP6 $UDP_ECHO_PORT" "UDP sendto/recvfrom over IPv6"
run traced "${P[@]}" udpc "$UDP_ECHO_IP" "$UDP_ECHO_PORT" hello-connected
expect_out_eq "reply hello-connected from $UDP_ECHO_IP $UDP_ECHO_PORT" "connected UDP send/recv"
e2e_done
