/*
 * QMP client (see qmp_client.h). Replies are lines of JSON; each is parsed with yajl_tree
 * and classified by its top-level key: "QMP" (greeting), "event", "return" or "error".
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "qmp_client.h"
#include "unix_path.h"

struct qmp_conn {
	int fd;
	int timeout_ms;
	char buf[QMP_CLIENT_LINE_MAX];
	size_t len;
	char line[QMP_CLIENT_LINE_MAX];
};

/* The next line into line (NUL-terminated, without "\r\n"). */
static int qmp_read_line(struct qmp_conn *q, char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - q->buf);

			if (l >= cap)
				return -EMSGSIZE;
			memcpy(line, q->buf, l);
			line[l && line[l - 1] == '\r' ? l - 1 : l] = '\0';
			memmove(q->buf, nl + 1, q->len - l - 1);
			q->len -= l + 1;
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return -EMSGSIZE;
		n = poll(&pfd, 1, q->timeout_ms);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0 && errno != EINTR)
			return -errno;
		n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (n > 0)
			q->len += (size_t)n;
	}
}

/* Wait for the reply to the last command: skip events; 0, or -EIO with the error's desc. */
static int qmp_reply(struct qmp_conn *q, const char *what, struct error *err)
{
	char *line = q->line;
	const char *ret_path[] = { "return", NULL }, *event_path[] = { "event", NULL };
	const char *desc_path[] = { "error", "desc", NULL };

	for (;;) {
		yajl_val root, desc;
		int r = qmp_read_line(q, line, sizeof(q->line));

		if (r < 0)
			return error_set_errno(err, r, "qmp: %s", what);
		root = yajl_tree_parse(line, NULL, 0);
		if (!root || !YAJL_IS_OBJECT(root)) {
			yajl_tree_free(root);
			return error_set(err, -EPROTO, "qmp: %s: not a QMP reply", what);
		}
		if (yajl_tree_get(root, event_path, yajl_t_any)) {
			yajl_tree_free(root);
			continue;
		}
		if (yajl_tree_get(root, ret_path, yajl_t_any)) {
			yajl_tree_free(root);
			return 0;
		}
		desc = yajl_tree_get(root, desc_path, yajl_t_string);
		r = error_set(err, -EIO, "qmp: %s: %s", what,
			      desc ? YAJL_GET_STRING(desc) : "error reply");
		yajl_tree_free(root);
		return r;
	}
}

static int qmp_send(struct qmp_conn *q, const char *command, const char *args_json,
		    struct error *err)
{
	char line[8192];
	int n = args_json
			? snprintf(line, sizeof(line), "{\"execute\":\"%s\",\"arguments\":%s}\r\n",
				   command, args_json)
			: snprintf(line, sizeof(line), "{\"execute\":\"%s\"}\r\n", command);

	if (n < 0 || (size_t)n >= sizeof(line))
		return error_set(err, -EINVAL, "qmp: command too long");
	if (send(q->fd, line, (size_t)n, MSG_NOSIGNAL) != n)
		return error_set_errno(err, -errno, "qmp: send %s", command);
	return qmp_reply(q, command, err);
}

int qmp_client_execute(const char *path, const char *command, const char *args_json, int timeout_ms,
		       struct error *err)
{
	struct sockaddr_un addr;
	_cleanup_free_ struct qmp_conn *q = malloc(sizeof(*q));
	_cleanup_close_ int fd = -1, dirfd = -1;
	int r;

	if (!q)
		return error_set(err, -ENOMEM, "out of memory");
	r = unix_addr_fill(&addr, path, &dirfd);
	if (r < 0)
		return error_set_errno(err, r, "qmp: socket path %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_set_errno(err, -errno, "qmp: socket");
	q->fd = fd;
	q->len = 0;
	q->timeout_ms = timeout_ms;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return error_set_errno(err, -errno, "qmp: cannot connect to %s", path);
	r = qmp_read_line(q, q->line, sizeof(q->line));
	if (r < 0)
		return error_set_errno(err, r, "qmp: no greeting on %s", path);
	r = qmp_send(q, "qmp_capabilities", NULL, err);
	return r ?: qmp_send(q, command, args_json, err);
}

int qmp_client_command(const char *path, const char *command, int timeout_ms, struct error *err)
{
	return qmp_client_execute(path, command, NULL, timeout_ms, err);
}
