#!/bin/bash
# feature.network.outgoing: ignore_localhost and filter (mirrord-behaviour.md,
# "outgoing"). With ignore_localhost false (the default) a loopback
# destination goes to the pod's loopback unless something listens on that
# port here; with true, loopback stays local. A filter sends listed
# destinations remote ("remote") or local ("local"), the rest the other way.
# mirrord-trace's own DNS relay stays local whatever the config says.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "the config decides between the pod and the workstation: nothing to compare natively"
require_cmd curl redis-cli

PORT=18080 # on loopback, in the pod and maybe in the workstation

# serve NETNS BODY: an HTTP server on 127.0.0.1:$PORT in NETNS answering
# BODY; bounded (120 s), killed at exit. Waits until it listens.
serve() {
	local ns=$1 body=$2 ready=$T/ready.$1
	rm -f "$ready"
	timeout -k 2 120 ip netns exec "$ns" "$PY" -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = sys.argv[2].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
open(sys.argv[3], "w").close()
s.serve_forever()
' "$PORT" "$body" "$ready" </dev/null >/dev/null 2>&1 &
	E2E_PIDS+=($!)
	SERVE_PID=$!
	for _ in $(seq 100); do [ -e "$ready" ] && return 0; sleep 0.1; done
	e2e_log "FAIL: the loopback server in $ns did not start"
	exit 1
}

conf() { # conf NAME JSON: a config file
	printf '%s\n' "$2" >"$T/$1.json"
	echo "$T/$1.json"
}
C_IGNORE=$(conf ignore '{"feature": {"network": {"outgoing": {"ignore_localhost": true}}}}')
C_NOIGNORE=$(conf noignore '{"feature": {"network": {"outgoing": {"ignore_localhost": false}}}}')

serve "$POD_NETNS" "pod-loopback"

# ---- ignore_localhost ----
run traced -- curl -sS "http://127.0.0.1:$PORT/"
expect_out_eq "pod-loopback" "default (ignore_localhost false): nothing listens here, so 127.0.0.1 is the pod's loopback"
run traced -f "$C_NOIGNORE" --trace -- curl -sS "http://127.0.0.1:$PORT/"
expect_out_eq "pod-loopback" "ignore_localhost false: the pod's loopback"
expect_err_match "connect\([0-9]+, 127\.0\.0\.1:$PORT\) via agent, to the pod's loopback .*-> remote" \
	"ignore_localhost false: --trace says why the loopback connect went remote"
run traced -f "$C_IGNORE" -- curl -sS "http://127.0.0.1:$PORT/"
expect_rc 7 "ignore_localhost true: loopback stays local (nothing listens in the workstation: refused)"
run traced -- curl -sS "http://localhost:$PORT/"
expect_out_eq "pod-loopback" "default: 'localhost' (the pod's /etc/hosts) is the pod's loopback too"

serve "$WORKSTATION_NETNS" "workstation-loopback"
run traced --trace -- curl -sS "http://127.0.0.1:$PORT/"
expect_out_eq "workstation-loopback" "default: a port that listens here stays local"
expect_err_match "connect\([0-9]+, 127\.0\.0\.1:$PORT\) loopback, something listens here -> local" \
	"default: --trace says why it stayed local"
kill "$SERVE_PID" 2>/dev/null

# The DNS relay is ours: names still resolve when loopback goes remote,
# and when a filter sends everything on port 53 remote.
C_DNS=$(conf dns '{"feature": {"network": {"outgoing": {"filter": {"remote": ["udp://:53", "127.0.0.0/8"]}}}}}')
run traced -f "$C_DNS" --trace -- curl -sS "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_err_match "connect\([0-9]+, 127\.0\.0\.15[3-9]:53\) \(mirrord-trace's own relay\) -> local" \
	"the DNS relay stays local even when the filter lists it"

# ---- filter ----
C_LOCAL=$(conf local "{\"feature\": {\"network\": {\"outgoing\": {\"filter\": {\"local\": [\"tcp://$HTTP_IP:$HTTP_PORT\", \"tcp://[$HTTP_IP6]:$HTTP_PORT\"]}}}}}")
run traced -f "$C_LOCAL" --trace -- curl -sS "http://$HTTP_IP:$HTTP_PORT/"
expect_rc 7 "filter local [web:80]: the connect stays in the workstation (no route there)"
expect_err_match "connect\([0-9]+, $HTTP_IP:$HTTP_PORT\) \(outgoing.filter.local\) -> local: -1 ENETUNREACH" \
	"filter local: --trace names the filter"
run traced -f "$C_LOCAL" -- redis-cli -h "$REDIS_IP" PING
expect_out_eq "PONG" "filter local [web:80]: other destinations still go remote"

C_REMOTE=$(conf remote "{\"feature\": {\"network\": {\"outgoing\": {\"filter\": {\"remote\": [\"$REDIS_IP/32\", \"[$REDIS_IP6]\", \"10.244.0.0/30:80\"]}}}}}")
run traced -f "$C_REMOTE" -- redis-cli -h "$REDIS_SHORT_NAME" PING
expect_out_eq "PONG" "filter remote [redis]: a listed destination (by name, resolved in the pod) goes remote"
run traced -f "$C_REMOTE" --trace -- curl -sS "http://$HTTP_IP:$HTTP_PORT/"
expect_rc 7 "filter remote [redis]: an unlisted destination stays local"
expect_err_match "connect\([0-9]+, $HTTP_IP:$HTTP_PORT\) \(not in outgoing.filter.remote\) -> local" \
	"filter remote: --trace names the filter"

# ---- bad entries ----
C_BAD=$(conf bad '{"feature": {"network": {"outgoing": {"filter": {"remote": ["tcp://10.0.0.0/33"]}}}}}')
run in_ws "$MT" -f "$C_BAD" --agent-addr 127.0.0.1:1 -- true
expect_rc 2 "a bad filter entry is a config error"
expect_err_match 'outgoing\.filter.*10\.0\.0\.0/33' "the error names the entry"
C_NAME=$(conf name '{"feature": {"network": {"outgoing": {"filter": {"local": ["example.com:443"]}}}}}')
run traced -f "$C_NAME" -- curl -sS "http://$HTTP_IP:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "a host name entry never matches (the rest goes remote)"
expect_err_match 'host name entries \("example\.com"\) never match' "a host name entry: one warning says so"
e2e_done
