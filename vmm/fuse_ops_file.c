/*
 * FUSE operations on file contents, directories and extended attributes: CREATE, OPEN,
 * READ, WRITE, RELEASE, FSYNC, FLUSH, OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR,
 * FALLOCATE, LSEEK, COPY_FILE_RANGE, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR.
 * READ and WRITE move data with preadv/pwritev straight between the file and the guest's
 * buffers (the chain's iovecs, already checked to lie in guest RAM), no copy. Only regular
 * files are opened (the guest kernel serves device nodes, FIFOs and sockets itself), through
 * the node's /proc/self/fd entry; directories through openat(node, "."). Extended attribute
 * calls have no fd-relative form for O_PATH fds, so they use the /proc/self/fd/N path of
 * the node (never for a symlink: that would act on its target).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/falloc.h>

#include "fuse_internal.h"

#define FUSE_COPY_RANGE_MAX MIB(64) /* per COPY_FILE_RANGE: the guest loops for more */
#define FUSE_XATTR_SIZE_MAX 65536   /* Linux's XATTR_SIZE_MAX */
#define FUSE_XATTR_NAME_MAX 255

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static struct fuse_node *fuse_req_node(struct fuse_req *req)
{
	return fuse_node_get(req->s, req->in.nodeid);
}

/* The host open flags for what the guest asked; -EROFS for writes to a read-only share. */
static int fuse_open_flags(const struct fuse_server *s, uint32_t guest, int *flags)
{
	int access = guest & O_ACCMODE;

	if (access == O_ACCMODE)
		return -EINVAL;
	if (s->readonly && (access != O_RDONLY || (guest & O_TRUNC)))
		return -EROFS;
	/*
	 * Kept: access mode, append, sync. Dropped: O_DIRECT (the guest's alignment is not
	 * the host's), O_CREAT/O_EXCL/O_TRUNC (CREATE and SETATTR carry those), O_NOFOLLOW
	 * (we reopen through /proc), O_NOATIME, O_PATH, O_DIRECTORY, O_NOCTTY, O_NONBLOCK.
	 */
	*flags = access | (guest & (O_APPEND | O_SYNC | O_DSYNC)) | O_CLOEXEC;
	return 0;
}

static uint32_t fuse_fopen_flags(const struct fuse_server *s, bool dir)
{
	if (s->cache == FUSE_CACHE_NONE)
		return dir ? 0 : FOPEN_DIRECT_IO;
	if (s->cache == FUSE_CACHE_ALWAYS)
		return dir ? FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR : FOPEN_KEEP_CACHE;
	return 0;
}

int fuse_do_create(struct fuse_req *req)
{
	const struct fuse_create_in *in = (const void *)req->arg;
	struct fuse_server *s = req->s;
	struct {
		struct fuse_entry_out entry;
		struct fuse_open_out open;
	} out = { 0 };
	_cleanup_close_ int fd = -1;
	struct fuse_node *parent = fuse_req_node(req), *node;
	uint32_t off = sizeof(*in);
	const char *name;
	int flags = 0, r;
	struct stat st;

	if (!parent)
		return -ESTALE;
	if (parent->type != S_IFDIR)
		return -ENOTDIR;
	r = fuse_req_name(req, &off, &name);
	if (r == 0)
		r = fuse_open_flags(s, in->flags, &flags);
	if (r < 0)
		return r;
	if (s->nr_handles >= s->max_handles)
		return -EMFILE;
	/* O_NOFOLLOW: a link planted under that name is never opened through. */
	flags |= O_CREAT | O_NOFOLLOW | (in->flags & (O_EXCL | O_TRUNC));
	do
		fd = openat(parent->fd, name, flags, in->mode & 07777);
	while (fd < 0 && fuse_retry_emfile(s, errno));
	if (fd < 0)
		return -errno;
	r = fuse_finish_create_node(req, parent, name, in->mode & 07777, &node, &st);
	if (r < 0)
		return r;
	r = fuse_handle_add(s, fd_steal(&fd), false, &out.open.fh);
	if (r < 0) {
		fuse_node_forget(s, node->id, 1);
		return r;
	}
	fuse_fill_entry(s, node, &st, &out.entry);
	out.open.open_flags = fuse_fopen_flags(s, false);
	return fuse_reply(req, &out, sizeof(out));
}

int fuse_do_open(struct fuse_req *req)
{
	const struct fuse_open_in *in = (const void *)req->arg;
	struct fuse_node *node = fuse_req_node(req);
	struct fuse_open_out out = { 0 };
	char name[FUSE_PROC_NAME];
	int flags = 0, fd, r;

	if (!node)
		return -ESTALE;
	if (node->type == S_IFDIR)
		return -EISDIR;
	if (node->type == S_IFLNK)
		return -ELOOP;
	if (node->type != S_IFREG)
		return -ENXIO; /* device nodes, FIFOs, sockets: the guest's own business */
	r = fuse_open_flags(req->s, in->flags, &flags);
	if (r < 0)
		return r;
	if (req->s->nr_handles >= req->s->max_handles)
		return -EMFILE;
	fuse_proc_name(node->fd, name);
	do
		fd = openat(req->s->proc_fd, name, flags);
	while (fd < 0 && fuse_retry_emfile(req->s, errno));
	if (fd < 0)
		return -errno;
	r = fuse_handle_add(req->s, fd, false, &out.fh);
	if (r < 0)
		return r;
	out.open_flags = fuse_fopen_flags(req->s, false);
	return fuse_reply(req, &out, sizeof(out));
}

/* preadv/pwritev until len bytes or the end of the file; bytes done or a negative errno. */
static int64_t fuse_rw(int fd, struct iovec *iov, unsigned int nr, uint64_t off, uint64_t len,
		       bool write)
{
	uint64_t done = 0;

	while (done < len && nr) {
		ssize_t n = write ? pwritev(fd, iov, (int)nr, (off_t)(off + done))
				  : preadv(fd, iov, (int)nr, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return done ? (int64_t)done : -errno;
		if (n == 0)
			break; /* end of file */
		done += n;
		iov = iov_advance(iov, &nr, n);
	}
	return done;
}

int fuse_do_read(struct fuse_req *req)
{
	const struct fuse_read_in *in = (const void *)req->arg;
	struct fuse_handle *h = fuse_handle_get(req->s, in->fh, false);
	uint64_t avail;
	unsigned int nr;
	int64_t n;

	if (!h)
		return -EBADF;
	if (in->offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	nr = fuse_reply_iov(req, MIN(in->size, FUSE_SERVER_MAX_WRITE), &avail);
	n = fuse_rw(h->fd, req->s->iov, nr, in->offset, MIN(avail, INT64_MAX - in->offset), false);
	if (n < 0)
		return (int)n;
	return fuse_reply_header(req, (uint32_t)n);
}

int fuse_do_write(struct fuse_req *req)
{
	const struct fuse_write_in *in = (const void *)req->arg;
	struct fuse_handle *h = fuse_handle_get(req->s, in->fh, false);
	uint64_t data = sizeof(struct fuse_in_header) + sizeof(*in), total = 0;
	struct fuse_write_out out = { 0 };
	unsigned int nr, i;
	int64_t n;

	if (!h)
		return -EBADF;
	if (in->size > FUSE_SERVER_MAX_WRITE || data + in->size > req->len ||
	    in->offset > (uint64_t)INT64_MAX - in->size)
		return -EINVAL;
	nr = fuse_req_iov(req, data, in->size);
	for (i = 0; i < nr; i++)
		total += req->s->iov[i].iov_len;
	if (total != in->size)
		return -EINVAL; /* more buffers than we take in one request */
	n = fuse_rw(h->fd, req->s->iov, nr, in->offset, in->size, true);
	if (n < 0)
		return (int)n;
	out.size = (uint32_t)n;
	return fuse_reply(req, &out, sizeof(out));
}

int fuse_do_release(struct fuse_req *req)
{
	const struct fuse_release_in *in = (const void *)req->arg;
	int r = fuse_handle_release(req->s, in->fh, false);

	return r < 0 ? r : fuse_reply(req, NULL, 0);
}

int fuse_do_releasedir(struct fuse_req *req)
{
	const struct fuse_release_in *in = (const void *)req->arg;
	int r = fuse_handle_release(req->s, in->fh, true);

	return r < 0 ? r : fuse_reply(req, NULL, 0);
}

/* FSYNC and FSYNCDIR; bit 0 of fsync_flags asks for data only. */
int fuse_do_fsync(struct fuse_req *req)
{
	const struct fuse_fsync_in *in = (const void *)req->arg;
	bool dir = req->in.opcode == FUSE_FSYNCDIR;
	struct fuse_handle *h = fuse_handle_get(req->s, in->fh, dir);
	int r;

	if (!h)
		return -EBADF;
	r = (in->fsync_flags & 1) && !dir ? fdatasync(h->fd) : fsync(h->fd);
	return r < 0 ? -errno : fuse_reply(req, NULL, 0);
}

/* FLUSH (close of one guest fd): nothing is buffered here, there are no POSIX locks. */
int fuse_do_flush(struct fuse_req *req)
{
	const struct fuse_flush_in *in = (const void *)req->arg;

	if (!fuse_handle_get(req->s, in->fh, false))
		return -EBADF;
	return fuse_reply(req, NULL, 0);
}

int fuse_do_opendir(struct fuse_req *req)
{
	struct fuse_node *node = fuse_req_node(req);
	struct fuse_open_out out = { 0 };
	int fd, r;

	if (!node)
		return -ESTALE;
	if (node->type != S_IFDIR)
		return -ENOTDIR;
	if (req->s->nr_handles >= req->s->max_handles)
		return -EMFILE;
	do
		fd = openat(node->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && fuse_retry_emfile(req->s, errno));
	if (fd < 0)
		return -errno;
	r = fuse_handle_add(req->s, fd, true, &out.fh);
	if (r < 0)
		return r;
	out.open_flags = fuse_fopen_flags(req->s, true);
	return fuse_reply(req, &out, sizeof(out));
}

/* One READDIRPLUS entry's fuse_entry_out: a lookup, except for "." and "..". */
static void fuse_dirplus_entry(struct fuse_req *req, struct fuse_node *dir,
			       const struct linux_dirent64 *d, struct fuse_entry_out *e)
{
	struct fuse_node *child;
	struct stat st;

	memset(e, 0, sizeof(*e));
	if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..") &&
	    fuse_lookup_name(req->s, dir, d->d_name, true, &child, &st) == 0) {
		fuse_fill_entry(req->s, child, &st, e);
		return;
	}
	/* nodeid 0: the guest shows the name and looks it up itself when it needs it. */
	e->attr.ino = d->d_ino;
	e->attr.mode = (uint32_t)d->d_type << 12;
}

/* Append one entry (and for READDIRPLUS its lookup) at out + *used; false: no room. */
static bool fuse_dirent_add(struct fuse_req *req, struct fuse_node *dir, bool plus,
			    const struct linux_dirent64 *d, uint8_t *out, size_t *used, size_t size)
{
	size_t namelen = strlen(d->d_name);
	size_t dsize = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
	size_t esize = plus ? sizeof(struct fuse_entry_out) + dsize : dsize;
	struct fuse_dirent *fd;

	if (*used + esize > size)
		return false;
	if (plus)
		fuse_dirplus_entry(req, dir, d, (struct fuse_entry_out *)(out + *used));
	fd = (struct fuse_dirent *)(out + *used + (plus ? sizeof(struct fuse_entry_out) : 0));
	fd->ino = d->d_ino;
	fd->off = (uint64_t)d->d_off;
	fd->namelen = (uint32_t)namelen;
	fd->type = d->d_type;
	memcpy(fd->name, d->d_name, namelen);
	memset(fd->name + namelen, 0, dsize - FUSE_NAME_OFFSET - namelen);
	*used += esize;
	return true;
}

/* READDIR and READDIRPLUS: entries from in->offset (a d_off cookie) that fit in size. */
int fuse_do_readdir(struct fuse_req *req)
{
	const struct fuse_read_in *in = (const void *)req->arg;
	bool plus = req->in.opcode == FUSE_READDIRPLUS;
	struct fuse_server *s = req->s;
	struct fuse_handle *h = fuse_handle_get(s, in->fh, true);
	struct fuse_node *dir = fuse_req_node(req);
	uint8_t *out = s->dirbuf;
	size_t size = MIN((size_t)in->size, (size_t)FUSE_DIRBUF_SIZE), used = 0;
	uint64_t next = in->offset;

	if (!h)
		return -EBADF;
	/* Never build more than the reply holds: every READDIRPLUS entry costs a lookup. */
	size = MIN(size, req->reply_len > sizeof(struct fuse_out_header)
				 ? (size_t)(req->reply_len - sizeof(struct fuse_out_header))
				 : 0);
	if (plus && (!dir || dir->type != S_IFDIR))
		return -ESTALE;
	if (in->offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	/* Not where the last reply on this handle stopped: read from the guest's cookie. */
	if (s->dents_fh != h->id || s->dents_next != in->offset) {
		if (lseek(h->fd, (off_t)in->offset, SEEK_SET) < 0)
			return -EINVAL;
		s->dents_fh = h->id;
		s->dents_pos = s->dents_len = 0;
	}
	for (;;) {
		const struct linux_dirent64 *d;

		if (s->dents_pos >= s->dents_len) {
			long n = syscall(SYS_getdents64, h->fd, s->dents, FUSE_DIRBUF_SIZE);

			s->dents_pos = s->dents_len = 0;
			if (n < 0) {
				s->dents_fh = 0;
				if (used)
					break; /* what we have; the guest asks again */
				return -errno;
			}
			if (n == 0)
				break;
			s->dents_len = (uint32_t)n;
		}
		d = (const void *)(s->dents + s->dents_pos);
		if (!fuse_dirent_add(req, dir, plus, d, out, &used, size))
			break;
		s->dents_pos += d->d_reclen;
		next = (uint64_t)d->d_off; /* the guest's cookie for what comes after */
	}
	s->dents_next = next;
	return fuse_reply(req, out, used);
}

int fuse_do_fallocate(struct fuse_req *req)
{
	const struct fuse_fallocate_in *in = (const void *)req->arg;
	struct fuse_handle *h = fuse_handle_get(req->s, in->fh, false);

	if (!h)
		return -EBADF;
	if (in->offset > (uint64_t)INT64_MAX || in->length > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length) < 0)
		return -errno;
	return fuse_reply(req, NULL, 0);
}

int fuse_do_lseek(struct fuse_req *req)
{
	const struct fuse_lseek_in *in = (const void *)req->arg;
	struct fuse_handle *h = fuse_handle_get(req->s, in->fh, false);
	struct fuse_lseek_out out;
	off_t pos;

	if (!h)
		return -EBADF;
	if (in->whence != SEEK_DATA && in->whence != SEEK_HOLE)
		return -EINVAL; /* the guest kernel does SET, CUR and END itself */
	if (in->offset > (uint64_t)INT64_MAX)
		return -ENXIO;
	pos = lseek(h->fd, (off_t)in->offset, (int)in->whence);
	if (pos < 0)
		return -errno;
	out.offset = (uint64_t)pos;
	return fuse_reply(req, &out, sizeof(out));
}

int fuse_do_copy_file_range(struct fuse_req *req)
{
	const struct fuse_copy_file_range_in *in = (const void *)req->arg;
	struct fuse_handle *src = fuse_handle_get(req->s, in->fh_in, false);
	struct fuse_handle *dst = fuse_handle_get(req->s, in->fh_out, false);
	struct fuse_write_out out = { 0 };
	loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
	ssize_t n;

	if (!src || !dst)
		return -EBADF;
	if (in->flags || in->off_in > (uint64_t)INT64_MAX || in->off_out > (uint64_t)INT64_MAX)
		return -EINVAL;
	n = copy_file_range(src->fd, &off_in, dst->fd, &off_out,
			    (size_t)MIN(in->len, FUSE_COPY_RANGE_MAX), 0);
	if (n < 0)
		return -errno;
	out.size = (uint32_t)n;
	return fuse_reply(req, &out, sizeof(out));
}

/* The node's /proc/self/fd path for the xattr calls (which have no O_PATH-fd form). */
static int fuse_xattr_path(struct fuse_req *req, char *path, size_t size,
			   const struct fuse_node **node)
{
	*node = fuse_req_node(req);
	if (!*node)
		return -ESTALE;
	snprintf(path, size, "/proc/self/fd/%d", (*node)->fd);
	return 0;
}

int fuse_do_setxattr(struct fuse_req *req)
{
	const struct fuse_setxattr_in *in = (const void *)req->arg;
	uint32_t off = FUSE_COMPAT_SETXATTR_IN_SIZE, size = in->size;
	const struct fuse_node *node;
	const char *name;
	char path[64];
	int r;

	r = fuse_xattr_path(req, path, sizeof(path), &node);
	if (r == 0)
		r = fuse_req_string(req, &off, FUSE_XATTR_NAME_MAX, &name);
	if (r < 0)
		return r;
	if (size > FUSE_XATTR_SIZE_MAX)
		return -E2BIG;
	if (size > req->arg_len - off)
		return -EINVAL;
	if (node->type == S_IFLNK)
		return -EPERM;
	if (setxattr(path, name, req->arg + off, size, (int)(in->flags & 3)) < 0)
		return -errno;
	return fuse_reply(req, NULL, 0);
}

/* GETXATTR and LISTXATTR: size 0 asks how big; else the bytes, or ERANGE. */
static int fuse_reply_xattr(struct fuse_req *req, uint32_t size, ssize_t n)
{
	struct fuse_getxattr_out out = { 0 };

	if (n < 0)
		return -errno;
	if (size == 0) {
		out.size = (uint32_t)n;
		return fuse_reply(req, &out, sizeof(out));
	}
	return fuse_reply(req, req->s->dirbuf, (size_t)n);
}

int fuse_do_getxattr(struct fuse_req *req)
{
	const struct fuse_getxattr_in *in = (const void *)req->arg;
	uint32_t off = sizeof(*in), size = MIN(in->size, (uint32_t)FUSE_XATTR_SIZE_MAX);
	const struct fuse_node *node;
	const char *name;
	char path[64];
	int r;

	r = fuse_xattr_path(req, path, sizeof(path), &node);
	if (r == 0)
		r = fuse_req_string(req, &off, FUSE_XATTR_NAME_MAX, &name);
	if (r < 0)
		return r;
	if (node->type == S_IFLNK)
		return -ENODATA;
	return fuse_reply_xattr(req, size,
				getxattr(path, name, size ? req->s->dirbuf : NULL, size));
}

int fuse_do_listxattr(struct fuse_req *req)
{
	const struct fuse_getxattr_in *in = (const void *)req->arg;
	uint32_t size = MIN(in->size, (uint32_t)FUSE_XATTR_SIZE_MAX);
	const struct fuse_node *node;
	char path[64];
	int r;

	r = fuse_xattr_path(req, path, sizeof(path), &node);
	if (r < 0)
		return r;
	if (node->type == S_IFLNK) {
		errno = 0;
		return fuse_reply_xattr(req, size, 0);
	}
	return fuse_reply_xattr(req, size,
				listxattr(path, size ? (char *)req->s->dirbuf : NULL, size));
}

int fuse_do_removexattr(struct fuse_req *req)
{
	const struct fuse_node *node;
	const char *name;
	uint32_t off = 0;
	char path[64];
	int r;

	r = fuse_xattr_path(req, path, sizeof(path), &node);
	if (r == 0)
		r = fuse_req_string(req, &off, FUSE_XATTR_NAME_MAX, &name);
	if (r < 0)
		return r;
	if (node->type == S_IFLNK)
		return -EPERM;
	if (removexattr(path, name) < 0)
		return -errno;
	return fuse_reply(req, NULL, 0);
}
