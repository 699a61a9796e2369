#!/bin/bash
# feature.network.dns.filter: the listed names are resolved by the
# workstation's nameservers (local) or the pod's (remote), the rest the other
# way, whatever resolver the program uses (glibc through python3 and curl,
# Go's own, musl's, busybox nslookup's), over UDP and TCP; search-domain
# expansions of a listed short name match; a workstation nameserver that is
# down, or none at all, fails those names at once with SERVFAIL; --trace
# says where each query went and why; bad configs are one line each.
#
# The workstation's nameserver is a dnsmasq on 127.0.0.2 in the workstation
# netns, named by /etc/netns/$WORKSTATION_NETNS/resolv.conf (`ip netns exec`
# mounts it over /etc/resolv.conf, so the supervisor reads it; the program
# still reads the pod's). It knows corp.example (the pod's DNS does not) and
# gives web.default.svc.cluster.local another address than the pod's; the
# workstation's /etc/hosts (/etc/netns/NS/hosts) answers ws-hosts.example.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "feature.network.dns.filter exists only under mirrord-trace"
require_cmd dnsmasq busybox curl
require_programs go musl

WS_ETC=/etc/netns/$WORKSTATION_NETNS
WS_DNS=127.0.0.2
LOCAL_NAME=corp.example
LOCAL_IP=127.0.0.77
HTTP_LOCAL_IP=127.0.0.88
WS_HTTP_PORT=18077
WS_HTTP_BODY='hello from the workstation'
G=$MT_PROG_DIR/go_client
M=$MT_PROG_DIR/musl_http
BB=$(command -v busybox)

# /etc/netns/NS belongs to whoever made it: only a leftover of this scenario
# (its marker line in resolv.conf; `ip netns exec` would mount any other
# file there too) is removed; each fixture has its own NS, so two fixtures
# never share the directory.
WS_MARK="# written by tests/e2e/dns_filter.sh"
if [ -e "$WS_ETC" ]; then
	grep -qxF "$WS_MARK" "$WS_ETC/resolv.conf" 2>/dev/null || skip "$WS_ETC exists and is not this scenario's"
	rm -rf "$WS_ETC"
fi
mkdir -p "$WS_ETC"
trap 'rm -rf "$WS_ETC"; e2e_cleanup' EXIT
ws_resolv() { printf '%s\n' "$WS_MARK" "$@" >"$WS_ETC/resolv.conf"; }
ws_resolv "nameserver $WS_DNS"
# The workstation's /etc/hosts: a name its nameserver does not know, and an
# unlisted name that must still come from the pod.
HOSTS_NAME=ws-hosts.example
HOSTS_IP=127.0.0.66
HOSTS_IP6=fd00:66::1
printf '%s\n' "$WS_MARK" "$HOSTS_IP $HOSTS_NAME" "$HOSTS_IP6 $HOSTS_NAME" "127.0.0.99 $REDIS_NAME" \
	>"$WS_ETC/hosts"

ip netns exec "$WORKSTATION_NETNS" dnsmasq --keep-in-foreground --conf-file=/dev/null \
	--user=root --group=root --pid-file= --no-resolv --no-hosts --no-poll \
	--bind-interfaces --listen-address="$WS_DNS" \
	--host-record="$LOCAL_NAME,$LOCAL_IP" --host-record="$HTTP_NAME,$HTTP_LOCAL_IP" \
	--address=/#/ --log-queries --log-facility="$T/ws-dns.log" </dev/null >/dev/null 2>&1 &
E2E_PIDS+=($!)
mkdir -p "$T/www"
printf '%s\n' "$WS_HTTP_BODY" >"$T/www/index.html"
ip netns exec "$WORKSTATION_NETNS" "$PY" -m http.server --bind "$LOCAL_IP" \
	--directory "$T/www" "$WS_HTTP_PORT" </dev/null >/dev/null 2>&1 &
E2E_PIDS+=($!)
for _ in $(seq 50); do
	in_ws "$BB" nslookup "$LOCAL_NAME" "$WS_DNS" 2>/dev/null | grep -q "$LOCAL_IP" &&
		in_ws curl -sf "http://$LOCAL_IP:$WS_HTTP_PORT/" >/dev/null 2>&1 && break
	sleep 0.1
done
run in_ws "$BB" nslookup "$LOCAL_NAME" "$WS_DNS"
expect_out_has "Address: $LOCAL_IP" "fixture: the workstation's nameserver answers $LOCAL_NAME"
run in_pod "$BB" nslookup "$LOCAL_NAME"
expect_out_match NXDOMAIN "fixture: the pod's nameserver does not know $LOCAL_NAME"

# resolve NAME: the addresses glibc's getaddrinfo gives (python3), sorted.
RESOLVE='import socket, sys
print(" ".join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80, proto=socket.IPPROTO_TCP)})))'
# A TCP query (as after a truncated answer) to the first nameserver of
# /etc/resolv.conf: prints the rcode and the A records.
cat >"$T/tcpq.py" <<'PY'
import socket, struct, sys
ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
q = struct.pack(">HHHHHH", 0x4d54, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split(".")) + b"\0\0\1\0\1"
s = socket.create_connection((ns, 53), timeout=10)
s.sendall(struct.pack(">H", len(q)) + q)
buf = b""
while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
    d = s.recv(4096)
    if not d:
        break
    buf += d
m = buf[2:]
assert m[:2] == q[:2], "id"
an = struct.unpack(">H", m[6:8])[0]
off = len(q)
out = ["rcode %d" % (m[3] & 15)]
for _ in range(an):
    while m[off] and m[off] < 0xc0:
        off += m[off] + 1
    off += 2 if m[off] >= 0xc0 else 1
    t, _, _, rdlen = struct.unpack(">HHIH", m[off:off + 10])
    if t == 1:
        out.append(socket.inet_ntoa(m[off + 10:off + 14]))
    off += 10 + rdlen
print(" ".join(out))
PY

# udpq.py NAME N: N times, A and AAAA queries sent together over UDP to the
# first nameserver; prints each one's rcode, or "no answer" after 3 s.
cat >"$T/udpq.py" <<'PY'
import ctypes, socket, struct, sys
ns = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")][0]
name = b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split(".")) + b"\0"
ids = {0x1001: "A", 0x1002: "AAAA"}
# One sendmmsg() for both, as glibc does, so that the relay reads them in
# one go.
qs = [struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", t, 1)
      for qid, t in ((0x1001, 1), (0x1002, 28))]
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_char_p), ("len", ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
iovs = [iovec(q, len(q)) for q in qs]
msgs = (mmsghdr * 2)(*[mmsghdr(msghdr(None, 0, ctypes.pointer(v), 1, None, 0, 0), 0) for v in iovs])
sendmmsg = ctypes.CDLL(None, use_errno=True).sendmmsg
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((ns, 53))
    assert sendmmsg(s.fileno(), msgs, 2, 0) == 2
    got = {}
    s.settimeout(3)
    try:
        while len(got) < 2:
            m = s.recv(4096)
            qid = struct.unpack(">H", m[:2])[0]
            if qid in ids:
                got[ids[qid]] = "rcode %d" % (m[3] & 15)
    except socket.timeout:
        pass
    s.close()
    print(", ".join("%s %s" % (k, got.get(k, "no answer")) for k in ("A", "AAAA")))
PY

cfg() { printf '{"feature": {"network": {"dns": {"filter": %s}}}}\n' "$2" >"$T/$1.json"; }
# expect_run CONFIG EXPECTED WHAT CMD...: CMD under the tracer with
# $T/CONFIG.json prints exactly EXPECTED.
expect_run() {
	local cfg=$1 want=$2 what=$3
	shift 3
	run traced -f "$T/$cfg.json" -- "$@"
	expect_out_eq "$want" "$what"
}
cfg local '{"local": ["corp.example", "web", "ws-hosts.example"]}'
cfg remote '{"remote": ["web", "redis"]}'

# ---- local list: corp.example and web (short: its search expansions) ----
expect_run local "$LOCAL_IP" "local list, python3: $LOCAL_NAME gets the workstation's answer" "$PY" -c "$RESOLVE" "$LOCAL_NAME"
expect_run local "$HTTP_LOCAL_IP" "local list, python3: short name 'web' (queried as $HTTP_NAME) gets the workstation's address" "$PY" -c "$RESOLVE" "$HTTP_SHORT_NAME"
expect_run local "$REDIS_IP $REDIS_IP6" "local list, python3: an unlisted name gets the pod's answer" "$PY" -c "$RESOLVE" "$REDIS_SHORT_NAME"
expect_run local "$WS_HTTP_BODY" "local list, curl: $LOCAL_NAME reaches the workstation's server" curl -sS "http://$LOCAL_NAME:$WS_HTTP_PORT/"
expect_run local "$LOCAL_IP" "local list, static Go: $LOCAL_NAME from the workstation" "$G" resolve "$LOCAL_NAME"
expect_run local "$(printf '%s\n%s' "$REDIS_IP" "$REDIS_IP6")" "local list, static Go: an unlisted short name from the pod" "$G" resolve "$REDIS_SHORT_NAME"
run traced -f "$T/local.json" -- "$M" "$LOCAL_NAME" "$WS_HTTP_PORT" /
expect_out_has "peer $LOCAL_IP $WS_HTTP_PORT" "local list, musl: $LOCAL_NAME resolves to the workstation's address"
expect_out_has "$WS_HTTP_BODY" "local list, musl: and reaches the workstation's server"
run traced -f "$T/local.json" -- "$BB" nslookup "$LOCAL_NAME"
expect_out_has "Address: $LOCAL_IP" "local list, busybox nslookup: $LOCAL_NAME from the workstation"
run traced -f "$T/local.json" -- "$BB" nslookup "$HTTP_NAME"
expect_out_has "Address: $HTTP_LOCAL_IP" "local list, busybox nslookup: the FQDN of a listed short name is local too"
run traced -f "$T/local.json" -- "$BB" nslookup "$REDIS_NAME"
expect_out_has "Address: $REDIS_IP" "local list, busybox nslookup: an unlisted name from the pod"
expect_run local "rcode 0 $LOCAL_IP" "local list, a TCP query: answered by the workstation" "$PY" "$T/tcpq.py" "$LOCAL_NAME"
expect_run local "rcode 0 $REDIS_IP" "local list, a TCP query for an unlisted name: answered by the pod" "$PY" "$T/tcpq.py" "$REDIS_NAME"
expect_run local "$HOSTS_IP $HOSTS_IP6" "local list, python3: a listed name in the workstation's /etc/hosts gets its addresses" "$PY" -c "$RESOLVE" "$HOSTS_NAME"
expect_run local "rcode 0 $HOSTS_IP" "local list, a TCP query for a name in the workstation's /etc/hosts" "$PY" "$T/tcpq.py" "$HOSTS_NAME"
run traced -f "$T/local.json" -- "$BB" nslookup "$HOSTS_NAME"
expect_out_has "Address: $HOSTS_IP6" "local list, busybox nslookup: the workstation's /etc/hosts answers AAAA too"

# ---- remote list: web and redis; everything else local ----
expect_run remote "$HTTP_IP $HTTP_IP6" "remote list, python3: a listed short name gets the pod's addresses" "$PY" -c "$RESOLVE" "$HTTP_SHORT_NAME"
expect_run remote "$LOCAL_IP" "remote list, python3: an unlisted name gets the workstation's answer" "$PY" -c "$RESOLVE" "$LOCAL_NAME"
expect_run remote "$HTTP_BODY" "remote list, curl: a listed name reaches the pod's service" curl -sS "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_run remote "$WS_HTTP_BODY" "remote list, curl: an unlisted name reaches the workstation's server" curl -sS "http://$LOCAL_NAME:$WS_HTTP_PORT/"
expect_run remote "$(printf '%s\n%s' "$HTTP_IP" "$HTTP_IP6")" "remote list, static Go: a listed name from the pod" "$G" resolve "$HTTP_SHORT_NAME"
expect_run remote "$LOCAL_IP" "remote list, static Go: an unlisted name from the workstation" "$G" resolve "$LOCAL_NAME"
run traced -f "$T/remote.json" -- "$BB" nslookup "$LOCAL_NAME"
expect_out_has "Address: $LOCAL_IP" "remote list, busybox nslookup: an unlisted name from the workstation"
run traced -f "$T/remote.json" -- "$M" "$HTTP_SHORT_NAME" "$HTTP_PORT" /
expect_out_has "$HTTP_BODY" "remote list, musl: a listed name reaches the pod's service"

# ---- --trace: where each query went, and why ----
run traced --trace -f "$T/local.json" -- "$PY" -c "$RESOLVE" "$LOCAL_NAME"
expect_err_match "^dns corp\.example\.default\.svc\.cluster\.local A -> local \(feature\.network\.dns\.filter local: \"corp\.example\"\)$" \
	"--trace: a search expansion of a listed name goes local, naming the entry"
expect_err_match "^dns corp\.example A -> local \(feature\.network\.dns\.filter local: \"corp\.example\"\)$" \
	"--trace: the listed name itself goes local"
run traced --trace -f "$T/local.json" -- "$PY" -c "$RESOLVE" "$REDIS_SHORT_NAME"
expect_err_match "^dns redis\.default\.svc\.cluster\.local A -> remote \(not in feature\.network\.dns\.filter local\)$" \
	"--trace: an unlisted name goes remote, and says so"
run traced --trace -f "$T/local.json" -- "$PY" -c "$RESOLVE" "$HOSTS_NAME"
expect_err_match "^dns ws-hosts\.example A: answered from the workstation's /etc/hosts \(1 address\)$" \
	"--trace: an answer from the workstation's /etc/hosts says so"
run traced --trace -f "$T/local.json" -- "$PY" "$T/tcpq.py" "$LOCAL_NAME"
expect_err_match "^dns corp\.example A over TCP -> local " "--trace: a TCP query is traced too"
run traced --trace -- "$PY" -c "$RESOLVE" "$HTTP_SHORT_NAME"
expect_err_match "^dns web\.default\.svc\.cluster\.local A -> remote$" "--trace without a filter: every query goes remote"
run traced -f "$T/local.json" -- "$PY" -c "$RESOLVE" "$LOCAL_NAME"
if grep -q '^dns ' <<<"$ERR"; then fail "without --trace: no dns lines" "none" "some"; else pass "without --trace: no dns lines"; fi

# ---- the workstation's nameserver is down, or there is none ----
ws_resolv "nameserver 127.0.0.3"
run traced -f "$T/local.json" -- "$BB" nslookup "$LOCAL_NAME"
expect_rc_nonzero "nameserver down: busybox nslookup of a local name fails"
expect_out_has "** server can't find $LOCAL_NAME: SERVFAIL" "nameserver down: busybox nslookup gets SERVFAIL"
# An A and an AAAA query in one sendmmsg(), as glibc sends them, and no
# retry (busybox retries, which hid this): each gets its SERVFAIL.
# On loopback the refusal of the first arrives before the second is sent,
# and the kernel reports it to that send, not to a read; it once left the
# first query unanswered until glibc's 5 s timeout.
# The kernel reports the refusal to the send or to the read by timing.
run traced -f "$T/local.json" -- "$PY" "$T/udpq.py" "$LOCAL_NAME" 30
expect_out_eq "$(for _ in $(seq 30); do echo "A rcode 2, AAAA rcode 2"; done)" \
	"nameserver down: both of two queries sent together get SERVFAIL (30 rounds)"
run traced -f "$T/local.json" -- "$PY" -c "$RESOLVE" "$LOCAL_NAME"
expect_rc_nonzero "nameserver down: python3 getaddrinfo of a local name fails"
expect_err_match "Temporary failure in name resolution" "nameserver down: glibc reports EAI_AGAIN (SERVFAIL), not 'Name or service not known'"
expect_run local "rcode 2" "nameserver down: a TCP query gets SERVFAIL" "$PY" "$T/tcpq.py" "$LOCAL_NAME"
expect_run local "$REDIS_IP $REDIS_IP6" "nameserver down: unlisted names still come from the pod" "$PY" -c "$RESOLVE" "$REDIS_SHORT_NAME"
ws_resolv "# no nameserver"
run traced -f "$T/local.json" -- "$BB" nslookup "$LOCAL_NAME"
if grep -q SERVFAIL <<<"$OUT$ERR"; then pass "no workstation nameserver: SERVFAIL"; else fail "no workstation nameserver: SERVFAIL" "SERVFAIL" "$OUT $ERR"; fi
expect_run local "rcode 2" "no workstation nameserver: a TCP query gets SERVFAIL" "$PY" "$T/tcpq.py" "$LOCAL_NAME"
ws_resolv "nameserver $WS_DNS"

# ---- config: errors (one line each, the program never runs) and warnings ----
# expect_one_line KIND ERE WHAT: exactly one stderr line, of KIND, matching ERE.
expect_one_line() {
	expect_eq 1 "$(grep -c . <<<"$ERR")" "$3: one line on stderr"
	expect_err_match "^mirrord-trace: $1: .*$2" "$3: the line says what is wrong"
}
cfg both '{"local": ["corp.example"], "remote": ["web"]}'
run traced -f "$T/both.json" -- sh -c 'echo ran'
expect_rc 2 "both local and remote: a config error"
expect_one_line error 'feature\.network\.dns\.filter: give exactly one of local or remote' "both lists"
expect_out_lacks ran "both lists: the program does not run"
cfg neither '{}'
run traced -f "$T/neither.json" -- sh -c 'echo ran'
expect_rc 2 "neither local nor remote: a config error"
cfg badentry '{"local": ["corp.example", "a..b"]}'
run traced -f "$T/badentry.json" -- sh -c 'echo ran'
expect_rc 2 "a bad entry: a config error"
expect_one_line error 'feature\.network\.dns\.filter: local entry 2 \(a\.\.b\) is not ' "a bad entry"
expect_out_lacks ran "a bad entry: the program does not run"

run traced --no-remote-dns -f "$T/local.json" -- true
expect_rc 0 "a filter with --no-remote-dns runs"
expect_one_line warning 'feature\.network\.dns\.filter: has no effect' "a filter with --no-remote-dns"
cfg empty '{"local": []}'
expect_run empty "$HTTP_IP $HTTP_IP6" "an empty local list: every name from the pod" "$PY" -c "$RESOLVE" "$HTTP_SHORT_NAME"
expect_one_line warning 'the local list is empty: every name is resolved by the pod' "an empty list"
cfg port '{"local": ["corp.example:443"]}'
expect_run port "$LOCAL_IP" "a name:port entry matches the name (on any port)" "$PY" -c "$RESOLVE" "$LOCAL_NAME"
expect_one_line warning 'local entry 1 \("corp\.example:443"\) has a port' "a name:port entry"
cfg addr '{"local": ["10.0.0.0/8"]}'
run traced -f "$T/addr.json" -- true
expect_one_line warning 'local entry 1 is an address or subnet: numeric names are never looked up' "an address entry"
cfg anyname '{"remote": [":53"]}'
expect_run anyname "$HTTP_IP $HTTP_IP6" "a port-only remote entry lists every name: the pod answers" "$PY" -c "$RESOLVE" "$HTTP_SHORT_NAME"
e2e_done
