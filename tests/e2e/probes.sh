#!/bin/bash
# Syscall-behaviour probes (tests/probes/): raw connect/getpeername/sendto/
# sendmsg/recvfrom/recvmsg calls with garbage in the upper half of int
# arguments, sockaddrs before a guard page, bad lengths and pointers,
# refused and repeated connects, signals during relayed calls, execve from a
# non-leader thread, UDP source addresses. Each probe runs in every build
# (dynamic glibc, gcc -static, musl-gcc -static when built) and its stdout
# must equal, line for line, what the kernel says natively in the pod (the
# expectations below are that native output; e2e.native.probes checks them).
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
PROBES=${MT_PROBES_DIR:-$MT_BIN_DIR/../tests/probes}
[ -x "$PROBES/probe_args" ] || skip "the probes are not built ($PROBES/probe_args missing; build the tree)"
PROBES=$(cd "$PROBES" && pwd) # natively they run from / inside the pod
[ -x "$PY" ] || skip "$PY is not installed (computes the expected sockaddr bytes)"

ARGS=("$HTTP_IP" "$HTTP_IP6" "$HTTP_PORT" "$CLOSED_PORT" "$UDP_ECHO_IP" "$UDP_ECHO_IP6" "$UDP_ECHO_PORT")
VARIANTS=("" _static)
if [ -x "$PROBES/probe_args_musl" ]; then
	VARIANTS+=(_musl)
else
	e2e_log "info: no musl probe builds (musl-gcc was missing at configure time; probes.musl_missing says so)"
fi

# sa_hex IP PORT: the bytes the kernel's getpeername returns for IP:PORT
# (sockaddr_in or sockaddr_in6, zeros where it writes zeros), in hex.
sa_hex() {
	"$PY" - "$1" "$2" <<'EOF'
import ipaddress, socket, struct, sys
ip, port = ipaddress.ip_address(sys.argv[1]), int(sys.argv[2])
if ip.version == 4:
    b = struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + ip.packed + bytes(8)
else:
    b = struct.pack("<H", socket.AF_INET6) + struct.pack(">H", port) + bytes(4) + ip.packed + bytes(4)
print(b.hex())
EOF
}
# port_hex PORT: the port in network order, in hex.
port_hex() { printf '%04x' "$1"; }
H4="$HTTP_IP:$HTTP_PORT" H6="[$HTTP_IP6]:$HTTP_PORT"
U4="$UDP_ECHO_IP:$UDP_ECHO_PORT" U6="[$UDP_ECHO_IP6]:$UDP_ECHO_PORT"
SA4=$(sa_hex "$HTTP_IP" "$HTTP_PORT")
SA6=$(sa_hex "$HTTP_IP6" "$HTTP_PORT")
E=eeeeeeee # four 0xee sentinel bytes the kernel must not overwrite

# ---- expected output (the kernel's, natively in the pod) ----
expect_args() {
	cat <<EOF
hi-bits v4: connect = 0
hi-bits v4: body = $HTTP_BODY
hi-bits v4: getpeername = 0 len=16 $H4
hi-bits v6: connect = 0
hi-bits v6: body = $HTTP_BODY
hi-bits v6: getpeername = 0 len=28 $H6
sin_zero garbage: connect = 0
sin_zero garbage: getpeername bytes = $SA4
v6 flowinfo+scope garbage: connect = 0
v6 flowinfo+scope garbage: getpeername bytes = $SA6
guard v4: connect = 0
guard v4: body = $HTTP_BODY
guard v4: getpeername = 0 len=16 $H4
guard v6: connect = 0
guard v6: body = $HTTP_BODY
guard v6: getpeername = 0 len=28 $H6
guard v6 len 24: connect = 0
guard v6 len 24: body = $HTTP_BODY
guard v4 len 17 crossing: connect = -EFAULT
v4 addrlen 8: connect = -EINVAL
v4 addrlen 15: connect = -EINVAL
v6 addrlen 20: connect = -EINVAL
v6 addrlen 23: connect = -EINVAL
v4 NULL sockaddr: connect = -EFAULT
v4 unmapped sockaddr: connect = -EFAULT
v4 addrlen 0: connect = -EINVAL
v4 NULL sockaddr addrlen 0: connect = -EINVAL
v4 addrlen -1: connect = -EINVAL
v4 addrlen 129: connect = -EINVAL
v4 addrlen 128: connect = 0
v4 addrlen 128: body = $HTTP_BODY
v4 sockaddr on v6 socket: connect = -EINVAL
v6 sockaddr on v4 socket: connect = -EAFNOSUPPORT
peer edges: connect = 0
getpeername addrlen 4: = 0 len=16 bytes=${SA4:0:8}$E$E$E
getpeername addrlen 0: = 0 len=16 bytes=$E
getpeername addrlen 32: = 0 len=16 bytes=$SA4$E$E$E$E
getpeername NULL addrlen: = -EFAULT
getpeername unmapped addrlen: = -EFAULT
getpeername NULL addr: = -EFAULT
getpeername addrlen -1: = -EINVAL
getpeername read-only addrlen: = -EFAULT stored=16
getpeername read-only addr: = -EFAULT page=00000000
EOF
}

# The line after a non-blocking connect's immediate retry is racy (EALREADY
# during the handshake, 0 right after it, EISCONN later): normalised to
# RACY_NB before the comparison, and logged.
expect_connect() {
	local v
	for v in v4 v6; do
		cat <<EOF
$v refused blocking: connect = -ECONNREFUSED
$v refused non-blocking: connect = -EINPROGRESS
$v refused non-blocking: SO_ERROR = ECONNREFUSED
$v refused non-blocking: SO_ERROR again = 0
EOF
	done
	for v in v4 v6; do
		cat <<EOF
$v connected: connect = 0
$v connected: connect again = -EISCONN
$v non-blocking: connect = -EINPROGRESS
$v non-blocking: immediate connect again = RACY_NB
$v non-blocking: SO_ERROR = 0
$v non-blocking: connect after completion = -EISCONN
EOF
	done
}

expect_signals() {
	local r first
	for r in "no SA_RESTART" "SA_RESTART"; do
		[ "$r" = SA_RESTART ] && first=data || first=-EINTR
		cat <<EOF
tcp recv $r: first recvfrom = $first, got data 'HTTP/1.1 200', handler ran 1 time(s)
udp connected recv $r: first recvfrom = $first, got data 'ping-c' from $U4, handler ran 1 time(s)
udp recvfrom $r: first recvfrom = $first, got data 'ping-u' from $U4, handler ran 1 time(s)
EOF
	done
	echo "20 connects under a 1 ms SA_RESTART timer: 20 connected, 20 bodies"
}

expect_exec() {
	cat <<EOF
parent: execve from a non-leader thread
child: same pid as before execve: yes
child: single thread: yes
child: connect = 0
child: body = $HTTP_BODY
EOF
}

expect_udp() {
	local v u len fam lo
	for v in v4 v6; do
		if [ $v = v4 ]; then
			u=$U4 len=16 fam=0200 lo=7f0000010000000000000000
		else
			u=$U6 len=28 fam=0a00 lo=000000000000000000000000
		fi
		cat <<EOF
$v plain: sendto = 12
$v plain: recvfrom = 12 'hello-sendto' from $u len=$len
$v hi-bits: sendto = 13
$v hi-bits: recvfrom = 13 'hello-hi-bits' from $u len=$len
$v guard: sendto = 11
$v guard: recvfrom = 11 'hello-guard' from $u len=$len
$v short src: sendto = 11
$v short src: recvfrom = 11 'hello-short' len=$len bytes=$fam$(port_hex "$UDP_ECHO_PORT")$E$E$E
$v short src, loopback after: sendto = 12
$v short src, loopback after: recvfrom = 12 'hello-short2' len=$len bytes=$fam$(port_hex "$UDP_ECHO_PORT")$lo
$v sendmsg: sendmsg = 13
$v sendmsg: recvmsg = 13 'hello-sendmsg' from $u namelen=$len
$v connected: connect = 0
$v connected: getpeername = 0 $u len=$len
$v connected: sendto = 15
$v connected: recvfrom = 15 'hello-connected' from $u len=$len
$v connected: connect AF_UNSPEC = 0
$v connected: getpeername after AF_UNSPEC = -ENOTCONN
$v connected: send after AF_UNSPEC = -EDESTADDRREQ
EOF
	done
}

# The refusal and routing errors of probe_reach: as the kernel reports them
# in the pod (tests/pod/README.md), for TCP (a UDP connect is answered
# locally: docs/INTERNALS.md, "Where the code departs").
expect_reach() {
	local v l e
	cat <<EOF
oneshot v4 first: connect = 0
oneshot v4 first: server says '1'
oneshot v6 first: connect = 0
oneshot v6 first: server says 'closed'
EOF
	for v in v4 v6; do
		cat <<EOF
oneshot $v again blocking: connect = -ECONNREFUSED
oneshot $v again non-blocking: connect = -EINPROGRESS, SO_ERROR = ECONNREFUSED
EOF
	done
	for l in "no route v4:ENETUNREACH" "no route v6:ENETUNREACH" "unreachable route v4:EHOSTUNREACH" \
		"unreachable route v6:EHOSTUNREACH" "prohibit route v4:EACCES"; do
		e=${l##*:} l=${l%:*}
		cat <<EOF
$l blocking: connect = -$e
$l non-blocking: connect = -$e
EOF
	done
}

# oneshot_start: (re)start probe_reach's one-shot server in the service pod
# on ONESHOT_PORT (both families): it accepts one connection and writes
# "1"; accepts a second, closes its listener, then writes "closed".
# Bounded: it lives at most 60 s.
ONESHOT_PORT=82
ONESHOT_PID=""
oneshot_start() {
	[ -z "$ONESHOT_PID" ] || { kill "$ONESHOT_PID" 2>/dev/null; wait "$ONESHOT_PID" 2>/dev/null; }
	rm -f "$T/oneshot.ready"
	timeout -k 2 60 ip netns exec "$SVC_NETNS" "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1]))); s.listen(8)
open(sys.argv[2], "w").close()
c, _ = s.accept(); c.sendall(b"1\n"); c.close()
c, _ = s.accept(); s.close(); c.sendall(b"closed\n"); c.close()
' "$ONESHOT_PORT" "$T/oneshot.ready" </dev/null >"$T/oneshot.log" 2>&1 &
	ONESHOT_PID=$!
	E2E_PIDS+=("$ONESHOT_PID")
	for _ in $(seq 100); do [ -e "$T/oneshot.ready" ] && return 0; sleep 0.1; done
	e2e_log "FAIL: the one-shot server did not start: $(cat "$T/oneshot.log")"
	exit 1
}
REACH_ARGS=("${ARGS[@]}" "$ONESHOT_PORT" "$NOROUTE_IP" "$NOROUTE_IP6" "$UNREACH_IP" "$UNREACH_IP6" "$PROHIBIT_IP")

# ---- what a differing line means ----
# HINT[label]: printed under a failure for every differing line with that
# label (the text before the first ':'), naming the mirrord-trace code that
# decides the observation.
declare -A HINT=(
	["oneshot v4 again blocking"]="a destination the agent reached a moment ago refuses now: connect() must wait for the agent's answer (net_connect, syscalls/net.c), or the refusal arrives as a reset"
	["oneshot v6 again blocking"]="a destination the agent reached a moment ago refuses now: connect() must wait for the agent's answer (net_connect, syscalls/net.c), or the refusal arrives as a reset"
	["oneshot v4 again non-blocking"]="the refusal is replayed on the program's socket (session_refuse) only if connect() waited for the agent"
	["oneshot v6 again non-blocking"]="the refusal is replayed on the program's socket (session_refuse) only if connect() waited for the agent"
	["sin_zero garbage"]="getpeername() returns the program's own connect() sockaddr (session_peer_of), sin_zero included; the kernel reports zeros there"
	["v6 flowinfo+scope garbage"]="getpeername() returns the program's sin6_flowinfo/sin6_scope_id (ignored by the kernel for a global address without IPV6_FLOWINFO_SEND); the kernel reports zeros"
	["guard v6 len 24"]="read_sockaddr() (syscalls/net.c) rejects an AF_INET6 length below sizeof(sockaddr_in6)=28, but the kernel accepts SIN6_LEN_RFC2133=24: the connect is left to the kernel and escapes the agent"
	["v4 sockaddr on v6 socket"]="net_connect() relays an AF_INET sockaddr on an AF_INET6 socket; the kernel refuses it (EINVAL: shorter than SIN6_LEN_RFC2133)"
	["v6 sockaddr on v4 socket"]="net_connect() relays an AF_INET6 sockaddr on an AF_INET socket; the kernel refuses it (EAFNOSUPPORT)"
	["getpeername read-only addrlen"]="put_sockaddr() writes through /proc/PID/mem (FOLL_FORCE), which ignores page protection: the kernel's put_user fails with EFAULT"
	["getpeername read-only addr"]="put_sockaddr() writes through /proc/PID/mem (FOLL_FORCE) into a read-only page: the kernel fails with EFAULT and leaves it unchanged"
	["v4 short src"]="recv_fix() reads *addrlen after the kernel replaced it with the full length: the truncated relay address is not recognised (relay port shows)"
	["v6 short src"]="recv_fix() reads *addrlen after the kernel replaced it with the full length: the truncated relay address is not recognised (relay port shows)"
	["v4 short src, loopback after"]="recv_fix() takes the full length from *addrlen (written by the kernel) as the buffer size and writes a whole sockaddr past the caller's 4-byte buffer"
	["v6 short src, loopback after"]="recv_fix() takes the full length from *addrlen (written by the kernel) as the buffer size and writes a whole sockaddr past the caller's 4-byte buffer"
)

# ---- comparison ----
# expect_probe_out EXPECTED WHAT: stdout equals EXPECTED line for line; on a
# mismatch the failure shows a diff (- expected natively, + got).
expect_probe_out() {
	local want=$1 what=$2 got=$OUT
	got=$(printf '%s\n' "$got" | sed -E 's/(non-blocking: immediate connect again = )(0|-EALREADY|-EISCONN)$/\1RACY_NB/')
	if [ "$want" = "$got" ]; then
		pass "$what"
		return
	fi
	diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got") | tail -n +3 >"$T/diff"
	fail "$what" "the kernel's native behaviour (lines with -)" "$(grep -c '^+' "$T/diff") line(s) differ (lines with +):
$(sed 's/^/    /' "$T/diff")"
	local label
	grep '^+' "$T/diff" | sed -E 's/^\+([^:]*):.*/\1/' | sort -u | while IFS= read -r label; do
		[ -n "${HINT[$label]:-}" ] && e2e_log "  hint: $label: ${HINT[$label]}"
	done
}

for v in "${VARIANTS[@]}"; do
	b=${v#_}
	b=${b:-dynamic}
	for p in args connect signals udp; do
		run traced "$PROBES/probe_$p$v" "${ARGS[@]}"
		expect_rc 0 "probe $p ($b) ran"
		[ "$p" != connect ] || e2e_log "info: probe connect ($b): $(printf '%s\n' "$OUT" | grep 'immediate connect again' | tr '\n' ';')"
		expect_probe_out "$("expect_$p")" "probe $p ($b): every observation as natively"
	done
	oneshot_start
	run traced "$PROBES/probe_reach$v" "${REACH_ARGS[@]}"
	expect_rc 0 "probe reach ($b) ran"
	expect_probe_out "$(expect_reach)" "probe reach ($b): refused after accepted, unreachable routes: the pod's errno"
	run traced "$PROBES/probe_exec$v" "${ARGS[@]}"
	expect_rc 7 "probe exec ($b): the exit status of the exec'd child passes through"
	expect_probe_out "$(expect_exec)" "probe exec ($b): execve from a non-leader thread, then a connect"
done
e2e_done
