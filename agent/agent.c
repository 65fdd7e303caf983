/*
 * The agent's event loop and transports: the two listening sockets (control and stdio, vsock
 * in the guest, Unix in the tests), SIGCHLD through a signalfd, and the stdio attachments
 * that wait for their process (docs/agent-protocol.md "stdio"). A stdio connection sends one
 * STREAM_ATTACH frame; the reader stops at its last byte, so the raw bytes that follow stay in
 * the socket for the process. Timers are deadlines folded into epoll_wait's timeout: exits
 * held back for their output (500 ms), an attach frame still arriving (5 s) and unclaimed
 * attachments (60 s).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agent_internal.h"

#define WATCH_REGISTERED 0x80000000u

int64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Register w for events, or remove it for 0: a registered fd always reports HUP and ERR. */
int agent_watch_set(struct agent *a, struct agent_watch *w, uint32_t events, uint32_t *cur)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	int op;

	if (events == 0) {
		agent_watch_del(a, w, cur);
		return 0;
	}
	if (*cur == (events | WATCH_REGISTERED))
		return 0;
	op = (*cur & WATCH_REGISTERED) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(a->epfd, op, w->fd, &ev) < 0)
		return -errno;
	*cur = events | WATCH_REGISTERED;
	return 0;
}

void agent_watch_del(struct agent *a, struct agent_watch *w, uint32_t *cur)
{
	if (*cur & WATCH_REGISTERED)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	*cur = 0;
}

static void attaching_close(struct agent *a, unsigned int i, bool close_fd);

static void pending_drop(struct agent *a, unsigned int i)
{
	struct pending_stream *ps = &a->pending[i];

	if (ps->fd >= 0)
		close(ps->fd);
	free(ps->container_id);
	free(ps->exec_id);
	a->pending[i] = a->pending[--a->npending];
}

static int pending_find(struct agent *a, const char *cid, const char *eid, uint32_t stream)
{
	for (unsigned int i = 0; i < a->npending; i++) {
		struct pending_stream *ps = &a->pending[i];

		if (ps->stream == stream && !strcmp(ps->container_id, cid) &&
		    !strcmp(ps->exec_id, eid))
			return (int)i;
	}
	return -1;
}

bool agent_has_stream(struct agent *a, const char *cid, const char *eid, uint32_t stream)
{
	return pending_find(a, cid, eid, stream) >= 0;
}

/* Claim an attachment for its process: the connection's fd, or -ENOTCONN. */
int agent_take_stream(struct agent *a, const char *cid, const char *eid, uint32_t stream)
{
	int i = pending_find(a, cid, eid, stream);
	int fd;

	if (i < 0)
		return -ENOTCONN;
	fd = a->pending[i].fd;
	a->pending[i].fd = -1;
	pending_drop(a, (unsigned int)i);
	return fd;
}

static void pending_expire(struct agent *a, int64_t now)
{
	for (unsigned int i = 0; i < AGENT_MAX_PENDING; i++)
		if (a->attaching[i] && a->attaching[i]->expires_ms <= now)
			attaching_close(a, i, true);
	for (unsigned int i = 0; i < a->npending;) {
		if (a->pending[i].expires_ms <= now)
			pending_drop(a, i);
		else
			i++;
	}
}

static void stdio_reply(int fd, const struct agent_msg *req, int e, const char *msg)
{
	struct agent_msg reply = { .type = req->type, .flags = AGENT_FLAG_REPLY, .id = req->id };
	struct agent_buf b = { 0 };

	if (e)
		agent_encode_error(req->type, req->id, e, msg, &b);
	else
		agent_msg_encode(&reply, &b);
	/* One small frame into an empty socket buffer; a short write shows up as a dead stream. */
	if (b.len && write(fd, b.data, b.len) < 0)
		b.len = 0;
	agent_buf_free(&b);
}

static int stdio_check(struct agent *a, const struct agent_msg *m, const char **why)
{
	const struct agent_stream_attach *at = &m->u.attach;

	*why = "";
	if (m->type != AGENT_STREAM_ATTACH || m->flags != 0)
		return *why = "the stdio port takes STREAM_ATTACH only", EOPNOTSUPP;
	if (at->stream >= AGENT_STREAM_NR || !at->container_id[0])
		return *why = "STREAM_ATTACH: bad stream or empty container id", EINVAL;
	if (pending_find(a, at->container_id, at->exec_id, at->stream) >= 0)
		return *why = "STREAM_ATTACH: this stream is already attached", EEXIST;
	if (a->npending >= AGENT_MAX_PENDING)
		return *why = "STREAM_ATTACH: too many unclaimed streams", EAGAIN;
	return 0;
}

static void attaching_close(struct agent *a, unsigned int i, bool close_fd)
{
	struct attaching *at = a->attaching[i];

	epoll_ctl(a->epfd, EPOLL_CTL_DEL, at->w.fd, NULL);
	if (close_fd)
		close(at->w.fd);
	agent_reader_destroy(&at->reader);
	free(at);
	a->attaching[i] = NULL;
}

/* The complete STREAM_ATTACH frame: answer it; true if the connection is parked. */
static bool attach_frame(struct agent *a, int fd, struct agent_reader *rd)
{
	struct agent_msg m = { 0 };
	const char *why = "STREAM_ATTACH: malformed";
	int r = agent_reader_take(rd, &m);
	int e = r == -ENOMSG ? EOPNOTSUPP : r == -E2BIG ? E2BIG : r < 0 ? EINVAL : 0;

	if (r == 0)
		e = stdio_check(a, &m, &why);
	stdio_reply(fd, &m, e, why);
	if (e == 0) {
		struct pending_stream *ps = &a->pending[a->npending++];

		*ps = (struct pending_stream){ fd, m.u.attach.container_id, m.u.attach.exec_id,
					       m.u.attach.stream,
					       agent_now_ms() + AGENT_PENDING_TTL_MS };
		m.u.attach.container_id = m.u.attach.exec_id = NULL;
	}
	agent_msg_clear(&m);
	return e == 0;
}

static void attaching_ready(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct attaching *at = (struct attaching *)((char *)w - offsetof(struct attaching, w));
	unsigned int i = 0;
	int r;

	(void)events;
	while (a->attaching[i] != at)
		i++;
	/* The reader stops at the frame's last byte: what follows is the process's stdin. */
	r = agent_reader_read(&at->reader, w->fd);
	if (r == -EAGAIN || r == -EINTR)
		return;
	attaching_close(a, i, !(r == 1 && attach_frame(a, w->fd, &at->reader)));
}

static void stdio_accept(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct attaching *at;
	unsigned int i = 0;
	int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	(void)events;
	if (fd < 0)
		return;
	while (i < AGENT_MAX_PENDING && a->attaching[i])
		i++;
	if (i == AGENT_MAX_PENDING || !(at = calloc(1, sizeof(*at)))) {
		close(fd);
		return;
	}
	at->w = (struct agent_watch){ fd, attaching_ready };
	agent_reader_init(&at->reader, 4096);
	at->expires_ms = agent_now_ms() + AGENT_ATTACH_TIMEOUT_MS;
	ev.data.ptr = &at->w;
	a->attaching[i] = at;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		attaching_close(a, i, true);
}

static void signal_ready(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si))
		;
	proc_reap_all(a);
}

void agent_prepare(struct agent *a)
{
	a->guest = true;
	a->vm_net = true;
	setup_prepare();
	if (mkdir(a->run_dir, 0711) < 0 && errno != EEXIST)
		return;
	cgroup_root_ready(a);
}

int agent_create(int control_fd, int stdio_fd, struct agent **out)
{
	struct agent *a = calloc(1, sizeof(*a));
	sigset_t set;
	uint32_t dummy = 0;
	int sfd;

	if (!a)
		return -ENOMEM;
	a->run_dir = strdup(AGENT_DEFAULT_RUN_DIR);
	snprintf(a->share_fstype, sizeof(a->share_fstype), "virtiofs");
	a->cgroup_root = strdup(AGENT_DEFAULT_CGROUP_ROOT);
	/* EXEC's helper exits after cloning the process: its orphans must come back to us. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	errno = a->run_dir && a->cgroup_root ? errno : ENOMEM;
	/* Inherited listeners (fd:C,S) must not leak into containers either. */
	fcntl(control_fd, F_SETFD, FD_CLOEXEC);
	fcntl(stdio_fd, F_SETFD, FD_CLOEXEC);
	a->control_w = (struct agent_watch){ control_fd, ctl_accept };
	a->stdio_w = (struct agent_watch){ stdio_fd, stdio_accept };
	a->signal_w = (struct agent_watch){ sfd, signal_ready };
	if (sfd < 0 || a->epfd < 0 || !a->run_dir || !a->cgroup_root ||
	    agent_watch_set(a, &a->control_w, EPOLLIN, &dummy) < 0 ||
	    (dummy = 0, agent_watch_set(a, &a->stdio_w, EPOLLIN, &dummy)) < 0 ||
	    (dummy = 0, agent_watch_set(a, &a->signal_w, EPOLLIN, &dummy)) < 0) {
		int e = -errno;

		agent_destroy(a);
		return e ? e : -EIO;
	}
	*out = a;
	return 0;
}

int agent_configure(struct agent *a, const char *run_dir, const char *cgroup_root)
{
	char *r = run_dir ? strdup(run_dir) : NULL, *c = cgroup_root ? strdup(cgroup_root) : NULL;

	if ((run_dir && !r) || (cgroup_root && !c)) {
		free(r);
		free(c);
		return -ENOMEM;
	}
	if (r) {
		free(a->run_dir);
		a->run_dir = r;
	}
	if (c) {
		free(a->cgroup_root);
		a->cgroup_root = c;
		a->cgroup_ready = false;
	}
	return 0;
}

void agent_set_setup_hook(struct agent *a, void (*hook)(const char *container_id))
{
	a->setup_hook = hook;
}

int agent_set_share_fstype(struct agent *a, const char *fstype)
{
	if (strlen(fstype) >= sizeof(a->share_fstype))
		return -ENAMETOOLONG;
	snprintf(a->share_fstype, sizeof(a->share_fstype), "%s", fstype);
	return 0;
}

static int loop_timeout(struct agent *a, int64_t now)
{
	int64_t next = proc_next_deadline(a), freeze = freeze_next_deadline(a);

	if (freeze >= 0 && (next < 0 || freeze < next))
		next = freeze;

	for (unsigned int i = 0; i < a->npending; i++)
		if (next < 0 || a->pending[i].expires_ms < next)
			next = a->pending[i].expires_ms;
	for (unsigned int i = 0; i < AGENT_MAX_PENDING; i++)
		if (a->attaching[i] && (next < 0 || a->attaching[i]->expires_ms < next))
			next = a->attaching[i]->expires_ms;
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

/* One turn of the loop; max_wait_ms >= 0 bounds the wait (the fuzz target uses 0). */
int agent_step(struct agent *a, int max_wait_ms)
{
	struct epoll_event evs[32];
	int64_t now = agent_now_ms();
	int timeout = loop_timeout(a, now);
	int n;

	if (max_wait_ms >= 0 && (timeout < 0 || timeout > max_wait_ms))
		timeout = max_wait_ms;
	n = epoll_wait(a->epfd, evs, ARRAY_SIZE(evs), timeout);
	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct agent_watch *w = evs[i].data.ptr;

		w->fn(a, w, evs[i].events);
	}
	now = agent_now_ms();
	proc_report_due(a, now);
	freeze_due(a, now);
	pending_expire(a, now);
	return n < 0 ? 0 : n;
}

int agent_run(struct agent *a)
{
	proc_reap_all(a); /* children that exited before the signalfd existed */
	while (!a->shutdown) {
		int r = agent_step(a, -1);

		if (r < 0)
			return r;
	}
	proc_kill_all(a);
	return 0;
}

void agent_destroy(struct agent *a)
{
	if (!a)
		return;
	ctl_close_all(a);
	while (a->procs)
		proc_free(a, a->procs);
	while (a->containers)
		container_free(a, a->containers);
	share_unmount_all(a);
	free(a->run_dir);
	free(a->cgroup_root);
	while (a->npending)
		pending_drop(a, 0);
	for (unsigned int i = 0; i < AGENT_MAX_PENDING; i++)
		if (a->attaching[i])
			attaching_close(a, i, true);
	if (a->control_w.fd >= 0)
		close(a->control_w.fd);
	if (a->stdio_w.fd >= 0)
		close(a->stdio_w.fd);
	if (a->signal_w.fd >= 0)
		close(a->signal_w.fd);
	if (a->epfd >= 0)
		close(a->epfd);
	free(a);
}

int agent_listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int agent_listen_vsock(uint32_t port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK,
				  .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}
