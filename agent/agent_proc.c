/*
 * Processes and their exit records (docs/agent-protocol.md "Exit records"). CREATE forks the
 * init process, which waits on a pipe until START; EXEC forks and execs at once. Each stream
 * named in the stdio mask must already be attached (ENOTCONN otherwise): it becomes a pipe, or
 * for a terminal a pty the child opens in the container's devpts and sends back (agent_pty.c),
 * relayed by agent_relay.c. SIGCHLD reaps every child; one we started
 * gets an exit record, reported (EVENT_EXIT, held WAITs) once its stdout and stderr reached EOF,
 * or AGENT_EXIT_GRACE_MS after the reap, and kept until ACK_EXIT whether or not a host is
 * connected. Others (grandchildren re-parented to PID 1, or to the agent as a subreaper in
 * the native tests) are reaped silently. The child itself is set up by agent_setup.c.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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

static void io_close(struct child_io *io)
{
	for (int i = 0; i < 3; i++) {
		if (io->child[i] >= 0)
			close(io->child[i]);
		if (io->agent[i] >= 0)
			close(io->agent[i]);
		io->child[i] = io->agent[i] = -1;
	}
	for (int i = 0; i < 2; i++) {
		if (io->console[i] >= 0)
			close(io->console[i]);
		io->console[i] = -1;
	}
}

/* Pipes for the streams; a terminal's pty comes from the container later (agent_pty.c). */
static int io_open(struct child_io *io, uint32_t stdio, const struct process_spec *spec)
{
	if (spec->terminal)
		return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, io->console) < 0 ? -errno
											   : 0;
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

/* Hand the attached streams and the agent's ends of the pipes to relays. */
static int proc_relays(struct agent *a, struct process *p, struct child_io *io, uint32_t stdio)
{
	const char *c = p->container_id, *e = p->exec_id;

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

/* The child sent its pty master before 'R': take it, and relay it to the attached stream. */
static int proc_take_pty(struct agent *a, struct process *p, char *err, size_t err_len)
{
	int conn, fd = pty_recv_master(p->console_sock);

	if (fd < 0) {
		snprintf(err, err_len, "process.terminal: no pty from the container: %s",
			 strerror(-fd));
		return fd;
	}
	close(p->console_sock);
	p->console_sock = -1;
	p->pty_master = fd;
	conn = agent_take_stream(a, p->container_id, p->exec_id, AGENT_STREAM_PTY);
	if (conn < 0)
		return 0; /* a terminal nobody watches: the pty still exists */
	/* Before the relays pump: they must never block the loop on the master. */
	fcntl(fd, F_SETFL, O_NONBLOCK | O_RDWR);
	p->relays[AGENT_STREAM_PTY] = relay_new(a, p, fcntl(fd, F_DUPFD_CLOEXEC, 3), conn, false);
	p->relays[AGENT_STREAM_STDIN] = relay_new(a, p, fcntl(conn, F_DUPFD_CLOEXEC, 3),
						  fcntl(fd, F_DUPFD_CLOEXEC, 3), true);
	return 0;
}

static struct process *proc_new(struct agent *a, const char *cid, const char *eid)
{
	struct process *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->container_id = strdup(cid);
	p->exec_id = strdup(eid);
	p->start_fd = p->pty_master = p->report_fd = p->helper = p->console_sock = -1;
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

static bool conn_alive(struct agent *a, struct ctl_conn *c)
{
	for (unsigned int i = 0; i < AGENT_MAX_CONTROL; i++)
		if (c && a->ctl[i] == c)
			return true;
	return false;
}

static void report_ready(struct agent *a, struct agent_watch *w, uint32_t events);

/* The reply to m waits on p's report pipe, at most SETUP_TIMEOUT_MS. */
static int proc_await(struct agent *a, struct process *p, struct ctl_conn *conn,
		      const struct agent_msg *m)
{
	p->report_w = (struct agent_watch){ p->report_fd, report_ready };
	p->reply_conn = conn;
	p->reply_id = m->id;
	p->reply_type = m->type;
	p->reply_pending = true;
	p->setup_deadline_ms = agent_now_ms() + SETUP_TIMEOUT_MS;
	return agent_watch_set(a, &p->report_w, EPOLLIN, &p->report_events);
}

static void proc_reply(struct agent *a, struct process *p, int r, const char *err)
{
	struct agent_msg m = { .type = p->reply_type,
			       .flags = AGENT_FLAG_REPLY,
			       .id = p->reply_id };

	p->reply_pending = false;
	agent_trace("reply %s %s", agent_type_name(m.type), r < 0 ? "error" : "ok");
	agent_watch_del(a, &p->report_w, &p->report_events);
	if (!conn_alive(a, p->reply_conn))
		return;
	if (r < 0)
		return ctl_send_error(a, p->reply_conn, &m, -r, "%s", err[0] ? err : strerror(-r));
	if (m.type != AGENT_START)
		m.u.pid.pid = (uint32_t)p->pid;
	ctl_send(a, p->reply_conn, &m);
}

/* Kill what a failed or timed-out set-up left running; the zombies go to proc_reap_all. */
static void setup_kill(struct process *p)
{
	if (p->helper > 0) {
		kill(p->helper, SIGKILL);
		waitpid(p->helper, NULL, 0);
		p->helper = -1;
	}
	/* CREATE's init (EXEC's process reports its own failure and exits by itself). */
	if (p->pid > 0 && !p->setup_reaped && !p->exec_id[0]) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
}

static void proc_exited(struct agent *a, struct process *p, int status);

/* The set-up of CREATE or EXEC ended: r < 0 with err, the request's error reply. */
static void setup_done(struct agent *a, struct process *p, int r, const char *err)
{
	struct container *c = container_find(a, p->container_id);
	bool create = !p->exec_id[0];

	if (r < 0) {
		if (r == -ETIMEDOUT && p->pid > 0 && !create && !p->setup_reaped) {
			kill(p->pid, SIGKILL); /* stuck in its own set-up */
			waitpid(p->pid, NULL, 0);
		}
		setup_kill(p);
		proc_reply(a, p, r, err);
		proc_free(a, p); /* never ran: no exit record */
		if (create && c)
			container_free(a, c);
		return;
	}
	proc_reply(a, p, 0, "");
	if (create) {
		p->state = PROC_CREATED;
		if (c) {
			c->init_pid = p->pid;
			container_watch_oom(a, c);
		}
		return; /* the report pipe stays for START */
	}
	close(p->report_fd);
	p->report_fd = -1;
	p->state = PROC_RUNNING;
	if (p->setup_reaped)
		proc_exited(a, p, p->setup_status);
}

/* START's reply: the pipe closed on execve, or 'E' and why the exec failed. */
static void start_done(struct agent *a, struct process *p, bool timed_out)
{
	char err[AGENT_MAX_ERROR_MSG] = "";
	int r = 0;

	if (!timed_out && p->report_have && p->report_buf[0] == 'E' &&
	    setup_report_error(p->report_buf, p->report_have, true, err, sizeof(err)) < 0)
		r = -ENOEXEC;
	proc_reply(a, p, r, err); /* a slow exec (timed out) is no failure */
	close(p->report_fd);
	p->report_fd = -1;
}

static void report_ready(struct agent *a, struct agent_watch *w, uint32_t events)
{
	struct process *p = container_of(w, struct process, report_w);
	size_t cap = sizeof(p->report_buf) - 1;
	char err[AGENT_MAX_ERROR_MSG] = "";
	bool eof = false;
	int r;

	(void)events;
	for (;;) {
		ssize_t n =
			read(p->report_fd, p->report_buf + p->report_have, cap - p->report_have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			eof = true;
			break;
		}
		p->report_have += (size_t)n;
		if (p->report_have == cap) {
			eof = true; /* a report this long is complete, or garbage */
			break;
		}
	}
	if (p->state != PROC_SETUP) {
		if (eof)
			start_done(a, p, false);
		return;
	}
	r = setup_report_parse(p, eof, err, sizeof(err));
	if (r >= 0 && p->ready && p->console_sock >= 0) {
		int t = proc_take_pty(a, p, err, sizeof(err));

		r = t < 0 ? t : r;
	}
	/* EXEC: the process is ready and the agent knows its pid: let it exec. */
	if (r == 1 && p->exec_id[0] && p->ready && p->pid > 0 && p->start_fd >= 0) {
		if (write(p->start_fd, "g", 1) != 1) {
			r = -errno;
			snprintf(err, sizeof(err), "EXEC: let the process go: %s", strerror(errno));
		}
		close(p->start_fd);
		p->start_fd = -1;
	}
	if (r <= 0)
		setup_done(a, p, r, err);
}

int proc_spawn(struct agent *a, const struct spawn_request *req, const char *eid, uint32_t stdio,
	       struct ctl_conn *conn, const struct agent_msg *m, char *err, size_t err_len)
{
	struct child_io io = { { -1, -1, -1 }, { -1, -1, -1 }, { -1, -1 } };
	const char *cid = req->c->id;
	int start[2] = { -1, -1 };
	struct process *p;
	pid_t pid = -1;
	int r = check_streams(a, cid, eid, stdio, req->spec->terminal, err, err_len);

	if (r < 0)
		return r;
	if ((r = io_open(&io, stdio, req->spec)) < 0 || pipe2(start, O_CLOEXEC) < 0 ||
	    !(p = proc_new(a, cid, eid))) {
		r = r < 0 ? r : -errno ? -errno : -ENOMEM;
		goto out;
	}
	r = setup_spawn(a, req, &io, start[0], &pid, &p->report_fd, err, err_len);
	if (r < 0) {
		proc_free(a, p); /* never ran: no exit record */
		goto out;
	}
	p->state = PROC_SETUP;
	if (req->create)
		p->pid = pid;
	else
		p->helper = pid;
	fcntl(p->report_fd, F_SETFL, O_NONBLOCK);
	p->oom_kills_at_start = req->c->cgroup ? cgroup_oom_kills(req->c->cgroup) : 0;
	p->start_fd = start[1];
	start[1] = -1;
	p->console_sock = io.console[0];
	io.console[0] = -1;
	if ((r = proc_relays(a, p, &io, stdio)) == 0)
		r = proc_await(a, p, conn, m);
	if (r < 0) {
		snprintf(err, err_len, "%s: %s", agent_type_name(m->type), strerror(-r));
		setup_kill(p);
		proc_free(a, p);
	}
out:
	io_close(&io);
	for (int i = 0; i < 2; i++)
		if (start[i] >= 0)
			close(start[i]);
	return r;
}

/* START: let the init exec; a failed exec is START's error, once the pipe says so. */
int proc_start(struct agent *a, struct process *p, struct ctl_conn *conn, const struct agent_msg *m)
{
	if (write(p->start_fd, "g", 1) != 1)
		return -errno;
	close(p->start_fd);
	p->start_fd = -1;
	p->state = PROC_RUNNING;
	p->report_have = 0;
	return proc_await(a, p, conn, m);
}

static bool output_done(const struct process *p)
{
	static const int out[] = { AGENT_STREAM_STDOUT, AGENT_STREAM_STDERR, AGENT_STREAM_PTY };

	for (unsigned int i = 0; i < ARRAY_SIZE(out); i++)
		if (p->relays[out[i]] && !p->relays[out[i]]->done)
			return false;
	return true;
}

/* The record becomes visible: EVENT_EXIT to every host, and the held WAITs answered. */
static void proc_report(struct agent *a, struct process *p)
{
	struct agent_msg ev = { .type = AGENT_EVENT_EXIT, .flags = AGENT_FLAG_EVENT };
	struct waiter *w = p->waiters;
	unsigned int n = p->nwaiters;

	p->state = PROC_EXITED;
	agent_trace("exit reported %s %s", p->container_id, p->exec_id);
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
	struct process *next;

	for (struct process *p = a->procs; p; p = next) {
		char err[64];

		next = p->next; /* a timed-out set-up frees p */
		if (p->state == PROC_REAPED && p->report_deadline_ms <= now)
			proc_report(a, p);
		if (!p->reply_pending || p->setup_deadline_ms > now)
			continue;
		if (p->state != PROC_SETUP) {
			start_done(a, p, true);
			continue;
		}
		snprintf(err, sizeof(err), "container set-up did not finish in %d s",
			 SETUP_TIMEOUT_MS / 1000);
		setup_done(a, p, -ETIMEDOUT, err);
	}
}

int64_t proc_next_deadline(struct agent *a)
{
	int64_t next = -1;

	for (struct process *p = a->procs; p; p = p->next) {
		if (p->state == PROC_REAPED && (next < 0 || p->report_deadline_ms < next))
			next = p->report_deadline_ms;
		if (p->reply_pending && (next < 0 || p->setup_deadline_ms < next))
			next = p->setup_deadline_ms;
	}
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

static void proc_exited(struct agent *a, struct process *p, int status)
{
	agent_trace("reaped %s %s", p->container_id, p->exec_id);
	proc_record(p, status);
	/* SIGKILLed while the OOM killer killed in its cgroup: that was it. */
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
	    container_oom_kills(a, p->container_id) > p->oom_kills_at_start)
		p->exit.flags |= AGENT_EXIT_OOM;
	p->state = PROC_REAPED;
	p->report_deadline_ms = agent_now_ms() + AGENT_EXIT_GRACE_MS;
	proc_check_report(a, p);
}

void proc_reap_all(struct agent *a)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct process *p = a->procs;

		while (p &&
		       !(p->pid == pid && (p->state == PROC_RUNNING || p->state == PROC_CREATED ||
					   p->state == PROC_SETUP)) &&
		       !(p->helper == pid && p->state == PROC_SETUP))
			p = p->next;
		if (!p)
			continue; /* not ours to report: a grandchild, reaped as PID 1 must */
		if (p->helper == pid) {
			p->helper = -1; /* EXEC's helper: done once it reported the pid */
		} else if (p->state == PROC_SETUP) {
			/* Reported when the set-up ends: as an exit, or not at all if it failed. */
			p->setup_reaped = true;
			p->setup_status = status;
		} else {
			proc_exited(a, p, status);
		}
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
		if (p->reply_conn == c)
			p->reply_conn =
				NULL; /* the set-up goes on; its reply has nobody to go to */
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
	agent_watch_del(a, &p->report_w, &p->report_events);
	if (p->report_fd >= 0)
		close(p->report_fd);
	if (p->pty_master >= 0)
		close(p->pty_master);
	if (p->console_sock >= 0)
		close(p->console_sock);
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
		if (p->state == PROC_SETUP) {
			bool alive = p->exec_id[0] && p->pid > 0 && !p->setup_reaped;

			setup_kill(p); /* CREATE's init, EXEC's helper */
			p->state = alive ? PROC_RUNNING : PROC_REAPED; /* EXEC's process: below */
		}
		if (p->state != PROC_RUNNING && p->state != PROC_CREATED)
			continue;
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->state = PROC_REAPED;
	}
}

/*
 * The command: the name argv[0] gives (what ps shows as CMD, and the name the user ran),
 * else comm (a kernel thread or zombie has no argv). comm alone misleads: it is the base
 * name of the file execve was given, and busybox runs its applets by re-executing
 * /proc/self/exe with argv[0] the applet ("sleep"), so comm reads "exe" for every one.
 */
static char *ps_command(pid_t pid, const char *comm)
{
	char path[64], buf[AGENT_MAX_NAME + 1], *base;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0 || !buf[0])
		return strdup(comm);
	buf[n] = '\0'; /* argv[0] ends at its NUL, or is cut at AGENT_MAX_NAME */
	base = strrchr(buf, '/');
	base = base && base[1] ? base + 1 : buf;
	return strdup(base);
}

/* pid, ppid and comm from /proc/PID/stat, the command, uid from the owner of /proc/PID. */
static int ps_entry(pid_t pid, const char *exec_id, struct agent_process_info *out)
{
	char path[64], buf[512], *open_paren, *close_paren;
	struct stat st;
	ssize_t n;
	int fd, ppid = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
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
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	out->uid = stat(path, &st) == 0 ? st.st_uid : 0;
	out->pid = (uint32_t)pid;
	out->ppid = (uint32_t)ppid;
	out->exec_id = strdup(exec_id);
	out->command = ps_command(pid, open_paren + 1);
	if (out->exec_id && out->command)
		return 0;
	free(out->exec_id);
	free(out->command);
	out->exec_id = out->command = NULL;
	return -ENOMEM;
}

static bool is_running(const struct process *p)
{
	return p->state == PROC_RUNNING || p->state == PROC_CREATED;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *close_paren;
	int fd, ppid = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	close_paren = strrchr(buf, ')');
	if (!close_paren || sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/* Without a cgroup: the container's processes and their descendants, from /proc. */
static int ps_descendants(struct agent *a, const char *cid, pid_t **out, size_t *n)
{
	size_t cap = 64, count = 0;
	pid_t *v = malloc(cap * sizeof(*v));
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!v || !d) {
		free(v);
		if (d)
			closedir(d);
		return -ENOMEM;
	}
	while ((e = readdir(d)) && count < AGENT_MAX_PROCS) {
		pid_t pid = (pid_t)atoi(e->d_name);

		/* Walk up to the agent: does the chain pass through one of ours? */
		for (pid_t up = pid, depth = 0; pid > 0 && up > 1 && depth < 64; depth++) {
			struct process *p = a->procs;

			while (p &&
			       !(p->pid == up && is_running(p) && !strcmp(p->container_id, cid)))
				p = p->next;
			if (p) {
				if (count == cap) {
					pid_t *nv = realloc(v, (cap *= 2) * sizeof(*v));

					if (!nv)
						break;
					v = nv;
				}
				v[count++] = pid;
				break;
			}
			if (up == getpid())
				break;
			up = parent_of(up);
		}
	}
	closedir(d);
	*out = v;
	*n = count;
	return 0;
}

int proc_ps(struct agent *a, const char *cid, struct agent_ps *out)
{
	struct container *c = container_find(a, cid);
	pid_t *pids = NULL;
	size_t n = 0;
	int r;

	if (!c)
		return -ENOENT;
	r = c->cgroup ? cgroup_pids(c->cgroup, &pids, &n) : ps_descendants(a, cid, &pids, &n);
	if (r < 0)
		return r;
	if (n >= AGENT_MAX_PROCS) {
		n = AGENT_MAX_PROCS;
		out->flags |= AGENT_PS_TRUNCATED;
	}
	out->procs.v = calloc(n ? n : 1, sizeof(*out->procs.v));
	if (!out->procs.v) {
		free(pids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *eid = "";
		bool helper = false;

		for (struct process *p = a->procs; p; p = p->next) {
			if (p->pid == pids[i] && is_running(p) && !strcmp(p->container_id, cid))
				eid = p->exec_id;
			helper |= p->helper == pids[i]; /* EXEC's, a moment in the cgroup: ours */
		}
		if (!helper && ps_entry(pids[i], eid, &out->procs.v[out->procs.n]) == 0)
			out->procs.n++;
	}
	free(pids);
	return 0;
}
