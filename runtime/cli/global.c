/*
 * Global flags of the stratus CLI (runc's: --root, --log, --log-format, --debug,
 * --systemd-cgroup, ...) and the error and log output every verb shares.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "stratus_cli.h"
#include "state.h"

enum {
	OPT_ROOT = 256,
	OPT_LOG,
	OPT_LOG_FORMAT,
	OPT_DEBUG,
	OPT_SYSTEMD,
	OPT_CGROUP_MANAGER,
	OPT_ROOTLESS,
	OPT_CRIU
};

int cli_global_parse(int argc, char **argv, struct cli_global *g, struct error *err)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "log", required_argument, NULL, OPT_LOG },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "debug", no_argument, NULL, OPT_DEBUG },
		{ "systemd-cgroup", no_argument, NULL, OPT_SYSTEMD },
		{ "cgroup-manager", required_argument, NULL, OPT_CGROUP_MANAGER },
		{ "rootless", required_argument, NULL, OPT_ROOTLESS },
		{ "criu", required_argument, NULL, OPT_CRIU },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(g, 0, sizeof(*g));
	g->root = STATE_DEFAULT_ROOT;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT:
			if (!optarg[0])
				return error_set(err, -EINVAL, "--root: must not be empty");
			g->root = optarg;
			break;
		case OPT_LOG:
			g->log_path = optarg;
			break;
		case OPT_LOG_FORMAT:
			if (!strcmp(optarg, "text"))
				g->log_format = CLI_LOG_TEXT;
			else if (!strcmp(optarg, "json"))
				g->log_format = CLI_LOG_JSON;
			else
				return error_set(err, -EINVAL,
						 "--log-format: must be text or json, not \"%s\"",
						 optarg);
			break;
		case OPT_DEBUG:
			g->debug = true;
			break;
		case OPT_SYSTEMD:
			g->systemd_cgroup = true;
			g->cgroup_manager = HOST_CGROUP_SYSTEMD;
			break;
		case OPT_CGROUP_MANAGER:
			if (strcmp(optarg, "cgroupfs") && strcmp(optarg, "systemd") &&
			    strcmp(optarg, "disabled"))
				return error_set(err, -EINVAL,
						 "--cgroup-manager: must be cgroupfs, systemd or "
						 "disabled, not \"%s\"",
						 optarg);
			g->cgroup_manager = !strcmp(optarg, "systemd")	  ? HOST_CGROUP_SYSTEMD
					    : !strcmp(optarg, "cgroupfs") ? HOST_CGROUP_CGROUPFS
									  : HOST_CGROUP_DISABLED;
			break;
		case OPT_ROOTLESS:
		case OPT_CRIU:
			break; /* accepted: rootlessness and checkpoints live inside the VM */
		case 'v':
			g->version = true;
			break;
		case 'h':
			g->help = true;
			break;
		case ':':
			return error_set(err, -EINVAL, "%s: needs a value", argv[optind - 1]);
		default:
			return error_set(err, -EINVAL, "unknown global flag %s", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		g->command = argv[optind];
		g->argc = argc - optind;
		g->argv = argv + optind;
	}
	return 0;
}

static void log_line(const struct cli_global *g, const char *level, const char *msg)
{
	char ts[64];
	const unsigned char *buf;
	yajl_gen gen;
	size_t len;
	int fd;

	if (!g->log_path)
		return;
	fd = open(g->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	state_timestamp(ts, sizeof(ts));
	if (g->log_format == CLI_LOG_TEXT) {
		/* logrus's text format: the message quoted, '"' and '\\' escaped */
		char quoted[2 * ERROR_MSG_MAX + 1], *q = quoted;

		for (const char *p = msg; *p && q < quoted + sizeof(quoted) - 2; p++) {
			if (*p == '"' || *p == '\\')
				*q++ = '\\';
			*q++ = *p == '\n' ? ' ' : *p;
		}
		*q = '\0';
		dprintf(fd, "time=\"%s\" level=%s msg=\"%s\"\n", ts, level, quoted);
		close(fd);
		return;
	}
	/* runc's JSON lines: {"level":"error","msg":"...","time":"..."} */
	gen = yajl_gen_alloc(NULL);
	if (gen) {
		yajl_gen_map_open(gen);
		yajl_gen_string(gen, (const unsigned char *)"level", 5);
		yajl_gen_string(gen, (const unsigned char *)level, strlen(level));
		yajl_gen_string(gen, (const unsigned char *)"msg", 3);
		yajl_gen_string(gen, (const unsigned char *)msg, strlen(msg));
		yajl_gen_string(gen, (const unsigned char *)"time", 4);
		yajl_gen_string(gen, (const unsigned char *)ts, strlen(ts));
		yajl_gen_map_close(gen);
		if (yajl_gen_get_buf(gen, &buf, &len) == yajl_gen_status_ok)
			dprintf(fd, "%.*s\n", (int)len, (const char *)buf);
		yajl_gen_free(gen);
	}
	close(fd);
}

void cli_log(const struct cli_global *g, const char *level, const char *msg)
{
	log_line(g, level, msg);
}

int cli_fail(const struct cli_global *g, const struct error *err)
{
	const char *msg = err->msg[0] ? err->msg : "failed";

	fprintf(stderr, "stratus: %s\n", msg);
	if (g)
		log_line(g, "error", msg);
	return 1;
}

int cli_unknown_flag(const char *verb, char **argv, struct error *err)
{
	if (optopt && optopt < 256)
		return error_set(err, -EINVAL, "%s: unknown flag -%c", verb, optopt);
	return error_set(err, -EINVAL, "%s: unknown flag %s", verb, argv[optind - 1]);
}

int cli_need_args(const char *verb, int have, int min, int max, struct error *err)
{
	if (have >= min && have <= max)
		return 0;
	if (min == max)
		return error_set(err, -EINVAL, "%s: requires exactly %d argument%s (got %d)", verb,
				 min, min == 1 ? "" : "s", have);
	if (have < min)
		return error_set(err, -EINVAL, "%s: requires at least %d argument%s (got %d)", verb,
				 min, min == 1 ? "" : "s", have);
	return error_set(err, -EINVAL, "%s: takes at most %d argument%s (got %d)", verb, max,
			 max == 1 ? "" : "s", have);
}
