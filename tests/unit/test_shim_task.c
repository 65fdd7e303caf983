/*
 * Unit tests for the shim's host-side task set-up (shim/task_io.c): containerd's stdio FIFOs
 * (stdin reaches the reader and ends only when the shim's kept write end closes, as CloseIO
 * does; stdout opens before any reader exists; empty paths are /dev/null; a missing FIFO is
 * an error naming the stream) and the rootfs mounts of CreateTaskRequest (a read-only rbind
 * shows the source and refuses writes; a bad mount names rootfs[i] and leaves nothing
 * mounted). The mount tests need root (skipped otherwise). The table of tasks
 * (task_table.c) over a real ttrpc connection, with child processes standing in for the
 * monitor of a pod's sandbox and the relay of a member: Connect answers each task's pid,
 * every method naming an unknown id is NotFound "container X: not found", a Wait kept for a
 * member is answered with the member's status when its process exits and the sandbox goes on,
 * Create of a taken id is AlreadyExists, Shutdown is ignored while a task is left and stops
 * the server once none is; a full table (TASK_TABLE_MAX) refuses Create with
 * ResourceExhausted, and stopping the service kills and reaps every task's process.
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
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "exec_process.h"
#include "task_internal.h"
#include "task_service.h"
#include "ttrpc/ttrpc.pb-c.h"

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

/* ---- the table of tasks, over a real ttrpc connection ---- */

struct server {
	struct ttrpc_server *srv;
	struct task_service *ts;
	pthread_t thread;
	char address[160];
	int result;
};

static void *serve_thread(void *arg)
{
	struct server *s = arg;

	s->result = ttrpc_server_run(s->srv);
	return NULL;
}

static void server_start(struct server *s, const char *name)
{
	struct error err = { 0 };
	int fd;

	snprintf(s->address, sizeof(s->address), "unix://%s/%s", tmpdir, name);
	assert_int_equal(ttrpc_server_new(NULL, &s->srv), 0);
	assert_int_equal(ttrpc_listen(s->address, &fd, &err), 0);
	assert_int_equal(ttrpc_server_add_listener(s->srv, fd), 0);
	assert_int_equal(task_service_register(s->srv, "sb", NULL, &s->ts), 0);
	assert_int_equal(task_service_set_root(s->ts, tmpdir), 0);
}

/* A stand-in for a monitor or a relay: our child, exits with the byte written to *ctl. */
static pid_t fake_init(int *ctl)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned char code = 0;

		close(p[1]);
		if (read(p[0], &code, 1) < 0)
			_exit(99);
		_exit(code);
	}
	close(p[0]);
	*ctl = p[1];
	return pid;
}

static void fake_exit(int ctl, unsigned char code)
{
	assert_int_equal(write(ctl, &code, 1), 1);
	close(ctl);
}

/* What task_create leaves in the table, with pid standing in for the monitor or relay. */
static void fake_task(struct task_service *ts, const char *id, const char *sandbox, pid_t pid)
{
	struct shim_task *t = task_new(ts);

	assert_non_null(t);
	t->id = strdup(id);
	t->bundle = strdup(tmpdir);
	t->sandbox = sandbox ? strdup(sandbox) : NULL;
	t->stdin_path = strdup("");
	t->stdout_path = strdup("");
	t->stderr_path = strdup("");
	t->pid = pid;
	t->started = true;
	assert_int_equal(task_adopt(ts, t), 0);
}

static void call(struct ttrpc_client *c, const char *method, const ProtobufCMessage *req,
		 struct ttrpc_status *st, uint8_t **resp, size_t *len)
{
	uint8_t buf[512];
	size_t n = req ? protobuf_c_message_pack(req, buf) : 0;

	*resp = NULL;
	assert_int_equal(
		ttrpc_client_call(c, TASK_SERVICE_NAME, method, buf, n, 10000, st, resp, len), 0);
}

static uint32_t connect_pid(struct ttrpc_client *c, const char *id)
{
	Containerd__Task__V2__ConnectRequest q = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
	Containerd__Task__V2__ConnectResponse *r;
	struct ttrpc_status st;
	uint8_t *resp;
	size_t len;
	uint32_t pid;

	q.id = (char *)id;
	call(c, "Connect", &q.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_OK);
	r = containerd__task__v2__connect_response__unpack(NULL, len, resp);
	assert_non_null(r);
	assert_int_equal(r->shim_pid, getpid());
	pid = r->task_pid;
	containerd__task__v2__connect_response__free_unpacked(r, NULL);
	free(resp);
	return pid;
}

/* Wait on a connection of its own (the answer is kept until the exit). */
struct waiter {
	const char *address, *id;
	pthread_t thread;
	volatile int done;
	int code;
	uint32_t exit_status;
};

static void *wait_thread(void *arg)
{
	Containerd__Task__V2__WaitRequest q = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
	Containerd__Task__V2__WaitResponse *r;
	struct waiter *w = arg;
	struct ttrpc_client *c;
	struct error err = { 0 };
	struct ttrpc_status st;
	uint8_t buf[128], *resp = NULL;
	size_t len = 0, n;

	q.id = (char *)w->id;
	n = protobuf_c_message_pack(&q.base, buf);
	w->code = -1;
	if (ttrpc_client_connect(w->address, &c, &err) == 0) {
		if (ttrpc_client_call(c, TASK_SERVICE_NAME, "Wait", buf, n, 20000, &st, &resp,
				      &len) == 0) {
			w->code = (int)st.code;
			r = containerd__task__v2__wait_response__unpack(NULL, len, resp);
			w->exit_status = r ? r->exit_status : 9999;
			if (r)
				containerd__task__v2__wait_response__free_unpacked(r, NULL);
			free(resp);
		}
		ttrpc_client_destroy(c);
	}
	w->done = 1;
	return NULL;
}

static void expect_code(struct ttrpc_client *c, const char *method, const ProtobufCMessage *req,
			int code, const char *message)
{
	struct ttrpc_status st;
	uint8_t *resp;
	size_t len;

	call(c, method, req, &st, &resp, &len);
	assert_int_equal(st.code, code);
	if (message)
		assert_string_equal(st.message, message);
	free(resp);
}

static void test_task_table(void **state)
{
	Containerd__Task__V2__KillRequest kill_q = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
	Containerd__Task__V2__WaitRequest wait_q = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
	Containerd__Task__V2__DeleteRequest del_q = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
	Containerd__Task__V2__ShutdownRequest shut_q = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	Containerd__Task__V2__CreateTaskRequest create_q =
		CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
	Containerd__Task__V2__DeleteResponse *dr;
	struct waiter w = { 0 };
	struct ttrpc_client *c;
	struct error err = { 0 };
	struct ttrpc_status st;
	struct server s;
	int sb_ctl, m1_ctl;
	pid_t sb, m1;
	uint8_t *resp;
	size_t len;

	(void)state;
	server_start(&s, "table.sock");
	sb = fake_init(&sb_ctl);
	m1 = fake_init(&m1_ctl);
	fake_task(s.ts, "sb", NULL, sb);
	fake_task(s.ts, "m1", "sb", m1);
	assert_int_equal(pthread_create(&s.thread, NULL, serve_thread, &s), 0);
	assert_int_equal(ttrpc_client_connect(s.address, &c, &err), 0);

	/* Connect: the shim's pid and the asked task's; 0 for an id the shim does not serve */
	assert_int_equal(connect_pid(c, "sb"), sb);
	assert_int_equal(connect_pid(c, "m1"), m1);
	assert_int_equal(connect_pid(c, "nope"), 0);
	/* every method with an unknown id: NotFound, as runc's shim */
	kill_q.id = "nope";
	kill_q.signal = 9;
	expect_code(c, "Kill", &kill_q.base, TTRPC_NOT_FOUND, "container nope: not found");
	kill_q.exec_id = "e1";
	expect_code(c, "Kill", &kill_q.base, TTRPC_NOT_FOUND, "container nope: not found");
	wait_q.id = "nope";
	expect_code(c, "Wait", &wait_q.base, TTRPC_NOT_FOUND, "container nope: not found");
	expect_code(c, "State", &wait_q.base, TTRPC_NOT_FOUND, "container nope: not found");
	expect_code(c, "Pids", &wait_q.base, TTRPC_NOT_FOUND, "container nope: not found");
	expect_code(c, "Pause", &wait_q.base, TTRPC_NOT_FOUND, "container nope: not found");
	/* a taken id: AlreadyExists, before the bundle is looked at */
	create_q.id = "m1";
	create_q.bundle = "/nonexistent-bundle";
	expect_code(c, "Create", &create_q.base, TTRPC_ALREADY_EXISTS,
		    "container m1: already exists");

	/* the member's Wait is kept until its process exits; the sandbox goes on */
	w.address = s.address;
	w.id = "m1";
	assert_int_equal(pthread_create(&w.thread, NULL, wait_thread, &w), 0);
	usleep(200000);
	assert_false(w.done);
	fake_exit(m1_ctl, 3);
	pthread_join(w.thread, NULL);
	assert_int_equal(w.code, TTRPC_OK);
	assert_int_equal(w.exit_status, 3);
	assert_int_equal(kill(sb, 0), 0);
	kill_q.id = "m1";
	kill_q.exec_id = "";
	expect_code(c, "Kill", &kill_q.base, TTRPC_NOT_FOUND, "task m1: process already finished");

	/* Delete the member: its status; it is gone, the sandbox is not */
	del_q.id = "m1";
	call(c, "Delete", &del_q.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_OK);
	dr = containerd__task__v2__delete_response__unpack(NULL, len, resp);
	assert_non_null(dr);
	assert_int_equal(dr->exit_status, 3);
	assert_int_equal(dr->pid, m1);
	containerd__task__v2__delete_response__free_unpacked(dr, NULL);
	free(resp);
	assert_int_equal(connect_pid(c, "m1"), 0);
	wait_q.id = "m1";
	expect_code(c, "Wait", &wait_q.base, TTRPC_NOT_FOUND, "container m1: not found");
	assert_int_equal(connect_pid(c, "sb"), sb);

	/* Shutdown with a task left (even asked by the deleted member's id): the shim stays */
	shut_q.id = "m1";
	expect_code(c, "Shutdown", &shut_q.base, TTRPC_OK, NULL);
	assert_false(task_service_shutdown_requested(s.ts));
	assert_int_equal(connect_pid(c, "sb"), sb);

	/* the sandbox is running: Delete refused; once it exited, deleted; then Shutdown exits */
	del_q.id = "sb";
	expect_code(c, "Delete", &del_q.base, TTRPC_FAILED_PRECONDITION,
		    "task sb: must be stopped before deletion: running");
	fake_exit(sb_ctl, 0);
	wait_q.id = "sb";
	expect_code(c, "Wait", &wait_q.base, TTRPC_OK, NULL);
	expect_code(c, "Delete", &del_q.base, TTRPC_OK, NULL);
	shut_q.id = "sb";
	expect_code(c, "Shutdown", &shut_q.base, TTRPC_OK, NULL);
	pthread_join(s.thread, NULL);
	assert_int_equal(s.result, 0);
	assert_true(task_service_shutdown_requested(s.ts));
	/* both processes were reaped by the shim */
	assert_int_equal(waitpid(sb, NULL, WNOHANG), -1);
	assert_int_equal(waitpid(m1, NULL, WNOHANG), -1);
	ttrpc_client_destroy(c);
	ttrpc_server_destroy(s.srv);
	task_service_destroy(s.ts);
}

static void test_task_table_limit(void **state)
{
	Containerd__Task__V2__CreateTaskRequest create_q =
		CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
	Containerd__Task__V2__ShutdownRequest shut_q = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	pid_t pids[TASK_TABLE_MAX];
	int ctl[TASK_TABLE_MAX];
	struct shim_task *extra;
	struct ttrpc_client *c;
	struct error err = { 0 };
	struct server s;
	char id[32];

	(void)state;
	server_start(&s, "limit.sock");
	for (int i = 0; i < TASK_TABLE_MAX; i++) {
		pids[i] = fake_init(&ctl[i]);
		snprintf(id, sizeof(id), "t%d", i);
		fake_task(s.ts, id, i ? "t0" : NULL, pids[i]);
	}
	/* the table itself: full, and a taken id */
	extra = task_new(s.ts);
	assert_non_null(extra);
	extra->id = strdup("one-more");
	assert_int_equal(task_table_insert(s.ts, extra), -ENOSPC);
	free(extra->id);
	extra->id = strdup("t5");
	assert_int_equal(task_table_insert(s.ts, extra), -EEXIST);
	task_free(extra);
	assert_string_equal(task_table_find(s.ts, "t63")->id, "t63");
	assert_string_equal(task_vm_owner(s.ts, task_table_find(s.ts, "t9"))->id, "t0");
	assert_null(task_table_find(s.ts, "t64"));

	assert_int_equal(pthread_create(&s.thread, NULL, serve_thread, &s), 0);
	assert_int_equal(ttrpc_client_connect(s.address, &c, &err), 0);
	create_q.id = "t64";
	create_q.bundle = "/nonexistent-bundle";
	expect_code(c, "Create", &create_q.base, TTRPC_RESOURCE_EXHAUSTED,
		    "container t64: this shim already serves 64 containers");
	expect_code(c, "Shutdown", &shut_q.base, TTRPC_OK, NULL);
	assert_false(task_service_shutdown_requested(s.ts));
	ttrpc_client_destroy(c);
	ttrpc_server_stop(s.srv);
	pthread_join(s.thread, NULL);

	/* the shim stops (SIGTERM): every task's process killed and reaped, the table empty */
	task_service_stop_tasks(s.ts);
	for (int i = 0; i < TASK_TABLE_MAX; i++) {
		assert_int_equal(waitpid(pids[i], NULL, WNOHANG), -1);
		assert_int_equal(errno, ECHILD);
		close(ctl[i]);
	}
	ttrpc_server_destroy(s.srv);
	task_service_destroy(s.ts);
}

/* ---- calls off the loop (task_worker.c), with a fake libstratus ---- */

/* The fake: Create forks a stand-in monitor; Start blocks while fake.hold; a log of calls. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool hold;
	int starts_entered;
	char log[64];
	pid_t pid[4];
	int ctl[4];
	int n;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void fake_log(char c)
{
	size_t n = strlen(fake.log);

	if (n + 1 < sizeof(fake.log))
		fake.log[n] = c;
}

static int fake_create(struct container_create_opts *o, struct error *err)
{
	(void)err;
	pthread_mutex_lock(&fake.lock);
	fake_log('C');
	o->monitor_pid = fake.pid[fake.n] = fake_init(&fake.ctl[fake.n]);
	fake.n++;
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static int fake_start(const char *root, const char *id, struct error *err)
{
	(void)root;
	(void)id;
	(void)err;
	pthread_mutex_lock(&fake.lock);
	fake_log('s');
	fake.starts_entered++;
	pthread_cond_broadcast(&fake.cond);
	while (fake.hold)
		pthread_cond_wait(&fake.cond, &fake.lock);
	fake_log('S');
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static int fake_kill(const char *root, const char *id, int signal, bool all, struct error *err)
{
	(void)root;
	(void)id;
	(void)signal;
	(void)all;
	(void)err;
	pthread_mutex_lock(&fake.lock);
	fake_log('K');
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static int fake_delete(const char *root, const char *id, bool force, struct error *err)
{
	(void)root;
	(void)id;
	(void)force;
	(void)err;
	pthread_mutex_lock(&fake.lock);
	fake_log('D');
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static void fake_hold(bool hold)
{
	pthread_mutex_lock(&fake.lock);
	fake.hold = hold;
	pthread_cond_broadcast(&fake.cond);
	pthread_mutex_unlock(&fake.lock);
}

/* Until n Starts are inside the fake (a worker runs them), at most 10 s. */
static void fake_wait_starts(int n)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&fake.lock);
	while (fake.starts_entered < n)
		assert_int_equal(pthread_cond_timedwait(&fake.cond, &fake.lock, &until), 0);
	pthread_mutex_unlock(&fake.lock);
}

static void fake_log_expect(const char *want)
{
	pthread_mutex_lock(&fake.lock);
	assert_string_equal(fake.log, want);
	pthread_mutex_unlock(&fake.lock);
}

/* A raw connection: requests sent on chosen stream ids, frames read one at a time. */
static void raw_send(int fd, uint32_t stream, const char *method, const ProtobufCMessage *req)
{
	uint8_t buf[512], *r = NULL, *frame = NULL;
	size_t n = protobuf_c_message_pack(req, buf), rlen, flen;

	assert_int_equal(ttrpc_request_pack(TASK_SERVICE_NAME, method, buf, n, 0, &r, &rlen), 0);
	assert_int_equal(ttrpc_frame_build(stream, TTRPC_TYPE_REQUEST, 0, r, rlen, &frame, &flen),
			 0);
	assert_int_equal(write(fd, frame, flen), (ssize_t)flen);
	free(r);
	free(frame);
}

static void read_full(int fd, uint8_t *p, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (len) {
		ssize_t n;

		assert_int_equal(poll(&pfd, 1, 10000), 1);
		n = read(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

/* The next response frame: its stream id and status code. */
static void raw_expect(int fd, uint32_t stream, int code)
{
	struct ttrpc_header h;
	uint8_t hdr[TTRPC_HEADER_LEN], body[4096];
	Ttrpc__Response *resp;

	read_full(fd, hdr, sizeof(hdr));
	ttrpc_header_decode(hdr, &h);
	assert_int_equal(h.stream_id, stream);
	assert_int_equal(h.type, TTRPC_TYPE_RESPONSE);
	assert_true(h.length <= sizeof(body));
	read_full(fd, body, h.length);
	resp = ttrpc__response__unpack(NULL, h.length, body);
	assert_non_null(resp);
	assert_int_equal(resp->status ? resp->status->code : 0, code);
	ttrpc__response__free_unpacked(resp, NULL);
}

static int raw_connect(const char *address)
{
	struct sockaddr_un addr;
	unsigned int len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(ttrpc_sockaddr(address, &addr, &len), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, len), 0);
	return fd;
}

/* A call on a connection of its own, in a thread: done is set when answered. */
struct bg_call {
	const char *address, *method;
	const ProtobufCMessage *req;
	pthread_t thread;
	atomic_int done;
	int code;
};

static void *bg_call_thread(void *arg)
{
	struct bg_call *b = arg;
	struct ttrpc_client *c;
	struct error err = { 0 };
	struct ttrpc_status st;
	uint8_t buf[512], *resp = NULL;
	size_t len = 0, n = protobuf_c_message_pack(b->req, buf);

	b->code = -1;
	if (ttrpc_client_connect(b->address, &c, &err) == 0) {
		int r = ttrpc_client_call(c, TASK_SERVICE_NAME, b->method, buf, n, 20000, &st,
					  &resp, &len);

		b->code = r == 0 ? st.code : r;
		free(resp);
		ttrpc_client_destroy(c);
	}
	atomic_store(&b->done, 1);
	return NULL;
}

static void create_task(struct ttrpc_client *c, const char *id, const char *bundle)
{
	Containerd__Task__V2__CreateTaskRequest q = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;

	q.id = (char *)id;
	q.bundle = (char *)bundle;
	expect_code(c, "Create", &q.base, TTRPC_OK, NULL);
}

static void test_task_workers(void **state)
{
	Containerd__Task__V2__StartRequest start_q = CONTAINERD__TASK__V2__START_REQUEST__INIT;
	Containerd__Task__V2__StateRequest state_q = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
	Containerd__Task__V2__KillRequest kill_q = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
	Containerd__Task__V2__DeleteRequest del_q = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
	Containerd__Task__V2__StateResponse *sr;
	struct task_lib lib = task_lib_stratus;
	struct bg_call del = { 0 };
	struct ttrpc_client *c;
	struct error err = { 0 };
	struct ttrpc_status st;
	char bundle[128], path[160];
	struct server s;
	uint8_t *resp;
	size_t len;
	int raw, fd;

	(void)state;
	/* a pod member of a sandbox this shim does not serve: no agent connection of its own */
	snprintf(bundle, sizeof(bundle), "%s/workers-bundle", tmpdir);
	assert_int_equal(mkdir(bundle, 0700), 0);
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	dprintf(fd, "{\"annotations\": {\"io.kubernetes.cri.sandbox-id\": \"elsewhere\"}}");
	close(fd);
	lib.create = fake_create;
	lib.start = fake_start;
	lib.kill = fake_kill;
	lib.delete = fake_delete;
	server_start(&s, "workers.sock");
	task_service_set_lib(s.ts, &lib);
	assert_int_equal(pthread_create(&s.thread, NULL, serve_thread, &s), 0);
	assert_int_equal(ttrpc_client_connect(s.address, &c, &err), 0);
	create_task(c, "c1", bundle);
	assert_int_equal(connect_pid(c, "c1"), fake.pid[0]);

	/* Start blocks in a worker: the loop answers everything else meanwhile, on the right
	 * stream of the same connection and on another one */
	fake_hold(true);
	raw = raw_connect(s.address);
	start_q.id = "c1";
	raw_send(raw, 1, "Start", &start_q.base);
	fake_wait_starts(1);
	state_q.id = "c1";
	raw_send(raw, 3, "State", &state_q.base);
	raw_expect(raw, 3, TTRPC_OK);
	call(c, "State", &state_q.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_OK);
	sr = containerd__task__v2__state_response__unpack(NULL, len, resp);
	assert_non_null(sr);
	assert_int_equal(sr->pid, fake.pid[0]);
	assert_int_not_equal(sr->status, CONTAINERD__V1__TYPES__STATUS__STOPPED);
	containerd__task__v2__state_response__free_unpacked(sr, NULL);
	free(resp);
	/* a Kill during the Start runs at once; a second Start is refused */
	kill_q.id = "c1";
	kill_q.signal = 15;
	expect_code(c, "Kill", &kill_q.base, TTRPC_OK, NULL);
	expect_code(c, "Start", &start_q.base, TTRPC_FAILED_PRECONDITION,
		    "task c1: already started");
	/* the init exits during its Start; Delete waits for the Start */
	fake_exit(fake.ctl[0], 7);
	del.address = s.address;
	del.method = "Delete";
	del_q.id = "c1";
	del.req = &del_q.base;
	assert_int_equal(pthread_create(&del.thread, NULL, bg_call_thread, &del), 0);
	usleep(300000);
	assert_false(atomic_load(&del.done));
	fake_log_expect("CsK");
	fake_hold(false);
	/* Start answered OK (the exit is reported after it), then the Delete ran */
	raw_expect(raw, 1, TTRPC_OK);
	pthread_join(del.thread, NULL);
	assert_int_equal(del.code, TTRPC_OK);
	fake_log_expect("CsKSD");
	assert_int_equal(connect_pid(c, "c1"), 0);
	assert_int_equal(waitpid(fake.pid[0], NULL, WNOHANG), -1);

	/* a client that leaves while its call is in a worker: the answer is dropped */
	create_task(c, "c2", bundle);
	fake_hold(true);
	start_q.id = "c2";
	raw_send(raw, 5, "Start", &start_q.base);
	fake_wait_starts(2);
	close(raw);
	usleep(100000);
	fake_hold(false);
	assert_int_equal(connect_pid(c, "c2"), fake.pid[1]);
	state_q.id = "c2";
	expect_code(c, "State", &state_q.base, TTRPC_OK, NULL);

	/* the shim stops while a Start is in a worker: stop_tasks waits for it, then reaps */
	fake_hold(true);
	raw = raw_connect(s.address);
	start_q.id = "c3";
	create_task(c, "c3", bundle);
	raw_send(raw, 1, "Start", &start_q.base);
	fake_wait_starts(3);
	ttrpc_server_stop(s.srv);
	pthread_join(s.thread, NULL);
	fake_hold(false);
	task_service_stop_tasks(s.ts);
	raw_expect(raw, 1, TTRPC_OK); /* queued for it before the server went */
	for (int i = 0; i < fake.n; i++) {
		assert_int_equal(waitpid(fake.pid[i], NULL, WNOHANG), -1);
		if (i)
			close(fake.ctl[i]);
	}
	close(raw);
	ttrpc_client_destroy(c);
	ttrpc_server_destroy(s.srv);
	task_service_destroy(s.ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdio_fifos),	   cmocka_unit_test(test_rootfs_mounts),
		cmocka_unit_test(test_exec_process_check), cmocka_unit_test(test_task_table),
		cmocka_unit_test(test_task_table_limit),   cmocka_unit_test(test_task_workers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
