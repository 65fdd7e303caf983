/*
 * Host hooks (see hooks.h): fork, the state on a pipe as stdin, output into a memfd, execve
 * with exactly the hook's args and env, and a deadline enforced by polling a pidfd.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "hooks.h"

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child: never returns. */
static void hook_exec(const struct oci_hook *hook, int stdin_fd, int out_fd)
{
	char *const empty[] = { NULL };
	char *argv0[] = { hook->path, NULL };
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(stdin_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(127);
	execve(hook->path, hook->args.n ? hook->args.v : argv0, hook->env.n ? hook->env.v : empty);
	dprintf(2, "exec: %s\n", strerror(errno));
	_exit(127);
}

/* The first line the hook wrote, for the error message. */
static void first_line(int out_fd, char *buf, size_t len)
{
	ssize_t n = pread(out_fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
}

static int feed_state(int fd, const char *state_json)
{
	size_t len = strlen(state_json), off = 0;

	/* A hook that does not read its stdin must not block us: EPIPE is fine. */
	while (off < len) {
		ssize_t n = write(fd, state_json + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EPIPE ? 0 : -errno;
		off += n;
	}
	return 0;
}

/* Wait for the child until deadline_ms (0: none); -ETIMEDOUT after killing it. */
static int hook_wait(pid_t pid, uint64_t deadline_ms, int *status)
{
	_cleanup_close_ int pidfd = pidfd_open_(pid);

	for (;;) {
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		int timeout = -1;

		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		if (deadline_ms) {
			uint64_t now = now_ms();

			if (now >= deadline_ms) {
				kill(pid, SIGKILL);
				waitpid(pid, status, 0);
				return -ETIMEDOUT;
			}
			timeout = (int)MIN(deadline_ms - now, 1000);
		}
		if (pidfd < 0)
			timeout = timeout < 0 ? 10 : MIN(timeout, 10);
		if (poll(&pfd, pidfd >= 0 ? 1 : 0, timeout) < 0 && errno != EINTR)
			return -errno;
	}
}

int hook_run(const struct oci_hook *hook, const char *path_name, const char *state_json,
	     struct error *err)
{
	_cleanup_close_ int out_fd = memfd_create("hook-output", MFD_CLOEXEC);
	uint64_t deadline = hook->timeout ? now_ms() + hook->timeout * 1000ull : 0;
	char line[HOOK_OUTPUT_MAX];
	int pipe_fds[2], status, r;
	void (*old_pipe)(int);
	pid_t pid;

	if (out_fd < 0)
		return error_set_errno(err, -errno, "%s: memfd", path_name);
	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
		return error_set_errno(err, -errno, "%s: pipe", path_name);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		return error_set_errno(err, r, "%s: fork", path_name);
	}
	if (pid == 0)
		hook_exec(hook, pipe_fds[0], out_fd);
	close(pipe_fds[0]);
	old_pipe = signal(SIGPIPE, SIG_IGN);
	r = feed_state(pipe_fds[1], state_json);
	signal(SIGPIPE, old_pipe);
	close(pipe_fds[1]);
	(void)r; /* the exit status says whether the hook was happy */
	r = hook_wait(pid, deadline, &status);
	if (r == -ETIMEDOUT)
		return error_set(err, r, "%s: %s: timed out after %u s", path_name, hook->path,
				 hook->timeout);
	if (r < 0)
		return error_set_errno(err, r, "%s: %s: wait", path_name, hook->path);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	first_line(out_fd, line, sizeof(line));
	if (WIFSIGNALED(status))
		return error_set(err, -ECANCELED, "%s: %s: killed by signal %d%s%s", path_name,
				 hook->path, WTERMSIG(status), line[0] ? ": " : "", line);
	return error_set(err, -ECANCELED, "%s: %s: exit status %d%s%s", path_name, hook->path,
			 WEXITSTATUS(status), line[0] ? ": " : "", line);
}

int hooks_run(const struct oci_spec *spec, enum oci_hook_kind kind, const char *state_json,
	      struct error *err)
{
	const struct oci_hook_list *list = &spec->hooks[kind];
	char name[64];
	int r;

	for (size_t i = 0; i < list->n; i++) {
		snprintf(name, sizeof(name), "hooks.%s[%zu]", oci_hook_kind_name(kind), i);
		r = hook_run(&list->hooks[i], name, state_json, err);
		if (r < 0)
			return r;
	}
	return 0;
}
