#!/bin/bash
# Remote files (feature.fs): the program reads the pod's files through the
# agent, sees their metadata, lists their directories, gets ENOENT for
# not_found, keeps local-list paths local, and in write mode changes the
# pod. The pod fixture's /srv is a bind mount of $MT_POD_DIR/srv, so files
# written there appear in the pod only (the host's /srv is empty).
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "tracer-only scenario (it compares against the pod itself)"
require_cmd python3 busybox setpriv
require_programs go muslfs
G=$MT_PROG_DIR/go_client
M=$MT_PROG_DIR/musl_fs

D=/srv/mt-fs-$$ # the pod's path
HD=$MT_POD_DIR/srv/mt-fs-$$
mkdir -p "$HD/sub"
printf 'key: value\nport: 8080\n' >"$HD/config.yaml"
printf 'tok-%s' "$$" >"$HD/token"
ln -s config.yaml "$HD/link"
touch -d '2001-02-03 04:05:06' "$HD/config.yaml"
chmod 640 "$HD/config.yaml"
[ ! -e "$D" ] || skip "$D exists on this machine: the scenario needs it pod-only"

# ---- reads ----
run traced cat "$D/token"
expect_out_eq "tok-$$" "cat reads a pod-only file"
run traced busybox cat "$D/config.yaml"
expect_out_has "port: 8080" "static busybox reads a pod-only file"
run traced python3 -c "print(open('$D/config.yaml').read().splitlines()[0])"
expect_out_eq "key: value" "python3 reads a pod-only file"
run traced cat "$POD_FILE"
expect_out_eq "$POD_FILE_CONTENT" "the fixture's pod file is read from the pod"

# ---- metadata, without the content ----
run in_pod stat -c '%s %Y %a %u %g %F' "$D/config.yaml"
POD_STAT=$OUT
run traced stat -c '%s %Y %a %u %g %F' "$D/config.yaml"
expect_out_eq "$POD_STAT" "stat (statx) shows the pod's size, mtime, mode, owner, type"
run traced busybox stat -c '%s %Y %a' "$D/config.yaml"
expect_out_eq "22 981173106 640" "busybox stat shows the pod's metadata"
run traced python3 -c "import os; s = os.stat('$D/config.yaml'); l = os.lstat('$D/link'); print(s.st_size, int(s.st_mtime), oct(s.st_mode & 0o777), os.readlink('$D/link'), oct(l.st_mode)[:4], os.access('$D/token', os.R_OK))"
expect_out_eq "22 981173106 0o640 config.yaml 0o12 True" "python3 stat, lstat, readlink, access"

# ---- directories ----
run traced ls "$D"
expect_out_eq "$(printf 'config.yaml\nlink\nsub\ntoken')" "ls lists the pod's directory"
run traced ls -l "$D"
expect_out_match "^l.* link -> config.yaml\$" "ls -l shows the pod's symlink and its target"
expect_out_match "^d.* sub\$" "ls -l shows the pod's subdirectory"
run traced python3 -c "import os; print(sorted((e.name, e.is_dir()) for e in os.scandir('$D')))"
expect_out_eq "[('config.yaml', False), ('link', False), ('sub', True), ('token', False)]" "python3 scandir types"
run traced sh -c "cd $D && cat config.yaml && ls"
expect_out_has "port: 8080" "chdir into a pod directory, then a relative open"
expect_out_has "token" "chdir into a pod directory, then ls ."
# not_in_err TEXT: the last run's stderr lacks TEXT.
not_in_err() { ! grep -qF -- "$1" "$T/err"; }
# fstat of an open pod file or directory agrees with the stat of its
# path: tar compares the two (ctime) and fails on "file changed as we
# read it" if fstat showed the local copy.
run traced tar cf "$T/pod.tar" -C /srv "mt-fs-$$"
expect_rc 0 "tar of a pod directory"
expect_true "tar of a pod directory saw no file change" not_in_err "changed as we read it"
expect_eq "$(printf 'mt-fs-%s/\nmt-fs-%s/config.yaml\nmt-fs-%s/link\nmt-fs-%s/sub/\nmt-fs-%s/token' $$ $$ $$ $$ $$)" \
	"$(tar tf "$T/pod.tar" | sort)" "tar archived the pod's tree"
run traced python3 -c "import os; f = open('$D/token'); s, t = os.fstat(f.fileno()), os.stat('$D/token'); print((s.st_ino, s.st_ctime_ns, s.st_size) == (t.st_ino, t.st_ctime_ns, t.st_size))"
expect_out_eq "True" "python3 fstat of an open pod file is the pod's, as stat of its path"

# ---- execveat of a pod binary, fchdir into a pod directory ----
# bin/bb is a pod-only copy of the static busybox: run as "echo MSG", it
# prints MSG only if the pod's binary was executed.
PROBES=${MT_PROBES_DIR:-$MT_BIN_DIR/../tests/probes}
[ -x "$PROBES/probe_fsat" ] || skip "the probes are not built ($PROBES/probe_fsat missing; build the tree)"
mkdir -p "$HD/bin"
cp "$(command -v busybox)" "$HD/bin/bb"
ln -s bb "$HD/bin/bblink"
for v in "" _static _musl; do
	P=$PROBES/probe_fsat$v
	[ -x "$P" ] || continue
	run traced "$P" dirfd "$D/bin" bb "dirfd$v"
	expect_out_eq "dirfd$v" "execveat(dirfd of a pod directory, \"bb\") runs the pod's binary (probe_fsat$v)"
	run traced "$P" cwd "$D" bin/bb "cwd$v"
	expect_out_eq "cwd$v" "chdir into a pod directory, execveat(AT_FDCWD, \"bin/bb\") (probe_fsat$v)"
	run traced "$P" fexecve "$D/bin/bb" "fexecve$v"
	expect_out_eq "fexecve$v" "execveat(fd of a pod binary, \"\", AT_EMPTY_PATH) (probe_fsat$v)"
	run traced "$P" nofollow "$D/bin" bblink x
	expect_out_eq "execveat = -ELOOP" "execveat(AT_SYMLINK_NOFOLLOW) of a pod symlink: ELOOP (probe_fsat$v)"
	run traced "$P" nofollow "$D/bin" bb "nofollow$v"
	expect_out_eq "nofollow$v" "execveat(AT_SYMLINK_NOFOLLOW) of a pod file runs it (probe_fsat$v)"
	run traced "$P" dirfd "$D/bin" missing x
	expect_out_eq "execveat = -ENOENT" "execveat of a name the pod does not have: ENOENT (probe_fsat$v)"
	run traced "$P" fchdir "$D" config.yaml
	expect_out_has "fchdir = 0" "fchdir to an fd of a pod directory (probe_fsat$v)"
	expect_out_has "config.yaml = key: value" "fchdir, then a relative open reads the pod's file (probe_fsat$v)"
	expect_out_has "ls . = bin config.yaml link sub token" "fchdir, then getdents64 of \".\" lists the pod's directory (probe_fsat$v)"
	expect_out_has "getcwd = $D" "fchdir: getcwd names the pod directory, not its copy (probe_fsat$v)"
	# getcwd and readlink of /proc/self/cwd after chdir, chdir back to a
	# local directory and fchdir: exactly what the same probe sees in the
	# pod (sizes, ERANGE one byte short, a buffer that ends at a guard
	# page, EFAULT, truncated readlink).
	run in_pod "$P" getcwd "$D" "$D/sub"
	POD_OUT=$OUT
	run traced "$P" getcwd "$D" "$D/sub"
	expect_out_eq "$POD_OUT" "getcwd after chdir/fchdir into a pod directory, as in the pod (probe_fsat$v)"
	expect_out_has "chdir getcwd size $((${#D} + 1)) = $((${#D} + 1))" "chdir: raw getcwd returns the pod path's length with its NUL (probe_fsat$v)"
	expect_out_has "chdir getcwd size ${#D} = -ERANGE" "chdir: getcwd one byte short of the pod path: ERANGE (probe_fsat$v)"
	expect_out_has "chdir getcwd at guard page = $D ($((${#D} + 1)))" "chdir: getcwd into a buffer that ends at a guard page (probe_fsat$v)"
	expect_out_has "fchdir libc getcwd = $D/sub" "fchdir: the libc's getcwd names the pod directory (probe_fsat$v)"
	expect_out_has "fchdir readlink /proc/self/cwd = $D/sub ($((${#D} + 4)))" "fchdir: readlink of /proc/self/cwd names the pod directory (probe_fsat$v)"
	expect_out_has "local getcwd = / (2)" "chdir back to a local directory: the local cwd (probe_fsat$v)"
done
run traced python3 -c "import os; os.chdir('$D'); a = os.getcwd(); os.chdir('/'); os.fchdir(os.open('$D/sub', os.O_RDONLY)); print(a, os.getcwd(), os.path.abspath('..'), os.readlink('/proc/self/cwd'))"
expect_out_eq "$D $D/sub $D $D/sub" "python3 os.getcwd after os.chdir and os.fchdir into pod directories"
run traced busybox sh -c "cd $D/sub && pwd -P && cd .. && pwd -P"
expect_out_eq "$(printf '%s\n%s' "$D/sub" "$D")" "static busybox: pwd -P in a pod directory"
run traced sh -c "cd $D/sub && /bin/pwd -P && realpath .. && readlink /proc/self/cwd"
expect_out_eq "$(printf '%s\n%s\n%s' "$D/sub" "$D" "$D/sub")" "a child of the shell: coreutils pwd -P, realpath .., readlink /proc/self/cwd"
# Go's os.Getwd takes $PWD when it stats as ".", else asks getcwd.
run traced "$G" getwd "$D" "$D/sub"
expect_out_eq "$(printf 'chdir %s <nil>\nfchdir %s <nil>' "$D" "$D/sub")" "static Go os.Getwd after os.Chdir and File.Chdir"
run traced sh -c "cd $D/sub && exec $G getwd . ."
expect_out_eq "$(printf 'chdir %s <nil>\nfchdir %s <nil>' "$D/sub" "$D/sub")" "static Go os.Getwd with \$PWD set by a shell to the pod directory"
run traced python3 -c "import os; os.fchdir(os.open('$D', os.O_RDONLY)); print(open('token').read(), sorted(os.listdir('.')), sorted(os.listdir('sub')))"
expect_out_eq "tok-$$ ['bin', 'config.yaml', 'link', 'sub', 'token'] []" "python3 os.fchdir to a pod directory, then relative open and listdir"
run traced python3 -c "import os; os.execv('$D/bin/bb', ['echo', 'execv-ok'])"
expect_out_eq "execv-ok" "python3 execv of a pod binary (execve)"

# ---- /proc links and fstat: the pod's names and metadata, not the copy's ----
# The kernel's answers name the cache copy (readlink of /proc/self/fd/N and
# /proc/self/exe) or resolve in it (/proc/self/cwd/NAME, where a listed but
# never fetched file is an empty placeholder), and fstat of the copy has
# its local owner, link count and inode: the program sees the pod's.
printf 'own-%s' "$$" >"$HD/sub/owned"
chown 1234:2345 "$HD/sub/owned"
ln "$HD/sub/owned" "$HD/sub/owned2"
touch -d '2001-02-03 04:05:06' "$HD/sub/owned"
run traced sh -c "exec 3<$D/token; readlink /proc/self/fd/3; realpath /proc/self/fd/3; readlink /proc/\$\$/fd/3; ls -l /proc/self/fd/ | grep -o ' 3 -> .*'"
expect_out_eq "$(printf '%s\n%s\n%s\n%s' "$D/token" "$D/token" "$D/token" " 3 -> $D/token")" "coreutils readlink, realpath and ls -l of /proc/self/fd/N of a pod file name the pod path"
run traced busybox sh -c "exec 3<$D/sub/owned; busybox readlink /proc/self/fd/3"
expect_out_eq "$D/sub/owned" "static busybox readlink of /proc/self/fd/N names the pod path"
run traced python3 -c "import os; d = os.open('$D/sub', os.O_RDONLY); print(os.readlink('/proc/self/fd/%d' % d), os.readlink('/proc/thread-self/fd/%d' % d), open('/proc/self/fd/%d/owned' % d).read(), os.stat('/proc/self/fd/%d/owned' % d).st_uid)"
expect_out_eq "$D/sub $D/sub own-$$ 1234" "python3: /proc/self/fd/N of a pod directory, and a file through it"
run traced sh -c "cd $D && ls >/dev/null && cat /proc/self/cwd/token /proc/self/cwd/sub/../sub/owned && stat -c %u /proc/self/cwd/sub/owned"
expect_out_eq "tok-$$own-${$}1234" "/proc/self/cwd/NAME in a listed pod directory is the pod's file, not the empty placeholder"
run traced python3 -c "import os; os.execv('$D/bin/bb', ['readlink', '/proc/self/exe'])"
expect_out_eq "$D/bin/bb" "readlink /proc/self/exe after execve of a pod binary names the pod path"
run in_pod "$M" fstat "$D/sub/owned"
POD_FSTAT=$OUT
expect_out_eq "$((4 + ${#$})) 981173106 644 1234 2345 2" "the pod's own fstat (fixture check)"
run traced "$M" fstat "$D/sub/owned"
expect_out_eq "$POD_FSTAT" "static musl fstat(2) of an open pod file: the pod's size, mtime, mode, owner and nlink"
run traced "$G" fstat "$D/sub/owned"
expect_out_eq "$POD_FSTAT" "static Go File.Stat (fstat) of an open pod file: as in the pod"
run traced python3 -c "import os; f = os.open('$D/sub/owned', os.O_RDONLY); s, t = os.fstat(f), os.stat('$D/sub/owned'); print(s.st_uid, s.st_nlink, s.st_ino == t.st_ino)"
expect_out_eq "1234 2 True" "python3 fstat of an open pod file: the pod's owner, nlink and inode"

# ---- not found, errors, local ----
run traced cat "$D/missing"
expect_rc_nonzero "a path the pod does not have"
expect_err_match "No such file or directory" "the pod's ENOENT"
run traced cat "$D/config.yaml/x"
expect_err_match "Not a directory" "the pod's ENOTDIR comes back as it is"
printf '{"feature": {"fs": {"not_found": ["mt-FS-.*/token"]}}}' >"$T/nf.json"
run traced -f "$T/nf.json" -- cat "$D/token"
expect_rc_nonzero "feature.fs.not_found"
expect_err_match "No such file or directory" "not_found gives ENOENT"
run traced -f "$T/nf.json" -- cat "$D/config.yaml"
expect_out_has "port: 8080" "not_found matches only its paths"
MIRRORD_FILE_LOCAL_PATTERN="^/srv/" run traced cat "$D/token"
expect_rc_nonzero "MIRRORD_FILE_LOCAL_PATTERN keeps the path local (this machine has no $D)"
run traced --fs-mode local -- cat "$D/token"
expect_rc_nonzero "--fs-mode local: everything local"
echo "local-$$" >"$T/local.txt"
run traced cat "$T/local.txt"
expect_out_eq "local-$$" "/tmp stays local by default"

# ---- feature.fs.mapping: the mapped path is what the rules and the pod see ----
# /config exists neither here nor in the pod; /usr/share/... is local by
# default, and mapped to the pod it is read from there.
printf '{"feature": {"fs": {"mapping": {"^/config(/|$)": "%s$1", "^/usr/share/mt-map-%s/(?<rest>.*)": "%s/${rest}"}}}}' \
	"$D" "$$" "$D" >"$T/map.json"
run traced -f "$T/map.json" -- python3 -c "import os; print(open('/config/config.yaml').read().splitlines()[1], sorted(os.listdir('/config')), sorted(os.listdir('/config/')))"
expect_out_eq "port: 8080 ['bin', 'config.yaml', 'link', 'sub', 'token'] ['bin', 'config.yaml', 'link', 'sub', 'token']" "mapping: python3 reads and lists /config, mapped to the pod's $D"
run traced -f "$T/map.json" -- busybox cat /config/token
expect_out_eq "tok-$$" "mapping: static busybox reads /config/token from the pod's $D/token"
run traced -f "$T/map.json" -- busybox cat "/usr/share/mt-map-$$/token"
expect_out_eq "tok-$$" "mapping: a default-local path mapped into the pod is read from the pod (named group)"
run traced -f "$T/map.json" -- busybox cat /config/missing
expect_err_match "No such file or directory" "mapping: the pod's ENOENT for a mapped path it does not have"
run traced -f "$T/map.json" -- busybox sh -c "cd /config/sub && cd .. && cat token"
expect_out_eq "tok-$$" "mapping: chdir into a mapped pod directory, then a relative open"
# Relative paths are not mapped (mirrord: relative paths never are); a
# mapped path that the rules keep local runs on the program's own path.
mkdir -p "$T/config"
echo "local-token" >"$T/config/token"
printf '{"feature": {"fs": {"mapping": {"^.*/config/token$": "%s/token", "^/tmp/mt-map-.*$": "/tmp/elsewhere"}}}}' "$D" >"$T/map2.json"
run traced -f "$T/map2.json" -- busybox sh -c "cd $T && cat config/token"
expect_out_eq "local-token" "mapping: not applied to a relative path"
run traced -f "$T/map2.json" -- busybox cat "$T/config/token"
expect_out_eq "tok-$$" "mapping: the same file by its absolute path is mapped to the pod"
echo "own-$$" >"$T/mt-map-own"
run traced -f "$T/map2.json" -- busybox cat "$T/mt-map-own"
expect_out_eq "own-$$" "mapping: a path mapped to a local one is opened under the program's own name, as mirrord"

# ---- the cache: private, and gone at exit ----
# The program sees the pod path in /proc/self/fd/3; from outside, the link
# names the copy.
traced sh -c "exec 3<$D/token; echo \$\$ >$T/pid; sleep 3" &
bgpid=$!
for _ in $(seq 50); do [ -s "$T/pid" ] && break; sleep 0.1; done
COPY=$(readlink "/proc/$(cat "$T/pid")/fd/3")
RUNDIR=${COPY%/fs"$D"/token}
expect_true "the open was rewritten to a copy in the run directory ($COPY)" test -f "$COPY" -a "$RUNDIR" != "$COPY"
expect_eq "700 700" "$(stat -c %a "$RUNDIR" "$RUNDIR/fs" | tr '\n' ' ' | sed 's/ $//')" "run directory and cache are mode 0700"
run setpriv --reuid=65534 --regid=65534 --clear-groups cat "$COPY"
expect_rc_nonzero "another user cannot read the cached pod file"
wait $bgpid
expect_true "the cache is removed at exit" test ! -e "$RUNDIR"

# ---- writes ----
run traced sh -c "echo read-mode >$D/r.txt"
expect_rc_nonzero "read mode: a write goes local (and this machine has no $D)"
expect_true "read mode: the pod is not changed" test ! -e "$HD/r.txt"
run traced --fs-mode write -- sh -c "echo one >$D/w.txt && echo two >>$D/w.txt && mkdir $D/wd && mv $D/w.txt $D/wd/w2.txt && rm $D/link && cat $D/wd/w2.txt"
expect_rc 0 "write mode: create, append, mkdir, rename, unlink"
expect_out_eq "$(printf 'one\ntwo')" "write mode: the program reads its writes"
run in_pod cat "$D/wd/w2.txt"
expect_out_eq "$(printf 'one\ntwo')" "write mode: the pod has the written, renamed file"
expect_true "write mode: unlink and rename reached the pod" test ! -L "$HD/link" -a ! -e "$HD/w.txt"
run traced --fs-mode write -- sh -c "cd $D && echo via-proc >/proc/self/cwd/viaproc.txt"
expect_eq "via-proc" "$(cat "$HD/viaproc.txt" 2>/dev/null)" "write mode: a file created through /proc/self/cwd/NAME in a pod directory is the pod's"
run traced --fs-mode write -- python3 -c "f = open('$D/py.txt', 'w'); f.write('abc'); f.flush(); import os; os.fsync(f.fileno()); print(open('$HD/py.txt').read() if os.path.exists('$HD/py.txt') else 'none'); f.close()"
expect_eq "abc" "$(cat "$HD/py.txt" 2>/dev/null)" "write mode: python3 write reaches the pod"

rm -rf "$HD"
e2e_done
