/*
 * Exec (see container.h). One agent exchange for both callers: a control connection and the
 * stdio streams to the agent, EXEC, then the relay of the caller's fds until the agent reports
 * the exit (exec_launch, exec_relay).
 * - `stratus exec` (container_exec): the process object (--process, or config.json's process
 *   with the flags applied); our stdio (or a pty whose master went to --console-socket) is
 *   relayed in this process and the exit status becomes ours. Signals we get (INT, TERM, HUP,
 *   QUIT, USR1, USR2) go to the process; window changes become RESIZE. --detach forks the
 *   relay into a child (its PID is the --pid-file PID) and returns once the process runs.
 * - the containerd shim (container_exec_start): a validated Process JSON and the caller's fds;
 *   the relay always runs in a forked child whose exit status is the process's, so the shim's
 *   event loop only watches a pidfd.
 * - a pod member's create (container_member.c): the session (container_internal.h) of its
 *   init, exec id "", whose forked relay is the member's pid, as a monitor is a container's.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "console.h"
#include "container.h"
#include "container_internal.h"
#include "exec_process.h"
#include "monitor.h"
#include "oci_json.h"
#include "relay.h"

#define EXEC_DRAIN_MS 5000

static const int exec_forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static int read_file(const char *path, size_t max, char **out, struct error *err, const char *what)
{
	_cleanup_free_ char *buf = malloc(max + 1);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t have = 0;
	ssize_t n;

	if (!buf)
		return error_set(err, -ENOMEM, "out of memory");
	if (fd < 0)
		return error_set_errno(err, -errno, "%s: cannot open %s", what, path);
	while ((n = read(fd, buf + have, max + 1 - have)) > 0)
		have += (size_t)n;
	if (n < 0)
		return error_set_errno(err, -errno, "%s: cannot read %s", what, path);
	if (have > max)
		return error_set(err, -E2BIG, "%s: %s is larger than %zu KiB", what, path,
				 max >> 10);
	buf[have] = '\0';
	*out = ptr_steal(&buf);
	return 0;
}

/* The terminal of a --process file: its "terminal", unless -t said otherwise. */
static int process_file_terminal(const char *json, const struct container_exec_opts *o,
				 bool *terminal, struct error *err)
{
	const char *path[] = { "terminal", NULL };
	struct error inner = { 0 };
	yajl_val root, v;

	/* bounded nesting and value count before yajl builds (and recursively frees) a tree */
	if (oci_json_prescan(json, strlen(json), &inner) < 0)
		return error_set(err, -EINVAL, "--process: %s: too deeply nested or too large",
				 o->process_file);
	root = yajl_tree_parse(json, NULL, 0);
	if (!root || !YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		return error_set(err, -EINVAL, "--process: %s: must be a JSON object",
				 o->process_file);
	}
	v = yajl_tree_get(root, path, yajl_t_any);
	*terminal = o->tty_set ? o->tty : v && YAJL_IS_TRUE(v);
	yajl_tree_free(root);
	return 0;
}

/* --process as given (the agent validates it), or one built from config.json. */
static int exec_build_process(const struct container_exec_opts *o, const char *bundle,
			      bool *terminal, char **out, struct error *err)
{
	_cleanup_free_ char *config = NULL, *path = NULL;
	struct exec_process_opts po = {
		.args = o->args,
		.cwd = o->cwd,
		.env = o->env,
		.caps = o->caps,
		.has_user = o->has_user,
		.uid = o->uid,
		.gid = o->gid,
		.terminal = o->tty,
		.no_new_privs = o->no_new_privs,
	};
	int r;

	if (o->process_file) {
		r = read_file(o->process_file, AGENT_MAX_PROCESS, out, err, "--process");
		return r ?: process_file_terminal(*out, o, terminal, err);
	}
	*terminal = o->tty;
	if (asprintf(&path, "%s/config.json", bundle) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	r = read_file(path, AGENT_MAX_OCI, &config, err, "config.json");
	return r ?: exec_process_json(config, &po, out, err);
}

int exec_open_stdio(struct exec_session *s, uint32_t *mask, struct error *err)
{
	char msg[512];
	int r;

	*mask = s->terminal ? AGENT_STDIO_BIT(AGENT_STREAM_PTY)
			    : AGENT_STDIO_BIT(AGENT_STREAM_STDIN) |
				      AGENT_STDIO_BIT(AGENT_STREAM_STDOUT) |
				      AGENT_STDIO_BIT(AGENT_STREAM_STDERR);
	r = agent_streams_open(s->vsock, s->id, s->exec_id, *mask, s->agent.timeout_ms, s->streams,
			       msg, sizeof(msg));
	return r < 0 ? error_set(err, r, "exec: stdio stream %s", msg) : 0;
}

int exec_console_socket(struct exec_session *s, const char *path, uint32_t rows, uint32_t cols,
			struct error *err)
{
	_cleanup_close_ int master = -1;
	int r = console_open_pty(rows, cols, false, &master, &s->pty_slave, err);

	r = r ?: console_send_fd(path, master, err);
	if (r < 0)
		return r;
	s->stdio[0] = s->stdio[1] = s->pty_slave;
	return 0;
}

static void exec_note_exit(struct exec_session *s, const struct agent_exit *e)
{
	if (strcmp(e->container_id, s->id) || strcmp(e->exec_id, s->exec_id) || s->exited)
		return;
	s->exited = true;
	s->status = e->flags & AGENT_EXIT_SIGNALED ? 128 + (int)e->status : (int)e->status;
}

static void exec_take_events(struct exec_session *s)
{
	struct agent_msg ev, req = { .type = AGENT_LIST_EXITS }, reply;

	while (agent_client_next_event(&s->agent, &ev, 0) == 0) {
		if (ev.type == AGENT_EVENT_EXIT)
			exec_note_exit(s, &ev.u.exit);
		agent_msg_clear(&ev);
	}
	/* the client's queue overflowed: our exit may be among the lost events */
	if (!s->agent.events_lost || s->agent.broken)
		return;
	s->agent.events_lost = false;
	if (agent_client_call(&s->agent, &req, &reply, s->agent.timeout_ms) < 0)
		return;
	for (uint32_t i = 0; i < reply.u.exits.exits.n; i++)
		exec_note_exit(s, &reply.u.exits.exits.v[i]);
	agent_msg_clear(&reply);
}

static void exec_send_size(struct exec_session *s)
{
	uint32_t rows, cols;

	if (s->terminal && s->cli_tty && console_get_size(s->stdio[0], &rows, &cols) == 0 && rows &&
	    cols)
		agent_client_resize(&s->agent, s->id, s->exec_id, rows, cols);
}

static void exec_on_signal(struct exec_session *s, int sig_fd)
{
	struct signalfd_siginfo info;

	while (read(sig_fd, &info, sizeof(info)) == sizeof(info)) {
		if (info.ssi_signo == SIGWINCH)
			exec_send_size(s);
		else
			agent_client_signal(&s->agent, s->id, s->exec_id, (int)info.ssi_signo, 0);
	}
}

static int exec_signal_fd(bool forward)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	for (unsigned int i = 0; forward && i < ARRAY_SIZE(exec_forwarded); i++)
		sigaddset(&set, exec_forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int exec_relay(struct exec_session *s, bool forward_signals)
{
	_cleanup_close_ int sig_fd =
		s->cli_tty || forward_signals ? exec_signal_fd(forward_signals) : -1;
	struct pollfd extra[2] = { { .fd = agent_client_fd(&s->agent), .events = POLLIN },
				   { .fd = sig_fd, .events = POLLIN } };
	int outputs[2] = { -1, -1 };
	struct termios saved;
	bool raw = false;
	uint64_t deadline = 0;
	struct relay relay;

	relay_init(&relay);
	if (!s->terminal) {
		relay_add(&relay, s->stdio[0], s->streams[AGENT_STREAM_STDIN], true);
		outputs[0] = relay_add(&relay, s->streams[AGENT_STREAM_STDOUT], s->stdio[1], false);
		outputs[1] = relay_add(&relay, s->streams[AGENT_STREAM_STDERR], s->stdio[2], false);
	} else {
		relay_add(&relay, s->stdio[0], s->streams[AGENT_STREAM_PTY], false);
		outputs[0] = relay_add(&relay, s->streams[AGENT_STREAM_PTY], s->stdio[1], false);
		if (s->cli_tty && s->pty_slave < 0 && isatty(s->stdio[0]))
			raw = console_set_raw(s->stdio[0], &saved) == 0;
		exec_send_size(s);
	}
	exec_take_events(s);
	while (!s->agent.broken) {
		if (s->exited) {
			if (!deadline)
				deadline = now_ms() + EXEC_DRAIN_MS;
			if ((relay_pipe_done(&relay, outputs[0]) &&
			     relay_pipe_done(&relay, outputs[1])) ||
			    now_ms() >= deadline)
				break;
		}
		if (relay_step(&relay, extra, sig_fd >= 0 ? 2 : 1, s->exited ? 100 : -1) < 0)
			break;
		if (extra[0].revents)
			exec_take_events(s);
		if (sig_fd >= 0 && extra[1].revents) {
			exec_on_signal(s, sig_fd);
			exec_take_events(s); /* replies may have brought events along */
		}
	}
	if (raw)
		tcsetattr(s->stdio[0], TCSANOW, &saved);
	if (!s->exited)
		return s->lost_status;
	agent_client_ack_exit(&s->agent, s->id, s->exec_id);
	return s->status;
}

static int write_pid_file(const char *path, pid_t pid, struct error *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || dprintf(fd, "%d", (int)pid) < 0)
		return error_set_errno(err, -errno, "--pid-file: cannot write %s", path);
	return 0;
}

void exec_session_close(struct exec_session *s)
{
	for (int i = 0; i < AGENT_STREAM_NR; i++)
		closep(&s->streams[i]);
	closep(&s->pty_slave);
	agent_client_destroy(&s->agent);
}

void exec_session_init(struct exec_session *s, const char *root, const char *id)
{
	memset(s, 0, sizeof(*s));
	s->root = root;
	s->id = id;
	s->pty_slave = -1;
	s->lost_status = MONITOR_EXIT_VM_LOST;
	for (int i = 0; i < AGENT_STREAM_NR; i++)
		s->streams[i] = -1;
	for (int i = 0; i < 3; i++)
		s->stdio[i] = i;
	agent_client_init(&s->agent, container_agent_timeout_ms());
}

/* The container must be running; its bundle into *bundle when asked. */
static int exec_check_state(const char *root, const char *id, char **bundle, struct error *err)
{
	struct container_state st;
	int r = container_load(root, id, &st, err);

	if (r < 0)
		return r;
	if (st.status == CONTAINER_STOPPED || st.status == CONTAINER_PAUSED)
		r = error_set(err, st.status == CONTAINER_PAUSED ? -EBUSY : -ESRCH,
			      "exec: container \"%s\" is %s", id, container_status_name(st.status));
	else if (bundle && !(*bundle = strdup(st.bundle)))
		r = error_set(err, -ENOMEM, "out of memory");
	state_clear(&st);
	return r;
}

/* The agent exchange: control connection, stdio streams, EXEC of process under s->exec_id. */
static int exec_launch(struct exec_session *s, const char *process, uint32_t *pid,
		       struct error *err)
{
	struct agent_exec req = { 0 };
	int r;

	r = container_vsock_path(s->root, s->id, s->vsock, sizeof(s->vsock), err);
	r = r ?: container_agent_connect_path(s->vsock, s->id, &s->agent, err);
	if (r < 0)
		return r;
	r = exec_open_stdio(s, &req.stdio, err);
	if (r < 0)
		return r;
	req.container_id = (char *)s->id;
	req.exec_id = s->exec_id;
	req.process = (char *)process;
	r = agent_client_exec(&s->agent, &req, pid);
	if (r < 0)
		return error_set(err, r, "exec: %s", s->agent.err);
	return 0;
}

/* In the relay child: close every fd but the session's and 0/1/2. */
static void exec_close_other_fds(const struct exec_session *s)
{
	int keep[3 + AGENT_STREAM_NR + 2], n = 0, low = 3;

	for (int i = 0; i < 3; i++)
		keep[n++] = s->stdio[i];
	for (int i = 0; i < AGENT_STREAM_NR; i++)
		keep[n++] = s->streams[i];
	keep[n++] = s->pty_slave;
	keep[n++] = agent_client_fd(&s->agent);
	/* ascending: close the gaps between the fds we keep */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];

			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		if (keep[i] < low)
			continue;
		if (keep[i] > low)
			close_range((unsigned int)low, (unsigned int)keep[i] - 1, 0);
		low = keep[i] + 1;
	}
	close_range((unsigned int)low, ~0u, 0);
}

/*
 * A pod member's relay stands for its init as a monitor does (docs/pods.md): comm
 * stratus-relay, SIGPIPE and SIGHUP ignored, the signals a monitor's caller may send
 * forwarded to the init, a --console-socket pty as its controlling terminal (window changes
 * become RESIZE) and the caller's stdio then let go.
 */
static void exec_become_member_relay(struct exec_session *s)
{
	int null_fd;

	prctl(PR_SET_NAME, "stratus-relay");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (s->pty_slave < 0)
		return;
	ioctl(s->pty_slave, TIOCSCTTY, 0);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; null_fd >= 0 && i < 3; i++)
		if (s->stdio[i] != i)
			dup2(null_fd, i);
	if (null_fd > 2)
		close(null_fd);
}

int exec_fork_relay(struct exec_session *s, pid_t *child, struct error *err)
{
	fflush(NULL);
	*child = fork();
	if (*child < 0)
		return error_set_errno(err, -errno, "exec: fork");
	if (*child == 0) {
		setsid();
		exec_close_other_fds(s);
		if (s->member)
			exec_become_member_relay(s);
		_exit(exec_relay(s, s->member));
	}
	return 0;
}

int container_exec_start(const struct container_exec_start_opts *o, struct container_exec_handle *h,
			 struct error *err)
{
	struct exec_session s;
	_cleanup_close_ int null_fd = -1;
	_cleanup_free_ char *process = NULL;
	uint32_t pid;
	int r;

	exec_session_init(&s, o->root, o->id);
	if (!o->exec_id || !o->exec_id[0] || strlen(o->exec_id) > AGENT_MAX_ID) {
		r = error_set(err, -EINVAL, "exec id: must be 1 to %d bytes", AGENT_MAX_ID);
		goto out;
	}
	snprintf(s.exec_id, sizeof(s.exec_id), "%s", o->exec_id);
	r = exec_process_check("exec", o->process, o->process_len, &s.terminal, err);
	if (r < 0)
		goto out;
	process = strndup(o->process, o->process_len);
	if (!process) {
		r = error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		if (o->stdio[i] >= 0) {
			s.stdio[i] = o->stdio[i];
			continue;
		}
		if (null_fd < 0 && (null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
			r = error_set_errno(err, -errno, "exec: /dev/null");
			goto out;
		}
		s.stdio[i] = null_fd;
	}
	r = exec_check_state(o->root, o->id, NULL, err);
	r = r ?: exec_launch(&s, process, &pid, err);
	r = r ?: exec_fork_relay(&s, &h->relay_pid, err);
	if (r < 0)
		goto out;
	h->pid = pid;
	h->terminal = s.terminal;
out:
	exec_session_close(&s);
	return r;
}

int container_exec_resize(const char *root, const char *id, const char *exec_id, uint32_t rows,
			  uint32_t cols, struct error *err)
{
	struct agent_client c;
	int r = container_agent_connect(root, id, &c, err);

	if (r < 0)
		return r;
	r = agent_client_resize(&c, id, exec_id ? exec_id : "", rows, cols);
	if (r < 0)
		error_set(err, r, "resize: %s", c.err);
	agent_client_destroy(&c);
	return r;
}

int container_exec_kill(const char *root, const char *id, const char *exec_id, int signal,
			struct error *err)
{
	struct agent_client c;
	int r = container_agent_connect(root, id, &c, err);

	if (r < 0)
		return r;
	r = agent_client_signal(&c, id, exec_id, signal, 0);
	if (r < 0)
		error_set(err, r, "kill: %s", c.err);
	agent_client_destroy(&c);
	return r;
}

/* `stratus exec`: the process from the flags, then exec_launch and the relay here or forked. */
int container_exec(struct container_exec_opts *o, struct error *err)
{
	struct exec_session s;
	_cleanup_free_ char *bundle = NULL, *process = NULL;
	uint64_t rnd = 0;
	uint32_t pid;
	pid_t child;
	int r;

	exec_session_init(&s, o->root, o->id);
	s.cli_tty = true;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	snprintf(s.exec_id, sizeof(s.exec_id), "exec-%016llx", (unsigned long long)rnd);
	r = exec_check_state(o->root, o->id, &bundle, err);
	r = r ?: exec_build_process(o, bundle, &s.terminal, &process, err);
	if (r < 0)
		goto out;
	if (s.terminal && !o->console_socket && o->detach) {
		r = error_set(err, -EINVAL,
			      "exec: --detach with a terminal needs --console-socket");
		goto out;
	}
	if (!s.terminal && o->console_socket) {
		r = error_set(err, -EINVAL, "exec: --console-socket: only with --tty");
		goto out;
	}
	if (s.terminal && o->console_socket) {
		r = exec_console_socket(&s, o->console_socket, 0, 0, err);
		if (r < 0)
			goto out;
	}
	r = exec_launch(&s, process, &pid, err);
	if (r < 0)
		goto out;
	if (!o->detach) {
		if (o->pid_file)
			r = write_pid_file(o->pid_file, getpid(), err);
		o->exit_status = exec_relay(&s, true);
		goto out;
	}
	r = exec_fork_relay(&s, &child, err);
	if (r == 0 && o->pid_file)
		r = write_pid_file(o->pid_file, child, err);
out:
	exec_session_close(&s);
	return r;
}
