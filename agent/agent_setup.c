/*
 * Starting a container's process (docs/agent-protocol.md "Container set-up"). CREATE clones
 * the init with the namespaces of linux.namespaces; EXEC forks a helper that joins the init's
 * namespaces (setns on /proc/PID/ns/<type>) and its root, then clones the process into them with
 * CLONE_PARENT, so the agent is its parent and reaps it like any other. Either way the agent
 * first puts the new process into the container's cgroup (CREATE's init is cloned into it
 * where the kernel can) and writes the user namespace's id maps, then lets it go on with one
 * byte on a sync pipe.
 *
 * The child reports back on a CLOEXEC pipe: 'P' and a pid (EXEC's helper: the process it
 * cloned), 'R' (set up: CREATE's init waits for START, EXEC's process for the agent's go once
 * it knows the pid, so it cannot exit unnoticed), or 'E' and a message naming the step and the
 * OCI field ("mount proc on /proc: No such file or directory"), after which it exits. A
 * successful execve closes the pipe. The agent does not wait for that answer: the pipe joins
 * its epoll loop (agent_proc.c) and the request is answered when the answer comes, or after
 * SETUP_TIMEOUT_MS with the child killed: a set-up failure is the request's error reply, never
 * a hang, and a slow set-up never holds up other requests.
 *
 * Order in the child (as runc): namespaces, stdio, hostname, oom_score_adj, the filesystem
 * (agent_mount.c), the terminal (agent_pty.c), sysctl, rlimits, then the bounding set, the ids (additionalGids, gid,
 * uid) and the capability sets, umask, cwd, no_new_privs, and seccomp last. Without
 * no_new_privs, loading a filter needs CAP_SYS_ADMIN, so the filter is loaded before the
 * capabilities are dropped when the process will not keep CAP_SYS_ADMIN.
 */
#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_internal.h"

extern char **environ;

/* In the child: report why it failed ('E', errno, length, the message), and exit. */
static _Noreturn _printf_(2, 3) void child_fail(int report, const char *fmt, ...)
{
	char msg[REPORT_E_HDR + AGENT_MAX_ERROR_MSG];
	int32_t e = errno > 0 && errno < 4096 ? errno : EINVAL;
	uint16_t len;
	va_list ap;
	int n;

	msg[0] = 'E';
	memcpy(msg + 1, &e, sizeof(e));
	va_start(ap, fmt);
	n = vsnprintf(msg + REPORT_E_HDR, AGENT_MAX_ERROR_MSG, fmt, ap);
	va_end(ap);
	len = (uint16_t)(n < 0 ? 0 : n > AGENT_MAX_ERROR_MSG - 1 ? AGENT_MAX_ERROR_MSG - 1 : n);
	memcpy(msg + 5, &len, sizeof(len));
	/* One write, under PIPE_BUF: atomic, never interleaved with the helper's 'P'. */
	if (write(report, msg, REPORT_E_HDR + (size_t)len) < 0)
		_exit(126);
	_exit(127);
}

static void child_stdio(int report, const struct child_io *io)
{
	sigset_t none;
	int null = -1;

	/* The agent blocks SIGCHLD for its signalfd: the container must not inherit that. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (io->console[1] >= 0)
		return; /* the terminal comes once the container's /dev is there: child_tty() */
	for (int i = 0; i < 3; i++) {
		int fd = io->child[i];

		if (fd < 0) {
			if (null < 0 && (null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
				child_fail(report, "stdio: open /dev/null: %s", strerror(errno));
			fd = null;
		}
		if (dup2(fd, i) < 0)
			child_fail(report, "stdio: %s", strerror(errno));
	}
}

/* process.terminal: a pty of the container's devpts as stdio (agent_pty.c). */
static void child_tty(int report, const struct child_io *io, const struct process_spec *spec,
		      bool console)
{
	char err[AGENT_MAX_ERROR_MSG];

	if (io->console[1] >= 0 &&
	    pty_child_setup(io->console[1], spec, console, err, sizeof(err)) < 0)
		child_fail(report, "%s", err);
}

static void child_oom_score(int report, const struct process_spec *spec)
{
	char v[16];
	int fd, n;

	if (!spec->has_oom_score_adj)
		return;
	n = snprintf(v, sizeof(v), "%d", spec->oom_score_adj);
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, (size_t)n) != n)
		child_fail(report, "process.oomScoreAdj: write /proc/self/oom_score_adj: %s",
			   strerror(errno));
	close(fd);
}

static void child_sysctl(int report, char **sysctl)
{
	for (char **kv = sysctl; kv && kv[0]; kv += 2) {
		char path[512];
		size_t len = strlen(kv[1]);
		int fd;

		snprintf(path, sizeof(path), "/proc/sys/%s", kv[0]);
		for (char *p = path + 10; *p; p++)
			if (*p == '.')
				*p = '/';
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, kv[1], len) != (ssize_t)len)
			child_fail(report, "linux.sysctl: %s: %s", kv[0], strerror(errno));
		close(fd);
	}
}

static void child_rlimits(int report, const struct process_spec *spec)
{
	for (size_t i = 0; i < spec->nrlimits; i++) {
		const struct rlimit_spec *r = &spec->rlimits[i];
		struct rlimit rl = { r->soft == UINT64_MAX ? RLIM_INFINITY : r->soft,
				     r->hard == UINT64_MAX ? RLIM_INFINITY : r->hard };

		if (setrlimit(r->resource, &rl) < 0)
			child_fail(report, "process.rlimits[%zu]: setrlimit: %s", i,
				   strerror(errno));
	}
}

/*
 * The agent's bounding set, read once (64 prctl calls, each a guest syscall, that no CREATE
 * should repeat): a child starts with the agent's set, and setns() does not change it.
 */
static uint64_t agent_bounding;
static bool agent_bounding_known;

void setup_prepare(void)
{
	if (agent_bounding_known)
		return;
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			agent_bounding |= 1ull << cap;
	agent_bounding_known = true;
}

static bool cap_in_bounding(int cap)
{
	return agent_bounding & (1ull << cap);
}

/*
 * The bounding set first (dropping needs CAP_SETPCAP, which setuid may take away; done with
 * PR_CAPBSET_DROP because libcap-ng's bounding-set code reads /proc, which the container may
 * not have), then the ids with the permitted set kept across setuid, then effective,
 * permitted, inheritable and ambient through libcap-ng. Capabilities outside the bounding set
 * this agent runs with are skipped, as runc skips the ones it does not know.
 */
static void child_identity(int report, const struct process_spec *spec)
{
	static const capng_type_t types[CAP_NR] = { 0, CAPNG_EFFECTIVE, CAPNG_PERMITTED,
						    CAPNG_INHERITABLE, CAPNG_AMBIENT };

	if (spec->has_caps) {
		capng_clear(CAPNG_SELECT_ALL);
		for (int cap = 0; cap < 64; cap++) {
			if (!cap_in_bounding(cap))
				continue;
			if (!(spec->caps[CAP_BOUNDING] & (1ull << cap)) &&
			    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
				child_fail(report, "process.capabilities.bounding: drop %s: %s",
					   capng_capability_to_name((unsigned int)cap),
					   strerror(errno));
			for (int set = CAP_EFFECTIVE; set < CAP_NR; set++)
				if (spec->caps[set] & (1ull << cap))
					capng_update(CAPNG_ADD, types[set], (unsigned int)cap);
			/*
			 * The kernel raises an ambient capability only if it is permitted and
			 * inheritable too; runc skips the others (`runc spec` lists ambient
			 * without inheritable), and so do we.
			 */
			if ((spec->caps[CAP_AMBIENT] & (1ull << cap)) &&
			    !(spec->caps[CAP_PERMITTED] & spec->caps[CAP_INHERITABLE] &
			      (1ull << cap)))
				capng_update(CAPNG_DROP, CAPNG_AMBIENT, (unsigned int)cap);
		}
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			child_fail(report, "process.capabilities: keep caps: %s", strerror(errno));
	}
	if (spec->has_user) {
		gid_t *groups = (gid_t *)spec->groups;

		if (setgroups(spec->ngroups, groups) < 0)
			child_fail(report, "process.user.additionalGids: setgroups: %s",
				   strerror(errno));
		if (setresgid(spec->gid, spec->gid, spec->gid) < 0)
			child_fail(report, "process.user.gid: setgid %u: %s", spec->gid,
				   strerror(errno));
		if (setresuid(spec->uid, spec->uid, spec->uid) < 0)
			child_fail(report, "process.user.uid: setuid %u: %s", spec->uid,
				   strerror(errno));
	}
	if (spec->has_caps) {
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
		if (capng_apply(CAPNG_SELECT_CAPS) < 0)
			child_fail(report, "process.capabilities: capset: %s",
				   strerror(errno ? errno : EPERM));
		if (spec->caps[CAP_AMBIENT] && capng_apply(CAPNG_SELECT_AMBIENT) < 0)
			child_fail(report, "process.capabilities.ambient: %s",
				   strerror(errno ? errno : EPERM));
	}
}

/* Will the process still have CAP_SYS_ADMIN when it execs? */
static bool keeps_sys_admin(const struct process_spec *spec)
{
	if (spec->has_caps)
		return spec->caps[CAP_EFFECTIVE] & (1ull << CAP_SYS_ADMIN);
	return !spec->has_user || spec->uid == 0;
}

/* Everything of the process object, then exec (CREATE: after START). Never returns. */
static _Noreturn void child_process(int report, const struct process_spec *spec, void *seccomp,
				    int start_fd)
{
	bool late_seccomp = spec->no_new_privs || keeps_sys_admin(spec);
	/* As runc: HOME from the container's /etc/passwd if the env has none (no NSS). */
	char **env = passwd_env_with_home(spec->env, spec->has_user ? spec->uid : 0);
	char go;

	agent_trace("process: HOME");
	child_rlimits(report, spec);
	agent_trace("process: rlimits");
	if (seccomp && !late_seccomp && seccomp_apply(seccomp) < 0)
		child_fail(report, "linux.seccomp: load the filter: %s", strerror(errno));
	child_identity(report, spec);
	agent_trace("process: ids and capabilities");
	if (spec->has_umask)
		umask((mode_t)spec->umask);
	if (chdir(spec->cwd) < 0)
		child_fail(report, "process.cwd: chdir %s: %s", spec->cwd, strerror(errno));
	if (spec->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(report, "process.noNewPrivileges: %s", strerror(errno));
	if (start_fd >= 0) {
		agent_trace("process set up, ready");
		if (write(report, "R", 1) != 1)
			_exit(127);
		if (read(start_fd, &go, 1) != 1)
			_exit(127); /* deleted before START */
	}
	if (seccomp && late_seccomp) {
		int r = seccomp_apply(seccomp);

		if (r < 0)
			child_fail(report, "linux.seccomp: load the filter: %s", strerror(-r));
		agent_trace("process: seccomp");
	}
	environ = env;
	signal(SIGPIPE, SIG_DFL);
	execvp(spec->args[0], spec->args);
	signal(SIGPIPE, SIG_IGN);
	child_fail(report, "exec %s: %s", spec->args[0], strerror(errno));
}

static void child_wait_go(int sync_fd)
{
	char go;

	if (read(sync_fd, &go, 1) != 1)
		_exit(127); /* the agent gave up on us */
	close(sync_fd);
}

/*
 * The namespaces joined by path, in the order the kernel needs: the user namespace first
 * (the others may belong to it; then the child is root in it, and creates the namespaces of
 * linux.namespaces only now, so that they belong to it), then network, ipc, uts and cgroup,
 * and the mount namespace last (it changes the root). The pid namespace was joined by the
 * agent around the clone: setns(CLONE_NEWPID) only affects children.
 */
static void child_join(int report, const struct container_spec *cs, const int *join_fds)
{
	static const int order[] = { CLONE_NEWUSER, CLONE_NEWNET,    CLONE_NEWIPC,
				     CLONE_NEWUTS,  CLONE_NEWCGROUP, CLONE_NEWNS };

	for (size_t k = 0; k < ARRAY_SIZE(order); k++) {
		for (int i = 0; i < cs->njoin; i++) {
			if (cs->join_type[i] != order[k])
				continue;
			if (setns(join_fds[i], cs->join_type[i]) < 0)
				child_fail(report, "linux.namespaces: join %s: %s",
					   cs->join_path[i], strerror(errno));
			if (order[k] != CLONE_NEWUSER)
				continue;
			if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
				child_fail(report, "linux.namespaces: user %s: become its root: %s",
					   cs->join_path[i], strerror(errno));
			if (unshare(cs->clone_flags & ~CLONE_NEWPID) < 0)
				child_fail(report,
					   "linux.namespaces: create the namespaces in the joined "
					   "user namespace: %s",
					   strerror(errno));
		}
	}
	if ((cs->clone_flags & CLONE_NEWUSER) && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
		child_fail(report, "linux.uidMappings: become root in the user namespace: %s",
			   strerror(errno));
}

static _Noreturn void child_create(const struct spawn_request *req, const struct child_io *io,
				   const int *join_fds, int sync_fd, int report, int start_fd)
{
	const struct container_spec *cs = &req->c->spec;
	bool joined_mnt = ns_joined(cs, CLONE_NEWNS);
	char err[AGENT_MAX_ERROR_MSG] = "";

	child_wait_go(sync_fd);
	agent_trace("create: child running");
	if (req->hook)
		req->hook(req->c->id);
	child_join(report, cs, join_fds);
	if (cs->cgroup_ns && unshare(CLONE_NEWCGROUP) < 0)
		child_fail(report, "linux.namespaces: cgroup: %s", strerror(errno));
	child_stdio(report, io);
	if (cs->hostname && sethostname(cs->hostname, strlen(cs->hostname)) < 0)
		child_fail(report, "hostname: %s", strerror(errno));
	if (cs->domainname && setdomainname(cs->domainname, strlen(cs->domainname)) < 0)
		child_fail(report, "domainname: %s", strerror(errno));
	child_oom_score(report, req->spec);
	/* A joined mount namespace is another container's filesystem, as it is. */
	if (joined_mnt) {
		if (chdir("/") < 0)
			child_fail(report, "linux.namespaces: mount: chdir /: %s", strerror(errno));
	} else {
		agent_trace("create: namespaces joined, stdio, hostname");
		if (mount_rootfs(req->create_req, req->c->rootfs_dir, err, sizeof(err)) < 0)
			child_fail(report, "%s", err);
		agent_trace("create: rootfs mounted");
		if (mount_all(req->c->rootfs_dir, req->mounts, req->nmounts, cs,
			      io->console[1] >= 0, err, sizeof(err)) < 0)
			child_fail(report, "%s", err);
		agent_trace("create: mounts and /dev");
		if (mount_pivot(req->c->rootfs_dir, cs, err, sizeof(err)) < 0)
			child_fail(report, "%s", err);
		agent_trace("create: pivot_root, masked and read-only paths");
	}
	child_tty(report, io, req->spec, !joined_mnt);
	child_sysctl(report, cs->sysctl);
	agent_trace("create: terminal, sysctl");
	child_process(report, req->spec, cs->seccomp, start_fd);
}

/* The namespaces of the container's init that differ from ours, in setns order. */
struct ns_join {
	int fds[8];
	int types[8];
	int n;
	int root_fd;
};

static void ns_close(struct ns_join *j)
{
	for (int i = 0; i < j->n; i++)
		close(j->fds[i]);
	if (j->root_fd >= 0)
		close(j->root_fd);
	j->n = 0;
	j->root_fd = -1;
}

static int ns_open(pid_t init, struct ns_join *j)
{
	static const struct {
		const char *name;
		int type;
	} order[] = {
		{ "user", CLONE_NEWUSER }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },
		{ "net", CLONE_NEWNET },   { "pid", CLONE_NEWPID }, { "cgroup", CLONE_NEWCGROUP },
		{ "mnt", CLONE_NEWNS },
	};
	char path[64];

	j->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/root", (int)init);
	j->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (j->root_fd < 0)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		struct stat theirs, ours;
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init, order[i].name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			int e = -errno;

			ns_close(j);
			return e;
		}
		snprintf(path, sizeof(path), "/proc/self/ns/%s", order[i].name);
		if (fstat(fd, &theirs) == 0 && stat(path, &ours) == 0 &&
		    theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev) {
			close(fd);
			continue;
		}
		j->fds[j->n] = fd;
		j->types[j->n++] = order[i].type;
	}
	return 0;
}

/* EXEC's helper: join, clone the process into the namespaces, report its pid, exit. */
static _Noreturn void child_exec_helper(const struct spawn_request *req, const struct child_io *io,
					struct ns_join *j, int sync_fd, int report, int start_fd)
{
	char msg[1 + sizeof(pid_t)] = { 'P' };
	pid_t pid;

	child_wait_go(sync_fd);
	child_oom_score(report, req->spec); /* inherited by the clone */
	for (int i = 0; i < j->n; i++)
		if (setns(j->fds[i], j->types[i]) < 0)
			child_fail(report, "join the container's namespaces: %s", strerror(errno));
	if (fchdir(j->root_fd) < 0 || chroot(".") < 0)
		child_fail(report, "enter the container's root: %s", strerror(errno));
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0)
		child_fail(report, "clone into the container: %s", strerror(errno));
	if (pid == 0) {
		child_stdio(report, io);
		child_tty(report, io, req->spec, false);
		child_process(report, req->spec, req->c->spec.seccomp, start_fd);
	}
	memcpy(msg + 1, &pid, sizeof(pid));
	_exit(write(report, msg, sizeof(msg)) == (ssize_t)sizeof(msg) ? 0 : 127);
}

static int write_id_map(pid_t pid, const char *file, const struct id_map *m, unsigned int n)
{
	char path[64], buf[SPEC_MAX_ID_MAPS * 40];
	size_t len = 0;
	int fd, r = 0;

	for (unsigned int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i].inside,
					m[i].outside, m[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != (ssize_t)len)
		r = -errno;
	close(fd);
	return r;
}

int setup_report_error(const char *buf, size_t have, bool eof, char *err, size_t err_len)
{
	int32_t e;
	uint16_t len;

	if (have >= REPORT_E_HDR) {
		memcpy(&e, buf + 1, sizeof(e));
		memcpy(&len, buf + 5, sizeof(len));
		if (len >= AGENT_MAX_ERROR_MSG) {
			snprintf(err, err_len, "container set-up: a garbled error report");
			return -EPROTO;
		}
		if (have >= REPORT_E_HDR + (size_t)len) {
			snprintf(err, err_len, "%.*s", (int)len, buf + REPORT_E_HDR);
			return e > 0 && e < 4096 ? -e : -EINVAL;
		}
	}
	if (!eof)
		return 1;
	snprintf(err, err_len, "container set-up: a truncated error report");
	return -EPROTO;
}

/*
 * The agent's side of the report pipe, fed as bytes arrive: 'R', 'P' and its pid in any order
 * (EXEC's helper and its process both write; each write is atomic), 'E', errno, length and
 * a message. Nothing in it is trusted: a short or garbled report is a failed set-up.
 */
int setup_report_parse(struct process *p, bool eof, char *err, size_t err_len)
{
	bool create = !p->exec_id[0];
	size_t cap = sizeof(p->report_buf) - 1;

	while (p->report_have > 0) {
		char *buf = p->report_buf;
		size_t n = 0;

		if (buf[0] == 'R' && !p->ready) {
			p->ready = true;
			n = 1;
		} else if (buf[0] == 'P' && !create && p->pid <= 0) {
			pid_t pid;

			if (p->report_have < 1 + sizeof(pid))
				break;
			memcpy(&pid, buf + 1, sizeof(pid));
			p->pid = pid > 1 ? pid : -1;
			n = 1 + sizeof(pid);
		} else if (buf[0] == 'E') {
			return setup_report_error(buf, p->report_have, eof || p->report_have == cap,
						  err, err_len);
		} else {
			snprintf(err, err_len, "container set-up: a garbled report");
			return -EPROTO;
		}
		memmove(buf, buf + n, p->report_have - n);
		p->report_have -= n;
	}
	if (p->pid < 0) {
		snprintf(err, err_len, "container set-up: a bad pid in the report");
		return -EPROTO;
	}
	if (create && p->ready)
		return 0;
	if (!eof)
		return 1;
	/* EXEC: the pipe closed on a successful execve, after the go. */
	if (!create && p->ready && p->pid > 0 && p->start_fd < 0 && !p->report_have)
		return 0;
	snprintf(err, err_len, "container set-up: the process died before it was ready");
	return -ECHILD;
}

/*
 * CREATE's init, cloned straight into its cgroup where the kernel can (clone3 with
 * CLONE_INTO_CGROUP, Linux 5.7): cheaper in this guest than a clone and a write of
 * cgroup.procs, which migrates the new process. Otherwise a clone; the caller joins it.
 */
static pid_t clone_init(const struct spawn_request *req, unsigned long flags, bool *in_cgroup)
{
	struct clone_args args = { .flags = flags | CLONE_INTO_CGROUP, .exit_signal = SIGCHLD };
	int dir = req->c->cgroup ? open(req->c->cgroup, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	pid_t pid = -1;

	if (dir >= 0) {
		args.cgroup = (uint64_t)dir;
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		close(dir);
		if (pid >= 0) {
			*in_cgroup = pid > 0;
			return pid;
		}
	}
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
}

int setup_spawn(struct agent *a, const struct spawn_request *req, const struct child_io *io,
		int start_fd, pid_t *out, int *report_out, char *err, size_t err_len)
{
	struct ns_join j = { .n = 0, .root_fd = -1 };
	int sync[2] = { -1, -1 }, report[2] = { -1, -1 };
	int join_fds[SPEC_MAX_JOIN] = { -1, -1, -1, -1, -1, -1, -1 };
	int own_pid = -1, join_pid = -1;
	const struct container_spec *cs = &req->c->spec;
	unsigned long flags = (unsigned long)cs->clone_flags;
	bool in_cgroup = false;
	pid_t pid = -1;
	int r = 0;

	(void)a;
	setup_prepare();
	if (!req->create && (r = ns_open(req->c->init_pid, &j)) < 0) {
		snprintf(err, err_len, "EXEC: the container's init is gone: %s", strerror(-r));
		return r;
	}
	for (int i = 0; req->create && i < cs->njoin; i++) {
		/* O_NONBLOCK: a FIFO there must not stall the agent (setns then refuses it). */
		join_fds[i] = open(cs->join_path[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (join_fds[i] < 0) {
			r = -errno;
			snprintf(err, err_len, "linux.namespaces: open %s: %s", cs->join_path[i],
				 strerror(errno));
			goto out;
		}
	}
	if (pipe2(sync, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	/* A joined user namespace: the child creates the others once it is in it. */
	if (req->create && ns_joined(cs, CLONE_NEWUSER))
		flags = 0;
	/* A joined pid namespace: ours for children while cloning, then back to our own. */
	for (int i = 0; req->create && i < cs->njoin; i++)
		if (cs->join_type[i] == CLONE_NEWPID)
			join_pid = join_fds[i];
	if (join_pid >= 0 && ((own_pid = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0 ||
			      setns(join_pid, CLONE_NEWPID) < 0)) {
		r = -errno;
		snprintf(err, err_len, "linux.namespaces: join the pid namespace: %s",
			 strerror(errno));
		goto out;
	}
	agent_trace("clone");
	if (req->create)
		pid = clone_init(req, flags, &in_cgroup);
	else
		pid = fork();
	if (pid != 0 && join_pid >= 0 && setns(own_pid, CLONE_NEWPID) < 0)
		r = -errno; /* cannot happen: our own namespace; but never go on in theirs */
	if (pid == 0) {
		close(sync[1]);
		close(report[0]);
		if (req->create)
			child_create(req, io, join_fds, sync[0], report[1], start_fd);
		child_exec_helper(req, io, &j, sync[0], report[1], start_fd);
	}
	if (pid < 0) {
		r = -errno;
		snprintf(err, err_len, "clone: %s", strerror(errno));
		goto out;
	}
	if (r < 0) {
		snprintf(err, err_len, "linux.namespaces: back to our pid namespace: %s",
			 strerror(-r));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	close(report[1]);
	report[1] = -1;
	agent_trace("cloned");
	if (req->c->cgroup && !in_cgroup && (r = cgroup_join(req->c->cgroup, pid)) < 0)
		snprintf(err, err_len, "join the cgroup %s: %s", req->c->cgroup, strerror(-r));
	if (r == 0 && req->create && (cs->clone_flags & CLONE_NEWUSER) &&
	    ((r = write_id_map(pid, "uid_map", cs->uid_map, cs->nuid_map)) < 0 ||
	     (r = write_id_map(pid, "gid_map", cs->gid_map, cs->ngid_map)) < 0))
		snprintf(err, err_len, "linux.uidMappings: write the id maps: %s", strerror(-r));
	if (r == 0 && write(sync[1], "g", 1) != 1)
		r = -errno;
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	agent_trace("cloned, cgroup joined");
	*out = pid;
	*report_out = report[0];
	report[0] = -1;
out:
	if (own_pid >= 0)
		close(own_pid);
	ns_close(&j);
	for (int i = 0; i < SPEC_MAX_JOIN; i++)
		if (join_fds[i] >= 0)
			close(join_fds[i]);
	for (int i = 0; i < 2; i++) {
		if (sync[i] >= 0)
			close(sync[i]);
		if (report[i] >= 0)
			close(report[i]);
	}
	return r;
}

int setup_container_dir(struct agent *a, const char *cid, char **out, char *err, size_t err_len)
{
	char path[AGENT_MAX_PATH + AGENT_MAX_ID + 2];

	if (mkdir(a->run_dir, 0711) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "mkdir %s: %s", a->run_dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/%s", a->run_dir, cid);
	if (mkdir(path, 0711) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "mkdir %s: %s", path, strerror(errno));
		return -errno;
	}
	*out = strdup(path);
	return *out ? 0 : -ENOMEM;
}
