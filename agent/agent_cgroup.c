/*
 * cgroup v2 inside the guest: one cgroup per container at CGROUP_ROOT/<id> (the root is
 * /sys/fs/cgroup/stratus in the guest, configurable for native tests), with the cpu, memory,
 * pids, cpuset and io controllers enabled on the way down when the kernel has them.
 * linux.resources maps onto its files (runtime-spec config-linux.md "Control groups"):
 * memory.limit -> memory.max, memory.reservation -> memory.low, memory.swap (memory + swap in
 * OCI) -> memory.swap.max = swap - limit, pids.limit -> pids.max, cpu.quota/period -> cpu.max,
 * cpu.shares -> cpu.weight with crun's conversion, cpu.cpus/mems -> cpuset.*, and
 * linux.resources.unified written as is. STATS reads cpu.stat, memory.*, pids.*; PS reads
 * cgroup.procs of the container's cgroup and of every cgroup below it. FREEZE writes
 * cgroup.freeze and reads "frozen" back from cgroup.events.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <yajl/yajl_tree.h>

#include "agent_internal.h"

#define CGROUP_MAX_DEPTH   16
#define CGROUP_MAX_UNIFIED 256

static int limits_fail(char *err, size_t err_len, const char *prefix, const char *what)
{
	snprintf(err, err_len, "%s.%s", prefix, what);
	return -EINVAL;
}

/* A JSON integer (or null for "not set") into *out: true if set. */
static int json_int(yajl_val obj, const char *a, const char *b, int64_t min, int64_t *out,
		    bool *has)
{
	const char *path[] = { a, b, NULL };
	yajl_val v = yajl_tree_get(obj, path, yajl_t_any);

	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min)
		return -EINVAL;
	*out = YAJL_GET_INTEGER(v);
	*has = true;
	return 0;
}

static int json_str(yajl_val obj, const char *a, const char *b, char **out)
{
	const char *path[] = { a, b, NULL };
	yajl_val v = yajl_tree_get(obj, path, yajl_t_any);

	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_STRING(v) || strlen(v->u.string) > 1024 || strchr(v->u.string, '\n'))
		return -EINVAL;
	*out = strdup(v->u.string);
	return *out ? 0 : -ENOMEM;
}

/* crun's cpu.shares (2..262144) to cpu.weight (1..10000): 1024 shares is weight 100. */
static uint64_t shares_to_weight(uint64_t shares)
{
	double l, exponent;

	if (shares <= 2)
		return 1;
	if (shares >= 262144)
		return 10000;
	l = log2((double)shares);
	exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0;
	return (uint64_t)ceil(pow(10, exponent));
}

static int limits_unified(yajl_val res, const char *prefix, struct cgroup_limits *l, char *err,
			  size_t err_len)
{
	static const char *path[] = { "unified", NULL };
	yajl_val u = yajl_tree_get(res, path, yajl_t_any);
	size_t n;

	if (!u)
		return 0;
	if (!YAJL_IS_OBJECT(u) || u->u.object.len > CGROUP_MAX_UNIFIED)
		return limits_fail(err, err_len, prefix, "unified: must be an object of strings");
	n = u->u.object.len;
	l->unified = calloc(2 * n + 1, sizeof(char *));
	if (!l->unified)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *k = u->u.object.keys[i];
		yajl_val v = u->u.object.values[i];

		/* A file of this cgroup: "controller.name", nothing that walks elsewhere. */
		if (!strchr(k, '.') || strchr(k, '/') || k[0] == '.' || !YAJL_IS_STRING(v) ||
		    !strncmp(k, "cgroup.", 7))
			return limits_fail(
				err, err_len, prefix,
				"unified: keys must be controller files, values strings");
		if (!(l->unified[2 * i] = strdup(k)) ||
		    !(l->unified[2 * i + 1] = strdup(v->u.string)))
			return -ENOMEM;
	}
	return 0;
}

static bool sections_are_objects(yajl_val res)
{
	static const char *names[] = { "memory", "cpu", "pids" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *path[] = { names[i], NULL };
		yajl_val v = yajl_tree_get(res, path, yajl_t_any);

		if (v && !YAJL_IS_OBJECT(v) && !YAJL_IS_NULL(v))
			return false;
	}
	return true;
}

int cgroup_limits_parse(const void *yajl_resources, const char *prefix, struct cgroup_limits *out,
			char *err, size_t err_len)
{
	yajl_val res = (yajl_val)yajl_resources;
	int64_t shares = 0, period = 0;
	bool has_shares = false;
	int r;

	memset(out, 0, sizeof(*out));
	if (!YAJL_IS_OBJECT(res))
		r = limits_fail(err, err_len, prefix, "must be an object");
	else if (!sections_are_objects(res))
		r = limits_fail(err, err_len, prefix, "memory, cpu, pids: must be objects");
	else if (json_int(res, "memory", "limit", -1, &out->mem_limit, &out->has_mem_limit) < 0)
		r = limits_fail(err, err_len, prefix, "memory.limit: must be an integer >= -1");
	else if (json_int(res, "memory", "swap", -1, &out->mem_swap, &out->has_mem_swap) < 0)
		r = limits_fail(err, err_len, prefix, "memory.swap: must be an integer >= -1");
	else if (json_int(res, "memory", "reservation", -1, &out->mem_low, &out->has_mem_low) < 0)
		r = limits_fail(err, err_len, prefix,
				"memory.reservation: must be an integer >= -1");
	else if (json_int(res, "pids", "limit", INT64_MIN, &out->pids, &out->has_pids) < 0)
		r = limits_fail(err, err_len, prefix, "pids.limit: must be an integer");
	else if (json_int(res, "cpu", "quota", -1, &out->cpu_quota, &out->has_cpu_quota) < 0)
		r = limits_fail(err, err_len, prefix, "cpu.quota: must be an integer >= -1");
	else if (json_int(res, "cpu", "period", 1, &period, &out->has_cpu_period) < 0)
		r = limits_fail(err, err_len, prefix, "cpu.period: must be a positive integer");
	else if (json_int(res, "cpu", "shares", 0, &shares, &has_shares) < 0)
		r = limits_fail(err, err_len, prefix, "cpu.shares: must be a positive integer");
	else if (json_str(res, "cpu", "cpus", &out->cpus) < 0 ||
		 json_str(res, "cpu", "mems", &out->mems) < 0)
		r = limits_fail(err, err_len, prefix, "cpu.cpus: must be a cpuset string");
	else
		r = limits_unified(res, prefix, out, err, err_len);
	if (r == 0 && out->has_mem_swap && out->mem_swap >= 0 && out->has_mem_limit &&
	    out->mem_limit >= 0 && out->mem_swap < out->mem_limit)
		r = limits_fail(err, err_len, prefix,
				"memory.swap: must not be below memory.limit (it counts both)");
	out->cpu_period = (uint64_t)period;
	if (has_shares && shares > 0) {
		out->has_cpu_weight = true;
		out->cpu_weight = shares_to_weight((uint64_t)shares);
	}
	if (r < 0)
		cgroup_limits_free(out);
	return r;
}

void cgroup_limits_free(struct cgroup_limits *l)
{
	for (char **p = l->unified; p && *p; p++)
		free(*p);
	free(l->unified);
	free(l->cpus);
	free(l->mems);
	memset(l, 0, sizeof(*l));
}

static int write_file(const char *dir, const char *name, const char *value)
{
	char path[AGENT_MAX_PATH + 64];
	size_t len = strlen(value);
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	/* O_TRUNC as a shell's ">": the kernel ignores it on cgroup files. */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, len) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	close(fd);
	return r;
}

static ssize_t read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[AGENT_MAX_PATH + 64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

static void num_or_max(int64_t v, char *buf, size_t len)
{
	if (v < 0)
		snprintf(buf, len, "max");
	else
		snprintf(buf, len, "%lld", (long long)v);
}

static int apply_one(const char *dir, const char *file, const char *value, const char *field,
		     char *err, size_t err_len)
{
	int r = write_file(dir, file, value);

	if (r < 0)
		snprintf(err, err_len, "linux.resources.%s: write %s: %s", field, file,
			 strerror(-r));
	return r;
}

int cgroup_apply(const char *dir, const struct cgroup_limits *l, char *err, size_t err_len)
{
	char v[64];
	int r = 0;

	if (l->has_mem_limit) {
		num_or_max(l->mem_limit, v, sizeof(v));
		r = apply_one(dir, "memory.max", v, "memory.limit", err, err_len);
	}
	if (r == 0 && l->has_mem_low) {
		num_or_max(l->mem_low, v, sizeof(v));
		r = apply_one(dir, "memory.low", v, "memory.reservation", err, err_len);
	}
	if (r == 0 && l->has_mem_swap) {
		/* OCI's swap is memory + swap; cgroup v2's memory.swap.max is swap alone. */
		int64_t swap = l->mem_swap;

		if (swap >= 0 && l->has_mem_limit && l->mem_limit >= 0)
			swap -= l->mem_limit;
		num_or_max(l->mem_swap < 0 ? -1 : swap, v, sizeof(v));
		r = apply_one(dir, "memory.swap.max", v, "memory.swap", err, err_len);
	}
	if (r == 0 && l->has_pids) {
		num_or_max(l->pids > 0 ? l->pids : -1, v, sizeof(v));
		r = apply_one(dir, "pids.max", v, "pids.limit", err, err_len);
	}
	if (r == 0 && (l->has_cpu_quota || l->has_cpu_period)) {
		char q[32], cur[64], cur_q[32] = "max";
		unsigned long long cur_period = 100000;

		/* One of the two alone keeps the other as it is (runc, crun; the kernel too). */
		if (read_file(dir, "cpu.max", cur, sizeof(cur)) > 0 &&
		    sscanf(cur, "%31s %llu", cur_q, &cur_period) != 2) {
			snprintf(cur_q, sizeof(cur_q), "max");
			cur_period = 100000;
		}
		if (l->has_cpu_quota)
			num_or_max(l->cpu_quota, q, sizeof(q));
		else
			snprintf(q, sizeof(q), "%s", cur_q);
		snprintf(v, sizeof(v), "%s %llu", q,
			 l->has_cpu_period ? (unsigned long long)l->cpu_period : cur_period);
		r = apply_one(dir, "cpu.max", v, l->has_cpu_quota ? "cpu.quota" : "cpu.period", err,
			      err_len);
	}
	if (r == 0 && l->has_cpu_weight) {
		snprintf(v, sizeof(v), "%llu", (unsigned long long)l->cpu_weight);
		r = apply_one(dir, "cpu.weight", v, "cpu.shares", err, err_len);
	}
	if (r == 0 && l->cpus && l->cpus[0])
		r = apply_one(dir, "cpuset.cpus", l->cpus, "cpu.cpus", err, err_len);
	if (r == 0 && l->mems && l->mems[0])
		r = apply_one(dir, "cpuset.mems", l->mems, "cpu.mems", err, err_len);
	for (char **u = l->unified; r == 0 && u && u[0]; u += 2)
		r = apply_one(dir, u[0], u[1], "unified", err, err_len);
	return r;
}

/* Enable what dir's parent hands down to dir, on dir's subtree_control. */
static void enable_controllers(const char *dir)
{
	static const char *wanted[] = { "cpu", "memory", "pids", "cpuset", "io" };
	char have[512];

	if (read_file(dir, "cgroup.controllers", have, sizeof(have)) < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
		char add[16];
		const char *p = have;
		size_t n = strlen(wanted[i]);

		while ((p = strstr(p, wanted[i])) &&
		       !((p == have || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n])))
			p += n;
		if (!p)
			continue;
		snprintf(add, sizeof(add), "+%s", wanted[i]);
		write_file(dir, "cgroup.subtree_control", add);
	}
}

int cgroup_root_ready(struct agent *a)
{
	char parent[AGENT_MAX_PATH];
	struct statfs sf;
	char *slash;

	if (a->cgroup_ready)
		return 0;
	snprintf(parent, sizeof(parent), "%s", a->cgroup_root);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return -EINVAL;
	*slash = '\0';
	if (statfs(parent, &sf) < 0)
		return -errno;
	if (sf.f_type != CGROUP2_SUPER_MAGIC)
		return -ENOTSUP;
	if (mkdir(a->cgroup_root, 0755) < 0 && errno != EEXIST)
		return -errno;
	enable_controllers(parent);
	enable_controllers(a->cgroup_root);
	a->cgroup_ready = true;
	return 0;
}

static bool limits_given(const struct cgroup_limits *l)
{
	return l->has_mem_limit || l->has_mem_swap || l->has_mem_low || l->has_pids ||
	       l->has_cpu_quota || l->has_cpu_period || l->has_cpu_weight || l->cpus || l->mems ||
	       (l->unified && l->unified[0]);
}

int cgroup_create(struct agent *a, struct container *c, char *err, size_t err_len)
{
	char path[AGENT_MAX_PATH + AGENT_MAX_ID + 2];
	int r = cgroup_root_ready(a);

	if (r < 0) {
		if (!limits_given(&c->spec.limits))
			return 0; /* no cgroup v2 here (a native test host): run without */
		snprintf(err, err_len, "linux.resources: no cgroup v2 at %s: %s", a->cgroup_root,
			 strerror(-r));
		return r;
	}
	snprintf(path, sizeof(path), "%s/%s", a->cgroup_root, c->id);
	if (mkdir(path, 0755) < 0 &&
	    (errno != EEXIST || rmdir(path) < 0 || mkdir(path, 0755) < 0)) {
		r = -errno;
		snprintf(err, err_len, "cgroup %s: %s", path, strerror(errno));
		return r;
	}
	c->cgroup = strdup(path);
	if (!c->cgroup) {
		rmdir(path);
		return -ENOMEM;
	}
	r = cgroup_apply(path, &c->spec.limits, err, err_len);
	if (r < 0) {
		rmdir(path);
		free(c->cgroup);
		c->cgroup = NULL;
	}
	return r;
}

int cgroup_join(const char *dir, pid_t pid)
{
	char v[32];

	snprintf(v, sizeof(v), "%d", (int)pid);
	return write_file(dir, "cgroup.procs", v);
}

static void rmdir_tree(const char *dir, int depth)
{
	DIR *d = depth < CGROUP_MAX_DEPTH ? opendir(dir) : NULL;
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char sub[AGENT_MAX_PATH + 256];

		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub))
			continue; /* deeper than any cgroup we made */
		rmdir_tree(sub, depth + 1);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

void cgroup_destroy(struct agent *a, struct container *c)
{
	struct stat st;

	(void)a;
	if (!c->cgroup)
		return;
	/* Whatever still runs in it dies with the container (cgroup.kill: Linux 5.14). */
	write_file(c->cgroup, "cgroup.kill", "1");
	for (int i = 0; i < 200 && stat(c->cgroup, &st) == 0; i++) {
		rmdir_tree(c->cgroup, 0);
		if (stat(c->cgroup, &st) == 0)
			nanosleep(&(struct timespec){ 0, 2 * 1000 * 1000 }, NULL);
	}
	free(c->cgroup);
	c->cgroup = NULL;
}

/* "key value" lines: the value of key, or fallback. */
static uint64_t keyed(const char *text, const char *key, uint64_t fallback)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n) && p[n] == ' ')
			return strtoull(p + n + 1, NULL, 10);
	return fallback;
}

static uint64_t single(const char *dir, const char *file, uint64_t fallback)
{
	char buf[64];

	if (read_file(dir, file, buf, sizeof(buf)) <= 0)
		return fallback;
	if (!strncmp(buf, "max", 3))
		return AGENT_STATS_NO_LIMIT;
	return strtoull(buf, NULL, 10);
}

int cgroup_stats(const char *dir, struct agent_stats *out)
{
	char buf[4096];

	memset(out, 0, sizeof(*out));
	if (read_file(dir, "cpu.stat", buf, sizeof(buf)) > 0) {
		out->cpu_usage_us = keyed(buf, "usage_usec", 0);
		out->cpu_user_us = keyed(buf, "user_usec", 0);
		out->cpu_system_us = keyed(buf, "system_usec", 0);
		out->cpu_nr_periods = keyed(buf, "nr_periods", 0);
		out->cpu_nr_throttled = keyed(buf, "nr_throttled", 0);
		out->cpu_throttled_us = keyed(buf, "throttled_usec", 0);
	}
	out->mem_usage = single(dir, "memory.current", 0);
	out->mem_limit = single(dir, "memory.max", AGENT_STATS_NO_LIMIT);
	out->mem_swap_usage = single(dir, "memory.swap.current", 0);
	if (read_file(dir, "memory.events", buf, sizeof(buf)) > 0) {
		out->mem_oom = keyed(buf, "oom", 0);
		out->mem_oom_kill = keyed(buf, "oom_kill", 0);
	}
	out->pids_current = single(dir, "pids.current", 0);
	out->pids_limit = single(dir, "pids.max", AGENT_STATS_NO_LIMIT);
	return 0;
}

uint64_t cgroup_oom_kills(const char *dir)
{
	char buf[1024];

	if (!dir || read_file(dir, "memory.events", buf, sizeof(buf)) <= 0)
		return 0;
	return keyed(buf, "oom_kill", 0);
}

static int pids_add(pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		pid_t *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = pid;
	return 0;
}

static int pids_collect(const char *dir, int depth, pid_t **v, size_t *n, size_t *cap)
{
	char path[AGENT_MAX_PATH + 256], line[32];
	struct dirent *e;
	FILE *f;
	DIR *d;
	int r = 0;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (r == 0 && *n < AGENT_MAX_PROCS && fgets(line, sizeof(line), f))
		r = pids_add(v, n, cap, (pid_t)atoi(line));
	fclose(f);
	d = depth < CGROUP_MAX_DEPTH ? opendir(dir) : NULL;
	while (r == 0 && d && (e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		r = pids_collect(path, depth + 1, v, n, cap);
	}
	if (d)
		closedir(d);
	return r;
}

int cgroup_pids(const char *dir, pid_t **out, size_t *n)
{
	size_t cap = 0;
	int r;

	*out = NULL;
	*n = 0;
	r = pids_collect(dir, 0, out, n, &cap);
	if (r < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return r;
}

/* The cgroup v2 freezer (Linux 5.2): ENOENT without it. */
int cgroup_freeze(const char *dir, bool frozen)
{
	return write_file(dir, "cgroup.freeze", frozen ? "1" : "0");
}

int cgroup_frozen(const char *dir)
{
	char buf[256];
	ssize_t n = read_file(dir, "cgroup.events", buf, sizeof(buf));
	uint64_t v;

	if (n < 0)
		return (int)n;
	v = keyed(buf, "frozen", UINT64_MAX);
	return v == UINT64_MAX ? -ENOENT : v != 0;
}
