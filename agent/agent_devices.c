/*
 * linux.devices (runtime-spec config-linux.md "Devices"): the nodes a container gets in its
 * /dev besides the defaults. Parsed with CREATE's config (every error names its JSON path),
 * created in the container's child after its mounts and before the default devices, so a
 * listed /dev/null wins over ours: mknod with the type, major and minor, then fileMode, uid
 * and gid set exactly (umask does not apply). Paths must be under /dev and are resolved inside
 * the rootfs (RESOLVE_IN_ROOT), missing directories created. Where mknod is not allowed (a
 * user namespace) the guest's node of the same path is bind-mounted instead, as runc does.
 *
 * The device cgroup (linux.resources.devices) is not enforced: cgroup v2 does it with a BPF
 * program, and the guest kernel has no CONFIG_CGROUP_BPF. That is no hole in the sandbox: the
 * guest kernel is the isolation boundary, and the VM has only the devices the VMM gives it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "agent_internal.h"

#define DEVICES_MAX 256

static int dev_fail(char *err, size_t err_len, size_t i, const char *what)
{
	snprintf(err, err_len, "config.json: linux.devices[%zu]: %s", i, what);
	return -EINVAL;
}

/* An integer field in [0, max]: 0, 1 if absent, -1 if bad. */
static int dev_number(yajl_val d, const char *key, uint64_t max, uint32_t *out)
{
	const char *path[] = { key, NULL };
	yajl_val v = yajl_tree_get(d, path, yajl_t_any);

	if (!v)
		return 1;
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 || (uint64_t)YAJL_GET_INTEGER(v) > max)
		return -1;
	*out = (uint32_t)YAJL_GET_INTEGER(v);
	return 0;
}

/* Absolute, below /dev, no "." or ".." components, no "//". */
static bool dev_path_ok(const char *p)
{
	if (strncmp(p, "/dev/", 5) || !p[5] || strlen(p) > AGENT_MAX_PATH)
		return false;
	for (const char *c = p + 4; c; c = strchr(c + 1, '/')) {
		const char *next = c + 1;
		size_t len = strcspn(next, "/");

		if (len == 0 || (len == 1 && next[0] == '.') ||
		    (len == 2 && next[0] == '.' && next[1] == '.'))
			return false;
	}
	return true;
}

static int dev_parse_one(yajl_val d, size_t i, struct device_spec *out, char *err, size_t err_len)
{
	static const char *path_path[] = { "path", NULL }, *type_path[] = { "type", NULL };
	yajl_val p = yajl_tree_get(d, path_path, yajl_t_any);
	yajl_val t = yajl_tree_get(d, type_path, yajl_t_any);
	uint32_t mode = 0666;
	int r;

	if (!YAJL_IS_OBJECT(d))
		return dev_fail(err, err_len, i, "must be an object");
	if (!p || !YAJL_IS_STRING(p) || !dev_path_ok(p->u.string))
		return dev_fail(err, err_len, i,
				"path: must be a normalized absolute path under /dev/");
	if (!t || !YAJL_IS_STRING(t) || strlen(t->u.string) != 1 || !strchr("cbup", t->u.string[0]))
		return dev_fail(err, err_len, i, "type: must be c, b, u or p");
	switch (t->u.string[0]) {
	case 'b':
		out->type = S_IFBLK;
		break;
	case 'p':
		out->type = S_IFIFO;
		break;
	default:
		out->type = S_IFCHR; /* c and u (unbuffered) alike */
	}
	/* Linux device numbers: 12-bit major, 20-bit minor (dev_t's kernel side). */
	if ((r = dev_number(d, "major", 4095, &out->major)) < 0 || (r == 1 && out->type != S_IFIFO))
		return dev_fail(err, err_len, i, "major: must be 0 to 4095 (and given unless p)");
	if ((r = dev_number(d, "minor", 1048575, &out->minor)) < 0 ||
	    (r == 1 && out->type != S_IFIFO))
		return dev_fail(err, err_len, i,
				"minor: must be 0 to 1048575 (and given unless p)");
	if (dev_number(d, "fileMode", 07777, &mode) < 0)
		return dev_fail(err, err_len, i, "fileMode: must be 0 to 07777");
	if (dev_number(d, "uid", UINT32_MAX - 1, &out->uid) < 0 ||
	    dev_number(d, "gid", UINT32_MAX - 1, &out->gid) < 0)
		return dev_fail(err, err_len, i, "uid, gid: must be 0 to 4294967294");
	out->mode = mode;
	out->path = strdup(p->u.string);
	return out->path ? 0 : -ENOMEM;
}

int devices_parse(const void *yajl_linux, struct container_spec *cs, char *err, size_t err_len)
{
	static const char *dev_path[] = { "devices", NULL };
	yajl_val lx = (yajl_val)yajl_linux;
	yajl_val v = lx ? yajl_tree_get(lx, dev_path, yajl_t_any) : NULL;

	if (!v)
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > DEVICES_MAX) {
		snprintf(err, err_len, "config.json: linux.devices: must be an array of at most %d",
			 DEVICES_MAX);
		return -EINVAL;
	}
	cs->devices = calloc(v->u.array.len ? v->u.array.len : 1, sizeof(*cs->devices));
	if (!cs->devices)
		return -ENOMEM;
	for (size_t i = 0; i < v->u.array.len; i++) {
		int r = dev_parse_one(v->u.array.values[i], i, &cs->devices[i], err, err_len);

		if (r < 0)
			return r;
		cs->ndevices++;
	}
	return 0;
}

void devices_free(struct container_spec *cs)
{
	for (size_t i = 0; i < cs->ndevices; i++)
		free(cs->devices[i].path);
	free(cs->devices);
	cs->devices = NULL;
	cs->ndevices = 0;
}

static int dev_create_one(int root, const struct device_spec *d, char *err, size_t err_len)
{
	char dir[AGENT_MAX_PATH + 1];
	const char *name = strrchr(d->path, '/') + 1;
	int parent, r;

	snprintf(dir, sizeof(dir), "%.*s", (int)(name - 1 - d->path), d->path);
	parent = mount_create_in_root(root, dir, false);
	if (parent < 0)
		goto fail;
	r = mknodat(parent, name, d->type | (d->mode & 0777),
		    d->type == S_IFIFO ? 0 : makedev(d->major, d->minor));
	if (r < 0 && errno == EEXIST) {
		close(parent);
		return 0; /* a mount of the config's has it: leave it */
	}
	if (r < 0 && errno == EPERM && d->type != S_IFIFO) {
		/* No mknod here (a user namespace): the guest's own node, bind-mounted. */
		int fd = mount_create_in_root(root, d->path, true);
		char target[64];

		if (fd < 0)
			goto fail_parent;
		snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
		r = mount(d->path, target, NULL, MS_BIND, NULL);
		close(fd);
		close(parent);
		if (r < 0)
			goto fail;
		return 0;
	}
	if (r < 0 || fchmodat(parent, name, d->mode, 0) < 0 ||
	    fchownat(parent, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail_parent;
	close(parent);
	return 0;
fail_parent:
	r = errno;
	close(parent);
	errno = r;
fail:
	r = errno ? errno : EIO;
	snprintf(err, err_len, "linux.devices: create %.200s: %s", d->path, strerror(r));
	return -r;
}

int devices_create(int root, const struct container_spec *cs, char *err, size_t err_len)
{
	for (size_t i = 0; i < cs->ndevices; i++) {
		int r = dev_create_one(root, &cs->devices[i], err, err_len);

		if (r < 0)
			return r;
	}
	return 0;
}
