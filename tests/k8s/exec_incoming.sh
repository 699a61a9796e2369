#!/bin/bash
# Incoming traffic (feature.network.incoming, issue 7) under `mirrord-trace
# exec` on the fake cluster. The target is deploy/lolz (or its pod) in
# lolzspace, whose main-container serves HTTP on :80 behind the Service
# lolz.lolzspace (port 80); clients run in the redis-0 pod (its network,
# mount and UTS namespaces, so the service name resolves through the pod's
# DNS and reaches the target through the ClusterIP's DNAT). The local apps
# run under mirrord-trace in the workstation netns.
#   - mirror: 1000 POSTs with bodies to the Service; the pod answers all
#     1000 (its /echo returns each body) while python3 (in_server.py),
#     static Go (go_client serve) and busybox httpd (a CGI script) each
#     receive all 1000 with their bodies; no nat rule appears; the pod's
#     latency with and without mirroring is printed;
#   - steal: the Service answers with the local app's words (all three
#     apps); header, path and method filters, all_of and any_of, request by
#     request on one keep-alive connection; a WebSocket upgrade through an
#     unfiltered and a filtered steal;
#   - the pod's nat table (iptables-save -t nat and nft list ruleset in its
#     netns) is as before after a normal exit, a SIGKILL of mirrord-trace
#     and a SIGKILL of the agent;
#   - port_mapping, listen_ports, a port busy on the workstation, IPv6-only
#     and ::1 listeners, and an app that never listens.
# Usage: exec_incoming.sh MIRRORD_TRACE
. "$(dirname "$0")/exec_lib.sh"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
PROGS=$(dirname "$MT")/../tests/programs
rc=0
bash "$SRC/tests/programs/build.sh" "$PROGS" go >/dev/null 2>"$ERR" || rc=$?
[ $rc = 77 ] && skip "the Go toolchain is missing: $(cat "$ERR")"
[ $rc = 0 ] || fail "building go_client: $(cat "$ERR")"
for tool in busybox curl iptables-save nft; do
	command -v $tool >/dev/null || skip "'$tool' not found (run scripts/deps)"
done
file -L "$(command -v busybox)" | grep -q 'statically linked' || skip "busybox is not busybox-static"
busybox --list | grep -qx httpd || skip "this busybox has no httpd applet"
PY=/usr/bin/python3
GO=$PROGS/go_client
BB=$(command -v busybox)
APP=$SRC/tests/programs/in_server.py
CLIENT_PY=$SRC/tests/k8s/incoming_client.py

NS=lolzspace
POD=$(pod_name $NS lolz-) || fail "no lolz pod in $NS"
TPID=$(pod_pid $NS "$POD" main-container) || fail "no main-container pid for $POD"
CPID=$(pod_pid $NS redis-0) || fail "no redis-0 pid"
SVC=lolz.$NS.svc.cluster.local
PORT=80
W=$(mktemp -d)
CFG=$(mktemp --suffix .json)
# shellcheck disable=SC2034 # read by exec_lib.sh cleanup
EXTRA_FILES="$CFG"
BG="" MTPID="" BLOCKER=""
inc_cleanup() {
	[ -n "$MTPID" ] && kill -KILL "$MTPID" 2>/dev/null
	[ -n "$BLOCKER" ] && kill -KILL "$BLOCKER" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$W"
	cleanup
}
trap inc_cleanup EXIT

# in_client CMD...: CMD in the client pod (redis-0).
in_client() { timeout "${CT:-60}" nsenter -t "$CPID" -n -m -u -- "$@"; }
client() { in_client "$PY" "$CLIENT_PY" "$@"; }
# get PATH [CURL ARGS...]: one request to the Service; prints the body.
get() {
	local p=$1
	shift
	in_client curl -sS -m 10 "$@" "http://$SVC:$PORT$p"
}

# The target pod's nat table as both tools show it, counters left out
# (iptables-nft rules carry counters that traffic moves).
rules() {
	nsenter -t "$TPID" -n sh -c 'iptables-save -t nat | grep -v "^#"; nft list ruleset' 2>&1 |
		sed -E 's/\[[0-9]+:[0-9]+\]//; s/counter packets [0-9]+ bytes [0-9]+/counter/'
}
BEFORE=$(rules)
grep -q MTC-SERVICES <<<"$BEFORE" || fail "the pod's nat table lacks the cluster's service rules: $BEFORE"
rules_back() { wait_until "$1" bash -c '[ "$(rules)" = "$BEFORE" ]'; }
export -f rules
export TPID BEFORE

none_left "before the tests"
[ "$(get /)" = "hello from the pod" ] || fail "the Service does not reach the pod: $(get / 2>&1)"

# mt_below PID: the mirrord-trace process among PID's descendants (the
# background job is a subshell running timeout, which runs nsenter, which
# execs mirrord-trace).
mt_below() {
	local p
	for p in $(pgrep -P "$1"); do
		[ "$(readlink -f "/proc/$p/exe")" = "$MT" ] && { echo "$p"; return 0; }
		mt_below "$p" && return 0
	done
	return 1
}
# serve NAME EXEC_ARGS... -- PROGRAM...: start `mirrord-trace exec` in the
# background and wait for the program's "ready PORT" line (printed after
# listen() returned, so after the agent confirmed the subscription). Sets BG
# (the background job) and MTPID (mirrord-trace itself).
serve() {
	local name=$1
	shift
	: >"$W/$name.log"
	T=300 in_ws "$MT" exec "$@" >"$W/$name.out" 2>"$W/$name.err" &
	BG=$!
	wait_until 60 grep -q '^ready' "$W/$name.out" ||
		fail "$name: no 'ready' line: out=$(cat "$W/$name.out") err=$(cat "$W/$name.err")"
	MTPID=$(mt_below "$BG") || fail "$name: no mirrord-trace process below $BG"
}
# stop NAME: SIGTERM to mirrord-trace (it passes it on to the program),
# then no agent is left and the nat table is as before.
stop() {
	kill -TERM "$MTPID"
	wait "$BG"
	MTPID=""
	none_left "$1: after the exit"
	rules_back 10 || fail "$1: nat rules after a normal exit: want
$BEFORE
got
$(rules)"
}
# in_ws_ss PORT: the workstation's TCP listeners on PORT.
in_ws_ss() { in_ws ss -Hltn "sport = :$1"; }
log_lines() { grep -v warmup "$W/$1.log" | grep -c .; }
# received NAME N: wait until the app logged N requests.
# same_requests NAME WANT: the app's log (method, path, length, sha) is
# exactly the requests the client sent (warm-up requests aside).
same_requests() {
	diff <(grep -v warmup "$W/$1.log" | awk '{ print $1, $2, $3, substr($4, 1, 12) }' | sort) \
		<(sort "$2") >"$W/$1.diff"
}
# real_peers NAME: every request came from a pod address as accept() and
# getpeername() report it (busybox's REMOTE_ADDR is bracketed).
real_peers() { ! grep -qvE ' \[?(::ffff:)?10\.244\.[0-9]+\.[0-9]+\]?$' "$W/$1.log"; }
# warm NAME PATH: POST PATH?warmup until the app logs one. busybox says
# "ready" before httpd's listen() (which returns only once the agent
# confirmed the subscription), so a first request could still miss it.
warm() {
	local i
	for i in $(seq 60); do
		grep -q warmup "$W/$1.log" && return 0
		get "$2?warmup=$i" -d w >/dev/null
		sleep 0.5
	done
	fail "$1: a warm-up request never reached the app: $(tail -5 "$W/$1.err")"
}
received() { wait_until 60 sh -c "[ \$(grep -v warmup '$W/$1.log' | grep -c .) -ge $2 ]"; }
# ws_ok FILE: the client's report of a WebSocket upgrade and echo.
ws_ok() { sed -n 1p "$1" | grep -q '^HTTP/1.[01] 101 ' && sed 1d "$1" | tr '\n' ' ' | grep -qE '^accept ok echo ok [0-9]+ $'; }

# ---- mirror ----------------------------------------------------------
# The pod alone first: its latency without mirroring.
client load "$SVC" $PORT /echo 1000 4 "$W/off.want" >"$W/off.load" ||
	fail "mirror off: $(cat "$W/off.load")"
OFF=$(sed -n 's/^latency //p' "$W/off.load")
grep -q "to 10\.96\." "$W/off.load" || fail "the client did not use the ClusterIP: $(cat "$W/off.load")"

# mirror NAME PATH -- PROGRAM...: 1000 POSTs of PATH to the Service while
# PROGRAM runs under a mirroring exec.
mirror() {
	local name=$1 path=$2
	shift 3
	serve "$name" -t deploy/lolz -n $NS -- "$@"
	warm "$name" "$path"
	[ "$(rules)" = "$BEFORE" ] || fail "mirror $name: mirroring changed the nat table: $(rules)"
	CT=180 client load "$SVC" $PORT "$path" 1000 4 "$W/$name.want" >"$W/$name.load" ||
		fail "mirror $name: the pod did not answer all 1000: $(cat "$W/$name.load")"
	received "$name" 1000 ||
		fail "mirror $name: the local app got $(log_lines "$name") of 1000 requests; err=$(tail -5 "$W/$name.err")"
	sleep 0.5 # a duplicate would come now
	same_requests "$name" "$W/$name.want" ||
		fail "mirror $name: the app's requests differ from those sent: $(head -20 "$W/$name.diff")"
	real_peers "$name" || fail "mirror $name: accept()/getpeername() did not report the client pod: $(head -3 "$W/$name.log")"
	echo "ok: mirror, $name: the pod answered all 1000, the local app received all 1000 with their bodies"
	echo "    pod latency, 1000 POSTs, 4 at a time: mirror off: $OFF; mirror on ($name): $(sed -n 's/^latency //p' "$W/$name.load")"
	stop "mirror $name"
}
mirror python /echo -- "$PY" "$APP" python $PORT "$W/python.log"
mirror go /echo -- "$GO" serve go ":$PORT" "$W/go.log"

# busybox httpd runs a CGI script per request (a path the pod echoes too).
mkdir -p "$W/www/cgi-bin"
cat >"$W/www/cgi-bin/echo" <<EOF
#!$BB sh
# busybox httpd's CGI: log the request as in_server.py does, answer "busybox URI".
n=\${CONTENT_LENGTH:-0}
sum=\$($BB head -c "\$n" | $BB sha1sum)
echo "\$REQUEST_METHOD \$REQUEST_URI \$n \${sum%% *} \$REMOTE_ADDR" >>"$W/busybox.log"
printf 'Content-Type: text/plain\r\n\r\nbusybox %s\n' "\$REQUEST_URI"
EOF
chmod +x "$W/www/cgi-bin/echo"
BUSYBOX=("$BB" sh -c "echo ready $PORT; exec $BB httpd -f -p $PORT -h $W/www")
mirror busybox /cgi-bin/echo -- "${BUSYBOX[@]}"
# Again without mirroring: how much of the difference is this machine's noise.
client load "$SVC" $PORT /echo 1000 4 "$W/off.want" >"$W/off2.load" ||
	fail "mirror off (again): $(cat "$W/off2.load")"
echo "    pod latency, mirror off again after the mirror runs: $(sed -n 's/^latency //p' "$W/off2.load")"

# ---- steal, no filter: the Service answers with the local app's words ----
steal_all() {
	local name=$1 path=$2
	shift 3
	serve "$name" --steal -t deploy/lolz -n $NS -- "$@"
	warm "$name" "$path"
	[ "$(rules)" != "$BEFORE" ] || fail "steal $name: no redirect rule while the app listens"
	client load "$SVC" $PORT "$path" 50 4 "$W/$name.want" "$name" >"$W/$name.load" ||
		fail "steal $name: not all 50 answered by the local app: $(cat "$W/$name.load")"
	same_requests "$name" "$W/$name.want" ||
		fail "steal $name: the app's requests differ from those sent: $(head -20 "$W/$name.diff")"
	real_peers "$name" ||
		fail "steal $name: accept()/getpeername() did not report the client pod: $(head -3 "$W/$name.log")"
	echo "ok: steal, $name: the Service's 50 answers came from the local app, bodies intact, real peers"
}
steal_all python /echo -- "$PY" "$APP" python $PORT "$W/python.log"
client ws "$SVC" $PORT /ws >"$W/ws.out" && ws_ok "$W/ws.out" || fail "steal: WebSocket: $(cat "$W/ws.out")"
echo "ok: steal: a WebSocket upgrade and 200 KiB of frames echoed"
stop "steal python"
steal_all go /echo -- "$GO" serve go ":$PORT" "$W/go.log"
stop "steal go"
steal_all busybox /cgi-bin/echo -- "${BUSYBOX[@]}"
stop "steal busybox"

# ---- steal with HTTP filters, request by request on one connection ----
# filtered NAME WANT REQ...: the answers of REQ... (seq) are WANT.
filtered() {
	local name=$1 want=$2
	shift 2
	client seq "$SVC" $PORT "$@" >"$W/$name.seq" 2>&1 || fail "$name: client: $(cat "$W/$name.seq")"
	[ "$(cat "$W/$name.seq")" = "$want" ] || fail "$name: got
$(cat "$W/$name.seq")
want
$want
app err: $(tail -5 "$W/$name.err")"
}
POD_HELLO="200 hello from the pod"
POD_404="404 not found"
# filter_case NAME WANT REQ... [-- EXEC_ARGS...]: steal with $CFG (target
# and filter); the answers of REQ... are WANT.
filter_case() {
	local name=$1 want=$2 reqs=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do reqs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	serve "$name" -f "$CFG" "$@" -- "$PY" "$APP" "$name" $PORT "$W/$name.log"
	filtered "$name" "$want" "${reqs[@]}"
	stop "$name filter"
}

cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "feature": {"network": {"incoming": {"mode": "steal",
  "http_filter": {"header_filter": "^x-user: alice$"}}}}}
JSON
serve header -f "$CFG" -- "$PY" "$APP" header $PORT "$W/header.log"
filtered header "200 header /a
$POD_HELLO
$POD_HELLO
200 header /d
$POD_HELLO
200 header /echo" \
	"GET /a x-user: alice" "GET / x-user: bob" "GET /" "GET /d X-User: alice" "GET / x-user: alice2" \
	"POST /echo x-user: alice"
[ "$(cut -d' ' -f1-2 "$W/header.log" | tr '\n' ,)" = "GET /a,GET /d,POST /echo," ] ||
	fail "header filter: the app got: $(cat "$W/header.log")"
echo "ok: header_filter: only alice's requests reached the local app, the rest the pod, on one connection"
client ws "$SVC" $PORT /ws "x-user: alice" >"$W/wsf.out" && ws_ok "$W/wsf.out" ||
	fail "filtered WebSocket: $(cat "$W/wsf.out")"
client ws "$SVC" $PORT /ws "x-user: bob" >"$W/wsb.out"
grep -q "^HTTP/1.[01] 404" "$W/wsb.out" || fail "an unmatched upgrade must reach the pod (404): $(cat "$W/wsb.out")"
echo "ok: header_filter: alice's WebSocket upgrade went to the local app and became raw TCP; bob's reached the pod"
stop "header filter"

cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "feature": {"network": {"incoming": {"mode": "steal",
  "http_filter": {"path_filter": "^/api/"}}}}}
JSON
# -t on the command line beats the file's target.
filter_case path "200 path /api/v1?q=1
$POD_HELLO
$POD_404
200 path /API/x" "GET /api/v1?q=1" "GET /" "GET /apix" "GET /API/x" -- -t "pod/$POD"
grep -q "target pod/$POD" "$W/path.err" || fail "path filter: not the pod target: $(cat "$W/path.err")"
echo "ok: path_filter (pod target): /api/ paths to the local app (caseless), others to the pod"

cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "feature": {"network": {"incoming": {"mode": "steal",
  "http_filter": {"method_filter": "DELETE"}}}}}
JSON
filter_case method "$POD_HELLO
200 method /x
200 body of POST /echo
200 method /y" "GET /" "DELETE /x" "POST /echo" "DELETE /y"
echo "ok: method_filter: DELETE to the local app, GET and POST to the pod"

# Mirror with an HTTP filter: the pod answers every request of one
# keep-alive connection, the local app gets alice's only (with the body).
cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "feature": {"network": {"incoming": {"mode": "mirror",
  "http_filter": {"header_filter": "^x-user: alice$"}}}}}
JSON
serve mfilter -f "$CFG" -- "$PY" "$APP" mfilter $PORT "$W/mfilter.log"
[ "$(rules)" = "$BEFORE" ] || fail "filtered mirror changed the nat table: $(rules)"
filtered mfilter "$POD_HELLO
$POD_HELLO
200 body of POST /echo x-user: alice
$POD_HELLO" "GET / x-user: alice" "GET / x-user: bob" "POST /echo x-user: alice" "GET /"
received mfilter 2 || fail "filtered mirror: the local app got: $(cat "$W/mfilter.log")"
sleep 0.5 # a request that should not come would come now
[ "$(cut -d' ' -f1-3 "$W/mfilter.log" | tr '\n' ,)" = "GET / 0,POST /echo 32," ] ||
	fail "filtered mirror: the local app got: $(cat "$W/mfilter.log")"
echo "ok: mirror with header_filter: the pod answered all four, the local app got alice's two (with the body)"
stop "filtered mirror"

# The agent's incoming settings reach it: a 1 s HTTP detection timeout
# (a connection silent for 1.5 s goes to the pod whole, alice or not),
# iptables rather than nft, no flush. Bytes that are not HTTP reach the
# pod's app whole.
cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "agent": {"http_detection_timeout": 1, "nftables": false, "flush_connections": false},
 "feature": {"network": {"incoming": {"mode": "steal",
  "http_filter": {"header_filter": "^x-user: alice$"}}}}}
JSON
serve detect -f "$CFG" -- "$PY" "$APP" detect $PORT "$W/detect.log"
AP=$(agent_procs | head -n 1)
[ -n "$AP" ] || fail "detect: no agent process"
[[ "$(tr '\0' ' ' <"/proc/$AP/cmdline")" == *" --http-detection-timeout 1 --no-flush-connections --firewall iptables "* ]] ||
	fail "detect: agent arguments: $(tr '\0' ' ' <"/proc/$AP/cmdline")"
rules | grep -q '^:MTIN_' && ! rules | grep -q mirrord_trace_ || fail "detect: not iptables rules: $(rules)"
ALICE=$(printf 'GET / HTTP/1.1\r\nHost: lolz\r\nx-user: alice\r\nConnection: close\r\n\r\n' | od -An -tx1 | tr -d ' \n')
r=$(client raw "$SVC" $PORT 0 "$ALICE")
[[ "$r" == *" 200 OK "*" detect /" ]] || fail "detect: alice at once: $r"
r=$(client raw "$SVC" $PORT 1500 "$ALICE")
[[ "$r" == *" 200 OK "*" hello from the pod" ]] || fail "detect: alice after 1.5 s of silence: $r"
r=$(client raw "$SVC" $PORT 0 160301000568656c6c6f0d0a0d0a)
[[ "$r" == *"Bad request syntax ('\\x16\\x03\\x01\\x00\\x05hello')"* ]] || fail "detect: TLS-like bytes: $r"
[ "$(log_lines detect)" = 1 ] || fail "detect: the local app got: $(cat "$W/detect.log")"
echo "ok: agent settings: 1 s HTTP detection (silent then alice → pod), iptables, no flush; non-HTTP bytes → pod"
stop "detect"

cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "feature": {"network": {"incoming": {"mode": "steal",
  "http_filter": {"all_of": [{"header": "^x-user: alice$"}, {"path": "^/api/"}]}}}}}
JSON
filter_case allof "200 allof /api/1
$POD_404
$POD_404
$POD_HELLO" "GET /api/1 x-user: alice" "GET /api/2 x-user: bob" "GET /api/3" "GET / x-user: alice"
echo "ok: all_of: only alice's /api/ requests reached the local app"

cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "feature": {"network": {"incoming": {"mode": "steal",
  "http_filter": {"any_of": [{"header": "^x-user: alice$"}, {"method": "PUT"}]}}}}}
JSON
filter_case anyof "200 anyof /1
200 anyof /echo
$POD_HELLO" "GET /1 x-user: alice" "PUT /echo x-user: bob" "GET / x-user: bob"
echo "ok: any_of: alice's requests and PUTs reached the local app"

# ---- cleanup after SIGKILL of mirrord-trace and of the agent ----
serve killmt --steal -t deploy/lolz -n $NS -- "$PY" "$APP" killmt $PORT "$W/killmt.log"
[ "$(get /k)" = "killmt /k" ] || fail "SIGKILL mirrord-trace: not stolen before the kill: $(get /k 2>&1)"
kill -KILL "$MTPID"
wait "$BG"
MTPID=""
rules_back 15 || fail "SIGKILL of mirrord-trace: nat rules: want
$BEFORE
got
$(rules)"
[ "$(get /)" = "hello from the pod" ] || fail "SIGKILL of mirrord-trace: the pod does not answer its port"
echo "ok: SIGKILL of mirrord-trace: the nat table is as before and the pod answers its port"
none_left "after SIGKILL of mirrord-trace" 40

serve killagent --steal -t deploy/lolz -n $NS -- "$PY" "$APP" killagent $PORT "$W/killagent.log"
[ "$(get /k)" = "killagent /k" ] || fail "SIGKILL agent: not stolen before the kill: $(get /k 2>&1)"
AJOB=$(sed -n "s|^  agent job $NS/\(mirrord-trace-agent-[a-z0-9]*\) created$|\1|p; s|^  agent job default/\(mirrord-trace-agent-[a-z0-9]*\) created$|\1|p" "$W/killagent.err")
[ -n "$AJOB" ] || fail "SIGKILL agent: no agent job in the progress: $(cat "$W/killagent.err")"
APID=$(/usr/bin/python3 -c 'import json, sys
for p in json.load(open(sys.argv[1])):
    if p["name"].startswith(sys.argv[2] + "-"):
        print(p["containers"][0]["pid"])' "$PODS_JSON" "$AJOB")
[ -n "$APID" ] && grep -q -- "--listen" "/proc/$APID/cmdline" ||
	fail "SIGKILL agent: no agent process for $AJOB in pods.json ($APID)"
kill -KILL "$APID"
rules_back 10 || fail "SIGKILL of the agent: nat rules: want
$BEFORE
got
$(rules)"
[ "$(get /)" = "hello from the pod" ] || fail "SIGKILL of the agent: the pod does not answer its port"
echo "ok: SIGKILL of the agent: the nat table is as before and the pod answers its port"
# mirrord-trace loses its agent: it gives up and ends the program.
wait_until 60 sh -c "! kill -0 $MTPID 2>/dev/null" ||
	fail "SIGKILL of the agent: mirrord-trace still runs after 60 s: $(tail -3 "$W/killagent.err")"
wait "$BG"
MTPID=""
none_left "after SIGKILL of the agent" 40

# ---- port_mapping: the app listens on 9090, the pod's port is 80 ----
cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "feature": {"network": {"incoming": {"mode": "steal", "port_mapping": [[9090, 80]]}}}}
JSON
serve mapped -f "$CFG" -- "$PY" "$APP" mapped 9090 "$W/mapped.log"
[ "$(get /m)" = "mapped /m" ] || fail "port_mapping: $(get /m 2>&1)"
echo "ok: port_mapping: the pod's port 80 reaches the app's 9090"
stop "port_mapping"

# ---- listen_ports: the app asks for 80, binds 9191 locally ----
cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "feature": {"network": {"incoming": {"mode": "steal", "listen_ports": [[80, 9191]]}}}}
JSON
serve lports -f "$CFG" -- "$PY" "$APP" lports $PORT "$W/lports.log"
[ "$(cat "$W/lports.out")" = "ready $PORT" ] || fail "listen_ports: getsockname: $(cat "$W/lports.out")"
[ -n "$(in_ws_ss 9191)" ] && [ -z "$(in_ws_ss $PORT)" ] ||
	fail "listen_ports: the app's socket is not on 9191: $(in_ws ss -Hltn)"
[ "$(get /l)" = "lports /l" ] || fail "listen_ports: $(get /l 2>&1)"
echo "ok: listen_ports: bound to 9191, getsockname() says $PORT, the pod's port reaches it"
stop "listen_ports"

# ---- a port busy on the workstation: remapped ----
T=120 in_ws "$PY" -c 'import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", '$PORT')); s.listen()
print("busy", flush=True); time.sleep(120)' >"$W/blocker.out" &
BLOCKER=$!
wait_until 10 grep -q busy "$W/blocker.out" || fail "busy port: the blocker did not start"
serve busy --steal -t "pod/$POD" -n $NS -- "$PY" "$APP" busy $PORT "$W/busy.log"
[ "$(cat "$W/busy.out")" = "ready $PORT" ] || fail "busy port: getsockname: $(cat "$W/busy.out")"
[ "$(get /b)" = "busy /b" ] || fail "busy port: $(get /b 2>&1)"
echo "ok: busy local port (pod target): remapped, getsockname() says $PORT, the pod's port reaches the app"
stop "busy port"
kill "$BLOCKER"
wait "$BLOCKER" 2>/dev/null
BLOCKER=""

# ---- IPv6 listeners: [::] IPv6-only (python) and [::1] (Go) ----
IN_V6ONLY=1 serve v6only --steal -t deploy/lolz -n $NS -- "$PY" "$APP" v6only $PORT "$W/v6only.log"
[ "$(get /6)" = "v6only /6" ] || fail "IPv6-only listener: $(get /6 2>&1)"
stop "IPv6-only listener"
serve v6lo --steal -t deploy/lolz -n $NS -- "$GO" serve v6lo "[::1]:$PORT" "$W/v6lo.log"
[ "$(get /6)" = "v6lo /6" ] || fail "[::1] listener: $(get /6 2>&1)"
grep -qE "^GET /6 0 [0-9a-f]+ (::ffff:)?10\.244\." "$W/v6lo.log" ||
	fail "[::1] listener: the peer: $(cat "$W/v6lo.log")"
echo "ok: IPv6 listeners: [::] IPv6-only and [::1] get the pod's IPv4 traffic"
stop "[::1] listener"

# ---- an app that binds and never listens: nothing is redirected ----
serve nolisten --steal -t deploy/lolz -n $NS -- "$PY" -c 'import socket, time
s = socket.socket(); s.bind(("0.0.0.0", '$PORT')); print("ready", flush=True); time.sleep(60)'
[ "$(rules)" = "$BEFORE" ] || fail "never listens: a rule was installed: $(rules)"
[ "$(get /)" = "hello from the pod" ] || fail "never listens: the pod does not answer: $(get / 2>&1)"
echo "ok: an app that never listens: no rule, the pod keeps its port"
stop "never listens"

echo "PASS"
