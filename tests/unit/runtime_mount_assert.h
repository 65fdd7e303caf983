/*
 * Shared by the unit tests of the runtime's mount translations (test_runtime_mounts.c,
 * test_runtime_pod.c): one of CREATE's mounts as expected, its options joined by commas.
 * Include after cmocka.h.
 */
#ifndef STRATUS_TESTS_RUNTIME_MOUNT_ASSERT_H
#define STRATUS_TESTS_RUNTIME_MOUNT_ASSERT_H

#include <string.h>

#include "agent_proto.h"

static void assert_mount(const struct agent_mount *m, const char *source, const char *target,
			 const char *fstype, const char *options)
{
	char joined[512] = "";

	assert_string_equal(m->source, source);
	assert_string_equal(m->target, target);
	assert_string_equal(m->fstype, fstype);
	for (uint32_t i = 0; i < m->options.n; i++) {
		if (i)
			strcat(joined, ",");
		strcat(joined, m->options.v[i]);
	}
	assert_string_equal(joined, options);
}

#endif
