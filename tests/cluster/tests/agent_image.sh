#!/bin/bash
# The image mirrord-trace-agent:dev: which program it runs when up is
# started with $MIRRORD_TRACE_AGENT_BIN, with $MT_BIN_DIR, or with neither
# (the build tree <repo>/build/bin, what scripts/demo makes), checked on
# cluster.py itself with stand-in programs; then that the running cluster
# recorded its choice in cluster.env and runs it as a pod.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
probe=agent-image-$$
trap 'api DELETE "/api/v1/namespaces/default/pods/$probe" >/dev/null 2>&1; rm -rf "$tmp" "$API_OUT" "$API_OUT.h"' EXIT
mkdir -p "$tmp/env" "$tmp/bindir" "$tmp/repo/build/bin"
for f in "$tmp/env/agent" "$tmp/bindir/mirrord-trace-agent" "$tmp/repo/build/bin/mirrord-trace-agent"; do
	printf '#!/bin/sh\n' >"$f" && chmod +x "$f"
done
env -u MIRRORD_TRACE_AGENT_BIN -u MT_BIN_DIR /usr/bin/python3 -B - "$CLUSTER" "$tmp" <<'PY' || fail "agent program choice"
import os, sys
sys.path.insert(0, sys.argv[1])
import cluster
t = sys.argv[2]
cluster.REPO = t + "/repo"  # stands in for the source tree
ctr = {"name": "agent", "image": "ghcr.io/x/mirrord-trace-agent:dev", "args": ["--version"]}
def want(what, argv):
    got = cluster.image_command(ctr)
    assert got == argv, "%s: %s, not %s" % (what, got, argv)
    print("ok:", what)
want("neither variable: the build tree", [t + "/repo/build/bin/mirrord-trace-agent", "--version"])
os.environ["MT_BIN_DIR"] = t + "/bindir"
want("MT_BIN_DIR", [t + "/bindir/mirrord-trace-agent", "--version"])
os.environ["MIRRORD_TRACE_AGENT_BIN"] = t + "/env/agent"
want("MIRRORD_TRACE_AGENT_BIN first", [t + "/env/agent", "--version"])
os.environ["MIRRORD_TRACE_AGENT_BIN"] = t + "/env/missing"
want("a set but missing MIRRORD_TRACE_AGENT_BIN is not replaced by another build", None)
assert cluster.agent_bin_choice() == (t + "/env/missing", "$MIRRORD_TRACE_AGENT_BIN")
del os.environ["MIRRORD_TRACE_AGENT_BIN"]
os.environ["MT_BIN_DIR"] = t + "/nothing"
want("nor a set MT_BIN_DIR without an agent", None)
del os.environ["MT_BIN_DIR"]
os.unlink(t + "/repo/build/bin/mirrord-trace-agent")
want("no build tree: no program (ErrImagePull)", None)
PY

# The running cluster: cluster.env names the program, and a pod runs it.
[ -n "${MT_EXPECT_AGENT_BIN:-}" ] || skip "MT_EXPECT_AGENT_BIN unset (run from ctest)"
[ "${MIRRORD_TRACE_AGENT_BIN:-}" = "$(readlink -f "$MT_EXPECT_AGENT_BIN")" ] ||
	fail "cluster.env MIRRORD_TRACE_AGENT_BIN='${MIRRORD_TRACE_AGENT_BIN:-}', not $MT_EXPECT_AGENT_BIN"
echo "ok: cluster.env MIRRORD_TRACE_AGENT_BIN=$MIRRORD_TRACE_AGENT_BIN"
code=$(api POST /api/v1/namespaces/default/pods "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$probe\"},\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"agent\",\"image\":\"mirrord-trace-agent:dev\",\"args\":[\"--version\"]}]}}")
[ "$code" = 201 ] || fail "create $probe: $code $(cat "$API_OUT")"
phase() { api GET "/api/v1/namespaces/default/pods/$probe" >/dev/null && grep -q "\"phase\": *\"$1\"" "$API_OUT"; }
wait_until 20 phase Succeeded || fail "the agent pod did not succeed: $(cat "$API_OUT")"
[ "$(api GET "/api/v1/namespaces/default/pods/$probe/log")" = 200 ] || fail "log: $(cat "$API_OUT")"
grep -q . "$API_OUT" || fail "the agent printed nothing for --version"
echo "ok: mirrord-trace-agent:dev ran $MIRRORD_TRACE_AGENT_BIN --version: $(head -1 "$API_OUT")"
