/*
 * vmm/sandbox.c: which directories the jail binds (a directory itself, a socket's
 * directory, a socket not created yet, never "/"), closing inherited descriptors, and in
 * forked children what sandbox_apply() leaves: no capabilities, no_new_privs, no core
 * dumps, and as root the jail itself (the host's files gone, the bound directory there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cap-ng.h>
#include <cmocka.h>

#include "sandbox.h"

static char dir[64];

static int setup(void **state)
{
	char path[128];
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_sandbox.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/sub/file", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_binds(void **state)
{
	struct sandbox_config cfg = { 0 };
	struct error err = { 0 };
	char path[128], want[128];
	unsigned int i;

	(void)state;
	snprintf(want, sizeof(want), "%s/sub", dir);
	snprintf(path, sizeof(path), "%s/sub/file", dir);
	assert_int_equal(sandbox_add_bind(&cfg, path, &err), 0); /* a file: its directory */
	assert_int_equal(cfg.nr_binds, 1);
	assert_string_equal(cfg.binds[0], want);
	snprintf(path, sizeof(path), "%s/sub/qmp.sock", dir); /* not created yet */
	assert_int_equal(sandbox_add_bind(&cfg, path, &err), 0);
	assert_int_equal(cfg.nr_binds, 1); /* the same directory once */
	assert_int_equal(sandbox_add_dir(&cfg, dir, &err), 0);
	assert_int_equal(cfg.nr_binds, 2);
	assert_string_equal(cfg.binds[1], dir);
	assert_int_equal(sandbox_add_bind(&cfg, NULL, &err), 0);
	assert_int_equal(cfg.nr_binds, 2);
	assert_true(sandbox_add_bind(&cfg, "/qmp.sock", &err) < 0);
	assert_non_null(strstr(err.msg, "the jail cannot bind the whole host"));
	memset(&err, 0, sizeof(err)); /* the first error set is the one kept */
	assert_true(sandbox_add_bind(&cfg, "/nonexistent/dir/x.sock", &err) < 0);
	assert_non_null(strstr(err.msg, "cannot resolve /nonexistent/dir/x.sock"));
	snprintf(path, sizeof(path), "%s/sub/file", dir);
	memset(&err, 0, sizeof(err));
	assert_int_equal(sandbox_add_dir(&cfg, path, &err), -ENOTDIR);
	assert_non_null(strstr(err.msg, "is not a directory"));
	for (i = 0; i < SANDBOX_MAX_BINDS; i++) {
		snprintf(path, sizeof(path), "%s/d%u", dir, i);
		assert_int_equal(mkdir(path, 0755), 0);
		if (cfg.nr_binds < SANDBOX_MAX_BINDS)
			assert_int_equal(sandbox_add_dir(&cfg, path, &err), 0);
		else
			assert_int_equal(sandbox_add_dir(&cfg, path, &err), -E2BIG);
	}
	for (i = 0; i < cfg.nr_binds; i++)
		free((char *)cfg.binds[i]);
}

/* Run fn in a child; its exit status (or 100 + signal). */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static int child_close_inherited(void)
{
	int a = open("/dev/null", O_RDONLY), b = dup(a);

	if (a < 3 || b < 3)
		return 10;
	sandbox_close_inherited();
	if (fcntl(a, F_GETFD) != -1 || fcntl(b, F_GETFD) != -1)
		return 11; /* still open */
	if (fcntl(0, F_GETFD) < 0 && fcntl(1, F_GETFD) < 0 && fcntl(2, F_GETFD) < 0)
		return 12; /* 0, 1, 2 must stay */
	return 0;
}

static void test_close_inherited(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_close_inherited), 0);
}

static int child_apply(void)
{
	struct sandbox_config cfg = { 0 };
	struct error err = { 0 };
	struct rlimit core;

	if (sandbox_apply(&cfg, &err) < 0)
		return 20;
	capng_get_caps_process();
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE)
		return 21;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 22;
	if (getrlimit(RLIMIT_CORE, &core) < 0 || core.rlim_cur || core.rlim_max)
		return 23;
	if (geteuid() == 0 && prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0)
		return 24; /* root held CAP_SETPCAP: the bounding set is empty too */
	return 0;
}

static void test_apply(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_apply), 0);
}

static int child_jail(void)
{
	struct sandbox_config cfg = { 0 };
	struct error err = { 0 };
	char jail[128], bound[128], file[160];
	struct stat st;

	snprintf(jail, sizeof(jail), "%s/jail", dir);
	snprintf(bound, sizeof(bound), "%s/sub", dir);
	snprintf(file, sizeof(file), "%s/sub/file", dir);
	if (mkdir(jail, 0755) < 0 || sandbox_add_dir(&cfg, bound, &err) < 0)
		return 30;
	cfg.jail_dir = jail;
	cfg.runas = true;
	cfg.uid = 65534;
	cfg.gid = 65534;
	if (sandbox_apply(&cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 31;
	}
	if (stat("/etc/passwd", &st) == 0 || stat("/usr", &st) == 0)
		return 32; /* the host is visible */
	if (stat(file, &st) < 0)
		return 33; /* the bound directory is not */
	if (getuid() != 65534 || getgid() != 65534)
		return 34;
	if (mkdir("/new", 0755) == 0)
		return 35; /* the root is read-only */
	return 0;
}

static void test_jail(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* namespaces and pivot_root need CAP_SYS_ADMIN */
	assert_int_equal(in_child(child_jail), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_binds, setup, teardown),
		cmocka_unit_test(test_close_inherited),
		cmocka_unit_test(test_apply),
		cmocka_unit_test_setup_teardown(test_jail, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
