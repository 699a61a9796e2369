#!/bin/bash
# config.cli: `verify-config` and `exec` as a user or an IDE meets them on a
# bad or a good configuration; no cluster and no agent needed.
#   - verify-config on a bad config: exit 2, nothing on stdout, exactly one
#     line per problem on stderr, each naming the file:line and the field;
#   - verify-config on a good one: the sources of flag, variable, file and
#     default values (MIRRORD_AGENT_IMAGE_TAG and TRACEPARENT included);
#   - verify-config --ide: mirrord's Success / Fail document, exit 0,
#     nothing on stderr;
#   - exec with a bad target, an unknown field or a bad variable: one line per
#     problem, the program never starts, nothing else (kubeconfig, agent) is
#     tried first.
# usage: cli.sh MIRRORD_TRACE_BINARY
set -uo pipefail
MT=$(readlink -f "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/mt-config-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
FAILS=0 CHECKS=0
OUT=$T/out ERR=$T/err RC=0

fail() {
	echo "FAIL: $1"
	echo "  stdout: $(head -c 2000 "$OUT")"
	echo "  stderr: $(head -c 2000 "$ERR")"
	FAILS=$((FAILS + 1))
}
check() { # check WHAT COMMAND...: COMMAND must succeed
	local what=$1
	shift
	CHECKS=$((CHECKS + 1))
	"$@" || fail "$what"
}
# run ARGS...: mirrord-trace in a clean environment (no MIRRORD_* of the
# caller, a kubeconfig that does not exist); extra variables via ENVS.
run() {
	env -i PATH="$PATH" HOME="$T" KUBECONFIG="$T/no-kubeconfig" ${ENVS:-} \
		"$MT" "$@" >"$OUT" 2>"$ERR"
	RC=$?
}
lines() { grep -c . "$1"; }
json() { /usr/bin/python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$OUT"; }

# Broken on purpose: the delimiter BAD tells config.schema so.
cat >bad.json <<'BAD'
{
  "agent": {"ttl": -1, "port": 8080},
  "feature": {"env": {"includ": "A"}},
  "target": {
    "path": "pod/x/baz"
  }
}
BAD

# --- verify-config on a bad config
run verify-config bad.json
check "verify-config bad: exit 2 (got $RC)" test "$RC" = 2
check "verify-config bad: nothing on stdout" test ! -s "$OUT"
check "verify-config bad: one line per problem (4)" test "$(lines "$ERR")" = 4
check "verify-config bad: agent.ttl at 2:13" grep -qx 'mirrord-trace: error: bad.json:2:13: agent.ttl: -1 is out of range (0-65535)' "$ERR"
check "verify-config bad: agent.port at 2:24" grep -qx 'mirrord-trace: error: bad.json:2:24: agent.port: unknown field' "$ERR"
check "verify-config bad: feature.env.includ at 3:23" grep -qx 'mirrord-trace: error: bad.json:3:23: feature.env.includ: unknown field' "$ERR"
check "verify-config bad: target.path at 5:5" grep -q '^mirrord-trace: error: bad.json:5:5: target.path: invalid target "pod/x/baz": ' "$ERR"
# -f and a flag problem on top: still every problem, the flag's by name.
run verify-config -f bad.json --agent-startup-timeout soon
check "verify-config bad + bad flag: exit 2" test "$RC" = 2
check "verify-config bad + bad flag: 5 lines" test "$(lines "$ERR")" = 5
check "verify-config bad + bad flag: the flag is named" grep -qx 'mirrord-trace: error: --agent-startup-timeout: agent.startup_timeout: "soon" is not a number between 0 and 65535' "$ERR"

# --- verify-config on a good config: where each value came from
cat >good.yaml <<'YAML'
target:
  pod: lolz-64698df9b7-6plq8
  container: main-container
agent:
  ttl: 5
  image:
    registry: registry.local/agent
YAML
ENVS="MIRRORD_AGENT_STARTUP_TIMEOUT=90 MIRRORD_AGENT_IMAGE_TAG=v7 TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" \
	run verify-config -f good.yaml -a tools -n lolzspace
check "verify-config good: exit 0 (got $RC)" test "$RC" = 0
check "verify-config good: no warnings" test ! -s "$ERR"
src() { json "d['config']$1['source'] + ' ' + json.dumps(d['config']$1['value'], sort_keys=True)"; }
check "target.path from the file (bare object)" test "$(src "['target']['path']")" = 'file "pod/lolz-64698df9b7-6plq8/container/main-container"'
check "target.namespace from -n" test "$(src "['target']['namespace']")" = 'flag "lolzspace"'
check "agent.namespace from -a" test "$(src "['agent']['namespace']")" = 'flag "tools"'
check "agent.ttl from the file" test "$(src "['agent']['ttl']")" = 'file 5'
check "agent.startup_timeout from the variable" test "$(src "['agent']['startup_timeout']")" = 'env 90'
check "agent.image: file registry + MIRRORD_AGENT_IMAGE_TAG" test "$(src "['agent']['image']")" = 'env {"registry": "registry.local/agent", "tag": "v7"}'
check "agent.log_level default" test "$(src "['agent']['log_level']")" = 'default "info"'
check "traceparent from TRACEPARENT" test "$(src "['traceparent']")" = 'env "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"'
check "request: the target" test "$(json "d['request']['target'] + ' ' + d['request']['agent_namespace']")" = "pod/lolz-64698df9b7-6plq8/container/main-container tools"

# --- verify-config --ide: mirrord's documents, exit 0, stderr empty
run verify-config --ide bad.json
check "--ide bad: exit 0 (got $RC)" test "$RC" = 0
check "--ide bad: nothing on stderr" test ! -s "$ERR"
check "--ide bad: type Fail" test "$(json "d['type'] + ' ' + str(sorted(d))")" = "Fail ['errors', 'type']"
check "--ide bad: every problem" test "$(json "len(d['errors'])")" = 4
check "--ide bad: located" test "$(json "d['errors'][0]")" = 'bad.json:2:13: agent.ttl: -1 is out of range (0-65535)'
run verify-config --ide good.yaml
check "--ide good: exit 0" test "$RC" = 0
check "--ide good: nothing on stderr" test ! -s "$ERR"
check "--ide good: Success with mirrord's keys" test "$(json "d['type'] + ' ' + str(sorted(d))")" = "Success ['compatible_target_types', 'config', 'type', 'warnings']"
check "--ide good: the target object" test "$(json "json.dumps(d['config'], sort_keys=True)")" = '{"namespace": null, "path": {"container": "main-container", "pod": "lolz-64698df9b7-6plq8"}}'
echo '{"agent": {"json_log": true}}' >warn.json
run verify-config --ide warn.json
check "--ide: a warning goes in the document only" test "$(json "len(d['warnings'])")-$(wc -c <"$ERR")" = 1-0
check "--ide: no target is null" test "$(json "json.dumps(d['config']['path'])")" = null
run verify-config --ide missing.json
check "--ide missing file: Fail, exit 0" test "$RC-$(json "d['type']")" = 0-Fail
run verify-config --ide --no-such-option bad.json
check "--ide usage error: exit 2" test "$RC" = 2

# --- exec: a config problem is reported before anything starts
expect_not_started() { # WHAT NLINES PATTERN
	check "$1: exit non-zero (got $RC)" test "$RC" != 0
	check "$1: the program did not start" test ! -e "$T/ran"
	check "$1: $2 line(s) on stderr" test "$(lines "$ERR")" = "$2"
	check "$1: the message" grep -q -- "$3" "$ERR"
	check "$1: no kubeconfig or agent was tried" eval '! grep -qiE "kubeconfig|agent (job|ready)|connect" "$ERR"'
	rm -f "$T/ran"
}
run exec -t pod/x/baz -- touch "$T/ran"
expect_not_started "exec -t pod/x/baz" 1 '^mirrord-trace: error: --target: target.path: invalid target "pod/x/baz"'
run -t lolz touch "$T/ran"
expect_not_started "short form, -t lolz" 1 'did you mean pod/lolz?'
run exec -f bad.json -- touch "$T/ran"
expect_not_started "exec -f bad.json" 4 '^mirrord-trace: error: bad.json:2:24: agent.port: unknown field$'
cat >unknown.json <<'BAD'
{"feature": {"filesystem": {}}}
BAD
run exec -f unknown.json --agent-addr 127.0.0.1:1 -- touch "$T/ran"
expect_not_started "exec, unknown field" 1 '^mirrord-trace: error: unknown.json:1:14: feature.filesystem: unknown field$'
ENVS="MIRRORD_IMPERSONATED_TARGET=deployment/x/blah MIRRORD_AGENT_TTL=-3" run exec -- touch "$T/ran"
expect_not_started "exec, bad variables" 2 '^mirrord-trace: error: MIRRORD_AGENT_TTL (environment): agent.ttl: '
# A regex that does not compile: one line naming the field and the fix.
cat >badre.json <<'BAD'
{"feature": {"fs": {"mapping": {"^/config/(.*": "/app/$1"}}}}
BAD
run verify-config badre.json
check "verify-config bad fs.mapping regex: exit 2 (got $RC)" test "$RC" = 2
check "verify-config bad fs.mapping regex: one line" test "$(lines "$ERR")" = 1
check "verify-config bad fs.mapping regex: the field, the pattern and the fix" grep -qx 'mirrord-trace: error: badre.json:1:21: feature.fs.mapping: bad pattern "^/config/(.\*": missing closing parenthesis at offset 12; give a PCRE2 regex (a backslash makes ( ) \[ \] { } \. \* + ? | ^ \$ literal)' "$ERR"
run exec -f badre.json --agent-addr 127.0.0.1:1 -- touch "$T/ran"
expect_not_started "exec, bad fs.mapping regex" 1 'feature.fs.mapping: bad pattern'
run exec -t targetless -e -- touch "$T/ran"
expect_not_started "exec -e targetless" 1 'an ephemeral agent needs a target'

echo "$CHECKS checks, $FAILS failed"
[ "$FAILS" = 0 ]
