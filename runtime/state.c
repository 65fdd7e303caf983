/*
 * state.json of a container (see state.h): yajl_gen to write it, yajl_tree to read it back,
 * the atomic replace, and the liveness of the monitor through /proc/<pid>/stat.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "state.h"

static const char *const status_names[] = {
	[CONTAINER_CREATING] = "creating", [CONTAINER_CREATED] = "created",
	[CONTAINER_RUNNING] = "running",   [CONTAINER_PAUSED] = "paused",
	[CONTAINER_STOPPED] = "stopped",
};

const char *container_status_name(enum container_status status)
{
	if ((unsigned int)status >= ARRAY_SIZE(status_names))
		return "unknown";
	return status_names[status];
}

static int status_from_name(const char *name, enum container_status *out)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(status_names); i++) {
		if (!strcmp(name, status_names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

int state_id_check(const char *id, struct error *err)
{
	size_t len = strlen(id);

	if (!len)
		return error_set(err, -EINVAL, "container ID: must not be empty");
	if (len > STATE_ID_MAX)
		return error_set(err, -EINVAL, "container ID: longer than %d bytes", STATE_ID_MAX);
	if (!strcmp(id, ".") || !strcmp(id, ".."))
		return error_set(err, -EINVAL, "container ID: invalid: \"%s\"", id);
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '.'))
			return error_set(err, -EINVAL,
					 "container ID: invalid character in \"%s\" "
					 "(allowed: letters, digits, _ + - .)",
					 id);
	}
	return 0;
}

int state_dir_path(const char *root, const char *id, char **out)
{
	return asprintf(out, "%s/%s", root, id) < 0 ? -ENOMEM : 0;
}

int state_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char date[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	if (!gmtime_r(&ts.tv_sec, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		return -EINVAL;
	if ((size_t)snprintf(buf, len, "%s.%09ldZ", date, ts.tv_nsec) >= len)
		return -ENAMETOOLONG;
	return 0;
}

#define GEN_STR(g, s) yajl_gen_string(g, (const unsigned char *)(s), strlen(s))

static void gen_kv(yajl_gen g, const char *key, const char *value)
{
	GEN_STR(g, key);
	GEN_STR(g, value ? value : "");
}

/* "hostCgroup": [{"path": dir, "created": top-most made}, ...], one per hierarchy */
static void gen_host_cgroup(yajl_gen g, const struct host_cgroup *hc)
{
	GEN_STR(g, "hostCgroup");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < hc->n; i++) {
		yajl_gen_map_open(g);
		gen_kv(g, "path", hc->dirs[i].path);
		if (hc->dirs[i].created)
			gen_kv(g, "created", hc->dirs[i].created);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

static void gen_state(yajl_gen g, const struct container_state *st, bool private)
{
	yajl_gen_map_open(g);
	gen_kv(g, "ociVersion", st->oci_version ? st->oci_version : STATE_OCI_VERSION);
	gen_kv(g, "id", st->id);
	gen_kv(g, "status", container_status_name(st->status));
	GEN_STR(g, "pid");
	yajl_gen_integer(g, private || st->status != CONTAINER_STOPPED ? st->pid : 0);
	gen_kv(g, "bundle", st->bundle);
	gen_kv(g, "rootfs", st->rootfs);
	gen_kv(g, "created", st->created);
	gen_kv(g, "owner", st->owner);
	GEN_STR(g, "annotations");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < st->n_annotations; i++)
		gen_kv(g, st->annotations[i].key, st->annotations[i].value);
	yajl_gen_map_close(g);
	if (private) {
		GEN_STR(g, "stratus");
		yajl_gen_map_open(g);
		GEN_STR(g, "pidStartTime");
		yajl_gen_integer(g, (long long)st->pid_start_time);
		if (st->vm_vcpus) {
			GEN_STR(g, "vmVcpus");
			yajl_gen_integer(g, st->vm_vcpus);
			GEN_STR(g, "vmMemoryMiB");
			yajl_gen_integer(g, (long long)st->vm_mem_mib);
		}
		if (st->pod_share)
			gen_kv(g, "podShare", st->pod_share);
		if (st->sandbox)
			gen_kv(g, "sandbox", st->sandbox);
		if (st->host_cgroup.n)
			gen_host_cgroup(g, &st->host_cgroup);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
}

static int gen_to_string(const struct container_state *st, bool pretty, bool private, char **out)
{
	const unsigned char *buf;
	yajl_gen g = yajl_gen_alloc(NULL);
	size_t len;
	int r = 0;

	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, pretty ? 1 : 0);
	if (pretty)
		yajl_gen_config(g, yajl_gen_indent_string, "  ");
	gen_state(g, st, private);
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		r = -EINVAL;
	else if (!(*out = strndup((const char *)buf, len)))
		r = -ENOMEM;
	yajl_gen_free(g);
	return r;
}

int state_to_json(const struct container_state *st, bool pretty, char **out)
{
	return gen_to_string(st, pretty, false, out);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= n;
	}
	return 0;
}

int state_write(const char *dir, const struct container_state *st, struct error *err)
{
	_cleanup_free_ char *json = NULL, *tmp = NULL, *path = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	r = gen_to_string(st, false, true, &json);
	if (r < 0)
		return error_set_errno(err, r, "state.json: cannot encode");
	/* per-writer temp name: two verbs racing never write into one file */
	if (asprintf(&tmp, "%s/.%s.%d.tmp", dir, STATE_FILE, (int)getpid()) < 0 ||
	    asprintf(&path, "%s/%s", dir, STATE_FILE) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return error_set_errno(err, -errno, "cannot create %s", tmp);
	/*
	 * No fsync, as runc and crun: the rename is what makes the write atomic for readers, and
	 * the state describes processes that a crash of the host ends anyway (/run is a tmpfs on
	 * most hosts). Where --root is on a disk, the fsyncs cost 5-15 ms per write on a busy one
	 * (docs/benchmarks.md, "Host-side time of `stratus run` on the template path").
	 */
	r = write_all(fd, json, strlen(json));
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return error_set_errno(err, r, "cannot write %s", path);
	}
	return 0;
}

void state_clear(struct container_state *st)
{
	free(st->oci_version);
	free(st->id);
	free(st->bundle);
	free(st->rootfs);
	free(st->created);
	free(st->owner);
	free(st->pod_share);
	free(st->sandbox);
	host_cgroup_clear(&st->host_cgroup);
	for (size_t i = 0; i < st->n_annotations; i++) {
		free(st->annotations[i].key);
		free(st->annotations[i].value);
	}
	free(st->annotations);
	memset(st, 0, sizeof(*st));
}

static yajl_val member(yajl_val obj, const char *key)
{
	const char *path[] = { key, NULL };

	return yajl_tree_get(obj, path, yajl_t_any);
}

static int get_string(yajl_val root, const char *key, bool required, char **out, struct error *err)
{
	yajl_val v = member(root, key);

	if (!v && !required)
		return (*out = strdup("")) ? 0 : -ENOMEM;
	if (!YAJL_IS_STRING(v))
		return error_set(err, -EINVAL, "state.json: %s: must be a string", key);
	*out = strdup(v->u.string);
	return *out ? 0 : -ENOMEM;
}

static int get_annotations(yajl_val root, struct container_state *st, struct error *err)
{
	yajl_val v = member(root, "annotations");
	size_t n;

	if (!v)
		return 0;
	if (!YAJL_IS_OBJECT(v))
		return error_set(err, -EINVAL, "state.json: annotations: must be an object");
	n = v->u.object.len;
	if (n > STATE_MAX_ANNOTATION)
		return error_set(err, -E2BIG, "state.json: annotations: too many");
	st->annotations = calloc(n ? n : 1, sizeof(*st->annotations));
	if (!st->annotations)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yajl_val value = v->u.object.values[i];

		if (!YAJL_IS_STRING(value))
			return error_set(err, -EINVAL,
					 "state.json: annotations.%s: must be a string",
					 v->u.object.keys[i]);
		st->annotations[i].key = strdup(v->u.object.keys[i]);
		st->annotations[i].value = strdup(value->u.string);
		st->n_annotations++;
		if (!st->annotations[i].key || !st->annotations[i].value)
			return -ENOMEM;
	}
	return 0;
}

/* stratus.<key>: an optional share tag or container ID (a path component: checked). */
static int get_private_id(yajl_val root, const char *key, char **out, struct error *err)
{
	const char *path[] = { "stratus", key, NULL };
	yajl_val v = yajl_tree_get(root, path, yajl_t_any);

	if (!v)
		return 0;
	if (!YAJL_IS_STRING(v) || state_id_check(v->u.string, NULL) < 0)
		return error_set(err, -EINVAL, "state.json: stratus.%s: must be a container ID",
				 key);
	*out = strdup(v->u.string);
	return *out ? 0 : -ENOMEM;
}

/*
 * stratus.hostCgroup: delete removes what it names, so each path must be a clean absolute
 * path and "created" one of its parents (or itself).
 */
static int get_host_cgroup(yajl_val root, struct host_cgroup *hc, struct error *err)
{
	const char *path[] = { "stratus", "hostCgroup", NULL };
	yajl_val v = yajl_tree_get(root, path, yajl_t_any);
	size_t n;

	if (!v)
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > 64)
		return error_set(err, -EINVAL,
				 "state.json: stratus.hostCgroup: must be an array (64 at most)");
	n = v->u.array.len;
	hc->dirs = calloc(n ? n : 1, sizeof(*hc->dirs));
	if (!hc->dirs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yajl_val d = v->u.array.values[i], p = member(d, "path"), c = member(d, "created");
		const char *ps = YAJL_IS_STRING(p) ? p->u.string : NULL;
		const char *cs = YAJL_IS_STRING(c) ? c->u.string : NULL;
		size_t cl = cs ? strlen(cs) : 0;

		if (!YAJL_IS_OBJECT(d) || !host_cgroup_path_valid(ps) || (c && !cs) ||
		    (cs && (!host_cgroup_path_valid(cs) || strncmp(ps, cs, cl) ||
			    (ps[cl] && ps[cl] != '/'))))
			return error_set(
				err, -EINVAL,
				"state.json: stratus.hostCgroup[%zu]: path must be a cgroup "
				"directory and created that or a parent of it",
				i);
		hc->dirs[i].path = strdup(ps);
		hc->dirs[i].created = cs ? strdup(cs) : NULL;
		hc->n++;
		if (!hc->dirs[i].path || (cs && !hc->dirs[i].created))
			return -ENOMEM;
	}
	return 0;
}

static int parse_tree(yajl_val root, struct container_state *st, struct error *err)
{
	const char *start_path[] = { "stratus", "pidStartTime", NULL };
	const char *vcpus_path[] = { "stratus", "vmVcpus", NULL };
	const char *mem_path[] = { "stratus", "vmMemoryMiB", NULL };
	_cleanup_free_ char *status = NULL;
	yajl_val v;
	int r;

	if (!YAJL_IS_OBJECT(root))
		return error_set(err, -EINVAL, "state.json: must be an object");
	if ((r = get_string(root, "ociVersion", true, &st->oci_version, err)) < 0 ||
	    (r = get_string(root, "id", true, &st->id, err)) < 0 ||
	    (r = get_string(root, "status", true, &status, err)) < 0 ||
	    (r = get_string(root, "bundle", true, &st->bundle, err)) < 0 ||
	    (r = get_string(root, "rootfs", false, &st->rootfs, err)) < 0 ||
	    (r = get_string(root, "created", false, &st->created, err)) < 0 ||
	    (r = get_string(root, "owner", false, &st->owner, err)) < 0)
		return r;
	if (status_from_name(status, &st->status) < 0)
		return error_set(err, -EINVAL, "state.json: status: unknown \"%s\"", status);
	v = member(root, "pid");
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 || YAJL_GET_INTEGER(v) > INT32_MAX)
		return error_set(err, -EINVAL, "state.json: pid: must be a non-negative integer");
	st->pid = (pid_t)YAJL_GET_INTEGER(v);
	v = yajl_tree_get(root, start_path, yajl_t_any);
	if (v && (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0))
		return error_set(err, -EINVAL,
				 "state.json: stratus.pidStartTime: must be an integer");
	st->pid_start_time = v ? (uint64_t)YAJL_GET_INTEGER(v) : 0;
	v = yajl_tree_get(root, vcpus_path, yajl_t_any);
	if (v && (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1 || YAJL_GET_INTEGER(v) > 4096))
		return error_set(err, -EINVAL, "state.json: stratus.vmVcpus: must be 1 .. 4096");
	st->vm_vcpus = v ? (unsigned int)YAJL_GET_INTEGER(v) : 0;
	v = yajl_tree_get(root, mem_path, yajl_t_any);
	if (v && (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1))
		return error_set(err, -EINVAL,
				 "state.json: stratus.vmMemoryMiB: must be a positive integer");
	st->vm_mem_mib = v ? (uint64_t)YAJL_GET_INTEGER(v) : 0;
	r = get_private_id(root, "podShare", &st->pod_share, err);
	r = r ?: get_private_id(root, "sandbox", &st->sandbox, err);
	r = r ?: get_host_cgroup(root, &st->host_cgroup, err);
	return r ?: get_annotations(root, st, err);
}

int state_parse(const char *json, size_t len, struct container_state *st, struct error *err)
{
	_cleanup_free_ char *text = strndup(json, len);
	char msg[256];
	yajl_val root;
	int r;

	memset(st, 0, sizeof(*st));
	if (!text)
		return error_set(err, -ENOMEM, "out of memory");
	root = yajl_tree_parse(text, msg, sizeof(msg));
	if (!root) {
		msg[strcspn(msg, "\n")] = '\0';
		return error_set(err, -EINVAL, "state.json: not valid JSON: %s", msg);
	}
	r = parse_tree(root, st, err);
	yajl_tree_free(root);
	if (r < 0) {
		state_clear(st);
		if (r == -ENOMEM)
			error_set(err, r, "out of memory");
	}
	return r;
}

int state_read(const char *dir, struct container_state *st, struct error *err)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	_cleanup_close_ int fd = -1;
	struct stat sb;
	size_t have = 0;

	memset(st, 0, sizeof(*st));
	if (asprintf(&path, "%s/%s", dir, STATE_FILE) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return error_set_errno(err, -errno, "cannot open %s", path);
	if (fstat(fd, &sb) < 0)
		return error_set_errno(err, -errno, "cannot stat %s", path);
	if (!S_ISREG(sb.st_mode) || sb.st_size > STATE_MAX_BYTES)
		return error_set(err, -EINVAL, "%s: not a state file", path);
	buf = malloc(sb.st_size + 1);
	if (!buf)
		return error_set(err, -ENOMEM, "out of memory");
	while (have < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + have, sb.st_size - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_set_errno(err, -errno, "cannot read %s", path);
		if (n == 0)
			break;
		have += n;
	}
	return state_parse(buf, have, st, err);
}

int process_start_time(pid_t pid, uint64_t *start)
{
	char path[64], buf[1024], *p, state;
	unsigned long long ticks;
	_cleanup_close_ int fd = -1;
	ssize_t n;

	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: the fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c", &state) != 1)
		return -EIO;
	if (state == 'Z' || state == 'X')
		return -ESRCH;
	/* state is field 3, starttime field 22: skip fields 4 .. 21. */
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	if (sscanf(p, "%llu", &ticks) != 1)
		return -EIO;
	*start = ticks;
	return 0;
}

bool state_monitor_alive(const struct container_state *st)
{
	uint64_t start;

	if (process_start_time(st->pid, &start) < 0)
		return false;
	return !st->pid_start_time || start == st->pid_start_time;
}

enum container_status state_live_status(const struct container_state *st)
{
	if (st->status == CONTAINER_STOPPED || !state_monitor_alive(st))
		return CONTAINER_STOPPED;
	return st->status;
}
