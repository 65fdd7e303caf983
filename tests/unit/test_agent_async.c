/*
 * The agent's asynchronous set-up (agent_proc.c): CREATE's child reports on a pipe that is
 * part of the epoll loop, so while one container's set-up is stalled (here in a test hook that
 * blocks on a FIFO until the test writes to it), the agent keeps serving: PING on another
 * connection, a whole other container's CREATE, START, output and exit, and the requests on
 * the stalled container itself (START, EXEC, WAIT refused while it is set up; DELETE FORCE
 * ends the set-up, and CREATE's reply is then an error; FREEZE and a CREATE joining it by
 * "container:" are EBUSY). A host that goes away during the
 * set-up leaves a container that another host can still start.
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
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent.h"
#include "agent_client.h"
#include "test_agent_harness.h"

#define STALL_ID "slow"

static char fifo_path[256];

/* In CREATE's child: the container STALL_ID waits until the test writes to the FIFO. */
static void stall_hook(const char *container_id)
{
	char go;
	int fd;

	if (strcmp(container_id, STALL_ID))
		return;
	fd = open(fifo_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, &go, 1) != 1)
		_exit(126);
	close(fd);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct creator {
	struct harness h; /* its own connection */
	const char *process;
	int result;
	atomic_bool done;
};

static void *create_thread(void *arg)
{
	struct creator *cr = arg;

	cr->result = create(&cr->h, STALL_ID, 0, cr->process);
	atomic_store(&cr->done, true);
	return NULL;
}

static void creator_start(struct harness *h, struct creator *cr, const char *process)
{
	memset(cr, 0, sizeof(*cr));
	cr->h = *h;
	cr->process = process;
	host_connect(&cr->h);
}

/* Let the stalled child go: wait until it opened the FIFO (ENXIO before), then write. */
static void release(void)
{
	int64_t end = now_ms() + TIMEOUT_MS;
	int fd;

	while ((fd = open(fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		assert_int_equal(errno, ENXIO);
		assert_true(now_ms() < end);
		usleep(10000);
	}
	assert_int_equal(write(fd, "g", 1), 1);
	close(fd);
}

static int async_setup(void **state)
{
	snprintf(fifo_path, sizeof(fifo_path), "/tmp/test-agent-stall-%d", (int)getpid());
	unlink(fifo_path);
	assert_int_equal(mkfifo(fifo_path, 0600), 0);
	harness_setup_hook = stall_hook;
	return harness_setup(state);
}

static int async_teardown(void **state)
{
	int r = harness_teardown(state);

	harness_setup_hook = NULL;
	unlink(fifo_path);
	return r;
}

static void test_serves_during_setup(void **state)
{
	struct harness *h = *state;
	struct agent_exec ex = { STALL_ID, "e1", 0, NULL };
	struct agent_msg ev;
	struct creator cr;
	pthread_t t;
	uint32_t pid;
	char slow[256], fast[256];
	int64_t t0;

	snprintf(slow, sizeof(slow), SH, "exit 3");
	snprintf(fast, sizeof(fast), SH, "echo fast; exit 7");
	ex.process = fast;
	creator_start(h, &cr, slow);
	assert_int_equal(pthread_create(&t, NULL, create_thread, &cr), 0);

	/* The stall is certain: the child cannot get past the FIFO before release(). */
	host_connect(h);
	t0 = now_ms();
	assert_int_equal(agent_client_ping(&h->c), 0);
	assert_true(now_ms() - t0 < 2000);

	/* A whole other container, start to exit, with its output. */
	int out = stream_open(h, "fast", "", AGENT_STREAM_STDOUT);
	char *text;

	assert_int_equal(create(h, "fast", OUT, fast), 0);
	assert_int_equal(agent_client_start(&h->c, "fast"), 0);
	text = read_all(out, NULL);
	assert_string_equal(text, "fast\n");
	free(text);
	assert_int_equal(wait_status(h, "fast", ""), 7);

	/* The stalled one: visible, but not startable, joinable or waitable yet. */
	assert_int_equal(agent_client_start(&h->c, STALL_ID), -EBUSY);
	assert_int_equal(agent_client_exec(&h->c, &ex, &pid), -EBUSY);
	assert_int_equal(agent_client_wait(&h->c, STALL_ID, "", 1000, &ev), -ENOENT);
	assert_int_equal(create(h, STALL_ID, 0, slow), -EEXIST);
	assert_int_equal(agent_client_delete(&h->c, STALL_ID, 0), -EBUSY);
	/* Nor frozen (1.3), nor joined by "container:" (its namespaces are not ready). */
	if (test_cgroup_root[0]) {
		assert_int_equal(agent_client_freeze(&h->c, STALL_ID, true), -EBUSY);
		assert_non_null(strstr(h->c.err, "being set up"));
	}
	assert_int_equal(create_ns(h, "member", 0, fast,
				   "[{\"type\": \"mount\"}, {\"type\": \"uts\", \"path\": "
				   "\"container:" STALL_ID "\"}]"),
			 -EBUSY);
	assert_non_null(strstr(h->c.err, "linux.namespaces[1].path: container:" STALL_ID
					 ": it is being set up"));
	assert_false(atomic_load(&cr.done));

	release();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(cr.result, 0);
	agent_client_destroy(&cr.h.c);
	assert_int_equal(agent_client_start(&h->c, STALL_ID), 0);
	assert_int_equal(wait_status(h, STALL_ID, ""), 3);
}

/* DELETE FORCE during the set-up kills the child: CREATE fails, nothing is left behind. */
static void test_delete_during_setup(void **state)
{
	struct harness *h = *state;
	struct agent_msg req = { .type = AGENT_LIST_EXITS }, reply;
	struct creator cr;
	pthread_t t;
	char slow[256];

	snprintf(slow, sizeof(slow), SH, "exit 3");
	creator_start(h, &cr, slow);
	assert_int_equal(pthread_create(&t, NULL, create_thread, &cr), 0);
	host_connect(h);
	/* Wait until the child is stalled in the hook (it has opened the FIFO). */
	int64_t end = now_ms() + TIMEOUT_MS;
	int fd;

	while ((fd = open(fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		assert_true(now_ms() < end);
		usleep(10000);
	}
	assert_int_equal(agent_client_delete(&h->c, STALL_ID, AGENT_DELETE_FORCE), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	close(fd);
	assert_int_equal(cr.result, -ECHILD);
	assert_non_null(strstr(cr.h.c.err, "died before it was ready"));
	agent_client_destroy(&cr.h.c);
	/* No record, no container: the id can be used again (now without a stall). */
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
	assert_int_equal(reply.u.exits.exits.n, 0);
	agent_msg_clear(&reply);
	assert_int_equal(agent_client_start(&h->c, STALL_ID), -ENOENT);
}

/* The host that sent CREATE goes away: the set-up finishes, another host starts it. */
static void test_host_gone_during_setup(void **state)
{
	struct harness *h = *state;
	struct creator cr;
	pthread_t t;
	char slow[256];

	snprintf(slow, sizeof(slow), SH, "exit 5");
	creator_start(h, &cr, slow);
	assert_int_equal(pthread_create(&t, NULL, create_thread, &cr), 0);
	host_connect(h);
	/* Close the creator's connection under it: its CREATE then fails on the client side. */
	int64_t end = now_ms() + TIMEOUT_MS;
	int fd;

	while ((fd = open(fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		assert_true(now_ms() < end);
		usleep(10000);
	}
	shutdown(agent_client_fd(&cr.h.c), SHUT_RDWR);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(cr.result < 0);
	agent_client_destroy(&cr.h.c);
	assert_int_equal(agent_client_ping(&h->c), 0);
	assert_int_equal(write(fd, "g", 1), 1);
	close(fd);
	/* START answers EBUSY until the set-up is done, then starts it. */
	end = now_ms() + TIMEOUT_MS;
	int r;

	while ((r = agent_client_start(&h->c, STALL_ID)) == -EBUSY && now_ms() < end)
		usleep(10000);
	assert_int_equal(r, 0);
	assert_int_equal(wait_status(h, STALL_ID, ""), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_serves_during_setup, async_setup,
						async_teardown),
		cmocka_unit_test_setup_teardown(test_delete_during_setup, async_setup,
						async_teardown),
		cmocka_unit_test_setup_teardown(test_host_gone_during_setup, async_setup,
						async_teardown),
	};

	if (geteuid() != 0) {
		print_message("needs root (namespaces, mounts): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, rootfs_setup, rootfs_teardown);
}
