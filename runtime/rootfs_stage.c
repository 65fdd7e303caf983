/*
 * The host side of a share of single files (see rootfs.h). The guest is hostile: sharing a
 * file's parent directory would hand its kernel the whole directory (all of /etc for a bound
 * /etc/resolv.conf, writable if that file is). So each files share is a small tmpfs of the
 * monitor's own mount namespace holding exactly its files, each a bind mount of the host
 * file (remounted read-only when the mount is ro), the tmpfs itself then read-only: the
 * guest can write through a read-write file and nothing else. Nothing appears in the host's
 * mount table; the empty directory left in the state directory goes with it at delete.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "rootfs.h"

#define STAGE_TMPFS_OPTS "size=16k,nr_inodes=64,mode=0755"

/* The flags a read-only bind remount must keep from the source's mount. */
static unsigned long kept_flags(const char *path)
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

static int stage_file(const char *dir, const struct rootfs_file *f, struct error *err)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, f->name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return error_set_errno(err, -errno, "bind mount of %s: cannot create %s", f->host,
				       path);
	close(fd);
	if (mount(f->host, path, NULL, MS_BIND, NULL) < 0)
		return error_set_errno(err, -errno, "bind mount of %s", f->host);
	if (f->readonly &&
	    mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(path), NULL) < 0)
		return error_set_errno(err, -errno, "read-only bind mount of %s", f->host);
	return 0;
}

static int stage_share(const struct rootfs_share *s, struct error *err)
{
	int r;

	if (mkdir(s->path, 0755) < 0 && errno != EEXIST)
		return error_set_errno(err, -errno, "cannot create %s", s->path);
	if (mount("stratus-files", s->path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  STAGE_TMPFS_OPTS) < 0)
		return error_set_errno(err, -errno, "cannot mount a tmpfs on %s", s->path);
	for (uint32_t i = 0; i < s->n_files; i++) {
		r = stage_file(s->path, &s->files[i], err);
		if (r < 0)
			return r;
	}
	if (mount("stratus-files", s->path, "tmpfs",
		  MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, STAGE_TMPFS_OPTS) < 0)
		return error_set_errno(err, -errno, "cannot make %s read-only", s->path);
	return 0;
}

int rootfs_stage_files(const struct rootfs *rootfs, struct error *err)
{
	bool any = false;
	int r;

	for (uint32_t i = 0; i < rootfs->n_shares; i++)
		any = any || rootfs->shares[i].n_files;
	if (!any)
		return 0;
	if (unshare(CLONE_NEWNS) < 0)
		return error_set_errno(err, -errno, "bind mounts of files: unshare(CLONE_NEWNS)");
	/*
	 * Slave, not private: nothing mounted here propagates to the host, while the host's
	 * unmounts still reach this namespace, so the monitor never keeps a host filesystem
	 * busy that the host has unmounted.
	 */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return error_set_errno(err, -errno, "bind mounts of files: slave propagation");
	for (uint32_t i = 0; i < rootfs->n_shares; i++) {
		if (!rootfs->shares[i].n_files)
			continue;
		r = stage_share(&rootfs->shares[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}
