/*
 * Processes and their exit records (docs/agent-protocol.md "Exit records"). CREATE forks the
 * init process, which waits on a pipe until START; EXEC forks and execs at once. Each stream
 * named in the stdio mask must already be attached (ENOTCONN otherwise): it becomes a pipe, or
 * for a terminal a pty, relayed by agent_relay.c. SIGCHLD reaps every child; one we started
 * gets an exit record, reported (EVENT_EXIT, held WAITs) once its stdout and stderr reached EOF,
 * or AGENT_EXIT_GRACE_MS after the reap, and kept until ACK_EXIT whether or not a host is
 * connected. Others (grandchildren re-parented to PID 1) are reaped silently.
 * No isolation yet: the child runs in the agent's own namespaces and root.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent_internal.h"

extern char **environ;

struct process *proc_find(struct agent *a, const char *cid, const char *eid)
{
	for (struct process *p = a->procs; p; p = p->next)
		if (!strcmp(p->container_id, cid) && !strcmp(p->exec_id, eid))
			return p;
	return NULL;
}

/* The fds a child gets (or -1: /dev/null) and the agent's ends of them. */
struct child_io {
	int child[3], agent[3]; /* stdin, stdout, stderr */
	int pty_master;
	char pty_name[64];
};

static void io_close(struct child_io *io)
{
	for (int i = 0; i < 3; i++) {
		if (io->child[i] >= 0)
			close(io->child[i]);
		if (io->agent[i] >= 0)
			close(io->agent[i]);
		io->child[i] = io->agent[i] = -1;
	}
	if (io->pty_master >= 0)
		close(io->pty_master);
	io->pty_master = -1;
}

static int io_open(struct child_io *io, uint32_t stdio, const struct process_spec *spec)
{
	struct winsize ws = { .ws_row = (unsigned short)spec->rows,
			      .ws_col = (unsigned short)spec->cols };

	if (spec->terminal) {
		io->pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (io->pty_master < 0 || grantpt(io->pty_master) < 0 ||
		    unlockpt(io->pty_master) < 0 ||
		    ptsname_r(io->pty_master, io->pty_name, sizeof(io->pty_name)) != 0)
			return -errno;
		if ((spec->rows || spec->cols) && ioctl(io->pty_master, TIOCSWINSZ, &ws) < 0)
			return -errno;
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		int fds[2];

		if (!(stdio & AGENT_STDIO_BIT(i)))
			continue;
		if (pipe2(fds, O_CLOEXEC) < 0)
			return -errno;
		io->child[i] = i == 0 ? fds[0] : fds[1];
		io->agent[i] = i == 0 ? fds[1] : fds[0];
		fcntl(io->agent[i], F_SETFL, O_NONBLOCK);
	}
	return 0;
}

static void child_fail(int err_fd, const char *what, const char *arg)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s %s: %s", what, arg, strerror(errno));

	if (write(err_fd, msg, (size_t)n) < 0)
		_exit(126);
	_exit(127);
}

static int child_stdio(const struct child_io *io)
{
	int null = -1;

	if (io->pty_master >= 0) {
		int tty = open(io->pty_name, O_RDWR);

		if (tty < 0 || ioctl(tty, TIOCSCTTY, 0) < 0)
			return -1;
		for (int i = 0; i < 3; i++)
			if (dup2(tty, i) < 0)
				return -1;
		if (tty > 2)
			close(tty);
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		int fd = io->child[i];

		if (fd < 0) {
			if (null < 0 && (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
				return -1;
			fd = null;
		}
		if (dup2(fd, i) < 0)
			return -1;
	}
	return 0;
}

/* In the child: never returns. start_fd >= 0: wait for START (a byte) first. */
static void child_exec(const struct process_spec *spec, const struct child_io *io, int start_fd,
		       int err_fd)
{
	sigset_t all;
	char go;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	if (child_stdio(io) < 0)
		child_fail(err_fd, "stdio", "");
	if (chdir(spec->cwd) < 0)
		child_fail(err_fd, "chdir", spec->cwd);
	if (start_fd >= 0 && read(start_fd, &go, 1) != 1)
		_exit(127); /* deleted before START */
	environ = spec->env;
	execvp(spec->args[0], spec->args);
	child_fail(err_fd, "exec", spec->args[0]);
}

static int check_streams(struct agent *a, const char *cid, const char *eid, uint32_t stdio,
			 bool terminal, char *err, size_t err_len)
{
	uint32_t pty = AGENT_STDIO_BIT(AGENT_STREAM_PTY);

	if (stdio >> AGENT_STREAM_NR || (terminal && stdio != pty && stdio != 0) ||
	    (!terminal && (stdio & pty))) {
		snprintf(err, err_len, "stdio mask %#x does not fit terminal=%d", stdio, terminal);
		return -EINVAL;
	}
	for (uint32_t s = 0; s < AGENT_STREAM_NR; s++) {
		if ((stdio & AGENT_STDIO_BIT(s)) && !agent_has_stream(a, cid, eid, s)) {
			snprintf(err, err_len, "stream %u of %s/%s is not attached", s, cid, eid);
			return -ENOTCONN;
		}
	}
	return 0;
}

/* Hand the attached streams and the agent's ends of the pipes or pty to relays. */
static int proc_relays(struct agent *a, struct process *p, struct child_io *io, uint32_t stdio)
{
	const char *c = p->container_id, *e = p->exec_id;

	if (io->pty_master >= 0) {
		int conn = agent_take_stream(a, c, e, AGENT_STREAM_PTY);

		if (conn < 0)
			return 0; /* a terminal nobody watches: the pty still exists */
		/* Before the relays pump: they must never block the loop on the master. */
		fcntl(io->pty_master, F_SETFL, O_NONBLOCK | O_RDWR);
		p->relays[AGENT_STREAM_PTY] =
			relay_new(a, p, fcntl(io->pty_master, F_DUPFD_CLOEXEC, 3), conn, false);
		p->relays[AGENT_STREAM_STDIN] =
			relay_new(a, p, fcntl(conn, F_DUPFD_CLOEXEC, 3),
				  fcntl(io->pty_master, F_DUPFD_CLOEXEC, 3), true);
		return 0;
	}
	for (int s = 0; s < 3; s++) {
		int conn;

		if (!(stdio & AGENT_STDIO_BIT(s)))
			continue;
		conn = agent_take_stream(a, c, e, (uint32_t)s);
		p->relays[s] = s == 0 ? relay_new(a, p, conn, io->agent[s], true)
				      : relay_new(a, p, io->agent[s], conn, false);
		io->agent[s] = -1;
		if (!p->relays[s])
			return -ENOMEM;
	}
	return 0;
}

static struct process *proc_new(struct agent *a, const char *cid, const char *eid)
{
	struct process *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->container_id = strdup(cid);
	p->exec_id = strdup(eid);
	p->start_fd = p->pty_master = -1;
	if (!p->container_id || !p->exec_id) {
		free(p->container_id);
		free(p->exec_id);
		free(p);
		return NULL;
	}
	p->next = a->procs;
	a->procs = p;
	return p;
}

/* EXEC: the child closes err_fd on a successful exec, or writes why it failed. */
static int exec_result(int err_fd, pid_t pid, char *err, size_t err_len)
{
	ssize_t n;

	do
		n = read(err_fd, err, err_len - 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	err[n] = '\0';
	waitpid(pid, NULL, 0);
	return -ENOENT;
}

int proc_spawn(struct agent *a, const char *cid, const char *eid, uint32_t stdio,
	       const struct process_spec *spec, bool start_now, struct process **out, char *err,
	       size_t err_len)
{
	struct child_io io = { { -1, -1, -1 }, { -1, -1, -1 }, -1, "" };
	int start[2] = { -1, -1 }, errp[2] = { -1, -1 };
	struct process *p;
	int r = check_streams(a, cid, eid, stdio, spec->terminal, err, err_len);

	if (r < 0)
		return r;
	if ((r = io_open(&io, stdio, spec)) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    (!start_now && pipe2(start, O_CLOEXEC) < 0) || !(p = proc_new(a, cid, eid))) {
		r = r < 0 ? r : -errno ? -errno : -ENOMEM;
		goto out;
	}
	p->pid = fork();
	if (p->pid == 0)
		child_exec(spec, &io, start[0], errp[1]);
	if (p->pid < 0) {
		r = -errno;
		proc_free(a, p);
		goto out;
	}
	close(errp[1]);
	errp[1] = -1;
	if (start_now && (r = exec_result(errp[0], p->pid, err, err_len)) < 0) {
		p->state = PROC_EXITED; /* reaped above: no record for a process that never ran */
		a->nexits++;
		proc_free(a, p);
		goto out;
	}
	p->state = start_now ? PROC_RUNNING : PROC_CREATED;
	p->start_fd = start[1];
	start[1] = -1;
	r = proc_relays(a, p, &io, stdio);
	p->pty_master = io.pty_master;
	io.pty_master = -1;
	*out = p;
out:
	io_close(&io);
	for (int i = 0; i < 2; i++) {
		if (start[i] >= 0)
			close(start[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return r;
}

int proc_start(struct agent *a, struct process *p)
{
	(void)a;
	if (write(p->start_fd, "g", 1) != 1)
		return -errno;
	close(p->start_fd);
	p->start_fd = -1;
	p->state = PROC_RUNNING;
	return 0;
}

static bool output_done(const struct process *p)
{
	static const int out[] = { AGENT_STREAM_STDOUT, AGENT_STREAM_STDERR, AGENT_STREAM_PTY };

	for (unsigned int i = 0; i < ARRAY_SIZE(out); i++)
		if (p->relays[out[i]] && !p->relays[out[i]]->done)
			return false;
	return true;
}

static bool conn_alive(struct agent *a, struct ctl_conn *c)
{
	for (unsigned int i = 0; i < AGENT_MAX_CONTROL; i++)
		if (a->ctl[i] == c)
			return true;
	return false;
}

/* The record becomes visible: EVENT_EXIT to every host, and the held WAITs answered. */
static void proc_report(struct agent *a, struct process *p)
{
	struct agent_msg ev = { .type = AGENT_EVENT_EXIT, .flags = AGENT_FLAG_EVENT };
	struct waiter *w = p->waiters;
	unsigned int n = p->nwaiters;

	p->state = PROC_EXITED;
	a->nexits++;
	ev.u.exit = p->exit;
	ctl_broadcast(a, &ev);
	p->waiters = NULL;
	p->nwaiters = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct agent_msg r = { .type = AGENT_WAIT,
				       .flags = AGENT_FLAG_REPLY,
				       .id = w[i].id };

		r.u.exit = p->exit;
		if (conn_alive(a, w[i].c))
			ctl_send(a, w[i].c, &r);
	}
	free(w);
}

void proc_check_report(struct agent *a, struct process *p)
{
	if (p->state == PROC_REAPED && output_done(p))
		proc_report(a, p);
}

void proc_report_due(struct agent *a, int64_t now)
{
	for (struct process *p = a->procs; p; p = p->next)
		if (p->state == PROC_REAPED && p->report_deadline_ms <= now)
			proc_report(a, p);
}

int64_t proc_next_deadline(struct agent *a)
{
	int64_t next = -1;

	for (struct process *p = a->procs; p; p = p->next)
		if (p->state == PROC_REAPED && (next < 0 || p->report_deadline_ms < next))
			next = p->report_deadline_ms;
	return next;
}

static void proc_record(struct process *p, int status)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	p->exit.container_id = p->container_id; /* borrowed: p owns the strings */
	p->exit.exec_id = p->exec_id;
	p->exit.pid = (uint32_t)p->pid;
	if (WIFSIGNALED(status)) {
		p->exit.status = (uint32_t)WTERMSIG(status);
		p->exit.flags = AGENT_EXIT_SIGNALED | (WCOREDUMP(status) ? AGENT_EXIT_CORE : 0);
	} else {
		p->exit.status = (uint32_t)WEXITSTATUS(status);
	}
	p->exit.exited_at_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void proc_reap_all(struct agent *a)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct process *p = a->procs;

		while (p &&
		       !(p->pid == pid && (p->state == PROC_RUNNING || p->state == PROC_CREATED)))
			p = p->next;
		if (!p)
			continue; /* not ours to report: a grandchild, reaped as PID 1 must */
		proc_record(p, status);
		p->state = PROC_REAPED;
		p->report_deadline_ms = agent_now_ms() + AGENT_EXIT_GRACE_MS;
		proc_check_report(a, p);
	}
}

void proc_forget_conn(struct agent *a, struct ctl_conn *c)
{
	for (struct process *p = a->procs; p; p = p->next) {
		unsigned int j = 0;

		for (unsigned int i = 0; i < p->nwaiters; i++)
			if (p->waiters[i].c != c)
				p->waiters[j++] = p->waiters[i];
		p->nwaiters = j;
	}
}

void proc_free(struct agent *a, struct process *p)
{
	struct process **pp = &a->procs;

	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	for (int i = 0; i < AGENT_STREAM_NR; i++)
		relay_free(a, p->relays[i]);
	if (p->start_fd >= 0)
		close(p->start_fd);
	if (p->pty_master >= 0)
		close(p->pty_master);
	if (p->state == PROC_EXITED)
		a->nexits--;
	free(p->waiters);
	free(p->container_id);
	free(p->exec_id);
	free(p);
}

void proc_kill_all(struct agent *a)
{
	for (struct process *p = a->procs; p; p = p->next) {
		if (p->state != PROC_RUNNING && p->state != PROC_CREATED)
			continue;
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->state = PROC_REAPED;
	}
}

/* pid, ppid and command from /proc/PID/stat, uid from the owner of /proc/PID. */
static int ps_entry(const struct process *p, struct agent_process_info *out)
{
	char path[64], buf[512], *open_paren, *close_paren;
	struct stat st;
	ssize_t n;
	int fd, ppid = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	open_paren = strchr(buf, '(');
	close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren ||
	    sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		return -EIO;
	*close_paren = '\0';
	snprintf(path, sizeof(path), "/proc/%d", (int)p->pid);
	out->uid = stat(path, &st) == 0 ? st.st_uid : 0;
	out->pid = (uint32_t)p->pid;
	out->ppid = (uint32_t)ppid;
	out->exec_id = strdup(p->exec_id);
	out->command = strdup(open_paren + 1);
	if (out->exec_id && out->command)
		return 0;
	free(out->exec_id);
	free(out->command);
	out->exec_id = out->command = NULL;
	return -ENOMEM;
}

int proc_ps(struct agent *a, const char *cid, struct agent_ps *out)
{
	uint32_t n = 0;

	for (struct process *p = a->procs; p; p = p->next)
		n += !strcmp(p->container_id, cid);
	if (!proc_find(a, cid, ""))
		return -ENOENT;
	out->procs.v = calloc(n, sizeof(*out->procs.v));
	if (!out->procs.v)
		return -ENOMEM;
	for (struct process *p = a->procs; p; p = p->next) {
		if (strcmp(p->container_id, cid) ||
		    (p->state != PROC_RUNNING && p->state != PROC_CREATED))
			continue;
		if (ps_entry(p, &out->procs.v[out->procs.n]) == 0)
			out->procs.n++;
	}
	return 0;
}
