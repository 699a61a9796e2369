#!/bin/bash
# up and down refuse to run without root, with a clear message.
set -uo pipefail
C=$(cd "$(dirname "$0")/.." && pwd)
command -v setpriv >/dev/null || { echo "SKIP: setpriv missing"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to drop privileges"; exit 77; }
for s in up down; do
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups bash "$C/$s" 2>&1) && { echo "FAIL: $s ran as nobody"; exit 1; }
	grep -q 'must run as root' <<<"$out" || { echo "FAIL: $s message: $out"; exit 1; }
done
echo ok
