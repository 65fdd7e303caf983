/*
 * stratus: the OCI runtime CLI, runc's command line (docs/runtime.md). Global flags, then a
 * verb and its own flags; each verb is one file in this directory.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "stratus_cli.h"
#include "container.h"
#include "phase.h"

static const struct {
	const char *name;
	int (*fn)(struct cli_global *g);
	const char *summary;
} verbs[] = {
	{ "create", cli_create, "create a container (boot its VM, prepare the process)" },
	{ "start", cli_start, "start the process of a created container" },
	{ "run", cli_run, "create and start a container, wait for it" },
	{ "state", cli_state, "print the state of a container" },
	{ "kill", cli_kill, "send a signal to the container's process" },
	{ "delete", cli_delete, "delete a container and its VM" },
	{ "exec", cli_exec, "run a new process in a running container" },
	{ "ps", cli_ps, "list the processes of a container" },
	{ "list", cli_list, "list containers" },
	{ "pause", cli_pause, "pause every process of a container (its vCPUs)" },
	{ "resume", cli_resume, "resume a paused container" },
	{ "spec", cli_spec, "write a default config.json" },
	{ "features", cli_features, "print the features this runtime supports" },
	{ "events", cli_events, "print container statistics" },
	{ "update", cli_update, "update a container's resource limits" },
	{ "template", cli_template,
	  "create, list or remove VM templates (stratus template --help)" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: stratus [global flags] COMMAND [flags] [arguments]\n\n"
		     "An OCI runtime: every container runs in its own KVM microVM.\n\n"
		     "Global flags:\n"
		     "  --root DIR              state directory (default /run/stratus)\n"
		     "  --log FILE              also write errors and warnings to FILE\n"
		     "  --log-format text|json  format of --log (default text)\n"
		     "  --debug                 debug logging (the monitor's log too)\n"
		     "  --systemd-cgroup, --cgroup-manager M   the VM's host cgroup manager\n"
		     "  -v, --version           print the version\n\nCommands:\n");
	for (unsigned int i = 0; i < ARRAY_SIZE(verbs); i++)
		fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
}

static struct cli_global *warn_global;

static void warn(const char *msg)
{
	fprintf(stderr, "stratus: warning: %s\n", msg);
	cli_log(warn_global, "warning", msg);
}

/* The monitor relays fds 0-2 for the container's whole life: they must be real. */
static void ensure_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0) {
			int null_fd = open("/dev/null", O_RDWR);

			if (null_fd >= 0 && null_fd != fd) {
				dup2(null_fd, fd);
				close(null_fd);
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct error err = { 0 };
	struct cli_global g;

	ensure_stdio();
	signal(SIGPIPE, SIG_IGN);
	if (cli_global_parse(argc, argv, &g, &err) < 0)
		return cli_fail(NULL, &err);
	warn_global = &g;
	phase_init(g.debug ? g.log_path : NULL, g.log_format == CLI_LOG_JSON);
	container_set_warn(warn);
	if (g.version) {
		printf("stratus version %s\nspec: 1.2.0\n", STRATUS_VERSION);
		return 0;
	}
	if (g.help) {
		usage(stdout);
		return 0;
	}
	if (!g.command) {
		error_set(&err, -EINVAL, "no command given (stratus --help lists them)");
		return cli_fail(&g, &err);
	}
	if (!strcmp(g.command, "help")) {
		usage(stdout);
		return 0;
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(verbs); i++) {
		if (!strcmp(g.command, verbs[i].name))
			return verbs[i].fn(&g);
	}
	error_set(&err, -EINVAL, "unknown command \"%s\" (stratus --help lists them)", g.command);
	return cli_fail(&g, &err);
}
