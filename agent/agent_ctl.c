/*
 * The control port (docs/agent-protocol.md): up to AGENT_MAX_CONTROL connections at once
 * (the CLI and the shim may both talk; a further one replaces the oldest). Each one shakes
 * hands with HELLO first (anything else: EPROTO), then sends requests that are dispatched
 * here. Replies and events are queued on the connection and written without blocking the
 * loop; a host that stops reading past AGENT_CTL_MAX_BACKLOG is dropped (exit records stay
 * until ACK_EXIT, so it loses nothing but the connection). Processes outlive connections.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "agent_internal.h"

#define AGENT_SOFTWARE "stratus-agent " STRATUS_VERSION

static void ctl_ready(struct agent *a, struct agent_watch *w, uint32_t events);

static void ctl_close(struct agent *a, struct ctl_conn *c)
{
	for (unsigned int i = 0; i < AGENT_MAX_CONTROL; i++)
		if (a->ctl[i] == c)
			a->ctl[i] = NULL;
	proc_forget_conn(a, c);
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->w.fd, NULL);
	close(c->w.fd);
	agent_reader_destroy(&c->reader);
	agent_buf_free(&c->out);
	free(c);
}

void ctl_close_all(struct agent *a)
{
	for (unsigned int i = 0; i < AGENT_MAX_CONTROL; i++)
		if (a->ctl[i])
			ctl_close(a, a->ctl[i]);
}

static void ctl_update(struct agent *a, struct ctl_conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->w };

	if (c->out_off < c->out.len)
		ev.events |= EPOLLOUT;
	epoll_ctl(a->epfd, EPOLL_CTL_MOD, c->w.fd, &ev);
}

/* Write what is queued: false if the connection is dead. */
static bool ctl_flush(struct ctl_conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->w.fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->out_off += (size_t)n;
	}
	c->out.len = c->out_off = 0;
	return true;
}

static void ctl_queue(struct agent *a, struct ctl_conn *c, struct agent_buf *frame)
{
	bool ok = true;

	if (c->out.len - c->out_off + frame->len > AGENT_CTL_MAX_BACKLOG) {
		ok = false;
	} else {
		uint8_t *d = realloc(c->out.data, c->out.len + frame->len);

		if (!d) {
			ok = false;
		} else {
			memcpy(d + c->out.len, frame->data, frame->len);
			c->out.data = d;
			c->out.len += frame->len;
			c->out.cap = c->out.len;
			ok = ctl_flush(c);
		}
	}
	agent_buf_free(frame);
	if (ok)
		ctl_update(a, c);
	else
		ctl_close(a, c);
}

void ctl_send(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	struct agent_buf b = { 0 };

	if (agent_msg_encode(m, &b) < 0) {
		/* Our own message past a cap: say so rather than go silent. */
		agent_encode_error(m->type, m->id, EIO, "agent: reply could not be encoded", &b);
	}
	ctl_queue(a, c, &b);
}

void ctl_send_error(struct agent *a, struct ctl_conn *c, const struct agent_msg *req, int e,
		    const char *fmt, ...)
{
	struct agent_buf b = { 0 };
	char msg[AGENT_MAX_ERROR_MSG];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (agent_encode_error(req->type, req->id, e, msg, &b) == 0)
		ctl_queue(a, c, &b);
}

void ctl_broadcast(struct agent *a, const struct agent_msg *m)
{
	for (unsigned int i = 0; i < AGENT_MAX_CONTROL; i++)
		if (a->ctl[i] && a->ctl[i]->hello_done)
			ctl_send(a, a->ctl[i], m);
}

static void reply_empty(struct agent *a, struct ctl_conn *c, const struct agent_msg *req)
{
	struct agent_msg r = { .type = req->type, .flags = AGENT_FLAG_REPLY, .id = req->id };

	ctl_send(a, c, &r);
}

static void reply_pid(struct agent *a, struct ctl_conn *c, const struct agent_msg *req, pid_t pid)
{
	struct agent_msg r = { .type = req->type, .flags = AGENT_FLAG_REPLY, .id = req->id };

	r.u.pid.pid = (uint32_t)pid;
	ctl_send(a, c, &r);
}

static void do_hello(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	struct agent_msg r = { .type = AGENT_HELLO, .flags = AGENT_FLAG_REPLY, .id = m->id };
	char msg[AGENT_MAX_ERROR_MSG];

	if (agent_version_check(&m->u.hello, msg, sizeof(msg)) < 0) {
		ctl_send_error(a, c, m, EPROTONOSUPPORT, "%s", msg);
		return;
	}
	r.u.hello = (struct agent_hello){ AGENT_PROTO_MAJOR, AGENT_PROTO_MINOR,
					  (char *)AGENT_SOFTWARE };
	c->hello_done = true;
	ctl_send(a, c, &r);
}

/* CREATE and EXEC: parse the process, check limits, spawn. */
static void do_spawn(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	bool create = m->type == AGENT_CREATE;
	const char *cid = create ? m->u.create.container_id : m->u.exec.container_id;
	const char *eid = create ? "" : m->u.exec.exec_id;
	uint32_t stdio = create ? m->u.create.stdio : m->u.exec.stdio;
	struct process_spec spec;
	struct process *p;
	char err[AGENT_MAX_ERROR_MSG] = "";
	int r;

	if (!cid[0] || (!create && !eid[0]))
		return ctl_send_error(a, c, m, EINVAL, "%s: empty container or exec id",
				      agent_type_name(m->type));
	if (create && m->u.create.rootfs_kind != 0 && strcmp(m->u.create.rootfs_source, "/"))
		return ctl_send_error(a, c, m, EOPNOTSUPP,
				      "CREATE: this agent runs processes without a rootfs yet");
	if (proc_find(a, cid, eid))
		return ctl_send_error(a, c, m, EEXIST, "%s %s/%s: exists", agent_type_name(m->type),
				      cid, eid);
	if (!create && !proc_find(a, cid, ""))
		return ctl_send_error(a, c, m, ENOENT, "EXEC: no container %s", cid);
	if (a->nexits >= AGENT_MAX_EXITS)
		return ctl_send_error(a, c, m, EAGAIN, "%d exit records not acknowledged",
				      AGENT_MAX_EXITS);
	r = spec_parse_process(create ? m->u.create.oci_config : m->u.exec.process, create, &spec,
			       err, sizeof(err));
	if (r == 0)
		r = proc_spawn(a, cid, eid, stdio, &spec, !create, &p, err, sizeof(err));
	spec_free(&spec);
	if (r < 0)
		return ctl_send_error(a, c, m, -r, "%s", err[0] ? err : strerror(-r));
	reply_pid(a, c, m, p->pid);
}

static void do_start(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	struct process *p = proc_find(a, m->u.container.container_id, "");

	if (!p)
		return ctl_send_error(a, c, m, ENOENT, "START: no container %s",
				      m->u.container.container_id);
	if (p->state != PROC_CREATED)
		return ctl_send_error(a, c, m, EALREADY, "START: %s already started",
				      m->u.container.container_id);
	proc_start(a, p);
	reply_empty(a, c, m);
}

static void do_signal(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	const struct agent_signal *s = &m->u.signal;
	bool all = s->flags & AGENT_SIGNAL_ALL;
	int sent = 0;

	if (s->signal < 1 || s->signal > 64 || (s->flags & ~AGENT_SIGNAL_ALL))
		return ctl_send_error(a, c, m, EINVAL, "SIGNAL: bad signal %u or flags %#x",
				      s->signal, s->flags);
	for (struct process *p = a->procs; p; p = p->next) {
		if (strcmp(p->container_id, s->container_id) ||
		    (!all && strcmp(p->exec_id, s->exec_id)))
			continue;
		if ((p->state == PROC_RUNNING || p->state == PROC_CREATED) &&
		    kill(p->pid, (int)s->signal) == 0)
			sent++;
	}
	if (!sent)
		return ctl_send_error(a, c, m, ESRCH, "SIGNAL: no running process %s/%s",
				      s->container_id, s->exec_id);
	reply_empty(a, c, m);
}

static void do_wait(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	struct process *p = proc_find(a, m->u.process.container_id, m->u.process.exec_id);
	struct agent_msg r = { .type = AGENT_WAIT, .flags = AGENT_FLAG_REPLY, .id = m->id };
	struct waiter *w;

	if (!p)
		return ctl_send_error(a, c, m, ENOENT, "WAIT: no process %s/%s",
				      m->u.process.container_id, m->u.process.exec_id);
	if (p->state == PROC_EXITED) {
		r.u.exit = p->exit;
		return ctl_send(a, c, &r);
	}
	w = realloc(p->waiters, (p->nwaiters + 1) * sizeof(*w));
	if (!w)
		return ctl_send_error(a, c, m, ENOMEM, "WAIT: out of memory");
	p->waiters = w;
	p->waiters[p->nwaiters++] = (struct waiter){ c, m->id };
}

static void do_ack_exit(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	struct process *p = proc_find(a, m->u.process.container_id, m->u.process.exec_id);

	if (!p || p->state != PROC_EXITED)
		return ctl_send_error(a, c, m, ENOENT, "ACK_EXIT: no exit record for %s/%s",
				      m->u.process.container_id, m->u.process.exec_id);
	proc_free(a, p);
	reply_empty(a, c, m);
}

static void do_list_exits(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	struct agent_msg r = { .type = AGENT_LIST_EXITS, .flags = AGENT_FLAG_REPLY, .id = m->id };
	struct agent_exit *v = calloc(a->nexits ? a->nexits : 1, sizeof(*v));
	uint32_t n = 0;

	if (!v)
		return ctl_send_error(a, c, m, ENOMEM, "LIST_EXITS: out of memory");
	for (struct process *p = a->procs; p && n < a->nexits; p = p->next)
		if (p->state == PROC_EXITED)
			v[n++] = p->exit;
	r.u.exits.exits.v = v;
	r.u.exits.exits.n = n;
	ctl_send(a, c, &r);
	free(v);
}

static void do_resize(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	const struct agent_resize *rs = &m->u.resize;
	struct process *p = proc_find(a, rs->container_id, rs->exec_id);
	struct winsize ws = { .ws_row = (unsigned short)rs->rows,
			      .ws_col = (unsigned short)rs->cols };

	if (!p)
		return ctl_send_error(a, c, m, ENOENT, "RESIZE: no process %s/%s", rs->container_id,
				      rs->exec_id);
	if (p->pty_master < 0)
		return ctl_send_error(a, c, m, ENOTTY, "RESIZE: %s/%s has no terminal",
				      rs->container_id, rs->exec_id);
	if (rs->rows > 65535 || rs->cols > 65535 || ioctl(p->pty_master, TIOCSWINSZ, &ws) < 0)
		return ctl_send_error(a, c, m, EINVAL, "RESIZE: %ux%u refused", rs->rows, rs->cols);
	reply_empty(a, c, m);
}

static void do_ps(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	struct agent_msg r = { .type = AGENT_PS, .flags = AGENT_FLAG_REPLY, .id = m->id };
	int e = proc_ps(a, m->u.container.container_id, &r.u.ps);

	if (e < 0)
		return ctl_send_error(a, c, m, -e, "PS: %s", strerror(-e));
	ctl_send(a, c, &r);
	agent_msg_clear(&r);
}

static void do_delete(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	const char *cid = m->u.del.container_id;
	bool running = false, any = false;

	for (struct process *p = a->procs; p; p = p->next) {
		if (strcmp(p->container_id, cid))
			continue;
		any = true;
		if (p->state == PROC_CREATED || p->state == PROC_RUNNING) {
			running = true;
			if (m->u.del.flags & AGENT_DELETE_FORCE)
				kill(p->pid, SIGKILL);
		}
	}
	if (!any)
		return ctl_send_error(a, c, m, ENOENT, "DELETE: no container %s", cid);
	if (running && !(m->u.del.flags & AGENT_DELETE_FORCE))
		return ctl_send_error(a, c, m, EBUSY, "DELETE: %s is running", cid);
	/* Exit records stay until ACK_EXIT: a forced delete's exits are reported as usual. */
	reply_empty(a, c, m);
}

static void ctl_dispatch(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	if (m->type == AGENT_HELLO)
		return do_hello(a, c, m);
	if (!c->hello_done)
		return ctl_send_error(a, c, m, EPROTO, "handshake first: send HELLO");
	switch (m->type) {
	case AGENT_PING:
		return reply_empty(a, c, m);
	case AGENT_CREATE:
	case AGENT_EXEC:
		return do_spawn(a, c, m);
	case AGENT_START:
		return do_start(a, c, m);
	case AGENT_DELETE:
		return do_delete(a, c, m);
	case AGENT_SIGNAL:
		return do_signal(a, c, m);
	case AGENT_WAIT:
		return do_wait(a, c, m);
	case AGENT_ACK_EXIT:
		return do_ack_exit(a, c, m);
	case AGENT_LIST_EXITS:
		return do_list_exits(a, c, m);
	case AGENT_RESIZE:
		return do_resize(a, c, m);
	case AGENT_PS:
		return do_ps(a, c, m);
	case AGENT_SHUTDOWN:
		reply_empty(a, c, m);
		a->shutdown = true;
		return;
	default:
		return ctl_send_error(a, c, m, EOPNOTSUPP, "%s: not supported by this agent yet",
				      agent_type_name(m->type));
	}
}

/* One complete frame: decode and answer; false if the connection must close. */
static bool ctl_handle_frame(struct agent *a, struct ctl_conn *c)
{
	struct agent_msg m = { 0 };
	int r = agent_reader_take(&c->reader, &m);

	if (r == -ENOMSG)
		ctl_send_error(a, c, &m, EOPNOTSUPP, "unknown message type %#x", m.type);
	else if (r == -E2BIG)
		ctl_send_error(a, c, &m, E2BIG, "%s: a field is over its cap",
			       agent_type_name(m.type));
	else if (r < 0)
		ctl_send_error(a, c, &m, EINVAL, "%s: malformed", agent_type_name(m.type));
	else if (m.flags != 0)
		ctl_send_error(a, c, &m, EINVAL, "%s: the host sends requests only",
			       agent_type_name(m.type));
	else
		ctl_dispatch(a, c, &m);
	agent_msg_clear(&m);
	return r != -ENOMEM;
}

static void ctl_ready(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct ctl_conn *c = (struct ctl_conn *)((char *)w - offsetof(struct ctl_conn, w));

	if ((events & EPOLLOUT) && !ctl_flush(c))
		return ctl_close(a, c);
	if (events & EPOLLOUT)
		ctl_update(a, c);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	/* A bounded number of frames per wake-up keeps one host from starving the loop. */
	for (int i = 0; i < 16; i++) {
		int r = agent_reader_read(&c->reader, c->w.fd);

		if (r == -EAGAIN)
			return;
		if (r != 1)
			return ctl_close(a, c); /* EOF, reset or a framing error: out of sync */
		if (!ctl_handle_frame(a, c))
			return ctl_close(a, c);
		/* The connection may have been dropped while answering. */
		bool alive = false;
		for (unsigned int j = 0; j < AGENT_MAX_CONTROL; j++)
			alive |= a->ctl[j] == c;
		if (!alive)
			return;
	}
}

void ctl_accept(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ctl_conn *c;
	unsigned int slot = 0;
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->w = (struct agent_watch){ fd, ctl_ready };
	agent_reader_init(&c->reader, AGENT_MAX_PAYLOAD);
	ev.data.ptr = &c->w;
	/* All slots taken: the newest host wins over the oldest (e.g. a dead, half-open one). */
	while (slot < AGENT_MAX_CONTROL && a->ctl[slot])
		slot++;
	if (slot == AGENT_MAX_CONTROL) {
		slot = 0;
		for (unsigned int i = 1; i < AGENT_MAX_CONTROL; i++)
			if (a->ctl[i]->seq < a->ctl[slot]->seq)
				slot = i;
		ctl_close(a, a->ctl[slot]);
	}
	c->seq = a->ctl_seq++;
	a->ctl[slot] = c;
	epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev);
}
