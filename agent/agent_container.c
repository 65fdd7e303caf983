/*
 * Containers as the agent keeps them (docs/agent-protocol.md): one per CREATE, named by its
 * id, holding the parsed container-level config (namespaces, seccomp filter, ... for its
 * EXECs), its rootfs mountpoint and its cgroup. It lives until the host acknowledges its
 * init's exit (ACK_EXIT) or the agent stops. Also here: the requests that act on a container
 * as a whole (UPDATE, STATS), the guest clock (SET_TIME), fresh entropy for a cloned guest
 * (ADD_ENTROPY), and OOM events: an inotify watch on
 * the cgroup's memory.events, EVENT_OOM whenever its oom_kill counter grows.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/random.h>
#include <yajl/yajl_tree.h>

#include "agent_internal.h"

#define SET_TIME_MIN_NS 946684800000000000ull /* 2000-01-01: anything earlier is a bug */

struct container *container_find(struct agent *a, const char *cid)
{
	for (struct container *c = a->containers; c; c = c->next)
		if (!strcmp(c->id, cid))
			return c;
	return NULL;
}

struct container *container_new(struct agent *a, const char *cid)
{
	struct container *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->id = strdup(cid);
	if (!c->id) {
		free(c);
		return NULL;
	}
	c->oom_w.fd = -1;
	c->freeze_w.fd = -1;
	c->next = a->containers;
	a->containers = c;
	return c;
}

void container_free(struct agent *a, struct container *c)
{
	struct container **pp = &a->containers;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	if (c->oom_w.fd >= 0) {
		agent_watch_del(a, &c->oom_w, &c->oom_w_events);
		close(c->oom_w.fd);
	}
	freeze_cancel(a, c, "the container is gone");
	cgroup_destroy(a, c);
	if (c->rootfs_dir)
		rmdir(c->rootfs_dir); /* the mount lived in the init's namespace only */
	config_free(&c->spec);
	free(c->rootfs_dir);
	free(c->id);
	free(c);
}

static void oom_ready(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct container *c = container_of(w, struct container, oom_w);
	struct agent_msg ev = { .type = AGENT_EVENT_OOM, .flags = AGENT_FLAG_EVENT };
	char buf[4096];
	uint64_t kills;

	(void)events;
	while (read(w->fd, buf, sizeof(buf)) > 0)
		;
	kills = cgroup_oom_kills(c->cgroup);
	if (kills <= c->oom_kill)
		return;
	c->oom_kill = kills;
	ev.u.oom = (struct agent_oom){ c->id, kills };
	ctl_broadcast(a, &ev);
}

/* Watch memory.events: nothing to watch without a memory controller. */
void container_watch_oom(struct agent *a, struct container *c)
{
	char path[AGENT_MAX_PATH + 32];

	if (!c->cgroup)
		return;
	snprintf(path, sizeof(path), "%s/memory.events", c->cgroup);
	c->oom_w = (struct agent_watch){ inotify_init1(IN_NONBLOCK | IN_CLOEXEC), oom_ready };
	if (c->oom_w.fd < 0)
		return;
	if (inotify_add_watch(c->oom_w.fd, path, IN_MODIFY) < 0 ||
	    agent_watch_set(a, &c->oom_w, EPOLLIN, &c->oom_w_events) < 0) {
		close(c->oom_w.fd);
		c->oom_w.fd = -1;
		return;
	}
	c->oom_kill = cgroup_oom_kills(c->cgroup);
}

uint64_t container_oom_kills(struct agent *a, const char *cid)
{
	struct container *c = container_find(a, cid);

	return c && c->cgroup ? cgroup_oom_kills(c->cgroup) : 0;
}

static void reply_empty(struct agent *a, struct ctl_conn *conn, const struct agent_msg *req)
{
	struct agent_msg r = { .type = req->type, .flags = AGENT_FLAG_REPLY, .id = req->id };

	ctl_send(a, conn, &r);
}

void container_do_update(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m)
{
	struct container *c = container_find(a, m->u.update.container_id);
	struct cgroup_limits l;
	char err[AGENT_MAX_ERROR_MSG], yerr[256] = "";
	yajl_val root;
	int r;

	if (!c)
		return ctl_send_error(a, conn, m, ENOENT, "UPDATE: no container %s",
				      m->u.update.container_id);
	if (!c->cgroup)
		return ctl_send_error(a, conn, m, EOPNOTSUPP,
				      "UPDATE: %s has no cgroup (no cgroup v2 in this guest)",
				      c->id);
	root = yajl_tree_parse(m->u.update.resources, yerr, sizeof(yerr));
	if (!root)
		return ctl_send_error(a, conn, m, EINVAL, "UPDATE: resources: invalid JSON: %.200s",
				      yerr);
	r = cgroup_limits_parse(root, "resources", &l, err, sizeof(err));
	yajl_tree_free(root);
	if (r == 0) {
		r = cgroup_apply(c->cgroup, &l, err, sizeof(err));
		cgroup_limits_free(&l);
	}
	if (r < 0)
		return ctl_send_error(a, conn, m, -r, "UPDATE: %s", err);
	reply_empty(a, conn, m);
}

void container_do_stats(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m)
{
	struct agent_msg r = { .type = AGENT_STATS, .flags = AGENT_FLAG_REPLY, .id = m->id };
	struct container *c = container_find(a, m->u.container.container_id);

	if (!c)
		return ctl_send_error(a, conn, m, ENOENT, "STATS: no container %s",
				      m->u.container.container_id);
	if (!c->cgroup)
		return ctl_send_error(a, conn, m, EOPNOTSUPP,
				      "STATS: %s has no cgroup (no cgroup v2 in this guest)",
				      c->id);
	cgroup_stats(c->cgroup, &r.u.stats);
	ctl_send(a, conn, &r);
}

void container_do_set_time(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m)
{
	uint64_t ns = m->u.set_time.realtime_ns;
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	if (ns < SET_TIME_MIN_NS)
		return ctl_send_error(a, conn, m, EINVAL,
				      "SET_TIME: %llu ns is before 2000: refusing such a clock",
				      (unsigned long long)ns);
	if (!a->dry_run && clock_settime(CLOCK_REALTIME, &ts) < 0)
		return ctl_send_error(a, conn, m, errno, "SET_TIME: clock_settime: %s",
				      strerror(errno));
	reply_empty(a, conn, m);
}

/*
 * ADD_ENTROPY: the host's random bytes into the guest's pool, credited with RNDADDENTROPY,
 * then a CRNG reseed, so that clones restored from one snapshot stop sharing their RNG state. Without
 * CAP_SYS_ADMIN (a native test as non-root) the bytes are still mixed in by a write,
 * uncredited. The bytes are wiped from our memory afterwards.
 */
void container_do_add_entropy(struct agent *a, struct ctl_conn *conn, const struct agent_msg *m)
{
	const struct agent_add_entropy *e = &m->u.add_entropy;
	uint32_t storage[(sizeof(struct rand_pool_info) + AGENT_MAX_ENTROPY) / 4 + 1];
	struct rand_pool_info *info = (struct rand_pool_info *)storage;
	int fd, r = 0;

	if (e->data.n == 0 || e->data.n > AGENT_MAX_ENTROPY)
		return ctl_send_error(a, conn, m, EINVAL, "ADD_ENTROPY: %u bytes: send 1 to %d",
				      e->data.n, AGENT_MAX_ENTROPY);
	if (a->dry_run)
		return reply_empty(a, conn, m);
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ctl_send_error(a, conn, m, errno, "ADD_ENTROPY: open /dev/urandom: %s",
				      strerror(errno));
	info->entropy_count = (int)e->data.n * 8;
	info->buf_size = (int)e->data.n;
	memcpy(info->buf, e->data.v, e->data.n);
	if (ioctl(fd, RNDADDENTROPY, info) == 0) {
		/* Use it now: the CRNG would otherwise reseed from the pool only later. */
		if (ioctl(fd, RNDRESEEDCRNG) < 0)
			r = errno;
	} else if (errno != EPERM || write(fd, e->data.v, e->data.n) != (ssize_t)e->data.n) {
		r = errno ? errno : EIO;
	}
	explicit_bzero(storage, sizeof(storage));
	explicit_bzero(e->data.v, e->data.n);
	close(fd);
	if (r)
		return ctl_send_error(a, conn, m, r, "ADD_ENTROPY: credit /dev/urandom: %s",
				      strerror(r));
	reply_empty(a, conn, m);
}
