/*
 * Host cgroup placement of the monitor (host_cgroup.h, docs/runtime.md "Host cgroup"): the
 * resolution of linux.cgroupsPath follows runc (libcontainer's cgroupfs v2 default path and
 * its systemd slice expansion) so a caller that chose a path for runc gets the same directory
 * from us. Paths are cleaned lexically against "/" first, so no ".." leaves the hierarchy.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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
		return error_set(
			err, -EINVAL,
			"config.json: linux.cgroupsPath: the name in \"%s\" must be non-empty "
			"and without \"/\"",
			cgroups_path);
	r = host_cgroup_expand_slice(*slice ? slice : "system.slice", &slice_path);
	if (r == -ENOMEM)
		return error_set(err, r, "out of memory");
	if (r < 0)
		return error_set(
			err, r,
			"config.json: linux.cgroupsPath: \"%s\" is not a systemd slice name "
			"(a-b.slice)",
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

int host_cgroup_resolve(const char *cgroups_path, enum host_cgroup_manager manager, const char *own,
			char **out, struct error *err)
{
	_cleanup_free_ char *parent = NULL, *rel = NULL;

	*out = NULL;
	if (!cgroups_path || !*cgroups_path)
		return error_set(err, -EINVAL, "config.json: linux.cgroupsPath: must not be empty");
	if (manager == HOST_CGROUP_AUTO)
		manager = host_cgroup_is_systemd_form(cgroups_path) ? HOST_CGROUP_SYSTEMD
								    : HOST_CGROUP_CGROUPFS;
	if (manager == HOST_CGROUP_SYSTEMD)
		return resolve_systemd(cgroups_path, out, err);
	if (cgroups_path[0] == '/') {
		*out = path_clean(cgroups_path, NULL);
	} else {
		/*
		 * runc: below the parent of our own cgroup (ours most likely has processes, so
		 * no child of it could enable controllers); cleaned on its own first, so a
		 * ".." does not climb above that parent
		 */
		parent = path_clean(own ? own : "/", "..");
		rel = path_clean("/", cgroups_path);
		*out = parent && rel ? path_clean(parent, rel) : NULL;
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

const char *host_cgroup_root(void)
{
	const char *env = getenv(HOST_CGROUP_ROOT_ENV);

	return env && env[0] == '/' ? env : HOST_CGROUP_ROOT;
}

int host_cgroup_own(char **out)
{
	_cleanup_free_ char *line = NULL;
	FILE *f = fopen("/proc/self/cgroup", "re");
	size_t cap = 0;
	ssize_t n;
	int r = -ENOENT;

	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (strncmp(line, "0::/", 4))
			continue;
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		*out = strdup(line + 3);
		r = *out ? 0 : -ENOMEM;
		break;
	}
	fclose(f);
	return r;
}

bool host_cgroup_is_v2(const char *root)
{
	struct statfs fs;

	return statfs(root, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

int host_cgroup_remove(const char *root, const char *path, const char *created)
{
	_cleanup_free_ char *full = NULL;
	size_t stop, rl = strlen(root);
	char *slash;

	if (!created || strncmp(path, created, strlen(created)) ||
	    (path[strlen(created)] && path[strlen(created)] != '/'))
		return 0;
	if (asprintf(&full, "%s%s", root, path) < 0)
		return -ENOMEM;
	stop = rl + strlen(created);
	for (;;) {
		if (rmdir(full) < 0 && errno != ENOENT)
			return -errno;
		if (strlen(full) <= stop)
			return 0;
		slash = strrchr(full, '/');
		if (!slash || (size_t)(slash - full) < stop)
			return 0;
		*slash = '\0';
	}
}

int host_cgroup_remove_wait(const char *root, const char *path, const char *created)
{
	int r, tries = 0;

	while ((r = host_cgroup_remove(root, path, created)) == -EBUSY && tries++ < 250)
		usleep(20000);
	return r;
}

int host_cgroup_create(const char *root, const char *path, char **created, struct error *err)
{
	_cleanup_free_ char *full = NULL;
	size_t rl = strlen(root);
	char *p;

	*created = NULL;
	if (path[0] != '/' || asprintf(&full, "%s%s", root, path) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	for (p = full + rl + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(full, 0755) == 0) {
			if (!*created && !(*created = strdup(full + rl))) {
				*p = c;
				break;
			}
		} else if (errno != EEXIST) {
			int r = -errno;

			host_cgroup_remove(root, full + rl, *created);
			free(ptr_steal(created));
			return error_set_errno(err, r, "linux.cgroupsPath: cannot create %s", full);
		}
		*p = c;
		if (!c)
			return 0;
	}
	host_cgroup_remove(root, path, *created);
	free(ptr_steal(created));
	return error_set(err, -ENOMEM, "out of memory");
}

int host_cgroup_enter(const char *root, const char *path, pid_t pid)
{
	_cleanup_free_ char *procs = NULL;
	_cleanup_close_ int fd = -1;
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);

	if (asprintf(&procs, "%s%s/cgroup.procs", root, path) < 0)
		return -ENOMEM;
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)len) != len)
		return -errno;
	return 0;
}
