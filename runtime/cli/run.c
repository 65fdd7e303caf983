/*
 * stratus run [create's flags] [--detach] [--keep] ID: create, start and, unless detached,
 * wait for the monitor (our child) and exit with the container's status, then delete the
 * container unless --keep. While waiting, the signals a shell sends (INT, TERM, HUP, QUIT,
 * USR1, USR2) are forwarded to the container's process, and window changes to its terminal;
 * a terminal on our stdin is put in raw mode (the guest's pty does the line discipline).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "stratus_cli.h"
#include "console.h"
#include "container.h"
#include "phase.h"

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

static void forward_resize(const struct cli_global *g, const char *id)
{
	struct agent_client c;
	struct error err = { 0 };
	uint32_t rows, cols;

	if (console_get_size(0, &rows, &cols) < 0 ||
	    container_agent_connect(g->root, id, &c, &err) < 0)
		return;
	agent_client_resize(&c, id, "", rows, cols);
	agent_client_destroy(&c);
}

/* Wait for the monitor, forwarding signals: its wait status. */
static int wait_container(const struct cli_global *g, const char *id, pid_t monitor)
{
	struct error err = { 0 };
	siginfo_t info;
	sigset_t set;
	int status;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (unsigned int i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	forward_resize(g, id);
	for (;;) {
		if (waitpid(monitor, &status, WNOHANG) == monitor)
			return status;
		if (sigwaitinfo(&set, &info) < 0)
			continue;
		if (info.si_signo == SIGCHLD)
			continue;
		if (info.si_signo == SIGWINCH) {
			forward_resize(g, id);
			continue;
		}
		error_clear(&err);
		if (container_kill(g->root, id, info.si_signo, false, &err) < 0)
			cli_log(g, "warning", err.msg);
	}
}

int cli_run(struct cli_global *g)
{
	struct container_create_opts o = { 0 };
	struct cli_create_args a;
	struct error err = { 0 };
	struct termios saved;
	bool raw = false;
	int status;

	if (cli_create_parse(g->argc, g->argv, true, &a, &err) < 0)
		return cli_fail(g, &err);
	o.root = g->root;
	o.id = a.id;
	o.bundle = a.bundle;
	o.pid_file = a.pid_file;
	o.console_socket = a.console_socket;
	o.foreground = !a.detach;
	o.debug = g->debug;
	o.cgroup_manager = g->cgroup_manager;
	if (container_create(&o, &err) < 0)
		return cli_fail(g, &err);
	if (container_start(g->root, a.id, &err) < 0) {
		struct error ignored = { 0 };

		container_delete(g->root, a.id, true, &ignored);
		return cli_fail(g, &err);
	}
	if (a.detach)
		return 0;
	if (o.terminal && !a.console_socket && isatty(0))
		raw = console_set_raw(0, &saved) == 0;
	status = wait_container(g, a.id, o.monitor_pid);
	phase_mark("reaped", "host");
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
	if (!a.keep && container_delete(g->root, a.id, false, &err) < 0)
		cli_fail(g, &err);
	else if (!a.keep)
		phase_mark("deleted", "host");
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
