/* The harness of the agent tests (test_agent.c, test_incoming.c): start
 * mirrord-trace-agent, talk its wire protocol as a client, and the small
 * socket helpers the tests share.
 * Every wait is bounded (WAIT_MS); a failed step fails the test (CHECK). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentproto/agentproto.h"

#define WAIT_MS 5000 /* upper bound for anything that should be quick */
#define ENV_MARK_NAME "MT_AGENT_TEST_MARK"
#define ENV_MARK "MT_AGENT_TEST_MARK=distinctive-7f3a"

struct agent_run {
	pid_t pid;
	int out; /* the agent's stdout */
	uint16_t port;
};

struct conn {
	int fd;
	uint8_t *buf;
	size_t len, consumed;
	uint64_t credits; /* CREDIT bytes skipped over by recv_type() */
};

/* The agent binary under test (argv[1]). */
extern const char *agent_path;

int64_t ms_left(uint64_t deadline_ns);
bool read_line(int fd, char *line, size_t cap, int ms);
void agent_start(struct agent_run *ar, unsigned secs, const char *env_extra,
                 const char *const *mode);
int agent_wait(struct agent_run *ar, int ms);
int tcp_connect_port(uint16_t port);
void conn_open(struct conn *c, const struct agent_run *ar);
void send_msg(struct conn *c, const struct ap_msg *m);
int recv_msg(struct conn *c, struct ap_msg *ret, int ms);
void recv_type(struct conn *c, enum ap_type t, struct ap_msg *ret);
bool bytes_eq(const struct ap_bytes *b, const char *s);
void send_hello(struct conn *c, uint32_t magic, uint16_t version);
void handshake(struct conn *c, const char *mode);
void setup(struct agent_run *ar, struct conn *c, const char *env_extra);
void goodbye(struct conn *c);
void teardown(struct agent_run *ar, struct conn *c);
int listener(int type, uint16_t *ret_port);
void send_connect(struct conn *c, uint32_t req, uint32_t stream, uint8_t proto, uint16_t port,
                  uint32_t window);
void send_data(struct conn *c, uint32_t stream, const char *s);
void send_credit(struct conn *c, uint32_t stream, uint32_t n);
void read_exact(int fd, char *buf, size_t n);
