/*
 * stratus events [--stats] [--interval 5s] ID: the container's cgroup statistics from the
 * agent as runc's event JSON lines ({"type":"stats","id":...,"data":{cpu, memory, pids}});
 * --stats prints one and exits, otherwise one per interval until the container stops.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stratus_cli.h"
#include "container.h"

/* "5s", "500ms", "2m", "1h" or plain seconds. */
static int parse_duration(const char *s, unsigned int *ms)
{
	char *end;
	double v = strtod(s, &end);
	double scale;

	if (end == s || v <= 0)
		return -EINVAL;
	if (!*end || !strcmp(end, "s"))
		scale = 1000;
	else if (!strcmp(end, "ms"))
		scale = 1;
	else if (!strcmp(end, "m"))
		scale = 60000;
	else if (!strcmp(end, "h"))
		scale = 3600000;
	else
		return -EINVAL;
	if (v * scale < 1 || v * scale > 86400000)
		return -EINVAL;
	*ms = (unsigned int)(v * scale);
	return 0;
}

int cli_events_parse(int argc, char **argv, struct cli_events_args *a, struct error *err)
{
	static const struct option opts[] = {
		{ "stats", no_argument, NULL, 's' },
		{ "interval", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->interval_ms = 5000;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
		if (c == 's') {
			a->stats = true;
		} else if (c == 'i') {
			if (parse_duration(optarg, &a->interval_ms) < 0)
				return error_set(err, -EINVAL,
						 "events: --interval: not a duration (like 5s or "
						 "500ms): \"%s\"",
						 optarg);
		} else if (c == ':') {
			return error_set(err, -EINVAL, "events: %s: needs a value",
					 argv[optind - 1]);
		} else {
			return cli_unknown_flag("events", argv, err);
		}
	}
	if (cli_need_args("events", argc - optind, 1, 1, err) < 0)
		return -EINVAL;
	a->id = argv[optind];
	return 0;
}

static long long limit(uint64_t v)
{
	return v == AGENT_STATS_NO_LIMIT ? 0 : (long long)v;
}

static void print_stats(const char *id, const struct agent_stats *s)
{
	printf("{\"type\":\"stats\",\"id\":\"%s\",\"data\":{"
	       "\"cpu\":{\"usage\":{\"total\":%llu,\"user\":%llu,\"kernel\":%llu},"
	       "\"throttling\":{\"periods\":%llu,\"throttledPeriods\":%llu,\"throttledTime\":%llu}}"
	       ","
	       "\"memory\":{\"usage\":{\"usage\":%llu,\"limit\":%lld},\"swap\":{\"usage\":%llu},"
	       "\"oom\":%llu,\"oomKill\":%llu},"
	       "\"pids\":{\"current\":%llu,\"limit\":%lld}}}\n",
	       id, (unsigned long long)s->cpu_usage_us * 1000,
	       (unsigned long long)s->cpu_user_us * 1000,
	       (unsigned long long)s->cpu_system_us * 1000, (unsigned long long)s->cpu_nr_periods,
	       (unsigned long long)s->cpu_nr_throttled,
	       (unsigned long long)s->cpu_throttled_us * 1000, (unsigned long long)s->mem_usage,
	       limit(s->mem_limit), (unsigned long long)s->mem_swap_usage,
	       (unsigned long long)s->mem_oom, (unsigned long long)s->mem_oom_kill,
	       (unsigned long long)s->pids_current, limit(s->pids_limit));
	fflush(stdout);
}

int cli_events(struct cli_global *g)
{
	struct cli_events_args a;
	struct error err = { 0 };
	struct agent_stats s;

	if (cli_events_parse(g->argc, g->argv, &a, &err) < 0)
		return cli_fail(g, &err);
	for (;;) {
		struct timespec ts = { a.interval_ms / 1000, (a.interval_ms % 1000) * 1000000L };

		if (container_stats(g->root, a.id, &s, &err) < 0) {
			/* The container stopped while we watched: the end of its events. */
			if (err.code == -ESRCH && !a.stats)
				return 0;
			return cli_fail(g, &err);
		}
		print_stats(a.id, &s);
		if (a.stats)
			return 0;
		nanosleep(&ts, NULL);
	}
}
