/*
 * The QMP socket (see qmp.h): a Unix stream socket on the VM's main event loop. One client
 * at a time: while one is connected the listening socket is not watched, so a second
 * client's connection waits in the backlog and gets its greeting when the first leaves (as
 * with QEMU's single monitor). A client may reconnect any number of times; each connection
 * is a new session (negotiation again, getfd names forgotten).
 *
 * Output never blocks the loop: what the socket does not take is queued (at most
 * QMP_OUT_MAX; a client that reads nothing past that is dropped). A client over its rate
 * limit is not read until its next command may run (a timerfd), so a flood fills its own
 * socket buffer and slows the client, never the VMM.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>

#include "hotplug.h"
#include "log.h"
#include "qmp.h"
#include "snapshot.h"
#include "vcpu.h"
#include "vm.h"

#define QMP_OUT_MAX (1024 * 1024)

struct qmp_server {
	struct vm *vm;
	int listen_fd, client_fd, timer_fd;
	char *path;
	char version[32];
	struct qmp_session *session;
	char *out;
	size_t out_len;
	bool drop; /* the client's output overflowed: close it after this event */

	/* Block nodes (hotplug.h) outlive a client: one table per VM. */
	struct hotplug *hotplug;
	/* The last migrate (snapshot), for query-migrate from any later client. */
	const char *migrate_status; /* NULL, "completed" or "failed" */
	uint64_t migrate_ms;
	char migrate_error[ERROR_MSG_MAX];
};

static void qmp_server_watch_client(struct qmp_server *srv, bool read)
{
	uint32_t events = (read ? EPOLLIN : 0) | (srv->out_len ? EPOLLOUT : 0);

	event_loop_modify(srv->vm->loop, srv->client_fd, events);
}

static void qmp_server_write(void *opaque, const char *data, size_t len)
{
	struct qmp_server *srv = opaque;
	ssize_t n = 0;

	if (srv->client_fd < 0 || srv->drop)
		return;
	if (!srv->out_len) {
		n = send(srv->client_fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			srv->drop = true;
			return;
		}
		n = n < 0 ? 0 : n;
	}
	if ((size_t)n == len)
		return;
	if (srv->out_len + (len - n) > QMP_OUT_MAX) {
		log_warn("qmp: the client does not read its replies: disconnecting it");
		srv->drop = true;
		return;
	}
	if (!srv->out) {
		srv->out = malloc(QMP_OUT_MAX);
		if (!srv->out) {
			srv->drop = true;
			return;
		}
	}
	memcpy(srv->out + srv->out_len, data + n, len - n);
	srv->out_len += len - n;
}

static bool qmp_server_running(void *opaque)
{
	return !atomic_load(&((struct qmp_server *)opaque)->vm->paused);
}

static int qmp_server_stop(void *opaque)
{
	return vm_pause(((struct qmp_server *)opaque)->vm);
}

static int qmp_server_cont(void *opaque)
{
	return vm_resume(((struct qmp_server *)opaque)->vm);
}

static void qmp_server_quit(void *opaque)
{
	vm_request_exit(((struct qmp_server *)opaque)->vm, VM_EXIT_QUIT);
}

static void qmp_server_reset(void *opaque)
{
	vm_request_exit(((struct qmp_server *)opaque)->vm, VM_EXIT_RESET);
}

static unsigned int qmp_server_nr_cpus(void *opaque)
{
	return ((struct qmp_server *)opaque)->vm->nr_vcpus;
}

static int qmp_server_cpu_thread_id(void *opaque, unsigned int index)
{
	struct vm *vm = ((struct qmp_server *)opaque)->vm;

	return index < vm->nr_vcpus ? atomic_load(&vm->vcpus[index]->tid) : 0;
}

static int qmp_server_migrate(void *opaque, const char *path, struct error *err)
{
	struct qmp_server *srv = opaque;
	struct timespec start, end;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	r = vm_snapshot_save(srv->vm, path, err);
	clock_gettime(CLOCK_MONOTONIC, &end);
	srv->migrate_ms =
		(end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
	srv->migrate_status = r < 0 ? "failed" : "completed";
	snprintf(srv->migrate_error, sizeof(srv->migrate_error), "%s", r < 0 ? err->msg : "");
	if (r < 0)
		log_error("migrate: %s", err->msg);
	return r;
}

static const char *qmp_server_migrate_status(void *opaque, uint64_t *total_ms, const char **why)
{
	struct qmp_server *srv = opaque;

	*total_ms = srv->migrate_ms;
	*why = srv->migrate_error[0] ? srv->migrate_error : NULL;
	return srv->migrate_status;
}

/* system_powerdown: with no ACPI the guest has nothing to be told with; the VM quits. */
static int qmp_server_hotplug(void *opaque, const char *command, struct yajl_val_s *args,
			      struct error *err)
{
	return hotplug_execute(((struct qmp_server *)opaque)->hotplug, command, args, err);
}

static const struct qmp_ops qmp_server_ops = {
	.write = qmp_server_write,
	.running = qmp_server_running,
	.stop = qmp_server_stop,
	.cont = qmp_server_cont,
	.quit = qmp_server_quit,
	.powerdown = qmp_server_quit,
	.reset = qmp_server_reset,
	.nr_cpus = qmp_server_nr_cpus,
	.cpu_thread_id = qmp_server_cpu_thread_id,
	.migrate = qmp_server_migrate,
	.migrate_status = qmp_server_migrate_status,
	.hotplug = qmp_server_hotplug,
};

static void qmp_server_on_connect(void *opaque, uint32_t events);

static void qmp_server_drop_client(struct qmp_server *srv)
{
	struct itimerspec off = { 0 };

	if (srv->client_fd < 0)
		return;
	event_loop_remove(srv->vm->loop, srv->client_fd);
	close(srv->client_fd);
	srv->client_fd = -1;
	timerfd_settime(srv->timer_fd, 0, &off, NULL);
	qmp_session_destroy(srv->session);
	srv->session = NULL;
	srv->out_len = 0;
	srv->drop = false;
	event_loop_modify(srv->vm->loop, srv->listen_fd, EPOLLIN); /* the next client */
	log_debug("qmp: client disconnected");
}

/* Run what the session holds; over its rate, the client is not read until the timer. */
static void qmp_server_process(struct qmp_server *srv)
{
	struct itimerspec when = { 0 };
	int wait_ms = qmp_session_process(srv->session);

	if (srv->drop) {
		qmp_server_drop_client(srv);
		return;
	}
	if (wait_ms > 0) {
		when.it_value.tv_sec = wait_ms / 1000;
		when.it_value.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
		timerfd_settime(srv->timer_fd, 0, &when, NULL);
	}
	qmp_server_watch_client(srv, wait_ms == 0 && qmp_session_room(srv->session) > 0);
}

static void qmp_server_take_fds(struct qmp_server *srv, struct msghdr *msg)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t i, nr = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (i = 0; i < nr; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			qmp_session_push_fd(srv->session, fd);
		}
	}
}

static void qmp_server_read(struct qmp_server *srv)
{
	char data[4096], control[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { .iov_base = data };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	iov.iov_len = MIN(sizeof(data), qmp_session_room(srv->session));
	msg.msg_control = control;
	msg.msg_controllen = sizeof(control);
	n = recvmsg(srv->client_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		qmp_server_drop_client(srv);
		return;
	}
	qmp_server_take_fds(srv, &msg);
	qmp_session_feed(srv->session, data, (size_t)n);
}

static void qmp_server_flush(struct qmp_server *srv)
{
	ssize_t n = send(srv->client_fd, srv->out, srv->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		srv->drop = true;
		return;
	}
	if (n > 0) {
		memmove(srv->out, srv->out + n, srv->out_len - n);
		srv->out_len -= n;
	}
}

static void qmp_server_on_client(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;

	if ((events & EPOLLOUT) && srv->out_len)
		qmp_server_flush(srv);
	if (!srv->drop && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		qmp_server_read(srv);
	if (srv->client_fd >= 0)
		qmp_server_process(srv);
}

static void qmp_server_on_timer(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;
	uint64_t expirations;

	(void)events;
	if (read(srv->timer_fd, &expirations, sizeof(expirations)) < 0 || srv->client_fd < 0)
		return;
	qmp_server_process(srv);
}

static void qmp_server_on_connect(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;
	int fd;

	(void)events;
	if (srv->client_fd >= 0)
		return;
	fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (qmp_session_create(&qmp_server_ops, srv, srv->version, &srv->session) < 0 ||
	    event_loop_add(srv->vm->loop, fd, EPOLLIN, qmp_server_on_client, srv) < 0) {
		qmp_session_destroy(srv->session);
		srv->session = NULL;
		close(fd);
		return;
	}
	srv->client_fd = fd;
	event_loop_modify(srv->vm->loop, srv->listen_fd, 0); /* a second client waits */
	log_debug("qmp: client connected");
	qmp_session_greet(srv->session);
	qmp_server_process(srv);
}

static int qmp_server_listen(struct qmp_server *srv, const char *path, struct error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(addr.sun_path))
		return error_set(err, -ENAMETOOLONG, "-qmp: socket path too long: %s", path);
	strcpy(addr.sun_path, path);
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->listen_fd < 0)
		return error_set_errno(err, -errno, "-qmp: socket");
	unlink(path); /* a stale socket from an earlier run */
	if (bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(srv->listen_fd, 1) < 0)
		return error_set_errno(err, -errno, "-qmp: cannot listen on %s", path);
	srv->path = strdup(path);
	if (!srv->path)
		return error_set(err, -ENOMEM, "-qmp: out of memory");
	if (event_loop_add(srv->vm->loop, srv->listen_fd, EPOLLIN, qmp_server_on_connect, srv) < 0)
		return error_set_errno(err, -errno, "-qmp: cannot watch %s", path);
	return 0;
}

int qmp_server_create(struct vm *vm, const char *path, const char *version, struct qmp_server **out,
		      struct error *err)
{
	struct qmp_server *srv = calloc(1, sizeof(*srv));
	struct hotplug_backend backend;
	int r;

	if (!srv)
		return error_set(err, -ENOMEM, "-qmp: out of memory");
	srv->vm = vm;
	srv->listen_fd = srv->client_fd = -1;
	snprintf(srv->version, sizeof(srv->version), "%s", version);
	srv->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (srv->timer_fd < 0) {
		r = error_set_errno(err, -errno, "-qmp: timerfd");
		goto fail;
	}
	r = event_loop_add(vm->loop, srv->timer_fd, EPOLLIN, qmp_server_on_timer, srv);
	if (r < 0) {
		error_set_errno(err, r, "-qmp: cannot watch its timer");
		goto fail;
	}
	hotplug_vm_backend(vm, &backend);
	r = hotplug_create(&backend, &srv->hotplug);
	if (r < 0) {
		error_set(err, r, "-qmp: out of memory");
		goto fail;
	}
	r = qmp_server_listen(srv, path, err);
	if (r < 0)
		goto fail;
	*out = srv;
	return 0;
fail:
	qmp_server_destroy(srv);
	return r;
}

void qmp_server_vm_ended(struct qmp_server *srv, int exit_reason)
{
	static const char *const data[] = {
		[VM_EXIT_POWEROFF] = "{\"guest\":true,\"reason\":\"guest-shutdown\"}",
		[VM_EXIT_QUIT] = "{\"guest\":false,\"reason\":\"host-signal\"}",
		[VM_EXIT_RESET] = "{\"guest\":true,\"reason\":\"guest-reset\"}",
		[VM_EXIT_TRIPLE_FAULT] = "{\"guest\":true,\"reason\":\"guest-reset\"}",
		[VM_EXIT_PANIC] = "{\"guest\":true,\"reason\":\"guest-panic\"}",
		[VM_EXIT_ERROR] = "{\"guest\":false,\"reason\":\"host-error\"}",
	};

	if (!srv || !srv->session || qmp_session_end_announced(srv->session))
		return;
	if (exit_reason <= VM_EXIT_NONE || exit_reason > VM_EXIT_ERROR)
		return;
	qmp_session_event(srv->session, exit_reason == VM_EXIT_RESET ? "RESET" : "SHUTDOWN",
			  data[exit_reason]);
}

/* The last replies and events are worth a short wait (quit's SHUTDOWN). */
static void qmp_server_final_flush(struct qmp_server *srv)
{
	struct pollfd p = { .fd = srv->client_fd, .events = POLLOUT };
	int tries = 10;

	while (srv->out_len && !srv->drop && tries-- > 0 && poll(&p, 1, 100) > 0)
		qmp_server_flush(srv);
}

void qmp_server_destroy(struct qmp_server *srv)
{
	if (!srv)
		return;
	if (srv->client_fd >= 0) {
		qmp_server_final_flush(srv);
		qmp_server_drop_client(srv);
	}
	if (srv->listen_fd >= 0) {
		event_loop_remove(srv->vm->loop, srv->listen_fd);
		close(srv->listen_fd);
	}
	if (srv->timer_fd >= 0) {
		event_loop_remove(srv->vm->loop, srv->timer_fd);
		close(srv->timer_fd);
	}
	if (srv->path)
		unlink(srv->path);
	free(srv->path);
	free(srv->out);
	hotplug_destroy(srv->hotplug);
	free(srv);
}
