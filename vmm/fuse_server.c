/*
 * The FUSE server's request path: a request's header and arguments are copied out of the
 * guest's buffers once (WRITE data excepted: it goes straight to the file), checked against
 * the chain's real length and the opcode's argument size, and handed to the operation; the
 * reply is written back into the chain's writable buffers, truncated to what they hold.
 * Also INIT and DESTROY, server creation, and the helpers the operations share (names,
 * attributes, opening a child without following anything). Protocol facts: Linux's
 * include/uapi/linux/fuse.h (7.38 here; we accept guests from 7.31, the first with
 * virtio-fs).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "fuse_internal.h"
#include "log.h"

#define FUSE_MIN_MINOR 31
/* Timeouts (seconds) the guest may cache entries and attributes for, per cache mode. */
static const uint64_t fuse_timeout[] = {
	[FUSE_CACHE_AUTO] = 1,
	[FUSE_CACHE_NONE] = 0,
	[FUSE_CACHE_ALWAYS] = 86400,
};

/* Copy len bytes from src at offset off of iov[0 .. nr); returns the count copied. */
static size_t fuse_iov_read(const struct iovec *iov, unsigned int nr, uint64_t off, void *dst,
			    size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < nr && done < len; i++) {
		size_t take;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = MIN(iov[i].iov_len - off, len - done);
		memcpy((uint8_t *)dst + done, (const uint8_t *)iov[i].iov_base + off, take);
		done += take;
		off = 0;
	}
	return done;
}

static size_t fuse_iov_write(const struct iovec *iov, unsigned int nr, uint64_t off,
			     const void *src, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < nr && done < len; i++) {
		size_t take;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = MIN(iov[i].iov_len - off, len - done);
		memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)src + done, take);
		done += take;
		off = 0;
	}
	return done;
}

/* [off, off + len) of iov[0 .. nr) as at most FUSE_SERVER_IOV_MAX iovecs in dst. */
static unsigned int fuse_iov_slice(const struct iovec *iov, unsigned int nr, uint64_t off,
				   uint64_t len, struct iovec *dst)
{
	unsigned int i, n = 0;

	for (i = 0; i < nr && len && n < FUSE_SERVER_IOV_MAX; i++) {
		uint64_t take;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = MIN(iov[i].iov_len - off, len);
		dst[n].iov_base = (uint8_t *)iov[i].iov_base + off;
		dst[n++].iov_len = take;
		len -= take;
		off = 0;
	}
	return n;
}

static uint32_t fuse_write_header(struct fuse_req *req, int error, uint64_t data_len)
{
	struct fuse_out_header out = {
		.len = (uint32_t)(sizeof(out) + data_len),
		.error = error,
		.unique = req->in.unique,
	};

	if (req->reply_len < sizeof(out))
		return 0; /* nowhere to answer: the chain goes back with nothing written */
	fuse_iov_write(req->reply_iov, req->nr_reply, 0, &out, sizeof(out));
	req->replied = true;
	req->written = (uint32_t)(sizeof(out) + data_len);
	return req->written;
}

int fuse_reply(struct fuse_req *req, const void *data, size_t len)
{
	if (req->reply_len < sizeof(struct fuse_out_header))
		return 0;
	len = MIN(len, req->reply_len - sizeof(struct fuse_out_header));
	fuse_iov_write(req->reply_iov, req->nr_reply, sizeof(struct fuse_out_header), data, len);
	fuse_write_header(req, 0, len);
	return 0;
}

int fuse_reply_header(struct fuse_req *req, uint32_t data_len)
{
	fuse_write_header(req, 0, data_len);
	return 0;
}

unsigned int fuse_reply_iov(struct fuse_req *req, uint64_t len, uint64_t *avail)
{
	uint64_t room = req->reply_len > sizeof(struct fuse_out_header)
				? req->reply_len - sizeof(struct fuse_out_header)
				: 0;
	unsigned int i, nr;

	len = MIN(len, room);
	nr = fuse_iov_slice(req->reply_iov, req->nr_reply, sizeof(struct fuse_out_header), len,
			    req->s->iov);
	for (*avail = 0, i = 0; i < nr; i++)
		*avail += req->s->iov[i].iov_len;
	return nr;
}

unsigned int fuse_req_iov(struct fuse_req *req, uint64_t off, uint64_t len)
{
	return fuse_iov_slice(req->req_iov, req->nr_req, off, len, req->s->iov);
}

int fuse_req_string(struct fuse_req *req, uint32_t *off, size_t max, const char **str)
{
	const char *p = (const char *)req->arg + *off;
	size_t room, len;

	if (*off >= req->arg_len)
		return -EINVAL;
	room = req->arg_len - *off;
	len = strnlen(p, room);
	if (len == room)
		return -EINVAL; /* no NUL inside the request */
	if (len == 0)
		return -EINVAL;
	if (len > max)
		return -ENAMETOOLONG;
	*off += (uint32_t)len + 1;
	*str = p;
	return 0;
}

int fuse_req_name(struct fuse_req *req, uint32_t *off, const char **name)
{
	int r = fuse_req_string(req, off, NAME_MAX, name);

	if (r < 0)
		return r;
	if (strchr(*name, '/') || !strcmp(*name, ".") || !strcmp(*name, ".."))
		return -EINVAL;
	return 0;
}

void fuse_fill_attr(const struct fuse_server *s, const struct stat *st, struct fuse_attr *attr)
{
	unsigned int maj = major(st->st_rdev), min = minor(st->st_rdev);

	(void)s;
	*attr = (struct fuse_attr){
		.ino = st->st_ino,
		.size = st->st_size,
		.blocks = st->st_blocks,
		.atime = st->st_atim.tv_sec,
		.mtime = st->st_mtim.tv_sec,
		.ctime = st->st_ctim.tv_sec,
		.atimensec = st->st_atim.tv_nsec,
		.mtimensec = st->st_mtim.tv_nsec,
		.ctimensec = st->st_ctim.tv_nsec,
		.mode = st->st_mode,
		.nlink = (uint32_t)MIN(st->st_nlink, (nlink_t)UINT32_MAX),
		.uid = st->st_uid,
		.gid = st->st_gid,
		/* Linux's new_encode_dev, which the guest decodes. */
		.rdev = (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12),
		.blksize = (uint32_t)st->st_blksize,
	};
}

void fuse_fill_entry(const struct fuse_server *s, const struct fuse_node *node,
		     const struct stat *st, struct fuse_entry_out *e)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = node->id;
	e->entry_valid = fuse_timeout[s->cache];
	e->attr_valid = fuse_timeout[s->cache];
	fuse_fill_attr(s, st, &e->attr);
}

void fuse_proc_name(int fd, char name[FUSE_PROC_NAME])
{
	snprintf(name, FUSE_PROC_NAME, "%d", fd);
}

int fuse_open_child(struct fuse_server *s, int dir_fd, const char *name)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd, tries = 0;

	for (;;) {
		if (s->openat2)
			fd = (int)syscall(SYS_openat2, dir_fd, name, &how, sizeof(how));
		else /* name is one component (fuse_req_name): nothing to walk, nothing followed */
			fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 || ++tries >= 8)
			break;
		if (errno == EAGAIN && s->openat2)
			continue; /* a racing rename */
		if (!fuse_retry_emfile(s, errno))
			break;
	}
	return fd < 0 ? -errno : fd;
}

bool fuse_retry_emfile(struct fuse_server *s, int err)
{
	/* The process is out of descriptors: give back some of the cached nodes' and retry. */
	return (err == EMFILE || err == ENFILE) && fuse_node_cache_shrink(s, 16) > 0;
}

int fuse_stat_node(const struct fuse_node *node, struct stat *st)
{
	return fstatat(node->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static void fuse_stat_from_statx(const struct statx *x, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(x->stx_dev_major, x->stx_dev_minor);
	st->st_ino = x->stx_ino;
	st->st_mode = x->stx_mode;
	st->st_nlink = x->stx_nlink;
	st->st_uid = x->stx_uid;
	st->st_gid = x->stx_gid;
	st->st_rdev = makedev(x->stx_rdev_major, x->stx_rdev_minor);
	st->st_size = (off_t)x->stx_size;
	st->st_blksize = x->stx_blksize;
	st->st_blocks = (blkcnt_t)x->stx_blocks;
	st->st_atim = (struct timespec){ x->stx_atime.tv_sec, x->stx_atime.tv_nsec };
	st->st_mtim = (struct timespec){ x->stx_mtime.tv_sec, x->stx_mtime.tv_nsec };
	st->st_ctim = (struct timespec){ x->stx_ctime.tv_sec, x->stx_ctime.tv_nsec };
}

int fuse_stat_key(struct fuse_server *s, int dir_fd, const char *name, struct stat *st,
		  uint64_t *mnt)
{
	int flags = AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT | (*name ? 0 : AT_EMPTY_PATH);
	struct statx x;

	if (statx(dir_fd, name, flags, STATX_BASIC_STATS | STATX_MNT_ID, &x) < 0) {
		if (errno != ENOSYS)
			return -errno;
		/* No statx (before Linux 4.11, or filtered): fstatat, and no mount to tell apart. */
		log_once(LOG_WARN, "%s: no statx: bind mounts of one inode share a node", s->name);
		*mnt = 0;
		return fstatat(dir_fd, name, st, flags & ~AT_STATX_SYNC_AS_STAT) < 0 ? -errno : 0;
	}
	fuse_stat_from_statx(&x, st);
	*mnt = x.stx_mask & STATX_MNT_ID ? x.stx_mnt_id : 0;
	if (!(x.stx_mask & STATX_MNT_ID))
		log_once(LOG_WARN,
			 "%s: the kernel does not report mount ids (Linux < 5.8): bind mounts of "
			 "one inode share a node, the first one looked up decides ro",
			 s->name);
	return 0;
}

int fuse_lookup_name(struct fuse_server *s, struct fuse_node *parent, const char *name, bool probe,
		     struct fuse_node **out, struct stat *st)
{
	struct fuse_node *n;
	uint64_t mnt;
	int fd, r;

	if (parent->type != S_IFDIR)
		return -ENOTDIR;
	/*
	 * The probe: one component, no link followed. An inode we already hold a descriptor on
	 * (the guest holds it, or it is cached) cannot be freed and its number reused, nor can
	 * the mount that descriptor is on (its id stays taken while referenced), so a (dev,
	 * ino, mnt) match is that very inode through that very mount and needs no open.
	 */
	if (probe) {
		r = fuse_stat_key(s, parent->fd, name, st, &mnt);
		if (r < 0)
			return r;
		n = fuse_node_find(s, st->st_dev, st->st_ino, mnt);
		if (n) {
			fuse_node_ref(s, n);
			*out = n;
			return 0;
		}
	}
	fd = fuse_open_child(s, parent->fd, name);
	if (fd < 0)
		return fd;
	/*
	 * What we answer is what we opened: if a rename replaced the name since the probe, the
	 * reply, the node and its attributes are all the new inode's (fuse_node_add looks it
	 * up again, by the mount the descriptor is on), never the probe's attributes with
	 * another inode's descriptor.
	 */
	r = fuse_stat_key(s, fd, "", st, &mnt);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fuse_node_add(s, fd, st, mnt, out);
}

/* FUSE_INIT: the version (major 7, minor >= 31) and the features we serve. */
static int fuse_do_init(struct fuse_req *req)
{
	struct fuse_server *s = req->s;
	struct fuse_init_in in = { 0 };
	struct fuse_init_out out = { 0 };
	uint32_t want = FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | FUSE_DO_READDIRPLUS |
			FUSE_READDIRPLUS_AUTO | FUSE_MAX_PAGES | FUSE_BIG_WRITES;

	memcpy(&in, req->arg, MIN(req->arg_len, sizeof(in)));
	if (in.major != FUSE_KERNEL_VERSION || in.minor < FUSE_MIN_MINOR) {
		log_once(LOG_WARN, "%s: the guest speaks FUSE %u.%u, we need 7.%u or later",
			 s->name, in.major, in.minor, FUSE_MIN_MINOR);
		return -EPROTO;
	}
	if (s->cache == FUSE_CACHE_AUTO)
		want |= FUSE_AUTO_INVAL_DATA;
	if (s->cache == FUSE_CACHE_ALWAYS)
		want |= FUSE_CACHE_SYMLINKS;
	s->minor = MIN(in.minor, (uint32_t)FUSE_KERNEL_MINOR_VERSION);
	out.major = FUSE_KERNEL_VERSION;
	out.minor = FUSE_KERNEL_MINOR_VERSION;
	out.max_readahead = in.max_readahead;
	out.flags = in.flags & want;
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = FUSE_SERVER_MAX_WRITE;
	out.time_gran = 1;
	out.max_pages = FUSE_SERVER_MAX_WRITE / 4096;
	s->initialized = true;
	log_debug("%s: FUSE 7.%u, flags 0x%x", s->name, in.minor, out.flags);
	return fuse_reply(req, &out, sizeof(out));
}

static int fuse_do_destroy(struct fuse_req *req)
{
	fuse_table_clear(req->s);
	req->s->initialized = false;
	return fuse_reply(req, NULL, 0);
}

struct fuse_op {
	int (*fn)(struct fuse_req *req);
	uint32_t min_arg; /* bytes of fixed arguments after the header */
	bool writes;	  /* EROFS on a read-only share */
};

#define OP(code, f, size, w) [code] = { .fn = (f), .min_arg = (size), .writes = (w) }
static const struct fuse_op fuse_ops[] = {
	OP(FUSE_LOOKUP, fuse_do_lookup, 0, false),
	OP(FUSE_FORGET, fuse_do_forget, sizeof(struct fuse_forget_in), false),
	OP(FUSE_GETATTR, fuse_do_getattr, sizeof(struct fuse_getattr_in), false),
	OP(FUSE_SETATTR, fuse_do_setattr, sizeof(struct fuse_setattr_in), true),
	OP(FUSE_READLINK, fuse_do_readlink, 0, false),
	OP(FUSE_SYMLINK, fuse_do_symlink, 0, true),
	OP(FUSE_MKNOD, fuse_do_mknod, sizeof(struct fuse_mknod_in), true),
	OP(FUSE_MKDIR, fuse_do_mkdir, sizeof(struct fuse_mkdir_in), true),
	OP(FUSE_UNLINK, fuse_do_unlink, 0, true),
	OP(FUSE_RMDIR, fuse_do_rmdir, 0, true),
	OP(FUSE_RENAME, fuse_do_rename, sizeof(struct fuse_rename_in), true),
	OP(FUSE_LINK, fuse_do_link, sizeof(struct fuse_link_in), true),
	OP(FUSE_OPEN, fuse_do_open, sizeof(struct fuse_open_in), false),
	OP(FUSE_READ, fuse_do_read, sizeof(struct fuse_read_in), false),
	OP(FUSE_WRITE, fuse_do_write, sizeof(struct fuse_write_in), true),
	OP(FUSE_STATFS, fuse_do_statfs, 0, false),
	OP(FUSE_RELEASE, fuse_do_release, sizeof(struct fuse_release_in), false),
	OP(FUSE_FSYNC, fuse_do_fsync, sizeof(struct fuse_fsync_in), false),
	OP(FUSE_SETXATTR, fuse_do_setxattr, FUSE_COMPAT_SETXATTR_IN_SIZE, true),
	OP(FUSE_GETXATTR, fuse_do_getxattr, sizeof(struct fuse_getxattr_in), false),
	OP(FUSE_LISTXATTR, fuse_do_listxattr, sizeof(struct fuse_getxattr_in), false),
	OP(FUSE_REMOVEXATTR, fuse_do_removexattr, 0, true),
	OP(FUSE_FLUSH, fuse_do_flush, sizeof(struct fuse_flush_in), false),
	OP(FUSE_INIT, fuse_do_init, 16, false), /* 7.31-7.35 send the 16-byte fuse_init_in */
	OP(FUSE_OPENDIR, fuse_do_opendir, sizeof(struct fuse_open_in), false),
	OP(FUSE_READDIR, fuse_do_readdir, sizeof(struct fuse_read_in), false),
	OP(FUSE_RELEASEDIR, fuse_do_releasedir, sizeof(struct fuse_release_in), false),
	OP(FUSE_FSYNCDIR, fuse_do_fsync, sizeof(struct fuse_fsync_in), false),
	OP(FUSE_ACCESS, fuse_do_access, sizeof(struct fuse_access_in), false),
	OP(FUSE_CREATE, fuse_do_create, sizeof(struct fuse_create_in), true),
	OP(FUSE_DESTROY, fuse_do_destroy, 0, false),
	OP(FUSE_BATCH_FORGET, fuse_do_batch_forget, sizeof(struct fuse_batch_forget_in), false),
	OP(FUSE_FALLOCATE, fuse_do_fallocate, sizeof(struct fuse_fallocate_in), true),
	OP(FUSE_READDIRPLUS, fuse_do_readdir, sizeof(struct fuse_read_in), false),
	OP(FUSE_RENAME2, fuse_do_rename2, sizeof(struct fuse_rename2_in), true),
	OP(FUSE_LSEEK, fuse_do_lseek, sizeof(struct fuse_lseek_in), false),
	OP(FUSE_COPY_FILE_RANGE, fuse_do_copy_file_range, sizeof(struct fuse_copy_file_range_in),
	   true),
};
#undef OP

/* Copy the header and arguments out (once) and check them; 0 or the errno to answer. */
static int fuse_req_prepare(struct fuse_req *req, uint64_t req_len, const struct fuse_op **op)
{
	struct fuse_server *s = req->s;
	uint32_t copy;

	if (req_len < sizeof(req->in))
		return -EINVAL;
	fuse_iov_read(req->req_iov, req->nr_req, 0, &req->in, sizeof(req->in));
	/* The guest's len must describe the chain; we never read past either. */
	if (req->in.len < sizeof(req->in) || req->in.len > req_len)
		return -EINVAL;
	req->len = req->in.len;
	if (req->in.opcode >= ARRAY_SIZE(fuse_ops) || !fuse_ops[req->in.opcode].fn)
		return -ENOSYS;
	*op = &fuse_ops[req->in.opcode];
	copy = req->len;
	if (req->in.opcode == FUSE_WRITE)
		copy = MIN(copy, (uint32_t)(sizeof(req->in) + sizeof(struct fuse_write_in)));
	else if (copy > FUSE_REQ_COPY_MAX)
		return -E2BIG;
	/* Copied from the header we validated: the guest may rewrite its buffers meanwhile. */
	memcpy(s->buf, &req->in, sizeof(req->in));
	fuse_iov_read(req->req_iov, req->nr_req, sizeof(req->in), s->buf + sizeof(req->in),
		      copy - sizeof(req->in));
	s->buf[copy] = 0; /* room for it: FUSE_REQ_COPY_MAX + 1; names still need their own NUL */
	req->arg = s->buf + sizeof(req->in);
	req->arg_len = copy - (uint32_t)sizeof(req->in);
	if (req->arg_len < (*op)->min_arg)
		return -EINVAL;
	if (!s->initialized && req->in.opcode != FUSE_INIT)
		return -EIO;
	if (s->initialized && req->in.opcode == FUSE_INIT)
		return -EPROTO;
	if (s->readonly && (*op)->writes)
		return -EROFS;
	return 0;
}

uint32_t fuse_server_handle(struct fuse_server *s, const struct iovec *req, unsigned int nr_req,
			    uint64_t req_len, const struct iovec *reply, unsigned int nr_reply,
			    uint64_t reply_len)
{
	struct fuse_req r = {
		.s = s,
		.req_iov = req,
		.nr_req = nr_req,
		.reply_iov = reply,
		.nr_reply = nr_reply,
		.reply_len = reply_len,
	};
	const struct fuse_op *op = NULL;
	int ret;

	s->requests++;
	fuse_node_cache_expire(s);
	ret = fuse_req_prepare(&r, req_len, &op);
	if (ret == 0)
		ret = op->fn(&r);
	if (ret == FUSE_NO_REPLY)
		return 0;
	if (ret < 0) {
		s->errors++;
		fuse_write_header(&r, ret, 0);
	}
	return r.written;
}

void fuse_server_reset(struct fuse_server *s)
{
	fuse_table_clear(s);
	s->initialized = false;
}

void fuse_server_get_stats(const struct fuse_server *s, struct fuse_server_stats *out)
{
	*out = (struct fuse_server_stats){ .requests = s->requests,
					   .errors = s->errors,
					   .nodes = s->nr_nodes,
					   .handles = s->nr_handles,
					   .max_nodes = s->max_nodes,
					   .max_handles = s->max_handles };
}

/*
 * The tables' sizes, and the process-wide budget: RLIMIT_NOFILE less a reserve for the rest
 * of the VMM (a quarter, at most FUSE_FD_RESERVE), shared by every share.
 */
#define FUSE_FD_RESERVE 1024
static void fuse_server_limits(struct fuse_server *s, const struct fuse_server_config *c)
{
	struct rlimit rl;
	uint64_t budget = 512;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		budget = rl.rlim_cur == RLIM_INFINITY
				 ? UINT32_MAX
				 : rl.rlim_cur - MIN(rl.rlim_cur / 4, (rlim_t)FUSE_FD_RESERVE);
	budget = MIN(budget, (uint64_t)UINT32_MAX);
	fuse_fd_budget_set((unsigned int)budget);
	s->max_nodes = c->max_nodes ? c->max_nodes : FUSE_SERVER_DEFAULT_NODES;
	s->max_handles = c->max_handles ? c->max_handles : FUSE_SERVER_DEFAULT_HANDLES;
	s->max_nodes = (uint32_t)MAX(MIN((uint64_t)s->max_nodes, budget), 2);
	s->max_handles = (uint32_t)MAX(MIN((uint64_t)s->max_handles, budget), 1);
}

int fuse_server_new(const struct fuse_server_config *c, struct fuse_server **out, struct error *err)
{
	struct fuse_server *s = calloc(1, sizeof(*s));
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH };
	_cleanup_close_ int root = -1;
	struct stat st;
	uint64_t mnt;
	int fd, r;

	if (!s)
		return error_set(err, -ENOMEM, "%s: out of memory", c->name);
	snprintf(s->name, sizeof(s->name), "%s", c->name);
	s->readonly = c->readonly;
	s->cache = c->cache;
	s->privileged = geteuid() == 0;
	s->umask = umask(022);
	umask(s->umask);
	s->proc_fd = -1;
	root = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		r = error_set_errno(err, -errno, "%s: source=%s", c->name, c->root);
		goto fail;
	}
	r = fuse_stat_key(s, root, "", &st, &mnt);
	if (r < 0) {
		error_set_errno(err, r, "%s: source=%s", c->name, c->root);
		goto fail;
	}
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0) {
		r = error_set_errno(err, -errno, "%s: /proc/self/fd (is /proc mounted?)", c->name);
		goto fail;
	}
	fd = (int)syscall(SYS_openat2, root, ".", &how, sizeof(how));
	s->openat2 = fd >= 0;
	if (fd >= 0)
		close(fd);
	fuse_server_limits(s, c);
	s->buf = malloc(FUSE_REQ_COPY_MAX + 1);
	s->dirbuf = malloc(FUSE_DIRBUF_SIZE);
	s->dents = malloc(FUSE_DIRBUF_SIZE);
	s->iov = calloc(FUSE_SERVER_IOV_MAX, sizeof(*s->iov));
	if (!s->buf || !s->dirbuf || !s->dents || !s->iov) {
		r = error_set(err, -ENOMEM, "%s: out of memory", c->name);
		goto fail;
	}
	r = fuse_table_init(s, root, &st, mnt);
	if (r < 0) {
		error_set(err, r, "%s: out of memory for %u inodes", c->name, s->max_nodes);
		goto fail;
	}
	fd_steal(&root);
	*out = s;
	return 0;
fail:
	fuse_server_destroy(s);
	return r;
}

void fuse_server_destroy(struct fuse_server *s)
{
	if (!s)
		return;
	fuse_table_destroy(s);
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	free(s->buf);
	free(s->dirbuf);
	free(s->dents);
	free(s->iov);
	free(s);
}
