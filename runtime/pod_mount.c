/*
 * The host mounts of pods (see pod.h), all in the caller's mount namespace: the sandbox's pod
 * share (<state dir>/pod, a bind mount of itself made MS_SHARED, so mounts made below it later
 * also reach a monitor that has a mount namespace of its own: its copy is a slave of ours) and
 * each member's directory below it. Removal never walks a tree that still has a mount in it:
 * a member's rootfs is the bundle's own directory, bind-mounted, and a recursive delete that
 * crossed into it would delete the user's files. So everything below a path is unmounted
 * first (lazily: the guest may still hold files open), then /proc/self/mountinfo must show
 * nothing left there before a directory is removed.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "mountinfo.h"
#include "pod.h"

static bool below(const char *mnt, const char *path, size_t len)
{
	return !strncmp(mnt, path, len) && (mnt[len] == '\0' || mnt[len] == '/');
}

/* The deepest mount point at or below path (malloc'd into *out), 1; 0 when none. */
static int deepest_below(const char *path, char **out)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	size_t len = strlen(path), best_len = 0;
	char *line = NULL;
	size_t cap = 0;

	*out = NULL;
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *mnt = NULL;

		/* id parent major:minor root MOUNT_POINT ... */
		if (sscanf(line, "%*s %*s %*s %*s %ms", &mnt) != 1)
			continue;
		mountinfo_unescape(mnt);
		if (below(mnt, path, len) && strlen(mnt) >= best_len) {
			free(*out);
			*out = mnt;
			best_len = strlen(mnt);
		} else {
			free(mnt);
		}
	}
	free(line);
	fclose(f);
	return *out ? 1 : 0;
}

int pod_unmount_below(const char *path)
{
	_cleanup_free_ char *real = realpath(path, NULL);

	if (!real)
		return errno == ENOENT ? 0 : -errno;
	/* deepest first; one that cannot be unmounted ends it (and is reported left) */
	for (int rounds = 0; rounds < 4096; rounds++) {
		_cleanup_free_ char *mnt = NULL;
		int r = deepest_below(real, &mnt);

		if (r <= 0)
			return r;
		if (umount2(mnt, MNT_DETACH) < 0)
			return 1;
	}
	return 1;
}

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	remove(path); /* keep going: remove what can be removed, the caller checks the top */
	return 0;
}

int pod_remove_tree(const char *path)
{
	int r = pod_unmount_below(path);

	if (r != 0)
		return r < 0 ? r : -EBUSY;
	if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return -errno;
	return access(path, F_OK) == 0 ? -ENOTEMPTY : 0;
}

int pod_share_create(const char *state_dir, char **path, struct error *err)
{
	_cleanup_free_ char *p = NULL;

	if (asprintf(&p, "%s/%s", state_dir, POD_SHARE_DIR) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	if (mkdir(p, 0711) < 0)
		return error_set_errno(err, -errno, "pod share: cannot create %s", p);
	if (mount(p, p, NULL, MS_BIND, NULL) < 0 || mount(NULL, p, NULL, MS_SHARED, NULL) < 0) {
		int r = -errno;

		umount2(p, MNT_DETACH);
		rmdir(p);
		return error_set_errno(err, r, "pod share: cannot make %s a shared mount", p);
	}
	*path = ptr_steal(&p);
	return 0;
}

int pod_share_remove(const char *state_dir)
{
	_cleanup_free_ char *p = NULL;

	if (asprintf(&p, "%s/%s", state_dir, POD_SHARE_DIR) < 0)
		return -ENOMEM;
	return pod_remove_tree(p);
}

/*
 * source bound recursively on target. Read-only (every mount of the tree, as the guest sees it
 * all through one read-only mount) before it is attached: a flag change does not propagate,
 * so a bind made read-only after it was mounted below the share (MS_SHARED) would have reached
 * the monitor's namespace, where the share's process serves it, still writable. A detached
 * clone (open_tree) made read-only (mount_setattr: that flag alone, nosuid/nodev/noexec kept)
 * is attached, and propagated, read-only (move_mount).
 */
static int bind_tree(const char *source, const char *target, bool ro)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
	_cleanup_close_ int fd = -1;

	if (!ro)
		return mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0 ? -errno : 0;
	fd = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (fd < 0)
		return -errno;
	if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
		return -errno;
	return move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0 ? -errno : 0;
}

/*
 * source bound on target, which is made first: a directory, or an empty file; read-only when
 * ro. The host enforces ro: the share's FUSE server knows a node by (dev, ino, mount), so one
 * member's read-only bind and another's read-write bind of the same directory are two nodes,
 * each allowed or refused by its own mount (docs/virtio-fs.md); the guest mounts it ro too.
 */
static int bind_one(const char *source, const char *target, bool dir, bool ro, const char *what,
		    struct error *err)
{
	int fd, r;

	if (dir) {
		if (mkdir(target, 0755) < 0)
			return error_set_errno(err, -errno, "%s: cannot create %s", what, target);
	} else {
		fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return error_set_errno(err, -errno, "%s: cannot create %s", what, target);
		close(fd);
	}
	r = bind_tree(source, target, ro);
	if (r == -ENOSYS)
		return error_set(err, r,
				 "%s: a read-only bind mount of %s in a pod needs Linux 5.12 "
				 "(mount_setattr)",
				 what, source);
	if (r < 0)
		return error_set_errno(err, r, "%s: cannot bind-mount %s%s", what, source,
				       ro ? " read-only" : "");
	return 0;
}

int pod_member_mount(const char *pod, const char *id, const char *root,
		     const struct pod_member_plan *plan, struct error *err)
{
	char dir[4200], target[4300], what[64];
	int r;

	if (snprintf(dir, sizeof(dir), "%s/%s", pod, id) >= (int)sizeof(dir))
		return error_set(err, -ENAMETOOLONG, "pod share: path too long");
	if (mkdir(dir, 0711) < 0)
		return error_set_errno(err, -errno, "pod share: cannot create %s", dir);
	snprintf(target, sizeof(target), "%s/%s", dir, POD_MEMBER_ROOTFS);
	r = bind_one(root, target, true, plan->root_readonly, "root.path", err);
	for (size_t i = 0; r == 0 && i < plan->n_binds; i++) {
		const struct pod_bind *b = &plan->binds[i];

		snprintf(target, sizeof(target), "%s/m%zu", dir, b->index);
		snprintf(what, sizeof(what), "mounts[%zu].source", b->index);
		r = bind_one(b->host, target, b->dir, b->ro, what, err);
	}
	if (r < 0)
		pod_member_unmount(pod, id);
	return r;
}

int pod_member_unmount(const char *pod, const char *id)
{
	char dir[4200];

	if (snprintf(dir, sizeof(dir), "%s/%s", pod, id) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	if (access(dir, F_OK) < 0)
		return 0;
	return pod_remove_tree(dir);
}
