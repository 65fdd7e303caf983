/*
 * agent_passwd.c: HOME from a container's /etc/passwd, which is hostile. Plain parsing of
 * good and bad lines (signs, spaces, overflowing uids, relative or empty homes, missing
 * fields, NULs, over-long lines, homes longer than the buffer), and the file side: a FIFO
 * must not block, a directory or a missing file gives nothing, and only the first MiB is read.
 * Then the env: HOME kept when given, added otherwise ("/" for an unknown uid).
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

#include "agent_internal.h"

static char out[PATH_MAX_HOME];

static int parse(const char *text, uint32_t uid)
{
	out[0] = '\0';
	return passwd_home_parse(text, strlen(text), uid, out, sizeof(out));
}

static void test_good_lines(void **state)
{
	static const char file[] = "root:x:0:0:root:/root:/bin/sh\n"
				   "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
				   "user:x:1000:1000:A User,,,:/home/user:/bin/sh\n"
				   "short:x:7:7::/short\n"
				   "dup:x:1000:1000::/second:/bin/sh\n"
				   "last:x:4294967295:0::/max:/bin/sh";

	(void)state;
	assert_int_equal(parse(file, 0), 0);
	assert_string_equal(out, "/root");
	assert_int_equal(parse(file, 1000), 0);
	assert_string_equal(out, "/home/user"); /* the first line for a uid wins */
	assert_int_equal(parse(file, 7), 0);
	assert_string_equal(out, "/short"); /* no shell field */
	assert_int_equal(parse(file, 4294967295u), 0);
	assert_string_equal(out, "/max"); /* no newline at the end */
	assert_int_equal(parse(file, 2), -ENOENT);
	assert_int_equal(parse("", 0), -ENOENT);
}

static void test_bad_lines(void **state)
{
	static const char *bad[] = {
		"a:x:+5:0::/h:/bin/sh",
		"a:x: 5:0::/h:/bin/sh",
		"a:x:5 :0::/h:/bin/sh",
		"a:x:5x:0::/h:/bin/sh",
		"a:x::0::/h:/bin/sh",
		"a:x:4294967301:0::/h:/bin/sh",
		"a:x:5:0::h:/bin/sh",
		"a:x:5:0:::/bin/sh",
		"a:x:5:0:/h",
		"a:x:5",
		"::::::",
		":x:5:0::",
		"a:x:0005x:0::/h",
	};
	char text[4096 + 64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i], 5);

		if (r == 0)
			fail_msg("line %zu accepted: %s -> %s", i, bad[i], out);
	}
	/* "#" is no comment, just a name: its uid counts. */
	assert_int_equal(parse("#a:x:5:0::/c:/bin/sh", 5), 0);
	/* A NUL in a line: that line is skipped, the next one is used. */
	static const char nul[] = "a:x:5:0::/h\0ome:/bin/sh\nb:x:5:0::/ok:/bin/sh\n";

	assert_int_equal(passwd_home_parse(nul, sizeof(nul) - 1, 5, out, sizeof(out)), 0);
	assert_string_equal(out, "/ok");
	/* A line over 4096 bytes is skipped whole, even with a matching uid in front. */
	memset(text, 'x', sizeof(text));
	memcpy(text, "a:x:5:0::/", 10);
	memcpy(text + sizeof(text) - 40, ":/bin/sh\nb:x:5:0::/next:/bin/sh\n", 32);
	assert_int_equal(passwd_home_parse(text, sizeof(text) - 8, 5, out, sizeof(out)), 0);
	assert_string_equal(out, "/next");
	/* A home longer than the caller's buffer is refused, not truncated. */
	char small[4];

	assert_int_equal(passwd_home_parse("a:x:5:0::/long:/bin/sh", 22, 5, small, sizeof(small)),
			 -ENOENT);
}

static void test_files(void **state)
{
	char dir[] = "/tmp/test-agent-passwd-XXXXXX", path[128];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(passwd_home(path, 0, out, sizeof(out)), -ENOENT); /* and did not block */
	unlink(path);
	assert_int_equal(passwd_home(dir, 0, out, sizeof(out)), -ENOENT);
	assert_int_equal(passwd_home(path, 0, out, sizeof(out)), -ENOENT); /* gone */
	/* Past the first MiB: not read. Within it: found. */
	snprintf(path, sizeof(path), "%s/passwd", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("in:x:1:1::/early:/bin/sh\n", f);
	for (int i = 0; i < (1 << 20) / 64 + 10; i++)
		fprintf(f, "filler%06d:x:%d:100:%030d:/f:/bin/sh\n", i, 100000 + i, 0);
	fputs("late:x:2:2::/late:/bin/sh\n", f);
	fclose(f);
	assert_int_equal(passwd_home(path, 1, out, sizeof(out)), 0);
	assert_string_equal(out, "/early");
	assert_int_equal(passwd_home(path, 2, out, sizeof(out)), -ENOENT);
	unlink(path);
	rmdir(dir);
}

static void test_env(void **state)
{
	char *with[] = { "PATH=/bin", "HOME=/mine", NULL }, *without[] = { "PATH=/bin", NULL };
	char **env;

	(void)state;
	assert_ptr_equal(passwd_env_with_home(with, 0), with);
	/* This host's /etc/passwd has no such uid: HOME=/ as runc. */
	env = passwd_env_with_home(without, 3999999999u);
	assert_ptr_not_equal(env, without);
	assert_string_equal(env[0], "PATH=/bin");
	assert_string_equal(env[1], "HOME=/");
	assert_null(env[2]);
	free(env[1]);
	free(env);
	env = passwd_env_with_home(NULL, 3999999999u);
	assert_string_equal(env[0], "HOME=/");
	assert_null(env[1]);
	free(env[0]);
	free(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_lines),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
