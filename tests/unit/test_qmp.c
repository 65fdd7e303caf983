/*
 * The QMP protocol layer (vmm/qmp.c) driven in-process: bytes in, lines out, the VM
 * actions faked. What a client sees: the greeting, negotiation, each command's reply,
 * the error classes, id echo, framing (split, concatenated, over-long), the rate limit and
 * a corpus of malformed input that must only ever produce error replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "qmp.h"

struct fake {
	char out[256 * 1024];
	size_t out_len;
	bool running;
	int stops, conts, quits, powerdowns, resets;
	uint64_t now;
};

static void fake_write(void *opaque, const char *data, size_t len)
{
	struct fake *f = opaque;

	assert_true(f->out_len + len < sizeof(f->out));
	memcpy(f->out + f->out_len, data, len);
	f->out_len += len;
	f->out[f->out_len] = '\0';
}

static bool fake_running(void *opaque)
{
	return ((struct fake *)opaque)->running;
}

static int fake_stop(void *opaque)
{
	struct fake *f = opaque;

	f->stops++;
	f->running = false;
	return 0;
}

static int fake_cont(void *opaque)
{
	struct fake *f = opaque;

	f->conts++;
	f->running = true;
	return 0;
}

static void fake_quit(void *opaque)
{
	((struct fake *)opaque)->quits++;
}

static void fake_powerdown(void *opaque)
{
	((struct fake *)opaque)->powerdowns++;
}

static void fake_reset(void *opaque)
{
	((struct fake *)opaque)->resets++;
}

static unsigned int fake_nr_cpus(void *opaque)
{
	(void)opaque;
	return 2;
}

static int fake_tid(void *opaque, unsigned int index)
{
	(void)opaque;
	return 1000 + (int)index;
}

static uint64_t fake_now(void *opaque)
{
	return ((struct fake *)opaque)->now;
}

static const struct qmp_ops fake_ops = {
	.write = fake_write,
	.running = fake_running,
	.stop = fake_stop,
	.cont = fake_cont,
	.quit = fake_quit,
	.powerdown = fake_powerdown,
	.reset = fake_reset,
	.nr_cpus = fake_nr_cpus,
	.cpu_thread_id = fake_tid,
	.now_ns = fake_now,
};

struct ctx {
	struct fake fake;
	struct qmp_session *s;
};

static struct ctx *ctx_new(bool negotiate);

/* Feed everything (in chunks that fit) with a clock that refills the bucket. */
static void feed(struct ctx *c, const char *data, size_t len)
{
	while (len) {
		size_t n = qmp_session_feed(c->s, data, len);

		data += n;
		len -= n;
		while (qmp_session_process(c->s) > 0)
			c->fake.now += 1000000000ULL;
	}
}

static void send_text(struct ctx *c, const char *text)
{
	feed(c, text, strlen(text));
}

/* Pop the first output line; it must end in "\r\n". Returns a static copy. */
static const char *next_line(struct ctx *c)
{
	static char line[64 * 1024];
	char *end = strstr(c->fake.out, "\r\n");
	size_t n;

	assert_non_null(end);
	n = (size_t)(end - c->fake.out);
	assert_true(n < sizeof(line));
	memcpy(line, c->fake.out, n);
	line[n] = '\0';
	memmove(c->fake.out, end + 2, c->fake.out_len - n - 2 + 1);
	c->fake.out_len -= n + 2;
	return line;
}

static void expect_line(struct ctx *c, const char *want)
{
	assert_string_equal(next_line(c), want);
}

static void expect_prefix(struct ctx *c, const char *want)
{
	const char *line = next_line(c);

	if (strncmp(line, want, strlen(want)))
		fail_msg("'%s' does not start with '%s'", line, want);
}

static void expect_no_output(struct ctx *c)
{
	assert_int_equal(c->fake.out_len, 0);
}

static struct ctx *ctx_new(bool negotiate)
{
	struct ctx *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->fake.running = true;
	c->fake.now = 1;
	assert_int_equal(qmp_session_create(&fake_ops, &c->fake, "9.9.9", &c->s), 0);
	qmp_session_greet(c->s);
	next_line(c);
	if (negotiate) {
		send_text(c, "{\"execute\":\"qmp_capabilities\"}\n");
		expect_line(c, "{\"return\":{}}");
	}
	return c;
}

static void ctx_free(struct ctx *c)
{
	qmp_session_destroy(c->s);
	free(c);
}

static void test_greeting(void **state)
{
	struct fake f = { .running = true };
	struct qmp_session *s;

	(void)state;
	assert_int_equal(qmp_session_create(&fake_ops, &f, "9.9.9", &s), 0);
	qmp_session_greet(s);
	assert_string_equal(f.out, "{\"QMP\":{\"version\":{\"qemu\":{\"micro\":1,\"minor\":0,"
				   "\"major\":5},\"package\":\"stratus-9.9.9\"},"
				   "\"capabilities\":[]}}\r\n");
	qmp_session_destroy(s);
}

static void test_negotiation(void **state)
{
	struct ctx *c = ctx_new(false);

	(void)state;
	send_text(c, "{\"execute\":\"query-status\",\"id\":7}\n");
	expect_line(c, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Expecting "
		       "capabilities negotiation with 'qmp_capabilities'\"},\"id\":7}");
	send_text(c, "{\"execute\":\"stop\"}");
	expect_prefix(c, "{\"error\":{\"class\":\"CommandNotFound\"");
	assert_int_equal(c->fake.stops, 0);
	qmp_session_event(c->s, "STOP", NULL); /* no events before negotiation */
	expect_no_output(c);
	send_text(c, "{\"execute\":\"qmp_capabilities\",\"arguments\":{}}");
	expect_line(c, "{\"return\":{}}");
	send_text(c, "{\"execute\":\"qmp_capabilities\"}");
	expect_prefix(c, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"Capabilities");
	ctx_free(c);
}

static void test_status_stop_cont(void **state)
{
	struct ctx *c = ctx_new(true);

	(void)state;
	send_text(c, "{\"execute\":\"query-status\"}");
	expect_line(c,
		    "{\"return\":{\"status\":\"running\",\"singlestep\":false,\"running\":true}}");
	send_text(c, "{\"execute\":\"stop\"}");
	expect_prefix(c, "{\"timestamp\":{\"seconds\":");
	expect_line(c, "{\"return\":{}}");
	assert_int_equal(c->fake.stops, 1);
	send_text(c, "{\"execute\":\"stop\"}"); /* already paused: no second event */
	expect_line(c, "{\"return\":{}}");
	assert_int_equal(c->fake.stops, 1);
	send_text(c, "{\"execute\":\"query-status\"}");
	expect_line(c,
		    "{\"return\":{\"status\":\"paused\",\"singlestep\":false,\"running\":false}}");
	send_text(c, "{\"execute\":\"cont\"}");
	assert_non_null(strstr(next_line(c), "\"event\":\"RESUME\""));
	expect_line(c, "{\"return\":{}}");
	assert_int_equal(c->fake.conts, 1);
	ctx_free(c);
}

static void test_event_shape(void **state)
{
	struct ctx *c = ctx_new(true);
	long long sec, usec;
	char name[16];

	(void)state;
	qmp_session_event(c->s, "SHUTDOWN", "{\"guest\":true,\"reason\":\"guest-shutdown\"}");
	assert_int_equal(sscanf(next_line(c),
				"{\"timestamp\":{\"seconds\":%lld,\"microseconds\":%lld},"
				"\"event\":\"%15[A-Z]\",\"data\":{\"guest\":true,",
				&sec, &usec, name),
			 3);
	assert_string_equal(name, "SHUTDOWN");
	assert_true(sec > 0 && usec >= 0 && usec < 1000000);
	ctx_free(c);
}

static void test_quit_powerdown_reset(void **state)
{
	struct ctx *c = ctx_new(true);

	(void)state;
	send_text(c, "{\"execute\":\"quit\",\"id\":\"q\"}");
	expect_line(c, "{\"return\":{},\"id\":\"q\"}");
	assert_non_null(strstr(next_line(c), "\"event\":\"SHUTDOWN\",\"data\":{\"guest\":false,"
					     "\"reason\":\"host-qmp-quit\"}"));
	assert_int_equal(c->fake.quits, 1);
	assert_true(qmp_session_end_announced(c->s));
	send_text(c, "{\"execute\":\"system_powerdown\"}");
	expect_line(c, "{\"return\":{}}");
	assert_non_null(strstr(next_line(c), "\"event\":\"POWERDOWN\""));
	assert_non_null(strstr(next_line(c), "\"event\":\"SHUTDOWN\""));
	assert_int_equal(c->fake.powerdowns, 1);
	send_text(c, "{\"execute\":\"system_reset\"}");
	expect_line(c, "{\"return\":{}}");
	assert_non_null(strstr(next_line(c), "\"event\":\"RESET\""));
	assert_int_equal(c->fake.resets, 1);
	ctx_free(c);
}

static void test_queries(void **state)
{
	struct ctx *c = ctx_new(true);
	const char *line;

	(void)state;
	send_text(c, "{\"execute\":\"query-version\"}");
	expect_line(c, "{\"return\":{\"qemu\":{\"micro\":1,\"minor\":0,\"major\":5},"
		       "\"package\":\"stratus-9.9.9\"}}");
	send_text(c, "{\"execute\":\"query-commands\"}");
	line = next_line(c);
	assert_non_null(strstr(line, "{\"return\":[{\"name\":\"qmp_capabilities\"},"));
	assert_non_null(strstr(line, "{\"name\":\"query-cpus-fast\"}"));
	send_text(c, "{\"execute\":\"query-cpus-fast\"}");
	expect_line(c, "{\"return\":[{\"cpu-index\":0,\"thread-id\":1000,\"props\":{\"core-id\":0,"
		       "\"thread-id\":0,\"socket-id\":0},\"qom-path\":\"/machine/unattached/"
		       "device[0]\",\"arch\":\"x86\",\"target\":\"x86_64\"},{\"cpu-index\":1,"
		       "\"thread-id\":1001,\"props\":{\"core-id\":1,\"thread-id\":0,\"socket-id\":"
		       "0},\"qom-path\":\"/machine/unattached/device[1]\",\"arch\":\"x86\","
		       "\"target\":\"x86_64\"}]}");
	send_text(c, "{\"execute\":\"query-cpus\"}");
	line = next_line(c);
	assert_non_null(strstr(line, "\"CPU\":1,\"current\":false,\"halted\":false"));
	assert_non_null(strstr(line, "\"thread_id\":1001"));
	send_text(c, "{\"execute\":\"query-hotpluggable-cpus\"}");
	line = next_line(c);
	assert_non_null(strstr(line, "{\"return\":[{\"type\":\"host-x86_64-cpu\",\"vcpus-count\":1,"
				     "\"props\":{\"core-id\":0,"));
	ctx_free(c);
}

static void test_errors_and_id(void **state)
{
	struct ctx *c = ctx_new(true);

	(void)state;
	send_text(c, "{\"execute\":\"frobnicate\",\"id\":{\"a\":[1,2.5e3,\"x\\\"y\",null,true]}}");
	expect_line(c, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The command "
		       "frobnicate has not been found\"},\"id\":{\"a\":[1,2.5e3,\"x\\\"y\",null,"
		       "true]}}");
	send_text(c, "{\"execute\":\"query-status\",\"id\":\"abc\"}");
	expect_line(c, "{\"return\":{\"status\":\"running\",\"singlestep\":false,\"running\":true},"
		       "\"id\":\"abc\"}");
	send_text(c, "{\"execute\":}\n");
	expect_prefix(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error");
	send_text(c, "[1,2]");
	expect_line(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"QMP input must be a JSON "
		       "object\"}}");
	send_text(c, "{\"id\":3}");
	expect_line(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"QMP input lacks member "
		       "'execute'\"},\"id\":3}");
	send_text(c, "{\"execute\":5}");
	expect_prefix(c, "{\"error\":{\"class\":\"GenericError\"");
	send_text(c, "{\"execute\":\"stop\",\"arguments\":[]}");
	expect_prefix(c, "{\"error\":{\"class\":\"GenericError\"");
	send_text(c, "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"virtio-blk\"}}");
	expect_line(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"not supported yet: "
		       "stratus-vmm has no device hotplug\"}}");
	send_text(c, "{\"execute\":\"blockdev-add\"}");
	expect_prefix(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"not supported yet");
	send_text(c, "garbage\n");
	expect_prefix(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON parse error");
	expect_no_output(c);
	ctx_free(c);
}

static void test_getfd(void **state)
{
	struct ctx *c = ctx_new(true);
	int fds[2];

	(void)state;
	send_text(c, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"tap0\"}}");
	expect_line(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"No file descriptor "
		       "supplied via SCM_RIGHTS\"}}");
	assert_int_equal(pipe(fds), 0);
	qmp_session_push_fd(c->s, fds[0]);
	send_text(c, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"0bad\"}}");
	expect_prefix(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Parameter 'fdname'");
	send_text(c, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"tap0\"}}");
	expect_line(c, "{\"return\":{}}");
	assert_int_equal(qmp_session_lookup_fd(c->s, "tap0"), fds[0]);
	send_text(c, "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"tap0\"}}");
	expect_line(c, "{\"return\":{}}");
	assert_int_equal(qmp_session_lookup_fd(c->s, "tap0"), -1);
	send_text(c, "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"tap0\"}}");
	expect_line(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"File descriptor named "
		       "'tap0' not found\"}}");
	close(fds[1]);
	ctx_free(c);
}

/* The table is bounded: the 17th name is refused, and every fd is closed at the end. */
static void test_getfd_bounded(void **state)
{
	struct ctx *c = ctx_new(true);
	char cmd[128];
	int i, fd;

	(void)state;
	for (i = 0; i <= QMP_FDS_MAX; i++) {
		fd = dup(0);
		assert_true(fd >= 0);
		qmp_session_push_fd(c->s, fd);
		snprintf(cmd, sizeof(cmd),
			 "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"f%d\"}}", i);
		send_text(c, cmd);
		if (i < QMP_FDS_MAX)
			expect_line(c, "{\"return\":{}}");
		else
			expect_prefix(c,
				      "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Too many");
	}
	ctx_free(c);
}

static void test_split_and_concatenated(void **state)
{
	struct ctx *c = ctx_new(true);
	const char *msg = "{\"execute\":\"query-status\",\"id\":\"}{\"}";
	size_t i;

	(void)state;
	for (i = 0; msg[i]; i++) {
		feed(c, &msg[i], 1);
		if (msg[i + 1])
			expect_no_output(c);
	}
	expect_prefix(c, "{\"return\":{\"status\":\"running\"");
	send_text(c, "{\"execute\":\"query-version\"}{\"execute\":\"stop\"}\r\n  "
		     "{\"execute\":\"cont\"}");
	expect_prefix(c, "{\"return\":{\"qemu\"");
	expect_prefix(c, "{\"timestamp\"");
	expect_line(c, "{\"return\":{}}");
	expect_prefix(c, "{\"timestamp\"");
	expect_line(c, "{\"return\":{}}");
	expect_no_output(c);
	ctx_free(c);
}

static void test_overlong_line(void **state)
{
	struct ctx *c = ctx_new(true);
	size_t len = 3 * QMP_LINE_MAX;
	char *big = malloc(len + 64);

	(void)state;
	assert_non_null(big);
	strcpy(big, "{\"execute\":\"query-status\",\"id\":\"");
	memset(big + strlen(big), 'a', len - strlen(big));
	strcpy(big + len, "\"}\n{\"execute\":\"query-version\"}");
	send_text(c, big);
	expect_prefix(c, "{\"error\":{\"class\":\"GenericError\",\"desc\":\"Message too long");
	expect_prefix(c, "{\"return\":{\"qemu\""); /* the next command still works */
	expect_no_output(c);
	assert_true(qmp_session_room(c->s) == QMP_LINE_MAX);
	free(big);
	ctx_free(c);
}

static void test_deep_nesting(void **state)
{
	struct ctx *c = ctx_new(true);
	char deep[4096];

	(void)state;
	memset(deep, '[', 1000);
	strcpy(deep + 1000, "\n{\"execute\":\"query-version\"}");
	send_text(c, deep);
	expect_prefix(c,
		      "{\"error\":{\"class\":\"GenericError\",\"desc\":\"JSON nested too deeply");
	expect_prefix(c, "{\"return\":{\"qemu\"");
	expect_no_output(c);
	ctx_free(c);
}

static void test_rate_limit(void **state)
{
	struct ctx *c = ctx_new(true);
	char cmds[QMP_BURST * 40 + 512];
	size_t n = 0;
	int i, wait_ms, replies = 0;

	(void)state;
	for (i = 0; i < QMP_BURST + 10; i++)
		n += (size_t)sprintf(cmds + n, "{\"execute\":\"query-status\"}");
	assert_int_equal(qmp_session_feed(c->s, cmds, n), n);
	wait_ms = qmp_session_process(c->s); /* the clock does not move: only the burst runs */
	assert_true(wait_ms > 0 && wait_ms <= 1000 / QMP_RATE + 1);
	while (c->fake.out_len) {
		next_line(c);
		replies++;
	}
	assert_int_equal(replies, QMP_BURST - 1); /* negotiation took one token */
	c->fake.now += 1000000000ULL / QMP_RATE;
	assert_true(qmp_session_process(c->s) > 0);
	next_line(c);
	expect_no_output(c);
	c->fake.now += 1000000000ULL;
	assert_int_equal(qmp_session_process(c->s), 0);
	for (replies = 0; c->fake.out_len; replies++)
		next_line(c);
	assert_int_equal(replies, 10);
	ctx_free(c);
}

/* Nasty input: only error replies, never a crash; every output line ends in "\r\n". */
static void test_malformed_corpus(void **state)
{
	static const char *const corpus[] = {
		"",
		"\n",
		"{",
		"}",
		"]]]]]]",
		"{\"execute\"",
		"{\"execute\":\"\\u0000\"}",
		"{\"execute\":\"\xff\xfe\"}",
		"{\"execute\":\"query-status\",\"execute\":\"stop\"}",
		"{\"execute\":\"getfd\",\"arguments\":{\"fdname\":5}}",
		"{\"execute\":\"getfd\",\"arguments\":null}",
		"{\"execute\":null}",
		"{\"id\":{\"id\":{\"id\":[[[[[]]]]]}}}",
		"\"\\\"\\\\\"",
		"{\"a\":\"\\",
		"{\"execute\":\"quit\"x}",
		"123456789012345678901234567890",
		"-",
		"nul\x00l",
		"{\"execute\":\"query-cpus\",\"arguments\":{\"x\":1e999999}}",
		"\x1b[A\x1b[B",
		"{}",
		"[]",
		"{\"execute\":\"\"}",
		"{\"execute\":\"%s%s%n\"}",
	};
	struct ctx *c = ctx_new(true);
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		send_text(c, corpus[i]);
		send_text(c, "\n");
	}
	send_text(c, "\"unterminated\n");
	send_text(c, "\"}\n");
	send_text(c, "{\"execute\":\"query-version\",\"id\":\"end\"}");
	while (c->fake.out_len) {
		const char *line = next_line(c);

		assert_true(line[0] == '{');
		if (strstr(line, "\"id\":\"end\""))
			break;
	}
	ctx_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting),
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_status_stop_cont),
		cmocka_unit_test(test_event_shape),
		cmocka_unit_test(test_quit_powerdown_reset),
		cmocka_unit_test(test_queries),
		cmocka_unit_test(test_errors_and_id),
		cmocka_unit_test(test_getfd),
		cmocka_unit_test(test_getfd_bounded),
		cmocka_unit_test(test_split_and_concatenated),
		cmocka_unit_test(test_overlong_line),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_malformed_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
