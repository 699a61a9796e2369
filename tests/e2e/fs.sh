#!/bin/bash
# Files: the pod's /etc/resolv.conf, /etc/hosts and /etc/hostname (served
# from copies made at startup, resolv.conf with the DNS relay), and any
# other pod file through feature.fs (remote_fs.sh has the details).
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
e2e_done
