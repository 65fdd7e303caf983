/*
 * stratus-agentctl: a test tool that drives a stratus-agent in a real microVM through the
 * VM's hybrid-vsock Unix socket, one request per invocation, with the host's real client
 * (runtime/agent_client.h). tests/integration/test_agent_vm.sh is its user; it is not the
 * product CLI (that is `stratus`). See tests/integration/agent/README.md for the commands.
 *
 * stdio: the streams a process needs are attached before CREATE or EXEC, then relayed to and
 * from host files by a poll loop (agentctl_relay.c). `run` and `exec` relay in the
 * foreground, wait for the exit record, acknowledge it and exit with the process's status
 * (the code, or 128 + the signal), so a shell test sees what a shell would. agentctl's own
 * failures exit 125, with one line on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_client.h"
#include "agentctl.h"

#define MAX_MOUNTS 16
/* Our own failures (usage, connection, a refused request): apart from a process's status. */
#define AGENTCTL_FAILED 125

static const char *sock_path;
static int timeout_ms = 120000;

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
	va_list ap;

	fputs("agentctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return AGENTCTL_FAILED;
}

static int usage(void)
{
	fputs("usage: stratus-agentctl [--timeout SECS] SOCK COMMAND ...\n"
	      "  hello | ping | shutdown | list-exits | events COUNT [SECS]\n"
	      "  create|run ID (--rootfs-block DEV FSTYPE | --rootfs-virtiofs TAG)\n"
	      "      [--rootfs-options OPTS] [--mount SRC:TARGET:FSTYPE[:OPT,...]]...\n"
	      "      --config FILE [STDIO]\n"
	      "  exec ID EXEC --process FILE [--detach] [STDIO]\n"
	      "  start ID | ps ID | stats ID | delete ID [--force] | freeze ID | thaw ID\n"
	      "  mount-share TAG\n"
	      "  wait ID [EXEC] | ack ID [EXEC] | signal ID SIG [EXEC] [--all]\n"
	      "  resize ID ROWS COLS [EXEC]\n"
	      "STDIO: [--stdin FILE] [--stdout FILE] [--stderr FILE] [--tty] (FILE - is ours)\n",
	      stderr);
	return AGENTCTL_FAILED;
}

/* A whole file as a NUL-terminated string of at most max bytes: NULL with a message. */
static char *read_text(const char *flag, const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	char *buf = malloc(max + 1);
	ssize_t n = 1;

	if (fd < 0 || !buf) {
		die("%s %s: %s", flag, path, strerror(fd < 0 ? errno : ENOMEM));
		goto fail;
	}
	while (len <= max && (n = read(fd, buf + len, max + 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0 || len > max) {
		die("%s %s: %s", flag, path, n < 0 ? strerror(errno) : "too large");
		goto fail;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int parse_u32(const char *what, const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v > UINT32_MAX)
		return die("%s %s: not a number", what, s);
	*out = (uint32_t)v;
	return 0;
}

static int parse_signal(const char *s, uint32_t *out)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = { { "HUP", SIGHUP },    { "INT", SIGINT },	 { "QUIT", SIGQUIT },
		      { "KILL", SIGKILL },  { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
		      { "TERM", SIGTERM },  { "CONT", SIGCONT }, { "STOP", SIGSTOP },
		      { "WINCH", SIGWINCH } };

	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i].name)) {
			*out = (uint32_t)names[i].sig;
			return 0;
		}
	}
	if (strspn(s, "0123456789") != strlen(s))
		return die("signal %s: not a number or a known name (TERM, KILL, ...)", s);
	return parse_u32("signal", s, out);
}

/* The stdio flags of create, run and exec; i is advanced past what was consumed. */
static int parse_stdio(int argc, char **argv, int *i, struct agentctl_stdio *io)
{
	const char *flag = argv[*i];

	if (!strcmp(flag, "--tty")) {
		io->tty = true;
		return 1;
	}
	if (strcmp(flag, "--stdin") && strcmp(flag, "--stdout") && strcmp(flag, "--stderr"))
		return 0;
	if (*i + 1 >= argc) {
		die("%s: needs a FILE", flag);
		return -1;
	}
	(*i)++;
	if (!strcmp(flag, "--stdin"))
		io->in = argv[*i];
	else if (!strcmp(flag, "--stdout"))
		io->out = argv[*i];
	else
		io->err = argv[*i];
	return 1;
}

static int connect_agent(struct agent_client *c)
{
	agent_client_init(c, timeout_ms);
	if (agent_client_connect(c, sock_path) < 0) {
		die("%s", c->err);
		agent_client_destroy(c);
		return -1;
	}
	return 0;
}

static int failed(struct agent_client *c, const char *what)
{
	die("%s: %s", what, c->err);
	agent_client_destroy(c);
	return AGENTCTL_FAILED;
}

static void print_exit(const struct agent_exit *e)
{
	bool sig = e->flags & AGENT_EXIT_SIGNALED;

	printf("pid=%" PRIu32 " status=%" PRIu32 " code=%" PRIu32 " signal=%" PRIu32
	       " oom=%d core=%d\n",
	       e->pid, sig ? 128 + e->status : e->status, sig ? 0 : e->status, sig ? e->status : 0,
	       !!(e->flags & AGENT_EXIT_OOM), !!(e->flags & AGENT_EXIT_CORE));
	fflush(stdout);
}

/* WAIT (forever), print the record, optionally ACK_EXIT: the process's status or 1. */
static int wait_exit(struct agent_client *c, const char *id, const char *exec_id, bool ack)
{
	struct agent_msg m = { 0 };
	int status;

	if (agent_client_wait(c, id, exec_id, -1, &m) < 0)
		return die("wait %s %s: %s", id, exec_id, c->err);
	print_exit(&m.u.exit);
	status = m.u.exit.flags & AGENT_EXIT_SIGNALED ? 128 + (int)m.u.exit.status
						      : (int)m.u.exit.status;
	agent_msg_clear(&m);
	if (ack && agent_client_ack_exit(c, id, exec_id) < 0)
		return die("ack %s %s: %s", id, exec_id, c->err);
	return status & 0xff;
}

/* After a forced delete: wait (bounded) for the init's record, printing nothing. */
static int wait_exit_quiet(struct agent_client *c, const char *id)
{
	struct agent_msg m = { 0 };
	int r = agent_client_wait(c, id, "", timeout_ms, &m);

	if (r == 0)
		agent_msg_clear(&m);
	return r;
}

/*
 * create and run: attach the streams, CREATE. run then STARTs, relays in the foreground,
 * waits, deletes and acknowledges; create leaves a detached relay behind and prints the pid.
 */
static int cmd_create(int argc, char **argv, bool run)
{
	struct agent_mount mounts[MAX_MOUNTS] = { 0 };
	char *opts[MAX_MOUNTS][AGENT_MAX_OPTIONS];
	struct agent_create req = { .rootfs_source = "",
				    .rootfs_fstype = "",
				    .rootfs_options = "" };
	struct agentctl_stdio io = { 0 };
	const char *config = NULL;
	struct agent_client c;
	uint32_t pid;
	int r, status;

	if (argc < 1)
		return usage();
	req.container_id = argv[0];
	for (int i = 1; i < argc; i++) {
		if ((r = parse_stdio(argc, argv, &i, &io)) < 0)
			return AGENTCTL_FAILED;
		if (r > 0)
			continue;
		if (!strcmp(argv[i], "--rootfs-block") && i + 2 < argc) {
			req.rootfs_kind = AGENT_ROOTFS_BLOCK;
			req.rootfs_source = argv[++i];
			req.rootfs_fstype = argv[++i];
		} else if (!strcmp(argv[i], "--rootfs-virtiofs") && i + 1 < argc) {
			req.rootfs_kind = AGENT_ROOTFS_VIRTIOFS;
			req.rootfs_source = argv[++i];
		} else if (!strcmp(argv[i], "--rootfs-options") && i + 1 < argc) {
			req.rootfs_options = argv[++i];
		} else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			config = argv[++i];
		} else if (!strcmp(argv[i], "--mount") && i + 1 < argc) {
			struct agent_mount *m = &mounts[req.mounts.n];
			char *o;

			if (req.mounts.n == MAX_MOUNTS)
				return die("--mount: at most %d", MAX_MOUNTS);
			m->source = strtok(argv[++i], ":");
			m->target = strtok(NULL, ":");
			m->fstype = strtok(NULL, ":");
			o = strtok(NULL, "");
			if (!m->source || !m->target || !m->fstype)
				return die("--mount: expected SRC:TARGET:FSTYPE[:OPT,...]");
			m->options.v = opts[req.mounts.n];
			for (o = o ? strtok(o, ",") : NULL; o; o = strtok(NULL, ",")) {
				if (m->options.n == AGENT_MAX_OPTIONS)
					return die("--mount: at most %d options",
						   AGENT_MAX_OPTIONS);
				m->options.v[m->options.n++] = o;
			}
			req.mounts.n++;
		} else {
			return usage();
		}
	}
	req.mounts.v = mounts;
	if (!config)
		return die("%s: --config FILE is required", run ? "run" : "create");
	if (!req.rootfs_kind)
		return die("%s: --rootfs-block or --rootfs-virtiofs is required",
			   run ? "run" : "create");
	if (!run && ((io.in && !strcmp(io.in, "-")) || (io.out && !strcmp(io.out, "-")) ||
		     (io.err && !strcmp(io.err, "-"))))
		return die("create: stdio - is only for run and exec (the relay is detached)");
	req.oci_config = read_text("--config", config, AGENT_MAX_OCI);
	if (!req.oci_config)
		return AGENTCTL_FAILED;
	if (connect_agent(&c) < 0) {
		free(req.oci_config);
		return AGENTCTL_FAILED;
	}
	r = agentctl_stdio_open(&io, sock_path, req.container_id, "", timeout_ms);
	req.stdio = io.mask;
	if (r == 0 && agent_client_create(&c, &req, &pid) < 0)
		r = die("create %s: %s", req.container_id, c.err);
	free(req.oci_config);
	if (r) {
		agentctl_stdio_close(&io);
		agent_client_destroy(&c);
		return AGENTCTL_FAILED;
	}
	if (!run) {
		printf("pid=%" PRIu32 "\n", pid);
		fflush(stdout);
		r = agentctl_relay_detach(&io, agent_client_fd(&c));
		agent_client_destroy(&c);
		return r < 0 ? AGENTCTL_FAILED : 0;
	}
	if (agent_client_start(&c, req.container_id) < 0) {
		die("start %s: %s", req.container_id, c.err);
		agentctl_stdio_close(&io);
		/* run leaves nothing behind: the created container goes, its record too. */
		if (agent_client_delete(&c, req.container_id, AGENT_DELETE_FORCE) == 0 &&
		    wait_exit_quiet(&c, req.container_id) == 0)
			agent_client_ack_exit(&c, req.container_id, "");
		agent_client_destroy(&c);
		return AGENTCTL_FAILED;
	}
	r = agentctl_relay(&io);
	/* As a runtime would: the status, the container deleted, then the record released. */
	status = wait_exit(&c, req.container_id, "", false);
	if (agent_client_delete(&c, req.container_id, 0) < 0)
		status = die("delete %s: %s", req.container_id, c.err);
	else if (agent_client_ack_exit(&c, req.container_id, "") < 0)
		status = die("ack %s: %s", req.container_id, c.err);
	agent_client_destroy(&c);
	return r < 0 ? AGENTCTL_FAILED : status;
}

static int cmd_exec(int argc, char **argv)
{
	struct agent_exec req = { 0 };
	struct agentctl_stdio io = { 0 };
	const char *process = NULL;
	struct agent_client c;
	bool detach = false;
	uint32_t pid;
	int r, status;

	if (argc < 2)
		return usage();
	req.container_id = argv[0];
	req.exec_id = argv[1];
	for (int i = 2; i < argc; i++) {
		if ((r = parse_stdio(argc, argv, &i, &io)) < 0)
			return AGENTCTL_FAILED;
		if (r > 0)
			continue;
		if (!strcmp(argv[i], "--process") && i + 1 < argc)
			process = argv[++i];
		else if (!strcmp(argv[i], "--detach"))
			detach = true;
		else
			return usage();
	}
	if (!process)
		return die("exec: --process FILE is required");
	req.process = read_text("--process", process, AGENT_MAX_PROCESS);
	if (!req.process)
		return AGENTCTL_FAILED;
	if (connect_agent(&c) < 0) {
		free(req.process);
		return AGENTCTL_FAILED;
	}
	r = agentctl_stdio_open(&io, sock_path, req.container_id, req.exec_id, timeout_ms);
	req.stdio = io.mask;
	if (r == 0 && agent_client_exec(&c, &req, &pid) < 0)
		r = die("exec %s %s: %s", req.container_id, req.exec_id, c.err);
	free(req.process);
	if (r) {
		agentctl_stdio_close(&io);
		agent_client_destroy(&c);
		return AGENTCTL_FAILED;
	}
	if (detach) {
		printf("pid=%" PRIu32 "\n", pid);
		fflush(stdout);
		r = agentctl_relay_detach(&io, agent_client_fd(&c));
		agent_client_destroy(&c);
		return r < 0 ? AGENTCTL_FAILED : 0;
	}
	r = agentctl_relay(&io);
	status = wait_exit(&c, req.container_id, req.exec_id, true);
	agent_client_destroy(&c);
	return r < 0 ? AGENTCTL_FAILED : status;
}

static int cmd_ps(struct agent_client *c, const char *id)
{
	struct agent_msg req = { .type = AGENT_PS }, reply = { 0 };

	req.u.container.container_id = (char *)id;
	if (agent_client_call(c, &req, &reply, timeout_ms) < 0)
		return failed(c, "ps");
	for (uint32_t i = 0; i < reply.u.ps.procs.n; i++) {
		const struct agent_process_info *p = &reply.u.ps.procs.v[i];

		printf("%" PRIu32 " %" PRIu32 " %" PRIu32 " %s %s\n", p->pid, p->ppid, p->uid,
		       p->exec_id[0] ? p->exec_id : "-", p->command);
	}
	if (reply.u.ps.flags & AGENT_PS_TRUNCATED)
		printf("truncated\n");
	agent_msg_clear(&reply);
	agent_client_destroy(c);
	return 0;
}

/* Print COUNT events (exits, OOM kills) as they come, after a "listening" line. */
static int cmd_events(struct agent_client *c, const char *count_s, const char *secs_s)
{
	uint32_t count, secs = 600;
	struct agent_msg ev;

	if (parse_u32("events COUNT", count_s, &count) ||
	    (secs_s && (parse_u32("events SECS", secs_s, &secs) || secs == 0 || secs > 86400))) {
		agent_client_destroy(c);
		return AGENTCTL_FAILED;
	}
	printf("listening\n");
	fflush(stdout);
	for (uint32_t i = 0; i < count; i++) {
		int r = agent_client_next_event(c, &ev, (int)secs * 1000);

		if (r < 0) {
			die("events: %s after %" PRIu32 " of %" PRIu32,
			    r == -ETIMEDOUT ? "timed out" : c->err, i, count);
			agent_client_destroy(c);
			return AGENTCTL_FAILED;
		}
		if (ev.type == AGENT_EVENT_EXIT) {
			printf("exit %s %s ", ev.u.exit.container_id,
			       ev.u.exit.exec_id[0] ? ev.u.exit.exec_id : "-");
			print_exit(&ev.u.exit);
		} else if (ev.type == AGENT_EVENT_OOM) {
			printf("oom %s oom_kill=%" PRIu64 "\n", ev.u.oom.container_id,
			       ev.u.oom.oom_kill);
		} else {
			printf("event 0x%04x\n", ev.type);
		}
		fflush(stdout);
		agent_msg_clear(&ev);
	}
	agent_client_destroy(c);
	return 0;
}

static int cmd_list_exits(struct agent_client *c)
{
	struct agent_msg req = { .type = AGENT_LIST_EXITS }, reply = { 0 };

	if (agent_client_call(c, &req, &reply, timeout_ms) < 0)
		return failed(c, "list-exits");
	for (uint32_t i = 0; i < reply.u.exits.exits.n; i++) {
		printf("%s %s ", reply.u.exits.exits.v[i].container_id,
		       reply.u.exits.exits.v[i].exec_id[0] ? reply.u.exits.exits.v[i].exec_id
							   : "-");
		print_exit(&reply.u.exits.exits.v[i]);
	}
	agent_msg_clear(&reply);
	agent_client_destroy(c);
	return 0;
}

static int cmd_stats(struct agent_client *c, const char *id)
{
	struct agent_stats s;

	if (agent_client_stats(c, id, &s) < 0)
		return failed(c, "stats");
	printf("cpu_usage_us=%" PRIu64 "\ncpu_user_us=%" PRIu64 "\ncpu_system_us=%" PRIu64
	       "\ncpu_nr_periods=%" PRIu64 "\ncpu_nr_throttled=%" PRIu64
	       "\ncpu_throttled_us=%" PRIu64 "\nmem_usage=%" PRIu64 "\nmem_limit=%" PRIu64
	       "\nmem_swap_usage=%" PRIu64 "\nmem_oom=%" PRIu64 "\nmem_oom_kill=%" PRIu64
	       "\npids_current=%" PRIu64 "\npids_limit=%" PRIu64 "\n",
	       s.cpu_usage_us, s.cpu_user_us, s.cpu_system_us, s.cpu_nr_periods, s.cpu_nr_throttled,
	       s.cpu_throttled_us, s.mem_usage, s.mem_limit, s.mem_swap_usage, s.mem_oom,
	       s.mem_oom_kill, s.pids_current, s.pids_limit);
	agent_client_destroy(c);
	return 0;
}

/* The commands that are one request on one connection. */
static int cmd_simple(const char *cmd, int argc, char **argv)
{
	const char *id = argc > 0 ? argv[0] : NULL;
	struct agent_client c;
	uint32_t a = 0, b = 0;
	int r;

	/* Bad arguments are reported before any connection is made. */
	if (!strcmp(cmd, "signal") && argc >= 2 && parse_signal(argv[1], &a))
		return AGENTCTL_FAILED;
	if (!strcmp(cmd, "resize") && argc >= 3 &&
	    (parse_u32("rows", argv[1], &a) || parse_u32("cols", argv[2], &b)))
		return AGENTCTL_FAILED;
	if (connect_agent(&c) < 0)
		return AGENTCTL_FAILED;
	if (!strcmp(cmd, "hello") && argc == 0) {
		printf("software=%s protocol=%" PRIu32 ".%" PRIu32 "\n", c.peer.software,
		       c.peer.major, c.peer.minor);
		r = 0;
	} else if (!strcmp(cmd, "ping") && argc == 0) {
		r = agent_client_ping(&c);
		if (r == 0)
			printf("pong\n");
	} else if (!strcmp(cmd, "shutdown") && argc == 0) {
		r = agent_client_shutdown(&c);
	} else if (!strcmp(cmd, "list-exits") && argc == 0) {
		return cmd_list_exits(&c);
	} else if (!strcmp(cmd, "events") && (argc == 1 || argc == 2)) {
		return cmd_events(&c, argv[0], argc == 2 ? argv[1] : NULL);
	} else if (!strcmp(cmd, "start") && argc == 1) {
		r = agent_client_start(&c, id);
	} else if (!strcmp(cmd, "ps") && argc == 1) {
		return cmd_ps(&c, id);
	} else if (!strcmp(cmd, "stats") && argc == 1) {
		return cmd_stats(&c, id);
	} else if ((!strcmp(cmd, "freeze") || !strcmp(cmd, "thaw")) && argc == 1) {
		r = agent_client_freeze(&c, id, cmd[0] == 'f');
	} else if (!strcmp(cmd, "mount-share") && argc == 1) {
		char *path;

		r = agent_client_mount_share(&c, argv[0], &path);
		if (r == 0)
			printf("%s\n", path);
		free(path);
	} else if (!strcmp(cmd, "delete") &&
		   (argc == 1 || (argc == 2 && !strcmp(argv[1], "--force")))) {
		r = agent_client_delete(&c, id, argc == 2 ? AGENT_DELETE_FORCE : 0);
	} else if (!strcmp(cmd, "wait") && (argc == 1 || argc == 2)) {
		r = wait_exit(&c, id, argc == 2 ? argv[1] : "", false);
		agent_client_destroy(&c);
		return r;
	} else if (!strcmp(cmd, "ack") && (argc == 1 || argc == 2)) {
		r = agent_client_ack_exit(&c, id, argc == 2 ? argv[1] : "");
	} else if (!strcmp(cmd, "signal") && argc >= 2 && argc <= 4) {
		bool all = !strcmp(argv[argc - 1], "--all");
		const char *exec_id = argc - all > 2 ? argv[2] : "";

		r = agent_client_signal(&c, id, exec_id, (int)a, all ? AGENT_SIGNAL_ALL : 0);
	} else if (!strcmp(cmd, "resize") && (argc == 3 || argc == 4)) {
		r = agent_client_resize(&c, id, argc == 4 ? argv[3] : "", a, b);
	} else {
		agent_client_destroy(&c);
		return usage();
	}
	if (r < 0)
		return failed(&c, cmd);
	agent_client_destroy(&c);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	uint32_t secs;

	signal(SIGPIPE, SIG_IGN);
	if (i + 1 < argc && !strcmp(argv[i], "--timeout")) {
		if (parse_u32("--timeout", argv[i + 1], &secs) || secs == 0 || secs > 86400)
			return die("--timeout %s: must be 1..86400 seconds", argv[i + 1]);
		timeout_ms = (int)secs * 1000;
		i += 2;
	}
	if (argc - i < 2)
		return usage();
	sock_path = argv[i];
	if (!strcmp(argv[i + 1], "create") || !strcmp(argv[i + 1], "run"))
		return cmd_create(argc - i - 2, argv + i + 2, !strcmp(argv[i + 1], "run"));
	if (!strcmp(argv[i + 1], "exec"))
		return cmd_exec(argc - i - 2, argv + i + 2);
	return cmd_simple(argv[i + 1], argc - i - 2, argv + i + 2);
}
