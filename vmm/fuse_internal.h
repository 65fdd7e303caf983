/*
 * What the FUSE server's files share (fuse.h is the public side): the inode and handle
 * tables (fuse_table.c), a request as the server sees it, reply helpers (fuse_server.c)
 * and the operations (fuse_ops_entry.c: the namespace; fuse_ops_file.c: data, directories,
 * extended attributes).
 */
#ifndef STRATUS_VMM_FUSE_INTERNAL_H
#define STRATUS_VMM_FUSE_INTERNAL_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <linux/fuse.h>

#include "fuse.h"
#include "util.h"

/* Request arguments are copied out of the guest into this much room (WRITE data is not). */
#define FUSE_REQ_COPY_MAX (sizeof(struct fuse_in_header) + 64 + 2 * 4096 + 65536)
#define FUSE_DIRBUF_SIZE  KIB(128) /* a READDIR(PLUS) reply is built here, at most this big */
#define FUSE_PROC_NAME	  16	   /* "%d" of an fd, for /proc/self/fd */

/*
 * Seconds an unreferenced node stays cached (FORGET brought its count to 0): a later LOOKUP
 * of the same inode needs no open. Checked at each request, so an idle share keeps them.
 */
#define FUSE_NODE_CACHE_TTL 30

/*
 * An inode the guest has looked up through one mount: its O_PATH fd and how many lookups it
 * owes us. With nlookup 0 the node is cached (on the LRU list, its id no longer valid for
 * the guest). A node is (dev, ino, mnt): the same directory bind-mounted twice under the
 * share, once read-only, is two nodes, each with a descriptor on its own mount, so what the
 * host enforces per mount (ro, nosuid, noexec) holds for each name the guest uses.
 */
struct fuse_node {
	uint64_t id; /* the guest's nodeid; 0 while the slot is free */
	dev_t dev;
	ino_t ino;
	uint64_t mnt; /* statx's stx_mnt_id; 0 on a kernel without it (before Linux 5.8) */
	int fd;	      /* O_PATH | O_NOFOLLOW, never followed by us */
	mode_t type;  /* S_IFMT bits, fixed for the life of an inode */
	uint64_t nlookup;
	uint32_t hash_next; /* slot + 1 of the next node in this hash chain, 0: none */
	uint32_t gen;	    /* bumped each time the slot is reused: stale ids never match */
	uint32_t lru_prev, lru_next; /* slot + 1 on the cached list (newest first), 0: none */
	uint32_t cached_at;	     /* when it was cached, seconds (CLOCK_MONOTONIC_COARSE) */
	bool gone; /* its last name was removed through us: closed when forgotten, not cached */
};

/* An open file or directory. */
struct fuse_handle {
	uint64_t id; /* the guest's fh; 0 while free */
	int fd;
	bool dir;
	uint32_t gen;
};

struct fuse_server {
	char name[64];
	bool readonly;
	enum fuse_cache cache;
	bool privileged; /* euid 0: new inodes are given the caller's uid/gid */
	mode_t umask;	 /* the process umask, undone on modes the guest already masked */
	int proc_fd;	 /* /proc/self/fd, to reopen regular files we hold as O_PATH */
	bool openat2;	 /* the host has openat2 (else O_NOFOLLOW alone, one component) */

	struct fuse_node *nodes;		 /* slot 0 is the root, FUSE_ROOT_ID */
	uint32_t max_nodes, nr_nodes, node_hint; /* hint: no free slot before it */
	uint32_t lru_head, lru_tail, nr_cached;	 /* cached nodes (nlookup 0), slot + 1 */
	uint32_t *hash;				 /* (dev, ino) -> slot + 1, chained */
	uint32_t hash_mask;
	struct fuse_handle *handles;
	uint32_t max_handles, nr_handles, handle_hint;

	bool initialized; /* INIT done */
	uint32_t minor;	  /* the protocol minor agreed on */

	uint8_t *buf;	 /* the request's header and arguments, FUSE_REQ_COPY_MAX */
	uint8_t *dirbuf; /* READDIR(PLUS) replies and getdents64 */
	uint8_t *dents;
	/*
	 * What getdents64 returned beyond the last reply, for the directory handle dents_fh:
	 * dents[dents_pos .. dents_len) continues at cookie dents_next, so a guest listing a
	 * directory page by page costs neither a seek nor a second read of the same entries.
	 */
	uint64_t dents_fh, dents_next;
	uint32_t dents_pos, dents_len;
	struct iovec *iov; /* scratch, FUSE_SERVER_IOV_MAX */
	uint64_t requests, errors;
};

/* One request being served. */
struct fuse_req {
	struct fuse_server *s;
	struct fuse_in_header in;
	const uint8_t *arg; /* the arguments after the header, in s->buf */
	uint32_t arg_len;
	uint32_t len;		     /* in.len, checked against the chain */
	const struct iovec *req_iov; /* all of the request, for WRITE data */
	unsigned int nr_req;
	const struct iovec *reply_iov; /* the reply area */
	unsigned int nr_reply;
	uint64_t reply_len;
	uint32_t written; /* reply bytes written, header included */
	bool replied;
};

/* The handler returns this when the request takes no reply (FORGET, BATCH_FORGET). */
#define FUSE_NO_REPLY 1

/* fuse_table.c */
/* The descriptors all servers of the process may hold together (nodes and handles). */
void fuse_fd_budget_set(unsigned int max);
int fuse_table_init(struct fuse_server *s, int root_fd, const struct stat *root, uint64_t mnt);
void fuse_table_destroy(struct fuse_server *s);
/* Forget everything but the root; close every handle. */
void fuse_table_clear(struct fuse_server *s);
/* A node the guest holds now (cached nodes are not: their ids are stale). */
struct fuse_node *fuse_node_get(struct fuse_server *s, uint64_t id);
/* The node (held or cached) for an inode we hold a descriptor on through mount mnt, or NULL. */
struct fuse_node *fuse_node_find(struct fuse_server *s, dev_t dev, ino_t ino, uint64_t mnt);
/* One lookup more on a node fuse_node_find returned; a cached node comes back (new id). */
void fuse_node_ref(struct fuse_server *s, struct fuse_node *n);
/*
 * The node for (st->st_dev, st->st_ino, mnt), taking fd (closed here if the node exists or on
 * failure), one lookup more; -ENFILE when the table is full of nodes the guest holds
 * (cached ones are evicted, oldest first, to make room).
 */
int fuse_node_add(struct fuse_server *s, int fd, const struct stat *st, uint64_t mnt,
		  struct fuse_node **out);
/*
 * FORGET: at count 0 the node is cached, unless its inode lost its last name through us
 * (gone: closed now, so a deleted file's blocks are freed) or the descriptor budget is three
 * quarters used.
 */
void fuse_node_forget(struct fuse_server *s, uint64_t id, uint64_t nlookup);
/*
 * A name whose inode was st (stat before the removal) was removed or replaced: if that was
 * its last link (or a directory), the cached nodes for it (through any mount) are closed now,
 * held ones when the guest forgets them.
 */
void fuse_node_unlinked(struct fuse_server *s, const struct stat *st);
/* Close up to n cached nodes, oldest first (descriptor pressure); returns how many. */
unsigned int fuse_node_cache_shrink(struct fuse_server *s, unsigned int n);
/* Close the cached nodes older than FUSE_NODE_CACHE_TTL (called per request). */
void fuse_node_cache_expire(struct fuse_server *s);
struct fuse_handle *fuse_handle_get(struct fuse_server *s, uint64_t fh, bool dir);
/* Takes fd (closed on failure: -EMFILE when the table is full). */
int fuse_handle_add(struct fuse_server *s, int fd, bool dir, uint64_t *fh);
int fuse_handle_release(struct fuse_server *s, uint64_t fh, bool dir);

/* fuse_server.c: replies and helpers */
int fuse_reply(struct fuse_req *req, const void *data, size_t len);
/* A reply whose data is already in place after the header (READ): just the header. */
int fuse_reply_header(struct fuse_req *req, uint32_t data_len);
/* The reply area after the header, as iovecs in s->iov (at most len bytes); returns nr. */
unsigned int fuse_reply_iov(struct fuse_req *req, uint64_t len, uint64_t *avail);
/* The request bytes [off, off + len) as iovecs in s->iov; returns nr. */
unsigned int fuse_req_iov(struct fuse_req *req, uint64_t off, uint64_t len);
/*
 * A NUL-terminated name at *off in the arguments, advanced past it: -EINVAL if no NUL, if
 * empty, with '/', "." or ".."; -ENAMETOOLONG over NAME_MAX.
 */
int fuse_req_name(struct fuse_req *req, uint32_t *off, const char **name);
/* Like fuse_req_name for a symlink target: any bytes but NUL, up to PATH_MAX - 1. */
int fuse_req_string(struct fuse_req *req, uint32_t *off, size_t max, const char **str);
void fuse_fill_attr(const struct fuse_server *s, const struct stat *st, struct fuse_attr *attr);
void fuse_fill_entry(const struct fuse_server *s, const struct fuse_node *node,
		     const struct stat *st, struct fuse_entry_out *e);
/* "N" for fd, the name of its magic link under /proc/self/fd. */
void fuse_proc_name(int fd, char name[FUSE_PROC_NAME]);
/* Open a child as O_PATH without following anything: one component under dir_fd. */
int fuse_open_child(struct fuse_server *s, int dir_fd, const char *name);
/* After an open failed with err: true if cached nodes were closed to make room (retry). */
bool fuse_retry_emfile(struct fuse_server *s, int err);
/*
 * Look name up under parent: a node with one lookup more, its stat. probe: stat the name
 * first and take a node we hold for that inode without opening anything (false for a name
 * just created, which no node can hold yet).
 */
int fuse_lookup_name(struct fuse_server *s, struct fuse_node *parent, const char *name, bool probe,
		     struct fuse_node **out, struct stat *st);
int fuse_stat_node(const struct fuse_node *node, struct stat *st);
/*
 * What names a node: stat of name under dir_fd ("" for dir_fd itself), nothing followed, and
 * the id of the mount it is on (statx, one system call as fstatat; mnt 0 where the kernel
 * has no STATX_MNT_ID, logged once: then bind mounts of one inode share a node again).
 */
int fuse_stat_key(struct fuse_server *s, int dir_fd, const char *name, struct stat *st,
		  uint64_t *mnt);
/*
 * After name was created under parent: look it up, give it to the caller (uid/gid) with
 * the mode asked for, or remove it again on failure. *out set: the caller replies; NULL:
 * the entry is replied here.
 */
int fuse_finish_create_node(struct fuse_req *req, struct fuse_node *parent, const char *name,
			    mode_t mode, struct fuse_node **out, struct stat *st);

/* The operations: 0 (replied), FUSE_NO_REPLY, or a negative errno to answer with. */
int fuse_do_lookup(struct fuse_req *req);
int fuse_do_forget(struct fuse_req *req);
int fuse_do_batch_forget(struct fuse_req *req);
int fuse_do_getattr(struct fuse_req *req);
int fuse_do_setattr(struct fuse_req *req);
int fuse_do_readlink(struct fuse_req *req);
int fuse_do_symlink(struct fuse_req *req);
int fuse_do_mknod(struct fuse_req *req);
int fuse_do_mkdir(struct fuse_req *req);
int fuse_do_unlink(struct fuse_req *req);
int fuse_do_rmdir(struct fuse_req *req);
int fuse_do_rename(struct fuse_req *req);
int fuse_do_rename2(struct fuse_req *req);
int fuse_do_link(struct fuse_req *req);
int fuse_do_statfs(struct fuse_req *req);
int fuse_do_access(struct fuse_req *req);
int fuse_do_create(struct fuse_req *req);
int fuse_do_open(struct fuse_req *req);
int fuse_do_read(struct fuse_req *req);
int fuse_do_write(struct fuse_req *req);
int fuse_do_release(struct fuse_req *req);
int fuse_do_fsync(struct fuse_req *req);
int fuse_do_flush(struct fuse_req *req);
int fuse_do_opendir(struct fuse_req *req);
int fuse_do_readdir(struct fuse_req *req);
int fuse_do_releasedir(struct fuse_req *req);
int fuse_do_fallocate(struct fuse_req *req);
int fuse_do_lseek(struct fuse_req *req);
int fuse_do_copy_file_range(struct fuse_req *req);
int fuse_do_setxattr(struct fuse_req *req);
int fuse_do_getxattr(struct fuse_req *req);
int fuse_do_listxattr(struct fuse_req *req);
int fuse_do_removexattr(struct fuse_req *req);

#endif
