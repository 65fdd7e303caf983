/*
 * stratus update [--resources FILE|-] [runc's per-field flags] ID: new linux.resources for the
 * container's cgroup in the guest (container_update). The flags are runc's, parsed as runc
 * parses them (memory sizes with k/m/g/t/p suffixes in binary units, -1 for unlimited) and
 * override the same fields of the resources file. What has no meaning for a cgroup v2 inside
 * a VM is refused with the flag named: --kernel-memory (obsolete), the real-time CPU
 * scheduler's --cpu-rt-period/--cpu-rt-runtime (cgroup v2 has no interface for it), and
 * Intel RDT's --l3-cache-schema/--mem-bw-schema (the VM has no RDT), and a swap limit (the
 * guest kernel has no swap: --memory-swap takes only -1 or the memory limit's value).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "stratus_cli.h"
#include "container.h"

#define UPDATE_MAX_BYTES (64u << 10)

enum {
	OPT_RESOURCES = 'r',
	OPT_MEMORY = 256,
	OPT_MEMORY_SWAP,
	OPT_MEMORY_RESERVATION,
	OPT_KERNEL_MEMORY,
	OPT_CPU_SHARES,
	OPT_CPU_PERIOD,
	OPT_CPU_QUOTA,
	OPT_CPU_RT,
	OPT_CPUSET_CPUS,
	OPT_CPUSET_MEMS,
	OPT_PIDS_LIMIT,
	OPT_BLKIO_WEIGHT,
	OPT_RDT,
};

static const struct option update_opts[] = {
	{ "resources", required_argument, NULL, OPT_RESOURCES },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "memory-swap", required_argument, NULL, OPT_MEMORY_SWAP },
	{ "memory-reservation", required_argument, NULL, OPT_MEMORY_RESERVATION },
	{ "kernel-memory", required_argument, NULL, OPT_KERNEL_MEMORY },
	{ "kernel-memory-tcp", required_argument, NULL, OPT_KERNEL_MEMORY },
	{ "cpu-shares", required_argument, NULL, OPT_CPU_SHARES },
	{ "cpu-period", required_argument, NULL, OPT_CPU_PERIOD },
	{ "cpu-quota", required_argument, NULL, OPT_CPU_QUOTA },
	{ "cpu-rt-period", required_argument, NULL, OPT_CPU_RT },
	{ "cpu-rt-runtime", required_argument, NULL, OPT_CPU_RT },
	{ "cpuset-cpus", required_argument, NULL, OPT_CPUSET_CPUS },
	{ "cpuset-mems", required_argument, NULL, OPT_CPUSET_MEMS },
	{ "pids-limit", required_argument, NULL, OPT_PIDS_LIMIT },
	{ "blkio-weight", required_argument, NULL, OPT_BLKIO_WEIGHT },
	{ "l3-cache-schema", required_argument, NULL, OPT_RDT },
	{ "mem-bw-schema", required_argument, NULL, OPT_RDT },
	{ NULL, 0, NULL, 0 },
};

/* runc's memory values: -1, or go-units' RAMInBytes ("512m", "1.5g", "64MiB": binary units). */
int cli_parse_memory(const char *s, long long *out)
{
	static const char units[] = "kmgtp";
	char *end;
	double v, scale = 1;

	if (!strcmp(s, "-1")) {
		*out = -1;
		return 0;
	}
	if (!(s[0] >= '0' && s[0] <= '9'))
		return -EINVAL;
	v = strtod(s, &end);
	if (end == s)
		return -EINVAL;
	if (*end == ' ')
		end++;
	if (*end) {
		const char *u = strchr(units, *end | 0x20);

		if (!u)
			return -EINVAL;
		scale = (double)(1ULL << (10 * (u - units + 1)));
		end++;
	}
	if ((*end | 0x20) == 'i' && end[-1] != ' ' && scale > 1)
		end++;
	if ((*end | 0x20) == 'b')
		end++;
	if (*end || v * scale >= 9.2e18)
		return -EINVAL;
	*out = (long long)(v * scale);
	return 0;
}

static int parse_integer(const char *s, long long min, long long max, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno || end == s || *end || *out < min || *out > max)
		return -EINVAL;
	return 0;
}

static int set_field(struct cli_update_args *a, const char *section, const char *name,
		     const char *flag, long long num, const char *str, struct error *err)
{
	for (unsigned int i = 0; i < a->n_set; i++) {
		if (!strcmp(a->set[i].section, section) && !strcmp(a->set[i].name, name)) {
			a->set[i].num = num;
			a->set[i].str = str;
			return 0;
		}
	}
	if (a->n_set >= CLI_UPDATE_MAX_FIELDS)
		return error_set(err, -E2BIG, "update: %s: too many flags", flag);
	a->set[a->n_set++] = (struct cli_update_field){ section, name, flag, num, str };
	return 0;
}

static int bad_value(const char *flag, const char *what, const char *value, struct error *err)
{
	return error_set(err, -EINVAL, "update: %s: must be %s, not \"%s\"", flag, what, value);
}

/* One of the per-field flags: its value checked and recorded as a linux.resources field. */
static int parse_field(int c, const char *flag, const char *v, struct cli_update_args *a,
		       struct error *err)
{
	static const struct {
		int opt;
		const char *section, *name;
		long long min, max;
	} ints[] = {
		{ OPT_CPU_SHARES, "cpu", "shares", 0, INT64_MAX },
		{ OPT_CPU_PERIOD, "cpu", "period", 1, INT64_MAX },
		{ OPT_CPU_QUOTA, "cpu", "quota", -1, INT64_MAX },
		{ OPT_PIDS_LIMIT, "pids", "limit", -1, INT64_MAX },
	};
	long long n;

	switch (c) {
	case OPT_MEMORY:
	case OPT_MEMORY_SWAP:
	case OPT_MEMORY_RESERVATION:
		if (cli_parse_memory(v, &n) < 0)
			return bad_value(flag, "a size like 512m, 1g or -1 (unlimited)", v, err);
		return set_field(a, "memory",
				 c == OPT_MEMORY	? "limit"
				 : c == OPT_MEMORY_SWAP ? "swap"
							: "reservation",
				 flag, n, NULL, err);
	case OPT_CPUSET_CPUS:
	case OPT_CPUSET_MEMS:
		if (!v[0] || strspn(v, "0123456789,-") != strlen(v))
			return bad_value(flag, "a list like 0-2,4", v, err);
		return set_field(a, "cpu", c == OPT_CPUSET_CPUS ? "cpus" : "mems", flag, 0, v, err);
	case OPT_BLKIO_WEIGHT:
		if (parse_integer(v, 10, 1000, &n) < 0)
			return bad_value(flag, "a weight from 10 to 1000", v, err);
		/* cgroup v2's io.weight is 1..10000: runc's linear conversion */
		a->blkio_weight = 1 + (n - 10) * 9999 / 990;
		return 0;
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(ints); i++) {
		if (ints[i].opt != c)
			continue;
		if (parse_integer(v, ints[i].min, ints[i].max, &n) < 0)
			return bad_value(flag,
					 ints[i].min < 0   ? "an integer, -1 for unlimited"
					 : ints[i].min > 0 ? "a positive integer"
							   : "a non-negative integer",
					 v, err);
		return set_field(a, ints[i].section, ints[i].name, flag, n, NULL, err);
	}
	return error_set(err, -EINVAL, "update: %s: unknown flag", flag);
}

static int refuse(int c, const char *flag, struct error *err)
{
	if (c == OPT_KERNEL_MEMORY)
		return error_set(err, -EINVAL,
				 "update: %s: kernel memory limits are obsolete (cgroup v2 counts "
				 "kernel memory in --memory)",
				 flag);
	if (c == OPT_CPU_RT)
		return error_set(err, -EINVAL,
				 "update: %s: the real-time CPU scheduler has no cgroup v2 "
				 "interface (the guest runs cgroup v2)",
				 flag);
	return error_set(err, -EINVAL,
			 "update: %s: Intel RDT cannot be controlled from inside a VM", flag);
}

int cli_update_parse(int argc, char **argv, struct cli_update_args *a, struct error *err)
{
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	opterr = 0;
	for (;;) {
		char flag[48] = "-r";
		int r, idx = -1;

		c = getopt_long(argc, argv, "+:r:", update_opts, &idx);
		if (c == -1)
			break;
		if (c == ':')
			return error_set(err, -EINVAL, "update: %s: needs a value",
					 argv[optind - 1]);
		if (c == '?')
			return cli_unknown_flag("update", argv, err);
		if (idx >= 0)
			snprintf(flag, sizeof(flag), "--%s", update_opts[idx].name);
		if (c == OPT_RESOURCES)
			a->resources = optarg;
		else if (c == OPT_KERNEL_MEMORY || c == OPT_CPU_RT || c == OPT_RDT)
			return refuse(c, flag, err);
		else if ((r = parse_field(c, flag, optarg, a, err)) < 0)
			return r;
	}
	if (cli_need_args("update", argc - optind, 1, 1, err) < 0)
		return -EINVAL;
	a->id = argv[optind];
	if (!a->resources && !a->n_set && !a->blkio_weight)
		return error_set(err, -EINVAL,
				 "update: nothing to update: give --resources FILE|- or a flag "
				 "such as --memory or --pids-limit");
	return 0;
}

#define S(g, s) yajl_gen_string(g, (const unsigned char *)(s), strlen(s))

static void gen_value(yajl_gen g, yajl_val v)
{
	if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			S(g, v->u.object.keys[i]);
			gen_value(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			gen_value(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	} else if (YAJL_IS_STRING(v)) {
		S(g, v->u.string);
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else {
		yajl_gen_null(g);
	}
}

static const struct cli_update_field *find_set(const struct cli_update_args *a, const char *section,
					       const char *name)
{
	for (unsigned int i = 0; i < a->n_set; i++)
		if (!strcmp(a->set[i].section, section) && (!name || !strcmp(a->set[i].name, name)))
			return &a->set[i];
	return NULL;
}

/* The flags of section not in the file's section. */
static void gen_flags(yajl_gen g, const struct cli_update_args *a, const char *section,
		      yajl_val have)
{
	for (unsigned int i = 0; i < a->n_set; i++) {
		const struct cli_update_field *f = &a->set[i];
		const char *path[] = { f->name, NULL };

		if (strcmp(f->section, section) || (have && yajl_tree_get(have, path, yajl_t_any)))
			continue;
		S(g, f->name);
		if (f->str)
			S(g, f->str);
		else
			yajl_gen_integer(g, f->num);
	}
}

/* A section of the file with the flags' fields put in place of its own. */
static void gen_section(yajl_gen g, const struct cli_update_args *a, const char *section,
			yajl_val v)
{
	yajl_gen_map_open(g);
	for (size_t i = 0; i < v->u.object.len; i++) {
		const struct cli_update_field *f = find_set(a, section, v->u.object.keys[i]);

		S(g, v->u.object.keys[i]);
		if (!f)
			gen_value(g, v->u.object.values[i]);
		else if (f->str)
			S(g, f->str);
		else
			yajl_gen_integer(g, f->num);
	}
	gen_flags(g, a, section, v);
	yajl_gen_map_close(g);
}

static void gen_io_weight(yajl_gen g, const struct cli_update_args *a)
{
	char w[32];

	snprintf(w, sizeof(w), "default %lld", a->blkio_weight);
	S(g, "io.weight");
	S(g, w);
}

/*
 * The guest kernel has no swap (guest-kernel-config): memory.swap (memory + swap, OCI) of -1
 * or of memory.limit's value asks for nothing the guest can give otherwise, so it is dropped
 * rather than failing on a missing memory.swap.max; any other value is refused.
 */
static int drop_swap(char **json, struct error *err)
{
	const char *swap_path[] = { "memory", "swap", NULL },
		   *limit_path[] = { "memory", "limit", NULL };
	char msg[128];
	yajl_val v = yajl_tree_parse(*json, msg, sizeof(msg)), swap, limit, memory;
	const unsigned char *buf;
	yajl_gen g;
	size_t len;
	int r = 0;

	if (!v)
		return error_set(err, -EINVAL, "update: cannot merge the flags");
	swap = yajl_tree_get(v, swap_path, yajl_t_any);
	limit = yajl_tree_get(v, limit_path, yajl_t_any);
	if (!swap || !YAJL_IS_INTEGER(swap) ||
	    (YAJL_GET_INTEGER(swap) != -1 &&
	     !(limit && YAJL_IS_INTEGER(limit) &&
	       YAJL_GET_INTEGER(limit) == YAJL_GET_INTEGER(swap)))) {
		if (swap && !YAJL_IS_NULL(swap))
			r = error_set(err, -EINVAL,
				      "update: memory.swap (--memory-swap): the VM has no swap: "
				      "only -1 or the memory limit's value");
		yajl_tree_free(v);
		return r;
	}
	g = yajl_gen_alloc(NULL);
	if (!g) {
		yajl_tree_free(v);
		return error_set(err, -ENOMEM, "out of memory");
	}
	yajl_gen_map_open(g);
	for (size_t i = 0; i < v->u.object.len; i++) {
		S(g, v->u.object.keys[i]);
		memory = v->u.object.values[i];
		if (strcmp(v->u.object.keys[i], "memory") || !YAJL_IS_OBJECT(memory)) {
			gen_value(g, memory);
			continue;
		}
		yajl_gen_map_open(g);
		for (size_t j = 0; j < memory->u.object.len; j++) {
			if (!strcmp(memory->u.object.keys[j], "swap"))
				continue;
			S(g, memory->u.object.keys[j]);
			gen_value(g, memory->u.object.values[j]);
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	free(*json);
	*json = NULL;
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok ||
	    !(*json = strndup((const char *)buf, len)))
		r = error_set(err, -ENOMEM, "out of memory");
	yajl_gen_free(g);
	yajl_tree_free(v);
	return r;
}

int cli_update_json(const char *file_text, const struct cli_update_args *a, char **out,
		    struct error *err)
{
	static const char *const sections[] = { "memory", "cpu", "pids" };
	char msg[128];
	yajl_val file = yajl_tree_parse(file_text ? file_text : "{}", msg, sizeof(msg));
	const unsigned char *buf;
	bool unified_done = false;
	yajl_gen g;
	size_t len;
	int r = 0;

	*out = NULL;
	if (!file || !YAJL_IS_OBJECT(file)) {
		yajl_tree_free(file);
		return error_set(err, -EINVAL, "update: --resources: %s: must be a JSON object",
				 a->resources ? a->resources : "-");
	}
	g = yajl_gen_alloc(NULL);
	if (!g) {
		yajl_tree_free(file);
		return error_set(err, -ENOMEM, "out of memory");
	}
	yajl_gen_map_open(g);
	for (size_t i = 0; i < file->u.object.len; i++) {
		const char *key = file->u.object.keys[i];
		yajl_val v = file->u.object.values[i];

		S(g, key);
		if (YAJL_IS_OBJECT(v) && find_set(a, key, NULL)) {
			gen_section(g, a, key, v);
		} else if (YAJL_IS_OBJECT(v) && !strcmp(key, "unified") && a->blkio_weight) {
			yajl_gen_map_open(g);
			for (size_t j = 0; j < v->u.object.len; j++) {
				if (!strcmp(v->u.object.keys[j], "io.weight"))
					continue;
				S(g, v->u.object.keys[j]);
				gen_value(g, v->u.object.values[j]);
			}
			gen_io_weight(g, a);
			yajl_gen_map_close(g);
			unified_done = true;
		} else {
			gen_value(g, v);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++) {
		const char *path[] = { sections[i], NULL };
		yajl_val have = yajl_tree_get(file, path, yajl_t_object);

		if (!find_set(a, sections[i], NULL) || have)
			continue;
		S(g, sections[i]);
		yajl_gen_map_open(g);
		gen_flags(g, a, sections[i], NULL);
		yajl_gen_map_close(g);
	}
	if (a->blkio_weight && !unified_done) {
		S(g, "unified");
		yajl_gen_map_open(g);
		gen_io_weight(g, a);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		r = error_set(err, -EINVAL, "update: --resources: cannot merge the flags");
	else if (!(*out = strndup((const char *)buf, len)))
		r = error_set(err, -ENOMEM, "out of memory");
	yajl_gen_free(g);
	yajl_tree_free(file);
	r = r ?: drop_swap(out, err);
	if (r < 0) {
		free(*out);
		*out = NULL;
	}
	return r;
}

static int read_resources(const char *path, char **out, struct error *err)
{
	_cleanup_close_ int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : dup(0);
	_cleanup_free_ char *buf = malloc(UPDATE_MAX_BYTES + 1);
	size_t have = 0;
	ssize_t n;

	if (!buf)
		return error_set(err, -ENOMEM, "out of memory");
	if (fd < 0)
		return error_set_errno(err, -errno, "update: --resources: cannot open %s", path);
	while ((n = read(fd, buf + have, UPDATE_MAX_BYTES + 1 - have)) > 0)
		have += (size_t)n;
	if (n < 0)
		return error_set_errno(err, -errno, "update: --resources: cannot read %s", path);
	if (have > UPDATE_MAX_BYTES)
		return error_set(err, -E2BIG, "update: --resources: larger than %u KiB",
				 UPDATE_MAX_BYTES >> 10);
	buf[have] = '\0';
	*out = ptr_steal(&buf);
	return 0;
}

int cli_update(struct cli_global *g)
{
	_cleanup_free_ char *text = NULL, *resources = NULL;
	struct cli_update_args a;
	struct error err = { 0 };

	if (cli_update_parse(g->argc, g->argv, &a, &err) < 0 ||
	    (a.resources && read_resources(a.resources, &text, &err) < 0) ||
	    cli_update_json(text, &a, &resources, &err) < 0 ||
	    container_update(g->root, a.id, resources, &err) < 0)
		return cli_fail(g, &err);
	return 0;
}
