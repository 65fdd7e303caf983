/*
 * epoll event loop (see event_loop.h). Sources removed while a batch of events is being
 * dispatched are only marked dead and freed after the batch, so a callback may remove any
 * source, itself included.
 */
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>

#include "event_loop.h"
#include "log.h"

struct event_source {
	int fd;
	event_fn fn;
	void *opaque;
	bool dead;
	struct event_source *next; /* all sources, for lookup by fd and teardown */
};

struct event_loop {
	int epoll_fd;
	int stop_fd;
	atomic_bool stopping;
	struct event_source *sources;
	bool dispatching;
};

int event_loop_create(struct event_loop **out)
{
	struct event_loop *loop = calloc(1, sizeof(*loop));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!loop)
		return -ENOMEM;
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epoll_fd < 0 || loop->stop_fd < 0 ||
	    epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->stop_fd, &ev) < 0) {
		int r = -errno;

		event_loop_destroy(loop);
		return r;
	}
	*out = loop;
	return 0;
}

static void event_loop_reap(struct event_loop *loop)
{
	struct event_source **p = &loop->sources;

	while (*p) {
		struct event_source *s = *p;

		if (s->dead) {
			*p = s->next;
			free(s);
		} else {
			p = &s->next;
		}
	}
}

void event_loop_destroy(struct event_loop *loop)
{
	struct event_source *s;

	if (!loop)
		return;
	for (s = loop->sources; s; s = s->next)
		s->dead = true;
	event_loop_reap(loop);
	if (loop->epoll_fd >= 0)
		close(loop->epoll_fd);
	if (loop->stop_fd >= 0)
		close(loop->stop_fd);
	free(loop);
}

static struct event_source *event_loop_find(struct event_loop *loop, int fd)
{
	struct event_source *s;

	for (s = loop->sources; s; s = s->next)
		if (s->fd == fd && !s->dead)
			return s;
	return NULL;
}

int event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *opaque)
{
	struct event_source *s;
	struct epoll_event ev = { .events = events };

	if (event_loop_find(loop, fd))
		return -EEXIST;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct event_source){ .fd = fd, .fn = fn, .opaque = opaque };
	ev.data.ptr = s;
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		free(s);
		return r;
	}
	s->next = loop->sources;
	loop->sources = s;
	return 0;
}

int event_loop_modify(struct event_loop *loop, int fd, uint32_t events)
{
	struct event_source *s = event_loop_find(loop, fd);
	struct epoll_event ev = { .events = events };

	if (!s)
		return -ENOENT;
	ev.data.ptr = s;
	return epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int event_loop_remove(struct event_loop *loop, int fd)
{
	struct event_source *s = event_loop_find(loop, fd);

	if (!s)
		return -ENOENT;
	epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	s->dead = true;
	if (!loop->dispatching)
		event_loop_reap(loop);
	return 0;
}

int event_loop_run(struct event_loop *loop)
{
	struct epoll_event events[32];

	while (!atomic_load(&loop->stopping)) {
		int i, n = epoll_wait(loop->epoll_fd, events, ARRAY_SIZE(events), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		loop->dispatching = true;
		for (i = 0; i < n; i++) {
			struct event_source *s = events[i].data.ptr;

			if (!s || s->dead)
				continue; /* the stop eventfd, or removed during this batch */
			s->fn(s->opaque, events[i].events);
		}
		loop->dispatching = false;
		event_loop_reap(loop);
	}
	return 0;
}

void event_loop_stop(struct event_loop *loop)
{
	uint64_t one = 1;

	atomic_store(&loop->stopping, true);
	if (write(loop->stop_fd, &one, sizeof(one)) < 0)
		return; /* already signalled: the counter is saturated, the loop wakes anyway */
}
