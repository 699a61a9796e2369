#!/bin/bash
# Files: the pod's /etc/resolv.conf, /etc/hosts and /etc/hostname (served
# from copies made at startup, resolv.conf with the DNS relay; in local
# mode bind-mounted over the local ones in the program's own mount
# namespace), and any other pod file through feature.fs (remote_fs.sh has
# the details).
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer

run traced cat /etc/resolv.conf
expect_out_has "search $NS_DOMAIN svc.$CLUSTER_DOMAIN $CLUSTER_DOMAIN" "/etc/resolv.conf has the pod's search list"
expect_out_has "options ndots:5" "/etc/resolv.conf has the pod's options"
if baseline; then
	expect_out_has "nameserver $DNS_IP" "/etc/resolv.conf is the pod's"
else
	# The nameserver line points at the local relay of the pod's nameserver.
	expect_out_match "^nameserver 127\.0\.0\.[0-9]+\$" "/etc/resolv.conf names the local relay"
fi
run traced cat /etc/hosts
expect_out_match "^${POD_HOSTS_IP}[[:space:]]+${POD_HOSTS_NAME}\$" "/etc/hosts is the pod's"
run traced cat /etc/hostname
expect_out_eq "$POD_HOSTNAME" "/etc/hostname is the pod's"
run traced cat "$POD_FILE"
expect_out_eq "$POD_FILE_CONTENT" "a file only the pod has is read from the pod"

# pod_files_served WHAT: the last run printed the pod's three files.
pod_files_served() {
	expect_out_match "^nameserver 127\.0\.0\.[0-9]+\$" "$1: resolv.conf names the local relay"
	expect_out_has "search $NS_DOMAIN svc.$CLUSTER_DOMAIN $CLUSTER_DOMAIN" "$1: the pod's search list"
	expect_out_match "^${POD_HOSTS_IP}[[:space:]]+${POD_HOSTS_NAME}\$" "$1: /etc/hosts is the pod's"
	expect_out_match "^${POD_HOSTNAME}\$" "$1: /etc/hostname is the pod's"
}
# lacks_here_and_in_ws TEXT FILE: neither this namespace's FILE nor the
# workstation's has TEXT.
lacks_here_and_in_ws() { ! grep -q -- "$1" "$2" && ! in_ws grep -q -- "$1" "$2"; }
if ! baseline; then
	require_cmd setpriv getent
	# Local mode traps no path syscall: the three files are bind-mounted in
	# a mount namespace of the program's instead of served at open.
	FILES=(/etc/resolv.conf /etc/hosts /etc/hostname)
	run traced --fs-mode local --log-level debug -- cat "${FILES[@]}"
	pod_files_served "local mode"
	expect_err_match "pod files bind-mounted" "local mode: the pod files are bind-mounted"
	expect_err_match "ptrace stops: 0 seccomp, 0 exit" "local mode: no open stops the program"
	run traced --fs-mode local -- getent hosts "$POD_HOSTS_NAME"
	expect_out_match "^${POD_HOSTS_IP}[[:space:]]+${POD_HOSTS_NAME}\$" "local mode: glibc reads the pod's /etc/hosts"
	# Writable as in a pod; the local file does not change, nothing leaks.
	run traced --fs-mode local -- sh -c 'echo "10.9.8.7 mt-added-$$" >>/etc/hosts && getent hosts mt-added-$$'
	expect_out_match "^10\.9\.8\.7[[:space:]]+mt-added-" "local mode: the program reads back what it added to /etc/hosts"
	expect_true "the local /etc/hosts is unchanged" lacks_here_and_in_ws mt-added- /etc/hosts
	expect_true "no bind mount of the run's copies outside the program's namespace" \
		lacks_here_and_in_ws mirrord-trace- /proc/self/mountinfo
	# Without the right to mount (no CAP_SYS_ADMIN), opens are trapped and
	# served as before.
	agent_stop
	start_agent
	AGENT_FRESH=0
	run in_ws setpriv --bounding-set=-sys_admin "$MT" --agent-addr "$AGENT_ADDR" --fs-mode local \
		--log-level debug -- cat "${FILES[@]}"
	agent_wait_exit 3 || true
	agent_stop
	pod_files_served "local mode without CAP_SYS_ADMIN"
	expect_err_match "pod files served at open \(opens trapped\): cannot bind-mount" \
		"without CAP_SYS_ADMIN: served at open"
	expect_err_match "ptrace stops: [1-9][0-9]* seccomp" "without CAP_SYS_ADMIN: the opens stop"
fi
e2e_done
