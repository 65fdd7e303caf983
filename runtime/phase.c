/*
 * Phase timestamps (phase.h). The monitor is forked, never exec'd, so it inherits the start
 * time and the log's path from the CLI; each line is one O_APPEND write of its own, so the
 * two processes' lines never interleave.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "phase.h"
#include "state.h"

static char phase_log[4096];
static bool phase_json;
static struct timespec phase_t0;

void phase_init(const char *log_path, bool json)
{
	char cwd[2048];

	clock_gettime(CLOCK_MONOTONIC, &phase_t0);
	phase_log[0] = '\0';
	phase_json = json;
	if (!log_path || !log_path[0])
		return;
	/* absolute: the path must still name the file wherever the monitor runs */
	if (log_path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		snprintf(phase_log, sizeof(phase_log), "%s", log_path);
	else
		snprintf(phase_log, sizeof(phase_log), "%s/%s", cwd, log_path);
}

void phase_mark(const char *name, const char *side)
{
	struct timespec now;
	char line[512], ts[64];
	double ms;
	int fd, n;

	if (!phase_log[0])
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - phase_t0.tv_sec) * 1e3 +
	     (double)(now.tv_nsec - phase_t0.tv_nsec) / 1e6;
	state_timestamp(ts, sizeof(ts));
	if (phase_json)
		n = snprintf(
			line, sizeof(line),
			"{\"level\":\"debug\",\"msg\":\"phase %s %.3f ms %s\",\"time\":\"%s\"}\n",
			name, ms, side, ts);
	else
		n = snprintf(line, sizeof(line),
			     "time=\"%s\" level=debug msg=\"phase %s %.3f ms %s\"\n", ts, name, ms,
			     side);
	fd = open(phase_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	if (n > 0 && write(fd, line, (size_t)n) < 0) {
		/* a debug aid: a full disk must not fail the container */
	}
	close(fd);
}
