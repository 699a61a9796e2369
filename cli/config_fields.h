/* Every configuration field, in one list (mirrord-behaviour.md §1.2-1.10).
 * The enum of field ids and the resolver's table are both generated from
 * it, so they cannot drift apart.
 *
 * X(ID, path, type, env, default, impl, quiet, note):
 *   type    how the value is checked and converted (enum config_type);
 *   env     the variable (flags set it too), or NULL: mirrord's MIRRORD_*
 *           ones, and the W3C trace-context TRACEPARENT / BAGGAGE, which
 *           are ambient (set by tracing tools, not for us) and so are never
 *           warned about when they come from the environment;
 *   default JSON text of the default, or NULL (unset);
 *   impl    IMPL_YES: mirrord-trace acts on it; IMPL_LATER: accepted,
 *           one warning when set, not implemented yet; IMPL_NA: accepted,
 *           one warning when set, never applies to mirrord-trace
 *           (operator, macOS, mirrord's own proxies);
 *   quiet   JSON text of a value that needs no warning because it is what
 *           mirrord-trace does anyway (e.g. ipv6: true), or NULL;
 *   note    the warning's explanation of what happens instead. */
#pragma once

enum config_type {
	CT_BOOL,
	CT_OBOOL, /* bool or unset */
	CT_STR,
	CT_U16,
	CT_U32,
	CT_STRLIST,    /* string or [string]; ';'-separated in variables */
	CT_PORTS,      /* u16 or [u16]; ';'-separated in variables */
	CT_PAIRS,      /* [[u16, u16], ...] */
	CT_STRMAP,     /* {"name": "string", ...} */
	CT_OBJ,        /* any object (not interpreted) */
	CT_ARR,        /* any array (not interpreted) */
	CT_ANY,        /* any value (not interpreted) */
	CT_TARGET,     /* target path: string or object form (cli/target.h) */
	CT_IMAGE,      /* "repo:tag" or {"registry", "tag"} */
	CT_FS_MODE,    /* read | write | local | localwithoverrides */
	CT_IN_MODE,    /* mirror | steal | off */
	CT_PULL,       /* IfNotPresent | Always | Never */
	CT_CONCURRENT, /* abort | continue | override */
	CT_LOG_LEVEL,  /* error | warn | info | debug | trace (mirrord-trace's own) */
	CT_HOSTPORT,   /* numeric HOST:PORT */
	CT_TIMEOUT,    /* seconds, 1..3600 */
	CT_NSNAME,     /* a Kubernetes namespace name (DNS-1123 label) */
};

enum config_impl { IMPL_YES, IMPL_LATER, IMPL_NA };

/* clang-format off */
#define CONFIG_FIELDS(X)                                                                          \
X(TARGET_PATH, "target.path", CT_TARGET, "MIRRORD_IMPERSONATED_TARGET", NULL, IMPL_YES, NULL, NULL) \
X(TARGET_NAMESPACE, "target.namespace", CT_NSNAME, "MIRRORD_TARGET_NAMESPACE", NULL, IMPL_YES, NULL, NULL) \
X(AGENT_NAMESPACE, "agent.namespace", CT_NSNAME, "MIRRORD_AGENT_NAMESPACE", NULL, IMPL_YES, NULL, NULL) \
X(AGENT_LOG_LEVEL, "agent.log_level", CT_STR, "MIRRORD_AGENT_RUST_LOG", "\"info\"", IMPL_YES, NULL, NULL) \
X(AGENT_JSON_LOG, "agent.json_log", CT_BOOL, "MIRRORD_AGENT_JSON_LOG", "false", IMPL_LATER, NULL, "the agent logs plain text lines") \
X(AGENT_IMAGE, "agent.image", CT_IMAGE, "MIRRORD_AGENT_IMAGE", NULL, IMPL_YES, NULL, NULL) \
X(AGENT_IMAGE_PULL_POLICY, "agent.image_pull_policy", CT_PULL, "MIRRORD_AGENT_IMAGE_PULL_POLICY", "\"IfNotPresent\"", IMPL_YES, NULL, NULL) \
X(AGENT_IMAGE_PULL_SECRETS, "agent.image_pull_secrets", CT_ARR, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_TTL, "agent.ttl", CT_U16, "MIRRORD_AGENT_TTL", "1", IMPL_YES, NULL, NULL) \
X(AGENT_EPHEMERAL, "agent.ephemeral", CT_BOOL, "MIRRORD_EPHEMERAL_CONTAINER", "false", IMPL_YES, NULL, NULL) \
X(AGENT_COMMUNICATION_TIMEOUT, "agent.communication_timeout", CT_U16, "MIRRORD_AGENT_COMMUNICATION_TIMEOUT", NULL, IMPL_YES, NULL, NULL) \
X(AGENT_STARTUP_TIMEOUT, "agent.startup_timeout", CT_U16, "MIRRORD_AGENT_STARTUP_TIMEOUT", "60", IMPL_YES, NULL, NULL) \
X(AGENT_FLUSH_CONNECTIONS, "agent.flush_connections", CT_BOOL, "MIRRORD_AGENT_STEALER_FLUSH_CONNECTIONS", "true", IMPL_YES, NULL, NULL) \
X(AGENT_DISABLED_CAPABILITIES, "agent.disabled_capabilities", CT_ARR, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_TOLERATIONS, "agent.tolerations", CT_ARR, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_RESOURCES, "agent.resources", CT_OBJ, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_CHECK_OUT_OF_PODS, "agent.check_out_of_pods", CT_BOOL, NULL, "true", IMPL_LATER, NULL, "node capacity is not checked: on a full node the agent pod stays Pending until agent.startup_timeout") \
X(AGENT_PRIVILEGED, "agent.privileged", CT_BOOL, NULL, "false", IMPL_YES, NULL, NULL) \
X(AGENT_EXTERNAL_IP_FIX, "agent.external_ip_fix", CT_BOOL, "MIRRORD_AGENT_EXTERNAL_IP_FIX", "true", IMPL_LATER, NULL, "the agent does not take this setting") \
X(AGENT_NFTABLES, "agent.nftables", CT_OBOOL, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_DNS_TIMEOUT, "agent.dns.timeout", CT_U32, NULL, NULL, IMPL_LATER, NULL, "the agent relays DNS with the pod's resolver settings") \
X(AGENT_DNS_ATTEMPTS, "agent.dns.attempts", CT_U32, NULL, NULL, IMPL_LATER, NULL, "the agent relays DNS with the pod's resolver settings") \
X(AGENT_LABELS, "agent.labels", CT_STRMAP, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_ANNOTATIONS, "agent.annotations", CT_STRMAP, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_NODE_SELECTOR, "agent.node_selector", CT_STRMAP, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_SERVICE_ACCOUNT, "agent.service_account", CT_STR, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_PRIORITY_CLASS, "agent.priority_class", CT_STR, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_SECURITY_CONTEXT, "agent.security_context", CT_OBJ, NULL, NULL, IMPL_YES, NULL, NULL) \
X(AGENT_METRICS, "agent.metrics", CT_STR, NULL, NULL, IMPL_LATER, NULL, "the agent has no metrics endpoint") \
X(AGENT_EXCLUDE_FROM_MESH, "agent.exclude_from_mesh", CT_BOOL, "MIRRORD_AGENT_EXCLUDE_FROM_MESH", "false", IMPL_NA, NULL, "the agent listens on the pod's loopback, which mesh sidecars do not intercept") \
X(AGENT_INJECT_HEADERS, "agent.inject_headers", CT_BOOL, NULL, "false", IMPL_LATER, NULL, "the agent does not take this setting") \
X(AGENT_OVERRIDE_CACHE_CONTROL, "agent.override_cache_control", CT_BOOL, NULL, "true", IMPL_LATER, NULL, "the agent does not take this setting") \
X(AGENT_MAX_BODY_BUFFER_SIZE, "agent.max_body_buffer_size", CT_U32, NULL, "65535", IMPL_LATER, NULL, "the agent does not take this setting") \
X(AGENT_MAX_BODY_BUFFER_TIMEOUT, "agent.max_body_buffer_timeout", CT_U32, NULL, "1000", IMPL_LATER, NULL, "the agent does not take this setting") \
X(AGENT_HTTP_DETECTION_TIMEOUT, "agent.http_detection_timeout", CT_U32, "MIRRORD_AGENT_HTTP_DETECTION_TIMEOUT", "2", IMPL_YES, NULL, NULL) \
X(AGENT_CLEAN_IPTABLES_ON_START, "agent.clean_iptables_on_start", CT_OBOOL, "MIRRORD_AGENT_CLEAN_IPTABLES_ON_START", NULL, IMPL_LATER, NULL, "the agent does not take this setting") \
X(AGENT_DISABLE_MESH_SIDECAR_INJECTION, "agent.disable_mesh_sidecar_injection", CT_BOOL, NULL, "true", IMPL_YES, NULL, NULL) \
X(AGENT_JAQ_TIME_LIMIT, "agent.jaq_time_limit", CT_U32, NULL, "1", IMPL_LATER, NULL, "the agent does not take this setting") \
X(ENV_INCLUDE, "feature.env.include", CT_STRLIST, "MIRRORD_OVERRIDE_ENV_VARS_INCLUDE", NULL, IMPL_YES, NULL, NULL) \
X(ENV_EXCLUDE, "feature.env.exclude", CT_STRLIST, "MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE", NULL, IMPL_YES, NULL, NULL) \
X(ENV_OVERRIDE, "feature.env.override", CT_STRMAP, NULL, NULL, IMPL_YES, NULL, NULL) \
X(ENV_UNSET, "feature.env.unset", CT_STRLIST, NULL, NULL, IMPL_YES, NULL, NULL) \
X(ENV_FILE, "feature.env.env_file", CT_STR, "MIRRORD_OVERRIDE_ENV_VARS_FILE", NULL, IMPL_YES, NULL, NULL) \
X(ENV_MAPPING, "feature.env.mapping", CT_STRMAP, NULL, NULL, IMPL_YES, NULL, NULL) \
X(ENV_LOAD_FROM_PROCESS, "feature.env.load_from_process", CT_OBOOL, "MIRRORD_ENV_LOAD_FROM_PROCESS", NULL, IMPL_LATER, "false", "the environment is fetched before the program starts") \
X(FS_MODE, "feature.fs.mode", CT_FS_MODE, "MIRRORD_FILE_MODE", "\"read\"", IMPL_YES, NULL, NULL) \
X(FS_READ_WRITE, "feature.fs.read_write", CT_STRLIST, "MIRRORD_FILE_READ_WRITE_PATTERN", NULL, IMPL_YES, NULL, NULL) \
X(FS_READ_ONLY, "feature.fs.read_only", CT_STRLIST, "MIRRORD_FILE_READ_ONLY_PATTERN", NULL, IMPL_YES, NULL, NULL) \
X(FS_LOCAL, "feature.fs.local", CT_STRLIST, "MIRRORD_FILE_LOCAL_PATTERN", NULL, IMPL_YES, NULL, NULL) \
X(FS_NOT_FOUND, "feature.fs.not_found", CT_STRLIST, NULL, NULL, IMPL_YES, NULL, NULL) \
X(FS_MAPPING, "feature.fs.mapping", CT_STRMAP, NULL, NULL, IMPL_YES, NULL, NULL) \
X(FS_READONLY_FILE_BUFFER, "feature.fs.readonly_file_buffer", CT_U32, NULL, "128000", IMPL_LATER, NULL, "remote files are copied whole") \
X(IN_MODE, "feature.network.incoming.mode", CT_IN_MODE, "MIRRORD_AGENT_TCP_STEAL_TRAFFIC", "\"mirror\"", IMPL_YES, NULL, NULL) \
X(IN_HEADER_FILTER, "feature.network.incoming.http_filter.header_filter", CT_STR, "MIRRORD_HTTP_HEADER_FILTER", NULL, IMPL_YES, NULL, NULL) \
X(IN_PATH_FILTER, "feature.network.incoming.http_filter.path_filter", CT_STR, "MIRRORD_HTTP_PATH_FILTER", NULL, IMPL_YES, NULL, NULL) \
X(IN_METHOD_FILTER, "feature.network.incoming.http_filter.method_filter", CT_STR, "MIRRORD_HTTP_METHOD_FILTER", NULL, IMPL_YES, NULL, NULL) \
X(IN_HEADER_FILTER_JQ, "feature.network.incoming.http_filter.header_filter_jq", CT_STR, "MIRRORD_HTTP_HEADER_FILTER_JQ", NULL, IMPL_LATER, NULL, "only header, path and method filters are implemented; the filter is not applied") \
X(IN_BODY_FILTER, "feature.network.incoming.http_filter.body_filter", CT_OBJ, NULL, NULL, IMPL_LATER, NULL, "only header, path and method filters are implemented; the filter is not applied") \
X(IN_ALL_OF, "feature.network.incoming.http_filter.all_of", CT_ARR, NULL, NULL, IMPL_YES, NULL, NULL) \
X(IN_ANY_OF, "feature.network.incoming.http_filter.any_of", CT_ARR, NULL, NULL, IMPL_YES, NULL, NULL) \
X(IN_FILTER_PORTS, "feature.network.incoming.http_filter.ports", CT_PORTS, "MIRRORD_HTTP_FILTER_PORTS", NULL, IMPL_YES, NULL, NULL) \
X(IN_PORT_MAPPING, "feature.network.incoming.port_mapping", CT_PAIRS, NULL, NULL, IMPL_YES, NULL, NULL) \
X(IN_IGNORE_LOCALHOST, "feature.network.incoming.ignore_localhost", CT_BOOL, NULL, "false", IMPL_YES, NULL, NULL) \
X(IN_IGNORE_PORTS, "feature.network.incoming.ignore_ports", CT_PORTS, NULL, NULL, IMPL_YES, NULL, NULL) \
X(IN_PORTS, "feature.network.incoming.ports", CT_PORTS, NULL, NULL, IMPL_YES, NULL, NULL) \
X(IN_LISTEN_PORTS, "feature.network.incoming.listen_ports", CT_PAIRS, NULL, NULL, IMPL_YES, NULL, NULL) \
X(IN_ON_CONCURRENT_STEAL, "feature.network.incoming.on_concurrent_steal", CT_CONCURRENT, "MIRRORD_OPERATOR_ON_CONCURRENT_STEAL", NULL, IMPL_NA, NULL, "it needs the mirrord operator") \
X(IN_TLS_DELIVERY, "feature.network.incoming.tls_delivery", CT_ANY, NULL, NULL, IMPL_NA, NULL, "it needs the mirrord operator") \
X(IN_HTTPS_DELIVERY, "feature.network.incoming.https_delivery", CT_ANY, NULL, NULL, IMPL_NA, NULL, "it needs the mirrord operator") \
X(OUT_TCP, "feature.network.outgoing.tcp", CT_BOOL, "MIRRORD_TCP_OUTGOING", "true", IMPL_YES, NULL, NULL) \
X(OUT_UDP, "feature.network.outgoing.udp", CT_BOOL, "MIRRORD_UDP_OUTGOING", "true", IMPL_YES, NULL, NULL) \
X(OUT_IGNORE_LOCALHOST, "feature.network.outgoing.ignore_localhost", CT_BOOL, NULL, "false", IMPL_YES, NULL, NULL) \
X(OUT_FILTER, "feature.network.outgoing.filter", CT_OBJ, NULL, NULL, IMPL_YES, NULL, NULL) \
X(OUT_UNIX_STREAMS, "feature.network.outgoing.unix_streams", CT_STRLIST, "MIRRORD_OUTGOING_REMOTE_UNIX_STREAMS", NULL, IMPL_LATER, NULL, "unix sockets stay local") \
X(DNS_ENABLED, "feature.network.dns.enabled", CT_BOOL, "MIRRORD_REMOTE_DNS", "true", IMPL_YES, NULL, NULL) \
X(DNS_FILTER, "feature.network.dns.filter", CT_OBJ, NULL, NULL, IMPL_YES, NULL, NULL) \
X(NET_IPV6, "feature.network.ipv6", CT_BOOL, "MIRRORD_ENABLE_IPV6", "true", IMPL_LATER, "true", "IPv6 sockets keep working") \
X(FEAT_HOSTNAME, "feature.hostname", CT_BOOL, NULL, "true", IMPL_LATER, NULL, "gethostname() and uname() report the local name") \
X(FEAT_COPY_TARGET, "feature.copy_target", CT_ANY, NULL, NULL, IMPL_NA, NULL, "it needs the mirrord operator") \
X(FEAT_SPLIT_QUEUES, "feature.split_queues", CT_ANY, NULL, NULL, IMPL_NA, NULL, "it needs the mirrord operator") \
X(FEAT_DB_BRANCHES, "feature.db_branches", CT_ANY, NULL, NULL, IMPL_NA, NULL, "it needs the mirrord operator") \
X(FEAT_PREVIEW, "feature.preview", CT_ANY, NULL, NULL, IMPL_NA, NULL, "it needs the mirrord operator") \
X(FEAT_MAGIC, "feature.magic", CT_ANY, NULL, NULL, IMPL_LATER, NULL, "no AWS preset and no auto-mount") \
X(ACCEPT_INVALID_CERTIFICATES, "accept_invalid_certificates", CT_OBOOL, "MIRRORD_ACCEPT_INVALID_CERTIFICATES", NULL, IMPL_YES, NULL, NULL) \
X(SKIP_PROCESSES, "skip_processes", CT_STRLIST, "MIRRORD_SKIP_PROCESSES", NULL, IMPL_LATER, NULL, "every process is traced") \
X(SKIP_BUILD_TOOLS, "skip_build_tools", CT_BOOL, "MIRRORD_SKIP_BUILD_TOOLS", "true", IMPL_LATER, NULL, "build tools are traced like any process") \
X(SKIP_EXTRA_BUILD_TOOLS, "skip_extra_build_tools", CT_STRLIST, "MIRRORD_SKIP_EXTRA_BUILD_TOOLS", NULL, IMPL_LATER, NULL, "build tools are traced like any process") \
X(OPERATOR, "operator", CT_OBOOL, "MIRRORD_OPERATOR_ENABLE", NULL, IMPL_NA, "false", "there is no operator; the agent is used directly") \
X(MULTI_CLUSTER, "multi_cluster", CT_OBOOL, "MIRRORD_MULTI_CLUSTER", NULL, IMPL_NA, "false", "it needs the mirrord operator") \
X(API, "api", CT_BOOL, "MIRRORD_API", "true", IMPL_NA, NULL, "there is no session-monitor socket") \
X(PROFILE, "profile", CT_STR, NULL, NULL, IMPL_NA, NULL, "it needs the mirrord operator") \
X(KUBECONFIG, "kubeconfig", CT_STR, "MIRRORD_KUBECONFIG", NULL, IMPL_YES, NULL, NULL) \
X(KUBE_CONTEXT, "kube_context", CT_STR, "MIRRORD_KUBE_CONTEXT", NULL, IMPL_YES, NULL, NULL) \
X(SIP_BINARIES, "sip_binaries", CT_ANY, NULL, NULL, IMPL_NA, NULL, "it only matters on macOS") \
X(SKIP_SIP, "skip_sip", CT_ANY, "MIRRORD_SKIP_SIP", NULL, IMPL_NA, NULL, "it only matters on macOS") \
X(CONTAINER, "container", CT_ANY, NULL, NULL, IMPL_NA, NULL, "there is no `mirrord container`") \
X(TELEMETRY, "telemetry", CT_BOOL, "MIRRORD_TELEMETRY", "true", IMPL_NA, "false", "mirrord-trace sends no telemetry") \
X(INTERNAL_PROXY, "internal_proxy", CT_ANY, NULL, NULL, IMPL_NA, NULL, "there is no internal proxy: the supervisor talks to the agent") \
X(EXTERNAL_PROXY, "external_proxy", CT_ANY, NULL, NULL, IMPL_NA, NULL, "there is no external proxy") \
X(USE_PROXY, "use_proxy", CT_BOOL, "MIRRORD_PROXY", "true", IMPL_LATER, NULL, "the kubeconfig's proxy-url and the proxy variables are always honoured") \
X(EXPERIMENTAL, "experimental", CT_ANY, NULL, NULL, IMPL_NA, NULL, "its switches concern mirrord's LD_PRELOAD layer") \
X(STARTUP_RETRY, "startup_retry", CT_ANY, NULL, NULL, IMPL_LATER, NULL, "API requests are not retried; each has its own timeout") \
X(CI, "ci", CT_ANY, NULL, NULL, IMPL_NA, NULL, "there is no `mirrord ci`") \
X(KEY, "key", CT_STR, "MIRRORD_KEY", NULL, IMPL_YES, NULL, NULL) \
X(TRACEPARENT, "traceparent", CT_STR, "TRACEPARENT", NULL, IMPL_NA, NULL, "mirrord-trace exports no traces") \
X(BAGGAGE, "baggage", CT_STR, "BAGGAGE", NULL, IMPL_NA, NULL, "mirrord-trace exports no traces") \
X(MT_AGENT_ADDR, "mirrord_trace.agent_addr", CT_HOSTPORT, "MIRRORD_TRACE_AGENT_ADDR", NULL, IMPL_YES, NULL, NULL) \
X(MT_CONNECT_TIMEOUT, "mirrord_trace.agent_connect_timeout", CT_TIMEOUT, "MIRRORD_TRACE_AGENT_CONNECT_TIMEOUT", "10", IMPL_YES, NULL, NULL) \
X(MT_LOG_LEVEL, "mirrord_trace.log_level", CT_LOG_LEVEL, "MIRRORD_TRACE_LOG", "\"warn\"", IMPL_YES, NULL, NULL) \
X(MT_TRACE, "mirrord_trace.trace", CT_BOOL, "MIRRORD_TRACE_SYSCALLS", "false", IMPL_YES, NULL, NULL) \
X(MT_TRACE_STACKS, "mirrord_trace.trace_stacks", CT_BOOL, "MIRRORD_TRACE_STACKS", "false", IMPL_YES, NULL, NULL) \
X(MT_QUIET, "mirrord_trace.quiet", CT_BOOL, "MIRRORD_TRACE_QUIET", "false", IMPL_YES, NULL, NULL) \
X(CONFIG_FILE, "config_file", CT_STR, "MIRRORD_CONFIG_FILE", NULL, IMPL_YES, NULL, NULL)
/* clang-format on */

enum config_field {
#define CONFIG_FIELD_ENUM(id, ...) CF_##id,
	CONFIG_FIELDS(CONFIG_FIELD_ENUM)
#undef CONFIG_FIELD_ENUM
	        CF__COUNT
};
