/*
 * The interim block rootfs (see rootfs.h): measure root.path (nftw, without following
 * symlinks or crossing into other filesystems), make a sparse file big enough for it, and
 * fill it with `mkfs.ext4 -d`. Inode tables and the journal are written by mkfs on the host
 * (lazy_itable_init=0): left lazy, the guest kernel would zero them in the background, and
 * guest kernel code is slow on our PVM hosts. A read-only image has no journal.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent_proto.h"
#include "rootfs.h"

/* nftw has no context argument: the walk is single-threaded and short-lived. */
static uint64_t walk_bytes, walk_inodes;

static int walk_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)path;
	(void)type;
	(void)ftw;
	walk_bytes += (uint64_t)sb->st_blocks * 512;
	walk_inodes++;
	return 0;
}

uint64_t rootfs_image_size(uint64_t bytes, uint64_t inodes, bool readonly)
{
	/* ext4 metadata: block bitmaps, inode tables, directories; a quarter is plenty. */
	uint64_t size = bytes + bytes / 4 + inodes * 512 + (32ull << 20);

	if (!readonly)
		size += ROOTFS_RW_HEADROOM;
	return ALIGN_UP(size, 1ull << 20);
}

static int run_mkfs(const char *image, const char *tree, uint64_t inodes, bool readonly,
		    struct error *err)
{
	static const char *const mkfs_paths[] = { "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4",
						  "/usr/local/sbin/mkfs.ext4", NULL };
	_cleanup_close_ int out_fd = memfd_create("mkfs-output", MFD_CLOEXEC);
	char inode_arg[32], line[256];
	const char *mkfs = NULL;
	int status;
	pid_t pid;
	ssize_t n;

	for (unsigned int i = 0; mkfs_paths[i]; i++) {
		if (access(mkfs_paths[i], X_OK) == 0) {
			mkfs = mkfs_paths[i];
			break;
		}
	}
	if (!mkfs)
		return error_set(err, -ENOENT,
				 "rootfs: mkfs.ext4 not found (install e2fsprogs 1.43 or later)");
	snprintf(inode_arg, sizeof(inode_arg), "%llu", (unsigned long long)(inodes + 1024));
	pid = fork();
	if (pid < 0)
		return error_set_errno(err, -errno, "rootfs: fork");
	if (pid == 0) {
		int null_fd = open("/dev/null", O_RDONLY);

		if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
		    dup2(out_fd, 2) < 0)
			_exit(127);
		execl(mkfs, "mkfs.ext4", "-q", "-F", "-N", inode_arg, "-O",
		      readonly ? "^has_journal" : "has_journal", "-E",
		      "lazy_itable_init=0,lazy_journal_init=0", "-L", "rootfs", "-d", tree, image,
		      (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return error_set_errno(err, -errno, "rootfs: waitpid");
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	n = pread(out_fd, line, sizeof(line) - 1, 0);
	line[n > 0 ? n : 0] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	return error_set(err, -EIO, "rootfs: mkfs.ext4 -d %s failed%s%s", tree, line[0] ? ": " : "",
			 line);
}

int rootfs_prepare(const struct oci_spec *spec, const char *state_dir, struct rootfs *out,
		   struct error *err)
{
	_cleanup_free_ char *image = NULL;
	_cleanup_close_ int fd = -1;
	uint64_t size;
	int r;

	memset(out, 0, sizeof(*out));
	if (asprintf(&image, "%s/%s", state_dir, ROOTFS_IMAGE) < 0)
		return error_set(err, -ENOMEM, "out of memory");
	walk_bytes = walk_inodes = 0;
	if (nftw(spec->root_path, walk_one, 64, FTW_PHYS | FTW_MOUNT) != 0)
		return error_set_errno(err, -(errno ? errno : EIO), "root.path: cannot read %s",
				       spec->root_path);
	size = rootfs_image_size(walk_bytes, walk_inodes, spec->root_readonly);
	fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return error_set_errno(err, -errno, "rootfs: cannot create %s", image);
	if (ftruncate(fd, (off_t)size) < 0) {
		r = error_set_errno(err, -errno, "rootfs: cannot size %s", image);
		unlink(image);
		return r;
	}
	r = run_mkfs(image, spec->root_path, walk_inodes, spec->root_readonly, err);
	if (r < 0) {
		unlink(image);
		return r;
	}
	out->image = ptr_steal(&image);
	out->readonly = spec->root_readonly;
	out->kind = AGENT_ROOTFS_BLOCK;
	out->source = ROOTFS_GUEST_DEVICE;
	out->fstype = ROOTFS_FSTYPE;
	/* a read-only disk must be mounted read-only (the agent parses flags like mount(8)) */
	out->options = spec->root_readonly ? "ro" : "";
	return 0;
}

void rootfs_destroy(struct rootfs *rootfs)
{
	free(rootfs->image);
	rootfs->image = NULL;
}
