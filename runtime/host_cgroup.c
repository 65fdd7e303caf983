/*
 * Host cgroup placement of the monitor (host_cgroup.h, docs/runtime.md "Host cgroup"): the
 * resolution of linux.cgroupsPath follows runc (libcontainer's cgroupfs default paths, v1 and
 * v2, and its systemd slice expansion) so a caller that chose a path for runc gets the same
 * directories from us; the hierarchies joined are those mountinfo lists, as runc's cgroupfs
 * manager joins every mounted one. Paths are cleaned lexically against "/" first, so no ".."
 * leaves a hierarchy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "host_cgroup.h"

/* a, then b ("" or NULL: none), cleaned as an absolute path: "/x/y", or "/" for the root. */
static char *path_clean(const char *a, const char *b)
{
	size_t len = strlen(a) + (b ? strlen(b) : 0) + 3;
	_cleanup_free_ char *in = malloc(len);
	char *out = malloc(len), *tok, *save = NULL;
	size_t n = 0;

	if (!in || !out) {
		free(out);
		return NULL;
	}
	snprintf(in, len, "%s/%s", a, b ? b : "");
	for (tok = strtok_r(in, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			continue;
		}
		out[n++] = '/';
		memcpy(out + n, tok, strlen(tok));
		n += strlen(tok);
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return out;
}

int host_cgroup_expand_slice(const char *slice, char **out)
{
	size_t len = strlen(slice), base, i;
	char *res, *p;

	if (len < 6 || strcmp(slice + len - 6, ".slice") || strchr(slice, '/'))
		return -EINVAL;
	if (!strcmp(slice, "-.slice"))
		return (*out = strdup("")) ? 0 : -ENOMEM;
	base = len - 6;
	/* every dash-separated part non-empty: no leading, trailing or double dash */
	if (slice[0] == '-' || slice[base - 1] == '-' || strstr(slice, "--"))
		return -EINVAL;
	/* each prefix ending before a dash, then the whole: "/a.slice/a-b.slice" */
	res = malloc(len * (len + 8) + 1);
	if (!res)
		return -ENOMEM;
	p = res;
	for (i = 0; i <= base; i++) {
		if (i < base && slice[i] != '-')
			continue;
		*p++ = '/';
		memcpy(p, slice, i);
		p += i;
		memcpy(p, ".slice", 6);
		p += 6;
	}
	*p = '\0';
	*out = res;
	return 0;
}

static int resolve_systemd(const char *cgroups_path, char **out, struct error *err)
{
	_cleanup_free_ char *copy = strdup(cgroups_path), *slice_path = NULL, *unit = NULL;
	char *slice, *prefix, *name, *c1, *c2;
	size_t nlen;
	int r;

	if (!copy)
		return error_set(err, -ENOMEM, "out of memory");
	c1 = strchr(copy, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2 || strchr(c2 + 1, ':'))
		return error_set(
			err, -EINVAL,
			"config.json: linux.cgroupsPath: must be slice:prefix:name with the "
			"systemd cgroup manager, not \"%s\"",
			cgroups_path);
	*c1 = *c2 = '\0';
	slice = copy;
	prefix = c1 + 1;
	name = c2 + 1;
	nlen = strlen(name);
	if (!*name || strchr(name, '/') || strchr(prefix, '/') || !strcmp(name, "..") ||
	    !strcmp(name, "."))
		return error_set(err, -EINVAL,
				 "config.json: linux.cgroupsPath: the name in \"%s\" must be "
				 "non-empty and without \"/\"",
				 cgroups_path);
	r = host_cgroup_expand_slice(*slice ? slice : "system.slice", &slice_path);
	if (r == -ENOMEM)
		return error_set(err, r, "out of memory");
	if (r < 0)
		return error_set(err, r,
				 "config.json: linux.cgroupsPath: \"%s\" is not a systemd slice "
				 "name (a-b.slice)",
				 slice);
	if (nlen > 6 && !strcmp(name + nlen - 6, ".slice"))
		r = asprintf(&unit, "%s", name);
	else if (*prefix)
		r = asprintf(&unit, "%s-%s.scope", prefix, name);
	else
		r = asprintf(&unit, "%s.scope", name);
	if (r < 0)
		return error_set(err, -ENOMEM, "out of memory");
	*out = path_clean(slice_path, unit);
	return *out ? 0 : error_set(err, -ENOMEM, "out of memory");
}

bool host_cgroup_is_systemd_form(const char *cgroups_path)
{
	const char *c1 = strchr(cgroups_path, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	size_t slice_len = c1 ? (size_t)(c1 - cgroups_path) : 0;

	if (!c2 || strchr(c2 + 1, ':') || cgroups_path[0] == '/')
		return false;
	return slice_len == 0 || (slice_len > 6 && !strncmp(c1 - 6, ".slice", 6) &&
				  !memchr(cgroups_path, '/', slice_len));
}

static enum host_cgroup_manager effective_manager(const char *cgroups_path,
						  enum host_cgroup_manager manager)
{
	if (manager != HOST_CGROUP_AUTO)
		return manager;
	return host_cgroup_is_systemd_form(cgroups_path) ? HOST_CGROUP_SYSTEMD
							 : HOST_CGROUP_CGROUPFS;
}

int host_cgroup_resolve(const char *cgroups_path, enum host_cgroup_manager manager, const char *own,
			bool parent_of_own, char **out, struct error *err)
{
	_cleanup_free_ char *base = NULL, *rel = NULL;

	*out = NULL;
	if (!cgroups_path || !*cgroups_path)
		return error_set(err, -EINVAL, "config.json: linux.cgroupsPath: must not be empty");
	if (effective_manager(cgroups_path, manager) == HOST_CGROUP_SYSTEMD)
		return resolve_systemd(cgroups_path, out, err);
	if (cgroups_path[0] == '/') {
		*out = path_clean(cgroups_path, NULL);
	} else {
		/*
		 * runc: v1, below our own cgroup; v2, below its parent (ours most likely has
		 * processes, so no child of it could enable controllers). Cleaned on its own
		 * first, so a ".." does not climb above that base.
		 */
		base = path_clean(own ? own : "/", parent_of_own ? ".." : NULL);
		rel = path_clean("/", cgroups_path);
		*out = base && rel ? path_clean(base, rel) : NULL;
	}
	if (!*out)
		return error_set(err, -ENOMEM, "out of memory");
	if (!strcmp(*out, "/")) {
		free(ptr_steal(out));
		return error_set(err, -EINVAL,
				 "config.json: linux.cgroupsPath: \"%s\" names the cgroup root",
				 cgroups_path);
	}
	return 0;
}

bool host_cgroup_path_valid(const char *path)
{
	const char *p = path, *slash;

	if (!path || path[0] != '/' || !path[1])
		return false;
	while (*p == '/') {
		size_t n;

		p++;
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
	}
	return true;
}

void host_cgroup_clear(struct host_cgroup *hc)
{
	for (size_t i = 0; i < hc->n; i++) {
		free(hc->dirs[i].path);
		free(hc->dirs[i].created);
	}
	free(hc->dirs);
	hc->dirs = NULL;
	hc->n = 0;
}

int host_cgroup_copy(struct host_cgroup *dst, const struct host_cgroup *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src->n)
		return 0;
	dst->dirs = calloc(src->n, sizeof(*dst->dirs));
	if (!dst->dirs)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++, dst->n++) {
		dst->dirs[i] = src->dirs[i];
		dst->dirs[i].path = strdup(src->dirs[i].path);
		dst->dirs[i].created = src->dirs[i].created ? strdup(src->dirs[i].created) : NULL;
		if (!dst->dirs[i].path || (src->dirs[i].created && !dst->dirs[i].created)) {
			dst->n++;
			host_cgroup_clear(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

static void warnf(host_cgroup_warn_fn *warn, const char *fmt, ...) _printf_(2, 3);

static void warnf(host_cgroup_warn_fn *warn, const char *fmt, ...)
{
	char msg[ERROR_MSG_MAX];
	va_list ap;

	if (!warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	warn(msg);
}

/* The hierarchy's name for messages: "memory", "name=systemd", "cgroup v2". */
static const char *hierarchy_name(const struct host_cgroup_hierarchy *h)
{
	return h->v2 ? "cgroup v2" : h->controllers;
}

int host_cgroup_plan(const struct host_cgroup_layout *l, const char *cgroups_path,
		     enum host_cgroup_manager manager, struct host_cgroup *out,
		     host_cgroup_warn_fn *warn, struct error *err)
{
	_cleanup_free_ char *probe = NULL;
	bool needs_own;
	int r;

	memset(out, 0, sizeof(*out));
	if (!cgroups_path || !*cgroups_path || manager == HOST_CGROUP_DISABLED)
		return 0;
	/* the form first: a bad one is an error even on a host with no hierarchy */
	r = host_cgroup_resolve(cgroups_path, manager, "/", l->unified, &probe, err);
	if (r < 0)
		return r;
	if (!l->n) {
		warnf(warn, "linux.cgroupsPath: no cgroup hierarchy is mounted: the monitor stays "
			    "in the caller's cgroup");
		return 0;
	}
	needs_own = cgroups_path[0] != '/' &&
		    effective_manager(cgroups_path, manager) == HOST_CGROUP_CGROUPFS;
	out->dirs = calloc(l->n, sizeof(*out->dirs));
	if (!out->dirs)
		return error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		const struct host_cgroup_hierarchy *h = &l->h[i];
		struct host_cgroup_dir *d = &out->dirs[out->n];
		_cleanup_free_ char *path = NULL;

		if (needs_own && !h->own) {
			warnf(warn,
			      "linux.cgroupsPath: our own cgroup in the %s hierarchy at %s is "
			      "unknown: \"%s\" not joined there",
			      hierarchy_name(h), h->mount, cgroups_path);
			continue;
		}
		r = host_cgroup_resolve(cgroups_path, manager, h->own, l->unified, &path, err);
		if (r < 0 ||
		    asprintf(&d->path, "%s%s", strcmp(h->mount, "/") ? h->mount : "", path) < 0) {
			d->path = NULL;
			host_cgroup_clear(out);
			return r < 0 ? r : error_set(err, -ENOMEM, "out of memory");
		}
		d->cpuset = h->cpuset;
		d->mount_len = strcmp(h->mount, "/") ? strlen(h->mount) : 0;
		out->n++;
	}
	return 0;
}

/* Read dir/name into buf (NUL-terminated, trailing whitespace cut); "" when absent. */
static int read_small(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	buf[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return 0;
}

static int write_small(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	size_t len = strlen(val);

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	/* as a shell's ">": a cgroup file exists; a test's scratch tree gets one */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != (ssize_t)len)
		return -errno;
	return 0;
}

/*
 * A v1 cpuset cgroup starts with no cpus and no mems and refuses tasks until given some:
 * the parent's, as runc gives them ("cpuset.cpus", or "cpus" on a noprefix mount).
 */
static int cpuset_inherit(const char *dir)
{
	static const char *const files[][2] = { { "cpuset.cpus", "cpus" },
						{ "cpuset.mems", "mems" } };
	_cleanup_free_ char *parent = strdup(dir);
	char val[4096], have[4096];
	char *slash;

	if (!parent)
		return -ENOMEM;
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return 0;
	*slash = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		const char *name = files[i][0];
		int r;

		r = read_small(parent, name, val, sizeof(val));
		if (r == 0 && !val[0]) {
			name = files[i][1];
			r = read_small(parent, name, val, sizeof(val));
		}
		r = r ?: read_small(dir, name, have, sizeof(have));
		if (r < 0)
			return r;
		if (!val[0] || have[0])
			continue;
		r = write_small(dir, name, val);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * rmdir path's parents up to created, deepest first, stopping at the first that will not go:
 * a parent made for us may hold another container's cgroup by now (/<namespace>/<id> paths
 * share /<namespace>), and it is then that one's to leave (runc never removes parents).
 */
static void remove_parents(const char *path, const char *created)
{
	_cleanup_free_ char *full = strdup(path);
	size_t stop = strlen(created);
	char *slash;

	while (full && (slash = strrchr(full, '/')) && (size_t)(slash - full) >= stop) {
		*slash = '\0';
		if (rmdir(full) < 0 && errno != ENOENT)
			return;
	}
}

/* rmdir path (the leaf) and then the parents up to created; -errno if the leaf will not go. */
static int remove_made(const char *path, const char *created)
{
	size_t cl;

	if (!created)
		return 0;
	cl = strlen(created);
	if (strncmp(path, created, cl) || (path[cl] && path[cl] != '/'))
		return 0;
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	remove_parents(path, created);
	return 0;
}

static bool refused(int r)
{
	return r == -EACCES || r == -EPERM || r == -EROFS;
}

/* Make d->path below the mount (its first mount_len characters); d->created notes it. */
static int make_dir(struct host_cgroup_dir *d, size_t mount_len)
{
	char *p;
	int r;

	for (p = d->path + mount_len + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		r = 0;
		if (mkdir(d->path, 0755) == 0) {
			if (!d->created && !(d->created = strdup(d->path)))
				r = -ENOMEM;
			if (r == 0 && d->cpuset)
				r = cpuset_inherit(d->path);
		} else if (errno != EEXIST) {
			r = -errno;
		}
		*p = c;
		if (r < 0)
			return r;
		if (!c)
			break;
	}
	/* a directory someone else made may still not be ours to join */
	if (!d->created) {
		char procs[PATH_MAX];

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", d->path);
		if (access(procs, W_OK) < 0 && errno != ENOENT)
			return -errno;
	}
	return 0;
}

int host_cgroup_create(struct host_cgroup *hc, host_cgroup_warn_fn *warn, struct error *err)
{
	size_t i = 0;

	while (i < hc->n) {
		struct host_cgroup_dir *d = &hc->dirs[i];
		int r, tries = 0;

		/* ENOENT: a parent we found went with another container's delete; again */
		while ((r = make_dir(d, d->mount_len)) < 0) {
			remove_made(d->path, d->created);
			free(ptr_steal(&d->created));
			if (r != -ENOENT || ++tries == 3)
				break;
		}
		if (r < 0 && refused(r)) {
			warnf(warn, "linux.cgroupsPath: cannot use %s: %s: not joined there",
			      d->path, strerror(-r));
			free(d->path);
			memmove(d, d + 1, (hc->n - i - 1) * sizeof(*d));
			hc->n--;
			continue;
		}
		if (r < 0) {
			error_set_errno(err, r, "linux.cgroupsPath: cannot create %s", d->path);
			host_cgroup_remove(hc, NULL, 0, NULL);
			return r;
		}
		i++;
	}
	return 0;
}

static int enter_dir(const char *dir, pid_t pid)
{
	char procs[PATH_MAX], buf[32];
	int fd, len, r = 0;

	if ((size_t)snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir) >= sizeof(procs))
		return -ENAMETOOLONG;
	len = snprintf(buf, sizeof(buf), "%d\n", (int)(pid ? pid : getpid()));
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)len) != len)
		r = -errno;
	close(fd);
	return r;
}

int host_cgroup_enter(const struct host_cgroup *hc, pid_t pid, const char **failed)
{
	for (size_t i = 0; i < hc->n; i++) {
		int r = enter_dir(hc->dirs[i].path, pid);

		if (r < 0) {
			*failed = hc->dirs[i].path;
			return r;
		}
	}
	return 0;
}

/* Is path strictly below one of l's mount points? */
static bool below_a_mount(const struct host_cgroup_layout *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++) {
		size_t ml = strlen(l->h[i].mount);

		if (!strcmp(l->h[i].mount, "/"))
			ml = 0;
		if (!strncmp(path, l->h[i].mount, ml) && path[ml] == '/' && path[ml + 1])
			return true;
	}
	return false;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int host_cgroup_remove(const struct host_cgroup *hc, const struct host_cgroup_layout *l,
		       int wait_ms, host_cgroup_warn_fn *warn)
{
	long long deadline = now_ms() + wait_ms;
	int ret = 0;

	for (size_t i = 0; i < hc->n; i++) {
		const struct host_cgroup_dir *d = &hc->dirs[i];
		int r;

		if (!d->created)
			continue;
		if (l && !below_a_mount(l, d->created)) {
			warnf(warn, "host cgroup %s: not below a cgroup mount: left alone",
			      d->created);
			continue;
		}
		while ((r = remove_made(d->path, d->created)) == -EBUSY && now_ms() < deadline)
			usleep(20000);
		if (r < 0) {
			warnf(warn, "cannot remove the host cgroup %s: %s", d->path, strerror(-r));
			ret = ret ?: r;
		}
	}
	return ret;
}

int host_cgroup_join(const struct host_cgroup_layout *l, const char *what, const char *path,
		     pid_t pid, host_cgroup_warn_fn *warn, struct error *err)
{
	_cleanup_free_ char *clean = path_clean("/", path);
	size_t joined = 0;

	if (!clean)
		return error_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++) {
		const struct host_cgroup_hierarchy *h = &l->h[i];
		char dir[PATH_MAX];
		struct stat st;
		int r;

		if ((size_t)snprintf(dir, sizeof(dir), "%s%s",
				     strcmp(h->mount, "/") ? h->mount : "",
				     strcmp(clean, "/") ? clean : "") >= sizeof(dir))
			return error_set(err, -ENAMETOOLONG, "%s: %s: too long", what, path);
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			warnf(warn, "%s: no cgroup %s in the %s hierarchy: not joined there", what,
			      clean, hierarchy_name(h));
			continue;
		}
		r = enter_dir(dir, pid);
		if (r < 0 && refused(r)) {
			warnf(warn, "%s: cannot join %s: %s: not joined there", what, dir,
			      strerror(-r));
			continue;
		}
		if (r < 0)
			return error_set_errno(err, r, "%s: cannot join %s", what, dir);
		joined++;
	}
	if (!joined)
		return error_set(err, -ENOENT, "%s: no cgroup %s to join on this host", what,
				 clean);
	return 0;
}
