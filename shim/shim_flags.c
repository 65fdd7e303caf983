/*
 * The shim's command line, parsed the way Go's flag package parses it (containerd's shims are
 * Go programs and containerd calls every shim the same way): "-flag value", "-flag=value",
 * "--flag" alike; boolean flags bare or "=true"/"=false"; flags end at the first non-flag
 * argument or "--"; what follows is the action, start or delete (none: serve).
 */
#include <string.h>

#include "shim.h"

struct flag_def {
	const char *name;
	bool is_bool;
	size_t offset; /* into struct shim_options */
};

#define STR_FLAG(n, field)                                     \
	{                                                      \
		n, false, offsetof(struct shim_options, field) \
	}
#define BOOL_FLAG(n, field)                                   \
	{                                                     \
		n, true, offsetof(struct shim_options, field) \
	}

static const struct flag_def flags[] = {
	STR_FLAG("namespace", namespace),
	STR_FLAG("address", address),
	STR_FLAG("publish-binary", publish_binary),
	STR_FLAG("id", id),
	STR_FLAG("bundle", bundle),
	STR_FLAG("socket", socket),
	BOOL_FLAG("debug", debug),
	BOOL_FLAG("v", version),
};

static const struct flag_def *flag_find(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
			return &flags[i];
	return NULL;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int shim_flags_parse(int argc, char **argv, struct shim_options *opts, struct error *err)
{
	int i;

	memset(opts, 0, sizeof(*opts));
	opts->publish_binary = "containerd";
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *name, *eq;
		const struct flag_def *def;
		size_t name_len;

		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		name = arg + 1 + (arg[1] == '-');
		eq = strchr(name, '=');
		name_len = eq ? (size_t)(eq - name) : strlen(name);
		def = flag_find(name, name_len);
		if (!def)
			return error_set(err, -EINVAL, "flag provided but not defined: -%.*s",
					 (int)name_len, name);
		if (def->is_bool) {
			bool *b = (bool *)((char *)opts + def->offset);

			if (!eq)
				*b = true;
			else if (parse_bool(eq + 1, b) < 0)
				return error_set(err, -EINVAL,
						 "invalid boolean value \"%s\" for -%s", eq + 1,
						 def->name);
			continue;
		}
		if (!eq && i + 1 >= argc)
			return error_set(err, -EINVAL, "flag needs an argument: -%s", def->name);
		*(const char **)((char *)opts + def->offset) = eq ? eq + 1 : argv[++i];
	}
	if (opts->version)
		return 0;
	if (i < argc) {
		if (!strcmp(argv[i], "start"))
			opts->action = SHIM_ACTION_START;
		else if (!strcmp(argv[i], "delete"))
			opts->action = SHIM_ACTION_DELETE;
		else
			return error_set(err, -EINVAL,
					 "unknown action \"%s\": expected start or delete",
					 argv[i]);
		if (i + 1 < argc)
			return error_set(err, -EINVAL, "unexpected argument \"%s\" after %s",
					 argv[i + 1], argv[i]);
	}
	if (!opts->namespace || !*opts->namespace)
		return error_set(err, -EINVAL, "-namespace: required (the containerd namespace)");
	if (!opts->id || !*opts->id)
		return error_set(err, -EINVAL, "-id: required (the container id)");
	if (opts->action != SHIM_ACTION_DELETE && (!opts->address || !*opts->address))
		return error_set(err, -EINVAL, "-address: required (containerd's socket)");
	/* ids become path components and socket names: keep them to what containerd allows. */
	if (strchr(opts->id, '/') || !strcmp(opts->id, ".") || !strcmp(opts->id, ".."))
		return error_set(err, -EINVAL, "-id: \"%s\" is not a valid container id", opts->id);
	if (strchr(opts->namespace, '/'))
		return error_set(err, -EINVAL, "-namespace: \"%s\" is not a valid namespace",
				 opts->namespace);
	return 0;
}
