/*
 * Unit tests for the agent's cgroup v2 mapping (agent/agent_cgroup.c) against a directory of
 * plain files standing in for a container's cgroup, so they run on any host (this one may
 * have no cgroup v2 memory controller): linux.resources to the files (memory.max, the swap
 * arithmetic, pids.max, cpu.max, crun's cpu.shares to cpu.weight conversion, cpuset,
 * unified), the errors naming their field, STATS parsed from cpu.stat, memory.* and pids.*,
 * and the freezer's files (cgroup.freeze written, "frozen" read from cgroup.events).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "agent_internal.h"

static const char *files[] = {
	"memory.max",	  "memory.low",	   "memory.swap.max",	  "pids.max",	  "cpu.max",
	"cpu.weight",	  "cpuset.cpus",   "cpuset.mems",	  "io.weight",	  "cpu.stat",
	"memory.current", "memory.events", "memory.swap.current", "pids.current", "cgroup.freeze",
	"cgroup.events"
};

static int dir_setup(void **state)
{
	char *dir = strdup("/tmp/test-agent-cgroup-XXXXXX");

	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[128];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	*state = dir;
	return 0;
}

static int dir_teardown(void **state)
{
	char *dir = *state, path[128];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	assert_int_equal(rmdir(dir), 0);
	free(dir);
	return 0;
}

static void read_into(const char *dir, const char *name, char *buf, size_t len)
{
	char path[128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect_file(const char *dir, const char *name, const char *value)
{
	char buf[128];

	read_into(dir, name, buf, sizeof(buf));
	if (strcmp(buf, value))
		fail_msg("%s: expected \"%s\", got \"%s\"", name, value, buf);
}

/* Parse and apply resources JSON: 0 or the error, with the message in err. */
static int apply(const char *dir, const char *json, char *err, size_t err_len)
{
	char yerr[128];
	yajl_val root = yajl_tree_parse(json, yerr, sizeof(yerr));
	struct cgroup_limits l;
	int r;

	assert_non_null(root);
	err[0] = '\0';
	r = cgroup_limits_parse(root, "linux.resources", &l, err, err_len);
	yajl_tree_free(root);
	if (r < 0)
		return r;
	r = cgroup_apply(dir, &l, err, err_len);
	cgroup_limits_free(&l);
	return r;
}

static void test_limits_to_files(void **state)
{
	const char *dir = *state;
	char err[256];

	assert_int_equal(apply(dir,
			       "{\"memory\": {\"limit\": 67108864, \"swap\": 100663296, "
			       "\"reservation\": 1048576}, \"pids\": {\"limit\": 64}, \"cpu\": "
			       "{\"quota\": 50000, \"period\": 200000, \"shares\": 1024, \"cpus\": "
			       "\"0-1\", \"mems\": \"0\"}, \"unified\": {\"io.weight\": \"50\"}}",
			       err, sizeof(err)),
			 0);
	expect_file(dir, "memory.max", "67108864");
	expect_file(dir, "memory.low", "1048576");
	expect_file(dir, "memory.swap.max", "33554432"); /* OCI counts memory + swap */
	expect_file(dir, "pids.max", "64");
	expect_file(dir, "cpu.max", "50000 200000");
	expect_file(dir, "cpu.weight", "100"); /* 1024 shares, the default, is weight 100 */
	expect_file(dir, "cpuset.cpus", "0-1");
	expect_file(dir, "cpuset.mems", "0");
	expect_file(dir, "io.weight", "50");

	/* Unlimited, and the ends of the shares range. */
	assert_int_equal(
		apply(dir,
		      "{\"memory\": {\"limit\": -1, \"swap\": -1}, \"pids\": {\"limit\": 0}, "
		      "\"cpu\": {\"quota\": -1, \"shares\": 2}}",
		      err, sizeof(err)),
		0);
	expect_file(dir, "memory.max", "max");
	expect_file(dir, "memory.swap.max", "max");
	expect_file(dir, "pids.max", "max");
	expect_file(dir, "cpu.max", "max 200000"); /* the period is kept */
	expect_file(dir, "cpu.weight", "1");
	/* Either alone keeps the other. */
	assert_int_equal(apply(dir, "{\"cpu\": {\"quota\": 30000}}", err, sizeof(err)), 0);
	expect_file(dir, "cpu.max", "30000 200000");
	assert_int_equal(apply(dir, "{\"cpu\": {\"period\": 50000}}", err, sizeof(err)), 0);
	expect_file(dir, "cpu.max", "30000 50000");
	assert_int_equal(apply(dir, "{\"cpu\": {\"shares\": 262144}}", err, sizeof(err)), 0);
	expect_file(dir, "cpu.weight", "10000");
	assert_int_equal(apply(dir, "{\"cpu\": {\"shares\": 512}}", err, sizeof(err)), 0);
	expect_file(dir, "cpu.weight", "59");
}

static void test_limits_errors(void **state)
{
	const char *dir = *state;
	char err[256];

	assert_int_equal(apply(dir, "{\"memory\": {\"limit\": \"lots\"}}", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "linux.resources.memory.limit: must be an integer >= -1");
	assert_int_equal(
		apply(dir, "{\"memory\": {\"limit\": 200, \"swap\": 100}}", err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "memory.swap: must not be below memory.limit"));
	assert_int_equal(apply(dir, "{\"cpu\": 3}", err, sizeof(err)), -EINVAL);
	assert_int_equal(apply(dir, "{\"unified\": {\"../../escape\": \"1\"}}", err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(apply(dir, "{\"unified\": {\"cgroup.procs\": \"1\"}}", err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(apply(dir, "{\"cpu\": {\"period\": 0}}", err, sizeof(err)), -EINVAL);
	/* A file the kernel does not have: the write fails, naming the field and the file. */
	assert_int_equal(
		apply(dir, "{\"unified\": {\"hugetlb.2MB.max\": \"0\"}}", err, sizeof(err)),
		-ENOENT);
	assert_non_null(strstr(err, "linux.resources.unified: write hugetlb.2MB.max"));
}

static void test_stats(void **state)
{
	const char *dir = *state;
	struct agent_stats st;

	write_file(dir, "cpu.stat",
		   "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n"
		   "nr_throttled 2\nthrottled_usec 300\n");
	write_file(dir, "memory.current", "4096\n");
	write_file(dir, "memory.max", "max\n");
	write_file(dir, "memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n");
	write_file(dir, "memory.swap.current", "0\n");
	write_file(dir, "pids.current", "3\n");
	write_file(dir, "pids.max", "100\n");
	assert_int_equal(cgroup_stats(dir, &st), 0);
	assert_int_equal(st.cpu_usage_us, 1500);
	assert_int_equal(st.cpu_user_us, 1000);
	assert_int_equal(st.cpu_system_us, 500);
	assert_int_equal(st.cpu_nr_periods, 7);
	assert_int_equal(st.cpu_nr_throttled, 2);
	assert_int_equal(st.cpu_throttled_us, 300);
	assert_int_equal(st.mem_usage, 4096);
	assert_true(st.mem_limit == AGENT_STATS_NO_LIMIT);
	assert_int_equal(st.mem_oom, 2);
	assert_int_equal(st.mem_oom_kill, 1);
	assert_int_equal(st.pids_current, 3);
	assert_int_equal(st.pids_limit, 100);
	assert_int_equal(cgroup_oom_kills(dir), 1);
	/* "oom_kill" is not "oom": the keys are matched whole. */
	write_file(dir, "memory.events", "oom_kill 9\noom 4\n");
	assert_int_equal(cgroup_oom_kills(dir), 9);
	assert_int_equal(cgroup_stats(dir, &st), 0);
	assert_int_equal(st.mem_oom, 4);
}

static void test_freezer_files(void **state)
{
	const char *dir = *state;
	char missing[160];

	assert_int_equal(cgroup_freeze(dir, true), 0);
	expect_file(dir, "cgroup.freeze", "1");
	assert_int_equal(cgroup_freeze(dir, false), 0);
	expect_file(dir, "cgroup.freeze", "0");
	write_file(dir, "cgroup.events", "populated 1\nfrozen 1\n");
	assert_int_equal(cgroup_frozen(dir), 1);
	write_file(dir, "cgroup.events", "frozen 0\npopulated 1\n");
	assert_int_equal(cgroup_frozen(dir), 0);
	/* No "frozen" key (a kernel before 5.2), an empty file, no file: never "frozen". */
	write_file(dir, "cgroup.events", "populated 1\nfrozenish 1\n");
	assert_int_equal(cgroup_frozen(dir), -ENOENT);
	write_file(dir, "cgroup.events", "");
	assert_int_equal(cgroup_frozen(dir), -ENOENT);
	snprintf(missing, sizeof(missing), "%s/nosuch", dir);
	assert_int_equal(cgroup_frozen(missing), -ENOENT);
	assert_int_equal(cgroup_freeze(missing, true), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_limits_to_files, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_limits_errors, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_stats, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_freezer_files, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
