/*
 * The long-lived shim server `start` forks: it serves containerd.task.v2.Task over ttrpc on
 * the socket inherited as fd 3 until Shutdown (or SIGTERM/SIGINT), logging to the bundle's
 * "log" FIFO that containerd reads (when there is one), publishing events through the
 * publisher, and removing its socket file on the way out. It is a child subreaper, so the
 * VM monitors it will start stay its children when they daemonize.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "publish.h"
#include "shim.h"
#include "task_service.h"
#include "ttrpc.h"

#define PUBLISH_DRAIN_MS 5000

/* stderr to the bundle's log FIFO, if containerd made one and reads it. */
static void open_log(void)
{
	struct stat st;
	int fd, flags;

	if (stat("log", &st) < 0 || !S_ISFIFO(st.st_mode))
		return;
	fd = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return; /* no reader: keep /dev/null */
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

static void on_signal(int fd, uint32_t events, void *opaque)
{
	struct ttrpc_server *srv = opaque;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			ttrpc_server_stop(srv);
	}
}

/* The file behind a listening Unix socket, to remove on exit ("" for abstract ones). */
static void socket_path(int fd, char *out, size_t out_len)
{
	struct sockaddr_un addr;
	socklen_t len = sizeof(addr);

	out[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0 || addr.sun_family != AF_UNIX)
		return;
	if (len <= offsetof(struct sockaddr_un, sun_path) || addr.sun_path[0] == '\0')
		return;
	snprintf(out, out_len, "%.*s", (int)(len - offsetof(struct sockaddr_un, sun_path)),
		 addr.sun_path);
}

int shim_state_root(const char *ns, char *out, size_t out_len)
{
	const char *base = getenv(SHIM_ROOT_ENV);
	int n;

	if (!base || !base[0])
		base = SHIM_ROOT_DEFAULT;
	n = snprintf(out, out_len, "%s/%s", base, ns && ns[0] ? ns : "default");
	return n < 0 || (size_t)n >= out_len ? -ENAMETOOLONG : 0;
}

int shim_serve(const struct shim_options *opts, struct error *err)
{
	struct shim_publisher_config pc = {
		.namespace = opts->namespace,
		.address = opts->address,
		.publish_binary = opts->publish_binary,
		.ttrpc_address = getenv("TTRPC_ADDRESS"),
	};
	struct shim_publisher *publisher = NULL;
	struct task_service *ts = NULL;
	struct ttrpc_server *srv = NULL;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1], root[4096];
	_cleanup_close_ int sig_fd = -1;
	int type = 0, r;
	socklen_t type_len = sizeof(type);
	sigset_t mask;

	if (getsockopt(SHIM_LISTEN_FD, SOL_SOCKET, SO_TYPE, &type, &type_len) < 0 ||
	    type != SOCK_STREAM)
		return error_set(err, -EBADF,
				 "fd %d: not a listening socket (the server is started by `%s "
				 "start`, not by hand)",
				 SHIM_LISTEN_FD, SHIM_NAME);
	fcntl(SHIM_LISTEN_FD, F_SETFD, FD_CLOEXEC);
	socket_path(SHIM_LISTEN_FD, path, sizeof(path));
	open_log();
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		return error_set_errno(err, -errno, "signalfd");

	r = ttrpc_server_new(NULL, &srv);
	if (r < 0)
		return error_set_errno(err, r, "ttrpc server");
	r = shim_publisher_new(&pc, &publisher);
	if (r < 0) {
		error_set_errno(err, r, "event publisher");
		goto out;
	}
	r = task_service_register(srv, opts->id, publisher, &ts);
	if (r < 0) {
		error_set_errno(err, r, "register %s", TASK_SERVICE_NAME);
		goto out;
	}
	r = shim_state_root(opts->namespace, root, sizeof(root));
	r = r ?: task_service_set_root(ts, root);
	if (r < 0) {
		error_set_errno(err, r, "state root");
		goto out;
	}
	r = ttrpc_server_add_fd(srv, sig_fd, EPOLLIN, on_signal, srv);
	if (r == 0)
		r = ttrpc_server_add_listener(srv, SHIM_LISTEN_FD);
	if (r < 0) {
		error_set_errno(err, r, "ttrpc server");
		goto out;
	}
	if (opts->debug)
		fprintf(stderr, "%s: serving %s for %s/%s on %s\n", SHIM_NAME, TASK_SERVICE_NAME,
			opts->namespace, opts->id, opts->socket ? opts->socket : path);
	r = ttrpc_server_run(srv);
	if (r < 0)
		error_set_errno(err, r, "ttrpc server loop");
out:
	if (path[0])
		unlink(path);
	if (ts)
		task_service_stop_tasks(ts);
	ttrpc_server_destroy(srv);
	task_service_destroy(ts);
	shim_publisher_destroy(publisher, PUBLISH_DRAIN_MS);
	return r;
}
