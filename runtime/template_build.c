/*
 * The template builder (template_build.h). Like the monitor, the child runs vm_run() on its
 * main thread and talks to the guest from a second thread: connect to the agent until it
 * answers a PING, close that connection (a restored clone's vsock has none), then send QMP
 * `migrate` to the VM's own QMP server, which pauses the VM and writes the snapshot on the
 * event-loop thread, as vm_pause() and the snapshot code require. Then the VM is ended. The
 * child reports one line on a pipe: "ok", or what failed.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"
#include "container.h"
#include "log.h"
#include "monitor.h"
#include "qmp.h"
#include "qmp_client.h"
#include "template.h"
#include "template_build.h"
#include "unix_path.h"
#include "vm.h"

#define BUILD_LOG	 "build.log"
#define BUILD_CONSOLE	 "console.log"
#define BUILD_VSOCK	 "vsock.sock"
#define BUILD_QMP	 "qmp.sock"
#define BUILD_RETRY_MS	 100
#define BUILD_EXTRA_MS	 120000 /* the snapshot and the VM's end, after the agent */
#define BUILD_REPORT_OK	 "ok\n"
#define BUILD_REPORT_MAX 1024

struct builder {
	const char *dir;
	struct vm *vm;
	char vsock_path[4096], qmp_path[4096], snapshot[4200];
	int ended_fd;
	int timeout_ms;
	int result;
	char err[BUILD_REPORT_MAX];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int builder_connect_agent(struct builder *b)
{
	uint64_t deadline = now_ms() + (uint64_t)b->timeout_ms;
	struct pollfd pfd = { .fd = b->ended_fd, .events = POLLIN };
	struct agent_client agent;
	int r;

	for (;;) {
		agent_client_init(&agent, b->timeout_ms);
		r = agent_client_connect(&agent, b->vsock_path);
		if (r == 0) {
			r = agent_client_ping(&agent);
			if (r < 0)
				snprintf(b->err, sizeof(b->err), "template: agent: ping: %s",
					 agent.err);
			agent_client_destroy(&agent);
			return r;
		}
		snprintf(b->err, sizeof(b->err), "template: agent: %s", agent.err);
		agent_client_destroy(&agent);
		if (r == -EPROTONOSUPPORT)
			return r;
		if (poll(&pfd, 1, BUILD_RETRY_MS) > 0) {
			snprintf(b->err, sizeof(b->err),
				 "template: the VM stopped before the agent answered");
			return -ECONNREFUSED;
		}
		if (now_ms() >= deadline) {
			snprintf(b->err, sizeof(b->err),
				 "template: the agent did not answer within %d s "
				 "(STRATUS_AGENT_TIMEOUT)",
				 b->timeout_ms / 1000);
			return -ETIMEDOUT;
		}
	}
}

static void *builder_supervise(void *opaque)
{
	struct builder *b = opaque;
	struct error err = { 0 };
	char args[4400];
	int r;

	r = builder_connect_agent(b);
	if (r == 0) {
		snprintf(args, sizeof(args), "{\"uri\":\"file:%s\"}", b->snapshot);
		r = qmp_client_execute(b->qmp_path, "migrate", args, b->timeout_ms, &err);
		if (r < 0)
			snprintf(b->err, sizeof(b->err), "template: snapshot: %s", err.msg);
		else
			log_info("template snapshot written to %s", b->snapshot);
	}
	b->result = r;
	vm_request_exit(b->vm, VM_EXIT_QUIT);
	return NULL;
}

static int open_in(const char *dir, const char *name, int flags)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags | O_CLOEXEC, 0600);
}

static int socket_path(const char *dir, const char *name, char *buf, size_t len)
{
	char full[4200];
	int dirfd;

	if (snprintf(full, sizeof(full), "%s/%s", dir, name) >= (int)sizeof(full))
		return -ENAMETOOLONG;
	return unix_path_short(full, buf, len, &dirfd);
}

static void builder_report(int fd, const char *line)
{
	size_t len = strlen(line);

	if (write(fd, line, len) != (ssize_t)len) {
		/* the parent is gone: nobody to tell */
	}
}

static int builder_run(struct builder *b, const struct guest_assets *assets, unsigned int vcpus,
		       uint64_t mem_mib)
{
	struct qmp_server *qmp = NULL;
	struct error err = { 0 };
	struct vm_config vc;
	pthread_t thread;
	int serial;

	if (socket_path(b->dir, BUILD_VSOCK, b->vsock_path, sizeof(b->vsock_path)) < 0 ||
	    socket_path(b->dir, BUILD_QMP, b->qmp_path, sizeof(b->qmp_path)) < 0) {
		snprintf(b->err, sizeof(b->err), "template: %s: path too long for its sockets",
			 b->dir);
		return -ENAMETOOLONG;
	}
	snprintf(b->snapshot, sizeof(b->snapshot), "%s/%s", b->dir, TEMPLATE_SNAPSHOT);
	serial = open_in(b->dir, BUILD_CONSOLE, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW);
	monitor_vm_config(&vc, assets, vcpus, mem_mib, serial);
	template_layout(&vc, b->vsock_path, NULL);
	b->ended_fd = eventfd(0, EFD_CLOEXEC);
	if (b->ended_fd < 0 || vm_create(&vc, &b->vm, &err) < 0 ||
	    qmp_server_create(b->vm, b->qmp_path, STRATUS_VERSION, &qmp, &err) < 0) {
		snprintf(b->err, sizeof(b->err), "template: VM: %s",
			 err.msg[0] ? err.msg : "eventfd failed");
		vm_destroy(b->vm);
		return -EIO;
	}
	log_info("template VM with %u vCPU(s), %llu MiB", vcpus, (unsigned long long)mem_mib);
	monitor_drop_privileges();
	if (pthread_create(&thread, NULL, builder_supervise, b) != 0) {
		snprintf(b->err, sizeof(b->err), "template: cannot start a thread");
		qmp_server_destroy(qmp);
		vm_destroy(b->vm);
		return -EAGAIN;
	}
	vm_run(b->vm);
	eventfd_write(b->ended_fd, 1);
	pthread_join(thread, NULL);
	qmp_server_destroy(qmp);
	vm_destroy(b->vm);
	return b->result;
}

static _Noreturn void builder_main(const char *dir, int report_fd,
				   const struct guest_assets *assets, unsigned int vcpus,
				   uint64_t mem_mib, int timeout_ms)
{
	struct builder b = { .dir = dir, .ended_fd = -1, .timeout_ms = timeout_ms };
	int null_fd, log_fd;
	sigset_t set;

	setsid();
	prctl(PR_SET_NAME, "stratus-tmpl");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	if (report_fd != 3 && dup2(report_fd, 3) < 0)
		_exit(1);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	if (close_range(4, ~0u, 0) < 0)
		for (int fd = 4; fd < 65536; fd++)
			close(fd);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; null_fd >= 0 && i < 3; i++)
		dup2(null_fd, i);
	log_fd = open_in(dir, BUILD_LOG, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW);
	log_init(log_fd >= 0 ? log_fd : null_fd, LOG_INFO);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (builder_run(&b, assets, vcpus, mem_mib) < 0) {
		char line[BUILD_REPORT_MAX + 2];

		log_error("%s", b.err);
		snprintf(line, sizeof(line), "%s\n", b.err);
		builder_report(3, line);
		_exit(1);
	}
	builder_report(3, BUILD_REPORT_OK);
	_exit(0);
}

/* The child's line (or its death) within timeout_ms. */
static int builder_wait(int fd, pid_t pid, int timeout_ms, struct error *err)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[BUILD_REPORT_MAX + 2];
	size_t have = 0;
	int status = 0;

	for (;;) {
		int64_t left = (int64_t)(deadline - now_ms());
		ssize_t n;
		int p;

		if ((int64_t)deadline - (int64_t)now_ms() <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return error_set(err, -ETIMEDOUT,
					 "template: the template VM was not ready within %d s",
					 timeout_ms / 1000);
		}
		p = poll(&pfd, 1, (int)left);
		if (p < 0 && errno != EINTR)
			break;
		if (p <= 0)
			continue;
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == sizeof(buf) - 1)
			break;
	}
	buf[have] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!strcmp(buf, BUILD_REPORT_OK) && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	if (buf[0])
		return error_set(err, -EIO, "%s", buf);
	if (WIFSIGNALED(status))
		return error_set(err, -EIO, "template: the builder was killed by signal %d",
				 WTERMSIG(status));
	return error_set(err, -EIO, "template: the builder exited with status %d",
			 WEXITSTATUS(status));
}

int template_build(const char *dir, const struct guest_assets *assets, unsigned int vcpus,
		   uint64_t mem_mib, struct error *err)
{
	int timeout_ms = container_agent_timeout_ms();
	int fds[2], r;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return error_set_errno(err, -errno, "template: pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		return error_set_errno(err, r, "template: cannot fork the builder");
	}
	if (pid == 0) {
		close(fds[0]);
		builder_main(dir, fds[1], assets, vcpus, mem_mib, timeout_ms);
	}
	close(fds[1]);
	r = builder_wait(fds[0], pid, timeout_ms + BUILD_EXTRA_MS, err);
	close(fds[0]);
	return r;
}

void template_build_tidy(const char *dir)
{
	const char *names[] = { BUILD_LOG, BUILD_CONSOLE, BUILD_VSOCK, BUILD_QMP };
	char path[4200];

	for (unsigned int i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}
