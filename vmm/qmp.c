/*
 * The QMP protocol layer (see qmp.h): the session, framing, the rate limit, yajl parsing,
 * the command table and dispatch, replies and events. The commands themselves are in
 * qmp_commands.c (run state, CPUs, fds), qmp_hotplug.c and qmp_migrate.c (qmp_internal.h).
 *
 * Framing follows QEMU's streaming parser closely enough for real clients: a message is
 * one JSON object (or array) however it is split or concatenated, found by counting
 * brackets outside strings; anything else is a message up to the next newline (and gets a
 * GenericError). Replies are built with yajl_gen, so every string the client sent comes
 * back escaped.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "qmp.h"
#include "qmp_internal.h"
#include "util.h"

static uint64_t qmp_now_ns(struct qmp_session *s)
{
	struct timespec ts;

	if (s->ops->now_ns)
		return s->ops->now_ns(s->opaque);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int qmp_session_create(const struct qmp_ops *ops, void *opaque, const char *version,
		       struct qmp_session **out)
{
	struct qmp_session *s = calloc(1, sizeof(*s));
	unsigned int i;

	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->opaque = opaque;
	snprintf(s->version, sizeof(s->version), "%s", version);
	s->pending_fd = -1;
	for (i = 0; i < QMP_FDS_MAX; i++)
		s->fds[i].fd = -1;
	s->tokens = QMP_BURST * 1000ULL;
	s->last_ns = qmp_now_ns(s);
	*out = s;
	return 0;
}

void qmp_session_destroy(struct qmp_session *s)
{
	unsigned int i;

	if (!s)
		return;
	if (s->pending_fd >= 0)
		close(s->pending_fd);
	for (i = 0; i < QMP_FDS_MAX; i++)
		if (s->fds[i].fd >= 0)
			close(s->fds[i].fd);
	free(s);
}

static void qmp_send(struct qmp_session *s, const char *data, size_t len)
{
	s->ops->write(s->opaque, data, len);
	s->ops->write(s->opaque, "\r\n", 2);
}

void qmp_session_greet(struct qmp_session *s)
{
	char line[256];
	int n = snprintf(line, sizeof(line),
			 "{\"QMP\":{\"version\":{\"qemu\":{\"micro\":1,\"minor\":0,\"major\":5},"
			 "\"package\":\"stratus-%s\"},\"capabilities\":[]}}",
			 s->version);

	qmp_send(s, line, (size_t)n);
}

void qmp_gen_str(yajl_gen g, const char *text)
{
	yajl_gen_string(g, (const unsigned char *)text, strlen(text));
}

void qmp_gen_int(yajl_gen g, const char *key, long long value)
{
	qmp_gen_str(g, key);
	yajl_gen_integer(g, value);
}

void qmp_gen_bool(yajl_gen g, const char *key, bool value)
{
	qmp_gen_str(g, key);
	yajl_gen_bool(g, value);
}

void qmp_gen_kv(yajl_gen g, const char *key, const char *value)
{
	qmp_gen_str(g, key);
	qmp_gen_str(g, value);
}

/* Echo a parsed value (the id); depth is bounded by the framing. */
void qmp_gen_value(yajl_gen g, yajl_val v)
{
	size_t i;

	if (YAJL_IS_STRING(v)) {
		qmp_gen_str(g, v->u.string);
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (i = 0; i < v->u.object.len; i++) {
			qmp_gen_str(g, v->u.object.keys[i]);
			qmp_gen_value(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (i = 0; i < v->u.array.len; i++)
			qmp_gen_value(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else {
		yajl_gen_null(g);
	}
}

static void qmp_send_gen(struct qmp_session *s, yajl_gen g)
{
	const unsigned char *out;
	size_t len;

	if (yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok)
		qmp_send(s, (const char *)out, len);
}

static void qmp_send_error(struct qmp_session *s, const char *cls, const char *desc, yajl_val id)
{
	yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return;
	yajl_gen_map_open(g);
	qmp_gen_str(g, "error");
	yajl_gen_map_open(g);
	qmp_gen_kv(g, "class", cls);
	qmp_gen_kv(g, "desc", desc);
	yajl_gen_map_close(g);
	if (id) {
		qmp_gen_str(g, "id");
		qmp_gen_value(g, id);
	}
	yajl_gen_map_close(g);
	qmp_send_gen(s, g);
	yajl_gen_free(g);
}

void qmp_session_event(struct qmp_session *s, const char *name, const char *data_json)
{
	char line[512];
	struct timeval tv;
	int n;

	if (!s->negotiated)
		return;
	gettimeofday(&tv, NULL);
	n = snprintf(
		line, sizeof(line),
		"{\"timestamp\":{\"seconds\":%lld,\"microseconds\":%lld},\"event\":\"%s\"%s%s}",
		(long long)tv.tv_sec, (long long)tv.tv_usec, name, data_json ? ",\"data\":" : "",
		data_json ? data_json : "");
	if (n > 0 && (size_t)n < sizeof(line))
		qmp_send(s, line, (size_t)n);
}

bool qmp_session_end_announced(const struct qmp_session *s)
{
	return s->end_announced;
}

int qmp_fail(struct qmp_reply *r, const char *cls, const char *fmt, const char *arg)
{
	r->error_class = cls;
	snprintf(r->desc, sizeof(r->desc), fmt, arg);
	return -1;
}

const char *qmp_arg_string(yajl_val args, const char *key)
{
	const char *path[] = { key, NULL };
	yajl_val v = args ? yajl_tree_get(args, path, yajl_t_string) : NULL;

	return v ? v->u.string : NULL;
}

static int qmp_cmd_query_commands(struct qmp_session *s, yajl_val args, struct qmp_reply *r);

struct qmp_command {
	const char *name;
	int (*fn)(struct qmp_session *s, yajl_val args, struct qmp_reply *r);
	bool listed; /* in query-commands */
};

static const struct qmp_command qmp_commands[] = {
	{ "qmp_capabilities", qmp_cmd_empty, true },
	{ "query-status", qmp_cmd_query_status, true },
	{ "stop", qmp_cmd_stop, true },
	{ "cont", qmp_cmd_cont, true },
	{ "quit", qmp_cmd_quit, true },
	{ "system_powerdown", qmp_cmd_system_powerdown, true },
	{ "system_reset", qmp_cmd_system_reset, true },
	{ "query-version", qmp_cmd_query_version, true },
	{ "query-commands", qmp_cmd_query_commands, true },
	{ "query-cpus", qmp_cmd_query_cpus, true },
	{ "query-cpus-fast", qmp_cmd_query_cpus_fast, true },
	{ "query-hotpluggable-cpus", qmp_cmd_query_hotpluggable_cpus, true },
	{ "getfd", qmp_cmd_getfd, true },
	{ "closefd", qmp_cmd_closefd, true },
	{ "migrate", qmp_cmd_migrate, true },
	{ "query-migrate", qmp_cmd_query_migrate, true },
	{ "blockdev-add", qmp_cmd_blockdev_add, true },
	{ "blockdev-del", qmp_cmd_blockdev_del, true },
	{ "device_add", qmp_cmd_device_add, true },
	{ "device_del", qmp_cmd_device_del, true },
	{ "netdev_add", qmp_cmd_not_yet, false },
	{ "netdev_del", qmp_cmd_not_yet, false },
};

static int qmp_cmd_query_commands(struct qmp_session *s, yajl_val args, struct qmp_reply *r)
{
	unsigned int i;

	(void)s;
	(void)args;
	yajl_gen_array_open(r->gen);
	for (i = 0; i < ARRAY_SIZE(qmp_commands); i++) {
		if (!qmp_commands[i].listed)
			continue;
		yajl_gen_map_open(r->gen);
		qmp_gen_kv(r->gen, "name", qmp_commands[i].name);
		yajl_gen_map_close(r->gen);
	}
	yajl_gen_array_close(r->gen);
	return 0;
}

static const struct qmp_command *qmp_find_command(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(qmp_commands); i++)
		if (!strcmp(qmp_commands[i].name, name))
			return &qmp_commands[i];
	return NULL;
}

/* The announcement of a VM that ends because QMP asked (before the callback ends it). */
static void qmp_announce_end(struct qmp_session *s, const struct qmp_command *cmd)
{
	if (!strcmp(cmd->name, "system_reset"))
		qmp_session_event(s, "RESET",
				  "{\"guest\":false,\"reason\":\"host-qmp-system-reset\"}");
	else if (!strcmp(cmd->name, "system_powerdown"))
		qmp_session_event(s, "POWERDOWN", NULL);
	if (strcmp(cmd->name, "system_reset"))
		qmp_session_event(s, "SHUTDOWN", "{\"guest\":false,\"reason\":\"host-qmp-quit\"}");
	s->end_announced = true;
}

static void qmp_run_command(struct qmp_session *s, const struct qmp_command *cmd, yajl_val args,
			    yajl_val id)
{
	struct qmp_reply r = { .gen = yajl_gen_alloc(NULL) };

	if (!r.gen)
		return;
	yajl_gen_map_open(r.gen);
	qmp_gen_str(r.gen, "return");
	if (cmd->fn(s, args, &r) < 0) {
		qmp_send_error(s, r.error_class, r.desc, id);
	} else {
		if (id) {
			qmp_gen_str(r.gen, "id");
			qmp_gen_value(r.gen, id);
		}
		yajl_gen_map_close(r.gen);
		qmp_send_gen(s, r.gen);
		if (!strcmp(cmd->name, "qmp_capabilities"))
			s->negotiated = true;
	}
	yajl_gen_free(r.gen);
	if (r.deleted)
		qmp_event_device_deleted(s, r.deleted);
	if (r.after) {
		qmp_announce_end(s, cmd);
		r.after(s->opaque);
	}
}

static void qmp_dispatch(struct qmp_session *s, yajl_val msg)
{
	const char *path_execute[] = { "execute", NULL }, *path_id[] = { "id", NULL },
		   *path_args[] = { "arguments", NULL };
	yajl_val execute, id, args;
	const struct qmp_command *cmd;
	char desc[160];

	if (!YAJL_IS_OBJECT(msg))
		return qmp_send_error(s, "GenericError", "QMP input must be a JSON object", NULL);
	id = yajl_tree_get(msg, path_id, yajl_t_any);
	execute = yajl_tree_get(msg, path_execute, yajl_t_any);
	args = yajl_tree_get(msg, path_args, yajl_t_any);
	if (!execute)
		return qmp_send_error(s, "GenericError", "QMP input lacks member 'execute'", id);
	if (!YAJL_IS_STRING(execute))
		return qmp_send_error(s, "GenericError",
				      "QMP input member 'execute' must be a string", id);
	if (args && !YAJL_IS_OBJECT(args))
		return qmp_send_error(s, "GenericError",
				      "QMP input member 'arguments' must be an object", id);
	if (!s->negotiated && strcmp(execute->u.string, "qmp_capabilities"))
		return qmp_send_error(s, "CommandNotFound",
				      "Expecting capabilities negotiation with 'qmp_capabilities'",
				      id);
	if (s->negotiated && !strcmp(execute->u.string, "qmp_capabilities"))
		return qmp_send_error(s, "CommandNotFound",
				      "Capabilities negotiation is already complete, command "
				      "ignored",
				      id);
	cmd = qmp_find_command(execute->u.string);
	if (!cmd) {
		snprintf(desc, sizeof(desc), "The command %.100s has not been found",
			 execute->u.string);
		return qmp_send_error(s, "CommandNotFound", desc, id);
	}
	qmp_run_command(s, cmd, args, id);
}

static void qmp_handle_message(struct qmp_session *s, char *text)
{
	char errbuf[128], desc[160];
	yajl_val msg;

	errbuf[0] = '\0';
	msg = yajl_tree_parse(text, errbuf, sizeof(errbuf));
	if (!msg) {
		errbuf[strcspn(errbuf, "\r\n")] = '\0';
		snprintf(desc, sizeof(desc), "JSON parse error, %s",
			 errbuf[0] ? errbuf : "invalid");
		qmp_send_error(s, "GenericError", desc, NULL);
		return;
	}
	qmp_dispatch(s, msg);
	yajl_tree_free(msg);
}

size_t qmp_session_room(const struct qmp_session *s)
{
	return QMP_LINE_MAX - s->len;
}

static void qmp_reset_scan(struct qmp_session *s)
{
	s->scan = 0;
	s->depth = 0;
	s->in_string = s->escape = s->to_newline = false;
}

/* Drop the first n bytes (a message handled, or junk). */
static void qmp_consume(struct qmp_session *s, size_t n)
{
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
	qmp_reset_scan(s);
}

/* Advance the scan; returns the length of the first complete message, 0 if none yet. */
static size_t qmp_scan(struct qmp_session *s)
{
	for (; s->scan < s->len; s->scan++) {
		char c = s->buf[s->scan];

		if (s->to_newline) {
			if (c == '\n')
				return s->scan + 1;
		} else if (s->in_string) {
			if (s->escape)
				s->escape = false;
			else if (c == '\\')
				s->escape = true;
			else if (c == '"')
				s->in_string = false;
		} else if (c == '"') {
			s->in_string = true;
		} else if (c == '{' || c == '[') {
			if (++s->depth > QMP_DEPTH_MAX)
				return s->scan + 1; /* the parser will object */
		} else if (c == '}' || c == ']') {
			if (s->depth == 0 || --s->depth == 0)
				return s->scan + 1;
		} else if (s->depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			s->to_newline = true; /* not an object: a bad message up to the newline */
		}
	}
	return 0;
}

/* Leading whitespace between messages is not a message. */
static void qmp_skip_blank(struct qmp_session *s)
{
	size_t n = 0;

	while (n < s->len && strchr(" \t\r\n", s->buf[n]) && s->buf[n])
		n++;
	if (n)
		qmp_consume(s, n);
}

size_t qmp_session_feed(struct qmp_session *s, const char *data, size_t len)
{
	size_t taken = 0, n;

	while (s->skipping && taken < len) /* the rest of an over-long message */
		if (data[taken++] == '\n')
			s->skipping = false;
	n = MIN(len - taken, qmp_session_room(s));
	memcpy(s->buf + s->len, data + taken, n);
	s->len += n;
	if (s->len == QMP_LINE_MAX && !qmp_scan(s)) {
		qmp_send_error(s, "GenericError",
			       "Message too long (at most 65536 bytes); dropped up to the next "
			       "newline",
			       NULL);
		s->len = 0;
		qmp_reset_scan(s);
		s->skipping = true;
		return taken + n + qmp_session_feed(s, data + taken + n, len - taken - n);
	}
	return taken + n;
}

static bool qmp_take_token(struct qmp_session *s, int *wait_ms)
{
	uint64_t now = qmp_now_ns(s), cap = QMP_BURST * 1000ULL;

	if (now > s->last_ns) {
		uint64_t add = (now - s->last_ns) / (1000000ULL / QMP_RATE);

		s->tokens = MIN(cap, s->tokens + add);
		if (add)
			s->last_ns = now;
	}
	if (s->tokens >= 1000) {
		s->tokens -= 1000;
		return true;
	}
	*wait_ms = (int)((1000 - s->tokens) / QMP_RATE) + 1;
	return false;
}

int qmp_session_process(struct qmp_session *s)
{
	size_t n;
	int wait_ms = 0;
	char saved;

	for (;;) {
		qmp_skip_blank(s);
		n = qmp_scan(s);
		if (!n)
			return 0;
		if (!qmp_take_token(s, &wait_ms))
			return wait_ms;
		saved = s->buf[n];
		s->buf[n] = '\0';
		if (s->depth > QMP_DEPTH_MAX)
			qmp_send_error(s, "GenericError", "JSON nested too deeply (at most 32)",
				       NULL);
		else
			qmp_handle_message(s, s->buf);
		s->buf[n] = saved;
		if (s->depth > QMP_DEPTH_MAX && !memchr(s->buf + n, '\n', s->len - n)) {
			s->len = n; /* drop the rest of the deep message up to its newline */
			s->skipping = true;
		} else if (s->depth > QMP_DEPTH_MAX) {
			n = (size_t)((char *)memchr(s->buf + n, '\n', s->len - n) - s->buf) + 1;
		}
		qmp_consume(s, n);
	}
}
