/*
 * stratus exec [flags] ID [COMMAND [ARG...]]: a new process in a running container
 * (container_exec); exits with the process's status unless --detach.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "stratus_cli.h"
#include "container.h"

enum {
	OPT_CONSOLE_SOCKET = 256,
	OPT_PID_FILE,
	OPT_CWD,
	OPT_NO_NEW_PRIVS,
	OPT_PRESERVE_FDS,
	OPT_IGNORED_VALUE
};

static int parse_user(const char *s, struct cli_exec_args *a, struct error *err)
{
	char *end;
	unsigned long uid, gid = 0;

	errno = 0;
	uid = strtoul(s, &end, 10);
	if (*end == ':')
		gid = strtoul(end + 1, &end, 10);
	if (errno || *end || !s[0] || s[0] == ':' || uid > UINT32_MAX - 1 || gid > UINT32_MAX - 1 ||
	    strchr(s, '-'))
		return error_set(err, -EINVAL,
				 "exec: --user: must be UID[:GID] (numbers), not \"%s\"", s);
	a->has_user = true;
	a->uid = (uint32_t)uid;
	a->gid = (uint32_t)gid;
	return 0;
}

static int add_list(char **list, unsigned int *n, const char *value, const char *flag,
		    struct error *err)
{
	if (*n >= CLI_MAX_LIST)
		return error_set(err, -E2BIG, "exec: %s: more than %d given", flag, CLI_MAX_LIST);
	list[(*n)++] = (char *)value;
	list[*n] = NULL;
	return 0;
}

static int parse_option(int c, struct cli_exec_args *a, char **argv, struct error *err)
{
	char *end;

	switch (c) {
	case 'p':
		a->process_file = optarg;
		return 0;
	case 't':
		a->tty = a->tty_set = true;
		return 0;
	case 'd':
		a->detach = true;
		return 0;
	case OPT_CONSOLE_SOCKET:
		a->console_socket = optarg;
		return 0;
	case OPT_PID_FILE:
		a->pid_file = optarg;
		return 0;
	case OPT_CWD:
		if (optarg[0] != '/')
			return error_set(err, -EINVAL, "exec: --cwd: must be an absolute path");
		a->cwd = optarg;
		return 0;
	case 'e':
		if (!strchr(optarg, '=') || optarg[0] == '=')
			return error_set(err, -EINVAL, "exec: --env: must be KEY=VALUE, not \"%s\"",
					 optarg);
		return add_list(a->env, &a->n_env, optarg, "--env", err);
	case 'u':
		return parse_user(optarg, a, err);
	case 'c':
		if (strncmp(optarg, "CAP_", 4))
			return error_set(err, -EINVAL, "exec: --cap: must be CAP_NAME, not \"%s\"",
					 optarg);
		return add_list(a->caps, &a->n_caps, optarg, "--cap", err);
	case OPT_NO_NEW_PRIVS:
		a->no_new_privs = true;
		return 0;
	case OPT_PRESERVE_FDS:
		if (strtoul(optarg, &end, 10) != 0 || *end || !optarg[0])
			return error_set(err, -EINVAL,
					 "exec: --preserve-fds: host file descriptors cannot be "
					 "passed into a VM (only 0 is accepted)");
		return 0;
	case OPT_IGNORED_VALUE:
		return 0; /* --apparmor, --process-label: the VM is the boundary */
	case ':':
		return error_set(err, -EINVAL, "exec: %s: needs a value", argv[optind - 1]);
	default:
		return cli_unknown_flag("exec", argv, err);
	}
}

int cli_exec_parse(int argc, char **argv, struct cli_exec_args *a, struct error *err)
{
	static const struct option opts[] = {
		{ "process", required_argument, NULL, 'p' },
		{ "tty", no_argument, NULL, 't' },
		{ "detach", no_argument, NULL, 'd' },
		{ "console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "cwd", required_argument, NULL, OPT_CWD },
		{ "env", required_argument, NULL, 'e' },
		{ "user", required_argument, NULL, 'u' },
		{ "cap", required_argument, NULL, 'c' },
		{ "no-new-privs", no_argument, NULL, OPT_NO_NEW_PRIVS },
		{ "preserve-fds", required_argument, NULL, OPT_PRESERVE_FDS },
		{ "apparmor", required_argument, NULL, OPT_IGNORED_VALUE },
		{ "process-label", required_argument, NULL, OPT_IGNORED_VALUE },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:p:tde:u:c:", opts, NULL)) != -1) {
		if (parse_option(c, a, argv, err) < 0)
			return -EINVAL;
	}
	if (cli_need_args("exec", argc - optind, 1, INT_MAX, err) < 0)
		return -EINVAL;
	a->id = argv[optind];
	a->args = argv + optind + 1;
	if (!a->process_file && !a->args[0])
		return error_set(err, -EINVAL,
				 "exec: requires a command after the container ID, or --process");
	if (a->process_file && a->args[0])
		return error_set(err, -EINVAL,
				 "exec: --process: give either a process file or a command, not "
				 "both");
	return 0;
}

int cli_exec(struct cli_global *g)
{
	struct cli_exec_args a;
	struct container_exec_opts o = { 0 };
	struct error err = { 0 };

	if (cli_exec_parse(g->argc, g->argv, &a, &err) < 0)
		return cli_fail(g, &err);
	o.root = g->root;
	o.id = a.id;
	o.process_file = a.process_file;
	o.args = a.args;
	o.cwd = a.cwd;
	o.env = a.n_env ? a.env : NULL;
	o.caps = a.n_caps ? a.caps : NULL;
	o.has_user = a.has_user;
	o.uid = a.uid;
	o.gid = a.gid;
	o.tty = a.tty;
	o.tty_set = a.tty_set;
	o.no_new_privs = a.no_new_privs;
	o.detach = a.detach;
	o.console_socket = a.console_socket;
	o.pid_file = a.pid_file;
	if (container_exec(&o, &err) < 0)
		return cli_fail(g, &err);
	return a.detach ? 0 : o.exit_status;
}
