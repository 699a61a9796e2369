#!/bin/bash
# Large remote files (issue 6): a pod file of at least 8 MiB opened for
# reading is served through the supervisor's own FUSE mount (session/fuse.c)
# and read lazily: the first block of a 1 GiB file does not wait for the
# rest, every byte read matches the pod's file (sequential, random pread,
# mmap; glibc, static Go and musl), fstat shows the pod's metadata, nothing
# stays mounted (normal exit and SIGKILL), and MIRRORD_TRACE_FS_LAZY_MIN=off
# falls back to the whole-file fetch.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "tracer-only scenario (it compares against the pod itself)"
require_cmd python3 md5sum truncate setpriv
[ -c /dev/fuse ] || skip "/dev/fuse is missing: lazy reads need FUSE"
require_programs go muslfs
G=$MT_PROG_DIR/go_client
M=$MT_PROG_DIR/musl_fs

D=/srv/mt-lazy-$$ # the pod's path
HD=$MT_POD_DIR/srv/mt-lazy-$$
[ ! -e "$D" ] || skip "$D exists on this machine: the scenario needs it pod-only"
mkdir -p "$HD"
trap 'rm -rf "$HD"; e2e_cleanup' EXIT
# 1 GiB: sparse, with 1 MiB of random bytes at each end.
truncate -s 1G "$HD/g1"
head -c 1M /dev/urandom | dd of="$HD/g1" conv=notrunc status=none
head -c 1M /dev/urandom | dd of="$HD/g1" bs=1M seek=1023 conv=notrunc status=none
head -c 64M /dev/urandom >"$HD/m64"
touch -d '2002-03-04 05:06:07' "$HD/m64"
chmod 640 "$HD/m64"
chown 123:456 "$HD/m64"
printf 'small file\n' >"$HD/small"
touch -d '2003-04-05 06:07:08' "$HD/small"
chmod 604 "$HD/small"

# bytes_from_agent: the file content the agent sent (--log-level debug).
bytes_from_agent() { sed -n 's/.* \([0-9][0-9]*\) file bytes from the agent.*/\1/p' <<<"$ERR"; }

# ---- the first block of 1 GiB ----
t0=$(now_ms)
run traced --log-level debug -- sh -c "head -c 4096 $D/g1 | md5sum"
lazy_ms=$(($(now_ms) - t0))
expect_out_eq "$(head -c 4096 "$HD/g1" | md5sum)" "the first 4 KiB of a 1 GiB pod file"
got=$(bytes_from_agent)
expect_true "the agent sent at most 16 MiB for it, not 1 GiB (sent: ${got:-?})" test -n "$got" -a "${got:-0}" -le $((16 << 20))
expect_err_match "lazy files: [1-9][0-9]* reads" "it was read through the FUSE mount"
t0=$(now_ms)
MIRRORD_TRACE_FS_LAZY_MIN=off run traced --log-level debug -- sh -c "head -c 4096 $D/g1 | md5sum"
whole_ms=$(($(now_ms) - t0))
expect_out_eq "$(head -c 4096 "$HD/g1" | md5sum)" "the same, fetched whole (MIRRORD_TRACE_FS_LAZY_MIN=off)"
expect_eq "$((1 << 30))" "$(bytes_from_agent)" "fetched whole: the agent sent all of it"
expect_err_match "fetched whole before open\(\) returned: lazy reads of large files need FUSE \(MIRRORD_TRACE_FS_LAZY_MIN=off\)" "one notice says so"
e2e_log "first 4 KiB of 1 GiB: ${lazy_ms} ms lazily, ${whole_ms} ms fetched whole (whole runs of mirrord-trace)"
expect_true "lazily well under a quarter of the whole fetch (${lazy_ms} vs ${whole_ms} ms)" test $((lazy_ms * 4)) -lt "$whole_ms"
# Fetched whole, the open is parked, not the supervisor: another open
# that needs the agent completes meanwhile, and a program killed while
# waiting ends the run at once.
MIRRORD_TRACE_FS_LAZY_MIN=off run traced sh -c "(head -c 1 $D/g1 >/dev/null; echo fetched) & sleep 0.5; cat $D/small; echo small; wait"
if [ "$whole_ms" -gt 2500 ]; then
	expect_out_eq "$(printf 'small file\nsmall\nfetched')" "a 1 GiB open (fetched whole) does not hold up another thread's open"
else
	e2e_log "(the whole fetch took only ${whole_ms} ms: too fast to show the parked open)"
fi
t0=$(now_ms)
MIRRORD_TRACE_FS_LAZY_MIN=off run traced sh -c "timeout -s KILL 0.5 head -c 1 $D/g1; echo rc=\$?"
kill_ms=$(($(now_ms) - t0))
expect_out_eq "rc=137" "the program is killed while its open is parked"
expect_true "the run ends without finishing the fetch (${kill_ms} ms, the fetch took ${whole_ms} ms)" test $((kill_ms * 2)) -lt "$whole_ms"
run traced sh -c "tail -c 1048576 $D/g1 | md5sum"
expect_out_eq "$(tail -c 1048576 "$HD/g1" | md5sum)" "the last MiB of the 1 GiB file"

# ---- 64 MiB: every way of reading ----
SUM=$(md5sum <"$HD/m64")
run traced sh -c "md5sum <$D/m64"
expect_out_eq "$SUM" "cat/md5sum reads 64 MiB through the mount"
run traced sh -c "$G cat $D/m64 | md5sum"
expect_out_eq "$SUM" "static Go (os.ReadFile) reads it"
run traced sh -c "$M cat $D/m64 | md5sum"
expect_out_eq "$SUM" "static musl reads it"
cat >"$T/rd.py" <<'EOF'
import hashlib, mmap, os, random, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
print("mmap", hashlib.md5(m).hexdigest())
random.seed(6)
h = hashlib.md5()
for _ in range(300):
    off = random.randrange(0, size)
    h.update(os.pread(fd, random.randrange(1, 400000), off))
print("pread", h.hexdigest())
# backwards, a chunk at a time: no read-ahead helps
h = hashlib.md5()
for off in range(size - 65536 * 7, -1, -65536 * 97):
    h.update(os.pread(fd, 65536 * 3, off))
print("backwards", h.hexdigest())
EOF
run python3 "$T/rd.py" "$HD/m64"
WANT=$OUT
run traced python3 "$T/rd.py" "$D/m64"
expect_out_eq "$WANT" "python3: mmap, random pread and backwards reads match the pod's file"

# A supervisor that may not mount (and has no working fusermount3): the
# large file is fetched whole, with one notice.
start_agent
AGENT_FRESH=0
run in_ws setpriv --reuid=65534 --regid=65534 --clear-groups env -u XDG_RUNTIME_DIR HOME=/tmp \
	"$MT" --agent-addr "$AGENT_ADDR" --no-remote-dns -- sh -c "md5sum <$D/m64"
agent_wait_exit 3 || true
agent_stop
if ! grep -q 'need FUSE' <<<"$ERR"; then
	expect_out_eq "$SUM" "a supervisor without root reads the large file (lazily: fusermount3 works here)"
else
	expect_out_eq "$SUM" "a supervisor that may not mount reads the large file, fetched whole"
	expect_err_match "lazy reads of large files need FUSE \(no permission to mount" "and says why, once"
fi

# ---- fstat: the pod's metadata ----
run in_pod stat -c '%s %Y %a %u %g %h' "$D/m64"
POD_STAT=$OUT
expect_eq "$(stat -c '%s %Y %a %u %g %h' "$HD/m64")" "$POD_STAT" "the pod's own stat of the file"
run traced "$M" fstat "$D/m64"
expect_out_eq "$POD_STAT" "musl fstat (the raw syscall) of the open file: size, mtime, mode, owner, nlink"
run traced python3 -c "import os; s = os.fstat(os.open('$D/m64', os.O_RDONLY)); print(s.st_size, int(s.st_mtime), '%o' % (s.st_mode & 0o7777), s.st_uid, s.st_gid, s.st_nlink)"
expect_out_eq "$POD_STAT" "python3 fstat of the open file"
run in_pod stat -c '%s %Y %a' "$D/small"
SMALL_STAT=$OUT
run traced sh -c "$M fstat $D/small | cut -d' ' -f1-3"
expect_out_eq "$SMALL_STAT" "a small file's copy has the pod's size, mtime and mode"
MIRRORD_TRACE_FS_LAZY_MIN=1 run traced "$M" fstat "$D/small"
expect_out_eq "$(stat -c '%s %Y %a %u %g %h' "$HD/small")" "MIRRORD_TRACE_FS_LAZY_MIN=1 serves small files lazily too"

# ---- nothing stays mounted ----
# mounted_anywhere DIR: some process's mount table has DIR.
mounted_anywhere() { grep -qs -- " $1 " /proc/[0-9]*/mountinfo; }
# The program's readlink of /proc/self/fd/3 names the pod path; from
# outside, the link names the node on the mount.
traced sh -c "exec 3<$D/m64; readlink /proc/self/fd/3 >$T/link; echo \$\$ >$T/pid; sleep 30" &
bgpid=$!
for _ in $(seq 100); do [ -s "$T/pid" ] && break; sleep 0.1; done
expect_eq "$D/m64" "$(cat "$T/link")" "readlink of /proc/self/fd/N of a lazily read file names the pod path"
NODE=$(readlink "/proc/$(cat "$T/pid")/fd/3")
LAZY=${NODE%/*}
expect_true "the fd is on the lazy mount ($NODE)" test "${LAZY##*/}" = lazy
mtpid=""
for p in $(pgrep -x mirrord-trace); do ours "$p" && mtpid=$p; done
expect_true "the run's mount is in mirrord-trace's mount table" grep -qs -- " $LAZY " "/proc/$mtpid/mountinfo"
expect_true "and not in the host's" eval "! grep -qs -- ' $LAZY ' /proc/1/mountinfo"
kill -KILL "$mtpid" 2>/dev/null
wait "$bgpid" 2>/dev/null
for _ in $(seq 50); do mounted_anywhere "$LAZY" || break; sleep 0.1; done
expect_true "after SIGKILL of mirrord-trace nothing has the mount" eval "! mounted_anywhere '$LAZY'"
expect_true "the program was killed with it" eval "! pgrep -f 'readlink /proc/self/fd/3' >/dev/null"
rm -f "$T/pid"
traced sh -c "exec 3<$D/m64; echo \$\$ >$T/pid; sleep 1" &
bgpid=$!
for _ in $(seq 100); do [ -s "$T/pid" ] && break; sleep 0.1; done
LAZY2=$(dirname "$(readlink "/proc/$(cat "$T/pid")/fd/3")")
wait "$bgpid"
expect_true "after a normal exit nothing has the mount ($LAZY2)" eval "! mounted_anywhere '$LAZY2'"
expect_true "and the run directory is gone" test ! -e "$LAZY2"
# The next run removes what the killed one left.
expect_true "the killed run's directory is removed by the next run" test ! -e "$(dirname "$LAZY")"

e2e_done
