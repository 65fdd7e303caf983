/*
 * FREEZE (protocol 1.3, docs/agent-protocol.md): a pod member's pause and resume. The pod's
 * VM keeps running, so the container is stopped with the cgroup v2 freezer instead of the
 * vCPUs: the agent writes cgroup.freeze and answers once cgroup.events says "frozen" has the
 * value asked for. Freezing is not instantaneous (every task must reach the freezer, which is
 * slow in a guest whose kernel is interpreted), so the reply is asynchronous: an inotify watch
 * on cgroup.events (the kernel notifies a change of "frozen") joins the epoll loop, and a
 * deadline of AGENT_FREEZE_TIMEOUT_MS bounds the wait. A freeze that does not complete by then
 * (a task stuck in uninterruptible sleep) is undone and answered ETIMEDOUT, so the host never
 * believes in a pause that did not happen. One FREEZE waits per container: a later one
 * supersedes it (the earlier is answered ECANCELED).
 *
 * While frozen, EXEC is EBUSY (as runc refuses exec in a paused container), and so is START,
 * whose process could not run; SIGNAL works (SIGKILL ends a frozen task in cgroup v2), and a
 * forced DELETE kills, then thaws.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "agent_internal.h"

static void freeze_reply(struct agent *a, struct container *c, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void freeze_unwatch(struct agent *a, struct container *c)
{
	if (c->freeze_w.fd >= 0) {
		agent_watch_del(a, &c->freeze_w, &c->freeze_w_events);
		close(c->freeze_w.fd);
	}
	c->freeze_w.fd = -1;
	c->freeze_pending = false;
}

/* Answer the pending FREEZE of c (e: 0 or a positive errno) and stop waiting. */
static void freeze_reply(struct agent *a, struct container *c, int e, const char *fmt, ...)
{
	struct agent_msg req = { .type = AGENT_FREEZE, .id = c->freeze_id };
	struct agent_msg r = { .type = AGENT_FREEZE,
			       .flags = AGENT_FLAG_REPLY,
			       .id = c->freeze_id };
	struct ctl_conn *conn = c->freeze_conn;
	char msg[AGENT_MAX_ERROR_MSG];
	va_list ap;

	freeze_unwatch(a, c);
	c->freeze_conn = NULL;
	if (!conn)
		return; /* the host went away: the cgroup is as the last FREEZE left it */
	if (!e)
		return ctl_send(a, conn, &r);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_send_error(a, conn, &req, e, "%s", msg);
}

/* cgroup.events agrees with what was asked: answer. Called on each change and at the end. */
static bool freeze_check(struct agent *a, struct container *c)
{
	int now = cgroup_frozen(c->cgroup);

	if (now < 0 || now != (int)c->frozen)
		return false;
	freeze_reply(a, c, 0, "%s", "");
	return true;
}

static void freeze_ready(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct container *c = container_of(w, struct container, freeze_w);
	char buf[4096];

	(void)events;
	while (read(w->fd, buf, sizeof(buf)) > 0)
		;
	freeze_check(a, c);
}

void freeze_cancel(struct agent *a, struct container *c, const char *why)
{
	if (c->freeze_pending)
		freeze_reply(a, c, ECANCELED, "FREEZE: %s: %s", c->id, why);
	freeze_unwatch(a, c);
}

/* Why c cannot be frozen now: 0, or a positive errno with the reason in err. */
static int freeze_refusal(struct agent *a, struct container *c, bool frozen, char *err,
			  size_t err_len)
{
	struct process *init = proc_find(a, c->id, "");

	for (struct process *p = a->procs; p; p = p->next) {
		if (strcmp(p->container_id, c->id) || p->state != PROC_SETUP)
			continue;
		/* A task frozen half-way through its set-up would hold up its CREATE or EXEC. */
		snprintf(err, err_len, "FREEZE: %s: %s%s is being set up", c->id,
			 p->exec_id[0] ? "exec " : "the container", p->exec_id);
		return EBUSY;
	}
	if (frozen && (!init || (init->state != PROC_CREATED && init->state != PROC_RUNNING))) {
		snprintf(err, err_len, "FREEZE: %s is not running", c->id);
		return ESRCH;
	}
	return 0;
}

static int freeze_watch(struct agent *a, struct container *c)
{
	char path[AGENT_MAX_PATH + 32];

	snprintf(path, sizeof(path), "%s/cgroup.events", c->cgroup);
	c->freeze_w = (struct agent_watch){ inotify_init1(IN_NONBLOCK | IN_CLOEXEC), freeze_ready };
	c->freeze_w_events = 0;
	if (c->freeze_w.fd < 0)
		return -errno;
	if (inotify_add_watch(c->freeze_w.fd, path, IN_MODIFY) < 0 ||
	    agent_watch_set(a, &c->freeze_w, EPOLLIN, &c->freeze_w_events) < 0) {
		int e = -errno;

		close(c->freeze_w.fd);
		c->freeze_w.fd = -1;
		return e;
	}
	return 0;
}

void freeze_do(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m)
{
	const struct agent_freeze *f = &m->u.freeze;
	struct container *c = container_find(a, f->container_id);
	char err[AGENT_MAX_ERROR_MSG];
	int r;

	if (f->frozen > 1)
		return ctl_send_error(a, conn, m, EINVAL, "FREEZE: frozen %u: must be 0 or 1",
				      f->frozen);
	if (!c)
		return ctl_send_error(a, conn, m, ENOENT, "FREEZE: no container %s",
				      f->container_id);
	if (!c->cgroup)
		return ctl_send_error(a, conn, m, EOPNOTSUPP,
				      "FREEZE: %s has no cgroup (no cgroup v2 in this guest)",
				      c->id);
	r = freeze_refusal(a, c, f->frozen, err, sizeof(err));
	if (r)
		return ctl_send_error(a, conn, m, r, "%s", err);
	freeze_cancel(a, c, "superseded by a later FREEZE");
	if (!ctl_is_open(a, conn))
		return; /* that answer dropped this very connection: the request went with it */
	r = cgroup_freeze(c->cgroup, f->frozen);
	if (r == -ENOENT)
		return ctl_send_error(a, conn, m, EOPNOTSUPP,
				      "FREEZE: %s: no cgroup.freeze (the freezer needs Linux 5.2)",
				      c->id);
	if (r < 0)
		return ctl_send_error(a, conn, m, -r, "FREEZE: %s: write cgroup.freeze: %s", c->id,
				      strerror(-r));
	c->frozen = f->frozen;
	c->freeze_pending = true;
	c->freeze_conn = conn;
	c->freeze_id = m->id;
	c->freeze_deadline_ms = agent_now_ms() + AGENT_FREEZE_TIMEOUT_MS;
	/* Watch first, then look: a change between the two cannot be missed. */
	r = freeze_watch(a, c);
	if (r < 0 && !freeze_check(a, c)) {
		if (c->frozen) {
			cgroup_freeze(c->cgroup, false);
			c->frozen = false;
		}
		freeze_reply(a, c, -r, "FREEZE: %s: watch cgroup.events: %s", c->id, strerror(-r));
		return;
	}
	if (r == 0)
		freeze_check(a, c);
}

void freeze_due(struct agent *a, int64_t now)
{
	for (struct container *c = a->containers; c; c = c->next) {
		if (!c->freeze_pending || c->freeze_deadline_ms > now || freeze_check(a, c))
			continue;
		if (!c->frozen) {
			freeze_reply(a, c, ETIMEDOUT, "FREEZE: %s: still frozen after %d ms", c->id,
				     AGENT_FREEZE_TIMEOUT_MS);
			continue;
		}
		/* Not a pause the host can rely on: undo it. */
		cgroup_freeze(c->cgroup, false);
		c->frozen = false;
		freeze_reply(a, c, ETIMEDOUT,
			     "FREEZE: %s: not frozen after %d ms (a task in uninterruptible "
			     "sleep?): thawed again",
			     c->id, AGENT_FREEZE_TIMEOUT_MS);
	}
}

int64_t freeze_next_deadline(struct agent *a)
{
	int64_t next = -1;

	for (struct container *c = a->containers; c; c = c->next)
		if (c->freeze_pending && (next < 0 || c->freeze_deadline_ms < next))
			next = c->freeze_deadline_ms;
	return next;
}

void freeze_forget_conn(struct agent *a, struct ctl_conn *conn)
{
	for (struct container *c = a->containers; c; c = c->next)
		if (c->freeze_conn == conn)
			c->freeze_conn = NULL; /* the freeze goes on, and so does its bound */
}
