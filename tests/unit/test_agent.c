/*
 * Unit tests for stratus-agent's core (agent/), run natively: the agent runs in a forked
 * child on two Unix sockets (control and stdio, standing in for its vsock ports) and the host
 * side is the real client (runtime/agent_client.h), so both ends speak through the shared
 * codec. The agent child first unshares its mount namespace and makes / private, so nothing
 * it mounts reaches the host; containers run in a rootfs made of the static busybox (rootfs
 * kind DIR), with their own namespaces. Covered: the handshake and a version mismatch, exit codes and a signal, env and cwd,
 * 10 MiB of stdout in order, stdin through cat, stderr apart, a terminal and its resize, an
 * exec with a terminal and PS's command names, an exec beside the init, SIGNAL to one and to all, an exit while no host is connected
 * (LIST_EXITS, kept until ACK_EXIT), the 500 ms exit grace, an unknown message type, and a
 * stdio connection that never attaches. The container set-up is covered in test_agent_setup.c.
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
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent.h"
#include "agent_client.h"
#include "agent_internal.h"
#include "test_agent_harness.h"

static void test_handshake(void **state)
{
	struct harness *h = *state;
	struct agent_msg req = { .type = AGENT_HELLO }, reply;

	/* Anything before HELLO: EPROTO. A different major: refused with both versions. */
	agent_client_init(&h->c, TIMEOUT_MS);
	h->c.fd = unix_connect(h->control);
	fcntl(h->c.fd, F_SETFL, O_NONBLOCK);
	req.type = AGENT_PING;
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), -EPROTO);
	req.type = AGENT_HELLO;
	req.u.hello = (struct agent_hello){ 2, 0, "test-host 2.0" };
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), -EPROTONOSUPPORT);
	assert_non_null(strstr(h->c.err, "2.0"));
	agent_client_destroy(&h->c);

	host_connect(h);
	assert_int_equal(h->c.peer.major, AGENT_PROTO_MAJOR);
	assert_non_null(strstr(h->c.peer.software, "stratus-agent"));
	assert_int_equal(agent_client_ping(&h->c), 0);
}

static void test_exit_codes(void **state)
{
	struct harness *h = *state;
	char p[512];

	host_connect(h);
	snprintf(p, sizeof(p), SH, "exit 0");
	run(h, "c0", 0, p);
	assert_int_equal(wait_status(h, "c0", ""), 0);
	snprintf(p, sizeof(p), SH, "exit 1");
	run(h, "c1", 0, p);
	assert_int_equal(wait_status(h, "c1", ""), 1);
	/* No pid namespace: a pid namespace's init cannot SIGKILL itself. */
	snprintf(p, sizeof(p), SH, "kill -9 $$");
	assert_int_equal(create_ns(h, "c9", 0, p, NS_NO_PID), 0);
	assert_int_equal(agent_client_start(&h->c, "c9"), 0);
	assert_int_equal(wait_status(h, "c9", ""), 137);
	/* A bad process object is refused with its JSON path; the agent keeps serving. */
	assert_int_equal(create(h, "bad", 0, "{\"args\": [], \"cwd\": \"/\"}"), -EINVAL);
	assert_non_null(strstr(h->c.err, "process.args"));
	assert_int_equal(agent_client_ping(&h->c), 0);
}

static void test_env_cwd(void **state)
{
	struct harness *h = *state;
	int out;
	char *s;

	host_connect(h);
	out = stream_open(h, "env", "", AGENT_STREAM_STDOUT);
	run(h, "env", OUT,
	    "{\"args\": [\"sh\", \"-c\", \"echo $FOO; pwd\"], \"env\": [\"FOO=bar baz\", "
	    "\"PATH=/usr/bin:/bin\"], \"cwd\": \"/usr/lib\"}");
	s = read_all(out, NULL);
	assert_string_equal(s, "bar baz\n/usr/lib\n");
	free(s);
	assert_int_equal(wait_status(h, "env", ""), 0);
}

static void test_stdout_10mib(void **state)
{
	struct harness *h = *state;
	const char *line = "0123456789abcdef\n";
	size_t len, total = 10u << 20;
	char p[512], *s;
	int out;

	host_connect(h);
	out = stream_open(h, "big", "", AGENT_STREAM_STDOUT);
	snprintf(p, sizeof(p), SH, "yes 0123456789abcdef | head -c 10485760");
	run(h, "big", OUT, p);
	/* Slow reader first: the agent must hold back, not buffer, then deliver everything. */
	usleep(200 * 1000);
	s = read_all(out, &len);
	assert_int_equal(len, total);
	for (size_t i = 0; i < len; i++)
		if (s[i] != line[i % 17])
			fail_msg("byte %zu differs", i);
	free(s);
	assert_int_equal(wait_status(h, "big", ""), 0);
}

struct writer {
	int fd;
	size_t len;
};

static void *write_then_close(void *arg)
{
	struct writer *w = arg;
	char buf[4096];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	for (size_t done = 0; done < w->len; done += sizeof(buf))
		if (write(w->fd, buf, sizeof(buf)) != sizeof(buf))
			return (void *)1;
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

static void test_stdin_cat(void **state)
{
	struct harness *h = *state;
	struct writer w = { .len = 2u << 20 };
	pthread_t t;
	size_t len;
	char p[256], *s;
	int out;

	host_connect(h);
	w.fd = stream_open(h, "cat", "", AGENT_STREAM_STDIN);
	out = stream_open(h, "cat", "", AGENT_STREAM_STDOUT);
	snprintf(p, sizeof(p), SH, "cat");
	run(h, "cat", IN | OUT, p);
	pthread_create(&t, NULL, write_then_close, &w);
	s = read_all(out, &len);
	pthread_join(t, NULL);
	assert_int_equal(len, w.len);
	for (size_t i = 0; i < len; i++)
		if (s[i] != (char)('a' + (i % 4096) % 26))
			fail_msg("byte %zu differs", i);
	free(s);
	close(w.fd);
	assert_int_equal(wait_status(h, "cat", ""), 0);
}

static void test_stderr_separate(void **state)
{
	struct harness *h = *state;
	char p[256], *o, *e;
	int out, err;

	host_connect(h);
	out = stream_open(h, "split", "", AGENT_STREAM_STDOUT);
	err = stream_open(h, "split", "", AGENT_STREAM_STDERR);
	snprintf(p, sizeof(p), SH, "echo out; echo err >&2; exit 3");
	run(h, "split", OUT | ERR, p);
	o = read_all(out, NULL);
	e = read_all(err, NULL);
	assert_string_equal(o, "out\n");
	assert_string_equal(e, "err\n");
	free(o);
	free(e);
	assert_int_equal(wait_status(h, "split", ""), 3);
	/* A stream named in the mask but not attached: ENOTCONN, nothing started. */
	assert_int_equal(create(h, "noattach", OUT, "{\"args\": [\"true\"], \"cwd\": \"/\"}"),
			 -ENOTCONN);
}

/* Read the pty stream until needle shows up. */
static void read_until(int fd, const char *needle, char *buf, size_t cap)
{
	size_t n = 0;

	buf[0] = '\0';
	while (!strstr(buf, needle)) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t r;

		if (poll(&pfd, 1, TIMEOUT_MS) != 1)
			fail_msg("no \"%s\" in \"%s\"", needle, buf);
		r = read(fd, buf + n, cap - 1 - n);
		assert_true(r > 0);
		n += (size_t)r;
		buf[n] = '\0';
	}
}

static void test_tty_resize(void **state)
{
	struct harness *h = *state;
	char buf[4096];
	int pty;

	host_connect(h);
	pty = stream_open(h, "tty", "", AGENT_STREAM_PTY);
	run(h, "tty", PTY,
	    "{\"terminal\": true, \"consoleSize\": {\"height\": 24, \"width\": 80}, \"args\": "
	    "[\"sh\", \"-c\", \"tty; stty size; read x; stty -F /dev/console size\"], "
	    "\"env\": [\"PATH=/usr/bin:/bin\"], \"cwd\": \"/\"}");
	/* The container's own devpts: tty resolves its stdin there, and stty works on it. */
	read_until(pty, "24 80", buf, sizeof(buf));
	assert_non_null(strstr(buf, "/dev/pts/0\r\n"));
	assert_null(strstr(buf, "not a tty"));
	assert_int_equal(agent_client_resize(&h->c, "tty", "", 50, 132), 0);
	assert_int_equal(write(pty, "\n", 1), 1);
	read_until(pty, "50 132", buf, sizeof(buf)); /* the terminal is /dev/console too */
	close(pty);
	assert_int_equal(wait_status(h, "tty", ""), 0);
	/* No terminal, no resize. */
	assert_int_equal(agent_client_resize(&h->c, "nope", "", 1, 1), -ENOENT);
}

/* PS's view as "exec_id:command" lines, sorted by exec id; NULL until it has n processes. */
static char *ps_names(struct harness *h, const char *cid, uint32_t n)
{
	struct agent_msg req = { .type = AGENT_PS }, reply;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	req.u.container.container_id = (char *)cid;
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
	if (reply.u.ps.procs.n != n) {
		agent_msg_clear(&reply);
		return NULL;
	}
	f = open_memstream(&out, &len);
	assert_non_null(f);
	for (int e = 0; e < 3; e++) { /* "", "e1", "e2": in that order */
		static const char *ids[] = { "", "e1", "e2" };

		for (uint32_t i = 0; i < n; i++)
			if (!strcmp(reply.u.ps.procs.v[i].exec_id, ids[e]))
				fprintf(f, "%s:%s\n", ids[e], reply.u.ps.procs.v[i].command);
	}
	fclose(f);
	agent_msg_clear(&reply);
	return out;
}

/*
 * EXEC with a terminal gets its pty from the container's devpts too (the init has pts/0),
 * and PS names each process by its own command: the init "sh", the exec'd "sleep"s, one of
 * them run the way busybox runs its applets, from a file of another name with argv[0] the
 * applet (comm is "busybox" there, as it reads "exe" when busybox re-executes /proc/self/exe).
 */
static void test_tty_exec_and_ps_names(void **state)
{
	struct harness *h = *state;
	char buf[4096], p[256], *names = NULL;
	int pty, epty;

	host_connect(h);
	pty = stream_open(h, "tsh", "", AGENT_STREAM_PTY);
	run(h, "tsh", PTY,
	    "{\"terminal\": true, \"args\": [\"sh\"], \"env\": [\"PATH=/usr/bin:/bin\"], "
	    "\"cwd\": \"/\"}");
	assert_int_equal(write(pty, "tty\n", 4), 4);
	read_until(pty, "/dev/pts/0\r\n", buf, sizeof(buf));
	epty = stream_open(h, "tsh", "e1", AGENT_STREAM_PTY);
	assert_int_equal(
		exec(h, "tsh", "e1", PTY,
		     "{\"terminal\": true, \"consoleSize\": {\"height\": 40, \"width\": "
		     "100}, \"args\": [\"sh\", \"-c\", \"tty; stty size; exec sleep 30\"], "
		     "\"env\": [\"PATH=/usr/bin:/bin\"], \"cwd\": \"/\"}"),
		0);
	read_until(epty, "40 100", buf, sizeof(buf));
	assert_non_null(strstr(buf, "/dev/pts/1\r\n"));
	snprintf(p, sizeof(p), SH, "exec -a sleep /bin/busybox 31");
	assert_int_equal(exec(h, "tsh", "e2", 0, p), 0);
	/* The exec'd shell execs sleep on its own time: poll until it did. */
	for (int i = 0; i < 200; i++) {
		free(names);
		names = ps_names(h, "tsh", 3);
		if (names && !strcmp(names, ":sh\ne1:sleep\ne2:sleep\n"))
			break;
		usleep(50 * 1000);
	}
	assert_non_null(names);
	assert_string_equal(names, ":sh\ne1:sleep\ne2:sleep\n");
	free(names);
	assert_int_equal(agent_client_signal(&h->c, "tsh", "", SIGKILL, AGENT_SIGNAL_ALL), 0);
	assert_int_equal(wait_status(h, "tsh", "e1"), 137);
	assert_int_equal(wait_status(h, "tsh", "e2"), 137);
	assert_int_equal(wait_status(h, "tsh", ""), 137);
	close(epty);
	close(pty);
}

static void test_exec_and_signal_one(void **state)
{
	struct harness *h = *state;
	struct agent_msg req = { .type = AGENT_PS }, reply;
	char p[256], buf[256], *s;
	int out;

	host_connect(h);
	snprintf(p, sizeof(p), SH, "exec sleep 30");
	run(h, "svc", 0, p);
	out = stream_open(h, "svc", "e1", AGENT_STREAM_STDOUT);
	snprintf(p, sizeof(p), SH, "echo from exec; exec sleep 30");
	assert_int_equal(exec(h, "svc", "e1", OUT, p), 0);
	req.u.container.container_id = "svc";
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
	assert_int_equal(reply.u.ps.procs.n, 2);
	agent_msg_clear(&reply);
	/* The output first (the shell may not have written it yet), then the signal. */
	read_until(out, "from exec\n", buf, sizeof(buf));
	assert_int_equal(agent_client_signal(&h->c, "svc", "e1", SIGTERM, 0), 0);
	s = read_all(out, NULL);
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(wait_status(h, "svc", "e1"), 128 + SIGTERM);
	/* The init still runs; now the whole container. */
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
	assert_int_equal(reply.u.ps.procs.n, 1);
	agent_msg_clear(&reply);
	assert_int_equal(agent_client_signal(&h->c, "svc", "", SIGKILL, 0), 0);
	assert_int_equal(wait_status(h, "svc", ""), 137);
	assert_int_equal(agent_client_signal(&h->c, "svc", "", SIGKILL, 0), -ESRCH);
}

static void test_signal_all(void **state)
{
	struct harness *h = *state;
	char p[256];

	host_connect(h);
	snprintf(p, sizeof(p), SH, "exec sleep 30");
	run(h, "all", 0, p);
	assert_int_equal(exec(h, "all", "e1", 0, p), 0);
	assert_int_equal(exec(h, "all", "e2", 0, p), 0);
	assert_int_equal(agent_client_signal(&h->c, "all", "", SIGKILL, AGENT_SIGNAL_ALL), 0);
	assert_int_equal(wait_status(h, "all", "e1"), 137);
	assert_int_equal(wait_status(h, "all", "e2"), 137);
	assert_int_equal(wait_status(h, "all", ""), 137);
}

static uint32_t list_exits(struct harness *h, const char *cid)
{
	struct agent_msg req = { .type = AGENT_LIST_EXITS }, reply;
	uint32_t found = 0;

	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), 0);
	for (uint32_t i = 0; i < reply.u.exits.exits.n; i++)
		if (!strcmp(reply.u.exits.exits.v[i].container_id, cid)) {
			assert_int_equal(reply.u.exits.exits.v[i].status, 7);
			found++;
		}
	agent_msg_clear(&reply);
	return found;
}

static void test_exit_while_disconnected(void **state)
{
	struct harness *h = *state;
	struct agent_msg ev;
	char p[256];

	host_connect(h);
	snprintf(p, sizeof(p), SH, "sleep 0.2; exit 7");
	run(h, "gone", 0, p);
	agent_client_destroy(&h->c);
	usleep(300 * 1000);
	host_connect(h);
	for (int i = 0; i < 100 && list_exits(h, "gone") == 0; i++)
		usleep(50 * 1000); /* a loaded machine: the exit may come a little later */
	assert_int_equal(list_exits(h, "gone"), 1);
	assert_int_equal(list_exits(h, "gone"), 1); /* kept until ACK_EXIT */
	assert_int_equal(agent_client_wait(&h->c, "gone", "", TIMEOUT_MS, &ev), 0);
	assert_int_equal(ev.u.exit.status, 7);
	agent_msg_clear(&ev);
	assert_int_equal(agent_client_ack_exit(&h->c, "gone", ""), 0);
	assert_int_equal(list_exits(h, "gone"), 0);
	assert_int_equal(agent_client_ack_exit(&h->c, "gone", ""), -ENOENT);
}

static void test_exit_event_and_grace(void **state)
{
	struct harness *h = *state;
	struct agent_msg ev;
	struct timespec t0, t1;
	char p[256];
	int out;

	host_connect(h);
	out = stream_open(h, "daemon", "", AGENT_STREAM_STDOUT);
	/* A grandchild keeps stdout open: the exit still comes, about 500 ms after the reap. */
	snprintf(p, sizeof(p), SH, "sleep 3 & echo started");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* No pid namespace, or the kernel kills the sleep with the init. */
	assert_int_equal(create_ns(h, "daemon", OUT, p, NS_NO_PID), 0);
	assert_int_equal(agent_client_start(&h->c, "daemon"), 0);
	assert_int_equal(agent_client_next_event(&h->c, &ev, TIMEOUT_MS), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(ev.type, AGENT_EVENT_EXIT);
	assert_string_equal(ev.u.exit.container_id, "daemon");
	assert_int_equal(ev.u.exit.status, 0);
	agent_msg_clear(&ev);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 400 && ms < 2500);
	close(out);
	assert_int_equal(wait_status(h, "daemon", ""), 0);
}

static void test_unknown_type(void **state)
{
	struct harness *h = *state;
	struct agent_header hdr = { AGENT_MAGIC, 0x7777, 0, 4242, 0 };
	uint8_t raw[AGENT_HDR_LEN];
	struct agent_reader rd;
	struct agent_msg m;
	int r;

	host_connect(h);
	agent_header_encode(&hdr, raw);
	assert_int_equal(write(h->c.fd, raw, sizeof(raw)), sizeof(raw));
	agent_reader_init(&rd, AGENT_MAX_PAYLOAD);
	do {
		struct pollfd pfd = { h->c.fd, POLLIN, 0 };

		assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
		r = agent_reader_read(&rd, h->c.fd);
	} while (r == -EAGAIN);
	assert_int_equal(r, 1);
	assert_int_equal(agent_reader_take(&rd, &m), 0);
	agent_reader_destroy(&rd);
	assert_int_equal(m.flags, AGENT_FLAG_REPLY | AGENT_FLAG_ERROR);
	assert_int_equal(m.id, 4242);
	assert_int_equal(m.u.error.errno_value, EOPNOTSUPP);
	agent_msg_clear(&m);
	assert_int_equal(agent_client_ping(&h->c), 0);
	/* A stdio connection that never attaches holds up nothing else. */
	struct timespec t0, t1;
	int idle = unix_connect(h->stdio);
	assert_int_equal(write(idle, raw, 7), 7); /* half a header */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(agent_client_ping(&h->c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 2);
	close(idle);
	/* Known requests about unknown containers: a clean ENOENT. */
	struct agent_stats st;
	assert_int_equal(agent_client_stats(&h->c, "x", &st), -ENOENT);
	assert_int_equal(agent_client_ping(&h->c), 0);
}

/* Up to AGENT_MAX_CONTROL hosts at once; one more replaces the oldest, the others keep working. */
static void test_connection_limit(void **state)
{
	struct harness *h = *state;
	enum {
		N = AGENT_MAX_CONTROL + 1
	};
	struct agent_client *c = calloc(N, sizeof(*c));

	assert_non_null(c);
	for (int i = 0; i < N; i++) {
		agent_client_init(&c[i], TIMEOUT_MS);
		assert_int_equal(agent_client_attach(&c[i], unix_connect(h->control)), 0);
	}
	assert_true(agent_client_ping(&c[0]) < 0);
	for (int i = 1; i < N; i++)
		assert_int_equal(agent_client_ping(&c[i]), 0);
	for (int i = 0; i < N; i++)
		agent_client_destroy(&c[i]);
	free(c);
}

/*
 * The connection that created a container is the host's monitor, which waits on it for the
 * init's exit: one host more than AGENT_MAX_CONTROL replaces the oldest other connection,
 * never it (losing it ended the container's VM).
 */
static void test_connection_limit_keeps_creator(void **state)
{
	struct harness *h = *state;
	enum {
		N = AGENT_MAX_CONTROL
	};
	struct agent_client *c = calloc(N, sizeof(*c));
	char p[256];

	assert_non_null(c);
	host_connect(h);
	snprintf(p, sizeof(p), SH, "exit 3");
	assert_int_equal(create(h, "kept", 0, p), 0);
	for (int i = 0; i < N; i++) {
		agent_client_init(&c[i], TIMEOUT_MS);
		assert_int_equal(agent_client_attach(&c[i], unix_connect(h->control)), 0);
	}
	assert_int_equal(agent_client_ping(&h->c), 0);
	assert_true(agent_client_ping(&c[0]) < 0);
	for (int i = 1; i < N; i++)
		assert_int_equal(agent_client_ping(&c[i]), 0);
	for (int i = 0; i < N; i++)
		agent_client_destroy(&c[i]);
	free(c);
	assert_int_equal(agent_client_start(&h->c, "kept"), 0);
	assert_int_equal(wait_status(h, "kept", ""), 3);
}

/* ADD_ENTROPY (1.2): credited to the pool (we run as root); 0 bytes is refused. */
static void test_add_entropy(void **state)
{
	struct harness *h = *state;
	struct agent_msg req = { .type = AGENT_ADD_ENTROPY }, reply;
	uint8_t seed[AGENT_MAX_ENTROPY];

	host_connect(h);
	assert_true(h->c.peer.minor >= 2);
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(i * 131 + 7);
	assert_int_equal(agent_client_add_entropy(&h->c, seed, 64), 0);
	assert_int_equal(agent_client_add_entropy(&h->c, seed, sizeof(seed)), 0);
	/* The client refuses 0 bytes itself: send the frame by hand. */
	req.u.add_entropy.data.n = 0;
	assert_int_equal(agent_client_call(&h->c, &req, &reply, TIMEOUT_MS), -EINVAL);
	assert_non_null(strstr(h->c.err, "ADD_ENTROPY"));
	assert_int_equal(agent_client_ping(&h->c), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, harness_setup, harness_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_handshake),
		T(test_exit_codes),
		T(test_env_cwd),
		T(test_stdout_10mib),
		T(test_stdin_cat),
		T(test_stderr_separate),
		T(test_tty_resize),
		T(test_tty_exec_and_ps_names),
		T(test_exec_and_signal_one),
		T(test_signal_all),
		T(test_exit_while_disconnected),
		T(test_exit_event_and_grace),
		T(test_unknown_type),
		T(test_connection_limit),
		T(test_connection_limit_keeps_creator),
		T(test_add_entropy),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, rootfs_setup, rootfs_teardown);
}
