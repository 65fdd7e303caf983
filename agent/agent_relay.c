/*
 * The stdio copy loops (docs/agent-protocol.md "stdio"): one relay per stream and direction,
 * from a process pipe or pty master to its host connection, or (stdin) the other way. A relay
 * holds at most AGENT_RELAY_BUF bytes: it stops reading its source while the buffer is full
 * and stops waiting to write while it is empty, so a host that does not read stalls only that
 * stream and, through the pipe, only that process. Each relay owns its two fds (a pty or a
 * bidirectional connection is dup'ed per direction, as epoll wants one registration per fd).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_internal.h"

static void relay_src_ready(struct agent *a, struct agent_watch *w, uint32_t events);
static void relay_dst_ready(struct agent *a, struct agent_watch *w, uint32_t events);

struct relay *relay_new(struct agent *a, struct process *p, int src, int dst, bool to_process)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (!r || !(r->buf = malloc(AGENT_RELAY_BUF))) {
		free(r);
		close(src);
		close(dst);
		return NULL;
	}
	r->src_w = (struct agent_watch){ src, relay_src_ready };
	r->dst_w = (struct agent_watch){ dst, relay_dst_ready };
	r->to_process = to_process;
	r->p = p;
	relay_pump(a, r);
	return r;
}

/* Source finished and everything read was delivered (or can never be): end this direction. */
static void relay_finish(struct agent *a, struct relay *r)
{
	agent_watch_del(a, &r->src_w, &r->src_events);
	agent_watch_del(a, &r->dst_w, &r->dst_events);
	if (r->src_w.fd >= 0)
		close(r->src_w.fd);
	if (r->dst_w.fd >= 0) {
		/* The host's connection: an orderly end of stream, even if a dup stays open. */
		if (!r->to_process)
			shutdown(r->dst_w.fd, SHUT_WR);
		close(r->dst_w.fd);
	}
	r->src_w.fd = r->dst_w.fd = -1;
	r->done = true;
	if (r->p)
		proc_check_report(a, r->p);
}

static void relay_read(struct relay *r)
{
	ssize_t n = read(r->src_w.fd, r->buf + r->len, AGENT_RELAY_BUF - r->len);

	if (n > 0)
		r->len += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		r->src_eof = true; /* EIO on a pty master: the last slave fd closed */
}

static void relay_write(struct relay *r)
{
	ssize_t n;

	if (r->dst_dead) {
		r->off = r->len = 0; /* nobody listens: drain, so the process never blocks */
		return;
	}
	n = write(r->dst_w.fd, r->buf + r->off, r->len - r->off);
	if (n > 0) {
		r->off += (size_t)n;
		if (r->off == r->len)
			r->off = r->len = 0;
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		r->dst_dead = true;
		r->off = r->len = 0;
	}
}

void relay_pump(struct agent *a, struct relay *r)
{
	uint32_t want_src, want_dst;

	if (r->done)
		return;
	for (int i = 0; i < 64; i++) {
		size_t before = r->len - r->off;
		bool eof = r->src_eof;

		if (!r->src_eof && r->len < AGENT_RELAY_BUF)
			relay_read(r);
		if (r->len > r->off || r->dst_dead)
			relay_write(r);
		if (before == r->len - r->off && eof == r->src_eof)
			break;
	}
	/* stdin whose process closed its end: nothing more to do. */
	if ((r->src_eof && r->len == r->off) || (r->to_process && r->dst_dead)) {
		relay_finish(a, r);
		return;
	}
	want_src = (!r->src_eof && r->len < AGENT_RELAY_BUF) ? EPOLLIN : 0;
	want_dst = (r->len > r->off && !r->dst_dead) ? EPOLLOUT : 0;
	if (agent_watch_set(a, &r->src_w, want_src, &r->src_events) < 0 ||
	    agent_watch_set(a, &r->dst_w, want_dst, &r->dst_events) < 0)
		relay_finish(a, r);
}

static void relay_src_ready(struct agent *a, struct agent_watch *w, uint32_t events)
{
	(void)events;
	relay_pump(a, (struct relay *)((char *)w - offsetof(struct relay, src_w)));
}

static void relay_dst_ready(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct relay *r = (struct relay *)((char *)w - offsetof(struct relay, dst_w));

	if (events & (EPOLLERR | EPOLLHUP))
		r->dst_dead = true;
	relay_pump(a, r);
}

void relay_free(struct agent *a, struct relay *r)
{
	if (!r)
		return;
	r->p = NULL;
	if (!r->done)
		relay_finish(a, r);
	free(r->buf);
	free(r);
}
