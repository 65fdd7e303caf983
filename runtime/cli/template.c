/*
 * stratus template create [--vcpus N] [--memory MIB] | list [--format table|json] [-q] |
 * rm|delete KEY|--all: the VM templates containers are restored from (docs/runtime.md
 * "Templates"; runtime/template.h). Not a runc verb: its own namespace of subcommands.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "stratus_cli.h"
#include "guest_assets.h"
#include "template.h"
#include "vm_sizing.h"

static const char template_usage[] =
	"usage: stratus template COMMAND\n\n"
	"VM templates: a guest booted to its ready agent and snapshotted, restored by create\n"
	"instead of a cold boot (STRATUS_TEMPLATE=0 or the annotation "
	"io.stratus.vm.template=false\n"
	"turn that off). They live in $STRATUS_TEMPLATE_DIR (default " TEMPLATE_DEFAULT_DIR ").\n\n"
	"Commands:\n"
	"  create [--vcpus N] [--memory MIB]  build (or rebuild) the template for that VM size\n"
	"                                     (default 1 vCPU, 128 MiB), print its directory\n"
	"  list [--format table|json] [-q]    list the templates\n"
	"  rm|delete KEY|--all                remove a template (a unique key prefix) or all\n";

static int parse_number(const char *flag, const char *s, unsigned long long min,
			unsigned long long max, unsigned long long *out, struct error *err)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!s[0] || *end || errno || s[0] == '-' || v < min || v > max)
		return error_set(
			err, -EINVAL,
			"template create: %s: must be a number from %llu to %llu, not \"%s\"", flag,
			min, max, s);
	*out = v;
	return 0;
}

int cli_template_parse(int argc, char **argv, struct cli_template_args *a, struct error *err)
{
	static const struct option opts[] = {
		{ "vcpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "all", no_argument, NULL, 'a' },
		{ "format", required_argument, NULL, 'f' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub;
	unsigned long long v = 0;
	int c;

	memset(a, 0, sizeof(*a));
	a->vcpus = 1;
	a->mem_mib = VM_SIZE_BASE_MIB;
	if (argc < 2)
		return error_set(
			err, -EINVAL,
			"template: requires a command: create, list or rm (stratus template "
			"--help)");
	sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		a->help = true;
		return 0;
	}
	if (!strcmp(sub, "delete"))
		sub = "rm";
	if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "rm"))
		return error_set(err, -EINVAL,
				 "template: unknown command \"%s\" (create, list or rm)", sub);
	a->command = sub;
	optind = 0;
	opterr = 0;
	argc--;
	argv++;
	/* the flag getopt is at, for the messages (its value may follow it) */
	for (int at = 1; (c = getopt_long(argc, argv, "+:f:q", opts, NULL)) != -1; at = optind) {
		bool create = !strcmp(sub, "create"), list = !strcmp(sub, "list");

		switch (c) {
		case 'c':
			if (!create)
				goto unknown;
			if (parse_number("--vcpus", optarg, 1, VM_SIZE_MAX_VCPUS, &v, err) < 0)
				return -EINVAL;
			a->vcpus = (unsigned int)v;
			break;
		case 'm':
			if (!create)
				goto unknown;
			if (parse_number("--memory", optarg, VM_SIZE_MIN_MEM_MIB,
					 VM_SIZE_MAX_MEM_MIB, &v, err) < 0)
				return -EINVAL;
			a->mem_mib = v;
			break;
		case 'a':
			if (strcmp(sub, "rm"))
				goto unknown;
			a->all = true;
			break;
		case 'f':
			if (!list)
				goto unknown;
			if (!strcmp(optarg, "json"))
				a->json = true;
			else if (strcmp(optarg, "table"))
				return error_set(err, -EINVAL,
						 "template list: --format: must be table or json, "
						 "not \"%s\"",
						 optarg);
			break;
		case 'q':
			if (!list)
				goto unknown;
			a->quiet = true;
			break;
		case 'h':
			a->help = true;
			return 0;
		case ':':
			return error_set(err, -EINVAL, "template %s: %s: needs a value", sub,
					 argv[at]);
		default:
		unknown:
			return error_set(err, -EINVAL, "template %s: unknown flag %s", sub,
					 argv[at < argc ? at : argc - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	if (!strcmp(sub, "rm")) {
		if (a->all && argc == 0)
			return 0;
		if (!a->all && argc == 1) {
			a->key = argv[0];
			return 0;
		}
		return error_set(err, -EINVAL, "template rm: requires a template key or --all");
	}
	if (argc > 0)
		return error_set(err, -EINVAL, "template %s: takes no arguments (got \"%s\")", sub,
				 argv[0]);
	return 0;
}

static int template_cli_create(const struct cli_template_args *a, struct error *err)
{
	struct guest_assets assets = { 0 };
	struct template_info info = { 0 };
	char *snapshot = NULL;
	int r;

	r = guest_assets_find(NULL, &assets, err);
	r = r ?: template_get(&assets, a->vcpus, a->mem_mib, true, &snapshot, &info, err);
	if (r >= 0) {
		printf("%s\n", info.dir);
		r = 0;
	}
	free(snapshot);
	template_info_clear(&info);
	guest_assets_destroy(&assets);
	return r;
}

static void gen_str(yajl_gen g, const char *key, const char *value)
{
	yajl_gen_string(g, (const unsigned char *)key, strlen(key));
	yajl_gen_string(g, (const unsigned char *)value, strlen(value));
}

static void gen_int(yajl_gen g, const char *key, long long value)
{
	yajl_gen_string(g, (const unsigned char *)key, strlen(key));
	yajl_gen_integer(g, value);
}

static void print_json(const struct template_info *v, size_t n)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;

	if (!g)
		return;
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		yajl_gen_map_open(g);
		gen_str(g, "key", v[i].key);
		gen_str(g, "path", v[i].dir);
		gen_int(g, "vcpus", v[i].vcpus);
		gen_int(g, "memory_mib", (long long)v[i].mem_mib);
		gen_int(g, "disk_bytes", (long long)v[i].disk_bytes);
		gen_str(g, "created", v[i].created);
		gen_int(g, "build_ms", (long long)v[i].build_ms);
		gen_str(g, "kernel", v[i].kernel);
		gen_str(g, "initramfs", v[i].initramfs);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_get_buf(g, &buf, &len);
	printf("%.*s\n", (int)len, buf);
	yajl_gen_free(g);
}

static int template_cli_list(const struct cli_template_args *a, struct error *err)
{
	struct template_info *v;
	size_t n;

	if (template_list(&v, &n, err) < 0)
		return err->code;
	if (a->json) {
		print_json(v, n);
	} else if (a->quiet) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", v[i].key);
	} else {
		printf("%-16s %5s %8s %9s %-30s %s\n", "KEY", "VCPUS", "MEMORY", "DISK", "CREATED",
		       "KERNEL");
		for (size_t i = 0; i < n; i++)
			printf("%-16s %5u %5llu MiB %5.1f MiB %-30s %s\n", v[i].key, v[i].vcpus,
			       (unsigned long long)v[i].mem_mib,
			       (double)v[i].disk_bytes / (1 << 20), v[i].created, v[i].kernel);
	}
	template_list_free(v, n);
	return 0;
}

int cli_template(struct cli_global *g)
{
	struct cli_template_args a;
	struct error err = { 0 };
	unsigned int removed;
	int r;

	if (cli_template_parse(g->argc, g->argv, &a, &err) < 0)
		return cli_fail(g, &err);
	if (a.help) {
		fputs(template_usage, stdout);
		return 0;
	}
	if (!strcmp(a.command, "create"))
		r = template_cli_create(&a, &err);
	else if (!strcmp(a.command, "list"))
		r = template_cli_list(&a, &err);
	else
		r = template_remove(a.key, &removed, &err);
	return r < 0 ? cli_fail(g, &err) : 0;
}
