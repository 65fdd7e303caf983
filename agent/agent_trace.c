/*
 * Step timestamps for measuring the guest's share of a container's life (docs/benchmarks.md
 * "VM templates"). Off by default: agent_trace() is then one test of a global. On when the
 * agent finds the word "stratus.trace" on its command line (the kernel hands init the words
 * it does not know) or the file /etc/stratus-trace in its root (an initramfs with that file
 * is another template key, so a traced template never serves untraced containers). Each line
 * is "stratus-agent: trace MS WHAT", CLOCK_MONOTONIC in milliseconds, one write(2) on the
 * console fd the agent had when tracing was turned on, so the container's children, whose
 * stdio is the container's, still reach the console.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent_internal.h"

int agent_trace_fd = -1;

void agent_trace_enable(int fd)
{
	if (agent_trace_fd >= 0)
		return;
	agent_trace_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

void agent_trace_at(const char *fmt, ...)
{
	struct timespec ts;
	struct rusage ru;
	char line[256];
	va_list ap;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	getrusage(RUSAGE_SELF, &ru);
	n = snprintf(line, sizeof(line), "stratus-agent: trace %lld.%03ld pid %d faults %ld ",
		     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, ts.tv_nsec / 1000 % 1000,
		     (int)getpid(), ru.ru_minflt + ru.ru_majflt);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	if (write(agent_trace_fd, line, strlen(line)) < 0) {
		/* a measuring aid: nothing to do if the console is gone */
	}
}
