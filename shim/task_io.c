/*
 * Host-side set-up of a task before libstratus creates its VM: the rootfs mounts containerd
 * sends in CreateTaskRequest (an overlay of the snapshot's layers with the overlayfs
 * snapshotter, a bind mount with native) performed on <bundle>/rootfs, and containerd's stdio
 * FIFOs opened for the monitor, which relays them for the container's life.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "task_internal.h"

struct mount_flag {
	const char *name;
	bool clear;
	unsigned long flag;
};

static const struct mount_flag mount_flags[] = {
	{ "async", true, MS_SYNCHRONOUS },
	{ "atime", true, MS_NOATIME },
	{ "bind", false, MS_BIND },
	{ "defaults", false, 0 },
	{ "dev", true, MS_NODEV },
	{ "diratime", true, MS_NODIRATIME },
	{ "exec", true, MS_NOEXEC },
	{ "noatime", false, MS_NOATIME },
	{ "nodev", false, MS_NODEV },
	{ "nodiratime", false, MS_NODIRATIME },
	{ "noexec", false, MS_NOEXEC },
	{ "nosuid", false, MS_NOSUID },
	{ "rbind", false, MS_BIND | MS_REC },
	{ "relatime", false, MS_RELATIME },
	{ "ro", false, MS_RDONLY },
	{ "rw", true, MS_RDONLY },
	{ "strictatime", false, MS_STRICTATIME },
	{ "suid", true, MS_NOSUID },
	{ "sync", false, MS_SYNCHRONOUS },
};

/* Options into mount(2) flags; the rest (lowerdir=..., upperdir=...) into data, comma-joined. */
static int mount_parse(const Containerd__Types__Mount *m, unsigned long *flags, char **data)
{
	size_t cap = 1;
	char *d;

	for (size_t i = 0; i < m->n_options; i++)
		cap += strlen(m->options[i]) + 1;
	d = calloc(1, cap);
	if (!d)
		return -ENOMEM;
	*flags = 0;
	for (size_t i = 0; i < m->n_options; i++) {
		const char *o = m->options[i];
		bool known = false;

		for (size_t j = 0; j < ARRAY_SIZE(mount_flags); j++) {
			if (strcmp(o, mount_flags[j].name))
				continue;
			if (mount_flags[j].clear)
				*flags &= ~mount_flags[j].flag;
			else
				*flags |= mount_flags[j].flag;
			known = true;
			break;
		}
		if (known)
			continue;
		if (d[0])
			strcat(d, ",");
		strcat(d, o);
	}
	*data = d;
	return 0;
}

static int mount_one(const Containerd__Types__Mount *m, size_t i, const char *target,
		     struct error *err)
{
	_cleanup_free_ char *data = NULL;
	unsigned long flags;
	const char *type = m->type && m->type[0] ? m->type : NULL;

	if (!m->source || !m->source[0])
		return error_set(err, -EINVAL, "rootfs[%zu].source: empty", i);
	if (mount_parse(m, &flags, &data) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	if (type && !strcmp(type, "bind"))
		flags |= MS_BIND;
	if (mount(m->source, target, flags & MS_BIND ? NULL : type, flags & ~MS_RDONLY,
		  data[0] ? data : NULL) < 0)
		return error_set_errno(err, -errno, "rootfs[%zu]: cannot mount %s (%s) on %s", i,
				       m->source, type ? type : "bind", target);
	/* A bind mount takes MS_RDONLY only on a remount. */
	if ((flags & MS_RDONLY) &&
	    mount(NULL, target, NULL, (flags & MS_BIND ? MS_BIND | MS_REMOUNT : MS_REMOUNT) | flags,
		  NULL) < 0) {
		int r = -errno;

		umount2(target, MNT_DETACH);
		return error_set_errno(err, r, "rootfs[%zu]: cannot make %s read-only", i, target);
	}
	return 0;
}

int task_rootfs_mount(Containerd__Types__Mount **mounts, size_t n, const char *target,
		      struct error *err)
{
	size_t done = 0;
	int r = 0;

	if (!n)
		return 0;
	if (mkdir(target, 0711) < 0 && errno != EEXIST)
		return error_set_errno(err, -errno, "rootfs: cannot create %s", target);
	for (; done < n; done++) {
		r = mount_one(mounts[done], done, target, err);
		if (r < 0)
			break;
	}
	if (r < 0) {
		while (done--)
			umount2(target, MNT_DETACH);
	}
	return r;
}

void task_rootfs_unmount(const char *target)
{
	/* Every layer we stacked; stops at the first EINVAL (target no longer a mount point). */
	for (int i = 0; i < 64; i++) {
		if (umount2(target, MNT_DETACH) < 0)
			break;
	}
}

static int open_output(const char *path, const char *field, int *fd, struct error *err)
{
	/* O_RDWR never blocks on a FIFO, even before containerd's reader opened it. */
	*fd = open(path[0] ? path : "/dev/null", (path[0] ? O_RDWR : O_WRONLY) | O_CLOEXEC);
	if (*fd < 0)
		return error_set_errno(err, -errno, "%s: cannot open %s", field, path);
	return 0;
}

int task_stdio_open(const char *in, const char *out, const char *errp, int fds[3], int *stdin_keep,
		    struct error *err)
{
	int r, flags;

	fds[0] = fds[1] = fds[2] = -1;
	*stdin_keep = -1;
	if (!in[0]) {
		fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	} else {
		/* The reader first (does not block), then our write end so EOF waits for CloseIO. */
		fds[0] = open(in, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fds[0] >= 0)
			*stdin_keep = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fds[0] >= 0 && *stdin_keep < 0) {
			r = -errno;
			goto fail_in;
		}
		flags = fds[0] >= 0 ? fcntl(fds[0], F_GETFL) : -1;
		if (flags >= 0)
			fcntl(fds[0], F_SETFL, flags & ~O_NONBLOCK);
	}
	if (fds[0] < 0) {
		r = -errno;
		goto fail_in;
	}
	r = open_output(out, "stdout", &fds[1], err);
	r = r ?: open_output(errp, "stderr", &fds[2], err);
	if (r < 0)
		goto fail;
	return 0;
fail_in:
	error_set_errno(err, r, "stdin: cannot open %s", in);
fail:
	for (int i = 0; i < 3; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
	if (*stdin_keep >= 0)
		close(*stdin_keep);
	*stdin_keep = -1;
	return r;
}
