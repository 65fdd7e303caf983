/*
 * The host's cgroup hierarchies (host_cgroup.h): every "cgroup" (v1) and "cgroup2" mount in
 * mountinfo, each hierarchy once, and our own cgroup in each from /proc/self/cgroup, made
 * relative to the mount's root. A v1 mount's controllers are its super options
 * ("rw,cpu,cpuacct", "rw,name=systemd"); the /proc/self/cgroup line whose every controller is
 * among them is its line ("2:cpu,cpuacct:/x"), the "0::" line is cgroup v2's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "host_cgroup.h"
#include "mountinfo.h"

#define MOUNTINFO_FIELDS_MAX 64

/* Is every comma-separated item of list one of set's? */
static bool all_in(const char *list, const char *set)
{
	_cleanup_free_ char *copy = strdup(list);
	char *tok, *save = NULL;

	if (!copy || !*list)
		return false;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(tok);
		const char *p = set;
		bool found = false;

		while (p && !found) {
			found = !strncmp(p, tok, n) && (p[n] == ',' || !p[n]);
			p = strchr(p, ',');
			p = p ? p + 1 : NULL;
		}
		if (!found)
			return false;
	}
	return true;
}

static void hierarchy_free(struct host_cgroup_hierarchy *h)
{
	free(h->mount);
	free(h->controllers);
	free(h->own);
}

void host_cgroup_layout_free(struct host_cgroup_layout *l)
{
	for (size_t i = 0; i < l->n; i++)
		hierarchy_free(&l->h[i]);
	free(l->h);
	memset(l, 0, sizeof(*l));
}

/*
 * The self_cgroup line of a hierarchy: "0::" for v2, else the one whose controllers are all
 * in super (the mount's super options). *ctrls and *path point into line.
 */
static bool self_line_matches(char *line, bool v2, const char *super, char **ctrls, char **path)
{
	char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

	if (!c2)
		return false;
	*c1 = *c2 = '\0';
	*ctrls = c1 + 1;
	*path = c2 + 1;
	if (v2)
		return !strcmp(line, "0") && !**ctrls;
	return **ctrls && all_in(*ctrls, super);
}

/* Our own cgroup in h (from self_cgroup) below the mount's root; h->own stays NULL if none. */
static int find_own(struct host_cgroup_hierarchy *h, const char *self_cgroup, const char *root,
		    const char *super)
{
	_cleanup_free_ char *line = NULL;
	FILE *f = fopen(self_cgroup, "re");
	size_t cap = 0, rl = strcmp(root, "/") ? strlen(root) : 0;
	ssize_t n;
	int r = 0;

	if (!f)
		return 0; /* unknown: only relative paths need it */
	while ((n = getline(&line, &cap, f)) > 0) {
		char *ctrls, *path;

		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (!self_line_matches(line, h->v2, super, &ctrls, &path))
			continue;
		if (!h->v2 && !(h->controllers = strdup(ctrls)))
			r = -ENOMEM;
		/* below the mount: the path without the mount's root, if it is below it */
		if (r == 0 && path[0] == '/' && !strncmp(path, root, rl) &&
		    (path[rl] == '/' || !path[rl]) &&
		    !(h->own = strdup(path[rl] ? path + rl : "/")))
			r = -ENOMEM;
		break;
	}
	fclose(f);
	return r;
}

/* One mountinfo line's cgroup mount, if it is one and its hierarchy is new, appended to l. */
static int add_mount(struct host_cgroup_layout *l, char *line, const char *self_cgroup, char *seen,
		     size_t seen_len)
{
	char *f[MOUNTINFO_FIELDS_MAX], *save = NULL, *tok, key[48];
	struct host_cgroup_hierarchy *h, *grown;
	size_t n = 0, sep = 0;
	int r;

	for (tok = strtok_r(line, " \n", &save); tok && n < ARRAY_SIZE(f);
	     tok = strtok_r(NULL, " \n", &save)) {
		if (!sep && n >= 6 && !strcmp(tok, "-"))
			sep = n;
		f[n++] = tok;
	}
	/* id parent maj:min root mountpoint options [optional...] - fstype source super */
	if (!sep || n < sep + 4 || (strcmp(f[sep + 1], "cgroup") && strcmp(f[sep + 1], "cgroup2")))
		return 0;
	/* a hierarchy mounted twice has one device number: the first mount serves */
	snprintf(key, sizeof(key), "|%s|", f[2]);
	if (strstr(seen, key))
		return 0;
	if (strlen(seen) + strlen(key) < seen_len)
		strcat(seen, key);
	grown = realloc(l->h, (l->n + 1) * sizeof(*l->h));
	if (!grown)
		return -ENOMEM;
	l->h = grown;
	h = &l->h[l->n];
	memset(h, 0, sizeof(*h));
	mountinfo_unescape(f[3]);
	mountinfo_unescape(f[4]);
	h->v2 = !strcmp(f[sep + 1], "cgroup2");
	h->cpuset = !h->v2 && all_in("cpuset", f[sep + 3]);
	h->mount = strdup(f[4]);
	r = h->mount ? find_own(h, self_cgroup, f[3], f[sep + 3]) : -ENOMEM;
	/* no line of ours names it: its super options, less rw/ro, say what it is */
	if (r == 0 && !h->controllers) {
		const char *super = f[sep + 3];

		if (!strncmp(super, "rw,", 3) || !strncmp(super, "ro,", 3))
			super += 3;
		if (!(h->controllers = strdup(h->v2 ? "" : super)))
			r = -ENOMEM;
	}
	if (r < 0) {
		hierarchy_free(h);
		return r;
	}
	l->n++;
	return 0;
}

int host_cgroup_layout_load(const char *mountinfo, const char *self_cgroup,
			    struct host_cgroup_layout *out, struct error *err)
{
	_cleanup_free_ char *line = NULL, *seen = NULL;
	bool v1 = false;
	size_t cap = 0, seen_len = 4096;
	FILE *f;
	int r = 0;

	memset(out, 0, sizeof(*out));
	f = fopen(mountinfo, "re");
	if (!f)
		return error_set_errno(err, -errno, "cannot read %s", mountinfo);
	seen = calloc(1, seen_len);
	while (seen && r == 0 && getline(&line, &cap, f) > 0)
		r = add_mount(out, line, self_cgroup, seen, seen_len);
	fclose(f);
	if (!seen || r < 0) {
		host_cgroup_layout_free(out);
		return error_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < out->n; i++)
		v1 = v1 || !out->h[i].v2;
	out->unified = out->n && !v1;
	return 0;
}
