/*
 * stdio relays (see relay.h): a poll round over every pipe's source (when its buffer is
 * empty) or destination (when it holds bytes), then at most one read or write per ready fd.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "relay.h"

void relay_init(struct relay *r)
{
	r->n = 0;
}

int relay_add(struct relay *r, int from, int to, bool half_close)
{
	struct relay_pipe *p;

	if (r->n >= RELAY_MAX_PIPES)
		return -ENOSPC;
	p = &r->pipes[r->n];
	memset(p, 0, offsetof(struct relay_pipe, buf));
	p->from = from;
	p->to = to;
	p->half_close = half_close;
	return (int)r->n++;
}

static void pipe_finish(struct relay_pipe *p)
{
	if (p->half_close)
		shutdown(p->to, SHUT_WR);
	p->done = true;
}

static void pipe_read(struct relay_pipe *p)
{
	ssize_t n = read(p->from, p->buf, sizeof(p->buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF, or EIO from a pty whose other side closed: the same to us. */
		p->eof = true;
		pipe_finish(p);
		return;
	}
	p->off = 0;
	p->len = (size_t)n;
}

static void pipe_write(struct relay_pipe *p)
{
	ssize_t n = write(p->to, p->buf + p->off, p->len - p->off);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		/* The reader is gone: nobody will take the rest, stop reading for it. */
		p->len = p->off = 0;
		p->done = true;
		return;
	}
	p->off += (size_t)n;
	if (p->off == p->len)
		p->off = p->len = 0;
}

int relay_step(struct relay *r, struct pollfd *extra, unsigned int n_extra, int timeout_ms)
{
	struct pollfd fds[RELAY_MAX_PIPES + 8];
	int slot[RELAY_MAX_PIPES];
	unsigned int n = 0;

	if (n_extra > 8)
		return -EINVAL;
	for (unsigned int i = 0; i < r->n; i++) {
		struct relay_pipe *p = &r->pipes[i];

		slot[i] = -1;
		if (p->done)
			continue;
		slot[i] = (int)n;
		fds[n].fd = p->len ? p->to : p->from;
		fds[n].events = p->len ? POLLOUT : POLLIN;
		fds[n].revents = 0;
		n++;
	}
	for (unsigned int i = 0; i < n_extra; i++) {
		extra[i].revents = 0;
		fds[n + i] = extra[i];
	}
	if (poll(fds, n + n_extra, timeout_ms) < 0)
		return errno == EINTR ? 0 : -errno;
	for (unsigned int i = 0; i < n_extra; i++)
		extra[i].revents = fds[n + i].revents;
	for (unsigned int i = 0; i < r->n; i++) {
		struct relay_pipe *p = &r->pipes[i];

		if (slot[i] < 0 || !fds[slot[i]].revents)
			continue;
		if (p->len)
			pipe_write(p);
		else
			pipe_read(p);
	}
	return 0;
}
