#!/bin/bash
# The port-forward to the agent under a running program: 1 GiB through it
# arrives intact (sha256), and when the port-forward drops (admin fault
# portforward_drop: the API server cuts it with no close frame) the session
# reconnects and the program goes on. What the program sees, as documented
# in session/session.c: the connection in flight is reset, DNS and new
# connections work again once the link is back, its exit code is its own.
# Usage: exec_reconnect.sh MIRRORD_TRACE
. "$(dirname "$0")/exec_lib.sh"
FLAG=$(mktemp -u)
EXTRA_FILES="$FLAG"
URL=http://lolz.default.svc.cluster.local

none_left "before the tests"

# --- 1 GiB: four 256 MiB downloads of the server's repeating pattern
WANT=$(/usr/bin/python3 - "$CLUSTER/../pod" <<'PY'
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from servers import PATTERN
n = 256 << 20
block = PATTERN * (65536 // len(PATTERN))
h = hashlib.sha256()
for _ in range(4):
    left = n
    while left:
        c = block[:min(left, len(block))]
        h.update(c)
        left -= len(c)
print(h.hexdigest())
PY
) || fail "cannot compute the expected sha256"
T=300 mt -t deploy/lolz -n lolzspace -- sh -c \
	"for i in 1 2 3 4; do curl -sS -m 200 '$URL/bytes?n=268435456' || exit 9; done | sha256sum" ||
	fail "1 GiB run: rc=$? err=$(cat "$ERR")"
GOT=$(cut -d' ' -f1 "$OUT")
[ "$GOT" = "$WANT" ] || fail "1 GiB through the port-forward: sha256 $GOT, want $WANT"
echo "ok: 1 GiB through the port-forward, sha256 $GOT"
none_left "after 1 GiB"

# --- a drop in the middle of a download
admin fault portforward_drop 2000000
in_ws "$MT" exec -t deploy/lolz -n lolzspace -- sh -c "
	curl -sS -m 30 -o /dev/null '$URL/bytes?n=67108864'; echo first=\$?
	for i in \$(seq 300); do [ -e '$FLAG' ] && break; sleep 0.1; done
	curl -sS -m 20 '$URL/'; echo second=\$?
	exit 5" >"$OUT" 2>"$ERR" &
PID=$!
wait_until 60 grep -q "^first=" "$OUT" || fail "drop: the first download never ended: $(cat "$OUT") $(cat "$ERR")"
admin fault portforward_drop 0
touch "$FLAG"
wait "$PID"
rc=$?
[ "$rc" = 5 ] || fail "drop: exit code $rc, want the program's 5; err=$(cat "$ERR")"
grep -qx "first=0" "$OUT" && fail "drop: the download in flight was not cut"
grep -qE "^first=(18|56|52|92|16)$" "$OUT" || fail "drop: first download: $(cat "$OUT")"
grep -q "hello from the pod" "$OUT" || fail "drop: no answer after the reconnect: $(cat "$OUT") $(cat "$ERR")"
grep -qx "second=0" "$OUT" || fail "drop: second request: $(cat "$OUT")"
grep -q "lost the connection to the agent (.*); reconnecting; 1 relayed connection was reset" "$ERR" ||
	fail "drop: no reconnect notice: $(cat "$ERR")"
grep -qE "reconnected to the agent after [0-9]+ ms" "$ERR" || fail "drop: no reconnected notice: $(cat "$ERR")"
echo "ok: drop: $(grep -o 'reconnected to the agent after [0-9]* ms' "$ERR")"
none_left "after the drop"

echo "PASS"
