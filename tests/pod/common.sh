# Shared settings of tests/pod/up, tests/pod/down and tests/pod/check (sourced).
# Every name can be overridden from the environment, e.g. to run two fixtures.
MT_POD_DIR=${MT_POD_DIR:-/run/mirrord-trace-pod}
MT_POD_NETNS=${MT_POD_NETNS:-mtpod}
MT_SVC_NETNS=${MT_SVC_NETNS:-mtsvc}
MT_WS_NETNS=${MT_WS_NETNS:-mtws}

pod_log() { printf 'tests/pod: %s\n' "$*" >&2; }
pod_die() { pod_log "error: $*"; exit 1; }

# netns_exists NAME
netns_exists() { [ -e "/run/netns/$1" ]; }
