/*
 * `stratus exec` (container_exec, see container.h): the process object (--process, or
 * config.json's process with the flags applied), a control connection and the stdio streams
 * to the agent, EXEC, then the relay of our stdio (or a pty whose master went to
 * --console-socket) until the agent reports the exit, whose status becomes ours. Signals we
 * get (INT, TERM, HUP, QUIT, USR1, USR2) go to the process; window changes become RESIZE.
 * --detach forks the relay into a child (its PID is the --pid-file PID) and returns once the
 * process runs.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "console.h"
#include "container.h"
#include "exec_process.h"
#include "monitor.h"
#include "oci_json.h"
#include "relay.h"

#define EXEC_DRAIN_MS 5000

struct exec_session {
	const struct container_exec_opts *o;
	char exec_id[40];
	char vsock[4200];
	struct agent_client agent;
	int streams[AGENT_STREAM_NR];
	int pty_slave; /* with --console-socket */
	bool terminal;
	bool exited;
	int status;
};

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

static int exec_open_stream(struct exec_session *s, enum agent_stream stream, struct error *err)
{
	char msg[512];
	int fd = agent_stream_open(s->vsock, s->o->id, s->exec_id, stream, s->agent.timeout_ms, msg,
				   sizeof(msg));

	if (fd < 0)
		return error_set(err, fd, "exec: stdio stream %d: %s", stream, msg);
	s->streams[stream] = fd;
	return 0;
}

static int exec_open_stdio(struct exec_session *s, uint32_t *mask, struct error *err)
{
	_cleanup_close_ int master = -1;
	int r;

	if (!s->terminal) {
		*mask = AGENT_STDIO_BIT(AGENT_STREAM_STDIN) | AGENT_STDIO_BIT(AGENT_STREAM_STDOUT) |
			AGENT_STDIO_BIT(AGENT_STREAM_STDERR);
		r = exec_open_stream(s, AGENT_STREAM_STDIN, err);
		r = r ?: exec_open_stream(s, AGENT_STREAM_STDOUT, err);
		return r ?: exec_open_stream(s, AGENT_STREAM_STDERR, err);
	}
	*mask = AGENT_STDIO_BIT(AGENT_STREAM_PTY);
	if (s->o->console_socket) {
		r = console_open_pty(0, 0, false, &master, &s->pty_slave, err);
		r = r ?: console_send_fd(s->o->console_socket, master, err);
		if (r < 0)
			return r;
	}
	return exec_open_stream(s, AGENT_STREAM_PTY, err);
}

static void exec_note_exit(struct exec_session *s, const struct agent_exit *e)
{
	if (strcmp(e->container_id, s->o->id) || strcmp(e->exec_id, s->exec_id) || s->exited)
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

	if (s->terminal &&
	    console_get_size(s->pty_slave >= 0 ? s->pty_slave : 0, &rows, &cols) == 0 && rows &&
	    cols)
		agent_client_resize(&s->agent, s->o->id, s->exec_id, rows, cols);
}

static void exec_on_signal(struct exec_session *s, int sig_fd)
{
	struct signalfd_siginfo info;

	while (read(sig_fd, &info, sizeof(info)) == sizeof(info)) {
		if (info.ssi_signo == SIGWINCH)
			exec_send_size(s);
		else
			agent_client_signal(&s->agent, s->o->id, s->exec_id, (int)info.ssi_signo,
					    0);
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

/* Relay until the exit is reported and the output drained; the process's status. */
static int exec_relay(struct exec_session *s, bool forward_signals)
{
	_cleanup_close_ int sig_fd = exec_signal_fd(forward_signals);
	struct pollfd extra[2] = { { .fd = agent_client_fd(&s->agent), .events = POLLIN },
				   { .fd = sig_fd, .events = POLLIN } };
	int outputs[2] = { -1, -1 }, in = s->pty_slave >= 0 ? s->pty_slave : 0;
	struct termios saved;
	bool raw = false;
	uint64_t deadline = 0;
	struct relay relay;

	relay_init(&relay);
	if (!s->terminal) {
		relay_add(&relay, 0, s->streams[AGENT_STREAM_STDIN], true);
		outputs[0] = relay_add(&relay, s->streams[AGENT_STREAM_STDOUT], 1, false);
		outputs[1] = relay_add(&relay, s->streams[AGENT_STREAM_STDERR], 2, false);
	} else {
		relay_add(&relay, in, s->streams[AGENT_STREAM_PTY], false);
		outputs[0] = relay_add(&relay, s->streams[AGENT_STREAM_PTY],
				       s->pty_slave >= 0 ? s->pty_slave : 1, false);
		if (s->pty_slave < 0 && isatty(0))
			raw = console_set_raw(0, &saved) == 0;
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
		tcsetattr(0, TCSANOW, &saved);
	if (!s->exited)
		return MONITOR_EXIT_VM_LOST;
	agent_client_ack_exit(&s->agent, s->o->id, s->exec_id);
	return s->status;
}

static int write_pid_file(const char *path, pid_t pid, struct error *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || dprintf(fd, "%d", (int)pid) < 0)
		return error_set_errno(err, -errno, "--pid-file: cannot write %s", path);
	return 0;
}

static void exec_session_close(struct exec_session *s)
{
	for (int i = 0; i < AGENT_STREAM_NR; i++)
		closep(&s->streams[i]);
	closep(&s->pty_slave);
	agent_client_destroy(&s->agent);
}

static int exec_start(struct exec_session *s, const char *bundle, struct error *err)
{
	_cleanup_free_ char *process = NULL;
	struct agent_exec req = { 0 };
	uint64_t rnd = 0;
	uint32_t pid;
	int r;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	snprintf(s->exec_id, sizeof(s->exec_id), "exec-%016llx", (unsigned long long)rnd);
	r = exec_build_process(s->o, bundle, &s->terminal, &process, err);
	if (r < 0)
		return r;
	if (s->terminal && !s->o->console_socket && s->o->detach)
		return error_set(err, -EINVAL,
				 "exec: --detach with a terminal needs "
				 "--console-socket");
	if (!s->terminal && s->o->console_socket)
		return error_set(err, -EINVAL, "exec: --console-socket: only with --tty");
	r = container_agent_connect(s->o->root, s->o->id, &s->agent, err);
	if (r < 0)
		return r;
	r = exec_open_stdio(s, &req.stdio, err);
	if (r < 0)
		return r;
	req.container_id = (char *)s->o->id;
	req.exec_id = s->exec_id;
	req.process = process;
	r = agent_client_exec(&s->agent, &req, &pid);
	if (r < 0)
		return error_set(err, r, "exec: agent: %s", s->agent.err);
	return 0;
}

int container_exec(struct container_exec_opts *o, struct error *err)
{
	struct exec_session s = { .o = o, .pty_slave = -1 };
	struct container_state st;
	pid_t child;
	int r;

	for (int i = 0; i < AGENT_STREAM_NR; i++)
		s.streams[i] = -1;
	r = container_load(o->root, o->id, &st, err);
	if (r < 0)
		return r;
	if (st.status == CONTAINER_STOPPED || st.status == CONTAINER_PAUSED) {
		r = error_set(err, -EINVAL, "exec: container \"%s\" is %s", o->id,
			      container_status_name(st.status));
		state_clear(&st);
		return r;
	}
	snprintf(s.vsock, sizeof(s.vsock), "%s/%s/%s", o->root, o->id, MONITOR_VSOCK);
	r = exec_start(&s, st.bundle, err);
	state_clear(&st);
	if (r < 0)
		goto out;
	if (!o->detach) {
		if (o->pid_file)
			r = write_pid_file(o->pid_file, getpid(), err);
		o->exit_status = exec_relay(&s, true);
		goto out;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		r = error_set_errno(err, -errno, "exec: fork");
		goto out;
	}
	if (child == 0) {
		setsid();
		_exit(exec_relay(&s, false));
	}
	if (o->pid_file)
		r = write_pid_file(o->pid_file, child, err);
out:
	exec_session_close(&s);
	return r;
}
