/*
 * The container's filesystem, set up by its init's child process in its own mount namespace
 * (so a failure leaves nothing behind: the namespace dies with the child). In order:
 * / becomes private, the rootfs is mounted on the container's directory (virtio-fs tag, block
 * device or, for native tests, a bind-mounted directory), then CREATE's mounts with their
 * options parsed as runc parses them (flags for mount(2), propagation, the rest as the
 * filesystem's data), a minimal /dev (and /dev/console for a terminal), pivot_root with the
 * old root detached, masked and
 * read-only paths, and root.readonly last.
 *
 * The rootfs is the container's: a hostile image may hold symlinks such as /proc -> /. Every
 * mount target is therefore resolved inside the rootfs with openat2(RESOLVE_IN_ROOT), created
 * there one component at a time, and mounted through its /proc/self/fd magic link, so no
 * symlink can send a mount outside the rootfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent_internal.h"

static const struct {
	const char *name;
	bool clear;
	unsigned long flag;
} mount_flags[] = {
	{ "defaults", false, 0 },
	{ "ro", false, MS_RDONLY },
	{ "rw", true, MS_RDONLY },
	{ "nosuid", false, MS_NOSUID },
	{ "suid", true, MS_NOSUID },
	{ "nodev", false, MS_NODEV },
	{ "dev", true, MS_NODEV },
	{ "noexec", false, MS_NOEXEC },
	{ "exec", true, MS_NOEXEC },
	{ "sync", false, MS_SYNCHRONOUS },
	{ "async", true, MS_SYNCHRONOUS },
	{ "dirsync", false, MS_DIRSYNC },
	{ "remount", false, MS_REMOUNT },
	{ "mand", false, MS_MANDLOCK },
	{ "nomand", true, MS_MANDLOCK },
	{ "atime", true, MS_NOATIME },
	{ "noatime", false, MS_NOATIME },
	{ "diratime", true, MS_NODIRATIME },
	{ "nodiratime", false, MS_NODIRATIME },
	{ "relatime", false, MS_RELATIME },
	{ "norelatime", true, MS_RELATIME },
	{ "strictatime", false, MS_STRICTATIME },
	{ "nostrictatime", true, MS_STRICTATIME },
};

static const struct {
	const char *name;
	unsigned long flags;
} propagations[] = {
	{ "private", MS_PRIVATE },	 { "rprivate", MS_PRIVATE | MS_REC },
	{ "shared", MS_SHARED },	 { "rshared", MS_SHARED | MS_REC },
	{ "slave", MS_SLAVE },		 { "rslave", MS_SLAVE | MS_REC },
	{ "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

static int data_append(char **data, const char *opt)
{
	size_t old = *data ? strlen(*data) : 0;
	char *d = realloc(*data, old + strlen(opt) + 2);

	if (!d)
		return -ENOMEM;
	if (old)
		d[old++] = ',';
	strcpy(d + old, opt);
	*data = d;
	return 0;
}

/* One option into out: a flag, a propagation, bind/rbind, or the filesystem's data. */
static int mount_option(const char *opt, struct mount_spec *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(mount_flags); i++) {
		if (strcmp(mount_flags[i].name, opt))
			continue;
		if (mount_flags[i].clear)
			out->flags &= ~mount_flags[i].flag;
		else
			out->flags |= mount_flags[i].flag;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(propagations); i++) {
		if (!strcmp(propagations[i].name, opt)) {
			out->propagation = propagations[i].flags;
			return 0;
		}
	}
	if (!strcmp(opt, "bind") || !strcmp(opt, "rbind")) {
		out->bind = true;
		out->flags |= MS_BIND | (opt[0] == 'r' ? MS_REC : 0);
		return 0;
	}
	return data_append(&out->data, opt);
}

int mount_parse(const struct agent_mount *m, struct mount_spec *out, char *err, size_t err_len)
{
	memset(out, 0, sizeof(*out));
	out->source = m->source;
	out->target = m->target;
	out->fstype = m->fstype;
	if (m->target[0] != '/') {
		snprintf(err, err_len, "mounts: destination %.200s: must be absolute", m->target);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->options.n; i++)
		if (mount_option(m->options.v[i], out) < 0)
			return -ENOMEM;
	if (!strcmp(m->fstype, "bind"))
		out->bind = true, out->flags |= MS_BIND;
	/* A bind mount takes its flags only from a remount after it. */
	if (out->bind && (out->flags & ~(MS_BIND | MS_REC | MS_REMOUNT)))
		out->ro_remount = true;
	if (!out->bind && !m->fstype[0]) {
		snprintf(err, err_len, "mounts: %.200s: type is empty", m->target);
		return -EINVAL;
	}
	return 0;
}

void mount_spec_free(struct mount_spec *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].data);
	free(m);
}

static int open_in_root(int root, const char *path, int flags)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };

	return (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
}

/* mkdir -p path inside root (the last component a file if is_file): an O_PATH fd of it. */
static int create_in_root(int root, const char *path, bool is_file)
{
	char buf[AGENT_MAX_PATH + 1];
	size_t len = strlen(path);
	int fd = open_in_root(root, path, O_PATH);

	if (fd >= 0 || errno != ENOENT || len > AGENT_MAX_PATH)
		return fd;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		bool last = i == len;
		int parent, r;
		char *name;

		if (!last && buf[i] != '/')
			continue;
		buf[i] = '\0';
		fd = open_in_root(root, buf, O_PATH);
		if (fd < 0 && errno == ENOENT) {
			name = strrchr(buf, '/');
			*name = '\0';
			parent = open_in_root(root, buf[0] ? buf : "/", O_PATH | O_DIRECTORY);
			*name = '/';
			if (parent < 0)
				return -1;
			if (last && is_file)
				r = mknodat(parent, name + 1, S_IFREG | 0644, 0);
			else
				r = mkdirat(parent, name + 1, 0755);
			close(parent);
			if (r < 0 && errno != EEXIST)
				return -1;
			fd = open_in_root(root, buf, O_PATH);
		}
		if (fd < 0)
			return -1;
		if (!last) {
			close(fd);
			buf[i] = '/';
		}
	}
	return fd;
}

static int mount_fail(char *err, size_t err_len, const char *what, const char *target)
{
	int e = errno ? errno : EIO;

	snprintf(err, err_len, "mount %.200s on %.200s: %s", what, target, strerror(e));
	return -e;
}

static void fd_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* The flags a bind remount must keep: the kernel refuses to drop locked ones. */
static unsigned long vfs_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (statvfs(path, &sv) < 0)
		return 0;
	f |= sv.f_flag & ST_NOSUID ? MS_NOSUID : 0;
	f |= sv.f_flag & ST_NODEV ? MS_NODEV : 0;
	f |= sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0;
	f |= sv.f_flag & ST_NOATIME ? MS_NOATIME : 0;
	f |= sv.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0;
	f |= sv.f_flag & ST_RELATIME ? MS_RELATIME : 0;
	return f;
}

/* One mount, its target resolved inside root (an fd of the rootfs directory). */
static int mount_one(int root, const struct mount_spec *m, char *err, size_t err_len)
{
	const char *what = m->bind ? m->source : m->fstype;
	const char *fstype = !strcmp(m->fstype, "cgroup") ? "cgroup2" : m->fstype;
	struct stat st;
	char path[64];
	bool is_file = m->bind && stat(m->source, &st) == 0 && !S_ISDIR(st.st_mode);
	int fd = create_in_root(root, m->target, is_file), r;

	errno = fd < 0 ? errno : 0;
	if (fd < 0)
		return mount_fail(err, err_len, what, m->target);
	fd_path(fd, path, sizeof(path));
	if (m->bind)
		r = mount(m->source, path, NULL, m->flags & (MS_BIND | MS_REC), NULL);
	else
		r = mount(m->source, path, fstype, m->flags, m->data);
	close(fd);
	agent_trace("mount %s", m->target);
	if (r < 0)
		return mount_fail(err, err_len, what, m->target);
	if (!m->ro_remount && !m->propagation)
		return 0;
	/* The fd was the mountpoint: the new mount is on top of it, so look it up again. */
	fd = open_in_root(root, m->target, O_PATH);
	if (fd < 0)
		return mount_fail(err, err_len, what, m->target);
	fd_path(fd, path, sizeof(path));
	r = 0;
	if (m->ro_remount)
		r = mount(NULL, path, NULL,
			  MS_BIND | MS_REMOUNT | vfs_flags(path) |
				  (m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT)),
			  NULL);
	if (r == 0 && m->propagation)
		r = mount(NULL, path, NULL, m->propagation, NULL);
	close(fd);
	return r < 0 ? mount_fail(err, err_len, what, m->target) : 0;
}

int mount_rootfs(const struct agent_create *req, const char *dir, char *err, size_t err_len)
{
	struct mount_spec opts = { 0 };
	char *copy, *save = NULL;
	int r;

	/*
	 * Nothing mounted here may propagate back to the agent. A root that is no mount point
	 * (a chroot) refuses this with EINVAL; the rootfs mount itself is made private below.
	 */
	errno = 0;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 && errno != EINVAL)
		return mount_fail(err, err_len, "private propagation", "/");
	switch (req->rootfs_kind) {
	case AGENT_ROOTFS_VIRTIOFS:
		r = mount(req->rootfs_source, dir, "virtiofs", 0, NULL);
		break;
	case AGENT_ROOTFS_BLOCK:
		copy = strdup(req->rootfs_options);
		if (!copy)
			return -ENOMEM;
		for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
			mount_option(o, &opts);
		free(copy);
		r = mount(req->rootfs_source, dir, req->rootfs_fstype, opts.flags, opts.data);
		free(opts.data);
		break;
	default: /* AGENT_ROOTFS_DIR, checked by the caller */
		r = mount(req->rootfs_source, dir, NULL, MS_BIND | MS_REC, NULL);
		break;
	}
	if (r < 0)
		return mount_fail(err, err_len, req->rootfs_source, "the container's root");
	if (mount(NULL, dir, NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return mount_fail(err, err_len, "private propagation", "the container's root");
	return 0;
}

/*
 * One default device in the container's /dev (dir): a node of its own, as runc makes them,
 * with the mode and number of the agent's; bind-mounted from the agent's /dev where a node
 * cannot be made or would not work (a user namespace: EPERM; a /dev that is no tmpfs, or is
 * nodev). A node costs one
 * mknodat and one fchmodat where a bind mount costs a file, a lookup and a mount: in this
 * slow guest kernel that is ~30 ms per device.
 */
static int dev_one(int root, int dir, bool nodes, const char *name, char *err, size_t err_len)
{
	struct mount_spec m = { .flags = MS_BIND, .bind = true, .fstype = "bind" };
	char source[32], target[32];
	struct stat st, ours;

	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
		return 0; /* the config's /dev has it */
	snprintf(source, sizeof(source), "/dev/%s", name);
	snprintf(target, sizeof(target), "/dev/%s", name);
	if (nodes && stat(source, &ours) == 0 && S_ISCHR(ours.st_mode) &&
	    mknodat(dir, name, S_IFCHR | (ours.st_mode & 0777), ours.st_rdev) == 0) {
		/* mknod took the umask off: the agent's mode, as a bind would show it */
		if (fchmodat(dir, name, ours.st_mode & 0777, 0) == 0)
			return 0;
		return mount_fail(err, err_len, source, target);
	}
	m.source = source;
	m.target = target;
	return mount_one(root, &m, err, err_len);
}

/* The default devices and /dev's links, after the config's mounts and linux.devices. */
static int dev_populate(int root, char *err, size_t err_len)
{
	static const char *devices[] = { "null", "zero", "full", "random", "urandom", "tty" };
	static const char *links[][2] = {
		{ "/dev/ptmx", "pts/ptmx" },	      { "/dev/fd", "/proc/self/fd" },
		{ "/dev/stdin", "/proc/self/fd/0" },  { "/dev/stdout", "/proc/self/fd/1" },
		{ "/dev/stderr", "/proc/self/fd/2" }, { "/dev/core", "/proc/kcore" },
	};
	struct statfs sf;
	bool nodes;
	int dir = create_in_root(root, "/dev", false), r = 0;

	if (dir < 0)
		return mount_fail(err, err_len, "devices", "/dev");
	/* Nodes only in a tmpfs /dev (ours, or the config's): never on the rootfs's own disk. */
	nodes = fstatfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC && !(sf.f_flags & ST_NODEV);
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(devices); i++)
		r = dev_one(root, dir, nodes, devices[i], err, err_len);
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][1], dir, links[i][0] + 5) < 0 && errno != EEXIST)
			r = mount_fail(err, err_len, links[i][1], links[i][0]);
	close(dir);
	return r;
}

static bool has_target(const struct mount_spec *m, size_t n, const char *target)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(m[i].target, target))
			return true;
	return false;
}

int mount_create_in_root(int root, const char *path, bool is_file)
{
	return create_in_root(root, path, is_file);
}

int mount_all(const char *root_dir, const struct mount_spec *m, size_t n,
	      const struct container_spec *cs, bool console, char *err, size_t err_len)
{
	static const struct mount_spec dev_mounts[] = {
		{ "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, 0, false, false,
		  "mode=755,size=65536k" },
		{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, 0, false, false,
		  "newinstance,ptmxmode=0666,mode=0620" },
		{ "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, false, false,
		  "mode=1777,size=65536k" },
	};
	int root = open(root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (root < 0)
		return mount_fail(err, err_len, "rootfs", root_dir);
	/* No /dev in the config: a minimal one of our own, with its pts and shm. */
	if (!has_target(m, n, "/dev"))
		for (size_t i = 0; r == 0 && i < ARRAY_SIZE(dev_mounts); i++)
			if (i == 0 || !has_target(m, n, dev_mounts[i].target))
				r = mount_one(root, &dev_mounts[i], err, err_len);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = mount_one(root, &m[i], err, err_len);
	/* linux.devices first: a listed node wins over our default of the same name. */
	if (r == 0)
		r = devices_create(root, cs, err, err_len);
	agent_trace("devices");
	if (r == 0)
		r = dev_populate(root, err, err_len);
	agent_trace("default devices");
	/*
	 * A terminal is also the container's /dev/console, as runc does it: the mount point
	 * now, the pty bound on it once the container's devpts gave one (agent_pty.c).
	 */
	if (r == 0 && console) {
		int fd = create_in_root(root, "/dev/console", true);

		if (fd < 0)
			r = mount_fail(err, err_len, "process.terminal", "/dev/console");
		else
			close(fd);
	}
	close(root);
	return r;
}

static int mask_paths(char **paths, char *err, size_t err_len)
{
	for (char **p = paths; p && *p; p++) {
		struct stat st;
		int r;

		if (stat(*p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return mount_fail(err, err_len, "linux.maskedPaths", *p);
		}
		if (S_ISDIR(st.st_mode))
			r = mount("tmpfs", *p, "tmpfs", MS_RDONLY, "size=0");
		else
			r = mount("/dev/null", *p, NULL, MS_BIND, NULL);
		if (r < 0)
			return mount_fail(err, err_len, "linux.maskedPaths", *p);
	}
	return 0;
}

static int readonly_paths(char **paths, char *err, size_t err_len)
{
	for (char **p = paths; p && *p; p++) {
		if (mount(*p, *p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return mount_fail(err, err_len, "linux.readonlyPaths", *p);
		}
		if (mount(NULL, *p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | vfs_flags(*p), NULL) <
		    0)
			return mount_fail(err, err_len, "linux.readonlyPaths", *p);
	}
	return 0;
}

int mount_pivot(const char *root, const struct container_spec *cs, char *err, size_t err_len)
{
	int r;

	errno = 0;
	if (chdir(root) < 0)
		return mount_fail(err, err_len, "pivot_root", root);
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		/* The old root is stacked on "/": detach it; the container sees only its rootfs. */
		if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
			return mount_fail(err, err_len, "detach the old root", "/");
	} else if (errno == EINVAL) {
		/*
		 * The agent's root is the initramfs, which pivot_root cannot move: move the
		 * rootfs over it and chroot, as runc --no-pivot does. The container has no
		 * CAP_SYS_CHROOT unless its config grants it.
		 */
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
			return mount_fail(err, err_len, "move the rootfs to /", root);
	} else {
		return mount_fail(err, err_len, "pivot_root", root);
	}
	if (cs->rootfs_propagation != (MS_PRIVATE | MS_REC) &&
	    mount(NULL, "/", NULL, cs->rootfs_propagation, NULL) < 0)
		return mount_fail(err, err_len, "linux.rootfsPropagation", "/");
	agent_trace("pivot_root");
	if ((r = mask_paths(cs->masked, err, err_len)) < 0)
		return r;
	agent_trace("masked paths");
	if ((r = readonly_paths(cs->readonly, err, err_len)) < 0)
		return r;
	agent_trace("read-only paths");
	if (cs->root_readonly &&
	    mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | vfs_flags("/"), NULL) < 0)
		return mount_fail(err, err_len, "root.readonly", "/");
	return 0;
}
