#!/bin/bash
# busybox-static (a statically linked binary: no LD_PRELOAD tool can hook it):
# wget through the pod's resolver and nslookup's own DNS over UDP.
. "$(dirname "$0")/lib.sh"
require_pod
require_tracer
require_cmd busybox
BB=$(command -v busybox)
case $(file -b "$BB" 2>/dev/null) in
*"statically linked"*) e2e_log "note: $BB is static: $(file -b "$BB" | cut -d, -f1-4)" ;;
*) e2e_log "note: $BB is not static; the scenario still runs" ;;
esac

run traced "$BB" wget -q -O- "http://$HTTP_SHORT_NAME:$HTTP_PORT/"
expect_rc 0 "busybox wget by short name"
expect_out_eq "$HTTP_BODY" "busybox wget body by short name"
run traced "$BB" wget -q -O- "http://$HTTP_NAME:$HTTP_PORT/"
expect_out_eq "$HTTP_BODY" "busybox wget body by FQDN"
run traced "$BB" wget -q -O- "http://$HTTP_SHORT_NAME:$CLOSED_PORT/"
expect_rc_nonzero "busybox wget to the closed port fails"

run traced "$BB" nslookup "$HTTP_NAME"
expect_rc 0 "busybox nslookup FQDN"
# The program's resolv.conf names a loopback relay of the pod's nameserver
# (docs/INTERNALS.md "DNS"); the answers below prove the pod's server replied.
if baseline; then
	expect_out_match "^Server:[[:space:]]+$DNS_IP\$" "nslookup asks the pod's DNS server"
else
	expect_out_match "^Server:[[:space:]]+127\.0\.0\.[0-9]+\$" "nslookup asks the local relay of the pod's DNS"
fi
expect_out_has "Address: $HTTP_IP" "nslookup returns the service's IPv4"
expect_out_has "Address: $HTTP_IP6" "nslookup returns the service's IPv6"
run traced "$BB" nslookup "$UDP_ECHO_SHORT_NAME"
expect_out_has "Address: $UDP_ECHO_IP" "nslookup short name through the search domains"
run traced "$BB" nslookup "$UNRESOLVABLE_NAME"
expect_rc_nonzero "nslookup of a name nobody resolves fails"
expect_out_match "NXDOMAIN" "nslookup reports NXDOMAIN"
e2e_done
