#!/bin/bash
# Files: the pod's /etc/resolv.conf, /etc/hosts and /etc/hostname (remote by
# default) and a file that exists only in the pod (/srv is not in the
# local-by-default list).
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer

run traced cat /etc/resolv.conf
expect_out_has "nameserver $DNS_IP" "/etc/resolv.conf is the pod's"
run traced cat /etc/hosts
expect_out_match "^${POD_HOSTS_IP}[[:space:]]+${POD_HOSTS_NAME}\$" "/etc/hosts is the pod's"
run traced cat /etc/hostname
expect_out_eq "$POD_HOSTNAME" "/etc/hostname is the pod's"
run traced cat "$POD_FILE"
expect_rc 0 "a file that only exists in the pod"
expect_out_eq "$POD_FILE_CONTENT" "its content comes from the pod"
if [ ! -e "$POD_FILE" ]; then
	pass "(the file does not exist locally)"
fi
e2e_done
