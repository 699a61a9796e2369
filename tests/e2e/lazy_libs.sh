#!/bin/bash
# The supervisor loads libcurl (and the 30 libraries it needs), libunwind
# and capstone only when a run needs them: libcurl for the Kubernetes API,
# libunwind and capstone for --trace-stacks (common/dl.h). Here they are
# hidden (a private mount namespace binds /dev/null over them) and a run
# that needs none of them must work as before; one that needs them must say
# which library is missing and how to get it.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
baseline && skip "only mirrord-trace loads libraries lazily"
require_programs go
require_cmd unshare readelf ldconfig

# lib_path SONAME: where the dynamic loader finds it.
lib_path() { ldconfig -p | awk -v n="$1" '$1 == n { print $NF; exit }'; }

LAZY="libcurl.so.4 libcrypto.so.3 libssl.so.3 libunwind-x86_64.so.8 libunwind-ptrace.so.0 libunwind.so.8 libcapstone.so.4"
NEEDED=$(readelf -d "$MT" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for l in $LAZY; do
	if grep -qxF "$l" <<<"$NEEDED"; then
		fail "mirrord-trace does not link $l" "not in its DT_NEEDED" "$(tr '\n' ' ' <<<"$NEEDED")"
	else
		pass "mirrord-trace does not link $l"
	fi
done
# The C++ runtime is linked in, except in the sanitizer build.
grep -qxF libstdc++.so.6 <<<"$NEEDED" || LAZY="$LAZY libstdc++.so.6"

HIDE=()
for l in $LAZY; do
	p=$(lib_path "$l")
	[ -n "$p" ] && HIDE+=("$p")
done
[ ${#HIDE[@]} -ge 5 ] || fail "the libraries to hide are installed" ">= 5 of: $LAZY" "${HIDE[*]}"

# $MT becomes a wrapper that hides them, then runs the real binary.
REAL_MT=$MT
MT=$T/mt_hidden
printf '%s\n' "${HIDE[@]}" >"$T/hidden"
cat >"$MT" <<WRAP
#!/bin/bash
exec unshare -m -- bash -c 'while read -r l; do mount --bind /dev/null "\$l" || exit 99; done <"$T/hidden"; exec "\$@"' - "$REAL_MT" "\$@"
WRAP
chmod +x "$MT"

run traced -- "$MT_PROG_DIR/go_client" http "$HTTP_SHORT_NAME" "$HTTP_PORT" / 1
expect_out_has "ok 1" "with libcurl, libcrypto, libunwind, capstone hidden: a program reaches the pod service by name"

run traced --trace-stacks -- "$MT_PROG_DIR/go_client" http "$HTTP_SHORT_NAME" "$HTTP_PORT" / 1
expect_out_has "ok 1" "--trace-stacks without libunwind and capstone: the program still works"
expect_err_match '\(no libunwind stacks: cannot load libunwind-x86_64\.so\.8' \
	"--trace-stacks without libunwind: the stack says what is missing"
expect_err_match '\(no disassembly: cannot load libcapstone\.so\.4' \
	"--trace-stacks without capstone: the site says what is missing"
n=$(grep -c '(no libunwind stacks' <<<"$ERR")
expect_eq 1 "$n" "--trace-stacks without libunwind: said once, not per syscall"
expect_true "--trace-stacks without libunwind: the frame-pointer walk still names Go frames" \
	grep -qE '^    fp#[0-9]+ 0x[0-9a-f]+ net\.\(\*netFD\)\.connect\+0x[0-9a-f]+ \(go_client\)$' <<<"$ERR"

# A Kubernetes target needs libcurl: one clear line, non-zero exit, before
# anything reaches the (unreachable) API server.
cat >"$T/kubeconfig" <<'KC'
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u, namespace: default}
current-context: x
KC
run timeout -k 5 30 ip netns exec "$WORKSTATION_NETNS" env KUBECONFIG="$T/kubeconfig" \
	"$MT" exec -t pod/nowhere -- true
expect_rc_nonzero "a pod target without libcurl fails"
expect_err_match 'cannot load libcurl\.so\.4.*apt-get install libcurl4' \
	"a pod target without libcurl: the message names the library and the package"
n=$(grep -c . <<<"$ERR")
expect_eq 1 "$n" "a pod target without libcurl: one line"
e2e_done
