/* The harness of the agent's incoming-traffic tests (test_incoming.c,
 * test_incoming_h2.c): two network namespaces joined by a veth pair,
 * "pod" (POD_IP, a python3 HTTP server on APP_PORT as the pod's app, a
 * server-speaks-first echo on RAW_PORT, and
 * the agent's target) and "peer" (PEER_IP, where the test's connections
 * to the pod come from), named after the test's pid and removed on every
 * path (an atexit hook, SIGALRM/SIGTERM/SIGINT); the agent in targeted
 * mode and the client side of its incoming messages. */
#pragma once

#include "tests/agent/agent_harness.h"
#include "common/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POD_IP "10.201.0.1"
#define PEER_IP "10.201.0.2"
#define APP_PORT 80
#define RAW_PORT 81 /* the pod's other app: "banner\n", then an echo */

extern char ns_pod[64], ns_peer[64];
extern pid_t app_pid;
extern int peer_nsfd, root_nsfd;

MT_PRINTF(1, 2) int sh(const char *fmt, ...);
char *capture_cmd(const char *cmd);
char *ruleset(void);
bool ruleset_becomes(const char *want, int ms);
void teardown_ns(void);
void setup_ns(void);
/* The test plays a pod app on port (not APP_PORT, the python app's): a
 * listening socket in the pod's namespace; pod_accept() takes the next
 * connection (non-blocking), waiting at most WAIT_MS. */
int pod_listen(uint16_t port);
int pod_accept(int lfd);
/* The agents started from now on are the one with its timeouts cut short
 * (mirrord-trace-agent-quick beside agent_path, the test hook of
 * agent/incoming.h): stalls of 400 ms, idleness of 600 ms, half-closed
 * exchanges of 400 ms. */
void quick_agent(void);
void normal_agent(void); /* back to agent_path as given */
/* Whether the agent closed or reset fd within ms. */
bool cut_within(int fd, int ms);
int peer_connect_port(uint16_t port);
int peer_connect(void);
bool wait_port(void);
size_t read_some(int fd, char *buf, size_t cap, size_t want);
void http_get(const char *extra_headers, char *resp, size_t cap);
void agent_start_targeted(struct agent_run *ar, const char *env_extra);
/* The same with agent options before the mode (NULL-terminated). */
void agent_start_targeted_opts(struct agent_run *ar, const char *env_extra,
                               const char *const *opts);
void recv_until(struct conn *c, enum ap_type t, struct ap_msg *ret);
void connect_agent(struct conn *c, const struct agent_run *ar);
/* A fresh pod (setup_ns()), and the agent (env_extra: added to its
 * environment, or NULL) stealing APP_PORT's requests of alice's. */
void steal_alice(struct agent_run *ar, struct conn *c, const char *env_extra);
int subscribe_port(struct conn *c, uint32_t id, uint16_t port, uint8_t mode, uint8_t op,
                   const char *header, const char *method);
int subscribe(struct conn *c, uint32_t id, uint8_t mode, uint8_t op, const char *header,
              const char *method);
int unsubscribe(struct conn *c, uint32_t id);
size_t recv_stream(struct conn *c, uint32_t id, char *out, size_t cap, size_t want);
pid_t peer_bg(const char *req, int *ret_out);
void bg_result(pid_t pid, int fd, char *out, size_t cap);
