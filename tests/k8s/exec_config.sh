#!/bin/bash
# The ways to say what to run against, as mirrord users do: the
# MIRRORD_IMPERSONATED_TARGET variable, a config file with target.path and
# target.namespace, the agent namespace by flag, variable and config file;
# short service names through the pod's search list; an ephemeral-container
# agent (-e); and the progress output (plain, terminal, --quiet).
# Usage: exec_config.sh MIRRORD_TRACE
. "$(dirname "$0")/exec_lib.sh"
CFG=$(mktemp --suffix=.json)
EXTRA_FILES="$CFG"

none_left "before the tests"

# job_ns_of_run: the namespace of the agent Job, from the progress line.
job_ns() { sed -n 's|^  agent job \([a-z0-9-]*\)/mirrord-trace-agent-[a-z0-9]* created$|\1|p' "$ERR"; }

# --- MIRRORD_IMPERSONATED_TARGET + MIRRORD_TARGET_NAMESPACE, short names
MIRRORD_TRACE_LOG=debug MIRRORD_IMPERSONATED_TARGET=deploy/lolz MIRRORD_TARGET_NAMESPACE=lolzspace \
	mt -- sh -c 'date +%T.%N; curl -sS -m 20 http://lolz/; date +%T.%N' ||
	fail "env target: rc=$? err=$(cat "$ERR")"
grep -q "hello from the pod" "$OUT" ||
	fail "env target, short name lolz: $(cat "$OUT") $(cat "$ERR") dnsmasq: $(tail -n 30 "$MTC_DIR/logs/dnsmasq")"
grep -qE "^✓ target deploy(ment)?/lolz → pod lolz-[a-z0-9]+-[a-z0-9]+ \(main-container\)" "$ERR" ||
	fail "env target progress: $(cat "$ERR")"
[ "$(job_ns)" = default ] || fail "agent Job namespace (default expected): $(cat "$ERR")"
none_left "after the env target"

# --- a config file: target.path + target.namespace, agent.namespace
cat >"$CFG" <<'JSON'
{"target": {"path": "deploy/lolz", "namespace": "lolzspace"},
 "agent": {"namespace": "lolzspace"}}
JSON
mt -f "$CFG" -- cat /etc/hostname || fail "config file: rc=$? err=$(cat "$ERR")"
grep -qE "^lolz-[a-z0-9]+-[a-z0-9]+$" "$OUT" || fail "config file: hostname of the pod: $(cat "$OUT")"
[ "$(job_ns)" = lolzspace ] || fail "config agent.namespace: $(cat "$ERR")"
none_left "after the config file"

# ...the variable beats the file, the flag beats the variable
MIRRORD_AGENT_NAMESPACE=default mt -f "$CFG" -- true || fail "env agent ns: err=$(cat "$ERR")"
[ "$(job_ns)" = default ] || fail "MIRRORD_AGENT_NAMESPACE over the file: $(cat "$ERR")"
MIRRORD_AGENT_NAMESPACE=default mt -f "$CFG" -a lolzspace -- true || fail "flag agent ns: err=$(cat "$ERR")"
[ "$(job_ns)" = lolzspace ] || fail "-a over MIRRORD_AGENT_NAMESPACE: $(cat "$ERR")"
none_left "after the agent namespaces"

# --- --quiet and MIRRORD_PROGRESS_MODE=off: no progress at all
mt -q -t deploy/lolz -n lolzspace -- true || fail "--quiet: err=$(cat "$ERR")"
[ ! -s "$ERR" ] || fail "--quiet printed: $(cat "$ERR")"
MIRRORD_PROGRESS_MODE=off mt -t deploy/lolz -n lolzspace -- true || fail "progress off: err=$(cat "$ERR")"
[ ! -s "$ERR" ] || fail "MIRRORD_PROGRESS_MODE=off printed: $(cat "$ERR")"
none_left "after --quiet"

# --- on a terminal: one line that updates in place (spinner, \r + erase)
TTYLOG=$(mktemp)
EXTRA_FILES="$CFG $TTYLOG"
T=90 in_ws script -qfec "$MT exec -t deploy/lolz -n lolzspace -- true" "$TTYLOG" >/dev/null 2>&1 ||
	fail "tty run: $(cat "$TTYLOG")"
grep -q $'\r\033\[K' "$TTYLOG" || fail "tty: no in-place updates: $(od -c "$TTYLOG" | head)"
grep -qE '⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏' "$TTYLOG" || fail "tty: no spinner"
grep -q "✓ agent ready" "$TTYLOG" || fail "tty: no ready line: $(cat "$TTYLOG")"
[ "$(grep -c 'starting agent' "$TTYLOG")" -le 2 ] || fail "tty: progress printed as separate lines"
none_left "after the tty run"

# --- an ephemeral agent in the target pod: no Job at all
mt -e -t pod/standalone/container/web -- sh -c 'env; curl -sS -m 10 http://standalone:8080/' ||
	fail "ephemeral: rc=$? err=$(cat "$ERR")"
grep -q "hello from the pod" "$OUT" || fail "ephemeral: the pod (by its hostname) not reached: $(cat "$OUT")"
grep -qx "GREETING=standalone" "$OUT" || fail "ephemeral: not the container's env"
grep -qx "KUBERNETES_SERVICE_HOST=10.96.0.1" "$OUT" || fail "ephemeral: no pod env"
grep -qE "^  agent ephemeral container mirrord-trace-agent-[a-z0-9]+ in pod standalone created$" "$ERR" ||
	fail "ephemeral progress: $(cat "$ERR")"
# Ephemeral containers stay in the pod spec; the agent process must end.
EC=$(sed -n 's/^  agent ephemeral container \(mirrord-trace-agent-[a-z0-9]*\) in pod standalone created$/\1/p' "$ERR")
ec_done() {
	[ "$(api GET /api/v1/namespaces/default/pods/standalone)" = 200 ] || return 1
	/usr/bin/python3 -c 'import json, sys
p = json.load(open(sys.argv[1]))
for s in p["status"].get("ephemeralContainerStatuses", []):
    if s["name"] == sys.argv[2] and "terminated" in s["state"]:
        sys.exit(0)
sys.exit(1)' "$API_OUT" "$EC"
}
wait_until 20 ec_done || fail "ephemeral agent $EC did not terminate"
none_left "after the ephemeral agent"
mt -e -t targetless -- true && fail "ephemeral + targetless accepted"
grep -q "ephemeral agent needs a target" "$ERR" || fail "ephemeral + targetless message: $(cat "$ERR")"

echo "PASS"
