#!/bin/bash
# kubectl is a static Go binary (pure-Go resolver, raw syscalls, no libc):
# every installed version resolves the pod's service name through the
# pod's DNS and talks to it through the agent.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_cmd kubectl

KDIR=$(dirname "$(readlink -f "$(command -v kubectl)")")
found=0
for k in "$KDIR"/kubectl.1.*; do
	[ -x "$k" ] || continue
	found=1
	v=${k##*/kubectl.}
	run traced "$k" --server "http://$HTTP_SHORT_NAME:$HTTP_PORT" get --raw /
	expect_rc 0 "kubectl $v get --raw / by short name"
	expect_out_eq "$HTTP_BODY" "kubectl $v reads the pod's service"
done
[ $found = 1 ] || skip "no kubectl.1.* binaries next to $(command -v kubectl)"
run traced "$KDIR/kubectl.1.32" --server "http://$HTTP_NAME:$HTTP_PORT" get --raw /peer
expect_out_match "^($POD_IP|$POD_IP6)\$" "kubectl's connection leaves from the pod's address"
e2e_done
