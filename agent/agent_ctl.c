/*
 * The control port (docs/agent-protocol.md): up to AGENT_MAX_CONTROL connections at once
 * (the CLI and the shim may both talk; a further one replaces the oldest, never one that sent
 * CREATE: that is the host's monitor, which waits for the init's exit on it). Each one shakes
 * hands with HELLO first (anything else: EPROTO), then sends requests that are dispatched
 * here. Replies and events are queued on the connection and written without blocking the
 * loop; a host that stops reading past AGENT_CTL_MAX_BACKLOG is dropped (exit records stay
 * until ACK_EXIT, so it loses nothing but the connection). Processes outlive connections.
 */
#include <ctype.h>
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
	freeze_forget_conn(a, c);
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

bool ctl_is_open(struct agent *a, const struct ctl_conn *c)
{
	for (unsigned int i = 0; i < AGENT_MAX_CONTROL; i++)
		if (a->ctl[i] == c)
			return true;
	return false;
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

/* A container id names a directory and a cgroup: [A-Za-z0-9_.-], not "." or "..". */
static bool id_valid(const char *id)
{
	if (!id[0] || !strcmp(id, ".") || !strcmp(id, ".."))
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
			return false;
	return true;
}

static int create_check(const struct agent_create *cr, char *err, size_t err_len)
{
	switch (cr->rootfs_kind) {
	case AGENT_ROOTFS_VIRTIOFS:
		if (cr->rootfs_source[0])
			return 0;
		snprintf(err, err_len, "rootfs_source: a virtio-fs tag is needed");
		return -EINVAL;
	case AGENT_ROOTFS_BLOCK:
		if (cr->rootfs_source[0] == '/' && cr->rootfs_fstype[0])
			return 0;
		snprintf(err, err_len,
			 "rootfs_source and rootfs_fstype: a block device "
			 "path and its filesystem type are needed");
		return -EINVAL;
	case AGENT_ROOTFS_DIR:
		if (cr->rootfs_source[0] == '/')
			return 0;
		snprintf(err, err_len, "rootfs_source: an absolute directory is needed");
		return -EINVAL;
	default:
		snprintf(err, err_len,
			 "rootfs_kind %u: unknown (1 virtio-fs, 2 block, 3 "
			 "directory)",
			 cr->rootfs_kind);
		return -EINVAL;
	}
}

/* CREATE: the container's config and its mounts, its directory and cgroup, then the init. */
static int create_container(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m,
			    struct process_spec *spec, char *err, size_t err_len)
{
	const struct agent_create *cr = &m->u.create;
	struct spawn_request req = { .spec = spec, .create = true, .create_req = cr };
	struct container *c;
	int r = create_check(cr, err, err_len);

	if (r < 0)
		return r;
	req.mounts = calloc(cr->mounts.n ? cr->mounts.n : 1, sizeof(*req.mounts));
	if (!req.mounts || !(c = container_new(a, cr->container_id))) {
		free(req.mounts);
		return -ENOMEM;
	}
	req.c = c;
	req.hook = a->setup_hook;
	r = config_parse(cr->oci_config, &c->spec, err, err_len);
	if (r == 0)
		r = config_resolve_containers(a, &c->spec, err, err_len);
	if (r == 0 && !a->dry_run)
		config_lend_vm_network(a, &c->spec);
	for (uint32_t i = 0; r == 0 && i < cr->mounts.n; i++, req.nmounts++)
		r = mount_parse(&cr->mounts.v[i], &req.mounts[i], err, err_len);
	if (r == 0 && a->dry_run) {
		snprintf(err, err_len, "dry run: nothing is started");
		r = -EPERM;
	}
	agent_trace("create: config parsed");
	if (r == 0)
		r = setup_container_dir(a, c->id, &c->rootfs_dir, err, err_len);
	if (r == 0)
		r = cgroup_create(a, c, err, err_len);
	agent_trace("create: directory and cgroup");
	/* The child has its own copy of the request: the reply follows when it is set up. */
	if (r == 0)
		r = proc_spawn(a, &req, "", cr->stdio, conn, m, err, err_len);
	mount_spec_free(req.mounts, req.nmounts);
	if (r < 0)
		container_free(a, c);
	return r;
}

/* CREATE and EXEC: parse the process, check limits, spawn; the reply comes when it is set up. */
static void do_spawn(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	bool create = m->type == AGENT_CREATE;
	const char *cid = create ? m->u.create.container_id : m->u.exec.container_id;
	const char *eid = create ? "" : m->u.exec.exec_id;
	uint32_t stdio = create ? m->u.create.stdio : m->u.exec.stdio;
	struct process_spec spec;
	struct process *init = proc_find(a, cid, "");
	char err[AGENT_MAX_ERROR_MSG] = "";
	int r;

	if (!cid[0] || (!create && !eid[0]))
		return ctl_send_error(a, c, m, EINVAL, "%s: empty container or exec id",
				      agent_type_name(m->type));
	if (create && !id_valid(cid))
		return ctl_send_error(a, c, m, EINVAL,
				      "container id %s: use letters, digits, '_', '.', '-'", cid);
	if (proc_find(a, cid, eid) || (create && container_find(a, cid)))
		return ctl_send_error(a, c, m, EEXIST, "%s %s/%s: exists", agent_type_name(m->type),
				      cid, eid);
	if (!create && (!container_find(a, cid) || !init))
		return ctl_send_error(a, c, m, ENOENT, "EXEC: no container %s", cid);
	if (!create && init->state == PROC_SETUP)
		return ctl_send_error(a, c, m, EBUSY, "EXEC: container %s is being set up", cid);
	if (!create && init->state != PROC_RUNNING && init->state != PROC_CREATED)
		return ctl_send_error(a, c, m, ESRCH, "EXEC: container %s is not running", cid);
	if (!create && container_find(a, cid)->frozen)
		return ctl_send_error(a, c, m, EBUSY,
				      "EXEC: container %s is paused (frozen): resume it first",
				      cid);
	if (a->nexits >= AGENT_MAX_EXITS)
		return ctl_send_error(a, c, m, EAGAIN, "%d exit records not acknowledged",
				      AGENT_MAX_EXITS);
	r = spec_parse_process(create ? m->u.create.oci_config : m->u.exec.process, create, &spec,
			       err, sizeof(err));
	if (r == 0 && create) {
		r = create_container(a, c, m, &spec, err, sizeof(err));
		c->creator |= r == 0;
	} else if (r == 0) {
		struct spawn_request req = { .c = container_find(a, cid), .spec = &spec };

		r = proc_spawn(a, &req, eid, stdio, c, m, err, sizeof(err));
	}
	spec_free(&spec);
	if (r < 0)
		ctl_send_error(a, c, m, -r, "%s", err[0] ? err : strerror(-r));
}

static void do_start(struct agent *a, struct ctl_conn *c, const struct agent_msg *m)
{
	struct process *p = proc_find(a, m->u.container.container_id, "");
	struct container *ct = container_find(a, m->u.container.container_id);
	int r;

	if (!p)
		return ctl_send_error(a, c, m, ENOENT, "START: no container %s",
				      m->u.container.container_id);
	if (p->state == PROC_SETUP)
		return ctl_send_error(a, c, m, EBUSY, "START: %s is still being set up",
				      m->u.container.container_id);
	if (p->state != PROC_CREATED)
		return ctl_send_error(a, c, m, EALREADY, "START: %s already started",
				      m->u.container.container_id);
	if (ct && ct->frozen)
		return ctl_send_error(a, c, m, EBUSY,
				      "START: container %s is paused (frozen): resume it first",
				      m->u.container.container_id);
	r = proc_start(a, p, c, m);
	if (r < 0)
		return ctl_send_error(a, c, m, -r, "START: %s", strerror(-r));
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
	/* ALL: every process in the container's cgroup, not only those the agent started. */
	struct container *ct = all ? container_find(a, s->container_id) : NULL;
	pid_t *pids = NULL;
	size_t n = 0;

	if (sent && ct && ct->cgroup && cgroup_pids(ct->cgroup, &pids, &n) == 0)
		for (size_t i = 0; i < n; i++)
			kill(pids[i], (int)s->signal);
	free(pids);
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

	if (!p || p->state == PROC_SETUP)
		return ctl_send_error(a, c, m, ENOENT, "WAIT: no process %s/%s%s",
				      m->u.process.container_id, m->u.process.exec_id,
				      p ? " yet: it is being set up" : "");
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

	struct container *ct = container_find(a, m->u.process.container_id);

	if (!p || p->state != PROC_EXITED)
		return ctl_send_error(a, c, m, ENOENT, "ACK_EXIT: no exit record for %s/%s",
				      m->u.process.container_id, m->u.process.exec_id);
	/* The init's record acknowledged: the container is gone (its cgroup and directory). */
	if (!p->exec_id[0] && ct)
		container_free(a, ct); /* may answer a pending FREEZE, and so drop c */
	proc_free(a, p);
	if (ctl_is_open(a, c))
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
		if (p->state == PROC_CREATED || p->state == PROC_RUNNING ||
		    p->state == PROC_SETUP) {
			running = true;
			/* FORCE during a set-up: its request fails as the child dies. */
			if ((m->u.del.flags & AGENT_DELETE_FORCE) && p->pid > 0)
				kill(p->pid, SIGKILL);
			if ((m->u.del.flags & AGENT_DELETE_FORCE) && p->helper > 0)
				kill(p->helper, SIGKILL);
		}
	}
	/* FORCE: also what the container's processes started, every process of its cgroup. */
	struct container *ct = container_find(a, cid);
	pid_t *pids = NULL;
	size_t n = 0;

	if ((m->u.del.flags & AGENT_DELETE_FORCE) && ct && ct->cgroup &&
	    cgroup_pids(ct->cgroup, &pids, &n) == 0)
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
	free(pids);
	/* A paused container dies too (SIGKILL reaches frozen tasks); then nothing stays frozen. */
	if ((m->u.del.flags & AGENT_DELETE_FORCE) && ct && ct->frozen) {
		freeze_cancel(a, ct, "deleted");
		cgroup_freeze(ct->cgroup, false);
		ct->frozen = false;
		if (!ctl_is_open(a, c))
			return; /* the cancelled FREEZE's answer dropped this very connection */
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
	agent_trace("request %s", agent_type_name(m->type));
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
	case AGENT_STATS:
		return container_do_stats(a, c, m);
	case AGENT_UPDATE:
		return container_do_update(a, c, m);
	case AGENT_SET_TIME:
		return container_do_set_time(a, c, m);
	case AGENT_ADD_ENTROPY:
		return container_do_add_entropy(a, c, m);
	case AGENT_MOUNT_SHARE:
		return share_do_mount(a, c, m);
	case AGENT_FREEZE:
		return freeze_do(a, c, m);
	case AGENT_NETWORK:
		return net_do_network(a, c, m);
	case AGENT_SHUTDOWN:
		/*
		 * In the guest the reply says the guest holds nothing the host would lose: every
		 * process the agent started is dead and the filesystems are synced (mmap'd
		 * writes, virtio-fs, virtio-blk flushed), so the host may end the VM without
		 * waiting for our power-off (runtime/monitor.c).
		 */
		if (a->guest) {
			proc_kill_all(a);
			sync();
			agent_trace("synced");
		}
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
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	if (fd >= 0)
		ctl_adopt(a, fd);
}

int ctl_adopt(struct agent *a, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ctl_conn *c;
	unsigned int slot = 0;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->w = (struct agent_watch){ fd, ctl_ready };
	agent_reader_init(&c->reader, AGENT_MAX_PAYLOAD);
	ev.data.ptr = &c->w;
	/*
	 * All slots taken: the newest host wins over the oldest (e.g. a dead, half-open one), but
	 * not over a creator: losing the monitor's connection would end the container's VM.
	 */
	while (slot < AGENT_MAX_CONTROL && a->ctl[slot])
		slot++;
	if (slot == AGENT_MAX_CONTROL) {
		for (unsigned int i = 0; i < AGENT_MAX_CONTROL; i++)
			if (!a->ctl[i]->creator &&
			    (slot == AGENT_MAX_CONTROL || a->ctl[i]->seq < a->ctl[slot]->seq))
				slot = i;
		if (slot == AGENT_MAX_CONTROL) {
			agent_reader_destroy(&c->reader);
			free(c);
			close(fd);
			return -EBUSY;
		}
		ctl_close(a, a->ctl[slot]);
	}
	c->seq = a->ctl_seq++;
	a->ctl[slot] = c;
	epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}
