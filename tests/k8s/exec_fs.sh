#!/bin/bash
# Remote files (feature.fs) under `mirrord-trace exec` on the fake cluster.
# Every container mounts its pod's own /app (tests/cluster/cluster.py
# write_app_files); the host's /app is an empty mount point. The expected
# output of each probe is the same probe run natively in the target
# container's mount namespace (nsenter -m), and its key facts are also
# checked against fixed values, so a baseline that is wrong cannot pass.
#   - static Go, a static musl program, busybox, python3 and node read
#     /app/config.yaml, list /app, stat a file (the pod's size and mtime),
#     read the service-account token and CA and the pod's /etc/hostname,
#     while /tmp, /usr/lib and the cwd stay local;
#   - kubectl.1.32 with no kubeconfig finds the in-cluster config through
#     the pod's env and service-account files, and lists pods with the
#     pod's own RBAC;
#   - write mode: create, append, mkdir, rename, unlink and rmdir reach the
#     pod's /app; the host's /app stays empty; a file the pod changes while
#     the program has it open is not overwritten at close (a warning, the
#     program's version saved);
#   - the four modes against one program, and a matrix over the decision
#     order (user lists vs the default lists, the dynamic cwd entry).
# Usage: exec_fs.sh MIRRORD_TRACE
. "$(dirname "$0")/exec_lib.sh"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
PROGS=$(dirname "$MT")/../tests/programs
rc=0
bash "$SRC/tests/programs/build.sh" "$PROGS" go muslfs >/dev/null 2>"$ERR" || rc=$?
[ $rc = 77 ] && skip "a toolchain for the static probes is missing: $(cat "$ERR")"
[ $rc = 0 ] || fail "building the static probes: $(cat "$ERR")"
for tool in busybox node /usr/bin/python3; do
	command -v $tool >/dev/null || skip "'$tool' not found (run scripts/deps)"
done
file -L "$(command -v busybox)" | grep -q 'statically linked' || skip "busybox is not busybox-static"
GO=$PROGS/go_client
MUSL=$PROGS/musl_fs
PY="/usr/bin/python3 $SRC/tests/programs/py_client.py"
NODE="node $SRC/tests/programs/node_client.js"
BB=$(command -v busybox)

NS=lolzspace
POD=$(pod_name $NS lolz-) || fail "no lolz pod in $NS"
PPID_=$(pod_pid $NS "$POD" main-container) || fail "no main-container pid for $POD"
PDIR=$(/usr/bin/python3 -c 'import json, sys
print([p["dir"] for p in json.load(open(sys.argv[1])) if p["name"] == sys.argv[2]][0])' "$PODS_JSON" "$POD")
# in_pod CMD...: CMD in the target container's mounts (natively, the baseline).
in_pod() { nsenter -t "$PPID_" -m -u -- "$@"; }
SA=/var/run/secrets/kubernetes.io/serviceaccount

[ -d /app ] || fail "no /app mount point on the host (tests/cluster/up makes it)"
[ -z "$(ls -A /app)" ] || skip "the host's /app is not empty: the test needs the pod's /app to be pod-only"
[ ! -e $SA ] || skip "this machine has $SA: the test needs the pod's to be pod-only"
[ "$(in_pod cat /app/config.yaml | head -1)" = "pod: $POD" ] || fail "the pod's /app/config.yaml does not name the pod"

# Pod-only and host-only markers on paths both sides share: a tmpfs mounted
# in the target container's mount namespace only (its propagation is
# private) hides the host's directory from the pod.
W=mt-fs-$$
TMPD=/tmp/$W
CWD=/srv/$W
mkdir -p "$TMPD" "$CWD"
echo local-tmp >"$TMPD/local-marker"
echo local-cwd >"$CWD/marker"
EMPTY_HOME=$(mktemp -d)
CFG=$(mktemp --suffix .json)
ROLE=$(mktemp --suffix .yaml)
EXTRA_FILES="$CFG $ROLE"
for d in "$TMPD" "$CWD"; do
	in_pod mount -t tmpfs -o size=1m mt-fs "$d" || fail "tmpfs over $d in the pod"
done
in_pod sh -c "echo pod-tmp >$TMPD/pod-marker && echo pod-cwd >$CWD/marker" || fail "pod markers"

# restore_app: the pod's /app as cluster.py made it (after the write tests).
# Its content only: the containers' bind mounts hold the directory itself,
# and a new one in its place would not be theirs.
restore_app() {
	find "${PDIR:?}/app" -mindepth 1 -delete
	/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import cluster
cluster.write_app_files(sys.argv[2], sys.argv[3], sys.argv[4])' "$CLUSTER" "$PDIR/app" "$POD" "$NS"
}
fs_cleanup() {
	for d in "$TMPD" "$CWD"; do in_pod umount "$d" 2>/dev/null; done
	rm -rf "$TMPD" "$CWD" "$EMPTY_HOME"
	# The read-mode write test's local file, if a check stopped it early.
	rm -f /app/mt-mode-* 2>/dev/null
	restore_app
	cleanup
}
trap fs_cleanup EXIT

# report PROBE...: what a program sees of the pod's files, one section each.
report() {
	echo "== config"; "$@" cat /app/config.yaml
	echo "== ls"; "$@" ls /app
	echo "== ls sub"; "$@" ls /app/conf
	echo "== stat"; "$@" stat /app/config.yaml
	echo "== stat data"; "$@" stat /app/data/blob.bin
	echo "== token"; "$@" cat $SA/token; echo # the token ends with no newline
	echo "== ca"; "$@" cat $SA/ca.crt
	echo "== hostname"; "$@" cat /etc/hostname
}
# local_report PROBE...: what must stay the workstation's (cwd is $CWD).
local_report() {
	echo "== tmp"; "$@" ls "$TMPD"
	echo "== cwd"; "$@" ls .
	echo "== cwd abs"; "$@" cat "$CWD/marker"
}
# bbprobe OP PATH: busybox's own applets, with the probes' output (ls -F
# marks directories "/" and symlinks "@", from an lstat of each entry).
bbprobe() {
	case $1 in
	cat) "$BB" cat "$2" ;;
	ls) LC_ALL=C "$BB" ls -1AF "$2" ;;
	stat) "$BB" stat -c '%s %Y' "$2" ;;
	esac
}
export -f report local_report bbprobe
export SA TMPD CWD BB

# The baseline, natively in the pod, and its fixed facts.
REMOTE_WANT=$(cd / && in_pod bash -c 'report "$@"' _ $PY) || fail "pod-native report: $REMOTE_WANT"
CONF=$(in_pod cat /app/config.yaml)
POD_STAT=$(in_pod stat -c '%s %Y' /app/config.yaml)
[ "$POD_STAT" = "$(printf '%s' "$CONF" | wc -c | awk '{print $1 + 1}') 1600000000" ] ||
	fail "the pod's /app/config.yaml stat: $POD_STAT"
for want in "pod: $POD" "$(printf 'README\nconf/\nconfig.yaml\ncurrent@\ndata/')" "10000 1600000000" \
	"BEGIN CERTIFICATE" "$(printf '== hostname\n%s' "$POD")" "$(in_pod cat $SA/token)"; do
	case $REMOTE_WANT in *"$want"*) ;; *) fail "pod-native report lacks '$want': $REMOTE_WANT" ;; esac
done
[ "$(in_pod cat $SA/token | wc -c)" -gt 20 ] || fail "the pod's token is too short"
LOCAL_WANT=$(printf '== tmp\nlocal-marker\n== cwd\nmarker\n== cwd abs\nlocal-cwd')
[ "$(cd "$CWD" && local_report $PY)" = "$LOCAL_WANT" ] || fail "host-native local report"

# --- each runtime, one run each: the pod's files, and local /tmp and cwd
for probe in "$GO" bbprobe "$MUSL" "$PY" "$NODE"; do
	(cd "$CWD" && mt -q -t "pod/$POD" -n $NS -- bash -c 'report "$@"; local_report "$@"' _ $probe) ||
		fail "$probe: rc=$? out=$(cat "$OUT") err=$(cat "$ERR")"
	[ "$(cat "$OUT")" = "$REMOTE_WANT
$LOCAL_WANT" ] || fail "$probe under exec: got
$(cat "$OUT")
want
$REMOTE_WANT
$LOCAL_WANT
err: $(cat "$ERR")"
done
echo "ok: go, musl, busybox, python3 and node read the pod's files; /tmp and the cwd are local"

# --- /usr/lib stays local: python3's stdlib opens are decided local.
(cd "$CWD" && mt -q --trace -t "pod/$POD" -n $NS -- /usr/bin/python3 -c 'import json, email') ||
	fail "python3 --trace: $(tail -5 "$ERR")"
grep -E 'open(at)?\("/usr/lib/python3' "$ERR" | grep -q ' -> local' ||
	fail "no local open of /usr/lib/python3* in the trace: $(grep -c '' "$ERR") lines"
if grep -E '\("/usr/lib/' "$ERR" | grep -q ' -> remote'; then
	fail "a /usr/lib path went remote: $(grep -E '\("/usr/lib/' "$ERR" | grep ' -> remote' | head -3)"
fi
echo "ok: /usr/lib stays local"

# --- the in-cluster client: kubectl with no kubeconfig and no flags
KUBECTL=$(dirname "$(readlink -f "$(command -v kubectl)")")/kubectl.1.32
[ -x "$KUBECTL" ] || skip "no $KUBECTL"
incluster() {
	(cd "$EMPTY_HOME" && mt -q -t "pod/$POD" -n $NS -- env -u KUBECONFIG HOME="$EMPTY_HOME" "$KUBECTL" get pods)
}
# Without RBAC the pod's own service account is refused by name: kubectl
# used the pod's token and the namespace file.
incluster && fail "kubectl get pods succeeded before the SA had RBAC: $(cat "$OUT")"
grep -q 'User "system:serviceaccount:lolzspace:default" cannot list resource "pods" in API group "" in the namespace "lolzspace"' "$ERR" ||
	fail "in-cluster kubectl without RBAC: $(cat "$ERR")"
cat >"$ROLE" <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: pod-reader
  namespace: lolzspace
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
EOF
admin bind-role $NS system:serviceaccount:$NS:default "$ROLE"
incluster || fail "in-cluster kubectl get pods: rc=$? out=$(cat "$OUT") err=$(cat "$ERR")"
grep -q "^$POD  *1/1  *Running" "$OUT" || fail "in-cluster kubectl: no $POD row: $(cat "$OUT")"
grep -q "^redis-0 " "$OUT" || fail "in-cluster kubectl: no redis-0 row: $(cat "$OUT")"
# kubectl keeps its discovery cache in $HOME/.kube/cache, as it would in
# the pod; a write in read mode is local. Nothing else may appear (no
# kubeconfig: the config was the in-cluster one).
LEFT=$(cd "$EMPTY_HOME" && find . ! -name . ! -path ./.kube ! -path './.kube/cache' ! -path './.kube/cache/*')
[ -z "$LEFT" ] || fail "kubectl left files in the empty HOME besides its cache: $LEFT"
rm -rf "${EMPTY_HOME:?}/.kube"
echo "ok: kubectl.1.32 in-cluster config through the pod's env, token and CA"

# --- write mode: the changes are the pod's, and the host's /app stays empty
(cd "$CWD" && mt -q --fs-mode write -t "pod/$POD" -n $NS -- sh -c '
	set -e
	echo created >/app/new.txt
	echo "more: 1" >>/app/config.yaml
	mkdir /app/newdir
	printf x >/app/newdir/f
	mv /app/README /app/README.moved
	rm /app/data/blob.bin
	rmdir /app/data
	echo overwritten >/app/conf/extra.yaml
	cat /app/new.txt /app/README.moved
	ls /app') || fail "write mode: rc=$? out=$(cat "$OUT") err=$(cat "$ERR")"
[ "$(cat "$OUT")" = "$(printf 'created\nthe pod'"'"'s /app\nREADME.moved\nconf\nconfig.yaml\ncurrent\nnew.txt\nnewdir')" ] ||
	fail "write mode: the program's view: $(cat "$OUT")"
[ "$(in_pod cat /app/new.txt)" = created ] || fail "write mode: /app/new.txt in the pod"
[ "$(in_pod tail -1 /app/config.yaml)" = "more: 1" ] || fail "write mode: append in the pod"
[ "$(in_pod head -1 /app/config.yaml)" = "pod: $POD" ] || fail "write mode: append kept the head"
[ "$(in_pod cat /app/newdir/f)" = x ] || fail "write mode: mkdir + create in the pod"
[ "$(in_pod cat /app/conf/extra.yaml)" = overwritten ] || fail "write mode: O_TRUNC rewrite in the pod"
in_pod test -e /app/README && fail "write mode: README still in the pod"
in_pod test -f /app/README.moved || fail "write mode: rename in the pod"
in_pod test -e /app/data && fail "write mode: unlink + rmdir in the pod"
[ -z "$(ls -A /app)" ] || fail "write mode changed the host's /app: $(ls -A /app)"
restore_app
echo "ok: write mode round trip in the pod's mount namespace"

# --- write mode: a conflict. Static busybox holds /app/config.yaml open for
# appending; the pod rewrites the file meanwhile (between the program's
# write and its close, at a checkpoint: $TMPD is local for the program);
# the close then keeps the pod's version, warns once and saves the
# program's under $XDG_STATE_HOME.
STATE=$EMPTY_HOME/state
(cd "$CWD" && XDG_STATE_HOME=$STATE mt -q --fs-mode write -t "pod/$POD" -n $NS -- "$BB" sh -c '
	exec 3>>/app/config.yaml
	echo "program: 1" >&3
	: >"$1/at"
	while [ ! -e "$1/go" ]; do sleep 0.1; done
	exec 3>&-
	tail -1 /app/config.yaml' _ "$TMPD") &
WPID=$!
for _ in $(seq 600); do [ -e "$TMPD/at" ] && break; sleep 0.1; done
[ -e "$TMPD/at" ] || fail "write conflict: the program did not reach its checkpoint; err=$(cat "$ERR")"
in_pod sh -c 'echo "pod: edited" >/app/config.yaml' || fail "write conflict: the pod's edit"
touch "$TMPD/go"
wait $WPID || fail "write conflict: rc=$? err=$(cat "$ERR")"
[ "$(cat "$OUT")" = "program: 1" ] || fail "write conflict: the program reads its own version: $(cat "$OUT")"
[ "$(in_pod cat /app/config.yaml)" = "pod: edited" ] || fail "write conflict: the pod's edit was overwritten: $(in_pod cat /app/config.yaml)"
[ "$(grep -c 'write-back conflict: "/app/config.yaml" changed in the pod' "$ERR")" = 1 ] ||
	fail "write conflict: not one warning: $(cat "$ERR")"
grep -q "1 write-back conflict in this run" "$ERR" || fail "write conflict: no count at exit: $(cat "$ERR")"
SAVED=$(sed -n 's|.* saved as "\(.*\)"$|\1|p' "$ERR")
case $SAVED in "$STATE"/mirrord-trace/conflicts/*/app/config.yaml) ;; *) fail "write conflict: saved as '$SAVED'" ;; esac
[ "$(head -1 "$SAVED")|$(tail -1 "$SAVED")" = "pod: $POD|program: 1" ] ||
	fail "write conflict: the saved copy: $(cat "$SAVED")"
rm -rf "$STATE" "$TMPD/at" "$TMPD/go"
restore_app
echo "ok: write mode conflict: the pod's change kept, the program's version saved, one warning"

# --- the four modes, one program: read the pod-only config, the pod's
# hostname (mirrord's default remote list), and write a new file. With
# remote DNS on, the pod's resolv.conf, hosts and hostname are served in
# every mode (cli/exec.c serve_pod_files); --no-remote-dns leaves the
# hostname to feature.fs alone.
MODE_PROG='cat /app/config.yaml 2>&1 | head -1; cat /etc/hostname; echo w >/app/mt-mode-$1 && echo wrote'
for mode in local localwithoverrides read write; do
	(cd "$CWD" && mt -q --no-remote-dns --fs-mode $mode -t "pod/$POD" -n $NS -- sh -c "$MODE_PROG" _ $mode) ||
		fail "mode $mode: rc=$? err=$(cat "$ERR")"
	HN=$POD
	CONF1="pod: $POD"
	case $mode in
	local) HN=$(cat /etc/hostname) ;& # the pod's hostname is remote by default
	localwithoverrides) CONF1="cat: /app/config.yaml: No such file or directory" ;;
	esac
	[ "$(cat "$OUT")" = "$(printf '%s\n%s\nwrote' "$CONF1" "$HN")" ] ||
		fail "mode $mode: got $(cat "$OUT"), want $CONF1 / $HN / wrote; err=$(cat "$ERR")"
	if [ $mode = write ]; then
		[ "$(in_pod cat /app/mt-mode-$mode)" = w ] || fail "mode write: the file is not in the pod"
		[ ! -e /app/mt-mode-$mode ] || fail "mode write: the file is on the host"
	else
		[ "$(cat /app/mt-mode-$mode)" = w ] || fail "mode $mode: the write is not local"
		in_pod test -e /app/mt-mode-$mode && fail "mode $mode: the write reached the pod"
		rm -f /app/mt-mode-$mode
	fi
done
[ "$(cat /etc/hostname)" != "$POD" ] || fail "the host is called $POD: the mode checks prove nothing"
restore_app
echo "ok: local, localwithoverrides, read and write"

# --- the decision order. mt_cfg JSON_FS SCRIPT: run SCRIPT with
# feature.fs = JSON_FS from $CFG in cwd $CWD (no remote DNS: see above);
# mirrord-trace must not fail. SCRIPT's own status is not checked (its
# last command may be a cat that must fail): expect_out checks its output.
mt_cfg() {
	printf '{"feature": {"fs": %s}}' "$1" >"$CFG"
	(cd "${RUN_CWD:-$CWD}" && mt -q --no-remote-dns -f "$CFG" -t "pod/$POD" -n $NS -- sh -c "$2
exit 0") ||
		fail "decision order $1: rc=$? err=$(cat "$ERR")"
}
expect_out() { [ "$(cat "$OUT")" = "$2" ] || fail "decision order, $1: got '$(cat "$OUT")', want '$2'; err=$(cat "$ERR")"; }
LS_TMP="ls $TMPD | tr '\\n' ' '; echo"
# read_only (5) beats local (6); not_found (3) beats read_only (5) and the
# default remote list (8); a user local entry (6) beats the default remote (8).
mt_cfg '{"read_only": ["^/app/config", "^/app/README"], "local": ["^/app", "^/etc/hostname$"], "not_found": ["README$"]}' \
	"head -1 /app/config.yaml; cat /app/conf/extra.yaml 2>&1; cat /etc/hostname; cat /app/README 2>&1"
expect_out "read_only > local > default remote, not_found first" "pod: $POD
cat: /app/conf/extra.yaml: No such file or directory
$(cat /etc/hostname)
cat: /app/README: No such file or directory"
# A user read_only entry (5) beats the default local /tmp (9); not_found
# (3) beats the default remote list (8); case-insensitive patterns.
mt_cfg "{\"read_only\": [\"^/TMP/$W\"], \"not_found\": [\"HOSTNAME\$\"]}" "$LS_TMP; cat /etc/hostname 2>&1"
expect_out "read_only > default local, not_found > default remote" "pod-marker 
cat: /etc/hostname: No such file or directory"
# The dynamic cwd entry: from / (no cwd entry) the same absolute path is
# the pod's; from $CWD it is local (also shown by the reports above).
RUN_CWD=/ mt_cfg '{}' "cat $CWD/marker"
expect_out "no cwd entry from /" "pod-cwd"
mt_cfg '{}' "cat $CWD/marker"
expect_out "cwd entry" "local-cwd"
# The default local list (9) has ".\.d$": a pod-only directory named *.d
# is the workstation's, unless a user read_only entry (5) names it.
in_pod sh -c 'mkdir /app/hooks.d && echo pre >/app/hooks.d/pre' || fail "pod /app/hooks.d"
mt_cfg '{}' "ls /app/hooks.d 2>&1"
expect_out "default local .d" "ls: cannot access '/app/hooks.d': No such file or directory"
mt_cfg '{"read_only": ["^/app/hooks\\.d$"]}' "ls /app/hooks.d; cat /app/hooks.d/pre"
expect_out "read_only > default local .d" "pre
pre"
# mode local (2) comes before every list, read_write (4) before
# read_only, and read_write makes a read-mode write remote.
mt_cfg '{"mode": "local", "read_only": ["^/app"], "not_found": ["hostname"]}' \
	"ls /app | wc -l; cat /etc/hostname"
expect_out "mode local first" "0
$(cat /etc/hostname)"
mt_cfg '{"read_write": ["^/app/rw"], "read_only": ["^/app/rw"]}' \
	"echo rw >/app/rw.txt && cat /app/rw.txt"
expect_out "read_write in read mode" "rw"
[ "$(in_pod cat /app/rw.txt)" = rw ] || fail "decision order: read_write did not reach the pod"
[ ! -e /app/rw.txt ] || fail "decision order: read_write wrote the host's /app"
# The default not_found list: $HOME/.kube is ENOENT though it exists locally.
mkdir -p "$EMPTY_HOME/.kube" && echo local >"$EMPTY_HOME/.kube/config"
HOME=$EMPTY_HOME mt_cfg '{}' "cat $EMPTY_HOME/.kube/config 2>&1"
expect_out "default not_found" "cat: $EMPTY_HOME/.kube/config: No such file or directory"
restore_app
echo "ok: decision order matrix"

none_left "after the fs tests"
echo "PASS"
