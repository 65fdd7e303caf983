/*
 * The VMM's log: timestamped lines to stderr or to the file named by -D. Thread-safe; each
 * line is written with one write(2) so lines from vCPU threads never interleave.
 * log_once() keeps a hostile or broken guest from flooding the log.
 */
#ifndef STRATUS_VMM_LOG_H
#define STRATUS_VMM_LOG_H

#include <stdbool.h>

#include "util.h"

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

/* fd to write to (default 2); level is the most verbose level written. */
void log_init(int fd, enum log_level level);
int log_fd(void);
void log_write(enum log_level level, const char *fmt, ...) _printf_(2, 3);

/* Seconds since the VMM started (CLOCK_MONOTONIC), the reference for the boot timer. */
double log_uptime(void);

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

/* Log a message at most once per call site. */
#define log_once(level, ...)                                                       \
	do {                                                                       \
		static bool log_once_done_;                                        \
		if (!__atomic_exchange_n(&log_once_done_, true, __ATOMIC_RELAXED)) \
			log_write(level, __VA_ARGS__);                             \
	} while (0)

#endif
