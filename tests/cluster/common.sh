# Shared settings of tests/cluster/up, down and the tests (sourced).
MTC_DIR=${MIRRORD_TRACE_CLUSTER_DIR:-/run/mirrord-trace-cluster}
export MIRRORD_TRACE_CLUSTER_DIR=$MTC_DIR
# Every python3 started from here (cluster.py, the API server, the tests)
# runs as root from the source tree: no __pycache__ in it.
export PYTHONDONTWRITEBYTECODE=1
# Our network namespaces: mtc-node, mtc-ws and one mtc-pN per pod.
MTC_NETNS_RE='^mtc-(node|ws|p[0-9]+)$'
if [ -d /sys/fs/cgroup/pids ]; then
	MTC_CGROUP_ROOT=/sys/fs/cgroup/pids/mtc-kubepods
else
	MTC_CGROUP_ROOT=/sys/fs/cgroup/mtc-kubepods
fi

mtc_log() { printf 'tests/cluster: %s\n' "$*" >&2; }
mtc_die() { mtc_log "error: $*"; exit 1; }

# mtc_netns: our network namespaces that exist now.
mtc_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$MTC_NETNS_RE" || true; }

# host_state: what up/down must not change in the host namespace.
host_state() {
	echo "== links"; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
	echo "== addresses"; ip -o addr show | awk '{print $2, $3, $4}' | sort
	echo "== routes"; ip route show table all | sort
	echo "== iptables"; iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	echo "== nft"; nft list ruleset 2>/dev/null
	# up may make an empty /app mount point; down must take it away again.
	echo "== /app"; if [ -e /app ]; then echo present; ls -A /app; else echo absent; fi
}
