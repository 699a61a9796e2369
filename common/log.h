/* Logging for the top layers only (cli, the supervisor loop, the agent's
 * main loop). Library-like modules return errors and never call this. */
#pragma once

#include <stdbool.h>
#include "common/util.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_parse_level(const char *s, enum log_level *ret);

MT_PRINTF(2, 3) void log_msg(enum log_level level, const char *fmt, ...);

#define log_enabled(lvl) ((lvl) <= log_get_level())
/* The format arguments are not evaluated when the level is off. */
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)                                   \
	do {                                            \
		if (log_enabled(LOG_INFO))              \
			log_msg(LOG_INFO, __VA_ARGS__); \
	} while (0)
#define log_debug(...)                                   \
	do {                                             \
		if (log_enabled(LOG_DEBUG))              \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)
#define log_trace(...)                                   \
	do {                                             \
		if (log_enabled(LOG_TRACE))              \
			log_msg(LOG_TRACE, __VA_ARGS__); \
	} while (0)
