#!/bin/bash
# Write mode (--fs-mode write): what the README promises, seen from inside the
# pod's mount namespace while the program runs, and write-back conflicts.
#  1. mkdir, rename, truncate, unlink and rmdir are in the pod when the call
#     returns; a file's content when the program fsyncs or closes it, before
#     the pod renames it, and at exit for an fd never closed; until then the
#     pod has the previous content.
#  2. A pod file that changes in the pod (written, created meanwhile,
#     deleted) while the program has it open for writing is not replaced:
#     one warning per file names it, the program's version is saved under
#     $XDG_STATE_HOME/mirrord-trace/conflicts, and the run ends with a count.
#  3. The run's own write-backs (twice in a row, appends, quick same-size
#     rewrites) are never conflicts.
# A Python driver stops at checkpoints (it creates $T/at.N and waits for
# $T/go.N, both local: /tmp is local by default), so the pod can be looked
# at, or changed, between two calls of the program.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "tracer-only scenario (write-back is mirrord-trace's)"
require_cmd python3 busybox

D=/srv/mt-fsw-$$ # the pod's path
HD=$MT_POD_DIR/srv/mt-fsw-$$
mkdir -p "$HD"
[ ! -e "$D" ] || skip "$D exists on this machine: the scenario needs it pod-only"
export XDG_STATE_HOME=$T/state

cat >"$T/drv.py" <<'EOF'
import os, sys, time
D, T, what = sys.argv[1], sys.argv[2], sys.argv[3]

def cp(n):
    open(f"{T}/at.{n}", "w").close()
    while not os.path.exists(f"{T}/go.{n}"):
        time.sleep(0.02)

if what == "guarantees":
    f = open(f"{D}/a.txt", "w")
    f.write("one"); f.flush()
    cp(1)
    os.fsync(f.fileno())
    cp(2)
    f.write("two"); f.flush()
    cp(3)
    f.close()
    cp(4)
    os.mkdir(f"{D}/dir")
    cp(5)
    g = open(f"{D}/c.txt", "w")
    g.write("unclosed"); g.flush()
    os.rename(f"{D}/c.txt", f"{D}/dir/d.txt")
    cp(6)
    os.truncate(f"{D}/dir/d.txt", 2)
    cp(7)
    os.unlink(f"{D}/dir/d.txt")
    cp(8)
    os.rmdir(f"{D}/dir")
    cp(9)
    t = open(f"{D}/t.txt", "w")
    cp(10)
    t.write("new"); t.flush()
    h = open(f"{D}/e.txt", "w")
    h.write("at exit"); h.flush()
    os._exit(0)
elif what == "conflicts":
    f = open(f"{D}/conf.txt", "r+")
    f.seek(0, 2); f.write(" + program"); f.flush()
    cp(1)
    f.close()
    f = open(f"{D}/conf.txt", "a")
    f.write(" + more"); f.close()
    n = open(f"{D}/new.txt", "w")
    n.write("the program's new file"); n.flush()
    cp(2)
    os.fsync(n.fileno())
    n.close()
    d = open(f"{D}/del.txt", "a")
    d.write(" + program"); d.flush()
    cp(3)
    d.close()
    print(open(f"{D}/conf.txt").read())
elif what == "rewrites":
    for c in "abc":
        with open(f"{D}/same.txt", "r+") as f:
            f.write(c)
    with open(f"{D}/two.txt", "w") as f:
        f.write("1"); f.flush(); os.fsync(f.fileno())
        f.write("2"); f.flush(); os.fsync(f.fileno())
    print(open(f"{D}/same.txt").read(), open(f"{D}/two.txt").read())
EOF

# at N: the driver reached checkpoint N (within 30 s). go N: let it go on.
at() {
	for _ in $(seq 600); do
		[ -e "$T/at.$1" ] && return 0
		sleep 0.05
	done
	echo "e2e: the driver did not reach checkpoint $1" >&2
	return 1
}
go() { touch "$T/go.$1"; }
# pod PATH: the file's content as the pod sees it, or "(none)".
pod() { in_pod cat "$1" 2>/dev/null || echo "(none)"; }
# start_driver WHAT: the driver under the tracer, in the background.
start_driver() {
	rm -f "$T"/at.* "$T"/go.*
	traced --fs-mode write -- python3 "$T/drv.py" "$D" "$T" "$1" >"$T/drv.out" 2>"$T/drv.err" &
	DRV=$!
	E2E_PIDS+=("$DRV")
}
# end_driver: wait for it; RC, OUT, ERR as `run` sets them.
end_driver() {
	RC=0
	wait "$DRV" || RC=$?
	LAST_CMD="mirrord-trace --fs-mode write -- python3 drv.py $*"
	OUT=$(cat "$T/drv.out")
	ERR=$(cat "$T/drv.err")
}
no_conflict() {
	if grep -qi conflict <<<"$ERR"; then fail "$1" "no conflict warning" "$(grep -i conflict <<<"$ERR")"; else pass "$1"; fi
}

# ---- 1. the guarantees, seen in the pod during the run ----
printf 'old' >"$HD/t.txt"
start_driver guarantees
at 1 && expect_eq "" "$(pod "$D/a.txt")" "open(O_CREAT) creates the file in the pod at once; written content waits"
go 1
at 2 && expect_eq "one" "$(pod "$D/a.txt")" "fsync writes the content back"
go 2
at 3 && expect_eq "one" "$(pod "$D/a.txt")" "until the next close or fsync the pod has the previous content"
go 3
at 4 && expect_eq "onetwo" "$(pod "$D/a.txt")" "close writes back again (a second write-back of the run)"
go 4
at 5 && expect_true "mkdir is in the pod when it returns" in_pod test -d "$D/dir"
go 5
at 6 && expect_eq "unclosed|(none)" "$(pod "$D/dir/d.txt")|$(pod "$D/c.txt")" "rename: an fd's unclosed writes are written back before the pod renames the file"
go 6
at 7 && expect_eq "un" "$(pod "$D/dir/d.txt")" "truncate is in the pod when it returns"
go 7
at 8 && expect_eq "(none)" "$(pod "$D/dir/d.txt")" "unlink is in the pod when it returns"
go 8
at 9 && expect_true "rmdir is in the pod when it returns" in_pod test ! -e "$D/dir"
go 9
at 10 && expect_eq "" "$(pod "$D/t.txt")" "open(O_TRUNC) truncates the pod's file at once"
go 10
end_driver guarantees
expect_rc 0 "the guarantees driver"
expect_eq "at exit|new" "$(pod "$D/e.txt")|$(pod "$D/t.txt")" "fds never closed are written back at the end of the run"
no_conflict "the run's own write-backs are no conflicts"

# ---- 2. conflicts ----
printf 'pod v1' >"$HD/conf.txt"
printf 'del v1' >"$HD/del.txt"
start_driver conflicts
at 1 && in_pod sh -c "printf 'pod v2' >$D/conf.txt"
go 1
at 2 && in_pod sh -c "printf 'the pod wrote new.txt too' >$D/new.txt"
go 2
at 3 && in_pod rm "$D/del.txt"
go 3
end_driver conflicts
expect_rc 0 "a conflict fails neither fsync nor close: the program goes on"
expect_out_eq "pod v1 + program + more" "the program keeps reading its own version"
expect_eq "pod v2" "$(pod "$D/conf.txt")" "changed in the pod: the pod's version is kept"
expect_eq "the pod wrote new.txt too" "$(pod "$D/new.txt")" "created by the program, then written in the pod: the pod's version is kept"
expect_eq "(none)" "$(pod "$D/del.txt")" "deleted in the pod: it stays deleted"
expect_eq 3 "$(grep -c 'write-back conflict: ' <<<"$ERR")" "one warning per file, not per write-back"
expect_err_match "write-back conflict: \"$D/conf.txt\" changed in the pod since it was last read or written back; the pod's version is kept, the program's version is saved as \"$XDG_STATE_HOME/mirrord-trace/conflicts/[0-9]{8}T[0-9]{6}Z-[0-9]+$D/conf.txt\"" "the warning names the pod path, what happened and where the program's version is"
expect_err_match "write-back conflict: \"$D/new.txt\" changed in the pod" "warning for the file the program created"
expect_err_match "write-back conflict: \"$D/del.txt\" was deleted in the pod .*it stays deleted" "warning for the deleted file"
expect_err_match "3 write-back conflicts in this run" "the count at the end"
SAVED=$(sed -n "s|.*the program's version is saved as \"\\(.*\\)$D/conf.txt\"|\\1|p" <<<"$ERR" | head -n 1)
expect_true "the saved copies are in one directory of the run ($SAVED)" test -n "$SAVED" -a -d "$SAVED"
expect_eq "pod v1 + program + more" "$(cat "$SAVED$D/conf.txt" 2>&1)" "the saved copy has the program's last version (later write-backs update it)"
expect_eq "the program's new file" "$(cat "$SAVED$D/new.txt" 2>&1)" "the program's version of the file it created is saved"
expect_eq "del v1 + program" "$(cat "$SAVED$D/del.txt" 2>&1)" "the program's version of the deleted file is saved"
expect_eq 700 "$(stat -c %a "$SAVED" 2>&1)" "the saved copies are private (mode 0700)"

# ---- 3. no false conflicts ----
printf 'x' >"$HD/same.txt"
start_driver rewrites
end_driver rewrites
expect_rc 0 "same-size rewrites and two fsyncs in a row"
expect_out_eq "c 12" "the program reads its writes"
expect_eq "c|12" "$(pod "$D/same.txt")|$(pod "$D/two.txt")" "every write-back reached the pod"
no_conflict "quick same-size rewrites and fsyncs are no conflicts"
run traced --fs-mode write -- busybox sh -c "echo 1 >$D/b.txt; echo 2 >>$D/b.txt; echo 3 >>$D/b.txt; cat $D/b.txt"
expect_rc 0 "static busybox: create, then two appends"
expect_eq "$(printf '1\n2\n3')" "$(pod "$D/b.txt")" "static busybox: the pod has every append"
no_conflict "static busybox: appends are no conflicts"


# ---- truncate(path) while the program writes the file through an fd ----
# The fd writes the copy: truncate must cut that copy (the fd's next write
# lands after a hole, as on one file) and reach the pod, not drop the copy
# and the writes after it.
TRUNC='exec 3>F; printf 0123456789 >&3; truncate -s 4 F; printf ab >&3; cat F; exec 3>&-'
(cd "$T" && sh -c "${TRUNC//F/$T/trunc.local}" >"$T/trunc.expect")
run traced --fs-mode write -- sh -c "${TRUNC//F/$D/trunc.txt}"
expect_rc 0 "coreutils truncate of a pod file the shell has open for writing"
expect_true "the program read the truncated file with the later write, as locally" cmp -s "$T/out" "$T/trunc.expect"
expect_true "the pod has the truncated file and the write after it" cmp -s "$HD/trunc.txt" "$T/trunc.local"
no_conflict "truncate with an open fd is no conflict"
run traced --fs-mode write -- python3 -c "
import os
f = open('$D/trunc2.txt', 'w'); f.write('0123456789'); f.flush()
os.truncate('$D/trunc2.txt', 4)
a = open('$HD/trunc2.txt').read() if os.path.exists('$HD/trunc2.txt') else 'none'
f.write('ab'); f.flush()
print(repr(a), os.fstat(f.fileno()).st_size, os.stat('$D/trunc2.txt').st_size); f.close()"
expect_out_eq "'0123' 12 12" "python3: truncate(path) reaches the pod at once; after a later write, fstat and stat agree on the program's size"
expect_eq "$(printf '0123\0\0\0\0\0\0ab' | od -c)" "$(od -c <"$HD/trunc2.txt")" "python3: the pod has the truncated file and the later write"
run traced --fs-mode write -- sh -c "printf 0123456789 >$D/trunc3.txt; truncate -s 3 $D/trunc3.txt"
expect_eq "012" "$(pod "$D/trunc3.txt")" "truncate with no fd open reaches the pod when the call returns"
# A file the program wrote and closed (written back), then changed by the
# pod's app ($HD: the pod's own file, behind the agent's back), then
# truncated by the program: the pod's file is cut, as truncate(2) in the
# pod would; the program's old copy is no conflict, and the held fd
# writes on the cut file.
run traced --fs-mode write -- python3 -c "
import os
with open('$D/trunc4.txt', 'w') as f: f.write('0123456789')
g = open('$D/trunc4.txt', 'r+')
with open('$HD/trunc4.txt', 'w') as f: f.write('abcdefghijklmnop')
os.truncate('$D/trunc4.txt', 5)
print(open('$HD/trunc4.txt').read(), os.fstat(g.fileno()).st_size); g.close()"
expect_out_eq "abcde 5" "truncate(path) of a written-back file the pod changed since: the pod's file is cut, the held fd sees the new length"
no_conflict "truncate(path) of a written-back file the pod changed since: no conflict"
expect_eq "abcde" "$(pod "$D/trunc4.txt")" "... and the pod keeps the cut file after the run"
# Reopened for writing and closed unwritten after the pod changed the
# file: nothing to write back, so no conflict and the pod's version.
run traced --fs-mode write -- python3 -c "
with open('$D/reopen.txt', 'w') as f: f.write('mine')
g = open('$D/reopen.txt', 'r+')
with open('$HD/reopen.txt', 'w') as f: f.write('theirs')
g.close()
print(open('$HD/reopen.txt').read())"
expect_out_eq "theirs" "a written-back file reopened for writing, closed unwritten after the pod changed it: the pod's version stays"
no_conflict "... and no conflict is reported"
# fstat of an fd describes the file behind it: a pod file that grew
# after the open keeps the copy's size (a mmap of st_size stays inside
# the copy), and stat by path shows the pod's.
printf 0123456789 >"$HD/grow.txt"
run traced --fs-mode write -- python3 -c "
import os
f = open('$D/grow.txt', 'rb')
with open('$HD/grow.txt', 'ab') as g: g.write(b'more')
print(os.fstat(f.fileno()).st_size, len(f.read()), os.stat('$D/grow.txt').st_size)"
expect_out_eq "10 10 14" "fstat of a pod file that grew after the open: the copy's size, what the fd reads"

rm -rf "$HD"
e2e_done
