/*
 * The VMM's log sink (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

static int log_sink_fd = 2;
static enum log_level log_max_level = LOG_INFO;
static struct timespec log_start;

static const char *const log_level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

__attribute__((constructor)) static void log_start_clock(void)
{
	clock_gettime(CLOCK_MONOTONIC, &log_start);
}

void log_init(int fd, enum log_level level)
{
	log_sink_fd = fd;
	log_max_level = level;
}

int log_fd(void)
{
	return log_sink_fd;
}

double log_uptime(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - log_start.tv_sec) +
	       (double)(now.tv_nsec - log_start.tv_nsec) / 1e9;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	if (level > log_max_level || log_sink_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "[%10.6f] %s: ", log_uptime(), log_level_names[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m > 0)
		n = (int)MIN((size_t)n + (size_t)m, sizeof(line) - 2);
	line[n++] = '\n';
	if (write(log_sink_fd, line, n) < 0)
		return;
}
