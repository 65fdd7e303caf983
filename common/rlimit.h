/*
 * The runtime-spec's process.rlimits[].type names (config.md, "POSIX process"): the runtime
 * checks them when it parses config.json, the agent when it applies them. Header-only, like
 * util.h, for the static agent and the host libraries alike.
 */
#ifndef STRATUS_COMMON_RLIMIT_H
#define STRATUS_COMMON_RLIMIT_H

#include <string.h>
#include <sys/resource.h>

#include "util.h"

/* The RLIMIT_* resource named name ("RLIMIT_NOFILE"), or -1 when the name is unknown. */
static inline int rlimit_from_name(const char *name)
{
	static const struct {
		const char *name;
		int resource;
	} names[] = {
		{ "RLIMIT_AS", RLIMIT_AS },
		{ "RLIMIT_CORE", RLIMIT_CORE },
		{ "RLIMIT_CPU", RLIMIT_CPU },
		{ "RLIMIT_DATA", RLIMIT_DATA },
		{ "RLIMIT_FSIZE", RLIMIT_FSIZE },
		{ "RLIMIT_LOCKS", RLIMIT_LOCKS },
		{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
		{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
		{ "RLIMIT_NICE", RLIMIT_NICE },
		{ "RLIMIT_NOFILE", RLIMIT_NOFILE },
		{ "RLIMIT_NPROC", RLIMIT_NPROC },
		{ "RLIMIT_RSS", RLIMIT_RSS },
		{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
		{ "RLIMIT_RTTIME", RLIMIT_RTTIME },
		{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
		{ "RLIMIT_STACK", RLIMIT_STACK },
	};

	for (size_t i = 0; name && i < ARRAY_SIZE(names); i++)
		if (!strcmp(names[i].name, name))
			return names[i].resource;
	return -1;
}

#endif
