/*
 * Unit tests for the shim around ttrpc (shim/): the Go-style command line, the socket address
 * containerd 1.6 expects (checked against a sha256 computed by hand), the bundle's address
 * file and pod annotation, the Task service over a real ttrpc connection (Connect, Create
 * refused without a state root, for a missing bundle, an empty id or a checkpoint, every task
 * method's NotFound before Create (with and without an exec id), Checkpoint Unimplemented, a
 * malformed request, Shutdown stopping the server), the event
 * publisher over both transports (a fake publish binary; a fake containerd Events service
 * that fails twice before accepting, to exercise retry), and the binary itself: start prints
 * an address that serves Task, a pod container joins its sandbox's shim, Shutdown makes the
 * server exit and remove its socket, delete prints a DeleteResponse.
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
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "containerd/events/task.pb-c.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "publish.h"
#include "shim.h"
#include "task_service.h"
#include "ttrpc.h"

static char tmpdir[64];

static int group_setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test_ttrpc_shim.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	setenv("STRATUS_SHIM_SOCKET_DIR", tmpdir, 1);
	signal(SIGPIPE, SIG_IGN);
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

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_flags(void **state)
{
	struct shim_options o;
	struct error err = { 0 };
	char *ok[] = { "shim",
		       "-namespace",
		       "k8s.io",
		       "--address=/run/c.sock",
		       "-publish-binary",
		       "/usr/bin/containerd",
		       "-id",
		       "abc",
		       "-debug",
		       "-bundle",
		       "/b",
		       "start",
		       NULL };
	char *del[] = { "shim", "-namespace", "n", "-id", "x", "-debug=false", "delete", NULL };
	char *unknown[] = { "shim", "-namespace", "n", "-id", "x", "-addres", "a", "start", NULL };
	char *noval[] = { "shim", "-namespace", NULL };
	char *badact[] = { "shim", "-namespace", "n", "-id", "x", "-address", "a", "run", NULL };
	char *noid[] = { "shim", "-namespace", "n", "-address", "a", "start", NULL };
	char *slash[] = { "shim", "-namespace", "n", "-id", "../x", "-address", "a", NULL };
	char *badbool[] = { "shim", "-debug=maybe", NULL };
	char *version[] = { "shim", "-v", NULL };

	(void)state;
	assert_int_equal(shim_flags_parse(12, ok, &o, &err), 0);
	assert_string_equal(o.namespace, "k8s.io");
	assert_string_equal(o.address, "/run/c.sock");
	assert_string_equal(o.publish_binary, "/usr/bin/containerd");
	assert_string_equal(o.id, "abc");
	assert_string_equal(o.bundle, "/b");
	assert_true(o.debug);
	assert_int_equal(o.action, SHIM_ACTION_START);

	assert_int_equal(shim_flags_parse(7, del, &o, &err), 0);
	assert_int_equal(o.action, SHIM_ACTION_DELETE);
	assert_false(o.debug);
	assert_string_equal(o.publish_binary, "containerd");

	assert_int_equal(shim_flags_parse(8, unknown, &o, &err), -EINVAL);
	assert_string_equal(err.msg, "flag provided but not defined: -addres");
	error_clear(&err);
	assert_int_equal(shim_flags_parse(2, noval, &o, &err), -EINVAL);
	assert_string_equal(err.msg, "flag needs an argument: -namespace");
	error_clear(&err);
	assert_int_equal(shim_flags_parse(8, badact, &o, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown action \"run\": expected start or delete");
	error_clear(&err);
	assert_int_equal(shim_flags_parse(6, noid, &o, &err), -EINVAL);
	assert_string_equal(err.msg, "-id: required (the container id)");
	error_clear(&err);
	assert_int_equal(shim_flags_parse(7, slash, &o, &err), -EINVAL);
	assert_string_equal(err.msg, "-id: \"../x\" is not a valid container id");
	error_clear(&err);
	assert_int_equal(shim_flags_parse(2, badbool, &o, &err), -EINVAL);
	assert_string_equal(err.msg, "invalid boolean value \"maybe\" for -debug");
	error_clear(&err);
	assert_int_equal(shim_flags_parse(2, version, &o, &err), 0);
	assert_true(o.version);
}

static void test_socket_address(void **state)
{
	char addr[256], want[256];

	(void)state;
	/* sha256("/run/containerd/containerd.sock/k8s.io/c1"), computed with sha256sum. */
	snprintf(want, sizeof(want), "unix://%s/%s", tmpdir,
		 "ccd9e484aa63698a22b33f8964a2eb3d2a5c6e843ccac78fda28f084794782cd");
	assert_int_equal(shim_socket_address("/run/containerd/containerd.sock", "k8s.io", "c1",
					     addr, sizeof(addr)),
			 0);
	assert_string_equal(addr, want);
	assert_int_equal(shim_socket_address("/a", "b", "c", addr, 20), -ENAMETOOLONG);
	unsetenv("STRATUS_SHIM_SOCKET_DIR");
	assert_int_equal(shim_socket_address("/a", "b", "c", addr, sizeof(addr)), 0);
	assert_int_equal(strncmp(addr, "unix:///run/containerd/s/", 25), 0);
	assert_int_equal(strlen(addr), 25 + 64);
	setenv("STRATUS_SHIM_SOCKET_DIR", tmpdir, 1);
}

static void test_bundle_files(void **state)
{
	char dir[128], path[192], out[256];
	struct error err = { 0 };

	(void)state;
	snprintf(dir, sizeof(dir), "%s/bundle", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(shim_address_read(dir, out, sizeof(out), &err), -ENOENT);
	error_clear(&err);
	assert_int_equal(shim_address_write(dir, "unix:///x/y", &err), 0);
	assert_int_equal(shim_address_read(dir, out, sizeof(out), &err), 0);
	assert_string_equal(out, "unix:///x/y");

	snprintf(path, sizeof(path), "%s/config.json", dir);
	assert_int_equal(shim_sandbox_id(dir, out, sizeof(out), &err), -ENOENT);
	assert_non_null(strstr(err.msg, "config.json"));
	error_clear(&err);
	write_file(path, "{\"ociVersion\":\"1.0.2\"}");
	assert_int_equal(shim_sandbox_id(dir, out, sizeof(out), &err), 0);
	assert_string_equal(out, "");
	write_file(path, "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"pod1\"}}");
	assert_int_equal(shim_sandbox_id(dir, out, sizeof(out), &err), 0);
	assert_string_equal(out, "pod1");
	write_file(path, "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":7}}");
	assert_int_equal(shim_sandbox_id(dir, out, sizeof(out), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "annotations.\"io.kubernetes.cri.sandbox-id\": must be a "
					"string"));
	error_clear(&err);
	write_file(path, "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"../etc\"}}");
	assert_int_equal(shim_sandbox_id(dir, out, sizeof(out), &err), -EINVAL);
	error_clear(&err);
	write_file(path, "{\"annotations\":[1]}");
	assert_int_equal(shim_sandbox_id(dir, out, sizeof(out), &err), -EINVAL);
	error_clear(&err);
	write_file(path, "{not json");
	assert_int_equal(shim_sandbox_id(dir, out, sizeof(out), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not valid JSON"));
}

/* ---- Task service over a real ttrpc connection ---- */

struct server {
	struct ttrpc_server *srv;
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
}

static void server_run(struct server *s)
{
	assert_int_equal(pthread_create(&s->thread, NULL, serve_thread, s), 0);
}

static void server_join(struct server *s)
{
	ttrpc_server_stop(s->srv);
	pthread_join(s->thread, NULL);
	assert_int_equal(s->result, 0);
	ttrpc_server_destroy(s->srv);
}

static void call(struct ttrpc_client *c, const char *method, const ProtobufCMessage *req,
		 struct ttrpc_status *st, uint8_t **resp, size_t *len)
{
	uint8_t buf[256];
	size_t n = req ? protobuf_c_message_pack(req, buf) : 0;

	assert_int_equal(
		ttrpc_client_call(c, TASK_SERVICE_NAME, method, buf, n, 10000, st, resp, len), 0);
}

static void test_task_service(void **state)
{
	Containerd__Task__V2__ConnectRequest creq = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
	Containerd__Task__V2__CreateTaskRequest create =
		CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
	Containerd__Task__V2__ShutdownRequest sreq = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	/* WaitRequest's {id = 1} decodes as each of these methods' request. */
	Containerd__Task__V2__WaitRequest wreq = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
	static const char *const no_task[] = { "Start",	 "Wait",  "State",    "Kill",  "Delete",
					       "Pids",	 "Pause", "Resume",   "Stats", "CloseIO",
					       "Update", "Exec",  "ResizePty" };
	static const char *const with_exec[] = { "Start",  "Wait", "State",	"Kill",
						 "Delete", "Exec", "ResizePty", "CloseIO" };
	Containerd__Task__V2__ConnectResponse *cresp;
	struct server s;
	struct task_service *ts;
	struct ttrpc_client *c;
	struct error err = { 0 };
	struct ttrpc_status st;
	uint8_t *resp;
	size_t len;

	(void)state;
	server_start(&s, "task.sock");
	assert_int_equal(task_service_register(s.srv, "c1", NULL, &ts), 0);
	server_run(&s);
	assert_int_equal(ttrpc_client_connect(s.address, &c, &err), 0);

	creq.id = "c1";
	call(c, "Connect", &creq.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_OK);
	cresp = containerd__task__v2__connect_response__unpack(NULL, len, resp);
	assert_non_null(cresp);
	assert_int_equal(cresp->shim_pid, getpid());
	assert_int_equal(cresp->task_pid, 0);
	assert_string_equal(cresp->version, SHIM_VERSION);
	containerd__task__v2__connect_response__free_unpacked(cresp, NULL);
	free(resp);

	create.id = "c1";
	create.bundle = "/nonexistent-bundle";
	/* Without a state root the container methods refuse to run. */
	call(c, "Create", &create.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_FAILED_PRECONDITION);
	assert_non_null(strstr(st.message, "Task/Create: the shim has no state root"));
	assert_int_equal(task_service_set_root(ts, tmpdir), 0);
	/* A bundle that does not exist: refused before anything is made, naming it. */
	call(c, "Create", &create.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_NOT_FOUND);
	assert_non_null(strstr(st.message, "/nonexistent-bundle"));
	call(c, "Connect", &creq.base, &st, &resp, &len);
	cresp = containerd__task__v2__connect_response__unpack(NULL, len, resp);
	assert_non_null(cresp);
	assert_int_equal(cresp->task_pid, 0); /* the failed Create left no task */
	containerd__task__v2__connect_response__free_unpacked(cresp, NULL);
	free(resp);
	create.checkpoint = "/cp";
	call(c, "Create", &create.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_UNIMPLEMENTED);
	assert_non_null(strstr(st.message, "checkpoint:"));
	create.checkpoint = "";
	create.id = "";
	call(c, "Create", &create.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_INVALID_ARGUMENT);
	assert_string_equal(st.message, "id: empty");
	/* No task yet: every task method answers NotFound, naming the task. */
	wreq.id = "c1";
	for (size_t i = 0; i < sizeof(no_task) / sizeof(no_task[0]); i++) {
		call(c, no_task[i], &wreq.base, &st, &resp, &len);
		assert_int_equal(st.code, TTRPC_NOT_FOUND);
		assert_string_equal(st.message, "container c1: not found");
	}
	/* ... and so does every method given an exec id (field 2 in each of these) */
	wreq.exec_id = "e1";
	for (size_t i = 0; i < sizeof(with_exec) / sizeof(with_exec[0]); i++) {
		call(c, with_exec[i], &wreq.base, &st, &resp, &len);
		assert_int_equal(st.code, TTRPC_NOT_FOUND);
		assert_string_equal(st.message, "container c1: not found");
	}
	wreq.exec_id = "";
	call(c, "Checkpoint", NULL, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_UNIMPLEMENTED);
	/* Not a method of the service. */
	call(c, "Frobnicate", NULL, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_UNIMPLEMENTED);
	assert_string_equal(st.message, "method Frobnicate");
	/* A request that does not decode (field 1 claims 100 bytes, 1 follows). */
	assert_int_equal(ttrpc_client_call(c, TASK_SERVICE_NAME, "Kill", "\x0a\x64x", 3, 10000, &st,
					   &resp, &len),
			 0);
	assert_int_equal(st.code, TTRPC_INTERNAL);
	assert_non_null(strstr(st.message, "containerd.task.v2.KillRequest"));

	sreq.id = "c1";
	call(c, "Shutdown", &sreq.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_OK);
	assert_int_equal(len, 0);
	pthread_join(s.thread, NULL);
	assert_true(task_service_shutdown_requested(ts));
	ttrpc_client_destroy(c);
	ttrpc_server_destroy(s.srv);
	task_service_destroy(ts);
}

/* ---- publisher ---- */

static void exit_event(Containerd__Events__TaskExit *ev, Google__Protobuf__Timestamp *ts)
{
	ts->seconds = 1700000000;
	ts->nanos = 5;
	ev->container_id = "c1";
	ev->id = "c1";
	ev->pid = 42;
	ev->exit_status = 3;
	ev->exited_at = ts;
}

static void check_exit_any(const uint8_t *data, size_t len)
{
	Google__Protobuf__Any *any = google__protobuf__any__unpack(NULL, len, data);
	Containerd__Events__TaskExit *ev;

	assert_non_null(any);
	assert_string_equal(any->type_url, "containerd.events.TaskExit");
	ev = containerd__events__task_exit__unpack(NULL, any->value.len, any->value.data);
	assert_non_null(ev);
	assert_string_equal(ev->container_id, "c1");
	assert_int_equal(ev->pid, 42);
	assert_int_equal(ev->exit_status, 3);
	assert_int_equal(ev->exited_at->seconds, 1700000000);
	containerd__events__task_exit__free_unpacked(ev, NULL);
	google__protobuf__any__free_unpacked(any, NULL);
}

static void wait_counts(struct shim_publisher *p, unsigned long sent, unsigned long dropped)
{
	unsigned long s = 0, d = 0;

	for (int i = 0; i < 3000; i++) {
		shim_publisher_counts(p, &s, &d);
		if (s == sent && d == dropped)
			return;
		usleep(10000);
	}
	assert_int_equal(s, sent);
	assert_int_equal(d, dropped);
}

static void test_publish_exec(void **state)
{
	Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_publisher_config cfg = { .namespace = "k8s.io",
					     .address = "/run/c.sock",
					     .retry_base_ms = 10,
					     .max_attempts = 2 };
	struct shim_publisher *p;
	char script[192], args_path[192], data_path[192], text[512], body[4096];
	FILE *f;
	size_t n;

	(void)state;
	snprintf(script, sizeof(script), "%s/publish.sh", tmpdir);
	snprintf(args_path, sizeof(args_path), "%s/publish.args", tmpdir);
	snprintf(data_path, sizeof(data_path), "%s/publish.data", tmpdir);
	snprintf(text, sizeof(text), "#!/bin/sh\necho \"$@\" > %s\ncat > %s\n", args_path,
		 data_path);
	write_file(script, text);
	assert_int_equal(chmod(script, 0755), 0);
	cfg.publish_binary = script;
	exit_event(&ev, &ts);
	assert_int_equal(shim_publisher_new(&cfg, &p), 0);
	assert_int_equal(shim_publisher_publish(p, "/tasks/exit", &ev.base), 0);
	wait_counts(p, 1, 0);

	f = fopen(args_path, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	assert_string_equal(
		text, "--address /run/c.sock publish --topic /tasks/exit --namespace k8s.io\n");
	f = fopen(data_path, "r");
	assert_non_null(f);
	n = fread(body, 1, sizeof(body), f);
	fclose(f);
	check_exit_any((uint8_t *)body, n);
	shim_publisher_destroy(p, 1000);

	/* A publish binary that fails: retried max_attempts times, then dropped. */
	cfg.publish_binary = "/bin/false";
	assert_int_equal(shim_publisher_new(&cfg, &p), 0);
	assert_int_equal(shim_publisher_publish(p, "/tasks/exit", &ev.base), 0);
	wait_counts(p, 0, 1);
	shim_publisher_destroy(p, 1000);
}

struct fake_events {
	int calls;
	int fail_first;
	char topic[64], ns[64];
	uint8_t any[512];
	size_t any_len;
};

static void forward(struct ttrpc_call *c, const uint8_t *payload, size_t len, void *opaque)
{
	struct fake_events *fe = opaque;
	Containerd__Services__Events__Ttrpc__V1__ForwardRequest *req;

	if (++fe->calls <= fe->fail_first) {
		ttrpc_call_fail(c, TTRPC_UNAVAILABLE, "not yet");
		return;
	}
	req = containerd__services__events__ttrpc__v1__forward_request__unpack(NULL, len, payload);
	assert_non_null(req);
	assert_non_null(req->envelope);
	snprintf(fe->topic, sizeof(fe->topic), "%s", req->envelope->topic);
	snprintf(fe->ns, sizeof(fe->ns), "%s", req->envelope->namespace_);
	assert_non_null(req->envelope->timestamp);
	assert_true(req->envelope->timestamp->seconds > 1600000000);
	fe->any_len = google__protobuf__any__pack(req->envelope->event, fe->any);
	containerd__services__events__ttrpc__v1__forward_request__free_unpacked(req, NULL);
	ttrpc_call_reply(c, NULL, 0);
}

static void test_publish_ttrpc(void **state)
{
	Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct shim_publisher_config cfg = { .namespace = "default",
					     .publish_binary = "/bin/false",
					     .retry_base_ms = 10,
					     .queue_max = 1 };
	struct fake_events fe = { .fail_first = 2 };
	struct shim_publisher *p;
	struct server s;

	(void)state;
	server_start(&s, "events.sock");
	assert_int_equal(ttrpc_server_register(s.srv, "containerd.services.events.ttrpc.v1.Events",
					       "Forward", forward, &fe),
			 0);
	server_run(&s);
	cfg.ttrpc_address = s.address;
	exit_event(&ev, &ts);
	assert_int_equal(shim_publisher_new(&cfg, &p), 0);
	assert_int_equal(shim_publisher_publish(p, "/tasks/exit", &ev.base), 0);
	wait_counts(p, 1, 0);
	assert_int_equal(fe.calls, 3); /* two refusals, then accepted */
	assert_string_equal(fe.topic, "/tasks/exit");
	assert_string_equal(fe.ns, "default");
	check_exit_any(fe.any, fe.any_len);
	shim_publisher_destroy(p, 1000);
	server_join(&s);

	/* Nobody listening: every attempt fails; queue bound 1 refuses a second event. */
	cfg.max_attempts = 3;
	cfg.retry_base_ms = 200;
	assert_int_equal(shim_publisher_new(&cfg, &p), 0);
	assert_int_equal(shim_publisher_publish(p, "/tasks/exit", &ev.base), 0);
	usleep(50000); /* the thread took the first one: the queue is empty again */
	assert_int_equal(shim_publisher_publish(p, "/tasks/exit", &ev.base), 0);
	assert_int_equal(shim_publisher_publish(p, "/tasks/exit", &ev.base), -ENOSPC);
	shim_publisher_destroy(p, 0);
	assert_int_equal(shim_publisher_new(&cfg, &p), 0);
	shim_publisher_destroy(p, 0);
}

/* ---- the binary ---- */

static size_t last_out_len;

static int run_shim(const char *bundle, char *const extra[], char *out, size_t out_len)
{
	int last = 0;
	bool combined;

	char *argv[16] = { SHIM_BINARY,	     "-namespace",	"k8s.io",   "-address",
			   "/run/test.sock", "-publish-binary", "/bin/true" };
	int pipefd[2], status, i = 7;
	size_t got = 0;
	pid_t pid;

	for (int j = 0; extra[j]; j++, last = j)
		argv[i++] = extra[j];
	combined = !strcmp(extra[last - 1], "start");
	argv[i] = NULL;
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Like containerd 1.6's CombinedOutput(): stderr lands in the address too, so a
		 * successful start must write nothing there. */
		int null_fd = open("/dev/null", O_RDONLY);

		dup2(pipefd[1], 1);
		if (combined)
			dup2(pipefd[1], 2);
		/* no runtime options on stdin, as containerd without any */
		if (null_fd < 0 || dup2(null_fd, 0) < 0)
			_exit(125);
		close(pipefd[0]);
		close(pipefd[1]);
		if (chdir(bundle) < 0)
			_exit(126);
		execv(SHIM_BINARY, argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		ssize_t n = read(pipefd[0], out + got, out_len - 1 - got);

		if (n <= 0)
			break;
		got += n;
	}
	out[got] = '\0';
	last_out_len = got;
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_binary(void **state)
{
	Containerd__Task__V2__ShutdownRequest sreq = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	Containerd__Task__V2__DeleteResponse *dresp;
	char pod[192], ctr[192], other[192], path[256], out[512], address[512];
	char *start_pod[] = { "-id", "pod", "-debug", "start", NULL };
	char *start_ctr[] = { "-id", "ctr", "start", NULL };
	char *start_other[] = { "-id", "other", "start", NULL };
	char *del[] = { "-id", "pod", "delete", NULL };
	struct ttrpc_client *c;
	struct error err = { 0 };
	struct ttrpc_status st;
	struct stat sb;
	uint8_t *resp;
	size_t len, loglen = 0;
	char logbuf[1024] = "";
	int log_fd;

	(void)state;
	snprintf(pod, sizeof(pod), "%s/k8s.io/pod", tmpdir);
	snprintf(ctr, sizeof(ctr), "%s/k8s.io/ctr", tmpdir);
	snprintf(other, sizeof(other), "%s/k8s.io/other", tmpdir);
	snprintf(path, sizeof(path), "%s/k8s.io", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mkdir(pod, 0700), 0);
	assert_int_equal(mkdir(ctr, 0700), 0);
	assert_int_equal(mkdir(other, 0700), 0);
	snprintf(path, sizeof(path), "%s/config.json", pod);
	write_file(path, "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"pod\"}}");
	snprintf(path, sizeof(path), "%s/config.json", ctr);
	write_file(path, "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"pod\"}}");
	snprintf(path, sizeof(path), "%s/config.json", other);
	write_file(path, "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"gone\"}}");

	/* containerd's log FIFO in the bundle, read by "containerd" (us). */
	snprintf(path, sizeof(path), "%s/log", pod);
	assert_int_equal(mkfifo(path, 0600), 0);
	log_fd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(log_fd >= 0);

	/* The sandbox starts its own shim; the address is on stdout and in the bundle. */
	assert_int_equal(run_shim(pod, start_pod, out, sizeof(out)), 0);
	assert_int_equal(strncmp(out, "unix://", 7), 0);
	assert_int_equal(shim_address_read(pod, address, sizeof(address), &err), 0);
	assert_string_equal(out, address);
	/* Starting it again finds the live shim. */
	assert_int_equal(run_shim(pod, start_pod, out, sizeof(out)), 0);
	assert_string_equal(out, address);
	/* A container of the pod joins it. */
	assert_int_equal(run_shim(ctr, start_ctr, out, sizeof(out)), 0);
	assert_string_equal(out, address);
	/* A container of a pod without a shim fails, naming the pod. */
	assert_int_equal(run_shim(other, start_other, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "pod sandbox gone has no shim"));

	assert_int_equal(ttrpc_client_connect(address, &c, &err), 0);
	/* With -debug the server said where it serves, into the log FIFO. */
	for (int i = 0; i < 3000 && !strstr(logbuf, "serving containerd.task.v2.Task"); i++) {
		ssize_t n = read(log_fd, logbuf + loglen, sizeof(logbuf) - 1 - loglen);

		if (n > 0)
			loglen += n;
		logbuf[loglen] = '\0';
		usleep(10000);
	}
	assert_non_null(strstr(logbuf, "serving containerd.task.v2.Task for k8s.io/pod"));
	close(log_fd);
	assert_int_equal(
		ttrpc_client_call(c, TASK_SERVICE_NAME, "Pids", NULL, 0, 10000, &st, &resp, &len),
		0);
	assert_int_equal(st.code, TTRPC_NOT_FOUND);
	sreq.id = "pod";
	call(c, "Shutdown", &sreq.base, &st, &resp, &len);
	assert_int_equal(st.code, TTRPC_OK);
	ttrpc_client_destroy(c);
	/* The server exits and removes its socket. */
	for (int i = 0; i < 3000 && stat(address + 7, &sb) == 0; i++)
		usleep(10000);
	assert_int_equal(stat(address + 7, &sb), -1);

	/* delete: a DeleteResponse on stdout, killed-by-SIGKILL status, a recent timestamp. */
	assert_int_equal(run_shim(pod, del, out, sizeof(out)), 0);
	dresp = containerd__task__v2__delete_response__unpack(NULL, last_out_len, (uint8_t *)out);
	assert_non_null(dresp);
	assert_int_equal(dresp->exit_status, 137);
	assert_non_null(dresp->exited_at);
	assert_true(dresp->exited_at->seconds > 1600000000);
	containerd__task__v2__delete_response__free_unpacked(dresp, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags),	     cmocka_unit_test(test_socket_address),
		cmocka_unit_test(test_bundle_files), cmocka_unit_test(test_task_service),
		cmocka_unit_test(test_publish_exec), cmocka_unit_test(test_publish_ttrpc),
		cmocka_unit_test(test_binary),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
