/*
 * The ttrpc server's loop: one level-triggered epoll set in the caller's thread serving
 * listeners, client connections (ttrpc_conn.c), extra fds (ttrpc_server_add_fd) and a
 * wake-up eventfd for ttrpc_server_stop(). A connection or watch that dies is only flagged
 * during a batch of events and freed after it (reap), so no event ever touches freed memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ttrpc_internal.h"

static int conn_add(struct ttrpc_server *srv, int fd)
{
	struct conn *c;

	if (srv->nconns >= srv->max_conns || atomic_load(&srv->stopping))
		return -EMFILE;
	c = ttrpc_conn_new(srv, fd);
	if (!c)
		return -ENOMEM;
	c->next = srv->conns;
	srv->conns = c;
	srv->nconns++;
	return 0;
}

static void accept_conns(struct ttrpc_server *srv, struct listener *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return; /* EAGAIN, or a transient error: level-triggered, retried */
		if (conn_add(srv, fd) < 0)
			close(fd); /* over the limit: the client sees EOF at once */
	}
}

int ttrpc_server_add_conn(struct ttrpc_server *srv, int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return conn_add(srv, fd);
}

static void reap(struct ttrpc_server *srv)
{
	struct conn **cp = &srv->conns;
	struct watch **wp = &srv->watches;

	while (*cp) {
		struct conn *c = *cp;

		if (c->src.dead) {
			*cp = c->next;
			srv->nconns--;
			ttrpc_conn_free(c);
		} else {
			cp = &c->next;
		}
	}
	while (*wp) {
		struct watch *w = *wp;

		if (w->src.dead) {
			*wp = w->next;
			free(w);
		} else {
			wp = &w->next;
		}
	}
}

int ttrpc_server_poll(struct ttrpc_server *srv, int timeout_ms)
{
	struct epoll_event events[32];
	int n = epoll_wait(srv->epoll_fd, events, ARRAY_SIZE(events), timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct source *s = events[i].data.ptr;

		if (s->dead)
			continue;
		switch (s->kind) {
		case SOURCE_LISTENER:
			accept_conns(srv, container_of(s, struct listener, src));
			break;
		case SOURCE_WATCH: {
			struct watch *w = container_of(s, struct watch, src);

			w->cb(w->fd, events[i].events, w->opaque);
			break;
		}
		case SOURCE_WAKE: {
			uint64_t v;

			if (read(srv->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return -errno;
			for (struct conn *c = srv->conns; c; c = c->next)
				ttrpc_conn_update_events(c);
			break;
		}
		case SOURCE_CONN: {
			struct conn *c = container_of(s, struct conn, src);

			/* An error, or a hang-up while nothing more will be read: done. */
			if ((events[i].events & EPOLLERR) ||
			    ((events[i].events & EPOLLHUP) && atomic_load(&srv->stopping))) {
				ttrpc_conn_kill(c);
				break;
			}
			/* (On a hang-up the write fails at once and ends the connection.) */
			if (events[i].events & (EPOLLOUT | EPOLLHUP)) {
				ttrpc_conn_flush(c);
				ttrpc_conn_update_events(c);
			}
			if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				ttrpc_conn_readable(c);
			break;
		}
		}
	}
	reap(srv);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool output_pending(const struct ttrpc_server *srv)
{
	for (const struct conn *c = srv->conns; c; c = c->next)
		if (!c->src.dead && ttrpc_conn_backlog(c))
			return true;
	return false;
}

int ttrpc_server_run(struct ttrpc_server *srv)
{
	int64_t deadline;
	int r;

	while (!atomic_load(&srv->stopping)) {
		r = ttrpc_server_poll(srv, -1);
		if (r < 0)
			return r;
	}
	/* Stopping: deliver what is already queued (e.g. the Shutdown answer), briefly. */
	deadline = now_ms() + TTRPC_STOP_FLUSH_MS;
	while (output_pending(srv) && now_ms() < deadline) {
		r = ttrpc_server_poll(srv, 50);
		if (r < 0)
			return r;
	}
	return 0;
}

void ttrpc_server_stop(struct ttrpc_server *srv)
{
	uint64_t one = 1;

	atomic_store(&srv->stopping, true);
	if (write(srv->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: a wake-up is pending anyway. */
	}
}

bool ttrpc_server_stopping(const struct ttrpc_server *srv)
{
	return atomic_load(&srv->stopping);
}

unsigned int ttrpc_server_connections(const struct ttrpc_server *srv)
{
	return srv->nconns;
}

int ttrpc_server_new(const struct ttrpc_server_config *config, struct ttrpc_server **out)
{
	struct ttrpc_server *srv = calloc(1, sizeof(*srv));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!srv)
		return -ENOMEM;
	srv->max_conns = config && config->max_connections ? config->max_connections
							   : TTRPC_DEFAULT_MAX_CONNS;
	srv->max_output = config && config->max_pending_output ? config->max_pending_output
							       : TTRPC_DEFAULT_MAX_OUTPUT;
	srv->max_calls = config && config->max_calls ? config->max_calls : TTRPC_DEFAULT_MAX_CALLS;
	srv->wake_fd = -1;
	srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epoll_fd < 0)
		goto fail;
	srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->wake_fd < 0)
		goto fail;
	srv->wake_src.kind = SOURCE_WAKE;
	ev.data.ptr = &srv->wake_src;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, srv->wake_fd, &ev) < 0)
		goto fail;
	*out = srv;
	return 0;
fail : {
	int r = -errno;

	ttrpc_server_destroy(srv);
	return r;
}
}

void ttrpc_server_destroy(struct ttrpc_server *srv)
{
	if (!srv)
		return;
	while (srv->conns) {
		struct conn *c = srv->conns;

		srv->conns = c->next;
		ttrpc_conn_free(c);
	}
	while (srv->listeners) {
		struct listener *l = srv->listeners;

		srv->listeners = l->next;
		close(l->fd);
		free(l);
	}
	while (srv->watches) {
		struct watch *w = srv->watches;

		srv->watches = w->next;
		free(w);
	}
	while (srv->methods) {
		struct method *m = srv->methods;

		srv->methods = m->next;
		free(m->service);
		free(m->method);
		free(m);
	}
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	if (srv->epoll_fd >= 0)
		close(srv->epoll_fd);
	free(srv);
}

int ttrpc_server_register(struct ttrpc_server *srv, const char *service, const char *method,
			  ttrpc_method_fn fn, void *opaque)
{
	struct method *m;

	for (m = srv->methods; m; m = m->next)
		if (!strcmp(m->service, service) && !strcmp(m->method, method))
			return -EEXIST;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->service = strdup(service);
	m->method = strdup(method);
	if (!m->service || !m->method) {
		free(m->service);
		free(m->method);
		free(m);
		return -ENOMEM;
	}
	m->fn = fn;
	m->opaque = opaque;
	m->next = srv->methods;
	srv->methods = m;
	return 0;
}

int ttrpc_server_add_listener(struct ttrpc_server *srv, int listen_fd)
{
	struct listener *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN };
	int flags = fcntl(listen_fd, F_GETFL);

	if (!l)
		return -ENOMEM;
	if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		free(l);
		return -errno;
	}
	l->src.kind = SOURCE_LISTENER;
	l->fd = listen_fd;
	ev.data.ptr = &l->src;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		int r = -errno;

		free(l);
		return r;
	}
	l->next = srv->listeners;
	srv->listeners = l;
	return 0;
}

int ttrpc_server_add_fd(struct ttrpc_server *srv, int fd, uint32_t events, ttrpc_fd_fn cb,
			void *opaque)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = events };

	if (!w)
		return -ENOMEM;
	w->src.kind = SOURCE_WATCH;
	w->fd = fd;
	w->cb = cb;
	w->opaque = opaque;
	ev.data.ptr = &w->src;
	if (epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		free(w);
		return r;
	}
	w->next = srv->watches;
	srv->watches = w;
	return 0;
}

int ttrpc_server_remove_fd(struct ttrpc_server *srv, int fd)
{
	for (struct watch *w = srv->watches; w; w = w->next) {
		if (w->fd == fd && !w->src.dead) {
			epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
			w->src.dead = true;
			return 0;
		}
	}
	return -ENOENT;
}
