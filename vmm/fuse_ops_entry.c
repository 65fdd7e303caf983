/*
 * FUSE operations on the namespace: LOOKUP, FORGET, BATCH_FORGET, GETATTR, SETATTR,
 * READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, RENAME2, LINK, STATFS, ACCESS.
 * Every call is relative to a node's O_PATH fd with a single-component name (fuse_req_name
 * refuses '/', "." and ".."), never a path string built from guest names; nothing is
 * followed: links are looked up, created and reported as links. What needs a real file
 * (chmod, truncate, link) goes through the node's /proc/self/fd entry, which names that
 * exact inode; never for a symlink, whose target the host would then resolve.
 *
 * New inodes belong to the caller: when the VMM runs as root, each is chown'ed to the
 * request's uid/gid (the gid left to the parent's when it is setgid) and its mode restored
 * (chown clears setuid bits, our umask is not the guest's); the guest kernel checks
 * permissions itself (virtio-fs mounts with default_permissions). docs/virtio-fs.md.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fuse_internal.h"
#include "log.h"

static struct fuse_node *fuse_req_node(struct fuse_req *req)
{
	return fuse_node_get(req->s, req->in.nodeid);
}

static int fuse_reply_entry(struct fuse_req *req, const struct fuse_node *node,
			    const struct stat *st)
{
	struct fuse_entry_out e;

	fuse_fill_entry(req->s, node, st, &e);
	return fuse_reply(req, &e, sizeof(e));
}

int fuse_do_lookup(struct fuse_req *req)
{
	struct fuse_node *parent = fuse_req_node(req), *node;
	uint32_t off = 0;
	const char *name;
	struct stat st;
	int r;

	if (!parent)
		return -ESTALE;
	r = fuse_req_name(req, &off, &name);
	if (r < 0)
		return r;
	r = fuse_lookup_name(req->s, parent, name, true, &node, &st);
	if (r < 0)
		return r;
	return fuse_reply_entry(req, node, &st);
}

int fuse_do_forget(struct fuse_req *req)
{
	const struct fuse_forget_in *in = (const void *)req->arg;

	fuse_node_forget(req->s, req->in.nodeid, in->nlookup);
	return FUSE_NO_REPLY;
}

int fuse_do_batch_forget(struct fuse_req *req)
{
	const struct fuse_batch_forget_in *in = (const void *)req->arg;
	const struct fuse_forget_one *one = (const void *)(req->arg + sizeof(*in));
	uint32_t i, n = MIN(in->count, (req->arg_len - (uint32_t)sizeof(*in)) / sizeof(*one));

	for (i = 0; i < n; i++) {
		struct fuse_forget_one f;

		memcpy(&f, &one[i], sizeof(f)); /* the copy in s->buf is only 8-aligned by luck */
		fuse_node_forget(req->s, f.nodeid, f.nlookup);
	}
	return FUSE_NO_REPLY;
}

static int fuse_reply_attr(struct fuse_req *req, const struct stat *st)
{
	struct fuse_attr_out out = { 0 };
	uint64_t timeout = req->s->cache == FUSE_CACHE_NONE	? 0
			   : req->s->cache == FUSE_CACHE_ALWAYS ? 86400
								: 1;

	out.attr_valid = timeout;
	fuse_fill_attr(req->s, st, &out.attr);
	return fuse_reply(req, &out, sizeof(out));
}

int fuse_do_getattr(struct fuse_req *req)
{
	const struct fuse_getattr_in *in = (const void *)req->arg;
	struct fuse_node *node = fuse_req_node(req);
	struct fuse_handle *h;
	struct stat st;
	int r;

	if (!node)
		return -ESTALE;
	if ((in->getattr_flags & FUSE_GETATTR_FH) && (h = fuse_handle_get(req->s, in->fh, false)))
		r = fstat(h->fd, &st) < 0 ? -errno : 0;
	else
		r = fuse_stat_node(node, &st);
	return r < 0 ? r : fuse_reply_attr(req, &st);
}

/* A regular file we hold as O_PATH, opened for real through its /proc/self/fd entry. */
static int fuse_reopen(struct fuse_server *s, const struct fuse_node *node, int flags)
{
	char name[FUSE_PROC_NAME];
	int fd;

	if (node->type == S_IFDIR)
		return -EISDIR;
	if (node->type != S_IFREG)
		return -EINVAL;
	fuse_proc_name(node->fd, name);
	do
		fd = openat(s->proc_fd, name, flags | O_CLOEXEC);
	while (fd < 0 && fuse_retry_emfile(s, errno));
	return fd < 0 ? -errno : fd;
}

static int fuse_chmod_node(struct fuse_server *s, const struct fuse_node *node, mode_t mode)
{
	char name[FUSE_PROC_NAME];

	if (node->type == S_IFLNK)
		return -EOPNOTSUPP; /* Linux has no mode on links; never chmod their target */
	fuse_proc_name(node->fd, name);
	return fchmodat(s->proc_fd, name, mode & 07777, 0) < 0 ? -errno : 0;
}

static int fuse_utimens_node(struct fuse_server *s, const struct fuse_node *node,
			     const struct timespec ts[2])
{
	char name[FUSE_PROC_NAME];

	if (utimensat(node->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != EINVAL || node->type == S_IFLNK)
		return -errno;
	fuse_proc_name(node->fd, name); /* kernels without AT_EMPTY_PATH for utimensat */
	return utimensat(s->proc_fd, name, ts, 0) < 0 ? -errno : 0;
}

static int fuse_truncate_node(struct fuse_server *s, const struct fuse_node *node, int fh_fd,
			      uint64_t size)
{
	int fd, r;

	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (fh_fd >= 0)
		return ftruncate(fh_fd, (off_t)size) < 0 ? -errno : 0;
	fd = fuse_reopen(s, node, O_WRONLY);
	if (fd < 0)
		return fd;
	r = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static void fuse_setattr_times(const struct fuse_setattr_in *in, struct timespec ts[2])
{
	ts[0].tv_nsec = ts[1].tv_nsec = UTIME_OMIT;
	ts[0].tv_sec = ts[1].tv_sec = 0;
	if (in->valid & FATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_ATIME)
		ts[0] = (struct timespec){ .tv_sec = (time_t)in->atime,
					   .tv_nsec = MIN(in->atimensec, 999999999u) };
	if (in->valid & FATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (in->valid & FATTR_MTIME)
		ts[1] = (struct timespec){ .tv_sec = (time_t)in->mtime,
					   .tv_nsec = MIN(in->mtimensec, 999999999u) };
}

int fuse_do_setattr(struct fuse_req *req)
{
	struct fuse_setattr_in in;
	struct fuse_node *node = fuse_req_node(req);
	struct fuse_handle *h = NULL;
	struct timespec ts[2];
	struct stat st;
	int r = 0, fd = -1;

	memcpy(&in, req->arg, sizeof(in));
	if (!node)
		return -ESTALE;
	if (in.valid & FATTR_FH) {
		h = fuse_handle_get(req->s, in.fh, false);
		if (!h)
			return -EBADF;
		fd = h->fd;
	}
	if (in.valid & FATTR_MODE)
		r = fd >= 0 ? (fchmod(fd, in.mode & 07777) < 0 ? -errno : 0)
			    : fuse_chmod_node(req->s, node, in.mode);
	if (!r && (in.valid & (FATTR_UID | FATTR_GID)) &&
	    fchownat(node->fd, "", in.valid & FATTR_UID ? in.uid : (uid_t)-1,
		     in.valid & FATTR_GID ? in.gid : (gid_t)-1,
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (!r && (in.valid & FATTR_SIZE))
		r = fuse_truncate_node(req->s, node, fd, in.size);
	if (!r && (in.valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW))) {
		fuse_setattr_times(&in, ts);
		r = fd >= 0 ? (futimens(fd, ts) < 0 ? -errno : 0)
			    : fuse_utimens_node(req->s, node, ts);
	}
	if (!r)
		r = fuse_stat_node(node, &st);
	return r < 0 ? r : fuse_reply_attr(req, &st);
}

int fuse_do_readlink(struct fuse_req *req)
{
	struct fuse_node *node = fuse_req_node(req);
	ssize_t n;

	if (!node)
		return -ESTALE;
	if (node->type != S_IFLNK)
		return -EINVAL;
	n = readlinkat(node->fd, "", (char *)req->s->dirbuf, PATH_MAX);
	if (n < 0)
		return -errno;
	return fuse_reply(req, req->s->dirbuf, (size_t)n);
}

/*
 * After mkdir/mknod/symlink/create of name under parent: look it up, make it the caller's
 * and give it the mode asked for; on failure it is removed again. Replies the entry unless
 * out is given (CREATE replies itself).
 */
int fuse_finish_create_node(struct fuse_req *req, struct fuse_node *parent, const char *name,
			    mode_t mode, struct fuse_node **out, struct stat *st)
{
	struct fuse_server *s = req->s;
	struct fuse_node *node;
	struct stat pst;
	int r;

	r = fuse_lookup_name(s, parent, name, false, &node, st);
	if (r < 0)
		return r;
	/* A -runas since we started makes chown fail: handled below, once. */
	if (s->privileged) {
		gid_t gid = req->in.gid;

		if (fuse_stat_node(parent, &pst) == 0 && (pst.st_mode & S_ISGID))
			gid = (gid_t)-1; /* BSD group semantics of a setgid directory */
		if (fchownat(node->fd, "", req->in.uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) <
		    0) {
			/* No CAP_CHOWN after all: the inode stays the VMM's, as unprivileged. */
			log_once(LOG_WARN, "%s: cannot give new inodes to the caller: %s", s->name,
				 strerror(errno));
			s->privileged = false;
		}
	}
	if (!r && node->type != S_IFLNK &&
	    ((mode & 07777) != (st->st_mode & 07777) || (mode & (S_ISUID | S_ISGID))))
		r = fuse_chmod_node(s, node, mode);
	if (!r)
		r = fuse_stat_node(node, st);
	if (r < 0) {
		unlinkat(parent->fd, name, node->type == S_IFDIR ? AT_REMOVEDIR : 0);
		node->gone = true;
		fuse_node_forget(s, node->id, 1);
		return r;
	}
	if (out) {
		*out = node;
		return 0;
	}
	return fuse_reply_entry(req, node, st);
}

/* The parent node and the name at *off, for the operations that make or remove a name. */
static int fuse_req_parent_name(struct fuse_req *req, uint32_t *off, struct fuse_node **parent,
				const char **name)
{
	*parent = fuse_req_node(req);
	if (!*parent)
		return -ESTALE;
	if ((*parent)->type != S_IFDIR)
		return -ENOTDIR;
	return fuse_req_name(req, off, name);
}

int fuse_do_symlink(struct fuse_req *req)
{
	struct fuse_node *parent;
	const char *name, *target;
	uint32_t off = 0;
	struct stat st;
	int r;

	r = fuse_req_parent_name(req, &off, &parent, &name);
	if (r == 0)
		r = fuse_req_string(req, &off, PATH_MAX - 1, &target);
	if (r < 0)
		return r;
	if (symlinkat(target, parent->fd, name) < 0)
		return -errno;
	return fuse_finish_create_node(req, parent, name, 0777, NULL, &st);
}

int fuse_do_mknod(struct fuse_req *req)
{
	const struct fuse_mknod_in *in = (const void *)req->arg;
	uint32_t off = sizeof(*in), dev = in->rdev;
	mode_t mode = in->mode;
	struct fuse_node *parent;
	const char *name;
	struct stat st;
	int r;

	r = fuse_req_parent_name(req, &off, &parent, &name);
	if (r < 0)
		return r;
	/* Linux's new_decode_dev, as the guest encoded it. */
	if (mknodat(parent->fd, name, mode,
		    makedev((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))) < 0)
		return -errno;
	return fuse_finish_create_node(req, parent, name, mode, NULL, &st);
}

int fuse_do_mkdir(struct fuse_req *req)
{
	const struct fuse_mkdir_in *in = (const void *)req->arg;
	uint32_t off = sizeof(*in);
	mode_t mode = in->mode & 07777;
	struct fuse_node *parent;
	const char *name;
	struct stat st;
	int r;

	r = fuse_req_parent_name(req, &off, &parent, &name);
	if (r < 0)
		return r;
	if (mkdirat(parent->fd, name, mode) < 0)
		return -errno;
	return fuse_finish_create_node(req, parent, name, mode | S_IFDIR, NULL, &st);
}

static int fuse_remove(struct fuse_req *req, int flags)
{
	struct fuse_node *parent;
	const char *name;
	uint32_t off = 0;
	struct stat st;
	bool known;
	int r;

	r = fuse_req_parent_name(req, &off, &parent, &name);
	if (r < 0)
		return r;
	/*
	 * Which inode loses the name: a node we hold for it must not outlive it (fuse_table.c).
	 * A rename racing in between only makes us close a node early or cache it a while.
	 */
	known = fstatat(parent->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (unlinkat(parent->fd, name, flags) < 0)
		return -errno;
	if (known)
		fuse_node_unlinked(req->s, &st);
	return fuse_reply(req, NULL, 0);
}

int fuse_do_unlink(struct fuse_req *req)
{
	return fuse_remove(req, 0);
}

int fuse_do_rmdir(struct fuse_req *req)
{
	return fuse_remove(req, AT_REMOVEDIR);
}

static int fuse_rename_common(struct fuse_req *req, uint64_t newdir, uint32_t off,
			      unsigned int flags)
{
	struct fuse_node *parent, *newparent = fuse_node_get(req->s, newdir);
	const char *oldname, *newname;
	bool replaced;
	struct stat st;
	int r;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
		return -EINVAL;
	r = fuse_req_parent_name(req, &off, &parent, &oldname);
	if (r < 0)
		return r;
	if (!newparent)
		return -ESTALE;
	if (newparent->type != S_IFDIR)
		return -ENOTDIR;
	r = fuse_req_name(req, &off, &newname);
	if (r < 0)
		return r;
	/* A target the rename replaces loses a name (EXCHANGE and NOREPLACE replace nothing). */
	replaced = !(flags & (RENAME_EXCHANGE | RENAME_NOREPLACE)) &&
		   fstatat(newparent->fd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (renameat2(parent->fd, oldname, newparent->fd, newname, flags) < 0)
		return -errno;
	if (replaced)
		fuse_node_unlinked(req->s, &st);
	return fuse_reply(req, NULL, 0);
}

int fuse_do_rename(struct fuse_req *req)
{
	const struct fuse_rename_in *in = (const void *)req->arg;

	return fuse_rename_common(req, in->newdir, sizeof(*in), 0);
}

int fuse_do_rename2(struct fuse_req *req)
{
	const struct fuse_rename2_in *in = (const void *)req->arg;

	return fuse_rename_common(req, in->newdir, sizeof(*in), in->flags);
}

int fuse_do_link(struct fuse_req *req)
{
	const struct fuse_link_in *in = (const void *)req->arg;
	struct fuse_node *old = fuse_node_get(req->s, in->oldnodeid), *parent, *node;
	char proc[FUSE_PROC_NAME];
	uint32_t off = sizeof(*in);
	const char *name;
	struct stat st;
	int r;

	r = fuse_req_parent_name(req, &off, &parent, &name);
	if (r < 0)
		return r;
	if (!old)
		return -ESTALE;
	if (old->type == S_IFDIR)
		return -EPERM;
	/*
	 * The magic link names exactly the inode we hold (a link itself, for a symlink node:
	 * O_PATH | O_NOFOLLOW), and works without CAP_DAC_READ_SEARCH, unlike AT_EMPTY_PATH.
	 */
	fuse_proc_name(old->fd, proc);
	if (linkat(req->s->proc_fd, proc, parent->fd, name, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	r = fuse_lookup_name(req->s, parent, name, true, &node, &st);
	if (r < 0)
		return r;
	return fuse_reply_entry(req, node, &st);
}

int fuse_do_statfs(struct fuse_req *req)
{
	struct fuse_node *node = fuse_req_node(req);
	struct fuse_statfs_out out = { 0 };
	struct statfs sfs;

	if (!node)
		node = fuse_node_get(req->s, FUSE_ROOT_ID);
	if (fstatfs(node->fd, &sfs) < 0)
		return -errno;
	out.st = (struct fuse_kstatfs){ .blocks = sfs.f_blocks,
					.bfree = sfs.f_bfree,
					.bavail = sfs.f_bavail,
					.files = sfs.f_files,
					.ffree = sfs.f_ffree,
					.bsize = (uint32_t)sfs.f_bsize,
					.namelen = (uint32_t)sfs.f_namelen,
					.frsize = (uint32_t)sfs.f_frsize };
	return fuse_reply(req, &out, sizeof(out));
}

/* ACCESS for the caller's uid/gid (no supplementary groups: the request has none). */
int fuse_do_access(struct fuse_req *req)
{
	const struct fuse_access_in *in = (const void *)req->arg;
	struct fuse_node *node = fuse_req_node(req);
	unsigned int mask = in->mask & 7, bits;
	struct stat st;
	int r;

	if (!node)
		return -ESTALE;
	r = fuse_stat_node(node, &st);
	if (r < 0)
		return r;
	if ((mask & W_OK) && req->s->readonly)
		return -EROFS;
	if (req->in.uid == 0) {
		/* root may do anything but execute what nobody may execute */
		if ((mask & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111))
			return -EACCES;
		return fuse_reply(req, NULL, 0);
	}
	if (st.st_uid == req->in.uid)
		bits = (st.st_mode >> 6) & 7;
	else if (st.st_gid == req->in.gid)
		bits = (st.st_mode >> 3) & 7;
	else
		bits = st.st_mode & 7;
	return (bits & mask) == mask ? fuse_reply(req, NULL, 0) : -EACCES;
}
