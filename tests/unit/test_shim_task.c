/*
 * Unit tests for the shim's host-side task set-up (shim/task_io.c): containerd's stdio FIFOs
 * (stdin reaches the reader and ends only when the shim's kept write end closes, as CloseIO
 * does; stdout opens before any reader exists; empty paths are /dev/null; a missing FIFO is
 * an error naming the stream) and the rootfs mounts of CreateTaskRequest (a read-only rbind
 * shows the source and refuses writes; a bad mount names rootfs[i] and leaves nothing
 * mounted). The mount tests need root (skipped otherwise).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "exec_process.h"
#include "task_internal.h"

static char tmpdir[64];

static int group_setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test_shim_task.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void close_all(int fds[3], int keep)
{
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	if (keep >= 0)
		close(keep);
}

static void test_stdio_fifos(void **state)
{
	char in[128], out[128], buf[16];
	struct error err = { 0 };
	int fds[3], keep, w, r;
	struct pollfd pfd;

	(void)state;
	snprintf(in, sizeof(in), "%s/stdin", tmpdir);
	snprintf(out, sizeof(out), "%s/stdout", tmpdir);
	assert_int_equal(mkfifo(in, 0600), 0);
	assert_int_equal(mkfifo(out, 0600), 0);
	/* No reader of stdout and no writer of stdin yet: opening never blocks. */
	assert_int_equal(task_stdio_open(in, out, "", fds, &keep, &err), 0);
	assert_true(keep >= 0);
	assert_int_equal(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0); /* the monitor's reads block */
	/* containerd's writer comes and goes: the reader sees the data, no EOF (we keep ours). */
	w = open(in, O_WRONLY | O_NONBLOCK);
	assert_true(w >= 0);
	assert_int_equal(write(w, "abc", 3), 3);
	close(w);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 3);
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 50), 0);
	/* CloseIO: our end closes, the reader sees EOF. */
	close(keep);
	keep = -1;
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 0);
	/* stdout: what the monitor writes, containerd reads. */
	r = open(out, O_RDONLY | O_NONBLOCK);
	assert_true(r >= 0);
	assert_int_equal(write(fds[1], "hi", 2), 2);
	assert_int_equal(read(r, buf, sizeof(buf)), 2);
	close(r);
	/* stderr "": /dev/null. */
	assert_int_equal(write(fds[2], "x", 1), 1);
	close_all(fds, keep);

	/* No stdin at all: /dev/null, no kept end. */
	assert_int_equal(task_stdio_open("", out, "", fds, &keep, &err), 0);
	assert_int_equal(keep, -1);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 0);
	close_all(fds, keep);

	/* A FIFO that is not there: the stream is named, nothing stays open. */
	snprintf(out, sizeof(out), "%s/missing/stdout", tmpdir);
	assert_int_equal(task_stdio_open(in, out, "", fds, &keep, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "stdout: cannot open"));
	assert_int_equal(fds[0], -1);
	assert_int_equal(keep, -1);
	err = (struct error){ 0 }; /* the first failure is kept */
	assert_int_equal(task_stdio_open(out, "", "", fds, &keep, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "stdin: cannot open"));
}

static bool mounted(const char *path)
{
	char line[4096], needle[300];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	bool found = false;

	assert_non_null(f);
	snprintf(needle, sizeof(needle), " %s ", path);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static void test_rootfs_mounts(void **state)
{
	char src[128], target[128], file[200], *bind_opts[] = { "rbind", "ro" },
					       *bad_opts[] = { "lowerdir=/nonexistent-lower" };
	Containerd__Types__Mount bind = CONTAINERD__TYPES__MOUNT__INIT,
				 bad = CONTAINERD__TYPES__MOUNT__INIT;
	Containerd__Types__Mount *list[2] = { &bind, &bad };
	struct error err = { 0 };
	int fd;

	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	snprintf(src, sizeof(src), "%s/layer", tmpdir);
	snprintf(target, sizeof(target), "%s/rootfs", tmpdir);
	assert_int_equal(mkdir(src, 0755), 0);
	snprintf(file, sizeof(file), "%s/hello", src);
	fd = open(file, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	bind.type = "bind";
	bind.source = src;
	bind.n_options = 2;
	bind.options = bind_opts;
	/* Nothing to mount: nothing happens (the bundle's rootfs is used as it is). */
	assert_int_equal(task_rootfs_mount(list, 0, target, &err), 0);
	assert_int_equal(task_rootfs_mount(list, 1, target, &err), 0);
	assert_true(mounted(target));
	snprintf(file, sizeof(file), "%s/hello", target);
	assert_int_equal(access(file, F_OK), 0);
	snprintf(file, sizeof(file), "%s/new", target);
	assert_int_equal(open(file, O_WRONLY | O_CREAT, 0644), -1);
	assert_int_equal(errno, EROFS);
	task_rootfs_unmount(target);
	assert_false(mounted(target));

	/* The second mount fails: named, and the first one is undone. */
	bad.type = "overlay";
	bad.source = "overlay";
	bad.n_options = 1;
	bad.options = bad_opts;
	assert_true(task_rootfs_mount(list, 2, target, &err) < 0);
	assert_non_null(strstr(err.msg, "rootfs[1]: cannot mount overlay (overlay)"));
	assert_false(mounted(target));
	bad.source = "";
	err = (struct error){ 0 };
	assert_int_equal(task_rootfs_mount(&list[1], 1, target, &err), -EINVAL);
	assert_string_equal(err.msg, "rootfs[0].source: empty");
}

/* Exec's process spec (JSON inside the Any): config.json's process checks, named fields. */
static void check_process(const char *json, int want, const char *want_msg, bool want_tty)
{
	struct error err = { 0 };
	bool terminal = !want_tty;

	assert_int_equal(exec_process_check("exec", json, strlen(json), &terminal, &err), want);
	if (want_msg && !strstr(err.msg, want_msg))
		fail_msg("message \"%s\" does not contain \"%s\"", err.msg, want_msg);
	if (!want)
		assert_int_equal(terminal, want_tty);
}

static void test_exec_process_check(void **state)
{
	struct error err = { 0 };
	bool terminal;

	(void)state;
	check_process("{\"args\":[\"sh\",\"-c\",\"exit 5\"],\"cwd\":\"/\","
		      "\"env\":[\"PATH=/bin\"],\"user\":{\"uid\":0,\"gid\":0}}",
		      0, NULL, false);
	check_process("{\"terminal\":true,\"args\":[\"tty\"],\"cwd\":\"/"
		      "\",\"user\":{\"uid\":0,\"gid\":0}}",
		      0, NULL, true);
	check_process("{\"args\":[],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0}}", -EINVAL,
		      "exec: process.args: must be a non-empty array of strings", false);
	check_process("{\"args\":[\"x\"],\"user\":{\"uid\":0,\"gid\":0}}", -EINVAL,
		      "exec: process.cwd", false);
	check_process("{\"args\":[\"x\"],\"cwd\":\"/\"}", -EINVAL,
		      "exec: process.user: is required", false);
	check_process("{\"args\":[\"x\"],\"cwd\":\"rel\",\"user\":{\"uid\":0,\"gid\":0}}", -EINVAL,
		      "exec: process.cwd: must be an absolute path", false);
	check_process("{\"args\":[\"x\"],\"cwd\":\"/\",\"user\":{\"uid\":0,\"gid\":0},"
		      "\"env\":[\"NOEQUALS\"]}",
		      -EINVAL, "exec: process.env[0]", false);
	check_process("{\"args\":[\"x\"],\"args\":[\"y\"],\"cwd\":\"/\"}", -EINVAL,
		      "exec: process: duplicate key \"args\"", false);
	check_process("[1,2]", -EINVAL, "exec: the process is not a JSON object", false);
	check_process("{\"args\":", -EINVAL, "exec: the process is not valid JSON", false);
	/* nesting deep enough to overflow yajl's recursive free is refused before parsing */
	{
		size_t n = 100000;
		char *deep = malloc(n + 1);

		assert_non_null(deep);
		memset(deep, '[', n);
		deep[n] = '\0';
		assert_true(exec_process_check("exec", deep, n, &terminal, &err) < 0);
		assert_non_null(strstr(err.msg, "exec: "));
		assert_null(strstr(err.msg, "config.json"));
		free(deep);
	}
	/* a NUL inside, or nothing at all */
	error_clear(&err);
	assert_int_equal(exec_process_check("exec", "{}\0{}", 5, &terminal, &err), -EINVAL);
	assert_string_equal(err.msg, "exec: the process is not JSON text");
	error_clear(&err);
	assert_int_equal(exec_process_check("exec", "", 0, &terminal, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdio_fifos),
		cmocka_unit_test(test_rootfs_mounts),
		cmocka_unit_test(test_exec_process_check),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
